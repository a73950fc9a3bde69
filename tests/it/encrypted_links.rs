//! TLS to PostgreSQL and to Redis, against servers of the test's own that speak TLS with a
//! certificate the test made: the right CA connects, a wrong one is refused, `sslmode` is
//! honoured, and a wrong Redis password is a clear readiness failure.

use std::collections::HashMap;
use std::time::Duration;

use harness::TestApp;
use harness::tls::{TlsPostgres, TlsRedis};
use market_data::config::{ConfigError, Env};
use market_data::redis_connection::{RedisConfig, RedisConnection};
use market_data::store::{DatabaseConfig, PostgresStore, PriceStore};

const API_KEY: &str = "tls-test-key-0123456789abcdef";

async fn database_config(pairs: &[(&str, &str)]) -> Result<DatabaseConfig, ConfigError> {
    let vars: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let lookup = |k: &str| vars.get(k).cloned();
    DatabaseConfig::from_env(&Env::new(&lookup, None))
        .await
        .map(|c| c.expect("DATABASE_URL is set"))
}

/// Whether the store's connection to the server is encrypted, as the server sees it.
async fn uses_tls(store: &PostgresStore) -> bool {
    let client = store.pool().get().await.expect("a connection");
    client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .expect("pg_stat_ssl")
        .get(0)
}

#[tokio::test]
async fn postgres_with_sslmode_require_and_the_right_ca_connects_over_tls() {
    let pg = TlsPostgres::start().await;
    let ca = pg.ca.ca_file.display().to_string();
    let config = database_config(&[
        ("DATABASE_URL", &pg.url("sslmode=require")),
        ("DATABASE_CA_FILE", &ca),
    ])
    .await
    .unwrap();
    let store = PostgresStore::new(&config).unwrap();
    store.ping().await.unwrap();
    assert!(uses_tls(&store).await);
}

#[tokio::test]
async fn postgres_with_a_ca_that_did_not_sign_the_server_is_refused() {
    let pg = TlsPostgres::start().await;
    let wrong = pg.wrong_ca.ca_file.display().to_string();
    let config = database_config(&[
        ("DATABASE_URL", &pg.url("sslmode=require")),
        ("DATABASE_CA_FILE", &wrong),
    ])
    .await
    .unwrap();
    let err = PostgresStore::new(&config)
        .unwrap()
        .ping()
        .await
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("database unavailable"), "{err}");
    assert!(err.contains("certificate"), "{err}");
}

#[tokio::test]
async fn on_lambda_tls_is_required_and_verified_against_the_rds_bundle_by_default() {
    let pg = TlsPostgres::start().await;
    // No sslmode in the URL, no CA file: on Lambda that is `require` against the RDS CAs,
    // which did not sign this server's certificate.
    let config = database_config(&[
        ("DATABASE_URL", &pg.url("")),
        ("AWS_LAMBDA_FUNCTION_NAME", "price-api"),
    ])
    .await
    .unwrap();
    let err = PostgresStore::new(&config)
        .unwrap()
        .ping()
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("UnknownIssuer"), "{err}");
}

#[tokio::test]
async fn postgres_with_sslmode_disable_does_not_use_tls() {
    let pg = TlsPostgres::start().await;
    let config = database_config(&[("DATABASE_URL", &pg.url("sslmode=disable"))])
        .await
        .unwrap();
    let store = PostgresStore::new(&config).unwrap();
    assert!(!uses_tls(&store).await);
}

#[tokio::test]
async fn postgres_with_sslmode_prefer_encrypts_without_verifying() {
    let pg = TlsPostgres::start().await;
    let config = database_config(&[("DATABASE_URL", &pg.url("sslmode=prefer"))])
        .await
        .unwrap();
    let store = PostgresStore::new(&config).unwrap();
    assert!(uses_tls(&store).await);
}

fn redis_config(url: String, ca_file: Option<std::path::PathBuf>) -> RedisConfig {
    RedisConfig {
        url: url.into(),
        key_prefix: harness::redis::unique_prefix(),
        timeout: Duration::from_secs(2),
        ca_file,
    }
}

#[tokio::test]
async fn redis_over_tls_with_the_password_and_the_test_ca_works() {
    let server = TlsRedis::start("s3cret-token").await;
    let redis = RedisConnection::open(&redis_config(
        server.url("s3cret-token"),
        Some(server.ca.ca_file.clone()),
    ))
    .unwrap();
    let key = redis.key("tls");
    redis
        .run(|mut c| {
            let key = key.clone();
            async move { redis::AsyncCommands::set::<_, _, ()>(&mut c, key, "over tls").await }
        })
        .await
        .unwrap();
    let back: String = redis
        .run(|mut c| async move { redis::AsyncCommands::get(&mut c, key).await })
        .await
        .unwrap();
    assert_eq!(back, "over tls");
}

#[tokio::test]
async fn redis_over_tls_without_the_test_ca_is_refused() {
    let server = TlsRedis::start("s3cret-token").await;
    // The webpki roots (ElastiCache's) do not hold the test's CA.
    let redis = RedisConnection::open(&redis_config(server.url("s3cret-token"), None)).unwrap();
    let err = redis
        .run(|mut c| async move { redis::cmd("PING").query_async::<String>(&mut c).await })
        .await
        .unwrap_err()
        .to_string();
    assert!(err.to_lowercase().contains("certificate"), "{err}");
}

#[tokio::test]
async fn a_wrong_redis_password_shows_in_readiness_as_auth_without_the_secret() {
    let server = TlsRedis::start("s3cret-token").await;
    let ca = server.ca.ca_file.display().to_string();
    let app = TestApp::builder()
        .redis_at(&server.url("not-the-token"))
        .env("REDIS_CA_FILE", &ca)
        .env("REDIS_TIMEOUT_MS", "2000")
        .env(
            "API_KEYS",
            &format!(r#"[{{"name":"ops","key":"{API_KEY}"}}]"#),
        )
        .build()
        .await;
    let ready = app.get_with("/ready", &[("x-api-key", API_KEY)]).await;
    assert_eq!(ready.status, 503, "{}", ready.text);
    let cache = ready.json["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["port"] == "cache")
        .unwrap()
        .clone();
    assert_eq!(cache["status"], "down", "{cache}");
    let detail = cache["detail"].as_str().unwrap_or_default().to_owned();
    assert!(
        detail.to_uppercase().contains("AUTH") || detail.contains("WRONGPASS"),
        "{detail}"
    );
    assert!(!ready.text.contains("not-the-token"), "{}", ready.text);
    assert!(!ready.text.contains("s3cret-token"), "{}", ready.text);
}
