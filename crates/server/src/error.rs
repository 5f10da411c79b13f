//! `AppError`: every failure of an HTTP handler becomes a status plus `{"error":{"code","message"}}`.
//! Internal causes are logged here and never sent to the client.

use axum::Json;
use axum::extract::FromRequest;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use deshpay_api::{ErrorBody, ErrorCode};

/// An error with its HTTP status and public code; `source` is logged, not shown.
#[derive(Debug)]
pub struct AppError {
    /// HTTP status.
    pub status: StatusCode,
    /// Public error code.
    pub code: ErrorCode,
    /// Public message (no secrets, no internals).
    pub message: String,
    source: Option<anyhow::Error>,
    nothing_done: bool,
}

/// Response extension of an error raised before any side effect: an Idempotency-Key is released for it instead
/// of storing the answer (Stripe's rule), so a corrected retry can run.
#[derive(Debug, Clone, Copy)]
pub struct NothingDone;

impl AppError {
    /// A client error with a public message.
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        AppError { status, code, message: message.into(), source: None, nothing_done: false }
    }

    /// Marks an error raised before anything was written or sent.
    #[must_use]
    pub fn nothing_done(mut self) -> Self {
        self.nothing_done = true;
        self
    }

    /// 400 with a code.
    pub fn bad_request(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404 with a code.
    pub fn not_found(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    /// 409 with a code.
    pub fn conflict(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// 500: the cause is logged; the client learns only that it was our fault.
    pub fn internal(source: impl Into<anyhow::Error>) -> Self {
        AppError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: ErrorCode::Internal,
            message: "internal error; nothing was lost, please retry".into(),
            source: Some(source.into()),
            nothing_done: false,
        }
    }
}

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        AppError::internal(e)
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if let Some(source) = &self.source {
            tracing::error!(code = %self.code, error = %format!("{source:#}"), "request failed");
        } else if self.status.is_server_error() {
            tracing::warn!(code = %self.code, message = %self.message, "request failed");
        }
        let mut response = (self.status, Json(ErrorBody::new(self.code, self.message))).into_response();
        if self.nothing_done {
            response.extensions_mut().insert(NothingDone);
        }
        response
    }
}

/// A JSON extractor whose rejections have the API's error shape (`invalid_json`).
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(AppError))]
pub struct ApiJson<T>(pub T);

impl From<JsonRejection> for AppError {
    fn from(rejection: JsonRejection) -> Self {
        // A streamed body past the route's limit fails while being read: the same code as a declared one.
        let code = if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ErrorCode::PayloadTooLarge
        } else {
            ErrorCode::InvalidJson
        };
        AppError::new(rejection.status(), code, rejection.body_text())
    }
}

impl<T: serde::Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        Json(self.0).into_response()
    }
}

/// `From<AppError>` and `From<sqlx::Error>` for use-case error enums whose `Internal(AppError)` carries a failure of
/// our own (the store), so that `?` works inside the use case.
macro_rules! internal_from {
    ($($t:ty),*) => {$(
        impl From<$crate::error::AppError> for $t {
            fn from(e: $crate::error::AppError) -> Self {
                Self::Internal(e)
            }
        }
        impl From<sqlx::Error> for $t {
            fn from(e: sqlx::Error) -> Self {
                Self::Internal(e.into())
            }
        }
    )*};
}
pub(crate) use internal_from;
