-- Presence (issue 12): pbx365 publishes each extension's profile through Kamailio's `pua`
-- module (JSON-RPC `pua.publish`); Kamailio's presence server itself keeps publications and
-- watchers in memory only and needs no table. `pua` cannot start without a table of its own and
-- Kamailio's `version` table naming that table's schema version (Kamailio 5.6: 7), so both live
-- here, in Kamailio's own column names and types (which its db_sqlite and db_postgres read).
-- pua keeps its publications in memory (db_mode 0) and only writes them here periodically and at
-- shutdown; nothing in pbx365 reads this table. After a Kamailio restart pbx365 publishes every
-- extension again, so a stale row here can never outlive one retry (see ARCHITECTURE, Phones).
CREATE TABLE version (
    table_name    VARCHAR(32) NOT NULL PRIMARY KEY,
    table_version INTEGER NOT NULL
);

INSERT INTO version (table_name, table_version) VALUES ('pua', 7);

CREATE TABLE pua (
    id              INTEGER,
    pres_uri        VARCHAR(255) NOT NULL,
    pres_id         VARCHAR(255) NOT NULL,
    event           INTEGER NOT NULL,
    expires         INTEGER NOT NULL,
    desired_expires INTEGER NOT NULL,
    flag            INTEGER NOT NULL,
    etag            VARCHAR(128) NOT NULL,
    tuple_id        VARCHAR(64),
    watcher_uri     VARCHAR(255) NOT NULL,
    call_id         VARCHAR(255) NOT NULL,
    to_tag          VARCHAR(128) NOT NULL,
    from_tag        VARCHAR(128) NOT NULL,
    cseq            INTEGER NOT NULL,
    record_route    TEXT,
    contact         VARCHAR(255) NOT NULL,
    remote_contact  VARCHAR(255) NOT NULL,
    version         INTEGER NOT NULL,
    extra_headers   TEXT NOT NULL
);

CREATE INDEX pua_pres_uri_idx ON pua (pres_uri);
