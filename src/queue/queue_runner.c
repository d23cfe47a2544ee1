/*
 * queue_runner.c - the outbound delivery thread of posternd. It wakes every
 * [queue] poll_interval seconds (or when woken), takes the due entries of
 * the durable queue, opens each with the server queue key, finds where the
 * recipient's mail goes (relayhost, or MX in preference order with the
 * implicit MX fallback; null MX refuses), and hands it over with the SMTP
 * client. Delivered entries are deleted; temporary failures are retried with
 * a doubling delay until [queue] max_age; permanent failures and expiry send
 * a DSN (RFC 3464) to the sender, delivered like any other message.
 *
 * The thread has its own store handle and resolver. Held entries
 * ("posternctl queue hold") are skipped.
 */
#include <config.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "crypto/crypto.h"
#include "deliver/deliver.h"
#include "queue/queue.h"
#include "store/store.h"
#include "trace/trace.h"
#include "util/i18n.h"
#include "util/log.h"

#define RUNNER_BATCH_MAX 1000		      /* entries per pass */
#define RUNNER_TRACE_BASE (UINT64_C(1) << 62) /* trace ids of delivery attempts */
#define RUNNER_STOP_WAIT_SEC 5

struct runner {
	const struct config *cfg;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	bool started, stop, wake;
	/* owned by the thread */
	struct store *st;
	struct queue_resolver *resolver;
	struct user_key *qkey;
};

static struct runner runner = {
    .mu = PTHREAD_MUTEX_INITIALIZER,
    .cond = PTHREAD_COND_INITIALIZER,
};

struct due_list {
	struct store_queue_entry *items;
	size_t n, cap;
	int64_t now;
};

static int collect_due(void *arg, const struct store_queue_entry *e)
{
	struct due_list *due = arg;

	if (e->next_attempt > due->now ||
	    strncmp(e->last_error, QUEUE_HOLD_MARK, strlen(QUEUE_HOLD_MARK)) == 0)
		return 0;
	if (due->n == RUNNER_BATCH_MAX)
		return 0;
	if (due->n == due->cap) {
		size_t cap = due->cap ? due->cap * 2 : 16;
		struct store_queue_entry *p = realloc(due->items, cap * sizeof(*p));
		if (!p)
			return 0;
		due->items = p;
		due->cap = cap;
	}
	due->items[due->n++] = *e;
	return 0;
}

static void addr_text(const struct sockaddr_storage *ss, char *out, size_t outlen)
{
	const void *a =
	    ss->ss_family == AF_INET6
		? (const void *)&((const struct sockaddr_in6 *)(const void *)ss)->sin6_addr
		: (const void *)&((const struct sockaddr_in *)(const void *)ss)->sin_addr;

	if (!inet_ntop(ss->ss_family, a, out, (socklen_t)outlen))
		snprintf(out, outlen, "?");
}

/* Tries the destinations of E's domain in order. MTA gets the host that gave the final answer. */
static enum queue_result route_and_send(const struct store_queue_entry *e, const unsigned char *msg,
					size_t len, uint64_t trace_id,
					struct queue_reply_info *info, char *mta, size_t mtalen)
{
	const struct config *cfg = runner.cfg;
	const char *domain = queue_address_domain(e->recipient);
	struct queue_mx mx[QUEUE_MX_MAX];
	struct sockaddr_storage addrs[QUEUE_ADDR_MAX];
	size_t n_mx = 0, n_addrs;
	uint16_t port = cfg->queue.remote_port;
	bool implicit = false;
	enum queue_result res;
	char err[512] = "", ip[64], text[1024];
	struct queue_message m = {
	    .sender = e->sender,
	    .recipient = e->recipient,
	    .dsn_notify = e->dsn_notify,
	    .dsn_orcpt = e->dsn_orcpt,
	    .dsn_ret = e->dsn_ret,
	    .dsn_envid = e->dsn_envid,
	    .data = msg,
	    .len = len,
	};
	struct queue_session_opts opts = {
	    .helo = cfg->server.hostname,
	    .timeout = cfg->queue.timeout,
	    .tls_required = queue_domain_in_list(cfg->queue.tls_required, domain),
	};

	memset(info, 0, sizeof(*info));
	if (cfg->queue.relayhost[0]) {
		if (queue_parse_hostport(cfg->queue.relayhost, port, mx[0].host, sizeof(mx[0].host),
					 &port) != 0) {
			snprintf(info->text, sizeof(info->text), "relayhost %s is malformed",
				 cfg->queue.relayhost);
			snprintf(info->enhanced, sizeof(info->enhanced), "4.3.5");
			return QUEUE_TEMPFAIL;
		}
		mx[0].preference = 0;
		n_mx = 1;
	} else {
		if (domain[0] == '\0') {
			snprintf(info->text, sizeof(info->text), "recipient has no domain");
			snprintf(info->enhanced, sizeof(info->enhanced), "5.1.3");
			return QUEUE_PERMFAIL;
		}
		res = queue_resolve_mx(runner.resolver, domain, mx, QUEUE_MX_MAX, &n_mx, err,
				       sizeof(err));
		if (res != QUEUE_OK) {
			snprintf(info->text, sizeof(info->text), "%s", err);
			snprintf(info->enhanced, sizeof(info->enhanced),
				 res == QUEUE_PERMFAIL ? "5.1.2" : "4.4.3");
			return res;
		}
		if (queue_mx_is_null(mx, n_mx)) {
			snprintf(info->text, sizeof(info->text),
				 "domain %s accepts no mail (null MX)", domain);
			snprintf(info->enhanced, sizeof(info->enhanced), "5.1.10");
			return QUEUE_PERMFAIL;
		}
		if (n_mx == 0) { /* RFC 5321 5.1: the domain itself is the implicit MX */
			snprintf(mx[0].host, sizeof(mx[0].host), "%s", domain);
			mx[0].preference = 0;
			n_mx = 1;
			implicit = true;
		}
	}

	res = QUEUE_TEMPFAIL;
	for (size_t i = 0; i < n_mx; i++) {
		enum queue_result lookup;

		if (mx[i].host[0] == '\0')
			continue; /* a root exchange among others: nothing to try */
		lookup = queue_resolve_host(runner.resolver, mx[i].host, port, addrs,
					    QUEUE_ADDR_MAX, &n_addrs, err, sizeof(err));
		if (lookup != QUEUE_OK) {
			snprintf(info->text, sizeof(info->text), "%s", err);
			snprintf(info->enhanced, sizeof(info->enhanced),
				 lookup == QUEUE_PERMFAIL && implicit ? "5.1.2" : "4.4.3");
			if (lookup == QUEUE_PERMFAIL && implicit)
				res = QUEUE_PERMFAIL;
			continue;
		}
		opts.peer_name = mx[i].host;
		for (size_t k = 0; k < n_addrs; k++) {
			addr_text(&addrs[k], ip, sizeof(ip));
			snprintf(text, sizeof(text), "connecting to %.255s [%.63s]:%u for <%.255s>",
				 mx[i].host, ip, (unsigned)port, e->recipient);
			trace_publish(trace_id, "queue", "", TRACE_CONNECT, 0, text);
			res = queue_smtp_deliver(&addrs[k], &opts, &m, info);
			snprintf(mta, mtalen, "%.255s", mx[i].host);
			if (info->tls_version[0]) {
				snprintf(text, sizeof(text), "%.31s %.127s peer=%.255s",
					 info->tls_version, info->tls_cipher, mx[i].host);
				trace_publish(trace_id, "queue", "", TRACE_TLS, 0, text);
			}
			trace_publish(trace_id, "queue", "", TRACE_REPLY, 0, info->text);
			if (res != QUEUE_TEMPFAIL)
				return res;
		}
	}
	return res;
}

/* Whether the sender asked for (or by default gets) a DSN with ACTION (RFC 3461 4.1). */
static bool dsn_wanted(const struct store_queue_entry *e, const char *action)
{
	const char *notify = e->dsn_notify;
	const char *want = strcmp(action, "failed") == 0    ? "FAILURE"
			   : strcmp(action, "delayed") == 0 ? "DELAY"
							    : "SUCCESS";

	if (e->sender[0] == '\0')
		return false; /* never answer a bounce with a bounce */
	if (notify[0] == '\0')
		return strcmp(want, "SUCCESS") != 0;
	return queue_domain_in_list(notify, want);
}

/* Sends a DSN about E to its sender. 0, or -1 when it could not be stored. */
static int send_dsn(struct store *st, const struct store_queue_entry *e, const char *action,
		    const char *status, const char *mta, const char *diagnostic,
		    const unsigned char *msg, size_t len)
{
	const struct config *cfg = runner.cfg;
	unsigned char rnd[16];
	char hex[33], boundary[64], msgid[400], *report = NULL;
	size_t report_len = 0;
	bool local;
	struct deliver_report drep;
	enum deliver_status ds;
	int64_t now = (int64_t)time(NULL);
	struct queue_dsn d = {
	    .reporting_mta = cfg->server.hostname,
	    .sender = e->sender,
	    .recipient = e->recipient,
	    .orcpt = e->dsn_orcpt,
	    .envid = e->dsn_envid,
	    .action = action,
	    .status = status,
	    .remote_mta = mta,
	    .diagnostic = diagnostic,
	    .full = strcasecmp(e->dsn_ret, "FULL") == 0,
	    .arrival = e->created,
	    .now = now,
	    .boundary = boundary,
	    .message_id = msgid,
	};
	struct deliver_envelope env = {
	    .sender = "",
	    .helo = cfg->server.hostname,
	    .client_ip = "127.0.0.1",
	    .protocol = "LOCAL",
	    .received_at = now,
	    .session_id = RUNNER_TRACE_BASE | (uint64_t)e->id,
	};
	struct deliver_recipient rcpt = {.address = e->sender};

	if (!dsn_wanted(e, action))
		return 0;
	randombytes_buf(rnd, sizeof(rnd));
	sodium_bin2hex(hex, sizeof(hex), rnd, sizeof(rnd));
	snprintf(boundary, sizeof(boundary), "=_dsn_%s", hex);
	snprintf(msgid, sizeof(msgid), "dsn.%s@%s", hex, cfg->server.hostname);
	if (queue_dsn_format(&d, msg, len, &report, &report_len) != 0)
		return -1;
	local = store_domain_exists(st, queue_address_domain(e->sender)) == STORE_OK;
	ds = deliver_message(st, cfg, &env, &rcpt, &local, 1, (const unsigned char *)report,
			     report_len, &drep);
	free(report);
	if (ds != DELIVER_OK) {
		log_warn(_("queue: the delivery report for <%s> could not be stored: %s"),
			 e->sender, drep.message);
		return -1;
	}
	log_info(_("queue: sent a delivery report (%s) to <%s>"), action, e->sender);
	return 0;
}

/* Puts a DKIM signature in front of *MSG when its From domain has a key.
 * A message that cannot be signed leaves unsigned rather than not at all. */
static void sign_message(const struct store_queue_entry *e, unsigned char **msg, size_t *len)
{
	char *sig = NULL, err[512];
	unsigned char *out;
	size_t slen;

	if (queue_dkim_sign(runner.cfg, *msg, *len, &sig, err, sizeof(err)) != 0) {
		log_warn(_("queue: %lld leaves unsigned: %s"), (long long)e->id, err);
		return;
	}
	if (!sig)
		return;
	slen = strlen(sig);
	out = malloc(slen + *len);
	if (out) {
		memcpy(out, sig, slen);
		memcpy(out + slen, *msg, *len);
		sodium_memzero(*msg, *len);
		free(*msg);
		*msg = out;
		*len += slen;
	}
	free(sig);
}

static void attempt(struct store *st, const struct store_queue_entry *e)
{
	const struct config *cfg = runner.cfg;
	unsigned char *blob = NULL, *msg = NULL;
	size_t blob_len = 0, len = 0;
	struct queue_reply_info info;
	enum queue_result res;
	char mta[QUEUE_HOST_MAX] = "", err[600];
	int64_t now;
	uint64_t trace_id = RUNNER_TRACE_BASE | (uint64_t)e->id;
	int attempts = e->attempts + 1;

	if (store_queue_blob(st, e->id, &blob, &blob_len) != STORE_OK)
		return; /* deleted meanwhile, or the store is down: the next pass sees */
	if (crypto_open(runner.qkey, blob, blob_len, &msg, &len) != 0) {
		free(blob);
		log_error(_("queue: entry %lld cannot be opened with the queue key"),
			  (long long)e->id);
		store_queue_update(st, e->id, attempts, QUEUE_HOLD_TIME,
				   QUEUE_HOLD_MARK "cannot be opened with the queue key");
		return;
	}
	free(blob);
	sign_message(e, &msg, &len);

	res = route_and_send(e, msg, len, trace_id, &info, mta, sizeof(mta));
	now = (int64_t)time(NULL);
	if (res == QUEUE_OK) {
		log_info(_("queue: delivered %lld to <%s> via %s%s%s: %s"), (long long)e->id,
			 e->recipient, mta, info.tls_version[0] ? " with " : "", info.tls_version,
			 info.text);
		/* RFC 3461 4.1: a peer with DSN takes NOTIFY over; otherwise we report. */
		if (!info.peer_dsn && dsn_wanted(e, "relayed"))
			send_dsn(st, e, "relayed", "2.0.0", mta, info.text, msg, len);
		store_queue_del(st, e->id);
	} else if (res == QUEUE_PERMFAIL || now - e->created >= (int64_t)cfg->queue.max_age) {
		const char *status = info.enhanced[0] ? info.enhanced : "5.0.0";

		if (res != QUEUE_PERMFAIL) {
			snprintf(err, sizeof(err), "delivery time expired; last error: %s",
				 info.text);
			status = "4.4.7";
		} else {
			snprintf(err, sizeof(err), "%s", info.text);
		}
		log_info(_("queue: giving up on %lld to <%s>: %s"), (long long)e->id, e->recipient,
			 err);
		if (send_dsn(st, e, "failed", status, mta, err, msg, len) == 0)
			store_queue_del(st, e->id);
		else
			store_queue_update(st, e->id, attempts,
					   now + queue_retry_delay(attempts, cfg->queue.retry_min,
								   cfg->queue.retry_max),
					   "bounce pending: the report could not be stored");
	} else {
		int64_t delay =
		    queue_retry_delay(attempts, cfg->queue.retry_min, cfg->queue.retry_max);

		bool warned = strstr(e->last_error, QUEUE_WARNED_MARK) != NULL;

		snprintf(err, sizeof(err), "%s%s", mta, mta[0] ? ": " : "");
		snprintf(err + strlen(err), sizeof(err) - strlen(err), "%s", info.text);
		/* RFC 3464 "delayed": once, after [queue] delay_warning seconds */
		if (!warned && cfg->queue.delay_warning &&
		    now - e->created >= (int64_t)cfg->queue.delay_warning) {
			send_dsn(st, e, "delayed", info.enhanced[0] ? info.enhanced : "4.0.0", mta,
				 err, msg, len);
			warned = true;
		}
		log_info(_("queue: deferred %lld to <%s> (attempt %d, next in %llds): %s"),
			 (long long)e->id, e->recipient, attempts, (long long)delay, err);
		if (warned) {
			char marked[sizeof(err) + sizeof(QUEUE_WARNED_MARK)];

			snprintf(marked, sizeof(marked), "%s%s", QUEUE_WARNED_MARK, err);
			store_queue_update(st, e->id, attempts, now + delay, marked);
		} else {
			store_queue_update(st, e->id, attempts, now + delay, err);
		}
	}
	sodium_memzero(msg, len);
	free(msg);
}

static bool stopping(void)
{
	bool stop;

	pthread_mutex_lock(&runner.mu);
	stop = runner.stop;
	pthread_mutex_unlock(&runner.mu);
	return stop;
}

/* The due entries of one pass, shared by its delivery workers. At most
 * [queue] per_domain of them go to the same recipient domain at once, so one
 * slow destination holds up its own mail, not everyone's. */
struct pass {
	const struct store_queue_entry *items;
	size_t n;
	bool *taken;
	const char *inflight[QUEUE_WORKERS_MAX]; /* recipient domains being delivered to */
	pthread_mutex_t mu;
	pthread_cond_t cond;
};

static unsigned inflight_count(const struct pass *p, const char *domain)
{
	unsigned n = 0;

	for (size_t i = 0; i < QUEUE_WORKERS_MAX; i++)
		if (p->inflight[i] && strcasecmp(p->inflight[i], domain) == 0)
			n++;
	return n;
}

/* Takes the next entry whose domain has room; -1 when none is left. */
static ssize_t pass_take(struct pass *p, size_t *slot)
{
	unsigned limit = runner.cfg->queue.per_domain ? runner.cfg->queue.per_domain : 1;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		bool left = false;

		if (stopping()) {
			pthread_mutex_unlock(&p->mu);
			return -1;
		}

		for (size_t i = 0; i < p->n; i++) {
			const char *domain = queue_address_domain(p->items[i].recipient);

			if (p->taken[i])
				continue;
			left = true;
			if (inflight_count(p, domain) >= limit)
				continue;
			for (*slot = 0; *slot < QUEUE_WORKERS_MAX && p->inflight[*slot]; (*slot)++)
				;
			if (*slot == QUEUE_WORKERS_MAX)
				break;
			p->taken[i] = true;
			p->inflight[*slot] = domain;
			pthread_mutex_unlock(&p->mu);
			return (ssize_t)i;
		}
		if (!left) {
			pthread_mutex_unlock(&p->mu);
			return -1;
		}
		pthread_cond_wait(&p->cond, &p->mu);
	}
}

static void pass_release(struct pass *p, size_t slot)
{
	pthread_mutex_lock(&p->mu);
	p->inflight[slot] = NULL;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->mu);
}

static void pass_work(struct pass *p, struct store *st)
{
	ssize_t i;
	size_t slot;

	while ((i = pass_take(p, &slot)) >= 0) {
		attempt(st, &p->items[i]);
		pass_release(p, slot);
	}
}

static void *worker_main(void *arg)
{
	struct pass *p = arg;
	char err[512];
	struct store *st = store_open(&runner.cfg->store, err, sizeof(err));

	if (!st) {
		log_warn(_("queue: a delivery worker cannot open the store: %s"), err);
		return NULL;
	}
	pass_work(p, st);
	store_close(st);
	return NULL;
}

/* Delivers ITEMS with up to [queue] workers threads (the runner's own
 * store serves the first of them). */
static void dispatch(const struct store_queue_entry *items, size_t n)
{
	struct pass p = {.items = items, .n = n};
	pthread_t threads[QUEUE_WORKERS_MAX];
	size_t workers = runner.cfg->queue.workers ? runner.cfg->queue.workers : 1, started = 0;

	if (n == 0)
		return;
	if (workers > QUEUE_WORKERS_MAX)
		workers = QUEUE_WORKERS_MAX;
	if (workers > n)
		workers = n;
	p.taken = calloc(n, sizeof(*p.taken));
	if (!p.taken)
		return;
	pthread_mutex_init(&p.mu, NULL);
	pthread_cond_init(&p.cond, NULL);
	for (size_t i = 1; i < workers; i++)
		if (pthread_create(&threads[started], NULL, worker_main, &p) == 0)
			started++;
	pass_work(&p, runner.st);
	for (size_t i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	pthread_cond_destroy(&p.cond);
	pthread_mutex_destroy(&p.mu);
	free(p.taken);
}

/* One pass over the due entries. Returns false when the store or key is unusable. */
static bool run_pass(void)
{
	const struct config *cfg = runner.cfg;
	struct due_list due = {.now = (int64_t)time(NULL)};
	char err[512];

	if (!runner.st && !(runner.st = store_open(&cfg->store, err, sizeof(err)))) {
		log_error(_("queue: cannot open the store: %s"), err);
		return false;
	}
	if (!runner.qkey && crypto_server_key_load(cfg->queue.key_file, &runner.qkey) != 0) {
		log_error(_("queue: cannot load the queue key %s"), cfg->queue.key_file);
		return false;
	}
	if (!runner.resolver &&
	    !(runner.resolver = queue_resolver_new(cfg->queue.resolver, err, sizeof(err)))) {
		log_error(_("queue: %s"), err);
		return false;
	}
	if (store_queue_list(runner.st, collect_due, &due) != STORE_OK) {
		log_warn(_("queue: cannot list the queue: %s"), store_error(runner.st));
		free(due.items);
		store_close(runner.st);
		runner.st = NULL;
		return false;
	}
	dispatch(due.items, due.n);
	free(due.items);
	return true;
}

static void *runner_main(void *arg)
{
	unsigned interval = runner.cfg->queue.poll_interval ? runner.cfg->queue.poll_interval : 1;

	(void)arg;
	for (;;) {
		struct timespec until;

		run_pass();
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += interval;
		pthread_mutex_lock(&runner.mu);
		while (!runner.stop && !runner.wake)
			if (pthread_cond_timedwait(&runner.cond, &runner.mu, &until) != 0)
				break;
		runner.wake = false;
		if (runner.stop) {
			pthread_mutex_unlock(&runner.mu);
			break;
		}
		pthread_mutex_unlock(&runner.mu);
	}
	queue_resolver_free(runner.resolver);
	user_key_free(runner.qkey);
	if (runner.st)
		store_close(runner.st);
	runner.resolver = NULL;
	runner.qkey = NULL;
	runner.st = NULL;
	return NULL;
}

int queue_runner_start(const struct config *cfg, char *err, size_t errlen)
{
	runner.cfg = cfg;
	runner.stop = runner.wake = false;
	if (pthread_create(&runner.thread, NULL, runner_main, NULL) != 0) {
		snprintf(err, errlen, "%s", _("cannot start the outbound queue thread"));
		return -1;
	}
	runner.started = true;
	return 0;
}

void queue_runner_wake(void)
{
	pthread_mutex_lock(&runner.mu);
	runner.wake = true;
	pthread_cond_signal(&runner.cond);
	pthread_mutex_unlock(&runner.mu);
}

void queue_runner_stop(void)
{
	struct timespec until;

	if (!runner.started)
		return;
	pthread_mutex_lock(&runner.mu);
	runner.stop = true;
	pthread_cond_signal(&runner.cond);
	pthread_mutex_unlock(&runner.mu);
	/* An SMTP exchange in progress may take up to the timeout; shutdown does not wait for it.
	 */
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += RUNNER_STOP_WAIT_SEC;
	if (pthread_timedjoin_np(runner.thread, NULL, &until) != 0) {
		log_warn(_("queue: delivery still in progress at shutdown; it is retried later"));
		pthread_detach(runner.thread);
	}
	runner.started = false;
}
