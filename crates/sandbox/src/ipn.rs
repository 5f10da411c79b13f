//! bKash's IPN (Instant Payment Notification) the way bKash sends it: published into an Amazon SNS topic and
//! POSTed by SNS to the merchant's HTTP(S) subscription (`shared/spec/bkash-agreements-ipn.md`, section 5).
//!
//! - A subscription is made through the control API (`POST /__sandbox/bkash/ipn/subscribe`) or
//!   [`crate::SandboxConfig::bkash_ipn_endpoint`]. The sandbox POSTs one `SubscriptionConfirmation` whose
//!   `SubscribeURL` points back at the sandbox (`{url}/__sns/?Action=ConfirmSubscription&TopicArn=..&Token=..`);
//!   notifications published before that URL is fetched are held, and delivered once it is.
//! - Every envelope is signed as SNS signs: the canonical string of `Name\nValue\n` pairs (Notification:
//!   `Message`, `MessageId`, `Subject` when present, `Timestamp`, `TopicArn`, `Type`; SubscriptionConfirmation:
//!   `Message`, `MessageId`, `SubscribeURL`, `Timestamp`, `Token`, `TopicArn`, `Type`), RSA PKCS#1 v1.5 with
//!   SHA-1 (`SignatureVersion` "1", the default) or SHA-256 ("2", chosen per subscription), base64. The
//!   certificate is served at `SigningCertURL` = `{url}/__sns/SimpleNotificationService-sandbox.pem`; its key
//!   is **test material** (`crates/sandbox/keys/sns-test-*.pem`), never an AWS key.
//! - HTTP as SNS sends it: `POST`, `Content-Type: text/plain; charset=UTF-8`, headers `x-amz-sns-message-type`,
//!   `x-amz-sns-message-id`, `x-amz-sns-topic-arn`, `x-amz-sns-subscription-arn` (notifications),
//!   `User-Agent: Amazon Simple Notification Service Agent`. Any 2xx is a delivery; anything else is retried
//!   after each of the subscription's `retry_delays_ms` (AWS's default: 3 retries, 20 s apart), with the same
//!   `MessageId`.
//!
//! Choices where the spec is open:
//! - **When a payment is announced.** bKash says "completed transaction notification" but not when it fires
//!   for a tokenized checkout. The sandbox announces a payment once, at the first of: the customer finishing
//!   the hosted page (PIN accepted, or the control API's approve) with a wallet whose Execute will succeed, or
//!   a successful Execute. So a merchant learns of a payment whose customer closed the tab before the
//!   callback. The `trxID` announced is reserved then and is the one Execute returns. Wallets whose Execute
//!   fails (insufficient balance, debit block) are never announced.
//! - **Payload** (`Message`, a JSON *string*, as real SNS deliveries carry it): `dateTime` (`yyyyMMddHHmmss`,
//!   Dhaka time), `debitMSISDN` (the wallet with `88`, e.g. `8801770618575`), `creditOrganizationName`
//!   ("DeshPay Sandbox Merchant"), `creditShortCode` ([`MERCHANT_WALLET`]), `trxID`, `transactionStatus`
//!   "Completed", `transactionType` (10002294 for checkout, 10003126 QR, 10002175 USSD, 10003476 bank),
//!   `amount` ("250.00", two decimals), `currency` "BDT", `merchantInvoiceNumber` (checkout payments; the
//!   simulated QR/USSD payments only when one is given), `transactionReference` (when given).
//! - The topic is [`TOPIC_ARN`] (named `bpt_<merchant wallet>` like bKash's); message ids are UUID v4 text.
//! - Faults (`POST /__sandbox/bkash/ipn/faults`, each for `times` deliveries, default 1): `drop` (the
//!   notification is lost: never delivered, no retries), `duplicate` (delivered twice, same bytes), `delay`
//!   (`delay_ms` before sending), `bad_signature` (a corrupted `Signature`), `unsigned` (no `Signature`),
//!   `foreign_topic` (validly signed, another `TopicArn`), `foreign_cert_host` (validly signed, `SigningCertURL`
//!   on `localhost` instead of the sandbox's host; the cert is served there too). A refused delivery is retried
//!   without the fault.
//! - Payments the merchant never created (QR, USSD, app): `POST /__sandbox/bkash/ipn/payments`
//!   `{"amount":"120.00","channel":"qr"|"ussd"|"app"|"bank","wallet":"01770618575","invoice":..,"reference":..}`
//!   publishes one notification with a fresh trxID.
//! - `POST /__sandbox/reset` forgets messages and faults but keeps the subscription (it is configuration).

use std::collections::VecDeque;
use std::sync::LazyLock;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State as AxState};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rsa::RsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::{OffsetDateTime, UtcOffset};

use crate::state::{
    AppState, DEBIT_BLOCK_WALLET, INSUFFICIENT_BALANCE_WALLET, PaymentStatus, SUCCESS_WALLETS, format_minor,
    parse_amount, random_alnum,
};

/// The SNS topic the sandbox publishes bKash's IPN to.
pub const TOPIC_ARN: &str = "arn:aws:sns:ap-southeast-1:000000000000:bpt_01711000000";
/// The merchant wallet (`creditShortCode`) of the sandbox's merchant.
pub const MERCHANT_WALLET: &str = "01711000000";
/// The certificate (PEM) whose key signs the sandbox's SNS messages (test material).
pub const SNS_TEST_CERT_PEM: &str = include_str!("../keys/sns-test-cert.pem");
const SNS_TEST_PRIVATE_KEY_PEM: &str = include_str!("../keys/sns-test-private.pem");
const CERT_PATH: &str = "/__sns/SimpleNotificationService-sandbox.pem";
const AWS_DEFAULT_RETRIES_MS: [u64; 3] = [20_000, 20_000, 20_000];

static KEY: LazyLock<RsaPrivateKey> = LazyLock::new(|| {
    RsaPrivateKey::from_pkcs8_pem(SNS_TEST_PRIVATE_KEY_PEM)
        .expect("the embedded SNS test key is a valid PKCS#8 RSA key")
});

/// The SNS side of the sandbox: one subscription, the messages published, the delivery log, the faults.
#[derive(Debug)]
pub(crate) struct Ipn {
    pub subscription: Option<Subscription>,
    pub messages: Vec<Message>,
    pub deliveries: Vec<Delivery>,
    pub faults: VecDeque<IpnFault>,
    pub http: reqwest::Client,
}

impl Ipn {
    pub fn new() -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(15))
            .build()
            .unwrap_or_default();
        Ipn { subscription: None, messages: Vec::new(), deliveries: Vec::new(), faults: VecDeque::new(), http }
    }

    /// What a reset keeps: the subscription.
    pub fn fresh(&mut self) -> Self {
        Ipn { subscription: self.subscription.take(), http: self.http.clone(), ..Ipn::new() }
    }

    fn next_fault(&mut self) -> Option<IpnFault> {
        let front = self.faults.front_mut()?;
        let fault = front.clone();
        front.times = front.times.saturating_sub(1);
        if front.times == 0 {
            self.faults.pop_front();
        }
        Some(fault)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Subscription {
    pub endpoint: String,
    pub arn: String,
    pub token: String,
    pub confirmed: bool,
    pub signature_version: u8,
    pub retry_delays_ms: Vec<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) enum Kind {
    SubscriptionConfirmation,
    Notification,
}

/// One SNS message and its delivery state.
#[derive(Debug, Clone)]
pub(crate) struct Message {
    pub id: String,
    pub kind: Kind,
    pub trx_id: Option<String>,
    /// The `Message` field: the bKash payload as a JSON string (or SNS's text for a confirmation).
    pub message: String,
    pub timestamp_ms: i64,
    pub delivered: bool,
    pub attempts: u32,
    /// Published while no confirmed subscription existed: delivered when one is confirmed.
    pub held: bool,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Delivery {
    pub message_id: String,
    #[serde(rename = "type")]
    pub kind: Kind,
    pub attempt: u32,
    pub endpoint: String,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub fault: Option<FaultKind>,
    pub delivered: bool,
    pub at_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum FaultKind {
    Drop,
    Duplicate,
    Delay,
    BadSignature,
    Unsigned,
    ForeignTopic,
    ForeignCertHost,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct IpnFault {
    pub kind: FaultKind,
    #[serde(default)]
    pub delay_ms: u64,
    #[serde(default = "one")]
    pub times: u32,
}

fn one() -> u32 {
    1
}

/// The SNS canonical string of an envelope (see the module docs).
pub fn canonical_string(envelope: &serde_json::Map<String, Value>) -> String {
    let notification = envelope.get("Type").and_then(Value::as_str) == Some("Notification");
    let keys: &[&str] = if notification {
        &["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
    } else {
        &["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
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

/// Signs `text` with the sandbox's SNS test key: SHA1withRSA (`version` 1) or SHA256withRSA (2), base64.
pub fn sign(text: &str, version: u8) -> String {
    let bytes = if version == 2 {
        rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(KEY.clone()).sign(text.as_bytes()).to_vec()
    } else {
        rsa::pkcs1v15::SigningKey::<sha1::Sha1>::new(KEY.clone()).sign(text.as_bytes()).to_vec()
    };
    BASE64.encode(bytes)
}

fn iso_time(unix_ms: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// bKash's IPN `dateTime`: `yyyyMMddHHmmss` in Dhaka time.
fn bkash_date_time(unix_ms: i64) -> String {
    let dhaka = UtcOffset::from_hms(6, 0, 0).unwrap_or(UtcOffset::UTC);
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .to_offset(dhaka);
    format!("{:04}{:02}{:02}{:02}{:02}{:02}", t.year(), u8::from(t.month()), t.day(), t.hour(), t.minute(), t.second())
}

fn uuid() -> String {
    let hex: String = {
        use rand::Rng;
        let mut rng = rand::rng();
        (0..32).map(|_| char::from(b"0123456789abcdef"[rng.random_range(0..16)])).collect()
    };
    format!("{}-{}-4{}-a{}-{}", &hex[..8], &hex[8..12], &hex[13..16], &hex[17..20], &hex[20..32])
}

/// The whole envelope of `m`, signed as the subscription asks, shaped by `fault`.
fn envelope(public_url: &str, sub: &Subscription, m: &Message, fault: Option<FaultKind>) -> String {
    let host_url = match fault {
        Some(FaultKind::ForeignCertHost) => public_url.replacen("127.0.0.1", "localhost", 1),
        _ => public_url.to_owned(),
    };
    let topic = if fault == Some(FaultKind::ForeignTopic) {
        "arn:aws:sns:ap-southeast-1:999999999999:bpt_01999999999"
    } else {
        TOPIC_ARN
    };
    let mut env = serde_json::Map::new();
    env.insert("MessageId".into(), m.id.clone().into());
    env.insert("TopicArn".into(), topic.into());
    env.insert("Message".into(), m.message.clone().into());
    env.insert("Timestamp".into(), iso_time(m.timestamp_ms).into());
    match m.kind {
        Kind::SubscriptionConfirmation => {
            env.insert("Type".into(), "SubscriptionConfirmation".into());
            env.insert("Token".into(), sub.token.clone().into());
            let subscribe = format!(
                "{public_url}/__sns/?Action=ConfirmSubscription&TopicArn={}&Token={}",
                crate::bestin::encode(topic),
                sub.token
            );
            env.insert("SubscribeURL".into(), subscribe.into());
        }
        Kind::Notification => {
            env.insert("Type".into(), "Notification".into());
            let unsubscribe =
                format!("{public_url}/__sns/?Action=Unsubscribe&SubscriptionArn={}", crate::bestin::encode(&sub.arn));
            env.insert("UnsubscribeURL".into(), unsubscribe.into());
        }
    }
    env.insert("SignatureVersion".into(), sub.signature_version.to_string().into());
    env.insert("SigningCertURL".into(), format!("{host_url}{CERT_PATH}").into());
    if fault != Some(FaultKind::Unsigned) {
        let mut signature = sign(&canonical_string(&env), sub.signature_version);
        if fault == Some(FaultKind::BadSignature) {
            // Another message's signature: well-formed base64 of the right length that does not verify.
            signature = sign("tampered\n", sub.signature_version);
        }
        env.insert("Signature".into(), signature.into());
    }
    Value::Object(env).to_string()
}

/// Subscribes `endpoint` (replacing any subscription) and sends its `SubscriptionConfirmation`.
pub(crate) fn subscribe(app: &AppState, endpoint: String, signature_version: u8, retry_delays_ms: Vec<u64>) -> Value {
    let (message_id, arn) = {
        let mut state = app.lock();
        let now = state.now_ms();
        let arn = format!("{TOPIC_ARN}:{}", uuid());
        let token = random_alnum(64);
        let sub = Subscription {
            endpoint: endpoint.clone(),
            arn: arn.clone(),
            token,
            confirmed: false,
            signature_version,
            retry_delays_ms,
        };
        let message = Message {
            id: uuid(),
            kind: Kind::SubscriptionConfirmation,
            trx_id: None,
            message: format!(
                "You have chosen to subscribe to the topic {TOPIC_ARN}.\nTo confirm the subscription, visit the \
                 SubscribeURL included in this message."
            ),
            timestamp_ms: now,
            delivered: false,
            attempts: 0,
            held: false,
        };
        let id = message.id.clone();
        state.ipn.subscription = Some(sub);
        state.ipn.messages.push(message);
        (id, arn)
    };
    tracing::info!(%endpoint, signature_version, "IPN subscription made; confirmation sent");
    tokio::spawn(deliver(app.clone(), message_id.clone()));
    json!({ "topic_arn": TOPIC_ARN, "subscription_arn": arn, "message_id": message_id, "endpoint": endpoint })
}

/// Publishes one notification; it is delivered now when the subscription is confirmed, held otherwise.
fn publish(app: &AppState, payload: Value, trx_id: String) -> String {
    let id = {
        let mut state = app.lock();
        let now = state.now_ms();
        let confirmed = state.ipn.subscription.as_ref().is_some_and(|s| s.confirmed);
        let message = Message {
            id: uuid(),
            kind: Kind::Notification,
            trx_id: Some(trx_id.clone()),
            message: payload.to_string(),
            timestamp_ms: now,
            delivered: false,
            attempts: 0,
            held: !confirmed,
        };
        let id = message.id.clone();
        state.ipn.messages.push(message);
        if !confirmed {
            tracing::info!(message_id = %id, %trx_id, "IPN held until a subscription is confirmed");
            return id;
        }
        id
    };
    tracing::info!(message_id = %id, %trx_id, "IPN published");
    tokio::spawn(deliver(app.clone(), id.clone()));
    id
}

fn payload(
    now_ms: i64,
    wallet: &str,
    trx_id: &str,
    transaction_type: &str,
    amount: &str,
    invoice: Option<&str>,
    reference: Option<&str>,
) -> Value {
    let mut p = json!({
        "dateTime": bkash_date_time(now_ms),
        "debitMSISDN": format!("88{wallet}"),
        "creditOrganizationName": "DeshPay Sandbox Merchant",
        "creditShortCode": MERCHANT_WALLET,
        "trxID": trx_id,
        "transactionStatus": "Completed",
        "transactionType": transaction_type,
        "amount": amount,
        "currency": "BDT",
    });
    if let Some(invoice) = invoice {
        p["merchantInvoiceNumber"] = invoice.into();
    }
    if let Some(reference) = reference {
        p["transactionReference"] = reference.into();
    }
    p
}

/// Announces a checkout payment once it will complete (approved with a wallet whose Execute succeeds) or has
/// completed, unless it was announced before. Returns the trxID reserved for it.
pub(crate) fn announce(app: &AppState, payment_id: &str) {
    let published = {
        let mut state = app.lock();
        let now = state.now_ms();
        let Some(p) = state.payments.get(payment_id) else { return };
        if p.ipn_announced {
            return;
        }
        let wallet = p.wallet.clone().unwrap_or_default();
        let will_complete = p.status == PaymentStatus::Approved
            && now < p.expires_ms
            && wallet != INSUFFICIENT_BALANCE_WALLET
            && wallet != DEBIT_BLOCK_WALLET;
        if !(will_complete || p.status == PaymentStatus::Completed) {
            return;
        }
        let trx_id = match p.trx_id.clone().or_else(|| p.reserved_trx_id.clone()) {
            Some(t) => t,
            None => state.new_trx_id(),
        };
        let Some(p) = state.payments.get_mut(payment_id) else { return };
        p.ipn_announced = true;
        if p.trx_id.is_none() {
            p.reserved_trx_id = Some(trx_id.clone());
        }
        let amount = format_minor(p.amount_minor);
        (payload(now, &wallet, &trx_id, "10002294", &amount, Some(&p.invoice), None), trx_id)
    };
    publish(app, published.0, published.1);
}

/// Sends a message until it is delivered, dropped, or its retries run out.
pub(crate) async fn deliver(app: AppState, message_id: String) {
    let mut round: usize = 0;
    loop {
        let (fault, delays) = {
            let mut state = app.lock();
            // Faults shape a message's first delivery only; SNS's retries go out as they should.
            let fault = if round == 0 { state.ipn.next_fault() } else { None };
            let delays = state.ipn.subscription.as_ref().map(|s| s.retry_delays_ms.clone()).unwrap_or_default();
            (fault, delays)
        };
        let kind = fault.as_ref().map(|f| f.kind);
        if let Some(f) = &fault
            && f.kind == FaultKind::Delay
        {
            tokio::time::sleep(Duration::from_millis(f.delay_ms)).await;
        }
        let delivered = if kind == Some(FaultKind::Drop) {
            record(&app, &message_id, None, Some("dropped by a sandbox fault".into()), kind);
            tracing::info!(%message_id, "IPN dropped by a fault");
            return;
        } else if kind == Some(FaultKind::Duplicate) {
            let first = send_once(&app, &message_id, None).await;
            let second = send_once(&app, &message_id, None).await;
            first.unwrap_or(false) || second.unwrap_or(false)
        } else {
            match send_once(&app, &message_id, kind).await {
                Some(d) => d,
                None => return,
            }
        };
        if delivered {
            return;
        }
        let Some(wait) = delays.get(round).copied() else {
            tracing::warn!(%message_id, "IPN not delivered; retries exhausted");
            return;
        };
        round += 1;
        tokio::time::sleep(Duration::from_millis(wait)).await;
    }
}

/// One POST of a message; `None` when there is nothing to send (gone, held, or no subscription).
async fn send_once(app: &AppState, message_id: &str, fault: Option<FaultKind>) -> Option<bool> {
    let (sub, message, body, http) = {
        let state = app.lock();
        let sub = state.ipn.subscription.clone()?;
        let m = state.ipn.messages.iter().find(|m| m.id == message_id)?.clone();
        if m.held || (m.kind == Kind::Notification && !sub.confirmed) {
            return None;
        }
        let body = envelope(&state.public_url, &sub, &m, fault);
        (sub, m, body, state.ipn.http.clone())
    };
    let kind = match message.kind {
        Kind::SubscriptionConfirmation => "SubscriptionConfirmation",
        Kind::Notification => "Notification",
    };
    let mut request = http
        .post(&sub.endpoint)
        .header(header::CONTENT_TYPE, "text/plain; charset=UTF-8")
        .header(header::USER_AGENT, "Amazon Simple Notification Service Agent")
        .header("x-amz-sns-message-type", kind)
        .header("x-amz-sns-message-id", &message.id)
        .header("x-amz-sns-topic-arn", TOPIC_ARN);
    if message.kind == Kind::Notification {
        request = request.header("x-amz-sns-subscription-arn", &sub.arn);
    }
    let (status, error) = match request.body(body).send().await {
        Ok(r) => (Some(r.status().as_u16()), None),
        Err(e) => (None, Some(e.to_string())),
    };
    Some(record(app, message_id, status, error, fault))
}

fn record(
    app: &AppState,
    message_id: &str,
    status: Option<u16>,
    error: Option<String>,
    fault: Option<FaultKind>,
) -> bool {
    let mut state = app.lock();
    let now = state.now_ms();
    let endpoint = state.ipn.subscription.as_ref().map(|s| s.endpoint.clone()).unwrap_or_default();
    let delivered = fault != Some(FaultKind::Drop) && status.is_some_and(|s| (200..300).contains(&s));
    let Some(m) = state.ipn.messages.iter_mut().find(|m| m.id == message_id) else { return false };
    m.attempts += 1;
    m.delivered |= delivered;
    let delivery = Delivery {
        message_id: message_id.to_owned(),
        kind: m.kind,
        attempt: m.attempts,
        endpoint,
        status,
        error,
        fault,
        delivered,
        at_ms: now,
    };
    tracing::info!(%message_id, attempt = delivery.attempt, status = ?status, ?fault, delivered, "IPN delivery");
    state.ipn.deliveries.push(delivery);
    delivered
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/__sns/", get(sns_action))
        .route(CERT_PATH, get(cert))
        .route("/__sandbox/bkash/ipn", get(inspect))
        .route("/__sandbox/bkash/ipn/subscribe", post(subscribe_endpoint))
        .route("/__sandbox/bkash/ipn/faults", post(add_fault).delete(clear_faults))
        .route("/__sandbox/bkash/ipn/payments", post(simulate_payment))
        .route("/__sandbox/bkash/ipn/messages/{id}/resend", post(resend))
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

async fn cert() -> Response {
    ([(header::CONTENT_TYPE, "application/x-pem-file")], SNS_TEST_CERT_PEM).into_response()
}

#[derive(Debug, Deserialize)]
struct SnsQuery {
    #[serde(rename = "Action")]
    action: String,
    #[serde(rename = "TopicArn")]
    topic_arn: Option<String>,
    #[serde(rename = "Token")]
    token: Option<String>,
    #[serde(rename = "SubscriptionArn")]
    subscription_arn: Option<String>,
}

/// SNS's `ConfirmSubscription` (the SubscribeURL) and `Unsubscribe` (the UnsubscribeURL), answered in SNS's XML.
async fn sns_action(AxState(app): AxState<AppState>, Query(q): Query<SnsQuery>) -> Response {
    let released = {
        let mut state = app.lock();
        let Some(sub) = state.ipn.subscription.as_mut() else {
            return error(StatusCode::NOT_FOUND, "no subscription");
        };
        match q.action.as_str() {
            "ConfirmSubscription" => {
                if q.topic_arn.as_deref() != Some(TOPIC_ARN) || q.token.as_deref() != Some(sub.token.as_str()) {
                    return error(StatusCode::BAD_REQUEST, "Invalid token");
                }
                sub.confirmed = true;
                let arn = sub.arn.clone();
                let mut released = Vec::new();
                for m in state.ipn.messages.iter_mut().filter(|m| m.held) {
                    m.held = false;
                    released.push(m.id.clone());
                }
                tracing::info!(released = released.len(), "IPN subscription confirmed");
                (arn, released)
            }
            "Unsubscribe" => {
                if q.subscription_arn.as_deref() != Some(sub.arn.as_str()) {
                    return error(StatusCode::BAD_REQUEST, "Invalid subscription");
                }
                state.ipn.subscription = None;
                return ([(header::CONTENT_TYPE, "text/xml")], "<UnsubscribeResponse/>").into_response();
            }
            _ => return error(StatusCode::BAD_REQUEST, "unknown Action"),
        }
    };
    let (arn, released) = released;
    for id in released {
        tokio::spawn(deliver(app.clone(), id));
    }
    let xml = format!(
        "<ConfirmSubscriptionResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><ConfirmSubscriptionResult>\
         <SubscriptionArn>{arn}</SubscriptionArn></ConfirmSubscriptionResult></ConfirmSubscriptionResponse>"
    );
    ([(header::CONTENT_TYPE, "text/xml")], xml).into_response()
}

async fn inspect(AxState(app): AxState<AppState>) -> Response {
    let state = app.lock();
    let ipn = &state.ipn;
    Json(json!({
        "topic_arn": TOPIC_ARN,
        "subscription": ipn.subscription.as_ref().map(|s| json!({
            "endpoint": s.endpoint, "subscription_arn": s.arn, "confirmed": s.confirmed,
            "signature_version": s.signature_version, "retry_delays_ms": s.retry_delays_ms,
        })),
        "messages": ipn.messages.iter().map(|m| json!({
            "message_id": m.id, "type": m.kind, "trxID": m.trx_id, "message": m.message,
            "delivered": m.delivered, "attempts": m.attempts, "held": m.held,
        })).collect::<Vec<_>>(),
        "deliveries": ipn.deliveries,
    }))
    .into_response()
}

#[derive(Debug, Deserialize)]
struct SubscribeRequest {
    endpoint: String,
    #[serde(default)]
    signature_version: Option<u8>,
    #[serde(default)]
    retry_delays_ms: Option<Vec<u64>>,
}

async fn subscribe_endpoint(AxState(app): AxState<AppState>, bytes: Bytes) -> Response {
    let request: SubscribeRequest = match serde_json::from_slice(&bytes) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let version = request.signature_version.unwrap_or(1);
    if version != 1 && version != 2 {
        return error(StatusCode::BAD_REQUEST, "signature_version must be 1 or 2");
    }
    if url::Url::parse(&request.endpoint).map(|u| u.scheme().starts_with("http")).unwrap_or(false) {
        let delays = request.retry_delays_ms.unwrap_or_else(|| AWS_DEFAULT_RETRIES_MS.to_vec());
        Json(subscribe(&app, request.endpoint, version, delays)).into_response()
    } else {
        error(StatusCode::BAD_REQUEST, "endpoint must be an http(s) URL")
    }
}

async fn add_fault(AxState(app): AxState<AppState>, bytes: Bytes) -> Response {
    let fault: IpnFault = match serde_json::from_slice(&bytes) {
        Ok(f) => f,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let (kind, times) = (fault.kind, fault.times);
    if times > 0 {
        app.lock().ipn.faults.push_back(fault);
    }
    Json(json!({ "kind": kind, "times": times })).into_response()
}

async fn clear_faults(AxState(app): AxState<AppState>) -> Response {
    app.lock().ipn.faults.clear();
    Json(json!({ "cleared": true })).into_response()
}

#[derive(Debug, Deserialize)]
struct SimulatedPayment {
    amount: String,
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    wallet: Option<String>,
    #[serde(default)]
    invoice: Option<String>,
    #[serde(default)]
    reference: Option<String>,
}

/// A payment to the merchant that no checkout created (QR, USSD, app, bank): money moves and bKash announces it.
async fn simulate_payment(AxState(app): AxState<AppState>, bytes: Bytes) -> Response {
    let request: SimulatedPayment = match serde_json::from_slice(&bytes) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let Some(minor) = parse_amount(&request.amount).filter(|m| *m > 0) else {
        return error(StatusCode::BAD_REQUEST, "invalid amount");
    };
    let transaction_type = match request.channel.as_deref().unwrap_or("qr") {
        "qr" => "10003126",
        "ussd" => "10002175",
        "app" => "10002294",
        "bank" => "10003476",
        _ => return error(StatusCode::BAD_REQUEST, "channel must be qr, ussd, app or bank"),
    };
    let wallet = request.wallet.unwrap_or_else(|| SUCCESS_WALLETS[1].to_owned());
    let (payload, trx_id) = {
        let mut state = app.lock();
        let now = state.now_ms();
        let trx_id = state.new_trx_id();
        let p = payload(
            now,
            &wallet,
            &trx_id,
            transaction_type,
            &format_minor(minor),
            request.invoice.as_deref(),
            request.reference.as_deref(),
        );
        (p, trx_id)
    };
    let message_id = publish(&app, payload, trx_id.clone());
    (StatusCode::CREATED, Json(json!({ "message_id": message_id, "trxID": trx_id }))).into_response()
}

/// Sends a message once more, now, without faults (what SNS's own redelivery of the same MessageId looks like).
async fn resend(AxState(app): AxState<AppState>, Path(id): Path<String>) -> Response {
    match send_once(&app, &id, None).await {
        Some(delivered) => Json(json!({ "message_id": id, "delivered": delivered })).into_response(),
        None => error(StatusCode::NOT_FOUND, "no such deliverable message"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_strings_follow_the_sns_field_lists() {
        let env: serde_json::Map<String, Value> = serde_json::from_value(json!({
            "Type": "Notification", "MessageId": "m", "TopicArn": "t", "Message": "{\"a\":1}",
            "Timestamp": "2018-04-19T12:22:46.236Z", "SignatureVersion": "1", "UnsubscribeURL": "u",
        }))
        .unwrap();
        assert_eq!(
            canonical_string(&env),
            "Message\n{\"a\":1}\nMessageId\nm\nTimestamp\n2018-04-19T12:22:46.236Z\nTopicArn\nt\nType\nNotification\n"
        );
        let conf: serde_json::Map<String, Value> = serde_json::from_value(json!({
            "Type": "SubscriptionConfirmation", "MessageId": "m", "TopicArn": "t", "Message": "hi",
            "Timestamp": "x", "Token": "k", "SubscribeURL": "s",
        }))
        .unwrap();
        assert_eq!(
            canonical_string(&conf),
            "Message\nhi\nMessageId\nm\nSubscribeURL\ns\nTimestamp\nx\nToken\nk\nTopicArn\nt\nType\nSubscriptionConfirmation\n"
        );
    }

    #[test]
    fn times_are_sns_iso_and_bkash_dhaka() {
        assert_eq!(iso_time(1_524_140_566_236), "2018-04-19T12:22:46.236Z");
        assert_eq!(bkash_date_time(1_524_140_566_236), "20180419182246");
        assert_eq!(uuid().len(), 36);
    }
}
