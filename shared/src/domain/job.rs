//! Polling jobs as the domain sees them: what to poll, how often, and what happened on the
//! last run. How they are stored is the job store port's business (`jobs/`).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ProviderId, Symbol, TickId};

/// The prefix of every job id, kept from the seed service so its clients recognise them.
pub const JOB_ID_PREFIX: &str = "poll_";

/// A job's identity: `poll_` followed by a UUIDv7 in hex, so ids never collide across
/// processes and sort by creation time.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct JobId(String);

/// The text is not a job id this service could have issued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a polling job id (expected poll_ and 32 hex digits)")]
pub struct BadJobId(pub String);

impl JobId {
    /// A new, unique id.
    pub fn generate() -> Self {
        Self(format!("{JOB_ID_PREFIX}{}", uuid::Uuid::now_v7().simple()))
    }

    /// Checks `raw` has the shape of an issued id, so nothing else reaches a store key or a
    /// rule name.
    pub fn parse(raw: &str) -> Result<Self, BadJobId> {
        let ok = raw
            .strip_prefix(JOB_ID_PREFIX)
            .is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()));
        if ok {
            Ok(Self(raw.to_ascii_lowercase()))
        } else {
            Err(BadJobId(raw.to_owned()))
        }
    }

    /// The id's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for JobId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    /// Polled: due through the store's index of due jobs.
    Active,
    /// Kept, but not polled until resumed.
    Paused,
}

impl JobStatus {
    /// The stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Active => "active",
            JobStatus::Paused => "paused",
        }
    }
}

/// The text is not a job status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown job status {0:?}")]
pub struct UnknownJobStatus(pub String);

impl FromStr for JobStatus {
    type Err = UnknownJobStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "active" => Ok(JobStatus::Active),
            "paused" => Ok(JobStatus::Paused),
            other => Err(UnknownJobStatus(other.to_owned())),
        }
    }
}

/// A polling job as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// Its id.
    pub id: JobId,
    /// The symbols polled, de-duplicated, in the order first given.
    pub symbols: Vec<Symbol>,
    /// Seconds between two ticks.
    pub interval_secs: u32,
    /// The provider asked.
    pub provider: ProviderId,
    /// Whether it is polled.
    pub status: JobStatus,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// When its last counted tick started.
    pub last_run_at: Option<DateTime<Utc>>,
    /// When its next tick is due.
    pub next_run_at: DateTime<Utc>,
    /// Ticks run so far, of those counted.
    pub run_count: u64,
    /// What went wrong on the last counted tick (`None` when every symbol was fetched).
    pub last_error: Option<String>,
    /// Ticks it was claimed for and has not counted yet: their outcomes are recorded once
    /// per shared tick, not on each job (`tick_outcome.rs`).
    pub pending: Vec<TickId>,
    /// Bumped by every write; writes are conditional on the version read.
    pub version: u64,
    /// The API key (its name) that created it; `None` when the service runs without keys
    /// (single-tenant).
    pub owner: Option<String>,
}

impl Job {
    /// A job with a new id, made `now` in `status`: never run, due at once, first version.
    pub fn new(
        symbols: Vec<Symbol>,
        interval_secs: u32,
        provider: ProviderId,
        status: JobStatus,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id: JobId::generate(),
            symbols,
            interval_secs,
            provider,
            status,
            created_at: now,
            updated_at: now,
            last_run_at: None,
            next_run_at: now,
            run_count: 0,
            last_error: None,
            pending: Vec::new(),
            version: 1,
            owner: None,
        }
    }

    /// The same job, belonging to `owner`.
    pub fn owned_by(mut self, owner: Option<String>) -> Self {
        self.owner = owner;
        self
    }

    /// The job's interval as a duration.
    pub fn interval(&self) -> chrono::Duration {
        chrono::Duration::seconds(i64::from(self.interval_secs.max(1)))
    }

    /// Its load on providers in thousandths of a symbol-tick per minute (symbols × 60 /
    /// interval), the unit of the per-key limit: whole numbers, so usage adds up exactly.
    pub fn symbol_ticks_milli(&self) -> u64 {
        symbol_ticks_milli(self.symbols.len(), self.interval_secs)
    }
}

/// Thousandths of a symbol-tick per minute of `symbols` polled every `interval_secs`
/// (at least 1, so every job counts).
pub fn symbol_ticks_milli(symbols: usize, interval_secs: u32) -> u64 {
    let symbols = u64::try_from(symbols).unwrap_or(u64::MAX);
    (symbols.saturating_mul(60_000) / u64::from(interval_secs.max(1))).max(1)
}

/// The first point of the tick grid of `interval_secs` strictly after `t`. Every job with
/// the same interval ticks on the same grid (multiples of the interval since the Unix
/// epoch), so one tick serves all of them.
pub fn next_grid_point(t: DateTime<Utc>, interval_secs: u32) -> DateTime<Utc> {
    let step = i64::from(interval_secs.max(1)) * 1000;
    let ms = t.timestamp_millis();
    let next = (ms.div_euclid(step) + 1) * step;
    DateTime::from_timestamp_millis(next).unwrap_or(t)
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobPage {
    /// The jobs of this page.
    pub jobs: Vec<Job>,
    /// Where the next page starts; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// Listing cursors are the last id of a page, hex-encoded: opaque to clients, checked on
/// return so a cursor this service did not issue is refused.
pub fn encode_cursor(last: &JobId) -> String {
    last.as_str().bytes().map(|b| format!("{b:02x}")).collect()
}

/// The id a cursor of [`encode_cursor`] names; `None` for anything else.
pub fn decode_cursor(cursor: &str) -> Option<JobId> {
    if !cursor.len().is_multiple_of(2) || cursor.len() > 128 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..cursor.len())
        .step_by(2)
        .map(|i| {
            cursor
                .get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect();
    let text = String::from_utf8(bytes?).ok()?;
    JobId::parse(&text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_and_differ() {
        let a = JobId::generate();
        let b = JobId::generate();
        assert_ne!(a, b);
        assert_eq!(JobId::parse(a.as_str()).unwrap(), a);
        assert!(a.as_str().starts_with("poll_"));
    }

    #[test]
    fn foreign_ids_are_refused() {
        for bad in [
            "",
            "poll_",
            "poll_xyz",
            "job_0123456789abcdef0123456789abcdef",
            "poll_0123",
        ] {
            assert!(JobId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_grid_is_shared_by_every_job_of_an_interval() {
        let t = DateTime::parse_from_rfc3339("2026-12-01T10:00:03.5Z")
            .unwrap()
            .with_timezone(&Utc);
        let next = next_grid_point(t, 10);
        assert_eq!(next.to_rfc3339(), "2026-12-01T10:00:10+00:00");
        assert_eq!(next_grid_point(next, 10).timestamp() - next.timestamp(), 10);
        assert_eq!(next_grid_point(t, 7).timestamp() % 7, 0);
    }

    #[test]
    fn symbol_ticks_count_in_thousandths() {
        assert_eq!(symbol_ticks_milli(1, 10), 6_000);
        assert_eq!(symbol_ticks_milli(3, 60), 3_000);
        assert_eq!(symbol_ticks_milli(1, 86_400), 1);
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let id = JobId::generate();
        assert_eq!(decode_cursor(&encode_cursor(&id)), Some(id));
        for bad in ["zz", "abc", "00", "poll_1"] {
            assert_eq!(decode_cursor(bad), None, "{bad}");
        }
    }
}
