/*
 * cmd_select.c - SELECT and EXAMINE (RFC 3501 6.3.1, 6.3.2) with the
 * CONDSTORE and QRESYNC parameters (RFC 7162). Postern keeps no \Recent
 * state (RFC 9051 dropped it), so RECENT is always 0 (and left out, with
 * UNSEEN, once IMAP4rev2 is enabled).
 */
#include <config.h>

#include <stdlib.h>
#include <string.h>

#include "imap/imap_int.h"

#define SYSTEM_FLAGS "\\Answered \\Flagged \\Deleted \\Seen \\Draft"

/* RFC 7162 3.2.5.1: what changed since the client's modseq - VANISHED
 * (EARLIER) for the expunged UIDs, FETCH for changed flags - limited to the
 * UIDs the client knows when it named them. Postern remembers every
 * expunge, so seq-match-data is never needed. */
static void qresync_report(struct imap_session *s, const struct imap_select_params *p)
{
	uint32_t known_max = s->sel.mb.uidnext > 1 ? s->sel.mb.uidnext - 1 : 0;
	uint32_t *uids = NULL;
	size_t n = 0, kept = 0;

	if (store_expunged_since(conn_store(s->c), s->sel.mb.id, p->modseq, &uids, &n) ==
	    STORE_OK) {
		for (size_t i = 0; i < n; i++)
			if (!p->has_known_uids ||
			    imap_seqset_contains(&p->known_uids, uids[i], known_max))
				uids[kept++] = uids[i];
		imap_send_vanished(s, true, uids, kept);
	}
	free(uids);
	for (size_t i = 0; i < s->sel.n; i++) {
		const struct imap_msg *m = &s->sel.msgs[i];
		if (m->modseq > p->modseq &&
		    (!p->has_known_uids || imap_seqset_contains(&p->known_uids, m->uid, known_max)))
			imap_send_flags(s, i + 1, m, true);
	}
}

/* RFC 3501 6.3.1 and 6.3.2, RFC 7162 3.1.8 and 3.2.5 */
void imap_cmd_select(struct imap_session *s, struct imap_command *cmd)
{
	bool readonly = strcmp(cmd->verb, "EXAMINE") == 0;
	char name[STORE_MAILBOX_NAME_MAX + 1];
	struct imap_select_params params;
	struct store_mailbox mb;
	size_t first_unseen = 0;
	char err[160];
	int rc;

	if (cmd->n_args < 1 || cmd->n_args > 2) {
		imap_bad(s, "%s needs one mailbox name", cmd->verb);
		return;
	}
	if (imap_select_params_parse(cmd->args + 1, cmd->n_args - 1, &params, err, sizeof(err)) <
	    0) {
		imap_bad(s, "%s", err);
		return;
	}
	if (params.qresync && !s->qresync) {
		imap_select_params_free(&params);
		imap_bad(s, "QRESYNC must be enabled first (ENABLE QRESYNC)");
		return;
	}
	if (params.condstore)
		s->condstore = true;
	/* RFC 3501 6.3.1: a failed SELECT leaves no mailbox selected. */
	if (s->state == IMAP_STATE_SELECTED) {
		imap_select_close(s);
		s->state = IMAP_STATE_AUTH;
		imap_untagged(s, "OK [CLOSED] Previous mailbox closed");
	}
	if (imap_mailbox_arg(s, &cmd->args[0], name, sizeof(name)) < 0) {
		imap_select_params_free(&params);
		imap_no(s, "[NONEXISTENT] Invalid mailbox name");
		return;
	}
	rc = store_mailbox_get(conn_store(s->c), s->id.user_id, name, &mb);
	if (rc == STORE_NOTFOUND) {
		imap_select_params_free(&params);
		imap_no(s, "[NONEXISTENT] No such mailbox");
		return;
	}
	if (rc != STORE_OK || imap_select_load(s, &mb, readonly) != STORE_OK) {
		imap_select_params_free(&params);
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
	if (s->rev2) {
		/* RFC 9051 6.3.2: LIST with the name as stored; no RECENT, no UNSEEN. */
		struct imap_buf b = {0};
		ibuf_str(&b, "* LIST () \"/\" ");
		imap_write_mailbox(s, &b, mb.name);
		ibuf_str(&b, "\r\n");
		if (!b.failed)
			imap_write(s, b.p, b.len);
		ibuf_free(&b);
	} else {
		imap_untagged(s, "0 RECENT");
		if (first_unseen)
			imap_untagged(s, "OK [UNSEEN %zu] First unseen message", first_unseen);
	}
	imap_untagged(s, "OK [UIDVALIDITY %u] UIDs valid", mb.uidvalidity);
	imap_untagged(s, "OK [UIDNEXT %u] Predicted next UID", s->sel.mb.uidnext);
	imap_untagged(s, "OK [HIGHESTMODSEQ %llu] Highest",
		      (unsigned long long)s->sel.mb.highestmodseq);
	/* RFC 7162 3.2.5: another UIDVALIDITY means a full resync, nothing more here. */
	if (params.qresync && params.uidvalidity == mb.uidvalidity)
		qresync_report(s, &params);
	imap_select_params_free(&params);
	s->state = IMAP_STATE_SELECTED;
	/* The view was read just now; an expunge since then waits for the next
	 * command, so that the EXISTS above stays the count the client uses. */
	s->allow_expunge = false;
	imap_ok(s, "[%s] %s completed", readonly ? "READ-ONLY" : "READ-WRITE", cmd->verb);
}
