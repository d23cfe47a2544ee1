/*
 * cmd_idle.c - IDLE (RFC 2177). While idling, changes to the selected
 * mailbox arrive through src/util/notify (imap_mailbox.c subscribes at
 * SELECT) and are reported at once; DONE ends it.
 */
#include <config.h>

#include <string.h>
#include <strings.h>

#include "imap/imap_int.h"

/* RFC 2177 3 */
void imap_cmd_idle(struct imap_session *s, struct imap_command *cmd)
{
	if (cmd->n_args) {
		imap_bad(s, "IDLE takes no arguments");
		return;
	}
	s->idling = true;
	conn_printf(s->c, "+ idling\r\n");
	/* What happened before IDLE is reported now. */
	if (s->state == IMAP_STATE_SELECTED)
		imap_sync(s, true);
}

void imap_idle_done(struct imap_session *s, const char *line, size_t len)
{
	s->idling = false;
	s->allow_expunge = true;
	if (len == 4 && strncasecmp(line, "DONE", 4) == 0)
		imap_ok(s, "IDLE terminated");
	else
		imap_bad(s, "Expected DONE to end IDLE");
}
