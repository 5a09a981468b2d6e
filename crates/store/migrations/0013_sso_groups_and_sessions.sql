-- Single sign-on gaps (issue 15). Portable SQL for SQLite and PostgreSQL, like every migration.

-- `[sso] selected_groups` now names Microsoft 365 groups by object id (SPEC §10). Before this
-- migration the console stored pbx365 extension group names under that key; they keep their
-- meaning under the new key `sso.selected_extension_groups`.
UPDATE kv SET name = 'setting:sso.selected_extension_groups'
    WHERE name = 'setting:sso.selected_groups'
      AND NOT EXISTS (SELECT 1 FROM kv k2 WHERE k2.name = 'setting:sso.selected_extension_groups');

-- When the session's owner last proved who they are (password or Microsoft sign-in): sensitive
-- actions need a recent one (ASVS 3.7.1). NULL in sessions older than this column: the login.
ALTER TABLE sessions ADD COLUMN authenticated_at TEXT;
-- A short description of the browser (from User-Agent), so a user can tell their sessions
-- apart when listing and revoking them (ASVS 3.3.4).
ALTER TABLE sessions ADD COLUMN user_agent TEXT;
