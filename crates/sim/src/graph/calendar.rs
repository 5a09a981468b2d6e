//! Calendar: `/users/{id}/events` CRUD, `/users/{id}/calendarView` (recurrences expanded,
//! all-day entries floating), `/users/{id}/calendarView/delta` and
//! `POST /users/{id}/calendar/getSchedule`.
//!
//! Docs: https://learn.microsoft.com/graph/api/user-list-calendarview ·
//! https://learn.microsoft.com/graph/api/event-delta · https://learn.microsoft.com/graph/api/calendar-getschedule
//! (graph-facts §7).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{Duration, NaiveDateTime};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::outlook::{CalendarsRead, CalendarsWrite, Outlook};
use super::{
    collection, decode_token, encode_token, graph_error, item_not_found, json_object,
    json_response, prefer_values, sync_state_not_found, Query,
};
use crate::state::SimState;
use crate::tenant::{
    fill_organizer, fnv32, instances, merge_props, normalize_event, now_str, parse_dtz,
    ChangeEvent, Event, FieldError, Instance, ItemKind,
};
use crate::tz::{self, fmt_local, parse_local, Zone};

/// Calendar routes.
pub fn routes() -> Router<Arc<SimState>> {
    Router::new()
        .route(
            "/v1.0/users/{id}/events",
            get(list_events).post(create_event),
        )
        .route(
            "/v1.0/users/{id}/calendar/events",
            get(list_events).post(create_event),
        )
        .route(
            "/v1.0/users/{id}/events/{eid}",
            get(get_event).patch(update_event).delete(delete_event),
        )
        .route("/v1.0/users/{id}/calendarView", get(calendar_view))
        .route("/v1.0/users/{id}/calendar/calendarView", get(calendar_view))
        .route(
            "/v1.0/users/{id}/calendarView/delta",
            get(calendar_view_delta),
        )
        .route("/v1.0/users/{id}/calendar/getSchedule", post(get_schedule))
}

/// Event JSON as stored (series master or single instance), with the properties Graph adds
/// (https://learn.microsoft.com/graph/api/resources/event and the response example of
/// https://learn.microsoft.com/graph/api/event-get): `@odata.etag` from the change key, a stable
/// `iCalUId`, the owner's `responseStatus`, the zones the event was created in, reminder defaults.
pub fn event_json(ev: &Event) -> Map<String, Value> {
    let zone = |f: &str| ev.props.get(f).and_then(|d| d.get("timeZone")).cloned();
    let mut m = Map::new();
    m.insert(
        "@odata.etag".into(),
        json!(format!("W/\"{}\"", ev.change_key)),
    );
    m.insert("id".into(), json!(ev.id));
    m.insert("createdDateTime".into(), json!(ev.created));
    m.insert("lastModifiedDateTime".into(), json!(ev.modified));
    m.insert("changeKey".into(), json!(ev.change_key));
    m.insert(
        "iCalUId".into(),
        json!(format!(
            "040000008200E00074C5B7101A82E00800000000{:08X}{:08X}",
            fnv32(ev.id.as_bytes()),
            fnv32(ev.id.to_ascii_lowercase().as_bytes()).rotate_left(7)
        )),
    );
    m.insert(
        "responseStatus".into(),
        json!({"response": "organizer", "time": "0001-01-01T00:00:00Z"}),
    );
    m.insert("originalStartTimeZone".into(), json!(zone("start")));
    m.insert("originalEndTimeZone".into(), json!(zone("end")));
    m.insert("isReminderOn".into(), json!(true));
    m.insert("reminderMinutesBeforeStart".into(), json!(15));
    m.insert("isOrganizer".into(), json!(true));
    m.insert("organizer".into(), Value::Null);
    for (k, v) in &ev.props {
        m.insert(k.clone(), v.clone());
    }
    m
}

fn instance_json(ev: &Event, inst: &Instance, resp: Zone, resp_name: &str) -> Value {
    let mut m = event_json(ev);
    m.insert("id".into(), json!(inst.id));
    let (s, e) = if inst.all_day {
        (inst.local_start, inst.local_end)
    } else {
        (resp.from_utc(inst.start_utc), resp.from_utc(inst.end_utc))
    };
    m.insert(
        "start".into(),
        json!({"dateTime": fmt_local(s), "timeZone": resp_name}),
    );
    m.insert(
        "end".into(),
        json!({"dateTime": fmt_local(e), "timeZone": resp_name}),
    );
    if inst.occurrence {
        m.insert("type".into(), json!("occurrence"));
        m.insert("seriesMasterId".into(), json!(ev.id));
        m.insert("recurrence".into(), Value::Null);
    }
    Value::Object(m)
}

/// Applies `$select` (`id` always kept).
fn select_event(v: Value, select: &Option<Vec<String>>) -> Value {
    let Some(sel) = select else {
        return v;
    };
    let Value::Object(m) = v else {
        return v;
    };
    Value::Object(
        m.into_iter()
            .filter(|(k, _)| {
                k == "id" || k == "@odata.etag" || sel.iter().any(|s| s.eq_ignore_ascii_case(k))
            })
            .collect(),
    )
}

/// The response zone from `Prefer: outlook.timezone` (UTC by default; unknown names fall back to UTC).
fn response_zone(headers: &HeaderMap) -> (Zone, String, bool) {
    for (k, v) in prefer_values(headers) {
        if k.eq_ignore_ascii_case("outlook.timezone") {
            if let Some(z) = tz::zone(&v) {
                return (z, v, true);
            }
        }
    }
    (tz::zone("UTC").expect("UTC"), "UTC".into(), false)
}

fn with_preference(mut r: Response, applied: bool, name: &str) -> Response {
    if applied {
        if let Ok(v) = HeaderValue::from_str(&format!("outlook.timezone=\"{name}\"")) {
            r.headers_mut().insert("preference-applied", v);
        }
    }
    r
}

fn window(q: &Query) -> Result<(NaiveDateTime, NaiveDateTime), Response> {
    let missing = || {
        graph_error(
            StatusCode::BAD_REQUEST,
            "ErrorInvalidParameter",
            "This request requires a time window specified by the query string parameters StartDateTime and EndDateTime.",
        )
    };
    let s = q.get("startdatetime").ok_or_else(missing)?;
    let e = q.get("enddatetime").ok_or_else(missing)?;
    let s = tz::parse_query_instant(s).ok_or_else(missing)?;
    let e = tz::parse_query_instant(e).ok_or_else(missing)?;
    Ok((s, e))
}

/// `GET /v1.0/users/{id}/calendarView?startDateTime&endDateTime` (app: Calendars.Read).
async fn calendar_view(
    State(state): State<Arc<SimState>>,
    call: Outlook<CalendarsRead>,
) -> Result<Response, Response> {
    let q = &call.query;
    let (from, to) = window(q)?;
    let page = call.page()?;
    let (resp, resp_name, applied) = response_zone(&call.headers);
    let tenant = state.tenant.read().await;
    let uid = &call.user_id;
    let mb = tenant.mailbox(uid);
    let select = q.select();
    let mut all: Vec<(NaiveDateTime, Value)> = Vec::new();
    for ev in mb.events.values() {
        for inst in instances(ev, from, to, resp) {
            let v = instance_json(ev, &inst, resp, &resp_name);
            all.push((inst.start_utc, select_event(v, &select)));
        }
    }
    all.sort_by_key(|a| a.0);
    let total = all.len();
    let items: Vec<Value> = all
        .into_iter()
        .skip(page.offset)
        .take(page.top)
        .map(|(_, v)| v)
        .collect();
    let window = [
        ("startDateTime", q.get("startdatetime").unwrap_or("")),
        ("endDateTime", q.get("enddatetime").unwrap_or("")),
    ];
    let next = page.after(items.len(), total).map(|n| {
        call.next_link(
            &state,
            &format!("users/{uid}/calendarView"),
            &window,
            &["select"],
            n,
        )
    });
    Ok(with_preference(
        collection(
            &state,
            &format!("users('{uid}')/calendarView"),
            items,
            next,
            None,
        ),
        applied,
        &resp_name,
    ))
}

#[derive(Serialize, Deserialize, Clone)]
struct EventDeltaToken {
    i: String,
    e: u64,
    s: u64,
    u: String,
    ws: String,
    we: String,
    #[serde(default)]
    o: usize,
    #[serde(default)]
    from: Option<u64>,
    #[serde(default)]
    first: bool,
}

/// `GET /v1.0/users/{id}/calendarView/delta` (app: Calendars.Read): instances in the window,
/// then changes; removed or moved-out events come as `@removed` (graph-facts §7).
async fn calendar_view_delta(
    State(state): State<Arc<SimState>>,
    call: Outlook<CalendarsRead>,
) -> Result<Response, Response> {
    let q = &call.query;
    for bad in ["select", "expand", "filter", "orderby", "search"] {
        if q.get(bad).is_some() {
            return Err(graph_error(
                StatusCode::BAD_REQUEST,
                "ErrorInvalidUrlQuery",
                &format!("The query parameter '${bad}' is not supported with delta."),
            ));
        }
    }
    let size = call.delta_page_size();
    let (resp, resp_name, applied) = response_zone(&call.headers);
    let tenant = state.tenant.read().await;
    let settings = state.runtime.settings();
    let uid = call.user_id.clone();
    let epoch = state.delta_epoch();
    let token_str = q.get("deltatoken").or(q.get("skiptoken"));
    let tok = match token_str {
        Some(t) => match decode_token::<EventDeltaToken>(t) {
            Some(t) if t.i == tenant.instance && t.e >= epoch && t.u == uid => t,
            _ => return Err(sync_state_not_found(false, &settings)),
        },
        None => {
            let (from, to) = window(q)?;
            EventDeltaToken {
                i: tenant.instance.clone(),
                e: epoch,
                s: tenant.seq,
                u: uid.clone(),
                ws: fmt_local(from),
                we: fmt_local(to),
                o: 0,
                from: None,
                first: true,
            }
        }
    };
    let from = parse_local(&tok.ws).unwrap_or_default();
    let to = parse_local(&tok.we).unwrap_or_default();
    let mb = tenant.mailbox(&uid);
    let is_delta_call = q.get("deltatoken").is_some();
    let (items, upper): (Vec<Value>, u64) = if tok.first && !is_delta_call {
        let mut all: Vec<(NaiveDateTime, Value)> = Vec::new();
        for ev in mb.events.values() {
            for inst in instances(ev, from, to, resp) {
                all.push((inst.start_utc, instance_json(ev, &inst, resp, &resp_name)));
            }
        }
        all.sort_by_key(|a| a.0);
        (all.into_iter().map(|(_, v)| v).collect(), tok.s)
    } else {
        let (lower, upper) = match (is_delta_call, tok.from) {
            (false, Some(f)) => (f, tok.s),
            _ => (tok.s, tenant.seq),
        };
        let mut seen: Vec<String> = Vec::new();
        let mut out = Vec::new();
        for c in mb
            .log
            .iter()
            .rev()
            .filter(|c| c.kind == ItemKind::Event && c.seq > lower && c.seq <= upper)
        {
            if seen.contains(&c.id) {
                continue;
            }
            seen.push(c.id.clone());
            match mb.events.get(&c.id) {
                Some(ev) => {
                    let insts = instances(ev, from, to, resp);
                    if insts.is_empty() {
                        out.push(json!({"id": ev.id, "@removed": {"reason": "deleted"}}));
                    }
                    for inst in insts {
                        out.push(instance_json(ev, &inst, resp, &resp_name));
                    }
                }
                None => {
                    out.push(json!({"id": c.id, "@removed": {"reason": "deleted"}}));
                    if let Some(old) = &c.removed_event {
                        for inst in instances(old, from, to, resp)
                            .into_iter()
                            .filter(|i| i.occurrence)
                        {
                            out.push(json!({"id": inst.id, "@removed": {"reason": "deleted"}}));
                        }
                    }
                }
            }
        }
        out.reverse();
        (out, upper)
    };
    // Delta items name their type (https://learn.microsoft.com/graph/api/event-delta, response example).
    let items = super::typed_items(items, "#microsoft.graph.event");
    let offset = if is_delta_call { 0 } else { tok.o };
    let total = items.len();
    let page: Vec<Value> = items.into_iter().skip(offset).take(size).collect();
    let base = format!("{}/v1.0/users/{uid}/calendarView/delta", state.base_url);
    let ctx = format!("users('{uid}')/calendarView");
    let r = if offset + page.len() < total {
        let lower = if tok.first && !is_delta_call {
            None
        } else if is_delta_call {
            Some(tok.s)
        } else {
            tok.from
        };
        let next = EventDeltaToken {
            s: upper,
            o: offset + page.len(),
            from: lower,
            first: tok.first && !is_delta_call,
            ..tok.clone()
        };
        collection(
            &state,
            &ctx,
            page,
            Some(format!("{base}?$skiptoken={}", encode_token(&next))),
            None,
        )
    } else {
        let done = EventDeltaToken {
            s: upper,
            o: 0,
            from: None,
            first: false,
            ..tok.clone()
        };
        collection(
            &state,
            &ctx,
            page,
            None,
            Some(format!("{base}?$deltatoken={}", encode_token(&done))),
        )
    };
    Ok(with_preference(r, applied, &resp_name))
}

fn event_change(uid: &str, eid: &str, change_type: &'static str) -> ChangeEvent {
    ChangeEvent {
        collection: format!("users/{uid}/events"),
        id: eid.to_string(),
        change_type,
        resource: format!("Users/{uid}/Events/{eid}"),
        odata_type: "#Microsoft.Graph.Event",
    }
}

fn invalid_event(e: FieldError) -> Response {
    graph_error(
        StatusCode::BAD_REQUEST,
        "ErrorInvalidRequest",
        &format!("{}: {}", e.0, e.1),
    )
}

/// `GET /v1.0/users/{id}/events` (app: Calendars.Read): series masters and single instances.
async fn list_events(
    State(state): State<Arc<SimState>>,
    call: Outlook<CalendarsRead>,
) -> Result<Response, Response> {
    let page = call.page()?;
    let tenant = state.tenant.read().await;
    let uid = &call.user_id;
    let mb = tenant.mailbox(uid);
    let total = mb.events.len();
    let items: Vec<Value> = mb
        .events
        .values()
        .skip(page.offset)
        .take(page.top)
        .map(|e| Value::Object(event_json(e)))
        .collect();
    let next = page
        .after(items.len(), total)
        .map(|n| call.next_link(&state, &format!("users/{uid}/events"), &[], &[], n));
    Ok(collection(
        &state,
        &format!("users('{uid}')/events"),
        items,
        next,
        None,
    ))
}

/// `GET /v1.0/users/{id}/events/{eid}` (app: Calendars.Read).
async fn get_event(
    State(state): State<Arc<SimState>>,
    call: Outlook<CalendarsRead>,
    Path((_, eid)): Path<(String, String)>,
) -> Result<Response, Response> {
    let tenant = state.tenant.read().await;
    let mb = tenant.mailbox(&call.user_id);
    let ev = mb.events.get(&eid).ok_or_else(item_not_found)?;
    Ok(json_response(StatusCode::OK, Value::Object(event_json(ev))))
}

/// `POST /v1.0/users/{id}/events` (app: Calendars.ReadWrite) → 201 with the event.
async fn create_event(
    State(state): State<Arc<SimState>>,
    call: Outlook<CalendarsWrite>,
    body: axum::body::Bytes,
) -> Result<Response, Response> {
    let mut props = json_object(&body)?;
    for k in [
        "id",
        "createdDateTime",
        "lastModifiedDateTime",
        "changeKey",
        "type",
        "seriesMasterId",
    ] {
        props.remove(k);
    }
    if let Err(e) = normalize_event(&mut props) {
        return Err(invalid_event(e));
    }
    let mut tenant = state.tenant.write().await;
    let uid = call.user_id.clone();
    call.owner_still_there(&tenant)?;
    fill_organizer(&mut props, &tenant.users[&uid]);
    let eid = crate::tenant::derived_id(&uid, &crate::tenant::new_id());
    let now = now_str();
    let ev = Event {
        id: eid.clone(),
        props,
        created: now.clone(),
        modified: now,
        change_key: crate::tenant::new_change_key(),
    };
    let body = event_json(&ev);
    call.mailbox_mut(&mut tenant)?
        .events
        .insert(eid.clone(), ev);
    tenant.log_mailbox(&uid, ItemKind::Event, &eid, "", None, false);
    super::subscriptions::publish(
        &state,
        &mut tenant,
        vec![event_change(&uid, &eid, "created")],
    );
    Ok(json_response(StatusCode::CREATED, Value::Object(body)))
}

/// `PATCH /v1.0/users/{id}/events/{eid}` (app: Calendars.ReadWrite) → 200 with the event.
async fn update_event(
    State(state): State<Arc<SimState>>,
    call: Outlook<CalendarsWrite>,
    Path((_, eid)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Response, Response> {
    let patch = json_object(&body)?;
    let mut tenant = state.tenant.write().await;
    let uid = call.user_id.clone();
    let mb = call.mailbox_mut(&mut tenant)?;
    let mut ev = mb.events.get(&eid).cloned().ok_or_else(item_not_found)?;
    merge_props(
        &mut ev.props,
        patch,
        &[
            "id",
            "createdDateTime",
            "lastModifiedDateTime",
            "changeKey",
            "type",
        ],
    );
    if let Err(e) = normalize_event(&mut ev.props) {
        return Err(invalid_event(e));
    }
    ev.modified = now_str();
    ev.change_key = crate::tenant::new_change_key();
    let body = event_json(&ev);
    tenant.mailbox_mut(&uid).events.insert(eid.clone(), ev);
    tenant.log_mailbox(&uid, ItemKind::Event, &eid, "", None, false);
    super::subscriptions::publish(
        &state,
        &mut tenant,
        vec![event_change(&uid, &eid, "updated")],
    );
    Ok(json_response(StatusCode::OK, Value::Object(body)))
}

/// `DELETE /v1.0/users/{id}/events/{eid}` (app: Calendars.ReadWrite) → 204.
async fn delete_event(
    State(state): State<Arc<SimState>>,
    call: Outlook<CalendarsWrite>,
    Path((_, eid)): Path<(String, String)>,
) -> Result<Response, Response> {
    let mut tenant = state.tenant.write().await;
    let uid = call.user_id.clone();
    let mb = call.mailbox_mut(&mut tenant)?;
    let old = mb.events.remove(&eid).ok_or_else(item_not_found)?;
    tenant.log_mailbox(&uid, ItemKind::Event, &eid, "", Some(old), true);
    super::subscriptions::publish(
        &state,
        &mut tenant,
        vec![event_change(&uid, &eid, "deleted")],
    );
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn status_digit(show_as: &str) -> u8 {
    match show_as {
        "tentative" => 1,
        "busy" => 2,
        "oof" => 3,
        "workingElsewhere" => 4,
        _ => 0,
    }
}

/// Which status wins when several items overlap one interval.
fn rank(d: u8) -> u8 {
    match d {
        3 => 5,
        2 => 4,
        1 => 3,
        4 => 2,
        _ => 0,
    }
}

/// `POST /v1.0/users/{id}/calendar/getSchedule` (app: Calendars.Read): free/busy of up to 20
/// mailboxes for a period under 42 days.
async fn get_schedule(
    State(state): State<Arc<SimState>>,
    call: Outlook<CalendarsRead>,
    body: axum::body::Bytes,
) -> Result<Response, Response> {
    let req = json_object(&body)?;
    let bad = |m: &str| graph_error(StatusCode::BAD_REQUEST, "ErrorInvalidParameter", m);
    let Some(schedules) = req.get("schedules").and_then(|s| s.as_array()) else {
        return Err(bad("schedules is required."));
    };
    if schedules.is_empty() || schedules.len() > 20 {
        return Err(bad("The number of schedules must be between 1 and 20."));
    }
    let parse = |field: &str| -> Result<NaiveDateTime, Response> {
        let (dt, _, zone) =
            parse_dtz(&req, field).map_err(|e| bad(&format!("{}: {}", e.0, e.1)))?;
        Ok(zone.to_utc(dt))
    };
    let (from, to) = match (parse("startTime"), parse("endTime")) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(r), _) | (_, Err(r)) => return Err(r),
    };
    if to <= from || to - from >= Duration::days(42) {
        return Err(bad(
            "The time period must be positive and shorter than 42 days.",
        ));
    }
    let interval = req
        .get("availabilityViewInterval")
        .and_then(|v| v.as_i64())
        .unwrap_or(30);
    if !(5..=1440).contains(&interval) {
        return Err(bad("availabilityViewInterval must be between 5 and 1440."));
    }
    let (resp, resp_name, applied) = response_zone(&call.headers);
    let tenant = state.tenant.read().await;
    let mut out = Vec::new();
    for s in schedules {
        let addr = s.as_str().unwrap_or_default();
        let user = tenant
            .users
            .values()
            .find(|u| {
                u.mail
                    .as_deref()
                    .is_some_and(|m| m.eq_ignore_ascii_case(addr))
            })
            .or_else(|| tenant.find_user(addr));
        let Some(user) = user.filter(|u| u.mail.is_some() && u.user_type != "Guest") else {
            out.push(json!({
                "scheduleId": addr,
                "availabilityView": "",
                "scheduleItems": [],
                "error": {"message": format!("The recipient '{addr}' could not be resolved."), "responseCode": "ErrorMailRecipientNotFound"},
            }));
            continue;
        };
        let mb = tenant.mailbox(&user.id);
        let mut items = Vec::new();
        let mut spans: Vec<(NaiveDateTime, NaiveDateTime, u8)> = Vec::new();
        for ev in mb.events.values() {
            for inst in instances(ev, from, to, resp) {
                let show_as = ev
                    .props
                    .get("showAs")
                    .and_then(|v| v.as_str())
                    .unwrap_or("busy");
                if show_as == "free" {
                    continue;
                }
                spans.push((inst.start_utc, inst.end_utc, status_digit(show_as)));
                let (s, e) = if inst.all_day {
                    (inst.local_start, inst.local_end)
                } else {
                    (resp.from_utc(inst.start_utc), resp.from_utc(inst.end_utc))
                };
                items.push(json!({
                    "isPrivate": ev.props.get("sensitivity").and_then(|v| v.as_str()) == Some("private"),
                    "status": show_as,
                    "subject": ev.props.get("subject"),
                    "location": ev.props.get("location").and_then(|l| l.get("displayName")).cloned().unwrap_or(json!("")),
                    "start": {"dateTime": fmt_local(s), "timeZone": resp_name},
                    "end": {"dateTime": fmt_local(e), "timeZone": resp_name},
                }));
            }
        }
        let mut view = String::new();
        let mut t = from;
        while t < to {
            let t2 = t + Duration::minutes(interval);
            let d = spans
                .iter()
                .filter(|(s, e, _)| *s < t2 && *e > t)
                .map(|(_, _, d)| *d)
                .max_by_key(|d| rank(*d))
                .unwrap_or(0);
            view.push(char::from(b'0' + d));
            t = t2;
        }
        let office_tz = if user
            .office_location
            .as_deref()
            .is_some_and(|o| o.starts_with("Berlin"))
        {
            "W. Europe Standard Time"
        } else {
            "Pacific Standard Time"
        };
        out.push(json!({
            "scheduleId": addr,
            "availabilityView": view,
            "scheduleItems": items,
            "workingHours": {
                "daysOfWeek": ["monday", "tuesday", "wednesday", "thursday", "friday"],
                "startTime": "08:00:00.0000000",
                "endTime": "17:00:00.0000000",
                "timeZone": {"name": office_tz},
            },
        }));
    }
    let r = json_response(
        StatusCode::OK,
        json!({
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Collection(microsoft.graph.scheduleInformation)",
            "value": out,
        }),
    );
    Ok(with_preference(r, applied, &resp_name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(props: Value) -> Event {
        let mut p = props.as_object().unwrap().clone();
        normalize_event(&mut p).unwrap();
        Event {
            id: "E".into(),
            props: p,
            created: String::new(),
            modified: String::new(),
            change_key: String::new(),
        }
    }

    #[test]
    fn weekly_series_expands_into_weekday_occurrences() {
        let e = ev(json!({
            "subject": "standup",
            "start": {"dateTime": "2025-06-02T09:00:00", "timeZone": "W. Europe Standard Time"},
            "end": {"dateTime": "2025-06-02T09:15:00", "timeZone": "W. Europe Standard Time"},
            "recurrence": {"pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday", "wednesday"]},
                           "range": {"type": "noEnd", "startDate": "2025-06-02"}}
        }));
        let utc = tz::zone("UTC").unwrap();
        let from = parse_local("2025-06-09T00:00:00").unwrap();
        let to = parse_local("2025-06-16T00:00:00").unwrap();
        let insts = instances(&e, from, to, utc);
        assert_eq!(insts.len(), 2);
        // 09:00 Berlin summer time is 07:00 UTC.
        assert_eq!(fmt_local(insts[0].start_utc), "2025-06-09T07:00:00.0000000");
    }

    #[test]
    fn all_day_entries_round_to_midnight_and_float() {
        let e = ev(json!({
            "isAllDay": true,
            "start": {"dateTime": "2025-08-06T10:00:00", "timeZone": "Pacific Standard Time"},
            "end": {"dateTime": "2025-08-06T12:00:00", "timeZone": "Pacific Standard Time"}
        }));
        assert_eq!(e.props["start"]["dateTime"], "2025-08-06T00:00:00.0000000");
        assert_eq!(e.props["end"]["dateTime"], "2025-08-07T00:00:00.0000000");
        let berlin = tz::zone("Europe/Berlin").unwrap();
        let insts = instances(
            &e,
            parse_local("2025-08-05T00:00:00").unwrap(),
            parse_local("2025-08-08T00:00:00").unwrap(),
            berlin,
        );
        assert_eq!(insts.len(), 1);
        let j = instance_json(&e, &insts[0], berlin, "Europe/Berlin");
        assert_eq!(j["start"]["dateTime"], "2025-08-06T00:00:00.0000000");
        assert_eq!(j["start"]["timeZone"], "Europe/Berlin");
    }
}
