//! Signed webhooks to the merchant's server: `session.paid`, `payment.needs_review`, `refund.succeeded`,
//! `refund.failed`, `session.expired`, `payment.unmatched`.
//!
//! Each event is written to the `webhook_deliveries` outbox in the same transaction as the change it reports,
//! so a crash cannot lose it, then delivered by [`deliver_due`] (woken at once, and every second) with retries:
//! any instance may deliver, one at a time per event (a lease), until the merchant answers 2xx. The event id is
//! the same on every retry; merchants deduplicate on it.
//!
//! Request: `POST {webhook.url}` with the JSON event ([`WebhookEvent`], described in `/openapi.json`)
//! `{"id":"evt_...","type":"session.paid","created_at":"<RFC 3339>","data":{...}}` and the headers
//! `DeshPay-Event-Id: evt_...` and `DeshPay-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>`, the HMAC of
//! `"<t>.<body>"` under `webhook.secret`. Merchants recompute it, compare in constant time, and reject a `t`
//! too far from their clock (replays).

use crate::clock::rfc3339;
use crate::state::AppState;
use crate::store::{AttemptRow, RefundRow, SessionRow, WebhookRow};
use deshpay_api::{
    PaymentEvent, PaymentNeedsReview, RefundSettled, SessionExpired, SessionPaid, UnmatchedPayment, WebhookData,
    WebhookEvent,
};
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use sha2::Sha256;
use std::fmt::Write as _;
use std::time::Duration;

/// How long one instance holds an event while delivering it (longer than any delivery timeout).
const LEASE_MS: i64 = 60_000;

/// Longest wait between two retries.
const MAX_RETRY_MS: i64 = 6 * 3600 * 1000;

/// Events delivered per pass at most.
const BATCH: i64 = 20;

/// The outbox row of a new event with `data` (its `type` included), or `None` when no webhook is configured.
pub fn event(state: &AppState, data: WebhookData) -> Option<WebhookRow> {
    state.settings.webhook.as_ref()?;
    let now = state.clock.now_ms();
    let id = crate::ids::webhook_id();
    let event_type = data.event_type().to_owned();
    let event = WebhookEvent { id: id.clone(), created_at: rfc3339(now), event: data };
    let payload = serde_json::to_string(&event).expect("a webhook event serializes");
    Some(WebhookRow { id, event_type, payload, created_at: now, attempts: 0 })
}

/// The attempt and money fields of `session.paid` and `payment.needs_review`.
fn payment_event(attempt: &AttemptRow, trx_id: Option<&str>) -> PaymentEvent {
    PaymentEvent {
        session_id: attempt.session_id.clone(),
        attempt_id: attempt.id.clone(),
        method: attempt.method,
        amount: attempt.amount.to_decimal(),
        amount_minor: attempt.amount.minor(),
        currency: attempt.amount.currency(),
        trx_id: trx_id.map(str::to_owned),
        provider_ref: attempt.provider_ref.clone(),
    }
}

/// `session.paid` for `attempt`, which completed with the provider's `trx_id` (`late`: after it had been
/// closed).
pub fn session_paid(state: &AppState, attempt: &AttemptRow, trx_id: Option<&str>, late: bool) -> Option<WebhookRow> {
    event(state, WebhookData::SessionPaid(SessionPaid { payment: payment_event(attempt, trx_id), late }))
}

/// `payment.needs_review`: money moved (or may have) on `attempt` and a person must look at it.
pub fn needs_review(state: &AppState, attempt: &AttemptRow, trx_id: Option<&str>, reason: &str) -> Option<WebhookRow> {
    let review = PaymentNeedsReview { payment: payment_event(attempt, trx_id), reason: reason.to_owned() };
    event(state, WebhookData::PaymentNeedsReview(review))
}

/// `session.expired`: the session can no longer be paid.
pub fn session_expired(state: &AppState, session: &SessionRow) -> Option<WebhookRow> {
    event(
        state,
        WebhookData::SessionExpired(SessionExpired {
            session_id: session.id.clone(),
            invoice: session.invoice.clone(),
            amount: session.amount.to_decimal(),
            currency: session.amount.currency(),
        }),
    )
}

/// `payment.unmatched`: bKash announced a payment that matches nothing we created.
pub fn payment_unmatched(state: &AppState, payment: UnmatchedPayment) -> Option<WebhookRow> {
    event(state, WebhookData::PaymentUnmatched(payment))
}

/// `refund.succeeded` or `refund.failed` for `refund`.
pub fn refund_settled(
    state: &AppState,
    refund: &RefundRow,
    succeeded: bool,
    refund_trx_id: Option<&str>,
    failure: Option<&str>,
) -> Option<WebhookRow> {
    let data = RefundSettled {
        refund_id: refund.id.clone(),
        session_id: refund.session_id.clone(),
        amount: refund.amount.to_decimal(),
        amount_minor: refund.amount.minor(),
        currency: refund.amount.currency(),
        refund_trx_id: refund_trx_id.map(str::to_owned),
        message: failure.map(str::to_owned),
    };
    event(state, if succeeded { WebhookData::RefundSucceeded(data) } else { WebhookData::RefundFailed(data) })
}

/// `DeshPay-Signature` of `body` sent at `timestamp` (Unix seconds) under `secret`.
pub fn signature(secret: &[u8], timestamp: i64, body: &str) -> String {
    // HMAC accepts keys of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    let mut hex = String::with_capacity(64);
    for byte in mac.finalize().into_bytes() {
        let _ = write!(hex, "{byte:02x}");
    }
    format!("t={timestamp},v1={hex}")
}

/// `DeshPay-Signature` under `webhook.secret` and, during a rotation, a second `v1=` under `webhook.secret_next`
/// (`t=...,v1=<old>,v1=<new>`): a receiver accepts the event when any `v1` matches its secret.
pub fn signature_header(settings: &crate::configuration::WebhookSettings, timestamp: i64, body: &str) -> String {
    let mut header = signature(settings.secret.expose_secret().as_bytes(), timestamp, body);
    if let Some(next) = &settings.secret_next {
        let second = signature(next.expose_secret().as_bytes(), timestamp, body);
        header.push_str(second.trim_start_matches(&format!("t={timestamp}")));
    }
    header
}

/// Delivers the events that are due; returns how many were delivered.
///
/// # Errors
/// Database errors (a failed delivery is recorded and retried, not an error).
pub async fn deliver_due(state: &AppState) -> Result<usize, sqlx::Error> {
    let Some(settings) = &state.settings.webhook else {
        return Ok(0);
    };
    let now = state.clock.now_ms();
    let mut delivered = 0;
    for event in state.store.due_webhooks(now, BATCH).await? {
        if !state.store.lease_webhook(&event.id, now, now + LEASE_MS).await? {
            continue; // another instance has it
        }
        let sent_at = state.clock.now_ms() / 1000;
        let result = state
            .webhook_http
            .post(&settings.url)
            .timeout(Duration::from_millis(settings.timeout_ms))
            .header("content-type", "application/json")
            .header("deshpay-event-id", &event.id)
            .header("deshpay-signature", signature_header(settings, sent_at, &event.payload))
            .body(event.payload.clone())
            .send()
            .await;
        // Only the status or the kind of failure is kept: never the URL's query or a response body.
        let error = match result {
            Ok(response) if response.status().is_success() => None,
            Ok(response) => Some(format!("HTTP {}", response.status().as_u16())),
            Err(e) if e.is_timeout() => Some("timeout".to_owned()),
            Err(e) if e.is_connect() => Some("connection failed".to_owned()),
            Err(_) => Some("request failed".to_owned()),
        };
        let now = state.clock.now_ms();
        match error {
            None => {
                state.store.webhook_attempted(&event.id, true, None, None, now).await?;
                state.metrics.webhook_delivery(true);
                delivered += 1;
            }
            Some(error) => {
                let tried = event.attempts + 1;
                let retry_at = (tried < i64::from(settings.max_attempts)).then(|| {
                    let base = i64::try_from(settings.retry_ms).unwrap_or(MAX_RETRY_MS);
                    now + base.saturating_mul(1 << (tried - 1).min(20)).min(MAX_RETRY_MS)
                });
                tracing::warn!(event = %event.id, kind = %event.event_type, attempt = tried, %error, gave_up = retry_at.is_none(), "webhook not delivered");
                state.store.webhook_attempted(&event.id, false, Some(&error), retry_at, now).await?;
                state.metrics.webhook_delivery(false);
            }
        }
    }
    Ok(delivered)
}

/// Delivers due events now and every second, and whenever [`AppState::wake_webhooks`] is called, until the
/// process ends.
pub async fn run(state: AppState) {
    if state.settings.webhook.is_none() {
        return;
    }
    loop {
        if let Err(e) = deliver_due(&state).await {
            tracing::error!(error = %e, "webhook pass failed");
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), state.webhook_wake.notified()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_an_hmac_of_timestamp_dot_body() {
        // RFC 4231 test case 2 ("Jefe"), with the message split as "<t>.<body>".
        let sig = signature(b"Jefe", 0, "what do ya want for nothing?");
        assert!(sig.starts_with("t=0,v1="), "{sig}");
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"0.what do ya want for nothing?");
        let expected: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(sig, format!("t=0,v1={expected}"));
        assert_ne!(signature(b"other", 0, "what do ya want for nothing?"), sig);
        assert_ne!(signature(b"Jefe", 1, "what do ya want for nothing?"), sig);
    }
}
