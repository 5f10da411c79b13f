//! The bKash journey on our side: start an attempt (Create Payment), take the callback, Execute exactly once,
//! fall back to Query only when Execute gave no answer, reconcile what a crash left behind, refund and search.
//!
//! Every transition goes through the payment core (`payments`), written before it is acted on. Exactly one
//! Execute per paymentID: the attempt's `created -> executing` together with the session's
//! `executing_attempt_id` is the claim among callbacks and attempts, and the `execute_started_at` stamp is the
//! claim among callers of Execute (callbacks, reconcilers, instances).

use crate::error::AppError;
use crate::ids::{self, mask};
use crate::payments::{Confirmed, Settled};
use crate::providers::bkash::client::{BkashError, ExecuteResponse, QueryResponse, TransactionStatus, parse_amount};
use crate::providers::bkash::codes::{self as bkash_codes, ExecuteCode};
use crate::providers::bkash::token::TokenError;
use crate::sessions::refund_view;
use crate::state::AppState;
use crate::store::{AttemptPatch, AttemptRow, AttemptState, Begin, Change, RefundRow, SessionEffect, SessionRow};
use crate::webhooks;
use axum::http::StatusCode;
use deshpay_api::{
    BkashTransaction, Currency, ErrorCode, Method, Money, Refund, RefundRequest, RefundStatus, SessionId,
    SessionStatus, StartBkashResponse,
};
use secrecy::{ExposeSecret, SecretString};
use std::future::Future;

/// When an attempt failed by Query after an Execute in doubt is asked about once more.
const RECHECK_AFTER_MS: i64 = 10 * 60 * 1000;

/// Provider checks of one attempt before it is handed to a person (`review`).
const MAX_CHECKS: i64 = 20;

/// Longest reconciler pass; the rest waits for the next pass.
const PASS_LIMIT_MS: i64 = 20_000;

/// Why an attempt is being settled by Query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Doubt {
    /// Execute gave no answer, a status other than Completed, or a code that decides nothing.
    AfterExecute,
    /// Execute answered 2056: the customer may not have approved yet.
    NotApproved,
}

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

/// The widget's error for a failed Create: bKash's own words only for a customer decline; any other provider
/// text (configuration, gateway, system) stays in the logs and the merchant API.
fn start_error(e: &CallError) -> AppError {
    match e.provider() {
        Some((code, _)) if bkash_codes::execute_code(code) != ExecuteCode::Declined => AppError::new(
            StatusCode::BAD_GATEWAY,
            ErrorCode::ProviderError,
            "bKash could not start the payment; nothing was charged. Please try again later.",
        ),
        _ => provider_app_error(e),
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
    /// Money moved but the merchant must check it.
    Review,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Paid => "paid",
            Outcome::Failed => "failed",
            Outcome::Cancelled => "cancelled",
            Outcome::Pending => "pending",
            Outcome::Review => "review",
        }
    }
}

fn outcome_of(state: AttemptState) -> Outcome {
    match state {
        AttemptState::Completed => Outcome::Paid,
        AttemptState::Cancelled => Outcome::Cancelled,
        AttemptState::Creating | AttemptState::Created | AttemptState::Executing => Outcome::Pending,
        AttemptState::Review => Outcome::Review,
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

    /// Starts a bKash attempt: writes it (superseding any earlier waiting bKash attempt of the session), calls
    /// Create Payment, returns the hosted page URL.
    ///
    /// # Errors
    /// Session state errors (`session_already_paid`, `session_expired`, `payment_in_progress`, ...),
    /// `provider_error` with bKash's message, `provider_unavailable`.
    #[tracing::instrument(skip_all, fields(session = %id))]
    pub async fn start_bkash(&self, id: &SessionId) -> Result<StartBkashResponse, AppError> {
        let session = self.payable_session(id, Method::Bkash).await?;
        let attempt =
            AttemptRow::new(ids::attempt_id(), id.clone(), Method::Bkash, session.amount, self.clock.now_ms());
        match self.begin(&attempt).await? {
            Begin::Started(_) => {}
            Begin::Reuse(_) | Begin::Busy => {
                return Err(AppError::conflict(
                    ErrorCode::PaymentInProgress,
                    "another payment for this session is under way; finish or cancel it first",
                ));
            }
            Begin::NotPayable => {
                self.payable_session(id, Method::Bkash).await?;
                return Err(AppError::conflict(
                    ErrorCode::PaymentInProgress,
                    "a payment for this session is being confirmed; wait for its outcome",
                ));
            }
        }
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
                // A paymentID bKash may have made without telling us can never be executed (its callback finds
                // no attempt), so the attempt is closed: no money can move through it.
                let (code, message) = match e.provider() {
                    Some((c, m)) => (Some(c.to_owned()), m.to_owned()),
                    None => (None, "bKash did not answer".to_owned()),
                };
                let patch = AttemptPatch { failure_code: code, failure_message: Some(message), ..Default::default() };
                self.move_attempt(
                    &attempt,
                    &[AttemptState::Creating],
                    AttemptState::CreateFailed,
                    patch,
                    e.to_string(),
                )
                .await?;
                return Err(start_error(&e));
            }
        };
        let patch = AttemptPatch {
            provider_ref: Some(created.payment_id.clone()),
            redirect_url: Some(created.bkash_url.clone()),
            ..Default::default()
        };
        let live = self
            .move_attempt(&attempt, &[AttemptState::Creating], AttemptState::Created, patch, created.payment_id.clone())
            .await?;
        if !live {
            // Superseded (or the session ended) while bKash answered: the link must not reach the customer.
            return Err(AppError::conflict(
                ErrorCode::PaymentInProgress,
                "a newer payment attempt replaced this one; please try again",
            ));
        }
        tracing::info!(attempt = %attempt.id, payment_id = %created.payment_id, "bkash payment created");
        Ok(StartBkashResponse { attempt_id: attempt.id, redirect_url: created.bkash_url })
    }

    /// Handles bKash's redirect to our callback URL and returns where to send the browser. The callback is not
    /// signed: `success` only leads to our own Execute, and `failure`/`cancel` are checked by Query.
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
        let outcome = match status {
            "success" => self.claim_and_execute(&attempt).await?,
            "failure" | "cancel" => self.close_on_callback(&attempt, status == "cancel").await?,
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

    /// A `failure` or `cancel` callback: bKash is asked first, so a forged callback cannot hide a payment; the
    /// attempt is then closed (it is never executed afterwards, so no money can move through it).
    async fn close_on_callback(&self, attempt: &AttemptRow, cancel: bool) -> Result<Outcome, AppError> {
        if attempt.state != AttemptState::Created {
            return self.current_outcome(attempt).await;
        }
        if let Ok(q) = self.query_payment(attempt).await
            && q.transaction_status == TransactionStatus::Completed
        {
            let session = self.load_session(&attempt.session_id).await?;
            return self.settle_bkash(attempt, &session, ExecuteResponse::from_query(q), "query").await;
        }
        let (to, message, outcome) = if cancel {
            (AttemptState::Cancelled, "Payment cancelled", Outcome::Cancelled)
        } else {
            (AttemptState::Failed, "Payment failed", Outcome::Failed)
        };
        let patch = AttemptPatch { failure_message: Some(message.into()), ..Default::default() };
        if self.move_attempt(attempt, &[AttemptState::Created], to, patch, "callback").await? {
            Ok(outcome)
        } else {
            self.current_outcome(attempt).await
        }
    }

    async fn current_outcome(&self, attempt: &AttemptRow) -> Result<Outcome, AppError> {
        let now = self.store.attempt(&attempt.id).await?.map_or(attempt.state, |a| a.state);
        Ok(outcome_of(now))
    }

    /// Claims an attempt for Execute: the attempt's `created -> executing` and the session's
    /// `executing_attempt_id` in one transaction. Losers of the claim never execute: a duplicate callback reports
    /// the current state, and an attempt whose session was paid, claimed by another attempt or has expired is
    /// closed without Execute.
    async fn claim_and_execute(&self, attempt: &AttemptRow) -> Result<Outcome, AppError> {
        let claimed = self
            .change(Change {
                attempt,
                from: &[AttemptState::Created],
                to: AttemptState::Executing,
                patch: AttemptPatch::default(),
                session: SessionEffect::Claim,
                event: "attempt.executing",
                detail: "callback success".into(),
                webhook: None,
            })
            .await?;
        if claimed {
            return self.execute_claimed(attempt).await;
        }
        let current = self.store.attempt(&attempt.id).await?.unwrap_or_else(|| attempt.clone());
        if current.state != AttemptState::Created {
            return Ok(outcome_of(current.state));
        }
        // The attempt is waiting but the session refused the claim.
        let mut session = self.load_session(&attempt.session_id).await?;
        self.expire_if_due(&mut session).await?;
        let (to, message) = match session.status {
            SessionStatus::Open => (AttemptState::Superseded, "Another payment for this order is being confirmed."),
            SessionStatus::Paid => (AttemptState::Superseded, "This order has already been paid."),
            SessionStatus::Expired => (AttemptState::Expired, "The payment session expired"),
            SessionStatus::Canceled => (AttemptState::Superseded, "This order was canceled."),
        };
        let patch = AttemptPatch { failure_message: Some(message.into()), ..Default::default() };
        self.move_attempt(&current, &[AttemptState::Created], to, patch, session.status.as_str()).await?;
        self.current_outcome(attempt).await
    }

    /// Executes an attempt whose claim is held (state `executing`): only the caller that stamps
    /// `execute_started_at` sends Execute; every other caller (a reconciler, another instance) reports pending.
    async fn execute_claimed(&self, attempt: &AttemptRow) -> Result<Outcome, AppError> {
        let session = self.load_session(&attempt.session_id).await?;
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
        // The claim, written before acting: from here on a crash is resolved by Query, never by a second Execute.
        if !self.store.claim_execute(&attempt.id, self.clock.now_ms()).await? {
            return self.current_outcome(attempt).await;
        }
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
            Ok(r) if r.transaction_status == TransactionStatus::Completed => {
                self.settle_bkash(attempt, &session, r, "execute").await
            }
            Ok(r) => {
                tracing::warn!(status = ?r.transaction_status, "execute answered without Completed; querying");
                self.resolve_by_query(attempt, &session, Doubt::AfterExecute).await
            }
            Err(BkashError::Provider { code, message }) => match bkash_codes::execute_code(&code) {
                ExecuteCode::Declined => {
                    let patch = AttemptPatch {
                        failure_code: Some(code.clone()),
                        failure_message: Some(message.clone()),
                        ..Default::default()
                    };
                    self.move_attempt(
                        attempt,
                        &[AttemptState::Executing],
                        AttemptState::Failed,
                        patch,
                        format!("execute {code}: {message}"),
                    )
                    .await?;
                    Ok(Outcome::Failed)
                }
                ExecuteCode::NotApproved => {
                    tracing::warn!(code, message, "execute says the payment is not approved; querying");
                    self.resolve_by_query(attempt, &session, Doubt::NotApproved).await
                }
                ExecuteCode::AlreadyDone | ExecuteCode::InDoubt => {
                    tracing::warn!(code, message, "execute answered a code that decides nothing; querying");
                    self.resolve_by_query(attempt, &session, Doubt::AfterExecute).await
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "execute gave no usable answer; querying");
                self.store
                    .add_event(
                        Some(&attempt.session_id),
                        Some(&attempt.id),
                        "attempt.execute_no_response",
                        &e.to_string(),
                        self.clock.now_ms(),
                    )
                    .await?;
                self.resolve_by_query(attempt, &session, Doubt::AfterExecute).await
            }
        }
    }

    /// Query Payment with the shared token.
    async fn query_payment(&self, attempt: &AttemptRow) -> Result<QueryResponse, CallError> {
        let payment_id = attempt.provider_ref.clone().unwrap_or_default();
        self.with_token(|t| {
            let bkash = self.bkash.clone();
            let payment_id = payment_id.clone();
            async move { bkash.query(&t, &payment_id).await }
        })
        .await
    }

    /// Settles an executing attempt by Query Payment. Leaves it executing (for the reconciler, within its retry
    /// budget) when Query does not answer or answers a status we do not know.
    async fn resolve_by_query(
        &self,
        attempt: &AttemptRow,
        session: &SessionRow,
        doubt: Doubt,
    ) -> Result<Outcome, AppError> {
        let queried = self.query_payment(attempt).await;
        match queried {
            Ok(q) if q.transaction_status == TransactionStatus::Completed => {
                self.settle_bkash(attempt, session, ExecuteResponse::from_query(q), "query").await
            }
            Ok(q) if q.transaction_status == TransactionStatus::Initiated && doubt == Doubt::NotApproved => {
                // Not approved yet: back to waiting, claim released and Execute forgotten, so the customer's own
                // success callback can still execute it once.
                let reopened = self
                    .change(Change {
                        attempt,
                        from: &[AttemptState::Executing],
                        to: AttemptState::Created,
                        patch: AttemptPatch { clear_execute: true, ..Default::default() },
                        session: SessionEffect::Release,
                        event: "attempt.reopened",
                        detail: "execute 2056, query Initiated".into(),
                        webhook: None,
                    })
                    .await?;
                Ok(if reopened { Outcome::Pending } else { self.current_outcome(attempt).await? })
            }
            Ok(q)
                if matches!(
                    q.transaction_status,
                    TransactionStatus::Initiated | TransactionStatus::Failed | TransactionStatus::Cancelled
                ) =>
            {
                // bKash: not Completed after Execute means the money was not taken. One re-check later still
                // catches a payment that completed after all (a late success).
                let patch = AttemptPatch {
                    failure_message: Some("bKash could not complete the payment. You were not charged.".into()),
                    next_check_at: Some(Some(self.clock.now_ms() + RECHECK_AFTER_MS)),
                    count_check: true,
                    ..Default::default()
                };
                let detail = format!("query: {:?}", q.transaction_status);
                self.move_attempt(attempt, &[AttemptState::Executing], AttemptState::Failed, patch, detail).await?;
                self.current_outcome(attempt).await
            }
            other => {
                match &other {
                    Ok(q) => {
                        tracing::warn!(status = ?q.transaction_status, attempt = %attempt.id, "query status unknown; will ask again")
                    }
                    Err(e) => tracing::warn!(error = %e, attempt = %attempt.id, "query failed; will ask again"),
                }
                let checks = self.store.attempt(&attempt.id).await?.map_or(0, |a| a.checks) + 1;
                if checks >= MAX_CHECKS {
                    // The retry budget is spent: a person looks at it (money may have moved).
                    let why = format!("bKash could not confirm the payment after {checks} checks");
                    let webhook = webhooks::needs_review(self, attempt, None, &why);
                    self.change(Change {
                        attempt,
                        from: &[AttemptState::Executing],
                        to: AttemptState::Review,
                        patch: AttemptPatch {
                            failure_message: Some(why.clone()),
                            count_check: true,
                            ..Default::default()
                        },
                        session: SessionEffect::Release,
                        event: "attempt.review",
                        detail: why,
                        webhook,
                    })
                    .await?;
                    return self.current_outcome(attempt).await;
                }
                // Counted, and updated_at touched so the reconciler waits a full period before the next try.
                let patch = AttemptPatch { count_check: true, ..Default::default() };
                self.store
                    .transition_attempt(
                        attempt,
                        &[AttemptState::Executing],
                        AttemptState::Executing,
                        &patch,
                        self.clock.now_ms(),
                    )
                    .await?;
                Ok(Outcome::Pending)
            }
        }
    }

    /// Settles a Completed Execute or Query answer through the core.
    async fn settle_bkash(
        &self,
        attempt: &AttemptRow,
        session: &SessionRow,
        r: ExecuteResponse,
        source: &str,
    ) -> Result<Outcome, AppError> {
        let Some(trx_id) = r.trx_id.clone() else {
            tracing::error!(attempt = %attempt.id, "bKash reported Completed without a trxID; asking again later");
            return Ok(Outcome::Pending);
        };
        let confirmed = Confirmed {
            trx_id,
            amount: r.amount.as_deref().and_then(|a| parse_amount(a).ok()),
            payer: r.customer_msisdn.as_deref().map(mask),
            reference_matches: r.merchant_invoice_number.as_deref().is_none_or(|i| i == session.invoice),
        };
        Ok(match self.settle_success(attempt, confirmed, source).await? {
            Settled::Paid => Outcome::Paid,
            Settled::Review => Outcome::Review,
        })
    }

    /// One pass of the reconciler: bKash attempts stuck in `executing` (Execute never sent: send it; sent:
    /// Query), attempts whose create never answered, the one re-check of attempts failed after an Execute in
    /// doubt, UPI checks and payouts, and pending refunds. A failing row is logged and skipped; a pass stops after
    /// [`PASS_LIMIT_MS`]. Returns how many records it looked at.
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
            if attempt.method != Method::Bkash || !self.lease(&attempt).await {
                continue;
            }
            seen += 1;
            tracing::info!(attempt = %attempt.id, "reconciling an attempt stuck in executing");
            let result = match self.load_session(&attempt.session_id).await {
                Ok(_) if attempt.execute_started_at.is_none() => self.execute_claimed(&attempt).await,
                Ok(session) => self.resolve_by_query(&attempt, &session, Doubt::AfterExecute).await,
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                tracing::error!(attempt = %attempt.id, error = %e.message, "reconcile failed; skipped");
            }
        }
        // Attempts whose create call never came back: nothing at bKash can take money without our Execute.
        for attempt in self.store.method_attempts_in(Method::Bkash, &[AttemptState::Creating], stale, 100).await? {
            seen += 1;
            let patch = AttemptPatch { failure_message: Some("bKash did not answer".into()), ..Default::default() };
            if let Err(e) = self
                .move_attempt(&attempt, &[AttemptState::Creating], AttemptState::CreateFailed, patch, "reconciler")
                .await
            {
                tracing::error!(attempt = %attempt.id, error = %e.message, "reconcile failed; skipped");
            }
        }
        // The one later re-check of attempts failed by Query after an Execute in doubt.
        for attempt in self.store.checks_due(Method::Bkash, &[AttemptState::Failed], now, 100).await? {
            if over() {
                break;
            }
            seen += 1;
            if let Err(e) = self.recheck_failed(&attempt).await {
                tracing::error!(attempt = %attempt.id, error = %e.message, "re-check failed; skipped");
            }
        }
        if !over() {
            seen += self.poll_bestin_once().await?;
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

    /// Asks bKash once more about an attempt failed after an Execute in doubt; a Completed answer is a late
    /// success (or a review when the session was paid meanwhile).
    async fn recheck_failed(&self, attempt: &AttemptRow) -> Result<(), AppError> {
        if !self.lease(attempt).await {
            return Ok(());
        }
        match self.query_payment(attempt).await {
            Ok(q) if q.transaction_status == TransactionStatus::Completed => {
                let session = self.load_session(&attempt.session_id).await?;
                self.settle_bkash(attempt, &session, ExecuteResponse::from_query(q), "re-check").await?;
            }
            Ok(_) => self.store.schedule_check(&attempt.id, None, self.clock.now_ms()).await?,
            Err(e) => {
                tracing::warn!(attempt = %attempt.id, error = %e, "re-check query failed; trying later");
                let next = (attempt.checks < MAX_CHECKS).then(|| self.clock.now_ms() + RECHECK_AFTER_MS);
                self.store.schedule_check(&attempt.id, next, self.clock.now_ms()).await?;
            }
        }
        Ok(())
    }

    /// Refunds part or all of a paid bKash session. `request_key` is the merchant's Idempotency-Key: a retry
    /// whose first request died finds the refund that request made instead of refunding again.
    ///
    /// # Errors
    /// `payment_not_found`, `invalid_amount`, `refund_exceeds_payment`, `refund_failed` (bKash's reason), ...
    #[tracing::instrument(skip_all, fields(session = %id))]
    pub async fn refund(
        &self,
        id: &SessionId,
        req: &RefundRequest,
        request_key: Option<&str>,
    ) -> Result<(StatusCode, Refund), AppError> {
        let session = self.load_session(id).await?;
        if let Some(key) = request_key
            && let Some(existing) = self.store.refund_by_request_key(key).await?
        {
            if existing.status == RefundStatus::Pending {
                self.settle_pending_refund(&existing).await?;
            }
            return self.refund_answer(&existing, StatusCode::ACCEPTED).await;
        }
        let attempt = match &session.paid_attempt_id {
            Some(a) if session.status == SessionStatus::Paid => self.store.attempt(a).await?,
            _ => None,
        }
        .ok_or_else(|| {
            AppError::conflict(ErrorCode::PaymentNotFound, "this session has no completed payment to refund")
                .nothing_done()
        })?;
        if attempt.method != Method::Bkash {
            return Err(AppError::bad_request(
                ErrorCode::MethodNotAvailable,
                "refunds are available for bKash payments",
            )
            .nothing_done());
        }
        let amount = Money::parse_positive(&req.amount, session.amount.currency())
            .map_err(|e| AppError::bad_request(ErrorCode::InvalidAmount, e.to_string()).nothing_done())?;
        let reason = req.reason.clone().unwrap_or_else(|| "Refund".into());
        let sku = req.sku.clone().unwrap_or_else(|| session.invoice.clone());
        if reason.chars().count() > 255 || sku.chars().count() > 255 {
            return Err(AppError::bad_request(
                ErrorCode::InvalidRequest,
                "reason and sku must be at most 255 characters",
            )
            .nothing_done());
        }
        self.refund_attempt(&attempt, amount, &reason, &sku, request_key).await
    }

    /// Refunds a bKash duplicate that went to `review` (money rule 3, `auto_refund_duplicates`).
    ///
    /// # Errors
    /// As [`AppState::refund`].
    pub async fn refund_duplicate(&self, session: &SessionRow, attempt: &AttemptRow) -> Result<(), AppError> {
        let key = format!("auto-duplicate:{}", attempt.id);
        if self.store.refund_by_request_key(&key).await?.is_some() {
            return Ok(());
        }
        let reason = "Duplicate payment refunded automatically";
        self.refund_attempt(attempt, attempt.amount, reason, &session.invoice, Some(&key)).await.map(|_| ())
    }

    /// The refund itself: a pending row within the attempt's amount first, then bKash; only a definitive
    /// decline fails it, anything else is settled by refund status (never retried blindly).
    async fn refund_attempt(
        &self,
        attempt: &AttemptRow,
        amount: Money,
        reason: &str,
        sku: &str,
        request_key: Option<&str>,
    ) -> Result<(StatusCode, Refund), AppError> {
        let id = &attempt.session_id;
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
            reason: Some(reason.to_owned()),
            sku: Some(sku.to_owned()),
            refund_trx_id: None,
            failure_message: None,
            created_at: now,
        };
        if !self.store.insert_refund_within(&row, attempt.amount.minor(), request_key, now).await? {
            return Err(AppError::conflict(
                ErrorCode::RefundExceedsPayment,
                format!("a refund of {amount} would exceed the payment of {} less earlier refunds", attempt.amount),
            )
            .nothing_done());
        }
        self.store.add_event(Some(id), Some(&attempt.id), "refund.pending", &amount.to_string(), now).await?;
        let result = self
            .with_token(|t| {
                let bkash = self.bkash.clone();
                let (payment_id, trx_id, sku, reason) =
                    (payment_id.clone(), trx_id.clone(), sku.to_owned(), reason.to_owned());
                async move { bkash.refund(&t, &payment_id, &trx_id, amount, &sku, &reason).await }
            })
            .await;
        let now = self.clock.now_ms();
        match result {
            Ok(record) => {
                self.settle_refund(&row, true, Some(&record.refund_trx_id), None, now).await?;
                self.refund_answer(&row, StatusCode::CREATED).await
            }
            Err(e) if e.provider().is_some_and(|(code, _)| bkash_codes::refund_declined(code)) => {
                let message = e.provider().map_or_else(|| e.to_string(), |(_, m)| m.to_owned());
                self.settle_refund(&row, false, None, Some(&message), now).await?;
                Err(AppError::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::RefundFailed, message))
            }
            Err(e) => {
                // In doubt (no answer, a system error, a code we do not know): bKash may have refunded. Ask its
                // refund status; the reconciler asks again later. Never retried blindly.
                tracing::warn!(error = %e, "refund answer decides nothing; checking refund status");
                self.settle_pending_refund(&row).await?;
                self.refund_answer(&row, StatusCode::ACCEPTED).await
            }
        }
    }

    /// The refund's current row as the answer: 201 once completed, else `pending_status`.
    async fn refund_answer(
        &self,
        row: &RefundRow,
        pending_status: StatusCode,
    ) -> Result<(StatusCode, Refund), AppError> {
        let refund = self
            .store
            .refunds(&row.session_id)
            .await?
            .into_iter()
            .find(|r| r.id == row.id)
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("refund {} vanished", row.id)))?;
        let status = match refund.status {
            RefundStatus::Completed => StatusCode::CREATED,
            RefundStatus::Failed => StatusCode::UNPROCESSABLE_ENTITY,
            RefundStatus::Pending => pending_status,
        };
        Ok((status, refund_view(refund)))
    }

    /// Settles a pending refund with its webhook in one transaction.
    async fn settle_refund(
        &self,
        row: &RefundRow,
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
            self.metrics.refund("bkash", status_name(status));
        }
        Ok(())
    }

    /// Asks bKash's refund status for a pending refund and settles it when bKash shows a refund of its amount
    /// that no other of our refunds has claimed. Without such evidence the refund stays pending (counted and
    /// listed for the merchant): it is never failed on silence, because bKash may have returned the money.
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
        self.store.count_refund_check(&refund.id, now).await?;
        let Ok(records) = records else {
            self.metrics.refund("bkash", "unconfirmed");
            return Ok(());
        };
        let ours = self.store.refunds(&refund.session_id).await?;
        let claimed: Vec<&str> = ours.iter().filter_map(|r| r.refund_trx_id.as_deref()).collect();
        let found = records.iter().find(|r| {
            !claimed.contains(&r.refund_trx_id.as_str())
                && r.status.as_ref().is_none_or(|s| *s == TransactionStatus::Completed)
                && r.amount.as_deref().and_then(|a| parse_amount(a).ok()) == Some(refund.amount)
        });
        match found {
            Some(found) => self.settle_refund(refund, true, Some(&found.refund_trx_id), None, now).await,
            None => {
                self.metrics.refund("bkash", "unconfirmed");
                Ok(())
            }
        }
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
                    && bkash_codes::not_found(code)
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

fn status_name(status: RefundStatus) -> &'static str {
    match status {
        RefundStatus::Pending => "pending",
        RefundStatus::Completed => "completed",
        RefundStatus::Failed => "failed",
    }
}

impl ExecuteResponse {
    /// Treats a Completed Query answer like the Execute answer it stands in for.
    fn from_query(q: QueryResponse) -> Self {
        ExecuteResponse {
            payment_id: None,
            trx_id: q.trx_id,
            transaction_status: q.transaction_status,
            amount: q.amount,
            merchant_invoice_number: q.merchant_invoice,
            customer_msisdn: q.customer_msisdn,
        }
    }
}
