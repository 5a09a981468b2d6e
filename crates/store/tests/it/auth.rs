//! Admins, API tokens, sessions, OAuth states.

use chrono::{Duration, Utc};
use pbx365_store::{OAuthState, SessionRecord, StoreError};
use pbx365_testkit::db::TestDb;
use pbx365_testkit::on_both;

async fn admins_are_created_once_and_counted(db: TestDb) {
    assert_eq!(db.store.count_admins().await.unwrap(), 0);
    let admin = db
        .store
        .create_admin("root", "$argon2id$v=19$hash")
        .await
        .unwrap();
    assert_eq!(db.store.get_admin("root").await.unwrap(), Some(admin));
    let err = db.store.create_admin("root", "x").await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }));
    assert_eq!(err.to_string(), "admin 'root' already exists");
    assert_eq!(db.store.count_admins().await.unwrap(), 1);
    assert!(db.store.get_admin("nobody").await.unwrap().is_none());
    db.store.set_admin_password("root", "new").await.unwrap();
    assert_eq!(
        db.store
            .get_admin("root")
            .await
            .unwrap()
            .unwrap()
            .password_hash,
        "new"
    );
}

async fn api_tokens_are_found_by_hash_and_revoked_by_name(db: TestDb) {
    let t = db.store.create_api_token("ci", "ab12").await.unwrap();
    assert_eq!(
        db.store.find_api_token("ab12").await.unwrap(),
        Some(t.clone())
    );
    assert!(db.store.find_api_token("ffff").await.unwrap().is_none());
    assert_eq!(db.store.list_api_tokens().await.unwrap(), vec![t]);
    assert_eq!(db.store.delete_api_tokens_named("ci").await.unwrap(), 1);
    assert!(db.store.find_api_token("ab12").await.unwrap().is_none());
}

async fn sessions_are_touched_and_deleted(db: TestDb) {
    let now = Utc::now();
    let s = SessionRecord {
        id_hash: "h1".into(),
        subject: "root".into(),
        created_at: now,
        last_seen_at: now,
        csrf_token: "csrf".into(),
        authenticated_at: now,
        user_agent: "Firefox on Linux".into(),
    };
    db.store.create_session(&s).await.unwrap();
    assert_eq!(db.store.get_session("h1").await.unwrap(), Some(s.clone()));
    let later = now + Duration::minutes(5);
    db.store.touch_session("h1", later).await.unwrap();
    assert_eq!(
        db.store
            .get_session("h1")
            .await
            .unwrap()
            .unwrap()
            .last_seen_at,
        later
    );
    db.store.delete_session("h1").await.unwrap();
    assert!(db.store.get_session("h1").await.unwrap().is_none());

    db.store
        .create_session(&SessionRecord {
            id_hash: "old".into(),
            ..s.clone()
        })
        .await
        .unwrap();
    db.store
        .create_session(&SessionRecord {
            id_hash: "idle".into(),
            created_at: now + Duration::hours(1),
            ..s.clone()
        })
        .await
        .unwrap();
    db.store
        .create_session(&SessionRecord {
            id_hash: "fresh".into(),
            created_at: now + Duration::hours(1),
            last_seen_at: now + Duration::hours(2),
            ..s.clone()
        })
        .await
        .unwrap();
    let pruned = db
        .store
        .prune_sessions(now + Duration::minutes(30), now + Duration::minutes(90))
        .await
        .unwrap();
    assert_eq!(pruned, 2);
    assert!(db.store.get_session("fresh").await.unwrap().is_some());
}

async fn sessions_are_listed_per_owner_reauthenticated_and_revoked_only_by_it(db: TestDb) {
    let now = Utc::now();
    let s = |hash: &str, subject: &str, seen: i64| SessionRecord {
        id_hash: hash.into(),
        subject: subject.into(),
        created_at: now,
        last_seen_at: now + Duration::minutes(seen),
        csrf_token: "csrf".into(),
        authenticated_at: now,
        user_agent: format!("browser {hash}"),
    };
    for rec in [
        s("a1", "ext:201", 1),
        s("a2", "ext:201", 2),
        s("b1", "ext:202", 3),
    ] {
        db.store.create_session(&rec).await.unwrap();
    }
    let mine = db.store.list_sessions_of("ext:201").await.unwrap();
    let hashes: Vec<&str> = mine.iter().map(|r| r.id_hash.as_str()).collect();
    assert_eq!(
        hashes,
        ["a2", "a1"],
        "most recently used first, only the owner's"
    );
    assert_eq!(mine[0].user_agent, "browser a2");
    // Re-entering the password moves the authentication time (and counts as activity).
    let later = now + Duration::minutes(7);
    db.store.reauthenticate_session("a1", later).await.unwrap();
    let a1 = db.store.get_session("a1").await.unwrap().unwrap();
    assert_eq!((a1.authenticated_at, a1.last_seen_at), (later, later));
    // Another owner's session is not revoked through mine.
    assert!(!db.store.delete_session_of("ext:201", "b1").await.unwrap());
    assert!(db.store.get_session("b1").await.unwrap().is_some());
    assert!(db.store.delete_session_of("ext:201", "a2").await.unwrap());
    db.store
        .create_session(&s("a3", "ext:201", 4))
        .await
        .unwrap();
    assert_eq!(
        db.store
            .delete_other_sessions_of("ext:201", "a1")
            .await
            .unwrap(),
        1
    );
    let left: Vec<String> = db
        .store
        .list_sessions_of("ext:201")
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id_hash)
        .collect();
    assert_eq!(left, ["a1"]);
    assert!(db.store.get_session("b1").await.unwrap().is_some());
}

fn state(hash: &str, expires_in: Duration) -> OAuthState {
    OAuthState {
        state_hash: hash.into(),
        purpose: "sso_console".into(),
        session_hash: "sess".into(),
        data: serde_json::json!({"nonce": "n", "verifier": "v", "return": "/console"}),
        expires_at: Utc::now() + expires_in,
    }
}

async fn oauth_state_can_be_taken_only_once(db: TestDb) {
    let s = state("st1", Duration::minutes(10));
    db.store.put_oauth_state(&s).await.unwrap();
    assert_eq!(
        db.store.take_oauth_state("st1", Utc::now()).await.unwrap(),
        Some(s)
    );
    assert_eq!(
        db.store.take_oauth_state("st1", Utc::now()).await.unwrap(),
        None
    );
    assert_eq!(
        db.store
            .take_oauth_state("unknown", Utc::now())
            .await
            .unwrap(),
        None
    );
}

async fn expired_oauth_state_is_refused(db: TestDb) {
    db.store
        .put_oauth_state(&state("st2", Duration::minutes(10)))
        .await
        .unwrap();
    assert_eq!(
        db.store
            .take_oauth_state("st2", Utc::now() + Duration::minutes(11))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        db.store.take_oauth_state("st2", Utc::now()).await.unwrap(),
        None,
        "and it is gone"
    );
}

async fn concurrent_takers_of_one_oauth_state_get_it_once(db: TestDb) {
    for round in 0..20 {
        let hash = format!("race{round}");
        db.store
            .put_oauth_state(&state(&hash, Duration::minutes(10)))
            .await
            .unwrap();
        let takers: Vec<_> = (0..8)
            .map(|_| {
                let store = db.store.clone();
                let hash = hash.clone();
                tokio::spawn(
                    async move { store.take_oauth_state(&hash, Utc::now()).await.unwrap() },
                )
            })
            .collect();
        let mut winners = 0;
        for t in takers {
            if t.await.unwrap().is_some() {
                winners += 1;
            }
        }
        assert_eq!(winners, 1, "round {round}");
    }
}

on_both!(
    admins_are_created_once_and_counted,
    api_tokens_are_found_by_hash_and_revoked_by_name,
    sessions_are_touched_and_deleted,
    sessions_are_listed_per_owner_reauthenticated_and_revoked_only_by_it,
    oauth_state_can_be_taken_only_once,
    expired_oauth_state_is_refused,
    concurrent_takers_of_one_oauth_state_get_it_once,
);
