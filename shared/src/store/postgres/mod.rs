//! PostgreSQL adapter of the store port (`tokio-postgres` with a `deadpool` pool).
//!
//! The pool connects lazily, so a function starts even while the database is away, and
//! every wait (connect, check-out) is bounded. Every statement is parameterised.
//!
//! A network that dies silently (a failover, a dropped route) leaves connections that look
//! open and never answer; the server's statement timeout cannot help there. So each call
//! of [`PriceStore`] is bounded on the client side too (`DATABASE_TIMEOUT_MS`, check-out
//! and statements together: [`PostgresStore::checkout`] and [`PostgresStore::settle`]), and
//! a connection whose call overran is closed rather than pooled. A pooled connection is
//! verified with a round trip before it is handed out (`RecyclingMethod::Verified`, itself
//! bounded), and TCP keepalives and `tcp_user_timeout` let the kernel notice a dead peer.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime, Timeouts};
use rust_decimal::Decimal;
use secrecy::ExposeSecret;
use tokio::time::error::Elapsed;
use tokio::time::{Instant, timeout_at};
use uuid::Uuid;

mod config;
mod points;
mod tls;

pub use config::{DatabaseConfig, SslMode};

use crate::cause::Cause;
use crate::domain::{FetchedQuote, PriceEvent, Symbol};
use crate::store::migrations::{MIGRATION_LOCK_KEY, MIGRATIONS};
use crate::store::{PriceStore, StoreError};

/// Longest wait for a connection, new or pooled.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Longest any statement may run, unless the URL sets its own `options`.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest the round trip that verifies a pooled connection may take; past it the
/// connection is dropped and another one used or made.
const VERIFY_TIMEOUT: Duration = Duration::from_secs(1);

/// Idle time before the kernel probes a connection, and the gap between probes.
const KEEPALIVE: Duration = Duration::from_secs(10);

/// Longest sent data may stay unacknowledged before the kernel closes the connection.
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(15);

/// The PostgreSQL store.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    timeout: Duration,
}

impl PostgresStore {
    /// A store on the database of `config`. Does not connect yet; fails only on a bad URL.
    pub fn new(config: &DatabaseConfig) -> Result<Self, StoreError> {
        let mut pg = tokio_postgres::Config::from_str(config.url.expose_secret()).map_err(|e| {
            StoreError::Unavailable(Cause::msg(format!("invalid DATABASE_URL: {e}")))
        })?;
        pg.ssl_mode(tls::client_mode(config.ssl_mode));
        if pg.get_connect_timeout().is_none() {
            pg.connect_timeout(CONNECT_TIMEOUT);
        }
        pg.keepalives(true)
            .keepalives_idle(KEEPALIVE)
            .keepalives_interval(KEEPALIVE)
            .keepalives_retries(3)
            .tcp_user_timeout(TCP_USER_TIMEOUT);
        if pg.get_application_name().is_none() {
            pg.application_name("market-data");
        }
        if pg.get_options().is_none() {
            // No statement may hold a connection (and a request) longer than this.
            pg.options(format!(
                "-c statement_timeout={}",
                STATEMENT_TIMEOUT.as_millis()
            ));
        }
        let manager = Manager::from_config(
            pg,
            tls::connector(config)?,
            ManagerConfig {
                recycling_method: RecyclingMethod::Verified,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(config.pool_size)
            .timeouts(Timeouts {
                wait: Some(CONNECT_TIMEOUT),
                create: Some(CONNECT_TIMEOUT),
                recycle: Some(VERIFY_TIMEOUT),
            })
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| StoreError::Unavailable(Cause::new(e)))?;
        Ok(Self {
            pool,
            timeout: config.timeout,
        })
    }

    /// The pool, for the adapters of later ports that share this database.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(pool_error)
    }

    /// A pooled connection, and the instant by which the call using it must be done
    /// (the configured timeout counted from now, check-out included). Pair with
    /// [`Self::settle`]: `timeout_at(deadline, statement)`, then settle the outcome.
    async fn checkout(&self) -> Result<(deadpool_postgres::Object, Instant), StoreError> {
        let deadline = Instant::now() + self.timeout;
        let client = tokio::time::timeout_at(deadline, self.client())
            .await
            .map_err(|_| self.overran())??;
        Ok((client, deadline))
    }

    /// The result of a statement run under [`Self::checkout`]'s deadline. A connection
    /// whose statement overran is closed, not given back to the pool: its answer may never
    /// come, or come for a request nobody waits for any more.
    fn settle<T>(
        &self,
        client: deadpool_postgres::Object,
        outcome: Result<Result<T, tokio_postgres::Error>, Elapsed>,
    ) -> Result<T, StoreError> {
        match outcome {
            Ok(result) => result.map_err(query_error),
            Err(_) => {
                drop(deadpool_postgres::Object::take(client));
                Err(self.overran())
            }
        }
    }

    fn overran(&self) -> StoreError {
        StoreError::Unavailable(Cause::msg(format!(
            "no answer within {} ms (DATABASE_TIMEOUT_MS)",
            self.timeout.as_millis()
        )))
    }

    /// Applies every migration not yet applied, in one transaction under an advisory lock.
    /// Returns the names of those applied now.
    pub async fn migrate(&self) -> Result<Vec<&'static str>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(query_error)?;
        // Migrations may legitimately run long (an index on a big table): no timeout here.
        tx.batch_execute("SET LOCAL statement_timeout = 0")
            .await
            .map_err(query_error)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK_KEY])
            .await
            .map_err(query_error)?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version    integer     PRIMARY KEY,
                 name       text        NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now()
             )",
        )
        .await
        .map_err(query_error)?;
        let applied: Vec<i32> = tx
            .query("SELECT version FROM schema_migrations", &[])
            .await
            .map_err(query_error)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let mut now_applied = Vec::new();
        for m in MIGRATIONS.iter().filter(|m| !applied.contains(&m.version)) {
            tx.batch_execute(m.sql).await.map_err(|e| {
                StoreError::Query(Cause::msg(format!("{}: {}", m.name, describe(&e))))
            })?;
            tx.execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                &[&m.version, &m.name],
            )
            .await
            .map_err(query_error)?;
            now_applied.push(m.name);
        }
        tx.commit().await.map_err(query_error)?;
        Ok(now_applied)
    }
}

#[async_trait]
impl PriceStore for PostgresStore {
    async fn insert_raw(
        &self,
        id: Uuid,
        fetched: &FetchedQuote,
        republish_after: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let q = &fetched.quote;
        let (client, deadline) = self.checkout().await?;
        let outcome = timeout_at(
            deadline,
            client.execute(
                "INSERT INTO raw_market_data
                     (id, symbol, provider, price, quote_time, fetched_at, raw, republish_after)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    &id,
                    &q.symbol.as_str(),
                    &q.provider.as_str(),
                    &q.price,
                    &q.quote_time,
                    &q.fetched_at,
                    &fetched.raw,
                    &republish_after,
                ],
            ),
        )
        .await;
        self.settle(client, outcome)?;
        Ok(())
    }

    async fn mark_delivered(&self, id: Uuid) -> Result<(), StoreError> {
        let (client, deadline) = self.checkout().await?;
        let outcome = timeout_at(
            deadline,
            client.execute(
                "UPDATE raw_market_data SET event_delivered_at = now()
                 WHERE id = $1 AND event_delivered_at IS NULL",
                &[&id],
            ),
        )
        .await;
        self.settle(client, outcome)?;
        Ok(())
    }

    async fn claim_undelivered(
        &self,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<PriceEvent>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let (client, deadline) = self.checkout().await?;
        let outcome = timeout_at(
            deadline,
            client.query(
                "UPDATE raw_market_data r
                 SET republish_after = now() + make_interval(secs => $2)
                 FROM (SELECT id FROM raw_market_data
                       WHERE event_delivered_at IS NULL AND republish_after <= now()
                       ORDER BY republish_after
                       LIMIT $1
                       FOR UPDATE SKIP LOCKED) due
                 WHERE r.id = due.id
                 RETURNING r.id, r.symbol, r.provider, r.price, r.quote_time",
                &[&limit, &lease.as_secs_f64()],
            ),
        )
        .await;
        let rows = self.settle(client, outcome)?;
        rows.iter()
            .map(|row| {
                let symbol: String = row.get(1);
                Ok(PriceEvent {
                    raw_response_id: row.get(0),
                    symbol: Symbol::parse(&symbol).map_err(|e| {
                        StoreError::Query(Cause::msg(format!("stored symbol {symbol:?}: {e}")))
                    })?,
                    source: row.get(2),
                    price: row.get::<_, Decimal>(3),
                    timestamp: row.get(4),
                })
            })
            .collect()
    }

    async fn release(&self, ids: &[Uuid], after: Duration) -> Result<(), StoreError> {
        let (client, deadline) = self.checkout().await?;
        let outcome = timeout_at(
            deadline,
            client.execute(
                "UPDATE raw_market_data SET republish_after = now() + make_interval(secs => $2)
                 WHERE id = ANY($1) AND event_delivered_at IS NULL",
                &[&ids, &after.as_secs_f64()],
            ),
        )
        .await;
        self.settle(client, outcome)?;
        Ok(())
    }

    async fn oldest_undelivered(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let (client, deadline) = self.checkout().await?;
        let outcome = timeout_at(
            deadline,
            // The partial index of undelivered rows keeps this cheap however big the table.
            client.query_one(
                "SELECT min(fetched_at) FROM raw_market_data WHERE event_delivered_at IS NULL",
                &[],
            ),
        )
        .await;
        let row = self.settle(client, outcome)?;
        Ok(row.get(0))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let (client, deadline) = self.checkout().await?;
        let outcome = timeout_at(deadline, client.simple_query("SELECT 1")).await;
        self.settle(client, outcome)?;
        Ok(())
    }
}

/// A PostgreSQL error shown with the server's message (`tokio_postgres::Error` alone displays
/// as just "db error"), the client's error kept as its source.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct PgError {
    message: String,
    #[source]
    source: tokio_postgres::Error,
}

impl PgError {
    /// The server's SQLSTATE, when the server refused the statement.
    pub fn code(&self) -> Option<&tokio_postgres::error::SqlState> {
        self.source.code()
    }
}

impl From<tokio_postgres::Error> for PgError {
    fn from(source: tokio_postgres::Error) -> Self {
        Self {
            message: describe(&source),
            source,
        }
    }
}

fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => match std::error::Error::source(e) {
            Some(source) => format!("{e}: {source}"),
            None => e.to_string(),
        },
    }
}

/// A connection the pool could not hand out, shown with every cause in its chain: deadpool
/// and `tokio-postgres` alone say "error performing TLS handshake" and hide which
/// certificate was refused and why.
fn pool_error(e: deadpool_postgres::PoolError) -> StoreError {
    let mut message = e.to_string();
    let mut next = std::error::Error::source(&e);
    while let Some(cause) = next {
        let text = cause.to_string();
        if !message.contains(&text) {
            message = format!("{message}: {text}");
        }
        next = cause.source();
    }
    StoreError::Unavailable(Cause::new(PoolFailure { message, source: e }))
}

/// A pool error with the text of its whole chain; the pool's error kept as the source.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
struct PoolFailure {
    message: String,
    #[source]
    source: deadpool_postgres::PoolError,
}

fn query_error(e: tokio_postgres::Error) -> StoreError {
    if e.is_closed() || e.as_db_error().is_none() && std::error::Error::source(&e).is_some() {
        StoreError::Unavailable(Cause::new(PgError::from(e)))
    } else if e.code().is_some_and(refuses_the_data) {
        StoreError::Rejected(Cause::new(PgError::from(e)))
    } else {
        StoreError::Query(Cause::new(PgError::from(e)))
    }
}

/// Whether the server refused the values themselves: SQLSTATE class 22 (data exception: a
/// NUL in text, a time out of range, a number that does not fit) or 23 (integrity constraint
/// violation). Other refusals (a timeout, a missing table, a lost lock) are not the data's
/// fault and fail the whole operation.
fn refuses_the_data(code: &tokio_postgres::error::SqlState) -> bool {
    matches!(code.code().get(..2), Some("22" | "23"))
}
