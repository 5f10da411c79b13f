//! The limits of the HTTP edge (`[limits]`): per-IP and per-session rate limits on the widget API's payment
//! starts and cancels (`tower_governor`), caps on live event streams, an inbound timeout and a concurrency limit
//! (`tower`), request body limits per route (`tower-http`), and the rule that every refusal has the API's
//! error shape `{"error":{"code","message"}}`, never a bare status or a hang.

use crate::configuration::LimitSettings;
use crate::error::AppError;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use deshpay_api::{ErrorCode, SessionId};
use governor::middleware::NoOpMiddleware;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tower_governor::GovernorError;
use tower_governor::governor::{GovernorConfig, GovernorConfigBuilder};
use tower_governor::key_extractor::{KeyExtractor, PeerIpKeyExtractor, SmartIpKeyExtractor};

/// 429 `rate_limited` with a `Retry-After`.
pub fn rate_limited(message: impl Into<String>, retry_after_secs: u64) -> Response {
    let mut response = AppError::new(StatusCode::TOO_MANY_REQUESTS, ErrorCode::RateLimited, message).into_response();
    response.headers_mut().insert(header::RETRY_AFTER, retry_after_secs.max(1).into());
    response
}

/// Turns the governor's refusal into the API's error shape.
fn governor_error(e: GovernorError) -> Response {
    match e {
        GovernorError::TooManyRequests { wait_time, .. } => {
            rate_limited(format!("too many payment requests; try again in {} s", wait_time.max(1)), wait_time)
        }
        GovernorError::UnableToExtractKey => {
            AppError::bad_request(ErrorCode::InvalidRequest, "cannot tell who sent this request").into_response()
        }
        GovernorError::Other { code, msg, .. } => {
            AppError::new(code, ErrorCode::InvalidRequest, msg.unwrap_or_else(|| "refused".into())).into_response()
        }
    }
}

/// The client IP: the peer address, or the forwarded one when configured to trust a proxy.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp {
    trust_forwarded_for: bool,
}

impl KeyExtractor for ClientIp {
    type Key = IpAddr;
    fn extract<T>(&self, req: &axum::http::Request<T>) -> Result<IpAddr, GovernorError> {
        if self.trust_forwarded_for { SmartIpKeyExtractor.extract(req) } else { PeerIpKeyExtractor.extract(req) }
    }
}

/// The session id of a widget API path `/v1/checkout/{id}/...`.
#[derive(Debug, Clone, Copy)]
pub struct SessionKey;

impl KeyExtractor for SessionKey {
    type Key = String;
    fn extract<T>(&self, req: &axum::http::Request<T>) -> Result<String, GovernorError> {
        let mut parts = req.uri().path().trim_start_matches('/').split('/');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("v1"), Some("checkout"), Some(id)) if !id.is_empty() && id.len() <= 64 => Ok(id.to_owned()),
            _ => Err(GovernorError::UnableToExtractKey),
        }
    }
}

type Limiter<K> = Arc<GovernorConfig<K, NoOpMiddleware>>;
/// A governor layer keyed by `K`.
pub type LimitLayer<K> = tower_governor::GovernorLayer<K, NoOpMiddleware, Body>;

fn config<K: KeyExtractor>(key: K, burst: u32, replenish_ms: u64) -> Limiter<K> {
    let config = GovernorConfigBuilder::default()
        .key_extractor(key)
        .per_millisecond(replenish_ms.max(1))
        .burst_size(burst.max(1))
        .finish()
        .expect("burst and period are above zero");
    Arc::new(config)
}

/// The per-IP limiter of payment starts and cancels.
pub fn ip_limiter(limits: &LimitSettings) -> LimitLayer<ClientIp> {
    let config =
        config(ClientIp { trust_forwarded_for: limits.trust_forwarded_for }, limits.ip_burst, limits.ip_replenish_ms);
    spawn_cleanup(config.limiter().clone());
    tower_governor::GovernorLayer::new(config).error_handler(governor_error)
}

/// The per-session limiter of payment starts and cancels: each start may call the provider.
pub fn session_limiter(limits: &LimitSettings) -> LimitLayer<SessionKey> {
    let config = config(SessionKey, limits.session_burst, limits.session_replenish_ms);
    spawn_cleanup(config.limiter().clone());
    tower_governor::GovernorLayer::new(config).error_handler(governor_error)
}

/// Forgets idle keys once a minute, so the limiters' memory stays bounded.
fn spawn_cleanup<K>(limiter: tower_governor::governor::SharedRateLimiter<K, NoOpMiddleware>)
where
    K: std::hash::Hash + Eq + Clone + Send + Sync + 'static,
{
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(60)).await;
                limiter.retain_recent();
            }
        });
    }
}

/// Counts live event streams per session and in total; a [`StreamPermit`] is held for a stream's life.
#[derive(Debug)]
pub struct StreamCaps {
    per_session: usize,
    total: usize,
    live: Mutex<(usize, HashMap<SessionId, usize>)>,
}

/// Why no event stream was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamRefused {
    /// The session has this many live streams, its cap.
    Session(usize),
    /// The process is at its cap.
    Total,
}

impl IntoResponse for StreamRefused {
    fn into_response(self) -> Response {
        match self {
            StreamRefused::Session(n) => {
                rate_limited(format!("this session already has {n} live event streams; close one or poll instead"), 5)
            }
            StreamRefused::Total => rate_limited("too many live event streams on this server; poll instead", 5),
        }
    }
}

/// One live event stream; dropping it frees its place.
#[derive(Debug)]
pub struct StreamPermit {
    caps: Arc<StreamCaps>,
    session: SessionId,
}

impl StreamCaps {
    /// Caps from the settings.
    pub fn new(limits: &LimitSettings) -> Arc<StreamCaps> {
        Arc::new(StreamCaps {
            per_session: limits.streams_per_session,
            total: limits.streams_total,
            live: Mutex::new((0, HashMap::new())),
        })
    }

    /// A place for one more stream of `session`.
    ///
    /// # Errors
    /// [`StreamRefused`] (a 429) when the session or the process has no place left.
    pub fn acquire(self: &Arc<Self>, session: &SessionId) -> Result<StreamPermit, StreamRefused> {
        let mut live = self.live.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let of_session = live.1.get(session).copied().unwrap_or(0);
        if of_session >= self.per_session {
            return Err(StreamRefused::Session(of_session));
        }
        if live.0 >= self.total {
            tracing::warn!(live = live.0, "event stream cap reached");
            return Err(StreamRefused::Total);
        }
        live.0 += 1;
        *live.1.entry(session.clone()).or_default() += 1;
        Ok(StreamPermit { caps: self.clone(), session: session.clone() })
    }

    /// Live streams in total (tests and metrics).
    pub fn live(&self) -> usize {
        self.live.lock().map(|l| l.0).unwrap_or(0)
    }
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        let mut live = self.caps.live.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        live.0 = live.0.saturating_sub(1);
        if let Some(n) = live.1.get_mut(&self.session) {
            *n -= 1;
            if *n == 0 {
                live.1.remove(&self.session);
            }
        }
    }
}

/// Maps the errors of the timeout and load-shedding layers to the API's error shape.
pub async fn overload_error(e: tower::BoxError) -> Response {
    if e.is::<tower::timeout::error::Elapsed>() {
        AppError::new(
            StatusCode::REQUEST_TIMEOUT,
            ErrorCode::Timeout,
            "the request took too long and was stopped; retry it (idempotent requests replay their first answer)",
        )
        .into_response()
    } else if e.is::<tower::load_shed::error::Overloaded>() {
        let mut response = AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Overloaded,
            "the server is busy; retry in a moment",
        )
        .into_response();
        response.headers_mut().insert(header::RETRY_AFTER, 1.into());
        response
    } else {
        AppError::internal(anyhow::anyhow!("edge layer failed: {e}")).into_response()
    }
}

/// Gives the bare refusals of extractors and layers (413 from a body limit, 408, 429, 503) the API's error
/// shape, so a client always reads `{"error":{"code","message"}}`.
pub async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return response;
    }
    let (code, message) = match response.status() {
        StatusCode::PAYLOAD_TOO_LARGE => {
            (ErrorCode::PayloadTooLarge, "the request body is larger than this route accepts")
        }
        StatusCode::REQUEST_TIMEOUT => (ErrorCode::Timeout, "the request took too long"),
        StatusCode::TOO_MANY_REQUESTS => (ErrorCode::RateLimited, "too many requests; slow down"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (ErrorCode::InvalidJson, "send Content-Type: application/json"),
        _ => return response,
    };
    let status = response.status();
    let retry_after = response.headers().get(header::RETRY_AFTER).cloned();
    let mut out = AppError::new(status, code, message).into_response();
    if let Some(v) = retry_after {
        out.headers_mut().insert(header::RETRY_AFTER, v);
    }
    out
}

/// Checks a merchant's `return_url`: at most `max_chars`, and https in production.
///
/// # Errors
/// 400 `invalid_request` naming the rule.
pub fn check_return_url(url: &str, max_chars: usize, production: bool) -> Result<(), AppError> {
    if url.chars().count() > max_chars {
        return Err(AppError::bad_request(
            ErrorCode::InvalidRequest,
            format!("return_url is longer than {max_chars} characters"),
        ));
    }
    if production && !url.get(..8).is_some_and(|s| s.eq_ignore_ascii_case("https://")) {
        return Err(AppError::bad_request(ErrorCode::InvalidRequest, "return_url must be an https:// URL"));
    }
    Ok(())
}

/// Checks a session's `success_url`, where the hosted page sends the customer after paying: at most
/// `max_chars`, an absolute https URL without user info; plain http only to the machine itself
/// (`127.0.0.1`, `localhost`, `[::1]`) and never in production.
///
/// # Errors
/// 400 `invalid_request` naming the rule.
pub fn check_success_url(url: &str, max_chars: usize, production: bool) -> Result<(), AppError> {
    let refuse = |why: &str| Err(AppError::bad_request(ErrorCode::InvalidRequest, format!("success_url {why}")));
    if url.chars().count() > max_chars {
        return refuse(&format!("is longer than {max_chars} characters"));
    }
    let Ok(parsed) = url::Url::parse(url) else {
        return refuse("must be an absolute https:// URL");
    };
    if parsed.host_str().is_none_or(str::is_empty) || !parsed.username().is_empty() || parsed.password().is_some() {
        return refuse("must be an absolute https:// URL with a host and no user name or password");
    }
    let loopback = matches!(parsed.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if loopback && !production => Ok(()),
        "http" if loopback => refuse("must be an https:// URL in production"),
        _ => refuse("must be an https:// URL (http:// only to 127.0.0.1 or localhost in the sandbox)"),
    }
}

/// What bKash's redirect to `GET /v1/bkash/callback` carries that the backend uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackQuery {
    /// `paymentID`: letters and digits, at most 64.
    pub payment_id: String,
    /// `status`: `success`, `failure` or `cancel`.
    pub status: String,
}

/// Parses the callback's query string (`paymentID=...&status=...`, bKash adds `signature` and `apiVersion`,
/// which cannot be verified and are ignored). Anything else is refused before the store is asked.
///
/// # Errors
/// 400 `invalid_request` naming what is missing or malformed.
pub fn parse_callback_query(query: &str) -> Result<CallbackQuery, AppError> {
    let mut payment_id = None;
    let mut status = None;
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "paymentID" => payment_id = Some(v.into_owned()),
            "status" => status = Some(v.into_owned()),
            _ => {}
        }
    }
    let (Some(payment_id), Some(status)) = (payment_id, status) else {
        return Err(AppError::bad_request(ErrorCode::InvalidRequest, "paymentID and status are required"));
    };
    if payment_id.is_empty() || payment_id.len() > 64 || !payment_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(AppError::bad_request(ErrorCode::InvalidRequest, "paymentID is malformed"));
    }
    if !matches!(status.as_str(), "success" | "failure" | "cancel") {
        return Err(AppError::bad_request(ErrorCode::InvalidRequest, "status must be success, failure or cancel"));
    }
    Ok(CallbackQuery { payment_id, status })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_queries_are_parsed_strictly() {
        let ok = parse_callback_query("paymentID=TR0011ABC&status=success&signature=x&apiVersion=1.2.0-beta").unwrap();
        assert_eq!((ok.payment_id.as_str(), ok.status.as_str()), ("TR0011ABC", "success"));
        for bad in [
            "",
            "status=success",
            "paymentID=TR1",
            "paymentID=TR1&status=paid",
            "paymentID=TR%2F1&status=success",
            "paymentID=&status=cancel",
            &format!("paymentID={}&status=failure", "A".repeat(65)),
        ] {
            let e = parse_callback_query(bad).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{bad}");
        }
    }
}
