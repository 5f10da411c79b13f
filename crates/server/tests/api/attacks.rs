//! Attacks on the payment core (pre-launch review): each test plays an attacker, an unlucky customer or a
//! crashing server against the real backend and sandbox, and asserts what the README's money rules promise.
//! A failing test here is a finding; see the review report for the code at fault.

use crate::helpers::*;
use crate::money_rules::{MID, notification, trx_of};
use deshpay_sandbox::{BestinOptions, Sandbox, SandboxConfig};
use deshpay_server::configuration::Settings;
use serde_json::{Value, json};
use std::time::Duration;

/// A backend against a sandbox built with `options` for Bestin Pay.
async fn spawn_with_bestin(options: BestinOptions, configure: impl FnOnce(&mut Settings)) -> TestApp {
    let sandbox =
        Sandbox::spawn(SandboxConfig { bestin_options: options, ..SandboxConfig::default() }).await.expect("sandbox");
    spawn_app_on(sandbox, configure).await
}

impl TestApp {
    async fn atk_req_id(&self, attempt_id: &str) -> String {
        let id = deshpay_api::AttemptId::parse(attempt_id).unwrap();
        self.state.store.attempt(&id).await.unwrap().expect("attempt").req_id.expect("req_id")
    }
}

// ----- one invoice charged twice -----

/// The merchant's shop double-submits "create session" for one order (two tabs, a retry without an
/// Idempotency-Key). The invoice check and the insert are two statements: both requests pass the check, the
/// invoice gets two open sessions, and the customer pays both; both are `paid`, no review.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attack_concurrent_session_creation_for_one_invoice_lets_the_invoice_be_paid_twice() {
    let app = spawn_app().await;
    let invoice = format!("RACE-{}", rand_suffix());
    let body = json!({"amount": "120.00", "currency": "BDT", "invoice": invoice,
                      "return_url": "http://shop.test/r", "methods": ["bkash"]});
    let requests = (0..8).map(|_| app.post_json("/v1/sessions", &body));
    let responses = futures::future::join_all(requests).await;
    let mut created = Vec::new();
    for r in responses {
        if r.status() == 201 {
            created.push(r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned());
        }
    }
    if created.len() >= 2 {
        // Show the consequence: the customer pays two of them.
        for (id, wallet) in created.iter().take(2).zip([WALLET, "01929918378"]) {
            let url = app.start_bkash(id).await;
            let cb = app.approve(&url, wallet).await;
            app.follow_callback(&cb).await;
        }
        let paid = [app.session(&created[0]).await, app.session(&created[1]).await]
            .iter()
            .filter(|s| s["status"] == "paid")
            .count();
        assert!(paid <= 1, "invoice {invoice}: {} sessions created, {paid} of them paid", created.len());
    }
    assert_eq!(created.len(), 1, "one invoice, one live session: {created:?}");
}

/// Session A (UPI, short expiry) is past its expiry but was never read, so its row still says `open`. Once its
/// UPI request is past our payin TTL the invoice is free; session B is made for it and paid. Then Bestin Pay
/// reports A's request paid too. Rule 3: "when the session is already paid (or another session of its invoice
/// is), the attempt becomes review". The Pay effect only checks the invoice for sessions stored as `expired`.
#[tokio::test]
async fn attack_a_upi_request_past_our_countdown_keeps_its_invoice_locked_until_bestin_closes_it() {
    let app = spawn_app_with(|s| {
        outbox_only(s);
        s.bestin.as_mut().unwrap().payin_ttl_secs = 60;
    })
    .await;
    let invoice = format!("INV-{}", rand_suffix());
    let body = json!({"amount": "101.00", "currency": "INR", "invoice": invoice, "return_url": "http://shop.test/r",
                      "methods": ["upi"], "expires_in": 60});
    let first =
        app.post_json("/v1/sessions", &body).await.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let started = app.start_upi(&first).await;
    app.advance(61).await;
    // Nobody reads session A (no widget poll, no merchant GET): its row stays `open`. Its UPI request is past
    // our countdown but Bestin Pay has not closed it, so the invoice stays locked (fixed: it used to be freed,
    // and a second session of the invoice could be paid beside A's late success).
    let r = app.post_json("/v1/sessions", &body).await;
    assert_eq!(r.status(), 409, "the invoice is held while A's request can still take money");
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "invoice_in_use");
    // Bestin Pay now reports A's request as paid: A (and only A) is paid, once.
    let data = json!({"mid": MID, "trx_id": trx_of(&started), "req_id": "x", "trx_type": "payin",
                      "status": "success", "amount": "101.00", "ccy": "INR"});
    assert_eq!(app.notify(&notification("N-late-a", &data)).await.status(), 200);
    let a = app.session(&first).await;
    assert_eq!(a["status"], "paid", "{a}");
    assert_eq!(app.outbox_count("session.paid").await, 1, "one session.paid per invoice");
    let r = app.post_json("/v1/sessions", &body).await;
    assert_eq!(r.status(), 409, "a paid invoice stays taken");
}

// ----- one session charged twice -----

/// The customer approved the UPI request; the bank is slow (`confirming`). Past our payin TTL the widget offers
/// UPI again and a second payin is made while the first can still complete: rule 1 says a live UPI request
/// must be cancelled (or reused) first.
#[tokio::test]
async fn attack_a_confirming_upi_request_past_our_ttl_does_not_stop_a_second_payin() {
    let options = BestinOptions { confirm_delay: Some(Duration::from_secs(600)), ..BestinOptions::default() };
    let app = spawn_with_bestin(options, outbox_only).await;
    let id = app.create_inr_session("101.00").await;
    let first = app.start_upi(&id).await;
    app.decide(first["links"]["upi"].as_str().unwrap(), "approve").await;
    app.wait_for_attempt(&id, "confirming").await;
    let trx = trx_of(&first);
    assert_eq!(app.bestin(&format!("payins/{trx}")).await["status"], "confirming");
    app.advance(901).await;
    assert_eq!(app.bestin(&format!("payins/{trx}")).await["status"], "confirming", "still able to complete");
    let r = app.post_empty(&format!("/v1/checkout/{id}/upi")).await;
    let status = r.status();
    let text = r.text().await.unwrap_or_default();
    assert_eq!(app.bestin("counters").await["payin"], 1, "a second payin while the first is confirming: {text}");
    assert_eq!(status, 409, "{text}");
}

// ----- secrets -----

/// `req_id` is "a secret random value" (rule 2): it must not reach the browser. The UPI deep links handed to
/// the widget carry the provider's transaction note as returned by Bestin Pay.
#[tokio::test]
async fn attack_the_secret_req_id_does_not_reach_the_browser() {
    let app = spawn_app().await;
    let id = app.create_inr_session("101.00").await;
    let started = app.start_upi(&id).await;
    let req_id = app.atk_req_id(started["attempt_id"].as_str().unwrap()).await;
    let view = app.checkout(&id).await;
    let merchant = app.session(&id).await;
    for (what, text) in
        [("start_upi", started.to_string()), ("checkout", view.to_string()), ("merchant", merchant.to_string())]
    {
        assert!(!text.contains(&req_id), "req_id {req_id} in the {what} response: {text}");
    }
}

/// Secrets never reach error text: a provider outage on create, a bad API key, an unknown route.
#[tokio::test]
async fn attack_no_credential_in_error_answers_or_metrics() {
    let app = spawn_app().await;
    let id = app.create_session("50.00").await;
    app.fault(json!({"endpoint": "grant", "response": "garbage", "times": 3})).await;
    let r = app.post_empty(&format!("/v1/checkout/{id}/bkash")).await;
    let mut texts = vec![r.text().await.unwrap()];
    texts.push(
        app.http
            .get(format!("{}/v1/sessions/{id}", app.url))
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    texts.push(app.get("/metrics").await.text().await.unwrap());
    texts.push(app.checkout(&id).await.to_string());
    texts.push(app.session(&id).await.to_string());
    let creds = deshpay_sandbox::BkashCredentials::public_sandbox();
    let bestin = deshpay_sandbox::BestinCredentials::sandbox_default();
    for text in &texts {
        for secret in [API_KEY, creds.password.as_str(), creds.app_secret.as_str(), bestin.secret.as_str()] {
            assert!(!text.contains(secret), "a secret in {text}");
        }
    }
}

// ----- replays (attacks that fail: gaps in money_rules.rs) -----

/// A genuine success notification replayed under new notify_ids (notify_id is outside the signature), then a
/// `failed` for the same order: the session is paid once, announced once, and never moves backwards.
#[tokio::test]
async fn attack_a_replayed_success_under_new_notify_ids_pays_and_announces_once() {
    let app = spawn_app_with(outbox_only).await;
    let id = app.create_inr_session("101.00").await;
    let started = app.start_upi(&id).await;
    let data = json!({"mid": MID, "trx_id": trx_of(&started), "req_id": "x", "trx_type": "payin",
                      "status": "success", "amount": "101.00", "ccy": "INR"});
    for n in 0..3 {
        assert_eq!(app.notify(&notification(&format!("N-replay-{n}"), &data)).await.status(), 200);
    }
    let failed = json!({"mid": MID, "trx_id": trx_of(&started), "req_id": "x", "trx_type": "payin",
                        "status": "failed", "amount": "101.00", "ccy": "INR"});
    assert_eq!(app.notify(&notification("N-replay-failed", &failed)).await.status(), 200);
    let s = app.session(&id).await;
    assert_eq!(s["status"], "paid", "{s}");
    assert_eq!(s["attempts"][0]["status"], "completed", "{s}");
    assert_eq!(app.outbox_count("session.paid").await, 1);
    assert_eq!(app.outbox_count("payment.needs_review").await, 0);
}

// ----- second review -----

/// The first fix strips the `tn` note from the `upi://` and Paytm links, but Bestin Pay's PhonePe link carries
/// the same note inside its base64 `data` JSON (`p2pPaymentCheckoutParams.note = "Payment <req_id>"`). The
/// widget gets it unchanged: rule 2's secret `req_id` reaches the browser (base64, so a plain search misses it).
#[tokio::test]
async fn attack_the_phonepe_link_carries_the_secret_req_id_to_the_browser() {
    use base64::Engine as _;
    let app = spawn_app().await;
    let id = app.create_inr_session("101.00").await;
    let started = app.start_upi(&id).await;
    let req_id = app.atk_req_id(started["attempt_id"].as_str().unwrap()).await;
    let view = app.checkout(&id).await;
    for (what, links) in [("start_upi", &started["links"]), ("checkout", &view["attempt"]["links"])] {
        let Some(phonepe) = links["phonepe"].as_str() else { continue };
        let data = query_param(phonepe, "data").unwrap_or_default();
        let decoded = base64::engine::general_purpose::STANDARD.decode(data.as_bytes()).unwrap_or_default();
        let decoded = String::from_utf8_lossy(&decoded);
        assert!(!decoded.contains(&req_id), "req_id {req_id} in the {what} PhonePe link's data: {decoded}");
    }
}

/// Rule 6: "an invoice stays locked while an attempt of an earlier session can still take money". Session A's
/// bKash Execute answered 9999 and Query said "not completed": the attempt is `failed`, with the one re-check
/// 10 minutes later scheduled precisely because bKash may still complete it. A expires; the invoice check
/// ignores failed attempts with a re-check pending, so session B is made for the invoice. The re-check finds
/// A paid (late success), and B, still open, takes the customer's money again.
#[tokio::test]
async fn attack_a_failed_bkash_attempt_awaiting_its_re_check_does_not_hold_the_invoice() {
    let app = spawn_app_with(outbox_only).await;
    let invoice = format!("RECHECK-{}", rand_suffix());
    let body = |expires_in: u32| {
        json!({"amount": "120.00", "currency": "BDT", "invoice": invoice, "return_url": "http://shop.test/r",
               "methods": ["bkash"], "expires_in": expires_in})
    };
    let r = app.post_json("/v1/sessions", &body(300)).await;
    assert_eq!(r.status(), 201);
    let first = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let url = app.start_bkash(&first).await;
    let first_payment = query_param(&url, "paymentID").unwrap();
    let callback = app.approve(&url, WALLET).await;
    app.fault(json!({"endpoint": "execute", "response": "code", "code": "9999", "message": "System Error",
                     "process": false}))
        .await;
    app.follow_callback(&callback).await;
    assert_eq!(app.session(&first).await["attempts"][0]["status"], "failed");
    // bKash completes A's payment after all (a delayed Execute).
    let token = app.state.providers.bkash.tokens.id_token().await.unwrap();
    app.state.providers.bkash.client.execute(&token, &first_payment).await.unwrap();
    app.advance(301).await;
    let r = app.post_json("/v1/sessions", &body(1800)).await;
    let status = r.status();
    let text = r.text().await.unwrap_or_default();
    if status == 201 {
        // Show the consequence: the re-check pays A late, and B is still offered to the customer and paid.
        let second = serde_json::from_str::<Value>(&text).unwrap()["id"].as_str().unwrap().to_owned();
        app.advance(11 * 60 - 301).await;
        app.state.reconcile_once().await.unwrap();
        assert_eq!(app.session(&first).await["status"], "paid", "late success");
        let r = app.post_empty(&format!("/v1/checkout/{second}/bkash")).await;
        let started = r.status();
        if started == 201 {
            let url = r.json::<Value>().await.unwrap()["redirect_url"].as_str().unwrap().to_owned();
            let cb = app.approve(&url, WALLET).await;
            app.follow_callback(&cb).await;
        }
        let b = app.session(&second).await;
        panic!(
            "invoice {invoice}: B was created while A's attempt awaited its re-check; A paid late, then B's start \
             answered {started} and B's attempts are {}",
            b["attempts"]
        );
    }
    assert_eq!(status, 409, "{text}");
}

/// Rule 8: "keys are forgotten after 24 hours" (as Stripe's). A merchant reuses a refund key a day later for a
/// new refund of another amount: the key is retaken, but the refund looks up the old refund by the same key
/// and answers it (202, 10.00), so the new 20.00 refund is silently never made.
#[tokio::test]
async fn attack_a_refund_key_reused_after_24_hours_replays_the_old_refund() {
    let app = spawn_app().await;
    let (id, payment_id, _) = app.pay("310.00", WALLET).await;
    let send = |amount: &'static str| {
        app.http
            .post(format!("{}/v1/sessions/{id}/refunds", app.url))
            .bearer_auth(API_KEY)
            .header("Idempotency-Key", "refund-reused-key")
            .json(&json!({"amount": amount}))
            .send()
    };
    let first = send("10.00").await.unwrap();
    assert_eq!(first.status(), 201);
    app.advance(25 * 3600).await;
    let again = send("20.00").await.unwrap();
    let status = again.status();
    let body: Value = again.json().await.unwrap();
    assert_eq!(status, 201, "a new refund after the key was forgotten: {body}");
    assert_eq!(body["amount"], "20.00", "{body}");
    assert_eq!(app.sandbox_payment(&payment_id).await["refunds"].as_array().unwrap().len(), 2);
}

// ----- the SQLite writer and cancelled requests -----

/// Another process on the same SQLite file (a second instance, an operator's `sqlite3`) holds the write lock for
/// a moment; a request's write waits for it past the request timeout and is cancelled. The writer connection's
/// `BEGIN IMMEDIATE` still ran once the lock came free, unknown to the group commit: every later write of the
/// instance failed ("cannot start a transaction within a transaction") until a restart, so no session, callback,
/// notification or webhook could be recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attack_a_request_cancelled_while_its_write_waits_for_the_file_lock_leaves_writes_working() {
    if std::env::var("DESHPAY_TEST_POSTGRES").is_ok_and(|s| !s.is_empty()) {
        return; // SQLite's group commit only.
    }
    use sqlx::{Connection, Executor};
    let app = spawn_app_with(|s| s.limits.request_timeout_ms = 400).await;
    app.create_session("100.00").await;
    let mut other = sqlx::AnyConnection::connect(&app.db_url).await.expect("a second connection to the file");
    other.execute("BEGIN IMMEDIATE").await.expect("the write lock");
    let r = app
        .post_json(
            "/v1/sessions",
            &json!({"amount": "100.00", "currency": "BDT", "invoice": format!("ORD-{}", rand_suffix()),
                    "return_url": "http://shop.test/return?order=1", "methods": ["bkash"]}),
        )
        .await;
    assert_ne!(r.status(), 201, "the write waited for the lock past the request timeout");
    tokio::time::sleep(Duration::from_millis(200)).await;
    other.execute("ROLLBACK").await.expect("release the lock");
    tokio::time::sleep(Duration::from_millis(200)).await;
    // create_session asserts 201.
    let id = app.create_session("100.00").await;
    assert_eq!(app.session(&id).await["status"], "open");
}

// ----- the confirm's stamp -----

/// The stamp that claims bKash's Execute (`execute_started_at`, also `updated_at`) is what the reconciler's
/// staleness counts from: it waits `2 x timeout + token wait`, the longest an Execute can still be in flight
/// after the stamp (Execute, then a 401's renewal and the second Execute). The seam stamps with a time read
/// before the token is fetched, so a slow renewal ahead of the Execute is not covered: the reconciler may Query
/// while the Execute is still in flight, see `Initiated`, fail the attempt and free the session for a second
/// payment. The stamp must be the time of the claim, right before the Execute.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attack_the_execute_stamp_is_not_older_than_the_token_renewal_before_it() {
    let app = spawn_app_with(|s| s.bkash.refresh_margin_secs = 3000).await;
    let id = app.create_session("100.00").await;
    let bkash_url = app.start_bkash(&id).await;
    let payment_id = query_param(&bkash_url, "paymentID").unwrap();
    let callback = app.pay_on_page(&bkash_url, WALLET, OTP, PIN).await;
    // Our token is now within the refresh margin; its renewal takes a second.
    app.clock.advance_secs(700);
    for endpoint in ["refresh", "grant"] {
        app.fault(json!({"endpoint": endpoint, "response": "normal", "delay_ms": 1000, "times": 1})).await;
    }
    let before = app.clock.now_ms();
    app.follow_callback(&callback).await;
    let attempt = app
        .state
        .store
        .attempt_by_provider_ref(deshpay_api::Method::Bkash, &payment_id)
        .await
        .unwrap()
        .expect("attempt");
    let stamp = attempt.execute_started_at.expect("executed");
    assert!(stamp >= before + 900, "stamped {} ms after the callback began, before the token renewal", stamp - before);
    assert_eq!(app.session(&id).await["status"], "paid");
}
