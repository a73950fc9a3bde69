//! In-process adapter of the event bus: the embedded default of the local runner.
//!
//! Events go to a broadcast channel in the same process; whoever subscribed (the local
//! runner's consumer) receives them. With no subscriber the event is simply dropped, as a
//! Kafka topic nobody reads would keep it unread.

use async_trait::async_trait;
use tokio::sync::broadcast;

use super::{EventBus, PublishError};
use crate::domain::PriceEvent;

/// A bus inside this process.
#[derive(Clone)]
pub struct InProcessBus {
    sender: broadcast::Sender<PriceEvent>,
}

impl InProcessBus {
    /// A bus that keeps up to `capacity` events for slow subscribers.
    pub fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity.max(1));
        Self { sender }
    }

    /// A receiver of every event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<PriceEvent> {
        self.sender.subscribe()
    }
}

#[async_trait]
impl EventBus for InProcessBus {
    async fn publish(&self, event: &PriceEvent) -> Result<(), PublishError> {
        // An error only means nobody is subscribed right now.
        let _ = self.sender.send(event.clone());
        Ok(())
    }

    async fn ping(&self) -> Result<(), PublishError> {
        Ok(())
    }
}
