/*
 * notify.h - in-process change notification per mailbox. A session that
 * shows a mailbox (IMAP SELECT, IDLE) subscribes with a callback on its own
 * event loop; whoever changes the mailbox (delivery, another session, POP3
 * expunge) calls notify_mailbox_changed() from any thread after the store
 * commit, and every subscriber's callback runs soon after on its own loop.
 * Needs libevent threading (evthread_use_pthreads, done by src/net).
 */
#ifndef POSTERN_NOTIFY_H
#define POSTERN_NOTIFY_H

#include <stdint.h>

#include <event2/event.h>

struct notify_sub;

/* CB(ARG) runs on BASE's loop after each change of MAILBOX_ID, which
 * belongs to USER_ID (several changes close together may run it once).
 * NULL when out of memory. */
struct notify_sub *notify_subscribe(int64_t mailbox_id, int64_t user_id, struct event_base *base,
				    void (*cb)(void *arg), void *arg);
/* Call on the subscriber's loop thread; CB does not run after this returns. */
void notify_unsubscribe(struct notify_sub *sub);
/* Thread-safe. */
void notify_mailbox_changed(int64_t mailbox_id);
/* Some mailbox of USER_ID changed (delivery, which knows users rather than
 * mailboxes); wakes every subscriber of that user. Thread-safe. */
void notify_user_changed(int64_t user_id);

#endif
