//! The ticker symbol every other part of the system is keyed by.
//!
//! A `Symbol` can only be built through validation, so a value of this type is always
//! safe to put in a cache key, a Kafka key, a log line or a SQL parameter.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Longest symbol accepted: one leading character and up to fourteen more.
pub const MAX_SYMBOL_LEN: usize = 15;

/// A validated, upper-cased ticker symbol such as `AAPL`, `BRK.B` or `BINANCE:BTCUSDT`.
///
/// Input is trimmed and upper-cased, then must match `^[A-Z0-9][A-Z0-9.\-^=:]{0,14}$`:
/// the characters real exchanges and Finnhub use, and nothing that could reach a query,
/// a key or a URL as syntax.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Symbol(String);

/// Why a string is not a symbol; the message is written for the API client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SymbolError {
    /// Nothing was given, or only whitespace.
    #[error("symbol must not be empty")]
    Empty,
    /// More characters than any exchange uses.
    #[error("symbol must be at most {MAX_SYMBOL_LEN} characters, got {0}")]
    TooLong(usize),
    /// The first character must be a letter or digit.
    #[error("symbol must start with a letter or a digit")]
    BadStart,
    /// A character outside `A-Z 0-9 . - ^ = :`.
    #[error("symbol may only contain letters, digits and . - ^ = : (found {0:?})")]
    BadChar(char),
}

impl Symbol {
    /// Validates and normalises `raw` into a symbol.
    pub fn parse(raw: &str) -> Result<Self, SymbolError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(SymbolError::Empty);
        }
        let count = trimmed.chars().count();
        if count > MAX_SYMBOL_LEN {
            return Err(SymbolError::TooLong(count));
        }
        let upper = trimmed.to_ascii_uppercase();
        let mut chars = upper.chars();
        match chars.next() {
            Some(c) if c.is_ascii_uppercase() || c.is_ascii_digit() => {}
            Some(c) if is_symbol_char(c) => return Err(SymbolError::BadStart),
            Some(c) => return Err(SymbolError::BadChar(c)),
            None => return Err(SymbolError::Empty),
        }
        if let Some(bad) = chars.find(|c| !is_symbol_char(*c)) {
            return Err(SymbolError::BadChar(bad));
        }
        Ok(Self(upper))
    }

    /// The normalised text of the symbol.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_symbol_char(c: char) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '^' | '=' | ':')
}

impl FromStr for Symbol {
    type Err = SymbolError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Symbol {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Symbol {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lower_case_is_upper_cased() {
        assert_eq!(Symbol::parse("aapl").unwrap().as_str(), "AAPL");
    }

    #[test]
    fn surrounding_whitespace_is_trimmed() {
        assert_eq!(Symbol::parse("  msft\t").unwrap().as_str(), "MSFT");
    }

    #[test]
    fn exchange_style_symbols_are_accepted() {
        for s in [
            "BRK.B",
            "BINANCE:BTCUSDT",
            "GC=F",
            "EURUSD=X",
            "RDS-A",
            "7203",
            "X^A",
        ] {
            assert!(Symbol::parse(s).is_ok(), "{s} should be valid");
        }
    }

    #[test]
    fn empty_and_blank_are_rejected() {
        assert_eq!(Symbol::parse(""), Err(SymbolError::Empty));
        assert_eq!(Symbol::parse("   "), Err(SymbolError::Empty));
    }

    #[test]
    fn longer_than_fifteen_is_rejected() {
        assert!(Symbol::parse("ABCDEFGHIJKLMNO").is_ok());
        assert_eq!(
            Symbol::parse("ABCDEFGHIJKLMNOP"),
            Err(SymbolError::TooLong(16))
        );
    }

    #[test]
    fn injection_like_input_is_rejected() {
        for s in [
            "AAPL'; DROP TABLE x;--",
            "A B",
            "../etc",
            "AA\nPL",
            "a%20b",
            "<script>",
            "AAPL*",
            "ÄPFEL",
        ] {
            assert!(Symbol::parse(s).is_err(), "{s:?} should be rejected");
        }
    }

    #[test]
    fn punctuation_cannot_lead() {
        assert_eq!(Symbol::parse(".AAPL"), Err(SymbolError::BadStart));
        assert_eq!(Symbol::parse("-1"), Err(SymbolError::BadStart));
        assert_eq!(Symbol::parse("^GSPC"), Err(SymbolError::BadStart));
    }

    #[test]
    fn deserializing_validates() {
        let ok: Symbol = serde_json::from_str("\"tsla\"").unwrap();
        assert_eq!(ok.as_str(), "TSLA");
        assert!(serde_json::from_str::<Symbol>("\"no way\"").is_err());
    }
}
