//! Change notifications: `/subscriptions` (create with the validation handshake, renew, delete,
//! reauthorize, list), background delivery with retries, and lifecycle notifications triggered
//! through `POST /_sim/subscriptions/{id}/lifecycle`.
//!
//! Docs: https://learn.microsoft.com/graph/api/subscription-post-subscriptions ·
//! https://learn.microsoft.com/graph/change-notifications-delivery-webhooks ·
//! https://learn.microsoft.com/graph/change-notifications-lifecycle-events (graph-facts §8).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::{collection, graph_error, json_object, json_response, sim_error};
use crate::identity::access::AppPrincipal;
use crate::runtime::DeliveryStats;
use crate::state::SimState;
use crate::tenant::{ChangeEvent, Subscription, Tenant};

/// The subscription as Graph returns it. `clientState` is echoed only to the create and update
/// calls that set it (the documented response of
/// https://learn.microsoft.com/graph/api/subscription-post-subscriptions carries the value sent);
/// reads never return the secret.
fn subscription_json(sub: &Subscription, echo_client_state: bool) -> Value {
    let client_state = sub.client_state.as_ref().filter(|_| echo_client_state);
    json!({
        "id": sub.id,
        "resource": sub.resource,
        "applicationId": sub.app_id,
        "changeType": sub.change_type,
        "clientState": client_state,
        "notificationUrl": sub.notification_url,
        "lifecycleNotificationUrl": sub.lifecycle_url,
        "expirationDateTime": fmt_time(sub.expiration),
        "creatorId": sub.app_id,
        "includeResourceData": sub.include_resource_data,
        "latestSupportedTlsVersion": sub.tls_version,
        "encryptionCertificate": null,
        "encryptionCertificateId": null,
        "notificationQueryOptions": null,
        "notificationUrlAppId": null,
        // Only JSON notifications exist in v1.0 (https://learn.microsoft.com/graph/api/resources/subscription).
        "notificationContentType": "application/json",
    })
}

fn fmt_time(t: DateTime<Utc>) -> String {
    format!("{}Z", crate::tz::fmt_local(t.naive_utc()))
}

/// Subscription routes.
pub fn routes() -> Router<Arc<SimState>> {
    Router::new()
        .route("/v1.0/subscriptions", get(list).post(create))
        .route(
            "/v1.0/subscriptions/{id}",
            get(get_one).patch(renew).delete(remove),
        )
        .route("/v1.0/subscriptions/{id}/reauthorize", post(reauthorize))
}

/// Resource kinds: (collection key, permission needed, is Outlook).
fn classify(tenant: &Tenant, resource: &str) -> Option<(String, &'static [&'static str], bool)> {
    let r = resource.trim().trim_start_matches('/');
    let r = r.split('?').next().unwrap_or(r);
    let parts: Vec<&str> = r.split('/').collect();
    match parts.as_slice() {
        [u] if u.eq_ignore_ascii_case("users") => Some(("users".into(), &["User.Read.All"], false)),
        [g] if g.eq_ignore_ascii_case("groups") => Some((
            "groups".into(),
            &["Group.Read.All", "GroupMember.Read.All"],
            false,
        )),
        [u, id] if u.eq_ignore_ascii_case("users") => {
            let uid = tenant.user_id(id)?;
            Some((format!("users/{uid}"), &["User.Read.All"], false))
        }
        [u, id, c] if u.eq_ignore_ascii_case("users") && c.eq_ignore_ascii_case("contacts") => {
            let uid = tenant.user_id(id)?;
            Some((format!("users/{uid}/contacts"), &["Contacts.Read"], true))
        }
        [u, id, cf, fid, c]
            if u.eq_ignore_ascii_case("users")
                && cf.eq_ignore_ascii_case("contactFolders")
                && c.eq_ignore_ascii_case("contacts") =>
        {
            let uid = tenant.user_id(id)?;
            let mb = tenant.mailbox(&uid);
            let fid = if fid.eq_ignore_ascii_case("contacts") {
                mb.default_folder_id.clone()
            } else {
                fid.to_string()
            };
            if !mb.has_folder(&fid) {
                return None;
            }
            Some((
                format!("users/{uid}/contactFolders/{fid}/contacts"),
                &["Contacts.Read"],
                true,
            ))
        }
        [u, id, e]
            if u.eq_ignore_ascii_case("users")
                && (e.eq_ignore_ascii_case("events") || e.eq_ignore_ascii_case("calendar")) =>
        {
            let uid = tenant.user_id(id)?;
            Some((format!("users/{uid}/events"), &["Calendars.Read"], true))
        }
        [u, id, c, e]
            if u.eq_ignore_ascii_case("users")
                && c.eq_ignore_ascii_case("calendar")
                && e.eq_ignore_ascii_case("events") =>
        {
            let uid = tenant.user_id(id)?;
            Some((format!("users/{uid}/events"), &["Calendars.Read"], true))
        }
        _ => None,
    }
}

fn invalid(msg: &str) -> Response {
    graph_error(StatusCode::BAD_REQUEST, "InvalidRequest", msg)
}

/// https only, except http to a loopback host (issue 3).
fn check_url(field: &str, u: &str) -> Result<(), Response> {
    let parsed = url::Url::parse(u)
        .map_err(|_| invalid(&format!("The {field} must be a valid absolute URL.")))?;
    let loopback = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(invalid(&format!("The {field} must be an https URL."))),
    }
}

/// Sends the validation request and checks the echoed token (graph-facts §8).
async fn validate_endpoint(state: &SimState, url: &str, timeout_ms: u64) -> bool {
    let token = format!(
        "Validation: Testing client application reachability for subscription Request-Id: {}",
        uuid::Uuid::new_v4()
    );
    let sep = if url.contains('?') { '&' } else { '?' };
    let full = format!("{url}{sep}validationToken={}", super::enc(&token));
    let resp = state
        .http
        .post(full)
        .header("content-type", "text/plain; charset=utf-8")
        .timeout(Duration::from_millis(timeout_ms))
        .send()
        .await;
    match resp {
        Ok(r) if r.status() == reqwest::StatusCode::OK => {
            r.text().await.map(|b| b == token).unwrap_or(false)
        }
        _ => false,
    }
}

fn max_minutes(s: &crate::runtime::GraphSettings, outlook: bool, rich: bool) -> i64 {
    match (outlook, rich) {
        (false, _) => s.max_directory_subscription_minutes,
        (true, false) => s.max_outlook_subscription_minutes,
        (true, true) => s.max_outlook_rich_subscription_minutes,
    }
}

/// Applies the lifetime rules: under 45 min is raised to 45, over the maximum is refused.
fn clamp_expiry(
    s: &crate::runtime::GraphSettings,
    requested: &str,
    outlook: bool,
    rich: bool,
) -> Result<DateTime<Utc>, Response> {
    let exp = DateTime::parse_from_rfc3339(requested)
        .map_err(|_| {
            invalid("expirationDateTime must be an ISO 8601 date and time with a time zone.")
        })?
        .with_timezone(&Utc);
    let now = Utc::now();
    let max = max_minutes(s, outlook, rich);
    // https://learn.microsoft.com/graph/api/resources/subscription (expirationDateTime)
    if exp > now + chrono::Duration::minutes(max) + chrono::Duration::seconds(60) {
        return Err(invalid(&format!(
            "Subscription expiration can only be {max} minutes in the future."
        )));
    }
    let min = now + chrono::Duration::minutes(s.min_subscription_minutes);
    Ok(exp.max(min))
}

/// `POST /v1.0/subscriptions` (app: the read permission of the resource) → 201.
async fn create(
    State(state): State<Arc<SimState>>,
    app: AppPrincipal,
    body: axum::body::Bytes,
) -> Response {
    let obj = match json_object(&body) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let get_s = |k: &str| obj.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let Some(resource) = get_s("resource") else {
        return invalid("resource is required.");
    };
    let Some(change_type) = get_s("changeType") else {
        return invalid("changeType is required.");
    };
    for ct in change_type.split(',') {
        if !["created", "updated", "deleted"].contains(&ct.trim()) {
            return invalid(&format!("Invalid changeType '{ct}'."));
        }
    }
    let Some(notification_url) = get_s("notificationUrl") else {
        return invalid("notificationUrl is required.");
    };
    let lifecycle_url = get_s("lifecycleNotificationUrl");
    let Some(expiration) = get_s("expirationDateTime") else {
        return invalid("expirationDateTime is required.");
    };
    let client_state = get_s("clientState");
    if client_state
        .as_ref()
        .is_some_and(|c| c.chars().count() > 128)
    {
        return invalid("clientState must be at most 128 characters.");
    }
    if let Err(r) = check_url("notificationUrl", &notification_url) {
        return r;
    }
    if let Some(l) = &lifecycle_url {
        if let Err(r) = check_url("lifecycleNotificationUrl", l) {
            return r;
        }
    }
    let rich = obj
        .get("includeResourceData")
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    let (collection_key, perms, outlook, settings) = {
        let tenant = state.tenant.read().await;
        let Some((c, p, o)) = classify(&tenant, &resource) else {
            return invalid(&format!(
                "Resource '{resource}' is not supported or does not exist."
            ));
        };
        (c, p, o, state.runtime.settings())
    };
    if let Err(r) = app.require(perms) {
        return r;
    }
    let expiration = match clamp_expiry(&settings, &expiration, outlook, rich) {
        Ok(e) => e,
        Err(r) => return r,
    };
    // Validation handshake for both URLs, outside the tenant lock.
    for u in std::iter::once(&notification_url).chain(lifecycle_url.iter()) {
        if !validate_endpoint(&state, u, settings.validation_timeout_ms).await {
            return invalid("Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request.");
        }
    }
    let sub = Subscription {
        id: uuid::Uuid::new_v4().to_string(),
        resource,
        collection: collection_key,
        change_type,
        notification_url,
        lifecycle_url,
        client_state,
        expiration,
        app_id: app.app_id.clone(),
        include_resource_data: rich,
        tls_version: get_s("latestSupportedTlsVersion").unwrap_or_else(|| "v1_2".into()),
    };
    let mut tenant = state.tenant.write().await;
    // Quota: 100 `user` subscriptions per app + tenant (graph-facts §8).
    let same = tenant
        .subscriptions
        .values()
        .filter(|s| s.app_id == sub.app_id && s.collection == sub.collection)
        .count();
    if sub.collection == "users" && same >= 100 {
        return graph_error(
            StatusCode::FORBIDDEN,
            "ExtensionError",
            "Operation: Create; Exception: [Status Code: Forbidden; Reason: The number of subscriptions per app per tenant (100) for resource 'users' has been reached.]",
        );
    }
    let mut body = subscription_json(&sub, true);
    body["@odata.context"] = json!(format!(
        "{}/v1.0/$metadata#subscriptions/$entity",
        state.base_url
    ));
    tenant.subscriptions.insert(sub.id.clone(), sub);
    json_response(StatusCode::CREATED, body)
}

fn expire(tenant: &mut Tenant) {
    // A subscription that is not renewed in time is deleted silently (graph-facts §8).
    let now = Utc::now();
    tenant.subscriptions.retain(|_, s| s.expiration > now);
}

/// `GET /v1.0/subscriptions` (app): the calling app's subscriptions.
async fn list(State(state): State<Arc<SimState>>, app: AppPrincipal) -> Response {
    let mut tenant = state.tenant.write().await;
    expire(&mut tenant);
    let items = tenant
        .subscriptions
        .values()
        .filter(|s| s.app_id == app.app_id)
        .map(|s| subscription_json(s, false))
        .collect();
    collection(&state, "subscriptions", items, None, None)
}

fn not_found(id: &str) -> Response {
    graph_error(
        StatusCode::NOT_FOUND,
        "ResourceNotFound",
        &format!("The object was not found. Subscription '{id}' does not exist."),
    )
}

/// `GET /v1.0/subscriptions/{id}` (app).
async fn get_one(
    State(state): State<Arc<SimState>>,
    app: AppPrincipal,
    Path(id): Path<String>,
) -> Response {
    let mut tenant = state.tenant.write().await;
    expire(&mut tenant);
    match tenant
        .subscriptions
        .get(&id)
        .filter(|s| s.app_id == app.app_id)
    {
        Some(s) => json_response(StatusCode::OK, subscription_json(s, false)),
        None => not_found(&id),
    }
}

/// `PATCH /v1.0/subscriptions/{id}` `{"expirationDateTime"}` (app) → 200 with the subscription.
async fn renew(
    State(state): State<Arc<SimState>>,
    app: AppPrincipal,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let obj = match json_object(&body) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let mut tenant = state.tenant.write().await;
    expire(&mut tenant);
    let settings = state.runtime.settings();
    let Some(sub) = tenant
        .subscriptions
        .get(&id)
        .filter(|s| s.app_id == app.app_id)
        .cloned()
    else {
        return not_found(&id);
    };
    let outlook = sub.collection.ends_with("contacts") || sub.collection.ends_with("events");
    let mut sub = sub;
    if let Some(e) = obj.get("expirationDateTime").and_then(|v| v.as_str()) {
        match clamp_expiry(&settings, e, outlook, sub.include_resource_data) {
            Ok(exp) => sub.expiration = exp,
            Err(r) => return r,
        }
    }
    if let Some(n) = obj.get("notificationUrl").and_then(|v| v.as_str()) {
        if let Err(r) = check_url("notificationUrl", n) {
            return r;
        }
        sub.notification_url = n.to_string();
    }
    let body = subscription_json(&sub, true);
    tenant.subscriptions.insert(id, sub);
    json_response(StatusCode::OK, body)
}

/// `DELETE /v1.0/subscriptions/{id}` (app) → 204.
async fn remove(
    State(state): State<Arc<SimState>>,
    app: AppPrincipal,
    Path(id): Path<String>,
) -> Response {
    let mut tenant = state.tenant.write().await;
    let owned = tenant
        .subscriptions
        .get(&id)
        .is_some_and(|s| s.app_id == app.app_id);
    if !owned {
        return not_found(&id);
    }
    tenant.subscriptions.remove(&id);
    StatusCode::NO_CONTENT.into_response()
}

/// `POST /v1.0/subscriptions/{id}/reauthorize` (app) → 204; does not extend the expiry.
async fn reauthorize(
    State(state): State<Arc<SimState>>,
    app: AppPrincipal,
    Path(id): Path<String>,
) -> Response {
    let mut tenant = state.tenant.write().await;
    expire(&mut tenant);
    let Some(sub) = tenant
        .subscriptions
        .get(&id)
        .filter(|s| s.app_id == app.app_id)
        .cloned()
    else {
        return not_found(&id);
    };
    let perms: &[&str] = if sub.collection.ends_with("contacts") {
        &["Contacts.Read"]
    } else if sub.collection.ends_with("events") {
        &["Calendars.Read"]
    } else if sub.collection == "groups" {
        &["Group.Read.All", "GroupMember.Read.All"]
    } else {
        &["User.Read.All"]
    };
    if let Err(r) = app.require(perms) {
        return r;
    }
    StatusCode::NO_CONTENT.into_response()
}

// ----- delivery -------------------------------------------------------------------------------

fn watches(sub: &Subscription, ev: &ChangeEvent) -> bool {
    let type_ok = sub
        .change_type
        .split(',')
        .any(|c| c.trim() == ev.change_type);
    if !type_ok {
        return false;
    }
    if sub.collection == ev.collection {
        return true;
    }
    // `users/{id}` watches that one user; `users/{id}/contacts` watches every folder's contacts.
    if ev.collection == "users" && sub.collection == format!("users/{}", ev.id) {
        return true;
    }
    if let Some(rest) = ev.collection.strip_suffix("/contacts") {
        // ev.collection = users/{uid}/contactFolders/{fid}/contacts
        if let Some(uid_part) = rest.split("/contactFolders/").next() {
            if sub.collection == format!("{uid_part}/contacts") {
                return true;
            }
        }
    }
    false
}

/// Queues notifications for `events` to every matching subscription (called by write handlers
/// while they hold the tenant lock; delivery happens in the background).
pub fn publish(state: &Arc<SimState>, tenant: &mut Tenant, events: Vec<ChangeEvent>) {
    expire(tenant);
    if tenant.subscriptions.is_empty() {
        return;
    }
    let rt = state.runtime.clone();
    let settings = rt.settings();
    for ev in events {
        for sub in tenant.subscriptions.values().filter(|s| watches(s, &ev)) {
            let mut resource_data = json!({
                "@odata.type": ev.odata_type,
                "@odata.id": ev.resource,
                "@odata.etag": format!("W/\"{}\"", tenant.seq),
                "id": ev.id,
            });
            if ev.collection == "users" || ev.collection == "groups" {
                resource_data["organizationId"] = json!(tenant.id);
                resource_data
                    .as_object_mut()
                    .expect("object")
                    .remove("@odata.etag");
            }
            let n = json!({
                "id": uuid::Uuid::new_v4().to_string(),
                "subscriptionId": sub.id,
                "subscriptionExpirationDateTime": fmt_time(sub.expiration),
                "clientState": sub.client_state,
                "changeType": ev.change_type,
                "resource": ev.resource,
                "tenantId": tenant.id,
                "resourceData": resource_data,
            });
            let url = sub.notification_url.clone();
            let start_worker = {
                let mut pending = rt.pending.lock().expect("pending lock");
                let list = pending.entry(url.clone()).or_default();
                list.push(n);
                list.len() == 1
            };
            if start_worker {
                let state = state.clone();
                let rt = rt.clone();
                let settings = settings.clone();
                tokio::spawn(async move {
                    // Coalesce notifications for the same URL into one `value[]` POST.
                    tokio::time::sleep(Duration::from_millis(settings.batch_window_ms)).await;
                    let batch = rt
                        .pending
                        .lock()
                        .expect("pending lock")
                        .remove(&url)
                        .unwrap_or_default();
                    deliver(state, rt, settings, url, batch).await;
                });
            }
        }
    }
}

fn count(rt: &crate::runtime::GraphRuntime, batch: &[Value], f: impl Fn(&mut DeliveryStats)) {
    let mut d = rt.delivery.lock().expect("delivery lock");
    for n in batch {
        if let Some(id) = n.get("subscriptionId").and_then(|v| v.as_str()) {
            f(d.entry(id.to_string()).or_default());
        }
    }
}

/// POSTs a batch with retries and exponential backoff; a receiver must answer 2xx in time
/// (https://learn.microsoft.com/graph/change-notifications-delivery-webhooks).
async fn deliver(
    state: Arc<SimState>,
    rt: Arc<crate::runtime::GraphRuntime>,
    settings: crate::runtime::GraphSettings,
    url: String,
    batch: Vec<Value>,
) {
    if batch.is_empty() {
        return;
    }
    let body = json!({"value": batch});
    let mut delay = settings.retry_base_ms;
    for attempt in 0..settings.delivery_attempts.max(1) {
        if state.drop_notifications() {
            count(&rt, &batch, |d| d.dropped_by_fault += 1);
            return;
        }
        let res = state
            .http
            .post(&url)
            .json(&body)
            .timeout(Duration::from_millis(settings.delivery_timeout_ms))
            .send()
            .await;
        let status = res.as_ref().map(|r| r.status().as_u16()).unwrap_or(0);
        if (200..300).contains(&status) {
            count(&rt, &batch, |d| {
                d.delivered += 1;
                d.last_status = Some(status);
            });
            return;
        }
        count(&rt, &batch, |d| {
            d.failed_attempts += 1;
            d.last_status = Some(status);
        });
        if attempt + 1 < settings.delivery_attempts {
            tokio::time::sleep(Duration::from_millis(delay)).await;
            delay = delay.saturating_mul(2);
        }
    }
    count(&rt, &batch, |d| d.dropped += 1);
}

// ----- control API ----------------------------------------------------------------------------

/// `GET /_sim/subscriptions` (control): every subscription with delivery counters, no secrets.
pub async fn sim_list(State(state): State<Arc<SimState>>) -> Response {
    let mut tenant = state.tenant.write().await;
    expire(&mut tenant);
    let delivery = state
        .runtime
        .delivery
        .lock()
        .expect("delivery lock")
        .clone();
    let items: Vec<Value> = tenant
        .subscriptions
        .values()
        .map(|s| {
            let mut v = subscription_json(s, false);
            v["delivery"] = json!(delivery.get(&s.id).cloned().unwrap_or_default());
            v
        })
        .collect();
    axum::Json(json!({"value": items})).into_response()
}

/// `POST /_sim/subscriptions/{id}/lifecycle` `{"event": "reauthorizationRequired" |
/// "subscriptionRemoved" | "missed"}` (control): sends a lifecycle notification now.
pub async fn sim_lifecycle(
    State(state): State<Arc<SimState>>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let event = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("event").and_then(|e| e.as_str()).map(str::to_string));
    let Some(event) = event.filter(|e| {
        ["reauthorizationRequired", "subscriptionRemoved", "missed"].contains(&e.as_str())
    }) else {
        return sim_error(
            StatusCode::BAD_REQUEST,
            "body must be {\"event\": \"reauthorizationRequired\" | \"subscriptionRemoved\" | \"missed\"}",
        );
    };
    let (sub, tenant_id, timeout) = {
        let mut tenant = state.tenant.write().await;
        let Some(sub) = tenant.subscriptions.get(&id).cloned() else {
            return sim_error(StatusCode::NOT_FOUND, &format!("no subscription {id}"));
        };
        if event == "subscriptionRemoved" {
            tenant.subscriptions.remove(&id);
        }
        (
            sub,
            tenant.id.clone(),
            state.runtime.settings().delivery_timeout_ms,
        )
    };
    let Some(url) = sub.lifecycle_url.clone() else {
        return sim_error(
            StatusCode::CONFLICT,
            "the subscription has no lifecycleNotificationUrl",
        );
    };
    let body = json!({"value": [{
        "subscriptionId": sub.id,
        "subscriptionExpirationDateTime": fmt_time(sub.expiration),
        "tenantId": tenant_id,
        "clientState": sub.client_state,
        "lifecycleEvent": event,
    }]});
    let res = state
        .http
        .post(&url)
        .json(&body)
        .timeout(Duration::from_millis(timeout))
        .send()
        .await;
    let status = res.map(|r| r.status().as_u16()).unwrap_or(0);
    axum::Json(json!({"delivered": (200..300).contains(&status), "status": status})).into_response()
}
