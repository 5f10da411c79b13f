//! bKash's wire types (../shared/spec/bkash.md sections 2-8), parsed at the boundary: amounts become `Money`,
//! statuses a closed enum plus `Unknown`. [`outcome`] and [`execute_outcome`] are the one total mapping from
//! bKash's answers to the payment core's [`Outcome`].

use super::client::BkashError;
use super::codes::{self, ExecuteCode};
use crate::ids::mask;
use crate::providers::{Outcome, Paid};
use deshpay_api::{Currency, Money};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::Value;

crate::providers::provider_id!(
    /// bKash's paymentID ("TR0011..."), the id of a payment it created for us.
    PaymentId
);
crate::providers::provider_id!(
    /// bKash's trxID, of a completed payment or of a refund.
    TrxId
);

/// Parses an amount that bKash echoed back.
///
/// # Errors
/// When bKash sent something that is not a BDT decimal.
pub fn parse_amount(text: &str) -> Result<Money, deshpay_api::MoneyError> {
    Money::parse(text, Currency::Bdt)
}

fn de_opt_amount<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Money>, D::Error> {
    let s = Option::<String>::deserialize(d)?;
    Ok(s.as_deref().and_then(|a| parse_amount(a).ok()))
}

/// bKash `transactionStatus`; anything unexpected is kept and never counts as paid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransactionStatus {
    /// The customer has not finished; no money moved.
    Initiated,
    /// Paid.
    Completed,
    /// Authorised (intent=authorization only).
    Authorized,
    /// A voided authorisation.
    Cancelled,
    /// Failed.
    Failed,
    /// Anything else, verbatim.
    Unknown(String),
}

impl TransactionStatus {
    /// Parses bKash's text; anything unexpected is kept verbatim.
    pub fn parse(s: &str) -> Self {
        match s {
            "Initiated" => TransactionStatus::Initiated,
            "Completed" => TransactionStatus::Completed,
            "Authorized" => TransactionStatus::Authorized,
            "Cancelled" => TransactionStatus::Cancelled,
            "Failed" => TransactionStatus::Failed,
            other => TransactionStatus::Unknown(other.to_owned()),
        }
    }
}

fn de_status<'de, D: serde::Deserializer<'de>>(d: D) -> Result<TransactionStatus, D::Error> {
    let s = String::deserialize(d)?;
    Ok(TransactionStatus::parse(&s))
}

fn de_opt_status<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<TransactionStatus>, D::Error> {
    let s = Option::<String>::deserialize(d)?;
    Ok(s.as_deref().map(TransactionStatus::parse))
}

/// Grant/refresh answer (spec section 2).
#[derive(Debug, Clone, Deserialize)]
pub struct TokenResponse {
    /// The id_token (a credential: redacted in `Debug`).
    pub id_token: SecretString,
    /// The refresh_token (a credential: redacted in `Debug`).
    pub refresh_token: SecretString,
    /// Lifetime in seconds (a number; some gateways send a string).
    #[serde(default)]
    pub expires_in: Value,
}

impl TokenResponse {
    /// expires_in as seconds, 3600 when missing or unreadable.
    pub fn expires_in_secs(&self) -> i64 {
        match &self.expires_in {
            Value::Number(n) => n.as_i64().unwrap_or(3600),
            Value::String(s) => s.parse().unwrap_or(3600),
            _ => 3600,
        }
    }
}

/// Create Payment request (spec section 3).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct CreateRequest<'a> {
    pub(super) mode: &'static str,
    pub(super) payer_reference: &'a str,
    #[serde(rename = "callbackURL")]
    pub(super) callback_url: &'a str,
    pub(super) amount: String,
    pub(super) currency: &'static str,
    pub(super) intent: &'static str,
    pub(super) merchant_invoice_number: &'a str,
}

/// Create Payment answer.
#[derive(Debug, Clone, Deserialize)]
pub struct CreateResponse {
    /// paymentID, e.g. "TR0011...".
    #[serde(rename = "paymentID")]
    pub payment_id: PaymentId,
    /// The hosted page.
    #[serde(rename = "bkashURL")]
    pub bkash_url: String,
    /// Echoed amount.
    #[serde(default)]
    pub amount: Option<String>,
}

/// The answer of Execute Payment (spec section 5) and of Query Payment (section 6): one shape. Query names the
/// invoice `merchantInvoice` where Execute says `merchantInvoiceNumber`; the amount is `Money` from here on.
#[derive(Debug, Clone, Deserialize)]
pub struct PaymentResponse {
    /// paymentID.
    #[serde(rename = "paymentID", default)]
    pub payment_id: Option<PaymentId>,
    /// trxID (once completed).
    #[serde(rename = "trxID", default)]
    pub trx_id: Option<TrxId>,
    /// transactionStatus.
    #[serde(rename = "transactionStatus", deserialize_with = "de_status")]
    pub transaction_status: TransactionStatus,
    /// Amount; `None` when missing or not a BDT decimal (which never matches what was due).
    #[serde(default, deserialize_with = "de_opt_amount")]
    pub amount: Option<Money>,
    /// Invoice (one 2023 sample of Execute leaves it out).
    #[serde(rename = "merchantInvoiceNumber", alias = "merchantInvoice", default)]
    pub merchant_invoice_number: Option<String>,
    /// Payer wallet, when given.
    #[serde(rename = "customerMsisdn", default)]
    pub customer_msisdn: Option<String>,
}

/// Search Transaction answer (spec section 7).
#[derive(Debug, Clone, Deserialize)]
pub struct SearchResponse {
    /// trxID.
    #[serde(rename = "trxID")]
    pub trx_id: TrxId,
    /// transactionStatus.
    #[serde(rename = "transactionStatus")]
    pub transaction_status: String,
    /// Amount.
    pub amount: String,
    /// Currency.
    #[serde(default)]
    pub currency: Option<String>,
    /// Payer.
    #[serde(rename = "customerMsisdn", default)]
    pub customer_msisdn: Option<String>,
    /// Type.
    #[serde(rename = "transactionType", default)]
    pub transaction_type: Option<String>,
    /// Start.
    #[serde(rename = "initiationTime", default)]
    pub initiation_time: Option<String>,
    /// End.
    #[serde(rename = "completedTime", default)]
    pub completed_time: Option<String>,
}

/// One refund at bKash, from either refund API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRecord {
    /// refundTrxID.
    pub refund_trx_id: TrxId,
    /// Status, e.g. Completed.
    pub status: Option<TransactionStatus>,
    /// Amount refunded; `None` when missing or unreadable.
    pub amount: Option<Money>,
}

#[derive(Debug, Deserialize)]
pub(super) struct RefundV1 {
    #[serde(rename = "refundTrxID")]
    refund_trx_id: TrxId,
    #[serde(rename = "transactionStatus", default, deserialize_with = "de_opt_status")]
    status: Option<TransactionStatus>,
    #[serde(default)]
    amount: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct RefundV2 {
    #[serde(rename = "refundTrxId")]
    refund_trx_id: TrxId,
    #[serde(rename = "refundTransactionStatus", default, deserialize_with = "de_opt_status")]
    status: Option<TransactionStatus>,
    #[serde(rename = "refundAmount", default)]
    amount: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct RefundStatusV2 {
    #[serde(rename = "refundTransactions", default)]
    pub(super) refund_transactions: Vec<RefundV2>,
}

impl From<RefundV1> for RefundRecord {
    fn from(r: RefundV1) -> Self {
        RefundRecord {
            refund_trx_id: r.refund_trx_id,
            status: r.status,
            amount: r.amount.as_deref().and_then(|a| parse_amount(a).ok()),
        }
    }
}

impl From<RefundV2> for RefundRecord {
    fn from(r: RefundV2) -> Self {
        RefundRecord {
            refund_trx_id: r.refund_trx_id,
            status: r.status,
            amount: r.amount.as_deref().and_then(|a| parse_amount(a).ok()),
        }
    }
}

/// What a Query answer (or an Execute answer with statusCode 0000) means for the core; total over bKash's statuses.
pub fn outcome(r: PaymentResponse) -> Outcome {
    match r.transaction_status {
        TransactionStatus::Completed => match r.trx_id {
            Some(trx_id) => Outcome::Paid(Paid {
                trx_id: trx_id.into_string(),
                amount: r.amount,
                payer: r.customer_msisdn.as_deref().map(mask),
                reference: r.merchant_invoice_number,
            }),
            None => Outcome::Unknown("bKash reported Completed without a trxID".into()),
        },
        // The customer has not finished (or, after Execute, the money was not taken).
        TransactionStatus::Initiated => Outcome::Pending,
        TransactionStatus::Failed => Outcome::Declined { code: None, message: NOT_COMPLETED.into() },
        TransactionStatus::Cancelled => Outcome::Cancelled,
        // Authorisations are not used (intent sale): it decides nothing.
        TransactionStatus::Authorized => Outcome::Unknown("Authorized".into()),
        TransactionStatus::Unknown(s) => Outcome::Unknown(s),
    }
}

/// What bKash told the customer when a payment did not complete.
pub const NOT_COMPLETED: &str = "bKash could not complete the payment. You were not charged.";

/// What Execute's answer means: Completed is paid; a definitive decline fails; 2056 is "not approved yet";
/// any other status or code, and no answer, decide nothing (the core asks Query).
pub fn execute_outcome(result: Result<PaymentResponse, BkashError>) -> Outcome {
    match result {
        Ok(r) if r.transaction_status == TransactionStatus::Completed => outcome(r),
        Ok(r) => Outcome::Unknown(format!("Execute answered {:?}", r.transaction_status)),
        Err(BkashError::Provider { code, message }) => match codes::execute_code(&code) {
            ExecuteCode::Declined => Outcome::Declined { code: Some(code), message },
            ExecuteCode::NotApproved => Outcome::NotApproved { code, message },
            ExecuteCode::AlreadyDone | ExecuteCode::InDoubt => Outcome::Unknown(format!("{code}: {message}")),
        },
        Err(other) => Outcome::NoAnswer(other.to_string()),
    }
}

/// What Query's answer means ([`outcome`]); an error code or no answer decides nothing.
pub fn query_outcome(result: Result<PaymentResponse, BkashError>) -> Outcome {
    match result {
        Ok(r) => outcome(r),
        Err(e @ BkashError::Provider { .. }) => Outcome::Unknown(e.to_string()),
        Err(e) => Outcome::NoAnswer(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(json: &str) -> PaymentResponse {
        serde_json::from_str(json).expect("a payment answer")
    }

    #[test]
    fn execute_and_query_answers_are_one_type_with_money_and_typed_ids() {
        let execute = response(
            r#"{"paymentID":"TR0011A","trxID":"BFA1","transactionStatus":"Completed","amount":"101.50",
                "merchantInvoiceNumber":"ORD-1","customerMsisdn":"01770618575","statusCode":"0000"}"#,
        );
        let query = response(
            r#"{"paymentID":"TR0011A","trxID":"BFA1","transactionStatus":"Completed","amount":"101.5",
                "merchantInvoice":"ORD-1"}"#,
        );
        for r in [&execute, &query] {
            assert_eq!(r.amount, Some(Money::from_minor(10150, Currency::Bdt).unwrap()));
            assert_eq!(r.merchant_invoice_number.as_deref(), Some("ORD-1"));
            assert_eq!(r.trx_id.as_ref().map(TrxId::as_str), Some("BFA1"));
        }
        let unreadable = response(r#"{"transactionStatus":"Completed","trxID":"X1","amount":"1.234"}"#);
        assert_eq!(unreadable.amount, None, "an amount that is not BDT never matches");
        assert!(serde_json::from_str::<PaymentResponse>(r#"{"transactionStatus":"Completed","trxID":""}"#).is_err());
    }

    #[test]
    fn every_status_maps_to_an_outcome_and_only_completed_pays() {
        let at = |status: &str, trx: Option<&str>| {
            let trx = trx.map_or_else(String::new, |t| format!(r#","trxID":"{t}""#));
            outcome(response(&format!(r#"{{"transactionStatus":"{status}"{trx}}}"#)))
        };
        assert!(matches!(at("Completed", Some("T1")), Outcome::Paid(p) if p.trx_id == "T1"));
        assert!(matches!(at("Completed", None), Outcome::Unknown(_)));
        assert!(matches!(at("Initiated", None), Outcome::Pending));
        assert!(matches!(at("Failed", None), Outcome::Declined { code: None, .. }));
        assert!(matches!(at("Cancelled", None), Outcome::Cancelled));
        assert!(matches!(at("Authorized", None), Outcome::Unknown(_)));
        assert!(matches!(at("Whatever", None), Outcome::Unknown(s) if s == "Whatever"));
    }

    #[test]
    fn execute_codes_map_to_declined_not_approved_or_doubt() {
        let code = |c: &str| execute_outcome(Err(BkashError::Provider { code: c.into(), message: "m".into() }));
        assert!(matches!(code("2023"), Outcome::Declined { code: Some(c), .. } if c == "2023"));
        assert!(matches!(code("2056"), Outcome::NotApproved { .. }));
        assert!(matches!(code("2117"), Outcome::Unknown(_)));
        assert!(matches!(code("9999"), Outcome::Unknown(_)));
        assert!(matches!(execute_outcome(Err(BkashError::Timeout)), Outcome::NoAnswer(_)));
        let initiated = response(r#"{"transactionStatus":"Initiated"}"#);
        assert!(matches!(execute_outcome(Ok(initiated)), Outcome::Unknown(_)), "Execute without Completed: ask");
        assert!(matches!(query_outcome(Err(BkashError::Timeout)), Outcome::NoAnswer(_)));
    }
}
