//! The raw-quote port: every fetched provider response, and whether its event reached the bus.
//!
//! A row is written before its event is published and marked delivered after; the
//! re-publisher sends what was never confirmed, so a quote that was stored is never lost on
//! its way to the consumer.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::StoreError;
use crate::domain::{FetchedQuote, PriceEvent};

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

    /// When the oldest row whose event was never confirmed was fetched (`None` when every
    /// event was delivered): how long the oldest event has waited, for the alarm that says
    /// events are not reaching the consumer.
    async fn oldest_undelivered(&self) -> Result<Option<DateTime<Utc>>, StoreError>;

    /// Whether the store answers (for readiness).
    async fn ping(&self) -> Result<(), StoreError>;
}
