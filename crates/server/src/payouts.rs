//! UPI through Bestin Pay, beyond the payment attempts (which `attempts` drives through the provider seam): its
//! signed notifications (verified and bound to our merchant by `providers::bestin::notify`, then bound to an
//! order we recorded, deduplicated, applied through the core), and the merchant's payouts and balance.

use crate::clock::rfc3339;
use crate::error::AppError;
use crate::ids::{self, mask};
use crate::providers::ProviderFailure;
use crate::providers::bestin::client::{BestinClient, BestinError};
use crate::providers::bestin::notify::{Notification, Rejected};
use crate::providers::bestin::transformers::{self, BestinStatus, parse_amount};
use crate::state::AppState;
use crate::store::{AttemptState, PayoutRow, PayoutState};
use deshpay_api::{
    AttemptId, BalanceEntry, Currency, Method, Money, Payout, PayoutRequest, PayoutStatus, StartUpiResponse, UpiLinks,
};
use std::sync::Arc;

fn provider_error(e: &BestinError) -> PayoutError {
    PayoutError::Provider(crate::providers::bestin::failure(e))
}

/// Why a payout operation did not happen.
#[derive(Debug)]
pub enum PayoutError {
    /// UPI is not configured on this backend.
    NotConfigured,
    /// Payouts are in INR.
    InvalidCurrency,
    /// The amount is not a positive INR amount.
    InvalidAmount(String),
    /// Another field is wrong.
    Invalid(&'static str),
    /// The reference was used for another payout.
    ReferenceReused,
    /// The available balance is below the amount.
    InsufficientBalance(String),
    /// Bestin Pay refused the payout (`balance`: for want of balance), with its message.
    Refused {
        /// Bestin Pay's message.
        message: String,
        /// Whether it is about the balance.
        balance: bool,
    },
    /// No such payout.
    NotFound,
    /// The payout is not pending (or finished meanwhile).
    NothingToCancel(String),
    /// Bestin Pay could not be asked, or answered something unreadable.
    Provider(ProviderFailure),
    /// Our store failed.
    Internal(AppError),
}

crate::error::internal_from!(PayoutError);

/// A payout as the create left it.
#[derive(Debug)]
pub enum PayoutAnswer {
    /// The payout this reference made earlier.
    Existing(Payout),
    /// Created at Bestin Pay.
    Created(Payout),
    /// Sent, with no answer yet: the poller settles it by our req_id.
    Accepted(Payout),
}

/// Why a notification was not accepted.
#[derive(Debug)]
pub enum NotifyRejection {
    /// Not the documented shape.
    Malformed(&'static str),
    /// The signature does not verify with the configured key.
    BadSignature,
    /// Signed by Bestin Pay, but for another merchant (`data.mid` is not ours).
    ForeignMerchant,
    /// No attempt or payout knows this order (yet): the provider should deliver it again.
    Unknown,
    /// UPI is not configured.
    Disabled,
    /// Our store failed; the provider should deliver it again.
    Internal(AppError),
}

crate::error::internal_from!(NotifyRejection);

impl AppState {
    fn bestin_client(&self) -> Result<Arc<BestinClient>, PayoutError> {
        self.providers.bestin.as_ref().map(|b| b.client.clone()).ok_or(PayoutError::NotConfigured)
    }

    /// Handles a Bestin Pay notification: verified and bound to our merchant by the provider module, then bound
    /// to an order we recorded, deduplicated, applied.
    ///
    /// # Errors
    /// A [`NotifyRejection`]; the caller answers anything but `success`, so the provider delivers again.
    pub async fn bestin_notification(&self, body: &[u8]) -> Result<(), NotifyRejection> {
        let bestin = self.providers.bestin.as_ref().ok_or(NotifyRejection::Disabled)?;
        let n = Notification::parse(&bestin.verifier, &bestin.merchant_id, body).map_err(|r| match r {
            Rejected::Malformed(why) => NotifyRejection::Malformed(why),
            Rejected::BadSignature => NotifyRejection::BadSignature,
            Rejected::ForeignMerchant => NotifyRejection::ForeignMerchant,
        })?;
        let (notify_id, trx_id) = (n.notify_id.as_str(), n.trx_id.as_str());
        if self.store.notification_seen(notify_id).await? {
            tracing::info!(notify_id, "duplicate notification acknowledged");
            return Ok(());
        }
        let outcome = if n.payout {
            if let Some(payout) = self.store.payout_by_trx(trx_id).await? {
                self.apply_payout_status(&payout, &n.status, Some(trx_id)).await?;
            } else if let Some(payout) = self.store.payout_by_req_id(&n.req_id).await?
                && payout.status == PayoutState::Creating
            {
                // Our create answer was lost: believe only our own /query by req_id, never the notification.
                let order = bestin
                    .client
                    .query_by_req_id(&payout.req_id, "payout")
                    .await
                    .map_err(|_| NotifyRejection::Unknown)?;
                if order.trx_id.as_str() != trx_id || parse_amount(&order.amount).ok() != Some(payout.amount) {
                    return Err(NotifyRejection::Unknown);
                }
                self.apply_payout_status(&payout, &order.status, Some(order.trx_id.as_str())).await?;
            } else {
                return Err(NotifyRejection::Unknown);
            }
            "payout"
        } else {
            let changed = match self.store.attempt_by_provider_ref(Method::Upi, trx_id).await? {
                Some(attempt) => {
                    let outcome = transformers::outcome(&n.status, trx_id, n.amount.as_deref());
                    self.apply_outcome(&attempt, outcome, "notification").await?
                }
                None => {
                    let Some(attempt) = self.store.attempt_by_req_id(&n.req_id).await? else {
                        return Err(NotifyRejection::Unknown);
                    };
                    if attempt.state != AttemptState::Creating || !self.adopt_lost(&attempt, Some(trx_id)).await? {
                        return Err(NotifyRejection::Unknown);
                    }
                    true
                }
            };
            if changed { "applied" } else { "ignored" }
        };
        self.store.record_notification(notify_id, trx_id, &n.status_text, outcome, self.clock.now_ms()).await?;
        tracing::info!(notify_id, trx_id, status = %n.status_text, outcome, "notification accepted");
        Ok(())
    }

    /// Follows payouts still creating or pending at Bestin Pay (by trx_id, or by our req_id when the create
    /// answer was lost). A failing row is skipped.
    ///
    /// # Errors
    /// Store errors of the queries that list the work.
    pub async fn poll_payouts_once(&self) -> Result<usize, AppError> {
        let Some(bestin) = self.providers.bestin.as_ref().map(|b| b.client.clone()) else { return Ok(0) };
        let now = self.clock.now_ms();
        let mut seen = 0;
        let quiet = now - self.settings.bestin.as_ref().map_or(60, |b| b.poll_after_secs) as i64 * 1000;
        for payout in self.store.payouts_in(&[PayoutState::Creating, PayoutState::Pending], quiet, 100).await? {
            seen += 1;
            let order = match &payout.trx_id {
                Some(trx) => bestin.query(trx, "payout").await,
                None => bestin.query_by_req_id(&payout.req_id, "payout").await,
            };
            let result = match order {
                Ok(order) if payout.trx_id.is_none() && parse_amount(&order.amount).ok() != Some(payout.amount) => {
                    tracing::error!(payout = %payout.id, "the payout found by req_id is not the one we asked for");
                    Ok(())
                }
                Ok(order) => self.apply_payout_status(&payout, &order.status, Some(order.trx_id.as_str())).await,
                Err(BestinError::Provider { .. }) if payout.status == PayoutState::Creating => self
                    .store
                    .transition_payout(
                        &payout.id,
                        &[PayoutState::Creating],
                        PayoutState::Failed,
                        None,
                        Some("not created at Bestin Pay"),
                        now,
                    )
                    .await
                    .map(|_| ())
                    .map_err(AppError::from),
                Err(e) => {
                    tracing::warn!(payout = %payout.id, error = %e, "payout query failed");
                    Ok(())
                }
            };
            if let Err(e) = result {
                tracing::error!(payout = %payout.id, error = %e.message, "payout poll failed; skipped");
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
    pub async fn create_payout(&self, req: &PayoutRequest) -> Result<PayoutAnswer, PayoutError> {
        let bestin = self.bestin_client()?;
        if req.currency != "INR" {
            return Err(PayoutError::InvalidCurrency);
        }
        let amount =
            Money::parse_positive(&req.amount, Currency::Inr).map_err(|e| PayoutError::InvalidAmount(e.to_string()))?;
        if !valid_vpa(&req.upi) {
            return Err(PayoutError::Invalid("upi must be a UPI address like name@bank"));
        }
        let reference = req.reference.trim();
        if reference.is_empty()
            || reference.len() > 64
            || !reference.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err(PayoutError::Invalid("reference must be 1 to 64 letters, digits, - _ ."));
        }
        if let Some(existing) = self.store.payout_by_reference(reference).await? {
            return same_payout(existing, amount, &req.upi).map(PayoutAnswer::Existing);
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
            return Err(PayoutError::InsufficientBalance(format!("available balance is {available}, below {amount}")));
        }
        let now = self.clock.now_ms();
        let id = format!("po_{}", &ids::refund_id().as_str()[3..]);
        let row = PayoutRow {
            req_id: ids::bestin_req_id("dpo"),
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
            return same_payout(existing, amount, &req.upi).map(PayoutAnswer::Existing);
        }
        let created = match bestin
            .payout(
                &row.req_id,
                amount,
                &row.upi,
                &self.providers.bestin.as_ref().map(|b| b.notify_url.clone()).unwrap_or_default(),
            )
            .await
        {
            Ok(order) => {
                self.apply_payout_status(&row, &order.status, Some(order.trx_id.as_str())).await?;
                true
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
                let balance = message.contains("balance");
                return Err(PayoutError::Refused { message, balance });
            }
            // No answer: the poller finds it by req_id; never send it twice.
            Err(_) => false,
        };
        let payout =
            self.store.payout(&row.id).await?.ok_or_else(|| AppError::internal(anyhow::anyhow!("payout vanished")))?;
        let payout = payout_view(payout);
        Ok(if created { PayoutAnswer::Created(payout) } else { PayoutAnswer::Accepted(payout) })
    }

    /// Reads a payout.
    ///
    /// # Errors
    /// `payout_not_found`.
    pub async fn get_payout(&self, id: &str) -> Result<Payout, PayoutError> {
        let p = self.store.payout(id).await?.ok_or(PayoutError::NotFound)?;
        Ok(payout_view(p))
    }

    /// Cancels a pending payout.
    ///
    /// # Errors
    /// `payout_not_found`, `nothing_to_cancel`, provider errors.
    pub async fn cancel_payout(&self, id: &str) -> Result<Payout, PayoutError> {
        let bestin = self.bestin_client()?;
        let p = self.store.payout(id).await?.ok_or(PayoutError::NotFound)?;
        let Some(trx_id) = p.trx_id.clone().filter(|_| p.status == PayoutState::Pending) else {
            return Err(PayoutError::NothingToCancel("only a pending payout can be canceled".into()));
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
                return Err(PayoutError::NothingToCancel(message));
            }
            Err(e) => return Err(provider_error(&e)),
        }
        self.get_payout(id).await
    }

    /// The merchant's balances at Bestin Pay.
    ///
    /// # Errors
    /// Provider errors.
    pub async fn balance(&self) -> Result<Vec<BalanceEntry>, PayoutError> {
        let rows = self.bestin_client()?.balance().await.map_err(|e| provider_error(&e))?;
        rows.into_iter()
            .filter(|r| r.ccy == "INR")
            .map(|r| {
                let parse = |t: &str| {
                    parse_amount(t)
                        .map(Money::to_decimal)
                        .map_err(|e| PayoutError::Provider(ProviderFailure::Refused(format!("balance: {e}"))))
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

fn same_payout(existing: PayoutRow, amount: Money, upi: &str) -> Result<Payout, PayoutError> {
    if existing.amount == amount && existing.upi == upi {
        Ok(payout_view(existing))
    } else {
        Err(PayoutError::ReferenceReused)
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
pub(crate) fn upi_response(attempt_id: AttemptId, links: UpiLinks, expires_at_ms: i64) -> StartUpiResponse {
    StartUpiResponse {
        attempt_id,
        qr: links.upi.clone(),
        qr_svg: crate::qr::draw(&links.upi),
        links,
        expires_at: rfc3339(expires_at_ms),
    }
}
