//! The API's description, `GET /openapi.json`: valid OpenAPI 3.1, complete (every route the router serves is in
//! it, with the methods it serves), and true (the real answers of whole journeys, and the webhooks they send,
//! match its schemas exactly: every required field present, no field it does not describe).

use crate::helpers::*;
use crate::money_rules::{MID, notification, trx_of};
use crate::webhooks::{Receiver, webhook};
use axum::http::HeaderMap;
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// The document as served, and what was checked against it.
struct Contract {
    doc: Value,
    /// `(METHOD, path template, status)` of every answer checked, and the webhooks checked.
    checked: BTreeSet<String>,
}

/// What a checked answer carried.
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    /// The JSON body, or `Value::Null` for another content type (then `text` has it).
    json: Value,
    text: String,
}

impl Contract {
    async fn fetch(app: &TestApp) -> Contract {
        let r = app.http.get(format!("{}/openapi.json", app.url)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "application/json");
        let doc: Value = r.json().await.unwrap();
        assert_eq!(doc, serde_json::from_str::<Value>(deshpay_server::openapi::json()).unwrap());
        Contract { doc, checked: BTreeSet::new() }
    }

    /// The documented operations: `(METHOD, path template)`.
    fn operations(&self) -> Vec<(String, String)> {
        let mut all = Vec::new();
        for (path, item) in self.doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                all.push((method.to_uppercase(), path.clone()));
            }
        }
        all
    }

    fn operation(&self, method: &str, template: &str) -> &Value {
        let op = &self.doc["paths"][template][method.to_lowercase()];
        assert!(op.is_object(), "{method} {template} is not documented");
        op
    }

    /// Validates `instance` against `schema` (a schema of the document, `$ref`s to its components included),
    /// strictly: an object schema's properties are all it may have (`unevaluatedProperties: false`), and formats
    /// (`date-time`) are checked.
    fn validate(&self, schema: &Value, instance: &Value) -> Result<(), String> {
        let mut defs = self.doc["components"]["schemas"].clone();
        // A component that is a branch of an allOf shares its object with its siblings: left open, the schema
        // that composes it closes the whole.
        let text = self.doc.to_string();
        let branches: BTreeSet<&str> = text
            .split("\"allOf\":[{\"$ref\":\"#/components/schemas/")
            .skip(1)
            .filter_map(|s| s.split('"').next())
            .collect();
        for (name, def) in defs.as_object_mut().unwrap() {
            let def = def.as_object_mut().unwrap();
            if !branches.contains(name.as_str()) && (def.contains_key("properties") || def.contains_key("allOf")) {
                def.insert("unevaluatedProperties".into(), Value::Bool(false));
            }
        }
        let root = json!({"$schema": "https://json-schema.org/draft/2020-12/schema", "$defs": defs, "allOf": [schema]});
        let root: Value = serde_json::from_str(&root.to_string().replace("#/components/schemas/", "#/$defs/")).unwrap();
        let validator = jsonschema::draft202012::options().should_validate_formats(true).build(&root).unwrap();
        let errors: Vec<String> =
            validator.iter_errors(instance).map(|e| format!("{} at {}", e, e.instance_path())).collect();
        if errors.is_empty() { Ok(()) } else { Err(errors.join("; ")) }
    }

    /// Checks a real answer of `METHOD template` against the document: its status is documented, its content
    /// type is the documented one, and a JSON body matches the schema of that status.
    async fn check(&mut self, method: &str, template: &str, r: reqwest::Response) -> Answer {
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        let response = &self.operation(method, template)["responses"][status.to_string()];
        assert!(response.is_object(), "{method} {template} answered {status}, which it does not document: {text}");
        let content_type = headers.get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        let mut json = Value::Null;
        match response.get("content").and_then(Value::as_object) {
            None => assert!(text.is_empty(), "{method} {template} {status} documents no body: {text}"),
            Some(content) => {
                let (documented, media) = content.iter().next().unwrap();
                assert_eq!(
                    content_type.split(';').next().unwrap(),
                    documented.split(';').next().unwrap(),
                    "{method} {template} {status}"
                );
                if documented == "application/json" {
                    json = serde_json::from_str(&text).unwrap();
                    if let Err(e) = self.validate(&media["schema"], &json) {
                        panic!("{method} {template} {status} does not match its schema: {e}\n{json:#}");
                    }
                }
            }
        }
        self.checked.insert(format!("{method} {template} {status}"));
        Answer { status, headers, json, text }
    }

    /// Checks a webhook as the merchant's server received it: its documented headers and its body.
    fn check_webhook(&mut self, headers: &HeaderMap, body: &str) -> Value {
        let event: Value = serde_json::from_str(body).unwrap();
        let kind = event["type"].as_str().unwrap().to_owned();
        let op = &self.doc["webhooks"][&kind]["post"];
        assert!(op.is_object(), "webhook {kind} is not documented");
        for parameter in op["parameters"].as_array().unwrap() {
            let name = parameter["name"].as_str().unwrap();
            assert!(headers.contains_key(name), "webhook {kind} lacks the documented header {name}");
        }
        let schema = &op["requestBody"]["content"]["application/json"]["schema"];
        if let Err(e) = self.validate(schema, &event) {
            panic!("webhook {kind} does not match its schema: {e}\n{event:#}");
        }
        self.checked.insert(format!("webhook {kind}"));
        event
    }

    /// Checks the first event of `GET /v1/checkout/{id}/events`: `event: session`, data a `CheckoutView`.
    async fn check_first_event(&mut self, app: &TestApp, id: &str) -> Value {
        let mut r = app.http.get(format!("{}/v1/checkout/{id}/events", app.url)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "text/event-stream");
        let mut text = String::new();
        while !text.contains("\n\n") {
            let chunk = tokio::time::timeout(WAIT, r.chunk()).await.unwrap().unwrap().expect("an event");
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
        assert!(text.starts_with("event: session\n"), "{text}");
        let data = text.lines().find_map(|l| l.strip_prefix("data: ")).expect("data line");
        let view: Value = serde_json::from_str(data).unwrap();
        let schema = json!({"$ref": "#/components/schemas/CheckoutView"});
        if let Err(e) = self.validate(&schema, &view) {
            panic!("the events' data does not match CheckoutView: {e}\n{view:#}");
        }
        self.checked.insert("GET /v1/checkout/{id}/events 200".into());
        view
    }
}

impl TestApp {
    /// `METHOD path` with the API key and an optional JSON body.
    async fn merchant(&self, method: &str, path: &str, body: Option<&Value>) -> reqwest::Response {
        let mut request =
            self.http.request(method.parse().unwrap(), format!("{}{path}", self.url)).bearer_auth(API_KEY);
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.unwrap()
    }

    /// `METHOD path` without a key, as the widget or a provider calls it.
    async fn public(&self, method: &str, path: &str) -> reqwest::Response {
        self.http.request(method.parse().unwrap(), format!("{}{path}", self.url)).send().await.unwrap()
    }
}

#[tokio::test]
async fn the_document_is_valid_openapi_3_1() {
    let app = spawn_app().await;
    let contract = Contract::fetch(&app).await;

    // A typed OpenAPI 3.1 parser reads it whole, webhooks included.
    let spec = oas3::from_json(contract.doc.to_string()).expect("parses as OpenAPI 3.1");
    let version = spec.validate_version().expect("a supported OpenAPI version");
    assert_eq!((version.major, version.minor), (3, 1));
    assert_eq!(spec.webhooks.len(), 6);
    let mut operation_ids = BTreeSet::new();
    for (path, method, op) in spec.operations() {
        let id = op.operation_id.clone().unwrap_or_else(|| panic!("{method} {path} has no operationId"));
        assert!(operation_ids.insert(id.clone()), "operationId {id} is used twice");
        // Every `{param}` of the path template is a declared path parameter, and every reference resolves.
        let parameters: Vec<oas3::spec::Parameter> =
            op.parameters.iter().map(|p| p.resolve(&spec).expect("parameter resolves")).collect();
        for segment in path.split('/').filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}'))) {
            assert!(
                parameters.iter().any(|p| p.name == segment && p.location == oas3::spec::ParameterIn::Path),
                "{method} {path}: path parameter {segment} is not declared"
            );
        }
        if let Some(body) = &op.request_body {
            body.resolve(&spec).expect("request body resolves");
        }
        let responses = op.responses(&spec);
        assert!(!responses.is_empty(), "{method} {path} documents no response");
    }
    for (name, schema) in spec.components.as_ref().unwrap().schemas.iter() {
        schema.resolve(&spec).unwrap_or_else(|e| panic!("schema {name}: {e}"));
    }

    // Its schemas are JSON Schema 2020-12 (the dialect of OpenAPI 3.1), each one.
    for (name, schema) in contract.doc["components"]["schemas"].as_object().unwrap() {
        if let Err(e) = jsonschema::draft202012::meta::validate(schema) {
            panic!("schema {name} is not valid JSON Schema 2020-12: {e}");
        }
    }
    // Every `$ref` points at a schema that exists.
    let text = contract.doc.to_string();
    for reference in text.split("\"$ref\":\"").skip(1).map(|s| s.split('"').next().unwrap()) {
        let name = reference.strip_prefix("#/components/schemas/").expect("a local schema reference");
        assert!(contract.doc["components"]["schemas"][name].is_object(), "{reference} does not exist");
    }
    // The merchant API key is a bearer scheme, required by every merchant operation and by nothing else's
    // but /metrics.
    assert_eq!(
        contract.doc["components"]["securitySchemes"]["api_key"],
        json!({"type": "http", "scheme": "bearer",
        "description": "The merchant's API key, server to server only: `Authorization: Bearer <api key>`."})
    );
    for (method, path) in contract.operations() {
        let op = contract.operation(&method, &path);
        let keyed = op.get("security").is_some();
        let merchant = op["tags"][0] == "merchant";
        assert_eq!(keyed, merchant || path == "/metrics", "{method} {path}");
    }
}

#[tokio::test]
async fn every_route_the_router_serves_is_documented_and_answers_as_documented() {
    // The router is built only from `Routes` (utoipa-axum's `routes!`, which needs each handler's
    // `#[utoipa::path]`), the list the document is made from: no route may be added around it.
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![src.clone()];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else if path.extension().is_some_and(|e| e == "rs") {
            let code = std::fs::read_to_string(&path).unwrap();
            for raw in [".route(", ".route_service(", ".nest(", ".nest_service(", "Router::new()"] {
                // utoipa-axum's `OpenApiRouter::new()` is the documented way.
                let outside = code.match_indices(raw).any(|(at, _)| !code[..at].ends_with("OpenApi"));
                assert!(!outside, "{} adds a route with {raw}, outside the documented list", path.display());
            }
        }
    }

    // Each documented operation answers on the live server (not the fallback), with a documented status; each
    // method the document does not list for a path is refused with 405, so the methods match too. (Rate limits
    // off: this test knocks on every door of one session.)
    let app = spawn_app_with(|s| {
        s.limits.ip_burst = 1000;
        s.limits.session_burst = 1000;
    })
    .await;
    let mut contract = Contract::fetch(&app).await;
    let session = app.create_session("10.00").await;
    let operations = contract.operations();
    // The public surface of DESIGN.md, under its names.
    for (method, path) in [
        ("POST", "/v1/sessions"),
        ("GET", "/v1/sessions/{id}"),
        ("POST", "/v1/sessions/{id}/refunds"),
        ("GET", "/v1/bkash/transactions/{trx_id}"),
        ("POST", "/v1/payouts"),
        ("GET", "/v1/payouts/{id}"),
        ("POST", "/v1/payouts/{id}/cancel"),
        ("GET", "/v1/balance"),
        ("GET", "/v1/checkout/{id}"),
        ("POST", "/v1/checkout/{id}/bkash"),
        ("POST", "/v1/checkout/{id}/upi"),
        ("POST", "/v1/checkout/{id}/cancel"),
        ("GET", "/v1/checkout/{id}/events"),
        ("GET", "/v1/bkash/callback"),
        ("POST", "/v1/bestinpay/notify"),
        ("GET", "/healthz"),
        ("GET", "/metrics"),
        ("GET", "/openapi.json"),
        ("GET", "/pay/{id}"),
        ("GET", "/pay/{id}/qr.svg"),
        ("GET", "/pay/pkg/{file}"),
    ] {
        assert!(operations.contains(&(method.to_owned(), path.to_owned())), "{method} {path} is not documented");
    }
    for (method, template) in &operations {
        let path = template
            .replace("/v1/payouts/{id}", "/v1/payouts/po_unknown")
            .replace("{id}", &session)
            .replace("{trx_id}", "TRXNOTKNOWN1")
            .replace("{file}", "deshpay.js");
        let body = contract.operation(method, template).get("requestBody").map(|_| json!({}));
        let r = if template == "/v1/checkout/{id}/events" {
            // A stream: its headers are the answer.
            let r = app.public(method, &path).await;
            assert_eq!(
                (r.status().as_u16(), r.headers()["content-type"].to_str().unwrap()),
                (200, "text/event-stream")
            );
            contract.checked.insert(format!("{method} {template} 200"));
            continue;
        } else {
            app.merchant(method, &path, body.as_ref()).await
        };
        let answer = contract.check(method, template, r).await;
        assert!(
            !(answer.status == 404 && answer.json["error"]["message"] == "no such route"),
            "{method} {path} is documented but not routed"
        );
    }
    let documented: BTreeSet<(String, String)> = operations.into_iter().collect();
    let paths: BTreeSet<&String> = documented.iter().map(|(_, p)| p).collect();
    for template in paths {
        let path =
            template.replace("{id}", &session).replace("{trx_id}", "TRXNOTKNOWN1").replace("{file}", "deshpay.js");
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            if !documented.contains(&(method.to_owned(), template.clone())) {
                let r = app.merchant(method, &path, None).await;
                assert_eq!(r.status(), 405, "{method} {template} is served but not documented");
            }
        }
    }
    // And what is not documented is not served.
    let r = app.merchant("GET", "/v1/nothing-here", None).await;
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["message"], "no such route");
}

/// A backend that sends its webhooks to a receiver, and its document.
async fn journey() -> (TestApp, Receiver, Contract) {
    let receiver = Receiver::default();
    let url = receiver.start(&[]).await;
    let app = spawn_app_with(|s| s.webhook = Some(webhook(&url, 50, 5))).await;
    let contract = Contract::fetch(&app).await;
    (app, receiver, contract)
}

#[tokio::test]
async fn a_bkash_journey_answers_and_webhooks_match_the_documented_shapes() {
    let (app, receiver, mut c) = journey().await;
    let invoice = format!("ORD-{}", rand_suffix());
    // The check is strict: a field the document does not describe, or a required one missing, fails it.
    let error = json!({"$ref": "#/components/schemas/ErrorBody"});
    assert!(c.validate(&error, &json!({"error": {"code": "internal", "message": "m"}})).is_ok());
    assert!(c.validate(&error, &json!({"error": {"code": "internal", "message": "m", "trace": "x"}})).is_err());
    assert!(c.validate(&error, &json!({"error": {"code": "internal"}})).is_err());
    assert!(c.validate(&error, &json!({"error": {"code": "internal", "message": "m"}, "status": 500})).is_err());

    // The merchant creates a session; the widget reads it and starts bKash.
    let body = json!({"amount": "250.00", "currency": "BDT", "invoice": invoice, "description": "Tea",
                      "return_url": "http://shop.test/return?order=1", "methods": ["bkash"]});
    let created = c.check("POST", "/v1/sessions", app.merchant("POST", "/v1/sessions", Some(&body)).await).await;
    assert_eq!(created.status, 201);
    let id = created.json["id"].as_str().unwrap().to_owned();
    let again = c.check("POST", "/v1/sessions", app.merchant("POST", "/v1/sessions", Some(&body)).await).await;
    assert_eq!((again.status, &again.json["error"]["code"]), (409, &json!("invoice_in_use")));
    let view = c.check("GET", "/v1/checkout/{id}", app.public("GET", &format!("/v1/checkout/{id}")).await).await;
    assert_eq!((view.json["status"].as_str(), view.json["attempt"].is_null()), (Some("open"), true));
    let started =
        c.check("POST", "/v1/checkout/{id}/bkash", app.public("POST", &format!("/v1/checkout/{id}/bkash")).await).await;
    assert_eq!(started.status, 201);
    let bkash_url = started.json["redirect_url"].as_str().unwrap().to_owned();
    let pending = c.check("GET", "/v1/checkout/{id}", app.public("GET", &format!("/v1/checkout/{id}")).await).await;
    assert_eq!(pending.json["attempt"]["status"], "pending");

    // The customer pays on bKash's page; bKash sends the browser to our callback, which sends it home.
    let callback = app.pay_on_page(&bkash_url, WALLET, OTP, PIN).await;
    let query = callback.split_once('?').unwrap().1.to_owned();
    let home =
        c.check("GET", "/v1/bkash/callback", app.public("GET", &format!("/v1/bkash/callback?{query}")).await).await;
    assert_eq!(home.status, 303);
    assert!(home.headers["location"].to_str().unwrap().starts_with("http://shop.test/return"));
    let bad = c.check("GET", "/v1/bkash/callback", app.public("GET", "/v1/bkash/callback?status=paid").await).await;
    assert_eq!(bad.status, 400);

    // Paid: the widget's view, its event stream, the merchant's session, bKash's search.
    let paid = c.check("GET", "/v1/checkout/{id}", app.public("GET", &format!("/v1/checkout/{id}")).await).await;
    assert_eq!(
        (paid.json["status"].as_str(), paid.json["attempt"]["status"].as_str()),
        (Some("paid"), Some("succeeded"))
    );
    assert_eq!(c.check_first_event(&app, &id).await["status"], "paid");
    let session =
        c.check("GET", "/v1/sessions/{id}", app.merchant("GET", &format!("/v1/sessions/{id}"), None).await).await;
    assert_eq!(session.json["amount_minor"], 25000);
    let trx_id = session.json["payment"]["trx_id"].as_str().unwrap().to_owned();
    let found = c
        .check(
            "GET",
            "/v1/bkash/transactions/{trx_id}",
            app.merchant("GET", &format!("/v1/bkash/transactions/{trx_id}"), None).await,
        )
        .await;
    assert_eq!((found.status, found.json["amount"].as_str()), (200, Some("250.00")));
    let twice =
        c.check("POST", "/v1/checkout/{id}/bkash", app.public("POST", &format!("/v1/checkout/{id}/bkash")).await).await;
    assert_eq!((twice.status, &twice.json["error"]["code"]), (409, &json!("session_already_paid")));

    // Refunds: one that bKash makes, one too large, one after bKash's refund window.
    let refunds = format!("/v1/sessions/{id}/refunds");
    let refund = json!({"amount": "50.5", "reason": "one cup returned"});
    let made = c.check("POST", "/v1/sessions/{id}/refunds", app.merchant("POST", &refunds, Some(&refund)).await).await;
    assert_eq!((made.status, made.json["amount"].as_str()), (201, Some("50.50")));
    let too_much = json!({"amount": "500.00"});
    let refused =
        c.check("POST", "/v1/sessions/{id}/refunds", app.merchant("POST", &refunds, Some(&too_much)).await).await;
    assert_eq!((refused.status, &refused.json["error"]["code"]), (409, &json!("refund_exceeds_payment")));
    let session =
        c.check("GET", "/v1/sessions/{id}", app.merchant("GET", &format!("/v1/sessions/{id}"), None).await).await;
    assert_eq!(session.json["refunded"], "50.50");

    // Errors of every kind have the one documented shape.
    let unknown = c
        .check("GET", "/v1/sessions/{id}", app.merchant("GET", "/v1/sessions/cs_ABCDEFGHIJKLMNOPQRSTUVWX", None).await)
        .await;
    assert_eq!((unknown.status, &unknown.json["error"]["code"]), (404, &json!("session_not_found")));
    let no_key = c.check("GET", "/v1/sessions/{id}", app.public("GET", &format!("/v1/sessions/{id}")).await).await;
    assert_eq!(no_key.status, 401);
    let wrong_shape = json!({"amount": 250});
    let invalid = c.check("POST", "/v1/sessions", app.merchant("POST", "/v1/sessions", Some(&wrong_shape)).await).await;
    assert_eq!(invalid.json["error"]["code"], "invalid_json");

    // Another session expires unpaid.
    let other = app.create_session("75.00").await;
    app.advance(1801).await;
    let expired = c.check("GET", "/v1/checkout/{id}", app.public("GET", &format!("/v1/checkout/{other}")).await).await;
    assert_eq!(expired.json["status"], "expired");

    // Past bKash's 15-day refund window a refund fails: with the failed refund or the error, as documented.
    app.advance(16 * 24 * 3600).await;
    let late = json!({"amount": "10.00"});
    let failed = c.check("POST", "/v1/sessions/{id}/refunds", app.merchant("POST", &refunds, Some(&late)).await).await;
    assert_eq!(failed.status, 422);
    let session =
        c.check("GET", "/v1/sessions/{id}", app.merchant("GET", &format!("/v1/sessions/{id}"), None).await).await;
    assert_eq!(session.json["refunds"][1]["status"], "failed");

    // Operations.
    let health = c.check("GET", "/healthz", app.public("GET", "/healthz").await).await;
    assert_eq!(health.json, json!({"status": "ok"}));
    let metrics = c.check("GET", "/metrics", app.merchant("GET", "/metrics", None).await).await;
    assert!(metrics.text.contains("# EOF"), "{}", metrics.text);
    c.check("GET", "/openapi.json", app.public("GET", "/openapi.json").await).await;

    // The merchant's server received each event of the journey, in the documented shape.
    let got = receiver.wait_for(4).await;
    let kinds: Vec<String> =
        got.iter().map(|(h, b)| c.check_webhook(h, b)["type"].as_str().unwrap().to_owned()).collect();
    for kind in ["session.paid", "refund.succeeded", "session.expired", "refund.failed"] {
        assert!(kinds.iter().any(|k| k == kind), "no {kind} webhook among {kinds:?}");
    }
    eprintln!("checked against /openapi.json: {:#?}", c.checked);
}

#[tokio::test]
async fn upi_payout_and_review_answers_match_the_documented_shapes() {
    let (app, receiver, mut c) = journey().await;

    // UPI: deep links and a QR code, a cancel, a second start.
    let id = app.create_inr_session("101.00").await;
    let upi = format!("/v1/checkout/{id}/upi");
    let first = c.check("POST", "/v1/checkout/{id}/upi", app.public("POST", &upi).await).await;
    assert_eq!(first.status, 201);
    assert!(first.json["qr_svg"]["path"].as_str().is_some_and(|p| p.starts_with('M')));
    let cancel = format!("/v1/checkout/{id}/cancel");
    let cancelled = c.check("POST", "/v1/checkout/{id}/cancel", app.public("POST", &cancel).await).await;
    assert_eq!(cancelled.json["attempt"]["status"], "cancelled");
    let nothing = c.check("POST", "/v1/checkout/{id}/cancel", app.public("POST", &cancel).await).await;
    assert_eq!((nothing.status, &nothing.json["error"]["code"]), (409, &json!("nothing_to_cancel")));
    let second = c.check("POST", "/v1/checkout/{id}/upi", app.public("POST", &upi).await).await;
    assert_eq!(c.check_first_event(&app, &id).await["attempt"]["status"], "pending");

    // A signed notification of a success for another amount: held for review, announced to the merchant.
    let data = json!({"mid": MID, "trx_id": trx_of(&second.json), "req_id": "x", "trx_type": "payin",
                      "status": "success", "amount": "1.00", "ccy": "INR"});
    let notify = app.http.post(format!("{}/v1/bestinpay/notify", app.url)).json(&notification("N-review", &data));
    let acknowledged = c.check("POST", "/v1/bestinpay/notify", notify.send().await.unwrap()).await;
    assert_eq!((acknowledged.status, acknowledged.text.as_str()), (200, "success"));
    let forged = notification("N-forged", &json!({"mid": MID, "trx_id": "nope"}));
    let notify = app.http.post(format!("{}/v1/bestinpay/notify", app.url)).json(&forged);
    assert_eq!(c.check("POST", "/v1/bestinpay/notify", notify.send().await.unwrap()).await.status / 100, 4);
    let view = c.check("GET", "/v1/checkout/{id}", app.public("GET", &format!("/v1/checkout/{id}")).await).await;
    assert_eq!(
        (view.json["attempt"]["status"].as_str(), view.json["attempt"]["reason"].as_str()),
        (Some("review"), Some("review"))
    );
    let session =
        c.check("GET", "/v1/sessions/{id}", app.merchant("GET", &format!("/v1/sessions/{id}"), None).await).await;
    let statuses: Vec<&str> =
        session.json["attempts"].as_array().unwrap().iter().map(|a| a["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["cancelled", "review"]);

    // Payouts and the balance.
    let balance = c.check("GET", "/v1/balance", app.merchant("GET", "/v1/balance", None).await).await;
    assert_eq!(balance.json[0]["available"], "100000.00");
    let body = json!({"amount": "500.00", "currency": "INR", "upi": "pending@bestin", "reference": "HOLD-1"});
    let payout = c.check("POST", "/v1/payouts", app.merchant("POST", "/v1/payouts", Some(&body)).await).await;
    assert_eq!(payout.status, 201);
    let same = c.check("POST", "/v1/payouts", app.merchant("POST", "/v1/payouts", Some(&body)).await).await;
    assert_eq!(same.status, 200);
    let po = payout.json["id"].as_str().unwrap().to_owned();
    c.check("GET", "/v1/payouts/{id}", app.merchant("GET", &format!("/v1/payouts/{po}"), None).await).await;
    let canceled = c
        .check("POST", "/v1/payouts/{id}/cancel", app.merchant("POST", &format!("/v1/payouts/{po}/cancel"), None).await)
        .await;
    assert_eq!(canceled.json["status"], "canceled");
    let unknown = c.check("GET", "/v1/payouts/{id}", app.merchant("GET", "/v1/payouts/po_unknown", None).await).await;
    assert_eq!(unknown.status, 404);

    let got = receiver.wait_for(1).await;
    let event = c.check_webhook(&got[0].0, &got[0].1);
    assert_eq!(event["type"], "payment.needs_review");
    eprintln!("checked against /openapi.json: {:#?}", c.checked);
}
