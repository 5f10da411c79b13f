//! Bestin Pay (UPI, push flow): the client, its wire types and their mapping to outcomes, the verifier of its
//! signed notifications. [`Bestin`] is what the payment core calls (through [`crate::providers::Provider`]);
//! payouts and the balance are merchant operations on [`Bestin::client`].

pub mod client;
pub mod notify;
pub mod transformers;

use self::client::{BestinClient, BestinError};
use self::notify::NotifyVerifier;
use self::transformers::{links_of, order_outcome, parse_amount, req_id_matches};
use crate::clock::Clock;
use crate::providers::{
    Cancelled, Confirm, Flow, Found, Order, Outcome, PaymentProvider, ProviderFailure, RefundAnswer, RefundSeen,
    StartFailure, Started,
};
use crate::store::AttemptRow;
use deshpay_api::{Method, Money};
use std::future::Future;
use std::sync::Arc;

/// First /query of a payin no earlier than this after its creation (money rule 9: notifications come first).
const FIRST_CHECK_MS: i64 = 25_000;

/// When the later /query checks of a payin happen, after its creation; then no more (notifications and the
/// customer's own status checks go on).
const CHECK_SCHEDULE_MS: [i64; 7] = [25_000, 60_000, 120_000, 240_000, 480_000, 900_000, 960_000];

/// What the API may say about a failed Bestin Pay call.
pub fn failure(e: &BestinError) -> ProviderFailure {
    match e {
        BestinError::Provider { message, .. } => ProviderFailure::Refused(message.clone()),
        _ => ProviderFailure::Unavailable("Bestin Pay did not answer in time; please try again".into()),
    }
}

/// The Bestin Pay provider.
#[derive(Debug)]
pub struct Bestin {
    /// The HTTP client.
    pub client: Arc<BestinClient>,
    /// Verifies the signed notifications.
    pub verifier: NotifyVerifier,
    /// Our merchant id (`data.mid` of the notifications that are ours).
    pub merchant_id: String,
    /// Where Bestin Pay notifies us (`{public_url}/v1/bestinpay/notify`).
    pub notify_url: String,
    payin_ttl_ms: i64,
    clock: Clock,
}

impl Bestin {
    /// Wraps the client and the verifier; `public_url` is the backend's own origin.
    pub fn new(
        client: Arc<BestinClient>,
        verifier: NotifyVerifier,
        merchant_id: String,
        public_url: &str,
        payin_ttl_secs: u64,
        clock: Clock,
    ) -> Self {
        Bestin {
            client,
            verifier,
            merchant_id,
            notify_url: format!("{public_url}/v1/bestinpay/notify"),
            payin_ttl_ms: i64::try_from(payin_ttl_secs).unwrap_or(900).saturating_mul(1000),
            clock,
        }
    }
}

impl PaymentProvider for Bestin {
    fn method(&self) -> Method {
        Method::Upi
    }

    fn flow(&self) -> Flow {
        Flow::Push
    }

    fn prepare(&self, attempt: &mut AttemptRow, now: i64) {
        // A secret of its own, so that a lost answer can be found by /query and no one can forge a match.
        attempt.req_id = Some(crate::ids::bestin_req_id("dp"));
        attempt.next_check_at = Some(now + FIRST_CHECK_MS);
    }

    async fn start(&self, order: Order<'_>) -> Result<Started, StartFailure> {
        let attempt = order.attempt;
        let req_id = attempt.req_id.clone().unwrap_or_default();
        let created = self.client.payin(&req_id, attempt.amount, &self.notify_url, order.return_url).await;
        let payin = match created {
            Ok(o) => o,
            Err(e) => {
                let (code, message) = match &e {
                    BestinError::Provider { code, message } => (Some(code.clone()), message.clone()),
                    other => (None, other.to_string()),
                };
                // A payin that may exist without our knowing stays "creating" for the poller to find by req_id.
                return Err(StartFailure {
                    failure: failure(&e),
                    code,
                    message,
                    provider_ref: None,
                    in_doubt: e.is_no_response(),
                    detail: "payin".into(),
                });
            }
        };
        let amount_ok = parse_amount(&payin.amount).ok() == Some(attempt.amount) && req_id_matches(&payin, &req_id);
        let Some(links) = links_of(&payin, &req_id).filter(|_| amount_ok) else {
            tracing::error!(trx_id = %payin.trx_id, "bestin payin answer does not match the request");
            // The customer never sees these links; the core cancels the payin once the attempt is closed.
            return Err(StartFailure {
                failure: ProviderFailure::Refused("the provider's answer did not match".into()),
                code: None,
                message: "the provider's answer did not match the order".into(),
                provider_ref: Some(payin.trx_id.into_string()),
                in_doubt: false,
                detail: "payin mismatch".into(),
            });
        };
        Ok(Started {
            outcome: order_outcome(&payin),
            provider_ref: payin.trx_id.into_string(),
            redirect_url: None,
            links: Some(links),
            expires_at: Some(self.clock.now_ms() + self.payin_ttl_ms),
        })
    }

    async fn confirm<C>(&self, _attempt: &AttemptRow, _claim: C) -> Result<Confirm, sqlx::Error>
    where
        C: Future<Output = Result<bool, sqlx::Error>>,
    {
        // The customer confirms in the UPI app; there is nothing for us to send.
        Ok(Confirm::NotSent("UPI payments are confirmed in the customer's app".into()))
    }

    async fn sync(&self, attempt: &AttemptRow) -> Outcome {
        let Some(trx_id) = attempt.provider_ref.as_deref() else {
            return Outcome::Unknown("no trx_id recorded".into());
        };
        match self.client.query(trx_id, "payin").await {
            Ok(order) => order_outcome(&order),
            Err(e @ BestinError::Provider { .. }) => Outcome::Unknown(e.to_string()),
            Err(e) => Outcome::NoAnswer(e.to_string()),
        }
    }

    async fn find_lost(&self, attempt: &AttemptRow, trx_id: Option<&str>) -> Found {
        let Some(req_id) = attempt.req_id.clone() else { return Found::Unsure("no req_id".into()) };
        let order = match self.client.query_by_req_id(&req_id, "payin").await {
            Ok(order) => order,
            // Bestin Pay has no such payin: nothing can take money through it.
            Err(BestinError::Provider { .. }) => return Found::Nothing,
            Err(e) => return Found::Unsure(format!("payin query by req_id failed: {e}")),
        };
        let matches = trx_id.is_none_or(|t| t == order.trx_id.as_str())
            && parse_amount(&order.amount).ok() == Some(attempt.amount)
            && order.ccy.as_deref().is_none_or(|c| c == "INR")
            && req_id_matches(&order, &req_id);
        if !matches {
            tracing::error!(attempt = %attempt.id, "the order found by req_id is not the one we asked for");
            return Found::Unsure("the order found by req_id is not the one we asked for".into());
        }
        Found::Order(Started {
            outcome: order_outcome(&order),
            links: links_of(&order, &req_id),
            provider_ref: order.trx_id.into_string(),
            redirect_url: None,
            expires_at: Some(attempt.created_at + self.payin_ttl_ms),
        })
    }

    async fn cancel(&self, attempt: &AttemptRow) -> Cancelled {
        let trx_id = attempt.provider_ref.clone().unwrap_or_default();
        match self.client.cancel(&trx_id, "payin").await {
            Ok(_) => Cancelled::Done,
            // Final at the provider already (approved, declined, expired): take its word.
            Err(BestinError::Provider { .. }) => match self.client.query(&trx_id, "payin").await {
                Ok(order) => Cancelled::Finished(order_outcome(&order)),
                Err(e) => Cancelled::Failed(failure(&e)),
            },
            Err(e) => Cancelled::Failed(failure(&e)),
        }
    }

    /// The next check on the back-off schedule, counted from the payin's creation.
    fn next_check(&self, attempt: &AttemptRow, now: i64) -> Option<i64> {
        let done = usize::try_from(attempt.checks).unwrap_or(usize::MAX).saturating_add(1);
        CHECK_SCHEDULE_MS.get(done).map(|offset| (attempt.created_at + offset).max(now + 1_000))
    }

    fn refunds(&self) -> bool {
        false
    }

    async fn refund(&self, _attempt: &AttemptRow, _amount: Money, _sku: &str, _reason: &str) -> RefundAnswer {
        RefundAnswer::Declined("refunds are available for bKash payments".into())
    }

    async fn refunds_of(&self, _attempt: &AttemptRow) -> Option<Vec<RefundSeen>> {
        None
    }
}
