//! The web app in-process on `127.0.0.1:0`: with an API token ([`server`]), with a console admin
//! and sample extensions ([`console`]), or wired to a simulated Microsoft 365 tenant ([`m365`]).

pub mod console;
pub mod m365;
pub mod server;

/// The console admin every test signs in as.
pub const ADMIN: &str = "admin";
/// Its password.
pub const PASSWORD: &str = "correct horse battery staple";

/// An HTTP client that does not follow redirects (so tests see each `Location`).
pub fn http_client() -> reqwest::Client {
    // reqwest is built without a bundled crypto provider; pick the one rustls ships with.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}
