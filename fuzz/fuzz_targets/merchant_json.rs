//! `merchant_json`: the check lives in `deshpay_server::fuzz_checks::merchant_json`, where `cargo test` also replays the
//! committed seeds of `fuzz/seeds/merchant_json/` through it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    deshpay_server::fuzz_checks::merchant_json(data);
});
