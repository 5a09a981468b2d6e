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
    oauth_state_can_be_taken_only_once,
    expired_oauth_state_is_refused,
    concurrent_takers_of_one_oauth_state_get_it_once,
);
