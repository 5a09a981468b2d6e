//! `pbx365 m365 keygen` and `pbx365 m365 doctor` as a real child process, the doctor against an
//! in-process m365-sim over HTTPS (its CA through `m365.ca_file`).

use m365_sim::SimConfig;
use pbx365_testkit::data::DOCTOR_CHECKS;
use pbx365_testkit::process::{run, write_config};
use pbx365_testkit::tenant::{new_app, start_sim, write_ca, PERMISSIONS as FIVE};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keygen_keeps_the_key_private_writes_the_certificate_and_prints_thumbprints() {
    let dir = tempfile::tempdir().unwrap();
    let db_url = format!("sqlite://{}/data/pbx365.db", dir.path().display());
    let cfg = write_config(
        dir.path(),
        &db_url,
        "public_url = \"https://pbx.example.com\"\n",
    );
    let cfg = cfg.to_str().unwrap();

    // Default: public_key.pem in the current directory.
    let (code, out, err) = run(dir.path(), &["m365", "keygen", "--config", cfg], None).await;
    assert_eq!(code, 0, "{err}");
    let pem = std::fs::read_to_string(dir.path().join("public_key.pem")).unwrap();
    assert!(
        pem.starts_with("-----BEGIN CERTIFICATE-----") && !pem.contains("PRIVATE"),
        "{pem}"
    );
    let cert = pbx365_graph::CertificateInfo::from_pem(&pem).unwrap();
    assert!(
        cert.subject.contains("CN=pbx.example.com"),
        "{}",
        cert.subject
    );
    assert!(
        out.contains(&cert.thumbprint_hex) && out.contains(&cert.x5t_s256),
        "{out}"
    );
    assert!(
        out.contains("public_key.pem") && out.contains("credential.pem"),
        "{out}"
    );
    assert!(
        !out.contains("PRIVATE KEY") && !err.contains("PRIVATE KEY"),
        "the key is never printed"
    );
    let key_file = dir.path().join("data/m365/credential.pem");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    // A second run with --out rotates: the new pair waits, the old one stays active.
    let out_file = dir.path().join("next.pem");
    let (code, out, err) = run(
        dir.path(),
        &[
            "m365",
            "keygen",
            "--out",
            out_file.to_str().unwrap(),
            "--config",
            cfg,
        ],
        None,
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("current key keeps working"), "{out}");
    assert_ne!(std::fs::read_to_string(&out_file).unwrap(), pem);
    assert!(dir.path().join("data/m365/credential.pending.pem").exists());

    // A directory that does not exist is named, and no key is generated for nothing.
    let (code, _, err) = run(
        dir.path(),
        &[
            "m365",
            "keygen",
            "--out",
            "/nonexistent/dir/x.pem",
            "--config",
            cfg,
        ],
        None,
    )
    .await;
    assert_ne!(code, 0);
    assert!(err.contains("/nonexistent/dir"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_prints_one_line_per_check_and_fails_with_the_reason() {
    let seed = serde_json::json!({"users": []});
    let sim = start_sim(SimConfig {
        seed: Some(seed),
        ..SimConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = write_ca(&sim, dir.path());
    let client_id = sim
        .control()
        .create_app(&new_app("", &FIVE, true))
        .await
        .unwrap();
    let db_url = format!("sqlite://{}/data/pbx365.db", dir.path().display());
    let extra = format!(
        "[m365]\ntenant_id = \"{}\"\nclient_id = \"{client_id}\"\nauthority_url = \"{}\"\ngraph_url = \"{}\"\nca_file = \"{}\"\n",
        sim.tenant_id,
        sim.authority_url(),
        sim.graph_url(),
        ca_file.display()
    );
    let cfg = write_config(dir.path(), &db_url, &extra);
    let cfg = cfg.to_str().unwrap();

    // No key pair yet: the doctor says so and exits non-zero.
    let (code, out, _) = run(dir.path(), &["m365", "doctor", "--config", cfg], None).await;
    assert_ne!(code, 0, "{out}");
    assert!(
        out.lines().any(|l| l.starts_with("FAIL key pair:")),
        "{out}"
    );

    let (code, _, err) = run(dir.path(), &["m365", "keygen", "--config", cfg], None).await;
    assert_eq!(code, 0, "{err}");
    // The certificate is not uploaded yet.
    let (code, out, _) = run(dir.path(), &["m365", "doctor", "--config", cfg], None).await;
    assert_ne!(code, 0);
    assert!(
        out.contains("FAIL token: the certificate uploaded to app") && out.contains("fix: "),
        "{out}"
    );

    let pem = std::fs::read_to_string(dir.path().join("public_key.pem")).unwrap();
    sim.control()
        .add_certificate(&client_id, &pem)
        .await
        .unwrap();
    let (code, out, err) = run(dir.path(), &["m365", "doctor", "--config", cfg], None).await;
    assert_eq!(code, 0, "{out}\n{err}");
    for name in DOCTOR_CHECKS {
        assert!(
            out.lines().any(|l| l.starts_with(&format!("ok   {name}:"))),
            "{name}: {out}"
        );
    }
    for p in FIVE {
        assert!(
            out.lines()
                .any(|l| l.starts_with(&format!("ok   permission {p}:"))),
            "{p}: {out}"
        );
    }

    // A permission removed from the app: named, with what stops working.
    let four: Vec<&str> = FIVE
        .iter()
        .copied()
        .filter(|p| *p != "Calendars.Read")
        .collect();
    sim.control()
        .set_permissions(&client_id, &four, true)
        .await
        .unwrap();
    let (code, out, _) = run(dir.path(), &["m365", "doctor", "--config", cfg], None).await;
    assert_ne!(code, 0);
    assert!(out.contains("FAIL permission Calendars.Read: permission Calendars.Read is missing: calendar status is off"), "{out}");
}
