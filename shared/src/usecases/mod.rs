//! The use cases: what the functions do, written against the ports only.

mod latest_price;
pub mod polling;
mod republish;

pub use latest_price::{LatestPrice, Origin, QuoteError, QuoteService};
pub use polling::{NewJob, PollSettings, PollingError, PollingService, RunReport};
pub use republish::{RepublishReport, Republisher};
