//! `/api/v1/sync/runs`: recorded sync runs and their reports (SPEC §8 "Sync reports").

use super::{ApiPath, ApiQuery};
use crate::auth::Authenticated;
use crate::error::ErrorBody;
use crate::{ApiError, AppState};
use axum::extract::State;
use axum::Json;
use pbx365_domain::SyncRun;
use serde::Deserialize;

/// Query of `GET /api/v1/sync/runs`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
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
    Ok(Json(state.store.list_sync_runs(limit).await?))
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
    state
        .store
        .get_sync_run(&id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("sync run '{}' does not exist", id.chars().take(64).collect::<String>())))
}
