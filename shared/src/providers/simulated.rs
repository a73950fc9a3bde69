//! The built-in `simulated` provider: a deterministic random walk per symbol.
//!
//! It lets the service run with nothing configured and gives believable, repeatable quotes:
//! the same symbol at the same moment always has the same price, on every machine. Each UTC
//! day starts from an open derived from the symbol and the day, then moves in small steps
//! every [`STEP_SECONDS`]; the previous close is where yesterday's walk ended.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use rust_decimal::prelude::FromPrimitive;
use serde_json::json;

use super::{ProviderError, QuoteProvider};
use crate::domain::{FetchedQuote, ProviderId, Quote, Symbol, fetch_time_now};

/// Seconds between two moves of a simulated price.
pub const STEP_SECONDS: i64 = 5;
const SECONDS_PER_DAY: i64 = 86_400;

/// The simulated provider. Stateless; every quote is computed from the symbol and the time.
#[derive(Debug, Default, Clone, Copy)]
pub struct Simulated;

impl Simulated {
    /// The simulated provider.
    pub fn new() -> Self {
        Self
    }

    /// The quote of `symbol` at `now`, deterministic in both.
    pub fn quote_at(&self, symbol: &Symbol, now: DateTime<Utc>) -> FetchedQuote {
        let seed = fnv1a(symbol.as_str().as_bytes());
        let secs = now.timestamp();
        let day = secs.div_euclid(SECONDS_PER_DAY);
        let step = secs.rem_euclid(SECONDS_PER_DAY) / STEP_SECONDS;

        let today = walk(seed, day, step);
        let yesterday = walk(seed, day - 1, SECONDS_PER_DAY / STEP_SECONDS - 1);
        let quote_time =
            DateTime::from_timestamp(day * SECONDS_PER_DAY + step * STEP_SECONDS, 0).unwrap_or(now);

        let price = money(today.last);
        let previous_close = money(yesterday.last);
        let change = price - previous_close;
        let percent_change = if previous_close.is_zero() {
            Decimal::ZERO
        } else {
            (change / previous_close * Decimal::ONE_HUNDRED).round_dp(4)
        };
        let quote = Quote {
            symbol: symbol.clone(),
            provider: ProviderId::Simulated,
            price,
            change: Some(change),
            percent_change: Some(percent_change),
            high: money(today.high),
            low: money(today.low),
            open: money(today.open),
            previous_close,
            quote_time,
            fetched_at: now,
        };
        // The same shape as Finnhub's `/quote`, so stored raw rows look alike.
        let raw = json!({
            "c": quote.price, "d": change, "dp": percent_change,
            "h": quote.high, "l": quote.low, "o": quote.open, "pc": previous_close,
            "t": quote_time.timestamp(), "simulated": true,
        });
        FetchedQuote { quote, raw }
    }
}

#[async_trait]
impl QuoteProvider for Simulated {
    fn id(&self) -> ProviderId {
        ProviderId::Simulated
    }

    async fn quote(&self, symbol: &Symbol) -> Result<FetchedQuote, ProviderError> {
        Ok(self.quote_at(symbol, fetch_time_now()))
    }
}

struct Walk {
    open: f64,
    high: f64,
    low: f64,
    last: f64,
}

/// The day's walk up to and including `last_step`.
fn walk(seed: u64, day: i64, last_step: i64) -> Walk {
    // A base between 10 and 500 per symbol, and a daily open within ±10 % of it.
    let base = 10.0 + unit(seed) * 490.0;
    let open = base * (1.0 + 0.2 * (unit(mix(seed, day as u64)) - 0.5));
    let mut w = Walk {
        open,
        high: open,
        low: open,
        last: open,
    };
    let day_seed = mix(seed ^ 0x5eed, day as u64);
    for step in 1..=last_step.max(0) {
        // Moves of at most ±0.1 % per step.
        let r = unit(mix(day_seed, step as u64)) * 2.0 - 1.0;
        w.last *= 1.0 + 0.001 * r;
        w.high = w.high.max(w.last);
        w.low = w.low.min(w.last);
    }
    w
}

fn money(x: f64) -> Decimal {
    Decimal::from_f64(x)
        .unwrap_or(Decimal::ONE)
        .round_dp(2)
        .max(Decimal::new(1, 2))
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// SplitMix64 of two words: a cheap, well-mixed hash.
fn mix(a: u64, b: u64) -> u64 {
    let mut z = a ^ b.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A hash mapped to `[0, 1)`.
fn unit(h: u64) -> f64 {
    (mix(h, 0) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    #[test]
    fn same_symbol_and_time_give_the_same_quote() {
        let s = Symbol::parse("AAPL").unwrap();
        let a = Simulated.quote_at(&s, at(1_750_000_123));
        let b = Simulated.quote_at(&s, at(1_750_000_123));
        assert_eq!(a, b);
    }

    #[test]
    fn quotes_are_consistent_and_positive() {
        for sym in ["AAPL", "MSFT", "BRK.B", "X"] {
            let s = Symbol::parse(sym).unwrap();
            for t in [0, 1_700_000_000, 1_750_043_217, 1_750_086_399] {
                let q = Simulated.quote_at(&s, at(t)).quote;
                assert!(q.price > Decimal::ZERO);
                assert!(q.low <= q.price && q.price <= q.high, "{q:?}");
                assert!(q.low <= q.open && q.open <= q.high, "{q:?}");
                assert_eq!(q.change, Some(q.price - q.previous_close));
                assert_eq!(q.provider, ProviderId::Simulated);
                assert!(
                    q.quote_time <= at(t)
                        && at(t) - q.quote_time < chrono::Duration::seconds(STEP_SECONDS)
                );
            }
        }
    }

    #[test]
    fn the_price_moves_over_time_and_differs_between_symbols() {
        let aapl = Symbol::parse("AAPL").unwrap();
        let msft = Symbol::parse("MSFT").unwrap();
        let morning = Simulated.quote_at(&aapl, at(1_750_000_000)).quote.price;
        let later = Simulated.quote_at(&aapl, at(1_750_003_600)).quote.price;
        let other = Simulated.quote_at(&msft, at(1_750_000_000)).quote.price;
        assert_ne!(morning, later);
        assert_ne!(morning, other);
    }

    #[test]
    fn previous_close_is_yesterdays_last_price() {
        let s = Symbol::parse("TSLA").unwrap();
        let day_start = 1_750_032_000 - 1_750_032_000 % SECONDS_PER_DAY;
        let last_of_yesterday = Simulated.quote_at(&s, at(day_start - 1)).quote.price;
        let today = Simulated.quote_at(&s, at(day_start + 10)).quote;
        assert_eq!(today.previous_close, last_of_yesterday);
    }
}
