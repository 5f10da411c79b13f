//! `Application::build` wires settings, store, clients and router, binds the listener (port 0 in tests) and
//! starts the reconciler.

use crate::clock::Clock;
use crate::configuration::Settings;
use crate::metrics::Metrics;
use crate::providers::Providers;
use crate::providers::bestin::Bestin;
use crate::providers::bestin::client::BestinClient;
use crate::providers::bestin::notify::{NotifyVerifier, PRODUCTION_PUBLIC_KEY};
use crate::providers::bkash::Bkash;
use crate::providers::bkash::client::BkashClient;
use crate::providers::bkash::ipn::IpnVerifier;
use crate::providers::bkash::token::TokenManager;
use crate::routes::router;
use crate::state::{AppState, Inner};
use crate::store::Store;
use anyhow::Context;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// A built, bound, not yet serving backend.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    admin: Option<TcpListener>,
    state: AppState,
}

impl Application {
    /// Builds with the system clock.
    ///
    /// # Errors
    /// Bad settings, an unreachable database, a port in use.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        Self::build_with_clock(settings, Clock::system()).await
    }

    /// Builds with the given clock (tests move it).
    ///
    /// # Errors
    /// Bad settings, an unreachable database, a port in use.
    pub async fn build_with_clock(settings: Settings, clock: Clock) -> anyhow::Result<Application> {
        crate::preflight::check(&settings)?;
        crate::preflight::log_start(&settings);
        let store = Store::connect(&settings.database.url, settings.database.max_connections)
            .await
            .context("opening the database (database.url)")?;
        let listener = TcpListener::bind(&settings.server.listen)
            .await
            .with_context(|| format!("binding {}", settings.server.listen))?;
        let address = listener.local_addr()?;
        let admin = match &settings.server.admin_listen {
            Some(admin) => {
                Some(TcpListener::bind(admin).await.with_context(|| format!("binding server.admin_listen {admin}"))?)
            }
            None => None,
        };
        let public_url = settings
            .server
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{address}"))
            .trim_end_matches('/')
            .to_owned();
        let metrics = Arc::new(Metrics::default());
        let environment = settings.server.environment;
        let bkash = Arc::new(
            BkashClient::new(&settings.bkash, environment, metrics.clone()).context("building the bKash client")?,
        );
        let tokens = TokenManager::new(
            bkash.clone(),
            store.clone(),
            clock.clone(),
            metrics.clone(),
            settings.bkash.refresh_margin_secs,
            settings.bkash.refresh_token_lifetime_secs,
            settings.bkash.timeout_ms,
        );
        let bestin = match &settings.bestin {
            Some(b) => {
                let client = BestinClient::new(b, environment, clock.clone(), metrics.clone())
                    .context("building the Bestin Pay client")?;
                let pem = b.public_key_pem.clone().unwrap_or_else(|| PRODUCTION_PUBLIC_KEY.to_owned());
                let verifier =
                    NotifyVerifier::from_pem(&pem).context("bestin.public_key_pem is not an RSA public key")?;
                let merchant_id = b.merchant_id.clone();
                Some(Bestin::new(Arc::new(client), verifier, merchant_id, &public_url, b.payin_ttl_secs, clock.clone()))
            }
            None => None,
        };
        let providers = Providers { bkash: Bkash::new(bkash, tokens, &public_url), bestin };
        let (changes, _) = tokio::sync::broadcast::channel(256);
        let ipn_verifier = IpnVerifier::new(
            settings.bkash.ipn_topic_arn.clone(),
            settings.bkash.ipn_cert_hosts.clone(),
            environment == crate::configuration::Environment::Sandbox,
            settings.bkash.timeout_ms,
        );
        let state = AppState::new(Inner {
            ipn_verifier,
            settings,
            public_url,
            store,
            clock,
            metrics,
            providers,
            changes,
            webhook_http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .https_only(environment == crate::configuration::Environment::Production)
                .build()
                .context("building the webhook client")?,
            webhook_wake: tokio::sync::Notify::new(),
        });
        Ok(Application { listener, admin, state })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// The bound port of `server.admin_listen`, when configured.
    pub fn admin_port(&self) -> Option<u16> {
        self.admin.as_ref().and_then(|l| l.local_addr().ok()).map(|a| a.port())
    }

    /// The public URL.
    pub fn url(&self) -> String {
        self.state.public_url.clone()
    }

    /// The state (tests reach the store and the reconciler through it).
    pub fn state(&self) -> AppState {
        self.state.clone()
    }

    /// Runs the reconciler (a pass at start, then periodically) and serves until the process ends.
    ///
    /// # Errors
    /// When serving fails.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let state = self.state.clone();
        tokio::spawn(async move {
            let interval = state.settings.reconciler.interval_secs;
            loop {
                match state.reconcile_once().await {
                    Ok(n) if n > 0 => tracing::info!(records = n, "reconciler pass"),
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e.message, "reconciler pass failed"),
                }
                if interval == 0 {
                    break;
                }
                tokio::time::sleep(Duration::from_secs(interval)).await;
            }
        });
        tokio::spawn(crate::webhooks::run(self.state.clone()));
        tokio::spawn(retention(self.state.clone()));
        if let Some(admin) = self.admin {
            let app = crate::routes::admin_router(self.state.clone());
            tokio::spawn(async move {
                if let Err(e) = axum::serve(admin, app).await {
                    tracing::error!(error = %e, "admin listener failed");
                }
            });
        }
        axum::serve(self.listener, router(self.state).into_make_service_with_connect_info::<SocketAddr>()).await
    }
}

/// Deletes what `[retention]` says may go, at start and every `interval_secs`.
async fn retention(state: AppState) {
    let r = state.settings.retention.clone();
    if r.interval_secs == 0 {
        return;
    }
    const HOUR_MS: i64 = 3600 * 1000;
    let ms = |hours: u64| i64::try_from(hours).unwrap_or(i64::MAX / HOUR_MS).saturating_mul(HOUR_MS);
    loop {
        let now = state.clock.now_ms();
        let events_before = if r.events_days == 0 { i64::MIN } else { now - ms(r.events_days * 24) };
        match state.store.purge(now - ms(r.idempotency_hours), now - ms(r.notifications_days * 24), events_before).await
        {
            Ok(p) if p != crate::store::Purged::default() => tracing::info!(?p, "retention sweep"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "retention sweep failed"),
        }
        tokio::time::sleep(Duration::from_secs(r.interval_secs)).await;
    }
}
