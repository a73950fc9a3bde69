//! The read APIs (`/prices/history`, `/prices/moving-average`) on real PostgreSQL, their bad
//! input, and the embedded defaults, where the in-process bus feeds the consumer directly.

use std::time::Duration;

use harness::TestApp;
use harness::price_events::{event, msk_event, records_of};
use market_data::domain::{PriceEvent, ProviderId, Symbol};
use market_data::{Config, Services};
use market_data_local::event_source::{BatchSettings, run_in_process};
use rust_decimal::Decimal;

#[tokio::test]
async fn history_pages_newest_first_within_a_time_range() {
    let app = TestApp::builder().postgres().build().await;
    // 25 points, two of them sharing a quote time.
    let mut events: Vec<PriceEvent> = (0..24)
        .map(|i| event("MSFT", i * 60, Decimal::new(40_000 + i, 2)))
        .collect();
    // The tie from a second provider: one provider's repeat would be the same quote.
    let mut tied = event("MSFT", 23 * 60, Decimal::new(41_000, 2));
    tied.source = "finnhub".into();
    events.push(tied);
    events.push(event("AAPL", 0, Decimal::from(200)));
    ma_consumer::handle(
        &app.services.consumer,
        &msk_event("price-events", &records_of(&events, 0)),
    )
    .await
    .unwrap();

    let mut seen = Vec::new();
    let mut uri = "/prices/history?symbol=msft&limit=10".to_owned();
    loop {
        let page = app.get(&uri).await;
        assert_eq!(page.status, 200, "{}", page.text);
        assert_eq!(page.json["symbol"], "MSFT");
        let points = page.json["points"].as_array().unwrap().clone();
        assert!(points.len() <= 10);
        seen.extend(points);
        match page.json["next_cursor"].as_str() {
            Some(cursor) => uri = format!("/prices/history?symbol=MSFT&limit=10&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 25, "every point once, across pages");
    let times: Vec<&str> = seen
        .iter()
        .map(|p| p["timestamp"].as_str().unwrap())
        .collect();
    let mut sorted = times.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted, "newest first");
    let mut ids: Vec<&str> = seen
        .iter()
        .map(|p| p["raw_response_id"].as_str().unwrap())
        .collect();
    ids.dedup();
    assert_eq!(ids.len(), 25);

    let from = (harness::price_events::t0() + chrono::Duration::minutes(5)).to_rfc3339();
    let to = (harness::price_events::t0() + chrono::Duration::minutes(9)).to_rfc3339();
    let range = app
        .get(&format!(
            "/prices/history?symbol=MSFT&from={}&to={}",
            urlencode(&from),
            urlencode(&to)
        ))
        .await;
    assert_eq!(range.status, 200, "{}", range.text);
    assert_eq!(range.json["points"].as_array().unwrap().len(), 5);
    assert_eq!(range.json["next_cursor"], serde_json::Value::Null);

    let none = app.get("/prices/history?symbol=TSLA").await;
    assert_eq!(none.status, 200);
    assert_eq!(none.json["points"], serde_json::json!([]));
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

#[tokio::test]
async fn bad_parameters_of_the_read_apis_are_clear_400s() {
    let app = TestApp::builder().postgres().build().await;
    let cases = [
        ("/prices/history", "`symbol` is required"),
        ("/prices/history?symbol=", "symbol must not be empty"),
        ("/prices/history?symbol=A;DROP", "symbol may only contain"),
        ("/prices/history?symbol=AAPL&limit=0", "invalid `limit`"),
        ("/prices/history?symbol=AAPL&limit=1001", "invalid `limit`"),
        ("/prices/history?symbol=AAPL&limit=ten", "invalid `limit`"),
        (
            "/prices/history?symbol=AAPL&from=yesterday",
            "invalid `from`",
        ),
        (
            "/prices/history?symbol=AAPL&from=2026-11-25T10:00:00Z&to=2026-11-25T09:00:00Z",
            "`from` must not be after `to`",
        ),
        (
            "/prices/history?symbol=AAPL&cursor=bm9wZQ",
            "invalid `cursor`",
        ),
        ("/prices/moving-average", "`symbol` is required"),
        (
            "/prices/moving-average?symbol=AAPL&window=0",
            "invalid `window`",
        ),
        (
            "/prices/moving-average?symbol=AAPL&window=5.5",
            "invalid `window`",
        ),
        (
            "/prices/moving-average?symbol=AAPL&kind=wma",
            "invalid `kind`",
        ),
        (
            "/prices/moving-average?symbol=AAPL&window=7",
            "sma:7 is not computed",
        ),
    ];
    for (uri, detail) in cases {
        let r = app.get(uri).await;
        assert_eq!(r.status, 400, "{uri}: {}", r.text);
        assert_eq!(r.content_type(), "application/problem+json", "{uri}");
        assert!(
            r.json["detail"].as_str().unwrap().contains(detail),
            "{uri}: {}",
            r.json["detail"]
        );
    }
    let unknown = app.get("/prices/moving-average?symbol=ZZZZ").await;
    assert_eq!(unknown.status, 404);
}

#[tokio::test]
async fn a_database_that_is_away_is_a_503_problem() {
    let app = TestApp::builder()
        .env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/none")
        .build()
        .await;
    for uri in [
        "/prices/history?symbol=AAPL",
        "/prices/moving-average?symbol=AAPL",
    ] {
        let r = app.get(uri).await;
        assert_eq!(r.status, 503, "{uri}: {}", r.text);
        assert_eq!(r.content_type(), "application/problem+json");
        assert!(r.headers.contains_key("retry-after"));
        assert!(
            !r.text.contains("127.0.0.1:1"),
            "no connection details leak"
        );
    }
}

#[tokio::test]
async fn on_embedded_defaults_fetched_prices_reach_the_averages_in_process() {
    // SMA-1: the simulated provider quotes once per 5 s step, and repeated fetches of one
    // quote are one point, so quick fetches give one point per symbol.
    let config = Config::load(
        |name| (name == "MA_WINDOWS").then(|| "sma:1".to_owned()),
        None,
    )
    .await
    .unwrap();
    let services = Services::from_config(&config).await.unwrap();
    let events = services.in_process_bus().unwrap().subscribe();
    let consumer = services.consumer.clone();
    let settings = BatchSettings {
        max_wait: Duration::from_millis(20),
        ..BatchSettings::default()
    };
    tokio::spawn(async move { run_in_process(events, &settings, consumer).await });

    let symbol = Symbol::parse("AAPL").unwrap();
    for _ in 0..5 {
        services
            .api
            .quotes
            .refresh(&symbol, ProviderId::Simulated)
            .await
            .unwrap();
    }
    let edge =
        price_api::edge::EdgeConfig::from_env(&market_data::config::Env::new(&|_| None, None))
            .await
            .unwrap();
    let router = price_api::router(price_api::AppState::new(services.api.clone(), edge));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let response = tower::ServiceExt::oneshot(
            router.clone(),
            http::Request::get("/prices/moving-average?symbol=AAPL&window=1")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
        if response.status() == 200 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no average in time");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
