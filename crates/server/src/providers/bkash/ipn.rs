//! bKash's IPN as Amazon SNS delivers it: the envelope's verification and the subscription's confirmation.
//!
//! An envelope counts only when: its `Type` is the one in the `x-amz-sns-message-type` header (when sent); its
//! `TopicArn` is `bkash.ipn_topic_arn`; its `SigningCertURL` is HTTPS (HTTP only in the sandbox environment),
//! ends in `.pem` and its host matches `bkash.ipn_cert_hosts` (default `sns.*.amazonaws.com`); the certificate
//! there is an X.509 certificate with an RSA key, valid now; and `Signature` verifies over SNS's canonical string
//! (SignatureVersion "1": SHA1withRSA, "2": SHA256withRSA). The topic and the host are checked before anything is
//! fetched. Certificates are cached by URL. A SubscribeURL is fetched (GET, no redirects) only for a verified
//! confirmation of our topic, from an allowed host. Nothing of the envelope is logged but its MessageId.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rsa::RsaPublicKey;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use x509_cert::Certificate;
use x509_cert::der::{DecodePem, Encode};

/// Largest certificate accepted.
const MAX_CERT_BYTES: usize = 16 * 1024;
/// Certificates kept in the cache.
const MAX_CACHED: usize = 16;

/// Why an envelope was refused.
#[derive(Debug, thiserror::Error)]
pub enum IpnRejection {
    /// IPN is not configured (`bkash.ipn_topic_arn` unset).
    #[error("bKash IPN is not configured")]
    Disabled,
    /// Not an SNS envelope we can read.
    #[error("malformed envelope: {0}")]
    Malformed(&'static str),
    /// No signature.
    #[error("the envelope is not signed")]
    Unsigned,
    /// The signature does not verify.
    #[error("the signature does not verify")]
    BadSignature,
    /// Another topic than ours.
    #[error("not our topic")]
    ForeignTopic,
    /// The certificate (or subscribe) URL is not an allowed one.
    #[error("certificate or subscribe URL not allowed")]
    UrlNotAllowed,
    /// The certificate could not be fetched or read (SNS retries).
    #[error("signing certificate unavailable: {0}")]
    CertUnavailable(String),
    /// The SubscribeURL could not be confirmed (SNS retries).
    #[error("subscription not confirmed: {0}")]
    SubscribeFailed(String),
}

/// The SNS message types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The first message of a subscription: confirm by a GET of `SubscribeURL`.
    SubscriptionConfirmation,
    /// A published message (bKash's payload in `Message`).
    Notification,
    /// The subscription was ended.
    UnsubscribeConfirmation,
}

/// A verified envelope.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// The type.
    pub kind: Kind,
    /// SNS's MessageId (kept on redeliveries).
    pub message_id: String,
    /// `Message`: for a notification, bKash's payload as JSON text.
    pub message: String,
    /// `SubscribeURL` of a confirmation.
    pub subscribe_url: Option<String>,
}

/// Verifies envelopes and confirms subscriptions (see the module docs).
#[derive(Debug)]
pub struct IpnVerifier {
    topic: Option<String>,
    hosts: Vec<String>,
    allow_http: bool,
    http: reqwest::Client,
    cache: Mutex<HashMap<String, CachedCert>>,
}

#[derive(Debug, Clone)]
struct CachedCert {
    key: RsaPublicKey,
    not_before_ms: i64,
    not_after_ms: i64,
}

impl IpnVerifier {
    /// A verifier for `topic` (None: IPN off), certificate hosts `hosts`; `allow_http` only in the sandbox.
    pub fn new(topic: Option<String>, hosts: Vec<String>, allow_http: bool, timeout_ms: u64) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .https_only(!allow_http)
            .timeout(Duration::from_millis(timeout_ms.clamp(1_000, 30_000)))
            .build()
            .unwrap_or_default();
        IpnVerifier { topic, hosts, allow_http, http, cache: Mutex::new(HashMap::new()) }
    }

    /// Whether IPN is configured.
    pub fn enabled(&self) -> bool {
        self.topic.is_some()
    }

    /// Whether `url` may be fetched: HTTPS (or HTTP when allowed), no user info, an allowed host and port.
    pub fn url_allowed(&self, url: &url::Url) -> bool {
        let scheme_ok = url.scheme() == "https" || (self.allow_http && url.scheme() == "http");
        scheme_ok && url.username().is_empty() && url.password().is_none() && host_allowed(url, &self.hosts)
    }

    /// Reads and verifies an envelope (`header_type`: the `x-amz-sns-message-type` header, when sent).
    ///
    /// # Errors
    /// An [`IpnRejection`]; nothing is fetched for a foreign topic or a URL that is not allowed.
    pub async fn verify(&self, body: &[u8], header_type: Option<&str>, now_ms: i64) -> Result<Envelope, IpnRejection> {
        let topic = self.topic.as_deref().ok_or(IpnRejection::Disabled)?;
        let envelope: Map<String, Value> =
            serde_json::from_slice(body).map_err(|_| IpnRejection::Malformed("not a JSON object"))?;
        let text = |k: &str| envelope.get(k).and_then(Value::as_str);
        let kind = match text("Type") {
            Some("SubscriptionConfirmation") => Kind::SubscriptionConfirmation,
            Some("Notification") => Kind::Notification,
            Some("UnsubscribeConfirmation") => Kind::UnsubscribeConfirmation,
            _ => return Err(IpnRejection::Malformed("unknown Type")),
        };
        if header_type.is_some_and(|h| Some(h) != text("Type")) {
            return Err(IpnRejection::Malformed("x-amz-sns-message-type differs from Type"));
        }
        let message_id = text("MessageId").filter(|m| !m.is_empty() && m.len() <= 100);
        let message_id = message_id.ok_or(IpnRejection::Malformed("MessageId missing"))?.to_owned();
        let message = text("Message").ok_or(IpnRejection::Malformed("Message missing or not a string"))?.to_owned();
        text("Timestamp").ok_or(IpnRejection::Malformed("Timestamp missing"))?;
        if text("TopicArn") != Some(topic) {
            return Err(IpnRejection::ForeignTopic);
        }
        let signature = text("Signature").filter(|s| !s.is_empty()).ok_or(IpnRejection::Unsigned)?;
        let signature = BASE64.decode(signature).map_err(|_| IpnRejection::BadSignature)?;
        let version = text("SignatureVersion").ok_or(IpnRejection::Unsigned)?;
        if version != "1" && version != "2" {
            return Err(IpnRejection::BadSignature);
        }
        let cert_url = text("SigningCertURL").ok_or(IpnRejection::Malformed("SigningCertURL missing"))?;
        let cert_url = url::Url::parse(cert_url).map_err(|_| IpnRejection::UrlNotAllowed)?;
        if !self.url_allowed(&cert_url) || !cert_url.path().ends_with(".pem") {
            return Err(IpnRejection::UrlNotAllowed);
        }
        let subscribe_url = match kind {
            Kind::SubscriptionConfirmation => {
                Some(text("SubscribeURL").ok_or(IpnRejection::Malformed("SubscribeURL missing"))?.to_owned())
            }
            _ => None,
        };
        let key = self.certificate(&cert_url, now_ms).await?;
        let canonical = canonical_string(&envelope, kind);
        let verified = if version == "1" {
            verify_with::<sha1::Sha1>(&key, canonical.as_bytes(), &signature)
        } else {
            verify_with::<sha2::Sha256>(&key, canonical.as_bytes(), &signature)
        };
        if !verified {
            return Err(IpnRejection::BadSignature);
        }
        Ok(Envelope { kind, message_id, message, subscribe_url })
    }

    /// Confirms a verified subscription: GETs its SubscribeURL when it is allowed and names our topic.
    ///
    /// # Errors
    /// [`IpnRejection::UrlNotAllowed`] or [`IpnRejection::SubscribeFailed`].
    pub async fn confirm(&self, envelope: &Envelope) -> Result<(), IpnRejection> {
        let raw = envelope.subscribe_url.as_deref().ok_or(IpnRejection::Malformed("SubscribeURL missing"))?;
        let url = url::Url::parse(raw).map_err(|_| IpnRejection::UrlNotAllowed)?;
        let topic_named = url.query_pairs().any(|(k, v)| k == "TopicArn" && Some(v.as_ref()) == self.topic.as_deref());
        let action = url.query_pairs().any(|(k, v)| k == "Action" && v == "ConfirmSubscription");
        if !self.url_allowed(&url) || !topic_named || !action {
            return Err(IpnRejection::UrlNotAllowed);
        }
        let answer = self.http.get(url).send().await.map_err(|e| IpnRejection::SubscribeFailed(e.to_string()))?;
        if !answer.status().is_success() {
            return Err(IpnRejection::SubscribeFailed(format!("HTTP {}", answer.status().as_u16())));
        }
        Ok(())
    }

    async fn certificate(&self, url: &url::Url, now_ms: i64) -> Result<RsaPublicKey, IpnRejection> {
        let cached = self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(url.as_str()).cloned();
        let cert = match cached {
            Some(c) => c,
            None => {
                let fetched = self.fetch(url).await?;
                let mut cache = self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if cache.len() >= MAX_CACHED {
                    cache.clear();
                }
                cache.insert(url.as_str().to_owned(), fetched.clone());
                fetched
            }
        };
        if now_ms < cert.not_before_ms || now_ms > cert.not_after_ms {
            return Err(IpnRejection::CertUnavailable("the certificate is not valid now".into()));
        }
        Ok(cert.key)
    }

    async fn fetch(&self, url: &url::Url) -> Result<CachedCert, IpnRejection> {
        let unavailable = IpnRejection::CertUnavailable;
        let answer = self.http.get(url.clone()).send().await.map_err(|e| unavailable(e.to_string()))?;
        if !answer.status().is_success() {
            return Err(unavailable(format!("HTTP {}", answer.status().as_u16())));
        }
        if answer.content_length().is_some_and(|l| l > MAX_CERT_BYTES as u64) {
            return Err(unavailable("too large".into()));
        }
        let bytes = answer.bytes().await.map_err(|e| unavailable(e.to_string()))?;
        if bytes.len() > MAX_CERT_BYTES {
            return Err(unavailable("too large".into()));
        }
        parse_certificate(&bytes).map_err(unavailable)
    }
}

fn parse_certificate(pem: &[u8]) -> Result<CachedCert, String> {
    let cert = Certificate::from_pem(pem).map_err(|e| format!("not a PEM certificate: {e}"))?;
    let spki = cert.tbs_certificate.subject_public_key_info.to_der().map_err(|e| e.to_string())?;
    let key = RsaPublicKey::from_public_key_der(&spki).map_err(|e| format!("not an RSA key: {e}"))?;
    let ms = |t: x509_cert::time::Time| i64::try_from(t.to_unix_duration().as_millis()).unwrap_or(i64::MAX);
    let validity = cert.tbs_certificate.validity;
    Ok(CachedCert { key, not_before_ms: ms(validity.not_before), not_after_ms: ms(validity.not_after) })
}

fn verify_with<D>(key: &RsaPublicKey, message: &[u8], signature: &[u8]) -> bool
where
    D: sha2::Digest + rsa::pkcs8::AssociatedOid,
{
    let Ok(signature) = Signature::try_from(signature) else { return false };
    VerifyingKey::<D>::new(key.clone()).verify(message, &signature).is_ok()
}

/// SNS's canonical string: `Name\nValue\n` for the type's fields, in byte order of names, those present.
pub fn canonical_string(envelope: &Map<String, Value>, kind: Kind) -> String {
    let keys: &[&str] = match kind {
        Kind::Notification => &["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"],
        _ => &["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"],
    };
    let mut out = String::new();
    for key in keys {
        if let Some(value) = envelope.get(*key).and_then(Value::as_str) {
            out.push_str(key);
            out.push('\n');
            out.push_str(value);
            out.push('\n');
        }
    }
    out
}

/// Whether `url`'s host (and port, when the pattern names one) matches one of `patterns`, where `*` is one DNS
/// label of letters, digits and hyphens. A pattern without a port admits only the scheme's default port.
pub fn host_allowed(url: &url::Url, patterns: &[String]) -> bool {
    let Some(host) = url.host_str() else { return false };
    let host = host.to_ascii_lowercase();
    let port = url.port_or_known_default().unwrap_or(0);
    patterns.iter().any(|pattern| {
        let pattern = pattern.trim().to_ascii_lowercase();
        match pattern.rsplit_once(':') {
            Some((p_host, p_port)) => p_port == port.to_string() && labels_match(p_host, &host),
            None => url.port().is_none() && labels_match(&pattern, &host),
        }
    })
}

fn labels_match(pattern: &str, host: &str) -> bool {
    let (p, h): (Vec<&str>, Vec<&str>) = (pattern.split('.').collect(), host.split('.').collect());
    p.len() == h.len()
        && p.iter().zip(&h).all(|(p, h)| {
            if *p == "*" { !h.is_empty() && h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') } else { p == h }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(url: &str, patterns: &[&str]) -> bool {
        let patterns: Vec<String> = patterns.iter().map(|p| (*p).to_owned()).collect();
        host_allowed(&url::Url::parse(url).unwrap(), &patterns)
    }

    #[test]
    fn attack_cert_hosts_are_pinned_to_sns_by_default() {
        let sns = ["sns.*.amazonaws.com"];
        assert!(allowed("https://sns.ap-southeast-1.amazonaws.com/SimpleNotificationService-x.pem", &sns));
        assert!(allowed("https://SNS.us-east-1.amazonaws.com/x.pem", &sns));
        for bad in [
            "https://sns.ap-southeast-1.amazonaws.com.evil.com/x.pem",
            "https://evil.com/sns.ap-southeast-1.amazonaws.com/x.pem",
            "https://sns.a.b.amazonaws.com/x.pem",
            "https://sns..amazonaws.com/x.pem",
            "https://s3.ap-southeast-1.amazonaws.com/x.pem",
            "https://sns.ap-southeast-1.amazonaws.com:8443/x.pem",
            "https://xsns.ap-southeast-1.amazonaws.com/x.pem",
        ] {
            assert!(!allowed(bad, &sns), "{bad}");
        }
    }

    #[test]
    fn a_pattern_with_a_port_must_match_the_port() {
        assert!(allowed("http://127.0.0.1:4000/x.pem", &["127.0.0.1:4000"]));
        assert!(!allowed("http://127.0.0.1:4001/x.pem", &["127.0.0.1:4000"]));
        assert!(!allowed("http://localhost:4000/x.pem", &["127.0.0.1:4000"]));
    }

    #[test]
    fn the_canonical_string_of_a_notification_skips_subscribe_fields() {
        let env: Map<String, Value> = serde_json::from_value(serde_json::json!({
            "Type": "Notification", "MessageId": "m", "TopicArn": "t", "Message": "x", "Timestamp": "ts",
            "Token": "ignored", "SubscribeURL": "ignored", "Subject": "s",
        }))
        .unwrap();
        assert_eq!(
            canonical_string(&env, Kind::Notification),
            "Message\nx\nMessageId\nm\nSubject\ns\nTimestamp\nts\nTopicArn\nt\nType\nNotification\n"
        );
    }
}
