//! Plain types and rules of the market-data domain.
//!
//! Nothing here knows about HTTP, AWS, Kafka, Redis or SQL: adapters translate to and from
//! these types at the edges.

mod price_event;
mod provider_id;
mod quote;
mod symbol;

pub use price_event::PriceEvent;
pub use provider_id::{ProviderId, UnknownProvider};
pub use quote::{FetchedQuote, Quote, fetch_time_now};
pub use symbol::{MAX_SYMBOL_LEN, Symbol, SymbolError};
