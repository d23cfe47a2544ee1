/*
 * queue_runner.c - the outbound delivery thread of posternd. It wakes every
 * [queue] poll_interval seconds (or when woken), takes the due entries of
 * the durable queue and groups them into jobs: the recipients of one
 * message at one domain go in one SMTP transaction. Workers open each
 * entry with the server queue key, find where the domain's mail goes
 * (relayhost, or MX in preference order with the implicit MX fallback; null
 * MX refuses), and hand the message over with the SMTP client, keeping the
 * connection for the next job to the same host. Each recipient's answer
 * decides its entry: delivered entries are deleted; temporary failures are
 * retried with a doubling delay until [queue] max_age; permanent failures
 * and expiry send a DSN (RFC 3464) to the sender, delivered like any other
 * message.
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

/* The hosts mail for DOMAIN goes to, in order, into MX (*N of them), with
 * *PORT and *IMPLICIT (no MX records: the domain itself). QUEUE_OK, or the
 * failure with INFO set. */
static enum queue_result route(const char *domain, struct queue_mx *mx, size_t *n, uint16_t *port,
			       bool *implicit, struct queue_reply_info *info)
{
	const struct config *cfg = runner.cfg;
	enum queue_result res;
	char err[512] = "";

	*port = cfg->queue.remote_port;
	*implicit = false;
	*n = 0;
	if (cfg->queue.relayhost[0]) {
		if (queue_parse_hostport(cfg->queue.relayhost, *port, mx[0].host,
					 sizeof(mx[0].host), port) != 0) {
			snprintf(info->text, sizeof(info->text), "relayhost %s is malformed",
				 cfg->queue.relayhost);
			snprintf(info->enhanced, sizeof(info->enhanced), "4.3.5");
			return QUEUE_TEMPFAIL;
		}
		mx[0].preference = 0;
		*n = 1;
		return QUEUE_OK;
	}
	if (domain[0] == '\0') {
		snprintf(info->text, sizeof(info->text), "recipient has no domain");
		snprintf(info->enhanced, sizeof(info->enhanced), "5.1.3");
		return QUEUE_PERMFAIL;
	}
	res = queue_resolve_mx(runner.resolver, domain, mx, QUEUE_MX_MAX, n, err, sizeof(err));
	if (res != QUEUE_OK) {
		snprintf(info->text, sizeof(info->text), "%s", err);
		snprintf(info->enhanced, sizeof(info->enhanced),
			 res == QUEUE_PERMFAIL ? "5.1.2" : "4.4.3");
		return res;
	}
	if (queue_mx_is_null(mx, *n)) {
		snprintf(info->text, sizeof(info->text), "domain %s accepts no mail (null MX)",
			 domain);
		snprintf(info->enhanced, sizeof(info->enhanced), "5.1.10");
		return QUEUE_PERMFAIL;
	}
	if (*n == 0) { /* RFC 5321 5.1: the domain itself is the implicit MX */
		snprintf(mx[0].host, sizeof(mx[0].host), "%s", domain);
		mx[0].preference = 0;
		*n = 1;
		*implicit = true;
	}
	return QUEUE_OK;
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
static void sign_message(int64_t id, unsigned char **msg, size_t *len)
{
	char *sig = NULL, err[512];
	unsigned char *out;
	size_t slen;

	if (queue_dkim_sign(runner.cfg, *msg, *len, &sig, err, sizeof(err)) != 0) {
		log_warn(_("queue: %lld leaves unsigned: %s"), (long long)id, err);
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

static void wipe_free(unsigned char *p, size_t len)
{
	if (p) {
		sodium_memzero(p, len);
		free(p);
	}
}

/* What happens to E after an attempt that ended in RES with INFO from MTA
 * (MSG is its own copy, for reports): deleted, bounced or retried later. */
static void finish_entry(struct store *st, const struct store_queue_entry *e, enum queue_result res,
			 const struct queue_reply_info *info, const char *mta,
			 const unsigned char *msg, size_t len)
{
	const struct config *cfg = runner.cfg;
	int64_t now = (int64_t)time(NULL);
	int attempts = e->attempts + 1;
	char err[600];

	if (res == QUEUE_OK) {
		log_info(_("queue: delivered %lld to <%s> via %s%s%s: %s"), (long long)e->id,
			 e->recipient, mta, info->tls_version[0] ? " with " : "", info->tls_version,
			 info->text);
		/* RFC 3461 4.1: a peer with DSN takes NOTIFY over; otherwise we report. */
		if (!info->peer_dsn && dsn_wanted(e, "relayed"))
			send_dsn(st, e, "relayed", "2.0.0", mta, info->text, msg, len);
		store_queue_del(st, e->id);
	} else if (res == QUEUE_PERMFAIL || now - e->created >= (int64_t)cfg->queue.max_age) {
		const char *status = info->enhanced[0] ? info->enhanced : "5.0.0";

		if (res != QUEUE_PERMFAIL) {
			snprintf(err, sizeof(err), "delivery time expired; last error: %s",
				 info->text);
			status = "4.4.7";
		} else {
			snprintf(err, sizeof(err), "%s", info->text);
		}
		log_info(_("queue: giving up on %lld to <%s>: %s"), (long long)e->id, e->recipient,
			 err);
		if (send_dsn(st, e, "failed", status, mta, err, msg, len) == 0)
			store_queue_del(st, e->id);
		else
			store_queue_retry_later(
			    st, e->id, attempts,
			    now + queue_retry_delay(attempts, cfg->queue.retry_min, cfg->queue.retry_max),
			    "bounce pending: the report could not be stored", QUEUE_HOLD_MARK);
	} else {
		int64_t delay =
		    queue_retry_delay(attempts, cfg->queue.retry_min, cfg->queue.retry_max);
		bool warned = strstr(e->last_error, QUEUE_WARNED_MARK) != NULL;

		snprintf(err, sizeof(err), "%s%s", mta, mta[0] ? ": " : "");
		snprintf(err + strlen(err), sizeof(err) - strlen(err), "%s", info->text);
		/* RFC 3464 "delayed": once, after [queue] delay_warning seconds */
		if (!warned && cfg->queue.delay_warning &&
		    now - e->created >= (int64_t)cfg->queue.delay_warning) {
			send_dsn(st, e, "delayed", info->enhanced[0] ? info->enhanced : "4.0.0",
				 mta, err, msg, len);
			warned = true;
		}
		log_info(_("queue: deferred %lld to <%s> (attempt %d, next in %llds): %s"),
			 (long long)e->id, e->recipient, attempts, (long long)delay, err);
		if (warned) {
			char marked[sizeof(err) + sizeof(QUEUE_WARNED_MARK)];

			snprintf(marked, sizeof(marked), "%s%s", QUEUE_WARNED_MARK, err);
			store_queue_retry_later(st, e->id, attempts, now + delay, marked,
						QUEUE_HOLD_MARK);
		} else {
			/* A hold set while the attempt ran stays. */
			store_queue_retry_later(st, e->id, attempts, now + delay, err,
						QUEUE_HOLD_MARK);
		}
	}
}

/* The due entries that go out in one transaction: the same message (sender,
 * arrival, DSN envelope; the content is compared when opened) to one
 * recipient domain. Through a relayhost, too, each domain has its own
 * transactions, so [queue] per_domain keeps limiting them; they may share
 * a connection. */
struct job {
	size_t members[QUEUE_RCPTS_MAX]; /* indices of the pass's entries */
	size_t n;
	const char *domain; /* recipient domain of the first member */
};

/* A worker's open connection, kept for the next job to the same host. */
struct held {
	struct queue_session *session;
	char host[QUEUE_HOST_MAX];
	char tls_version[32];
	char tls_cipher[128];
};

static void held_close(struct held *h)
{
	queue_session_close(h->session);
	memset(h, 0, sizeof(*h));
}

static bool same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET6)
		return memcmp(&((const struct sockaddr_in6 *)(const void *)a)->sin6_addr,
			      &((const struct sockaddr_in6 *)(const void *)b)->sin6_addr,
			      sizeof(struct in6_addr)) == 0 &&
		       ((const struct sockaddr_in6 *)(const void *)a)->sin6_port ==
			   ((const struct sockaddr_in6 *)(const void *)b)->sin6_port;
	return ((const struct sockaddr_in *)(const void *)a)->sin_addr.s_addr ==
		   ((const struct sockaddr_in *)(const void *)b)->sin_addr.s_addr &&
	       ((const struct sockaddr_in *)(const void *)a)->sin_port ==
		   ((const struct sockaddr_in *)(const void *)b)->sin_port;
}

/* One recipient of a job while it is attempted. */
struct member {
	const struct store_queue_entry *e;
	unsigned char *msg; /* its own copy, for reports */
	size_t len;
	bool pending;  /* no final answer yet (may still go to the next host) */
	bool separate; /* content differs from the leader's: a job of its own */
	enum queue_result res;
	struct queue_reply_info info;
	char mta[QUEUE_HOST_MAX];
};

/* The content of a job in the form a peer takes: the base copy, or its
 * 7-bit downgrade for a peer without 8BITMIME, each signed once. */
struct variants {
	unsigned char *base;
	size_t base_len;
	unsigned char *signed8, *signed7;
	size_t signed8_len, signed7_len;
	bool tried7;
};

static void variant_for(struct variants *v, int64_t id, bool seven_bit, const unsigned char **data,
			size_t *len)
{
	if (!seven_bit || !queue_has_8bit(v->base, v->base_len)) {
		if (!v->signed8 && (v->signed8 = malloc(v->base_len ? v->base_len : 1))) {
			memcpy(v->signed8, v->base, v->base_len);
			v->signed8_len = v->base_len;
			sign_message(id, &v->signed8, &v->signed8_len);
		}
		*data = v->signed8 ? v->signed8 : v->base;
		*len = v->signed8 ? v->signed8_len : v->base_len;
		return;
	}
	if (!v->tried7) {
		v->tried7 = true;
		if (queue_downgrade_7bit(v->base, v->base_len, &v->signed7, &v->signed7_len) == 0) {
			sign_message(id, &v->signed7, &v->signed7_len);
			log_info(_("queue: %lld converted to 7 bits for a peer without 8BITMIME"),
				 (long long)id);
		}
	}
	/* when it cannot be converted the 8-bit copy goes to the client, which
	 * refuses it (5.6.3) */
	if (v->signed7) {
		*data = v->signed7;
		*len = v->signed7_len;
	} else {
		variant_for(v, id, false, data, len);
	}
}

static void variants_free(struct variants *v)
{
	wipe_free(v->base, v->base_len);
	wipe_free(v->signed8, v->signed8_len);
	wipe_free(v->signed7, v->signed7_len);
}

/* A connection to ADDR for the job: the held one when it goes there (RSET
 * first) and may carry more, else a new one. NULL with RES and INFO. */
static struct queue_session *session_for(struct held *h, const struct sockaddr_storage *addr,
					 const struct queue_session_opts *opts, uint64_t trace_id,
					 const char *host, uint16_t port,
					 struct queue_reply_info *info, enum queue_result *res)
{
	unsigned cap = runner.cfg->queue.max_per_connection;
	char ip[64], text[1024];

	if (h->session && same_addr(queue_session_addr(h->session), addr) &&
	    (cap == 0 || queue_session_count(h->session) < cap) &&
	    (!opts->tls_required || queue_session_tls(h->session)) &&
	    queue_session_reset(h->session)) {
		snprintf(h->host, sizeof(h->host), "%s", host);
		return h->session;
	}
	held_close(h);
	addr_text(addr, ip, sizeof(ip));
	snprintf(text, sizeof(text), "connecting to %.255s [%.63s]:%u", host, ip, (unsigned)port);
	trace_publish(trace_id, "queue", "", TRACE_CONNECT, 0, text);
	h->session = queue_session_open(addr, opts, info, res);
	if (!h->session)
		return NULL;
	snprintf(h->host, sizeof(h->host), "%s", host);
	snprintf(h->tls_version, sizeof(h->tls_version), "%s", info->tls_version);
	snprintf(h->tls_cipher, sizeof(h->tls_cipher), "%s", info->tls_cipher);
	if (info->tls_version[0]) {
		snprintf(text, sizeof(text), "%.31s %.127s peer=%.255s", info->tls_version,
			 info->tls_cipher, host);
		trace_publish(trace_id, "queue", "", TRACE_TLS, 0, text);
	}
	return h->session;
}

/* Every member still pending gets RES and INFO from MTA. */
static void pending_set(struct member *m, size_t n, enum queue_result res,
			const struct queue_reply_info *info, const char *mta)
{
	for (size_t i = 0; i < n; i++)
		if (m[i].pending) {
			m[i].res = res;
			m[i].info = *info;
			snprintf(m[i].mta, sizeof(m[i].mta), "%s", mta);
		}
}

static size_t pending_count(const struct member *m, size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		k += m[i].pending;
	return k;
}

/* One transaction to the host at ADDR for the pending members. Returns
 * false when no connection could be made (the next address is tried). */
static bool send_to(struct held *h, const struct sockaddr_storage *addr,
		    const struct queue_session_opts *opts, uint64_t trace_id, const char *host,
		    uint16_t port, struct member *m, size_t n, struct variants *v, bool *permanent)
{
	const struct store_queue_entry *lead = m[0].e;
	struct queue_reply_info info = {0};
	enum queue_result res = QUEUE_TEMPFAIL;
	struct queue_session *s = session_for(h, addr, opts, trace_id, host, port, &info, &res);
	struct queue_rcpt rcpts[QUEUE_RCPTS_MAX];
	char tls_version[sizeof(h->tls_version)], tls_cipher[sizeof(h->tls_cipher)];
	size_t idx[QUEUE_RCPTS_MAX], k = 0;
	struct queue_envelope env = {
	    .sender = lead->sender,
	    .dsn_ret = lead->dsn_ret,
	    .dsn_envid = lead->dsn_envid,
	};

	*permanent = false;
	if (!s) {
		trace_publish(trace_id, "queue", "", TRACE_REPLY, 0, info.text);
		pending_set(m, n, res, &info, host);
		if (res == QUEUE_PERMFAIL) { /* the server refused us: final for everyone */
			for (size_t i = 0; i < n; i++)
				m[i].pending = false;
			*permanent = true;
		}
		return false;
	}
	/* the session's TLS, kept before a failure closes it */
	snprintf(tls_version, sizeof(tls_version), "%s", h->tls_version);
	snprintf(tls_cipher, sizeof(tls_cipher), "%s", h->tls_cipher);
	variant_for(v, lead->id, !queue_session_caps(s)->eightbit, &env.data, &env.len);
	for (size_t i = 0; i < n; i++) {
		if (!m[i].pending)
			continue;
		memset(&rcpts[k], 0, sizeof(rcpts[k]));
		rcpts[k].address = m[i].e->recipient;
		rcpts[k].dsn_notify = m[i].e->dsn_notify;
		rcpts[k].dsn_orcpt = m[i].e->dsn_orcpt;
		idx[k++] = i;
	}
	if (!queue_session_send(s, &env, rcpts, k))
		held_close(h);
	for (size_t j = 0; j < k; j++) {
		struct member *mm = &m[idx[j]];

		mm->res = rcpts[j].result;
		mm->info = rcpts[j].info;
		snprintf(mm->info.tls_version, sizeof(mm->info.tls_version), "%s", tls_version);
		snprintf(mm->info.tls_cipher, sizeof(mm->info.tls_cipher), "%s", tls_cipher);
		snprintf(mm->mta, sizeof(mm->mta), "%s", host);
		if (mm->res != QUEUE_TEMPFAIL)
			mm->pending = false;
		trace_publish(trace_id, "queue", "", TRACE_REPLY, 0, mm->info.text);
	}
	return true;
}

static void attempt_job(struct store *st, const struct store_queue_entry *items,
			const struct job *job, struct held *h);

/* Opens the members' copies; a copy that cannot be opened holds its entry. */
static size_t load_members(struct store *st, const struct store_queue_entry *items,
			   const struct job *job, struct member *m)
{
	size_t n = 0;

	for (size_t i = 0; i < job->n; i++) {
		const struct store_queue_entry *e = &items[job->members[i]];
		unsigned char *blob = NULL;
		size_t blob_len = 0;

		memset(&m[n], 0, sizeof(m[n]));
		m[n].e = e;
		if (store_queue_blob(st, e->id, &blob, &blob_len) != STORE_OK)
			continue; /* deleted meanwhile, or the store is down: the next pass sees */
		if (crypto_open(runner.qkey, blob, blob_len, &m[n].msg, &m[n].len) != 0) {
			free(blob);
			log_error(_("queue: entry %lld cannot be opened with the queue key"),
				  (long long)e->id);
			store_queue_update(st, e->id, e->attempts + 1, QUEUE_HOLD_TIME,
					   QUEUE_HOLD_MARK "cannot be opened with the queue key");
			continue;
		}
		free(blob);
		m[n].pending = true;
		m[n].res = QUEUE_TEMPFAIL;
		n++;
	}
	return n;
}

/* The copy that goes out: a single recipient's as it is; for several, the
 * leader's without its "for" clause, and members whose copy differs
 * otherwise are marked to go on their own. 0, or -1 out of memory. */
static int job_content(struct member *m, size_t n, struct variants *v)
{
	if (!(v->base = malloc(m[0].len ? m[0].len : 1)))
		return -1;
	memcpy(v->base, m[0].msg, m[0].len);
	v->base_len = m[0].len;
	if (n == 1)
		return 0;
	v->base_len = queue_strip_for_clause(v->base, v->base_len, m[0].e->recipient);
	for (size_t i = 1; i < n; i++) {
		unsigned char *copy = malloc(m[i].len ? m[i].len : 1);
		size_t len;

		if (!copy)
			return -1;
		memcpy(copy, m[i].msg, m[i].len);
		len = queue_strip_for_clause(copy, m[i].len, m[i].e->recipient);
		if (len != v->base_len || memcmp(copy, v->base, len) != 0) {
			m[i].separate = true;
			m[i].pending = false;
		}
		wipe_free(copy, m[i].len);
	}
	return 0;
}

static void attempt_job(struct store *st, const struct store_queue_entry *items,
			const struct job *job, struct held *h)
{
	const struct config *cfg = runner.cfg;
	struct member *m = calloc(job->n, sizeof(*m));
	struct queue_mx mx[QUEUE_MX_MAX];
	struct sockaddr_storage addrs[QUEUE_ADDR_MAX];
	struct variants v = {0};
	struct queue_reply_info info = {0};
	size_t n, n_mx = 0, n_addrs;
	uint16_t port;
	bool implicit, permanent = false;
	enum queue_result res;
	uint64_t trace_id;
	char err[512];
	struct queue_session_opts opts = {
	    .helo = cfg->server.hostname,
	    .timeout = cfg->queue.timeout,
	    .tls_required = queue_domain_in_list(cfg->queue.tls_required, job->domain),
	};

	if (!m)
		return;
	n = load_members(st, items, job, m);
	if (n == 0) {
		free(m);
		return;
	}
	trace_id = RUNNER_TRACE_BASE | (uint64_t)m[0].e->id;
	if (job_content(m, n, &v) != 0) {
		snprintf(info.text, sizeof(info.text), "out of memory");
		snprintf(info.enhanced, sizeof(info.enhanced), "4.3.0");
		pending_set(m, n, QUEUE_TEMPFAIL, &info, "");
		goto finish;
	}

	res = route(job->domain, mx, &n_mx, &port, &implicit, &info);
	if (res != QUEUE_OK) {
		pending_set(m, n, res, &info, "");
		goto finish;
	}
	for (size_t i = 0; i < n_mx && !permanent && pending_count(m, n) > 0; i++) {
		enum queue_result lookup;

		if (mx[i].host[0] == '\0')
			continue; /* a root exchange among others: nothing to try */
		lookup = queue_resolve_host(runner.resolver, mx[i].host, port, addrs,
					    QUEUE_ADDR_MAX, &n_addrs, err, sizeof(err));
		if (lookup != QUEUE_OK) {
			memset(&info, 0, sizeof(info));
			snprintf(info.text, sizeof(info.text), "%s", err);
			snprintf(info.enhanced, sizeof(info.enhanced),
				 lookup == QUEUE_PERMFAIL && implicit ? "5.1.2" : "4.4.3");
			pending_set(m, n,
				    lookup == QUEUE_PERMFAIL && implicit ? QUEUE_PERMFAIL
									 : QUEUE_TEMPFAIL,
				    &info, "");
			continue;
		}
		opts.peer_name = mx[i].host;
		for (size_t k = 0; k < n_addrs && !permanent && pending_count(m, n) > 0; k++)
			send_to(h, &addrs[k], &opts, trace_id, mx[i].host, port, m, n, &v,
				&permanent);
	}

finish:
	variants_free(&v);
	for (size_t i = 0; i < n; i++) {
		if (m[i].separate) {
			struct job alone = {.n = 1, .domain = job->domain};

			alone.members[0] = (size_t)(m[i].e - items);
			attempt_job(st, items, &alone, h);
		} else {
			finish_entry(st, m[i].e, m[i].res, &m[i].info, m[i].mta, m[i].msg,
				     m[i].len);
		}
		wipe_free(m[i].msg, m[i].len);
	}
	free(m);
}

static bool stopping(void)
{
	bool stop;

	pthread_mutex_lock(&runner.mu);
	stop = runner.stop;
	pthread_mutex_unlock(&runner.mu);
	return stop;
}

/* The jobs of one pass, shared by its delivery workers. At most
 * [queue] per_domain of them go to the same recipient domain at once, so one
 * slow destination holds up its own mail, not everyone's. */
struct pass {
	const struct store_queue_entry *items;
	const struct job *jobs;
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

static void pass_claim(struct pass *p, size_t i, size_t slot)
{
	p->taken[i] = true;
	p->inflight[slot] = p->jobs[i].domain;
}

/* Gives back the worker's SLOT (when HAVE_SLOT) and takes the next job:
 * one for PREFER (the domain the worker holds a connection for) when there
 * is one, else the next whose domain has room. -1 when none is left. */
static ssize_t pass_next(struct pass *p, size_t *slot, bool have_slot, const char *prefer)
{
	unsigned limit = runner.cfg->queue.per_domain ? runner.cfg->queue.per_domain : 1;

	pthread_mutex_lock(&p->mu);
	if (have_slot) {
		p->inflight[*slot] = NULL;
		pthread_cond_broadcast(&p->cond);
	}
	for (size_t i = 0; prefer && have_slot && i < p->n && !stopping(); i++) {
		if (!p->taken[i] && strcasecmp(p->jobs[i].domain, prefer) == 0) {
			pass_claim(p, i, *slot);
			pthread_mutex_unlock(&p->mu);
			return (ssize_t)i;
		}
	}
	for (;;) {
		bool left = false;

		if (stopping()) {
			pthread_mutex_unlock(&p->mu);
			return -1;
		}
		for (size_t i = 0; i < p->n; i++) {
			if (p->taken[i])
				continue;
			left = true;
			if (inflight_count(p, p->jobs[i].domain) >= limit)
				continue;
			for (*slot = 0; *slot < QUEUE_WORKERS_MAX && p->inflight[*slot]; (*slot)++)
				;
			if (*slot == QUEUE_WORKERS_MAX)
				break;
			pass_claim(p, i, *slot);
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

static void pass_work(struct pass *p, struct store *st)
{
	struct held h = {0};
	size_t slot = 0;
	bool have_slot = false;
	ssize_t i;
	const char *domain = NULL;

	while ((i = pass_next(p, &slot, have_slot, h.session ? domain : NULL)) >= 0) {
		have_slot = true;
		domain = p->jobs[i].domain;
		attempt_job(st, p->items, &p->jobs[i], &h);
	}
	held_close(&h);
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

/* Whether entry B goes in the same transaction as A (the first of a job):
 * queued from one SMTP transaction, to another address of the same domain. */
static bool same_transaction(const struct store_queue_entry *a, const struct store_queue_entry *b)
{
	return a->created == b->created && strcmp(a->sender, b->sender) == 0 &&
	       strcmp(a->dsn_ret, b->dsn_ret) == 0 && strcmp(a->dsn_envid, b->dsn_envid) == 0 &&
	       strcasecmp(a->recipient, b->recipient) != 0 &&
	       strcasecmp(queue_address_domain(a->recipient), queue_address_domain(b->recipient)) ==
		   0;
}

/* Groups ITEMS into jobs (*JOBS malloc'd): several recipients of one message
 * at one destination go in one transaction. */
static size_t make_jobs(const struct store_queue_entry *items, size_t n, struct job **jobs)
{
	size_t n_jobs = 0;

	*jobs = malloc((n ? n : 1) * sizeof(**jobs));
	if (!*jobs)
		return 0;
	for (size_t i = 0; i < n; i++) {
		size_t j;

		for (j = 0; j < n_jobs; j++)
			if ((*jobs)[j].n < QUEUE_RCPTS_MAX &&
			    same_transaction(&items[(*jobs)[j].members[0]], &items[i]))
				break;
		if (j == n_jobs) {
			(*jobs)[j].n = 0;
			(*jobs)[j].domain = queue_address_domain(items[i].recipient);
			n_jobs++;
		}
		(*jobs)[j].members[(*jobs)[j].n++] = i;
	}
	return n_jobs;
}

/* Delivers ITEMS with up to [queue] workers threads (the runner's own
 * store serves the first of them). */
static void dispatch(const struct store_queue_entry *items, size_t n)
{
	struct pass p = {.items = items};
	struct job *jobs = NULL;
	pthread_t threads[QUEUE_WORKERS_MAX];
	size_t workers = runner.cfg->queue.workers ? runner.cfg->queue.workers : 1, started = 0;

	if (n == 0)
		return;
	p.n = make_jobs(items, n, &jobs);
	p.jobs = jobs;
	if (p.n == 0 || !(p.taken = calloc(p.n, sizeof(*p.taken)))) {
		free(jobs);
		return;
	}
	if (workers > QUEUE_WORKERS_MAX)
		workers = QUEUE_WORKERS_MAX;
	if (workers > p.n)
		workers = p.n;
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
	free(jobs);
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
