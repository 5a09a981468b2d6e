-- Sync plans (issue 9, "held means unchanged"): a round computes its whole plan first and keeps
-- it here page by page, then applies it only when the mass-deletion guard passes or an admin
-- approved it. `status`: planning | held | applying. `prior_cursor` is the scope's cursor before
-- the round (a held plan puts it back); `delta_link` is where the next delta round starts once the
-- plan is applied. Pages hold JSON: the kind's ops, the report lines, the wanted ids.
CREATE TABLE sync_plans (
    id           TEXT NOT NULL PRIMARY KEY,
    scope        TEXT NOT NULL,
    run_id       TEXT NOT NULL,
    status       TEXT NOT NULL,
    round        TEXT NOT NULL,
    prior_cursor TEXT,
    delta_link   TEXT,
    fingerprint  TEXT NOT NULL,
    pages        BIGINT NOT NULL,
    created_at   TEXT NOT NULL
);
CREATE INDEX sync_plans_scope ON sync_plans (scope, created_at);
CREATE INDEX sync_plans_run ON sync_plans (run_id);

CREATE TABLE sync_plan_pages (
    plan_id TEXT NOT NULL REFERENCES sync_plans (id) ON DELETE CASCADE,
    page    BIGINT NOT NULL,
    ops     TEXT NOT NULL,
    report  TEXT NOT NULL,
    wanted  TEXT NOT NULL,
    PRIMARY KEY (plan_id, page)
);
