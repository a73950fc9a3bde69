//! A quote: one provider's view of one symbol's price at one moment.

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::price::{PriceError, check_price};
use super::{ProviderId, Symbol};

/// The latest price of a symbol as a provider reported it, with the day's context.
///
/// Prices are exact decimals end to end. `quote_time` is the provider's own time for the
/// price; `fetched_at` is when this service asked. The two are kept apart because clients
/// care about the first and freshness rules about the second.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    /// The symbol quoted.
    pub symbol: Symbol,
    /// Who reported the price.
    pub provider: ProviderId,
    /// The current (last traded) price.
    pub price: Decimal,
    /// Change since the previous close, when the provider reports it.
    pub change: Option<Decimal>,
    /// Change since the previous close in percent, when the provider reports it.
    pub percent_change: Option<Decimal>,
    /// High of the day.
    pub high: Decimal,
    /// Low of the day.
    pub low: Decimal,
    /// Opening price of the day.
    pub open: Decimal,
    /// Close of the previous trading day.
    pub previous_close: Decimal,
    /// The provider's timestamp of the price.
    pub quote_time: DateTime<Utc>,
    /// When this service received the quote from the provider.
    pub fetched_at: DateTime<Utc>,
}

impl Quote {
    /// Whether the quote can be true as of `now`: its price passes [`check_price`] and its
    /// time [`check_quote_time`]. A quote that fails is a provider's error, never stored.
    pub fn check_plausible(&self, now: DateTime<Utc>) -> Result<(), ImplausibleQuote> {
        check_price(self.price)?;
        check_quote_time(self.quote_time, now)
    }
}

/// How far ahead of this service's clock a quote time may be: clocks disagree by seconds,
/// never by minutes.
pub const QUOTE_TIME_LEEWAY: TimeDelta = TimeDelta::seconds(300);

/// The earliest quote time taken as real (1990-01-01): earlier ones are defaults, zeros or
/// units misread, and PostgreSQL could not even hold some of them (before 4713 BC).
pub fn earliest_quote_time() -> DateTime<Utc> {
    DateTime::from_timestamp(631_152_000, 0).unwrap_or(DateTime::UNIX_EPOCH)
}

/// The rule for a quote time, as of `now`: from 1990 to [`QUOTE_TIME_LEEWAY`] ahead of the
/// clock. A time in milliseconds read as seconds (year 55840) fails it, and so would be the
/// symbol's newest point forever if it were stored.
pub fn check_quote_time(time: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), ImplausibleQuote> {
    if time < earliest_quote_time() {
        return Err(ImplausibleQuote::TooOld(time));
    }
    if time > now + QUOTE_TIME_LEEWAY {
        return Err(ImplausibleQuote::InTheFuture(time));
    }
    Ok(())
}

/// Why a quote (or a price event) cannot be true; written for whoever sent it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImplausibleQuote {
    /// The price is not a price.
    #[error(transparent)]
    Price(#[from] PriceError),
    /// The quote time is more than [`QUOTE_TIME_LEEWAY`] ahead of the clock.
    #[error("quote time {0} is more than 5 minutes ahead of the clock")]
    InTheFuture(DateTime<Utc>),
    /// The quote time is before 1990.
    #[error("quote time {0} is before 1990")]
    TooOld(DateTime<Utc>),
}

/// A quote together with the provider's response it was read from.
///
/// The raw response is stored verbatim in `raw_market_data`, so that anything the typed
/// quote leaves out can still be recovered later.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchedQuote {
    /// The typed quote.
    pub quote: Quote,
    /// The provider's response body as JSON.
    pub raw: serde_json::Value,
}

/// The current time at the precision PostgreSQL keeps (microseconds), so a quote read back
/// from the store, the cache or an event is equal to the one that was fetched.
pub fn fetch_time_now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_times_from_1990_to_five_minutes_ahead_are_plausible() {
        let now = DateTime::from_timestamp(1_764_000_000, 0).unwrap();
        assert!(check_quote_time(now, now).is_ok());
        assert!(check_quote_time(now + TimeDelta::seconds(300), now).is_ok());
        assert!(check_quote_time(earliest_quote_time(), now).is_ok());
        // Finnhub's `t` in milliseconds, read as seconds: year 55840.
        let millis = DateTime::from_timestamp(1_764_000_000_000, 0).unwrap();
        assert_eq!(
            check_quote_time(millis, now),
            Err(ImplausibleQuote::InTheFuture(millis))
        );
        assert!(check_quote_time(now + TimeDelta::seconds(301), now).is_err());
        let ancient: DateTime<Utc> = "-5000-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(
            check_quote_time(ancient, now),
            Err(ImplausibleQuote::TooOld(ancient))
        );
    }
}
