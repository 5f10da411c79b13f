//! Bestin Pay client (UPI payins, payouts, cancel, query, balance). Facts from ../shared/spec/bestinpay.md and the provider's document (seed): every call is a
//! POST with `x-app-id`, `x-secret`, `x-timestamp`; the envelope is `{code, msg, data}` where success is
//! `"0000"` (a string) on orders but `200` (a number) on /balance; amounts come back with 4 decimals.

use super::transformers::{BalanceRow, Order};
use crate::clock::Clock;
use crate::configuration::{BestinSettings, Environment};
use crate::metrics::Metrics;
use crate::providers::http::{self, Transport};
use deshpay_api::Money;
use reqwest::header::{HeaderMap, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::sync::Arc;
use std::time::Instant;

/// What went wrong talking to Bestin Pay.
#[derive(Debug, thiserror::Error)]
pub enum BestinError {
    /// No answer in time.
    #[error("Bestin Pay did not answer in time")]
    Timeout,
    /// Connection problems after the request may have been sent.
    #[error("could not reach Bestin Pay: {0}")]
    Transport(String),
    /// No connection could be made: the request was never sent.
    #[error("could not connect to Bestin Pay: {0}")]
    Connect(String),
    /// Bestin Pay's error envelope.
    #[error("Bestin Pay error {code}: {message}")]
    Provider {
        /// Its code (e.g. "400").
        code: String,
        /// Its msg.
        message: String,
    },
    /// Not the JSON we expect.
    #[error("Bestin Pay answered HTTP {status} with an unreadable body ({reason})")]
    Decode {
        /// HTTP status.
        status: u16,
        /// What did not parse.
        reason: String,
    },
}

impl BestinError {
    /// No usable answer: the operation may or may not have happened.
    pub fn is_no_response(&self) -> bool {
        !matches!(self, BestinError::Provider { .. })
    }

    fn outcome(&self) -> &'static str {
        match self {
            BestinError::Timeout => "timeout",
            BestinError::Transport(_) => "transport",
            BestinError::Connect(_) => "connect",
            BestinError::Provider { .. } => "provider_error",
            BestinError::Decode { .. } => "decode",
        }
    }
}

impl From<Transport> for BestinError {
    fn from(t: Transport) -> Self {
        match t {
            Transport::Timeout => BestinError::Timeout,
            Transport::Connect(e) => BestinError::Connect(e),
            Transport::Other(e) => BestinError::Transport(e),
        }
    }
}

/// Calls that change nothing at Bestin Pay and may be sent again to the backup URL after a 5xx or no answer
/// (`query` also serves the query by req_id). Payin, payout and cancel go to the backup only when no connection
/// could be made to the primary: once sent, a lost answer is settled by a query, which fails over.
const REPEATABLE: [&str; 2] = ["query", "balance"];

/// The Bestin Pay client.
#[derive(Debug)]
pub struct BestinClient {
    http: reqwest::Client,
    /// The primary base URL, then the backup.
    base_urls: Vec<String>,
    app_id: String,
    secret: SecretString,
    clock: Clock,
    metrics: Arc<Metrics>,
}

impl BestinClient {
    /// Builds the client.
    ///
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(
        settings: &BestinSettings,
        environment: Environment,
        clock: Clock,
        metrics: Arc<Metrics>,
    ) -> Result<Self, reqwest::Error> {
        let http = http::client(settings.timeout_ms, environment)?;
        Ok(BestinClient {
            http,
            base_urls: std::iter::once(&settings.base_url)
                .chain(&settings.backup_base_url)
                .map(|u| u.trim_end_matches('/').to_owned())
                .collect(),
            app_id: settings.app_id.clone(),
            secret: settings.secret.clone(),
            clock,
            metrics,
        })
    }

    fn headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-app-id", HeaderValue::from_str(&self.app_id).unwrap_or(HeaderValue::from_static("")));
        let mut secret = HeaderValue::from_str(self.secret.expose_secret()).unwrap_or(HeaderValue::from_static(""));
        secret.set_sensitive(true);
        h.insert("x-secret", secret);
        h.insert("x-timestamp", HeaderValue::from(self.clock.now_ms()));
        h
    }

    async fn call<T: DeserializeOwned>(&self, endpoint: &'static str, body: &Value) -> Result<T, BestinError> {
        let repeatable = REPEATABLE.contains(&endpoint);
        let mut bases = self.base_urls.iter().enumerate().peekable();
        loop {
            let Some((i, base)) = bases.next() else { unreachable!("there is always a primary base URL") };
            let started = Instant::now();
            let (status, result) = match self.send(base, endpoint, body).await {
                Ok((status, text)) => (Some(status), interpret(status, &text)),
                Err(e) => (None, Err(e)),
            };
            let outcome = result.as_ref().map_or_else(BestinError::outcome, |_| "ok");
            self.metrics.provider_call("bestinpay", endpoint, outcome, started.elapsed().as_secs_f64());
            let Err(e) = &result else { return result };
            // Nothing was sent, or a call that is safe to repeat got a 5xx or no answer.
            let failover = match (e, status) {
                (BestinError::Connect(_), _) => true,
                (_, None) => repeatable,
                (_, Some(status)) => repeatable && status >= 500,
            };
            if failover && bases.peek().is_some() {
                tracing::warn!(endpoint, base = i, error = %e, "bestin call failed; trying the backup URL");
                continue;
            }
            tracing::warn!(endpoint, base = i, error = %e, "bestin call failed");
            return result;
        }
    }

    /// Sends one call to one base URL: the HTTP status and the body's text.
    async fn send(&self, base: &str, endpoint: &'static str, body: &Value) -> Result<(u16, String), BestinError> {
        let transport = |e: reqwest::Error| BestinError::from(Transport::from(e));
        let response = self
            .http
            .post(format!("{base}/{endpoint}"))
            .headers(self.headers())
            .json(body)
            .send()
            .await
            .map_err(transport)?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(transport)?;
        Ok((status, text))
    }

    /// Creates a UPI payin in API mode.
    ///
    /// # Errors
    /// Any [`BestinError`].
    #[tracing::instrument(skip_all)]
    pub async fn payin(
        &self,
        req_id: &str,
        amount: Money,
        notify_url: &str,
        return_url: &str,
    ) -> Result<Order, BestinError> {
        let body = serde_json::json!({
            "req_id": req_id, "ccy": "INR", "amount": amount.to_decimal(), "trx_method": "upi", "trx_mode": "api",
            "notify_url": notify_url, "return_url": return_url,
        });
        self.call("payin", &body).await
    }

    /// Creates a UPI payout.
    ///
    /// # Errors
    /// Any [`BestinError`].
    #[tracing::instrument(skip_all)]
    pub async fn payout(&self, req_id: &str, amount: Money, upi: &str, notify_url: &str) -> Result<Order, BestinError> {
        let body = serde_json::json!({
            "req_id": req_id, "ccy": "INR", "amount": amount.to_decimal(), "trx_method": "upi", "upi": upi,
            "user_ip": "127.0.0.1", "notify_url": notify_url,
        });
        self.call("payout", &body).await
    }

    /// Cancels a pending order.
    ///
    /// # Errors
    /// Any [`BestinError`].
    pub async fn cancel(&self, trx_id: &str, trx_type: &str) -> Result<Value, BestinError> {
        self.call("cancel", &serde_json::json!({"trx_id": trx_id, "trx_type": trx_type})).await
    }

    /// Reads an order.
    ///
    /// # Errors
    /// Any [`BestinError`].
    pub async fn query(&self, trx_id: &str, trx_type: &str) -> Result<Order, BestinError> {
        self.call("query", &serde_json::json!({"trx_id": trx_id, "trx_type": trx_type})).await
    }

    /// Reads an order by our request id (when the create answer was lost).
    ///
    /// # Errors
    /// Any [`BestinError`].
    pub async fn query_by_req_id(&self, req_id: &str, trx_type: &str) -> Result<Order, BestinError> {
        self.call("query", &serde_json::json!({"req_id": req_id, "trx_type": trx_type})).await
    }

    /// Reads the merchant's balances.
    ///
    /// # Errors
    /// Any [`BestinError`].
    pub async fn balance(&self) -> Result<Vec<BalanceRow>, BestinError> {
        self.call("balance", &serde_json::json!({})).await
    }
}

/// Reads Bestin Pay's envelope `{code, msg, data}`: `data` on success (`"0000"`, or `200` on /balance), its
/// error otherwise.
fn interpret<T: DeserializeOwned>(status: u16, text: &str) -> Result<T, BestinError> {
    // A server error decides nothing, whatever its body says (a gateway's 503, or Bestin's envelope on a 5xx):
    // the operation may or may not have happened, so it is settled by /query, never taken as a refusal.
    if status >= 500 {
        return Err(BestinError::Decode { status, reason: "server error".into() });
    }
    let value: Value = serde_json::from_str(text).map_err(|e| BestinError::Decode { status, reason: e.to_string() })?;
    let code = value.get("code").cloned().unwrap_or(Value::Null);
    let ok = code.as_str() == Some("0000") || code.as_i64() == Some(200);
    if !ok {
        let code = code.as_str().map_or_else(|| code.to_string(), str::to_owned);
        let message = value.get("msg").and_then(Value::as_str).unwrap_or_default().to_owned();
        return Err(BestinError::Provider { code, message });
    }
    let data = value.get("data").cloned().unwrap_or(Value::Null);
    serde_json::from_value(data).map_err(|e| BestinError::Decode { status, reason: e.to_string() })
}
