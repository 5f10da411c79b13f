//! # deshpay-sandbox
//!
//! A faithful simulator of bKash's tokenized checkout API (v1.2.0-beta, mode `0011`) over real
//! HTTP, with the hosted payment page customers see at `bkashURL`, bKash's sandbox wallets,
//! OTP and PINs, its grant-token limit, failure wallets, duplicate detection, refunds (v1.2.0-beta
//! and v2), and fault injection for tests. The facts it follows are in `shared/spec/bkash.md`.
//!
//! Run it on its own:
//!
//! ```text
//! cargo run -p deshpay-sandbox -- --listen 127.0.0.1:8082 [--public-url https://sandbox.example]
//! # prints `sandbox: http://127.0.0.1:8082`; logs go to stderr (RUST_LOG, default info)
//! ```
//!
//! or spawn it inside a test:
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use deshpay_sandbox::{Sandbox, SandboxConfig};
//! let sandbox = Sandbox::spawn(SandboxConfig::default()).await?;
//! let base = sandbox.bkash_base_url(); // http://127.0.0.1:PORT/v1.2.0-beta
//! # Ok(()) }
//! ```
//!
//! Surface:
//! - bKash API: `{url}/v1.2.0-beta/tokenized/checkout/{token/grant, token/refresh, create, execute,
//!   payment/status, general/searchTransaction, general/search/searchTransaction, payment/refund}`
//!   and `{url}/v2/tokenized-checkout/refund/payment/{transaction,status}`.
//! - Hosted page: `{url}/redirect/tokenized/?paymentID=..&hash=..` (wallet, OTP `123456`,
//!   PIN `12121`/`21212`/`13131`, Close then Yes).
//! - Control API for tests under `{url}/__sandbox/`: counters, payment inspection, approve,
//!   clock, faults, reset.
//!
//! State lives in memory; every expiry and limit runs on a sandbox clock (system time plus an
//! offset that tests move with `POST /__sandbox/clock/advance`).
//!
//! Where public sources do not say what bKash does, the sandbox chooses (status messages are
//! bKash's own wording from developer.bka.sh/docs/error-codes):
//! - Grant: unknown username 9999 "Username does not exist"; wrong password 9999 "Invalid username
//!   or password"; wrong app_key or app_secret 2001 "Invalid App Key". Only successful grants count
//!   toward the 2-per-hour limit; refresh is not limited.
//! - Unknown or expired refresh_token: 9999 "Invalid refresh token".
//! - A body that is not a JSON object: 2025 "Invalid request body"; missing fields 2065
//!   ("Mendatory field missing", bKash's spelling).
//! - Query `transactionStatus`: "Initiated" until a successful Execute, then "Completed"; "Failed"
//!   after a failed Execute, three wrong OTPs/PINs, or Close then Yes on the page.
//!   `paymentExecuteTime` and `trxID` only once completed.
//! - A paymentID expires 24 h after Create: its page says so and Execute gives 2056.
//! - Search of an unknown trxID: 2033 "Transaction not found"; status stays "Completed" after refunds.
//! - Refunds (one ledger per transaction for v1 and v2): wrong or uncompleted trxID 2077, bad amount
//!   2072, total above the original 2026, missing sku 2073, sku/reason over 255 chars 2075/2076,
//!   an eleventh refund 2074, older than 15 days (v1) or 60 days (v2) 2071. v1 refund status with no
//!   refund yet: 2074. v2 errors carry the same code in `internalCode` and `externalCode`.
//! - Faults with `process: true` run the operation *before* the delay, so Query already sees an
//!   Execute whose answer the client timed out on. `response: "normal"` always processes.
//!   Fault endpoints are `grant`, `refresh`, `create`, `execute`, `query`, `search`, `refund` (v1
//!   refund and v2 transaction) and `refund_status` (v1 without amount and v2 status).

use std::fmt;
use std::net::SocketAddr;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;

mod api;
mod bestin;
mod bestin_control;
mod bestin_page;
mod control;
mod notify;
mod page;
mod state;

pub use bestin::{BestinCredentials, BestinOptions};
pub use state::AppState;

/// The public key (SubjectPublicKeyInfo PEM) that verifies the sandbox's Bestin Pay
/// notifications. It is the **test** key pair of `shared/vectors/bestinpay-notify-vectors.json`,
/// also at `crates/sandbox/keys/bestin-test-public.pem`; production uses the key printed in the
/// provider's document instead.
pub const BESTIN_TEST_PUBLIC_KEY_PEM: &str = notify::TEST_PUBLIC_KEY_PEM;

/// Merchant credentials the sandbox accepts on grant and refresh.
#[derive(Clone, PartialEq, Eq)]
pub struct BkashCredentials {
    pub username: String,
    pub password: String,
    pub app_key: String,
    pub app_secret: String,
}

impl BkashCredentials {
    /// The public sandbox credentials bKash publishes in its Node sample
    /// (bKash-HSL/Checkout-URL-Nodejs, `Node JS (Backend)/config/bkashConfig.json`), so code written
    /// against bKash's real sandbox works against this one unchanged but for the host.
    pub fn public_sandbox() -> Self {
        Self {
            username: "sandboxTokenizedUser02".to_owned(),
            password: "sandboxTokenizedUser02@12345".to_owned(),
            app_key: "4f6o0cjiki2rfm34kfdadl1eqq".to_owned(),
            app_secret: "2is7hdktrekvrbljjh44ll3d9l1dtjo4pasmjvs5vl5qr3fug4b".to_owned(),
        }
    }
}

impl fmt::Debug for BkashCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BkashCredentials")
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .field("app_key", &self.app_key)
            .field("app_secret", &"[redacted]")
            .finish()
    }
}

/// How to run a [`Sandbox`].
#[derive(Clone, Debug)]
pub struct SandboxConfig {
    /// Where to listen; port 0 picks a free port.
    pub listen: SocketAddr,
    /// The base URL browsers use to reach the sandbox (goes into `bkashURL`);
    /// `None` means `http://<bound address>`.
    pub public_url: Option<String>,
    pub bkash: BkashCredentials,
    /// The Bestin Pay merchant account (`x-app-id`, `x-secret`, `mid`).
    pub bestin: BestinCredentials,
    /// How the Bestin Pay simulator behaves (expiry, payout delay, balance, notification retries).
    pub bestin_options: BestinOptions,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            public_url: None,
            bkash: BkashCredentials::public_sandbox(),
            bestin: BestinCredentials::sandbox_default(),
            bestin_options: BestinOptions::default(),
        }
    }
}

/// A running sandbox. It serves on the current tokio runtime until that runtime shuts down
/// (dropping this handle does not stop it).
#[derive(Debug)]
pub struct Sandbox {
    addr: SocketAddr,
    url: String,
    state: AppState,
}

impl Sandbox {
    /// Binds `config.listen` and serves in a background tokio task.
    ///
    /// # Errors
    /// When the address cannot be bound.
    pub async fn spawn(config: SandboxConfig) -> anyhow::Result<Sandbox> {
        let listener = tokio::net::TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let url = config
            .public_url
            .map(|u| u.trim_end_matches('/').to_owned())
            .unwrap_or_else(|| format!("http://{addr}"));
        let state = AppState::with_bestin(
            url.clone(),
            config.bkash,
            config.bestin,
            config.bestin_options,
        );
        bestin::spawn_ticker(&state);
        let app = router(state.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "sandbox server stopped");
            }
        });
        tracing::info!(%addr, %url, "sandbox listening");
        Ok(Sandbox { addr, url, state })
    }

    /// The sandbox's base URL without a trailing slash, e.g. `http://127.0.0.1:40123`
    /// (the public URL when one was configured).
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `url()` + `/v1.2.0-beta`; a bKash client appends `/tokenized/checkout/...`.
    pub fn bkash_base_url(&self) -> String {
        format!("{}/v1.2.0-beta", self.url)
    }

    /// `url()` + `/bestin`; a Bestin Pay client appends `/payin`, `/payout`, `/cancel`, `/query`,
    /// `/balance`.
    pub fn bestin_base_url(&self) -> String {
        format!("{}/bestin", self.url)
    }

    /// The approval page (the customer's UPI app) for one of a payin's deep links.
    pub fn upi_approve_url(&self, deep_link: &str) -> String {
        format!(
            "{}/upi/approve?link={}",
            self.url,
            bestin::encode(deep_link)
        )
    }

    /// The state behind it, for building another [`router`] over the same world.
    pub fn state(&self) -> &AppState {
        &self.state
    }
}

/// The whole sandbox as an axum router (bKash and Bestin Pay APIs, hosted pages, control API).
///
/// Built this way (without [`Sandbox::spawn`]) there is no background ticker: pending payins still
/// expire whenever they are looked at and when the clock is advanced.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(api::routes())
        .merge(page::routes())
        .merge(control::routes())
        .merge(bestin::routes())
        .merge(bestin_page::routes())
        .merge(bestin_control::routes())
        .route("/", get(index))
        .fallback(|| async { (StatusCode::NOT_FOUND, "Not Found") })
        .with_state(state)
}

async fn index() -> &'static str {
    "deshpay-sandbox: bKash tokenized checkout v1.2.0-beta at /v1.2.0-beta/tokenized/checkout/, \
     Bestin Pay at /bestin/ (approval page /upi/approve?link=), control API at /__sandbox/\n"
}
