//! The PostgreSQL store against a real server, each test on its own database.

use std::time::Duration;

use chrono::{DateTime, Utc};
use harness::postgres::TestDb;
use market_data::domain::{FetchedQuote, Symbol};
use market_data::providers::Simulated;
use market_data::store::DatabaseConfig;
use market_data::store::{MIGRATIONS, PostgresStore, PriceStore, SslMode};
use rust_decimal::Decimal;
use secrecy::SecretString;
use uuid::Uuid;

fn store_for(db: &TestDb) -> PostgresStore {
    PostgresStore::new(&DatabaseConfig {
        url: SecretString::from(db.url.clone()),
        pool_size: 4,
        migrate_on_start: false,
        timeout: Duration::from_secs(6),
        ssl_mode: SslMode::Prefer,
        ca_file: None,
    })
    .expect("store")
}

async fn migrated() -> (TestDb, PostgresStore) {
    let db = TestDb::create().await;
    let store = store_for(&db);
    store.migrate().await.expect("migrate");
    (db, store)
}

fn fetched(symbol: &str) -> FetchedQuote {
    let mut f = Simulated.quote_at(&Symbol::parse(symbol).unwrap(), Utc::now());
    f.quote.price = "261.7412".parse().unwrap();
    f
}

fn ago(secs: i64) -> DateTime<Utc> {
    Utc::now() - chrono::Duration::seconds(secs)
}

#[tokio::test]
async fn migrations_apply_twice_without_harm() {
    let db = TestDb::create().await;
    let store = store_for(&db);
    let first = store.migrate().await.unwrap();
    assert_eq!(first, MIGRATIONS.iter().map(|m| m.name).collect::<Vec<_>>());
    let second = store.migrate().await.unwrap();
    assert!(second.is_empty(), "{second:?}");

    // And the SQL itself is idempotent, even without the bookkeeping.
    let client = db.client().await;
    for m in MIGRATIONS {
        client.batch_execute(m.sql).await.unwrap();
    }
    let tables: Vec<String> = client
        .query(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = 'public' ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        tables,
        [
            "dead_letters",
            "moving_averages",
            "price_points",
            "raw_market_data",
            "schema_migrations"
        ]
    );
}

#[tokio::test]
async fn concurrent_migrations_wait_for_each_other() {
    let db = TestDb::create().await;
    let (a, b) = (store_for(&db), store_for(&db));
    let (ra, rb) = tokio::join!(a.migrate(), b.migrate());
    let applied = ra.unwrap().len() + rb.unwrap().len();
    assert_eq!(applied, MIGRATIONS.len());
}

#[test]
fn every_migration_file_is_compiled_in_and_in_order() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../migrations");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".sql"))
        .collect();
    files.sort();
    let compiled: Vec<&str> = MIGRATIONS.iter().map(|m| m.name).collect();
    assert_eq!(files, compiled);
    for (i, m) in MIGRATIONS.iter().enumerate() {
        assert_eq!(m.version as usize, i + 1);
        assert!(m.name.starts_with(&format!("{:04}_", m.version)));
    }
}

#[tokio::test]
async fn a_raw_row_is_written_exactly_and_marked_delivered() {
    let (db, store) = migrated().await;
    let f = fetched("AAPL");
    let id = Uuid::now_v7();
    store.insert_raw(id, &f, ago(-60)).await.unwrap();

    let client = db.client().await;
    let row = client
        .query_one(
            "SELECT symbol, provider, price, quote_time, fetched_at, raw, event_delivered_at
             FROM raw_market_data WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "AAPL");
    assert_eq!(row.get::<_, String>(1), "simulated");
    assert_eq!(row.get::<_, Decimal>(2).to_string(), "261.7412");
    assert_eq!(row.get::<_, DateTime<Utc>>(3), f.quote.quote_time);
    let fetched_at: DateTime<Utc> = row.get(4);
    assert!(
        (fetched_at - f.quote.fetched_at)
            .num_microseconds()
            .unwrap()
            .abs()
            <= 1
    );
    assert_eq!(row.get::<_, serde_json::Value>(5), f.raw);
    assert_eq!(row.get::<_, Option<DateTime<Utc>>>(6), None);

    store.mark_delivered(id).await.unwrap();
    let delivered: Option<DateTime<Utc>> = client
        .query_one(
            "SELECT event_delivered_at FROM raw_market_data WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap()
        .get(0);
    assert!(delivered.is_some());
}

#[tokio::test]
async fn only_due_undelivered_rows_are_claimed_and_each_once_per_lease() {
    let (_db, store) = migrated().await;
    let due_a = Uuid::now_v7();
    let due_b = Uuid::now_v7();
    let not_yet = Uuid::now_v7();
    let delivered = Uuid::now_v7();
    store
        .insert_raw(due_a, &fetched("A"), ago(30))
        .await
        .unwrap();
    store
        .insert_raw(due_b, &fetched("B"), ago(20))
        .await
        .unwrap();
    store
        .insert_raw(not_yet, &fetched("C"), ago(-30))
        .await
        .unwrap();
    store
        .insert_raw(delivered, &fetched("D"), ago(30))
        .await
        .unwrap();
    store.mark_delivered(delivered).await.unwrap();

    let claimed = store
        .claim_undelivered(10, Duration::from_secs(60))
        .await
        .unwrap();
    let ids: Vec<Uuid> = claimed.iter().map(|e| e.raw_response_id).collect();
    assert_eq!(ids, [due_a, due_b], "oldest due first, nothing else");
    assert_eq!(claimed[0].symbol.as_str(), "A");
    assert_eq!(claimed[0].price.to_string(), "261.7412");
    assert_eq!(claimed[0].source, "simulated");

    let again = store
        .claim_undelivered(10, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(again.is_empty(), "leased rows are not claimed twice");
}

#[tokio::test]
async fn released_rows_are_due_again_after_their_delay_not_the_lease() {
    let (_db, store) = migrated().await;
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    store.insert_raw(a, &fetched("A"), ago(5)).await.unwrap();
    store.insert_raw(b, &fetched("B"), ago(5)).await.unwrap();
    let lease = Duration::from_secs(600);
    assert_eq!(store.claim_undelivered(10, lease).await.unwrap().len(), 2);
    store.mark_delivered(b).await.unwrap();
    store.release(&[a, b], Duration::ZERO).await.unwrap();
    let again = store.claim_undelivered(10, lease).await.unwrap();
    let ids: Vec<Uuid> = again.iter().map(|e| e.raw_response_id).collect();
    assert_eq!(
        ids,
        [a],
        "the undelivered row is due again, the delivered one is not"
    );
    store.release(&[a], Duration::from_secs(600)).await.unwrap();
    assert!(store.claim_undelivered(10, lease).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_claim_respects_its_limit() {
    let (_db, store) = migrated().await;
    for s in ["A", "B", "C"] {
        store
            .insert_raw(Uuid::now_v7(), &fetched(s), ago(5))
            .await
            .unwrap();
    }
    let first = store
        .claim_undelivered(2, Duration::from_secs(60))
        .await
        .unwrap();
    let rest = store
        .claim_undelivered(2, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!((first.len(), rest.len()), (2, 1));
}

#[tokio::test]
async fn an_unreachable_database_is_unavailable_not_a_hang() {
    let port = harness::redis::free_port();
    let store = PostgresStore::new(&DatabaseConfig {
        url: SecretString::from(format!("postgres://postgres@127.0.0.1:{port}/x")),
        pool_size: 1,
        migrate_on_start: false,
        timeout: Duration::from_secs(6),
        ssl_mode: SslMode::Prefer,
        ca_file: None,
    })
    .unwrap();
    let err = store.ping().await.unwrap_err();
    assert!(err.to_string().starts_with("database unavailable"), "{err}");
}

#[tokio::test]
async fn no_statement_runs_longer_than_the_statement_timeout() {
    let (_db, store) = migrated().await;
    let client = store.pool().get().await.unwrap();
    let timeout: String = client
        .query_one("SHOW statement_timeout", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(timeout, "5s");
    let err = client
        .simple_query("SELECT pg_sleep(30)")
        .await
        .expect_err("cancelled by the server");
    assert_eq!(
        err.as_db_error().map(|e| e.code().code()),
        Some("57014"),
        "query_canceled: {err}"
    );
}
