//! Which ticks of a job fall in a window, and how the ticks of many jobs become shared
//! messages: pure functions, so the rules are tested without a store or a queue.
//!
//! A job's ticks are the points of its interval's grid (multiples of the interval since the
//! Unix epoch), except a new or resumed job's first tick, which is at once. A tick that is
//! already older than the job's interval when it would be claimed is dropped and counted,
//! never sent late.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::domain::{Job, ProviderId, Symbol, next_grid_point};
use crate::scheduler::{DelayedTick, Tick, TickJob};

/// Most jobs one message names, so a message stays far below SQS's size limit (an entry is
/// about 60 bytes of JSON).
pub const MAX_JOBS_PER_TICK: usize = 1_000;

/// The ticks of one job in a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The due times to send, in order.
    pub ticks: Vec<DateTime<Utc>>,
    /// Ticks older than the interval, dropped.
    pub dropped: u64,
    /// The job's `next_run_at` once these are claimed: the first tick after the window.
    pub next_run_at: DateTime<Utc>,
}

/// The ticks of `job` due before `window_end`, seen at `now`.
pub fn plan(job: &Job, now: DateTime<Utc>, window_end: DateTime<Utc>) -> Plan {
    let interval = job.interval();
    let mut t = job.next_run_at;
    let mut dropped = 0;
    while t + interval <= now {
        dropped += 1;
        t = next_grid_point(t, job.interval_secs);
    }
    let mut ticks = Vec::new();
    while t < window_end {
        ticks.push(t);
        t = next_grid_point(t, job.interval_secs);
    }
    Plan {
        ticks,
        dropped,
        next_run_at: t,
    }
}

/// Groups the claimed ticks of many jobs into shared ticks: one per due time and provider
/// (split every [`MAX_JOBS_PER_TICK`] jobs), each naming the distinct symbols of its jobs,
/// delayed by its offset from `now`.
pub fn group_ticks(claimed: &[(Job, Vec<DateTime<Utc>>)], now: DateTime<Utc>) -> Vec<DelayedTick> {
    let mut groups: BTreeMap<(DateTime<Utc>, ProviderId), Vec<&Job>> = BTreeMap::new();
    for (job, ticks) in claimed {
        for due in ticks {
            groups.entry((*due, job.provider)).or_default().push(job);
        }
    }
    let mut out = Vec::new();
    for ((due_at, provider), jobs) in groups {
        for chunk in jobs.chunks(MAX_JOBS_PER_TICK) {
            out.push(DelayedTick {
                tick: shared_tick(due_at, provider, chunk),
                delay: (due_at - now).to_std().unwrap_or(Duration::ZERO),
            });
        }
    }
    out
}

fn shared_tick(due_at: DateTime<Utc>, provider: ProviderId, jobs: &[&Job]) -> Tick {
    let mut symbols: Vec<Symbol> = Vec::new();
    let mut entries = Vec::with_capacity(jobs.len());
    let mut shortest = u32::MAX;
    for job in jobs {
        shortest = shortest.min(job.interval_secs);
        let indexes = job
            .symbols
            .iter()
            .map(|s| {
                let i = symbols.iter().position(|x| x == s).unwrap_or_else(|| {
                    symbols.push(s.clone());
                    symbols.len() - 1
                });
                u16::try_from(i).unwrap_or(u16::MAX)
            })
            .collect();
        entries.push(TickJob {
            id: job.id.clone(),
            symbols: indexes,
        });
    }
    Tick {
        due_at,
        expires_at: due_at + chrono::Duration::seconds(i64::from(shortest.max(1))),
        provider,
        symbols,
        jobs: entries,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::JobStatus;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn job(symbols: &[&str], interval: u32, next: &str) -> Job {
        let mut j = Job::new(
            symbols.iter().map(|s| Symbol::parse(s).unwrap()).collect(),
            interval,
            ProviderId::Simulated,
            JobStatus::Active,
            at(next),
        );
        j.next_run_at = at(next);
        j
    }

    #[test]
    fn a_new_job_ticks_at_once_then_on_the_grid() {
        let j = job(&["AAPL"], 10, "2026-12-01T10:00:03Z");
        let p = plan(&j, at("2026-12-01T10:00:03Z"), at("2026-12-01T10:00:33Z"));
        let secs: Vec<u32> = p.ticks.iter().map(|t| t.timestamp() as u32 % 60).collect();
        assert_eq!(secs, [3, 10, 20, 30]);
        assert_eq!(p.next_run_at, at("2026-12-01T10:00:40Z"));
        assert_eq!(p.dropped, 0);
    }

    #[test]
    fn ticks_older_than_the_interval_are_dropped_not_sent_late() {
        let j = job(&["AAPL"], 10, "2026-12-01T10:00:00Z");
        let p = plan(&j, at("2026-12-01T10:00:35Z"), at("2026-12-01T10:00:45Z"));
        assert_eq!(p.dropped, 3);
        assert_eq!(
            p.ticks,
            [at("2026-12-01T10:00:30Z"), at("2026-12-01T10:00:40Z")]
        );
    }

    #[test]
    fn jobs_due_together_share_one_tick_and_each_symbol_once() {
        let now = at("2026-12-01T10:00:00Z");
        let a = job(&["AAPL", "MSFT"], 10, "2026-12-01T10:00:10Z");
        let b = job(&["AAPL"], 20, "2026-12-01T10:00:10Z");
        let claimed = vec![
            (a.clone(), vec![at("2026-12-01T10:00:10Z")]),
            (b.clone(), vec![at("2026-12-01T10:00:10Z")]),
        ];
        let ticks = group_ticks(&claimed, now);
        assert_eq!(ticks.len(), 1);
        let t = &ticks[0];
        assert_eq!(t.delay, Duration::from_secs(10));
        assert_eq!(t.tick.symbols.len(), 2);
        assert_eq!(t.tick.jobs.len(), 2);
        assert_eq!(t.tick.jobs[1].symbols, [0]);
        assert_eq!(t.tick.expires_at, at("2026-12-01T10:00:20Z"));
    }
}
