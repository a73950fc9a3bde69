//! DynamoDB Local and moto SQS for the polling tests: a jobs table and a tick queue of each
//! test's own, and a job store that holds a write at a gate so a test can interleave a
//! concurrent change exactly there.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use market_data::domain::{Job, JobId, JobPage, TickId, TickOutcome};
use market_data::jobs::{DynamoJobStore, JobStore, JobStoreError, OwnerLimits, OwnerUsage};
use market_data::scheduler::SqsTickQueue;
use tokio::sync::Notify;

use crate::{aws_sdk_config, endpoint, unique_name};

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

/// A jobs table no other test uses, created by the project's own code.
pub async fn create_jobs_table() -> DynamoJobStore {
    let store = DynamoJobStore::new(dynamodb_client().await, unique_name("mdb_t_jobs"));
    store
        .create_table()
        .await
        .unwrap_or_else(|e| panic!("DynamoDB Local must be running (local/stack.sh up): {e}"));
    store
}

/// An SQS client on moto.
pub async fn sqs_client() -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&aws_sdk_config().await)
}

/// A tick queue on moto that no other test uses.
pub async fn create_tick_queue() -> SqsTickQueue {
    let client = sqs_client().await;
    let out = client
        .create_queue()
        .queue_name(unique_name("mdb-t-ticks"))
        .send()
        .await
        .expect("moto must be running (local/stack.sh up)");
    let url = out.queue_url().expect("a queue URL").to_owned();
    SqsTickQueue::new(client, url)
}

/// Holds the next `replace` once armed, until released.
#[derive(Default)]
pub struct Gate {
    armed: AtomicBool,
    reached: Notify,
    release: Notify,
}

impl Gate {
    /// The next `replace` stops at the gate.
    pub fn arm(&self) {
        self.armed.store(true, Ordering::SeqCst);
    }

    /// Waits until a `replace` is held at the gate.
    pub async fn reached(&self) {
        self.reached.notified().await;
    }

    /// Lets the held `replace` go on.
    pub fn release(&self) {
        self.release.notify_one();
    }
}

/// The real job store, with `replace` held at a [`Gate`] when armed: the write of a status
/// change then happens after whatever the test does meanwhile.
pub struct GatedJobStore {
    /// The real store.
    pub inner: Arc<dyn JobStore>,
    /// The gate.
    pub gate: Arc<Gate>,
}

#[async_trait]
impl JobStore for GatedJobStore {
    async fn create(&self, job: &Job, limits: Option<OwnerLimits>) -> Result<(), JobStoreError> {
        self.inner.create(job, limits).await
    }
    async fn get(&self, id: &JobId) -> Result<Option<Job>, JobStoreError> {
        self.inner.get(id).await
    }
    async fn list(
        &self,
        owner: Option<&str>,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<JobPage, JobStoreError> {
        self.inner.list(owner, limit, cursor).await
    }
    async fn replace(&self, job: &Job, expected_version: u64) -> Result<(), JobStoreError> {
        if self.gate.armed.swap(false, Ordering::SeqCst) {
            self.gate.reached.notify_one();
            self.gate.release.notified().await;
        }
        self.inner.replace(job, expected_version).await
    }
    async fn record_outcome(&self, outcome: &TickOutcome) -> Result<(), JobStoreError> {
        self.inner.record_outcome(outcome).await
    }
    async fn outcomes(
        &self,
        ids: &[TickId],
    ) -> Result<HashMap<TickId, TickOutcome>, JobStoreError> {
        self.inner.outcomes(ids).await
    }
    async fn delete(&self, job: &Job, expected_version: u64) -> Result<(), JobStoreError> {
        self.inner.delete(job, expected_version).await
    }
    async fn due(&self, before: DateTime<Utc>) -> Result<Vec<Job>, JobStoreError> {
        self.inner.due(before).await
    }
    async fn usage(&self, owner: &str) -> Result<OwnerUsage, JobStoreError> {
        self.inner.usage(owner).await
    }
    async fn ping(&self) -> Result<(), JobStoreError> {
        self.inner.ping().await
    }
}
