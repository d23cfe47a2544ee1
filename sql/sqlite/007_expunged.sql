-- QRESYNC (RFC 7162 3.2): the UIDs expunged from a mailbox, with the modseq
-- of their expunge, so that a client resynchronizing from an older modseq
-- learns what went away (VANISHED). The trigger records every delete,
-- whoever makes it (IMAP, POP3, mailbox deletion); the mailbox's
-- highestmodseq has already been bumped for it. Keep in step with
-- sql/mariadb/007_expunged.sql.

CREATE TABLE expunged (
	mailbox_id INTEGER NOT NULL,
	uid INTEGER NOT NULL,
	modseq INTEGER NOT NULL,
	PRIMARY KEY (mailbox_id, uid)
);
CREATE INDEX expunged_modseq ON expunged(mailbox_id, modseq);

-- Both triggers are one line each: the migration runner splits statements at
-- a ";" that ends a line.
CREATE TRIGGER messages_expunged AFTER DELETE ON messages BEGIN INSERT OR REPLACE INTO expunged (mailbox_id, uid, modseq) SELECT OLD.mailbox_id, OLD.uid, highestmodseq FROM mailboxes WHERE id = OLD.mailbox_id; END;
CREATE TRIGGER mailboxes_expunged AFTER DELETE ON mailboxes BEGIN DELETE FROM expunged WHERE mailbox_id = OLD.id; END;
