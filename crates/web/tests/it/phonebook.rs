//! What reads the phonebooks over HTTP (issue 14): caller-name lookup and the desk-phone
//! exports behind their token. The exports' syntax is checked by independent parsers in
//! `crates/web/pytests/test_phonebook_exports.py`.

use pbx365_testkit::db::FreshDb;
use pbx365_testkit::on_both;
use pbx365_testkit::web::server::{error_message, TestServer};
use reqwest::Method;
use serde_json::json;

async fn seed(s: &TestServer) {
    for (number, mobile) in [("201", "+49 170 1111111"), ("202", "0171 2222222")] {
        let (status, body) = s
            .send_json(
                Method::POST,
                "/api/v1/extensions",
                json!({"number": number, "first_name": "Ext", "last_name": number, "mobile": mobile}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    for (path, name, number) in [
        (
            "/api/v1/phonebook/company",
            "Contoso & <Partners>",
            "+49 30 1234567",
        ),
        (
            "/api/v1/extensions/201/phonebook",
            "Dora \"Personal\"",
            "+49 30 1234567",
        ),
    ] {
        let (status, body) = s
            .send_json(
                Method::POST,
                path,
                json!({"display_name": name, "numbers": [{"kind": "business", "number": number}]}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
}

on_both!(caller_name_lookup_over_the_api => caller_name_lookup_body);
async fn caller_name_lookup_body(db: FreshDb) {
    let s = TestServer::start(db).await;
    s.state
        .app
        .store_setting("contacts.default_country", json!("DE"))
        .await
        .unwrap();
    seed(&s).await;

    // An unencoded `+` (as PBXs send it) and an encoded one find the same personal entry.
    for q in [
        "number=+49301234567&extension=201",
        "number=%2B49301234567&extension=201",
    ] {
        let (status, body) = s.get_json(&format!("/api/v1/lookup?{q}")).await;
        assert_eq!(status, 200, "{q}: {body}");
        assert_eq!(body["name"], "Dora \"Personal\"");
        assert_eq!(body["source"], "personal");
        assert_eq!(body["e164"], "+49301234567");
    }
    // Another extension is called: the company phonebook answers, national format too.
    let (status, body) = s
        .get_json("/api/v1/lookup?number=030%201234567&extension=202")
        .await;
    assert_eq!(
        (status, body["source"].as_str()),
        (200, Some("company")),
        "{body}"
    );
    assert_eq!(body["name"], "Contoso & <Partners>");
    // Then the extensions: by mobile (written another way) and by number.
    let (_, body) = s.get_json("/api/v1/lookup?number=%2B491712222222").await;
    assert_eq!(
        (body["source"].as_str(), body["extension"].as_str()),
        (Some("extension"), Some("202"))
    );
    let (_, body) = s.get_json("/api/v1/lookup?number=201").await;
    assert_eq!(body["extension"], "201");

    let (status, body) = s.get_json("/api/v1/lookup?number=%2B4940999999").await;
    assert_eq!(status, 404, "{body}");
    error_message(&body);
    let (status, body) = s
        .get_json("/api/v1/lookup?number=%2B49301234567&extension=999")
        .await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = s.get_json("/api/v1/lookup?number=call%20me").await;
    assert_eq!(status, 422, "{body}");
    let (status, _) = s.get_json("/api/v1/lookup").await;
    assert_eq!(status, 400);
    let plain = s
        .http
        .get(s.url("/api/v1/lookup?number=201"))
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 401);
}

on_both!(exports_need_the_token_and_reveal_nothing_without_it => exports_need_the_token_body);
async fn exports_need_the_token_body(db: FreshDb) {
    let s = TestServer::start(db).await;
    seed(&s).await;
    let paths = [
        "/phonebook/yealink.xml",
        "/phonebook/company.vcf",
        "/phonebook/company.csv",
    ];
    let get = |path: String| {
        let http = s.http.clone();
        let url = s.url(&path);
        async move {
            let r = http.get(url).send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.text().await.unwrap())
        }
    };
    // No token configured: even an empty token is refused.
    for p in paths {
        for q in ["", "?token=", "?token=x"] {
            let (status, body) = get(format!("{p}{q}")).await;
            assert_eq!((status, body.as_str()), (403, "forbidden\n"), "{p}{q}");
        }
    }
    let token = s.state.app.rotate_export_token("test").await.unwrap();
    let stored = s
        .state
        .app
        .settings()
        .phonebook
        .export_token
        .clone()
        .unwrap();
    assert!(
        !stored.contains(&token),
        "the token is stored only as a digest"
    );
    for p in paths {
        for q in [
            "".to_string(),
            "?token=nope".to_string(),
            format!("?token={}x", token),
        ] {
            let (status, body) = get(format!("{p}{q}")).await;
            assert_eq!((status, body.as_str()), (403, "forbidden\n"), "{p}{q}");
        }
    }
    let (status, xml) = get(format!("/phonebook/yealink.xml?token={token}")).await;
    assert_eq!(status, 200);
    assert!(
        xml.contains("<Name>Contoso &amp; &lt;Partners&gt;</Name>"),
        "{xml}"
    );
    assert!(
        xml.contains("<Telephone label=\"Extension\">201</Telephone>"),
        "{xml}"
    );
    assert!(
        !xml.contains("Personal"),
        "personal phonebooks are not exported: {xml}"
    );
    let (status, vcf) = get(format!("/phonebook/company.vcf?token={token}&version=4.0")).await;
    assert_eq!(status, 200);
    assert!(vcf.starts_with("BEGIN:VCARD\r\nVERSION:4.0\r\n"), "{vcf}");
    let (status, csv) = get(format!("/phonebook/company.csv?token={token}")).await;
    assert_eq!(status, 200);
    assert!(
        csv.starts_with("display_name,first_name,last_name,company,extension,"),
        "{csv}"
    );

    // A new token: the old one stops working.
    let next = s.state.app.rotate_export_token("test").await.unwrap();
    let (status, _) = get(format!("/phonebook/company.csv?token={token}")).await;
    assert_eq!(status, 403);
    let (status, _) = get(format!("/phonebook/company.csv?token={next}")).await;
    assert_eq!(status, 200);
}
