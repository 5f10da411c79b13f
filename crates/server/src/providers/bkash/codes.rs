//! What a bKash status code means for our books: the one table the payment core decides by.
//!
//! Source: the error-code table of ../shared/spec/bkash.md section 9 (bKash's own list, developer.bka.sh
//! "error-codes" as captured, and the refund codes of the BIK/BKJS clients). Only a *definitive decline* fails an
//! attempt or a refund; every other answer (system errors 2003/2020/2024/503/9999, codes we do not know, a body
//! we cannot read) is "in doubt" and leads to Query or refund status (money rule 5).

/// How the core treats a bKash code returned by Execute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecuteCode {
    /// bKash refused the payment; no money moved.
    Declined,
    /// The payment was already completed (2062, 2068, 2117, 2119 ...): Query and settle.
    AlreadyDone,
    /// 2056 "Invalid Payment State": typically not approved by the customer yet (a callback that came too early
    /// or was forged): Query; if bKash still says Initiated, the attempt goes back to waiting.
    NotApproved,
    /// Anything else: ask bKash (Query) before deciding.
    InDoubt,
}

/// Classifies a code answered by Execute Payment.
pub fn execute_code(code: &str) -> ExecuteCode {
    match code {
        // The customer's wallet, OTP or PIN failed; the debit party cannot pay; a duplicate the gateway refused.
        "2010" | "2011" | "2012" | "2013" | "2014" | "2015" | "2016" | "2017" | "2018" | "2019" | "2023" | "2029"
        | "2036" | "2037" | "2038" | "2044" | "2045" | "2057" | "2058" | "2059" | "2060" | "2069" => {
            ExecuteCode::Declined
        }
        "2062" | "2068" | "2116" | "2117" | "2119" => ExecuteCode::AlreadyDone,
        "2056" => ExecuteCode::NotApproved,
        _ => ExecuteCode::InDoubt,
    }
}

/// Whether a refund answer is a definitive refusal (no money returned, and asking again will not change it).
pub fn refund_declined(code: &str) -> bool {
    matches!(
        code,
        "2002"
            | "2025"
            | "2026"
            | "2034"
            | "2065"
            | "2071"
            | "2072"
            | "2073"
            | "2074"
            | "2075"
            | "2076"
            | "2077"
            | "2078"
            | "2080"
            | "2081"
            | "2082"
            | "2127"
    )
}

/// Codes meaning "no such transaction" on Search.
pub fn not_found(code: &str) -> bool {
    matches!(code, "2033" | "2077" | "2002")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_listed_declines_fail_and_system_errors_are_in_doubt() {
        for code in ["2023", "2014", "2016", "2037", "2057"] {
            assert_eq!(execute_code(code), ExecuteCode::Declined, "{code}");
        }
        for code in ["2003", "2020", "2024", "9999", "503", "", "garbage", "2999"] {
            assert_eq!(execute_code(code), ExecuteCode::InDoubt, "{code}");
        }
        assert_eq!(execute_code("2056"), ExecuteCode::NotApproved);
        assert_eq!(execute_code("2117"), ExecuteCode::AlreadyDone);
    }

    #[test]
    fn refund_system_errors_are_not_declines() {
        assert!(refund_declined("2071") && refund_declined("2026"));
        for code in ["2003", "9999", "503", "2020"] {
            assert!(!refund_declined(code), "{code}");
        }
    }
}
