//! In-memory adapter of the consumer's store port: the embedded default of the local runner.
//!
//! Same rules as the PostgreSQL adapter (idempotent on `raw_response_id`, one point per
//! symbol, source and quote time, averages from the
//! domain, a batch applied whole under one lock), bounded so a long-running runner does not
//! grow without end: each symbol keeps its newest [`POINTS_PER_SYMBOL`] points and each
//! average its newest [`AVERAGES_PER_SERIES`] values.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::{AverageSpec, MovingAverage, PricePoint, Symbol, averages_at};
use crate::store::{AppliedBatch, ConsumedBatch, DeadLetter, HistoryQuery, PointStore, StoreError};

/// Points kept per symbol.
pub const POINTS_PER_SYMBOL: usize = 10_000;

/// Values kept per symbol and average.
pub const AVERAGES_PER_SERIES: usize = 1_000;

/// Dead letters kept.
pub const DEAD_LETTERS_KEPT: usize = 10_000;

/// The in-memory point store.
#[derive(Default)]
pub struct MemoryPointStore {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Each symbol's points, sorted by [`PricePoint::order_key`].
    points: HashMap<Symbol, Vec<PricePoint>>,
    ids: HashSet<Uuid>,
    averages: HashMap<(Symbol, AverageSpec), BTreeMap<DateTime<Utc>, rust_decimal::Decimal>>,
    dead_letters: BTreeMap<(String, i32, i64), DeadLetter>,
}

impl MemoryPointStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The dead letters kept, by topic, partition and offset (for the local runner and tests).
    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        self.lock().dead_letters.values().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl PointStore for MemoryPointStore {
    async fn apply_batch(
        &self,
        batch: &ConsumedBatch,
        specs: &[AverageSpec],
    ) -> Result<AppliedBatch, StoreError> {
        let mut state = self.lock();
        let mut applied = AppliedBatch::default();
        for letter in &batch.dead_letters {
            let key = (letter.topic.clone(), letter.partition, letter.offset);
            if let std::collections::btree_map::Entry::Vacant(slot) = state.dead_letters.entry(key)
            {
                slot.insert(letter.clone());
                applied.dead_letters_added += 1;
            }
        }
        while state.dead_letters.len() > DEAD_LETTERS_KEPT {
            state.dead_letters.pop_first();
        }

        let mut since: BTreeMap<Symbol, DateTime<Utc>> = BTreeMap::new();
        for point in &batch.points {
            let series = state.points.entry(point.symbol.clone()).or_default();
            // One point per distinct quote: the same source and quote time is a repeat.
            let first_tie = series.partition_point(|p| p.quote_time < point.quote_time);
            let repeat = series[first_tie..]
                .iter()
                .take_while(|p| p.quote_time == point.quote_time)
                .any(|p| p.source == point.source);
            if repeat || !state.ids.insert(point.raw_response_id) {
                applied.duplicates += 1;
                continue;
            }
            applied.points_added += 1;
            let series = state.points.entry(point.symbol.clone()).or_default();
            let at = series.partition_point(|p| p.order_key() < point.order_key());
            series.insert(at, point.clone());
            since
                .entry(point.symbol.clone())
                .and_modify(|t| *t = (*t).min(point.quote_time))
                .or_insert(point.quote_time);
        }

        for (symbol, oldest_new) in since {
            let State {
                points,
                ids,
                averages,
                ..
            } = &mut *state;
            let Some(series) = points.get_mut(&symbol) else {
                continue;
            };
            let mut at: BTreeSet<DateTime<Utc>> = specs
                .iter()
                .filter_map(|spec| averages.get(&(symbol.clone(), *spec)))
                .flat_map(|values| values.range(oldest_new..).map(|(t, _)| *t))
                .collect();
            if let Some(newest) = series.last() {
                at.insert(newest.quote_time);
            }
            let at: Vec<DateTime<Utc>> = at.into_iter().collect();
            for average in averages_at(&symbol, series, &at, specs) {
                let values = averages.entry((symbol.clone(), average.spec)).or_default();
                if values.insert(average.as_of, average.value) != Some(average.value) {
                    applied.averages_written += 1;
                }
                while values.len() > AVERAGES_PER_SERIES {
                    values.pop_first();
                }
            }
            if series.len() > POINTS_PER_SYMBOL {
                let dropped = series.len() - POINTS_PER_SYMBOL;
                for old in series.drain(..dropped) {
                    ids.remove(&old.raw_response_id);
                }
            }
        }
        Ok(applied)
    }

    async fn history(&self, query: &HistoryQuery) -> Result<Vec<PricePoint>, StoreError> {
        let state = self.lock();
        let Some(series) = state.points.get(&query.symbol) else {
            return Ok(Vec::new());
        };
        Ok(series
            .iter()
            .rev()
            .filter(|p| query.from.is_none_or(|from| p.quote_time >= from))
            .filter(|p| query.to.is_none_or(|to| p.quote_time <= to))
            .filter(|p| query.before.is_none_or(|before| p.order_key() < before))
            .take(query.limit)
            .cloned()
            .collect())
    }

    async fn latest_average(
        &self,
        symbol: &Symbol,
        spec: AverageSpec,
    ) -> Result<Option<MovingAverage>, StoreError> {
        let state = self.lock();
        Ok(state
            .averages
            .get(&(symbol.clone(), spec))
            .and_then(|values| values.last_key_value())
            .map(|(as_of, value)| MovingAverage {
                symbol: symbol.clone(),
                spec,
                as_of: *as_of,
                value: *value,
            }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;

    fn point(symbol: &str, secs: i64, price: i64) -> PricePoint {
        PricePoint {
            raw_response_id: Uuid::now_v7(),
            symbol: Symbol::parse(symbol).unwrap(),
            price: Decimal::from(price),
            quote_time: DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap(),
            source: "simulated".into(),
        }
    }

    #[tokio::test]
    async fn a_late_point_corrects_the_averages_it_belongs_to() {
        let store = MemoryPointStore::new();
        let sma2 = AverageSpec::parse("sma:2").unwrap();
        let (a, b, c) = (point("X", 1, 10), point("X", 2, 20), point("X", 3, 40));
        let batch = |points: Vec<PricePoint>| ConsumedBatch {
            points,
            dead_letters: Vec::new(),
        };
        store
            .apply_batch(&batch(vec![a.clone(), c.clone()]), &[sma2])
            .await
            .unwrap();
        let x = Symbol::parse("X").unwrap();
        let before = store.latest_average(&x, sma2).await.unwrap().unwrap();
        assert_eq!(before.value, Decimal::from(25));

        let late = store
            .apply_batch(&batch(vec![b.clone(), b.clone()]), &[sma2])
            .await
            .unwrap();
        assert_eq!((late.points_added, late.duplicates), (1, 1));
        let after = store.latest_average(&x, sma2).await.unwrap().unwrap();
        assert_eq!(after.as_of, c.quote_time);
        assert_eq!(after.value, Decimal::from(30));

        let again = store
            .apply_batch(&batch(vec![a, b, c]), &[sma2])
            .await
            .unwrap();
        assert_eq!(
            again,
            AppliedBatch {
                duplicates: 3,
                ..AppliedBatch::default()
            }
        );
    }
}
