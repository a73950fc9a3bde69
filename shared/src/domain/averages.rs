//! Moving averages of a symbol's price points: which ones are kept, and how each is computed.
//!
//! Every average is a function of the points themselves, never of the order they arrived
//! in: "as of" a time `T`, a symbol's points are those whose quote time is at or before `T`,
//! ordered by quote time and then by `raw_response_id` (a UUIDv7, so by fetch time when two
//! quotes share a quote time). A consumer that sees an old point late therefore computes the
//! same values as one that saw every point in order.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Symbol;

/// Decimal places every stored average is rounded to: far below a price's precision, and
/// the same whoever computes it.
pub const AVERAGE_DECIMAL_PLACES: u32 = 12;

/// Largest window accepted, so one average never needs an unbounded read.
pub const MAX_WINDOW: u16 = 1_000;

/// How many windows' worth of points an EMA looks back over (see [`AverageKind::Ema`]).
pub const EMA_LOOKBACK_WINDOWS: usize = 4;

/// The averages kept when `MA_WINDOWS` is unset: the seed's 5-point SMA and a 12-point EMA.
pub const DEFAULT_AVERAGES: [AverageSpec; 2] = [
    AverageSpec {
        kind: AverageKind::Sma,
        window: 5,
    },
    AverageSpec {
        kind: AverageKind::Ema,
        window: 12,
    },
];

/// The kinds of moving average.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AverageKind {
    /// Simple: the mean of the last `window` prices (the seed's average).
    Sma,
    /// Exponential, smoothing `α = 2 / (window + 1)`. Seeded with the SMA of the oldest
    /// `window` points among the last `4 × window`, then smoothed forward over the rest.
    /// Looking back a bounded number of points keeps it order-independent and cheap; the
    /// points left out would weigh less than `e⁻⁶` (0.25 %) in an unbounded EMA.
    Ema,
}

impl AverageKind {
    /// The name used in the API, the configuration and the `kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            AverageKind::Sma => "sma",
            AverageKind::Ema => "ema",
        }
    }
}

impl fmt::Display for AverageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AverageKind {
    type Err = AverageSpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "sma" => Ok(AverageKind::Sma),
            "ema" => Ok(AverageKind::Ema),
            other => Err(AverageSpecError::UnknownKind(other.to_owned())),
        }
    }
}

/// One average the consumer keeps: a kind and a window in points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AverageSpec {
    /// SMA or EMA.
    pub kind: AverageKind,
    /// How many points it spans (1 to [`MAX_WINDOW`]).
    pub window: u16,
}

/// Why a text is not an average or a list of them; written for whoever set it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AverageSpecError {
    /// A kind other than `sma` or `ema`.
    #[error("unknown average kind {0:?} (expected sma or ema)")]
    UnknownKind(String),
    /// A window that is not a whole number from 1 to [`MAX_WINDOW`].
    #[error("window {0:?} must be a whole number from 1 to {MAX_WINDOW}")]
    BadWindow(String),
    /// An empty list.
    #[error("at least one average is needed, such as sma:5")]
    Empty,
}

impl AverageSpec {
    /// Reads `kind:window` (`sma:5`, `ema:12`), or a bare window, which means an SMA.
    pub fn parse(raw: &str) -> Result<Self, AverageSpecError> {
        let raw = raw.trim();
        let (kind, window) = match raw.split_once(':') {
            Some((kind, window)) => (kind.parse()?, window),
            None => (AverageKind::Sma, raw),
        };
        Ok(Self {
            kind,
            window: parse_window(window)?,
        })
    }

    /// Reads a comma-separated list, dropping repeats and keeping a stable order.
    pub fn parse_list(raw: &str) -> Result<Vec<Self>, AverageSpecError> {
        let mut specs = raw
            .split(',')
            .filter(|part| !part.trim().is_empty())
            .map(Self::parse)
            .collect::<Result<Vec<_>, _>>()?;
        specs.sort_unstable();
        specs.dedup();
        if specs.is_empty() {
            return Err(AverageSpecError::Empty);
        }
        Ok(specs)
    }

    /// How many of the newest points, at most, computing it needs.
    pub fn lookback(self) -> usize {
        let window = usize::from(self.window);
        match self.kind {
            AverageKind::Sma => window,
            AverageKind::Ema => window * EMA_LOOKBACK_WINDOWS,
        }
    }

    /// The average over `prices`, oldest first, of which it uses the newest
    /// [`lookback`](Self::lookback). `None` until there are at least `window` prices.
    pub fn compute(self, prices: &[Decimal]) -> Option<Decimal> {
        let window = usize::from(self.window);
        if window == 0 || prices.len() < window {
            return None;
        }
        let used = &prices[prices.len() - self.lookback().min(prices.len())..];
        let mean = |values: &[Decimal]| {
            values.iter().copied().sum::<Decimal>() / Decimal::from(values.len() as u64)
        };
        let value = match self.kind {
            AverageKind::Sma => mean(used),
            AverageKind::Ema => {
                let alpha = Decimal::TWO / Decimal::from(u64::from(self.window) + 1);
                let (seed, rest) = used.split_at(window);
                rest.iter()
                    .fold(mean(seed), |ema, price| ema + alpha * (*price - ema))
            }
        };
        Some(value.round_dp(AVERAGE_DECIMAL_PLACES).normalize())
    }
}

impl fmt::Display for AverageSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.window)
    }
}

fn parse_window(raw: &str) -> Result<u16, AverageSpecError> {
    raw.trim()
        .parse::<u16>()
        .ok()
        .filter(|w| (1..=MAX_WINDOW).contains(w))
        .ok_or_else(|| AverageSpecError::BadWindow(raw.trim().to_owned()))
}

/// One consumed price event, as the consumer stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PricePoint {
    /// The stored raw response it came from: its identity, and the tie-breaker between
    /// points of the same quote time.
    pub raw_response_id: Uuid,
    /// Its symbol.
    pub symbol: Symbol,
    /// The price.
    pub price: Decimal,
    /// The provider's quote time.
    pub quote_time: DateTime<Utc>,
    /// The provider it came from.
    pub source: String,
}

impl PricePoint {
    /// The key points of one symbol are ordered by.
    pub fn order_key(&self) -> (DateTime<Utc>, Uuid) {
        (self.quote_time, self.raw_response_id)
    }
}

/// One stored moving average.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovingAverage {
    /// Its symbol.
    pub symbol: Symbol,
    /// Its kind and window.
    pub spec: AverageSpec,
    /// The quote time of the newest point it includes.
    pub as_of: DateTime<Utc>,
    /// Its value.
    pub value: Decimal,
}

/// The averages of `specs` as of each time in `as_of`, from `points` of one symbol sorted by
/// [`PricePoint::order_key`]. `points` must hold, for every such time, the newest
/// `lookback` points at or before it (more is fine). Pairs without enough points are left out.
pub fn averages_at(
    symbol: &Symbol,
    points: &[PricePoint],
    as_of: &[DateTime<Utc>],
    specs: &[AverageSpec],
) -> Vec<MovingAverage> {
    let prices: Vec<Decimal> = points.iter().map(|p| p.price).collect();
    let mut out = Vec::with_capacity(as_of.len() * specs.len());
    for &time in as_of {
        // Every point at or before `time`, ties included.
        let end = points.partition_point(|p| p.quote_time <= time);
        for &spec in specs {
            if let Some(value) = spec.compute(&prices[..end]) {
                out.push(MovingAverage {
                    symbol: symbol.clone(),
                    spec,
                    as_of: time,
                    value,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn prices(values: &[&str]) -> Vec<Decimal> {
        values.iter().map(|v| d(v)).collect()
    }

    #[test]
    fn parses_kinds_windows_and_lists() {
        assert_eq!(
            AverageSpec::parse("5").unwrap(),
            AverageSpec {
                kind: AverageKind::Sma,
                window: 5
            }
        );
        assert_eq!(
            AverageSpec::parse(" EMA:12 ").unwrap(),
            AverageSpec {
                kind: AverageKind::Ema,
                window: 12
            }
        );
        assert_eq!(
            AverageSpec::parse_list("ema:12, sma:5,sma:5,").unwrap(),
            vec![
                AverageSpec::parse("sma:5").unwrap(),
                AverageSpec::parse("ema:12").unwrap()
            ]
        );
        assert!(matches!(
            AverageSpec::parse("wma:5"),
            Err(AverageSpecError::UnknownKind(_))
        ));
        for bad in ["0", "1001", "-1", "five", "sma:", "sma:2.5"] {
            assert!(
                matches!(AverageSpec::parse(bad), Err(AverageSpecError::BadWindow(_))),
                "{bad}"
            );
        }
        assert_eq!(AverageSpec::parse_list(" , "), Err(AverageSpecError::Empty));
    }

    #[test]
    fn sma_is_the_mean_of_the_last_window_prices_once_there_are_enough() {
        let sma5 = AverageSpec::parse("sma:5").unwrap();
        assert_eq!(sma5.compute(&prices(&["1", "2", "3", "4"])), None);
        assert_eq!(
            sma5.compute(&prices(&["100", "1", "2", "3", "4", "5"])),
            Some(d("3"))
        );
        assert_eq!(
            sma5.compute(&prices(&["189.25", "189.5", "190", "188.75", "189"])),
            Some(d("189.3"))
        );
    }

    #[test]
    fn ema_is_seeded_with_the_sma_and_smoothed_forward() {
        let ema3 = AverageSpec::parse("ema:3").unwrap();
        // Exactly `window` points: the EMA is their SMA.
        assert_eq!(ema3.compute(&prices(&["1", "2", "3"])), Some(d("2")));
        // α = 0.5: 2 → 2 + 0.5·(4 − 2) = 3 → 3 + 0.5·(6 − 3) = 4.5.
        assert_eq!(
            ema3.compute(&prices(&["1", "2", "3", "4", "6"])),
            Some(d("4.5"))
        );
        // Beyond 4 × window points, the oldest no longer count.
        let long: Vec<Decimal> = (0..20).map(Decimal::from).collect();
        assert_eq!(ema3.compute(&long), ema3.compute(&long[8..]));
    }

    #[test]
    fn an_average_as_of_a_time_includes_every_point_of_that_time() {
        let symbol = Symbol::parse("AAPL").unwrap();
        let t = |s: i64| DateTime::from_timestamp(1_700_000_000 + s, 0).unwrap();
        let point = |s, id, price: &str| PricePoint {
            raw_response_id: Uuid::from_u128(id),
            symbol: symbol.clone(),
            price: d(price),
            quote_time: t(s),
            source: "simulated".into(),
        };
        let points = vec![point(1, 1, "1"), point(2, 2, "2"), point(2, 3, "4")];
        let sma2 = AverageSpec::parse("sma:2").unwrap();
        let got = averages_at(&symbol, &points, &[t(1), t(2)], &[sma2]);
        assert_eq!(got.len(), 1, "one point at t(1) is not enough for SMA-2");
        assert_eq!(got[0].as_of, t(2));
        assert_eq!(got[0].value, d("3"));
    }
}
