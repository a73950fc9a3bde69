//! The one way to read a bounded whole number, from a variable, a query parameter or a body.
//!
//! Settings (`DATABASE_POOL_SIZE`), query parameters (`limit`, `window`) and body fields
//! (`interval`) all refuse a value outside their range with the same words, so a client or an
//! operator reads one kind of message whatever they got wrong.

use std::fmt::Display;
use std::ops::RangeInclusive;
use std::str::FromStr;

/// A value that is not a whole number within its range.
///
/// The message names neither the variable nor the parameter: the caller puts it in context
/// (`invalid `limit`: …`, `DATABASE_POOL_SIZE: …`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected a whole number from {min} to {max}, got {found}")]
pub struct OutOfRange {
    /// The smallest value allowed.
    pub min: String,
    /// The largest value allowed.
    pub max: String,
    /// What was given, quoted when it was text.
    pub found: String,
}

impl OutOfRange {
    fn new<T: Display>(range: &RangeInclusive<T>, found: String) -> Self {
        Self {
            min: range.start().to_string(),
            max: range.end().to_string(),
            found,
        }
    }
}

/// Parses `raw` (trimmed) as a whole number within `range`.
pub fn parse_bounded<T>(raw: &str, range: RangeInclusive<T>) -> Result<T, OutOfRange>
where
    T: FromStr + PartialOrd + Display,
{
    match raw.trim().parse::<T>() {
        Ok(value) if range.contains(&value) => Ok(value),
        _ => Err(OutOfRange::new(&range, format!("{raw:?}"))),
    }
}

/// Checks that `value`, already a number (a JSON body field), lies within `range`.
pub fn check_bounded<T>(value: T, range: RangeInclusive<T>) -> Result<T, OutOfRange>
where
    T: PartialOrd + Display,
{
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(OutOfRange::new(&range, value.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_numbers_in_range_are_taken_trimmed() {
        assert_eq!(parse_bounded::<u32>(" 42 ", 1..=100), Ok(42));
        assert_eq!(parse_bounded::<u16>("1", 1..=1), Ok(1));
    }

    #[test]
    fn anything_else_is_refused_with_the_range_and_the_input() {
        for raw in ["0", "101", "-1", "5.5", "ten", "", "99999999999999999999"] {
            let e = parse_bounded::<u32>(raw, 1..=100).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("expected a whole number from 1 to 100, got {raw:?}")
            );
        }
    }

    #[test]
    fn numbers_out_of_range_are_refused_unquoted() {
        assert_eq!(check_bounded(10u32, 10..=86_400), Ok(10));
        assert_eq!(
            check_bounded(5u32, 10..=86_400).unwrap_err().to_string(),
            "expected a whole number from 10 to 86400, got 5"
        );
    }
}
