//! DynamoDB Local and moto EventBridge for the polling tests: a jobs table and a rule
//! prefix of each test's own, and the failure-injecting wrappers of the polling ports.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use market_data::cause::Cause;
use market_data::domain::{Job, JobId, JobPage};
use market_data::jobs::{DynamoJobStore, JobStore, JobStoreError};
use market_data::scheduler::{EventBridgeScheduler, Scheduler, SchedulerError};

use crate::{aws_sdk_config, endpoint, unique_name};

/// The poller ARN the test rules target (moto does not invoke it).
pub const TEST_POLLER_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:mdb-test-poller";

/// DynamoDB Local's endpoint.
pub fn dynamodb_endpoint() -> String {
    endpoint("MDB_TEST_DYNAMODB_ENDPOINT", "http://127.0.0.1:8001")
}

/// A DynamoDB client on DynamoDB Local with the harness's dummy credentials.
pub async fn dynamodb_client() -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::config::Builder::from(&aws_sdk_config().await)
        .endpoint_url(dynamodb_endpoint())
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// An EventBridge client on moto.
pub async fn eventbridge_client() -> aws_sdk_eventbridge::Client {
    aws_sdk_eventbridge::Client::new(&aws_sdk_config().await)
}

/// A jobs table no other test uses, created by the project's own code.
pub async fn create_jobs_table() -> DynamoJobStore {
    let store = DynamoJobStore::new(dynamodb_client().await, unique_name("mdb_t_jobs"));
    store
        .create_table()
        .await
        .unwrap_or_else(|e| panic!("DynamoDB Local must be running (local/stack.sh up): {e}"));
    store
}

/// A rule prefix no other test uses (rule names stay within 64 characters).
pub fn unique_rule_prefix() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("t{}-", &id[..12])
}

/// An EventBridge scheduler on moto with rules under `prefix`.
pub async fn eventbridge_scheduler(prefix: &str) -> EventBridgeScheduler {
    EventBridgeScheduler::new(eventbridge_client().await, TEST_POLLER_ARN, prefix)
}

/// The names of the rules under `prefix` on moto.
pub async fn rules_under(prefix: &str) -> Vec<String> {
    let out = eventbridge_client()
        .await
        .list_rules()
        .name_prefix(prefix)
        .send()
        .await
        .expect("moto must be running (local/stack.sh up)");
    out.rules()
        .iter()
        .filter_map(|r| r.name().map(str::to_owned))
        .collect()
}

/// Which calls of a wrapped port fail.
#[derive(Default)]
pub struct Failures {
    /// `JobStore::create` / `Scheduler::schedule`.
    pub create: AtomicBool,
    /// `JobStore::replace`.
    pub replace: AtomicBool,
    /// `JobStore::delete` / `Scheduler::unschedule`.
    pub delete: AtomicBool,
}

impl Failures {
    fn check(flag: &AtomicBool, what: &str) -> Result<(), Cause> {
        if flag.load(Ordering::SeqCst) {
            Err(Cause::msg(format!("injected failure of {what}")))
        } else {
            Ok(())
        }
    }

    /// Sets one flag.
    pub fn set(flag: &AtomicBool, on: bool) {
        flag.store(on, Ordering::SeqCst);
    }
}

/// A job store that fails on demand, the real one underneath.
pub struct FlakyJobStore {
    /// The real store.
    pub inner: Arc<dyn JobStore>,
    /// What fails now.
    pub fail: Arc<Failures>,
}

#[async_trait]
impl JobStore for FlakyJobStore {
    async fn create(&self, job: &Job) -> Result<(), JobStoreError> {
        Failures::check(&self.fail.create, "create").map_err(JobStoreError::Unavailable)?;
        self.inner.create(job).await
    }
    async fn get(&self, id: &JobId) -> Result<Option<Job>, JobStoreError> {
        self.inner.get(id).await
    }
    async fn list(&self, limit: usize, cursor: Option<&str>) -> Result<JobPage, JobStoreError> {
        self.inner.list(limit, cursor).await
    }
    async fn replace(&self, job: &Job, expected_version: u64) -> Result<(), JobStoreError> {
        Failures::check(&self.fail.replace, "replace").map_err(JobStoreError::Unavailable)?;
        self.inner.replace(job, expected_version).await
    }
    async fn delete(&self, id: &JobId) -> Result<bool, JobStoreError> {
        Failures::check(&self.fail.delete, "delete").map_err(JobStoreError::Unavailable)?;
        self.inner.delete(id).await
    }
    async fn ping(&self) -> Result<(), JobStoreError> {
        self.inner.ping().await
    }
}

/// A scheduler that fails on demand, the real one underneath.
pub struct FlakyScheduler {
    /// The real scheduler.
    pub inner: Arc<dyn Scheduler>,
    /// What fails now.
    pub fail: Arc<Failures>,
}

#[async_trait]
impl Scheduler for FlakyScheduler {
    async fn schedule(&self, job: &Job) -> Result<(), SchedulerError> {
        Failures::check(&self.fail.create, "schedule").map_err(SchedulerError::Unavailable)?;
        self.inner.schedule(job).await
    }
    async fn unschedule(&self, id: &JobId) -> Result<(), SchedulerError> {
        Failures::check(&self.fail.delete, "unschedule").map_err(SchedulerError::Unavailable)?;
        self.inner.unschedule(id).await
    }
    fn describe(&self) -> String {
        format!("flaky {}", self.inner.describe())
    }
}
