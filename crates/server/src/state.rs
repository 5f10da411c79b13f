//! Shared application state handed to every handler and background task.

use crate::bkash::BkashClient;
use crate::clock::Clock;
use crate::configuration::Settings;
use crate::metrics::Metrics;
use crate::store::Store;
use crate::token::TokenManager;
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
    /// bKash client.
    pub bkash: Arc<BkashClient>,
    /// The shared bKash id_token.
    pub tokens: TokenManager,
}

impl AppState {
    /// Wraps the parts.
    pub fn new(inner: Inner) -> Self {
        AppState { inner: Arc::new(inner) }
    }
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.inner
    }
}
