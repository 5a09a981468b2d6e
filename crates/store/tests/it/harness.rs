//! Runs one test body on SQLite and on PostgreSQL.

use pbx365_store::{testing, Store};
use std::future::Future;

/// What a test gets: the store and the URL it was opened with (to reopen it).
pub struct TestDb {
    pub store: Store,
    pub url: String,
}

/// Generates `mod <test> { fn sqlite(); fn postgres(); }` for each named `async fn <test>(TestDb)`.
#[macro_export]
macro_rules! on_both {
    ($($name:ident),* $(,)?) => { $(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $crate::harness::on_sqlite(super::$name).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                $crate::harness::on_postgres(super::$name).await
            }
        }
    )* };
}

/// Runs `test` on a store in a new SQLite file.
pub async fn on_sqlite<F, Fut>(test: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/data/pbx365.db", dir.path().display());
    let store = Store::connect(&url).await.expect("open SQLite store");
    test(TestDb {
        store: store.clone(),
        url,
    })
    .await;
    store.close().await;
}

/// The admin URL of the test PostgreSQL server; `None` (with a notice) when it is not set
/// locally. In CI (`CI` set) a missing server fails the test: PostgreSQL is never skipped there.
pub fn postgres_admin_url() -> Option<String> {
    match std::env::var("PBX365_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => panic!(
            "PBX365_TEST_POSTGRES_URL is not set but CI is: the PostgreSQL tests must run in CI; \
             run them through scripts/with-postgres"
        ),
        _ => {
            // Written to the real stderr (not captured by the test harness), once per run.
            static NOTICE: std::sync::Once = std::sync::Once::new();
            NOTICE.call_once(|| {
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr(),
                    "notice: PBX365_TEST_POSTGRES_URL is not set, so the PostgreSQL variants are skipped; \
                     run `scripts/with-postgres cargo test -p pbx365-store` to include them"
                );
            });
            None
        }
    }
}

/// Runs `test` on a store in a new PostgreSQL database.
pub async fn on_postgres<F, Fut>(test: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(admin) = postgres_admin_url() else {
        return;
    };
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    let url = testing::create_postgres_database(&admin, &name)
        .await
        .expect("create a test database");
    let store = Store::connect(&url).await.expect("open PostgreSQL store");
    test(TestDb {
        store: store.clone(),
        url,
    })
    .await;
    store.close().await;
    // Best effort: the cluster is thrown away anyway.
    let _ = testing::drop_postgres_database(&admin, &name).await;
}

/// A synced extension with every field filled.
pub fn synced_extension(number: &str, m365_id: &str) -> pbx365_domain::Extension {
    use chrono::TimeZone;
    use pbx365_domain::*;
    Extension {
        number: ExtensionNumber::from_trusted(number.to_string()),
        first_name: "Anna".into(),
        last_name: format!("Berg {number}"),
        display_name: format!("Anna Berg {number}"),
        email: Some(format!("anna.{number}@contoso.com")),
        mobile: Some("+49 170 1234567".into()),
        outbound_caller_id: Some("+49 30 1234567".into()),
        department: Some("Sales".into()),
        job_title: Some("Account manager".into()),
        office: Some("Berlin".into()),
        enabled: true,
        source: ExtensionSource::M365,
        m365_id: Some(m365_id.to_string()),
        photo: None,
        is_admin: false,
        groups: vec![AZURE_AD_GROUP.to_string()],
        profile: ProfileState::default(),
        disabled_at: None,
        updated_at: chrono::Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap(),
    }
}

/// A plausible Microsoft object id for test number `n`.
pub fn object_id(n: u32) -> String {
    format!("{n:08x}-0000-4000-8000-000000000000")
}
