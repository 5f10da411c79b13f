//! Amounts as customers read them: ৳ and ₹ in the customer's language.
//!
//! The amount stays integer minor units until the last step, which hands `Intl.NumberFormat` the exact decimal
//! string ("250.00"); modern browsers format strings without going through a float. When `Intl` is missing
//! or fails, the widget shows the symbol and the decimal ("৳250.00").

use crate::i18n::Locale;
use deshpay_api::Currency;

/// The largest amount [`deshpay_api::Money::from_minor`] accepts (checked against it by the tests).
const MAX_MINOR: i64 = 1_000_000_000_000;

/// The exact decimal string of an amount in minor units ("250.00"), or `None` for an invalid amount: what
/// [`deshpay_api::Money::to_decimal`] writes, without `format!` (core's formatting machinery is large in the wasm).
pub fn decimal(minor: i64, currency: Currency) -> Option<String> {
    if !(0..=MAX_MINOR).contains(&minor) {
        return None;
    }
    let unit = 10_i64.pow(currency.exponent());
    let mut out = String::new();
    push_digits(&mut out, minor / unit, 1);
    out.push('.');
    push_digits(&mut out, minor % unit, currency.exponent() as usize);
    Some(out)
}

/// The decimal digits of `n` (not negative), without `to_string`/`format!`.
pub fn digits(n: i64) -> String {
    let mut out = String::new();
    push_digits(&mut out, n, 1);
    out
}

/// Appends the decimal digits of `n` (not negative), left-padded with zeros to `width`.
pub fn push_digits(out: &mut String, mut n: i64, width: usize) {
    let mut digits = [0u8; 20];
    let mut len = 0;
    while n > 0 || len < width {
        digits[len] = b'0' + (n % 10) as u8;
        n /= 10;
        len += 1;
    }
    out.extend(digits[..len].iter().rev().map(|&d| char::from(d)));
}

/// The plain form used when `Intl` is not available: symbol then decimal, "৳250.00".
pub fn fallback(decimal: &str, currency: Currency) -> String {
    crate::cat(&[currency.symbol(), decimal])
}

/// The `Intl` locale for a language and currency: the region follows the currency, so that English speakers
/// in India get lakh grouping ("₹1,00,000.00") and Bengali speakers in Bangladesh get Bengali digits.
pub fn intl_locale(locale: Locale, currency: Currency) -> &'static str {
    match (locale, currency) {
        (Locale::En, Currency::Bdt) => "en-BD",
        (Locale::En, Currency::Inr) => "en-IN",
        (Locale::Bn, Currency::Bdt) => "bn-BD",
        (Locale::Bn, Currency::Inr) => "bn-IN",
        (Locale::Hi, _) => "hi-IN",
    }
}

/// Formats an amount for display with `Intl.NumberFormat` (currency style, narrow symbol), falling back to
/// [`fallback`].
#[cfg(target_arch = "wasm32")]
pub fn format(minor: i64, currency: Currency, locale: Locale) -> String {
    use js_sys::{Array, Intl, Object, Reflect};
    use wasm_bindgen::JsValue;

    let Some(decimal) = decimal(minor, currency) else {
        return String::new();
    };
    let intl = || -> Option<String> {
        // A missing `Intl` would throw from the constructor; check first.
        if !Reflect::has(&js_sys::global(), &"Intl".into()).ok()? {
            return None;
        }
        let options = Object::new();
        Reflect::set(&options, &"style".into(), &"currency".into()).ok()?;
        Reflect::set(&options, &"currency".into(), &currency.code().into()).ok()?;
        Reflect::set(&options, &"currencyDisplay".into(), &"narrowSymbol".into()).ok()?;
        let locales = Array::of1(&intl_locale(locale, currency).into());
        let nf = Intl::NumberFormat::new(&locales, &options);
        nf.format().call1(&JsValue::UNDEFINED, &JsValue::from_str(&decimal)).ok()?.as_string()
    };
    intl().filter(|s| !s.is_empty()).unwrap_or_else(|| fallback(&decimal, currency))
}

#[cfg(test)]
mod tests {
    use super::*;
    use deshpay_api::Money;

    #[test]
    fn decimals_are_exact_strings() {
        assert_eq!(decimal(25000, Currency::Bdt).as_deref(), Some("250.00"));
        assert_eq!(decimal(10101, Currency::Inr).as_deref(), Some("101.01"));
        assert_eq!(decimal(5, Currency::Bdt).as_deref(), Some("0.05"));
        assert_eq!(decimal(-1, Currency::Bdt), None);
    }

    #[test]
    fn decimals_match_the_api_crate() {
        let samples = [0, 1, 9, 10, 99, 100, 101, 25_000, 123_456_789, MAX_MINOR - 1, MAX_MINOR, MAX_MINOR + 1, -100];
        for minor in samples.into_iter().chain((0..2_000).map(|i| i * 7_919)) {
            let api = Money::from_minor(minor, Currency::Inr).ok().map(Money::to_decimal);
            assert_eq!(decimal(minor, Currency::Inr), api, "{minor}");
        }
    }

    #[test]
    fn fallback_puts_the_symbol_first() {
        assert_eq!(fallback("250.00", Currency::Bdt), "৳250.00");
        assert_eq!(fallback("101.00", Currency::Inr), "₹101.00");
    }

    #[test]
    fn intl_region_follows_the_currency() {
        assert_eq!(intl_locale(Locale::En, Currency::Inr), "en-IN");
        assert_eq!(intl_locale(Locale::Bn, Currency::Bdt), "bn-BD");
        assert_eq!(intl_locale(Locale::Hi, Currency::Bdt), "hi-IN");
    }
}
