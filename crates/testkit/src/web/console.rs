//! A pbx365 web app running in-process for console and browser tests: temp SQLite store, one
//! admin with a known password, a few extensions, a hand-moved clock.

use chrono::{TimeZone, Utc};
use pbx365_domain::settings::Settings;
use pbx365_domain::{
    Extension, ExtensionNumber, ExtensionSource, NewExtension, Profile, ProfileSource, ProfileState,
};
use pbx365_store::Store;
use pbx365_web::session::{ManualClock, SessionPolicy};
use pbx365_web::{password, AppState};
use std::sync::Arc;

pub use super::{http_client, ADMIN, PASSWORD};
pub use crate::data::PNG_1X1;

/// A running app.
pub struct ConsoleApp {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// The state the server uses (store, sessions).
    pub state: AppState,
    /// The sessions' clock.
    pub clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for ConsoleApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn ext(number: &str, first: &str, last: &str, dept: &str, source: ExtensionSource) -> Extension {
    Extension {
        number: ExtensionNumber::from_trusted(number.into()),
        first_name: first.into(),
        last_name: last.into(),
        display_name: format!("{first} {last}"),
        email: Some(format!("{}@contoso.com", first.to_lowercase())),
        mobile: None,
        outbound_caller_id: None,
        department: Some(dept.into()),
        job_title: None,
        office: None,
        enabled: true,
        source,
        m365_id: (source == ExtensionSource::M365)
            .then(|| format!("6731de76-14a6-49ae-97bc-6eba6914{number:0>4}")),
        photo: None,
        is_admin: false,
        groups: vec![],
        profile: ProfileState::default(),
        disabled_at: None,
        updated_at: Utc::now(),
    }
}

/// Starts the app; `public_url` overrides the loopback URL (to test https cookie rules).
pub async fn start(public_url: Option<&str>) -> ConsoleApp {
    start_on(crate::db::sqlite().await, public_url).await
}

/// Starts the app on the given test database (SQLite or PostgreSQL).
pub async fn start_on(db: crate::db::FreshDb, public_url: Option<&str>) -> ConsoleApp {
    let store = Store::connect(&db.url).await.unwrap();
    let dir = db.dir;

    store
        .create_admin(ADMIN, &password::hash_password(PASSWORD).unwrap())
        .await
        .unwrap();
    let anna = NewExtension {
        first_name: "Anna".into(),
        last_name: "Berg".into(),
        email: Some("anna@contoso.com".into()),
        department: Some("Sales".into()),
        ..Default::default()
    }
    .validated()
    .unwrap();
    store.create_local_extension("100", &anna).await.unwrap();
    let mut ben = ext("101", "Ben", "Cole", "Support", ExtensionSource::M365);
    ben.profile = ProfileState {
        profile: Profile::Dnd,
        source: ProfileSource::Manual,
        until: None,
        return_to: None,
    };
    let mut cleo = ext("102", "Cleo", "Dunn", "Finance", ExtensionSource::M365);
    cleo.enabled = false;
    crate::data::put_extensions(&store, &[ben, cleo])
        .await
        .unwrap();
    store
        .put_photo("101", "etag-1", "image/png", PNG_1X1)
        .await
        .unwrap();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let settings = Settings {
        data_dir: dir.path().to_path_buf(),
        public_url: Some(public_url.unwrap_or(&base).to_string()),
        ..Settings::default()
    };
    let mut state = AppState::new(store.clone(), settings);
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap(),
    ));
    state.sessions = state.sessions.with_clock(clock.clone());
    let app = pbx365_web::router(state.clone());
    // The listener is bound before the server task starts, so connections queue until it serves.
    let server = tokio::spawn(async move {
        // With the peer address, as `pbx365 serve` does (sign-in throttling counts by address).
        let service = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
        let _ = axum::serve(listener, service).await;
    });
    ConsoleApp {
        base,
        state,
        clock,
        _dir: dir,
        server,
    }
}

impl ConsoleApp {
    /// The cookie policy in force.
    pub fn policy(&self) -> SessionPolicy {
        *self.state.sessions.policy()
    }
}
