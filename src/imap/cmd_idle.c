/*
 * cmd_idle.c - IDLE (RFC 2177). While idling, changes to the selected
 * mailbox arrive through src/util/notify (imap_mailbox.c subscribes at
 * SELECT) and are reported at once; DONE ends it. Changes made outside this
 * process (another node on the same MariaDB, admin tools) are found by the
 * view's catch-up read every IMAP_IDLE_POLL_SEC seconds (one row when
 * nothing changed).
 */
#include <config.h>

#include <string.h>
#include <strings.h>

#include <event2/event.h>

#include "imap/imap_int.h"

#define IMAP_IDLE_POLL_SEC 5

static void idle_poll_arm(struct imap_session *s);

static void idle_poll_cb(evutil_socket_t fd, short what, void *arg)
{
	struct imap_session *s = arg;
	(void)fd;
	(void)what;

	if (!s->idling || s->state != IMAP_STATE_SELECTED || conn_is_closing(s->c))
		return;
	imap_sync(s, true);
	idle_poll_arm(s);
}

static void idle_poll_arm(struct imap_session *s)
{
	struct timeval tv = {IMAP_IDLE_POLL_SEC, 0};

	if (!s->idle_poll)
		s->idle_poll = evtimer_new(conn_base(s->c), idle_poll_cb, s);
	if (s->idle_poll)
		evtimer_add(s->idle_poll, &tv);
}

/* RFC 2177 3 */
void imap_cmd_idle(struct imap_session *s, struct imap_command *cmd)
{
	if (cmd->n_args) {
		imap_bad(s, "IDLE takes no arguments");
		return;
	}
	s->idling = true;
	imap_printf(s, "+ idling\r\n");
	/* What happened before IDLE is reported now. */
	if (s->state == IMAP_STATE_SELECTED) {
		imap_sync(s, true);
		idle_poll_arm(s);
	}
}

void imap_idle_done(struct imap_session *s, const char *line, size_t len)
{
	s->idling = false;
	s->allow_expunge = true;
	if (s->idle_poll)
		evtimer_del(s->idle_poll);
	if (len == 4 && strncasecmp(line, "DONE", 4) == 0)
		imap_ok(s, "IDLE terminated");
	else
		imap_bad(s, "Expected DONE to end IDLE");
}
