//! The local runner restarted as developers restart it, a real process on the real stack:
//! SIGTERM (Ctrl-C, `kill`) and SIGKILL, five times in a row, with one consumer group. Each
//! time, a new event's average is stored within 10 s of its publication, and nothing is
//! lost or counted twice.

use std::time::{Duration, Instant};

use harness::postgres::TestDb;
use harness::runner::Runner;
use harness::{kafka, unique_name};

/// How long a new event may take from publication to its stored point and average.
const CONSUMED_WITHIN: Duration = Duration::from_secs(10);

async fn count(db: &tokio_postgres::Client, sql: &str, symbol: &str) -> i64 {
    db.query_one(sql, &[&symbol]).await.unwrap().get(0)
}

#[tokio::test]
async fn five_restarts_of_the_runner_by_sigterm_and_sigkill_lose_and_double_nothing() {
    let db = TestDb::create().await;
    let topic = kafka::create_topic(3).await;
    let logs = std::env::temp_dir().join(unique_name("mdb_runner"));
    std::fs::create_dir_all(&logs).unwrap();
    let env = [
        ("DATABASE_URL", db.url.clone()),
        ("DATABASE_MIGRATE_ON_START", "true".into()),
        ("KAFKA_BOOTSTRAP_SERVERS", kafka::bootstrap()),
        ("KAFKA_TOPIC", topic.clone()),
        ("LOCAL_CONSUMER_GROUP", unique_name("restarts")),
        ("LOCAL_CONSUMER_BATCH_WAIT_MS", "100".into()),
        // A one-point average: each new event makes one.
        ("MA_WINDOWS", "sma:1".into()),
    ];
    let client = db.client().await;
    let http = reqwest::Client::new();
    let mut symbols = Vec::new();
    for round in 0..5 {
        let runner = Runner::start(&env, &logs, &format!("round{round}")).await;
        let symbol = format!("RST{round}");
        let answer = http
            .get(format!(
                "{}/prices/latest?symbol={symbol}&provider=simulated",
                runner.base_url
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "{}", runner.log_text());
        // A miss: stored, published (acks=all) and only then answered.
        let published = Instant::now();
        loop {
            let averages = count(
                &client,
                "SELECT count(*) FROM moving_averages WHERE symbol = $1",
                &symbol,
            )
            .await;
            if averages >= 1 {
                break;
            }
            assert!(
                published.elapsed() < CONSUMED_WITHIN,
                "round {round}: {symbol}'s average not stored within {CONSUMED_WITHIN:?} of \
                 its publication:\n{}",
                runner.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        symbols.push(symbol);
        if round % 2 == 0 {
            let status = runner.terminate(Duration::from_secs(15)).await;
            assert!(status.success(), "a clean stop on SIGTERM: {status}");
        } else {
            runner.kill();
        }
    }

    // One more start reads whatever the last one left uncommitted; nothing comes twice.
    let last = Runner::start(&env, &logs, "after").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let status = last.terminate(Duration::from_secs(15)).await;
    assert!(status.success(), "{status}");
    for symbol in &symbols {
        let raw = count(
            &client,
            "SELECT count(*) FROM raw_market_data WHERE symbol = $1",
            symbol,
        )
        .await;
        let points = count(
            &client,
            "SELECT count(*) FROM price_points WHERE symbol = $1",
            symbol,
        )
        .await;
        assert_eq!(
            (raw, points),
            (1, 1),
            "{symbol}: its quote once, as one point"
        );
    }
    let _ = std::fs::remove_dir_all(&logs);
}
