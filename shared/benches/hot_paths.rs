//! Criterion micro-benchmarks of the hot paths: parsing a symbol (every request), turning a
//! quote into the API's and the event's JSON (every answer and every event), and computing
//! the moving averages of a symbol (every consumed batch).
//!
//! ```sh
//! cargo bench -p market-data --bench hot_paths
//! ```

// criterion's macros generate the undocumented `benches` and `main`.
#![allow(missing_docs)]

use std::hint::black_box;

use chrono::{DateTime, Utc};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use market_data::domain::{AverageSpec, PriceEvent, PricePoint, Symbol, averages_at};
use market_data::providers::Simulated;
use rust_decimal::Decimal;
use uuid::Uuid;

fn symbols(c: &mut Criterion) {
    let mut group = c.benchmark_group("symbol_parse");
    for raw in ["AAPL", "brk.b", "BINANCE:BTCUSDT", "not a symbol;"] {
        group.bench_with_input(BenchmarkId::from_parameter(raw), raw, |b, raw| {
            b.iter(|| Symbol::parse(black_box(raw)))
        });
    }
    group.finish();
}

fn serialisation(c: &mut Criterion) {
    let at = DateTime::from_timestamp(1_764_000_000, 0).unwrap_or_default();
    let fetched = Simulated.quote_at(
        &Symbol::parse("AAPL").unwrap_or_else(|_| unreachable!()),
        at,
    );
    let event = PriceEvent::from_quote(&fetched.quote, Uuid::now_v7());
    let json = event.to_json().unwrap_or_default();
    let mut group = c.benchmark_group("price_event");
    group.bench_function("to_json", |b| b.iter(|| black_box(&event).to_json()));
    group.bench_function("decode", |b| {
        b.iter(|| PriceEvent::decode(black_box(&json)))
    });
    group.finish();
}

fn averages(c: &mut Criterion) {
    let symbol = Symbol::parse("AAPL").unwrap_or_else(|_| unreachable!());
    let t0: DateTime<Utc> = DateTime::from_timestamp(1_764_000_000, 0).unwrap_or_default();
    let points: Vec<PricePoint> = (0..200i64)
        .map(|i| PricePoint {
            raw_response_id: Uuid::from_u128(i as u128),
            symbol: symbol.clone(),
            price: Decimal::new(26_000 + (i * 37) % 500, 2),
            quote_time: t0 + chrono::Duration::seconds(i),
            source: "simulated".into(),
        })
        .collect();
    let newest = [points[points.len() - 1].quote_time];
    let mut group = c.benchmark_group("averages_at");
    for spec in ["sma:5", "ema:12", "sma:200", "ema:50"] {
        let spec = AverageSpec::parse(spec).unwrap_or_else(|_| unreachable!());
        group.throughput(Throughput::Elements(1));
        group.bench_with_input(BenchmarkId::from_parameter(spec), &spec, |b, spec| {
            b.iter(|| {
                averages_at(
                    &symbol,
                    black_box(&points),
                    &newest,
                    std::slice::from_ref(spec),
                )
            })
        });
    }
    group.finish();
}

criterion_group!(benches, symbols, serialisation, averages);
criterion_main!(benches);
