//! The poller on the real stack (DynamoDB Local, PostgreSQL, Redis, Kafka, the fake
//! Finnhub): the wake-up claims due ticks into the queue, and the queue's batches (the very
//! shape of `local/events/poller-sqs-batch.json`) run them. Jobs are created through the API;
//! the queue is the in-process one the local runner delivers from.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use harness::dynamodb::{create_jobs_table, dynamodb_endpoint};
use harness::proxy::Proxy;
use harness::{FakeProvider, Kind, Reply, TestApp, kafka};
use market_data::domain::{
    Job, JobId, JobStatus, ProviderId, Symbol, TickId, TickOutcome, next_grid_point,
};
use market_data::scheduler::{MemoryTickQueue, Tick, TickJob, sqs};
use market_data::usecases::polling::Scope;
use market_data::usecases::{RunOutcome, TickReport};
use market_data_local::poller_clock::sqs_event;
use poller::{BatchResponse, PollerOutput};
use serde_json::{Value, json};

/// The real stack with jobs in a table of this test's own; a wake-up claims `window_secs`
/// ahead.
async fn app_with(window_secs: u32, extra: &[(&str, &str)]) -> TestApp {
    let table = create_jobs_table().await;
    let mut builder = TestApp::builder()
        .postgres()
        .redis()
        .kafka()
        .finnhub()
        .env("JOBS_TABLE", table.table())
        .env("AWS_ENDPOINT_URL_DYNAMODB", &dynamodb_endpoint())
        .env("POLL_TICK_WINDOW_SECONDS", &window_secs.to_string());
    for (k, v) in extra {
        builder = builder.env(k, v);
    }
    builder.build().await
}

async fn app(window_secs: u32) -> TestApp {
    app_with(window_secs, &[]).await
}

fn queue(app: &TestApp) -> &Arc<MemoryTickQueue> {
    app.services.memory_queue().expect("the in-process queue")
}

async fn create_job(app: &TestApp, body: Value) -> String {
    let r = app.post_json("/prices/poll", &body).await;
    assert_eq!(r.status, 202, "{}", r.text);
    r.json["job_id"].as_str().unwrap().to_owned()
}

/// Hands `ticks` to the poller as one SQS batch, as the event source mapping would.
async fn deliver(app: &TestApp, ticks: &[Tick], deadline: Option<Instant>) -> BatchResponse {
    let bodies: Vec<(String, String)> = ticks
        .iter()
        .enumerate()
        .map(|(i, t)| (format!("m{i}"), sqs::encode(t).unwrap()))
        .collect();
    let out = poller::handle_json(
        &app.services.wake_up,
        &app.services.ticks,
        sqs_event(&bodies),
        deadline,
    )
    .await
    .expect("a batch is handled");
    match out {
        PollerOutput::Batch(b) => b,
        PollerOutput::WakeUp(w) => panic!("a batch answered as a wake-up: {w:?}"),
    }
}

/// The rule's input, from the sample event of `local/events/`.
async fn wake_up(app: &TestApp) -> market_data::usecases::WakeUpReport {
    let event: Value =
        serde_json::from_str(include_str!("../../local/events/poller-wake-up.json")).unwrap();
    match poller::handle_json(&app.services.wake_up, &app.services.ticks, event, None)
        .await
        .expect("the wake-up succeeds")
    {
        PollerOutput::WakeUp(r) => r,
        PollerOutput::Batch(_) => panic!("a wake-up answered as a batch"),
    }
}

async fn raw_rows(app: &TestApp, symbol: &str) -> i64 {
    let client = app.db.as_ref().unwrap().client().await;
    client
        .query_one(
            "SELECT count(*) FROM raw_market_data WHERE symbol = $1",
            &[&symbol],
        )
        .await
        .unwrap()
        .get(0)
}

/// The job as the API shows it: its counted runs and the outcomes of its pending ticks.
async fn stored(app: &TestApp, id: &str) -> Job {
    app.services
        .api
        .jobs
        .get(&Scope::All, &JobId::parse(id).unwrap())
        .await
        .expect("the job is stored")
}

#[tokio::test]
async fn a_new_jobs_first_tick_is_at_once_fetches_each_symbol_once_stores_and_publishes() {
    let app = app(20).await;
    let created = Utc::now();
    let job_id = create_job(
        &app,
        json!({"symbols": ["aapl", "MSFT", "nvda", "AAPL"], "interval": 60, "provider": "finnhub"}),
    )
    .await;
    let visible = queue(&app).receive(10);
    assert_eq!(visible.len(), 1, "the first tick is visible at once");
    let response = deliver(&app, &visible, None).await;
    assert!(response.batch_item_failures.is_empty());
    let report = &response.reports[0];
    assert_eq!(
        (report.outcome, report.calls, report.fetched),
        (RunOutcome::Ran, 3, 3)
    );
    for s in ["AAPL", "MSFT", "NVDA"] {
        assert_eq!(app.finnhub.calls(s), 1, "{s}");
        assert_eq!(raw_rows(&app, s).await, 1, "{s}");
    }
    let records = kafka::consume(app.topic.as_deref().unwrap(), 3, Duration::from_secs(20)).await;
    let mut keys: Vec<String> = records.iter().filter_map(|r| r.key.clone()).collect();
    keys.sort();
    assert_eq!(keys, ["AAPL", "MSFT", "NVDA"]);
    let job = app.get(&format!("/prices/poll/{job_id}")).await;
    assert_eq!(job.json["run_count"], 1);
    assert_eq!(job.json["last_error"], Value::Null);
    // The rest of the claimed 20 s, if it holds a point of the 60 s grid, waits in the queue.
    for later in queue(&app).drain() {
        assert_eq!(later.due_at.timestamp() % 60, 0, "{later:?}");
        // Due after the first tick (it may have come due while the test ran).
        assert!(later.due_at > created, "{later:?}");
    }
}

#[tokio::test]
async fn sub_minute_ticks_arrive_through_the_queue_on_the_grid_and_on_time() {
    let app = app(25).await;
    let job_id = create_job(&app, json!({"symbols": ["AAPL", "TSLA"], "interval": 10})).await;
    let q = queue(&app);
    // Play the event source for 26 s: deliver each tick when its delay is over.
    let mut reports: Vec<TickReport> = Vec::new();
    let end = tokio::time::Instant::now() + Duration::from_secs(26);
    while tokio::time::Instant::now() < end {
        let batch = q.receive(10);
        if batch.is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        reports.extend(deliver(&app, &batch, None).await.reports);
    }
    assert!((3..=4).contains(&reports.len()), "{reports:?}");
    for pair in reports[1..].windows(2) {
        let due = (pair[1].due_at - pair[0].due_at).num_milliseconds();
        assert_eq!(due, 10_000, "due times are exactly an interval apart");
    }
    for r in &reports[1..] {
        assert_eq!(r.due_at.timestamp() % 10, 0, "on the 10 s grid");
        assert_eq!(r.due_at.timestamp_subsec_millis(), 0);
    }
    for r in &reports {
        let late = (r.started_at - r.due_at).num_milliseconds();
        assert!(
            (0..2_000).contains(&late),
            "tick started {late} ms after it was due"
        );
    }
    let n = reports.len();
    assert_eq!(app.finnhub.calls("AAPL"), n);
    assert_eq!(raw_rows(&app, "TSLA").await, i64::try_from(n).unwrap());
    let job = app.get(&format!("/prices/poll/{job_id}")).await;
    assert_eq!(job.json["run_count"], n);
}

/// Stores `count` active jobs on `symbols`, due on the grid of `interval`, as a wake-up finds
/// them (not through the API, whose first tick is each job's own).
async fn store_jobs(app: &TestApp, count: usize, symbols: &[&str], interval: u32) -> Vec<Job> {
    let store = app.services.api.jobs.jobs();
    let now = Utc::now();
    let mut jobs = Vec::new();
    for _ in 0..count {
        let mut j = Job::new(
            symbols.iter().map(|s| Symbol::parse(s).unwrap()).collect(),
            interval,
            ProviderId::Finnhub,
            JobStatus::Active,
            now,
        );
        j.next_run_at = next_grid_point(now, interval);
        store.create(&j, None).await.unwrap();
        jobs.push(j);
    }
    jobs
}

#[tokio::test]
async fn a_hundred_jobs_on_one_symbol_make_one_provider_call_per_tick() {
    let app = app(60).await;
    let jobs = store_jobs(&app, 100, &["AAPL"], 10).await;
    let report = wake_up(&app).await;
    assert_eq!(report.claimed_jobs, 100, "{report:?}");
    let ticks = queue(&app).drain();
    assert_eq!(ticks.len(), report.messages);
    // One shared tick per due time, naming every job once and AAPL once.
    let mut due: Vec<_> = ticks.iter().map(|t| t.due_at).collect();
    due.dedup();
    assert_eq!(due.len(), ticks.len(), "one message per due time");
    assert!(
        (6..=7).contains(&ticks.len()),
        "a minute (plus the overlap) of 10 s ticks"
    );
    for t in &ticks {
        assert_eq!(t.jobs.len(), 100);
        assert_eq!(t.symbols.len(), 1);
    }
    // Run the first two (the others lie in the future).
    let response = deliver(&app, &ticks[..2], None).await;
    assert_eq!(
        app.finnhub.calls("AAPL"),
        2,
        "one call per tick for 100 jobs"
    );
    assert!(
        response
            .reports
            .iter()
            .all(|r| r.calls == 1 && r.jobs == 100)
    );
    for j in &jobs {
        let s = stored(&app, j.id.as_str()).await;
        assert_eq!(s.run_count, 2, "every job sees each tick's outcome");
        let raw = app
            .services
            .api
            .jobs
            .jobs()
            .get(&j.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (raw.version, raw.run_count),
            (2, 0),
            "the ticks wrote their outcome once, not on each of the 100 jobs"
        );
    }
}

#[tokio::test]
async fn a_wake_up_counts_the_outcomes_of_final_ticks_in_its_claims_and_a_paused_job_once() {
    let app = app(20).await;
    let store = app.services.api.jobs.jobs();
    let now = Utc::now();
    let old = now - chrono::Duration::seconds(120);
    let ids: Vec<TickId> = (0..3)
        .map(|i| TickId::new(old + chrono::Duration::seconds(10 * i), "earlier", 0))
        .collect();
    let symbols = vec![
        Symbol::parse("AAPL").unwrap(),
        Symbol::parse("MSFT").unwrap(),
    ];
    let mut active = Job::new(
        symbols.clone(),
        10,
        ProviderId::Finnhub,
        JobStatus::Active,
        now,
    );
    active.next_run_at = next_grid_point(now, 10);
    active.add_pending(ids.clone());
    let mut paused = Job::new(symbols, 10, ProviderId::Finnhub, JobStatus::Paused, now);
    paused.add_pending(ids[..2].to_vec());
    store.create(&active, None).await.unwrap();
    store.create(&paused, None).await.unwrap();
    store
        .record_outcome(&TickOutcome::ran(ids[0].clone(), old, []))
        .await
        .unwrap();
    let msft_down = [(Symbol::parse("MSFT").unwrap(), "unavailable".to_owned())];
    store
        .record_outcome(&TickOutcome::ran(
            ids[1].clone(),
            ids[1].due_at(),
            msft_down,
        ))
        .await
        .unwrap();
    // The third tick never ran: it has no outcome.

    let report = wake_up(&app).await;
    assert_eq!(report.claimed_jobs, 1, "{report:?}");
    assert_eq!(
        report.counted, 5,
        "three final ticks of one job, two of the other"
    );
    let raw = store.get(&active.id).await.unwrap().unwrap();
    assert_eq!(raw.run_count, 2);
    assert_eq!(raw.last_run_at, Some(ids[1].due_at()));
    assert_eq!(raw.last_error.as_deref(), Some("MSFT: unavailable"));
    assert!(
        raw.pending
            .iter()
            .all(|t| t.due_at() > old + chrono::Duration::seconds(20)),
        "only the newly claimed ticks are pending: {:?}",
        raw.pending
    );
    assert_eq!(raw.pending.len(), report.ticks);
    let raw = store.get(&paused.id).await.unwrap().unwrap();
    assert_eq!((raw.run_count, raw.pending.len()), (2, 0));
    assert_eq!(raw.status, JobStatus::Paused);
    let due = store
        .due(Utc::now() + chrono::Duration::days(1))
        .await
        .unwrap();
    assert!(
        due.iter().all(|d| d.id != paused.id),
        "counted, it leaves the due index"
    );

    let again = wake_up(&app).await;
    assert_eq!(again.counted, 0, "nothing is counted twice: {again:?}");
    assert_eq!(store.get(&active.id).await.unwrap().unwrap().run_count, 2);
}

#[tokio::test]
async fn two_wake_ups_racing_claim_each_tick_once() {
    let app = app(60).await;
    store_jobs(&app, 20, &["AAPL", "MSFT"], 20).await;
    let (a, b) = tokio::join!(wake_up(&app), wake_up(&app));
    assert_eq!(a.claimed_jobs + b.claimed_jobs, 20, "{a:?} {b:?}");
    let ticks = queue(&app).drain();
    let job_ticks: usize = ticks.iter().map(|t| t.jobs.len()).sum();
    assert_eq!(job_ticks, a.ticks + b.ticks);
    // Three or four points of the 20 s grid fall in 65 s, depending on the phase. Each racing
    // wake-up sends the jobs it won, so one due time may come in two messages; across them,
    // every job is named exactly once per due time.
    let mut by_due: std::collections::BTreeMap<_, Vec<_>> = std::collections::BTreeMap::new();
    for t in &ticks {
        by_due
            .entry(t.due_at)
            .or_default()
            .extend(t.jobs.iter().map(|j| j.id.clone()));
    }
    assert!((3..=4).contains(&by_due.len()), "{ticks:?}");
    for (due, ids) in &by_due {
        let mut distinct = ids.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(
            (ids.len(), distinct.len()),
            (20, 20),
            "every job once at {due}"
        );
    }
    assert_eq!(job_ticks, 20 * by_due.len(), "claimed once");
    // Claimed: the next wake-up has nothing to send.
    let again = wake_up(&app).await;
    assert_eq!(again.ticks, 0, "{again:?}");
}

#[tokio::test]
async fn a_paused_or_deleted_job_is_not_claimed() {
    let app = app(60).await;
    let paused = create_job(&app, json!({"symbols": ["AAPL"], "interval": 10})).await;
    let deleted = create_job(&app, json!({"symbols": ["MSFT"], "interval": 10})).await;
    queue(&app).drain();
    let r = app
        .post_json(&format!("/prices/poll/{paused}/pause"), &json!({}))
        .await;
    assert_eq!((r.status, r.json["status"].as_str()), (200, Some("paused")));
    assert_eq!(
        app.delete(&format!("/prices/poll/{deleted}")).await.status,
        204
    );
    // Far enough ahead that the claimed window of creation has passed.
    let report = wake_up(&app).await;
    assert_eq!((report.due_jobs, report.ticks), (0, 0), "{report:?}");

    // Resumed: due at once again.
    let r = app
        .post_json(&format!("/prices/poll/{paused}/resume"), &json!({}))
        .await;
    assert_eq!((r.status, r.json["status"].as_str()), (200, Some("active")));
    let visible = queue(&app).receive(10);
    assert_eq!(visible.len(), 1);
    assert_eq!(visible[0].jobs[0].id.as_str(), paused);
}

#[tokio::test]
async fn a_tick_older_than_its_interval_is_dropped_and_counted_never_run() {
    let app = app(20).await;
    let job_id = create_job(&app, json!({"symbols": ["AAPL"], "interval": 10})).await;
    queue(&app).drain();
    let due_at = Utc::now() - chrono::Duration::seconds(25);
    let late = Tick {
        id: TickId::new(due_at, "test", 0),
        due_at,
        expires_at: due_at + chrono::Duration::seconds(10),
        provider: ProviderId::Finnhub,
        symbols: vec![Symbol::parse("AAPL").unwrap()],
        jobs: vec![TickJob {
            id: JobId::parse(&job_id).unwrap(),
            symbols: vec![0],
        }],
    };
    let response = deliver(&app, &[late], None).await;
    assert_eq!(response.reports[0].outcome, RunOutcome::Dropped);
    assert!(response.batch_item_failures.is_empty(), "not retried");
    assert_eq!(app.finnhub.calls("AAPL"), 0);
    assert_eq!(stored(&app, &job_id).await.run_count, 0);
}

#[tokio::test]
async fn a_tick_too_near_the_deadline_is_left_in_the_queue_and_recorded() {
    let app = app(20).await;
    let job_id = create_job(&app, json!({"symbols": ["AAPL"], "interval": 60})).await;
    let ticks = queue(&app).receive(10);
    // The default margin is 2 s: an invocation with 1.5 s left starts no tick.
    let deadline = Instant::now() + Duration::from_millis(1_500);
    let response = deliver(&app, &ticks, Some(deadline)).await;
    assert_eq!(response.reports[0].outcome, RunOutcome::Skipped);
    assert_eq!(
        response.batch_item_failures.len(),
        1,
        "reported, so SQS delivers it again"
    );
    assert_eq!(app.finnhub.calls("AAPL"), 0);
    let job = stored(&app, &job_id).await;
    let error = job.last_error.expect("the skip is recorded");
    assert!(error.contains("deadline"), "{error}");
    // Delivered again with time to spare, it runs (it is still within its interval).
    let response = deliver(&app, &ticks, Some(Instant::now() + Duration::from_secs(30))).await;
    assert_eq!(response.reports[0].outcome, RunOutcome::Ran);
    assert_eq!(stored(&app, &job_id).await.last_error, None);
}

#[tokio::test]
async fn a_wake_up_at_its_deadline_claims_nothing_and_leaves_the_jobs_due() {
    let app = app(60).await;
    store_jobs(&app, 5, &["AAPL"], 10).await;
    let deadline = Instant::now() + Duration::from_millis(500);
    let out = poller::handle_json(
        &app.services.wake_up,
        &app.services.ticks,
        json!({"wake_up": true}),
        Some(deadline),
    )
    .await
    .unwrap();
    let PollerOutput::WakeUp(report) = out else {
        panic!("not a wake-up")
    };
    assert_eq!((report.claimed_jobs, report.left_due), (0, 5), "{report:?}");
    assert!(queue(&app).is_empty());
    let later = wake_up(&app).await;
    assert_eq!(later.claimed_jobs, 5, "still due for the next wake-up");
}

#[tokio::test]
async fn a_failing_symbol_is_reported_and_the_others_are_still_polled() {
    let app = app(20).await;
    app.finnhub.reply("ZZZZ", Reply::Zeros);
    app.finnhub.reply("MSFT", Reply::Status(500, vec![]));
    let job_id = create_job(
        &app,
        json!({"symbols": ["AAPL", "ZZZZ", "MSFT"], "interval": 60}),
    )
    .await;
    let ticks = queue(&app).receive(10);
    let report = &deliver(&app, &ticks, None).await.reports[0];
    assert_eq!(report.fetched, 1);
    let failed: Vec<&str> = report.failures.iter().map(|f| f.symbol.as_str()).collect();
    assert_eq!(failed, ["MSFT", "ZZZZ"]);
    assert_eq!(raw_rows(&app, "AAPL").await, 1);
    let error = stored(&app, &job_id).await.last_error.expect("recorded");
    assert!(error.contains("MSFT") && error.contains("ZZZZ"), "{error}");
}

#[tokio::test]
async fn events_that_are_neither_a_wake_up_nor_a_batch_are_refused() {
    let app = app(20).await;
    for bad in [
        json!({}),
        json!({"job_id": "poll_x"}),
        json!({"wake_up": false}),
        json!("x"),
    ] {
        assert!(
            poller::handle_json(
                &app.services.wake_up,
                &app.services.ticks,
                bad.clone(),
                None
            )
            .await
            .is_err(),
            "{bad}"
        );
    }
    // A message that is not a tick is dropped, not retried forever.
    let out = poller::handle_json(
        &app.services.wake_up,
        &app.services.ticks,
        sqs_event(&[("m1".into(), "not json".into())]),
        None,
    )
    .await
    .unwrap();
    let PollerOutput::Batch(b) = out else {
        panic!("not a batch")
    };
    assert!(b.batch_item_failures.is_empty() && b.reports.is_empty());
}

#[tokio::test]
async fn the_sample_batch_event_runs_its_tick() {
    let app = app(20).await;
    let event: Value =
        serde_json::from_str(include_str!("../../local/events/poller-sqs-batch.json")).unwrap();
    let out = poller::handle_json(&app.services.wake_up, &app.services.ticks, event, None)
        .await
        .unwrap();
    let PollerOutput::Batch(b) = out else {
        panic!("not a batch")
    };
    // Its jobs do not exist here: the symbols are fetched, nothing is recorded on them.
    assert_eq!(b.reports[0].outcome, RunOutcome::Ran);
    assert_eq!(b.reports[0].calls, 2);
}

#[tokio::test]
async fn finnhub_calls_stay_within_the_configured_budget() {
    let app = app_with(20, &[("POLL_FINNHUB_CALLS_PER_MINUTE", "2")]).await;
    let symbols = ["AAPL", "MSFT", "NVDA", "TSLA"];
    create_job(
        &app,
        json!({"symbols": symbols, "interval": 10, "provider": "finnhub"}),
    )
    .await;
    let ticks = queue(&app).receive(10);
    let report = &deliver(&app, &ticks, None).await.reports[0];
    // Two calls are allowed at once; the next would only be allowed after the tick expired.
    assert_eq!(report.fetched, 2, "{report:?}");
    assert_eq!(report.failures.len(), 2);
    assert!(
        report.failures.iter().all(|f| f.error.contains("budget")),
        "{report:?}"
    );
    let calls: usize = symbols.iter().map(|s| app.finnhub.calls(s)).sum();
    assert_eq!(calls, 2);
}

#[tokio::test]
async fn a_tick_on_a_provider_with_a_batch_endpoint_fetches_its_symbols_in_one_call() {
    let twelvedata = FakeProvider::start(Kind::TwelveData).await;
    let table = create_jobs_table().await;
    let app = TestApp::builder()
        .postgres()
        .kafka()
        .provider(&twelvedata)
        .env("JOBS_TABLE", table.table())
        .env("AWS_ENDPOINT_URL_DYNAMODB", &dynamodb_endpoint())
        .build()
        .await;
    create_job(
        &app,
        json!({"symbols": ["AAPL", "MSFT", "NVDA"], "interval": 60, "provider": "twelvedata"}),
    )
    .await;
    let ticks = queue(&app).receive(10);
    let report = &deliver(&app, &ticks, None).await.reports[0];
    assert_eq!((report.calls, report.fetched), (1, 3), "{report:?}");
    assert_eq!(twelvedata.requests(), 1, "one batch call for three symbols");
    for s in ["AAPL", "MSFT", "NVDA"] {
        assert_eq!(raw_rows(&app, s).await, 1, "{s}");
    }
}

#[tokio::test]
async fn with_a_claim_lead_a_wake_up_claims_the_minute_after_next_ahead_of_time() {
    let app = app_with(20, &[("POLL_CLAIM_LEAD_SECONDS", "30")]).await;
    store_jobs(&app, 1, &["AAPL"], 10).await;
    let now = Utc::now();
    let report = wake_up(&app).await;
    assert_eq!(report.claimed_jobs, 1, "{report:?}");
    let ticks = queue(&app).drain();
    let last = ticks.iter().map(|t| t.due_at).max().expect("ticks claimed");
    // Without the lead the window ends 25 s out (20 s and the overlap); with it, 55 s.
    assert!(
        last > now + chrono::Duration::seconds(40),
        "claimed through the lead: last tick due {last}, now {now}"
    );
    assert!(last <= now + chrono::Duration::seconds(56), "{last}");
    let again = wake_up(&app).await;
    assert_eq!(again.ticks, 0, "nothing claimed twice: {again:?}");
}

#[tokio::test]
async fn a_tick_whose_outcome_cannot_be_written_still_stores_its_quotes_and_is_not_retried() {
    let upstream = dynamodb_endpoint();
    let proxy = Proxy::start(upstream.trim_start_matches("http://")).await;
    let through_proxy = format!("http://{}", proxy.addr());
    let app = app_with(20, &[("AWS_ENDPOINT_URL_DYNAMODB", &through_proxy)]).await;
    let job_id = create_job(&app, json!({"symbols": ["AAPL"], "interval": 60})).await;
    let ticks = queue(&app).receive(10);
    // DynamoDB stops answering: connections stay open and nothing comes back.
    proxy.black_hole();
    let response = deliver(&app, &ticks, Some(Instant::now() + Duration::from_secs(10))).await;
    let report = &response.reports[0];
    assert_eq!(
        (report.outcome, report.fetched),
        (RunOutcome::Ran, 1),
        "{report:?}"
    );
    assert!(
        !report.recorded,
        "the outcome write gave up within its bound"
    );
    assert!(
        response.batch_item_failures.is_empty(),
        "not retried: the quote is on record, only the job's count is short"
    );
    assert_eq!(raw_rows(&app, "AAPL").await, 1);
    proxy.restore();
    let job = stored(&app, &job_id).await;
    assert_eq!(
        job.run_count, 0,
        "the tick without an outcome is not counted"
    );
}
