-- Contact sync (SPEC §5, issue 14). A synced phonebook entry remembers where it comes from:
-- the mailbox (a user's own, or a shared mailbox: the tag of company phonebook entries) and the
-- contact folder ('' is the default Contacts folder). Local entries have neither.
ALTER TABLE phonebook_entries ADD COLUMN job_title TEXT;
ALTER TABLE phonebook_entries ADD COLUMN mailbox TEXT;
ALTER TABLE phonebook_entries ADD COLUMN folder TEXT;
CREATE INDEX phonebook_entries_source ON phonebook_entries (mailbox, m365_id);

-- One row per synced contact folder: its delta link (written in the transaction of the page it
-- ends), how many entries it holds, and when it was last read. `owner_number` NULL: a shared
-- mailbox feeding the company phonebook.
CREATE TABLE contact_folders (
    mailbox      TEXT NOT NULL,
    folder       TEXT NOT NULL,
    owner_number TEXT REFERENCES extensions (number) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    delta_link   TEXT,
    entries      BIGINT NOT NULL,
    synced_at    TEXT NOT NULL,
    PRIMARY KEY (mailbox, folder)
);
CREATE INDEX contact_folders_owner ON contact_folders (owner_number);
