//! The parts of the local runner that tests use too: the local stand-ins for what AWS does
//! around the functions.
//!
//! - [`event_source`]: the MSK event source mapping that triggers `ma-consumer`;
//! - [`poller_clock`]: the one-minute rule and the SQS event source that trigger `poller`.

pub mod event_source;
pub mod poller_clock;
