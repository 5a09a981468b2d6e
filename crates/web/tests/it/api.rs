//! The REST API as a client sees it: authentication, CRUD, refusals with the error envelope.

use pbx365_domain::{
    Extension, ExtensionNumber, ExtensionSource, ProfileState, SyncKind, SyncReport, SyncStatus,
};
use pbx365_testkit::data::{EXTENSION_FIELDS, RUN_REPORT_KEYS};
use pbx365_testkit::db::{self, FreshDb};
use pbx365_testkit::on_both;
use pbx365_testkit::web::server::{error_message, TestServer};
use reqwest::Method;
use serde_json::json;

on_both!(requests_without_a_valid_token_get_401 => requests_without_a_valid_token_get_401_body);
async fn requests_without_a_valid_token_get_401_body(db: FreshDb) {
    let s = TestServer::start(db).await;
    let plain = s
        .http
        .get(s.url("/api/v1/extensions"))
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 401);
    let body: serde_json::Value = plain.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");

    let bad = s
        .http
        .get(s.url("/api/v1/extensions"))
        .bearer_auth("pbx365_nope")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    let basic = s
        .http
        .get(s.url("/api/v1/extensions"))
        .basic_auth("admin", Some("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 401);
    let create = s
        .http
        .post(s.url("/api/v1/extensions"))
        .json(&json!({"number": "100", "display_name": "X"}))
        .send()
        .await
        .unwrap();
    assert_eq!(create.status(), 401);
    assert!(
        s.store.get_extension("100").await.unwrap().is_none(),
        "an unauthenticated POST created something"
    );

    let (status, body) = s.get_json("/api/v1/extensions").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!([]));
}

on_both!(local_extension_lifecycle_through_the_api => local_extension_lifecycle_body);
async fn local_extension_lifecycle_body(db: FreshDb) {
    let s = TestServer::start(db).await;
    let (status, created) = s
        .send_json(
            Method::POST,
            "/api/v1/extensions",
            json!({"number": "201", "first_name": "Anna", "last_name": "Berg", "email": "anna@contoso.com",
                   "mobile": "+49 170 1234567", "department": "Sales"}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    for field in EXTENSION_FIELDS.into_iter().chain([
        "enabled",
        "source",
        "m365_id",
        "groups",
        "profile",
        "has_photo",
        "is_admin",
    ]) {
        assert!(
            created.get(field).is_some(),
            "field {field} missing in {created}"
        );
    }
    assert_eq!(created["display_name"], "Anna Berg");
    assert_eq!(created["source"], "local");
    assert_eq!(created["profile"], "available");
    assert_eq!(created["enabled"], true);

    let (status, one) = s.get_json("/api/v1/extensions/201").await;
    assert_eq!(status, 200);
    assert_eq!(one, created);

    let (status, updated) = s
        .send_json(
            Method::PUT,
            "/api/v1/extensions/201",
            json!({"first_name": "Anna", "last_name": "Lind", "job_title": "Lead"}),
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["display_name"], "Anna Lind");
    assert_eq!(
        updated["email"],
        serde_json::Value::Null,
        "PUT replaces the fields"
    );

    let (status, profile) = s
        .send_json(
            Method::PUT,
            "/api/v1/extensions/201/profile",
            json!({"profile": "dnd"}),
        )
        .await;
    assert_eq!(status, 200, "{profile}");
    assert_eq!(
        profile,
        json!({"profile": "dnd", "source": "manual", "until": null})
    );
    let (_, profile) = s.get_json("/api/v1/extensions/201/profile").await;
    assert_eq!(profile["profile"], "dnd");
    let (_, list) = s.get_json("/api/v1/extensions").await;
    assert_eq!(list[0]["profile"], "dnd");

    let (status, _) = s.get_json("/api/v1/extensions/201/photo").await;
    assert_eq!(status, 404);

    let r = s
        .req(Method::DELETE, "/api/v1/extensions/201")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (status, body) = s.get_json("/api/v1/extensions/201").await;
    assert_eq!(status, 404);
    assert_eq!(error_message(&body), "extension '201' does not exist");

    let audit = s.store.list_audit(50).await.unwrap();
    let actions: Vec<&str> = audit.iter().map(|a| a.action.as_str()).collect();
    for a in [
        "extension.create",
        "extension.update",
        "extension.profile",
        "extension.delete",
    ] {
        assert!(actions.contains(&a), "audit lacks {a}: {actions:?}");
    }
    assert!(audit.iter().all(|a| a.actor == "api-token:tests"));
}

on_both!(bad_input_gets_a_sentence_and_changes_nothing => bad_input_body);
async fn bad_input_body(db: FreshDb) {
    let s = TestServer::start(db).await;
    let (status, _) = s
        .send_json(
            Method::POST,
            "/api/v1/extensions",
            json!({"number": "300", "display_name": "Front Desk"}),
        )
        .await;
    assert_eq!(status, 201);
    let (_, before) = s.get_json("/api/v1/extensions").await;

    let cases = [
        (
            json!({"number": "3a0", "display_name": "X"}),
            422,
            "extension number '3a0' is not valid",
        ),
        (
            json!({"number": "301", "display_name": "X", "email": "nope"}),
            422,
            "'nope' is not a valid email address",
        ),
        (
            json!({"number": "301", "display_name": "X", "colour": "red"}),
            422,
            "unknown field `colour`",
        ),
        (
            json!({"number": "301"}),
            422,
            "display name (or first/last name) must not be empty",
        ),
        (
            json!({"number": "301", "display_name": 5}),
            422,
            "invalid type",
        ),
        (
            json!({"number": "300", "display_name": "Dup"}),
            409,
            "already exists",
        ),
        (
            json!({"display_name": "No number"}),
            422,
            "number must not be empty",
        ),
    ];
    for (body, want_status, want_text) in cases {
        let (status, resp) = s
            .send_json(Method::POST, "/api/v1/extensions", body.clone())
            .await;
        assert_eq!(status, want_status, "{body} -> {resp}");
        let msg = error_message(&resp);
        assert!(
            msg.contains(want_text),
            "{body}: message {msg:?} lacks {want_text:?}"
        );
    }

    // Not JSON at all, and JSON without the content type.
    let r = s
        .req(Method::POST, "/api/v1/extensions")
        .header("content-type", "application/json")
        .body("{\"number\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(error_message(&r.json().await.unwrap()).contains("not valid JSON"));
    let r = s
        .req(Method::POST, "/api/v1/extensions")
        .body("{\"number\": \"302\", \"display_name\": \"X\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    assert!(error_message(&r.json().await.unwrap()).contains("Content-Type: application/json"));

    let (status, resp) = s
        .send_json(
            Method::PUT,
            "/api/v1/extensions/300",
            json!({"display_name": "Front Desk", "mobile": "call me"}),
        )
        .await;
    assert_eq!(status, 422);
    assert!(error_message(&resp).contains("'call me' is not a phone number"));
    let (status, resp) = s
        .send_json(
            Method::PUT,
            "/api/v1/extensions/300/profile",
            json!({"profile": "busy"}),
        )
        .await;
    assert_eq!(status, 422);
    assert!(error_message(&resp).contains("'busy' is not a profile"));
    let (status, resp) = s
        .send_json(
            Method::PUT,
            "/api/v1/extensions/300/profile",
            json!({"profile": "dnd", "source": "calendar"}),
        )
        .await;
    assert_eq!(status, 422, "{resp}");
    // A query value of the wrong type cannot be read (400); a number out of range is refused (422).
    let (status, resp) = s.get_json("/api/v1/sync/runs?limit=abc").await;
    assert_eq!(status, 400, "{resp}");
    let (status, resp) = s.get_json("/api/v1/sync/runs?limit=0").await;
    assert_eq!(status, 422, "{resp}");
    let (status, resp) = s.get_json("/api/v1/no/such/thing").await;
    assert_eq!(status, 404);
    error_message(&resp);

    let (_, after) = s.get_json("/api/v1/extensions").await;
    assert_eq!(before, after, "a refused request changed the directory");
}

fn synced_extension(number: &str) -> Extension {
    Extension {
        number: ExtensionNumber::from_trusted(number.into()),
        first_name: "Megan".into(),
        last_name: "Bowen".into(),
        display_name: "Megan Bowen".into(),
        email: Some("meganb@contoso.com".into()),
        mobile: None,
        outbound_caller_id: Some("+1 425 555 0109".into()),
        department: Some("Marketing".into()),
        job_title: None,
        office: None,
        enabled: true,
        source: ExtensionSource::M365,
        m365_id: Some("48d31887-5fad-4d73-a9f5-3c356e68a038".into()),
        photo: None,
        is_admin: false,
        groups: vec![pbx365_domain::AZURE_AD_GROUP.into()],
        profile: ProfileState::default(),
        disabled_at: None,
        updated_at: chrono::Utc::now(),
    }
}

on_both!(synced_extension_is_read_only_except_admin_role_and_profile => synced_read_only_body);
async fn synced_read_only_body(db: FreshDb) {
    let s = TestServer::start(db).await;
    pbx365_testkit::data::put_extensions(&s.store, &[synced_extension("150")])
        .await
        .unwrap();

    let (status, resp) = s
        .send_json(
            Method::PUT,
            "/api/v1/extensions/150",
            json!({"display_name": "Hacked"}),
        )
        .await;
    assert_eq!(status, 409, "{resp}");
    assert!(
        error_message(&resp).contains("comes from Microsoft 365 and is read-only here"),
        "{resp}"
    );
    let r = s
        .req(Method::DELETE, "/api/v1/extensions/150")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let (_, one) = s.get_json("/api/v1/extensions/150").await;
    assert_eq!(one["display_name"], "Megan Bowen");
    assert_eq!(one["source"], "m365");
    assert_eq!(one["m365_id"], "48d31887-5fad-4d73-a9f5-3c356e68a038");

    let (status, resp) = s
        .send_json(
            Method::PUT,
            "/api/v1/extensions/150/admin",
            json!({"is_admin": true}),
        )
        .await;
    assert_eq!(status, 200, "{resp}");
    assert_eq!(resp["is_admin"], true);
    let (status, resp) = s
        .send_json(
            Method::PUT,
            "/api/v1/extensions/150/profile",
            json!({"profile": "lunch"}),
        )
        .await;
    assert_eq!(status, 200, "{resp}");
    let (_, one) = s.get_json("/api/v1/extensions/150").await;
    assert_eq!(
        (one["is_admin"].clone(), one["profile"].clone()),
        (json!(true), json!("lunch"))
    );
}

on_both!(groups_can_be_managed_but_the_builtin_group_follows_the_sync => groups_body);
async fn groups_body(db: FreshDb) {
    let s = TestServer::start(db).await;
    s.send_json(
        Method::POST,
        "/api/v1/extensions",
        json!({"number": "400", "display_name": "Sales Desk"}),
    )
    .await;
    let (status, g) = s
        .send_json(
            Method::POST,
            "/api/v1/groups",
            json!({"name": "Sales", "description": "ring group"}),
        )
        .await;
    assert_eq!(status, 201, "{g}");
    let (status, resp) = s
        .send_json(Method::POST, "/api/v1/groups", json!({"name": "Sales"}))
        .await;
    assert_eq!(status, 409, "{resp}");
    let (status, resp) = s
        .send_json(Method::POST, "/api/v1/groups", json!({"name": "  "}))
        .await;
    assert_eq!(status, 422, "{resp}");

    let r = s
        .req(Method::PUT, "/api/v1/groups/Sales/members/400")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (_, ext) = s.get_json("/api/v1/extensions/400").await;
    assert_eq!(ext["groups"], json!(["Sales"]));
    let r = s
        .req(Method::PUT, "/api/v1/groups/Sales/members/999")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = s
        .req(Method::PUT, "/api/v1/groups/Azure%20AD/members/400")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let r = s
        .req(Method::DELETE, "/api/v1/groups/Azure%20AD")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);

    let r = s
        .req(Method::DELETE, "/api/v1/groups/Sales/members/400")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = s
        .req(Method::DELETE, "/api/v1/groups/Sales")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (_, groups) = s.get_json("/api/v1/groups").await;
    let names: Vec<&str> = groups
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["Azure AD"]);
    assert!(
        s.store.get_extension("400").await.unwrap().is_some(),
        "deleting a group kept its extensions"
    );
}

on_both!(phonebook_entries_keep_several_numbers_and_refuse_bad_ones => phonebook_body);
async fn phonebook_body(db: FreshDb) {
    let s = TestServer::start(db).await;
    let (status, entry) = s
        .send_json(
            Method::POST,
            "/api/v1/phonebook/company",
            json!({"first_name": "Fabrikam", "last_name": "Reception", "company": "Fabrikam",
                   "numbers": [{"kind": "business", "number": "+1 (425) 555-0100"}, {"kind": "mobile", "number": "+49 170 1234567"}]}),
        )
        .await;
    assert_eq!(status, 201, "{entry}");
    assert_eq!(entry["numbers"][0]["e164"], "+14255550100");
    assert_eq!(entry["numbers"].as_array().unwrap().len(), 2);
    let id = entry["id"].as_str().unwrap().to_string();

    let (status, resp) = s
        .send_json(
            Method::POST,
            "/api/v1/phonebook/company",
            json!({"display_name": "X", "numbers": [{"kind": "home", "number": "call me"}]}),
        )
        .await;
    assert_eq!(status, 422);
    assert!(error_message(&resp).contains("not a phone number"));
    let (status, resp) = s
        .send_json(
            Method::POST,
            "/api/v1/phonebook/company",
            json!({"display_name": "X", "numbers": [{"kind": "fax", "number": "1"}]}),
        )
        .await;
    assert_eq!(status, 422, "{resp}");

    let (status, updated) = s
        .send_json(Method::PUT, &format!("/api/v1/phonebook/company/{id}"), json!({"display_name": "Fabrikam Front Desk", "numbers": [{"kind": "business", "number": "+1 425 555 0101"}]}))
        .await;
    assert_eq!(status, 200, "{updated}");
    let (_, list) = s.get_json("/api/v1/phonebook/company").await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["display_name"], "Fabrikam Front Desk");

    s.send_json(
        Method::POST,
        "/api/v1/extensions",
        json!({"number": "500", "display_name": "Owner"}),
    )
    .await;
    let (status, personal) = s
        .send_json(Method::POST, "/api/v1/extensions/500/phonebook", json!({"display_name": "Mum", "numbers": [{"kind": "home", "number": "+49 30 1234567"}]}))
        .await;
    assert_eq!(status, 201, "{personal}");
    let (_, mine) = s.get_json("/api/v1/extensions/500/phonebook").await;
    assert_eq!(mine.as_array().unwrap().len(), 1);
    let (status, _) = s.get_json("/api/v1/extensions/501/phonebook").await;
    assert_eq!(status, 404);

    let r = s
        .req(Method::DELETE, &format!("/api/v1/phonebook/company/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (_, list) = s.get_json("/api/v1/phonebook/company").await;
    assert_eq!(list, json!([]));
}

on_both!(sync_runs_are_listed_with_their_reports => sync_runs_body);
async fn sync_runs_body(db: FreshDb) {
    let s = TestServer::start(db).await;
    let run = s.store.start_sync_run(SyncKind::Users).await.unwrap();
    let report = SyncReport {
        created: vec![pbx365_domain::ReportItem {
            extension: Some("100".into()),
            ..Default::default()
        }],
        ..Default::default()
    };
    s.store
        .finish_sync_run(&run.id, SyncStatus::Completed, &report)
        .await
        .unwrap();
    let (status, list) = s.get_json("/api/v1/sync/runs").await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (status, one) = s.get_json(&format!("/api/v1/sync/runs/{}", run.id)).await;
    assert_eq!(status, 200);
    assert_eq!(one["status"], "completed");
    assert_eq!(one["kind"], "users");
    assert_eq!(one["created"][0]["extension"], "100");
    for key in RUN_REPORT_KEYS {
        assert!(one.get(key).is_some(), "{key} missing in {one}");
    }
    let (status, _) = s.get_json("/api/v1/sync/runs/does-not-exist").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn openapi_document_lists_every_api_path() {
    let s = TestServer::start(db::sqlite().await).await;
    let r = s
        .http
        .get(s.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let doc: serde_json::Value = r.json().await.unwrap();
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/api/v1/extensions",
        "/api/v1/extensions/{number}",
        "/api/v1/extensions/{number}/profile",
        "/api/v1/extensions/{number}/photo",
        "/api/v1/extensions/{number}/admin",
        "/api/v1/extensions/{number}/phonebook",
        "/api/v1/phonebook/company",
        "/api/v1/groups",
        "/api/v1/sync/runs",
        "/api/v1/sync/runs/{id}",
    ] {
        assert!(paths.contains_key(p), "openapi.json lacks {p}");
    }
    assert!(doc["components"]["schemas"]["ExtensionView"]["properties"]["has_photo"].is_object());
}

#[tokio::test]
async fn healthz_and_metrics_answer() {
    let s = TestServer::start(db::sqlite().await).await;
    let r = s.http.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    let _ = pbx365_web::metrics::handle();
    s.get_json("/api/v1/extensions").await;
    let text = s
        .http
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("pbx365_http_requests_total"), "{text}");
}
