/*
 * cmd_logout.c - LOGOUT (RFC 3501 6.1.3).
 */
#include <config.h>

#include "imap/imap_int.h"

/* RFC 3501 6.1.3 */
void imap_cmd_logout(struct imap_session *s, struct imap_command *cmd)
{
	if (cmd->n_args) {
		imap_bad(s, "LOGOUT takes no arguments");
		return;
	}
	imap_untagged(s, "BYE Postern IMAP server logging out");
	s->state = IMAP_STATE_LOGOUT; /* no mailbox updates in the tagged OK */
	imap_ok(s, "LOGOUT completed");
	conn_close(s->c);
}
