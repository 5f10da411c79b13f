//! HTTP routes: the merchant API (API key), the widget API (CORS), the provider callback, operations.

pub mod error;

use crate::auth;
use crate::edge::{self, StreamCaps};
use crate::error::{ApiJson, AppError, NothingDone};
use crate::routes::error::parse_session_id;
use crate::state::AppState;
use axum::Extension;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method as HttpMethod, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use deshpay_api::{CreateSessionRequest, ErrorCode, PayoutRequest, RefundRequest, SessionStatus};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceBuilder;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;

/// The whole router; pure, so tests can drive it with `oneshot` (serve it with `ConnectInfo<SocketAddr>`: the
/// per-IP limit reads the peer address).
pub fn router(state: AppState) -> Router {
    let limits = state.settings.limits.clone();
    let merchant = Router::new()
        .route("/v1/sessions", post(create_session))
        .route("/v1/sessions/{id}", get(get_session))
        .route("/v1/sessions/{id}/refunds", post(create_refund))
        .route("/v1/bkash/transactions/{trx_id}", get(search_transaction))
        .route("/v1/payouts", post(create_payout))
        .route("/v1/payouts/{id}", get(get_payout))
        .route("/v1/payouts/{id}/cancel", post(cancel_payout))
        .route("/v1/balance", get(balance))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_api_key))
        .layer(RequestBodyLimitLayer::new(limits.merchant_body_bytes));
    // Starting an attempt or cancelling may call the provider: limited per client IP and per session.
    let widget_actions = Router::new()
        .route("/v1/checkout/{id}/bkash", post(start_bkash))
        .route("/v1/checkout/{id}/upi", post(start_upi))
        .route("/v1/checkout/{id}/cancel", post(cancel_checkout))
        .route_layer(edge::session_limiter(&limits))
        .route_layer(edge::ip_limiter(&limits));
    let widget = Router::new()
        .route("/v1/checkout/{id}", get(checkout_view))
        .route("/v1/checkout/{id}/events", get(checkout_events))
        .merge(widget_actions)
        .layer(RequestBodyLimitLayer::new(limits.widget_body_bytes))
        .layer(Extension(StreamCaps::new(&limits)))
        .layer(cors(&state));
    Router::new()
        .merge(merchant)
        .merge(widget)
        .route("/v1/bkash/callback", get(bkash_callback))
        .route("/v1/bestinpay/notify", post(bestin_notify).layer(RequestBodyLimitLayer::new(limits.notify_body_bytes)))
        .route("/healthz", get(healthz))
        // On the public listener the metrics need the API key; `server.admin_listen` serves them without.
        .route("/metrics", get(metrics).route_layer(middleware::from_fn_with_state(state.clone(), require_api_key)))
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
    Router::new().route("/healthz", get(healthz)).route("/metrics", get(metrics)).with_state(state)
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

async fn create_session(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<CreateSessionRequest>,
) -> Response {
    let production = state.settings.server.environment == crate::configuration::Environment::Production;
    if let Err(e) = edge::check_return_url(&req.return_url, state.settings.limits.return_url_max_chars, production) {
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

async fn get_session(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, AppError> {
    let id = parse_session_id(&id)?;
    let row = state.load_session(&id).await?;
    Ok(Json(state.merchant_view(row).await?).into_response())
}

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

async fn search_transaction(State(state): State<AppState>, Path(trx_id): Path<String>) -> Result<Response, AppError> {
    Ok(Json(state.search_bkash(&trx_id).await?).into_response())
}

async fn checkout_view(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, AppError> {
    let id = parse_session_id(&id)?;
    let view = state.checkout_view(&id).await?;
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(view)).into_response())
}

async fn start_bkash(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, AppError> {
    let id = parse_session_id(&id)?;
    Ok((StatusCode::CREATED, Json(state.start_bkash(&id).await?)).into_response())
}

async fn start_upi(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, AppError> {
    let id = parse_session_id(&id)?;
    Ok((StatusCode::CREATED, Json(state.start_upi(&id).await?)).into_response())
}

async fn cancel_checkout(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, AppError> {
    let id = parse_session_id(&id)?;
    state.cancel_checkout(&id).await?;
    Ok(Json(state.checkout_view(&id).await?).into_response())
}

/// Server-sent events: the session's public view each time it changes (event `session`), until it is final.
/// At most `limits.streams_per_session` per session and `limits.streams_total` in all; each ends after
/// `limits.stream_max_secs` (the widget then reconnects or polls).
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

async fn get_payout(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, AppError> {
    Ok(Json(state.get_payout(&id).await?).into_response())
}

async fn cancel_payout(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, AppError> {
    Ok(Json(state.cancel_payout(&id).await?).into_response())
}

async fn balance(State(state): State<AppState>) -> Result<Response, AppError> {
    Ok(Json(state.balance().await?).into_response())
}

async fn bkash_callback(State(state): State<AppState>, RawQuery(query): RawQuery) -> Result<Response, AppError> {
    // bKash adds signature and apiVersion too; neither can be verified, so only Execute/Query establish truth.
    let callback = edge::parse_callback_query(query.as_deref().unwrap_or_default())?;
    let to = state.bkash_callback(&callback.payment_id, &callback.status).await?;
    Ok(Redirect::to(&to).into_response())
}

async fn healthz(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => Json(serde_json::json!({"status": "ok"})).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check failed");
            (StatusCode::SERVICE_UNAVAILABLE, Json(serde_json::json!({"status": "unavailable"}))).into_response()
        }
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], state.metrics.render())
        .into_response()
}
