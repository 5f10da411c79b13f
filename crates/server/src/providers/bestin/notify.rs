//! Bestin Pay's signed notifications: the verifier (RSA PKCS#1 v1.5, SHA-512 over the canonical string of
//! `data`), and the parse of a verified notification bound to our merchant into a typed [`Notification`].

use super::transformers::{BestinStatus, parse_amount};
use base64::Engine;
use deshpay_api::Money;
use rsa::RsaPublicKey;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;
use serde_json::Value;
use sha2::Sha512;

/// The production notification key printed in Bestin Pay's API document.
pub const PRODUCTION_PUBLIC_KEY: &str = include_str!("../../../keys/bestinpay-production-public.pem");
/// The sandbox's published test key (the demo and tests configure it).
pub const SANDBOX_TEST_PUBLIC_KEY: &str = include_str!("../../../keys/bestinpay-sandbox-test-public.pem");

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

/// Why a notification was not accepted before anything was looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    /// Not the documented shape.
    Malformed(&'static str),
    /// The signature does not verify with the configured key.
    BadSignature,
    /// Signed by Bestin Pay, but for another merchant (`data.mid` is not ours).
    ForeignMerchant,
}

/// A verified notification bound to our merchant.
#[derive(Debug, Clone)]
pub struct Notification {
    /// Bestin's id of this delivery (deduplicated).
    pub notify_id: String,
    /// The order's trx_id.
    pub trx_id: String,
    /// The status as sent (kept with the dedupe record).
    pub status_text: String,
    /// The status.
    pub status: BestinStatus,
    /// A payout's notification (else a payin's).
    pub payout: bool,
    /// Our request id, as the notification names it (empty when it names none).
    pub req_id: String,
    /// The amount as sent, when it is a string.
    pub amount: Option<String>,
}

impl Notification {
    /// Verifies the signature over the raw body, then binds the notification to our merchant: Bestin Pay signs
    /// every merchant's notifications with one platform key, so only our `mid` is ours.
    ///
    /// # Errors
    /// A [`Rejected`].
    pub fn parse(verifier: &NotifyVerifier, merchant_id: &str, body: &[u8]) -> Result<Notification, Rejected> {
        let value: Value = serde_json::from_slice(body).map_err(|_| Rejected::Malformed("body is not JSON"))?;
        let data = value.get("data").and_then(Value::as_object).ok_or(Rejected::Malformed("no data object"))?;
        value.get("sign").and_then(Value::as_str).ok_or(Rejected::Malformed("no sign"))?;
        let notify_id = value.get("notify_id").and_then(Value::as_str).ok_or(Rejected::Malformed("no notify_id"))?;
        if !verifier.verify_notification(body) {
            return Err(Rejected::BadSignature);
        }
        let field = |k: &str| data.get(k).and_then(Value::as_str).unwrap_or_default();
        if merchant_id.is_empty() || field("mid") != merchant_id {
            tracing::warn!(notify_id, "a signed notification for another Bestin Pay merchant was rejected");
            return Err(Rejected::ForeignMerchant);
        }
        let (trx_id, status) = (field("trx_id"), field("status"));
        if trx_id.is_empty() || status.is_empty() || field("ccy") != "INR" {
            return Err(Rejected::Malformed("trx_id, status and ccy INR are required"));
        }
        Ok(Notification {
            notify_id: notify_id.to_owned(),
            trx_id: trx_id.to_owned(),
            status_text: status.to_owned(),
            status: BestinStatus::parse(status),
            payout: field("trx_type") == "payout",
            req_id: field("req_id").to_owned(),
            amount: data.get("amount").and_then(Value::as_str).map(str::to_owned),
        })
    }

    /// The amount as `Money`, when it is a readable INR decimal.
    pub fn amount(&self) -> Option<Money> {
        self.amount.as_deref().and_then(|a| parse_amount(a).ok())
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
