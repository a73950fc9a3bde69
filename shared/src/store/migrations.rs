//! The SQL migrations of `migrations/`, compiled in and applied in order.
//!
//! Every file is idempotent on its own, and applied versions are recorded in
//! `schema_migrations`, so running the migrations again changes nothing. All of a run
//! happens in one transaction under an advisory lock: concurrent starters wait for each
//! other, and a failed migration leaves the database as it was.

/// One migration file.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Its order; also the leading number of its file name.
    pub version: i32,
    /// Its file name.
    pub name: &'static str,
    /// Its SQL.
    pub sql: &'static str,
}

/// Every migration, in the order they apply.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_initial.sql",
        sql: include_str!("../../../migrations/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "0002_consumer_lookups.sql",
        sql: include_str!("../../../migrations/0002_consumer_lookups.sql"),
    },
    Migration {
        version: 3,
        name: "0003_distinct_quotes.sql",
        sql: include_str!("../../../migrations/0003_distinct_quotes.sql"),
    },
];

/// Key of the advisory lock that serialises migration runs (an arbitrary constant).
pub(crate) const MIGRATION_LOCK_KEY: i64 = 0x6d64_625f_6d69_6772;
