//! The use cases: what the functions do, written against the ports only.

mod latest_price;
mod republish;

pub use latest_price::{LatestPrice, Origin, QuoteError, QuoteService};
pub use republish::{RepublishReport, Republisher};
