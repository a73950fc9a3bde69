//! The `ma-consumer` handler on real PostgreSQL, given MSK events exactly as AWS delivers
//! them: seed semantics, idempotence, poison records, delivery order, and the read APIs.

use harness::TestApp;
use harness::price_events::{
    assert_averages_match_recomputation, event, msk_event, msk_event_json, records_of,
    stored_averages, stored_points,
};
use market_data::domain::{AverageSpec, PriceEvent};
use rust_decimal::Decimal;

const TOPIC: &str = "price-events";

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

async fn app_with(windows: &str) -> TestApp {
    TestApp::builder()
        .postgres()
        .env("MA_WINDOWS", windows)
        .build()
        .await
}

async fn consume(app: &TestApp, events: &[PriceEvent], first_offset: i64) {
    let event = msk_event(TOPIC, &records_of(events, first_offset));
    ma_consumer::handle(&app.services.consumer, &event)
        .await
        .expect("batch consumed");
}

/// Prices that wander, deterministic for a seed.
fn walk(rng: &mut fastrand::Rng, symbol: &str, count: usize) -> Vec<PriceEvent> {
    let mut price = Decimal::from(rng.u32(50..500));
    (0..count)
        .map(|i| {
            price += Decimal::new(rng.i64(-250..=250), 2);
            price = price.max(Decimal::ONE);
            // Every fourth quote shares the previous quote time, as a second provider
            // quoting the same second does (one provider's repeat is the same quote).
            let tied = i % 4 == 3;
            let secs = i64::try_from(i - usize::from(tied)).unwrap() * 10;
            let mut event = event(symbol, secs, price);
            if tied {
                event.source = "finnhub".into();
            }
            event
        })
        .collect()
}

#[tokio::test]
async fn sma_5_is_the_mean_of_the_last_five_prices_once_five_exist() {
    let app = app_with("sma:5").await;
    let prices = ["100", "101.5", "99.25", "102", "98.75", "103.5", "104"];
    let events: Vec<PriceEvent> = prices
        .iter()
        .enumerate()
        .map(|(i, p)| event("AAPL", i64::try_from(i).unwrap() * 60, d(p)))
        .collect();

    consume(&app, &events[..4], 0).await;
    let early = app.get("/prices/moving-average?symbol=AAPL&window=5").await;
    early.assert_problem(404, "5 stored price points");

    consume(&app, &events[4..], 4).await;
    let ma = app
        .get("/prices/moving-average?symbol=aapl&window=5&kind=sma")
        .await;
    assert_eq!(ma.status, 200, "{}", ma.text);
    // (99.25 + 102 + 98.75 + 103.5 + 104) / 5
    assert_eq!(ma.json["value"], serde_json::json!(101.5));
    assert_eq!(ma.json["symbol"], "AAPL");
    assert_eq!(ma.json["kind"], "sma");
    assert_eq!(ma.json["window"], 5);
    assert_eq!(
        ma.json["as_of"],
        events[6]
            .timestamp
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
}

#[tokio::test]
async fn averages_equal_a_recomputation_from_every_stored_point() {
    let windows = "sma:3,sma:5,ema:4,ema:10";
    let app = app_with(windows).await;
    let specs = AverageSpec::parse_list(windows).unwrap();
    let mut rng = fastrand::Rng::with_seed(7);
    let mut events: Vec<PriceEvent> = ["AAPL", "MSFT", "BRK.B", "BINANCE:BTCUSDT", "X"]
        .iter()
        .flat_map(|s| walk(&mut rng, s, 40))
        .collect();
    // Interleaved by time, in batches of uneven size, as partitions would deliver them.
    events.sort_by_key(|e| e.timestamp);
    let mut offset = 0;
    for chunk in events.chunks(17) {
        consume(&app, chunk, offset).await;
        offset += 17;
    }
    let client = app.db.as_ref().unwrap().client().await;
    let points = stored_points(&client).await;
    assert_eq!(points.values().map(Vec::len).sum::<usize>(), events.len());
    assert_averages_match_recomputation(&client, &specs).await;
    for symbol in ["AAPL", "BRK.B"] {
        for spec in &specs {
            let uri = format!(
                "/prices/moving-average?symbol={symbol}&window={}&kind={}",
                spec.window, spec.kind
            );
            assert_eq!(app.get(&uri).await.status, 200, "{uri}");
        }
    }
}

#[tokio::test]
async fn the_same_batch_twice_changes_nothing() {
    let app = app_with("sma:5,ema:12").await;
    let mut rng = fastrand::Rng::with_seed(11);
    let events: Vec<PriceEvent> = ["AAPL", "MSFT"]
        .iter()
        .flat_map(|s| walk(&mut rng, s, 30))
        .collect();
    let event = msk_event(TOPIC, &records_of(&events, 0));
    let first = ma_consumer::handle(&app.services.consumer, &event)
        .await
        .unwrap();
    assert_eq!((first.points_added, first.duplicates), (60, 0));

    let client = app.db.as_ref().unwrap().client().await;
    let snapshot = |client| async move {
        let rows = client_rows(client).await;
        (
            stored_points(client).await,
            stored_averages(client).await,
            rows,
        )
    };
    let before = snapshot(&client).await;
    let again = ma_consumer::handle(&app.services.consumer, &event)
        .await
        .unwrap();
    assert_eq!(
        (again.points_added, again.duplicates, again.averages_written),
        (0, 60, 0)
    );
    assert_eq!(snapshot(&client).await, before);

    // A batch repeating an event twice stores it once.
    let twice = [events[0].clone(), events[0].clone()];
    let report = ma_consumer::handle(
        &app.services.consumer,
        &msk_event(TOPIC, &records_of(&twice, 100)),
    )
    .await
    .unwrap();
    assert_eq!((report.points_added, report.duplicates), (0, 2));
}

/// Row counts and the averages' computed_at, which an idle upsert would move.
async fn client_rows(
    client: &tokio_postgres::Client,
) -> Vec<(i64, i64, Option<chrono::DateTime<chrono::Utc>>)> {
    let row = client
        .query_one(
            "SELECT (SELECT count(*) FROM price_points), (SELECT count(*) FROM moving_averages),
                    (SELECT max(computed_at) FROM moving_averages)",
            &[],
        )
        .await
        .unwrap();
    vec![(row.get(0), row.get(1), row.get(2))]
}

#[tokio::test]
async fn a_poison_record_becomes_one_dead_letter_and_the_rest_are_stored() {
    let app = app_with("sma:5").await;
    let events: Vec<PriceEvent> = (0..6)
        .map(|i| event("AAPL", i * 60, Decimal::from(100 + i)))
        .collect();
    let mut records = records_of(&events, 0);
    let poison = br#"{"symbol":"AAPL","price":"free","timestamp":"now"}"#.to_vec();
    records.insert(3, (0, 99, poison.clone()));
    let event = msk_event(TOPIC, &records);
    let report = ma_consumer::handle(&app.services.consumer, &event)
        .await
        .unwrap();
    assert_eq!((report.points_added, report.dead_letters), (6, 1));

    let client = app.db.as_ref().unwrap().client().await;
    let letters = client
        .query(
            "SELECT topic, partition, \"offset\", payload, reason FROM dead_letters",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].get::<_, String>(0), TOPIC);
    assert_eq!(letters[0].get::<_, i32>(1), 0);
    assert_eq!(letters[0].get::<_, i64>(2), 99);
    assert_eq!(letters[0].get::<_, Vec<u8>>(3), poison);
    assert!(letters[0].get::<_, String>(4).contains("not a price event"));

    // Delivered again, the poison record is still one dead letter.
    let again = ma_consumer::handle(&app.services.consumer, &event)
        .await
        .unwrap();
    assert_eq!(again.dead_letters, 0);
    let count: i64 = client
        .query_one("SELECT count(*) FROM dead_letters", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 1);
    let ma = app.get("/prices/moving-average?symbol=AAPL").await;
    assert_eq!(ma.json["value"].as_f64(), Some(103.0));
}

#[tokio::test]
async fn values_that_are_not_base64_or_missing_are_dead_letters_too() {
    let app = app_with("sma:5").await;
    let good = event("AAPL", 0, Decimal::from(100));
    let mut json = msk_event_json(TOPIC, &records_of(&[good], 0));
    let partition = json["records"]["price-events-0"].as_array_mut().unwrap();
    let mut bad = partition[0].clone();
    bad["offset"] = 1.into();
    bad["value"] = "%%% not base64 %%%".into();
    let mut missing = partition[0].clone();
    missing["offset"] = 2.into();
    missing["value"] = serde_json::Value::Null;
    partition.push(bad);
    partition.push(missing);
    let event = serde_json::from_value(json).unwrap();
    let report = ma_consumer::handle(&app.services.consumer, &event)
        .await
        .unwrap();
    assert_eq!((report.points_added, report.dead_letters), (1, 2));
}

#[tokio::test]
async fn shuffled_delivery_gives_the_same_averages_as_sorted() {
    let windows = "sma:5,ema:6";
    let specs = AverageSpec::parse_list(windows).unwrap();
    let (sorted_app, shuffled_app) = (app_with(windows).await, app_with(windows).await);
    let mut rng = fastrand::Rng::with_seed(3);
    let mut events: Vec<PriceEvent> = ["AAPL", "MSFT", "TSLA"]
        .iter()
        .flat_map(|s| walk(&mut rng, s, 50))
        .collect();
    events.sort_by_key(|e| (e.timestamp, e.raw_response_id));
    for (i, chunk) in events.chunks(10).enumerate() {
        consume(&sorted_app, chunk, i64::try_from(i * 10).unwrap()).await;
    }
    let mut shuffled = events.clone();
    rng.shuffle(&mut shuffled);
    let mut offset = 0;
    while offset < shuffled.len() {
        let size = rng.usize(1..=25).min(shuffled.len() - offset);
        consume(
            &shuffled_app,
            &shuffled[offset..offset + size],
            i64::try_from(offset).unwrap(),
        )
        .await;
        offset += size;
    }

    let sorted_db = sorted_app.db.as_ref().unwrap().client().await;
    let shuffled_db = shuffled_app.db.as_ref().unwrap().client().await;
    assert_averages_match_recomputation(&sorted_db, &specs).await;
    assert_averages_match_recomputation(&shuffled_db, &specs).await;
    for symbol in ["AAPL", "MSFT", "TSLA"] {
        for spec in &specs {
            let uri = format!(
                "/prices/moving-average?symbol={symbol}&window={}&kind={}",
                spec.window, spec.kind
            );
            let (a, b) = (sorted_app.get(&uri).await, shuffled_app.get(&uri).await);
            assert_eq!(a.status, 200, "{}", a.text);
            assert_eq!(a.json, b.json, "{uri}");
        }
    }
}

#[tokio::test]
async fn the_sample_msk_event_of_local_events_is_consumed() {
    let app = app_with("sma:5").await;
    let event: aws_lambda_events::event::kafka::KafkaEvent =
        serde_json::from_str(include_str!("../../local/events/msk-price-events.json")).unwrap();
    let report = ma_consumer::handle(&app.services.consumer, &event)
        .await
        .unwrap();
    assert_eq!(report.records, 6);
    assert_eq!(report.points_added, 5);
    assert_eq!(report.dead_letters, 1);
    let ma = app.get("/prices/moving-average?symbol=AAPL&window=5").await;
    assert_eq!(ma.status, 200, "{}", ma.text);
}
