//! Contract tests: the sandbox over real HTTP, seen the way a merchant backend and a customer's
//! browser see bKash.

use std::time::{Duration, Instant};

use deshpay_sandbox::{BkashCredentials, Sandbox, SandboxConfig};
use reqwest::{Client, Response, StatusCode, redirect::Policy};
use serde_json::{Value, json};

const WALLET: &str = "01770618575";
const CALLBACK: &str = "http://merchant.test/bkash/callback";

struct TestSandbox {
    sandbox: Sandbox,
    http: Client,
    creds: BkashCredentials,
}

struct Created {
    id: String,
    body: Value,
}

impl Created {
    fn field(&self, name: &str) -> String {
        self.body[name].as_str().unwrap_or_default().to_owned()
    }
}

impl TestSandbox {
    async fn spawn() -> Self {
        let sandbox = Sandbox::spawn(SandboxConfig::default()).await.expect("sandbox starts");
        let http = Client::builder().redirect(Policy::none()).build().expect("client");
        Self { sandbox, http, creds: BkashCredentials::public_sandbox() }
    }

    fn api(&self, path: &str) -> String {
        format!("{}/tokenized/checkout/{path}", self.sandbox.bkash_base_url())
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sandbox.url())
    }

    async fn grant_raw(&self, username: &str, app_secret: &str) -> Response {
        self.http
            .post(self.api("token/grant"))
            .header("username", username)
            .header("password", &self.creds.password)
            .json(&json!({ "app_key": self.creds.app_key, "app_secret": app_secret }))
            .send()
            .await
            .expect("grant sent")
    }

    async fn grant(&self) -> Value {
        let response = self.grant_raw(&self.creds.username, &self.creds.app_secret).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.expect("grant json")
    }

    async fn token(&self) -> String {
        let body = self.grant().await;
        assert_eq!(body["statusCode"], "0000", "{body}");
        body["id_token"].as_str().expect("id_token").to_owned()
    }

    async fn refresh(&self, refresh_token: &str) -> Value {
        self.http
            .post(self.api("token/refresh"))
            .header("username", &self.creds.username)
            .header("password", &self.creds.password)
            .json(&json!({
                "app_key": self.creds.app_key,
                "app_secret": self.creds.app_secret,
                "refresh_token": refresh_token,
            }))
            .send()
            .await
            .expect("refresh sent")
            .json()
            .await
            .expect("refresh json")
    }

    async fn send(&self, token: &str, url: String, body: Value) -> Response {
        self.http
            .post(url)
            .header("Authorization", token)
            .header("X-APP-Key", &self.creds.app_key)
            .json(&body)
            .send()
            .await
            .expect("request sent")
    }

    /// A v1.2.0-beta call: (HTTP status, JSON body).
    async fn call(&self, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
        let response = self.send(token, self.api(path), body).await;
        let status = response.status();
        (status, response.json().await.expect("json body"))
    }

    /// A v1.2.0-beta call that must reach bKash (HTTP 200); returns the body.
    async fn bk(&self, token: &str, path: &str, body: Value) -> Value {
        let (status, body) = self.call(token, path, body).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    async fn v2(&self, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
        let url = self.url(&format!("/v2/tokenized-checkout/{path}"));
        let response = self.send(token, url, body).await;
        let status = response.status();
        (status, response.json().await.expect("json body"))
    }

    async fn create(&self, token: &str, amount: &str) -> Created {
        self.create_with(token, amount, CALLBACK).await
    }

    async fn create_with(&self, token: &str, amount: &str, callback: &str) -> Created {
        let body = self.bk(token, "create", create_body(amount, callback, "INV-1")).await;
        assert_eq!(body["statusCode"], "0000", "{body}");
        let id = body["paymentID"].as_str().expect("paymentID").to_owned();
        Created { id, body }
    }

    async fn execute(&self, token: &str, payment_id: &str) -> Value {
        self.bk(token, "execute", json!({ "paymentID": payment_id })).await
    }

    async fn query(&self, token: &str, payment_id: &str) -> Value {
        self.bk(token, "payment/status", json!({ "paymentID": payment_id })).await
    }

    async fn approve(&self, payment_id: &str, wallet: &str) -> (StatusCode, Value) {
        self.control_post(&format!("/__sandbox/bkash/payments/{payment_id}/approve"), json!({ "wallet": wallet })).await
    }

    /// Create, approve and execute: a completed payment's (paymentID, trxID).
    async fn paid(&self, token: &str, amount: &str, wallet: &str) -> (String, String) {
        let created = self.create(token, amount).await;
        assert_eq!(self.approve(&created.id, wallet).await.0, StatusCode::OK);
        let executed = self.execute(token, &created.id).await;
        assert_eq!(executed["transactionStatus"], "Completed", "{executed}");
        (created.id, executed["trxID"].as_str().expect("trxID").to_owned())
    }

    async fn refund(&self, token: &str, body: Value) -> Value {
        self.bk(token, "payment/refund", body).await
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
        let (status, body) = self.control_post("/__sandbox/bkash/faults", fault).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    async fn counters(&self) -> Value {
        self.control_get("/__sandbox/bkash/counters").await.1
    }

    async fn payment_status(&self, payment_id: &str) -> Value {
        self.control_get(&format!("/__sandbox/bkash/payments/{payment_id}")).await.1
    }

    async fn get_page(&self, url: &str) -> (StatusCode, String) {
        let response = self.http.get(url).send().await.expect("page");
        let status = response.status();
        (status, response.text().await.expect("html"))
    }

    async fn post_form(&self, payment_id: &str, step: &str, fields: &[(&str, &str)]) -> Response {
        self.http
            .post(self.url(&format!("/redirect/tokenized/{payment_id}/{step}")))
            .form(fields)
            .send()
            .await
            .expect("form posted")
    }

    /// Posts a form that must render a page (not redirect); returns its HTML.
    async fn page_step(&self, payment_id: &str, step: &str, fields: &[(&str, &str)]) -> String {
        let response = self.post_form(payment_id, step, fields).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.text().await.expect("html")
    }

    /// Posts a form that must end the journey; returns the 303's Location.
    async fn redirect(&self, payment_id: &str, step: &str, fields: &[(&str, &str)]) -> String {
        let response = self.post_form(payment_id, step, fields).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        response.headers().get("location").and_then(|v| v.to_str().ok()).expect("location").to_owned()
    }
}

fn create_body(amount: &str, callback: &str, invoice: &str) -> Value {
    json!({
        "mode": "0011",
        "payerReference": " ",
        "callbackURL": callback,
        "amount": amount,
        "currency": "BDT",
        "intent": "sale",
        "merchantInvoiceNumber": invoice,
    })
}

fn is_upper_alnum(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

fn is_bkash_time(s: &str) -> bool {
    // 2019-09-03T22:55:37:813 GMT+0600
    s.len() == 32 && &s[10..11] == "T" && &s[19..20] == ":" && s.ends_with(" GMT+0600")
}

// -----------------------------------------------------------------------------------------------
// Tokens

#[tokio::test]
async fn grant_issues_a_jwt_looking_token_that_works_bare_but_not_with_a_bearer_prefix() {
    let sb = TestSandbox::spawn().await;
    let body = sb.grant().await;
    assert_eq!(body["statusCode"], "0000");
    assert_eq!(body["statusMessage"], "Successful");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert!(body["refresh_token"].as_str().is_some_and(|t| !t.is_empty()));
    let token = body["id_token"].as_str().expect("id_token");
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    assert!(
        parts
            .iter()
            .all(|p| { !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') })
    );

    let ok = sb.call(token, "create", create_body("10", CALLBACK, "A")).await;
    assert_eq!(ok.1["statusCode"], "0000");
    let bearer = sb.call(&format!("Bearer {token}"), "create", create_body("10", CALLBACK, "A")).await;
    assert_eq!(bearer, (StatusCode::UNAUTHORIZED, json!({"message": "Unauthorized"})));

    let wrong_key = sb
        .http
        .post(sb.api("payment/status"))
        .header("authorization", token)
        .header("x-app-key", "someoneelse")
        .json(&json!({"paymentID": "x"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(wrong_key.status(), StatusCode::UNAUTHORIZED);
    let no_headers =
        sb.http.post(sb.api("payment/status")).json(&json!({"paymentID": "x"})).send().await.expect("sent");
    assert_eq!(no_headers.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn grant_with_wrong_credentials_answers_with_bkash_status_codes() {
    let sb = TestSandbox::spawn().await;
    let response = sb.grant_raw("nobody", &sb.creds.app_secret).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body, json!({"statusCode": "9999", "statusMessage": "Username does not exist"}));
    let body: Value = sb.grant_raw(&sb.creds.username, "wrong-secret").await.json().await.expect("json");
    assert_eq!(body["statusCode"], "2001");
    // Failed grants do not use up the hourly allowance.
    sb.token().await;
    sb.token().await;
}

#[tokio::test]
async fn a_third_grant_within_an_hour_gets_429_and_grants_stay_blocked_for_an_hour() {
    let sb = TestSandbox::spawn().await;
    sb.token().await;
    sb.advance(600).await;
    sb.token().await;
    let third = sb.grant_raw(&sb.creds.username, &sb.creds.app_secret).await;
    assert_eq!(third.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(third.json::<Value>().await.expect("json"), json!({"message": "Too Many Requests"}));
    // The first grant has left the rolling hour, but the block runs an hour from the 429.
    sb.advance(3000).await;
    let still = sb.grant_raw(&sb.creds.username, &sb.creds.app_secret).await;
    assert_eq!(still.status(), StatusCode::TOO_MANY_REQUESTS);
    sb.advance(601).await;
    sb.token().await;

    let counters = sb.counters().await;
    assert_eq!(counters["grant"], 5);
    assert_eq!(counters["grant_rejected"], 2);
}

#[tokio::test]
async fn an_id_token_expires_after_3600_seconds_on_the_sandbox_clock() {
    let sb = TestSandbox::spawn().await;
    let token = sb.token().await;
    sb.advance(3599).await;
    let (status, body) = sb.call(&token, "payment/status", json!({"paymentID": "TR0011nope"})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["statusCode"], "2002");
    sb.advance(1).await;
    let expired = sb.call(&token, "payment/status", json!({"paymentID": "TR0011nope"})).await;
    assert_eq!(expired, (StatusCode::UNAUTHORIZED, json!({"message": "Unauthorized"})));
}

#[tokio::test]
async fn refresh_gives_a_new_id_token_with_the_same_refresh_token_until_28_days_pass() {
    let sb = TestSandbox::spawn().await;
    let granted = sb.grant().await;
    let old_token = granted["id_token"].as_str().expect("id_token").to_owned();
    let refresh_token = granted["refresh_token"].as_str().expect("refresh").to_owned();
    sb.advance(3600).await;
    assert_eq!(sb.call(&old_token, "payment/status", json!({"paymentID": "x"})).await.0, StatusCode::UNAUTHORIZED);

    let refreshed = sb.refresh(&refresh_token).await;
    assert_eq!(refreshed["statusCode"], "0000");
    assert_eq!(refreshed["refresh_token"], refresh_token);
    assert_eq!(refreshed["expires_in"], 3600);
    assert_eq!(refreshed["token_type"], "Bearer");
    let new_token = refreshed["id_token"].as_str().expect("id_token");
    assert_ne!(new_token, old_token);
    sb.create(new_token, "10").await;

    assert_eq!(sb.refresh("not-a-refresh-token").await["statusCode"], "9999");
    sb.advance(28 * 24 * 3600 - 3600 - 1).await;
    assert_eq!(sb.refresh(&refresh_token).await["statusCode"], "0000");
    sb.advance(1).await;
    let expired = sb.refresh(&refresh_token).await;
    assert_eq!(expired, json!({"statusCode": "9999", "statusMessage": "Invalid refresh token"}));
    assert_eq!(sb.counters().await["refresh"], 4);
}

// -----------------------------------------------------------------------------------------------
// Create

#[tokio::test]
async fn create_rejects_bad_input_with_bkash_status_codes() {
    let sb = TestSandbox::spawn().await;
    let token = sb.token().await;
    let long_invoice = "X".repeat(256);
    let cases: Vec<(&str, &str, Value, &str)> = vec![
        ("no amount", "amount", Value::Null, "2065"),
        ("no payerReference", "payerReference", Value::Null, "2065"),
        ("empty invoice", "merchantInvoiceNumber", json!(""), "2065"),
        ("letters", "amount", json!("abc"), "2006"),
        ("three decimals", "amount", json!("10.123"), "2006"),
        ("below one taka", "amount", json!("0.99"), "2006"),
        ("negative", "amount", json!("-5"), "2006"),
        ("dollars", "currency", json!("USD"), "2007"),
        ("authorization", "intent", json!("authorization"), "2008"),
        ("agreement mode", "mode", json!("0001"), "2063"),
        ("not a URL", "callbackURL", json!("not a url"), "2049"),
        ("ftp", "callbackURL", json!("ftp://merchant.test/cb"), "2049"),
        ("markup", "merchantInvoiceNumber", json!("<b>1</b>"), "2031"),
        ("ampersand", "merchantInvoiceNumber", json!("A&B"), "2031"),
        ("too long", "merchantInvoiceNumber", json!(long_invoice), "2031"),
    ];
    for (name, field, value, code) in cases {
        let mut body = create_body("100", CALLBACK, "INV-1");
        match value {
            Value::Null => {
                body.as_object_mut().expect("object").remove(field);
            }
            v => body[field] = v,
        }
        let answer = sb.bk(&token, "create", body).await;
        assert_eq!(answer["statusCode"], code, "{name}: {answer}");
        assert!(answer["statusMessage"].is_string(), "{name}");
    }
    for amount in ["1", "1.5", "250.75"] {
        let answer = sb.bk(&token, "create", create_body(amount, CALLBACK, "INV-1")).await;
        assert_eq!(answer["statusCode"], "0000", "{amount}");
    }
}

#[tokio::test]
async fn create_answers_with_bkash_fields_and_callbacks_that_respect_an_existing_query() {
    let sb = TestSandbox::spawn().await;
    let token = sb.token().await;
    let created = sb.create_with(&token, "250.50", "https://shop.test/cb?order=7").await;
    let id = &created.id;
    assert!(id.starts_with("TR0011") && id.len() == 21, "{id}");
    assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert_eq!(created.field("statusMessage"), "Successful");
    assert_eq!(created.field("amount"), "250.50");
    assert_eq!(created.field("currency"), "BDT");
    assert_eq!(created.field("intent"), "sale");
    assert_eq!(created.field("transactionStatus"), "Initiated");
    assert_eq!(created.field("merchantInvoiceNumber"), "INV-1");
    assert_eq!(created.field("callbackURL"), "https://shop.test/cb?order=7");
    assert!(is_bkash_time(&created.field("paymentCreateTime")));

    let bkash_url = created.field("bkashURL");
    let prefix = format!("{}/redirect/tokenized/?paymentID={id}&hash=", sb.sandbox.url());
    assert!(bkash_url.starts_with(&prefix), "{bkash_url}");
    assert!(bkash_url.ends_with("&mode=0011&apiVersion=v1.2.0-beta"));

    let success = created.field("successCallbackURL");
    let start = format!("https://shop.test/cb?order=7&paymentID={id}&status=success&signature=");
    let signature = success.strip_prefix(&start).expect("success URL shape");
    assert!(signature.len() == 10 && signature.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert_eq!(
        created.field("failureCallbackURL"),
        format!("https://shop.test/cb?order=7&paymentID={id}&status=failure&signature={signature}")
    );
    assert_eq!(
        created.field("cancelledCallbackURL"),
        format!("https://shop.test/cb?order=7&paymentID={id}&status=cancel&signature={signature}")
    );

    let plain = sb.create(&token, "10").await;
    assert!(plain.field("successCallbackURL").starts_with(&format!("{CALLBACK}?paymentID=")));
}

// -----------------------------------------------------------------------------------------------
// Hosted page

#[tokio::test]
async fn the_customer_journey_on_the_hosted_page_ends_at_the_success_callback_and_execute_completes_once() {
    let sb = TestSandbox::spawn().await;
    let token = sb.token().await;
    let created = sb.create(&token, "250").await;
    let id = created.id.as_str();

    let (status, html) = sb.get_page(&created.field("bkashURL")).await;
    assert_eq!(status, StatusCode::OK);
    for expected in [
        r#"<label for="wallet">bKash Account number</label>"#,
        r#"name="wallet""#,
        r#"pattern="^01\d{9}$""#,
        r#"maxlength="11""#,
        r#"inputmode="numeric""#,
        r#"value="confirm">Confirm</button>"#,
        r#"value="close" formnovalidate>Close</button>"#,
        "Invoice: INV-1",
        "৳ 250.00",
        "16247",
        "#E2136E",
    ] {
        assert!(html.contains(expected), "missing {expected}");
    }

    let html = sb.page_step(id, "wallet", &[("wallet", "0177"), ("action", "confirm")]).await;
    assert!(html.contains(r#"role="alert""#));
    let html = sb.page_step(id, "wallet", &[("wallet", "01711111111"), ("action", "confirm")]).await;
    assert!(html.contains("Not a bKash Account"));

    let html = sb.page_step(id, "wallet", &[("wallet", WALLET), ("action", "confirm")]).await;
    assert!(html.contains("Enter verification code sent to 017 ** *** 575"));
    assert!(html.contains(r#"<label for="otp">Verification code</label>"#));
    assert_eq!(sb.query(&token, id).await["customerMsisdn"], WALLET);

    let html = sb.page_step(id, "otp", &[("otp", "123456"), ("action", "confirm")]).await;
    assert!(html.contains(r#"<label for="pin">PIN</label>"#));
    assert!(html.contains(r#"type="password""#));

    let before = sb.query(&token, id).await;
    assert_eq!(before["transactionStatus"], "Initiated");
    assert_eq!(before["verificationStatus"], "Incomplete");
    assert_eq!(sb.execute(&token, id).await["statusCode"], "2056");

    let location = sb.redirect(id, "pin", &[("pin", "12121"), ("action", "confirm")]).await;
    assert_eq!(location, format!("{}&apiVersion=1.2.0-beta", created.field("successCallbackURL")));
    assert!(location.starts_with(&format!("{CALLBACK}?paymentID={id}&status=success&signature=")));
    let (_, html) = sb.get_page(&created.field("bkashURL")).await;
    assert!(html.contains("This payment has already been processed"));

    let executed = sb.execute(&token, id).await;
    assert_eq!(executed["statusCode"], "0000");
    assert_eq!(executed["statusMessage"], "Successful");
    assert_eq!(executed["transactionStatus"], "Completed");
    assert_eq!(executed["paymentID"], id);
    assert_eq!(executed["customerMsisdn"], WALLET);
    assert_eq!(executed["payerReference"], " ");
    assert_eq!(executed["amount"], "250");
    assert_eq!(executed["currency"], "BDT");
    assert_eq!(executed["intent"], "sale");
    assert_eq!(executed["merchantInvoiceNumber"], "INV-1");
    assert!(is_bkash_time(executed["paymentExecuteTime"].as_str().expect("time")));
    let trx_id = executed["trxID"].as_str().expect("trxID");
    assert!(is_upper_alnum(trx_id, 10), "{trx_id}");

    let again = sb.execute(&token, id).await;
    assert_eq!(again, json!({"statusCode": "2062", "statusMessage": "The payment has already been completed"}));

    let queried = sb.query(&token, id).await;
    assert_eq!(queried["statusCode"], "0000");
    assert_eq!(queried["transactionStatus"], "Completed");
    assert_eq!(queried["verificationStatus"], "Complete");
    assert_eq!(queried["merchantInvoice"], "INV-1");
    assert!(queried.get("merchantInvoiceNumber").is_none());
    assert_eq!(queried["trxID"], trx_id);
    assert_eq!(queried["mode"], "0011");
    assert!(is_bkash_time(queried["paymentExecuteTime"].as_str().expect("time")));

    let inspected = sb.payment_status(id).await;
    assert_eq!(inspected["status"], "completed");
    assert_eq!(inspected["execute_calls"], 3);
    assert_eq!(inspected["trxID"], trx_id);
    assert_eq!(inspected["wallet"], WALLET);
}

#[tokio::test]
async fn three_wrong_otps_send_the_customer_to_the_failure_callback() {
    let sb = TestSandbox::spawn().await;
    let token = sb.token().await;
    let created = sb.create(&token, "100").await;
    let id = created.id.as_str();
    sb.page_step(id, "wallet", &[("wallet", WALLET), ("action", "confirm")]).await;
    for _ in 0..2 {
        let html = sb.page_step(id, "otp", &[("otp", "111111"), ("action", "confirm")]).await;
        assert!(html.contains("Wrong verification code") && html.contains(r#"role="alert""#));
    }
    let location = sb.redirect(id, "otp", &[("otp", "111111"), ("action", "confirm")]).await;
    assert_eq!(location, format!("{}&apiVersion=1.2.0-beta", created.field("failureCallbackURL")));
    assert!(location.contains("&status=failure&"));
    assert_eq!(sb.query(&token, id).await["transactionStatus"], "Failed");
    assert_eq!(sb.execute(&token, id).await["statusCode"], "2056");
    assert_eq!(sb.payment_status(id).await["status"], "failed");
}

#[tokio::test]
async fn three_wrong_pins_send_the_customer_to_the_failure_callback() {
    let sb = TestSandbox::spawn().await;
    let token = sb.token().await;
    let created = sb.create(&token, "100").await;
    let id = created.id.as_str();
    sb.page_step(id, "wallet", &[("wallet", "01619777283"), ("action", "confirm")]).await;
    sb.page_step(id, "otp", &[("otp", "123456"), ("action", "confirm")]).await;
    for _ in 0..2 {
        let html = sb.page_step(id, "pin", &[("pin", "99999"), ("action", "confirm")]).await;
        assert!(html.contains("Wrong PIN"));
    }
    let location = sb.redirect(id, "pin", &[("pin", "99999"), ("action", "confirm")]).await;
    assert!(location.contains("&status=failure&") && location.ends_with("&apiVersion=1.2.0-beta"));
}

#[tokio::test]
async fn close_then_no_returns_to_the_step_and_close_then_yes_goes_to_the_cancel_callback() {
    let sb = TestSandbox::spawn().await;
    let token = sb.token().await;
    let created = sb.create(&token, "100").await;
    let id = created.id.as_str();
    sb.page_step(id, "wallet", &[("wallet", WALLET), ("action", "confirm")]).await;
    let html = sb.page_step(id, "otp", &[("otp", ""), ("action", "close")]).await;
    assert!(html.contains("Are you sure you want to cancel the payment?"));
    assert!(html.contains(r#"value="yes">Yes</button>"#) && html.contains(r#"value="no">No</button>"#));
    let html = sb.page_step(id, "close", &[("confirm", "no")]).await;
    assert!(html.contains(r#"<label for="otp">Verification code</label>"#));

    sb.page_step(id, "otp", &[("action", "close")]).await;
    let location = sb.redirect(id, "close", &[("confirm", "yes")]).await;
    assert_eq!(location, format!("{}&apiVersion=1.2.0-beta", created.field("cancelledCallbackURL")));
    assert!(location.contains("&status=cancel&"));
    assert_eq!(sb.payment_status(id).await["status"], "cancelled");
    assert_eq!(sb.query(&token, id).await["transactionStatus"], "Failed");
    let (_, html) = sb.get_page(&created.field("bkashURL")).await;
    assert!(html.contains("This payment has already been processed"));
}

#[tokio::test]
async fn the_hosted_page_refuses_a_wrong_hash_and_an_unknown_payment() {
    let sb = TestSandbox::spawn().await;
    let token = sb.token().await;
    let created = sb.create(&token, "100").await;
    let url = format!(
        "{}/redirect/tokenized/?paymentID={}&hash=wrong&mode=0011&apiVersion=v1.2.0-beta",
        sb.sandbox.url(),
        created.id
    );
    let (status, html) = sb.get_page(&url).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(html.contains("Invalid payment request"));
    let response = sb.post_form("TR0011unknown", "wallet", &[("wallet", WALLET)]).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

// -----------------------------------------------------------------------------------------------
// Execute outcomes

#[tokio::test]
async fn execute_before_the_customer_approves_is_an_invalid_payment_state() {
    let sb = TestSandbox::spawn().await;
    let token = sb.token().await;
    let created = sb.create(&token, "100").await;
    assert_eq!(
        sb.execute(&token, &created.id).await,
        json!({"statusCode": "2056", "statusMessage": "Invalid Payment State"})
    );
    assert_eq!(sb.execute(&token, "TR0011doesnotexist1").await["statusCode"], "2002");
    assert_eq!(sb.query(&token, "TR0011doesnotexist1").await["statusCode"], "2002");
}

#[tokio::test]
async fn failure_wallets_pass_the_page_and_fail_at_execute() {
    let sb = TestSandbox::spawn().await;
    let token = sb.token().await;
    for (wallet, code) in [("01823074817", "2023"), ("01823074818", "2037")] {
        let created = sb.create(&token, "100").await;
        assert_eq!(sb.approve(&created.id, wallet).await.0, StatusCode::OK);
        let executed = sb.execute(&token, &created.id).await;
        assert_eq!(executed["statusCode"], code, "{executed}");
        let queried = sb.query(&token, &created.id).await;
        assert_eq!(queried["transactionStatus"], "Failed");
        assert!(queried.get("trxID").is_none());
        assert_eq!(sb.execute(&token, &created.id).await["statusCode"], "2056");
    }
    let created = sb.create(&token, "100").await;
    assert_eq!(sb.approve(&created.id, "01823074817").await.0, StatusCode::OK);
    assert_eq!(sb.execute(&token, &created.id).await["statusMessage"], "Insufficient Balance");
}

#[tokio::test]
async fn the_same_wallet_and_amount_within_five_minutes_is_a_duplicate() {
    let sb = TestSandbox::spawn().await;
    let token = sb.token().await;
    sb.paid(&token, "100", WALLET).await;

    let second = sb.create(&token, "100.00").await;
    sb.approve(&second.id, WALLET).await;
    assert_eq!(
        sb.execute(&token, &second.id).await,
        json!({"statusCode": "2029", "statusMessage": "Duplicate for all transactions"})
    );
    assert_eq!(sb.query(&token, &second.id).await["transactionStatus"], "Failed");
    // Another amount or another wallet is not a duplicate.
    sb.paid(&token, "101", WALLET).await;
    sb.paid(&token, "100", "01929918378").await;

    sb.advance(5 * 60).await;
    sb.paid(&token, "100", WALLET).await;
}

// -----------------------------------------------------------------------------------------------
// Search and refunds

#[tokio::test]
async fn search_finds_a_completed_transaction_on_both_paths() {
    let sb = TestSandbox::spawn().await;
    let token = sb.token().await;
    let (_, trx_id) = sb.paid(&token, "150.25", WALLET).await;
    for path in ["general/searchTransaction", "general/search/searchTransaction"] {
        let found = sb.bk(&token, path, json!({"trxID": trx_id})).await;
        assert_eq!(found["statusCode"], "0000", "{path}");
        assert_eq!(found["statusMessage"], "Successful");
        assert_eq!(found["trxID"], trx_id);
        assert_eq!(found["transactionStatus"], "Completed");
        assert_eq!(found["transactionType"], "bKash Tokenized Checkout via API");
        assert_eq!(found["customerMsisdn"], WALLET);
        assert_eq!(found["amount"], "150.25");
        assert_eq!(found["currency"], "BDT");
        assert_eq!(found["organizationShortCode"], "50022");
        assert!(is_bkash_time(found["initiationTime"].as_str().expect("time")));
        assert!(is_bkash_time(found["completedTime"].as_str().expect("time")));
    }
    let missing = sb.bk(&token, "general/searchTransaction", json!({"trxID": "NOPE000000"})).await;
    assert_eq!(missing, json!({"statusCode": "2033", "statusMessage": "Transaction not found"}));
    assert_eq!(sb.counters().await["search"], 3);
}

#[tokio::test]
async fn v1_refunds_allow_partials_up_to_the_original_and_report_the_latest() {
    let sb = TestSandbox::spawn().await;
    let token = sb.token().await;
    let (pid, trx) = sb.paid(&token, "100", WALLET).await;
    let refund =
        |amount: &str| json!({"paymentID": pid, "trxID": trx, "amount": amount, "sku": "SKU-1", "reason": "damaged"});
    let status_body = json!({"paymentID": pid, "trxID": trx});

    assert_eq!(sb.refund(&token, status_body.clone()).await["statusCode"], "2074");

    let first = sb.refund(&token, refund("30")).await;
    assert_eq!(first["statusCode"], "0000", "{first}");
    assert_eq!(first["statusMessage"], "Successful");
    assert_eq!(first["originalTrxID"], trx);
    assert_eq!(first["transactionStatus"], "Completed");
    assert_eq!(first["amount"], "30");
    assert_eq!(first["currency"], "BDT");
    assert_eq!(first["charge"], "0.00");
    assert!(is_bkash_time(first["completedTime"].as_str().expect("time")));
    let first_refund = first["refundTrxID"].as_str().expect("refundTrxID");
    assert!(is_upper_alnum(first_refund, 10));

    let long = "x".repeat(256);
    let mut bad = vec![
        ("over the original", refund("70.01"), "2026"),
        ("zero", refund("0"), "2072"),
        ("three decimals", refund("1.234"), "2072"),
        ("wrong trxID", json!({"paymentID": pid, "trxID": "AAAAAAAAAA", "amount": "1", "sku": "s"}), "2077"),
        ("unknown payment", json!({"paymentID": "TR0011x", "trxID": trx, "amount": "1", "sku": "s"}), "2002"),
        ("no sku", json!({"paymentID": pid, "trxID": trx, "amount": "1"}), "2073"),
    ];
    let mut long_sku = refund("1");
    long_sku["sku"] = json!(long);
    bad.push(("long sku", long_sku, "2075"));
    let mut long_reason = refund("1");
    long_reason["reason"] = json!(long);
    bad.push(("long reason", long_reason, "2076"));
    for (name, body, code) in bad {
        let answer = sb.refund(&token, body).await;
        assert_eq!(answer["statusCode"], code, "{name}: {answer}");
    }

    let latest = sb.refund(&token, status_body.clone()).await;
    assert_eq!(latest["refundTrxID"], first_refund);
    assert_eq!(latest["amount"], "30");
    assert_eq!(latest["originalTrxID"], trx);

    let rest = sb.refund(&token, refund("70.00")).await;
    assert_eq!(rest["statusCode"], "0000");
    assert_eq!(sb.refund(&token, refund("0.01")).await["statusCode"], "2026");
    let latest = sb.refund(&token, status_body).await;
    assert_eq!(latest["refundTrxID"], rest["refundTrxID"]);

    let counters = sb.counters().await;
    assert_eq!(counters["refund"], 11);
    assert_eq!(counters["refund_status"], 3);
}

#[tokio::test]
async fn v2_refunds_share_the_ledger_with_v1_and_answer_in_the_v2_shape() {
    let sb = TestSandbox::spawn().await;
    let token = sb.token().await;
    let (pid, trx) = sb.paid(&token, "100", WALLET).await;
    assert_eq!(
        sb.refund(&token, json!({"paymentID": pid, "trxID": trx, "amount": "40", "sku": "a"})).await["statusCode"],
        "0000"
    );
    let v2 = |amount: &str| json!({"paymentId": pid, "trxId": trx, "refundAmount": amount, "sku": "SKU-2", "reason": "late"});
    let (status, over) = sb.v2(&token, "refund/payment/transaction", v2("70")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(over["internalCode"], "2026");
    assert_eq!(over["externalCode"], "2026");
    assert!(over["errorMessageEn"].is_string() && over["errorMessageBn"].is_string());

    let (status, done) = sb.v2(&token, "refund/payment/transaction", v2("60")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(done.get("statusCode").is_none());
    assert_eq!(done["originalTrxId"], trx);
    assert_eq!(done["refundTransactionStatus"], "Completed");
    assert_eq!(done["originalTrxAmount"], "100");
    assert_eq!(done["refundAmount"], "60");
    assert_eq!(done["currency"], "BDT");
    assert_eq!(done["sku"], "SKU-2");
    assert_eq!(done["reason"], "late");
    let refund_trx = done["refundTrxId"].as_str().expect("refundTrxId");
    assert!(is_upper_alnum(refund_trx, 10));

    let (status, listed) = sb.v2(&token, "refund/payment/status", json!({"paymentId": pid, "trxId": trx})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["originalTrxId"], trx);
    assert_eq!(listed["originalTrxAmount"], "100");
    let refunds = listed["refundTransactions"].as_array().expect("array");
    assert_eq!(refunds.len(), 2);
    assert_eq!(refunds[1]["refundTrxId"], refund_trx);
    assert_eq!(refunds[1]["refundAmount"], "60");
    let latest = sb.refund(&token, json!({"paymentID": pid, "trxID": trx})).await;
    assert_eq!(latest["refundTrxID"], refund_trx);

    let (status, unknown) = sb.v2(&token, "refund/payment/status", json!({"paymentId": "TR0011x", "trxId": trx})).await;
    assert_eq!((status, unknown["externalCode"].clone()), (StatusCode::BAD_REQUEST, json!("2002")));
}

#[tokio::test]
async fn refunds_have_a_time_window_and_at_most_ten_per_transaction() {
    let sb = TestSandbox::spawn().await;
    let token = sb.token().await;
    let (pid, trx) = sb.paid(&token, "100", WALLET).await;
    let v1 = json!({"paymentID": pid, "trxID": trx, "amount": "1", "sku": "s"});
    for _ in 0..10 {
        assert_eq!(sb.refund(&token, v1.clone()).await["statusCode"], "0000");
    }
    assert_eq!(sb.refund(&token, v1).await["statusCode"], "2074");

    let (pid, trx) = sb.paid(&token, "200", WALLET).await;
    sb.advance(15 * 24 * 3600 + 1).await;
    let token = sb.token().await;
    let v1 = json!({"paymentID": pid, "trxID": trx, "amount": "1", "sku": "s"});
    assert_eq!(sb.refund(&token, v1).await["statusCode"], "2071");
    // The v2 API allows 60 days.
    let (status, _) = sb
        .v2(
            &token,
            "refund/payment/transaction",
            json!({"paymentId": pid, "trxId": trx, "refundAmount": "1", "sku": "s", "reason": "r"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

// -----------------------------------------------------------------------------------------------
// Faults

#[tokio::test]
async fn a_delayed_answer_does_not_hold_up_other_calls() {
    let sb = TestSandbox::spawn().await;
    let token = sb.token().await;
    let created = sb.create(&token, "100").await;
    sb.approve(&created.id, WALLET).await;
    sb.fault(json!({"endpoint": "execute", "delay_ms": 400})).await;

    let started = Instant::now();
    let slow = sb.send(&token, sb.api("execute"), json!({"paymentID": created.id}));
    let quick = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let begun = Instant::now();
        let queried = sb.query(&token, &created.id).await;
        (queried, begun.elapsed())
    };
    let (slow, (queried, quick_took)) = tokio::join!(slow, quick);
    assert!(quick_took < Duration::from_millis(300), "{quick_took:?}");
    // The operation happens before the delay: Query already sees it.
    assert_eq!(queried["transactionStatus"], "Completed");
    assert!(started.elapsed() >= Duration::from_millis(400));
    let body: Value = slow.json().await.expect("json");
    assert_eq!(body["transactionStatus"], "Completed");
}

#[tokio::test]
async fn an_execute_the_client_gave_up_on_still_completes_for_query() {
    let sb = TestSandbox::spawn().await;
    let token = sb.token().await;
    let created = sb.create(&token, "100").await;
    sb.approve(&created.id, WALLET).await;
    sb.fault(json!({"endpoint": "execute", "delay_ms": 500, "process": true})).await;
    let timed_out = sb
        .http
        .post(sb.api("execute"))
        .header("Authorization", &token)
        .header("X-APP-Key", &sb.creds.app_key)
        .json(&json!({"paymentID": created.id}))
        .timeout(Duration::from_millis(100))
        .send()
        .await;
    assert!(timed_out.is_err_and(|e| e.is_timeout()));
    let queried = sb.query(&token, &created.id).await;
    assert_eq!(queried["transactionStatus"], "Completed");
    assert!(queried["trxID"].is_string());
}

#[tokio::test]
async fn message_and_http_status_faults_answer_like_the_gateway() {
    let sb = TestSandbox::spawn().await;
    let token = sb.token().await;
    sb.fault(json!({"endpoint": "create", "response": "message", "status": 503, "message": "Service Unavailable"}))
        .await;
    sb.fault(json!({"endpoint": "create", "response": "http_status", "status": 502})).await;
    let (status, body) = sb.call(&token, "create", create_body("100", CALLBACK, "F-1")).await;
    assert_eq!((status, body), (StatusCode::SERVICE_UNAVAILABLE, json!({"message": "Service Unavailable"})));
    let response = sb.send(&token, sb.api("create"), create_body("100", CALLBACK, "F-2")).await;
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert!(response.json::<Value>().await.is_err());
    // Faults are used up: the next call is normal.
    sb.create(&token, "100").await;
    assert_eq!(sb.counters().await["create"], 3);

    sb.fault(json!({"endpoint": "grant", "response": "message"})).await;
    let response = sb.grant_raw(&sb.creds.username, &sb.creds.app_secret).await;
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(response.json::<Value>().await.expect("json"), json!({"message": "Internal server error"}));
}

#[tokio::test]
async fn a_garbage_execute_answer_still_completes_the_payment() {
    let sb = TestSandbox::spawn().await;
    let token = sb.token().await;
    let created = sb.create(&token, "100").await;
    sb.approve(&created.id, WALLET).await;
    sb.fault(json!({"endpoint": "execute", "response": "garbage"})).await;
    let response = sb.send(&token, sb.api("execute"), json!({"paymentID": created.id})).await;
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.expect("text");
    assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");
    assert_eq!(sb.query(&token, &created.id).await["transactionStatus"], "Completed");
    assert_eq!(sb.execute(&token, &created.id).await["statusCode"], "2062");
}

#[tokio::test]
async fn a_fault_without_processing_leaves_the_payment_untouched() {
    let sb = TestSandbox::spawn().await;
    let token = sb.token().await;
    let created = sb.create(&token, "100").await;
    sb.approve(&created.id, WALLET).await;
    sb.fault(json!({"endpoint": "execute", "response": "message", "status": 504, "message": "Endpoint request timed out", "process": false}))
        .await;
    let (status, body) = sb.call(&token, "execute", json!({"paymentID": created.id})).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(body["message"], "Endpoint request timed out");
    assert_eq!(sb.query(&token, &created.id).await["transactionStatus"], "Initiated");
    assert_eq!(sb.payment_status(&created.id).await["status"], "approved");

    assert_eq!(sb.execute(&token, &created.id).await["transactionStatus"], "Completed");
    let inspected = sb.payment_status(&created.id).await;
    assert_eq!(inspected["execute_calls"], 2);
    assert_eq!(sb.counters().await["execute"], 2);
}

#[tokio::test]
async fn faults_queue_first_in_first_out_and_can_be_cleared() {
    let sb = TestSandbox::spawn().await;
    let token = sb.token().await;
    let created = sb.create(&token, "100").await;
    sb.fault(json!({"endpoint": "query", "response": "message", "status": 500, "times": 2})).await;
    sb.fault(json!({"endpoint": "query", "response": "http_status", "status": 503})).await;
    let mut seen = Vec::new();
    for _ in 0..4 {
        let response = sb.send(&token, sb.api("payment/status"), json!({"paymentID": created.id})).await;
        seen.push(response.status().as_u16());
    }
    assert_eq!(seen, [500, 500, 503, 200]);

    sb.fault(json!({"endpoint": "query", "response": "garbage"})).await;
    let response = sb.http.delete(sb.url("/__sandbox/bkash/faults")).send().await.expect("sent");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(sb.query(&token, &created.id).await["statusCode"], "0000");

    let (status, _) = sb.control_post("/__sandbox/bkash/faults", json!({"endpoint": "nonsense"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

// -----------------------------------------------------------------------------------------------
// Control API and gateway behaviour

#[tokio::test]
async fn the_approve_control_endpoint_plays_the_customer_through_the_page() {
    let sb = TestSandbox::spawn().await;
    let token = sb.token().await;
    let created = sb.create(&token, "100").await;
    let (status, body) = sb.approve(&created.id, "01929918378").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["redirect_url"], format!("{}&apiVersion=1.2.0-beta", created.field("successCallbackURL")));
    let inspected = sb.payment_status(&created.id).await;
    assert_eq!(inspected["status"], "approved");
    assert_eq!(inspected["wallet"], "01929918378");
    assert_eq!(inspected["amount"], "100");
    assert_eq!(inspected["execute_calls"], 0);
    assert!(inspected["trxID"].is_null());
    assert_eq!(sb.query(&token, &created.id).await["verificationStatus"], "Complete");

    assert_eq!(sb.approve(&created.id, WALLET).await.0, StatusCode::CONFLICT);
    assert_eq!(sb.approve("TR0011unknown", WALLET).await.0, StatusCode::NOT_FOUND);
    let other = sb.create(&token, "100").await;
    assert_eq!(sb.approve(&other.id, "01711111111").await.0, StatusCode::BAD_REQUEST);
    let (status, _) = sb.control_get("/__sandbox/bkash/payments/TR0011unknown").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn unknown_api_paths_and_methods_get_missing_authentication_token() {
    let sb = TestSandbox::spawn().await;
    let token = sb.token().await;
    let expected = (StatusCode::FORBIDDEN, json!({"message": "Missing Authentication Token"}));
    assert_eq!(sb.call(&token, "payment/query", json!({})).await, expected);
    let response = sb.send(&token, sb.url("/v2/tokenized-checkout/payment/create"), json!({})).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = sb.http.get(sb.api("create")).send().await.expect("sent");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn reset_forgets_payments_tokens_counters_faults_and_the_clock() {
    let sb = TestSandbox::spawn().await;
    let token = sb.token().await;
    let created = sb.create(&token, "100").await;
    sb.advance(1000).await;
    sb.fault(json!({"endpoint": "query", "response": "garbage"})).await;
    let (status, _) = sb.control_post("/__sandbox/reset", json!({})).await;
    assert_eq!(status, StatusCode::OK);

    let counters = sb.counters().await;
    assert!(counters.as_object().expect("object").values().all(|v| v == 0), "{counters}");
    let (_, clock) = sb.control_get("/__sandbox/clock").await;
    assert_eq!(clock["offset_ms"], 0);
    assert_eq!(sb.control_get(&format!("/__sandbox/bkash/payments/{}", created.id)).await.0, StatusCode::NOT_FOUND);
    assert_eq!(sb.call(&token, "payment/status", json!({"paymentID": created.id})).await.0, StatusCode::UNAUTHORIZED);
    let fresh = sb.token().await;
    assert_eq!(sb.query(&fresh, &created.id).await["statusCode"], "2002");
}
