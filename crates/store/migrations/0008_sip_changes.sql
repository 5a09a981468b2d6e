-- Routing changes for Kamailio (issue 12): every write that changes how calls to an extension
-- are routed (created, deleted, enabled, disabled, profile, display name, mobile, sync) or that
-- ends its registrations (a new SIP secret) adds a row here in its own transaction. Each pbx365
-- instance that pushes to a Kamailio tails this table (ids are time-ordered) and sends the
-- extension's current state, so changes made by the sync, by CLI commands or by another
-- instance reach Kamailio too. Rows older than an hour are pruned.
CREATE TABLE sip_changes (
    id     TEXT NOT NULL PRIMARY KEY,
    number TEXT NOT NULL,
    kind   TEXT NOT NULL
);
