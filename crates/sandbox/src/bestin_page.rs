//! The customer's UPI app, played by a web page: `GET /upi/approve?link=<deep link>`.
//!
//! Any of a payin's deep links works (`upi://pay?..`, `paytmmp://cash_wallet?..`,
//! `phonepe://native?data=..`): the payin is found from `tr=` (or PhonePe's `referenceId`, or a
//! `PI...` id anywhere in the link). The page shows payee, amount and the app the scheme belongs
//! to, with two buttons, "Approve" and "Decline", posting `decision=approve|decline` to
//! `POST /upi/approve/{trx_id}`. Plain server-rendered HTML, no JavaScript.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Form, Path, Query, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde_json::Value;

use crate::bestin::{DecideError, Order, TrxStatus, TrxType, decide, with_bestin};
use crate::state::{AppState, format_minor, parse_amount};

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/upi/approve", get(show)).route("/upi/approve/{trx_id}", post(submit))
}

type Fields = HashMap<String, String>;

/// The app a deep link opens, by scheme.
fn app_name(link: &str) -> &'static str {
    let scheme = link.split_once(':').map(|(s, _)| s.trim().to_ascii_lowercase()).unwrap_or_default();
    match scheme.as_str() {
        "paytmmp" | "paytm" => "Paytm",
        "phonepe" => "PhonePe",
        "gpay" | "tez" => "Google Pay",
        _ => "UPI app",
    }
}

/// What a deep link says: the payin it names and the amount it asks for (paise), if it says.
#[derive(Debug, Default, PartialEq, Eq)]
struct LinkInfo {
    trx_id: Option<String>,
    amount_paise: Option<u64>,
}

fn read_link(link: &str) -> LinkInfo {
    let mut info = LinkInfo::default();
    if let Ok(url) = url::Url::parse(link.trim()) {
        for (key, value) in url.query_pairs() {
            match key.as_ref() {
                "tr" if !value.is_empty() => info.trx_id = Some(value.into_owned()),
                "am" => info.amount_paise = parse_amount(&value),
                // PhonePe's native intent: base64 JSON with the reference and the amount in paise.
                "data" => {
                    let raw = value.replace(' ', "+");
                    let decoded = STANDARD.decode(raw.as_bytes()).or_else(|_| URL_SAFE.decode(raw.as_bytes()));
                    if let Some(json) = decoded.ok().and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok()) {
                        let params = &json["p2pPaymentCheckoutParams"];
                        if let Some(id) = params["referenceId"].as_str() {
                            info.trx_id.get_or_insert_with(|| id.to_owned());
                        }
                        if let Some(paise) = params["initialAmount"].as_u64() {
                            info.amount_paise.get_or_insert(paise);
                        }
                    }
                }
                _ => {}
            }
        }
    }
    if info.trx_id.is_none() {
        info.trx_id = scan_for_trx_id(link);
    }
    info
}

/// A `PI` + 26 Crockford base32 characters anywhere in the text.
fn scan_for_trx_id(text: &str) -> Option<String> {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let bytes = text.as_bytes();
    (0..bytes.len().saturating_sub(27)).find_map(|i| {
        let candidate = &bytes[i..i + 28];
        (candidate.starts_with(b"PI") && candidate[2..].iter().all(|b| ALPHABET.contains(b)))
            .then(|| String::from_utf8_lossy(candidate).into_owned())
    })
}

#[tracing::instrument(skip_all)]
async fn show(AxState(app): AxState<AppState>, Query(query): Query<Fields>) -> Response {
    let Some(link) = query.get("link").map(|l| l.trim()).filter(|l| !l.is_empty()) else {
        return message_page(
            StatusCode::BAD_REQUEST,
            "UPI app",
            "No payment link",
            "Open this page with ?link= and one of the payment's deep links.",
        );
    };
    let app_label = app_name(link);
    let info = read_link(link);
    with_bestin(&app, |state| {
        let now = state.now_ms();
        state.bestin.expire_due(now);
        state.bestin.counters.approve_page += 1;
        let merchant = state.bestin.options.merchant_name.clone();
        let vpa = state.bestin.options.merchant_vpa.clone();
        let order =
            info.trx_id.as_deref().and_then(|id| state.bestin.orders.get(id)).filter(|o| o.trx_type == TrxType::Payin);
        let Some(order) = order else {
            return not_found(app_label);
        };
        if info.amount_paise.is_some_and(|a| a != order.amount_paise) {
            tracing::warn!(trx_id = %order.trx_id, "approval page: link amount differs from the payin");
            return message_page(
                StatusCode::BAD_REQUEST,
                app_label,
                "Payment request not valid",
                "The amount in this payment link does not match the payment request.",
            );
        }
        if order.status != TrxStatus::Pending {
            return status_page(StatusCode::OK, app_label, order);
        }
        approval_page(app_label, &merchant, &vpa, order)
    })
}

#[tracing::instrument(skip_all, fields(trx_id = %trx_id))]
async fn submit(AxState(app): AxState<AppState>, Path(trx_id): Path<String>, Form(fields): Form<Fields>) -> Response {
    let app_label = match fields.get("app").map(String::as_str) {
        Some("Paytm") => "Paytm",
        Some("PhonePe") => "PhonePe",
        Some("Google Pay") => "Google Pay",
        _ => "UPI app",
    };
    let approve = match fields.get("decision").map(String::as_str) {
        Some("approve") => true,
        Some("decline") => false,
        _ => {
            return message_page(
                StatusCode::BAD_REQUEST,
                app_label,
                "Choose Approve or Decline",
                "The form must send decision=approve or decision=decline.",
            );
        }
    };
    with_bestin(&app, |state| {
        let outcome = decide(state, &trx_id, approve);
        let Some(order) = state.bestin.orders.get(&trx_id) else {
            return not_found(app_label);
        };
        match outcome {
            Ok(_) => {
                tracing::info!(approve, "customer decided on the approval page");
                result_page(app_label, order, approve)
            }
            Err(DecideError::NotFound) => not_found(app_label),
            Err(DecideError::Expired | DecideError::NotPending(_)) => {
                status_page(StatusCode::CONFLICT, app_label, order)
            }
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Pages

/// `10_000_000` paise -> `1,00,000.00` (Indian digit grouping).
pub(crate) fn rupees(paise: u64) -> String {
    let text = format_minor(paise);
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, "00"));
    let grouped = if whole.len() <= 3 {
        whole.to_owned()
    } else {
        let (head, tail) = whole.split_at(whole.len() - 3);
        let mut parts: Vec<&str> = Vec::new();
        let mut rest = head;
        while rest.len() > 2 {
            let (a, b) = rest.split_at(rest.len() - 2);
            parts.push(b);
            rest = a;
        }
        parts.push(rest);
        parts.reverse();
        format!("{},{tail}", parts.join(","))
    };
    format!("₹{grouped}.{fraction}")
}

fn not_found(app_label: &str) -> Response {
    message_page(
        StatusCode::NOT_FOUND,
        app_label,
        "Payment request not found",
        "This payment link does not belong to any payment request. Ask the merchant for a new one.",
    )
}

fn approval_page(app_label: &str, merchant: &str, vpa: &str, order: &Order) -> Response {
    let body = html! {
        h1 { "Confirm payment" }
        dl class="details" {
            div { dt { "Paying to" } dd class="payee" { (merchant) } }
            div { dt { "UPI ID" } dd { (vpa) } }
            div { dt { "Amount" } dd class="amount" { (rupees(order.amount_paise)) } }
            div { dt { "Note" } dd { (order.note) } }
            div { dt { "Reference" } dd class="ref" { (order.trx_id) } }
        }
        form method="post" action=(format!("/upi/approve/{}", order.trx_id)) {
            input type="hidden" name="app" value=(app_label);
            div class="actions" {
                button class="primary" type="submit" name="decision" value="approve" { "Approve" }
                button class="secondary" type="submit" name="decision" value="decline" { "Decline" }
            }
        }
        p class="hint" {
            "Sandbox: no real money moves. Approve pays the merchant; Decline fails the payment."
        }
    };
    (StatusCode::OK, layout("Confirm payment", app_label, body)).into_response()
}

fn result_page(app_label: &str, order: &Order, approved: bool) -> Response {
    let (title, text) = if approved {
        ("Payment approved", "You can go back to the merchant.")
    } else {
        ("Payment declined", "No money was taken. You can go back to the merchant.")
    };
    let body = html! {
        div role="status" {
            h1 { (title) }
            p class="amount" { (rupees(order.amount_paise)) }
            p { "Reference: " span class="ref" { (order.trx_id) } }
            p { (text) }
        }
        (return_link(order))
    };
    (StatusCode::OK, layout(title, app_label, body)).into_response()
}

/// The page for a payin the customer can no longer act on.
fn status_page(status: StatusCode, app_label: &str, order: &Order) -> Response {
    let (status, title, text) = match order.status {
        TrxStatus::Expired => (
            StatusCode::GONE,
            "This payment request has expired",
            "Go back to the merchant and start the payment again.",
        ),
        TrxStatus::Success => (status, "This payment has already been approved", "Nothing more to do here."),
        TrxStatus::Confirming => {
            (status, "This payment is being confirmed", "You approved it; the bank is confirming it.")
        }
        TrxStatus::Failed => (status, "This payment was declined", "Go back to the merchant to try again."),
        TrxStatus::Canceled => (status, "This payment request was cancelled", "Go back to the merchant to try again."),
        TrxStatus::Pending => {
            (status, "This payment request is waiting for approval", "Open the link again to approve or decline it.")
        }
    };
    let body = html! {
        h1 { (title) }
        p class="amount" { (rupees(order.amount_paise)) }
        p { (text) }
        (return_link(order))
    };
    (status, layout(title, app_label, body)).into_response()
}

fn return_link(order: &Order) -> Markup {
    html! {
        @if let Some(url) = &order.return_url {
            p { a class="back" href=(url) { "Return to merchant" } }
        }
    }
}

fn message_page(status: StatusCode, app_label: &str, title: &str, text: &str) -> Response {
    let body = html! {
        h1 { (title) }
        p { (text) }
    };
    (status, layout(title, app_label, body)).into_response()
}

fn layout(title: &str, app_label: &str, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " | " (app_label) }
                style { (PreEscaped(CSS)) }
            }
            body {
                div class="card" {
                    header class="brand" {
                        span class="logo" { (app_label) }
                        span class="badge" { "Sandbox" }
                    }
                    main { (content) }
                    footer { p { "UPI payment simulated by the DeshPay sandbox (Bestin Pay)" } }
                }
            }
        }
    }
}

const CSS: &str = r#"
*{box-sizing:border-box}
body{margin:0;font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:#eef1f6;color:#1b1b1f;line-height:1.5}
.card{max-width:420px;margin:0 auto;background:#fff;min-height:100vh;display:flex;flex-direction:column}
@media (min-width:480px){.card{margin:2rem auto;min-height:0;border-radius:12px;box-shadow:0 2px 12px rgba(0,0,0,.12);overflow:hidden}}
.brand{background:#1d3f8f;color:#fff;padding:1rem 1.25rem;display:flex;justify-content:space-between;align-items:center}
.logo{font-size:1.4rem;font-weight:800}
.badge{font-size:.8rem;font-weight:700;border:1px solid #fff;border-radius:999px;padding:.1rem .6rem}
main{padding:1.25rem;flex:1}
h1{font-size:1.25rem;margin:0 0 1rem}
.details{margin:0 0 1.25rem}
.details div{display:flex;justify-content:space-between;gap:1rem;padding:.5rem 0;border-bottom:1px solid #e3e6ec}
.details dt{color:#4a4f5c}
.details dd{margin:0;font-weight:700;text-align:right;overflow-wrap:anywhere}
.amount{font-size:1.6rem;font-weight:800}
.ref{font-family:ui-monospace,monospace;font-size:.9rem}
.actions{display:flex;gap:.75rem;margin-top:1rem}
button{flex:1;font:inherit;font-weight:700;padding:.85rem;border-radius:8px;cursor:pointer;border:2px solid #1d3f8f;min-height:48px}
.primary{background:#1d3f8f;color:#fff}
.secondary{background:#fff;color:#1d3f8f}
.hint{color:#4a4f5c;font-size:.9rem}
a{color:#1d3f8f;font-weight:700}
:focus-visible{outline:3px solid #1b1b1f;outline-offset:2px}
footer{padding:1rem 1.25rem;background:#f7f8fa;border-top:1px solid #e3e6ec;font-size:.85rem;text-align:center;color:#4a4f5c}
footer p{margin:0}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rupees_use_indian_grouping() {
        assert_eq!(rupees(10_100), "₹101.00");
        assert_eq!(rupees(10_000_000), "₹1,00,000.00");
        assert_eq!(rupees(123_456_789), "₹12,34,567.89");
        assert_eq!(rupees(5), "₹0.05");
    }

    #[test]
    fn links_name_their_app_and_payin() {
        let id = "PI01KAG1YM11Z3Y7BG4VW9K86ZRJ";
        assert_eq!(app_name("paytmmp://cash_wallet?pa=x@y"), "Paytm");
        assert_eq!(app_name("phonepe://native?data=x"), "PhonePe");
        assert_eq!(app_name("upi://pay?pa=x@y"), "UPI app");
        let info = read_link(&format!("upi://pay?pa=a@b&am=101.00&cu=INR&tr={id}"));
        assert_eq!(info, LinkInfo { trx_id: Some(id.to_owned()), amount_paise: Some(10_100) });
        let data = STANDARD
            .encode(format!(r#"{{"p2pPaymentCheckoutParams":{{"referenceId":"{id}","initialAmount":10100}}}}"#));
        let info = read_link(&format!("phonepe://native?data={}&id=p2ppayment", crate::bestin::encode(&data)));
        assert_eq!(info.trx_id.as_deref(), Some(id));
        assert_eq!(info.amount_paise, Some(10_100));
        assert_eq!(read_link(&format!("weird:{id}")).trx_id.as_deref(), Some(id));
        assert_eq!(read_link("upi://pay?pa=a@b").trx_id, None);
    }
}
