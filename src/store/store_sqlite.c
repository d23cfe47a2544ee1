/*
 * store_sqlite.c - the embedded engine (the default).
 *
 * WAL with synchronous=FULL makes a commit durable before it returns
 * (flag-only changes may commit with NORMAL: store_begin_relaxed);
 * foreign keys enforce the cascades of the schema; writes start with BEGIN
 * IMMEDIATE so concurrent writers (threads or processes, one connection
 * each) queue on the busy timeout instead of failing on a lock upgrade.
 * Prepared statements are cached per connection by the address of their SQL.
 */
#include "config.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "store/store_engine.h"
#include "util/i18n.h"

#define SQLITE_BUSY_TIMEOUT_MS 30000
#define SQLITE_STMT_CACHE 128

struct store_stmt {
	struct store *st;
	sqlite3_stmt *stmt;
	const char *sql;
	bool cached;
	bool in_use;
};

struct sqlite_state {
	sqlite3 *db;
	struct store_stmt cache[SQLITE_STMT_CACHE];
	size_t ncache;
};

static sqlite3 *db_of(struct store *st)
{
	return ((struct sqlite_state *)st->engine_state)->db;
}

static int sqlite_exec(struct store *st, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(db_of(st), sql, NULL, NULL, &msg) != SQLITE_OK) {
		store_set_error(st, "sqlite: %s", msg != NULL ? msg : sqlite3_errmsg(db_of(st)));
		sqlite3_free(msg);
		return STORE_ERR;
	}
	return STORE_OK;
}

static void sqlite_close(struct store *st)
{
	struct sqlite_state *s = st->engine_state;

	if (s == NULL)
		return;
	for (size_t i = 0; i < s->ncache; i++)
		sqlite3_finalize(s->cache[i].stmt);
	sqlite3_close(s->db);
	free(s);
	st->engine_state = NULL;
}

static int sqlite_open(struct store *st, const struct config_store *cfg)
{
	struct sqlite_state *s;
	static const char *const pragmas[] = {
	    "PRAGMA journal_mode = WAL",
	    "PRAGMA synchronous = FULL",
	    "PRAGMA foreign_keys = ON",
	};

	if (cfg->sqlite_path[0] == '\0') {
		store_set_error(st, "%s", _("[store] sqlite_path is empty"));
		return STORE_ERR;
	}
	/* Password hashes and wrapped keys live here: a new database is made
	 * owner-only (SQLite gives the -wal and -shm files the mode of the
	 * database). Never open() and close() the file ourselves: closing any
	 * descriptor of it drops every POSIX lock this process holds on it,
	 * including those of other connections, and another process could then
	 * delete a WAL still in use. */
	struct stat sb;
	bool created = stat(cfg->sqlite_path, &sb) != 0 && errno == ENOENT;

	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		store_set_error(st, "%s", _("out of memory"));
		return STORE_ERR;
	}
	st->engine_state = s;
	if (sqlite3_open_v2(cfg->sqlite_path, &s->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK) {
		store_set_error(st, _("cannot open %s: %s"), cfg->sqlite_path,
				s->db != NULL ? sqlite3_errmsg(s->db) : _("out of memory"));
		sqlite_close(st);
		return STORE_ERR;
	}
	if (created && chmod(cfg->sqlite_path, S_IRUSR | S_IWUSR) != 0) {
		store_set_error(st, _("cannot restrict access to %s: %s"), cfg->sqlite_path,
				strerror(errno));
		sqlite_close(st);
		return STORE_ERR;
	}
	sqlite3_extended_result_codes(s->db, 1);
	sqlite3_busy_timeout(s->db, SQLITE_BUSY_TIMEOUT_MS);
	for (size_t i = 0; i < sizeof(pragmas) / sizeof(pragmas[0]); i++) {
		int rc = sqlite_exec(st, pragmas[i]);

		/* Switching a new database to WAL while another process does the
		 * same can fail with SQLITE_BUSY without the busy handler being
		 * asked (SQLite avoids a lock upgrade deadlock): wait and retry. */
		for (int waited = 0; rc != STORE_OK &&
				     (sqlite3_errcode(s->db) & 0xff) == SQLITE_BUSY &&
				     waited < SQLITE_BUSY_TIMEOUT_MS;
		     waited += 10) {
			struct timespec pause = {0, 10 * 1000 * 1000};

			nanosleep(&pause, NULL);
			rc = sqlite_exec(st, pragmas[i]);
		}
		if (rc != STORE_OK) {
			char msg[sizeof(st->err)];

			memcpy(msg, st->err, sizeof(msg));
			store_set_error(st, _("cannot open %s: %s"), cfg->sqlite_path, msg);
			sqlite_close(st);
			return STORE_ERR;
		}
	}
	return STORE_OK;
}

static int sqlite_begin(struct store *st)
{
	return sqlite_exec(st, "BEGIN IMMEDIATE");
}

static int sqlite_commit(struct store *st)
{
	int rc = sqlite_exec(st, "COMMIT");

	/* A failed COMMIT may leave the transaction open: end it. */
	if (rc != STORE_OK && !sqlite3_get_autocommit(db_of(st)))
		sqlite3_exec(db_of(st), "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

static int sqlite_rollback(struct store *st)
{
	if (sqlite3_get_autocommit(db_of(st)))
		return STORE_OK; /* SQLite already rolled back (e.g. after SQLITE_FULL) */
	return sqlite_exec(st, "ROLLBACK");
}

/* WAL with synchronous = NORMAL: a commit reaches the WAL file (safe from a
 * process crash) but is synced only by the next FULL commit or checkpoint.
 * Changed between transactions only (store.c). */
static int sqlite_set_relaxed(struct store *st, bool relaxed)
{
	return sqlite_exec(st,
			   relaxed ? "PRAGMA synchronous = NORMAL" : "PRAGMA synchronous = FULL");
}

static struct store_stmt *sqlite_prepare(struct store *st, const char *sql)
{
	struct sqlite_state *state = st->engine_state;
	struct store_stmt *s = NULL;
	sqlite3_stmt *stmt = NULL;

	for (size_t i = 0; i < state->ncache; i++) {
		if (state->cache[i].sql == sql && !state->cache[i].in_use) {
			state->cache[i].in_use = true;
			return &state->cache[i];
		}
	}
	if (sqlite3_prepare_v3(state->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, NULL) !=
	    SQLITE_OK) {
		store_set_error(st, "sqlite: %s", sqlite3_errmsg(state->db));
		return NULL;
	}
	if (state->ncache < SQLITE_STMT_CACHE) {
		s = &state->cache[state->ncache++];
		s->cached = true;
	} else {
		/* Cache full, or this statement is already running (a callback
		 * re-entered the store): use a one-off statement. */
		s = calloc(1, sizeof(*s));
		if (s == NULL) {
			sqlite3_finalize(stmt);
			store_set_error(st, "%s", _("out of memory"));
			return NULL;
		}
		s->cached = false;
	}
	s->st = st;
	s->stmt = stmt;
	s->sql = sql;
	s->in_use = true;
	return s;
}

static int bind_result(struct store_stmt *s, int rc)
{
	if (rc != SQLITE_OK) {
		store_set_error(s->st, "sqlite: %s", sqlite3_errmsg(sqlite3_db_handle(s->stmt)));
		return STORE_ERR;
	}
	return STORE_OK;
}

static int sqlite_bind_int64(struct store_stmt *s, int idx, int64_t v)
{
	return bind_result(s, sqlite3_bind_int64(s->stmt, idx, v));
}

static int sqlite_bind_double(struct store_stmt *s, int idx, double v)
{
	return bind_result(s, sqlite3_bind_double(s->stmt, idx, v));
}

static int sqlite_bind_text(struct store_stmt *s, int idx, const char *v)
{
	if (v == NULL)
		return bind_result(s, sqlite3_bind_null(s->stmt, idx));
	return bind_result(s, sqlite3_bind_text(s->stmt, idx, v, -1, SQLITE_STATIC));
}

static int sqlite_bind_blob(struct store_stmt *s, int idx, const void *v, size_t len)
{
	if (v == NULL)
		return bind_result(s, sqlite3_bind_null(s->stmt, idx));
	return bind_result(
	    s, sqlite3_bind_blob64(s->stmt, idx, v, (sqlite3_uint64)len, SQLITE_STATIC));
}

static int sqlite_step(struct store_stmt *s)
{
	sqlite3 *db = sqlite3_db_handle(s->stmt);
	int rc = sqlite3_step(s->stmt);

	switch (rc) {
	case SQLITE_ROW:
		return ENGINE_ROW;
	case SQLITE_DONE:
		return ENGINE_DONE;
	case SQLITE_CONSTRAINT_UNIQUE:
	case SQLITE_CONSTRAINT_PRIMARYKEY:
		store_set_error(s->st, "sqlite: %s", sqlite3_errmsg(db));
		return STORE_EXISTS;
	default:
		store_set_error(s->st, "sqlite: %s", sqlite3_errmsg(db));
		/* Some errors (SQLITE_FULL, SQLITE_IOERR, ...) roll the whole
		 * transaction back: later statements must not commit alone. */
		if (s->st->tx_depth > 0 && sqlite3_get_autocommit(db))
			s->st->tx_poisoned = true;
		return STORE_ERR;
	}
}

static bool sqlite_column_null(struct store_stmt *s, int col)
{
	return sqlite3_column_type(s->stmt, col) == SQLITE_NULL;
}

static int64_t sqlite_column_int64(struct store_stmt *s, int col)
{
	return sqlite3_column_int64(s->stmt, col);
}

static double sqlite_column_double(struct store_stmt *s, int col)
{
	return sqlite3_column_double(s->stmt, col);
}

static const char *sqlite_column_text(struct store_stmt *s, int col)
{
	const unsigned char *t = sqlite3_column_text(s->stmt, col);

	return t != NULL ? (const char *)t : "";
}

static const void *sqlite_column_blob(struct store_stmt *s, int col, size_t *len)
{
	const void *p = sqlite3_column_blob(s->stmt, col);
	int n = sqlite3_column_bytes(s->stmt, col);

	*len = n > 0 ? (size_t)n : 0;
	return p != NULL ? p : "";
}

static void sqlite_finish(struct store_stmt *s)
{
	sqlite3_reset(s->stmt);
	sqlite3_clear_bindings(s->stmt);
	if (s->cached) {
		s->in_use = false;
	} else {
		sqlite3_finalize(s->stmt);
		free(s);
	}
}

static int64_t sqlite_last_insert_id(struct store *st)
{
	return sqlite3_last_insert_rowid(db_of(st));
}

static int64_t sqlite_changes(struct store *st)
{
	return sqlite3_changes64(db_of(st));
}

const struct store_engine_ops store_engine_sqlite = {
    .name = "sqlite",
    .open = sqlite_open,
    .close = sqlite_close,
    .exec = sqlite_exec,
    .begin = sqlite_begin,
    .commit = sqlite_commit,
    .rollback = sqlite_rollback,
    .set_relaxed = sqlite_set_relaxed,
    .prepare = sqlite_prepare,
    .bind_int64 = sqlite_bind_int64,
    .bind_double = sqlite_bind_double,
    .bind_text = sqlite_bind_text,
    .bind_blob = sqlite_bind_blob,
    .step = sqlite_step,
    .column_null = sqlite_column_null,
    .column_int64 = sqlite_column_int64,
    .column_double = sqlite_column_double,
    .column_text = sqlite_column_text,
    .column_blob = sqlite_column_blob,
    .finish = sqlite_finish,
    .last_insert_id = sqlite_last_insert_id,
    .changes = sqlite_changes,
};
