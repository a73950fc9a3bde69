//! DynamoDB adapter of the job store: one item per job, keyed by `job_id`.
//!
//! Writes after the first are conditional on the stored `version` (optimistic concurrency):
//! DynamoDB refuses a write whose condition fails, which is what keeps two pollers from
//! running the same tick. The table's definition lives here, once, and is used both by
//! `market-data-local create-jobs-table` and by the tests; the SAM template declares the
//! same key schema.

mod config;

pub use config::DynamoJobsConfig;

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    PointInTimeRecoverySpecification, ReturnValue, ScalarAttributeType, TableStatus,
};
use chrono::{DateTime, Utc};

use crate::cause::Cause;
use crate::domain::Symbol;
use crate::domain::{Job, JobId, JobPage, encode_cursor};
use crate::jobs::{JobStore, JobStoreError, decode_cursor};

/// The table's partition key, as the SAM template declares it.
pub const JOBS_TABLE_KEY: &str = "job_id";

/// Jobs in a DynamoDB table.
#[derive(Clone)]
pub struct DynamoJobStore {
    client: Client,
    table: String,
}

type Item = HashMap<String, AttributeValue>;

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

    /// Creates the table (on-demand billing, key `job_id`) unless it exists, waits until it
    /// is active, and switches point-in-time recovery on where the service supports it.
    pub async fn create_table(&self) -> Result<(), JobStoreError> {
        let key = |e| JobStoreError::Unavailable(Cause::msg(format!("table definition: {e}")));
        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(JOBS_TABLE_KEY)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .map_err(key)?,
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(JOBS_TABLE_KEY)
                    .key_type(KeyType::Hash)
                    .build()
                    .map_err(key)?,
            )
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
        // Not fatal: DynamoDB Local ignores or refuses it; on AWS the template sets it too.
        if let Err(e) = self
            .client
            .update_continuous_backups()
            .table_name(&self.table)
            .point_in_time_recovery_specification(
                PointInTimeRecoverySpecification::builder()
                    .point_in_time_recovery_enabled(true)
                    .build()
                    .map_err(key)?,
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
    item
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
        version: number("version")?,
    })
}

#[async_trait]
impl JobStore for DynamoJobStore {
    async fn create(&self, job: &Job) -> Result<(), JobStoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(job)))
            .condition_expression("attribute_not_exists(#k)")
            .expression_attribute_names("#k", JOBS_TABLE_KEY)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if conditional_failed(&e) => Err(JobStoreError::Conflict),
            Err(e) => Err(unavailable(e)),
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

    async fn list(&self, limit: usize, cursor: Option<&str>) -> Result<JobPage, JobStoreError> {
        let start = cursor.map(decode_cursor).transpose()?;
        let output = self
            .client
            .scan()
            .table_name(&self.table)
            .limit(i32::try_from(limit.max(1)).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start.as_ref().map(key_of))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        let jobs = output
            .items()
            .iter()
            .map(from_item)
            .collect::<Result<Vec<_>, _>>()?;
        let next_cursor = match output.last_evaluated_key() {
            Some(key) => {
                let id = key
                    .get(JOBS_TABLE_KEY)
                    .and_then(|v| v.as_s().ok())
                    .and_then(|s| JobId::parse(s).ok())
                    .ok_or_else(|| JobStoreError::Malformed(Cause::msg("last evaluated key")))?;
                Some(encode_cursor(&id))
            }
            None => None,
        };
        Ok(JobPage { jobs, next_cursor })
    }

    async fn replace(&self, job: &Job, expected_version: u64) -> Result<(), JobStoreError> {
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

    async fn delete(&self, id: &JobId) -> Result<bool, JobStoreError> {
        let output = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_of(id)))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(output.attributes().is_some_and(|a| !a.is_empty()))
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
            version: 4,
        };
        assert_eq!(from_item(&to_item(&job)).unwrap(), job);
    }
}
