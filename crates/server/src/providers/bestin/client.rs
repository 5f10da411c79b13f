//! Bestin Pay client (UPI payins, payouts, cancel, query, balance) and the verifier of its signed
//! notifications. Facts from ../shared/spec/bestinpay.md and the provider's document (seed): every call is a
//! POST with `x-app-id`, `x-secret`, `x-timestamp`; the envelope is `{code, msg, data}` where success is
//! `"0000"` (a string) on orders but `200` (a number) on /balance; amounts come back with 4 decimals.

use crate::clock::Clock;
use crate::configuration::{BestinSettings, Environment};
use crate::metrics::Metrics;
use base64::Engine;
use deshpay_api::{Currency, Money};
use reqwest::header::{HeaderMap, HeaderValue};
use rsa::RsaPublicKey;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Sha512;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The production notification key printed in Bestin Pay's API document.
pub const PRODUCTION_PUBLIC_KEY: &str = include_str!("../../../keys/bestinpay-production-public.pem");
/// The sandbox's published test key (the demo and tests configure it).
pub const SANDBOX_TEST_PUBLIC_KEY: &str = include_str!("../../../keys/bestinpay-sandbox-test-public.pem");

/// What went wrong talking to Bestin Pay.
#[derive(Debug, thiserror::Error)]
pub enum BestinError {
    /// No answer in time.
    #[error("Bestin Pay did not answer in time")]
    Timeout,
    /// Connection problems after the request may have been sent.
    #[error("could not reach Bestin Pay: {0}")]
    Transport(String),
    /// No connection could be made: the request was never sent.
    #[error("could not connect to Bestin Pay: {0}")]
    Connect(String),
    /// Bestin Pay's error envelope.
    #[error("Bestin Pay error {code}: {message}")]
    Provider {
        /// Its code (e.g. "400").
        code: String,
        /// Its msg.
        message: String,
    },
    /// Not the JSON we expect.
    #[error("Bestin Pay answered HTTP {status} with an unreadable body ({reason})")]
    Decode {
        /// HTTP status.
        status: u16,
        /// What did not parse.
        reason: String,
    },
}

impl BestinError {
    /// No usable answer: the operation may or may not have happened.
    pub fn is_no_response(&self) -> bool {
        !matches!(self, BestinError::Provider { .. })
    }

    fn outcome(&self) -> &'static str {
        match self {
            BestinError::Timeout => "timeout",
            BestinError::Transport(_) => "transport",
            BestinError::Connect(_) => "connect",
            BestinError::Provider { .. } => "provider_error",
            BestinError::Decode { .. } => "decode",
        }
    }
}

/// Order status; unknown values are kept and never count as paid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BestinStatus {
    /// Processing.
    Pending,
    /// Being confirmed.
    Confirming,
    /// Paid / sent.
    Success,
    /// Failed.
    Failed,
    /// Canceled.
    Canceled,
    /// Expired.
    Expired,
    /// Anything else.
    Unknown(String),
}

impl BestinStatus {
    /// Parses a status string.
    pub fn parse(s: &str) -> Self {
        match s {
            "pending" => BestinStatus::Pending,
            "confirming" => BestinStatus::Confirming,
            "success" => BestinStatus::Success,
            "failed" => BestinStatus::Failed,
            "canceled" | "cancelled" => BestinStatus::Canceled,
            "expired" => BestinStatus::Expired,
            other => BestinStatus::Unknown(other.to_owned()),
        }
    }

    /// Whether no further change will happen.
    pub fn is_final(&self) -> bool {
        matches!(self, BestinStatus::Success | BestinStatus::Failed | BestinStatus::Canceled | BestinStatus::Expired)
    }
}

fn de_status<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BestinStatus, D::Error> {
    Ok(BestinStatus::parse(&String::deserialize(d)?))
}

/// Deep links of a payin.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Links {
    /// Paytm.
    #[serde(default)]
    pub paytm: Option<String>,
    /// PhonePe.
    #[serde(default)]
    pub phonepe: Option<String>,
    /// Any UPI app.
    #[serde(default)]
    pub upi: Option<String>,
}

/// An order (payin or payout) as /payin, /payout, /query return it.
#[derive(Debug, Clone, Deserialize)]
pub struct Order {
    /// Bestin trx id (PI.../PO...).
    pub trx_id: String,
    /// Our request id.
    #[serde(default)]
    pub req_id: Option<String>,
    /// Currency.
    #[serde(default)]
    pub ccy: Option<String>,
    /// Amount, e.g. "101.0000".
    pub amount: String,
    /// Status.
    #[serde(deserialize_with = "de_status")]
    pub status: BestinStatus,
    /// The generic upi:// link.
    #[serde(default)]
    pub link: Option<String>,
    /// Per-app links.
    #[serde(default)]
    pub links: Option<Links>,
}

/// One row of /balance.
#[derive(Debug, Clone, Deserialize)]
pub struct BalanceRow {
    /// Currency.
    pub ccy: String,
    /// Balance.
    pub balance: String,
    /// Available.
    pub available_balance: String,
    /// Frozen.
    pub frozen_balance: String,
}

/// Parses a Bestin amount ("101.0000") as INR.
///
/// # Errors
/// When it is not a decimal or has non-zero digits past the paisa.
pub fn parse_amount(text: &str) -> Result<Money, deshpay_api::MoneyError> {
    Money::parse(text, Currency::Inr)
}

/// Calls that change nothing at Bestin Pay and may be sent again to the backup URL after a 5xx or no answer
/// (`query` also serves the query by req_id). Payin, payout and cancel go to the backup only when no connection
/// could be made to the primary: once sent, a lost answer is settled by a query, which fails over.
const REPEATABLE: [&str; 2] = ["query", "balance"];

/// The Bestin Pay client.
#[derive(Debug)]
pub struct BestinClient {
    http: reqwest::Client,
    /// The primary base URL, then the backup.
    base_urls: Vec<String>,
    app_id: String,
    secret: SecretString,
    clock: Clock,
    metrics: Arc<Metrics>,
}

impl BestinClient {
    /// Builds the client.
    ///
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(
        settings: &BestinSettings,
        environment: Environment,
        clock: Clock,
        metrics: Arc<Metrics>,
    ) -> Result<Self, reqwest::Error> {
        // No redirects (they would carry x-secret elsewhere); https only outside the sandbox.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .https_only(environment == Environment::Production)
            .timeout(Duration::from_millis(settings.timeout_ms))
            .connect_timeout(Duration::from_millis(settings.timeout_ms.min(10_000)))
            .build()?;
        Ok(BestinClient {
            http,
            base_urls: std::iter::once(&settings.base_url)
                .chain(&settings.backup_base_url)
                .map(|u| u.trim_end_matches('/').to_owned())
                .collect(),
            app_id: settings.app_id.clone(),
            secret: settings.secret.clone(),
            clock,
            metrics,
        })
    }

    fn headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-app-id", HeaderValue::from_str(&self.app_id).unwrap_or(HeaderValue::from_static("")));
        let mut secret = HeaderValue::from_str(self.secret.expose_secret()).unwrap_or(HeaderValue::from_static(""));
        secret.set_sensitive(true);
        h.insert("x-secret", secret);
        h.insert("x-timestamp", HeaderValue::from(self.clock.now_ms()));
        h
    }

    async fn call<T: DeserializeOwned>(&self, endpoint: &'static str, body: &Value) -> Result<T, BestinError> {
        let repeatable = REPEATABLE.contains(&endpoint);
        let mut bases = self.base_urls.iter().enumerate().peekable();
        loop {
            let Some((i, base)) = bases.next() else { unreachable!("there is always a primary base URL") };
            let started = Instant::now();
            let (status, result) = match self.send(base, endpoint, body).await {
                Ok((status, text)) => (Some(status), interpret(status, &text)),
                Err(e) => (None, Err(e)),
            };
            let outcome = result.as_ref().map_or_else(BestinError::outcome, |_| "ok");
            self.metrics.provider_call("bestinpay", endpoint, outcome, started.elapsed().as_secs_f64());
            let Err(e) = &result else { return result };
            // Nothing was sent, or a call that is safe to repeat got a 5xx or no answer.
            let failover = match (e, status) {
                (BestinError::Connect(_), _) => true,
                (_, None) => repeatable,
                (_, Some(status)) => repeatable && status >= 500,
            };
            if failover && bases.peek().is_some() {
                tracing::warn!(endpoint, base = i, error = %e, "bestin call failed; trying the backup URL");
                continue;
            }
            tracing::warn!(endpoint, base = i, error = %e, "bestin call failed");
            return result;
        }
    }

    /// Sends one call to one base URL: the HTTP status and the body's text.
    async fn send(&self, base: &str, endpoint: &'static str, body: &Value) -> Result<(u16, String), BestinError> {
        let transport = |e: reqwest::Error| {
            if e.is_timeout() {
                BestinError::Timeout
            } else if e.is_connect() {
                BestinError::Connect(e.without_url().to_string())
            } else {
                BestinError::Transport(e.without_url().to_string())
            }
        };
        let response = self
            .http
            .post(format!("{base}/{endpoint}"))
            .headers(self.headers())
            .json(body)
            .send()
            .await
            .map_err(transport)?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(transport)?;
        Ok((status, text))
    }

    /// Creates a UPI payin in API mode.
    ///
    /// # Errors
    /// Any [`BestinError`].
    #[tracing::instrument(skip_all)]
    pub async fn payin(
        &self,
        req_id: &str,
        amount: Money,
        notify_url: &str,
        return_url: &str,
    ) -> Result<Order, BestinError> {
        let body = serde_json::json!({
            "req_id": req_id, "ccy": "INR", "amount": amount.to_decimal(), "trx_method": "upi", "trx_mode": "api",
            "notify_url": notify_url, "return_url": return_url,
        });
        self.call("payin", &body).await
    }

    /// Creates a UPI payout.
    ///
    /// # Errors
    /// Any [`BestinError`].
    #[tracing::instrument(skip_all)]
    pub async fn payout(&self, req_id: &str, amount: Money, upi: &str, notify_url: &str) -> Result<Order, BestinError> {
        let body = serde_json::json!({
            "req_id": req_id, "ccy": "INR", "amount": amount.to_decimal(), "trx_method": "upi", "upi": upi,
            "user_ip": "127.0.0.1", "notify_url": notify_url,
        });
        self.call("payout", &body).await
    }

    /// Cancels a pending order.
    ///
    /// # Errors
    /// Any [`BestinError`].
    pub async fn cancel(&self, trx_id: &str, trx_type: &str) -> Result<Value, BestinError> {
        self.call("cancel", &serde_json::json!({"trx_id": trx_id, "trx_type": trx_type})).await
    }

    /// Reads an order.
    ///
    /// # Errors
    /// Any [`BestinError`].
    pub async fn query(&self, trx_id: &str, trx_type: &str) -> Result<Order, BestinError> {
        self.call("query", &serde_json::json!({"trx_id": trx_id, "trx_type": trx_type})).await
    }

    /// Reads an order by our request id (when the create answer was lost).
    ///
    /// # Errors
    /// Any [`BestinError`].
    pub async fn query_by_req_id(&self, req_id: &str, trx_type: &str) -> Result<Order, BestinError> {
        self.call("query", &serde_json::json!({"req_id": req_id, "trx_type": trx_type})).await
    }

    /// Reads the merchant's balances.
    ///
    /// # Errors
    /// Any [`BestinError`].
    pub async fn balance(&self) -> Result<Vec<BalanceRow>, BestinError> {
        self.call("balance", &serde_json::json!({})).await
    }
}

/// Reads Bestin Pay's envelope `{code, msg, data}`: `data` on success (`"0000"`, or `200` on /balance), its
/// error otherwise.
fn interpret<T: DeserializeOwned>(status: u16, text: &str) -> Result<T, BestinError> {
    // A server error decides nothing, whatever its body says (a gateway's 503, or Bestin's envelope on a 5xx):
    // the operation may or may not have happened, so it is settled by /query, never taken as a refusal.
    if status >= 500 {
        return Err(BestinError::Decode { status, reason: "server error".into() });
    }
    let value: Value = serde_json::from_str(text).map_err(|e| BestinError::Decode { status, reason: e.to_string() })?;
    let code = value.get("code").cloned().unwrap_or(Value::Null);
    let ok = code.as_str() == Some("0000") || code.as_i64() == Some(200);
    if !ok {
        let code = code.as_str().map_or_else(|| code.to_string(), str::to_owned);
        let message = value.get("msg").and_then(Value::as_str).unwrap_or_default().to_owned();
        return Err(BestinError::Provider { code, message });
    }
    let data = value.get("data").cloned().unwrap_or(Value::Null);
    serde_json::from_value(data).map_err(|e| BestinError::Decode { status, reason: e.to_string() })
}

/// Builds the string Bestin Pay signs: `data`'s fields that are neither null nor empty, sorted by key
/// (bytewise), joined as `key=value&...`; strings as they are, other values in their JSON text form.
pub fn canonical_string(data: &serde_json::Map<String, Value>) -> String {
    let mut fields: Vec<(&String, String)> = data
        .iter()
        .filter_map(|(k, v)| match v {
            Value::Null => None,
            Value::String(s) if s.is_empty() => None,
            Value::String(s) => Some((k, s.clone())),
            other => Some((k, other.to_string())),
        })
        .collect();
    fields.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    fields.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

/// [`canonical_string`] over the raw JSON text of a `data` object: numbers keep the digits Bestin Pay sent
/// (`101.00` stays `101.00`; re-serialising a parsed number would print `101.0` and break the signature).
///
/// # Errors
/// When `data` is not a JSON object.
pub fn canonical_string_raw(data: &str) -> Result<String, serde_json::Error> {
    let fields: std::collections::BTreeMap<String, &serde_json::value::RawValue> = serde_json::from_str(data)?;
    let mut out: Vec<(String, String)> = Vec::with_capacity(fields.len());
    for (k, raw) in fields {
        let text = raw.get().trim();
        let value = if text.starts_with('"') {
            serde_json::from_str::<String>(text)?
        } else if text == "null" {
            continue;
        } else {
            text.to_owned()
        };
        if !value.is_empty() {
            out.push((k, value));
        }
    }
    // BTreeMap<String> already orders keys bytewise.
    Ok(out.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&"))
}

/// The raw text of a notification's `data` and its `sign`.
#[derive(Debug, serde::Deserialize)]
struct RawNotification<'a> {
    #[serde(borrow)]
    data: &'a serde_json::value::RawValue,
    sign: String,
}

/// Verifies notification signatures (RSA PKCS#1 v1.5, SHA-512, base64).
#[derive(Debug, Clone)]
pub struct NotifyVerifier {
    key: VerifyingKey<Sha512>,
}

impl NotifyVerifier {
    /// From a SubjectPublicKeyInfo PEM.
    ///
    /// # Errors
    /// When the PEM is not an RSA public key.
    pub fn from_pem(pem: &str) -> Result<Self, rsa::pkcs8::spki::Error> {
        let key = RsaPublicKey::from_public_key_pem(pem.trim())?;
        Ok(NotifyVerifier { key: VerifyingKey::new(key) })
    }

    /// Whether `sign` is a valid signature of `data` (parsed: numbers lose their original text; prefer
    /// [`NotifyVerifier::verify_notification`]).
    pub fn verify(&self, data: &serde_json::Map<String, Value>, sign: &str) -> bool {
        self.verify_canonical(&canonical_string(data), sign)
    }

    /// Whether a notification body's `sign` is a valid signature of its `data`, canonicalised over the raw
    /// JSON text of each value.
    pub fn verify_notification(&self, body: &[u8]) -> bool {
        let Ok(n) = serde_json::from_slice::<RawNotification<'_>>(body) else { return false };
        let Ok(canonical) = canonical_string_raw(n.data.get()) else { return false };
        self.verify_canonical(&canonical, &n.sign)
    }

    fn verify_canonical(&self, canonical: &str, sign: &str) -> bool {
        let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(sign.trim()) else { return false };
        let Ok(signature) = Signature::try_from(bytes.as_slice()) else { return false };
        self.key.verify(canonical.as_bytes(), &signature).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A copy of shared/vectors/bestinpay-notify-vectors.json (signed with OpenSSL, not by our code).
    fn vectors() -> Value {
        serde_json::from_str(include_str!("../../../keys/bestinpay-notify-vectors.json")).expect("vectors json")
    }

    #[test]
    fn canonical_strings_and_signatures_match_the_published_vectors() {
        let v = vectors();
        let verifier = NotifyVerifier::from_pem(v["public_key_pem"].as_str().unwrap()).unwrap();
        let cases = v["cases"].as_array().unwrap();
        assert!(cases.len() >= 3);
        for case in cases {
            let n = &case["notification"];
            let data = n["data"].as_object().unwrap();
            if let Some(expected) = case["signed_string"].as_str() {
                assert_eq!(canonical_string(data), expected, "{}", case["name"]);
            }
            let valid = case["valid"].as_bool().unwrap();
            assert_eq!(verifier.verify(data, n["sign"].as_str().unwrap()), valid, "{}", case["name"]);
        }
    }

    #[test]
    fn raw_canonicalisation_keeps_the_text_of_numbers_and_matches_the_vectors() {
        let v = vectors();
        let verifier = NotifyVerifier::from_pem(v["public_key_pem"].as_str().unwrap()).unwrap();
        for case in v["cases"].as_array().unwrap() {
            let n = &case["notification"];
            let body = serde_json::to_vec(n).unwrap();
            if let Some(expected) = case["signed_string"].as_str() {
                assert_eq!(canonical_string_raw(&n["data"].to_string()).unwrap(), expected, "{}", case["name"]);
            }
            assert_eq!(verifier.verify_notification(&body), case["valid"].as_bool().unwrap(), "{}", case["name"]);
        }
        let raw =
            r#"{"ccy":"INR","amount":101.00,"fee": 0.5000 ,"n":7,"ok":true,"req_id":"","remark":null,"s":"a\u0026b"}"#;
        assert_eq!(canonical_string_raw(raw).unwrap(), "amount=101.00&ccy=INR&fee=0.5000&n=7&ok=true&s=a&b");
        assert!(canonical_string_raw("[1,2]").is_err());
        assert!(!verifier.verify_notification(b"not json"));
    }

    #[test]
    fn a_number_signed_as_written_verifies_only_over_the_raw_text() {
        use rsa::pkcs1v15::SigningKey;
        use rsa::pkcs8::DecodePrivateKey;
        use rsa::signature::{SignatureEncoding, Signer};
        let pem = include_str!("../../../../sandbox/keys/bestin-test-private.pem");
        let key = SigningKey::<Sha512>::new(rsa::RsaPrivateKey::from_pkcs8_pem(pem).unwrap());
        let canonical = "amount=101.00&ccy=INR&status=success&trx_id=PI1";
        let sign = base64::engine::general_purpose::STANDARD.encode(key.sign(canonical.as_bytes()).to_bytes());
        let body = format!(
            r#"{{"notify_id":"N1","sign":"{sign}","data":{{"trx_id":"PI1","status":"success","amount":101.00,"ccy":"INR"}}}}"#
        );
        let verifier = NotifyVerifier::from_pem(SANDBOX_TEST_PUBLIC_KEY).unwrap();
        assert!(verifier.verify_notification(body.as_bytes()));
        let parsed: Value = serde_json::from_str(&body).unwrap();
        assert!(!verifier.verify(parsed["data"].as_object().unwrap(), &sign), "the parsed number prints as 101.0");
    }

    #[test]
    fn the_production_key_does_not_accept_sandbox_signatures() {
        let v = vectors();
        let production = NotifyVerifier::from_pem(PRODUCTION_PUBLIC_KEY).unwrap();
        let case = &v["cases"][0]["notification"];
        assert!(!production.verify(case["data"].as_object().unwrap(), case["sign"].as_str().unwrap()));
        assert!(NotifyVerifier::from_pem(SANDBOX_TEST_PUBLIC_KEY).is_ok());
    }

    #[test]
    fn garbage_signatures_are_rejected_not_panicked_on() {
        let verifier = NotifyVerifier::from_pem(SANDBOX_TEST_PUBLIC_KEY).unwrap();
        let data = serde_json::Map::new();
        for sign in ["", "!!!", "AAAA", &"A".repeat(1000)] {
            assert!(!verifier.verify(&data, sign));
        }
    }
}
