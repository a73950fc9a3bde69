//! The functions' database roles (`migrations/bootstrap/roles.sql`, run by the owner after the
//! migrations): each function works with its own role, and no role may run DDL or write what
//! its function does not write.

use std::time::Duration;

use chrono::Utc;
use harness::TestApp;
use harness::postgres::{TestDb, connect};
use harness::price_events::{event, msk_event, records_of};
use market_data::domain::{PriceEvent, Symbol};
use market_data::providers::Simulated;
use market_data::store::{DatabaseConfig, PostgresStore, PriceStore, SslMode};
use rust_decimal::Decimal;
use secrecy::SecretString;
use tokio_postgres::error::SqlState;
use uuid::Uuid;

const ROLES_SQL: &str = include_str!("../../migrations/bootstrap/roles.sql");
pub(crate) const ROLES: [&str; 3] = ["mdb_api", "mdb_consumer", "mdb_poller"];

/// A fresh database, migrated by its owner, with the roles bootstrapped (twice: the bootstrap
/// must be idempotent).
async fn bootstrapped() -> TestDb {
    let db = TestDb::create().await;
    owner_store(&db)
        .migrate()
        .await
        .expect("migrations as the owner");
    let owner = db.client().await;
    for _ in 0..2 {
        owner
            .batch_execute(ROLES_SQL)
            .await
            .expect("roles.sql as the owner");
    }
    db
}

fn store_at(url: String) -> PostgresStore {
    PostgresStore::new(&DatabaseConfig {
        url: SecretString::from(url),
        pool_size: 2,
        migrate_on_start: false,
        ssl_mode: SslMode::Prefer,
        ca_file: None,
        timeout: std::time::Duration::from_secs(6),
    })
    .expect("store")
}

fn owner_store(db: &TestDb) -> PostgresStore {
    store_at(db.url.clone())
}

/// `db`'s URL with `role` as the user (the stack trusts loopback: no password).
fn url_as(db: &TestDb, role: &str) -> String {
    let url = db.url.replacen("://postgres@", &format!("://{role}@"), 1);
    assert_ne!(
        url, db.url,
        "the test database's URL names the postgres user"
    );
    url
}

/// The SQLSTATE of `sql` run by `client`, which must fail (also `db_migrate`'s check of the
/// roles it readies).
pub(crate) async fn refused(client: &tokio_postgres::Client, sql: &str) -> SqlState {
    let err = client
        .batch_execute(sql)
        .await
        .expect_err(&format!("{sql} must be refused"));
    err.code()
        .cloned()
        .unwrap_or_else(|| panic!("{sql}: {err}"))
}

#[tokio::test]
async fn the_api_role_can_neither_create_tables_nor_write_price_points() {
    let db = bootstrapped().await;
    let api = connect(&url_as(&db, "mdb_api")).await;
    // It connects and reads what the API reads.
    api.batch_execute("SELECT count(*) FROM price_points; SELECT count(*) FROM moving_averages")
        .await
        .unwrap();
    for sql in [
        "CREATE TABLE intruder (i int)",
        "CREATE TEMP TABLE intruder (i int)",
        "INSERT INTO price_points (raw_response_id, symbol, price, quote_time, source)
         VALUES (gen_random_uuid(), 'AAPL', 1, now(), 'x')",
        "DELETE FROM raw_market_data",
        "INSERT INTO dead_letters (topic, partition, \"offset\", payload, reason)
         VALUES ('t', 0, 0, '', 'r')",
    ] {
        assert_eq!(
            refused(&api, sql).await,
            SqlState::INSUFFICIENT_PRIVILEGE,
            "{sql}"
        );
    }
}

#[tokio::test]
async fn no_function_role_may_change_the_schema() {
    let db = bootstrapped().await;
    for role in ROLES {
        let client = connect(&url_as(&db, role)).await;
        for sql in [
            "CREATE TABLE intruder (i int)",
            "CREATE SCHEMA intruder",
            "ALTER TABLE raw_market_data ADD COLUMN intruder int",
            "DROP TABLE dead_letters",
            "TRUNCATE price_points",
        ] {
            assert_eq!(
                refused(&client, sql).await,
                SqlState::INSUFFICIENT_PRIVILEGE,
                "{role}: {sql}"
            );
        }
    }
}

#[tokio::test]
async fn the_api_serves_a_miss_stores_it_and_marks_it_delivered_as_its_role() {
    let db = bootstrapped().await;
    let app = TestApp::builder()
        .kafka()
        .env("DATABASE_URL", &url_as(&db, "mdb_api"))
        .build()
        .await;
    let quote = app.get("/prices/latest?symbol=AAPL").await;
    assert_eq!(quote.status, 200, "{}", quote.text);
    assert_eq!(quote.json["cached"], false, "{}", quote.json);

    let owner = db.client().await;
    let mut delivered = 0;
    for _ in 0..100 {
        delivered = owner
            .query_one(
                "SELECT count(*) FROM raw_market_data WHERE event_delivered_at IS NOT NULL",
                &[],
            )
            .await
            .unwrap()
            .get::<_, i64>(0);
        if delivered == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(delivered, 1, "the raw row stored and its delivery marked");
    let history = app.get("/prices/history?symbol=AAPL").await;
    assert_eq!(history.status, 200, "{}", history.text);
}

#[tokio::test]
async fn the_consumer_consumes_a_batch_as_its_role() {
    let db = bootstrapped().await;
    let app = TestApp::builder()
        .env("DATABASE_URL", &url_as(&db, "mdb_consumer"))
        .env("MA_WINDOWS", "sma:3")
        .build()
        .await;
    let events: Vec<PriceEvent> = (0..5)
        .map(|i| event("AAPL", 60 + i * 60, Decimal::from(100 + i)))
        .collect();
    let mut records = records_of(&events, 0);
    records.push((0, 99, b"not a price event".to_vec()));
    let report = ma_consumer::handle(&app.services.consumer, &msk_event("price-events", &records))
        .await
        .expect("the batch is consumed");
    assert_eq!((report.points_added, report.dead_letters), (5, 1));

    // A late point rewrites the averages after it (the upsert's UPDATE).
    let late = [event("AAPL", 0, Decimal::from(50))];
    ma_consumer::handle(
        &app.services.consumer,
        &msk_event("price-events", &records_of(&late, 100)),
    )
    .await
    .expect("the late point is consumed");
    let ma = app.get("/prices/moving-average?symbol=AAPL&window=3").await;
    assert_eq!(ma.status, 200, "{}", ma.text);
    assert_eq!(ma.json["value"].as_f64(), Some(103.0));
}

#[tokio::test]
async fn the_poller_stores_claims_releases_and_marks_as_its_role() {
    let db = bootstrapped().await;
    let poller = store_at(url_as(&db, "mdb_poller"));
    let fetched = Simulated.quote_at(&Symbol::parse("MSFT").unwrap(), Utc::now());
    let id = Uuid::now_v7();
    poller
        .insert_raw(id, &fetched, Utc::now() - chrono::Duration::seconds(1))
        .await
        .unwrap();
    let claimed = poller
        .claim_undelivered(10, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(
        claimed
            .iter()
            .map(|e| e.raw_response_id)
            .collect::<Vec<_>>(),
        [id]
    );
    poller.release(&[id], Duration::ZERO).await.unwrap();
    poller.mark_delivered(id).await.unwrap();
    assert!(
        poller
            .claim_undelivered(10, Duration::from_secs(30))
            .await
            .unwrap()
            .is_empty()
    );
    // It writes raw rows only.
    let client = connect(&url_as(&db, "mdb_poller")).await;
    assert_eq!(
        refused(&client, "SELECT count(*) FROM price_points").await,
        SqlState::INSUFFICIENT_PRIVILEGE
    );
}
