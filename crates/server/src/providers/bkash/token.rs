//! The bKash id_token, shared by every customer (bKash allows about two grants an hour per app key).
//!
//! One token is reused until `refresh_margin` before its hour ends, then renewed with the refresh_token; a new
//! grant happens only when there is no token, the refresh fails, or the refresh_token is about to expire.
//! Renewal is single-flight within the process (an async mutex) and across instances (a lease row in the
//! shared store); the token is persisted in the store, so a restart or another instance reuses it instead of
//! granting again.

use super::client::{BkashClient, BkashError};
use super::transformers::TokenResponse;
use crate::clock::Clock;
use crate::metrics::Metrics;
use crate::store::{Store, StoredToken};
use secrecy::{ExposeSecret, SecretString};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use tokio::sync::{Mutex, RwLock};

/// A day: the refresh_token is replaced by a grant this long before bKash would stop accepting it.
const REFRESH_TOKEN_SAFETY_MS: i64 = 24 * 3600 * 1000;
/// How long one instance may hold the renewal lease beyond one bKash call's timeout, so a crashed holder frees it.
const LEASE_MARGIN_MS: i64 = 10_000;
/// How long a caller waits for another instance's renewal beyond one bKash call's timeout before giving up.
const LEASE_WAIT_MARGIN_MS: i64 = 15_000;

/// The longest a caller waits for a token: one renewal call plus a margin (45 s with bKash's 30 s timeout).
pub fn token_wait_ms(call_timeout_ms: u64) -> i64 {
    i64::try_from(call_timeout_ms).unwrap_or(30_000) + LEASE_WAIT_MARGIN_MS
}
/// A refused token is renewed at most once in this window unless it has expired.
pub const MIN_RENEWAL_INTERVAL_MS: i64 = 5 * 60 * 1000;
/// bKash blocks grants for an hour once its limit is hit.
pub const GRANT_BLOCK_MS: i64 = 3600 * 1000;

/// Why no token could be had.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// bKash refused or did not answer.
    #[error(transparent)]
    Bkash(#[from] BkashError),
    /// The store failed.
    #[error("token store: {0}")]
    Store(#[from] sqlx::Error),
    /// Another instance held the renewal lease for too long.
    #[error("another instance is renewing the bKash token")]
    Busy,
    /// bKash answered a grant with HTTP 429; no grant is tried before the block ends.
    #[error("bKash is limiting sign-ins; try again in {minutes} minutes")]
    GrantBlocked {
        /// Whole minutes left, at least 1.
        minutes: i64,
    },
}

/// Hands out the current id_token. Its `Debug` shows no token.
pub struct TokenManager {
    client: Arc<BkashClient>,
    store: Store,
    clock: Clock,
    metrics: Arc<Metrics>,
    refresh_margin_ms: i64,
    refresh_token_lifetime_ms: i64,
    cached: RwLock<Option<StoredToken>>,
    renewing: Mutex<()>,
    holder: String,
    call_timeout_ms: u64,
    /// When a gateway refusal last led to a renewal in this process, Unix ms; 0 before the first.
    last_forced_renewal_ms: AtomicI64,
    /// Until when bKash refuses grants, Unix ms; 0 when not blocked.
    grant_blocked_until_ms: AtomicI64,
}

impl std::fmt::Debug for TokenManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenManager")
            .field("app_key", &self.client.app_key())
            .field("last_forced_renewal_ms", &self.last_forced_renewal_ms.load(Ordering::Relaxed))
            .field("grant_blocked_until_ms", &self.grant_blocked_until_ms.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl TokenManager {
    /// Builds the manager; nothing is fetched until the first call.
    pub fn new(
        client: Arc<BkashClient>,
        store: Store,
        clock: Clock,
        metrics: Arc<Metrics>,
        refresh_margin_secs: u64,
        refresh_token_lifetime_secs: u64,
        call_timeout_ms: u64,
    ) -> Self {
        TokenManager {
            client,
            store,
            clock,
            metrics,
            refresh_margin_ms: refresh_margin_secs as i64 * 1000,
            refresh_token_lifetime_ms: refresh_token_lifetime_secs as i64 * 1000,
            cached: RwLock::new(None),
            renewing: Mutex::new(()),
            holder: crate::ids::event_id(),
            call_timeout_ms,
            last_forced_renewal_ms: AtomicI64::new(0),
            grant_blocked_until_ms: AtomicI64::new(0),
        }
    }

    fn store_key(&self) -> String {
        format!("bkash:{}", self.client.app_key())
    }

    fn usable(&self, t: &StoredToken, now: i64) -> bool {
        t.expires_at - self.refresh_margin_ms > now
    }

    /// The current id_token, renewing it first if it is about to expire.
    ///
    /// # Errors
    /// [`TokenError`] when neither refresh nor grant worked.
    pub async fn id_token(&self) -> Result<SecretString, TokenError> {
        let now = self.clock.now_ms();
        if let Some(t) = self.cached.read().await.as_ref()
            && self.usable(t, now)
        {
            return Ok(t.id_token.clone());
        }
        let _single_flight = self.renewing.lock().await;
        let now = self.clock.now_ms();
        // Another caller (or, through the store, another instance) may have renewed while we waited.
        if let Some(t) = self.cached.read().await.as_ref()
            && self.usable(t, now)
        {
            return Ok(t.id_token.clone());
        }
        if let Some(t) = self.stored_usable(now).await? {
            return Ok(t);
        }
        // Only one instance renews; the others wait for its token to appear in the store.
        let lease = self.store_key();
        let deadline = self.clock.now_ms() + token_wait_ms(self.call_timeout_ms);
        let lease_ms = i64::try_from(self.call_timeout_ms).unwrap_or(30_000) + LEASE_MARGIN_MS;
        loop {
            let now = self.clock.now_ms();
            if self.store.try_lease(&lease, &self.holder, now, now + lease_ms).await? {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            if let Some(t) = self.stored_usable(self.clock.now_ms()).await? {
                return Ok(t);
            }
            if now > deadline {
                return Err(TokenError::Busy);
            }
        }
        let result = async {
            let now = self.clock.now_ms();
            if let Some(t) = self.stored_usable(now).await? {
                return Ok(t);
            }
            let stored = self.store.token(&self.store_key()).await?;
            let renewed = self.renew(stored.as_ref(), now).await?;
            let token = renewed.id_token.clone();
            *self.cached.write().await = Some(renewed);
            Ok(token)
        }
        .await;
        if let Err(e) = self.store.release_lease(&lease, &self.holder).await {
            tracing::warn!(error = %e, "could not release the token lease; it expires by itself");
        }
        result
    }

    /// The stored token if it is still usable (another instance may have renewed it); caches it.
    async fn stored_usable(&self, now: i64) -> Result<Option<SecretString>, TokenError> {
        match self.store.token(&self.store_key()).await? {
            Some(t) if self.usable(&t, now) => {
                let token = t.id_token.clone();
                *self.cached.write().await = Some(t);
                Ok(Some(token))
            }
            _ => Ok(None),
        }
    }

    /// Forgets `rejected` after bKash's gateway refused it, so the next call renews; returns whether it did.
    /// Within [`MIN_RENEWAL_INTERVAL_MS`] of the last renewal a refusal caused, a token that has not expired is
    /// kept: a gateway that refuses fresh tokens is not cured by more of them, and each would spend one of
    /// bKash's few grants.
    pub async fn invalidate(&self, rejected: &str) -> bool {
        let now = self.clock.now_ms();
        let mut cached = self.cached.write().await;
        let Some(t) = cached.as_mut().filter(|t| t.id_token.expose_secret() == rejected) else {
            // Already renewed by another caller: the retry uses the new token.
            return true;
        };
        let since = now - self.last_forced_renewal_ms.load(Ordering::SeqCst);
        if t.expires_at > now && since < MIN_RENEWAL_INTERVAL_MS {
            self.metrics.token_renewal_suppressed();
            tracing::warn!(
                renewed_secs_ago = since / 1000,
                "bKash refused the id_token again soon after a renewal; not renewing again within 5 minutes \
                 (check the endpoint URLs, the credentials' permissions and any WAF)"
            );
            return false;
        }
        self.last_forced_renewal_ms.store(now, Ordering::SeqCst);
        t.expires_at = 0;
        let _ = self.store.save_token(&self.store_key(), t, now).await;
        true
    }

    /// Until when bKash refuses grants (Unix ms), if it does now.
    pub fn grant_blocked_until(&self) -> Option<i64> {
        let until = self.grant_blocked_until_ms.load(Ordering::SeqCst);
        (until > self.clock.now_ms()).then_some(until)
    }

    fn blocked_error(&self, until: i64) -> TokenError {
        let minutes = ((until - self.clock.now_ms()) as f64 / 60_000.0).ceil().max(1.0) as i64;
        TokenError::GrantBlocked { minutes }
    }

    async fn renew(&self, stored: Option<&StoredToken>, now: i64) -> Result<StoredToken, TokenError> {
        if let Some(old) = stored
            && old.refresh_expires_at - REFRESH_TOKEN_SAFETY_MS > now
        {
            match self.client.refresh(&old.refresh_token).await {
                Ok(r) => {
                    self.metrics.token_refreshed();
                    tracing::info!("bkash id_token refreshed");
                    // bKash keeps the refresh_token's original expiry across refreshes.
                    let t = self.to_stored(&r, now, Some(old.refresh_expires_at));
                    self.store.save_token(&self.store_key(), &t, now).await?;
                    return Ok(t);
                }
                Err(e) => tracing::warn!(error = %e, "bkash refresh failed; granting a new token"),
            }
        }
        if let Some(until) = self.grant_blocked_until() {
            return Err(self.blocked_error(until));
        }
        let r = match self.client.grant().await {
            Ok(r) => r,
            Err(e) if e.is_rate_limited() => {
                let until = now + GRANT_BLOCK_MS;
                self.grant_blocked_until_ms.store(until, Ordering::SeqCst);
                self.metrics.grant_blocked();
                tracing::error!(
                    blocked_for_secs = GRANT_BLOCK_MS / 1000,
                    "bKash refused a token grant with HTTP 429 (rate limit); no grant will be tried until the \
                     block ends and bKash payments are unavailable meanwhile"
                );
                return Err(self.blocked_error(until));
            }
            Err(e) => return Err(e.into()),
        };
        self.metrics.token_granted();
        tracing::info!("bkash id_token granted");
        let t = self.to_stored(&r, now, None);
        self.store.save_token(&self.store_key(), &t, now).await?;
        Ok(t)
    }

    fn to_stored(&self, r: &TokenResponse, now: i64, refresh_expires_at: Option<i64>) -> StoredToken {
        StoredToken {
            id_token: r.id_token.clone(),
            refresh_token: r.refresh_token.clone(),
            expires_at: now + r.expires_in_secs() * 1000,
            refresh_expires_at: refresh_expires_at.unwrap_or(now + self.refresh_token_lifetime_ms),
        }
    }
}
