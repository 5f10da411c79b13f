//! End-to-end harness: starts the sandbox, the backend (SQLite) and the demo shop in-process on port 0, starts
//! Debian's chromedriver + headless Chromium, and gives tests a customer's moves: open the shop, click buttons
//! in the widget's shadow root by their accessible names, fill bKash's hosted page, read outcomes, take
//! screenshots (saved under `artifacts/screenshots/`) and run axe-core.
//!
//! Needs the built widget in `pkg/` (`cargo xtask build`), `/usr/bin/chromedriver` and `/usr/bin/chromium`
//! (`apt-get install -y chromium chromium-driver`), and axe-core from npm in `target/tools/npm`
//! (`cargo xtask test` installs it). Run with `cargo xtask test` or `cargo test -p deshpay-e2e`.

use anyhow::{Context, Result, bail};
use deshpay_sandbox::{BestinOptions, BkashCredentials, Sandbox, SandboxConfig};
use deshpay_server::Application;
use deshpay_server::configuration::{
    BestinSettings, BkashSettings, DatabaseSettings, Environment, LimitSettings, MerchantSettings, ReconcilerSettings,
    RefundApi, RetentionSettings, ServerSettings, Settings, WebhookSettings,
};
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The demo API key used by the stack.
pub const API_KEY: &str = "sk_e2e_0123456789";

/// The secret of the backend's webhooks to the shop.
pub const WEBHOOK_SECRET: &str = "whsec_e2e_0123456789abcdef";
/// A sandbox wallet that pays.
pub const WALLET: &str = "01770618575";

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ sits in the workspace").to_path_buf()
}

/// Sandbox + backend + shop, all on 127.0.0.1.
#[derive(Debug)]
pub struct Stack {
    /// The bKash sandbox.
    pub sandbox: Sandbox,
    /// Backend URL.
    pub backend: String,
    /// Shop URL.
    pub shop: String,
    _db: tempfile::TempDir,
}

impl Stack {
    /// Starts everything.
    ///
    /// # Errors
    /// When a part cannot start or the widget is not built.
    pub async fn start() -> Result<Stack> {
        let pkg = root().join("pkg");
        if !pkg.join("deshpay_widget_bg.wasm").exists() {
            bail!("the widget is not built: run `cargo xtask build` first (pkg/deshpay_widget_bg.wasm is missing)");
        }
        // Tests move the sandbox clock to expire payins; the backend signs with the system clock, so Bestin's
        // `x-timestamp` check must use the system clock too, or every later backend call would be refused.
        let bestin_options = BestinOptions { timestamp_uses_sandbox_clock: false, ..BestinOptions::default() };
        let sandbox = Sandbox::spawn(SandboxConfig { bestin_options, ..SandboxConfig::default() }).await?;
        // The shop's origin must be known before the backend starts (CORS), so reserve its port first.
        let shop_port = free_port()?;
        let shop_origin = format!("http://127.0.0.1:{shop_port}");
        let db = tempfile::tempdir()?;
        let creds = BkashCredentials::public_sandbox();
        let bestin = deshpay_sandbox::BestinCredentials::sandbox_default();
        let settings = Settings {
            server: ServerSettings {
                environment: Environment::Sandbox,
                admin_listen: None,
                listen: "127.0.0.1:0".into(),
                public_url: None,
                allowed_origins: vec![shop_origin.clone()],
                widget_dir: Some(pkg.clone()),
            },
            database: DatabaseSettings {
                url: format!("sqlite://{}", db.path().join("e2e.db").display()),
                max_connections: 8,
            },
            limits: LimitSettings::default(),
            retention: RetentionSettings::default(),
            merchant: MerchantSettings {
                api_key: API_KEY.into(),
                api_key_next: None,
                name: "Deshi Bazaar".into(),
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
                timeout_ms: 10_000,
                refresh_margin_secs: 300,
                refresh_token_lifetime_secs: 28 * 24 * 3600,
                ipn_topic_arn: Some(deshpay_sandbox::BKASH_IPN_TOPIC_ARN.to_owned()),
                // The sandbox's own host plays sns.<region>.amazonaws.com.
                ipn_cert_hosts: vec![format!("127.0.0.1:{}", sandbox.port())],
            },
            bestin: Some(BestinSettings {
                base_url: sandbox.bestin_base_url(),
                backup_base_url: None,
                app_id: bestin.app_id,
                secret: bestin.secret.into(),
                merchant_id: bestin.mid,
                public_key_pem: Some(deshpay_sandbox::BESTIN_TEST_PUBLIC_KEY_PEM.to_owned()),
                timeout_ms: 10_000,
                poll_after_secs: 5,
                payin_ttl_secs: 900,
            }),
            reconciler: ReconcilerSettings { interval_secs: 5, stale_after_secs: 15 },
            webhook: Some(WebhookSettings {
                url: format!("{shop_origin}/webhooks/deshpay"),
                secret: WEBHOOK_SECRET.into(),
                secret_next: None,
                retry_ms: 500,
                max_attempts: 10,
                timeout_ms: 5_000,
            }),
            payments: Default::default(),
        };
        let app = Application::build(settings).await?;
        let backend = app.url();
        tokio::spawn(app.run_until_stopped());
        let shop = deshpay_shop::spawn(deshpay_shop::ShopConfig {
            listen: ([127, 0, 0, 1], shop_port).into(),
            backend_url: backend.clone(),
            public_backend_url: None,
            api_key: API_KEY.into(),
            www_dir: root().join("www"),
            pkg_dir: pkg,
            webhook_secret: Some(WEBHOOK_SECRET.into()),
        })
        .await?;
        Ok(Stack { sandbox, backend, shop: shop.url(), _db: db })
    }

    /// Waits (at most 10 s) until the shop's server received a verified webhook of `kind` for `session`.
    ///
    /// # Errors
    /// HTTP failures, or no such webhook in time.
    pub async fn wait_for_webhook(&self, kind: &str, session: &str) -> Result<()> {
        for _ in 0..100 {
            let seen: Value = reqwest::get(format!("{}/webhooks/deshpay", self.shop)).await?.json().await?;
            let found =
                seen.as_array().is_some_and(|a| a.iter().any(|e| e["type"] == kind && e["session_id"] == session));
            if found {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("the shop received no {kind} webhook for {session}")
    }

    /// A sandbox control call.
    ///
    /// # Errors
    /// HTTP failures.
    pub async fn sandbox_get(&self, path: &str) -> Result<Value> {
        Ok(reqwest::get(format!("{}{path}", self.sandbox.url())).await?.json().await?)
    }

    /// A sandbox control call with a JSON body (e.g. `/__sandbox/clock/advance`).
    ///
    /// # Errors
    /// HTTP failures and error statuses.
    pub async fn sandbox_post(&self, path: &str, body: Value) -> Result<Value> {
        let response = reqwest::Client::new().post(format!("{}{path}", self.sandbox.url())).json(&body).send().await?;
        let status = response.status();
        let value: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("POST {path}: {status} {value}");
        }
        Ok(value)
    }

    /// `POST /v1/checkout/{id}/upi` as the widget calls it: while a payin is pending, the backend returns that
    /// same payin (links, QR text), which is how a test learns what the widget shows.
    ///
    /// # Errors
    /// HTTP failures and error statuses.
    pub async fn start_upi(&self, session: &str) -> Result<Value> {
        let response =
            reqwest::Client::new().post(format!("{}/v1/checkout/{session}/upi", self.backend)).send().await?;
        let status = response.status();
        let value: Value = response.json().await?;
        if !status.is_success() {
            bail!("POST /v1/checkout/{session}/upi: {status} {value}");
        }
        Ok(value)
    }

    /// The sandbox page that plays the customer's UPI app for a deep link.
    ///
    /// # Errors
    /// When the sandbox URL does not parse.
    pub fn upi_approval_url(&self, link: &str) -> Result<String> {
        let base = format!("{}/upi/approve", self.sandbox.url());
        Ok(reqwest::Url::parse_with_params(&base, &[("link", link)])?.to_string())
    }

    /// The merchant's view of a session.
    ///
    /// # Errors
    /// HTTP failures.
    pub async fn session(&self, id: &str) -> Result<Value> {
        Ok(reqwest::Client::new()
            .get(format!("{}/v1/sessions/{id}", self.backend))
            .bearer_auth(API_KEY)
            .send()
            .await?
            .json()
            .await?)
    }
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A headless Chromium driven through chromedriver; both end when this is dropped.
#[derive(Debug)]
pub struct Browser {
    /// The WebDriver client.
    pub client: Client,
    /// chromedriver's URL (for Chrome DevTools commands through `goog/cdp/execute`).
    pub driver_url: String,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// How the browser presents itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    /// A desktop window.
    Desktop,
    /// A phone (mobile emulation: touch, small screen, mobile user agent).
    Phone,
}

impl Browser {
    /// Starts chromedriver and a fresh headless Chromium profile.
    ///
    /// # Errors
    /// When chromedriver or Chromium is missing or does not start.
    pub async fn start(device: Device) -> Result<Browser> {
        Self::launch(device, None).await
    }

    /// Starts a phone (Pixel 7's screen, touch) whose browser says it is `user_agent`, e.g. an app's in-app
    /// browser (Facebook's, Instagram's, WhatsApp's): what a headless Chromium can show of them.
    ///
    /// # Errors
    /// When chromedriver or Chromium is missing or does not start.
    pub async fn start_as(user_agent: &str) -> Result<Browser> {
        Self::launch(Device::Phone, Some(user_agent)).await
    }

    async fn launch(device: Device, user_agent: Option<&str>) -> Result<Browser> {
        let chromedriver = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
        let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        if !PathBuf::from(&chromedriver).exists() || !PathBuf::from(&chromium).exists() {
            bail!("Chromium is missing: run `apt-get install -y chromium chromium-driver`");
        }
        let port = free_port()?;
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting chromedriver")?;
        let profile = tempfile::tempdir()?;
        let mut options = json!({
            "binary": chromium,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1280,900",
                format!("--user-data-dir={}", profile.path().display()),
            ],
        });
        match (device, user_agent) {
            (Device::Phone, Some(ua)) => {
                options["mobileEmulation"] = json!({
                    "deviceMetrics": {"width": 412, "height": 915, "pixelRatio": 2.625, "touch": true, "mobile": true},
                    "userAgent": ua,
                });
            }
            (Device::Phone, None) => options["mobileEmulation"] = json!({"deviceName": "Pixel 7"}),
            (Device::Desktop, _) => {}
        }
        let mut caps = serde_json::Map::new();
        caps.insert("goog:chromeOptions".into(), options);
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        let client = loop {
            match ClientBuilder::new(connector.clone()).capabilities(caps.clone()).connect(&url).await {
                Ok(c) => break c,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => bail!("could not start Chromium through chromedriver: {e}"),
            }
        };
        Ok(Browser { client, driver_url: url, driver, _profile: profile })
    }

    /// Sends a Chrome DevTools Protocol command (e.g. `Emulation.setCPUThrottlingRate`).
    ///
    /// # Errors
    /// WebDriver failures.
    pub async fn cdp(&self, cmd: &str, params: Value) -> Result<Value> {
        let session = self.client.session_id().await?.context("no WebDriver session")?;
        let r = reqwest::Client::new()
            .post(format!("{}/session/{session}/goog/cdp/execute", self.driver_url))
            .json(&json!({"cmd": cmd, "params": params}))
            .send()
            .await?;
        Ok(r.json().await?)
    }

    /// Opens a URL.
    ///
    /// # Errors
    /// WebDriver failures.
    pub async fn goto(&self, url: &str) -> Result<()> {
        self.client.goto(url).await?;
        Ok(())
    }

    /// The widget's host element.
    async fn host(&self) -> Result<Element> {
        Ok(self.client.wait().at_most(Duration::from_secs(20)).for_element(Locator::Css("[data-deshpay-host]")).await?)
    }

    /// The widget's text as a customer reads it (shadow root included).
    ///
    /// # Errors
    /// WebDriver failures.
    pub async fn widget_text(&self) -> Result<String> {
        let v = self
            .client
            .execute(
                "const h = document.querySelector('[data-deshpay-host]'); \
                 if (!h) return ''; return (h.shadowRoot ? h.shadowRoot.textContent : h.textContent) || '';",
                vec![],
            )
            .await?;
        Ok(v.as_str().unwrap_or_default().to_owned())
    }

    /// Waits until the widget shows `text`.
    ///
    /// # Errors
    /// After `timeout` with the text it showed instead.
    pub async fn wait_for_text(&self, text: &str, timeout: Duration) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let now = self.widget_text().await?;
            if now.contains(text) {
                return Ok(now);
            }
            if Instant::now() > deadline {
                bail!("the widget never showed {text:?}; it shows {now:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Finds an element in the widget's shadow root by CSS selector.
    ///
    /// # Errors
    /// When it is not there.
    pub async fn in_widget(&self, css: &str) -> Result<Element> {
        let root = self.host().await?.shadow_root().await?;
        Ok(root.find(Locator::Css(css)).await?)
    }

    /// Clicks the widget's button whose accessible text is `name` (a real WebDriver click).
    ///
    /// # Errors
    /// When no such button appears within 20 s.
    pub async fn click_widget_button(&self, name: &str) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let root = self.host().await?.shadow_root().await?;
            for button in root.find_all(Locator::Css("button")).await? {
                let text = button.text().await.unwrap_or_default();
                let label = button.attr("aria-label").await.ok().flatten().unwrap_or_default();
                if text.trim() == name || label == name {
                    button.click().await?;
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!("no button {name:?} in the widget; it shows {:?}", self.widget_text().await?);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The links (`<a>`) in the widget: accessible text and `href`, in order, visible or not.
    ///
    /// # Errors
    /// WebDriver failures.
    pub async fn widget_links(&self) -> Result<Vec<(String, String)>> {
        let v = self
            .client
            .execute(
                "const h = document.querySelector('[data-deshpay-host]'); \
                 return Array.from(h.shadowRoot.querySelectorAll('a')) \
                   .map(a => [a.textContent.trim(), a.getAttribute('href') || '']);",
                vec![],
            )
            .await?;
        Ok(v.as_array()
            .map(|a| {
                a.iter()
                    .map(|p| (p[0].as_str().unwrap_or_default().into(), p[1].as_str().unwrap_or_default().into()))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Fills the input labelled `label` on an ordinary page (bKash's hosted page).
    ///
    /// # Errors
    /// When the label or its input is missing.
    pub async fn fill_labelled(&self, label: &str, value: &str) -> Result<()> {
        let label_el = self
            .client
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::XPath(&format!("//label[normalize-space(.)='{label}']")))
            .await?;
        let id = label_el.attr("for").await?.context("label without for=")?;
        let input = self.client.find(Locator::Id(&id)).await?;
        input.clear().await?;
        input.send_keys(value).await?;
        Ok(())
    }

    /// Clicks the page's button with this text (bKash's hosted page).
    ///
    /// # Errors
    /// When there is no such button.
    pub async fn click_page_button(&self, name: &str) -> Result<()> {
        let b = self
            .client
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::XPath(&format!("//button[normalize-space(.)='{name}']")))
            .await?;
        b.click().await?;
        // The hosted page's buttons submit forms: wait until the old page is gone, so the next step never
        // types into an element that is about to go stale.
        let deadline = Instant::now() + Duration::from_secs(10);
        while b.is_displayed().await.is_ok() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        Ok(())
    }

    /// Waits until the browser is on a URL starting with `prefix`.
    ///
    /// # Errors
    /// After 20 s.
    pub async fn wait_for_url(&self, prefix: &str) -> Result<String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let url = self.client.current_url().await?.to_string();
            if url.starts_with(prefix) {
                return Ok(url);
            }
            if Instant::now() > deadline {
                bail!("the browser stayed on {url}, expected {prefix}...");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Buys a product in the shop with a theme and locale; waits for the widget to be ready.
    ///
    /// # Errors
    /// WebDriver failures.
    pub async fn buy(&self, stack: &Stack, product: &str, theme: &str, locale: &str) -> Result<String> {
        self.goto(&stack.shop).await?;
        let form = self.client.find(Locator::Css(&format!("form[action='/buy/{product}']"))).await?;
        form.find(Locator::Css(&format!("select[name=theme] option[value='{theme}']"))).await?.click().await?;
        form.find(Locator::Css(&format!("select[name=locale] option[value='{locale}']"))).await?.click().await?;
        form.find(Locator::Css("button[type=submit]")).await?.click().await?;
        let url = self.wait_for_url(&format!("{}/checkout/", stack.shop)).await?;
        let session = url
            .split("/checkout/")
            .nth(1)
            .and_then(|s| s.split('?').next())
            .context("session id in the checkout URL")?
            .to_owned();
        self.host().await?;
        Ok(session)
    }

    /// On bKash's hosted page: wallet, OTP, PIN, each confirmed.
    ///
    /// # Errors
    /// WebDriver failures.
    pub async fn pay_on_bkash_page(&self, wallet: &str, otp: &str, pin: &str) -> Result<()> {
        self.fill_labelled("bKash Account number", wallet).await?;
        self.click_page_button("Confirm").await?;
        self.fill_labelled("Verification code", otp).await?;
        self.click_page_button("Confirm").await?;
        self.fill_labelled("PIN", pin).await?;
        self.click_page_button("Confirm").await?;
        Ok(())
    }

    /// Saves a PNG screenshot under `artifacts/screenshots/NAME.png` and returns its path.
    ///
    /// # Errors
    /// WebDriver or file failures.
    pub async fn screenshot(&self, name: &str) -> Result<PathBuf> {
        let dir = root().join("artifacts").join("screenshots");
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, self.client.screenshot().await?)?;
        Ok(path)
    }

    /// Runs axe-core (WCAG 2.x A/AA rules) on the page, shadow roots included; returns the ids of serious and
    /// critical violations.
    ///
    /// # Errors
    /// When axe-core is not installed or fails.
    pub async fn axe_serious_violations(&self) -> Result<Vec<String>> {
        let axe = root().join("target/tools/npm/node_modules/axe-core/axe.min.js");
        let source = std::fs::read_to_string(&axe).with_context(|| {
            format!("axe-core missing at {}: run `cargo xtask test` (it installs it)", axe.display())
        })?;
        self.client.execute(&source, vec![]).await?;
        let result = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1]; \
                 axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa']}}) \
                   .then(r => done(r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical') \
                   .map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', ')))) \
                   .catch(e => done(['axe failed: ' + e]));",
                vec![],
            )
            .await?;
        Ok(result
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
            .unwrap_or_default())
    }
}
