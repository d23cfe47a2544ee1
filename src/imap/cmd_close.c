/*
 * cmd_close.c - CLOSE (RFC 3501 6.4.2: silently expunges \Deleted messages
 * of a read-write mailbox) and UNSELECT (RFC 3691: expunges nothing).
 */
#include <config.h>

#include <string.h>

#include "imap/imap_int.h"
#include "util/i18n.h"
#include "util/log.h"

/* RFC 3501 6.4.2, RFC 3691 2 */
void imap_cmd_close(struct imap_session *s, struct imap_command *cmd)
{
	bool expunge = strcmp(cmd->verb, "CLOSE") == 0 && !s->sel.readonly;
	struct store *st = conn_store(s->c);
	size_t removed = 0;
	int64_t mailbox_id = s->sel.mb.id;

	if (cmd->n_args) {
		imap_bad(s, "%s takes no arguments", cmd->verb);
		return;
	}
	if (expunge) {
		for (size_t i = 0; i < s->sel.n; i++) {
			const struct imap_msg *m = &s->sel.msgs[i];
			if (m->expunged || !(m->flags & FLAG_DELETED))
				continue;
			if (store_message_expunge(st, m->id) == STORE_ERR)
				log_error(_("imap: expunge failed: %s"), store_error(st));
			else
				removed++;
		}
	}
	imap_select_close(s);
	s->state = IMAP_STATE_AUTH;
	if (removed)
		imap_changed(mailbox_id);
	imap_ok(s, "%s completed", cmd->verb);
}
