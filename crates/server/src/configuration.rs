//! Typed settings: a TOML file (`deshpay-server --config FILE`) overridden by environment variables
//! `DESHPAY_<SECTION>__<KEY>` (e.g. `DESHPAY_DATABASE__URL`, `DESHPAY_SERVER__LISTEN`, `DESHPAY_BKASH__PASSWORD`).
//! Secrets are `SecretString`: redacted in `Debug`, never serialized.

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// All settings of the merchant backend.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// HTTP listener and public identity.
    pub server: ServerSettings,
    /// The store.
    pub database: DatabaseSettings,
    /// The merchant's API key and display name.
    pub merchant: MerchantSettings,
    /// bKash tokenized checkout credentials and endpoints.
    pub bkash: BkashSettings,
    /// Bestin Pay (UPI); UPI is offered only when this section is present.
    #[serde(default)]
    pub bestin: Option<BestinSettings>,
    /// Background reconciliation.
    #[serde(default)]
    pub reconciler: ReconcilerSettings,
    /// Signed webhooks to the merchant; none are sent without this section.
    #[serde(default)]
    pub webhook: Option<WebhookSettings>,
    /// What the payment core does on its own.
    #[serde(default)]
    pub payments: PaymentSettings,
}

/// `[payments]`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PaymentSettings {
    /// Refund a second bKash payment for an already paid session at once (it is always put in `review` and
    /// announced by `payment.needs_review`; with this, `refund.succeeded` follows).
    #[serde(default)]
    pub auto_refund_duplicates: bool,
}

/// `[webhook]`: where the backend tells the merchant's server about payments and refunds.
#[derive(Debug, Clone, Deserialize)]
pub struct WebhookSettings {
    /// The merchant's HTTPS endpoint, e.g. "https://shop.example/deshpay/webhook".
    pub url: String,
    /// Shared secret of the `DeshPay-Signature` HMAC (at least 16 bytes).
    pub secret: SecretString,
    /// Delay before the first retry in milliseconds; doubled after each failure, at most 6 hours.
    #[serde(default = "default_webhook_retry_ms")]
    pub retry_ms: u64,
    /// Deliveries tried before giving up (the payment or refund stays readable through the merchant API).
    #[serde(default = "default_webhook_max_attempts")]
    pub max_attempts: u32,
    /// Timeout of one delivery in milliseconds.
    #[serde(default = "default_webhook_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_webhook_retry_ms() -> u64 {
    10_000
}
fn default_webhook_max_attempts() -> u32 {
    15
}
fn default_webhook_timeout_ms() -> u64 {
    10_000
}

/// `[bestin]`: Bestin Pay credentials and endpoints.
#[derive(Debug, Clone, Deserialize)]
pub struct BestinSettings {
    /// API base URL, e.g. "https://api.bestinpay.com" (the sandbox: "http://127.0.0.1:8082/bestin").
    pub base_url: String,
    /// `x-app-id`.
    pub app_id: String,
    /// `x-secret`.
    pub secret: SecretString,
    /// Our merchant id at Bestin Pay (`mid`): a notification is applied only when its `data.mid` is this one,
    /// because Bestin Pay signs every merchant's notifications with the same platform key.
    pub merchant_id: String,
    /// PEM (SubjectPublicKeyInfo) of the key that signs notifications. Default: Bestin Pay's production key
    /// from its API document. The sandbox signs with its own test key: configure that one for the demo.
    #[serde(default)]
    pub public_key_pem: Option<String>,
    /// Timeout of every Bestin Pay call in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Ask /query about a payin with no notification for this long.
    #[serde(default = "default_poll_after")]
    pub poll_after_secs: u64,
    /// How long the widget counts down for a payin (Bestin Pay does not say; its sandbox expires at 15 min).
    #[serde(default = "default_payin_ttl")]
    pub payin_ttl_secs: u64,
}

fn default_poll_after() -> u64 {
    60
}
fn default_payin_ttl() -> u64 {
    900
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    /// Address to bind, e.g. "127.0.0.1:8081" (port 0 picks a free port).
    pub listen: String,
    /// The URL providers and browsers use to reach this backend (callback URLs are built from it). Defaults
    /// to `http://<bound address>`.
    #[serde(default)]
    pub public_url: Option<String>,
    /// Origins allowed to call the widget API from a browser (CORS), e.g. ["https://shop.example"].
    #[serde(default)]
    pub allowed_origins: Vec<String>,
}

/// `[database]`.
#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    /// `sqlite://path/to/file.db` (created if missing) or `postgres://user@host/db`.
    pub url: String,
    /// Pool size.
    #[serde(default = "default_pool_size")]
    pub max_connections: u32,
}

/// `[merchant]`.
#[derive(Debug, Clone, Deserialize)]
pub struct MerchantSettings {
    /// Key for the merchant API (`Authorization: Bearer <key>`).
    pub api_key: SecretString,
    /// Name shown in the widget.
    #[serde(default = "default_merchant_name")]
    pub name: String,
    /// Default session lifetime in seconds.
    #[serde(default = "default_session_ttl")]
    pub session_ttl_secs: u32,
}

/// Which refund API the bKash credentials are provisioned for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RefundApi {
    /// `{base}/tokenized/checkout/payment/refund` (paymentID, trxID, amount).
    V1,
    /// `{host}/v2/tokenized-checkout/refund/payment/transaction` (paymentId, trxId, refundAmount).
    V2,
}

/// `[bkash]`.
#[derive(Debug, Clone, Deserialize)]
pub struct BkashSettings {
    /// Base URL including the version, e.g. "https://tokenized.sandbox.bka.sh/v1.2.0-beta".
    pub base_url: String,
    /// PGW username (grant/refresh header).
    pub username: String,
    /// PGW password.
    pub password: SecretString,
    /// App key (also sent as X-APP-Key).
    pub app_key: String,
    /// App secret.
    pub app_secret: SecretString,
    /// Refund API flavour.
    #[serde(default = "default_refund_api")]
    pub refund_api: RefundApi,
    /// Timeout of every bKash call in milliseconds (bKash asks for 30 s).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Renew the id_token this many seconds before it expires.
    #[serde(default = "default_refresh_margin")]
    pub refresh_margin_secs: u64,
    /// Lifetime of a refresh_token (bKash: 28 days); a grant replaces it a day before.
    #[serde(default = "default_refresh_token_lifetime")]
    pub refresh_token_lifetime_secs: u64,
}

/// `[reconciler]`.
#[derive(Debug, Clone, Deserialize)]
pub struct ReconcilerSettings {
    /// How often to look for attempts stuck in "executing" (0 turns the periodic run off; it still runs at start).
    #[serde(default = "default_reconcile_interval")]
    pub interval_secs: u64,
    /// An attempt counts as stuck when quiet this long; raised to two provider timeouts plus the token wait.
    #[serde(default = "default_stale_after")]
    pub stale_after_secs: u64,
}

impl Default for ReconcilerSettings {
    fn default() -> Self {
        ReconcilerSettings { interval_secs: default_reconcile_interval(), stale_after_secs: default_stale_after() }
    }
}

fn default_pool_size() -> u32 {
    8
}
fn default_merchant_name() -> String {
    "DeshPay Demo Shop".into()
}
fn default_session_ttl() -> u32 {
    1800
}
fn default_refund_api() -> RefundApi {
    RefundApi::V1
}
fn default_timeout_ms() -> u64 {
    30_000
}
fn default_refresh_margin() -> u64 {
    300
}
fn default_refresh_token_lifetime() -> u64 {
    28 * 24 * 3600
}
fn default_reconcile_interval() -> u64 {
    30
}
fn default_stale_after() -> u64 {
    120
}

/// Defaults that need no secret: the listener and a SQLite file in the working directory.
#[derive(Serialize)]
struct Defaults {
    server: DefaultServer,
    database: DefaultDatabase,
}
#[derive(Serialize)]
struct DefaultServer {
    listen: &'static str,
}
#[derive(Serialize)]
struct DefaultDatabase {
    url: &'static str,
}

impl Settings {
    /// Loads settings from an optional TOML file, then `DESHPAY_*` environment variables.
    ///
    /// # Errors
    /// When a required key is missing or a value has the wrong type; the message names the key, never a value.
    pub fn load(file: Option<&Path>) -> Result<Settings, Box<figment::Error>> {
        let mut figment = Figment::from(Serialized::defaults(Defaults {
            server: DefaultServer { listen: "127.0.0.1:8081" },
            database: DefaultDatabase { url: "sqlite://deshpay.db" },
        }));
        if let Some(file) = file {
            figment = figment.merge(Toml::file_exact(file));
        }
        figment.merge(Env::prefixed("DESHPAY_").split("__")).extract().map_err(Box::new)
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment's Jail closures return its large error type
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn environment_overrides_the_file_and_secrets_stay_redacted() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "deshpay.toml",
                r#"
                [server]
                listen = "127.0.0.1:9000"
                [merchant]
                api_key = "file-key"
                [bkash]
                base_url = "http://127.0.0.1:1/v1.2.0-beta"
                username = "u"
                password = "pw-from-file"
                app_key = "k"
                app_secret = "s"
                refund_api = "v2"
                "#,
            )?;
            jail.set_env("DESHPAY_SERVER__LISTEN", "127.0.0.1:0");
            jail.set_env("DESHPAY_DATABASE__URL", "sqlite://x.db");
            jail.set_env("DESHPAY_BKASH__PASSWORD", "pw-from-env");
            let s = Settings::load(Some(Path::new("deshpay.toml"))).expect("settings");
            assert_eq!(s.server.listen, "127.0.0.1:0");
            assert_eq!(s.database.url, "sqlite://x.db");
            assert_eq!(s.bkash.password.expose_secret(), "pw-from-env");
            assert_eq!(s.bkash.refund_api, RefundApi::V2);
            assert_eq!(s.bkash.timeout_ms, 30_000);
            let debug = format!("{s:?}");
            assert!(!debug.contains("pw-from-env") && !debug.contains("file-key"), "{debug}");
            Ok(())
        });
    }

    #[test]
    fn a_missing_secret_is_named_in_the_error() {
        figment::Jail::expect_with(|_jail| {
            let err = Settings::load(None).expect_err("no bkash settings");
            assert!(err.to_string().contains("merchant") || err.to_string().contains("bkash"), "{err}");
            Ok(())
        });
    }
}
