//! # deshpay-sandbox
//!
//! A faithful simulator of bKash's tokenized checkout API (v1.2.0-beta, mode `0011`) over real
//! HTTP, with the hosted payment page customers see at `bkashURL`, bKash's sandbox wallets,
//! OTP and PINs, its grant-token limit, failure wallets, duplicate detection, refunds (v1.2.0-beta
//! and v2), and fault injection for tests. The facts it follows are in `shared/spec/bkash.md`.
//!
//! Beside it, a simulator of **Bestin Pay** (UPI, INR): payin, payout, cancel, query, balance,
//! deep links, an approval page that plays the customer's UPI app, and RSA-SHA512 signed
//! notifications with retries (see "Bestin Pay" below; facts from `shared/spec/bestinpay.md` and
//! the provider's own `shared/seeds/bestinpay-api-zh.txt`).
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
//!   clock, faults, reset (the clock and reset are shared with Bestin Pay).
//! - bKash's IPN over an Amazon-SNS-shaped HTTP subscription (`SubscriptionConfirmation`, signed
//!   `Notification`s, the signing certificate at `{url}/__sns/SimpleNotificationService-sandbox.pem`),
//!   with its control API under `{url}/__sandbox/bkash/ipn` (subscribe, faults, simulated QR/USSD
//!   payments, resend). Its choices are listed in the `ipn` module's docs, summed up under
//!   "bKash IPN" below.
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
//!   `response: "code"` answers bKash's own envelope with `code` and `message` (e.g. a system error 2003
//!   or 9999), after the operation when `process` is true (the worst case: it happened, the answer says not).
//!   Fault endpoints are `grant`, `refresh`, `create`, `execute`, `query`, `search`, `refund` (v1
//!   refund and v2 transaction) and `refund_status` (v1 without amount and v2 status).
//!
//! ## bKash IPN
//!
//! - `POST /__sandbox/bkash/ipn/subscribe` `{"endpoint":"http://..","signature_version":1|2,
//!   "retry_delays_ms":[20000,20000,20000]}` subscribes the merchant's listener and POSTs the
//!   `SubscriptionConfirmation`; notifications are held until its `SubscribeURL` is fetched.
//! - A checkout payment is announced once, when the customer finishes the hosted page with a wallet
//!   whose Execute succeeds (or at a successful Execute), with the trxID Execute will return: bKash
//!   does not publish when its IPN fires, and this way a payment whose browser never returned is
//!   announced. Failure wallets are never announced.
//! - Envelopes are signed with SHA1withRSA (SignatureVersion 1, the default) or SHA256withRSA (2) by
//!   a test key whose certificate is [`SNS_TEST_CERT_PEM`]; the topic is [`BKASH_IPN_TOPIC_ARN`].
//! - `GET /__sandbox/bkash/ipn` lists the subscription, messages and deliveries;
//!   `POST /__sandbox/bkash/ipn/faults` `{"kind":"drop"|"duplicate"|"delay"|"bad_signature"|
//!   "unsigned"|"foreign_topic"|"foreign_cert_host","delay_ms":..,"times":..}`;
//!   `POST /__sandbox/bkash/ipn/payments` `{"amount":"120.00","channel":"qr"|"ussd"|"app"|"bank",
//!   "wallet":..,"invoice":..,"reference":..}` plays a payment no checkout created;
//!   `POST /__sandbox/bkash/ipn/messages/{id}/resend` redelivers a message now.
//!
//! ## Bestin Pay
//!
//! API at [`Sandbox::bestin_base_url`] (`{url}/bestin`): `POST /payin`, `/payout`, `/cancel`,
//! `/query`, `/balance`, JSON bodies, headers `x-app-id`, `x-secret`, `x-timestamp` (Unix ms).
//! The account is [`BestinCredentials::sandbox_default`]; notifications are signed with the test
//! key whose public half is [`BESTIN_TEST_PUBLIC_KEY_PEM`] (`keys/bestin-test-public.pem`).
//!
//! - Success: `{"code":"0000","msg":"Success","data":{..}}`; `/balance` answers
//!   `{"code":200,"msg":"success","data":[{"ccy":"INR","balance","available_balance",
//!   "frozen_balance"}]}` (a number, as in the seed). Errors: `{"code":<HTTP status>,"msg":..,
//!   "data":null}` with that HTTP status.
//! - 401 `invalid credentials` (wrong/missing app id or secret, checked first); 401
//!   `invalid timestamp` (missing or not an integer); 401 `timestamp expired` (more than 5 minutes
//!   from the sandbox clock, either way; [`BestinOptions::timestamp_uses_sandbox_clock`] switches
//!   to the system clock).
//! - 400 for bad bodies, with the reason in `msg`: `<field> is required`, `<field> must be a
//!   string` (amounts too: `"101.00"`, never a JSON number), `unsupported ccy: only INR`,
//!   `invalid amount: ...` (> 0, at most 2 decimals), `unsupported trx_method: only upi`,
//!   `invalid trx_mode: api or checkout`, `invalid notify_url: ...`, `invalid user_ip`,
//!   `invalid upi: ...`, `duplicate req_id` (a req_id is used once per trx_type; refused requests
//!   do not use it up), `insufficient balance` (payout above the available balance),
//!   `order is final` / `order is confirming` (cancel), `req_id or trx_id is required` (query).
//! - 404 `order not found` (query and cancel of an unknown order, or of the other trx_type);
//!   404 / 405 for unknown paths and non-POST methods.
//! - Answers carry amounts with 4 decimals (`"101.0000"`), notifications and balances with 2.
//!   Ids: `PI`/`PO` + a 26-character ULID; notify ids `N` + ULID.
//! - Payins stay `pending` for [`BestinOptions::payin_ttl`] (15 min, sandbox clock), then
//!   `expired`. The customer decides on `{url}/upi/approve?link=<deep link>` ("Approve" ->
//!   `success` and the balance goes up; "Decline" -> `failed`); `confirming` only with
//!   [`BestinOptions::confirm_delay`]. `trx_mode: "checkout"` adds `checkout_url` (that page).
//! - Payouts freeze their amount, then settle by themselves after
//!   [`BestinOptions::payout_settle_delay`] (2 s, real clock): `success` (frozen is debited), or
//!   `failed` for payee `fail@bestin` (frozen goes back to available). Payee `pending@bestin`
//!   never settles by itself. Payouts accept an optional `notify_url` (not in the seed).
//! - Cancel works on `pending` orders only. No fees anywhere.
//! - Every status change of an order with a notify_url is POSTed there, signed, and retried
//!   ([`BestinOptions::notify_backoff`], at most [`BestinOptions::notify_max_attempts`]) until
//!   the receiver answers HTTP 200 with the body exactly `success`; retries and resends reuse the
//!   notify_id and the very same bytes.
//! - Control API under `{url}/__sandbox/bestin/`: `counters`, `balance`, `payins/{id}`,
//!   `payouts/{id}`, `payins/{id}/approve|decline`, `payouts/{id}/settle`, `notifications`,
//!   `notifications/{notify_id}/resend`, `faults` (endpoints `payin`, `payout`, `cancel`,
//!   `query`, `balance` like bKash's, and `notify` with `drop`, `duplicate` or `delay_ms`).

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
mod ipn;
mod notify;
mod page;
mod state;

pub use bestin::{BestinCredentials, BestinOptions};
pub use ipn::{MERCHANT_WALLET as BKASH_MERCHANT_WALLET, SNS_TEST_CERT_PEM, TOPIC_ARN as BKASH_IPN_TOPIC_ARN};
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
    /// bKash's IPN: the merchant's listener URL, subscribed at start (SignatureVersion 1, AWS's retries).
    /// The control API (`POST /__sandbox/bkash/ipn/subscribe`) subscribes one later or replaces it.
    pub bkash_ipn_endpoint: Option<String>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            public_url: None,
            bkash: BkashCredentials::public_sandbox(),
            bestin: BestinCredentials::sandbox_default(),
            bestin_options: BestinOptions::default(),
            bkash_ipn_endpoint: None,
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
        let url =
            config.public_url.map(|u| u.trim_end_matches('/').to_owned()).unwrap_or_else(|| format!("http://{addr}"));
        let state = AppState::with_bestin(url.clone(), config.bkash, config.bestin, config.bestin_options);
        bestin::spawn_ticker(&state);
        if let Some(endpoint) = config.bkash_ipn_endpoint {
            ipn::subscribe(&state, endpoint, 1, vec![20_000, 20_000, 20_000]);
        }
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
        format!("{}/upi/approve?link={}", self.url, bestin::encode(deep_link))
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
        .merge(ipn::routes())
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
