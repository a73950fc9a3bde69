//! What a shared tick did, and how a job's run statistics follow from it.
//!
//! One shared tick serves up to a thousand jobs. It records what it did once, as a
//! [`TickOutcome`] (when it ran, which of its symbols failed and why), instead of writing
//! to each of its jobs: with 10,000 jobs at 10 s that is one write per message instead of
//! 60,000 job writes a minute. A job keeps the ids of the ticks it was claimed for and has
//! not counted yet ([`Job::pending`]); its run count, last run and last error are what it
//! has counted plus what the outcomes of those ticks say. The wake-up counts a job's final
//! ticks into it ([`Job::settle_final`]) in the same write that claims its next minute, so
//! counting costs no write of its own; reads add the outcomes not counted yet
//! ([`Job::with_outcomes`]).

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Job, JobStatus, Symbol};

/// How long after a tick expires its outcome may still be written: a tick is started at the
/// latest when it expires, and no poller invocation runs longer than this (its timeout is
/// 50 s). After that, a tick with no outcome never ran.
pub const OUTCOME_FINAL_AFTER: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// Most ticks a job keeps uncounted. In steady state a job holds its claimed minutes and
/// the ticks of the last minute or two (about 20 for a 10 s job); if counting fails for a
/// long while the oldest are forgotten rather than letting the job's item grow.
pub const MAX_PENDING: usize = 256;

/// Bytes of error text one outcome keeps; past it, a failed symbol is kept with an empty
/// reason (shown as [`REASON_NOT_KEPT`]) so an outcome stays far below DynamoDB's 400 KB
/// item limit.
const ERROR_TEXT_BUDGET: usize = 200_000;
/// Longest error text kept per symbol.
const MAX_ERROR_LEN: usize = 300;
/// What a failed symbol whose reason did not fit says.
pub const REASON_NOT_KEPT: &str = "failed (reason not kept: too many failures in one tick)";

/// The identity of one shared tick (one queue message): its due time in epoch
/// milliseconds, the wake-up that made it, and its place among that wake-up's messages.
/// Unique, so two wake-ups that raced never share an outcome, and it sorts by due time.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TickId {
    due_ms: i64,
    text: String,
}

/// The text is not a tick id this service made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a tick id (expected <due ms>-<maker>-<n>)")]
pub struct BadTickId(pub String);

impl TickId {
    /// The id of message `n` of the wake-up (or API call) `maker`, due at `due_at`.
    pub fn new(due_at: DateTime<Utc>, maker: &str, n: usize) -> Self {
        let due_ms = due_at.timestamp_millis();
        Self {
            due_ms,
            text: format!("{due_ms}-{maker}-{n}"),
        }
    }

    /// Reads an id back from its text.
    pub fn parse(raw: &str) -> Result<Self, BadTickId> {
        let bad = || BadTickId(raw.to_owned());
        let mut parts = raw.splitn(3, '-');
        let due_ms: i64 = parts.next().and_then(|d| d.parse().ok()).ok_or_else(bad)?;
        let maker = parts.next().ok_or_else(bad)?;
        let n = parts.next().ok_or_else(bad)?;
        let ok = !maker.is_empty()
            && maker.bytes().all(|b| b.is_ascii_alphanumeric())
            && n.parse::<u32>().is_ok()
            && raw.len() <= 64;
        if ok {
            Ok(Self {
                due_ms,
                text: raw.to_owned(),
            })
        } else {
            Err(bad())
        }
    }

    /// When the tick is due.
    pub fn due_at(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.due_ms).unwrap_or(DateTime::<Utc>::MIN_UTC)
    }

    /// The id's text.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for TickId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl TryFrom<String> for TickId {
    type Error = BadTickId;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl From<TickId> for String {
    fn from(id: TickId) -> Self {
        id.text
    }
}

/// What one shared tick did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TickOutcome {
    /// The tick.
    pub id: TickId,
    /// When it started; `None` when it did not run (see `note`).
    pub ran_at: Option<DateTime<Utc>>,
    /// The symbols that could not be polled, and why (empty when the reason was not kept);
    /// the others were.
    pub failures: BTreeMap<Symbol, String>,
    /// Why it did not run, when it did not.
    pub note: Option<String>,
}

impl TickOutcome {
    /// The outcome of a tick that ran at `ran_at`, with its failed symbols. Error texts are
    /// shortened and, past a budget, replaced by [`REASON_NOT_KEPT`], so the record stays
    /// small whatever went wrong.
    pub fn ran(
        id: TickId,
        ran_at: DateTime<Utc>,
        failures: impl IntoIterator<Item = (Symbol, String)>,
    ) -> Self {
        let mut budget = ERROR_TEXT_BUDGET;
        let failures = failures
            .into_iter()
            .map(|(symbol, error)| {
                let error = shorten(&error, MAX_ERROR_LEN);
                if error.len() <= budget {
                    budget -= error.len();
                    (symbol, error)
                } else {
                    (symbol, String::new())
                }
            })
            .collect();
        Self {
            id,
            ran_at: Some(ran_at),
            failures,
            note: None,
        }
    }

    /// The outcome of a tick that was not run, and why.
    pub fn not_run(id: TickId, why: &str) -> Self {
        Self {
            id,
            ran_at: None,
            failures: BTreeMap::new(),
            note: Some(shorten(why, MAX_ERROR_LEN)),
        }
    }

    /// What went wrong for a job polling `symbols` on this tick: `None` when it ran and
    /// each of them was polled.
    pub fn error_for(&self, symbols: &[Symbol]) -> Option<String> {
        if self.ran_at.is_none() {
            return self.note.clone();
        }
        let errors: Vec<String> = symbols
            .iter()
            .filter_map(|s| {
                self.failures.get(s).map(|e| match e.as_str() {
                    "" => format!("{s}: {REASON_NOT_KEPT}"),
                    e => format!("{s}: {e}"),
                })
            })
            .collect();
        (!errors.is_empty()).then(|| errors.join("; "))
    }
}

fn shorten(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

impl Job {
    /// Counts into the job the outcomes of its pending ticks that are final at `now` (their
    /// outcome can no longer change) and forgets those ticks. A final tick without an
    /// outcome never ran (it was dropped or lost) and counts for nothing. Ticks not final
    /// stay pending.
    pub fn settle_final(&mut self, outcomes: &HashMap<TickId, TickOutcome>, now: DateTime<Utc>) {
        let lag = self.final_lag();
        self.settle(outcomes, |id| id.due_at() + lag <= now);
    }

    /// Its pending ticks that are final at `now`: what [`Job::settle_final`] would count.
    pub fn final_pending(&self, now: DateTime<Utc>) -> impl Iterator<Item = &TickId> {
        let lag = self.final_lag();
        self.pending
            .iter()
            .filter(move |id| id.due_at() + lag <= now)
    }

    /// How long after its due time one of this job's ticks is final: it expires an interval
    /// after it is due (at the latest), and its outcome may still come in for
    /// [`OUTCOME_FINAL_AFTER`].
    fn final_lag(&self) -> chrono::TimeDelta {
        self.interval() + OUTCOME_FINAL_AFTER
    }

    /// The job as a reader sees it: its counted statistics plus every pending tick's
    /// outcome known so far.
    pub fn with_outcomes(&self, outcomes: &HashMap<TickId, TickOutcome>) -> Job {
        let mut view = self.clone();
        view.settle(outcomes, |_| true);
        view
    }

    /// When the wake-up has something to do for the job: claim its ticks when it is active
    /// (its `next_run_at`); count its last pending ticks once they are final when it is
    /// paused with some left; nothing otherwise. The store's index of due jobs follows it.
    pub fn wake_at(&self) -> Option<DateTime<Utc>> {
        match self.status {
            JobStatus::Active => Some(self.next_run_at),
            JobStatus::Paused => self
                .pending
                .iter()
                .max()
                .map(|last| last.due_at() + self.final_lag()),
        }
    }

    /// Adds `ids` to the pending ticks, forgetting the oldest past [`MAX_PENDING`].
    pub fn add_pending(&mut self, ids: impl IntoIterator<Item = TickId>) {
        self.pending.extend(ids);
        self.pending.sort();
        self.pending.dedup();
        let excess = self.pending.len().saturating_sub(MAX_PENDING);
        self.pending.drain(..excess);
    }

    fn settle(&mut self, outcomes: &HashMap<TickId, TickOutcome>, take: impl Fn(&TickId) -> bool) {
        self.pending.sort();
        let mut kept = Vec::with_capacity(self.pending.len());
        for id in std::mem::take(&mut self.pending) {
            if !take(&id) {
                kept.push(id);
                continue;
            }
            let Some(outcome) = outcomes.get(&id) else {
                continue;
            };
            if let Some(ran_at) = outcome.ran_at {
                self.run_count += 1;
                self.last_run_at = Some(self.last_run_at.map_or(ran_at, |t| t.max(ran_at)));
            }
            self.last_error = outcome.error_for(&self.symbols);
        }
        self.pending = kept;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ProviderId;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn sym(s: &str) -> Symbol {
        Symbol::parse(s).unwrap()
    }

    fn job() -> Job {
        Job::new(
            vec![sym("AAPL"), sym("MSFT")],
            10,
            ProviderId::Simulated,
            JobStatus::Active,
            at("2026-12-01T10:00:00Z"),
        )
    }

    #[test]
    fn ids_round_trip_and_sort_by_due_time() {
        let a = TickId::new(at("2026-12-01T10:00:10Z"), "a1b2", 3);
        assert_eq!(TickId::parse(a.as_str()).unwrap(), a);
        assert_eq!(a.due_at(), at("2026-12-01T10:00:10Z"));
        let b = TickId::new(at("2026-12-01T10:00:09Z"), "ffff", 12);
        assert!(b < a);
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<TickId>(&json).unwrap(), a);
        for bad in ["", "x-a-1", "1-a", "1--1", "1-a b-1", "1-a-x"] {
            assert!(TickId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn final_outcomes_are_counted_once_and_the_rest_stay_pending() {
        let mut j = job();
        let t1 = TickId::new(at("2026-12-01T10:00:00Z"), "w", 0);
        let t2 = TickId::new(at("2026-12-01T10:00:10Z"), "w", 0);
        let t3 = TickId::new(at("2026-12-01T10:00:20Z"), "w", 1);
        let t4 = TickId::new(at("2026-12-01T10:05:00Z"), "w", 0);
        j.add_pending([t3.clone(), t1.clone(), t2.clone(), t4.clone()]);
        let outcomes = HashMap::from([
            (
                t1.clone(),
                TickOutcome::ran(t1.clone(), at("2026-12-01T10:00:00.2Z"), []),
            ),
            // t2 never ran: no outcome.
            (
                t3.clone(),
                TickOutcome::ran(
                    t3.clone(),
                    at("2026-12-01T10:00:20.1Z"),
                    [
                        (sym("MSFT"), "unavailable".to_owned()),
                        (sym("NVDA"), "not this job's".to_owned()),
                    ],
                ),
            ),
        ]);
        let now = at("2026-12-01T10:02:00Z");
        let seen = j.with_outcomes(&outcomes);
        assert_eq!(seen.run_count, 2);
        j.settle_final(&outcomes, now);
        assert_eq!(j.run_count, 2);
        assert_eq!(j.last_run_at, Some(at("2026-12-01T10:00:20.1Z")));
        assert_eq!(j.last_error.as_deref(), Some("MSFT: unavailable"));
        assert_eq!(
            j.pending,
            std::slice::from_ref(&t4),
            "a tick not yet final stays pending"
        );
        // Settling again counts nothing twice.
        j.settle_final(&outcomes, now);
        assert_eq!(j.run_count, 2);
        let t4_done = HashMap::from([(
            t4.clone(),
            TickOutcome::ran(t4.clone(), at("2026-12-01T10:05:00.3Z"), []),
        )]);
        let seen = j.with_outcomes(&t4_done);
        assert_eq!((seen.run_count, seen.last_error), (3, None));
        assert!(seen.pending.is_empty());
    }

    #[test]
    fn a_tick_that_did_not_run_says_why_without_counting() {
        let mut j = job();
        let t = TickId::new(at("2026-12-01T10:00:00Z"), "w", 0);
        j.add_pending([t.clone()]);
        let outcomes = HashMap::from([(
            t.clone(),
            TickOutcome::not_run(t.clone(), "skipped: deadline"),
        )]);
        let seen = j.with_outcomes(&outcomes);
        assert_eq!(seen.run_count, 0);
        assert_eq!(seen.last_error.as_deref(), Some("skipped: deadline"));
    }

    #[test]
    fn a_paused_job_wakes_once_to_count_its_last_ticks() {
        let mut j = job();
        assert_eq!(j.wake_at(), Some(j.next_run_at));
        j.status = JobStatus::Paused;
        assert_eq!(j.wake_at(), None);
        j.add_pending([TickId::new(at("2026-12-01T10:00:10Z"), "w", 0)]);
        assert_eq!(j.wake_at(), Some(at("2026-12-01T10:01:20Z")));
    }

    #[test]
    fn pending_ticks_are_bounded_oldest_first() {
        let mut j = job();
        let start = at("2026-12-01T10:00:00Z");
        j.add_pending(
            (0..MAX_PENDING as i64 + 10)
                .map(|i| TickId::new(start + chrono::TimeDelta::seconds(10 * i), "w", 0)),
        );
        assert_eq!(j.pending.len(), MAX_PENDING);
        assert_eq!(
            j.pending[0].due_at(),
            start + chrono::TimeDelta::seconds(100)
        );
    }

    #[test]
    fn a_tick_where_everything_failed_stays_small() {
        let t = TickId::new(at("2026-12-01T10:00:00Z"), "w", 0);
        let long = "x".repeat(1_000);
        let outcome = TickOutcome::ran(
            t,
            at("2026-12-01T10:00:01Z"),
            (0..10_000).map(|i| (sym(&format!("S{i}")), format!("{long}{i}"))),
        );
        let bytes: usize = outcome
            .failures
            .iter()
            .map(|(s, e)| s.as_str().len() + e.len())
            .sum();
        assert!(bytes < 300_000, "{bytes} bytes of failures");
        assert_eq!(outcome.failures.len(), 10_000);
        let last = outcome.error_for(&[sym("S9999")]).unwrap();
        assert_eq!(last, format!("S9999: {REASON_NOT_KEPT}"));
    }
}
