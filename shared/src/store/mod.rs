//! The price store: raw provider responses, and what the consumer derives from them
//! (price points, moving averages, dead letters).

mod memory;
mod memory_points;
mod migrations;
mod points;
mod postgres;
mod postgres_points;

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::{FetchedQuote, PriceEvent};

pub use memory::MemoryStore;
pub use memory_points::MemoryPointStore;
pub use migrations::{MIGRATIONS, Migration};
pub use points::{AppliedBatch, ConsumedBatch, DeadLetter, HistoryQuery, PointStore};
pub use postgres::PostgresStore;

/// A store operation that did not complete.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached, or no connection was free in time.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The database refused or failed the statement.
    #[error("database error: {0}")]
    Query(String),
}

/// The store port, as far as fetching quotes needs it.
#[async_trait]
pub trait PriceStore: Send + Sync {
    /// Stores a fetched quote under `id`, its event not yet delivered. The re-publisher
    /// leaves it alone until `republish_after`, so the first delivery attempt can finish.
    async fn insert_raw(
        &self,
        id: Uuid,
        fetched: &FetchedQuote,
        republish_after: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Records that the broker confirmed the event of raw row `id`.
    async fn mark_delivered(&self, id: Uuid) -> Result<(), StoreError>;

    /// Takes up to `limit` rows whose events were never confirmed and whose time has come,
    /// holding each for `lease` so concurrent re-publishers do not take the same rows.
    async fn claim_undelivered(
        &self,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<PriceEvent>, StoreError>;

    /// Gives claimed rows back before their lease ends, due again after `after`: their
    /// re-publishing failed, and they should not wait out the whole lease.
    async fn release(&self, ids: &[Uuid], after: Duration) -> Result<(), StoreError>;

    /// Whether the store answers (for readiness).
    async fn ping(&self) -> Result<(), StoreError>;
}
