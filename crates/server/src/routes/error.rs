//! The one place where the use cases' errors become HTTP: a status, a public code and message
//! (`{"error":{"code","message"}}` through [`AppError`]), and whether an Idempotency-Key is released (nothing was
//! done). The domain returns these enums and never picks a status.

use crate::attempts::{CallbackError, CancelError, StartError};
use crate::error::AppError;
use crate::payouts::PayoutError;
use crate::providers::ProviderFailure;
use crate::refunds::{RefundError, SearchError};
use crate::sessions::{CreateError, SessionError};
use axum::http::StatusCode;
use deshpay_api::ErrorCode;

impl From<ProviderFailure> for AppError {
    fn from(f: ProviderFailure) -> Self {
        match f {
            ProviderFailure::Unavailable(message) => {
                AppError::new(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::ProviderUnavailable, message)
            }
            ProviderFailure::Refused(message) => {
                AppError::new(StatusCode::BAD_GATEWAY, ErrorCode::ProviderError, message)
            }
        }
    }
}

impl From<SessionError> for AppError {
    fn from(e: SessionError) -> Self {
        let message = e.message();
        match e {
            SessionError::NotFound(_) => AppError::not_found(ErrorCode::SessionNotFound, message),
            SessionError::AlreadyPaid => AppError::conflict(ErrorCode::SessionAlreadyPaid, message),
            SessionError::Expired => AppError::conflict(ErrorCode::SessionExpired, message),
            SessionError::Canceled => AppError::conflict(ErrorCode::SessionCanceled, message),
            SessionError::MethodNotAvailable(_) => AppError::bad_request(ErrorCode::MethodNotAvailable, message),
            SessionError::Internal(e) => e,
        }
    }
}

impl From<CreateError> for AppError {
    fn from(e: CreateError) -> Self {
        // Raised before anything was written: the Idempotency-Key is released.
        match e {
            CreateError::InvalidCurrency(m) => AppError::bad_request(ErrorCode::InvalidCurrency, m).nothing_done(),
            CreateError::InvalidAmount(m) => AppError::bad_request(ErrorCode::InvalidAmount, m).nothing_done(),
            CreateError::Invalid(m) => AppError::bad_request(ErrorCode::InvalidRequest, m).nothing_done(),
            CreateError::MethodNotAvailable(m) => {
                AppError::bad_request(ErrorCode::MethodNotAvailable, m).nothing_done()
            }
            CreateError::InvoiceInUse(m) => AppError::conflict(ErrorCode::InvoiceInUse, m).nothing_done(),
            CreateError::Internal(e) => e,
        }
    }
}

/// A session id from a path segment; a malformed one cannot exist (`session_not_found`).
///
/// # Errors
/// `session_not_found`.
pub fn parse_session_id(raw: &str) -> Result<deshpay_api::SessionId, AppError> {
    deshpay_api::SessionId::parse(raw).map_err(|e| AppError::not_found(ErrorCode::SessionNotFound, e.to_string()))
}

fn not_configured() -> AppError {
    AppError::bad_request(ErrorCode::MethodNotAvailable, "UPI is not configured on this backend")
}

impl From<StartError> for AppError {
    fn from(e: StartError) -> Self {
        match e {
            StartError::Session(e) => e.into(),
            StartError::NotConfigured(_) => not_configured(),
            StartError::InProgress(message) => AppError::conflict(ErrorCode::PaymentInProgress, message),
            StartError::Provider(f) => f.into(),
            StartError::Internal(e) => e,
        }
    }
}

impl From<CallbackError> for AppError {
    fn from(e: CallbackError) -> Self {
        match e {
            CallbackError::UnknownPayment => AppError::not_found(ErrorCode::PaymentNotFound, "unknown bKash paymentID"),
            CallbackError::BadStatus => {
                AppError::bad_request(ErrorCode::InvalidRequest, "status must be success, failure or cancel")
            }
            CallbackError::Internal(e) => e,
        }
    }
}

impl From<CancelError> for AppError {
    fn from(e: CancelError) -> Self {
        match e {
            CancelError::NothingToCancel(message) => AppError::conflict(ErrorCode::NothingToCancel, message),
            CancelError::Session(e) => e.into(),
            CancelError::NotConfigured(_) => not_configured(),
            CancelError::Provider(f) => f.into(),
            CancelError::Internal(e) => e,
        }
    }
}

impl From<RefundError> for AppError {
    fn from(e: RefundError) -> Self {
        match e {
            RefundError::Session(e) => e.into(),
            // Raised before anything was written or sent: the Idempotency-Key is released.
            RefundError::NoPayment => {
                AppError::conflict(ErrorCode::PaymentNotFound, "this session has no completed payment to refund")
                    .nothing_done()
            }
            RefundError::NotRefundable => {
                AppError::bad_request(ErrorCode::MethodNotAvailable, "refunds are available for bKash payments")
                    .nothing_done()
            }
            RefundError::InvalidAmount(message) => {
                AppError::bad_request(ErrorCode::InvalidAmount, message).nothing_done()
            }
            RefundError::Invalid(message) => AppError::bad_request(ErrorCode::InvalidRequest, message).nothing_done(),
            RefundError::ExceedsPayment(message) => {
                AppError::conflict(ErrorCode::RefundExceedsPayment, message).nothing_done()
            }
            RefundError::Declined(message) => {
                AppError::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::RefundFailed, message)
            }
            RefundError::Internal(e) => e,
        }
    }
}

impl From<SearchError> for AppError {
    fn from(e: SearchError) -> Self {
        match e {
            SearchError::Invalid => {
                AppError::bad_request(ErrorCode::InvalidRequest, "trx_id must be letters and digits")
            }
            SearchError::NotFound(message) => AppError::not_found(ErrorCode::TransactionNotFound, message),
            SearchError::Provider(f) => f.into(),
        }
    }
}

impl From<PayoutError> for AppError {
    fn from(e: PayoutError) -> Self {
        match e {
            PayoutError::NotConfigured => not_configured(),
            PayoutError::InvalidCurrency => AppError::bad_request(ErrorCode::InvalidCurrency, "payouts are in INR"),
            PayoutError::InvalidAmount(message) => AppError::bad_request(ErrorCode::InvalidAmount, message),
            PayoutError::Invalid(message) => AppError::bad_request(ErrorCode::InvalidRequest, message),
            PayoutError::ReferenceReused => {
                AppError::conflict(ErrorCode::IdempotencyConflict, "this reference was used for another payout")
            }
            PayoutError::InsufficientBalance(message) => AppError::conflict(ErrorCode::InsufficientBalance, message),
            PayoutError::Refused { message, balance } => {
                let code = if balance { ErrorCode::InsufficientBalance } else { ErrorCode::ProviderError };
                AppError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
            }
            PayoutError::NotFound => AppError::not_found(ErrorCode::PayoutNotFound, "no such payout"),
            PayoutError::NothingToCancel(message) => AppError::conflict(ErrorCode::NothingToCancel, message),
            PayoutError::Provider(f) => f.into(),
            PayoutError::Internal(e) => e,
        }
    }
}

/// The status of a refund answer: 201 once completed, 202 while pending, 422 when it failed.
pub fn refund_status(status: deshpay_api::RefundStatus) -> StatusCode {
    match status {
        deshpay_api::RefundStatus::Completed => StatusCode::CREATED,
        deshpay_api::RefundStatus::Pending => StatusCode::ACCEPTED,
        deshpay_api::RefundStatus::Failed => StatusCode::UNPROCESSABLE_ENTITY,
    }
}
