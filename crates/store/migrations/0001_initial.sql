-- pbx365 schema, version 1. ONE tree for SQLite and PostgreSQL, so only portable SQL:
-- text ids (no autoincrement), timestamps as fixed-width RFC 3339 UTC text (they sort as text),
-- booleans as BIGINT 0/1, JSON as TEXT. Photo bytes use BYTEA: PostgreSQL's binary type, and on
-- SQLite a type name with NUMERIC affinity that stores blob values unchanged.

CREATE TABLE extensions (
    number             TEXT NOT NULL PRIMARY KEY,
    first_name         TEXT NOT NULL,
    last_name          TEXT NOT NULL,
    display_name       TEXT NOT NULL,
    email              TEXT,
    mobile             TEXT,
    outbound_caller_id TEXT,
    department         TEXT,
    job_title          TEXT,
    office             TEXT,
    enabled            BIGINT NOT NULL,
    source             TEXT NOT NULL,
    m365_id            TEXT UNIQUE,
    photo_etag         TEXT,
    photo_content_type TEXT,
    is_admin           BIGINT NOT NULL,
    profile            TEXT NOT NULL,
    profile_source     TEXT NOT NULL,
    profile_until      TEXT,
    profile_return_to  TEXT,
    disabled_at        TEXT,
    updated_at         TEXT NOT NULL
);

CREATE TABLE extension_photos (
    number TEXT NOT NULL PRIMARY KEY REFERENCES extensions (number) ON DELETE CASCADE,
    bytes  BYTEA NOT NULL
);

CREATE TABLE extension_groups (
    name        TEXT NOT NULL PRIMARY KEY,
    description TEXT NOT NULL,
    builtin     BIGINT NOT NULL
);

CREATE TABLE extension_group_members (
    group_name TEXT NOT NULL REFERENCES extension_groups (name) ON DELETE CASCADE,
    number     TEXT NOT NULL REFERENCES extensions (number) ON DELETE CASCADE,
    PRIMARY KEY (group_name, number)
);
CREATE INDEX extension_group_members_number ON extension_group_members (number);

INSERT INTO extension_groups (name, description, builtin)
VALUES ('Azure AD', 'Extensions synced from Microsoft 365', 1);

-- owner_number NULL: the company phonebook; otherwise the extension's personal phonebook.
CREATE TABLE phonebook_entries (
    id           TEXT NOT NULL PRIMARY KEY,
    owner_number TEXT REFERENCES extensions (number) ON DELETE CASCADE,
    m365_id      TEXT,
    display_name TEXT NOT NULL,
    first_name   TEXT NOT NULL,
    last_name    TEXT NOT NULL,
    company      TEXT,
    emails       TEXT NOT NULL
);
CREATE INDEX phonebook_entries_owner ON phonebook_entries (owner_number);
CREATE INDEX phonebook_entries_m365_id ON phonebook_entries (m365_id);

CREATE TABLE phonebook_numbers (
    entry_id TEXT NOT NULL REFERENCES phonebook_entries (id) ON DELETE CASCADE,
    pos      BIGINT NOT NULL,
    kind     TEXT NOT NULL,
    raw      TEXT NOT NULL,
    e164     TEXT,
    PRIMARY KEY (entry_id, pos)
);
CREATE INDEX phonebook_numbers_e164 ON phonebook_numbers (e164);

CREATE TABLE sync_runs (
    id          TEXT NOT NULL PRIMARY KEY,
    kind        TEXT NOT NULL,
    status      TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    report      TEXT NOT NULL
);
CREATE INDEX sync_runs_started_at ON sync_runs (started_at);

CREATE TABLE kv (
    name  TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE audit_log (
    id     TEXT NOT NULL PRIMARY KEY,
    at     TEXT NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);

CREATE TABLE outbox (
    id              TEXT NOT NULL PRIMARY KEY,
    recipients      TEXT NOT NULL,
    subject         TEXT NOT NULL,
    body            TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        BIGINT NOT NULL,
    next_attempt_at TEXT NOT NULL,
    last_error      TEXT,
    created_at      TEXT NOT NULL
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);

CREATE TABLE admins (
    name          TEXT NOT NULL PRIMARY KEY,
    password_hash TEXT NOT NULL,
    created_at    TEXT NOT NULL
);

CREATE TABLE api_tokens (
    token_hash TEXT NOT NULL PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE sessions (
    id_hash      TEXT NOT NULL PRIMARY KEY,
    subject      TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    csrf_token   TEXT NOT NULL
);
CREATE INDEX sessions_subject ON sessions (subject);

CREATE TABLE oauth_states (
    state_hash   TEXT NOT NULL PRIMARY KEY,
    purpose      TEXT NOT NULL,
    session_hash TEXT NOT NULL,
    data         TEXT NOT NULL,
    expires_at   TEXT NOT NULL
);

CREATE TABLE subscriptions (
    id           TEXT NOT NULL PRIMARY KEY,
    resource     TEXT NOT NULL,
    client_state TEXT NOT NULL,
    expires_at   TEXT NOT NULL
);

-- Every dedup key ever accepted (pruned by age), so a redelivered notification is refused even
-- after its inbox row was taken.
CREATE TABLE notification_keys (
    dedup_key TEXT NOT NULL PRIMARY KEY,
    seen_at   TEXT NOT NULL
);

CREATE TABLE notification_inbox (
    id          TEXT NOT NULL PRIMARY KEY,
    dedup_key   TEXT NOT NULL,
    payload     TEXT NOT NULL,
    received_at TEXT NOT NULL
);
CREATE INDEX notification_inbox_received_at ON notification_inbox (received_at);
