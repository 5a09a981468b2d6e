//! No secret reaches the log, even at TRACE.

use pbx365_domain::settings::AssertionAlg;
use pbx365_graph::keys::Slot;
use pbx365_testkit::log::Buffer;
use pbx365_testkit::tenant::{client, register, sim, PERMISSIONS as ALL_PERMISSIONS};

#[test]
fn private_key_tokens_and_assertions_never_appear_in_trace_logs() {
    // The sim runs on its own threads so only pbx365's (and its HTTP stack's) events are captured.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let sim = sim(3).await;
            tx.send(sim).ok();
            std::future::pending::<()>().await;
        });
    });
    let sim = rx.recv().unwrap();

    // rustls and friends log through the `log` crate: forward those records too (to this
    // thread's subscriber only; other tests' threads have none).
    let _ = tracing_log::LogTracer::init();
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let secrets = tracing::subscriber::with_default(subscriber, || {
        rt.block_on(async {
            let pbx = register(&sim, &ALL_PERMISSIONS, true).await;
            let client = client(&sim, &pbx, AssertionAlg::PS256);
            client.list_users().await.unwrap();
            let token = client.token().await.unwrap().secret().to_string();
            // A rotation attempt and a failing request log warnings with Microsoft's raw errors.
            pbx.keys.generate("pbx.test").unwrap();
            client.tokens().invalidate().await;
            client.list_users().await.unwrap();
            let _ = client.contacts("nobody@nowhere.test", None).await;
            let key_file = std::fs::read_to_string(pbx.keys.path(Slot::Active)).unwrap();
            let pending = std::fs::read_to_string(pbx.keys.path(Slot::Pending)).unwrap();
            (token, key_file, pending)
        })
    });
    let log = buffer.text();
    assert!(
        log.contains("acquired a Microsoft 365 app-only token"),
        "the capture works: {log}"
    );
    let (token, key_file, pending) = secrets;
    assert!(!log.contains(&token), "access token in the log");
    // Any JWT (access token or client assertion) starts with base64url of `{"`.
    assert!(!log.contains("eyJ"), "a JWT in the log");
    assert!(
        !log.contains("client_assertion="),
        "an assertion form in the log"
    );
    assert!(!log.contains("PRIVATE KEY"), "a PEM private key in the log");
    for pem in [key_file, pending] {
        for line in pem
            .lines()
            .filter(|l| !l.starts_with("-----") && l.len() > 40)
        {
            assert!(
                !log.contains(line),
                "a line of the private key file in the log"
            );
        }
    }
}
