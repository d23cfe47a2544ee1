/*
 * cmd_copy.c - COPY, UID COPY (RFC 3501 6.4.7) and MOVE, UID MOVE
 * (RFC 6851), with COPYUID of UIDPLUS (RFC 4315). All copies happen in one
 * transaction. Mail moved or copied into Junk, or out of it, trains the
 * user's scanner model.
 */
#include <config.h>

#include <stdlib.h>
#include <string.h>

#include "imap/imap_int.h"
#include "util/i18n.h"
#include "util/log.h"

/* RFC 3501 6.4.7, RFC 6851 3 */
void imap_cmd_copy(struct imap_session *s, struct imap_command *cmd)
{
	bool move = strcmp(cmd->verb, "MOVE") == 0;
	char name[STORE_MAILBOX_NAME_MAX + 1];
	struct store *st = conn_store(s->c);
	struct store_mailbox dst;
	struct imap_buf src_uids = {0}, dst_uids = {0};
	uint32_t *seqs = NULL, *from = NULL, *to = NULL;
	size_t n = 0, copied = 0;
	int rc;

	if (cmd->n_args != 2 || cmd->args[0].type != IMAP_ARG_ATOM) {
		imap_bad(s, "%s needs a sequence set and a mailbox name", cmd->verb);
		return;
	}
	if (imap_mailbox_arg(s, &cmd->args[1], name, sizeof(name)) < 0) {
		imap_no(s, "[TRYCREATE] Invalid mailbox name");
		return;
	}
	if (move && s->sel.readonly) {
		imap_no(s, "[READ-ONLY] Mailbox is read-only");
		return;
	}
	if (imap_resolve_set(s, cmd->args[0].str, cmd->uid, &seqs, &n) < 0)
		return;
	rc = store_mailbox_get(st, s->id.user_id, name, &dst);
	if (rc == STORE_NOTFOUND) {
		free(seqs);
		imap_no(s, "[TRYCREATE] No such mailbox");
		return;
	}
	/* Train before the move: afterwards the source is gone. */
	if (rc == STORE_OK)
		for (size_t k = 0; k < n; k++)
			imap_junk_learn(s, &s->sel.msgs[seqs[k] - 1], &s->sel.mb, &dst);
	if (rc == STORE_OK) {
		from = malloc((n + 1) * sizeof(*from));
		to = malloc((n + 1) * sizeof(*to));
		if (!from || !to)
			rc = STORE_ERR;
	}
	if (rc != STORE_OK || store_begin(st) != STORE_OK) {
		free(seqs);
		free(from);
		free(to);
		imap_no(s, "[UNAVAILABLE] Cannot copy now");
		return;
	}
	for (size_t k = 0; k < n && rc == STORE_OK; k++) {
		const struct imap_msg *m = &s->sel.msgs[seqs[k] - 1];
		struct store_message out;
		rc = store_message_copy(st, m->id, dst.id, &out);
		if (rc == STORE_NOTFOUND) {
			rc = STORE_OK; /* expunged meanwhile: nothing to copy */
			continue;
		}
		if (rc == STORE_OK && move)
			rc = store_message_expunge(st, m->id);
		if (rc == STORE_OK) {
			from[copied] = m->uid;
			to[copied] = out.uid;
			copied++;
		}
	}
	if (rc == STORE_OK)
		rc = store_commit(st);
	else
		store_rollback(st);
	/* Both lists ascend (sequence order, new UIDs), so ranges keep the pairing. */
	ibuf_seqset(&src_uids, from, copied);
	ibuf_seqset(&dst_uids, to, copied);
	free(from);
	free(to);
	if (rc != STORE_OK) {
		free(seqs);
		ibuf_free(&src_uids);
		ibuf_free(&dst_uids);
		if (rc == STORE_QUOTA) {
			imap_no(s, "[OVERQUOTA] Quota exceeded");
			return;
		}
		log_error(_("imap: copy failed: %s"), store_error(st));
		imap_no(s, "[UNAVAILABLE] Cannot copy now");
		return;
	}
	free(seqs);
	if (copied) {
		imap_changed(dst.id);
		if (move)
			imap_changed(s->sel.mb.id);
	}
	if (src_uids.failed || dst_uids.failed)
		copied = 0; /* out of memory: the copy stands, only COPYUID is left out */
	if (move) {
		/* RFC 6851 4.3: COPYUID goes in an untagged OK before the EXPUNGEs. */
		if (copied)
			imap_untagged(s, "OK [COPYUID %u %s %s] Moved", dst.uidvalidity, src_uids.p,
				      dst_uids.p);
		imap_ok(s, "MOVE completed");
	} else if (copied) {
		imap_ok(s, "[COPYUID %u %s %s] COPY completed", dst.uidvalidity, src_uids.p,
			dst_uids.p);
	} else {
		imap_ok(s, "COPY completed");
	}
	ibuf_free(&src_uids);
	ibuf_free(&dst_uids);
}
