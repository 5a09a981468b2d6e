//! `/api/v1/sync/runs`: recorded sync runs and their reports (SPEC §8 "Sync reports").

use super::{ApiPath, ApiQuery};
use crate::auth::Authenticated;
use crate::error::ErrorBody;
use crate::{ApiError, AppState};
use axum::extract::State;
use axum::Json;
use pbx365_app::sync::RunOptions;
use pbx365_domain::SyncRun;
use serde::Deserialize;

/// Query of `GET /api/v1/sync/runs`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RunsQuery {
    /// How many runs, newest first (1 to 500, default 50).
    pub limit: Option<u32>,
}

/// Recorded runs, newest first. Admins.
#[utoipa::path(get, path = "/api/v1/sync/runs", tag = "sync", params(RunsQuery),
    responses((status = 200, body = [SyncRun]), (status = 422, body = ErrorBody)))]
pub async fn list_runs(
    _: Authenticated,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<RunsQuery>,
) -> Result<Json<Vec<SyncRun>>, ApiError> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::invalid("limit must be between 1 and 500"));
    }
    Ok(Json(state.app.sync_runs(limit).await?))
}

/// One run with its report. Admins.
#[utoipa::path(get, path = "/api/v1/sync/runs/{id}", tag = "sync",
    params(("id" = String, Path, description = "Run id")),
    responses((status = 200, body = SyncRun), (status = 404, body = ErrorBody)))]
pub async fn get_run(
    _: Authenticated,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<SyncRun>, ApiError> {
    Ok(Json(state.app.sync_run(&id).await?))
}

/// Query of `POST /api/v1/sync/{kind}`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StartQuery {
    /// Full reconciliation even when a delta link is stored (default false).
    pub full: Option<bool>,
    /// Compute the report without writing anything (default false).
    pub dry_run: Option<bool>,
}

pub use pbx365_app::sync::runnable_kind;

/// Runs a sync now and answers with its report once it has finished (`status` is `completed`,
/// `held`, `failed` or `dry_run`). A request made while another run is going waits for it.
/// Admins (API token or console session + CSRF header). 409 when Microsoft 365 is not connected.
#[utoipa::path(post, path = "/api/v1/sync/{kind}", tag = "sync",
    params(("kind" = String, Path, description = "`users`, `contacts` (PRO) or `all`"), StartQuery),
    responses(
        (status = 200, description = "The finished run with its report", body = SyncRun),
        (status = 409, description = "Microsoft 365 is not connected, or user sync is switched off", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn start_run(
    caller: Authenticated,
    State(state): State<AppState>,
    ApiPath(kind): ApiPath<String>,
    ApiQuery(q): ApiQuery<StartQuery>,
) -> Result<Json<SyncRun>, ApiError> {
    let kind = runnable_kind(&kind).map_err(ApiError::invalid)?;
    let opts = RunOptions {
        full: q.full.unwrap_or(false),
        dry_run: q.dry_run.unwrap_or(false),
        ..Default::default()
    };
    let run = state.app.run_sync(Some(&caller.actor), kind, opts).await?;
    Ok(Json(run))
}

/// Approves a run held by the mass-deletion guard (user sync or contact sync) and runs that
/// sync now: it applies exactly the held plan, whose removals `GET /api/v1/sync/runs/{id}` lists
/// (`report.deleted`, `report.disabled`, and the guard's count in `report.errors`), then goes on
/// with a delta round; the guard is armed again for the next run. Only the newest run of its
/// kind, only while it is held. Admins (API token, or console session + CSRF header whose owner
/// signed in or confirmed their password within the last minutes).
#[utoipa::path(post, path = "/api/v1/sync/runs/{id}/approve", tag = "sync",
    params(("id" = String, Path, description = "Id of the held run")),
    responses(
        (status = 200, description = "The run that applied the approved plan", body = SyncRun),
        (status = 403, description = "A console session whose owner has not confirmed their password recently", body = ErrorBody),
        (status = 409, description = "The run is not (or no longer) waiting for approval, or a later sync changed what it planned against", body = ErrorBody)))]
pub async fn approve_run(
    caller: Authenticated,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<SyncRun>, ApiError> {
    caller.require_fresh()?;
    Ok(Json(state.app.approve_and_run(&caller.actor, &id).await?))
}
