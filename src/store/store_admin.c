/*
 * store_admin.c - the server-side tables: outbound queue, quarantine,
 * per-user data blobs, the audit log, and the counts `posternctl status`
 * shows.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store_engine.h"
#include "util/i18n.h"

static const char SQL_QUEUE_ADD[] =
    "INSERT INTO queue (sender, recipient, dsn_notify, dsn_orcpt, dsn_ret, dsn_envid, "
    "attempts, next_attempt, created, last_error, data) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
static const char SQL_QUEUE_LIST[] =
    "SELECT id, sender, recipient, dsn_notify, dsn_orcpt, dsn_ret, dsn_envid, attempts, "
    "next_attempt, created, last_error FROM queue ORDER BY next_attempt, id";
static const char SQL_QUEUE_BLOB[] = "SELECT data FROM queue WHERE id = ?";
static const char SQL_QUEUE_UPDATE[] =
    "UPDATE queue SET attempts = ?, next_attempt = ?, last_error = ? WHERE id = ?";
/* Unless the entry was marked (held) meanwhile: its prefix stays what it is. */
static const char SQL_QUEUE_RETRY_LATER[] =
    "UPDATE queue SET attempts = ?, next_attempt = ?, last_error = ? "
    "WHERE id = ? AND SUBSTR(last_error, 1, ?) <> ?";
static const char SQL_QUEUE_ATTEMPTS[] = "UPDATE queue SET attempts = ? WHERE id = ?";
static const char SQL_QUEUE_DEL[] = "DELETE FROM queue WHERE id = ?";
static const char SQL_QUARANTINE_ADD[] =
    "INSERT INTO quarantine (recipient, sender, verdict, reason, size, created, data) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)";
#define QUARANTINE_COLUMNS "SELECT id, recipient, sender, verdict, reason, size, created"
static const char SQL_QUARANTINE_LIST[] = QUARANTINE_COLUMNS " FROM quarantine ORDER BY id";
static const char SQL_QUARANTINE_GET[] = QUARANTINE_COLUMNS ", data FROM quarantine WHERE id = ?";
static const char SQL_QUARANTINE_DEL[] = "DELETE FROM quarantine WHERE id = ?";
static const char SQL_USER_ID[] = "SELECT id FROM users WHERE id = ?";
static const char SQL_USER_DATA_DEL[] = "DELETE FROM user_data WHERE user_id = ? AND kind = ?";
static const char SQL_USER_DATA_ADD[] =
    "INSERT INTO user_data (user_id, kind, data) VALUES (?, ?, ?)";
static const char SQL_USER_DATA_GET[] = "SELECT data FROM user_data WHERE user_id = ? AND kind = ?";
static const char SQL_AUDIT_ADD[] =
    "INSERT INTO audit_log (ts, actor, event, detail) VALUES (?, ?, ?, ?)";
static const char SQL_AUDIT_LIST[] =
    "SELECT ts, actor, event, detail FROM audit_log WHERE ts >= ? ORDER BY id";
static const char SQL_STATS[] =
    "SELECT (SELECT COUNT(*) FROM domains), (SELECT COUNT(*) FROM users), "
    "(SELECT COUNT(*) FROM aliases), (SELECT COUNT(*) FROM messages), "
    "(SELECT COALESCE(SUM(size), 0) FROM messages), (SELECT COUNT(*) FROM queue)";

#define USER_DATA_KIND_MAX 64

/* A fixed-size text field must fit its column (and the struct it comes back in). */
static int check_len(struct store *st, const char *what, const char *value, size_t max)
{
	if (value != NULL && strlen(value) > max) {
		store_set_error(st, _("%s is too long"), what);
		return STORE_ERR;
	}
	return STORE_OK;
}

/* Deletes row ID with SQL; STORE_NOTFOUND when there was none. */
static int delete_by_id(struct store *st, const char *sql, int64_t id, const char *what)
{
	int rc = store_run(st, sql, "i", id);

	if (rc == STORE_OK && st->engine->changes(st) == 0) {
		store_set_error(st, _("no such %s: %lld"), what, (long long)id);
		rc = STORE_NOTFOUND;
	}
	return rc;
}

/* Reads the one blob column of a one-row query. */
static int blob_of(struct store *st, struct store_stmt *s, unsigned char **blob, size_t *len,
		   const char *what)
{
	int rc;

	*blob = NULL;
	*len = 0;
	if (s == NULL)
		return STORE_ERR;
	rc = store_next(st, s);
	if (rc == STORE_NOTFOUND)
		store_set_error(st, _("no such %s"), what);
	if (rc != STORE_OK)
		return rc;
	rc = store_col_blob(st, s, 0, blob, len);
	store_done(st, s);
	return rc;
}

/* ---- outbound queue ---- */

int store_queue_add(struct store *st, struct store_queue_entry *e, const unsigned char *blob,
		    size_t blob_len)
{
	int rc;

	if (check_len(st, "sender", e->sender, STORE_ADDRESS_MAX) != STORE_OK ||
	    check_len(st, "recipient", e->recipient, STORE_ADDRESS_MAX) != STORE_OK ||
	    check_len(st, "NOTIFY", e->dsn_notify, sizeof(e->dsn_notify) - 1) != STORE_OK ||
	    check_len(st, "ORCPT", e->dsn_orcpt, sizeof(e->dsn_orcpt) - 1) != STORE_OK ||
	    check_len(st, "RET", e->dsn_ret, sizeof(e->dsn_ret) - 1) != STORE_OK ||
	    check_len(st, "ENVID", e->dsn_envid, sizeof(e->dsn_envid) - 1) != STORE_OK ||
	    check_len(st, "last error", e->last_error, sizeof(e->last_error) - 1) != STORE_OK)
		return STORE_ERR;
	if (blob == NULL || e->recipient[0] == '\0') {
		store_set_error(st, "%s", _("a queued message needs a recipient and content"));
		return STORE_ERR;
	}
	if (e->created == 0)
		e->created = (int64_t)time(NULL);
	rc = store_run(st, SQL_QUEUE_ADD, "ttttttiiitb", e->sender, e->recipient, e->dsn_notify,
		       e->dsn_orcpt, e->dsn_ret, e->dsn_envid, (int64_t)e->attempts,
		       e->next_attempt, e->created, e->last_error, (const void *)blob, blob_len);
	if (rc == STORE_OK)
		e->id = st->engine->last_insert_id(st);
	return rc;
}

int store_queue_list(struct store *st, store_queue_cb cb, void *arg)
{
	struct store_queue_entry e;
	struct store_stmt *s = store_query(st, SQL_QUEUE_LIST, "");
	int rc;

	if (s == NULL)
		return STORE_ERR;
	while ((rc = store_next(st, s)) == STORE_OK) {
		memset(&e, 0, sizeof(e));
		e.id = st->engine->column_int64(s, 0);
		store_col_text(st, s, 1, e.sender, sizeof(e.sender));
		store_col_text(st, s, 2, e.recipient, sizeof(e.recipient));
		store_col_text(st, s, 3, e.dsn_notify, sizeof(e.dsn_notify));
		store_col_text(st, s, 4, e.dsn_orcpt, sizeof(e.dsn_orcpt));
		store_col_text(st, s, 5, e.dsn_ret, sizeof(e.dsn_ret));
		store_col_text(st, s, 6, e.dsn_envid, sizeof(e.dsn_envid));
		e.attempts = (int)st->engine->column_int64(s, 7);
		e.next_attempt = st->engine->column_int64(s, 8);
		e.created = st->engine->column_int64(s, 9);
		store_col_text(st, s, 10, e.last_error, sizeof(e.last_error));
		if (cb(arg, &e) != 0) {
			store_done(st, s);
			return STORE_OK;
		}
	}
	return rc == STORE_NOTFOUND ? STORE_OK : rc;
}

int store_queue_blob(struct store *st, int64_t id, unsigned char **blob, size_t *len)
{
	return blob_of(st, store_query(st, SQL_QUEUE_BLOB, "i", id), blob, len, _("queue entry"));
}

int store_queue_update(struct store *st, int64_t id, int attempts, int64_t next_attempt,
		       const char *last_error)
{
	char err[512];
	int rc;

	/* A long remote error is cut, not refused: the retry must be recorded. */
	snprintf(err, sizeof(err), "%s", last_error != NULL ? last_error : "");
	rc = store_run(st, SQL_QUEUE_UPDATE, "iiti", (int64_t)attempts, next_attempt, err, id);
	if (rc == STORE_OK && st->engine->changes(st) == 0) {
		store_set_error(st, _("no such %s: %lld"), _("queue entry"), (long long)id);
		rc = STORE_NOTFOUND;
	}
	return rc;
}

int store_queue_retry_later(struct store *st, int64_t id, int attempts, int64_t next_attempt,
			   const char *last_error, const char *keep_prefix)
{
	char err[512];
	int rc;

	snprintf(err, sizeof(err), "%s", last_error != NULL ? last_error : "");
	/* One statement each: an admin's change cannot fall between a read and a write. */
	rc = store_run(st, SQL_QUEUE_RETRY_LATER, "iitiit", (int64_t)attempts, next_attempt, err, id,
		       (int64_t)strlen(keep_prefix), keep_prefix);
	if (rc == STORE_OK && st->engine->changes(st) == 0)
		rc = store_run(st, SQL_QUEUE_ATTEMPTS, "ii", (int64_t)attempts, id);
	if (rc == STORE_OK && st->engine->changes(st) == 0) {
		store_set_error(st, _("no such %s: %lld"), _("queue entry"), (long long)id);
		rc = STORE_NOTFOUND;
	}
	return rc;
}

int store_queue_del(struct store *st, int64_t id)
{
	return delete_by_id(st, SQL_QUEUE_DEL, id, _("queue entry"));
}

/* ---- per-user data ---- */

int store_user_data_put(struct store *st, int64_t user_id, const char *kind,
			const unsigned char *blob, size_t len)
{
	int64_t id;
	int rc;

	if (kind == NULL || kind[0] == '\0' || strlen(kind) > USER_DATA_KIND_MAX || blob == NULL) {
		store_set_error(st, "%s", _("user data needs a kind (1-64 bytes) and content"));
		return STORE_ERR;
	}
	if (store_begin(st) != STORE_OK)
		return STORE_ERR;
	rc = store_query_int64(st, &id, SQL_USER_ID, "i", user_id);
	if (rc == STORE_NOTFOUND)
		store_set_error(st, _("no such user: #%lld"), (long long)user_id);
	if (rc == STORE_OK)
		rc = store_run(st, SQL_USER_DATA_DEL, "it", user_id, kind);
	if (rc == STORE_OK)
		rc =
		    store_run(st, SQL_USER_DATA_ADD, "itb", user_id, kind, (const void *)blob, len);
	return store_end(st, rc);
}

int store_user_data_get(struct store *st, int64_t user_id, const char *kind, unsigned char **blob,
			size_t *len)
{
	return blob_of(st, store_query(st, SQL_USER_DATA_GET, "it", user_id, kind), blob, len,
		       _("user data"));
}

/* ---- quarantine ---- */

int store_quarantine_add(struct store *st, struct store_quarantine_entry *e,
			 const unsigned char *blob, size_t len)
{
	int rc;

	if (check_len(st, "sender", e->sender, STORE_ADDRESS_MAX) != STORE_OK ||
	    check_len(st, "recipient", e->recipient, STORE_ADDRESS_MAX) != STORE_OK ||
	    check_len(st, "verdict", e->verdict, sizeof(e->verdict) - 1) != STORE_OK ||
	    check_len(st, "reason", e->reason, sizeof(e->reason) - 1) != STORE_OK)
		return STORE_ERR;
	if (blob == NULL) {
		store_set_error(st, "%s", _("a quarantined message needs content"));
		return STORE_ERR;
	}
	if (e->created == 0)
		e->created = (int64_t)time(NULL);
	rc = store_run(st, SQL_QUARANTINE_ADD, "ttttiib", e->recipient, e->sender, e->verdict,
		       e->reason, e->size, e->created, (const void *)blob, len);
	if (rc == STORE_OK)
		e->id = st->engine->last_insert_id(st);
	return rc;
}

static void read_quarantine(struct store *st, struct store_stmt *s,
			    struct store_quarantine_entry *e)
{
	memset(e, 0, sizeof(*e));
	e->id = st->engine->column_int64(s, 0);
	store_col_text(st, s, 1, e->recipient, sizeof(e->recipient));
	store_col_text(st, s, 2, e->sender, sizeof(e->sender));
	store_col_text(st, s, 3, e->verdict, sizeof(e->verdict));
	store_col_text(st, s, 4, e->reason, sizeof(e->reason));
	e->size = st->engine->column_int64(s, 5);
	e->created = st->engine->column_int64(s, 6);
}

int store_quarantine_list(struct store *st, store_quarantine_cb cb, void *arg)
{
	struct store_quarantine_entry e;
	struct store_stmt *s = store_query(st, SQL_QUARANTINE_LIST, "");
	int rc;

	if (s == NULL)
		return STORE_ERR;
	while ((rc = store_next(st, s)) == STORE_OK) {
		read_quarantine(st, s, &e);
		if (cb(arg, &e) != 0) {
			store_done(st, s);
			return STORE_OK;
		}
	}
	return rc == STORE_NOTFOUND ? STORE_OK : rc;
}

int store_quarantine_get(struct store *st, int64_t id, struct store_quarantine_entry *out,
			 unsigned char **blob, size_t *len)
{
	struct store_stmt *s = store_query(st, SQL_QUARANTINE_GET, "i", id);
	int rc;

	if (blob != NULL)
		*blob = NULL;
	if (len != NULL)
		*len = 0;
	if (s == NULL)
		return STORE_ERR;
	rc = store_next(st, s);
	if (rc == STORE_NOTFOUND)
		store_set_error(st, _("no such %s: %lld"), _("quarantine entry"), (long long)id);
	if (rc != STORE_OK)
		return rc;
	read_quarantine(st, s, out);
	if (blob != NULL && len != NULL)
		rc = store_col_blob(st, s, 7, blob, len);
	store_done(st, s);
	return rc;
}

int store_quarantine_del(struct store *st, int64_t id)
{
	return delete_by_id(st, SQL_QUARANTINE_DEL, id, _("quarantine entry"));
}

/* ---- audit log ---- */

/* Longer audit details are cut (at a UTF-8 character boundary): the event
 * itself must be recorded. */
#define AUDIT_DETAIL_MAX 4000

int store_audit(struct store *st, const char *actor, const char *event, const char *detail)
{
	char cut[AUDIT_DETAIL_MAX + 1];
	size_t n;

	if (actor == NULL || event == NULL) {
		store_set_error(st, "%s", _("an audit entry needs an actor and an event"));
		return STORE_ERR;
	}
	if (check_len(st, "actor", actor, STORE_ADDRESS_MAX) != STORE_OK ||
	    check_len(st, "event", event, 64) != STORE_OK)
		return STORE_ERR;
	if (detail == NULL)
		detail = "";
	n = strlen(detail);
	if (n > AUDIT_DETAIL_MAX) {
		n = AUDIT_DETAIL_MAX;
		while (n > 0 && ((unsigned char)detail[n] & 0xc0) == 0x80)
			n--; /* detail[n] continues a character: cut before it starts */
		memcpy(cut, detail, n);
		cut[n] = '\0';
		detail = cut;
	}
	return store_run(st, SQL_AUDIT_ADD, "ittt", (int64_t)time(NULL), actor, event, detail);
}

int store_audit_list(struct store *st, int64_t since, store_audit_cb cb, void *arg)
{
	struct store_stmt *s = store_query(st, SQL_AUDIT_LIST, "i", since);
	const struct store_engine_ops *e = st->engine;
	int rc;

	if (s == NULL)
		return STORE_ERR;
	while ((rc = store_next(st, s)) == STORE_OK) {
		if (cb(arg, e->column_int64(s, 0), e->column_text(s, 1), e->column_text(s, 2),
		       e->column_text(s, 3)) != 0) {
			store_done(st, s);
			return STORE_OK;
		}
	}
	return rc == STORE_NOTFOUND ? STORE_OK : rc;
}

/* ---- counts ---- */

int store_stats(struct store *st, struct store_stats *out)
{
	struct store_stmt *s = store_query(st, SQL_STATS, "");
	int rc;

	memset(out, 0, sizeof(*out));
	if (s == NULL)
		return STORE_ERR;
	rc = store_next(st, s);
	if (rc != STORE_OK)
		return rc == STORE_NOTFOUND ? STORE_ERR : rc;
	out->domains = st->engine->column_int64(s, 0);
	out->users = st->engine->column_int64(s, 1);
	out->aliases = st->engine->column_int64(s, 2);
	out->messages = st->engine->column_int64(s, 3);
	out->bytes = st->engine->column_int64(s, 4);
	out->queued = st->engine->column_int64(s, 5);
	store_done(st, s);
	return STORE_OK;
}
