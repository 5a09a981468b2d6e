//! Console admins, API tokens, sessions and single-use OAuth states.

use crate::db::{conflict_or, parse_ts, parse_ts_opt, ts};
use crate::{Admin, ApiTokenRecord, OAuthState, SessionRecord, Store, StoreError, StoreResult};
use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::Row;

fn row_to_session(r: &AnyRow) -> StoreResult<SessionRecord> {
    let created_at = parse_ts(&r.try_get::<String, _>("created_at")?)?;
    Ok(SessionRecord {
        id_hash: r.try_get("id_hash")?,
        subject: r.try_get("subject")?,
        created_at,
        last_seen_at: parse_ts(&r.try_get::<String, _>("last_seen_at")?)?,
        csrf_token: r.try_get("csrf_token")?,
        authenticated_at: match parse_ts_opt(r.try_get("authenticated_at")?)? {
            Some(t) => t,
            None => created_at,
        },
        user_agent: r
            .try_get::<Option<String>, _>("user_agent")?
            .unwrap_or_default(),
    })
}

/// The columns [`row_to_session`] reads.
const SESSION_COLUMNS: &str =
    "id_hash, subject, created_at, last_seen_at, csrf_token, authenticated_at, user_agent";

fn row_to_token(r: &AnyRow) -> StoreResult<ApiTokenRecord> {
    Ok(ApiTokenRecord {
        name: r.try_get("name")?,
        token_hash: r.try_get("token_hash")?,
        created_at: parse_ts(&r.try_get::<String, _>("created_at")?)?,
        expires_at: parse_ts_opt(r.try_get("expires_at")?)?,
        last_used_at: parse_ts_opt(r.try_get("last_used_at")?)?,
    })
}

/// The columns [`row_to_token`] reads.
const TOKEN_COLUMNS: &str = "token_hash, name, created_at, expires_at, last_used_at";

impl Store {
    /// Creates a console admin; `Conflict` if the name exists.
    pub async fn create_admin(&self, name: &str, password_hash: &str) -> StoreResult<Admin> {
        let created_at = Utc::now();
        sqlx::query("INSERT INTO admins (name, password_hash, created_at) VALUES ($1, $2, $3)")
            .bind(name)
            .bind(password_hash)
            .bind(ts(created_at))
            .execute(&self.pool)
            .await
            .map_err(|e| conflict_or(e, "admin", name))?;
        Ok(Admin {
            name: name.to_string(),
            password_hash: password_hash.to_string(),
            created_at,
        })
    }

    /// One admin.
    pub async fn get_admin(&self, name: &str) -> StoreResult<Option<Admin>> {
        let row = sqlx::query("SELECT name, password_hash, created_at FROM admins WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(Admin {
                name: r.try_get("name")?,
                password_hash: r.try_get("password_hash")?,
                created_at: parse_ts(&r.try_get::<String, _>("created_at")?)?,
            })
        })
        .transpose()
    }

    /// Replaces an admin's password hash (and ends the admin's sessions).
    pub async fn set_admin_password(&self, name: &str, password_hash: &str) -> StoreResult<()> {
        self.change_admin_password(name, password_hash, None)
            .await
            .map(|_| ())
    }

    /// Replaces an admin's password hash and ends every session of the admin except
    /// `keep_session_hash` (the one that made the change, if any).
    pub async fn change_admin_password(
        &self,
        name: &str,
        password_hash: &str,
        keep_session_hash: Option<&str>,
    ) -> StoreResult<u64> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query("UPDATE admins SET password_hash = $2 WHERE name = $1")
            .bind(name)
            .bind(password_hash)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                what: "admin",
                key: name.to_string(),
            });
        }
        let ended = sqlx::query("DELETE FROM sessions WHERE subject = $1 AND id_hash <> $2")
            .bind(name)
            .bind(keep_session_hash.unwrap_or(""))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(ended.rows_affected())
    }

    /// Number of admins (first start creates one when zero).
    pub async fn count_admins(&self) -> StoreResult<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM admins")
            .fetch_one(&self.pool)
            .await?;
        Ok(n as u64)
    }

    /// Stores a new API token's hash.
    pub async fn create_api_token(
        &self,
        name: &str,
        token_hash: &str,
    ) -> StoreResult<ApiTokenRecord> {
        self.create_api_token_expiring(name, token_hash, None).await
    }

    /// Stores a new API token's hash with an optional expiry.
    pub async fn create_api_token_expiring(
        &self,
        name: &str,
        token_hash: &str,
        expires_at: Option<DateTime<Utc>>,
    ) -> StoreResult<ApiTokenRecord> {
        let created_at = Utc::now();
        sqlx::query(
            "INSERT INTO api_tokens (token_hash, name, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash)
        .bind(name)
        .bind(ts(created_at))
        .bind(expires_at.map(ts))
        .execute(&self.pool)
        .await
        .map_err(|e| conflict_or(e, "API token named", name))?;
        Ok(ApiTokenRecord {
            name: name.to_string(),
            token_hash: token_hash.to_string(),
            created_at,
            expires_at,
            last_used_at: None,
        })
    }

    /// Records that a token was used at `at` (callers do this at most once a minute per token).
    pub async fn touch_api_token(&self, token_hash: &str, at: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query("UPDATE api_tokens SET last_used_at = $2 WHERE token_hash = $1")
            .bind(token_hash)
            .bind(ts(at))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Finds a token by hash.
    pub async fn find_api_token(&self, token_hash: &str) -> StoreResult<Option<ApiTokenRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE token_hash = $1"
        ))
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(row_to_token).transpose()
    }

    /// All API tokens (metadata only), oldest first.
    pub async fn list_api_tokens(&self) -> StoreResult<Vec<ApiTokenRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY created_at, name"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row_to_token).collect()
    }

    /// Revokes every token with this name; returns how many were revoked.
    pub async fn delete_api_tokens_named(&self, name: &str) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM api_tokens WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// Creates a session.
    pub async fn create_session(&self, session: &SessionRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO sessions (id_hash, subject, created_at, last_seen_at, csrf_token, authenticated_at, user_agent) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(session.id_hash.as_str())
        .bind(session.subject.as_str())
        .bind(ts(session.created_at))
        .bind(ts(session.last_seen_at))
        .bind(session.csrf_token.as_str())
        .bind(ts(session.authenticated_at))
        .bind(session.user_agent.as_str())
        .execute(&self.pool)
        .await
        .map_err(|e| conflict_or(e, "session", "(hidden)"))?;
        Ok(())
    }

    /// Finds a session by id hash.
    pub async fn get_session(&self, id_hash: &str) -> StoreResult<Option<SessionRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE id_hash = $1"
        ))
        .bind(id_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(row_to_session).transpose()
    }

    /// Every session of `subject`, most recently used first (the owner's list of sessions).
    pub async fn list_sessions_of(&self, subject: &str) -> StoreResult<Vec<SessionRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE subject = $1 ORDER BY last_seen_at DESC, created_at DESC"
        ))
        .bind(subject)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row_to_session).collect()
    }

    /// Records that the owner of a session proved who they are again at `at` (password
    /// re-entry before a sensitive action).
    pub async fn reauthenticate_session(
        &self,
        id_hash: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE sessions SET authenticated_at = $2, last_seen_at = $2 WHERE id_hash = $1",
        )
        .bind(id_hash)
        .bind(ts(at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Deletes the session `id_hash` only if it belongs to `subject` (a user revoking one of
    /// their own sessions); returns whether one was deleted.
    pub async fn delete_session_of(&self, subject: &str, id_hash: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM sessions WHERE subject = $1 AND id_hash = $2")
            .bind(subject)
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Deletes every session of `subject` except `keep_hash` ("sign out everywhere else");
    /// returns how many.
    pub async fn delete_other_sessions_of(
        &self,
        subject: &str,
        keep_hash: &str,
    ) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM sessions WHERE subject = $1 AND id_hash <> $2")
            .bind(subject)
            .bind(keep_hash)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// Updates `last_seen_at` (a session that no longer exists is left alone).
    pub async fn touch_session(&self, id_hash: &str, at: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query("UPDATE sessions SET last_seen_at = $2 WHERE id_hash = $1")
            .bind(id_hash)
            .bind(ts(at))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Deletes a session (logout).
    pub async fn delete_session(&self, id_hash: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Deletes every session of a subject (password change, admin removed); returns how many.
    pub async fn delete_sessions_of(&self, subject: &str) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM sessions WHERE subject = $1")
            .bind(subject)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// Deletes sessions created before `created_before` (absolute timeout) or last seen before
    /// `idle_before` (idle timeout); returns how many.
    pub async fn prune_sessions(
        &self,
        created_before: DateTime<Utc>,
        idle_before: DateTime<Utc>,
    ) -> StoreResult<u64> {
        let done = self
            .execute_write(
                sqlx::query("DELETE FROM sessions WHERE created_at < $1 OR last_seen_at < $2")
                    .bind(ts(created_before))
                    .bind(ts(idle_before)),
            )
            .await?;
        Ok(done.rows_affected())
    }

    /// Stores a single-use OAuth state (and forgets states that expired before its creation).
    pub async fn put_oauth_state(&self, state: &OAuthState) -> StoreResult<()> {
        sqlx::query("DELETE FROM oauth_states WHERE expires_at < $1")
            .bind(ts(Utc::now()))
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "INSERT INTO oauth_states (state_hash, purpose, session_hash, data, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(state.state_hash.as_str())
        .bind(state.purpose.as_str())
        .bind(state.session_hash.as_str())
        .bind(state.data.to_string())
        .bind(ts(state.expires_at))
        .execute(&self.pool)
        .await
        .map_err(|e| conflict_or(e, "OAuth state", "(hidden)"))?;
        Ok(())
    }

    /// Removes and returns a state (single use): `None` if unknown, used or expired at `now`.
    /// One `DELETE … RETURNING` statement, so two concurrent callers cannot both get it.
    pub async fn take_oauth_state(
        &self,
        state_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<OAuthState>> {
        let row = sqlx::query(
            "DELETE FROM oauth_states WHERE state_hash = $1 \
             RETURNING state_hash, purpose, session_hash, data, expires_at",
        )
        .bind(state_hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let data: String = r.try_get("data")?;
        let state = OAuthState {
            state_hash: r.try_get("state_hash")?,
            purpose: r.try_get("purpose")?,
            session_hash: r.try_get("session_hash")?,
            data: serde_json::from_str(&data)
                .map_err(|e| crate::db::corrupt(format!("stored OAuth state data: {e}")))?,
            expires_at: parse_ts(&r.try_get::<String, _>("expires_at")?)?,
        };
        Ok((state.expires_at > now).then_some(state))
    }
}
