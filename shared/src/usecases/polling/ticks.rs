//! Running one shared tick from the queue, for the poller.
//!
//! 1. A tick past its expiry (older than its shortest interval) is dropped and counted.
//! 2. A tick that cannot finish before the invocation's deadline (minus the margin) is not
//!    started: its jobs' `last_error` says so, it is counted, and it is left in the queue
//!    (reported as a failed batch item) so a later invocation runs it if it is still useful.
//! 3. Otherwise each of its distinct symbols is fetched once, through the latest-price path
//!    (in batch calls where the provider has them, concurrently, bounded, within the
//!    provider's call budget), and the tick records its outcome once (which symbols failed
//!    and why), for its jobs to count at their next claim: one write however many jobs it
//!    serves. A symbol whose quote could not be stored failed: nothing is counted as polled
//!    that is not on record.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::Serialize;
use tracing::warn;

use super::PollSettings;
use crate::domain::{ProviderId, Symbol, TickOutcome};
use crate::jobs::JobStore;
use crate::ratelimit::{Quota, RateLimiting};
use crate::scheduler::Tick;
use crate::telemetry::Metrics;
use crate::usecases::QuoteService;

/// Least time a tick is given: one that would have less before the deadline is not started.
const MIN_TICK_TIME: Duration = Duration::from_secs(1);
/// Longest wait for a tick's outcome to be recorded when there is no invocation deadline.
const RECORD_TIMEOUT: Duration = Duration::from_secs(5);

/// One symbol that could not be fetched in a tick.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SymbolFailure {
    /// The symbol.
    pub symbol: Symbol,
    /// Why.
    pub error: String,
}

/// What a tick came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    /// The symbols were fetched (some may have failed) and the jobs recorded.
    Ran,
    /// The tick was older than its interval: dropped, counted, not retried.
    Dropped,
    /// The invocation's deadline was too near: not started, left in the queue.
    Skipped,
}

/// What one tick did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TickReport {
    /// What it came to.
    pub outcome: RunOutcome,
    /// When the tick was due.
    pub due_at: DateTime<Utc>,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// Jobs it served.
    pub jobs: usize,
    /// Provider calls made (one per distinct symbol, or per batch where the provider takes
    /// many symbols a call).
    pub calls: usize,
    /// Symbols fetched, stored and published.
    pub fetched: usize,
    /// Symbols that failed; the others were still fetched.
    pub failures: Vec<SymbolFailure>,
    /// Whether its outcome was recorded for its jobs to count.
    pub recorded: bool,
}

/// The tick-running use case.
#[derive(Clone)]
pub struct TickRunner {
    jobs: Arc<dyn JobStore>,
    quotes: QuoteService,
    limiter: Arc<RateLimiting>,
    settings: PollSettings,
    metrics: Metrics,
}

impl TickRunner {
    /// A runner over the given ports. `limiter` paces provider calls across pollers
    /// (through Redis when it has it).
    pub fn new(
        jobs: Arc<dyn JobStore>,
        quotes: QuoteService,
        limiter: Arc<RateLimiting>,
        settings: PollSettings,
        metrics: Metrics,
    ) -> Self {
        Self {
            jobs,
            quotes,
            limiter,
            settings,
            metrics,
        }
    }

    /// The same runner with other settings (tests change the deadline margin).
    pub fn with_settings(mut self, settings: PollSettings) -> Self {
        self.settings = settings;
        self
    }

    /// Runs `tick`; `deadline` is the invocation's (none locally).
    #[tracing::instrument(skip_all, fields(due_at = %tick.due_at, provider = %tick.provider))]
    pub async fn run(&self, tick: &Tick, deadline: Option<Instant>) -> TickReport {
        let started = Instant::now();
        let started_at = Utc::now();
        let dims = || vec![("Provider", tick.provider.to_string())];
        let mut report = TickReport {
            outcome: RunOutcome::Ran,
            due_at: tick.due_at,
            started_at,
            jobs: tick.jobs.len(),
            calls: 0,
            fetched: 0,
            failures: Vec::new(),
            recorded: false,
        };
        if started_at > tick.expires_at {
            self.metrics
                .amount("PollTickDropped", tick.jobs.len() as f64, dims());
            warn!(
                jobs = tick.jobs.len(),
                "tick older than its interval dropped"
            );
            report.outcome = RunOutcome::Dropped;
            return report;
        }
        let stop_at = deadline.map(|d| {
            d.checked_sub(self.settings.deadline_margin)
                .unwrap_or(started)
        });
        if stop_at.is_some_and(|s| started + MIN_TICK_TIME > s) {
            report.outcome = RunOutcome::Skipped;
            report.recorded = self.skip(tick, stop_at).await;
            return report;
        }
        // A symbol waits for the call budget at most until the tick expires or the deadline.
        let until_expiry = (tick.expires_at - started_at).to_std().unwrap_or_default();
        let give_up = stop_at.map_or(started + until_expiry, |s| s.min(started + until_expiry));
        // One call per chunk: a provider with a batch endpoint gets many symbols a call.
        let per_call = self
            .quotes
            .providers()
            .get(tick.provider)
            .map_or(1, |p| p.max_batch().max(1));
        let indexes: Vec<usize> = (0..tick.symbols.len()).collect();
        // Collected first: a lazily mapped stream of borrowing futures is not `Send` enough
        // for a spawned task.
        let fetches: Vec<_> = indexes
            .chunks(per_call)
            .map(|chunk| async move {
                let symbols: Vec<Symbol> = chunk.iter().map(|i| tick.symbols[*i].clone()).collect();
                let results = self.fetch(&symbols, tick.provider, give_up).await;
                chunk.iter().copied().zip(results).collect::<Vec<_>>()
            })
            .collect();
        report.calls = fetches.len();
        let results: HashMap<usize, Result<(), String>> = futures::stream::iter(fetches)
            .buffer_unordered(self.settings.concurrency.max(1))
            .flat_map(futures::stream::iter)
            .collect()
            .await;
        for (i, result) in &results {
            match result {
                Ok(()) => report.fetched += 1,
                Err(error) => {
                    self.metrics.count("PollSymbolFailed", dims());
                    let symbol = tick.symbols[*i].clone();
                    warn!(%symbol, %error, "symbol not polled");
                    report.failures.push(SymbolFailure {
                        symbol,
                        error: error.clone(),
                    });
                }
            }
        }
        report.failures.sort_by(|a, b| a.symbol.cmp(&b.symbol));
        let outcome = TickOutcome::ran(
            tick.id.clone(),
            started_at,
            report
                .failures
                .iter()
                .map(|f| (f.symbol.clone(), f.error.clone())),
        );
        report.recorded = self.record(&outcome, stop_at).await;
        self.metrics.count("PollTick", dims());
        self.metrics.millis(
            "PollTickLatency",
            started.elapsed().as_secs_f64() * 1000.0,
            dims(),
        );
        let late = (started_at - tick.due_at).num_milliseconds().max(0);
        self.metrics.millis("PollTickDelay", late as f64, dims());
        report
    }

    /// One provider call's symbols: paced, then fetched (stored, published, cached), giving
    /// up at `give_up`. One result per symbol, in order; a quote that could not be stored is
    /// a failure: a poll is done only when its quote is on record.
    async fn fetch(
        &self,
        symbols: &[Symbol],
        provider: ProviderId,
        give_up: Instant,
    ) -> Vec<Result<(), String>> {
        if let Err(e) = self.pace(provider, give_up).await {
            return vec![Err(e); symbols.len()];
        }
        let left = give_up.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, self.quotes.refresh_many(symbols, Some(provider))).await {
            Ok(results) => results
                .into_iter()
                .map(|result| match result {
                    Ok(price) => match price.not_stored {
                        None => Ok(()),
                        Some(why) => Err(format!("quote not stored: {why}")),
                    },
                    Err(e) => Err(e.source.to_string()),
                })
                .collect(),
            Err(_) => {
                vec![Err("not fetched before the invocation's deadline".into()); symbols.len()]
            }
        }
    }

    /// Records that `tick` was skipped for the deadline, as far as the time left allows.
    async fn skip(&self, tick: &Tick, stop_at: Option<Instant>) -> bool {
        self.metrics.amount(
            "PollTickSkipped",
            tick.jobs.len() as f64,
            vec![("Provider", tick.provider.to_string())],
        );
        warn!(
            jobs = tick.jobs.len(),
            "tick skipped: the invocation's deadline is too near"
        );
        let message = format!(
            "tick due {} skipped: the poller's invocation deadline was too near; left in the queue",
            tick.due_at
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        );
        self.record(&TickOutcome::not_run(tick.id.clone(), &message), stop_at)
            .await
    }

    /// Records `outcome`, within the deadline's margin (its jobs would only count it a
    /// little short: the fetched quotes are on record either way). Whether it was.
    async fn record(&self, outcome: &TickOutcome, stop_at: Option<Instant>) -> bool {
        // The write must not overrun the deadline: it may use half the margin.
        let budget = stop_at.map_or(RECORD_TIMEOUT, |s| {
            (s.saturating_duration_since(Instant::now()) + self.settings.deadline_margin / 2)
                .min(RECORD_TIMEOUT)
        });
        let failed = match tokio::time::timeout(budget, self.jobs.record_outcome(outcome)).await {
            Ok(Ok(())) => return true,
            Ok(Err(e)) => e.to_string(),
            Err(_) => "not written before the invocation's deadline".to_owned(),
        };
        self.metrics.count("PollOutcomeNotRecorded", vec![]);
        warn!(tick = %outcome.id, error = %failed, "tick outcome not recorded; its jobs will not count it");
        false
    }

    /// Waits until the provider's rate limit allows one more call, or fails at `deadline`.
    async fn pace(&self, provider: ProviderId, deadline: Instant) -> Result<(), String> {
        let quota = match provider {
            ProviderId::Finnhub => {
                let per_minute = self.settings.finnhub_calls_per_minute.max(1);
                // Finnhub also allows at most 30 calls a second.
                Quota {
                    per_minute,
                    burst: per_minute.min(30),
                }
            }
            // Other providers are paced by the failover chain's quotas (providers::guard).
            _ => return Ok(()),
        };
        let key = format!("poll-provider:{provider}");
        loop {
            let decision = self.limiter.check(&key, quota).await;
            if decision.allowed {
                return Ok(());
            }
            let wait = decision.retry_after.unwrap_or(Duration::from_millis(500));
            if Instant::now() + wait > deadline {
                return Err(format!(
                    "{provider}'s call budget ({}/min) is used up until the next tick",
                    quota.per_minute
                ));
            }
            tokio::time::sleep(wait).await;
        }
    }
}
