//! UPI through Bestin Pay: start a payin (fresh req_id per attempt), learn the outcome from signed
//! notifications (verified, deduplicated, never moving a final status backwards) with /query as the fallback
//! poller, cancel, and the merchant's payouts and balance.

use crate::bestin::{BestinClient, BestinError, BestinStatus, Order, parse_amount};
use crate::clock::rfc3339;
use crate::error::AppError;
use crate::ids::{self, mask};
use crate::state::AppState;
use crate::store::{AttemptPatch, AttemptRow, AttemptState, PayoutRow, PayoutState};
use axum::http::StatusCode;
use deshpay_api::{
    AttemptId, BalanceEntry, Currency, ErrorCode, Method, Money, Payout, PayoutRequest, PayoutStatus, SessionId,
    StartUpiResponse, UpiLinks,
};
use serde_json::Value;
use std::sync::Arc;

/// States a UPI attempt can still leave.
const OPEN_UPI: [AttemptState; 2] = [AttemptState::Created, AttemptState::Executing];

fn unavailable() -> AppError {
    AppError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::ProviderUnavailable,
        "Bestin Pay did not answer in time; please try again",
    )
}

fn provider_error(e: &BestinError) -> AppError {
    match e {
        BestinError::Provider { message, .. } => {
            AppError::new(StatusCode::BAD_GATEWAY, ErrorCode::ProviderError, message.clone())
        }
        _ => unavailable(),
    }
}

fn links_of(order: &Order) -> Option<UpiLinks> {
    let links = order.links.clone().unwrap_or_default();
    let upi = links.upi.or_else(|| order.link.clone())?;
    Some(UpiLinks { paytm: links.paytm, phonepe: links.phonepe, upi })
}

/// Why a notification was not accepted.
#[derive(Debug)]
pub enum NotifyRejection {
    /// Not the documented shape.
    Malformed(&'static str),
    /// The signature does not verify with the configured key.
    BadSignature,
    /// No attempt or payout knows this order (yet): the provider should deliver it again.
    Unknown,
    /// UPI is not configured.
    Disabled,
    /// Our store failed; the provider should deliver it again.
    Internal(AppError),
}

impl From<AppError> for NotifyRejection {
    fn from(e: AppError) -> Self {
        NotifyRejection::Internal(e)
    }
}

impl From<sqlx::Error> for NotifyRejection {
    fn from(e: sqlx::Error) -> Self {
        NotifyRejection::Internal(e.into())
    }
}

impl AppState {
    fn bestin_client(&self) -> Result<Arc<BestinClient>, AppError> {
        self.bestin.clone().ok_or_else(|| {
            AppError::bad_request(ErrorCode::MethodNotAvailable, "UPI is not configured on this backend")
        })
    }

    fn notify_url(&self) -> String {
        format!("{}/v1/bestinpay/notify", self.public_url)
    }

    /// Starts (or, if one is still pending, returns again) a UPI payin for an INR session.
    ///
    /// # Errors
    /// Session state errors, `method_not_available`, `provider_error`, `provider_unavailable`.
    #[tracing::instrument(skip_all, fields(session = %id))]
    pub async fn start_upi(&self, id: &SessionId) -> Result<StartUpiResponse, AppError> {
        let bestin = self.bestin_client()?;
        let session = self.payable_session(id, Method::Upi).await?;
        let now = self.clock.now_ms();
        // One pending payin per session: a second one could be approved too and charge the customer twice.
        if let Some(latest) = self.store.latest_attempt(id).await?
            && latest.method == Method::Upi
            && latest.state.is_in_flight()
        {
            if latest.state == AttemptState::Executing || latest.state == AttemptState::Creating {
                return Err(AppError::conflict(ErrorCode::PaymentInProgress, "a UPI payment is being confirmed"));
            }
            if latest.expires_at.is_some_and(|e| e > now)
                && let Some(links) = latest.links.as_deref().and_then(|l| serde_json::from_str::<UpiLinks>(l).ok())
            {
                return Ok(upi_response(latest.id, links, latest.expires_at.unwrap_or(now)));
            }
        }
        let attempt_id = ids::attempt_id();
        let attempt = AttemptRow {
            id: attempt_id.clone(),
            session_id: id.clone(),
            method: Method::Upi,
            state: AttemptState::Creating,
            amount: session.amount,
            provider_ref: None,
            redirect_url: None,
            trx_id: None,
            payer: None,
            failure_code: None,
            failure_message: None,
            execute_started_at: None,
            // A fresh req_id per attempt, derived from the attempt so a lost answer can be found by /query.
            req_id: Some(format!("dp{}", &attempt_id.as_str()[4..])),
            links: None,
            expires_at: None,
            created_at: now,
            updated_at: now,
        };
        self.store.insert_attempt(&attempt).await?;
        self.metrics.attempt("upi", "started");
        let req_id = attempt.req_id.clone().unwrap_or_default();
        let created = bestin.payin(&req_id, session.amount, &self.notify_url(), &session.return_url).await;
        let order = match created {
            Ok(o) => o,
            Err(e) => {
                let patch = AttemptPatch { failure_message: Some(e.to_string()), ..Default::default() };
                // A payin that may exist without our knowing stays "creating" for the poller to find by req_id.
                if !e.is_no_response() {
                    self.store
                        .transition_attempt(
                            &attempt,
                            &[AttemptState::Creating],
                            AttemptState::CreateFailed,
                            &patch,
                            self.clock.now_ms(),
                        )
                        .await?;
                    self.metrics.attempt("upi", "create_failed");
                }
                return Err(provider_error(&e));
            }
        };
        let amount_ok = parse_amount(&order.amount).ok() == Some(session.amount);
        let Some(links) = links_of(&order).filter(|_| amount_ok) else {
            tracing::error!(trx_id = %order.trx_id, "bestin payin answer does not match the request");
            let patch = AttemptPatch {
                provider_ref: Some(order.trx_id.clone()),
                failure_message: Some("the provider's answer did not match the order".into()),
                ..Default::default()
            };
            self.store
                .transition_attempt(
                    &attempt,
                    &[AttemptState::Creating],
                    AttemptState::Review,
                    &patch,
                    self.clock.now_ms(),
                )
                .await?;
            return Err(AppError::new(
                StatusCode::BAD_GATEWAY,
                ErrorCode::ProviderError,
                "the provider's answer did not match",
            ));
        };
        let expires_at =
            self.clock.now_ms() + self.settings.bestin.as_ref().map_or(900, |b| b.payin_ttl_secs) as i64 * 1000;
        let patch = AttemptPatch {
            provider_ref: Some(order.trx_id.clone()),
            links: serde_json::to_string(&links).ok(),
            expires_at: Some(expires_at),
            ..Default::default()
        };
        self.store
            .transition_attempt(&attempt, &[AttemptState::Creating], AttemptState::Created, &patch, self.clock.now_ms())
            .await?;
        self.store
            .add_event(Some(id), Some(&attempt.id), "attempt.created", &order.trx_id, self.clock.now_ms())
            .await?;
        self.changed(id);
        // The provider may already report a final status (e.g. a sandbox fault); apply it like a notification.
        if order.status != BestinStatus::Pending {
            let fresh = self.store.attempt(&attempt.id).await?.unwrap_or(attempt.clone());
            self.apply_upi_status(&fresh, &order.status, Some(&order.amount), "payin").await?;
        }
        Ok(upi_response(attempt.id, links, expires_at))
    }

    /// Applies a provider status to a UPI attempt, forward only. Returns whether anything changed.
    async fn apply_upi_status(
        &self,
        attempt: &AttemptRow,
        status: &BestinStatus,
        amount: Option<&str>,
        source: &str,
    ) -> Result<bool, AppError> {
        let now = self.clock.now_ms();
        let from: &[AttemptState] = &OPEN_UPI;
        let (to, message) = match status {
            BestinStatus::Pending => return Ok(false),
            BestinStatus::Unknown(s) => {
                tracing::warn!(status = %s, attempt = %attempt.id, "unknown Bestin status ignored");
                return Ok(false);
            }
            BestinStatus::Confirming => {
                let changed = self
                    .store
                    .transition_attempt(
                        attempt,
                        &[AttemptState::Created],
                        AttemptState::Executing,
                        &AttemptPatch::default(),
                        now,
                    )
                    .await?;
                if changed {
                    self.changed(&attempt.session_id);
                }
                return Ok(changed);
            }
            BestinStatus::Success => {
                let paid = amount.and_then(|a| parse_amount(a).ok());
                if paid != Some(attempt.amount) {
                    tracing::error!(attempt = %attempt.id, amount = ?amount, "UPI payment amount does not match");
                    let patch = AttemptPatch {
                        failure_message: Some("amount mismatch; needs review".into()),
                        ..Default::default()
                    };
                    let changed =
                        self.store.transition_attempt(attempt, from, AttemptState::Review, &patch, now).await?;
                    self.changed(&attempt.session_id);
                    return Ok(changed);
                }
                let patch = AttemptPatch { trx_id: attempt.provider_ref.clone(), ..Default::default() };
                let webhook = crate::webhooks::session_paid(self, attempt, attempt.provider_ref.as_deref());
                if self.store.complete_payment(attempt, from, &patch, webhook.as_ref(), now).await? {
                    self.wake_webhooks();
                    self.store
                        .add_event(Some(&attempt.session_id), Some(&attempt.id), "attempt.completed", source, now)
                        .await?;
                    self.metrics.attempt("upi", "succeeded");
                    self.changed(&attempt.session_id);
                    return Ok(true);
                }
                // Not open any more, or the session was paid by another attempt: keep the record for review.
                let current = self.store.attempt(&attempt.id).await?.map(|a| a.state);
                if current.is_some_and(|s| s.is_in_flight()) {
                    let patch = AttemptPatch {
                        failure_message: Some("session already paid by another attempt; refund needed".into()),
                        ..Default::default()
                    };
                    self.store.transition_attempt(attempt, from, AttemptState::Review, &patch, now).await?;
                    tracing::error!(attempt = %attempt.id, "second UPI payment for a paid session; needs refund");
                }
                return Ok(false);
            }
            BestinStatus::Failed => (AttemptState::Failed, "The payment was declined in the UPI app."),
            BestinStatus::Canceled => (AttemptState::Cancelled, "Payment cancelled"),
            BestinStatus::Expired => (AttemptState::Expired, "The payment request expired."),
        };
        let patch = AttemptPatch { failure_message: Some(message.into()), ..Default::default() };
        let changed = self.store.transition_attempt(attempt, from, to, &patch, now).await?;
        if changed {
            self.store
                .add_event(
                    Some(&attempt.session_id),
                    Some(&attempt.id),
                    &format!("attempt.{}", to.as_str()),
                    source,
                    now,
                )
                .await?;
            self.metrics.attempt("upi", to.as_str());
            self.changed(&attempt.session_id);
        }
        Ok(changed)
    }

    /// Handles a Bestin Pay notification: verify, deduplicate, check, apply.
    ///
    /// # Errors
    /// A [`NotifyRejection`]; the caller answers anything but `success`, so the provider delivers again.
    pub async fn bestin_notification(&self, body: &[u8]) -> Result<(), NotifyRejection> {
        let verifier = self.verifier.as_ref().ok_or(NotifyRejection::Disabled)?;
        let value: Value = serde_json::from_slice(body).map_err(|_| NotifyRejection::Malformed("body is not JSON"))?;
        let data = value.get("data").and_then(Value::as_object).ok_or(NotifyRejection::Malformed("no data object"))?;
        value.get("sign").and_then(Value::as_str).ok_or(NotifyRejection::Malformed("no sign"))?;
        let notify_id =
            value.get("notify_id").and_then(Value::as_str).ok_or(NotifyRejection::Malformed("no notify_id"))?;
        if !verifier.verify_notification(body) {
            return Err(NotifyRejection::BadSignature);
        }
        let field = |k: &str| data.get(k).and_then(Value::as_str).unwrap_or_default();
        let (trx_id, status, trx_type) = (field("trx_id"), field("status"), field("trx_type"));
        if trx_id.is_empty() || status.is_empty() || field("ccy") != "INR" {
            return Err(NotifyRejection::Malformed("trx_id, status and ccy INR are required"));
        }
        if self.store.notification_seen(notify_id).await? {
            tracing::info!(notify_id, "duplicate notification acknowledged");
            return Ok(());
        }
        let status_parsed = BestinStatus::parse(status);
        let outcome = if trx_type == "payout" {
            let payout = match self.store.payout_by_trx(trx_id).await? {
                Some(p) => Some(p),
                None => self.store.payout_by_req_id(field("req_id")).await?,
            };
            let Some(payout) = payout else { return Err(NotifyRejection::Unknown) };
            self.apply_payout_status(&payout, &status_parsed, Some(trx_id)).await?;
            "payout"
        } else {
            let attempt = match self.store.attempt_by_provider_ref(Method::Upi, trx_id).await? {
                Some(a) => Some(a),
                None => self.adopt_by_req_id(field("req_id"), trx_id).await?,
            };
            let Some(attempt) = attempt else { return Err(NotifyRejection::Unknown) };
            let changed =
                self.apply_upi_status(&attempt, &status_parsed, Some(field("amount")), "notification").await?;
            if changed { "applied" } else { "ignored" }
        };
        self.store.record_notification(notify_id, trx_id, status, outcome, self.clock.now_ms()).await?;
        tracing::info!(notify_id, trx_id, status, outcome, "notification accepted");
        Ok(())
    }

    /// An attempt whose payin answer was lost: recognise it by our req_id and record the provider's trx id.
    async fn adopt_by_req_id(&self, req_id: &str, trx_id: &str) -> Result<Option<AttemptRow>, AppError> {
        if req_id.is_empty() {
            return Ok(None);
        }
        let Some(attempt) = self.store.attempt_by_req_id(req_id).await? else { return Ok(None) };
        if attempt.state == AttemptState::Creating {
            let expires_at =
                attempt.created_at + self.settings.bestin.as_ref().map_or(900, |b| b.payin_ttl_secs) as i64 * 1000;
            let patch = AttemptPatch {
                provider_ref: Some(trx_id.to_owned()),
                expires_at: Some(expires_at),
                ..Default::default()
            };
            self.store
                .transition_attempt(
                    &attempt,
                    &[AttemptState::Creating],
                    AttemptState::Created,
                    &patch,
                    self.clock.now_ms(),
                )
                .await?;
        }
        Ok(self.store.attempt(&attempt.id).await?)
    }

    /// Cancels the session's pending attempt (UPI at Bestin Pay; bKash locally, since bKash has no cancel and
    /// a cancelled attempt is never executed).
    ///
    /// # Errors
    /// `nothing_to_cancel`, `payment_in_progress`, provider errors.
    pub async fn cancel_checkout(&self, id: &SessionId) -> Result<(), AppError> {
        self.load_session(id).await?;
        let Some(attempt) = self.store.latest_attempt(id).await?.filter(|a| a.state == AttemptState::Created) else {
            return Err(AppError::conflict(ErrorCode::NothingToCancel, "there is no pending payment to cancel"));
        };
        let now = self.clock.now_ms();
        let patch = AttemptPatch { failure_message: Some("Payment cancelled".into()), ..Default::default() };
        if attempt.method == Method::Upi {
            let bestin = self.bestin_client()?;
            let trx_id = attempt.provider_ref.clone().unwrap_or_default();
            match bestin.cancel(&trx_id, "payin").await {
                Ok(_) => {}
                Err(BestinError::Provider { .. }) => {
                    // Final at the provider already (approved, declined, expired): take its word.
                    let order = bestin.query(&trx_id, "payin").await.map_err(|e| provider_error(&e))?;
                    self.apply_upi_status(&attempt, &order.status, Some(&order.amount), "query").await?;
                    return Err(AppError::conflict(ErrorCode::NothingToCancel, "the payment already finished"));
                }
                Err(e) => return Err(provider_error(&e)),
            }
        }
        if self
            .store
            .transition_attempt(&attempt, &[AttemptState::Created], AttemptState::Cancelled, &patch, now)
            .await?
        {
            self.store.add_event(Some(id), Some(&attempt.id), "attempt.cancelled", "customer", now).await?;
            self.metrics.attempt(attempt.method.as_str(), "cancelled");
            self.changed(id);
        }
        Ok(())
    }

    /// The fallback poller: asks /query about UPI attempts and payouts without news for a while.
    ///
    /// # Errors
    /// Store errors.
    pub async fn poll_bestin_once(&self) -> Result<usize, AppError> {
        let Some(bestin) = self.bestin.clone() else { return Ok(0) };
        let now = self.clock.now_ms();
        let quiet = now - self.settings.bestin.as_ref().map_or(60, |b| b.poll_after_secs) as i64 * 1000;
        let mut seen = 0;
        for attempt in self.store.method_attempts_in(Method::Upi, &OPEN_UPI, quiet, 100).await? {
            seen += 1;
            let Some(trx_id) = attempt.provider_ref.clone() else { continue };
            match bestin.query(&trx_id, "payin").await {
                Ok(order) => {
                    self.apply_upi_status(&attempt, &order.status, Some(&order.amount), "query").await?;
                    // Touch it so the next poll waits a full period.
                    self.store
                        .transition_attempt(&attempt, &OPEN_UPI, attempt.state, &AttemptPatch::default(), now)
                        .await?;
                }
                Err(e) => tracing::warn!(attempt = %attempt.id, error = %e, "payin query failed"),
            }
        }
        let stale = now - self.settings.reconciler.stale_after_secs as i64 * 1000;
        for attempt in self.store.method_attempts_in(Method::Upi, &[AttemptState::Creating], stale, 100).await? {
            seen += 1;
            let req_id = attempt.req_id.clone().unwrap_or_default();
            match bestin.query_by_req_id(&req_id, "payin").await {
                Ok(order) => {
                    if let Some(adopted) = self.adopt_by_req_id(&req_id, &order.trx_id).await? {
                        self.apply_upi_status(&adopted, &order.status, Some(&order.amount), "query").await?;
                    }
                }
                Err(BestinError::Provider { .. }) => {
                    let patch = AttemptPatch {
                        failure_message: Some("Bestin Pay has no such payment".into()),
                        ..Default::default()
                    };
                    self.store
                        .transition_attempt(
                            &attempt,
                            &[AttemptState::Creating],
                            AttemptState::CreateFailed,
                            &patch,
                            now,
                        )
                        .await?;
                }
                Err(e) => tracing::warn!(attempt = %attempt.id, error = %e, "payin query by req_id failed"),
            }
        }
        for payout in self.store.payouts_in(&[PayoutState::Creating, PayoutState::Pending], quiet, 100).await? {
            seen += 1;
            let order = match &payout.trx_id {
                Some(trx) => bestin.query(trx, "payout").await,
                None => bestin.query_by_req_id(&payout.req_id, "payout").await,
            };
            match order {
                Ok(order) => self.apply_payout_status(&payout, &order.status, Some(&order.trx_id)).await?,
                Err(BestinError::Provider { .. }) if payout.status == PayoutState::Creating => {
                    self.store
                        .transition_payout(
                            &payout.id,
                            &[PayoutState::Creating],
                            PayoutState::Failed,
                            None,
                            Some("not created at Bestin Pay"),
                            now,
                        )
                        .await?;
                }
                Err(e) => tracing::warn!(payout = %payout.id, error = %e, "payout query failed"),
            }
        }
        Ok(seen)
    }

    async fn apply_payout_status(
        &self,
        p: &PayoutRow,
        status: &BestinStatus,
        trx_id: Option<&str>,
    ) -> Result<(), AppError> {
        let now = self.clock.now_ms();
        let open = [PayoutState::Creating, PayoutState::Pending];
        let (to, message) = match status {
            BestinStatus::Pending | BestinStatus::Confirming => (PayoutState::Pending, None),
            BestinStatus::Success => (PayoutState::Succeeded, None),
            BestinStatus::Failed => (PayoutState::Failed, Some("Bestin Pay could not send the payout")),
            BestinStatus::Canceled | BestinStatus::Expired => (PayoutState::Canceled, None),
            BestinStatus::Unknown(_) => return Ok(()),
        };
        let from: &[PayoutState] = if to == PayoutState::Pending { &[PayoutState::Creating] } else { &open };
        self.store.transition_payout(&p.id, from, to, trx_id, message, now).await?;
        Ok(())
    }

    /// Creates a payout (idempotent by `reference`).
    ///
    /// # Errors
    /// Validation errors, `idempotency_conflict`, `insufficient_balance`, provider errors.
    pub async fn create_payout(&self, req: &PayoutRequest) -> Result<(StatusCode, Payout), AppError> {
        let bestin = self.bestin_client()?;
        if req.currency != "INR" {
            return Err(AppError::bad_request(ErrorCode::InvalidCurrency, "payouts are in INR"));
        }
        let amount = Money::parse_positive(&req.amount, Currency::Inr)
            .map_err(|e| AppError::bad_request(ErrorCode::InvalidAmount, e.to_string()))?;
        if !valid_vpa(&req.upi) {
            return Err(AppError::bad_request(ErrorCode::InvalidRequest, "upi must be a UPI address like name@bank"));
        }
        let reference = req.reference.trim();
        if reference.is_empty()
            || reference.len() > 64
            || !reference.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err(AppError::bad_request(
                ErrorCode::InvalidRequest,
                "reference must be 1 to 64 letters, digits, - _ .",
            ));
        }
        if let Some(existing) = self.store.payout_by_reference(reference).await? {
            return same_payout(existing, amount, &req.upi).map(|p| (StatusCode::OK, p));
        }
        let available = bestin
            .balance()
            .await
            .map_err(|e| provider_error(&e))?
            .into_iter()
            .find(|b| b.ccy == "INR")
            .and_then(|b| parse_amount(&b.available_balance).ok())
            .unwrap_or(Money::from_minor(0, Currency::Inr).map_err(AppError::internal)?);
        if amount.minor() > available.minor() {
            return Err(AppError::conflict(
                ErrorCode::InsufficientBalance,
                format!("available balance is {available}, below {amount}"),
            ));
        }
        let now = self.clock.now_ms();
        let id = format!("po_{}", &ids::refund_id().as_str()[3..]);
        let row = PayoutRow {
            req_id: format!("dpo{}", &id[3..]),
            id,
            reference: reference.to_owned(),
            amount,
            upi: req.upi.clone(),
            status: PayoutState::Creating,
            trx_id: None,
            failure_message: None,
            created_at: now,
        };
        if !self.store.insert_payout(&row).await? {
            // A concurrent request with the same reference won the insert.
            let existing = self
                .store
                .payout_by_reference(reference)
                .await?
                .ok_or_else(|| AppError::internal(anyhow::anyhow!("payout vanished")))?;
            return same_payout(existing, amount, &req.upi).map(|p| (StatusCode::OK, p));
        }
        let status = match bestin.payout(&row.req_id, amount, &row.upi, &self.notify_url()).await {
            Ok(order) => {
                self.apply_payout_status(&row, &order.status, Some(&order.trx_id)).await?;
                StatusCode::CREATED
            }
            Err(BestinError::Provider { message, .. }) => {
                self.store
                    .transition_payout(
                        &row.id,
                        &[PayoutState::Creating],
                        PayoutState::Failed,
                        None,
                        Some(&message),
                        self.clock.now_ms(),
                    )
                    .await?;
                let code =
                    if message.contains("balance") { ErrorCode::InsufficientBalance } else { ErrorCode::ProviderError };
                return Err(AppError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message));
            }
            // No answer: the poller finds it by req_id; never send it twice.
            Err(_) => StatusCode::ACCEPTED,
        };
        let payout =
            self.store.payout(&row.id).await?.ok_or_else(|| AppError::internal(anyhow::anyhow!("payout vanished")))?;
        Ok((status, payout_view(payout)))
    }

    /// Reads a payout.
    ///
    /// # Errors
    /// `payout_not_found`.
    pub async fn get_payout(&self, id: &str) -> Result<Payout, AppError> {
        let p = self
            .store
            .payout(id)
            .await?
            .ok_or_else(|| AppError::not_found(ErrorCode::PayoutNotFound, "no such payout"))?;
        Ok(payout_view(p))
    }

    /// Cancels a pending payout.
    ///
    /// # Errors
    /// `payout_not_found`, `nothing_to_cancel`, provider errors.
    pub async fn cancel_payout(&self, id: &str) -> Result<Payout, AppError> {
        let bestin = self.bestin_client()?;
        let p = self
            .store
            .payout(id)
            .await?
            .ok_or_else(|| AppError::not_found(ErrorCode::PayoutNotFound, "no such payout"))?;
        let Some(trx_id) = p.trx_id.clone().filter(|_| p.status == PayoutState::Pending) else {
            return Err(AppError::conflict(ErrorCode::NothingToCancel, "only a pending payout can be canceled"));
        };
        match bestin.cancel(&trx_id, "payout").await {
            Ok(_) => {
                self.store
                    .transition_payout(
                        &p.id,
                        &[PayoutState::Pending],
                        PayoutState::Canceled,
                        None,
                        None,
                        self.clock.now_ms(),
                    )
                    .await?;
            }
            Err(BestinError::Provider { message, .. }) => {
                let order = bestin.query(&trx_id, "payout").await.map_err(|e| provider_error(&e))?;
                self.apply_payout_status(&p, &order.status, None).await?;
                return Err(AppError::conflict(ErrorCode::NothingToCancel, message));
            }
            Err(e) => return Err(provider_error(&e)),
        }
        self.get_payout(id).await
    }

    /// The merchant's balances at Bestin Pay.
    ///
    /// # Errors
    /// Provider errors.
    pub async fn balance(&self) -> Result<Vec<BalanceEntry>, AppError> {
        let rows = self.bestin_client()?.balance().await.map_err(|e| provider_error(&e))?;
        rows.into_iter()
            .filter(|r| r.ccy == "INR")
            .map(|r| {
                let parse = |t: &str| {
                    parse_amount(t).map(Money::to_decimal).map_err(|e| {
                        AppError::new(StatusCode::BAD_GATEWAY, ErrorCode::ProviderError, format!("balance: {e}"))
                    })
                };
                Ok(BalanceEntry {
                    currency: Currency::Inr,
                    balance: parse(&r.balance)?,
                    available: parse(&r.available_balance)?,
                    frozen: parse(&r.frozen_balance)?,
                })
            })
            .collect()
    }
}

fn valid_vpa(vpa: &str) -> bool {
    match vpa.split_once('@') {
        Some((name, bank)) => {
            (2..=256).contains(&name.len())
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
                && (2..=64).contains(&bank.len())
                && bank.bytes().all(|b| b.is_ascii_alphanumeric())
        }
        None => false,
    }
}

fn same_payout(existing: PayoutRow, amount: Money, upi: &str) -> Result<Payout, AppError> {
    if existing.amount == amount && existing.upi == upi {
        Ok(payout_view(existing))
    } else {
        Err(AppError::conflict(ErrorCode::IdempotencyConflict, "this reference was used for another payout"))
    }
}

fn payout_view(p: PayoutRow) -> Payout {
    Payout {
        id: p.id,
        reference: p.reference,
        amount: p.amount.to_decimal(),
        currency: p.amount.currency(),
        upi: mask(&p.upi),
        status: match p.status {
            PayoutState::Creating | PayoutState::Pending => PayoutStatus::Pending,
            PayoutState::Succeeded => PayoutStatus::Succeeded,
            PayoutState::Failed => PayoutStatus::Failed,
            PayoutState::Canceled => PayoutStatus::Canceled,
        },
        trx_id: p.trx_id,
        failure_message: p.failure_message,
        created_at: rfc3339(p.created_at),
    }
}

/// The answer to "Pay with UPI": the links, the generic link as QR text and drawn as a QR code, the deadline.
fn upi_response(attempt_id: AttemptId, links: UpiLinks, expires_at_ms: i64) -> StartUpiResponse {
    StartUpiResponse {
        attempt_id,
        qr: links.upi.clone(),
        qr_svg: crate::qr::draw(&links.upi),
        links,
        expires_at: rfc3339(expires_at_ms),
    }
}
