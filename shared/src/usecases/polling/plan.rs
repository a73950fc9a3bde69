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

use crate::domain::{Job, ProviderId, Symbol, TickId, next_grid_point};
use crate::scheduler::{DelayedTick, Tick, TickJob};

/// Jobs a message names on average: a provider's due jobs are spread over lanes of about
/// this many, so no message comes near [`MAX_JOBS_PER_TICK`].
const JOBS_PER_LANE: usize = 500;
/// Symbols (summed over jobs) a message names on average, for the same reason.
const SYMBOLS_PER_LANE: usize = 4_000;
/// Most jobs one message may name: twice the lane average, which a lane of random job ids
/// does not reach (about 500 expected, and a standard deviation of about 22).
pub const MAX_JOBS_PER_TICK: usize = 2 * JOBS_PER_LANE;

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

/// How one wake-up (or one API call) spreads jobs over messages. Per provider, the jobs
/// are split into lanes by their ids (random), enough lanes that each holds about
/// [`JOBS_PER_LANE`] jobs and [`SYMBOLS_PER_LANE`] symbols; one message is sent per due time
/// and lane. A job's message ids follow from its own ticks and lane, so a claim can write
/// them on the job before the messages are put together.
#[derive(Debug, Clone)]
pub struct Lanes {
    maker: String,
    /// Per provider: the number of its first lane (lanes are numbered across providers, so
    /// a message id need not name its provider), and how many it has.
    per_provider: BTreeMap<ProviderId, (u32, u32)>,
}

impl Lanes {
    /// Lanes for `jobs`, under a new random maker name.
    pub fn new<'a>(jobs: impl IntoIterator<Item = &'a Job>) -> Self {
        let mut load: BTreeMap<ProviderId, (usize, usize)> = BTreeMap::new();
        for job in jobs {
            let entry = load.entry(job.provider).or_default();
            entry.0 += 1;
            entry.1 += job.symbols.len();
        }
        let mut next = 0u32;
        let per_provider = load
            .into_iter()
            .map(|(provider, (jobs, symbols))| {
                let lanes = jobs
                    .div_ceil(JOBS_PER_LANE)
                    .max(symbols.div_ceil(SYMBOLS_PER_LANE))
                    .max(1);
                let lanes = u32::try_from(lanes).unwrap_or(u32::MAX);
                let first = next;
                next = next.saturating_add(lanes);
                (provider, (first, lanes))
            })
            .collect();
        // The random tail of a UUIDv7 (its last 62 bits are random): 8 hex digits keep a job's
        // pending tick ids short (they are written with it every minute), and two wake-ups
        // that race pick the same one with a chance of one in four billion.
        let nonce = uuid::Uuid::now_v7().simple().to_string();
        Self {
            maker: nonce[24..].to_owned(),
            per_provider,
        }
    }

    /// The message that carries `job`'s tick due at `due_at`.
    pub fn tick_id(&self, job: &Job, due_at: DateTime<Utc>) -> TickId {
        // A job of a provider not counted in (one that was paused when the lanes were made)
        // gets a lane of its provider's own, past all the others.
        let (first, lanes) = self
            .per_provider
            .get(&job.provider)
            .copied()
            .unwrap_or((u32::MAX / 2 + job.provider as u32, 1));
        let lane = first.saturating_add(lane_of(job, lanes));
        TickId::new(due_at, &self.maker, lane as usize)
    }
}

/// A job's lane among `lanes`: from the random tail of its id (UUIDv7).
fn lane_of(job: &Job, lanes: u32) -> u32 {
    let id = job.id.as_str();
    let tail = id.get(id.len().saturating_sub(8)..).unwrap_or("0");
    u32::from_str_radix(tail, 16).unwrap_or(0) % lanes.max(1)
}

/// Groups the claimed ticks of many jobs into shared ticks: one per due time, provider and
/// lane of `lanes`, each naming the distinct symbols of its jobs, delayed by its offset from
/// `now`.
pub fn group_ticks(
    claimed: &[(Job, Vec<DateTime<Utc>>)],
    lanes: &Lanes,
    now: DateTime<Utc>,
) -> Vec<DelayedTick> {
    let mut groups: BTreeMap<TickId, Vec<&Job>> = BTreeMap::new();
    for (job, ticks) in claimed {
        for due in ticks {
            groups
                .entry(lanes.tick_id(job, *due))
                .or_default()
                .push(job);
        }
    }
    groups
        .into_iter()
        .map(|(id, jobs)| {
            let due_at = id.due_at();
            DelayedTick {
                delay: (due_at - now).to_std().unwrap_or(Duration::ZERO),
                tick: shared_tick(id, jobs[0].provider, &jobs),
            }
        })
        .collect()
}

fn shared_tick(id: TickId, provider: ProviderId, jobs: &[&Job]) -> Tick {
    let due_at = id.due_at();
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
        id,
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
        let ticks = group_ticks(&claimed, &Lanes::new([&a, &b]), now);
        assert_eq!(ticks.len(), 1);
        let t = &ticks[0];
        assert_eq!(t.delay, Duration::from_secs(10));
        assert_eq!(t.tick.symbols.len(), 2);
        assert_eq!(t.tick.jobs.len(), 2);
        assert_eq!(t.tick.jobs[1].symbols, [0]);
        assert_eq!(t.tick.expires_at, at("2026-12-01T10:00:20Z"));
        assert_eq!(t.tick.id.due_at(), t.tick.due_at);
    }

    /// SQS takes messages of at most 256 KiB.
    const SQS_MAX: usize = 256 * 1024;

    fn encoded(t: &DelayedTick) -> usize {
        serde_json::to_string(&t.tick).unwrap().len()
    }

    #[test]
    fn ten_thousand_jobs_are_spread_over_messages_sqs_takes() {
        let jobs: Vec<Job> = (0..10_000)
            .map(|i| job(&[&format!("S{}", i % 500)], 10, "2026-12-01T10:00:10Z"))
            .collect();
        let lanes = Lanes::new(&jobs);
        let claimed: Vec<_> = jobs
            .iter()
            .map(|j| (j.clone(), vec![at("2026-12-01T10:00:10Z")]))
            .collect();
        let ticks = group_ticks(&claimed, &lanes, at("2026-12-01T10:00:00Z"));
        assert_eq!(ticks.len(), 20);
        assert_eq!(
            ticks.iter().map(|t| t.tick.jobs.len()).sum::<usize>(),
            10_000
        );
        for t in &ticks {
            assert!(t.tick.jobs.len() <= MAX_JOBS_PER_TICK);
            assert!(encoded(t) < SQS_MAX, "{} bytes", encoded(t));
        }
    }

    #[test]
    fn providers_never_share_a_message() {
        let mut a = job(&["AAPL"], 10, "2026-12-01T10:00:10Z");
        let mut b = a.clone();
        b.id = crate::domain::JobId::generate();
        b.provider = ProviderId::Finnhub;
        a.provider = ProviderId::Simulated;
        let due = at("2026-12-01T10:00:10Z");
        for lanes in [Lanes::new([&a, &b]), Lanes::new([])] {
            assert_ne!(lanes.tick_id(&a, due), lanes.tick_id(&b, due));
            let claimed = vec![(a.clone(), vec![due]), (b.clone(), vec![due])];
            let ticks = group_ticks(&claimed, &lanes, due);
            assert_eq!(ticks.len(), 2);
        }
    }

    #[test]
    fn jobs_with_many_symbols_still_fit_a_message() {
        // 1,000 jobs of 50 distinct symbols each: one message would be far over the limit.
        let jobs: Vec<Job> = (0..1_000)
            .map(|i| {
                let symbols: Vec<String> = (0..50).map(|k| format!("SYM{}", i * 50 + k)).collect();
                let refs: Vec<&str> = symbols.iter().map(String::as_str).collect();
                job(&refs, 60, "2026-12-01T10:01:00Z")
            })
            .collect();
        let lanes = Lanes::new(&jobs);
        let claimed: Vec<_> = jobs
            .iter()
            .map(|j| (j.clone(), vec![at("2026-12-01T10:01:00Z")]))
            .collect();
        let ticks = group_ticks(&claimed, &lanes, at("2026-12-01T10:00:00Z"));
        assert!(ticks.len() >= 13, "{} messages", ticks.len());
        for t in &ticks {
            assert!(encoded(t) < SQS_MAX, "{} bytes", encoded(t));
        }
    }

    #[test]
    fn a_job_keeps_its_message_across_its_ticks_and_a_second_look() {
        let jobs: Vec<Job> = (0..2_000)
            .map(|_| job(&["AAPL"], 10, "2026-12-01T10:00:10Z"))
            .collect();
        let lanes = Lanes::new(&jobs);
        let j = &jobs[17];
        let first = lanes.tick_id(j, at("2026-12-01T10:00:10Z"));
        assert_eq!(lanes.tick_id(j, at("2026-12-01T10:00:10Z")), first);
        let claimed = vec![(j.clone(), vec![at("2026-12-01T10:00:10Z")])];
        let ticks = group_ticks(&claimed, &lanes, at("2026-12-01T10:00:00Z"));
        assert_eq!(
            ticks[0].tick.id, first,
            "the message is the one the claim named"
        );
        assert_ne!(
            Lanes::new(&jobs).tick_id(j, at("2026-12-01T10:00:10Z")),
            first,
            "another wake-up makes other messages"
        );
    }
}
