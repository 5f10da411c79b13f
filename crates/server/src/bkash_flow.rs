//! The bKash journey on our side: start an attempt (Create Payment), take the callback, Execute exactly once,
//! fall back to Query only when Execute gave no answer, reconcile what a crash left behind, refund and search.
//!
//! Every transition is written to the store before it is acted on: the conditional update
//! `created -> executing` is the single claim that lets exactly one of many duplicate callbacks (or instances)
//! call Execute.

use crate::bkash::{BkashError, ExecuteResponse, QueryResponse, TransactionStatus, parse_amount};
use crate::error::AppError;
use crate::ids::{self, mask};
use crate::sessions::refund_view;
use crate::state::AppState;
use crate::store::{AttemptPatch, AttemptRow, AttemptState, RefundRow, SessionRow};
use crate::token::TokenError;
use crate::webhooks;
use axum::http::StatusCode;
use deshpay_api::{
    BkashTransaction, Currency, ErrorCode, Method, Money, Refund, RefundRequest, RefundStatus, SessionId,
    SessionStatus, StartBkashResponse,
};
use secrecy::{ExposeSecret, SecretString};
use std::future::Future;

/// Codes bKash gives when the payment was already executed: reconcile with Query, never mark failed.
const ALREADY_DONE: [&str; 5] = ["2062", "2117", "2068", "2116", "2119"];

/// Codes meaning "no such transaction" on search.
const NOT_FOUND: [&str; 3] = ["2033", "2077", "2002"];

/// Failure of a bKash call made with the shared token.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No token could be had.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The call itself failed.
    #[error(transparent)]
    Bkash(#[from] BkashError),
}

impl CallError {
    fn no_response(&self) -> bool {
        match self {
            CallError::Token(_) => true,
            CallError::Bkash(e) => e.is_no_response(),
        }
    }

    fn provider(&self) -> Option<(&str, &str)> {
        match self {
            CallError::Bkash(BkashError::Provider { code, message }) => Some((code, message)),
            _ => None,
        }
    }
}

fn provider_app_error(e: &CallError) -> AppError {
    if let CallError::Token(blocked @ TokenError::GrantBlocked { .. }) = e {
        return AppError::new(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::ProviderUnavailable, blocked.to_string());
    }
    match e.provider() {
        Some((_, message)) => AppError::new(StatusCode::BAD_GATEWAY, ErrorCode::ProviderError, message.to_owned()),
        None => AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::ProviderUnavailable,
            "bKash did not answer in time; nothing was charged, please try again",
        ),
    }
}

/// How a callback ended, for the redirect back to the shop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Paid.
    Paid,
    /// Failed.
    Failed,
    /// Cancelled by the customer.
    Cancelled,
    /// Still being confirmed.
    Pending,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Paid => "paid",
            Outcome::Failed => "failed",
            Outcome::Cancelled => "cancelled",
            Outcome::Pending => "pending",
        }
    }
}

fn outcome_of(state: AttemptState) -> Outcome {
    match state {
        AttemptState::Completed => Outcome::Paid,
        AttemptState::Cancelled => Outcome::Cancelled,
        AttemptState::Creating | AttemptState::Created | AttemptState::Executing => Outcome::Pending,
        _ => Outcome::Failed,
    }
}

/// Appends `deshpay_session` and `deshpay_status` to the merchant's return URL.
pub fn return_url_for(session: &SessionRow, outcome: Outcome) -> String {
    match url::Url::parse(&session.return_url) {
        Ok(mut u) => {
            u.query_pairs_mut()
                .append_pair("deshpay_session", session.id.as_str())
                .append_pair("deshpay_status", outcome.as_str());
            u.to_string()
        }
        Err(_) => session.return_url.clone(),
    }
}

impl AppState {
    /// Runs a bKash call with the shared token; after a gateway 401/403 the token is renewed and the call made
    /// once more (the gateway refused the first one, so bKash never saw it).
    async fn with_token<T, F, Fut>(&self, call: F) -> Result<T, CallError>
    where
        F: Fn(SecretString) -> Fut,
        Fut: Future<Output = Result<T, BkashError>>,
    {
        let token = self.tokens.id_token().await?;
        match call(token.clone()).await {
            Err(e) if e.is_unauthorized() => {
                tracing::warn!("bkash refused the id_token; renewing it");
                if !self.tokens.invalidate(token.expose_secret()).await {
                    return Err(e.into());
                }
                let token = self.tokens.id_token().await?;
                Ok(call(token).await?)
            }
            other => Ok(other?),
        }
    }

    async fn event(&self, a: &AttemptRow, kind: &str, detail: &str) -> Result<(), AppError> {
        self.store.add_event(Some(&a.session_id), Some(&a.id), kind, detail, self.clock.now_ms()).await?;
        Ok(())
    }

    /// Starts a bKash attempt: writes it, calls Create Payment, returns the hosted page URL.
    ///
    /// # Errors
    /// Session state errors (`session_already_paid`, `session_expired`, `payment_in_progress`, ...),
    /// `provider_error` with bKash's message, `provider_unavailable`.
    #[tracing::instrument(skip_all, fields(session = %id))]
    pub async fn start_bkash(&self, id: &SessionId) -> Result<StartBkashResponse, AppError> {
        let session = self.payable_session(id, Method::Bkash).await?;
        if self.store.count_attempts(id, &[AttemptState::Executing]).await? > 0 {
            return Err(AppError::conflict(
                ErrorCode::PaymentInProgress,
                "a payment for this session is being confirmed; wait for its outcome",
            ));
        }
        let now = self.clock.now_ms();
        let attempt = AttemptRow {
            id: ids::attempt_id(),
            session_id: id.clone(),
            method: Method::Bkash,
            state: AttemptState::Creating,
            amount: session.amount,
            provider_ref: None,
            redirect_url: None,
            trx_id: None,
            payer: None,
            failure_code: None,
            failure_message: None,
            execute_started_at: None,
            req_id: None,
            links: None,
            expires_at: None,
            created_at: now,
            updated_at: now,
        };
        self.store.insert_attempt(&attempt).await?;
        self.metrics.attempt("bkash", "started");
        let callback = format!("{}/v1/bkash/callback", self.public_url);
        let created = self
            .with_token(|t| {
                let bkash = self.bkash.clone();
                let callback = callback.clone();
                let invoice = session.invoice.clone();
                async move { bkash.create(&t, session.amount, &invoice, &callback).await }
            })
            .await;
        let created = match created {
            Ok(c) => c,
            Err(e) => {
                let (code, message) = match e.provider() {
                    Some((c, m)) => (Some(c.to_owned()), m.to_owned()),
                    None => (None, "bKash did not answer".to_owned()),
                };
                let patch = AttemptPatch { failure_code: code, failure_message: Some(message), ..Default::default() };
                self.store
                    .transition_attempt(
                        &attempt,
                        &[AttemptState::Creating],
                        AttemptState::CreateFailed,
                        &patch,
                        self.clock.now_ms(),
                    )
                    .await?;
                self.event(&attempt, "attempt.create_failed", &e.to_string()).await?;
                self.metrics.attempt("bkash", "create_failed");
                return Err(provider_app_error(&e));
            }
        };
        let patch = AttemptPatch {
            provider_ref: Some(created.payment_id.clone()),
            redirect_url: Some(created.bkash_url.clone()),
            ..Default::default()
        };
        self.store
            .transition_attempt(&attempt, &[AttemptState::Creating], AttemptState::Created, &patch, self.clock.now_ms())
            .await?;
        self.event(&attempt, "attempt.created", &created.payment_id).await?;
        tracing::info!(attempt = %attempt.id, payment_id = %created.payment_id, "bkash payment created");
        Ok(StartBkashResponse { attempt_id: attempt.id, redirect_url: created.bkash_url })
    }

    /// Handles bKash's redirect to our callback URL and returns where to send the browser.
    ///
    /// # Errors
    /// `payment_not_found` for an unknown paymentID, `invalid_request` for an unknown status.
    #[tracing::instrument(skip_all, fields(payment_id = payment_id, status = status))]
    pub async fn bkash_callback(&self, payment_id: &str, status: &str) -> Result<String, AppError> {
        let attempt = self
            .store
            .attempt_by_provider_ref(Method::Bkash, payment_id)
            .await?
            .ok_or_else(|| AppError::not_found(ErrorCode::PaymentNotFound, "unknown bKash paymentID"))?;
        let now = self.clock.now_ms();
        let outcome = match status {
            "success" => self.claim_and_execute(&attempt).await?,
            "failure" | "cancel" => {
                let (to, message, outcome) = if status == "cancel" {
                    (AttemptState::Cancelled, "Payment cancelled", Outcome::Cancelled)
                } else {
                    (AttemptState::Failed, "Payment failed", Outcome::Failed)
                };
                let patch = AttemptPatch { failure_message: Some(message.into()), ..Default::default() };
                if self.store.transition_attempt(&attempt, &[AttemptState::Created], to, &patch, now).await? {
                    self.event(&attempt, &format!("attempt.{}", to.as_str()), "callback").await?;
                    self.metrics.attempt("bkash", to.as_str());
                    outcome
                } else {
                    self.current_outcome(&attempt).await?
                }
            }
            _ => {
                return Err(AppError::bad_request(
                    ErrorCode::InvalidRequest,
                    "status must be success, failure or cancel",
                ));
            }
        };
        let session = self.load_session(&attempt.session_id).await?;
        Ok(return_url_for(&session, outcome))
    }

    async fn current_outcome(&self, attempt: &AttemptRow) -> Result<Outcome, AppError> {
        let now = self.store.attempt(&attempt.id).await?.map_or(attempt.state, |a| a.state);
        Ok(outcome_of(now))
    }

    /// The one place that claims an attempt for Execute. Duplicate callbacks lose the claim and just report the
    /// current state.
    async fn claim_and_execute(&self, attempt: &AttemptRow) -> Result<Outcome, AppError> {
        let now = self.clock.now_ms();
        let claimed = self
            .store
            .transition_attempt(
                attempt,
                &[AttemptState::Created],
                AttemptState::Executing,
                &AttemptPatch::default(),
                now,
            )
            .await?;
        if !claimed {
            return self.current_outcome(attempt).await;
        }
        self.event(attempt, "attempt.executing", "callback success").await?;
        self.execute_claimed(attempt).await
    }

    /// Executes an attempt this caller has claimed (state `executing`, Execute not yet sent).
    async fn execute_claimed(&self, attempt: &AttemptRow) -> Result<Outcome, AppError> {
        let session = self.load_session(&attempt.session_id).await?;
        if session.status == SessionStatus::Paid || session.status == SessionStatus::Canceled {
            // Money moves only at Execute: not executing means the customer is not charged twice.
            let patch = AttemptPatch {
                failure_message: Some("This order has already been paid.".into()),
                ..Default::default()
            };
            self.store
                .transition_attempt(
                    attempt,
                    &[AttemptState::Executing],
                    AttemptState::Superseded,
                    &patch,
                    self.clock.now_ms(),
                )
                .await?;
            self.event(attempt, "attempt.superseded", session.status.as_str()).await?;
            return Ok(Outcome::Failed);
        }
        let Some(payment_id) = attempt.provider_ref.clone() else {
            return Err(AppError::internal(anyhow::anyhow!("executing attempt {} has no paymentID", attempt.id)));
        };
        let token = match self.tokens.id_token().await {
            Ok(t) => t,
            Err(e) => {
                // Execute was not sent; the reconciler sends it once a token can be had.
                tracing::error!(error = %e, attempt = %attempt.id, "no bkash token for execute; will retry");
                return Ok(Outcome::Pending);
            }
        };
        // Written before acting: from here on a crash is resolved by Query, never by a second Execute.
        let started = AttemptPatch { execute_started_at: Some(self.clock.now_ms()), ..Default::default() };
        self.store
            .transition_attempt(
                attempt,
                &[AttemptState::Executing],
                AttemptState::Executing,
                &started,
                self.clock.now_ms(),
            )
            .await?;
        let mut result = self.bkash.execute(&token, &payment_id).await;
        if let Err(e) = &result
            && e.is_unauthorized()
        {
            // Refused at the gateway: bKash never saw it, so this is still the first Execute.
            self.tokens.invalidate(token.expose_secret()).await;
            result = match self.tokens.id_token().await {
                Ok(t) => self.bkash.execute(&t, &payment_id).await,
                Err(_) => Err(BkashError::Transport("no token".into())),
            };
        }
        match result {
            Ok(r) if r.transaction_status == TransactionStatus::Completed => self.complete(attempt, &session, &r).await,
            Ok(r) => {
                tracing::warn!(status = ?r.transaction_status, "execute answered without Completed; querying");
                self.resolve_by_query(attempt, &session).await
            }
            Err(BkashError::Provider { code, message }) if ALREADY_DONE.contains(&code.as_str()) => {
                tracing::info!(code, message, "execute says already completed; querying");
                self.resolve_by_query(attempt, &session).await
            }
            Err(BkashError::Provider { code, message }) => {
                let patch = AttemptPatch {
                    failure_code: Some(code.clone()),
                    failure_message: Some(message.clone()),
                    ..Default::default()
                };
                self.store
                    .transition_attempt(
                        attempt,
                        &[AttemptState::Executing],
                        AttemptState::Failed,
                        &patch,
                        self.clock.now_ms(),
                    )
                    .await?;
                self.event(attempt, "attempt.failed", &format!("execute {code}: {message}")).await?;
                self.metrics.attempt("bkash", "failed");
                Ok(Outcome::Failed)
            }
            Err(e) => {
                tracing::warn!(error = %e, "execute gave no response; querying");
                self.event(attempt, "attempt.execute_no_response", &e.to_string()).await?;
                self.resolve_by_query(attempt, &session).await
            }
        }
    }

    /// Settles an executing attempt by Query Payment. Leaves it executing (for the reconciler) when Query does
    /// not answer either.
    async fn resolve_by_query(&self, attempt: &AttemptRow, session: &SessionRow) -> Result<Outcome, AppError> {
        let Some(payment_id) = attempt.provider_ref.clone() else {
            return Ok(Outcome::Pending);
        };
        let queried = self
            .with_token(|t| {
                let bkash = self.bkash.clone();
                let payment_id = payment_id.clone();
                async move { bkash.query(&t, &payment_id).await }
            })
            .await;
        match queried {
            Ok(q) if q.transaction_status == TransactionStatus::Completed => {
                let r = ExecuteResponse::from_query(&payment_id, q);
                self.complete(attempt, session, &r).await
            }
            Ok(q) => {
                // bKash: "Initiated" (or anything not Completed) after Execute means the money was not taken.
                let patch = AttemptPatch {
                    failure_message: Some("bKash could not complete the payment. You were not charged.".into()),
                    ..Default::default()
                };
                self.store
                    .transition_attempt(
                        attempt,
                        &[AttemptState::Executing],
                        AttemptState::Failed,
                        &patch,
                        self.clock.now_ms(),
                    )
                    .await?;
                self.event(attempt, "attempt.failed", &format!("query: {:?}", q.transaction_status)).await?;
                self.metrics.attempt("bkash", "failed");
                Ok(Outcome::Failed)
            }
            Err(e) => {
                tracing::warn!(error = %e, attempt = %attempt.id, "query failed; the reconciler will retry");
                // Touch updated_at so the reconciler waits a full period before the next try.
                self.store
                    .transition_attempt(
                        attempt,
                        &[AttemptState::Executing],
                        AttemptState::Executing,
                        &AttemptPatch::default(),
                        self.clock.now_ms(),
                    )
                    .await?;
                Ok(Outcome::Pending)
            }
        }
    }

    /// Marks the attempt paid after checking amount and invoice against our records.
    async fn complete(
        &self,
        attempt: &AttemptRow,
        session: &SessionRow,
        r: &ExecuteResponse,
    ) -> Result<Outcome, AppError> {
        let now = self.clock.now_ms();
        let amount_ok = r.amount.as_deref().and_then(|a| parse_amount(a).ok()) == Some(attempt.amount);
        let invoice_ok = r.merchant_invoice_number.as_deref().is_none_or(|i| i == session.invoice);
        let patch = AttemptPatch {
            trx_id: r.trx_id.clone(),
            payer: r.customer_msisdn.as_deref().map(mask),
            ..Default::default()
        };
        if !amount_ok || !invoice_ok || r.trx_id.is_none() {
            tracing::error!(attempt = %attempt.id, amount = ?r.amount, "bkash completed a payment that does not match");
            let patch =
                AttemptPatch { failure_message: Some("amount or invoice mismatch; needs review".into()), ..patch };
            self.store
                .transition_attempt(attempt, &[AttemptState::Executing], AttemptState::Review, &patch, now)
                .await?;
            self.event(attempt, "attempt.review", &format!("amount {:?}", r.amount)).await?;
            self.metrics.attempt("bkash", "review");
            return Ok(Outcome::Failed);
        }
        let webhook = crate::webhooks::session_paid(self, attempt, r.trx_id.as_deref());
        if self.store.complete_payment(attempt, &[AttemptState::Executing], &patch, webhook.as_ref(), now).await? {
            self.wake_webhooks();
            self.event(attempt, "attempt.completed", r.trx_id.as_deref().unwrap_or_default()).await?;
            self.metrics.attempt("bkash", "succeeded");
            tracing::info!(attempt = %attempt.id, trx_id = ?r.trx_id, "bkash payment completed");
            return Ok(Outcome::Paid);
        }
        // The session was paid by another attempt while this one executed: money moved twice. Keep the record
        // for the merchant to refund.
        let patch = AttemptPatch {
            failure_message: Some("session already paid by another attempt; refund needed".into()),
            ..patch
        };
        if self.store.transition_attempt(attempt, &[AttemptState::Executing], AttemptState::Review, &patch, now).await?
        {
            tracing::error!(attempt = %attempt.id, "second completed payment for a paid session; needs refund");
            self.event(attempt, "attempt.review", "double payment").await?;
        }
        self.current_outcome(attempt).await
    }

    /// One pass of the reconciler: attempts stuck in `executing` (Execute never sent: send it; sent: Query) and
    /// refunds left pending. Returns how many records it looked at.
    ///
    /// # Errors
    /// Store errors.
    pub async fn reconcile_once(&self) -> Result<usize, AppError> {
        let now = self.clock.now_ms();
        let stale = now - self.settings.reconciler.stale_after_secs as i64 * 1000;
        let stuck = self.store.attempts_in(&[AttemptState::Executing], stale, 100).await?;
        let mut seen = stuck.len();
        for attempt in stuck {
            let session = self.load_session(&attempt.session_id).await?;
            tracing::info!(attempt = %attempt.id, "reconciling an attempt stuck in executing");
            let result = if attempt.execute_started_at.is_none() {
                self.execute_claimed(&attempt).await
            } else {
                self.resolve_by_query(&attempt, &session).await
            };
            if let Err(e) = result {
                tracing::error!(attempt = %attempt.id, error = %e.message, "reconcile failed");
            }
        }
        // Attempts whose create call never came back: nothing at bKash can take money without our callback.
        for attempt in self.store.attempts_in(&[AttemptState::Creating], stale, 100).await? {
            let patch = AttemptPatch { failure_message: Some("bKash did not answer".into()), ..Default::default() };
            self.store
                .transition_attempt(&attempt, &[AttemptState::Creating], AttemptState::CreateFailed, &patch, now)
                .await?;
            seen += 1;
        }
        seen += self.poll_bestin_once().await?;
        for refund in self.store.pending_refunds(stale, 100).await? {
            seen += 1;
            if let Err(e) = self.settle_pending_refund(&refund).await {
                tracing::error!(refund = %refund.id, error = %e.message, "refund reconcile failed");
            }
        }
        Ok(seen)
    }

    /// Refunds part or all of a paid bKash session.
    ///
    /// # Errors
    /// `payment_not_found`, `invalid_amount`, `refund_exceeds_payment`, `refund_failed` (bKash's reason), ...
    #[tracing::instrument(skip_all, fields(session = %id))]
    pub async fn refund(&self, id: &SessionId, req: &RefundRequest) -> Result<(StatusCode, Refund), AppError> {
        let session = self.load_session(id).await?;
        let attempt = match &session.paid_attempt_id {
            Some(a) if session.status == SessionStatus::Paid => self.store.attempt(a).await?,
            _ => None,
        }
        .ok_or_else(|| {
            AppError::conflict(ErrorCode::PaymentNotFound, "this session has no completed payment to refund")
        })?;
        if attempt.method != Method::Bkash {
            return Err(AppError::bad_request(
                ErrorCode::MethodNotAvailable,
                "refunds are available for bKash payments",
            ));
        }
        let amount = Money::parse_positive(&req.amount, session.amount.currency())
            .map_err(|e| AppError::bad_request(ErrorCode::InvalidAmount, e.to_string()))?;
        let reason = req.reason.clone().unwrap_or_else(|| "Refund".into());
        let sku = req.sku.clone().unwrap_or_else(|| session.invoice.clone());
        if reason.chars().count() > 255 || sku.chars().count() > 255 {
            return Err(AppError::bad_request(
                ErrorCode::InvalidRequest,
                "reason and sku must be at most 255 characters",
            ));
        }
        let (Some(payment_id), Some(trx_id)) = (attempt.provider_ref.clone(), attempt.trx_id.clone()) else {
            return Err(AppError::internal(anyhow::anyhow!("paid attempt {} lacks provider ids", attempt.id)));
        };
        let now = self.clock.now_ms();
        let row = RefundRow {
            id: ids::refund_id(),
            session_id: id.clone(),
            attempt_id: attempt.id.clone(),
            amount,
            status: RefundStatus::Pending,
            reason: Some(reason.clone()),
            sku: Some(sku.clone()),
            refund_trx_id: None,
            failure_message: None,
            created_at: now,
        };
        if !self.store.insert_refund_within(&row, session.amount.minor(), now).await? {
            return Err(AppError::conflict(
                ErrorCode::RefundExceedsPayment,
                format!("a refund of {amount} would exceed the payment of {} less earlier refunds", session.amount),
            ));
        }
        self.store.add_event(Some(id), Some(&attempt.id), "refund.pending", &amount.to_string(), now).await?;
        let result = self
            .with_token(|t| {
                let bkash = self.bkash.clone();
                let (payment_id, trx_id, sku, reason) =
                    (payment_id.clone(), trx_id.clone(), sku.clone(), reason.clone());
                async move { bkash.refund(&t, &payment_id, &trx_id, amount, &sku, &reason).await }
            })
            .await;
        let now = self.clock.now_ms();
        let status = match result {
            Ok(record) => {
                let webhook = webhooks::refund_settled(self, &row, true, Some(&record.refund_trx_id), None);
                if self
                    .store
                    .settle_refund(
                        &row.id,
                        RefundStatus::Completed,
                        Some(&record.refund_trx_id),
                        None,
                        webhook.as_ref(),
                        now,
                    )
                    .await?
                {
                    self.wake_webhooks();
                }
                self.store
                    .add_event(Some(id), Some(&attempt.id), "refund.completed", &record.refund_trx_id, now)
                    .await?;
                self.metrics.refund("bkash", "completed");
                StatusCode::CREATED
            }
            Err(e) if !e.no_response() => {
                let message = e.provider().map_or_else(|| e.to_string(), |(_, m)| m.to_owned());
                let webhook = webhooks::refund_settled(self, &row, false, None, Some(&message));
                if self
                    .store
                    .settle_refund(&row.id, RefundStatus::Failed, None, Some(&message), webhook.as_ref(), now)
                    .await?
                {
                    self.wake_webhooks();
                }
                self.store.add_event(Some(id), Some(&attempt.id), "refund.failed", &message, now).await?;
                self.metrics.refund("bkash", "failed");
                return Err(AppError::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::RefundFailed, message));
            }
            Err(e) => {
                // Never retry a refund blindly: ask bKash what happened; the reconciler asks again later.
                tracing::warn!(error = %e, "refund gave no response; checking refund status");
                self.settle_pending_refund(&row).await?;
                StatusCode::ACCEPTED
            }
        };
        let refund = self
            .store
            .refunds(id)
            .await?
            .into_iter()
            .find(|r| r.id == row.id)
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("refund {} vanished", row.id)))?;
        let status = if refund.status == RefundStatus::Completed { StatusCode::CREATED } else { status };
        Ok((status, refund_view(refund)))
    }

    /// Asks bKash's refund status for a pending refund and settles it if bKash shows a matching refund that no
    /// other of our refunds has claimed. Unmatched refunds older than ten minutes are marked failed.
    async fn settle_pending_refund(&self, refund: &RefundRow) -> Result<(), AppError> {
        let Some(attempt) = self.store.attempt(&refund.attempt_id).await? else { return Ok(()) };
        let (Some(payment_id), Some(trx_id)) = (attempt.provider_ref.clone(), attempt.trx_id.clone()) else {
            return Ok(());
        };
        let records = self
            .with_token(|t| {
                let bkash = self.bkash.clone();
                let (payment_id, trx_id) = (payment_id.clone(), trx_id.clone());
                async move { bkash.refund_status(&t, &payment_id, &trx_id).await }
            })
            .await;
        let now = self.clock.now_ms();
        let ours = self.store.refunds(&refund.session_id).await?;
        let claimed: Vec<&str> = ours.iter().filter_map(|r| r.refund_trx_id.as_deref()).collect();
        match records {
            Ok(records) => {
                let found = records.iter().find(|r| {
                    !claimed.contains(&r.refund_trx_id.as_str())
                        && r.amount.as_deref().and_then(|a| parse_amount(a).ok()) == Some(refund.amount)
                });
                if let Some(found) = found {
                    let webhook = webhooks::refund_settled(self, refund, true, Some(&found.refund_trx_id), None);
                    let trx = Some(found.refund_trx_id.as_str());
                    if self
                        .store
                        .settle_refund(&refund.id, RefundStatus::Completed, trx, None, webhook.as_ref(), now)
                        .await?
                    {
                        self.wake_webhooks();
                    }
                    self.metrics.refund("bkash", "completed");
                    return Ok(());
                }
            }
            Err(e) if e.no_response() => return Ok(()),
            Err(_) => {}
        }
        if now - refund.created_at > 10 * 60 * 1000 {
            let message = "bKash has no record of this refund";
            let webhook = webhooks::refund_settled(self, refund, false, None, Some(message));
            if self
                .store
                .settle_refund(&refund.id, RefundStatus::Failed, None, Some(message), webhook.as_ref(), now)
                .await?
            {
                self.wake_webhooks();
            }
            self.metrics.refund("bkash", "failed");
        }
        Ok(())
    }

    /// bKash Search Transaction.
    ///
    /// # Errors
    /// `invalid_request`, `transaction_not_found`, `provider_error`, `provider_unavailable`.
    pub async fn search_bkash(&self, trx_id: &str) -> Result<BkashTransaction, AppError> {
        if trx_id.is_empty() || trx_id.len() > 32 || !trx_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(AppError::bad_request(ErrorCode::InvalidRequest, "trx_id must be letters and digits"));
        }
        let found = self
            .with_token(|t| {
                let bkash = self.bkash.clone();
                let trx_id = trx_id.to_owned();
                async move { bkash.search(&t, &trx_id).await }
            })
            .await;
        let r = match found {
            Ok(r) => r,
            Err(e) => {
                if let Some((code, message)) = e.provider()
                    && NOT_FOUND.contains(&code)
                {
                    return Err(AppError::not_found(ErrorCode::TransactionNotFound, message.to_owned()));
                }
                return Err(provider_app_error(&e));
            }
        };
        let amount = parse_amount(&r.amount).map_err(|e| {
            AppError::new(StatusCode::BAD_GATEWAY, ErrorCode::ProviderError, format!("bKash amount: {e}"))
        })?;
        Ok(BkashTransaction {
            trx_id: r.trx_id,
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

impl ExecuteResponse {
    /// Treats a Completed Query answer like the Execute answer it stands in for.
    fn from_query(payment_id: &str, q: QueryResponse) -> Self {
        ExecuteResponse {
            payment_id: Some(payment_id.to_owned()),
            trx_id: q.trx_id,
            transaction_status: q.transaction_status,
            amount: q.amount,
            merchant_invoice_number: q.merchant_invoice,
            customer_msisdn: q.customer_msisdn,
        }
    }
}
