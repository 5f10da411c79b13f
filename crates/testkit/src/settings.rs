//! Backend settings for a test: every provider points at one in-process sandbox.

use deshpay_sandbox::{BestinCredentials, BkashCredentials, Sandbox};
use deshpay_server::configuration::{
    BestinSettings, BkashSettings, DatabaseSettings, Environment, LimitSettings, MerchantSettings, ReconcilerSettings,
    RefundApi, RetentionSettings, ServerSettings, Settings,
};

/// The merchant API key of the test backends.
pub const API_KEY: &str = "test-api-key-0123456789";
/// Client timeout for provider calls in tests; sandbox delays beyond it play "no response".
pub const BKASH_TIMEOUT_MS: u64 = 1500;

/// Settings of a sandbox-mode backend on port 0 with the database at `db_url`, bKash and Bestin Pay at
/// `sandbox` (with the sandbox's published credentials and notification key), and no webhook.
pub fn sandbox_settings(sandbox: &Sandbox, db_url: &str) -> Settings {
    let creds = BkashCredentials::public_sandbox();
    let bestin = BestinCredentials::sandbox_default();
    Settings {
        server: ServerSettings {
            environment: Environment::Sandbox,
            admin_listen: None,
            listen: "127.0.0.1:0".into(),
            public_url: None,
            allowed_origins: vec!["http://shop.test".into()],
            widget_dir: None,
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
            timeout_ms: BKASH_TIMEOUT_MS,
            poll_after_secs: 1,
            payin_ttl_secs: 900,
        }),
        reconciler: ReconcilerSettings { interval_secs: 0, stale_after_secs: 2 },
        webhook: None,
        payments: Default::default(),
    }
}
