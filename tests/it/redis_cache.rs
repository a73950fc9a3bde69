//! The Redis cache tier against a real server: the stack's, under a per-test prefix, or a
//! private one the test stops.

use std::time::Duration;

use chrono::Utc;
use harness::redis::{PrivateRedis, free_port, unique_prefix, url};
use market_data::cache::{CacheError, QuoteCache, RedisCache};
use market_data::domain::{ProviderId, Quote, Symbol};
use market_data::providers::Simulated;
use market_data::redis_connection::RedisConfig;
use market_data::redis_connection::RedisConnection;
use redis::AsyncCommands;
use secrecy::SecretString;

fn cache_at(url: &str, prefix: &str, retention: Duration) -> RedisCache {
    let connection = RedisConnection::open(&RedisConfig {
        url: SecretString::from(url.to_owned()),
        key_prefix: prefix.to_owned(),
        timeout: Duration::from_millis(250),
        ca_file: None,
    })
    .expect("a valid URL");
    RedisCache::new(connection, retention)
}

fn quote(symbol: &str) -> Quote {
    Simulated
        .quote_at(&Symbol::parse(symbol).unwrap(), Utc::now())
        .quote
}

#[tokio::test]
async fn a_stored_quote_comes_back_whole() {
    let cache = cache_at(&url(), &unique_prefix(), Duration::from_secs(60));
    let q = quote("AAPL");
    assert_eq!(
        cache.get(ProviderId::Simulated, &q.symbol).await.unwrap(),
        None
    );
    cache.put(&q).await.unwrap();
    assert_eq!(
        cache.get(ProviderId::Simulated, &q.symbol).await.unwrap(),
        Some(q.clone())
    );
    // Another provider's entry for the same symbol is a different key.
    assert_eq!(
        cache.get(ProviderId::Finnhub, &q.symbol).await.unwrap(),
        None
    );
}

#[tokio::test]
async fn entries_expire_with_the_retention_counted_from_fetch_time() {
    let prefix = unique_prefix();
    let cache = cache_at(&url(), &prefix, Duration::from_millis(1500));
    let q = quote("MSFT");
    cache.put(&q).await.unwrap();

    let client = redis::Client::open(url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let ttl: i64 = conn
        .pttl(format!("{prefix}quote:simulated:MSFT"))
        .await
        .unwrap();
    assert!(ttl > 0 && ttl <= 1500, "ttl {ttl}");

    tokio::time::sleep(Duration::from_millis(1700)).await;
    assert_eq!(
        cache.get(ProviderId::Simulated, &q.symbol).await.unwrap(),
        None
    );

    // A quote already older than the retention is not written at all.
    let mut old = quote("OLD");
    old.fetched_at = Utc::now() - chrono::Duration::seconds(10);
    cache.put(&old).await.unwrap();
    assert_eq!(
        cache.get(ProviderId::Simulated, &old.symbol).await.unwrap(),
        None
    );
}

#[tokio::test]
async fn prefixes_keep_tests_and_deployments_apart() {
    let a = cache_at(&url(), &unique_prefix(), Duration::from_secs(60));
    let b = cache_at(&url(), &unique_prefix(), Duration::from_secs(60));
    let q = quote("TSLA");
    a.put(&q).await.unwrap();
    assert_eq!(b.get(ProviderId::Simulated, &q.symbol).await.unwrap(), None);
}

#[tokio::test]
async fn an_unreadable_entry_is_reported_not_trusted() {
    let prefix = unique_prefix();
    let cache = cache_at(&url(), &prefix, Duration::from_secs(60));
    let client = redis::Client::open(url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = conn
        .set_ex(format!("{prefix}quote:simulated:BAD"), "not json", 60)
        .await
        .unwrap();
    let result = cache
        .get(ProviderId::Simulated, &Symbol::parse("BAD").unwrap())
        .await;
    assert!(matches!(result, Err(CacheError::Corrupt(_))), "{result:?}");
}

#[tokio::test]
async fn an_unreachable_server_is_an_error_not_a_hang() {
    let cache = cache_at(
        &format!("redis://127.0.0.1:{}", free_port()),
        &unique_prefix(),
        Duration::from_secs(60),
    );
    let q = quote("AAPL");
    assert!(cache.get(ProviderId::Simulated, &q.symbol).await.is_err());
    assert!(cache.put(&q).await.is_err());
    assert!(cache.ping().await.is_err());
}

#[tokio::test]
async fn a_server_that_stops_and_returns_is_used_again() {
    let mut server = PrivateRedis::start().await;
    let cache = cache_at(&server.url(), "t:", Duration::from_secs(60));
    let q = quote("AAPL");
    cache.put(&q).await.unwrap();
    assert!(
        cache
            .get(ProviderId::Simulated, &q.symbol)
            .await
            .unwrap()
            .is_some()
    );

    let port = server.port;
    server.stop();
    assert!(cache.get(ProviderId::Simulated, &q.symbol).await.is_err());
    assert!(cache.ping().await.is_err());

    // Back on the same port (empty: it keeps nothing on disk): the manager reconnects.
    let _revived = PrivateRedis::start_on(port).await;
    let mut recovered = false;
    for _ in 0..40 {
        if cache.put(&q).await.is_ok() {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "the cache reconnects once Redis is back");
    assert_eq!(
        cache.get(ProviderId::Simulated, &q.symbol).await.unwrap(),
        Some(q)
    );
}

#[tokio::test]
async fn an_older_quote_never_replaces_a_newer_one() {
    let cache = cache_at(&url(), &unique_prefix(), Duration::from_secs(60));
    let newer = quote("AMZN");
    let mut older = newer.clone();
    older.quote_time -= chrono::Duration::seconds(10);
    older.price += rust_decimal::Decimal::ONE;
    // Fetched later (a slow container's answer arriving last), yet about an older moment.
    older.fetched_at += chrono::Duration::milliseconds(5);
    let mut same_time_fetched_earlier = newer.clone();
    same_time_fetched_earlier.fetched_at -= chrono::Duration::seconds(1);
    same_time_fetched_earlier.price += rust_decimal::Decimal::TWO;

    cache.put(&newer).await.unwrap();
    cache.put(&older).await.unwrap();
    cache.put(&same_time_fetched_earlier).await.unwrap();
    assert_eq!(
        cache
            .get(ProviderId::Simulated, &newer.symbol)
            .await
            .unwrap(),
        Some(newer.clone()),
        "the newest quote stays"
    );

    let mut newest = newer.clone();
    newest.quote_time += chrono::Duration::milliseconds(1);
    cache.put(&newest).await.unwrap();
    assert_eq!(
        cache
            .get(ProviderId::Simulated, &newer.symbol)
            .await
            .unwrap(),
        Some(newest),
        "a newer quote replaces it"
    );
}
