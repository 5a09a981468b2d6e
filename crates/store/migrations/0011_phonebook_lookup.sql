-- Caller-name lookup (issue 14): a caller's number is found by index, never by a scan.
-- Portable SQL for SQLite and PostgreSQL, like every migration.

-- Which phonebook a number belongs to, next to the number: '' for the company phonebook, the
-- extension number for a personal one. The store writes it with every number (`write_numbers`),
-- so "this number in extension 201's phonebook" is one lookup of (e164, book).
ALTER TABLE phonebook_numbers ADD COLUMN book TEXT;
UPDATE phonebook_numbers SET book = COALESCE(
    (SELECT e.owner_number FROM phonebook_entries e WHERE e.id = phonebook_numbers.entry_id), '');
CREATE INDEX phonebook_numbers_e164_book ON phonebook_numbers (e164, book, entry_id);

-- An extension's mobile and outbound caller ID without the characters people write around the
-- digits: a caller's number in the few forms it can be written (+49…, 0049…, 0…) is then found
-- by index. The lookup writes the very same expression, so both databases use these indexes.
CREATE INDEX extensions_mobile_dial ON extensions (
    REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(mobile, ' ', ''), '-', ''), '(', ''), ')', ''), '/', ''), '.', ''));
CREATE INDEX extensions_caller_id_dial ON extensions (
    REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(outbound_caller_id, ' ', ''), '-', ''), '(', ''), ')', ''), '/', ''), '.', ''));
