//! Extensions, their group memberships and photos.

use crate::db::{
    conflict_or, corrupt, flag, in_list, is_unique_violation, parse_ts, parse_ts_opt, placeholders,
    ts,
};
use crate::{ExtensionOp, Store, StoreError, StoreResult};
use chrono::{DateTime, Utc};
use pbx365_domain::{
    Extension, ExtensionNumber, ExtensionSource, NewExtension, PhotoRef, Profile, ProfileSource,
    ProfileState, AZURE_AD_GROUP,
};
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, Row};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Columns of `extensions`, in bind order.
const COLS: [&str; 22] = [
    "number",
    "first_name",
    "last_name",
    "display_name",
    "email",
    "mobile",
    "outbound_caller_id",
    "department",
    "job_title",
    "office",
    "enabled",
    "source",
    "m365_id",
    "photo_etag",
    "photo_content_type",
    "is_admin",
    "profile",
    "profile_source",
    "profile_until",
    "profile_return_to",
    "disabled_at",
    "updated_at",
];

/// Rows per multi-row INSERT. SQLite looks up a `$N` parameter's name by a linear scan, so
/// binding costs grow with the square of the parameters in one statement: about 700
/// parameters per statement keeps that negligible while still saving most round trips.
const UPSERT_CHUNK: usize = 30;

/// Ordering of extension numbers as numbers (shorter digit strings first), the same on both databases.
const ORDER_BY_NUMBER: &str = "ORDER BY LENGTH(number), number";

type AnyQuery<'q> = Query<'q, Any, AnyArguments<'q>>;

fn select_cols() -> String {
    COLS.join(", ")
}

fn bind_extension<'q>(mut q: AnyQuery<'q>, e: &'q Extension) -> AnyQuery<'q> {
    q = q
        .bind(e.number.as_str())
        .bind(e.first_name.as_str())
        .bind(e.last_name.as_str())
        .bind(e.display_name.as_str())
        .bind(e.email.as_deref())
        .bind(e.mobile.as_deref())
        .bind(e.outbound_caller_id.as_deref())
        .bind(e.department.as_deref())
        .bind(e.job_title.as_deref())
        .bind(e.office.as_deref())
        .bind(e.enabled as i64)
        .bind(e.source.as_str())
        .bind(e.m365_id.as_deref())
        .bind(e.photo.as_ref().map(|p| p.etag.as_str()))
        .bind(e.photo.as_ref().map(|p| p.content_type.as_str()))
        .bind(e.is_admin as i64)
        .bind(e.profile.profile.as_str())
        .bind(e.profile.source.as_str())
        .bind(e.profile.until.map(ts))
        .bind(e.profile.return_to.map(|p| p.as_str()))
        .bind(e.disabled_at.map(ts))
        .bind(ts(e.updated_at));
    q
}

fn parse_profile(s: &str) -> StoreResult<Profile> {
    s.parse::<Profile>()
        .map_err(|_| corrupt(format!("stored profile '{s}' is unknown")))
}

fn row_to_extension(row: &AnyRow) -> StoreResult<Extension> {
    let source: String = row.try_get("source")?;
    let profile_source: String = row.try_get("profile_source")?;
    let etag: Option<String> = row.try_get("photo_etag")?;
    let content_type: Option<String> = row.try_get("photo_content_type")?;
    let return_to: Option<String> = row.try_get("profile_return_to")?;
    Ok(Extension {
        number: ExtensionNumber::from_trusted(row.try_get("number")?),
        first_name: row.try_get("first_name")?,
        last_name: row.try_get("last_name")?,
        display_name: row.try_get("display_name")?,
        email: row.try_get("email")?,
        mobile: row.try_get("mobile")?,
        outbound_caller_id: row.try_get("outbound_caller_id")?,
        department: row.try_get("department")?,
        job_title: row.try_get("job_title")?,
        office: row.try_get("office")?,
        enabled: flag(row.try_get("enabled")?),
        source: ExtensionSource::parse(&source)
            .ok_or_else(|| corrupt(format!("stored source '{source}' is unknown")))?,
        m365_id: row.try_get("m365_id")?,
        photo: match (etag, content_type) {
            (Some(etag), Some(content_type)) => Some(PhotoRef { etag, content_type }),
            _ => None,
        },
        is_admin: flag(row.try_get("is_admin")?),
        groups: Vec::new(),
        profile: ProfileState {
            profile: parse_profile(&row.try_get::<String, _>("profile")?)?,
            source: ProfileSource::parse(&profile_source).ok_or_else(|| {
                corrupt(format!(
                    "stored profile source '{profile_source}' is unknown"
                ))
            })?,
            until: parse_ts_opt(row.try_get("profile_until")?)?,
            return_to: return_to.as_deref().map(parse_profile).transpose()?,
        },
        disabled_at: parse_ts_opt(row.try_get("disabled_at")?)?,
        updated_at: parse_ts(&row.try_get::<String, _>("updated_at")?)?,
    })
}

/// Fills `groups` of the extensions from the membership table (`filter` limits the rows read).
async fn attach_groups(
    conn: &mut AnyConnection,
    exts: &mut [Extension],
    filter: Option<&str>,
) -> StoreResult<()> {
    let rows = match filter {
        Some(number) => {
            sqlx::query("SELECT group_name, number FROM extension_group_members WHERE number = $1")
                .bind(number)
                .fetch_all(&mut *conn)
                .await?
        }
        None => {
            sqlx::query("SELECT group_name, number FROM extension_group_members")
                .fetch_all(&mut *conn)
                .await?
        }
    };
    let mut by_number: HashMap<String, Vec<String>> = HashMap::new();
    for row in rows {
        let group: String = row.try_get("group_name")?;
        let number: String = row.try_get("number")?;
        by_number.entry(number).or_default().push(group);
    }
    for e in exts {
        if let Some(mut groups) = by_number.remove(e.number.as_str()) {
            groups.sort();
            e.groups = groups;
        }
    }
    Ok(())
}

async fn fetch_one_where(
    conn: &mut AnyConnection,
    column: &str,
    value: &str,
) -> StoreResult<Option<Extension>> {
    let sql = format!(
        "SELECT {} FROM extensions WHERE {column} = $1",
        select_cols()
    );
    let Some(row) = sqlx::query(&sql)
        .bind(value)
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(None);
    };
    let mut ext = [row_to_extension(&row)?];
    let number = ext[0].number.as_str().to_string();
    attach_groups(conn, &mut ext, Some(&number)).await?;
    let [ext] = ext;
    Ok(Some(ext))
}

/// PostgreSQL refuses to touch one row twice in one INSERT: the last version of a number wins.
fn last_per_number<'a>(exts: &[&'a Extension]) -> Vec<&'a Extension> {
    let mut last: HashMap<&str, usize> = HashMap::with_capacity(exts.len());
    for (i, e) in exts.iter().enumerate() {
        last.insert(e.number.as_str(), i);
    }
    exts.iter()
        .enumerate()
        .filter(|(i, e)| last[e.number.as_str()] == *i)
        .map(|(_, e)| *e)
        .collect()
}

/// Columns the sync owns: the Microsoft 365 fields and whether the extension is enabled.
const SYNC_OWNED: [&str; 13] = [
    "first_name",
    "last_name",
    "display_name",
    "email",
    "mobile",
    "outbound_caller_id",
    "department",
    "job_title",
    "office",
    "enabled",
    "source",
    "disabled_at",
    "updated_at",
];

/// The sync's write ([`ExtensionOp::Sync`]): inserts new synced extensions and updates only the
/// sync-owned columns of existing ones with the same number and object id, in multi-row
/// statements; puts each in the "Azure AD" group. A number held by any other extension is
/// reported as [`StoreError::NumberTaken`] (the caller's transaction is then not committed).
pub(crate) async fn sync_batch(conn: &mut AnyConnection, exts: &[&Extension]) -> StoreResult<()> {
    let exts = last_per_number(exts);
    let updates = SYNC_OWNED
        .iter()
        .map(|c| format!("{c} = excluded.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut taken = Vec::new();
    for chunk in exts.chunks(UPSERT_CHUNK) {
        let sql = format!(
            "INSERT INTO extensions ({}) VALUES {} ON CONFLICT (number) DO UPDATE SET {updates} \
             WHERE extensions.m365_id = excluded.m365_id RETURNING number",
            select_cols(),
            placeholders(chunk.len(), COLS.len(), 1)
        );
        let mut q = sqlx::query(&sql);
        for e in chunk {
            q = bind_extension(q, e);
        }
        let rows = q
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| upsert_error(e, chunk))?;
        let written: BTreeSet<String> = rows
            .iter()
            .map(|r| r.try_get::<String, _>("number"))
            .collect::<Result<_, _>>()?;
        taken.extend(
            chunk
                .iter()
                .map(|e| e.number.as_str())
                .filter(|n| !written.contains(*n))
                .map(str::to_string),
        );
        if !written.is_empty() {
            let sql = format!(
                "INSERT INTO extension_group_members (group_name, number) VALUES {} \
                 ON CONFLICT (group_name, number) DO NOTHING",
                placeholders(written.len(), 2, 1)
            );
            let mut q = sqlx::query(&sql);
            for n in &written {
                q = q.bind(AZURE_AD_GROUP).bind(n.as_str());
            }
            q.execute(&mut *conn).await?;
        }
    }
    if taken.is_empty() {
        Ok(())
    } else {
        Err(StoreError::NumberTaken { numbers: taken })
    }
}

/// A unique violation during an upsert can only be a Microsoft object id used by two numbers.
fn upsert_error(e: sqlx::Error, chunk: &[&Extension]) -> StoreError {
    if is_unique_violation(&e) {
        let key = if chunk.len() == 1 {
            chunk[0].m365_id.clone().unwrap_or_default()
        } else {
            format!(
                "one of the ids in extensions {}..{}",
                chunk[0].number,
                chunk[chunk.len() - 1].number
            )
        };
        StoreError::Conflict {
            what: "extension with Microsoft 365 object id",
            key,
        }
    } else {
        StoreError::Db(e)
    }
}

async fn delete_in(conn: &mut AnyConnection, number: &str) -> StoreResult<()> {
    sqlx::query("DELETE FROM extension_photos WHERE number = $1")
        .bind(number)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM extension_group_members WHERE number = $1")
        .bind(number)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "DELETE FROM phonebook_numbers WHERE entry_id IN (SELECT id FROM phonebook_entries WHERE owner_number = $1)",
    )
    .bind(number)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM phonebook_entries WHERE owner_number = $1")
        .bind(number)
        .execute(&mut *conn)
        .await?;
    let done = sqlx::query("DELETE FROM extensions WHERE number = $1")
        .bind(number)
        .execute(&mut *conn)
        .await?;
    if done.rows_affected() == 0 {
        return Err(not_found(number));
    }
    Ok(())
}

async fn set_enabled_in(
    conn: &mut AnyConnection,
    number: &str,
    enabled: bool,
    disabled_at: Option<DateTime<Utc>>,
) -> StoreResult<()> {
    let done = sqlx::query(
        "UPDATE extensions SET enabled = $2, disabled_at = $3, updated_at = $4 WHERE number = $1",
    )
    .bind(number)
    .bind(enabled as i64)
    .bind(disabled_at.map(ts))
    .bind(ts(Utc::now()))
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        return Err(not_found(number));
    }
    Ok(())
}

pub(crate) fn not_found(number: &str) -> StoreError {
    StoreError::NotFound {
        what: "extension",
        key: number.to_string(),
    }
}

/// True when the extension exists (inside a transaction).
pub(crate) async fn exists_in(conn: &mut AnyConnection, number: &str) -> StoreResult<bool> {
    Ok(sqlx::query("SELECT 1 FROM extensions WHERE number = $1")
        .bind(number)
        .fetch_optional(&mut *conn)
        .await?
        .is_some())
}

impl Store {
    /// All extensions ordered by number.
    pub async fn list_extensions(&self) -> StoreResult<Vec<Extension>> {
        let mut conn = self.pool.acquire().await?;
        let sql = format!("SELECT {} FROM extensions {ORDER_BY_NUMBER}", select_cols());
        let rows = sqlx::query(&sql).fetch_all(&mut *conn).await?;
        let mut exts = rows
            .iter()
            .map(row_to_extension)
            .collect::<StoreResult<Vec<_>>>()?;
        attach_groups(&mut conn, &mut exts, None).await?;
        Ok(exts)
    }

    /// One extension by number.
    pub async fn get_extension(&self, number: &str) -> StoreResult<Option<Extension>> {
        let mut conn = self.pool.acquire().await?;
        fetch_one_where(&mut conn, "number", number).await
    }

    /// One extension by Microsoft object id.
    pub async fn get_extension_by_m365_id(&self, m365_id: &str) -> StoreResult<Option<Extension>> {
        let mut conn = self.pool.acquire().await?;
        fetch_one_where(&mut conn, "m365_id", m365_id).await
    }

    /// The extensions of these Microsoft object ids, without their groups (`groups` is empty):
    /// what follow-up work such as photos needs, in one query per few hundred ids.
    pub async fn extensions_by_m365_ids(&self, ids: &[String]) -> StoreResult<Vec<Extension>> {
        let mut out = Vec::with_capacity(ids.len());
        for part in ids.chunks(500) {
            let sql = format!(
                "SELECT {} FROM extensions WHERE m365_id IN ({})",
                select_cols(),
                in_list(part.len(), 1)
            );
            let mut q = sqlx::query(&sql);
            for id in part {
                q = q.bind(id.as_str());
            }
            for row in q.fetch_all(&self.pool).await? {
                out.push(row_to_extension(&row)?);
            }
        }
        Ok(out)
    }

    /// Creates a local extension; `Conflict` when the number is taken.
    pub async fn create_local_extension(
        &self,
        number: &str,
        fields: &NewExtension,
    ) -> StoreResult<Extension> {
        let ext = Extension {
            number: ExtensionNumber::from_trusted(number.to_string()),
            first_name: fields.first_name.clone(),
            last_name: fields.last_name.clone(),
            display_name: fields.display_name.clone(),
            email: fields.email.clone(),
            mobile: fields.mobile.clone(),
            outbound_caller_id: fields.outbound_caller_id.clone(),
            department: fields.department.clone(),
            job_title: fields.job_title.clone(),
            office: fields.office.clone(),
            enabled: true,
            source: ExtensionSource::Local,
            m365_id: None,
            photo: None,
            is_admin: false,
            groups: Vec::new(),
            profile: ProfileState::default(),
            disabled_at: None,
            updated_at: Utc::now(),
        };
        let sql = format!(
            "INSERT INTO extensions ({}) VALUES {}",
            select_cols(),
            placeholders(1, COLS.len(), 1)
        );
        bind_extension(sqlx::query(&sql), &ext)
            .execute(&self.pool)
            .await
            .map_err(|e| conflict_or(e, "extension", number))?;
        Ok(ext)
    }

    /// Replaces the directory fields of a local extension; a synced one is `ReadOnly`.
    pub async fn update_local_extension(
        &self,
        number: &str,
        fields: &NewExtension,
    ) -> StoreResult<Extension> {
        let mut tx = self.begin_write().await?;
        let source: Option<String> =
            sqlx::query_scalar("SELECT source FROM extensions WHERE number = $1")
                .bind(number)
                .fetch_optional(&mut *tx)
                .await?;
        match source.as_deref() {
            None => return Err(not_found(number)),
            Some("local") => {}
            Some(_) => {
                return Err(StoreError::ReadOnly {
                    what: "extension",
                    key: number.to_string(),
                })
            }
        }
        sqlx::query(
            "UPDATE extensions SET first_name = $2, last_name = $3, display_name = $4, email = $5, mobile = $6, \
             outbound_caller_id = $7, department = $8, job_title = $9, office = $10, updated_at = $11 \
             WHERE number = $1",
        )
        .bind(number)
        .bind(fields.first_name.as_str())
        .bind(fields.last_name.as_str())
        .bind(fields.display_name.as_str())
        .bind(fields.email.as_deref())
        .bind(fields.mobile.as_deref())
        .bind(fields.outbound_caller_id.as_deref())
        .bind(fields.department.as_deref())
        .bind(fields.job_title.as_deref())
        .bind(fields.office.as_deref())
        .bind(ts(Utc::now()))
        .execute(&mut *tx)
        .await?;
        let ext = fetch_one_where(&mut tx, "number", number)
            .await?
            .ok_or_else(|| not_found(number))?;
        tx.commit().await?;
        Ok(ext)
    }

    /// Deletes an extension (local or synced) with its photo, group memberships and personal
    /// phonebook.
    pub async fn delete_extension(&self, number: &str) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        delete_in(&mut tx, number).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Grants or revokes console admin rights.
    pub async fn set_extension_admin(&self, number: &str, is_admin: bool) -> StoreResult<()> {
        let done =
            sqlx::query("UPDATE extensions SET is_admin = $2, updated_at = $3 WHERE number = $1")
                .bind(number)
                .bind(is_admin as i64)
                .bind(ts(Utc::now()))
                .execute(&self.pool)
                .await?;
        if done.rows_affected() == 0 {
            return Err(not_found(number));
        }
        Ok(())
    }

    /// Sets the profile state.
    pub async fn set_profile(&self, number: &str, profile: &ProfileState) -> StoreResult<()> {
        let done = sqlx::query(
            "UPDATE extensions SET profile = $2, profile_source = $3, profile_until = $4, profile_return_to = $5, \
             updated_at = $6 WHERE number = $1",
        )
        .bind(number)
        .bind(profile.profile.as_str())
        .bind(profile.source.as_str())
        .bind(profile.until.map(ts))
        .bind(profile.return_to.map(|p| p.as_str()))
        .bind(ts(Utc::now()))
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(not_found(number));
        }
        Ok(())
    }

    /// Applies sync changes and (optionally) the new delta cursor in ONE transaction, so a crash
    /// leaves either all of it or none of it. `Disable`, `Enable` and `Delete` of a number that does
    /// not exist fail with `NotFound`, and then nothing of the batch is applied.
    pub async fn apply_extension_ops(
        &self,
        ops: &[ExtensionOp],
        cursor: Option<(&str, &str)>,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        // Consecutive writes of one kind go in multi-row statements.
        let mut i = 0;
        while i < ops.len() {
            match &ops[i] {
                ExtensionOp::Sync(_) => {
                    let run: Vec<&Extension> = ops[i..]
                        .iter()
                        .map_while(|op| match op {
                            ExtensionOp::Sync(e) => Some(e),
                            _ => None,
                        })
                        .collect();
                    i += run.len();
                    sync_batch(&mut tx, &run).await?;
                    continue;
                }
                ExtensionOp::Disable { number, at } => {
                    set_enabled_in(&mut tx, number, false, Some(*at)).await?
                }
                ExtensionOp::Enable { number } => {
                    set_enabled_in(&mut tx, number, true, None).await?
                }
                ExtensionOp::Delete { number } => delete_in(&mut tx, number).await?,
            }
            i += 1;
        }
        if let Some((key, value)) = cursor {
            crate::kv::set_in(&mut tx, key, value).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Extension numbers in use, as a sorted set (the sync picks free numbers from it).
    pub async fn extension_numbers(&self) -> StoreResult<BTreeSet<String>> {
        let numbers: Vec<String> = sqlx::query_scalar("SELECT number FROM extensions")
            .fetch_all(&self.pool)
            .await?;
        Ok(numbers.into_iter().collect())
    }

    /// Synced extensions keyed by Microsoft object id (the sync's view of what it owns).
    pub async fn m365_extension_ids(&self) -> StoreResult<BTreeMap<String, String>> {
        let rows = sqlx::query("SELECT m365_id, number FROM extensions WHERE m365_id IS NOT NULL")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("m365_id")?, r.try_get("number")?)))
            .collect()
    }

    // ---- photos -----------------------------------------------------------------------------

    /// Stores an extension's photo bytes and its etag/content type.
    pub async fn put_photo(
        &self,
        number: &str,
        etag: &str,
        content_type: &str,
        bytes: &[u8],
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE extensions SET photo_etag = $2, photo_content_type = $3, updated_at = $4 WHERE number = $1",
        )
        .bind(number)
        .bind(etag)
        .bind(content_type)
        .bind(ts(Utc::now()))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(not_found(number));
        }
        sqlx::query(
            "INSERT INTO extension_photos (number, bytes) VALUES ($1, $2) \
             ON CONFLICT (number) DO UPDATE SET bytes = excluded.bytes",
        )
        .bind(number)
        .bind(bytes.to_vec())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Stores many photos in one transaction: `(number, etag, content type, bytes)` each.
    /// One commit per batch instead of per photo keeps a first sync's photo writes cheap.
    /// An unknown number fails the whole batch (nothing is stored).
    pub async fn put_photos(&self, photos: &[(&str, &str, &str, &[u8])]) -> StoreResult<()> {
        if photos.is_empty() {
            return Ok(());
        }
        let now = ts(Utc::now());
        let mut tx = self.begin_write().await?;
        for (number, etag, content_type, bytes) in photos {
            let done = sqlx::query(
                "UPDATE extensions SET photo_etag = $2, photo_content_type = $3, updated_at = $4 WHERE number = $1",
            )
            .bind(*number)
            .bind(*etag)
            .bind(*content_type)
            .bind(now.clone())
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                return Err(not_found(number));
            }
            sqlx::query(
                "INSERT INTO extension_photos (number, bytes) VALUES ($1, $2) \
                 ON CONFLICT (number) DO UPDATE SET bytes = excluded.bytes",
            )
            .bind(*number)
            .bind(bytes.to_vec())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The photo: (content type, bytes).
    pub async fn get_photo(&self, number: &str) -> StoreResult<Option<(String, Vec<u8>)>> {
        let row = sqlx::query(
            "SELECT e.photo_content_type AS content_type, p.bytes AS bytes FROM extension_photos p \
             JOIN extensions e ON e.number = p.number WHERE p.number = $1 AND e.photo_content_type IS NOT NULL",
        )
        .bind(number)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok((r.try_get("content_type")?, r.try_get("bytes")?)))
            .transpose()
    }

    /// Removes the photo (`NotFound` when the extension does not exist).
    pub async fn delete_photo(&self, number: &str) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE extensions SET photo_etag = NULL, photo_content_type = NULL, updated_at = $2 WHERE number = $1",
        )
        .bind(number)
        .bind(ts(Utc::now()))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(not_found(number));
        }
        sqlx::query("DELETE FROM extension_photos WHERE number = $1")
            .bind(number)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
