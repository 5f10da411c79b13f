//! `money`: the check lives in `deshpay_server::fuzz_checks::money`, where `cargo test` also replays the
//! committed seeds of `fuzz/seeds/money/` through it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    deshpay_server::fuzz_checks::money(data);
});
