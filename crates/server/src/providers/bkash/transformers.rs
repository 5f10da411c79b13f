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
    pub payment_id: String,
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
    pub payment_id: Option<String>,
    /// trxID (once completed).
    #[serde(rename = "trxID", default)]
    pub trx_id: Option<String>,
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
    pub trx_id: String,
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
    pub refund_trx_id: String,
    /// Status, e.g. Completed.
    pub status: Option<TransactionStatus>,
    /// Amount refunded; `None` when missing or unreadable.
    pub amount: Option<Money>,
}

#[derive(Debug, Deserialize)]
pub(super) struct RefundV1 {
    #[serde(rename = "refundTrxID")]
    refund_trx_id: String,
    #[serde(rename = "transactionStatus", default, deserialize_with = "de_opt_status")]
    status: Option<TransactionStatus>,
    #[serde(default)]
    amount: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct RefundV2 {
    #[serde(rename = "refundTrxId")]
    refund_trx_id: String,
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
                trx_id,
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
