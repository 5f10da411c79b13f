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
    /// Rate limits, caps and timeouts of the HTTP edge.
    #[serde(default)]
    pub limits: LimitSettings,
    /// How long idempotency keys, notification ids and audit events are kept.
    #[serde(default)]
    pub retention: RetentionSettings,
}

/// `[retention]`: what is deleted once it can no longer matter.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RetentionSettings {
    /// Idempotency keys replay their first answer this long (merchants retry within minutes).
    pub idempotency_hours: u64,
    /// Notification ids are kept this long to recognise a redelivery (Bestin Pay retries for hours).
    pub notifications_days: u64,
    /// Audit events (every payment transition) are kept this long; 0 keeps them for ever.
    pub events_days: u64,
    /// How often the sweep runs (0: never).
    pub interval_secs: u64,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        RetentionSettings { idempotency_hours: 24, notifications_days: 30, events_days: 0, interval_secs: 3600 }
    }
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
    /// Shared secret of the `DeshPay-Signature` HMAC (at least 16 bytes; 32 in production).
    #[serde(deserialize_with = "de_secret")]
    pub secret: SecretString,
    /// The next secret during a rotation: while set, each delivery carries a second `v1=` signature under it,
    /// so the merchant can switch its receiver before `secret` is replaced.
    #[serde(default, deserialize_with = "de_opt_secret")]
    pub secret_next: Option<SecretString>,
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
    /// A backup base URL: tried when no connection can be made to `base_url`, and, for calls that are safe to
    /// repeat (query, query by req_id, balance), after a 5xx or no answer. Payin, payout and cancel are never
    /// repeated on it once sent.
    #[serde(default)]
    pub backup_base_url: Option<String>,
    /// `x-app-id`.
    pub app_id: String,
    /// `x-secret`.
    #[serde(deserialize_with = "de_secret")]
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

/// Which world this backend talks to: the sandbox (the default) or real money.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    /// Sandbox providers, demo keys and `http://` URLs are allowed.
    #[default]
    Sandbox,
    /// Real money: weak keys, sandbox keys and credentials, and `http://` URLs are refused at start.
    Production,
}

impl Environment {
    /// "sandbox" or "production".
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Sandbox => "sandbox",
            Environment::Production => "production",
        }
    }
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    /// `sandbox` (default) or `production` (`DESHPAY_SERVER__ENVIRONMENT`).
    #[serde(default)]
    pub environment: Environment,
    /// Where `/metrics` and `/healthz` are served without the API key, e.g. "127.0.0.1:9091". On the public
    /// listener `/metrics` needs the merchant API key and `/healthz` tells only "ok" or "unavailable".
    #[serde(default)]
    pub admin_listen: Option<String>,
    /// Address to bind, e.g. "127.0.0.1:8081" (port 0 picks a free port).
    pub listen: String,
    /// The URL providers and browsers use to reach this backend (callback URLs are built from it). Defaults
    /// to `http://<bound address>`.
    #[serde(default)]
    pub public_url: Option<String>,
    /// Origins allowed to call the widget API from a browser (CORS), e.g. ["https://shop.example"].
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// The built widget package (`cargo xtask build` writes `pkg/`), which the hosted payment page
    /// (`GET /pay/{id}`) loads from `GET /pay/pkg/{file}`, precompressed files included. Default `pkg`
    /// (relative to the working directory).
    #[serde(default)]
    pub widget_dir: Option<std::path::PathBuf>,
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
    #[serde(deserialize_with = "de_secret")]
    pub api_key: SecretString,
    /// A second accepted key, for rotation: deploy the new key here, move the merchant's servers to it, then
    /// make it `api_key` and remove this one.
    #[serde(default, deserialize_with = "de_opt_secret")]
    pub api_key_next: Option<SecretString>,
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
    /// A backup base URL (bKash's "endpoint failover"): tried when no connection can be made to `base_url`,
    /// and, for calls that are safe to repeat (grant, refresh, query, search, refund status), after a 5xx or no
    /// answer. Create, Execute and Refund are never repeated on it once sent.
    #[serde(default)]
    pub backup_base_url: Option<String>,
    /// PGW username (grant/refresh header).
    pub username: String,
    /// PGW password.
    #[serde(deserialize_with = "de_secret")]
    pub password: SecretString,
    /// App key (also sent as X-APP-Key).
    pub app_key: String,
    /// App secret.
    #[serde(deserialize_with = "de_secret")]
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
    /// The Amazon SNS topic bKash publishes our IPN to (bKash names it at onboarding, e.g.
    /// "arn:aws:sns:ap-southeast-1:...:bpt_01XXXXXXXXX"). Unset: `POST /v1/bkash/ipn` answers 404. Envelopes of
    /// any other topic are refused, and a SubscribeURL is followed only for this one.
    #[serde(default)]
    pub ipn_topic_arn: Option<String>,
    /// Hosts allowed to serve an IPN's `SigningCertURL` and `SubscribeURL`; `*` stands for one DNS label, and an
    /// entry with `:port` must match the port too. Default `["sns.*.amazonaws.com"]`. HTTPS only, except with
    /// `server.environment = "sandbox"` (the sandbox serves plain HTTP).
    #[serde(default = "default_ipn_cert_hosts")]
    pub ipn_cert_hosts: Vec<String>,
}

fn default_ipn_cert_hosts() -> Vec<String> {
    vec!["sns.*.amazonaws.com".to_owned()]
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

/// `[limits]`: what one client, one session and the whole process may use. Every limit answers a typed error
/// (`rate_limited` 429, `payload_too_large` 413, `timeout` 408, `overloaded` 503, `invalid_request` 400).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct LimitSettings {
    /// Widget payment starts and cancels one client IP may make in a burst...
    pub ip_burst: u32,
    /// ...and then one more every this many milliseconds.
    pub ip_replenish_ms: u64,
    /// Payment starts and cancels one session may make in a burst (each start may call the provider)...
    pub session_burst: u32,
    /// ...and then one more every this many milliseconds.
    pub session_replenish_ms: u64,
    /// Take the client IP from `X-Forwarded-For`/`Forwarded` (only behind a proxy that sets them).
    pub trust_forwarded_for: bool,
    /// Live event streams per session.
    pub streams_per_session: usize,
    /// Live event streams in this process.
    pub streams_total: usize,
    /// An event stream ends after this many seconds (the widget reconnects or polls).
    pub stream_max_secs: u64,
    /// Whole-request timeout of every route but the event streams, in milliseconds (longer than two provider
    /// calls, so a callback's Execute and Query can finish).
    pub request_timeout_ms: u64,
    /// Requests served at once; more are refused at once with 503 rather than queued.
    pub max_concurrent_requests: usize,
    /// Largest merchant API body in bytes.
    pub merchant_body_bytes: usize,
    /// Largest provider notification body in bytes.
    pub notify_body_bytes: usize,
    /// Largest widget API body in bytes (its calls carry none).
    pub widget_body_bytes: usize,
    /// Longest `return_url` in characters.
    pub return_url_max_chars: usize,
}

impl Default for LimitSettings {
    fn default() -> Self {
        LimitSettings {
            ip_burst: 60,
            ip_replenish_ms: 1_000,
            session_burst: 6,
            session_replenish_ms: 10_000,
            trust_forwarded_for: false,
            streams_per_session: 4,
            streams_total: 2_000,
            stream_max_secs: 1_800,
            request_timeout_ms: 75_000,
            max_concurrent_requests: 512,
            merchant_body_bytes: 16 * 1024,
            notify_body_bytes: 64 * 1024,
            widget_body_bytes: 1024,
            return_url_max_chars: 2_048,
        }
    }
}

/// Reads a secret only as a string. A TOML number is refused without echoing it (serde's own message would
/// print the value); environment variables of secrets are read as raw strings in [`Settings::load`].
fn de_secret<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SecretString, D::Error> {
    struct SecretVisitor;
    impl serde::de::Visitor<'_> for SecretVisitor {
        type Value = SecretString;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a secret as a quoted string")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<SecretString, E> {
            Ok(SecretString::from(v))
        }
        fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<SecretString, E> {
            Err(E::custom(NOT_A_STRING))
        }
        fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<SecretString, E> {
            Err(E::custom(NOT_A_STRING))
        }
        fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<SecretString, E> {
            Err(E::custom(NOT_A_STRING))
        }
        fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<SecretString, E> {
            Err(E::custom(NOT_A_STRING))
        }
    }
    d.deserialize_str(SecretVisitor)
}

const NOT_A_STRING: &str = "a secret must be a quoted string (its value is not shown)";

fn de_opt_secret<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<SecretString>, D::Error> {
    de_secret(d).map(Some)
}

/// The secrets read from the environment as raw text (figment would parse `123` as a number).
const SECRET_KEYS: [&str; 7] = [
    "merchant.api_key",
    "merchant.api_key_next",
    "bkash.password",
    "bkash.app_secret",
    "bestin.secret",
    "webhook.secret",
    "webhook.secret_next",
];

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
        figment = figment.merge(Env::prefixed("DESHPAY_").split("__"));
        for key in SECRET_KEYS {
            let var = format!("DESHPAY_{}", key.to_ascii_uppercase().replace('.', "__"));
            if let Ok(raw) = std::env::var(&var) {
                figment = figment.merge(Serialized::global(key, raw));
            }
        }
        figment.extract().map_err(Box::new)
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

    const MINIMAL: &str = r#"
        [merchant]
        api_key = "k"
        [bkash]
        base_url = "http://127.0.0.1:1/v1.2.0-beta"
        username = "u"
        password = "p"
        app_key = "k"
        app_secret = "s"
        "#;

    #[test]
    fn numeric_secrets_in_the_environment_are_read_as_text_exactly() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("deshpay.toml", MINIMAL)?;
            jail.set_env("DESHPAY_MERCHANT__API_KEY", "000123456789012345678901234567890123");
            jail.set_env("DESHPAY_BKASH__APP_SECRET", "1e5");
            jail.set_env("DESHPAY_SERVER__ENVIRONMENT", "production");
            let s = Settings::load(Some(Path::new("deshpay.toml"))).expect("settings");
            assert_eq!(s.merchant.api_key.expose_secret(), "000123456789012345678901234567890123");
            assert_eq!(s.bkash.app_secret.expose_secret(), "1e5");
            assert_eq!(s.server.environment, Environment::Production);
            assert_eq!(s.limits.session_burst, LimitSettings::default().session_burst);
            Ok(())
        });
    }

    #[test]
    fn a_secret_of_the_wrong_type_is_refused_without_echoing_it() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("deshpay.toml", &MINIMAL.replace(r#"password = "p""#, "password = 987654321"))?;
            let err = Settings::load(Some(Path::new("deshpay.toml"))).expect_err("a number is not a secret");
            let text = err.to_string();
            assert!(text.contains("password") && text.contains("quoted string"), "{text}");
            assert!(!text.contains("987654321"), "{text}");
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
