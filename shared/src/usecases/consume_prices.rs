//! Consuming price events: records in, price points, moving averages and dead letters out.
//!
//! The one path every event source takes (the MSK-triggered `ma-consumer`, the local
//! runner's emulation of it, the in-process bus), so they all store the same thing.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use crate::domain::{AverageSpec, PriceEvent, PricePoint};
use crate::store::{ConsumedBatch, DeadLetter, PointStore, StoreError};
use crate::telemetry::Metrics;

/// One record as an event source delivered it.
#[derive(Debug, Clone)]
pub struct ConsumedRecord {
    /// The topic it was read from.
    pub topic: String,
    /// Its partition.
    pub partition: i32,
    /// Its offset in the partition.
    pub offset: i64,
    /// Its value, or why the source could not give one (no value, bad encoding).
    pub value: Result<Vec<u8>, String>,
}

/// What one batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ConsumeReport {
    /// Records in the batch.
    pub records: usize,
    /// Price points stored now.
    pub points_added: usize,
    /// Events already consumed before (or twice in this batch), changing nothing.
    pub duplicates: usize,
    /// Records that were not valid price events, kept as dead letters.
    pub dead_letters: usize,
    /// Moving averages written or corrected.
    pub averages_written: usize,
}

/// Turns batches of price-event records into price points and moving averages.
#[derive(Clone)]
pub struct PriceConsumer {
    store: Arc<dyn PointStore>,
    specs: Arc<[AverageSpec]>,
    metrics: Metrics,
}

impl PriceConsumer {
    /// A consumer keeping the averages of `specs` in `store`.
    pub fn new(store: Arc<dyn PointStore>, specs: &[AverageSpec], metrics: Metrics) -> Self {
        Self {
            store,
            specs: specs.into(),
            metrics,
        }
    }

    /// The averages this consumer keeps.
    pub fn specs(&self) -> &[AverageSpec] {
        &self.specs
    }

    /// Consumes one batch, atomically: a record that is not a valid event becomes a dead
    /// letter and the rest go on; an event seen before changes nothing. A store error fails
    /// the whole batch, with nothing written, so that its source delivers it again.
    #[tracing::instrument(skip_all, fields(records = records.len()))]
    pub async fn consume(&self, records: &[ConsumedRecord]) -> Result<ConsumeReport, StoreError> {
        let started = Instant::now();
        let mut batch = ConsumedBatch::default();
        let mut seen = HashSet::with_capacity(records.len());
        let mut repeated = 0;
        for record in records {
            let decoded = record
                .value
                .as_deref()
                .map_err(|reason| reason.to_owned())
                .and_then(|bytes| PriceEvent::decode(bytes).map_err(|e| e.to_string()));
            match decoded {
                Ok(event) if !seen.insert(event.raw_response_id) => repeated += 1,
                Ok(event) => batch.points.push(PricePoint {
                    raw_response_id: event.raw_response_id,
                    symbol: event.symbol,
                    price: event.price,
                    quote_time: event.timestamp,
                    source: event.source,
                }),
                Err(reason) => {
                    tracing::warn!(
                        topic = %record.topic,
                        partition = record.partition,
                        offset = record.offset,
                        %reason,
                        "record kept as a dead letter"
                    );
                    batch.dead_letters.push(DeadLetter {
                        topic: record.topic.clone(),
                        partition: record.partition,
                        offset: record.offset,
                        payload: record.value.as_ref().ok().cloned(),
                        reason,
                    });
                }
            }
        }

        let applied = match self.store.apply_batch(&batch, &self.specs).await {
            Ok(applied) => applied,
            Err(e) => {
                self.metrics.count("ConsumerBatchFailed", Vec::new());
                return Err(e);
            }
        };
        let report = ConsumeReport {
            records: records.len(),
            points_added: applied.points_added,
            duplicates: applied.duplicates + repeated,
            dead_letters: applied.dead_letters_added,
            averages_written: applied.averages_written,
        };
        let amount = |n: usize| n as f64;
        self.metrics
            .amount("ConsumerBatchSize", amount(report.records), Vec::new());
        self.metrics
            .amount("PricePointsStored", amount(report.points_added), Vec::new());
        self.metrics
            .amount("DuplicateEvents", amount(report.duplicates), Vec::new());
        self.metrics
            .amount("DeadLetters", amount(report.dead_letters), Vec::new());
        self.metrics.millis(
            "ConsumerBatchLatency",
            started.elapsed().as_secs_f64() * 1e3,
            Vec::new(),
        );
        tracing::info!(
            records = report.records,
            points_added = report.points_added,
            duplicates = report.duplicates,
            dead_letters = report.dead_letters,
            averages_written = report.averages_written,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "batch consumed"
        );
        Ok(report)
    }
}
