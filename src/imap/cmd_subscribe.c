/*
 * cmd_subscribe.c - SUBSCRIBE and UNSUBSCRIBE (RFC 3501 6.3.6, 6.3.7).
 * Subscriptions are a flag on existing mailboxes.
 */
#include <config.h>

#include <string.h>

#include "imap/imap_int.h"

/* RFC 3501 6.3.6 and 6.3.7 */
void imap_cmd_subscribe(struct imap_session *s, struct imap_command *cmd)
{
	bool on = strcmp(cmd->verb, "SUBSCRIBE") == 0;
	char name[STORE_MAILBOX_NAME_MAX + 1];
	struct store_mailbox mb;
	int rc;

	if (cmd->n_args != 1) {
		imap_bad(s, "%s needs one mailbox name", cmd->verb);
		return;
	}
	rc = imap_mailbox_find(s, &cmd->args[0], name, sizeof(name), &mb);
	if (rc == STORE_NOTFOUND)
		return;
	if (rc == STORE_OK)
		rc = store_mailbox_set_subscribed(conn_store(s->c), mb.id, on);
	if (rc != STORE_OK) {
		imap_no(s, "[UNAVAILABLE] Cannot change the subscription now");
		return;
	}
	imap_ok(s, "%s completed", cmd->verb);
}
