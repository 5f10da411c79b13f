//! Money: integer minor units (poisha, paise) tagged with a currency. Provider strings such as "101.00" or
//! "101.0000" are parsed here exactly once; no floating point anywhere.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The currencies DeshPay takes. bKash settles in BDT, Bestin Pay (UPI) in INR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Currency {
    /// Bangladeshi taka (minor unit: poisha).
    #[serde(rename = "BDT")]
    Bdt,
    /// Indian rupee (minor unit: paisa).
    #[serde(rename = "INR")]
    Inr,
}

impl Currency {
    /// ISO 4217 code, as the providers spell it.
    pub fn code(self) -> &'static str {
        match self {
            Currency::Bdt => "BDT",
            Currency::Inr => "INR",
        }
    }

    /// The symbol shown to customers.
    pub fn symbol(self) -> &'static str {
        match self {
            Currency::Bdt => "৳",
            Currency::Inr => "₹",
        }
    }

    /// Number of decimal places of the minor unit (2 for both).
    pub fn exponent(self) -> u32 {
        2
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Currency {
    type Err = MoneyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "BDT" => Ok(Currency::Bdt),
            "INR" => Ok(Currency::Inr),
            other => Err(MoneyError::UnknownCurrency(other.to_owned())),
        }
    }
}

/// Why an amount or currency was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// Not a plain decimal number such as "250" or "250.50".
    #[error("amount {0:?} is not a decimal number like \"250.00\"")]
    Malformed(String),
    /// More significant decimals than the currency has (e.g. "1.005").
    #[error("amount {0:?} has more than 2 significant decimal places")]
    TooPrecise(String),
    /// Larger than any amount the providers accept.
    #[error("amount {0:?} is too large")]
    TooLarge(String),
    /// Zero or negative where a positive amount is needed.
    #[error("amount must be greater than zero")]
    NotPositive,
    /// A currency code other than BDT or INR.
    #[error("currency {0:?} is not supported (BDT or INR)")]
    UnknownCurrency(String),
}

/// The largest amount accepted, in minor units (10 000 000 000.00): far above any wallet limit, far below overflow.
const MAX_MINOR: i64 = 1_000_000_000_000;

/// An amount of money in integer minor units with its currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    minor: i64,
    currency: Currency,
}

impl Money {
    /// Builds money from minor units.
    ///
    /// # Errors
    /// [`MoneyError::TooLarge`] beyond the accepted maximum, [`MoneyError::NotPositive`] for negative amounts.
    pub fn from_minor(minor: i64, currency: Currency) -> Result<Self, MoneyError> {
        if minor < 0 {
            return Err(MoneyError::NotPositive);
        }
        if minor > MAX_MINOR {
            return Err(MoneyError::TooLarge(minor.to_string()));
        }
        Ok(Money { minor, currency })
    }

    /// Parses a provider or merchant decimal string: digits, optionally a point and decimals. Decimals beyond
    /// the second must be zeros ("101.0000" is 10100 paise); signs, exponents, spaces and commas are refused.
    ///
    /// # Errors
    /// [`MoneyError::Malformed`], [`MoneyError::TooPrecise`] or [`MoneyError::TooLarge`].
    pub fn parse(text: &str, currency: Currency) -> Result<Self, MoneyError> {
        let malformed = || MoneyError::Malformed(text.to_owned());
        let (whole, frac) = match text.split_once('.') {
            Some((w, f)) => (w, f),
            None => (text, ""),
        };
        if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
            return Err(malformed());
        }
        if text.contains('.') && frac.is_empty() {
            return Err(malformed());
        }
        if !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(malformed());
        }
        let exp = currency.exponent() as usize;
        let (kept, extra) = frac.split_at(frac.len().min(exp));
        if extra.bytes().any(|b| b != b'0') {
            return Err(MoneyError::TooPrecise(text.to_owned()));
        }
        let whole = whole.trim_start_matches('0');
        if whole.len() > 12 {
            return Err(MoneyError::TooLarge(text.to_owned()));
        }
        let whole: i64 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| malformed())? };
        let mut cents: i64 = 0;
        for i in 0..exp {
            let digit = kept.as_bytes().get(i).map_or(0, |b| i64::from(b - b'0'));
            cents = cents * 10 + digit;
        }
        let minor = whole
            .checked_mul(10_i64.pow(currency.exponent()))
            .and_then(|w| w.checked_add(cents))
            .ok_or_else(|| MoneyError::TooLarge(text.to_owned()))?;
        Money::from_minor(minor, currency).map_err(|_| MoneyError::TooLarge(text.to_owned()))
    }

    /// Parses an amount that must be greater than zero.
    ///
    /// # Errors
    /// As [`Money::parse`], plus [`MoneyError::NotPositive`] for zero.
    pub fn parse_positive(text: &str, currency: Currency) -> Result<Self, MoneyError> {
        let money = Money::parse(text, currency)?;
        if money.minor == 0 {
            return Err(MoneyError::NotPositive);
        }
        Ok(money)
    }

    /// Amount in minor units.
    pub fn minor(self) -> i64 {
        self.minor
    }

    /// The currency.
    pub fn currency(self) -> Currency {
        self.currency
    }

    /// Decimal string with the currency's two places: "250.00" (what bKash and the merchant API use).
    pub fn to_decimal(self) -> String {
        self.to_decimal_places(2)
    }

    /// Decimal string with `places` decimals (at least 2): Bestin Pay answers with 4, "101.0000".
    pub fn to_decimal_places(self, places: usize) -> String {
        let unit = 10_i64.pow(self.currency.exponent());
        let mut out = format!("{}.{:02}", self.minor / unit, self.minor % unit);
        for _ in 2..places {
            out.push('0');
        }
        out
    }

    /// `Some(self - other)` when both share a currency and the result is not negative.
    pub fn checked_sub(self, other: Money) -> Option<Money> {
        if self.currency != other.currency || other.minor > self.minor {
            return None;
        }
        Some(Money { minor: self.minor - other.minor, currency: self.currency })
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.to_decimal(), self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_provider_strings_exactly() {
        let cases =
            [("250", 25000), ("250.5", 25050), ("250.50", 25050), ("101.0000", 10100), ("0.01", 1), ("007.10", 710)];
        for (text, minor) in cases {
            assert_eq!(Money::parse(text, Currency::Bdt).unwrap().minor(), minor, "{text}");
        }
    }

    #[test]
    fn refuses_anything_but_plain_decimals() {
        for text in ["", ".5", "5.", "-1", "+1", "1e3", " 1", "1,000", "1.2.3", "١٢", "0x10", "NaN"] {
            assert!(matches!(Money::parse(text, Currency::Bdt), Err(MoneyError::Malformed(_))), "{text:?}");
        }
        assert!(matches!(Money::parse("1.005", Currency::Inr), Err(MoneyError::TooPrecise(_))));
        assert!(matches!(Money::parse("99999999999999", Currency::Inr), Err(MoneyError::TooLarge(_))));
        assert_eq!(Money::parse_positive("0.00", Currency::Bdt), Err(MoneyError::NotPositive));
    }

    #[test]
    fn formats_with_two_or_four_places() {
        let m = Money::from_minor(10100, Currency::Inr).unwrap();
        assert_eq!(m.to_decimal(), "101.00");
        assert_eq!(m.to_decimal_places(4), "101.0000");
        assert_eq!(Money::from_minor(5, Currency::Bdt).unwrap().to_decimal(), "0.05");
    }

    #[test]
    fn subtraction_never_goes_negative_or_mixes_currencies() {
        let a = Money::from_minor(500, Currency::Bdt).unwrap();
        let b = Money::from_minor(200, Currency::Bdt).unwrap();
        assert_eq!(a.checked_sub(b).unwrap().minor(), 300);
        assert!(b.checked_sub(a).is_none());
        assert!(a.checked_sub(Money::from_minor(1, Currency::Inr).unwrap()).is_none());
    }

    proptest! {
        #[test]
        fn decimal_round_trips(minor in 0i64..MAX_MINOR) {
            let m = Money::from_minor(minor, Currency::Bdt).unwrap();
            prop_assert_eq!(Money::parse(&m.to_decimal(), Currency::Bdt).unwrap(), m);
            prop_assert_eq!(Money::parse(&m.to_decimal_places(4), Currency::Bdt).unwrap(), m);
        }

        #[test]
        fn parse_never_panics(text in "\\PC{0,20}") {
            let _ = Money::parse(&text, Currency::Inr);
        }
    }
}
