//! The merchant API for sessions and the widget's view: typed errors for every bad input.

use crate::helpers::*;
use serde_json::{Value, json};

fn body(overrides: Value) -> Value {
    let mut b = json!({"amount": "250.00", "currency": "BDT", "invoice": format!("INV-{}", rand_suffix()),
                       "return_url": "https://shop.test/done", "methods": ["bkash"], "description": "Tea"});
    for (k, v) in overrides.as_object().unwrap() {
        if v.is_null() {
            b.as_object_mut().unwrap().remove(k);
        } else {
            b[k] = v.clone();
        }
    }
    b
}

#[tokio::test]
async fn a_session_is_created_and_read_back() {
    let app = spawn_app().await;
    let r = app.post_json("/v1/sessions", &body(json!({"amount": "1499.5"}))).await;
    assert_eq!(r.status(), 201);
    let s: Value = r.json().await.unwrap();
    assert!(s["id"].as_str().unwrap().starts_with("cs_"));
    assert_eq!(s["status"], "open");
    assert_eq!(s["amount"], "1499.50");
    assert_eq!(s["amount_minor"], 149_950);
    assert_eq!(s["currency"], "BDT");
    assert_eq!(s["methods"], json!(["bkash"]));
    assert_eq!(s["payment"], Value::Null);
    let again = app.session(s["id"].as_str().unwrap()).await;
    assert_eq!(again, s);
    let view = app.checkout(s["id"].as_str().unwrap()).await;
    assert_eq!(view["merchant_name"], "Test Shop");
    assert_eq!(view["attempt"], Value::Null);
}

#[tokio::test]
async fn bad_inputs_get_typed_errors() {
    let app = spawn_app().await;
    let cases: Vec<(Value, u16, &str)> = vec![
        (body(json!({"amount": "abc"})), 400, "invalid_amount"),
        (body(json!({"amount": "0"})), 400, "invalid_amount"),
        (body(json!({"amount": "-5"})), 400, "invalid_amount"),
        (body(json!({"amount": "10.005"})), 400, "invalid_amount"),
        (body(json!({"amount": "0.50"})), 400, "invalid_amount"),
        (body(json!({"amount": "1e3"})), 400, "invalid_amount"),
        (body(json!({"amount": 250})), 422, "invalid_json"),
        (body(json!({"currency": "USD"})), 400, "invalid_currency"),
        (body(json!({"currency": "INR", "methods": ["bkash"]})), 400, "invalid_currency"),
        (body(json!({"methods": ["paypal"]})), 400, "invalid_request"),
        (body(json!({"invoice": ""})), 400, "invalid_request"),
        (body(json!({"invoice": "a<b"})), 400, "invalid_request"),
        (body(json!({"invoice": "x".repeat(256)})), 400, "invalid_request"),
        (body(json!({"return_url": "javascript:alert(1)"})), 400, "invalid_request"),
        (body(json!({"return_url": "/relative"})), 400, "invalid_request"),
        (body(json!({"expires_in": 5})), 400, "invalid_request"),
        (body(json!({"amount": null})), 422, "invalid_json"),
    ];
    for (b, status, code) in cases {
        let r = app.post_json("/v1/sessions", &b).await;
        assert_eq!(r.status().as_u16(), status, "{b}");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"]["code"], code, "{b}: {e}");
        assert!(!e["error"]["message"].as_str().unwrap().is_empty());
    }
    let r = app
        .http
        .post(format!("{}/v1/sessions", app.url))
        .bearer_auth(API_KEY)
        .header("content-type", "application/json")
        .body("{\"amount\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "invalid_json");
}

#[tokio::test]
async fn the_merchant_api_needs_the_api_key() {
    let app = spawn_app().await;
    for auth in [None, Some("Bearer wrong"), Some(API_KEY)] {
        let mut req = app.http.post(format!("{}/v1/sessions", app.url)).json(&body(json!({})));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 401, "{auth:?}");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"]["code"], "unauthorized");
        assert!(!e.to_string().contains(API_KEY));
    }
}

#[tokio::test]
async fn unknown_and_malformed_session_ids_are_not_found() {
    let app = spawn_app().await;
    for id in ["cs_AAAAAAAAAAAAAAAAAAAAAAAA", "nope", "cs_%20"] {
        let r = app.get(&format!("/v1/sessions/{id}")).await;
        assert_eq!(r.status(), 404, "{id}");
        assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "session_not_found");
        let r = app.http.post(format!("{}/v1/checkout/{id}/bkash", app.url)).send().await.unwrap();
        assert_eq!(r.status(), 404, "{id}");
    }
    let r = app.http.get(format!("{}/v2/nothing", app.url)).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "not_found");
}

#[tokio::test]
async fn an_invoice_cannot_have_two_live_sessions() {
    let app = spawn_app().await;
    let b = body(json!({"invoice": "ORD-UNIQUE-1"}));
    assert_eq!(app.post_json("/v1/sessions", &b).await.status(), 201);
    let r = app.post_json("/v1/sessions", &b).await;
    assert_eq!(r.status(), 409);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "invoice_in_use");
    app.advance(1801).await;
    assert_eq!(app.post_json("/v1/sessions", &b).await.status(), 201, "after expiry the invoice is free again");
}

#[tokio::test]
async fn an_idempotency_key_replays_the_first_response() {
    let app = spawn_app().await;
    let b = body(json!({}));
    let send = |b: Value| {
        app.http
            .post(format!("{}/v1/sessions", app.url))
            .bearer_auth(API_KEY)
            .header("idempotency-key", "key-1")
            .json(&b)
            .send()
    };
    let first = send(b.clone()).await.unwrap();
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let second = send(b.clone()).await.unwrap();
    assert_eq!(second.status(), 201);
    assert_eq!(second.json::<Value>().await.unwrap()["id"], first["id"]);
    let other = send(body(json!({"amount": "1.00"}))).await.unwrap();
    assert_eq!(other.status(), 409);
    assert_eq!(other.json::<Value>().await.unwrap()["error"]["code"], "idempotency_conflict");
}

#[tokio::test]
async fn the_widget_api_allows_only_configured_origins() {
    let app = spawn_app().await;
    let id = app.create_session("10.00").await;
    let preflight = |origin: &'static str| {
        app.http
            .request(reqwest::Method::OPTIONS, format!("{}/v1/checkout/{id}/bkash", app.url))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .send()
    };
    let ok = preflight("http://shop.test").await.unwrap();
    assert_eq!(ok.headers().get("access-control-allow-origin").unwrap(), "http://shop.test");
    let evil = preflight("http://evil.test").await.unwrap();
    assert!(evil.headers().get("access-control-allow-origin").is_none());
    let merchant = app
        .http
        .request(reqwest::Method::OPTIONS, format!("{}/v1/sessions", app.url))
        .header("origin", "http://shop.test")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(merchant.headers().get("access-control-allow-origin").is_none(), "the merchant API is server to server");
}
