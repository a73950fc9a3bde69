//! In-memory adapter of the store port: the embedded default of the local runner.
//!
//! Holds rows for the life of the process, with the same delivery bookkeeping as the
//! PostgreSQL store, so the local runner behaves alike on either.

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{PriceStore, StoreError};
use crate::domain::{FetchedQuote, PriceEvent};

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

/// The in-memory store.
#[derive(Default)]
pub struct MemoryStore {
    raw: Mutex<Vec<StoredRaw>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every raw row, oldest first.
    pub fn raw_rows(&self) -> Vec<StoredRaw> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<StoredRaw>> {
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
        if rows.iter().any(|r| r.id == id) {
            return Err(StoreError::Query(format!("duplicate raw row id {id}")));
        }
        rows.push(StoredRaw {
            id,
            fetched: fetched.clone(),
            delivered_at: None,
            republish_after,
        });
        Ok(())
    }

    async fn mark_delivered(&self, id: Uuid) -> Result<(), StoreError> {
        if let Some(row) = self.lock().iter_mut().find(|r| r.id == id) {
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
            .iter_mut()
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

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
