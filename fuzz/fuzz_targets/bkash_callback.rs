//! `bkash_callback`: the check lives in `deshpay_server::fuzz_checks::bkash_callback`, where `cargo test` also replays the
//! committed seeds of `fuzz/seeds/bkash_callback/` through it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    deshpay_server::fuzz_checks::bkash_callback(data);
});
