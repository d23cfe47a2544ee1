/*
 * cmd_create.c - CREATE (RFC 3501 6.3.3). A trailing "/" is a hint that
 * the name will hold children and is dropped; missing parents need not
 * exist (LIST shows them as \Noselect).
 */
#include <config.h>

#include <string.h>

#include "imap/imap_int.h"
#include "util/i18n.h"
#include "util/log.h"

/* RFC 3501 6.3.3 */
void imap_cmd_create(struct imap_session *s, struct imap_command *cmd)
{
	char name[STORE_MAILBOX_NAME_MAX + 2];
	struct store_mailbox mb;
	struct imap_arg arg;
	int rc;

	if (cmd->n_args != 1 || !imap_arg_is_string(&cmd->args[0])) {
		imap_bad(s, "CREATE needs one mailbox name");
		return;
	}
	arg = cmd->args[0];
	if (arg.len > 1 && arg.str[arg.len - 1] == '/')
		arg.len--;
	{
		char tmp[STORE_MAILBOX_NAME_MAX + 2];
		if (arg.len >= sizeof(tmp)) {
			imap_no(s, "[CANNOT] Mailbox name too long");
			return;
		}
		memcpy(tmp, arg.str, arg.len);
		tmp[arg.len] = '\0';
		arg.str = tmp;
		if (imap_mailbox_arg(s, &arg, name, sizeof(name)) < 0) {
			imap_no(s, "[CANNOT] Invalid mailbox name");
			return;
		}
	}
	if (strcmp(name, "INBOX") == 0) {
		imap_no(s, "[ALREADYEXISTS] INBOX always exists");
		return;
	}
	rc = store_mailbox_create(conn_store(s->c), s->id.user_id, name, SPECIAL_NONE, &mb);
	if (rc == STORE_EXISTS) {
		imap_no(s, "[ALREADYEXISTS] Mailbox already exists");
		return;
	}
	if (rc != STORE_OK) {
		log_error(_("imap: cannot create a mailbox: %s"), store_error(conn_store(s->c)));
		imap_no(s, "[UNAVAILABLE] Cannot create the mailbox now");
		return;
	}
	imap_ok(s, "CREATE completed");
}
