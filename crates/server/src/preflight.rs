//! Checks of the settings before anything starts: what is refused in every environment (an empty API key, a
//! malformed URL or CORS origin) and what `[server] environment = "production"` refuses on top (weak or demo
//! keys, the sandbox's keys and credentials, `http://` URLs, a loopback `public_url`). Each refusal is one line
//! naming the setting and the fix; no refusal ever prints a secret.

use crate::configuration::{Environment, Settings};
use crate::providers::bestin::notify::SANDBOX_TEST_PUBLIC_KEY;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use std::fmt;

/// The API key printed in the README and used by `cargo xtask demo`.
pub const DEMO_API_KEY: &str = "sk_demo_deshpay_0123456789";
/// Shortest API key or webhook secret production accepts, in bytes.
pub const MIN_PRODUCTION_SECRET_BYTES: usize = 32;

/// bKash's public sandbox credentials (published in bKash's developer documentation).
const BKASH_SANDBOX_USERNAMES: [&str; 2] = ["sandboxTokenizedUser02", "sandboxTokenizedUser01"];
const BKASH_SANDBOX_APP_KEYS: [&str; 1] = ["4f6o0cjiki2rfm34kfdadl1eqq"];
const BKASH_SANDBOX_HOSTS: [&str; 2] = ["tokenized.sandbox.bka.sh", "checkout.sandbox.bka.sh"];
/// The app id of this repository's Bestin Pay sandbox.
const BESTIN_SANDBOX_APP_IDS: [&str; 1] = ["deshpay-sandbox-app"];

/// One setting the server refuses to start with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The setting, e.g. `merchant.api_key`.
    pub setting: &'static str,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "refusing to start: {}: {}", self.setting, self.message)
    }
}

/// Every refusal of a configuration, one per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusals(pub Vec<Refusal>);

impl fmt::Display for Refusals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&lines.join("\n"))
    }
}

impl std::error::Error for Refusals {}

/// A short, non-reversible name of a secret for logs: `sha256:` and the first 12 hex digits of its digest.
pub fn fingerprint(secret: &SecretString) -> String {
    let digest = Sha256::digest(secret.expose_secret().as_bytes());
    let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// Checks `settings`.
///
/// # Errors
/// [`Refusals`] listing every setting that must change, each with its fix.
pub fn check(settings: &Settings) -> Result<(), Refusals> {
    let production = settings.server.environment == Environment::Production;
    let mut out = Vec::new();
    let mut refuse = |setting: &'static str, message: String| out.push(Refusal { setting, message });

    let keys = [
        ("merchant.api_key", Some(&settings.merchant.api_key)),
        ("merchant.api_key_next", settings.merchant.api_key_next.as_ref()),
    ];
    for (setting, key) in keys {
        let Some(key) = key else { continue };
        if let Some(problem) = api_key_problem(key.expose_secret(), production) {
            refuse(
                setting,
                format!(
                    "{problem}; set it (DESHPAY_{}) to a random key of at least {MIN_PRODUCTION_SECRET_BYTES} bytes without spaces, e.g. the output of `openssl rand -hex 32`",
                    env_name(setting)
                ),
            );
        }
    }

    for origin in &settings.server.allowed_origins {
        if let Err(problem) = check_origin(origin, production) {
            refuse(
                "server.allowed_origins",
                format!(
                    "{origin:?} {problem}; list each shop origin as scheme://host[:port], e.g. [\"https://shop.example\"]"
                ),
            );
        }
    }

    // bKash's IPN comes from Amazon SNS: in production its certificates come only from SNS's hosts.
    if production && settings.bkash.ipn_topic_arn.is_some() {
        for host in &settings.bkash.ipn_cert_hosts {
            let host = host.trim().to_ascii_lowercase();
            if host.contains(':') || !(host.ends_with(".amazonaws.com") || host.ends_with(".amazonaws.com.cn")) {
                refuse(
                    "bkash.ipn_cert_hosts",
                    format!("{host:?} is not an Amazon SNS host; leave it unset (default [\"sns.*.amazonaws.com\"])"),
                );
            }
        }
    }

    let mut urls: Vec<(&'static str, &str)> = vec![("bkash.base_url", &settings.bkash.base_url)];
    if let Some(backup) = &settings.bkash.backup_base_url {
        urls.push(("bkash.backup_base_url", backup));
    }
    if let Some(b) = &settings.bestin {
        urls.push(("bestin.base_url", &b.base_url));
        if let Some(backup) = &b.backup_base_url {
            urls.push(("bestin.backup_base_url", backup));
        }
    }
    if let Some(w) = &settings.webhook {
        urls.push(("webhook.url", &w.url));
    }
    match &settings.server.public_url {
        Some(u) => urls.push(("server.public_url", u)),
        None if production => refuse(
            "server.public_url",
            "is not set, so callback and notify URLs would point at the bound address over http; set it to the backend's https URL, e.g. \"https://pay.example\"".into(),
        ),
        None => {}
    }
    for (setting, text) in urls {
        match url::Url::parse(text) {
            Ok(u) if u.scheme() == "https" || (!production && u.scheme() == "http") => {
                if u.host_str().is_none_or(str::is_empty) {
                    refuse(setting, "has no host; give a full URL, e.g. \"https://pay.example\"".into());
                } else if production && setting == "server.public_url" && is_loopback(&u) {
                    refuse(setting, "is a loopback address that bKash, Bestin Pay and customers cannot reach; set the backend's public https URL".into());
                } else if production
                    && setting.starts_with("bkash.")
                    && u.host_str().is_some_and(|h| BKASH_SANDBOX_HOSTS.contains(&h))
                {
                    refuse(setting, "points at bKash's sandbox; set the production URL bKash gave you, e.g. \"https://tokenized.pay.bka.sh/v1.2.0-beta\"".into());
                }
            }
            Ok(u) if production && u.scheme() == "http" => {
                refuse(setting, "is http:// in production, which would send secrets and payments in clear text; use its https:// URL".into());
            }
            Ok(_) => refuse(setting, "must be an http:// or https:// URL (https:// in production)".into()),
            Err(e) => refuse(setting, format!("is not a URL ({e}); give a full URL, e.g. \"https://pay.example\"")),
        }
    }

    if let Some(w) = &settings.webhook {
        let min = if production { MIN_PRODUCTION_SECRET_BYTES } else { 16 };
        for (setting, secret) in [("webhook.secret", Some(&w.secret)), ("webhook.secret_next", w.secret_next.as_ref())]
        {
            if secret.is_some_and(|s| s.expose_secret().len() < min) {
                refuse(
                    setting,
                    format!(
                        "must be at least {min} bytes; generate one with `openssl rand -hex 32` and share it with the merchant's webhook receiver"
                    ),
                );
            }
        }
    }

    if let Some(admin) = &settings.server.admin_listen
        && admin.parse::<std::net::SocketAddr>().is_err()
    {
        refuse("server.admin_listen", "is not an address:port; use e.g. \"127.0.0.1:9091\"".into());
    }

    let l = &settings.limits;
    let zero = [
        ("limits.ip_burst", l.ip_burst == 0 || l.ip_replenish_ms == 0),
        ("limits.session_burst", l.session_burst == 0 || l.session_replenish_ms == 0),
        ("limits.streams_per_session", l.streams_per_session == 0 || l.streams_total == 0 || l.stream_max_secs == 0),
        ("limits.request_timeout_ms", l.request_timeout_ms == 0 || l.max_concurrent_requests == 0),
        ("limits.merchant_body_bytes", l.merchant_body_bytes == 0 || l.notify_body_bytes == 0),
    ];
    for (setting, is_zero) in zero {
        if is_zero {
            refuse(setting, "and its companion settings must be above 0; remove them to use the defaults".into());
        }
    }

    if production {
        let b = &settings.bkash;
        if BKASH_SANDBOX_USERNAMES.contains(&b.username.as_str())
            || BKASH_SANDBOX_APP_KEYS.contains(&b.app_key.as_str())
        {
            refuse("bkash.app_key", "is bKash's public sandbox credential set; set the production username, password, app_key and app_secret bKash issued to the merchant".into());
        }
        if let Some(bestin) = &settings.bestin {
            let pem = bestin.public_key_pem.as_deref().unwrap_or_default();
            if same_pem(pem, SANDBOX_TEST_PUBLIC_KEY) {
                refuse("bestin.public_key_pem", "is the sandbox's test key, whose private key is published in this repository (anyone could sign a notification); remove the setting to use Bestin Pay's production key, or set the key Bestin Pay gave you".into());
            }
            if BESTIN_SANDBOX_APP_IDS.contains(&bestin.app_id.as_str()) {
                refuse(
                    "bestin.app_id",
                    "is the sandbox's app id; set the app id and secret Bestin Pay issued to the merchant".into(),
                );
            }
        }
    }

    if out.is_empty() { Ok(()) } else { Err(Refusals(out)) }
}

/// What is wrong with an API key, if anything.
fn api_key_problem(key: &str, production: bool) -> Option<&'static str> {
    if key.is_empty() {
        return Some("is empty, which would leave the merchant API without authentication");
    }
    if !production {
        return None;
    }
    if key == DEMO_API_KEY {
        Some("is the published demo key")
    } else if key.len() < MIN_PRODUCTION_SECRET_BYTES {
        Some("is shorter than 32 bytes")
    } else if key.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some("contains whitespace or control characters")
    } else {
        None
    }
}

fn env_name(setting: &str) -> String {
    setting.to_ascii_uppercase().replace('.', "__")
}

/// An origin is `scheme://host[:port]`: no path, query, fragment, user or wildcard.
fn check_origin(origin: &str, production: bool) -> Result<(), &'static str> {
    if origin.contains('*') {
        return Err("is a wildcard, which would let any web page drive the widget API with a customer's browser");
    }
    let u = url::Url::parse(origin).map_err(|_| "is not an origin")?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none_or(str::is_empty) {
        return Err("is not an http(s) origin");
    }
    if u.path() != "/" || u.query().is_some() || u.fragment().is_some() || !u.username().is_empty() {
        return Err("has a path, query or user part; an origin is only scheme://host[:port]");
    }
    if axum::http::HeaderValue::from_str(origin.trim_end_matches('/')).is_err() {
        return Err("is not a valid header value");
    }
    if production && u.scheme() != "https" {
        return Err("is not https in production");
    }
    Ok(())
}

fn is_loopback(u: &url::Url) -> bool {
    match u.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost") || d.ends_with(".localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback() || ip.is_unspecified(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback() || ip.is_unspecified(),
        None => true,
    }
}

fn same_pem(a: &str, b: &str) -> bool {
    let squash = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
    !a.trim().is_empty() && squash(a) == squash(b)
}

/// Logs the environment and fingerprints of the keys in use (never the keys).
pub fn log_start(settings: &Settings) {
    let m = &settings.merchant;
    tracing::info!(
        environment = settings.server.environment.as_str(),
        api_key = %fingerprint(&m.api_key),
        api_key_next = %m.api_key_next.as_ref().map(fingerprint).unwrap_or_else(|| "none".into()),
        bkash_app_key = %settings.bkash.app_key,
        bkash_app_secret = %fingerprint(&settings.bkash.app_secret),
        bestin_secret = %settings.bestin.as_ref().map(|b| fingerprint(&b.secret)).unwrap_or_else(|| "none".into()),
        bestin_notify_key = %settings.bestin.as_ref().map(|b| {
            b.public_key_pem.as_deref().map_or("production (built in)".to_owned(), |p| fingerprint(&SecretString::from(p)))
        }).unwrap_or_else(|| "none".into()),
        webhook_secret = %settings.webhook.as_ref().map(|w| fingerprint(&w.secret)).unwrap_or_else(|| "none".into()),
        "deshpay-server configuration accepted"
    );
}
