/*
 * store_imap.c - what only the IMAP server asks of the store: the UIDs
 * expunged from a mailbox since a modseq (QRESYNC, RFC 7162 3.2; the
 * "expunged" table is filled by a trigger on every message delete, see
 * sql/<engine>/007_expunged.sql), the lowest such modseq in a UID range,
 * the mailbox's current HIGHESTMODSEQ, and what an IMAP view of a mailbox
 * needs to catch up: the messages changed and the UIDs expunged since the
 * modseq it was read at (store_mailbox_view).
 */
#include <config.h>

#include <stdlib.h>
#include <string.h>

#include "store/store_engine.h"
#include "util/i18n.h"

static const char SQL_EXPUNGED_SINCE[] =
    "SELECT uid FROM expunged WHERE mailbox_id = ? AND modseq > ? ORDER BY uid";
static const char SQL_MAILBOX_HIGHESTMODSEQ[] = "SELECT highestmodseq FROM mailboxes WHERE id = ?";
static const char SQL_EXPUNGED_MIN_MODSEQ[] =
    "SELECT COALESCE(MIN(modseq), 0) FROM expunged WHERE mailbox_id = ? AND uid >= ? AND "
    "uid <= ?";

/* The counters row (kind 0), the messages (1) and the expunges (2) in one
 * statement, so one snapshot on both engines. No ORDER BY (it would cost a
 * temporary table and a sort on MariaDB): rows come in any order. */
#define VIEW_HEAD                                                                                  \
	"SELECT 0, highestmodseq, uidnext, "                                                       \
	"(SELECT COUNT(*) FROM messages WHERE mailbox_id = ?), 0, '', 0, 0 "                       \
	"FROM mailboxes WHERE id = ? UNION ALL "                                                   \
	"SELECT 1, id, uid, modseq, flags, keywords, internal_date, size FROM messages "
static const char SQL_VIEW_ALL[] = VIEW_HEAD "WHERE mailbox_id = ?";
static const char SQL_VIEW_SINCE[] =
    VIEW_HEAD "WHERE mailbox_id = ? AND modseq > ? UNION ALL "
	      "SELECT 2, 0, uid, modseq, 0, '', 0, 0 FROM expunged "
	      "WHERE mailbox_id = ? AND modseq > ?";

int store_mailbox_view(struct store *st, int64_t mailbox_id, uint64_t since,
		       struct store_view_state *state, store_view_cb cb, void *arg)
{
	const struct store_engine_ops *e = st->engine;
	struct store_message m;
	struct store_stmt *s;
	bool head = false;
	int rc;

	memset(state, 0, sizeof(*state));
	if (since > INT64_MAX)
		since = INT64_MAX;
	if (since == 0)
		s = store_query(st, SQL_VIEW_ALL, "iii", mailbox_id, mailbox_id, mailbox_id);
	else
		s = store_query(st, SQL_VIEW_SINCE, "iiiiii", mailbox_id, mailbox_id, mailbox_id,
				(int64_t)since, mailbox_id, (int64_t)since);
	if (s == NULL)
		return STORE_ERR;
	while ((rc = store_next(st, s)) == STORE_OK) {
		int64_t kind = e->column_int64(s, 0);

		if (kind == 0) {
			state->highestmodseq = (uint64_t)e->column_int64(s, 1);
			state->uidnext = (uint32_t)e->column_int64(s, 2);
			state->messages = e->column_int64(s, 3);
			head = true;
			continue;
		}
		memset(&m, 0, sizeof(m));
		m.mailbox_id = mailbox_id;
		m.uid = (uint32_t)e->column_int64(s, 2);
		m.modseq = (uint64_t)e->column_int64(s, 3);
		if (kind == 1) {
			m.id = e->column_int64(s, 1);
			m.flags = (uint32_t)e->column_int64(s, 4);
			store_col_text(st, s, 5, m.keywords, sizeof(m.keywords));
			m.internal_date = e->column_int64(s, 6);
			m.size = e->column_int64(s, 7);
		}
		if (cb(arg, &m, kind == 2) != 0) {
			store_done(st, s);
			return STORE_ERR;
		}
	}
	if (rc != STORE_NOTFOUND)
		return rc;
	if (!head) {
		store_set_error(st, "%s", _("no such mailbox"));
		return STORE_NOTFOUND;
	}
	return STORE_OK;
}

int store_expunged_since(struct store *st, int64_t mailbox_id, uint64_t modseq, uint32_t **uids,
			 size_t *n)
{
	struct store_stmt *s;
	uint32_t *v = NULL;
	size_t count = 0, cap = 0;
	int rc;

	*uids = NULL;
	*n = 0;
	if (modseq > INT64_MAX)
		return STORE_OK; /* nothing is newer than that */
	s = store_query(st, SQL_EXPUNGED_SINCE, "ii", mailbox_id, (int64_t)modseq);
	if (s == NULL)
		return STORE_ERR;
	while ((rc = store_next(st, s)) == STORE_OK) {
		if (count == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			uint32_t *p = realloc(v, ncap * sizeof(*p));

			if (p == NULL) {
				store_done(st, s);
				free(v);
				store_set_error(st, "%s", _("out of memory"));
				return STORE_ERR;
			}
			v = p;
			cap = ncap;
		}
		v[count++] = (uint32_t)st->engine->column_int64(s, 0);
	}
	if (rc != STORE_NOTFOUND) {
		free(v);
		return rc;
	}
	*uids = v;
	*n = count;
	return STORE_OK;
}

int store_mailbox_highestmodseq(struct store *st, int64_t mailbox_id, uint64_t *modseq)
{
	int64_t v = 0;
	int rc = store_query_int64(st, &v, SQL_MAILBOX_HIGHESTMODSEQ, "i", mailbox_id);

	if (rc == STORE_OK)
		*modseq = (uint64_t)v;
	return rc;
}

int store_expunged_min_modseq(struct store *st, int64_t mailbox_id, uint32_t uid_lo,
			      uint32_t uid_hi, uint64_t *modseq)
{
	int64_t v = 0;
	int rc = store_query_int64(st, &v, SQL_EXPUNGED_MIN_MODSEQ, "iii", mailbox_id,
				   (int64_t)uid_lo, (int64_t)uid_hi);

	if (rc == STORE_OK)
		*modseq = (uint64_t)v;
	return rc;
}
