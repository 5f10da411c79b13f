//! Random ids for the records this backend creates.

use deshpay_api::{AttemptId, RefundId, SessionId};
use rand::Rng;
use rand::distr::Alphanumeric;

fn random24() -> String {
    rand::rng().sample_iter(Alphanumeric).take(deshpay_api::ID_RANDOM_LEN).map(char::from).collect()
}

/// A new session id.
pub fn session_id() -> SessionId {
    SessionId::from_random(&random24()).expect("24 alphanumerics form a valid id")
}

/// A new attempt id.
pub fn attempt_id() -> AttemptId {
    AttemptId::from_random(&random24()).expect("24 alphanumerics form a valid id")
}

/// A new refund id.
pub fn refund_id() -> RefundId {
    RefundId::from_random(&random24()).expect("24 alphanumerics form a valid id")
}

/// A new request id for Bestin Pay (`req_id`): a secret random value of its own, never derived from a public
/// id, so that no one else can create an order at Bestin Pay that our lookup by `req_id` would take for ours.
pub fn bestin_req_id(prefix: &str) -> String {
    format!("{prefix}{}", random24())
}

/// A new audit event id.
pub fn event_id() -> String {
    format!("ev_{}", random24())
}

/// A new webhook event id.
pub fn webhook_id() -> String {
    format!("evt_{}", random24())
}

/// Masks a wallet number or other identifier for logs and merchant views: "01770618575" -> "017*****575".
pub fn mask(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() <= 6 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 3..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 6))
}

#[cfg(test)]
mod tests {
    #[test]
    fn masks_wallets() {
        assert_eq!(super::mask("01770618575"), "017*****575");
        assert_eq!(super::mask("12345"), "*****");
    }

    #[test]
    fn ids_are_unique_and_valid() {
        let a = super::session_id();
        let b = super::session_id();
        assert_ne!(a, b);
        assert!(deshpay_api::SessionId::parse(a.as_str()).is_ok());
    }
}
