//! bKash tokenized checkout client (v1.2.0-beta, mode "0011"; refunds v1.2.0-beta or v2 by configuration).
//! The DTOs (in `transformers`) mirror ../shared/spec/bkash.md sections 2-8. Every call has the configured timeout (30 s in production),
//! every amount is a string on the wire and `Money` here, and the Authorization header is the bare id_token.

use super::transformers::{
    CreateRequest, CreateResponse, PaymentResponse, RefundRecord, RefundStatusV2, RefundV1, RefundV2, SearchResponse,
    TokenResponse,
};
use crate::configuration::{BkashSettings, Environment, RefundApi};
use crate::metrics::Metrics;
use crate::providers::http::{self, Transport};
use deshpay_api::Money;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::sync::Arc;
use std::time::Instant;

/// What went wrong talking to bKash.
#[derive(Debug, thiserror::Error)]
pub enum BkashError {
    /// No answer within the timeout.
    #[error("bKash did not answer in time")]
    Timeout,
    /// Connection refused, reset, DNS...
    #[error("could not reach bKash: {0}")]
    Transport(String),
    /// No connection could be made: the request was never sent.
    #[error("could not connect to bKash: {0}")]
    Connect(String),
    /// The API gateway in front of bKash answered `{"message": ...}` (bad token, wrong path, throttling).
    #[error("bKash gateway answered HTTP {status}: {message}")]
    Gateway {
        /// HTTP status.
        status: u16,
        /// Gateway message.
        message: String,
    },
    /// A non-success HTTP status without a recognisable body.
    #[error("bKash answered HTTP {status}")]
    Http {
        /// HTTP status.
        status: u16,
        /// Start of the body (never for token calls).
        body: String,
    },
    /// A body that is not the JSON we expect.
    #[error("bKash answered an unreadable body ({reason})")]
    Decode {
        /// What did not parse.
        reason: String,
        /// Start of the body (never for token calls).
        body: String,
    },
    /// bKash's own error: statusCode other than "0000" (or a v2 error object).
    #[error("bKash error {code}: {message}")]
    Provider {
        /// statusCode / internalCode.
        code: String,
        /// statusMessage / errorMessageEn: shown to the customer.
        message: String,
    },
}

impl BkashError {
    /// No usable answer: the operation may or may not have happened at bKash (Execute: go to Query).
    pub fn is_no_response(&self) -> bool {
        !matches!(self, BkashError::Provider { .. })
    }

    /// The gateway refused the token (expired or revoked): renew it. A 401, or a 403 whose message is about the
    /// token. Other 403s ("Missing Authentication Token" for a path the credentials lack, a WAF block) are not
    /// cured by a new token, and renewing on them would burn bKash's two grants an hour.
    pub fn is_unauthorized(&self) -> bool {
        match self {
            BkashError::Gateway { status: 401, .. } => true,
            BkashError::Gateway { status: 403, message } => is_token_message(message),
            _ => false,
        }
    }

    /// Worth trying the backup URL: nothing was sent (no connection), or, for a call that is safe to repeat, the
    /// gateway failed (5xx) or did not answer.
    fn is_failover(&self, repeatable: bool) -> bool {
        match self {
            BkashError::Connect(_) => true,
            BkashError::Timeout | BkashError::Transport(_) => repeatable,
            BkashError::Gateway { status, .. } | BkashError::Http { status, .. } => repeatable && *status >= 500,
            BkashError::Decode { .. } | BkashError::Provider { .. } => false,
        }
    }

    /// bKash refused to issue a token because of its rate limit (HTTP 429 on grant).
    pub fn is_rate_limited(&self) -> bool {
        matches!(self, BkashError::Gateway { status: 429, .. } | BkashError::Http { status: 429, .. })
    }

    fn outcome(&self) -> &'static str {
        match self {
            BkashError::Timeout => "timeout",
            BkashError::Transport(_) => "transport",
            BkashError::Connect(_) => "connect",
            BkashError::Gateway { .. } => "gateway",
            BkashError::Http { .. } => "http",
            BkashError::Decode { .. } => "decode",
            BkashError::Provider { .. } => "provider_error",
        }
    }
}

impl From<Transport> for BkashError {
    fn from(t: Transport) -> Self {
        match t {
            Transport::Timeout => BkashError::Timeout,
            Transport::Connect(e) => BkashError::Connect(e),
            Transport::Other(e) => BkashError::Transport(e),
        }
    }
}

/// Whether a gateway 403 message says the token is expired or invalid.
fn is_token_message(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    // AWS API Gateway's wording for an unknown path or method; the token is not the problem.
    if m.contains("missing authentication token") {
        return false;
    }
    m.contains("token") && (m.contains("expired") || m.contains("invalid") || m.contains("revoked"))
        || m.contains("unauthorized")
        || m.contains("not authorized to access")
}

/// One bKash endpoint: the versioned base URL and its host root (v2 refunds live under the host root).
#[derive(Debug, Clone)]
struct Base {
    versioned: String,
    host: String,
}

impl Base {
    fn new(url: &str) -> Base {
        let versioned = url.trim_end_matches('/').to_owned();
        let host = match url::Url::parse(&versioned) {
            Ok(u) => u.origin().ascii_serialization(),
            Err(_) => versioned.clone(),
        };
        Base { versioned, host }
    }

    fn url(&self, path: ApiPath) -> String {
        match path {
            ApiPath::Checkout(p) => format!("{}/tokenized/checkout/{p}", self.versioned),
            ApiPath::Host(p) => format!("{}{p}", self.host),
        }
    }
}

/// Where a call goes, relative to a [`Base`].
#[derive(Debug, Clone, Copy)]
enum ApiPath {
    /// Under `{base}/tokenized/checkout/`.
    Checkout(&'static str),
    /// Under the host root.
    Host(&'static str),
}

/// Calls that change nothing at bKash and may be sent again to the backup URL after a 5xx or no answer.
/// Create, Execute and Refund go to the backup only when no connection could be made to the primary.
const REPEATABLE: [&str; 5] = ["grant", "refresh", "query", "search", "refund_status"];

/// The bKash client: one per merchant credential.
#[derive(Debug)]
pub struct BkashClient {
    http: reqwest::Client,
    /// The primary endpoint, then the backup (bKash's "endpoint failover").
    bases: Vec<Base>,
    username: String,
    password: SecretString,
    app_key: String,
    app_secret: SecretString,
    refund_api: RefundApi,
    metrics: Arc<Metrics>,
}

fn truncate(body: &str) -> String {
    body.chars().take(300).collect()
}

impl BkashClient {
    /// Builds the client.
    ///
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(
        settings: &BkashSettings,
        environment: Environment,
        metrics: Arc<Metrics>,
    ) -> Result<Self, reqwest::Error> {
        let http = http::client(settings.timeout_ms, environment)?;
        let bases =
            std::iter::once(&settings.base_url).chain(&settings.backup_base_url).map(|u| Base::new(u)).collect();
        Ok(BkashClient {
            http,
            bases,
            username: settings.username.clone(),
            password: settings.password.clone(),
            app_key: settings.app_key.clone(),
            app_secret: settings.app_secret.clone(),
            refund_api: settings.refund_api,
            metrics,
        })
    }

    /// The app key (not a secret; names the shared token).
    pub fn app_key(&self) -> &str {
        &self.app_key
    }

    fn credential_headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("username", HeaderValue::from_str(&self.username).unwrap_or(HeaderValue::from_static("")));
        let mut pw = HeaderValue::from_str(self.password.expose_secret()).unwrap_or(HeaderValue::from_static(""));
        pw.set_sensitive(true);
        h.insert("password", pw);
        h
    }

    fn token_headers(&self, id_token: &SecretString) -> HeaderMap {
        let mut h = HeaderMap::new();
        // The bare id_token, no "Bearer " prefix (spec section 3).
        let mut auth = HeaderValue::from_str(id_token.expose_secret()).unwrap_or(HeaderValue::from_static(""));
        auth.set_sensitive(true);
        h.insert(reqwest::header::AUTHORIZATION, auth);
        h.insert(
            HeaderName::from_static("x-app-key"),
            HeaderValue::from_str(&self.app_key).unwrap_or(HeaderValue::from_static("")),
        );
        h
    }

    async fn post<T: DeserializeOwned>(
        &self,
        endpoint: &'static str,
        path: ApiPath,
        headers: HeaderMap,
        body: &impl Serialize,
        sensitive: bool,
    ) -> Result<T, BkashError> {
        let repeatable = REPEATABLE.contains(&endpoint);
        let mut bases = self.bases.iter().enumerate().peekable();
        loop {
            let Some((i, base)) = bases.next() else { unreachable!("there is always a primary base URL") };
            let started = Instant::now();
            let result = self.post_inner(base.url(path), headers.clone(), body, sensitive).await;
            let outcome = result.as_ref().map_or_else(BkashError::outcome, |_| "ok");
            self.metrics.provider_call("bkash", endpoint, outcome, started.elapsed().as_secs_f64());
            match &result {
                Ok(_) => tracing::debug!(endpoint, base = i, "bkash call ok"),
                Err(e) if bases.peek().is_some() && e.is_failover(repeatable) => {
                    tracing::warn!(endpoint, base = i, error = %e, "bkash call failed; trying the backup URL");
                    continue;
                }
                Err(e) => tracing::warn!(endpoint, base = i, error = %e, "bkash call failed"),
            }
            return result;
        }
    }

    async fn post_inner<T: DeserializeOwned>(
        &self,
        url: String,
        headers: HeaderMap,
        body: &impl Serialize,
        sensitive: bool,
    ) -> Result<T, BkashError> {
        let transport = |e: reqwest::Error| BkashError::from(Transport::from(e));
        let response = self
            .http
            .post(url)
            .headers(headers)
            .header(reqwest::header::ACCEPT, "application/json")
            .json(body)
            .send()
            .await
            .map_err(transport)?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(transport)?;
        // Token answers carry credentials: never keep their bodies in errors.
        let shown = if sensitive { "<redacted>".to_owned() } else { truncate(&text) };
        let value: Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(e) if (200..300).contains(&status) => {
                return Err(BkashError::Decode { reason: e.to_string(), body: shown });
            }
            Err(_) => return Err(BkashError::Http { status, body: shown }),
        };
        let field = |k: &str| value.get(k).and_then(Value::as_str).map(str::to_owned);
        if let (Some(message), None) = (field("message"), field("statusCode")) {
            return Err(BkashError::Gateway { status, message });
        }
        if let Some(message) = field("errorMessageEn") {
            let code = value
                .get("internalCode")
                .or_else(|| value.get("externalCode"))
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                .unwrap_or_default();
            return Err(BkashError::Provider { code, message });
        }
        let code = field("statusCode").or_else(|| field("errorCode"));
        if let Some(code) = code
            && code != "0000"
        {
            let message = field("statusMessage").or_else(|| field("errorMessage")).unwrap_or_default();
            return Err(BkashError::Provider { code, message });
        }
        if !(200..300).contains(&status) {
            return Err(BkashError::Http { status, body: shown });
        }
        serde_json::from_value(value).map_err(|e| BkashError::Decode { reason: e.to_string(), body: shown })
    }

    /// Grant Token.
    ///
    /// # Errors
    /// Any [`BkashError`].
    #[tracing::instrument(skip_all)]
    pub async fn grant(&self) -> Result<TokenResponse, BkashError> {
        let body = serde_json::json!({
            "app_key": self.app_key,
            "app_secret": self.app_secret.expose_secret(),
        });
        self.post("grant", ApiPath::Checkout("token/grant"), self.credential_headers(), &body, true).await
    }

    /// Refresh Token.
    ///
    /// # Errors
    /// Any [`BkashError`].
    #[tracing::instrument(skip_all)]
    pub async fn refresh(&self, refresh_token: &SecretString) -> Result<TokenResponse, BkashError> {
        let body = serde_json::json!({
            "app_key": self.app_key,
            "app_secret": self.app_secret.expose_secret(),
            "refresh_token": refresh_token.expose_secret(),
        });
        self.post("refresh", ApiPath::Checkout("token/refresh"), self.credential_headers(), &body, true).await
    }

    /// Create Payment (mode 0011, intent sale).
    ///
    /// # Errors
    /// Any [`BkashError`].
    #[tracing::instrument(skip_all, fields(invoice = invoice))]
    pub async fn create(
        &self,
        id_token: &SecretString,
        amount: Money,
        invoice: &str,
        callback_url: &str,
    ) -> Result<CreateResponse, BkashError> {
        let body = CreateRequest {
            mode: "0011",
            payer_reference: " ",
            callback_url,
            amount: amount.to_decimal(),
            currency: "BDT",
            intent: "sale",
            merchant_invoice_number: invoice,
        };
        self.post("create", ApiPath::Checkout("create"), self.token_headers(id_token), &body, false).await
    }

    /// Execute Payment: moves the money. Call only after a `status=success` callback, once.
    ///
    /// # Errors
    /// Any [`BkashError`]; [`BkashError::is_no_response`] ones mean "go to Query".
    #[tracing::instrument(skip_all, fields(payment_id = payment_id))]
    pub async fn execute(&self, id_token: &SecretString, payment_id: &str) -> Result<PaymentResponse, BkashError> {
        let body = serde_json::json!({ "paymentID": payment_id });
        self.post("execute", ApiPath::Checkout("execute"), self.token_headers(id_token), &body, false).await
    }

    /// Query Payment.
    ///
    /// # Errors
    /// Any [`BkashError`].
    #[tracing::instrument(skip_all, fields(payment_id = payment_id))]
    pub async fn query(&self, id_token: &SecretString, payment_id: &str) -> Result<PaymentResponse, BkashError> {
        let body = serde_json::json!({ "paymentID": payment_id });
        self.post("query", ApiPath::Checkout("payment/status"), self.token_headers(id_token), &body, false).await
    }

    /// Search Transaction.
    ///
    /// # Errors
    /// Any [`BkashError`].
    #[tracing::instrument(skip_all, fields(trx_id = trx_id))]
    pub async fn search(&self, id_token: &SecretString, trx_id: &str) -> Result<SearchResponse, BkashError> {
        let body = serde_json::json!({ "trxID": trx_id });
        self.post("search", ApiPath::Checkout("general/searchTransaction"), self.token_headers(id_token), &body, false)
            .await
    }

    /// Refund (v1.2.0-beta or v2 by configuration).
    ///
    /// # Errors
    /// Any [`BkashError`]; on a no-response error, ask [`BkashClient::refund_status`] before retrying.
    #[tracing::instrument(skip_all, fields(payment_id = payment_id, trx_id = trx_id))]
    pub async fn refund(
        &self,
        id_token: &SecretString,
        payment_id: &str,
        trx_id: &str,
        amount: Money,
        sku: &str,
        reason: &str,
    ) -> Result<RefundRecord, BkashError> {
        let headers = self.token_headers(id_token);
        match self.refund_api {
            RefundApi::V1 => {
                let body = serde_json::json!({
                    "paymentID": payment_id, "amount": amount.to_decimal(), "trxID": trx_id, "sku": sku, "reason": reason,
                });
                let r: RefundV1 =
                    self.post("refund", ApiPath::Checkout("payment/refund"), headers, &body, false).await?;
                Ok(r.into())
            }
            RefundApi::V2 => {
                let body = serde_json::json!({
                    "paymentId": payment_id, "trxId": trx_id, "refundAmount": amount.to_decimal(), "sku": sku, "reason": reason,
                });
                let path = ApiPath::Host("/v2/tokenized-checkout/refund/payment/transaction");
                let r: RefundV2 = self.post("refund", path, headers, &body, false).await?;
                Ok(r.into())
            }
        }
    }

    /// Refund status: the refunds bKash knows of for a transaction (v1 returns only the latest).
    ///
    /// # Errors
    /// Any [`BkashError`].
    #[tracing::instrument(skip_all, fields(payment_id = payment_id, trx_id = trx_id))]
    pub async fn refund_status(
        &self,
        id_token: &SecretString,
        payment_id: &str,
        trx_id: &str,
    ) -> Result<Vec<RefundRecord>, BkashError> {
        let headers = self.token_headers(id_token);
        match self.refund_api {
            RefundApi::V1 => {
                let body = serde_json::json!({ "paymentID": payment_id, "trxID": trx_id });
                let r: RefundV1 =
                    self.post("refund_status", ApiPath::Checkout("payment/refund"), headers, &body, false).await?;
                Ok(vec![r.into()])
            }
            RefundApi::V2 => {
                let body = serde_json::json!({ "paymentId": payment_id, "trxId": trx_id });
                let path = ApiPath::Host("/v2/tokenized-checkout/refund/payment/status");
                let r: RefundStatusV2 = self.post("refund_status", path, headers, &body, false).await?;
                Ok(r.refund_transactions.into_iter().map(Into::into).collect())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_401_or_a_403_about_the_token_asks_for_a_new_token() {
        let gateway = |status, message: &str| BkashError::Gateway { status, message: message.into() };
        let renew = [
            gateway(401, "Unauthorized"),
            gateway(403, "The incoming token has expired"),
            gateway(403, "Invalid token"),
            gateway(403, "User is not authorized to access this resource"),
        ];
        for e in renew {
            assert!(e.is_unauthorized(), "{e}");
        }
        let keep = [
            gateway(403, "Missing Authentication Token"),
            gateway(403, "Forbidden"),
            gateway(403, "Request blocked by WAF"),
            gateway(429, "Too Many Requests"),
            gateway(500, "Internal server error"),
            BkashError::Http { status: 403, body: String::new() },
        ];
        for e in keep {
            assert!(!e.is_unauthorized(), "{e}");
        }
        assert!(gateway(429, "Too Many Requests").is_rate_limited());
    }
}
