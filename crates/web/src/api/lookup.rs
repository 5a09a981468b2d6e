//! `GET /api/v1/lookup`: caller-name lookup (SPEC §5) for the PBX and phones.

use super::ApiQuery;
use crate::auth::Authenticated;
use crate::{ApiError, AppState};
use axum::extract::{RawQuery, State};
use axum::Json;
use pbx365_domain::CallerName;
use serde::Deserialize;

/// The query of a lookup.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LookupQuery {
    /// The caller's number as the PBX received it (`+4930…`, `030…`, an extension number).
    pub number: String,
    /// The called extension: its personal phonebook is searched first.
    pub extension: Option<String>,
}

/// Who is calling: the called extension's personal phonebook first, then the company phonebook,
/// then the extensions; 404 when nobody has the number. Admins (API token or console session).
#[utoipa::path(get, path = "/api/v1/lookup", tag = "phonebooks", params(LookupQuery),
    responses((status = 200, body = CallerName), (status = 404, body = crate::error::ErrorBody)))]
pub async fn lookup(
    _: Authenticated,
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    ApiQuery(q): ApiQuery<LookupQuery>,
) -> Result<Json<CallerName>, ApiError> {
    let number = plus_kept(&q.number, raw.as_deref());
    let extension = q.extension.as_deref().filter(|x| !x.trim().is_empty());
    Ok(Json(state.app.lookup_caller(&number, extension).await?))
}

/// A query string decodes `+` as a space, but PBXs and scripts send `number=+4930…` unencoded:
/// a number that arrived with a literal leading `+` keeps it.
fn plus_kept(number: &str, raw: Option<&str>) -> String {
    let literal_plus = raw.is_some_and(|r| r.split('&').any(|p| p.starts_with("number=+")));
    match number.strip_prefix(' ') {
        Some(rest) if literal_plus => format!("+{rest}"),
        _ => number.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::plus_kept;

    #[test]
    fn an_unencoded_plus_stays_a_plus() {
        assert_eq!(plus_kept(" 4930", Some("number=+4930")), "+4930");
        assert_eq!(plus_kept("+4930", Some("number=%2B4930")), "+4930");
        assert_eq!(plus_kept(" 4930", Some("number=%204930")), " 4930");
    }
}
