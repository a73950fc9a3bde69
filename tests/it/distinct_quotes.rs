//! A price point is one distinct quote: the same symbol, source and provider timestamp is
//! stored once, however often it was fetched (a closed market, several jobs on one symbol),
//! so averages are means of distinct quotes; on the real database, through the MSK event
//! shape.

use std::sync::{Arc, Mutex};

use harness::TestApp;
use harness::postgres::TestDb;
use harness::price_events::{
    assert_averages_match_recomputation, event, msk_event, records_of, stored_points, t0,
};
use market_data::domain::{AverageSpec, PriceEvent};
use market_data::store::MIGRATIONS;
use market_data::telemetry::{EmfMetrics, Metrics};
use market_data::usecases::ConsumeReport;
use rust_decimal::Decimal;
use serde_json::json;

const TOPIC: &str = "price-events";

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

async fn consume(app: &TestApp, events: &[PriceEvent], first_offset: i64) -> ConsumeReport {
    let event = msk_event(TOPIC, &records_of(events, first_offset));
    ma_consumer::handle(&app.services.consumer, &event)
        .await
        .expect("batch consumed")
}

/// The same quote as `event`, fetched again: another raw response, same everything else.
fn refetched(event: &PriceEvent) -> PriceEvent {
    PriceEvent {
        raw_response_id: uuid::Uuid::now_v7(),
        ..event.clone()
    }
}

#[tokio::test]
async fn a_quote_fetched_again_is_one_point_and_counts_as_a_duplicate() {
    let duplicates = Arc::new(Mutex::new(Vec::<f64>::new()));
    let seen = Arc::clone(&duplicates);
    let metrics = Metrics::new(Arc::new(EmfMetrics::new(
        "MarketData",
        "test",
        Box::new(move |line| {
            let doc: serde_json::Value = serde_json::from_slice(line).expect("EMF is JSON");
            if let Some(n) = doc["DuplicateEvents"].as_f64() {
                seen.lock().unwrap().push(n);
            }
        }),
    )));
    let app = TestApp::builder()
        .postgres()
        .env("MA_WINDOWS", "sma:2")
        .metrics(metrics)
        .build()
        .await;

    let first = event("AAPL", 0, d("100"));
    let closed = event("AAPL", 60, d("110"));
    // Another provider quoting the same second is another quote.
    let other_provider = PriceEvent {
        source: "finnhub".into(),
        ..refetched(&closed)
    };
    let batch = [
        first.clone(),
        closed.clone(),
        refetched(&closed),
        refetched(&closed),
        other_provider,
    ];
    let report = consume(&app, &batch, 0).await;
    assert_eq!(report.points_added, 3, "{report:?}");
    assert_eq!(report.duplicates, 2, "{report:?}");

    // Fetched again later, in another batch: still nothing new.
    let again = consume(&app, &[refetched(&closed), refetched(&first)], 5).await;
    assert_eq!(again.points_added, 0, "{again:?}");
    assert_eq!(again.duplicates, 2, "{again:?}");
    assert_eq!(*duplicates.lock().unwrap(), [2.0, 2.0]);

    let history = app.get("/prices/history?symbol=AAPL").await;
    assert_eq!(history.status, 200, "{}", history.text);
    assert_eq!(history.json["points"].as_array().unwrap().len(), 3);
    // SMA-2 as of the closed market's second: its two distinct quotes, not copies of one.
    let ma = app.get("/prices/moving-average?symbol=AAPL&window=2").await;
    assert_eq!(ma.json["value"], json!(110.0), "{}", ma.text);
}

#[tokio::test]
async fn the_migration_keeps_the_first_fetch_of_each_repeated_quote() {
    let db = TestDb::create().await;
    let client = db.client().await;
    for m in &MIGRATIONS[..2] {
        client.batch_execute(m.sql).await.expect(m.name);
    }
    let ids: Vec<uuid::Uuid> = (0..3).map(|_| uuid::Uuid::now_v7()).collect();
    for (i, id) in ids.iter().enumerate() {
        client
            .execute(
                "INSERT INTO price_points (raw_response_id, symbol, price, quote_time, source)
                 VALUES ($1, 'AAPL', $2, $3, 'finnhub')",
                &[id, &Decimal::from(100 + i), &t0()],
            )
            .await
            .unwrap();
    }

    let app = TestApp::builder()
        .env("DATABASE_URL", &db.url)
        .env("DATABASE_MIGRATE_ON_START", "true")
        .build()
        .await;
    let kept: Vec<uuid::Uuid> = client
        .query("SELECT raw_response_id FROM price_points", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(kept, [ids[0]]);
    // And from now on the database itself holds the rule.
    let refused = client
        .execute(
            "INSERT INTO price_points (raw_response_id, symbol, price, quote_time, source)
             VALUES ($1, 'AAPL', 1, $2, 'finnhub')",
            &[&uuid::Uuid::now_v7(), &t0()],
        )
        .await;
    assert!(refused.is_err(), "a copy is refused");
    drop(app);
}

#[tokio::test]
async fn a_late_point_far_behind_leaves_every_average_right_and_the_newest_current() {
    let windows = "sma:3,ema:2";
    let app = TestApp::builder()
        .postgres()
        .env("MA_WINDOWS", windows)
        .build()
        .await;
    let specs = AverageSpec::parse_list(windows).unwrap();
    let price = |i: i64| Decimal::new(10_000 + (i * 37) % 501, 2);
    // 1,500 points, so a late point at the start lies beyond the horizon a batch reads.
    let series: Vec<PriceEvent> = (0..1_500)
        .map(|i| event("AAPL", 10 + i * 10, price(i)))
        .collect();
    // Early batches one point each, so averages are stored as of those times too.
    for (i, e) in series[..5].iter().enumerate() {
        consume(&app, std::slice::from_ref(e), i as i64).await;
    }
    for (n, chunk) in series[5..].chunks(500).enumerate() {
        consume(&app, chunk, 5 + 500 * n as i64).await;
    }
    // One batch with a point older than all of them and one newer than all of them.
    let late = event("AAPL", 5, d("250"));
    let current = event("AAPL", 10 + 1_500 * 10, d("99.5"));
    let report = consume(&app, &[late, current.clone()], 10_000).await;
    assert_eq!(report.points_added, 2, "{report:?}");

    let client = app.db.as_ref().unwrap().client().await;
    assert_eq!(stored_points(&client).await["AAPL"].len(), 1_502);
    assert_averages_match_recomputation(&client, &specs).await;
    let ma = app.get("/prices/moving-average?symbol=AAPL&window=3").await;
    assert_eq!(
        ma.json["as_of"],
        current
            .timestamp
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
}
