//! Personal contacts: `/users/{id}/contacts`, `/users/{id}/contactFolders` (+ `childFolders`,
//! `contacts`, the `contacts` alias for the default folder), writes, and per-folder delta.
//!
//! Docs: https://learn.microsoft.com/graph/api/user-list-contacts ·
//! https://learn.microsoft.com/graph/api/resources/contactfolder ·
//! https://learn.microsoft.com/graph/api/contact-delta (graph-facts §6).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::{
    collection, decode_token, encode_token, graph_error, item_not_found, json_object,
    json_response, sync_state_not_found, Query,
};
use crate::identity::access::AppPrincipal;
use crate::state::SimState;
use crate::tenant::{now_str, ChangeEvent, Contact, ContactFolder, ItemKind, Mailbox, Tenant};

/// Contact routes.
pub fn routes() -> Router<Arc<SimState>> {
    Router::new()
        .route(
            "/v1.0/users/{id}/contacts",
            get(list_default).post(create_default),
        )
        .route("/v1.0/users/{id}/contacts/delta", get(delta_default))
        .route(
            "/v1.0/users/{id}/contacts/{cid}",
            get(get_contact)
                .patch(update_contact)
                .delete(delete_contact),
        )
        .route("/v1.0/users/{id}/contacts/{cid}/photo", get(contact_photo))
        .route(
            "/v1.0/users/{id}/contacts/{cid}/photo/$value",
            get(contact_photo),
        )
        .route(
            "/v1.0/users/{id}/contactFolders",
            get(list_folders).post(create_folder),
        )
        .route("/v1.0/users/{id}/contactFolders/{fid}", get(get_folder))
        .route(
            "/v1.0/users/{id}/contactFolders/{fid}/childFolders",
            get(child_folders),
        )
        .route(
            "/v1.0/users/{id}/contactFolders/{fid}/contacts",
            get(list_in_folder).post(create_in_folder),
        )
        .route(
            "/v1.0/users/{id}/contactFolders/{fid}/contacts/delta",
            get(delta_in_folder),
        )
}

const READ: &[&str] = &["Contacts.Read", "Contacts.ReadWrite"];
const WRITE: &[&str] = &["Contacts.ReadWrite"];

/// Resolves the mailbox owner: 404 `ErrorInvalidUser` for an unknown user and
/// `MailboxNotEnabledForRESTAPI` for users without an Exchange mailbox (guests, no mail).
pub fn mailbox_user(tenant: &Tenant, id: &str) -> Result<String, Response> {
    let Some(u) = tenant.find_user(id) else {
        return Err(graph_error(
            StatusCode::NOT_FOUND,
            "ErrorInvalidUser",
            &format!("The requested user '{id}' is invalid."),
        ));
    };
    if u.mail.is_none() || u.user_type == "Guest" {
        // graph-facts §12 (OBSERVED)
        return Err(graph_error(
            StatusCode::NOT_FOUND,
            "MailboxNotEnabledForRESTAPI",
            "REST API is not yet supported for this mailbox.",
        ));
    }
    Ok(u.id.clone())
}

fn folder_json(f: &ContactFolder) -> Value {
    json!({"id": f.id, "displayName": f.display_name, "parentFolderId": f.parent_folder_id})
}

/// The folder id for a path segment (`contacts` is the default folder's alias).
fn resolve_folder(mb: &Mailbox, fid: &str) -> Option<String> {
    if fid.eq_ignore_ascii_case("contacts") {
        return Some(mb.default_folder_id.clone());
    }
    mb.has_folder(fid).then(|| fid.to_string())
}

fn select_contact(c: &Contact, select: &Option<Vec<String>>) -> Value {
    let full = c.to_json();
    match select {
        None => Value::Object(full),
        Some(sel) => {
            let mut m = Map::new();
            m.insert("id".into(), json!(c.id));
            for s in sel {
                if let Some((k, v)) = full.iter().find(|(k, _)| k.eq_ignore_ascii_case(s)) {
                    m.insert(k.clone(), v.clone());
                }
            }
            Value::Object(m)
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Offset {
    o: usize,
}

fn page_size(q: &Query, headers: &HeaderMap) -> Result<usize, Response> {
    if q.get("top").is_some() {
        return q.top(10, 1000);
    }
    Ok(super::prefer_max_page_size(headers)
        .unwrap_or(10)
        .clamp(1, 1000))
}

async fn list(
    state: Arc<SimState>,
    app: AppPrincipal,
    id: String,
    fid: Option<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    if let Err(r) = app.require(READ) {
        return r;
    }
    let q = Query::from_uri(&uri);
    let top = match page_size(&q, &headers) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let offset = q
        .get("skiptoken")
        .and_then(decode_token::<Offset>)
        .map(|o| o.o)
        .unwrap_or(0);
    let tenant = state.tenant.read().await;
    let uid = match mailbox_user(&tenant, &id) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let _guard = match tenant.runtime.enter_mailbox(&app.app_id, &uid) {
        Ok(g) => g,
        Err(r) => return r,
    };
    let mb = tenant.mailbox(&uid);
    let folder = match fid.as_deref() {
        None => mb.default_folder_id.clone(),
        Some(f) => match resolve_folder(&mb, f) {
            Some(f) => f,
            None => return item_not_found(),
        },
    };
    let select = q.select();
    let all: Vec<&Contact> = mb
        .contacts
        .values()
        .filter(|c| c.folder_id == folder)
        .collect();
    let total = all.len();
    let page: Vec<Value> = all
        .iter()
        .skip(offset)
        .take(top)
        .map(|c| select_contact(c, &select))
        .collect();
    let path = match &fid {
        None => format!("users/{uid}/contacts"),
        Some(_) => format!("users/{uid}/contactFolders/{folder}/contacts"),
    };
    let next = (offset + page.len() < total).then(|| {
        let mut params = vec![];
        if let Some(s) = q.get("select") {
            params.push(format!("$select={}", super::enc(s)));
        }
        params.push(format!("$top={top}"));
        params.push(format!(
            "$skiptoken={}",
            encode_token(&Offset {
                o: offset + page.len()
            })
        ));
        format!("{}/v1.0/{path}?{}", state.base_url, params.join("&"))
    });
    collection(
        &state,
        &format!("users('{uid}')/contacts"),
        page,
        next,
        None,
    )
}

/// `GET /v1.0/users/{id}/contacts` (app: Contacts.Read): the default folder.
async fn list_default(
    State(state): State<Arc<SimState>>,
    app: AppPrincipal,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    list(state, app, id, None, headers, uri).await
}

/// `GET /v1.0/users/{id}/contactFolders/{fid}/contacts` (app: Contacts.Read).
async fn list_in_folder(
    State(state): State<Arc<SimState>>,
    app: AppPrincipal,
    Path((id, fid)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    list(state, app, id, Some(fid), headers, uri).await
}

/// `GET /v1.0/users/{id}/contacts/{cid}` (app: Contacts.Read).
async fn get_contact(
    State(state): State<Arc<SimState>>,
    app: AppPrincipal,
    Path((id, cid)): Path<(String, String)>,
    uri: Uri,
) -> Response {
    if let Err(r) = app.require(READ) {
        return r;
    }
    let q = Query::from_uri(&uri);
    let tenant = state.tenant.read().await;
    let uid = match mailbox_user(&tenant, &id) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let mb = tenant.mailbox(&uid);
    match mb.contacts.get(&cid) {
        Some(c) => json_response(StatusCode::OK, select_contact(c, &q.select())),
        None => item_not_found(),
    }
}

/// `GET /v1.0/users/{id}/contactFolders` (app: Contacts.Read): folders under the default one.
async fn list_folders(
    State(state): State<Arc<SimState>>,
    app: AppPrincipal,
    Path(id): Path<String>,
) -> Response {
    folders_under(state, app, id, None).await
}

/// `GET /v1.0/users/{id}/contactFolders/{fid}/childFolders` (app: Contacts.Read).
async fn child_folders(
    State(state): State<Arc<SimState>>,
    app: AppPrincipal,
    Path((id, fid)): Path<(String, String)>,
) -> Response {
    folders_under(state, app, id, Some(fid)).await
}

async fn folders_under(
    state: Arc<SimState>,
    app: AppPrincipal,
    id: String,
    fid: Option<String>,
) -> Response {
    if let Err(r) = app.require(READ) {
        return r;
    }
    let tenant = state.tenant.read().await;
    let uid = match mailbox_user(&tenant, &id) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let _guard = match tenant.runtime.enter_mailbox(&app.app_id, &uid) {
        Ok(g) => g,
        Err(r) => return r,
    };
    let mb = tenant.mailbox(&uid);
    let parent = match fid {
        None => mb.default_folder_id.clone(),
        Some(f) => match resolve_folder(&mb, &f) {
            Some(f) => f,
            None => return item_not_found(),
        },
    };
    let items = mb
        .folders
        .iter()
        .filter(|f| f.parent_folder_id == parent)
        .map(folder_json)
        .collect();
    collection(
        &state,
        &format!("users('{uid}')/contactFolders"),
        items,
        None,
        None,
    )
}

/// `GET /v1.0/users/{id}/contactFolders/{fid}` (app: Contacts.Read); `contacts` = default folder.
async fn get_folder(
    State(state): State<Arc<SimState>>,
    app: AppPrincipal,
    Path((id, fid)): Path<(String, String)>,
) -> Response {
    if let Err(r) = app.require(READ) {
        return r;
    }
    let tenant = state.tenant.read().await;
    let uid = match mailbox_user(&tenant, &id) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let mb = tenant.mailbox(&uid);
    let Some(f) = resolve_folder(&mb, &fid) else {
        return item_not_found();
    };
    if f == mb.default_folder_id {
        // The root folder's parent is the mailbox root (an id the client never needs).
        return json_response(
            StatusCode::OK,
            json!({"id": f, "displayName": "Contacts", "parentFolderId": crate::tenant::derived_id(&uid, "root")}),
        );
    }
    let folder = mb.folders.iter().find(|x| x.id == f).expect("resolved");
    json_response(StatusCode::OK, folder_json(folder))
}

/// `POST /v1.0/users/{id}/contactFolders` `{"displayName"}` (app: Contacts.ReadWrite) → 201.
async fn create_folder(
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
    let Some(name) = obj
        .get("displayName")
        .and_then(|v| v.as_str())
        .filter(|s| !s.trim().is_empty())
    else {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "ErrorInvalidRequest",
            "displayName is required.",
        );
    };
    let mut tenant = state.tenant.write().await;
    let uid = match mailbox_user(&tenant, &id) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let mb = tenant.mailbox_mut(&uid);
    if mb.folders.iter().any(|f| {
        f.display_name.eq_ignore_ascii_case(name) && f.parent_folder_id == mb.default_folder_id
    }) {
        return graph_error(
            StatusCode::CONFLICT,
            "ErrorFolderExists",
            "A folder with the specified name already exists.",
        );
    }
    let f = ContactFolder {
        id: crate::tenant::derived_id(&uid, &crate::tenant::new_id()),
        display_name: name.to_string(),
        parent_folder_id: mb.default_folder_id.clone(),
    };
    let body = folder_json(&f);
    mb.folders.push(f);
    json_response(StatusCode::CREATED, body)
}

fn contact_change(uid: &str, folder: &str, cid: &str, change_type: &'static str) -> ChangeEvent {
    ChangeEvent {
        collection: format!("users/{uid}/contactFolders/{folder}/contacts"),
        id: cid.to_string(),
        change_type,
        resource: format!("Users/{uid}/Contacts/{cid}"),
        odata_type: "#Microsoft.Graph.Contact",
    }
}

fn invalid(e: crate::seed::SeedError) -> Response {
    graph_error(StatusCode::BAD_REQUEST, "ErrorInvalidProperty", &e.0)
}

async fn create(
    state: Arc<SimState>,
    app: AppPrincipal,
    id: String,
    fid: Option<String>,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = app.require(WRITE) {
        return r;
    }
    let mut props = match json_object(&body) {
        Ok(o) => o,
        Err(r) => return r,
    };
    for k in [
        "id",
        "parentFolderId",
        "changeKey",
        "createdDateTime",
        "lastModifiedDateTime",
    ] {
        props.remove(k);
    }
    if let Err(e) = crate::seed::validate_contact(&props, "contact") {
        return invalid(e);
    }
    fill_display_name(&mut props);
    let mut tenant = state.tenant.write().await;
    let uid = match mailbox_user(&tenant, &id) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let _guard = match tenant.runtime.enter_mailbox(&app.app_id, &uid) {
        Ok(g) => g,
        Err(r) => return r,
    };
    let mb = tenant.mailbox_mut(&uid);
    let folder = match fid.as_deref() {
        None => mb.default_folder_id.clone(),
        Some(f) => match resolve_folder(mb, f) {
            Some(f) => f,
            None => return item_not_found(),
        },
    };
    let now = now_str();
    let c = Contact {
        id: crate::tenant::derived_id(&uid, &crate::tenant::new_id()),
        folder_id: folder.clone(),
        props,
        created: now.clone(),
        modified: now,
        change_key: crate::tenant::new_id()[..8].to_string(),
    };
    let cid = c.id.clone();
    let body = Value::Object(c.to_json());
    mb.contacts.insert(cid.clone(), c);
    tenant.log_mailbox(&uid, ItemKind::Contact, &cid, &folder, None, false);
    super::subscriptions::publish(
        &state,
        &mut tenant,
        vec![contact_change(&uid, &folder, &cid, "created")],
    );
    json_response(StatusCode::CREATED, body)
}

/// Outlook regenerates `displayName` from the name parts when it is not given (graph-facts §6).
fn fill_display_name(props: &mut Map<String, Value>) {
    if props
        .get("displayName")
        .and_then(|v| v.as_str())
        .is_some_and(|s| !s.is_empty())
    {
        return;
    }
    let parts: Vec<&str> = ["givenName", "middleName", "surname"]
        .iter()
        .filter_map(|k| props.get(*k).and_then(|v| v.as_str()))
        .filter(|s| !s.is_empty())
        .collect();
    if !parts.is_empty() {
        let name = parts.join(" ");
        props.insert("displayName".into(), json!(name));
    }
}

/// `POST /v1.0/users/{id}/contacts` (app: Contacts.ReadWrite) → 201 with the contact.
async fn create_default(
    State(state): State<Arc<SimState>>,
    app: AppPrincipal,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    create(state, app, id, None, body).await
}

/// `POST /v1.0/users/{id}/contactFolders/{fid}/contacts` (app: Contacts.ReadWrite) → 201.
async fn create_in_folder(
    State(state): State<Arc<SimState>>,
    app: AppPrincipal,
    Path((id, fid)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    create(state, app, id, Some(fid), body).await
}

/// `PATCH /v1.0/users/{id}/contacts/{cid}` (app: Contacts.ReadWrite) → 200 with the contact.
async fn update_contact(
    State(state): State<Arc<SimState>>,
    app: AppPrincipal,
    Path((id, cid)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = app.require(WRITE) {
        return r;
    }
    let patch = match json_object(&body) {
        Ok(o) => o,
        Err(r) => return r,
    };
    if let Err(e) = crate::seed::validate_contact(&patch, "contact") {
        return invalid(e);
    }
    let mut tenant = state.tenant.write().await;
    let uid = match mailbox_user(&tenant, &id) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let _guard = match tenant.runtime.enter_mailbox(&app.app_id, &uid) {
        Ok(g) => g,
        Err(r) => return r,
    };
    let mb = tenant.mailbox_mut(&uid);
    let Some(c) = mb.contacts.get_mut(&cid) else {
        return item_not_found();
    };
    for (k, v) in patch {
        if [
            "id",
            "parentFolderId",
            "changeKey",
            "createdDateTime",
            "lastModifiedDateTime",
        ]
        .contains(&k.as_str())
        {
            continue;
        }
        c.props.insert(k, v);
    }
    c.modified = now_str();
    c.change_key = crate::tenant::new_id()[..8].to_string();
    let folder = c.folder_id.clone();
    let body = Value::Object(c.to_json());
    tenant.log_mailbox(&uid, ItemKind::Contact, &cid, &folder, None, false);
    super::subscriptions::publish(
        &state,
        &mut tenant,
        vec![contact_change(&uid, &folder, &cid, "updated")],
    );
    json_response(StatusCode::OK, body)
}

/// `DELETE /v1.0/users/{id}/contacts/{cid}` (app: Contacts.ReadWrite) → 204.
async fn delete_contact(
    State(state): State<Arc<SimState>>,
    app: AppPrincipal,
    Path((id, cid)): Path<(String, String)>,
) -> Response {
    if let Err(r) = app.require(WRITE) {
        return r;
    }
    let mut tenant = state.tenant.write().await;
    let uid = match mailbox_user(&tenant, &id) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let _guard = match tenant.runtime.enter_mailbox(&app.app_id, &uid) {
        Ok(g) => g,
        Err(r) => return r,
    };
    let Some(c) = tenant.mailbox_mut(&uid).contacts.remove(&cid) else {
        return item_not_found();
    };
    tenant.log_mailbox(&uid, ItemKind::Contact, &cid, &c.folder_id, None, true);
    super::subscriptions::publish(
        &state,
        &mut tenant,
        vec![contact_change(&uid, &c.folder_id, &cid, "deleted")],
    );
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Serialize, Deserialize, Clone)]
struct ContactDeltaToken {
    i: String,
    e: u64,
    s: u64,
    u: String,
    f: String,
    #[serde(default)]
    sel: Option<Vec<String>>,
    #[serde(default)]
    o: usize,
    #[serde(default)]
    from: Option<u64>,
    #[serde(default)]
    first: bool,
}

async fn delta(
    state: Arc<SimState>,
    app: AppPrincipal,
    id: String,
    fid: Option<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    if let Err(r) = app.require(READ) {
        return r;
    }
    let q = Query::from_uri(&uri);
    let size = super::prefer_max_page_size(&headers)
        .unwrap_or(10)
        .clamp(1, 1000);
    let tenant = state.tenant.read().await;
    let settings = tenant.runtime.settings();
    let uid = match mailbox_user(&tenant, &id) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let _guard = match tenant.runtime.enter_mailbox(&app.app_id, &uid) {
        Ok(g) => g,
        Err(r) => return r,
    };
    let mb = tenant.mailbox(&uid);
    let folder = match fid.as_deref() {
        None => mb.default_folder_id.clone(),
        Some(f) => match resolve_folder(&mb, f) {
            Some(f) => f,
            None => return item_not_found(),
        },
    };
    let epoch = state.delta_epoch();
    let is_delta_call = q.get("deltatoken").is_some();
    let tok = match q.get("deltatoken").or(q.get("skiptoken")) {
        Some(t) => match decode_token::<ContactDeltaToken>(t) {
            // Outlook: 410 SyncStateNotFound (graph-facts §6).
            Some(t) if t.i == tenant.instance && t.e >= epoch && t.u == uid && t.f == folder => t,
            _ => return sync_state_not_found(false, &settings),
        },
        None => ContactDeltaToken {
            i: tenant.instance.clone(),
            e: epoch,
            s: tenant.seq,
            u: uid.clone(),
            f: folder.clone(),
            sel: q.select(),
            o: 0,
            from: None,
            first: true,
        },
    };
    let first = tok.first && !is_delta_call;
    let (items, upper): (Vec<Value>, u64) = if first {
        (
            mb.contacts
                .values()
                .filter(|c| c.folder_id == folder)
                .map(|c| select_contact(c, &tok.sel))
                .collect(),
            tok.s,
        )
    } else {
        let (lower, upper) = match (is_delta_call, tok.from) {
            (false, Some(f)) => (f, tok.s),
            _ => (tok.s, tenant.seq),
        };
        let mut seen: Vec<&str> = Vec::new();
        let mut out = Vec::new();
        for c in mb
            .log
            .iter()
            .rev()
            .filter(|c| c.kind == ItemKind::Contact && c.seq > lower && c.seq <= upper)
        {
            if seen.contains(&c.id.as_str()) {
                continue;
            }
            seen.push(&c.id);
            match mb.contacts.get(&c.id).filter(|x| x.folder_id == folder) {
                Some(contact) => out.push(select_contact(contact, &tok.sel)),
                None if c.folder_id == folder => {
                    out.push(json!({"id": c.id, "@removed": {"reason": "deleted"}}))
                }
                None => {}
            }
        }
        out.reverse();
        (out, upper)
    };
    let offset = if is_delta_call { 0 } else { tok.o };
    let total = items.len();
    let page: Vec<Value> = items.into_iter().skip(offset).take(size).collect();
    let base = match &fid {
        None => format!("{}/v1.0/users/{uid}/contacts/delta", state.base_url),
        Some(_) => format!(
            "{}/v1.0/users/{uid}/contactFolders/{folder}/contacts/delta",
            state.base_url
        ),
    };
    let ctx = format!("users('{uid}')/contacts");
    if offset + page.len() < total {
        let next = ContactDeltaToken {
            s: upper,
            o: offset + page.len(),
            from: if first {
                None
            } else if is_delta_call {
                Some(tok.s)
            } else {
                tok.from
            },
            first,
            ..tok.clone()
        };
        return collection(
            &state,
            &ctx,
            page,
            Some(format!("{base}?$skiptoken={}", encode_token(&next))),
            None,
        );
    }
    let done = ContactDeltaToken {
        s: upper,
        o: 0,
        from: None,
        first: false,
        ..tok
    };
    collection(
        &state,
        &ctx,
        page,
        None,
        Some(format!("{base}?$deltatoken={}", encode_token(&done))),
    )
}

/// `GET /v1.0/users/{id}/contacts/delta` (app: Contacts.Read): delta of the default folder.
async fn delta_default(
    State(state): State<Arc<SimState>>,
    app: AppPrincipal,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    delta(state, app, id, None, headers, uri).await
}

/// `GET /v1.0/users/{id}/contactFolders/{fid}/contacts/delta` (app: Contacts.Read).
async fn delta_in_folder(
    State(state): State<Arc<SimState>>,
    app: AppPrincipal,
    Path((id, fid)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    delta(state, app, id, Some(fid), headers, uri).await
}

/// `GET /v1.0/users/{id}/contacts/{cid}/photo[/$value]` (app: Contacts.Read): the sim stores no
/// contact photos, so an existing contact answers 404 `ImageNotFound` like a contact without one.
async fn contact_photo(
    State(state): State<Arc<SimState>>,
    app: AppPrincipal,
    Path((id, cid)): Path<(String, String)>,
) -> Response {
    if let Err(r) = app.require(READ) {
        return r;
    }
    let tenant = state.tenant.read().await;
    let uid = match mailbox_user(&tenant, &id) {
        Ok(u) => u,
        Err(r) => return r,
    };
    if !tenant.mailbox(&uid).contacts.contains_key(&cid) {
        return item_not_found();
    }
    graph_error(
        StatusCode::NOT_FOUND,
        "ImageNotFound",
        "The photo wasn't found.",
    )
}
