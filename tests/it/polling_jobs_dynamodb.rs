//! The DynamoDB job store against DynamoDB Local: create, read, list newest first through
//! its indexes, the due index, conditional writes, owner limits under concurrency, and
//! status changes racing other writers. Each test has a table of its own.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{Duration, Utc};
use harness::dynamodb::{Gate, GatedJobStore, create_jobs_table};
use market_data::domain::{Job, JobId, JobStatus, TickId, TickOutcome};
use market_data::domain::{ProviderId, Symbol};
use market_data::jobs::{JobStore, JobStoreError, LimitKind, OwnerLimits, OwnerUsage};
use market_data::scheduler::MemoryTickQueue;
use market_data::telemetry::Metrics;
use market_data::usecases::{JobAdmin, PollSettings, PollingError, Scope};

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
    let j = job(&["AAPL", "BRK.B", "BINANCE:BTCUSDT"], 70).owned_by(Some("team-a".into()));
    store.create(&j, None).await.unwrap();
    let back = store.get(&j.id).await.unwrap().expect("stored");
    assert_eq!(back, j);
    assert_eq!(store.create(&j, None).await, Err(JobStoreError::Conflict));
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
async fn listing_is_newest_first_and_pages_through_every_job_once() {
    let store = create_jobs_table().await;
    let mut made = Vec::new();
    for i in 0..7 {
        let j = job(&["AAPL"], 60 + i);
        store.create(&j, None).await.unwrap();
        made.push(j.id);
    }
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = store.list(None, 3, cursor.as_deref()).await.unwrap();
        assert!(page.jobs.len() <= 3);
        seen.extend(page.jobs.iter().map(|j| j.id.clone()));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    made.reverse();
    assert_eq!(seen, made, "every job once, newest first");
    assert_eq!(
        store.list(None, 3, Some("zz")).await,
        Err(JobStoreError::BadCursor)
    );
}

#[tokio::test]
async fn an_owners_listing_holds_only_its_jobs() {
    let store = create_jobs_table().await;
    let a: Vec<Job> = (0..3)
        .map(|_| job(&["AAPL"], 60).owned_by(Some("a".into())))
        .collect();
    let b = job(&["MSFT"], 60).owned_by(Some("b".into()));
    for j in a.iter().chain([&b]) {
        store.create(j, None).await.unwrap();
    }
    let page = store.list(Some("a"), 10, None).await.unwrap();
    let ids: Vec<JobId> = page.jobs.iter().map(|j| j.id.clone()).collect();
    assert_eq!(
        ids,
        a.iter().rev().map(|j| j.id.clone()).collect::<Vec<_>>()
    );
    let all = store.list(None, 10, None).await.unwrap();
    assert_eq!(all.jobs.len(), 4);
}

#[tokio::test]
async fn only_active_jobs_due_before_the_time_are_due_whatever_their_shard() {
    let store = create_jobs_table().await;
    let now = Utc::now();
    let mut expected = BTreeSet::new();
    for i in 0..48 {
        let mut j = job(&["AAPL"], 10);
        j.next_run_at = now + Duration::seconds(i64::from(i % 3) * 40 - 10);
        if i % 4 == 0 {
            j.status = JobStatus::Paused;
        }
        if j.status == JobStatus::Active && j.next_run_at < now + Duration::seconds(30) {
            expected.insert(j.id.clone());
        }
        store.create(&j, None).await.unwrap();
    }
    let due: BTreeSet<JobId> = store
        .due(now + Duration::seconds(30))
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(due, expected);
    assert!(expected.len() > 10);
}

#[tokio::test]
async fn a_write_on_a_stale_version_is_refused() {
    let store = create_jobs_table().await;
    let j = job(&["AAPL"], 60);
    store.create(&j, None).await.unwrap();
    let mut first = j.clone();
    first.status = JobStatus::Paused;
    first.version = 2;
    let mut second = j.clone();
    second.run_count = 1;
    second.version = 2;
    let (a, b) = tokio::join!(store.replace(&first, 1), store.replace(&second, 1));
    assert!(
        a.is_ok() != b.is_ok(),
        "exactly one of two racing writes wins: {a:?} {b:?}"
    );
    let mut ghost = job(&["MSFT"], 60);
    ghost.version = 2;
    assert_eq!(store.replace(&ghost, 1).await, Err(JobStoreError::Conflict));
}

#[tokio::test]
async fn a_delete_on_a_stale_version_is_refused() {
    let store = create_jobs_table().await;
    let j = job(&["AAPL"], 60);
    store.create(&j, None).await.unwrap();
    let mut claimed = j.clone();
    claimed.version = 2;
    store.replace(&claimed, 1).await.unwrap();
    assert_eq!(store.delete(&j, 1).await, Err(JobStoreError::Conflict));
    store.delete(&j, 2).await.unwrap();
    assert_eq!(store.get(&j.id).await.unwrap(), None);
}

#[tokio::test]
async fn an_owners_limits_hold_under_concurrent_creates() {
    let store = create_jobs_table().await;
    let limits = OwnerLimits {
        max_jobs: 3,
        max_symbol_ticks_milli: 1_000_000,
    };
    let jobs: Vec<Job> = (0..8)
        .map(|_| job(&["AAPL", "MSFT"], 60).owned_by(Some("a".into())))
        .collect();
    let results =
        futures::future::join_all(jobs.iter().map(|j| store.create(j, Some(limits)))).await;
    let created = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(created, 3, "{results:?}");
    for r in results.iter().filter(|r| r.is_err()) {
        assert!(
            matches!(r, Err(JobStoreError::LimitReached { kind: LimitKind::MaxJobs, usage, .. }) if usage.jobs == 3),
            "{r:?}"
        );
    }
    assert_eq!(
        store.usage("a").await.unwrap(),
        OwnerUsage {
            jobs: 3,
            symbol_ticks_milli: 6_000
        }
    );
    // Deleting one frees its share.
    let gone = jobs
        .iter()
        .zip(&results)
        .find(|(_, r)| r.is_ok())
        .unwrap()
        .0;
    store.delete(gone, 1).await.unwrap();
    assert_eq!(store.usage("a").await.unwrap().jobs, 2);
    let next = job(&["AAPL"], 60).owned_by(Some("a".into()));
    store.create(&next, Some(limits)).await.unwrap();
}

#[tokio::test]
async fn a_job_over_the_symbol_tick_limit_is_refused_with_the_usage() {
    let store = create_jobs_table().await;
    let limits = OwnerLimits {
        max_jobs: 100,
        max_symbol_ticks_milli: 12_000,
    };
    let first = job(&["AAPL"], 10).owned_by(Some("a".into()));
    store.create(&first, Some(limits)).await.unwrap();
    let second = job(&["MSFT", "NVDA"], 10).owned_by(Some("a".into()));
    let err = store.create(&second, Some(limits)).await.unwrap_err();
    assert_eq!(
        err,
        JobStoreError::LimitReached {
            kind: LimitKind::SymbolTicksPerMinute,
            usage: OwnerUsage {
                jobs: 1,
                symbol_ticks_milli: 6_000
            },
            limits
        }
    );
    assert_eq!(
        store.get(&second.id).await.unwrap(),
        None,
        "nothing written"
    );
}

fn admin(store: Arc<dyn JobStore>) -> JobAdmin {
    JobAdmin::new(
        store,
        Arc::new(MemoryTickQueue::new()),
        ProviderId::Simulated,
        PollSettings::default(),
        Metrics::none(),
    )
}

#[tokio::test]
async fn a_resume_racing_a_delete_does_not_bring_the_job_back() {
    let table: Arc<dyn JobStore> = Arc::new(create_jobs_table().await);
    let gate = Arc::new(Gate::default());
    let gated: Arc<dyn JobStore> = Arc::new(GatedJobStore {
        inner: Arc::clone(&table),
        gate: Arc::clone(&gate),
    });
    let mut j = job(&["AAPL"], 10);
    j.status = JobStatus::Paused;
    table.create(&j, None).await.unwrap();

    // The resume has read the paused job and is held before its write.
    gate.arm();
    let resume = tokio::spawn({
        let admin = admin(gated);
        let id = j.id.clone();
        async move { admin.resume(&Scope::All, &id).await }
    });
    gate.reached().await;
    admin(Arc::clone(&table))
        .delete(&Scope::All, &j.id)
        .await
        .unwrap();
    gate.release();

    let result = resume.await.unwrap();
    assert!(
        matches!(result, Err(PollingError::NotFound(_))),
        "{result:?}"
    );
    assert_eq!(
        table.get(&j.id).await.unwrap(),
        None,
        "the job stays deleted"
    );
    let due = table.due(Utc::now() + Duration::hours(1)).await.unwrap();
    assert!(due.iter().all(|d| d.id != j.id), "and is never polled");
}

#[tokio::test]
async fn a_pause_racing_a_resume_leaves_status_and_schedule_agreeing() {
    let table: Arc<dyn JobStore> = Arc::new(create_jobs_table().await);
    let gate = Arc::new(Gate::default());
    let gated: Arc<dyn JobStore> = Arc::new(GatedJobStore {
        inner: Arc::clone(&table),
        gate: Arc::clone(&gate),
    });
    let j = job(&["AAPL"], 10);
    table.create(&j, None).await.unwrap();

    // The pause has read the active job (version 1) and is held before its write; meanwhile
    // the job is paused and resumed by others (version 3).
    gate.arm();
    let pause = tokio::spawn({
        let admin = admin(gated);
        let id = j.id.clone();
        async move { admin.pause(&Scope::All, &id).await }
    });
    gate.reached().await;
    let other = admin(Arc::clone(&table));
    other.pause(&Scope::All, &j.id).await.unwrap();
    other.resume(&Scope::All, &j.id).await.unwrap();
    gate.release();

    let paused = pause
        .await
        .unwrap()
        .expect("the pause retries on the new version");
    assert_eq!(paused.status, JobStatus::Paused);
    assert_eq!(paused.version, 4, "written on top of the others' writes");
    let stored = table.get(&j.id).await.unwrap().unwrap();
    assert_eq!(stored.status, JobStatus::Paused);
    // A paused job is due only to count the ticks claimed before the pause, never claimed.
    let due = table.due(Utc::now() + Duration::hours(1)).await.unwrap();
    assert!(
        due.iter()
            .all(|d| d.id != j.id || (d.status == JobStatus::Paused && !d.pending.is_empty())),
        "{due:?}"
    );
}

#[tokio::test]
async fn a_ticks_outcome_is_one_item_a_claim_never_overwrites_and_a_skip_never_hides_a_run() {
    let store = create_jobs_table().await;
    let mut j = job(&["AAPL", "MSFT"], 10);
    let due = Utc::now() - Duration::seconds(5);
    let ran = TickId::new(due, "w1", 0);
    let skipped = TickId::new(due + Duration::seconds(10), "w1", 0);
    j.add_pending([ran.clone(), skipped.clone()]);
    store.create(&j, None).await.unwrap();
    assert_eq!(store.get(&j.id).await.unwrap().unwrap().pending, j.pending);

    let outcome = TickOutcome::ran(
        ran.clone(),
        due,
        [(Symbol::parse("MSFT").unwrap(), "unavailable".to_owned())],
    );
    store.record_outcome(&outcome).await.unwrap();
    // A late "not run" of the same tick (a redelivery that hit the deadline) hides nothing.
    store
        .record_outcome(&TickOutcome::not_run(ran.clone(), "deadline"))
        .await
        .unwrap();
    store
        .record_outcome(&TickOutcome::not_run(skipped.clone(), "deadline"))
        .await
        .unwrap();
    // A claim of the job (a whole-item write) leaves the outcomes alone.
    let mut claimed = j.clone();
    claimed.next_run_at = j.next_run_at + Duration::seconds(60);
    claimed.version = 2;
    store.replace(&claimed, 1).await.unwrap();

    let found = store
        .outcomes(&[ran.clone(), skipped.clone(), TickId::new(due, "w2", 0)])
        .await
        .unwrap();
    assert_eq!(found.len(), 2, "a tick that never ran has no outcome");
    assert_eq!(found[&ran], outcome);
    assert_eq!(found[&skipped].ran_at, None);
    let seen = store
        .get(&j.id)
        .await
        .unwrap()
        .unwrap()
        .with_outcomes(&found);
    assert_eq!(seen.run_count, 1);
    assert_eq!(seen.last_error.as_deref(), Some("deadline"));
    // Outcome items are in no index: not listed, never due.
    let page = store.list(None, 10, None).await.unwrap();
    assert_eq!(page.jobs.len(), 1);
    let due_now = store.due(Utc::now() + Duration::hours(1)).await.unwrap();
    assert_eq!(due_now.len(), 1);
}

#[tokio::test]
async fn outcomes_are_read_a_hundred_at_a_time() {
    let store = create_jobs_table().await;
    let start = Utc::now();
    let ids: Vec<TickId> = (0..250)
        .map(|i| TickId::new(start + Duration::seconds(i), "w", 0))
        .collect();
    for id in ids.iter().step_by(2) {
        store
            .record_outcome(&TickOutcome::ran(id.clone(), start, []))
            .await
            .unwrap();
    }
    let found = store.outcomes(&ids).await.unwrap();
    assert_eq!(found.len(), 125);
}

#[tokio::test]
async fn a_paused_job_stays_due_until_its_last_ticks_can_be_counted() {
    let store = create_jobs_table().await;
    let now = Utc::now();
    let mut j = job(&["AAPL"], 10);
    j.status = JobStatus::Paused;
    j.add_pending([TickId::new(now - Duration::seconds(30), "w", 0)]);
    store.create(&j, None).await.unwrap();
    let mut quiet = job(&["AAPL"], 10);
    quiet.status = JobStatus::Paused;
    store.create(&quiet, None).await.unwrap();
    // Final 70 s after its last tick: 40 s from now.
    let due: Vec<JobId> = store
        .due(now + Duration::seconds(45))
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(due, [j.id.clone()]);
    assert!(
        store
            .due(now + Duration::seconds(35))
            .await
            .unwrap()
            .is_empty()
    );
}
