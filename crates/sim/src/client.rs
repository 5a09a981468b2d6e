//! A typed Rust client for the `/_sim` control API.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::faults::FaultSpec;
use crate::identity::apps::{NewApp, PermissionsUpdate};
use crate::stats::StatsSnapshot;

/// A control-API call that failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// Transport failure.
    #[error("m365-sim control request failed: {0}")]
    Http(#[from] reqwest::Error),
    /// The sim refused the request.
    #[error("m365-sim refused {what}: HTTP {status}: {body}")]
    Refused {
        /// The call.
        what: String,
        /// HTTP status.
        status: u16,
        /// Response body.
        body: String,
    },
}

/// An app registered with a client secret, and the Graph access token it redeemed.
#[derive(Debug, Clone)]
pub struct AppToken {
    /// The app's client id.
    pub client_id: String,
    /// The app's client secret.
    pub client_secret: String,
    /// A Graph access token from the client-credentials grant.
    pub access_token: String,
}

/// Control-API client.
#[derive(Clone)]
pub struct SimControl {
    base_url: String,
    http: reqwest::Client,
}

impl SimControl {
    /// A client for the simulator at `base_url`.
    pub fn new(base_url: String, http: reqwest::Client) -> Self {
        SimControl { base_url, http }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    async fn check(what: &str, resp: reqwest::Response) -> Result<reqwest::Response, ControlError> {
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap_or_default();
        Err(ControlError::Refused {
            what: what.to_string(),
            status,
            body,
        })
    }

    async fn send_json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ControlError> {
        let mut req = self.http.request(method.clone(), self.url(path));
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = Self::check(&format!("{method} {path}"), req.send().await?).await?;
        let text = resp.text().await?;
        let text = if text.trim().is_empty() {
            "null"
        } else {
            &text
        };
        serde_json::from_str(text).map_err(|e| ControlError::Refused {
            what: format!("{method} {path}"),
            status: 200,
            body: format!("unexpected response: {e}"),
        })
    }

    /// Registers an app; returns its client id.
    pub async fn create_app(&self, app: &NewApp) -> Result<String, ControlError> {
        let v: serde_json::Value = self
            .send_json(reqwest::Method::POST, "/_sim/apps", Some(app))
            .await?;
        Ok(v["client_id"].as_str().unwrap_or_default().to_string())
    }

    /// Uploads a certificate (PEM) for an app.
    pub async fn add_certificate(&self, client_id: &str, pem: &str) -> Result<(), ControlError> {
        let path = format!("/_sim/apps/{client_id}/certificates");
        let resp = self
            .http
            .post(self.url(&path))
            .header("content-type", "application/x-pem-file")
            .body(pem.to_string())
            .send()
            .await?;
        Self::check(&format!("POST {path}"), resp).await?;
        Ok(())
    }

    /// Replaces an app's permissions and consent.
    pub async fn set_permissions(
        &self,
        client_id: &str,
        permissions: &[&str],
        consented: bool,
    ) -> Result<(), ControlError> {
        let body = PermissionsUpdate {
            permissions: permissions.iter().map(|s| s.to_string()).collect(),
            consented,
        };
        let _: serde_json::Value = self
            .send_json(
                reqwest::Method::PUT,
                &format!("/_sim/apps/{client_id}/permissions"),
                Some(&body),
            )
            .await?;
        Ok(())
    }

    /// Makes the next authorize request complete as `user` (UPN or id) without the form.
    pub async fn signin(&self, user: &str) -> Result<(), ControlError> {
        let _: serde_json::Value = self
            .send_json(
                reqwest::Method::POST,
                "/_sim/signin",
                Some(&serde_json::json!({ "user": user })),
            )
            .await?;
        Ok(())
    }

    /// Adds a fault rule.
    pub async fn add_fault(&self, fault: &FaultSpec) -> Result<(), ControlError> {
        let _: serde_json::Value = self
            .send_json(reqwest::Method::POST, "/_sim/faults", Some(fault))
            .await?;
        Ok(())
    }

    /// Loses every change notification from now on (until [`Self::clear_faults`]): what a
    /// webhook that Microsoft cannot reach sees.
    pub async fn drop_notifications(&self) -> Result<(), ControlError> {
        self.add_fault(&FaultSpec {
            path: crate::faults::routes::SUBSCRIPTIONS.into(),
            drop_notifications: Some(true),
            ..Default::default()
        })
        .await
    }

    /// Removes all fault rules.
    pub async fn clear_faults(&self) -> Result<(), ControlError> {
        let _: serde_json::Value = self
            .send_json::<(), _>(reqwest::Method::DELETE, "/_sim/faults", None)
            .await?;
        Ok(())
    }

    /// Request counters.
    pub async fn stats(&self) -> Result<StatsSnapshot, ControlError> {
        self.send_json::<(), _>(reqwest::Method::GET, "/_sim/stats", None)
            .await
    }

    /// Resets the request counters.
    pub async fn clear_stats(&self) -> Result<(), ControlError> {
        let _: serde_json::Value = self
            .send_json::<(), _>(reqwest::Method::DELETE, "/_sim/stats", None)
            .await?;
        Ok(())
    }

    /// Rotates the token signing key; returns the new `kid`.
    pub async fn rotate_keys(&self) -> Result<String, ControlError> {
        let v: serde_json::Value = self
            .send_json::<(), _>(reqwest::Method::POST, "/_sim/keys/rotate", None)
            .await?;
        Ok(v["kid"].as_str().unwrap_or_default().to_string())
    }

    /// Any other control endpoint (`GET /_sim/mail`, `/_sim/subscriptions`, …) as JSON.
    pub async fn get_json(&self, path: &str) -> Result<serde_json::Value, ControlError> {
        self.send_json::<(), _>(reqwest::Method::GET, path, None)
            .await
    }

    /// POSTs JSON to any other control endpoint (`/_sim/seed`, …).
    pub async fn post_json(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, ControlError> {
        self.send_json(reqwest::Method::POST, path, Some(body))
            .await
    }

    /// Registers `app` (with a made-up client secret when it has none), then redeems the
    /// client-credentials grant at `tenant`'s token endpoint: the app, certificate, permissions
    /// and token a test needs before it calls Graph, in one call.
    pub async fn register_app_with_token(
        &self,
        tenant: &str,
        app: &NewApp,
    ) -> Result<AppToken, ControlError> {
        let mut app = app.clone();
        let client_secret = app
            .client_secret
            .get_or_insert_with(|| format!("secret-{}", uuid::Uuid::new_v4()))
            .clone();
        let client_id = self.create_app(&app).await?;
        let access_token = self
            .client_credentials_token(tenant, &client_id, &client_secret)
            .await?;
        Ok(AppToken {
            client_id,
            client_secret,
            access_token,
        })
    }

    /// A Graph token for a registered app from the client-credentials grant with its secret
    /// (https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow).
    pub async fn client_credentials_token(
        &self,
        tenant: &str,
        client_id: &str,
        client_secret: &str,
    ) -> Result<String, ControlError> {
        let path = format!("/{tenant}/oauth2/v2.0/token");
        let resp = self
            .http
            .post(self.url(&path))
            .form(&[
                ("client_id", client_id),
                ("client_secret", client_secret),
                ("scope", "https://graph.microsoft.com/.default"),
                ("grant_type", "client_credentials"),
            ])
            .send()
            .await?;
        let body: serde_json::Value = Self::check(&format!("POST {path}"), resp)
            .await?
            .json()
            .await?;
        body["access_token"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| ControlError::Refused {
                what: format!("POST {path}"),
                status: 200,
                body: format!("no access_token in {body}"),
            })
    }

    /// Registers a consented app holding `permissions` and returns its Graph token (see
    /// [`SimControl::register_app_with_token`]).
    pub async fn app_token(
        &self,
        tenant: &str,
        permissions: &[&str],
    ) -> Result<AppToken, ControlError> {
        let app = NewApp {
            display_name: "m365-sim test app".into(),
            permissions: permissions.iter().map(|p| p.to_string()).collect(),
            consented: true,
            ..NewApp::default()
        };
        self.register_app_with_token(tenant, &app).await
    }
}
