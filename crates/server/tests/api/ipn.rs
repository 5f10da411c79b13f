//! bKash IPN over Amazon SNS: the sandbox publishes as SNS does; the backend confirms, verifies, deduplicates and
//! feeds the payment core.

use crate::helpers::*;
use serde_json::{Value, json};

impl TestApp {
    async fn sandbox_post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.http.post(format!("{}{path}", self.sandbox.url())).json(body).send().await.unwrap()
    }

    async fn ipn_state(&self) -> Value {
        self.http.get(format!("{}/__sandbox/bkash/ipn", self.sandbox.url())).send().await.unwrap().json().await.unwrap()
    }

    /// Subscribes our IPN endpoint with `version` and short retries, and waits for the confirmation.
    async fn subscribe_ipn(&self, version: u8) {
        let r = self
            .sandbox_post(
                "/__sandbox/bkash/ipn/subscribe",
                &json!({"endpoint": format!("{}/v1/bkash/ipn", self.url), "signature_version": version,
                        "retry_delays_ms": [300, 300, 300]}),
            )
            .await;
        assert_eq!(r.status(), 200);
        eventually(WAIT, || async {
            let s = self.ipn_state().await;
            if s["subscription"]["confirmed"] == true { Ok(()) } else { Err(s.to_string()) }
        })
        .await;
    }

    async fn ipn_fault(&self, fault: Value) {
        assert_eq!(self.sandbox_post("/__sandbox/bkash/ipn/faults", &fault).await.status(), 200);
    }

    /// The deliveries of the notification about `trx_id`: (status, fault) per attempt.
    async fn deliveries_of(&self, trx_id: &str) -> Vec<Value> {
        let s = self.ipn_state().await;
        let ids: Vec<Value> = s["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["trxID"] == trx_id)
            .map(|m| m["message_id"].clone())
            .collect();
        s["deliveries"].as_array().unwrap().iter().filter(|d| ids.contains(&d["message_id"])).cloned().collect()
    }

    /// The trxID the sandbox announced for `payment_id` (once its notification is published).
    async fn announced_trx(&self, invoice: &str) -> String {
        eventually(WAIT, || async {
            let s = self.ipn_state().await;
            s["messages"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| {
                    m["message"]
                        .as_str()
                        .and_then(|t| serde_json::from_str::<Value>(t).ok())
                        .is_some_and(|p| p["merchantInvoiceNumber"] == invoice)
                })
                .map(|m| m["trxID"].as_str().unwrap().to_owned())
                .ok_or_else(|| s.to_string())
        })
        .await
    }

    async fn unmatched(&self) -> Vec<Value> {
        let r = self.get("/v1/bkash/unmatched").await;
        assert_eq!(r.status(), 200);
        r.json::<Value>().await.unwrap()["data"].as_array().unwrap().clone()
    }

    async fn post_ipn(&self, body: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/v1/bkash/ipn", self.url))
            .header("content-type", "text/plain; charset=UTF-8")
            .body(body.to_owned())
            .send()
            .await
            .unwrap()
    }
}

/// A session with its bKash attempt started: (session id, invoice, bkashURL, paymentID).
async fn started(app: &TestApp, amount: &str) -> (String, String, String, String) {
    let id = app.create_session(amount).await;
    let invoice = app.session(&id).await["invoice"].as_str().unwrap().to_owned();
    let bkash_url = app.start_bkash(&id).await;
    let payment_id = query_param(&bkash_url, "paymentID").unwrap();
    (id, invoice, bkash_url, payment_id)
}

async fn wait_paid(app: &TestApp, id: &str) -> Value {
    eventually(WAIT, || async {
        let s = app.session(id).await;
        if s["status"] == "paid" { Ok(s) } else { Err(s.to_string()) }
    })
    .await
}

#[tokio::test]
async fn the_subscription_is_confirmed_by_fetching_its_subscribe_url() {
    let app = spawn_app().await;
    let before = app.ipn_state().await;
    assert!(before["subscription"].is_null());
    app.subscribe_ipn(1).await;
    let s = app.ipn_state().await;
    let d = &s["deliveries"][0];
    assert_eq!(d["type"], "SubscriptionConfirmation");
    assert_eq!(d["status"], 200, "{s}");
}

#[tokio::test]
async fn a_closed_tab_payment_is_paid_by_the_ipn_with_one_execute_signature_versions_1_and_2() {
    for version in [1u8, 2] {
        let app = spawn_app_with(outbox_only).await;
        app.subscribe_ipn(version).await;
        let (id, invoice, bkash_url, payment_id) = started(&app, "1499.00").await;
        // The customer approves on bKash's page and closes the tab: the callback never reaches us.
        let callback = app.approve(&bkash_url, WALLET).await;
        let trx = app.announced_trx(&invoice).await;
        let s = wait_paid(&app, &id).await;
        assert_eq!(s["payment"]["trx_id"], trx.as_str(), "{s}");
        assert_eq!(app.sandbox_payment(&payment_id).await["execute_calls"], 1);
        assert_eq!(app.sandbox_payment(&payment_id).await["status"], "completed");
        assert_eq!(app.outbox_count("session.paid").await, 1);
        // The browser comes back after all: nothing more happens.
        let back = app.follow_callback(&callback).await;
        assert!(back.contains("deshpay_status=paid"), "{back}");
        assert_eq!(app.sandbox_payment(&payment_id).await["execute_calls"], 1);
        assert_eq!(app.outbox_count("session.paid").await, 1);
        assert!(app.unmatched().await.is_empty());
    }
}

#[tokio::test]
async fn a_duplicated_ipn_has_one_effect() {
    let app = spawn_app_with(outbox_only).await;
    app.subscribe_ipn(1).await;
    app.ipn_fault(json!({"kind": "duplicate"})).await;
    let (id, invoice, bkash_url, payment_id) = started(&app, "250.00").await;
    app.approve(&bkash_url, WALLET).await;
    let trx = app.announced_trx(&invoice).await;
    wait_paid(&app, &id).await;
    let deliveries = eventually(WAIT, || async {
        let d = app.deliveries_of(&trx).await;
        if d.len() == 2 && d.iter().all(|d| d["status"] == 200) { Ok(d) } else { Err(format!("{d:?}")) }
    })
    .await;
    assert_eq!(deliveries[0]["message_id"], deliveries[1]["message_id"]);
    // SNS redelivers the same MessageId once more, later.
    let message_id = deliveries[0]["message_id"].as_str().unwrap().to_owned();
    let r = app.sandbox_post(&format!("/__sandbox/bkash/ipn/messages/{message_id}/resend"), &json!({})).await;
    assert_eq!(r.json::<Value>().await.unwrap()["delivered"], true);
    assert_eq!(app.sandbox_payment(&payment_id).await["execute_calls"], 1);
    assert_eq!(app.outbox_count("session.paid").await, 1);
    assert!(app.unmatched().await.is_empty());
}

#[tokio::test]
async fn attack_forged_unsigned_foreign_cert_and_foreign_topic_envelopes_are_refused_and_change_nothing() {
    let app = spawn_app_with(outbox_only).await;
    app.subscribe_ipn(1).await;
    for (fault, status) in
        [("bad_signature", 401), ("unsigned", 401), ("foreign_cert_host", 403), ("foreign_topic", 403)]
    {
        // No retries: only the faulted delivery is made.
        app.sandbox_post(
            "/__sandbox/bkash/ipn/subscribe",
            &json!({"endpoint": format!("{}/v1/bkash/ipn", app.url), "retry_delays_ms": []}),
        )
        .await;
        eventually(WAIT, || async {
            let s = app.ipn_state().await;
            if s["subscription"]["confirmed"] == true { Ok(()) } else { Err(s.to_string()) }
        })
        .await;
        app.ipn_fault(json!({"kind": fault})).await;
        let (id, invoice, bkash_url, payment_id) = started(&app, "300.00").await;
        app.approve(&bkash_url, WALLET).await;
        let trx = app.announced_trx(&invoice).await;
        let d = eventually(WAIT, || async {
            let d = app.deliveries_of(&trx).await;
            if d.is_empty() { Err("no delivery yet".to_owned()) } else { Ok(d) }
        })
        .await;
        assert_eq!(d[0]["status"], status, "{fault}: {d:?}");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let s = app.session(&id).await;
        assert_eq!(s["status"], "open", "{fault}: {s}");
        assert_eq!(s["attempts"][0]["status"], "created", "{fault}: {s}");
        assert_eq!(app.sandbox_payment(&payment_id).await["execute_calls"], 0, "{fault}");
    }
    assert_eq!(app.outbox_count("session.paid").await, 0);
    assert!(app.unmatched().await.is_empty());
    // Not an envelope at all, and an unknown Type.
    for (body, status) in [("garbage", 400), (r#"{"Type":"Other"}"#, 400)] {
        assert_eq!(app.post_ipn(body).await.status(), status, "{body}");
    }
    let r = app.post_ipn("{}").await;
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "invalid_notification", "{e}");
}

#[tokio::test]
async fn attack_a_subscription_of_another_topic_is_not_confirmed() {
    let app = spawn_app().await;
    app.ipn_fault(json!({"kind": "foreign_topic"})).await;
    app.sandbox_post(
        "/__sandbox/bkash/ipn/subscribe",
        &json!({"endpoint": format!("{}/v1/bkash/ipn", app.url), "retry_delays_ms": []}),
    )
    .await;
    let s = eventually(WAIT, || async {
        let s = app.ipn_state().await;
        if s["deliveries"].as_array().is_some_and(|d| !d.is_empty()) { Ok(s) } else { Err(s.to_string()) }
    })
    .await;
    assert_eq!(s["deliveries"][0]["status"], 403, "{s}");
    assert_eq!(s["subscription"]["confirmed"], false);
}

#[tokio::test]
async fn a_delayed_ipn_arriving_after_the_callback_paid_has_no_second_effect() {
    let app = spawn_app_with(outbox_only).await;
    app.subscribe_ipn(2).await;
    app.ipn_fault(json!({"kind": "delay", "delay_ms": 1500})).await;
    let (id, invoice, bkash_url, payment_id) = started(&app, "410.00").await;
    let callback = app.pay_on_page(&bkash_url, WALLET, OTP, PIN).await;
    let back = app.follow_callback(&callback).await;
    assert!(back.contains("deshpay_status=paid"), "{back}");
    let trx = app.announced_trx(&invoice).await;
    eventually(WAIT, || async {
        let d = app.deliveries_of(&trx).await;
        if d.iter().any(|d| d["status"] == 200) { Ok(()) } else { Err(format!("{d:?}")) }
    })
    .await;
    assert_eq!(app.session(&id).await["payment"]["trx_id"], trx.as_str());
    assert_eq!(app.sandbox_payment(&payment_id).await["execute_calls"], 1);
    assert_eq!(app.outbox_count("session.paid").await, 1);
    assert!(app.unmatched().await.is_empty());
}

#[tokio::test]
async fn attack_an_ipn_racing_the_callback_executes_once() {
    let app = spawn_app_with(outbox_only).await;
    app.subscribe_ipn(1).await;
    let (id, _invoice, bkash_url, payment_id) = started(&app, "99.00").await;
    // The IPN is published when the customer approves; the callback follows at once.
    let callback = app.approve(&bkash_url, WALLET).await;
    let back = app.follow_callback(&callback).await;
    assert!(back.contains("deshpay_status=paid") || back.contains("deshpay_status=pending"), "{back}");
    wait_paid(&app, &id).await;
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    assert_eq!(app.sandbox_payment(&payment_id).await["execute_calls"], 1);
    assert_eq!(app.outbox_count("session.paid").await, 1);
    assert!(app.unmatched().await.is_empty());
}

#[tokio::test]
async fn an_ipn_for_a_payment_we_never_created_is_recorded_and_reported_and_touches_no_session() {
    let app = spawn_app_with(outbox_only).await;
    app.subscribe_ipn(1).await;
    // A session of ours is open with an invoice; a QR payment names it, with another amount.
    let (id, invoice, _bkash_url, payment_id) = started(&app, "500.00").await;
    let r = app
        .sandbox_post(
            "/__sandbox/bkash/ipn/payments",
            &json!({"amount": "120.00", "channel": "qr", "wallet": "01929918378"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let qr_trx = r.json::<Value>().await.unwrap()["trxID"].as_str().unwrap().to_owned();
    let r = app
        .sandbox_post(
            "/__sandbox/bkash/ipn/payments",
            &json!({"amount": "50.00", "channel": "ussd", "invoice": invoice}),
        )
        .await;
    let ussd_trx = r.json::<Value>().await.unwrap()["trxID"].as_str().unwrap().to_owned();
    let listed = eventually(WAIT, || async {
        let u = app.unmatched().await;
        if u.len() == 2 { Ok(u) } else { Err(format!("{u:?}")) }
    })
    .await;
    let qr = listed.iter().find(|u| u["trx_id"] == qr_trx.as_str()).expect("the QR payment is listed");
    assert_eq!(qr["amount"], "120.00");
    assert_eq!(qr["amount_minor"], 12_000);
    assert_eq!(qr["currency"], "BDT");
    assert_eq!(qr["transaction_type"], "10003126");
    assert_eq!(qr["payer"], "8801929918378");
    let ussd = listed.iter().find(|u| u["trx_id"] == ussd_trx.as_str()).expect("the USSD payment is listed");
    assert_eq!(ussd["invoice"], invoice.as_str());
    assert_eq!(app.outbox_count("payment.unmatched").await, 2);
    // A redelivery records nothing more.
    let s = app.ipn_state().await;
    let message_id =
        s["messages"].as_array().unwrap().iter().find(|m| m["trxID"] == qr_trx.as_str()).unwrap()["message_id"]
            .as_str()
            .unwrap()
            .to_owned();
    app.sandbox_post(&format!("/__sandbox/bkash/ipn/messages/{message_id}/resend"), &json!({})).await;
    assert_eq!(app.unmatched().await.len(), 2);
    assert_eq!(app.outbox_count("payment.unmatched").await, 2);
    // The session is untouched and nothing was executed.
    let s = app.session(&id).await;
    assert_eq!(s["status"], "open", "{s}");
    assert_eq!(s["attempts"][0]["status"], "created");
    assert_eq!(app.sandbox_payment(&payment_id).await["execute_calls"], 0);
    // The merchant API needs the key.
    let r = app.http.get(format!("{}/v1/bkash/unmatched", app.url)).send().await.unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn a_dropped_ipn_leaves_the_payment_to_the_reconciler() {
    let app = spawn_app_with(outbox_only).await;
    app.subscribe_ipn(1).await;
    app.ipn_fault(json!({"kind": "drop"})).await;
    let (id, invoice, bkash_url, payment_id) = started(&app, "777.00").await;
    // Execute happens but its answer is lost, and the Query right after gets no answer either.
    app.fault(json!({"endpoint": "execute", "delay_ms": 2500, "process": true})).await;
    app.fault(json!({"endpoint": "query", "delay_ms": 2500, "process": true})).await;
    let callback = app.pay_on_page(&bkash_url, WALLET, OTP, PIN).await;
    let back = app.follow_callback(&callback).await;
    assert!(back.contains("deshpay_status=pending"), "{back}");
    let trx = app.announced_trx(&invoice).await;
    let d = eventually(WAIT, || async {
        let d = app.deliveries_of(&trx).await;
        if d.is_empty() { Err("no delivery".to_owned()) } else { Ok(d) }
    })
    .await;
    assert_eq!(d[0]["fault"], "drop");
    assert_eq!(app.session(&id).await["status"], "open");
    // Past the reconciler's staleness (two bKash timeouts plus the token wait).
    app.advance(120).await;
    app.state.reconcile_once().await.unwrap();
    let s = app.session(&id).await;
    assert_eq!(s["status"], "paid", "{s}");
    assert_eq!(s["payment"]["trx_id"], trx.as_str());
    assert_eq!(app.sandbox_payment(&payment_id).await["execute_calls"], 1);
    assert_eq!(app.outbox_count("session.paid").await, 1);
}

#[tokio::test]
async fn ipn_is_off_without_a_topic() {
    let app = spawn_app_with(|s| s.bkash.ipn_topic_arn = None).await;
    let r = app.post_ipn(r#"{"Type":"Notification"}"#).await;
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn attack_an_ipn_naming_our_invoice_and_amount_never_pays_what_bkash_did_not_complete() {
    let app = spawn_app_with(outbox_only).await;
    app.subscribe_ipn(1).await;
    // A payment announced with our session's invoice and amount, while our paymentID was never approved.
    let (id, invoice, bkash_url, payment_id) = started(&app, "640.00").await;
    let r = app
        .sandbox_post(
            "/__sandbox/bkash/ipn/payments",
            &json!({"amount": "640.00", "channel": "app", "invoice": invoice}),
        )
        .await;
    let trx = r.json::<Value>().await.unwrap()["trxID"].as_str().unwrap().to_owned();
    // The core asks bKash about our own paymentID; bKash says it is not approved: nothing is paid.
    let listed = eventually(WAIT, || async {
        let u = app.unmatched().await;
        if u.is_empty() { Err("not recorded yet".to_owned()) } else { Ok(u) }
    })
    .await;
    assert_eq!(listed[0]["trx_id"], trx.as_str());
    let s = app.session(&id).await;
    assert_eq!(s["status"], "open", "{s}");
    assert_eq!(s["attempts"][0]["status"], "created", "{s}");
    assert_eq!(app.sandbox_payment(&payment_id).await["status"], "initiated");
    assert_eq!(app.outbox_count("session.paid").await, 0);
    // The customer can still pay it, once (its own IPN races the callback; one of them executes).
    let callback = app.pay_on_page(&bkash_url, WALLET, OTP, PIN).await;
    let back = app.follow_callback(&callback).await;
    assert!(!back.contains("deshpay_status=failed"), "{back}");
    wait_paid(&app, &id).await;
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    // One Execute refused (2056, not approved) when the forged-looking IPN came, one that took the money.
    assert_eq!(app.sandbox_payment(&payment_id).await["execute_calls"], 2);
    assert_eq!(app.sandbox_payment(&payment_id).await["status"], "completed");
    assert_eq!(app.outbox_count("session.paid").await, 1);
}

/// An SNS envelope of our topic carrying `message`, signed (SignatureVersion 1) with the sandbox's SNS test key.
fn signed_notification(app: &TestApp, message_id: &str, message: &str) -> String {
    use base64::Engine as _;
    use rsa::pkcs8::DecodePrivateKey;
    use rsa::signature::{SignatureEncoding, Signer};
    let topic = deshpay_sandbox::BKASH_IPN_TOPIC_ARN;
    let timestamp = "2026-12-07T10:00:00.000Z";
    let canonical = format!(
        "Message\n{message}\nMessageId\n{message_id}\nTimestamp\n{timestamp}\nTopicArn\n{topic}\nType\nNotification\n"
    );
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(include_str!("../../../sandbox/keys/sns-test-private.pem")).unwrap();
    let signature = rsa::pkcs1v15::SigningKey::<sha1::Sha1>::new(key).sign(canonical.as_bytes()).to_vec();
    json!({
        "Type": "Notification", "MessageId": message_id, "TopicArn": topic, "Message": message,
        "Timestamp": timestamp, "SignatureVersion": "1",
        "Signature": base64::engine::general_purpose::STANDARD.encode(signature),
        "SigningCertURL": format!("{}/__sns/SimpleNotificationService-sandbox.pem", app.sandbox.url()),
    })
    .to_string()
}

#[tokio::test]
async fn attack_a_verified_ipn_whose_payload_cannot_be_read_is_kept_before_it_is_refused() {
    let app = spawn_app().await;
    // A genuine (verified) notification of a completed payment whose amount we cannot parse: SNS does not retry
    // a 4xx, so unless we keep it, this payment is recorded nowhere.
    let message = json!({"trxID": "CLS9XYZ001", "amount": 1250, "currency": "BDT", "transactionStatus": "Completed",
                         "debitMSISDN": "8801700000001", "transactionType": "10003126", "dateTime": "20261207160000"})
    .to_string();
    let envelope = signed_notification(&app, "3f1c6c62-8f7e-4b7a-9a59-unreadable01", &message);
    let r = app.post_ipn(&envelope).await;
    assert_eq!(r.status(), 400);
    let kept = app.state.store.events_of_kind("bkash.ipn_unreadable").await.unwrap();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(kept[0].contains("CLS9XYZ001") && kept[0].contains("unreadable01"), "{kept:?}");
    // A redelivery is a duplicate: kept once.
    assert_eq!(app.post_ipn(&envelope).await.status(), 200);
    assert_eq!(app.state.store.events_of_kind("bkash.ipn_unreadable").await.unwrap().len(), 1);
    // A signed envelope with a readable payload of a payment we never made is still recorded as unmatched.
    let ok = json!({"trxID": "CLS9XYZ002", "amount": "12.50", "currency": "BDT", "transactionStatus": "Completed"})
        .to_string();
    assert_eq!(app.post_ipn(&signed_notification(&app, "m-readable-02", &ok)).await.status(), 200);
    assert_eq!(app.unmatched().await.len(), 1);
}

#[tokio::test]
async fn attack_an_ipn_for_our_closed_attempt_while_bkash_cannot_answer_is_retried_not_recorded_as_unmatched() {
    let app = spawn_app_with(outbox_only).await;
    // No subscription yet: the notification is held until one is confirmed.
    let (id, invoice, bkash_url, payment_id) = started(&app, "515.00").await;
    // bKash takes the money but answers Execute with a definitive decline: our attempt is closed as failed.
    app.fault(json!({"endpoint": "execute", "response": "code", "code": "2023", "message": "Insufficient Balance",
                     "process": true}))
        .await;
    let callback = app.pay_on_page(&bkash_url, WALLET, OTP, PIN).await;
    app.follow_callback(&callback).await;
    let s = app.session(&id).await;
    assert_eq!(s["attempts"][0]["status"], "failed", "{s}");
    assert_eq!(app.sandbox_payment(&payment_id).await["status"], "completed");
    // The IPN comes while bKash's Query cannot answer: it must be delivered again, not filed as someone else's.
    app.fault(json!({"endpoint": "query", "response": "http_status", "status": 503, "times": 50})).await;
    app.subscribe_ipn(1).await;
    let trx = app.announced_trx(&invoice).await;
    let d = eventually(WAIT, || async {
        let d = app.deliveries_of(&trx).await;
        if d.len() < 2 { Err(format!("{d:?}")) } else { Ok(d) }
    })
    .await;
    assert!(d.iter().all(|d| d["status"] == 503), "{d:?}");
    assert!(app.unmatched().await.is_empty());
    assert_eq!(app.outbox_count("payment.unmatched").await, 0);
    // bKash answers again: the next redelivery settles it as ours (a late success).
    app.http.delete(format!("{}/__sandbox/bkash/faults", app.sandbox.url())).send().await.unwrap();
    let s = wait_paid(&app, &id).await;
    assert_eq!(s["payment"]["trx_id"], trx.as_str(), "{s}");
    assert!(app.unmatched().await.is_empty());
    assert_eq!(app.sandbox_payment(&payment_id).await["execute_calls"], 1);
}
