//! In-memory adapter of the store port: the embedded default of the local runner.
//!
//! Holds the most recent rows (up to a capacity) for the life of the process, with the same
//! delivery bookkeeping as the PostgreSQL store, so the local runner behaves alike on either.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

mod points;

pub use points::MemoryPointStore;

use crate::cause::Cause;
use crate::domain::{FetchedQuote, PriceEvent};
use crate::store::{PriceStore, StoreError};

/// One stored raw response.
#[derive(Debug, Clone)]
pub struct StoredRaw {
    /// The row id, also the event's `raw_response_id`.
    pub id: Uuid,
    /// What was fetched.
    pub fetched: FetchedQuote,
    /// When the broker confirmed the event, if it did.
    pub delivered_at: Option<DateTime<Utc>>,
    republish_after: DateTime<Utc>,
}

/// Rows kept by default: enough for a day of local polling, bounded for a long-running runner.
pub const DEFAULT_CAPACITY: usize = 100_000;

/// The in-memory store.
pub struct MemoryStore {
    raw: Mutex<Rows>,
    capacity: usize,
}

#[derive(Default)]
struct Rows {
    by_id: HashMap<Uuid, StoredRaw>,
    order: VecDeque<Uuid>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }
}

impl MemoryStore {
    /// An empty store of [`DEFAULT_CAPACITY`] rows.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store that keeps the newest `capacity` rows, dropping the oldest beyond.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            raw: Mutex::new(Rows::default()),
            capacity: capacity.max(1),
        }
    }

    /// Every kept raw row, oldest first.
    pub fn raw_rows(&self) -> Vec<StoredRaw> {
        let rows = self.lock();
        rows.order
            .iter()
            .filter_map(|id| rows.by_id.get(id).cloned())
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Rows> {
        self.raw.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl PriceStore for MemoryStore {
    async fn insert_raw(
        &self,
        id: Uuid,
        fetched: &FetchedQuote,
        republish_after: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut rows = self.lock();
        if rows.by_id.contains_key(&id) {
            return Err(StoreError::Query(Cause::msg(format!(
                "duplicate raw row id {id}"
            ))));
        }
        rows.by_id.insert(
            id,
            StoredRaw {
                id,
                fetched: fetched.clone(),
                delivered_at: None,
                republish_after,
            },
        );
        rows.order.push_back(id);
        while rows.order.len() > self.capacity {
            if let Some(oldest) = rows.order.pop_front() {
                rows.by_id.remove(&oldest);
            }
        }
        Ok(())
    }

    async fn mark_delivered(&self, id: Uuid) -> Result<(), StoreError> {
        if let Some(row) = self.lock().by_id.get_mut(&id) {
            row.delivered_at.get_or_insert_with(Utc::now);
        }
        Ok(())
    }

    async fn claim_undelivered(
        &self,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<PriceEvent>, StoreError> {
        let now = Utc::now();
        let until = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
        let mut rows = self.lock();
        let mut due: Vec<&mut StoredRaw> = rows
            .by_id
            .values_mut()
            .filter(|r| r.delivered_at.is_none() && r.republish_after <= now)
            .collect();
        due.sort_by_key(|r| r.republish_after);
        Ok(due
            .into_iter()
            .take(limit)
            .map(|r| {
                r.republish_after = until;
                PriceEvent::from_quote(&r.fetched.quote, r.id)
            })
            .collect())
    }

    async fn oldest_undelivered(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(self
            .lock()
            .by_id
            .values()
            .filter(|r| r.delivered_at.is_none())
            .map(|r| r.fetched.quote.fetched_at)
            .min())
    }

    async fn release(&self, ids: &[Uuid], after: Duration) -> Result<(), StoreError> {
        let due = Utc::now() + chrono::Duration::from_std(after).unwrap_or(chrono::Duration::MAX);
        let mut rows = self.lock();
        for id in ids {
            if let Some(row) = rows.by_id.get_mut(id)
                && row.delivered_at.is_none()
            {
                row.republish_after = due;
            }
        }
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Symbol;
    use crate::providers::Simulated;

    fn fetched(symbol: &str) -> FetchedQuote {
        Simulated.quote_at(&Symbol::parse(symbol).unwrap(), Utc::now())
    }

    fn ago(secs: i64) -> DateTime<Utc> {
        Utc::now() - chrono::Duration::seconds(secs)
    }

    #[tokio::test]
    async fn only_due_undelivered_rows_are_claimed_once_per_lease() {
        let store = MemoryStore::new();
        let (due, later, done) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        store.insert_raw(due, &fetched("A"), ago(5)).await.unwrap();
        store
            .insert_raw(later, &fetched("B"), ago(-60))
            .await
            .unwrap();
        store.insert_raw(done, &fetched("C"), ago(5)).await.unwrap();
        store.mark_delivered(done).await.unwrap();
        let lease = Duration::from_secs(60);
        let claimed = store.claim_undelivered(10, lease).await.unwrap();
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].raw_response_id, due);
        assert!(store.claim_undelivered(10, lease).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn the_oldest_rows_go_beyond_capacity() {
        let store = MemoryStore::with_capacity(3);
        let ids: Vec<Uuid> = (0..5).map(|_| Uuid::now_v7()).collect();
        for id in &ids {
            store.insert_raw(*id, &fetched("A"), ago(0)).await.unwrap();
        }
        let kept: Vec<Uuid> = store.raw_rows().iter().map(|r| r.id).collect();
        assert_eq!(kept, ids[2..]);
        assert!(
            store
                .insert_raw(ids[4], &fetched("A"), ago(0))
                .await
                .is_err()
        );
    }
}
