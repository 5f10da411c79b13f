//! Bestin Pay's notification body and its canonical string: never a panic, a fuzzed body never verifies, and
//! where every value is a string the raw canonicalisation equals the parsed one.
#![no_main]

use deshpay_server::bestin::{NotifyVerifier, SANDBOX_TEST_PUBLIC_KEY, canonical_string, canonical_string_raw};
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

static VERIFIER: LazyLock<NotifyVerifier> =
    LazyLock::new(|| NotifyVerifier::from_pem(SANDBOX_TEST_PUBLIC_KEY).expect("the sandbox key parses"));

fuzz_target!(|data: &[u8]| {
    assert!(!VERIFIER.verify_notification(data), "a fuzzed body carries no valid signature");
    let Ok(text) = std::str::from_utf8(data) else { return };
    let raw = canonical_string_raw(text);
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(text) {
        let all_strings = map.values().all(|v| v.is_string() || v.is_null());
        // Duplicate keys: both keep the last one.
        if all_strings && let Ok(raw) = raw {
            assert_eq!(raw, canonical_string(&map));
        }
    }
});
