/*
 * store_imap.c - what only the IMAP server asks of the store: the UIDs
 * expunged from a mailbox since a modseq (QRESYNC, RFC 7162 3.2; the
 * "expunged" table is filled by a trigger on every message delete, see
 * sql/<engine>/007_expunged.sql), the lowest such modseq in a UID range,
 * and the mailbox's current HIGHESTMODSEQ.
 */
#include <config.h>

#include <stdlib.h>

#include "store/store_engine.h"
#include "util/i18n.h"

static const char SQL_EXPUNGED_SINCE[] =
    "SELECT uid FROM expunged WHERE mailbox_id = ? AND modseq > ? ORDER BY uid";
static const char SQL_MAILBOX_HIGHESTMODSEQ[] = "SELECT highestmodseq FROM mailboxes WHERE id = ?";
static const char SQL_EXPUNGED_MIN_MODSEQ[] =
    "SELECT COALESCE(MIN(modseq), 0) FROM expunged WHERE mailbox_id = ? AND uid >= ? AND "
    "uid <= ?";

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
