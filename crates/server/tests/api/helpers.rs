//! `spawn_app()` and the customer/merchant moves the tests are written in.

use deshpay_sandbox::{Sandbox, SandboxConfig};
use deshpay_server::Application;
use deshpay_server::clock::Clock;
use deshpay_server::configuration::Settings;
use deshpay_server::state::AppState;
pub use deshpay_testkit::{
    API_KEY, BKASH_TIMEOUT_MS, PgDatabase, SandboxControl, eventually, rand_suffix, sandbox_settings, test_database,
};
use serde_json::{Value, json};

pub const WALLET: &str = "01770618575";
pub const OTP: &str = "123456";
pub const PIN: &str = "12121";
/// How long a test waits for background work (notifications, webhooks, a racing instance) with [`eventually`].
pub const WAIT: std::time::Duration = std::time::Duration::from_secs(10);

pub struct TestApp {
    pub url: String,
    pub http: reqwest::Client,
    pub sandbox: Sandbox,
    /// The sandbox's control endpoints.
    pub control: SandboxControl,
    pub clock: Clock,
    pub state: AppState,
    pub db_url: String,
    pub _dir: tempfile::TempDir,
    pub _pg: Option<PgDatabase>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_on(Sandbox::spawn(SandboxConfig::default()).await.expect("sandbox"), configure).await
}

/// A backend with a fresh database in front of `sandbox`.
pub async fn spawn_app_on(sandbox: Sandbox, configure: impl FnOnce(&mut Settings)) -> TestApp {
    deshpay_testkit::init_tracing();
    let dir = tempfile::tempdir().expect("tempdir");
    let (db_url, pg) = test_database(dir.path()).await;
    let mut settings = sandbox_settings(&sandbox, &db_url);
    configure(&mut settings);
    let clock = Clock::system();
    let (url, state) = start_backend(settings, clock.clone()).await;
    let control = SandboxControl::new(sandbox.url());
    TestApp { url, http: client(), sandbox, control, clock, state, db_url, _dir: dir, _pg: pg }
}

/// Builds and serves a backend; returns its URL and state.
pub async fn start_backend(settings: Settings, clock: Clock) -> (String, AppState) {
    let app = Application::build_with_clock(settings, clock).await.expect("backend");
    let url = app.url();
    let state = app.state();
    tokio::spawn(app.run_until_stopped());
    (url, state)
}

/// A client that does not follow redirects, so tests see every hop.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client")
}

pub fn query_param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url).ok()?.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

impl TestApp {
    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.http.post(format!("{}{path}", self.url)).bearer_auth(API_KEY).json(body).send().await.expect("request")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(format!("{}{path}", self.url)).bearer_auth(API_KEY).send().await.expect("request")
    }

    /// Creates a BDT session and returns its id.
    pub async fn create_session(&self, amount: &str) -> String {
        let invoice = format!("ORD-{}", rand_suffix());
        let r = self
            .post_json(
                "/v1/sessions",
                &json!({"amount": amount, "currency": "BDT", "invoice": invoice,
                        "return_url": "http://shop.test/return?order=1", "methods": ["bkash"]}),
            )
            .await;
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
        r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
    }

    pub async fn session(&self, id: &str) -> Value {
        let r = self.get(&format!("/v1/sessions/{id}")).await;
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    pub async fn checkout(&self, id: &str) -> Value {
        let r = self.http.get(format!("{}/v1/checkout/{id}", self.url)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    /// Starts a bKash attempt (as the widget does) and returns the bkashURL.
    pub async fn start_bkash(&self, id: &str) -> String {
        let r = self.http.post(format!("{}/v1/checkout/{id}/bkash", self.url)).send().await.unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
        r.json::<Value>().await.unwrap()["redirect_url"].as_str().unwrap().to_owned()
    }

    /// Plays the customer on bKash's hosted page by form posts; returns where bKash redirects the browser.
    pub async fn pay_on_page(&self, bkash_url: &str, wallet: &str, otp: &str, pin: &str) -> String {
        let page = self.http.get(bkash_url).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let html = page.text().await.unwrap();
        assert!(html.contains("bKash Account number"), "{html}");
        let payment_id = query_param(bkash_url, "paymentID").expect("paymentID in bkashURL");
        let base = format!("{}/redirect/tokenized/{payment_id}", self.sandbox.url());
        let r = self.form(&format!("{base}/wallet"), &[("wallet", wallet), ("action", "confirm")]).await;
        assert_eq!(r.status(), 200, "wallet step");
        let r = self.form(&format!("{base}/otp"), &[("otp", otp), ("action", "confirm")]).await;
        if r.status() == 303 {
            return location(&r);
        }
        let r = self.form(&format!("{base}/pin"), &[("pin", pin), ("action", "confirm")]).await;
        assert_eq!(r.status(), 303, "pin step ends with a redirect");
        location(&r)
    }

    pub async fn form(&self, url: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        self.http.post(url).form(fields).send().await.unwrap()
    }

    /// Follows bKash's redirect to our callback; returns where we send the browser (the shop's return URL).
    pub async fn follow_callback(&self, callback: &str) -> String {
        assert!(callback.starts_with(&self.url), "callback {callback} goes to the backend");
        let r = self.http.get(callback).send().await.unwrap();
        assert_eq!(r.status(), 303, "{}", r.text().await.unwrap_or_default());
        location(&r)
    }

    /// Session -> attempt -> hosted page -> callback. Returns (session id, paymentID, return location).
    pub async fn pay(&self, amount: &str, wallet: &str) -> (String, String, String) {
        let id = self.create_session(amount).await;
        let bkash_url = self.start_bkash(&id).await;
        let payment_id = query_param(&bkash_url, "paymentID").unwrap();
        let callback = self.pay_on_page(&bkash_url, wallet, OTP, PIN).await;
        let back = self.follow_callback(&callback).await;
        (id, payment_id, back)
    }

    pub async fn counters(&self) -> Value {
        self.control.bkash_counters().await
    }

    pub async fn sandbox_payment(&self, payment_id: &str) -> Value {
        self.control.bkash_payment(payment_id).await
    }

    pub async fn fault(&self, fault: Value) {
        self.control.bkash_fault(&fault).await;
    }

    /// Moves both clocks (ours and the sandbox's) forward.
    pub async fn advance(&self, secs: i64) {
        self.clock.advance_secs(secs);
        self.control.advance_clock(secs).await;
    }
}

/// Webhooks to a port nothing listens on: the outbox rows are written (and can be read) all the same.
pub fn outbox_only(settings: &mut Settings) {
    settings.webhook = Some(deshpay_server::configuration::WebhookSettings {
        url: "http://127.0.0.1:9/hook".into(),
        secret: "whsec-test-0123456789abcdef".into(),
        secret_next: None,
        retry_ms: 3_600_000,
        max_attempts: 1,
        timeout_ms: 200,
    });
}

impl TestApp {
    /// How many webhooks of `event_type` are in the outbox.
    pub async fn outbox_count(&self, event_type: &str) -> usize {
        self.state.store.webhooks().await.unwrap().into_iter().filter(|w| w.1 == event_type).count()
    }

    /// The customer approves on bKash's page (the sandbox's shortcut) with `wallet`; returns the callback URL.
    pub async fn approve(&self, bkash_url: &str, wallet: &str) -> String {
        let payment_id = query_param(bkash_url, "paymentID").unwrap();
        self.control.approve_bkash(&payment_id, wallet).await
    }

    /// A widget API POST without a body.
    pub async fn post_empty(&self, path: &str) -> reqwest::Response {
        self.http.post(format!("{}{path}", self.url)).send().await.unwrap()
    }
}

pub fn location(r: &reqwest::Response) -> String {
    r.headers().get("location").expect("Location header").to_str().unwrap().to_owned()
}
