/*
 * cmd_status.c - STATUS (RFC 3501 6.3.10) with SIZE (RFC 8438), DELETED
 * (RFC 9051) and DELETED-STORAGE (RFC 9208 4.2, in units of 1024 octets).
 */
#include <config.h>

#include <string.h>
#include <strings.h>

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

/* RFC 3501 6.3.10 */
void imap_cmd_status(struct imap_session *s, struct imap_command *cmd)
{
	char name[STORE_MAILBOX_NAME_MAX + 1];
	struct store_mailbox mb;
	struct imap_buf b = {0};
	const struct imap_arg *items;
	struct status_counts counts = {0};
	bool need_count = false;
	int rc;

	if (cmd->n_args != 2 || cmd->args[1].type != IMAP_ARG_LIST || cmd->args[1].n == 0) {
		imap_bad(s, "STATUS needs a mailbox name and a list of items");
		return;
	}
	items = &cmd->args[1];
	for (size_t i = 0; i < items->n; i++) {
		const struct imap_arg *a = &items->list[i];
		if (imap_arg_is(a, "UNSEEN") || imap_arg_is(a, "DELETED") ||
		    imap_arg_is(a, "DELETED-STORAGE"))
			need_count = true;
		else if (!imap_arg_is(a, "MESSAGES") && !imap_arg_is(a, "RECENT") &&
			 !imap_arg_is(a, "UIDNEXT") && !imap_arg_is(a, "UIDVALIDITY") &&
			 !imap_arg_is(a, "SIZE") && !imap_arg_is(a, "HIGHESTMODSEQ")) {
			imap_bad(s, "Unknown STATUS item");
			return;
		}
	}
	if (imap_mailbox_name(&cmd->args[0], name, sizeof(name)) < 0) {
		imap_no(s, "[NONEXISTENT] Invalid mailbox name");
		return;
	}
	rc = store_mailbox_get(conn_store(s->c), s->id.user_id, name, &mb);
	if (rc == STORE_NOTFOUND) {
		imap_no(s, "[NONEXISTENT] No such mailbox");
		return;
	}
	if (rc == STORE_OK && need_count)
		rc = store_message_list(conn_store(s->c), mb.id, 0, count_cb, &counts);
	if (rc != STORE_OK) {
		imap_no(s, "[UNAVAILABLE] Cannot read the mailbox now");
		return;
	}
	ibuf_str(&b, "* STATUS ");
	ibuf_nstring(&b, name, strlen(name));
	ibuf_str(&b, " (");
	for (size_t i = 0; i < items->n; i++) {
		const char *item = items->list[i].str;
		if (i)
			ibuf_str(&b, " ");
		if (strcasecmp(item, "MESSAGES") == 0)
			ibuf_printf(&b, "MESSAGES %u", mb.messages);
		else if (strcasecmp(item, "RECENT") == 0)
			ibuf_str(&b, "RECENT 0");
		else if (strcasecmp(item, "UIDNEXT") == 0)
			ibuf_printf(&b, "UIDNEXT %u", mb.uidnext);
		else if (strcasecmp(item, "UIDVALIDITY") == 0)
			ibuf_printf(&b, "UIDVALIDITY %u", mb.uidvalidity);
		else if (strcasecmp(item, "UNSEEN") == 0)
			ibuf_printf(&b, "UNSEEN %u", counts.unseen);
		else if (strcasecmp(item, "DELETED") == 0)
			ibuf_printf(&b, "DELETED %u", counts.deleted);
		else if (strcasecmp(item, "DELETED-STORAGE") == 0)
			ibuf_printf(&b, "DELETED-STORAGE %llu",
				    (unsigned long long)imap_quota_kb(counts.deleted_bytes));
		else if (strcasecmp(item, "HIGHESTMODSEQ") == 0)
			ibuf_printf(&b, "HIGHESTMODSEQ %llu", (unsigned long long)mb.highestmodseq);
		else
			ibuf_printf(&b, "SIZE %lld", (long long)mb.bytes);
	}
	ibuf_str(&b, ")\r\n");
	if (!b.failed)
		conn_write(s->c, b.p, b.len);
	ibuf_free(&b);
	imap_ok(s, "STATUS completed");
}
