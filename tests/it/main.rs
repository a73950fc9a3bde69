//! The black-box tests, as one binary: each module was once a binary of its own, and each
//! of those linked the whole workspace (and librdkafka) again. Tests keep their module path
//! in their name (`latest_price::two_calls_for_one_symbol_make_one_provider_call`), so
//! `cargo nextest run -E 'test(latest_price::)'` picks one former binary.
//!
//! nextest runs every test in a process of its own; `cargo test` runs them as threads of one
//! process, so a test that takes over process-wide state (the log subscriber) re-runs itself
//! alone ([`harness::in_own_process`]).

mod api_keys;
mod bad_input;
mod db_migrate;
mod distinct_quotes;
mod encrypted_links;
mod event_source;
mod exact_prices;
mod failover;
mod faults;
mod finnhub_provider;
mod fuzz_bodies;
mod http_edge;
mod implausible_quotes;
mod kafka_events;
mod latest_price;
mod least_privilege;
mod ma_consumer;
mod metrics;
mod msk_iam;
mod observability;
mod openapi_docs;
mod poison_records;
mod polling_api;
mod polling_jobs_dynamodb;
mod polling_poller;
mod polling_republish;
mod polling_tenancy;
mod postgres_store;
mod price_history;
mod provider_adapters;
mod rate_limit;
mod redis_cache;
mod runner_restarts;
mod secrets;
