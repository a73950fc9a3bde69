//! The Finnhub adapter against a local server answering as Finnhub's documentation says.

use std::time::{Duration, Instant};

use harness::app::TEST_FINNHUB_KEY;
use harness::fake_finnhub::realistic_quote;
use harness::{FakeFinnhub, Reply};
use market_data::domain::{ProviderId, Symbol};
use market_data::providers::FinnhubConfig;
use market_data::providers::{Finnhub, ProviderError, QuoteProvider};
use rust_decimal::Decimal;
use secrecy::SecretString;
use serde_json::json;

const TIMEOUT: Duration = Duration::from_millis(500);

fn provider(base_url: &str) -> Finnhub {
    Finnhub::from_config(&FinnhubConfig {
        api_key: Some(SecretString::from(TEST_FINNHUB_KEY.to_owned())),
        base_url: base_url.to_owned(),
        timeout: TIMEOUT,
        quota: market_data::providers::finnhub::FINNHUB_DEFAULT_QUOTA,
    })
    .expect("client builds")
    .expect("configured with a key")
}

fn sym(s: &str) -> Symbol {
    Symbol::parse(s).unwrap()
}

#[test]
fn without_a_key_finnhub_is_not_configured() {
    let none = Finnhub::from_config(&FinnhubConfig {
        api_key: None,
        base_url: "http://127.0.0.1:1".into(),
        timeout: TIMEOUT,
        quota: market_data::providers::finnhub::FINNHUB_DEFAULT_QUOTA,
    })
    .unwrap();
    assert!(none.is_none());
}

#[tokio::test]
async fn sends_the_key_in_the_header_and_reads_the_quote_exactly() {
    let fake = FakeFinnhub::start().await;
    fake.reply(
        "AAPL",
        Reply::Json(json!({"c":261.74,"h":263.31,"l":260.68,"o":261.07,"pc":259.45,"t":1582641000,"d":2.29,"dp":0.8826})),
    );
    let fetched = provider(fake.base_url()).quote(&sym("AAPL")).await.unwrap();
    assert_eq!(fake.tokens(), vec![Some(TEST_FINNHUB_KEY.to_owned())]);
    let q = fetched.quote;
    assert_eq!(q.provider, ProviderId::Finnhub);
    assert_eq!(q.price, "261.74".parse::<Decimal>().unwrap());
    assert_eq!(q.percent_change, Some("0.8826".parse().unwrap()));
    assert_eq!(q.previous_close, "259.45".parse::<Decimal>().unwrap());
    assert_eq!(q.quote_time.timestamp(), 1_582_641_000);
    assert_eq!(fetched.raw["dp"], json!(0.8826));
}

#[tokio::test]
async fn null_change_fields_are_absent_not_zero() {
    let fake = FakeFinnhub::start().await;
    let mut body = realistic_quote("NEW");
    body["d"] = json!(null);
    body["dp"] = json!(null);
    fake.reply("NEW", Reply::Json(body));
    let q = provider(fake.base_url())
        .quote(&sym("NEW"))
        .await
        .unwrap()
        .quote;
    assert_eq!((q.change, q.percent_change), (None, None));
}

#[tokio::test]
async fn unknown_symbol_zeros_are_not_found() {
    let fake = FakeFinnhub::start().await;
    fake.reply("ZZZZZ", Reply::Zeros);
    assert_eq!(
        provider(fake.base_url()).quote(&sym("ZZZZZ")).await,
        Err(ProviderError::NotFound)
    );
}

#[tokio::test]
async fn a_refused_key_and_a_premium_symbol_are_told_apart() {
    let fake = FakeFinnhub::start().await;
    fake.reply("A", Reply::Status(401, vec![]));
    fake.reply("B", Reply::Status(403, vec![]));
    let p = provider(fake.base_url());
    assert!(matches!(
        p.quote(&sym("A")).await,
        Err(ProviderError::CredentialsRefused(_))
    ));
    assert!(matches!(
        p.quote(&sym("B")).await,
        Err(ProviderError::PlanRestricted(_))
    ));
}

#[tokio::test]
async fn rate_limit_carries_the_reset_time() {
    let fake = FakeFinnhub::start().await;
    let reset = chrono::Utc::now().timestamp() + 20;
    fake.reply(
        "AAPL",
        Reply::Status(429, vec![("x-ratelimit-reset", reset.to_string())]),
    );
    match provider(fake.base_url()).quote(&sym("AAPL")).await {
        Err(ProviderError::RateLimited {
            retry_after: Some(d),
        }) => assert!((19..=21).contains(&d.as_secs()), "{d:?}"),
        other => panic!("expected rate limited, got {other:?}"),
    }
}

#[tokio::test]
async fn server_errors_are_unavailable_and_unreadable_bodies_garbage() {
    let fake = FakeFinnhub::start().await;
    fake.reply("E500", Reply::Status(500, vec![]));
    fake.reply("E503", Reply::Status(503, vec![]));
    fake.reply("HTML", Reply::Html(502));
    fake.reply("HTMLOK", Reply::Html(200));
    fake.reply("TRUNC", Reply::RawJson(r#"{"c":261.74,"h":263.3"#.into()));
    fake.reply("EMPTY", Reply::RawJson(String::new()));
    let p = provider(fake.base_url());
    for s in ["E500", "E503", "HTML"] {
        let result = p.quote(&sym(s)).await;
        assert!(
            matches!(result, Err(ProviderError::Unavailable(_))),
            "{s}: {result:?}"
        );
    }
    for s in ["HTMLOK", "TRUNC", "EMPTY"] {
        let result = p.quote(&sym(s)).await;
        assert!(
            matches!(result, Err(ProviderError::Garbage(_))),
            "{s}: {result:?}"
        );
    }
}

#[tokio::test]
async fn a_hanging_provider_is_cut_off_at_the_timeout() {
    let fake = FakeFinnhub::start().await;
    fake.reply("SLOW", Reply::Hang);
    let started = Instant::now();
    let result = provider(fake.base_url()).quote(&sym("SLOW")).await;
    assert!(
        matches!(&result, Err(ProviderError::Unavailable(m)) if m.contains("did not answer")),
        "{result:?}"
    );
    // Behaviour, not speed: the call ends instead of hanging for the fake's hour.
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn a_closed_port_is_unavailable() {
    let port = harness::redis::free_port();
    let result = provider(&format!("http://127.0.0.1:{port}/api/v1"))
        .quote(&sym("AAPL"))
        .await;
    assert!(
        matches!(result, Err(ProviderError::Unavailable(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn the_key_never_appears_in_an_error() {
    let fake = FakeFinnhub::start().await;
    fake.reply("SLOW", Reply::Hang);
    fake.reply("E401", Reply::Status(401, vec![]));
    let p = provider(fake.base_url());
    for s in ["SLOW", "E401"] {
        let e = p.quote(&sym(s)).await.unwrap_err();
        assert!(!format!("{e} {e:?}").contains(TEST_FINNHUB_KEY));
    }
}
