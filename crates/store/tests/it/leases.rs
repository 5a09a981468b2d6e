//! Job leases: one holder at a time, renewal, release, take-over after expiry, growing tokens.

use chrono::Duration;
use pbx365_testkit::db::TestDb;
use pbx365_testkit::on_both;

async fn a_lease_has_one_holder_until_released_or_expired(db: TestDb) {
    let s = &db.store;
    let ttl = Duration::seconds(30);
    let a = s
        .try_acquire_lease("sync", "a", ttl)
        .await
        .unwrap()
        .expect("free");
    assert_eq!(
        s.try_acquire_lease("sync", "b", ttl).await.unwrap(),
        None,
        "held by a"
    );
    assert_eq!(s.lease_holder("sync").await.unwrap().as_deref(), Some("a"));
    assert!(s.renew_lease("sync", "a", a, ttl).await.unwrap());
    assert!(
        !s.renew_lease("sync", "b", a, ttl).await.unwrap(),
        "b never held it"
    );
    s.release_lease("sync", "a", a).await.unwrap();
    assert_eq!(s.lease_holder("sync").await.unwrap(), None);
    let b = s
        .try_acquire_lease("sync", "b", ttl)
        .await
        .unwrap()
        .expect("released");
    assert!(b > a, "the fencing token grows with every holder");
    assert!(
        !s.renew_lease("sync", "a", a, ttl).await.unwrap(),
        "a lost it"
    );

    // An expired lease (its holder died) is taken over.
    let c = s
        .try_acquire_lease("other", "c", Duration::seconds(-1))
        .await
        .unwrap()
        .unwrap();
    let d = s
        .try_acquire_lease("other", "d", ttl)
        .await
        .unwrap()
        .expect("expired");
    assert!(d > c);
    assert!(!s.renew_lease("other", "c", c, ttl).await.unwrap());
}

on_both!(a_lease_has_one_holder_until_released_or_expired);
