//! `spawn_app()` and the customer/merchant moves the tests are written in.

use deshpay_sandbox::{BkashCredentials, Sandbox, SandboxConfig};
use deshpay_server::Application;
use deshpay_server::clock::Clock;
use deshpay_server::configuration::{
    BestinSettings, BkashSettings, DatabaseSettings, Environment, LimitSettings, MerchantSettings, ReconcilerSettings,
    RefundApi, RetentionSettings, ServerSettings, Settings,
};
use deshpay_server::state::AppState;
use serde_json::{Value, json};

pub const API_KEY: &str = "test-api-key-0123456789";
pub const WALLET: &str = "01770618575";
pub const OTP: &str = "123456";
pub const PIN: &str = "12121";
/// Client timeout for bKash calls in tests; sandbox delays beyond it play "no response".
pub const BKASH_TIMEOUT_MS: u64 = 1500;

pub struct TestApp {
    pub url: String,
    pub http: reqwest::Client,
    pub sandbox: Sandbox,
    pub clock: Clock,
    pub state: AppState,
    pub db_url: String,
    pub _dir: tempfile::TempDir,
    pub _pg: Option<PgDatabase>,
}

pub fn settings_for(sandbox: &Sandbox, db_url: &str) -> Settings {
    let creds = BkashCredentials::public_sandbox();
    let bestin = deshpay_sandbox::BestinCredentials::sandbox_default();
    Settings {
        server: ServerSettings {
            environment: Environment::Sandbox,
            admin_listen: None,
            listen: "127.0.0.1:0".into(),
            public_url: None,
            allowed_origins: vec!["http://shop.test".into()],
        },
        database: DatabaseSettings { url: db_url.into(), max_connections: 8 },
        limits: LimitSettings::default(),
        retention: RetentionSettings::default(),
        merchant: MerchantSettings {
            api_key: API_KEY.into(),
            api_key_next: None,
            name: "Test Shop".into(),
            session_ttl_secs: 1800,
        },
        bkash: BkashSettings {
            base_url: sandbox.bkash_base_url(),
            backup_base_url: None,
            username: creds.username,
            password: creds.password.into(),
            app_key: creds.app_key,
            app_secret: creds.app_secret.into(),
            refund_api: RefundApi::V1,
            timeout_ms: BKASH_TIMEOUT_MS,
            refresh_margin_secs: 300,
            refresh_token_lifetime_secs: 28 * 24 * 3600,
        },
        bestin: Some(BestinSettings {
            base_url: sandbox.bestin_base_url(),
            backup_base_url: None,
            app_id: bestin.app_id,
            secret: bestin.secret.into(),
            merchant_id: bestin.mid,
            public_key_pem: Some(deshpay_sandbox::BESTIN_TEST_PUBLIC_KEY_PEM.to_owned()),
            timeout_ms: BKASH_TIMEOUT_MS,
            poll_after_secs: 1,
            payin_ttl_secs: 900,
        }),
        reconciler: ReconcilerSettings { interval_secs: 0, stale_after_secs: 2 },
        webhook: None,
        payments: Default::default(),
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// A fresh database for one test: a SQLite file in `dir`, or, when `DESHPAY_TEST_POSTGRES` holds a server URL
/// (e.g. `postgres://postgres@127.0.0.1:5432/test`), a new PostgreSQL database on that server, dropped when the
/// returned guard drops.
pub async fn test_database(dir: &std::path::Path) -> (String, Option<PgDatabase>) {
    match std::env::var("DESHPAY_TEST_POSTGRES") {
        Ok(server) if !server.is_empty() => {
            let db = PgDatabase::create(&server).await;
            (db.url.clone(), Some(db))
        }
        _ => (format!("sqlite://{}", dir.join("deshpay.db").display()), None),
    }
}

/// A throwaway PostgreSQL database.
pub struct PgDatabase {
    pub url: String,
    server: String,
    name: String,
}

impl PgDatabase {
    pub async fn create(server: &str) -> PgDatabase {
        use sqlx::Connection;
        let name = format!("deshpay_t_{}", rand_suffix().replace('-', "_"));
        let mut conn = sqlx::PgConnection::connect(server).await.expect("PostgreSQL at DESHPAY_TEST_POSTGRES");
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.expect("create database");
        let base = server.rsplit_once('/').map_or(server, |(b, _)| b);
        PgDatabase { url: format!("{base}/{name}"), server: server.to_owned(), name }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        // Drop runs outside async: a short-lived runtime on its own thread removes the database.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async {
                use sqlx::Connection;
                if let Ok(mut conn) = sqlx::PgConnection::connect(&server).await {
                    let _ =
                        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut conn).await;
                }
            });
        })
        .join();
    }
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    let sandbox = Sandbox::spawn(SandboxConfig::default()).await.expect("sandbox");
    let dir = tempfile::tempdir().expect("tempdir");
    let (db_url, pg) = test_database(dir.path()).await;
    let mut settings = settings_for(&sandbox, &db_url);
    configure(&mut settings);
    let clock = Clock::system();
    let (url, state) = start_backend(settings, clock.clone()).await;
    TestApp { url, http: client(), sandbox, clock, state, db_url, _dir: dir, _pg: pg }
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

    pub async fn sandbox_get(&self, path: &str) -> Value {
        let r = self.http.get(format!("{}{path}", self.sandbox.url())).send().await.unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().await.unwrap()
    }

    pub async fn counters(&self) -> Value {
        self.sandbox_get("/__sandbox/bkash/counters").await
    }

    pub async fn sandbox_payment(&self, payment_id: &str) -> Value {
        self.sandbox_get(&format!("/__sandbox/bkash/payments/{payment_id}")).await
    }

    pub async fn fault(&self, fault: Value) {
        let r =
            self.http.post(format!("{}/__sandbox/bkash/faults", self.sandbox.url())).json(&fault).send().await.unwrap();
        assert!(r.status().is_success(), "fault {fault}: {}", r.status());
    }

    /// Moves both clocks (ours and the sandbox's) forward.
    pub async fn advance(&self, secs: i64) {
        self.clock.advance_secs(secs);
        let r = self
            .http
            .post(format!("{}/__sandbox/clock/advance", self.sandbox.url()))
            .json(&json!({"seconds": secs}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
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
        let r = self
            .http
            .post(format!("{}/__sandbox/bkash/payments/{payment_id}/approve", self.sandbox.url()))
            .json(&json!({"wallet": wallet}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
        r.json::<Value>().await.unwrap()["redirect_url"].as_str().unwrap().to_owned()
    }

    /// A widget API POST without a body.
    pub async fn post_empty(&self, path: &str) -> reqwest::Response {
        self.http.post(format!("{}{path}", self.url)).send().await.unwrap()
    }
}

pub fn location(r: &reqwest::Response) -> String {
    r.headers().get("location").expect("Location header").to_str().unwrap().to_owned()
}

pub fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{nanos}-{}", N.fetch_add(1, Ordering::SeqCst))
}
