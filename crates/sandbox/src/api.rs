//! bKash's tokenized checkout API (v1.2.0-beta, mode 0011) and the v2 refund endpoints.
//!
//! Mirrors developer.bka.sh "Grant Token", "Refresh Token", "Create Payment", "Execute Payment",
//! "Query Payment", "Search Transaction", "Refund Transaction" (v1.2.0-beta and v2), with the
//! status messages of developer.bka.sh/docs/error-codes. Gateway-level failures (bad token, unknown
//! path, rate limit) answer the way AWS API Gateway in front of bKash does: `{"message": ...}`.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::handler::Handler;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, any, post};
use axum::{Json, Router};
use serde_json::{Map, Value, json};

use crate::state::{
    AppState, DAY_MS, DEBIT_BLOCK_WALLET, Endpoint, Fault, FaultResponse, HOUR_MS, INSUFFICIENT_BALANCE_WALLET,
    IssuedToken, MINUTE_MS, PageStep, Payment, PaymentStatus, Refund, State, bkash_time, format_minor, parse_amount,
    random_alnum,
};

const V1: &str = "/v1.2.0-beta/tokenized/checkout";
const V2: &str = "/v2/tokenized-checkout";
const ID_TOKEN_LIFETIME_MS: i64 = HOUR_MS;
const REFRESH_TOKEN_LIFETIME_MS: i64 = 28 * DAY_MS;
const GRANTS_PER_HOUR: usize = 2;
const PAYMENT_LIFETIME_MS: i64 = DAY_MS;
const DUPLICATE_WINDOW_MS: i64 = 5 * MINUTE_MS;
const MAX_REFUNDS: usize = 10;
const V1_REFUND_WINDOW_MS: i64 = 15 * DAY_MS;
const V2_REFUND_WINDOW_MS: i64 = 60 * DAY_MS;
const ORGANIZATION_SHORT_CODE: &str = "50022";

/// A bKash error: code and bKash's own message.
type BkError = (&'static str, &'static str);

const MANDATORY_MISSING: BkError = ("2065", "Mendatory field missing");
const INVALID_BODY: BkError = ("2025", "Invalid request body");
const INVALID_PAYMENT_ID: BkError = ("2002", "Invalid Payment ID");

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(&format!("{V1}/token/grant"), api(grant))
        .route(&format!("{V1}/token/refresh"), api(refresh))
        .route(&format!("{V1}/create"), api(create))
        .route(&format!("{V1}/execute"), api(execute))
        .route(&format!("{V1}/payment/status"), api(query))
        .route(&format!("{V1}/general/searchTransaction"), api(search))
        // bKash's own Node sample calls this spelling.
        .route(&format!("{V1}/general/search/searchTransaction"), api(search))
        .route(&format!("{V1}/payment/refund"), api(refund_v1))
        .route(&format!("{V2}/refund/payment/transaction"), api(refund_v2))
        .route(&format!("{V2}/refund/payment/status"), api(refund_status_v2))
        .route("/v1.2.0-beta", any(missing_authentication_token))
        .route("/v1.2.0-beta/{*rest}", any(missing_authentication_token))
        .route("/v2", any(missing_authentication_token))
        .route("/v2/{*rest}", any(missing_authentication_token))
}

/// Every bKash operation is a POST; other methods get the gateway's answer for an unknown route.
fn api<H, T>(handler: H) -> MethodRouter<AppState>
where
    H: Handler<T, AppState>,
    T: 'static,
{
    post(handler).fallback(missing_authentication_token)
}

/// What API Gateway answers for a path (or method) it has no route for.
pub(crate) async fn missing_authentication_token() -> Response {
    gateway(StatusCode::FORBIDDEN, "Missing Authentication Token")
}

// ---------------------------------------------------------------------------------------------
// Response shapes

fn gateway(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "message": message }))).into_response()
}

fn unauthorized() -> Response {
    gateway(StatusCode::UNAUTHORIZED, "Unauthorized")
}

/// bKash answers its own errors with HTTP 200 and the status envelope.
fn bk_error((code, message): BkError) -> Response {
    Json(json!({ "statusCode": code, "statusMessage": message })).into_response()
}

fn bk_ok(mut body: Map<String, Value>) -> Response {
    body.insert("statusCode".into(), "0000".into());
    body.insert("statusMessage".into(), "Successful".into());
    Json(Value::Object(body)).into_response()
}

/// v2 errors: HTTP 400 with both languages.
fn v2_error((code, message): BkError) -> Response {
    let bn = match code {
        "2002" => "পেমেন্ট আইডি সঠিক নয়",
        "2025" => "অনুরোধটি সঠিক নয়",
        "2026" => "রিফান্ডের পরিমাণ মূল লেনদেনের পরিমাণের চেয়ে বেশি হতে পারবে না",
        "2065" => "প্রয়োজনীয় তথ্য অনুপস্থিত",
        "2071" => "নির্দিষ্ট দিনের পরে রিফান্ড করা যাবে না",
        "2072" => "রিফান্ডের পরিমাণ সঠিক নয়",
        "2073" => "এসকেইউ সঠিক নয়",
        "2074" => "লেনদেনটি রিভার্স করা যাবে না",
        "2075" => "এসকেইউ অক্ষরের সীমা অতিক্রম করেছে",
        "2076" => "কারণের অক্ষরের সীমা অতিক্রম করেছে",
        "2077" => "ট্রানজেকশন আইডি সঠিক নয়",
        _ => "প্রক্রিয়াটি সম্পন্ন করা যায়নি",
    };
    (
        StatusCode::BAD_REQUEST,
        Json(json!({
            "internalCode": code,
            "externalCode": code,
            "errorMessageEn": message,
            "errorMessageBn": bn,
        })),
    )
        .into_response()
}

fn fault_response(fault: &Fault) -> Response {
    let status = StatusCode::from_u16(fault.status.unwrap_or(502)).unwrap_or(StatusCode::BAD_GATEWAY);
    match fault.response {
        FaultResponse::HttpStatus => {
            let line = format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or("Error"));
            (
                status,
                [(header::CONTENT_TYPE, "text/html")],
                format!("<html><head><title>{line}</title></head><body><h1>{line}</h1></body></html>"),
            )
                .into_response()
        }
        FaultResponse::Message => gateway(status, fault.message.as_deref().unwrap_or("Internal server error")),
        // A body cut off mid-stream, still labelled as JSON.
        FaultResponse::Garbage => {
            (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], r#"{"statusCode":"00"#).into_response()
        }
        FaultResponse::Normal => gateway(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error"),
        FaultResponse::Code => Json(json!({
            "statusCode": fault.code.as_deref().unwrap_or("2003"),
            "statusMessage": fault.message.as_deref().unwrap_or("Process failed"),
        }))
        .into_response(),
    }
}

// ---------------------------------------------------------------------------------------------
// Plumbing shared by every endpoint

/// Counts the call, then applies the next queued fault, if any, around `op`.
///
/// With `process` the operation happens *before* the delay, so a client that gives up after its
/// timeout finds the result already there when it falls back to Query. The mutex is never held
/// while sleeping.
async fn serve(app: &AppState, endpoint: Endpoint, op: impl FnOnce(&mut State) -> Response) -> Response {
    let fault = {
        let mut state = app.lock();
        state.counters.bump(endpoint);
        state.next_fault(endpoint)
    };
    let Some(fault) = fault else {
        return op(&mut app.lock());
    };
    tracing::info!(
        %endpoint,
        response = ?fault.response,
        delay_ms = fault.delay_ms,
        process = fault.process,
        "injecting fault"
    );
    let processed = (fault.process || fault.response == FaultResponse::Normal).then(|| op(&mut app.lock()));
    if fault.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(fault.delay_ms)).await;
    }
    match (fault.response, processed) {
        (FaultResponse::Normal, Some(response)) => response,
        _ => fault_response(&fault),
    }
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The gateway's check of `Authorization` (the bare id_token) and `X-APP-Key`; returns the app key
/// (`None` means HTTP 401).
fn authorize(state: &State, headers: &HeaderMap) -> Option<String> {
    let token = header_str(headers, header::AUTHORIZATION.as_str());
    let app_key = header_str(headers, "x-app-key");
    let (Some(token), Some(app_key)) = (token, app_key) else {
        tracing::info!("rejected: Authorization or X-APP-Key header missing");
        return None;
    };
    if token.len() > 7 && token[..7].eq_ignore_ascii_case("bearer ") {
        tracing::info!("rejected: bKash expects the bare id_token, not a Bearer prefix");
        return None;
    }
    match state.id_tokens.get(token) {
        Some(t) if t.app_key != app_key => {
            tracing::info!("rejected: X-APP-Key does not match the token's app key");
            None
        }
        Some(t) if t.expires_ms <= state.now_ms() => {
            tracing::info!("rejected: id_token expired");
            None
        }
        Some(_) => Some(app_key.to_owned()),
        None => {
            tracing::info!("rejected: unknown id_token");
            None
        }
    }
}

type Body = Map<String, Value>;

/// An empty body counts as `{}` (so it gives "field missing"); anything but a JSON object is 2025.
fn parse_body(body: &[u8]) -> Result<Body, BkError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(INVALID_BODY),
    }
}

/// A non-empty string field; numbers are taken as written since some clients send them.
fn text(body: &Body, key: &str) -> Option<String> {
    match body.get(key)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn obj(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// Tokens

#[tracing::instrument(skip_all)]
async fn grant(AxState(app): AxState<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    serve(&app, Endpoint::Grant, |s| do_grant(s, &headers, &body)).await
}

/// Checks the `username`/`password` headers and the app key and secret in the body.
fn check_credentials(state: &State, headers: &HeaderMap, body: &Body) -> Result<String, BkError> {
    let creds = &state.creds;
    if header_str(headers, "username") != Some(creds.username.as_str()) {
        return Err(("9999", "Username does not exist"));
    }
    if header_str(headers, "password") != Some(creds.password.as_str()) {
        return Err(("9999", "Invalid username or password"));
    }
    let app_key = text(body, "app_key");
    if app_key.as_deref() != Some(creds.app_key.as_str())
        || text(body, "app_secret").as_deref() != Some(creds.app_secret.as_str())
    {
        return Err(("2001", "Invalid App Key"));
    }
    Ok(creds.app_key.clone())
}

fn do_grant(state: &mut State, headers: &HeaderMap, body: &[u8]) -> Response {
    let body = match parse_body(body) {
        Ok(b) => b,
        Err(e) => return bk_error(e),
    };
    let app_key = match check_credentials(state, headers, &body) {
        Ok(k) => k,
        Err(e) => {
            tracing::info!(code = e.0, "grant refused");
            return bk_error(e);
        }
    };
    let now = state.now_ms();
    let log = state.grants.entry(app_key.clone()).or_default();
    let blocked = log.blocked_until_ms.is_some_and(|until| until > now);
    if !blocked {
        log.successes_ms.retain(|&t| now - t < HOUR_MS);
        if log.successes_ms.len() >= GRANTS_PER_HOUR {
            // bKash blocks grant calls for a full hour once the limit is hit.
            log.blocked_until_ms = Some(now + HOUR_MS);
        }
    }
    if log.blocked_until_ms.is_some_and(|until| until > now) {
        state.counters.grant_rejected += 1;
        tracing::warn!("grant rate limit: more than {GRANTS_PER_HOUR} grants in an hour");
        return gateway(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests");
    }
    log.successes_ms.push(now);
    let id_token = issue_id_token(state, &app_key, now);
    let refresh_token = random_alnum(48);
    state
        .refresh_tokens
        .insert(refresh_token.clone(), IssuedToken { app_key, expires_ms: now + REFRESH_TOKEN_LIFETIME_MS });
    tracing::info!("token granted");
    token_response(id_token, refresh_token)
}

#[tracing::instrument(skip_all)]
async fn refresh(AxState(app): AxState<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    serve(&app, Endpoint::Refresh, |s| do_refresh(s, &headers, &body)).await
}

fn do_refresh(state: &mut State, headers: &HeaderMap, body: &[u8]) -> Response {
    let body = match parse_body(body) {
        Ok(b) => b,
        Err(e) => return bk_error(e),
    };
    let app_key = match check_credentials(state, headers, &body) {
        Ok(k) => k,
        Err(e) => return bk_error(e),
    };
    let Some(refresh_token) = text(&body, "refresh_token") else {
        return bk_error(MANDATORY_MISSING);
    };
    let now = state.now_ms();
    let valid = state.refresh_tokens.get(&refresh_token).is_some_and(|t| t.app_key == app_key && t.expires_ms > now);
    if !valid {
        tracing::info!("refresh refused: unknown or expired refresh_token");
        return bk_error(("9999", "Invalid refresh token"));
    }
    // Older id_tokens stay valid until they expire; the refresh_token keeps its original expiry.
    let id_token = issue_id_token(state, &app_key, now);
    tracing::info!("token refreshed");
    token_response(id_token, refresh_token)
}

fn issue_id_token(state: &mut State, app_key: &str, now: i64) -> String {
    let token = jwt_like(now);
    state
        .id_tokens
        .insert(token.clone(), IssuedToken { app_key: app_key.to_owned(), expires_ms: now + ID_TOKEN_LIFETIME_MS });
    token
}

fn token_response(id_token: String, refresh_token: String) -> Response {
    bk_ok(obj(json!({
        "id_token": id_token,
        "token_type": "Bearer",
        "expires_in": ID_TOKEN_LIFETIME_MS / 1000,
        "refresh_token": refresh_token,
    })))
}

/// Looks like bKash's Cognito JWT (header.payload.signature, base64url) but is only a random handle.
fn jwt_like(now_ms: i64) -> String {
    let iat = now_ms / 1000;
    let header = json!({ "kid": "deshpay-sandbox", "alg": "RS256" });
    let payload = json!({
        "sub": random_alnum(24),
        "iss": "deshpay-sandbox",
        "token_use": "id",
        "auth_time": iat,
        "iat": iat,
        "exp": iat + ID_TOKEN_LIFETIME_MS / 1000,
        "jti": random_alnum(24),
    });
    format!(
        "{}.{}.{}",
        base64url(header.to_string().as_bytes()),
        base64url(payload.to_string().as_bytes()),
        random_alnum(86)
    )
}

fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            let index = (n >> (18 - 6 * i)) & 63;
            out.push(char::from(ALPHABET[index as usize]));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Create, execute, query, search

#[tracing::instrument(skip_all)]
async fn create(AxState(app): AxState<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    serve(&app, Endpoint::Create, |s| do_create(s, &headers, &body)).await
}

struct CreateRequest {
    payer_reference: String,
    callback_url: String,
    amount: String,
    amount_minor: u64,
    currency: String,
    intent: String,
    invoice: String,
}

fn validate_create(body: &Body) -> Result<CreateRequest, BkError> {
    const MANDATORY: [&str; 7] =
        ["mode", "payerReference", "callbackURL", "amount", "currency", "intent", "merchantInvoiceNumber"];
    let mut fields = MANDATORY.iter().map(|k| text(body, k));
    let mut next = || fields.next().flatten().ok_or(MANDATORY_MISSING);
    let (mode, payer_reference, callback_url, amount, currency, intent, invoice) =
        (next()?, next()?, next()?, next()?, next()?, next()?, next()?);
    if mode != "0011" {
        return Err(("2063", "Mode is not valid as per request data"));
    }
    let amount_minor = parse_amount(&amount).filter(|&minor| minor >= 100).ok_or(("2006", "Invalid amount"))?;
    if currency != "BDT" {
        return Err(("2007", "Invalid currency"));
    }
    if intent != "sale" {
        return Err(("2008", "Invalid intent"));
    }
    let callback_ok =
        url::Url::parse(&callback_url).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
    if !callback_ok {
        return Err(("2049", "Invalid Merchant Callback URL"));
    }
    if invoice.chars().count() > 255 || invoice.contains(['<', '>', '&']) {
        return Err(("2031", "Invalid merchant invoice number"));
    }
    Ok(CreateRequest { payer_reference, callback_url, amount, amount_minor, currency, intent, invoice })
}

fn do_create(state: &mut State, headers: &HeaderMap, body: &[u8]) -> Response {
    let Some(app_key) = authorize(state, headers) else {
        return unauthorized();
    };
    let request = match parse_body(body).and_then(|b| validate_create(&b)) {
        Ok(r) => r,
        Err(e) => {
            tracing::info!(code = e.0, "create refused");
            return bk_error(e);
        }
    };
    let now = state.now_ms();
    let payment = Payment {
        id: state.new_payment_id(),
        hash: random_alnum(32),
        signature: random_alnum(10),
        app_key,
        payer_reference: request.payer_reference,
        callback_url: request.callback_url,
        amount: request.amount,
        amount_minor: request.amount_minor,
        currency: request.currency,
        intent: request.intent,
        invoice: request.invoice,
        created_ms: now,
        expires_ms: now + PAYMENT_LIFETIME_MS,
        status: PaymentStatus::Initiated,
        step: PageStep::Wallet,
        wallet: None,
        otp_failures: 0,
        pin_failures: 0,
        verified: false,
        execute_calls: 0,
        trx_id: None,
        executed_ms: None,
        refunds: Vec::new(),
        reserved_trx_id: None,
        ipn_announced: false,
    };
    tracing::info!(payment_id = %payment.id, amount = %payment.amount, "payment created");
    let response = bk_ok(obj(json!({
        "paymentID": payment.id,
        "bkashURL": payment.bkash_url(&state.public_url),
        "callbackURL": payment.callback_url,
        "successCallbackURL": payment.callback_with_status("success"),
        "failureCallbackURL": payment.callback_with_status("failure"),
        "cancelledCallbackURL": payment.callback_with_status("cancel"),
        "amount": payment.amount,
        "intent": payment.intent,
        "currency": payment.currency,
        "paymentCreateTime": bkash_time(payment.created_ms),
        "transactionStatus": "Initiated",
        "merchantInvoiceNumber": payment.invoice,
    })));
    state.payments.insert(payment.id.clone(), payment);
    response
}

#[tracing::instrument(skip_all)]
async fn execute(AxState(app): AxState<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    // Every call that names a known payment counts for it, even one that then gets a fault.
    if let Some(id) = parse_body(&body).ok().and_then(|b| text(&b, "paymentID"))
        && let Some(payment) = app.lock().payments.get_mut(&id)
    {
        payment.execute_calls += 1;
    }
    let response = serve(&app, Endpoint::Execute, |s| do_execute(s, &headers, &body)).await;
    if let Some(id) = parse_body(&body).ok().and_then(|b| text(&b, "paymentID")) {
        crate::ipn::announce(&app, &id);
    }
    response
}

fn do_execute(state: &mut State, headers: &HeaderMap, body: &[u8]) -> Response {
    let Some(app_key) = authorize(state, headers) else {
        return unauthorized();
    };
    let id = match parse_body(body).and_then(|b| text(&b, "paymentID").ok_or(MANDATORY_MISSING)) {
        Ok(id) => id,
        Err(e) => return bk_error(e),
    };
    let now = state.now_ms();
    let Some(payment) = state.payments.get(&id).filter(|p| p.app_key == app_key) else {
        return bk_error(INVALID_PAYMENT_ID);
    };
    match payment.status {
        PaymentStatus::Completed => {
            return bk_error(("2062", "The payment has already been completed"));
        }
        PaymentStatus::Approved if now < payment.expires_ms => {}
        _ => return bk_error(("2056", "Invalid Payment State")),
    }
    let wallet = payment.wallet.clone().unwrap_or_default();
    let duplicate = state.payments.values().any(|other| {
        other.status == PaymentStatus::Completed
            && other.wallet.as_deref() == Some(wallet.as_str())
            && other.amount_minor == payment.amount_minor
            && other.executed_ms.is_some_and(|t| now - t < DUPLICATE_WINDOW_MS)
    });
    let failure = if wallet == INSUFFICIENT_BALANCE_WALLET {
        Some(("2023", "Insufficient Balance"))
    } else if wallet == DEBIT_BLOCK_WALLET {
        Some(("2037", "The account of the debit party is in a state which prohibits execution of this transaction"))
    } else if duplicate {
        Some(("2029", "Duplicate for all transactions"))
    } else {
        None
    };
    let reserved = payment.reserved_trx_id.clone();
    let trx_id = if failure.is_none() { Some(reserved.unwrap_or_else(|| state.new_trx_id())) } else { None };
    let Some(payment) = state.payments.get_mut(&id) else {
        return bk_error(INVALID_PAYMENT_ID);
    };
    let Some(trx_id) = trx_id else {
        payment.status = PaymentStatus::Failed;
        let error = failure.unwrap_or(("2003", "Process failed"));
        tracing::info!(payment_id = %id, code = error.0, "execute failed");
        return bk_error(error);
    };
    payment.status = PaymentStatus::Completed;
    payment.trx_id = Some(trx_id.clone());
    payment.executed_ms = Some(now);
    let response = bk_ok(obj(json!({
        "paymentID": payment.id,
        "payerReference": payment.payer_reference,
        "customerMsisdn": wallet,
        "trxID": trx_id,
        "amount": payment.amount,
        "transactionStatus": "Completed",
        "paymentExecuteTime": bkash_time(now),
        "currency": payment.currency,
        "intent": payment.intent,
        "merchantInvoiceNumber": payment.invoice,
    })));
    state.trx_index.insert(trx_id.clone(), id.clone());
    tracing::info!(payment_id = %id, trx_id = %trx_id, "payment completed");
    response
}

#[tracing::instrument(skip_all)]
async fn query(AxState(app): AxState<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    serve(&app, Endpoint::Query, |s| do_query(s, &headers, &body)).await
}

fn do_query(state: &mut State, headers: &HeaderMap, body: &[u8]) -> Response {
    let Some(app_key) = authorize(state, headers) else {
        return unauthorized();
    };
    let id = match parse_body(body).and_then(|b| text(&b, "paymentID").ok_or(MANDATORY_MISSING)) {
        Ok(id) => id,
        Err(e) => return bk_error(e),
    };
    let Some(p) = state.payments.get(&id).filter(|p| p.app_key == app_key) else {
        return bk_error(INVALID_PAYMENT_ID);
    };
    // Only Completed means paid; the page's failures, cancels and failed executes read "Failed".
    let transaction_status = match p.status {
        PaymentStatus::Initiated | PaymentStatus::Approved => "Initiated",
        PaymentStatus::Completed => "Completed",
        PaymentStatus::Failed | PaymentStatus::Cancelled => "Failed",
    };
    let mut body = obj(json!({
        "paymentID": p.id,
        "mode": "0011",
        "paymentCreateTime": bkash_time(p.created_ms),
        "amount": p.amount,
        "currency": p.currency,
        "intent": p.intent,
        "merchantInvoice": p.invoice,
        "transactionStatus": transaction_status,
        "verificationStatus": if p.verified { "Complete" } else { "Incomplete" },
        "payerReference": p.payer_reference,
    }));
    if let Some(t) = p.executed_ms {
        body.insert("paymentExecuteTime".into(), bkash_time(t).into());
    }
    if let Some(trx_id) = &p.trx_id {
        body.insert("trxID".into(), trx_id.clone().into());
    }
    if let Some(wallet) = &p.wallet {
        body.insert("customerMsisdn".into(), wallet.clone().into());
    }
    bk_ok(body)
}

#[tracing::instrument(skip_all)]
async fn search(AxState(app): AxState<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    serve(&app, Endpoint::Search, |s| do_search(s, &headers, &body)).await
}

fn do_search(state: &mut State, headers: &HeaderMap, body: &[u8]) -> Response {
    let Some(app_key) = authorize(state, headers) else {
        return unauthorized();
    };
    let trx_id = match parse_body(body).and_then(|b| text(&b, "trxID").ok_or(MANDATORY_MISSING)) {
        Ok(id) => id,
        Err(e) => return bk_error(e),
    };
    let payment = state.trx_index.get(&trx_id).and_then(|id| state.payments.get(id)).filter(|p| p.app_key == app_key);
    let Some(p) = payment else {
        return bk_error(("2033", "Transaction not found"));
    };
    bk_ok(obj(json!({
        "trxID": trx_id,
        "initiationTime": bkash_time(p.created_ms),
        "completedTime": bkash_time(p.executed_ms.unwrap_or(p.created_ms)),
        "transactionType": "bKash Tokenized Checkout via API",
        "customerMsisdn": p.wallet.clone().unwrap_or_default(),
        "transactionStatus": "Completed",
        "amount": p.amount,
        "currency": p.currency,
        "organizationShortCode": ORGANIZATION_SHORT_CODE,
    })))
}

// ---------------------------------------------------------------------------------------------
// Refunds: v1.2.0-beta and v2 share one ledger per transaction

struct RefundRequest {
    payment_id: Option<String>,
    trx_id: Option<String>,
    amount: Option<String>,
    sku: Option<String>,
    reason: Option<String>,
}

/// The completed payment that `payment_id` and `trx_id` name together.
fn find_refundable<'s>(
    state: &'s State,
    app_key: &str,
    payment_id: Option<&str>,
    trx_id: Option<&str>,
) -> Result<&'s Payment, BkError> {
    let (Some(payment_id), Some(trx_id)) = (payment_id, trx_id) else {
        return Err(MANDATORY_MISSING);
    };
    let payment = state.payments.get(payment_id).filter(|p| p.app_key == app_key).ok_or(INVALID_PAYMENT_ID)?;
    if payment.status != PaymentStatus::Completed || payment.trx_id.as_deref() != Some(trx_id) {
        return Err(("2077", "Invalid TrxID"));
    }
    Ok(payment)
}

fn apply_refund(
    state: &mut State,
    app_key: &str,
    request: RefundRequest,
    window_ms: i64,
) -> Result<(String, Refund), BkError> {
    let now = state.now_ms();
    let payment = find_refundable(state, app_key, request.payment_id.as_deref(), request.trx_id.as_deref())?;
    let amount = request.amount.unwrap_or_default();
    let amount_minor = parse_amount(&amount).filter(|&m| m > 0).ok_or(("2072", "Refund amount not valid"))?;
    let sku = request.sku.ok_or(("2073", "Invalid SKU"))?;
    if sku.chars().count() > 255 {
        return Err(("2075", "SKU character limit exceeded"));
    }
    let reason = request.reason.unwrap_or_default();
    if reason.chars().count() > 255 {
        return Err(("2076", "Reason character limit exceeded"));
    }
    if payment.executed_ms.is_some_and(|t| now - t > window_ms) {
        return Err(("2071", "Refund after specified days not allowed"));
    }
    if payment.refunds.len() >= MAX_REFUNDS {
        return Err(("2074", "Transaction cannot be reversed"));
    }
    if payment.refunded_minor() + amount_minor > payment.amount_minor {
        return Err(("2026", "The reversal amount cannot be greater than the original transaction amount"));
    }
    let payment_id = payment.id.clone();
    let refund = Refund { trx_id: state.new_trx_id(), amount, amount_minor, sku, reason, completed_ms: now };
    if let Some(payment) = state.payments.get_mut(&payment_id) {
        payment.refunds.push(refund.clone());
    }
    tracing::info!(
        payment_id = %payment_id,
        refund_trx_id = %refund.trx_id,
        amount = %format_minor(amount_minor),
        "refund completed"
    );
    Ok((payment_id, refund))
}

fn v1_refund_body(original_trx_id: &str, refund: &Refund) -> Map<String, Value> {
    obj(json!({
        "originalTrxID": original_trx_id,
        "refundTrxID": refund.trx_id,
        "transactionStatus": "Completed",
        "amount": refund.amount,
        "currency": "BDT",
        "charge": "0.00",
        "completedTime": bkash_time(refund.completed_ms),
    }))
}

/// One path, two operations: with `amount` it refunds, without it reports the latest refund.
#[tracing::instrument(skip_all)]
async fn refund_v1(AxState(app): AxState<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let is_status = parse_body(&body).ok().is_some_and(|b| b.get("amount").is_none_or(Value::is_null));
    if is_status {
        serve(&app, Endpoint::RefundStatus, |s| do_refund_status_v1(s, &headers, &body)).await
    } else {
        serve(&app, Endpoint::Refund, |s| do_refund_v1(s, &headers, &body)).await
    }
}

fn do_refund_v1(state: &mut State, headers: &HeaderMap, body: &[u8]) -> Response {
    let Some(app_key) = authorize(state, headers) else {
        return unauthorized();
    };
    let body = match parse_body(body) {
        Ok(b) => b,
        Err(e) => return bk_error(e),
    };
    let request = RefundRequest {
        payment_id: text(&body, "paymentID"),
        trx_id: text(&body, "trxID"),
        amount: text(&body, "amount"),
        sku: text(&body, "sku"),
        reason: text(&body, "reason"),
    };
    match apply_refund(state, &app_key, request, V1_REFUND_WINDOW_MS) {
        Ok((payment_id, refund)) => {
            let original = state.payments.get(&payment_id).and_then(|p| p.trx_id.clone()).unwrap_or_default();
            bk_ok(v1_refund_body(&original, &refund))
        }
        Err(e) => {
            tracing::info!(code = e.0, "refund refused");
            bk_error(e)
        }
    }
}

fn do_refund_status_v1(state: &mut State, headers: &HeaderMap, body: &[u8]) -> Response {
    let Some(app_key) = authorize(state, headers) else {
        return unauthorized();
    };
    let body = match parse_body(body) {
        Ok(b) => b,
        Err(e) => return bk_error(e),
    };
    let (payment_id, trx_id) = (text(&body, "paymentID"), text(&body, "trxID"));
    let payment = match find_refundable(state, &app_key, payment_id.as_deref(), trx_id.as_deref()) {
        Ok(p) => p,
        Err(e) => return bk_error(e),
    };
    match payment.refunds.last() {
        Some(refund) => bk_ok(v1_refund_body(payment.trx_id.as_deref().unwrap_or_default(), refund)),
        None => bk_error(("2074", "No refund found for this transaction")),
    }
}

#[tracing::instrument(skip_all)]
async fn refund_v2(AxState(app): AxState<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    serve(&app, Endpoint::Refund, |s| do_refund_v2(s, &headers, &body)).await
}

fn do_refund_v2(state: &mut State, headers: &HeaderMap, body: &[u8]) -> Response {
    let Some(app_key) = authorize(state, headers) else {
        return unauthorized();
    };
    let body = match parse_body(body) {
        Ok(b) => b,
        Err(e) => return v2_error(e),
    };
    let request = RefundRequest {
        payment_id: text(&body, "paymentId"),
        trx_id: text(&body, "trxId"),
        amount: text(&body, "refundAmount"),
        sku: text(&body, "sku"),
        reason: text(&body, "reason"),
    };
    let (payment_id, refund) = match apply_refund(state, &app_key, request, V2_REFUND_WINDOW_MS) {
        Ok(done) => done,
        Err(e) => {
            tracing::info!(code = e.0, "v2 refund refused");
            return v2_error(e);
        }
    };
    let Some(payment) = state.payments.get(&payment_id) else {
        return v2_error(INVALID_PAYMENT_ID);
    };
    Json(json!({
        "originalTrxId": payment.trx_id,
        "refundTrxId": refund.trx_id,
        "refundTransactionStatus": "Completed",
        "originalTrxAmount": payment.amount,
        "refundAmount": refund.amount,
        "currency": "BDT",
        "completedTime": bkash_time(refund.completed_ms),
        "sku": refund.sku,
        "reason": refund.reason,
    }))
    .into_response()
}

#[tracing::instrument(skip_all)]
async fn refund_status_v2(AxState(app): AxState<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    serve(&app, Endpoint::RefundStatus, |s| do_refund_status_v2(s, &headers, &body)).await
}

fn do_refund_status_v2(state: &mut State, headers: &HeaderMap, body: &[u8]) -> Response {
    let Some(app_key) = authorize(state, headers) else {
        return unauthorized();
    };
    let body = match parse_body(body) {
        Ok(b) => b,
        Err(e) => return v2_error(e),
    };
    let (payment_id, trx_id) = (text(&body, "paymentId"), text(&body, "trxId"));
    let payment = match find_refundable(state, &app_key, payment_id.as_deref(), trx_id.as_deref()) {
        Ok(p) => p,
        Err(e) => return v2_error(e),
    };
    let refunds: Vec<Value> = payment
        .refunds
        .iter()
        .map(|r| {
            json!({
                "refundTrxId": r.trx_id,
                "refundTransactionStatus": "Completed",
                "refundAmount": r.amount,
                "completedTime": bkash_time(r.completed_ms),
            })
        })
        .collect();
    Json(json!({
        "originalTrxId": payment.trx_id,
        "originalTrxAmount": payment.amount,
        "originalTrxCompletedTime": payment.executed_ms.map(bkash_time),
        "refundTransactions": refunds,
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::base64url;

    #[test]
    fn base64url_has_no_padding() {
        assert_eq!(base64url(b"f"), "Zg");
        assert_eq!(base64url(b"fo"), "Zm8");
        assert_eq!(base64url(b"foo"), "Zm9v");
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
    }
}
