//! Graph v1.0: users (paging, filters, delta, writes), photos, groups, contacts, calendar,
//! sendMail, $batch and seeds.

use m365_sim::SimHandle;
use serde_json::{json, Value};

use crate::*;

/// Every application permission the Graph tests need.
pub const ALL_ROLES: &[&str] = &[
    "User.ReadWrite.All",
    "GroupMember.ReadWrite.All",
    "Contacts.ReadWrite",
    "Calendars.ReadWrite",
    "Mail.Send",
];

/// A Graph token of a consented app holding `roles`.
pub async fn graph_token(sim: &SimHandle, roles: &[&str]) -> String {
    sim.control()
        .app_token(&sim.tenant_id, roles)
        .await
        .expect("app registered and token issued")
        .access_token
}

/// A tiny Graph client for tests.
pub struct Graph {
    /// The sim.
    pub base: String,
    http: reqwest::Client,
    token: String,
}

impl Graph {
    /// A client with a token holding [`ALL_ROLES`].
    pub async fn new(sim: &SimHandle) -> Graph {
        Graph::with_roles(sim, ALL_ROLES).await
    }

    /// A client with a token holding `roles`.
    pub async fn with_roles(sim: &SimHandle, roles: &[&str]) -> Graph {
        Graph {
            base: sim.graph_url().to_string(),
            http: sim.http_client(),
            token: graph_token(sim, roles).await,
        }
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}/v1.0{path}", self.base)
        }
    }

    /// A request with the token, for tests that need the raw response.
    pub fn request(&self, method: &str, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method.parse().unwrap(), self.url(path))
            .bearer_auth(&self.token)
    }

    /// Sends a request; returns status and JSON body (Null when empty).
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut req = self.request(method, path);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("graph request sent");
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.unwrap();
        let v = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        (status, v)
    }

    /// POSTs JSON; returns status and JSON body.
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send("POST", path, Some(body), &[]).await
    }

    /// GET expecting 200.
    pub async fn get(&self, path: &str) -> Value {
        let (s, v) = self.send("GET", path, None, &[]).await;
        assert_eq!(s, 200, "GET {path}: {v}");
        v
    }

    /// Follows nextLinks; returns all items and the final deltaLink (if any).
    pub async fn get_all(
        &self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (Vec<Value>, Option<String>) {
        let mut items = Vec::new();
        let mut url = path.to_string();
        loop {
            let (s, page) = self.send("GET", &url, None, headers).await;
            assert_eq!(s, 200, "GET {url}: {page}");
            items.extend(page["value"].as_array().unwrap().iter().cloned());
            match page["@odata.nextLink"].as_str() {
                Some(n) => url = n.to_string(),
                None => return (items, page["@odata.deltaLink"].as_str().map(str::to_string)),
            }
        }
    }
}

const ANN: &str = "11111111-1111-1111-1111-111111111111";
const BOB: &str = "22222222-2222-2222-2222-222222222222";

#[tokio::test]
async fn users_list_pages_through_2500_generated_users() {
    let sim = start_sim_with(m365_sim::SimConfig {
        users: 2500,
        ..Default::default()
    })
    .await;
    let g = Graph::new(&sim).await;
    let (users, _) = g.get_all("/users?$top=999", &[]).await;
    assert_eq!(users.len(), 2500);
    let mut ids: Vec<&str> = users.iter().map(|u| u["id"].as_str().unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 2500, "no user appears twice across pages");
    // Default page is 100 and the default property set has no department/userType.
    let first = g.get("/users").await;
    assert_eq!(first["value"].as_array().unwrap().len(), 100);
    assert!(first["value"][0].get("department").is_none());
    assert!(first["value"][0].get("businessPhones").is_some());
    let sel = g
        .get("/users?$select=id,department,userType,accountEnabled&$top=5")
        .await;
    assert!(sel["value"][0].get("userType").is_some());
    assert!(sel["value"][0].get("displayName").is_none());
    let (s, body) = g.send("GET", "/users?$top=1000", None, &[]).await;
    assert_eq!(s, 400);
    assert_eq!(
        body["error"]["message"],
        "Invalid page size specified: '1000'. Must be between 1 and 999 inclusive."
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn filter_keeps_only_enabled_members() {
    let sim = start_sim_with(m365_sim::SimConfig {
        users: 300,
        ..Default::default()
    })
    .await;
    let g = Graph::new(&sim).await;
    let (users, _) = g
        .get_all(
            "/users?$filter=userType%20eq%20'Member'%20and%20accountEnabled%20eq%20true&$select=id,userType,accountEnabled,displayName&$top=50",
            &[],
        )
        .await;
    assert!(users.len() > 250 && users.len() < 300, "{}", users.len());
    assert!(users
        .iter()
        .all(|u| u["userType"] == "Member" && u["accountEnabled"] == true));
    let (s, _) = g
        .send("GET", "/users?$filter=userType%20ne%20'Guest'", None, &[])
        .await;
    assert_eq!(s, 400, "ne is an advanced query");
    let (s, v) = g
        .send(
            "GET",
            "/users?$filter=userType%20ne%20'Guest'&$count=true",
            None,
            &[("ConsistencyLevel", "eventual")],
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert!(v["@odata.count"].as_u64().unwrap() > 250);
    sim.shutdown().await;
}

#[tokio::test]
async fn user_delta_second_round_shows_exactly_the_changes() {
    let sim = start_sim().await;
    let g = Graph::new(&sim).await;
    let (first, delta) = g
        .get_all("/users/delta?$select=displayName,jobTitle,mail", &[])
        .await;
    assert_eq!(first.len(), 2);
    let delta = delta.expect("last page has a deltaLink");

    let (s, created) = g
        .send(
            "POST",
            "/users",
            Some(json!({"accountEnabled": true, "displayName": "Cleo Cruz", "mailNickname": "cleo",
                        "userPrincipalName": "cleo@contoso.example", "passwordProfile": {"password": "x-Pass1!"}})),
            &[],
        )
        .await;
    assert_eq!(s, 201, "{created}");
    let cleo = created["id"].as_str().unwrap().to_string();
    let (s, _) = g
        .send(
            "PATCH",
            &format!("/users/{ANN}"),
            Some(json!({"jobTitle": "Head of Sales"})),
            &[],
        )
        .await;
    assert_eq!(s, 204);
    let (s, _) = g.send("DELETE", &format!("/users/{BOB}"), None, &[]).await;
    assert_eq!(s, 204);

    let (changes, delta2) = g.get_all(&delta, &[]).await;
    assert_eq!(changes.len(), 3, "{changes:?}");
    let by_id = |id: &str| changes.iter().find(|c| c["id"] == id).cloned().unwrap();
    assert_eq!(by_id(&cleo)["displayName"], "Cleo Cruz");
    assert_eq!(by_id(ANN)["jobTitle"], "Head of Sales");
    assert_eq!(by_id(BOB)["@removed"]["reason"], "changed");

    // A change outside $select does not bring the user back; the next round is empty.
    let (s, _) = g
        .send(
            "PATCH",
            &format!("/users/{ANN}"),
            Some(json!({"mobilePhone": "+1 555 0100"})),
            &[],
        )
        .await;
    assert_eq!(s, 204);
    let (changes, _) = g.get_all(&delta2.unwrap(), &[]).await;
    assert!(changes.is_empty(), "{changes:?}");
    sim.shutdown().await;
}

#[tokio::test]
async fn expired_delta_token_gets_sync_state_not_found() {
    let sim = start_sim().await;
    let g = Graph::new(&sim).await;
    let (_, delta) = g.get_all("/users/delta", &[]).await;
    let delta = delta.unwrap();
    sim.control()
        .add_fault(&m365_sim::faults::FaultSpec {
            path: "/v1.0/users/delta".into(),
            expire_delta_tokens: Some(true),
            ..Default::default()
        })
        .await
        .unwrap();
    let (s, body) = g.send("GET", &delta, None, &[]).await;
    assert_eq!(s, 400, "{body}");
    assert_eq!(body["error"]["code"], "syncStateNotFound");
    // Configurable to 410 (graph-facts §4).
    let resp = sim
        .http_client()
        .put(format!("{}/_sim/graph-settings", sim.base_url))
        .json(&json!({"directory_delta_expired_status": 410}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (s, _) = g.send("GET", &delta, None, &[]).await;
    assert_eq!(s, 410);
    // A garbage token is answered the same way; a fresh round works.
    let (s, _) = g
        .send("GET", "/users/delta?$deltatoken=garbage", None, &[])
        .await;
    assert_eq!(s, 410);
    let (users, _) = g.get_all("/users/delta", &[]).await;
    assert_eq!(users.len(), 2);
    sim.shutdown().await;
}

#[tokio::test]
async fn users_without_read_permission_are_refused() {
    let sim = start_sim().await;
    let g = Graph::with_roles(&sim, &["Contacts.Read"]).await;
    let (s, body) = g.send("GET", "/users", None, &[]).await;
    assert_eq!(s, 403);
    assert_eq!(body["error"]["code"], "Authorization_RequestDenied");
    let (s, _) = g.send("DELETE", &format!("/users/{ANN}"), None, &[]).await;
    assert_eq!(s, 403);
    sim.shutdown().await;
}

#[tokio::test]
async fn missing_photo_is_404_and_upload_changes_the_etag() {
    let sim = start_sim().await;
    let g = Graph::new(&sim).await;
    let (s, body) = g
        .send("GET", &format!("/users/{ANN}/photo/$value"), None, &[])
        .await;
    assert_eq!(s, 404);
    assert_eq!(body["error"]["code"], "ImageNotFound");
    let png = m365_sim::tenant::render_png(1);
    let put = |bytes: Vec<u8>| {
        sim.http_client()
            .put(format!("{}/v1.0/users/{ANN}/photo/$value", sim.base_url))
            .bearer_auth(&g.token)
            .header("content-type", "image/png")
            .body(bytes)
            .send()
    };
    assert_eq!(put(png.clone()).await.unwrap().status(), 200);
    let meta = g.get(&format!("/users/{ANN}/photo")).await;
    assert_eq!(meta["@odata.mediaContentType"], "image/png");
    assert_eq!(meta["width"], 48);
    let etag1 = meta["@odata.mediaEtag"].as_str().unwrap().to_string();
    let bytes = sim
        .http_client()
        .get(format!(
            "{}/v1.0/users/ann@contoso.example/photo/$value",
            sim.base_url
        ))
        .bearer_auth(&g.token)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(bytes.as_ref(), png.as_slice());
    assert_eq!(
        put(m365_sim::tenant::render_png(2)).await.unwrap().status(),
        200
    );
    let meta = g.get(&format!("/users/{ANN}/photo")).await;
    assert_ne!(meta["@odata.mediaEtag"].as_str().unwrap(), etag1);
    sim.shutdown().await;
}

#[tokio::test]
async fn transitive_members_flatten_nested_groups() {
    let mut seed = test_seed();
    seed["groups"] = json!([
        {"id": "33333333-3333-3333-3333-333333333333", "displayName": "Outer", "members": ["44444444-4444-4444-4444-444444444444", ANN]},
        {"id": "44444444-4444-4444-4444-444444444444", "displayName": "Inner", "members": [BOB]}
    ]);
    let sim = start_sim_with(m365_sim::SimConfig {
        seed: Some(seed),
        ..Default::default()
    })
    .await;
    let g = Graph::new(&sim).await;
    let direct = g
        .get("/groups/33333333-3333-3333-3333-333333333333/members")
        .await;
    let types: Vec<&str> = direct["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["@odata.type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        vec!["#microsoft.graph.group", "#microsoft.graph.user"]
    );
    let (all, _) = g
        .get_all(
            "/groups/33333333-3333-3333-3333-333333333333/transitiveMembers/microsoft.graph.user",
            &[],
        )
        .await;
    assert_eq!(all.len(), 2);
    let (s, _) = g
        .send(
            "DELETE",
            &format!("/groups/44444444-4444-4444-4444-444444444444/members/{BOB}/$ref"),
            None,
            &[],
        )
        .await;
    assert_eq!(s, 204);
    let (all, _) = g
        .get_all(
            "/groups/33333333-3333-3333-3333-333333333333/transitiveMembers/microsoft.graph.user",
            &[],
        )
        .await;
    assert_eq!(all.len(), 1);
    let (s, _) = g
        .send(
            "POST",
            "/groups/44444444-4444-4444-4444-444444444444/members/$ref",
            Some(json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{BOB}")})),
            &[],
        )
        .await;
    assert_eq!(s, 204);
    sim.shutdown().await;
}

#[tokio::test]
async fn contact_delta_per_folder_reports_new_and_deleted_contacts() {
    let mut seed = test_seed();
    seed["contacts"] = json!({"ann@contoso.example": [
        {"displayName": "Vendor One", "businessPhones": ["+49 30 1234"]},
        {"displayName": "Family", "parentFolder": "Private", "mobilePhone": "+44 7700 900123"}
    ]});
    let sim = start_sim_with(m365_sim::SimConfig {
        seed: Some(seed),
        ..Default::default()
    })
    .await;
    let g = Graph::new(&sim).await;
    let folders = g.get(&format!("/users/{ANN}/contactFolders")).await;
    assert_eq!(folders["value"][0]["displayName"], "Private");
    let private = folders["value"][0]["id"].as_str().unwrap().to_string();
    let in_private = g
        .get(&format!("/users/{ANN}/contactFolders/{private}/contacts"))
        .await;
    assert_eq!(in_private["value"].as_array().unwrap().len(), 1);
    // The `contacts` alias is the default folder (graph-facts §6).
    let (first, delta) = g
        .get_all(
            &format!("/users/{ANN}/contactFolders/contacts/contacts/delta"),
            &[],
        )
        .await;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0]["displayName"], "Vendor One");
    let (s, c) = g
        .send(
            "POST",
            &format!("/users/{ANN}/contacts"),
            Some(json!({"givenName": "Nina", "surname": "New"})),
            &[],
        )
        .await;
    assert_eq!(s, 201, "{c}");
    assert_eq!(c["displayName"], "Nina New");
    let (s, _) = g
        .send(
            "DELETE",
            &format!("/users/{ANN}/contacts/{}", first[0]["id"].as_str().unwrap()),
            None,
            &[],
        )
        .await;
    assert_eq!(s, 204);
    let (changes, _) = g.get_all(&delta.unwrap(), &[]).await;
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert!(changes.iter().any(|c| c["displayName"] == "Nina New"));
    assert!(changes.iter().any(|c| c["@removed"]["reason"] == "deleted"));
    sim.shutdown().await;
}

#[tokio::test]
async fn calendar_view_expands_series_and_honours_the_time_zone_preference() {
    let mut seed = test_seed();
    seed["events"] = json!({"ann@contoso.example": [
        {"subject": "Stand-up", "showAs": "busy",
         "start": {"dateTime": "2025-06-02T09:00:00", "timeZone": "W. Europe Standard Time"},
         "end": {"dateTime": "2025-06-02T09:15:00", "timeZone": "W. Europe Standard Time"},
         "recurrence": {"pattern": {"type": "daily", "interval": 1}, "range": {"type": "numbered", "startDate": "2025-06-02", "numberOfOccurrences": 5}}},
        {"subject": "Holiday", "isAllDay": true, "showAs": "oof",
         "start": {"dateTime": "2025-06-04T00:00:00", "timeZone": "Pacific Standard Time"},
         "end": {"dateTime": "2025-06-05T00:00:00", "timeZone": "Pacific Standard Time"}}
    ]});
    let sim = start_sim_with(m365_sim::SimConfig {
        seed: Some(seed),
        ..Default::default()
    })
    .await;
    let g = Graph::new(&sim).await;
    let (items, _) = g
        .get_all(
            &format!("/users/{ANN}/calendarView?startDateTime=2025-06-01T00:00:00Z&endDateTime=2025-06-10T00:00:00Z"),
            &[("Prefer", "outlook.timezone=\"Europe/Berlin\"")],
        )
        .await;
    let standups: Vec<&Value> = items
        .iter()
        .filter(|i| i["subject"] == "Stand-up")
        .collect();
    assert_eq!(standups.len(), 5);
    assert!(standups.iter().all(|s| s["type"] == "occurrence"));
    assert_eq!(
        standups[0]["start"]["dateTime"],
        "2025-06-02T09:00:00.0000000"
    );
    assert_eq!(standups[0]["start"]["timeZone"], "Europe/Berlin");
    let holiday = items.iter().find(|i| i["subject"] == "Holiday").unwrap();
    assert_eq!(holiday["isAllDay"], true);
    assert_eq!(holiday["start"]["dateTime"], "2025-06-04T00:00:00.0000000");
    let sel = g
        .get(&format!("/users/{ANN}/calendarView?startDateTime=2025-06-01T00:00:00Z&endDateTime=2025-06-10T00:00:00Z&$select=subject,showAs&$top=2"))
        .await;
    assert_eq!(sel["value"].as_array().unwrap().len(), 2);
    assert!(sel["value"][0].get("start").is_none());
    assert!(sel["value"][0]["id"].is_string());
    assert!(sel["@odata.nextLink"].as_str().unwrap().contains("select"));
    let (s, body) = g
        .send("GET", &format!("/users/{ANN}/calendarView"), None, &[])
        .await;
    assert_eq!(s, 400, "{body}");
    let sched = g
        .send(
            "POST",
            &format!("/users/{ANN}/calendar/getSchedule"),
            Some(
                json!({"schedules": ["ann@contoso.example", "nobody@contoso.example"],
                        "startTime": {"dateTime": "2025-06-04T00:00:00", "timeZone": "UTC"},
                        "endTime": {"dateTime": "2025-06-04T12:00:00", "timeZone": "UTC"},
                        "availabilityViewInterval": 60}),
            ),
            &[],
        )
        .await;
    assert_eq!(sched.0, 200, "{}", sched.1);
    let view = sched.1["value"][0]["availabilityView"].as_str().unwrap();
    assert_eq!(view.len(), 12);
    assert!(view.contains('3'), "all-day oof shows as 3: {view}");
    assert!(sched.1["value"][1]["error"]["responseCode"].is_string());
    sim.shutdown().await;
}

#[tokio::test]
async fn send_mail_is_accepted_into_the_outbox_and_checks_headers() {
    let sim = start_sim().await;
    let g = Graph::new(&sim).await;
    let msg = json!({"message": {"subject": "Voicemail", "body": {"contentType": "Text", "content": "hi"},
        "toRecipients": [{"emailAddress": {"address": "bob@contoso.example"}}],
        "internetMessageHeaders": [{"name": "x-pbx-call", "value": "1"}]}, "saveToSentItems": false});
    let (s, body) = g
        .send(
            "POST",
            &format!("/users/{ANN}/sendMail"),
            Some(msg.clone()),
            &[],
        )
        .await;
    assert_eq!(s, 202);
    assert!(body.is_null());
    let outbox = sim.control().get_json("/_sim/mail").await.unwrap();
    assert_eq!(outbox["value"][0]["message"]["subject"], "Voicemail");
    let mut bad = msg.clone();
    bad["message"]["internetMessageHeaders"][0]["name"] = json!("pbx-call");
    let (s, body) = g
        .send("POST", &format!("/users/{ANN}/sendMail"), Some(bad), &[])
        .await;
    assert_eq!(s, 400);
    assert_eq!(body["error"]["code"], "InvalidInternetMessageHeader");
    sim.shutdown().await;
}

#[tokio::test]
async fn batch_runs_sub_requests_and_fails_dependents_with_424() {
    let sim = start_sim().await;
    let g = Graph::new(&sim).await;
    let (s, body) = g
        .send(
            "POST",
            "/$batch",
            Some(json!({"requests": [
                {"id": "1", "method": "GET", "url": "/users/nobody@contoso.example"},
                {"id": "2", "method": "GET", "url": "/users?$select=id", "dependsOn": ["1"]},
                {"id": "3", "method": "PATCH", "url": format!("/users/{ANN}"), "headers": {"Content-Type": "application/json"}, "body": {"jobTitle": "CTO"}},
                {"id": "4", "method": "GET", "url": format!("/users/{ANN}?$select=jobTitle"), "dependsOn": ["3"]}
            ]})),
            &[],
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let by_id = |id: &str| {
        body["responses"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .cloned()
            .unwrap()
    };
    assert_eq!(by_id("1")["status"], 404);
    assert_eq!(by_id("2")["status"], 424);
    assert_eq!(by_id("3")["status"], 204);
    assert_eq!(by_id("4")["body"]["jobTitle"], "CTO");
    let too_many: Vec<Value> = (0..21)
        .map(|i| json!({"id": i.to_string(), "method": "GET", "url": "/users"}))
        .collect();
    let (s, _) = g
        .send("POST", "/$batch", Some(json!({"requests": too_many})), &[])
        .await;
    assert_eq!(s, 400);
    sim.shutdown().await;
}

#[tokio::test]
async fn bad_seeds_are_refused_with_the_json_path() {
    let mut seed = test_seed();
    seed["users"][1]["id"] = json!("not-a-guid");
    let err = m365_sim::start(m365_sim::SimConfig {
        seed: Some(seed),
        ..Default::default()
    })
    .await
    .err()
    .expect("bad seed refused");
    assert!(err.to_string().contains("users[1].id: not a GUID"), "{err}");

    let sim = start_sim().await;
    let resp = sim
        .http_client()
        .post(format!("{}/_sim/seed", sim.base_url))
        .json(
            &json!({"users": [{"userPrincipalName": "x@contoso.example", "businessPhones": "+1"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["error"],
        "users[0].businessPhones: expected an array of strings"
    );
    // The refused seed lost nothing.
    let g = Graph::new(&sim).await;
    assert_eq!(g.get("/users").await["value"].as_array().unwrap().len(), 2);
    sim.shutdown().await;
}

#[tokio::test]
async fn group_delta_reports_added_and_removed_members() {
    let mut seed = test_seed();
    seed["groups"] = json!([{"id": "55555555-5555-5555-5555-555555555555", "displayName": "Sales", "members": [ANN]}]);
    let sim = start_sim_with(m365_sim::SimConfig {
        seed: Some(seed),
        ..Default::default()
    })
    .await;
    let g = Graph::new(&sim).await;
    let (first, delta) = g
        .get_all("/groups/delta?$select=displayName,members", &[])
        .await;
    assert_eq!(first[0]["members@delta"][0]["id"], ANN);
    let gid = "55555555-5555-5555-5555-555555555555";
    g.send(
        "POST",
        &format!("/groups/{gid}/members/$ref"),
        Some(json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{BOB}")})),
        &[],
    )
    .await;
    let (s, _) = g
        .send(
            "DELETE",
            &format!("/groups/{gid}/members/{ANN}/$ref"),
            None,
            &[],
        )
        .await;
    assert_eq!(s, 204);
    let (changes, _) = g.get_all(&delta.unwrap(), &[]).await;
    assert_eq!(changes.len(), 1, "{changes:?}");
    let members = changes[0]["members@delta"].as_array().unwrap();
    assert_eq!(members.len(), 2);
    let bob = members.iter().find(|m| m["id"] == BOB).unwrap();
    assert!(bob.get("@removed").is_none());
    let ann = members.iter().find(|m| m["id"] == ANN).unwrap();
    assert_eq!(ann["@removed"]["reason"], "deleted");
    sim.shutdown().await;
}

#[tokio::test]
async fn delta_token_latest_syncs_from_now() {
    let sim = start_sim().await;
    let g = Graph::new(&sim).await;
    let page = g.get("/users/delta?$deltatoken=latest").await;
    assert!(page["value"].as_array().unwrap().is_empty());
    let delta = page["@odata.deltaLink"].as_str().unwrap().to_string();
    let (s, _) = g
        .send(
            "PATCH",
            &format!("/users/{ANN}"),
            Some(json!({"displayName": "Ann A."})),
            &[],
        )
        .await;
    assert_eq!(s, 204);
    let (changes, delta) = g.get_all(&delta, &[]).await;
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0]["displayName"], "Ann A.");
    // `Prefer: return=minimal` returns only what changed.
    let (s, _) = g
        .send(
            "PATCH",
            &format!("/users/{ANN}"),
            Some(json!({"jobTitle": "Lead"})),
            &[],
        )
        .await;
    assert_eq!(s, 204);
    let (changes, _) = g
        .get_all(&delta.unwrap(), &[("Prefer", "return=minimal")])
        .await;
    assert_eq!(changes[0], json!({"id": ANN, "jobTitle": "Lead"}));
    sim.shutdown().await;
}

#[tokio::test]
async fn calendar_view_delta_reports_new_and_deleted_events() {
    let sim = start_sim().await;
    let g = Graph::new(&sim).await;
    let window = "startDateTime=2025-03-01T00:00:00Z&endDateTime=2025-03-31T00:00:00Z";
    let event = |subject: &str, day: u32| {
        json!({"subject": subject,
               "start": {"dateTime": format!("2025-03-{day:02}T10:00:00"), "timeZone": "UTC"},
               "end": {"dateTime": format!("2025-03-{day:02}T11:00:00"), "timeZone": "UTC"}})
    };
    let (s, old) = g
        .send(
            "POST",
            &format!("/users/{ANN}/events"),
            Some(event("Old", 3)),
            &[],
        )
        .await;
    assert_eq!(s, 201, "{old}");
    let (first, delta) = g
        .get_all(
            &format!("/users/{ANN}/calendarView/delta?{window}"),
            &[("Prefer", "odata.maxpagesize=1")],
        )
        .await;
    assert_eq!(first.len(), 1);
    let (s, new) = g
        .send(
            "POST",
            &format!("/users/{ANN}/events"),
            Some(event("New", 4)),
            &[],
        )
        .await;
    assert_eq!(s, 201);
    let (s, _) = g
        .send(
            "DELETE",
            &format!("/users/{ANN}/events/{}", old["id"].as_str().unwrap()),
            None,
            &[],
        )
        .await;
    assert_eq!(s, 204);
    let (changes, _) = g.get_all(&delta.unwrap(), &[]).await;
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert!(changes
        .iter()
        .any(|c| c["id"] == new["id"] && c["subject"] == "New"));
    assert!(changes
        .iter()
        .any(|c| c["id"] == old["id"] && c["@removed"]["reason"] == "deleted"));
    let (s, body) = g
        .send(
            "GET",
            &format!("/users/{ANN}/calendarView/delta?$deltatoken=bogus"),
            None,
            &[],
        )
        .await;
    assert_eq!(s, 410, "{body}");
    assert_eq!(body["error"]["code"], "SyncStateNotFound");
    sim.shutdown().await;
}

#[tokio::test]
async fn outlook_requests_over_the_mailbox_budget_get_429_with_retry_after() {
    let sim = start_sim().await;
    let resp = sim
        .http_client()
        .put(format!("{}/_sim/graph-settings", sim.base_url))
        .json(&json!({"mailbox_requests_per_10_min": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let g = Graph::new(&sim).await;
    for _ in 0..3 {
        g.get(&format!("/users/{ANN}/contacts")).await;
    }
    let resp = sim
        .http_client()
        .get(format!("{}/v1.0/users/{ANN}/contacts", sim.base_url))
        .bearer_auth(&g.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    let retry_after: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "ApplicationThrottled");
    // Another mailbox is not affected (limits are per app + mailbox).
    g.get(&format!("/users/{BOB}/contacts")).await;
    sim.shutdown().await;
}
