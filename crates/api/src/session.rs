//! Request and response bodies of the merchant API (`Authorization: Bearer <key>`) and the widget API
//! (`/v1/checkout/{id}`). Amounts travel as decimal strings ("250.00") with `amount_minor` beside them for
//! code that wants integers; times are RFC 3339 strings in UTC.

use crate::{AttemptId, Currency, RefundId, SessionId};
use serde::{Deserialize, Serialize};

/// A payment method a session may offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// bKash tokenized checkout (BDT).
    Bkash,
    /// UPI through Bestin Pay (INR).
    Upi,
}

impl Method {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Bkash => "bkash",
            Method::Upi => "upi",
        }
    }

    /// The one currency the method settles in.
    pub fn currency(self) -> Currency {
        match self {
            Method::Bkash => Currency::Bdt,
            Method::Upi => Currency::Inr,
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Method> {
        match s {
            "bkash" => Some(Method::Bkash),
            "upi" => Some(Method::Upi),
            _ => None,
        }
    }
}

/// Lifecycle of a session: `open -> paid | expired | canceled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum SessionStatus {
    /// Waiting for payment.
    Open,
    /// One attempt succeeded.
    Paid,
    /// Not paid before `expires_at`.
    Expired,
    /// Canceled by the merchant.
    Canceled,
}

impl SessionStatus {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Open => "open",
            SessionStatus::Paid => "paid",
            SessionStatus::Expired => "expired",
            SessionStatus::Canceled => "canceled",
        }
    }
}

/// Coarse status of one payment attempt, as the widget shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum AttemptStatus {
    /// Created at the provider; the customer has not finished on the provider's side.
    Pending,
    /// The customer finished; the backend is confirming with the provider.
    Confirming,
    /// Paid.
    Succeeded,
    /// The provider refused or the customer failed verification (see `message`).
    Failed,
    /// The customer closed the provider's page.
    Cancelled,
    /// Not finished in time.
    Expired,
    /// Money may have moved but needs the merchant's check (a second payment for a paid session, an amount
    /// that does not match): final for the widget, which must never offer to pay again.
    Review,
}

impl AttemptStatus {
    /// Whether no further change will happen.
    pub fn is_final(self) -> bool {
        !matches!(self, AttemptStatus::Pending | AttemptStatus::Confirming)
    }
}

/// `POST /v1/sessions`: what the merchant's server asks for. Text fields are validated by the backend so that
/// every mistake gets its own error code (`invalid_amount`, `invalid_currency`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateSessionRequest {
    /// Decimal amount, e.g. "250.00" (at most 2 decimals, greater than zero).
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::AmountInput))]
    pub amount: String,
    /// "BDT" (bKash) or "INR" (UPI).
    #[cfg_attr(feature = "openapi", schema(value_type = Currency))]
    pub currency: String,
    /// The merchant's order reference, unique per merchant; sent to bKash as merchantInvoiceNumber.
    pub invoice: String,
    /// Where the customer's browser returns after the provider's page (http or https URL). Without it the
    /// customer comes back to the session's hosted payment page (`url`), which shows the outcome; a payment
    /// link (`link: true`) has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_url: Option<String>,
    /// Methods offered, e.g. `["bkash"]`; defaults to every method of the currency.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Method>))]
    pub methods: Vec<String>,
    /// Shown to the customer.
    #[serde(default)]
    pub description: Option<String>,
    /// Lifetime in seconds: 60 to 86400 (default `merchant.session_ttl_secs`, 1800); for a payment link 60 to
    /// 604800 (7 days, the default).
    #[serde(default)]
    pub expires_in: Option<u32>,
    /// A payment link: a session to send as a URL (chat, e-mail, a QR code at the counter), paid on its hosted
    /// page `url`; longer lifetime, no `return_url`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub link: bool,
    /// The hosted page's theme: `light` (default), `dark`, `bkash` or `high-contrast`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub theme: Option<String>,
    /// The hosted page's language: `en`, `bn` or `hi` (default: the customer's browser language).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    /// Where the hosted page sends the customer after a successful payment (https; http only to
    /// 127.0.0.1/localhost in the sandbox environment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_url: Option<String>,
}

/// The completed payment of a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Payment {
    /// The method that paid.
    pub method: Method,
    /// The attempt that paid.
    pub attempt_id: AttemptId,
    /// The provider's payment id (bKash paymentID).
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub payment_id: Option<String>,
    /// The provider's transaction id (bKash trxID): what refunds and searches need.
    pub trx_id: String,
    /// The payer's wallet, masked (e.g. "017*****575").
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub payer: Option<String>,
    /// When the provider confirmed it.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::Timestamp))]
    pub paid_at: String,
}

/// A session as the merchant sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Session {
    /// Session id (`cs_...`).
    pub id: SessionId,
    /// Lifecycle status.
    pub status: SessionStatus,
    /// Decimal amount, e.g. "250.00".
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::Amount))]
    pub amount: String,
    /// Amount in minor units.
    pub amount_minor: i64,
    /// Currency.
    pub currency: Currency,
    /// Merchant's invoice.
    pub invoice: String,
    /// Offered methods.
    pub methods: Vec<Method>,
    /// Description for the customer.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub description: Option<String>,
    /// The merchant's return URL; `null` when the customer returns to the hosted page (`url`).
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub return_url: Option<String>,
    /// The session's hosted payment page, `GET /pay/{id}` on the backend's origin: payable with no merchant
    /// page at all (send it, or show `{url}/qr.svg`).
    pub url: String,
    /// Whether this is a payment link.
    pub link: bool,
    /// The hosted page's theme, as created.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub theme: Option<String>,
    /// The hosted page's language, as created.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub locale: Option<String>,
    /// Where the hosted page sends the customer after a successful payment.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub success_url: Option<String>,
    /// Creation time.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::Timestamp))]
    pub created_at: String,
    /// Expiry time.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::Timestamp))]
    pub expires_at: String,
    /// The payment, once paid.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub payment: Option<Payment>,
    /// Total refunded so far (completed refunds), decimal.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::Amount))]
    pub refunded: String,
    /// Refunds, oldest first.
    pub refunds: Vec<Refund>,
    /// Every payment attempt of the session, oldest first: what the customer tried and why it failed.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub attempts: Vec<AttemptRecord>,
}

/// The backend's status of an attempt, as the merchant sees it (finer than the widget's [`AttemptStatus`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AttemptRecordStatus {
    /// Written; the provider's create call is under way.
    Creating,
    /// Created at the provider; waiting for the customer.
    Created,
    /// Being confirmed with the provider (bKash Execute/Query, UPI approval).
    Executing,
    /// Paid.
    Completed,
    /// Declined by the provider (see `message`); no money moved.
    Failed,
    /// Cancelled by the customer; no money moved.
    Cancelled,
    /// The provider's create call failed; nothing exists at the provider that can take money.
    CreateFailed,
    /// Replaced by a newer attempt or closed because the session was paid; never executed, no money moved.
    Superseded,
    /// Money moved but needs the merchant (a second payment for a paid session, an amount that does not
    /// match, or a payment the provider could not confirm): announced by `payment.needs_review`.
    Review,
    /// Not finished in time; no money moved.
    Expired,
}

/// One attempt in the merchant's view of a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AttemptRecord {
    /// Attempt id.
    pub id: AttemptId,
    /// Method.
    pub method: Method,
    /// Status.
    pub status: AttemptRecordStatus,
    /// Decimal amount.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::Amount))]
    pub amount: String,
    /// Currency.
    pub currency: Currency,
    /// The provider's id for the attempt (bKash paymentID, Bestin Pay trx_id).
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub payment_id: Option<String>,
    /// The provider's transaction id once money moved.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub trx_id: Option<String>,
    /// The payer, masked.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub payer: Option<String>,
    /// The provider's code for a failure (e.g. bKash "2023").
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub code: Option<String>,
    /// The provider's reason, in the provider's words (e.g. "Insufficient Balance").
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub message: Option<String>,
    /// True when a provider-confirmed success arrived after the attempt had been closed and still paid the
    /// session (a late success).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub late: bool,
    /// Creation time.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::Timestamp))]
    pub created_at: String,
    /// Last change.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::Timestamp))]
    pub updated_at: String,
}

/// `POST /v1/sessions/{id}/refunds`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RefundRequest {
    /// Decimal amount; at most what is left of the payment.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::AmountInput))]
    pub amount: String,
    /// Reason sent to bKash (at most 255 characters).
    #[serde(default)]
    pub reason: Option<String>,
    /// SKU sent to bKash (at most 255 characters; defaults to the invoice).
    #[serde(default)]
    pub sku: Option<String>,
}

/// Status of a refund.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum RefundStatus {
    /// Sent to the provider; outcome not yet known (it is checked with the provider's refund status).
    Pending,
    /// Money returned.
    Completed,
    /// The provider refused it (see `failure_message`).
    Failed,
}

/// A refund.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Refund {
    /// Refund id.
    pub id: RefundId,
    /// Session refunded.
    pub session_id: SessionId,
    /// Decimal amount.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::Amount))]
    pub amount: String,
    /// Currency.
    pub currency: Currency,
    /// Status.
    pub status: RefundStatus,
    /// The provider's refund transaction id.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub refund_trx_id: Option<String>,
    /// Reason given.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub reason: Option<String>,
    /// The provider's message when it failed.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub failure_message: Option<String>,
    /// Creation time.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::Timestamp))]
    pub created_at: String,
}

/// `GET /v1/bkash/transactions/{trx_id}`: bKash's Search Transaction, in our words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BkashTransaction {
    /// bKash trxID.
    pub trx_id: String,
    /// bKash transactionStatus, e.g. "Completed".
    pub status: String,
    /// Decimal amount.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::Amount))]
    pub amount: String,
    /// Currency.
    pub currency: Currency,
    /// Payer wallet, masked.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub customer: Option<String>,
    /// bKash transactionType.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub transaction_type: Option<String>,
    /// bKash initiationTime, as bKash wrote it.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub initiation_time: Option<String>,
    /// bKash completedTime, as bKash wrote it.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub completed_time: Option<String>,
}

/// The latest attempt, as the widget sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AttemptView {
    /// Attempt id.
    pub id: AttemptId,
    /// Method.
    pub method: Method,
    /// Coarse status.
    pub status: AttemptStatus,
    /// Why a final attempt ended as it did, as a code the widget words in the customer's language (`None`
    /// while the attempt is live or paid).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub reason: Option<ReasonCode>,
    /// Always `null` from this backend: the provider's words (e.g. bKash's statusMessage) are for the merchant
    /// and stay in the merchant API (`attempts[].code` and `message`); `reason` says why. Kept so that views
    /// read the same in widgets of every version (and in previews, which may set it).
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub message: Option<String>,
    /// Provider transaction id once paid.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub trx_id: Option<String>,
}

/// Why an attempt ended, in words of our own rather than the provider's (mapped by the backend from the
/// provider's codes and messages). Unknown codes from a newer backend read as [`ReasonCode::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ReasonCode {
    /// The customer's wallet or account has too little money (bKash 2023).
    InsufficientBalance,
    /// A wrong, expired or too often requested verification code sent by SMS (bKash 2010, 2013, 2016 to 2018;
    /// backends before `pin_failed` also sent it for a wrong PIN).
    VerificationFailed,
    /// A wrong or late wallet PIN, or too many wrong PINs (bKash 2011, 2014, 2015, 2019, 2043).
    PinFailed,
    /// The number is not a bKash customer wallet (bKash 2009, 2045, 2057, 2058).
    InvalidWallet,
    /// The customer's account may not make this payment now (bKash 2037, 2038, 2044, 2046).
    AccountRestricted,
    /// The provider refused a repeat of a recent payment of the same amount (bKash 2029).
    Duplicate,
    /// The customer's saved wallet (a bKash agreement) can no longer pay: cancelled, incomplete or unknown
    /// (bKash 2051 to 2053, 2055, 2066).
    SavedWalletUnavailable,
    /// The customer or their bank declined it (UPI).
    Declined,
    /// The provider did not answer.
    ProviderUnavailable,
    /// The customer cancelled.
    Cancelled,
    /// Not finished in time.
    Expired,
    /// Another attempt had already paid the session; this one took no money.
    AlreadyPaid,
    /// Money may have moved and needs the merchant's check.
    Review,
    /// Not completed, with no more precise reason.
    Failed,
    /// A code this version does not know yet.
    #[serde(other)]
    Other,
}

impl ReasonCode {
    /// Every code.
    pub const ALL: [ReasonCode; 15] = [
        ReasonCode::InsufficientBalance,
        ReasonCode::VerificationFailed,
        ReasonCode::PinFailed,
        ReasonCode::InvalidWallet,
        ReasonCode::AccountRestricted,
        ReasonCode::Duplicate,
        ReasonCode::SavedWalletUnavailable,
        ReasonCode::Declined,
        ReasonCode::ProviderUnavailable,
        ReasonCode::Cancelled,
        ReasonCode::Expired,
        ReasonCode::AlreadyPaid,
        ReasonCode::Review,
        ReasonCode::Failed,
        ReasonCode::Other,
    ];

    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ReasonCode::InsufficientBalance => "insufficient_balance",
            ReasonCode::VerificationFailed => "verification_failed",
            ReasonCode::PinFailed => "pin_failed",
            ReasonCode::InvalidWallet => "invalid_wallet",
            ReasonCode::AccountRestricted => "account_restricted",
            ReasonCode::Duplicate => "duplicate",
            ReasonCode::SavedWalletUnavailable => "saved_wallet_unavailable",
            ReasonCode::Declined => "declined",
            ReasonCode::ProviderUnavailable => "provider_unavailable",
            ReasonCode::Cancelled => "cancelled",
            ReasonCode::Expired => "expired",
            ReasonCode::AlreadyPaid => "already_paid",
            ReasonCode::Review => "review",
            ReasonCode::Failed => "failed",
            ReasonCode::Other => "other",
        }
    }

    /// Reads a wire name; unknown names are [`ReasonCode::Other`], as with serde.
    pub fn parse(s: &str) -> ReasonCode {
        ReasonCode::ALL.into_iter().find(|c| c.as_str() == s).unwrap_or(ReasonCode::Other)
    }
}

/// `GET /v1/checkout/{id}`: the public view of a session (no return URL, no payer details).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CheckoutView {
    /// Session id.
    pub id: SessionId,
    /// Lifecycle status.
    pub status: SessionStatus,
    /// Decimal amount.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::Amount))]
    pub amount: String,
    /// Amount in minor units.
    pub amount_minor: i64,
    /// Currency.
    pub currency: Currency,
    /// Merchant's invoice.
    pub invoice: String,
    /// Description.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub description: Option<String>,
    /// Offered methods.
    pub methods: Vec<Method>,
    /// Expiry time.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::Timestamp))]
    pub expires_at: String,
    /// The merchant's display name.
    pub merchant_name: String,
    /// Latest attempt, if any.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub attempt: Option<AttemptView>,
}

/// `POST /v1/checkout/{id}/bkash`: where to send the browser.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StartBkashResponse {
    /// The new attempt.
    pub attempt_id: AttemptId,
    /// bKash's hosted payment page (bkashURL).
    pub redirect_url: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_session_request_accepts_the_documented_body() {
        let body = r#"{"amount":"250.00","currency":"BDT","invoice":"ORD-1","return_url":"https://shop.example/r",
            "methods":["bkash"],"description":"Tea"}"#;
        let req: CreateSessionRequest = serde_json::from_str(body).unwrap();
        assert_eq!(req.amount, "250.00");
        assert_eq!(req.methods, vec!["bkash".to_string()]);
        assert_eq!(req.expires_in, None);
    }

    #[test]
    fn statuses_use_lowercase_wire_names() {
        assert_eq!(serde_json::to_string(&SessionStatus::Paid).unwrap(), "\"paid\"");
        assert_eq!(serde_json::to_string(&AttemptStatus::Cancelled).unwrap(), "\"cancelled\"");
        assert_eq!(serde_json::to_string(&Method::Bkash).unwrap(), "\"bkash\"");
        assert!(AttemptStatus::Failed.is_final() && !AttemptStatus::Confirming.is_final());
    }

    #[test]
    fn reason_codes_read_back_and_unknown_ones_are_other() {
        for code in ReasonCode::ALL {
            let wire = serde_json::to_string(&code).unwrap();
            assert_eq!(wire, format!("\"{}\"", code.as_str()));
            assert_eq!(serde_json::from_str::<ReasonCode>(&wire).unwrap(), code);
            assert_eq!(ReasonCode::parse(code.as_str()), code);
        }
        // The names older widgets and merchants' pages know keep their meaning; newer ones read as `other` there.
        for known in [
            "insufficient_balance",
            "verification_failed",
            "account_restricted",
            "duplicate",
            "declined",
            "provider_unavailable",
            "cancelled",
            "expired",
            "already_paid",
            "review",
            "failed",
            "other",
        ] {
            assert_eq!(ReasonCode::parse(known).as_str(), known);
        }
        assert_eq!(serde_json::from_str::<ReasonCode>("\"card_stolen\"").unwrap(), ReasonCode::Other);
        assert_eq!(ReasonCode::parse("card_stolen"), ReasonCode::Other);
        // A view from an older backend, without `reason`, still reads.
        let attempt = r#"{"id":"att_ABCDEFGHIJKLMNOPQRSTUVWX","method":"bkash","status":"failed","message":null,
            "trx_id":null}"#;
        assert_eq!(serde_json::from_str::<AttemptView>(attempt).unwrap().reason, None);
    }
}

/// Deep links for UPI apps, exactly as Bestin Pay returned them (the widget never builds links itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpiLinks {
    /// `paytmmp://...`
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub paytm: Option<String>,
    /// `phonepe://...`
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub phonepe: Option<String>,
    /// `upi://pay?...`: any UPI app.
    pub upi: String,
}

/// A QR code drawn by the backend, ready for an SVG: `<svg viewBox="0 0 {size} {size}"><path d="{path}"/>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QrSvg {
    /// Side of the square in modules, the 4-module quiet zone included.
    pub size: u32,
    /// The dark modules: `M{x} {y}h{n}v1h-{n}z` for each horizontal run, in module units.
    pub path: String,
}

/// `POST /v1/checkout/{id}/upi`: links for a phone, the QR payload for a desktop, and the deadline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StartUpiResponse {
    /// The new attempt.
    pub attempt_id: AttemptId,
    /// App deep links.
    pub links: UpiLinks,
    /// Text to draw as a QR code (the `upi://pay` link).
    pub qr: String,
    /// `qr` drawn as a QR code (error correction M); `None` if the text is too long for one.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub qr_svg: Option<QrSvg>,
    /// When the payment request expires (RFC 3339).
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::Timestamp))]
    pub expires_at: String,
}

/// `POST /v1/payouts`: send money to a UPI address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PayoutRequest {
    /// Decimal amount, e.g. "101.00".
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::AmountInput))]
    pub amount: String,
    /// "INR".
    pub currency: String,
    /// Payee UPI address (VPA), e.g. "name@bank".
    pub upi: String,
    /// The merchant's unique reference: repeating it returns the same payout (idempotent).
    pub reference: String,
}

/// Status of a payout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum PayoutStatus {
    /// Accepted by the provider; money not yet sent.
    Pending,
    /// Sent.
    Succeeded,
    /// The provider could not send it (money back in the available balance).
    Failed,
    /// Canceled before it was sent.
    Canceled,
}

/// A payout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Payout {
    /// Payout id (`po_...`).
    pub id: String,
    /// Merchant reference.
    pub reference: String,
    /// Decimal amount.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::Amount))]
    pub amount: String,
    /// Currency.
    pub currency: Currency,
    /// Payee UPI address, masked.
    pub upi: String,
    /// Status.
    pub status: PayoutStatus,
    /// Provider's transaction id.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub trx_id: Option<String>,
    /// Provider's reason on failure.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub failure_message: Option<String>,
    /// Creation time.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::Timestamp))]
    pub created_at: String,
}

/// One currency of `GET /v1/balance`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BalanceEntry {
    /// Currency.
    pub currency: Currency,
    /// Total balance, decimal.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::Amount))]
    pub balance: String,
    /// Available for payouts, decimal.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::Amount))]
    pub available: String,
    /// Held (pending payouts), decimal.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::Amount))]
    pub frozen: String,
}
