/*
 * cmd_noop.c - NOOP (RFC 3501 6.1.2) and CHECK (6.4.1): both just report
 * mailbox changes, which imap_ok() does; the store is always durable.
 */
#include <config.h>

#include "imap/imap_int.h"

/* RFC 3501 6.1.2 and 6.4.1 */
void imap_cmd_noop(struct imap_session *s, struct imap_command *cmd)
{
	if (cmd->n_args) {
		imap_bad(s, "%s takes no arguments", cmd->verb);
		return;
	}
	imap_ok(s, "%s completed", cmd->verb);
}

void imap_cmd_check(struct imap_session *s, struct imap_command *cmd)
{
	imap_cmd_noop(s, cmd);
}
