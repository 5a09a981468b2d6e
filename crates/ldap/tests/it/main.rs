//! The LDAP directory as desk phones and `ldapsearch` see it: the in-process server on
//! 127.0.0.1:0 over a store on SQLite and PostgreSQL, spoken to with ldap3_proto's codec (as a
//! client), raw bytes and OpenLDAP's `ldapsearch`.

use futures::{SinkExt, StreamExt};
use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::{
    LdapBindCred, LdapBindRequest, LdapDerefAliases, LdapFilter, LdapMsg, LdapOp, LdapResultCode,
    LdapSearchRequest, LdapSearchScope,
};
use ldap3_proto::{parse_ldap_filter_str, LdapCodec};
use pbx365_app::phonebook::{EntryInput, NumberInput};
use pbx365_app::App;
use pbx365_domain::extension::NewExtension;
use pbx365_domain::settings::Settings;
use pbx365_domain::{PhoneKind, PhonebookOwner};
use pbx365_testkit::db::TestDb;
use pbx365_testkit::on_both;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

const BASE: &str = "dc=pbx365,dc=example";
const BIND_DN: &str = "cn=phones,dc=pbx365,dc=example";
const PASSWORD: &str = "desk phones only";

/// The app with a directory of three company entries and two extensions, and its LDAP server.
async fn start(
    db: &TestDb,
    tls: Option<(&std::path::Path, &std::path::Path)>,
) -> (App, SocketAddr) {
    let mut settings = Settings {
        data_dir: db.dir.path().to_path_buf(),
        ..Settings::default()
    };
    settings.contacts.default_country = "DE".into();
    settings.phonebook.ldap_base_dn = BASE.into();
    settings.phonebook.ldap_bind_dn = Some(BIND_DN.into());
    settings.phonebook.ldap_bind_password = Some(PASSWORD.into());
    settings.phonebook.ldap_max_results = 4;
    let app = App::new(db.store.clone(), settings);
    for (n, first, last, mobile) in [
        ("201", "Anna", "Berg", "0170 1111111"),
        ("202", "Bernd", "Clausen", ""),
    ] {
        app.store
            .create_local_extension(
                n,
                &NewExtension {
                    first_name: first.into(),
                    last_name: last.into(),
                    display_name: format!("{first} {last}"),
                    mobile: Some(mobile.into()).filter(|m: &String| !m.is_empty()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
    }
    for (name, first, last, number) in [
        ("Contoso Reception", "", "", "+49 30 1234567"),
        ("Dora Engel", "Dora", "Engel", "030 7654321"),
        ("Émile Ørsted 😀", "Émile", "Ørsted", "+33 1 23 45 67 89"),
    ] {
        app.create_phonebook_entry(
            "test",
            PhonebookOwner::Company,
            EntryInput {
                display_name: name.into(),
                first_name: first.into(),
                last_name: last.into(),
                company: Some("Contoso".into()),
                numbers: vec![NumberInput {
                    kind: PhoneKind::Business,
                    number: number.into(),
                }],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    }
    let bound = pbx365_ldap::bind("127.0.0.1:0", tls).await.unwrap();
    let addr = bound.local_addr();
    tokio::spawn(pbx365_ldap::serve(
        bound,
        app.clone(),
        std::future::pending(),
    ));
    (app, addr)
}

type Client = Framed<TcpStream, LdapCodec>;

async fn connect(addr: SocketAddr) -> Client {
    Framed::new(
        TcpStream::connect(addr).await.unwrap(),
        LdapCodec::default(),
    )
}

async fn bind(c: &mut Client, dn: &str, pw: &str) -> LdapResultCode {
    c.send(LdapMsg {
        msgid: 1,
        op: LdapOp::BindRequest(LdapBindRequest {
            version: 3,
            dn: dn.into(),
            cred: LdapBindCred::Simple(pw.into()),
        }),
        ctrl: vec![],
    })
    .await
    .unwrap();
    match c.next().await.unwrap().unwrap().op {
        LdapOp::BindResponse(r) => r.res.code,
        other => panic!("not a bind response: {other:?}"),
    }
}

/// Searches; returns the DNs found, the result code and the response controls.
async fn search(
    c: &mut Client,
    filter: &str,
    sizelimit: i32,
    ctrl: Vec<LdapControl>,
) -> (Vec<String>, LdapResultCode, Vec<LdapControl>) {
    let filter: LdapFilter = parse_ldap_filter_str(filter).unwrap();
    c.send(LdapMsg {
        msgid: 2,
        op: LdapOp::SearchRequest(LdapSearchRequest {
            base: BASE.into(),
            scope: LdapSearchScope::Subtree,
            aliases: LdapDerefAliases::Never,
            sizelimit,
            timelimit: 0,
            typesonly: false,
            filter,
            attrs: vec!["cn".into(), "telephoneNumber".into()],
        }),
        ctrl,
    })
    .await
    .unwrap();
    let mut dns = Vec::new();
    loop {
        let msg = c.next().await.unwrap().unwrap();
        match msg.op {
            LdapOp::SearchResultEntry(e) => dns.push(e.dn),
            LdapOp::SearchResultDone(r) => return (dns, r.code, msg.ctrl),
            other => panic!("unexpected {other:?}"),
        }
    }
}

on_both!(phones_bind_and_search_with_their_filters => phones_bind_and_search_body);
async fn phones_bind_and_search_body(db: TestDb) {
    let (_app, addr) = start(&db, None).await;
    let mut c = connect(addr).await;
    // Before a bind (anonymous is off) nothing is served.
    let (dns, code, _) = search(&mut c, "(objectClass=*)", 0, vec![]).await;
    assert_eq!(
        (dns.len(), code),
        (0, LdapResultCode::InsufficentAccessRights)
    );
    assert_eq!(
        bind(&mut c, "", "").await,
        LdapResultCode::InappropriateAuthentication
    );
    assert_eq!(
        bind(&mut c, BIND_DN, "wrong").await,
        LdapResultCode::InvalidCredentials
    );
    assert_eq!(
        bind(&mut c, BIND_DN, "").await,
        LdapResultCode::UnwillingToPerform
    );
    assert_eq!(
        bind(&mut c, "CN=Phones, DC=pbx365, DC=example", PASSWORD).await,
        LdapResultCode::Success
    );

    // Yealink's name filter, and its number filter for an incoming call.
    let (dns, code, _) = search(
        &mut c,
        "(|(cn=*dora*)(sn=*dora*)(givenName=*dora*))",
        0,
        vec![],
    )
    .await;
    assert_eq!(code, LdapResultCode::Success);
    assert_eq!(dns.len(), 1, "{dns:?}");
    assert!(dns[0].ends_with(",ou=company,dc=pbx365,dc=example"));
    let (dns, _, _) = search(
        &mut c,
        "(|(telephoneNumber=+49307654321)(mobile=+49307654321))",
        0,
        vec![],
    )
    .await;
    assert_eq!(
        dns.len(),
        1,
        "a national number matches its E.164 form: {dns:?}"
    );
    let (dns, _, _) = search(&mut c, "(&(objectClass=person)(mobile=0170*))", 0, vec![]).await;
    assert_eq!(dns, ["uid=201,ou=extensions,dc=pbx365,dc=example"]);
    let (dns, _, _) = search(&mut c, "(telephoneNumber=202)", 0, vec![]).await;
    assert_eq!(dns, ["uid=202,ou=extensions,dc=pbx365,dc=example"]);

    // Five people: the phone's limit of 2, the server's of 4.
    let people = "(objectClass=inetOrgPerson)";
    let (dns, code, _) = search(&mut c, people, 2, vec![]).await;
    assert_eq!((dns.len(), code), (2, LdapResultCode::SizeLimitExceeded));
    let (dns, code, _) = search(&mut c, people, 0, vec![]).await;
    assert_eq!((dns.len(), code), (4, LdapResultCode::SizeLimitExceeded));

    // Paged results: pages of 2 until the cookie is empty, each person once.
    let mut seen = Vec::new();
    let mut cookie = Vec::new();
    for _ in 0..5 {
        let ctl = LdapControl::SimplePagedResults {
            size: 2,
            cookie: cookie.clone(),
        };
        let (dns, _, ctrl) = search(&mut c, people, 0, vec![ctl]).await;
        assert!(dns.len() <= 2);
        seen.extend(dns);
        cookie = match ctrl.first() {
            Some(LdapControl::SimplePagedResults { cookie, .. }) => cookie.clone(),
            other => panic!("no paged results control: {other:?}"),
        };
        if cookie.is_empty() {
            break;
        }
    }
    assert!(cookie.is_empty());
    assert_eq!(seen.len(), 4, "{seen:?}");
    seen.dedup();
    assert_eq!(seen.len(), 4);
    let bad = LdapControl::SimplePagedResults {
        size: 2,
        cookie: b"forged".to_vec(),
    };
    let (_, code, _) = search(&mut c, people, 0, vec![bad]).await;
    assert_eq!(code, LdapResultCode::UnwillingToPerform);

    // Read-only: a write is refused with an LDAP error, the connection goes on.
    c.send(LdapMsg {
        msgid: 9,
        op: LdapOp::DelRequest(format!("uid=201,ou=extensions,{BASE}")),
        ctrl: vec![],
    })
    .await
    .unwrap();
    match c.next().await.unwrap().unwrap().op {
        LdapOp::DelResponse(r) => assert_eq!(r.code, LdapResultCode::UnwillingToPerform),
        other => panic!("{other:?}"),
    }
    let (dns, _, _) = search(&mut c, "(&(givenName=ANNA)(sn=berg))", 0, vec![]).await;
    assert_eq!(dns.len(), 1);
}

/// Reads until the server closes the connection; what it sent.
async fn until_closed(s: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return all,
            Ok(n) => all.extend_from_slice(&buf[..n]),
        }
    }
}

on_both!(garbage_on_the_socket_gets_a_notice_and_the_server_goes_on => garbage_body);
async fn garbage_body(db: TestDb) {
    let (_app, addr) = start(&db, None).await;
    for garbage in [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        // A SEQUENCE announcing four gigabytes.
        vec![0x30, 0x84, 0xff, 0xff, 0xff, 0xff, 0x02, 0x01],
        // A well-formed BER SEQUENCE that is no LDAP message.
        vec![0x30, 0x03, 0x01, 0x01, 0xff],
        (0..=255u8).rev().collect(),
    ] {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(&garbage).await.unwrap();
        let answer = until_closed(&mut s).await;
        // The notice of disconnection names its OID (RFC 4511 §4.4.1).
        assert!(
            answer.windows(22).any(|w| w == b"1.3.6.1.4.1.1466.20036"),
            "{garbage:?} -> {answer:?}"
        );
    }
    let mut c = connect(addr).await;
    assert_eq!(
        bind(&mut c, BIND_DN, PASSWORD).await,
        LdapResultCode::Success
    );
}

async fn ldapsearch(uri: &str, args: &[&str]) -> (i32, String) {
    let out = tokio::process::Command::new("ldapsearch")
        .env("LDAPTLS_REQCERT", "never")
        .args(["-LLL", "-x", "-o", "ldif-wrap=no", "-H", uri])
        .args(args)
        .output()
        .await
        .expect("ldapsearch runs (Debian package ldap-utils; scripts/test installs it)");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// `ldapsearch` bound as the phones, from the base DN.
async fn ldapsearch_bound(uri: &str, args: &[&str]) -> (i32, String) {
    let mut all = vec!["-D", BIND_DN, "-w", PASSWORD, "-b", BASE];
    all.extend_from_slice(args);
    ldapsearch(uri, &all).await
}

on_both!(ldapsearch_reads_the_directory_over_ldap_and_ldaps => ldapsearch_body);
async fn ldapsearch_body(db: TestDb) {
    let (_app, addr) = start(&db, None).await;
    let uri = format!("ldap://{addr}");
    let (code, out) = ldapsearch_bound(
        &uri,
        &["(|(cn=ann*)(sn=ann*))", "cn", "telephoneNumber", "mobile"],
    )
    .await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("dn: uid=201,ou=extensions,dc=pbx365,dc=example"),
        "{out}"
    );
    assert!(
        out.contains("cn: Anna Berg") && out.contains("telephoneNumber: 201"),
        "{out}"
    );
    assert!(out.contains("mobile: 0170 1111111"), "{out}");
    // Paged (pr=2) through everyone under the server's limit.
    let (code, out) = ldapsearch_bound(
        &uri,
        &["-E", "pr=2/noprompt", "(objectClass=inetOrgPerson)", "cn"],
    )
    .await;
    assert_eq!(code, 4, "the server's limit of 4 is reached: {out}");
    assert_eq!(
        out.matches("\ndn: ").count() + usize::from(out.starts_with("dn: ")),
        4,
        "{out}"
    );
    // ldapsearch without -D binds anonymously first: refused, as is a wrong password.
    let (code, out) = ldapsearch(&uri, &["-b", BASE, "(cn=*)"]).await;
    assert_eq!(code, 48, "{out}");
    let (code, out) = ldapsearch(&uri, &["-D", BIND_DN, "-w", "nope", "-b", BASE, "(cn=*)"]).await;
    assert_eq!(code, 49, "{out}");

    // LDAPS with a self-signed certificate.
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert_file, key_file) = (dir.path().join("ldap.crt"), dir.path().join("ldap.key"));
    std::fs::write(&cert_file, cert.cert.pem()).unwrap();
    std::fs::write(&key_file, cert.key_pair.serialize_pem()).unwrap();
    let bound = pbx365_ldap::bind("127.0.0.1:0", Some((&cert_file, &key_file)))
        .await
        .unwrap();
    assert_eq!(bound.scheme(), "ldaps");
    let tls_addr = bound.local_addr();
    tokio::spawn(pbx365_ldap::serve(
        bound,
        _app.clone(),
        std::future::pending(),
    ));
    let (code, out) = ldapsearch_bound(&format!("ldaps://{tls_addr}"), &["(cn=Dora*)", "cn"]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("cn: Dora Engel"), "{out}");
    // Plain LDAP bytes on the TLS port do not get a directory.
    let mut s = TcpStream::connect(tls_addr).await.unwrap();
    s.write_all(&[
        0x30, 0x0c, 0x02, 0x01, 0x01, 0x60, 0x07, 0x02, 0x01, 0x03, 0x04, 0x00, 0x80, 0x00,
    ])
    .await
    .unwrap();
    let answer = until_closed(&mut s).await;
    assert!(!answer.windows(4).any(|w| w == b"Dora"));
}

on_both!(an_address_that_keeps_guessing_is_refused_unchecked => guessing_body);
async fn guessing_body(db: TestDb) {
    let (_app, addr) = start(&db, None).await;
    let mut c = connect(addr).await;
    assert_eq!(
        bind(&mut c, BIND_DN, PASSWORD).await,
        LdapResultCode::Success
    );
    for _ in 0..pbx365_ldap::MAX_FAILED_BINDS {
        assert_eq!(
            bind(&mut c, BIND_DN, "guess").await,
            LdapResultCode::InvalidCredentials
        );
    }
    // Now even the right password is refused from this address, on any connection.
    let mut again = connect(addr).await;
    assert_eq!(
        bind(&mut again, BIND_DN, PASSWORD).await,
        LdapResultCode::InvalidCredentials
    );
}
