/*
 * cmd_id.c - ID (RFC 2971). The client's fields are accepted (and bounded
 * by the parser) but not stored; the server names itself, not its version.
 */
#include <config.h>

#include "imap/imap_int.h"

/* RFC 2971 3.1 */
void imap_cmd_id(struct imap_session *s, struct imap_command *cmd)
{
	const struct imap_arg *a = cmd->n_args == 1 ? &cmd->args[0] : NULL;

	if (!a || (!(a->type == IMAP_ARG_ATOM && imap_arg_is(a, "NIL")) &&
		   !(a->type == IMAP_ARG_LIST && a->n % 2 == 0 && a->n <= 60))) {
		imap_bad(s, "ID takes NIL or a list of field/value pairs");
		return;
	}
	imap_untagged(s, "ID (\"name\" \"Postern\")");
	imap_ok(s, "ID completed");
}
