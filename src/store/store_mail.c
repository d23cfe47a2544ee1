/*
 * store_mail.c - mailboxes, messages and their scan results.
 *
 * UIDs and modseqs come from the mailbox row: a write first bumps
 * uidnext/highestmodseq with an UPDATE, which takes the row's write lock
 * (SQLite: the database write lock of BEGIN IMMEDIATE; InnoDB: the row lock)
 * until commit, so concurrent writers on one mailbox get unique, increasing
 * values. Lock order is always mailbox row, then user row, to avoid deadlocks.
 * Quota is checked and charged in the same single UPDATE of the user row.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "store/store_engine.h"
#include "util/i18n.h"

#define MAILBOX_COLUMNS                                                                            \
	"SELECT m.id, m.user_id, m.name, m.uidvalidity, m.uidnext, m.highestmodseq, "              \
	"m.special_use, m.subscribed, "                                                            \
	"(SELECT COUNT(*) FROM messages x WHERE x.mailbox_id = m.id), "                            \
	"(SELECT COALESCE(SUM(x.size), 0) FROM messages x WHERE x.mailbox_id = m.id) "             \
	"FROM mailboxes m "
static const char SQL_MAILBOX_GET[] = MAILBOX_COLUMNS "WHERE m.user_id = ? AND m.name = ?";
static const char SQL_MAILBOX_GET_ID[] = MAILBOX_COLUMNS "WHERE m.id = ?";
static const char SQL_MAILBOX_GET_SPECIAL[] =
    MAILBOX_COLUMNS "WHERE m.user_id = ? AND m.special_use = ? ORDER BY m.id";
static const char SQL_MAILBOX_ID[] = "SELECT id FROM mailboxes WHERE user_id = ? AND name = ?";
static const char SQL_MAILBOX_ID_SPECIAL[] =
    "SELECT id FROM mailboxes WHERE user_id = ? AND special_use = ? ORDER BY id";
static const char SQL_MAILBOX_LIST[] = MAILBOX_COLUMNS "WHERE m.user_id = ? ORDER BY m.name";
/* Every mailbox a user ever creates gets a larger UIDVALIDITY than the one
 * before (at least the current time), so a recreated name never reuses one. */
static const char SQL_USER_NEXT_UIDVALIDITY[] =
    "UPDATE users SET last_uidvalidity = CASE WHEN last_uidvalidity + 1 > ? "
    "THEN last_uidvalidity + 1 ELSE ? END WHERE id = ?";
static const char SQL_USER_UIDVALIDITY[] = "SELECT last_uidvalidity FROM users WHERE id = ?";
static const char SQL_MAILBOX_ADD[] =
    "INSERT INTO mailboxes (user_id, name, uidvalidity, uidnext, highestmodseq, special_use, "
    "subscribed) VALUES (?, ?, ?, 1, 1, ?, 1)";
static const char SQL_MAILBOX_RENAME[] = "UPDATE mailboxes SET name = ? WHERE id = ?";
static const char SQL_MAILBOX_CHILDREN[] =
    "SELECT id, name FROM mailboxes WHERE user_id = ? AND name >= ? AND name < ?";
static const char SQL_MAILBOX_DEL[] = "DELETE FROM mailboxes WHERE id = ?";
static const char SQL_MAILBOX_MESSAGE_IDS[] = "SELECT id FROM messages WHERE mailbox_id = ?";
static const char SQL_MAILBOX_SUBSCRIBE[] = "UPDATE mailboxes SET subscribed = ? WHERE id = ?";
static const char SQL_MAILBOX_BUMP[] =
    "UPDATE mailboxes SET uidnext = uidnext + ?, highestmodseq = highestmodseq + 1 "
    "WHERE id = ?";
static const char SQL_MAILBOX_COUNTERS[] =
    "SELECT user_id, uidnext, highestmodseq FROM mailboxes WHERE id = ?";
static const char SQL_USER_CHARGE[] =
    "UPDATE users SET used_bytes = used_bytes + ? "
    "WHERE id = ? AND (quota_bytes = 0 OR used_bytes + ? <= quota_bytes)";
static const char SQL_USER_REFUND[] =
    "UPDATE users SET used_bytes = CASE WHEN used_bytes > ? THEN used_bytes - ? ELSE 0 END "
    "WHERE id = ?";
static const char SQL_BLOB_ADD[] = "INSERT INTO blobs (user_id, data) VALUES (?, ?)";
static const char SQL_BLOB_GET[] =
    "SELECT b.data FROM blobs b JOIN messages m ON m.blob_id = b.id WHERE m.id = ?";
static const char SQL_BLOB_DEL_UNUSED[] =
    "DELETE FROM blobs WHERE id = ? AND NOT EXISTS (SELECT 1 FROM messages WHERE blob_id = ?)";
static const char SQL_MESSAGE_ADD[] =
    "INSERT INTO messages (mailbox_id, uid, modseq, flags, keywords, internal_date, size, "
    "blob_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)";
#define MESSAGE_COLUMNS                                                                            \
	"SELECT id, mailbox_id, uid, modseq, flags, keywords, internal_date, size FROM messages "
static const char SQL_MESSAGE_GET[] = MESSAGE_COLUMNS "WHERE mailbox_id = ? AND uid = ?";
static const char SQL_MESSAGE_LIST[] =
    MESSAGE_COLUMNS "WHERE mailbox_id = ? AND uid >= ? ORDER BY uid";
static const char SQL_MESSAGE_SOURCE[] =
    "SELECT m.mailbox_id, m.flags, m.keywords, m.internal_date, m.size, m.blob_id, b.user_id "
    "FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id WHERE m.id = ?";
static const char SQL_MESSAGE_SET_FLAGS[] =
    "UPDATE messages SET flags = ?, keywords = ?, modseq = ? WHERE id = ?";
/* Clears the bits outside the first mask, sets the second: no other session's change is lost. */
static const char SQL_MESSAGE_CHANGE_FLAGS[] =
    "UPDATE messages SET flags = (flags & ?) | ?, modseq = ? WHERE id = ?";
static const char SQL_MESSAGE_FLAGS[] = "SELECT flags, keywords FROM messages WHERE id = ?";
static const char SQL_MESSAGE_SET_KEYWORDS[] = "UPDATE messages SET keywords = ? WHERE id = ?";
static const char SQL_MESSAGE_DEL[] = "DELETE FROM messages WHERE id = ?";
static const char SQL_SCAN_COPY[] =
    "INSERT INTO scan_results (message_id, verdict, score, confidence, model_version, "
    "reasons) SELECT ?, verdict, score, confidence, model_version, reasons "
    "FROM scan_results WHERE message_id = ?";
static const char SQL_SCAN_EXISTS[] = "SELECT message_id FROM scan_results WHERE message_id = ?";
static const char SQL_SCAN_UPDATE[] =
    "UPDATE scan_results SET verdict = ?, score = ?, confidence = ?, model_version = ?, "
    "reasons = ? WHERE message_id = ?";
static const char SQL_SCAN_ADD[] =
    "INSERT INTO scan_results (message_id, verdict, score, confidence, model_version, "
    "reasons) VALUES (?, ?, ?, ?, ?, ?)";
static const char SQL_SCAN_GET[] =
    "SELECT message_id, verdict, score, confidence, model_version, reasons "
    "FROM scan_results WHERE message_id = ?";
static const char SQL_MESSAGE_EXISTS[] = "SELECT id FROM messages WHERE id = ?";

/* ---- mailboxes ---- */

/* Names are non-empty, bounded, "/"-separated levels without empty levels;
 * INBOX is case-insensitive (RFC 3501 5.1) and stored as "INBOX". */
static int check_mailbox_name(struct store *st, const char *name, char *out)
{
	size_t n = strlen(name);

	if (n == 0 || n > STORE_MAILBOX_NAME_MAX || name[0] == '/' || name[n - 1] == '/' ||
	    strstr(name, "//") != NULL || !store_valid_utf8(name)) {
		store_set_error(st, _("not a valid mailbox name: %.64s"), name);
		return STORE_ERR;
	}
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f) {
			store_set_error(st, "%s",
					_("a mailbox name cannot hold control characters"));
			return STORE_ERR;
		}
	}
	if (strcasecmp(name, "INBOX") == 0)
		memcpy(out, "INBOX", sizeof("INBOX"));
	else
		memcpy(out, name, n + 1);
	return STORE_OK;
}

static void read_mailbox(struct store *st, struct store_stmt *s, struct store_mailbox *mb)
{
	const struct store_engine_ops *e = st->engine;

	memset(mb, 0, sizeof(*mb));
	mb->id = e->column_int64(s, 0);
	mb->user_id = e->column_int64(s, 1);
	store_col_text(st, s, 2, mb->name, sizeof(mb->name));
	mb->uidvalidity = (uint32_t)e->column_int64(s, 3);
	mb->uidnext = (uint32_t)e->column_int64(s, 4);
	mb->highestmodseq = (uint64_t)e->column_int64(s, 5);
	mb->special_use = (enum store_special_use)e->column_int64(s, 6);
	mb->subscribed = e->column_int64(s, 7) != 0;
	mb->messages = (uint32_t)e->column_int64(s, 8);
	mb->bytes = e->column_int64(s, 9);
}

static int mailbox_one(struct store *st, struct store_stmt *s, struct store_mailbox *out)
{
	int rc;

	if (s == NULL)
		return STORE_ERR;
	rc = store_next(st, s);
	if (rc == STORE_NOTFOUND)
		store_set_error(st, "%s", _("no such mailbox"));
	if (rc != STORE_OK)
		return rc;
	if (out != NULL)
		read_mailbox(st, s, out);
	store_done(st, s);
	return STORE_OK;
}

int store_mailbox_create(struct store *st, int64_t user_id, const char *name,
			 enum store_special_use special_use, struct store_mailbox *out)
{
	char mbname[STORE_MAILBOX_NAME_MAX + 1];
	int64_t uidvalidity = 0, id = 0;
	int rc;

	if (check_mailbox_name(st, name, mbname) != STORE_OK)
		return STORE_ERR;
	if (special_use < SPECIAL_NONE || special_use > SPECIAL_ARCHIVE) {
		store_set_error(st, "%s", _("unknown special-use"));
		return STORE_ERR;
	}
	if (store_begin(st) != STORE_OK)
		return STORE_ERR;
	/* A recreated name must get a new UIDVALIDITY (RFC 3501 2.3.1.1). */
	int64_t now = (int64_t)time(NULL) & 0x7fffffff;

	rc = store_run(st, SQL_USER_NEXT_UIDVALIDITY, "iii", now, now, user_id);
	if (rc == STORE_OK && st->engine->changes(st) == 0) {
		store_set_error(st, _("no such user: #%lld"), (long long)user_id);
		rc = STORE_NOTFOUND;
	}
	if (rc == STORE_OK)
		rc = store_query_int64(st, &uidvalidity, SQL_USER_UIDVALIDITY, "i", user_id);
	if (rc == STORE_OK && uidvalidity > 0xffffffffLL) {
		store_set_error(st, "%s", _("this user has run out of UIDVALIDITY values"));
		rc = STORE_ERR;
	}
	if (rc == STORE_OK) {
		rc = store_run(st, SQL_MAILBOX_ADD, "itii", user_id, mbname, uidvalidity,
			       (int64_t)special_use);
		if (rc == STORE_EXISTS)
			store_set_error(st, _("mailbox %s already exists"), mbname);
	}
	if (rc == STORE_OK && out != NULL) {
		id = st->engine->last_insert_id(st);
		rc = mailbox_one(st, store_query(st, SQL_MAILBOX_GET_ID, "i", id), out);
	}
	return store_end(st, rc);
}

int store_mailbox_get(struct store *st, int64_t user_id, const char *name,
		      struct store_mailbox *out)
{
	char mbname[STORE_MAILBOX_NAME_MAX + 1];

	if (check_mailbox_name(st, name, mbname) != STORE_OK)
		return STORE_NOTFOUND;
	return mailbox_one(st, store_query(st, SQL_MAILBOX_GET, "it", user_id, mbname), out);
}

int store_mailbox_get_special(struct store *st, int64_t user_id, enum store_special_use use,
			      struct store_mailbox *out)
{
	struct store_stmt *s =
	    store_query(st, SQL_MAILBOX_GET_SPECIAL, "ii", user_id, (int64_t)use);

	return mailbox_one(st, s, out);
}

int store_mailbox_lookup(struct store *st, int64_t user_id, const char *name,
			 enum store_special_use use, int64_t *id)
{
	char mbname[STORE_MAILBOX_NAME_MAX + 1];
	int rc;

	if (name != NULL && check_mailbox_name(st, name, mbname) != STORE_OK)
		return STORE_NOTFOUND;
	rc = name != NULL
		 ? store_query_int64(st, id, SQL_MAILBOX_ID, "it", user_id, mbname)
		 : store_query_int64(st, id, SQL_MAILBOX_ID_SPECIAL, "ii", user_id, (int64_t)use);
	if (rc == STORE_NOTFOUND)
		store_set_error(st, "%s", _("no such mailbox"));
	return rc;
}

struct mailbox_child {
	int64_t id;
	char name[STORE_MAILBOX_NAME_MAX + 1];
};

/* Renames the mailbox and every mailbox below it ("a" -> "b" moves "a/x" to
 * "b/x", RFC 3501 6.3.5). */
int store_mailbox_rename(struct store *st, int64_t mailbox_id, const char *new_name)
{
	char to[STORE_MAILBOX_NAME_MAX + 1], lo[STORE_MAILBOX_NAME_MAX + 2],
	    hi[STORE_MAILBOX_NAME_MAX + 2];
	struct store_mailbox mb;
	struct mailbox_child *kids = NULL;
	size_t nkids = 0, cap = 0;
	struct store_stmt *s;
	int rc;

	if (check_mailbox_name(st, new_name, to) != STORE_OK)
		return STORE_ERR;
	if (store_begin(st) != STORE_OK)
		return STORE_ERR;
	rc = mailbox_one(st, store_query(st, SQL_MAILBOX_GET_ID, "i", mailbox_id), &mb);
	if (rc == STORE_OK) {
		/* "name/" up to (excluding) "name0": '0' follows '/' in byte order. */
		snprintf(lo, sizeof(lo), "%s/", mb.name);
		snprintf(hi, sizeof(hi), "%s0", mb.name);
		s = store_query(st, SQL_MAILBOX_CHILDREN, "itt", mb.user_id, lo, hi);
		rc = s == NULL ? STORE_ERR : STORE_OK;
		while (rc == STORE_OK && (rc = store_next(st, s)) == STORE_OK) {
			if (nkids == cap) {
				size_t ncap = cap ? cap * 2 : 8;
				struct mailbox_child *k = realloc(kids, ncap * sizeof(*k));

				if (k == NULL) {
					store_done(st, s);
					store_set_error(st, "%s", _("out of memory"));
					rc = STORE_ERR;
					break;
				}
				kids = k;
				cap = ncap;
			}
			kids[nkids].id = st->engine->column_int64(s, 0);
			store_col_text(st, s, 1, kids[nkids].name, sizeof(kids[nkids].name));
			nkids++;
		}
		if (rc == STORE_NOTFOUND)
			rc = STORE_OK;
	}
	if (rc == STORE_OK) {
		rc = store_run(st, SQL_MAILBOX_RENAME, "ti", to, mailbox_id);
		if (rc == STORE_EXISTS)
			store_set_error(st, _("mailbox %s already exists"), to);
	}
	for (size_t i = 0; rc == STORE_OK && i < nkids; i++) {
		char child[STORE_MAILBOX_NAME_MAX + 1];
		int n = snprintf(child, sizeof(child), "%s%s", to, kids[i].name + strlen(mb.name));

		if (n < 0 || (size_t)n >= sizeof(child)) {
			store_set_error(st, _("mailbox name too long: %.64s"), to);
			rc = STORE_ERR;
			break;
		}
		rc = store_run(st, SQL_MAILBOX_RENAME, "ti", child, kids[i].id);
		if (rc == STORE_EXISTS)
			store_set_error(st, _("mailbox %s already exists"), child);
	}
	free(kids);
	return store_end(st, rc);
}

/* Expunges every message (freeing quota and blobs), then the mailbox. */
int store_mailbox_delete(struct store *st, int64_t mailbox_id)
{
	int64_t *ids = NULL;
	size_t n = 0, cap = 0;
	struct store_stmt *s;
	int rc;

	if (store_begin(st) != STORE_OK)
		return STORE_ERR;
	rc = mailbox_one(st, store_query(st, SQL_MAILBOX_GET_ID, "i", mailbox_id), NULL);
	if (rc == STORE_OK) {
		s = store_query(st, SQL_MAILBOX_MESSAGE_IDS, "i", mailbox_id);
		rc = s == NULL ? STORE_ERR : STORE_OK;
		while (rc == STORE_OK && (rc = store_next(st, s)) == STORE_OK) {
			if (n == cap) {
				size_t ncap = cap ? cap * 2 : 64;
				int64_t *p = realloc(ids, ncap * sizeof(*p));

				if (p == NULL) {
					store_done(st, s);
					store_set_error(st, "%s", _("out of memory"));
					rc = STORE_ERR;
					break;
				}
				ids = p;
				cap = ncap;
			}
			ids[n++] = st->engine->column_int64(s, 0);
		}
		if (rc == STORE_NOTFOUND)
			rc = STORE_OK;
	}
	for (size_t i = 0; rc == STORE_OK && i < n; i++)
		rc = store_message_expunge(st, ids[i]);
	if (rc == STORE_OK)
		rc = store_run(st, SQL_MAILBOX_DEL, "i", mailbox_id);
	free(ids);
	return store_end(st, rc);
}

int store_mailbox_set_subscribed(struct store *st, int64_t mailbox_id, bool subscribed)
{
	int rc =
	    store_run(st, SQL_MAILBOX_SUBSCRIBE, "ii", (int64_t)(subscribed ? 1 : 0), mailbox_id);

	if (rc == STORE_OK && st->engine->changes(st) == 0) {
		store_set_error(st, "%s", _("no such mailbox"));
		rc = STORE_NOTFOUND;
	}
	return rc;
}

int store_mailbox_list(struct store *st, int64_t user_id, store_mailbox_cb cb, void *arg)
{
	struct store_mailbox mb;
	struct store_stmt *s = store_query(st, SQL_MAILBOX_LIST, "i", user_id);
	int rc;

	if (s == NULL)
		return STORE_ERR;
	while ((rc = store_next(st, s)) == STORE_OK) {
		read_mailbox(st, s, &mb);
		if (cb(arg, &mb) != 0) {
			store_done(st, s);
			return STORE_OK;
		}
	}
	return rc == STORE_NOTFOUND ? STORE_OK : rc;
}

/* ---- messages ---- */

/* Bumps the mailbox's modseq (and uidnext by UIDS); returns the owner, the
 * uid to use (the old uidnext) and the new modseq. Inside a transaction. */
static int mailbox_advance(struct store *st, int64_t mailbox_id, int64_t uids, int64_t *user_id,
			   uint32_t *uid, uint64_t *modseq)
{
	struct store_stmt *s;
	int rc = store_run(st, SQL_MAILBOX_BUMP, "ii", uids, mailbox_id);

	if (rc != STORE_OK)
		return rc;
	if (st->engine->changes(st) == 0) {
		store_set_error(st, "%s", _("no such mailbox"));
		return STORE_NOTFOUND;
	}
	s = store_query(st, SQL_MAILBOX_COUNTERS, "i", mailbox_id);
	if (s == NULL)
		return STORE_ERR;
	rc = store_next(st, s);
	if (rc != STORE_OK)
		return rc == STORE_NOTFOUND ? STORE_ERR : rc;
	*user_id = st->engine->column_int64(s, 0);
	int64_t next = st->engine->column_int64(s, 1);
	*modseq = (uint64_t)st->engine->column_int64(s, 2);
	store_done(st, s);
	if (next - uids > 0xffffffffLL) {
		store_set_error(st, "%s", _("the mailbox ran out of UIDs"));
		return STORE_ERR;
	}
	*uid = (uint32_t)(next - uids);
	return STORE_OK;
}

static int charge_quota(struct store *st, int64_t user_id, int64_t size)
{
	int rc = store_run(st, SQL_USER_CHARGE, "iii", size, user_id, size);

	if (rc == STORE_OK && st->engine->changes(st) == 0) {
		store_set_error(st, "%s", _("mailbox quota exceeded"));
		rc = STORE_QUOTA;
	}
	return rc;
}

static int check_keywords(struct store *st, const char *keywords)
{
	if (keywords != NULL && strlen(keywords) >= sizeof(((struct store_message *)0)->keywords)) {
		store_set_error(st, "%s", _("too many keywords"));
		return STORE_ERR;
	}
	return STORE_OK;
}

int store_message_add(struct store *st, int64_t mailbox_id, uint32_t flags, int64_t internal_date,
		      int64_t size, const unsigned char *blob, size_t blob_len,
		      struct store_message *out)
{
	int64_t user_id = 0, blob_id = 0;
	uint32_t uid = 0;
	uint64_t modseq = 0;
	int rc;

	if (size < 0 || blob == NULL) {
		store_set_error(st, "%s", _("a message needs content and a size"));
		return STORE_ERR;
	}
	if (store_begin(st) != STORE_OK)
		return STORE_ERR;
	rc = mailbox_advance(st, mailbox_id, 1, &user_id, &uid, &modseq);
	if (rc == STORE_OK)
		rc = charge_quota(st, user_id, size);
	if (rc == STORE_OK)
		rc = store_run(st, SQL_BLOB_ADD, "ib", user_id, (const void *)blob, blob_len);
	if (rc == STORE_OK) {
		blob_id = st->engine->last_insert_id(st);
		rc = store_run(st, SQL_MESSAGE_ADD, "iiiitiii", mailbox_id, (int64_t)uid,
			       (int64_t)modseq, (int64_t)flags, "", internal_date, size, blob_id);
	}
	if (rc == STORE_OK && out != NULL) {
		memset(out, 0, sizeof(*out));
		out->id = st->engine->last_insert_id(st);
		out->mailbox_id = mailbox_id;
		out->uid = uid;
		out->modseq = modseq;
		out->flags = flags;
		out->internal_date = internal_date;
		out->size = size;
	}
	return store_end(st, rc);
}

static void read_message(struct store *st, struct store_stmt *s, struct store_message *m)
{
	const struct store_engine_ops *e = st->engine;

	memset(m, 0, sizeof(*m));
	m->id = e->column_int64(s, 0);
	m->mailbox_id = e->column_int64(s, 1);
	m->uid = (uint32_t)e->column_int64(s, 2);
	m->modseq = (uint64_t)e->column_int64(s, 3);
	m->flags = (uint32_t)e->column_int64(s, 4);
	store_col_text(st, s, 5, m->keywords, sizeof(m->keywords));
	m->internal_date = e->column_int64(s, 6);
	m->size = e->column_int64(s, 7);
}

int store_message_get(struct store *st, int64_t mailbox_id, uint32_t uid, struct store_message *out)
{
	struct store_stmt *s = store_query(st, SQL_MESSAGE_GET, "ii", mailbox_id, (int64_t)uid);
	int rc;

	if (s == NULL)
		return STORE_ERR;
	rc = store_next(st, s);
	if (rc == STORE_NOTFOUND)
		store_set_error(st, "%s", _("no such message"));
	if (rc != STORE_OK)
		return rc;
	read_message(st, s, out);
	store_done(st, s);
	return STORE_OK;
}

int store_message_blob(struct store *st, int64_t message_id, unsigned char **blob, size_t *len)
{
	struct store_stmt *s = store_query(st, SQL_BLOB_GET, "i", message_id);
	int rc;

	*blob = NULL;
	*len = 0;
	if (s == NULL)
		return STORE_ERR;
	rc = store_next(st, s);
	if (rc == STORE_NOTFOUND)
		store_set_error(st, "%s", _("no such message"));
	if (rc != STORE_OK)
		return rc;
	rc = store_col_blob(st, s, 0, blob, len);
	store_done(st, s);
	return rc;
}

int store_message_list(struct store *st, int64_t mailbox_id, uint32_t min_uid, store_message_cb cb,
		       void *arg)
{
	struct store_message m;
	struct store_stmt *s =
	    store_query(st, SQL_MESSAGE_LIST, "ii", mailbox_id, (int64_t)min_uid);
	int rc;

	if (s == NULL)
		return STORE_ERR;
	while ((rc = store_next(st, s)) == STORE_OK) {
		read_message(st, s, &m);
		if (cb(arg, &m) != 0) {
			store_done(st, s);
			return STORE_OK;
		}
	}
	return rc == STORE_NOTFOUND ? STORE_OK : rc;
}

struct message_source {
	int64_t mailbox_id;
	uint32_t flags;
	char keywords[512];
	int64_t internal_date;
	int64_t size;
	int64_t blob_id;
	int64_t user_id;
};

static int message_source(struct store *st, int64_t message_id, struct message_source *src)
{
	struct store_stmt *s = store_query(st, SQL_MESSAGE_SOURCE, "i", message_id);
	const struct store_engine_ops *e = st->engine;
	int rc;

	if (s == NULL)
		return STORE_ERR;
	rc = store_next(st, s);
	if (rc == STORE_NOTFOUND)
		store_set_error(st, "%s", _("no such message"));
	if (rc != STORE_OK)
		return rc;
	src->mailbox_id = e->column_int64(s, 0);
	src->flags = (uint32_t)e->column_int64(s, 1);
	store_col_text(st, s, 2, src->keywords, sizeof(src->keywords));
	src->internal_date = e->column_int64(s, 3);
	src->size = e->column_int64(s, 4);
	src->blob_id = e->column_int64(s, 5);
	src->user_id = e->column_int64(s, 6);
	store_done(st, s);
	return STORE_OK;
}

/*
 * Checks KEYWORDS and opens the transaction of a flag change of MESSAGE_ID, with the next
 * modseq of its mailbox in *MODSEQ. False (no transaction open) when the keywords are refused
 * or none begins; otherwise *RC is STORE_OK or the error of finding the message or its
 * mailbox, and the caller ends the transaction with store_end().
 */
static bool flag_change_begin(struct store *st, int64_t message_id, const char *keywords,
			      uint64_t *modseq, int *rc)
{
	struct message_source src;
	int64_t user_id = 0;
	uint32_t uid = 0;

	if (check_keywords(st, keywords) != STORE_OK)
		return false;
	/* Only flags, keywords and modseqs change: no need to wait for the disk. */
	if (store_begin_relaxed(st) != STORE_OK)
		return false;
	*rc = message_source(st, message_id, &src);
	if (*rc == STORE_OK)
		*rc = mailbox_advance(st, src.mailbox_id, 0, &user_id, &uid, modseq);
	return true;
}

int store_message_set_flags(struct store *st, int64_t message_id, uint32_t flags,
			    const char *keywords, uint64_t *modseq_out)
{
	uint64_t modseq = 0;
	int rc;

	if (!flag_change_begin(st, message_id, keywords, &modseq, &rc))
		return STORE_ERR;
	if (rc == STORE_OK)
		rc = store_run(st, SQL_MESSAGE_SET_FLAGS, "itii", (int64_t)flags,
			       keywords != NULL ? keywords : "", (int64_t)modseq, message_id);
	if (rc == STORE_OK && modseq_out != NULL)
		*modseq_out = modseq;
	return store_end(st, rc);
}

/* True when the space-separated LIST holds the keyword KW of LEN bytes (keywords compare
 * case-insensitively, RFC 3501 2.3.2). */
static bool keyword_listed(const char *list, const char *kw, size_t len)
{
	for (const char *p = list != NULL ? list : ""; *p;) {
		const char *sp = strchr(p, ' ');
		size_t l = sp ? (size_t)(sp - p) : strlen(p);
		if (l == len && strncasecmp(p, kw, len) == 0)
			return true;
		if (!sp)
			break;
		p = sp + 1;
	}
	return false;
}

/* Appends to OUT (of OUTLEN bytes, LEN used) each keyword of FROM that is neither in ABSENT
 * nor in OUT and is in PRESENT exactly when WANT_PRESENT; false when one does not fit. */
static bool keywords_add(char *out, size_t outlen, size_t *len, const char *from,
			 const char *absent, const char *present, bool want_present)
{
	for (const char *p = from != NULL ? from : ""; *p;) {
		const char *sp = strchr(p, ' ');
		size_t l = sp ? (size_t)(sp - p) : strlen(p);
		if (l && !keyword_listed(absent, p, l) && !keyword_listed(out, p, l) &&
		    keyword_listed(present, p, l) == want_present) {
			if (*len + l + 2 > outlen)
				return false;
			*len += (size_t)snprintf(out + *len, outlen - *len, "%s%.*s", *len ? " " : "",
						 (int)l, p);
		}
		if (!sp)
			break;
		p = sp + 1;
	}
	return true;
}

int store_message_change_flags(struct store *st, int64_t message_id, uint32_t base_flags,
			       const char *base_keywords, uint32_t flags, const char *keywords,
			       struct store_message *out)
{
	struct store_stmt *s;
	char current[sizeof(out->keywords)], merged[sizeof(out->keywords)];
	uint32_t cleared = base_flags & ~flags, set = flags & ~base_flags;
	uint64_t modseq = 0;
	size_t len = 0;
	int rc;

	if (!flag_change_begin(st, message_id, keywords, &modseq, &rc))
		return STORE_ERR;
	/* The update reads the row as committed now and keeps it locked: the keywords read
	 * next are the current ones, and no other session changes them before the commit. */
	if (rc == STORE_OK)
		rc = store_run(st, SQL_MESSAGE_CHANGE_FLAGS, "iiii", (int64_t)(uint32_t)~cleared,
			       (int64_t)set, (int64_t)modseq, message_id);
	if (rc == STORE_OK && st->engine->changes(st) == 0) {
		store_set_error(st, "%s", _("no such message"));
		rc = STORE_NOTFOUND;
	}
	if (rc == STORE_OK) {
		rc = (s = store_query(st, SQL_MESSAGE_FLAGS, "i", message_id)) ? store_next(st, s)
									: STORE_ERR;
		if (rc == STORE_OK) {
			out->flags = (uint32_t)st->engine->column_int64(s, 0);
			store_col_text(st, s, 1, current, sizeof(current));
			store_done(st, s);
		}
	}
	/* The keywords now, less those the caller removed, plus those it added. */
	merged[0] = '\0';
	if (rc == STORE_OK &&
	    (!keywords_add(merged, sizeof(merged), &len, current, NULL, base_keywords, false) ||
	     !keywords_add(merged, sizeof(merged), &len, current, NULL, keywords, true) ||
	     !keywords_add(merged, sizeof(merged), &len, keywords, base_keywords, NULL, false))) {
		store_set_error(st, "%s", _("too many keywords"));
		rc = STORE_ERR;
	}
	if (rc == STORE_OK && strcmp(merged, current) != 0)
		rc = store_run(st, SQL_MESSAGE_SET_KEYWORDS, "ti", merged, message_id);
	if (rc == STORE_OK) {
		snprintf(out->keywords, sizeof(out->keywords), "%s", merged);
		out->modseq = modseq;
	}
	return store_end(st, rc);
}

int store_message_expunge(struct store *st, int64_t message_id)
{
	struct message_source src;
	int64_t user_id = 0;
	uint32_t uid = 0;
	uint64_t modseq = 0;
	int rc;

	if (store_begin(st) != STORE_OK)
		return STORE_ERR;
	rc = message_source(st, message_id, &src);
	if (rc == STORE_OK)
		rc = mailbox_advance(st, src.mailbox_id, 0, &user_id, &uid, &modseq);
	/* The scan result goes with the message (ON DELETE CASCADE). */
	if (rc == STORE_OK)
		rc = store_run(st, SQL_MESSAGE_DEL, "i", message_id);
	/* A copy may still share the blob. */
	if (rc == STORE_OK)
		rc = store_run(st, SQL_BLOB_DEL_UNUSED, "ii", src.blob_id, src.blob_id);
	if (rc == STORE_OK)
		rc = store_run(st, SQL_USER_REFUND, "iii", src.size, src.size, src.user_id);
	return store_end(st, rc);
}

int store_message_copy(struct store *st, int64_t message_id, int64_t to_mailbox_id,
		       struct store_message *out)
{
	struct message_source src;
	int64_t user_id = 0;
	uint32_t uid = 0;
	uint64_t modseq = 0;
	int rc;

	if (store_begin(st) != STORE_OK)
		return STORE_ERR;
	rc = message_source(st, message_id, &src);
	if (rc == STORE_OK)
		rc = mailbox_advance(st, to_mailbox_id, 1, &user_id, &uid, &modseq);
	if (rc == STORE_OK && user_id != src.user_id) {
		store_set_error(st, "%s",
				_("messages are copied only between one user's mailboxes"));
		rc = STORE_ERR;
	}
	if (rc == STORE_OK)
		rc = charge_quota(st, user_id, src.size);
	if (rc == STORE_OK)
		rc = store_run(st, SQL_MESSAGE_ADD, "iiiitiii", to_mailbox_id, (int64_t)uid,
			       (int64_t)modseq, (int64_t)src.flags, src.keywords, src.internal_date,
			       src.size, src.blob_id);
	if (rc == STORE_OK) {
		int64_t id = st->engine->last_insert_id(st);

		rc = store_run(st, SQL_SCAN_COPY, "ii", id, message_id);
		if (rc == STORE_OK && out != NULL) {
			memset(out, 0, sizeof(*out));
			out->id = id;
			out->mailbox_id = to_mailbox_id;
			out->uid = uid;
			out->modseq = modseq;
			out->flags = src.flags;
			memcpy(out->keywords, src.keywords, sizeof(out->keywords));
			out->internal_date = src.internal_date;
			out->size = src.size;
		}
	}
	return store_end(st, rc);
}

/* ---- scan results ---- */

int store_scan_result_put(struct store *st, const struct store_scan_result *r)
{
	int64_t id = 0;
	int rc;

	if (store_begin(st) != STORE_OK)
		return STORE_ERR;
	rc = store_query_int64(st, &id, SQL_MESSAGE_EXISTS, "i", r->message_id);
	if (rc == STORE_NOTFOUND)
		store_set_error(st, "%s", _("no such message"));
	/* Replace or insert, without DELETE or UPDATE of a row that is not
	 * there: on InnoDB those lock the gap after the newest message, and
	 * concurrent deliveries inserting into that gap then deadlock. A plain
	 * SELECT locks nothing. */
	if (rc == STORE_OK) {
		rc = store_query_int64(st, &id, SQL_SCAN_EXISTS, "i", r->message_id);
		if (rc == STORE_OK)
			rc = store_run(st, SQL_SCAN_UPDATE, "tddtti", r->verdict, r->score,
				       r->confidence, r->model_version, r->reasons, r->message_id);
		else if (rc == STORE_NOTFOUND)
			rc = store_run(st, SQL_SCAN_ADD, "itddtt", r->message_id, r->verdict,
				       r->score, r->confidence, r->model_version, r->reasons);
	}
	return store_end(st, rc);
}

int store_scan_result_get(struct store *st, int64_t message_id, struct store_scan_result *out)
{
	struct store_stmt *s = store_query(st, SQL_SCAN_GET, "i", message_id);
	const struct store_engine_ops *e = st->engine;
	int rc;

	memset(out, 0, sizeof(*out));
	if (s == NULL)
		return STORE_ERR;
	rc = store_next(st, s);
	if (rc == STORE_NOTFOUND)
		store_set_error(st, "%s", _("no scan result for this message"));
	if (rc != STORE_OK)
		return rc;
	out->message_id = e->column_int64(s, 0);
	store_col_text(st, s, 1, out->verdict, sizeof(out->verdict));
	out->score = e->column_double(s, 2);
	out->confidence = e->column_double(s, 3);
	store_col_text(st, s, 4, out->model_version, sizeof(out->model_version));
	if (!e->column_null(s, 5)) {
		out->reasons = strdup(e->column_text(s, 5));
		if (out->reasons == NULL) {
			store_set_error(st, "%s", _("out of memory"));
			rc = STORE_ERR;
		}
	}
	store_done(st, s);
	return rc;
}
