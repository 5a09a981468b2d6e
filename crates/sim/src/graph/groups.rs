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
        .route("/v1.0/groups/delta", get(groups_delta))
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

/// State carried in group delta tokens.
#[derive(Serialize, Deserialize, Clone)]
struct GroupDeltaToken {
    i: String,
    e: u64,
    s: u64,
    #[serde(default)]
    sel: Option<Vec<String>>,
    t: i64,
    #[serde(default)]
    ids: Option<Vec<String>>,
}

fn member_ref(tenant: &Tenant, id: &str) -> Value {
    let t = if tenant.groups.contains_key(id) {
        "#microsoft.graph.group"
    } else {
        "#microsoft.graph.user"
    };
    json!({"@odata.type": t, "id": id})
}

fn group_delta_item(
    g: &crate::tenant::Group,
    sel: &Option<Vec<String>>,
    members: Vec<Value>,
) -> Value {
    let full = g.to_json();
    let mut m = serde_json::Map::new();
    m.insert("id".into(), json!(g.id));
    let wants = |p: &str| {
        sel.as_ref()
            .is_none_or(|s| s.iter().any(|x| x.eq_ignore_ascii_case(p)))
    };
    for (k, v) in full {
        if k != "id" && wants(&k) && !v.is_null() {
            m.insert(k, v);
        }
    }
    if wants("members") {
        m.insert("members@delta".into(), Value::Array(members));
    }
    Value::Object(m)
}

/// `GET /v1.0/groups/delta` (app: Group.Read.All): groups with `members@delta`; later rounds
/// carry only membership changes, removed members with `@removed` (graph-facts §4).
async fn groups_delta(State(state): State<Arc<SimState>>, app: AppPrincipal, uri: Uri) -> Response {
    if let Err(r) = app.require(READ) {
        return r;
    }
    let q = Query::from_uri(&uri);
    let tenant = state.tenant.read().await;
    let settings = state.runtime.settings();
    let now = chrono::Utc::now().timestamp();
    let epoch = state.delta_epoch();
    let link = |tok: &GroupDeltaToken| {
        format!(
            "{}/v1.0/groups/delta?$deltatoken={}",
            state.base_url,
            encode_token(tok)
        )
    };
    let ids_filter = match q.get("filter") {
        None => None,
        Some(f) => {
            let ids: Vec<String> = f
                .split(" or ")
                .filter_map(|c| c.trim().strip_prefix("id eq "))
                .map(|v| v.trim().trim_matches('\'').to_ascii_lowercase())
                .collect();
            if ids.is_empty() {
                return super::graph_error(
                    StatusCode::BAD_REQUEST,
                    "Request_UnsupportedQuery",
                    "Only 'id eq' clauses combined with 'or' can be used with delta.",
                );
            }
            Some(ids)
        }
    };
    let in_scope = |ids: &Option<Vec<String>>, id: &str| {
        ids.as_ref().is_none_or(|v| v.iter().any(|x| x == id))
    };
    let Some(t) = q.get("deltatoken") else {
        let tok = GroupDeltaToken {
            i: tenant.instance.clone(),
            e: epoch,
            s: tenant.seq,
            sel: q.select(),
            t: now,
            ids: ids_filter,
        };
        let items: Vec<Value> = tenant
            .groups
            .values()
            .filter(|g| in_scope(&tok.ids, &g.id))
            .map(|g| {
                let members = g.members.iter().map(|m| member_ref(&tenant, m)).collect();
                group_delta_item(g, &tok.sel, members)
            })
            .collect();
        return collection(&state, "groups", items, None, Some(link(&tok)));
    };
    let tok = match decode_token::<GroupDeltaToken>(t) {
        Some(tok)
            if tok.i == tenant.instance
                && tok.e >= epoch
                && now - tok.t <= settings.directory_delta_token_secs =>
        {
            tok
        }
        _ => return super::sync_state_not_found(true, &settings),
    };
    let start = tenant.group_log.partition_point(|c| c.seq <= tok.s);
    let mut order: Vec<String> = Vec::new();
    let mut changes: std::collections::HashMap<String, Vec<String>> = Default::default();
    for c in &tenant.group_log[start..] {
        if !in_scope(&tok.ids, &c.id) {
            continue;
        }
        if !order.contains(&c.id) {
            order.push(c.id.clone());
        }
        let e = changes.entry(c.id.clone()).or_default();
        for p in c.props.iter().flatten() {
            if p.starts_with('+') || p.starts_with('-') {
                e.push(p.clone());
            }
        }
    }
    let mut items = Vec::new();
    for gid in order {
        let Some(g) = tenant.groups.get(&gid) else {
            items.push(json!({"id": gid, "@removed": {"reason": "changed"}}));
            continue;
        };
        // Net effect per member: the last change wins.
        let mut last: Vec<(String, bool)> = Vec::new();
        for ch in &changes[&gid] {
            let (added, mid) = (ch.starts_with('+'), ch[1..].to_string());
            last.retain(|(m, _)| *m != mid);
            last.push((mid, added));
        }
        let members = last
            .into_iter()
            .map(|(mid, added)| {
                let mut v = member_ref(&tenant, &mid);
                if !added {
                    v["@removed"] = json!({"reason": "deleted"});
                }
                v
            })
            .collect();
        items.push(group_delta_item(g, &tok.sel, members));
    }
    let next = GroupDeltaToken {
        s: tenant.seq,
        t: now,
        ..tok
    };
    collection(&state, "groups", items, None, Some(link(&next)))
}
