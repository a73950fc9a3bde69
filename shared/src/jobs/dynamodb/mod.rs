//! DynamoDB adapter of the job store: one item per job, keyed by `job_id`, and one usage
//! item per owner (`usage#<owner>`), in the same table.
//!
//! Three global secondary indexes make every read a query, never a scan:
//! - `due` (partition `due_shard`, sort `due_at` in epoch milliseconds), sparse: only jobs
//!   the wake-up has something to do for ([`Job::wake_at`]) carry its attributes, spread over [`DUE_SHARDS`] partitions by the random last
//!   digit of their id, so no partition is hot however many jobs there are;
//! - `newest` (partition `listing`, sort `job_id`), keys only: every job, newest first (ids
//!   are UUIDv7, so they sort by creation time); its keys never change after creation, so
//!   claiming ticks writes nothing to it;
//! - `by_owner` (partition `owner`, sort `job_id`), keys only: one owner's jobs.
//!
//! A shared tick's outcome is one more item (`tick#<tick id>`), outside every index, deleted
//! by DynamoDB's time to live a week after its tick.
//!
//! Writes after the first are conditional on the stored `version` (optimistic concurrency).
//! Creating and deleting change the owner's usage item in the same transaction, with the
//! limit as the transaction's condition. The table's definition lives here, once, and is
//! used both by `market-data-local create-jobs-table` and by the tests; the SAM template
//! declares the same schema.

mod config;

pub use config::DynamoJobsConfig;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, Delete, GlobalSecondaryIndex,
    KeySchemaElement, KeyType, KeysAndAttributes, PointInTimeRecoverySpecification, Projection,
    ProjectionType, Put, ScalarAttributeType, TableStatus, TimeToLiveSpecification,
    TransactWriteItem, Update,
};
use chrono::{DateTime, Utc};

use crate::cause::Cause;
use crate::domain::Symbol;
use crate::domain::{Job, JobId, JobPage, TickId, TickOutcome, encode_cursor};
use crate::jobs::{
    JobStore, JobStoreError, LimitKind, OUTCOME_KEPT, OwnerLimits, OwnerUsage, broken_limit,
    decode_cursor,
};

/// The table's partition key, as the SAM template declares it.
pub const JOBS_TABLE_KEY: &str = "job_id";
/// The index of due jobs.
pub const DUE_INDEX: &str = "due";
/// The index of every job, newest first.
pub const NEWEST_INDEX: &str = "newest";
/// The index of one owner's jobs, newest first.
pub const OWNER_INDEX: &str = "by_owner";
/// Partitions of the due index: one per hex digit of a job id's random tail.
pub const DUE_SHARDS: u32 = 16;
/// The one value of `listing`, the partition of [`NEWEST_INDEX`].
const LISTING: &str = "jobs";
/// The key prefix of usage items.
const USAGE_PREFIX: &str = "usage#";
/// The key prefix of tick outcome items.
const OUTCOME_PREFIX: &str = "tick#";
/// The attribute DynamoDB's time to live reads (epoch seconds), as the template declares it.
pub const TTL_ATTRIBUTE: &str = "expires";
/// Most keys of one BatchGetItem call.
const BATCH_GET: usize = 100;

/// Jobs in a DynamoDB table.
#[derive(Clone)]
pub struct DynamoJobStore {
    client: Client,
    table: String,
}

type Item = HashMap<String, AttributeValue>;

fn key_schema(name: &str, kind: KeyType) -> Result<KeySchemaElement, JobStoreError> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .map_err(definition)
}

fn attribute(name: &str, kind: ScalarAttributeType) -> Result<AttributeDefinition, JobStoreError> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(kind)
        .build()
        .map_err(definition)
}

fn index(
    name: &str,
    hash: &str,
    range: &str,
    projection: ProjectionType,
) -> Result<GlobalSecondaryIndex, JobStoreError> {
    GlobalSecondaryIndex::builder()
        .index_name(name)
        .key_schema(key_schema(hash, KeyType::Hash)?)
        .key_schema(key_schema(range, KeyType::Range)?)
        .projection(Projection::builder().projection_type(projection).build())
        .build()
        .map_err(definition)
}

fn definition(e: impl std::fmt::Display) -> JobStoreError {
    JobStoreError::Unavailable(Cause::msg(format!("table definition: {e}")))
}

impl DynamoJobStore {
    /// A store over an existing client.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// A store whose client starts from `sdk` (see [`crate::aws_sdk::load`]), with
    /// `endpoint` (DynamoDB Local) when given.
    pub fn connect(sdk: &SdkConfig, table: impl Into<String>, endpoint: Option<&str>) -> Self {
        let mut config = aws_sdk_dynamodb::config::Builder::from(sdk);
        if let Some(url) = endpoint {
            config = config.endpoint_url(url);
        }
        Self::new(Client::from_conf(config.build()), table)
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the table (on-demand billing, key `job_id`, the three indexes) unless it
    /// exists, waits until it is active, and switches time to live (for tick outcomes) and
    /// point-in-time recovery on where the service supports them.
    pub async fn create_table(&self) -> Result<(), JobStoreError> {
        use ScalarAttributeType::{N, S};
        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attribute(JOBS_TABLE_KEY, S)?)
            .attribute_definitions(attribute("due_shard", N)?)
            .attribute_definitions(attribute("due_at", N)?)
            .attribute_definitions(attribute("listing", S)?)
            .attribute_definitions(attribute("owner", S)?)
            .key_schema(key_schema(JOBS_TABLE_KEY, KeyType::Hash)?)
            .global_secondary_indexes(index(
                DUE_INDEX,
                "due_shard",
                "due_at",
                ProjectionType::All,
            )?)
            .global_secondary_indexes(index(
                NEWEST_INDEX,
                "listing",
                JOBS_TABLE_KEY,
                ProjectionType::KeysOnly,
            )?)
            .global_secondary_indexes(index(
                OWNER_INDEX,
                "owner",
                JOBS_TABLE_KEY,
                ProjectionType::KeysOnly,
            )?)
            .send()
            .await;
        if let Err(e) = created {
            let in_use = e
                .as_service_error()
                .is_some_and(|s| s.is_resource_in_use_exception());
            if !in_use {
                return Err(unavailable(e));
            }
        }
        for _ in 0..60 {
            let described = self
                .client
                .describe_table()
                .table_name(&self.table)
                .send()
                .await
                .map_err(unavailable)?;
            let status = described.table().and_then(|t| t.table_status());
            if status == Some(&TableStatus::Active) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        // Not fatal, as below; the template declares the same.
        if let Err(e) = self
            .client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(TTL_ATTRIBUTE)
                    .enabled(true)
                    .build()
                    .map_err(definition)?,
            )
            .send()
            .await
        {
            tracing::debug!(error = %DisplayErrorContext(&e), "time to live not switched on");
        }
        // Not fatal: DynamoDB Local ignores or refuses it; on AWS the template sets it too.
        if let Err(e) = self
            .client
            .update_continuous_backups()
            .table_name(&self.table)
            .point_in_time_recovery_specification(
                PointInTimeRecoverySpecification::builder()
                    .point_in_time_recovery_enabled(true)
                    .build()
                    .map_err(definition)?,
            )
            .send()
            .await
        {
            tracing::debug!(error = %DisplayErrorContext(&e), "point-in-time recovery not switched on");
        }
        Ok(())
    }

    /// Deletes the table (for tests that made their own).
    pub async fn delete_table(&self) -> Result<(), JobStoreError> {
        self.client
            .delete_table()
            .table_name(&self.table)
            .send()
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    /// The jobs of one shard of the due index due before `before`, every page of them.
    async fn due_in_shard(&self, shard: u32, before: i64) -> Result<Vec<Job>, JobStoreError> {
        let mut jobs = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(DUE_INDEX)
                .key_condition_expression("due_shard = :s AND due_at < :b")
                .expression_attribute_values(":s", AttributeValue::N(shard.to_string()))
                .expression_attribute_values(":b", AttributeValue::N(before.to_string()))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(unavailable)?;
            for item in page.items() {
                jobs.push(from_item(item)?);
            }
            match page.last_evaluated_key() {
                Some(key) if !key.is_empty() => start = Some(key.clone()),
                _ => return Ok(jobs),
            }
        }
    }

    /// Reads `ids` (at most [`BATCH_GET`]) in one batch, in the order given; ids gone
    /// meanwhile are left out.
    async fn get_many(&self, ids: &[JobId]) -> Result<Vec<Job>, JobStoreError> {
        let mut found: HashMap<String, Job> = HashMap::new();
        for item in self
            .batch_get(ids.iter().map(key_of).collect(), true)
            .await?
        {
            let job = from_item(&item)?;
            found.insert(job.id.to_string(), job);
        }
        Ok(ids
            .iter()
            .filter_map(|id| found.remove(id.as_str()))
            .collect())
    }

    /// The items of `keys` (at most [`BATCH_GET`]) that exist, asking again for the keys
    /// DynamoDB left unprocessed (a few times, then it is unavailable).
    async fn batch_get(
        &self,
        keys: Vec<Item>,
        consistent: bool,
    ) -> Result<Vec<Item>, JobStoreError> {
        let mut items = Vec::new();
        let mut keys = keys;
        for attempt in 0..10u32 {
            if keys.is_empty() {
                return Ok(items);
            }
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
            }
            let request = KeysAndAttributes::builder()
                .set_keys(Some(std::mem::take(&mut keys)))
                .consistent_read(consistent)
                .build()
                .map_err(definition)?;
            let output = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .map_err(unavailable)?;
            if let Some(found) = output.responses().and_then(|r| r.get(&self.table)) {
                items.extend(found.iter().cloned());
            }
            if let Some(left) = output.unprocessed_keys().and_then(|u| u.get(&self.table)) {
                keys = left.keys().to_vec();
            }
        }
        if keys.is_empty() {
            Ok(items)
        } else {
            Err(JobStoreError::Unavailable(Cause::msg(format!(
                "{} keys still unprocessed after 10 batch reads",
                keys.len()
            ))))
        }
    }

    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<(), TransactFailure> {
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let reasons: Vec<bool> = match e.as_service_error() {
                    Some(TransactWriteItemsError::TransactionCanceledException(c)) => c
                        .cancellation_reasons()
                        .iter()
                        .map(|r| r.code() == Some("ConditionalCheckFailed"))
                        .collect(),
                    _ => return Err(TransactFailure::Other(unavailable(e))),
                };
                Err(TransactFailure::Condition(reasons))
            }
        }
    }

    fn usage_update(
        &self,
        owner: &str,
        jobs: i64,
        ticks: i64,
        condition: Option<(u32, u64)>,
    ) -> Result<TransactWriteItem, JobStoreError> {
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(usage_key(owner)))
            .update_expression(
                "SET jobs = if_not_exists(jobs, :zero) + :dj, ticks = if_not_exists(ticks, :zero) + :dt",
            )
            .expression_attribute_values(":zero", AttributeValue::N("0".into()))
            .expression_attribute_values(":dj", AttributeValue::N(jobs.to_string()))
            .expression_attribute_values(":dt", AttributeValue::N(ticks.to_string()));
        if let Some((max_jobs, max_ticks_before)) = condition {
            update = update
                .condition_expression(
                    "(attribute_not_exists(jobs) OR jobs < :mj) AND (attribute_not_exists(ticks) OR ticks <= :mt)",
                )
                .expression_attribute_values(":mj", AttributeValue::N(max_jobs.to_string()))
                .expression_attribute_values(":mt", AttributeValue::N(max_ticks_before.to_string()));
        }
        Ok(TransactWriteItem::builder()
            .update(update.build().map_err(definition)?)
            .build())
    }

    async fn limit_error(&self, job: &Job, owner: &str, limits: OwnerLimits) -> JobStoreError {
        match self.usage(owner).await {
            Ok(usage) => JobStoreError::LimitReached {
                kind: broken_limit(job, usage, limits).unwrap_or(LimitKind::SymbolTicksPerMinute),
                usage,
                limits,
            },
            Err(e) => e,
        }
    }
}

enum TransactFailure {
    /// Which items' conditions failed, in the order of the transaction.
    Condition(Vec<bool>),
    Other(JobStoreError),
}

fn unavailable<E, R>(e: aws_sdk_dynamodb::error::SdkError<E, R>) -> JobStoreError
where
    E: std::error::Error + ProvideErrorMetadata + 'static,
    R: std::fmt::Debug,
{
    JobStoreError::Unavailable(Cause::msg(DisplayErrorContext(&e).to_string()))
}

fn conditional_failed<E, R>(e: &aws_sdk_dynamodb::error::SdkError<E, R>) -> bool
where
    E: ProvideErrorMetadata,
{
    e.as_service_error()
        .and_then(|s| s.code())
        .is_some_and(|c| c == "ConditionalCheckFailedException")
}

fn key_of(id: &JobId) -> Item {
    HashMap::from([(JOBS_TABLE_KEY.to_owned(), AttributeValue::S(id.to_string()))])
}

fn usage_key(owner: &str) -> Item {
    HashMap::from([(
        JOBS_TABLE_KEY.to_owned(),
        AttributeValue::S(format!("{USAGE_PREFIX}{owner}")),
    )])
}

/// The due-index partition of a job: the last hex digit of its id (random in a UUIDv7).
pub fn due_shard(id: &JobId) -> u32 {
    id.as_str()
        .chars()
        .last()
        .and_then(|c| c.to_digit(16))
        .unwrap_or(0)
        % DUE_SHARDS
}

fn to_item(job: &Job) -> Item {
    let mut item = key_of(&job.id);
    let s = |v: String| AttributeValue::S(v);
    let n = |v: u64| AttributeValue::N(v.to_string());
    item.insert(
        "symbols".into(),
        AttributeValue::L(job.symbols.iter().map(|x| s(x.to_string())).collect()),
    );
    item.insert("interval_seconds".into(), n(u64::from(job.interval_secs)));
    item.insert("provider".into(), s(job.provider.to_string()));
    item.insert("status".into(), s(job.status.as_str().into()));
    item.insert("created_at".into(), s(job.created_at.to_rfc3339()));
    item.insert("updated_at".into(), s(job.updated_at.to_rfc3339()));
    if let Some(t) = job.last_run_at {
        item.insert("last_run_at".into(), s(t.to_rfc3339()));
    }
    item.insert("next_run_at".into(), s(job.next_run_at.to_rfc3339()));
    item.insert("run_count".into(), n(job.run_count));
    if let Some(e) = &job.last_error {
        item.insert("last_error".into(), s(e.clone()));
    }
    item.insert("version".into(), n(job.version));
    item.insert("listing".into(), s(LISTING.into()));
    if let Some(owner) = &job.owner {
        item.insert("owner".into(), s(owner.clone()));
    }
    if !job.pending.is_empty() {
        item.insert(
            "pending".into(),
            AttributeValue::L(job.pending.iter().map(|t| s(t.to_string())).collect()),
        );
    }
    if let Some(wake_at) = job.wake_at() {
        item.insert("due_shard".into(), n(u64::from(due_shard(&job.id))));
        item.insert(
            "due_at".into(),
            AttributeValue::N(wake_at.timestamp_millis().to_string()),
        );
    }
    item
}

fn outcome_key(id: &TickId) -> Item {
    HashMap::from([(
        JOBS_TABLE_KEY.to_owned(),
        AttributeValue::S(format!("{OUTCOME_PREFIX}{id}")),
    )])
}

fn outcome_to_item(outcome: &TickOutcome) -> Item {
    let mut item = outcome_key(&outcome.id);
    if let Some(t) = outcome.ran_at {
        item.insert("ran_at".into(), AttributeValue::S(t.to_rfc3339()));
    }
    if !outcome.failures.is_empty() {
        item.insert(
            "failed".into(),
            AttributeValue::M(
                outcome
                    .failures
                    .iter()
                    .map(|(s, e)| (s.to_string(), AttributeValue::S(e.clone())))
                    .collect(),
            ),
        );
    }
    if let Some(note) = &outcome.note {
        item.insert("note".into(), AttributeValue::S(note.clone()));
    }
    // DynamoDB's time to live deletes the item after this (epoch seconds).
    let expires = outcome.id.due_at() + OUTCOME_KEPT;
    item.insert(
        TTL_ATTRIBUTE.into(),
        AttributeValue::N(expires.timestamp().to_string()),
    );
    item
}

fn outcome_from_item(item: &Item) -> Result<TickOutcome, JobStoreError> {
    let bad = |what: &str| JobStoreError::Malformed(Cause::msg(format!("tick outcome: {what}")));
    let id = item
        .get(JOBS_TABLE_KEY)
        .and_then(|v| v.as_s().ok())
        .and_then(|k| k.strip_prefix(OUTCOME_PREFIX))
        .and_then(|k| TickId::parse(k).ok())
        .ok_or_else(|| bad("key"))?;
    let ran_at = match item.get("ran_at").map(|v| v.as_s()) {
        None => None,
        Some(Ok(t)) => Some(
            DateTime::parse_from_rfc3339(t)
                .map_err(|_| bad("ran_at"))?
                .with_timezone(&Utc),
        ),
        Some(Err(_)) => return Err(bad("ran_at")),
    };
    let mut failures = BTreeMap::new();
    if let Some(map) = item.get("failed") {
        for (symbol, error) in map.as_m().map_err(|_| bad("failed"))? {
            let symbol = Symbol::parse(symbol).map_err(|_| bad("failed"))?;
            let error = error.as_s().map_err(|_| bad("failed"))?;
            failures.insert(symbol, error.clone());
        }
    }
    Ok(TickOutcome {
        id,
        ran_at,
        failures,
        note: item.get("note").and_then(|v| v.as_s().ok()).cloned(),
    })
}

fn from_item(item: &Item) -> Result<Job, JobStoreError> {
    let bad = |what: &str| JobStoreError::Malformed(Cause::msg(what.to_owned()));
    let text = |name: &str| -> Result<&str, JobStoreError> {
        item.get(name)
            .and_then(|v| v.as_s().ok())
            .map(String::as_str)
            .ok_or_else(|| bad(name))
    };
    let number = |name: &str| -> Result<u64, JobStoreError> {
        item.get(name)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| bad(name))
    };
    let time = |name: &str| -> Result<DateTime<Utc>, JobStoreError> {
        DateTime::parse_from_rfc3339(text(name)?)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| bad(name))
    };
    let symbols = item
        .get("symbols")
        .and_then(|v| v.as_l().ok())
        .ok_or_else(|| bad("symbols"))?
        .iter()
        .map(|v| {
            v.as_s()
                .ok()
                .and_then(|s| Symbol::parse(s).ok())
                .ok_or_else(|| bad("symbols"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Job {
        id: JobId::parse(text(JOBS_TABLE_KEY)?).map_err(|e| bad(&e.to_string()))?,
        symbols,
        interval_secs: u32::try_from(number("interval_seconds")?)
            .map_err(|_| bad("interval_seconds"))?,
        provider: text("provider")?.parse().map_err(|_| bad("provider"))?,
        status: text("status")?.parse().map_err(|_| bad("status"))?,
        created_at: time("created_at")?,
        updated_at: time("updated_at")?,
        last_run_at: if item.contains_key("last_run_at") {
            Some(time("last_run_at")?)
        } else {
            None
        },
        next_run_at: time("next_run_at")?,
        run_count: number("run_count")?,
        last_error: item.get("last_error").and_then(|v| v.as_s().ok()).cloned(),
        pending: match item.get("pending") {
            None => Vec::new(),
            Some(list) => list
                .as_l()
                .map_err(|_| bad("pending"))?
                .iter()
                .map(|v| {
                    v.as_s()
                        .ok()
                        .and_then(|t| TickId::parse(t).ok())
                        .ok_or_else(|| bad("pending"))
                })
                .collect::<Result<Vec<_>, _>>()?,
        },
        version: number("version")?,
        owner: item.get("owner").and_then(|v| v.as_s().ok()).cloned(),
    })
}

#[async_trait]
impl JobStore for DynamoJobStore {
    async fn create(&self, job: &Job, limits: Option<OwnerLimits>) -> Result<(), JobStoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(job)))
            .condition_expression("attribute_not_exists(#k)")
            .expression_attribute_names("#k", JOBS_TABLE_KEY)
            .build()
            .map_err(definition)?;
        let Some(owner) = &job.owner else {
            let result = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(to_item(job)))
                .condition_expression("attribute_not_exists(#k)")
                .expression_attribute_names("#k", JOBS_TABLE_KEY)
                .send()
                .await;
            return match result {
                Ok(_) => Ok(()),
                Err(e) if conditional_failed(&e) => Err(JobStoreError::Conflict),
                Err(e) => Err(unavailable(e)),
            };
        };
        let ticks = job.symbol_ticks_milli();
        let condition = match limits {
            Some(l) if ticks > l.max_symbol_ticks_milli => {
                return Err(self.limit_error(job, owner, l).await);
            }
            Some(l) => Some((l.max_jobs, l.max_symbol_ticks_milli - ticks)),
            None => None,
        };
        let usage = self.usage_update(
            owner,
            1,
            i64::try_from(ticks).unwrap_or(i64::MAX),
            condition,
        )?;
        match self
            .transact(vec![TransactWriteItem::builder().put(put).build(), usage])
            .await
        {
            Ok(()) => Ok(()),
            Err(TransactFailure::Condition(failed)) => {
                if failed.first() == Some(&true) {
                    Err(JobStoreError::Conflict)
                } else if let Some(l) = limits {
                    Err(self.limit_error(job, owner, l).await)
                } else {
                    Err(JobStoreError::Conflict)
                }
            }
            Err(TransactFailure::Other(e)) => Err(e),
        }
    }

    async fn get(&self, id: &JobId) -> Result<Option<Job>, JobStoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_of(id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        output.item().map(from_item).transpose()
    }

    async fn list(
        &self,
        owner: Option<&str>,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<JobPage, JobStoreError> {
        let start = cursor.map(decode_cursor).transpose()?;
        let (index, partition, value) = match owner {
            Some(o) => (OWNER_INDEX, "owner", o.to_owned()),
            None => (NEWEST_INDEX, "listing", LISTING.to_owned()),
        };
        let start_key = start.as_ref().map(|id| {
            let mut key = key_of(id);
            key.insert(partition.into(), AttributeValue::S(value.clone()));
            key
        });
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .key_condition_expression("#p = :p")
            .expression_attribute_names("#p", partition)
            .expression_attribute_values(":p", AttributeValue::S(value.clone()))
            .scan_index_forward(false)
            .limit(i32::try_from(limit.max(1)).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start_key)
            .send()
            .await
            .map_err(unavailable)?;
        let ids = output
            .items()
            .iter()
            .map(|item| {
                item.get(JOBS_TABLE_KEY)
                    .and_then(|v| v.as_s().ok())
                    .and_then(|s| JobId::parse(s).ok())
                    .ok_or_else(|| JobStoreError::Malformed(Cause::msg("listed key")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let next_cursor = match (output.last_evaluated_key(), ids.last()) {
            (Some(key), Some(last)) if !key.is_empty() => Some(encode_cursor(last)),
            _ => None,
        };
        let jobs = if ids.is_empty() {
            Vec::new()
        } else {
            self.get_many(&ids).await?
        };
        Ok(JobPage { jobs, next_cursor })
    }

    async fn replace(&self, job: &Job, expected_version: u64) -> Result<(), JobStoreError> {
        // Nothing else writes a job's item, so the whole item is put, on the version read.
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(job)))
            .condition_expression("#v = :expected")
            .expression_attribute_names("#v", "version")
            .expression_attribute_values(
                ":expected",
                AttributeValue::N(expected_version.to_string()),
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if conditional_failed(&e) => Err(JobStoreError::Conflict),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn record_outcome(&self, outcome: &TickOutcome) -> Result<(), JobStoreError> {
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(outcome_to_item(outcome)));
        if outcome.ran_at.is_none() {
            // A tick that was not run never hides a run of the same tick.
            put = put.condition_expression("attribute_not_exists(ran_at)");
        }
        match put.send().await {
            Ok(_) => Ok(()),
            Err(e) if conditional_failed(&e) => Ok(()),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn outcomes(
        &self,
        ids: &[TickId],
    ) -> Result<HashMap<TickId, TickOutcome>, JobStoreError> {
        let mut found = HashMap::new();
        let mut distinct: Vec<&TickId> = ids.iter().collect();
        distinct.sort();
        distinct.dedup();
        for chunk in distinct.chunks(BATCH_GET) {
            let keys: Vec<Item> = chunk.iter().map(|id| outcome_key(id)).collect();
            for item in self.batch_get(keys, false).await? {
                let outcome = outcome_from_item(&item)?;
                found.insert(outcome.id.clone(), outcome);
            }
        }
        Ok(found)
    }

    async fn delete(&self, job: &Job, expected_version: u64) -> Result<(), JobStoreError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key_of(&job.id)))
            .condition_expression("#v = :expected")
            .expression_attribute_names("#v", "version")
            .expression_attribute_values(
                ":expected",
                AttributeValue::N(expected_version.to_string()),
            )
            .build()
            .map_err(definition)?;
        let mut items = vec![TransactWriteItem::builder().delete(delete).build()];
        if let Some(owner) = &job.owner {
            let ticks = i64::try_from(job.symbol_ticks_milli()).unwrap_or(i64::MAX);
            items.push(self.usage_update(owner, -1, -ticks, None)?);
        }
        match self.transact(items).await {
            Ok(()) => Ok(()),
            Err(TransactFailure::Condition(_)) => Err(JobStoreError::Conflict),
            Err(TransactFailure::Other(e)) => Err(e),
        }
    }

    async fn due(&self, before: DateTime<Utc>) -> Result<Vec<Job>, JobStoreError> {
        let before = before.timestamp_millis();
        let shards = futures::future::try_join_all(
            (0..DUE_SHARDS).map(|shard| self.due_in_shard(shard, before)),
        )
        .await?;
        Ok(shards.into_iter().flatten().collect())
    }

    async fn usage(&self, owner: &str) -> Result<OwnerUsage, JobStoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(usage_key(owner)))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        let number = |name: &str| {
            output
                .item()
                .and_then(|i| i.get(name))
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        Ok(OwnerUsage {
            jobs: number("jobs"),
            symbol_ticks_milli: number("ticks"),
        })
    }

    async fn ping(&self) -> Result<(), JobStoreError> {
        self.client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .map(|_| ())
            .map_err(unavailable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{JobStatus, ProviderId};

    #[test]
    fn items_round_trip() {
        let now = Utc::now();
        let job = Job {
            id: JobId::generate(),
            symbols: vec![
                Symbol::parse("AAPL").unwrap(),
                Symbol::parse("BRK.B").unwrap(),
            ],
            interval_secs: 70,
            provider: ProviderId::Finnhub,
            status: JobStatus::Active,
            created_at: now,
            updated_at: now,
            last_run_at: Some(now),
            next_run_at: now,
            run_count: 3,
            last_error: Some("MSFT: unavailable".into()),
            pending: vec![TickId::new(now, "w1", 0), TickId::new(now, "w1", 1)],
            version: 4,
            owner: Some("team-a".into()),
        };
        assert_eq!(from_item(&to_item(&job)).unwrap(), job);
    }

    /// The size DynamoDB bills an item by: attribute names plus values (strings by length,
    /// numbers about one byte per two digits plus one, lists and maps three bytes plus one
    /// per element).
    fn billed_size(item: &Item) -> usize {
        fn value(v: &AttributeValue) -> usize {
            match v {
                AttributeValue::S(s) => s.len(),
                AttributeValue::N(n) => n.len().div_ceil(2) + 1,
                AttributeValue::L(l) => 3 + l.iter().map(|e| 1 + value(e)).sum::<usize>(),
                AttributeValue::M(m) => {
                    3 + m.iter().map(|(k, e)| 1 + k.len() + value(e)).sum::<usize>()
                }
                _ => 1,
            }
        }
        item.iter().map(|(k, v)| k.len() + value(v)).sum()
    }

    #[test]
    fn a_steady_ten_second_jobs_claim_is_one_write_unit() {
        // A 10 s job holds about 20 pending ticks: those claimed (the next two minutes) and
        // those not yet final (the last 70 s).
        let now = Utc::now();
        let mut job = Job::new(
            vec![Symbol::parse("AAPL").unwrap()],
            10,
            ProviderId::Finnhub,
            JobStatus::Active,
            now,
        )
        .owned_by(Some("team-analytics".into()));
        job.last_run_at = Some(now);
        job.run_count = 123_456;
        let maker = &uuid::Uuid::now_v7().simple().to_string()[24..];
        job.add_pending(
            (0..22).map(|i| TickId::new(now + chrono::TimeDelta::seconds(10 * i), maker, 17)),
        );
        let size = billed_size(&to_item(&job));
        assert!(size <= 1024, "{size} bytes: more than one write unit");
    }

    #[test]
    fn outcomes_round_trip() {
        let now = DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap();
        let id = TickId::new(now, "w1", 7);
        let ran = TickOutcome::ran(
            id.clone(),
            now,
            [(Symbol::parse("MSFT").unwrap(), "unavailable".to_owned())],
        );
        assert_eq!(outcome_from_item(&outcome_to_item(&ran)).unwrap(), ran);
        let skipped = TickOutcome::not_run(id, "deadline");
        assert_eq!(
            outcome_from_item(&outcome_to_item(&skipped)).unwrap(),
            skipped
        );
    }
}
