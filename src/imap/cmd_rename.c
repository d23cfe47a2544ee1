/*
 * cmd_rename.c - RENAME (RFC 3501 6.3.5): a mailbox and all its children
 * in one transaction. Renaming INBOX moves its messages into the new
 * mailbox and leaves INBOX empty, as the RFC asks.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_int.h"
#include "util/i18n.h"
#include "util/log.h"

struct child_list {
	const char *prefix; /* "old/" */
	size_t prefix_len;
	int64_t *ids;
	char (*names)[STORE_MAILBOX_NAME_MAX + 1];
	size_t n, cap;
	bool failed;
};

static int child_cb(void *arg, const struct store_mailbox *mb)
{
	struct child_list *l = arg;

	if (strncmp(mb->name, l->prefix, l->prefix_len) != 0)
		return 0;
	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 8;
		int64_t *ni = realloc(l->ids, ncap * sizeof(*ni));
		char(*nn)[STORE_MAILBOX_NAME_MAX + 1];
		if (!ni) {
			l->failed = true;
			return -1;
		}
		l->ids = ni;
		nn = realloc(l->names, ncap * sizeof(*nn));
		if (!nn) {
			l->failed = true;
			return -1;
		}
		l->names = nn;
		l->cap = ncap;
	}
	l->ids[l->n] = mb->id;
	memcpy(l->names[l->n], mb->name, sizeof(l->names[0]));
	l->n++;
	return 0;
}

struct id_list {
	int64_t *ids;
	size_t n, cap;
	bool failed;
};

static int msg_cb(void *arg, const struct store_message *m)
{
	struct id_list *l = arg;
	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 64;
		int64_t *ni = realloc(l->ids, ncap * sizeof(*ni));
		if (!ni) {
			l->failed = true;
			return -1;
		}
		l->ids = ni;
		l->cap = ncap;
	}
	l->ids[l->n++] = m->id;
	return 0;
}

/* Moves every message of INBOX into a new mailbox NAME. */
static int rename_inbox(struct imap_session *s, const struct store_mailbox *inbox, const char *name)
{
	struct store *st = conn_store(s->c);
	struct store_mailbox dst;
	struct id_list l = {0};
	int rc;

	rc = store_mailbox_create(st, s->id.user_id, name, SPECIAL_NONE, &dst);
	if (rc != STORE_OK)
		return rc;
	rc = store_message_list(st, inbox->id, 0, msg_cb, &l);
	if (l.failed)
		rc = STORE_ERR;
	for (size_t i = 0; i < l.n && rc == STORE_OK; i++) {
		struct store_message out;
		rc = store_message_copy(st, l.ids[i], dst.id, &out);
		if (rc == STORE_OK)
			rc = store_message_expunge(st, l.ids[i]);
	}
	free(l.ids);
	return rc;
}

static int rename_tree(struct imap_session *s, const char *from, const char *to, bool exists,
		       int64_t id)
{
	struct store *st = conn_store(s->c);
	char prefix[STORE_MAILBOX_NAME_MAX + 2];
	struct child_list l = {0};
	int rc = STORE_OK;

	snprintf(prefix, sizeof(prefix), "%s/", from);
	l.prefix = prefix;
	l.prefix_len = strlen(prefix);
	if (store_mailbox_list(st, s->id.user_id, child_cb, &l) != STORE_OK || l.failed)
		rc = STORE_ERR;
	if (rc == STORE_OK && !exists && l.n == 0)
		rc = STORE_NOTFOUND;
	if (rc == STORE_OK && exists)
		rc = store_mailbox_rename(st, id, to);
	for (size_t i = 0; i < l.n && rc == STORE_OK; i++) {
		char newname[2 * STORE_MAILBOX_NAME_MAX + 2];
		snprintf(newname, sizeof(newname), "%s/%s", to, l.names[i] + l.prefix_len);
		if (strlen(newname) > STORE_MAILBOX_NAME_MAX)
			rc = STORE_ERR;
		else
			rc = store_mailbox_rename(st, l.ids[i], newname);
	}
	free(l.ids);
	free(l.names);
	return rc;
}

/* RFC 3501 6.3.5 */
void imap_cmd_rename(struct imap_session *s, struct imap_command *cmd)
{
	char from[STORE_MAILBOX_NAME_MAX + 1], to[STORE_MAILBOX_NAME_MAX + 1];
	struct store *st = conn_store(s->c);
	struct store_mailbox mb, other;
	size_t flen;
	int rc;

	if (cmd->n_args != 2) {
		imap_bad(s, "RENAME needs two mailbox names");
		return;
	}
	if (imap_mailbox_arg(s, &cmd->args[0], from, sizeof(from)) < 0 ||
	    imap_mailbox_arg(s, &cmd->args[1], to, sizeof(to)) < 0) {
		imap_no(s, "[CANNOT] Invalid mailbox name");
		return;
	}
	flen = strlen(from);
	if (strcmp(to, "INBOX") == 0 || (strncmp(to, from, flen) == 0 && to[flen] == '/')) {
		imap_no(s, "[CANNOT] Cannot rename to that name");
		return;
	}
	if (store_mailbox_get(st, s->id.user_id, to, &other) == STORE_OK) {
		imap_no(s, "[ALREADYEXISTS] Target mailbox exists");
		return;
	}
	rc = store_mailbox_get(st, s->id.user_id, from, &mb);
	if (rc != STORE_OK && rc != STORE_NOTFOUND) {
		imap_no(s, "[UNAVAILABLE] Cannot rename now");
		return;
	}
	if (store_begin(st) != STORE_OK) {
		imap_no(s, "[UNAVAILABLE] Cannot rename now");
		return;
	}
	if (strcmp(from, "INBOX") == 0)
		rc = rename_inbox(s, &mb, to);
	else
		rc = rename_tree(s, from, to, rc == STORE_OK, mb.id);
	if (rc == STORE_OK)
		rc = store_commit(st);
	else
		store_rollback(st);
	if (rc == STORE_NOTFOUND) {
		imap_no(s, "[NONEXISTENT] No such mailbox");
		return;
	}
	if (rc == STORE_EXISTS) {
		imap_no(s, "[ALREADYEXISTS] Target mailbox exists");
		return;
	}
	if (rc != STORE_OK) {
		log_error(_("imap: rename failed: %s"), store_error(st));
		imap_no(s, "[UNAVAILABLE] Cannot rename now");
		return;
	}
	if (strcmp(from, "INBOX") == 0)
		imap_changed(mb.id);
	if (strcmp(from, "INBOX") != 0 && s->state == IMAP_STATE_SELECTED && s->sel.mb.id == mb.id)
		snprintf(s->sel.mb.name, sizeof(s->sel.mb.name), "%s", to);
	imap_ok(s, "RENAME completed");
}
