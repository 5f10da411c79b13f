//! Prometheus metrics served at `GET /metrics` (text exposition format).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of `deshpay_attempts_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AttemptLabels {
    /// "bkash" or "upi".
    pub method: String,
    /// "started", "succeeded", "failed", "cancelled", "create_failed", ...
    pub outcome: String,
}

/// Labels of `deshpay_provider_call_duration_seconds`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    /// "bkash" or "bestinpay".
    pub provider: String,
    /// "grant", "create", "execute", ...
    pub endpoint: String,
    /// "ok", "provider_error", "timeout", "transport", "gateway", "decode".
    pub outcome: String,
}

/// Labels of `deshpay_webhook_deliveries_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    /// "delivered" or "failed".
    pub result: String,
}

type HistogramFamily = Family<CallLabels, Histogram, fn() -> Histogram>;

/// The backend's metrics and their registry.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    attempts: Family<AttemptLabels, Counter>,
    provider_calls: HistogramFamily,
    token_grants: Counter,
    token_refreshes: Counter,
    refunds: Family<AttemptLabels, Counter>,
    webhook_deliveries: Family<ResultLabel, Counter>,
    renewals_suppressed: Counter,
    grant_blocks: Counter,
    ipn: Family<ResultLabel, Counter>,
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.002, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("deshpay");
        let attempts = Family::<AttemptLabels, Counter>::default();
        let provider_calls: HistogramFamily = Family::new_with_constructor(latency_histogram);
        let token_grants = Counter::default();
        let token_refreshes = Counter::default();
        let refunds = Family::<AttemptLabels, Counter>::default();
        registry.register("attempts", "Payment attempts by method and outcome", attempts.clone());
        registry.register(
            "provider_call_duration_seconds",
            "Latency of calls to payment providers by endpoint and outcome",
            provider_calls.clone(),
        );
        registry.register("bkash_token_grants", "bKash grant-token calls that issued a token", token_grants.clone());
        registry.register(
            "bkash_token_refreshes",
            "bKash refresh-token calls that issued a token",
            token_refreshes.clone(),
        );
        registry.register("refunds", "Refunds by method and outcome", refunds.clone());
        let webhook_deliveries = Family::<ResultLabel, Counter>::default();
        registry.register(
            "webhook_deliveries",
            "Webhook delivery attempts to the merchant by result",
            webhook_deliveries.clone(),
        );
        let renewals_suppressed = Counter::default();
        registry.register(
            "bkash_token_renewals_suppressed",
            "Gateway refusals of a freshly renewed bKash token that were not answered with another renewal",
            renewals_suppressed.clone(),
        );
        let grant_blocks = Counter::default();
        registry.register(
            "bkash_grant_blocked",
            "bKash grant calls refused with HTTP 429: grants stop until bKash's block ends (alert on this)",
            grant_blocks.clone(),
        );
        let ipn = Family::<ResultLabel, Counter>::default();
        registry.register(
            "bkash_ipn",
            "bKash IPN deliveries taken, by result (subscribed, duplicate, known, matched, unmatched, ignored, refused)",
            ipn.clone(),
        );
        Metrics {
            ipn,
            registry,
            attempts,
            provider_calls,
            token_grants,
            token_refreshes,
            refunds,
            webhook_deliveries,
            renewals_suppressed,
            grant_blocks,
        }
    }
}

impl Metrics {
    /// Counts an attempt event.
    pub fn attempt(&self, method: &str, outcome: &str) {
        self.attempts.get_or_create(&AttemptLabels { method: method.into(), outcome: outcome.into() }).inc();
    }

    /// Counts a refund outcome.
    pub fn refund(&self, method: &str, outcome: &str) {
        self.refunds.get_or_create(&AttemptLabels { method: method.into(), outcome: outcome.into() }).inc();
    }

    /// Records one provider call.
    pub fn provider_call(&self, provider: &str, endpoint: &str, outcome: &str, seconds: f64) {
        self.provider_calls
            .get_or_create(&CallLabels {
                provider: provider.into(),
                endpoint: endpoint.into(),
                outcome: outcome.into(),
            })
            .observe(seconds);
    }

    /// Counts a bKash IPN delivery by its result.
    pub fn ipn(&self, result: &str) {
        self.ipn.get_or_create(&ResultLabel { result: result.into() }).inc();
    }

    /// Counts a webhook delivery attempt: `delivered` or not.
    pub fn webhook_delivery(&self, delivered: bool) {
        let result = if delivered { "delivered" } else { "failed" };
        self.webhook_deliveries.get_or_create(&ResultLabel { result: result.into() }).inc();
    }

    /// Counts a token grant.
    pub fn token_granted(&self) {
        self.token_grants.inc();
    }

    /// Counts a token refresh.
    pub fn token_refreshed(&self) {
        self.token_refreshes.inc();
    }

    /// Counts a token refusal that did not lead to a renewal (rationing).
    pub fn token_renewal_suppressed(&self) {
        self.renewals_suppressed.inc();
    }

    /// Counts a grant refused with HTTP 429.
    pub fn grant_blocked(&self) {
        self.grant_blocks.inc();
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
