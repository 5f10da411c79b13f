//! The DeshPay Checkout widget.
//!
//! For now a placeholder that proves the crate builds for `wasm32-unknown-unknown` with the shared wire types;
//! the Leptos component arrives with the widget issue. Build it with `cargo xtask build`.

use wasm_bindgen::prelude::*;

/// Formats an amount in minor units the way the widget will show it, e.g. `format_amount(25000, "BDT")` is
/// "৳250.00". Returns an empty string for an unknown currency.
#[wasm_bindgen]
pub fn format_amount(minor: i64, currency: &str) -> String {
    match currency.parse::<deshpay_api::Currency>() {
        Ok(c) => match deshpay_api::Money::from_minor(minor, c) {
            Ok(m) => format!("{}{}", c.symbol(), m.to_decimal()),
            Err(_) => String::new(),
        },
        Err(_) => String::new(),
    }
}
