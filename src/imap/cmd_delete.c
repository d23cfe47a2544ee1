/*
 * cmd_delete.c - DELETE (RFC 3501 6.3.4). INBOX cannot be deleted. A
 * mailbox with children may be deleted: its messages go, the children stay
 * and the name remains as a \Noselect parent in LIST.
 */
#include <config.h>

#include <string.h>

#include "imap/imap_int.h"
#include "util/i18n.h"
#include "util/log.h"

/* RFC 3501 6.3.4 */
void imap_cmd_delete(struct imap_session *s, struct imap_command *cmd)
{
	char name[STORE_MAILBOX_NAME_MAX + 1];
	struct store_mailbox mb;
	struct store *st = conn_store(s->c);
	int rc;

	if (cmd->n_args != 1) {
		imap_bad(s, "DELETE needs one mailbox name");
		return;
	}
	if (imap_mailbox_arg(s, &cmd->args[0], name, sizeof(name)) < 0) {
		imap_no(s, "[NONEXISTENT] Invalid mailbox name");
		return;
	}
	if (strcmp(name, "INBOX") == 0) {
		imap_no(s, "[CANNOT] INBOX cannot be deleted");
		return;
	}
	rc = store_mailbox_get(st, s->id.user_id, name, &mb);
	if (rc == STORE_NOTFOUND) {
		imap_no(s, "[NONEXISTENT] No such mailbox");
		return;
	}
	if (s->state == IMAP_STATE_SELECTED && s->sel.mb.id == mb.id) {
		imap_no(s, "[INUSE] Close the mailbox before deleting it");
		return;
	}
	if (rc == STORE_OK)
		rc = store_mailbox_delete(st, mb.id);
	if (rc != STORE_OK) {
		log_error(_("imap: cannot delete a mailbox: %s"), store_error(st));
		imap_no(s, "[UNAVAILABLE] Cannot delete the mailbox now");
		return;
	}
	imap_changed(mb.id);
	imap_ok(s, "DELETE completed");
}
