//! The widget's words in English, Bengali and Hindi, and the merchant's overrides.
//!
//! Every string has a stable key (`pay_with_bkash`, `try_again`, ...) that merchants use in the `strings`
//! option. The English texts of buttons and outcome headings are the accessible names in DESIGN.md, which
//! end-to-end tests rely on: change them only together with that page.

/// A language the widget speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Locale {
    /// English (default).
    #[default]
    En,
    /// Bengali.
    Bn,
    /// Hindi.
    Hi,
}

impl Locale {
    /// Every supported locale.
    pub const ALL: [Locale; 3] = [Locale::En, Locale::Bn, Locale::Hi];

    /// The BCP 47 primary language subtag, as used in `lang` attributes and the `locale` option.
    pub fn as_str(self) -> &'static str {
        match self {
            Locale::En => "en",
            Locale::Bn => "bn",
            Locale::Hi => "hi",
        }
    }

    /// Reads a language tag by its primary subtag, case-insensitively: "bn-BD" is Bengali, "EN_us" English.
    pub fn parse(tag: &str) -> Option<Locale> {
        let primary = tag.trim().split(['-', '_']).next().unwrap_or_default();
        Locale::ALL.into_iter().find(|l| primary.eq_ignore_ascii_case(l.as_str()))
    }

    /// The first supported locale among the merchant's option, the page's `<html lang>` and the browser's
    /// language, else English.
    pub fn pick(option: Option<&str>, page_lang: Option<&str>, navigator: Option<&str>) -> Locale {
        [option, page_lang, navigator].into_iter().flatten().find_map(Locale::parse).unwrap_or_default()
    }
}

macro_rules! keys {
    ($($(#[$doc:meta])* $variant:ident $key:literal { en: $en:literal, bn: $bn:literal, hi: $hi:literal })*) => {
        /// The key of one text of the widget.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Key {
            $($(#[$doc])* $variant,)*
        }

        impl Key {
            /// Every key.
            pub const ALL: &'static [Key] = &[$(Key::$variant,)*];

            /// The key as merchants write it in the `strings` option.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Key::$variant => $key,)*
                }
            }

            /// The built-in text for a locale. The release wasm carries English only (Bengali and Hindi cost it
            /// about 1.6 KB gzip): there the other locales' texts come with the `texts` option, from
            /// `pkg/deshpay-<locale>.json` (written by `cargo xtask build` from this table), and this falls back
            /// to English.
            pub fn text(self, locale: Locale) -> &'static str {
                match (self, locale) {
                    $((Key::$variant, Locale::En) => $en,
                      #[cfg(any(test, not(target_arch = "wasm32")))]
                      (Key::$variant, Locale::Bn) => $bn,
                      #[cfg(any(test, not(target_arch = "wasm32")))]
                      (Key::$variant, Locale::Hi) => $hi,)*
                    #[cfg(all(not(test), target_arch = "wasm32"))]
                    (key, _) => key.text(Locale::En),
                }
            }
        }
    };
}

keys! {
    /// The bKash method button.
    PayWithBkash "pay_with_bkash" {
        en: "Pay with bKash",
        bn: "বিকাশ দিয়ে পেমেন্ট করুন",
        hi: "bKash से भुगतान करें"
    }
    /// The UPI method button.
    PayWithUpi "pay_with_upi" {
        en: "Pay with UPI",
        bn: "UPI দিয়ে পেমেন্ট করুন",
        hi: "UPI से भुगतान करें"
    }
    /// While the session loads.
    Loading "loading" {
        en: "Loading payment details…",
        bn: "পেমেন্টের তথ্য লোড হচ্ছে…",
        hi: "भुगतान की जानकारी लोड हो रही है…"
    }
    /// Label of the method list.
    ChooseMethod "choose_method" {
        en: "Choose how to pay",
        bn: "পেমেন্টের মাধ্যম বেছে নিন",
        hi: "भुगतान का तरीका चुनें"
    }
    /// Label of the amount.
    Amount "amount" {
        en: "Amount",
        bn: "টাকার পরিমাণ",
        hi: "राशि"
    }
    /// Label of the merchant's invoice number.
    Invoice "invoice" {
        en: "Invoice",
        bn: "ইনভয়েস নং",
        hi: "इनवॉइस नंबर"
    }
    /// After starting, before the browser leaves for bKash.
    Redirecting "redirecting" {
        en: "Taking you to bKash…",
        bn: "বিকাশ পেমেন্ট পেজে নিয়ে যাওয়া হচ্ছে…",
        hi: "आपको bKash पर ले जाया जा रहा है…"
    }
    /// While the backend confirms the payment.
    Confirming "confirming" {
        en: "Confirming your payment…",
        bn: "আপনার পেমেন্ট নিশ্চিত করা হচ্ছে…",
        hi: "आपके भुगतान की पुष्टि की जा रही है…"
    }
    /// Confirmation took longer than the widget waits.
    StillConfirming "still_confirming" {
        en: "We're still confirming your payment. This can take a few minutes. Do not pay again; check the status in a moment.",
        bn: "আপনার পেমেন্ট এখনও নিশ্চিত করা হচ্ছে। এতে কয়েক মিনিট লাগতে পারে। আবার পেমেন্ট করবেন না, একটু পরে স্ট্যাটাস দেখুন।",
        hi: "आपके भुगतान की पुष्टि अभी हो रही है। इसमें कुछ मिनट लग सकते हैं। दोबारा भुगतान न करें, थोड़ी देर बाद स्टेटस देखें।"
    }
    /// The button below the still-confirming text: checks the status again (it never starts a payment).
    CheckStatus "check_status" {
        en: "Check status",
        bn: "স্ট্যাটাস দেখুন",
        hi: "स्टेटस देखें"
    }
    /// Outcome heading: money may have moved and the merchant checks the payment.
    Review "review" {
        en: "We are checking your payment",
        bn: "পেমেন্ট যাচাই করা হচ্ছে",
        hi: "भुगतान की जाँच हो रही है"
    }
    /// Below the review heading; `{merchant}` is the merchant's name.
    ReviewBody "review_body" {
        en: "Money may have been taken from your account. {merchant} will check the payment and confirm your order or return the money. Do not pay again.",
        bn: "আপনার অ্যাকাউন্ট থেকে টাকা কেটে থাকতে পারে। {merchant} পেমেন্টটি যাচাই করে অর্ডার নিশ্চিত করবেন অথবা টাকা ফেরত দেবেন। আবার পেমেন্ট করবেন না।",
        hi: "हो सकता है कि आपके खाते से पैसे कट गए हों। {merchant} भुगतान की जाँच करके ऑर्डर कन्फ़र्म करेगा या पैसे वापस करेगा। दोबारा भुगतान न करें।"
    }
    /// Outcome heading: paid.
    Success "success" {
        en: "Payment successful",
        bn: "পেমেন্ট সফল হয়েছে",
        hi: "भुगतान सफल रहा"
    }
    /// Label of the provider's transaction id on the receipt.
    TrxId "trx_id" {
        en: "Transaction ID",
        bn: "ট্রানজেকশন আইডি",
        hi: "लेनदेन आईडी"
    }
    /// Outcome heading: refused or failed verification.
    Failed "failed" {
        en: "Payment failed",
        bn: "পেমেন্ট ব্যর্থ হয়েছে",
        hi: "भुगतान विफल रहा"
    }
    /// Below the failed heading when the reason has no text of its own (or is unknown).
    FailedNoReason "failed_no_reason" {
        en: "The payment was not completed. No money was taken.",
        bn: "পেমেন্ট সম্পন্ন হয়নি। কোনো টাকা কাটা হয়নি।",
        hi: "भुगतान पूरा नहीं हुआ। आपके खाते से कोई पैसा नहीं कटा है।"
    }
    /// Failure reason `insufficient_balance` (bKash 2023); `{amount}` is the session's amount as the card shows it.
    ReasonBalance "reason_insufficient_balance" {
        en: "Your bKash balance is too low for {amount}. No money was taken. Add money or use another bKash account.",
        bn: "আপনার বিকাশ অ্যাকাউন্টে {amount} পেমেন্টের জন্য যথেষ্ট ব্যালেন্স নেই। কোনো টাকা কাটা হয়নি। টাকা যোগ করুন অথবা অন্য বিকাশ অ্যাকাউন্ট দিয়ে পেমেন্ট করুন।",
        hi: "आपके bKash खाते में {amount} के भुगतान के लिए पर्याप्त बैलेंस नहीं है। कोई पैसा नहीं कटा है। खाते में पैसे डालें या किसी दूसरे bKash खाते से भुगतान करें।"
    }
    /// Failure reason `verification_failed` (bKash): the SMS verification code was wrong, expired or asked for
    /// too often.
    ReasonVerification "reason_verification_failed" {
        en: "The verification code was wrong or expired. No money was taken. Try again with the code bKash sends by SMS.",
        bn: "ভেরিফিকেশন কোড ভুল ছিল অথবা এর মেয়াদ শেষ হয়ে গেছে। কোনো টাকা কাটা হয়নি। বিকাশের এসএমএস-এ পাঠানো নতুন কোড দিয়ে আবার চেষ্টা করুন।",
        hi: "वेरिफ़िकेशन कोड गलत था या उसका समय निकल गया। कोई पैसा नहीं कटा है। bKash के एसएमएस में आए नए कोड से फिर से कोशिश करें।"
    }
    /// Failure reason `pin_failed` (bKash): a wrong or late wallet PIN, or too many wrong PINs.
    ReasonPin "reason_pin_failed" {
        en: "The bKash PIN was wrong or entered too late. No money was taken. Try again. Forgot your PIN? Call bKash on 16247.",
        bn: "বিকাশ পিন ভুল ছিল অথবা সময়মতো দেওয়া হয়নি। কোনো টাকা কাটা হয়নি। আবার চেষ্টা করুন। পিন ভুলে গেলে বিকাশ হেল্পলাইন ১৬২৪৭-এ কল করুন।",
        hi: "bKash पिन गलत था या समय पर नहीं डाला गया। कोई पैसा नहीं कटा है। फिर से कोशिश करें। पिन भूल गए हों तो bKash हेल्पलाइन 16247 पर कॉल करें।"
    }
    /// Failure reason `invalid_wallet` (bKash): the number is not a bKash customer wallet.
    ReasonWallet "reason_invalid_wallet" {
        en: "This number is not a bKash customer account. No money was taken. Check the number or use another bKash account.",
        bn: "এই নম্বরটি বিকাশ কাস্টমার অ্যাকাউন্ট নয়। কোনো টাকা কাটা হয়নি। নম্বরটি ঠিক আছে কি না দেখুন অথবা অন্য বিকাশ অ্যাকাউন্ট ব্যবহার করুন।",
        hi: "यह नंबर bKash ग्राहक खाता नहीं है। कोई पैसा नहीं कटा है। नंबर जाँचें या किसी दूसरे bKash खाते का इस्तेमाल करें।"
    }
    /// Failure reason `account_restricted` (bKash): the wallet may not pay now.
    ReasonRestricted "reason_account_restricted" {
        en: "Your bKash account cannot make this payment right now. No money was taken. Please call the bKash helpline 16247.",
        bn: "আপনার বিকাশ অ্যাকাউন্ট থেকে এই মুহূর্তে পেমেন্ট করা যাচ্ছে না। কোনো টাকা কাটা হয়নি। বিকাশ হেল্পলাইন ১৬২৪৭-এ যোগাযোগ করুন।",
        hi: "आपके bKash खाते से अभी भुगतान नहीं हो सकता। कोई पैसा नहीं कटा है। bKash हेल्पलाइन 16247 पर संपर्क करें।"
    }
    /// Failure reason `duplicate` (bKash refuses a repeat of the same amount within minutes).
    ReasonDuplicate "reason_duplicate" {
        en: "A payment of the same amount was made a moment ago, so bKash refused this one. No money was taken for it. If the earlier payment was for this order, do not pay again.",
        bn: "কিছুক্ষণ আগে একই পরিমাণের আরেকটি পেমেন্ট হয়েছে, তাই বিকাশ এটি নেয়নি। এই পেমেন্টে কোনো টাকা কাটা হয়নি। আগের পেমেন্টটি এই অর্ডারের হলে আবার পেমেন্ট করবেন না।",
        hi: "इसी राशि का एक भुगतान अभी-अभी हुआ है, इसलिए bKash ने यह भुगतान नहीं लिया। कोई पैसा नहीं कटा है। अगर पिछला भुगतान इसी ऑर्डर का था, तो दोबारा भुगतान न करें।"
    }
    /// Failure reason `saved_wallet_unavailable` (bKash): the saved wallet (agreement) can no longer pay.
    ReasonSavedWallet "reason_saved_wallet_unavailable" {
        en: "Your saved bKash account can no longer be used. No money was taken. Pay with your bKash number instead.",
        bn: "আপনার সেভ করা বিকাশ অ্যাকাউন্টটি আর ব্যবহার করা যাবে না। কোনো টাকা কাটা হয়নি। আপনার বিকাশ নম্বর দিয়ে পেমেন্ট করুন।",
        hi: "आपका सेव किया गया bKash खाता अब इस्तेमाल नहीं हो सकता। कोई पैसा नहीं कटा है। अपने bKash नंबर से भुगतान करें।"
    }
    /// A failed UPI payment: a debit the bank reverses is possible, so no absolute "no money was taken".
    UpiFailedBody "upi_failed_body" {
        en: "The payment was not completed in your UPI app. If money was taken, it will return to your account automatically.",
        bn: "UPI অ্যাপে পেমেন্টটি সম্পন্ন হয়নি। টাকা কেটে থাকলে তা নিজে থেকেই আপনার অ্যাকাউন্টে ফেরত যাবে।",
        hi: "UPI ऐप में भुगतान पूरा नहीं हुआ। अगर पैसे कट गए हैं, तो वे अपने-आप आपके खाते में वापस आ जाएँगे।"
    }
    /// Failure reason `already_paid`: another payment had paid the order; this one took nothing.
    AlreadyPaid "already_paid" {
        en: "This order has already been paid. No money was taken this time.",
        bn: "এই অর্ডারের পেমেন্ট আগেই হয়ে গেছে। এবার কোনো টাকা কাটা হয়নি।",
        hi: "इस ऑर्डर का भुगतान पहले ही हो चुका है। इस बार कोई पैसा नहीं कटा है।"
    }
    /// Outcome heading: the customer closed the provider's page.
    Cancelled "cancelled" {
        en: "Payment cancelled",
        bn: "পেমেন্ট বাতিল করা হয়েছে",
        hi: "भुगतान रद्द हो गया"
    }
    /// Below the cancelled heading.
    CancelledBody "cancelled_body" {
        en: "You cancelled the payment. No money was taken.",
        bn: "আপনি পেমেন্ট বাতিল করেছেন। কোনো টাকা কাটা হয়নি।",
        hi: "आपने भुगतान रद्द कर दिया। आपके खाते से कोई पैसा नहीं कटा है।"
    }
    /// Outcome heading: the attempt ran out of time.
    Expired "expired" {
        en: "Payment expired",
        bn: "পেমেন্টের সময় শেষ",
        hi: "भुगतान का समय खत्म हो गया"
    }
    /// Below the expired heading.
    ExpiredBody "expired_body" {
        en: "The payment was not completed in time. No money was taken.",
        bn: "নির্ধারিত সময়ের মধ্যে পেমেন্ট সম্পন্ন হয়নি। কোনো টাকা কাটা হয়নি।",
        hi: "भुगतान समय पर पूरा नहीं हुआ। आपके खाते से कोई पैसा नहीं कटा है।"
    }
    /// The retry button after failure, cancellation, expiry or errors (never while money may have moved).
    TryAgain "try_again" {
        en: "Try again",
        bn: "আবার চেষ্টা করুন",
        hi: "फिर से कोशिश करें"
    }
    /// Heading: the whole checkout session expired.
    SessionExpired "session_expired" {
        en: "Payment link expired",
        bn: "পেমেন্ট লিংকের মেয়াদ শেষ",
        hi: "यह भुगतान लिंक अब मान्य नहीं है"
    }
    /// Below the session-expired heading; `{merchant}` is the merchant's name.
    SessionExpiredBody "session_expired_body" {
        en: "This payment link has expired. Please return to {merchant}'s website to start again.",
        bn: "এই পেমেন্ট লিংকের মেয়াদ শেষ হয়ে গেছে। আবার শুরু করতে {merchant}-এর ওয়েবসাইটে ফিরে যান।",
        hi: "इस भुगतान लिंक की समय-सीमा खत्म हो गई है। फिर से शुरू करने के लिए कृपया {merchant} की वेबसाइट पर वापस जाएँ।"
    }
    /// Heading: the merchant cancelled the session.
    SessionCanceled "session_canceled" {
        en: "Checkout cancelled",
        bn: "চেকআউট বাতিল করা হয়েছে",
        hi: "चेकआउट रद्द कर दिया गया"
    }
    /// Below the session-cancelled heading; `{merchant}` is the merchant's name.
    SessionCanceledBody "session_canceled_body" {
        en: "{merchant} cancelled this payment. Please return to {merchant}'s website for details.",
        bn: "{merchant} এই পেমেন্টটি বাতিল করেছেন। বিস্তারিত জানতে {merchant}-এর ওয়েবসাইটে ফিরে যান।",
        hi: "{merchant} ने यह भुगतान रद्द कर दिया है। ज़्यादा जानकारी के लिए कृपया {merchant} की वेबसाइट पर वापस जाएँ।"
    }
    /// The session id is unknown to the backend (the merchant's name is unknown too).
    NotFound "not_found" {
        en: "This payment link was not found. Please return to the seller's website and start again.",
        bn: "এই পেমেন্ট লিংকটি খুঁজে পাওয়া যায়নি। আবার শুরু করতে বিক্রেতার ওয়েবসাইটে ফিরে যান।",
        hi: "यह भुगतान लिंक नहीं मिला। फिर से शुरू करने के लिए कृपया विक्रेता की वेबसाइट पर वापस जाएँ।"
    }
    /// The backend cannot be reached or answered with a server error.
    Unreachable "unreachable" {
        en: "We can't reach the payment service. Check your connection and try again.",
        bn: "পেমেন্ট সার্ভিসের সাথে সংযোগ করা যাচ্ছে না। ইন্টারনেট সংযোগ চেক করে আবার চেষ্টা করুন।",
        hi: "भुगतान सेवा से कनेक्ट नहीं हो पा रहा है। अपना इंटरनेट कनेक्शन जाँचें और फिर से कोशिश करें।"
    }
    /// A UPI "Cancel" did not reach the backend.
    CancelFailed "cancel_failed" {
        en: "The payment could not be cancelled. Check your internet connection and try again.",
        bn: "পেমেন্ট বাতিল করা যায়নি। ইন্টারনেট সংযোগ চেক করে আবার চেষ্টা করুন।",
        hi: "भुगतान रद्द नहीं हो सका। अपना इंटरनेट कनेक्शन जाँचें और फिर से कोशिश करें।"
    }
    /// bKash did not answer in time.
    ProviderUnavailable "provider_unavailable" {
        en: "bKash is not responding right now. No money was taken. Please try again in a moment.",
        bn: "বিকাশ এই মুহূর্তে সাড়া দিচ্ছে না। কোনো টাকা কাটা হয়নি। একটু পরে আবার চেষ্টা করুন।",
        hi: "bKash अभी जवाब नहीं दे रहा है। कोई पैसा नहीं कटा है। कृपया थोड़ी देर बाद फिर से कोशिश करें।"
    }
    /// The provider or backend refused to start a payment (its own words go to the console only).
    StartFailed "start_failed" {
        en: "The payment could not be started. No money was taken. Please try again in a moment.",
        bn: "পেমেন্ট শুরু করা যায়নি। কোনো টাকা কাটা হয়নি। একটু পরে আবার চেষ্টা করুন।",
        hi: "भुगतान शुरू नहीं हो सका। कोई पैसा नहीं कटा है। कृपया थोड़ी देर बाद फिर से कोशिश करें।"
    }
    /// UPI payments could not be started because Bestin Pay did not answer in time.
    UpiUnavailable "upi_unavailable" {
        en: "UPI payments are not available right now. No money was taken. Please try again in a moment.",
        bn: "এই মুহূর্তে UPI পেমেন্ট করা যাচ্ছে না। কোনো টাকা কাটা হয়নি। একটু পরে আবার চেষ্টা করুন।",
        hi: "UPI भुगतान अभी उपलब्ध नहीं है। कोई पैसा नहीं कटा है। कृपया थोड़ी देर बाद फिर से कोशिश करें।"
    }
    /// Status while the customer approves a UPI payment in their app.
    WaitingApproval "waiting_approval" {
        en: "Waiting for approval",
        bn: "আপনার UPI অ্যাপে পেমেন্টের অপেক্ষায়…",
        hi: "आपके UPI ऐप में भुगतान का इंतज़ार है…"
    }
    /// Heading above the QR code (desktop).
    UpiScanTitle "upi_scan_title" {
        en: "Scan to pay with UPI",
        bn: "UPI দিয়ে পেমেন্ট করতে স্ক্যান করুন",
        hi: "UPI से भुगतान के लिए स्कैन करें"
    }
    /// Accessible name of the QR code image.
    UpiQrLabel "upi_qr_label" {
        en: "QR code for the UPI payment",
        bn: "UPI পেমেন্টের QR কোড",
        hi: "UPI भुगतान के लिए QR कोड"
    }
    /// Below the QR code.
    UpiScanHint "upi_scan_hint" {
        en: "Scan with any UPI app on your phone",
        bn: "আপনার ফোনের যেকোনো UPI অ্যাপ দিয়ে স্ক্যান করুন",
        hi: "अपने फ़ोन के किसी भी UPI ऐप से स्कैन करें"
    }
    /// Toggle that shows the app buttons below the QR code (desktop).
    UpiPayOnDevice "upi_pay_on_device" {
        en: "Pay on this device",
        bn: "এই ডিভাইসে পেমেন্ট করুন",
        hi: "इसी डिवाइस पर भुगतान करें"
    }
    /// Heading above the app buttons (phone).
    UpiAppsTitle "upi_apps_title" {
        en: "Pay with your UPI app",
        bn: "আপনার UPI অ্যাপ দিয়ে পেমেন্ট করুন",
        hi: "अपने UPI ऐप से भुगतान करें"
    }
    /// Below the app heading (phone).
    UpiAppsHint "upi_apps_hint" {
        en: "Choose your UPI app, enter your UPI PIN there, then come back to this page.",
        bn: "আপনার UPI অ্যাপ বেছে নিন, সেখানে UPI পিন দিয়ে পেমেন্ট সম্পন্ন করুন, তারপর এই পেজে ফিরে আসুন।",
        hi: "अपना UPI ऐप चुनें, वहाँ UPI पिन डालकर भुगतान पूरा करें, फिर इस पेज पर वापस आएँ।"
    }
    /// The app button with the generic `upi://pay` link ("Paytm" and "PhonePe" are brand names, not translated).
    OtherUpiApp "upi_other_app" {
        en: "Other UPI app",
        bn: "অন্য UPI অ্যাপ",
        hi: "अन्य UPI ऐप"
    }
    /// Label of the countdown to the payment request's expiry.
    UpiTimeLeft "upi_time_left" {
        en: "Time left to pay",
        bn: "পেমেন্ট করার বাকি সময়",
        hi: "भुगतान के लिए बचा समय"
    }
    /// Announced (politely, once a minute) while waiting, after the number of minutes: "14 min left to pay" (an
    /// abbreviation and "शेष" read right for 1 and for 14).
    UpiMinutesLeft "upi_minutes_left" {
        en: "min left to pay",
        bn: "মিনিট বাকি",
        hi: "मिनट शेष"
    }
    /// Cancels a UPI payment request that is waiting for approval.
    Cancel "cancel" {
        en: "Cancel",
        bn: "বাতিল করুন",
        hi: "रद्द करें"
    }
    /// Heading: the session offers no method this widget supports.
    NoMethod "no_method" {
        en: "No payment method available",
        bn: "পেমেন্টের কোনো মাধ্যম নেই",
        hi: "भुगतान का कोई तरीका उपलब्ध नहीं है"
    }
    /// Below the no-method heading; `{merchant}` is the merchant's name.
    NoMethodBody "no_method_body" {
        en: "There is no way to pay here right now. Please contact {merchant}.",
        bn: "এখানে পেমেন্ট করার কোনো মাধ্যম চালু নেই। অনুগ্রহ করে {merchant}-এর সাথে যোগাযোগ করুন।",
        hi: "यहाँ भुगतान का कोई तरीका उपलब्ध नहीं है। कृपया {merchant} से संपर्क करें।"
    }
}

impl Key {
    /// Finds a key by its name in the `strings` option.
    pub fn parse(name: &str) -> Option<Key> {
        Key::ALL.iter().copied().find(|k| k.as_str() == name)
    }
}

/// `text` with each `{merchant}` replaced by the merchant's name and each `{amount}` by the amount as the card
/// shows it (other braces stay as they are). Searches for single characters only: a substring search would add a
/// string searcher to the wasm.
pub fn fill(text: &str, merchant: &str, amount: &str) -> String {
    let mut out = String::with_capacity(text.len() + merchant.len() + amount.len());
    let mut rest = text;
    while let Some((before, after)) = rest.split_once('{') {
        out.push_str(before);
        let value = match after.split_once('}') {
            Some(("merchant", tail)) => Some((merchant, tail)),
            Some(("amount", tail)) => Some((amount, tail)),
            _ => None,
        };
        match value {
            Some((value, tail)) => {
                out.push_str(value);
                rest = tail;
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// A locale's texts in [`Key::ALL`] order, as `pkg/deshpay-<locale>.json` holds them (a JSON array of strings,
/// followed there by the loader's [`loader_fallback`] text, which the loader takes off).
pub fn table(locale: Locale) -> Vec<&'static str> {
    Key::ALL.iter().map(|k| k.text(locale)).collect()
}

/// What the loader (`www/deshpay.js`) shows in place of the widget when it cannot start, then after a newline
/// the text of its link to the hosted payment page. English is in the loader itself; Bengali and Hindi come last
/// in their texts file (`cargo xtask build`), so an English page does not download them.
pub fn loader_fallback(locale: Locale) -> &'static str {
    match locale {
        Locale::En => {
            "The payment form could not load. Please refresh the page or contact the seller.\nContinue on a secure payment page"
        }
        Locale::Bn => "পেমেন্ট ফর্মটি লোড হয়নি। পেজটি রিফ্রেশ করুন অথবা বিক্রেতার সাথে যোগাযোগ করুন।\nনিরাপদ পেমেন্ট পেজে চালিয়ে যান",
        Locale::Hi => "भुगतान फ़ॉर्म लोड नहीं हो सका। कृपया पेज रीफ़्रेश करें या विक्रेता से संपर्क करें।\nसुरक्षित भुगतान पेज पर जारी रखें",
    }
}

/// The texts in use: a locale, its texts when given (see [`Key::text`]), and the merchant's overrides (a few at
/// most: a list, not a hash map, whose hashing code would weigh more in the wasm than the lookups it speeds up).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Strings {
    locale: Locale,
    /// The locale's texts in [`Key::ALL`] order; empty for the built-in ones.
    table: Vec<String>,
    overrides: Vec<(Key, String)>,
}

impl Strings {
    /// Texts for `locale` with the merchant's overrides by key name. Unknown keys are returned so that the
    /// caller can warn about a typo instead of silently ignoring it.
    pub fn new(locale: Locale, overrides: impl IntoIterator<Item = (String, String)>) -> (Strings, Vec<String>) {
        let mut unknown = Vec::new();
        let mut list: Vec<(Key, String)> = Vec::new();
        for (name, text) in overrides {
            match Key::parse(&name) {
                Some(key) => match list.iter_mut().find(|(k, _)| *k == key) {
                    Some(entry) => entry.1 = text,
                    None => list.push((key, text)),
                },
                None => unknown.push(name),
            }
        }
        (Strings { locale, table: Vec::new(), overrides: list }, unknown)
    }

    /// Uses `table` (one text per key, in [`Key::ALL`] order) for the locale's texts; `false` and no change
    /// when it does not have one text per key (a file from another version of the widget).
    pub fn with_table(&mut self, table: Vec<String>) -> bool {
        let fits = table.len() == Key::ALL.len();
        if fits {
            self.table = table;
        }
        fits
    }

    /// The locale.
    pub fn locale(&self) -> Locale {
        self.locale
    }

    /// The text for a key: the merchant's override, else the locale's text (from the table when given).
    pub fn get(&self, key: Key) -> &str {
        match self.overrides.iter().find(|(k, _)| *k == key) {
            Some((_, text)) => text,
            // `Key` is a fieldless enum declared in `Key::ALL` order.
            None => self.table.get(key as usize).map_or_else(|| key.text(self.locale), String::as_str),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn english_texts_are_the_accessible_names_of_the_design() {
        let en = |k: Key| k.text(Locale::En);
        assert_eq!(en(Key::PayWithBkash), "Pay with bKash");
        assert_eq!(en(Key::PayWithUpi), "Pay with UPI");
        assert_eq!(en(Key::TryAgain), "Try again");
        assert_eq!(en(Key::Success), "Payment successful");
        assert_eq!(en(Key::Failed), "Payment failed");
        assert_eq!(en(Key::Cancelled), "Payment cancelled");
        assert_eq!(en(Key::Expired), "Payment expired");
        assert_eq!(en(Key::Confirming), "Confirming your payment…");
        assert_eq!(en(Key::NoMethod), "No payment method available");
        assert_eq!(en(Key::OtherUpiApp), "Other UPI app");
        assert_eq!(en(Key::WaitingApproval), "Waiting for approval");
        assert_eq!(en(Key::UpiPayOnDevice), "Pay on this device");
        assert_eq!(en(Key::Cancel), "Cancel");
        assert!(en(Key::Unreachable).starts_with("We can't reach the payment service"));
    }

    #[test]
    fn every_key_has_a_distinct_name_and_a_text_in_every_locale() {
        let mut names: Vec<&str> = Key::ALL.iter().map(|k| k.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Key::ALL.len());
        for &key in Key::ALL {
            assert_eq!(Key::parse(key.as_str()), Some(key));
            for locale in Locale::ALL {
                assert!(!key.text(locale).trim().is_empty(), "{key:?} {locale:?}");
            }
            // Bengali and Hindi are real translations, not English left behind.
            assert_ne!(key.text(Locale::Bn), key.text(Locale::En), "{key:?}");
            assert_ne!(key.text(Locale::Hi), key.text(Locale::En), "{key:?}");
        }
    }

    #[test]
    fn the_merchants_name_fills_its_placeholder_in_every_language() {
        assert_eq!(fill("Please contact {merchant}.", "Demo Shop", "৳1.00"), "Please contact Demo Shop.");
        assert_eq!(fill("{merchant} and {merchant}", "A", ""), "A and A");
        assert_eq!(fill("{x} {merchant", "A", ""), "{x} {merchant");
        assert_eq!(fill("no placeholder", "A", ""), "no placeholder");
        assert_eq!(fill("too low for {amount}. {merchant}", "A", "৳১,৪৯৯.০০"), "too low for ৳১,৪৯৯.০০. A");
        let placeholders = |t: &str| (t.matches("{merchant}").count(), t.matches("{amount}").count());
        for &key in Key::ALL {
            let en = placeholders(key.text(Locale::En));
            for locale in [Locale::Bn, Locale::Hi] {
                assert_eq!(placeholders(key.text(locale)), en, "{key:?} {locale:?}");
            }
            // The shop is online: no physical "shop" (দোকান, दुकान) anywhere.
            for locale in Locale::ALL {
                let text = key.text(locale);
                assert!(!text.contains("দোকান") && !text.contains("दुकान") && !text.contains("the shop"), "{key:?}");
            }
        }
        for key in [Key::SessionExpiredBody, Key::SessionCanceledBody, Key::NoMethodBody, Key::ReviewBody] {
            assert!(placeholders(key.text(Locale::En)).0 > 0, "{key:?} names the merchant");
        }
        assert_eq!(placeholders(Key::ReasonBalance.text(Locale::En)).1, 1, "the balance text names the amount");
    }

    #[test]
    fn every_key_is_in_the_typescript_types() {
        let dts = include_str!("../www/deshpay.d.ts");
        let start = dts.find("export type DeshPayStringKey").expect("DeshPayStringKey in deshpay.d.ts");
        let decl = &dts[start..start + dts[start..].find(';').unwrap_or_default()];
        for key in Key::ALL {
            assert!(decl.contains(&format!("'{}'", key.as_str())), "{} is missing from DeshPayStringKey", key.as_str());
        }
    }

    #[test]
    fn overrides_replace_one_text_and_report_unknown_keys() {
        let (s, unknown) = Strings::new(
            Locale::Bn,
            [("try_again".to_string(), "Retry".to_string()), ("pay_with_bkas".to_string(), "x".to_string())],
        );
        assert_eq!(s.get(Key::TryAgain), "Retry");
        assert_eq!(s.get(Key::Failed), "পেমেন্ট ব্যর্থ হয়েছে");
        assert_eq!(unknown, vec!["pay_with_bkas".to_string()]);
        assert_eq!(s.locale(), Locale::Bn);
    }

    #[test]
    fn a_locale_table_gives_the_texts_in_key_order_and_overrides_still_win() {
        assert!(Key::ALL.iter().enumerate().all(|(i, &k)| k as usize == i), "Key::ALL is in declaration order");
        let (mut s, _) = Strings::new(Locale::Bn, [("try_again".to_string(), "Retry".to_string())]);
        let mut table: Vec<String> = table(Locale::Bn).into_iter().map(str::to_owned).collect();
        table[Key::Failed as usize] = "from the table".into();
        assert!(!s.with_table(table[1..].to_vec()), "a table of another length is refused");
        assert_eq!(s.get(Key::Failed), "পেমেন্ট ব্যর্থ হয়েছে");
        assert!(s.with_table(table));
        assert_eq!(s.get(Key::Failed), "from the table");
        assert_eq!(s.get(Key::TryAgain), "Retry");
        assert_eq!(s.get(Key::Cancel), "বাতিল করুন");
    }

    #[test]
    fn locale_comes_from_option_then_page_then_browser() {
        assert_eq!(Locale::pick(Some("hi"), Some("bn"), Some("en-US")), Locale::Hi);
        assert_eq!(Locale::pick(None, Some("bn-BD"), Some("hi")), Locale::Bn);
        assert_eq!(Locale::pick(Some("fr"), Some(""), Some("HI_in")), Locale::Hi);
        assert_eq!(Locale::pick(None, Some("de"), Some("fr")), Locale::En);
        assert_eq!(Locale::pick(None, None, None), Locale::En);
    }
}
