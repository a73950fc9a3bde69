//! The HTTP edge: who may call (API keys), how often (rate limits), from where (CORS), and
//! for how long (the request timeout). Only the API has an edge, so it lives here rather than
//! in the shared library.

pub mod api_keys;
mod config;

use market_data::ratelimit::{Quota, RateLimiting, RedisRateLimiter};
use market_data::readiness::PortAdapter;
use market_data::redis_connection::RedisConnection;

pub use api_keys::{ApiKey, ApiKeys};
pub use config::EdgeConfig;

/// The edge as built: its settings and its limiter.
pub struct Edge {
    /// The accepted API keys; `None` when the API is open.
    pub api_keys: Option<ApiKeys>,
    /// The limit of clients without their own; `None` when rate limiting is off.
    pub default_quota: Option<Quota>,
    /// The limiter: Redis (shared by every container) when there is one, else in-process.
    pub limiter: RateLimiting,
    /// Origins browsers may call the API from.
    pub cors_allowed_origins: Vec<String>,
    /// Longest a request may take before it is answered 503.
    pub request_timeout: std::time::Duration,
    /// Polling jobs a key may own, unless it has its own limit.
    pub default_max_jobs: u32,
    /// Symbol-ticks per minute a key's jobs may make, unless it has its own limit.
    pub default_max_symbol_ticks_per_minute: u32,
}

impl Edge {
    /// The edge of `config`, limiting through `redis` when the process has it.
    pub fn new(config: EdgeConfig, redis: Option<RedisConnection>) -> Self {
        Self {
            api_keys: config.api_keys,
            default_quota: config.default_quota,
            limiter: RateLimiting::new(redis.map(RedisRateLimiter::new)),
            cors_allowed_origins: config.cors_allowed_origins,
            request_timeout: config.request_timeout,
            default_max_jobs: config.default_max_jobs,
            default_max_symbol_ticks_per_minute: config.default_max_symbol_ticks_per_minute,
        }
    }

    /// What the runner's banner shows of the edge.
    pub fn describe(&self) -> Vec<PortAdapter> {
        let rate = match &self.default_quota {
            None => "off (RATE_LIMIT_PER_MINUTE=0)".into(),
            Some(q) if self.limiter.is_local() => format!(
                "in-process (per process), {}/min, burst {}",
                q.per_minute, q.burst
            ),
            Some(q) => format!("redis, {}/min, burst {}", q.per_minute, q.burst),
        };
        let keys = match &self.api_keys {
            Some(keys) => format!("required ({} keys)", keys.len()),
            None => "off (API_KEYS not set)".into(),
        };
        vec![
            PortAdapter {
                port: "rate-limit",
                adapter: rate,
            },
            PortAdapter {
                port: "api-keys",
                adapter: keys,
            },
        ]
    }
}
