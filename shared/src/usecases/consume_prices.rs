//! Consuming price events: records in, price points, moving averages and dead letters out.
//!
//! The one path every event source takes (the MSK-triggered `ma-consumer`, the local
//! runner's emulation of it, the in-process bus), so they all store the same thing.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use crate::domain::{AverageSpec, PriceEvent, PricePoint};
use crate::store::{AppliedBatch, ConsumedBatch, DeadLetter, PointStore, StoreError};
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

    /// Consumes one batch: a record that is not a valid event becomes a dead letter and the
    /// rest go on; an event seen before, or a repeat of a quote already stored (same symbol,
    /// source and quote time), changes nothing. The batch is applied in one transaction; if
    /// the database refuses some of its data, the batch is halved until the refused records
    /// are alone, and those are kept as dead letters while the rest is stored. An unavailable
    /// database fails the call, so that its source delivers the batch again (anything
    /// committed by then is skipped as a duplicate).
    #[tracing::instrument(skip_all, fields(records = records.len()))]
    pub async fn consume(&self, records: &[ConsumedRecord]) -> Result<ConsumeReport, StoreError> {
        let started = Instant::now();
        let (mut items, repeated) = decode(records);
        let applied = match self.apply(&mut items).await {
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

    /// Applies `items` in as few transactions as the database allows: all of them at once,
    /// else each half, and so on down to one record; a point the database refuses alone
    /// becomes a dead letter.
    async fn apply(&self, items: &mut [Item<'_>]) -> Result<AppliedBatch, StoreError> {
        let mut total = AppliedBatch::default();
        // Ranges of `items` still to apply, the next one last.
        let mut pending = Vec::new();
        pending.push(0..items.len());
        while let Some(range) = pending.pop() {
            let part = &mut items[range.clone()];
            match self.store.apply_batch(&batch_of(part), &self.specs).await {
                Ok(applied) => {
                    total.points_added += applied.points_added;
                    total.duplicates += applied.duplicates;
                    total.dead_letters_added += applied.dead_letters_added;
                    total.averages_written += applied.averages_written;
                }
                Err(StoreError::Rejected(cause)) if part.len() > 1 => {
                    tracing::warn!(records = part.len(), error = %cause, "the database refused part of a batch; halving it");
                    let middle = range.start + part.len() / 2;
                    pending.push(middle..range.end);
                    pending.push(range.start..middle);
                }
                Err(StoreError::Rejected(cause)) => {
                    // A dead letter refused alone cannot be set aside any further.
                    let Item::Point(_, record) = part[0] else {
                        return Err(StoreError::Rejected(cause));
                    };
                    let reason = format!("the database refused it: {cause}");
                    part[0] = Item::Letter(dead_letter(record, &reason));
                    pending.push(range);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(total)
    }
}

/// The records of a batch as points and dead letters, and how many repeated an earlier
/// record of the batch (the same `raw_response_id`, or the same symbol, source and quote
/// time), which are left out.
fn decode(records: &[ConsumedRecord]) -> (Vec<Item<'_>>, usize) {
    let mut ids = HashSet::with_capacity(records.len());
    let mut quotes = HashSet::with_capacity(records.len());
    let mut repeated = 0;
    let mut items = Vec::with_capacity(records.len());
    for record in records {
        let decoded = record
            .value
            .as_deref()
            .map_err(|reason| reason.to_owned())
            .and_then(|bytes| PriceEvent::decode(bytes).map_err(|e| e.to_string()));
        match decoded {
            Ok(event) => {
                let quote = (event.symbol.clone(), event.source.clone(), event.timestamp);
                if !ids.insert(event.raw_response_id) || !quotes.insert(quote) {
                    repeated += 1;
                    continue;
                }
                let point = PricePoint {
                    raw_response_id: event.raw_response_id,
                    symbol: event.symbol,
                    price: event.price,
                    quote_time: event.timestamp,
                    source: event.source,
                };
                items.push(Item::Point(point, record));
            }
            Err(reason) => items.push(Item::Letter(dead_letter(record, &reason))),
        }
    }
    (items, repeated)
}

/// One usable record of a batch: a price point (with the record it came from, to set it
/// aside if the database refuses it), or a dead letter.
enum Item<'a> {
    Point(PricePoint, &'a ConsumedRecord),
    Letter(DeadLetter),
}

fn batch_of(items: &[Item<'_>]) -> ConsumedBatch {
    let mut batch = ConsumedBatch::default();
    for item in items {
        match item {
            Item::Point(point, _) => batch.points.push(point.clone()),
            Item::Letter(letter) => batch.dead_letters.push(letter.clone()),
        }
    }
    batch
}

/// Longest dead-letter reason kept, in characters.
const MAX_REASON_CHARS: usize = 1_000;

/// The dead letter of `record`. The reason may quote the input (a serde error quotes the
/// offending text): control characters, NUL included, are written as escapes, since
/// PostgreSQL's `text` cannot hold a NUL, and it is cut to [`MAX_REASON_CHARS`].
fn dead_letter(record: &ConsumedRecord, reason: &str) -> DeadLetter {
    tracing::warn!(
        topic = %record.topic,
        partition = record.partition,
        offset = record.offset,
        reason = %sanitise(reason),
        "record kept as a dead letter"
    );
    DeadLetter {
        topic: sanitise(&record.topic),
        partition: record.partition,
        offset: record.offset,
        payload: record.value.as_ref().ok().cloned(),
        reason: sanitise(reason),
    }
}

fn sanitise(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_REASON_CHARS));
    for c in text.chars().take(MAX_REASON_CHARS) {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_hold_no_control_characters() {
        let reason = sanitise("symbol may only contain letters (found '\0')\n");
        assert_eq!(
            reason,
            "symbol may only contain letters (found '\\u{0}')\\n"
        );
        assert!(!reason.chars().any(char::is_control));
        assert_eq!(sanitise(&"x".repeat(5_000)).len(), MAX_REASON_CHARS);
    }
}
