//! One module per group of routes; each handler only translates HTTP to a use case and back.

pub mod docs;
pub mod health;
pub mod history;
pub mod latest;
pub mod moving_average;
pub mod poll;
