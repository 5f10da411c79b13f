//! The bKash journey end to end over HTTP: backend <-> sandbox, the customer on the hosted page by form posts.

use crate::helpers::*;
use serde_json::{Value, json};

#[tokio::test]
async fn a_customer_pays_and_the_session_records_the_trx_id() {
    let app = spawn_app().await;
    let (id, payment_id, back) = app.pay("250.00", WALLET).await;

    assert!(back.starts_with("http://shop.test/return?order=1&"), "{back}");
    assert_eq!(query_param(&back, "deshpay_session").as_deref(), Some(id.as_str()));
    assert_eq!(query_param(&back, "deshpay_status").as_deref(), Some("paid"));

    let session = app.session(&id).await;
    assert_eq!(session["status"], "paid");
    let payment = &session["payment"];
    assert_eq!(payment["method"], "bkash");
    assert_eq!(payment["payment_id"], payment_id.as_str());
    let trx = payment["trx_id"].as_str().unwrap();
    assert_eq!(trx.len(), 10, "bKash trxIDs are 10 characters: {trx}");
    assert_eq!(payment["payer"], "017*****575", "the wallet is masked");

    let view = app.checkout(&id).await;
    assert_eq!(view["status"], "paid");
    assert_eq!(view["attempt"]["status"], "succeeded");
    assert_eq!(view["attempt"]["trx_id"], trx);
    assert!(view.get("return_url").is_none(), "the widget view leaks no return URL");

    let sandbox = app.sandbox_payment(&payment_id).await;
    assert_eq!(sandbox["execute_calls"], 1);
    assert_eq!(sandbox["trxID"], trx);
}

#[tokio::test]
async fn three_wrong_otps_fail_the_payment_without_execute() {
    let app = spawn_app().await;
    let id = app.create_session("100.00").await;
    let url = app.start_bkash(&id).await;
    let payment_id = query_param(&url, "paymentID").unwrap();
    app.http.get(&url).send().await.unwrap();
    let base = format!("{}/redirect/tokenized/{payment_id}", app.sandbox.url());
    app.form(&format!("{base}/wallet"), &[("wallet", WALLET), ("action", "confirm")]).await;
    let mut last = None;
    for _ in 0..3 {
        last = Some(app.form(&format!("{base}/otp"), &[("otp", "000000"), ("action", "confirm")]).await);
    }
    let last = last.unwrap();
    assert_eq!(last.status(), 303);
    let callback = location(&last);
    assert_eq!(query_param(&callback, "status").as_deref(), Some("failure"));
    let back = app.follow_callback(&callback).await;
    assert_eq!(query_param(&back, "deshpay_status").as_deref(), Some("failed"));

    let view = app.checkout(&id).await;
    assert_eq!(view["status"], "open", "a failed attempt leaves the session payable");
    assert_eq!(view["attempt"]["status"], "failed");
    assert_eq!(view["attempt"]["reason"], "failed", "bKash sent no code: the neutral words");
    assert_eq!(app.session(&id).await["attempts"][0]["message"], "Payment failed");
    assert_eq!(app.counters().await["execute"], 0, "execute is called only for status=success");
}

#[tokio::test]
async fn close_then_yes_cancels_the_payment() {
    let app = spawn_app().await;
    let id = app.create_session("100.00").await;
    let url = app.start_bkash(&id).await;
    let payment_id = query_param(&url, "paymentID").unwrap();
    let base = format!("{}/redirect/tokenized/{payment_id}", app.sandbox.url());
    let r = app.form(&format!("{base}/wallet"), &[("wallet", WALLET), ("action", "close")]).await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Yes"));
    let r = app.form(&format!("{base}/close"), &[("confirm", "yes")]).await;
    assert_eq!(r.status(), 303);
    let callback = location(&r);
    assert_eq!(query_param(&callback, "status").as_deref(), Some("cancel"));
    let back = app.follow_callback(&callback).await;
    assert_eq!(query_param(&back, "deshpay_status").as_deref(), Some("cancelled"));
    let view = app.checkout(&id).await;
    assert_eq!(view["attempt"]["status"], "cancelled");
    assert_eq!(app.counters().await["execute"], 0);
}

async fn assert_fails_at_execute(wallet: &str, expected_message: &str, reason: &str) {
    let app = spawn_app().await;
    let (id, _, back) = app.pay("120.00", wallet).await;
    assert_eq!(query_param(&back, "deshpay_status").as_deref(), Some("failed"));
    let view = app.checkout(&id).await;
    assert_eq!(view["status"], "open");
    assert_eq!(view["attempt"]["status"], "failed");
    assert_eq!(view["attempt"]["reason"], reason);
    let session = app.session(&id).await;
    let message = session["attempts"][0]["message"].as_str().unwrap();
    assert!(message.contains(expected_message), "bKash's statusMessage is kept: {message}");
    assert_eq!(session["payment"], Value::Null);
}

#[tokio::test]
async fn insufficient_balance_fails_with_bkash_message() {
    assert_fails_at_execute("01823074817", "Insufficient Balance", "insufficient_balance").await;
}

#[tokio::test]
async fn a_debit_blocked_wallet_fails_with_bkash_message() {
    assert_fails_at_execute("01823074818", "prohibit", "account_restricted").await;
}

#[tokio::test]
async fn a_duplicate_payment_within_five_minutes_fails_then_works_later() {
    let app = spawn_app().await;
    let (_, _, first) = app.pay("300.00", "01929918378").await;
    assert_eq!(query_param(&first, "deshpay_status").as_deref(), Some("paid"));
    let (id, _, second) = app.pay("300.00", "01929918378").await;
    assert_eq!(query_param(&second, "deshpay_status").as_deref(), Some("failed"));
    assert_eq!(app.checkout(&id).await["attempt"]["reason"], "duplicate");
    let message = app.session(&id).await["attempts"][0]["message"].as_str().unwrap().to_owned();
    assert!(message.to_lowercase().contains("duplicate"), "{message}");

    app.advance(301).await;
    let url = app.start_bkash(&id).await;
    let callback = app.pay_on_page(&url, "01929918378", OTP, PIN).await;
    let back = app.follow_callback(&callback).await;
    assert_eq!(query_param(&back, "deshpay_status").as_deref(), Some("paid"), "retry after 5 minutes succeeds");
}

#[tokio::test]
async fn retry_after_a_failure_pays_with_a_new_attempt() {
    let app = spawn_app().await;
    let (id, first_payment, back) = app.pay("80.00", "01823074817").await;
    assert_eq!(query_param(&back, "deshpay_status").as_deref(), Some("failed"));
    let url = app.start_bkash(&id).await;
    let second_payment = query_param(&url, "paymentID").unwrap();
    assert_ne!(first_payment, second_payment);
    let callback = app.pay_on_page(&url, WALLET, OTP, PIN).await;
    let back = app.follow_callback(&callback).await;
    assert_eq!(query_param(&back, "deshpay_status").as_deref(), Some("paid"));
    assert_eq!(app.session(&id).await["payment"]["payment_id"], second_payment.as_str());
}

#[tokio::test]
async fn a_paid_session_cannot_be_started_again() {
    let app = spawn_app().await;
    let (id, _, _) = app.pay("50.00", WALLET).await;
    let r = app.http.post(format!("{}/v1/checkout/{id}/bkash", app.url)).send().await.unwrap();
    assert_eq!(r.status(), 409);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "session_already_paid");
}

#[tokio::test]
async fn an_expired_session_cannot_be_started() {
    let app = spawn_app().await;
    let id = app.create_session("50.00").await;
    app.advance(1801).await;
    let r = app.http.post(format!("{}/v1/checkout/{id}/bkash", app.url)).send().await.unwrap();
    assert_eq!(r.status(), 409);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "session_expired");
    assert_eq!(app.checkout(&id).await["status"], "expired");
}

#[tokio::test]
async fn a_reloaded_callback_executes_once_and_still_redirects() {
    let app = spawn_app().await;
    let id = app.create_session("75.00").await;
    let url = app.start_bkash(&id).await;
    let payment_id = query_param(&url, "paymentID").unwrap();
    let callback = app.pay_on_page(&url, WALLET, OTP, PIN).await;
    let first = app.follow_callback(&callback).await;
    let second = app.follow_callback(&callback).await;
    assert_eq!(first, second, "a reload lands on the same outcome");
    assert_eq!(app.sandbox_payment(&payment_id).await["execute_calls"], 1);
}

#[tokio::test]
async fn concurrent_duplicate_callbacks_execute_exactly_once() {
    let app = spawn_app().await;
    let id = app.create_session("75.00").await;
    let url = app.start_bkash(&id).await;
    let payment_id = query_param(&url, "paymentID").unwrap();
    let callback = app.pay_on_page(&url, WALLET, OTP, PIN).await;
    let calls = (0..12).map(|_| app.http.get(&callback).send());
    let responses = futures::future::join_all(calls).await;
    for r in responses {
        assert_eq!(r.unwrap().status(), 303);
    }
    assert_eq!(app.sandbox_payment(&payment_id).await["execute_calls"], 1);
    assert_eq!(app.counters().await["execute"], 1);
    assert_eq!(app.session(&id).await["status"], "paid");
}

#[tokio::test]
async fn an_execute_timeout_is_resolved_paid_by_query() {
    let app = spawn_app().await;
    app.fault(
        json!({"endpoint": "execute", "delay_ms": BKASH_TIMEOUT_MS + 1000, "response": "normal", "process": true}),
    )
    .await;
    let (id, payment_id, back) = app.pay("99.00", WALLET).await;
    assert_eq!(query_param(&back, "deshpay_status").as_deref(), Some("paid"));
    let counters = app.counters().await;
    assert_eq!(counters["execute"], 1, "never a second execute");
    assert_eq!(counters["query"], 1, "query only after no response");
    assert_eq!(app.sandbox_payment(&payment_id).await["execute_calls"], 1);
    assert!(app.session(&id).await["payment"]["trx_id"].as_str().is_some());
}

#[tokio::test]
async fn an_execute_that_never_reached_bkash_is_resolved_unpaid_by_query() {
    let app = spawn_app().await;
    app.fault(json!({"endpoint": "execute", "response": "http_status", "status": 503, "process": false})).await;
    let (id, _, back) = app.pay("99.00", WALLET).await;
    assert_eq!(query_param(&back, "deshpay_status").as_deref(), Some("failed"));
    assert_eq!(app.counters().await["query"], 1);
    let view = app.checkout(&id).await;
    assert_eq!(view["status"], "open");
    assert_eq!(view["attempt"]["reason"], "failed");
    let message = app.session(&id).await["attempts"][0]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("not charged"), "{message}");
}

#[tokio::test]
async fn garbage_and_gateway_bodies_from_execute_go_to_query() {
    for fault in [
        json!({"endpoint": "execute", "response": "garbage", "process": true}),
        json!({"endpoint": "execute", "response": "message", "status": 502, "message": "Internal server error", "process": true}),
    ] {
        let app = spawn_app().await;
        app.fault(fault.clone()).await;
        let (_, _, back) = app.pay("42.00", WALLET).await;
        assert_eq!(query_param(&back, "deshpay_status").as_deref(), Some("paid"), "{fault}");
        assert_eq!(app.counters().await["execute"], 1, "{fault}");
    }
}

#[tokio::test]
async fn when_query_is_silent_too_the_reconciler_settles_it_later() {
    let app = spawn_app().await;
    app.fault(json!({"endpoint": "execute", "delay_ms": BKASH_TIMEOUT_MS + 500, "process": true})).await;
    app.fault(json!({"endpoint": "query", "response": "http_status", "status": 500, "process": false})).await;
    let (id, payment_id, back) = app.pay("61.00", WALLET).await;
    assert_eq!(query_param(&back, "deshpay_status").as_deref(), Some("pending"));
    assert_eq!(app.checkout(&id).await["attempt"]["status"], "confirming");
    let r = app.http.post(format!("{}/v1/checkout/{id}/bkash", app.url)).send().await.unwrap();
    assert_eq!(r.status(), 409, "no second attempt while one is being confirmed");

    // Stale only after two provider timeouts plus the token wait (3 x 1.5 s + 15 s here).
    app.state.reconcile_once().await.unwrap();
    assert_eq!(app.session(&id).await["status"], "open", "not yet: a live callback could still be waiting");
    app.advance(20).await;
    app.state.reconcile_once().await.unwrap();
    assert_eq!(app.session(&id).await["status"], "paid");
    assert_eq!(app.sandbox_payment(&payment_id).await["execute_calls"], 1);
}

#[tokio::test]
async fn a_callback_for_an_unknown_payment_or_status_is_refused() {
    let app = spawn_app().await;
    let r = app
        .http
        .get(format!("{}/v1/bkash/callback?paymentID=TR0011nope&status=success", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "payment_not_found");
    let r = app.http.get(format!("{}/v1/bkash/callback?status=success", app.url)).send().await.unwrap();
    assert_eq!(r.status(), 400);

    let id = app.create_session("10.00").await;
    let url = app.start_bkash(&id).await;
    let payment_id = query_param(&url, "paymentID").unwrap();
    let r =
        app.http.get(format!("{}/v1/bkash/callback?paymentID={payment_id}&status=paid", app.url)).send().await.unwrap();
    assert_eq!(r.status(), 400);
    // A forged success before the customer approved: Execute says 2056, Query says Initiated: nothing is paid
    // and the attempt stays payable for the customer who is still on bKash's page.
    let forged = format!("{}/v1/bkash/callback?paymentID={payment_id}&status=success", app.url);
    let back = app.follow_callback(&forged).await;
    assert_eq!(query_param(&back, "deshpay_status").as_deref(), Some("pending"));
    let s = app.session(&id).await;
    assert_eq!(s["status"], "open");
    assert_eq!(s["attempts"][0]["status"], "created", "the live attempt is not killed by a forged callback");
}

#[tokio::test]
async fn create_payment_errors_are_typed_and_leave_nothing_half_done() {
    let app = spawn_app().await;
    let id = app.create_session("10.00").await;
    app.fault(json!({"endpoint": "create", "delay_ms": BKASH_TIMEOUT_MS + 500, "process": false})).await;
    let r = app.http.post(format!("{}/v1/checkout/{id}/bkash", app.url)).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "provider_unavailable");
    assert_eq!(app.checkout(&id).await["attempt"]["status"], "failed");
    // The next try works.
    let url = app.start_bkash(&id).await;
    assert!(url.contains("paymentID="));
}

#[tokio::test]
async fn metrics_count_attempts_calls_and_grants() {
    let app = spawn_app().await;
    app.pay("20.00", WALLET).await;
    let text = app.get("/metrics").await.text().await.unwrap();
    assert!(text.contains(r#"deshpay_attempts_total{method="bkash",outcome="succeeded"} 1"#), "{text}");
    assert!(text.contains(r#"endpoint="execute",outcome="ok""#), "{text}");
    assert!(text.contains("deshpay_bkash_token_grants_total 1"), "{text}");
    let health = app.http.get(format!("{}/healthz", app.url)).send().await.unwrap();
    assert_eq!(health.status(), 200);
}
