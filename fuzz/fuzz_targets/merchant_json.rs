//! The merchant API's JSON bodies (sessions, refunds, payouts): decoding and the edge checks never panic.
#![no_main]

use deshpay_api::{CreateSessionRequest, Currency, Money, PayoutRequest, RefundRequest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(session) = serde_json::from_slice::<CreateSessionRequest>(data) {
        let _ = Money::parse(&session.amount, Currency::Bdt);
        let _ = deshpay_server::edge::check_return_url(&session.return_url, 2048, true);
        let _ = serde_json::to_string(&session).expect("a decoded request encodes");
    }
    if let Ok(refund) = serde_json::from_slice::<RefundRequest>(data) {
        let _ = serde_json::to_string(&refund).expect("a decoded request encodes");
    }
    if let Ok(payout) = serde_json::from_slice::<PayoutRequest>(data) {
        let _ = serde_json::to_string(&payout).expect("a decoded request encodes");
    }
});
