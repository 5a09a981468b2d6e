-- SIP accounts (SPEC §8): digest hashes of each extension's SIP secret, never the secret.
-- `realm` is the SIP domain the hashes were made for: Kamailio's auth_db matches it, so a
-- changed domain needs new secrets rather than accepting hashes made for another realm.
CREATE TABLE sip_credentials (
    number     TEXT NOT NULL PRIMARY KEY REFERENCES extensions (number) ON DELETE CASCADE,
    realm      TEXT NOT NULL,
    ha1        TEXT NOT NULL,
    ha1b       TEXT NOT NULL,
    created_at TEXT NOT NULL
);

-- What Kamailio reads (auth_db and htable at start); views, so they are always current.
-- Plain column references keep SQLite's declared column types, which db_sqlite relies on.
-- Disabled extensions are absent: they cannot register, call, or be called.
CREATE VIEW sip_subscriber AS
    SELECT c.number AS username, c.realm AS domain, c.ha1 AS ha1, c.ha1b AS ha1b
    FROM sip_credentials c JOIN extensions e ON e.number = c.number
    WHERE e.enabled = 1;

CREATE VIEW sip_profiles AS
    SELECT e.number AS key_name, e.profile AS key_value FROM extensions e WHERE e.enabled = 1;

CREATE VIEW sip_names AS
    SELECT e.number AS key_name, e.display_name AS key_value FROM extensions e WHERE e.enabled = 1;

CREATE VIEW sip_mobiles AS
    SELECT e.number AS key_name, e.mobile AS key_value
    FROM extensions e WHERE e.enabled = 1 AND e.mobile IS NOT NULL AND e.mobile <> '';
