//! The tick queue: where claimed ticks wait until they are due, and the port the poller's
//! wake-up hands them to.
//!
//! On AWS, one stack-owned EventBridge rule (`rate(1 minute)`) wakes the poller; the wake-up
//! claims the ticks due in the coming minute from the job store and sends each to an SQS
//! queue with `DelaySeconds` equal to its offset in the minute ([`SqsTickQueue`]); the queue
//! invokes the poller with the ticks as they become visible. No invocation waits for time to
//! pass, and nothing is created in AWS at run time. Without configuration,
//! [`MemoryTickQueue`] keeps the ticks in this process and the local runner delivers them
//! when their delay is over.
//!
//! A [`Tick`] is shared: it names every job due at the same time on the same provider and
//! the union of their symbols, so each (provider, symbol) is fetched once per tick however
//! many jobs ask for it.

mod memory;
pub mod sqs;

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::cause::Cause;
use crate::domain::{JobId, ProviderId, Symbol, TickId};

pub use memory::MemoryTickQueue;
pub use sqs::{SqsQueueConfig, SqsTickQueue};

/// The longest delay SQS allows on a message (15 minutes).
pub const MAX_DELAY: Duration = Duration::from_secs(900);

/// What the one-minute rule delivers to the poller: exactly this JSON, as its constant input.
pub const WAKE_UP_INPUT: &str = r#"{"wake_up":true}"#;

/// One shared tick: the jobs due at `due_at` on `provider`, and the symbols they poll.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tick {
    /// Which message it is: the key of its outcome, and what its jobs hold until they count
    /// it.
    pub id: TickId,
    /// When the tick is due (a point of the jobs' interval grid).
    pub due_at: DateTime<Utc>,
    /// After this the tick is useless (due time plus the shortest interval of its jobs): it
    /// is dropped and counted, never run late.
    pub expires_at: DateTime<Utc>,
    /// The provider asked.
    pub provider: ProviderId,
    /// The distinct symbols of all its jobs.
    pub symbols: Vec<Symbol>,
    /// The jobs it serves, each with the symbols it polls (indexes into `symbols`).
    pub jobs: Vec<TickJob>,
}

/// One job of a tick.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TickJob {
    /// The job.
    pub id: JobId,
    /// Its symbols, as indexes into [`Tick::symbols`] (keeps messages small).
    pub symbols: Vec<u16>,
}

/// A tick and how long it waits before it is delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelayedTick {
    /// The tick.
    pub tick: Tick,
    /// Its offset from now, at most [`MAX_DELAY`].
    pub delay: Duration,
}

/// A queue call that did not complete.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchedulerError {
    /// The queue could not be reached or refused the request.
    #[error("tick queue unavailable: {0}")]
    Unavailable(#[source] Cause),
}

/// The tick queue port.
#[async_trait]
pub trait TickQueue: Send + Sync {
    /// Enqueues `ticks`, each delivered after its delay. On failure some may have been sent;
    /// the error says how many were not.
    async fn send(&self, ticks: &[DelayedTick]) -> Result<(), SchedulerError>;

    /// What this adapter is, for the start-up banner.
    fn describe(&self) -> String;
}
