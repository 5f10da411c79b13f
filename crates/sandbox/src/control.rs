//! The control API tests use to look inside and steer the sandbox: `/__sandbox/...`.

use axum::body::Bytes;
use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::state::{
    AppState, Fault, PaymentStatus, SECOND_MS, SUCCESS_WALLETS, bkash_time, is_known_wallet, is_wallet_format,
    mask_wallet,
};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/__sandbox/bkash/counters", get(counters))
        .route("/__sandbox/bkash/payments/{payment_id}", get(payment))
        .route("/__sandbox/bkash/payments/{payment_id}/approve", post(approve))
        .route("/__sandbox/bkash/faults", post(add_fault).delete(clear_faults))
        .route("/__sandbox/clock", get(clock))
        .route("/__sandbox/clock/advance", post(advance_clock))
        .route("/__sandbox/reset", post(reset))
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

/// An absent body reads as the type's default; a malformed one is a 400.
fn body<T: DeserializeOwned + Default>(bytes: &[u8]) -> Result<T, String> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(bytes).map_err(|e| e.to_string())
}

async fn counters(AxState(app): AxState<AppState>) -> Response {
    Json(app.lock().counters.clone()).into_response()
}

async fn payment(AxState(app): AxState<AppState>, Path(payment_id): Path<String>) -> Response {
    let state = app.lock();
    let Some(p) = state.payments.get(&payment_id) else {
        return error(StatusCode::NOT_FOUND, "unknown paymentID");
    };
    Json(json!({
        "paymentID": p.id,
        "status": p.status.as_str(),
        "execute_calls": p.execute_calls,
        "trxID": p.trx_id,
        "amount": p.amount,
        "wallet": p.wallet,
        "merchantInvoiceNumber": p.invoice,
        "refunds": p.refunds.iter().map(|r| json!({
            "refundTrxID": r.trx_id,
            "amount": r.amount,
        })).collect::<Vec<_>>(),
    }))
    .into_response()
}

#[derive(Debug, Default, Deserialize)]
struct ApproveRequest {
    wallet: Option<String>,
}

/// Plays the customer through the hosted page (OTP and PIN implied) in one call.
#[tracing::instrument(skip_all, fields(payment_id = %payment_id))]
async fn approve(AxState(app): AxState<AppState>, Path(payment_id): Path<String>, bytes: Bytes) -> Response {
    let request: ApproveRequest = match body(&bytes) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let wallet = request.wallet.unwrap_or_else(|| SUCCESS_WALLETS[0].to_owned());
    let mut state = app.lock();
    let now = state.now_ms();
    let Some(p) = state.payments.get_mut(&payment_id) else {
        return error(StatusCode::NOT_FOUND, "unknown paymentID");
    };
    if p.status != PaymentStatus::Initiated {
        return error(StatusCode::CONFLICT, format!("payment is {}", p.status.as_str()));
    }
    if now >= p.expires_ms {
        return error(StatusCode::CONFLICT, "payment has expired");
    }
    if !is_wallet_format(&wallet) || !is_known_wallet(&wallet) {
        return error(StatusCode::BAD_REQUEST, "Not a bKash Account");
    }
    tracing::info!(wallet = %mask_wallet(&wallet), "approved through the control API");
    p.wallet = Some(wallet);
    p.verified = true;
    p.status = PaymentStatus::Approved;
    let response = Json(json!({ "redirect_url": p.redirect_for("success") })).into_response();
    drop(state);
    crate::ipn::announce(&app, &payment_id);
    response
}

async fn add_fault(AxState(app): AxState<AppState>, bytes: Bytes) -> Response {
    let fault: Fault = match serde_json::from_slice(&bytes) {
        Ok(f) => f,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    if fault.status.is_some_and(|s| !(100..=599).contains(&s)) {
        return error(StatusCode::BAD_REQUEST, "status must be 100..=599");
    }
    let (endpoint, times) = (fault.endpoint, fault.times);
    if times > 0 {
        app.lock().faults.entry(endpoint).or_default().push_back(fault);
    }
    tracing::info!(%endpoint, times, "fault queued");
    Json(json!({ "endpoint": endpoint.as_str(), "times": times })).into_response()
}

async fn clear_faults(AxState(app): AxState<AppState>) -> Response {
    app.lock().faults.clear();
    Json(json!({ "cleared": true })).into_response()
}

fn clock_body(now_ms: i64, offset_ms: i64) -> Response {
    Json(json!({ "now_ms": now_ms, "offset_ms": offset_ms, "now": bkash_time(now_ms) })).into_response()
}

async fn clock(AxState(app): AxState<AppState>) -> Response {
    let state = app.lock();
    clock_body(state.now_ms(), state.offset_ms)
}

#[derive(Debug, Default, Deserialize)]
struct AdvanceRequest {
    #[serde(default)]
    seconds: f64,
}

async fn advance_clock(AxState(app): AxState<AppState>, bytes: Bytes) -> Response {
    let request: AdvanceRequest = match body(&bytes) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    if !request.seconds.is_finite() {
        return error(StatusCode::BAD_REQUEST, "seconds must be a finite number");
    }
    let (now_ms, offset_ms) = {
        let mut state = app.lock();
        // `as` saturates, which is what an absurd jump should do.
        let delta_ms = (request.seconds * SECOND_MS as f64).round() as i64;
        state.offset_ms = state.offset_ms.saturating_add(delta_ms);
        (state.now_ms(), state.offset_ms)
    };
    tracing::info!(seconds = request.seconds, "sandbox clock advanced");
    // Bestin Pay payins whose time has come expire (and notify) now, not at the next tick.
    crate::bestin::sweep(&app);
    clock_body(now_ms, offset_ms)
}

async fn reset(AxState(app): AxState<AppState>) -> Response {
    app.lock().reset();
    tracing::info!("sandbox reset");
    Json(json!({ "reset": true })).into_response()
}
