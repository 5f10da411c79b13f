//! UPI through Bestin Pay: payins with deep links, the customer's approval, signed notifications (verified,
//! deduplicated, forward only), the fallback poller, cancel, payouts and balance.

use crate::helpers::*;
use base64::Engine;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer};
use serde_json::{Value, json};
use sha2::Sha512;
use std::time::Duration;

/// The sandbox's published test key: lets tests sign notifications the backend must judge on content.
const TEST_PRIVATE_KEY: &str = include_str!("../../../sandbox/keys/bestin-test-private.pem");

pub(crate) fn sign(data: &Value) -> String {
    let key = SigningKey::<Sha512>::new(rsa::RsaPrivateKey::from_pkcs8_pem(TEST_PRIVATE_KEY).unwrap());
    let canonical = deshpay_server::providers::bestin::notify::canonical_string(data.as_object().unwrap());
    base64::engine::general_purpose::STANDARD.encode(key.sign(canonical.as_bytes()).to_bytes())
}

impl TestApp {
    pub(crate) async fn create_inr_session(&self, amount: &str) -> String {
        let r = self
            .post_json(
                "/v1/sessions",
                &json!({"amount": amount, "currency": "INR", "invoice": format!("IN-{}", rand_suffix()),
                        "return_url": "http://shop.test/return", "methods": ["upi"]}),
            )
            .await;
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
        r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
    }

    pub(crate) async fn start_upi(&self, id: &str) -> Value {
        let r = self.http.post(format!("{}/v1/checkout/{id}/upi", self.url)).send().await.unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
        r.json().await.unwrap()
    }

    /// The customer's UPI app: the sandbox's approval page, by form post.
    pub(crate) async fn decide(&self, link: &str, decision: &str) {
        let page =
            self.http.get(format!("{}/upi/approve", self.sandbox.url())).query(&[("link", link)]).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let html = page.text().await.unwrap();
        assert!(html.contains("Approve") && html.contains("Decline"));
        let trx = html.split("/upi/approve/").nth(1).and_then(|s| s.split('"').next()).expect("form action").to_owned();
        let r = self.form(&format!("{}/upi/approve/{trx}", self.sandbox.url()), &[("decision", decision)]).await;
        assert!(r.status().is_success(), "{}", r.status());
    }

    pub(crate) async fn wait_for_attempt(&self, id: &str, status: &str) -> Value {
        eventually(WAIT, || async {
            let view = self.checkout(id).await;
            if view["attempt"]["status"] == status {
                Ok(view)
            } else {
                Err(format!("attempt never became {status}: {view}"))
            }
        })
        .await
    }

    /// Waits until the sandbox has made a notification attempt: it records one once our backend answered it
    /// (or a fault dropped it).
    async fn notification_attempted(&self) {
        eventually(WAIT, || async {
            let attempts = self.bestin("notifications").await;
            if attempts.as_array().is_some_and(|a| !a.is_empty()) {
                Ok(())
            } else {
                Err("no notification attempt".into())
            }
        })
        .await;
    }

    pub(crate) async fn notify(&self, body: &Value) -> reqwest::Response {
        self.http.post(format!("{}/v1/bestinpay/notify", self.url)).json(body).send().await.unwrap()
    }

    pub(crate) async fn bestin(&self, path: &str) -> Value {
        self.control.bestin(path).await
    }

    /// The sandbox's notification log once it holds a delivery our backend acknowledged: the sandbox
    /// records it only after our `success` answer arrives, just after the store changed.
    async fn delivered_notifications(&self, path: &str) -> Value {
        eventually(WAIT, || async {
            let deliveries = self.bestin(path).await;
            if deliveries.as_array().unwrap().iter().any(|d| d["delivered"] == true) {
                Ok(deliveries)
            } else {
                Err(format!("no acknowledged delivery: {deliveries}"))
            }
        })
        .await
    }
}

#[tokio::test]
async fn an_approved_upi_payment_is_marked_paid_by_the_signed_notification() {
    let app = spawn_app().await;
    let id = app.create_inr_session("101.00").await;
    let started = app.start_upi(&id).await;
    let links = &started["links"];
    assert!(links["paytm"].as_str().unwrap().starts_with("paytmmp://"));
    assert!(links["phonepe"].as_str().unwrap().starts_with("phonepe://"));
    let upi = links["upi"].as_str().unwrap();
    assert!(upi.starts_with("upi://pay?") && upi.contains("am=101.00") && upi.contains("cu=INR"), "{upi}");
    assert_eq!(started["qr"], upi);
    // The backend draws the QR code of that link for the widget.
    let drawn = deshpay_server::qr::draw(upi).unwrap();
    assert_eq!(started["qr_svg"]["size"], drawn.size);
    assert_eq!(started["qr_svg"]["path"], drawn.path.as_str());
    assert!(drawn.size >= 21 + 8 && drawn.path.starts_with("M4 4h7"), "a finder pattern at the corner");
    assert_eq!(app.checkout(&id).await["attempt"]["status"], "pending");

    app.decide(links["paytm"].as_str().unwrap(), "approve").await;
    let view = app.wait_for_attempt(&id, "succeeded").await;
    assert_eq!(view["status"], "paid");
    let s = app.session(&id).await;
    assert_eq!(s["payment"]["method"], "upi");
    assert!(s["payment"]["trx_id"].as_str().unwrap().starts_with("PI"));
    let deliveries = app.delivered_notifications("notifications").await;
    assert!(deliveries.as_array().unwrap().iter().any(|d| d["delivered"] == true));
}

#[tokio::test]
async fn starting_upi_twice_reuses_the_pending_payin() {
    let app = spawn_app().await;
    let id = app.create_inr_session("50.00").await;
    let a = app.start_upi(&id).await;
    let b = app.start_upi(&id).await;
    assert_eq!(a["attempt_id"], b["attempt_id"]);
    assert_eq!(app.bestin("counters").await["payin"], 1, "one payin, so the customer cannot pay twice");
}

#[tokio::test]
async fn a_declined_upi_payment_fails_and_can_be_retried() {
    let app = spawn_app().await;
    let id = app.create_inr_session("75.00").await;
    let started = app.start_upi(&id).await;
    app.decide(started["links"]["upi"].as_str().unwrap(), "decline").await;
    let view = app.wait_for_attempt(&id, "failed").await;
    assert_eq!(view["status"], "open");
    assert_eq!(view["attempt"]["reason"], "declined");
    assert!(app.session(&id).await["attempts"][0]["message"].as_str().unwrap().contains("declined"));
    let again = app.start_upi(&id).await;
    assert_ne!(again["attempt_id"], started["attempt_id"], "a new payin with a fresh req_id");
}

#[tokio::test]
async fn an_unpaid_upi_request_expires() {
    let app = spawn_app().await;
    let id = app.create_inr_session("60.00").await;
    app.start_upi(&id).await;
    app.advance(901).await;
    let view = app.wait_for_attempt(&id, "expired").await;
    assert_eq!(view["status"], "open");
}

#[tokio::test]
async fn the_customer_can_cancel_a_pending_upi_payment() {
    let app = spawn_app().await;
    let id = app.create_inr_session("60.00").await;
    app.start_upi(&id).await;
    let r = app.http.post(format!("{}/v1/checkout/{id}/cancel", app.url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["attempt"]["status"], "cancelled");
    assert_eq!(app.bestin("counters").await["cancel"], 1, "cancelled at Bestin Pay, not only here");
    let r = app.http.post(format!("{}/v1/checkout/{id}/cancel", app.url)).send().await.unwrap();
    assert_eq!(r.status(), 409);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "nothing_to_cancel");
}

async fn paid_upi_session(app: &TestApp) -> (String, String) {
    let id = app.create_inr_session("101.00").await;
    let started = app.start_upi(&id).await;
    app.decide(started["links"]["upi"].as_str().unwrap(), "approve").await;
    app.wait_for_attempt(&id, "succeeded").await;
    let trx = app.session(&id).await["payment"]["trx_id"].as_str().unwrap().to_owned();
    (id, trx)
}

#[tokio::test]
async fn tampered_forged_and_malformed_notifications_are_rejected_and_change_nothing() {
    let app = spawn_app().await;
    let id = app.create_inr_session("101.00").await;
    let started = app.start_upi(&id).await;
    let upi = started["links"]["upi"].as_str().unwrap();
    let trx = upi.split("tr=").nth(1).unwrap().split('&').next().unwrap().to_owned();
    let data = json!({"mid": "M01KDESHPAYSANDBXX000000001", "trx_id": trx, "req_id": "x", "trx_type": "payin",
                      "status": "success", "amount": "101.00", "ccy": "INR"});
    let good_sign = sign(&data);
    let mut tampered = data.clone();
    tampered["amount"] = json!("1.00");
    let cases = [
        (
            json!({"notify_id": "N1", "event_type": "trx_update", "data": tampered, "timestamp": 1, "sign": good_sign}),
            401,
        ),
        (json!({"notify_id": "N2", "event_type": "trx_update", "data": data, "timestamp": 1, "sign": "AAAA"}), 401),
        (json!({"notify_id": "N3", "event_type": "trx_update", "data": data}), 400),
        (json!("not an object"), 400),
    ];
    for (body, status) in cases {
        let r = app.notify(&body).await;
        assert_eq!(r.status().as_u16(), status, "{body}");
        assert_ne!(r.text().await.unwrap(), "success");
    }
    let r = app.http.post(format!("{}/v1/bestinpay/notify", app.url)).body("{garbage").send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(app.checkout(&id).await["attempt"]["status"], "pending", "nothing changed");

    // The genuine one is accepted.
    let r = app
        .notify(
            &json!({"notify_id": "N4", "event_type": "trx_update", "data": data, "timestamp": 1, "sign": good_sign}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "success");
    assert_eq!(app.checkout(&id).await["status"], "paid");
}

#[tokio::test]
async fn a_backend_with_the_production_key_rejects_sandbox_signatures() {
    let app = spawn_app_with(|s| s.bestin.as_mut().unwrap().public_key_pem = None).await;
    let id = app.create_inr_session("101.00").await;
    let started = app.start_upi(&id).await;
    app.decide(started["links"]["upi"].as_str().unwrap(), "approve").await;
    app.notification_attempted().await;
    assert_eq!(app.checkout(&id).await["attempt"]["status"], "pending", "an unverifiable notification is not trusted");
    let deliveries = app.bestin("notifications").await;
    assert!(deliveries.as_array().unwrap().iter().all(|d| d["delivered"] != true), "{deliveries}");
}

#[tokio::test]
async fn replays_and_out_of_order_notifications_never_move_a_payment_backwards() {
    let app = spawn_app().await;
    let (id, trx) = paid_upi_session(&app).await;
    let deliveries = app.delivered_notifications(&format!("notifications?trx_id={trx}")).await;
    let notify_id = deliveries[0]["notify_id"].as_str().unwrap().to_owned();
    app.control.resend_notification(&notify_id).await;
    let pending = json!({"mid": "M01KDESHPAYSANDBXX000000001", "trx_id": trx, "req_id": "x", "trx_type": "payin",
                         "status": "pending", "amount": "101.00", "ccy": "INR"});
    let failed = json!({"mid": "M01KDESHPAYSANDBXX000000001", "trx_id": trx, "req_id": "x", "trx_type": "payin",
                        "status": "failed", "amount": "101.00", "ccy": "INR"});
    for (n, data) in [("late-pending", pending), ("late-failed", failed)] {
        let r = app
            .notify(
                &json!({"notify_id": n, "event_type": "trx_update", "data": data, "timestamp": 1, "sign": sign(&data)}),
            )
            .await;
        assert_eq!(r.text().await.unwrap(), "success", "acknowledged, so the provider stops");
    }
    let view = app.checkout(&id).await;
    assert_eq!(view["status"], "paid");
    assert_eq!(view["attempt"]["status"], "succeeded");
}

#[tokio::test]
async fn when_notifications_are_lost_the_poller_finds_the_outcome() {
    let app = spawn_app().await;
    app.control.bestin_fault(&json!({"endpoint": "notify", "response": "drop", "times": 100})).await;
    let id = app.create_inr_session("90.00").await;
    let started = app.start_upi(&id).await;
    app.decide(started["links"]["upi"].as_str().unwrap(), "approve").await;
    app.notification_attempted().await;
    assert_eq!(app.checkout(&id).await["attempt"]["status"], "pending");
    app.advance(26).await; // the first /query is due 25 s after the payin
    app.state.reconcile_once().await.unwrap();
    assert_eq!(app.checkout(&id).await["status"], "paid");
    assert!(app.bestin("counters").await["query"].as_i64().unwrap() >= 1);
}

#[tokio::test]
async fn server_sent_events_announce_the_outcome_without_a_reload() {
    let app = spawn_app().await;
    let id = app.create_inr_session("40.00").await;
    let started = app.start_upi(&id).await;
    let mut events = app.http.get(format!("{}/v1/checkout/{id}/events", app.url)).send().await.unwrap();
    assert_eq!(events.headers()["content-type"], "text/event-stream");
    let first = events.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("\"pending\""));
    app.decide(started["links"]["upi"].as_str().unwrap(), "approve").await;
    let mut seen = String::new();
    while let Ok(Some(chunk)) = tokio::time::timeout(Duration::from_secs(5), events.chunk()).await.unwrap() {
        seen.push_str(&String::from_utf8_lossy(&chunk));
        if seen.contains("succeeded") {
            break;
        }
    }
    assert!(seen.contains("event: session") && seen.contains("succeeded"), "{seen}");
}

#[tokio::test]
async fn payouts_move_the_balance_and_are_idempotent_by_reference() {
    let app = spawn_app().await;
    let before = app.get("/v1/balance").await.json::<Value>().await.unwrap();
    assert_eq!(before[0]["currency"], "INR");
    assert_eq!(before[0]["available"], "100000.00");

    let body = json!({"amount": "101.00", "currency": "INR", "upi": "asha@okaxis", "reference": "PO-1"});
    let r = app.post_json("/v1/payouts", &body).await;
    assert_eq!(r.status(), 201);
    let payout: Value = r.json().await.unwrap();
    assert_eq!(payout["status"], "pending");
    assert_eq!(payout["upi"], "ash*****xis");
    let again = app.post_json("/v1/payouts", &body).await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.json::<Value>().await.unwrap()["id"], payout["id"]);
    let conflict = app
        .post_json(
            "/v1/payouts",
            &json!({"amount": "5.00", "currency": "INR", "upi": "asha@okaxis", "reference": "PO-1"}),
        )
        .await;
    assert_eq!(conflict.status(), 409);
    assert_eq!(app.bestin("counters").await["payout"], 1, "one payout at the provider");

    let frozen = app.get("/v1/balance").await.json::<Value>().await.unwrap();
    assert_eq!(frozen[0]["frozen"], "101.00");
    let id = payout["id"].as_str().unwrap();
    let status = eventually(WAIT, || async {
        let status = app.get(&format!("/v1/payouts/{id}")).await.json::<Value>().await.unwrap();
        if status["status"] == "succeeded" { Ok(status) } else { Err(format!("payout not settled: {status}")) }
    })
    .await;
    assert_eq!(status["status"], "succeeded", "{status}");
    let after = app.get("/v1/balance").await.json::<Value>().await.unwrap();
    assert_eq!(after[0]["balance"], "99899.00");
}

#[tokio::test]
async fn payout_inputs_and_balance_limits_are_checked() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({"amount": "100000.01", "currency": "INR", "upi": "ab@bank", "reference": "R1"}),
            409,
            "insufficient_balance",
        ),
        (json!({"amount": "10.00", "currency": "BDT", "upi": "ab@bank", "reference": "R2"}), 400, "invalid_currency"),
        (json!({"amount": "0", "currency": "INR", "upi": "ab@bank", "reference": "R3"}), 400, "invalid_amount"),
        (json!({"amount": "10.00", "currency": "INR", "upi": "not-a-vpa", "reference": "R4"}), 400, "invalid_request"),
        (json!({"amount": "10.00", "currency": "INR", "upi": "ab@bank", "reference": ""}), 400, "invalid_request"),
        (json!({"amount": "10.00", "currency": "INR", "upi": "ab@bank"}), 422, "invalid_json"),
    ];
    for (body, status, code) in cases {
        let r = app.post_json("/v1/payouts", &body).await;
        assert_eq!(r.status().as_u16(), status, "{body}");
        assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], code, "{body}");
    }
    let r = app.get("/v1/payouts/po_nope").await;
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn a_pending_payout_can_be_canceled_and_its_money_is_released() {
    let app = spawn_app().await;
    let r = app
        .post_json(
            "/v1/payouts",
            &json!({"amount": "500.00", "currency": "INR", "upi": "pending@bestin", "reference": "HOLD-1"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let r = app.http.post(format!("{}/v1/payouts/{id}/cancel", app.url)).bearer_auth(API_KEY).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "canceled");
    let b = app.get("/v1/balance").await.json::<Value>().await.unwrap();
    assert_eq!(b[0]["available"], "100000.00");
}
