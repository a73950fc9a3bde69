//! What a price is, and how it travels in JSON.
//!
//! One rule for every price the service takes in, whoever reads it: the quote service checks a
//! provider's answer with [`check_price`] before storing or serving it, and the consumer checks
//! a price event with the same function, so nothing the API served is refused downstream.
//!
//! Prices are exact decimals in memory (`rust_decimal`), in PostgreSQL (`NUMERIC`) and on the
//! wire: [`exact_json`] writes a JSON number from the decimal's own digits and reads one from
//! the digits sent, with no binary floating point in between (a double keeps only 15 to 17
//! digits, so `97123.456666666667` would come out as `97123.45666666667`).

use rust_decimal::Decimal;
use serde::de::Error as _;
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

/// Prices must be below this many units (10^15). No traded price comes near it, and it keeps
/// the sum of the longest average's points (4 × 1000 of them) twelve orders of magnitude below
/// what a decimal holds, so computing an average can never overflow.
pub const MAX_PRICE_DIGITS_BEFORE_POINT: u32 = 15;

/// Why a decimal is not a price; written for whoever sent it (a provider, a producer).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PriceError {
    /// Zero or negative.
    #[error("price must be positive, got {0}")]
    NotPositive(Decimal),
    /// Too large to be a price (see [`MAX_PRICE_DIGITS_BEFORE_POINT`]).
    #[error("price {0} has more than {MAX_PRICE_DIGITS_BEFORE_POINT} digits before the point")]
    TooLarge(Decimal),
}

/// The rule for a price: positive, below 10^15, and (being a `Decimal` read exactly) at most
/// 28 significant digits. Anything passing it is stored, served and averaged as it is.
pub fn check_price(price: Decimal) -> Result<Decimal, PriceError> {
    if price <= Decimal::ZERO {
        return Err(PriceError::NotPositive(price));
    }
    if price.trunc() >= Decimal::from(10_i64.pow(MAX_PRICE_DIGITS_BEFORE_POINT)) {
        return Err(PriceError::TooLarge(price));
    }
    Ok(price)
}

/// The JSON number text of a decimal: its digits without trailing zeros, with at least one
/// decimal place (`367.0`), as a double would have been written, so clients that tell
/// integers from floats keep reading a float.
pub fn json_number(value: &Decimal) -> String {
    let value = value.normalize();
    let mut text = value.to_string();
    if value.scale() == 0 {
        text.push_str(".0");
    }
    text
}

/// Reads the text of a JSON number exactly: every digit kept, or an error when it does not
/// fit a decimal (more than 28 significant digits, or out of range). Strings are refused: a
/// price is a JSON number.
pub fn parse_json_number(text: &str) -> Result<Decimal, String> {
    let text = text.trim();
    if !text.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
        return Err(format!("expected a JSON number, got {}", abbreviate(text)));
    }
    let parsed = if text.contains(['e', 'E']) {
        Decimal::from_scientific(text)
    } else {
        Decimal::from_str_exact(text)
    };
    parsed.map_err(|_| {
        format!(
            "number {} does not fit a decimal of 28 significant digits",
            abbreviate(text)
        )
    })
}

fn abbreviate(text: &str) -> String {
    const LONGEST: usize = 40;
    match text.char_indices().nth(LONGEST) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// Serde for a decimal as an exact JSON number (`#[serde(with = "exact_json")]`).
///
/// Written through `serde_json`'s `RawValue`, so only JSON serializers keep every digit (a
/// `serde_json::Value` built from it holds a double again); every wire format here is JSON.
pub mod exact_json {
    use super::*;

    /// Writes `value` as a JSON number with exactly its digits.
    pub fn serialize<S: Serializer>(value: &Decimal, serializer: S) -> Result<S::Ok, S::Error> {
        RawValue::from_string(json_number(value))
            .map_err(S::Error::custom)?
            .serialize(serializer)
    }

    /// Reads a JSON number exactly (see [`parse_json_number`]).
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Decimal, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        parse_json_number(raw.get()).map_err(D::Error::custom)
    }
}

/// [`exact_json`] for an optional decimal: `null` when absent.
pub mod exact_json_option {
    use super::*;

    /// Writes `value` as an exact JSON number, or `null`.
    pub fn serialize<S: Serializer>(
        value: &Option<Decimal>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(value) => exact_json::serialize(value, serializer),
            None => serializer.serialize_none(),
        }
    }

    /// Reads an exact JSON number, or `null`.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Decimal>, D::Error> {
        Option::<Box<RawValue>>::deserialize(deserializer)?
            .map(|raw| parse_json_number(raw.get()).map_err(D::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Carrier {
        #[serde(with = "exact_json")]
        price: Decimal,
        #[serde(with = "exact_json_option", default)]
        change: Option<Decimal>,
    }

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn json_carries_every_digit_both_ways() {
        for (text, written) in [
            ("97123.456666666667", "97123.456666666667"),
            ("0.30000000000000004", "0.30000000000000004"),
            ("367", "367.0"),
            ("367.00", "367.0"),
            ("1.50", "1.5"),
            ("0.000001234", "0.000001234"),
        ] {
            let json = format!(r#"{{"price":{text},"change":null}}"#);
            let carrier: Carrier = serde_json::from_str(&json).unwrap();
            assert_eq!(carrier.price, d(text), "{text}");
            assert_eq!(
                serde_json::to_string(&carrier).unwrap(),
                format!(r#"{{"price":{written},"change":null}}"#)
            );
        }
        let with_change: Carrier = serde_json::from_str(r#"{"price":1,"change":-0.25}"#).unwrap();
        assert_eq!(with_change.change, Some(d("-0.25")));
        assert_eq!(
            serde_json::from_str::<Carrier>(r#"{"price":1.5e2}"#)
                .unwrap()
                .price,
            d("150")
        );
    }

    #[test]
    fn what_a_decimal_cannot_hold_or_a_string_is_refused() {
        for json in [
            r#"{"price":"1.5"}"#,
            r#"{"price":1.00000000000000000000000000001}"#,
            r#"{"price":1e40}"#,
            r#"{"price":null}"#,
        ] {
            assert!(serde_json::from_str::<Carrier>(json).is_err(), "{json}");
        }
    }

    #[test]
    fn a_price_is_positive_and_below_ten_to_the_fifteen() {
        assert!(check_price(d("0.30000000000000004")).is_ok());
        assert!(check_price(d("999999999999999.99")).is_ok());
        assert_eq!(
            check_price(d("1000000000000000")),
            Err(PriceError::TooLarge(d("1000000000000000")))
        );
        assert_eq!(check_price(d("0")), Err(PriceError::NotPositive(d("0"))));
        assert!(check_price(d("-1")).is_err());
    }
}
