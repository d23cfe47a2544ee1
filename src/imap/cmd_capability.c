/*
 * cmd_capability.c - CAPABILITY (RFC 3501 6.1.1). Credentials are only
 * accepted over TLS, so before it LOGINDISABLED is shown instead of AUTH=.
 * IMAP4rev2 (RFC 9051) is offered beside IMAP4rev1; ENABLE IMAP4rev2 picks it.
 * Only what is implemented is listed (docs/imap.md).
 */
#include <config.h>

#include <stdio.h>

#include "imap/imap_int.h"

/* What a TLS session offers besides AUTH=; each is in docs/imap.md. */
#define EXTENSIONS                                                                                 \
	"IDLE UIDPLUS MOVE SEARCHRES MULTIAPPEND SPECIAL-USE CHILDREN NAMESPACE UNSELECT "         \
	"CONDSTORE QRESYNC ESEARCH QUOTA QUOTA=RES-STORAGE STATUS=SIZE LIST-EXTENDED "             \
	"LIST-STATUS SORT THREAD=ORDEREDSUBJECT THREAD=REFERENCES BINARY COMPRESS=DEFLATE "        \
	"UTF8=ACCEPT"

void imap_capabilities(struct imap_session *s, char *out, size_t outlen)
{
	if (!conn_is_tls(s->c))
		snprintf(out, outlen, "IMAP4rev1 IMAP4rev2 %sLOGINDISABLED LITERAL+ ID ENABLE",
			 conn_listener(s->c)->tls == TLS_MODE_STARTTLS ? "STARTTLS " : "");
	else if (s->state == IMAP_STATE_NOT_AUTH)
		snprintf(out, outlen,
			 "IMAP4rev1 IMAP4rev2 LITERAL+ AUTH=PLAIN SASL-IR ID ENABLE " EXTENSIONS
			 " APPENDLIMIT=%zu",
			 s->cfg->limits.max_message_size);
	else
		snprintf(out, outlen,
			 "IMAP4rev1 IMAP4rev2 LITERAL+ ID ENABLE " EXTENSIONS " APPENDLIMIT=%zu",
			 s->cfg->limits.max_message_size);
}

/* RFC 3501 6.1.1 */
void imap_cmd_capability(struct imap_session *s, struct imap_command *cmd)
{
	char caps[IMAP_CAPABILITIES_MAX];

	if (cmd->n_args) {
		imap_bad(s, "CAPABILITY takes no arguments");
		return;
	}
	imap_capabilities(s, caps, sizeof(caps));
	imap_untagged(s, "CAPABILITY %s", caps);
	imap_ok(s, "CAPABILITY completed");
}
