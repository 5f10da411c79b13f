//! The payment providers behind one seam.
//!
//! Each provider is a folder (`bkash/`, `bestin/`): its client, its wire types parsed at the boundary
//! (`transformers.rs`: `Money`, closed status enums, and the one total mapping from its statuses to [`Outcome`]),
//! its token manager or notification verifier where it has one. The payment core reaches a provider only through
//! [`Provider`], an enum over the configured providers that dispatches to each one's [`PaymentProvider`]
//! implementation; it gets back outcomes, never rows. A provider calls its API and reports; it never writes a
//! payment's state (the core does, in one transaction with the audit event and the webhook). A third wallet is one
//! more folder, one more variant of [`Provider`] (and its arm in `dispatch!`), and its arm in [`Providers::get`].

pub mod bestin;
pub mod bkash;
pub mod http;

use crate::store::AttemptRow;
use deshpay_api::{Method, Money, UpiLinks};
use std::future::Future;

/// A provider id that is not 1 to 64 visible ASCII characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a provider id: 1 to 64 visible ASCII characters expected")]
pub struct BadId;

/// Declares a provider id newtype: parsed once when a wire type is read (1 to 64 visible ASCII characters),
/// handed to the core as text.
macro_rules! provider_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
        #[serde(try_from = "String")]
        pub struct $name(String);

        impl $name {
            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The id as owned text (for the store).
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = $crate::providers::BadId;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                if (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_graphic()) {
                    Ok($name(s))
                } else {
                    Err($crate::providers::BadId)
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}
pub(crate) use provider_id;

/// What a provider says about a payment: the answer of a create, confirm (bKash Execute), sync (bKash Query,
/// Bestin `/query`) or a verified notification. The core, not the provider, decides what it does to the attempt
/// and the session.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The money moved.
    Paid(Paid),
    /// Not finished: the customer has not approved (bKash `Initiated`, Bestin `pending`).
    Pending,
    /// Approved and being confirmed by the provider (Bestin `confirming`).
    Confirming,
    /// A definitive refusal: no money moved, and asking again will not change it.
    Declined {
        /// The provider's code, when it gave one.
        code: Option<String>,
        /// The provider's reason (e.g. "Insufficient Balance").
        message: String,
    },
    /// bKash Execute 2056: the customer may not have approved yet; only a sync can tell.
    NotApproved {
        /// The provider's code.
        code: String,
        /// The provider's message.
        message: String,
    },
    /// Cancelled (by the customer or at the provider).
    Cancelled,
    /// The provider's payment request expired.
    Expired,
    /// An answer that decides nothing (a status or code we do not know): logged, asked again, never paid.
    Unknown(String),
    /// No usable answer (timeout, connection, 5xx, no token): the operation may or may not have happened.
    NoAnswer(String),
}

/// What the provider reports for a paid payment, parsed at its boundary.
#[derive(Debug, Clone)]
pub struct Paid {
    /// The provider's transaction id.
    pub trx_id: String,
    /// The amount the provider says was paid (`None`: it did not say, which never counts as a match).
    pub amount: Option<Money>,
    /// The payer, already masked.
    pub payer: Option<String>,
    /// The provider's order reference (bKash merchantInvoiceNumber), where it gives one.
    pub reference: Option<String>,
}

/// The order a provider is asked to create for an attempt.
#[derive(Debug, Clone, Copy)]
pub struct Order<'a> {
    /// The attempt, written as `creating` before the provider is called.
    pub attempt: &'a AttemptRow,
    /// The session's invoice (the merchant's order reference).
    pub invoice: &'a str,
    /// Where the provider's hosted page sends the customer back.
    pub return_url: &'a str,
}

/// A created payment at the provider.
#[derive(Debug, Clone)]
pub struct Started {
    /// The provider's id for it (bKash paymentID, Bestin trx_id).
    pub provider_ref: String,
    /// Where the customer goes (bKash's hosted page).
    pub redirect_url: Option<String>,
    /// Deep links for the customer's apps (UPI), without anything secret in them.
    pub links: Option<UpiLinks>,
    /// When the provider's request expires (Unix ms), where it does.
    pub expires_at: Option<i64>,
    /// What the create answer already says (a provider may report a final status at once).
    pub outcome: Outcome,
}

/// Why a create did not give the customer a payment to approve.
#[derive(Debug)]
pub struct StartFailure {
    /// What the API may tell the customer.
    pub failure: ProviderFailure,
    /// The provider's code, recorded on the attempt for the merchant.
    pub code: Option<String>,
    /// The provider's reason (or ours), recorded on the attempt for the merchant.
    pub message: String,
    /// The provider's id of an order it made that we refuse (its answer did not match ours).
    pub provider_ref: Option<String>,
    /// The provider may have created an order that can take money and that we can still find by our own
    /// reference: the attempt stays `creating` for the reconciler instead of being closed.
    pub in_doubt: bool,
    /// Detail for the audit event.
    pub detail: String,
}

/// A provider call that failed, in the words the API may show. The HTTP layer picks the status.
#[derive(Debug, Clone)]
pub enum ProviderFailure {
    /// No answer in time, or no credentials to call with: nothing is known to have happened.
    Unavailable(String),
    /// The provider refused (its words where they are meant for the customer, ours otherwise).
    Refused(String),
}

/// The result of asking the provider to confirm a claimed attempt.
#[derive(Debug)]
pub enum Confirm {
    /// Not sent (no credentials yet): the claim stays unstamped, so a later pass confirms it.
    NotSent(String),
    /// Another caller stamped the claim first: it confirms, this caller does not.
    Lost,
    /// Sent once; the provider's answer.
    Sent(Outcome),
}

/// The result of asking the provider to cancel a pending payment.
#[derive(Debug)]
pub enum Cancelled {
    /// Nothing at the provider can take money for it any more.
    Done,
    /// The provider had already finished it: its outcome, to be applied instead.
    Finished(Outcome),
    /// The provider could not be asked.
    Failed(ProviderFailure),
}

/// The provider's answer to a refund.
#[derive(Debug)]
pub enum RefundAnswer {
    /// Refunded, with the provider's refund transaction id.
    Done(String),
    /// A definitive refusal, with the provider's reason: no money was returned.
    Declined(String),
    /// Anything else (no answer, a system error, a code we do not know): the provider may have refunded.
    InDoubt(String),
}

/// One refund the provider knows of for a payment.
#[derive(Debug, Clone)]
pub struct RefundSeen {
    /// The provider's refund transaction id.
    pub refund_trx_id: String,
    /// Whether the provider says it completed.
    pub completed: bool,
    /// Its amount, when readable.
    pub amount: Option<Money>,
}

/// A payment found by our own reference after its create answer was lost.
#[derive(Debug)]
pub enum Found {
    /// The provider's order for our reference, checked against the attempt (amount, currency, reference).
    Order(Started),
    /// The provider has no such order: nothing can take money through the attempt.
    Nothing,
    /// The provider's order does not match the attempt, or the provider could not be asked.
    Unsure(String),
}

/// How a provider's customer approves, which decides how the core drives its attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// The customer approves on the provider's page and comes back; money moves only at our confirm (bKash
    /// Execute), so a create whose answer was lost can never take money.
    Redirect,
    /// The customer approves in an app; the provider notifies us, and we sync on a back-off schedule. A create
    /// whose answer was lost may take money and is found by our own reference.
    Push,
}

/// What each provider module implements. The core calls it through [`Provider`].
#[allow(async_fn_in_trait)]
pub trait PaymentProvider {
    /// The method it serves.
    fn method(&self) -> Method;
    /// How its customers approve.
    fn flow(&self) -> Flow;
    /// Fills in what the provider needs on a new attempt before it is written (a secret reference, the first
    /// check time).
    fn prepare(&self, attempt: &mut AttemptRow, now: i64);
    /// Creates the payment at the provider (the attempt is already written as `creating`).
    async fn start(&self, order: Order<'_>) -> Result<Started, StartFailure>;
    /// Confirms a claimed attempt (bKash Execute), at most once: `claim` is the conditional stamp, awaited right
    /// before the call and only once the call can be made; a lost stamp means another caller confirms it.
    async fn confirm<C>(&self, attempt: &AttemptRow, claim: C) -> Result<Confirm, sqlx::Error>
    where
        C: Future<Output = Result<bool, sqlx::Error>>;
    /// Reads the payment's status at the provider.
    async fn sync(&self, attempt: &AttemptRow) -> Outcome;
    /// Finds an order created for the attempt whose create answer was lost, by our own reference (`trx_id`: the
    /// id a notification named, which must match).
    async fn find_lost(&self, attempt: &AttemptRow, trx_id: Option<&str>) -> Found;
    /// Cancels a pending payment at the provider (nothing to do where money moves only at our confirm).
    async fn cancel(&self, attempt: &AttemptRow) -> Cancelled;
    /// When to sync an attempt next after a check now (`None`: no more scheduled checks).
    fn next_check(&self, attempt: &AttemptRow, now: i64) -> Option<i64>;
    /// Whether it refunds payments.
    fn refunds(&self) -> bool;
    /// Refunds part or all of a paid attempt.
    async fn refund(&self, attempt: &AttemptRow, amount: Money, sku: &str, reason: &str) -> RefundAnswer;
    /// The refunds the provider knows of for a paid attempt (`None`: it could not be asked).
    async fn refunds_of(&self, attempt: &AttemptRow) -> Option<Vec<RefundSeen>>;
}

/// The configured providers.
#[derive(Debug)]
pub struct Providers {
    /// bKash (always configured).
    pub bkash: bkash::Bkash,
    /// Bestin Pay (UPI), when configured.
    pub bestin: Option<bestin::Bestin>,
}

impl Providers {
    /// The provider of `method`, when it is configured.
    pub fn get(&self, method: Method) -> Option<Provider<'_>> {
        match method {
            Method::Bkash => Some(Provider::Bkash(&self.bkash)),
            Method::Upi => self.bestin.as_ref().map(Provider::Bestin),
        }
    }

    /// Every configured provider.
    pub fn all(&self) -> impl Iterator<Item = Provider<'_>> {
        [Method::Bkash, Method::Upi].into_iter().filter_map(|m| self.get(m))
    }
}

/// One configured provider: the enum the core dispatches through.
#[derive(Debug, Clone, Copy)]
pub enum Provider<'a> {
    /// bKash.
    Bkash(&'a bkash::Bkash),
    /// Bestin Pay (UPI).
    Bestin(&'a bestin::Bestin),
}

/// Calls the same [`PaymentProvider`] method on whichever provider `$p` is.
macro_rules! dispatch {
    ($self:expr, $p:ident => $call:expr) => {
        match $self {
            Provider::Bkash($p) => $call,
            Provider::Bestin($p) => $call,
        }
    };
}

impl Provider<'_> {
    /// See [`PaymentProvider::method`].
    pub fn method(self) -> Method {
        dispatch!(self, p => p.method())
    }
    /// See [`PaymentProvider::flow`].
    pub fn flow(self) -> Flow {
        dispatch!(self, p => p.flow())
    }
    /// See [`PaymentProvider::prepare`].
    pub fn prepare(self, attempt: &mut AttemptRow, now: i64) {
        dispatch!(self, p => p.prepare(attempt, now))
    }
    /// See [`PaymentProvider::start`].
    ///
    /// # Errors
    /// A [`StartFailure`] when no payment was created for the customer.
    pub async fn start(self, order: Order<'_>) -> Result<Started, StartFailure> {
        dispatch!(self, p => p.start(order).await)
    }
    /// See [`PaymentProvider::confirm`].
    ///
    /// # Errors
    /// The claim's store error.
    pub async fn confirm<C>(self, attempt: &AttemptRow, claim: C) -> Result<Confirm, sqlx::Error>
    where
        C: Future<Output = Result<bool, sqlx::Error>>,
    {
        dispatch!(self, p => p.confirm(attempt, claim).await)
    }
    /// See [`PaymentProvider::sync`].
    pub async fn sync(self, attempt: &AttemptRow) -> Outcome {
        dispatch!(self, p => p.sync(attempt).await)
    }
    /// See [`PaymentProvider::find_lost`].
    pub async fn find_lost(self, attempt: &AttemptRow, trx_id: Option<&str>) -> Found {
        dispatch!(self, p => p.find_lost(attempt, trx_id).await)
    }
    /// See [`PaymentProvider::cancel`].
    pub async fn cancel(self, attempt: &AttemptRow) -> Cancelled {
        dispatch!(self, p => p.cancel(attempt).await)
    }
    /// See [`PaymentProvider::next_check`].
    pub fn next_check(self, attempt: &AttemptRow, now: i64) -> Option<i64> {
        dispatch!(self, p => p.next_check(attempt, now))
    }
    /// See [`PaymentProvider::refunds`].
    pub fn refunds(self) -> bool {
        dispatch!(self, p => p.refunds())
    }
    /// See [`PaymentProvider::refund`].
    pub async fn refund(self, attempt: &AttemptRow, amount: Money, sku: &str, reason: &str) -> RefundAnswer {
        dispatch!(self, p => p.refund(attempt, amount, sku, reason).await)
    }
    /// See [`PaymentProvider::refunds_of`].
    pub async fn refunds_of(self, attempt: &AttemptRow) -> Option<Vec<RefundSeen>> {
        dispatch!(self, p => p.refunds_of(attempt).await)
    }
}
