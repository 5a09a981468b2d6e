//! `/users`, `/users/{id|upn}`, `/users/delta`, user writes and `/users/{id}/photo`.
//!
//! Docs: https://learn.microsoft.com/graph/api/user-list · https://learn.microsoft.com/graph/api/user-delta ·
//! https://learn.microsoft.com/graph/api/profilephoto-get (graph-facts §4, §5).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::outlook::{Outlook, PhotoRead};
use super::query::{
    refuse_unknown_options, DirectoryQuery, Filter, COLLECTION_OPTIONS, COUNT_OPTIONS, USERS,
};
use super::{
    bad_request, collection, decode_token, dir_not_found, enc, encode_token, graph_error,
    json_object, json_response, sync_state_not_found, Query,
};
use crate::identity::access::AppPrincipal;
use crate::state::SimState;
use crate::tenant::{ChangeEvent, Photo, User, USER_DEFAULT_PROPS};

/// User routes.
pub fn routes() -> Router<Arc<SimState>> {
    Router::new()
        .route("/v1.0/users", get(list_users).post(create_user))
        .route("/v1.0/users/delta", get(users_delta))
        .route("/v1.0/users/$count", get(count_users))
        .route("/v1.0/me", get(me))
        .route(
            "/v1.0/users/{id}",
            get(get_user).patch(update_user).delete(delete_user),
        )
        .route("/v1.0/users/{id}/photo", get(photo_meta))
        .route(
            "/v1.0/users/{id}/photo/$value",
            get(photo_value).put(put_photo),
        )
        .route("/v1.0/users/{id}/photos", get(photo_list))
        .route("/v1.0/users/{id}/photos/{size}", get(photo_meta_sized))
        .route(
            "/v1.0/users/{id}/photo/{size}/$value",
            get(photo_value_sized),
        )
        .route(
            "/v1.0/users/{id}/photos/{size}/$value",
            get(photo_value_sized),
        )
}

/// Properties for a response: `$select` (canonicalised, `id` always) or the defaults.
pub fn user_props(select: Option<Vec<String>>) -> Vec<String> {
    match select {
        Some(sel) if !sel.is_empty() => {
            let mut out: Vec<String> = sel.iter().map(|s| User::canonical_prop(s)).collect();
            if !out.iter().any(|p| p == "id") {
                out.push("id".into());
            }
            out
        }
        _ => USER_DEFAULT_PROPS.iter().map(|s| s.to_string()).collect(),
    }
}

// ----- list / get ---------------------------------------------------------------------------

#[derive(Serialize, Deserialize)]
struct ListToken {
    /// Last id returned (id order).
    #[serde(default)]
    a: Option<String>,
    /// Items already returned (`$orderby` / `$search` order).
    #[serde(default)]
    o: Option<usize>,
}

/// `GET /v1.0/users` (app: User.Read.All).
async fn list_users(
    State(state): State<Arc<SimState>>,
    app: AppPrincipal,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, Response> {
    app.require(&["User.Read.All", "User.ReadBasic.All"])?;
    let (q, dq) = DirectoryQuery::read(&uri, &headers, &USERS, COLLECTION_OPTIONS)?;
    let top = q.top(100, 999)?;
    let token = match q.get("skiptoken") {
        None => None,
        Some(t) => {
            Some(decode_token::<ListToken>(t).ok_or_else(|| bad_request("Invalid $skiptoken."))?)
        }
    };
    let props = user_props(q.select());
    let tenant = state.tenant.read().await;
    let mut page: Vec<&User> = Vec::with_capacity(top);
    let next_token = if dq.order_by.is_some() || dq.search.is_some() {
        // Relevance or sort order: page by position in the sorted result.
        let mut all: Vec<&User> = tenant.users.values().filter(|u| dq.matches(*u)).collect();
        dq.sort(&mut all);
        let offset = token.as_ref().and_then(|t| t.o).unwrap_or(0);
        page.extend(all.iter().skip(offset).take(top));
        (offset + page.len() < all.len()).then(|| ListToken {
            a: None,
            o: Some(offset + page.len()),
        })
    } else {
        let after = token.and_then(|t| t.a);
        let range: Box<dyn Iterator<Item = &User>> = match &after {
            Some(a) => Box::new(
                tenant
                    .users
                    .range::<String, _>((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded))
                    .map(|(_, u)| u),
            ),
            None => Box::new(tenant.users.values()),
        };
        let mut more = false;
        for u in range.filter(|u| dq.matches(*u)) {
            if page.len() == top {
                more = true;
                break;
            }
            page.push(u);
        }
        more.then(|| ListToken {
            a: page.last().map(|u| u.id.clone()),
            o: None,
        })
    };
    let count = (q.get("skiptoken").is_none() && dq.count)
        .then(|| tenant.users.values().filter(|u| dq.matches(*u)).count());
    let next = next_token.map(|tok| {
        let mut params: Vec<String> = Vec::new();
        for k in ["select", "filter", "search", "orderby", "top", "count"] {
            if let Some(v) = q.get(k) {
                params.push(format!("${k}={}", enc(v)));
            }
        }
        params.push(format!("$skiptoken={}", encode_token(&tok)));
        format!("{}/v1.0/users?{}", state.base_url, params.join("&"))
    });
    let value: Vec<Value> = page
        .iter()
        .map(|u| Value::Object(u.to_json(&props)))
        .collect();
    let mut m = Map::new();
    m.insert(
        "@odata.context".into(),
        json!(format!("{}/v1.0/$metadata#users", state.base_url)),
    );
    if let Some(c) = count {
        // `@odata.count` appears on the first page only (graph-facts §4).
        m.insert("@odata.count".into(), json!(c));
    }
    if let Some(n) = next {
        m.insert("@odata.nextLink".into(), json!(n));
    }
    m.insert("value".into(), Value::Array(value));
    Ok(json_response(StatusCode::OK, Value::Object(m)))
}

/// `GET /v1.0/users/$count` with `ConsistencyLevel: eventual` (app: User.Read.All): the number
/// as `text/plain` ("Get only a count of users", https://learn.microsoft.com/graph/api/user-list).
async fn count_users(
    State(state): State<Arc<SimState>>,
    app: AppPrincipal,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, Response> {
    app.require(&["User.Read.All", "User.ReadBasic.All"])?;
    let (_, dq) = DirectoryQuery::read(&uri, &headers, &USERS, COUNT_OPTIONS)?;
    let tenant = state.tenant.read().await;
    let n = tenant.users.values().filter(|u| dq.matches(*u)).count();
    super::count_response(&headers, n)
}

/// `GET /v1.0/users/{id|upn}` (app: User.Read.All).
async fn get_user(
    State(state): State<Arc<SimState>>,
    app: AppPrincipal,
    headers: HeaderMap,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Response, Response> {
    if id == "delta()" {
        return Ok(users_delta(State(state), app, headers, uri).await);
    }
    app.require(&["User.Read.All", "User.ReadBasic.All"])?;
    user_entity(&state, &id, &uri).await
}

/// `GET /v1.0/me` (delegated: User.Read): the signed-in user ("Get the signed-in user",
/// https://learn.microsoft.com/graph/api/user-get); app-only tokens have no `/me`.
async fn me(
    State(state): State<Arc<SimState>>,
    app: AppPrincipal,
    uri: Uri,
) -> Result<Response, Response> {
    let Some(uid) = app.user_id.clone() else {
        return Err(graph_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "/me request is only valid with delegated authentication flow.",
        ));
    };
    app.require(&["User.Read", "User.ReadBasic.All", "User.Read.All"])?;
    user_entity(&state, &uid, &uri).await
}

/// One user with `$select`ed (or default) properties.
async fn user_entity(state: &SimState, id: &str, uri: &Uri) -> Result<Response, Response> {
    let q = Query::from_uri(uri);
    refuse_unknown_options(&q, &["select"])?;
    let props = user_props(q.select());
    let tenant = state.tenant.read().await;
    let u = tenant.find_user(id).ok_or_else(|| dir_not_found(id))?;
    let mut m = Map::new();
    m.insert(
        "@odata.context".into(),
        json!(format!("{}/v1.0/$metadata#users/$entity", state.base_url)),
    );
    m.extend(u.to_json(&props));
    Ok(json_response(StatusCode::OK, Value::Object(m)))
}

// ----- writes -------------------------------------------------------------------------------

/// `POST /v1.0/users` (app: User.ReadWrite.All) → 201 with the user.
async fn create_user(
    State(state): State<Arc<SimState>>,
    app: AppPrincipal,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = app.require(&["User.ReadWrite.All", "Directory.ReadWrite.All"]) {
        return r;
    }
    let obj = match json_object(&body) {
        Ok(o) => o,
        Err(r) => return r,
    };
    for required in ["displayName", "userPrincipalName"] {
        if !obj.get(required).is_some_and(|v| v.is_string()) {
            // https://learn.microsoft.com/graph/api/user-post-users (required properties)
            return bad_request(&format!(
                "Invalid value specified for property '{required}' of resource 'User'."
            ));
        }
    }
    let mut user = User {
        id: crate::tenant::new_id(),
        user_type: "Member".into(),
        account_enabled: true,
        ..Default::default()
    };
    for (k, v) in &obj {
        if k == "id" || k.starts_with("@odata") || k == "mailNickname" {
            continue;
        }
        if let Err(m) = user.set(k, v) {
            return bad_request(&format!("Invalid value specified for property {m}"));
        }
    }
    let props = user_props(None);
    let mut tenant = state.tenant.write().await;
    let id = match tenant.create_user(user) {
        Ok(id) => id,
        Err(e) => return bad_request(&e.to_string()),
    };
    let mut m = Map::new();
    m.insert(
        "@odata.context".into(),
        json!(format!("{}/v1.0/$metadata#users/$entity", state.base_url)),
    );
    m.extend(tenant.users[&id].to_json(&props));
    // Directory subscriptions see creation as `updated` (graph-facts §8).
    super::subscriptions::publish(&state, &mut tenant, vec![user_change(&id, "updated")]);
    let mut resp = json_response(StatusCode::CREATED, Value::Object(m));
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{}/v1.0/directoryObjects/{id}/Microsoft.DirectoryServices.User",
        state.base_url
    )) {
        resp.headers_mut().insert("location", v);
    }
    resp
}

fn user_change(id: &str, change_type: &'static str) -> ChangeEvent {
    ChangeEvent {
        collection: "users".into(),
        id: id.to_string(),
        change_type,
        resource: format!("Users/{id}"),
        odata_type: "#Microsoft.Graph.User",
    }
}

/// `PATCH /v1.0/users/{id}` (app: User.ReadWrite.All) → 204.
async fn update_user(
    State(state): State<Arc<SimState>>,
    app: AppPrincipal,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = app.require(&["User.ReadWrite.All", "Directory.ReadWrite.All"]) {
        return r;
    }
    let obj = match json_object(&body) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let mut tenant = state.tenant.write().await;
    match tenant.update_user(&id, &obj) {
        Ok(uid) => {
            super::subscriptions::publish(&state, &mut tenant, vec![user_change(&uid, "updated")]);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(crate::tenant::TenantError::NotFound(_)) => dir_not_found(&id),
        Err(e) => bad_request(&format!("Invalid value specified for property {e}")),
    }
}

/// `DELETE /v1.0/users/{id}` (app: User.ReadWrite.All) → 204.
async fn delete_user(
    State(state): State<Arc<SimState>>,
    app: AppPrincipal,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = app.require(&["User.ReadWrite.All", "Directory.ReadWrite.All"]) {
        return r;
    }
    let mut tenant = state.tenant.write().await;
    match tenant.delete_user(&id) {
        Ok(uid) => {
            super::subscriptions::publish(&state, &mut tenant, vec![user_change(&uid, "deleted")]);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(_) => dir_not_found(&id),
    }
}

// ----- delta --------------------------------------------------------------------------------

/// State carried in user delta tokens (opaque to clients).
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct DeltaToken {
    /// Tenant instance.
    pub i: String,
    /// Fault epoch at issue time.
    pub e: u64,
    /// Change sequence the token covers up to.
    pub s: u64,
    /// `$select` of the first call.
    #[serde(default)]
    pub sel: Option<Vec<String>>,
    /// `$filter=id eq …` ids of the first call.
    #[serde(default)]
    pub ids: Option<Vec<String>>,
    /// Issued at (unix seconds).
    pub t: i64,
    /// Paging: for the first round the last id returned; for later rounds the offset.
    #[serde(default)]
    pub a: Option<String>,
    /// Paging of a later round: the lower sequence bound.
    #[serde(default)]
    pub from: Option<u64>,
}

fn parse_delta_ids(f: &str) -> Result<Vec<String>, String> {
    // Only `id eq '…' or id eq '…'` is supported on /users/delta (graph-facts §4).
    {
        let filter = Filter::parse(f, &USERS)?;
        {
            let mut ids = Vec::new();
            fn walk(f: &Filter, ids: &mut Vec<String>) -> bool {
                match f {
                    Filter::Or(a, b) => walk(a, ids) && walk(b, ids),
                    Filter::Eq(p, Value::String(v)) if p == "id" => {
                        ids.push(v.to_ascii_lowercase());
                        true
                    }
                    _ => false,
                }
            }
            if !walk(&filter, &mut ids) || ids.len() > 50 {
                return Err("Unsupported query: only 'id eq' clauses combined with 'or' (at most 50) can be used with delta.".into());
            }
            Ok(ids)
        }
    }
}

/// `GET /v1.0/users/delta` (app: User.Read.All): full state first, then changes only.
async fn users_delta(
    State(state): State<Arc<SimState>>,
    app: AppPrincipal,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    if let Err(r) = app.require(&["User.Read.All"]) {
        return r;
    }
    let q = Query::from_uri(&uri);
    let page_size = super::prefer_max_page_size(&headers)
        .unwrap_or(200)
        .clamp(1, 999);
    let tenant = state.tenant.read().await;
    let settings = state.runtime.settings();
    let now = chrono::Utc::now().timestamp();
    let epoch = state.delta_epoch();
    let (token, _first_call) = if let Some(t) = q.get("deltatoken") {
        if t.eq_ignore_ascii_case("latest") {
            // "sync from now": only a deltaLink (https://learn.microsoft.com/graph/delta-query-overview)
            let tok = DeltaToken {
                i: tenant.instance.clone(),
                e: epoch,
                s: tenant.seq,
                sel: q.select(),
                ids: None,
                t: now,
                a: None,
                from: None,
            };
            let link = format!(
                "{}/v1.0/users/delta?$deltatoken={}",
                state.base_url,
                encode_token(&tok)
            );
            return collection(&state, "users", vec![], None, Some(link));
        }
        (decode_token::<DeltaToken>(t), false)
    } else if let Some(t) = q.get("skiptoken") {
        (decode_token::<DeltaToken>(t), true)
    } else {
        let ids = match q.get("filter").map(parse_delta_ids) {
            None => None,
            Some(Ok(ids)) => Some(ids),
            Some(Err(m)) => {
                return graph_error(StatusCode::BAD_REQUEST, "Request_UnsupportedQuery", &m)
            }
        };
        if q.get("top").is_some() || q.get("orderby").is_some() || q.get("expand").is_some() {
            return graph_error(
                StatusCode::BAD_REQUEST,
                "Request_UnsupportedQuery",
                "The $top, $orderby and $expand query options are not supported with delta.",
            );
        }
        (
            Some(DeltaToken {
                i: tenant.instance.clone(),
                e: epoch,
                s: tenant.seq,
                sel: q.select(),
                ids,
                t: now,
                a: None,
                from: None,
            }),
            true,
        )
    };
    let Some(token) = token else {
        return sync_state_not_found(true, &settings);
    };
    let stale = token.i != tenant.instance
        || token.e < epoch
        || now - token.t > settings.directory_delta_token_secs;
    if stale {
        return sync_state_not_found(true, &settings);
    }
    let props = user_props(token.sel.clone());
    let in_scope = |id: &str| {
        token
            .ids
            .as_ref()
            .is_none_or(|ids| ids.iter().any(|i| i == id))
    };
    let delta_link = |s: u64| {
        let tok = DeltaToken {
            s,
            a: None,
            from: None,
            t: now,
            ..token.clone()
        };
        format!(
            "{}/v1.0/users/delta?$deltatoken={}",
            state.base_url,
            encode_token(&tok)
        )
    };
    let later_round = q.get("deltatoken").is_some() || token.from.is_some();
    if !later_round {
        // First round: the current state, paged by id.
        let iter: Box<dyn Iterator<Item = &User>> = match &token.a {
            Some(a) => Box::new(
                tenant
                    .users
                    .range::<String, _>((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded))
                    .map(|(_, u)| u),
            ),
            None => Box::new(tenant.users.values()),
        };
        let mut page = Vec::new();
        let mut more = false;
        for u in iter {
            if !in_scope(&u.id) {
                continue;
            }
            if page.len() == page_size {
                more = true;
                break;
            }
            page.push(u);
        }
        let value: Vec<Value> = page.iter().map(|u| delta_item(u, &props)).collect();
        if more {
            let tok = DeltaToken {
                a: page.last().map(|u| u.id.clone()),
                ..token.clone()
            };
            let next = format!(
                "{}/v1.0/users/delta?$skiptoken={}",
                state.base_url,
                encode_token(&tok)
            );
            return collection(&state, "users", value, Some(next), None);
        }
        return collection(&state, "users", value, None, Some(delta_link(token.s)));
    }
    let minimal = super::prefer_values(&headers)
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("return") && v.eq_ignore_ascii_case("minimal"));
    // Later rounds: changes with seq in (from, s'] where s' is the current seq.
    let (lower, upper, offset) = match token.from {
        Some(from) => (
            from,
            token.s,
            token
                .a
                .as_deref()
                .and_then(|a| a.parse::<usize>().ok())
                .unwrap_or(0),
        ),
        None => (token.s, tenant.seq, 0),
    };
    let start = tenant.user_log.partition_point(|c| c.seq <= lower);
    let end = tenant.user_log.partition_point(|c| c.seq <= upper);
    // Collapse the log per id, keeping the order of each id's last change.
    let mut order: Vec<String> = Vec::new();
    let mut info: std::collections::HashMap<String, (bool, Vec<String>)> = Default::default();
    for c in &tenant.user_log[start..end] {
        let e = info.entry(c.id.clone()).or_insert((false, Vec::new()));
        match &c.props {
            None => e.0 = true,
            Some(ps) => e.1.extend(ps.iter().cloned()),
        }
        order.retain(|x| x != &c.id);
        order.push(c.id.clone());
    }
    let mut items = Vec::new();
    for id in order {
        if !in_scope(&id) {
            continue;
        }
        let (created, changed) = &info[&id];
        match tenant.users.get(&id) {
            Some(u) => {
                // A change outside $select does not bring the object back (graph-facts §4).
                let relevant = *created || changed.iter().any(|p| props.contains(p));
                if relevant && minimal && !*created {
                    // `Prefer: return=minimal`: only the changed properties, nulls shown as null.
                    let mut m = Map::new();
                    for p in props.iter().filter(|p| changed.contains(p)) {
                        m.insert(p.clone(), u.get(p));
                    }
                    m.insert("id".into(), json!(u.id));
                    items.push(Value::Object(m));
                } else if relevant {
                    items.push(delta_item(u, &props));
                }
            }
            None => items.push(json!({"id": id, "@removed": {"reason": "changed"}})),
        }
    }
    let total = items.len();
    let page: Vec<Value> = items.into_iter().skip(offset).take(page_size).collect();
    if offset + page.len() < total {
        let tok = DeltaToken {
            from: Some(lower),
            s: upper,
            a: Some((offset + page.len()).to_string()),
            ..token.clone()
        };
        let next = format!(
            "{}/v1.0/users/delta?$skiptoken={}",
            state.base_url,
            encode_token(&tok)
        );
        return collection(&state, "users", page, Some(next), None);
    }
    collection(&state, "users", page, None, Some(delta_link(upper)))
}

/// A user in a delta response: selected properties that have a value (graph-facts §4).
fn delta_item(u: &User, props: &[String]) -> Value {
    let mut m = Map::new();
    for p in props {
        let v = u.get(p);
        if !v.is_null() {
            m.insert(p.clone(), v);
        }
    }
    m.insert("id".into(), json!(u.id));
    Value::Object(m)
}

// ----- photos -------------------------------------------------------------------------------

fn image_not_found() -> Response {
    // graph-facts §5: 404 ImageNotFound (OBSERVED code).
    graph_error(
        StatusCode::NOT_FOUND,
        "ImageNotFound",
        "Exception of type 'Microsoft.Fast.Profile.Core.Exception.ImageNotFoundException' was thrown.",
    )
}

/// The user's photo; 404 `ImageNotFound` without one.
async fn load_photo(state: &SimState, call: &Outlook<PhotoRead>) -> Result<Photo, Response> {
    let tenant = state.tenant.read().await;
    let u = tenant
        .users
        .get(&call.user_id)
        .ok_or_else(|| dir_not_found(&call.user_id))?;
    u.photo.clone().ok_or_else(image_not_found)
}

/// Photo metadata as https://learn.microsoft.com/graph/api/profilephoto-get shows it, for the
/// stored photo (`size` None) or one of its documented sizes.
fn photo_meta_json(state: &SimState, uid: &str, p: &Photo, size: Option<u32>) -> Value {
    let (ct, w, h) = p.info();
    let (w, h) = size.map(|s| (s, s)).unwrap_or((w, h));
    let id = format!("{w}X{h}");
    json!({
        "@odata.context": format!("{}/v1.0/$metadata#users('{uid}')/photo/$entity", state.base_url),
        "@odata.id": format!("{}/v1.0/users('{uid}')/photos('{id}')", state.base_url),
        "@odata.mediaContentType": ct,
        "@odata.mediaEtag": p.etag,
        "id": id,
        "width": w,
        "height": h,
    })
}

/// The documented size `{size}` (`48x48`, any case) when this photo can be served in it; a size
/// larger than the stored photo is 404 (graph-facts §5).
fn photo_size(p: &Photo, size: &str) -> Result<u32, Response> {
    let size = size.to_ascii_lowercase();
    let (a, b) = size.split_once('x').ok_or_else(image_not_found)?;
    match (a.parse::<u32>(), b.parse::<u32>()) {
        (Ok(a), Ok(b)) if a == b && p.sizes().contains(&a) => Ok(a),
        _ => Err(image_not_found()),
    }
}

/// `GET /v1.0/users/{id}/photo` (app: User.Read.All): photo metadata.
async fn photo_meta(
    State(state): State<Arc<SimState>>,
    call: Outlook<PhotoRead>,
) -> Result<Response, Response> {
    let p = load_photo(&state, &call).await?;
    let meta = photo_meta_json(&state, &call.user_id, &p, None);
    Ok(json_response(StatusCode::OK, meta))
}

/// `GET /v1.0/users/{id}/photos` (app: User.Read.All): the sizes the photo is available in.
async fn photo_list(
    State(state): State<Arc<SimState>>,
    call: Outlook<PhotoRead>,
) -> Result<Response, Response> {
    let p = load_photo(&state, &call).await?;
    let items = p
        .sizes()
        .into_iter()
        .map(|s| {
            let mut v = photo_meta_json(&state, &call.user_id, &p, Some(s));
            v.as_object_mut().map(|m| m.remove("@odata.context"));
            v
        })
        .collect();
    let ctx = format!("users('{}')/photos", call.user_id);
    Ok(collection(&state, &ctx, items, None, None))
}

/// `GET /v1.0/users/{id}/photos/{size}` (app: User.Read.All).
async fn photo_meta_sized(
    State(state): State<Arc<SimState>>,
    call: Outlook<PhotoRead>,
    Path((_, size)): Path<(String, String)>,
) -> Result<Response, Response> {
    let p = load_photo(&state, &call).await?;
    let size = photo_size(&p, &size)?;
    let meta = photo_meta_json(&state, &call.user_id, &p, Some(size));
    Ok(json_response(StatusCode::OK, meta))
}

fn photo_bytes(p: &Photo, size: Option<u32>) -> Response {
    let (ct, _, _) = p.info();
    let bytes = match size {
        Some(s) => p.bytes_at(s),
        None => p.bytes(),
    };
    let mut r = (StatusCode::OK, bytes.as_ref().clone()).into_response();
    if let Ok(v) = HeaderValue::from_str(ct) {
        r.headers_mut().insert(axum::http::header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&p.etag) {
        r.headers_mut().insert(axum::http::header::ETAG, v);
    }
    r
}

/// `GET /v1.0/users/{id}/photo/$value` (app: User.Read.All): the image bytes.
async fn photo_value(
    State(state): State<Arc<SimState>>,
    call: Outlook<PhotoRead>,
) -> Result<Response, Response> {
    let p = load_photo(&state, &call).await?;
    Ok(photo_bytes(&p, None))
}

/// `GET /v1.0/users/{id}/photos/{size}/$value` and `/photo/{size}/$value` (app: User.Read.All).
async fn photo_value_sized(
    State(state): State<Arc<SimState>>,
    call: Outlook<PhotoRead>,
    Path((_, size)): Path<(String, String)>,
) -> Result<Response, Response> {
    let p = load_photo(&state, &call).await?;
    let size = photo_size(&p, &size)?;
    Ok(photo_bytes(&p, Some(size)))
}

/// `PUT /v1.0/users/{id}/photo/$value` (app: User.ReadWrite.All): replaces the photo → 200.
async fn put_photo(
    State(state): State<Arc<SimState>>,
    app: AppPrincipal,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = app.require(&["User.ReadWrite.All", "ProfilePhoto.ReadWrite.All"]) {
        return r;
    }
    let Some(photo) = Photo::from_bytes(body.to_vec()) else {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "ErrorInvalidImage",
            "The photo must be a PNG or JPEG image.",
        );
    };
    let mut tenant = state.tenant.write().await;
    match tenant.set_photo(&id, Some(photo)) {
        // https://learn.microsoft.com/graph/api/profilephoto-update: 200 OK, no body.
        Ok(_) => StatusCode::OK.into_response(),
        Err(_) => dir_not_found(&id),
    }
}
