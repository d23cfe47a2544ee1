/*
 * cmd_starttls.c - STARTTLS (RFC 3501 6.2.1).
 */
#include <config.h>

#include "imap/imap_int.h"
#include "util/i18n.h"
#include "util/log.h"

/* RFC 3501 6.2.1 */
void imap_cmd_starttls(struct imap_session *s, struct imap_command *cmd)
{
	if (cmd->n_args) {
		imap_bad(s, "STARTTLS takes no arguments");
		return;
	}
	if (conn_is_tls(s->c)) {
		imap_bad(s, "TLS is already active");
		return;
	}
	if (conn_listener(s->c)->tls != TLS_MODE_STARTTLS) {
		imap_no(s, "STARTTLS is not available on this port");
		return;
	}
	imap_ok(s, "Begin TLS negotiation now");
	s->busy = true; /* input sent before the handshake is discarded by net */
	if (conn_starttls(s->c) < 0) {
		log_warn(_("imap: STARTTLS failed for %s"), conn_peer_address(s->c));
		conn_close(s->c);
	}
}
