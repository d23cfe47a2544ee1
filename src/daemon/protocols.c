/*
 * protocols.c - registers the protocols built into posternd. Each protocol
 * layer offers a <name>_register() that calls net_register_protocol(); a
 * listener whose protocol is not registered here stops posternd at startup.
 */
#include <config.h>

#include "daemon/protocols.h"

/* One include per protocol layer, below. */
#include "imap/imap.h"
#include "pop3/pop3.h"
#include "smtp/smtp.h"

void protocols_register_all(void)
{
	/* One <protocol>_register() call per protocol layer, below. */
	smtp_register();
	pop3_register();
	imap_register();
}
