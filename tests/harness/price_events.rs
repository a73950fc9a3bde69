//! Price events for the consumer's tests: making them, wrapping them in MSK events exactly
//! as AWS delivers them, and checking what the consumer stored against a recomputation.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use market_data::domain::{AverageKind, AverageSpec, PriceEvent, Symbol};
use rust_decimal::Decimal;
use uuid::Uuid;

/// A fixed start, so quote times are easy to read in failures.
pub fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_764_000_000, 0).expect("a valid time")
}

/// An event of `symbol` quoted `secs` after [`t0`] at `price`.
pub fn event(symbol: &str, secs: i64, price: Decimal) -> PriceEvent {
    PriceEvent {
        symbol: Symbol::parse(symbol).expect("a valid symbol"),
        price,
        timestamp: t0() + chrono::Duration::seconds(secs),
        source: "simulated".into(),
        raw_response_id: Uuid::now_v7(),
    }
}

/// One record of an MSK event: partition, offset and value bytes.
pub type RawRecord = (i32, i64, Vec<u8>);

/// The records of `events` on partition 0 of `topic`, from offset `first`.
pub fn records_of(events: &[PriceEvent], first: i64) -> Vec<RawRecord> {
    events
        .iter()
        .zip(first..)
        .map(|(e, offset)| (0, offset, e.to_json().expect("event JSON")))
        .collect()
}

/// An MSK event as the event source mapping delivers it to Lambda: records grouped by
/// `topic-partition`, key and value in base64, timestamps in milliseconds.
pub fn msk_event_json(topic: &str, records: &[RawRecord]) -> serde_json::Value {
    let mut grouped: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
    for (partition, offset, value) in records {
        grouped
            .entry(format!("{topic}-{partition}"))
            .or_default()
            .push(serde_json::json!({
                "topic": topic,
                "partition": partition,
                "offset": offset,
                "timestamp": 1_764_000_000_000i64 + offset,
                "timestampType": "CREATE_TIME",
                "key": STANDARD.encode(b"KEY"),
                "value": STANDARD.encode(value),
                "headers": []
            }));
    }
    serde_json::json!({
        "eventSource": "aws:kafka",
        "eventSourceArn": "arn:aws:kafka:us-east-1:123456789012:cluster/market-data/abcd1234-ab12-cd34-ef56-abcdef123456-1",
        "bootstrapServers": "b-1.market-data.abcd12.c2.kafka.us-east-1.amazonaws.com:9098",
        "records": grouped
    })
}

/// The same as [`msk_event_json`], typed as the handler takes it.
pub fn msk_event(
    topic: &str,
    records: &[RawRecord],
) -> aws_lambda_events::event::kafka::KafkaEvent {
    serde_json::from_value(msk_event_json(topic, records)).expect("an MSK event")
}

/// The average `spec` of `prices` (oldest first), recomputed here from its definition:
/// SMA-N the mean of the last N; EMA-N over the last 4N, seeded with the SMA of the oldest
/// N of them. Rounded as stored.
pub fn naive_average(spec: AverageSpec, prices: &[Decimal]) -> Option<Decimal> {
    let n = usize::from(spec.window);
    if prices.len() < n {
        return None;
    }
    let mean = |xs: &[Decimal]| xs.iter().copied().sum::<Decimal>() / Decimal::from(xs.len());
    let value = match spec.kind {
        AverageKind::Sma => mean(&prices[prices.len() - n..]),
        AverageKind::Ema => {
            let used = &prices[prices.len().saturating_sub(4 * n)..];
            let alpha = Decimal::from(2) / Decimal::from(n + 1);
            let mut ema = mean(&used[..n]);
            for p in &used[n..] {
                ema += alpha * (*p - ema);
            }
            ema
        }
    };
    Some(value.round_dp(12).normalize())
}

/// One stored average row.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct StoredAverage {
    /// Symbol.
    pub symbol: String,
    /// `sma` or `ema`.
    pub kind: String,
    /// Window.
    pub window: i32,
    /// As of.
    pub as_of: DateTime<Utc>,
    /// Value.
    pub value: Decimal,
}

/// Every stored average, sorted.
pub async fn stored_averages(client: &tokio_postgres::Client) -> Vec<StoredAverage> {
    client
        .query(
            "SELECT symbol, kind, window_size, as_of, value FROM moving_averages ORDER BY 1, 2, 3, 4",
            &[],
        )
        .await
        .expect("read averages")
        .iter()
        .map(|r| StoredAverage {
            symbol: r.get(0),
            kind: r.get(1),
            window: r.get(2),
            as_of: r.get(3),
            value: r.get(4),
        })
        .collect()
}

/// Every stored point of every symbol, as (symbol → prices with their quote times) in the
/// order the averages are defined on.
pub async fn stored_points(
    client: &tokio_postgres::Client,
) -> BTreeMap<String, Vec<(DateTime<Utc>, Decimal)>> {
    let mut out: BTreeMap<String, Vec<(DateTime<Utc>, Decimal)>> = BTreeMap::new();
    for r in client
        .query(
            "SELECT symbol, quote_time, price FROM price_points ORDER BY symbol, quote_time, raw_response_id",
            &[],
        )
        .await
        .expect("read points")
    {
        out.entry(r.get(0)).or_default().push((r.get(1), r.get(2)));
    }
    out
}

/// Checks that every stored average equals its recomputation from every stored point, and
/// that each symbol has each average as of its newest point (once it has enough points).
pub async fn assert_averages_match_recomputation(
    client: &tokio_postgres::Client,
    specs: &[AverageSpec],
) {
    let points = stored_points(client).await;
    let averages = stored_averages(client).await;
    for a in &averages {
        let spec = AverageSpec {
            kind: a.kind.parse().expect("kind"),
            window: u16::try_from(a.window).expect("window"),
        };
        let prices: Vec<Decimal> = points[&a.symbol]
            .iter()
            .filter(|(t, _)| *t <= a.as_of)
            .map(|(_, p)| *p)
            .collect();
        assert_eq!(
            Some(a.value),
            naive_average(spec, &prices),
            "{} {spec} as of {}",
            a.symbol,
            a.as_of
        );
    }
    for (symbol, series) in &points {
        let newest = series.last().expect("a point").0;
        for spec in specs {
            let latest = averages
                .iter()
                .filter(|a| {
                    &a.symbol == symbol
                        && a.kind == spec.kind.as_str()
                        && a.window == i32::from(spec.window)
                })
                .map(|a| a.as_of)
                .max();
            if series.len() >= usize::from(spec.window) {
                assert_eq!(
                    latest,
                    Some(newest),
                    "{symbol} {spec} is as of its newest point"
                );
            } else {
                assert_eq!(latest, None, "{symbol} {spec} needs {} points", spec.window);
            }
        }
    }
}
