//! `db-migrate`, the custom resource that migrates the database as its owner and readies the
//! functions' roles on a deploy: called with CloudFormation's events, answering to a local
//! server in place of the presigned `ResponseURL`, with its secrets in Secrets Manager (moto).
//!
//! Roles are per server, and the shared server trusts loopback (any password logs in), so the
//! tests that set and use the roles' passwords run on a PostgreSQL cluster of their own that
//! wants SCRAM passwords over TCP ([`TlsPostgres::start_with_password`]): a role's login there
//! proves its password is its secret's, and no other test's roles are touched. The tests that
//! never reach the roles (Delete, failures) use a database of their own on the shared server.

use std::time::Duration;

use aws_sdk_secretsmanager::Client;
use harness::cfn_response::{self, LOGICAL_ID, ResponseUrl, STACK_ID};
use harness::log_capture::Capture;
use harness::postgres::{TestDb, connect, server_address};
use harness::tls::TlsPostgres;
use harness::{create_secret, load_config, secrets_client};
use market_data::config::Env;
use market_data::secrets::SecretsManager;
use market_data::store::MIGRATIONS;
use secrecy::ExposeSecret;
use serde_json::Value;
use tokio::time::Instant;
use tokio_postgres::error::SqlState;
use tracing_subscriber::EnvFilter;

use crate::least_privilege::{ROLES, refused};

/// The database `db-migrate` works on, and how its owner logs in.
struct Database {
    host: String,
    port: u16,
    name: String,
    owner_password: String,
    /// The private cluster, when the test has one; stopped on drop.
    _server: Option<TlsPostgres>,
}

impl Database {
    /// A cluster of the test's own, where TCP logins need their password.
    async fn private() -> Self {
        let owner_password = format!("owner-pw-{}", uuid::Uuid::new_v4().simple());
        let server = TlsPostgres::start_with_password(&owner_password).await;
        Self {
            host: "127.0.0.1".to_owned(),
            port: server.port,
            name: "postgres".to_owned(),
            owner_password,
            _server: Some(server),
        }
    }

    /// A database of the test's own on the shared server (which ignores passwords).
    async fn shared() -> Self {
        let db = TestDb::create().await;
        let address = server_address();
        let (host, port) = address.split_once(':').unwrap();
        Self {
            host: host.to_owned(),
            port: port.parse().unwrap(),
            name: db.name,
            owner_password: format!("owner-pw-{}", uuid::Uuid::new_v4().simple()),
            _server: None,
        }
    }

    /// The owner's URL.
    fn owner_url(&self) -> String {
        self.url_as("postgres", &self.owner_password)
    }

    fn url_as(&self, user: &str, password: &str) -> String {
        format!(
            "postgres://{user}:{password}@{}:{}/{}",
            self.host, self.port, self.name
        )
    }

    async fn client(&self) -> tokio_postgres::Client {
        connect(&self.owner_url()).await
    }
}

/// A database, and the secrets `db-migrate` reads: the owner's and one per role, in the RDS
/// format the template's generated secrets have.
struct Deploy {
    db: Database,
    secrets: Client,
    vars: Vec<(String, String)>,
    /// Each role's secret id and password, in the order of [`ROLES`].
    roles: Vec<(String, String)>,
}

impl Deploy {
    async fn new(db: Database) -> Self {
        Self::with_owner_port(db, None).await
    }

    /// With the owner's secret naming `port` (a port nothing listens on, say) instead of the
    /// database's.
    async fn with_owner_port(db: Database, port: Option<u16>) -> Self {
        let secrets = secrets_client().await;
        let owner = serde_json::json!({
            "engine": "postgres",
            "username": "postgres",
            "password": db.owner_password,
            "host": db.host,
            "port": port.unwrap_or(db.port),
            "dbname": db.name,
        });
        let owner_id = create_secret(&secrets, &owner.to_string()).await;
        let mut vars = vec![("DATABASE_SECRET_ID".to_owned(), owner_id)];
        let mut roles = Vec::new();
        for (role, var) in db_migrate::ROLES {
            let password = generated_password();
            // As the template writes it: the port is a string (a dynamic reference's value).
            let secret = serde_json::json!({
                "engine": "postgres",
                "username": role,
                "password": password,
                "host": db.host,
                "port": db.port.to_string(),
                "dbname": db.name,
            });
            let id = create_secret(&secrets, &secret.to_string()).await;
            vars.push((var.to_owned(), id.clone()));
            roles.push((id, password));
        }
        Self {
            db,
            secrets,
            vars,
            roles,
        }
    }

    /// Runs the handler on `event`, with a minute before the invocation's deadline.
    async fn invoke(&self, event: Value) -> db_migrate::Answer {
        let lookup = |k: &str| {
            self.vars
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
        };
        // A store of its own per invocation, as the function reads its secrets afresh.
        let store = SecretsManager::new(self.secrets.clone());
        let env = Env::new(&lookup, Some(&store));
        let http = reqwest::Client::new();
        db_migrate::handle(&env, &http, event, Instant::now() + Duration::from_secs(60))
            .await
            .expect("CloudFormation is answered")
    }

    /// Every password the test made: none may show in an answer or a log.
    fn passwords(&self) -> Vec<&str> {
        let mut all = vec![self.db.owner_password.as_str()];
        all.extend(self.roles.iter().map(|(_, p)| p.as_str()));
        all
    }

    /// The applied versions, or `None` when the migrations table does not exist.
    async fn applied_versions(&self) -> Option<Vec<i32>> {
        let client = self.db.client().await;
        let exists: bool = client
            .query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])
            .await
            .unwrap()
            .get(0);
        if !exists {
            return None;
        }
        let rows = client
            .query(
                "SELECT version FROM schema_migrations ORDER BY version",
                &[],
            )
            .await
            .unwrap();
        Some(rows.iter().map(|r| r.get(0)).collect())
    }
}

/// Every migration's version.
fn all_versions() -> Option<Vec<i32>> {
    Some(MIGRATIONS.iter().map(|m| m.version).collect())
}

/// A password like the template's (`ExcludePunctuation`, 32 characters).
fn generated_password() -> String {
    std::iter::repeat_with(fastrand::alphanumeric)
        .take(32)
        .collect()
}

/// What each role may read (it must succeed) and what it may not (refused).
fn grants(role: &str) -> (&'static str, &'static [&'static str]) {
    const DDL: &str = "CREATE TABLE intruder (i int)";
    match role {
        "mdb_api" => (
            "SELECT count(*) FROM raw_market_data; SELECT count(*) FROM price_points;
             SELECT count(*) FROM moving_averages",
            &[
                DDL,
                "SELECT count(*) FROM dead_letters",
                "DELETE FROM price_points",
            ],
        ),
        "mdb_consumer" => (
            "SELECT count(*) FROM price_points; SELECT count(*) FROM moving_averages;
             SELECT count(*) FROM dead_letters",
            &[
                DDL,
                "SELECT count(*) FROM raw_market_data",
                "DROP TABLE dead_letters",
            ],
        ),
        "mdb_poller" => (
            "SELECT count(*) FROM raw_market_data",
            &[
                DDL,
                "SELECT count(*) FROM price_points",
                "TRUNCATE raw_market_data",
            ],
        ),
        other => panic!("no grants listed for {other}"),
    }
}

/// Each role logs in with the password of its secret, through the URL its function builds
/// from that secret, and may do what it is granted and nothing more; a wrong password is
/// refused (the database is a private cluster that checks passwords).
async fn assert_roles_ready(deploy: &Deploy) {
    let store = SecretsManager::new(deploy.secrets.clone());
    for (role, (id, password)) in ROLES.iter().zip(&deploy.roles) {
        // The function's own configuration, from the secret alone.
        let config = load_config(&[("DATABASE_SECRET_ID", id.as_str())], &store)
            .await
            .unwrap();
        let url = config.database.unwrap().url;
        let parsed: tokio_postgres::Config = url.expose_secret().parse().unwrap();
        assert_eq!(parsed.get_user(), Some(*role));
        assert!(
            parsed.get_password() == Some(password.as_bytes()),
            "{role}: the URL carries the secret's password"
        );
        assert_eq!(parsed.get_dbname(), Some(deploy.db.name.as_str()));
        let client = connect(url.expose_secret()).await;
        let (allowed, forbidden) = grants(role);
        client
            .batch_execute(allowed)
            .await
            .unwrap_or_else(|e| panic!("{role}: {allowed}: {e}"));
        for sql in forbidden {
            assert_eq!(
                refused(&client, sql).await,
                SqlState::INSUFFICIENT_PRIVILEGE,
                "{role}: {sql}"
            );
        }
        let wrong = deploy.db.url_as(role, "not-the-password");
        let err = tokio_postgres::connect(&wrong, tokio_postgres::NoTls)
            .await
            .err()
            .unwrap_or_else(|| panic!("{role}: a wrong password logs in"));
        assert_eq!(
            err.code(),
            Some(&SqlState::INVALID_PASSWORD),
            "{role}: {err}"
        );
    }
}

#[tokio::test]
async fn create_migrates_readies_the_roles_and_answers_success() {
    let deploy = Deploy::new(Database::private().await).await;
    let mut cfn = ResponseUrl::start(http::StatusCode::OK).await;
    let event = cfn_response::event("Create", &cfn.url, None);
    let request_id = event["RequestId"].clone();

    let answer = deploy.invoke(event).await;
    assert!(answer.success, "{answer:?}");
    let put = cfn.next().await;
    assert_eq!(put.method, http::Method::PUT);
    assert!(
        put.content_type.as_deref().unwrap_or("").is_empty(),
        "the presigned URL is signed without a content type: {:?}",
        put.content_type
    );
    let body = &put.body;
    assert_eq!(body["Status"], "SUCCESS", "{body}");
    assert_eq!(body["PhysicalResourceId"], db_migrate::PHYSICAL_ID);
    assert_eq!(body["StackId"], STACK_ID);
    assert_eq!(body["RequestId"], request_id);
    assert_eq!(body["LogicalResourceId"], LOGICAL_ID);
    for (key, (id, _)) in db_migrate::SECRET_DATA_KEYS.iter().zip(&deploy.roles) {
        assert_eq!(body["Data"][key], id.as_str(), "{body}");
    }
    let all: Vec<&str> = MIGRATIONS.iter().map(|m| m.name).collect();
    assert_eq!(body["Data"]["Applied"], all.join(","), "{body}");
    assert_eq!(
        body["Reason"],
        format!(
            "{} migration(s) applied; roles mdb_api, mdb_consumer, mdb_poller ready",
            all.len()
        )
    );
    assert!(cfn.drain().is_empty(), "one answer only");

    assert_eq!(deploy.applied_versions().await, all_versions());
    assert_roles_ready(&deploy).await;
}

#[tokio::test]
async fn an_update_again_changes_nothing_and_keeps_every_password() {
    let deploy = Deploy::new(Database::private().await).await;
    let mut cfn = ResponseUrl::start(http::StatusCode::OK).await;
    assert!(
        deploy
            .invoke(cfn_response::event("Create", &cfn.url, None))
            .await
            .success
    );
    cfn.next().await;
    let secrets_before = secret_values(&deploy).await;

    for _ in 0..2 {
        let event = cfn_response::event("Update", &cfn.url, Some(db_migrate::PHYSICAL_ID));
        let answer = deploy.invoke(event).await;
        assert!(answer.success, "{answer:?}");
        let body = cfn.next().await.body;
        assert_eq!(body["Status"], "SUCCESS", "{body}");
        assert_eq!(body["PhysicalResourceId"], db_migrate::PHYSICAL_ID);
        assert_eq!(body["Data"]["Applied"], "", "nothing left to apply: {body}");
    }
    assert_eq!(deploy.applied_versions().await, all_versions());
    // db-migrate reads the secrets and never writes them: the passwords stay the secrets'.
    assert_eq!(secret_values(&deploy).await, secrets_before);
    assert_roles_ready(&deploy).await;
}

/// Each role secret's current value and version id.
async fn secret_values(deploy: &Deploy) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (id, _) in &deploy.roles {
        let value = deploy
            .secrets
            .get_secret_value()
            .secret_id(id)
            .send()
            .await
            .unwrap();
        out.push((
            value.secret_string().unwrap().to_owned(),
            value.version_id().unwrap_or_default().to_owned(),
        ));
    }
    out
}

#[tokio::test]
async fn delete_answers_success_and_touches_nothing() {
    let deploy = Deploy::new(Database::shared().await).await;
    let mut cfn = ResponseUrl::start(http::StatusCode::OK).await;
    let answer = deploy
        .invoke(cfn_response::event("Delete", &cfn.url, Some("given-id")))
        .await;
    assert!(answer.success, "{answer:?}");
    let body = cfn.next().await.body;
    assert_eq!(body["Status"], "SUCCESS", "{body}");
    assert_eq!(
        body["PhysicalResourceId"], "given-id",
        "the id it was given"
    );
    let tables = deploy
        .db
        .client()
        .await
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
            &[],
        )
        .await
        .unwrap()
        .get::<_, i64>(0);
    assert_eq!(tables, 0, "a delete neither migrates nor drops");
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn an_unreachable_owner_answers_failed_with_a_reason_and_no_password() {
    let deploy = Deploy::with_owner_port(Database::shared().await, Some(closed_port())).await;
    let mut cfn = ResponseUrl::start(http::StatusCode::OK).await;
    for kind in ["Create", "Update"] {
        let started = std::time::Instant::now();
        let answer = tokio::time::timeout(
            Duration::from_secs(20),
            deploy.invoke(cfn_response::event(kind, &cfn.url, Some("db"))),
        )
        .await
        .expect("answered well within the deadline");
        assert!(started.elapsed() < Duration::from_secs(15), "{kind}");
        assert!(!answer.success, "{answer:?}");
        let body = cfn.next().await.body;
        assert_eq!(body["Status"], "FAILED", "{body}");
        let reason = body["Reason"].as_str().unwrap_or_default();
        assert!(reason.starts_with("migrations: "), "{kind}: {reason}");
        assert_eq!(reason, answer.reason);
        assert_eq!(body["PhysicalResourceId"], "db");
        let text = body.to_string();
        for password in deploy.passwords() {
            assert!(!text.contains(password), "{kind}: a password in {text}");
        }
    }
}

#[tokio::test]
async fn a_role_secret_of_another_user_is_refused_before_the_database_is_touched() {
    let mut deploy = Deploy::new(Database::shared().await).await;
    let wrong = serde_json::json!({
        "username": "postgres",
        "password": "other-user-pw",
        "host": "127.0.0.1",
        "port": 5432,
        "dbname": deploy.db.name,
    });
    let id = create_secret(&deploy.secrets, &wrong.to_string()).await;
    deploy
        .vars
        .retain(|(k, _)| k != "CONSUMER_DATABASE_SECRET_ID");
    deploy
        .vars
        .push(("CONSUMER_DATABASE_SECRET_ID".to_owned(), id));
    let mut cfn = ResponseUrl::start(http::StatusCode::OK).await;
    let answer = deploy
        .invoke(cfn_response::event("Create", &cfn.url, None))
        .await;
    assert!(!answer.success);
    let body = cfn.next().await.body;
    assert_eq!(body["Status"], "FAILED");
    let reason = body["Reason"].as_str().unwrap();
    assert!(
        reason.starts_with("CONSUMER_DATABASE_SECRET_ID: "),
        "{reason}"
    );
    assert!(!body.to_string().contains("other-user-pw"));
    assert_eq!(deploy.applied_versions().await, None, "nothing migrated");
}

#[tokio::test]
async fn an_answer_the_url_refuses_is_retried_then_fails_the_invocation() {
    let deploy = Deploy::new(Database::shared().await).await;
    let mut cfn = ResponseUrl::start(http::StatusCode::FORBIDDEN).await;
    let lookup = |k: &str| {
        deploy
            .vars
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
    };
    let store = SecretsManager::new(deploy.secrets.clone());
    let env = Env::new(&lookup, Some(&store));
    let err = db_migrate::handle(
        &env,
        &reqwest::Client::new(),
        cfn_response::event("Delete", &cfn.url, Some("db")),
        Instant::now() + Duration::from_secs(60),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("HTTP 403"), "{err}");
    assert!(
        !err.contains("s3cr3t-signature"),
        "the URL is a credential: {err}"
    );
    assert_eq!(cfn.drain().len(), 3, "three attempts");
}

#[tokio::test]
async fn the_logs_never_hold_a_password() {
    if !harness::in_own_process("db_migrate::the_logs_never_hold_a_password") {
        return;
    }
    let capture = Capture::default();
    market_data::telemetry::init_json(EnvFilter::new("trace"), capture.clone());

    let deploy = Deploy::new(Database::private().await).await;
    let mut cfn = ResponseUrl::start(http::StatusCode::OK).await;
    assert!(
        deploy
            .invoke(cfn_response::event("Create", &cfn.url, None))
            .await
            .success
    );
    cfn.next().await;
    let unreachable = Deploy::with_owner_port(Database::shared().await, Some(closed_port())).await;
    assert!(
        !unreachable
            .invoke(cfn_response::event("Update", &cfn.url, Some("db")))
            .await
            .success
    );
    cfn.next().await;

    let logs = capture.text();
    assert!(logs.contains("database migrated and roles ready"), "{logs}");
    assert!(logs.contains("answering FAILED"), "{logs}");
    for password in deploy
        .passwords()
        .into_iter()
        .chain(unreachable.passwords())
    {
        assert!(!logs.contains(password), "a password in the logs");
    }
    assert!(
        !logs.contains("s3cr3t-signature"),
        "the response URL in the logs"
    );
}

/// A port that accepts connections and never says a word: a database host that hangs.
async fn silent_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    port
}

#[tokio::test]
async fn a_silent_owner_is_given_up_before_the_deadline_and_answered_failed() {
    let deploy = Deploy::with_owner_port(Database::shared().await, Some(silent_port().await)).await;
    let mut cfn = ResponseUrl::start(http::StatusCode::OK).await;
    let lookup = |k: &str| {
        deploy
            .vars
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
    };
    let store = SecretsManager::new(deploy.secrets.clone());
    let env = Env::new(&lookup, Some(&store));
    // Two seconds of work before the time kept back to answer.
    let started = Instant::now();
    let deadline = started + db_migrate::ANSWER_RESERVE + Duration::from_secs(2);
    let answer = db_migrate::handle(
        &env,
        &reqwest::Client::new(),
        cfn_response::event("Create", &cfn.url, None),
        deadline,
    )
    .await
    .expect("answered");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(!answer.success);
    let body = cfn.next().await.body;
    assert_eq!(body["Status"], "FAILED");
    let reason = body["Reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("not done within ")
            && reason.ends_with(" s (the invocation's deadline less the time kept to answer)"),
        "{body}"
    );
}
