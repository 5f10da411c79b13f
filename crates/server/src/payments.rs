//! The payment core: the one place that decides what a provider's answer does to an attempt and its session.
//!
//! Every state change goes through [`AppState::change`], which writes the attempt's conditional move, its effect
//! on the session (claim, release, pay), its audit event and its outbox webhook in one transaction before
//! anything is acted on, then wakes the live streams and the webhook deliverer. The use cases (`attempts`,
//! `reconciler`, `refunds`) reach providers only through `providers::Provider`, whose answers are outcomes
//! settled here:
//!
//! - a success is settled by [`AppState::settle_success`]: it pays the session when the session is still
//!   unpaid (also when the attempt had been closed: a *late success*), and otherwise puts the attempt in
//!   `review` with a `payment.needs_review` webhook (and, where configured, an automatic refund of a bKash
//!   duplicate): money that moved is never dropped;
//! - a failure is final only when the provider declined definitively; anything else is asked again.
//!
//! The money rules this module holds are listed in the README ("Money rules").

use crate::error::AppError;
use crate::state::AppState;
use crate::store::{AttemptPatch, AttemptRow, AttemptState, Begin, Change, SessionEffect, SessionRow, UNSETTLED};
use crate::webhooks;
use deshpay_api::{Money, SessionStatus};

/// What the provider confirmed for a paid attempt.
#[derive(Debug, Clone)]
pub struct Confirmed {
    /// The provider's transaction id.
    pub trx_id: String,
    /// The amount the provider says was paid (`None`: it did not say, which never counts as a match).
    pub amount: Option<Money>,
    /// The payer, already masked.
    pub payer: Option<String>,
    /// Whether the provider's order reference (bKash merchantInvoiceNumber) is ours, where it gives one.
    pub reference_matches: bool,
}

/// Where a settled success ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// The session is paid by this attempt (now or before).
    Paid,
    /// The money moved but needs the merchant: the session was paid by another attempt, or the amount or
    /// reference does not match.
    Review,
}

impl AppState {
    /// Applies a change (see [`crate::store::Store::apply`]) and, when it happened, tells the live streams and the
    /// webhook deliverer and counts it. Returns whether it happened.
    ///
    /// # Errors
    /// Store errors.
    pub async fn change(&self, c: Change<'_>) -> Result<bool, AppError> {
        let now = self.clock.now_ms();
        if !self.store.apply(&c, now).await? {
            return Ok(false);
        }
        if c.webhook.is_some() {
            self.wake_webhooks();
        }
        let outcome = if c.to == AttemptState::Completed { "succeeded" } else { c.to.as_str() };
        self.metrics.attempt(c.attempt.method.as_str(), outcome);
        self.changed(&c.attempt.session_id);
        Ok(true)
    }

    /// A plain move with an audit event and no session effect.
    ///
    /// # Errors
    /// Store errors.
    pub async fn move_attempt(
        &self,
        attempt: &AttemptRow,
        from: &[AttemptState],
        to: AttemptState,
        patch: AttemptPatch,
        detail: impl Into<String>,
    ) -> Result<bool, AppError> {
        let event = event_kind(to);
        let session = if to.is_in_flight() { SessionEffect::None } else { SessionEffect::Release };
        self.change(Change { attempt, from, to, patch, session, event, detail: detail.into(), webhook: None }).await
    }

    /// Starts a new attempt on a session (see [`crate::store::Store::begin_attempt`]).
    ///
    /// # Errors
    /// Store errors.
    pub async fn begin(&self, attempt: &AttemptRow) -> Result<Begin, AppError> {
        let begun = self.store.begin_attempt(attempt, self.clock.now_ms()).await?;
        if let Begin::Started(superseded) = &begun {
            if !superseded.is_empty() {
                tracing::info!(attempt = %attempt.id, superseded = superseded.len(), "earlier attempts superseded");
            }
            self.metrics.attempt(attempt.method.as_str(), "started");
            self.changed(&attempt.session_id);
        }
        Ok(begun)
    }

    /// Settles a success the provider confirmed (Execute, Query, or a verified notification bound to our
    /// merchant and to a provider id we recorded). Browser signals never reach this.
    ///
    /// # Errors
    /// Store errors.
    pub async fn settle_success(
        &self,
        attempt: &AttemptRow,
        paid: Confirmed,
        source: &str,
    ) -> Result<Settled, AppError> {
        let Some(current) = self.store.attempt(&attempt.id).await? else {
            return Err(AppError::internal(anyhow::anyhow!("attempt {} vanished", attempt.id)));
        };
        match current.state {
            AttemptState::Completed => return Ok(Settled::Paid),
            AttemptState::Review => return Ok(Settled::Review),
            _ => {}
        }
        let patch = AttemptPatch {
            trx_id: Some(paid.trx_id.clone()),
            payer: paid.payer.clone(),
            next_check_at: Some(None),
            ..Default::default()
        };
        if paid.amount != Some(current.amount) || !paid.reference_matches {
            tracing::error!(attempt = %current.id, amount = ?paid.amount.map(|m| m.to_string()), "the provider confirmed a payment that does not match");
            let why = format!(
                "paid {} where {} was due, or for another order: needs review",
                paid.amount.map_or_else(|| "an unknown amount".to_owned(), |m| m.to_string()),
                current.amount
            );
            self.review(&current, patch, &why, &paid.trx_id, false).await?;
            return Ok(Settled::Review);
        }
        let late = !current.state.is_in_flight();
        let webhook = webhooks::session_paid(self, &current, Some(&paid.trx_id), late);
        let paid_now = self
            .change(Change {
                attempt: &current,
                from: &UNSETTLED,
                to: AttemptState::Completed,
                patch: AttemptPatch { late, ..patch.clone() },
                session: SessionEffect::Pay,
                event: if late { "attempt.late_success" } else { "attempt.completed" },
                detail: format!("{source}: {}", paid.trx_id),
                webhook,
            })
            .await?;
        if paid_now {
            if late {
                tracing::warn!(attempt = %current.id, from = current.state.as_str(), "late success paid the session");
            }
            tracing::info!(attempt = %current.id, trx_id = %paid.trx_id, source, "payment completed");
            return Ok(Settled::Paid);
        }
        // A concurrent settle of this same attempt may have won.
        if let Some(now) = self.store.attempt(&current.id).await? {
            match now.state {
                AttemptState::Completed => return Ok(Settled::Paid),
                AttemptState::Review => return Ok(Settled::Review),
                _ => {}
            }
        }
        let why = "a second payment for a session paid by another attempt (or by another session of its invoice)";
        self.review(&current, patch, why, &paid.trx_id, true).await?;
        Ok(Settled::Review)
    }

    /// Puts an attempt whose money moved into `review`: visible in the merchant API, announced by a signed
    /// `payment.needs_review` webhook, counted; a duplicate bKash payment is refunded at once where configured.
    async fn review(
        &self,
        attempt: &AttemptRow,
        patch: AttemptPatch,
        why: &str,
        trx_id: &str,
        duplicate: bool,
    ) -> Result<(), AppError> {
        let webhook = webhooks::needs_review(self, attempt, Some(trx_id), why);
        let moved = self
            .change(Change {
                attempt,
                from: &UNSETTLED,
                to: AttemptState::Review,
                patch: AttemptPatch { failure_message: Some(why.to_owned()), ..patch },
                session: SessionEffect::Release,
                event: "attempt.review",
                detail: format!("{trx_id}: {why}"),
                webhook,
            })
            .await?;
        if !moved {
            return Ok(());
        }
        tracing::error!(attempt = %attempt.id, trx_id, why, "payment needs review");
        let auto_refund = self.settings.payments.auto_refund_duplicates;
        let refundable = self.providers.get(attempt.method).is_some_and(|p| p.refunds());
        if duplicate && auto_refund && refundable {
            let Some(reviewed) = self.store.attempt(&attempt.id).await? else { return Ok(()) };
            let session = self.load_session(&attempt.session_id).await?;
            if let Err(e) = self.refund_duplicate(&session, &reviewed).await {
                tracing::error!(attempt = %attempt.id, error = ?e, "automatic refund of a duplicate failed");
            }
        }
        Ok(())
    }

    /// Expires a session past its expiry (lazily, when it is read), with its waiting bKash attempts.
    ///
    /// # Errors
    /// Store errors.
    pub async fn expire_if_due(&self, row: &mut SessionRow) -> Result<(), AppError> {
        let now = self.clock.now_ms();
        if row.status != SessionStatus::Open || row.expires_at > now {
            return Ok(());
        }
        let webhook = webhooks::session_expired(self, row);
        if self.store.expire_session(&row.id, webhook.as_ref(), now).await? {
            if webhook.is_some() {
                self.wake_webhooks();
            }
            self.changed(&row.id);
            row.status = SessionStatus::Expired;
        }
        Ok(())
    }
}

/// The audit event kind of a move to `to`.
fn event_kind(to: AttemptState) -> &'static str {
    match to {
        AttemptState::Creating => "attempt.creating",
        AttemptState::Created => "attempt.created",
        AttemptState::Executing => "attempt.executing",
        AttemptState::Completed => "attempt.completed",
        AttemptState::Failed => "attempt.failed",
        AttemptState::Cancelled => "attempt.cancelled",
        AttemptState::CreateFailed => "attempt.create_failed",
        AttemptState::Superseded => "attempt.superseded",
        AttemptState::Review => "attempt.review",
        AttemptState::Expired => "attempt.expired",
    }
}
