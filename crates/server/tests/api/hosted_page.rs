//! The hosted payment page `GET /pay/{id}`, its QR code, the widget's files it loads, and payment links.

use crate::helpers::*;
use base64::Engine;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

impl TestApp {
    /// `POST /v1/sessions` with `body`'s fields over a BDT bKash session of 250.00 with a fresh invoice.
    async fn create(&self, extra: Value) -> reqwest::Response {
        let mut body = json!({"amount": "250.00", "currency": "BDT", "invoice": format!("ORD-{}", rand_suffix()),
                              "methods": ["bkash"]});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        self.post_json("/v1/sessions", &body).await
    }

    async fn created(&self, extra: Value) -> Value {
        let r = self.create(extra).await;
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
        r.json().await.unwrap()
    }

    /// The hosted page as a browser gets it (no API key).
    async fn page(&self, path: &str, accept_language: Option<&str>) -> (u16, reqwest::header::HeaderMap, String) {
        let mut request = self.http.get(format!("{}{path}", self.url));
        if let Some(lang) = accept_language {
            request = request.header("accept-language", lang);
        }
        let r = request.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        (status, headers, r.text().await.unwrap())
    }
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text.find(start).unwrap_or_else(|| panic!("{start} in {text}")) + start.len();
    let to = text[from..].find(end).unwrap() + from;
    &text[from..to]
}

fn sha256_source(text: &str) -> String {
    format!("'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes())))
}

/// Checks the page's security headers: the CSP allows this origin's scripts, WebAssembly and exactly the page's
/// inline style and script (by hash), and nothing else.
fn assert_secure(headers: &reqwest::header::HeaderMap, html: &str) {
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    let csp = headers["content-security-policy"].to_str().unwrap();
    for directive in [
        "default-src 'none'",
        "script-src 'self' 'wasm-unsafe-eval'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} in {csp}");
    }
    assert!(!csp.contains("unsafe-inline") && !csp.contains("'unsafe-eval'"), "{csp}");
    assert!(csp.contains(&sha256_source(between(html, "<style>", "</style>"))), "the inline style's hash: {csp}");
    if html.contains("<script type=\"module\">") {
        let script = between(html, "<script type=\"module\">", "</script>");
        assert!(csp.contains(&sha256_source(script)), "the inline script's hash: {csp}");
    }
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["x-content-type-options"], "nosniff");
}

#[tokio::test]
async fn a_session_carries_its_page_url_which_shows_its_widget_in_its_theme_and_language() {
    let app = spawn_app().await;
    let session = app
        .created(json!({"return_url": "https://shop.example/return?secret-order=1", "theme": "dark", "locale": "bn",
                        "success_url": "https://shop.example/thanks", "description": "Tea <b>x</b>"}))
        .await;
    let id = session["id"].as_str().unwrap();
    assert_eq!(session["url"], format!("{}/pay/{id}", app.url));
    assert_eq!(session["theme"], "dark");
    assert_eq!(session["locale"], "bn");
    assert_eq!(session["success_url"], "https://shop.example/thanks");
    assert_eq!(session["link"], false);
    assert_eq!(session["return_url"], "https://shop.example/return?secret-order=1");
    assert_eq!(app.session(id).await["url"], session["url"], "GET /v1/sessions/{{id}} carries it too");

    let (status, headers, html) = app.page(&format!("/pay/{id}"), Some("hi-IN")).await;
    assert_eq!(status, 200, "{html}");
    assert_secure(&headers, &html);
    assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
    assert!(html.contains("<html lang=\"bn\">"), "the session's language wins over the browser's: {html}");
    assert!(html.contains("<body class=\"dark\">"), "{html}");
    let tag = between(&html, "<script type=\"module\" src=", "</script>");
    for attribute in [
        "\"/pay/pkg/deshpay.js\"".to_owned(),
        format!("data-session=\"{id}\""),
        format!("data-endpoint=\"{}\"", app.url),
        "data-theme=\"dark\"".into(),
        "data-locale=\"bn\"".into(),
        "data-target=\"#pay\"".into(),
    ] {
        assert!(tag.contains(&attribute), "{attribute} in {tag}");
    }
    assert!(html.contains("<div id=\"pay\">"), "{html}");
    // The success link waits, hidden, for the widget's deshpay:success.
    assert!(html.contains("hidden"), "{html}");
    assert!(html.contains("href=\"https://shop.example/thanks\""), "{html}");
    // Only public data: not the merchant's return URL, not the key.
    assert!(!html.contains("secret-order") && !html.contains(API_KEY), "{html}");
    assert!(html.contains("Test Shop"), "the merchant's name: {html}");
}

#[tokio::test]
async fn without_a_language_the_page_speaks_the_browsers_and_defaults_to_light() {
    let app = spawn_app().await;
    let session = app.created(json!({"return_url": "https://shop.example/r"})).await;
    let id = session["id"].as_str().unwrap();
    assert_eq!(session["theme"], Value::Null);
    for (accept, lang) in [(Some("hi-IN,hi;q=0.9,en;q=0.8"), "hi"), (Some("fr-FR, bn;q=0.5"), "bn"), (None, "en")] {
        let (status, headers, html) = app.page(&format!("/pay/{id}"), accept).await;
        assert_eq!(status, 200);
        assert_secure(&headers, &html);
        assert!(html.contains(&format!("<html lang=\"{lang}\">")), "{accept:?}: {html}");
        assert!(html.contains(&format!("data-locale=\"{lang}\"")), "{accept:?}: {html}");
        assert!(html.contains("<body class=\"light\">"), "{html}");
    }
}

#[tokio::test]
async fn unknown_malformed_and_expired_sessions_get_a_clear_page_not_a_stack_trace() {
    let app = spawn_app().await;
    for path in ["/pay/cs_aaaaaaaaaaaaaaaaaaaaaaaa", "/pay/nope", "/pay/%3Cscript%3E"] {
        let (status, headers, html) = app.page(path, None).await;
        assert_eq!(status, 404, "{path}: {html}");
        assert_secure(&headers, &html);
        assert!(html.contains("This payment link was not found"), "{path}: {html}");
        assert!(!html.contains("<script"), "{path}: {html}");
    }
    let (status, _, html) = app.page("/pay/cs_aaaaaaaaaaaaaaaaaaaaaaaa", Some("bn")).await;
    assert_eq!(status, 404);
    assert!(html.contains("এই পেমেন্ট লিংকটি খুঁজে পাওয়া যায়নি"), "in the browser's language: {html}");

    let session = app.created(json!({"return_url": "https://shop.example/r", "expires_in": 60})).await;
    let id = session["id"].as_str().unwrap();
    app.advance(61).await;
    let (status, headers, html) = app.page(&format!("/pay/{id}"), None).await;
    assert_eq!(status, 410, "{html}");
    assert_secure(&headers, &html);
    assert!(html.contains("Payment link expired"), "{html}");
    assert!(html.contains("This payment link has expired"), "{html}");
    assert!(!html.contains("data-session"), "no widget for an expired session: {html}");
    assert_eq!(app.session(id).await["status"], "expired");
}

#[tokio::test]
async fn a_payment_link_is_paid_on_its_page_which_shows_the_receipt_and_leads_to_the_success_url() {
    let app = spawn_app_with(outbox_only).await;
    let link = app.created(json!({"link": true, "success_url": "http://127.0.0.1:9/thanks?o=1"})).await;
    let id = link["id"].as_str().unwrap();
    assert_eq!(link["link"], true);
    assert_eq!(link["return_url"], Value::Null, "a link has no return URL");

    let bkash_url = app.start_bkash(id).await;
    let callback = app.pay_on_page(&bkash_url, WALLET, OTP, PIN).await;
    let back = app.follow_callback(&callback).await;
    // bKash brings the customer back to the link's own page.
    assert!(back.starts_with(&format!("{}/pay/{id}?", app.url)), "{back}");
    assert_eq!(query_param(&back, "deshpay_session").as_deref(), Some(id));
    assert_eq!(query_param(&back, "deshpay_status").as_deref(), Some("paid"));

    let paid = app.session(id).await;
    assert_eq!(paid["status"], "paid");
    let trx_id = paid["payment"]["trx_id"].as_str().unwrap();
    assert_eq!(app.outbox_count("session.paid").await, 1, "paying a link sends session.paid like any session");

    let (status, headers, html) = app.page(back.strip_prefix(&app.url).unwrap(), None).await;
    assert_eq!(status, 200, "{html}");
    assert_secure(&headers, &html);
    assert!(html.contains("<h1 class=\"ok\">Payment successful</h1>"), "{html}");
    assert!(html.contains(trx_id), "the transaction id: {html}");
    assert!(html.contains("৳250.00"), "the amount as the widget writes it: {html}");
    // Offered, never followed by itself (a redirect on a timer is a time limit the customer cannot stop).
    assert!(!html.contains("http-equiv"), "{html}");
    assert!(html.contains("<a href=\"http://127.0.0.1:9/thanks?o=1\">Continue to Test Shop</a>"), "{html}");
    assert!(!html.contains("data-session"), "no widget to pay again: {html}");
    // Nothing only the merchant API shows: not the payer's wallet, masked or not.
    let payer = paid["payment"]["payer"].as_str().unwrap();
    assert!(!html.contains(WALLET) && !html.contains(payer), "{html}");
}

#[tokio::test]
async fn a_payment_link_lives_seven_days_by_default_and_at_most() {
    let app = spawn_app().await;
    let link = app.created(json!({"link": true})).await;
    let lifetime = |s: &Value| {
        let t = |f: &str| {
            time::OffsetDateTime::parse(s[f].as_str().unwrap(), &time::format_description::well_known::Rfc3339).unwrap()
        };
        (t("expires_at") - t("created_at")).whole_seconds()
    };
    assert_eq!(lifetime(&link), 7 * 86_400);
    assert_eq!(lifetime(&app.created(json!({"link": true, "expires_in": 604_800})).await), 604_800);
    assert_eq!(lifetime(&app.created(json!({"link": true, "expires_in": 3_600})).await), 3_600);
    let session = app.created(json!({"return_url": "https://shop.example/r"})).await;
    assert_eq!(lifetime(&session), 1800, "a session keeps its default");
    assert_eq!(session["link"], false);

    for (body, words) in [
        (json!({"link": true, "expires_in": 604_801}), "between 60 and 604800"),
        (json!({"link": true, "expires_in": 59}), "between 60 and 604800"),
        (json!({"expires_in": 86_401, "return_url": "https://shop.example/r"}), "between 60 and 86400"),
        (json!({"link": true, "return_url": "https://shop.example/r"}), "no return_url"),
    ] {
        let r = app.create(body.clone()).await;
        assert_eq!(r.status(), 400, "{body}");
        let error: Value = r.json().await.unwrap();
        assert_eq!(error["error"]["code"], "invalid_request", "{body}");
        assert!(error["error"]["message"].as_str().unwrap().contains(words), "{body}: {error}");
    }
}

#[tokio::test]
async fn success_url_theme_and_locale_are_checked() {
    let app = spawn_app().await;
    let long = format!("https://shop.example/{}", "a".repeat(2048));
    for bad in [
        json!({"success_url": "javascript:alert(1)"}),
        json!({"success_url": "data:text/html,hi"}),
        json!({"success_url": "ftp://shop.example/x"}),
        json!({"success_url": "http://shop.example/thanks"}),
        json!({"success_url": "http://10.0.0.1/thanks"}),
        json!({"success_url": "https://user:pw@shop.example/"}),
        json!({"success_url": "/thanks"}),
        json!({"success_url": "not a url"}),
        json!({"success_url": long}),
        json!({"theme": "pink"}),
        json!({"theme": "Dark"}),
        json!({"locale": "fr"}),
        json!({"locale": "bn-BD"}),
    ] {
        let mut body = bad.clone();
        body["link"] = json!(true);
        let r = app.create(body).await;
        assert_eq!(r.status(), 400, "{bad}");
        let error: Value = r.json().await.unwrap();
        assert_eq!(error["error"]["code"], "invalid_request", "{bad}: {error}");
    }
    for good in ["https://shop.example/thanks", "http://localhost:3000/ok", "http://127.0.0.1/ok", "http://[::1]:8080/"]
    {
        let s = app.created(json!({"link": true, "success_url": good})).await;
        assert_eq!(s["success_url"], good);
    }
    // Production takes https only.
    use deshpay_server::edge::check_success_url;
    assert!(check_success_url("https://shop.example/ok", 2048, true).is_ok());
    assert!(check_success_url("http://127.0.0.1/ok", 2048, true).is_err());
    assert!(check_success_url("http://localhost/ok", 2048, true).is_err());
}

/// Paints the SVG's `M{x} {y}h{n}v1h-{n}z` runs, 4 pixels a module, and decodes the QR code.
fn decode_qr(svg: &str) -> String {
    let size: usize = between(svg, "viewBox=\"0 0 ", " ").parse().unwrap();
    let path = between(svg, "<path fill=\"#000\" d=\"", "\"");
    let mut grid = vec![vec![false; size]; size];
    for run in path.split('M').filter(|s| !s.is_empty()) {
        let (xy, rest) = run.split_once('h').unwrap();
        let (x, y) = xy.split_once(' ').unwrap();
        let n: usize = rest.split_once('v').unwrap().0.parse().unwrap();
        let (x, y): (usize, usize) = (x.parse().unwrap(), y.parse().unwrap());
        for cell in &mut grid[y][x..x + n] {
            *cell = true;
        }
    }
    let scale = 4;
    let side = size * scale;
    let mut image =
        rqrr::PreparedImage::prepare_from_greyscale(
            side,
            side,
            |x, y| if grid[y / scale][x / scale] { 0 } else { 255 },
        );
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code");
    grids[0].decode().unwrap().1
}

#[tokio::test]
async fn the_qr_code_is_an_svg_of_the_page_url() {
    let app = spawn_app().await;
    let link = app.created(json!({"link": true})).await;
    let id = link["id"].as_str().unwrap();
    let r = app.http.get(format!("{}/pay/{id}/qr.svg", app.url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/svg+xml");
    assert_eq!(r.headers()["content-security-policy"], "default-src 'none'");
    let svg = r.text().await.unwrap();
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""), "{svg}");
    assert!(svg.ends_with("</svg>"), "{svg}");
    assert!(svg.contains("<title>"), "an accessible name: {svg}");
    assert!(!svg.contains("<script"), "{svg}");
    // Well-formed: every element opened is closed.
    assert_eq!(svg.matches("<svg").count(), svg.matches("</svg>").count());
    assert_eq!(svg.matches("<title>").count(), svg.matches("</title>").count());
    assert_eq!(decode_qr(&svg), link["url"].as_str().unwrap());

    let r = app.http.get(format!("{}/pay/cs_aaaaaaaaaaaaaaaaaaaaaaaa/qr.svg", app.url)).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "session_not_found");
    let short = app.created(json!({"link": true, "expires_in": 60})).await;
    app.advance(61).await;
    let r = app.http.get(format!("{}/pay/{}/qr.svg", app.url, short["id"].as_str().unwrap())).send().await.unwrap();
    assert_eq!(r.status(), 410);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "session_expired");
}

#[tokio::test]
async fn the_widget_files_are_served_precompressed_from_the_widget_dir() {
    let pkg = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: &[u8]| std::fs::write(pkg.path().join(name), bytes).unwrap();
    write("deshpay.js", b"export const plain = 1;");
    write("deshpay.js.br", b"brotli bytes");
    write("deshpay.js.gz", b"gzip bytes");
    write("deshpay_widget_bg.wasm", b"\0asm\x01\0\0\0");
    write("deshpay-bn.json", b"[\"x\"]");
    let dir = pkg.path().to_path_buf();
    let app = spawn_app_with(|s| s.server.widget_dir = Some(dir)).await;
    let get = |file: &str, encoding: Option<&str>| {
        let mut request = app.http.get(format!("{}/pay/pkg/{file}", app.url));
        if let Some(encoding) = encoding {
            request = request.header("accept-encoding", encoding);
        }
        request.send()
    };
    for (encoding, body, content_encoding) in [
        (Some("gzip, deflate, br"), "brotli bytes", Some("br")),
        (Some("gzip"), "gzip bytes", Some("gzip")),
        (None, "export const plain = 1;", None),
    ] {
        let r = get("deshpay.js", encoding).await.unwrap();
        assert_eq!(r.status(), 200, "{encoding:?}");
        assert_eq!(r.headers()["content-type"], "text/javascript", "{encoding:?}");
        assert_eq!(r.headers()["cache-control"], "no-cache");
        assert_eq!(r.headers().get("content-encoding").map(|v| v.to_str().unwrap()), content_encoding);
        assert_eq!(r.text().await.unwrap(), body, "{encoding:?}");
    }
    let r = get("deshpay_widget_bg.wasm", None).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/wasm");
    let r = get("deshpay-bn.json", None).await.unwrap();
    assert_eq!(r.headers()["content-type"], "application/json");
    for missing in ["nothing.js", "..%2Fdeshpay.js", ".hidden", "%2E%2E", "a%2Fb.js"] {
        let r = get(missing, None).await.unwrap();
        assert_eq!(r.status(), 404, "{missing}");
    }
    let r = app.http.get(format!("{}/pay/pkg/..%2F..%2FCargo.toml", app.url)).send().await.unwrap();
    assert_eq!(r.status(), 404);
}
