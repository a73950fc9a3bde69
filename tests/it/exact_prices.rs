//! Prices and averages carry every digit from the decimal in memory to the digits on the wire
//! (the API's answers and the Kafka event), and what the API serves the consumer stores: one
//! rule for what a price is. A double would turn `97123.456666666667` into `97123.45666666667`.

use std::time::Duration;

use chrono::Utc;
use harness::TestApp;
use harness::fake_finnhub::Reply;
use harness::kafka::consume;
use harness::price_events::{event, msk_event};
use rust_decimal::Decimal;

/// Finnhub's answer with these exact digits for `c` and `d`.
fn quote(c: &str, d: &str) -> Reply {
    Reply::RawJson(format!(
        r#"{{"c":{c},"d":{d},"dp":0.1,"h":97200.5,"l":0.1,"o":97100,"pc":97000,"t":{}}}"#,
        Utc::now().timestamp()
    ))
}

#[tokio::test]
async fn a_price_of_seventeen_digits_is_served_published_and_consumed_with_every_digit() {
    let app = TestApp::builder()
        .postgres()
        .kafka()
        .finnhub()
        .env("MA_WINDOWS", "sma:1")
        .build()
        .await;
    // Symbol, price, change, and the price's SMA-1 (rounded to 12 places).
    let cases = [
        (
            "AAPL",
            "97123.456666666667",
            "0.30000000000000004",
            "97123.456666666667",
        ),
        ("MSFT", "0.30000000000000004", "-1.0000000000000001", "0.3"),
    ];
    for (symbol, price, change, _) in cases {
        app.finnhub.reply(symbol, quote(price, change));
        let latest = app
            .get(&format!("/prices/latest?symbol={symbol}&provider=finnhub"))
            .await;
        assert_eq!(latest.status, 200, "{}", latest.text);
        assert!(
            latest.text.contains(&format!(r#""price":{price},"#)),
            "{}",
            latest.text
        );
        assert!(
            latest.text.contains(&format!(r#""change":{change},"#)),
            "{}",
            latest.text
        );
    }

    let topic = app.topic.as_deref().unwrap();
    let published = consume(topic, cases.len(), Duration::from_secs(20)).await;
    assert_eq!(published.len(), cases.len());
    let mut records = Vec::new();
    for (offset, record) in published.iter().enumerate() {
        let text = String::from_utf8(record.bytes.clone()).unwrap();
        let (_, price, _, _) = cases
            .iter()
            .find(|(s, _, _, _)| record.key.as_deref() == Some(*s))
            .expect("a symbol asked for");
        assert!(text.contains(&format!(r#""price":{price},"#)), "{text}");
        records.push((record.partition, offset as i64, record.bytes.clone()));
    }

    // The consumer takes exactly what was published, and the read APIs give it back.
    let report = ma_consumer::handle(&app.services.consumer, &msk_event(topic, &records))
        .await
        .expect("consumed");
    assert_eq!(report.points_added, cases.len(), "{report:?}");
    assert_eq!(report.dead_letters, 0, "{report:?}");
    for (symbol, price, _, average) in cases {
        let history = app.get(&format!("/prices/history?symbol={symbol}")).await;
        assert!(
            history.text.contains(&format!(r#""price":{price},"#)),
            "{}",
            history.text
        );
        // An average is rounded to 12 places, and served with every one of them.
        let ma = app
            .get(&format!("/prices/moving-average?symbol={symbol}&window=1"))
            .await;
        assert!(
            ma.text.contains(&format!(r#""value":{average},"#)),
            "{}",
            ma.text
        );
    }
}

#[tokio::test]
async fn an_average_is_served_with_every_digit() {
    let app = TestApp::builder()
        .postgres()
        .env("MA_WINDOWS", "sma:3")
        .build()
        .await;
    let prices = ["97123.45", "97123.46", "97123.46"];
    let events: Vec<_> = prices
        .iter()
        .zip(0..)
        .map(|(p, i)| event("AAPL", i * 60, p.parse::<Decimal>().unwrap()))
        .collect();
    let records: Vec<_> = events
        .iter()
        .zip(0..)
        .map(|(e, offset)| (0, offset, e.to_json().unwrap()))
        .collect();
    ma_consumer::handle(&app.services.consumer, &msk_event("price-events", &records))
        .await
        .expect("consumed");
    let ma = app.get("/prices/moving-average?symbol=AAPL&window=3").await;
    assert_eq!(ma.status, 200, "{}", ma.text);
    // 291370.37 / 3, rounded to 12 places.
    assert!(
        ma.text.contains(r#""value":97123.456666666667,"#),
        "{}",
        ma.text
    );
}
