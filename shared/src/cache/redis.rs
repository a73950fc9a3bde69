//! Redis adapter of the cache port: the tier shared by every container.
//!
//! Entries are the whole quote as JSON under `{prefix}quote:{provider}:{symbol}`, expiring
//! at the end of their stale lifetime. A failing Redis is reported to the caller, which
//! treats it as a miss, so the service keeps answering from the provider.
//!
//! Writes compare before they replace, inside Redis ([`PUT_IF_NEWER`]): many containers
//! write the same key, and a slow one's older quote arriving last must not replace a newer
//! one. "Newer" is a later provider time (`quote_time`), then a later `fetched_at`.

use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use redis::{AsyncCommands, Script};

use super::{CacheError, QuoteCache};
use crate::cause::Cause;
use crate::domain::{ProviderId, Quote, Symbol};
use crate::redis_connection::RedisConnection;

/// Stores `ARGV[1]` (a quote's JSON) at `KEYS[1]` for `ARGV[2]` ms unless the stored quote
/// is newer, in one step. Times are compared as text once brought to one shape (RFC 3339
/// in UTC with nine fractional digits), which orders them; an entry whose times cannot be
/// read is replaced. Answers 1 when written, 0 when the stored quote was kept.
const PUT_IF_NEWER: &str = r"
local function instant(t)
  if type(t) ~= 'string' then return nil end
  local base, frac = string.match(t, '^(%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d)%.?(%d*)Z$')
  if not base or #frac > 9 then return nil end
  return base .. frac .. string.rep('0', 9 - #frac)
end
local function order(json)
  local ok, quote = pcall(cjson.decode, json)
  if not ok or type(quote) ~= 'table' then return nil end
  local at, fetched = instant(quote['quote_time']), instant(quote['fetched_at'])
  if not at or not fetched then return nil end
  return at .. '|' .. fetched
end
local current = redis.call('GET', KEYS[1])
if current then
  local old, new = order(current), order(ARGV[1])
  if old and new and old > new then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
";

/// The Redis tier.
pub struct RedisCache {
    connection: RedisConnection,
    retention: Duration,
    put_if_newer: Script,
}

impl RedisCache {
    /// A cache over `connection`, keeping each quote `retention` after it was fetched.
    pub fn new(connection: RedisConnection, retention: Duration) -> Self {
        Self {
            connection,
            retention,
            put_if_newer: Script::new(PUT_IF_NEWER),
        }
    }

    fn key(&self, provider: ProviderId, symbol: &Symbol) -> String {
        self.connection
            .key(&format!("quote:{}:{}", provider.as_str(), symbol.as_str()))
    }
}

#[async_trait]
impl QuoteCache for RedisCache {
    async fn get(
        &self,
        provider: ProviderId,
        symbol: &Symbol,
    ) -> Result<Option<Quote>, CacheError> {
        let key = self.key(provider, symbol);
        let raw: Option<Vec<u8>> = self
            .connection
            .run(|mut c| async move { c.get(&key).await })
            .await
            .map_err(|e| CacheError::Unavailable(e.0))?;
        raw.map(|bytes: Vec<u8>| {
            serde_json::from_slice(&bytes).map_err(|e| {
                CacheError::Corrupt(Cause::msg(format!("{}: {e}", self.key(provider, symbol))))
            })
        })
        .transpose()
    }

    async fn put(&self, quote: &Quote) -> Result<(), CacheError> {
        let age = (Utc::now() - quote.fetched_at).to_std().unwrap_or_default();
        let Some(remaining) = self.retention.checked_sub(age).filter(|d| !d.is_zero()) else {
            return Ok(());
        };
        let value = serde_json::to_vec(quote).map_err(|e| CacheError::Corrupt(Cause::new(e)))?;
        let key = self.key(quote.provider, &quote.symbol);
        let millis = u64::try_from(remaining.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let mut invocation = self.put_if_newer.key(key);
        invocation.arg(value).arg(millis);
        self.connection
            .run(|mut c| async move { invocation.invoke_async::<i64>(&mut c).await })
            .await
            .map(|_written| ())
            .map_err(|e| CacheError::Unavailable(e.0))
    }

    async fn ping(&self) -> Result<(), CacheError> {
        self.connection
            .run(|mut c| async move { redis::cmd("PING").query_async::<String>(&mut c).await })
            .await
            .map(|_| ())
            .map_err(|e| CacheError::Unavailable(e.0))
    }
}
