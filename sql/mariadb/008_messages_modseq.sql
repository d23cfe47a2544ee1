-- An IMAP session catches up with its selected mailbox by reading the
-- messages whose modseq is above the one its view was read at
-- (store_mailbox_view in src/store/store_imap.c); this index makes that a
-- range read instead of a pass over every message of the mailbox. Keep in
-- step with sql/sqlite/008_messages_modseq.sql.

CREATE INDEX messages_modseq ON messages (mailbox_id, modseq);
