//! The use cases: what the functions do, written against the ports only.

mod consume_prices;
pub mod polling;
mod price_history;
mod quote_service;
mod republish;

pub use consume_prices::{ConsumeReport, ConsumedRecord, PriceConsumer};
pub use polling::{
    JobAdmin, NewJob, PollSettings, PollingError, RunOutcome, Scope, TickReport, TickRunner,
    WakeUp, WakeUpReport,
};
pub use price_history::{AverageError, DEFAULT_PAGE, HistoryPage, MAX_PAGE, PriceHistory};
pub use quote_service::{Attempt, AttemptOutcome, LatestPrice, Origin, QuoteError, QuoteService};
pub use republish::{RepublishReport, Republisher};
