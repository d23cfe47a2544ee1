/*
 * cmd_namespace.c - NAMESPACE (RFC 2342): one personal namespace, "/" as
 * the hierarchy delimiter, no shared or other users' folders.
 */
#include <config.h>

#include "imap/imap_int.h"

/* RFC 2342 5 */
void imap_cmd_namespace(struct imap_session *s, struct imap_command *cmd)
{
	if (cmd->n_args) {
		imap_bad(s, "NAMESPACE takes no arguments");
		return;
	}
	imap_untagged(s, "NAMESPACE ((\"\" \"/\")) NIL NIL");
	imap_ok(s, "NAMESPACE completed");
}
