/*
 * jobs.c - the job pool behind conn_defer(): a few threads, each with its
 * own store handle, run slow work (Argon2id, scanning, big decryptions) so
 * the worker loops never block. The completion is sent back to the
 * connection's own loop, where the connection is resumed and DONE runs.
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
	struct store *store;
	bool started, failed;
	char err[256];
};

static pthread_mutex_t jobs_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t jobs_cond = PTHREAD_COND_INITIALIZER;
static struct job *queue_head, *queue_tail;
static bool jobs_stopping;
static bool jobs_running;
static struct job_thread threads[JOBS_MAX_THREADS];
static size_t n_threads;
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
	struct timeval now = {0, 0};

	t->store = net_store_open_thread(jobs_cfg, t->err, sizeof(t->err));
	pthread_mutex_lock(&jobs_lock);
	t->failed = net_store_configured() && t->store == NULL;
	t->started = true;
	pthread_cond_broadcast(&jobs_cond);
	for (;;) {
		struct job *j;

		while (!queue_head && !jobs_stopping && !t->failed)
			pthread_cond_wait(&jobs_cond, &jobs_lock);
		if (jobs_stopping || t->failed)
			break;
		j = queue_head;
		queue_head = j->next;
		if (!queue_head)
			queue_tail = NULL;
		pthread_mutex_unlock(&jobs_lock);
		j->work(t->store, j->arg);
		if (event_base_once(j->base, -1, EV_TIMEOUT, job_complete, j, &now) != 0)
			log_error(_("cannot return a finished job to its connection"));
		pthread_mutex_lock(&jobs_lock);
	}
	pthread_mutex_unlock(&jobs_lock);
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

int jobs_start(const struct config *cfg, char *err, size_t errlen)
{
	size_t n = thread_count();

	jobs_cfg = cfg;
	jobs_stopping = false;
	n_threads = 0;
	for (size_t i = 0; i < n; i++) {
		threads[i] = (struct job_thread){0};
		if (pthread_create(&threads[i].thread, NULL, job_thread_main, &threads[i]) != 0) {
			snprintf(err, errlen, "%s", _("cannot start a job thread"));
			jobs_running = true;
			jobs_stop();
			return -1;
		}
		n_threads++;
	}
	jobs_running = true;
	pthread_mutex_lock(&jobs_lock);
	for (size_t i = 0; i < n_threads; i++)
		while (!threads[i].started)
			pthread_cond_wait(&jobs_cond, &jobs_lock);
	pthread_mutex_unlock(&jobs_lock);
	for (size_t i = 0; i < n_threads; i++) {
		if (threads[i].failed) {
			snprintf(err, errlen, _("job thread cannot open the store: %s"),
				 threads[i].err);
			jobs_stop();
			return -1;
		}
	}
	return 0;
}

void jobs_stop(void)
{
	if (!jobs_running)
		return;
	pthread_mutex_lock(&jobs_lock);
	jobs_stopping = true;
	pthread_cond_broadcast(&jobs_cond);
	pthread_mutex_unlock(&jobs_lock);
	for (size_t i = 0; i < n_threads; i++)
		pthread_join(threads[i].thread, NULL);
	n_threads = 0;
	/* Jobs that never ran: their connections are ended by the shutdown. */
	pthread_mutex_lock(&jobs_lock);
	while (queue_head) {
		struct job *j = queue_head;
		queue_head = j->next;
		free(j);
	}
	queue_tail = NULL;
	jobs_running = false;
	pthread_mutex_unlock(&jobs_lock);
}

int jobs_submit(struct conn *c, conn_job_fn work, conn_done_fn done, void *arg)
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
	pthread_mutex_lock(&jobs_lock);
	if (!jobs_running || jobs_stopping) {
		pthread_mutex_unlock(&jobs_lock);
		free(j);
		return -1;
	}
	if (queue_tail)
		queue_tail->next = j;
	else
		queue_head = j;
	queue_tail = j;
	c->jobs_pending++;
	pthread_cond_broadcast(&jobs_cond);
	pthread_mutex_unlock(&jobs_lock);
	conn_pause(c);
	return 0;
}
