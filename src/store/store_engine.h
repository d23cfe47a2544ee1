/*
 * store_engine.h - what a storage engine provides to the store.
 *
 * The store's logic (store.c, store_mail.c, store_admin.c) is written once,
 * in SQL that both engines accept, on top of this small vtable: prepared
 * statements with "?" placeholders, typed binds and column reads, and
 * transactions. store_sqlite.c and store_mariadb.c implement it. Values never
 * go into SQL text; only the migrations (no values) run as plain text.
 */
#ifndef POSTERN_STORE_ENGINE_H
#define POSTERN_STORE_ENGINE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* step() results besides STORE_ERR and STORE_EXISTS (unique key violated). */
#define ENGINE_ROW 100
#define ENGINE_DONE 101

struct store_stmt; /* engine-specific prepared statement */

struct store_engine_ops {
	const char *name;
	/* Connects and sets st->engine_state; on failure fills st->err. */
	int (*open)(struct store *st, const struct config_store *cfg);
	void (*close)(struct store *st);
	/* One statement without parameters (migrations only). */
	int (*exec)(struct store *st, const char *sql);
	int (*begin)(struct store *st); /* a write transaction */
	int (*commit)(struct store *st);
	int (*rollback)(struct store *st);
	/* Serializes store_migrate() between processes; NULL when the write
	 * transaction already does (SQLite's BEGIN IMMEDIATE). */
	int (*migrate_lock)(struct store *st, bool lock);
	/* Lets the next transaction's commit skip the wait for the disk (true)
	 * or restores full durability (false); NULL when the engine cannot. */
	int (*set_relaxed)(struct store *st, bool relaxed);

	/* Prepared statements are cached per connection, keyed by the SQL
	 * text's address (the SQL is always a string constant). NULL on error. */
	struct store_stmt *(*prepare)(struct store *st, const char *sql);
	/* Parameters count from 1. Text and blob pointers must stay valid until
	 * finish(). A NULL text or blob binds SQL NULL. */
	int (*bind_int64)(struct store_stmt *s, int idx, int64_t v);
	int (*bind_double)(struct store_stmt *s, int idx, double v);
	int (*bind_text)(struct store_stmt *s, int idx, const char *v);
	int (*bind_blob)(struct store_stmt *s, int idx, const void *v, size_t len);
	/* ENGINE_ROW, ENGINE_DONE, STORE_EXISTS or STORE_ERR. */
	int (*step)(struct store_stmt *s);
	/* Columns count from 0; valid until the next step() or finish(). */
	bool (*column_null)(struct store_stmt *s, int col);
	int64_t (*column_int64)(struct store_stmt *s, int col);
	double (*column_double)(struct store_stmt *s, int col);
	const char *(*column_text)(struct store_stmt *s, int col); /* "" for NULL */
	const void *(*column_blob)(struct store_stmt *s, int col, size_t *len);
	/* Resets the statement and gives it back to the cache. */
	void (*finish)(struct store_stmt *s);

	int64_t (*last_insert_id)(struct store *st);
	int64_t (*changes)(struct store *st); /* rows matched by the last write */
};

struct store {
	const struct store_engine_ops *engine;
	void *engine_state;
	int tx_depth;	  /* nesting of store_begin() */
	bool tx_poisoned; /* an inner level rolled back: the outer commit must not */
	bool relaxed;	  /* commits do not wait for the disk (store_begin_relaxed) */
	char err[512];
};

extern const struct store_engine_ops store_engine_sqlite;
extern const struct store_engine_ops store_engine_mariadb;

void store_set_error(struct store *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- migrations, embedded at build time from sql/<engine>/NNN_name.sql ---- */
struct store_migration {
	int version;
	const char *name;
	const char *sql; /* statements separated by ";" at the end of a line */
};
extern const struct store_migration store_migrations_sqlite[];
extern const size_t store_migrations_sqlite_count;
extern const struct store_migration store_migrations_mariadb[];
extern const size_t store_migrations_mariadb_count;

/* ---- helpers shared by the store's files (store.c) ----
 * TYPES has one letter per parameter: 'i' int64_t, 'd' double, 't' const
 * char *, 'b' const void * followed by size_t. */
struct store_stmt *store_query(struct store *st, const char *sql, const char *types, ...);
/* Runs a statement that returns no rows: STORE_OK, STORE_EXISTS or STORE_ERR. */
int store_run(struct store *st, const char *sql, const char *types, ...);
/* Steps a statement from store_query(): STORE_OK with a row, STORE_NOTFOUND
 * at the end (and finishes it), STORE_ERR (and finishes it). */
int store_next(struct store *st, struct store_stmt *s);
void store_done(struct store *st, struct store_stmt *s);
/* Runs a query that yields one int64 in its first column. */
int store_query_int64(struct store *st, int64_t *out, const char *sql, const char *types, ...);
/* Copies column COL as text into a buffer of SIZE bytes (truncating). */
void store_col_text(struct store *st, struct store_stmt *s, int col, char *buf, size_t size);
/* Copies column COL into a malloc'd buffer (NULL for SQL NULL). */
int store_col_blob(struct store *st, struct store_stmt *s, int col, unsigned char **out,
		   size_t *len);
/*
 * store_begin() for a write whose loss in a power failure is harmless: only
 * flags, keywords and modseqs change. The commit survives a crash of the
 * process but does not wait for the disk (SQLite: WAL with synchronous =
 * NORMAL; the next durable commit or checkpoint syncs it too, and a power
 * failure loses at most the newest such commits, never reordering them).
 * Mail itself is never written this way. Inside an outer transaction this
 * is plain store_begin(): the outer one decides.
 */
int store_begin_relaxed(struct store *st);
/* Ends a write: commits when RC is STORE_OK, otherwise rolls back; returns RC
 * or the commit's failure. */
int store_end(struct store *st, int rc);
bool store_valid_utf8(const char *text);
/* Lower-cases ADDRESS into OUT (STORE_ADDRESS_MAX + 1 bytes); checks it has
 * one "@" with text on both sides. */
int store_normalize_address(struct store *st, const char *address, char *out);

#endif
