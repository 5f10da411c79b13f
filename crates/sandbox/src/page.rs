//! The hosted payment page the customer reaches through `bkashURL`.
//!
//! Plain server-rendered forms (no JavaScript): wallet number, then OTP, then PIN, with Close and a
//! Yes/No confirmation at every step. The end of the journey is a `303 See Other` to the merchant's
//! callback URL plus `&apiVersion=1.2.0-beta`, as bKash's own page script does.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Form, Path, Query, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::state::{
    AppState, OTP, PINS, PageStep, Payment, PaymentStatus, State, format_minor, is_known_wallet, is_wallet_format,
    mask_wallet,
};

/// Wrong OTPs or PINs allowed before the payment fails (the third one ends it).
const MAX_ATTEMPTS: u8 = 3;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/redirect/tokenized/", get(show))
        .route("/redirect/tokenized", get(show))
        .route("/redirect/tokenized/{payment_id}/wallet", post(wallet))
        .route("/redirect/tokenized/{payment_id}/otp", post(otp))
        .route("/redirect/tokenized/{payment_id}/pin", post(pin))
        .route("/redirect/tokenized/{payment_id}/close", post(close))
}

type Fields = HashMap<String, String>;

fn field<'f>(fields: &'f Fields, name: &str) -> &'f str {
    fields.get(name).map_or("", |v| v.trim())
}

#[tracing::instrument(skip_all)]
async fn show(AxState(app): AxState<AppState>, Query(query): Query<Fields>) -> Response {
    let state = app.lock();
    let payment = state.payments.get(field(&query, "paymentID"));
    let Some(p) = payment.filter(|p| p.hash == field(&query, "hash")) else {
        return invalid_request();
    };
    if let Some(closed) = closed_page(&state, p) {
        return closed;
    }
    step_page(p, None, None)
}

/// Runs `f` on a payment the customer may still act on, or answers with the right error page.
fn with_open_payment(
    app: &AppState,
    payment_id: &str,
    fields: &Fields,
    f: impl FnOnce(&mut Payment) -> Response,
) -> Response {
    let mut state = app.lock();
    let Some(p) = state.payments.get(payment_id) else {
        return invalid_request();
    };
    // The forms carry the hash; a request without it is accepted (tests post the bare fields).
    let hash = field(fields, "hash");
    if !hash.is_empty() && hash != p.hash {
        return invalid_request();
    }
    if let Some(closed) = closed_page(&state, p) {
        return closed;
    }
    match state.payments.get_mut(payment_id) {
        Some(p) => f(p),
        None => invalid_request(),
    }
}

#[tracing::instrument(skip_all, fields(payment_id = %payment_id))]
async fn wallet(
    AxState(app): AxState<AppState>,
    Path(payment_id): Path<String>,
    Form(fields): Form<Fields>,
) -> Response {
    with_open_payment(&app, &payment_id, &fields, |p| {
        if field(&fields, "action") == "close" {
            return confirm_close_page(p);
        }
        let wallet = field(&fields, "wallet");
        if !is_wallet_format(wallet) {
            return step_page(p, Some("Enter a valid 11-digit bKash Account number starting with 01"), Some(wallet));
        }
        if !is_known_wallet(wallet) {
            return step_page(p, Some("Not a bKash Account"), Some(wallet));
        }
        tracing::info!(wallet = %mask_wallet(wallet), "wallet entered");
        p.wallet = Some(wallet.to_owned());
        p.step = PageStep::Otp;
        step_page(p, None, None)
    })
}

#[tracing::instrument(skip_all, fields(payment_id = %payment_id))]
async fn otp(AxState(app): AxState<AppState>, Path(payment_id): Path<String>, Form(fields): Form<Fields>) -> Response {
    with_open_payment(&app, &payment_id, &fields, |p| {
        if field(&fields, "action") == "close" {
            return confirm_close_page(p);
        }
        if p.step != PageStep::Otp {
            return step_page(p, None, None);
        }
        if field(&fields, "otp") == OTP {
            p.step = PageStep::Pin;
            return step_page(p, None, None);
        }
        p.otp_failures += 1;
        if p.otp_failures >= MAX_ATTEMPTS {
            tracing::info!("wrong verification code limit reached; payment failed");
            p.status = PaymentStatus::Failed;
            return Redirect::to(&p.redirect_for("failure")).into_response();
        }
        step_page(p, Some("Wrong verification code"), None)
    })
}

#[tracing::instrument(skip_all, fields(payment_id = %payment_id))]
async fn pin(AxState(app): AxState<AppState>, Path(payment_id): Path<String>, Form(fields): Form<Fields>) -> Response {
    let response = pin_step(&app, &payment_id, &fields);
    // A payment the customer approved is announced by the IPN, whether or not the browser comes back.
    crate::ipn::announce(&app, &payment_id);
    response
}

fn pin_step(app: &AppState, payment_id: &str, fields: &Fields) -> Response {
    with_open_payment(app, payment_id, fields, |p| {
        if field(fields, "action") == "close" {
            return confirm_close_page(p);
        }
        if p.step != PageStep::Pin {
            return step_page(p, None, None);
        }
        if PINS.contains(&field(fields, "pin")) {
            tracing::info!("customer verified; payment approved");
            p.verified = true;
            p.status = PaymentStatus::Approved;
            return Redirect::to(&p.redirect_for("success")).into_response();
        }
        p.pin_failures += 1;
        if p.pin_failures >= MAX_ATTEMPTS {
            tracing::info!("wrong PIN limit reached; payment failed");
            p.status = PaymentStatus::Failed;
            return Redirect::to(&p.redirect_for("failure")).into_response();
        }
        step_page(p, Some("Wrong PIN"), None)
    })
}

#[tracing::instrument(skip_all, fields(payment_id = %payment_id))]
async fn close(
    AxState(app): AxState<AppState>,
    Path(payment_id): Path<String>,
    Form(fields): Form<Fields>,
) -> Response {
    with_open_payment(&app, &payment_id, &fields, |p| {
        if field(&fields, "confirm") == "yes" {
            tracing::info!("customer cancelled the payment");
            p.status = PaymentStatus::Cancelled;
            return Redirect::to(&p.redirect_for("cancel")).into_response();
        }
        step_page(p, None, None)
    })
}

// ---------------------------------------------------------------------------------------------
// Pages

/// The page for a payment the customer can no longer act on, if it is one.
fn closed_page(state: &State, p: &Payment) -> Option<Response> {
    if p.status != PaymentStatus::Initiated {
        return Some(message_page(
            StatusCode::OK,
            "This payment has already been processed",
            "You can close this window and return to the merchant.",
        ));
    }
    if state.now_ms() >= p.expires_ms {
        return Some(message_page(
            StatusCode::GONE,
            "This payment has expired",
            "Please return to the merchant and start the payment again.",
        ));
    }
    None
}

fn invalid_request() -> Response {
    message_page(
        StatusCode::NOT_FOUND,
        "Invalid payment request",
        "This payment link is not valid. Please return to the merchant and try again.",
    )
}

fn message_page(status: StatusCode, title: &str, text: &str) -> Response {
    let body = html! {
        h1 { (title) }
        p { (text) }
    };
    (status, layout(title, None, body)).into_response()
}

fn action_url(p: &Payment, step: &str) -> String {
    format!("/redirect/tokenized/{}/{step}", p.id)
}

/// The step the customer is on; `typed` refills the wallet box after a rejected number.
fn step_page(p: &Payment, error: Option<&str>, typed: Option<&str>) -> Response {
    let masked = p.wallet.as_deref().map(mask_wallet).unwrap_or_default();
    let error_id = error.map(|_| "form-error");
    let alert = html! {
        @if let Some(error) = error {
            p id="form-error" class="error" role="alert" { (error) }
        }
    };
    let body = match p.step {
        PageStep::Wallet => {
            // bKash's page pre-fills the wallet when payerReference is a wallet number.
            let value = typed
                .or(p.wallet.as_deref())
                .or(Some(p.payer_reference.as_str()).filter(|r| is_wallet_format(r)))
                .unwrap_or("");
            html! {
                form method="post" action=(action_url(p, "wallet")) {
                    input type="hidden" name="hash" value=(p.hash);
                    h1 { "Your bKash Account number" }
                    label for="wallet" { "bKash Account number" }
                    input id="wallet" name="wallet" type="text" inputmode="numeric"
                        pattern="^01\\d{9}$" maxlength="11" placeholder="e.g. 01XXXXXXXXX"
                        autocomplete="tel-national" required autofocus value=(value)
                        aria-invalid=[error.map(|_| "true")] aria-describedby=[error_id];
                    (alert)
                    p class="hint" { "By clicking on Confirm, you are agreeing to the terms & conditions." }
                    (buttons())
                }
            }
        }
        PageStep::Otp => html! {
            form method="post" action=(action_url(p, "otp")) {
                input type="hidden" name="hash" value=(p.hash);
                h1 { "Enter verification code sent to " (masked) }
                label for="otp" { "Verification code" }
                input id="otp" name="otp" type="text" inputmode="numeric" pattern="\\d{6}"
                    maxlength="6" autocomplete="one-time-code" required autofocus
                    aria-invalid=[error.map(|_| "true")] aria-describedby=[error_id];
                (alert)
                p class="hint" { "Sandbox verification code: 123456" }
                (buttons())
            }
        },
        PageStep::Pin => html! {
            form method="post" action=(action_url(p, "pin")) {
                input type="hidden" name="hash" value=(p.hash);
                h1 { "Enter PIN of your bKash Account number (" (masked) ")" }
                label for="pin" { "PIN" }
                input id="pin" name="pin" type="password" inputmode="numeric" pattern="\\d{4,5}"
                    maxlength="5" autocomplete="off" required autofocus
                    aria-invalid=[error.map(|_| "true")] aria-describedby=[error_id];
                (alert)
                p class="hint" { "Sandbox PIN: 12121" }
                (buttons())
            }
        },
    };
    (StatusCode::OK, layout("Pay with bKash", Some(p), body)).into_response()
}

/// Confirm comes first so that Enter submits it; Close skips the browser's field validation.
fn buttons() -> Markup {
    html! {
        div class="actions" {
            button class="primary" type="submit" name="action" value="confirm" { "Confirm" }
            button class="secondary" type="submit" name="action" value="close" formnovalidate { "Close" }
        }
    }
}

fn confirm_close_page(p: &Payment) -> Response {
    let body = html! {
        form method="post" action=(action_url(p, "close")) {
            input type="hidden" name="hash" value=(p.hash);
            h1 { "Are you sure you want to cancel the payment?" }
            div class="actions" {
                button class="primary" type="submit" name="confirm" value="yes" { "Yes" }
                button class="secondary" type="submit" name="confirm" value="no" { "No" }
            }
        }
    };
    (StatusCode::OK, layout("Cancel payment?", Some(p), body)).into_response()
}

fn layout(title: &str, payment: Option<&Payment>, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " | bKash" }
                style { (PreEscaped(CSS)) }
            }
            body {
                div class="card" {
                    header class="brand" {
                        span class="logo" { "bKash" }
                        span class="badge" { "Sandbox" }
                    }
                    @if let Some(p) = payment {
                        section class="merchant" aria-label="Payment details" {
                            p class="merchant-name" { "DeshPay Sandbox Merchant" }
                            p { "Invoice: " (p.invoice) }
                            p class="amount" { "৳ " (format_minor(p.amount_minor)) }
                        }
                    }
                    main { (content) }
                    footer {
                        p { "Helpline: " a href="tel:16247" { "16247" } }
                    }
                }
            }
        }
    }
}

const CSS: &str = r#"
*{box-sizing:border-box}
body{margin:0;font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:#f3f3f5;color:#1f1f1f;line-height:1.5}
.card{max-width:420px;margin:0 auto;background:#fff;min-height:100vh;display:flex;flex-direction:column}
@media (min-width:480px){.card{margin:2rem auto;min-height:0;border-radius:12px;box-shadow:0 2px 12px rgba(0,0,0,.12);overflow:hidden}}
.brand{background:#E2136E;color:#fff;padding:1rem 1.25rem;display:flex;justify-content:space-between;align-items:center}
.logo{font-size:1.5rem;font-weight:800;letter-spacing:.02em}
.badge{font-size:.8rem;font-weight:700;border:1px solid #fff;border-radius:999px;padding:.1rem .6rem}
.merchant{padding:1rem 1.25rem;border-bottom:1px solid #e6e6e6}
.merchant p{margin:.15rem 0}
.merchant-name{font-weight:700}
.amount{font-size:1.6rem;font-weight:800}
main{padding:1.25rem;flex:1}
h1{font-size:1.1rem;margin:0 0 1rem}
label{display:block;font-weight:700;margin-bottom:.35rem}
input{width:100%;font-size:1.25rem;padding:.6rem .75rem;border:2px solid #767676;border-radius:8px;letter-spacing:.08em}
input[aria-invalid=true]{border-color:#b00020}
.error{color:#b00020;font-weight:700}
.hint{color:#555;font-size:.9rem}
.actions{display:flex;gap:.75rem;margin-top:1.25rem}
button{flex:1;font:inherit;font-weight:700;padding:.75rem;border-radius:8px;cursor:pointer;border:2px solid #C2105D}
.primary{background:#C2105D;color:#fff}
.secondary{background:#fff;color:#C2105D}
:focus-visible{outline:3px solid #1f1f1f;outline-offset:2px}
footer{padding:1rem 1.25rem;background:#fafafa;border-top:1px solid #e6e6e6;font-size:.9rem;text-align:center}
footer p{margin:0}
footer a{color:#A50E50;font-weight:700}
"#;
