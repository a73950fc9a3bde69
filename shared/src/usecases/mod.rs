//! The use cases: what the functions do, written against the ports only.

mod consume_prices;
mod latest_price;
pub mod polling;
mod price_history;
mod republish;

pub use consume_prices::{ConsumeReport, ConsumedRecord, PriceConsumer};
pub use latest_price::{LatestPrice, Origin, QuoteError, QuoteService};
pub use polling::{NewJob, PollSettings, PollingError, PollingService, RunReport};
pub use price_history::{AverageError, DEFAULT_PAGE, HistoryPage, MAX_PAGE, PriceHistory};
pub use republish::{RepublishReport, Republisher};
