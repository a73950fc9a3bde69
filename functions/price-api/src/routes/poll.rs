//! `/prices/poll`: polling jobs — create, list, inspect, pause, resume, delete.
//!
//! The handlers only translate HTTP to the polling use case and back; the rules of a job
//! (symbol count, interval range, claims) live in `market_data::usecases::polling`.
//!
//! Tenancy: with API keys, a job belongs to the key (its name) that created it, each key
//! sees and manages only its own jobs (another key's job is 404) within its limits, and an
//! admin key sees every job. Without API keys the service is single-tenant: every caller
//! sees every job, and there are no job limits.

use crate::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use market_data::domain::{Job, JobId, ProviderId, Symbol, symbol_ticks_milli};
use market_data::jobs::{JobStoreError, LimitKind, OwnerLimits};
use market_data::usecases::polling::{MAX_PAGE, MAX_SYMBOLS};
use market_data::usecases::{NewJob, PollingError, Scope};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::extract::{ProblemQuery, bounded_param};
use crate::middleware::access::Caller;
use crate::openapi::examples;
use crate::problem::Problem;

/// Jobs per page when `limit` is not given.
const DEFAULT_PAGE: usize = 20;

/// The body of `POST /prices/poll`, as the seed service took it.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[schema(example = json!({"symbols": ["AAPL", "MSFT"], "interval": 60, "provider": "finnhub"}))]
pub struct PollRequest {
    /// 1 to 50 ticker symbols; each trimmed and upper-cased, duplicates removed.
    pub symbols: Vec<String>,
    /// Seconds between two polls, whole, from 10 to 86400.
    pub interval: u64,
    /// `finnhub` or `simulated`; the deployment's default when absent.
    #[serde(default)]
    pub provider: Option<String>,
}

/// What a job polls.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
pub struct PollConfig {
    /// The distinct, normalised symbols.
    pub symbols: Vec<String>,
    /// Seconds between two polls.
    pub interval: u32,
    /// The provider asked.
    pub provider: String,
}

impl From<&Job> for PollConfig {
    fn from(job: &Job) -> Self {
        Self {
            symbols: job.symbols.iter().map(Symbol::to_string).collect(),
            interval: job.interval_secs,
            provider: job.provider.to_string(),
        }
    }
}

/// The seed's answer to `POST /prices/poll`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[schema(example = json!({
    "job_id": "poll_019ac1d2e3f47a8b9c0d1e2f3a4b5c6d", "status": "accepted",
    "config": {"symbols": ["AAPL", "MSFT"], "interval": 60, "provider": "finnhub"}
}))]
pub struct PollAccepted {
    /// The new job's id, for inspecting, pausing and deleting it.
    pub job_id: String,
    /// Always `accepted`.
    pub status: String,
    /// What the job polls, normalised.
    pub config: PollConfig,
}

/// A job, as `GET /prices/poll/{job_id}` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[schema(example = json!({
    "job_id": "poll_019ac1d2e3f47a8b9c0d1e2f3a4b5c6d", "status": "active",
    "config": {"symbols": ["AAPL", "MSFT"], "interval": 60, "provider": "finnhub"},
    "created_at": "2026-11-25T21:00:00Z", "updated_at": "2026-11-25T21:05:00.210Z",
    "last_run_at": "2026-11-25T21:05:00.210Z", "next_run_at": "2026-11-25T21:06:00Z",
    "run_count": 6, "last_error": null, "owner": "team-a"
}))]
pub struct JobView {
    /// The job's id.
    pub job_id: String,
    /// `active` or `paused`.
    pub status: String,
    /// What it polls.
    pub config: PollConfig,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// When its last poll started.
    pub last_run_at: Option<DateTime<Utc>>,
    /// When its next poll is due.
    pub next_run_at: DateTime<Utc>,
    /// Polls run so far.
    pub run_count: u64,
    /// The symbols that failed on the last poll, and why; `null` when all were fetched.
    pub last_error: Option<String>,
    /// The API key (its name) that created the job; `null` without API keys.
    pub owner: Option<String>,
}

impl From<&Job> for JobView {
    fn from(job: &Job) -> Self {
        Self {
            job_id: job.id.to_string(),
            status: job.status.as_str().to_owned(),
            config: PollConfig::from(job),
            created_at: job.created_at,
            updated_at: job.updated_at,
            last_run_at: job.last_run_at,
            next_run_at: job.next_run_at,
            run_count: job.run_count,
            last_error: job.last_error.clone(),
            owner: job.owner.clone(),
        }
    }
}

/// One page of jobs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[schema(example = json!({
    "jobs": [{
        "job_id": "poll_019ac1d2e3f47a8b9c0d1e2f3a4b5c6d", "status": "active",
        "config": {"symbols": ["AAPL"], "interval": 10, "provider": "simulated"},
        "created_at": "2026-11-25T21:00:00Z", "updated_at": "2026-11-25T21:00:10Z",
        "last_run_at": "2026-11-25T21:00:10Z", "next_run_at": "2026-11-25T21:00:20Z",
        "run_count": 2, "last_error": null, "owner": "team-a"
    }],
    "next_cursor": "706f6c6c5f3031396163316432653366343761386239633064316532663361346235633664"
}))]
pub struct JobList {
    /// The jobs of this page.
    pub jobs: Vec<JobView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// The query of `GET /prices/poll`, validated in the handler.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Jobs per page, 1 to 100 (default 20).
    #[param(example = 20)]
    limit: Option<String>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

impl From<PollingError> for Problem {
    fn from(e: PollingError) -> Self {
        match e {
            PollingError::Invalid(detail) => invalid_body(detail),
            PollingError::NotFound(id) => unknown_job(id.as_str()),
            PollingError::Store(JobStoreError::LimitReached {
                kind,
                usage,
                limits,
            }) => {
                let detail = match kind {
                    LimitKind::MaxJobs => format!(
                        "limit max_jobs = {} reached: this API key owns {} polling jobs; delete one first",
                        limits.max_jobs, usage.jobs
                    ),
                    LimitKind::SymbolTicksPerMinute => format!(
                        "limit max_symbol_ticks_per_minute = {} would be exceeded: this API key's jobs \
                         already use {} symbol-ticks a minute (symbols x 60 / interval)",
                        milli(limits.max_symbol_ticks_milli),
                        milli(usage.symbol_ticks_milli)
                    ),
                };
                Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "job-limit",
                    "Polling job limit reached",
                    detail,
                )
            }
            PollingError::Store(JobStoreError::BadCursor) => Problem::bad_parameter(
                "invalid `cursor`: pass the `next_cursor` of a previous page",
            ),
            PollingError::Store(JobStoreError::Conflict) => Problem::new(
                StatusCode::CONFLICT,
                "job-conflict",
                "Job changed concurrently",
                "the job was changed by another request at the same time; retry",
            ),
            e @ (PollingError::Store(_) | PollingError::Scheduler(_)) => {
                tracing::error!(error = %e, "polling job operation failed");
                Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "jobs-unavailable",
                    "Polling jobs unavailable",
                    "the job store or the tick queue did not answer; nothing was left half-done, retry later",
                )
                .with_retry_after(std::time::Duration::from_secs(5))
            }
        }
    }
}

/// Thousandths as a decimal: `6000` → `6`, `42` → `0.042`.
fn milli(m: u64) -> String {
    let (whole, frac) = (m / 1000, m % 1000);
    if frac == 0 {
        whole.to_string()
    } else {
        format!("{whole}.{frac:03}")
            .trim_end_matches('0')
            .to_owned()
    }
}

/// Whose jobs the caller sees, who owns what it creates, and within which limits.
struct Tenancy {
    scope: Scope,
    owner: Option<String>,
    limits: Option<OwnerLimits>,
}

fn tenancy(state: &AppState, caller: Option<&Caller>) -> Tenancy {
    let key = match (&state.edge.api_keys, caller) {
        (Some(keys), Some(Caller::Key(name))) => keys.by_name(name),
        _ => None,
    };
    let Some(key) = key else {
        // No API keys: single-tenant, every job visible, no job limits.
        return Tenancy {
            scope: Scope::All,
            owner: None,
            limits: None,
        };
    };
    let edge = &state.edge;
    Tenancy {
        scope: if key.admin {
            Scope::All
        } else {
            Scope::Owner(key.name.clone())
        },
        owner: Some(key.name.clone()),
        limits: Some(OwnerLimits {
            max_jobs: key.max_jobs.unwrap_or(edge.default_max_jobs),
            max_symbol_ticks_milli: u64::from(
                key.max_symbol_ticks_per_minute
                    .unwrap_or(edge.default_max_symbol_ticks_per_minute),
            ) * 1000,
        }),
    }
}

fn invalid_body(detail: impl Into<String>) -> Problem {
    Problem::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid-body",
        "Invalid request body",
        detail,
    )
}

fn unknown_job(id: &str) -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "unknown-job",
        "Unknown polling job",
        format!("no polling job {id:?}"),
    )
}

fn job_id(raw: &str) -> Result<JobId, Problem> {
    JobId::parse(raw).map_err(|_| unknown_job(raw))
}

/// Parses the body by hand, so each mistake gets its own status and message: 400 for
/// text that is not JSON, 422 for JSON of the wrong shape or values.
fn parse_request(body: &[u8]) -> Result<(PollRequest, Vec<Symbol>), Problem> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Problem::for_status(
            StatusCode::BAD_REQUEST,
            "the body must be a JSON object: {\"symbols\": [...], \"interval\": seconds}",
        ));
    }
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "malformed-json",
            "Malformed JSON",
            format!("the body is not valid JSON: {e}"),
        )
    })?;
    let request: PollRequest = serde_json::from_value(value)
        .map_err(|e| invalid_body(format!("the body does not match {{\"symbols\": [strings], \"interval\": whole seconds, \"provider\"?: string}}: {e}")))?;
    if request.symbols.len() > MAX_SYMBOLS * 4 {
        return Err(invalid_body(format!(
            "`symbols` may hold at most {MAX_SYMBOLS} symbols"
        )));
    }
    let symbols = request
        .symbols
        .iter()
        .enumerate()
        .map(|(i, s)| {
            Symbol::parse(s).map_err(|e| invalid_body(format!("`symbols[{i}]` ({s:?}): {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((request, symbols))
}

/// Creates a polling job.
#[utoipa::path(
    post,
    path = "/prices/poll",
    tag = "polling",
    summary = "Start polling symbols",
    description = "Stores a job (owned by the caller's API key, within its limits) and sends \
                   its first tick at once: every `interval` seconds, each symbol is \
                   fetched from the provider (bypassing the cache, then written through it), \
                   stored in `raw_market_data` and published to the `price-events` topic. \
                   Symbols are de-duplicated after normalising. Provider calls of all jobs \
                   together stay within the provider's rate limit.",
    request_body(content = PollRequest, content_type = "application/json",
                 example = json!({"symbols": ["AAPL", "MSFT"], "interval": 60})),
    responses(
        (status = 202, description = "The job is stored and scheduled", body = PollAccepted),
        (status = 400, description = "The body is not JSON, or the provider is unknown",
         body = Problem, content_type = "application/problem+json",
         example = json!(examples::unknown_provider())),
        (status = 401, description = "API keys are required and none (or a wrong one) was sent",
         body = Problem, content_type = "application/problem+json", example = json!(examples::unauthorized())),
        (status = 413, description = "The body is larger than 64 KiB",
         body = Problem, content_type = "application/problem+json",
         example = json!(examples::body_too_large())),
        (status = 422, description = "A field is missing or invalid: a bad symbol, no or too \
                                      many symbols, an interval out of range; or the job would \
                                      exceed the key's `max_jobs` or `max_symbol_ticks_per_minute` \
                                      (`job-limit`, the detail names the limit and the current use)",
         body = Problem, content_type = "application/problem+json",
         example = json!(examples::invalid_job())),
        (status = 429, description = "The caller's rate limit is reached; see `Retry-After`",
         body = Problem, content_type = "application/problem+json", example = json!(examples::rate_limited())),
        (status = 503, description = "The provider is not configured, or the job store or \
                                      tick queue did not answer (nothing is left behind)",
         body = Problem, content_type = "application/problem+json",
         example = json!(examples::jobs_unavailable())),
    ),
    security((), ("api_key" = [])),
)]
pub async fn create_job(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
    body: Bytes,
) -> Result<Response, Problem> {
    let services = &state.api;
    let tenancy = tenancy(&state, caller.as_deref());
    let (request, symbols) = parse_request(&body)?;
    let provider = match request.provider.as_deref().map(str::trim) {
        None | Some("") => services.jobs.default_provider(),
        Some(p) => p
            .parse::<ProviderId>()
            .map_err(|e| Problem::bad_parameter(format!("invalid `provider`: {e}")))?,
    };
    if !services.quotes.providers().is_configured(provider) {
        return Err(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "provider-not-configured",
            "Provider not configured",
            format!("provider {provider} is not configured on this deployment"),
        ));
    }
    let interval_secs = u32::try_from(request.interval).unwrap_or(u32::MAX);
    let new = NewJob {
        symbols,
        interval_secs,
        provider,
    };
    let job = match services
        .jobs
        .create(new.clone(), tenancy.owner, tenancy.limits)
        .await
    {
        Err(PollingError::Store(JobStoreError::LimitReached {
            kind: LimitKind::SymbolTicksPerMinute,
            usage,
            limits,
        })) => {
            let mut distinct = new.symbols.clone();
            distinct.sort();
            distinct.dedup();
            let needs = symbol_ticks_milli(distinct.len(), interval_secs);
            return Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "job-limit",
                "Polling job limit reached",
                format!(
                    "limit max_symbol_ticks_per_minute = {} would be exceeded: this API key's jobs \
                     use {} symbol-ticks a minute and this job needs {} more (symbols x 60 / interval)",
                    milli(limits.max_symbol_ticks_milli),
                    milli(usage.symbol_ticks_milli),
                    milli(needs)
                ),
            ));
        }
        other => other?,
    };
    let accepted = PollAccepted {
        job_id: job.id.to_string(),
        status: "accepted".into(),
        config: PollConfig::from(&job),
    };
    Ok((StatusCode::ACCEPTED, Json(accepted)).into_response())
}

/// Lists the jobs, a page at a time.
#[utoipa::path(
    get,
    path = "/prices/poll",
    tag = "polling",
    summary = "List polling jobs",
    description = "A page of jobs, newest first; follow `next_cursor` for the next page. With \
                   API keys, only the caller's jobs (an admin key sees all).",
    params(ListParams),
    responses(
        (status = 200, description = "A page of jobs", body = JobList),
        (status = 400, description = "`limit` out of range or a `cursor` this API did not issue",
         body = Problem, content_type = "application/problem+json",
         example = json!(examples::bad_job_page())),
        (status = 401, description = "API keys are required and none (or a wrong one) was sent",
         body = Problem, content_type = "application/problem+json", example = json!(examples::unauthorized())),
        (status = 503, description = "The job store did not answer",
         body = Problem, content_type = "application/problem+json",
         example = json!(examples::jobs_unavailable())),
    ),
    security((), ("api_key" = [])),
)]
pub async fn list_jobs(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
    ProblemQuery(params): ProblemQuery<ListParams>,
) -> Result<Json<JobList>, Problem> {
    let scope = tenancy(&state, caller.as_deref()).scope;
    let services = &state.api;
    let limit = bounded_param("limit", params.limit.as_deref(), DEFAULT_PAGE, 1..=MAX_PAGE)?;
    let cursor = params.cursor.filter(|c| !c.trim().is_empty());
    let page = services.jobs.list(&scope, limit, cursor.as_deref()).await?;
    Ok(Json(JobList {
        jobs: page.jobs.iter().map(JobView::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Shows one job.
#[utoipa::path(
    get,
    path = "/prices/poll/{job_id}",
    tag = "polling",
    summary = "Inspect a polling job",
    params(("job_id" = String, Path, description = "The id `POST /prices/poll` returned",
            example = "poll_019ac1d2e3f47a8b9c0d1e2f3a4b5c6d")),
    responses(
        (status = 200, description = "The job", body = JobView),
        (status = 401, description = "API keys are required and none (or a wrong one) was sent",
         body = Problem, content_type = "application/problem+json", example = json!(examples::unauthorized())),
        (status = 404, description = "No such job (or another API key's)", body = Problem, content_type = "application/problem+json",
         example = json!(examples::unknown_job())),
    ),
    security((), ("api_key" = [])),
)]
pub async fn get_job(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
    Path(raw): Path<String>,
) -> Result<Json<JobView>, Problem> {
    let scope = tenancy(&state, caller.as_deref()).scope;
    let services = &state.api;
    let job = services.jobs.get(&scope, &job_id(&raw)?).await?;
    Ok(Json(JobView::from(&job)))
}

/// Stops and deletes one job.
#[utoipa::path(
    delete,
    path = "/prices/poll/{job_id}",
    tag = "polling",
    summary = "Stop and delete a polling job",
    description = "Removes the job's schedule, then the job. If that fails half-way, the job \
                   is left paused and deleting again finishes it.",
    params(("job_id" = String, Path, description = "The job's id",
            example = "poll_019ac1d2e3f47a8b9c0d1e2f3a4b5c6d")),
    responses(
        (status = 204, description = "Deleted: nothing polls it any more"),
        (status = 401, description = "API keys are required and none (or a wrong one) was sent",
         body = Problem, content_type = "application/problem+json", example = json!(examples::unauthorized())),
        (status = 404, description = "No such job (or it was deleted already)", body = Problem,
         content_type = "application/problem+json", example = json!(examples::unknown_job())),
        (status = 503, description = "The job store did not answer; nothing was changed",
         body = Problem, content_type = "application/problem+json",
         example = json!(examples::jobs_unavailable())),
    ),
    security((), ("api_key" = [])),
)]
pub async fn delete_job(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
    Path(raw): Path<String>,
) -> Result<StatusCode, Problem> {
    let scope = tenancy(&state, caller.as_deref()).scope;
    state.api.jobs.delete(&scope, &job_id(&raw)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Pauses one job.
#[utoipa::path(
    post,
    path = "/prices/poll/{job_id}/pause",
    tag = "polling",
    summary = "Pause a polling job",
    description = "The job is kept but not polled until resumed. Pausing a paused job changes nothing.",
    params(("job_id" = String, Path, description = "The job's id",
            example = "poll_019ac1d2e3f47a8b9c0d1e2f3a4b5c6d")),
    responses(
        (status = 200, description = "The paused job", body = JobView),
        (status = 401, description = "API keys are required and none (or a wrong one) was sent",
         body = Problem, content_type = "application/problem+json", example = json!(examples::unauthorized())),
        (status = 404, description = "No such job (or another API key's)", body = Problem, content_type = "application/problem+json",
         example = json!(examples::unknown_job())),
    ),
    security((), ("api_key" = [])),
)]
pub async fn pause_job(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
    Path(raw): Path<String>,
) -> Result<Json<JobView>, Problem> {
    let scope = tenancy(&state, caller.as_deref()).scope;
    let services = &state.api;
    let job = services.jobs.pause(&scope, &job_id(&raw)?).await?;
    Ok(Json(JobView::from(&job)))
}

/// Resumes one job.
#[utoipa::path(
    post,
    path = "/prices/poll/{job_id}/resume",
    tag = "polling",
    summary = "Resume a paused polling job",
    description = "Schedules the job again; its next poll is due at once. Resuming an active job changes nothing.",
    params(("job_id" = String, Path, description = "The job's id",
            example = "poll_019ac1d2e3f47a8b9c0d1e2f3a4b5c6d")),
    responses(
        (status = 200, description = "The active job", body = JobView),
        (status = 401, description = "API keys are required and none (or a wrong one) was sent",
         body = Problem, content_type = "application/problem+json", example = json!(examples::unauthorized())),
        (status = 404, description = "No such job (or another API key's)", body = Problem, content_type = "application/problem+json",
         example = json!(examples::unknown_job())),
        (status = 503, description = "The job store did not answer; the job stays paused",
         body = Problem, content_type = "application/problem+json",
         example = json!(examples::jobs_unavailable())),
    ),
    security((), ("api_key" = [])),
)]
pub async fn resume_job(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
    Path(raw): Path<String>,
) -> Result<Json<JobView>, Problem> {
    let scope = tenancy(&state, caller.as_deref()).scope;
    let services = &state.api;
    let job = services.jobs.resume(&scope, &job_id(&raw)?).await?;
    Ok(Json(JobView::from(&job)))
}
