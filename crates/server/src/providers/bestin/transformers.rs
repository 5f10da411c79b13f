//! Bestin Pay's wire types (../shared/spec/bestinpay.md), parsed at the boundary: statuses a closed enum plus
//! `Unknown`, amounts `Money`; the deep links cleaned of our secret `req_id`; and [`outcome`], the one total
//! mapping from Bestin's statuses to the payment core's [`Outcome`].

use crate::providers::{Outcome, Paid};
use deshpay_api::{Currency, Money, UpiLinks};
use serde::{Deserialize, Serialize};
use serde_json::Value;

crate::providers::provider_id!(
    /// Bestin Pay's trx_id of an order (PI... for payins, PO... for payouts).
    TrxId
);

/// Order status; unknown values are kept and never count as paid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BestinStatus {
    /// Processing.
    Pending,
    /// Being confirmed.
    Confirming,
    /// Paid / sent.
    Success,
    /// Failed.
    Failed,
    /// Canceled.
    Canceled,
    /// Expired.
    Expired,
    /// Anything else.
    Unknown(String),
}

impl BestinStatus {
    /// Parses a status string.
    pub fn parse(s: &str) -> Self {
        match s {
            "pending" => BestinStatus::Pending,
            "confirming" => BestinStatus::Confirming,
            "success" => BestinStatus::Success,
            "failed" => BestinStatus::Failed,
            "canceled" | "cancelled" => BestinStatus::Canceled,
            "expired" => BestinStatus::Expired,
            other => BestinStatus::Unknown(other.to_owned()),
        }
    }

    /// Whether no further change will happen.
    pub fn is_final(&self) -> bool {
        matches!(self, BestinStatus::Success | BestinStatus::Failed | BestinStatus::Canceled | BestinStatus::Expired)
    }
}

fn de_status<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BestinStatus, D::Error> {
    Ok(BestinStatus::parse(&String::deserialize(d)?))
}

/// Deep links of a payin.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Links {
    /// Paytm.
    #[serde(default)]
    pub paytm: Option<String>,
    /// PhonePe.
    #[serde(default)]
    pub phonepe: Option<String>,
    /// Any UPI app.
    #[serde(default)]
    pub upi: Option<String>,
}

/// An order (payin or payout) as /payin, /payout, /query return it.
#[derive(Debug, Clone, Deserialize)]
pub struct Order {
    /// Bestin trx id (PI.../PO...).
    pub trx_id: TrxId,
    /// Our request id.
    #[serde(default)]
    pub req_id: Option<String>,
    /// Currency.
    #[serde(default)]
    pub ccy: Option<String>,
    /// Amount, e.g. "101.0000".
    pub amount: String,
    /// Status.
    #[serde(deserialize_with = "de_status")]
    pub status: BestinStatus,
    /// The generic upi:// link.
    #[serde(default)]
    pub link: Option<String>,
    /// Per-app links.
    #[serde(default)]
    pub links: Option<Links>,
}

/// One row of /balance.
#[derive(Debug, Clone, Deserialize)]
pub struct BalanceRow {
    /// Currency.
    pub ccy: String,
    /// Balance.
    pub balance: String,
    /// Available.
    pub available_balance: String,
    /// Frozen.
    pub frozen_balance: String,
}

/// Parses a Bestin amount ("101.0000") as INR.
///
/// # Errors
/// When it is not a decimal or has non-zero digits past the paisa.
pub fn parse_amount(text: &str) -> Result<Money, deshpay_api::MoneyError> {
    Money::parse(text, Currency::Inr)
}

/// What a payin's status means for the core; total over Bestin's statuses. `trx_id` and `amount` are the
/// order's (a success names both).
pub fn outcome(status: &BestinStatus, trx_id: &str, amount: Option<&str>) -> Outcome {
    match status {
        BestinStatus::Pending => Outcome::Pending,
        BestinStatus::Confirming => Outcome::Confirming,
        BestinStatus::Success => Outcome::Paid(Paid {
            trx_id: trx_id.to_owned(),
            amount: amount.and_then(|a| parse_amount(a).ok()),
            payer: None,
            reference: None,
        }),
        BestinStatus::Failed => {
            Outcome::Declined { code: None, message: "The payment was declined in the UPI app.".into() }
        }
        BestinStatus::Canceled => Outcome::Cancelled,
        BestinStatus::Expired => Outcome::Expired,
        BestinStatus::Unknown(s) => Outcome::Unknown(s.clone()),
    }
}

/// [`outcome`] of an order answer.
pub fn order_outcome(order: &Order) -> Outcome {
    outcome(&order.status, order.trx_id.as_str(), Some(&order.amount))
}

/// Whether an order answer names our `req_id` (when it names one at all).
pub fn req_id_matches(order: &Order, req_id: &str) -> bool {
    order.req_id.as_deref().is_none_or(|r| r == req_id)
}

/// The customer's deep links of a payin, without our `req_id` (`None` when there is no generic link).
pub fn links_of(order: &Order, req_id: &str) -> Option<UpiLinks> {
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

    #[test]
    fn every_bestin_status_maps_to_an_outcome_and_only_success_pays() {
        use super::{BestinStatus, outcome};
        use crate::providers::Outcome;
        let at = |s: &str| outcome(&BestinStatus::parse(s), "PI1", Some("101.0000"));
        assert!(
            matches!(at("success"), Outcome::Paid(p) if p.trx_id == "PI1" && p.amount.map(|m| m.minor()) == Some(10100))
        );
        assert!(matches!(at("pending"), Outcome::Pending));
        assert!(matches!(at("confirming"), Outcome::Confirming));
        assert!(matches!(at("failed"), Outcome::Declined { .. }));
        assert!(matches!(at("cancelled"), Outcome::Cancelled));
        assert!(matches!(at("expired"), Outcome::Expired));
        assert!(matches!(at("refunded?"), Outcome::Unknown(_)));
    }
}
