-- Postern schema, SQLite engine. Keep in step with sql/mariadb/001_initial.sql:
-- same tables, same columns, same meaning. Statements end with ";" at the end
-- of a line (the store runs them one by one).

CREATE TABLE domains (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	name TEXT NOT NULL UNIQUE,
	created INTEGER NOT NULL
);

CREATE TABLE users (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	domain_id INTEGER NOT NULL REFERENCES domains(id),
	address TEXT NOT NULL UNIQUE,
	password_hash TEXT NOT NULL,
	public_key BLOB NOT NULL,
	wrapped_key BLOB,
	recovery_key BLOB,
	is_locked INTEGER NOT NULL DEFAULT 0,
	quota_bytes INTEGER NOT NULL DEFAULT 0,
	used_bytes INTEGER NOT NULL DEFAULT 0,
	last_uidvalidity INTEGER NOT NULL DEFAULT 0,
	created INTEGER NOT NULL
);
CREATE INDEX users_domain ON users(domain_id);

CREATE TABLE aliases (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	domain_id INTEGER NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
	alias TEXT NOT NULL UNIQUE,
	target TEXT NOT NULL
);
CREATE INDEX aliases_domain ON aliases(domain_id);

CREATE TABLE mailboxes (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	name TEXT NOT NULL,
	uidvalidity INTEGER NOT NULL,
	uidnext INTEGER NOT NULL DEFAULT 1,
	highestmodseq INTEGER NOT NULL DEFAULT 1,
	special_use INTEGER NOT NULL DEFAULT 0,
	subscribed INTEGER NOT NULL DEFAULT 1,
	UNIQUE (user_id, name)
);

CREATE TABLE blobs (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	data BLOB NOT NULL
);
CREATE INDEX blobs_user ON blobs(user_id);

CREATE TABLE messages (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
	uid INTEGER NOT NULL,
	modseq INTEGER NOT NULL,
	flags INTEGER NOT NULL DEFAULT 0,
	keywords TEXT NOT NULL DEFAULT '',
	internal_date INTEGER NOT NULL,
	size INTEGER NOT NULL,
	blob_id INTEGER NOT NULL REFERENCES blobs(id) ON DELETE CASCADE,
	UNIQUE (mailbox_id, uid)
);
CREATE INDEX messages_blob ON messages(blob_id);

CREATE TABLE scan_results (
	message_id INTEGER PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
	verdict TEXT NOT NULL,
	score REAL NOT NULL,
	confidence REAL NOT NULL,
	model_version TEXT NOT NULL,
	reasons TEXT
);

CREATE TABLE queue (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	sender TEXT NOT NULL,
	recipient TEXT NOT NULL,
	dsn_notify TEXT NOT NULL DEFAULT '',
	dsn_orcpt TEXT NOT NULL DEFAULT '',
	dsn_ret TEXT NOT NULL DEFAULT '',
	dsn_envid TEXT NOT NULL DEFAULT '',
	attempts INTEGER NOT NULL DEFAULT 0,
	next_attempt INTEGER NOT NULL,
	created INTEGER NOT NULL,
	last_error TEXT NOT NULL DEFAULT '',
	data BLOB NOT NULL
);
CREATE INDEX queue_next ON queue(next_attempt);

CREATE TABLE quarantine (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	recipient TEXT NOT NULL,
	sender TEXT NOT NULL,
	verdict TEXT NOT NULL,
	reason TEXT NOT NULL,
	size INTEGER NOT NULL,
	created INTEGER NOT NULL,
	data BLOB NOT NULL
);

CREATE TABLE user_data (
	user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	kind TEXT NOT NULL,
	data BLOB NOT NULL,
	PRIMARY KEY (user_id, kind)
);

CREATE TABLE audit_log (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	ts INTEGER NOT NULL,
	actor TEXT NOT NULL,
	event TEXT NOT NULL,
	detail TEXT NOT NULL
);
CREATE INDEX audit_log_ts ON audit_log(ts);
