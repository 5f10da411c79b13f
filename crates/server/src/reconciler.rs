//! The reconciler: one pass over what callbacks, notifications and crashes left open, for every provider through
//! the same seam. Redirect-flow attempts stuck in `executing` are confirmed (never sent) or synced (sent);
//! their lost creates are closed; those failed after a confirm in doubt are re-checked once. Push-flow attempts
//! are synced on their provider's back-off schedule and their lost creates looked up by our reference. Then
//! payouts and pending refunds. A failing row is logged and skipped; a pass stops after [`PASS_LIMIT_MS`].

use crate::attempts::{Doubt, MAX_CHECKS, RECHECK_AFTER_MS};
use crate::error::AppError;
use crate::providers::{Flow, Outcome, Provider};
use crate::state::AppState;
use crate::store::{AttemptPatch, AttemptRow, AttemptState};

/// Longest reconciler pass; the rest waits for the next pass.
const PASS_LIMIT_MS: i64 = 20_000;

impl AppState {
    /// One pass of the reconciler. Returns how many records it looked at.
    ///
    /// # Errors
    /// Store errors of the queries that list the work.
    pub async fn reconcile_once(&self) -> Result<usize, AppError> {
        let started = self.clock.now_ms();
        let over = || self.clock.now_ms() - started > PASS_LIMIT_MS;
        let now = self.clock.now_ms();
        let stale = now - self.stale_after_ms();
        let mut seen = 0;
        for attempt in self.store.attempts_in(&[AttemptState::Executing], stale, 100).await? {
            if over() {
                break;
            }
            let redirect = self.providers.get(attempt.method).is_some_and(|p| p.flow() == Flow::Redirect);
            if !redirect || !self.lease(&attempt).await {
                continue;
            }
            seen += 1;
            tracing::info!(attempt = %attempt.id, "reconciling an attempt stuck in executing");
            let result = match self.load_session(&attempt.session_id).await {
                Ok(_) if attempt.execute_started_at.is_none() => self.confirm_claimed(&attempt).await,
                Ok(_) => self.resolve_in_doubt(&attempt, Doubt::AfterConfirm).await,
                Err(e) => Err(e.into()),
            };
            if let Err(e) = result {
                tracing::error!(attempt = %attempt.id, error = %e.message, "reconcile failed; skipped");
            }
        }
        let providers: Vec<Provider<'_>> = self.providers.all().collect();
        for provider in providers.iter().copied().filter(|p| p.flow() == Flow::Redirect) {
            let method = provider.method();
            // Creates whose answer never came back: nothing at the provider can take money without our confirm.
            for attempt in self.store.method_attempts_in(method, &[AttemptState::Creating], stale, 100).await? {
                seen += 1;
                let patch =
                    AttemptPatch { failure_message: Some("the provider did not answer".into()), ..Default::default() };
                if let Err(e) = self
                    .move_attempt(&attempt, &[AttemptState::Creating], AttemptState::CreateFailed, patch, "reconciler")
                    .await
                {
                    tracing::error!(attempt = %attempt.id, error = %e.message, "reconcile failed; skipped");
                }
            }
            // The one later re-check of attempts failed by a sync after a confirm in doubt.
            for attempt in self.store.checks_due(method, &[AttemptState::Failed], now, 100).await? {
                if over() {
                    break;
                }
                seen += 1;
                if let Err(e) = self.recheck_failed(provider, &attempt).await {
                    tracing::error!(attempt = %attempt.id, error = %e.message, "re-check failed; skipped");
                }
            }
        }
        if !over() {
            for provider in providers.iter().copied().filter(|p| p.flow() == Flow::Push) {
                seen += self.poll_once(provider).await?;
            }
            seen += self.poll_payouts_once().await?;
        }
        for refund in self.store.pending_refunds(stale, 100).await? {
            if over() {
                break;
            }
            seen += 1;
            if let Err(e) = self.settle_pending_refund(&refund).await {
                tracing::error!(refund = %refund.id, error = %e.message, "refund reconcile failed; skipped");
            }
        }
        Ok(seen)
    }

    /// How long an attempt must be quiet before the reconciler takes it: beyond the longest token wait plus two
    /// provider timeouts, so that it never races a live callback that is still waiting for bKash.
    fn stale_after_ms(&self) -> i64 {
        let configured = i64::try_from(self.settings.reconciler.stale_after_secs).unwrap_or(i64::MAX / 2) * 1000;
        let timeout = self.settings.bkash.timeout_ms;
        let floor =
            2 * i64::try_from(timeout).unwrap_or(30_000) + crate::providers::bkash::token::token_wait_ms(timeout);
        configured.max(floor)
    }

    async fn lease(&self, attempt: &AttemptRow) -> bool {
        let now = self.clock.now_ms();
        let until = now + self.stale_after_ms();
        self.store.lease_attempt(&attempt.id, now, until).await.unwrap_or_else(|e| {
            tracing::error!(attempt = %attempt.id, error = %e, "could not lease an attempt");
            false
        })
    }

    /// Asks the provider once more about an attempt failed after a confirm in doubt; a paid answer is a late
    /// success (or a review when the session was paid meanwhile).
    async fn recheck_failed(&self, provider: Provider<'_>, attempt: &AttemptRow) -> Result<(), AppError> {
        if !self.lease(attempt).await {
            return Ok(());
        }
        match provider.sync(attempt).await {
            outcome @ Outcome::Paid(_) => {
                self.apply_outcome(attempt, outcome, "re-check").await?;
            }
            Outcome::NoAnswer(e) | Outcome::Unknown(e) => {
                tracing::warn!(attempt = %attempt.id, error = %e, "re-check query failed; trying later");
                let next = (attempt.checks < MAX_CHECKS).then(|| self.clock.now_ms() + RECHECK_AFTER_MS);
                self.store.schedule_check(&attempt.id, next, self.clock.now_ms()).await?;
            }
            _ => self.store.schedule_check(&attempt.id, None, self.clock.now_ms()).await?,
        }
        Ok(())
    }

    /// The push-flow poller: syncs a provider's open attempts on its back-off schedule (notifications come
    /// first) and looks up creates whose answer was lost by our own reference. A failing row is skipped.
    async fn poll_once(&self, provider: Provider<'_>) -> Result<usize, AppError> {
        let method = provider.method();
        let now = self.clock.now_ms();
        let mut seen = 0;
        let open = [AttemptState::Created, AttemptState::Executing];
        for attempt in self.store.checks_due(method, &open, now, 100).await? {
            seen += 1;
            if attempt.provider_ref.is_none() {
                continue;
            }
            let next = provider.next_check(&attempt, self.clock.now_ms());
            match provider.sync(&attempt).await {
                Outcome::NoAnswer(e) => tracing::warn!(attempt = %attempt.id, error = %e, "status query failed"),
                outcome => {
                    if let Err(e) = self.apply_outcome(&attempt, outcome, "query").await {
                        tracing::error!(attempt = %attempt.id, error = %e.message, "applying a query failed; skipped");
                    }
                }
            }
            if self.store.attempt(&attempt.id).await?.is_some_and(|a| a.state.is_in_flight()) {
                self.store.schedule_check(&attempt.id, next, self.clock.now_ms()).await?;
            }
        }
        for attempt in self.store.checks_due(method, &[AttemptState::Creating], now, 100).await? {
            seen += 1;
            let next = provider.next_check(&attempt, self.clock.now_ms());
            if let Err(e) = self.adopt_lost(&attempt, None).await {
                tracing::error!(attempt = %attempt.id, error = %e.message, "lookup by our reference failed; skipped");
            }
            if self.store.attempt(&attempt.id).await?.is_some_and(|a| a.state == AttemptState::Creating) {
                self.store.schedule_check(&attempt.id, next, self.clock.now_ms()).await?;
            }
        }
        Ok(seen)
    }
}
