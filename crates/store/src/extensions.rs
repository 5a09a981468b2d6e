//! Extensions, their group memberships and photos.

use crate::db::{
    conflict_or, corrupt, flag, in_list, is_unique_violation, parse_ts, parse_ts_opt, placeholders,
    ts,
};
use crate::sip::{note_sip_changes, SipChangeKind};
use crate::{ExtensionOp, Store, StoreError, StoreResult, SyncedCounts};
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
pub(crate) const ORDER_BY_NUMBER: &str = "ORDER BY LENGTH(number), number";

type AnyQuery<'q> = Query<'q, Any, AnyArguments<'q>>;

pub(crate) fn select_cols() -> String {
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

/// Fills `groups` of the extensions from the membership table (`filter` limits the rows read to
/// these numbers).
async fn attach_groups(
    conn: &mut AnyConnection,
    exts: &mut [Extension],
    filter: Option<&[&str]>,
) -> StoreResult<()> {
    let mut rows = Vec::new();
    match filter {
        Some(numbers) => {
            for part in numbers.chunks(IN_CHUNK) {
                let sql = format!(
                    "SELECT group_name, number FROM extension_group_members WHERE number IN ({})",
                    in_list(part.len(), 1)
                );
                let mut q = sqlx::query(&sql);
                for n in part {
                    q = q.bind(*n);
                }
                rows.extend(q.fetch_all(&mut *conn).await?);
            }
        }
        None => {
            rows = sqlx::query("SELECT group_name, number FROM extension_group_members")
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

/// The extensions a query selects (every extension column), with their groups.
pub(crate) async fn fetch_with_groups(
    conn: &mut AnyConnection,
    q: AnyQuery<'_>,
) -> StoreResult<Vec<Extension>> {
    let rows = q.fetch_all(&mut *conn).await?;
    let mut exts = rows
        .iter()
        .map(row_to_extension)
        .collect::<StoreResult<Vec<_>>>()?;
    if !exts.is_empty() {
        let numbers: Vec<String> = exts.iter().map(|e| e.number.to_string()).collect();
        let numbers: Vec<&str> = numbers.iter().map(String::as_str).collect();
        attach_groups(conn, &mut exts, Some(&numbers)).await?;
    }
    Ok(exts)
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
    attach_groups(conn, &mut ext, Some(&[number.as_str()])).await?;
    let [ext] = ext;
    Ok(Some(ext))
}

/// `column` without the characters people write around digits: exactly the expression of the
/// indexes of migration 0011 (a database uses an expression index only for the same expression).
fn dial_form_sql(column: &str) -> String {
    format!(
        "REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE({column}, ' ', ''), '-', ''), '(', ''), ')', ''), '/', ''), '.', '')"
    )
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

/// Numbers per `IN (...)` list when counting or looking up rows of a batch.
pub(crate) const IN_CHUNK: usize = 500;

/// Synced extensions (source `m365` with an object id) among some numbers: (all, enabled).
async fn synced_among(conn: &mut AnyConnection, numbers: &[&str]) -> StoreResult<(i64, i64)> {
    let (mut synced, mut enabled) = (0i64, 0i64);
    for part in numbers.chunks(IN_CHUNK) {
        let sql = format!(
            "SELECT COUNT(*) AS synced, COUNT(CASE WHEN enabled = 1 THEN 1 END) AS enabled \
             FROM extensions WHERE source = 'm365' AND m365_id IS NOT NULL AND number IN ({})",
            in_list(part.len(), 1)
        );
        let mut q = sqlx::query(&sql);
        for n in part {
            q = q.bind(*n);
        }
        let row = q.fetch_one(&mut *conn).await?;
        synced += row.try_get::<i64, _>("synced")?;
        enabled += row.try_get::<i64, _>("enabled")?;
    }
    Ok((synced, enabled))
}

/// What these numbers count now, read after taking the maintained counts' row lock: under
/// PostgreSQL's read committed, two writers that read the same extension before either wrote
/// would both move the counts by the same change (an admin's disable racing a sync's delete).
async fn counted_before(conn: &mut AnyConnection, numbers: &[&str]) -> StoreResult<(i64, i64)> {
    sqlx::query("UPDATE extension_counts SET synced = synced WHERE name = 'synced'")
        .execute(&mut *conn)
        .await?;
    synced_among(conn, numbers).await
}

/// Moves the maintained counts of synced extensions by what a write changed (`after - before`),
/// inside the writing transaction.
async fn adjust_counts(
    conn: &mut AnyConnection,
    before: (i64, i64),
    after: (i64, i64),
) -> StoreResult<()> {
    let (synced, enabled) = (after.0 - before.0, after.1 - before.1);
    if synced == 0 && enabled == 0 {
        return Ok(());
    }
    sqlx::query(
        "UPDATE extension_counts SET synced = synced + $1, synced_enabled = synced_enabled + $2 \
         WHERE name = 'synced'",
    )
    .bind(synced)
    .bind(enabled)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// These numbers are taken (again): they are no longer free holes below the allocation mark.
async fn unfree(conn: &mut AnyConnection, numbers: &[&str]) -> StoreResult<()> {
    for part in numbers.chunks(IN_CHUNK) {
        let sql = format!(
            "DELETE FROM freed_numbers WHERE number IN ({})",
            in_list(part.len(), 1)
        );
        let mut q = sqlx::query(&sql);
        for n in part {
            q = q.bind(*n);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Powers of ten bounding digit strings of `len` digits: `[10^(len-1), 10^len - 1]` (`[0, 9]`
/// for one digit), saturating for lengths beyond `u64`.
fn digits_range(len: u32) -> (u64, u64) {
    let low = if len <= 1 {
        0
    } else {
        10u64.saturating_pow(len - 1)
    };
    (low, 10u64.saturating_pow(len).saturating_sub(1))
}

fn digits(v: u64) -> u32 {
    v.checked_ilog10().unwrap_or(0) + 1
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
    let numbers: Vec<&str> = exts.iter().map(|e| e.number.as_str()).collect();
    let before = counted_before(conn, &numbers).await?;
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
        let after = synced_among(conn, &numbers).await?;
        adjust_counts(conn, before, after).await?;
        unfree(conn, &numbers).await
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
    let before = counted_before(conn, &[number]).await?;
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
    adjust_counts(conn, before, (0, 0)).await?;
    // A number beyond BIGINT is never handed out by the sync, so it need not be remembered.
    if let Ok(value) = number.parse::<i64>() {
        sqlx::query(
            "INSERT INTO freed_numbers (number, value) VALUES ($1, $2) ON CONFLICT (number) DO NOTHING",
        )
        .bind(number)
        .bind(value)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

async fn set_enabled_in(
    conn: &mut AnyConnection,
    number: &str,
    enabled: bool,
    disabled_at: Option<DateTime<Utc>>,
) -> StoreResult<()> {
    let before = counted_before(conn, &[number]).await?;
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
    let after = synced_among(conn, &[number]).await?;
    adjust_counts(conn, before, after).await
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
        let mut tx = self.begin_write().await?;
        bind_extension(sqlx::query(&sql), &ext)
            .execute(&mut *tx)
            .await
            .map_err(|e| conflict_or(e, "extension", number))?;
        unfree(&mut tx, &[number]).await?;
        note_sip_changes(&mut tx, &[number], SipChangeKind::Route).await?;
        tx.commit().await?;
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
        note_sip_changes(&mut tx, &[number], SipChangeKind::Route).await?;
        tx.commit().await?;
        Ok(ext)
    }

    /// Deletes an extension (local or synced) with its photo, group memberships and personal
    /// phonebook.
    pub async fn delete_extension(&self, number: &str) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        delete_in(&mut tx, number).await?;
        note_sip_changes(&mut tx, &[number], SipChangeKind::Route).await?;
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
        let mut tx = self.begin_write().await?;
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
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(not_found(number));
        }
        note_sip_changes(&mut tx, &[number], SipChangeKind::Route).await?;
        tx.commit().await?;
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
        // Every number the batch touches may route differently now (Kamailio learns it from
        // the feed, whichever process wrote).
        let touched: Vec<&str> = ops
            .iter()
            .map(|op| match op {
                ExtensionOp::Sync(e) => e.number.as_str(),
                ExtensionOp::Disable { number, .. }
                | ExtensionOp::Enable { number }
                | ExtensionOp::Delete { number } => number.as_str(),
            })
            .collect();
        note_sip_changes(&mut tx, &touched, SipChangeKind::Route).await?;
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

    /// The maintained counts of synced extensions (source `m365` with an object id): kept by
    /// every write in its transaction, so reading them costs one row, not a count over the table.
    pub async fn synced_counts(&self) -> StoreResult<SyncedCounts> {
        let row = sqlx::query(
            "SELECT synced, synced_enabled FROM extension_counts WHERE name = 'synced'",
        )
        .fetch_one(&self.pool)
        .await?;
        let get = |c: &str| -> StoreResult<u64> {
            Ok(u64::try_from(row.try_get::<i64, _>(c)?).unwrap_or(0))
        };
        Ok(SyncedCounts {
            synced: get("synced")?,
            enabled: get("synced_enabled")?,
        })
    }

    /// Counts the synced extensions over the whole table and resets the maintained counts to
    /// that (a full sync round, which reads everything anyway, heals any drift).
    pub async fn recount_synced(&self) -> StoreResult<SyncedCounts> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "SELECT COUNT(*) AS synced, COUNT(CASE WHEN enabled = 1 THEN 1 END) AS enabled \
             FROM extensions WHERE source = 'm365' AND m365_id IS NOT NULL",
        )
        .fetch_one(&mut *tx)
        .await?;
        let (synced, enabled): (i64, i64) = (row.try_get("synced")?, row.try_get("enabled")?);
        sqlx::query(
            "UPDATE extension_counts SET synced = $1, synced_enabled = $2 WHERE name = 'synced'",
        )
        .bind(synced)
        .bind(enabled)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(SyncedCounts {
            synced: u64::try_from(synced).unwrap_or(0),
            enabled: u64::try_from(enabled).unwrap_or(0),
        })
    }

    /// The extensions with these Microsoft object ids (those that exist), with their groups:
    /// indexed lookups in chunks, for a delta round that touches a few users.
    pub async fn extensions_by_m365_ids(&self, ids: &[String]) -> StoreResult<Vec<Extension>> {
        let mut conn = self.pool.acquire().await?;
        let mut out = Vec::new();
        for part in ids.chunks(IN_CHUNK) {
            let sql = format!(
                "SELECT {} FROM extensions WHERE m365_id IN ({})",
                select_cols(),
                in_list(part.len(), 1)
            );
            let mut q = sqlx::query(&sql);
            for id in part {
                q = q.bind(id.as_str());
            }
            out.extend(fetch_with_groups(&mut conn, q).await?);
        }
        Ok(out)
    }

    /// Caller-name lookup: the extensions whose mobile or outbound caller ID, without spaces and
    /// `- ( ) / .`, is one of `forms` (the few ways a caller's number is written); read through
    /// the expression indexes of migration 0011, so the cost does not grow with the directory.
    pub async fn extensions_by_dial_forms(&self, forms: &[String]) -> StoreResult<Vec<Extension>> {
        let forms = &forms[..forms.len().min(IN_CHUNK)];
        if forms.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.pool.acquire().await?;
        let mut out: Vec<Extension> = Vec::new();
        for column in ["mobile", "outbound_caller_id"] {
            let sql = format!(
                "SELECT {} FROM extensions WHERE {} IN ({})",
                select_cols(),
                dial_form_sql(column),
                in_list(forms.len(), 1)
            );
            let mut q = sqlx::query(&sql);
            for f in forms {
                q = q.bind(f.as_str());
            }
            for e in fetch_with_groups(&mut conn, q).await? {
                if !out.iter().any(|o| o.number == e.number) {
                    out.push(e);
                }
            }
        }
        out.sort_by(|a, b| a.number.as_str().cmp(b.number.as_str()));
        Ok(out)
    }

    /// Synced extensions disabled at or before `until` (those whose grace period may be over),
    /// found through the `disabled_at` index.
    pub async fn synced_disabled_before(
        &self,
        until: DateTime<Utc>,
    ) -> StoreResult<Vec<Extension>> {
        let mut conn = self.pool.acquire().await?;
        let sql = format!(
            "SELECT {} FROM extensions WHERE disabled_at IS NOT NULL AND disabled_at <= $1 \
             AND enabled = 0 AND source = 'm365' AND m365_id IS NOT NULL {ORDER_BY_NUMBER}",
            select_cols()
        );
        fetch_with_groups(&mut conn, sqlx::query(&sql).bind(ts(until))).await
    }

    /// The numeric values of the extension numbers taken between `low` and `high` (inclusive),
    /// ascending: range reads over the `(LENGTH(number), number)` index, one per digit count, plus
    /// the rare numbers written with leading zeros (`0100` takes 100).
    pub async fn numbers_taken_between(&self, low: u64, high: u64) -> StoreResult<Vec<u64>> {
        let mut taken = BTreeSet::new();
        if low > high {
            return Ok(Vec::new());
        }
        let mut conn = self.pool.acquire().await?;
        for len in digits(low)..=digits(high) {
            let (first, last) = digits_range(len);
            let (from, to) = (low.max(first), high.min(last));
            if from > to {
                continue;
            }
            let numbers: Vec<String> = sqlx::query_scalar(
                "SELECT number FROM extensions WHERE LENGTH(number) = $1 AND number >= $2 \
                 AND number <= $3",
            )
            .bind(i64::from(len))
            .bind(from.to_string())
            .bind(to.to_string())
            .fetch_all(&mut *conn)
            .await?;
            taken.extend(numbers.iter().filter_map(|n| n.parse::<u64>().ok()));
        }
        // Digit strings starting with 0 sort between "0" and "1" under every collation.
        let zeros: Vec<String> = sqlx::query_scalar(
            "SELECT number FROM extensions WHERE number >= '0' AND number < '1'",
        )
        .fetch_all(&mut *conn)
        .await?;
        taken.extend(
            zeros
                .iter()
                .map(|n| n.parse::<u64>().unwrap_or(0))
                .filter(|v| (low..=high).contains(v)),
        );
        Ok(taken.into_iter().collect())
    }

    /// The lowest value at or above `from` among the numbers deleted and not taken again (an
    /// index read): the first number that may have become free below an allocation mark.
    pub async fn lowest_freed_number(&self, from: u64) -> StoreResult<Option<u64>> {
        let from = i64::try_from(from).unwrap_or(i64::MAX);
        let v: Option<i64> = sqlx::query_scalar(
            "SELECT value FROM freed_numbers WHERE value >= $1 ORDER BY value LIMIT 1",
        )
        .bind(from)
        .fetch_optional(&self.pool)
        .await?;
        Ok(v.and_then(|v| u64::try_from(v).ok()))
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
