//! Bestin Pay's merchant API (version 1.0.0) for UPI: `/payin`, `/payout`, `/cancel`, `/query`,
//! `/balance`, served under `{sandbox}/bestin`.
//!
//! Mirrors the provider's own document (`shared/seeds/bestinpay-api-zh.txt`, sections 认证, 代收接口,
//! 代付接口, 取消订单, 查询交易, 查询账户余额, 交易状态说明, 通知回调) and fills what it leaves open
//! with the choices listed in the crate docs. Money is kept in paise (`u64`), never in floats.
//!
//! The state lives in [`Bestin`] inside the sandbox's one mutex. Work that must happen later or
//! over the network (notification deliveries, payout settlement, the end of `confirming`) is put
//! in an outbox while the lock is held and spawned once it is released ([`with_bestin`]).

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::handler::Handler;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, any, post};
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::notify::{self, DeliveryAttempt, Notification};
use crate::state::{AppState, MINUTE_MS, State, format_minor, parse_amount};

/// Where the Bestin Pay API is mounted inside the sandbox.
pub(crate) const PREFIX: &str = "/bestin";
/// Payouts to this payee fail when they settle (the frozen amount goes back to available).
pub(crate) const FAIL_PAYEE: &str = "fail@bestin";
/// Payouts to this payee stay pending until settled or cancelled through the API or control API.
pub(crate) const PENDING_PAYEE: &str = "pending@bestin";
const MAX_REQ_ID_LEN: usize = 64;
const MAX_TEXT_LEN: usize = 256;

// ---------------------------------------------------------------------------------------------
// Configuration

/// The merchant account the sandbox's Bestin Pay accepts: the `x-app-id` and `x-secret` headers,
/// and the merchant id (`mid`) it puts into every notification.
#[derive(Clone, PartialEq, Eq)]
pub struct BestinCredentials {
    pub app_id: String,
    pub secret: String,
    pub mid: String,
}

impl BestinCredentials {
    /// The sandbox's fixed test account (nothing here is a production secret):
    /// app id `deshpay-sandbox-app`, secret `sandbox-secret-5b1f0c2e9a7d4e63`,
    /// mid `M01KDESHPAYSANDBXX000000001`.
    pub fn sandbox_default() -> Self {
        Self {
            app_id: "deshpay-sandbox-app".to_owned(),
            secret: "sandbox-secret-5b1f0c2e9a7d4e63".to_owned(),
            mid: "M01KDESHPAYSANDBXX000000001".to_owned(),
        }
    }
}

impl Default for BestinCredentials {
    fn default() -> Self {
        Self::sandbox_default()
    }
}

impl fmt::Debug for BestinCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BestinCredentials")
            .field("app_id", &self.app_id)
            .field("secret", &"[redacted]")
            .field("mid", &self.mid)
            .finish()
    }
}

/// How the simulated Bestin Pay behaves; [`Default`] is what the demo and most tests want.
#[derive(Clone, Debug)]
pub struct BestinOptions {
    /// How long a payin stays `pending` before it turns `expired`, on the sandbox clock
    /// (default 15 minutes).
    pub payin_ttl: Duration,
    /// How long after creation a payout settles by itself, on the real clock (default 2 s).
    pub payout_settle_delay: Duration,
    /// `Some(d)`: an approved payin is `confirming` for `d` (real clock) before `success`, with a
    /// notification for each. `None` (default): approval goes straight to `success`.
    pub confirm_delay: Option<Duration>,
    /// Available INR balance at start and after a reset, in paise (default 100000.00 INR).
    pub opening_balance_paise: u64,
    /// The payee VPA (`pa=`) in the deep links (default `deshpay.sandbox@bestin`).
    pub merchant_vpa: String,
    /// The payee name (`pn=`) in the deep links and on the approval page.
    pub merchant_name: String,
    /// Waits between delivery attempts of one notification; the last one repeats
    /// (default 0.5 s, 1 s, 2 s, 4 s, 8 s, 16 s, 32 s).
    pub notify_backoff: Vec<Duration>,
    /// Attempts per notification before the sandbox gives up (default 8).
    pub notify_max_attempts: u32,
    /// Timeout of one delivery attempt (default 10 s).
    pub notify_timeout: Duration,
    /// How often a background ticker expires pending payins (default 1 s); they also expire
    /// whenever they are looked at and when the sandbox clock is advanced.
    pub expiry_tick: Duration,
    /// The anti-replay window of `x-timestamp` (default 5 minutes, as in the seed).
    pub timestamp_window: Duration,
    /// `true` (default): `x-timestamp` is checked against the sandbox clock (system time plus the
    /// offset tests move); `false`: against the system clock, so a client that does not know
    /// about the offset keeps working after the clock is advanced.
    pub timestamp_uses_sandbox_clock: bool,
}

impl Default for BestinOptions {
    fn default() -> Self {
        Self {
            payin_ttl: Duration::from_secs(15 * 60),
            payout_settle_delay: Duration::from_secs(2),
            confirm_delay: None,
            opening_balance_paise: 10_000_000,
            merchant_vpa: "deshpay.sandbox@bestin".to_owned(),
            merchant_name: "DeshPay Sandbox Merchant".to_owned(),
            notify_backoff: [500, 1_000, 2_000, 4_000, 8_000, 16_000, 32_000]
                .into_iter()
                .map(Duration::from_millis)
                .collect(),
            notify_max_attempts: 8,
            notify_timeout: Duration::from_secs(10),
            expiry_tick: Duration::from_secs(1),
            timestamp_window: Duration::from_secs(5 * 60),
            timestamp_uses_sandbox_clock: true,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Model

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum TrxType {
    Payin,
    Payout,
}

impl TrxType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Payin => "payin",
            Self::Payout => "payout",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "payin" => Some(Self::Payin),
            "payout" => Some(Self::Payout),
            _ => None,
        }
    }
}

/// The seed's statuses (交易状态说明).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TrxStatus {
    Pending,
    Confirming,
    Success,
    Failed,
    Canceled,
    Expired,
}

impl TrxStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Confirming => "confirming",
            Self::Success => "success",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
            Self::Expired => "expired",
        }
    }

    pub fn is_final(self) -> bool {
        matches!(self, Self::Success | Self::Failed | Self::Canceled | Self::Expired)
    }
}

/// The deep links of a payin, one per app.
#[derive(Debug, Clone)]
pub(crate) struct Links {
    pub upi: String,
    pub paytm: String,
    pub phonepe: String,
}

/// A payin or a payout.
#[derive(Debug)]
pub(crate) struct Order {
    pub trx_id: String,
    pub trx_type: TrxType,
    pub req_id: String,
    pub trx_method: String,
    /// Payins only.
    pub trx_mode: Option<String>,
    pub ccy: String,
    pub amount_paise: u64,
    pub status: TrxStatus,
    pub notify_url: Option<String>,
    pub return_url: Option<String>,
    pub product_id: Option<String>,
    pub user_ip: Option<String>,
    /// Payouts only: the payee VPA.
    pub upi: Option<String>,
    /// Payins only.
    pub links: Option<Links>,
    pub note: String,
    pub created_ms: i64,
    pub updated_ms: i64,
    /// Payins only: when a pending payin turns `expired` (sandbox clock).
    pub expires_ms: Option<i64>,
    pub query_calls: u32,
    pub cancel_calls: u32,
    /// Notifications made for this order, oldest first.
    pub notify_ids: Vec<String>,
}

/// Work to start once the lock is released.
#[derive(Debug, Clone)]
pub(crate) enum Job {
    Deliver(String),
    SettlePayout { trx_id: String, after: Duration },
    FinishConfirming { trx_id: String, after: Duration },
}

/// Calls per endpoint (faulted or not), rejected credentials, and notification attempts.
#[derive(Debug, Default, Clone, Serialize)]
pub(crate) struct BestinCounters {
    pub payin: u64,
    pub payout: u64,
    pub cancel: u64,
    pub query: u64,
    pub balance: u64,
    /// Calls refused with 401 (credentials or timestamp).
    pub unauthorized: u64,
    /// Delivery attempts of notifications, including ones a fault dropped and resends.
    pub notify: u64,
    /// Deliveries the receiver acknowledged with 200 `success`.
    pub notify_delivered: u64,
    /// Views of the approval page.
    pub approve_page: u64,
}

/// The operations faults are queued for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum BestinEndpoint {
    Payin,
    Payout,
    Cancel,
    Query,
    Balance,
    /// The sandbox's outgoing notification deliveries.
    Notify,
}

impl BestinEndpoint {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Payin => "payin",
            Self::Payout => "payout",
            Self::Cancel => "cancel",
            Self::Query => "query",
            Self::Balance => "balance",
            Self::Notify => "notify",
        }
    }
}

impl fmt::Display for BestinEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum BestinFaultResponse {
    /// API: answer normally (after `delay_ms`). Notify: deliver normally (after `delay_ms`).
    #[default]
    Normal,
    /// API: an HTML error page with `status` (default 502).
    HttpStatus,
    /// API: `{"code": status, "msg": message, "data": null}` with HTTP `status` (default 502).
    Message,
    /// API: HTTP 200 with a JSON body cut off mid-way.
    Garbage,
    /// Notify: this attempt is not sent at all (counts as a failed attempt, so it is retried).
    Drop,
    /// Notify: this attempt is sent twice, back to back, with the same notify_id and body.
    Duplicate,
}

/// One queued misbehaviour, as posted to `/__sandbox/bestin/faults`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct BestinFault {
    pub endpoint: BestinEndpoint,
    #[serde(default)]
    pub delay_ms: u64,
    #[serde(default)]
    pub response: BestinFaultResponse,
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default = "default_true")]
    pub process: bool,
    #[serde(default = "default_one")]
    pub times: u32,
}

fn default_true() -> bool {
    true
}

fn default_one() -> u32 {
    1
}

impl BestinFault {
    /// Why the fault makes no sense, if it does not.
    pub fn problem(&self) -> Option<&'static str> {
        use BestinFaultResponse as R;
        if self.status.is_some_and(|s| !(100..=599).contains(&s)) {
            return Some("status must be 100..=599");
        }
        match (self.endpoint, self.response) {
            (BestinEndpoint::Notify, R::HttpStatus | R::Message | R::Garbage) => {
                Some("notify faults are normal (delay), drop or duplicate")
            }
            (e, R::Drop | R::Duplicate) if e != BestinEndpoint::Notify => {
                Some("drop and duplicate are for the notify endpoint")
            }
            _ => None,
        }
    }
}

/// Everything the sandbox's Bestin Pay knows.
#[derive(Debug)]
pub(crate) struct Bestin {
    pub creds: BestinCredentials,
    pub options: BestinOptions,
    pub http: reqwest::Client,
    pub orders: HashMap<String, Order>,
    pub by_req_id: HashMap<(TrxType, String), String>,
    /// Pending payins by expiry time.
    expiry_queue: BTreeSet<(i64, String)>,
    pub available_paise: u64,
    pub frozen_paise: u64,
    pub counters: BestinCounters,
    pub faults: HashMap<BestinEndpoint, VecDeque<BestinFault>>,
    pub notifications: HashMap<String, Notification>,
    pub attempts: Vec<DeliveryAttempt>,
    pub outbox: Vec<Job>,
}

impl Bestin {
    pub fn new(creds: BestinCredentials, options: BestinOptions) -> Self {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap_or_default();
        Self::with_client(creds, options, http)
    }

    fn with_client(creds: BestinCredentials, options: BestinOptions, http: reqwest::Client) -> Self {
        Self {
            available_paise: options.opening_balance_paise,
            creds,
            options,
            http,
            orders: HashMap::new(),
            by_req_id: HashMap::new(),
            expiry_queue: BTreeSet::new(),
            frozen_paise: 0,
            counters: BestinCounters::default(),
            faults: HashMap::new(),
            notifications: HashMap::new(),
            attempts: Vec::new(),
            outbox: Vec::new(),
        }
    }

    /// A fresh world with the same configuration (for `/__sandbox/reset`).
    pub fn fresh(&self) -> Self {
        Self::with_client(self.creds.clone(), self.options.clone(), self.http.clone())
    }

    pub fn next_fault(&mut self, endpoint: BestinEndpoint) -> Option<BestinFault> {
        let queue = self.faults.get_mut(&endpoint)?;
        let front = queue.front_mut()?;
        let fault = front.clone();
        front.times = front.times.saturating_sub(1);
        if front.times == 0 {
            queue.pop_front();
        }
        Some(fault)
    }

    fn bump(&mut self, endpoint: BestinEndpoint) {
        let c = &mut self.counters;
        let counter = match endpoint {
            BestinEndpoint::Payin => &mut c.payin,
            BestinEndpoint::Payout => &mut c.payout,
            BestinEndpoint::Cancel => &mut c.cancel,
            BestinEndpoint::Query => &mut c.query,
            BestinEndpoint::Balance => &mut c.balance,
            BestinEndpoint::Notify => &mut c.notify,
        };
        *counter += 1;
    }

    /// Expires every pending payin whose time has come.
    pub fn expire_due(&mut self, now_ms: i64) {
        while let Some((at, trx_id)) = self.expiry_queue.first().cloned() {
            if at > now_ms {
                break;
            }
            self.expiry_queue.pop_first();
            if self.orders.get(&trx_id).is_some_and(|o| o.status == TrxStatus::Pending) {
                tracing::info!(%trx_id, "payin expired");
                self.transition(&trx_id, TrxStatus::Expired, now_ms);
            }
        }
    }

    /// Moves an order to `to`, with its effect on the balance and a notification when the order
    /// has a notify_url. Final statuses never change; returns whether anything changed.
    pub fn transition(&mut self, trx_id: &str, to: TrxStatus, now_ms: i64) -> bool {
        let Some(order) = self.orders.get_mut(trx_id) else {
            return false;
        };
        let from = order.status;
        if from == to || from.is_final() {
            return false;
        }
        let amount = order.amount_paise;
        match (order.trx_type, to) {
            (TrxType::Payin, TrxStatus::Success) => {
                self.available_paise = self.available_paise.saturating_add(amount);
            }
            (TrxType::Payout, TrxStatus::Success) => {
                self.frozen_paise = self.frozen_paise.saturating_sub(amount);
            }
            (TrxType::Payout, TrxStatus::Failed | TrxStatus::Canceled | TrxStatus::Expired) => {
                self.frozen_paise = self.frozen_paise.saturating_sub(amount);
                self.available_paise = self.available_paise.saturating_add(amount);
            }
            _ => {}
        }
        if from == TrxStatus::Pending
            && let Some(at) = order.expires_ms
        {
            self.expiry_queue.remove(&(at, order.trx_id.clone()));
        }
        order.status = to;
        order.updated_ms = now_ms;
        tracing::info!(
            %trx_id,
            trx_type = order.trx_type.as_str(),
            from = from.as_str(),
            to = to.as_str(),
            "status changed"
        );
        let Some(url) = order.notify_url.clone() else {
            return true;
        };
        let notify_id = loop {
            let id = format!("N{}", ulid(now_ms));
            if !self.notifications.contains_key(&id) {
                break id;
            }
        };
        let mut data = Map::new();
        data.insert("mid".into(), self.creds.mid.clone().into());
        data.insert("trx_id".into(), order.trx_id.clone().into());
        data.insert("req_id".into(), order.req_id.clone().into());
        data.insert("trx_type".into(), order.trx_type.as_str().into());
        data.insert("status".into(), to.as_str().into());
        data.insert("amount".into(), format_minor(amount).into());
        data.insert("ccy".into(), order.ccy.clone().into());
        order.notify_ids.push(notify_id.clone());
        self.notifications.insert(
            notify_id.clone(),
            Notification {
                notify_id: notify_id.clone(),
                trx_id: trx_id.to_owned(),
                url,
                data,
                timestamp_ms: now_ms,
                body: None,
                attempts: 0,
                delivered: false,
                gave_up: false,
            },
        );
        self.outbox.push(Job::Deliver(notify_id));
        true
    }

    /// The order a query or cancel names, if it is of `trx_type`.
    fn find(&self, trx_type: TrxType, trx_id: Option<&str>, req_id: Option<&str>) -> Option<&str> {
        let by_trx = trx_id.map(|id| self.orders.get(id).filter(|o| o.trx_type == trx_type));
        let order = match (by_trx, req_id) {
            (Some(found), Some(req_id)) => found.filter(|o| o.req_id == req_id),
            (Some(found), None) => found,
            (None, Some(req_id)) => {
                self.by_req_id.get(&(trx_type, req_id.to_owned())).and_then(|id| self.orders.get(id))
            }
            (None, None) => None,
        };
        order.map(|o| o.trx_id.as_str())
    }
}

/// The outcome of the customer's (or a test's) decision on a payin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DecideError {
    NotFound,
    Expired,
    NotPending(TrxStatus),
}

/// Approve or decline a pending payin, as the customer's UPI app does.
pub(crate) fn decide(state: &mut State, trx_id: &str, approve: bool) -> Result<TrxStatus, DecideError> {
    let now = state.now_ms();
    let b = &mut state.bestin;
    b.expire_due(now);
    let order = b.orders.get(trx_id).filter(|o| o.trx_type == TrxType::Payin).ok_or(DecideError::NotFound)?;
    match order.status {
        TrxStatus::Pending => {}
        TrxStatus::Expired => return Err(DecideError::Expired),
        other => return Err(DecideError::NotPending(other)),
    }
    if !approve {
        b.transition(trx_id, TrxStatus::Failed, now);
        return Ok(TrxStatus::Failed);
    }
    if let Some(after) = b.options.confirm_delay {
        b.transition(trx_id, TrxStatus::Confirming, now);
        b.outbox.push(Job::FinishConfirming { trx_id: trx_id.to_owned(), after });
        return Ok(TrxStatus::Confirming);
    }
    b.transition(trx_id, TrxStatus::Success, now);
    Ok(TrxStatus::Success)
}

/// Settles a pending payout to `to` (success or failed).
pub(crate) fn settle_payout(state: &mut State, trx_id: &str, to: TrxStatus) -> Result<(), DecideError> {
    let now = state.now_ms();
    let b = &mut state.bestin;
    let order = b.orders.get(trx_id).filter(|o| o.trx_type == TrxType::Payout).ok_or(DecideError::NotFound)?;
    if order.status != TrxStatus::Pending {
        return Err(DecideError::NotPending(order.status));
    }
    b.transition(trx_id, to, now);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Locking, background work

/// Runs `f` under the lock, then starts whatever work it queued.
pub(crate) fn with_bestin<R>(app: &AppState, f: impl FnOnce(&mut State) -> R) -> R {
    let (result, jobs) = {
        let mut state = app.lock();
        let result = f(&mut state);
        (result, std::mem::take(&mut state.bestin.outbox))
    };
    spawn_jobs(app, jobs);
    result
}

/// Expires what is due now (the ticker, and after the clock moves).
pub(crate) fn sweep(app: &AppState) {
    with_bestin(app, |s| {
        let now = s.now_ms();
        s.bestin.expire_due(now);
    });
}

fn spawn_jobs(app: &AppState, jobs: Vec<Job>) {
    if jobs.is_empty() {
        return;
    }
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        tracing::error!("no tokio runtime: background work dropped");
        return;
    };
    for job in jobs {
        let app = app.clone();
        match job {
            Job::Deliver(notify_id) => {
                runtime.spawn(notify::deliver(app, notify_id));
            }
            Job::SettlePayout { trx_id, after } => {
                runtime.spawn(async move {
                    tokio::time::sleep(after).await;
                    with_bestin(&app, |s| {
                        let fails = s.bestin.orders.get(&trx_id).is_some_and(|o| o.upi.as_deref() == Some(FAIL_PAYEE));
                        let to = if fails { TrxStatus::Failed } else { TrxStatus::Success };
                        // Cancelled, settled by hand, or forgotten by a reset in the meantime: fine.
                        let _ = settle_payout(s, &trx_id, to);
                    });
                });
            }
            Job::FinishConfirming { trx_id, after } => {
                runtime.spawn(async move {
                    tokio::time::sleep(after).await;
                    with_bestin(&app, |s| {
                        let now = s.now_ms();
                        let confirming =
                            s.bestin.orders.get(&trx_id).is_some_and(|o| o.status == TrxStatus::Confirming);
                        if confirming {
                            s.bestin.transition(&trx_id, TrxStatus::Success, now);
                        }
                    });
                });
            }
        }
    }
}

/// Starts the ticker that expires pending payins (so their notifications go out even when nobody
/// looks at them).
pub(crate) fn spawn_ticker(app: &AppState) {
    let tick = app.lock().bestin.options.expiry_tick.max(Duration::from_millis(10));
    let app = app.clone();
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            sweep(&app);
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Routes and envelopes

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(&format!("{PREFIX}/payin"), api(payin))
        .route(&format!("{PREFIX}/payout"), api(payout))
        .route(&format!("{PREFIX}/cancel"), api(cancel))
        .route(&format!("{PREFIX}/query"), api(query))
        .route(&format!("{PREFIX}/balance"), api(balance))
        .route(PREFIX, any(not_found))
        .route(&format!("{PREFIX}/{{*rest}}"), any(not_found))
}

fn api<H, T>(handler: H) -> MethodRouter<AppState>
where
    H: Handler<T, AppState>,
    T: 'static,
{
    post(handler).fallback(method_not_allowed)
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "not found")
}

async fn method_not_allowed() -> Response {
    error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
}

/// The seed's error shape: `{"code": <HTTP status as a number>, "msg": ..., "data": null}`.
pub(crate) fn error(status: StatusCode, msg: &str) -> Response {
    (status, Json(json!({ "code": status.as_u16(), "msg": msg, "data": null }))).into_response()
}

/// A refused call: HTTP status and the seed's error envelope ([`error`]).
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    msg: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error(self.status, &self.msg)
    }
}

fn bad_request(msg: &str) -> ApiError {
    ApiError { status: StatusCode::BAD_REQUEST, msg: msg.to_owned() }
}

fn order_not_found() -> ApiError {
    ApiError { status: StatusCode::NOT_FOUND, msg: "order not found".to_owned() }
}

/// The seed's success shape for payin, payout, cancel and query: `"code": "0000"` (a string).
fn success(data: Value) -> Response {
    Json(json!({ "code": "0000", "msg": "Success", "data": data })).into_response()
}

fn fault_response(fault: &BestinFault) -> Response {
    let status = StatusCode::from_u16(fault.status.unwrap_or(502)).unwrap_or(StatusCode::BAD_GATEWAY);
    match fault.response {
        BestinFaultResponse::HttpStatus => {
            let line = format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or("Error"));
            (
                status,
                [(header::CONTENT_TYPE, "text/html")],
                format!("<html><head><title>{line}</title></head><body><center><h1>{line}</h1></center></body></html>"),
            )
                .into_response()
        }
        BestinFaultResponse::Message => error(status, fault.message.as_deref().unwrap_or("internal server error")),
        BestinFaultResponse::Garbage => {
            (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], r#"{"code":"00"#).into_response()
        }
        BestinFaultResponse::Normal | BestinFaultResponse::Drop | BestinFaultResponse::Duplicate => {
            error(StatusCode::INTERNAL_SERVER_ERROR, "internal server error")
        }
    }
}

/// Counts the call, then applies the next queued fault, if any, around `op` (same rules as the
/// bKash side: with `process` the operation happens before the delay).
async fn serve(app: &AppState, endpoint: BestinEndpoint, op: impl FnOnce(&mut State) -> Response) -> Response {
    let fault = {
        let mut state = app.lock();
        state.bestin.bump(endpoint);
        state.bestin.next_fault(endpoint)
    };
    let Some(fault) = fault else {
        return with_bestin(app, op);
    };
    tracing::info!(
        %endpoint,
        response = ?fault.response,
        delay_ms = fault.delay_ms,
        process = fault.process,
        "injecting fault"
    );
    let processed = (fault.process || fault.response == BestinFaultResponse::Normal).then(|| with_bestin(app, op));
    if fault.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(fault.delay_ms)).await;
    }
    match (fault.response, processed) {
        (BestinFaultResponse::Normal, Some(response)) => response,
        _ => fault_response(&fault),
    }
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The `x-app-id` / `x-secret` / `x-timestamp` check (认证); `Err` is the 401 to answer.
fn authenticate(state: &mut State, headers: &HeaderMap) -> Result<(), ApiError> {
    let result = check_auth(state, headers);
    if result.is_err() {
        state.bestin.counters.unauthorized += 1;
    }
    result.map_err(|msg| ApiError { status: StatusCode::UNAUTHORIZED, msg: msg.to_owned() })
}

fn check_auth(state: &State, headers: &HeaderMap) -> Result<(), &'static str> {
    let creds = &state.bestin.creds;
    if header_str(headers, "x-app-id") != Some(creds.app_id.as_str())
        || header_str(headers, "x-secret") != Some(creds.secret.as_str())
    {
        tracing::info!("rejected: wrong or missing x-app-id / x-secret");
        return Err("invalid credentials");
    }
    let Some(ts) = header_str(headers, "x-timestamp").map(str::trim).and_then(|t| t.parse::<i64>().ok()) else {
        tracing::info!("rejected: x-timestamp missing or not a number");
        return Err("invalid timestamp");
    };
    let now = if state.bestin.options.timestamp_uses_sandbox_clock {
        state.now_ms()
    } else {
        state.now_ms() - state.offset_ms
    };
    let window = i64::try_from(state.bestin.options.timestamp_window.as_millis()).unwrap_or(5 * MINUTE_MS);
    if now.abs_diff(ts) > window.unsigned_abs() {
        tracing::info!(skew_ms = now.saturating_sub(ts), "rejected: x-timestamp out of the window");
        return Err("timestamp expired");
    }
    Ok(())
}

type Body = Map<String, Value>;

/// An empty body counts as `{}`; anything but a JSON object is a 400.
fn parse_body(body: &[u8]) -> Result<Body, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(bad_request("request body must be a JSON object")),
        Err(_) => Err(bad_request("request body is not valid JSON")),
    }
}

/// An optional string field: absent, null and `""` are `None`; other types are a 400.
fn opt(body: &Body, key: &str) -> Result<Option<String>, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) if s.chars().count() > MAX_TEXT_LEN => Err(bad_request(&format!("{key} is too long"))),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad_request(&format!("{key} must be a string"))),
    }
}

fn required(body: &Body, key: &str) -> Result<String, ApiError> {
    opt(body, key)?.ok_or_else(|| bad_request(&format!("{key} is required")))
}

fn check_ccy(body: &Body) -> Result<String, ApiError> {
    let ccy = required(body, "ccy")?;
    if ccy != "INR" {
        return Err(bad_request("unsupported ccy: only INR"));
    }
    Ok(ccy)
}

fn check_amount(body: &Body) -> Result<u64, ApiError> {
    let amount = required(body, "amount")?;
    parse_amount(&amount)
        .filter(|&paise| paise > 0)
        .ok_or_else(|| bad_request("invalid amount: a positive decimal with at most 2 places"))
}

fn check_method(body: &Body) -> Result<String, ApiError> {
    let method = required(body, "trx_method")?;
    if method != "upi" {
        return Err(bad_request("unsupported trx_method: only upi"));
    }
    Ok(method)
}

fn check_req_id(body: &Body) -> Result<String, ApiError> {
    let req_id = required(body, "req_id")?;
    if req_id.chars().count() > MAX_REQ_ID_LEN {
        return Err(bad_request("req_id is too long (at most 64 characters)"));
    }
    Ok(req_id)
}

fn check_url(body: &Body, key: &str) -> Result<Option<String>, ApiError> {
    let Some(value) = opt(body, key)? else {
        return Ok(None);
    };
    let ok = url::Url::parse(&value).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
    if !ok {
        return Err(bad_request(&format!("invalid {key}: an absolute http(s) URL")));
    }
    Ok(Some(value))
}

fn check_ip(body: &Body) -> Result<Option<String>, ApiError> {
    let ip = opt(body, "user_ip")?;
    if ip.as_deref().is_some_and(|ip| ip.parse::<IpAddr>().is_err()) {
        return Err(bad_request("invalid user_ip"));
    }
    Ok(ip)
}

/// `name@handle`, as UPI VPAs are: letters, digits, `.`, `-`, `_` before the `@`, letters and
/// digits after it.
pub(crate) fn is_vpa(s: &str) -> bool {
    let Some((local, handle)) = s.split_once('@') else {
        return false;
    };
    (2..=256).contains(&local.len())
        && local.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        && (2..=64).contains(&handle.len())
        && handle.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Amounts in API answers: 4 decimals, as the seed's `"101.0000"`.
pub(crate) fn amount4(paise: u64) -> String {
    format!("{}00", format_minor(paise))
}

/// A ULID: 48 bits of milliseconds and 80 random bits in Crockford base32 (26 characters).
pub(crate) fn ulid(now_ms: i64) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let time = u128::from(u64::try_from(now_ms).unwrap_or(0) & ((1 << 48) - 1));
    let random = rand::rng().random::<u128>() & ((1 << 80) - 1);
    let value = (time << 80) | random;
    (0..26).rev().map(|i| char::from(ALPHABET[usize::try_from((value >> (5 * i)) & 31).unwrap_or(0)])).collect()
}

/// Percent-encodes a deep-link query value (unreserved characters and `@` stay as they are).
pub(crate) fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'@') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn make_links(options: &BestinOptions, trx_id: &str, amount_paise: u64, note: &str) -> Links {
    let query = format!(
        "pa={}&pn={}&am={}&cu=INR&tr={trx_id}&tn={}",
        encode(&options.merchant_vpa),
        encode(&options.merchant_name),
        format_minor(amount_paise),
        encode(note),
    );
    let phonepe_data = json!({
        "contact": {
            "cbsName": options.merchant_name,
            "nickName": options.merchant_name,
            "vpa": options.merchant_vpa,
            "type": "VPA",
        },
        "p2pPaymentCheckoutParams": {
            "note": note,
            "isByDefaultKnownContact": true,
            "enableSpeechToText": false,
            "allowAmountEdit": false,
            "showQrCodeOption": false,
            "disableViewHistory": true,
            "shouldShowUnsavedContactBanner": false,
            "isRecurring": false,
            "checkoutType": "DEFAULT",
            "transactionContext": "p2p",
            "initialAmount": amount_paise,
            "disableNotesEdit": true,
            "showKeyboard": false,
            "currency": "INR",
            "referenceId": trx_id,
            "shouldShowMaskedNumber": true,
        },
    });
    Links {
        upi: format!("upi://pay?{query}"),
        paytm: format!("paytmmp://cash_wallet?{query}&featuretype=money_transfer"),
        phonepe: format!("phonepe://native?data={}&id=p2ppayment", encode(&BASE64.encode(phonepe_data.to_string()))),
    }
}

/// Where a browser opens a `checkout` payin: the approval page for its `upi://` link.
pub(crate) fn checkout_url(public_url: &str, links: &Links) -> String {
    format!("{public_url}/upi/approve?link={}", encode(&links.upi))
}

/// The `data` of payin, payout, cancel and query answers.
pub(crate) fn order_data(public_url: &str, o: &Order) -> Value {
    let mut data = json!({
        "trx_id": o.trx_id,
        "trx_type": o.trx_type.as_str(),
        "req_id": o.req_id,
        "trx_method": o.trx_method,
        "ccy": o.ccy,
        "amount": amount4(o.amount_paise),
        "status": o.status.as_str(),
    });
    if let Value::Object(map) = &mut data {
        if let Some(mode) = &o.trx_mode {
            map.insert("trx_mode".into(), mode.clone().into());
        }
        if let Some(links) = &o.links {
            map.insert("link".into(), links.upi.clone().into());
            map.insert("links".into(), json!({ "paytm": links.paytm, "phonepe": links.phonepe, "upi": links.upi }));
            if o.trx_mode.as_deref() == Some("checkout") {
                map.insert("checkout_url".into(), checkout_url(public_url, links).into());
            }
        }
        if let Some(upi) = &o.upi {
            map.insert("upi".into(), upi.clone().into());
        }
    }
    data
}

fn new_trx_id(b: &Bestin, prefix: &str, now_ms: i64) -> String {
    loop {
        let id = format!("{prefix}{}", ulid(now_ms));
        if !b.orders.contains_key(&id) {
            return id;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Endpoints

#[tracing::instrument(skip_all)]
async fn payin(AxState(app): AxState<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    serve(&app, BestinEndpoint::Payin, |s| do_payin(s, &headers, &body).unwrap_or_else(IntoResponse::into_response))
        .await
}

fn do_payin(state: &mut State, headers: &HeaderMap, body: &[u8]) -> Result<Response, ApiError> {
    authenticate(state, headers)?;
    let body = parse_body(body)?;
    let req_id = check_req_id(&body)?;
    let ccy = check_ccy(&body)?;
    let amount_paise = check_amount(&body)?;
    let trx_method = check_method(&body)?;
    let trx_mode = required(&body, "trx_mode")?;
    if !matches!(trx_mode.as_str(), "api" | "checkout") {
        return Err(bad_request("invalid trx_mode: api or checkout"));
    }
    let notify_url = check_url(&body, "notify_url")?;
    let return_url = check_url(&body, "return_url")?;
    let product_id = opt(&body, "product_id")?;
    let user_ip = check_ip(&body)?;
    let now = state.now_ms();
    let public_url = state.public_url.clone();
    let b = &mut state.bestin;
    b.expire_due(now);
    if b.by_req_id.contains_key(&(TrxType::Payin, req_id.clone())) {
        tracing::info!(%req_id, "payin refused: duplicate req_id");
        return Err(bad_request("duplicate req_id"));
    }
    let trx_id = new_trx_id(b, "PI", now);
    let note = format!("Payment {req_id}");
    let links = make_links(&b.options, &trx_id, amount_paise, &note);
    let ttl = i64::try_from(b.options.payin_ttl.as_millis()).unwrap_or(i64::MAX);
    let expires_ms = now.saturating_add(ttl);
    let order = Order {
        trx_id: trx_id.clone(),
        trx_type: TrxType::Payin,
        req_id: req_id.clone(),
        trx_method,
        trx_mode: Some(trx_mode),
        ccy,
        amount_paise,
        status: TrxStatus::Pending,
        notify_url,
        return_url,
        product_id,
        user_ip,
        upi: None,
        links: Some(links),
        note,
        created_ms: now,
        updated_ms: now,
        expires_ms: Some(expires_ms),
        query_calls: 0,
        cancel_calls: 0,
        notify_ids: Vec::new(),
    };
    let data = order_data(&public_url, &order);
    tracing::info!(%trx_id, %req_id, amount = %format_minor(amount_paise), "payin created");
    b.expiry_queue.insert((expires_ms, trx_id.clone()));
    b.by_req_id.insert((TrxType::Payin, req_id), trx_id.clone());
    b.orders.insert(trx_id, order);
    Ok(success(data))
}

#[tracing::instrument(skip_all)]
async fn payout(AxState(app): AxState<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    serve(&app, BestinEndpoint::Payout, |s| do_payout(s, &headers, &body).unwrap_or_else(IntoResponse::into_response))
        .await
}

fn do_payout(state: &mut State, headers: &HeaderMap, body: &[u8]) -> Result<Response, ApiError> {
    authenticate(state, headers)?;
    let body = parse_body(body)?;
    let req_id = check_req_id(&body)?;
    let ccy = check_ccy(&body)?;
    let amount_paise = check_amount(&body)?;
    let trx_method = check_method(&body)?;
    let upi = required(&body, "upi")?;
    if !is_vpa(&upi) {
        return Err(bad_request("invalid upi: a UPI address like name@bank"));
    }
    let user_ip = check_ip(&body)?;
    let notify_url = check_url(&body, "notify_url")?;
    let now = state.now_ms();
    let public_url = state.public_url.clone();
    let b = &mut state.bestin;
    if b.by_req_id.contains_key(&(TrxType::Payout, req_id.clone())) {
        tracing::info!(%req_id, "payout refused: duplicate req_id");
        return Err(bad_request("duplicate req_id"));
    }
    if amount_paise > b.available_paise {
        tracing::info!(%req_id, "payout refused: insufficient balance");
        return Err(bad_request("insufficient balance"));
    }
    b.available_paise -= amount_paise;
    b.frozen_paise += amount_paise;
    let trx_id = new_trx_id(b, "PO", now);
    let order = Order {
        trx_id: trx_id.clone(),
        trx_type: TrxType::Payout,
        req_id: req_id.clone(),
        trx_method,
        trx_mode: None,
        ccy,
        amount_paise,
        status: TrxStatus::Pending,
        notify_url,
        return_url: None,
        product_id: None,
        user_ip,
        upi: Some(upi.clone()),
        links: None,
        note: String::new(),
        created_ms: now,
        updated_ms: now,
        expires_ms: None,
        query_calls: 0,
        cancel_calls: 0,
        notify_ids: Vec::new(),
    };
    let data = order_data(&public_url, &order);
    tracing::info!(%trx_id, %req_id, amount = %format_minor(amount_paise), "payout created");
    if upi != PENDING_PAYEE {
        b.outbox.push(Job::SettlePayout { trx_id: trx_id.clone(), after: b.options.payout_settle_delay });
    }
    b.by_req_id.insert((TrxType::Payout, req_id), trx_id.clone());
    b.orders.insert(trx_id, order);
    Ok(success(data))
}

fn check_trx_type(body: &Body) -> Result<TrxType, ApiError> {
    let trx_type = required(body, "trx_type")?;
    TrxType::parse(&trx_type).ok_or_else(|| bad_request("invalid trx_type: payin or payout"))
}

#[tracing::instrument(skip_all)]
async fn cancel(AxState(app): AxState<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    serve(&app, BestinEndpoint::Cancel, |s| do_cancel(s, &headers, &body).unwrap_or_else(IntoResponse::into_response))
        .await
}

fn do_cancel(state: &mut State, headers: &HeaderMap, body: &[u8]) -> Result<Response, ApiError> {
    authenticate(state, headers)?;
    let body = parse_body(body)?;
    let trx_id = required(&body, "trx_id")?;
    let trx_type = check_trx_type(&body)?;
    let now = state.now_ms();
    let public_url = state.public_url.clone();
    let b = &mut state.bestin;
    b.expire_due(now);
    let Some(id) = b.find(trx_type, Some(&trx_id), None).map(str::to_owned) else {
        return Err(order_not_found());
    };
    let Some(order) = b.orders.get_mut(&id) else {
        return Err(order_not_found());
    };
    order.cancel_calls += 1;
    match order.status {
        TrxStatus::Pending => {}
        TrxStatus::Confirming => return Err(bad_request("order is confirming")),
        _ => return Err(bad_request("order is final")),
    }
    b.transition(&id, TrxStatus::Canceled, now);
    let order = b.orders.get(&id).ok_or_else(order_not_found)?;
    Ok(success(order_data(&public_url, order)))
}

#[tracing::instrument(skip_all)]
async fn query(AxState(app): AxState<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    serve(&app, BestinEndpoint::Query, |s| do_query(s, &headers, &body).unwrap_or_else(IntoResponse::into_response))
        .await
}

fn do_query(state: &mut State, headers: &HeaderMap, body: &[u8]) -> Result<Response, ApiError> {
    authenticate(state, headers)?;
    let body = parse_body(body)?;
    let trx_id = opt(&body, "trx_id")?;
    let req_id = opt(&body, "req_id")?;
    if trx_id.is_none() && req_id.is_none() {
        return Err(bad_request("req_id or trx_id is required"));
    }
    let trx_type = check_trx_type(&body)?;
    let now = state.now_ms();
    let public_url = state.public_url.clone();
    let b = &mut state.bestin;
    b.expire_due(now);
    let Some(id) = b.find(trx_type, trx_id.as_deref(), req_id.as_deref()).map(str::to_owned) else {
        return Err(order_not_found());
    };
    let order = b.orders.get_mut(&id).ok_or_else(order_not_found)?;
    order.query_calls += 1;
    Ok(success(order_data(&public_url, order)))
}

#[tracing::instrument(skip_all)]
async fn balance(AxState(app): AxState<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    serve(&app, BestinEndpoint::Balance, |s| do_balance(s, &headers, &body).unwrap_or_else(IntoResponse::into_response))
        .await
}

fn do_balance(state: &mut State, headers: &HeaderMap, body: &[u8]) -> Result<Response, ApiError> {
    authenticate(state, headers)?;
    parse_body(body)?;
    // The seed's /balance answers `"code": 200` (a number) and `"msg": "success"`.
    Ok(Json(json!({ "code": 200, "msg": "success", "data": balance_data(&state.bestin) })).into_response())
}

pub(crate) fn balance_data(b: &Bestin) -> Value {
    json!([{
        "ccy": "INR",
        "balance": format_minor(b.available_paise + b.frozen_paise),
        "available_balance": format_minor(b.available_paise),
        "frozen_balance": format_minor(b.frozen_paise),
    }])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulids_are_26_crockford_characters_in_time_order() {
        let a = ulid(1_763_000_000_000);
        let b = ulid(1_763_000_000_001);
        assert_eq!(a.len(), 26);
        assert!(a.bytes().all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()));
        assert!(!a.contains(['I', 'L', 'O', 'U']));
        assert!(a[..10] < b[..10]);
        // The seed's example id starts with the same time prefix shape.
        assert!(a.starts_with("01K"), "{a}");
    }

    #[test]
    fn vpas_need_a_name_and_a_handle() {
        for good in ["name@bank", "deshpay.sandbox@bestin", "98765-43210@ybl", FAIL_PAYEE] {
            assert!(is_vpa(good), "{good}");
        }
        for bad in ["", "name", "@bank", "n@bank", "name@", "na me@bank", "a@b@c", "1234****@ibl"] {
            assert!(!is_vpa(bad), "{bad}");
        }
    }

    #[test]
    fn amounts_have_four_decimals_in_answers() {
        assert_eq!(amount4(10_100), "101.0000");
        assert_eq!(amount4(5), "0.0500");
    }

    #[test]
    fn deep_link_values_are_percent_encoded() {
        assert_eq!(encode("DeshPay Sandbox"), "DeshPay%20Sandbox");
        assert_eq!(encode("a@b.c"), "a@b.c");
        assert_eq!(encode("x+y/z="), "x%2By%2Fz%3D");
    }
}
