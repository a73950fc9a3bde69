//! CloudWatch Embedded Metric Format lines from every part, on the real stack: the API's
//! cache and provider, the poller's ticks, the consumer's batches and dead letters.

use harness::dynamodb::{create_jobs_table, dynamodb_endpoint};
use harness::price_events::{event, msk_event, records_of};
use harness::{EmfLines, TestApp};
use rust_decimal::Decimal;
use serde_json::json;

#[tokio::test]
async fn every_part_reports_its_metrics_as_emf() {
    let lines = EmfLines::default();
    let table = create_jobs_table().await;
    let app = TestApp::builder()
        .postgres()
        .redis()
        .kafka()
        .finnhub()
        .env("JOBS_TABLE", table.table())
        .env("AWS_ENDPOINT_URL_DYNAMODB", &dynamodb_endpoint())
        .metrics(lines.metrics())
        .build()
        .await;

    // The API: a miss asks the provider and publishes, a hit does not.
    assert_eq!(app.get("/prices/latest?symbol=AAPL").await.status, 200);
    assert_eq!(app.get("/prices/latest?symbol=AAPL").await.status, 200);
    let latency = lines.named("ProviderLatency");
    assert_eq!(latency.len(), 1);
    assert_eq!(latency[0]["Provider"], "finnhub");
    assert_eq!(latency[0]["Function"], "test");
    assert_eq!(lines.named("CacheMiss").len(), 1);
    assert_eq!(lines.named("CacheHit").len(), 1);
    assert_eq!(lines.named("EventPublished").len(), 1);

    // The poller: one tick of a job.
    let created = app
        .post_json(
            "/prices/poll",
            &json!({"symbols": ["MSFT"], "interval": 60, "provider": "finnhub"}),
        )
        .await;
    assert_eq!(created.status, 202, "{}", created.text);
    let ticks = app.services.memory_queue().unwrap().receive(10);
    assert_eq!(ticks.len(), 1, "the new job's first tick");
    for tick in &ticks {
        app.services.ticks.run(tick, None).await;
    }
    let ticks = lines.named("PollTick");
    assert_eq!(ticks.len(), 1, "{ticks:?}");
    assert_eq!(ticks[0]["PollTick"], 1.0);
    assert_eq!(ticks[0]["Provider"], "finnhub");
    assert_eq!(lines.named("PollTickLatency").len(), 1);

    // The consumer: a batch of three records, one of them poison.
    let events = [
        event("NVDA", 0, Decimal::from(100)),
        event("NVDA", 60, Decimal::from(101)),
    ];
    let mut records = records_of(&events, 0);
    records.push((0, 2, b"not an event".to_vec()));
    ma_consumer::handle(&app.services.consumer, &msk_event("price-events", &records))
        .await
        .unwrap();
    let size = lines.named("ConsumerBatchSize");
    assert_eq!(size.len(), 1);
    assert_eq!(size[0]["ConsumerBatchSize"], 3.0);
    assert_eq!(lines.named("DeadLetters")[0]["DeadLetters"], 1.0);
    assert_eq!(
        lines.named("PricePointsStored")[0]["PricePointsStored"],
        2.0
    );
    assert_eq!(lines.named("ConsumerBatchLatency").len(), 1);
}
