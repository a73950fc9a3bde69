//! Plain types and rules of the market-data domain.
//!
//! Nothing here knows about HTTP, AWS, Kafka, Redis or SQL: adapters translate to and from
//! these types at the edges.

mod averages;
pub mod bounded;
mod job;
mod price;
mod price_event;
mod provider_id;
mod quote;
mod symbol;
mod tick_outcome;

pub use averages::{
    AVERAGE_DECIMAL_PLACES, AverageKind, AverageSpec, AverageSpecError, DEFAULT_AVERAGES,
    EMA_LOOKBACK_WINDOWS, MAX_WINDOW, MovingAverage, PricePoint, averages_at,
};
pub use job::{
    BadJobId, JOB_ID_PREFIX, Job, JobId, JobPage, JobStatus, UnknownJobStatus, decode_cursor,
    encode_cursor, next_grid_point, symbol_ticks_milli,
};
pub use price::{
    MAX_PRICE_DIGITS_BEFORE_POINT, PriceError, check_price, exact_json, exact_json_option,
    json_number, parse_json_number,
};
pub use price_event::{EventDecodeError, PriceEvent};
pub use provider_id::{ProviderId, UnknownProvider};
pub use quote::{
    FetchedQuote, ImplausibleQuote, QUOTE_TIME_LEEWAY, Quote, check_quote_time,
    earliest_quote_time, fetch_time_now,
};
pub use symbol::{MAX_SYMBOL_LEN, Symbol, SymbolError};
pub use tick_outcome::{
    BadTickId, MAX_PENDING, OUTCOME_FINAL_AFTER, REASON_NOT_KEPT, TickId, TickOutcome,
};
