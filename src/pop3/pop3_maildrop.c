/*
 * pop3_maildrop.c - the snapshot of INBOX a POP3 session works on, the
 * expunge at QUIT and the decryption of one message. Runs on whichever
 * thread owns the store handle passed in (the job pool for slow work).
 */
#include <config.h>

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "imap/imap.h"
#include "pop3/pop3_maildrop.h"
#include "util/notify.h"

static int maildrop_add(void *arg, const struct store_message *m)
{
	struct pop3_maildrop *drop = arg;

	if (drop->count == drop->cap) {
		size_t cap = drop->cap ? drop->cap * 2 : 64;
		struct pop3_message *msgs = reallocarray(drop->msgs, cap, sizeof(*msgs));
		if (!msgs)
			return STORE_ERR;
		drop->msgs = msgs;
		drop->cap = cap;
	}
	drop->msgs[drop->count].id = m->id;
	drop->msgs[drop->count].uid = m->uid;
	drop->msgs[drop->count].size = m->size;
	drop->msgs[drop->count].deleted = false;
	drop->count++;
	return STORE_OK;
}

int pop3_maildrop_load(struct store *st, int64_t user_id, struct pop3_maildrop *drop)
{
	struct store_mailbox mb;
	int rc;

	memset(drop, 0, sizeof(*drop));
	rc = store_mailbox_get(st, user_id, "INBOX", &mb);
	if (rc != STORE_OK)
		return rc;
	drop->mailbox_id = mb.id;
	drop->uidvalidity = mb.uidvalidity;
	rc = store_message_list(st, mb.id, 1, maildrop_add, drop);
	if (rc != STORE_OK)
		pop3_maildrop_free(drop);
	return rc;
}

void pop3_maildrop_free(struct pop3_maildrop *drop)
{
	free(drop->msgs);
	memset(drop, 0, sizeof(*drop));
}

void pop3_maildrop_totals(const struct pop3_maildrop *drop, size_t *count, int64_t *bytes)
{
	size_t n = 0;
	int64_t sum = 0;

	for (size_t i = 0; i < drop->count; i++) {
		if (drop->msgs[i].deleted)
			continue;
		n++;
		sum += drop->msgs[i].size;
	}
	*count = n;
	*bytes = sum;
}

void pop3_maildrop_reset(struct pop3_maildrop *drop)
{
	for (size_t i = 0; i < drop->count; i++)
		drop->msgs[i].deleted = false;
}

int pop3_maildrop_expunge(struct store *st, const struct pop3_maildrop *drop, size_t *removed)
{
	size_t n = 0;
	int rc;

	*removed = 0;
	rc = store_begin(st);
	if (rc != STORE_OK)
		return rc;
	for (size_t i = 0; i < drop->count; i++) {
		struct store_message cur;

		if (!drop->msgs[i].deleted)
			continue;
		/* Another session may have removed it first: nothing is lost then.
		 * Look before expunging, because a failed inner expunge would
		 * roll back the whole transaction. */
		rc = store_message_get(st, drop->mailbox_id, drop->msgs[i].uid, &cur);
		if (rc == STORE_NOTFOUND || (rc == STORE_OK && cur.id != drop->msgs[i].id))
			continue;
		if (rc == STORE_OK)
			rc = store_message_expunge(st, drop->msgs[i].id);
		if (rc != STORE_OK) {
			store_rollback(st);
			return rc;
		}
		n++;
	}
	rc = store_commit(st);
	if (rc != STORE_OK) {
		store_rollback(st);
		return rc;
	}
	*removed = n;
	if (n)
		notify_mailbox_changed(drop->mailbox_id); /* other sessions (IMAP IDLE) */
	return STORE_OK;
}

int pop3_message_fetch(struct store *st, const struct user_key *key, const struct pop3_message *m,
		       unsigned char **plain, size_t *len)
{
	unsigned char *blob = NULL;
	size_t blob_len = 0;
	int rc;

	*plain = NULL;
	*len = 0;
	rc = store_message_blob(st, m->id, &blob, &blob_len);
	if (rc != STORE_OK)
		return rc == STORE_NOTFOUND ? STORE_NOTFOUND : STORE_ERR;
	rc = crypto_open(key, blob, blob_len, plain, len) == 0 ? STORE_OK : POP3_UNREADABLE;
	free(blob);
	if (rc == STORE_OK && memchr(*plain, '\0', *len)) {
		/* Stored with NUL by an IMAP BINARY APPEND (RFC 3516 4.4): POP3
		 * is text (RFC 1939), so the client gets the textual form, the
		 * parts with NUL in base64, whose size LIST gave. */
		unsigned char *text;
		size_t text_len;

		if (imap_binary_text(*plain, *len, false, &text, &text_len) != 0)
			rc = STORE_ERR;
		sodium_memzero(*plain, *len);
		free(*plain);
		*plain = rc == STORE_OK ? text : NULL;
		*len = rc == STORE_OK ? text_len : 0;
	}
	return rc;
}
