//! `/groups`, `/groups/{id}`, `/groups/{id}/members`, `/groups/{id}/transitiveMembers` and
//! member add/remove.
//!
//! Docs: https://learn.microsoft.com/graph/api/group-list-members ·
//! https://learn.microsoft.com/graph/api/group-list-transitivemembers ·
//! https://learn.microsoft.com/graph/api/group-post-members (graph-facts §4).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::users::user_props;
use super::{
    bad_request, collection, decode_token, dir_not_found, enc, encode_token, json_object,
    json_response, Query,
};
use crate::identity::access::AppPrincipal;
use crate::state::SimState;
use crate::tenant::{ChangeEvent, Tenant};

/// Group routes.
pub fn routes() -> Router<Arc<SimState>> {
    Router::new()
        .route("/v1.0/groups", get(list_groups))
        .route("/v1.0/groups/{id}", get(get_group))
        .route("/v1.0/groups/{id}/members", get(members))
        .route(
            "/v1.0/groups/{id}/members/microsoft.graph.user",
            get(members_users),
        )
        .route(
            "/v1.0/groups/{id}/transitiveMembers",
            get(transitive_members),
        )
        .route(
            "/v1.0/groups/{id}/transitiveMembers/microsoft.graph.user",
            get(transitive_members_users),
        )
        .route("/v1.0/groups/{id}/members/$ref", post(add_member))
        .route(
            "/v1.0/groups/{id}/members/{member}/$ref",
            delete(remove_member),
        )
}

const READ: &[&str] = &[
    "Group.Read.All",
    "GroupMember.Read.All",
    "Directory.Read.All",
];
const WRITE: &[&str] = &[
    "GroupMember.ReadWrite.All",
    "Group.ReadWrite.All",
    "Directory.ReadWrite.All",
];

#[derive(Serialize, Deserialize)]
struct Offset {
    o: usize,
}

fn page_of(state: &SimState, uri: &Uri, path: &str, context: &str, items: Vec<Value>) -> Response {
    let q = Query::from_uri(uri);
    let top = match q.top(100, 999) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let offset = match q.get("skiptoken") {
        None => 0,
        Some(t) => match decode_token::<Offset>(t) {
            Some(o) => o.o,
            None => return bad_request("Invalid $skiptoken."),
        },
    };
    let total = items.len();
    let page: Vec<Value> = items.into_iter().skip(offset).take(top).collect();
    let next = (offset + page.len() < total).then(|| {
        let mut params = Vec::new();
        for k in ["select", "top"] {
            if let Some(v) = q.get(k) {
                params.push(format!("${k}={}", enc(v)));
            }
        }
        params.push(format!(
            "$skiptoken={}",
            encode_token(&Offset {
                o: offset + page.len()
            })
        ));
        format!("{}/v1.0/{path}?{}", state.base_url, params.join("&"))
    });
    collection(state, context, page, next, None)
}

/// `GET /v1.0/groups` (app: Group.Read.All); `$filter=displayName eq '…'` / `startswith` supported.
async fn list_groups(State(state): State<Arc<SimState>>, app: AppPrincipal, uri: Uri) -> Response {
    if let Err(r) = app.require(READ) {
        return r;
    }
    let q = Query::from_uri(&uri);
    let filter = q.get("filter").map(|f| f.to_string());
    let tenant = state.tenant.read().await;
    let items: Vec<Value> = tenant
        .groups
        .values()
        .filter(|g| match &filter {
            None => true,
            Some(f) => group_filter(f, &g.display_name),
        })
        .map(|g| Value::Object(g.to_json()))
        .collect();
    page_of(&state, &uri, "groups", "groups", items)
}

fn group_filter(f: &str, name: &str) -> bool {
    let f = f.trim();
    let lit = |s: &str| s.trim().trim_matches('\'').replace("''", "'");
    if let Some(rest) = f.strip_prefix("displayName eq ") {
        return lit(rest).eq_ignore_ascii_case(name);
    }
    if let Some(rest) = f.strip_prefix("startswith(displayName,") {
        let v = lit(rest.trim_end_matches(')'));
        return name.to_lowercase().starts_with(&v.to_lowercase());
    }
    true
}

/// `GET /v1.0/groups/{id}` (app: Group.Read.All).
async fn get_group(
    State(state): State<Arc<SimState>>,
    app: AppPrincipal,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = app.require(READ) {
        return r;
    }
    let tenant = state.tenant.read().await;
    match tenant.groups.get(&id.to_ascii_lowercase()) {
        Some(g) => {
            let mut m = g.to_json();
            m.insert(
                "@odata.context".into(),
                json!(format!("{}/v1.0/$metadata#groups/$entity", state.base_url)),
            );
            json_response(StatusCode::OK, Value::Object(m))
        }
        None => dir_not_found(&id),
    }
}

/// A member as a `directoryObject` with its `@odata.type`.
fn member_json(tenant: &Tenant, id: &str, props: &[String]) -> Option<Value> {
    if let Some(u) = tenant.users.get(id) {
        let mut m = serde_json::Map::new();
        m.insert("@odata.type".into(), json!("#microsoft.graph.user"));
        m.extend(u.to_json(props));
        return Some(Value::Object(m));
    }
    tenant.groups.get(id).map(|g| {
        let mut m = serde_json::Map::new();
        m.insert("@odata.type".into(), json!("#microsoft.graph.group"));
        m.extend(g.to_json());
        Value::Object(m)
    })
}

async fn list_members(
    state: Arc<SimState>,
    app: AppPrincipal,
    id: String,
    uri: Uri,
    transitive: bool,
    users_only: bool,
) -> Response {
    if let Err(r) = app.require(READ) {
        return r;
    }
    let q = Query::from_uri(&uri);
    let props = user_props(q.select());
    let tenant = state.tenant.read().await;
    let gid = id.to_ascii_lowercase();
    let Some(g) = tenant.groups.get(&gid) else {
        return dir_not_found(&id);
    };
    let ids = if transitive {
        tenant.transitive_members(&gid)
    } else {
        g.members.clone()
    };
    let items: Vec<Value> = ids
        .iter()
        .filter(|m| !users_only || tenant.users.contains_key(*m))
        .filter_map(|m| member_json(&tenant, m, &props))
        .collect();
    let kind = if transitive {
        "transitiveMembers"
    } else {
        "members"
    };
    let path = if users_only {
        format!("groups/{gid}/{kind}/microsoft.graph.user")
    } else {
        format!("groups/{gid}/{kind}")
    };
    page_of(&state, &uri, &path, "directoryObjects", items)
}

/// `GET /v1.0/groups/{id}/members` (app: GroupMember.Read.All): direct members.
async fn members(
    State(state): State<Arc<SimState>>,
    app: AppPrincipal,
    Path(id): Path<String>,
    uri: Uri,
) -> Response {
    list_members(state, app, id, uri, false, false).await
}

/// `GET /v1.0/groups/{id}/members/microsoft.graph.user` (app: GroupMember.Read.All).
async fn members_users(
    State(state): State<Arc<SimState>>,
    app: AppPrincipal,
    Path(id): Path<String>,
    uri: Uri,
) -> Response {
    list_members(state, app, id, uri, false, true).await
}

/// `GET /v1.0/groups/{id}/transitiveMembers` (app: GroupMember.Read.All): nested groups flattened.
async fn transitive_members(
    State(state): State<Arc<SimState>>,
    app: AppPrincipal,
    Path(id): Path<String>,
    uri: Uri,
) -> Response {
    list_members(state, app, id, uri, true, false).await
}

/// `GET /v1.0/groups/{id}/transitiveMembers/microsoft.graph.user` (app: GroupMember.Read.All).
async fn transitive_members_users(
    State(state): State<Arc<SimState>>,
    app: AppPrincipal,
    Path(id): Path<String>,
    uri: Uri,
) -> Response {
    list_members(state, app, id, uri, true, true).await
}

fn group_change(id: &str) -> ChangeEvent {
    ChangeEvent {
        collection: "groups".into(),
        id: id.to_string(),
        change_type: "updated",
        resource: format!("Groups/{id}"),
        odata_type: "#Microsoft.Graph.Group",
    }
}

/// `POST /v1.0/groups/{id}/members/$ref` `{"@odata.id": ".../directoryObjects/{id}"}`
/// (app: GroupMember.ReadWrite.All) → 204.
async fn add_member(
    State(state): State<Arc<SimState>>,
    app: AppPrincipal,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = app.require(WRITE) {
        return r;
    }
    let obj = match json_object(&body) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let Some(odata_id) = obj.get("@odata.id").and_then(|v| v.as_str()) else {
        return bad_request("Invalid object identifier '@odata.id'.");
    };
    let member = odata_id
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("");
    let member = member
        .trim_start_matches("directoryObjects('")
        .trim_end_matches("')")
        .to_string();
    let mut tenant = state.tenant.write().await;
    match tenant.add_member(&id, &member) {
        Ok(()) => {
            let gid = id.to_ascii_lowercase();
            super::subscriptions::publish(&state, &mut tenant, vec![group_change(&gid)]);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(crate::tenant::TenantError::NotFound(m)) => {
            super::graph_error(StatusCode::NOT_FOUND, "Request_ResourceNotFound", &m)
        }
        Err(e) => bad_request(&e.to_string()),
    }
}

/// `DELETE /v1.0/groups/{id}/members/{member}/$ref` (app: GroupMember.ReadWrite.All) → 204.
async fn remove_member(
    State(state): State<Arc<SimState>>,
    app: AppPrincipal,
    Path((id, member)): Path<(String, String)>,
) -> Response {
    if let Err(r) = app.require(WRITE) {
        return r;
    }
    let mut tenant = state.tenant.write().await;
    match tenant.remove_member(&id, &member) {
        Ok(()) => {
            let gid = id.to_ascii_lowercase();
            super::subscriptions::publish(&state, &mut tenant, vec![group_change(&gid)]);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => super::graph_error(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            &e.to_string(),
        ),
    }
}
