-- QRESYNC (RFC 7162 3.2): the UIDs expunged from a mailbox, with the modseq
-- of their expunge, so that a client resynchronizing from an older modseq
-- learns what went away (VANISHED). The trigger records every delete the
-- store makes (IMAP, POP3, mailbox deletion: the store deletes messages one
-- by one); the mailbox's highestmodseq has already been bumped for it. Rows
-- of a deleted mailbox go with it (foreign key). Keep in step with
-- sql/sqlite/007_expunged.sql.
--
-- Creating a trigger on a server with binary logging needs SUPER or
-- log_bin_trust_function_creators = 1 for the migrating account.

CREATE TABLE expunged (
	mailbox_id BIGINT NOT NULL,
	uid BIGINT NOT NULL,
	modseq BIGINT NOT NULL,
	PRIMARY KEY (mailbox_id, uid),
	KEY expunged_modseq (mailbox_id, modseq),
	FOREIGN KEY (mailbox_id) REFERENCES mailboxes(id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TRIGGER messages_expunged AFTER DELETE ON messages FOR EACH ROW REPLACE INTO expunged (mailbox_id, uid, modseq) SELECT OLD.mailbox_id, OLD.uid, highestmodseq FROM mailboxes WHERE id = OLD.mailbox_id;
