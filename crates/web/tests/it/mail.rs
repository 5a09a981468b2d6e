//! Settings > Mail server over real HTTP against m365-sim: a Microsoft 365 sender that does not
//! exist in the tenant is named in a clear sentence on the page and nothing is saved.

use pbx365_domain::settings::MailTransport;
use pbx365_testkit::db::FreshDb;
use pbx365_testkit::on_both;
use pbx365_testkit::web::m365::{consent_round, hidden, prepare, start, text, Browser, Opts};

/// The page's path.
const MAIL: &str = "/console/settings/mail";

async fn a_missing_microsoft_365_sender_is_refused_with_a_sentence_and_not_saved(db: FreshDb) {
    let app = start(db, Opts::default()).await;
    let b = Browser::signed_in(&app).await;
    prepare(&app, &b).await;
    let page = consent_round(&app, &b, true).await;
    assert!(page.contains("all five permissions are granted"), "{page}");

    let res = b.get(MAIL).await;
    assert_eq!(res.status().as_u16(), 200, "Mail server page renders");
    let csrf = hidden(&res.text().await.unwrap(), "csrf");
    let res = b
        .http
        .post(format!("{}{MAIL}", b.base))
        .form(&[
            ("csrf", csrf.as_str()),
            ("transport", "microsoft365"),
            ("sender", "nobody@contoso.example"),
            ("admin_address", "it@contoso.example"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 422, "the form is shown again");
    let html = res.text().await.unwrap();
    assert!(html.contains("id=\"mail-error\""), "{html}");
    let page = text(&html);
    assert!(
        page.contains(
            "The sender mailbox nobody@contoso.example does not exist in Microsoft 365: enter the address of an existing user or shared mailbox."
        ),
        "{page}"
    );

    // Nothing saved: not in the store, not in effect, not shown as the sender.
    for key in ["mail.transport", "mail.sender", "mail.admin_address"] {
        assert_eq!(
            app.store.get_kv(&format!("setting:{key}")).await.unwrap(),
            None,
            "{key} is not stored"
        );
    }
    let settings = app.state.app.settings();
    assert_eq!(settings.mail.transport, MailTransport::None);
    assert_eq!(settings.mail.sender, None);
    let again = b.get(MAIL).await.text().await.unwrap();
    assert!(!again.contains("nobody@contoso.example"), "{again}");
    let audit = app.store.list_audit(20).await.unwrap();
    assert!(
        audit.iter().all(|a| a.action != "mail.settings"),
        "{audit:?}"
    );
}

on_both!(
    console_mail_server => a_missing_microsoft_365_sender_is_refused_with_a_sentence_and_not_saved
);
