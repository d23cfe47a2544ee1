/*
 * cmd_expunge.c - EXPUNGE (RFC 3501 6.4.3) and UID EXPUNGE (RFC 4315 2.1):
 * removes the \Deleted messages (of the UID set); the untagged EXPUNGE
 * (or, with QRESYNC, VANISHED) responses come from imap_sync() before the
 * tagged OK.
 */
#include <config.h>

#include <stdlib.h>

#include "imap/imap_int.h"
#include "util/i18n.h"
#include "util/log.h"

/* RFC 3501 6.4.3, RFC 4315 2.1 */
void imap_cmd_expunge(struct imap_session *s, struct imap_command *cmd)
{
	struct store *st = conn_store(s->c);
	uint32_t *seqs = NULL;
	size_t n = 0, removed = 0;
	uint64_t highest = 0;
	bool failed = false;

	if (s->sel.readonly) {
		imap_no(s, "[READ-ONLY] Mailbox is read-only");
		return;
	}
	/* Flags other sessions set count too. */
	imap_sync(s, true);
	if (cmd->uid) {
		if (cmd->n_args != 1 || cmd->args[0].type != IMAP_ARG_ATOM) {
			imap_bad(s, "UID EXPUNGE needs a UID set");
			return;
		}
		if (imap_resolve_set(s, cmd->args[0].str, true, &seqs, &n) < 0)
			return;
	} else if (cmd->n_args) {
		imap_bad(s, "EXPUNGE takes no arguments");
		return;
	} else {
		seqs = malloc((s->sel.n + 1) * sizeof(*seqs));
		if (!seqs) {
			imap_no(s, "[SERVERBUG] Out of memory");
			return;
		}
		for (size_t i = 0; i < s->sel.n; i++)
			seqs[n++] = (uint32_t)(i + 1);
	}
	for (size_t i = 0; i < n; i++) {
		const struct imap_msg *m = &s->sel.msgs[seqs[i] - 1];
		if (m->expunged || !(m->flags & FLAG_DELETED))
			continue;
		if (store_message_expunge(st, m->id) == STORE_ERR) {
			log_error(_("imap: expunge failed: %s"), store_error(st));
			failed = true;
		} else {
			removed++;
		}
	}
	free(seqs);
	if (removed)
		imap_changed(s->sel.mb.id);
	if (failed) {
		imap_sync(s, true);
		imap_no(s, "[UNAVAILABLE] Some messages could not be expunged");
		return;
	}
	/* RFC 7162 3.2.10: HIGHESTMODSEQ in the tagged OK, read before the
	 * changes are reported so that it never covers one the client missed. */
	if (s->condstore && store_mailbox_highestmodseq(st, s->sel.mb.id, &highest) == STORE_OK) {
		imap_sync(s, true);
		imap_ok(s, "[HIGHESTMODSEQ %llu] EXPUNGE completed", (unsigned long long)highest);
		return;
	}
	imap_ok(s, "EXPUNGE completed");
}
