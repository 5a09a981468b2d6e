//! The one HTML layer of every page (console, Microsoft 365 settings, web client, sign-in):
//! rendering, the page chrome around console content, the full-page message, and the security
//! headers. Future web client pages (`/`) use the same pieces.

use askama::Template;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};

/// Content-Security-Policy of every page: only our own origin, no inline script, no framing.
pub const CSP: &str =
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Renders a template as an HTML response with `status`.
pub fn render<T: Template>(status: StatusCode, page: &T) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template rendering failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "The page could not be rendered; the server log has details.",
            )
                .into_response()
        }
    }
}

/// What the console shell (`console/shell.html`) shows around every console page's content.
pub struct Chrome {
    /// Signed-in admin.
    pub admin: String,
    /// The session's CSRF token for the forms on the page (and the sign-out button).
    pub csrf: String,
    /// Navigation entry to highlight.
    pub active: &'static str,
    /// A one-off confirmation ("Extension 100 was added."), shown as a flash message.
    pub notice: Option<String>,
}

/// A full page with one message and a way back (forbidden, not found, failure, refused
/// sign-in answer).
#[derive(Template)]
#[template(path = "error.html")]
pub struct MessagePage {
    /// Heading.
    pub title: String,
    /// The sentence.
    pub message: String,
    /// Where the button leads.
    pub back_href: String,
    /// The button's label.
    pub back_label: String,
}

/// A full-page message with a link back to the console.
pub fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    message_page(status, title, message, "/console", "Back to the console")
}

/// A full-page message for a web client user: the way back leads to the web client, not to
/// the console they may not use.
pub fn webclient_error_page(status: StatusCode, title: &str, message: &str) -> Response {
    message_page(status, title, message, "/", "Back to the web client")
}

fn message_page(
    status: StatusCode,
    title: &str,
    message: &str,
    back_href: &str,
    back_label: &str,
) -> Response {
    render(
        status,
        &MessagePage {
            title: title.to_string(),
            message: message.to_string(),
            back_href: back_href.into(),
            back_label: back_label.into(),
        },
    )
}

/// Capitalises the first letter of a sentence from below (a domain or Graph error) and ends
/// it with a full stop, for display on its own.
pub fn sentence(s: impl std::fmt::Display) -> String {
    let s = s.to_string();
    let s = s.trim();
    let mut c = s.chars();
    let mut out: String = match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    };
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

/// Adds the browser-hardening headers to every page; pages (not static files) are also marked
/// `no-store`, so the back button after sign-out asks the server again instead of showing a
/// cached page. A page that needs a wider CSP (the Configure page posts to the identity
/// platform) sets its own; `no-referrer` keeps an OAuth answer's query out of later requests.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

/// A stored photo as an HTTP answer: only image types a browser treats as images keep their
/// content type (anything else becomes a download), privately cacheable for a few minutes.
pub fn photo_response(photo: Option<(String, Vec<u8>)>) -> axum::response::Response {
    use axum::response::IntoResponse;
    match photo {
        Some((content_type, bytes)) => {
            let ct = if matches!(
                content_type.as_str(),
                "image/jpeg" | "image/png" | "image/gif" | "image/webp"
            ) {
                content_type
            } else {
                "application/octet-stream".to_string()
            };
            (
                [
                    (axum::http::header::CONTENT_TYPE, ct),
                    (
                        axum::http::header::CACHE_CONTROL,
                        "private, max-age=300".to_string(),
                    ),
                ],
                bytes,
            )
                .into_response()
        }
        None => (StatusCode::NOT_FOUND, "no photo").into_response(),
    }
}

/// Marks an answer that carries or ends an OAuth/OpenID exchange: not cached, and no
/// `Referer` leaking the URL (with its code or state) to the next site.
pub fn private(mut res: axum::response::Response) -> axum::response::Response {
    use axum::http::{header, HeaderValue};
    let h = res.headers_mut();
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// The `csrf` field of a posted form (empty when absent).
pub fn posted_csrf(body: &[u8]) -> String {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap_or_default();
    pairs
        .into_iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_start_upper_case_and_end_with_a_stop() {
        assert_eq!(sentence("the number is taken"), "The number is taken.");
        assert_eq!(sentence(" Done. "), "Done.");
        assert_eq!(sentence(""), ".");
    }
}
