//! The Bestin Pay half of the control API: `/__sandbox/bestin/...`.
//!
//! - `GET  /__sandbox/bestin/counters`
//! - `GET  /__sandbox/bestin/balance` (same `data` as the API's `/balance`, no headers needed)
//! - `GET  /__sandbox/bestin/payins/{trx_id}`, `GET /__sandbox/bestin/payouts/{trx_id}`
//! - `POST /__sandbox/bestin/payins/{trx_id}/approve`, `.../decline`
//! - `POST /__sandbox/bestin/payouts/{trx_id}/settle` `{"status": "success" | "failed"}`
//! - `GET  /__sandbox/bestin/notifications[?trx_id=..&notify_id=..]`: every delivery attempt
//! - `POST /__sandbox/bestin/notifications/{notify_id}/resend`
//! - `POST /__sandbox/bestin/faults`, `DELETE /__sandbox/bestin/faults`

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::bestin::{
    BestinFault, DecideError, Order, TrxStatus, TrxType, amount4, balance_data, decide, order_data, settle_payout,
    with_bestin,
};
use crate::notify;
use crate::state::{AppState, State, format_minor};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/__sandbox/bestin/counters", get(counters))
        .route("/__sandbox/bestin/balance", get(balance))
        .route("/__sandbox/bestin/payins/{trx_id}", get(payin))
        .route("/__sandbox/bestin/payouts/{trx_id}", get(payout))
        .route("/__sandbox/bestin/payins/{trx_id}/approve", post(approve))
        .route("/__sandbox/bestin/payins/{trx_id}/decline", post(decline))
        .route("/__sandbox/bestin/payouts/{trx_id}/settle", post(settle))
        .route("/__sandbox/bestin/notifications", get(notifications))
        .route("/__sandbox/bestin/notifications/{notify_id}/resend", post(resend))
        .route("/__sandbox/bestin/faults", post(add_fault).delete(clear_faults))
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

async fn counters(AxState(app): AxState<AppState>) -> Response {
    Json(app.lock().bestin.counters.clone()).into_response()
}

async fn balance(AxState(app): AxState<AppState>) -> Response {
    Json(balance_data(&app.lock().bestin)).into_response()
}

/// The control view of an order: its API data plus what tests count.
fn inspect(state: &State, o: &Order) -> Value {
    let b = &state.bestin;
    let attempts = b.attempts.iter().filter(|a| a.trx_id == o.trx_id);
    let (deliveries, delivered) = attempts.fold((0u32, 0u32), |(n, ok), a| (n + 1, ok + u32::from(a.delivered)));
    let mut value = order_data(&state.public_url, o);
    if let Value::Object(map) = &mut value {
        map.insert("amount_2dp".into(), format_minor(o.amount_paise).into());
        map.insert("amount_4dp".into(), amount4(o.amount_paise).into());
        map.insert("notify_url".into(), json!(o.notify_url));
        map.insert("return_url".into(), json!(o.return_url));
        map.insert("product_id".into(), json!(o.product_id));
        map.insert("user_ip".into(), json!(o.user_ip));
        map.insert("created_ms".into(), o.created_ms.into());
        map.insert("updated_ms".into(), o.updated_ms.into());
        map.insert("expires_ms".into(), json!(o.expires_ms));
        map.insert("query_calls".into(), o.query_calls.into());
        map.insert("cancel_calls".into(), o.cancel_calls.into());
        map.insert("notify_ids".into(), json!(o.notify_ids));
        map.insert("deliveries".into(), deliveries.into());
        map.insert("delivered".into(), delivered.into());
    }
    value
}

fn show(app: &AppState, trx_id: &str, trx_type: TrxType) -> Response {
    with_bestin(app, |state| {
        let now = state.now_ms();
        state.bestin.expire_due(now);
        match state.bestin.orders.get(trx_id).filter(|o| o.trx_type == trx_type) {
            Some(o) => Json(inspect(state, o)).into_response(),
            None => error(StatusCode::NOT_FOUND, format!("unknown {}", trx_type.as_str())),
        }
    })
}

async fn payin(AxState(app): AxState<AppState>, Path(trx_id): Path<String>) -> Response {
    show(&app, &trx_id, TrxType::Payin)
}

async fn payout(AxState(app): AxState<AppState>, Path(trx_id): Path<String>) -> Response {
    show(&app, &trx_id, TrxType::Payout)
}

fn decided(app: &AppState, trx_id: &str, approve: bool) -> Response {
    with_bestin(app, |state| match decide(state, trx_id, approve) {
        Ok(_) => match state.bestin.orders.get(trx_id) {
            Some(o) => Json(inspect(state, o)).into_response(),
            None => error(StatusCode::NOT_FOUND, "unknown payin"),
        },
        Err(e) => decide_error(e),
    })
}

fn decide_error(e: DecideError) -> Response {
    match e {
        DecideError::NotFound => error(StatusCode::NOT_FOUND, "unknown order"),
        DecideError::Expired => error(StatusCode::CONFLICT, "payin has expired"),
        DecideError::NotPending(status) => error(StatusCode::CONFLICT, format!("order is {}", status.as_str())),
    }
}

#[tracing::instrument(skip_all, fields(trx_id = %trx_id))]
async fn approve(AxState(app): AxState<AppState>, Path(trx_id): Path<String>) -> Response {
    decided(&app, &trx_id, true)
}

#[tracing::instrument(skip_all, fields(trx_id = %trx_id))]
async fn decline(AxState(app): AxState<AppState>, Path(trx_id): Path<String>) -> Response {
    decided(&app, &trx_id, false)
}

#[derive(Debug, Default, Deserialize)]
struct SettleRequest {
    status: Option<String>,
}

#[tracing::instrument(skip_all, fields(trx_id = %trx_id))]
async fn settle(AxState(app): AxState<AppState>, Path(trx_id): Path<String>, bytes: Bytes) -> Response {
    let request: SettleRequest = if bytes.iter().all(u8::is_ascii_whitespace) {
        SettleRequest::default()
    } else {
        match serde_json::from_slice(&bytes) {
            Ok(r) => r,
            Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
        }
    };
    let to = match request.status.as_deref() {
        None | Some("success") => TrxStatus::Success,
        Some("failed") => TrxStatus::Failed,
        Some(_) => return error(StatusCode::BAD_REQUEST, "status must be success or failed"),
    };
    with_bestin(&app, |state| match settle_payout(state, &trx_id, to) {
        Ok(()) => match state.bestin.orders.get(&trx_id) {
            Some(o) => Json(inspect(state, o)).into_response(),
            None => error(StatusCode::NOT_FOUND, "unknown payout"),
        },
        Err(e) => decide_error(e),
    })
}

async fn notifications(AxState(app): AxState<AppState>, Query(query): Query<HashMap<String, String>>) -> Response {
    let state = app.lock();
    let trx_id = query.get("trx_id");
    let notify_id = query.get("notify_id");
    let attempts: Vec<_> = state
        .bestin
        .attempts
        .iter()
        .filter(|a| trx_id.is_none_or(|t| *t == a.trx_id))
        .filter(|a| notify_id.is_none_or(|n| *n == a.notify_id))
        .collect();
    Json(json!(attempts)).into_response()
}

#[tracing::instrument(skip_all, fields(notify_id = %notify_id))]
async fn resend(AxState(app): AxState<AppState>, Path(notify_id): Path<String>) -> Response {
    match notify::resend(&app, &notify_id).await {
        Some(attempt) => Json(attempt).into_response(),
        None => error(StatusCode::NOT_FOUND, "unknown notify_id"),
    }
}

async fn add_fault(AxState(app): AxState<AppState>, bytes: Bytes) -> Response {
    let fault: BestinFault = match serde_json::from_slice(&bytes) {
        Ok(f) => f,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    if let Some(problem) = fault.problem() {
        return error(StatusCode::BAD_REQUEST, problem);
    }
    let (endpoint, times) = (fault.endpoint, fault.times);
    if times > 0 {
        app.lock().bestin.faults.entry(endpoint).or_default().push_back(fault);
    }
    tracing::info!(%endpoint, times, "bestin fault queued");
    Json(json!({ "endpoint": endpoint.as_str(), "times": times })).into_response()
}

async fn clear_faults(AxState(app): AxState<AppState>) -> Response {
    app.lock().bestin.faults.clear();
    Json(json!({ "cleared": true })).into_response()
}
