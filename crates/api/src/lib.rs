//! Wire types shared by the DeshPay widget (wasm32) and the merchant backend (native).
//!
//! Everything here is plain data: money as integer minor units with its currency, one newtype per id kind,
//! the statuses of sessions and attempts, the JSON bodies of the merchant and widget APIs, and the error
//! shape `{"error":{"code":..,"message":..}}`. No I/O, so the crate builds for both targets.
//!
//! Run its tests with `cargo test -p deshpay-api`.

mod error;
mod ids;
mod money;
mod session;

pub use error::{ApiError, ErrorBody, ErrorCode};
pub use ids::{AttemptId, ID_RANDOM_LEN, IdError, RefundId, SessionId};
pub use money::{Currency, Money, MoneyError};
pub use session::*;
