-- Calendar status (SPEC §6): each followed extension's timeline of calendar entries as last
-- read (JSON, UTC instants), the calendarView delta link to read it on from, and the last
-- instant the scheduler acted on (`handled_until`: a start after it takes over even from a
-- manual profile; one at or before it was handled, so a manual change since then wins).
-- The scheduler rebuilds its schedule from these rows after a restart.
-- The profile's `source`/`until` (and what to return to) are columns of `extensions` since 0001.
CREATE TABLE calendar_timelines (
    number        TEXT NOT NULL PRIMARY KEY REFERENCES extensions (number) ON DELETE CASCADE,
    m365_id       TEXT NOT NULL,
    entries       TEXT NOT NULL,
    delta_link    TEXT,
    window_end    TEXT,
    handled_until TEXT NOT NULL,
    read_at       TEXT NOT NULL
);
