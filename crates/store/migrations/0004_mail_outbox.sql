-- The mail outbox (issue 16): HTML body, attachments, kind, the sender and time of the last
-- attempt (pacing counts them), and a dedupe key so an alert or welcome mail is queued once
-- even when several instances notice the same event. NULL dedupe keys do not collide (both
-- engines allow many NULLs in a UNIQUE index).
ALTER TABLE outbox ADD COLUMN kind TEXT NOT NULL DEFAULT 'other';
ALTER TABLE outbox ADD COLUMN html_body TEXT;
ALTER TABLE outbox ADD COLUMN attachments TEXT NOT NULL DEFAULT '[]';
ALTER TABLE outbox ADD COLUMN recipient_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN dedupe_key TEXT;
ALTER TABLE outbox ADD COLUMN attempt_id TEXT;
ALTER TABLE outbox ADD COLUMN sender TEXT;
ALTER TABLE outbox ADD COLUMN sent_at TEXT;
CREATE UNIQUE INDEX outbox_dedupe ON outbox (dedupe_key);
CREATE INDEX outbox_sent_at ON outbox (sent_at);
