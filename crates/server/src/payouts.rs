//! UPI through Bestin Pay: start a payin (fresh req_id per attempt), learn the outcome from signed
//! notifications (verified, deduplicated, never moving a final status backwards) with /query as the fallback
//! poller, cancel, and the merchant's payouts and balance.

use crate::clock::rfc3339;
use crate::error::AppError;
use crate::ids::{self, mask};
use crate::payments::Confirmed;
use crate::providers::bestin::client::{BestinClient, BestinError, BestinStatus, Order, parse_amount};
use crate::state::AppState;
use crate::store::{AttemptPatch, AttemptRow, AttemptState, Begin, PayoutRow, PayoutState};
use axum::http::StatusCode;
use deshpay_api::{
    AttemptId, BalanceEntry, Currency, ErrorCode, Method, Money, Payout, PayoutRequest, PayoutStatus, SessionId,
    StartUpiResponse, UpiLinks,
};
use serde_json::Value;
use std::sync::Arc;

/// States a UPI attempt can still leave.
const OPEN_UPI: [AttemptState; 2] = [AttemptState::Created, AttemptState::Executing];

/// First /query of a payin no earlier than this after its creation (money rule 9: notifications come first).
const FIRST_CHECK_MS: i64 = 25_000;

/// When the later /query checks of a payin happen, after its creation; then no more (notifications and the
/// customer's own status checks go on).
const CHECK_SCHEDULE_MS: [i64; 7] = [25_000, 60_000, 120_000, 240_000, 480_000, 900_000, 960_000];

/// The next check of an attempt that has just been checked, on the back-off schedule.
fn next_check(attempt: &AttemptRow, now: i64) -> Option<i64> {
    let done = usize::try_from(attempt.checks).unwrap_or(usize::MAX).saturating_add(1);
    CHECK_SCHEDULE_MS.get(done).map(|offset| (attempt.created_at + offset).max(now + 1_000))
}

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

fn links_of(order: &Order, req_id: &str) -> Option<UpiLinks> {
    let links = order.links.clone().unwrap_or_default();
    let upi = without_note(&links.upi.or_else(|| order.link.clone())?, req_id)?;
    Some(UpiLinks {
        paytm: links.paytm.as_deref().and_then(|l| without_note(l, req_id)),
        phonepe: links.phonepe.as_deref().and_then(|l| without_note(l, req_id)),
        upi,
    })
}

/// A deep link without the transaction notes Bestin Pay writes our `req_id` into (the links go to the browser):
/// the `tn` parameter, and the `note` fields of PhonePe's base64 JSON `data`. Every other parameter stays as
/// Bestin Pay wrote it. A link that still names the `req_id` is dropped (`None`).
fn without_note(link: &str, req_id: &str) -> Option<String> {
    let cleaned = match link.split_once('?') {
        None => link.to_owned(),
        Some((base, query)) => {
            let kept: Vec<String> = query
                .split('&')
                .filter(|pair| !pair.starts_with("tn="))
                .map(|pair| match pair.strip_prefix("data=") {
                    Some(data) => format!("data={}", clean_data(data).unwrap_or_else(|| data.to_owned())),
                    None => pair.to_owned(),
                })
                .collect();
            format!("{base}?{}", kept.join("&"))
        }
    };
    (req_id.is_empty() || !cleaned.contains(req_id)).then_some(cleaned)
}

/// PhonePe's `data` (percent-encoded base64 of a JSON object) without its `note` fields.
fn clean_data(data: &str) -> Option<String> {
    use base64::Engine as _;
    let b64 = url::form_urlencoded::parse(format!("d={data}").as_bytes()).next()?.1.into_owned();
    let json = base64::engine::general_purpose::STANDARD.decode(b64.as_bytes()).ok()?;
    let mut value: Value = serde_json::from_slice(&json).ok()?;
    fn strip(v: &mut Value) {
        match v {
            Value::Object(map) => {
                map.remove("note");
                map.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut value);
    let encoded = base64::engine::general_purpose::STANDARD.encode(value.to_string());
    Some(url::form_urlencoded::byte_serialize(encoded.as_bytes()).collect())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_note_with_our_req_id_is_dropped_from_deep_links() {
        let link = "upi://pay?pa=m@bank&pn=Shop&am=101.00&cu=INR&tr=PI01&tn=Payment%20dpSECRET";
        let clean = |l: &str| super::without_note(l, "dpSECRET");
        assert_eq!(clean(link).as_deref(), Some("upi://pay?pa=m@bank&pn=Shop&am=101.00&cu=INR&tr=PI01"));
        assert_eq!(clean("upi://pay?tn=x&pa=a").as_deref(), Some("upi://pay?pa=a"));
        assert_eq!(clean("no-query").as_deref(), Some("no-query"));
        assert_eq!(clean("upi://pay?pa=a&other=dpSECRET"), None, "a link that still names it is dropped");
        // PhonePe: base64 JSON with a note inside.
        use base64::Engine as _;
        let data = serde_json::json!({"p2pPaymentCheckoutParams": {"note": "Payment dpSECRET", "amount": 10100}});
        let b64 = base64::engine::general_purpose::STANDARD.encode(data.to_string());
        let enc: String = url::form_urlencoded::byte_serialize(b64.as_bytes()).collect();
        let cleaned = clean(&format!("phonepe://native?data={enc}&id=p2ppayment")).expect("kept");
        let got = cleaned.split("data=").nth(1).unwrap().split('&').next().unwrap();
        let got = url::form_urlencoded::parse(format!("d={got}").as_bytes()).next().unwrap().1.into_owned();
        let json = base64::engine::general_purpose::STANDARD.decode(got).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(json, serde_json::json!({"p2pPaymentCheckoutParams": {"amount": 10100}}));
    }
}

/// Whether an order answer names our `req_id` (when it names one at all).
fn req_id_matches(order: &Order, req_id: &str) -> bool {
    order.req_id.as_deref().is_none_or(|r| r == req_id)
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
        self.settle_stale_upi(id).await?;
        let now = self.clock.now_ms();
        let mut attempt = AttemptRow::new(ids::attempt_id(), id.clone(), Method::Upi, session.amount, now);
        // A secret of its own, so that a lost answer can be found by /query and no one can forge a match.
        attempt.req_id = Some(ids::bestin_req_id("dp"));
        attempt.next_check_at = Some(now + FIRST_CHECK_MS);
        match self.begin(&attempt).await? {
            Begin::Started(_) => {}
            Begin::Reuse(live) => {
                // One pending payin per session: a second one could be approved too and charge twice.
                if let Some(links) = live.links.as_deref().and_then(|l| serde_json::from_str::<UpiLinks>(l).ok()) {
                    return Ok(upi_response(live.id.clone(), links, live.expires_at.unwrap_or(now)));
                }
                return Err(AppError::conflict(ErrorCode::PaymentInProgress, "a UPI payment is being confirmed"));
            }
            Begin::Busy => {
                return Err(AppError::conflict(
                    ErrorCode::PaymentInProgress,
                    "another payment for this session is under way; finish or cancel it first",
                ));
            }
            Begin::NotPayable => {
                self.payable_session(id, Method::Upi).await?;
                return Err(AppError::conflict(ErrorCode::PaymentInProgress, "a payment is being confirmed"));
            }
        }
        let req_id = attempt.req_id.clone().unwrap_or_default();
        let created = bestin.payin(&req_id, session.amount, &self.notify_url(), &session.return_url).await;
        let order = match created {
            Ok(o) => o,
            Err(e) => {
                // A payin that may exist without our knowing stays "creating" for the poller to find by req_id.
                if !e.is_no_response() {
                    let (code, message) = match &e {
                        BestinError::Provider { code, message } => (Some(code.clone()), message.clone()),
                        other => (None, other.to_string()),
                    };
                    let patch = AttemptPatch {
                        failure_code: code,
                        failure_message: Some(message),
                        next_check_at: Some(None),
                        ..Default::default()
                    };
                    self.move_attempt(&attempt, &[AttemptState::Creating], AttemptState::CreateFailed, patch, "payin")
                        .await?;
                }
                return Err(provider_error(&e));
            }
        };
        let amount_ok = parse_amount(&order.amount).ok() == Some(session.amount) && req_id_matches(&order, &req_id);
        let Some(links) = links_of(&order, &req_id).filter(|_| amount_ok) else {
            tracing::error!(trx_id = %order.trx_id, "bestin payin answer does not match the request");
            // The customer never sees these links; the payin is cancelled at Bestin Pay as far as it can be.
            let patch = AttemptPatch {
                provider_ref: Some(order.trx_id.clone()),
                failure_message: Some("the provider's answer did not match the order".into()),
                ..Default::default()
            };
            self.move_attempt(&attempt, &[AttemptState::Creating], AttemptState::CreateFailed, patch, "payin mismatch")
                .await?;
            let _ = bestin.cancel(&order.trx_id, "payin").await;
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
        let live = self
            .move_attempt(&attempt, &[AttemptState::Creating], AttemptState::Created, patch, order.trx_id.clone())
            .await?;
        if !live {
            let _ = bestin.cancel(&order.trx_id, "payin").await;
            return Err(AppError::conflict(ErrorCode::PaymentInProgress, "this payment attempt was replaced"));
        }
        // The provider may already report a final status (e.g. a sandbox fault); apply it like a query answer.
        if order.status != BestinStatus::Pending {
            let fresh = self.store.attempt(&attempt.id).await?.unwrap_or(attempt.clone());
            self.apply_upi_status(&fresh, &order.status, Some(&order.amount), "payin").await?;
        }
        Ok(upi_response(attempt.id, links, expires_at))
    }

    /// Asks Bestin Pay about the session's UPI requests that our countdown has passed and closes them there
    /// when still pending, so that a new start never runs beside a request the customer could still approve.
    /// What Bestin Pay cannot settle stays open (and the start answers `payment_in_progress`).
    ///
    /// # Errors
    /// Store errors.
    pub async fn settle_stale_upi(&self, id: &SessionId) -> Result<(), AppError> {
        let Some(bestin) = self.bestin.clone() else { return Ok(()) };
        let now = self.clock.now_ms();
        for attempt in self.store.attempts_of(id).await? {
            let stale = attempt.method == Method::Upi
                && attempt.state == AttemptState::Created
                && attempt.expires_at.is_some_and(|e| e <= now);
            let Some(trx_id) = attempt.provider_ref.clone().filter(|_| stale) else { continue };
            match bestin.query(&trx_id, "payin").await {
                Ok(order) if order.status != BestinStatus::Pending => {
                    self.apply_upi_status(&attempt, &order.status, Some(&order.amount), "query").await?;
                }
                Ok(_) => {
                    if bestin.cancel(&trx_id, "payin").await.is_ok() {
                        let patch = AttemptPatch {
                            failure_message: Some("The payment request expired.".into()),
                            next_check_at: Some(None),
                            ..Default::default()
                        };
                        self.move_attempt(&attempt, &[AttemptState::Created], AttemptState::Expired, patch, "closed")
                            .await?;
                    }
                }
                Err(e) => tracing::warn!(attempt = %attempt.id, error = %e, "could not settle a stale UPI request"),
            }
        }
        Ok(())
    }

    /// Applies a status Bestin Pay reported for a payin we recorded (notification bound to our merchant and
    /// trx_id, or our own /query): a success is settled by the core (late success or review when the attempt or
    /// session had moved on); other statuses only move an open attempt forward. Returns whether anything changed.
    async fn apply_upi_status(
        &self,
        attempt: &AttemptRow,
        status: &BestinStatus,
        amount: Option<&str>,
        source: &str,
    ) -> Result<bool, AppError> {
        let (to, message) = match status {
            BestinStatus::Pending => return Ok(false),
            BestinStatus::Unknown(s) => {
                tracing::warn!(status = %s, attempt = %attempt.id, "unknown Bestin status ignored");
                return Ok(false);
            }
            BestinStatus::Confirming => {
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
            BestinStatus::Success => {
                let Some(trx_id) = attempt.provider_ref.clone() else { return Ok(false) };
                let paid = Confirmed {
                    trx_id,
                    amount: amount.and_then(|a| parse_amount(a).ok()),
                    payer: None,
                    reference_matches: true,
                };
                self.settle_success(attempt, paid, source).await?;
                return Ok(true);
            }
            BestinStatus::Failed => (AttemptState::Failed, "The payment was declined in the UPI app."),
            BestinStatus::Canceled => (AttemptState::Cancelled, "Payment cancelled"),
            BestinStatus::Expired => (AttemptState::Expired, "The payment request expired."),
        };
        let patch =
            AttemptPatch { failure_message: Some(message.into()), next_check_at: Some(None), ..Default::default() };
        self.move_attempt(attempt, &OPEN_UPI, to, patch, source).await
    }

    /// Handles a Bestin Pay notification: verify the signature, then bind it to our merchant (`data.mid`) and to
    /// an order we recorded, deduplicate, apply.
    ///
    /// # Errors
    /// A [`NotifyRejection`]; the caller answers anything but `success`, so the provider delivers again.
    pub async fn bestin_notification(&self, body: &[u8]) -> Result<(), NotifyRejection> {
        let verifier = self.verifier.as_ref().ok_or(NotifyRejection::Disabled)?;
        let bestin = self.bestin.clone().ok_or(NotifyRejection::Disabled)?;
        let merchant_id = self.settings.bestin.as_ref().map(|b| b.merchant_id.as_str()).unwrap_or_default();
        let value: Value = serde_json::from_slice(body).map_err(|_| NotifyRejection::Malformed("body is not JSON"))?;
        let data = value.get("data").and_then(Value::as_object).ok_or(NotifyRejection::Malformed("no data object"))?;
        value.get("sign").and_then(Value::as_str).ok_or(NotifyRejection::Malformed("no sign"))?;
        let notify_id =
            value.get("notify_id").and_then(Value::as_str).ok_or(NotifyRejection::Malformed("no notify_id"))?;
        if !verifier.verify_notification(body) {
            return Err(NotifyRejection::BadSignature);
        }
        let field = |k: &str| data.get(k).and_then(Value::as_str).unwrap_or_default();
        // Bestin Pay signs every merchant's notifications with one platform key: only our mid is ours.
        if merchant_id.is_empty() || field("mid") != merchant_id {
            tracing::warn!(notify_id, "a signed notification for another Bestin Pay merchant was rejected");
            return Err(NotifyRejection::ForeignMerchant);
        }
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
            if let Some(payout) = self.store.payout_by_trx(trx_id).await? {
                self.apply_payout_status(&payout, &status_parsed, Some(trx_id)).await?;
            } else if let Some(payout) = self.store.payout_by_req_id(field("req_id")).await?
                && payout.status == PayoutState::Creating
            {
                // Our create answer was lost: believe only our own /query by req_id, never the notification.
                let order =
                    bestin.query_by_req_id(&payout.req_id, "payout").await.map_err(|_| NotifyRejection::Unknown)?;
                if order.trx_id != trx_id || parse_amount(&order.amount).ok() != Some(payout.amount) {
                    return Err(NotifyRejection::Unknown);
                }
                self.apply_payout_status(&payout, &order.status, Some(&order.trx_id)).await?;
            } else {
                return Err(NotifyRejection::Unknown);
            }
            "payout"
        } else {
            let changed = match self.store.attempt_by_provider_ref(Method::Upi, trx_id).await? {
                Some(attempt) => {
                    self.apply_upi_status(&attempt, &status_parsed, Some(field("amount")), "notification").await?
                }
                None => {
                    let Some(attempt) = self.store.attempt_by_req_id(field("req_id")).await? else {
                        return Err(NotifyRejection::Unknown);
                    };
                    if attempt.state != AttemptState::Creating || !self.adopt_lost_payin(&attempt, Some(trx_id)).await?
                    {
                        return Err(NotifyRejection::Unknown);
                    }
                    true
                }
            };
            if changed { "applied" } else { "ignored" }
        };
        self.store.record_notification(notify_id, trx_id, status, outcome, self.clock.now_ms()).await?;
        tracing::info!(notify_id, trx_id, status, outcome, "notification accepted");
        Ok(())
    }

    /// A payin whose create answer was lost (still `creating`): asks our own authenticated /query by `req_id` and
    /// adopts the order only when it is the one expected (`trx_id` when a notification named one, amount,
    /// currency), then applies the status /query reported. Returns whether it was adopted.
    async fn adopt_lost_payin(&self, attempt: &AttemptRow, trx_id: Option<&str>) -> Result<bool, AppError> {
        let Some(bestin) = self.bestin.clone() else { return Ok(false) };
        let Some(req_id) = attempt.req_id.clone() else { return Ok(false) };
        let order = match bestin.query_by_req_id(&req_id, "payin").await {
            Ok(order) => order,
            Err(BestinError::Provider { .. }) => {
                // Bestin Pay has no such payin: nothing can take money through it.
                let patch = AttemptPatch {
                    failure_message: Some("Bestin Pay has no such payment".into()),
                    next_check_at: Some(None),
                    ..Default::default()
                };
                self.move_attempt(attempt, &[AttemptState::Creating], AttemptState::CreateFailed, patch, "query")
                    .await?;
                return Ok(false);
            }
            Err(e) => {
                tracing::warn!(attempt = %attempt.id, error = %e, "payin query by req_id failed");
                return Ok(false);
            }
        };
        let matches = trx_id.is_none_or(|t| t == order.trx_id)
            && parse_amount(&order.amount).ok() == Some(attempt.amount)
            && order.ccy.as_deref().is_none_or(|c| c == "INR")
            && req_id_matches(&order, &req_id);
        if !matches {
            tracing::error!(attempt = %attempt.id, "the order found by req_id is not the one we asked for");
            return Ok(false);
        }
        let expires_at =
            attempt.created_at + self.settings.bestin.as_ref().map_or(900, |b| b.payin_ttl_secs) as i64 * 1000;
        let patch = AttemptPatch {
            provider_ref: Some(order.trx_id.clone()),
            expires_at: Some(expires_at),
            links: links_of(&order, &req_id).and_then(|l| serde_json::to_string(&l).ok()),
            ..Default::default()
        };
        if !self
            .move_attempt(attempt, &[AttemptState::Creating], AttemptState::Created, patch, "adopted by req_id")
            .await?
        {
            return Ok(false);
        }
        if let Some(adopted) = self.store.attempt(&attempt.id).await? {
            self.apply_upi_status(&adopted, &order.status, Some(&order.amount), "query").await?;
        }
        Ok(true)
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
        let patch = AttemptPatch {
            failure_message: Some("Payment cancelled".into()),
            next_check_at: Some(None),
            ..Default::default()
        };
        self.move_attempt(&attempt, &[AttemptState::Created], AttemptState::Cancelled, patch, "customer").await?;
        Ok(())
    }

    /// The fallback poller: asks /query about UPI attempts on a back-off schedule (notifications come first),
    /// finds payins whose create answer was lost by `req_id`, and follows payouts. A failing row is skipped.
    ///
    /// # Errors
    /// Store errors of the queries that list the work.
    pub async fn poll_bestin_once(&self) -> Result<usize, AppError> {
        let Some(bestin) = self.bestin.clone() else { return Ok(0) };
        let now = self.clock.now_ms();
        let mut seen = 0;
        let open = [AttemptState::Created, AttemptState::Executing];
        for attempt in self.store.checks_due(Method::Upi, &open, now, 100).await? {
            seen += 1;
            let Some(trx_id) = attempt.provider_ref.clone() else { continue };
            let next = next_check(&attempt, self.clock.now_ms());
            match bestin.query(&trx_id, "payin").await {
                Ok(order) => {
                    if let Err(e) = self.apply_upi_status(&attempt, &order.status, Some(&order.amount), "query").await {
                        tracing::error!(attempt = %attempt.id, error = %e.message, "applying a query failed; skipped");
                    }
                }
                Err(e) => tracing::warn!(attempt = %attempt.id, error = %e, "payin query failed"),
            }
            if self.store.attempt(&attempt.id).await?.is_some_and(|a| a.state.is_in_flight()) {
                self.store.schedule_check(&attempt.id, next, self.clock.now_ms()).await?;
            }
        }
        for attempt in self.store.checks_due(Method::Upi, &[AttemptState::Creating], now, 100).await? {
            seen += 1;
            let next = next_check(&attempt, self.clock.now_ms());
            if let Err(e) = self.adopt_lost_payin(&attempt, None).await {
                tracing::error!(attempt = %attempt.id, error = %e.message, "req_id lookup failed; skipped");
            }
            if self.store.attempt(&attempt.id).await?.is_some_and(|a| a.state == AttemptState::Creating) {
                self.store.schedule_check(&attempt.id, next, self.clock.now_ms()).await?;
            }
        }
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
                Ok(order) => self.apply_payout_status(&payout, &order.status, Some(&order.trx_id)).await,
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
