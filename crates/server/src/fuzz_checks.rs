//! The fuzz targets' checks as plain functions. `fuzz/fuzz_targets/*.rs` (cargo-fuzz, nightly) call them on
//! every generated input, and the test below replays the committed seed corpus `fuzz/seeds/<target>/` through
//! them on stable in `cargo test`, so the long campaign and the CI regression run check the same properties.
//!
//! Each check panics when a property breaks and otherwise returns whether the input was accepted (parsed,
//! verified), which lets the seed test prove the seeds reach both sides of every check.

use crate::providers::bestin::notify::{
    NotifyVerifier, SANDBOX_TEST_PUBLIC_KEY, canonical_string, canonical_string_raw,
};
use deshpay_api::{CreateSessionRequest, Currency, Money, PayoutRequest, RefundRequest};
use std::sync::LazyLock;

/// A check: panics when a property breaks, otherwise says whether the input was accepted.
pub type Check = fn(&[u8]) -> bool;

/// The targets, as named in `fuzz/Cargo.toml` and `fuzz/seeds/`, with their checks.
pub const TARGETS: [(&str, Check); 4] = [
    ("bkash_callback", bkash_callback),
    ("bestin_notify", bestin_notify),
    ("money", money),
    ("merchant_json", merchant_json),
];

/// bKash's redirect query string: never a panic; what is accepted is a well-formed paymentID and one of the
/// three statuses.
pub fn bkash_callback(data: &[u8]) -> bool {
    let Ok(query) = std::str::from_utf8(data) else { return false };
    let Ok(callback) = crate::edge::parse_callback_query(query) else { return false };
    assert!(!callback.payment_id.is_empty() && callback.payment_id.len() <= 64);
    assert!(callback.payment_id.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert!(matches!(callback.status.as_str(), "success" | "failure" | "cancel"));
    true
}

static VERIFIER: LazyLock<NotifyVerifier> =
    LazyLock::new(|| NotifyVerifier::from_pem(SANDBOX_TEST_PUBLIC_KEY).expect("the sandbox key parses"));

/// The canonical strings that the committed `bestin_notify` seeds carry genuine sandbox signatures of. A body
/// may verify only if its canonical string is one of these: anything else verifying would be a forgery.
const SIGNED_CANONICAL: [&str; 3] = [
    "amount=101.00&ccy=INR&mid=M01K7BKY89ZKEJEF7S313X6KM21&req_id=PAY20241022001&status=success&trx_id=PI01KAG1YM11Z3Y7BG4VW9K86ZRJ&trx_type=payin",
    "amount=250.5000&ccy=INR&mid=M01K7BKY89ZKEJEF7S313X6KM21&status=failed&trx_id=PO01KAG1YM11Z3Y7BG4VW9K86ZRK&trx_type=payout",
    // Numbers signed as written (Bestin Pay's canonicalisation keeps their text).
    "amount=101.00&ccy=INR&status=success&trx_id=PI1",
];

/// A notification's `data` as sent.
#[derive(serde::Deserialize)]
struct RawData<'a> {
    #[serde(borrow)]
    data: &'a serde_json::value::RawValue,
}

/// Bestin Pay's notification body and its canonical string: never a panic; only a body whose `data`
/// canonicalises to a string the sandbox key really signed verifies; where every value is a string or null the
/// raw canonicalisation equals the parsed one. Accepted: the body verified.
pub fn bestin_notify(data: &[u8]) -> bool {
    let verified = VERIFIER.verify_notification(data);
    if verified {
        // The same raw text the verifier canonicalised: re-serialising a parsed number would change its digits.
        let canonical = serde_json::from_slice::<RawData<'_>>(data)
            .ok()
            .and_then(|n| canonical_string_raw(n.data.get()).ok())
            .expect("a verified body has a canonical data object");
        assert!(
            SIGNED_CANONICAL.contains(&canonical.as_str()),
            "a body verified whose content was never signed: {}",
            String::from_utf8_lossy(data)
        );
    }
    let Ok(text) = std::str::from_utf8(data) else { return verified };
    let raw = canonical_string_raw(text);
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(text) {
        let all_strings = map.values().all(|v| v.is_string() || v.is_null());
        // Duplicate keys: both keep the last one.
        if all_strings && let Ok(raw) = raw {
            assert_eq!(raw, canonical_string(&map));
        }
    }
    verified
}

/// Money parsing: never a panic, and whatever parses prints back to a decimal that parses to the same amount.
/// Accepted: the text parsed in at least one currency.
pub fn money(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else { return false };
    let mut parsed = false;
    for currency in [Currency::Bdt, Currency::Inr] {
        if let Ok(money) = Money::parse(text, currency) {
            let printed = money.to_decimal();
            assert_eq!(Money::parse(&printed, currency).ok(), Some(money), "{text:?} -> {printed:?}");
            assert_eq!(Money::from_minor(money.minor(), currency).ok(), Some(money), "{text:?}");
            parsed = true;
        }
    }
    parsed
}

/// The merchant API's JSON bodies (sessions, refunds, payouts): decoding and the edge checks never panic, a
/// decoded body encodes again, and a `return_url` that passes the production check is https and short enough.
/// Accepted: the body decoded as one of the three requests.
pub fn merchant_json(data: &[u8]) -> bool {
    let mut decoded = false;
    if let Ok(session) = serde_json::from_slice::<CreateSessionRequest>(data) {
        let _ = Money::parse(&session.amount, Currency::Bdt);
        if let Some(url) = &session.return_url
            && crate::edge::check_return_url(url, 2048, true).is_ok()
        {
            assert!(url.chars().count() <= 2048);
            assert!(url.get(..8).is_some_and(|s| s.eq_ignore_ascii_case("https://")));
        }
        if let Some(url) = &session.success_url
            && crate::edge::check_success_url(url, 2048, true).is_ok()
        {
            assert!(url.chars().count() <= 2048);
            assert!(url.get(..8).is_some_and(|s| s.eq_ignore_ascii_case("https://")));
        }
        let _ = serde_json::to_string(&session).expect("a decoded request encodes");
        decoded = true;
    }
    if let Ok(refund) = serde_json::from_slice::<RefundRequest>(data) {
        let _ = serde_json::to_string(&refund).expect("a decoded request encodes");
        decoded = true;
    }
    if let Ok(payout) = serde_json::from_slice::<PayoutRequest>(data) {
        let _ = serde_json::to_string(&payout).expect("a decoded request encodes");
        decoded = true;
    }
    decoded
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    fn fuzz_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
    }

    /// The regression run of the fuzz corpus: every committed seed (valid, edge, malformed, and every crash
    /// input ever found, kept as `crash-*`) goes through its target's check; the seeds must reach both sides of
    /// each check.
    #[test]
    fn every_committed_fuzz_seed_passes_its_check() {
        let mut failures = Vec::new();
        for (target, check) in TARGETS {
            let dir = fuzz_dir().join("seeds").join(target);
            let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .map(|e| e.unwrap().path())
                .filter(|p| p.is_file())
                .collect();
            files.sort();
            assert!(files.len() >= 20, "{target}: only {} seeds in {}", files.len(), dir.display());
            let (mut accepted, mut refused) = (0, 0);
            for file in &files {
                let data = std::fs::read(file).unwrap();
                let name = file.file_name().unwrap().to_string_lossy().into_owned();
                // A seed's name says what its check must answer: `valid-*` accepted, `malformed-*` and
                // `invalid-*` refused; `edge-*` and crash inputs only must not break the check.
                let expected = if name.starts_with("valid-") {
                    Some(true)
                } else if name.starts_with("malformed-") || name.starts_with("invalid-") {
                    Some(false)
                } else {
                    None
                };
                match std::panic::catch_unwind(|| check(&data)) {
                    Ok(got) if expected.is_some_and(|e| e != got) => {
                        failures.push(format!("{target}/{name}: accepted = {got}"));
                    }
                    Ok(true) => accepted += 1,
                    Ok(false) => refused += 1,
                    Err(_) => failures.push(format!("{target}/{name}: panicked")),
                }
            }
            assert!(accepted >= 2 && refused >= 2, "{target}: {accepted} seeds accepted, {refused} refused");
        }
        assert!(failures.is_empty(), "seeds that broke their check: {failures:#?}");
    }

    /// A target added to `fuzz/Cargo.toml` without a check here and seeds (or the other way round) fails.
    #[test]
    fn the_fuzz_crate_seeds_and_checks_name_the_same_targets() {
        let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).unwrap();
        let mut bins: Vec<&str> = manifest
            .split("[[bin]]")
            .skip(1)
            .filter_map(|b| b.lines().find_map(|l| l.trim().strip_prefix("name = ")))
            .map(|n| n.trim_matches('"'))
            .collect();
        let mut seeds: Vec<String> = std::fs::read_dir(fuzz_dir().join("seeds"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        let mut checks: Vec<&str> = TARGETS.iter().map(|(name, _)| *name).collect();
        bins.sort_unstable();
        seeds.sort_unstable();
        checks.sort_unstable();
        assert_eq!(bins, checks);
        assert_eq!(seeds, checks);
    }

    #[test]
    fn a_signature_over_content_never_signed_is_caught_by_the_check() {
        // The vectors' tampered case carries a real signature over other content: it must not verify.
        let v: serde_json::Value = serde_json::from_str(include_str!("../keys/bestinpay-notify-vectors.json")).unwrap();
        for case in v["cases"].as_array().unwrap() {
            let body = serde_json::to_vec(&case["notification"]).unwrap();
            assert_eq!(bestin_notify(&body), case["valid"].as_bool().unwrap(), "{}", case["name"]);
        }
    }
}
