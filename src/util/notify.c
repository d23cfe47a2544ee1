/*
 * notify.c - per-mailbox change notification inside one process (see
 * notify.h). Subscribers sit in a small hash table under one mutex; a change
 * activates each matching subscriber's event, which libevent then runs on
 * the loop that owns it.
 */
#include <config.h>

#include <pthread.h>
#include <stdlib.h>

#include "util/notify.h"

#define NOTIFY_BUCKETS 256

struct notify_sub {
	int64_t mailbox_id;
	int64_t user_id;
	struct event *ev;
	void (*cb)(void *arg);
	void *arg;
	struct notify_sub *next;
};

static pthread_mutex_t notify_lock = PTHREAD_MUTEX_INITIALIZER;
static struct notify_sub *buckets[NOTIFY_BUCKETS];

static size_t bucket_of(int64_t mailbox_id)
{
	return (size_t)((uint64_t)mailbox_id % NOTIFY_BUCKETS);
}

static void fire(evutil_socket_t fd, short what, void *arg)
{
	struct notify_sub *sub = arg;
	(void)fd;
	(void)what;
	sub->cb(sub->arg);
}

struct notify_sub *notify_subscribe(int64_t mailbox_id, int64_t user_id, struct event_base *base,
				    void (*cb)(void *arg), void *arg)
{
	struct notify_sub *sub = calloc(1, sizeof(*sub));
	size_t b = bucket_of(mailbox_id);

	if (!sub)
		return NULL;
	sub->ev = event_new(base, -1, 0, fire, sub);
	if (!sub->ev) {
		free(sub);
		return NULL;
	}
	sub->mailbox_id = mailbox_id;
	sub->user_id = user_id;
	sub->cb = cb;
	sub->arg = arg;
	pthread_mutex_lock(&notify_lock);
	sub->next = buckets[b];
	buckets[b] = sub;
	pthread_mutex_unlock(&notify_lock);
	return sub;
}

void notify_unsubscribe(struct notify_sub *sub)
{
	struct notify_sub **pp;

	if (!sub)
		return;
	pthread_mutex_lock(&notify_lock);
	for (pp = &buckets[bucket_of(sub->mailbox_id)]; *pp; pp = &(*pp)->next) {
		if (*pp == sub) {
			*pp = sub->next;
			break;
		}
	}
	pthread_mutex_unlock(&notify_lock);
	/* event_free also removes a pending activation. */
	event_free(sub->ev);
	free(sub);
}

void notify_mailbox_changed(int64_t mailbox_id)
{
	pthread_mutex_lock(&notify_lock);
	for (struct notify_sub *s = buckets[bucket_of(mailbox_id)]; s; s = s->next)
		if (s->mailbox_id == mailbox_id)
			event_active(s->ev, EV_READ, 0);
	pthread_mutex_unlock(&notify_lock);
}

void notify_user_changed(int64_t user_id)
{
	/* Rare (once per delivery) and subscribers are few per bucket: a scan. */
	pthread_mutex_lock(&notify_lock);
	for (size_t b = 0; b < NOTIFY_BUCKETS; b++)
		for (struct notify_sub *s = buckets[b]; s; s = s->next)
			if (s->user_id == user_id)
				event_active(s->ev, EV_READ, 0);
	pthread_mutex_unlock(&notify_lock);
}
