//! The web app in-process on `127.0.0.1:0`: with an API token ([`server`]), with a console admin
//! and sample extensions ([`console`]), or wired to a simulated Microsoft 365 tenant ([`m365`]).

pub mod console;
pub mod m365;
pub mod server;
pub mod sso;

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

/// The text of a page with the entities askama writes turned back into characters.
pub fn text(html: &str) -> String {
    html.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The value of the first hidden field `name` in `html`.
pub fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} field in page"))
        + marker.len();
    html[start..].split('"').next().unwrap().to_string()
}

/// The `Location` header.
pub fn location(res: &reqwest::Response) -> String {
    res.headers()
        .get(reqwest::header::LOCATION)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

/// Test shorthands on a request: send it and read the body, failing the test on a transport or
/// decoding error.
pub trait Fetch {
    /// The response body as text.
    fn text_body(self) -> impl std::future::Future<Output = String>;
    /// The response body as JSON.
    fn json_body<T: serde::de::DeserializeOwned>(self) -> impl std::future::Future<Output = T>;
}

impl Fetch for reqwest::RequestBuilder {
    async fn text_body(self) -> String {
        self.send().await.unwrap().text().await.unwrap()
    }
    async fn json_body<T: serde::de::DeserializeOwned>(self) -> T {
        self.send().await.unwrap().json().await.unwrap()
    }
}
