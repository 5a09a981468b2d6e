-- What a sync round reads instead of whole tables (issue 10): a delta round costs what changed.
-- Portable SQL for SQLite and PostgreSQL, like every migration.

-- Extension numbers in numeric order (shorter digit strings first): the allocator reads the taken
-- numbers of a small range, never the whole table.
CREATE INDEX extensions_number_order ON extensions (LENGTH(number), number);
-- Disabled extensions whose grace period is over are found without a scan.
CREATE INDEX extensions_disabled_at ON extensions (disabled_at);

-- Numbers deleted and not taken again: a number below the sync's allocation mark becomes free
-- only through a deletion, so the mark plus this table give the first free number.
CREATE TABLE freed_numbers (
    number TEXT NOT NULL PRIMARY KEY,
    value  BIGINT NOT NULL
);
CREATE INDEX freed_numbers_value ON freed_numbers (value);

-- Synced extensions (source m365 with an object id), all and enabled, kept by every write of the
-- store in the writing transaction: the mass-deletion guard's base without a count over the table.
CREATE TABLE extension_counts (
    name           TEXT NOT NULL PRIMARY KEY,
    synced         BIGINT NOT NULL,
    synced_enabled BIGINT NOT NULL
);
INSERT INTO extension_counts (name, synced, synced_enabled)
SELECT 'synced', COUNT(*), COUNT(CASE WHEN enabled = 1 THEN 1 END)
FROM extensions WHERE source = 'm365' AND m365_id IS NOT NULL;
