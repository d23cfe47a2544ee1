/*
 * store_mariadb.c - the scale-out engine, over MariaDB Connector/C.
 *
 * Every value travels through mysql_stmt_* prepared statements; the only
 * SQL built from a name is CREATE DATABASE, with the name checked against
 * [A-Za-z0-9_]+. Tables are InnoDB (see sql/mariadb/), the connection speaks
 * utf8mb4, and CLIENT_FOUND_ROWS makes changes() count matched rows as SQLite
 * does. Results are buffered client-side (mysql_stmt_store_result), so a list
 * callback may run other statements on the same connection; columns are
 * fetched on demand with mysql_stmt_fetch_column into per-column buffers.
 *
 * A daemon keeps its connection for days; when the server closed it (restart,
 * wait_timeout), the failing call reports the error and marks the connection
 * broken, and the next call outside a transaction connects again. Idle
 * connections are pinged before use for the same reason.
 */
#include "config.h"

#include <errmsg.h>
#include <errno.h>
#include <mysql.h>
#include <mysqld_error.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store_engine.h"
#include "util/i18n.h"

#define MARIADB_STMT_CACHE 128
#define MARIADB_CONNECT_TIMEOUT 10 /* seconds */
#define MARIADB_PASSWORD_MAX 256
#define MARIADB_DATABASE_MAX 64
#define MARIADB_IDLE_PING 60 /* seconds idle after which a connection is pinged */

struct store_stmt {
	struct store *st;
	MYSQL_STMT *stmt;
	const char *sql;
	bool cached;
	bool in_use;
	bool executed;

	unsigned nparams;
	MYSQL_BIND *params;
	int64_t *ints;
	double *doubles;
	unsigned long *lens;

	unsigned nfields;
	MYSQL_RES *meta;
	MYSQL_BIND *res;
	unsigned long *res_len;
	my_bool *res_null;
	my_bool *res_err;
	char **colbuf; /* fetched text/blob per column, NUL-terminated */
	size_t *colcap;
};

struct mariadb_state {
	MYSQL *conn;
	struct config_store cfg; /* to connect again */
	bool broken;		 /* the server went away */
	time_t last_used;
	int64_t last_id;
	int64_t changes;
	struct store_stmt *cache[MARIADB_STMT_CACHE];
	size_t ncache;
};

static pthread_once_t library_once = PTHREAD_ONCE_INIT;
static int library_rc;

static void library_init(void)
{
	/* Not thread-safe itself, so it runs once before any connection. */
	library_rc = mysql_library_init(0, NULL, NULL);
}

static MYSQL *conn_of(struct store *st)
{
	return ((struct mariadb_state *)st->engine_state)->conn;
}

static bool connection_lost(unsigned err)
{
	return err == CR_SERVER_GONE_ERROR || err == CR_SERVER_LOST;
}

/*
 * A lost connection is replaced later (ensure_connected). A deadlock makes
 * InnoDB roll back the whole transaction, and a lost connection loses it: the
 * statements that follow would run on their own, so the transaction is
 * marked as failed and its final commit turns into a rollback.
 */
static void note_failure(struct store *st, unsigned err)
{
	if (connection_lost(err))
		((struct mariadb_state *)st->engine_state)->broken = true;
	if (st->tx_depth > 0 && (connection_lost(err) || err == ER_LOCK_DEADLOCK))
		st->tx_poisoned = true;
}

static int conn_error(struct store *st)
{
	struct mariadb_state *m = st->engine_state;
	unsigned err = mysql_errno(m->conn);

	store_set_error(st, "mariadb: %s", mysql_error(m->conn));
	note_failure(st, err);
	return err == ER_DUP_ENTRY ? STORE_EXISTS : STORE_ERR;
}

static int mariadb_exec(struct store *st, const char *sql)
{
	if (mysql_real_query(conn_of(st), sql, strlen(sql)) != 0)
		return conn_error(st);
	/* DDL yields no result, but drain one if a statement ever does. */
	MYSQL_RES *r = mysql_store_result(conn_of(st));

	if (r != NULL)
		mysql_free_result(r);
	return STORE_OK;
}

static void stmt_free(struct store_stmt *s)
{
	if (s == NULL)
		return;
	if (s->meta != NULL)
		mysql_free_result(s->meta);
	if (s->stmt != NULL)
		mysql_stmt_close(s->stmt);
	for (unsigned i = 0; i < s->nfields && s->colbuf != NULL; i++)
		free(s->colbuf[i]);
	free(s->colbuf);
	free(s->colcap);
	free(s->res);
	free(s->res_len);
	free(s->res_null);
	free(s->res_err);
	free(s->params);
	free(s->ints);
	free(s->doubles);
	free(s->lens);
	free(s);
}

static void mariadb_close(struct store *st)
{
	struct mariadb_state *m = st->engine_state;

	if (m == NULL)
		return;
	for (size_t i = 0; i < m->ncache; i++)
		stmt_free(m->cache[i]);
	if (m->conn != NULL)
		mysql_close(m->conn);
	free(m);
	st->engine_state = NULL;
}

/* Reads the first line of PATH into OUT. */
static int read_password(struct store *st, const char *path, char *out, size_t size)
{
	FILE *f = fopen(path, "r");
	size_t n;

	if (f == NULL) {
		store_set_error(st, _("cannot read the MariaDB password file %s: %s"), path,
				strerror(errno));
		return STORE_ERR;
	}
	if (fgets(out, (int)size, f) == NULL)
		out[0] = '\0';
	fclose(f);
	n = strcspn(out, "\r\n");
	out[n] = '\0';
	return STORE_OK;
}

static bool valid_database_name(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > MARIADB_DATABASE_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_'))
			return false;
	}
	return true;
}

/* Connects M->conn with M->cfg and selects (creating it if needed) the database. */
static int connect_server(struct store *st, struct mariadb_state *m)
{
	const struct config_store *cfg = &m->cfg;
	char password[MARIADB_PASSWORD_MAX] = "";
	char sql[256];
	unsigned timeout = MARIADB_CONNECT_TIMEOUT;
	const char *where;
	bool use_socket = cfg->mariadb_host[0] == '\0';

	if (cfg->mariadb_password_file[0] != '\0' &&
	    read_password(st, cfg->mariadb_password_file, password, sizeof(password)) != STORE_OK)
		return STORE_ERR;
	m->conn = mysql_init(NULL);
	if (m->conn == NULL) {
		store_set_error(st, "%s", _("out of memory"));
		return STORE_ERR;
	}
	mysql_options(m->conn, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
	mysql_options(m->conn, MYSQL_SET_CHARSET_NAME, "utf8mb4");
	where = use_socket ? (cfg->mariadb_socket[0] != '\0' ? cfg->mariadb_socket
							     : _("the default socket"))
			   : cfg->mariadb_host;
	if (mysql_real_connect(
		m->conn, use_socket ? NULL : cfg->mariadb_host,
		cfg->mariadb_user[0] != '\0' ? cfg->mariadb_user : NULL,
		password[0] != '\0' ? password : NULL, NULL, use_socket ? 0 : cfg->mariadb_port,
		use_socket && cfg->mariadb_socket[0] != '\0' ? cfg->mariadb_socket : NULL,
		CLIENT_FOUND_ROWS) == NULL) {
		store_set_error(st, _("cannot connect to MariaDB at %s: %s"), where,
				mysql_error(m->conn));
		explicit_bzero(password, sizeof(password));
		return STORE_ERR;
	}
	explicit_bzero(password, sizeof(password));
	snprintf(sql, sizeof(sql),
		 "CREATE DATABASE IF NOT EXISTS `%s` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
		 cfg->mariadb_database);
	if (mariadb_exec(st, sql) != STORE_OK ||
	    (mysql_select_db(m->conn, cfg->mariadb_database) != 0 && conn_error(st)) ||
	    mariadb_exec(st, "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'") !=
		STORE_OK) {
		char msg[sizeof(st->err)];

		memcpy(msg, st->err, sizeof(msg));
		store_set_error(st, _("cannot use MariaDB database %s: %s"), cfg->mariadb_database,
				msg);
		return STORE_ERR;
	}
	m->broken = false;
	m->last_used = time(NULL);
	return STORE_OK;
}

static int mariadb_open(struct store *st, const struct config_store *cfg)
{
	struct mariadb_state *m;

	pthread_once(&library_once, library_init);
	if (library_rc != 0) {
		store_set_error(st, "%s", _("cannot initialize the MariaDB client library"));
		return STORE_ERR;
	}
	if (!valid_database_name(cfg->mariadb_database)) {
		store_set_error(st,
				_("[store] mariadb_database must be 1-64 of A-Z a-z 0-9 _: %.64s"),
				cfg->mariadb_database);
		return STORE_ERR;
	}
	m = calloc(1, sizeof(*m));
	if (m == NULL) {
		store_set_error(st, "%s", _("out of memory"));
		return STORE_ERR;
	}
	m->cfg = *cfg;
	st->engine_state = m;
	if (connect_server(st, m) != STORE_OK) {
		mariadb_close(st);
		return STORE_ERR;
	}
	return STORE_OK;
}

/*
 * Outside a transaction and with no statement running, a connection that
 * broke or sat idle is checked and, if the server is gone, replaced (the
 * cached statements died with it).
 */
static int ensure_connected(struct store *st)
{
	struct mariadb_state *m = st->engine_state;
	time_t now = time(NULL);

	if (st->tx_depth > 0)
		return STORE_OK;
	for (size_t i = 0; i < m->ncache; i++)
		if (m->cache[i]->in_use)
			return STORE_OK;
	if (!m->broken && now - m->last_used < MARIADB_IDLE_PING) {
		m->last_used = now;
		return STORE_OK;
	}
	m->last_used = now;
	if (!m->broken && m->conn != NULL && mysql_ping(m->conn) == 0)
		return STORE_OK;
	m->broken = true; /* until connect_server() succeeds */
	for (size_t i = 0; i < m->ncache; i++)
		stmt_free(m->cache[i]);
	m->ncache = 0;
	if (m->conn != NULL)
		mysql_close(m->conn);
	m->conn = NULL;
	return connect_server(st, m);
}

static int mariadb_begin(struct store *st)
{
	if (ensure_connected(st) != STORE_OK)
		return STORE_ERR;
	return mariadb_exec(st, "START TRANSACTION");
}

/* Migrations are DDL, which MariaDB commits as it goes: a named lock per
 * database keeps two processes from migrating at once. */
static const char SQL_MIGRATE_LOCK[] =
    "SELECT GET_LOCK(CONCAT('postern_migrate_', DATABASE()), 120)";
static const char SQL_MIGRATE_UNLOCK[] =
    "SELECT RELEASE_LOCK(CONCAT('postern_migrate_', DATABASE()))";

static int mariadb_migrate_lock(struct store *st, bool lock)
{
	int64_t got = 0;
	int rc = store_query_int64(st, &got, lock ? SQL_MIGRATE_LOCK : SQL_MIGRATE_UNLOCK, "");

	if (rc == STORE_OK && lock && got != 1) {
		store_set_error(st, "%s", _("another process is migrating the database"));
		rc = STORE_ERR;
	}
	return rc == STORE_OK ? STORE_OK : STORE_ERR;
}

static int mariadb_commit(struct store *st)
{
	return mariadb_exec(st, "COMMIT");
}

static int mariadb_rollback(struct store *st)
{
	return mariadb_exec(st, "ROLLBACK");
}

static int stmt_error(struct store_stmt *s)
{
	unsigned err = mysql_stmt_errno(s->stmt);

	store_set_error(s->st, "mariadb: %s", mysql_stmt_error(s->stmt));
	note_failure(s->st, err);
	return err == ER_DUP_ENTRY ? STORE_EXISTS : STORE_ERR;
}

static struct store_stmt *stmt_new(struct store *st, const char *sql)
{
	struct store_stmt *s = calloc(1, sizeof(*s));

	if (s == NULL)
		goto oom;
	s->st = st;
	s->sql = sql;
	s->stmt = mysql_stmt_init(conn_of(st));
	if (s->stmt == NULL)
		goto oom;
	if (mysql_stmt_prepare(s->stmt, sql, strlen(sql)) != 0) {
		stmt_error(s);
		stmt_free(s);
		return NULL;
	}
	s->nparams = (unsigned)mysql_stmt_param_count(s->stmt);
	if (s->nparams > 0) {
		s->params = calloc(s->nparams, sizeof(*s->params));
		s->ints = calloc(s->nparams, sizeof(*s->ints));
		s->doubles = calloc(s->nparams, sizeof(*s->doubles));
		s->lens = calloc(s->nparams, sizeof(*s->lens));
		if (s->params == NULL || s->ints == NULL || s->doubles == NULL || s->lens == NULL)
			goto oom;
		for (unsigned i = 0; i < s->nparams; i++)
			s->params[i].buffer_type = MYSQL_TYPE_NULL; /* until bound */
	}
	s->nfields = mysql_stmt_field_count(s->stmt);
	if (s->nfields > 0) {
		s->res = calloc(s->nfields, sizeof(*s->res));
		s->res_len = calloc(s->nfields, sizeof(*s->res_len));
		s->res_null = calloc(s->nfields, sizeof(*s->res_null));
		s->res_err = calloc(s->nfields, sizeof(*s->res_err));
		s->colbuf = calloc(s->nfields, sizeof(*s->colbuf));
		s->colcap = calloc(s->nfields, sizeof(*s->colcap));
		if (s->res == NULL || s->res_len == NULL || s->res_null == NULL ||
		    s->res_err == NULL || s->colbuf == NULL || s->colcap == NULL)
			goto oom;
		/* Zero-length buffers: fetch() only reports lengths and NULLs;
		 * the column getters fetch the values they need. */
		for (unsigned i = 0; i < s->nfields; i++) {
			s->res[i].buffer_type = MYSQL_TYPE_STRING;
			s->res[i].length = &s->res_len[i];
			s->res[i].is_null = &s->res_null[i];
			s->res[i].error = &s->res_err[i];
		}
	}
	return s;
oom:
	stmt_free(s);
	store_set_error(st, "%s", _("out of memory"));
	return NULL;
}

static struct store_stmt *mariadb_prepare(struct store *st, const char *sql)
{
	struct mariadb_state *m = st->engine_state;
	struct store_stmt *s;

	if (ensure_connected(st) != STORE_OK)
		return NULL;
	for (size_t i = 0; i < m->ncache; i++) {
		if (m->cache[i]->sql == sql && !m->cache[i]->in_use) {
			m->cache[i]->in_use = true;
			return m->cache[i];
		}
	}
	s = stmt_new(st, sql);
	if (s == NULL)
		return NULL;
	/* A full cache, or a statement already running (a callback re-entered
	 * the store), gets a one-off statement. */
	s->cached = m->ncache < MARIADB_STMT_CACHE;
	if (s->cached)
		m->cache[m->ncache++] = s;
	s->in_use = true;
	return s;
}

static MYSQL_BIND *param(struct store_stmt *s, int idx)
{
	if (idx < 1 || (unsigned)idx > s->nparams) {
		store_set_error(s->st, "mariadb: parameter %d of %u", idx, s->nparams);
		return NULL;
	}
	MYSQL_BIND *b = &s->params[idx - 1];

	memset(b, 0, sizeof(*b));
	return b;
}

static int mariadb_bind_int64(struct store_stmt *s, int idx, int64_t v)
{
	MYSQL_BIND *b = param(s, idx);

	if (b == NULL)
		return STORE_ERR;
	s->ints[idx - 1] = v;
	b->buffer_type = MYSQL_TYPE_LONGLONG;
	b->buffer = &s->ints[idx - 1];
	return STORE_OK;
}

static int mariadb_bind_double(struct store_stmt *s, int idx, double v)
{
	MYSQL_BIND *b = param(s, idx);

	if (b == NULL)
		return STORE_ERR;
	s->doubles[idx - 1] = v;
	b->buffer_type = MYSQL_TYPE_DOUBLE;
	b->buffer = &s->doubles[idx - 1];
	return STORE_OK;
}

static int bind_bytes(struct store_stmt *s, int idx, enum enum_field_types type, const void *v,
		      size_t len)
{
	MYSQL_BIND *b = param(s, idx);

	if (b == NULL)
		return STORE_ERR;
	if (v == NULL) {
		b->buffer_type = MYSQL_TYPE_NULL;
		return STORE_OK;
	}
	s->lens[idx - 1] = (unsigned long)len;
	b->buffer_type = type;
	b->buffer = (void *)(uintptr_t)v; /* the API takes void * but only reads */
	b->buffer_length = (unsigned long)len;
	b->length = &s->lens[idx - 1];
	return STORE_OK;
}

static int mariadb_bind_text(struct store_stmt *s, int idx, const char *v)
{
	return bind_bytes(s, idx, MYSQL_TYPE_STRING, v, v != NULL ? strlen(v) : 0);
}

static int mariadb_bind_blob(struct store_stmt *s, int idx, const void *v, size_t len)
{
	return bind_bytes(s, idx, MYSQL_TYPE_BLOB, v, len);
}

static int execute(struct store_stmt *s)
{
	struct mariadb_state *m = s->st->engine_state;

	if (s->nparams > 0 && mysql_stmt_bind_param(s->stmt, s->params) != 0)
		return stmt_error(s);
	if (mysql_stmt_execute(s->stmt) != 0)
		return stmt_error(s);
	s->executed = true;
	if (s->nfields == 0) {
		m->changes = (int64_t)mysql_stmt_affected_rows(s->stmt);
		m->last_id = (int64_t)mysql_stmt_insert_id(s->stmt);
		return ENGINE_DONE;
	}
	if (mysql_stmt_bind_result(s->stmt, s->res) != 0 || mysql_stmt_store_result(s->stmt) != 0)
		return stmt_error(s);
	return ENGINE_ROW;
}

static int mariadb_step(struct store_stmt *s)
{
	int rc;

	if (!s->executed) {
		rc = execute(s);
		if (rc != ENGINE_ROW)
			return rc;
	}
	if (s->nfields == 0)
		return ENGINE_DONE;
	rc = mysql_stmt_fetch(s->stmt);
	if (rc == 0 || rc == MYSQL_DATA_TRUNCATED)
		return ENGINE_ROW;
	if (rc == MYSQL_NO_DATA)
		return ENGINE_DONE;
	return stmt_error(s);
}

static bool mariadb_column_null(struct store_stmt *s, int col)
{
	return col < 0 || (unsigned)col >= s->nfields || s->res_null[col];
}

/* Fetches column COL converted to TYPE into BUF of SIZE bytes. */
static bool fetch_as(struct store_stmt *s, int col, enum enum_field_types type, void *buf,
		     unsigned long size)
{
	MYSQL_BIND b;
	unsigned long len = 0;
	my_bool is_null = 0, err = 0;

	if (mariadb_column_null(s, col))
		return false;
	memset(&b, 0, sizeof(b));
	b.buffer_type = type;
	b.buffer = buf;
	b.buffer_length = size;
	b.length = &len;
	b.is_null = &is_null;
	b.error = &err;
	if (mysql_stmt_fetch_column(s->stmt, &b, (unsigned)col, 0) != 0) {
		stmt_error(s);
		return false;
	}
	return !is_null;
}

static int64_t mariadb_column_int64(struct store_stmt *s, int col)
{
	long long v = 0;

	if (!fetch_as(s, col, MYSQL_TYPE_LONGLONG, &v, sizeof(v)))
		return 0;
	return (int64_t)v;
}

static double mariadb_column_double(struct store_stmt *s, int col)
{
	double v = 0;

	if (!fetch_as(s, col, MYSQL_TYPE_DOUBLE, &v, sizeof(v)))
		return 0;
	return v;
}

/* The column's bytes in its per-column buffer, NUL-terminated; NULL on failure. */
static const char *column_bytes(struct store_stmt *s, int col, enum enum_field_types type,
				size_t *len)
{
	size_t n;

	*len = 0;
	if (mariadb_column_null(s, col))
		return NULL;
	n = s->res_len[col];
	if (s->colcap[col] < n + 1) {
		char *p = realloc(s->colbuf[col], n + 1);

		if (p == NULL) {
			store_set_error(s->st, "%s", _("out of memory"));
			return NULL;
		}
		s->colbuf[col] = p;
		s->colcap[col] = n + 1;
	}
	if (n > 0 && !fetch_as(s, col, type, s->colbuf[col], (unsigned long)n + 1))
		return NULL;
	s->colbuf[col][n] = '\0';
	*len = n;
	return s->colbuf[col];
}

static const char *mariadb_column_text(struct store_stmt *s, int col)
{
	size_t len;
	const char *p = column_bytes(s, col, MYSQL_TYPE_STRING, &len);

	return p != NULL ? p : "";
}

static const void *mariadb_column_blob(struct store_stmt *s, int col, size_t *len)
{
	const char *p = column_bytes(s, col, MYSQL_TYPE_BLOB, len);

	return p != NULL ? p : "";
}

static void mariadb_finish(struct store_stmt *s)
{
	if (s->executed) {
		/* The stored result lives on the client: freeing it is enough to
		 * execute again. A reset is a round trip to the server (half of
		 * all of them for one-row statements), needed only when a failure
		 * may have left the statement in the middle of a result. */
		mysql_stmt_free_result(s->stmt);
		if (mysql_stmt_errno(s->stmt) != 0)
			mysql_stmt_reset(s->stmt);
		s->executed = false;
	}
	if (s->nparams > 0) {
		memset(s->params, 0, s->nparams * sizeof(*s->params));
		for (unsigned i = 0; i < s->nparams; i++)
			s->params[i].buffer_type = MYSQL_TYPE_NULL;
	}
	if (s->cached)
		s->in_use = false;
	else
		stmt_free(s);
}

static int64_t mariadb_last_insert_id(struct store *st)
{
	return ((struct mariadb_state *)st->engine_state)->last_id;
}

static int64_t mariadb_changes(struct store *st)
{
	return ((struct mariadb_state *)st->engine_state)->changes;
}

const struct store_engine_ops store_engine_mariadb = {
    .name = "mariadb",
    .open = mariadb_open,
    .close = mariadb_close,
    .exec = mariadb_exec,
    .begin = mariadb_begin,
    .commit = mariadb_commit,
    .rollback = mariadb_rollback,
    .migrate_lock = mariadb_migrate_lock,
    .prepare = mariadb_prepare,
    .bind_int64 = mariadb_bind_int64,
    .bind_double = mariadb_bind_double,
    .bind_text = mariadb_bind_text,
    .bind_blob = mariadb_bind_blob,
    .step = mariadb_step,
    .column_null = mariadb_column_null,
    .column_int64 = mariadb_column_int64,
    .column_double = mariadb_column_double,
    .column_text = mariadb_column_text,
    .column_blob = mariadb_column_blob,
    .finish = mariadb_finish,
    .last_insert_id = mariadb_last_insert_id,
    .changes = mariadb_changes,
};
