//! The embedded scheduler: EventBridge emulated with tokio timers in this process.
//!
//! Each scheduled job gets a timer that fires at the period its rule would have, and hands
//! the target exactly the JSON the rule would deliver. The first firing is immediate, so a
//! job created locally shows prices at once. Timers live as long as the process.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use futures::future::BoxFuture;
use tokio::task::AbortHandle;

use super::{PollInput, Scheduler, SchedulerError, rule_period};
use crate::cause::Cause;
use crate::domain::{Job, JobId};

/// What a timer invokes: the poller's handler, given the rule's input.
pub type LocalTarget = Arc<dyn Fn(serde_json::Value) -> BoxFuture<'static, ()> + Send + Sync>;

/// Timers per job, invoking a target set once by the local runner.
#[derive(Default)]
pub struct LocalScheduler {
    timers: Mutex<HashMap<JobId, AbortHandle>>,
    target: Arc<OnceLock<LocalTarget>>,
}

impl LocalScheduler {
    /// A scheduler without a target yet: timers fire into nothing until one is set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets what the timers invoke (the poller handler); only the first call counts.
    pub fn set_target(&self, target: LocalTarget) {
        if self.target.set(target).is_err() {
            tracing::warn!("the local scheduler's target was already set");
        }
    }

    /// Ids of the jobs with a running timer.
    pub fn scheduled(&self) -> Vec<JobId> {
        self.lock().keys().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<JobId, AbortHandle>> {
        // A panic while holding this lock cannot leave the map half-changed.
        self.timers.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for LocalScheduler {
    fn drop(&mut self) {
        for (_, timer) in self.lock().drain() {
            timer.abort();
        }
    }
}

#[async_trait]
impl Scheduler for LocalScheduler {
    async fn schedule(&self, job: &Job) -> Result<(), SchedulerError> {
        let period = rule_period(job.interval_secs);
        let input: serde_json::Value = serde_json::from_str(&PollInput::for_job(&job.id).to_json())
            .map_err(|e| SchedulerError::Unavailable(Cause::new(e)))?;
        let target = Arc::clone(&self.target);
        let timer = tokio::spawn(async move {
            let mut ticker = tokio::time::interval(period);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                match target.get() {
                    Some(invoke) => {
                        tokio::spawn(invoke(input.clone()));
                    }
                    None => tracing::debug!("local scheduler fired without a target"),
                }
            }
        });
        if let Some(old) = self.lock().insert(job.id.clone(), timer.abort_handle()) {
            old.abort();
        }
        Ok(())
    }

    async fn unschedule(&self, id: &JobId) -> Result<(), SchedulerError> {
        if let Some(timer) = self.lock().remove(id) {
            timer.abort();
        }
        Ok(())
    }

    fn describe(&self) -> String {
        "tokio timers in this process (set POLLER_FUNCTION_ARN for EventBridge)".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::JobStatus;
    use crate::domain::{ProviderId, Symbol};
    use chrono::Utc;
    use std::time::Duration;

    fn job(interval_secs: u32) -> Job {
        Job::new(
            vec![Symbol::parse("AAPL").unwrap()],
            interval_secs,
            ProviderId::Simulated,
            JobStatus::Active,
            Utc::now(),
        )
    }

    #[tokio::test]
    async fn a_timer_delivers_the_rules_input_at_once_and_stops_when_unscheduled() {
        let scheduler = LocalScheduler::new();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        scheduler.set_target(Arc::new(move |input| {
            let tx = tx.clone();
            Box::pin(async move {
                let _ = tx.send(input);
            })
        }));
        let j = job(10);
        scheduler.schedule(&j).await.unwrap();
        let got = tokio::time::timeout(Duration::from_secs(2), rx.recv())
            .await
            .expect("the first firing is immediate")
            .unwrap();
        assert_eq!(got, serde_json::json!({"job_id": j.id.as_str()}));
        assert_eq!(scheduler.scheduled(), vec![j.id.clone()]);

        scheduler.unschedule(&j.id).await.unwrap();
        assert!(scheduler.scheduled().is_empty());
        // Unscheduling twice is fine.
        scheduler.unschedule(&j.id).await.unwrap();
    }
}
