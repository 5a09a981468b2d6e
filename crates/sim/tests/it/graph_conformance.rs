//! Issue 11: the sim answers as Microsoft documents it. Each test is built from the documented
//! request and the documented response's shape; the doc URL is named next to each.

use serde_json::{json, Value};

use crate::graph::Graph;
use crate::*;

const ANN: &str = "11111111-1111-1111-1111-111111111111";

// ----- errors (https://learn.microsoft.com/graph/errors) --------------------------------------

#[tokio::test]
async fn a_method_the_resource_does_not_allow_gets_405_with_the_error_envelope() {
    let sim = start_sim().await;
    let g = Graph::new(&sim).await;
    let (status, body) = g.send("PUT", "/users", Some(json!({})), &[]).await;
    assert_eq!(status, 405, "{body}");
    assert_eq!(body["error"]["code"], "Request_BadRequest");
    assert!(body["error"]["message"].is_string());
    assert!(body["error"]["innerError"]["request-id"].is_string());
    sim.shutdown().await;
}

#[tokio::test]
async fn error_bodies_echo_the_callers_client_request_id() {
    let sim = start_sim().await;
    let g = Graph::new(&sim).await;
    let mine = "5f2b1a7c-0d2e-4c1b-9a3f-6e7d8c9b0a1f";
    let resp = g
        .request("GET", "/users/nobody@contoso.example")
        .header("client-request-id", mine)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(resp.headers()["client-request-id"], mine);
    let request_id = resp.headers()["request-id"].to_str().unwrap().to_string();
    let body: Value = resp.json().await.unwrap();
    let inner = &body["error"]["innerError"];
    assert_eq!(inner["client-request-id"], mine);
    assert_eq!(inner["request-id"], request_id.as_str());
    assert!(inner["date"].is_string());
    sim.shutdown().await;
}

#[tokio::test]
async fn unauthorized_answers_carry_a_www_authenticate_challenge() {
    // https://learn.microsoft.com/entra/msal/dotnet/advanced/extract-authentication-parameters
    let sim = start_sim().await;
    let resp = sim
        .http_client()
        .get(format!("{}/v1.0/users/{ANN}", sim.graph_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let challenge = resp.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert!(challenge.contains("authorization_uri=\""), "{challenge}");
    assert!(
        challenge.contains("client_id=\"00000003-0000-0000-c000-000000000000\""),
        "{challenge}"
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "InvalidAuthenticationToken");
    sim.shutdown().await;
}

// ----- $batch (https://learn.microsoft.com/graph/json-batching) --------------------------------

#[tokio::test]
async fn batch_ids_that_differ_only_in_case_are_duplicates() {
    let sim = start_sim().await;
    let g = Graph::new(&sim).await;
    let (status, body) = g
        .post(
            "/$batch",
            json!({"requests": [
                {"id": "a", "method": "GET", "url": "/users?$select=id"},
                {"id": "A", "method": "GET", "url": format!("/users/{ANN}")}
            ]}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "BadRequest");
    sim.shutdown().await;
}

#[tokio::test]
async fn batch_sub_responses_carry_graphs_headers() {
    let sim = start_sim().await;
    let g = Graph::new(&sim).await;
    let (status, body) = g
        .post(
            "/$batch",
            json!({"requests": [
                {"id": "1", "method": "GET", "url": format!("/users/{ANN}?$select=id,displayName")}
            ]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let sub = &body["responses"][0];
    assert_eq!(sub["id"], "1");
    assert_eq!(sub["status"], 200);
    let headers = &sub["headers"];
    assert!(headers["Content-Type"]
        .as_str()
        .unwrap()
        .starts_with("application/json"));
    assert_eq!(headers["Cache-Control"], "no-cache");
    assert_eq!(headers["OData-Version"], "4.0");
    assert_eq!(sub["body"]["displayName"], "Ann Archer");
    sim.shutdown().await;
}

// ----- query options (https://learn.microsoft.com/graph/api/user-list,
// https://learn.microsoft.com/graph/aad-advanced-queries) ---------------------------------------

const EVENTUAL: (&str, &str) = ("ConsistencyLevel", "eventual");

/// Ann, Bob and three more users whose names the documented examples search and sort.
async fn directory_sim() -> m365_sim::SimHandle {
    let mut seed = test_seed();
    let users = seed["users"].as_array_mut().unwrap();
    for (i, (name, mail)) in [
        ("Oscar Ward", "oscar@contoso.example"),
        ("Adele Vance", "adelev@contoso.example"),
        ("Walter Alda", "walter@fabrikam.example"),
    ]
    .iter()
    .enumerate()
    {
        users.push(json!({
            "id": format!("3333333{i}-3333-3333-3333-333333333333"),
            "userPrincipalName": mail, "mail": mail, "displayName": name,
            "businessPhones": [format!("+44 20 7946 000{i}")]
        }));
    }
    start_sim_with(m365_sim::SimConfig {
        seed: Some(seed),
        ..Default::default()
    })
    .await
}

fn names(page: &Value) -> Vec<String> {
    page["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["displayName"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn count_and_search_need_consistency_level_eventual() {
    let sim = directory_sim().await;
    let g = Graph::new(&sim).await;
    let (s, body) = g.send("GET", "/users?$count=true", None, &[]).await;
    assert_eq!(s, 400, "{body}");
    assert_eq!(body["error"]["code"], "Request_BadRequest");
    let (s, body) = g
        .send("GET", "/users?$search=\"displayName:wa\"", None, &[])
        .await;
    assert_eq!(s, 400, "{body}");
    assert_eq!(body["error"]["code"], "Request_UnsupportedQuery");
    // "Get only a count of users": text/plain.
    let resp = g
        .request("GET", "/users/$count")
        .header(EVENTUAL.0, EVENTUAL.1)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert_eq!(resp.text().await.unwrap(), "5");
    let (s, _) = g.send("GET", "/users/$count", None, &[]).await;
    assert_eq!(s, 400);
    sim.shutdown().await;
}

#[tokio::test]
async fn search_with_orderby_and_count_finds_words_that_start_with_the_term() {
    // "Use $search to get users with display names that contain the letters 'wa' or 'ad'
    // including a count of returned objects".
    let sim = directory_sim().await;
    let g = Graph::new(&sim).await;
    let (s, page) = g
        .send(
            "GET",
            "/users?$search=\"displayName:wa\" OR \"displayName:ad\"&$orderby=displayName&$count=true",
            None,
            &[EVENTUAL],
        )
        .await;
    assert_eq!(s, 200, "{page}");
    assert_eq!(page["@odata.count"], 3);
    assert_eq!(names(&page), ["Adele Vance", "Oscar Ward", "Walter Alda"]);
    sim.shutdown().await;
}

#[tokio::test]
async fn orderby_sorts_and_needs_an_advanced_query_with_a_filter() {
    let sim = directory_sim().await;
    let g = Graph::new(&sim).await;
    let page = g
        .get("/users?$orderby=displayName desc&$select=displayName")
        .await;
    assert_eq!(
        names(&page),
        [
            "Walter Alda",
            "Oscar Ward",
            "Bob Baker",
            "Ann Archer",
            "Adele Vance"
        ]
    );
    // "Use $filter and $top to get one user with a display name that starts with 'a'
    // including a count of returned objects".
    let path = "/users?$filter=startswith(displayName,'a')&$orderby=displayName&$count=true&$top=1";
    let (s, body) = g.send("GET", path, None, &[]).await;
    assert_eq!(s, 400, "{body}");
    let (s, page) = g.send("GET", path, None, &[EVENTUAL]).await;
    assert_eq!(s, 200, "{page}");
    assert_eq!(page["@odata.count"], 2);
    assert_eq!(names(&page), ["Adele Vance"]);
    assert!(page["@odata.nextLink"].is_string());
    let (s, body) = g.send("GET", "/users?$orderby=jobTitle", None, &[]).await;
    assert_eq!(s, 400, "{body}");
    assert_eq!(body["error"]["code"], "Request_UnsupportedQuery");
    sim.shutdown().await;
}

#[tokio::test]
async fn endswith_and_any_filters_work_as_advanced_queries() {
    // "Use $filter to get all users with a mail that ends with a given domain".
    let sim = directory_sim().await;
    let g = Graph::new(&sim).await;
    let path =
        "/users?$filter=endswith(mail,'@fabrikam.example')&$orderby=userPrincipalName&$count=true";
    let (s, body) = g.send("GET", path, None, &[]).await;
    assert_eq!(s, 400, "{body}");
    // With the header but without `$count=true` it is still not an advanced query.
    let (s, body) = g
        .send(
            "GET",
            "/users?$filter=endswith(mail,'@fabrikam.example')",
            None,
            &[EVENTUAL],
        )
        .await;
    assert_eq!(s, 400, "{body}");
    assert_eq!(body["error"]["code"], "Request_UnsupportedQuery");
    let (s, page) = g.send("GET", path, None, &[EVENTUAL]).await;
    assert_eq!(s, 200, "{page}");
    assert_eq!(page["@odata.count"], 1);
    assert_eq!(page["value"][0]["mail"], "walter@fabrikam.example");
    let (s, page) = g
        .send(
            "GET",
            "/users?$filter=businessPhones/any(p:startswith(p, '%2B44'))&$count=true",
            None,
            &[EVENTUAL],
        )
        .await;
    assert_eq!(s, 200, "{page}");
    assert_eq!(page["@odata.count"], 3);
    let page = g
        .get("/users?$filter=businessPhones/any(p:p eq '%2B44 20 7946 0001')")
        .await;
    assert_eq!(names(&page), ["Adele Vance"]);
    sim.shutdown().await;
}

#[tokio::test]
async fn unsupported_query_options_fail_instead_of_being_ignored() {
    let sim = directory_sim().await;
    let g = Graph::new(&sim).await;
    for path in [
        "/users?$skip=2",
        "/users?$expand=manager",
        "/groups?$skip=1",
    ] {
        let (s, body) = g.send("GET", path, None, &[]).await;
        assert_eq!(s, 400, "{path}: {body}");
        assert_eq!(body["error"]["code"], "Request_UnsupportedQuery", "{path}");
    }
    // pbx365's picker query keeps working as a basic query.
    let page = g
        .get("/users?$select=id,displayName,userPrincipalName,mail&$top=20&$filter=startswith(displayName,'ad') or startswith(userPrincipalName,'ad')")
        .await;
    assert_eq!(names(&page), ["Adele Vance"]);
    sim.shutdown().await;
}

#[tokio::test]
async fn member_lists_filter_search_and_count_as_graph_does() {
    // https://learn.microsoft.com/graph/api/group-list-members (examples with $count, $filter, $search).
    let mut seed = test_seed();
    seed["groups"] = json!([{"id": "44444444-4444-4444-4444-444444444444", "displayName": "Sales",
        "members": ["ann@contoso.example", "bob@contoso.example"]}]);
    let sim = start_sim_with(m365_sim::SimConfig {
        seed: Some(seed),
        ..Default::default()
    })
    .await;
    let g = Graph::new(&sim).await;
    let members = "/groups/44444444-4444-4444-4444-444444444444/members";
    let (s, body) = g
        .send(
            "GET",
            &format!("{members}?$filter=startswith(displayName,'a')"),
            None,
            &[],
        )
        .await;
    assert_eq!(s, 400, "{body}");
    let (s, page) = g
        .send(
            "GET",
            &format!("{members}?$filter=startswith(displayName,'a')&$count=true"),
            None,
            &[EVENTUAL],
        )
        .await;
    assert_eq!(s, 200, "{page}");
    assert_eq!(page["@odata.count"], 1);
    assert_eq!(names(&page), ["Ann Archer"]);
    let (s, page) = g
        .send(
            "GET",
            &format!("{members}?$search=\"displayName:bak\"&$count=true"),
            None,
            &[EVENTUAL],
        )
        .await;
    assert_eq!(s, 200, "{page}");
    assert_eq!(names(&page), ["Bob Baker"]);
    let resp = g
        .request("GET", &format!("{members}/$count"))
        .header(EVENTUAL.0, EVENTUAL.1)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.text().await.unwrap(), "2");
    let resp = g
        .request("GET", &format!("{members}/microsoft.graph.user/$count"))
        .header(EVENTUAL.0, EVENTUAL.1)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.text().await.unwrap(), "2");
    let page = g.get(&format!("{members}/microsoft.graph.group")).await;
    assert!(page["value"].as_array().unwrap().is_empty());
    // `$select` on groups is honoured.
    let page = g.get("/groups?$select=displayName").await;
    let keys: Vec<&String> = page["value"][0].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["displayName", "id"]);
    sim.shutdown().await;
}

#[tokio::test]
async fn check_member_groups_answers_transitively_from_the_named_groups() {
    // https://learn.microsoft.com/graph/api/directoryobject-checkmembergroups: POST
    // {"groupIds": [...]} -> {"value": [the ids the object is a member of]}, transitive, at most
    // 20 groups per request.
    const OUTER: &str = "55555555-5555-5555-5555-555555555501";
    const INNER: &str = "55555555-5555-5555-5555-555555555502";
    const OTHER: &str = "55555555-5555-5555-5555-555555555503";
    let mut seed = test_seed();
    seed["groups"] = json!([
        {"id": OUTER, "displayName": "All staff", "members": [INNER]},
        {"id": INNER, "displayName": "Sales", "members": ["ann@contoso.example"]},
        {"id": OTHER, "displayName": "Board", "members": ["bob@contoso.example"]},
    ]);
    let sim = start_sim_with(m365_sim::SimConfig {
        seed: Some(seed),
        ..Default::default()
    })
    .await;
    let g = Graph::new(&sim).await;
    let path = format!("/users/{ANN}/checkMemberGroups");
    let (s, body) = g
        .send(
            "POST",
            &path,
            Some(json!({"groupIds": [OUTER, OTHER, "55555555-5555-5555-5555-555555555599"]})),
            &[],
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["value"], json!([OUTER]), "nested membership counts");
    assert!(body["@odata.context"]
        .as_str()
        .unwrap()
        .ends_with("$metadata#Collection(Edm.String)"));
    let (s, body) = g
        .send(
            "POST",
            &path,
            Some(json!({"groupIds": [INNER, OUTER]})),
            &[],
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(body["value"], json!([INNER, OUTER]));
    // More than 20 ids, a body without groupIds, an unknown user: Graph's 400 / 404.
    let many: Vec<String> = (0..21)
        .map(|i| format!("55555555-5555-5555-5555-5555555556{i:02}"))
        .collect();
    let (s, body) = g
        .send("POST", &path, Some(json!({"groupIds": many})), &[])
        .await;
    assert_eq!(s, 400, "{body}");
    let (s, _) = g.send("POST", &path, Some(json!({})), &[]).await;
    assert_eq!(s, 400);
    let (s, body) = g
        .send(
            "POST",
            "/users/99999999-9999-9999-9999-999999999999/checkMemberGroups",
            Some(json!({"groupIds": [OUTER]})),
            &[],
        )
        .await;
    assert_eq!(s, 404);
    assert_eq!(body["error"]["code"], "Request_ResourceNotFound");
    // Without a directory or group permission: 403.
    let weak = Graph::with_roles(&sim, &["Mail.Send"]).await;
    let (s, _) = weak
        .send("POST", &path, Some(json!({"groupIds": [OUTER]})), &[])
        .await;
    assert_eq!(s, 403);
    sim.shutdown().await;
}

// ----- events (https://learn.microsoft.com/graph/api/resources/event) -------------------------

#[tokio::test]
async fn events_carry_the_documented_properties_and_delta_items_their_type() {
    // Request of https://learn.microsoft.com/graph/api/user-post-events (trimmed).
    let sim = start_sim().await;
    let g = Graph::new(&sim).await;
    let (s, created) = g
        .post(
            &format!("/users/{ANN}/events"),
            json!({
                "subject": "Let's go for lunch",
                "start": {"dateTime": "2026-03-10T12:00:00", "timeZone": "Pacific Standard Time"},
                "end": {"dateTime": "2026-03-10T14:00:00", "timeZone": "Pacific Standard Time"},
                "location": {"displayName": "Harry's Bar"}
            }),
        )
        .await;
    assert_eq!(s, 201, "{created}");
    let id = created["id"].as_str().unwrap();
    // Response shape of https://learn.microsoft.com/graph/api/event-get.
    let ev = g.get(&format!("/users/{ANN}/events/{id}")).await;
    assert!(ev["@odata.etag"].as_str().unwrap().starts_with("W/\""));
    assert!(!ev["iCalUId"].as_str().unwrap().is_empty());
    assert_eq!(ev["iCalUId"], created["iCalUId"], "iCalUId is stable");
    assert_eq!(
        ev["organizer"]["emailAddress"]["address"],
        "ann@contoso.example"
    );
    assert_eq!(ev["organizer"]["emailAddress"]["name"], "Ann Archer");
    assert_eq!(ev["responseStatus"]["response"], "organizer");
    assert!(ev["responseStatus"]["time"].is_string());
    assert_eq!(ev["originalStartTimeZone"], "Pacific Standard Time");
    assert_eq!(ev["originalEndTimeZone"], "Pacific Standard Time");
    assert!(ev["isReminderOn"].is_boolean());
    assert!(ev["reminderMinutesBeforeStart"].is_number());
    // calendarView keeps the etag with $select, and names the original zone in UTC answers.
    let view = g
        .get(&format!("/users/{ANN}/calendarView?startDateTime=2026-03-10T00:00:00Z&endDateTime=2026-03-11T00:00:00Z&$select=subject"))
        .await;
    assert_eq!(view["value"][0]["@odata.etag"], ev["@odata.etag"]);
    // https://learn.microsoft.com/graph/api/event-delta (response example).
    let (items, _) = g
        .get_all(
            &format!("/users/{ANN}/calendarView/delta?startDateTime=2026-03-10T00:00:00Z&endDateTime=2026-03-11T00:00:00Z"),
            &[],
        )
        .await;
    assert_eq!(items[0]["@odata.type"], "#microsoft.graph.event");
    assert_eq!(items[0]["originalStartTimeZone"], "Pacific Standard Time");
    sim.shutdown().await;
}

// ----- contacts (https://learn.microsoft.com/graph/api/resources/contact) ---------------------

#[tokio::test]
async fn outlook_query_options_the_sim_does_not_implement_fail_instead_of_being_ignored() {
    let sim = start_sim().await;
    let g = Graph::new(&sim).await;
    for path in [
        format!("/users/{ANN}/contacts?$filter=startswith(displayName,'P')"),
        format!("/users/{ANN}/contacts?$orderby=displayName"),
        format!("/users/{ANN}/events?$count=true"),
        format!("/users/{ANN}/contactFolders?$expand=contacts"),
    ] {
        let (s, body) = g.send("GET", &path, None, &[]).await;
        assert_eq!(s, 400, "{path}: {body}");
        assert_eq!(body["error"]["code"], "Request_UnsupportedQuery", "{path}");
    }
    // What pbx365 sends keeps working.
    let (s, _) = g
        .send(
            "GET",
            &format!("/users/{ANN}/contacts?$top=100&$select=id,displayName"),
            None,
            &[],
        )
        .await;
    assert_eq!(s, 200);
    sim.shutdown().await;
}

#[tokio::test]
async fn contacts_show_unset_documented_properties_and_delta_items_their_type() {
    let sim = start_sim().await;
    let g = Graph::new(&sim).await;
    // Request of https://learn.microsoft.com/graph/api/user-post-contacts (trimmed).
    let (s, c) = g
        .post(
            &format!("/users/{ANN}/contacts"),
            json!({"givenName": "Pavel", "surname": "Bansky",
                        "businessPhones": ["+1 732 555 0102"]}),
        )
        .await;
    assert_eq!(s, 201, "{c}");
    // Response shape of https://learn.microsoft.com/graph/api/contact-get.
    let got = g
        .get(&format!(
            "/users/{ANN}/contacts/{}",
            c["id"].as_str().unwrap()
        ))
        .await;
    assert!(got["@odata.etag"].as_str().unwrap().starts_with("W/\""));
    assert_eq!(got["displayName"], "Pavel Bansky");
    assert_eq!(got["businessPhones"], json!(["+1 732 555 0102"]));
    for null in [
        "mobilePhone",
        "companyName",
        "jobTitle",
        "birthday",
        "personalNotes",
    ] {
        assert!(got[null].is_null(), "{null}: {got}");
        assert!(
            got.as_object().unwrap().contains_key(null),
            "{null} is present"
        );
    }
    for list in [
        "homePhones",
        "emailAddresses",
        "categories",
        "imAddresses",
        "children",
    ] {
        assert_eq!(got[list], json!([]), "{list}");
    }
    for address in ["homeAddress", "businessAddress", "otherAddress"] {
        assert_eq!(got[address], json!({}), "{address}");
    }
    let (items, _) = g
        .get_all(&format!("/users/{ANN}/contacts/delta"), &[])
        .await;
    assert_eq!(items[0]["@odata.type"], "#microsoft.graph.contact");
    sim.shutdown().await;
}

// ----- photos (https://learn.microsoft.com/graph/api/profilephoto-get) -----------------------

#[tokio::test]
async fn photos_come_in_the_documented_sizes_with_metadata_ids() {
    let sim = start_sim().await;
    let g = Graph::new(&sim).await;
    let png = m365_sim::tenant::render_png_sized(5, 240);
    let resp = g
        .request("PUT", &format!("/users/{ANN}/photo/$value"))
        .header("content-type", "image/png")
        .body(png)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // "Get the metadata of the largest available photo".
    let meta = g.get(&format!("/users/{ANN}/photo")).await;
    assert_eq!(meta["id"], "240X240");
    assert_eq!(meta["width"], 240);
    assert!(meta["@odata.id"]
        .as_str()
        .unwrap()
        .contains("photos('240X240')"));
    assert_eq!(meta["@odata.mediaContentType"], "image/png");
    // "Get the metadata of a specific size" and the sizes available.
    let meta = g.get(&format!("/users/{ANN}/photos/48x48")).await;
    assert_eq!(
        (meta["id"].as_str(), meta["height"].as_u64()),
        (Some("48X48"), Some(48))
    );
    let sizes = g.get(&format!("/users/{ANN}/photos")).await;
    let ids: Vec<&str> = sizes["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["48X48", "64X64", "96X96", "120X120", "240X240"]);
    // Both documented binary paths answer.
    for path in ["photos/48x48/$value", "photo/48x48/$value"] {
        let resp = g
            .request("GET", &format!("/users/{ANN}/{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        assert_eq!(resp.headers()["content-type"], "image/png");
    }
    let (s, body) = g
        .send("GET", &format!("/users/{ANN}/photos/360x360"), None, &[])
        .await;
    assert_eq!(s, 404, "{body}");
    assert_eq!(body["error"]["code"], "ImageNotFound");
    sim.shutdown().await;
}

#[tokio::test]
async fn generated_photos_are_larger_than_48_pixels_and_render_each_size() {
    let sim = start_sim_with(m365_sim::SimConfig {
        users: 30,
        ..Default::default()
    })
    .await;
    let g = Graph::new(&sim).await;
    let users = g.get("/users?$select=id&$top=30").await;
    let mut seen = false;
    for u in users["value"].as_array().unwrap() {
        let id = u["id"].as_str().unwrap();
        let (s, meta) = g
            .send("GET", &format!("/users/{id}/photo"), None, &[])
            .await;
        if s != 200 {
            continue;
        }
        seen = true;
        assert_eq!(meta["width"], m365_sim::tenant::GENERATED_PHOTO_SIZE);
        let bytes = g
            .request("GET", &format!("/users/{id}/photo/48x48/$value"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(
            m365_sim::tenant::image_info(&bytes),
            Some(("image/png", 48, 48))
        );
        break;
    }
    assert!(seen, "some generated users have photos");
    sim.shutdown().await;
}

// ----- group delta (https://learn.microsoft.com/graph/api/group-delta) ------------------------

#[tokio::test]
async fn group_delta_pages_by_maxpagesize_and_expands_members() {
    let mut seed = test_seed();
    seed["groups"] = json!([
        {"id": "55555555-5555-5555-5555-555555555555", "displayName": "Sales", "members": [ANN]},
        {"id": "66666666-6666-6666-6666-666666666666", "displayName": "Support", "members": []}
    ]);
    let sim = start_sim_with(m365_sim::SimConfig {
        seed: Some(seed),
        ..Default::default()
    })
    .await;
    let g = Graph::new(&sim).await;
    let prefer = ("Prefer", "odata.maxpagesize=1");
    let (s, first) = g
        .send(
            "GET",
            "/groups/delta?$select=displayName&$expand=members",
            None,
            &[prefer],
        )
        .await;
    assert_eq!(s, 200, "{first}");
    assert_eq!(first["value"].as_array().unwrap().len(), 1);
    assert!(first["@odata.nextLink"].is_string());
    assert_eq!(first["value"][0]["members@delta"][0]["id"], ANN);
    let (items, delta) = g
        .get_all(
            "/groups/delta?$select=displayName&$expand=members",
            &[prefer],
        )
        .await;
    assert_eq!(items.len(), 2);
    assert!(items.iter().all(|i| i.get("members@delta").is_some()));
    let delta = delta.expect("the last page has a deltaLink");
    // A membership change shows in the next round.
    let (s, _) = g
        .post("/groups/66666666-6666-6666-6666-666666666666/members/$ref", json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{ANN}")}))
        .await;
    assert_eq!(s, 204);
    let (changes, _) = g.get_all(&delta, &[prefer]).await;
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0]["members@delta"][0]["id"], ANN);
    let (s, body) = g
        .send("GET", "/groups/delta?$expand=owners", None, &[])
        .await;
    assert_eq!(s, 400, "{body}");
    assert_eq!(body["error"]["code"], "Request_UnsupportedQuery");
    sim.shutdown().await;
}
