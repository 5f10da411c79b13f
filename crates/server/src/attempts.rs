//! Payment attempts through any provider: start (create at the provider), the provider's return (callback),
//! confirm exactly once (bKash Execute), settle a doubt by asking the provider (sync), apply what a provider
//! reported, adopt a create whose answer was lost, cancel.
//!
//! Providers are reached only through [`crate::providers::Provider`]; every transition goes through the payment
//! core (`payments`), written before it is acted on. Exactly one confirm per attempt: the attempt's
//! `created -> executing` together with the session's `executing_attempt_id` is the claim among callbacks and
//! attempts, and the `execute_started_at` stamp is the claim among confirmers (callbacks, reconcilers,
//! instances); the provider awaits that stamp right before it sends.

use crate::error::AppError;
use crate::ids;
use crate::payments::{Confirmed, Settled};
use crate::providers::{Cancelled, Confirm, Flow, Found, Order, Outcome, Paid, Provider, ProviderFailure, Started};
use crate::sessions::SessionError;
use crate::state::AppState;
use crate::store::{AttemptPatch, AttemptRow, AttemptState, Begin, Change, SessionEffect, SessionRow};
use crate::webhooks;
use deshpay_api::{AttemptId, Method, SessionId, SessionStatus, StartBkashResponse, StartUpiResponse, UpiLinks};

/// When an attempt failed by a sync after a confirm in doubt is asked about once more.
pub(crate) const RECHECK_AFTER_MS: i64 = 10 * 60 * 1000;

/// Provider checks of one attempt before it is handed to a person (`review`).
pub(crate) const MAX_CHECKS: i64 = 20;

/// States an attempt can still leave on a provider's report.
const OPEN: [AttemptState; 2] = [AttemptState::Created, AttemptState::Executing];

/// Why a start gave the customer nothing to approve.
#[derive(Debug)]
pub enum StartError {
    /// The session cannot take a payment with this method now.
    Session(SessionError),
    /// The method's provider is not configured on this backend.
    NotConfigured(Method),
    /// Another payment of the session is under way or being confirmed.
    InProgress(&'static str),
    /// The provider did not create a payment.
    Provider(ProviderFailure),
    /// Our store failed.
    Internal(AppError),
}

/// Why a provider's return to our callback was not taken.
#[derive(Debug)]
pub enum CallbackError {
    /// No attempt has this provider id.
    UnknownPayment,
    /// The status is none of success, failure, cancel.
    BadStatus,
    /// The session or the store failed.
    Internal(AppError),
}

/// Why a cancel did not happen.
#[derive(Debug)]
pub enum CancelError {
    /// Nothing is pending (or it finished meanwhile).
    NothingToCancel(&'static str),
    /// The session is unknown.
    Session(SessionError),
    /// The method's provider is not configured on this backend.
    NotConfigured(Method),
    /// The provider could not be asked.
    Provider(ProviderFailure),
    /// Our store failed.
    Internal(AppError),
}

crate::error::internal_from!(StartError, CallbackError, CancelError);

impl From<SessionError> for StartError {
    fn from(e: SessionError) -> Self {
        StartError::Session(e)
    }
}

impl From<SessionError> for CancelError {
    fn from(e: SessionError) -> Self {
        CancelError::Session(e)
    }
}

impl From<SessionError> for CallbackError {
    fn from(e: SessionError) -> Self {
        CallbackError::Internal(e.into())
    }
}

/// Why an attempt is being settled by a sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Doubt {
    /// The confirm gave no answer, a status other than paid, or a code that decides nothing.
    AfterConfirm,
    /// bKash Execute answered 2056: the customer may not have approved yet.
    NotApproved,
}

/// How a provider's return ended, for the redirect back to the shop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
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

impl Ending {
    fn as_str(self) -> &'static str {
        match self {
            Ending::Paid => "paid",
            Ending::Failed => "failed",
            Ending::Cancelled => "cancelled",
            Ending::Pending => "pending",
            Ending::Review => "review",
        }
    }
}

fn ending_of(state: AttemptState) -> Ending {
    match state {
        AttemptState::Completed => Ending::Paid,
        AttemptState::Cancelled => Ending::Cancelled,
        AttemptState::Creating | AttemptState::Created | AttemptState::Executing => Ending::Pending,
        AttemptState::Review => Ending::Review,
        _ => Ending::Failed,
    }
}

/// Appends `deshpay_session` and `deshpay_status` to the merchant's return URL.
pub fn return_url_for(session: &SessionRow, ending: Ending) -> String {
    match url::Url::parse(&session.return_url) {
        Ok(mut u) => {
            u.query_pairs_mut()
                .append_pair("deshpay_session", session.id.as_str())
                .append_pair("deshpay_status", ending.as_str());
            u.to_string()
        }
        Err(_) => session.return_url.clone(),
    }
}

/// An attempt handed to the customer: what they approve with.
#[derive(Debug, Clone)]
pub struct Begun {
    /// The attempt.
    pub attempt_id: AttemptId,
    /// The provider's hosted page (redirect flow).
    pub redirect_url: Option<String>,
    /// Deep links (push flow).
    pub links: Option<UpiLinks>,
    /// When the provider's request expires (Unix ms).
    pub expires_at: Option<i64>,
}

impl AppState {
    /// The provider of an attempt we recorded (its method was configured when it was made).
    pub(crate) fn provider_of(&self, attempt: &AttemptRow) -> Result<Provider<'_>, AppError> {
        self.providers.get(attempt.method).ok_or_else(|| {
            AppError::internal(anyhow::anyhow!(
                "attempt {} needs {}, not configured",
                attempt.id,
                attempt.method.as_str()
            ))
        })
    }

    /// Starts a bKash attempt and returns the hosted page URL.
    ///
    /// # Errors
    /// A [`StartError`].
    #[tracing::instrument(skip_all, fields(session = %id))]
    pub async fn start_bkash(&self, id: &SessionId) -> Result<StartBkashResponse, StartError> {
        let begun = self.start_attempt(id, Method::Bkash).await?;
        Ok(StartBkashResponse { attempt_id: begun.attempt_id, redirect_url: begun.redirect_url.unwrap_or_default() })
    }

    /// Starts (or, if one is still pending, returns again) a UPI payin for an INR session.
    ///
    /// # Errors
    /// A [`StartError`].
    #[tracing::instrument(skip_all, fields(session = %id))]
    pub async fn start_upi(&self, id: &SessionId) -> Result<StartUpiResponse, StartError> {
        let begun = self.start_attempt(id, Method::Upi).await?;
        let links = begun.links.ok_or_else(|| {
            StartError::Internal(AppError::internal(anyhow::anyhow!("UPI attempt {} has no links", begun.attempt_id)))
        })?;
        Ok(crate::payouts::upi_response(begun.attempt_id, links, begun.expires_at.unwrap_or_default()))
    }

    /// Starts an attempt with `method`: writes it as `creating` (superseding or reusing earlier ones, as the store
    /// decides), asks the provider to create it, and records what the provider answered before the customer
    /// sees anything.
    ///
    /// # Errors
    /// A [`StartError`].
    pub async fn start_attempt(&self, id: &SessionId, method: Method) -> Result<Begun, StartError> {
        let provider = self.providers.get(method).ok_or(StartError::NotConfigured(method))?;
        let session = self.payable_session(id, method).await?;
        if provider.flow() == Flow::Push {
            self.settle_stale(id, provider).await?;
        }
        let now = self.clock.now_ms();
        let mut attempt = AttemptRow::new(ids::attempt_id(), id.clone(), method, session.amount, now);
        provider.prepare(&mut attempt, now);
        match self.begin(&attempt).await? {
            Begin::Started(_) => {}
            Begin::Reuse(live) => {
                // One pending request per session: a second one could be approved too and charge twice.
                if let Some(links) = live.links.as_deref().and_then(|l| serde_json::from_str::<UpiLinks>(l).ok()) {
                    return Ok(Begun {
                        attempt_id: live.id.clone(),
                        redirect_url: live.redirect_url.clone(),
                        links: Some(links),
                        expires_at: Some(live.expires_at.unwrap_or(now)),
                    });
                }
                return Err(StartError::InProgress("a payment for this session is being confirmed"));
            }
            Begin::Busy => {
                return Err(StartError::InProgress(
                    "another payment for this session is under way; finish or cancel it first",
                ));
            }
            Begin::NotPayable => {
                self.payable_session(id, method).await?;
                return Err(StartError::InProgress(
                    "a payment for this session is being confirmed; wait for its outcome",
                ));
            }
        }
        let order = Order { attempt: &attempt, invoice: &session.invoice, return_url: &session.return_url };
        let started = match provider.start(order).await {
            Ok(started) => started,
            Err(f) => {
                if !f.in_doubt {
                    let patch = AttemptPatch {
                        provider_ref: f.provider_ref.clone(),
                        failure_code: f.code.clone(),
                        failure_message: Some(f.message.clone()),
                        next_check_at: Some(None),
                        ..Default::default()
                    };
                    self.move_attempt(&attempt, &[AttemptState::Creating], AttemptState::CreateFailed, patch, f.detail)
                        .await?;
                    if let Some(refused) = f.provider_ref {
                        // Closed in our books first; then the provider's order is cancelled as far as it can be.
                        let refused = AttemptRow { provider_ref: Some(refused), ..attempt.clone() };
                        let _ = provider.cancel(&refused).await;
                    }
                }
                return Err(StartError::Provider(f.failure));
            }
        };
        let patch = AttemptPatch {
            provider_ref: Some(started.provider_ref.clone()),
            redirect_url: started.redirect_url.clone(),
            links: started.links.as_ref().and_then(|l| serde_json::to_string(l).ok()),
            expires_at: started.expires_at,
            ..Default::default()
        };
        let live = self
            .move_attempt(
                &attempt,
                &[AttemptState::Creating],
                AttemptState::Created,
                patch,
                started.provider_ref.clone(),
            )
            .await?;
        if !live {
            // Superseded (or the session ended) while the provider answered: the payment must not reach the
            // customer, and is cancelled at the provider where it could still be approved.
            let replaced = AttemptRow { provider_ref: Some(started.provider_ref.clone()), ..attempt.clone() };
            let _ = provider.cancel(&replaced).await;
            return Err(StartError::InProgress("a newer payment attempt replaced this one; please try again"));
        }
        tracing::info!(attempt = %attempt.id, provider_ref = %started.provider_ref, method = method.as_str(), "payment created");
        // The provider may already report a final status (e.g. a sandbox fault); apply it like a sync answer.
        if !matches!(started.outcome, Outcome::Pending) {
            let fresh = self.store.attempt(&attempt.id).await?.unwrap_or_else(|| attempt.clone());
            self.apply_outcome(&fresh, started.outcome, "create").await?;
        }
        let Started { redirect_url, links, expires_at, .. } = started;
        Ok(Begun { attempt_id: attempt.id, redirect_url, links, expires_at })
    }

    /// Asks the provider about the session's requests that our countdown has passed and closes them there when
    /// still pending, so that a new start never runs beside a request the customer could still approve. What
    /// the provider cannot settle stays open (and the start answers `payment_in_progress`).
    ///
    /// # Errors
    /// Store errors.
    pub async fn settle_stale(&self, id: &SessionId, provider: Provider<'_>) -> Result<(), AppError> {
        let now = self.clock.now_ms();
        for attempt in self.store.attempts_of(id).await? {
            let stale = attempt.method == provider.method()
                && attempt.state == AttemptState::Created
                && attempt.expires_at.is_some_and(|e| e <= now)
                && attempt.provider_ref.is_some();
            if !stale {
                continue;
            }
            match provider.sync(&attempt).await {
                Outcome::Pending => match provider.cancel(&attempt).await {
                    Cancelled::Done => {
                        let patch = AttemptPatch {
                            failure_message: Some("The payment request expired.".into()),
                            next_check_at: Some(None),
                            ..Default::default()
                        };
                        self.move_attempt(&attempt, &[AttemptState::Created], AttemptState::Expired, patch, "closed")
                            .await?;
                    }
                    Cancelled::Finished(outcome) => {
                        self.apply_outcome(&attempt, outcome, "query").await?;
                    }
                    Cancelled::Failed(f) => {
                        tracing::warn!(attempt = %attempt.id, error = ?f, "could not close a stale request");
                    }
                },
                outcome => {
                    self.apply_outcome(&attempt, outcome, "query").await?;
                }
            }
        }
        Ok(())
    }

    /// Applies what a provider reported for an attempt we recorded (a verified notification bound to our
    /// merchant and to a provider id we recorded, a create answer, or our own sync): a success is settled by the
    /// core (late success or review when the attempt or session had moved on); other outcomes only move an open
    /// attempt forward; what decides nothing changes nothing. Returns whether anything changed.
    ///
    /// # Errors
    /// Store errors.
    pub async fn apply_outcome(&self, attempt: &AttemptRow, outcome: Outcome, source: &str) -> Result<bool, AppError> {
        let (to, code, message) = match outcome {
            Outcome::Pending | Outcome::NotApproved { .. } => return Ok(false),
            Outcome::Unknown(s) | Outcome::NoAnswer(s) => {
                tracing::warn!(status = %s, attempt = %attempt.id, source, "a provider answer that decides nothing");
                return Ok(false);
            }
            Outcome::Confirming => {
                return self
                    .move_attempt(
                        attempt,
                        &[AttemptState::Created],
                        AttemptState::Executing,
                        AttemptPatch::default(),
                        source,
                    )
                    .await;
            }
            Outcome::Paid(paid) => {
                self.settle_paid(attempt, paid, source).await?;
                return Ok(true);
            }
            Outcome::Declined { code, message } => (AttemptState::Failed, code, message),
            Outcome::Cancelled => (AttemptState::Cancelled, None, "Payment cancelled".to_owned()),
            Outcome::Expired => (AttemptState::Expired, None, "The payment request expired.".to_owned()),
        };
        let patch = AttemptPatch {
            failure_code: code,
            failure_message: Some(message),
            next_check_at: Some(None),
            ..Default::default()
        };
        self.move_attempt(attempt, &OPEN, to, patch, source).await
    }

    /// Settles a payment the provider confirmed, through the core.
    async fn settle_paid(&self, attempt: &AttemptRow, paid: Paid, source: &str) -> Result<Ending, AppError> {
        // The provider's order reference, where it gives one, must be the session's invoice.
        let reference_matches = match &paid.reference {
            None => true,
            Some(reference) => *reference == self.load_session(&attempt.session_id).await?.invoice,
        };
        let confirmed = Confirmed { trx_id: paid.trx_id, amount: paid.amount, payer: paid.payer, reference_matches };
        Ok(match self.settle_success(attempt, confirmed, source).await? {
            Settled::Paid => Ending::Paid,
            Settled::Review => Ending::Review,
        })
    }

    /// Handles bKash's redirect to our callback URL and returns where to send the browser. The callback is not
    /// signed: `success` only leads to our own Execute, and `failure`/`cancel` are checked by Query.
    ///
    /// # Errors
    /// A [`CallbackError`].
    #[tracing::instrument(skip_all, fields(payment_id = payment_id, status = status))]
    pub async fn bkash_callback(&self, payment_id: &str, status: &str) -> Result<String, CallbackError> {
        self.provider_return(Method::Bkash, payment_id, status).await
    }

    /// A redirect-flow provider's return: `success` claims and confirms; `failure`/`cancel` close the attempt
    /// after the provider was asked.
    async fn provider_return(&self, method: Method, provider_ref: &str, status: &str) -> Result<String, CallbackError> {
        let attempt =
            self.store.attempt_by_provider_ref(method, provider_ref).await?.ok_or(CallbackError::UnknownPayment)?;
        let ending = match status {
            "success" => self.claim_and_confirm(&attempt).await?,
            "failure" | "cancel" => self.close_on_return(&attempt, status == "cancel").await?,
            _ => return Err(CallbackError::BadStatus),
        };
        let session = self.load_session(&attempt.session_id).await?;
        Ok(return_url_for(&session, ending))
    }

    /// A `failure` or `cancel` return: the provider is asked first, so a forged callback cannot hide a payment;
    /// the attempt is then closed (it is never confirmed afterwards, so no money can move through it).
    async fn close_on_return(&self, attempt: &AttemptRow, cancel: bool) -> Result<Ending, AppError> {
        if attempt.state != AttemptState::Created {
            return self.current_ending(attempt).await;
        }
        if let Outcome::Paid(paid) = self.provider_of(attempt)?.sync(attempt).await {
            return self.settle_paid(attempt, paid, "query").await;
        }
        let (to, message, ending) = if cancel {
            (AttemptState::Cancelled, "Payment cancelled", Ending::Cancelled)
        } else {
            (AttemptState::Failed, "Payment failed", Ending::Failed)
        };
        let patch = AttemptPatch { failure_message: Some(message.into()), ..Default::default() };
        if self.move_attempt(attempt, &[AttemptState::Created], to, patch, "callback").await? {
            Ok(ending)
        } else {
            self.current_ending(attempt).await
        }
    }

    async fn current_ending(&self, attempt: &AttemptRow) -> Result<Ending, AppError> {
        let now = self.store.attempt(&attempt.id).await?.map_or(attempt.state, |a| a.state);
        Ok(ending_of(now))
    }

    /// Claims an attempt for its confirm: the attempt's `created -> executing` and the session's
    /// `executing_attempt_id` in one transaction. Losers of the claim never confirm: a duplicate callback reports
    /// the current state, and an attempt whose session was paid, claimed by another attempt or has expired is
    /// closed without a confirm.
    pub(crate) async fn claim_and_confirm(&self, attempt: &AttemptRow) -> Result<Ending, AppError> {
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
            return self.confirm_claimed(attempt).await;
        }
        let current = self.store.attempt(&attempt.id).await?.unwrap_or_else(|| attempt.clone());
        if current.state != AttemptState::Created {
            return Ok(ending_of(current.state));
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
        self.current_ending(attempt).await
    }

    /// Confirms an attempt whose claim is held (state `executing`): only the caller that stamps
    /// `execute_started_at` sends the confirm; every other caller (a reconciler, another instance) reports
    /// pending.
    pub(crate) async fn confirm_claimed(&self, attempt: &AttemptRow) -> Result<Ending, AppError> {
        let provider = self.provider_of(attempt)?;
        // The stamp's time is read when the claim is awaited, right before the confirm and after any token renewal:
        // the reconciler's staleness counts from it.
        let claim = async { self.store.claim_execute(&attempt.id, self.clock.now_ms()).await };
        match provider.confirm(attempt, claim).await? {
            Confirm::NotSent(why) => {
                // The claim is not stamped; the reconciler confirms once the provider can be called.
                tracing::error!(error = %why, attempt = %attempt.id, "confirm not sent; will retry");
                Ok(Ending::Pending)
            }
            Confirm::Lost => self.current_ending(attempt).await,
            Confirm::Sent(Outcome::Paid(paid)) => self.settle_paid(attempt, paid, "execute").await,
            Confirm::Sent(Outcome::Declined { code, message }) => {
                let detail = format!("execute {}: {message}", code.as_deref().unwrap_or("-"));
                let patch = AttemptPatch { failure_code: code, failure_message: Some(message), ..Default::default() };
                self.move_attempt(attempt, &[AttemptState::Executing], AttemptState::Failed, patch, detail).await?;
                Ok(Ending::Failed)
            }
            Confirm::Sent(Outcome::NotApproved { code, message }) => {
                tracing::warn!(code, message, "the confirm says the payment is not approved; asking the provider");
                self.resolve_in_doubt(attempt, Doubt::NotApproved).await
            }
            Confirm::Sent(Outcome::NoAnswer(e)) => {
                tracing::warn!(error = %e, "the confirm gave no usable answer; asking the provider");
                let now = self.clock.now_ms();
                self.store
                    .add_event(Some(&attempt.session_id), Some(&attempt.id), "attempt.execute_no_response", &e, now)
                    .await?;
                self.resolve_in_doubt(attempt, Doubt::AfterConfirm).await
            }
            Confirm::Sent(other) => {
                tracing::warn!(answer = ?other, "the confirm answered something that decides nothing; asking the provider");
                self.resolve_in_doubt(attempt, Doubt::AfterConfirm).await
            }
        }
    }

    /// Settles an executing attempt by a sync. Leaves it executing (for the reconciler, within its retry budget)
    /// when the provider does not answer or answers something that decides nothing.
    pub(crate) async fn resolve_in_doubt(&self, attempt: &AttemptRow, doubt: Doubt) -> Result<Ending, AppError> {
        match self.provider_of(attempt)?.sync(attempt).await {
            Outcome::Paid(paid) => self.settle_paid(attempt, paid, "query").await,
            Outcome::Pending if doubt == Doubt::NotApproved => {
                // Not approved yet: back to waiting, claim released and the confirm forgotten, so the customer's
                // own success callback can still confirm it once.
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
                Ok(if reopened { Ending::Pending } else { self.current_ending(attempt).await? })
            }
            outcome @ (Outcome::Pending | Outcome::Declined { .. } | Outcome::Cancelled | Outcome::Expired) => {
                // Not paid after the confirm means the money was not taken. One re-check later still catches a
                // payment that completed after all (a late success).
                let message = match &outcome {
                    Outcome::Declined { message, .. } => message.clone(),
                    _ => "The payment could not be completed. You were not charged.".to_owned(),
                };
                let patch = AttemptPatch {
                    failure_message: Some(message),
                    next_check_at: Some(Some(self.clock.now_ms() + RECHECK_AFTER_MS)),
                    count_check: true,
                    ..Default::default()
                };
                let detail = format!("query: {outcome:?}");
                self.move_attempt(attempt, &[AttemptState::Executing], AttemptState::Failed, patch, detail).await?;
                self.current_ending(attempt).await
            }
            other => {
                tracing::warn!(answer = ?other, attempt = %attempt.id, "the provider's status decides nothing; will ask again");
                let checks = self.store.attempt(&attempt.id).await?.map_or(0, |a| a.checks) + 1;
                if checks >= MAX_CHECKS {
                    // The retry budget is spent: a person looks at it (money may have moved).
                    let why = format!("the provider could not confirm the payment after {checks} checks");
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
                    return self.current_ending(attempt).await;
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
                Ok(Ending::Pending)
            }
        }
    }

    /// An attempt whose create answer was lost (still `creating`): asks the provider for the order by our own
    /// reference and adopts it only when it is the one expected (`trx_id` when a notification named one, amount,
    /// currency), then applies the status the provider reported. Returns whether it was adopted.
    ///
    /// # Errors
    /// Store errors.
    pub async fn adopt_lost(&self, attempt: &AttemptRow, trx_id: Option<&str>) -> Result<bool, AppError> {
        let Some(provider) = self.providers.get(attempt.method) else { return Ok(false) };
        let started = match provider.find_lost(attempt, trx_id).await {
            Found::Order(started) => started,
            Found::Nothing => {
                let patch = AttemptPatch {
                    failure_message: Some("the provider has no such payment".into()),
                    next_check_at: Some(None),
                    ..Default::default()
                };
                self.move_attempt(attempt, &[AttemptState::Creating], AttemptState::CreateFailed, patch, "query")
                    .await?;
                return Ok(false);
            }
            Found::Unsure(why) => {
                tracing::warn!(attempt = %attempt.id, why, "a lost create was not adopted");
                return Ok(false);
            }
        };
        let patch = AttemptPatch {
            provider_ref: Some(started.provider_ref.clone()),
            expires_at: started.expires_at,
            links: started.links.as_ref().and_then(|l| serde_json::to_string(l).ok()),
            ..Default::default()
        };
        if !self
            .move_attempt(attempt, &[AttemptState::Creating], AttemptState::Created, patch, "adopted by req_id")
            .await?
        {
            return Ok(false);
        }
        if let Some(adopted) = self.store.attempt(&attempt.id).await? {
            self.apply_outcome(&adopted, started.outcome, "query").await?;
        }
        Ok(true)
    }

    /// Cancels the session's pending attempt at its provider (where money moves only at our confirm, locally: a
    /// cancelled attempt is never confirmed).
    ///
    /// # Errors
    /// A [`CancelError`].
    pub async fn cancel_checkout(&self, id: &SessionId) -> Result<(), CancelError> {
        self.load_session(id).await?;
        let Some(attempt) = self.store.latest_attempt(id).await?.filter(|a| a.state == AttemptState::Created) else {
            return Err(CancelError::NothingToCancel("there is no pending payment to cancel"));
        };
        let provider = self.providers.get(attempt.method).ok_or(CancelError::NotConfigured(attempt.method))?;
        match provider.cancel(&attempt).await {
            Cancelled::Done => {}
            Cancelled::Finished(outcome) => {
                self.apply_outcome(&attempt, outcome, "query").await?;
                return Err(CancelError::NothingToCancel("the payment already finished"));
            }
            Cancelled::Failed(f) => return Err(CancelError::Provider(f)),
        }
        let patch = AttemptPatch {
            failure_message: Some("Payment cancelled".into()),
            next_check_at: Some(None),
            ..Default::default()
        };
        self.move_attempt(&attempt, &[AttemptState::Created], AttemptState::Cancelled, patch, "customer").await?;
        Ok(())
    }
}
