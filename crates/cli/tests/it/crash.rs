//! SIGKILL in the middle of a bulk extension import loses no committed extension and leaves no
//! half-written one.

use pbx365_testkit::data::EXTENSION_FIELDS as FIELDS;
use pbx365_testkit::db::FreshDb;
use pbx365_testkit::on_both;
use pbx365_testkit::process::{token, write_config, Server};
use pbx365_testkit::web::Fetch;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// The full record the import sends for extension `i`.
fn payload(i: usize) -> Value {
    json!({
        "number": format!("{}", 10000 + i),
        "first_name": format!("First{i}"),
        "last_name": format!("Last{i}"),
        "display_name": format!("Person {i}"),
        "email": format!("p{i}@contoso.com"),
        "mobile": format!("+49 170 {:07}", i),
        "outbound_caller_id": format!("+49 30 {:07}", i),
        "department": format!("Dept {}", i % 7),
        "job_title": format!("Title {i}"),
        "office": format!("Room {i}"),
    })
}

on_both!(sigkill_during_bulk_import_loses_no_committed_extension_and_leaves_no_partial_one => sigkill_body);
async fn sigkill_body(db: FreshDb) {
    const TOTAL: usize = 400;
    const KILL_AFTER: usize = 60;
    let dir = db.dir.path();
    let cfg = write_config(dir, &db.url, "extension_digits = { min = 2, max = 8 }\n");
    let cfg_arg = cfg.to_str().unwrap().to_string();
    let token = token(dir, &cfg).await;
    let mut server = Server::start(dir, &["--config", &cfg_arg]).await;
    let base = server.base.clone();
    let client = reqwest::Client::new();

    let committed: Arc<Mutex<Vec<usize>>> = Arc::default();
    let ok = Arc::new(AtomicUsize::new(0));
    let (kill_tx, kill_rx) = tokio::sync::oneshot::channel::<()>();
    let kill_tx = Arc::new(Mutex::new(Some(kill_tx)));
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..16 {
        let (client, base, token) = (client.clone(), base.clone(), token.clone());
        let (committed, ok, kill_tx, next) =
            (committed.clone(), ok.clone(), kill_tx.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= TOTAL {
                    return;
                }
                let sent = client
                    .post(format!("{base}/api/v1/extensions"))
                    .bearer_auth(&token)
                    .json(&payload(i))
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status() == 201 => {
                        committed.lock().unwrap().push(i);
                        if ok.fetch_add(1, Ordering::SeqCst) + 1 == KILL_AFTER {
                            if let Some(tx) = kill_tx.lock().unwrap().take() {
                                let _ = tx.send(());
                            }
                        }
                    }
                    Ok(r) => panic!(
                        "import of {i} refused: {} {}",
                        r.status(),
                        r.text().await.unwrap_or_default()
                    ),
                    // The server is gone: everything after the kill fails to connect.
                    Err(_) => return,
                }
            }
        }));
    }
    kill_rx.await.expect("the import reached the kill point");
    server.child.start_kill().expect("SIGKILL");
    server.child.wait().await.unwrap();
    for w in workers {
        w.await.unwrap();
    }
    let committed = committed.lock().unwrap().clone();
    assert!(
        committed.len() >= KILL_AFTER && committed.len() < TOTAL,
        "the kill did not land mid-import: {}",
        committed.len()
    );

    // Restart on the same database and read everything back through the API.
    let server = Server::start(dir, &["--config", &cfg_arg]).await;
    let list: Vec<Value> = client
        .get(format!("{}/api/v1/extensions", server.base))
        .bearer_auth(&token)
        .json_body()
        .await;
    let stored: BTreeMap<String, Value> = list
        .into_iter()
        .map(|e| (e["number"].as_str().unwrap().to_string(), e))
        .collect();
    for i in &committed {
        let want = payload(*i);
        let number = want["number"].as_str().unwrap();
        assert!(
            stored.contains_key(number),
            "extension {number} got 201 but is gone after the crash"
        );
    }
    // Every stored extension is complete: exactly what one POST sent (some may have committed
    // without their 201 reaching us; those must be whole too).
    for (number, got) in &stored {
        let i: usize = number.parse::<usize>().unwrap() - 10000;
        let want = payload(i);
        for f in FIELDS {
            assert_eq!(
                got[f], want[f],
                "extension {number} is half-written: field {f}"
            );
        }
        assert_eq!(got["enabled"], true);
        assert_eq!(got["source"], "local");
    }
    assert!(server.terminate().await.success());
}
