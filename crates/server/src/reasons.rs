//! The reason code the widget gets for an attempt's outcome ([`ReasonCode`]), from the stored state and the
//! provider's code or message: the widget words each code in the customer's language, while the provider's
//! own text stays for the merchant. bKash codes: its published error code list (developer.bka.sh, "Error Codes").

use crate::store::AttemptState;
use deshpay_api::ReasonCode;

/// bKash codes of a wrong, expired or too often wrong verification code or PIN.
const BKASH_VERIFICATION: [&str; 10] = ["2010", "2011", "2012", "2013", "2014", "2015", "2016", "2017", "2018", "2019"];
/// bKash codes of a customer account whose state or identity forbids the payment (2037: the "debit block").
const BKASH_RESTRICTED: [&str; 4] = ["2037", "2038", "2044", "2046"];

/// The reason for an attempt in `state`; `None` while it is live or once paid. Unknown provider codes and
/// messages give [`ReasonCode::Failed`], which the widget words neutrally.
pub fn reason_for(
    state: AttemptState,
    failure_code: Option<&str>,
    failure_message: Option<&str>,
) -> Option<ReasonCode> {
    Some(match state {
        AttemptState::Creating | AttemptState::Created | AttemptState::Executing | AttemptState::Completed => {
            return None;
        }
        AttemptState::Cancelled => ReasonCode::Cancelled,
        AttemptState::Expired => ReasonCode::Expired,
        AttemptState::Superseded => ReasonCode::AlreadyPaid,
        AttemptState::Review => ReasonCode::Review,
        AttemptState::Failed | AttemptState::CreateFailed => match failure_code.map(str::trim) {
            Some("2023") => ReasonCode::InsufficientBalance,
            Some("2029") => ReasonCode::Duplicate,
            Some(code) if BKASH_VERIFICATION.contains(&code) => ReasonCode::VerificationFailed,
            Some(code) if BKASH_RESTRICTED.contains(&code) => ReasonCode::AccountRestricted,
            Some(code) if !code.is_empty() => ReasonCode::Failed,
            // No code: UPI outcomes and our own words (attempts, reconciler).
            _ => {
                let message = failure_message.unwrap_or_default().to_ascii_lowercase();
                if message.contains("insufficient") {
                    ReasonCode::InsufficientBalance
                } else if message.contains("declined") {
                    ReasonCode::Declined
                } else if message.contains("did not answer") || message.contains("timed out") {
                    ReasonCode::ProviderUnavailable
                } else {
                    ReasonCode::Failed
                }
            }
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bkash_codes_become_reasons_the_customer_can_act_on() {
        let failed = |code| reason_for(AttemptState::Failed, Some(code), Some("whatever bKash said"));
        assert_eq!(failed("2023"), Some(ReasonCode::InsufficientBalance));
        assert_eq!(failed("2029"), Some(ReasonCode::Duplicate));
        for code in ["2010", "2014", "2016", "2017", "2019"] {
            assert_eq!(failed(code), Some(ReasonCode::VerificationFailed), "{code}");
        }
        assert_eq!(failed("2037"), Some(ReasonCode::AccountRestricted));
        for unknown in ["2003", "2056", "9999", "7777"] {
            assert_eq!(failed(unknown), Some(ReasonCode::Failed), "{unknown}");
        }
        let create_failed = reason_for(AttemptState::CreateFailed, Some("2023"), Some("Insufficient Balance"));
        assert_eq!(create_failed, Some(ReasonCode::InsufficientBalance));
    }

    #[test]
    fn messages_without_a_code_are_read_for_what_they_say() {
        let failed = |message| reason_for(AttemptState::Failed, None, Some(message));
        assert_eq!(failed("The payment was declined in the UPI app."), Some(ReasonCode::Declined));
        assert_eq!(failed("Payment failed"), Some(ReasonCode::Failed));
        assert_eq!(failed("bKash could not complete the payment. You were not charged."), Some(ReasonCode::Failed));
        assert_eq!(failed("Insufficient Balance"), Some(ReasonCode::InsufficientBalance));
        let no_answer = reason_for(AttemptState::CreateFailed, None, Some("bKash did not answer"));
        assert_eq!(no_answer, Some(ReasonCode::ProviderUnavailable));
        assert_eq!(reason_for(AttemptState::Failed, None, None), Some(ReasonCode::Failed));
        assert_eq!(reason_for(AttemptState::Failed, Some(""), Some("declined")), Some(ReasonCode::Declined));
    }

    #[test]
    fn final_states_have_their_own_reason_and_live_ones_none() {
        assert_eq!(reason_for(AttemptState::Review, None, Some("amount mismatch")), Some(ReasonCode::Review));
        assert_eq!(reason_for(AttemptState::Superseded, None, None), Some(ReasonCode::AlreadyPaid));
        assert_eq!(reason_for(AttemptState::Cancelled, None, Some("Payment cancelled")), Some(ReasonCode::Cancelled));
        assert_eq!(reason_for(AttemptState::Expired, None, None), Some(ReasonCode::Expired));
        for live in [AttemptState::Creating, AttemptState::Created, AttemptState::Executing, AttemptState::Completed] {
            assert_eq!(reason_for(live, Some("2023"), Some("x")), None, "{live:?}");
        }
    }
}
