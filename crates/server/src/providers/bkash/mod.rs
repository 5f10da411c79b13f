//! bKash (tokenized checkout, redirect flow): the client, its wire types and their mapping to outcomes, the
//! declines table, the shared id_token. [`Bkash`] is what the payment core calls (through
//! [`crate::providers::Provider`]); money moves only at our Execute, sent once per claimed attempt.

pub mod client;
pub mod codes;
pub mod ipn;
pub mod token;
pub mod transformers;

use self::client::{BkashClient, BkashError};
use self::codes::ExecuteCode;
use self::token::{TokenError, TokenManager};
use self::transformers::{SearchResponse, TransactionStatus};
use crate::providers::{
    Cancelled, Confirm, Flow, Found, Order, Outcome, PaymentProvider, ProviderFailure, RefundAnswer, RefundSeen,
    StartFailure, Started,
};
use crate::store::AttemptRow;
use deshpay_api::{Method, Money};
use secrecy::{ExposeSecret, SecretString};
use std::future::Future;
use std::sync::Arc;

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
    /// bKash's own code and message, when it answered with one.
    pub fn provider(&self) -> Option<(&str, &str)> {
        match self {
            CallError::Bkash(BkashError::Provider { code, message }) => Some((code, message)),
            _ => None,
        }
    }

    /// What the API may say about it: a sign-in block, bKash's own message, or "no answer".
    pub fn failure(&self) -> ProviderFailure {
        if let CallError::Token(blocked @ TokenError::GrantBlocked { .. }) = self {
            return ProviderFailure::Unavailable(blocked.to_string());
        }
        match self.provider() {
            Some((_, message)) => ProviderFailure::Refused(message.to_owned()),
            None => ProviderFailure::Unavailable(
                "bKash did not answer in time; nothing was charged, please try again".into(),
            ),
        }
    }
}

/// The bKash provider: the client, the shared token, and our callback URL.
#[derive(Debug)]
pub struct Bkash {
    /// The HTTP client (one per merchant credential).
    pub client: Arc<BkashClient>,
    /// The shared id_token.
    pub tokens: TokenManager,
    /// Where bKash sends the customer back (`{public_url}/v1/bkash/callback`).
    callback_url: String,
}

impl Bkash {
    /// Wraps the client and the token manager; `public_url` is the backend's own origin.
    pub fn new(client: Arc<BkashClient>, tokens: TokenManager, public_url: &str) -> Self {
        Bkash { client, tokens, callback_url: format!("{public_url}/v1/bkash/callback") }
    }

    /// Runs a bKash call with the shared token; after a gateway 401/403 the token is renewed and the call made
    /// once more (the gateway refused the first one, so bKash never saw it).
    ///
    /// # Errors
    /// No token, or the call's own error.
    pub async fn with_token<T, F, Fut>(&self, call: F) -> Result<T, CallError>
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

    /// Search Transaction.
    ///
    /// # Errors
    /// [`CallError`]; [`codes::not_found`] tells "no such transaction" among bKash's codes.
    pub async fn search(&self, trx_id: &str) -> Result<SearchResponse, CallError> {
        self.with_token(|t| {
            let client = self.client.clone();
            let trx_id = trx_id.to_owned();
            async move { client.search(&t, &trx_id).await }
        })
        .await
    }

    fn ids(attempt: &AttemptRow) -> Option<(String, String)> {
        Some((attempt.provider_ref.clone()?, attempt.trx_id.clone()?))
    }
}

impl PaymentProvider for Bkash {
    fn method(&self) -> Method {
        Method::Bkash
    }

    fn flow(&self) -> Flow {
        Flow::Redirect
    }

    fn prepare(&self, _attempt: &mut AttemptRow, _now: i64) {}

    async fn start(&self, order: Order<'_>) -> Result<Started, StartFailure> {
        let amount = order.attempt.amount;
        let created = self
            .with_token(|t| {
                let client = self.client.clone();
                let (invoice, callback) = (order.invoice.to_owned(), self.callback_url.clone());
                async move { client.create(&t, amount, &invoice, &callback).await }
            })
            .await;
        match created {
            Ok(c) => Ok(Started {
                provider_ref: c.payment_id.into_string(),
                redirect_url: Some(c.bkash_url),
                links: None,
                expires_at: None,
                outcome: Outcome::Pending,
            }),
            // A paymentID bKash may have made without telling us can never be executed (its callback finds no
            // attempt), so nothing is in doubt: the attempt is closed.
            Err(e) => {
                let (code, message) = match e.provider() {
                    Some((c, m)) => (Some(c.to_owned()), m.to_owned()),
                    None => (None, "bKash did not answer".to_owned()),
                };
                // bKash's own words reach the customer only for a customer decline; other provider text
                // (configuration, gateway, system) stays in the logs and the merchant API.
                let failure = match e.provider() {
                    Some((code, _)) if codes::execute_code(code) != ExecuteCode::Declined => ProviderFailure::Refused(
                        "bKash could not start the payment; nothing was charged. Please try again later.".into(),
                    ),
                    _ => e.failure(),
                };
                Err(StartFailure { failure, code, message, provider_ref: None, in_doubt: false, detail: e.to_string() })
            }
        }
    }

    async fn confirm<C>(&self, attempt: &AttemptRow, claim: C) -> Result<Confirm, sqlx::Error>
    where
        C: Future<Output = Result<bool, sqlx::Error>>,
    {
        let Some(payment_id) = attempt.provider_ref.clone() else {
            return Ok(Confirm::NotSent(format!("attempt {} has no paymentID", attempt.id)));
        };
        let token = match self.tokens.id_token().await {
            Ok(t) => t,
            // Execute was not sent; the reconciler sends it once a token can be had.
            Err(e) => return Ok(Confirm::NotSent(e.to_string())),
        };
        // The claim, written before acting: from here on a crash is resolved by Query, never by a second Execute.
        if !claim.await? {
            return Ok(Confirm::Lost);
        }
        let mut result = self.client.execute(&token, &payment_id).await;
        if let Err(e) = &result
            && e.is_unauthorized()
        {
            // Refused at the gateway: bKash never saw it, so this is still the first Execute.
            self.tokens.invalidate(token.expose_secret()).await;
            result = match self.tokens.id_token().await {
                Ok(t) => self.client.execute(&t, &payment_id).await,
                Err(_) => Err(BkashError::Transport("no token".into())),
            };
        }
        Ok(Confirm::Sent(transformers::execute_outcome(result)))
    }

    async fn sync(&self, attempt: &AttemptRow) -> Outcome {
        let payment_id = attempt.provider_ref.clone().unwrap_or_default();
        let queried = self
            .with_token(|t| {
                let client = self.client.clone();
                let payment_id = payment_id.clone();
                async move { client.query(&t, &payment_id).await }
            })
            .await;
        match queried {
            Ok(r) => transformers::outcome(r),
            Err(CallError::Bkash(e)) => transformers::query_outcome(Err(e)),
            Err(e @ CallError::Token(_)) => Outcome::NoAnswer(e.to_string()),
        }
    }

    async fn find_lost(&self, _attempt: &AttemptRow, _trx_id: Option<&str>) -> Found {
        // A paymentID whose create answer was lost is never executed, so it cannot take money.
        Found::Nothing
    }

    async fn cancel(&self, _attempt: &AttemptRow) -> Cancelled {
        // bKash has no cancel; a cancelled attempt is never executed, so no money can move through it.
        Cancelled::Done
    }

    fn next_check(&self, _attempt: &AttemptRow, _now: i64) -> Option<i64> {
        None
    }

    fn refunds(&self) -> bool {
        true
    }

    async fn refund(&self, attempt: &AttemptRow, amount: Money, sku: &str, reason: &str) -> RefundAnswer {
        let Some((payment_id, trx_id)) = Self::ids(attempt) else {
            return RefundAnswer::InDoubt(format!("paid attempt {} lacks provider ids", attempt.id));
        };
        let result = self
            .with_token(|t| {
                let client = self.client.clone();
                let (payment_id, trx_id, sku, reason) =
                    (payment_id.clone(), trx_id.clone(), sku.to_owned(), reason.to_owned());
                async move { client.refund(&t, &payment_id, &trx_id, amount, &sku, &reason).await }
            })
            .await;
        match result {
            Ok(record) => RefundAnswer::Done(record.refund_trx_id.into_string()),
            Err(e) => match e.provider() {
                Some((code, message)) if codes::refund_declined(code) => RefundAnswer::Declined(message.to_owned()),
                _ => RefundAnswer::InDoubt(e.to_string()),
            },
        }
    }

    async fn refunds_of(&self, attempt: &AttemptRow) -> Option<Vec<RefundSeen>> {
        let (payment_id, trx_id) = Self::ids(attempt)?;
        let records = self
            .with_token(|t| {
                let client = self.client.clone();
                let (payment_id, trx_id) = (payment_id.clone(), trx_id.clone());
                async move { client.refund_status(&t, &payment_id, &trx_id).await }
            })
            .await
            .ok()?;
        Some(
            records
                .into_iter()
                .map(|r| RefundSeen {
                    refund_trx_id: r.refund_trx_id.into_string(),
                    completed: r.status.as_ref().is_none_or(|s| *s == TransactionStatus::Completed),
                    amount: r.amount,
                })
                .collect(),
        )
    }
}
