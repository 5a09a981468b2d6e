-- API tokens may expire, and record when they were last used (at most once a minute).
-- Both are RFC 3339 UTC text like every other timestamp; NULL means "never expires" / "never used".
ALTER TABLE api_tokens ADD COLUMN expires_at TEXT;
ALTER TABLE api_tokens ADD COLUMN last_used_at TEXT;
