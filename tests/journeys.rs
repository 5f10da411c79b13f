//! Customer journeys in real headless Chromium: shop -> widget -> backend -> bKash's hosted page (sandbox) ->
//! back to the shop. Screenshots land in artifacts/screenshots/.

use anyhow::Result;
use deshpay_e2e::{Browser, Device, Stack, WALLET};
use serde_json::Value;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

async fn events(browser: &Browser) -> Result<Vec<Value>> {
    let v = browser.client.execute("return window.deshpayEvents || [];", vec![]).await?;
    Ok(v.as_array().cloned().unwrap_or_default())
}

async fn event_types(browser: &Browser) -> Result<Vec<String>> {
    Ok(events(browser).await?.iter().filter_map(|e| e["type"].as_str().map(str::to_owned)).collect())
}

async fn focused_text(browser: &Browser) -> Result<String> {
    let v = browser
        .client
        .execute(
            "const h = document.querySelector('[data-deshpay-host]'); \
             const a = h && h.shadowRoot && h.shadowRoot.activeElement; return a ? a.textContent : '';",
            vec![],
        )
        .await?;
    Ok(v.as_str().unwrap_or_default().to_owned())
}

async fn start_bkash(browser: &Browser, stack: &Stack) -> Result<()> {
    browser.click_widget_button("Pay with bKash").await?;
    browser.wait_for_url(&format!("{}/redirect/tokenized/", stack.sandbox.url())).await?;
    Ok(())
}

#[tokio::test]
async fn a_customer_pays_with_bkash_and_sees_the_receipt_once_even_after_reload() -> Result<()> {
    let stack = Stack::start().await?;
    let browser = Browser::start(Device::Desktop).await?;
    let session = browser.buy(&stack, "tea", "light", "en").await?;
    let text = browser.wait_for_text("Pay with bKash", WAIT).await?;
    assert!(text.contains("250.00"), "the amount is shown: {text}");
    assert!(event_types(&browser).await?.contains(&"deshpay:ready".to_owned()));
    browser.screenshot("01-choose-method").await?;

    start_bkash(&browser, &stack).await?;
    browser.screenshot("02-bkash-hosted-page").await?;
    browser.pay_on_bkash_page(WALLET, "123456", "12121").await?;
    browser.wait_for_url(&format!("{}/return", stack.shop)).await?;
    let text = browser.wait_for_text("Payment successful", WAIT).await?;
    let trx = stack.session(&session).await?["payment"]["trx_id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(trx.len(), 10);
    assert!(text.contains(&trx), "the receipt shows the trxID {trx}: {text}");
    let trx_shown = browser.in_widget("[data-testid=deshpay-trx-id]").await?.text().await?;
    assert!(trx_shown.contains(&trx));
    assert!(focused_text(&browser).await?.contains("Payment successful"), "focus moves to the outcome");
    let evs = events(&browser).await?;
    let success = evs.iter().find(|e| e["type"] == "deshpay:success").expect("deshpay:success fired");
    assert_eq!(success["detail"]["session"], session.as_str());
    assert!(!success.to_string().contains("id_token"));
    // The merchant's server learns it too: a signed webhook, verified by the shop.
    stack.wait_for_webhook("session.paid", &session).await?;
    browser.screenshot("03-success").await?;

    browser.client.refresh().await?;
    browser.wait_for_text("Payment successful", WAIT).await?;
    let s = stack.session(&session).await?;
    assert_eq!(s["status"], "paid");
    let payment_id = s["payment"]["payment_id"].as_str().unwrap_or_default().to_owned();
    let p = stack.sandbox_get(&format!("/__sandbox/bkash/payments/{payment_id}")).await?;
    assert_eq!(p["execute_calls"], 1, "a reload of the return page never executes again");
    assert_eq!(stack.sandbox_get("/__sandbox/bkash/counters").await?["execute"], 1);
    Ok(())
}

#[tokio::test]
async fn three_wrong_otps_show_payment_failed_and_a_retry_then_succeeds() -> Result<()> {
    let stack = Stack::start().await?;
    let browser = Browser::start(Device::Desktop).await?;
    let session = browser.buy(&stack, "tea", "light", "en").await?;
    start_bkash(&browser, &stack).await?;
    browser.fill_labelled("bKash Account number", WALLET).await?;
    browser.click_page_button("Confirm").await?;
    for _ in 0..3 {
        browser.fill_labelled("Verification code", "000000").await?;
        browser.click_page_button("Confirm").await?;
    }
    browser.wait_for_url(&format!("{}/return", stack.shop)).await?;
    browser.wait_for_text("Payment failed", WAIT).await?;
    assert!(event_types(&browser).await?.contains(&"deshpay:failure".to_owned()));
    browser.screenshot("04-failed-wrong-otp").await?;

    browser.click_widget_button("Try again").await?;
    start_bkash(&browser, &stack).await?;
    browser.pay_on_bkash_page(WALLET, "123456", "12121").await?;
    browser.wait_for_url(&format!("{}/return", stack.shop)).await?;
    browser.wait_for_text("Payment successful", WAIT).await?;
    assert_eq!(stack.session(&session).await?["status"], "paid");
    Ok(())
}

#[tokio::test]
async fn closing_the_bkash_page_shows_payment_cancelled() -> Result<()> {
    let stack = Stack::start().await?;
    let browser = Browser::start(Device::Desktop).await?;
    browser.buy(&stack, "jamdani", "dark", "en").await?;
    start_bkash(&browser, &stack).await?;
    browser.click_page_button("Close").await?;
    browser.click_page_button("Yes").await?;
    browser.wait_for_url(&format!("{}/return", stack.shop)).await?;
    browser.wait_for_text("Payment cancelled", WAIT).await?;
    assert!(event_types(&browser).await?.contains(&"deshpay:cancel".to_owned()));
    browser.screenshot("05-cancelled").await?;
    browser.click_widget_button("Try again").await?;
    browser.wait_for_text("Pay with bKash", WAIT).await?;
    Ok(())
}

#[tokio::test]
async fn insufficient_balance_shows_the_widgets_words_and_passes_the_reason_code_to_the_page() -> Result<()> {
    let stack = Stack::start().await?;
    let browser = Browser::start(Device::Desktop).await?;
    browser.buy(&stack, "tea", "bkash", "en").await?;
    start_bkash(&browser, &stack).await?;
    browser.pay_on_bkash_page("01823074817", "123456", "12121").await?;
    browser.wait_for_url(&format!("{}/return", stack.shop)).await?;
    browser.wait_for_text("Payment failed", WAIT).await?;
    let reason = browser.in_widget("[data-testid=deshpay-reason]").await?.text().await?;
    assert_eq!(
        reason,
        "Your bKash balance is too low for ৳250.00. No money was taken. Add money or use another bKash account."
    );
    let failure = events(&browser).await?.into_iter().find(|e| e["type"] == "deshpay:failure");
    let failure = failure.expect("deshpay:failure fired");
    assert_eq!(failure["detail"]["reason"], "insufficient_balance", "a stable code for the merchant's page");
    browser.screenshot("06-failed-insufficient-balance").await?;
    Ok(())
}

#[tokio::test]
async fn every_theme_and_locale_renders_without_serious_accessibility_violations() -> Result<()> {
    let stack = Stack::start().await?;
    let browser = Browser::start(Device::Desktop).await?;
    for theme in ["light", "dark", "bkash", "high-contrast"] {
        for (locale, pay_label) in [("en", "Pay with bKash"), ("bn", "৳"), ("hi", "৳")] {
            browser.buy(&stack, "tea", theme, locale).await?;
            let text = browser.wait_for_text(pay_label, WAIT).await?;
            if locale != "en" {
                assert!(!text.contains("Pay with bKash"), "{locale} is translated: {text}");
            }
            browser.screenshot(&format!("theme-{theme}-{locale}")).await?;
            let violations = browser.axe_serious_violations().await?;
            assert!(violations.is_empty(), "{theme}/{locale}: {violations:?}");
        }
    }
    Ok(())
}

#[tokio::test]
async fn outcome_states_pass_axe() -> Result<()> {
    let stack = Stack::start().await?;
    let browser = Browser::start(Device::Desktop).await?;
    browser.buy(&stack, "tea", "high-contrast", "en").await?;
    start_bkash(&browser, &stack).await?;
    browser.pay_on_bkash_page("01823074818", "123456", "12121").await?;
    browser.wait_for_text("Payment failed", WAIT).await?;
    let violations = browser.axe_serious_violations().await?;
    assert!(violations.is_empty(), "failed state: {violations:?}");
    browser.click_widget_button("Try again").await?;
    start_bkash(&browser, &stack).await?;
    browser.pay_on_bkash_page(WALLET, "123456", "12121").await?;
    browser.wait_for_text("Payment successful", WAIT).await?;
    let violations = browser.axe_serious_violations().await?;
    assert!(violations.is_empty(), "success state: {violations:?}");
    Ok(())
}

#[tokio::test]
async fn an_unreachable_backend_shows_a_clear_message_and_retry() -> Result<()> {
    let stack = Stack::start().await?;
    let browser = Browser::start(Device::Desktop).await?;
    let session = browser.buy(&stack, "tea", "light", "en").await?;
    let dead = "http://127.0.0.1:9"; // discard port: nothing listens
    browser.goto(&format!("{}/playground?session={session}&endpoint={dead}", stack.shop)).await?;
    let text = browser.wait_for_text("Try again", WAIT).await?;
    assert!(text.to_lowercase().contains("reach"), "a clear message, not a raw error: {text}");
    assert!(!text.contains("undefined") && !text.contains("[object"), "{text}");
    browser.screenshot("07-backend-unreachable").await?;
    Ok(())
}

#[tokio::test]
async fn without_wasm_unsafe_eval_the_loader_shows_a_fallback_and_fires_failure() -> Result<()> {
    let stack = Stack::start().await?;
    let browser = Browser::start(Device::Desktop).await?;
    let session = browser.buy(&stack, "tea", "light", "en").await?;
    browser.goto(&format!("{}/strict/checkout/{session}", stack.shop)).await?;
    let text = browser.wait_for_text("could not load", WAIT).await?;
    assert!(!text.contains("Pay with bKash"), "{text}");
    let evs = events(&browser).await?;
    let failure = evs.iter().find(|e| e["type"] == "deshpay:failure").expect("deshpay:failure fired");
    assert_eq!(failure["detail"]["reason"], "wasm_unavailable");
    browser.screenshot("08-csp-fallback").await?;
    Ok(())
}

#[tokio::test]
async fn the_widget_files_arrive_precompressed_as_built() -> Result<()> {
    let stack = Stack::start().await?;
    let browser = Browser::start(Device::Desktop).await?;
    browser.buy(&stack, "tea", "light", "en").await?;
    browser.wait_for_text("Pay with bKash", WAIT).await?;
    let entries = browser
        .client
        .execute(
            "return performance.getEntriesByType('resource').filter(e => e.name.includes('/pkg/'))
               .map(e => ({name: e.name.split('/').pop(), encoded: e.encodedBodySize, decoded: e.decodedBodySize}));",
            vec![],
        )
        .await?;
    let pkg = deshpay_e2e::root().join("pkg");
    let size = |name: &str| std::fs::metadata(pkg.join(name)).map(|m| m.len());
    for file in ["deshpay_widget_bg.wasm", "deshpay_widget.js"] {
        let entry = entries
            .as_array()
            .and_then(|a| a.iter().find(|e| e["name"] == file))
            .unwrap_or_else(|| panic!("{file} loaded: {entries}"));
        assert_eq!(entry["decoded"].as_u64(), Some(size(file)?), "{file}: {entry}");
        let encoded = entry["encoded"].as_u64();
        let shipped = [size(&format!("{file}.br"))?, size(&format!("{file}.gz"))?];
        assert!(
            encoded.is_some_and(|n| shipped.contains(&n)),
            "{file} sent as the precompressed file {shipped:?}: {entry}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn bengali_texts_come_from_their_file_and_english_stands_in_when_it_cannot_load() -> Result<()> {
    let stack = Stack::start().await?;
    let browser = Browser::start(Device::Desktop).await?;
    browser.buy(&stack, "tea", "light", "bn").await?;
    let text = browser.wait_for_text("বিকাশ দিয়ে পেমেন্ট করুন", WAIT).await?;
    assert!(!text.contains("Pay with bKash"), "{text}");

    // The locale file is unreachable: the widget still works, in English, rather than not at all.
    browser.cdp("Network.enable", serde_json::json!({})).await?;
    browser.cdp("Network.setBlockedURLs", serde_json::json!({"urls": ["*deshpay-bn.json"]})).await?;
    browser.cdp("Network.setCacheDisabled", serde_json::json!({"cacheDisabled": true})).await?;
    browser.buy(&stack, "tea", "light", "bn").await?;
    let text = browser.wait_for_text("Pay with bKash", WAIT).await?;
    assert!(text.contains("250.00"), "{text}");
    let lang = browser.in_widget(".dp").await?.attr("lang").await?;
    assert_eq!(lang.as_deref(), Some("en"), "the widget says it speaks English");
    Ok(())
}

#[tokio::test]
async fn the_session_is_read_once_and_beside_the_wasm_not_after_it() -> Result<()> {
    let stack = Stack::start().await?;
    let browser = Browser::start(Device::Desktop).await?;
    let session = browser.buy(&stack, "tea", "light", "en").await?;
    browser.wait_for_text("Pay with bKash", WAIT).await?;
    // The loader asks for the session view while the wasm downloads; the widget uses that answer instead of
    // asking again once it has started (BENCHMARKS.md, "Page load to deshpay:ready").
    let timing = browser
        .client
        .execute(
            "const r = performance.getEntriesByType('resource'); \
             const reads = r.filter((e) => e.name.endsWith('/v1/checkout/' + arguments[0])); \
             const wasm = r.find((e) => e.name.includes('/deshpay_widget_bg.wasm')); \
             return [reads.length, reads[0]?.startTime, wasm?.responseEnd];",
            vec![Value::from(session.as_str())],
        )
        .await?;
    let timing: Vec<f64> = timing.as_array().expect("array").iter().map(|v| v.as_f64().unwrap_or(f64::NAN)).collect();
    assert_eq!(timing[0], 1.0, "one read of the session before the first screen: {timing:?}");
    assert!(timing[1] < timing[2], "the session is requested before the wasm has arrived: {timing:?}");
    Ok(())
}

#[tokio::test]
async fn a_customer_who_closes_the_tab_before_the_callback_is_paid_by_bkashs_ipn() -> Result<()> {
    let stack = Stack::start().await?;
    // bKash's SNS subscription to the backend's IPN listener, confirmed by the backend.
    stack
        .sandbox_post(
            "/__sandbox/bkash/ipn/subscribe",
            serde_json::json!({"endpoint": format!("{}/v1/bkash/ipn", stack.backend), "retry_delays_ms": [500, 500, 500]}),
        )
        .await?;
    let deadline = std::time::Instant::now() + WAIT;
    while stack.sandbox_get("/__sandbox/bkash/ipn").await?["subscription"]["confirmed"] != true {
        anyhow::ensure!(std::time::Instant::now() < deadline, "the backend did not confirm the IPN subscription");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let browser = Browser::start(Device::Desktop).await?;
    let session = browser.buy(&stack, "tea", "light", "en").await?;
    browser.wait_for_text("Pay with bKash", WAIT).await?;
    start_bkash(&browser, &stack).await?;
    // The tab dies after the PIN: the redirect to our callback never leaves the browser.
    browser.cdp("Network.enable", serde_json::json!({})).await?;
    browser.cdp("Network.setBlockedURLs", serde_json::json!({"urls": ["*/v1/bkash/callback*"]})).await?;
    browser.pay_on_bkash_page(WALLET, "123456", "12121").await?;
    // bKash's IPN reaches the backend, which executes the payment once: the merchant's API and server see it.
    let deadline = std::time::Instant::now() + WAIT;
    let paid = loop {
        let s = stack.session(&session).await?;
        if s["status"] == "paid" {
            break s;
        }
        anyhow::ensure!(std::time::Instant::now() < deadline, "the IPN did not pay the session: {s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    stack.wait_for_webhook("session.paid", &session).await?;
    let payment_id = paid["payment"]["payment_id"].as_str().unwrap_or_default().to_owned();
    let p = stack.sandbox_get(&format!("/__sandbox/bkash/payments/{payment_id}")).await?;
    assert_eq!(p["execute_calls"], 1, "{p}");
    assert_eq!(p["trxID"], paid["payment"]["trx_id"]);
    let ipn = stack.sandbox_get("/__sandbox/bkash/ipn").await?;
    assert!(
        ipn["deliveries"]
            .as_array()
            .is_some_and(|d| d.iter().any(|d| d["type"] == "Notification" && d["status"] == 200)),
        "{ipn}"
    );
    // The customer opens the shop's checkout page again: the widget shows the receipt.
    browser.cdp("Network.setBlockedURLs", serde_json::json!({"urls": []})).await?;
    browser.goto(&format!("{}/checkout/{session}", stack.shop)).await?;
    let text = browser.wait_for_text("Payment successful", WAIT).await?;
    assert!(text.contains(paid["payment"]["trx_id"].as_str().unwrap_or("?")), "{text}");
    browser.screenshot("ipn-closed-tab-paid").await?;
    Ok(())
}
