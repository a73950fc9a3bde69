//! The re-publisher: sends the events whose delivery was never confirmed.
//!
//! Rows are claimed with a lease, so several re-publishers (or a re-publisher and a slow
//! first attempt) do not send the same event at the same time; if one is sent twice
//! anyway, consumers ignore the repeat by its `raw_response_id`.

use std::sync::Arc;
use std::time::Duration;

use tracing::warn;

use crate::events::EventBus;
use crate::store::{PriceStore, StoreError};
use crate::telemetry::Metrics;

/// How long a claimed row is left to its claimant before another may take it.
const LEASE: Duration = Duration::from_secs(60);

/// What one run achieved.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RepublishReport {
    /// Rows taken for re-publishing.
    pub claimed: usize,
    /// Events the bus confirmed (and rows marked delivered).
    pub delivered: usize,
    /// Events still not delivered; they are tried again after the lease.
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
    /// the bus stops confirming.
    pub async fn run(&self, batch: usize) -> Result<RepublishReport, StoreError> {
        let mut report = RepublishReport::default();
        loop {
            let events = self.store.claim_undelivered(batch, LEASE).await?;
            let claimed = events.len();
            report.claimed += claimed;
            let mut failed = 0;
            for event in events {
                match self.bus.publish(&event).await {
                    Ok(()) => {
                        self.metrics.count("EventRepublished", vec![]);
                        self.store.mark_delivered(event.raw_response_id).await?;
                        report.delivered += 1;
                    }
                    Err(e) => {
                        warn!(raw_response_id = %event.raw_response_id, error = %e, "re-publish failed");
                        failed += 1;
                    }
                }
            }
            report.failed += failed;
            if claimed < batch || failed > 0 {
                return Ok(report);
            }
        }
    }
}
