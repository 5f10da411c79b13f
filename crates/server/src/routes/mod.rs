//! HTTP routes: the merchant API (API key), the widget API (CORS), the provider callback, operations.

pub mod error;

use crate::auth;
use crate::edge::{self, StreamCaps};
use crate::error::{ApiJson, AppError, NothingDone};
use crate::openapi::{IdempotencyKey, RefundOrError};
use crate::routes::error::parse_session_id;
use crate::state::AppState;
use axum::Extension;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method as HttpMethod, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Json, Router};
use deshpay_api::{
    BalanceEntry, BkashTransaction, CheckoutView, CreateSessionRequest, ErrorBody, ErrorCode, Payout, PayoutRequest,
    Refund, RefundRequest, Session, SessionId, SessionStatus, StartBkashResponse, StartUpiResponse, UnmatchedPayments,
};
use serde::Serialize;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceBuilder;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Every route of the public listener, in groups that share layers. The router ([`router`]) and the API
/// document ([`crate::openapi::document`]) are both made from this one list: a handler is routed only through
/// `routes!`, which needs its `#[utoipa::path]`, so a route cannot be served undocumented.
pub struct Routes {
    /// The merchant API: behind the API key.
    pub merchant: OpenApiRouter<AppState>,
    /// The widget's payment starts and cancels: rate-limited per IP and per session, CORS.
    pub widget_actions: OpenApiRouter<AppState>,
    /// The widget's reads: CORS.
    pub widget: OpenApiRouter<AppState>,
    /// Bestin Pay's notifications: their own body limit.
    pub notify: OpenApiRouter<AppState>,
    /// Metrics: behind the API key on the public listener.
    pub metrics: OpenApiRouter<AppState>,
    /// Everything else: bKash's callback, the health check, this API's description.
    pub open: OpenApiRouter<AppState>,
    /// The hosted payment page, its QR code and the widget's files it loads (public, same origin).
    pub page: OpenApiRouter<AppState>,
}

impl Routes {
    /// The routes, without layers or state.
    pub fn new() -> Self {
        Routes {
            merchant: OpenApiRouter::new()
                .routes(routes!(create_session))
                .routes(routes!(get_session))
                .routes(routes!(create_refund))
                .routes(routes!(search_transaction))
                .routes(routes!(bkash_unmatched))
                .routes(routes!(create_payout))
                .routes(routes!(get_payout))
                .routes(routes!(cancel_payout))
                .routes(routes!(balance)),
            widget_actions: OpenApiRouter::new()
                .routes(routes!(start_bkash))
                .routes(routes!(start_upi))
                .routes(routes!(cancel_checkout)),
            widget: OpenApiRouter::new().routes(routes!(checkout_view)).routes(routes!(checkout_events)),
            notify: OpenApiRouter::new().routes(routes!(bestin_notify)).routes(routes!(bkash_ipn)),
            metrics: OpenApiRouter::new().routes(routes!(metrics)),
            open: OpenApiRouter::new()
                .routes(routes!(bkash_callback))
                .routes(routes!(healthz))
                .routes(routes!(openapi_json)),
            page: OpenApiRouter::new()
                .routes(routes!(pay_page))
                .routes(routes!(pay_qr))
                .routes(routes!(pay_widget_file)),
        }
    }

    /// The paths and operations of every group (merged into `base`, which carries the rest of the document).
    pub fn into_openapi(self, base: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
        let Routes { merchant, widget_actions, widget, notify, metrics, open, page } = self;
        OpenApiRouter::with_openapi(base)
            .merge(merchant)
            .merge(widget_actions)
            .merge(widget)
            .merge(notify)
            .merge(metrics)
            .merge(open)
            .merge(page)
            .into_openapi()
    }
}

impl std::fmt::Debug for Routes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Routes").finish_non_exhaustive()
    }
}

impl Default for Routes {
    fn default() -> Self {
        Self::new()
    }
}

/// The whole router; pure, so tests can drive it with `oneshot` (serve it with `ConnectInfo<SocketAddr>`: the
/// per-IP limit reads the peer address).
pub fn router(state: AppState) -> Router {
    let limits = state.settings.limits.clone();
    let Routes { merchant, widget_actions, widget, notify, metrics, open, page } = Routes::new();
    let merchant = merchant
        .route_layer(middleware::from_fn_with_state(state.clone(), require_api_key))
        .layer(RequestBodyLimitLayer::new(limits.merchant_body_bytes));
    // Starting an attempt or cancelling may call the provider: limited per client IP and per session.
    let widget_actions =
        widget_actions.route_layer(edge::session_limiter(&limits)).route_layer(edge::ip_limiter(&limits));
    let widget = widget
        .merge(widget_actions)
        .layer(RequestBodyLimitLayer::new(limits.widget_body_bytes))
        .layer(Extension(StreamCaps::new(&limits)))
        .layer(cors(&state));
    let notify = notify.layer(RequestBodyLimitLayer::new(limits.notify_body_bytes));
    // On the public listener the metrics need the API key; `server.admin_listen` serves them without.
    let metrics = metrics.route_layer(middleware::from_fn_with_state(state.clone(), require_api_key));
    let (routes, _) = OpenApiRouter::new()
        .merge(merchant)
        .merge(widget)
        .merge(notify)
        .merge(metrics)
        .merge(open)
        .merge(page)
        .split_for_parts();
    routes
        .fallback(|| async { AppError::not_found(ErrorCode::NotFound, "no such route") })
        .layer(middleware::from_fn(edge::json_errors))
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(edge::overload_error))
                .load_shed()
                .layer(GlobalConcurrencyLimitLayer::new(limits.max_concurrent_requests))
                .timeout(Duration::from_millis(limits.request_timeout_ms)),
        )
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// The operations router of `server.admin_listen`: `/healthz` and `/metrics` without a key.
pub fn admin_router(state: AppState) -> Router {
    let (routes, _) = OpenApiRouter::new().routes(routes!(healthz)).routes(routes!(metrics)).split_for_parts();
    routes.with_state(state)
}

fn cors(state: &AppState) -> CorsLayer {
    // Checked at start (preflight): every origin is a valid, non-wildcard origin.
    let origins: Vec<HeaderValue> = state
        .settings
        .server
        .allowed_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o.trim_end_matches('/')).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([HttpMethod::GET, HttpMethod::POST])
        .allow_headers([header::CONTENT_TYPE])
}

async fn require_api_key(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let header = request.headers().get(header::AUTHORIZATION).map(HeaderValue::as_bytes);
    if let Err(failure) = auth::authenticate(&state.settings.merchant, header) {
        return AppError::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, failure.message()).into_response();
    }
    next.run(request).await
}

/// How long a request holds its Idempotency-Key; a key still held after this is retaken (its request died).
/// Longer than the slowest request: a token wait plus a 30 s provider call plus a refund status check.
const IDEMPOTENCY_LOCK_MS: i64 = 150_000;

/// How long an Idempotency-Key is remembered.
const IDEMPOTENCY_TTL_MS: i64 = 24 * 3600 * 1000;

/// Runs `handler` once per `Idempotency-Key` (scoped by `scope`), as Stripe does: a repeat with the same body
/// replays the stored response (whatever its status, a 5xx included, since the first request may have moved
/// money); a repeat with another body is `idempotency_conflict`; a repeat while the first still runs is
/// `payment_in_progress`. The key is released only when the handler says nothing was done ([`NothingDone`]).
/// The handler gets the scoped key, to make its own side effects findable by it.
async fn idempotent<F, Fut>(state: &AppState, headers: &HeaderMap, scope: &str, body: &str, handler: F) -> Response
where
    F: FnOnce(Option<String>) -> Fut,
    Fut: Future<Output = Response>,
{
    let Some(key) = headers.get("idempotency-key").and_then(|v| v.to_str().ok()) else {
        return handler(None).await;
    };
    if key.is_empty() || key.len() > 255 {
        return AppError::bad_request(ErrorCode::InvalidRequest, "Idempotency-Key must be 1 to 255 characters")
            .into_response();
    }
    let key = format!("{scope}:{key}");
    let now = state.clock.now_ms();
    let claimed =
        state.store.claim_idempotency_key(&key, body, now, now + IDEMPOTENCY_LOCK_MS, now - IDEMPOTENCY_TTL_MS).await;
    match claimed {
        Err(e) => return AppError::from(e).into_response(),
        Ok(Some((hash, _))) if hash != body => {
            return AppError::conflict(
                ErrorCode::IdempotencyConflict,
                "this Idempotency-Key was used with another request",
            )
            .into_response();
        }
        Ok(Some((_, Some((status, stored))))) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            return (status, [(header::CONTENT_TYPE, "application/json")], stored).into_response();
        }
        Ok(Some((_, None))) => {
            return AppError::conflict(
                ErrorCode::PaymentInProgress,
                "the first request with this key is still running",
            )
            .into_response();
        }
        Ok(None) => {}
    }
    // The handler's records carry the key's life, so a key reused after it expired is a new request.
    let generation = match state.store.idempotency_generation(&key).await {
        Ok(g) => g,
        Err(e) => return AppError::from(e).into_response(),
    };
    let response = handler(Some(format!("{key}@{generation}"))).await;
    if response.extensions().get::<NothingDone>().is_some() {
        if let Err(e) = state.store.release_idempotency_key(&key).await {
            tracing::error!(error = %e, "could not release an idempotency key");
        }
        return response;
    }
    let status = response.status();
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    if let Err(e) = state.store.finish_idempotency_key(&key, status.as_u16(), &text).await {
        tracing::error!(error = %e, "could not store idempotent response");
    }
    Response::from_parts(parts, axum::body::Body::from(bytes))
}

/// Create a checkout session.
///
/// The amount is fixed here, server to server: the browser never sets it. Send the widget the session's `id`.
/// With an `Idempotency-Key`, a repeat of the same request replays the first answer.
#[utoipa::path(
    post, path = "/v1/sessions", tag = "merchant", security(("api_key" = [])),
    params(IdempotencyKey),
    request_body = CreateSessionRequest,
    responses(
        (status = 201, description = "The new session.", body = Session),
        (status = 400, description = "`invalid_amount`, `invalid_currency`, `invalid_request`, `method_not_available`, `invalid_json`.", body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing or wrong API key.", body = ErrorBody),
        (status = 409, description = "`invoice_in_use`, `idempotency_conflict`, `payment_in_progress`.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`.", body = ErrorBody),
        (status = 415, description = "`invalid_json`: send `Content-Type: application/json`.", body = ErrorBody),
        (status = 422, description = "`invalid_json`: a field is missing or has the wrong type.", body = ErrorBody),
    )
)]
async fn create_session(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<CreateSessionRequest>,
) -> Response {
    let production = state.settings.server.environment == crate::configuration::Environment::Production;
    let max = state.settings.limits.return_url_max_chars;
    if let Some(Err(e)) = req.return_url.as_deref().map(|url| edge::check_return_url(url, max, production)) {
        return e.into_response();
    }
    if let Some(Err(e)) = req.success_url.as_deref().map(|url| edge::check_success_url(url, max, production)) {
        return e.into_response();
    }
    let body = serde_json::to_string(&req).unwrap_or_default();
    idempotent(&state, &headers, "session", &body, |_| async {
        match state.create_session(&req).await {
            Ok(s) => (StatusCode::CREATED, Json(s)).into_response(),
            Err(e) => AppError::from(e).into_response(),
        }
    })
    .await
}

/// Get a session with its payment, attempts and refunds.
#[utoipa::path(
    get, path = "/v1/sessions/{id}", tag = "merchant", security(("api_key" = [])),
    params(("id" = SessionId, Path, description = "Session id.")),
    responses(
        (status = 200, description = "The session.", body = Session),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 404, description = "`session_not_found`.", body = ErrorBody),
    )
)]
async fn get_session(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, AppError> {
    let id = parse_session_id(&id)?;
    let row = state.load_session(&id).await?;
    Ok(Json(state.merchant_view(row).await?).into_response())
}

/// Refund a paid bKash session, in full or in part.
///
/// The answer's status says where the refund stands: 201 completed, 202 pending (checked with bKash until it
/// settles; `refund.succeeded` or `refund.failed` follows), 422 failed. With an `Idempotency-Key`, a repeat
/// replays the first answer.
#[utoipa::path(
    post, path = "/v1/sessions/{id}/refunds", tag = "merchant", security(("api_key" = [])),
    params(
        ("id" = SessionId, Path, description = "Session id."),
        IdempotencyKey,
    ),
    request_body = RefundRequest,
    responses(
        (status = 201, description = "Refunded.", body = Refund),
        (status = 202, description = "Sent to bKash; the outcome is not known yet.", body = Refund),
        (status = 400, description = "`invalid_amount`, `invalid_request`, `method_not_available` (not a bKash payment), `invalid_json`.", body = ErrorBody),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 404, description = "`session_not_found`.", body = ErrorBody),
        (status = 409, description = "`payment_not_found` (nothing paid to refund), `refund_exceeds_payment`, `idempotency_conflict`, `payment_in_progress`.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`.", body = ErrorBody),
        (status = 415, description = "`invalid_json`.", body = ErrorBody),
        (status = 422, description = "bKash refused the refund: the failed refund (`status` `failed`, `failure_message`), or `refund_failed`; also `invalid_json` for a body of the wrong shape.", body = RefundOrError),
        (status = 502, description = "`provider_error`.", body = ErrorBody),
    )
)]
async fn create_refund(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<RefundRequest>,
) -> Response {
    let id = match parse_session_id(&id) {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    let body = serde_json::to_string(&req).unwrap_or_default();
    let worker = state.clone();
    idempotent(&state, &headers, &format!("refund:{id}"), &body, |key| async move {
        match worker.refund(&id, &req, key.as_deref()).await {
            Ok(refund) => (error::refund_status(refund.status), Json(refund)).into_response(),
            Err(e) => AppError::from(e).into_response(),
        }
    })
    .await
}

/// Search a bKash transaction by its trxID (bKash's Search Transaction).
#[utoipa::path(
    get, path = "/v1/bkash/transactions/{trx_id}", tag = "merchant", security(("api_key" = [])),
    params(("trx_id" = String, Path, description = "bKash trxID (letters and digits).")),
    responses(
        (status = 200, description = "What bKash knows of the transaction.", body = BkashTransaction),
        (status = 400, description = "`invalid_request`: a malformed trxID.", body = ErrorBody),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 404, description = "`transaction_not_found`.", body = ErrorBody),
        (status = 502, description = "`provider_error`.", body = ErrorBody),
    )
)]
async fn search_transaction(State(state): State<AppState>, Path(trx_id): Path<String>) -> Result<Response, AppError> {
    Ok(Json(state.search_bkash(&trx_id).await?).into_response())
}

/// The public view of a session, for the widget.
///
/// No API key: the session id is the capability. No return URL, no payer details.
#[utoipa::path(
    get, path = "/v1/checkout/{id}", tag = "widget",
    params(("id" = SessionId, Path, description = "Session id.")),
    responses(
        (status = 200, description = "The session as the customer may see it.", body = CheckoutView),
        (status = 404, description = "`session_not_found`.", body = ErrorBody),
    )
)]
async fn checkout_view(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, AppError> {
    let id = parse_session_id(&id)?;
    let view = state.checkout_view(&id).await?;
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(view)).into_response())
}

/// Start paying with bKash: creates a bKash payment; send the browser to `redirect_url`.
#[utoipa::path(
    post, path = "/v1/checkout/{id}/bkash", tag = "widget",
    params(("id" = SessionId, Path, description = "Session id.")),
    responses(
        (status = 201, description = "The attempt and bKash's page.", body = StartBkashResponse),
        (status = 400, description = "`method_not_available`.", body = ErrorBody),
        (status = 404, description = "`session_not_found`.", body = ErrorBody),
        (status = 409, description = "`session_already_paid`, `session_expired`, `session_canceled`, `payment_in_progress`.", body = ErrorBody),
        (status = 429, description = "`rate_limited`; `Retry-After` says when to try again.", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait."))),
        (status = 502, description = "`provider_error`: bKash refused to create the payment.", body = ErrorBody),
    )
)]
async fn start_bkash(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, AppError> {
    let id = parse_session_id(&id)?;
    Ok((StatusCode::CREATED, Json(state.start_bkash(&id).await?)).into_response())
}

/// Start paying with UPI: deep links for a phone's UPI apps, a QR code for a desktop, and the deadline.
#[utoipa::path(
    post, path = "/v1/checkout/{id}/upi", tag = "widget",
    params(("id" = SessionId, Path, description = "Session id.")),
    responses(
        (status = 201, description = "The attempt, its links and QR code.", body = StartUpiResponse),
        (status = 400, description = "`method_not_available` (also when UPI is not configured).", body = ErrorBody),
        (status = 404, description = "`session_not_found`.", body = ErrorBody),
        (status = 409, description = "`session_already_paid`, `session_expired`, `session_canceled`, `payment_in_progress`.", body = ErrorBody),
        (status = 429, description = "`rate_limited`; `Retry-After` says when to try again.", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait."))),
        (status = 502, description = "`provider_error`.", body = ErrorBody),
    )
)]
async fn start_upi(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, AppError> {
    let id = parse_session_id(&id)?;
    Ok((StatusCode::CREATED, Json(state.start_upi(&id).await?)).into_response())
}

/// The customer cancels the pending payment; answers with the session's public view.
#[utoipa::path(
    post, path = "/v1/checkout/{id}/cancel", tag = "widget",
    params(("id" = SessionId, Path, description = "Session id.")),
    responses(
        (status = 200, description = "The session after the cancel.", body = CheckoutView),
        (status = 400, description = "`method_not_available`: UPI is not configured.", body = ErrorBody),
        (status = 404, description = "`session_not_found`.", body = ErrorBody),
        (status = 409, description = "`nothing_to_cancel`, `session_already_paid`, `session_expired`, `session_canceled`.", body = ErrorBody),
        (status = 429, description = "`rate_limited`; `Retry-After` says when to try again.", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait."))),
        (status = 502, description = "`provider_error`.", body = ErrorBody),
    )
)]
async fn cancel_checkout(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, AppError> {
    let id = parse_session_id(&id)?;
    state.cancel_checkout(&id).await?;
    Ok(Json(state.checkout_view(&id).await?).into_response())
}

/// Server-sent events: the session's public view each time it changes, until it is final.
///
/// Each event is `event: session` with `data:` one `CheckoutView` as JSON. At most `limits.streams_per_session`
/// streams per session and `limits.streams_total` in all; each ends after `limits.stream_max_secs` (the widget
/// then reconnects or polls `GET /v1/checkout/{id}`).
#[utoipa::path(
    get, path = "/v1/checkout/{id}/events", tag = "widget",
    params(("id" = SessionId, Path, description = "Session id.")),
    responses(
        (status = 200, description = "A stream of `session` events whose data is a `CheckoutView`.", content_type = "text/event-stream", body = String),
        (status = 404, description = "`session_not_found`.", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many live streams; poll instead.", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait."))),
    )
)]
async fn checkout_events(
    State(state): State<AppState>,
    Extension(caps): Extension<Arc<StreamCaps>>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let id = parse_session_id(&id)?;
    state.load_session(&id).await?;
    let permit = match caps.acquire(&id) {
        Ok(permit) => permit,
        Err(refused) => return Ok(refused.into_response()),
    };
    let ends_at = tokio::time::Instant::now() + Duration::from_secs(state.settings.limits.stream_max_secs);
    let mut changes = state.changes.subscribe();
    let stream = async_stream::stream! {
        let _permit = permit;
        let mut last = String::new();
        loop {
            if tokio::time::Instant::now() >= ends_at {
                break;
            }
            let Ok(view) = state.checkout_view(&id).await else { break };
            let json = serde_json::to_string(&view).unwrap_or_default();
            if json != last {
                yield Ok::<_, std::convert::Infallible>(Event::default().event("session").data(json.clone()));
                last = json;
            }
            let done = view.status != SessionStatus::Open
                || view.attempt.as_ref().is_some_and(|a| a.status.is_final());
            if done {
                break;
            }
            // Wake on a change in this process, or re-read after a while for changes made by other instances.
            let wait = tokio::time::sleep(std::time::Duration::from_secs(2));
            tokio::pin!(wait);
            loop {
                tokio::select! {
                    _ = &mut wait => break,
                    changed = changes.recv() => match changed {
                        Ok(changed) if changed != id => continue,
                        _ => break,
                    },
                }
            }
        }
    };
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()).into_response())
}

/// Bestin Pay's signed notification of a payin or payout (provider-facing, not for merchants).
///
/// Verified (RSA-SHA512 over the values as sent, bound to our merchant id) and deduplicated before it counts.
#[utoipa::path(
    post, path = "/v1/bestinpay/notify", tag = "provider",
    request_body(content = Object, description = "Bestin Pay's notification, as Bestin Pay signs it."),
    responses(
        (status = 200, description = "Accepted (also for a duplicate).", content_type = "text/plain", body = String, example = "success"),
        (status = 400, description = "`invalid_notification`: malformed.", body = ErrorBody),
        (status = 401, description = "`invalid_notification`: the signature does not verify.", body = ErrorBody),
        (status = 403, description = "`invalid_notification`: for another merchant.", body = ErrorBody),
        (status = 404, description = "`invalid_notification` (an order we do not know) or `not_found` (UPI not configured).", body = ErrorBody),
        (status = 413, description = "`payload_too_large`.", body = ErrorBody),
    )
)]
async fn bestin_notify(State(state): State<AppState>, body: axum::body::Bytes) -> Response {
    use crate::payouts::NotifyRejection;
    match state.bestin_notification(&body).await {
        Ok(()) => (StatusCode::OK, "success").into_response(),
        Err(NotifyRejection::BadSignature) => {
            tracing::warn!("rejected a Bestin Pay notification with a bad signature");
            AppError::new(StatusCode::UNAUTHORIZED, ErrorCode::InvalidNotification, "signature does not verify")
                .into_response()
        }
        Err(NotifyRejection::ForeignMerchant) => {
            AppError::new(StatusCode::FORBIDDEN, ErrorCode::InvalidNotification, "not for this merchant")
                .into_response()
        }
        Err(NotifyRejection::Malformed(why)) => {
            tracing::warn!(why, "rejected a malformed Bestin Pay notification");
            AppError::bad_request(ErrorCode::InvalidNotification, why).into_response()
        }
        Err(NotifyRejection::Unknown) => {
            tracing::warn!("Bestin Pay notification for an order we do not know (yet)");
            AppError::not_found(ErrorCode::InvalidNotification, "unknown order").into_response()
        }
        Err(NotifyRejection::Disabled) => {
            AppError::not_found(ErrorCode::NotFound, "UPI is not configured").into_response()
        }
        Err(NotifyRejection::Internal(e)) => e.into_response(),
    }
}

/// bKash's IPN, as Amazon SNS delivers it (provider-facing, not for merchants).
///
/// The envelope (`text/plain` JSON) must be for `bkash.ipn_topic_arn`, signed (SignatureVersion 1 or 2) with a
/// certificate served from a host of `bkash.ipn_cert_hosts`. A `SubscriptionConfirmation` is confirmed by fetching
/// its SubscribeURL. A `Notification` is deduplicated by MessageId and fed to the payment core: a payment of ours
/// is executed or queried (the provider's answer decides), one that matches nothing of ours is recorded and
/// announced by `payment.unmatched`.
#[utoipa::path(
    post, path = "/v1/bkash/ipn", tag = "provider",
    request_body(content = String, content_type = "text/plain", description = "The SNS envelope (JSON text)."),
    responses(
        (status = 200, description = "Taken (also a redelivery of a MessageId already handled).", content_type = "text/plain", body = String, example = "ok"),
        (status = 400, description = "`invalid_notification`: not an SNS envelope, or a payload that cannot be read.", body = ErrorBody),
        (status = 401, description = "`invalid_notification`: unsigned, or the signature does not verify.", body = ErrorBody),
        (status = 403, description = "`invalid_notification`: another topic, or a certificate/subscribe URL that is not allowed.", body = ErrorBody),
        (status = 404, description = "`not_found`: bKash IPN is not configured.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`.", body = ErrorBody),
        (status = 503, description = "`provider_unavailable`: the certificate or SubscribeURL could not be fetched, or the payment is being confirmed right now; SNS delivers it again.", body = ErrorBody),
    )
)]
async fn bkash_ipn(State(state): State<AppState>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    use crate::ipn::{IpnDone, IpnError};
    use crate::providers::bkash::ipn::IpnRejection;
    let header_type = headers.get("x-amz-sns-message-type").and_then(|v| v.to_str().ok());
    let refused = |status: StatusCode, why: &str| {
        state.metrics.ipn("refused");
        tracing::warn!(why, "refused a bKash IPN envelope");
        AppError::new(status, ErrorCode::InvalidNotification, why).into_response()
    };
    match state.bkash_ipn(header_type, &body).await {
        Ok(IpnDone::Subscribed | IpnDone::Duplicate | IpnDone::Handled(_)) => (StatusCode::OK, "ok").into_response(),
        Err(IpnError::Rejected(rejection)) => match rejection {
            IpnRejection::Disabled => {
                AppError::not_found(ErrorCode::NotFound, "bKash IPN is not configured").into_response()
            }
            IpnRejection::Malformed(why) => refused(StatusCode::BAD_REQUEST, why),
            IpnRejection::Unsigned => refused(StatusCode::UNAUTHORIZED, "the envelope is not signed"),
            IpnRejection::BadSignature => refused(StatusCode::UNAUTHORIZED, "the signature does not verify"),
            IpnRejection::ForeignTopic => refused(StatusCode::FORBIDDEN, "not our topic"),
            IpnRejection::UrlNotAllowed => refused(StatusCode::FORBIDDEN, "certificate or subscribe URL not allowed"),
            e @ (IpnRejection::CertUnavailable(_) | IpnRejection::SubscribeFailed(_)) => {
                tracing::warn!(error = %e, "bKash IPN not taken for now");
                AppError::new(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::ProviderUnavailable, "try again later")
                    .into_response()
            }
        },
        Err(IpnError::BadPayload(why)) => refused(StatusCode::BAD_REQUEST, why),
        Err(IpnError::Pending) => AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::ProviderUnavailable,
            "the payment is being confirmed; deliver it again later",
        )
        .into_response(),
        Err(IpnError::Internal(e)) => e.into_response(),
    }
}

/// bKash payments that match no payment of ours.
///
/// Payments to the merchant that bKash announced by its IPN and that no session made (QR, USSD, app payments, or
/// an invoice or amount of no payment of ours), newest first; each was also announced by `payment.unmatched`.
/// They are never attached to a session.
#[utoipa::path(
    get, path = "/v1/bkash/unmatched", tag = "merchant", security(("api_key" = [])),
    responses(
        (status = 200, description = "The unmatched payments (at most 500).", body = UnmatchedPayments),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
    )
)]
async fn bkash_unmatched(State(state): State<AppState>) -> Result<Response, AppError> {
    Ok(Json(UnmatchedPayments { data: state.unmatched_payments().await? }).into_response())
}

/// Send money to a UPI address (Bestin Pay payout).
///
/// `reference` makes it idempotent: repeating it returns the same payout with 200.
#[utoipa::path(
    post, path = "/v1/payouts", tag = "merchant", security(("api_key" = [])),
    request_body = PayoutRequest,
    responses(
        (status = 200, description = "A payout with this reference already exists: that payout.", body = Payout),
        (status = 201, description = "Created.", body = Payout),
        (status = 202, description = "Sent; Bestin Pay's answer is not known yet (it is queried).", body = Payout),
        (status = 400, description = "`invalid_amount`, `invalid_currency`, `invalid_request`, `method_not_available` (UPI not configured), `invalid_json`.", body = ErrorBody),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 409, description = "`idempotency_conflict` (reference reused for another payout), `insufficient_balance`.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`.", body = ErrorBody),
        (status = 415, description = "`invalid_json`.", body = ErrorBody),
        (status = 422, description = "Bestin Pay refused it (`insufficient_balance`, `provider_error`), or `invalid_json`.", body = ErrorBody),
        (status = 502, description = "`provider_error`.", body = ErrorBody),
    )
)]
async fn create_payout(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<PayoutRequest>,
) -> Result<Response, AppError> {
    use crate::payouts::PayoutAnswer;
    let (status, payout) = match state.create_payout(&req).await? {
        PayoutAnswer::Existing(p) => (StatusCode::OK, p),
        PayoutAnswer::Created(p) => (StatusCode::CREATED, p),
        PayoutAnswer::Accepted(p) => (StatusCode::ACCEPTED, p),
    };
    Ok((status, Json(payout)).into_response())
}

/// Get a payout.
#[utoipa::path(
    get, path = "/v1/payouts/{id}", tag = "merchant", security(("api_key" = [])),
    params(("id" = String, Path, description = "Payout id (`po_...`).")),
    responses(
        (status = 200, description = "The payout.", body = Payout),
        (status = 400, description = "`method_not_available`: UPI is not configured.", body = ErrorBody),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 404, description = "`payout_not_found`.", body = ErrorBody),
        (status = 502, description = "`provider_error`.", body = ErrorBody),
    )
)]
async fn get_payout(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, AppError> {
    Ok(Json(state.get_payout(&id).await?).into_response())
}

/// Cancel a payout that has not been sent.
#[utoipa::path(
    post, path = "/v1/payouts/{id}/cancel", tag = "merchant", security(("api_key" = [])),
    params(("id" = String, Path, description = "Payout id (`po_...`).")),
    responses(
        (status = 200, description = "The payout, now `canceled` (or as it stands).", body = Payout),
        (status = 400, description = "`method_not_available`: UPI is not configured.", body = ErrorBody),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 404, description = "`payout_not_found`.", body = ErrorBody),
        (status = 409, description = "`nothing_to_cancel`.", body = ErrorBody),
        (status = 502, description = "`provider_error`.", body = ErrorBody),
    )
)]
async fn cancel_payout(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, AppError> {
    Ok(Json(state.cancel_payout(&id).await?).into_response())
}

/// The merchant's Bestin Pay balance (INR).
#[utoipa::path(
    get, path = "/v1/balance", tag = "merchant", security(("api_key" = [])),
    responses(
        (status = 200, description = "One entry per currency.", body = Vec<BalanceEntry>),
        (status = 400, description = "`method_not_available`: UPI is not configured.", body = ErrorBody),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 502, description = "`provider_error`.", body = ErrorBody),
    )
)]
async fn balance(State(state): State<AppState>) -> Result<Response, AppError> {
    Ok(Json(state.balance().await?).into_response())
}

/// bKash's redirect of the customer's browser after its page (provider-facing, not for merchants).
///
/// Only `success` leads to Execute Payment; then the browser goes back to the merchant's `return_url`.
#[utoipa::path(
    get, path = "/v1/bkash/callback", tag = "provider",
    params(
        ("paymentID" = String, Query, description = "bKash paymentID (letters and digits, at most 64)."),
        ("status" = String, Query, description = "`success`, `failure` or `cancel`."),
    ),
    responses(
        (status = 303, description = "To the merchant's `return_url`, with the session id.", headers(("Location" = String, description = "Where the browser goes."))),
        (status = 400, description = "`invalid_request`: missing or malformed `paymentID` or `status`.", body = ErrorBody),
        (status = 404, description = "`payment_not_found`: an unknown paymentID.", body = ErrorBody),
    )
)]
async fn bkash_callback(State(state): State<AppState>, RawQuery(query): RawQuery) -> Result<Response, AppError> {
    // bKash adds signature and apiVersion too; neither can be verified, so only Execute/Query establish truth.
    let callback = edge::parse_callback_query(query.as_deref().unwrap_or_default())?;
    let to = state.bkash_callback(&callback.payment_id, &callback.status).await?;
    Ok(Redirect::to(&to).into_response())
}

/// Health check: whether the store answers.
#[utoipa::path(
    get, path = "/healthz", tag = "operations",
    responses(
        (status = 200, description = "Serving.", body = Health),
        (status = 503, description = "The store does not answer (`unavailable`).", body = Health),
    )
)]
async fn healthz(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => Json(Health { status: HealthStatus::Ok }).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check failed");
            (StatusCode::SERVICE_UNAVAILABLE, Json(Health { status: HealthStatus::Unavailable })).into_response()
        }
    }
}

/// `GET /healthz`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// Whether the store answers.
    pub status: HealthStatus,
}

/// The state of `GET /healthz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// Serving.
    Ok,
    /// The store does not answer.
    Unavailable,
}

/// Prometheus metrics (OpenMetrics text).
///
/// On the public listener they need the API key; `server.admin_listen` serves them without.
#[utoipa::path(
    get, path = "/metrics", tag = "operations", security(("api_key" = [])),
    responses(
        (status = 200, description = "OpenMetrics text.", content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8", body = String),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
    )
)]
async fn metrics(State(state): State<AppState>) -> Response {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], state.metrics.render())
        .into_response()
}

/// This API's description: an OpenAPI 3.1 document, webhooks included.
#[utoipa::path(
    get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document.", content_type = "application/json", body = Object))
)]
async fn openapi_json() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], crate::openapi::json()).into_response()
}

/// The session's hosted payment page: its widget on this origin, payable with no merchant page.
///
/// Server-rendered HTML in the session's language (`locale`, else the browser's `Accept-Language`) and theme:
/// an open session shows the widget (loaded from `/pay/pkg/`), a paid one its receipt and the link to
/// `success_url`, an expired or cancelled one says so (410), an unknown id 404.
/// Strict Content-Security-Policy, `no-store`, no referrer, not framable.
#[utoipa::path(
    get, path = "/pay/{id}", tag = "page",
    params(("id" = SessionId, Path, description = "Session id.")),
    responses(
        (status = 200, description = "The page: the widget, or the receipt of a paid session.", content_type = "text/html", body = String),
        (status = 404, description = "No such session: a page that says so.", content_type = "text/html", body = String),
        (status = 410, description = "The session expired or was cancelled: a page that says so.", content_type = "text/html", body = String),
        (status = 500, description = "The store failed: a page that says to try again.", content_type = "text/html", body = String),
    )
)]
async fn pay_page(State(state): State<AppState>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    crate::page::render(&state, &id, &headers).await
}

/// The hosted payment page's URL as a QR code (SVG), to show at the counter or print on an invoice.
#[utoipa::path(
    get, path = "/pay/{id}/qr.svg", tag = "page",
    params(("id" = SessionId, Path, description = "Session id.")),
    responses(
        (status = 200, description = "The QR code of `{public_url}/pay/{id}`, dark on white.", content_type = "image/svg+xml", body = String),
        (status = 404, description = "`session_not_found`.", body = ErrorBody),
        (status = 410, description = "`session_expired`, `session_canceled`: nothing to pay any more.", body = ErrorBody),
    )
)]
async fn pay_qr(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, AppError> {
    let id = parse_session_id(&id)?;
    let row = state.load_session(&id).await?;
    match row.status {
        SessionStatus::Expired => {
            return Err(AppError::new(StatusCode::GONE, ErrorCode::SessionExpired, "this session has expired"));
        }
        SessionStatus::Canceled => {
            return Err(AppError::new(StatusCode::GONE, ErrorCode::SessionCanceled, "this session was canceled"));
        }
        SessionStatus::Open | SessionStatus::Paid => {}
    }
    let url = crate::sessions::page_url(&state.public_url, &row.id);
    let svg = crate::page::qr_svg(&url)
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("the page URL does not fit a QR code")))?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "private, max-age=3600"),
            (header::CONTENT_SECURITY_POLICY, "default-src 'none'"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        svg,
    )
        .into_response())
}

/// The widget's files for the hosted payment page (`server.widget_dir`, the built `pkg/`): the loader, the
/// glue, the wasm and the locale texts, sent precompressed (`.br`, `.gz`) when the browser takes them.
#[utoipa::path(
    get, path = "/pay/pkg/{file}", tag = "page",
    params(("file" = String, Path, description = "A file of the widget package, e.g. `deshpay.js`.")),
    responses(
        (status = 200, description = "The file, with its type (`text/javascript`, `application/wasm`, `application/json`).", content_type = "text/javascript", body = String),
        (status = 304, description = "Not modified since the browser's copy."),
        (status = 404, description = "No such file."),
    )
)]
async fn pay_widget_file(State(state): State<AppState>, Path(file): Path<String>, request: Request) -> Response {
    use tower::ServiceExt;
    if !crate::page::widget_file_name(&file) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let dir = state.settings.server.widget_dir.clone().unwrap_or_else(|| "pkg".into());
    let (mut parts, body) = request.into_parts();
    parts.uri = match format!("/{file}").parse() {
        Ok(uri) => uri,
        Err(_) => return StatusCode::NOT_FOUND.into_response(),
    };
    let served = tower_http::services::ServeDir::new(dir)
        .precompressed_br()
        .precompressed_gzip()
        .oneshot(Request::from_parts(parts, body))
        .await;
    let mut response = match served {
        Ok(response) => response.map(axum::body::Body::new),
        Err(never) => match never {},
    };
    if response.status().is_success() {
        let headers = response.headers_mut();
        // Not content-hashed: revalidated each time (ETag / Last-Modified), so a new build is never mixed with an
        // old one in a browser's cache.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    }
    response
}
