//! Key storage: file modes, refusal of readable keys, rotation without outage.

use pbx365_domain::settings::AssertionAlg;
use pbx365_graph::keys::{KeyError, Slot};
use pbx365_graph::GraphError;
use pbx365_testkit::tenant::{client, register, sim, PERMISSIONS as ALL_PERMISSIONS};
use std::os::unix::fs::PermissionsExt;

#[tokio::test]
async fn key_file_is_private_and_a_group_readable_one_is_refused() {
    let sim = sim(0).await;
    let pbx = register(&sim, &ALL_PERMISSIONS, true).await;
    let path = pbx.keys.path(Slot::Active);
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::metadata(pbx.keys.dir())
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );

    pbx.keys.check_file_modes().unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(pbx.keys.check_file_modes().is_err(), "start-up refuses it");
    let err = pbx.keys.load_active().unwrap_err();
    assert!(matches!(err, KeyError::ReadableByOthers { .. }));
    let text = err.to_string();
    assert!(
        text.contains("is readable by other users")
            && text.contains(&format!("run chmod 600 {}", path.display())),
        "{text}"
    );
    // The client refuses to use it too, with the same sentence.
    let err = client(&sim, &pbx, AssertionAlg::PS256)
        .token()
        .await
        .unwrap_err();
    assert!(
        matches!(err, GraphError::Key(KeyError::ReadableByOthers { .. })),
        "{err:?}"
    );
}

#[tokio::test]
async fn rotation_keeps_the_old_key_working_until_the_new_one_got_a_token() {
    let sim = sim(2).await;
    let pbx = register(&sim, &ALL_PERMISSIONS, true).await;
    let client = client(&sim, &pbx, AssertionAlg::PS256);
    client.list_users().await.unwrap();
    let old = pbx.keys.load_active().unwrap().certificate().clone();

    let generated = pbx.keys.generate("pbx.test").unwrap();
    assert_eq!(generated.slot, Slot::Pending);
    assert_eq!(
        pbx.keys.certificate_for_upload().unwrap().unwrap(),
        generated.certificate,
        "the new certificate is offered"
    );

    // Not uploaded yet: tokens still come from the old key, nothing breaks.
    client.tokens().invalidate().await;
    client.list_users().await.unwrap();
    assert!(pbx.keys.exists(Slot::Pending));
    assert_eq!(
        pbx.keys.load_active().unwrap().certificate().x5t_s256,
        old.x5t_s256
    );

    // Uploaded: the next token uses the new key, which then becomes the active one.
    sim.control()
        .add_certificate(&pbx.client_id, &generated.certificate.pem)
        .await
        .unwrap();
    client.tokens().invalidate().await;
    client.list_users().await.unwrap();
    assert!(!pbx.keys.exists(Slot::Pending));
    assert_eq!(
        pbx.keys.load_active().unwrap().certificate().x5t_s256,
        generated.certificate.x5t_s256
    );
}
