//! Contract tests: the sandbox's Bestin Pay over real HTTP, seen the way a merchant backend, a
//! customer's UPI app (the approval page) and a notification receiver see it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode as AxStatus;
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use deshpay_sandbox::{BESTIN_TEST_PUBLIC_KEY_PEM, BestinCredentials, BestinOptions, Sandbox, SandboxConfig};
use reqwest::{Client, StatusCode, redirect::Policy};
use rsa::RsaPublicKey;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;
use serde_json::{Map, Value, json};
use sha2::Sha512;

const VECTORS: &str = include_str!("../keys/bestinpay-notify-vectors.json");
const MINUTE: i64 = 60_000;

// -----------------------------------------------------------------------------------------------
// A notification receiver that checks every signature on its own

/// What the receiver answers, in order; after the list it answers 200 `success`.
#[derive(Clone)]
struct Receiver {
    url: String,
    received: Arc<Mutex<Vec<(Value, bool)>>>,
    script: Arc<Mutex<Vec<(u16, &'static str)>>>,
    hits: Arc<AtomicUsize>,
}

impl Receiver {
    async fn spawn(script: Vec<(u16, &'static str)>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind receiver");
        let addr = listener.local_addr().expect("addr");
        let receiver = Self {
            url: format!("http://{addr}/notify"),
            received: Arc::default(),
            script: Arc::new(Mutex::new(script.into_iter().rev().collect())),
            hits: Arc::default(),
        };
        let app = Router::new().route("/notify", post(receive)).with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        receiver
    }

    fn all(&self) -> Vec<(Value, bool)> {
        self.received.lock().expect("lock").clone()
    }

    /// Waits until `n` notifications arrived; returns them.
    async fn wait_for(&self, n: usize) -> Vec<(Value, bool)> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let all = self.all();
            if all.len() >= n {
                return all;
            }
            assert!(Instant::now() < deadline, "expected {n} notifications, got {}: {all:?}", all.len());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn receive(State(r): State<Receiver>, body: Bytes) -> (AxStatus, &'static str) {
    r.hits.fetch_add(1, Ordering::SeqCst);
    let value: Value = serde_json::from_slice(&body).expect("notification is JSON");
    let verified = verify_independently(&value);
    r.received.lock().expect("lock").push((value, verified));
    let next = r.script.lock().expect("lock").pop();
    match next {
        Some((status, text)) => (AxStatus::from_u16(status).unwrap_or(AxStatus::INTERNAL_SERVER_ERROR), text),
        None => (AxStatus::OK, "success"),
    }
}

/// The seed's verification steps, written again here from scratch so that the sandbox's signer
/// is checked by code it does not share.
fn verify_independently(notification: &Value) -> bool {
    let Some(data) = notification["data"].as_object() else {
        return false;
    };
    let mut keys: Vec<&String> =
        data.iter().filter(|(_, v)| !v.is_null() && v.as_str() != Some("")).map(|(k, _)| k).collect();
    keys.sort();
    let signed = keys
        .iter()
        .map(|k| match &data[*k] {
            Value::String(s) => format!("{k}={s}"),
            other => format!("{k}={other}"),
        })
        .collect::<Vec<_>>()
        .join("&");
    let vectors: Value = serde_json::from_str(VECTORS).expect("vectors");
    let pem = vectors["public_key_pem"].as_str().expect("pem");
    let key = RsaPublicKey::from_public_key_pem(pem).expect("key");
    let Some(sig) = notification["sign"].as_str().and_then(|s| BASE64.decode(s).ok()) else {
        return false;
    };
    let Ok(sig) = Signature::try_from(sig.as_slice()) else {
        return false;
    };
    VerifyingKey::<Sha512>::new(key).verify(signed.as_bytes(), &sig).is_ok()
}

// -----------------------------------------------------------------------------------------------
// The sandbox, as a merchant backend calls it

struct TestBestin {
    sandbox: Sandbox,
    http: Client,
    creds: BestinCredentials,
}

fn fast_options() -> BestinOptions {
    BestinOptions {
        payout_settle_delay: Duration::from_millis(500),
        notify_backoff: vec![Duration::from_millis(40)],
        notify_timeout: Duration::from_secs(2),
        expiry_tick: Duration::from_millis(50),
        ..BestinOptions::default()
    }
}

impl TestBestin {
    async fn spawn() -> Self {
        Self::spawn_with(fast_options()).await
    }

    async fn spawn_with(options: BestinOptions) -> Self {
        let sandbox = Sandbox::spawn(SandboxConfig { bestin_options: options, ..SandboxConfig::default() })
            .await
            .expect("sandbox starts");
        let http = Client::builder().redirect(Policy::none()).build().expect("client");
        Self { sandbox, http, creds: BestinCredentials::sandbox_default() }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sandbox.url())
    }

    /// The sandbox clock, as a backend that follows it would send in `x-timestamp`.
    async fn now_ms(&self) -> i64 {
        self.control_get("/__sandbox/clock").await.1["now_ms"].as_i64().expect("now_ms")
    }

    async fn call_with(&self, path: &str, headers: &[(&str, String)], body: &Value) -> (StatusCode, Value) {
        let mut request = self.http.post(format!("{}/{path}", self.sandbox.bestin_base_url())).json(body);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let response = request.send().await.expect("sent");
        let status = response.status();
        (status, response.json().await.expect("json answer"))
    }

    async fn headers(&self) -> Vec<(&'static str, String)> {
        vec![
            ("x-app-id", self.creds.app_id.clone()),
            ("x-secret", self.creds.secret.clone()),
            ("x-timestamp", self.now_ms().await.to_string()),
        ]
    }

    /// A call with the right headers.
    async fn call(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let headers = self.headers().await;
        self.call_with(path, &headers, &body).await
    }

    /// A call that must succeed with `"code": "0000"`; returns `data`.
    async fn ok(&self, path: &str, body: Value) -> Value {
        let (status, answer) = self.call(path, body).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["code"], "0000", "{answer}");
        assert_eq!(answer["msg"], "Success", "{answer}");
        answer["data"].clone()
    }

    async fn payin(&self, req_id: &str, amount: &str, notify_url: Option<&str>) -> Value {
        self.ok("payin", payin_body(req_id, amount, notify_url)).await
    }

    async fn payout(&self, req_id: &str, amount: &str, upi: &str, notify_url: Option<&str>) -> Value {
        let mut body = json!({
            "req_id": req_id, "ccy": "INR", "amount": amount, "trx_method": "upi",
            "upi": upi, "user_ip": "127.0.0.1",
        });
        if let Some(url) = notify_url {
            body["notify_url"] = url.into();
        }
        self.ok("payout", body).await
    }

    async fn query(&self, trx_type: &str, trx_id: &str) -> Value {
        self.ok("query", json!({"trx_id": trx_id, "trx_type": trx_type})).await
    }

    /// `[balance, available, frozen]` from `/balance`.
    async fn balance(&self) -> [String; 3] {
        let (status, answer) = self.call("balance", json!({})).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(answer["code"], 200, "a number, as in the seed: {answer}");
        assert_eq!(answer["msg"], "success");
        let row = &answer["data"][0];
        assert_eq!(row["ccy"], "INR");
        ["balance", "available_balance", "frozen_balance"].map(|k| row[k].as_str().expect("string amount").to_owned())
    }

    async fn control_get(&self, path: &str) -> (StatusCode, Value) {
        let response = self.http.get(self.url(path)).send().await.expect("sent");
        let status = response.status();
        (status, response.json().await.expect("json"))
    }

    async fn control_post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let response = self.http.post(self.url(path)).json(&body).send().await.expect("sent");
        let status = response.status();
        (status, response.json().await.expect("json"))
    }

    async fn advance(&self, seconds: i64) {
        let (status, _) = self.control_post("/__sandbox/clock/advance", json!({ "seconds": seconds })).await;
        assert_eq!(status, StatusCode::OK);
    }

    async fn fault(&self, fault: Value) {
        let (status, body) = self.control_post("/__sandbox/bestin/faults", fault).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    async fn page(&self, link: &str) -> (StatusCode, String) {
        let response = self.http.get(self.sandbox.upi_approve_url(link)).send().await.expect("page");
        let status = response.status();
        (status, response.text().await.expect("html"))
    }

    async fn decide(&self, trx_id: &str, decision: &str) -> (StatusCode, String) {
        let response = self
            .http
            .post(self.url(&format!("/upi/approve/{trx_id}")))
            .form(&[("decision", decision), ("app", "Paytm")])
            .send()
            .await
            .expect("form posted");
        let status = response.status();
        (status, response.text().await.expect("html"))
    }

    async fn attempts(&self, trx_id: &str) -> Vec<Value> {
        let (status, body) = self.control_get(&format!("/__sandbox/bestin/notifications?trx_id={trx_id}")).await;
        assert_eq!(status, StatusCode::OK);
        body.as_array().expect("list").clone()
    }
}

fn payin_body(req_id: &str, amount: &str, notify_url: Option<&str>) -> Value {
    let mut body = json!({
        "req_id": req_id,
        "ccy": "INR",
        "amount": amount,
        "trx_method": "upi",
        "trx_mode": "api",
        "product_id": "product_001",
        "user_ip": "192.168.1.1",
        "return_url": "https://merchant.test/return",
    });
    if let Some(url) = notify_url {
        body["notify_url"] = url.into();
    }
    body
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

/// The query parameters of a deep link.
fn params(link: &str) -> Map<String, Value> {
    url::Url::parse(link)
        .expect("link parses")
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
        .collect()
}

fn is_crockford(s: &str) -> bool {
    s.bytes().all(|b| b"0123456789ABCDEFGHJKMNPQRSTVWXYZ".contains(&b))
}

// -----------------------------------------------------------------------------------------------
// Authentication and request shapes

#[tokio::test]
async fn wrong_credentials_or_a_timestamp_off_by_more_than_five_minutes_get_401() {
    let sb = TestBestin::spawn().await;
    let now = sb.now_ms().await;
    let id = sb.creds.app_id.clone();
    let secret = sb.creds.secret.clone();
    let body = json!({});
    let cases: Vec<(Vec<(&str, String)>, &str)> = vec![
        (
            vec![("x-app-id", id.clone()), ("x-secret", "nope".into()), ("x-timestamp", now.to_string())],
            "invalid credentials",
        ),
        (vec![("x-secret", secret.clone()), ("x-timestamp", now.to_string())], "invalid credentials"),
        (
            vec![("x-app-id", "other".into()), ("x-secret", secret.clone()), ("x-timestamp", now.to_string())],
            "invalid credentials",
        ),
        (
            vec![
                ("x-app-id", id.clone()),
                ("x-secret", secret.clone()),
                ("x-timestamp", (now - 6 * MINUTE).to_string()),
            ],
            "timestamp expired",
        ),
        (
            vec![
                ("x-app-id", id.clone()),
                ("x-secret", secret.clone()),
                ("x-timestamp", (now + 6 * MINUTE).to_string()),
            ],
            "timestamp expired",
        ),
        (
            vec![("x-app-id", id.clone()), ("x-secret", secret.clone()), ("x-timestamp", (now / 1000).to_string())],
            "timestamp expired",
        ),
        (
            vec![("x-app-id", id.clone()), ("x-secret", secret.clone()), ("x-timestamp", "soon".into())],
            "invalid timestamp",
        ),
        (vec![("x-app-id", id.clone()), ("x-secret", secret.clone())], "invalid timestamp"),
    ];
    let count = cases.len();
    for (headers, msg) in cases {
        let (status, answer) = sb.call_with("balance", &headers, &body).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{headers:?}");
        assert_eq!(answer, json!({"code": 401, "msg": msg, "data": null}), "{headers:?}");
    }
    // Four and a half minutes off is inside the window.
    let headers =
        vec![("x-app-id", id), ("x-secret", secret), ("x-timestamp", (now - 4 * MINUTE - 30_000).to_string())];
    assert_eq!(sb.call_with("balance", &headers, &body).await.0, StatusCode::OK);
    let (_, counters) = sb.control_get("/__sandbox/bestin/counters").await;
    assert_eq!(counters["unauthorized"], count);
    assert_eq!(counters["balance"], count + 1);
}

#[tokio::test]
async fn the_timestamp_window_follows_the_sandbox_clock() {
    let sb = TestBestin::spawn().await;
    let before = sb.now_ms().await;
    sb.advance(600).await;
    let headers = vec![
        ("x-app-id", sb.creds.app_id.clone()),
        ("x-secret", sb.creds.secret.clone()),
        ("x-timestamp", before.to_string()),
    ];
    let (status, answer) = sb.call_with("balance", &headers, &json!({})).await;
    assert_eq!((status, s(&answer["msg"])), (StatusCode::UNAUTHORIZED, "timestamp expired".into()));

    // With the system clock chosen instead, a client that ignores the offset keeps working.
    let system = TestBestin::spawn_with(BestinOptions { timestamp_uses_sandbox_clock: false, ..fast_options() }).await;
    let before = system.now_ms().await;
    system.advance(600).await;
    let headers = vec![
        ("x-app-id", system.creds.app_id.clone()),
        ("x-secret", system.creds.secret.clone()),
        ("x-timestamp", before.to_string()),
    ];
    assert_eq!(system.call_with("balance", &headers, &json!({})).await.0, StatusCode::OK);
}

#[tokio::test]
async fn payin_answers_with_a_pi_id_a_four_decimal_amount_and_a_deep_link_per_app() {
    let sb = TestBestin::spawn().await;
    let data = sb.payin("PAY20241022001", "101", None).await;
    let trx_id = s(&data["trx_id"]);
    assert!(trx_id.starts_with("PI") && trx_id.len() == 28, "{trx_id}");
    assert!(is_crockford(&trx_id[2..]), "{trx_id}");
    for (key, expected) in [
        ("trx_type", "payin"),
        ("req_id", "PAY20241022001"),
        ("trx_method", "upi"),
        ("trx_mode", "api"),
        ("ccy", "INR"),
        ("amount", "101.0000"),
        ("status", "pending"),
    ] {
        assert_eq!(data[key], expected, "{key}: {data}");
    }
    assert!(data.get("checkout_url").is_none(), "{data}");
    let links = &data["links"];
    assert_eq!(data["link"], links["upi"]);

    let upi = s(&links["upi"]);
    assert!(upi.starts_with("upi://pay?"), "{upi}");
    let paytm = s(&links["paytm"]);
    assert!(paytm.starts_with("paytmmp://cash_wallet?"), "{paytm}");
    for link in [&upi, &paytm] {
        let p = params(link);
        assert_eq!(p["pa"], "deshpay.sandbox@bestin", "{link}");
        assert_eq!(p["pn"], "DeshPay Sandbox Merchant", "{link}");
        assert_eq!(p["am"], "101.00", "{link}");
        assert_eq!(p["cu"], "INR", "{link}");
        assert_eq!(p["tr"], trx_id.as_str(), "{link}");
        assert!(!s(&p["tn"]).is_empty(), "{link}");
    }
    assert!(upi.contains("pn=DeshPay%20Sandbox%20Merchant"), "spaces as %20: {upi}");

    let phonepe = s(&links["phonepe"]);
    assert!(phonepe.starts_with("phonepe://native?data="), "{phonepe}");
    let p = params(&phonepe);
    assert_eq!(p["id"], "p2ppayment");
    let decoded: Value = serde_json::from_slice(&BASE64.decode(s(&p["data"])).expect("base64")).expect("json");
    let checkout = &decoded["p2pPaymentCheckoutParams"];
    assert_eq!(checkout["referenceId"], trx_id.as_str());
    assert_eq!(checkout["initialAmount"], 10_100);
    assert_eq!(checkout["currency"], "INR");
    assert_eq!(decoded["contact"]["vpa"], "deshpay.sandbox@bestin");

    // checkout mode also gives the approval page to send a browser to.
    let mut body = payin_body("PAY20241022002", "250.5", None);
    body["trx_mode"] = "checkout".into();
    let data = sb.ok("payin", body).await;
    assert_eq!(data["amount"], "250.5000");
    assert_eq!(data["trx_mode"], "checkout");
    let checkout_url = s(&data["checkout_url"]);
    assert!(
        checkout_url.starts_with(&format!("{}/upi/approve?link=upi%3A%2F%2Fpay", sb.sandbox.url())),
        "{checkout_url}"
    );
    let page = sb.http.get(&checkout_url).send().await.expect("page");
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.expect("html").contains("₹250.50"));
}

#[tokio::test]
async fn bad_payin_and_payout_bodies_get_400_with_the_reason() {
    let sb = TestBestin::spawn().await;
    let good = payin_body("R-1", "101.00", Some("https://merchant.test/notify"));
    let with = |key: &str, value: Value| {
        let mut body = good.clone();
        if value.is_null() {
            body.as_object_mut().expect("object").remove(key);
        } else {
            body[key] = value;
        }
        body
    };
    let cases = [
        (with("req_id", Value::Null), "req_id is required"),
        (with("req_id", "x".repeat(65).into()), "req_id is too long (at most 64 characters)"),
        (with("ccy", "USD".into()), "unsupported ccy: only INR"),
        (with("ccy", Value::Null), "ccy is required"),
        (with("amount", "0".into()), "invalid amount: a positive decimal with at most 2 places"),
        (with("amount", "1.234".into()), "invalid amount: a positive decimal with at most 2 places"),
        (with("amount", "-5".into()), "invalid amount: a positive decimal with at most 2 places"),
        (with("amount", "abc".into()), "invalid amount: a positive decimal with at most 2 places"),
        (with("amount", json!(101)), "amount must be a string"),
        (with("trx_method", "bank_card".into()), "unsupported trx_method: only upi"),
        (with("trx_mode", "redirect".into()), "invalid trx_mode: api or checkout"),
        (with("notify_url", "ftp://merchant.test/n".into()), "invalid notify_url: an absolute http(s) URL"),
        (with("return_url", "/relative".into()), "invalid return_url: an absolute http(s) URL"),
        (with("user_ip", "999.1.1.1".into()), "invalid user_ip"),
        (json!(["not", "an", "object"]), "request body must be a JSON object"),
    ];
    for (body, msg) in cases {
        let (status, answer) = sb.call("payin", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(answer, json!({"code": 400, "msg": msg, "data": null}), "{body}");
    }
    let mut request = sb.http.post(format!("{}/payin", sb.sandbox.bestin_base_url())).body("{not json");
    for (name, value) in sb.headers().await {
        request = request.header(name, value);
    }
    let response = request.send().await.expect("sent");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    // A req_id is used once per trx_type; none of the refused bodies above took it.
    sb.ok("payin", good.clone()).await;
    let (status, answer) = sb.call("payin", good).await;
    assert_eq!((status, s(&answer["msg"])), (StatusCode::BAD_REQUEST, "duplicate req_id".into()));
    sb.payout("R-1", "1.00", "name@bank", None).await;

    let payout = |upi: &str, method: &str| json!({"req_id": "P-2", "ccy": "INR", "amount": "1.00", "trx_method": method, "upi": upi});
    for (body, msg) in [
        (payout("1234****@ibl", "upi"), "invalid upi: a UPI address like name@bank"),
        (payout("nobank", "upi"), "invalid upi: a UPI address like name@bank"),
        (payout("name@bank", "bank_transfer"), "unsupported trx_method: only upi"),
    ] {
        let (status, answer) = sb.call("payout", body).await;
        assert_eq!((status, s(&answer["msg"])), (StatusCode::BAD_REQUEST, msg.into()));
    }
    // Unknown paths and methods answer in the same envelope.
    let (status, answer) = sb.call("refund", json!({})).await;
    assert_eq!((status, answer["code"].clone()), (StatusCode::NOT_FOUND, json!(404)));
    let response = sb.http.get(format!("{}/payin", sb.sandbox.bestin_base_url())).send().await.expect("sent");
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
}

// -----------------------------------------------------------------------------------------------
// The customer's UPI app, notifications

#[tokio::test]
async fn approving_on_the_page_makes_the_payin_successful_and_sends_a_signed_notification() {
    let sb = TestBestin::spawn().await;
    let receiver = Receiver::spawn(vec![]).await;
    let [before, _, _] = sb.balance().await;
    assert_eq!(before, "100000.00");
    let data = sb.payin("ORDER-1", "101.00", Some(&receiver.url)).await;
    let trx_id = s(&data["trx_id"]);

    for (key, app) in [("upi", "UPI app"), ("paytm", "Paytm"), ("phonepe", "PhonePe")] {
        let (status, html) = sb.page(&s(&data["links"][key])).await;
        assert_eq!(status, StatusCode::OK, "{key}");
        for text in [app, "₹101.00", "DeshPay Sandbox Merchant", "deshpay.sandbox@bestin", trx_id.as_str()] {
            assert!(html.contains(text), "{key}: {text} missing in {html}");
        }
        assert!(html.contains(r#"value="approve">Approve</button>"#), "{html}");
        assert!(html.contains(r#"value="decline">Decline</button>"#), "{html}");
        assert!(html.contains(&format!(r#"action="/upi/approve/{trx_id}""#)), "{html}");
    }
    assert!(receiver.all().is_empty(), "no status change yet");

    let (status, html) = sb.decide(&trx_id, "approve").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Payment approved"), "{html}");
    assert!(html.contains("Return to merchant"), "{html}");
    assert_eq!(sb.query("payin", &trx_id).await["status"], "success");

    let received = receiver.wait_for(1).await;
    let (notification, verified) = &received[0];
    assert!(verified, "signature must verify with the vectors' public key: {notification}");
    assert_eq!(notification["event_type"], "trx_update");
    assert!(s(&notification["notify_id"]).starts_with('N'));
    assert!(notification["timestamp"].as_i64().is_some_and(|t| t > 1_700_000_000_000));
    assert_eq!(
        notification["data"],
        json!({
            "mid": "M01KDESHPAYSANDBXX000000001",
            "trx_id": trx_id,
            "req_id": "ORDER-1",
            "trx_type": "payin",
            "status": "success",
            "amount": "101.00",
            "ccy": "INR",
        })
    );
    assert_eq!(sb.balance().await, ["100101.00", "100101.00", "0.00"].map(String::from));

    // The decision is final: the page says so, a second post is refused, nothing more is sent.
    let (status, html) = sb.page(&s(&data["link"])).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("already been approved"), "{html}");
    assert!(!html.contains(">Approve</button>"));
    assert_eq!(sb.decide(&trx_id, "decline").await.0, StatusCode::CONFLICT);
    let (status, _) = sb.control_post(&format!("/__sandbox/bestin/payins/{trx_id}/decline"), json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let attempts = sb.attempts(&trx_id).await;
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    assert_eq!(attempts[0]["attempt"], 1);
    assert_eq!(attempts[0]["status"], 200);
    assert_eq!(attempts[0]["response"], "success");
    assert_eq!(attempts[0]["delivered"], true);
    assert_eq!(attempts[0]["url"], receiver.url.as_str());
    let sent: Value = serde_json::from_str(&s(&attempts[0]["body"])).expect("body");
    assert_eq!(&sent, notification);

    let (_, inspected) = sb.control_get(&format!("/__sandbox/bestin/payins/{trx_id}")).await;
    assert_eq!(inspected["status"], "success");
    assert_eq!(inspected["query_calls"], 1);
    assert_eq!(inspected["deliveries"], 1);
    assert_eq!(inspected["notify_ids"], json!([notification["notify_id"]]));
}

#[tokio::test]
async fn declining_fails_the_payin_and_the_approval_page_rejects_bad_links() {
    let sb = TestBestin::spawn().await;
    let receiver = Receiver::spawn(vec![]).await;
    let data = sb.payin("ORDER-2", "99.99", Some(&receiver.url)).await;
    let trx_id = s(&data["trx_id"]);
    let (status, html) = sb.decide(&trx_id, "decline").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Payment declined"), "{html}");
    assert_eq!(sb.query("payin", &trx_id).await["status"], "failed");
    let received = receiver.wait_for(1).await;
    assert!(received[0].1);
    assert_eq!(received[0].0["data"]["status"], "failed");
    assert_eq!(received[0].0["data"]["amount"], "99.99");
    assert_eq!(sb.balance().await[0], "100000.00");
    let (status, html) = sb.page(&s(&data["links"]["paytm"])).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("declined"), "{html}");

    // A link of no payin, no link, and a link whose amount was changed.
    let other = sb.payin("ORDER-3", "10.00", None).await;
    let forged = s(&other["link"]).replace("am=10.00", "am=1.00");
    for (link, expected) in [
        ("upi://pay?pa=x@y&am=1.00&tr=PI01KAG1YM11Z3Y7BG4VW9K86ZRJ".to_owned(), StatusCode::NOT_FOUND),
        (String::new(), StatusCode::BAD_REQUEST),
        (forged, StatusCode::BAD_REQUEST),
    ] {
        assert_eq!(sb.page(&link).await.0, expected, "{link}");
    }
    let (status, _) = sb.decide(&s(&other["trx_id"]), "maybe").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(sb.decide("PI0000", "approve").await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_pending_payin_expires_after_fifteen_minutes_on_the_sandbox_clock_and_notifies() {
    let sb = TestBestin::spawn().await;
    let receiver = Receiver::spawn(vec![]).await;
    let data = sb.payin("ORDER-4", "101.00", Some(&receiver.url)).await;
    let trx_id = s(&data["trx_id"]);
    sb.advance(14 * 60 + 50).await;
    assert_eq!(sb.query("payin", &trx_id).await["status"], "pending");
    sb.advance(11).await;
    let received = receiver.wait_for(1).await;
    assert!(received[0].1);
    assert_eq!(received[0].0["data"]["status"], "expired");
    assert_eq!(sb.query("payin", &trx_id).await["status"], "expired");

    let (status, html) = sb.page(&s(&data["link"])).await;
    assert_eq!(status, StatusCode::GONE);
    assert!(html.contains("This payment request has expired"), "{html}");
    assert_eq!(sb.decide(&trx_id, "approve").await.0, StatusCode::GONE);
    let (status, body) = sb.control_post(&format!("/__sandbox/bestin/payins/{trx_id}/approve"), json!({})).await;
    assert_eq!((status, s(&body["error"])), (StatusCode::CONFLICT, "payin has expired".into()));
    let (status, answer) = sb.call("cancel", json!({"trx_id": trx_id, "trx_type": "payin"})).await;
    assert_eq!((status, s(&answer["msg"])), (StatusCode::BAD_REQUEST, "order is final".into()));
    assert_eq!(sb.balance().await[0], "100000.00");
    assert_eq!(receiver.all().len(), 1);
}

#[tokio::test]
async fn the_ticker_expires_payins_nobody_looks_at() {
    let sb = TestBestin::spawn_with(BestinOptions { payin_ttl: Duration::from_millis(150), ..fast_options() }).await;
    let receiver = Receiver::spawn(vec![]).await;
    let data = sb.payin("ORDER-5", "5.00", Some(&receiver.url)).await;
    let received = receiver.wait_for(1).await;
    assert_eq!(received[0].0["data"]["trx_id"], data["trx_id"]);
    assert_eq!(received[0].0["data"]["status"], "expired");
}

#[tokio::test]
async fn cancel_ends_a_pending_payin_and_refuses_final_or_unknown_orders() {
    let sb = TestBestin::spawn().await;
    let receiver = Receiver::spawn(vec![]).await;
    let data = sb.payin("ORDER-6", "20.00", Some(&receiver.url)).await;
    let trx_id = s(&data["trx_id"]);
    let cancelled = sb.ok("cancel", json!({"trx_id": trx_id, "trx_type": "payin"})).await;
    assert_eq!(cancelled["status"], "canceled");
    assert_eq!(cancelled["trx_id"], trx_id.as_str());
    assert_eq!(cancelled["amount"], "20.0000");
    let received = receiver.wait_for(1).await;
    assert_eq!(received[0].0["data"]["status"], "canceled");
    assert!(received[0].1);

    for (body, status, msg) in [
        (json!({"trx_id": trx_id, "trx_type": "payin"}), StatusCode::BAD_REQUEST, "order is final"),
        (json!({"trx_id": trx_id, "trx_type": "payout"}), StatusCode::NOT_FOUND, "order not found"),
        (
            json!({"trx_id": "PI01KAG1YM11Z3Y7BG4VW9K86ZRJ", "trx_type": "payin"}),
            StatusCode::NOT_FOUND,
            "order not found",
        ),
        (json!({"trx_id": trx_id}), StatusCode::BAD_REQUEST, "trx_type is required"),
        (json!({"trx_id": trx_id, "trx_type": "refund"}), StatusCode::BAD_REQUEST, "invalid trx_type: payin or payout"),
        (json!({"trx_type": "payin"}), StatusCode::BAD_REQUEST, "trx_id is required"),
    ] {
        let (got, answer) = sb.call("cancel", body.clone()).await;
        assert_eq!(got, status, "{body}");
        assert_eq!(answer, json!({"code": status.as_u16(), "msg": msg, "data": null}), "{body}");
    }
    let (status, html) = sb.page(&s(&data["link"])).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("cancelled"), "{html}");
    let (_, inspected) = sb.control_get(&format!("/__sandbox/bestin/payins/{trx_id}")).await;
    assert_eq!(inspected["cancel_calls"], 2);
}

#[tokio::test]
async fn query_finds_an_order_by_req_id_or_trx_id_within_its_trx_type() {
    let sb = TestBestin::spawn().await;
    let data = sb.payin("Q-1", "42.00", None).await;
    let trx_id = s(&data["trx_id"]);
    let by_req = sb.ok("query", json!({"req_id": "Q-1", "trx_type": "payin"})).await;
    assert_eq!(by_req, data, "query answers with the payin's own data");
    let by_trx = sb.query("payin", &trx_id).await;
    assert_eq!(by_trx, data);
    let both = sb.ok("query", json!({"req_id": "Q-1", "trx_id": trx_id, "trx_type": "payin"})).await;
    assert_eq!(both["trx_id"], trx_id.as_str());

    for (body, status, msg) in [
        (json!({"req_id": "Q-2", "trx_id": trx_id, "trx_type": "payin"}), StatusCode::NOT_FOUND, "order not found"),
        (json!({"req_id": "Q-1", "trx_type": "payout"}), StatusCode::NOT_FOUND, "order not found"),
        (json!({"req_id": "nope", "trx_type": "payin"}), StatusCode::NOT_FOUND, "order not found"),
        (json!({"trx_type": "payin"}), StatusCode::BAD_REQUEST, "req_id or trx_id is required"),
        (json!({"req_id": "Q-1"}), StatusCode::BAD_REQUEST, "trx_type is required"),
    ] {
        let (got, answer) = sb.call("query", body.clone()).await;
        assert_eq!((got, s(&answer["msg"])), (status, msg.to_owned()), "{body}");
        assert_eq!(answer["code"], status.as_u16());
    }
}

// -----------------------------------------------------------------------------------------------
// Balance and payouts

#[tokio::test]
async fn payouts_freeze_their_amount_and_settle_into_the_balance_with_a_notification() {
    let sb = TestBestin::spawn().await;
    let receiver = Receiver::spawn(vec![]).await;
    assert_eq!(sb.balance().await, ["100000.00", "100000.00", "0.00"].map(String::from));
    let payin = sb.payin("IN-1", "500.00", None).await;
    let (status, _) =
        sb.control_post(&format!("/__sandbox/bestin/payins/{}/approve", s(&payin["trx_id"])), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sb.balance().await, ["100500.00", "100500.00", "0.00"].map(String::from));

    let data = sb.payout("OUT-1", "1000.50", "customer@okaxis", Some(&receiver.url)).await;
    let trx_id = s(&data["trx_id"]);
    assert!(trx_id.starts_with("PO") && trx_id.len() == 28, "{trx_id}");
    assert_eq!(data["trx_type"], "payout");
    assert_eq!(data["amount"], "1000.5000");
    assert_eq!(data["status"], "pending");
    assert_eq!(data["upi"], "customer@okaxis");
    assert_eq!(sb.balance().await, ["100500.00", "99499.50", "1000.50"].map(String::from));

    let received = receiver.wait_for(1).await;
    assert!(received[0].1);
    assert_eq!(received[0].0["data"]["trx_type"], "payout");
    assert_eq!(received[0].0["data"]["status"], "success");
    assert_eq!(received[0].0["data"]["amount"], "1000.50");
    assert_eq!(sb.query("payout", &trx_id).await["status"], "success");
    assert_eq!(sb.balance().await, ["99499.50", "99499.50", "0.00"].map(String::from));
    let (status, answer) = sb.call("cancel", json!({"trx_id": trx_id, "trx_type": "payout"})).await;
    assert_eq!((status, s(&answer["msg"])), (StatusCode::BAD_REQUEST, "order is final".into()));
}

#[tokio::test]
async fn a_payout_above_the_available_balance_is_rejected() {
    let sb = TestBestin::spawn_with(BestinOptions { opening_balance_paise: 100_000, ..fast_options() }).await;
    let (status, answer) = sb
        .call(
            "payout",
            json!({"req_id": "O-1", "ccy": "INR", "amount": "1000.01", "trx_method": "upi", "upi": "a.b@ybl"}),
        )
        .await;
    assert_eq!(answer, json!({"code": 400, "msg": "insufficient balance", "data": null}));
    assert_eq!(status, StatusCode::BAD_REQUEST);
    sb.payout("O-2", "600.00", "pending@bestin", None).await;
    // Frozen money is not available: 400.00 left.
    let (status, answer) = sb
        .call(
            "payout",
            json!({"req_id": "O-3", "ccy": "INR", "amount": "400.01", "trx_method": "upi", "upi": "a.b@ybl"}),
        )
        .await;
    assert_eq!((status, s(&answer["msg"])), (StatusCode::BAD_REQUEST, "insufficient balance".into()));
    sb.payout("O-4", "400.00", "pending@bestin", None).await;
    assert_eq!(sb.balance().await, ["1000.00", "0.00", "1000.00"].map(String::from));
    // The refused req_ids were not used up.
    sb.ok("cancel", json!({"trx_id": s(&sb.ok("query", json!({"req_id": "O-4", "trx_type": "payout"})).await["trx_id"]), "trx_type": "payout"})).await;
    sb.payout("O-3", "400.00", "pending@bestin", None).await;
}

#[tokio::test]
async fn special_payees_fail_or_wait_and_the_settle_control_endpoint_decides() {
    let sb = TestBestin::spawn().await;
    let receiver = Receiver::spawn(vec![]).await;
    let failing = sb.payout("F-1", "300.00", "fail@bestin", Some(&receiver.url)).await;
    let waiting = sb.payout("W-1", "200.00", "pending@bestin", Some(&receiver.url)).await;
    let held = sb.payout("W-2", "100.00", "pending@bestin", Some(&receiver.url)).await;
    assert_eq!(sb.balance().await, ["100000.00", "99400.00", "600.00"].map(String::from));

    let received = receiver.wait_for(1).await;
    assert_eq!(received[0].0["data"]["trx_id"], failing["trx_id"]);
    assert_eq!(received[0].0["data"]["status"], "failed");
    assert_eq!(sb.balance().await, ["100000.00", "99700.00", "300.00"].map(String::from));

    // Still pending well after the settle delay.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let waiting_id = s(&waiting["trx_id"]);
    assert_eq!(sb.query("payout", &waiting_id).await["status"], "pending");
    let cancelled = sb.ok("cancel", json!({"trx_id": waiting_id, "trx_type": "payout"})).await;
    assert_eq!(cancelled["status"], "canceled");
    assert_eq!(sb.balance().await, ["100000.00", "99900.00", "100.00"].map(String::from));

    let held_id = s(&held["trx_id"]);
    let settle = format!("/__sandbox/bestin/payouts/{held_id}/settle");
    assert_eq!(sb.control_post(&settle, json!({"status": "maybe"})).await.0, StatusCode::BAD_REQUEST);
    let (status, inspected) = sb.control_post(&settle, json!({"status": "success"})).await;
    assert_eq!((status, s(&inspected["status"])), (StatusCode::OK, "success".into()));
    assert_eq!(sb.control_post(&settle, json!({"status": "failed"})).await.0, StatusCode::CONFLICT);
    assert_eq!(sb.control_post("/__sandbox/bestin/payouts/PO0000/settle", json!({})).await.0, StatusCode::NOT_FOUND);
    assert_eq!(sb.balance().await, ["99900.00", "99900.00", "0.00"].map(String::from));

    let received = receiver.wait_for(3).await;
    let statuses: Vec<(String, String)> = received
        .iter()
        .map(|(n, ok)| {
            assert!(ok);
            (s(&n["data"]["trx_id"]), s(&n["data"]["status"]))
        })
        .collect();
    assert!(statuses.contains(&(waiting_id, "canceled".into())), "{statuses:?}");
    assert!(statuses.contains(&(held_id, "success".into())), "{statuses:?}");
}

// -----------------------------------------------------------------------------------------------
// Delivery, replay, faults

#[tokio::test]
async fn a_notification_is_retried_with_the_same_id_and_bytes_until_the_answer_is_exactly_success() {
    let sb = TestBestin::spawn().await;
    let receiver = Receiver::spawn(vec![(500, "error"), (200, "SUCCESS"), (200, "success\n")]).await;
    let data = sb.payin("RETRY-1", "10.00", Some(&receiver.url)).await;
    let trx_id = s(&data["trx_id"]);
    sb.control_post(&format!("/__sandbox/bestin/payins/{trx_id}/approve"), json!({})).await;
    let received = receiver.wait_for(4).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(receiver.all().len(), 4, "no delivery after the acknowledged one");
    let first = &received[0].0;
    assert!(received.iter().all(|(n, ok)| *ok && n == first), "{received:?}");

    let attempts = sb.attempts(&trx_id).await;
    let summary: Vec<(u64, u64, String, bool)> = attempts
        .iter()
        .map(|a| {
            (
                a["attempt"].as_u64().expect("attempt"),
                a["status"].as_u64().expect("status"),
                s(&a["response"]),
                a["delivered"].as_bool().expect("delivered"),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (1, 500, "error".into(), false),
            (2, 200, "SUCCESS".into(), false),
            (3, 200, "success\n".into(), false),
            (4, 200, "success".into(), true),
        ]
    );
    assert!(attempts.iter().all(|a| a["notify_id"] == first["notify_id"] && a["body"] == attempts[0]["body"]));
    let (_, counters) = sb.control_get("/__sandbox/bestin/counters").await;
    assert_eq!((counters["notify"].clone(), counters["notify_delivered"].clone()), (json!(4), json!(1)));
}

#[tokio::test]
async fn the_sandbox_gives_up_after_the_configured_attempts_and_a_resend_replays_it() {
    let sb = TestBestin::spawn_with(BestinOptions { notify_max_attempts: 3, ..fast_options() }).await;
    let receiver = Receiver::spawn(vec![(503, "busy"); 3]).await;
    let data = sb.payin("GIVEUP-1", "10.00", Some(&receiver.url)).await;
    let trx_id = s(&data["trx_id"]);
    sb.control_post(&format!("/__sandbox/bestin/payins/{trx_id}/decline"), json!({})).await;
    receiver.wait_for(3).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(receiver.all().len(), 3);

    let notify_id = s(&receiver.all()[0].0["notify_id"]);
    let (status, attempt) =
        sb.control_post(&format!("/__sandbox/bestin/notifications/{notify_id}/resend"), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(attempt["attempt"], 4);
    assert_eq!(attempt["resend"], true);
    assert_eq!(attempt["delivered"], true);
    let all = receiver.wait_for(4).await;
    assert_eq!(all[3].0, all[0].0, "a replay is the very same notification");
    assert!(all[3].1);
    // A replay after delivery is still sent (for the receiver's dedupe tests).
    sb.control_post(&format!("/__sandbox/bestin/notifications/{notify_id}/resend"), json!({})).await;
    assert_eq!(receiver.wait_for(5).await[4].0, all[0].0);
    assert_eq!(
        sb.control_post("/__sandbox/bestin/notifications/Nnope/resend", json!({})).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn api_faults_answer_like_a_broken_provider_and_are_used_up_in_order() {
    let sb = TestBestin::spawn().await;
    sb.fault(json!({"endpoint": "payin", "response": "message", "status": 503, "message": "service busy"})).await;
    sb.fault(json!({"endpoint": "payin", "response": "http_status", "status": 502})).await;
    sb.fault(json!({"endpoint": "payin", "response": "garbage"})).await;
    let (status, answer) = sb.call("payin", payin_body("F-1", "1.00", None)).await;
    assert_eq!(
        (status, answer),
        (StatusCode::SERVICE_UNAVAILABLE, json!({"code": 503, "msg": "service busy", "data": null}))
    );
    let headers = sb.headers().await;
    for expected in [StatusCode::BAD_GATEWAY, StatusCode::OK] {
        let mut request =
            sb.http.post(format!("{}/payin", sb.sandbox.bestin_base_url())).json(&payin_body("F-2", "1.00", None));
        for (k, v) in &headers {
            request = request.header(*k, v);
        }
        let response = request.send().await.expect("sent");
        assert_eq!(response.status(), expected);
        let text = response.text().await.expect("text");
        assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");
    }
    // Faults with processing (the default) still created the orders behind the bad answers.
    for req_id in ["F-1", "F-2"] {
        sb.ok("query", json!({"req_id": req_id, "trx_type": "payin"})).await;
    }

    sb.fault(json!({"endpoint": "query", "response": "message", "status": 504, "process": false, "delay_ms": 50, "times": 2}))
        .await;
    let started = Instant::now();
    for _ in 0..2 {
        let (status, _) = sb.call("query", json!({"req_id": "F-1", "trx_type": "payin"})).await;
        assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    }
    assert!(started.elapsed() >= Duration::from_millis(100));
    sb.ok("query", json!({"req_id": "F-1", "trx_type": "payin"})).await;

    // Without processing nothing happens behind the fault.
    sb.fault(json!({"endpoint": "payout", "response": "message", "status": 500, "process": false})).await;
    let (status, _) = sb
        .call("payout", json!({"req_id": "X-1", "ccy": "INR", "amount": "5.00", "trx_method": "upi", "upi": "a.b@ybl"}))
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(sb.balance().await[1], "100000.00");
    assert_eq!(sb.call("query", json!({"req_id": "X-1", "trx_type": "payout"})).await.0, StatusCode::NOT_FOUND);

    let (_, counters) = sb.control_get("/__sandbox/bestin/counters").await;
    assert_eq!(counters["payin"], 3);
    assert_eq!(counters["payout"], 1);

    for bad in [
        json!({"endpoint": "payin", "response": "drop"}),
        json!({"endpoint": "notify", "response": "garbage"}),
        json!({"endpoint": "refund"}),
        json!({"endpoint": "payin", "status": 42}),
    ] {
        let (status, _) = sb.control_post("/__sandbox/bestin/faults", bad.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    }
    sb.fault(json!({"endpoint": "balance", "response": "garbage"})).await;
    let response = sb.http.delete(sb.url("/__sandbox/bestin/faults")).send().await.expect("sent");
    assert_eq!(response.status(), StatusCode::OK);
    sb.balance().await;
}

#[tokio::test]
async fn notify_faults_drop_delay_or_duplicate_deliveries() {
    let sb = TestBestin::spawn().await;
    let receiver = Receiver::spawn(vec![]).await;
    sb.fault(json!({"endpoint": "notify", "response": "drop", "times": 2})).await;
    sb.fault(json!({"endpoint": "notify", "delay_ms": 100})).await;
    sb.fault(json!({"endpoint": "notify", "response": "duplicate"})).await;

    let first = sb.payin("N-1", "1.00", Some(&receiver.url)).await;
    let first_id = s(&first["trx_id"]);
    sb.control_post(&format!("/__sandbox/bestin/payins/{first_id}/approve"), json!({})).await;
    receiver.wait_for(1).await;
    let attempts = sb.attempts(&first_id).await;
    let faults: Vec<Value> = attempts.iter().map(|a| a["fault"].clone()).collect();
    assert_eq!(faults, [json!("drop"), json!("drop"), json!("delay")]);
    assert_eq!(attempts[2]["attempt"], 3);
    assert_eq!(attempts[2]["delivered"], true);
    assert!(attempts[0]["status"].is_null());

    let second = sb.payin("N-2", "1.00", Some(&receiver.url)).await;
    let second_id = s(&second["trx_id"]);
    sb.control_post(&format!("/__sandbox/bestin/payins/{second_id}/approve"), json!({})).await;
    let received = receiver.wait_for(3).await;
    assert_eq!(received[1].0, received[2].0, "the duplicate is the same notification");
    assert_eq!(received[1].0["data"]["trx_id"], second_id.as_str());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(receiver.all().len(), 3);
}

#[tokio::test]
async fn with_a_confirm_delay_an_approved_payin_is_confirming_before_success() {
    let sb =
        TestBestin::spawn_with(BestinOptions { confirm_delay: Some(Duration::from_millis(400)), ..fast_options() })
            .await;
    let receiver = Receiver::spawn(vec![]).await;
    let data = sb.payin("C-1", "75.00", Some(&receiver.url)).await;
    let trx_id = s(&data["trx_id"]);
    sb.decide(&trx_id, "approve").await;
    assert_eq!(sb.query("payin", &trx_id).await["status"], "confirming");
    let (status, answer) = sb.call("cancel", json!({"trx_id": trx_id, "trx_type": "payin"})).await;
    assert_eq!((status, s(&answer["msg"])), (StatusCode::BAD_REQUEST, "order is confirming".into()));
    let received = receiver.wait_for(2).await;
    let statuses: Vec<Value> = received.iter().map(|(n, _)| n["data"]["status"].clone()).collect();
    assert_eq!(statuses, [json!("confirming"), json!("success")]);
    assert_ne!(received[0].0["notify_id"], received[1].0["notify_id"]);
    assert_eq!(sb.balance().await[0], "100075.00");
}

#[tokio::test]
async fn reset_restores_the_opening_balance_and_forgets_orders_counters_and_faults() {
    let sb = TestBestin::spawn().await;
    let data = sb.payin("RS-1", "1.00", None).await;
    sb.payout("RS-2", "10.00", "pending@bestin", None).await;
    sb.fault(json!({"endpoint": "balance", "response": "garbage"})).await;
    let (status, _) = sb.control_post("/__sandbox/reset", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sb.balance().await, ["100000.00", "100000.00", "0.00"].map(String::from));
    let (status, _) = sb.control_get(&format!("/__sandbox/bestin/payins/{}", s(&data["trx_id"]))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The req_id is free again.
    sb.payin("RS-1", "1.00", None).await;
    let (_, counters) = sb.control_get("/__sandbox/bestin/counters").await;
    assert_eq!((counters["payin"].clone(), counters["balance"].clone()), (json!(1), json!(1)));
    assert_eq!(BESTIN_TEST_PUBLIC_KEY_PEM, serde_json::from_str::<Value>(VECTORS).expect("v")["public_key_pem"]);
}
