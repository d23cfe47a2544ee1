/*
 * cmd_enable.c - ENABLE (RFC 5161). CONDSTORE and QRESYNC (RFC 7162; QRESYNC
 * implies CONDSTORE, 3.2.3), IMAP4rev2 (RFC 9051 6.3.1) and UTF8=ACCEPT
 * (RFC 6855 3) can be enabled;
 * unknown names are ignored as the RFC requires.
 */
#include <config.h>

#include "imap/imap_int.h"

/* RFC 5161 3.1 */
void imap_cmd_enable(struct imap_session *s, struct imap_command *cmd)
{
	bool condstore = false, qresync = false, rev2 = false, utf8 = false;
	struct imap_buf b = {0};

	if (cmd->n_args == 0) {
		imap_bad(s, "ENABLE needs at least one capability name");
		return;
	}
	for (size_t i = 0; i < cmd->n_args; i++) {
		if (cmd->args[i].type != IMAP_ARG_ATOM) {
			imap_bad(s, "ENABLE takes capability names");
			return;
		}
		condstore |= imap_arg_is(&cmd->args[i], "CONDSTORE");
		qresync |= imap_arg_is(&cmd->args[i], "QRESYNC");
		rev2 |= imap_arg_is(&cmd->args[i], "IMAP4rev2");
		utf8 |= imap_arg_is(&cmd->args[i], "UTF8=ACCEPT");
	}
	/* RFC 5161 3.1: only what was not enabled before is listed. */
	ibuf_str(&b, "* ENABLED");
	if (condstore && !s->condstore)
		ibuf_str(&b, " CONDSTORE");
	if (qresync && !s->qresync)
		ibuf_str(&b, " QRESYNC");
	if (rev2 && !s->rev2)
		ibuf_str(&b, " IMAP4rev2");
	if (utf8 && !s->utf8_accept)
		ibuf_str(&b, " UTF8=ACCEPT");
	ibuf_str(&b, "\r\n");
	if (!b.failed)
		imap_write(s, b.p, b.len);
	ibuf_free(&b);
	s->condstore |= condstore || qresync;
	s->qresync |= qresync;
	s->rev2 |= rev2;
	s->utf8_accept |= utf8;
	s->utf8 |= rev2 || utf8;
	imap_ok(s, "ENABLE completed");
}
