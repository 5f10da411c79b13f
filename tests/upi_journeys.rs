//! UPI journeys in real headless Chromium: shop (INR product "kurta") -> widget -> backend -> Bestin Pay sandbox.
//! The customer's UPI app is the sandbox's approval page, opened in a second tab for the payin's deep link; the
//! shop tab learns the outcome live (server-sent events), without a reload. Screenshots land in
//! artifacts/screenshots/upi-*.png.
//!
//! Run with `cargo xtask build` (pkg/ must be fresh) then `cargo test -p deshpay-e2e --test upi_journeys`.

use anyhow::{Context, Result};
use deshpay_e2e::{Browser, Device, Stack};
use serde_json::{Value, json};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

async fn events(browser: &Browser) -> Result<Vec<Value>> {
    let v = browser.client.execute("return window.deshpayEvents || [];", vec![]).await?;
    Ok(v.as_array().cloned().unwrap_or_default())
}

async fn event(browser: &Browser, name: &str) -> Result<Option<Value>> {
    Ok(events(browser).await?.into_iter().find(|e| e["type"] == name))
}

/// Marks the page so that a test can tell it was not reloaded.
async fn mark_page(browser: &Browser) -> Result<()> {
    browser.client.execute("window.__upiMark = 'still here';", vec![]).await?;
    Ok(())
}

async fn page_was_not_reloaded(browser: &Browser) -> Result<bool> {
    Ok(browser.client.execute("return window.__upiMark === 'still here';", vec![]).await? == json!(true))
}

/// Buys the kurta and starts paying with UPI (in English or Hindi); returns the session id once the widget waits for approval.
async fn start_upi(browser: &Browser, stack: &Stack, theme: &str, locale: &str) -> Result<String> {
    let session = browser.buy(stack, "kurta", theme, locale).await?;
    let pay = if locale == "hi" { "UPI से भुगतान करें" } else { "Pay with UPI" };
    browser.click_widget_button(pay).await?;
    browser.wait_for_text("₹", WAIT).await?;
    Ok(session)
}

/// The payin the widget shows: the backend returns the pending one again.
async fn pending_payin(stack: &Stack, session: &str) -> Result<Value> {
    stack.start_upi(session).await
}

/// Bestin's trx id (`tr=`) in a `upi://pay` link.
fn trx_id(link: &str) -> Result<String> {
    let tail = link.split("tr=").nth(1).context("tr= in the link")?;
    Ok(tail.split('&').next().unwrap_or_default().to_owned())
}

/// Plays the customer's UPI app in a second tab: opens the approval page for `link`, presses `button`
/// ("Approve" or "Decline"), closes the tab and comes back to the shop's tab.
async fn decide_in_second_tab(browser: &Browser, stack: &Stack, link: &str, button: &str, shot: &str) -> Result<()> {
    let shop = browser.client.window().await?;
    let tab = browser.client.new_window(true).await?;
    browser.client.switch_to_window(tab.handle).await?;
    browser.goto(&stack.upi_approval_url(link)?).await?;
    browser.screenshot(shot).await?;
    browser.click_page_button(button).await?;
    browser.wait_for_url(&format!("{}/upi/approve/", stack.sandbox.url())).await?;
    browser.client.close_window().await?;
    browser.client.switch_to_window(shop).await?;
    Ok(())
}

async fn assert_no_serious_violations(browser: &Browser, what: &str) -> Result<()> {
    let violations = browser.axe_serious_violations().await?;
    assert!(violations.is_empty(), "{what}: {violations:?}");
    Ok(())
}

#[tokio::test]
async fn desktop_customer_scans_the_qr_code_approves_and_sees_the_receipt_without_a_reload() -> Result<()> {
    let stack = Stack::start().await?;
    let browser = Browser::start(Device::Desktop).await?;
    let session = start_upi(&browser, &stack, "light", "en").await?;
    let text = browser.wait_for_text("Waiting for approval", WAIT).await?;
    assert!(text.contains("Scan with any UPI app on your phone"), "{text}");
    assert!(text.contains("101.00"), "the amount is shown: {text}");
    let qr = browser.in_widget("svg[role=img]").await?;
    assert_eq!(qr.attr("aria-label").await?.as_deref(), Some("QR code for the UPI payment"));
    let countdown = browser.in_widget("[role=timer]").await?.text().await?;
    assert!(countdown.starts_with("15:00") || countdown.starts_with("14:"), "counts down from 15 minutes: {countdown}");
    mark_page(&browser).await?;
    browser.screenshot("upi-01-qr-light").await?;
    assert_no_serious_violations(&browser, "QR state").await?;

    // The app buttons are behind "Pay on this device", with exactly the backend's links.
    let payin = pending_payin(&stack, &session).await?;
    let link = payin["qr"].as_str().context("qr")?.to_owned();
    assert!(link.starts_with("upi://pay?"), "{link}");
    assert_eq!(payin["links"]["upi"], link.as_str());
    // The widget draws the QR code the backend computed for that link.
    let drawn = browser.in_widget("svg[role=img] path").await?.attr("d").await?;
    assert_eq!(drawn.as_deref(), payin["qr_svg"]["path"].as_str(), "the backend's QR code");
    browser.click_widget_button("Pay on this device").await?;
    let links = browser.widget_links().await?;
    let expected = [("Paytm", &payin["links"]["paytm"]), ("PhonePe", &payin["links"]["phonepe"])];
    for (name, href) in expected {
        assert!(links.iter().any(|(n, h)| n == name && href == h.as_str()), "{name}: {links:?}");
    }
    assert!(links.iter().any(|(n, h)| n == "Other UPI app" && *h == link), "{links:?}");
    browser.screenshot("upi-02-pay-on-this-device").await?;
    assert_no_serious_violations(&browser, "app buttons expanded").await?;

    decide_in_second_tab(&browser, &stack, &link, "Approve", "upi-03-approval-page").await?;
    let text = browser.wait_for_text("Payment successful", WAIT).await?;
    assert!(page_was_not_reloaded(&browser).await?, "the outcome arrived live, without a reload");
    let s = stack.session(&session).await?;
    assert_eq!(s["status"], "paid");
    assert_eq!(s["payment"]["method"], "upi");
    let trx = s["payment"]["trx_id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(trx, trx_id(&link)?, "the paying payin is the one in the QR code");
    assert!(text.contains(&trx), "the receipt shows {trx}: {text}");
    assert_eq!(browser.in_widget("[data-testid=deshpay-trx-id]").await?.text().await?, trx);
    let success = event(&browser, "deshpay:success").await?.context("deshpay:success fired")?;
    assert_eq!(success["detail"]["session"], session.as_str());
    assert_eq!(success["detail"]["method"], "upi");
    assert_eq!(success["detail"]["trx_id"], trx.as_str());
    let status = browser.in_widget("[role=status]").await?.text().await?;
    assert!(status.contains("Payment successful"), "announced: {status}");
    browser.screenshot("upi-04-success").await?;
    assert_no_serious_violations(&browser, "success").await?;
    Ok(())
}

#[tokio::test]
async fn declining_in_the_app_shows_payment_failed_and_try_again_starts_a_new_payin() -> Result<()> {
    let stack = Stack::start().await?;
    let browser = Browser::start(Device::Desktop).await?;
    let session = start_upi(&browser, &stack, "dark", "en").await?;
    browser.wait_for_text("Waiting for approval", WAIT).await?;
    browser.screenshot("upi-05-qr-dark").await?;
    assert_no_serious_violations(&browser, "QR state, dark").await?;
    mark_page(&browser).await?;
    let first = pending_payin(&stack, &session).await?["qr"].as_str().context("qr")?.to_owned();

    decide_in_second_tab(&browser, &stack, &first, "Decline", "upi-06-approval-page-decline").await?;
    browser.wait_for_text("Payment failed", WAIT).await?;
    assert!(page_was_not_reloaded(&browser).await?);
    let reason = browser.in_widget("[data-testid=deshpay-reason]").await?.text().await?;
    assert!(reason.contains("If money was taken, it will return to your account"), "{reason}");
    let failure = event(&browser, "deshpay:failure").await?.context("deshpay:failure fired")?;
    assert_eq!(failure["detail"]["method"], "upi");
    browser.screenshot("upi-07-failed").await?;
    assert_no_serious_violations(&browser, "failed").await?;

    browser.click_widget_button("Try again").await?;
    browser.click_widget_button("Pay with UPI").await?;
    browser.wait_for_text("Waiting for approval", WAIT).await?;
    let second = pending_payin(&stack, &session).await?["qr"].as_str().context("qr")?.to_owned();
    assert_ne!(trx_id(&second)?, trx_id(&first)?, "a new payin");
    decide_in_second_tab(&browser, &stack, &second, "Approve", "upi-08-approval-page-retry").await?;
    browser.wait_for_text("Payment successful", WAIT).await?;
    assert_eq!(stack.session(&session).await?["status"], "paid");
    Ok(())
}

#[tokio::test]
async fn an_unanswered_payin_expires_and_offers_try_again() -> Result<()> {
    let stack = Stack::start().await?;
    let browser = Browser::start(Device::Desktop).await?;
    let session = start_upi(&browser, &stack, "high-contrast", "en").await?;
    browser.wait_for_text("Waiting for approval", WAIT).await?;
    browser.screenshot("upi-09-qr-high-contrast").await?;
    assert_no_serious_violations(&browser, "QR state, high contrast").await?;
    let link = pending_payin(&stack, &session).await?["qr"].as_str().context("qr")?.to_owned();

    stack.sandbox_post("/__sandbox/clock/advance", json!({"seconds": 901})).await?;
    let text = browser.wait_for_text("Payment expired", WAIT).await?;
    assert!(text.contains("Try again"), "{text}");
    let failure = event(&browser, "deshpay:failure").await?.context("deshpay:failure fired")?;
    assert_eq!(failure["detail"]["reason"], "expired");
    let payin = stack.sandbox_get(&format!("/__sandbox/bestin/payins/{}", trx_id(&link)?)).await?;
    assert_eq!(payin["status"], "expired");
    browser.screenshot("upi-10-expired").await?;

    // The backend still talks to Bestin after the clock moved: a new payin starts.
    browser.click_widget_button("Try again").await?;
    browser.click_widget_button("Pay with UPI").await?;
    browser.wait_for_text("Waiting for approval", WAIT).await?;
    Ok(())
}

#[tokio::test]
async fn cancel_shows_payment_cancelled_and_cancels_the_payin() -> Result<()> {
    let stack = Stack::start().await?;
    let browser = Browser::start(Device::Desktop).await?;
    let session = start_upi(&browser, &stack, "bkash", "hi").await?;
    browser.wait_for_text("आपके UPI ऐप में भुगतान का इंतज़ार है", WAIT).await?;
    browser.screenshot("upi-11-qr-hindi").await?;
    let link = pending_payin(&stack, &session).await?["qr"].as_str().context("qr")?.to_owned();

    browser.click_widget_button("रद्द करें").await?;
    let text = browser.wait_for_text("भुगतान रद्द हो गया", WAIT).await?;
    assert!(text.contains("फिर से कोशिश करें"), "Try again: {text}");
    let cancel = event(&browser, "deshpay:cancel").await?.context("deshpay:cancel fired")?;
    assert_eq!(cancel["detail"]["method"], "upi");
    assert_eq!(events(&browser).await?.iter().filter(|e| e["type"] == "deshpay:cancel").count(), 1, "once");
    let payin = stack.sandbox_get(&format!("/__sandbox/bestin/payins/{}", trx_id(&link)?)).await?;
    assert_eq!(payin["status"], "canceled", "{payin}");
    assert_eq!(stack.session(&session).await?["status"], "open");
    browser.screenshot("upi-12-cancelled").await?;
    Ok(())
}

#[tokio::test]
async fn english_cancel_is_the_documented_button() -> Result<()> {
    let stack = Stack::start().await?;
    let browser = Browser::start(Device::Desktop).await?;
    start_upi(&browser, &stack, "light", "en").await?;
    browser.wait_for_text("Waiting for approval", WAIT).await?;
    browser.click_widget_button("Cancel").await?;
    browser.wait_for_text("Payment cancelled", WAIT).await?;
    assert!(event(&browser, "deshpay:cancel").await?.is_some());
    browser.click_widget_button("Try again").await?;
    browser.wait_for_text("Pay with UPI", WAIT).await?;
    Ok(())
}

#[tokio::test]
async fn a_phone_shows_the_three_app_buttons_with_the_payins_links() -> Result<()> {
    let stack = Stack::start().await?;
    let browser = Browser::start(Device::Phone).await?;
    let session = start_upi(&browser, &stack, "light", "en").await?;
    browser.wait_for_text("Waiting for approval", WAIT).await?;
    assert!(browser.in_widget("svg[role=img]").await.is_err(), "no QR code on a phone");
    let links = browser.widget_links().await?;
    let names: Vec<&str> = links.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["Paytm", "PhonePe", "Other UPI app"]);

    // The payin's links as Bestin Pay (the sandbox) made them, less the transaction note that carries our
    // secret req_id (`tn`, and the `note` inside PhonePe's data): payee, amount and reference are unchanged.
    let upi = &links[2].1;
    let payin = stack.sandbox_get(&format!("/__sandbox/bestin/payins/{}", trx_id(upi)?)).await?;
    let without_tn = |link: &str| link.split('&').filter(|p| !p.starts_with("tn=")).collect::<Vec<_>>().join("&");
    assert_eq!(links[0].1, without_tn(payin["links"]["paytm"].as_str().context("paytm link")?));
    assert_eq!(*upi, without_tn(payin["links"]["upi"].as_str().context("upi link")?));
    assert!(links[1].1.starts_with("phonepe://native?data=") && links[1].1.ends_with("&id=p2ppayment"), "{links:?}");
    assert!(links.iter().all(|(_, l)| !l.contains("tn=")), "{links:?}");
    assert!(links[0].1.starts_with("paytmmp://"), "{links:?}");
    let backend = pending_payin(&stack, &session).await?;
    let shown: Vec<&str> = links.iter().map(|(_, l)| l.as_str()).collect();
    let given = [&backend["links"]["paytm"], &backend["links"]["phonepe"], &backend["links"]["upi"]];
    assert_eq!(shown, given.map(|v| v.as_str().unwrap_or_default()), "the widget shows the backend's links");
    browser.screenshot("upi-13-phone-apps").await?;
    assert_no_serious_violations(&browser, "waiting state, phone").await?;

    // The customer approves in PhonePe (its link on the approval page) and comes back.
    mark_page(&browser).await?;
    decide_in_second_tab(&browser, &stack, &links[1].1, "Approve", "upi-14-phone-approval-page").await?;
    browser.wait_for_text("Payment successful", WAIT).await?;
    assert!(page_was_not_reloaded(&browser).await?);
    browser.screenshot("upi-15-phone-success").await?;
    Ok(())
}

/// How many plain GETs of the session the page made (resource timing; the event stream is another URL).
async fn session_reads(browser: &Browser, stack: &Stack, session: &str) -> Result<usize> {
    let url = format!("{}/v1/checkout/{session}", stack.backend);
    let v = browser
        .client
        .execute(
            "return performance.getEntriesByType('resource').filter(e => e.name === arguments[0]).length;",
            vec![json!(url)],
        )
        .await?;
    Ok(v.as_u64().unwrap_or_default() as usize)
}

#[tokio::test]
async fn coming_back_to_the_page_re_checks_the_status_once() -> Result<()> {
    let stack = Stack::start().await?;
    let browser = Browser::start(Device::Desktop).await?;
    let session = start_upi(&browser, &stack, "light", "en").await?;
    browser.wait_for_text("Waiting for approval", WAIT).await?;
    // Live status comes by server-sent events: no polling while they work.
    let before = session_reads(&browser, &stack, &session).await?;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(session_reads(&browser, &stack, &session).await?, before, "no polling while the stream works");

    // The customer comes back from the UPI app: the page becomes visible again.
    browser.client.execute("document.dispatchEvent(new Event('visibilitychange'));", vec![]).await?;
    let deadline = std::time::Instant::now() + WAIT;
    while session_reads(&browser, &stack, &session).await? != before + 1 {
        anyhow::ensure!(std::time::Instant::now() < deadline, "no re-check after visibilitychange");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

#[tokio::test]
async fn without_event_source_the_widget_polls_and_still_shows_the_outcome() -> Result<()> {
    let stack = Stack::start().await?;
    let browser = Browser::start(Device::Desktop).await?;
    browser.cdp("Page.addScriptToEvaluateOnNewDocument", json!({"source": "delete window.EventSource;"})).await?;
    let session = start_upi(&browser, &stack, "light", "en").await?;
    browser.wait_for_text("Waiting for approval", WAIT).await?;
    assert_eq!(browser.client.execute("return typeof EventSource;", vec![]).await?, json!("undefined"));
    let link = pending_payin(&stack, &session).await?["qr"].as_str().context("qr")?.to_owned();
    stack.sandbox_post(&format!("/__sandbox/bestin/payins/{}/approve", trx_id(&link)?), json!({})).await?;
    browser.wait_for_text("Payment successful", WAIT).await?;
    assert!(session_reads(&browser, &stack, &session).await? >= 2, "it polled");
    Ok(())
}

#[tokio::test]
async fn a_reload_while_waiting_shows_the_same_payment_request_again() -> Result<()> {
    let stack = Stack::start().await?;
    let browser = Browser::start(Device::Desktop).await?;
    let session = start_upi(&browser, &stack, "light", "en").await?;
    browser.wait_for_text("Waiting for approval", WAIT).await?;
    let before = browser.in_widget("svg[role=img] path").await?.attr("d").await?;

    browser.client.refresh().await?;
    let text = browser.wait_for_text("Waiting for approval", WAIT).await?;
    assert!(!text.contains("Pay with UPI"), "the pending request, not the method list: {text}");
    let after = browser.in_widget("svg[role=img] path").await?.attr("d").await?;
    assert_eq!(after, before, "the same QR code");
    assert_eq!(stack.sandbox_get("/__sandbox/bestin/counters").await?["payin"], 1, "no second payin");

    let link = pending_payin(&stack, &session).await?["qr"].as_str().context("qr")?.to_owned();
    decide_in_second_tab(&browser, &stack, &link, "Approve", "upi-16-approval-after-reload").await?;
    browser.wait_for_text("Payment successful", WAIT).await?;
    assert_eq!(stack.session(&session).await?["status"], "paid");
    stack.wait_for_webhook("session.paid", &session).await?;
    Ok(())
}
