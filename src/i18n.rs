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
        bn: "কীভাবে পেমেন্ট করবেন বেছে নিন",
        hi: "भुगतान का तरीका चुनें"
    }
    /// Label of the amount.
    Amount "amount" {
        en: "Amount",
        bn: "পরিমাণ",
        hi: "राशि"
    }
    /// Label of the merchant's invoice number.
    Invoice "invoice" {
        en: "Invoice",
        bn: "ইনভয়েস",
        hi: "इनवॉइस"
    }
    /// After starting, before the browser leaves for bKash.
    Redirecting "redirecting" {
        en: "Taking you to bKash…",
        bn: "আপনাকে বিকাশে নেওয়া হচ্ছে…",
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
        en: "We're still confirming your payment. This can take a minute; please check again shortly.",
        bn: "আমরা এখনও আপনার পেমেন্ট নিশ্চিত করছি। এতে এক মিনিট লাগতে পারে; একটু পরে আবার দেখুন।",
        hi: "हम अभी भी आपके भुगतान की पुष्टि कर रहे हैं। इसमें एक मिनट लग सकता है; कृपया थोड़ी देर बाद फिर से देखें।"
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
    /// Shown when the provider gave no reason for a failure.
    FailedNoReason "failed_no_reason" {
        en: "The payment was not completed. No money was taken.",
        bn: "পেমেন্ট সম্পন্ন হয়নি। কোনো টাকা কাটা হয়নি।",
        hi: "भुगतान पूरा नहीं हुआ। कोई पैसा नहीं कटा।"
    }
    /// Outcome heading: the customer closed the provider's page.
    Cancelled "cancelled" {
        en: "Payment cancelled",
        bn: "পেমেন্ট বাতিল করা হয়েছে",
        hi: "भुगतान रद्द किया गया"
    }
    /// Below the cancelled heading.
    CancelledBody "cancelled_body" {
        en: "You cancelled the payment. No money was taken.",
        bn: "আপনি পেমেন্ট বাতিল করেছেন। কোনো টাকা কাটা হয়নি।",
        hi: "आपने भुगतान रद्द कर दिया। कोई पैसा नहीं कटा।"
    }
    /// Outcome heading: the attempt ran out of time.
    Expired "expired" {
        en: "Payment expired",
        bn: "পেমেন্টের সময় শেষ",
        hi: "भुगतान की समय-सीमा समाप्त"
    }
    /// Below the expired heading.
    ExpiredBody "expired_body" {
        en: "The payment was not completed in time. No money was taken.",
        bn: "নির্ধারিত সময়ের মধ্যে পেমেন্ট সম্পন্ন হয়নি। কোনো টাকা কাটা হয়নি।",
        hi: "भुगतान समय पर पूरा नहीं हुआ। कोई पैसा नहीं कटा।"
    }
    /// The retry button after failure, cancellation, expiry or errors.
    TryAgain "try_again" {
        en: "Try again",
        bn: "আবার চেষ্টা করুন",
        hi: "फिर से कोशिश करें"
    }
    /// Heading: the whole checkout session expired.
    SessionExpired "session_expired" {
        en: "Checkout expired",
        bn: "চেকআউটের মেয়াদ শেষ",
        hi: "चेकआउट की समय-सीमा समाप्त"
    }
    /// Below the session-expired heading.
    SessionExpiredBody "session_expired_body" {
        en: "This payment link has expired. Please return to the shop to start again.",
        bn: "এই পেমেন্ট লিংকের মেয়াদ শেষ হয়ে গেছে। আবার শুরু করতে দোকানে ফিরে যান।",
        hi: "इस भुगतान लिंक की समय-सीमा समाप्त हो गई है। फिर से शुरू करने के लिए दुकान पर लौटें।"
    }
    /// Heading: the merchant canceled the session.
    SessionCanceled "session_canceled" {
        en: "Checkout canceled",
        bn: "চেকআউট বাতিল",
        hi: "चेकआउट रद्द"
    }
    /// Below the session-canceled heading.
    SessionCanceledBody "session_canceled_body" {
        en: "The shop canceled this payment. Please return to the shop.",
        bn: "দোকান এই পেমেন্টটি বাতিল করেছে। দোকানে ফিরে যান।",
        hi: "दुकान ने यह भुगतान रद्द कर दिया है। कृपया दुकान पर लौटें।"
    }
    /// The session id is unknown to the backend.
    NotFound "not_found" {
        en: "This checkout was not found. Please return to the shop and start again.",
        bn: "এই চেকআউটটি পাওয়া যায়নি। আবার শুরু করতে দোকানে ফিরে যান।",
        hi: "यह चेकआउट नहीं मिला। फिर से शुरू करने के लिए दुकान पर लौटें।"
    }
    /// The backend cannot be reached or answered with a server error.
    Unreachable "unreachable" {
        en: "We can't reach the payment service. Check your connection and try again.",
        bn: "আমরা পেমেন্ট সার্ভিসে পৌঁছাতে পারছি না। আপনার ইন্টারনেট সংযোগ দেখে আবার চেষ্টা করুন।",
        hi: "हम भुगतान सेवा तक नहीं पहुँच पा रहे हैं। अपना कनेक्शन जाँचें और फिर से कोशिश करें।"
    }
    /// bKash did not answer in time.
    ProviderUnavailable "provider_unavailable" {
        en: "bKash is not responding right now. Please try again in a moment.",
        bn: "বিকাশ এই মুহূর্তে সাড়া দিচ্ছে না। একটু পরে আবার চেষ্টা করুন।",
        hi: "bKash अभी जवाब नहीं दे रहा है। कृपया थोड़ी देर बाद फिर से कोशिश करें।"
    }
    /// bKash refused to start; the provider's message follows.
    StartFailed "start_failed" {
        en: "The payment could not be started.",
        bn: "পেমেন্ট শুরু করা যায়নি।",
        hi: "भुगतान शुरू नहीं किया जा सका।"
    }
    /// UPI payments could not be started because Bestin Pay did not answer in time.
    UpiUnavailable "upi_unavailable" {
        en: "UPI payments are not available right now. Please try again in a moment.",
        bn: "এই মুহূর্তে UPI পেমেন্ট করা যাচ্ছে না। একটু পরে আবার চেষ্টা করুন।",
        hi: "UPI भुगतान अभी उपलब्ध नहीं है। कृपया थोड़ी देर बाद फिर से कोशिश करें।"
    }
    /// Status while the customer approves a UPI payment in their app.
    WaitingApproval "waiting_approval" {
        en: "Waiting for approval",
        bn: "অনুমোদনের অপেক্ষায়",
        hi: "स्वीकृति की प्रतीक्षा है"
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
        en: "Choose your app, approve the payment there, then come back here.",
        bn: "আপনার অ্যাপ বেছে নিন, সেখানে পেমেন্ট অনুমোদন করুন, তারপর এখানে ফিরে আসুন।",
        hi: "अपना ऐप चुनें, वहाँ भुगतान स्वीकृत करें, फिर यहाँ लौट आएँ।"
    }
    /// The app button with the generic `upi://pay` link ("Paytm" and "PhonePe" are brand names, not translated).
    OtherUpiApp "upi_other_app" {
        en: "Other UPI app",
        bn: "অন্য UPI অ্যাপ",
        hi: "अन्य UPI ऐप"
    }
    /// Label of the countdown to the payment request's expiry.
    UpiTimeLeft "upi_time_left" {
        en: "Time left to approve",
        bn: "অনুমোদনের জন্য বাকি সময়",
        hi: "स्वीकृति के लिए बचा समय"
    }
    /// Announced (politely, once a minute) while waiting, after the number of minutes: "14 min left to approve".
    UpiMinutesLeft "upi_minutes_left" {
        en: "min left to approve",
        bn: "মিনিট বাকি",
        hi: "मिनट बचे हैं"
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
        bn: "কোনো পেমেন্ট পদ্ধতি উপলব্ধ নেই",
        hi: "कोई भुगतान तरीका उपलब्ध नहीं"
    }
    /// Below the no-method heading.
    NoMethodBody "no_method_body" {
        en: "This checkout offers no payment method that can be used here. Please contact the shop.",
        bn: "এই চেকআউটে এখানে ব্যবহারযোগ্য কোনো পেমেন্ট পদ্ধতি নেই। দোকানের সাথে যোগাযোগ করুন।",
        hi: "इस चेकआउट में यहाँ इस्तेमाल होने वाला कोई भुगतान तरीका नहीं है। कृपया दुकान से संपर्क करें।"
    }
}

impl Key {
    /// Finds a key by its name in the `strings` option.
    pub fn parse(name: &str) -> Option<Key> {
        Key::ALL.iter().copied().find(|k| k.as_str() == name)
    }
}

/// A locale's texts in [`Key::ALL`] order, as `pkg/deshpay-<locale>.json` holds them (a JSON array of strings).
pub fn table(locale: Locale) -> Vec<&'static str> {
    Key::ALL.iter().map(|k| k.text(locale)).collect()
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
