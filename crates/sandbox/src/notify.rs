//! Bestin Pay's signed notifications (通知回调, 签名验证): the signature and the deliveries.
//!
//! The signed string is built from `data` as the seed says: keep the fields whose value is not
//! null and not empty, sort them by key (byte-wise), join `key=value` with `&`; strings go in as
//! they are, numbers in their JSON text form. The signature is RSA PKCS#1 v1.5 over SHA-512 of
//! that string's UTF-8 bytes, base64 (standard alphabet, padded).
//!
//! The sandbox signs with the **test** key pair of `shared/vectors/bestinpay-notify-vectors.json`
//! (copied to `crates/sandbox/keys/`); it is published test material, never a production key.
//! A merchant backend talking to the sandbox verifies with [`crate::BESTIN_TEST_PUBLIC_KEY_PEM`]
//! (also at `crates/sandbox/keys/bestin-test-public.pem`) instead of the seed's production key.
//!
//! A delivery counts only when the receiver answers HTTP 200 with the body exactly `success`
//! (byte for byte: no whitespace, no quotes, no JSON). Until then the sandbox retries with the
//! configured backoff, every attempt with the same notify_id and the same bytes.

use std::sync::LazyLock;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rsa::RsaPrivateKey;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer};
use serde::Serialize;
use serde_json::{Map, Value, json};
use sha2::Sha512;

use crate::bestin::{BestinEndpoint, BestinFaultResponse};
use crate::state::AppState;

/// The sandbox's test private key (PKCS#8 PEM). Test material only.
const TEST_PRIVATE_KEY_PEM: &str = include_str!("../keys/bestin-test-private.pem");
/// The public half of the sandbox's test key (SubjectPublicKeyInfo PEM).
pub(crate) const TEST_PUBLIC_KEY_PEM: &str = include_str!("../keys/bestin-test-public.pem");
/// The longest response body kept per attempt.
const MAX_RECORDED_BODY: usize = 2_000;

static SIGNING_KEY: LazyLock<SigningKey<Sha512>> = LazyLock::new(|| {
    let key = RsaPrivateKey::from_pkcs8_pem(TEST_PRIVATE_KEY_PEM)
        .expect("the embedded Bestin Pay test key is a valid PKCS#8 RSA key");
    SigningKey::<Sha512>::new(key)
});

/// One notification: what was signed, where it goes, and how its delivery went.
#[derive(Debug, Clone)]
pub(crate) struct Notification {
    pub notify_id: String,
    pub trx_id: String,
    pub url: String,
    pub data: Map<String, Value>,
    pub timestamp_ms: i64,
    /// The signed JSON body, made (once) by the first attempt.
    pub body: Option<String>,
    pub attempts: u32,
    pub delivered: bool,
    pub gave_up: bool,
}

/// One delivery attempt, as `/__sandbox/bestin/notifications` lists it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct DeliveryAttempt {
    pub notify_id: String,
    pub trx_id: String,
    /// 1 for the first attempt of this notify_id, counting retries, duplicates and resends.
    pub attempt: u32,
    pub url: String,
    pub body: String,
    /// The receiver's HTTP status; `null` when nothing came back (or the attempt was dropped).
    pub status: Option<u16>,
    /// The receiver's body (cut at 2000 bytes).
    pub response: Option<String>,
    /// Connection error or timeout, if any.
    pub error: Option<String>,
    /// Whether the receiver acknowledged (200 `success`).
    pub delivered: bool,
    /// `drop`, `duplicate` or `delay` when a fault shaped this attempt.
    pub fault: Option<String>,
    /// Whether this attempt came from the resend control endpoint.
    pub resend: bool,
    /// When the attempt finished, on the sandbox clock (Unix ms).
    pub at_ms: i64,
}

/// The signed string of a notification's `data` (see the module docs).
pub(crate) fn canonical_string(data: &Map<String, Value>) -> String {
    let mut fields: Vec<(&str, String)> = data
        .iter()
        .filter_map(|(key, value)| {
            let text = match value {
                Value::Null => return None,
                Value::String(s) if s.is_empty() => return None,
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            Some((key.as_str(), text))
        })
        .collect();
    fields.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    fields.iter().map(|(key, value)| format!("{key}={value}")).collect::<Vec<_>>().join("&")
}

/// The base64 signature of `data` with the sandbox's test key.
pub(crate) fn sign(data: &Map<String, Value>) -> String {
    let signature = SIGNING_KEY.sign(canonical_string(data).as_bytes());
    BASE64.encode(signature.to_bytes())
}

/// The JSON body of a notification, signed.
fn signed_body(n: &Notification) -> String {
    json!({
        "notify_id": n.notify_id,
        "event_type": "trx_update",
        "data": n.data,
        "timestamp": n.timestamp_ms,
        "sign": sign(&n.data),
    })
    .to_string()
}

/// What one delivery should use, read under the lock.
struct Plan {
    url: String,
    body: String,
    http: reqwest::Client,
    timeout: Duration,
}

/// The notification's body, signing it (outside the lock) the first time; `None` once it is gone
/// (a reset).
fn plan(app: &AppState, notify_id: &str) -> Option<Plan> {
    let (notification, http, timeout) = {
        let state = app.lock();
        let n = state.bestin.notifications.get(notify_id)?.clone();
        (n, state.bestin.http.clone(), state.bestin.options.notify_timeout)
    };
    let body = match notification.body {
        Some(body) => body,
        None => {
            let body = signed_body(&notification);
            let mut state = app.lock();
            let n = state.bestin.notifications.get_mut(notify_id)?;
            n.body.get_or_insert(body).clone()
        }
    };
    Some(Plan { url: notification.url, body, http, timeout })
}

struct Outcome {
    status: Option<u16>,
    response: Option<String>,
    error: Option<String>,
}

impl Outcome {
    fn delivered(&self) -> bool {
        self.status == Some(200) && self.response.as_deref() == Some("success")
    }
}

async fn send(plan: &Plan) -> Outcome {
    let sent = plan
        .http
        .post(&plan.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .timeout(plan.timeout)
        .body(plan.body.clone())
        .send()
        .await;
    match sent {
        Err(e) => Outcome { status: None, response: None, error: Some(error_chain(&e)) },
        Ok(response) => {
            let status = response.status().as_u16();
            match response.text().await {
                Ok(mut text) => {
                    if text.len() > MAX_RECORDED_BODY {
                        let mut cut = MAX_RECORDED_BODY;
                        while !text.is_char_boundary(cut) {
                            cut -= 1;
                        }
                        text.truncate(cut);
                    }
                    Outcome { status: Some(status), response: Some(text), error: None }
                }
                Err(e) => Outcome { status: Some(status), response: None, error: Some(e.to_string()) },
            }
        }
    }
}

/// An error with its causes, `outer: inner: innermost` (reqwest's own text omits them).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Records an attempt; `None` when the notification is gone (a reset).
fn record(
    app: &AppState,
    notify_id: &str,
    plan: &Plan,
    outcome: &Outcome,
    fault: Option<&str>,
    resend: bool,
) -> Option<DeliveryAttempt> {
    let mut state = app.lock();
    let now = state.now_ms();
    let b = &mut state.bestin;
    let n = b.notifications.get_mut(notify_id)?;
    n.attempts += 1;
    let delivered = fault != Some("drop") && outcome.delivered();
    n.delivered |= delivered;
    let attempt = DeliveryAttempt {
        notify_id: notify_id.to_owned(),
        trx_id: n.trx_id.clone(),
        attempt: n.attempts,
        url: plan.url.clone(),
        body: plan.body.clone(),
        status: outcome.status,
        response: outcome.response.clone(),
        error: outcome.error.clone(),
        delivered,
        fault: fault.map(str::to_owned),
        resend,
        at_ms: now,
    };
    b.counters.notify += 1;
    if delivered {
        b.counters.notify_delivered += 1;
    }
    tracing::info!(
        %notify_id,
        attempt = attempt.attempt,
        status = ?attempt.status,
        delivered,
        fault = ?fault,
        "notification attempt"
    );
    b.attempts.push(attempt.clone());
    Some(attempt)
}

/// Delivers a notification until the receiver acknowledges it or the attempts run out.
pub(crate) async fn deliver(app: AppState, notify_id: String) {
    let mut round: u32 = 0;
    loop {
        round += 1;
        let Some(plan) = plan(&app, &notify_id) else {
            return;
        };
        let (fault, backoff, max_attempts) = {
            let mut state = app.lock();
            let b = &mut state.bestin;
            let fault = b.next_fault(BestinEndpoint::Notify);
            let backoff = b.options.notify_backoff.clone();
            (fault, backoff, b.options.notify_max_attempts.max(1))
        };
        let mut label = None;
        if let Some(fault) = &fault
            && fault.delay_ms > 0
        {
            label = Some("delay");
            tokio::time::sleep(Duration::from_millis(fault.delay_ms)).await;
        }
        let delivered = match fault.map(|f| f.response) {
            Some(BestinFaultResponse::Drop) => {
                let dropped =
                    Outcome { status: None, response: None, error: Some("dropped by a sandbox fault".to_owned()) };
                match record(&app, &notify_id, &plan, &dropped, Some("drop"), false) {
                    Some(attempt) => attempt.delivered,
                    None => return,
                }
            }
            Some(BestinFaultResponse::Duplicate) => {
                let mut any = false;
                for _ in 0..2 {
                    let outcome = send(&plan).await;
                    match record(&app, &notify_id, &plan, &outcome, Some("duplicate"), false) {
                        Some(attempt) => any |= attempt.delivered,
                        None => return,
                    }
                }
                any
            }
            _ => {
                let outcome = send(&plan).await;
                match record(&app, &notify_id, &plan, &outcome, label, false) {
                    Some(attempt) => attempt.delivered,
                    None => return,
                }
            }
        };
        if delivered {
            return;
        }
        if round >= max_attempts {
            tracing::warn!(%notify_id, attempts = round, "notification not acknowledged; giving up");
            if let Some(n) = app.lock().bestin.notifications.get_mut(&notify_id) {
                n.gave_up = true;
            }
            return;
        }
        let index = usize::try_from(round - 1).unwrap_or(usize::MAX);
        let wait = backoff.get(index).or(backoff.last()).copied().unwrap_or(Duration::from_secs(1));
        tokio::time::sleep(wait).await;
    }
}

/// Sends a notification once more, now, whatever happened before (no faults apply).
pub(crate) async fn resend(app: &AppState, notify_id: &str) -> Option<DeliveryAttempt> {
    let plan = plan(app, notify_id)?;
    let outcome = send(&plan).await;
    record(app, notify_id, &plan, &outcome, None, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::RsaPublicKey;
    use rsa::pkcs1v15::{Signature, VerifyingKey};
    use rsa::pkcs8::DecodePublicKey;
    use rsa::signature::Verifier;

    const VECTORS: &str = include_str!("../keys/bestinpay-notify-vectors.json");

    fn vectors() -> Value {
        serde_json::from_str(VECTORS).expect("vectors parse")
    }

    /// An independent check with the public key only, as a merchant backend would do it.
    fn verifies(public_pem: &str, data: &Map<String, Value>, sign: &str) -> bool {
        let key = RsaPublicKey::from_public_key_pem(public_pem).expect("public key parses");
        let verifier = VerifyingKey::<Sha512>::new(key);
        let Ok(bytes) = BASE64.decode(sign) else {
            return false;
        };
        let Ok(signature) = Signature::try_from(bytes.as_slice()) else {
            return false;
        };
        verifier.verify(canonical_string(data).as_bytes(), &signature).is_ok()
    }

    fn cases() -> Vec<Value> {
        vectors()["cases"].as_array().expect("cases").clone()
    }

    fn data_of(case: &Value) -> Map<String, Value> {
        case["notification"]["data"].as_object().expect("data").clone()
    }

    #[test]
    fn the_embedded_keys_are_the_vector_files_test_keys() {
        let v = vectors();
        assert_eq!(v["public_key_pem"], TEST_PUBLIC_KEY_PEM);
        assert_eq!(v["private_key_pem"], TEST_PRIVATE_KEY_PEM);
        // When the shared folder sits beside the repository, our copy must match it.
        let shared = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/vectors/bestinpay-notify-vectors.json");
        if let Ok(text) = std::fs::read_to_string(shared) {
            let shared: Value = serde_json::from_str(&text).expect("shared vectors parse");
            assert_eq!(shared, v, "crates/sandbox/keys copy differs from shared/vectors");
        }
    }

    #[test]
    fn canonical_strings_match_the_spelled_out_vectors() {
        for case in cases() {
            assert_eq!(
                canonical_string(&data_of(&case)),
                case["signed_string"].as_str().expect("signed_string"),
                "{}",
                case["name"]
            );
        }
    }

    #[test]
    fn vector_signatures_verify_with_the_public_key_and_the_tampered_one_does_not() {
        let cases = cases();
        assert!(cases.iter().any(|c| c["valid"] == false));
        for case in cases {
            let sign = case["notification"]["sign"].as_str().expect("sign");
            assert_eq!(
                verifies(TEST_PUBLIC_KEY_PEM, &data_of(&case), sign),
                case["valid"].as_bool().expect("valid"),
                "{}",
                case["name"]
            );
        }
    }

    #[test]
    fn our_signer_reproduces_the_vectors_and_its_output_verifies() {
        for case in cases().into_iter().filter(|c| c["valid"] == true) {
            let data = data_of(&case);
            let ours = sign(&data);
            // PKCS#1 v1.5 is deterministic: same key, same string, same signature as OpenSSL.
            assert_eq!(ours, case["notification"]["sign"], "{}", case["name"]);
            assert!(verifies(TEST_PUBLIC_KEY_PEM, &data, &ours));
        }
        let mut data = Map::new();
        data.insert("status".into(), "expired".into());
        data.insert("amount".into(), "1.00".into());
        let signature = sign(&data);
        assert!(verifies(TEST_PUBLIC_KEY_PEM, &data, &signature));
        data.insert("amount".into(), "2.00".into());
        assert!(!verifies(TEST_PUBLIC_KEY_PEM, &data, &signature));
    }

    #[test]
    fn the_seeds_production_key_does_not_verify_sandbox_signatures() {
        const PRODUCTION: &str = "-----BEGIN PUBLIC KEY-----\n\
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA37PVibAurnVe+0l0k9DC\n\
Pc3whYA6QscL5KBxh7jdUGEN3RO1vd3AAMPhOqmhWBjckEzlZmojF9GPjqAPZH4s\n\
iNYRE60tV96cCDFOLspxaFmfOqyYOpUhcfDQf+QsFi3njVbEX5X1qcH4U0SL4ctm\n\
yTyJorcbn6qa2XuHgWeomvQ9yyZapjknmiypHd8Mn5niYqUCSlDs9AtCUqX8h38v\n\
HoUD714j5HUdMFhYCRwOJT0vmzCmFPdaI1GKxSp8y5CN+RPsZJ6CKD/8F/T+XHqW\n\
I5HtTKttZqevBG/XJDpThxreQzKb9l0JbjOHZ5fbZH6DSoyd5vfRdao+TQq7eR9n\n\
5QIDAQAB\n\
-----END PUBLIC KEY-----\n";
        let case = &cases()[0];
        let sign = case["notification"]["sign"].as_str().expect("sign");
        assert!(!verifies(PRODUCTION, &data_of(case), sign));
    }

    #[test]
    fn numbers_and_booleans_go_in_as_json_text_and_keys_sort_bytewise() {
        let data: Map<String, Value> =
            serde_json::from_str(r#"{"b":1.50,"B":"x","a":true,"c":null,"d":"","e":0}"#).expect("json");
        assert_eq!(canonical_string(&data), "B=x&a=true&b=1.5&e=0");
    }
}
