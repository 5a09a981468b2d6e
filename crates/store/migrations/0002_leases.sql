-- Job leases: each scheduled or manual job runs on one instance of a cluster at a time.
-- `token` grows with every new holder (a fencing token); `expires_at` is RFC 3339 UTC text.
CREATE TABLE leases (
    name       TEXT NOT NULL PRIMARY KEY,
    holder     TEXT NOT NULL,
    token      BIGINT NOT NULL,
    expires_at TEXT NOT NULL
);
