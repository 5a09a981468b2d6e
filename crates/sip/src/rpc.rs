//! Kamailio's JSON-RPC over HTTP (modules `xhttp` + `jsonrpcs`).

use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Why a JSON-RPC call failed, in words for the console's status page.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RpcError {
    /// Kamailio could not be reached (not running, wrong `sip.rpc_url`).
    #[error("Kamailio's JSON-RPC at {url} cannot be reached: {reason}")]
    Unreachable { url: String, reason: String },
    /// Kamailio answered with an error.
    #[error("Kamailio refused {method}: {message}")]
    Refused { method: String, message: String },
}

/// What Kamailio counted of attacks since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AttackCounts {
    /// Failed digest authentications (wrong secret or unknown user).
    pub auth_failed: u64,
    /// Source addresses banned (too many failures, or a request flood).
    pub banned: u64,
}

/// A JSON-RPC client for one Kamailio.
#[derive(Debug, Clone)]
pub struct RpcClient {
    url: String,
    http: reqwest::Client,
    next_id: std::sync::Arc<AtomicU64>,
}

impl RpcClient {
    /// A client for `url` (`sip.rpc_url`); each call gives up after two seconds.
    pub fn new(url: &str) -> RpcClient {
        // reqwest's no-provider rustls build needs a process-wide provider (an https rpc_url).
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .no_proxy()
            .build()
            .unwrap_or_default();
        RpcClient {
            url: url.to_string(),
            http,
            next_id: Default::default(),
        }
    }

    /// The endpoint.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Calls `method` with positional `params`; the `result` on success.
    pub async fn call(&self, method: &str, params: Value) -> Result<Value, RpcError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let body = json!({"jsonrpc": "2.0", "method": method, "params": params, "id": id});
        let unreachable = |reason: String| RpcError::Unreachable {
            url: self.url.clone(),
            reason,
        };
        let response = self
            .http
            .post(&self.url)
            .json(&body)
            .send()
            .await
            .map_err(|e| unreachable(transport_reason(&e)))?;
        let status = response.status();
        let answer: Value = response
            .json()
            .await
            .map_err(|e| unreachable(format!("HTTP {status}, not a JSON-RPC answer ({e})")))?;
        if let Some(err) = answer.get("error") {
            return Err(RpcError::Refused {
                method: method.to_string(),
                message: err
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown error")
                    .to_string(),
            });
        }
        Ok(answer.get("result").cloned().unwrap_or(Value::Null))
    }

    /// The counters Kamailio keeps for pbx365's status page (`htable` `stats`): failed
    /// authentications and bans since it started.
    pub async fn attack_counts(&self) -> Result<AttackCounts, RpcError> {
        let mut counts = AttackCounts::default();
        for (key, slot) in [
            ("auth_failed", &mut counts.auth_failed),
            ("banned", &mut counts.banned),
        ] {
            *slot = match self.call("htable.get", json!(["stats", key])).await {
                Ok(v) => v["item"]["value"].as_u64().unwrap_or(0),
                // Not counted yet: the key does not exist.
                Err(RpcError::Refused { .. }) => 0,
                Err(e) => return Err(e),
            };
        }
        Ok(counts)
    }

    /// The users (extension numbers) in a confirmed call now: both ends of every confirmed
    /// dialog Kamailio tracks (`dlg.list`).
    pub async fn users_on_calls(&self) -> Result<std::collections::BTreeSet<String>, RpcError> {
        let list = self.call("dlg.list", json!([])).await?;
        let mut users = std::collections::BTreeSet::new();
        for dlg in list.as_array().into_iter().flatten() {
            // 3: answered, ACK not seen yet; 4: confirmed.
            if !matches!(dlg["state"].as_u64(), Some(3 | 4)) {
                continue;
            }
            for side in ["from_uri", "to_uri"] {
                if let Some(user) = dlg[side].as_str().and_then(uri_user) {
                    users.insert(user.to_string());
                }
            }
        }
        Ok(users)
    }

    /// True when Kamailio answers (`core.version`).
    pub async fn is_up(&self) -> bool {
        self.call("core.version", json!([])).await.is_ok()
    }
}

/// What went wrong on the way to Kamailio, in words an admin can act on (reqwest's own text
/// only says "error sending request").
fn transport_reason(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "it did not answer within 2 seconds; check that Kamailio is not overloaded".into();
    }
    if e.is_connect() {
        return "nothing accepts connections there; start Kamailio (or set sip.manage_kamailio = true) or correct sip.rpc_url".into();
    }
    let mut innermost: &dyn std::error::Error = e;
    while let Some(source) = innermost.source() {
        innermost = source;
    }
    innermost.to_string()
}

/// The user part of a SIP URI (`sip:101@host;…` -> `101`).
fn uri_user(uri: &str) -> Option<&str> {
    let rest = uri
        .strip_prefix("sip:")
        .or_else(|| uri.strip_prefix("sips:"))?;
    let (user, _) = rest.split_once('@')?;
    (!user.is_empty()).then_some(user)
}

/// `url` with any password replaced, for messages.
pub(crate) fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((auth, host)) => {
                let user = auth.split(':').next().unwrap_or_default();
                format!("{scheme}://{user}:***@{host}")
            }
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_kamailio_that_is_not_running_is_named_with_what_to_do() {
        // A port nothing listens on: bound, then released.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}/RPC");
        let e = RpcClient::new(&url)
            .call("core.version", json!([]))
            .await
            .unwrap_err();
        let said = e.to_string();
        assert!(
            said.contains(&url) && said.contains("start Kamailio"),
            "{said}"
        );
    }
}
