//! The company directory for desk phones (SPEC §5): `/phonebook/yealink.xml` (Yealink/Fanvil
//! remote XML phonebook), `/phonebook/company.vcf` (vCard 3.0, `?version=4.0` for 4.0) and
//! `/phonebook/company.csv`, each with the admin's export token in the URL (`?token=`).
//! A wrong or missing token gets a bare 403 that says nothing about what exists.

use crate::AppState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use pbx365_domain::directory::{csv, vcards, yealink_xml, VcardVersion};
use serde::Deserialize;

/// Routes of the exports.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/phonebook/yealink.xml", get(yealink))
        .route("/phonebook/company.vcf", get(vcard))
        .route("/phonebook/company.csv", get(company_csv))
}

/// The query of an export; anything else in it is ignored (phones add their own parameters).
#[derive(Deserialize)]
struct ExportQuery {
    token: Option<String>,
    version: Option<String>,
}

/// Which export.
#[derive(Clone, Copy)]
enum Format {
    Yealink,
    Vcard,
    Csv,
}

fn forbidden() -> Response {
    (
        StatusCode::FORBIDDEN,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        "forbidden\n",
    )
        .into_response()
}

async fn export(
    state: AppState,
    query: Result<Query<ExportQuery>, QueryRejection>,
    format: Format,
) -> Response {
    let Ok(Query(q)) = query else {
        return forbidden();
    };
    let token = q.token.unwrap_or_default();
    if !state.app.export_token_matches(&token).await {
        return forbidden();
    }
    let cards = match state.app.directory_cards().await {
        Ok(c) => c,
        Err(e) => return crate::ApiError::from(e).into_response(),
    };
    let (content_type, body, file) = match format {
        Format::Yealink => ("application/xml; charset=utf-8", yealink_xml(&cards), None),
        Format::Vcard => {
            let version = match q.version.as_deref() {
                Some("4" | "4.0") => VcardVersion::V4,
                _ => VcardVersion::V3,
            };
            (
                "text/vcard; charset=utf-8",
                vcards(&cards, version),
                Some("company.vcf"),
            )
        }
        Format::Csv => ("text/csv; charset=utf-8", csv(&cards), Some("company.csv")),
    };
    let mut response = (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type),
            // The URL is the credential: keep the answer out of shared caches.
            (header::CACHE_CONTROL, "private, no-cache"),
        ],
        body,
    )
        .into_response();
    if let Some(f) = file {
        if let Ok(v) = format!("attachment; filename=\"{f}\"").parse() {
            response
                .headers_mut()
                .insert(header::CONTENT_DISPOSITION, v);
        }
    }
    response
}

/// Yealink/Fanvil remote XML phonebook. Desk phones holding the export token.
async fn yealink(
    State(state): State<AppState>,
    q: Result<Query<ExportQuery>, QueryRejection>,
) -> Response {
    export(state, q, Format::Yealink).await
}

/// vCard export. Anyone holding the export token.
async fn vcard(
    State(state): State<AppState>,
    q: Result<Query<ExportQuery>, QueryRejection>,
) -> Response {
    export(state, q, Format::Vcard).await
}

/// CSV export. Anyone holding the export token.
async fn company_csv(
    State(state): State<AppState>,
    q: Result<Query<ExportQuery>, QueryRejection>,
) -> Response {
    export(state, q, Format::Csv).await
}
