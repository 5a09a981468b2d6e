//! The one test kit of pbx365 (dev-only): what every crate's tests need, written once.
//!
//! - [`db`]: a throwaway database on SQLite (a temp file) or PostgreSQL (a fresh database on the
//!   server named by `PBX365_TEST_POSTGRES_URL`), and [`on_both!`] to run a test on both;
//! - [`tenant`]: a simulated Microsoft 365 tenant (m365-sim) with pbx365's app registered;
//! - [`web`]: the web app on `127.0.0.1:0` with an admin, an API token and HTTP clients;
//! - [`browser`]: headless Chromium through chromedriver;
//! - [`process`]: the `pbx365` binary (and `sync-once`) as child processes;
//! - [`sip`]: free ports, Kamailio's JSON-RPC and baresip (a real SIP phone) for phone tests;
//! - [`smtp`]: a plain SMTP sink recording what the SMTP mail transport sends;
//! - [`sync`]: running the sync engine and reading what it wrote; [`data`]: test data;
//! - [`oidc`]: a fake OpenID provider and a token signer for relying-party conformance tests;
//! - [`receiver`]: the change-notification receiver on real HTTP, for subscriptions the sim validates;
//! - [`wait`] and [`log`]: polling for a condition, capturing log output.

#![warn(missing_docs)]

pub mod browser;
pub mod data;
pub mod db;
pub mod log;
pub mod oidc;
pub mod process;
pub mod receiver;
pub mod sip;
pub mod smtp;
pub mod sync;
pub mod tenant;
pub mod wait;
pub mod web;

/// Runs async test bodies on SQLite and on PostgreSQL.
///
/// `on_both!(a, b)` turns each `async fn a(db: D)` into `mod a { fn sqlite(); fn postgres(); }`;
/// `on_both!(name => body)` names the module `name` and runs `async fn body(db: D)`. `D` is any
/// [`db::Fixture`]: [`db::TestDb`] (a migrated, open store) or [`db::FreshDb`] (an empty
/// database the test opens itself, e.g. through a `pbx365` child process).
#[macro_export]
macro_rules! on_both {
    ($name:ident => $body:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $crate::db::on_sqlite(super::$body).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                $crate::db::on_postgres(super::$body).await
            }
        }
    };
    ($($name:ident),+ $(,)?) => {
        $( $crate::on_both!($name => $name); )+
    };
}
