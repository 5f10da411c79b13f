//! Money parsing: never a panic, and whatever parses prints back to a decimal that parses to the same amount.
#![no_main]

use deshpay_api::{Currency, Money};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for currency in [Currency::Bdt, Currency::Inr] {
        if let Ok(money) = Money::parse(text, currency) {
            let printed = money.to_decimal();
            assert_eq!(Money::parse(&printed, currency).ok(), Some(money), "{text:?} -> {printed:?}");
        }
    }
});
