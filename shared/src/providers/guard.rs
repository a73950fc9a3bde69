//! What keeps the failover chain from sending a call it already knows will fail: each
//! provider's quotas, cool-downs and circuit breaker.
//!
//! - Quotas (per minute, hour, day; fixed windows) and cool-downs (a provider's own
//!   `Retry-After` or reset, and the long pause after refused credentials) are kept in Redis
//!   when there is one, checked and counted by one script on the server's clock, so they hold
//!   across every container. Without Redis, or while it does not answer, each process keeps
//!   them itself (and says so once in its log).
//! - The circuit breaker is per process: after [`BREAKER_THRESHOLD`] consecutive failures
//!   (unavailable or garbage) the provider is skipped for [`BREAKER_OPEN`]; then one call is
//!   let through as a probe, which closes the circuit on success or opens it again.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redis::Script;
use tracing::{error, info, warn};

use super::{ProviderError, QuotaLimits};
use crate::domain::ProviderId;
use crate::redis_connection::RedisConnection;

/// Consecutive failures that open a provider's circuit.
pub const BREAKER_THRESHOLD: u32 = 3;
/// How long an open circuit skips its provider before one probe.
pub const BREAKER_OPEN: Duration = Duration::from_secs(30);
/// How long a provider that refused the credentials is skipped.
pub const CREDENTIALS_COOL_DOWN: Duration = Duration::from_secs(15 * 60);
/// How long a rate-limited provider is skipped when it did not say.
pub const RATE_LIMIT_COOL_DOWN: Duration = Duration::from_secs(60);

/// Checks the cool-down, then every window; counts `cost` in every window only when all
/// allow it. `KEYS[1]` is the provider's key prefix; `ARGV` is cost, then (window seconds,
/// limit) pairs. Returns `{allowed, retry_after_ms, cool_down}`.
const ADMIT_SCRIPT: &str = r"
if redis.replicate_commands then redis.replicate_commands() end
local cool = redis.call('PTTL', KEYS[1] .. ':cooldown')
if cool > 0 then return {0, cool, 1} end
local now = tonumber(redis.call('TIME')[1])
local cost = tonumber(ARGV[1])
local n = (#ARGV - 1) / 2
for i = 0, n - 1 do
  local w = tonumber(ARGV[2 + 2 * i])
  local limit = tonumber(ARGV[3 + 2 * i])
  local key = KEYS[1] .. ':' .. w .. ':' .. math.floor(now / w)
  local used = tonumber(redis.call('GET', key) or '0')
  if used + cost > limit then return {0, (w - (now % w)) * 1000, 0} end
end
for i = 0, n - 1 do
  local w = tonumber(ARGV[2 + 2 * i])
  local key = KEYS[1] .. ':' .. w .. ':' .. math.floor(now / w)
  redis.call('INCRBY', key, cost)
  redis.call('EXPIRE', key, w + 5)
end
return {1, 0, 0}
";

/// Why the chain did not ask a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Ask it.
    Go,
    /// Its quota for a window is used up (or it said to wait); try again after this long.
    QuotaUsed(Duration),
    /// It refused the credentials recently; skipped until an operator fixes the key.
    CredentialsCoolDown(Duration),
    /// Its circuit is open after consecutive failures.
    CircuitOpen(Duration),
}

impl Admission {
    /// The skip as the failure the chain reports for the provider (`None` for [`Go`](Self::Go)).
    pub fn as_error(self) -> Option<ProviderError> {
        match self {
            Admission::Go => None,
            Admission::QuotaUsed(wait) => Some(ProviderError::RateLimited {
                retry_after: Some(wait),
            }),
            Admission::CredentialsCoolDown(wait) => {
                Some(ProviderError::CredentialsRefused(format!(
                    "skipped for {} s after refusing the credentials",
                    wait.as_secs()
                )))
            }
            Admission::CircuitOpen(wait) => Some(ProviderError::Unavailable(format!(
                "circuit open after {BREAKER_THRESHOLD} consecutive failures; next probe in {} s",
                wait.as_secs().max(1)
            ))),
        }
    }
}

/// A provider's circuit, as `/ready` and the banner show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Circuit {
    /// Calls go through.
    Closed,
    /// Calls are skipped for this long.
    Open(Duration),
    /// One probe is under way.
    HalfOpen,
}

impl fmt::Display for Circuit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Circuit::Closed => f.write_str("closed"),
            Circuit::Open(d) => write!(f, "open for {} s", d.as_secs().max(1)),
            Circuit::HalfOpen => f.write_str("half-open"),
        }
    }
}

/// One provider's live state, for `/ready` and the runner's banner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardState {
    /// Its circuit (this process's).
    pub circuit: Circuit,
    /// Calls left in each quota window: (window seconds, calls left), counted where the
    /// quotas are (Redis, across containers, or this process).
    pub quota_left: Vec<(u64, u32)>,
    /// How much longer it is skipped after it rate-limited us or refused the credentials.
    pub cool_down: Option<Duration>,
    /// Where the quotas are counted: `redis` or `process`.
    pub counted_in: &'static str,
}

impl fmt::Display for GuardState {
    /// `58/60 a minute, 790/800 a day left (redis), circuit closed`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let left: Vec<String> = self
            .quota_left
            .iter()
            .map(|(w, n)| format!("{n} {}", window_name(*w)))
            .collect();
        if left.is_empty() {
            f.write_str("no quota")?;
        } else {
            write!(f, "{} left ({})", left.join(", "), self.counted_in)?;
        }
        write!(f, ", circuit {}", self.circuit)?;
        if let Some(wait) = self.cool_down {
            write!(f, ", cooling down for {} s", wait.as_secs().max(1))?;
        }
        Ok(())
    }
}

/// `a minute`, `an hour`, `a day` or `per N s`: how a quota window reads.
pub fn window_name(seconds: u64) -> String {
    match seconds {
        60 => "a minute".into(),
        3_600 => "an hour".into(),
        86_400 => "a day".into(),
        w => format!("per {w} s"),
    }
}

/// Reads a provider's cool-down and its use of each window, on the server's clock, without
/// counting anything. `KEYS[1]` is the provider's key prefix; `ARGV` the window lengths.
/// Returns `{cool_down_ms, used_1, used_2, ...}`.
const STATE_SCRIPT: &str = r"
local out = {redis.call('PTTL', KEYS[1] .. ':cooldown')}
local now = tonumber(redis.call('TIME')[1])
for i = 1, #ARGV do
  local w = tonumber(ARGV[i])
  out[#out + 1] = tonumber(redis.call('GET', KEYS[1] .. ':' .. w .. ':' .. math.floor(now / w)) or '0')
end
return out
";

#[derive(Debug, Default)]
struct Breaker {
    failures: u32,
    open_until: Option<Instant>,
    probing: bool,
}

#[derive(Default)]
struct Local {
    /// (provider, window seconds, window number) → calls counted.
    counts: HashMap<(ProviderId, u64, u64), u32>,
    cool_down: HashMap<ProviderId, Instant>,
}

/// Quotas, cool-downs and circuit breakers of every provider.
pub struct ProviderGuards {
    limits: BTreeMap<ProviderId, QuotaLimits>,
    redis: Option<RedisConnection>,
    script: Script,
    state_script: Script,
    on_local: AtomicBool,
    local: Mutex<Local>,
    breakers: Mutex<HashMap<ProviderId, Breaker>>,
}

impl ProviderGuards {
    /// Guards keeping to `limits`, counted in `redis` when given.
    pub fn new(
        limits: impl IntoIterator<Item = (ProviderId, QuotaLimits)>,
        redis: Option<RedisConnection>,
    ) -> Self {
        Self {
            limits: limits.into_iter().collect(),
            on_local: AtomicBool::new(redis.is_none()),
            redis,
            script: Script::new(ADMIT_SCRIPT),
            state_script: Script::new(STATE_SCRIPT),
            local: Mutex::new(Local::default()),
            breakers: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `provider` may be asked now for a call costing `cost` quota units; when it
    /// may, the call is counted.
    pub async fn admit(&self, provider: ProviderId, cost: u32) -> Admission {
        if let Some(wait) = self.circuit_blocks(provider) {
            return Admission::CircuitOpen(wait);
        }
        let admission = self.count(provider, cost).await;
        if admission != Admission::Go {
            // A probe that was not sent is no probe.
            self.release_probe(provider);
        }
        admission
    }

    /// Records how a call went: failures feed the breaker, refusals start cool-downs.
    pub async fn record(&self, provider: ProviderId, outcome: Result<(), &ProviderError>) {
        let failed = matches!(
            outcome,
            Err(ProviderError::Unavailable(_) | ProviderError::Garbage(_))
        );
        self.breaker_step(provider, failed);
        let cool_down = match outcome {
            Err(ProviderError::CredentialsRefused(why)) => {
                error!(%provider, reason = %why, cool_down_s = CREDENTIALS_COOL_DOWN.as_secs(),
                    "PROVIDER REFUSED THE CREDENTIALS: skipped until the key is fixed");
                CREDENTIALS_COOL_DOWN
            }
            Err(ProviderError::RateLimited { retry_after }) => {
                let wait = retry_after.unwrap_or(RATE_LIMIT_COOL_DOWN);
                warn!(%provider, wait_s = wait.as_secs(), "provider rate-limited us; skipped until its reset");
                wait
            }
            _ => return,
        };
        self.cool_down(provider, cool_down).await;
    }

    /// The live state of `provider`: its quotas as counted across containers (Redis, one
    /// bounded read) or by this process, its cool-down, its circuit.
    pub async fn state(&self, provider: ProviderId) -> GuardState {
        let circuit = self.circuit(provider);
        let windows = self.windows(provider);
        if let Some(redis) = &self.redis {
            let mut invocation = self
                .state_script
                .key(redis.key(&format!("provider-quota:{provider}")));
            for (w, _) in &windows {
                invocation.arg(*w);
            }
            let reply: Result<Vec<i64>, _> = redis
                .run(|mut c| async move { invocation.invoke_async(&mut c).await })
                .await;
            if let Ok([cool_ms, used @ ..]) = reply.as_deref()
                && used.len() == windows.len()
            {
                return GuardState {
                    circuit,
                    quota_left: windows
                        .iter()
                        .zip(used)
                        .map(|((w, limit), used)| {
                            let used = u32::try_from(*used).unwrap_or(u32::MAX);
                            (*w, limit.saturating_sub(used))
                        })
                        .collect(),
                    cool_down: u64::try_from(*cool_ms)
                        .ok()
                        .filter(|ms| *ms > 0)
                        .map(Duration::from_millis),
                    counted_in: "redis",
                };
            }
        }
        let now = unix_now();
        let local = self.lock_local();
        GuardState {
            circuit,
            quota_left: windows
                .into_iter()
                .map(|(w, limit)| {
                    let used = local.counts.get(&(provider, w, now / w)).copied();
                    (w, limit.saturating_sub(used.unwrap_or(0)))
                })
                .collect(),
            cool_down: local
                .cool_down
                .get(&provider)
                .and_then(|until| until.checked_duration_since(Instant::now()))
                .filter(|d| !d.is_zero()),
            counted_in: "process",
        }
    }

    /// `provider`'s quota windows: (seconds, calls allowed).
    fn windows(&self, provider: ProviderId) -> Vec<(u64, u32)> {
        self.limits
            .get(&provider)
            .map(|l| l.windows())
            .unwrap_or_default()
    }

    fn lock_local(&self) -> std::sync::MutexGuard<'_, Local> {
        self.local.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_breakers(&self) -> std::sync::MutexGuard<'_, HashMap<ProviderId, Breaker>> {
        self.breakers.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn circuit(&self, provider: ProviderId) -> Circuit {
        let breakers = self.lock_breakers();
        match breakers.get(&provider) {
            Some(b) if b.probing => Circuit::HalfOpen,
            Some(Breaker {
                open_until: Some(until),
                ..
            }) if *until > Instant::now() => Circuit::Open(*until - Instant::now()),
            _ => Circuit::Closed,
        }
    }

    /// `Some(wait)` while the circuit is open or a probe is out; lets one probe through.
    fn circuit_blocks(&self, provider: ProviderId) -> Option<Duration> {
        let mut breakers = self.lock_breakers();
        let b = breakers.entry(provider).or_default();
        let until = b.open_until?;
        let now = Instant::now();
        if until > now {
            return Some(until - now);
        }
        if b.probing {
            return Some(Duration::from_secs(1));
        }
        b.probing = true;
        info!(%provider, "circuit half-open: one probe call");
        None
    }

    fn release_probe(&self, provider: ProviderId) {
        if let Some(b) = self.lock_breakers().get_mut(&provider) {
            b.probing = false;
        }
    }

    fn breaker_step(&self, provider: ProviderId, failed: bool) {
        let mut breakers = self.lock_breakers();
        let b = breakers.entry(provider).or_default();
        let was_probe = std::mem::take(&mut b.probing);
        if !failed {
            if b.open_until.take().is_some() {
                info!(%provider, "circuit closed: the probe succeeded");
            }
            b.failures = 0;
            return;
        }
        b.failures += 1;
        if was_probe || b.failures >= BREAKER_THRESHOLD {
            b.open_until = Some(Instant::now() + BREAKER_OPEN);
            warn!(%provider, failures = b.failures, open_s = BREAKER_OPEN.as_secs(), "circuit open: provider skipped");
        }
    }

    async fn count(&self, provider: ProviderId, cost: u32) -> Admission {
        let windows = self.windows(provider);
        if let Some(redis) = &self.redis {
            let mut invocation = self
                .script
                .key(redis.key(&format!("provider-quota:{provider}")));
            invocation.arg(cost);
            for (w, limit) in &windows {
                invocation.arg(*w).arg(*limit);
            }
            let reply: Result<Vec<i64>, _> = redis
                .run(|mut c| async move { invocation.invoke_async(&mut c).await })
                .await;
            match reply.as_deref() {
                Ok([allowed, wait_ms, cool]) => {
                    if self.on_local.swap(false, Ordering::Relaxed) {
                        info!("provider quotas back on Redis: they hold across containers");
                    }
                    let wait = Duration::from_millis(u64::try_from(*wait_ms).unwrap_or(0));
                    return match (*allowed, *cool) {
                        (1, _) => Admission::Go,
                        (_, 1) => self.cool_down_kind(provider, wait),
                        _ => Admission::QuotaUsed(wait),
                    };
                }
                Ok(other) => {
                    warn!(reply = ?other, "unexpected provider-quota script reply; counting in process");
                }
                Err(e) => {
                    if !self.on_local.swap(true, Ordering::Relaxed) {
                        warn!(error = %e, "Redis unreachable: provider quotas are counted per container");
                    }
                }
            }
        }
        self.count_locally(provider, cost, &windows)
    }

    fn count_locally(&self, provider: ProviderId, cost: u32, windows: &[(u64, u32)]) -> Admission {
        let mut local = self.lock_local();
        let now = Instant::now();
        if let Some(until) = local.cool_down.get(&provider).copied() {
            if until > now {
                return self.cool_down_kind(provider, until - now);
            }
            local.cool_down.remove(&provider);
        }
        let secs = unix_now();
        for (w, limit) in windows {
            let used = local.counts.get(&(provider, *w, secs / w)).copied();
            if used.unwrap_or(0).saturating_add(cost) > *limit {
                return Admission::QuotaUsed(Duration::from_secs(w - secs % w));
            }
        }
        local.counts.retain(|(_, w, n), _| *n >= secs / w);
        for (w, _) in windows {
            *local.counts.entry((provider, *w, secs / w)).or_default() += cost;
        }
        Admission::Go
    }

    /// A cool-down longer than any rate-limit pause is the credentials' one.
    fn cool_down_kind(&self, _provider: ProviderId, wait: Duration) -> Admission {
        if wait > RATE_LIMIT_COOL_DOWN * 10 {
            Admission::CredentialsCoolDown(wait)
        } else {
            Admission::QuotaUsed(wait)
        }
    }

    async fn cool_down(&self, provider: ProviderId, wait: Duration) {
        let wait = wait.max(Duration::from_secs(1));
        self.lock_local()
            .cool_down
            .insert(provider, Instant::now() + wait);
        if let Some(redis) = &self.redis {
            let key = redis.key(&format!("provider-quota:{provider}:cooldown"));
            let ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
            let set: Result<(), _> = redis
                .run(|mut c| async move {
                    redis::cmd("SET")
                        .arg(key)
                        .arg(1)
                        .arg("PX")
                        .arg(ms)
                        .query_async(&mut c)
                        .await
                })
                .await;
            if let Err(e) = set {
                warn!(%provider, error = %e, "cool-down not shared through Redis; kept in this process");
            }
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: ProviderId = ProviderId::Twelvedata;

    fn guards(per_minute: u32) -> ProviderGuards {
        ProviderGuards::new(
            [(
                P,
                QuotaLimits {
                    per_minute,
                    per_hour: 0,
                    per_day: 0,
                },
            )],
            None,
        )
    }

    #[tokio::test]
    async fn a_quota_is_never_exceeded_and_costs_count_whole() {
        let g = guards(8);
        assert_eq!(g.admit(P, 5).await, Admission::Go);
        assert!(matches!(g.admit(P, 4).await, Admission::QuotaUsed(_)));
        assert_eq!(g.admit(P, 3).await, Admission::Go);
        assert!(matches!(g.admit(P, 1).await, Admission::QuotaUsed(_)));
        assert_eq!(g.state(P).await.quota_left, vec![(60, 0)]);
    }

    #[tokio::test]
    async fn a_provider_without_limits_is_always_admitted() {
        let g = guards(0);
        for _ in 0..1_000 {
            assert_eq!(g.admit(P, 1).await, Admission::Go);
        }
    }

    #[tokio::test]
    async fn refused_credentials_and_rate_limits_start_cool_downs() {
        let g = guards(0);
        g.record(P, Err(&ProviderError::CredentialsRefused("401".into())))
            .await;
        assert!(matches!(
            g.admit(P, 1).await,
            Admission::CredentialsCoolDown(d) if d > Duration::from_secs(800)
        ));
        let g = guards(0);
        g.record(
            P,
            Err(&ProviderError::RateLimited {
                retry_after: Some(Duration::from_secs(7)),
            }),
        )
        .await;
        assert!(matches!(
            g.admit(P, 1).await,
            Admission::QuotaUsed(d) if d <= Duration::from_secs(7) && d > Duration::from_secs(5)
        ));
    }

    #[tokio::test]
    async fn the_circuit_opens_after_consecutive_failures_then_lets_one_probe_through() {
        let g = guards(0);
        let down = ProviderError::Unavailable("503".into());
        for _ in 0..BREAKER_THRESHOLD - 1 {
            assert_eq!(g.admit(P, 1).await, Admission::Go);
            g.record(P, Err(&down)).await;
        }
        // A success in between resets the count.
        g.record(P, Ok(())).await;
        for _ in 0..BREAKER_THRESHOLD {
            g.record(P, Err(&down)).await;
        }
        assert!(matches!(g.admit(P, 1).await, Admission::CircuitOpen(_)));
        assert!(matches!(g.state(P).await.circuit, Circuit::Open(_)));
        // Pretend the open time has passed.
        g.lock_breakers().get_mut(&P).unwrap().open_until = Some(Instant::now());
        assert_eq!(g.admit(P, 1).await, Admission::Go, "the probe");
        assert!(
            matches!(g.admit(P, 1).await, Admission::CircuitOpen(_)),
            "one probe at a time"
        );
        assert_eq!(g.state(P).await.circuit, Circuit::HalfOpen);
        g.record(P, Ok(())).await;
        assert_eq!(g.state(P).await.circuit, Circuit::Closed);
        assert_eq!(g.admit(P, 1).await, Admission::Go);
    }

    #[tokio::test]
    async fn a_failed_probe_opens_the_circuit_again() {
        let g = guards(0);
        let down = ProviderError::Garbage("<html>".into());
        for _ in 0..BREAKER_THRESHOLD {
            g.record(P, Err(&down)).await;
        }
        g.lock_breakers().get_mut(&P).unwrap().open_until = Some(Instant::now());
        assert_eq!(g.admit(P, 1).await, Admission::Go);
        g.record(P, Err(&down)).await;
        assert!(matches!(g.admit(P, 1).await, Admission::CircuitOpen(_)));
    }

    #[tokio::test]
    async fn unknown_symbols_and_plan_limits_are_not_failures() {
        let g = guards(0);
        for _ in 0..10 {
            g.record(P, Err(&ProviderError::NotFound)).await;
            g.record(P, Err(&ProviderError::PlanRestricted("403".into())))
                .await;
        }
        assert_eq!(g.admit(P, 1).await, Admission::Go);
    }
}
