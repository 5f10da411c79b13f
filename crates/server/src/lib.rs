//! DeshPay merchant backend: the thin server that holds every secret, talks to bKash (and later Bestin Pay),
//! verifies callbacks, and keeps every payment durable.
//!
//! Run it with `deshpay-server --config deshpay.toml` (or only `DESHPAY_*` environment variables); see the
//! README for the settings and the API. Its tests (`cargo test -p deshpay-server`) start the sandbox in-process
//! and drive the backend over HTTP.

pub mod attempts;
pub mod auth;
pub mod clock;
pub mod configuration;
pub mod edge;
pub mod error;
pub mod fuzz_checks;
pub mod ids;
pub mod ipn;
pub mod metrics;
pub mod openapi;
pub mod page;
pub mod payments;
pub mod payouts;
pub mod preflight;
pub mod providers;
pub mod qr;
pub mod reasons;
pub mod reconciler;
pub mod refunds;
pub mod routes;
pub mod sessions;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod webhooks;

pub use startup::Application;
