//! Amounts as customers read them: ৳ and ₹ in the customer's language.
//!
//! The amount stays integer minor units until it is written out, digit by digit, with the symbol first and
//! lakh grouping, in Bengali digits for taka in Bengali and Latin digits everywhere else ([`format`]). No
//! floats, no `Intl` (whose output differs between browsers and misses what these customers expect).

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

/// The digits an amount is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Digits {
    /// 0123456789.
    Latin,
    /// ০১২৩৪৫৬৭৮৯, as Bangladeshi shops and bKash write taka in Bengali.
    Bengali,
}

impl Digits {
    /// The digits of a card in `locale` showing `currency`: Bengali for taka in Bengali, else Latin (UPI apps and
    /// the UPI PIN screen show rupees in Latin digits in Bengali and Hindi too, and the customer compares the two).
    /// Every number on one card uses them, so that one card never mixes two digit systems.
    pub fn of(locale: Locale, currency: Currency) -> Digits {
        match (locale, currency) {
            (Locale::Bn, Currency::Bdt) => Digits::Bengali,
            _ => Digits::Latin,
        }
    }

    /// `text` with its ASCII digits in these digits.
    pub fn apply(self, text: &str) -> String {
        match self {
            Digits::Latin => text.to_owned(),
            Digits::Bengali => text
                .chars()
                .map(|c| match c.to_digit(10) {
                    Some(d) if c.is_ascii_digit() => char::from_u32(0x09E6 + d).unwrap_or(c),
                    _ => c,
                })
                .collect(),
        }
    }
}

/// The digits of `n` (not negative) with lakh grouping, as Bangladesh and India write amounts: the last three
/// digits, then groups of two ("1,00,000", "12,34,56,789").
pub fn grouped(n: i64) -> String {
    let plain = digits(n);
    let mut out = String::with_capacity(plain.len() + plain.len() / 2);
    let len = plain.len();
    for (i, c) in plain.chars().enumerate() {
        let left = len - i;
        if i > 0 && (left == 3 || (left > 3 && (left - 3).is_multiple_of(2))) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// An amount as customers read it: the symbol first, lakh grouping, two decimals, in the card's digits
/// ([`Digits::of`]): "৳২৫০.০০" (Bengali, taka), "৳1,00,000.00" (English, taka), "₹250.00" (Bengali or Hindi,
/// rupees). Written here rather than by `Intl.NumberFormat`, whose Bengali puts ৳ after the number and whose
/// English for Bangladesh has no lakh grouping. Empty for an invalid amount.
pub fn format(minor: i64, currency: Currency, locale: Locale) -> String {
    if !(0..=MAX_MINOR).contains(&minor) {
        return String::new();
    }
    let unit = 10_i64.pow(currency.exponent());
    let mut out = String::from(currency.symbol());
    out.push_str(&grouped(minor / unit));
    out.push('.');
    push_digits(&mut out, minor % unit, currency.exponent() as usize);
    Digits::of(locale, currency).apply(&out)
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
    fn lakh_grouping_puts_a_comma_after_the_thousands_then_every_two_digits() {
        let cases = [
            (0, "0"),
            (7, "7"),
            (999, "999"),
            (1_000, "1,000"),
            (99_999, "99,999"),
            (100_000, "1,00,000"),
            (1_234_567, "12,34,567"),
            (10_000_000, "1,00,00,000"),
            (1_000_000_000, "1,00,00,00,000"),
        ];
        for (n, text) in cases {
            assert_eq!(grouped(n), text, "{n}");
        }
    }

    #[test]
    fn every_locale_and_currency_shows_amounts_as_its_customers_wallets_do() {
        use Currency::{Bdt, Inr};
        use Locale::{Bn, En, Hi};
        // (locale, currency, 250.00, 1,00,000.00, 12,34,567.89)
        let cases = [
            (En, Bdt, "৳250.00", "৳1,00,000.00", "৳12,34,567.89"),
            (En, Inr, "₹250.00", "₹1,00,000.00", "₹12,34,567.89"),
            (Bn, Bdt, "৳২৫০.০০", "৳১,০০,০০০.০০", "৳১২,৩৪,৫৬৭.৮৯"),
            (Bn, Inr, "₹250.00", "₹1,00,000.00", "₹12,34,567.89"),
            (Hi, Bdt, "৳250.00", "৳1,00,000.00", "৳12,34,567.89"),
            (Hi, Inr, "₹250.00", "₹1,00,000.00", "₹12,34,567.89"),
        ];
        for (locale, currency, small, lakh, large) in cases {
            assert_eq!(format(25_000, currency, locale), small, "{locale:?} {currency:?}");
            assert_eq!(format(10_000_000, currency, locale), lakh, "{locale:?} {currency:?}");
            assert_eq!(format(123_456_789, currency, locale), large, "{locale:?} {currency:?}");
            assert_eq!(
                format(5, currency, locale),
                Digits::of(locale, currency).apply(&[currency.symbol(), "0.05"].concat())
            );
            assert_eq!(format(-1, currency, locale), "");
        }
        assert!(Locale::ALL.len() == 3 && Currency::Bdt != Currency::Inr, "every pair above");
    }

    #[test]
    fn one_card_uses_one_digit_system() {
        assert_eq!(Digits::of(Locale::Bn, Currency::Bdt).apply("14:05 ORD-1"), "১৪:০৫ ORD-১");
        assert_eq!(Digits::of(Locale::Bn, Currency::Inr).apply("14:05"), "14:05");
        assert_eq!(Digits::of(Locale::Hi, Currency::Inr).apply("14:05"), "14:05");
        let bengali = format(123_456_789, Currency::Bdt, Locale::Bn);
        assert!(!bengali.chars().any(|c| c.is_ascii_digit()), "{bengali}");
        let hindi = format(123_456_789, Currency::Inr, Locale::Hi);
        assert!(hindi.chars().filter(|c| c.is_numeric()).all(|c| c.is_ascii_digit()), "{hindi}");
    }
}
