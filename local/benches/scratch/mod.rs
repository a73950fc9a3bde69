//! What the local benchmarks share: a PostgreSQL database and a Kafka topic of their own on
//! the local stack, removed afterwards, and the configuration read from plain pairs.

use std::time::Duration;

use market_data::Config;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use tokio_postgres::NoTls;
use uuid::Uuid;

/// Partitions of each topic, as the stack's `price-events` topic has.
const PARTITIONS: i32 = 3;

/// A database and a topic of one name (`mdb_bench_<uuid>`), on the servers of
/// `MDB_BENCH_DATABASE_URL` and `MDB_BENCH_KAFKA_BOOTSTRAP` (the local stack's by default).
pub struct Scratch {
    /// The name of both.
    pub name: String,
    /// The database's URL.
    pub database_url: String,
    /// The broker's bootstrap address.
    pub bootstrap: String,
    server: tokio_postgres::Client,
    admin: AdminClient<DefaultClientContext>,
}

impl Scratch {
    /// Creates the database (empty) and the topic.
    pub async fn create() -> anyhow::Result<Self> {
        let server_url = std::env::var("MDB_BENCH_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let bootstrap =
            std::env::var("MDB_BENCH_KAFKA_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".into());
        let name = format!("mdb_bench_{}", Uuid::now_v7().simple());
        let (server, connection) = tokio_postgres::connect(&server_url, NoTls).await?;
        tokio::spawn(connection);
        server
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await?;
        let database_url = match server_url.rsplit_once('/') {
            Some((base, _)) => format!("{base}/{name}"),
            None => anyhow::bail!("MDB_BENCH_DATABASE_URL needs a database name"),
        };
        let admin: AdminClient<DefaultClientContext> = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .create()?;
        for result in admin
            .create_topics(
                &[NewTopic::new(&name, PARTITIONS, TopicReplication::Fixed(1))],
                &options(),
            )
            .await?
        {
            result.map_err(|(topic, e)| anyhow::anyhow!("create topic {topic}: {e}"))?;
        }
        Ok(Self {
            name,
            database_url,
            bootstrap,
            server,
            admin,
        })
    }

    /// Deletes the topic and drops the database.
    pub async fn remove(self) -> anyhow::Result<()> {
        if let Err(e) = self.admin.delete_topics(&[&self.name], &options()).await {
            eprintln!("topic {} not deleted: {e}", self.name);
        }
        self.server
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .await?;
        Ok(())
    }
}

fn options() -> AdminOptions {
    AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)))
}

/// The configuration of these variables and no others.
pub async fn config(vars: &[(&str, &str)]) -> anyhow::Result<Config> {
    Ok(Config::load(
        |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        },
        None,
    )
    .await?)
}
