//! The edges fail closed: configuration refusals, merchant keys, provider redirects, token rationing, limits.

use crate::helpers::*;
use axum::http::StatusCode;
use deshpay_server::configuration::{Environment, Settings, WebhookSettings};
use deshpay_server::preflight;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

const PRODUCTION_KEY: &str = "sk_live_9f3c1a7e5b2d4068a1c3e5f7092b4d6f";

/// Settings a production backend would start with.
fn production(sandbox: &deshpay_sandbox::Sandbox) -> Settings {
    let mut s = sandbox_settings(sandbox, "sqlite://unused.db");
    s.server.environment = Environment::Production;
    s.server.public_url = Some("https://pay.shop.example".into());
    s.server.allowed_origins = vec!["https://shop.example".into()];
    s.merchant.api_key = PRODUCTION_KEY.into();
    s.bkash.base_url = "https://tokenized.pay.bka.sh/v1.2.0-beta".into();
    s.bkash.username = "shopTokenizedUser".into();
    s.bkash.password = "a-production-password".into();
    s.bkash.app_key = "shopappkey0123456789".into();
    s.bkash.app_secret = "a-production-app-secret".into();
    let bestin = s.bestin.as_mut().unwrap();
    bestin.base_url = "https://api.bestinpay.com".into();
    bestin.app_id = "shop-app".into();
    bestin.public_key_pem = None;
    s.bkash.ipn_topic_arn = Some("arn:aws:sns:ap-southeast-1:123456789012:bpt_01711000000".into());
    s.bkash.ipn_cert_hosts = vec!["sns.*.amazonaws.com".into()];
    s.webhook = Some(WebhookSettings {
        url: "https://shop.example/deshpay/webhook".into(),
        secret: "whsec_0123456789abcdef0123456789abcdef".into(),
        secret_next: None,
        retry_ms: 1000,
        max_attempts: 3,
        timeout_ms: 1000,
    });
    s
}

type Change = fn(&mut Settings);

#[tokio::test]
async fn production_refuses_weak_keys_sandbox_credentials_and_http_urls_naming_the_setting() {
    let sandbox = deshpay_sandbox::Sandbox::spawn(Default::default()).await.unwrap();
    assert_eq!(preflight::check(&production(&sandbox)), Ok(()), "the production baseline is accepted");
    let mut with_backups = production(&sandbox);
    with_backups.bkash.backup_base_url = Some("https://tokenized2.pay.bka.sh/v1.2.0-beta".into());
    with_backups.bestin.as_mut().unwrap().backup_base_url = Some("https://api2.bestinpay.com".into());
    assert_eq!(preflight::check(&with_backups), Ok(()), "https backup URLs are accepted");
    let cases: &[(&str, &str, Change)] = &[
        ("empty key", "merchant.api_key", |s| s.merchant.api_key = "".into()),
        ("short key", "merchant.api_key", |s| s.merchant.api_key = "sk_live_short".into()),
        ("demo key", "merchant.api_key", |s| s.merchant.api_key = preflight::DEMO_API_KEY.into()),
        ("key with a space", "merchant.api_key", |s| {
            s.merchant.api_key = "sk_live_9f3c1a7e5b2d4068 1c3e5f7092b4d6f".into()
        }),
        ("weak next key", "merchant.api_key_next", |s| s.merchant.api_key_next = Some("nxt-k3y".into())),
        ("sandbox Bestin key", "bestin.public_key_pem", |s| {
            s.bestin.as_mut().unwrap().public_key_pem = Some(deshpay_sandbox::BESTIN_TEST_PUBLIC_KEY_PEM.into())
        }),
        ("sandbox Bestin app", "bestin.app_id", |s| s.bestin.as_mut().unwrap().app_id = "deshpay-sandbox-app".into()),
        ("bKash sandbox credentials", "bkash.app_key", |s| {
            let creds = deshpay_sandbox::BkashCredentials::public_sandbox();
            s.bkash.username = creds.username;
            s.bkash.app_key = creds.app_key;
        }),
        ("bKash sandbox host", "bkash.base_url", |s| {
            s.bkash.base_url = "https://tokenized.sandbox.bka.sh/v1.2.0-beta".into()
        }),
        ("http bKash", "bkash.base_url", |s| s.bkash.base_url = "http://tokenized.pay.bka.sh/v1.2.0-beta".into()),
        ("http Bestin", "bestin.base_url", |s| s.bestin.as_mut().unwrap().base_url = "http://api.bestinpay.com".into()),
        ("http Bestin backup", "bestin.backup_base_url", |s| {
            s.bestin.as_mut().unwrap().backup_base_url = Some("http://api2.bestinpay.com".into())
        }),
        ("http bKash backup", "bkash.backup_base_url", |s| {
            s.bkash.backup_base_url = Some("http://tokenized2.pay.bka.sh/v1.2.0-beta".into())
        }),
        ("http webhook", "webhook.url", |s| s.webhook.as_mut().unwrap().url = "http://shop.example/hook".into()),
        ("short webhook secret", "webhook.secret", |s| s.webhook.as_mut().unwrap().secret = "sixteen-bytes-ok".into()),
        ("http public URL", "server.public_url", |s| s.server.public_url = Some("http://pay.shop.example".into())),
        ("loopback public URL", "server.public_url", |s| s.server.public_url = Some("https://127.0.0.1:8443".into())),
        ("localhost public URL", "server.public_url", |s| s.server.public_url = Some("https://localhost".into())),
        ("no public URL", "server.public_url", |s| s.server.public_url = None),
        ("http origin", "server.allowed_origins", |s| s.server.allowed_origins = vec!["http://shop.example".into()]),
        ("wildcard origin", "server.allowed_origins", |s| s.server.allowed_origins = vec!["*".into()]),
        ("IPN certificates from a non-SNS host", "bkash.ipn_cert_hosts", |s| {
            s.bkash.ipn_cert_hosts = vec!["sns.*.amazonaws.com".into(), "*.example.com".into()]
        }),
        ("IPN certificates from the sandbox", "bkash.ipn_cert_hosts", |s| {
            s.bkash.ipn_cert_hosts = vec!["127.0.0.1:8082".into()]
        }),
    ];
    for (name, setting, change) in cases {
        let mut settings = production(&sandbox);
        change(&mut settings);
        let refusals = preflight::check(&settings).expect_err(name);
        let text = refusals.to_string();
        assert!(refusals.0.iter().any(|r| r.setting == *setting), "{name}: {text}");
        for line in text.lines() {
            assert!(line.starts_with("refusing to start: "), "{name}: one line per refusal: {text}");
        }
        for secret in ["sk_live_short", "sixteen-bytes-ok", "nxt-k3y", "sk_live_9f3c1a7e5b2d4068 1c3e5f7092b4d6f"] {
            assert!(!text.contains(secret), "{name}: a secret is echoed: {text}");
        }
    }
}

#[tokio::test]
async fn the_sandbox_environment_refuses_an_empty_key_and_bad_origins_but_allows_http() {
    let sandbox = deshpay_sandbox::Sandbox::spawn(Default::default()).await.unwrap();
    assert_eq!(preflight::check(&sandbox_settings(&sandbox, "sqlite://x.db")), Ok(()));
    let cases: &[(&str, Change)] = &[
        ("merchant.api_key", |s| s.merchant.api_key = "".into()),
        ("server.allowed_origins", |s| s.server.allowed_origins = vec!["*".into()]),
        ("server.allowed_origins", |s| s.server.allowed_origins = vec!["https://*.shop.example".into()]),
        ("server.allowed_origins", |s| s.server.allowed_origins = vec!["shop.example".into()]),
        ("server.allowed_origins", |s| s.server.allowed_origins = vec!["https://shop.example/checkout".into()]),
        ("bkash.base_url", |s| s.bkash.base_url = "ftp://bkash".into()),
        ("bestin.backup_base_url", |s| s.bestin.as_mut().unwrap().backup_base_url = Some("ftp://bestin".into())),
        ("server.admin_listen", |s| s.server.admin_listen = Some("loopback".into())),
    ];
    for (setting, change) in cases {
        let mut settings = sandbox_settings(&sandbox, "sqlite://x.db");
        change(&mut settings);
        let refusals = preflight::check(&settings).expect_err(setting);
        assert!(refusals.0.iter().any(|r| r.setting == *setting), "{setting}: {refusals}");
    }
}

#[tokio::test]
async fn an_empty_api_key_or_a_wildcard_origin_stops_the_server_at_start() {
    let app = spawn_app().await;
    for change in
        [(|s: &mut Settings| s.merchant.api_key = "".into()) as Change, |s| s.server.allowed_origins = vec!["*".into()]]
    {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = sandbox_settings(&app.sandbox, &format!("sqlite://{}", dir.path().join("x.db").display()));
        change(&mut settings);
        let error = deshpay_server::Application::build(settings).await.expect_err("refused").to_string();
        assert!(error.contains("refusing to start"), "{error}");
    }
}

#[tokio::test]
async fn merchant_auth_refuses_missing_and_malformed_headers_and_accepts_the_next_key() {
    const NEXT: &str = "test-api-key-next-0123456789";
    let app = spawn_app_with(|s| s.merchant.api_key_next = Some(NEXT.into())).await;
    let url = format!("{}/v1/balance", app.url);
    let cases: [(Option<&str>, &str); 5] = [
        (None, "missing Authorization"),
        (Some("Bearer"), "malformed"),
        (Some("Basic dGVzdDp0ZXN0"), "malformed"),
        (Some("Bearer "), "malformed"),
        (Some("Bearer wrong-key"), "wrong API key"),
    ];
    for (header, message) in cases {
        let mut request = app.http.get(&url);
        if let Some(h) = header {
            request = request.header("authorization", h);
        }
        let r = request.send().await.unwrap();
        assert_eq!(r.status(), 401, "{header:?}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthorized");
        assert!(body["error"]["message"].as_str().unwrap().contains(message), "{header:?}: {body}");
    }
    for key in [API_KEY, NEXT] {
        let r = app.http.get(&url).bearer_auth(key).send().await.unwrap();
        assert_eq!(r.status(), 200, "{key}");
    }
}

#[tokio::test]
async fn metrics_need_the_key_on_the_public_listener_and_not_on_the_admin_listener() {
    let app = spawn_app().await;
    let r = app.http.get(format!("{}/metrics", app.url)).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(app.http.get(format!("{}/healthz", app.url)).send().await.unwrap().status(), 200);

    let dir = tempfile::tempdir().unwrap();
    let mut settings = sandbox_settings(&app.sandbox, &format!("sqlite://{}", dir.path().join("a.db").display()));
    settings.server.admin_listen = Some("127.0.0.1:0".into());
    let backend = deshpay_server::Application::build(settings).await.unwrap();
    let admin = backend.admin_port().expect("admin listener bound");
    tokio::spawn(backend.run_until_stopped());
    let text = app.http.get(format!("http://127.0.0.1:{admin}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(text.contains("deshpay_bkash_token_grants_total"), "{text}");
    let r = app.http.get(format!("http://127.0.0.1:{admin}/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn webhooks_are_signed_with_both_secrets_during_a_rotation() {
    let settings = WebhookSettings {
        url: "https://shop.example/hook".into(),
        secret: "old-secret-0123456789".into(),
        secret_next: Some("new-secret-0123456789".into()),
        retry_ms: 1,
        max_attempts: 1,
        timeout_ms: 1,
    };
    let header = deshpay_server::webhooks::signature_header(&settings, 1700, "{}");
    let old = deshpay_server::webhooks::signature(b"old-secret-0123456789", 1700, "{}");
    let new = deshpay_server::webhooks::signature(b"new-secret-0123456789", 1700, "{}");
    let v1 = |s: &str| s.split_once(",v1=").unwrap().1.to_owned();
    assert_eq!(header, format!("t=1700,v1={},v1={}", v1(&old), v1(&new)));
}

/// A server that answers every request with a 307 to `target`.
async fn redirector(target: String) -> String {
    let app = axum::Router::new().fallback(move || {
        let target = target.clone();
        async move { (StatusCode::TEMPORARY_REDIRECT, [("location", target)]) }
    });
    serve(app).await
}

/// A server that counts the requests it gets.
async fn recorder(hits: Arc<AtomicUsize>) -> String {
    let app = axum::Router::new().fallback(move || {
        hits.fetch_add(1, Ordering::SeqCst);
        async { "{}" }
    });
    serve(app).await
}

async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test]
async fn a_redirecting_provider_never_gets_the_credentials_sent_to_the_redirect_target() {
    let hits = Arc::new(AtomicUsize::new(0));
    let elsewhere = recorder(hits.clone()).await;
    let bkash = redirector(format!("{elsewhere}/stolen")).await;
    let bestin = redirector(format!("{elsewhere}/stolen")).await;
    let app = spawn_app_with(|s| {
        s.bkash.base_url = format!("{bkash}/v1.2.0-beta");
        s.bestin.as_mut().unwrap().base_url = bestin.clone();
    })
    .await;
    let id = app.create_session("10.00").await;
    let r = app.http.post(format!("{}/v1/checkout/{id}/bkash", app.url)).send().await.unwrap();
    assert_eq!(r.status(), 503, "a redirect is not an answer");
    let r = app.get("/v1/balance").await;
    assert!(r.status().is_server_error(), "{}", r.status());
    assert_eq!(hits.load(Ordering::SeqCst), 0, "nothing (password, app_secret, x-secret) reached the redirect target");
}

async fn clicks(app: &TestApp, n: usize) -> Vec<(u16, Value)> {
    let mut out = Vec::new();
    for _ in 0..n {
        let id = app.create_session("10.00").await;
        let r = app.http.post(format!("{}/v1/checkout/{id}/bkash", app.url)).send().await.unwrap();
        out.push((r.status().as_u16(), r.json().await.unwrap_or(Value::Null)));
    }
    out
}

#[tokio::test]
async fn a_403_storm_that_is_not_about_the_token_renews_nothing_and_one_about_the_token_renews_once() {
    let app = spawn_app().await;
    app.start_bkash(&app.create_session("10.00").await).await;
    app.fault(json!({"endpoint": "create", "response": "message", "status": 403,
                     "message": "Missing Authentication Token", "process": false, "times": 20}))
        .await;
    for (status, _) in clicks(&app, 10).await {
        assert_eq!(status, 503);
    }
    let c = app.counters().await;
    assert_eq!((c["grant"].as_i64(), c["refresh"].as_i64()), (Some(1), Some(0)), "no renewal for a wrong path: {c}");
    assert_eq!(c["create"], 11, "one call per click, no retry with a new token: {c}");

    // Ten minutes later the gateway says the token expired, again and again: one renewal, not one per click.
    app.control.clear_bkash_faults().await;
    app.advance(600).await;
    app.fault(json!({"endpoint": "create", "response": "message", "status": 403,
                     "message": "The incoming token has expired", "process": false, "times": 40}))
        .await;
    for (status, _) in clicks(&app, 15).await {
        assert_eq!(status, 503);
    }
    let c = app.counters().await;
    let renewals = c["grant"].as_i64().unwrap() - 1 + c["refresh"].as_i64().unwrap();
    assert_eq!(renewals, 1, "{c}");
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("deshpay_bkash_token_renewals_suppressed_total"), "{metrics}");
}

#[tokio::test]
async fn after_a_grant_429_fifty_clicks_make_no_further_grant_and_are_told_why() {
    let app = spawn_app().await;
    app.fault(json!({"endpoint": "grant", "response": "message", "status": 429, "message": "Too Many Requests",
                     "process": false, "times": 1}))
        .await;
    let answers = clicks(&app, 51).await;
    for (status, body) in &answers {
        assert_eq!(*status, 503, "{body}");
        assert_eq!(body["error"]["code"], "provider_unavailable");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("bKash is limiting sign-ins; try again in") && message.contains("minutes"), "{body}");
    }
    assert_eq!(app.counters().await["grant"], 1, "no grant while bKash blocks them");
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("deshpay_bkash_grant_blocked_total 1"), "{metrics}");

    // When the block ends, one grant and payments work again.
    app.advance(3601).await;
    app.start_bkash(&app.create_session("10.00").await).await;
    assert_eq!(app.counters().await["grant"], 2);
}

#[tokio::test]
async fn fifty_starts_on_one_session_make_at_most_the_allowed_provider_creates() {
    // A slow machine must not refill the bucket mid-test.
    let app = spawn_app_with(|s| s.limits.session_replenish_ms = 600_000).await;
    let id = app.create_session("10.00").await;
    let mut statuses = Vec::new();
    for _ in 0..50 {
        let r = app.http.post(format!("{}/v1/checkout/{id}/bkash", app.url)).send().await.unwrap();
        let status = r.status().as_u16();
        if status == 429 {
            assert!(r.headers().contains_key("retry-after"));
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["error"]["code"], "rate_limited", "{body}");
        }
        statuses.push(status);
    }
    let allowed = deshpay_server::configuration::LimitSettings::default().session_burst as usize;
    assert!(statuses.iter().filter(|s| **s == 429).count() >= 50 - allowed - 1, "{statuses:?}");
    let creates = app.counters().await["create"].as_u64().unwrap() as usize;
    assert!(creates <= allowed + 1, "{creates} creates for one session");
    // Another session is not held back by this one.
    app.start_bkash(&app.create_session("10.00").await).await;
}

#[tokio::test]
async fn one_client_ip_is_limited_across_sessions() {
    let app = spawn_app_with(|s| {
        s.limits.ip_burst = 3;
        s.limits.ip_replenish_ms = 600_000;
    })
    .await;
    let answers = clicks(&app, 5).await;
    let statuses: Vec<u16> = answers.iter().map(|(s, _)| *s).collect();
    assert_eq!(statuses, [201, 201, 201, 429, 429], "{answers:?}");
}

#[tokio::test]
async fn event_streams_past_the_per_session_cap_get_429() {
    let app = spawn_app().await;
    let id = app.create_session("10.00").await;
    let url = format!("{}/v1/checkout/{id}/events", app.url);
    let responses = futures::future::join_all((0..200).map(|_| app.http.get(&url).send())).await;
    let mut open = Vec::new();
    let mut refused = 0;
    for r in responses {
        let r = r.unwrap();
        match r.status().as_u16() {
            200 => open.push(r),
            429 => {
                let body: Value = r.json().await.unwrap();
                assert_eq!(body["error"]["code"], "rate_limited");
                refused += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    let cap = deshpay_server::configuration::LimitSettings::default().streams_per_session;
    assert_eq!((open.len(), refused), (cap, 200 - cap));
    // A stream whose client went away frees its place (a reloaded page opens a new one).
    drop(open);
    let reopened = eventually(WAIT, || async {
        let status = app.http.get(&url).send().await.unwrap().status();
        if status == 200 { Ok(true) } else { Err(format!("closed streams still hold their places ({status})")) }
    })
    .await;
    assert!(reopened, "closed streams still hold their places");
    // Another session still gets its stream.
    let other = app.create_session("10.00").await;
    let r = app.http.get(format!("{}/v1/checkout/{other}/events", app.url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn an_event_stream_ends_at_its_maximum_lifetime() {
    let app = spawn_app_with(|s| s.limits.stream_max_secs = 1).await;
    let id = app.create_session("10.00").await;
    let r = app.http.get(format!("{}/v1/checkout/{id}/events", app.url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body = tokio::time::timeout(std::time::Duration::from_secs(10), r.text()).await.expect("the stream ended");
    assert!(body.unwrap().contains("event: session"));
}

#[tokio::test]
async fn an_oversized_body_gets_413_with_the_error_shape() {
    let app = spawn_app().await;
    let big = "x".repeat(20 * 1024);
    let r = app
        .post_json(
            "/v1/sessions",
            &json!({"amount": "10.00", "currency": "BDT", "invoice": big,
                                            "return_url": "http://shop.test/r", "methods": ["bkash"]}),
        )
        .await;
    assert_eq!(r.status(), 413);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "payload_too_large", "{body}");

    // Streamed (chunked, no Content-Length): refused while being read, with the same code.
    let answer = chunked_post(&app.url, "/v1/sessions", 40 * 1024).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("payload_too_large"), "{answer}");

    let notify = app.http.post(format!("{}/v1/bestinpay/notify", app.url)).body(vec![b' '; 100 * 1024]).send().await;
    let r = notify.unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "payload_too_large");
}

/// POSTs `size` bytes of spaces in 1 KB chunks over a raw connection; returns the raw answer.
async fn chunked_post(base: &str, path: &str, size: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {API_KEY}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = format!("400\r\n{}\r\n", " ".repeat(1024));
    for _ in 0..size / 1024 {
        // The server may answer and close before the whole body is sent.
        if stream.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn a_return_url_over_2048_characters_is_refused() {
    let app = spawn_app().await;
    let long = format!("https://shop.test/return?{}", "a".repeat(2048));
    let r = app
        .post_json(
            "/v1/sessions",
            &json!({"amount": "10.00", "currency": "BDT", "invoice": "ORD-LONG",
                                            "return_url": long, "methods": ["bkash"]}),
        )
        .await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("2048"), "{body}");
}

#[test]
fn production_refuses_an_http_return_url() {
    use deshpay_server::edge::check_return_url;
    assert!(check_return_url("https://shop.example/r", 2048, true).is_ok());
    assert!(check_return_url("http://shop.example/r", 2048, false).is_ok());
    let e = check_return_url("http://shop.example/r", 2048, true).unwrap_err();
    assert_eq!((e.status.as_u16(), e.message.as_str()), (400, "return_url must be an https:// URL"));
    assert!(check_return_url(&format!("https://s/{}", "a".repeat(2048)), 2048, true).is_err());
}

#[tokio::test]
async fn a_request_past_the_inbound_timeout_gets_408_not_a_hang() {
    let app = spawn_app_with(|s| {
        s.limits.request_timeout_ms = 1500;
        s.bkash.timeout_ms = 6000;
    })
    .await;
    app.start_bkash(&app.create_session("10.00").await).await; // the token, first
    app.fault(json!({"endpoint": "create", "delay_ms": 4000})).await;
    let id = app.create_session("10.00").await;
    let r = app.http.post(format!("{}/v1/checkout/{id}/bkash", app.url)).send().await.unwrap();
    assert_eq!(r.status(), 408);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "timeout");
}

#[tokio::test]
async fn past_the_concurrency_limit_requests_are_refused_with_503_at_once() {
    let app = spawn_app_with(|s| s.limits.max_concurrent_requests = 1).await;
    app.start_bkash(&app.create_session("10.00").await).await;
    app.fault(json!({"endpoint": "create", "delay_ms": 800})).await;
    let id = app.create_session("10.00").await;
    let slow = app.http.post(format!("{}/v1/checkout/{id}/bkash", app.url)).send();
    let quick = async {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        app.http.get(format!("{}/healthz", app.url)).send().await.unwrap()
    };
    let (slow, quick) = tokio::join!(slow, quick);
    assert_eq!(slow.unwrap().status(), 201);
    assert_eq!(quick.status(), 503);
    assert_eq!(quick.json::<Value>().await.unwrap()["error"]["code"], "overloaded");
}

#[tokio::test]
async fn the_state_debug_shows_no_bkash_token() {
    let app = spawn_app().await;
    app.start_bkash(&app.create_session("10.00").await).await;
    let token =
        app.state.store.token(&format!("bkash:{}", app.state.providers.bkash.client.app_key())).await.unwrap().unwrap();
    let debug = format!("{:?}", app.state);
    assert!(!debug.contains(token.id_token.expose_secret()), "id_token in Debug");
    assert!(!debug.contains(token.refresh_token.expose_secret()), "refresh_token in Debug");
    assert!(!debug.contains(API_KEY));
}

#[tokio::test]
async fn retention_forgets_old_idempotency_keys_and_notification_ids_but_not_recent_ones() {
    let app = spawn_app().await;
    let create = |invoice: &str| {
        app.http
            .post(format!("{}/v1/sessions", app.url))
            .bearer_auth(API_KEY)
            .header("idempotency-key", "retained-key")
            .json(&json!({"amount": "10.00", "currency": "BDT", "invoice": invoice,
                          "return_url": "https://shop.test/r", "methods": ["bkash"]}))
            .send()
    };
    assert_eq!(create("ORD-R1").await.unwrap().status(), 201);
    app.state.store.record_notification("N-old", "PI-old", "success", "applied", app.clock.now_ms()).await.unwrap();
    let now = app.clock.now_ms();
    // A sweep with cut-offs in the past keeps everything.
    let kept = app.state.store.purge(now - 1000, now - 1000, now - 1000).await.unwrap();
    assert_eq!(kept, deshpay_server::store::Purged::default());
    assert_eq!(create("ORD-R2").await.unwrap().status(), 409, "the key still guards its first request");

    let purged = app.state.store.purge(now + 1000, now + 1000, i64::MIN).await.unwrap();
    assert_eq!((purged.idempotency_keys, purged.notifications, purged.events), (1, 1, 0));
    assert!(!app.state.store.notification_seen("N-old").await.unwrap());
    assert_eq!(create("ORD-R2").await.unwrap().status(), 201, "an expired key is a new request");
}

/// Every log line of this test process from the first call on: the backend's and the sandbox's at trace level,
/// the libraries' from warn. A process-wide subscriber, because a thread-scoped one misses callsites that tests
/// on other threads reached first.
fn captured_logs() -> &'static deshpay_testkit::CapturedLogs {
    deshpay_testkit::capture_logs("warn,deshpay_server=trace,deshpay_sandbox=trace")
}

#[tokio::test]
async fn the_logs_of_a_whole_journey_hold_no_secret_key_or_token() {
    let captured = captured_logs();
    let hits = Arc::new(AtomicUsize::new(0));
    let hook = recorder(hits.clone()).await;
    const WEBHOOK_SECRET: &str = "whsec_journey_0123456789abcdef";
    let app = spawn_app_with(|s| {
        s.webhook = Some(WebhookSettings {
            url: format!("{hook}/hook"),
            secret: WEBHOOK_SECRET.into(),
            secret_next: None,
            retry_ms: 100,
            max_attempts: 2,
            timeout_ms: 1000,
        })
    })
    .await;
    let (id, _, _) = app.pay("100.00", WALLET).await;
    let r = app.post_json(&format!("/v1/sessions/{id}/refunds"), &json!({"amount": "10.00", "reason": "r"})).await;
    assert!(r.status().is_success(), "{}", r.status());
    let upi = app.create_inr_session("101.00").await;
    let started = app.start_upi(&upi).await;
    app.decide(started["links"]["upi"].as_str().unwrap(), "approve").await;
    assert!(app.get("/v1/balance").await.status().is_success());
    // The webhook's delivery is part of the journey whose logs are checked.
    eventually(WAIT, || async {
        if hits.load(Ordering::SeqCst) > 0 { Ok(()) } else { Err("no webhook delivered".to_owned()) }
    })
    .await;

    let token =
        app.state.store.token(&format!("bkash:{}", app.state.providers.bkash.client.app_key())).await.unwrap().unwrap();
    let settings = &app.state.settings;
    let secrets = [
        ("api key", API_KEY.to_owned()),
        ("bKash password", settings.bkash.password.expose_secret().to_owned()),
        ("bKash app secret", settings.bkash.app_secret.expose_secret().to_owned()),
        ("Bestin secret", settings.bestin.as_ref().unwrap().secret.expose_secret().to_owned()),
        ("webhook secret", WEBHOOK_SECRET.to_owned()),
        ("id_token", token.id_token.expose_secret().to_owned()),
        ("refresh_token", token.refresh_token.expose_secret().to_owned()),
    ];
    let logs = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    assert!(logs.contains("configuration accepted") && logs.contains("sha256:"), "the start line was logged");
    assert!(logs.contains(app.state.providers.bkash.client.app_key()), "the capture sees what the backend logs");
    for (name, secret) in secrets {
        assert!(!logs.contains(&secret), "the {name} is in the logs");
    }
}

/// A URL on a port nobody listens on (the listener is dropped at once): connections are refused.
fn closed_url(path: &str) -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}{path}", l.local_addr().unwrap())
}

/// A server that answers every request with 503 and counts them.
async fn down_gateway(hits: Arc<AtomicUsize>) -> String {
    let app = axum::Router::new().fallback(move || {
        hits.fetch_add(1, Ordering::SeqCst);
        async { (StatusCode::SERVICE_UNAVAILABLE, axum::Json(json!({"message": "Service Unavailable"}))) }
    });
    serve(app).await
}

#[tokio::test]
async fn when_the_primary_bkash_url_refuses_connections_the_backup_serves_the_whole_payment() {
    let closed = closed_url("/v1.2.0-beta");
    let app = spawn_app_with(|s| {
        s.bkash.backup_base_url = Some(s.bkash.base_url.clone());
        s.bkash.base_url = closed.clone();
    })
    .await;
    let (_, payment_id, back) = app.pay("10.00", WALLET).await;
    assert_eq!(query_param(&back, "deshpay_status").as_deref(), Some("paid"), "{back}");
    assert_eq!(app.sandbox_payment(&payment_id).await["execute_calls"], 1);
}

#[tokio::test]
async fn a_failing_primary_gateway_gets_safe_calls_repeated_on_the_backup_but_never_a_create() {
    let hits = Arc::new(AtomicUsize::new(0));
    let primary = down_gateway(hits.clone()).await;
    let app = spawn_app_with(|s| {
        s.bkash.backup_base_url = Some(s.bkash.base_url.clone());
        s.bkash.base_url = format!("{primary}/v1.2.0-beta");
    })
    .await;
    let id = app.create_session("10.00").await;
    let r = app.http.post(format!("{}/v1/checkout/{id}/bkash", app.url)).send().await.unwrap();
    assert_eq!(r.status(), 503, "the create was sent to the primary and failed: not repeated elsewhere");
    let c = app.counters().await;
    assert_eq!((c["grant"].as_i64(), c["create"].as_i64()), (Some(1), Some(0)), "grant failed over, create not: {c}");
    assert_eq!(hits.load(Ordering::SeqCst), 2, "the primary saw the grant and the create once each");
}

#[test]
fn the_widget_package_and_the_pages_hold_no_configured_secret() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let bkash = deshpay_sandbox::BkashCredentials::public_sandbox();
    let bestin = deshpay_sandbox::BestinCredentials::sandbox_default();
    let secrets = [
        API_KEY,
        preflight::DEMO_API_KEY,
        "whsec_demo_deshpay_0123456789",
        &bkash.password,
        &bkash.app_secret,
        &bestin.secret,
    ];
    let mut scanned = 0;
    let mut stack = vec![root.join("pkg"), root.join("www")];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            stack.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else if let Ok(bytes) = std::fs::read(&path) {
            scanned += 1;
            for secret in secrets {
                let found = bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
                assert!(!found, "{} holds a configured secret", path.display());
            }
        }
    }
    assert!(scanned > 0, "the loader in www/ at least");
}

/// Bestin Pay behind a gateway the test controls: every call is forwarded to the sandbox, except calls to the
/// endpoints in `failing`, which get a 503 and are recorded in `refused`.
#[derive(Clone, Default)]
struct BestinGateway {
    target: Arc<std::sync::OnceLock<String>>,
    failing: Arc<std::sync::Mutex<Vec<&'static str>>>,
    refused: Arc<std::sync::Mutex<Vec<String>>>,
}

impl BestinGateway {
    async fn serve(&self) -> String {
        let gateway = self.clone();
        let client = reqwest::Client::new();
        let app = axum::Router::new().fallback(
            move |uri: axum::http::Uri, headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let (gateway, client) = (gateway.clone(), client.clone());
                async move {
                    let endpoint = uri.path().trim_start_matches('/').to_owned();
                    if gateway.failing.lock().unwrap().contains(&endpoint.as_str()) {
                        gateway.refused.lock().unwrap().push(endpoint);
                        return (StatusCode::SERVICE_UNAVAILABLE, r#"{"message":"Service Unavailable"}"#.to_owned());
                    }
                    let target = gateway.target.get().expect("the sandbox is known");
                    let r = client.post(format!("{target}/{endpoint}")).headers(headers).body(body).send().await;
                    let r = r.unwrap();
                    (r.status(), r.text().await.unwrap())
                }
            },
        );
        serve(app).await
    }

    fn fail(&self, endpoints: &[&'static str]) {
        *self.failing.lock().unwrap() = endpoints.to_vec();
    }

    fn refused(&self, endpoint: &str) -> usize {
        self.refused.lock().unwrap().iter().filter(|e| *e == endpoint).count()
    }
}

#[tokio::test]
async fn when_the_primary_bestin_url_refuses_connections_the_backup_serves_payins_payouts_and_balance() {
    let closed = closed_url("/bestin");
    let app = spawn_app_with(|s| {
        let bestin = s.bestin.as_mut().unwrap();
        bestin.backup_base_url = Some(bestin.base_url.clone());
        bestin.base_url = closed.clone();
    })
    .await;
    let id = app.create_inr_session("101.00").await;
    let started = app.start_upi(&id).await;
    app.decide(started["links"]["upi"].as_str().unwrap(), "approve").await;
    assert_eq!(app.wait_for_attempt(&id, "succeeded").await["status"], "paid");

    let balance = app.get("/v1/balance").await;
    assert_eq!(balance.status(), 200);
    let body = json!({"amount": "5.00", "currency": "INR", "upi": "asha@okaxis", "reference": "PO-FAILOVER"});
    assert_eq!(app.post_json("/v1/payouts", &body).await.status(), 201);
    let c = app.bestin("counters").await;
    assert_eq!((c["payin"].as_i64(), c["payout"].as_i64()), (Some(1), Some(1)), "{c}");
}

#[tokio::test]
async fn a_failing_primary_bestin_gets_queries_and_balance_repeated_on_the_backup_but_never_a_payin_payout_or_cancel() {
    let gateway = BestinGateway::default();
    let primary = gateway.serve().await;
    let app = spawn_app_with(|s| {
        let bestin = s.bestin.as_mut().unwrap();
        gateway.target.set(bestin.base_url.clone()).unwrap();
        bestin.backup_base_url = Some(bestin.base_url.clone());
        bestin.base_url = primary.clone();
    })
    .await;
    // A payin made through the primary while it works...
    let id = app.create_inr_session("90.00").await;
    app.start_upi(&id).await;
    // ...then the primary fails every call with 503.
    gateway.fail(&["payin", "payout", "cancel", "query", "balance"]);

    let balance = app.get("/v1/balance").await;
    assert_eq!(balance.status(), 200, "balance is safe to repeat: the backup answered");
    assert_eq!(balance.json::<Value>().await.unwrap()[0]["currency"], "INR");
    assert_eq!(gateway.refused("balance"), 1, "asked the primary first");

    let r = app.http.post(format!("{}/v1/checkout/{id}/cancel", app.url)).send().await.unwrap();
    assert_ne!(r.status(), 200, "the cancel was sent to the primary and failed: not repeated elsewhere");

    let body = json!({"amount": "5.00", "currency": "INR", "upi": "asha@okaxis", "reference": "PO-DOWN"});
    // A 5xx decides nothing: the payout is pending, to be found by its req_id, and never sent again.
    let payout = app.post_json("/v1/payouts", &body).await;
    assert_eq!(payout.status(), 202);
    assert_eq!(payout.json::<Value>().await.unwrap()["status"], "pending");

    let other = app.create_inr_session("20.00").await;
    let r = app.http.post(format!("{}/v1/checkout/{other}/upi", app.url)).send().await.unwrap();
    assert!(!r.status().is_success(), "the payin was sent to the primary and failed: not repeated elsewhere");

    // The poller's /query fails over and finds the first payin still pending.
    app.advance(26).await;
    app.state.reconcile_once().await.unwrap();

    let c = app.bestin("counters").await;
    assert_eq!(
        (c["payin"].as_i64(), c["cancel"].as_i64(), c["payout"].as_i64()),
        (Some(1), Some(0), Some(0)),
        "the backup never saw a second payin, a cancel or a payout: {c}"
    );
    assert!(c["query"].as_i64().unwrap() >= 1 && c["balance"].as_i64().unwrap() >= 1, "{c}");
    for endpoint in ["payin", "payout", "cancel"] {
        assert_eq!(gateway.refused(endpoint), 1, "the primary saw one {endpoint}");
    }
    assert!(gateway.refused("query") >= 1, "the poller asked the primary first");
}
