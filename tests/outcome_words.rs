//! The outcome screens in Bengali and Hindi, as a customer sees them in Chromium: the theme gallery's previews
//! (no backend) of the failed, review, still-confirming and expired states, and a real bKash payment refused for
//! insufficient balance (shop -> widget -> backend -> sandbox), told with the amount in each language. No English
//! reaches the customer except brand names and the merchant's own content, and nothing invites a second payment
//! while money may have moved; every preset theme passes axe. Screenshots:
//! artifacts/screenshots/words-<state>-<locale>.png and insufficient-balance-<locale>.png.

use anyhow::{Result, bail};
use deshpay_e2e::{Browser, Device, Stack};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

/// Words allowed in Latin letters: brand names, and the demo merchant's name (merchant content).
const LATIN_ALLOWED: [&str; 6] = ["bKash", "UPI", "PIN", "Demo", "Tea", "House"];

/// The text of the first widget's screen body (heading, paragraph, buttons), without the order summary.
async fn body_text(browser: &Browser) -> Result<String> {
    let v = browser
        .client
        .execute(
            "const h = document.querySelector('[data-deshpay-host]'); \
             const b = h && h.shadowRoot && h.shadowRoot.querySelector('.dp-body'); return b ? b.textContent : '';",
            vec![],
        )
        .await?;
    Ok(v.as_str().unwrap_or_default().to_owned())
}

async fn wait_for_body(browser: &Browser, wanted: &str) -> Result<String> {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let text = body_text(browser).await?;
        if text.contains(wanted) {
            return Ok(text);
        }
        if std::time::Instant::now() > deadline {
            bail!("the widget never showed {wanted:?}; it shows {text:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn latin_words(text: &str) -> Vec<&str> {
    text.split(|c: char| !c.is_ascii_alphabetic()).filter(|w| !w.is_empty() && !LATIN_ALLOWED.contains(w)).collect()
}

#[tokio::test]
async fn outcomes_in_bengali_and_hindi_speak_about_money_in_the_customers_language() -> Result<()> {
    let stack = Stack::start().await?;
    let browser = Browser::start(Device::Desktop).await?;
    // (state, locale, a phrase of its paragraph, its button or None)
    let cases = [
        ("failed", "bn", "কোনো টাকা কাটা হয়নি", Some("আবার চেষ্টা করুন")),
        ("review", "bn", "আবার পেমেন্ট করবেন না", None),
        ("still-confirming", "bn", "আবার পেমেন্ট করবেন না", Some("স্ট্যাটাস দেখুন")),
        ("expired", "bn", "কোনো টাকা কাটা হয়নি", Some("আবার চেষ্টা করুন")),
        ("failed", "hi", "कोई पैसा नहीं कटा है", Some("फिर से कोशिश करें")),
        ("review", "hi", "दोबारा भुगतान न करें", None),
        ("still-confirming", "hi", "दोबारा भुगतान न करें", Some("स्टेटस देखें")),
        ("expired", "hi", "कोई पैसा नहीं कटा है", Some("फिर से कोशिश करें")),
    ];
    for (state, locale, phrase, button) in cases {
        browser.goto(&format!("{}/gallery.html?state={state}&locale={locale}", stack.shop)).await?;
        let text = wait_for_body(&browser, phrase).await?;
        let english = latin_words(&text);
        assert!(english.is_empty(), "{state}/{locale} shows English {english:?}: {text}");
        match button {
            Some(label) => assert!(text.contains(label), "{state}/{locale}: {text}"),
            None => {
                let buttons = browser
                    .client
                    .execute(
                        "const h = document.querySelector('[data-deshpay-host]'); \
                         return h.shadowRoot.querySelectorAll('.dp-body button').length;",
                        vec![],
                    )
                    .await?;
                assert_eq!(buttons.as_u64(), Some(0), "{state}/{locale}: no button at all");
            }
        }
        if state == "review" {
            assert!(text.contains("Demo Tea House"), "the merchant is named: {text}");
        }
        browser.screenshot(&format!("words-{state}-{locale}")).await?;
        let violations = browser.axe_serious_violations().await?;
        assert!(violations.is_empty(), "{state}/{locale}: {violations:?}");
    }
    Ok(())
}

/// The sandbox's wallet whose payments bKash refuses with 2023 "Insufficient Balance".
const LOW_BALANCE_WALLET: &str = "01823074817";

#[tokio::test]
async fn insufficient_balance_is_told_with_the_amount_in_english_bengali_and_hindi() -> Result<()> {
    let stack = Stack::start().await?;
    let browser = Browser::start(Device::Desktop).await?;
    // (locale, the bKash button, the paragraph after bKash refused the ৳1,499.00 scarf, the retry button)
    let cases = [
        (
            "en",
            "Pay with bKash",
            "Your bKash balance is too low for ৳1,499.00. No money was taken. Add money or use another bKash account.",
            "Try again",
        ),
        (
            "bn",
            "বিকাশ দিয়ে পেমেন্ট করুন",
            "আপনার বিকাশ অ্যাকাউন্টে ৳১,৪৯৯.০০ পেমেন্টের জন্য যথেষ্ট ব্যালেন্স নেই। কোনো টাকা কাটা হয়নি। টাকা যোগ করুন \
             অথবা অন্য বিকাশ অ্যাকাউন্ট দিয়ে পেমেন্ট করুন।",
            "আবার চেষ্টা করুন",
        ),
        (
            "hi",
            "bKash से भुगतान करें",
            "आपके bKash खाते में ৳1,499.00 के भुगतान के लिए पर्याप्त बैलेंस नहीं है। कोई पैसा नहीं कटा है। खाते में पैसे \
             डालें या किसी दूसरे bKash खाते से भुगतान करें।",
            "फिर से कोशिश करें",
        ),
    ];
    for (locale, pay, paragraph, retry) in cases {
        let session = browser.buy(&stack, "jamdani", "bkash", locale).await?;
        browser.click_widget_button(pay).await?;
        browser.wait_for_url(&format!("{}/redirect/tokenized/", stack.sandbox.url())).await?;
        browser.pay_on_bkash_page(LOW_BALANCE_WALLET, "123456", "12121").await?;
        browser.wait_for_url(&format!("{}/return", stack.shop)).await?;
        let text = wait_for_body(&browser, paragraph).await?;
        let shown = browser.in_widget("[data-testid=deshpay-reason]").await?.text().await?;
        assert_eq!(shown, paragraph, "{locale}");
        assert!(text.contains(retry), "{locale}: {text}");
        if locale != "en" {
            let english = latin_words(&text);
            assert!(english.is_empty(), "{locale} shows English {english:?}: {text}");
        }
        let failure = browser
            .client
            .execute("return (window.deshpayEvents || []).find(e => e.type === 'deshpay:failure') || null;", vec![])
            .await?;
        assert_eq!(failure["detail"]["reason"], "insufficient_balance", "{locale}: {failure}");
        // bKash's own words are the merchant's: in the merchant API, never on the customer's screen.
        let attempt = &stack.session(&session).await?["attempts"][0];
        assert_eq!(attempt["code"], "2023");
        assert_eq!(attempt["message"], "Insufficient Balance");
        assert!(!text.contains("Insufficient Balance"), "{locale}: {text}");
        browser.screenshot(&format!("insufficient-balance-{locale}")).await?;
        let violations = browser.axe_serious_violations().await?;
        assert!(violations.is_empty(), "{locale}: {violations:?}");
    }
    Ok(())
}
