//! `/{tenant}/oauth2/v2.0/authorize`: the sign-in page and authorization codes.

/// An issued authorization code awaiting redemption.
#[derive(Debug, Clone)]
pub struct AuthCode {
    /// Client the code was issued to.
    pub client_id: String,
    /// Redirect URI of the authorize request (must match at redemption).
    pub redirect_uri: String,
    /// Signed-in user's object id.
    pub user_id: String,
    /// Requested scopes.
    pub scope: String,
    /// Nonce to echo in the ID token.
    pub nonce: Option<String>,
    /// PKCE challenge and method.
    pub code_challenge: Option<(String, String)>,
    /// Expiry, unix seconds.
    pub expires_at: i64,
}
