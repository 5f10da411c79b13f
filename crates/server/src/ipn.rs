//! bKash's IPN (Instant Payment Notification over Amazon SNS): `POST /v1/bkash/ipn`.
//!
//! The envelope is verified first (`providers::bkash::ipn`: our topic, an allowed certificate host, SNS's
//! signature, version 1 or 2). A verified `SubscriptionConfirmation` is confirmed. A verified `Notification` is
//! deduplicated by its MessageId (durably, `bkash_ipn_messages`), then fed to the payment core:
//!
//! - a trxID already recorded on an attempt changes nothing;
//! - otherwise the bKash attempts we recorded for the payload's `merchantInvoiceNumber` with the same amount are
//!   asked through the core: a waiting attempt is claimed and executed once (the customer closed the tab before
//!   the callback: the same claim as the callback's, so a callback, a reconciler and a redelivered IPN never
//!   execute twice); a closed one is queried, and a success the provider confirms is a late success or review.
//!   The IPN's own words never pay: only the provider's Execute/Query answer on a paymentID we recorded does;
//! - while an attempt of that invoice is being confirmed, or bKash gave no usable answer about one, the answer is 503 (SNS retries, and by then the
//!   confirm has decided);
//! - a payment that none of ours turns out to be (QR, USSD, app payments, another amount or invoice) is recorded
//!   in `bkash_unmatched` with an audit event and a `payment.unmatched` webhook in one transaction, listed by
//!   `GET /v1/bkash/unmatched`, and never attached to a session.

use crate::clock::rfc3339;
use crate::error::AppError;
use crate::providers::Outcome;
use crate::providers::bkash::ipn::{IpnRejection, Kind};
use crate::state::AppState;
use crate::store::{AttemptState, UnmatchedRow};
use crate::webhooks;
use deshpay_api::{Currency, Method, Money, UnmatchedPayment};
use serde_json::Value;

/// Why an IPN was not taken.
#[derive(Debug)]
pub enum IpnError {
    /// The envelope was refused (nothing changed).
    Rejected(IpnRejection),
    /// A verified notification whose bKash payload cannot be read.
    BadPayload(&'static str),
    /// An attempt of this payment is being confirmed right now: SNS should deliver it again later.
    Pending,
    /// Our store failed.
    Internal(AppError),
}

crate::error::internal_from!(IpnError);

impl From<IpnRejection> for IpnError {
    fn from(e: IpnRejection) -> Self {
        IpnError::Rejected(e)
    }
}

/// What a taken IPN did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpnDone {
    /// The subscription was confirmed.
    Subscribed,
    /// A MessageId handled before.
    Duplicate,
    /// Handled; the outcome as recorded (`known`, `matched`, `unmatched`, `ignored`).
    Handled(&'static str),
}

/// bKash's payload inside `Message`.
#[derive(Debug)]
struct IpnPayment {
    trx_id: String,
    amount: Money,
    /// `saleAmount`: the amount before a bKash coupon, when one applied (`amount` is then what is settled).
    sale_amount: Option<Money>,
    status: String,
    invoice: Option<String>,
    payer: Option<String>,
    transaction_type: Option<String>,
    reference: Option<String>,
    date_time: Option<String>,
}

fn parse_payment(message: &str) -> Result<IpnPayment, &'static str> {
    let v: Value = serde_json::from_str(message).map_err(|_| "Message is not JSON")?;
    let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned).filter(|s| !s.is_empty());
    let trx_id = text("trxID").ok_or("trxID missing")?;
    if trx_id.len() > 64 || !trx_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err("trxID malformed");
    }
    let currency = text("currency").unwrap_or_else(|| "BDT".into());
    if currency != "BDT" {
        return Err("currency is not BDT");
    }
    let amount = text("amount").ok_or("amount missing")?;
    let amount = Money::parse_positive(&amount, Currency::Bdt).map_err(|_| "amount malformed")?;
    let sale_amount = text("saleAmount").and_then(|a| Money::parse_positive(&a, Currency::Bdt).ok());
    Ok(IpnPayment {
        trx_id,
        amount,
        sale_amount,
        status: text("transactionStatus").unwrap_or_default(),
        invoice: text("merchantInvoiceNumber"),
        payer: text("debitMSISDN"),
        transaction_type: text("transactionType"),
        reference: text("transactionReference"),
        date_time: text("dateTime"),
    })
}

impl AppState {
    /// Takes one SNS delivery to `POST /v1/bkash/ipn` (`header_type`: `x-amz-sns-message-type`).
    ///
    /// # Errors
    /// An [`IpnError`]; a refused envelope changes nothing.
    #[tracing::instrument(skip_all)]
    pub async fn bkash_ipn(&self, header_type: Option<&str>, body: &[u8]) -> Result<IpnDone, IpnError> {
        let envelope = self.ipn_verifier.verify(body, header_type, self.clock.now_ms()).await?;
        match envelope.kind {
            Kind::SubscriptionConfirmation => {
                self.ipn_verifier.confirm(&envelope).await?;
                tracing::info!(message_id = %envelope.message_id, "bKash IPN subscription confirmed");
                self.metrics.ipn("subscribed");
                Ok(IpnDone::Subscribed)
            }
            Kind::UnsubscribeConfirmation => {
                tracing::warn!(message_id = %envelope.message_id, "bKash IPN subscription ended by SNS");
                self.metrics.ipn("unsubscribed");
                Ok(IpnDone::Handled("ignored"))
            }
            Kind::Notification => {
                if self.store.ipn_message_seen(&envelope.message_id).await? {
                    self.metrics.ipn("duplicate");
                    return Ok(IpnDone::Duplicate);
                }
                let payment = match parse_payment(&envelope.message) {
                    Ok(payment) => payment,
                    Err(why) => {
                        // SNS does not retry a 4xx: what bKash said is kept (audit event `bkash.ipn_unreadable`)
                        // and the MessageId marked handled before it is refused, so no payment is lost unseen.
                        let now = self.clock.now_ms();
                        let detail = serde_json::json!({
                            "message_id": envelope.message_id, "why": why, "message": envelope.message,
                        });
                        self.store.add_event(None, None, "bkash.ipn_unreadable", &detail.to_string(), now).await?;
                        self.store.record_ipn_message(&envelope.message_id, None, "unreadable", now).await?;
                        tracing::error!(message_id = %envelope.message_id, why, "verified bKash IPN whose payload cannot be read: kept as event bkash.ipn_unreadable");
                        return Err(IpnError::BadPayload(why));
                    }
                };
                let outcome = if payment.status == "Completed" {
                    self.settle_ipn(&payment, &envelope.message_id).await?
                } else {
                    tracing::warn!(trx_id = %payment.trx_id, status = %payment.status, "bKash IPN of a payment that is not completed; ignored");
                    "ignored"
                };
                let now = self.clock.now_ms();
                self.store.record_ipn_message(&envelope.message_id, Some(&payment.trx_id), outcome, now).await?;
                tracing::info!(message_id = %envelope.message_id, trx_id = %payment.trx_id, outcome, "bKash IPN handled");
                self.metrics.ipn(outcome);
                Ok(IpnDone::Handled(outcome))
            }
        }
    }

    /// Feeds a completed payment to the core (see the module docs). Returns the outcome to record.
    async fn settle_ipn(&self, p: &IpnPayment, message_id: &str) -> Result<&'static str, IpnError> {
        if self.store.attempt_by_trx_id(Method::Bkash, &p.trx_id).await?.is_some() {
            return Ok("known");
        }
        let candidates = match &p.invoice {
            Some(invoice) => self.store.attempts_for_invoice(Method::Bkash, invoice).await?,
            None => Vec::new(),
        };
        let mut confirming = false;
        let ours = |amount: Money| amount == p.amount || Some(amount) == p.sale_amount;
        for attempt in candidates.into_iter().filter(|a| ours(a.amount)) {
            match attempt.state {
                // The customer approved and the callback never came (or has not yet): the same claim and single
                // Execute as the callback's.
                AttemptState::Created => {
                    self.claim_and_confirm(&attempt).await?;
                }
                AttemptState::Executing => confirming = true,
                AttemptState::Completed | AttemptState::Review | AttemptState::Creating => {}
                _ => {
                    // Closed in our books: the provider is asked, and a success it confirms is settled by the core.
                    let provider = self.provider_of(&attempt)?;
                    match provider.sync(&attempt).await {
                        outcome @ Outcome::Paid(_) => {
                            self.apply_outcome(&attempt, outcome, "ipn query").await?;
                        }
                        // bKash could not tell: this payment may be ours, so it is not filed as unmatched; SNS
                        // delivers it again.
                        Outcome::NoAnswer(_) | Outcome::Unknown(_) => confirming = true,
                        _ => {}
                    }
                }
            }
            if self.store.attempt_by_trx_id(Method::Bkash, &p.trx_id).await?.is_some() {
                return Ok("matched");
            }
            if self.store.attempt(&attempt.id).await?.is_some_and(|a| a.state == AttemptState::Executing) {
                confirming = true;
            }
        }
        if confirming {
            return Err(IpnError::Pending);
        }
        self.record_unmatched(p, message_id).await?;
        Ok("unmatched")
    }

    async fn record_unmatched(&self, p: &IpnPayment, message_id: &str) -> Result<(), AppError> {
        let now = self.clock.now_ms();
        let row = UnmatchedRow {
            trx_id: p.trx_id.clone(),
            amount_minor: p.amount.minor(),
            currency: p.amount.currency().code().to_owned(),
            payer: p.payer.clone(),
            transaction_type: p.transaction_type.clone(),
            invoice: p.invoice.clone(),
            reference: p.reference.clone(),
            paid_at: p.date_time.clone(),
            message_id: message_id.to_owned(),
            created_at: now,
        };
        let webhook = webhooks::payment_unmatched(self, unmatched_view(&row));
        if self.store.record_unmatched(&row, webhook.as_ref()).await? {
            tracing::warn!(trx_id = %p.trx_id, amount = %p.amount, "bKash payment that matches no payment of ours: recorded");
            if webhook.is_some() {
                self.wake_webhooks();
            }
        }
        Ok(())
    }

    /// The unmatched bKash payments, newest first (at most 500).
    ///
    /// # Errors
    /// Store errors.
    pub async fn unmatched_payments(&self) -> Result<Vec<UnmatchedPayment>, AppError> {
        Ok(self.store.unmatched(500).await?.iter().map(unmatched_view).collect())
    }
}

fn unmatched_view(row: &UnmatchedRow) -> UnmatchedPayment {
    let amount = Money::from_minor(row.amount_minor, Currency::Bdt).map(Money::to_decimal).unwrap_or_default();
    UnmatchedPayment {
        trx_id: row.trx_id.clone(),
        amount,
        amount_minor: row.amount_minor,
        currency: Currency::Bdt,
        payer: row.payer.clone(),
        transaction_type: row.transaction_type.clone(),
        invoice: row.invoice.clone(),
        reference: row.reference.clone(),
        paid_at: row.paid_at.clone(),
        created_at: rfc3339(row.created_at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attack_payloads_without_a_clean_trx_id_or_amount_are_refused() {
        let ok = r#"{"trxID":"ABC123","amount":"250.00","currency":"BDT","transactionStatus":"Completed"}"#;
        assert_eq!(parse_payment(ok).unwrap().amount.minor(), 25_000);
        for bad in [
            r#"{"amount":"250.00"}"#,
            r#"{"trxID":"A' OR 1=1","amount":"1.00"}"#,
            r#"{"trxID":"A1","amount":"-1.00"}"#,
            r#"{"trxID":"A1","amount":"1.00","currency":"USD"}"#,
            r#"{"trxID":"A1","amount":1.0}"#,
            "not json",
        ] {
            assert!(parse_payment(bad).is_err(), "{bad}");
        }
    }
}
