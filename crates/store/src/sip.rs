//! SIP accounts: the digest hashes of each extension's SIP secret (SPEC §8), and the routing
//! state Kamailio loads at start (the `sip_*` views of migration 0007 read the same rows).

use crate::db::ts;
use crate::{Store, StoreResult};
use chrono::{DateTime, Utc};

/// One extension's routing state as Kamailio holds it (views `sip_profiles`, `sip_names`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipRouting {
    /// The extension number (the SIP user).
    pub number: String,
    /// Its profile (`available`, `dnd`, …).
    pub profile: String,
    /// Its display name, put on the calls it places.
    pub display_name: String,
}

impl Store {
    /// Stores (or replaces) the digest hashes of `number`'s SIP secret for `realm`: the old
    /// secret stops working with this write. Fails with `NotFound` for an unknown number.
    pub async fn set_sip_credentials(
        &self,
        number: &str,
        realm: &str,
        ha1: &str,
        ha1b: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let done = sqlx::query(
            "INSERT INTO sip_credentials (number, realm, ha1, ha1b, created_at) \
             SELECT number, $2, $3, $4, $5 FROM extensions WHERE number = $1 \
             ON CONFLICT (number) DO UPDATE SET realm = excluded.realm, ha1 = excluded.ha1, \
             ha1b = excluded.ha1b, created_at = excluded.created_at",
        )
        .bind(number)
        .bind(realm)
        .bind(ha1)
        .bind(ha1b)
        .bind(ts(now))
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(crate::StoreError::NotFound {
                what: "extension",
                key: number.to_string(),
            });
        }
        Ok(())
    }

    /// The realm `number`'s SIP secret was made for, if it has one.
    pub async fn sip_credentials_realm(&self, number: &str) -> StoreResult<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT realm FROM sip_credentials WHERE number = $1")
                .bind(number)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Routing state of one enabled extension (`None`: unknown or disabled).
    pub async fn sip_routing(&self, number: &str) -> StoreResult<Option<SipRouting>> {
        let row: Option<(String, String, String)> = sqlx::query_as(
            "SELECT number, profile, display_name FROM extensions WHERE number = $1 AND enabled = 1",
        )
        .bind(number)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(number, profile, display_name)| SipRouting {
            number,
            profile,
            display_name,
        }))
    }
}
