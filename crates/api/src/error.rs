//! The one error shape of every DeshPay API: HTTP status plus `{"error":{"code":"...","message":"..."}}`.
//! `code` is stable and machine-readable; `message` is for people and never carries secrets or internals.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Stable error codes. Unknown codes from a newer server deserialize as [`ErrorCode::Other`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The body is not valid JSON or has the wrong shape.
    InvalidJson,
    /// A field has a value the API does not accept (details in the message).
    InvalidRequest,
    /// The amount is malformed, not positive or too precise.
    InvalidAmount,
    /// The currency is not supported, or does not fit the method.
    InvalidCurrency,
    /// The session does not offer this payment method.
    MethodNotAvailable,
    /// Another session for this invoice is open or paid.
    InvoiceInUse,
    /// Missing or wrong API key.
    Unauthorized,
    /// No session with this id.
    SessionNotFound,
    /// The session is already paid: it cannot be paid again.
    SessionAlreadyPaid,
    /// The session expired before it was paid.
    SessionExpired,
    /// The session was canceled.
    SessionCanceled,
    /// A payment for this session is being confirmed right now; wait for its outcome.
    PaymentInProgress,
    /// The session has no completed payment (e.g. a refund of an unpaid session).
    PaymentNotFound,
    /// The refund would exceed what is left of the payment.
    RefundExceedsPayment,
    /// The provider refused the refund (reason in the message).
    RefundFailed,
    /// The provider does not know this transaction.
    TransactionNotFound,
    /// The same idempotency key (or payout reference) was used with a different request.
    IdempotencyConflict,
    /// The merchant's available balance is below the payout amount.
    InsufficientBalance,
    /// No payout with this id.
    PayoutNotFound,
    /// There is no pending payment to cancel.
    NothingToCancel,
    /// A notification whose signature, shape or content could not be trusted.
    InvalidNotification,
    /// The provider did not answer in time or answered garbage; nothing was charged by this call.
    ProviderUnavailable,
    /// The provider answered with an error (its message is passed on).
    ProviderError,
    /// No such route.
    NotFound,
    /// Too many requests from this client or for this session; `Retry-After` says when to try again.
    RateLimited,
    /// The request body is larger than the route accepts.
    PayloadTooLarge,
    /// The request took longer than the server allows and was stopped.
    Timeout,
    /// The server is at its concurrency limit; retry in a moment.
    Overloaded,
    /// Something went wrong on our side; the request was not lost.
    Internal,
    /// Any code this version does not know yet.
    #[serde(other)]
    Other,
}

impl ErrorCode {
    /// The code as it appears on the wire.
    pub fn as_str(&self) -> &'static str {
        match self {
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidAmount => "invalid_amount",
            ErrorCode::InvalidCurrency => "invalid_currency",
            ErrorCode::MethodNotAvailable => "method_not_available",
            ErrorCode::InvoiceInUse => "invoice_in_use",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::SessionNotFound => "session_not_found",
            ErrorCode::SessionAlreadyPaid => "session_already_paid",
            ErrorCode::SessionExpired => "session_expired",
            ErrorCode::SessionCanceled => "session_canceled",
            ErrorCode::PaymentInProgress => "payment_in_progress",
            ErrorCode::PaymentNotFound => "payment_not_found",
            ErrorCode::RefundExceedsPayment => "refund_exceeds_payment",
            ErrorCode::RefundFailed => "refund_failed",
            ErrorCode::TransactionNotFound => "transaction_not_found",
            ErrorCode::IdempotencyConflict => "idempotency_conflict",
            ErrorCode::InsufficientBalance => "insufficient_balance",
            ErrorCode::PayoutNotFound => "payout_not_found",
            ErrorCode::NothingToCancel => "nothing_to_cancel",
            ErrorCode::InvalidNotification => "invalid_notification",
            ErrorCode::ProviderUnavailable => "provider_unavailable",
            ErrorCode::ProviderError => "provider_error",
            ErrorCode::NotFound => "not_found",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::Timeout => "timeout",
            ErrorCode::Overloaded => "overloaded",
            ErrorCode::Internal => "internal",
            ErrorCode::Other => "other",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The inner error object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[error("{code}: {message}")]
pub struct ApiError {
    /// Stable machine-readable code.
    pub code: ErrorCode,
    /// Human-readable explanation.
    pub message: String,
}

/// The JSON body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// The error.
    pub error: ApiError,
}

impl ErrorBody {
    /// Builds an error body.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorBody { error: ApiError { code, message: message.into() } }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_has_the_documented_shape() {
        let body = ErrorBody::new(ErrorCode::SessionNotFound, "no session cs_x");
        let json = serde_json::to_value(&body).unwrap();
        assert_eq!(json, serde_json::json!({"error": {"code": "session_not_found", "message": "no session cs_x"}}));
        let unknown: ErrorBody = serde_json::from_str(r#"{"error":{"code":"brand_new","message":"m"}}"#).unwrap();
        assert_eq!(unknown.error.code, ErrorCode::Other);
    }

    #[test]
    fn as_str_matches_serde() {
        for code in [
            ErrorCode::InvalidJson,
            ErrorCode::RefundExceedsPayment,
            ErrorCode::ProviderUnavailable,
            ErrorCode::RateLimited,
            ErrorCode::PayloadTooLarge,
            ErrorCode::Timeout,
            ErrorCode::Overloaded,
        ] {
            assert_eq!(serde_json::to_value(&code).unwrap(), serde_json::Value::String(code.as_str().into()));
        }
    }
}
