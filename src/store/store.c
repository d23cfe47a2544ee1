/*
 * store.c - the store's front door: opening an engine, nested transactions,
 * migrations, the statement helpers the other store files share, and the
 * domain, alias and user tables. Mail (mailboxes, messages, scan results)
 * lives in store_mail.c; the queue, quarantine, user data, audit log and
 * stats in store_admin.c.
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store_engine.h"
#include "util/i18n.h"

void store_set_error(struct store *st, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(st->err, sizeof(st->err), fmt, ap);
	va_end(ap);
}

const char *store_error(const struct store *st)
{
	return st->err;
}

const char *store_engine_name(const struct store *st)
{
	return st->engine->name;
}

struct store *store_open(const struct config_store *cfg, char *err, size_t errlen)
{
	struct store *st = calloc(1, sizeof(*st));

	if (st == NULL) {
		snprintf(err, errlen, "%s", _("out of memory"));
		return NULL;
	}
	st->engine =
	    cfg->engine == STORE_ENGINE_MARIADB ? &store_engine_mariadb : &store_engine_sqlite;
	if (st->engine->open(st, cfg) != STORE_OK) {
		snprintf(err, errlen, "%s", st->err);
		free(st);
		return NULL;
	}
	return st;
}

void store_close(struct store *st)
{
	if (st == NULL)
		return;
	if (st->tx_depth > 0)
		st->engine->rollback(st);
	st->engine->close(st);
	free(st);
}

/* ---- transactions ---- */

/* Switches the connection between durable and relaxed commits. */
static int set_relaxed(struct store *st, bool relaxed)
{
	if (st->relaxed == relaxed)
		return STORE_OK;
	if (st->engine->set_relaxed(st, relaxed) != STORE_OK)
		return STORE_ERR;
	st->relaxed = relaxed;
	return STORE_OK;
}

/* After the outermost commit or rollback of a relaxed transaction. If the
 * switch back fails, the next store_begin() tries again and refuses to
 * start a durable write while it cannot. */
static void end_relaxed(struct store *st)
{
	if (st->relaxed) {
		char saved[sizeof(st->err)];

		memcpy(saved, st->err, sizeof(saved)); /* keep the caller's error */
		(void)set_relaxed(st, false);
		memcpy(st->err, saved, sizeof(saved));
	}
}

static int begin(struct store *st, bool relaxed)
{
	if (st->tx_depth == 0) {
		if (set_relaxed(st, relaxed && st->engine->set_relaxed != NULL) != STORE_OK)
			return STORE_ERR;
		if (st->engine->begin(st) != STORE_OK) {
			end_relaxed(st);
			return STORE_ERR;
		}
		st->tx_poisoned = false;
	}
	st->tx_depth++;
	return STORE_OK;
}

int store_begin(struct store *st)
{
	return begin(st, false);
}

int store_begin_relaxed(struct store *st)
{
	return begin(st, true);
}

int store_commit(struct store *st)
{
	int rc;

	if (st->tx_depth == 0) {
		store_set_error(st, "%s", _("commit without a transaction"));
		return STORE_ERR;
	}
	if (--st->tx_depth > 0) {
		if (st->tx_poisoned) {
			store_set_error(st, "%s",
					_("the transaction failed and must be rolled back"));
			return STORE_ERR;
		}
		return STORE_OK;
	}
	if (st->tx_poisoned) {
		st->engine->rollback(st);
		st->tx_poisoned = false;
		store_set_error(st, "%s", _("transaction rolled back: an inner part of it failed"));
		end_relaxed(st);
		return STORE_ERR;
	}
	rc = st->engine->commit(st);
	end_relaxed(st);
	return rc;
}

int store_rollback(struct store *st)
{
	int rc;

	if (st->tx_depth == 0) {
		store_set_error(st, "%s", _("rollback without a transaction"));
		return STORE_ERR;
	}
	if (--st->tx_depth > 0) {
		st->tx_poisoned = true;
		return STORE_OK;
	}
	st->tx_poisoned = false;
	rc = st->engine->rollback(st);
	end_relaxed(st);
	return rc;
}

int store_end(struct store *st, int rc)
{
	if (rc == STORE_OK)
		return store_commit(st);
	/* Keep the error message of the failure, not of the rollback. */
	char saved[sizeof(st->err)];

	memcpy(saved, st->err, sizeof(saved));
	store_rollback(st);
	memcpy(st->err, saved, sizeof(saved));
	return rc;
}

/* ---- statement helpers ---- */

static int bind_args(struct store *st, struct store_stmt *s, const char *types, va_list ap)
{
	const struct store_engine_ops *e = st->engine;
	int idx = 1;
	int rc = STORE_OK;

	for (const char *t = types; *t != '\0' && rc == STORE_OK; t++, idx++) {
		switch (*t) {
		case 'i':
			rc = e->bind_int64(s, idx, va_arg(ap, int64_t));
			break;
		case 'd':
			rc = e->bind_double(s, idx, va_arg(ap, double));
			break;
		case 't':
			rc = e->bind_text(s, idx, va_arg(ap, const char *));
			break;
		case 'b': {
			const void *p = va_arg(ap, const void *);
			size_t len = va_arg(ap, size_t);

			rc = e->bind_blob(s, idx, p, len);
			break;
		}
		default:
			store_set_error(st, "bad parameter type '%c'", *t);
			rc = STORE_ERR;
		}
	}
	return rc;
}

static struct store_stmt *query_v(struct store *st, const char *sql, const char *types, va_list ap)
{
	struct store_stmt *s;

	/* Part of the transaction failed; it can only end in a rollback, and
	 * the engine may already have rolled it back, so later statements
	 * would commit on their own. */
	if (st->tx_depth > 0 && st->tx_poisoned) {
		store_set_error(st, "%s", _("the transaction failed and must be rolled back"));
		return NULL;
	}
	s = st->engine->prepare(st, sql);
	if (s == NULL)
		return NULL;
	if (bind_args(st, s, types, ap) != STORE_OK) {
		st->engine->finish(s);
		return NULL;
	}
	return s;
}

struct store_stmt *store_query(struct store *st, const char *sql, const char *types, ...)
{
	va_list ap;
	struct store_stmt *s;

	va_start(ap, types);
	s = query_v(st, sql, types, ap);
	va_end(ap);
	return s;
}

int store_run(struct store *st, const char *sql, const char *types, ...)
{
	va_list ap;
	struct store_stmt *s;
	int rc;

	va_start(ap, types);
	s = query_v(st, sql, types, ap);
	va_end(ap);
	if (s == NULL)
		return STORE_ERR;
	do
		rc = st->engine->step(s);
	while (rc == ENGINE_ROW);
	st->engine->finish(s);
	return rc == ENGINE_DONE ? STORE_OK : rc;
}

int store_next(struct store *st, struct store_stmt *s)
{
	int rc = st->engine->step(s);

	if (rc == ENGINE_ROW)
		return STORE_OK;
	st->engine->finish(s);
	return rc == ENGINE_DONE ? STORE_NOTFOUND : STORE_ERR;
}

void store_done(struct store *st, struct store_stmt *s)
{
	st->engine->finish(s);
}

int store_query_int64(struct store *st, int64_t *out, const char *sql, const char *types, ...)
{
	va_list ap;
	struct store_stmt *s;
	int rc;

	va_start(ap, types);
	s = query_v(st, sql, types, ap);
	va_end(ap);
	if (s == NULL)
		return STORE_ERR;
	rc = store_next(st, s);
	if (rc != STORE_OK)
		return rc;
	*out = st->engine->column_int64(s, 0);
	store_done(st, s);
	return STORE_OK;
}

void store_col_text(struct store *st, struct store_stmt *s, int col, char *buf, size_t size)
{
	snprintf(buf, size, "%s", st->engine->column_text(s, col));
}

int store_col_blob(struct store *st, struct store_stmt *s, int col, unsigned char **out,
		   size_t *len)
{
	size_t n = 0;
	const void *p;

	*out = NULL;
	*len = 0;
	if (st->engine->column_null(s, col))
		return STORE_OK;
	p = st->engine->column_blob(s, col, &n);
	/* One spare byte so that an empty blob is still a non-NULL buffer. */
	*out = malloc(n + 1);
	if (*out == NULL) {
		store_set_error(st, "%s", _("out of memory"));
		return STORE_ERR;
	}
	if (n > 0)
		memcpy(*out, p, n);
	*len = n;
	return STORE_OK;
}

/* ASCII only: tolower() would follow the locale posternd runs in. */
static char ascii_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Strict UTF-8 (RFC 3629): no overlongs, surrogates or values past U+10FFFF.
 * Both engines must see the same text; MariaDB refuses anything else. */
bool store_valid_utf8(const char *text)
{
	const unsigned char *p = (const unsigned char *)text;

	while (*p != '\0') {
		size_t n;
		uint32_t cp;

		if (p[0] < 0x80) {
			p++;
			continue;
		} else if (p[0] >= 0xc2 && p[0] <= 0xdf) {
			n = 1;
			cp = p[0] & 0x1f;
		} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
			n = 2;
			cp = p[0] & 0x0f;
		} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
			n = 3;
			cp = p[0] & 0x07;
		} else {
			return false;
		}
		for (size_t i = 1; i <= n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i] & 0x3f);
		}
		if ((n == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
		    (n == 3 && (cp < 0x10000 || cp > 0x10ffff)))
			return false;
		p += n + 1;
	}
	return true;
}

int store_normalize_address(struct store *st, const char *address, char *out)
{
	size_t n = strlen(address);
	const char *at = strrchr(address, '@');

	if (n == 0 || n > STORE_ADDRESS_MAX || at == NULL || at == address || at[1] == '\0' ||
	    strlen(at + 1) > STORE_DOMAIN_MAX || !store_valid_utf8(address)) {
		store_set_error(st, _("not a valid address: %.64s"), address);
		return STORE_ERR;
	}
	for (size_t i = 0; i <= n; i++)
		out[i] = ascii_lower(address[i]);
	return STORE_OK;
}

static int normalize_domain(struct store *st, const char *domain, char *out)
{
	size_t n = strlen(domain);

	if (n == 0 || n > STORE_DOMAIN_MAX || strchr(domain, '@') != NULL ||
	    !store_valid_utf8(domain)) {
		store_set_error(st, _("not a valid domain: %.64s"), domain);
		return STORE_ERR;
	}
	for (size_t i = 0; i <= n; i++)
		out[i] = ascii_lower(domain[i]);
	return STORE_OK;
}

/* ---- migrations ---- */

/* Runs each statement of SQL: statements end with ";" at the end of a line;
 * lines starting with "--" are comments. */
static int run_script(struct store *st, const char *sql)
{
	size_t cap = strlen(sql) + 2, len = 0; /* a newline may be added, and a NUL */
	char *buf = malloc(cap);
	const char *p = sql;
	int rc = STORE_OK;

	if (buf == NULL) {
		store_set_error(st, "%s", _("out of memory"));
		return STORE_ERR;
	}
	while (*p != '\0' && rc == STORE_OK) {
		const char *eol = strchr(p, '\n');
		size_t linelen = eol != NULL ? (size_t)(eol - p) : strlen(p);
		const char *q = p;

		while (q < p + linelen && (*q == ' ' || *q == '\t'))
			q++;
		if (!(q + 1 < p + linelen && q[0] == '-' && q[1] == '-')) {
			size_t end = linelen;

			memcpy(buf + len, p, linelen);
			len += linelen;
			buf[len++] = '\n';
			while (end > 0 &&
			       (p[end - 1] == ' ' || p[end - 1] == '\t' || p[end - 1] == '\r'))
				end--;
			if (end > 0 && p[end - 1] == ';') {
				buf[len] = '\0';
				rc = st->engine->exec(st, buf);
				len = 0;
			}
		}
		p += linelen;
		if (*p == '\n')
			p++;
	}
	if (rc == STORE_OK) {
		buf[len] = '\0';
		for (size_t i = 0; i < len; i++) {
			if (!isspace((unsigned char)buf[i])) {
				rc = st->engine->exec(st, buf);
				break;
			}
		}
	}
	free(buf);
	return rc;
}

static const char SQL_SCHEMA_VERSION_TABLE[] =
    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL PRIMARY KEY, "
    "name VARCHAR(128) NOT NULL, applied BIGINT NOT NULL)";
static const char SQL_SCHEMA_VERSION[] = "SELECT COALESCE(MAX(version), 0) FROM schema_version";
static const char SQL_SCHEMA_HAS[] = "SELECT COUNT(*) FROM schema_version WHERE version = ?";
static const char SQL_SCHEMA_RECORD[] =
    "INSERT INTO schema_version (version, name, applied) VALUES (?, ?, ?)";

/* Releases the migration lock without losing the error message at hand. */
static void migrate_unlock(struct store *st)
{
	char saved[sizeof(st->err)];

	memcpy(saved, st->err, sizeof(saved));
	st->engine->migrate_lock(st, false);
	memcpy(st->err, saved, sizeof(saved));
}

int store_migrate(struct store *st, int *version_out)
{
	const struct store_migration *list;
	size_t count;
	int64_t current = 0;
	int rc;

	if (st->engine == &store_engine_mariadb) {
		list = store_migrations_mariadb;
		count = store_migrations_mariadb_count;
	} else {
		list = store_migrations_sqlite;
		count = store_migrations_sqlite_count;
	}
	if (st->engine->migrate_lock != NULL && st->engine->migrate_lock(st, true) != STORE_OK)
		return STORE_ERR;
	if (st->engine->exec(st, SQL_SCHEMA_VERSION_TABLE) != STORE_OK ||
	    store_begin(st) != STORE_OK) {
		if (st->engine->migrate_lock != NULL)
			migrate_unlock(st);
		return STORE_ERR;
	}
	/*
	 * Every migration not yet recorded runs, in order, even one numbered
	 * below the newest recorded: a database is never left without a step
	 * because a later one was applied first.
	 */
	rc = STORE_OK;
	for (size_t i = 0; i < count && rc == STORE_OK; i++) {
		int64_t have = 0;

		rc = store_query_int64(st, &have, SQL_SCHEMA_HAS, "i", (int64_t)list[i].version);
		if (rc != STORE_OK || have > 0)
			continue;
		rc = run_script(st, list[i].sql);
		if (rc != STORE_OK) {
			char msg[sizeof(st->err)];

			snprintf(msg, sizeof(msg), "%s", st->err);
			store_set_error(st, _("migration %s failed: %s"), list[i].name, msg);
			break;
		}
		rc = store_run(st, SQL_SCHEMA_RECORD, "iti", (int64_t)list[i].version, list[i].name,
			       (int64_t)time(NULL));
	}
	if (rc == STORE_OK)
		rc = store_query_int64(st, &current, SQL_SCHEMA_VERSION, "");
	rc = store_end(st, rc == STORE_OK ? STORE_OK : STORE_ERR);
	if (st->engine->migrate_lock != NULL)
		migrate_unlock(st);
	if (rc == STORE_OK && version_out != NULL)
		*version_out = (int)current;
	return rc;
}

/* ---- domains ---- */

static const char SQL_DOMAIN_ADD[] = "INSERT INTO domains (name, created) VALUES (?, ?)";
static const char SQL_DOMAIN_ID[] = "SELECT id FROM domains WHERE name = ?";
static const char SQL_DOMAIN_USERS[] = "SELECT COUNT(*) FROM users WHERE domain_id = ?";
static const char SQL_DOMAIN_DEL[] = "DELETE FROM domains WHERE id = ?";
static const char SQL_DOMAIN_LIST[] = "SELECT name FROM domains ORDER BY name";

int store_domain_add(struct store *st, const char *domain)
{
	char name[STORE_DOMAIN_MAX + 1];
	int rc;

	if (normalize_domain(st, domain, name) != STORE_OK)
		return STORE_ERR;
	rc = store_run(st, SQL_DOMAIN_ADD, "ti", name, (int64_t)time(NULL));
	if (rc == STORE_EXISTS)
		store_set_error(st, _("domain %s already exists"), name);
	return rc;
}

static int domain_id(struct store *st, const char *domain, int64_t *id)
{
	char name[STORE_DOMAIN_MAX + 1];
	int rc;

	/* A malformed name is simply not one of ours. */
	if (normalize_domain(st, domain, name) != STORE_OK)
		return STORE_NOTFOUND;
	rc = store_query_int64(st, id, SQL_DOMAIN_ID, "t", name);
	if (rc == STORE_NOTFOUND)
		store_set_error(st, _("no such domain: %s"), name);
	return rc;
}

int store_domain_del(struct store *st, const char *domain)
{
	int64_t id = 0, users = 0;
	int rc;

	if (store_begin(st) != STORE_OK)
		return STORE_ERR;
	rc = domain_id(st, domain, &id);
	if (rc == STORE_OK)
		rc = store_query_int64(st, &users, SQL_DOMAIN_USERS, "i", id);
	if (rc == STORE_OK && users > 0) {
		store_set_error(st, _("domain %s still has %lld users"), domain, (long long)users);
		rc = STORE_EXISTS;
	}
	if (rc == STORE_OK)
		rc = store_run(st, SQL_DOMAIN_DEL, "i", id);
	return store_end(st, rc);
}

int store_domain_exists(struct store *st, const char *domain)
{
	int64_t id;

	return domain_id(st, domain, &id);
}

int store_domain_list(struct store *st, store_domain_cb cb, void *arg)
{
	struct store_stmt *s = store_query(st, SQL_DOMAIN_LIST, "");
	int rc;

	if (s == NULL)
		return STORE_ERR;
	while ((rc = store_next(st, s)) == STORE_OK) {
		if (cb(arg, st->engine->column_text(s, 0)) != 0) {
			store_done(st, s);
			return STORE_OK;
		}
	}
	return rc == STORE_NOTFOUND ? STORE_OK : rc;
}

/* ---- aliases ---- */

static const char SQL_ALIAS_ADD[] =
    "INSERT INTO aliases (domain_id, alias, target) VALUES (?, ?, ?)";
static const char SQL_ALIAS_DEL[] = "DELETE FROM aliases WHERE alias = ?";
static const char SQL_ALIAS_LIST_ALL[] = "SELECT alias, target FROM aliases ORDER BY alias";
static const char SQL_ALIAS_LIST_DOMAIN[] =
    "SELECT a.alias, a.target FROM aliases a JOIN domains d ON d.id = a.domain_id "
    "WHERE d.name = ? ORDER BY a.alias";
static const char SQL_ALIAS_TARGET[] = "SELECT target FROM aliases WHERE alias = ?";
static const char SQL_USER_EXISTS[] = "SELECT id FROM users WHERE address = ?";

/* An alias is local@domain, or "@domain" to catch every other local part. */
int store_alias_add(struct store *st, const char *alias, const char *target)
{
	char a[STORE_ADDRESS_MAX + 1], t[STORE_ADDRESS_MAX + 1];
	int64_t did = 0;
	int rc;

	if (alias[0] == '@') {
		if (normalize_domain(st, alias + 1, a + 1) != STORE_OK)
			return STORE_ERR;
		a[0] = '@';
	} else if (store_normalize_address(st, alias, a) != STORE_OK) {
		return STORE_ERR;
	}
	if (store_normalize_address(st, target, t) != STORE_OK)
		return STORE_ERR;
	if (store_begin(st) != STORE_OK)
		return STORE_ERR;
	rc = domain_id(st, strrchr(a, '@') + 1, &did);
	if (rc == STORE_OK) {
		rc = store_run(st, SQL_ALIAS_ADD, "itt", did, a, t);
		if (rc == STORE_EXISTS)
			store_set_error(st, _("alias %s already exists"), a);
	}
	return store_end(st, rc);
}

int store_alias_del(struct store *st, const char *alias)
{
	char a[STORE_ADDRESS_MAX + 1];
	size_t n = strlen(alias);
	int rc;

	if (n == 0 || n > STORE_ADDRESS_MAX) {
		store_set_error(st, _("no such alias: %.64s"), alias);
		return STORE_NOTFOUND;
	}
	for (size_t i = 0; i <= n; i++)
		a[i] = ascii_lower(alias[i]);
	rc = store_run(st, SQL_ALIAS_DEL, "t", a);
	if (rc == STORE_OK && st->engine->changes(st) == 0) {
		store_set_error(st, _("no such alias: %s"), a);
		rc = STORE_NOTFOUND;
	}
	return rc;
}

/* The rows of SQL_DOMAIN for the domain DOMAIN, or of SQL_ALL when DOMAIN is NULL; NULL when
 * the domain name is invalid or the query fails. The normalized name goes to NAME, which is
 * bound to the statement and must outlive it. */
static struct store_stmt *query_domain_or_all(struct store *st, const char *domain,
					      char name[STORE_DOMAIN_MAX + 1],
					      const char *sql_domain, const char *sql_all)
{
	if (domain == NULL)
		return store_query(st, sql_all, "");
	if (normalize_domain(st, domain, name) != STORE_OK)
		return NULL;
	return store_query(st, sql_domain, "t", name);
}

int store_alias_list(struct store *st, const char *domain, store_alias_cb cb, void *arg)
{
	char name[STORE_DOMAIN_MAX + 1];
	struct store_stmt *s;
	int rc;

	s = query_domain_or_all(st, domain, name, SQL_ALIAS_LIST_DOMAIN, SQL_ALIAS_LIST_ALL);
	if (s == NULL)
		return STORE_ERR;
	while ((rc = store_next(st, s)) == STORE_OK) {
		if (cb(arg, st->engine->column_text(s, 0), st->engine->column_text(s, 1)) != 0) {
			store_done(st, s);
			return STORE_OK;
		}
	}
	return rc == STORE_NOTFOUND ? STORE_OK : rc;
}

static int alias_target(struct store *st, const char *address, char *out)
{
	struct store_stmt *s = store_query(st, SQL_ALIAS_TARGET, "t", address);
	int rc;

	if (s == NULL)
		return STORE_ERR;
	rc = store_next(st, s);
	if (rc != STORE_OK)
		return rc;
	store_col_text(st, s, 0, out, STORE_ADDRESS_MAX + 1);
	store_done(st, s);
	return STORE_OK;
}

/* Aliases may point at aliases; a bounded number of hops stops loops. */
#define ALIAS_MAX_HOPS 8

int store_resolve_address(struct store *st, const char *address, char *out)
{
	char cur[STORE_ADDRESS_MAX + 1], next[STORE_ADDRESS_MAX + 1];
	int64_t id;
	int rc;

	if (store_normalize_address(st, address, cur) != STORE_OK)
		return STORE_NOTFOUND;
	for (int hop = 0; hop <= ALIAS_MAX_HOPS; hop++) {
		rc = store_query_int64(st, &id, SQL_USER_EXISTS, "t", cur);
		if (rc == STORE_OK) {
			memcpy(out, cur, strlen(cur) + 1);
			return STORE_OK;
		}
		if (rc != STORE_NOTFOUND)
			return rc;
		rc = alias_target(st, cur, next);
		if (rc == STORE_NOTFOUND) {
			/* The catch-all "@domain" of the address's domain. */
			char catchall[STORE_ADDRESS_MAX + 1];

			snprintf(catchall, sizeof(catchall), "%s", strrchr(cur, '@'));
			rc = alias_target(st, catchall, next);
		}
		if (rc != STORE_OK) {
			if (rc == STORE_NOTFOUND)
				store_set_error(st, _("no such user or alias: %s"), cur);
			return rc;
		}
		memcpy(cur, next, sizeof(cur));
	}
	store_set_error(st, _("alias loop at %s"), address);
	return STORE_NOTFOUND;
}

/* ---- users ---- */

static const char SQL_USER_ADD[] =
    "INSERT INTO users (domain_id, address, password_hash, public_key, wrapped_key, "
    "recovery_key, is_locked, quota_bytes, used_bytes, created) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?)";
#define USER_COLUMNS                                                                               \
	"SELECT id, address, password_hash, public_key, wrapped_key, recovery_key, is_locked, "    \
	"quota_bytes, used_bytes, created FROM users "
static const char SQL_USER_GET[] = USER_COLUMNS "WHERE address = ?";
static const char SQL_USER_GET_ID[] = USER_COLUMNS "WHERE id = ?";
static const char SQL_USER_LIST_ALL[] = USER_COLUMNS "ORDER BY address";
static const char SQL_USER_LIST_DOMAIN[] =
    USER_COLUMNS "WHERE domain_id = (SELECT id FROM domains WHERE name = ?) ORDER BY address";
static const char SQL_USER_DEL[] = "DELETE FROM users WHERE id = ?";
static const char SQL_USER_SET_PASSWORD[] =
    "UPDATE users SET password_hash = ?, wrapped_key = ? WHERE id = ?";
static const char SQL_USER_SET_RECOVERY[] = "UPDATE users SET recovery_key = ? WHERE id = ?";
static const char SQL_USER_SET_LOCKED[] = "UPDATE users SET is_locked = ? WHERE id = ?";
static const char SQL_USER_SET_QUOTA[] = "UPDATE users SET quota_bytes = ? WHERE id = ?";

void store_user_clear(struct store_user *u)
{
	free(u->wrapped_key);
	free(u->recovery_key);
	u->wrapped_key = NULL;
	u->wrapped_key_len = 0;
	u->recovery_key = NULL;
	u->recovery_key_len = 0;
}

static const struct {
	const char *name;
	enum store_special_use use;
} default_mailboxes[] = {
    {"INBOX", SPECIAL_NONE}, {"Sent", SPECIAL_SENT},   {"Drafts", SPECIAL_DRAFTS},
    {"Junk", SPECIAL_JUNK},  {"Trash", SPECIAL_TRASH}, {"Archive", SPECIAL_ARCHIVE},
};

int store_user_add(struct store *st, struct store_user *u)
{
	char addr[STORE_ADDRESS_MAX + 1];
	int64_t did = 0;
	int rc;

	if (store_normalize_address(st, u->address, addr) != STORE_OK)
		return STORE_ERR;
	if (u->created == 0)
		u->created = (int64_t)time(NULL);
	if (store_begin(st) != STORE_OK)
		return STORE_ERR;
	rc = domain_id(st, strrchr(addr, '@') + 1, &did);
	if (rc == STORE_OK) {
		rc = store_run(st, SQL_USER_ADD, "ittbbbiii", did, addr, u->password_hash,
			       (const void *)u->public_key, sizeof(u->public_key),
			       (const void *)u->wrapped_key, u->wrapped_key_len,
			       (const void *)u->recovery_key, u->recovery_key_len,
			       (int64_t)(u->locked ? 1 : 0), u->quota_bytes, u->created);
		if (rc == STORE_EXISTS)
			store_set_error(st, _("user %s already exists"), addr);
	}
	if (rc == STORE_OK) {
		u->id = st->engine->last_insert_id(st);
		u->used_bytes = 0;
		memcpy(u->address, addr, sizeof(addr));
	}
	for (size_t i = 0;
	     rc == STORE_OK && i < sizeof(default_mailboxes) / sizeof(default_mailboxes[0]); i++)
		rc = store_mailbox_create(st, u->id, default_mailboxes[i].name,
					  default_mailboxes[i].use, NULL);
	return store_end(st, rc);
}

static int read_user(struct store *st, struct store_stmt *s, struct store_user *out)
{
	const struct store_engine_ops *e = st->engine;
	size_t klen = 0;
	const void *key;
	int rc;

	out->id = e->column_int64(s, 0);
	store_col_text(st, s, 1, out->address, sizeof(out->address));
	store_col_text(st, s, 2, out->password_hash, sizeof(out->password_hash));
	key = e->column_blob(s, 3, &klen);
	memset(out->public_key, 0, sizeof(out->public_key));
	memcpy(out->public_key, key,
	       klen < sizeof(out->public_key) ? klen : sizeof(out->public_key));
	rc = store_col_blob(st, s, 4, &out->wrapped_key, &out->wrapped_key_len);
	if (rc == STORE_OK)
		rc = store_col_blob(st, s, 5, &out->recovery_key, &out->recovery_key_len);
	out->locked = e->column_int64(s, 6) != 0;
	out->quota_bytes = e->column_int64(s, 7);
	out->used_bytes = e->column_int64(s, 8);
	out->created = e->column_int64(s, 9);
	if (rc != STORE_OK)
		store_user_clear(out);
	return rc;
}

static int user_get_one(struct store *st, struct store_stmt *s, struct store_user *out,
			const char *what)
{
	int rc;

	memset(out, 0, sizeof(*out));
	if (s == NULL)
		return STORE_ERR;
	rc = store_next(st, s);
	if (rc == STORE_NOTFOUND)
		store_set_error(st, _("no such user: %s"), what);
	if (rc != STORE_OK)
		return rc;
	rc = read_user(st, s, out);
	store_done(st, s);
	return rc;
}

int store_user_get(struct store *st, const char *address, struct store_user *out)
{
	char addr[STORE_ADDRESS_MAX + 1];

	memset(out, 0, sizeof(*out));
	if (store_normalize_address(st, address, addr) != STORE_OK)
		return STORE_NOTFOUND;
	return user_get_one(st, store_query(st, SQL_USER_GET, "t", addr), out, addr);
}

int store_user_get_by_id(struct store *st, int64_t id, struct store_user *out)
{
	char what[32];

	snprintf(what, sizeof(what), "#%lld", (long long)id);
	return user_get_one(st, store_query(st, SQL_USER_GET_ID, "i", id), out, what);
}

int store_user_del(struct store *st, const char *address)
{
	char addr[STORE_ADDRESS_MAX + 1];
	int64_t id = 0;
	int rc;

	if (store_normalize_address(st, address, addr) != STORE_OK)
		return STORE_NOTFOUND;
	if (store_begin(st) != STORE_OK)
		return STORE_ERR;
	rc = store_query_int64(st, &id, SQL_USER_EXISTS, "t", addr);
	if (rc == STORE_NOTFOUND)
		store_set_error(st, _("no such user: %s"), addr);
	/* Mailboxes, messages, blobs, scan results and user data cascade. */
	if (rc == STORE_OK)
		rc = store_run(st, SQL_USER_DEL, "i", id);
	return store_end(st, rc);
}

/* Runs an UPDATE of one user; STORE_NOTFOUND when no such user. */
static int user_updated(struct store *st, int64_t user_id, int rc)
{
	if (rc == STORE_OK && st->engine->changes(st) == 0) {
		store_set_error(st, _("no such user: #%lld"), (long long)user_id);
		rc = STORE_NOTFOUND;
	}
	return rc;
}

int store_user_set_password(struct store *st, int64_t user_id, const char *password_hash,
			    const unsigned char *wrapped_key, size_t wrapped_key_len)
{
	int rc = store_run(st, SQL_USER_SET_PASSWORD, "tbi", password_hash,
			   (const void *)wrapped_key, wrapped_key_len, user_id);

	return user_updated(st, user_id, rc);
}

int store_user_set_recovery(struct store *st, int64_t user_id, const unsigned char *recovery_key,
			    size_t len)
{
	int rc =
	    store_run(st, SQL_USER_SET_RECOVERY, "bi", (const void *)recovery_key, len, user_id);

	return user_updated(st, user_id, rc);
}

int store_user_set_locked(struct store *st, int64_t user_id, bool locked)
{
	int rc = store_run(st, SQL_USER_SET_LOCKED, "ii", (int64_t)(locked ? 1 : 0), user_id);

	return user_updated(st, user_id, rc);
}

int store_user_set_quota(struct store *st, int64_t user_id, int64_t quota_bytes)
{
	int rc;

	if (quota_bytes < 0) {
		store_set_error(st, "%s", _("a quota cannot be negative"));
		return STORE_ERR;
	}
	rc = store_run(st, SQL_USER_SET_QUOTA, "ii", quota_bytes, user_id);
	return user_updated(st, user_id, rc);
}

int store_user_list(struct store *st, const char *domain, store_user_cb cb, void *arg)
{
	char name[STORE_DOMAIN_MAX + 1];
	struct store_user u;
	struct store_stmt *s;
	int rc;

	s = query_domain_or_all(st, domain, name, SQL_USER_LIST_DOMAIN, SQL_USER_LIST_ALL);
	if (s == NULL)
		return STORE_ERR;
	while ((rc = store_next(st, s)) == STORE_OK) {
		int stop;

		memset(&u, 0, sizeof(u));
		if (read_user(st, s, &u) != STORE_OK) {
			store_done(st, s);
			return STORE_ERR;
		}
		stop = cb(arg, &u);
		store_user_clear(&u);
		if (stop != 0) {
			store_done(st, s);
			return STORE_OK;
		}
	}
	return rc == STORE_NOTFOUND ? STORE_OK : rc;
}
