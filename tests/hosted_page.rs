//! The hosted payment page `GET {backend}/pay/{id}` in real headless Chromium: payment links paid by keyboard
//! in the in-app browsers of Facebook, Instagram and WhatsApp (as far as Chromium with their user agents can
//! show them), UPI app buttons there, and the loader's fallback link to the page when WebAssembly cannot start.
//! Screenshots land in artifacts/screenshots/page-*.png.
//!
//! Run with `cargo xtask build` (pkg/ must be fresh) then `cargo test -p deshpay-e2e --test hosted_page`.

use anyhow::{Context, Result, bail};
use deshpay_e2e::{API_KEY, Browser, Device, Stack, WALLET};
use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(20);

/// In-app browsers as their apps announce them (Android WebViews, and Instagram on an iPhone).
const IN_APP: [(&str, &str); 3] = [
    (
        "facebook",
        "Mozilla/5.0 (Linux; Android 14; Pixel 7 Build/UQ1A.240205.004; wv) AppleWebKit/537.36 (KHTML, like Gecko) \
         Version/4.0 Chrome/120.0.6099.230 Mobile Safari/537.36 [FB_IAB/FB4A;FBAV/447.0.0.40.109;]",
    ),
    (
        "instagram",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) \
         Mobile/15E148 Instagram 312.0.0.22.114 (iPhone15,2; iOS 17_2; en_US; en; scale=3.00; 1179x2556; 548339486)",
    ),
    (
        "whatsapp",
        "Mozilla/5.0 (Linux; Android 14; Pixel 7 Build/UQ1A.240205.004; wv) AppleWebKit/537.36 (KHTML, like Gecko) \
         Version/4.0 Chrome/120.0.6099.230 Mobile Safari/537.36 WhatsApp/2.24.1.6",
    ),
];

/// The merchant's server creates a payment link (`link: true`); returns the session.
async fn create_link(stack: &Stack, body: Value) -> Result<Value> {
    let mut request = json!({"invoice": format!("LINK-{}", nanos()), "link": true});
    for (k, v) in body.as_object().context("an object")? {
        request[k] = v.clone();
    }
    let r = reqwest::Client::new()
        .post(format!("{}/v1/sessions", stack.backend))
        .bearer_auth(API_KEY)
        .json(&request)
        .send()
        .await?;
    let status = r.status();
    let session: Value = r.json().await?;
    if status != 201 {
        bail!("POST /v1/sessions: {status} {session}");
    }
    Ok(session)
}

fn nanos() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}

/// The page's own text (outside the widget).
async fn page_text(browser: &Browser) -> Result<String> {
    let v = browser.client.execute("return document.body ? document.body.innerText : '';", vec![]).await?;
    Ok(v.as_str().unwrap_or_default().to_owned())
}

async fn wait_for_page_text(browser: &Browser, text: &str) -> Result<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let now = page_text(browser).await?;
        if now.contains(text) {
            return Ok(now);
        }
        if Instant::now() > deadline {
            bail!("the page never showed {text:?}; it shows {now:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The accessible name of the focused element, through shadow roots (its aria-label, else its text).
async fn focused_name(browser: &Browser) -> Result<String> {
    let v = browser
        .client
        .execute(
            "let a = document.activeElement; while (a && a.shadowRoot && a.shadowRoot.activeElement) \
             a = a.shadowRoot.activeElement; \
             return a ? (a.getAttribute('aria-label') || a.textContent || '').trim() + '|' + a.tagName : '';",
            vec![],
        )
        .await?;
    Ok(v.as_str().unwrap_or_default().to_owned())
}

/// Presses a key as the keyboard does (to whatever has focus).
async fn press(browser: &Browser, key: Key) -> Result<()> {
    let key: char = key.into();
    let actions =
        KeyActions::new("keyboard".into()).then(KeyAction::Down { value: key }).then(KeyAction::Up { value: key });
    browser.client.perform_actions(actions).await?;
    Ok(())
}

/// Tabs from the top of the page to the button named `name` (at most 20 presses); fails if it never gets focus.
async fn tab_to(browser: &Browser, name: &str) -> Result<()> {
    for _ in 0..20 {
        press(browser, Key::Tab).await?;
        let focused = focused_name(browser).await?;
        if focused == format!("{name}|BUTTON") {
            return Ok(());
        }
    }
    bail!("Tab never reached the {name:?} button; focus is on {:?}", focused_name(browser).await?)
}

/// Tabs to the link named `name` (at most 20 presses).
async fn tab_to_link(browser: &Browser, name: &str) -> Result<()> {
    for _ in 0..20 {
        press(browser, Key::Tab).await?;
        if focused_name(browser).await? == format!("{name}|A") {
            return Ok(());
        }
    }
    bail!("Tab never reached the {name:?} link; focus is on {:?}", focused_name(browser).await?)
}

async fn assert_no_serious_violations(browser: &Browser, what: &str) -> Result<()> {
    let violations = browser.axe_serious_violations().await?;
    assert!(violations.is_empty(), "{what}: {violations:?}");
    Ok(())
}

#[tokio::test]
async fn a_payment_link_is_paid_by_keyboard_in_the_facebook_instagram_and_whatsapp_browsers() -> Result<()> {
    let stack = Stack::start().await?;
    // One wallet per app: bKash refuses the same amount from the same wallet twice in a short while (2029).
    let wallets = [WALLET, "01929918378", "01770618576"];
    for ((app, user_agent), wallet) in IN_APP.into_iter().zip(wallets) {
        let link = create_link(
            &stack,
            json!({"amount": "250.00", "currency": "BDT", "methods": ["bkash"], "theme": "bkash", "locale": "en",
                   "success_url": format!("{}/", stack.shop)}),
        )
        .await?;
        let id = link["id"].as_str().context("id")?.to_owned();
        let url = link["url"].as_str().context("url")?.to_owned();
        assert_eq!(url, format!("{}/pay/{id}", stack.backend));

        let browser = Browser::start_as(user_agent).await?;
        browser.goto(&url).await?;
        let ua = browser.client.execute("return navigator.userAgent;", vec![]).await?;
        assert_eq!(ua.as_str(), Some(user_agent), "{app}: Chromium speaks as the app's browser");
        let text = browser.wait_for_text("Pay with bKash", WAIT).await?;
        assert!(text.contains("250.00"), "{app}: the amount: {text}");
        assert!(page_text(&browser).await?.contains("Pay Deshi Bazaar"), "{app}: the page's heading");
        browser.screenshot(&format!("page-01-open-{app}")).await?;
        assert_no_serious_violations(&browser, &format!("{app}: open page")).await?;

        // Keyboard only: Tab to the pay button, Enter.
        tab_to(&browser, "Pay with bKash").await?;
        press(&browser, Key::Enter).await?;
        browser.wait_for_url(&stack.sandbox.url()).await?;
        browser.pay_on_bkash_page(wallet, "123456", "12121").await?;

        // bKash brings the customer back to the link's page, which shows the receipt and leads to success_url.
        let back = browser.wait_for_url(&format!("{url}?")).await?;
        assert!(back.contains("deshpay_status=paid"), "{app}: {back}");
        let text = wait_for_page_text(&browser, "Payment successful").await?;
        let session = stack.session(&id).await?;
        assert_eq!(session["status"], "paid", "{app}");
        let trx = session["payment"]["trx_id"].as_str().context("trx_id")?;
        assert!(text.contains(trx), "{app}: the receipt shows {trx}: {text}");
        assert!(text.contains("Continue to Deshi Bazaar"), "{app}: {text}");
        browser.screenshot(&format!("page-02-paid-{app}")).await?;
        assert_no_serious_violations(&browser, &format!("{app}: receipt")).await?;
        stack.wait_for_webhook("session.paid", &id).await?;
        // The way back to the merchant is a link, taken with the keyboard (never a redirect on a timer).
        tab_to_link(&browser, "Continue to Deshi Bazaar").await?;
        press(&browser, Key::Enter).await?;
        browser.wait_for_url(&format!("{}/", stack.shop)).await?;
    }
    Ok(())
}

#[tokio::test]
async fn a_upi_link_opens_the_upi_apps_in_an_in_app_browser_and_then_offers_the_success_url() -> Result<()> {
    let stack = Stack::start().await?;
    let (app, user_agent) = IN_APP[2];
    let link = create_link(
        &stack,
        json!({"amount": "101.00", "currency": "INR", "methods": ["upi"], "success_url": format!("{}/", stack.shop)}),
    )
    .await?;
    let id = link["id"].as_str().context("id")?.to_owned();
    let browser = Browser::start_as(user_agent).await?;
    browser.goto(link["url"].as_str().context("url")?).await?;
    browser.wait_for_text("Pay with UPI", WAIT).await?;
    tab_to(&browser, "Pay with UPI").await?;
    press(&browser, Key::Enter).await?;
    browser.wait_for_text("Other UPI app", WAIT).await?;
    let links = browser.widget_links().await?;
    let names: Vec<&str> = links.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["Paytm", "PhonePe", "Other UPI app"], "{app}: the app buttons on a phone");
    assert!(links[0].1.starts_with("paytmmp://"), "{links:?}");
    assert!(links[1].1.starts_with("phonepe://"), "{links:?}");
    assert!(links[2].1.starts_with("upi://pay?"), "{links:?}");
    browser.screenshot("page-03-upi-apps-whatsapp").await?;
    assert_no_serious_violations(&browser, "UPI apps on the page").await?;

    // The customer's UPI app approves (the sandbox's approval page, in a second tab).
    let page = browser.client.window().await?;
    let tab = browser.client.new_window(true).await?;
    browser.client.switch_to_window(tab.handle).await?;
    browser.goto(&stack.upi_approval_url(&links[2].1)?).await?;
    browser.click_page_button("Approve").await?;
    browser.client.close_window().await?;
    browser.client.switch_to_window(page).await?;

    browser.wait_for_text("Payment successful", WAIT).await?;
    // The page's own script shows the way on.
    wait_for_page_text(&browser, "Continue to Deshi Bazaar").await?;
    browser.screenshot("page-04-upi-paid-whatsapp").await?;
    assert_no_serious_violations(&browser, "UPI paid on the page").await?;
    assert_eq!(stack.session(&id).await?["status"], "paid");
    stack.wait_for_webhook("session.paid", &id).await?;
    tab_to_link(&browser, "Continue to Deshi Bazaar").await?;
    press(&browser, Key::Enter).await?;
    browser.wait_for_url(&format!("{}/", stack.shop)).await?;
    Ok(())
}

#[tokio::test]
async fn without_webassembly_the_loader_links_to_the_hosted_page_which_takes_the_payment() -> Result<()> {
    let stack = Stack::start().await?;
    let browser = Browser::start(Device::Desktop).await?;
    // WebAssembly is gone before any script of any page runs (as in some in-app and locked-down browsers).
    let added = browser
        .cdp("Page.addScriptToEvaluateOnNewDocument", json!({"source": "delete globalThis.WebAssembly;"}))
        .await?;
    let script_id = added["value"]["identifier"].as_str().context("script identifier")?.to_owned();
    let session = browser.buy(&stack, "tea", "light", "en").await?;
    let text = browser.wait_for_text("could not load", WAIT).await?;
    assert!(!text.contains("Pay with bKash"), "{text}");
    let links = browser.widget_links().await?;
    let page = format!("{}/pay/{session}", stack.backend);
    assert_eq!(links, [("Continue on a secure payment page".to_owned(), page.clone())]);
    browser.screenshot("page-05-fallback-link").await?;
    assert_no_serious_violations(&browser, "fallback").await?;

    // Keyboard: the link is reachable and followed with Enter.
    tab_to_link(&browser, "Continue on a secure payment page").await?;
    press(&browser, Key::Enter).await?;
    browser.wait_for_url(&page).await?;
    // Still no WebAssembly here: the page says so, without a link to itself.
    let text = browser.wait_for_text("could not load", WAIT).await?;
    assert!(!text.contains("Continue on a secure payment page"), "no link to the page it is on: {text}");
    assert!(browser.widget_links().await?.is_empty());

    // In a browser that has WebAssembly (the customer opened the link elsewhere), the page takes the payment.
    browser.cdp("Page.removeScriptToEvaluateOnNewDocument", json!({"identifier": script_id})).await?;
    browser.goto(&page).await?;
    browser.wait_for_text("Pay with bKash", WAIT).await?;
    browser.click_widget_button("Pay with bKash").await?;
    browser.pay_on_bkash_page(WALLET, "123456", "12121").await?;
    // This session has the shop's return URL: bKash brings the customer back to the shop, as the merchant asked.
    browser.wait_for_url(&format!("{}/return", stack.shop)).await?;
    assert_eq!(stack.session(&session).await?["status"], "paid");
    // And the page now shows the receipt.
    browser.goto(&page).await?;
    wait_for_page_text(&browser, "Payment successful").await?;
    Ok(())
}

#[tokio::test]
async fn an_expired_link_and_an_unknown_one_get_a_clear_page() -> Result<()> {
    let stack = Stack::start().await?;
    let browser = Browser::start(Device::Phone).await?;
    browser.goto(&format!("{}/pay/cs_aaaaaaaaaaaaaaaaaaaaaaaa", stack.backend)).await?;
    let text = wait_for_page_text(&browser, "This payment link was not found").await?;
    assert!(!text.to_lowercase().contains("error:") && !text.contains("panicked"), "{text}");
    browser.screenshot("page-06-not-found").await?;
    assert_no_serious_violations(&browser, "not found").await?;

    let link = create_link(
        &stack,
        json!({"amount": "250.00", "currency": "BDT", "methods": ["bkash"], "locale": "bn", "theme": "dark",
               "expires_in": 60}),
    )
    .await?;
    // The backend's clock is the system's: wait out the minute rather than move it.
    tokio::time::sleep(Duration::from_secs(61)).await;
    browser.goto(link["url"].as_str().context("url")?).await?;
    wait_for_page_text(&browser, "পেমেন্ট লিংকের মেয়াদ শেষ").await?;
    browser.screenshot("page-07-expired-bn-dark").await?;
    assert_no_serious_violations(&browser, "expired").await?;
    Ok(())
}
