//! The hosted payment page, `GET /pay/{id}`: the session's widget on the backend's own origin, so a session is
//! payable with no merchant page at all (a payment link sent in a chat, the loader's fallback when WebAssembly
//! cannot start on the merchant's page, a QR code at the counter: `GET /pay/{id}/qr.svg`).
//!
//! Server-rendered (maud). An open session gets the same widget as a merchant page (the loader and `pkg/` from
//! `server.widget_dir`, served precompressed at `GET /pay/pkg/{file}`) with the session's theme and language; a
//! paid one its receipt and, with `success_url`, a link there (never an automatic redirect, which would be a
//! time limit the customer cannot stop, WCAG 2.2.1); an expired or
//! cancelled one a 410 page, an unknown id a 404 page. The page shows only what the widget API shows anyone who
//! holds the session id (merchant name, amount, invoice, description, transaction id), never the merchant's
//! return URL, attempts' provider messages or anything secret. It runs under a strict Content-Security-Policy:
//! scripts only from this origin plus the page's one inline script by hash, WebAssembly, fetches only to this
//! origin, no frames, no forms, no referrer (the URL holds the session id).

use crate::sessions::{PAGE_THEMES, SessionError};
use crate::state::AppState;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use deshpay_api::{SessionId, SessionStatus};
use deshpay_widget::i18n::{Key, Locale};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

/// The page's own words (the outcome headings and bodies are the widget's: [`Key`]).
#[derive(Debug, Clone, Copy)]
enum Word {
    /// The page title; `{merchant}`.
    Title,
    /// The link to `success_url`; `{merchant}`.
    Continue,
    /// Without JavaScript.
    NoScript,
    /// The footer; `{merchant}`.
    Footer,
    /// A store failure.
    Trouble,
    /// The heading for an unknown session.
    NotFound,
}

impl Word {
    fn text(self, locale: Locale) -> &'static str {
        use Locale::{Bn, En, Hi};
        match (self, locale) {
            (Word::Title, En) => "Pay {merchant}",
            (Word::Title, Bn) => "{merchant}-কে পেমেন্ট করুন",
            (Word::Title, Hi) => "{merchant} को भुगतान करें",
            (Word::Continue, En) => "Continue to {merchant}",
            (Word::Continue, Bn) => "{merchant}-এ ফিরে যান",
            (Word::Continue, Hi) => "{merchant} पर वापस जाएँ",
            (Word::NoScript, En) => {
                "This payment page needs JavaScript. Turn it on, or open the link in your phone's browser."
            }
            (Word::NoScript, Bn) => "এই পেমেন্ট পেজে JavaScript লাগে। এটি চালু করুন, অথবা লিংকটি আপনার ফোনের ব্রাউজারে খুলুন।",
            (Word::NoScript, Hi) => "इस भुगतान पेज को JavaScript चाहिए। इसे चालू करें, या लिंक को अपने फ़ोन के ब्राउज़र में खोलें।",
            (Word::Footer, En) => "Secure payment page of {merchant}, by DeshPay",
            (Word::Footer, Bn) => "{merchant}-এর নিরাপদ পেমেন্ট পেজ, DeshPay দ্বারা",
            (Word::Footer, Hi) => "{merchant} का सुरक्षित भुगतान पेज, DeshPay द्वारा",
            (Word::Trouble, En) => "Something went wrong",
            (Word::Trouble, Bn) => "কিছু একটা সমস্যা হয়েছে",
            (Word::Trouble, Hi) => "कुछ गड़बड़ हो गई",
            (Word::NotFound, En) => "Payment link not found",
            (Word::NotFound, Bn) => "পেমেন্ট লিংক পাওয়া যায়নি",
            (Word::NotFound, Hi) => "भुगतान लिंक नहीं मिला",
        }
    }
}

/// The page's CSS: the chrome around the widget, in the widget's preset colours (each pair meets AA).
const CSS: &str = "\
*{box-sizing:border-box}\
body{margin:0;min-height:100vh;font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,'Noto Sans Bengali','Noto Sans Devanagari',sans-serif;background:var(--bg);color:var(--text)}\
.light{--bg:#f4f5f7;--card:#fff;--text:#1a1a1a;--muted:#555;--link:#0b57d0;--ok:#136c2e;--bad:#b3261e}\
.dark{--bg:#0f1115;--card:#1b1e24;--text:#f1f3f5;--muted:#b8bec7;--link:#8ab4f8;--ok:#7ee2a0;--bad:#ffb4ab}\
.bkash{--bg:#fdf0f5;--card:#fff;--text:#1a1a1a;--muted:#555;--link:#b0105a;--ok:#136c2e;--bad:#b3261e}\
.high-contrast{--bg:#000;--card:#000;--text:#fff;--muted:#fff;--link:#ffff00;--ok:#fff;--bad:#fff}\
main{max-width:480px;margin:0 auto;padding:24px 16px}\
h1{font-size:1.25rem;margin:0 0 16px}\
#pay{display:block;margin-bottom:16px}\
.card{background:var(--card);border-radius:12px;padding:20px;margin-bottom:16px}\
.high-contrast .card{border:2px solid #fff}\
.muted{color:var(--muted)}\
a{color:var(--link)}\
a:focus-visible{outline:3px solid var(--link);outline-offset:2px}\
.ok{color:var(--ok)}\
.bad{color:var(--bad)}\
code{font-size:1rem;word-break:break-all}\
footer{font-size:.875rem;color:var(--muted);text-align:center}\
.next{font-size:1.125rem}";

/// The page's one script: after a payment on this page (the widget's `deshpay:success`), shows the link to
/// `success_url`.
const SCRIPT: &str = "addEventListener('deshpay:success',()=>{const n=document.getElementById('next');\
if(n)n.hidden=false});";

fn sha256_source(text: &str) -> String {
    format!("'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes())))
}

/// The page's Content-Security-Policy (the hashes of its inline style and script; `'wasm-unsafe-eval'` lets the
/// widget compile).
static CSP: LazyLock<String> = LazyLock::new(|| {
    format!(
        "default-src 'none'; script-src 'self' 'wasm-unsafe-eval' {script}; style-src {style}; \
         connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        script = sha256_source(SCRIPT),
        style = sha256_source(CSS),
    )
});

/// The page's language: the session's, else the customer's browser's (`Accept-Language`), else English.
fn pick_locale(session: Option<&str>, headers: &HeaderMap) -> Locale {
    if let Some(locale) = session.and_then(Locale::parse) {
        return locale;
    }
    let accept = headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    accept
        .split(',')
        .filter_map(|tag| Locale::parse(tag.split(';').next().unwrap_or_default()))
        .next()
        .unwrap_or_default()
}

fn fill(text: &str, merchant: &str) -> String {
    text.replace("{merchant}", merchant)
}

fn layout(locale: Locale, theme: &str, title: &str, head: Markup, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(locale.as_str()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="robots" content="noindex, nofollow";
                title { (title) }
                style { (PreEscaped(CSS)) }
                (head)
            }
            body class=(theme) {
                main { (body) }
            }
        }
    }
}

/// Adds the page's security headers.
fn secure(status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, markup).into_response();
    let headers = response.headers_mut();
    if let Ok(csp) = HeaderValue::from_str(&CSP) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// A page that says why there is nothing to pay.
fn notice(status: StatusCode, locale: Locale, theme: &str, merchant: &str, heading: &str, body: &str) -> Response {
    let markup = layout(
        locale,
        theme,
        heading,
        html! {},
        html! {
            div.card {
                h1 { (heading) }
                p { (body) }
            }
            footer { (fill(Word::Footer.text(locale), merchant)) }
        },
    );
    secure(status, markup)
}

/// `GET /pay/{id}`.
pub async fn render(state: &AppState, raw_id: &str, headers: &HeaderMap) -> Response {
    let merchant = state.settings.merchant.name.as_str();
    let not_found = |locale: Locale| {
        notice(
            StatusCode::NOT_FOUND,
            locale,
            "light",
            merchant,
            Word::NotFound.text(locale),
            Key::NotFound.text(locale),
        )
    };
    let Ok(id) = SessionId::parse(raw_id) else {
        return not_found(pick_locale(None, headers));
    };
    let row = match state.load_session(&id).await {
        Ok(row) => row,
        Err(SessionError::NotFound(_)) => return not_found(pick_locale(None, headers)),
        Err(e) => return trouble(state, headers, &e.message()),
    };
    let locale = pick_locale(row.page_locale.as_deref(), headers);
    let theme = row.page_theme.as_deref().filter(|t| PAGE_THEMES.contains(t)).unwrap_or("light");
    let status = |key: Key, body: Key| {
        notice(StatusCode::GONE, locale, theme, merchant, key.text(locale), &fill(body.text(locale), merchant))
    };
    match row.status {
        SessionStatus::Expired => return status(Key::SessionExpired, Key::SessionExpiredBody),
        SessionStatus::Canceled => return status(Key::SessionCanceled, Key::SessionCanceledBody),
        SessionStatus::Paid => {
            let trx_id = match &row.paid_attempt_id {
                Some(attempt) => match state.store.attempt(attempt).await {
                    Ok(a) => a.and_then(|a| a.trx_id),
                    Err(e) => return trouble(state, headers, &e.to_string()),
                },
                None => None,
            };
            return paid(locale, theme, merchant, &row, trx_id.as_deref());
        }
        SessionStatus::Open => {}
    }
    let title = fill(Word::Title.text(locale), merchant);
    let endpoint = state.public_url.trim_end_matches('/');
    let markup = layout(
        locale,
        theme,
        &title,
        html! {
            script type="module" { (PreEscaped(SCRIPT)) }
        },
        html! {
            h1 { (title) }
            div id="pay" {}
            script type="module" src="/pay/pkg/deshpay.js" data-session=(row.id.as_str()) data-endpoint=(endpoint)
                data-theme=(theme) data-locale=(locale.as_str()) data-target="#pay" {}
            noscript { div.card { p.bad { (Word::NoScript.text(locale)) } } }
            @if let Some(url) = &row.success_url {
                p id="next" class="card next" hidden {
                    a href=(url) { (fill(Word::Continue.text(locale), merchant)) }
                }
            }
            footer { (fill(Word::Footer.text(locale), merchant)) }
        },
    );
    secure(StatusCode::OK, markup)
}

/// The receipt of a paid session.
fn paid(locale: Locale, theme: &str, merchant: &str, row: &crate::store::SessionRow, trx_id: Option<&str>) -> Response {
    let heading = Key::Success.text(locale);
    let amount = deshpay_widget::money::format(row.amount.minor(), row.amount.currency(), locale);
    let markup = layout(
        locale,
        theme,
        heading,
        html! {},
        html! {
            div.card {
                h1.ok { (heading) }
                p { (Key::Amount.text(locale)) ": " strong { (amount) } }
                p { (Key::Invoice.text(locale)) ": " (row.invoice) }
                @if let Some(trx_id) = trx_id {
                    p { (Key::TrxId.text(locale)) ": " code data-testid="trx-id" { (trx_id) } }
                }
            }
            @if let Some(url) = &row.success_url {
                p.card.next {
                    a href=(url) { (fill(Word::Continue.text(locale), merchant)) }
                }
            }
            footer { (fill(Word::Footer.text(locale), merchant)) }
        },
    );
    secure(StatusCode::OK, markup)
}

/// A store failure: logged, and a plain page that says nothing of it.
fn trouble(state: &AppState, headers: &HeaderMap, cause: &str) -> Response {
    tracing::error!(cause, "the hosted payment page could not load its session");
    let locale = pick_locale(None, headers);
    let merchant = state.settings.merchant.name.as_str();
    notice(
        StatusCode::INTERNAL_SERVER_ERROR,
        locale,
        "light",
        merchant,
        Word::Trouble.text(locale),
        Key::Unreachable.text(locale),
    )
}

/// Whether `name` may be one of the widget's files: one path segment of letters, digits, `_`, `-` and `.`,
/// not starting with a dot.
pub fn widget_file_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// `GET /pay/{id}/qr.svg`: the page's URL as a QR code, dark on white, for the counter or a printed invoice.
pub fn qr_svg(url: &str) -> Option<String> {
    let qr = crate::qr::draw(url)?;
    let size = qr.size;
    Some(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {size} {size}\" width=\"{px}\" height=\"{px}\" \
         shape-rendering=\"crispEdges\" role=\"img\" aria-label=\"QR code of the payment page\">\
         <title>QR code of the payment page</title>\
         <rect width=\"{size}\" height=\"{size}\" fill=\"#fff\"/><path fill=\"#000\" d=\"{path}\"/></svg>",
        px = size * 8,
        path = qr.path,
    ))
}
