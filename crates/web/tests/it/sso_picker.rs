//! The SSO page's extension picker (issue 15) for tenants of any size: a small office sees every
//! synced extension as a checkbox; above 50 the page lists only the chosen ones and "Find an
//! extension" searches synced extensions by number or name (at most 20, admins only).

use pbx365_domain::NewExtension;
use pbx365_testkit::data::{put_extensions, synced_person};
use pbx365_testkit::db::FreshDb;
use pbx365_testkit::on_both;
use pbx365_testkit::web::sso::{start, text, SsoApp, SsoBrowser, ADMIN_EXT, USER_EXT};
use serde_json::Value;

const SSO: &str = "/console/settings/integrations/microsoft365/sso";
const SEARCH: &str = "/console/settings/integrations/microsoft365/sso/extensions";
const DIRECTORY: &str = "/console/settings/integrations/microsoft365/sync/directory";

/// 60 more synced extensions, 300 to 359 ("Person 300" …), so the tenant is past 50; plus
/// "Åsa Lind" (400) and "Жанна Петрова" (401), and a local extension "Åsa Local" (402).
async fn large_tenant(app: &SsoApp) {
    let mut exts: Vec<_> = (300..360)
        .map(|n| synced_person(&n.to_string(), "Person", &n.to_string()))
        .collect();
    exts.push(synced_person("400", "Åsa", "Lind"));
    exts.push(synced_person("401", "Жанна", "Петрова"));
    put_extensions(&app.store, &exts).await.unwrap();
    local_asa(app).await;
}

/// A local extension whose name starts like a synced one's: never offered for SSO.
async fn local_asa(app: &SsoApp) {
    app.store
        .create_local_extension(
            "402",
            &NewExtension {
                first_name: "Åsa".into(),
                last_name: "Local".into(),
                display_name: "Åsa Local".into(),
                ..NewExtension::default()
            },
        )
        .await
        .unwrap();
}

/// Saves the SSO form with the web client for selected users and these extensions.
async fn save_extensions(app: &SsoApp, b: &SsoBrowser, numbers: &[&str]) {
    let page = b.get(SSO).await.text().await.unwrap();
    let csrf = pbx365_testkit::web::hidden(&page, "csrf");
    let mut form = vec![
        ("csrf", csrf.as_str()),
        ("console", "off"),
        ("webclient", "selected"),
    ];
    form.extend(numbers.iter().map(|n| ("extension", *n)));
    let res = b
        .http
        .post(format!("{}{SSO}", app.base))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 303, "saved");
}

/// The search's answer for `q`: (status, JSON).
async fn search(b: &SsoBrowser, q: &str) -> (u16, Value) {
    let q: String = url::form_urlencoded::byte_serialize(q.as_bytes()).collect();
    let res = b.get(&format!("{SEARCH}?q={q}")).await;
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// The extension numbers (`id`) of a search's answer.
fn ids(found: &Value) -> Vec<String> {
    found
        .as_array()
        .expect("a list")
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect()
}

async fn a_large_tenant_sees_only_the_chosen_extensions_and_a_search(db: FreshDb) {
    let app = start(db).await;
    large_tenant(&app).await;
    let b = SsoBrowser::password_admin(&app, "").await;
    save_extensions(&app, &b, &["305", "401"]).await;
    let raw = b.get(SSO).await.text().await.unwrap();
    assert!(raw.contains("value=\"305\" checked"), "{raw}");
    assert!(raw.contains("value=\"401\" checked"), "{raw}");
    assert!(text(&raw).contains("401 Жанна Петрова"), "{raw}");
    for other in ["306", USER_EXT, "400", "402"] {
        assert!(
            !raw.contains(&format!("value=\"{other}\"")),
            "{other} is not listed: {raw}"
        );
    }
    assert!(text(&raw).contains("Find an extension"), "{raw}");
    // The title is only the title (the script tag once sat inside it and showed as text).
    assert!(
        raw.contains("<title>Single sign-on · pbx365</title>"),
        "{raw}"
    );
    assert!(raw.contains(&format!("data-url=\"{SEARCH}\"")), "{raw}");
    // The group picker stays on the same page.
    assert!(raw.contains("id=\"picker-q\""), "{raw}");
    // Unchecking 305 and saving removes it; 401 stays.
    save_extensions(&app, &b, &["401"]).await;
    assert_eq!(app.state.settings().sso.selected_extensions, vec!["401"]);
    let raw = b.get(SSO).await.text().await.unwrap();
    assert!(!raw.contains("value=\"305\""), "{raw}");
    assert!(raw.contains("value=\"401\" checked"), "{raw}");
}

on_both!(sso_picker_large_tenant => a_large_tenant_sees_only_the_chosen_extensions_and_a_search);

async fn a_small_office_sees_every_synced_extension_without_a_search(db: FreshDb) {
    let app = start(db).await;
    local_asa(&app).await;
    let b = SsoBrowser::password_admin(&app, "").await;
    save_extensions(&app, &b, &[ADMIN_EXT]).await;
    let raw = b.get(SSO).await.text().await.unwrap();
    assert!(raw.contains(&format!("value=\"{USER_EXT}\">")), "{raw}");
    assert!(
        raw.contains(&format!("value=\"{ADMIN_EXT}\" checked")),
        "{raw}"
    );
    assert!(!raw.contains("value=\"402\""), "a local extension: {raw}");
    assert!(!text(&raw).contains("Find an extension"), "{raw}");
    // Unchecking the last one and saving leaves none selected.
    save_extensions(&app, &b, &[]).await;
    assert!(app.state.settings().sso.selected_extensions.is_empty());
    let raw = b.get(SSO).await.text().await.unwrap();
    assert!(raw.contains(&format!("value=\"{ADMIN_EXT}\">")), "{raw}");
}

on_both!(sso_picker_small_office => a_small_office_sees_every_synced_extension_without_a_search);

async fn the_extension_search_finds_synced_extensions_by_number_and_name(db: FreshDb) {
    let app = start(db).await;
    large_tenant(&app).await;
    let b = SsoBrowser::password_admin(&app, "").await;
    // By the start of a number: 35 is 350 to 359, ordered, with the fields sync.js shows.
    let (status, found) = search(&b, "35").await;
    assert_eq!(status, 200);
    let want: Vec<String> = (350..360).map(|n| n.to_string()).collect();
    assert_eq!(ids(&found), want);
    assert_eq!(found[0]["name"], "350 Person 350");
    assert_eq!(found[0]["detail"], "person.350@contoso.com");
    // "3" matches 60: only the first 20 come back.
    let (_, found) = search(&b, "3").await;
    let want: Vec<String> = (300..320).map(|n| n.to_string()).collect();
    assert_eq!(ids(&found), want);
    // By first, last or display name, in any case, also outside ASCII; never the local 402.
    for (q, want) in [
        ("åsa", vec!["400"]),
        ("ÅSA", vec!["400"]),
        ("lind", vec!["400"]),
        ("жан", vec!["401"]),
        ("ЖАННА", vec!["401"]),
        ("петр", vec!["401"]),
        ("anna", vec![USER_EXT, ADMIN_EXT, "203"]),
        ("Anna Berg 202", vec![ADMIN_EXT]),
    ] {
        let (status, found) = search(&b, q).await;
        assert_eq!(status, 200, "{q}");
        assert_eq!(ids(&found), want, "{q}: {found}");
    }
    let (_, found) = search(&b, "person 31").await;
    let want: Vec<String> = (310..320).map(|n| n.to_string()).collect();
    assert_eq!(ids(&found), want, "{found}");
    // Nothing for a name nobody has, for LIKE's wildcards typed as such, or for nothing typed.
    for q in ["Zoe", "%", "_sa", ""] {
        let (_, found) = search(&b, q).await;
        assert_eq!(ids(&found), Vec::<String>::new(), "{q:?}: {found}");
    }
}

on_both!(sso_picker_search => the_extension_search_finds_synced_extensions_by_number_and_name);

async fn the_extension_search_needs_an_admin_session(db: FreshDb) {
    let app = start(db).await;
    let stranger = SsoBrowser::new(&app);
    let refused = stranger.get(&format!("{SEARCH}?q=20")).await;
    let directory = stranger.get(&format!("{DIRECTORY}?q=a")).await;
    let status = refused.status().as_u16();
    assert_ne!(status, 200, "refused");
    assert_eq!(
        status,
        directory.status().as_u16(),
        "as the directory search"
    );
    assert!(
        !refused.text().await.unwrap().contains(USER_EXT),
        "nothing is given away"
    );
}

on_both!(sso_picker_refuses_strangers => the_extension_search_needs_an_admin_session);
