//! PostgreSQL adapter of the consumer's store port.
//!
//! A batch is one transaction of a handful of set-based statements, whatever its size:
//! lock the symbols, insert the dead letters, insert the points (`ON CONFLICT DO NOTHING`:
//! on `raw_response_id`, and on symbol, source and quote time, so a repeated quote adds no
//! point), read back what the averages need (every read bounded), upsert the averages. The
//! averages themselves are computed by the domain ([`averages_at`]), not in SQL, so the
//! in-memory adapter computes exactly the same values.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use tokio::time::{Instant, timeout_at};
use uuid::Uuid;

use super::{PostgresStore, query_error};
use crate::cause::Cause;
use crate::domain::{AverageSpec, MovingAverage, PricePoint, Symbol, averages_at};
use crate::store::{AppliedBatch, ConsumedBatch, HistoryQuery, PointStore, StoreError};

/// Statements of a batch's transaction, each allowed the call bound (`DATABASE_TIMEOUT_MS`):
/// begin, dead letters, lock, points, context, affected averages, upsert, commit.
const BATCH_STATEMENTS: u32 = 8;

/// Serialises batches that touch the same symbol (consumers of different partitions, or a
/// rebalance), so each computes its averages over every point committed before it. Taken
/// in symbol order, so two batches never wait on each other in a cycle.
const LOCK_SYMBOLS: &str = "SELECT pg_advisory_xact_lock(hashtextextended('mdb:points:' || s, 0))
     FROM (SELECT DISTINCT unnest($1::text[]) AS s ORDER BY 1) AS symbols";

const INSERT_DEAD_LETTERS: &str =
    "INSERT INTO dead_letters (topic, partition, \"offset\", payload, reason)
     SELECT * FROM unnest($1::text[], $2::int4[], $3::int8[], $4::bytea[], $5::text[])
     ON CONFLICT (topic, partition, \"offset\") DO NOTHING";

const INSERT_POINTS: &str =
    "INSERT INTO price_points (raw_response_id, symbol, price, quote_time, source)
     SELECT * FROM unnest($1::uuid[], $2::text[], $3::numeric[], $4::timestamptz[], $5::text[])
     ON CONFLICT DO NOTHING
     RETURNING symbol, quote_time";

/// Per symbol, three bounded reads (`part` says which): up to `$3` points before the oldest
/// new one (what a window reaching back needs), up to `$4` points from it on (the horizon a
/// late point corrects), and the newest `$5` points (what the newest average needs, when the
/// horizon does not reach it).
const SELECT_CONTEXT: &str =
    "SELECT t.symbol, c.part, c.raw_response_id, c.price, c.quote_time, c.source
     FROM unnest($1::text[], $2::timestamptz[]) AS t(symbol, since)
     CROSS JOIN LATERAL (
         (SELECT 0 AS part, p.raw_response_id, p.price, p.quote_time, p.source FROM price_points p
          WHERE p.symbol = t.symbol AND p.quote_time < t.since
          ORDER BY p.quote_time DESC, p.raw_response_id DESC
          LIMIT $3)
         UNION ALL
         (SELECT 1 AS part, p.raw_response_id, p.price, p.quote_time, p.source FROM price_points p
          WHERE p.symbol = t.symbol AND p.quote_time >= t.since
          ORDER BY p.quote_time, p.raw_response_id
          LIMIT $4)
         UNION ALL
         (SELECT 2 AS part, p.raw_response_id, p.price, p.quote_time, p.source FROM price_points p
          WHERE p.symbol = t.symbol
          ORDER BY p.quote_time DESC, p.raw_response_id DESC
          LIMIT $5)
     ) AS c";

/// Stored averages a late point may have made wrong: those as of its time or later, up to the
/// end of what was read (`until`, none when everything from the point on was read), at most
/// `$4` times per symbol.
const SELECT_AFFECTED_AVERAGES: &str = "SELECT t.symbol, m.as_of
     FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) AS t(symbol, since, until)
     CROSS JOIN LATERAL (
         SELECT DISTINCT a.as_of FROM moving_averages a
         WHERE a.symbol = t.symbol AND a.as_of >= t.since
           AND (t.until IS NULL OR a.as_of < t.until)
         ORDER BY a.as_of
         LIMIT $4
     ) AS m";

/// How far a late point corrects the averages stored after it: from a symbol's oldest new
/// point on, the batch's new points of the symbol plus the larger of this and twice the
/// longest lookback are read. An average as of a time further on either is beyond the
/// points the late one could change, or is left as it was (the newest is always written).
const MIN_RECOMPUTE_HORIZON: usize = 1_000;

const UPSERT_AVERAGES: &str =
    "INSERT INTO moving_averages (symbol, kind, window_size, as_of, value)
     SELECT * FROM unnest($1::text[], $2::text[], $3::int4[], $4::timestamptz[], $5::numeric[])
     ON CONFLICT (symbol, kind, window_size, as_of)
     DO UPDATE SET value = EXCLUDED.value, computed_at = now()
     WHERE moving_averages.value IS DISTINCT FROM EXCLUDED.value";

#[async_trait]
impl PointStore for PostgresStore {
    async fn apply_batch(
        &self,
        batch: &ConsumedBatch,
        specs: &[AverageSpec],
    ) -> Result<AppliedBatch, StoreError> {
        let (mut client, _) = self.checkout().await?;
        // The batch's few statements each get the call bound; a connection that stops
        // answering mid-transaction fails the batch (to be retried) instead of holding it.
        let deadline = Instant::now() + self.timeout * BATCH_STATEMENTS;
        match timeout_at(deadline, apply(&mut client, batch, specs)).await {
            Ok(applied) => applied,
            Err(_) => {
                // Its transaction may still be open on the server: close the connection.
                drop(deadpool_postgres::Object::take(client));
                Err(self.overran())
            }
        }
    }

    async fn history(&self, query: &HistoryQuery) -> Result<Vec<PricePoint>, StoreError> {
        let (client, deadline) = self.checkout().await?;
        let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
        let symbol = query.symbol.as_str();
        let mut sql = String::from(
            "SELECT raw_response_id, price, quote_time, source FROM price_points WHERE symbol = $1",
        );
        let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![&symbol];
        if let Some(from) = &query.from {
            params.push(from);
            sql.push_str(&format!(" AND quote_time >= ${}", params.len()));
        }
        if let Some(to) = &query.to {
            params.push(to);
            sql.push_str(&format!(" AND quote_time <= ${}", params.len()));
        }
        if let Some((time, id)) = &query.before {
            params.push(time);
            params.push(id);
            sql.push_str(&format!(
                " AND (quote_time, raw_response_id) < (${}, ${})",
                params.len() - 1,
                params.len()
            ));
        }
        params.push(&limit);
        sql.push_str(&format!(
            " ORDER BY quote_time DESC, raw_response_id DESC LIMIT ${}",
            params.len()
        ));
        let outcome = timeout_at(deadline, async {
            let statement = client.prepare_cached(&sql).await?;
            client.query(&statement, &params).await
        })
        .await;
        let rows = self.settle(client, outcome)?;
        Ok(rows
            .iter()
            .map(|row| PricePoint {
                raw_response_id: row.get(0),
                symbol: query.symbol.clone(),
                price: row.get(1),
                quote_time: row.get(2),
                source: row.get(3),
            })
            .collect())
    }

    async fn latest_average(
        &self,
        symbol: &Symbol,
        spec: AverageSpec,
    ) -> Result<Option<MovingAverage>, StoreError> {
        let (client, deadline) = self.checkout().await?;
        let window = i32::from(spec.window);
        let outcome = timeout_at(deadline, async {
            let statement = client
                .prepare_cached(
                    "SELECT as_of, value FROM moving_averages
                     WHERE symbol = $1 AND kind = $2 AND window_size = $3
                     ORDER BY as_of DESC LIMIT 1",
                )
                .await?;
            client
                .query_opt(
                    &statement,
                    &[&symbol.as_str(), &spec.kind.as_str(), &window],
                )
                .await
        })
        .await;
        let row = self.settle(client, outcome)?;
        Ok(row.map(|row| MovingAverage {
            symbol: symbol.clone(),
            spec,
            as_of: row.get(0),
            value: row.get(1),
        }))
    }
}

/// One batch in one transaction: dead letters, points, the averages they change.
async fn apply(
    client: &mut deadpool_postgres::Object,
    batch: &ConsumedBatch,
    specs: &[AverageSpec],
) -> Result<AppliedBatch, StoreError> {
    let tx = client.transaction().await.map_err(query_error)?;
    let mut applied = AppliedBatch::default();

    if !batch.dead_letters.is_empty() {
        applied.dead_letters_added = insert_dead_letters(&tx, batch).await?;
    }
    if !batch.points.is_empty() {
        let symbols: Vec<&str> = batch.points.iter().map(|p| p.symbol.as_str()).collect();
        let lock = tx.prepare_cached(LOCK_SYMBOLS).await.map_err(query_error)?;
        tx.execute(&lock, &[&symbols]).await.map_err(query_error)?;

        let since = insert_points(&tx, batch).await?;
        let added: usize = since.values().map(|(_, n)| n).sum();
        applied.points_added = added;
        applied.duplicates = batch.points.len() - added;
        if !since.is_empty() && !specs.is_empty() {
            let averages = recompute(&tx, &since, specs).await?;
            applied.averages_written = upsert_averages(&tx, &averages).await?;
        }
    }
    tx.commit().await.map_err(query_error)?;
    Ok(applied)
}

async fn insert_dead_letters(
    tx: &deadpool_postgres::Transaction<'_>,
    batch: &ConsumedBatch,
) -> Result<usize, StoreError> {
    let letters = &batch.dead_letters;
    let topics: Vec<&str> = letters.iter().map(|d| d.topic.as_str()).collect();
    let partitions: Vec<i32> = letters.iter().map(|d| d.partition).collect();
    let offsets: Vec<i64> = letters.iter().map(|d| d.offset).collect();
    let payloads: Vec<Option<&[u8]>> = letters.iter().map(|d| d.payload.as_deref()).collect();
    let reasons: Vec<&str> = letters.iter().map(|d| d.reason.as_str()).collect();
    let statement = tx
        .prepare_cached(INSERT_DEAD_LETTERS)
        .await
        .map_err(query_error)?;
    let n = tx
        .execute(
            &statement,
            &[&topics, &partitions, &offsets, &payloads, &reasons],
        )
        .await
        .map_err(query_error)?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

/// Inserts the points; returns, per symbol that gained any, the oldest new quote time and
/// how many were new.
async fn insert_points(
    tx: &deadpool_postgres::Transaction<'_>,
    batch: &ConsumedBatch,
) -> Result<BTreeMap<String, (DateTime<Utc>, usize)>, StoreError> {
    let points = &batch.points;
    let ids: Vec<Uuid> = points.iter().map(|p| p.raw_response_id).collect();
    let symbols: Vec<&str> = points.iter().map(|p| p.symbol.as_str()).collect();
    let prices: Vec<Decimal> = points.iter().map(|p| p.price).collect();
    let times: Vec<DateTime<Utc>> = points.iter().map(|p| p.quote_time).collect();
    let sources: Vec<&str> = points.iter().map(|p| p.source.as_str()).collect();
    let statement = tx
        .prepare_cached(INSERT_POINTS)
        .await
        .map_err(query_error)?;
    let rows = tx
        .query(&statement, &[&ids, &symbols, &prices, &times, &sources])
        .await
        .map_err(query_error)?;
    let mut since: BTreeMap<String, (DateTime<Utc>, usize)> = BTreeMap::new();
    for row in rows {
        let time: DateTime<Utc> = row.get(1);
        since
            .entry(row.get(0))
            .and_modify(|(oldest, n)| {
                *oldest = (*oldest).min(time);
                *n += 1;
            })
            .or_insert((time, 1));
    }
    Ok(since)
}

/// The averages to write for the symbols that gained points: as of each one's newest point,
/// and as of every stored average at or after its oldest new point within the horizon read.
async fn recompute(
    tx: &deadpool_postgres::Transaction<'_>,
    since: &BTreeMap<String, (DateTime<Utc>, usize)>,
    specs: &[AverageSpec],
) -> Result<Vec<MovingAverage>, StoreError> {
    let symbols: Vec<&str> = since.keys().map(String::as_str).collect();
    let times: Vec<DateTime<Utc>> = since.values().map(|(t, _)| *t).collect();
    let reach = specs.iter().map(|s| s.lookback()).max().unwrap_or(1);
    let most_new = since.values().map(|(_, n)| *n).max().unwrap_or(0);
    let horizon = most_new + (2 * reach).max(MIN_RECOMPUTE_HORIZON);
    let limit = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);

    let context = tx
        .prepare_cached(SELECT_CONTEXT)
        .await
        .map_err(query_error)?;
    let rows = tx
        .query(
            &context,
            &[
                &symbols,
                &times,
                &limit(reach.saturating_sub(1)),
                &limit(horizon),
                &limit(reach),
            ],
        )
        .await
        .map_err(query_error)?;
    let mut reads: BTreeMap<String, Reads> = BTreeMap::new();
    for row in rows {
        let symbol: String = row.get(0);
        let part: i32 = row.get(1);
        let parsed = Symbol::parse(&symbol)
            .map_err(|e| StoreError::Query(Cause::msg(format!("stored symbol {symbol:?}: {e}"))))?;
        let point = PricePoint {
            raw_response_id: row.get(2),
            symbol: parsed,
            price: row.get(3),
            quote_time: row.get(4),
            source: row.get(5),
        };
        let reads = reads.entry(symbol).or_default();
        match part {
            0 => reads.segment.push(point),
            1 => {
                reads.from_since += 1;
                reads.segment.push(point);
            }
            _ => reads.tail.push(point),
        }
    }
    for reads in reads.values_mut() {
        reads.segment.sort_unstable_by_key(PricePoint::order_key);
        reads.tail.sort_unstable_by_key(PricePoint::order_key);
        // Cut short: the averages as of the last time read may lack points tied with it.
        reads.until = (reads.from_since >= horizon)
            .then(|| reads.segment.last().map(|p| p.quote_time))
            .flatten();
    }

    let untils: Vec<Option<DateTime<Utc>>> = symbols
        .iter()
        .map(|s| reads.get(*s).and_then(|r| r.until))
        .collect();
    let affected = tx
        .prepare_cached(SELECT_AFFECTED_AVERAGES)
        .await
        .map_err(query_error)?;
    let mut targets: BTreeMap<String, BTreeSet<DateTime<Utc>>> = BTreeMap::new();
    for row in tx
        .query(&affected, &[&symbols, &times, &untils, &limit(horizon)])
        .await
        .map_err(query_error)?
    {
        targets.entry(row.get(0)).or_default().insert(row.get(1));
    }

    let mut out = Vec::new();
    for (symbol, reads) in reads {
        let Some(newest) = reads.tail.last().or(reads.segment.last()) else {
            continue;
        };
        let parsed = newest.symbol.clone();
        let newest_time = newest.quote_time;
        let mut at = targets.remove(&symbol).unwrap_or_default();
        match reads.until {
            None => {
                at.insert(newest_time);
                let at: Vec<DateTime<Utc>> = at.into_iter().collect();
                out.extend(averages_at(&parsed, &reads.segment, &at, specs));
            }
            Some(_) => {
                let at: Vec<DateTime<Utc>> = at.into_iter().collect();
                out.extend(averages_at(&parsed, &reads.segment, &at, specs));
                out.extend(averages_at(&parsed, &reads.tail, &[newest_time], specs));
            }
        }
    }
    Ok(out)
}

/// What was read of one symbol for its averages.
#[derive(Default)]
struct Reads {
    /// The points before the oldest new one and from it on, in order: one contiguous run.
    segment: Vec<PricePoint>,
    /// How many of `segment` are from the oldest new point on.
    from_since: usize,
    /// The newest points of the symbol, in order.
    tail: Vec<PricePoint>,
    /// Where `segment` was cut short (its last quote time), if it was.
    until: Option<DateTime<Utc>>,
}

async fn upsert_averages(
    tx: &deadpool_postgres::Transaction<'_>,
    averages: &[MovingAverage],
) -> Result<usize, StoreError> {
    if averages.is_empty() {
        return Ok(0);
    }
    let symbols: Vec<&str> = averages.iter().map(|a| a.symbol.as_str()).collect();
    let kinds: Vec<&str> = averages.iter().map(|a| a.spec.kind.as_str()).collect();
    let windows: Vec<i32> = averages.iter().map(|a| i32::from(a.spec.window)).collect();
    let times: Vec<DateTime<Utc>> = averages.iter().map(|a| a.as_of).collect();
    let values: Vec<Decimal> = averages.iter().map(|a| a.value).collect();
    let statement = tx
        .prepare_cached(UPSERT_AVERAGES)
        .await
        .map_err(query_error)?;
    let n = tx
        .execute(&statement, &[&symbols, &kinds, &windows, &times, &values])
        .await
        .map_err(query_error)?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}
