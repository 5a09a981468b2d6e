//! `/groups`, `/groups/{id}`, `/groups/{id}/members`, `/groups/{id}/transitiveMembers`,
//! member add/remove, and `checkMemberGroups` on a user.
//!
//! Docs: https://learn.microsoft.com/graph/api/group-list-members ·
//! https://learn.microsoft.com/graph/api/group-list-transitivemembers ·
//! https://learn.microsoft.com/graph/api/group-post-members (graph-facts §4).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::query::{
    refuse_unknown_options, DirectoryQuery, COLLECTION_OPTIONS, COUNT_OPTIONS, GROUPS, USERS,
};
use super::users::user_props;
use super::{
    bad_request, collection, counted_collection, decode_token, dir_not_found, enc, encode_token,
    json_object, json_response, Query,
};
use crate::identity::access::AppPrincipal;
use crate::state::SimState;
use crate::tenant::{ChangeEvent, Group, Tenant};

/// Group routes.
pub fn routes() -> Router<Arc<SimState>> {
    let mut r = Router::new()
        .route("/v1.0/groups", get(list_groups))
        .route("/v1.0/groups/$count", get(count_groups))
        .route("/v1.0/groups/delta", get(groups_delta))
        .route("/v1.0/groups/{id}", get(get_group));
    // `members` / `transitiveMembers`, each also cast to users (`/microsoft.graph.user`), each
    // with a `/$count` segment (app: GroupMember.Read.All).
    for (kind, transitive) in [("members", false), ("transitiveMembers", true)] {
        for cast in ["", "/microsoft.graph.user", "/microsoft.graph.group"] {
            let list = MemberList { transitive, cast };
            let path = format!("/v1.0/groups/{{id}}/{kind}{cast}");
            r = r
                .route(
                    &path,
                    get(move |State(s), a, Path(id), h, u| list_members(s, a, id, h, u, list)),
                )
                .route(
                    &format!("{path}/$count"),
                    get(move |State(s), a, Path(id), h, u| count_members(s, a, id, h, u, list)),
                );
        }
    }
    // checkMemberGroups on a user (and on any directory object by id).
    for path in [
        "/v1.0/users/{id}/checkMemberGroups",
        "/v1.0/directoryObjects/{id}/checkMemberGroups",
    ] {
        r = r.route(path, post(check_member_groups));
    }
    r.route("/v1.0/groups/{id}/members/$ref", post(add_member))
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

/// One page of `items` with `@odata.nextLink` and, when `$count=true`, `@odata.count` on the
/// first page.
fn page_of(
    state: &SimState,
    q: &Query,
    path: &str,
    context: &str,
    items: Vec<Value>,
    count: bool,
) -> Result<Response, Response> {
    let top = q.top(100, 999)?;
    let offset = match q.get("skiptoken") {
        None => 0,
        Some(t) => {
            decode_token::<Offset>(t)
                .ok_or_else(|| bad_request("Invalid $skiptoken."))?
                .o
        }
    };
    let total = items.len();
    let page: Vec<Value> = items.into_iter().skip(offset).take(top).collect();
    let next = (offset + page.len() < total).then(|| {
        let mut params = Vec::new();
        for k in ["select", "filter", "search", "orderby", "top", "count"] {
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
    let count = (count && offset == 0).then_some(total);
    Ok(counted_collection(state, context, page, count, next, None))
}

/// A group's JSON with only the `$select`ed properties (and `id`).
fn select_group(g: &Group, select: &Option<Vec<String>>) -> Value {
    let mut m = g.to_json();
    if let Some(sel) = select {
        m.retain(|k, _| k == "id" || sel.iter().any(|s| s.eq_ignore_ascii_case(k)));
    }
    Value::Object(m)
}

/// `GET /v1.0/groups` (app: Group.Read.All): `$filter`, `$search`, `$orderby`, `$count` and
/// `$select` as Graph has them.
async fn list_groups(
    State(state): State<Arc<SimState>>,
    app: AppPrincipal,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, Response> {
    app.require(READ)?;
    let (q, dq) = DirectoryQuery::read(&uri, &headers, &GROUPS, COLLECTION_OPTIONS)?;
    let tenant = state.tenant.read().await;
    let mut groups: Vec<&Group> = tenant.groups.values().filter(|g| dq.matches(*g)).collect();
    dq.sort(&mut groups);
    let select = q.select();
    let items = groups.iter().map(|g| select_group(g, &select)).collect();
    page_of(&state, &q, "groups", "groups", items, dq.count)
}

/// `GET /v1.0/groups/$count` with `ConsistencyLevel: eventual` (app: Group.Read.All).
async fn count_groups(
    State(state): State<Arc<SimState>>,
    app: AppPrincipal,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, Response> {
    app.require(READ)?;
    let (_, dq) = DirectoryQuery::read(&uri, &headers, &GROUPS, COUNT_OPTIONS)?;
    let tenant = state.tenant.read().await;
    let n = tenant.groups.values().filter(|g| dq.matches(*g)).count();
    super::count_response(&headers, n)
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

/// Which members a member list shows: direct or transitive, all or one type (an OData cast
/// segment such as `/microsoft.graph.user`, https://learn.microsoft.com/graph/api/group-list-members).
#[derive(Clone, Copy)]
struct MemberList {
    transitive: bool,
    /// `""`, `/microsoft.graph.user` or `/microsoft.graph.group`.
    cast: &'static str,
}

/// The query options member lists know (https://learn.microsoft.com/graph/api/group-list-members).
const MEMBER_OPTIONS: &[&str] = &["select", "filter", "top", "count", "search", "skiptoken"];

/// The member ids of `gid` that pass the query; `$filter` and `$search` on members are advanced
/// queries (`ConsistencyLevel: eventual` and `$count=true`).
fn member_ids(
    tenant: &Tenant,
    gid: &str,
    list: MemberList,
    dq: &DirectoryQuery,
) -> Result<Vec<String>, Response> {
    if (dq.filter.is_some() || dq.search.is_some()) && !dq.count {
        return Err(super::graph_error(
            StatusCode::BAD_REQUEST,
            "Request_UnsupportedQuery",
            "$filter and $search on members are not supported because the required parameters might be missing. Try adding $count with a value of true and set the ConsistencyLevel header to eventual.",
        ));
    }
    let Some(g) = tenant.groups.get(gid) else {
        return Err(dir_not_found(gid));
    };
    let ids = if list.transitive {
        tenant.transitive_members(gid)
    } else {
        g.members.clone()
    };
    Ok(ids
        .into_iter()
        .filter(|m| match (tenant.users.get(m), tenant.groups.get(m)) {
            (Some(u), _) => !list.cast.ends_with("group") && dq.matches(u),
            (None, Some(g)) => !list.cast.ends_with("user") && dq.matches(g),
            _ => false,
        })
        .collect())
}

async fn list_members(
    state: Arc<SimState>,
    app: AppPrincipal,
    id: String,
    headers: HeaderMap,
    uri: Uri,
    list: MemberList,
) -> Result<Response, Response> {
    app.require(READ)?;
    let (q, dq) = DirectoryQuery::read(&uri, &headers, &USERS, MEMBER_OPTIONS)?;
    let props = user_props(q.select());
    let tenant = state.tenant.read().await;
    let gid = id.to_ascii_lowercase();
    let ids = member_ids(&tenant, &gid, list, &dq)?;
    let items: Vec<Value> = ids
        .iter()
        .filter_map(|m| member_json(&tenant, m, &props))
        .collect();
    let kind = if list.transitive {
        "transitiveMembers"
    } else {
        "members"
    };
    let path = format!("groups/{gid}/{kind}{}", list.cast);
    page_of(&state, &q, &path, "directoryObjects", items, dq.count)
}

/// `GET /v1.0/groups/{id}/members/$count` and `/transitiveMembers/$count` with
/// `ConsistencyLevel: eventual` (app: GroupMember.Read.All): the number as `text/plain`.
async fn count_members(
    state: Arc<SimState>,
    app: AppPrincipal,
    id: String,
    headers: HeaderMap,
    uri: Uri,
    list: MemberList,
) -> Result<Response, Response> {
    app.require(READ)?;
    let (_, mut dq) = DirectoryQuery::read(&uri, &headers, &USERS, COUNT_OPTIONS)?;
    // The segment itself asks for a count.
    dq.count = true;
    let tenant = state.tenant.read().await;
    let n = member_ids(&tenant, &id.to_ascii_lowercase(), list, &dq)?.len();
    super::count_response(&headers, n)
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
    /// `$expand=members`: members@delta even when `$select` leaves `members` out.
    #[serde(default)]
    x: bool,
    /// Paging inside a round: items already returned.
    #[serde(default)]
    o: usize,
    /// Paging inside a round: the change sequence the round ends at (None: the first round).
    #[serde(default)]
    up: Option<u64>,
    /// Paging inside a round: this round is the first (full state).
    #[serde(default)]
    first: bool,
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
    expand_members: bool,
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
    if expand_members || wants("members") {
        m.insert("members@delta".into(), Value::Array(members));
    }
    Value::Object(m)
}

/// `GET /v1.0/groups/delta` (app: Group.Read.All): groups with `members@delta`; later rounds
/// carry only membership changes, removed members with `@removed` (graph-facts §4). Pages hold
/// `Prefer: odata.maxpagesize` groups; `$expand=members` asks for `members@delta` whatever the
/// `$select` (https://learn.microsoft.com/graph/api/group-delta).
async fn groups_delta(
    State(state): State<Arc<SimState>>,
    app: AppPrincipal,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, Response> {
    app.require(READ)?;
    let q = Query::from_uri(&uri);
    refuse_unknown_options(
        &q,
        &["select", "filter", "expand", "deltatoken", "skiptoken"],
    )?;
    let size = super::prefer_max_page_size(&headers)
        .unwrap_or(100)
        .clamp(1, 999);
    let tenant = state.tenant.read().await;
    let settings = state.runtime.settings();
    let now = chrono::Utc::now().timestamp();
    let epoch = state.delta_epoch();
    let given = q.get("deltatoken").or(q.get("skiptoken"));
    let tok = match given {
        None => {
            let expand = match q.get("expand") {
                None => false,
                Some(e) if e.trim().eq_ignore_ascii_case("members") => true,
                Some(_) => {
                    return Err(super::graph_error(
                        StatusCode::BAD_REQUEST,
                        "Request_UnsupportedQuery",
                        "Only $expand=members is supported with groups delta.",
                    ))
                }
            };
            let ids = match q.get("filter") {
                None => None,
                Some(f) => Some(delta_ids(f)?),
            };
            GroupDeltaToken {
                i: tenant.instance.clone(),
                e: epoch,
                s: tenant.seq,
                sel: q.select(),
                t: now,
                ids,
                x: expand,
                o: 0,
                up: None,
                first: true,
            }
        }
        Some(t) => match decode_token::<GroupDeltaToken>(t) {
            Some(tok)
                if tok.i == tenant.instance
                    && tok.e >= epoch
                    && now - tok.t <= settings.directory_delta_token_secs =>
            {
                tok
            }
            _ => return Err(super::sync_state_not_found(true, &settings)),
        },
    };
    let paging = q.get("skiptoken").is_some();
    let in_scope = |id: &str| tok.ids.as_ref().is_none_or(|v| v.iter().any(|x| x == id));
    // A deltatoken starts a later round at its sequence; a skiptoken continues a round.
    let first = tok.first && paging || given.is_none();
    let (lower, upper) = if paging {
        (tok.s, tok.up.unwrap_or(tok.s))
    } else if first {
        (tok.s, tok.s)
    } else {
        (tok.s, tenant.seq)
    };
    let items: Vec<Value> = if first {
        tenant
            .groups
            .values()
            .filter(|g| in_scope(&g.id))
            .map(|g| {
                let members = g.members.iter().map(|m| member_ref(&tenant, m)).collect();
                group_delta_item(g, &tok.sel, tok.x, members)
            })
            .collect()
    } else {
        membership_changes(&tenant, &tok, lower, upper, &in_scope)
    };
    let offset = if paging { tok.o } else { 0 };
    let total = items.len();
    let page: Vec<Value> = items.into_iter().skip(offset).take(size).collect();
    let link = |kind: &str, t: &GroupDeltaToken| {
        format!(
            "{}/v1.0/groups/delta?${kind}={}",
            state.base_url,
            encode_token(t)
        )
    };
    if offset + page.len() < total {
        let next = GroupDeltaToken {
            s: lower,
            up: Some(upper),
            o: offset + page.len(),
            first,
            t: now,
            ..tok.clone()
        };
        return Ok(collection(
            &state,
            "groups",
            page,
            Some(link("skiptoken", &next)),
            None,
        ));
    }
    let done = GroupDeltaToken {
        s: upper,
        up: None,
        o: 0,
        first: false,
        t: now,
        ..tok
    };
    Ok(collection(
        &state,
        "groups",
        page,
        None,
        Some(link("deltatoken", &done)),
    ))
}

/// `$filter=id eq '…' or id eq '…'`, the only filter group delta supports.
fn delta_ids(f: &str) -> Result<Vec<String>, Response> {
    let ids: Vec<String> = f
        .split(" or ")
        .filter_map(|c| c.trim().strip_prefix("id eq "))
        .map(|v| v.trim().trim_matches('\'').to_ascii_lowercase())
        .collect();
    if ids.is_empty() {
        return Err(super::graph_error(
            StatusCode::BAD_REQUEST,
            "Request_UnsupportedQuery",
            "Only 'id eq' clauses combined with 'or' can be used with delta.",
        ));
    }
    Ok(ids)
}

/// Groups whose membership changed in `(lower, upper]`, each with its net member changes.
fn membership_changes(
    tenant: &Tenant,
    tok: &GroupDeltaToken,
    lower: u64,
    upper: u64,
    in_scope: &dyn Fn(&str) -> bool,
) -> Vec<Value> {
    let start = tenant.group_log.partition_point(|c| c.seq <= lower);
    let end = tenant.group_log.partition_point(|c| c.seq <= upper);
    let mut order: Vec<String> = Vec::new();
    let mut changes: std::collections::HashMap<String, Vec<String>> = Default::default();
    for c in &tenant.group_log[start..end] {
        if !in_scope(&c.id) {
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
                let mut v = member_ref(tenant, &mid);
                if !added {
                    v["@removed"] = json!({"reason": "deleted"});
                }
                v
            })
            .collect();
        items.push(group_delta_item(g, &tok.sel, tok.x, members));
    }
    items
}

/// Most group ids one `checkMemberGroups` request may name.
const CHECK_LIMIT: usize = 20;

/// `POST /v1.0/users/{id}/checkMemberGroups` `{"groupIds": [..]}` (app: GroupMember.Read.All,
/// Group.Read.All or Directory.Read.All): those of the named groups the object is a member of,
/// **transitively** (through nested groups), at most 20 ids per request; an unknown object is
/// 404. Ids that are no group are simply not returned.
/// https://learn.microsoft.com/graph/api/directoryobject-checkmembergroups
async fn check_member_groups(
    State(state): State<Arc<SimState>>,
    app: AppPrincipal,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = app.require(READ) {
        return r;
    }
    let obj = match json_object(&body) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let Some(list) = obj.get("groupIds").and_then(Value::as_array) else {
        return bad_request("The request body must name the groups to check in 'groupIds'.");
    };
    let Some(asked) = list
        .iter()
        .map(|v| v.as_str().map(str::to_ascii_lowercase))
        .collect::<Option<Vec<String>>>()
    else {
        return bad_request("'groupIds' must be an array of strings.");
    };
    if asked.len() > CHECK_LIMIT {
        return bad_request(&format!(
            "Too many group ids: at most {CHECK_LIMIT} groups can be checked per request."
        ));
    }
    let tenant = state.tenant.read().await;
    let lower = id.to_ascii_lowercase();
    let member = tenant
        .find_user(&id)
        .map(|u| u.id.clone())
        .or_else(|| tenant.groups.contains_key(&lower).then_some(lower));
    let Some(member) = member else {
        return dir_not_found(&id);
    };
    let found: Vec<Value> = asked
        .into_iter()
        .filter(|g| tenant.groups.contains_key(g))
        .filter(|g| tenant.transitive_members(g).contains(&member))
        .map(Value::String)
        .collect();
    json_response(
        StatusCode::OK,
        json!({
            "@odata.context": format!("{}/v1.0/$metadata#Collection(Edm.String)", state.base_url),
            "value": found,
        }),
    )
}
