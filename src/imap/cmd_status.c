/*
 * cmd_status.c - STATUS (RFC 3501 6.3.10) with SIZE (RFC 8438), DELETED
 * (RFC 9051), DELETED-STORAGE (RFC 9208 4.2, in units of 1024 octets) and
 * APPENDLIMIT (RFC 7889 3).
 * The same response follows LIST lines for RETURN (STATUS ...) (RFC 5819).
 */
#include <config.h>

#include <string.h>

#include "imap/imap_int.h"

struct status_counts {
	uint32_t unseen, deleted;
	int64_t deleted_bytes;
};

static int count_cb(void *arg, const struct store_message *m)
{
	struct status_counts *c = arg;
	if (!(m->flags & FLAG_SEEN))
		c->unseen++;
	if (m->flags & FLAG_DELETED) {
		c->deleted++;
		c->deleted_bytes += m->size;
	}
	return 0;
}

int imap_status_send(struct imap_session *s, const char *name, const struct store_mailbox *mb,
		     const struct imap_status_items *items)
{
	struct status_counts counts = {0};
	struct imap_buf b = {0};
	bool need_count = false;

	for (size_t i = 0; i < items->n; i++)
		if (items->items[i] == STATUS_UNSEEN || items->items[i] == STATUS_DELETED ||
		    items->items[i] == STATUS_DELETED_STORAGE)
			need_count = true;
	if (need_count) {
		int rc = store_message_list(conn_store(s->c), mb->id, 0, count_cb, &counts);
		if (rc != STORE_OK)
			return rc;
	}
	ibuf_str(&b, "* STATUS ");
	imap_write_mailbox(s, &b, name);
	ibuf_str(&b, " (");
	for (size_t i = 0; i < items->n; i++) {
		ibuf_printf(&b, "%s%s ", i ? " " : "", imap_status_item_name(items->items[i]));
		switch (items->items[i]) {
		case STATUS_MESSAGES:
			ibuf_printf(&b, "%u", mb->messages);
			break;
		case STATUS_RECENT:
			ibuf_str(&b, "0");
			break;
		case STATUS_UIDNEXT:
			ibuf_printf(&b, "%u", mb->uidnext);
			break;
		case STATUS_UIDVALIDITY:
			ibuf_printf(&b, "%u", mb->uidvalidity);
			break;
		case STATUS_UNSEEN:
			ibuf_printf(&b, "%u", counts.unseen);
			break;
		case STATUS_SIZE:
			ibuf_printf(&b, "%lld", (long long)mb->bytes);
			break;
		case STATUS_HIGHESTMODSEQ:
			ibuf_printf(&b, "%llu", (unsigned long long)mb->highestmodseq);
			break;
		case STATUS_DELETED:
			ibuf_printf(&b, "%u", counts.deleted);
			break;
		case STATUS_DELETED_STORAGE:
			ibuf_printf(&b, "%llu",
				    (unsigned long long)imap_quota_kb(counts.deleted_bytes));
			break;
		case STATUS_APPENDLIMIT:
			/* One limit for every mailbox, as in the capability. */
			ibuf_printf(&b, "%zu", s->cfg->limits.max_message_size);
			break;
		}
	}
	ibuf_str(&b, ")\r\n");
	if (!b.failed)
		imap_write(s, b.p, b.len);
	ibuf_free(&b);
	return STORE_OK;
}

/* RFC 3501 6.3.10 */
void imap_cmd_status(struct imap_session *s, struct imap_command *cmd)
{
	char name[STORE_MAILBOX_NAME_MAX + 1];
	struct store_mailbox mb;
	struct imap_status_items items;
	char err[128];
	int rc;

	if (cmd->n_args != 2 || !imap_arg_is_string(&cmd->args[0])) {
		imap_bad(s, "STATUS needs a mailbox name and a list of items");
		return;
	}
	if (imap_status_items_parse(&cmd->args[1], &items, err, sizeof(err)) < 0) {
		imap_bad(s, "%s", err);
		return;
	}
	rc = imap_mailbox_find(s, &cmd->args[0], name, sizeof(name), &mb);
	if (rc == STORE_NOTFOUND)
		return;
	if (rc == STORE_OK)
		rc = imap_status_send(s, name, &mb, &items);
	if (rc != STORE_OK) {
		imap_no(s, "[UNAVAILABLE] Cannot read the mailbox now");
		return;
	}
	imap_ok(s, "STATUS completed");
}
