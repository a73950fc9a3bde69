//! Price events on a real broker: each test publishes to its own topic and reads it back
//! with its own consumer group.

use std::time::Duration;

use chrono::Utc;
use harness::TestApp;
use harness::kafka::{bootstrap, consume, create_topic};
use harness::redis::free_port;
use market_data::domain::{PriceEvent, Symbol};
use market_data::events::kafka::{KafkaConfig, KafkaSecurity};
use market_data::events::{EventBus, KafkaBus, PublishError};
use market_data::providers::Simulated;
use uuid::Uuid;

fn bus(bootstrap: &str, topic: &str, timeout: Duration) -> KafkaBus {
    KafkaBus::new(&KafkaConfig {
        bootstrap_servers: bootstrap.to_owned(),
        topic: topic.to_owned(),
        delivery_timeout: timeout,
        security: KafkaSecurity::Plaintext,
    })
    .expect("producer")
}

fn event(symbol: &str) -> PriceEvent {
    let quote = Simulated
        .quote_at(&Symbol::parse(symbol).unwrap(), Utc::now())
        .quote;
    PriceEvent::from_quote(&quote, Uuid::now_v7())
}

#[tokio::test]
async fn an_event_arrives_keyed_by_symbol_with_exactly_the_seed_fields() {
    let topic = create_topic(3).await;
    let bus = bus(&bootstrap(), &topic, Duration::from_secs(10));
    let sent = event("AAPL");
    bus.publish(&sent).await.expect("delivered");

    let records = consume(&topic, 1, Duration::from_secs(20)).await;
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert_eq!(r.key.as_deref(), Some("AAPL"));
    let obj = r.value.as_object().expect("a JSON object");
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["price", "raw_response_id", "source", "symbol", "timestamp"]
    );
    assert_eq!(obj["symbol"], "AAPL");
    assert!(obj["price"].is_number());
    let price: rust_decimal::Decimal = obj["price"].to_string().parse().unwrap();
    assert_eq!(price, sent.price);
    assert_eq!(obj["source"], "simulated");
    assert_eq!(obj["raw_response_id"], sent.raw_response_id.to_string());
    let ts = obj["timestamp"].as_str().unwrap();
    assert!(ts.ends_with('Z'), "{ts}");
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(ts).unwrap(),
        sent.timestamp
    );
}

#[tokio::test]
async fn one_symbols_events_stay_in_order_on_one_partition() {
    let topic = create_topic(3).await;
    let bus = bus(&bootstrap(), &topic, Duration::from_secs(10));
    let mut sent = Vec::new();
    for i in 0..10 {
        let e = event(if i % 2 == 0 { "AAPL" } else { "MSFT" });
        bus.publish(&e).await.expect("delivered");
        sent.push(e);
    }
    let records = consume(&topic, 10, Duration::from_secs(20)).await;
    assert_eq!(records.len(), 10);
    for symbol in ["AAPL", "MSFT"] {
        let mine: Vec<_> = records
            .iter()
            .filter(|r| r.key.as_deref() == Some(symbol))
            .collect();
        assert!(mine.windows(2).all(|w| w[0].partition == w[1].partition));
        let got: Vec<&str> = mine
            .iter()
            .map(|r| r.value["raw_response_id"].as_str().unwrap())
            .collect();
        let want: Vec<String> = sent
            .iter()
            .filter(|e| e.symbol.as_str() == symbol)
            .map(|e| e.raw_response_id.to_string())
            .collect();
        assert_eq!(got, want);
    }
}

#[tokio::test]
async fn an_unreachable_broker_fails_within_the_delivery_timeout() {
    let bus = bus(
        &format!("127.0.0.1:{}", free_port()),
        "price-events",
        Duration::from_millis(800),
    );
    let result = tokio::time::timeout(Duration::from_secs(10), bus.publish(&event("AAPL")))
        .await
        .expect("publish gives up by itself");
    assert!(
        matches!(result, Err(PublishError::NotDelivered(_))),
        "{result:?}"
    );
    assert!(bus.ping().await.is_err());

    // Meanwhile, further events are refused at once rather than each waiting the timeout.
    match bus.publish(&event("MSFT")).await {
        Err(PublishError::NotDelivered(m)) => assert!(m.to_string().contains("paused"), "{m}"),
        other => panic!("expected a paused refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn undelivered_events_are_republished_once_the_broker_answers() {
    // First the broker is unreachable: the quote is served and stored, the event is not.
    let down = TestApp::builder()
        .postgres()
        .env(
            "KAFKA_BOOTSTRAP_SERVERS",
            &format!("127.0.0.1:{}", free_port()),
        )
        .env("KAFKA_DELIVERY_TIMEOUT_MS", "500")
        .build()
        .await;
    let response = down
        .get("/prices/latest?symbol=AAPL&provider=simulated")
        .await;
    assert_eq!(response.status, 200);
    let db = down.db.as_ref().unwrap();
    let client = db.client().await;
    let row = client
        .query_one(
            "SELECT id, event_delivered_at IS NULL FROM raw_market_data WHERE symbol = 'AAPL'",
            &[],
        )
        .await
        .unwrap();
    let id: Uuid = row.get(0);
    assert!(
        row.get::<_, bool>(1),
        "the event is recorded as undelivered"
    );

    // Let the first attempt's grace period pass.
    client
        .execute("UPDATE raw_market_data SET republish_after = now()", &[])
        .await
        .unwrap();

    // Then a process with a working broker re-publishes it.
    let topic = create_topic(1).await;
    let up = TestApp::builder()
        .env("DATABASE_URL", &db.url)
        .env("KAFKA_BOOTSTRAP_SERVERS", &bootstrap())
        .env("KAFKA_TOPIC", &topic)
        .build()
        .await;
    let report = up.services.republisher.run(100).await.unwrap();
    assert_eq!((report.claimed, report.delivered, report.failed), (1, 1, 0));

    let records = consume(&topic, 1, Duration::from_secs(20)).await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].value["raw_response_id"], id.to_string());
    assert_eq!(records[0].key.as_deref(), Some("AAPL"));
    let delivered: bool = client
        .query_one(
            "SELECT event_delivered_at IS NOT NULL FROM raw_market_data WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap()
        .get(0);
    assert!(delivered);
    assert_eq!(up.services.republisher.run(100).await.unwrap().claimed, 0);
}
