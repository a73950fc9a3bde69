//! `db-migrate`: the CloudFormation custom resource that readies the database on a deploy.
//!
//! The functions connect as least-privilege roles (`migrations/bootstrap/roles.sql`), which can
//! neither apply a migration nor create a role. Something that can must run before their new
//! code does: this function, invoked by the stack's `AWS::CloudFormation::CustomResource`. On
//! Create and Update it connects as the owner (`DATABASE_SECRET_ID`), applies the migrations
//! (the shared migrator, under its advisory lock), runs the roles bootstrap and sets each role's
//! password from that role's secret (`API_DATABASE_SECRET_ID`, `CONSUMER_DATABASE_SECRET_ID`,
//! `POLLER_DATABASE_SECRET_ID`). On Delete it does nothing: deleting the stack keeps the data.
//!
//! Whatever happens, CloudFormation gets an answer through the event's presigned `ResponseURL`
//! before the invocation's deadline: a custom resource that never answers holds the deploy for
//! an hour. A failure is answered `FAILED` with a reason from which every secret read has been
//! removed; passwords are never logged, and never sent to the server either (the role's
//! password is set as a SCRAM verifier computed here).

use std::collections::HashMap;
use std::time::Duration;

use aws_lambda_events::event::cloudformation::{
    CloudFormationCustomResourceRequest, CloudFormationCustomResourceResponse,
    CloudFormationCustomResourceResponseStatus,
};
use market_data::config::{ConfigError, Env};
use market_data::store::{DatabaseConfig, PostgresStore, StoreError};
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;

/// The roles bootstrap, as `psql -f` would run it: compiled in, so a deploy that changes it
/// changes this function's code, and with it the custom resource's `CodeVersion`.
pub const ROLES_SQL: &str = include_str!("../../../migrations/bootstrap/roles.sql");

/// Each function's role and the variable naming its secret (RDS format: `username` must be
/// the role, `password` becomes its password).
pub const ROLES: [(&str, &str); 3] = [
    ("mdb_api", "API_DATABASE_SECRET_ID"),
    ("mdb_consumer", "CONSUMER_DATABASE_SECRET_ID"),
    ("mdb_poller", "POLLER_DATABASE_SECRET_ID"),
];

/// The keys of the answer's `Data` holding each role's secret id, in the order of [`ROLES`]:
/// the template gives each function its secret through them (`!GetAtt`), which also orders
/// every function's update after this resource's.
pub const SECRET_DATA_KEYS: [&str; 3] = ["ApiSecretArn", "ConsumerSecretArn", "PollerSecretArn"];

/// The physical id of the resource: one database per stack, so one constant id. Update and
/// Delete answer with the id they were given, so CloudFormation never sees it change (a new
/// id would make it delete the "old" resource).
pub const PHYSICAL_ID: &str = "market-data-database";

/// Time kept back from the invocation's deadline for the answer: the work stops this long
/// before the deadline, so the `FAILED` answer still goes out.
pub const ANSWER_RESERVE: Duration = Duration::from_secs(15);

/// Longest one attempt at sending the answer may take.
const ANSWER_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// Attempts at sending the answer (S3 may answer 5xx once).
const ANSWER_ATTEMPTS: u32 = 3;

/// CloudFormation refuses answers over 4 KiB: the reason is cut well below.
const MAX_REASON_CHARS: usize = 1000;

/// What CloudFormation was told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// `SUCCESS` or `FAILED`.
    pub success: bool,
    /// What was done, or why it failed (already free of secrets). Always sent: CloudFormation
    /// shows it in the stack's events.
    pub reason: String,
    /// The request type answered (`Create`, `Update`, `Delete`), or `None` for an event that
    /// was not a custom-resource request but carried a `ResponseURL`.
    pub request_type: Option<&'static str>,
}

/// Why CloudFormation could not be answered. The invocation then fails, and Lambda's retries
/// of an asynchronous invocation run it (idempotently) again.
#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    /// The event has no `ResponseURL`: it is not a custom-resource request, and there is no
    /// one to answer.
    #[error("the event has no ResponseURL: not a CloudFormation custom-resource request")]
    NoResponseUrl,
    /// Every attempt at the `PUT` failed (the URL itself is not shown: it is a credential).
    #[error("the answer could not be sent to the ResponseURL: {0}")]
    NotDelivered(String),
}

/// Why the database could not be readied. The message never holds a secret's value (it is
/// also scrubbed of every secret read before it becomes the answer's reason).
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// No owner connection is configured.
    #[error("DATABASE_SECRET_ID (or DATABASE_URL) is not set: no database to migrate")]
    NoDatabase,
    /// The owner's settings cannot be used.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// A role's secret is missing or not what it must be.
    #[error("{var}: {reason}")]
    RoleSecret {
        /// The variable naming the secret.
        var: &'static str,
        /// What is wrong (never the value).
        reason: String,
    },
    /// The migrations failed; nothing of them was applied (one transaction).
    #[error("migrations: {0}")]
    Migrations(StoreError),
    /// The roles bootstrap or a password change failed; none of it was applied.
    #[error("roles: {0}")]
    Roles(String),
    /// The work did not finish before the time left for it ran out.
    #[error("not done within {0} s (the invocation's deadline less the time kept to answer)")]
    Overran(u64),
}

/// What a Create or Update did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// The migrations applied by this run (empty when the schema was up to date).
    pub applied: Vec<&'static str>,
    /// Each role's secret id, in the order of [`ROLES`].
    pub secret_ids: [String; 3],
}

/// Handles one invocation: does what the request asks, then answers CloudFormation through
/// the `ResponseURL`, by `deadline` (the invocation's). Every failure of the work becomes a
/// `FAILED` answer; only a failure to answer is an error.
///
/// `env` gives the variables and the secret store (the process's on Lambda); `http` sends the
/// answer.
pub async fn handle(
    env: &Env<'_>,
    http: &reqwest::Client,
    event: serde_json::Value,
    deadline: Instant,
) -> Result<Answer, AnswerError> {
    let target = Target::of(&event)?;
    let request =
        serde_json::from_value::<CloudFormationCustomResourceRequest>(event).map_err(|e| {
            // serde_json's message names the field and its type, not the field's value.
            format!("not a custom-resource request: {e}")
        });
    let mut redact = Vec::new();
    let (request_type, outcome) = match request {
        Err(reason) => (None, Err(reason)),
        Ok(CloudFormationCustomResourceRequest::Delete(_)) => {
            let summary = "delete: the database and its roles are left as they are";
            tracing::info!("{summary}");
            (Some("Delete"), Ok((HashMap::new(), summary.to_owned())))
        }
        Ok(request) => {
            let kind = match request {
                CloudFormationCustomResourceRequest::Create(_) => "Create",
                _ => "Update",
            };
            let work_deadline = deadline.checked_sub(ANSWER_RESERVE).unwrap_or(deadline);
            let budget = work_deadline.saturating_duration_since(Instant::now());
            let outcome =
                match tokio::time::timeout_at(work_deadline, prepare(env, &mut redact)).await {
                    Ok(result) => result,
                    Err(_) => Err(PrepareError::Overran(budget.as_secs())),
                };
            let outcome = outcome.map(|prepared| {
                tracing::info!(
                    request = kind,
                    applied = ?prepared.applied,
                    roles = ?ROLES.map(|(role, _)| role),
                    "database migrated and roles ready"
                );
                let mut data: HashMap<String, String> = SECRET_DATA_KEYS
                    .iter()
                    .zip(prepared.secret_ids)
                    .map(|(key, id)| ((*key).to_owned(), id))
                    .collect();
                let summary = format!(
                    "{} migration(s) applied; roles {} ready",
                    prepared.applied.len(),
                    ROLES.map(|(role, _)| role).join(", ")
                );
                data.insert("Applied".to_owned(), prepared.applied.join(","));
                (data, summary)
            });
            (Some(kind), outcome.map_err(|e| e.to_string()))
        }
    };
    let (success, reason, data) = match outcome {
        Ok((data, summary)) => (true, summary, data),
        Err(reason) => {
            let reason = scrub(&reason, &redact);
            tracing::error!(request = ?request_type, reason = %reason, "answering FAILED");
            (false, reason, HashMap::new())
        }
    };
    let mut response = CloudFormationCustomResourceResponse::default();
    response.status = if success {
        CloudFormationCustomResourceResponseStatus::Success
    } else {
        CloudFormationCustomResourceResponseStatus::Failed
    };
    response.reason = Some(reason.clone());
    response.physical_resource_id = target.physical_resource_id;
    response.stack_id = target.stack_id;
    response.request_id = target.request_id;
    response.logical_resource_id = target.logical_resource_id;
    response.data = data;
    send_answer(http, &target.response_url, &response, deadline).await?;
    Ok(Answer {
        success,
        reason,
        request_type,
    })
}

/// Where and about what the answer goes: read from the raw event, so even an event that is
/// not a well-formed request is answered when it says where to.
struct Target {
    response_url: String,
    stack_id: String,
    request_id: String,
    logical_resource_id: String,
    physical_resource_id: String,
}

impl Target {
    fn of(event: &serde_json::Value) -> Result<Self, AnswerError> {
        let field = |name: &str| event.get(name).and_then(|v| v.as_str()).map(str::to_owned);
        Ok(Self {
            response_url: field("ResponseURL").ok_or(AnswerError::NoResponseUrl)?,
            stack_id: field("StackId").unwrap_or_default(),
            request_id: field("RequestId").unwrap_or_default(),
            logical_resource_id: field("LogicalResourceId").unwrap_or_default(),
            physical_resource_id: field("PhysicalResourceId")
                .unwrap_or_else(|| PHYSICAL_ID.to_owned()),
        })
    }
}

/// Migrates as the owner, then creates or updates the roles and sets their passwords, in
/// that order: the bootstrap grants on the tables the migrations create. Every secret read
/// is pushed onto `redact` before it is used, so a failure's message can be scrubbed of it.
pub async fn prepare(
    env: &Env<'_>,
    redact: &mut Vec<SecretString>,
) -> Result<Prepared, PrepareError> {
    let owner = DatabaseConfig::from_env(env)
        .await?
        .ok_or(PrepareError::NoDatabase)?;
    redact.push(owner.url.clone());
    if let Ok(config) = owner.url.expose_secret().parse::<tokio_postgres::Config>()
        && let Some(password) = config.get_password()
    {
        redact.push(SecretString::from(
            String::from_utf8_lossy(password).into_owned(),
        ));
    }

    // Every role's secret is read before the database is touched: a missing one fails the
    // deploy with nothing changed.
    let mut roles = Vec::with_capacity(ROLES.len());
    let mut secret_ids: [String; 3] = Default::default();
    for (i, (role, var)) in ROLES.iter().enumerate() {
        let id = env.get(var).ok_or_else(|| PrepareError::RoleSecret {
            var,
            reason: "is not set".to_owned(),
        })?;
        let raw = env.secret_by_id(var, &id).await?;
        redact.push(raw.clone());
        let password = role_password(role, &raw).map_err(|reason| PrepareError::RoleSecret {
            var,
            reason: reason.to_owned(),
        })?;
        redact.push(password.clone());
        roles.push((*role, password));
        secret_ids[i] = id;
    }

    // One connection, used in turn by the migrations (which lift the statement timeout for
    // themselves) and by the roles' transaction.
    let store = PostgresStore::new(&DatabaseConfig {
        pool_size: 1,
        migrate_on_start: false,
        ..owner
    })
    .map_err(PrepareError::Migrations)?;
    let applied = store.migrate().await.map_err(PrepareError::Migrations)?;

    let mut client = store
        .pool()
        .get()
        .await
        .map_err(|e| PrepareError::Roles(e.to_string()))?;
    let tx = client.transaction().await.map_err(roles_error)?;
    tx.batch_execute(ROLES_SQL).await.map_err(roles_error)?;
    for (role, password) in &roles {
        tx.batch_execute(&alter_role_password(role, password)?)
            .await
            .map_err(roles_error)?;
    }
    tx.commit().await.map_err(roles_error)?;
    Ok(Prepared {
        applied,
        secret_ids,
    })
}

/// The password in `role`'s RDS-format secret, whose `username` must be `role` (a secret of
/// another user would let its function in as that user). The reason never holds the value.
fn role_password(role: &str, raw: &SecretString) -> Result<SecretString, &'static str> {
    let value: serde_json::Value = serde_json::from_str(raw.expose_secret())
        .map_err(|_| "the secret is not JSON (RDS format: username, password, host, ...)")?;
    let text = |key: &str| value.get(key).and_then(|v| v.as_str());
    match text("username") {
        Some(user) if user == role => {}
        Some(_) => return Err("the secret's username is not the role it is for"),
        None => return Err("the secret has no \"username\" field"),
    }
    match text("password") {
        Some(password) if !password.is_empty() => Ok(SecretString::from(password.to_owned())),
        _ => Err("the secret has no non-empty \"password\" field"),
    }
}

/// `ALTER ROLE … PASSWORD` with the password's SCRAM-SHA-256 verifier, computed here: the
/// password itself never reaches the server (nor its statement log), and the statement holds
/// only the role (a constant) and the verifier, which is checked to be base64, digits and
/// the verifier's separators, so nothing in a generated password can end the literal.
fn alter_role_password(role: &str, password: &SecretString) -> Result<String, PrepareError> {
    let verifier = postgres_protocol::password::scram_sha_256(password.expose_secret().as_bytes());
    let safe =
        |c: char| c.is_ascii_alphanumeric() || matches!(c, '$' | ':' | '+' | '/' | '=' | '-');
    if !verifier.starts_with("SCRAM-SHA-256$") || !verifier.chars().all(safe) {
        return Err(PrepareError::Roles(format!(
            "{role}: the password's verifier has unexpected characters"
        )));
    }
    if !role.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
        return Err(PrepareError::Roles(format!("{role}: not a role name")));
    }
    Ok(format!("ALTER ROLE {role} PASSWORD '{verifier}'"))
}

fn roles_error(e: tokio_postgres::Error) -> PrepareError {
    PrepareError::Roles(market_data::store::postgres::PgError::from(e).to_string())
}

/// `text` with every non-empty secret of `secrets` replaced by `***`, cut to a length
/// CloudFormation accepts.
pub fn scrub(text: &str, secrets: &[SecretString]) -> String {
    let mut out = text.to_owned();
    for secret in secrets {
        let value = secret.expose_secret();
        if !value.is_empty() {
            out = out.replace(value, "***");
        }
    }
    if out.chars().count() > MAX_REASON_CHARS {
        out = out.chars().take(MAX_REASON_CHARS).collect::<String>() + "…";
    }
    out
}

/// PUTs the answer to the presigned URL, a few times if S3 refuses it, never past
/// `deadline`. No `Content-Type`: the URL is signed without one.
async fn send_answer(
    http: &reqwest::Client,
    url: &str,
    response: &CloudFormationCustomResourceResponse,
    deadline: Instant,
) -> Result<(), AnswerError> {
    let body = serde_json::to_vec(response)
        .map_err(|e| AnswerError::NotDelivered(format!("the answer is not JSON: {e}")))?;
    let mut last = String::from("no attempt made before the deadline");
    for attempt in 1..=ANSWER_ATTEMPTS {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() && attempt > 1 {
            break;
        }
        let timeout = ANSWER_ATTEMPT_TIMEOUT.min(left.max(Duration::from_secs(1)));
        let sent = http
            .put(url)
            .header(reqwest::header::CONTENT_TYPE, "")
            .body(body.clone())
            .timeout(timeout)
            .send()
            .await;
        match sent {
            Ok(reply) if reply.status().is_success() => return Ok(()),
            Ok(reply) => last = format!("HTTP {}", reply.status()),
            // Without the URL: reqwest's error shows it, and its query is the signature.
            Err(e) => last = e.without_url().to_string(),
        }
        tracing::warn!(attempt, error = %last, "the answer to CloudFormation was not accepted");
    }
    Err(AnswerError::NotDelivered(last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_event_is_a_create_request_with_somewhere_to_answer() {
        let event: serde_json::Value =
            serde_json::from_str(include_str!("../../../local/events/db-migrate-create.json"))
                .expect("JSON");
        let target = Target::of(&event).expect("a ResponseURL");
        assert!(target.response_url.starts_with("http://127.0.0.1:9999/"));
        assert_eq!(target.logical_resource_id, "DatabaseMigrations");
        assert_eq!(target.physical_resource_id, PHYSICAL_ID);
        assert!(matches!(
            serde_json::from_value::<CloudFormationCustomResourceRequest>(event),
            Ok(CloudFormationCustomResourceRequest::Create(_))
        ));
    }

    #[test]
    fn an_event_without_a_response_url_cannot_be_answered() {
        let event = serde_json::json!({"RequestType": "Create"});
        assert!(matches!(
            Target::of(&event),
            Err(AnswerError::NoResponseUrl)
        ));
    }

    #[test]
    fn a_role_secret_must_name_its_role_and_hold_a_password() {
        let secret = |json: &str| SecretString::from(json.to_owned());
        let ok = role_password(
            "mdb_api",
            &secret(r#"{"username":"mdb_api","password":"pw1","host":"h"}"#),
        )
        .expect("a good secret");
        assert_eq!(ok.expose_secret(), "pw1");
        for (json, reason) in [
            (
                r#"{"username":"postgres","password":"pw2"}"#,
                "not the role",
            ),
            (r#"{"password":"pw3"}"#, "no \"username\""),
            (r#"{"username":"mdb_api","password":""}"#, "non-empty"),
            ("pw4", "not JSON"),
        ] {
            let err = role_password("mdb_api", &secret(json)).expect_err(json);
            assert!(err.contains(reason), "{json}: {err}");
            assert!(!err.contains("pw"), "{json}: the value in {err}");
        }
    }

    #[test]
    fn the_password_statement_holds_a_verifier_not_the_password() {
        // Quotes and backslashes in a password cannot reach the SQL text.
        let password = SecretString::from("it's a 'secret'\\; DROP ROLE x".to_owned());
        let sql = alter_role_password("mdb_api", &password).expect("a statement");
        assert!(sql.starts_with("ALTER ROLE mdb_api PASSWORD 'SCRAM-SHA-256$4096:"));
        assert_eq!(sql.matches('\'').count(), 2, "{sql}");
        assert!(!sql.contains("secret"), "{sql}");
        assert!(alter_role_password("mdb_api\"; --", &password).is_err());
    }

    #[test]
    fn a_reason_is_scrubbed_of_every_secret_and_cut_to_size() {
        let secrets = [
            SecretString::from("hunter2".to_owned()),
            SecretString::from(String::new()),
        ];
        assert_eq!(
            scrub("password hunter2 refused for hunter2", &secrets),
            "password *** refused for ***"
        );
        let long = "x".repeat(5000);
        assert_eq!(scrub(&long, &secrets).chars().count(), MAX_REASON_CHARS + 1);
    }
}
