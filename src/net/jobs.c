/*
 * jobs.c - the job pools behind conn_defer() and conn_defer_lookup(): a few
 * threads, each with its own store handle, run slow work (Argon2id,
 * scanning, big decryptions) so the worker loops never block; a second
 * small pool runs short store lookups so they never wait behind that work.
 * The completion is sent back to the connection's own loop, where the
 * connection is resumed and DONE runs.
 */
#include <config.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "net/net_int.h"
#include "util/i18n.h"
#include "util/log.h"

/* Jobs mix CPU work (Argon2id, scanning, sealing) with waits on the store
 * (fsync, MariaDB round trips): two threads per core keep the cores busy
 * while some jobs wait. Each Argon2id run holds its memory cost (64 MiB by
 * default), which bounds how many threads are sensible. */
#define JOBS_MIN_THREADS 4
#define JOBS_MAX_THREADS 16
#define JOBS_PER_CORE 2
/* Lookups (conn_defer_lookup) are short store reads that mostly wait for
 * MariaDB: a few threads of their own, so that they never queue behind
 * deliveries in the main pool. */
#define LOOKUP_THREADS 4

struct job {
	struct conn *conn;
	struct event_base *base;
	conn_job_fn work;
	conn_done_fn done;
	void *arg;
	struct job *next;
};

struct job_thread {
	pthread_t thread;
	struct job_pool *pool;
	struct store *store;
	bool started, failed;
	char err[256];
};

struct job_pool {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct job *head, *tail;
	bool stopping;
	bool running;
	struct job_thread threads[JOBS_MAX_THREADS];
	size_t n_threads;
};

static struct job_pool general = {.lock = PTHREAD_MUTEX_INITIALIZER,
				  .cond = PTHREAD_COND_INITIALIZER};
static struct job_pool lookups = {.lock = PTHREAD_MUTEX_INITIALIZER,
				  .cond = PTHREAD_COND_INITIALIZER};
static const struct config *jobs_cfg;

/* On the connection's loop: resume, then the protocol's DONE, then a close
 * that waited for this job may go ahead. */
static void job_complete(evutil_socket_t fd, short what, void *arg)
{
	struct job *j = arg;
	struct conn *c = j->conn;

	(void)fd;
	(void)what;
	c->jobs_pending--;
	if (!c->closing)
		conn_resume(c);
	j->done(c, j->arg);
	if (c->closing && c->jobs_pending == 0)
		event_active(c->finish_ev, EV_TIMEOUT, 0);
	free(j);
}

static void *job_thread_main(void *arg)
{
	struct job_thread *t = arg;
	struct job_pool *p = t->pool;
	struct timeval now = {0, 0};

	t->store = net_store_open_thread(jobs_cfg, t->err, sizeof(t->err));
	pthread_mutex_lock(&p->lock);
	t->failed = net_store_configured() && t->store == NULL;
	t->started = true;
	pthread_cond_broadcast(&p->cond);
	for (;;) {
		struct job *j;

		while (!p->head && !p->stopping && !t->failed)
			pthread_cond_wait(&p->cond, &p->lock);
		if (p->stopping || t->failed)
			break;
		j = p->head;
		p->head = j->next;
		if (!p->head)
			p->tail = NULL;
		pthread_mutex_unlock(&p->lock);
		j->work(t->store, j->arg);
		if (event_base_once(j->base, -1, EV_TIMEOUT, job_complete, j, &now) != 0)
			log_error(_("cannot return a finished job to its connection"));
		pthread_mutex_lock(&p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	net_store_close_thread(t->store);
	t->store = NULL;
	return NULL;
}

static size_t thread_count(void)
{
	long cores = sysconf(_SC_NPROCESSORS_ONLN);

	if (cores < 1)
		cores = 1;
	if (cores * JOBS_PER_CORE < JOBS_MIN_THREADS)
		return JOBS_MIN_THREADS;
	return cores * JOBS_PER_CORE > JOBS_MAX_THREADS ? JOBS_MAX_THREADS
							: (size_t)(cores * JOBS_PER_CORE);
}

static void pool_stop(struct job_pool *p)
{
	if (!p->running)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	for (size_t i = 0; i < p->n_threads; i++)
		pthread_join(p->threads[i].thread, NULL);
	p->n_threads = 0;
	/* Jobs that never ran: their connections are ended by the shutdown. */
	pthread_mutex_lock(&p->lock);
	while (p->head) {
		struct job *j = p->head;
		p->head = j->next;
		free(j);
	}
	p->tail = NULL;
	p->running = false;
	pthread_mutex_unlock(&p->lock);
}

static int pool_start(struct job_pool *p, size_t n, char *err, size_t errlen)
{
	p->stopping = false;
	p->n_threads = 0;
	for (size_t i = 0; i < n; i++) {
		p->threads[i] = (struct job_thread){.pool = p};
		if (pthread_create(&p->threads[i].thread, NULL, job_thread_main, &p->threads[i]) !=
		    0) {
			snprintf(err, errlen, "%s", _("cannot start a job thread"));
			p->running = true;
			pool_stop(p);
			return -1;
		}
		p->n_threads++;
	}
	p->running = true;
	pthread_mutex_lock(&p->lock);
	for (size_t i = 0; i < p->n_threads; i++)
		while (!p->threads[i].started)
			pthread_cond_wait(&p->cond, &p->lock);
	pthread_mutex_unlock(&p->lock);
	for (size_t i = 0; i < p->n_threads; i++) {
		if (p->threads[i].failed) {
			snprintf(err, errlen, _("job thread cannot open the store: %s"),
				 p->threads[i].err);
			pool_stop(p);
			return -1;
		}
	}
	return 0;
}

int jobs_start(const struct config *cfg, char *err, size_t errlen)
{
	jobs_cfg = cfg;
	if (pool_start(&general, thread_count(), err, errlen) != 0)
		return -1;
	if (pool_start(&lookups, LOOKUP_THREADS, err, errlen) != 0) {
		pool_stop(&general);
		return -1;
	}
	return 0;
}

void jobs_stop(void)
{
	pool_stop(&lookups);
	pool_stop(&general);
}

static int pool_submit(struct job_pool *p, struct conn *c, conn_job_fn work, conn_done_fn done,
		       void *arg)
{
	struct job *j;

	if (!work || !done)
		return -1;
	j = calloc(1, sizeof(*j));
	if (!j)
		return -1;
	j->conn = c;
	j->base = c->worker->base;
	j->work = work;
	j->done = done;
	j->arg = arg;
	pthread_mutex_lock(&p->lock);
	if (!p->running || p->stopping) {
		pthread_mutex_unlock(&p->lock);
		free(j);
		return -1;
	}
	if (p->tail)
		p->tail->next = j;
	else
		p->head = j;
	p->tail = j;
	c->jobs_pending++;
	pthread_cond_signal(&p->cond); /* one job wakes one thread */
	pthread_mutex_unlock(&p->lock);
	conn_pause(c);
	return 0;
}

int jobs_submit(struct conn *c, conn_job_fn work, conn_done_fn done, void *arg)
{
	return pool_submit(&general, c, work, done, arg);
}

int jobs_submit_lookup(struct conn *c, conn_job_fn work, conn_done_fn done, void *arg)
{
	return pool_submit(&lookups, c, work, done, arg);
}
