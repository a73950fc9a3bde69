//! The price store: raw provider responses, and what the consumer derives from them
//! (price points, moving averages, dead letters).
//!
//! Ports: [`PriceStore`] (raw quotes, `raw.rs`) and [`PointStore`] (points, averages and dead
//! letters, `points.rs`). Adapters: `postgres/` and `memory/`, one file per port in each.

mod memory;
mod migrations;
mod points;
pub mod postgres;
mod raw;

pub use memory::{MemoryPointStore, MemoryStore};
pub use migrations::{MIGRATIONS, Migration};
pub use points::{AppliedBatch, ConsumedBatch, DeadLetter, HistoryQuery, PointStore};
pub use postgres::{DatabaseConfig, PostgresStore, SslMode};
pub use raw::PriceStore;

use crate::cause::Cause;

/// A store operation that did not complete.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached, or no connection was free in time.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] Cause),
    /// The database refused or failed the statement.
    #[error("database error: {0}")]
    Query(#[source] Cause),
    /// The database refused the data itself (a value it cannot hold, a constraint): the same
    /// data will be refused again, while other data may pass. The consumer sets such records
    /// aside rather than retrying them forever.
    #[error("database refused the data: {0}")]
    Rejected(#[source] Cause),
}
