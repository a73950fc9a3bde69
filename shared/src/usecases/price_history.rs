//! Reading what the consumer stored: a symbol's price points, page by page, and its latest
//! moving averages.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::{AverageSpec, MovingAverage, PricePoint, Symbol};
use crate::store::{HistoryQuery, PointStore, StoreError};

/// Most points one page may hold.
pub const MAX_PAGE: usize = 1_000;

/// Points on a page when the caller names no limit.
pub const DEFAULT_PAGE: usize = 100;

/// One page of a symbol's points, newest first.
#[derive(Debug, Clone)]
pub struct HistoryPage {
    /// The points.
    pub points: Vec<PricePoint>,
    /// Where the next page starts, when there is one: the last point's order key.
    pub next: Option<(DateTime<Utc>, Uuid)>,
}

/// Why an average cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum AverageError {
    /// The consumer does not compute this one (not in `MA_WINDOWS`).
    #[error("{spec} is not computed; available: {available}")]
    NotComputed {
        /// The average asked for.
        spec: AverageSpec,
        /// Those that are, comma-separated.
        available: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Reads the consumer's results.
#[derive(Clone)]
pub struct PriceHistory {
    store: Arc<dyn PointStore>,
    specs: Arc<[AverageSpec]>,
}

impl PriceHistory {
    /// A reader of `store`, which holds the averages of `specs`.
    pub fn new(store: Arc<dyn PointStore>, specs: &[AverageSpec]) -> Self {
        Self {
            store,
            specs: specs.into(),
        }
    }

    /// The averages that are computed.
    pub fn specs(&self) -> &[AverageSpec] {
        &self.specs
    }

    /// One page of points; `query.limit` is clamped to 1..=[`MAX_PAGE`].
    pub async fn points(&self, mut query: HistoryQuery) -> Result<HistoryPage, StoreError> {
        let limit = query.limit.clamp(1, MAX_PAGE);
        // One more than asked tells whether another page follows.
        query.limit = limit + 1;
        let mut points = self.store.history(&query).await?;
        let next = if points.len() > limit {
            points.truncate(limit);
            points.last().map(PricePoint::order_key)
        } else {
            None
        };
        Ok(HistoryPage { points, next })
    }

    /// The newest value of an average; `Ok(None)` until enough points are stored.
    pub async fn latest_average(
        &self,
        symbol: &Symbol,
        spec: AverageSpec,
    ) -> Result<Option<MovingAverage>, AverageError> {
        if !self.specs.contains(&spec) {
            return Err(AverageError::NotComputed {
                spec,
                available: self
                    .specs
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        Ok(self.store.latest_average(symbol, spec).await?)
    }
}
