/*
 * cmd_enable.c - ENABLE (RFC 5161). CONDSTORE (RFC 7162) is the one
 * extension that can be enabled; unknown names are ignored as the RFC
 * requires.
 */
#include <config.h>

#include "imap/imap_int.h"

/* RFC 5161 3.1 */
void imap_cmd_enable(struct imap_session *s, struct imap_command *cmd)
{
	if (cmd->n_args == 0) {
		imap_bad(s, "ENABLE needs at least one capability name");
		return;
	}
	bool condstore = false;

	for (size_t i = 0; i < cmd->n_args; i++) {
		if (cmd->args[i].type != IMAP_ARG_ATOM) {
			imap_bad(s, "ENABLE takes capability names");
			return;
		}
		condstore |= imap_arg_is(&cmd->args[i], "CONDSTORE");
	}
	/* RFC 5161 3.1: only what was not enabled before is listed. */
	imap_untagged(s, "ENABLED%s", condstore && !s->condstore ? " CONDSTORE" : "");
	if (condstore)
		s->condstore = true;
	imap_ok(s, "ENABLE completed");
}
