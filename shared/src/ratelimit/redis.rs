//! The Redis limiter: one Lua script per decision (or per lease of several), on the server's
//! clock, so the limit is exact across any number of containers and their clocks do not
//! matter.

use std::time::Duration;

use async_trait::async_trait;
use redis::Script;

use super::gcra::{Decision, Quota};
use super::{RateLimitError, RateLimiter};
use crate::redis_connection::RedisConnection;

/// GCRA as in `gcra::step`, with Redis's `TIME` as now, granting up to `ARGV[3]` requests at
/// once (a lease; one is exactly `gcra::step`). Returns
/// `{granted, remaining, reset_after_us, retry_after_us}`; `granted` is 0 for a refusal.
const GCRA_SCRIPT: &str = r"
if redis.replicate_commands then redis.replicate_commands() end
local interval = tonumber(ARGV[1])
local tolerance = interval * tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if not tat or tat < now then tat = now end
local grant = math.floor((tolerance - (tat - now)) / interval)
if grant > want then grant = want end
if grant < 1 then
  return {0, 0, tat - now, tat + interval - now - tolerance}
end
local new_tat = tat + grant * interval
local used = new_tat - now
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil(used / 1000))
return {grant, math.floor((tolerance - used) / interval), used, 0}
";

/// What one call of the script granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// Requests granted (0: refused); the first is the caller's own.
    pub granted: u32,
    /// The decision for the caller's own request.
    pub decision: Decision,
}

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

impl RedisRateLimiter {
    /// Counts one request of `key` and, when allowed, takes up to `want - 1` more of the
    /// client's quota at once for this process to hand out (a lease).
    pub async fn lease(&self, key: &str, quota: Quota, want: u32) -> Result<Grant, RateLimitError> {
        let mut invocation = self
            .script
            .key(self.connection.key(&format!("ratelimit:{key}")));
        invocation
            .arg(quota.interval_us())
            .arg(quota.burst.max(1))
            .arg(want.max(1));
        let reply: Vec<i64> = self
            .connection
            .run(|mut c| async move { invocation.invoke_async(&mut c).await })
            .await
            .map_err(|e| RateLimitError(e.0))?;
        let [granted, remaining, reset_us, retry_us] = reply[..] else {
            return Err(RateLimitError(crate::cause::Cause::msg(format!(
                "unexpected script reply {reply:?}"
            ))));
        };
        let micros = |us: i64| Duration::from_micros(u64::try_from(us).unwrap_or(0));
        let granted = u32::try_from(granted).unwrap_or(0);
        Ok(Grant {
            granted,
            decision: Decision {
                allowed: granted > 0,
                limit: quota.burst,
                remaining: u32::try_from(remaining).unwrap_or(0),
                reset_after: micros(reset_us),
                retry_after: (granted == 0).then(|| micros(retry_us)),
            },
        })
    }
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn check(&self, key: &str, quota: Quota) -> Result<Decision, RateLimitError> {
        Ok(self.lease(key, quota, 1).await?.decision)
    }
}
