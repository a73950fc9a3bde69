//! The consumer's side of the store: price points, moving averages and dead letters.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::StoreError;
use crate::domain::{AverageSpec, MovingAverage, PricePoint, Symbol};

/// A record the consumer could not use, kept whole so nothing is silently lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The topic it was read from.
    pub topic: String,
    /// Its partition.
    pub partition: i32,
    /// Its offset: with topic and partition, its identity (a redelivered poison record is
    /// kept once).
    pub offset: i64,
    /// Its value as received, if it had one.
    pub payload: Option<Vec<u8>>,
    /// Why it could not be used.
    pub reason: String,
}

/// What one consumed batch brings to the store.
#[derive(Debug, Clone, Default)]
pub struct ConsumedBatch {
    /// The valid events, as points.
    pub points: Vec<PricePoint>,
    /// The records that were not valid events.
    pub dead_letters: Vec<DeadLetter>,
}

/// What applying a batch changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppliedBatch {
    /// Points stored now.
    pub points_added: usize,
    /// Points already stored before (redelivered events), left as they were.
    pub duplicates: usize,
    /// Dead letters stored now.
    pub dead_letters_added: usize,
    /// Averages written or corrected.
    pub averages_written: usize,
}

/// Which stored points of a symbol to read, newest first.
#[derive(Debug, Clone)]
pub struct HistoryQuery {
    /// The symbol.
    pub symbol: Symbol,
    /// Only points quoted at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Only points quoted at or before this time.
    pub to: Option<DateTime<Utc>>,
    /// Only points strictly older than this one (by quote time, then id): where the
    /// previous page ended.
    pub before: Option<(DateTime<Utc>, Uuid)>,
    /// Most points returned.
    pub limit: usize,
}

/// The consumer's store port.
#[async_trait]
pub trait PointStore: Send + Sync {
    /// Applies a batch atomically: stores its dead letters and its points (a point whose
    /// `raw_response_id` is stored already changes nothing), then brings the averages of
    /// `specs` up to date for every symbol that gained a point: as of the symbol's newest
    /// point, and again wherever a late, older point changes a stored value. Either all of
    /// it is stored or nothing is.
    async fn apply_batch(
        &self,
        batch: &ConsumedBatch,
        specs: &[AverageSpec],
    ) -> Result<AppliedBatch, StoreError>;

    /// Stored points of a symbol, newest first.
    async fn history(&self, query: &HistoryQuery) -> Result<Vec<PricePoint>, StoreError>;

    /// The newest stored average of a symbol, if there is one.
    async fn latest_average(
        &self,
        symbol: &Symbol,
        spec: AverageSpec,
    ) -> Result<Option<MovingAverage>, StoreError>;
}
