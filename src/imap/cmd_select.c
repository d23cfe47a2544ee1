/*
 * cmd_select.c - SELECT and EXAMINE (RFC 3501 6.3.1, 6.3.2). Postern keeps
 * no \Recent state (RFC 9051 dropped it), so RECENT is always 0.
 */
#include <config.h>

#include <string.h>

#include "imap/imap_int.h"

#define SYSTEM_FLAGS "\\Answered \\Flagged \\Deleted \\Seen \\Draft"

/* RFC 3501 6.3.1 and 6.3.2 */
void imap_cmd_select(struct imap_session *s, struct imap_command *cmd)
{
	bool readonly = strcmp(cmd->verb, "EXAMINE") == 0;
	char name[STORE_MAILBOX_NAME_MAX + 1];
	struct store_mailbox mb;
	size_t first_unseen = 0;
	int rc;

	/* RFC 7162 3.1.8: SELECT name (CONDSTORE) */
	if (cmd->n_args == 2 && cmd->args[1].type == IMAP_ARG_LIST && cmd->args[1].n == 1 &&
	    imap_arg_is(&cmd->args[1].list[0], "CONDSTORE")) {
		s->condstore = true;
	} else if (cmd->n_args != 1) {
		imap_bad(s, "%s needs one mailbox name", cmd->verb);
		return;
	}
	/* RFC 3501 6.3.1: a failed SELECT leaves no mailbox selected. */
	if (s->state == IMAP_STATE_SELECTED) {
		imap_select_close(s);
		s->state = IMAP_STATE_AUTH;
		imap_untagged(s, "OK [CLOSED] Previous mailbox closed");
	}
	if (imap_mailbox_name(&cmd->args[0], name, sizeof(name)) < 0) {
		imap_no(s, "[NONEXISTENT] Invalid mailbox name");
		return;
	}
	rc = store_mailbox_get(conn_store(s->c), s->id.user_id, name, &mb);
	if (rc == STORE_NOTFOUND) {
		imap_no(s, "[NONEXISTENT] No such mailbox");
		return;
	}
	if (rc != STORE_OK || imap_select_load(s, &mb, readonly) != STORE_OK) {
		imap_no(s, "[UNAVAILABLE] Cannot open the mailbox now");
		return;
	}
	for (size_t i = 0; i < s->sel.n && !first_unseen; i++)
		if (!(s->sel.msgs[i].flags & FLAG_SEEN))
			first_unseen = i + 1;
	imap_untagged(s, "FLAGS (" SYSTEM_FLAGS ")");
	if (readonly)
		imap_untagged(s, "OK [PERMANENTFLAGS ()] Read-only mailbox");
	else
		imap_untagged(s, "OK [PERMANENTFLAGS (" SYSTEM_FLAGS " \\*)] Flags permitted");
	imap_untagged(s, "%zu EXISTS", s->sel.n);
	imap_untagged(s, "0 RECENT");
	if (first_unseen)
		imap_untagged(s, "OK [UNSEEN %zu] First unseen message", first_unseen);
	imap_untagged(s, "OK [UIDVALIDITY %u] UIDs valid", mb.uidvalidity);
	imap_untagged(s, "OK [UIDNEXT %u] Predicted next UID", mb.uidnext);
	imap_untagged(s, "OK [HIGHESTMODSEQ %llu] Highest", (unsigned long long)mb.highestmodseq);
	s->state = IMAP_STATE_SELECTED;
	imap_ok(s, "[%s] %s completed", readonly ? "READ-ONLY" : "READ-WRITE", cmd->verb);
}
