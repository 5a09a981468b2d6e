//! What the identity platform issues and remembers, as plain data: the claims of Graph access
//! tokens and pending authorization codes. Shared state holds these; the handlers that make
//! and check them live in `access`, `token` and `authorize`.

use serde::{Deserialize, Serialize};

/// Claims of the access tokens the sim issues for Graph (v1.0 token format, graph-facts §1).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    /// `https://graph.microsoft.com`.
    pub aud: String,
    /// `https://sts.windows.net/{tid}/`.
    pub iss: String,
    /// Identity provider, same as `iss` for app-only tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idp: Option<String>,
    /// Issued at.
    pub iat: i64,
    /// Not before.
    pub nbf: i64,
    /// Expiry.
    pub exp: i64,
    /// Client id.
    pub appid: String,
    /// `"1"` secret, `"2"` certificate.
    pub appidacr: String,
    /// App display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_displayname: Option<String>,
    /// `"app"` for app-only tokens, `"user"` for delegated ones.
    pub idtyp: String,
    /// Service principal (app-only) or user (delegated) object id.
    pub oid: String,
    /// Same as `oid` for app-only tokens.
    pub sub: String,
    /// Tenant id.
    pub tid: String,
    /// Granted application permissions; absent when none were consented.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    /// Delegated scopes (space separated), delegated tokens only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scp: Option<String>,
    /// Signed-in user's UPN, delegated tokens only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upn: Option<String>,
    /// Signed-in user's name, delegated tokens only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Unique token id.
    pub uti: String,
    /// `"1.0"`.
    pub ver: String,
}

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
    /// Already exchanged for tokens (codes are single use).
    pub redeemed: bool,
}

/// What a refresh token stands for: a user signed in to an app with some scopes.
#[derive(Debug, Clone)]
pub struct RefreshGrant {
    /// Client the token was issued to.
    pub client_id: String,
    /// Signed-in user's object id.
    pub user_id: String,
    /// Scopes of the original request (space separated).
    pub scope: String,
    /// Expiry, unix seconds.
    pub expires_at: i64,
}
