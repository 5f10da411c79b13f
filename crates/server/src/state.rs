//! Shared application state handed to every handler and background task.

use crate::clock::Clock;
use crate::configuration::Settings;
use crate::metrics::Metrics;
use crate::providers::Providers;
use crate::store::Store;
use deshpay_api::SessionId;
use std::sync::Arc;

/// Everything a handler needs; cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

/// The parts of [`AppState`].
#[derive(Debug)]
pub struct Inner {
    /// Settings as loaded.
    pub settings: Settings,
    /// The URL browsers and providers use to reach us (no trailing slash).
    pub public_url: String,
    /// Durable store.
    pub store: Store,
    /// Clock (moved by tests).
    pub clock: Clock,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// The payment providers (bKash; Bestin Pay when UPI is configured), reached by the core only through
    /// [`crate::providers::Provider`].
    pub providers: Providers,
    /// Session ids whose state changed in this process (wakes server-sent event streams at once; streams also
    /// re-read the store periodically for changes made by other instances).
    pub changes: tokio::sync::broadcast::Sender<SessionId>,
    /// HTTP client of the webhooks to the merchant.
    pub webhook_http: reqwest::Client,
    /// Wakes the webhook deliverer when an event was recorded.
    pub webhook_wake: tokio::sync::Notify,
    /// Verifies bKash's IPN envelopes (Amazon SNS) and confirms the subscription.
    pub ipn_verifier: crate::providers::bkash::ipn::IpnVerifier,
}

impl AppState {
    /// Wraps the parts.
    pub fn new(inner: Inner) -> Self {
        AppState { inner: Arc::new(inner) }
    }
}

impl AppState {
    /// Delivers recorded webhook events now rather than at the next periodic pass.
    pub fn wake_webhooks(&self) {
        self.webhook_wake.notify_one();
    }

    /// Tells live streams that a session changed.
    pub fn changed(&self, id: &SessionId) {
        let _ = self.changes.send(id.clone());
    }
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.inner
    }
}
