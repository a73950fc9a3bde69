//! The Redis limiter: one Lua script per decision, on the server's clock, so the limit is
//! exact across any number of containers and their clocks do not matter.

use std::time::Duration;

use async_trait::async_trait;
use redis::Script;

use super::gcra::{Decision, Quota};
use super::{RateLimitError, RateLimiter};
use crate::redis_connection::RedisConnection;

/// GCRA as in `gcra::step`, with Redis's `TIME` as now. Returns
/// `{allowed, remaining, reset_after_us, retry_after_us}`.
const GCRA_SCRIPT: &str = r"
if redis.replicate_commands then redis.replicate_commands() end
local interval = tonumber(ARGV[1])
local tolerance = interval * tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if not tat or tat < now then tat = now end
local new_tat = tat + interval
local used = new_tat - now
if used > tolerance then
  return {0, 0, tat - now, used - tolerance}
end
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil(used / 1000))
return {1, math.floor((tolerance - used) / interval), used, 0}
";

/// Limits through Redis.
pub struct RedisRateLimiter {
    connection: RedisConnection,
    script: Script,
}

impl RedisRateLimiter {
    /// A limiter over `connection`.
    pub fn new(connection: RedisConnection) -> Self {
        Self {
            connection,
            script: Script::new(GCRA_SCRIPT),
        }
    }
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn check(&self, key: &str, quota: Quota) -> Result<Decision, RateLimitError> {
        let mut invocation = self
            .script
            .key(self.connection.key(&format!("ratelimit:{key}")));
        invocation.arg(quota.interval_us()).arg(quota.burst.max(1));
        let reply: Vec<i64> = self
            .connection
            .run(|mut c| async move { invocation.invoke_async(&mut c).await })
            .await
            .map_err(|e| RateLimitError(e.0))?;
        let [allowed, remaining, reset_us, retry_us] = reply[..] else {
            return Err(RateLimitError(crate::cause::Cause::msg(format!(
                "unexpected script reply {reply:?}"
            ))));
        };
        let micros = |us: i64| Duration::from_micros(u64::try_from(us).unwrap_or(0));
        Ok(Decision {
            allowed: allowed == 1,
            limit: quota.burst,
            remaining: u32::try_from(remaining).unwrap_or(0),
            reset_after: micros(reset_us),
            retry_after: (allowed != 1).then(|| micros(retry_us)),
        })
    }
}
