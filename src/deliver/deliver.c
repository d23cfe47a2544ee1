/*
 * deliver.c - where accepted mail goes (see deliver.h). For every local
 * recipient: resolve alias to user, prepend Return-Path and Received, scan,
 * pick INBOX or Junk by verdict (malware goes to the quarantine, sealed to
 * the server's queue key), seal to the user's public key and store with the
 * scan result. Remote recipients (submission) go into the outbound queue
 * sealed to the server's queue key with their DSN parameters. One store
 * transaction covers everything, committed (durably) before we return OK.
 * The OpenPGP/S-MIME step (GnuPG, tens of milliseconds) runs before that
 * transaction begins, so it never holds the store's write lock.
 */
#include <config.h>

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "crypto/crypto.h"
#include "deliver/deliver.h"
#include "deliver/pgp_policy.h"
#include "util/i18n.h"
#include "util/log.h"
#include "util/notify.h"

/* Return-Path + Received; generous for long HELO names and TLS facts. */
#define TRACE_HEADERS_MAX 2048
#define SCAN_HEADERS_MAX 1024
/* Attempts at a transaction that failed for now, and the pause between them. */
#define DELIVER_ATTEMPTS 5
#define DELIVER_RETRY_USEC 20000

static void set_message(struct deliver_report *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void set_message(struct deliver_report *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->message, sizeof(r->message), fmt, ap);
	va_end(ap);
}

/* RFC 5322 date-time in UTC. */
static void rfc5322_date(int64_t t, char *out, size_t outlen)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(out, outlen, "%a, %d %b %Y %H:%M:%S +0000", &tm);
}

/*
 * Builds the trace header block for one copy. RETURN_PATH is set for final
 * delivery (RFC 5321 4.4), not for the outbound queue. Every inserted value
 * was checked by the SMTP parser (no CR, LF or controls), so no header can
 * be injected.
 */
static int trace_headers(const struct deliver_envelope *env, const char *hostname, const char *rcpt,
			 bool return_path, char *out, size_t outlen)
{
	char date[64], tls[256] = "";
	const char *ip = env->client_ip ? env->client_ip : "unknown";
	bool v6 = strchr(ip, ':') != NULL;
	int n, m = 0;

	rfc5322_date(env->received_at, date, sizeof(date));
	if (env->tls_version)
		snprintf(tls, sizeof(tls), "\r\n\t(using %s with cipher %s)", env->tls_version,
			 env->tls_cipher ? env->tls_cipher : "unknown");
	if (return_path) {
		m = snprintf(out, outlen, "Return-Path: <%s>\r\n", env->sender ? env->sender : "");
		if (m < 0 || (size_t)m >= outlen)
			return -1;
	}
	n = snprintf(out + m, outlen - (size_t)m,
		     "Received: from %s ([%s%s])\r\n\tby %s (Postern) with %s id %016llX%s\r\n"
		     "\tfor <%s>; %s\r\n",
		     env->helo && env->helo[0] ? env->helo : "unknown", v6 ? "IPv6:" : "", ip,
		     hostname, env->protocol ? env->protocol : "ESMTP",
		     (unsigned long long)env->session_id, tls, rcpt, date);
	if (n < 0 || (size_t)n >= outlen - (size_t)m)
		return -1;
	return m + n;
}

/* HDR (HLEN bytes) followed by MSG in one malloc'd buffer. */
static unsigned char *prepend(const char *hdr, size_t hlen, const unsigned char *msg, size_t len,
			      size_t *out_len)
{
	unsigned char *buf;

	if (len > SIZE_MAX - hlen)
		return NULL;
	buf = malloc(hlen + len + 1);
	if (!buf)
		return NULL;
	memcpy(buf, hdr, hlen);
	if (len)
		memcpy(buf + hlen, msg, len);
	*out_len = hlen + len;
	return buf;
}

static void wipe_free(unsigned char *buf, size_t len)
{
	if (buf) {
		sodium_memzero(buf, len);
		free(buf);
	}
}

/* Seals MSG to PUB and stores it with its scan result, SIZE as its size. */
static enum deliver_status store_sealed(struct store *st, const unsigned char pub[32],
					int64_t mailbox_id, uint32_t flags, int64_t date,
					const unsigned char *msg, size_t len, int64_t size,
					const struct scan_result *res, struct store_message *out)
{
	struct store_scan_result sr;
	unsigned char *blob = NULL;
	size_t blob_len = 0;
	int rc;

	if (crypto_seal(pub, msg, len, &blob, &blob_len) != 0)
		return DELIVER_TEMPFAIL;
	rc = store_message_add(st, mailbox_id, flags, date, size, blob, blob_len, out);
	free(blob);
	if (rc == STORE_QUOTA)
		return DELIVER_QUOTA;
	if (rc != STORE_OK)
		return DELIVER_TEMPFAIL;
	memset(&sr, 0, sizeof(sr));
	sr.message_id = out->id;
	snprintf(sr.verdict, sizeof(sr.verdict), "%s", scan_verdict_name(res->verdict));
	sr.score = res->score;
	sr.confidence = res->confidence;
	snprintf(sr.model_version, sizeof(sr.model_version), "%s", res->model_version);
	sr.reasons = scan_reasons_json(res);
	rc = store_scan_result_put(st, &sr);
	free(sr.reasons);
	return rc == STORE_OK ? DELIVER_OK : DELIVER_TEMPFAIL;
}

enum deliver_status deliver_to_mailbox(struct store *st, const struct store_user *user,
				       int64_t mailbox_id, uint32_t flags, int64_t internal_date,
				       const unsigned char *msg, size_t len,
				       const struct scan_input *scan_in, struct store_message *out)
{
	return deliver_to_mailbox_sized(st, user, mailbox_id, flags, internal_date, msg, len,
					(int64_t)len, scan_in, out);
}

enum deliver_status deliver_to_mailbox_sized(struct store *st, const struct store_user *user,
					     int64_t mailbox_id, uint32_t flags,
					     int64_t internal_date, const unsigned char *msg,
					     size_t len, int64_t size,
					     const struct scan_input *scan_in,
					     struct store_message *out)
{
	struct scan_result res;
	struct scan_input in;

	if (scan_in)
		in = *scan_in;
	else
		memset(&in, 0, sizeof(in));
	in.user_id = user->id;
	scan_message(st, msg, len, &in, &res);
	return store_sealed(st, user->public_key, mailbox_id, flags, internal_date, msg, len, size,
			    &res, out);
}

/* Seals MSG to the server's queue key (outbound queue and quarantine). */
static int seal_for_server(const struct config *cfg, struct user_key **qkey,
			   const unsigned char *msg, size_t len, unsigned char **blob,
			   size_t *blob_len)
{
	if (!*qkey && crypto_server_key_load(cfg->queue.key_file, qkey) != 0)
		return -1;
	return crypto_seal(user_key_public(*qkey), msg, len, blob, blob_len);
}

/*
 * A local recipient's copy after the OpenPGP/S-MIME step (pgp_policy_inbound:
 * signature check, result header, opt-in decryption). Made before the store
 * transaction begins, so GnuPG never runs while the transaction (on SQLite,
 * the database's write lock) is held.
 */
struct pgp_copy {
	bool ready;	    /* made for USER_ID; else made (again) before the next attempt */
	int64_t user_id;    /* the recipient's user when it was made */
	unsigned char *msg; /* NULL: deliver the message as received (out of memory) */
	size_t len;
};

struct delivery {
	struct store *st;
	const struct config *cfg;
	const struct deliver_envelope *env;
	struct deliver_report *report;
	struct user_key *qkey;
	int64_t *done_users; /* users that already got their copy (aliases may repeat) */
	size_t n_done;
	struct pgp_copy *pgp; /* one per recipient (local ones only) */
};

/*
 * The first Authentication-Results field of MSG that names HOSTNAME: the SMTP
 * layer puts ours first and removes forged ones (src/mailauth). Sets
 * [*START, *END) and returns true when there is one.
 */
static bool our_auth_field(const unsigned char *msg, size_t len, const char *hostname,
			   size_t *start_out, size_t *end_out)
{
	const char *name = "Authentication-Results:";
	size_t nlen = strlen(name), hlen = strlen(hostname), i = 0;

	while (i < len) {
		size_t start = i, end, k;

		while (i < len && msg[i] != '\n')
			i++;
		if (i < len)
			i++;
		if (i - start <= 2 && (msg[start] == '\n' || msg[start] == '\r'))
			return false; /* end of the header */
		while (i < len && (msg[i] == ' ' || msg[i] == '\t')) {
			while (i < len && msg[i] != '\n')
				i++;
			if (i < len)
				i++;
		}
		end = i;
		if (end - start <= nlen + hlen ||
		    strncasecmp((const char *)msg + start, name, nlen) != 0)
			continue;
		k = start + nlen;
		while (k < end && (msg[k] == ' ' || msg[k] == '\t'))
			k++;
		if (k + hlen >= end || strncasecmp((const char *)msg + k, hostname, hlen) != 0 ||
		    msg[k + hlen] != ';')
			continue;
		*start_out = k + hlen;
		*end_out = end;
		return true;
	}
	return false;
}

/* The result of METHOD ("spf", "dkim", "dmarc") in our Authentication-Results, or NULL. */
static const char *auth_result(const unsigned char *msg, size_t len, const char *hostname,
			       const char *method)
{
	static const char *const results[] = {"pass",	 "fail",      "softfail", "neutral",
					      "none",	 "temperror", "permerror"};
	size_t mlen = strlen(method), start, end;

	if (!our_auth_field(msg, len, hostname, &start, &end))
		return NULL;
	for (size_t k = start; k + mlen + 1 < end; k++) {
		const char *v;

		if (!(msg[k - 1] == ' ' || msg[k - 1] == '\t' || msg[k - 1] == ';') ||
		    strncasecmp((const char *)msg + k, method, mlen) != 0 || msg[k + mlen] != '=')
			continue;
		v = (const char *)msg + k + mlen + 1;
		for (size_t n = 0; n < sizeof(results) / sizeof(results[0]); n++) {
			size_t rl = strlen(results[n]);
			if ((size_t)(end - (k + mlen + 1)) > rl && strncasecmp(v, results[n], rl) == 0 &&
			    (v[rl] == ' ' || v[rl] == ';' || v[rl] == '\r' || v[rl] == '\n'))
				return results[n];
		}
		return NULL;
	}
	return NULL;
}

/* Whether our checks found a DMARC failure whose policy asks for quarantine. */
static bool dmarc_quarantine(const unsigned char *msg, size_t len, const char *hostname)
{
	static const char mark[] = "dmarc=fail (p=quarantine)";
	size_t start, end;

	if (!our_auth_field(msg, len, hostname, &start, &end))
		return false;
	for (size_t k = start; k + sizeof(mark) - 1 <= end; k++)
		if (memcmp(msg + k, mark, sizeof(mark) - 1) == 0)
			return true;
	return false;
}

static void pgp_copy_clear(struct pgp_copy *pc)
{
	wipe_free(pc->msg, pc->len);
	memset(pc, 0, sizeof(*pc));
}

/*
 * Outside any transaction: the OpenPGP/S-MIME copy of every local recipient
 * that has none yet, once per user (aliases may repeat one). A recipient that
 * does not resolve now is left for deliver_local to judge inside the
 * transaction.
 */
static void prepare_pgp_copies(struct delivery *d, const struct deliver_recipient *rcpts,
			       const bool *local, size_t n_rcpts, const unsigned char *msg,
			       size_t len)
{
	for (size_t i = 0; i < n_rcpts; i++) {
		char resolved[STORE_ADDRESS_MAX + 1];
		struct store_user user;
		struct pgp_copy *pc = &d->pgp[i];
		bool seen = false;

		if (!local[i] || pc->ready)
			continue;
		memset(&user, 0, sizeof(user));
		if (store_resolve_address(d->st, rcpts[i].address, resolved) != STORE_OK ||
		    store_user_get(d->st, resolved, &user) != STORE_OK) {
			store_user_clear(&user);
			continue;
		}
		for (size_t k = 0; k < i && !seen; k++)
			seen = d->pgp[k].ready && d->pgp[k].user_id == user.id;
		if (!seen) {
			if (pgp_policy_inbound(d->st, d->cfg, d->env, &user, msg, len, &pc->msg,
					       &pc->len) != 0)
				pc->msg = NULL;
			pc->user_id = user.id;
			pc->ready = true;
		}
		store_user_clear(&user);
	}
}

static enum deliver_status deliver_local(struct delivery *d, const struct deliver_recipient *r,
					 struct pgp_copy *pc, const unsigned char *msg, size_t len)
{
	char resolved[STORE_ADDRESS_MAX + 1], hdr[TRACE_HEADERS_MAX + SCAN_HEADERS_MAX];
	struct store_user user;
	int64_t mailbox_id = 0;
	struct store_message out;
	struct scan_result res;
	struct scan_input in;
	unsigned char *full = NULL, *blob = NULL;
	size_t full_len = 0, blob_len = 0, i;
	enum deliver_status status = DELIVER_TEMPFAIL;
	int rc, hlen, slen;

	rc = store_resolve_address(d->st, r->address, resolved);
	if (rc == STORE_NOTFOUND) {
		set_message(d->report, "<%s>: user unknown", r->address);
		return DELIVER_FAIL;
	}
	memset(&user, 0, sizeof(user));
	if (rc != STORE_OK || store_user_get(d->st, resolved, &user) != STORE_OK) {
		store_user_clear(&user);
		set_message(d->report, "<%s>: temporary lookup failure", r->address);
		return DELIVER_TEMPFAIL;
	}
	for (i = 0; i < d->n_done; i++) {
		if (d->done_users[i] == user.id) {
			store_user_clear(&user);
			return DELIVER_OK;
		}
	}
	d->done_users[d->n_done++] = user.id;

	/* OpenPGP/S-MIME: made before the transaction (prepare_pgp_copies). A
	 * recipient that resolved differently then gets its copy made afresh
	 * before the next attempt. */
	if (!pc->ready || pc->user_id != user.id) {
		pgp_copy_clear(pc);
		store_user_clear(&user);
		set_message(d->report, "<%s>: temporary lookup failure", r->address);
		return DELIVER_TEMPFAIL;
	}
	if (pc->msg) {
		msg = pc->msg;
		len = pc->len;
	}

	memset(&in, 0, sizeof(in));
	in.client_ip = d->env->client_ip;
	in.helo = d->env->helo;
	in.spf = auth_result(msg, len, d->cfg->server.hostname, "spf");
	in.dkim = auth_result(msg, len, d->cfg->server.hostname, "dkim");
	in.dmarc = auth_result(msg, len, d->cfg->server.hostname, "dmarc");
	in.user_id = user.id;
	scan_message(d->st, msg, len, &in, &res);

	hlen = trace_headers(d->env, d->cfg->server.hostname, r->address, true, hdr,
			     TRACE_HEADERS_MAX);
	if (hlen < 0) {
		set_message(d->report, "<%s>: header too long", r->address);
		status = DELIVER_FAIL;
		goto out;
	}
	slen = scan_format_headers(&res, hdr + hlen, sizeof(hdr) - (size_t)hlen);
	if (slen < 0)
		goto out;
	full = prepend(hdr, (size_t)(hlen + slen), msg, len, &full_len);
	if (!full)
		goto out;

	if (res.verdict == SCAN_MALWARE) {
		/* Never served to the user; the admin can inspect and release it. */
		struct store_quarantine_entry q;
		memset(&q, 0, sizeof(q));
		snprintf(q.recipient, sizeof(q.recipient), "%s", user.address);
		snprintf(q.sender, sizeof(q.sender), "%s", d->env->sender ? d->env->sender : "");
		snprintf(q.verdict, sizeof(q.verdict), "%s", scan_verdict_name(res.verdict));
		snprintf(q.reason, sizeof(q.reason), "%s", res.n_reasons ? res.reasons[0] : "");
		q.size = (int64_t)full_len;
		q.created = d->env->received_at;
		if (seal_for_server(d->cfg, &d->qkey, full, full_len, &blob, &blob_len) != 0)
			goto out;
		rc = store_quarantine_add(d->st, &q, blob, blob_len);
		free(blob);
		if (rc != STORE_OK)
			goto out;
		d->report->quarantined++;
		status = DELIVER_OK;
		goto out;
	}

	/* Spam and phishing go to Junk (INBOX if the user deleted Junk), and so
	 * does mail whose sender domain's DMARC policy asks for quarantine. */
	rc = STORE_NOTFOUND;
	if (res.verdict != SCAN_CLEAN || dmarc_quarantine(msg, len, d->cfg->server.hostname))
		rc = store_mailbox_lookup(d->st, user.id, NULL, SPECIAL_JUNK, &mailbox_id);
	if (rc == STORE_NOTFOUND)
		rc = store_mailbox_lookup(d->st, user.id, "INBOX", SPECIAL_NONE, &mailbox_id);
	if (rc != STORE_OK)
		goto out;
	status = store_sealed(d->st, user.public_key, mailbox_id, 0, d->env->received_at, full,
			      full_len, (int64_t)full_len, &res, &out);
	if (status == DELIVER_QUOTA)
		set_message(d->report, "<%s>: mailbox full", r->address);
	else if (status == DELIVER_OK)
		d->report->stored_local++;
out:
	if (status == DELIVER_TEMPFAIL && !d->report->message[0])
		set_message(d->report, "<%s>: temporary failure, try again later", r->address);
	wipe_free(full, full_len);
	store_user_clear(&user);
	return status;
}

static enum deliver_status deliver_remote(struct delivery *d, const struct deliver_recipient *r,
					  const unsigned char *msg, size_t len)
{
	char hdr[TRACE_HEADERS_MAX];
	struct store_queue_entry e;
	unsigned char *full, *blob = NULL;
	size_t full_len = 0, blob_len = 0;
	int hlen, rc;

	hlen = trace_headers(d->env, d->cfg->server.hostname, r->address, false, hdr, sizeof(hdr));
	if (hlen < 0) {
		set_message(d->report, "<%s>: header too long", r->address);
		return DELIVER_FAIL;
	}
	full = prepend(hdr, (size_t)hlen, msg, len, &full_len);
	if (!full)
		return DELIVER_TEMPFAIL;
	rc = seal_for_server(d->cfg, &d->qkey, full, full_len, &blob, &blob_len);
	wipe_free(full, full_len);
	if (rc != 0) {
		set_message(d->report, "%s", "queue key unavailable, try again later");
		return DELIVER_TEMPFAIL;
	}
	memset(&e, 0, sizeof(e));
	snprintf(e.sender, sizeof(e.sender), "%s", d->env->sender ? d->env->sender : "");
	snprintf(e.recipient, sizeof(e.recipient), "%s", r->address);
	snprintf(e.dsn_notify, sizeof(e.dsn_notify), "%s", r->dsn_notify ? r->dsn_notify : "");
	snprintf(e.dsn_orcpt, sizeof(e.dsn_orcpt), "%s", r->dsn_orcpt ? r->dsn_orcpt : "");
	snprintf(e.dsn_ret, sizeof(e.dsn_ret), "%s", d->env->dsn_ret ? d->env->dsn_ret : "");
	snprintf(e.dsn_envid, sizeof(e.dsn_envid), "%s",
		 d->env->dsn_envid ? d->env->dsn_envid : "");
	e.next_attempt = d->env->received_at;
	e.created = d->env->received_at;
	rc = store_queue_add(d->st, &e, blob, blob_len);
	free(blob);
	if (rc != STORE_OK)
		return DELIVER_TEMPFAIL;
	d->report->queued_remote++;
	return DELIVER_OK;
}

/* One attempt at the whole transaction; on failure nothing is stored. */
static enum deliver_status deliver_once(struct delivery *d, const struct deliver_recipient *rcpts,
					const bool *local, size_t n_rcpts, const unsigned char *msg,
					size_t len)
{
	enum deliver_status status = DELIVER_OK;
	size_t i;

	memset(d->report, 0, sizeof(*d->report));
	d->n_done = 0;
	if (store_begin(d->st) != STORE_OK) {
		set_message(d->report, "%s", "temporary failure, try again later");
		return DELIVER_TEMPFAIL;
	}
	for (i = 0; i < n_rcpts && status == DELIVER_OK; i++)
		status = local[i] ? deliver_local(d, &rcpts[i], &d->pgp[i], msg, len)
				  : deliver_remote(d, &rcpts[i], msg, len);
	if (status == DELIVER_OK && store_commit(d->st) != STORE_OK) {
		status = DELIVER_TEMPFAIL;
		set_message(d->report, "%s", "temporary failure, try again later");
	}
	for (i = 0; status == DELIVER_OK && i < d->n_done; i++)
		notify_user_changed(d->done_users[i]); /* wakes IMAP IDLE */
	if (status != DELIVER_OK) {
		if (status == DELIVER_TEMPFAIL)
			log_warn(_("delivery failed for now: %s (store: %s)"), d->report->message,
				 store_error(d->st));
		store_rollback(d->st);
		d->report->stored_local = d->report->queued_remote = d->report->quarantined = 0;
	}
	return status;
}

enum deliver_status deliver_message(struct store *st, const struct config *cfg,
				    const struct deliver_envelope *env,
				    const struct deliver_recipient *rcpts, const bool *local,
				    size_t n_rcpts, const unsigned char *msg, size_t len,
				    struct deliver_report *report)
{
	struct delivery d;
	enum deliver_status status;
	unsigned attempt;

	memset(report, 0, sizeof(*report));
	if (n_rcpts == 0) {
		report->status = DELIVER_FAIL;
		set_message(report, "%s", "no recipients");
		return DELIVER_FAIL;
	}
	memset(&d, 0, sizeof(d));
	d.st = st;
	d.cfg = cfg;
	d.env = env;
	d.report = report;
	d.done_users = calloc(n_rcpts, sizeof(*d.done_users));
	d.pgp = calloc(n_rcpts, sizeof(*d.pgp));
	if (!d.done_users || !d.pgp) {
		free(d.done_users);
		free(d.pgp);
		report->status = DELIVER_TEMPFAIL;
		set_message(report, "%s", "temporary failure, try again later");
		return DELIVER_TEMPFAIL;
	}
	/*
	 * A transaction that failed for now (an InnoDB deadlock between two
	 * deliveries to the same mailbox, a busy SQLite file) was rolled back
	 * completely, so running it again is safe; the client only hears 451
	 * when it keeps failing.
	 */
	for (attempt = 0;; attempt++) {
		prepare_pgp_copies(&d, rcpts, local, n_rcpts, msg, len);
		status = deliver_once(&d, rcpts, local, n_rcpts, msg, len);
		if (status != DELIVER_TEMPFAIL || attempt + 1 >= DELIVER_ATTEMPTS)
			break;
		usleep((useconds_t)(DELIVER_RETRY_USEC * (attempt + 1) +
				    randombytes_uniform(DELIVER_RETRY_USEC)));
	}
	if (d.qkey)
		user_key_free(d.qkey);
	free(d.done_users);
	for (size_t i = 0; i < n_rcpts; i++)
		pgp_copy_clear(&d.pgp[i]);
	free(d.pgp);
	report->status = status;
	return status;
}
