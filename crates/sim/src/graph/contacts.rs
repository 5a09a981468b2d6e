//! Personal contacts: `/users/{id}/contacts`, `/users/{id}/contactFolders` (+ `childFolders`,
//! `contacts`, the `contacts` alias for the default folder), writes, and per-folder delta.
//!
//! Docs: https://learn.microsoft.com/graph/api/user-list-contacts ·
//! https://learn.microsoft.com/graph/api/resources/contactfolder ·
//! https://learn.microsoft.com/graph/api/contact-delta (graph-facts §6).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::outlook::{ContactsRead, ContactsWrite, Outlook};
use super::{
    collection, decode_token, encode_token, graph_error, item_not_found, json_object,
    json_response, sync_state_not_found,
};
use crate::state::SimState;
use crate::tenant::{merge_props, now_str, ChangeEvent, Contact, ContactFolder, ItemKind, Mailbox};

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
            m.insert("@odata.etag".into(), full["@odata.etag"].clone());
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

async fn list(
    state: Arc<SimState>,
    call: Outlook<ContactsRead>,
    fid: Option<String>,
) -> Result<Response, Response> {
    let page = call.page()?;
    let uid = &call.user_id;
    let tenant = state.tenant.read().await;
    let mb = tenant.mailbox(uid);
    let folder = match fid.as_deref() {
        None => mb.default_folder_id.clone(),
        Some(f) => match resolve_folder(&mb, f) {
            Some(f) => f,
            None => return Err(item_not_found()),
        },
    };
    let select = call.query.select();
    let all: Vec<&Contact> = mb
        .contacts
        .values()
        .filter(|c| c.folder_id == folder)
        .collect();
    let total = all.len();
    let items: Vec<Value> = all
        .iter()
        .skip(page.offset)
        .take(page.top)
        .map(|c| select_contact(c, &select))
        .collect();
    let path = match &fid {
        None => format!("users/{uid}/contacts"),
        Some(_) => format!("users/{uid}/contactFolders/{folder}/contacts"),
    };
    let next = page
        .after(items.len(), total)
        .map(|n| call.next_link(&state, &path, &[], &["select"], n));
    Ok(collection(
        &state,
        &format!("users('{uid}')/contacts"),
        items,
        next,
        None,
    ))
}

/// `GET /v1.0/users/{id}/contacts` (app: Contacts.Read): the default folder.
async fn list_default(
    State(state): State<Arc<SimState>>,
    call: Outlook<ContactsRead>,
) -> Result<Response, Response> {
    list(state, call, None).await
}

/// `GET /v1.0/users/{id}/contactFolders/{fid}/contacts` (app: Contacts.Read).
async fn list_in_folder(
    State(state): State<Arc<SimState>>,
    call: Outlook<ContactsRead>,
    Path((_, fid)): Path<(String, String)>,
) -> Result<Response, Response> {
    list(state, call, Some(fid)).await
}

/// `GET /v1.0/users/{id}/contacts/{cid}` (app: Contacts.Read).
async fn get_contact(
    State(state): State<Arc<SimState>>,
    call: Outlook<ContactsRead>,
    Path((_, cid)): Path<(String, String)>,
) -> Result<Response, Response> {
    let tenant = state.tenant.read().await;
    let mb = tenant.mailbox(&call.user_id);
    let c = mb.contacts.get(&cid).ok_or_else(item_not_found)?;
    Ok(json_response(
        StatusCode::OK,
        select_contact(c, &call.query.select()),
    ))
}

/// `GET /v1.0/users/{id}/contactFolders` (app: Contacts.Read): folders under the default one.
async fn list_folders(
    State(state): State<Arc<SimState>>,
    call: Outlook<ContactsRead>,
) -> Result<Response, Response> {
    folders_under(state, call, None).await
}

/// `GET /v1.0/users/{id}/contactFolders/{fid}/childFolders` (app: Contacts.Read).
async fn child_folders(
    State(state): State<Arc<SimState>>,
    call: Outlook<ContactsRead>,
    Path((_, fid)): Path<(String, String)>,
) -> Result<Response, Response> {
    folders_under(state, call, Some(fid)).await
}

async fn folders_under(
    state: Arc<SimState>,
    call: Outlook<ContactsRead>,
    fid: Option<String>,
) -> Result<Response, Response> {
    let uid = &call.user_id;
    let tenant = state.tenant.read().await;
    let mb = tenant.mailbox(uid);
    let parent = match fid {
        None => mb.default_folder_id.clone(),
        Some(f) => match resolve_folder(&mb, &f) {
            Some(f) => f,
            None => return Err(item_not_found()),
        },
    };
    let items = mb
        .folders
        .iter()
        .filter(|f| f.parent_folder_id == parent)
        .map(folder_json)
        .collect();
    Ok(collection(
        &state,
        &format!("users('{uid}')/contactFolders"),
        items,
        None,
        None,
    ))
}

/// `GET /v1.0/users/{id}/contactFolders/{fid}` (app: Contacts.Read); `contacts` = default folder.
async fn get_folder(
    State(state): State<Arc<SimState>>,
    call: Outlook<ContactsRead>,
    Path((_, fid)): Path<(String, String)>,
) -> Result<Response, Response> {
    let uid = &call.user_id;
    let tenant = state.tenant.read().await;
    let mb = tenant.mailbox(uid);
    let f = resolve_folder(&mb, &fid).ok_or_else(item_not_found)?;
    if f == mb.default_folder_id {
        // The root folder's parent is the mailbox root (an id the client never needs).
        return Err(json_response(
            StatusCode::OK,
            json!({"id": f, "displayName": "Contacts", "parentFolderId": crate::tenant::derived_id(uid, "root")}),
        ));
    }
    let folder = mb.folders.iter().find(|x| x.id == f).expect("resolved");
    Ok(json_response(StatusCode::OK, folder_json(folder)))
}

/// `POST /v1.0/users/{id}/contactFolders` `{"displayName"}` (app: Contacts.ReadWrite) → 201.
async fn create_folder(
    State(state): State<Arc<SimState>>,
    call: Outlook<ContactsWrite>,
    body: axum::body::Bytes,
) -> Result<Response, Response> {
    let obj = json_object(&body)?;
    let Some(name) = obj
        .get("displayName")
        .and_then(|v| v.as_str())
        .filter(|s| !s.trim().is_empty())
    else {
        return Err(graph_error(
            StatusCode::BAD_REQUEST,
            "ErrorInvalidRequest",
            "displayName is required.",
        ));
    };
    let mut tenant = state.tenant.write().await;
    let uid = call.user_id.clone();
    let mb = call.mailbox_mut(&mut tenant)?;
    if mb.folders.iter().any(|f| {
        f.display_name.eq_ignore_ascii_case(name) && f.parent_folder_id == mb.default_folder_id
    }) {
        return Err(graph_error(
            StatusCode::CONFLICT,
            "ErrorFolderExists",
            "A folder with the specified name already exists.",
        ));
    }
    let f = ContactFolder {
        id: crate::tenant::derived_id(&uid, &crate::tenant::new_id()),
        display_name: name.to_string(),
        parent_folder_id: mb.default_folder_id.clone(),
    };
    let body = folder_json(&f);
    mb.folders.push(f);
    Ok(json_response(StatusCode::CREATED, body))
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
    call: Outlook<ContactsWrite>,
    fid: Option<String>,
    body: axum::body::Bytes,
) -> Result<Response, Response> {
    let mut props = json_object(&body)?;
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
        return Err(invalid(e));
    }
    fill_display_name(&mut props);
    let mut tenant = state.tenant.write().await;
    let uid = call.user_id.clone();
    let mb = call.mailbox_mut(&mut tenant)?;
    let folder = match fid.as_deref() {
        None => mb.default_folder_id.clone(),
        Some(f) => match resolve_folder(mb, f) {
            Some(f) => f,
            None => return Err(item_not_found()),
        },
    };
    let now = now_str();
    let c = Contact {
        id: crate::tenant::derived_id(&uid, &crate::tenant::new_id()),
        folder_id: folder.clone(),
        props,
        created: now.clone(),
        modified: now,
        change_key: crate::tenant::new_change_key(),
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
    Ok(json_response(StatusCode::CREATED, body))
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
    call: Outlook<ContactsWrite>,
    body: axum::body::Bytes,
) -> Result<Response, Response> {
    create(state, call, None, body).await
}

/// `POST /v1.0/users/{id}/contactFolders/{fid}/contacts` (app: Contacts.ReadWrite) → 201.
async fn create_in_folder(
    State(state): State<Arc<SimState>>,
    call: Outlook<ContactsWrite>,
    Path((_, fid)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Response, Response> {
    create(state, call, Some(fid), body).await
}

/// `PATCH /v1.0/users/{id}/contacts/{cid}` (app: Contacts.ReadWrite) → 200 with the contact.
async fn update_contact(
    State(state): State<Arc<SimState>>,
    call: Outlook<ContactsWrite>,
    Path((_, cid)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Response, Response> {
    let patch = json_object(&body)?;
    if let Err(e) = crate::seed::validate_contact(&patch, "contact") {
        return Err(invalid(e));
    }
    let mut tenant = state.tenant.write().await;
    let uid = call.user_id.clone();
    let mb = call.mailbox_mut(&mut tenant)?;
    let c = mb.contacts.get_mut(&cid).ok_or_else(item_not_found)?;
    merge_props(
        &mut c.props,
        patch,
        &[
            "id",
            "parentFolderId",
            "changeKey",
            "createdDateTime",
            "lastModifiedDateTime",
        ],
    );
    c.modified = now_str();
    c.change_key = crate::tenant::new_change_key();
    let folder = c.folder_id.clone();
    let body = Value::Object(c.to_json());
    tenant.log_mailbox(&uid, ItemKind::Contact, &cid, &folder, None, false);
    super::subscriptions::publish(
        &state,
        &mut tenant,
        vec![contact_change(&uid, &folder, &cid, "updated")],
    );
    Ok(json_response(StatusCode::OK, body))
}

/// `DELETE /v1.0/users/{id}/contacts/{cid}` (app: Contacts.ReadWrite) → 204.
async fn delete_contact(
    State(state): State<Arc<SimState>>,
    call: Outlook<ContactsWrite>,
    Path((_, cid)): Path<(String, String)>,
) -> Result<Response, Response> {
    let mut tenant = state.tenant.write().await;
    let uid = call.user_id.clone();
    let mb = call.mailbox_mut(&mut tenant)?;
    let c = mb.contacts.remove(&cid).ok_or_else(item_not_found)?;
    tenant.log_mailbox(&uid, ItemKind::Contact, &cid, &c.folder_id, None, true);
    super::subscriptions::publish(
        &state,
        &mut tenant,
        vec![contact_change(&uid, &c.folder_id, &cid, "deleted")],
    );
    Ok(StatusCode::NO_CONTENT.into_response())
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
    call: Outlook<ContactsRead>,
    fid: Option<String>,
) -> Result<Response, Response> {
    let q = &call.query;
    let size = call.delta_page_size();
    let tenant = state.tenant.read().await;
    let settings = state.runtime.settings();
    let uid = call.user_id.clone();
    let mb = tenant.mailbox(&uid);
    let folder = match fid.as_deref() {
        None => mb.default_folder_id.clone(),
        Some(f) => match resolve_folder(&mb, f) {
            Some(f) => f,
            None => return Err(item_not_found()),
        },
    };
    let epoch = state.delta_epoch();
    let is_delta_call = q.get("deltatoken").is_some();
    let tok = match q.get("deltatoken").or(q.get("skiptoken")) {
        Some(t) => match decode_token::<ContactDeltaToken>(t) {
            // Outlook: 410 SyncStateNotFound (graph-facts §6).
            Some(t) if t.i == tenant.instance && t.e >= epoch && t.u == uid && t.f == folder => t,
            _ => return Err(sync_state_not_found(false, &settings)),
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
    let offset = if is_delta_call { 0 } else { tok.o };
    // The first round's pages: only the page's contacts are rendered (a 10,000-contact folder
    // is read in 100 pages); later rounds read the change log, which is short.
    let mut skipped = 0;
    let (items, upper): (Vec<Value>, u64) = if first {
        let all: Vec<&Contact> = mb
            .contacts
            .values()
            .filter(|c| c.folder_id == folder)
            .collect();
        skipped = offset.min(all.len());
        let page = all.len().min(offset + size);
        (
            all[skipped..page]
                .iter()
                .map(|c| select_contact(c, &tok.sel))
                .collect::<Vec<Value>>()
                .into_iter()
                .chain(std::iter::repeat_n(Value::Null, all.len() - page))
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
    // Delta items name their type (https://learn.microsoft.com/graph/api/contact-delta, response example).
    let total = skipped + items.len();
    let items: Vec<Value> = items
        .into_iter()
        .skip(offset - skipped)
        .take(size)
        .collect();
    let page = super::typed_items(items, "#microsoft.graph.contact");
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
        return Err(collection(
            &state,
            &ctx,
            page,
            Some(format!("{base}?$skiptoken={}", encode_token(&next))),
            None,
        ));
    }
    let done = ContactDeltaToken {
        s: upper,
        o: 0,
        from: None,
        first: false,
        ..tok
    };
    Ok(collection(
        &state,
        &ctx,
        page,
        None,
        Some(format!("{base}?$deltatoken={}", encode_token(&done))),
    ))
}

/// `GET /v1.0/users/{id}/contacts/delta` (app: Contacts.Read): delta of the default folder.
async fn delta_default(
    State(state): State<Arc<SimState>>,
    call: Outlook<ContactsRead>,
) -> Result<Response, Response> {
    delta(state, call, None).await
}

/// `GET /v1.0/users/{id}/contactFolders/{fid}/contacts/delta` (app: Contacts.Read).
async fn delta_in_folder(
    State(state): State<Arc<SimState>>,
    call: Outlook<ContactsRead>,
    Path((_, fid)): Path<(String, String)>,
) -> Result<Response, Response> {
    delta(state, call, Some(fid)).await
}

/// `GET /v1.0/users/{id}/contacts/{cid}/photo[/$value]` (app: Contacts.Read): the sim stores no
/// contact photos, so an existing contact answers 404 `ImageNotFound` like a contact without one.
async fn contact_photo(
    State(state): State<Arc<SimState>>,
    call: Outlook<ContactsRead>,
    Path((_, cid)): Path<(String, String)>,
) -> Result<Response, Response> {
    let tenant = state.tenant.read().await;
    let uid = call.user_id.clone();
    if !tenant.mailbox(&uid).contacts.contains_key(&cid) {
        return Err(item_not_found());
    }
    Ok(graph_error(
        StatusCode::NOT_FOUND,
        "ImageNotFound",
        "The photo wasn't found.",
    ))
}
