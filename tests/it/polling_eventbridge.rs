//! Scheduling on moto's EventBridge with jobs in DynamoDB Local: the rule of each interval,
//! its removal, and consistency when either side fails (injected by wrappers around the
//! real adapters). Each test has its own table and rule prefix.

use std::sync::Arc;

use harness::TestApp;
use harness::dynamodb::{
    Failures, FlakyJobStore, FlakyScheduler, TEST_POLLER_ARN, create_jobs_table,
    eventbridge_client, eventbridge_scheduler, rules_under, unique_rule_prefix,
};
use market_data::domain::JobStatus;
use market_data::domain::{ProviderId, Symbol};
use market_data::jobs::JobStore;
use market_data::scheduler::Scheduler;
use market_data::usecases::{JobAdmin, NewJob, PollingError};

struct Setup {
    polling: JobAdmin,
    jobs: Arc<dyn JobStore>,
    fail_store: Arc<Failures>,
    fail_scheduler: Arc<Failures>,
    prefix: String,
    _app: TestApp,
}

async fn setup() -> Setup {
    let app = TestApp::builder().build().await;
    let jobs: Arc<dyn JobStore> = Arc::new(create_jobs_table().await);
    let prefix = unique_rule_prefix();
    let scheduler: Arc<dyn Scheduler> = Arc::new(eventbridge_scheduler(&prefix).await);
    let fail_store = Arc::new(Failures::default());
    let fail_scheduler = Arc::new(Failures::default());
    let polling = app.services.api.jobs.clone().with_ports(
        Arc::new(FlakyJobStore {
            inner: Arc::clone(&jobs),
            fail: Arc::clone(&fail_store),
        }),
        Arc::new(FlakyScheduler {
            inner: scheduler,
            fail: Arc::clone(&fail_scheduler),
        }),
    );
    Setup {
        polling,
        jobs,
        fail_store,
        fail_scheduler,
        prefix,
        _app: app,
    }
}

fn new_job(interval: u32) -> NewJob {
    NewJob {
        symbols: vec![
            Symbol::parse("AAPL").unwrap(),
            Symbol::parse("MSFT").unwrap(),
        ],
        interval_secs: interval,
        provider: ProviderId::Simulated,
    }
}

async fn job_count(jobs: &Arc<dyn JobStore>) -> usize {
    jobs.list(100, None).await.unwrap().jobs.len()
}

#[tokio::test]
async fn each_interval_gets_its_rate_and_a_constant_input_naming_the_job() {
    let s = setup().await;
    let events = eventbridge_client().await;
    for (interval, expression) in [
        (10, "rate(1 minute)"),
        (60, "rate(1 minute)"),
        (70, "rate(1 minute)"),
        (300, "rate(5 minutes)"),
        (86_400, "rate(1440 minutes)"),
    ] {
        let job = s.polling.create(new_job(interval)).await.unwrap();
        assert_eq!(job.status, JobStatus::Active);
        let rule = format!("{}{}", s.prefix, job.id);
        let described = events.describe_rule().name(&rule).send().await.unwrap();
        assert_eq!(
            described.schedule_expression(),
            Some(expression),
            "{interval} s"
        );
        let targets = events
            .list_targets_by_rule()
            .rule(&rule)
            .send()
            .await
            .unwrap();
        let [target] = targets.targets() else {
            panic!("one target: {:?}", targets.targets());
        };
        assert_eq!(target.arn(), TEST_POLLER_ARN);
        let input: serde_json::Value = serde_json::from_str(target.input().unwrap()).unwrap();
        assert_eq!(input, serde_json::json!({"job_id": job.id.as_str()}));
        // What the rule delivers is what the poller reads.
        let parsed: market_data::scheduler::PollInput = serde_json::from_value(input).unwrap();
        assert_eq!(parsed.job_id, job.id);
    }
    assert_eq!(rules_under(&s.prefix).await.len(), 5);

    // Deleting each job removes its rule; none is left on the shared emulator (moto's
    // PutEvents on the default bus fails while a rule targets a Lambda ARN).
    for job in s.jobs.list(100, None).await.unwrap().jobs {
        s.polling.delete(&job.id).await.unwrap();
    }
    assert!(rules_under(&s.prefix).await.is_empty());
    assert_eq!(job_count(&s.jobs).await, 0);
}

#[tokio::test]
async fn deleting_removes_the_rule_then_the_job() {
    let s = setup().await;
    let job = s.polling.create(new_job(10)).await.unwrap();
    assert_eq!(rules_under(&s.prefix).await.len(), 1);
    s.polling.delete(&job.id).await.unwrap();
    assert!(rules_under(&s.prefix).await.is_empty());
    assert_eq!(s.jobs.get(&job.id).await.unwrap(), None);
    assert!(matches!(
        s.polling.delete(&job.id).await,
        Err(PollingError::NotFound(_))
    ));
}

#[tokio::test]
async fn pausing_removes_the_rule_and_resuming_restores_it() {
    let s = setup().await;
    let job = s.polling.create(new_job(70)).await.unwrap();
    let paused = s.polling.pause(&job.id).await.unwrap();
    assert_eq!(paused.status, JobStatus::Paused);
    assert!(rules_under(&s.prefix).await.is_empty());
    let resumed = s.polling.resume(&job.id).await.unwrap();
    assert_eq!(resumed.status, JobStatus::Active);
    assert_eq!(rules_under(&s.prefix).await.len(), 1);
    s.polling.delete(&job.id).await.unwrap();
    assert!(rules_under(&s.prefix).await.is_empty());
}

#[tokio::test]
async fn a_failing_rule_leaves_no_job() {
    let s = setup().await;
    Failures::set(&s.fail_scheduler.create, true);
    let err = s.polling.create(new_job(10)).await.unwrap_err();
    assert!(matches!(err, PollingError::Scheduler(_)), "{err:?}");
    assert_eq!(job_count(&s.jobs).await, 0);
    assert!(rules_under(&s.prefix).await.is_empty());
}

#[tokio::test]
async fn a_failing_job_store_leaves_no_rule() {
    let s = setup().await;
    Failures::set(&s.fail_store.create, true);
    assert!(s.polling.create(new_job(10)).await.is_err());
    assert!(rules_under(&s.prefix).await.is_empty());
    assert_eq!(job_count(&s.jobs).await, 0);

    // The job is stored and its rule made, but it cannot be activated: both go again.
    Failures::set(&s.fail_store.create, false);
    Failures::set(&s.fail_store.replace, true);
    assert!(s.polling.create(new_job(10)).await.is_err());
    assert!(rules_under(&s.prefix).await.is_empty());
    assert_eq!(job_count(&s.jobs).await, 0);
}

#[tokio::test]
async fn a_delete_that_fails_half_way_leaves_a_paused_job_and_finishes_on_retry() {
    let s = setup().await;
    let job = s.polling.create(new_job(10)).await.unwrap();

    // The rule cannot be removed: the job stays, paused, with its rule (which no-ops).
    Failures::set(&s.fail_scheduler.delete, true);
    assert!(s.polling.delete(&job.id).await.is_err());
    let kept = s.jobs.get(&job.id).await.unwrap().unwrap();
    assert_eq!(kept.status, JobStatus::Paused);
    assert_eq!(rules_under(&s.prefix).await.len(), 1);

    // The rule goes but the job cannot be deleted: a paused job without a rule is fine.
    Failures::set(&s.fail_scheduler.delete, false);
    Failures::set(&s.fail_store.delete, true);
    assert!(s.polling.delete(&job.id).await.is_err());
    assert!(rules_under(&s.prefix).await.is_empty());
    let kept = s.jobs.get(&job.id).await.unwrap().unwrap();
    assert_eq!(kept.status, JobStatus::Paused);

    Failures::set(&s.fail_store.delete, false);
    s.polling.delete(&job.id).await.unwrap();
    assert_eq!(job_count(&s.jobs).await, 0);
    assert!(rules_under(&s.prefix).await.is_empty());
}

#[tokio::test]
async fn a_resume_whose_rule_fails_keeps_the_job_paused() {
    let s = setup().await;
    let job = s.polling.create(new_job(60)).await.unwrap();
    s.polling.pause(&job.id).await.unwrap();
    Failures::set(&s.fail_scheduler.create, true);
    assert!(s.polling.resume(&job.id).await.is_err());
    assert_eq!(
        s.jobs.get(&job.id).await.unwrap().unwrap().status,
        JobStatus::Paused
    );
    assert!(rules_under(&s.prefix).await.is_empty());
}
