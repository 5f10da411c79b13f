//! bKash's IPN as the sandbox publishes it, seen by a listener that checks it the way AWS says to.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use base64::Engine as _;
use deshpay_sandbox::{BKASH_IPN_TOPIC_ARN, SNS_TEST_CERT_PEM, Sandbox, SandboxConfig};
use rsa::RsaPublicKey;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;
use serde_json::{Map, Value, json};
use x509_cert::Certificate;
use x509_cert::der::{DecodePem, Encode};

/// What the listener received: (x-amz-sns-message-type, content-type, body).
type Seen = Arc<Mutex<Vec<(String, String, Value)>>>;

/// A listener on port 0 answering `status` to every POST.
async fn listener(status: StatusCode) -> (String, Seen) {
    let seen: Seen = Arc::default();
    let app = axum::Router::new()
        .route(
            "/ipn",
            post(move |State(seen): State<Seen>, headers: HeaderMap, body: Bytes| async move {
                let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
                let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                seen.lock().unwrap().push((h("x-amz-sns-message-type"), h("content-type"), body));
                status
            }),
        )
        .with_state(seen.clone());
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/ipn", tcp.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(tcp, app).await.unwrap() });
    (url, seen)
}

async fn wait_for(seen: &Seen, n: usize) -> Vec<(String, String, Value)> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = seen.lock().unwrap().clone();
        if got.len() >= n {
            return got;
        }
        assert!(Instant::now() < deadline, "only {} deliveries: {got:?}", got.len());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn canonical(env: &Map<String, Value>) -> String {
    let keys: &[&str] = if env["Type"] == "Notification" {
        &["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
    } else {
        &["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
    };
    keys.iter().filter_map(|k| env.get(*k).and_then(Value::as_str).map(|v| format!("{k}\n{v}\n"))).collect()
}

/// Verifies an envelope with the certificate the sandbox serves at its SigningCertURL.
async fn verifies(env: &Value) -> bool {
    let cert_pem = reqwest::get(env["SigningCertURL"].as_str().unwrap()).await.unwrap().text().await.unwrap();
    assert_eq!(cert_pem, SNS_TEST_CERT_PEM);
    let cert = Certificate::from_pem(cert_pem.as_bytes()).unwrap();
    let spki = cert.tbs_certificate.subject_public_key_info.to_der().unwrap();
    let key = RsaPublicKey::from_public_key_der(&spki).unwrap();
    let Some(sig) = env["Signature"].as_str() else { return false };
    let sig = Signature::try_from(base64::engine::general_purpose::STANDARD.decode(sig).unwrap().as_slice()).unwrap();
    let text = canonical(env.as_object().unwrap());
    match env["SignatureVersion"].as_str() {
        Some("1") => VerifyingKey::<sha1::Sha1>::new(key).verify(text.as_bytes(), &sig).is_ok(),
        Some("2") => VerifyingKey::<sha2::Sha256>::new(key).verify(text.as_bytes(), &sig).is_ok(),
        _ => false,
    }
}

async fn control(sandbox: &Sandbox, path: &str, body: Value) -> Value {
    let r = reqwest::Client::new().post(format!("{}{path}", sandbox.url())).json(&body).send().await.unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.unwrap()
}

#[tokio::test]
async fn notifications_wait_for_the_subscribe_url_and_are_signed_as_sns_signs_with_versions_1_and_2() {
    for version in ["1", "2"] {
        let sandbox = Sandbox::spawn(SandboxConfig::default()).await.unwrap();
        let (endpoint, seen) = listener(StatusCode::OK).await;
        control(
            &sandbox,
            "/__sandbox/bkash/ipn/subscribe",
            json!({"endpoint": endpoint, "signature_version": version.parse::<u8>().unwrap()}),
        )
        .await;
        let got = wait_for(&seen, 1).await;
        let (kind, content_type, confirmation) = &got[0];
        assert_eq!(kind, "SubscriptionConfirmation");
        assert_eq!(content_type, "text/plain; charset=UTF-8");
        assert_eq!(confirmation["TopicArn"], BKASH_IPN_TOPIC_ARN);
        assert_eq!(confirmation["SignatureVersion"], version);
        assert!(verifies(confirmation).await, "{confirmation}");

        // A QR payment before the subscription is confirmed is held.
        let paid =
            control(&sandbox, "/__sandbox/bkash/ipn/payments", json!({"amount": "120.5", "channel": "qr"})).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(seen.lock().unwrap().len(), 1, "nothing before the SubscribeURL is fetched");
        let r = reqwest::get(confirmation["SubscribeURL"].as_str().unwrap()).await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.text().await.unwrap().contains("<SubscriptionArn>"));

        let got = wait_for(&seen, 2).await;
        let (kind, _, notification) = &got[1];
        assert_eq!(kind, "Notification");
        assert!(verifies(notification).await, "{notification}");
        let message: Value = serde_json::from_str(notification["Message"].as_str().unwrap()).unwrap();
        assert_eq!(message["trxID"], paid["trxID"]);
        assert_eq!(message["amount"], "120.50");
        assert_eq!(message["currency"], "BDT");
        assert_eq!(message["transactionStatus"], "Completed");
        assert_eq!(message["transactionType"], "10003126");
        assert_eq!(message["dateTime"].as_str().unwrap().len(), 14);
        // A tampered message no longer verifies.
        let mut tampered = notification.clone();
        tampered["Message"] = Value::String(notification["Message"].as_str().unwrap().replace("120.50", "12050.00"));
        assert!(!verifies(&tampered).await);
    }
}

#[tokio::test]
async fn a_refused_delivery_is_retried_with_the_same_message_id_and_faults_shape_it() {
    let sandbox = Sandbox::spawn(SandboxConfig::default()).await.unwrap();
    let (endpoint, seen) = listener(StatusCode::INTERNAL_SERVER_ERROR).await;
    control(&sandbox, "/__sandbox/bkash/ipn/subscribe", json!({"endpoint": endpoint, "retry_delays_ms": [50, 50]}))
        .await;
    let got = wait_for(&seen, 3).await;
    assert!(got.iter().all(|(_, _, e)| e["MessageId"] == got[0].2["MessageId"]), "retries keep the MessageId");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(seen.lock().unwrap().len(), 3, "one delivery and two retries");

    let sandbox = Sandbox::spawn(SandboxConfig::default()).await.unwrap();
    let (endpoint, seen) = listener(StatusCode::OK).await;
    control(&sandbox, "/__sandbox/bkash/ipn/faults", json!({"kind": "bad_signature"})).await;
    control(&sandbox, "/__sandbox/bkash/ipn/subscribe", json!({"endpoint": endpoint, "retry_delays_ms": []})).await;
    let got = wait_for(&seen, 1).await;
    assert!(!verifies(&got[0].2).await, "a bad_signature fault does not verify");
    let state: Value =
        reqwest::get(format!("{}/__sandbox/bkash/ipn", sandbox.url())).await.unwrap().json().await.unwrap();
    assert_eq!(state["deliveries"][0]["fault"], "bad_signature");
}
