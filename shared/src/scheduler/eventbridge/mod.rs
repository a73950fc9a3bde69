//! EventBridge adapter of the scheduler: one rule per job, targeting the poller function.

mod config;

pub use config::{DEFAULT_RULE_PREFIX, EventBridgeConfig};

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_eventbridge::types::{RuleState, Target};

use super::{PollInput, Scheduler, SchedulerError, rate_expression};
use crate::cause::Cause;
use crate::domain::{Job, JobId};

/// The id of the one target of every job rule.
pub const TARGET_ID: &str = "poller";

/// Job rules on the default event bus, named `{prefix}{job_id}`.
#[derive(Clone)]
pub struct EventBridgeScheduler {
    client: Client,
    target_arn: String,
    rule_prefix: String,
}

impl EventBridgeScheduler {
    /// Rules on `client`'s account and region, targeting the function `target_arn`.
    pub fn new(
        client: Client,
        target_arn: impl Into<String>,
        rule_prefix: impl Into<String>,
    ) -> Self {
        Self {
            client,
            target_arn: target_arn.into(),
            rule_prefix: rule_prefix.into(),
        }
    }

    /// A scheduler whose client starts from `sdk` (see [`crate::aws_sdk::load`]), with
    /// `endpoint` (moto) when given.
    pub fn connect(
        sdk: &SdkConfig,
        target_arn: impl Into<String>,
        rule_prefix: impl Into<String>,
        endpoint: Option<&str>,
    ) -> Self {
        let mut config = aws_sdk_eventbridge::config::Builder::from(sdk);
        if let Some(url) = endpoint {
            config = config.endpoint_url(url);
        }
        Self::new(Client::from_conf(config.build()), target_arn, rule_prefix)
    }

    /// The name of job `id`'s rule (at most 64 characters: the prefix is kept short).
    pub fn rule_name(&self, id: &JobId) -> String {
        format!("{}{id}", self.rule_prefix)
    }

    async fn delete_rule(&self, name: &str) -> Result<(), SchedulerError> {
        match self.client.delete_rule().name(name).send().await {
            Ok(_) => Ok(()),
            Err(e) if not_found(&e) => Ok(()),
            Err(e) => Err(unavailable(e)),
        }
    }
}

fn unavailable<E, R>(e: SdkError<E, R>) -> SchedulerError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    SchedulerError::Unavailable(Cause::msg(DisplayErrorContext(&e).to_string()))
}

fn not_found<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    e.as_service_error()
        .and_then(|s| s.code())
        .is_some_and(|c| c == "ResourceNotFoundException")
}

#[async_trait]
impl Scheduler for EventBridgeScheduler {
    async fn schedule(&self, job: &Job) -> Result<(), SchedulerError> {
        let name = self.rule_name(&job.id);
        self.client
            .put_rule()
            .name(&name)
            .schedule_expression(rate_expression(job.interval_secs))
            .state(RuleState::Enabled)
            .description(format!(
                "market-data polling job {} every {} s",
                job.id, job.interval_secs
            ))
            .send()
            .await
            .map_err(unavailable)?;
        let target = Target::builder()
            .id(TARGET_ID)
            .arn(&self.target_arn)
            .input(PollInput::for_job(&job.id).to_json())
            .build()
            .map_err(|e| SchedulerError::Unavailable(Cause::new(e)));
        let outcome = match target {
            Ok(target) => match self
                .client
                .put_targets()
                .rule(&name)
                .targets(target)
                .send()
                .await
            {
                Ok(out) if out.failed_entry_count() > 0 => Err(SchedulerError::Unavailable(
                    Cause::msg(format!("target not added: {:?}", out.failed_entries())),
                )),
                Ok(_) => Ok(()),
                Err(e) => Err(unavailable(e)),
            },
            Err(e) => Err(e),
        };
        if let Err(e) = outcome {
            // No rule without its target: remove the half-made rule before reporting.
            if let Err(cleanup) = self.delete_rule(&name).await {
                tracing::error!(rule = %name, error = %cleanup, "half-made rule left behind");
            }
            return Err(e);
        }
        Ok(())
    }

    async fn unschedule(&self, id: &JobId) -> Result<(), SchedulerError> {
        let name = self.rule_name(id);
        match self
            .client
            .remove_targets()
            .rule(&name)
            .ids(TARGET_ID)
            .send()
            .await
        {
            Ok(_) => {}
            Err(e) if not_found(&e) => return Ok(()),
            Err(e) => return Err(unavailable(e)),
        }
        self.delete_rule(&name).await
    }

    fn describe(&self) -> String {
        format!(
            "eventbridge rules {}<job id> -> {}",
            self.rule_prefix, self.target_arn
        )
    }
}
