//! The reason code the widget gets for an attempt's outcome ([`ReasonCode`]), from the stored state and the
//! provider's code or message. The widget words each code in the customer's language (`src/i18n.rs`); the
//! provider's own code and message stay in the merchant API (`attempts[].code`, `attempts[].message`), never in
//! the widget's public view.
//!
//! bKash's codes are in one table, [`BKASH`]: each documented code a customer can meet, bKash's message for it
//! and where it is documented. What a code does to the money (fail the attempt, or ask bKash again) is decided
//! elsewhere, by `providers::bkash::codes`; this table only chooses words. A code not in it is worded neutrally
//! ([`ReasonCode::Failed`]: "the payment was not completed, no money was taken").
//!
//! Left out on purpose, as no customer meets them in our flows: the refund and reversal codes (2026, 2028,
//! 2034, 2035, 2042, 2071 to 2082, 2127: merchant operations), the Direct Debit mandate codes (2021, 2022, 2027,
//! 2030: another bKash product), 2033 (Search) and the "already completed" answers (2062, 2068, 2116, 2117,
//! 2119), which lead to Query Payment, never to a failure.

use crate::store::AttemptState;
use deshpay_api::{Method, ReasonCode};

/// Where a code of [`BKASH`] is documented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// bKash's error code list (developer.bka.sh/docs/error-codes, as captured in bKash's onboarding material).
    ErrorCodes,
    /// The error code list, and bKash's hosted payment page, which shows it to the customer inline (wallet,
    /// verification code and PIN steps of the `tokenized-0011`, `0000` and `0001` page scripts).
    HostedPage,
    /// The error code list's agreement codes (tokenized checkout with agreement: saved wallets, modes 0000/0001).
    Agreement,
    /// Not in the list: seen in bKash's answers as integrators report them (9999 on grant and system errors).
    Observed,
}

/// One documented bKash code: what the customer is told, bKash's own message (as documented; the merchant API
/// keeps the message bKash actually sent), and where it is documented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BkashCode {
    /// bKash's `statusCode` / `errorCode`.
    pub code: &'static str,
    /// What the widget says about it.
    pub reason: ReasonCode,
    /// bKash's `statusMessage` for it, as documented.
    pub message: &'static str,
    /// Where it is documented.
    pub source: Source,
}

const fn row(code: &'static str, reason: ReasonCode, message: &'static str, source: Source) -> BkashCode {
    BkashCode { code, reason, message, source }
}

use ReasonCode as R;
use Source::{Agreement, ErrorCodes, HostedPage, Observed};

/// Every documented bKash code a customer can meet, and the reason the widget words for it. Rows whose reason
/// is [`ReasonCode::Failed`] are neutral on purpose: the customer can do nothing about them but try again
/// (mostly the merchant's set-up, which a customer meets as "the payment could not be started").
pub const BKASH: &[BkashCode] = &[
    // The customer's balance, wallet and account.
    row("2023", R::InsufficientBalance, "Insufficient Balance", HostedPage),
    row("2009", R::InvalidWallet, "Invalid Wallet", HostedPage),
    row("2045", R::InvalidWallet, "The MSISDN of the customer does not exist.", HostedPage),
    row("2057", R::InvalidWallet, "Not a bKash Account", HostedPage),
    row("2058", R::InvalidWallet, "Not a Customer Wallet", HostedPage),
    row(
        "2037",
        R::AccountRestricted,
        "The account of the debit party is in a state which prohibits execution of this transaction",
        ErrorCodes,
    ),
    row("2038", R::AccountRestricted, "Debit party identity tag prohibits execution of this transaction", ErrorCodes),
    row(
        "2044",
        R::AccountRestricted,
        "Identity has not subscribed to a product that contains the expected service or the identity is not in Active status.",
        ErrorCodes,
    ),
    row(
        "2046",
        R::AccountRestricted,
        "Identity has not subscribed to a product that contains requested service.",
        ErrorCodes,
    ),
    // The verification code (OTP) sent by SMS.
    row("2010", R::VerificationFailed, "Invalid OTP", HostedPage),
    row("2013", R::VerificationFailed, "Resend Limit Exceeded", HostedPage),
    row("2016", R::VerificationFailed, "Wrong verification code", HostedPage),
    row("2017", R::VerificationFailed, "Wrong verification limit exceeded", HostedPage),
    row("2018", R::VerificationFailed, "OTP verification time expired", HostedPage),
    // The wallet PIN.
    row("2011", R::PinFailed, "Invalid PIN", HostedPage),
    row("2014", R::PinFailed, "Wrong PIN", HostedPage),
    row("2015", R::PinFailed, "Wrong PIN count exceeded", HostedPage),
    row("2019", R::PinFailed, "PIN verification time expired", HostedPage),
    row("2043", R::PinFailed, "The security credential of the subscriber is incorrect.", ErrorCodes),
    // bKash refuses a second payment of the same amount from the same wallet within minutes.
    row("2029", R::Duplicate, "Duplicate for all transactions", ErrorCodes),
    // A saved wallet (agreement) that can no longer pay.
    row("2051", R::SavedWalletUnavailable, "Invalid Agreement ID", Agreement),
    row("2052", R::SavedWalletUnavailable, "Agreement is in incomplete state", Agreement),
    row("2053", R::SavedWalletUnavailable, "Agreement has already been cancelled", Agreement),
    row("2055", R::SavedWalletUnavailable, "Invalid Agreement State", Agreement),
    row("2066", R::SavedWalletUnavailable, "Agreement is not shared with other merchant", Agreement),
    // bKash itself is failing: no money moved at this call (the core asks bKash before deciding anything).
    row("2003", R::ProviderUnavailable, "Process failed", ErrorCodes),
    row("2020", R::ProviderUnavailable, "Exception Occurred", ErrorCodes),
    row("2024", R::ProviderUnavailable, "Exception occurred", ErrorCodes),
    row("503", R::ProviderUnavailable, "System is undergoing maintenance. Please try again later", ErrorCodes),
    row("9999", R::ProviderUnavailable, "System Error", Observed),
    // Neutral: the payment's own state at bKash (the customer can only start again).
    row("2036", R::Failed, "The direct debit mandate is not in Active state", ErrorCodes),
    row("2054", R::Failed, "Agreement execution pre-requisite hasn't been met", Agreement),
    row("2056", R::Failed, "Invalid Payment State", ErrorCodes),
    row("2059", R::Failed, "Multiple OTP request for a single session denied", HostedPage),
    row("2060", R::Failed, "Payment execution pre-requisite hasn't been met", ErrorCodes),
    row("2069", R::Failed, "Transaction has already been cancelled", ErrorCodes),
    // Neutral: the merchant's set-up or request; customers meet these as a payment that could not start.
    row("2001", R::Failed, "Invalid App Key", ErrorCodes),
    row("2002", R::Failed, "Invalid Payment ID", ErrorCodes),
    row("2004", R::Failed, "Invalid firstPaymentDate", ErrorCodes),
    row("2005", R::Failed, "Invalid frequency", ErrorCodes),
    row("2006", R::Failed, "Invalid amount", ErrorCodes),
    row("2007", R::Failed, "Invalid currency", ErrorCodes),
    row("2008", R::Failed, "Invalid intent", ErrorCodes),
    row("2012", R::Failed, "Invalid Receiver MSISDN", ErrorCodes),
    row("2025", R::Failed, "Invalid request body", ErrorCodes),
    row("2031", R::Failed, "Invalid merchant invoice number", ErrorCodes),
    row("2032", R::Failed, "Invalid transfer type", ErrorCodes),
    row(
        "2039",
        R::Failed,
        "The account of the credit party is in a state which prohibits execution of this transaction",
        ErrorCodes,
    ),
    row("2040", R::Failed, "Credit party identity tag prohibits execution of this transaction", ErrorCodes),
    row(
        "2041",
        R::Failed,
        "Credit party identity is in a state which does not support the current service",
        ErrorCodes,
    ),
    row("2047", R::Failed, "TLV Data Format Error", ErrorCodes),
    row("2048", R::Failed, "Invalid Payer Reference", Agreement),
    row("2049", R::Failed, "Invalid Merchant Callback URL", Agreement),
    row("2050", R::Failed, "Agreement already exists between payer and merchant", Agreement),
    row("2061", R::Failed, "This action can only be performed by the agreement or payment initiator party", Agreement),
    row("2063", R::Failed, "Mode is not valid as per request data", Agreement),
    row("2064", R::Failed, "This product mode currently unavailable", Agreement),
    row("2065", R::Failed, "Mendatory field missing", Agreement),
    row("2067", R::Failed, "Invalid permission", ErrorCodes),
    row("2118", R::Failed, "The Platform value is invalid", ErrorCodes),
];

/// The row of a bKash code, if it is documented.
pub fn bkash_code(code: &str) -> Option<&'static BkashCode> {
    let code = code.trim();
    BKASH.iter().find(|row| row.code == code)
}

/// The reason for a `method` attempt in `state`; `None` while it is live or once paid. A bKash code words as
/// [`BKASH`] says; an unknown code, or a failure without one, is [`ReasonCode::Failed`] (worded neutrally), except
/// for the few outcomes we word ourselves (a UPI decline, a provider that did not answer).
pub fn reason_for(
    state: AttemptState,
    method: Method,
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
            Some(code) if !code.is_empty() => match method {
                Method::Bkash => bkash_code(code).map_or(ReasonCode::Failed, |row| row.reason),
                // Bestin Pay's codes are about our requests, never the customer's own answer.
                Method::Upi => ReasonCode::Failed,
            },
            // No code: our own words (providers::*::transformers, the reconciler, a client timeout).
            _ => {
                let message = failure_message.unwrap_or_default().to_ascii_lowercase();
                if message.contains("declined") {
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

    /// bKash's codes as its documents list them, grouped by what the customer is told: written out here rather
    /// than read from [`BKASH`], so that a changed row fails.
    const DOCUMENTED: [(ReasonCode, &[&str]); 9] = [
        (R::InsufficientBalance, &["2023"]),
        (R::InvalidWallet, &["2009", "2045", "2057", "2058"]),
        (R::AccountRestricted, &["2037", "2038", "2044", "2046"]),
        (R::VerificationFailed, &["2010", "2013", "2016", "2017", "2018"]),
        (R::PinFailed, &["2011", "2014", "2015", "2019", "2043"]),
        (R::Duplicate, &["2029"]),
        (R::SavedWalletUnavailable, &["2051", "2052", "2053", "2055", "2066"]),
        (R::ProviderUnavailable, &["2003", "2020", "2024", "503", "9999"]),
        (
            R::Failed,
            &[
                "2036", "2054", "2056", "2059", "2060", "2069", "2001", "2002", "2004", "2005", "2006", "2007", "2008",
                "2012", "2025", "2031", "2032", "2039", "2040", "2041", "2047", "2048", "2049", "2050", "2061", "2063",
                "2064", "2065", "2067", "2118",
            ],
        ),
    ];

    fn failed(code: &str) -> Option<ReasonCode> {
        reason_for(AttemptState::Failed, Method::Bkash, Some(code), Some("whatever bKash said"))
    }

    #[test]
    fn every_bkash_code_in_the_table_maps_as_documented() {
        let mut documented = 0;
        for (reason, codes) in DOCUMENTED {
            for code in codes {
                assert_eq!(failed(code), Some(reason), "{code}");
                let at_create = reason_for(AttemptState::CreateFailed, Method::Bkash, Some(code), None);
                assert_eq!(at_create, Some(reason), "{code} at create");
                assert!(bkash_code(code).is_some_and(|row| !row.message.is_empty()), "{code} keeps bKash's message");
                documented += 1;
            }
        }
        assert_eq!(BKASH.len(), documented, "every row of the table is in the documented list");
        let mut codes: Vec<&str> = BKASH.iter().map(|row| row.code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), BKASH.len(), "one row per code");
        assert_eq!(failed(" 2023 "), Some(R::InsufficientBalance), "bKash's code as written, spaces aside");
    }

    #[test]
    fn unknown_bkash_codes_are_neutral() {
        for unknown in ["7777", "2999", "0000", "2062", "2071", "5014", "garbage"] {
            assert_eq!(failed(unknown), Some(R::Failed), "{unknown}");
        }
    }

    #[test]
    fn every_code_that_fails_a_bkash_payment_has_a_row() {
        use crate::providers::bkash::codes::{ExecuteCode, execute_code};
        let every = (0..10_000).map(|n| format!("{n:04}")).chain(["503".to_owned()]);
        for code in every.filter(|c| execute_code(c) == ExecuteCode::Declined) {
            assert!(bkash_code(&code).is_some(), "{code} declines a payment: the customer needs words for it");
        }
    }

    #[test]
    fn upi_codes_never_read_as_bkash_codes() {
        let upi = reason_for(AttemptState::Failed, Method::Upi, Some("2023"), Some("Insufficient Balance"));
        assert_eq!(upi, Some(R::Failed));
    }

    #[test]
    fn messages_without_a_code_are_read_for_what_we_wrote() {
        let failed = |message| reason_for(AttemptState::Failed, Method::Upi, None, Some(message));
        assert_eq!(failed("The payment was declined in the UPI app."), Some(R::Declined));
        assert_eq!(failed("Payment failed"), Some(R::Failed));
        assert_eq!(failed("bKash could not complete the payment. You were not charged."), Some(R::Failed));
        assert_eq!(failed("Insufficient Balance"), Some(R::Failed), "provider words without a code: neutral");
        let no_answer = reason_for(AttemptState::CreateFailed, Method::Bkash, None, Some("bKash did not answer"));
        assert_eq!(no_answer, Some(R::ProviderUnavailable));
        assert_eq!(reason_for(AttemptState::Failed, Method::Bkash, None, None), Some(R::Failed));
        assert_eq!(reason_for(AttemptState::Failed, Method::Upi, Some(""), Some("declined")), Some(R::Declined));
    }

    #[test]
    fn final_states_have_their_own_reason_and_live_ones_none() {
        let at = |state, message| reason_for(state, Method::Bkash, None, message);
        assert_eq!(at(AttemptState::Review, Some("amount mismatch")), Some(R::Review));
        assert_eq!(at(AttemptState::Superseded, None), Some(R::AlreadyPaid));
        assert_eq!(at(AttemptState::Cancelled, Some("Payment cancelled")), Some(R::Cancelled));
        assert_eq!(at(AttemptState::Expired, None), Some(R::Expired));
        for live in [AttemptState::Creating, AttemptState::Created, AttemptState::Executing, AttemptState::Completed] {
            assert_eq!(reason_for(live, Method::Bkash, Some("2023"), Some("x")), None, "{live:?}");
        }
    }
}
