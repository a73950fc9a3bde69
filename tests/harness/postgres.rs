//! A fresh PostgreSQL database per test.

use tokio_postgres::NoTls;

use crate::{endpoint, unique_name};

/// A database created for one test. Left behind when the test ends; `local/test.sh`
/// drops every `mdb_t_*` database at its next start.
pub struct TestDb {
    /// Its name.
    pub name: String,
    /// Its URL, for `DATABASE_URL`.
    pub url: String,
}

/// The server's admin URL.
pub fn admin_url() -> String {
    endpoint(
        "MDB_TEST_DATABASE_URL",
        "postgres://postgres@127.0.0.1:5432/postgres",
    )
}

impl TestDb {
    /// Creates an empty database.
    pub async fn create() -> Self {
        let admin = admin_url();
        let name = unique_name("mdb_t");
        let client = connect(&admin).await;
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create the test database");
        let url = with_dbname(&admin, &name);
        Self { name, url }
    }

    /// This database's URL with the server's address replaced by `addr` (a proxy in front
    /// of it, say).
    pub fn url_via(&self, addr: std::net::SocketAddr) -> String {
        let admin = admin_url();
        with_dbname(
            &admin.replace(&server_address(), &addr.to_string()),
            &self.name,
        )
    }

    /// A connection to this database.
    pub async fn client(&self) -> tokio_postgres::Client {
        connect(&self.url).await
    }
}

/// The server's `host:port`.
pub fn server_address() -> String {
    let admin = admin_url();
    admin
        .split_once('@')
        .and_then(|(_, rest)| rest.split('/').next())
        .expect("MDB_TEST_DATABASE_URL is postgres://user@host:port/db")
        .to_owned()
}

/// Connects and drives the connection in the background.
pub async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|e| {
            panic!("PostgreSQL at {url} must be running (local/test.sh starts it): {e}")
        });
    tokio::spawn(connection);
    client
}

/// `url` with its database name replaced.
fn with_dbname(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let path_start = base[scheme_end..]
        .find('/')
        .map(|i| scheme_end + i)
        .unwrap_or(base.len());
    let mut out = format!("{}/{db}", &base[..path_start]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}
