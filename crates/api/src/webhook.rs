//! The webhooks the backend sends to the merchant's server: `POST {webhook.url}` with a [`WebhookEvent`] and the
//! headers `DeshPay-Event-Id` and `DeshPay-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">`.

use crate::{AttemptId, Currency, Method, RefundId, SessionId};
use serde::{Deserialize, Serialize};

/// One webhook: `{"id":"evt_...","type":"session.paid","created_at":"...","data":{...}}`. `type` says which
/// `data` follows. The id is the same on every retry of the event; deduplicate on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookEvent {
    /// Event id (`evt_...`), also sent as the `DeshPay-Event-Id` header.
    pub id: String,
    /// When the change happened.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::Timestamp))]
    pub created_at: String,
    /// The event's `type` and its `data`.
    #[serde(flatten)]
    pub event: WebhookData,
}

/// The `type` of a webhook and its `data`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", content = "data")]
pub enum WebhookData {
    /// The session was paid (once per session).
    #[serde(rename = "session.paid")]
    SessionPaid(SessionPaid),
    /// Money moved, or may have, where it should not have: a person must look at the attempt.
    #[serde(rename = "payment.needs_review")]
    PaymentNeedsReview(PaymentNeedsReview),
    /// A refund returned the money.
    #[serde(rename = "refund.succeeded")]
    RefundSucceeded(RefundSettled),
    /// The provider refused a refund.
    #[serde(rename = "refund.failed")]
    RefundFailed(RefundSettled),
    /// The session expired unpaid and can no longer be paid.
    #[serde(rename = "session.expired")]
    SessionExpired(SessionExpired),
    /// bKash announced (IPN) a payment to the merchant that no session of ours made (a QR, USSD or app payment):
    /// recorded, never attached to a session; listed by `GET /v1/bkash/unmatched`.
    #[serde(rename = "payment.unmatched")]
    PaymentUnmatched(UnmatchedPayment),
}

impl WebhookData {
    /// Every event type, as `type` and the webhook's name spell it.
    pub const TYPES: [&'static str; 6] = [
        "session.paid",
        "payment.needs_review",
        "refund.succeeded",
        "refund.failed",
        "session.expired",
        "payment.unmatched",
    ];

    /// The `type` on the wire.
    pub fn event_type(&self) -> &'static str {
        match self {
            WebhookData::SessionPaid(_) => "session.paid",
            WebhookData::PaymentNeedsReview(_) => "payment.needs_review",
            WebhookData::RefundSucceeded(_) => "refund.succeeded",
            WebhookData::RefundFailed(_) => "refund.failed",
            WebhookData::SessionExpired(_) => "session.expired",
            WebhookData::PaymentUnmatched(_) => "payment.unmatched",
        }
    }
}

/// The attempt and the money of `session.paid` and `payment.needs_review`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PaymentEvent {
    /// The session of the attempt.
    pub session_id: SessionId,
    /// The attempt.
    pub attempt_id: AttemptId,
    /// Its method.
    pub method: Method,
    /// Decimal amount.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::Amount))]
    pub amount: String,
    /// Amount in minor units.
    pub amount_minor: i64,
    /// Currency.
    pub currency: Currency,
    /// The provider's transaction id (bKash trxID), when money moved.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub trx_id: Option<String>,
    /// The provider's id of the attempt (bKash paymentID, Bestin Pay trx_id).
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub provider_ref: Option<String>,
}

/// `data` of `session.paid`: the attempt that paid the session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionPaid {
    /// The attempt that paid and its money.
    #[serde(flatten)]
    pub payment: PaymentEvent,
    /// True when the success arrived after the attempt had been closed (a late success that still paid).
    pub late: bool,
}

/// `data` of `payment.needs_review`: the attempt in `review`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PaymentNeedsReview {
    /// The attempt and its money.
    #[serde(flatten)]
    pub payment: PaymentEvent,
    /// Why it needs a person, in words.
    pub reason: String,
}

/// `data` of `refund.succeeded` and `refund.failed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RefundSettled {
    /// The refund.
    pub refund_id: RefundId,
    /// The refunded session.
    pub session_id: SessionId,
    /// Decimal amount.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::Amount))]
    pub amount: String,
    /// Amount in minor units.
    pub amount_minor: i64,
    /// Currency.
    pub currency: Currency,
    /// The provider's refund transaction id, once it succeeded.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub refund_trx_id: Option<String>,
    /// The provider's reason, when it failed.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub message: Option<String>,
}

/// `data` of `session.expired`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionExpired {
    /// The expired session.
    pub session_id: SessionId,
    /// Its invoice (free again, unless an attempt could still take money).
    pub invoice: String,
    /// Decimal amount.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::Amount))]
    pub amount: String,
    /// Currency.
    pub currency: Currency,
}

/// A payment bKash announced by its IPN that matches no payment we created (`payment.unmatched`, and an entry of
/// `GET /v1/bkash/unmatched`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnmatchedPayment {
    /// bKash's trxID.
    pub trx_id: String,
    /// Decimal amount.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::Amount))]
    pub amount: String,
    /// Amount in minor units (poisha).
    pub amount_minor: i64,
    /// Currency (BDT).
    pub currency: Currency,
    /// The payer's wallet as bKash sent it (`debitMSISDN`, e.g. `8801770618575`).
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub payer: Option<String>,
    /// bKash's `transactionType`: 10003126 QR, 10002175 USSD, 10002294 checkout/app, 10003476 bank, ...
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub transaction_type: Option<String>,
    /// bKash's `merchantInvoiceNumber`, when it sent one (it matched no payment of ours).
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub invoice: Option<String>,
    /// bKash's `transactionReference` (what the customer typed), when it sent one.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub reference: Option<String>,
    /// bKash's `dateTime` as sent (`yyyyMMddHHmmss`, Dhaka time).
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub paid_at: Option<String>,
    /// When the backend recorded it.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::Timestamp))]
    pub created_at: String,
}

/// `GET /v1/bkash/unmatched`: the unmatched bKash payments, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnmatchedPayments {
    /// The payments.
    pub data: Vec<UnmatchedPayment>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webhook_is_id_type_created_at_and_data() {
        let event = WebhookEvent {
            id: "evt_1".into(),
            created_at: "2025-01-31T12:00:00.000Z".into(),
            event: WebhookData::SessionExpired(SessionExpired {
                session_id: SessionId::parse("cs_ABCDEFGHIJKLMNOPQRSTUVWX").unwrap(),
                invoice: "ORD-1".into(),
                amount: "250.00".into(),
                currency: Currency::Bdt,
            }),
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"id": "evt_1", "type": "session.expired", "created_at": "2025-01-31T12:00:00.000Z",
                "data": {"session_id": "cs_ABCDEFGHIJKLMNOPQRSTUVWX", "invoice": "ORD-1", "amount": "250.00",
                         "currency": "BDT"}})
        );
        assert_eq!(serde_json::from_value::<WebhookEvent>(json).unwrap(), event);
    }

    #[test]
    fn event_types_match_the_wire() {
        let payment = PaymentEvent {
            session_id: SessionId::parse("cs_ABCDEFGHIJKLMNOPQRSTUVWX").unwrap(),
            attempt_id: AttemptId::parse("att_ABCDEFGHIJKLMNOPQRSTUVWX").unwrap(),
            method: Method::Bkash,
            amount: "1.00".into(),
            amount_minor: 100,
            currency: Currency::Bdt,
            trx_id: None,
            provider_ref: None,
        };
        let paid = SessionPaid { payment: payment.clone(), late: false };
        let review = PaymentNeedsReview { payment: payment.clone(), reason: "r".into() };
        // The payment's fields sit beside `late` and `reason`, not under a key of their own.
        assert_eq!(serde_json::to_value(&paid).unwrap()["session_id"], "cs_ABCDEFGHIJKLMNOPQRSTUVWX");
        assert_eq!(serde_json::to_value(&review).unwrap()["reason"], "r");
        let refund = RefundSettled {
            refund_id: RefundId::parse("rf_ABCDEFGHIJKLMNOPQRSTUVWX").unwrap(),
            session_id: payment.session_id.clone(),
            amount: "1.00".into(),
            amount_minor: 100,
            currency: Currency::Bdt,
            refund_trx_id: None,
            message: None,
        };
        let expired = SessionExpired {
            session_id: payment.session_id.clone(),
            invoice: "i".into(),
            amount: "1.00".into(),
            currency: Currency::Bdt,
        };
        let all = [
            WebhookData::SessionPaid(paid),
            WebhookData::PaymentNeedsReview(review),
            WebhookData::RefundSucceeded(refund.clone()),
            WebhookData::RefundFailed(refund),
            WebhookData::SessionExpired(expired),
        ];
        for (data, name) in all.iter().zip(WebhookData::TYPES) {
            assert_eq!(data.event_type(), name);
            assert_eq!(serde_json::to_value(data).unwrap()["type"], name);
        }
    }
}
