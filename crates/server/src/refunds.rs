//! Refunds of paid attempts, through the provider seam, and bKash's transaction search (a merchant operation).
//!
//! A refund row is written `pending` within the payment's amount before the provider is called; only a
//! definitive decline fails it; anything else is settled by the provider's refund status, never retried blindly,
//! and a refund without evidence stays pending (money rule 5).

use crate::error::AppError;
use crate::ids::{self, mask};
use crate::providers::bkash::codes;
use crate::providers::bkash::transformers::parse_amount;
use crate::providers::{ProviderFailure, RefundAnswer};
use crate::sessions::{SessionError, refund_view};
use crate::state::AppState;
use crate::store::{AttemptRow, RefundRow, SessionRow};
use crate::webhooks;
use deshpay_api::{
    BkashTransaction, Currency, Method, Money, Refund, RefundRequest, RefundStatus, SessionId, SessionStatus,
};

/// Why a refund was not made.
#[derive(Debug)]
pub enum RefundError {
    /// The session is unknown.
    Session(SessionError),
    /// The session has no completed payment.
    NoPayment,
    /// The payment's provider does not refund.
    NotRefundable,
    /// The amount is not a positive amount in the session's currency.
    InvalidAmount(String),
    /// Another field is wrong.
    Invalid(&'static str),
    /// The refund would exceed what is left of the payment.
    ExceedsPayment(String),
    /// The provider refused it definitively, with its reason (the refund is recorded as failed).
    Declined(String),
    /// Our store failed.
    Internal(AppError),
}

/// Why a search found nothing.
#[derive(Debug)]
pub enum SearchError {
    /// The id is not a bKash trxID.
    Invalid,
    /// bKash knows no such transaction (its message).
    NotFound(String),
    /// bKash could not be asked, or answered something unreadable.
    Provider(ProviderFailure),
}

crate::error::internal_from!(RefundError);

impl From<SessionError> for RefundError {
    fn from(e: SessionError) -> Self {
        RefundError::Session(e)
    }
}

impl AppState {
    /// Refunds part or all of a paid session. `request_key` is the merchant's Idempotency-Key: a retry whose
    /// first request died finds the refund that request made instead of refunding again. The answer is the
    /// refund as it stands (completed, pending, or failed).
    ///
    /// # Errors
    /// A [`RefundError`].
    #[tracing::instrument(skip_all, fields(session = %id))]
    pub async fn refund(
        &self,
        id: &SessionId,
        req: &RefundRequest,
        request_key: Option<&str>,
    ) -> Result<Refund, RefundError> {
        let session = self.load_session(id).await?;
        if let Some(key) = request_key
            && let Some(existing) = self.store.refund_by_request_key(key).await?
        {
            if existing.status == RefundStatus::Pending {
                self.settle_pending_refund(&existing).await?;
            }
            return Ok(self.refund_now(&existing).await?);
        }
        let attempt = match &session.paid_attempt_id {
            Some(a) if session.status == SessionStatus::Paid => self.store.attempt(a).await?,
            _ => None,
        }
        .ok_or(RefundError::NoPayment)?;
        if !self.providers.get(attempt.method).is_some_and(|p| p.refunds()) {
            return Err(RefundError::NotRefundable);
        }
        let amount = Money::parse_positive(&req.amount, session.amount.currency())
            .map_err(|e| RefundError::InvalidAmount(e.to_string()))?;
        let reason = req.reason.clone().unwrap_or_else(|| "Refund".into());
        let sku = req.sku.clone().unwrap_or_else(|| session.invoice.clone());
        if reason.chars().count() > 255 || sku.chars().count() > 255 {
            return Err(RefundError::Invalid("reason and sku must be at most 255 characters"));
        }
        self.refund_attempt(&attempt, amount, &reason, &sku, request_key).await
    }

    /// Refunds a duplicate that went to `review` (money rule 3, `auto_refund_duplicates`).
    ///
    /// # Errors
    /// As [`AppState::refund`].
    pub async fn refund_duplicate(&self, session: &SessionRow, attempt: &AttemptRow) -> Result<(), RefundError> {
        let key = format!("auto-duplicate:{}", attempt.id);
        if self.store.refund_by_request_key(&key).await?.is_some() {
            return Ok(());
        }
        let reason = "Duplicate payment refunded automatically";
        self.refund_attempt(attempt, attempt.amount, reason, &session.invoice, Some(&key)).await.map(|_| ())
    }

    /// The refund itself: a pending row within the attempt's amount first, then the provider.
    async fn refund_attempt(
        &self,
        attempt: &AttemptRow,
        amount: Money,
        reason: &str,
        sku: &str,
        request_key: Option<&str>,
    ) -> Result<Refund, RefundError> {
        let provider = self.provider_of(attempt)?;
        let id = &attempt.session_id;
        if attempt.provider_ref.is_none() || attempt.trx_id.is_none() {
            return Err(AppError::internal(anyhow::anyhow!("paid attempt {} lacks provider ids", attempt.id)).into());
        }
        let now = self.clock.now_ms();
        let row = RefundRow {
            id: ids::refund_id(),
            session_id: id.clone(),
            attempt_id: attempt.id.clone(),
            amount,
            status: RefundStatus::Pending,
            reason: Some(reason.to_owned()),
            sku: Some(sku.to_owned()),
            refund_trx_id: None,
            failure_message: None,
            created_at: now,
        };
        if !self.store.insert_refund_within(&row, attempt.amount.minor(), request_key, now).await? {
            return Err(RefundError::ExceedsPayment(format!(
                "a refund of {amount} would exceed the payment of {} less earlier refunds",
                attempt.amount
            )));
        }
        self.store.add_event(Some(id), Some(&attempt.id), "refund.pending", &amount.to_string(), now).await?;
        let answer = provider.refund(attempt, amount, sku, reason).await;
        let now = self.clock.now_ms();
        match answer {
            RefundAnswer::Done(refund_trx_id) => {
                self.settle_refund(&row, attempt.method, true, Some(&refund_trx_id), None, now).await?;
            }
            RefundAnswer::Declined(message) => {
                self.settle_refund(&row, attempt.method, false, None, Some(&message), now).await?;
                return Err(RefundError::Declined(message));
            }
            RefundAnswer::InDoubt(why) => {
                // The provider may have refunded. Ask its refund status; the reconciler asks again later.
                tracing::warn!(error = %why, "refund answer decides nothing; checking refund status");
                self.settle_pending_refund(&row).await?;
            }
        }
        Ok(self.refund_now(&row).await?)
    }

    /// The refund's current row.
    async fn refund_now(&self, row: &RefundRow) -> Result<Refund, AppError> {
        let refund = self
            .store
            .refunds(&row.session_id)
            .await?
            .into_iter()
            .find(|r| r.id == row.id)
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("refund {} vanished", row.id)))?;
        Ok(refund_view(refund))
    }

    /// Settles a pending refund with its webhook in one transaction.
    async fn settle_refund(
        &self,
        row: &RefundRow,
        method: Method,
        succeeded: bool,
        refund_trx_id: Option<&str>,
        failure: Option<&str>,
        now: i64,
    ) -> Result<(), AppError> {
        let webhook = webhooks::refund_settled(self, row, succeeded, refund_trx_id, failure);
        let status = if succeeded { RefundStatus::Completed } else { RefundStatus::Failed };
        if self.store.settle_refund(&row.id, status, refund_trx_id, failure, webhook.as_ref(), now).await? {
            if webhook.is_some() {
                self.wake_webhooks();
            }
            self.store
                .add_event(
                    Some(&row.session_id),
                    Some(&row.attempt_id),
                    if succeeded { "refund.completed" } else { "refund.failed" },
                    refund_trx_id.or(failure).unwrap_or_default(),
                    now,
                )
                .await?;
            self.metrics.refund(method.as_str(), status_name(status));
        }
        Ok(())
    }

    /// Asks the provider's refund status for a pending refund and settles it when the provider shows a refund of
    /// its amount that no other of our refunds has claimed. Without such evidence the refund stays pending
    /// (counted and listed for the merchant): it is never failed on silence, because the money may have gone
    /// back.
    ///
    /// # Errors
    /// Store errors.
    pub async fn settle_pending_refund(&self, refund: &RefundRow) -> Result<(), AppError> {
        let Some(attempt) = self.store.attempt(&refund.attempt_id).await? else { return Ok(()) };
        if attempt.provider_ref.is_none() || attempt.trx_id.is_none() {
            return Ok(());
        }
        let seen = self.provider_of(&attempt)?.refunds_of(&attempt).await;
        let now = self.clock.now_ms();
        self.store.count_refund_check(&refund.id, now).await?;
        let Some(seen) = seen else {
            self.metrics.refund(attempt.method.as_str(), "unconfirmed");
            return Ok(());
        };
        let ours = self.store.refunds(&refund.session_id).await?;
        let claimed: Vec<&str> = ours.iter().filter_map(|r| r.refund_trx_id.as_deref()).collect();
        let found = seen
            .iter()
            .find(|r| !claimed.contains(&r.refund_trx_id.as_str()) && r.completed && r.amount == Some(refund.amount));
        match found {
            Some(found) => {
                self.settle_refund(refund, attempt.method, true, Some(&found.refund_trx_id), None, now).await
            }
            None => {
                self.metrics.refund(attempt.method.as_str(), "unconfirmed");
                Ok(())
            }
        }
    }

    /// bKash Search Transaction.
    ///
    /// # Errors
    /// A [`SearchError`].
    pub async fn search_bkash(&self, trx_id: &str) -> Result<BkashTransaction, SearchError> {
        if trx_id.is_empty() || trx_id.len() > 32 || !trx_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(SearchError::Invalid);
        }
        let r = match self.providers.bkash.search(trx_id).await {
            Ok(r) => r,
            Err(e) => {
                if let Some((code, message)) = e.provider()
                    && codes::not_found(code)
                {
                    return Err(SearchError::NotFound(message.to_owned()));
                }
                return Err(SearchError::Provider(e.failure()));
            }
        };
        let amount = parse_amount(&r.amount)
            .map_err(|e| SearchError::Provider(ProviderFailure::Refused(format!("bKash amount: {e}"))))?;
        Ok(BkashTransaction {
            trx_id: r.trx_id.into_string(),
            status: r.transaction_status,
            amount: amount.to_decimal(),
            currency: Currency::Bdt,
            customer: r.customer_msisdn.as_deref().map(mask),
            transaction_type: r.transaction_type,
            initiation_time: r.initiation_time,
            completed_time: r.completed_time,
        })
    }
}

fn status_name(status: RefundStatus) -> &'static str {
    match status {
        RefundStatus::Pending => "pending",
        RefundStatus::Completed => "completed",
        RefundStatus::Failed => "failed",
    }
}
