//! Wire types shared by the DeshPay widget (wasm32) and the merchant backend (native).
//!
//! Everything here is plain data: money as integer minor units with its currency, one newtype per id kind,
//! the statuses of sessions and attempts, the JSON bodies of the merchant and widget APIs, and the error
//! shape `{"error":{"code":..,"message":..}}`. No I/O, so the crate builds for both targets.
//!
//! The webhooks to the merchant ([`WebhookEvent`]) are here too: Rust merchants can read them with these types.
//!
//! Feature `openapi` (the server's, never the widget's) derives their OpenAPI schemas with utoipa.
//!
//! Run its tests with `cargo test -p deshpay-api --all-features`.

mod error;
mod ids;
mod money;
#[cfg(feature = "openapi")]
pub mod openapi;
mod session;
mod webhook;

pub use error::{ApiError, ErrorBody, ErrorCode};
pub use ids::{AttemptId, ID_RANDOM_LEN, IdError, RefundId, SessionId};
pub use money::{Currency, Money, MoneyError};
pub use session::*;
pub use webhook::{
    PaymentEvent, PaymentNeedsReview, RefundSettled, SessionExpired, SessionPaid, UnmatchedPayment, UnmatchedPayments,
    WebhookData, WebhookEvent,
};
