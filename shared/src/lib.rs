//! The library every function of the market-data backend shares.
//!
//! - [`domain`]: plain types and rules (symbols, quotes, price events), no I/O.
//! - Ports and their adapters: [`providers`], [`cache`], [`store`], [`events`], [`secrets`],
//!   [`ratelimit`], [`jobs`], [`scheduler`], and the metrics of [`telemetry`].
//! - [`usecases`]: what the functions do, written against the ports.
//! - [`config`] and [`services`]: reading the configuration once and building, for each
//!   function, the adapters it uses; [`readiness`]: what `/ready` checks.
//!
//! The function crates only translate their event types to these use cases and back.

pub mod aws_sdk;
pub mod cache;
pub mod cause;
pub mod config;
pub mod domain;
pub mod events;
pub mod jobs;
pub mod providers;
pub mod ratelimit;
pub mod readiness;
pub mod redis_connection;
pub mod scheduler;
pub mod secrets;
pub mod services;
pub mod single_flight;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod usecases;

pub use config::Config;
pub use services::Services;
