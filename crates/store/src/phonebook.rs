//! Phonebooks: the company phonebook and personal ones, each entry with several typed numbers.
//! Entries synced from Microsoft 365 (`m365_id` set) are written only by the contact sync.

use crate::db::corrupt;
use crate::extensions::{exists_in, not_found};
use crate::{Store, StoreError, StoreResult};
use pbx365_domain::{PhoneKind, PhoneNumber, PhonebookEntry, PhonebookOwner};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use std::collections::HashMap;

pub(crate) fn kind_str(k: PhoneKind) -> &'static str {
    match k {
        PhoneKind::Business => "business",
        PhoneKind::Mobile => "mobile",
        PhoneKind::Home => "home",
        PhoneKind::Other => "other",
    }
}

fn parse_kind(s: &str) -> StoreResult<PhoneKind> {
    Ok(match s {
        "business" => PhoneKind::Business,
        "mobile" => PhoneKind::Mobile,
        "home" => PhoneKind::Home,
        "other" => PhoneKind::Other,
        _ => return Err(corrupt(format!("stored phone kind '{s}' is unknown"))),
    })
}

pub(crate) fn owner_number(owner: &PhonebookOwner) -> Option<&str> {
    match owner {
        PhonebookOwner::Company => None,
        PhonebookOwner::Personal(n) => Some(n.as_str()),
    }
}

/// `WHERE` condition selecting one phonebook's entries (`$1` is the owner number when personal).
fn owner_condition(owner: &PhonebookOwner, alias: &str) -> String {
    match owner {
        PhonebookOwner::Company => format!("{alias}owner_number IS NULL"),
        PhonebookOwner::Personal(_) => format!("{alias}owner_number = $1"),
    }
}

fn entry_not_found(id: &str) -> StoreError {
    StoreError::NotFound {
        what: "phonebook entry",
        key: id.to_string(),
    }
}

const ENTRY_COLS: &str =
    "id, owner_number, m365_id, display_name, first_name, last_name, company, emails, job_title, mailbox";

fn row_to_entry(r: &AnyRow) -> StoreResult<PhonebookEntry> {
    let owner: Option<String> = r.try_get("owner_number")?;
    let emails: String = r.try_get("emails")?;
    Ok(PhonebookEntry {
        id: r.try_get("id")?,
        owner: owner.map_or(PhonebookOwner::Company, PhonebookOwner::Personal),
        m365_id: r.try_get("m365_id")?,
        display_name: r.try_get("display_name")?,
        first_name: r.try_get("first_name")?,
        last_name: r.try_get("last_name")?,
        company: r.try_get("company")?,
        emails: serde_json::from_str(&emails)
            .map_err(|e| corrupt(format!("stored emails: {e}")))?,
        numbers: Vec::new(),
        job_title: r.try_get("job_title")?,
        mailbox: r.try_get("mailbox")?,
        no_number: false,
    })
}

/// Reads entries with their numbers; `cond` selects entries (alias `e.`), `bind` its `$1`.
async fn read_entries(
    conn: &mut AnyConnection,
    cond: &str,
    bind: Option<&str>,
) -> StoreResult<Vec<PhonebookEntry>> {
    let sql = format!("SELECT {ENTRY_COLS} FROM phonebook_entries e WHERE {cond}");
    let mut q = sqlx::query(&sql);
    if let Some(b) = bind {
        q = q.bind(b);
    }
    let rows = q.fetch_all(&mut *conn).await?;
    let mut entries = rows
        .iter()
        .map(row_to_entry)
        .collect::<StoreResult<Vec<_>>>()?;

    let sql = format!(
        "SELECT n.entry_id, n.pos, n.kind, n.raw, n.e164 FROM phonebook_numbers n \
         JOIN phonebook_entries e ON e.id = n.entry_id WHERE {cond} ORDER BY n.entry_id, n.pos"
    );
    let mut q = sqlx::query(&sql);
    if let Some(b) = bind {
        q = q.bind(b);
    }
    let mut numbers: HashMap<String, Vec<PhoneNumber>> = HashMap::new();
    for r in q.fetch_all(&mut *conn).await? {
        numbers
            .entry(r.try_get("entry_id")?)
            .or_default()
            .push(PhoneNumber {
                kind: parse_kind(&r.try_get::<String, _>("kind")?)?,
                raw: r.try_get("raw")?,
                e164: r.try_get("e164")?,
            });
    }
    for e in &mut entries {
        e.numbers = numbers.remove(&e.id).unwrap_or_default();
        e.no_number = e.numbers.is_empty();
    }
    // Sorted here so the order does not depend on the database's collation.
    entries.sort_by(|a, b| {
        a.display_name
            .to_lowercase()
            .cmp(&b.display_name.to_lowercase())
            .then_with(|| a.id.cmp(&b.id))
    });
    Ok(entries)
}

async fn read_entry(conn: &mut AnyConnection, id: &str) -> StoreResult<Option<PhonebookEntry>> {
    Ok(read_entries(conn, "e.id = $1", Some(id)).await?.pop())
}

async fn write_numbers(conn: &mut AnyConnection, entry: &PhonebookEntry) -> StoreResult<()> {
    sqlx::query("DELETE FROM phonebook_numbers WHERE entry_id = $1")
        .bind(entry.id.as_str())
        .execute(&mut *conn)
        .await?;
    // `book` beside each number lets the caller-name lookup find "this number in that phonebook"
    // through one index (migration 0011).
    let book = owner_number(&entry.owner).unwrap_or_default();
    for (pos, n) in entry.numbers.iter().enumerate() {
        sqlx::query("INSERT INTO phonebook_numbers (entry_id, pos, kind, raw, e164, book) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(entry.id.as_str())
            .bind(pos as i64)
            .bind(kind_str(n.kind))
            .bind(n.raw.as_str())
            .bind(n.e164.as_deref())
            .bind(book)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

async fn insert_entry(conn: &mut AnyConnection, e: &PhonebookEntry) -> StoreResult<()> {
    sqlx::query(&format!(
        "INSERT INTO phonebook_entries ({ENTRY_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    ))
    .bind(e.id.as_str())
    .bind(owner_number(&e.owner))
    .bind(e.m365_id.as_deref())
    .bind(e.display_name.as_str())
    .bind(e.first_name.as_str())
    .bind(e.last_name.as_str())
    .bind(e.company.as_deref())
    .bind(serde_json::to_string(&e.emails).unwrap_or_else(|_| "[]".into()))
    .bind(e.job_title.as_deref())
    .bind(e.mailbox.as_deref())
    .execute(&mut *conn)
    .await?;
    write_numbers(conn, e).await
}

async fn update_entry_row(conn: &mut AnyConnection, e: &PhonebookEntry) -> StoreResult<()> {
    sqlx::query(
        "UPDATE phonebook_entries SET display_name = $2, first_name = $3, last_name = $4, company = $5, emails = $6, \
         job_title = $7 WHERE id = $1",
    )
    .bind(e.id.as_str())
    .bind(e.display_name.as_str())
    .bind(e.first_name.as_str())
    .bind(e.last_name.as_str())
    .bind(e.company.as_deref())
    .bind(serde_json::to_string(&e.emails).unwrap_or_else(|_| "[]".into()))
    .bind(e.job_title.as_deref())
    .execute(&mut *conn)
    .await?;
    write_numbers(conn, e).await
}

async fn check_owner(conn: &mut AnyConnection, owner: &PhonebookOwner) -> StoreResult<()> {
    if let PhonebookOwner::Personal(n) = owner {
        if !exists_in(conn, n).await? {
            return Err(not_found(n));
        }
    }
    Ok(())
}

async fn delete_entry_rows(conn: &mut AnyConnection, id: &str) -> StoreResult<()> {
    sqlx::query("DELETE FROM phonebook_numbers WHERE entry_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM phonebook_entries WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Loads a local entry of `owner` for a change: `NotFound` if it is not in that phonebook,
/// `ReadOnly` if it came from Microsoft 365.
async fn local_entry(
    conn: &mut AnyConnection,
    owner: &PhonebookOwner,
    id: &str,
) -> StoreResult<PhonebookEntry> {
    let existing = read_entry(conn, id)
        .await?
        .filter(|e| &e.owner == owner)
        .ok_or_else(|| entry_not_found(id))?;
    if existing.m365_id.is_some() {
        return Err(StoreError::ReadOnly {
            what: "phonebook entry",
            key: existing.display_name,
        });
    }
    Ok(existing)
}

impl Store {
    /// Entries of one phonebook ordered by display name (case-insensitive).
    pub async fn list_phonebook(&self, owner: &PhonebookOwner) -> StoreResult<Vec<PhonebookEntry>> {
        let mut conn = self.pool.acquire().await?;
        read_entries(
            &mut conn,
            &owner_condition(owner, "e."),
            owner_number(owner),
        )
        .await
    }

    /// One entry by id.
    pub async fn get_phonebook_entry(&self, id: &str) -> StoreResult<Option<PhonebookEntry>> {
        let mut conn = self.pool.acquire().await?;
        read_entry(&mut conn, id).await
    }

    /// Entries of every phonebook with a number of this E.164 value (caller-name lookup).
    pub async fn find_phonebook_by_e164(&self, e164: &str) -> StoreResult<Vec<PhonebookEntry>> {
        let mut conn = self.pool.acquire().await?;
        read_entries(
            &mut conn,
            "e.id IN (SELECT entry_id FROM phonebook_numbers WHERE e164 = $1)",
            Some(e164),
        )
        .await
    }

    /// Caller-name lookup: the first entry (by id) of one phonebook with a number of this E.164
    /// value, and which of its numbers matched; one index read (migration 0011), however many
    /// phonebooks hold the number.
    pub async fn phonebook_entry_by_e164(
        &self,
        owner: &PhonebookOwner,
        e164: &str,
    ) -> StoreResult<Option<(PhonebookEntry, PhoneKind)>> {
        let mut conn = self.pool.acquire().await?;
        let hit = sqlx::query(
            "SELECT entry_id, kind FROM phonebook_numbers WHERE e164 = $1 AND book = $2 \
             ORDER BY entry_id LIMIT 1",
        )
        .bind(e164)
        .bind(owner_number(owner).unwrap_or_default())
        .fetch_optional(&mut *conn)
        .await?;
        let Some(row) = hit else { return Ok(None) };
        let id: String = row.try_get("entry_id")?;
        let kind = parse_kind(&row.try_get::<String, _>("kind")?)?;
        Ok(read_entry(&mut conn, &id).await?.map(|e| (e, kind)))
    }

    /// Creates a local entry (id assigned by the store; `m365_id` is ignored: local entries have none).
    pub async fn create_phonebook_entry(
        &self,
        entry: &PhonebookEntry,
    ) -> StoreResult<PhonebookEntry> {
        let mut e = entry.clone();
        e.id = uuid::Uuid::new_v4().to_string();
        e.m365_id = None;
        e.mailbox = None;
        let mut tx = self.begin_write().await?;
        check_owner(&mut tx, &e.owner).await?;
        insert_entry(&mut tx, &e).await?;
        tx.commit().await?;
        Ok(e.flag())
    }

    /// Replaces a local entry (matched by id within its owner's phonebook); synced entries are
    /// refused with `ReadOnly`.
    pub async fn update_phonebook_entry(
        &self,
        entry: &PhonebookEntry,
    ) -> StoreResult<PhonebookEntry> {
        let mut tx = self.begin_write().await?;
        local_entry(&mut tx, &entry.owner, &entry.id).await?;
        let mut e = entry.clone();
        e.m365_id = None;
        update_entry_row(&mut tx, &e).await?;
        tx.commit().await?;
        Ok(e.flag())
    }

    /// Deletes a local entry; synced entries are refused with `ReadOnly`.
    pub async fn delete_phonebook_entry(
        &self,
        owner: &PhonebookOwner,
        id: &str,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        local_entry(&mut tx, owner, id).await?;
        delete_entry_rows(&mut tx, id).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Contact sync: inserts or replaces entries of `owner` matched by their `m365_id` (which each
    /// must have), keeping pbx365 ids stable; returns them with their ids. One transaction.
    pub async fn upsert_synced_phonebook_entries(
        &self,
        owner: &PhonebookOwner,
        entries: &[PhonebookEntry],
    ) -> StoreResult<Vec<PhonebookEntry>> {
        let mut tx = self.begin_write().await?;
        let out = upsert_synced_in(&mut tx, owner, entries).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// Contact sync: removes entries of `owner` with these Microsoft ids; returns how many.
    pub async fn delete_synced_phonebook_entries(
        &self,
        owner: &PhonebookOwner,
        m365_ids: &[String],
    ) -> StoreResult<u64> {
        let mut tx = self.begin_write().await?;
        let n = delete_synced_in(&mut tx, owner, m365_ids).await?;
        tx.commit().await?;
        Ok(n)
    }

    /// Contact sync: one page of changes to `owner`'s synced entries and the delta cursor
    /// `(key, value)` in ONE transaction, so a crash keeps both or neither.
    pub async fn apply_synced_phonebook(
        &self,
        owner: &PhonebookOwner,
        upserts: &[PhonebookEntry],
        removed_m365_ids: &[String],
        cursor: (&str, &str),
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        if !upserts.is_empty() {
            upsert_synced_in(&mut tx, owner, upserts).await?;
        }
        if !removed_m365_ids.is_empty() {
            delete_synced_in(&mut tx, owner, removed_m365_ids).await?;
        }
        crate::kv::set_in(&mut tx, cursor.0, cursor.1).await?;
        tx.commit().await?;
        Ok(())
    }
}

async fn upsert_synced_in(
    conn: &mut AnyConnection,
    owner: &PhonebookOwner,
    entries: &[PhonebookEntry],
) -> StoreResult<Vec<PhonebookEntry>> {
    check_owner(conn, owner).await?;
    let existing: HashMap<String, String> =
        read_entries(conn, &owner_condition(owner, "e."), owner_number(owner))
            .await?
            .into_iter()
            .filter_map(|e| e.m365_id.map(|m| (m, e.id)))
            .collect();
    let mut out = Vec::with_capacity(entries.len());
    for entry in entries {
        let Some(m365_id) = entry.m365_id.as_deref() else {
            return Err(StoreError::NotFound {
                what: "Microsoft 365 id of phonebook entry",
                key: entry.display_name.clone(),
            });
        };
        let mut e = entry.clone();
        e.owner = owner.clone();
        match existing.get(m365_id) {
            Some(id) => {
                e.id = id.clone();
                update_entry_row(conn, &e).await?;
            }
            None => {
                e.id = uuid::Uuid::new_v4().to_string();
                insert_entry(conn, &e).await?;
            }
        }
        out.push(e);
    }
    Ok(out)
}

async fn delete_synced_in(
    conn: &mut AnyConnection,
    owner: &PhonebookOwner,
    m365_ids: &[String],
) -> StoreResult<u64> {
    let ids: Vec<String> = read_entries(conn, &owner_condition(owner, "e."), owner_number(owner))
        .await?
        .into_iter()
        .filter(|e| e.m365_id.as_ref().is_some_and(|m| m365_ids.contains(m)))
        .map(|e| e.id)
        .collect();
    for id in &ids {
        delete_entry_rows(conn, id).await?;
    }
    Ok(ids.len() as u64)
}
