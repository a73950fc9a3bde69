//! The re-publisher: sends the events whose delivery was never confirmed.
//!
//! Rows are claimed with a lease, so several re-publishers (or a re-publisher and a slow
//! first attempt) do not send the same event at the same time; if one is sent twice
//! anyway, consumers ignore the repeat by its `raw_response_id`.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tracing::warn;

use crate::events::EventBus;
use crate::store::{PriceStore, StoreError};
use crate::telemetry::Metrics;

/// How long a claimed row is left to its claimant before another may take it.
const LEASE: Duration = Duration::from_secs(60);

/// When rows whose re-publishing failed are due again: soon, since the bus is usually back
/// within seconds, but not at once, so a bus that is down is not asked in a tight loop.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(5);

/// What one run achieved.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RepublishReport {
    /// Rows taken for re-publishing.
    pub claimed: usize,
    /// Events the bus confirmed (and rows marked delivered).
    pub delivered: usize,
    /// Events not delivered (or not tried once the bus failed); due again a few seconds later.
    pub failed: usize,
}

/// Re-publishes undelivered events.
#[derive(Clone)]
pub struct Republisher {
    store: Arc<dyn PriceStore>,
    bus: Arc<dyn EventBus>,
    metrics: Metrics,
}

impl Republisher {
    /// A re-publisher from `store` to `bus`.
    pub fn new(store: Arc<dyn PriceStore>, bus: Arc<dyn EventBus>, metrics: Metrics) -> Self {
        Self {
            store,
            bus,
            metrics,
        }
    }

    /// Claims batches of up to `batch` due rows and publishes them until none are due or
    /// the bus stops confirming. At the first event the bus does not confirm, the rest of
    /// the batch is not tried (the bus is down; each would wait the delivery timeout): those
    /// rows are given back, due again after [`RETRY_AFTER_FAILURE`]. A `batch` of 0 claims
    /// nothing and returns at once (an empty claim never ends the loop otherwise).
    ///
    /// Then records how long the oldest event still undelivered has waited
    /// (`UndeliveredEventAgeSeconds`, 0 when none waits): run every minute by the poller's
    /// wake-up, it is what the alarm on undelivered events watches.
    #[tracing::instrument(skip(self))]
    pub async fn run(&self, batch: usize) -> Result<RepublishReport, StoreError> {
        let report = self.send_due(batch).await;
        match self.store.oldest_undelivered().await {
            Ok(oldest) => {
                let age = oldest.map_or(0.0, |t| {
                    (Utc::now() - t).num_milliseconds().max(0) as f64 / 1000.0
                });
                self.metrics
                    .seconds("UndeliveredEventAgeSeconds", age, vec![]);
            }
            Err(e) => warn!(error = %e, "age of the oldest undelivered event unknown"),
        }
        report
    }

    async fn send_due(&self, batch: usize) -> Result<RepublishReport, StoreError> {
        let mut report = RepublishReport::default();
        if batch == 0 {
            return Ok(report);
        }
        loop {
            let events = self.store.claim_undelivered(batch, LEASE).await?;
            let claimed = events.len();
            report.claimed += claimed;
            let mut unsent = Vec::new();
            for event in events {
                if !unsent.is_empty() {
                    unsent.push(event.raw_response_id);
                    continue;
                }
                match self.bus.publish(&event).await {
                    Ok(()) => {
                        self.metrics.count("EventRepublished", vec![]);
                        self.store.mark_delivered(event.raw_response_id).await?;
                        report.delivered += 1;
                    }
                    Err(e) => {
                        warn!(raw_response_id = %event.raw_response_id, error = %e, "re-publish failed");
                        unsent.push(event.raw_response_id);
                    }
                }
            }
            report.failed += unsent.len();
            if !unsent.is_empty() {
                self.store.release(&unsent, RETRY_AFTER_FAILURE).await?;
                return Ok(report);
            }
            if claimed == 0 || claimed < batch {
                return Ok(report);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::InProcessBus;
    use crate::store::MemoryStore;

    // Multi-threaded and spawned: a run that never yields must not starve the timeout.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_of_zero_claims_nothing_and_returns() {
        let republisher = Republisher::new(
            Arc::new(MemoryStore::new()),
            Arc::new(InProcessBus::new(1)),
            Metrics::none(),
        );
        let run = tokio::spawn(async move { republisher.run(0).await });
        let joined = tokio::time::timeout(Duration::from_secs(10), run).await;
        let report = joined
            .expect("run(0) returns")
            .expect("the task does not panic")
            .expect("the memory store answers");
        assert_eq!(report, RepublishReport::default());
    }
}
