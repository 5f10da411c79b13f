//! bKash's redirect query string: never a panic; what is accepted is a well-formed paymentID and one of the
//! three statuses.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(query) = std::str::from_utf8(data) else { return };
    if let Ok(callback) = deshpay_server::edge::parse_callback_query(query) {
        assert!(!callback.payment_id.is_empty() && callback.payment_id.len() <= 64);
        assert!(callback.payment_id.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert!(matches!(callback.status.as_str(), "success" | "failure" | "cancel"));
    }
});
