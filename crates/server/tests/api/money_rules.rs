//! The money rules of the README, each tried the way an attacker or an unlucky customer would, on SQLite and
//! (with DESHPAY_TEST_POSTGRES) PostgreSQL. Each test is named after its rule; the reproductions of the
//! "Money that cannot be forged, doubled or lost" issue are among them.

use crate::helpers::*;
use crate::upi::sign;
use serde_json::{Value, json};
use std::time::Duration;

pub(crate) const MID: &str = "M01KDESHPAYSANDBXX000000001";
/// A second sandbox wallet that pays (the first is [`WALLET`]).
const OTHER_WALLET: &str = "01929918378";

impl TestApp {
    async fn execute_calls(&self, payment_id: &str) -> i64 {
        self.sandbox_payment(payment_id).await["execute_calls"].as_i64().unwrap_or(0)
    }

    async fn bestin_fault(&self, fault: Value) {
        self.control.bestin_fault(&fault).await;
    }

    async fn attempt_row(&self, id: &str) -> deshpay_server::store::AttemptRow {
        let id = deshpay_api::AttemptId::parse(id).unwrap();
        self.state.store.attempt(&id).await.unwrap().expect("attempt")
    }
}

pub(crate) fn notification(id: &str, data: &Value) -> Value {
    json!({"notify_id": id, "event_type": "trx_update", "data": data, "timestamp": 1, "sign": sign(data)})
}

pub(crate) fn trx_of(started: &Value) -> String {
    let upi = started["links"]["upi"].as_str().unwrap();
    upi.split("tr=").nth(1).unwrap().split('&').next().unwrap().to_owned()
}

// ----- rule 1 -----

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rule_1_a_session_takes_money_at_most_once_two_tabs_approved_with_overlapping_callbacks() {
    let app = spawn_app().await;
    for i in 0..20 {
        let id = app.create_session(&format!("{}.00", 100 + i)).await;
        // Two tabs: each starts a bKash payment; the customer approves both on bKash's pages.
        let tab_a = app.start_bkash(&id).await;
        let tab_b = app.start_bkash(&id).await;
        let callback_a = app.approve(&tab_a, WALLET).await;
        let callback_b = app.approve(&tab_b, OTHER_WALLET).await;
        let (a, b) = tokio::join!(app.http.get(&callback_a).send(), app.http.get(&callback_b).send());
        assert_eq!(a.unwrap().status(), 303);
        assert_eq!(b.unwrap().status(), 303);
        let executed = app.execute_calls(&query_param(&tab_a, "paymentID").unwrap()).await
            + app.execute_calls(&query_param(&tab_b, "paymentID").unwrap()).await;
        assert_eq!(executed, 1, "round {i}: exactly one Execute for one session");
        let s = app.session(&id).await;
        assert_eq!(s["status"], "paid", "round {i}: {s}");
        let statuses: Vec<&str> =
            s["attempts"].as_array().unwrap().iter().map(|a| a["status"].as_str().unwrap()).collect();
        assert_eq!(statuses, ["superseded", "completed"], "round {i}: the older tab was superseded");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rule_1_concurrent_starts_leave_one_live_attempt() {
    let app = spawn_app().await;
    let id = app.create_session("77.00").await;
    let path = format!("/v1/checkout/{id}/bkash");
    let (a, b, c) = tokio::join!(app.post_empty(&path), app.post_empty(&path), app.post_empty(&path));
    let ok = [a, b, c].into_iter().filter(|r| r.status() == 201).count();
    assert!(ok >= 1, "at least one start succeeds");
    let s = app.session(&id).await;
    let live = s["attempts"].as_array().unwrap().iter().filter(|a| a["status"] == "created").count();
    assert_eq!(live, 1, "one attempt can still be executed: {s}");

    // UPI: two concurrent starts create one payin at Bestin Pay.
    let id = app.create_inr_session("101.00").await;
    let path = format!("/v1/checkout/{id}/upi");
    let (a, b) = tokio::join!(app.post_empty(&path), app.post_empty(&path));
    let (a, b) = (a.status(), b.status());
    assert!(a == 201 || b == 201, "{a} {b}");
    assert_eq!(app.bestin("counters").await["payin"], 1, "one payin for one session");
    let again = app.start_upi(&id).await;
    assert_eq!(app.bestin("counters").await["payin"], 1, "a later start reuses the waiting payin: {again}");
}

// ----- rule 2 -----

#[tokio::test]
async fn rule_2_only_the_provider_says_paid_a_notification_for_another_merchant_is_refused() {
    let app = spawn_app().await;
    let id = app.create_inr_session("101.00").await;
    let started = app.start_upi(&id).await;
    let trx = trx_of(&started);
    // Genuinely signed by Bestin Pay's key, but for another merchant that paid itself with our ids.
    let data = json!({"mid": "M01OTHERMERCHANT000000000001", "trx_id": trx, "req_id": "x", "trx_type": "payin",
                      "status": "success", "amount": "101.00", "ccy": "INR"});
    let r = app.notify(&notification("N-foreign", &data)).await;
    assert_eq!(r.status(), 403);
    assert_eq!(app.checkout(&id).await["status"], "open");
    assert!(app.outbox_count("session.paid").await == 0);
}

#[tokio::test]
async fn rule_2_only_the_provider_says_paid_an_unknown_trx_id_with_our_req_id_is_refused() {
    let app = spawn_app_with(outbox_only).await;
    let id = app.create_inr_session("101.00").await;
    let started = app.start_upi(&id).await;
    let attempt = app.attempt_row(started["attempt_id"].as_str().unwrap()).await;
    let req_id = attempt.req_id.clone().unwrap();
    assert!(!req_id.contains(&attempt.id.as_str()[4..]), "req_id is not derived from the public attempt id");
    // Our mid and our req_id (as if leaked), but a trx_id we never recorded.
    let data = json!({"mid": MID, "trx_id": "PI01FORGEDFORGEDFORGEDFORGED", "req_id": req_id, "trx_type": "payin",
                      "status": "success", "amount": "101.00", "ccy": "INR"});
    let r = app.notify(&notification("N-unknown", &data)).await;
    assert_eq!(r.status(), 404);
    assert_eq!(app.checkout(&id).await["status"], "open");
    assert_eq!(
        app.attempt_row(started["attempt_id"].as_str().unwrap()).await.provider_ref.as_deref(),
        Some(trx_of(&started).as_str())
    );
    assert!(app.outbox_count("session.paid").await == 0);
}

#[tokio::test]
async fn rule_2_a_payin_whose_answer_was_lost_is_adopted_only_through_our_own_query() {
    let app = spawn_app().await;
    let id = app.create_inr_session("55.00").await;
    // The payin is made at Bestin Pay but its answer never reaches us.
    app.bestin_fault(json!({"endpoint": "payin", "delay_ms": 2500, "process": true})).await;
    let r = app.post_empty(&format!("/v1/checkout/{id}/upi")).await;
    assert_eq!(r.status(), 503);
    let s = app.session(&id).await;
    assert_eq!(s["attempts"][0]["status"], "creating", "{s}");
    // Nothing is asked before the first check is due; then our /query by req_id finds and adopts it.
    app.state.reconcile_once().await.unwrap();
    assert_eq!(app.session(&id).await["attempts"][0]["status"], "creating");
    app.advance(26).await;
    app.state.reconcile_once().await.unwrap();
    let s = app.session(&id).await;
    assert_eq!(s["attempts"][0]["status"], "created", "{s}");
    assert!(s["attempts"][0]["payment_id"].as_str().unwrap().starts_with("PI"));
}

// ----- rule 3 -----

#[tokio::test]
async fn rule_3_money_that_moved_is_never_dropped_a_success_after_cancel_pays_the_open_session() {
    let app = spawn_app_with(outbox_only).await;
    let id = app.create_inr_session("101.00").await;
    let started = app.start_upi(&id).await;
    let trx = trx_of(&started);
    let r = app.post_empty(&format!("/v1/checkout/{id}/cancel")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(app.checkout(&id).await["attempt"]["status"], "cancelled");
    // The customer's approval crossed the cancel: Bestin Pay reports the money taken.
    let data = json!({"mid": MID, "trx_id": trx, "req_id": "x", "trx_type": "payin", "status": "success",
                      "amount": "101.00", "ccy": "INR"});
    let r = app.notify(&notification("N-late", &data)).await;
    assert_eq!(r.status(), 200);
    let s = app.session(&id).await;
    assert_eq!(s["status"], "paid", "{s}");
    assert_eq!(s["attempts"][0]["status"], "completed");
    assert_eq!(s["attempts"][0]["late"], true);
    assert_eq!(app.outbox_count("session.paid").await, 1);
}

#[tokio::test]
async fn rule_3_money_that_moved_is_never_dropped_a_second_success_goes_to_review_and_is_announced() {
    let app = spawn_app_with(outbox_only).await;
    let id = app.create_inr_session("101.00").await;
    let first = app.start_upi(&id).await;
    app.post_empty(&format!("/v1/checkout/{id}/cancel")).await;
    let second = app.start_upi(&id).await;
    assert_ne!(first["attempt_id"], second["attempt_id"]);
    app.decide(second["links"]["upi"].as_str().unwrap(), "approve").await;
    app.wait_for_attempt(&id, "succeeded").await;
    // Now the first (cancelled) request turns out to have been paid too.
    let data = json!({"mid": MID, "trx_id": trx_of(&first), "req_id": "x", "trx_type": "payin", "status": "success",
                      "amount": "101.00", "ccy": "INR"});
    assert_eq!(app.notify(&notification("N-dup", &data)).await.status(), 200);
    let s = app.session(&id).await;
    assert_eq!(s["status"], "paid");
    assert_eq!(s["payment"]["attempt_id"], second["attempt_id"], "the first payment keeps the session");
    let review = s["attempts"].as_array().unwrap().iter().find(|a| a["id"] == first["attempt_id"]).unwrap();
    assert_eq!(review["status"], "review", "{s}");
    assert_eq!(review["trx_id"], trx_of(&first).as_str());
    assert_eq!(app.outbox_count("payment.needs_review").await, 1);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("outcome=\"review\""), "{metrics}");
}

#[tokio::test]
async fn rule_3_a_success_for_a_different_amount_is_held_for_review_and_never_shown_as_try_again() {
    let app = spawn_app_with(outbox_only).await;
    let id = app.create_inr_session("101.00").await;
    let started = app.start_upi(&id).await;
    let data = json!({"mid": MID, "trx_id": trx_of(&started), "req_id": "x", "trx_type": "payin",
                      "status": "success", "amount": "1.00", "ccy": "INR"});
    assert_eq!(app.notify(&notification("N-amount", &data)).await.status(), 200);
    let view = app.checkout(&id).await;
    assert_eq!(view["status"], "open");
    assert_eq!(view["attempt"]["status"], "review", "the widget shows review, not failed: {view}");
    assert_eq!(app.session(&id).await["attempts"][0]["status"], "review");
    assert_eq!(app.outbox_count("payment.needs_review").await, 1);
    let again = app.post_empty(&format!("/v1/checkout/{id}/upi")).await;
    assert_eq!(again.status(), 201, "the session stays payable; the merchant settles the review");
}

#[tokio::test]
async fn rule_3_a_bkash_duplicate_found_by_the_later_re_check_is_refunded_automatically_where_configured() {
    let app = spawn_app_with(|s| {
        outbox_only(s);
        s.payments.auto_refund_duplicates = true;
    })
    .await;
    let id = app.create_session("120.00").await;
    let first = app.start_bkash(&id).await;
    let first_payment = query_param(&first, "paymentID").unwrap();
    let callback = app.approve(&first, WALLET).await;
    // Execute answers a system error without paying; Query says not completed: the attempt fails (for now).
    app.fault(json!({"endpoint": "execute", "response": "code", "code": "9999", "message": "System Error",
                     "process": false}))
        .await;
    app.follow_callback(&callback).await;
    assert_eq!(app.session(&id).await["attempts"][0]["status"], "failed");
    // The customer pays again with another wallet.
    let second = app.start_bkash(&id).await;
    let callback = app.approve(&second, OTHER_WALLET).await;
    app.follow_callback(&callback).await;
    assert_eq!(app.session(&id).await["status"], "paid");
    // bKash completes the first payment after all (here: executed directly, as a delayed Execute would).
    let token = app.state.providers.bkash.tokens.id_token().await.unwrap();
    app.state.providers.bkash.client.execute(&token, &first_payment).await.unwrap();
    // The one later re-check finds it: money moved twice, so it goes to review and is refunded.
    app.advance(11 * 60).await;
    app.state.reconcile_once().await.unwrap();
    let s = app.session(&id).await;
    let review = &s["attempts"][0];
    assert_eq!(review["status"], "review", "{s}");
    assert_eq!(s["payment"]["payment_id"], query_param(&second, "paymentID").unwrap().as_str());
    assert_eq!(app.outbox_count("payment.needs_review").await, 1);
    assert_eq!(app.outbox_count("refund.succeeded").await, 1, "{s}");
    let refunds = app.sandbox_payment(&first_payment).await["refunds"].clone();
    assert_eq!(refunds.as_array().unwrap().len(), 1, "the duplicate was refunded: {refunds}");
    assert_eq!(s["refunded"], "0.00", "the session's own payment is untouched");
}

// ----- rule 4 -----

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rule_4_one_execute_per_payment_id_two_reconcilers_on_two_instances() {
    let app = spawn_app().await;
    let (url2, second) = start_backend(sandbox_settings(&app.sandbox, &app.db_url), app.clock.clone()).await;
    let _ = url2;
    let id = app.create_session("91.00").await;
    let url = app.start_bkash(&id).await;
    let payment_id = query_param(&url, "paymentID").unwrap();
    app.approve(&url, WALLET).await;
    // The instance that claimed the attempt for Execute died before sending it: the claim is written, Execute
    // was never sent (the state a crash between the two leaves).
    let attempt_id = app.session(&id).await["attempts"][0]["id"].as_str().unwrap().to_owned();
    let attempt = app.attempt_row(&attempt_id).await;
    let claimed = app
        .state
        .store
        .apply(
            &deshpay_server::store::Change {
                attempt: &attempt,
                from: &[deshpay_server::store::AttemptState::Created],
                to: deshpay_server::store::AttemptState::Executing,
                patch: Default::default(),
                session: deshpay_server::store::SessionEffect::Claim,
                event: "attempt.executing",
                detail: "callback success".into(),
                webhook: None,
            },
            app.clock.now_ms(),
        )
        .await
        .unwrap();
    assert!(claimed);
    assert_eq!(app.execute_calls(&payment_id).await, 0);
    app.advance(30).await;
    let (a, b) = tokio::join!(app.state.reconcile_once(), second.reconcile_once());
    a.unwrap();
    b.unwrap();
    // Either reconciler may have found the token unavailable still (its lease then runs out); once more on both.
    app.advance(30).await;
    let (a, b) = tokio::join!(app.state.reconcile_once(), second.reconcile_once());
    a.unwrap();
    b.unwrap();
    assert_eq!(app.execute_calls(&payment_id).await, 1, "one Execute across two instances' reconcilers");
    assert_eq!(app.session(&id).await["status"], "paid");
}

// ----- rule 5 -----

#[tokio::test]
async fn rule_5_when_in_doubt_ask_the_provider_execute_answering_2003_after_paying_is_settled_by_query() {
    let app = spawn_app().await;
    let id = app.create_session("63.00").await;
    let url = app.start_bkash(&id).await;
    let payment_id = query_param(&url, "paymentID").unwrap();
    let callback = app.approve(&url, WALLET).await;
    // bKash executed the payment but answered a system error.
    app.fault(json!({"endpoint": "execute", "response": "code", "code": "2003", "message": "Process failed",
                     "process": true}))
        .await;
    let back = app.follow_callback(&callback).await;
    assert_eq!(query_param(&back, "deshpay_status").as_deref(), Some("paid"), "{back}");
    assert_eq!(app.session(&id).await["status"], "paid");
    assert_eq!(app.execute_calls(&payment_id).await, 1);
    assert!(app.counters().await["query"].as_i64().unwrap() >= 1, "Query decided");
}

#[tokio::test]
async fn rule_5_when_in_doubt_ask_the_provider_execute_answering_9999_without_paying_fails_after_query() {
    let app = spawn_app().await;
    let id = app.create_session("64.00").await;
    let url = app.start_bkash(&id).await;
    let callback = app.approve(&url, WALLET).await;
    app.fault(json!({"endpoint": "execute", "response": "code", "code": "9999", "message": "System Error",
                     "process": false}))
        .await;
    let back = app.follow_callback(&callback).await;
    assert_eq!(query_param(&back, "deshpay_status").as_deref(), Some("failed"), "{back}");
    assert!(app.counters().await["query"].as_i64().unwrap() >= 1, "Query decided, not the code");
    let s = app.session(&id).await;
    assert_eq!(s["status"], "open");
    assert_eq!(s["attempts"][0]["status"], "failed");
}

#[tokio::test]
async fn rule_5_a_refund_whose_answer_and_later_status_are_both_lost_stays_pending() {
    let app = spawn_app_with(outbox_only).await;
    let (id, payment_id, _) = app.pay("300.00", WALLET).await;
    // bKash refunds, but its answer and every refund status answer are lost.
    app.fault(json!({"endpoint": "refund", "delay_ms": 2500, "process": true})).await;
    app.fault(json!({"endpoint": "refund_status", "response": "http_status", "status": 502, "process": false,
                     "times": 100}))
        .await;
    let r = app
        .http
        .post(format!("{}/v1/sessions/{id}/refunds", app.url))
        .bearer_auth(API_KEY)
        .header("Idempotency-Key", "refund-lost-1")
        .json(&json!({"amount": "100.00"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let refund: Value = r.json().await.unwrap();
    assert_eq!(refund["status"], "pending");
    for _ in 0..3 {
        app.advance(3600).await;
        app.state.reconcile_once().await.unwrap();
    }
    let s = app.session(&id).await;
    assert_eq!(s["refunds"][0]["status"], "pending", "never failed on silence: {s}");
    assert!(app.outbox_count("refund.failed").await == 0);
    assert_eq!(app.sandbox_payment(&payment_id).await["refunds"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn rule_8_a_5xx_after_the_refund_went_through_then_a_retry_with_the_same_key_refunds_once() {
    let app = spawn_app().await;
    let (id, payment_id, _) = app.pay("310.00", WALLET).await;
    app.fault(json!({"endpoint": "refund", "response": "http_status", "status": 500, "process": true})).await;
    let send = || {
        app.http
            .post(format!("{}/v1/sessions/{id}/refunds", app.url))
            .bearer_auth(API_KEY)
            .header("Idempotency-Key", "refund-5xx-1")
            .json(&json!({"amount": "10.00"}))
            .send()
    };
    let first = send().await.unwrap();
    let first_status = first.status();
    let first_body: Value = first.json().await.unwrap();
    let again = send().await.unwrap();
    assert_eq!(again.status(), first_status, "the stored outcome is replayed");
    assert_eq!(again.json::<Value>().await.unwrap()["id"], first_body["id"]);
    assert_eq!(app.sandbox_payment(&payment_id).await["refunds"].as_array().unwrap().len(), 1, "one refund");
    let s = app.session(&id).await;
    assert_eq!(s["refunds"].as_array().unwrap().len(), 1);
    assert_eq!(s["refunds"][0]["status"], "completed", "refund status found the refund: {s}");
}

// ----- rule 6 -----

#[tokio::test]
async fn rule_6_an_expired_sessions_callback_never_executes_after_the_invoice_was_paid_elsewhere() {
    let app = spawn_app().await;
    let invoice = format!("INV-{}", rand_suffix());
    let body = |amount: &str| {
        json!({"amount": amount, "currency": "BDT", "invoice": invoice, "return_url": "http://shop.test/r",
               "expires_in": 60})
    };
    let r = app.post_json("/v1/sessions", &body("150.00")).await;
    let first = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let url = app.start_bkash(&first).await;
    let payment_id = query_param(&url, "paymentID").unwrap();
    let late_callback = app.approve(&url, WALLET).await;
    app.advance(61).await;
    // The merchant makes a new session for the same invoice and the customer pays it.
    let r = app.post_json("/v1/sessions", &body("150.00")).await;
    assert_eq!(r.status(), 201, "the expired session's waiting bKash attempt does not hold the invoice");
    let second = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let url2 = app.start_bkash(&second).await;
    let cb2 = app.approve(&url2, OTHER_WALLET).await;
    app.follow_callback(&cb2).await;
    assert_eq!(app.session(&second).await["status"], "paid");
    // Now the first session's callback arrives.
    let back = app.follow_callback(&late_callback).await;
    assert_ne!(query_param(&back, "deshpay_status").as_deref(), Some("paid"));
    assert_eq!(app.execute_calls(&payment_id).await, 0, "never executed");
    let s = app.session(&first).await;
    assert_eq!(s["status"], "expired");
    assert_eq!(s["attempts"][0]["status"], "expired");
}

#[tokio::test]
async fn rule_6_an_invoice_stays_locked_while_an_earlier_sessions_upi_request_can_still_be_paid() {
    let app = spawn_app().await;
    let invoice = format!("INV-{}", rand_suffix());
    let body = json!({"amount": "101.00", "currency": "INR", "invoice": invoice, "return_url": "http://shop.test/r",
                      "methods": ["upi"], "expires_in": 60});
    let first =
        app.post_json("/v1/sessions", &body).await.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    app.start_upi(&first).await;
    app.advance(61).await;
    let r = app.post_json("/v1/sessions", &body).await;
    assert_eq!(r.status(), 409, "the UPI request of the expired session can still take money");
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "invoice_in_use");
}

#[tokio::test]
async fn rule_6_a_success_callback_before_approval_is_checked_and_the_attempt_stays_payable() {
    let app = spawn_app().await;
    let id = app.create_session("66.00").await;
    let url = app.start_bkash(&id).await;
    let payment_id = query_param(&url, "paymentID").unwrap();
    // A forged (or early) success callback: Execute answers 2056, Query says Initiated.
    let forged = format!("{}/v1/bkash/callback?paymentID={payment_id}&status=success", app.url);
    let back = app.follow_callback(&forged).await;
    assert_eq!(query_param(&back, "deshpay_status").as_deref(), Some("pending"), "{back}");
    assert_eq!(app.session(&id).await["attempts"][0]["status"], "created");
    // The customer then really pays: Execute runs and the session is paid.
    let callback = app.approve(&url, WALLET).await;
    let back = app.follow_callback(&callback).await;
    assert_eq!(query_param(&back, "deshpay_status").as_deref(), Some("paid"), "{back}");
}

// ----- rule 7 -----

#[tokio::test]
async fn rule_7_every_transition_writes_its_event_and_webhook_in_the_same_transaction() {
    let app = spawn_app_with(outbox_only).await;
    let (id, _, _) = app.pay("99.00", WALLET).await;
    let sid = deshpay_api::SessionId::parse(&id).unwrap();
    let events: Vec<String> = app.state.store.events(&sid).await.unwrap().into_iter().map(|(k, _)| k).collect();
    for kind in ["attempt.creating", "attempt.created", "attempt.executing", "attempt.completed"] {
        assert!(events.iter().any(|e| e == kind), "{kind} in {events:?}");
    }
    assert_eq!(app.outbox_count("session.paid").await, 1);
    if app.db_url.starts_with("sqlite:") {
        assert_eq!(app.state.store.sqlite_synchronous().await.unwrap(), Some(2), "synchronous = FULL");
    }
}

// ----- rule 8 -----

#[tokio::test]
async fn rule_8_idempotency_keys_behave_like_stripes() {
    let app = spawn_app().await;
    let invoice = format!("IDEM-{}", rand_suffix());
    let body = json!({"amount": "10.00", "currency": "BDT", "invoice": invoice, "return_url": "http://shop.test/r"});
    let post = |key: &'static str, body: Value| {
        app.http
            .post(format!("{}/v1/sessions", app.url))
            .bearer_auth(API_KEY)
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
    };
    // A validation error does nothing: the key is released and a corrected request with it runs.
    let bad = post(
        "k-1",
        json!({"amount": "0.00", "currency": "BDT", "invoice": invoice, "return_url": "http://shop.test/r"}),
    )
    .await
    .unwrap();
    assert_eq!(bad.status(), 400);
    let first = post("k-1", body.clone()).await.unwrap();
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let replay = post("k-1", body.clone()).await.unwrap();
    assert_eq!(replay.status(), 201);
    assert_eq!(replay.json::<Value>().await.unwrap()["id"], first["id"]);
    let other =
        post("k-1", json!({"amount": "11.00", "currency": "BDT", "invoice": "X", "return_url": "http://shop.test/r"}))
            .await
            .unwrap();
    assert_eq!(other.status(), 409);
    assert_eq!(other.json::<Value>().await.unwrap()["error"]["code"], "idempotency_conflict");
    // After 24 hours the key is forgotten.
    app.advance(24 * 3600 + 1).await;
    let later = post("k-1", json!({"amount": "12.00", "currency": "BDT", "invoice": format!("{invoice}-2"), "return_url": "http://shop.test/r"})).await.unwrap();
    assert_eq!(later.status(), 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rule_8_a_concurrent_request_with_the_same_key_is_refused_while_the_first_runs() {
    let app = spawn_app().await;
    let (id, payment_id, _) = app.pay("320.00", WALLET).await;
    app.fault(json!({"endpoint": "refund", "delay_ms": 800, "process": true})).await;
    let send = || {
        app.http
            .post(format!("{}/v1/sessions/{id}/refunds", app.url))
            .bearer_auth(API_KEY)
            .header("Idempotency-Key", "refund-concurrent")
            .json(&json!({"amount": "20.00"}))
            .send()
    };
    let slow = send();
    let fast = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        send().await
    };
    let (slow, fast) = tokio::join!(slow, fast);
    assert_eq!(slow.unwrap().status(), 201);
    let fast = fast.unwrap();
    assert_eq!(fast.status(), 409);
    assert_eq!(app.sandbox_payment(&payment_id).await["refunds"].as_array().unwrap().len(), 1);
}

// ----- rule 9 -----

#[tokio::test]
async fn rule_9_provider_queries_respect_the_providers_limits() {
    let app = spawn_app().await;
    app.bestin_fault(json!({"endpoint": "notify", "response": "drop", "times": 100})).await;
    let id = app.create_inr_session("90.00").await;
    let started = app.start_upi(&id).await;
    app.decide(started["links"]["upi"].as_str().unwrap(), "approve").await;
    for _ in 0..3 {
        app.state.reconcile_once().await.unwrap();
    }
    assert_eq!(app.bestin("counters").await["query"], 0, "no /query in the first 25 s");
    app.advance(26).await;
    app.state.reconcile_once().await.unwrap();
    app.state.reconcile_once().await.unwrap();
    assert_eq!(app.bestin("counters").await["query"], 1, "one check when it is due, not one per pass");
    assert_eq!(app.checkout(&id).await["status"], "paid");
}

// ----- rule 10 -----

#[tokio::test]
async fn rule_10_the_reconciler_never_stalls_a_failing_row_is_skipped_and_the_budget_ends_in_review() {
    let app = spawn_app_with(outbox_only).await;
    // Two attempts stuck in executing: Execute sent, its answer lost.
    let mut stuck = Vec::new();
    for amount in ["71.00", "72.00"] {
        let id = app.create_session(amount).await;
        let url = app.start_bkash(&id).await;
        let callback = app.approve(&url, WALLET).await;
        app.fault(json!({"endpoint": "execute", "response": "http_status", "status": 504, "delay_ms": 2500,
                         "process": false}))
            .await;
        app.fault(json!({"endpoint": "query", "response": "http_status", "status": 502, "process": false})).await;
        app.follow_callback(&callback).await;
        assert_eq!(app.session(&id).await["attempts"][0]["status"], "executing");
        stuck.push(id);
    }
    // Query keeps failing for the first; the second is resolved in the same pass all the same.
    app.fault(json!({"endpoint": "query", "response": "http_status", "status": 502, "process": false, "times": 1}))
        .await;
    app.advance(60).await;
    app.state.reconcile_once().await.unwrap();
    let statuses: Vec<Value> = futures_statuses(&app, &stuck).await;
    assert!(statuses.iter().any(|s| s == "failed"), "one resolved despite the other failing: {statuses:?}");
    // The other one spends its retry budget and goes to a person.
    app.fault(json!({"endpoint": "query", "response": "http_status", "status": 502, "process": false, "times": 100}))
        .await;
    for _ in 0..25 {
        app.advance(60).await;
        app.state.reconcile_once().await.unwrap();
    }
    let statuses = futures_statuses(&app, &stuck).await;
    assert!(statuses.iter().any(|s| s == "review"), "{statuses:?}");
    assert_eq!(app.outbox_count("payment.needs_review").await, 1);
}

async fn futures_statuses(app: &TestApp, ids: &[String]) -> Vec<Value> {
    let mut out = Vec::new();
    for id in ids {
        out.push(app.session(id).await["attempts"][0]["status"].clone());
    }
    out
}

// ----- the merchant sees why -----

#[tokio::test]
async fn the_merchant_sees_the_insufficient_balance_attempt_and_bkashs_reason() {
    let app = spawn_app().await;
    let (id, _, back) = app.pay("200.00", "01823074817").await;
    assert_eq!(query_param(&back, "deshpay_status").as_deref(), Some("failed"));
    let s = app.session(&id).await;
    assert_eq!(s["status"], "open");
    let attempt = &s["attempts"][0];
    assert_eq!(attempt["status"], "failed");
    assert_eq!(attempt["method"], "bkash");
    assert_eq!(attempt["code"], "2023");
    assert_eq!(attempt["message"], "Insufficient Balance");
    assert!(attempt["payment_id"].as_str().is_some());
    assert_eq!(attempt["amount"], "200.00");
}

#[tokio::test]
async fn the_widget_sees_no_provider_text_and_the_merchant_sees_it_all() {
    let app = spawn_app().await;
    let id = app.create_session("41.00").await;
    app.fault(json!({"endpoint": "create", "response": "code", "code": "2001", "message": "Invalid App Key",
                     "process": false}))
        .await;
    let r = app.post_empty(&format!("/v1/checkout/{id}/bkash")).await;
    assert_eq!(r.status(), 502);
    let body = r.text().await.unwrap();
    assert!(!body.contains("Invalid App Key"), "{body}");
    let view = app.checkout(&id).await;
    assert_eq!(view["attempt"]["message"], Value::Null, "{view}");
    assert_eq!(view["attempt"]["reason"], "failed", "the merchant's set-up: neutral words for the customer");
    let s = app.session(&id).await;
    assert_eq!(s["attempts"][0]["code"], "2001");
    assert_eq!(s["attempts"][0]["message"], "Invalid App Key", "the merchant keeps bKash's words");
}
