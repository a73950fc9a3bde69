//! The embedded tick queue: ticks wait in this process until their delay is over, and the
//! local runner (or a test) takes the visible ones and hands them to the poller's handler,
//! as SQS would.

use std::sync::Mutex;

use async_trait::async_trait;
use tokio::time::Instant;

use super::{DelayedTick, SchedulerError, Tick, TickQueue};

/// Ticks in memory, each with the instant it becomes visible.
#[derive(Default)]
pub struct MemoryTickQueue {
    waiting: Mutex<Vec<(Instant, Tick)>>,
    arrived: tokio::sync::Notify,
}

impl MemoryTickQueue {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes up to `max` ticks whose delay is over, earliest first.
    pub fn receive(&self, max: usize) -> Vec<Tick> {
        let now = Instant::now();
        let mut waiting = self.lock();
        waiting.sort_by_key(|(at, _)| *at);
        let visible = waiting.iter().take_while(|(at, _)| *at <= now).count();
        waiting
            .drain(..visible.min(max))
            .map(|(_, tick)| tick)
            .collect()
    }

    /// Takes every waiting tick, visible or not, earliest first: for tests and benchmarks
    /// that check what was sent without waiting out the delays.
    pub fn drain(&self) -> Vec<Tick> {
        let mut waiting = self.lock();
        waiting.sort_by_key(|(at, _)| *at);
        waiting.drain(..).map(|(_, tick)| tick).collect()
    }

    /// When the next tick becomes visible, if any waits.
    pub fn next_visible(&self) -> Option<Instant> {
        self.lock().iter().map(|(at, _)| *at).min()
    }

    /// Waits until a tick is sent (or returns at once if one was sent since the last call).
    pub async fn sent(&self) {
        self.arrived.notified().await;
    }

    /// How many ticks wait, visible or not.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no tick waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(Instant, Tick)>> {
        // A panic while holding this lock cannot leave the list half-changed.
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl TickQueue for MemoryTickQueue {
    async fn send(&self, ticks: &[DelayedTick]) -> Result<(), SchedulerError> {
        let now = Instant::now();
        self.lock()
            .extend(ticks.iter().map(|t| (now + t.delay, t.tick.clone())));
        self.arrived.notify_one();
        Ok(())
    }

    fn describe(&self) -> String {
        "in-process queue with tokio timers (set POLL_QUEUE_URL for SQS)".into()
    }
}
