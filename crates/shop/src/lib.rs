//! The demo merchant shop that `cargo xtask demo` runs and the end-to-end tests drive.
//!
//! It plays the merchant: its server side creates a checkout session on the DeshPay backend with the merchant
//! API key (the amount is fixed here, never by the browser), then serves a page that embeds the widget with one
//! script tag. It also serves the loader at `/deshpay.js`, the built package under `/pkg/`, and the theme
//! gallery at `/gallery.html`, all from the repository's `www/` and `pkg/`.
//!
//! Run it with `deshpay-demo-shop --backend http://127.0.0.1:8081 --api-key KEY` (see `--help`).

use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tower_http::services::{ServeDir, ServeFile};

/// A product of the demo shop.
#[derive(Debug, Clone, Copy)]
pub struct Product {
    /// URL slug.
    pub slug: &'static str,
    /// Display name.
    pub name: &'static str,
    /// Decimal price.
    pub price: &'static str,
    /// "BDT" or "INR".
    pub currency: &'static str,
    /// Methods offered.
    pub method: &'static str,
}

/// The catalogue.
pub const PRODUCTS: [Product; 3] = [
    Product { slug: "tea", name: "Sylhet tea gift box", price: "250.00", currency: "BDT", method: "bkash" },
    Product { slug: "jamdani", name: "Jamdani scarf", price: "1499.00", currency: "BDT", method: "bkash" },
    Product { slug: "kurta", name: "Block-print kurta", price: "101.00", currency: "INR", method: "upi" },
];

/// How to run the shop.
#[derive(Debug, Clone)]
pub struct ShopConfig {
    /// Where to listen (port 0 picks one).
    pub listen: SocketAddr,
    /// The DeshPay backend, as the shop's server reaches it (merchant API).
    pub backend_url: String,
    /// The backend as browsers reach it (the widget's `data-endpoint`); usually the same.
    pub public_backend_url: Option<String>,
    /// The merchant API key.
    pub api_key: String,
    /// Directory with deshpay.js, gallery.html.
    pub www_dir: PathBuf,
    /// Directory with the built package.
    pub pkg_dir: PathBuf,
    /// The secret of the backend's signed webhooks (`[webhook]` there); without it the shop takes none.
    pub webhook_secret: Option<String>,
}

#[derive(Debug)]
struct Shop {
    config: ShopConfig,
    url: String,
    http: reqwest::Client,
    orders: AtomicU64,
    /// Webhook events received and verified: `(event id, type, session id)`, oldest first.
    webhooks: Mutex<Vec<(String, String, String)>>,
}

/// A running shop.
#[derive(Debug)]
pub struct RunningShop {
    url: String,
}

impl RunningShop {
    /// The shop's URL (no trailing slash).
    pub fn url(&self) -> String {
        self.url.clone()
    }
}

/// Binds and serves the shop in a background task.
///
/// # Errors
/// When the address cannot be bound.
pub async fn spawn(config: ShopConfig) -> anyhow::Result<RunningShop> {
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let url = format!("http://{}", listener.local_addr()?);
    let shop = Arc::new(Shop {
        config,
        url: url.clone(),
        http: reqwest::Client::new(),
        orders: AtomicU64::new(0),
        webhooks: Mutex::new(Vec::new()),
    });
    let app = router(shop);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "shop stopped");
        }
    });
    Ok(RunningShop { url })
}

fn router(shop: Arc<Shop>) -> Router {
    let www = shop.config.www_dir.clone();
    Router::new()
        .route("/", get(index))
        .route("/buy/{slug}", post(buy))
        .route("/checkout/{session}", get(checkout))
        .route("/return", get(return_page))
        .route("/playground", get(playground))
        .route("/strict/checkout/{session}", get(strict_checkout))
        .route("/events.js", get(events_js))
        .route("/webhooks/deshpay", post(webhook).get(webhooks_received))
        .route_service("/deshpay.js", ServeFile::new(www.join("deshpay.js")))
        .route_service("/gallery.html", ServeFile::new(www.join("gallery.html")))
        // The build writes .br and .gz beside each file the browser loads first: sent as they are, no
        // compression on the fly (see `cargo xtask build`).
        .nest_service("/pkg", ServeDir::new(shop.config.pkg_dir.clone()).precompressed_br().precompressed_gzip())
        .with_state(shop)
}

fn layout(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Deshi Bazaar" }
                style { (maud::PreEscaped(SHOP_CSS)) }
            }
            body {
                header { a href="/" { "Deshi Bazaar" } span { " — a DeshPay demo shop" } }
                main { (body) }
            }
        }
    }
}

const SHOP_CSS: &str = "body{font-family:system-ui,sans-serif;margin:0;background:#faf7f2;color:#1f2328}\
header{background:#1f2328;color:#fff;padding:12px 24px}header a{color:#fff;font-weight:700;text-decoration:none}\
main{max-width:720px;margin:24px auto;padding:0 16px}.product{background:#fff;border:1px solid #ddd;border-radius:8px;\
padding:16px;margin:12px 0;display:flex;justify-content:space-between;align-items:center}\
button{font:inherit;padding:8px 16px;border-radius:6px;border:1px solid #1f2328;background:#fff;cursor:pointer}\
.options{margin:8px 0 16px}label{margin-right:12px}";

async fn index() -> Markup {
    layout(
        "Shop",
        html! {
            h1 { "Products" }
            @for p in PRODUCTS {
                form class="product" method="post" action={ "/buy/" (p.slug) } {
                    div { strong { (p.name) } br; (p.price) " " (p.currency) }
                    div class="options" {
                        label { "Theme " select name="theme" {
                            @for t in ["light", "dark", "bkash", "high-contrast"] { option value=(t) { (t) } }
                        } }
                        label { "Language " select name="locale" {
                            option value="en" { "English" } option value="bn" { "বাংলা" } option value="hi" { "हिन्दी" }
                        } }
                    }
                    button type="submit" { "Buy " (p.name) }
                }
            }
        },
    )
}

#[derive(Debug, Deserialize)]
struct BuyForm {
    #[serde(default)]
    theme: Option<String>,
    #[serde(default)]
    locale: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
struct Look {
    #[serde(default)]
    theme: Option<String>,
    #[serde(default)]
    locale: Option<String>,
}

fn safe_choice(value: Option<&str>, allowed: &[&str]) -> Option<String> {
    value.filter(|v| allowed.contains(v)).map(str::to_owned)
}

/// The merchant's server side: creates the session with the API key, then shows the checkout page.
async fn buy(State(shop): State<Arc<Shop>>, Path(slug): Path<String>, Form(form): Form<BuyForm>) -> Response {
    let Some(product) = PRODUCTS.iter().find(|p| p.slug == slug) else {
        return (StatusCode::NOT_FOUND, "no such product").into_response();
    };
    let n = shop.orders.fetch_add(1, Ordering::SeqCst);
    let millis = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    let invoice = format!("DB-{millis}-{n}");
    let theme = safe_choice(form.theme.as_deref(), &["light", "dark", "bkash", "high-contrast"]);
    let locale = safe_choice(form.locale.as_deref(), &["en", "bn", "hi"]);
    let params: Vec<String> =
        [("theme", theme), ("locale", locale)].into_iter().filter_map(|(k, v)| v.map(|v| format!("{k}={v}"))).collect();
    let look = if params.is_empty() { String::new() } else { format!("?{}", params.join("&")) };
    // The customer comes back from bKash in the language and theme they paid in.
    let body = serde_json::json!({
        "amount": product.price, "currency": product.currency, "invoice": invoice,
        "return_url": format!("{}/return{look}", shop.url), "methods": [product.method],
        "description": product.name,
    });
    let created = shop
        .http
        .post(format!("{}/v1/sessions", shop.config.backend_url))
        .bearer_auth(&shop.config.api_key)
        .json(&body)
        .send()
        .await;
    let session = match created {
        Ok(r) if r.status().is_success() => r.json::<serde_json::Value>().await.ok(),
        Ok(r) => {
            tracing::error!(status = %r.status(), "session creation refused");
            None
        }
        Err(e) => {
            tracing::error!(error = %e, "backend unreachable");
            None
        }
    };
    let Some(id) = session.as_ref().and_then(|s| s["id"].as_str()) else {
        return (StatusCode::BAD_GATEWAY, layout("Error", html! { p { "The payment service is unavailable." } }))
            .into_response();
    };
    Redirect::to(&format!("/checkout/{id}{look}")).into_response()
}

/// `below` goes under the widget, inside the page's main column.
fn widget_page(shop: &Shop, session: &str, look: &Look, heading: &str, below: Markup) -> Markup {
    let endpoint = shop.config.public_backend_url.clone().unwrap_or_else(|| shop.config.backend_url.clone());
    embed_page(session, &endpoint, look, heading, below)
}

/// Records the widget's DOM events in `window.deshpayEvents` and the console, so people and tests can see them.
const EVENTS_JS: &str = "window.deshpayEvents = [];\n\
for (const name of ['ready', 'success', 'failure', 'cancel']) {\n\
  document.addEventListener('deshpay:' + name, (e) => {\n\
    window.deshpayEvents.push({ type: e.type, detail: e.detail, at: performance.now() });\n\
    console.log(e.type, e.detail);\n\
  });\n\
}\n";

async fn events_js() -> Response {
    ([(axum::http::header::CONTENT_TYPE, "text/javascript")], EVENTS_JS).into_response()
}

fn embed_page(session: &str, endpoint: &str, look: &Look, heading: &str, below: Markup) -> Markup {
    let theme = safe_choice(look.theme.as_deref(), &["light", "dark", "bkash", "high-contrast"]);
    let locale = safe_choice(look.locale.as_deref(), &["en", "bn", "hi"]);
    layout(
        heading,
        html! {
            h1 { (heading) }
            p { "Order for session " code { (session) } }
            script src="/events.js" defer {}
            script type="module" src="/deshpay.js" data-session=(session) data-endpoint=(endpoint)
                data-theme=[theme] data-locale=[locale] {}
            (below)
        },
    )
}

fn valid_session(id: &str) -> bool {
    id.starts_with("cs_") && id.len() == 27 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

async fn checkout(State(shop): State<Arc<Shop>>, Path(session): Path<String>, Query(look): Query<Look>) -> Response {
    if !valid_session(&session) {
        return (StatusCode::NOT_FOUND, "no such checkout").into_response();
    }
    widget_page(&shop, &session, &look, "Checkout", html! {}).into_response()
}

#[derive(Debug, Deserialize)]
struct ReturnQuery {
    deshpay_session: Option<String>,
    #[serde(default)]
    theme: Option<String>,
    #[serde(default)]
    locale: Option<String>,
}

/// Where the backend sends the customer back after bKash: the same widget, which shows the outcome.
async fn return_page(State(shop): State<Arc<Shop>>, Query(q): Query<ReturnQuery>) -> Response {
    match q.deshpay_session.filter(|s| valid_session(s)) {
        Some(session) => {
            let heard: Vec<String> = shop
                .webhooks
                .lock()
                .map(|w| w.iter().filter(|(_, _, s)| *s == session).map(|(_, kind, _)| kind.clone()).collect())
                .unwrap_or_default();
            let below = html! {
                @if !heard.is_empty() {
                    p.webhooks { "Our server heard from DeshPay (signed webhook, verified): " (heard.join(", ")) }
                }
            };
            let look = Look { theme: q.theme, locale: q.locale };
            widget_page(&shop, &session, &look, "Your order", below).into_response()
        }
        None => (StatusCode::BAD_REQUEST, "missing session").into_response(),
    }
}

/// Checks a `DeshPay-Signature` header (`t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">`) as a merchant
/// should: the HMAC compared in constant time, and `t` within 5 minutes of now (a replay is refused). During a
/// secret rotation the backend sends one `v1` per secret; any one matching is enough.
fn signature_ok(secret: &str, header: &str, body: &str, now_secs: i64) -> bool {
    use hmac::Mac;
    let mut t = None;
    let mut v1s = Vec::new();
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => t = value.parse::<i64>().ok(),
            Some(("v1", value)) => v1s.extend(hex(value)),
            _ => {}
        }
    }
    let Some(t) = t else { return false };
    if (now_secs - t).abs() > 300 {
        return false;
    }
    let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) else { return false };
    mac.update(format!("{t}.").as_bytes());
    mac.update(body.as_bytes());
    v1s.iter().any(|v1| mac.clone().verify_slice(v1).is_ok())
}

fn hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

/// `POST /webhooks/deshpay`: the backend's signed events. Verified, deduplicated by event id, kept in memory
/// (a real shop would mark its order paid here, in its own database).
async fn webhook(State(shop): State<Arc<Shop>>, headers: axum::http::HeaderMap, body: String) -> Response {
    let Some(secret) = &shop.config.webhook_secret else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let header = headers.get("deshpay-signature").and_then(|h| h.to_str().ok()).unwrap_or_default();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    if !signature_ok(secret, header, &body, now) {
        tracing::warn!("webhook with a bad or stale signature refused");
        return (StatusCode::BAD_REQUEST, "bad signature").into_response();
    }
    let Ok(event) = serde_json::from_str::<serde_json::Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "not JSON").into_response();
    };
    let field = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
    let (id, kind, session) = (field(&event["id"]), field(&event["type"]), field(&event["data"]["session_id"]));
    if let Ok(mut seen) = shop.webhooks.lock()
        && !seen.iter().any(|(i, _, _)| *i == id)
    {
        tracing::info!(event = %id, kind = %kind, session = %session, "webhook received");
        seen.push((id, kind, session));
    }
    StatusCode::NO_CONTENT.into_response()
}

/// `GET /webhooks/deshpay`: what the shop has received, for people and tests.
async fn webhooks_received(State(shop): State<Arc<Shop>>) -> Response {
    let seen = shop.webhooks.lock().map(|w| w.clone()).unwrap_or_default();
    let list: Vec<serde_json::Value> = seen
        .into_iter()
        .map(|(id, kind, session)| serde_json::json!({"id": id, "type": kind, "session_id": session}))
        .collect();
    axum::Json(list).into_response()
}

#[derive(Debug, Deserialize)]
struct PlaygroundQuery {
    session: String,
    endpoint: String,
    #[serde(default)]
    theme: Option<String>,
    #[serde(default)]
    locale: Option<String>,
}

/// Demo only: embeds the widget with any session and endpoint (e.g. an unreachable backend).
async fn playground(Query(q): Query<PlaygroundQuery>) -> Response {
    if !valid_session(&q.session) || !(q.endpoint.starts_with("http://") || q.endpoint.starts_with("https://")) {
        return (StatusCode::BAD_REQUEST, "session and an http(s) endpoint are required").into_response();
    }
    let look = Look { theme: q.theme, locale: q.locale };
    embed_page(&q.session, &q.endpoint, &look, "Playground", html! {}).into_response()
}

/// Demo only: the checkout page under a Content-Security-Policy that forbids WebAssembly, to show the
/// loader's fallback.
async fn strict_checkout(State(shop): State<Arc<Shop>>, Path(session): Path<String>) -> Response {
    if !valid_session(&session) {
        return (StatusCode::NOT_FOUND, "no such checkout").into_response();
    }
    let page = widget_page(&shop, &session, &Look::default(), "Checkout (strict CSP)", html! {});
    ([(axum::http::header::CONTENT_SECURITY_POLICY, "default-src 'self'; script-src 'self'; connect-src *")], page)
        .into_response()
}
