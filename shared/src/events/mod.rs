//! The event bus: where price events go once a quote is stored.

mod in_process;
pub mod kafka;

use async_trait::async_trait;

use crate::cause::Cause;
use crate::domain::PriceEvent;

pub use in_process::InProcessBus;
pub use kafka::{KafkaBus, KafkaConfig, KafkaContext};

/// An event the bus could not confirm. The raw row stays marked undelivered, and the
/// re-publisher tries again later.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PublishError {
    /// The broker did not confirm delivery in time, or refused the message.
    #[error("event not delivered: {0}")]
    NotDelivered(#[source] Cause),
    /// The bus is not usable at all (bad settings, topic missing).
    #[error("event bus unavailable: {0}")]
    Unavailable(#[source] Cause),
}

/// The event-bus port.
#[async_trait]
pub trait EventBus: Send + Sync {
    /// Publishes `event` and waits, for a bounded time, until the bus confirms it.
    async fn publish(&self, event: &PriceEvent) -> Result<(), PublishError>;

    /// Whether the bus can take events now (for readiness).
    async fn ping(&self) -> Result<(), PublishError>;
}
