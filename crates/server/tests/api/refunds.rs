//! Refunds (full, partial, never more than paid) and transaction search, through the merchant API.

use crate::helpers::*;
use deshpay_server::configuration::RefundApi;
use serde_json::{Value, json};

async fn refund(app: &TestApp, id: &str, amount: &str) -> reqwest::Response {
    app.post_json(&format!("/v1/sessions/{id}/refunds"), &json!({"amount": amount, "reason": "customer asked"})).await
}

#[tokio::test]
async fn partial_refunds_add_up_and_never_exceed_the_payment() {
    let app = spawn_app().await;
    let (id, _, _) = app.pay("500.00", WALLET).await;

    let r = refund(&app, &id, "200.00").await;
    assert_eq!(r.status(), 201);
    let first: Value = r.json().await.unwrap();
    assert_eq!(first["status"], "completed");
    assert_eq!(first["amount"], "200.00");
    assert_eq!(first["refund_trx_id"].as_str().unwrap().len(), 10);

    let r = refund(&app, &id, "300.01").await;
    assert_eq!(r.status(), 409);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "refund_exceeds_payment");

    let r = refund(&app, &id, "300.00").await;
    assert_eq!(r.status(), 201);
    let r = refund(&app, &id, "0.01").await;
    assert_eq!(r.status(), 409, "fully refunded");

    let s = app.session(&id).await;
    assert_eq!(s["refunded"], "500.00");
    assert_eq!(s["refunds"].as_array().unwrap().len(), 2);
    assert_eq!(app.counters().await["refund"], 2, "rejected refunds never reach bKash");
}

#[tokio::test]
async fn a_full_refund_works_with_the_v2_refund_api() {
    let app = spawn_app_with(|s| s.bkash.refund_api = RefundApi::V2).await;
    let (id, _, _) = app.pay("150.00", WALLET).await;
    let r = refund(&app, &id, "150.00").await;
    assert_eq!(r.status(), 201);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "completed");
    assert_eq!(app.session(&id).await["refunded"], "150.00");
}

#[tokio::test]
async fn refund_inputs_are_checked() {
    let app = spawn_app().await;
    let unpaid = app.create_session("10.00").await;
    let r = refund(&app, &unpaid, "1.00").await;
    assert_eq!(r.status(), 409);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "payment_not_found");

    let (id, _, _) = app.pay("10.00", WALLET).await;
    for (amount, code) in [("0", "invalid_amount"), ("abc", "invalid_amount"), ("1.001", "invalid_amount")] {
        let r = refund(&app, &id, amount).await;
        assert_eq!(r.status(), 400, "{amount}");
        assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], code);
    }
    let r = app
        .post_json(&format!("/v1/sessions/{id}/refunds"), &json!({"amount": "1.00", "reason": "r".repeat(256)}))
        .await;
    assert_eq!(r.status(), 400);
    let r = app.post_json(&format!("/v1/sessions/{id}/refunds"), &json!({"reason": "no amount"})).await;
    assert_eq!(r.status(), 422);
    assert_eq!(app.counters().await["refund"], 0);
}

#[tokio::test]
async fn a_repeated_refund_request_with_the_same_key_refunds_once() {
    let app = spawn_app().await;
    let (id, _, _) = app.pay("100.00", WALLET).await;
    let send = || {
        app.http
            .post(format!("{}/v1/sessions/{id}/refunds", app.url))
            .bearer_auth(API_KEY)
            .header("idempotency-key", "refund-1")
            .json(&json!({"amount": "60.00"}))
            .send()
    };
    let a: Value = send().await.unwrap().json().await.unwrap();
    let b: Value = send().await.unwrap().json().await.unwrap();
    assert_eq!(a["id"], b["id"]);
    assert_eq!(app.counters().await["refund"], 1);
    assert_eq!(app.session(&id).await["refunded"], "60.00");
}

#[tokio::test]
async fn a_refund_without_answer_is_settled_by_refund_status_not_by_retrying() {
    let app = spawn_app().await;
    let (id, _, _) = app.pay("100.00", WALLET).await;
    app.fault(json!({"endpoint": "refund", "delay_ms": BKASH_TIMEOUT_MS + 500, "process": true})).await;
    let r = refund(&app, &id, "40.00").await;
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    // bKash did the refund; refund status, asked at once, shows it.
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["status"], "completed");
    let s = app.session(&id).await;
    assert_eq!(s["refunded"], "40.00", "{s}");
    let c = app.counters().await;
    assert_eq!(c["refund"], 1, "one refund call, never a blind retry: {c}");
    assert!(c["refund_status"].as_i64().unwrap() >= 1, "the outcome came from refund status: {c}");
}

#[tokio::test]
async fn a_bkash_refusal_is_reported_with_its_message() {
    let app = spawn_app().await;
    let (id, _, _) = app.pay("100.00", WALLET).await;
    app.advance(16 * 24 * 3600).await; // past the 15-day refund window
    let r = refund(&app, &id, "10.00").await;
    assert_eq!(r.status(), 422);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "refund_failed");
    let s = app.session(&id).await;
    assert_eq!(s["refunds"][0]["status"], "failed");
    assert_eq!(s["refunded"], "0.00");
}

#[tokio::test]
async fn search_finds_a_paid_transaction() {
    let app = spawn_app().await;
    let (id, _, _) = app.pay("321.00", WALLET).await;
    let trx = app.session(&id).await["payment"]["trx_id"].as_str().unwrap().to_owned();
    let r = app.get(&format!("/v1/bkash/transactions/{trx}")).await;
    assert_eq!(r.status(), 200);
    let t: Value = r.json().await.unwrap();
    assert_eq!(t["trx_id"], trx.as_str());
    assert_eq!(t["amount"], "321.00");
    assert_eq!(t["status"], "Completed");
    assert_eq!(t["customer"], "017*****575");

    let r = app.get("/v1/bkash/transactions/ZZZZZZZZZZ").await;
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "transaction_not_found");
    let r = app.get("/v1/bkash/transactions/bad-id!").await;
    assert_eq!(r.status(), 400);
}
