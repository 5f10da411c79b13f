//! Signed webhooks to the merchant: written with the change they report, delivered until acknowledged.

use crate::helpers::*;
use axum::http::{HeaderMap, StatusCode};
use deshpay_server::configuration::WebhookSettings;
use deshpay_server::webhooks::signature;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

const SECRET: &str = "whsec_test_0123456789abcdef";

/// What the merchant's endpoint received: headers and parsed body, in order.
#[derive(Clone, Default)]
pub(crate) struct Receiver {
    received: Arc<Mutex<Vec<(HeaderMap, String)>>>,
    /// Statuses to answer, in order; 200 once they run out.
    answers: Arc<Mutex<VecDeque<u16>>>,
}

impl Receiver {
    /// Serves on 127.0.0.1:0; returns its URL.
    pub(crate) async fn start(&self, answers: &[u16]) -> String {
        self.answers.lock().unwrap().extend(answers);
        let me = self.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let me = me.clone();
                async move {
                    me.received.lock().unwrap().push((headers, body));
                    let status = me.answers.lock().unwrap().pop_front().unwrap_or(200);
                    StatusCode::from_u16(status).unwrap()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    fn received(&self) -> Vec<(HeaderMap, String)> {
        self.received.lock().unwrap().clone()
    }

    /// Waits until `n` requests arrived (at most [`WAIT`]).
    pub(crate) async fn wait_for(&self, n: usize) -> Vec<(HeaderMap, String)> {
        eventually(WAIT, || async {
            let received = self.received();
            if received.len() >= n {
                Ok(received)
            } else {
                Err(format!("expected {n} webhook requests, got {received:?}"))
            }
        })
        .await
    }
}

impl TestApp {
    /// Once every outbox row is recorded as delivered, moves the backend's clock `secs` forward (past any lease
    /// or retry) and runs one webhook delivery pass, as the dispatcher would: it must send nothing more.
    async fn deliver_webhooks_after(&self, secs: i64) {
        eventually(WAIT, || async {
            let rows = self.state.store.webhooks().await.unwrap();
            if rows.iter().all(|r| r.3) { Ok(()) } else { Err(format!("not all recorded delivered: {rows:?}")) }
        })
        .await;
        self.clock.advance_secs(secs);
        deshpay_server::webhooks::deliver_due(&self.state).await.expect("delivery pass");
    }
}

pub(crate) fn webhook(url: &str, retry_ms: u64, max_attempts: u32) -> WebhookSettings {
    WebhookSettings {
        url: url.into(),
        secret: SECRET.into(),
        secret_next: None,
        retry_ms,
        max_attempts,
        timeout_ms: 2_000,
    }
}

/// Checks the signature header of a request as a merchant would, and returns the parsed event.
fn verified(headers: &HeaderMap, body: &str) -> Value {
    let header = headers["deshpay-signature"].to_str().unwrap();
    let t: i64 = header.strip_prefix("t=").and_then(|r| r.split(',').next()).unwrap().parse().unwrap();
    assert_eq!(header, signature(SECRET.as_bytes(), t, body), "the HMAC of t.body under the shared secret");
    assert_ne!(header, signature(b"another secret entirely", t, body));
    let event: Value = serde_json::from_str(body).unwrap();
    assert_eq!(headers["deshpay-event-id"].to_str().unwrap(), event["id"].as_str().unwrap());
    assert_eq!(headers["content-type"], "application/json");
    event
}

#[tokio::test]
async fn a_paid_session_is_reported_once_with_a_valid_signature() {
    let receiver = Receiver::default();
    let url = receiver.start(&[]).await;
    let app = spawn_app_with(|s| s.webhook = Some(webhook(&url, 50, 5))).await;
    let (id, payment_id, _) = app.pay("250.00", WALLET).await;

    let got = receiver.wait_for(1).await;
    let event = verified(&got[0].0, &got[0].1);
    assert_eq!(event["type"], "session.paid");
    assert!(event["id"].as_str().unwrap().starts_with("evt_"));
    let data = &event["data"];
    assert_eq!(data["session_id"], id.as_str());
    assert_eq!(data["method"], "bkash");
    assert_eq!(data["amount"], "250.00");
    assert_eq!(data["amount_minor"], 25000);
    assert_eq!(data["currency"], "BDT");
    assert_eq!(data["provider_ref"], payment_id.as_str());
    assert_eq!(data["trx_id"], app.session(&id).await["payment"]["trx_id"]);
    assert!(!got[0].1.contains(SECRET), "the secret never travels");

    // An hour later every retry would be due: one delivery pass sends none.
    app.deliver_webhooks_after(3600).await;
    assert_eq!(receiver.received().len(), 1, "delivered once");
    let rows = app.state.store.webhooks().await.unwrap();
    assert_eq!(rows.len(), 1);
    assert!(rows[0].3 && rows[0].2 == 1, "delivered on the first attempt: {rows:?}");
}

#[tokio::test]
async fn a_failing_endpoint_gets_the_same_event_until_it_answers_2xx() {
    let receiver = Receiver::default();
    let url = receiver.start(&[500, 503]).await;
    let app = spawn_app_with(|s| s.webhook = Some(webhook(&url, 20, 5))).await;
    app.pay("100.00", WALLET).await;

    let got = receiver.wait_for(3).await;
    let ids: Vec<&str> = got.iter().map(|(h, _)| h["deshpay-event-id"].to_str().unwrap()).collect();
    assert!(ids.iter().all(|i| *i == ids[0]), "one event, sent again: {ids:?}");
    for (headers, body) in &got {
        verified(headers, body);
    }
    app.deliver_webhooks_after(3600).await;
    assert_eq!(receiver.received().len(), 3, "no more after the 2xx");
    let rows = app.state.store.webhooks().await.unwrap();
    assert_eq!((rows[0].2, rows[0].3), (3, true), "{rows:?}");
}

#[tokio::test]
async fn refunds_are_reported_after_the_payment() {
    let receiver = Receiver::default();
    let url = receiver.start(&[]).await;
    let app = spawn_app_with(|s| s.webhook = Some(webhook(&url, 50, 5))).await;
    let (id, _, _) = app.pay("500.00", WALLET).await;
    let r = app.post_json(&format!("/v1/sessions/{id}/refunds"), &json!({"amount": "120.50"})).await;
    assert_eq!(r.status(), 201);
    let refund: Value = r.json().await.unwrap();

    let got = receiver.wait_for(2).await;
    let events: Vec<Value> = got.iter().map(|(h, b)| verified(h, b)).collect();
    assert_eq!(events[0]["type"], "session.paid");
    assert_eq!(events[1]["type"], "refund.succeeded");
    assert_eq!(events[1]["data"]["refund_id"], refund["id"]);
    assert_eq!(events[1]["data"]["session_id"], id.as_str());
    assert_eq!(events[1]["data"]["amount"], "120.50");
    assert_eq!(events[1]["data"]["refund_trx_id"], refund["refund_trx_id"]);
}

#[tokio::test]
async fn an_approved_upi_payment_is_reported_too() {
    let receiver = Receiver::default();
    let url = receiver.start(&[]).await;
    let app = spawn_app_with(|s| s.webhook = Some(webhook(&url, 50, 5))).await;
    let id = app.create_inr_session("101.00").await;
    let started = app.start_upi(&id).await;
    app.decide(started["links"]["upi"].as_str().unwrap(), "approve").await;
    app.wait_for_attempt(&id, "succeeded").await;

    let got = receiver.wait_for(1).await;
    let event = verified(&got[0].0, &got[0].1);
    assert_eq!(event["type"], "session.paid");
    assert_eq!(event["data"]["method"], "upi");
    assert_eq!(event["data"]["amount"], "101.00");
    assert_eq!(event["data"]["currency"], "INR");
}

#[tokio::test]
async fn an_unreachable_endpoint_is_retried_then_given_up_and_the_payment_stands() {
    // A port nothing listens on.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", closed.local_addr().unwrap());
    drop(closed);
    let app = spawn_app_with(|s| s.webhook = Some(webhook(&url, 10, 3))).await;
    let (id, _, _) = app.pay("75.00", WALLET).await;
    assert_eq!(app.session(&id).await["status"], "paid", "delivery problems never touch the payment");

    let rows = eventually(WAIT, || async {
        let rows = app.state.store.webhooks().await.unwrap();
        if rows.first().is_some_and(|r| r.4) { Ok(rows) } else { Err(format!("not given up yet: {rows:?}")) }
    })
    .await;
    let (_, kind, attempts, delivered, gave_up, error) = rows[0].clone();
    assert_eq!((kind.as_str(), attempts, delivered, gave_up), ("session.paid", 3, false, true), "{rows:?}");
    assert_eq!(error.as_deref(), Some("connection failed"));
}

#[tokio::test]
async fn a_short_webhook_secret_is_refused_at_start() {
    let sandbox_app = spawn_app().await; // for its settings
    let mut settings = sandbox_settings(&sandbox_app.sandbox, &sandbox_app.db_url);
    settings.server.listen = "127.0.0.1:0".into();
    settings.webhook = Some(WebhookSettings { secret: "short".into(), ..webhook("http://127.0.0.1:9/hook", 10, 3) });
    let Err(error) = deshpay_server::startup::Application::build(settings).await else {
        panic!("a 5-byte webhook secret was accepted");
    };
    assert!(error.to_string().contains("webhook.secret"), "{error}");
    assert!(!error.to_string().contains("short"), "the secret is not echoed");
}
