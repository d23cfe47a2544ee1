/*
 * cmd_enable.c - ENABLE (RFC 5161). No extension that needs enabling is
 * offered yet, so the ENABLED response lists none; unknown names are ignored
 * as the RFC requires.
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
	for (size_t i = 0; i < cmd->n_args; i++) {
		if (cmd->args[i].type != IMAP_ARG_ATOM) {
			imap_bad(s, "ENABLE takes capability names");
			return;
		}
	}
	imap_untagged(s, "ENABLED");
	imap_ok(s, "ENABLE completed");
}
