//! The DynamoDB job store against DynamoDB Local: create, read, list with pagination,
//! conditional-update conflicts, delete. Each test has a table of its own.

use std::collections::BTreeSet;

use chrono::Utc;
use harness::dynamodb::create_jobs_table;
use market_data::domain::{Job, JobId, JobStatus};
use market_data::domain::{ProviderId, Symbol};
use market_data::jobs::{JobStore, JobStoreError};

fn job(symbols: &[&str], interval: u32) -> Job {
    Job::new(
        symbols.iter().map(|s| Symbol::parse(s).unwrap()).collect(),
        interval,
        ProviderId::Finnhub,
        JobStatus::Active,
        Utc::now(),
    )
}

#[tokio::test]
async fn a_created_job_reads_back_the_same_and_ids_are_unique() {
    let store = create_jobs_table().await;
    let j = job(&["AAPL", "BRK.B", "BINANCE:BTCUSDT"], 70);
    store.create(&j).await.unwrap();
    // DynamoDB keeps timestamps as RFC 3339 text: compare at that precision.
    let back = store.get(&j.id).await.unwrap().expect("stored");
    assert_eq!(back, j);
    assert_eq!(store.create(&j).await, Err(JobStoreError::Conflict));
    assert_eq!(store.get(&JobId::generate()).await.unwrap(), None);
    store.ping().await.unwrap();
}

#[tokio::test]
async fn creating_the_table_twice_is_fine() {
    let store = create_jobs_table().await;
    store.create_table().await.unwrap();
    store.delete_table().await.unwrap();
}

#[tokio::test]
async fn listing_pages_through_every_job_once() {
    let store = create_jobs_table().await;
    let mut ids = BTreeSet::new();
    for i in 0..7 {
        let j = job(&[&format!("S{i}")], 10 + i);
        store.create(&j).await.unwrap();
        ids.insert(j.id.to_string());
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = store.list(3, cursor.as_deref()).await.unwrap();
        assert!(page.jobs.len() <= 3);
        seen.extend(page.jobs.iter().map(|j| j.id.to_string()));
        pages += 1;
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
        assert!(pages < 10, "pagination does not end");
    }
    assert!(pages >= 3, "{pages} pages");
    assert_eq!(seen.len(), 7, "no job twice: {seen:?}");
    assert_eq!(seen.into_iter().collect::<BTreeSet<_>>(), ids);
    assert_eq!(
        store.list(3, Some("not-a-cursor")).await,
        Err(JobStoreError::BadCursor)
    );
}

#[tokio::test]
async fn a_write_on_a_stale_version_is_refused() {
    let store = create_jobs_table().await;
    let j = job(&["AAPL"], 10);
    store.create(&j).await.unwrap();

    let mut first = j.clone();
    first.run_count = 1;
    first.version = 2;
    let mut second = j.clone();
    second.run_count = 1;
    second.version = 2;
    // Two pollers read version 1 and both try to claim the tick: one wins.
    let (a, b) = tokio::join!(store.replace(&first, 1), store.replace(&second, 1));
    assert!(
        matches!(
            (&a, &b),
            (Ok(()), Err(JobStoreError::Conflict)) | (Err(JobStoreError::Conflict), Ok(()))
        ),
        "{a:?} {b:?}"
    );
    let stored = store.get(&j.id).await.unwrap().unwrap();
    assert_eq!((stored.version, stored.run_count), (2, 1));
    // Replacing a job that is gone is a conflict too, never a re-creation.
    let ghost = job(&["MSFT"], 10);
    assert_eq!(store.replace(&ghost, 1).await, Err(JobStoreError::Conflict));
    assert_eq!(store.get(&ghost.id).await.unwrap(), None);
}

#[tokio::test]
async fn delete_says_whether_there_was_a_job() {
    let store = create_jobs_table().await;
    let j = job(&["AAPL"], 10);
    store.create(&j).await.unwrap();
    assert!(store.delete(&j.id).await.unwrap());
    assert!(!store.delete(&j.id).await.unwrap());
    assert_eq!(store.get(&j.id).await.unwrap(), None);
}
