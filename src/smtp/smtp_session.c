/*
 * smtp_session.c - the SMTP state machine for the "smtp" (MX) and
 * "submission" listeners, wired to src/net.
 *
 * A session is a struct plus a state; one table lists every command with
 * smtp_check_<verb> (is it allowed now, are its arguments acceptable) and
 * smtp_proceed_<verb> (do it). Every reply goes through smtp_reply(), which
 * also publishes it to the trace bus and counts the command's latency.
 *
 * Policy: the MX accepts mail only for local domains (users and aliases)
 * and never relays; submission requires TLS (on a STARTTLS listener) and
 * AUTH, and the sender must be an address the user owns (their address,
 * their aliases, or one the admin granted them). AUTH is offered only over
 * TLS on both. STARTTLS forgets everything learned before it
 * (RFC 3207 4.2); src/net discards input buffered before the handshake.
 */
#include <config.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <sodium.h>

#include "smtp/smtp_int.h"
#include "store/store.h"
#include "trace/metrics.h"
#include "trace/trace.h"
#include "util/i18n.h"
#include "util/log.h"

/* ---- replies, errors, trace ---- */

uint64_t smtp_now_usec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

const char *smtp_session_user(struct smtp_session *s)
{
	const char *u = conn_user(s->c);
	return u ? u : "";
}

void smtp_reply(struct smtp_session *s, const char *fmt, ...)
{
	char text[512];
	uint64_t elapsed = smtp_now_usec() - s->cmd_start;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	conn_printf(s->c, "%s\r\n", text);
	trace_publish(conn_id(s->c), s->protocol, smtp_session_user(s), TRACE_REPLY,
		      elapsed > UINT32_MAX ? UINT32_MAX : (uint32_t)elapsed, text);
	/* A final reply (not "250-" continuation, not a 3xx prompt) ends the command. */
	if (text[0] != '3' && text[3] != '-')
		metrics_command(s->protocol, smtp_verb_name(s->verb), elapsed);
}

void smtp_fail(struct smtp_session *s, int code, const char *status, const char *text)
{
	smtp_reply(s, "%d %s %s", code, status, text);
	if (++s->errors >= s->max_errors) {
		smtp_reply(s, "421 4.7.0 %s Too many errors, closing connection",
			   s->cfg->server.hostname);
		metrics_count(s->protocol, "sessions_too_many_errors", NULL, NULL, 1);
		conn_close(s->c);
	}
}

void smtp_fail_error(struct smtp_session *s, const struct smtp_error *err)
{
	smtp_fail(s, err->code, err->status, err->text);
}

static void smtp_input(void *arg);

void smtp_resume(struct smtp_session *s)
{
	s->busy = false;
	if (!s->in_input && !conn_is_closing(s->c))
		smtp_input(s);
}

static void after_cb(struct conn *c, void *arg)
{
	struct smtp_session *s = arg;
	void (*fn)(struct smtp_session * s) = s->timer_fn;

	(void)c;
	s->timer_fn = NULL;
	if (fn)
		fn(s);
}

/* net frees a pending timer together with the connection. */
int smtp_after(struct smtp_session *s, unsigned msec, void (*fn)(struct smtp_session *s))
{
	s->timer_fn = fn;
	return conn_after(s->c, msec, after_cb, s);
}

void smtp_reset_transaction(struct smtp_session *s)
{
	s->sender[0] = '\0';
	s->smtputf8 = false;
	s->ret[0] = '\0';
	s->envid[0] = '\0';
	s->n_rcpts = 0;
	smtp_data_free(&s->data);
	s->data_started = false;
	s->bdat_used = false;
	s->bdat_remaining = 0;
	s->bdat_last = false;
	s->bdat_discard = false;
	if (s->state & (SMTP_STATE_MAIL | SMTP_STATE_RCPT))
		s->state = SMTP_STATE_HELO;
}

/* ---- helpers ---- */

static bool tls_required_first(const struct smtp_session *s)
{
	return !conn_is_tls(s->c) && conn_listener(s->c)->tls == TLS_MODE_STARTTLS;
}

/* ASCII lower-case copy (local parts are case-insensitive in Postern). */
static void address_lower(const char *in, char *out, size_t outlen)
{
	size_t i;
	for (i = 0; in[i] && i + 1 < outlen; i++)
		out[i] = (in[i] >= 'A' && in[i] <= 'Z') ? (char)(in[i] - 'A' + 'a') : in[i];
	out[i] = '\0';
}

static const char *address_domain(const char *addr)
{
	const char *at = strrchr(addr, '@');
	return at ? at + 1 : "";
}

static bool need_greeting(struct smtp_session *s)
{
	if (s->state == SMTP_STATE_INIT) {
		smtp_fail(s, 503, "5.5.1", "Send EHLO/HELO first");
		return true;
	}
	return false;
}

/* ---- EHLO / HELO (RFC 5321 4.1.1.1) ---- */

static int smtp_check_ehlo(struct smtp_session *s, const struct smtp_command *cmd)
{
	(void)s;
	(void)cmd;
	return 0;
}

static void smtp_proceed_ehlo(struct smtp_session *s, const struct smtp_command *cmd)
{
	const char *host = s->cfg->server.hostname;

	smtp_reset_transaction(s);
	snprintf(s->helo, sizeof(s->helo), "%s", cmd->arg);
	s->state = SMTP_STATE_HELO;
	s->esmtp = cmd->verb == SMTP_CMD_EHLO;
	if (!s->esmtp) {
		smtp_reply(s, "250 %s", host);
		return;
	}
	smtp_reply(s, "250-%s Hello %s", host, cmd->arg);
	smtp_reply(s, "250-PIPELINING");
	smtp_reply(s, "250-SIZE %zu", s->max_message);
	smtp_reply(s, "250-8BITMIME");
	smtp_reply(s, "250-SMTPUTF8");
	smtp_reply(s, "250-ENHANCEDSTATUSCODES");
	if (tls_required_first(s))
		smtp_reply(s, "250-STARTTLS");
	if (conn_is_tls(s->c) && !s->authenticated)
		smtp_reply(s, "250-AUTH PLAIN LOGIN");
	smtp_reply(s, "250-CHUNKING");
	smtp_reply(s, "250-DSN");
	smtp_reply(s, "250 HELP");
}

/* ---- STARTTLS (RFC 3207) ---- */

static int smtp_check_starttls(struct smtp_session *s, const struct smtp_command *cmd)
{
	(void)cmd;
	if (conn_is_tls(s->c)) {
		smtp_fail(s, 503, "5.5.1", "TLS already active");
		return -1;
	}
	if (conn_listener(s->c)->tls != TLS_MODE_STARTTLS) {
		smtp_fail(s, 502, "5.5.1", "STARTTLS not available");
		return -1;
	}
	if (need_greeting(s))
		return -1;
	if (s->state != SMTP_STATE_HELO) {
		smtp_fail(s, 503, "5.5.1", "STARTTLS not allowed inside a transaction");
		return -1;
	}
	return 0;
}

static void smtp_proceed_starttls(struct smtp_session *s, const struct smtp_command *cmd)
{
	(void)cmd;
	smtp_reply(s, "220 2.0.0 Ready to start TLS");
	/* RFC 3207 4.2: everything learned before TLS is forgotten. */
	smtp_reset_transaction(s);
	s->state = SMTP_STATE_INIT;
	s->helo[0] = '\0';
	s->esmtp = false;
	s->busy = true;
	if (conn_starttls(s->c) < 0) {
		log_warn(_("smtp: STARTTLS failed for %s"), conn_peer_address(s->c));
		conn_close(s->c);
	}
}

/* ---- AUTH (RFC 4954), see smtp_auth.c ---- */

static int smtp_check_auth(struct smtp_session *s, const struct smtp_command *cmd)
{
	if (!conn_is_tls(s->c)) {
		smtp_fail(s, 530, "5.7.0", "Must issue a STARTTLS command first");
		return -1;
	}
	if (need_greeting(s))
		return -1;
	if (s->authenticated) {
		smtp_fail(s, 503, "5.5.1", "Already authenticated");
		return -1;
	}
	if (s->state != SMTP_STATE_HELO) {
		smtp_fail(s, 503, "5.5.1", "AUTH not allowed inside a transaction");
		return -1;
	}
	if (strcmp(cmd->mechanism, "PLAIN") != 0 && strcmp(cmd->mechanism, "LOGIN") != 0) {
		smtp_fail(s, 504, "5.5.4", "Unrecognized authentication mechanism");
		return -1;
	}
	return 0;
}

static void smtp_proceed_auth(struct smtp_session *s, const struct smtp_command *cmd)
{
	smtp_auth_start(s, cmd);
}

/* ---- MAIL (RFC 5321 4.1.1.2, RFC 1870, 6152, 6531, 3461) ---- */

/*
 * Envelope lookups (is the sender the user's, is the recipient local and
 * known, is its mailbox full) run on the lookup pool when the store is
 * MariaDB: each is a network round trip, and the loop must not wait for
 * it (nor the lookup for the deliveries queued on the main job pool). The
 * session is busy meanwhile, so pipelined commands queue up in order. With
 * SQLite they run inline (see lookup_start).
 */
enum lookup_result {
	LOOKUP_LOCAL = 0, /* sender owned / local recipient with room */
	LOOKUP_REMOTE,	  /* not a local domain */
	LOOKUP_UNKNOWN,	  /* local domain, no such user or alias / sender not owned */
	LOOKUP_FULL,	  /* local user already over quota */
	LOOKUP_TEMPFAIL,  /* store error */
};

struct lookup_job {
	struct smtp_session *s;
	bool is_mail;
	char address[SMTP_PATH_MAX + 1];   /* lower-cased */
	char owner[STORE_ADDRESS_MAX + 1]; /* MAIL: the authenticated user */
	/* MAIL parameters kept for the reply */
	bool smtputf8;
	char ret[5];
	char envid[SMTP_ENVID_MAX + 1];
	/* RCPT parameters */
	char notify[32];
	char orcpt[SMTP_ORCPT_MAX + 1];
	enum lookup_result result;
};

static enum lookup_result lookup_sender(struct store *st, const struct lookup_job *job)
{
	char resolved[STORE_ADDRESS_MAX + 1];
	int rc;

	if (job->address[0] == '\0')
		return LOOKUP_UNKNOWN;
	rc = store_resolve_address(st, job->address, resolved);
	if (rc == STORE_ERR)
		return LOOKUP_TEMPFAIL;
	if (rc == STORE_OK && strcmp(resolved, job->owner) == 0)
		return LOOKUP_LOCAL;
	/* Not the user's own address or alias: the admin may have granted it
	 * (posternctl sender grant), alone or with its whole domain. */
	rc = store_sender_granted(st, job->owner, job->address);
	if (rc == STORE_ERR)
		return LOOKUP_TEMPFAIL;
	return rc == STORE_OK ? LOOKUP_LOCAL : LOOKUP_UNKNOWN;
}

static enum lookup_result lookup_recipient(struct store *st, const struct lookup_job *job)
{
	char resolved[STORE_ADDRESS_MAX + 1];
	struct store_user u;
	enum lookup_result result = LOOKUP_LOCAL;
	int rc;

	rc = store_domain_exists(st, address_domain(job->address));
	if (rc == STORE_ERR)
		return LOOKUP_TEMPFAIL;
	if (rc != STORE_OK)
		return LOOKUP_REMOTE;
	rc = store_resolve_address(st, job->address, resolved);
	if (rc == STORE_NOTFOUND)
		return LOOKUP_UNKNOWN;
	if (rc != STORE_OK)
		return LOOKUP_TEMPFAIL;
	memset(&u, 0, sizeof(u));
	rc = store_user_get(st, resolved, &u);
	if (rc != STORE_OK)
		result = rc == STORE_NOTFOUND ? LOOKUP_UNKNOWN : LOOKUP_TEMPFAIL;
	else if (u.quota_bytes > 0 && u.used_bytes >= u.quota_bytes)
		result = LOOKUP_FULL;
	store_user_clear(&u);
	return result;
}

static void lookup_work(struct store *st, void *arg)
{
	struct lookup_job *job = arg;

	job->result = job->is_mail ? lookup_sender(st, job) : lookup_recipient(st, job);
}

static void mail_accept(struct smtp_session *s, const struct lookup_job *job)
{
	smtp_reset_transaction(s);
	snprintf(s->sender, sizeof(s->sender), "%s", job->address);
	s->smtputf8 = job->smtputf8;
	snprintf(s->ret, sizeof(s->ret), "%s", job->ret);
	snprintf(s->envid, sizeof(s->envid), "%s", job->envid);
	s->state = SMTP_STATE_MAIL;
	smtp_reply(s, "250 2.1.0 Ok");
}

static void mail_lookup_done(struct smtp_session *s, const struct lookup_job *job)
{
	switch (job->result) {
	case LOOKUP_LOCAL:
		mail_accept(s, job);
		return;
	case LOOKUP_TEMPFAIL:
		smtp_reply(s, "451 4.3.0 Temporary lookup failure");
		return;
	default:
		smtp_fail(s, 553, "5.7.1", "Sender address not owned by authenticated user");
		return;
	}
}

static void rcpt_lookup_done(struct smtp_session *s, const struct lookup_job *job)
{
	struct smtp_rcpt *r;

	switch (job->result) {
	case LOOKUP_TEMPFAIL:
		smtp_reply(s, "451 4.3.0 Temporary lookup failure");
		return;
	case LOOKUP_UNKNOWN:
		smtp_fail(s, 550, "5.1.1", "User unknown in local recipient table");
		return;
	case LOOKUP_FULL:
		/* Already over quota: say so now, not after the whole message. */
		smtp_reply(s, "452 4.2.2 Mailbox full");
		return;
	case LOOKUP_REMOTE:
		if (!s->authenticated) {
			/* Never an open relay. */
			smtp_fail(s, 550, "5.7.1", "Relay access denied");
			return;
		}
		break;
	case LOOKUP_LOCAL:
		break;
	}
	if (s->n_rcpts == s->cap_rcpts) {
		size_t cap = s->cap_rcpts ? s->cap_rcpts * 2 : 8;
		struct smtp_rcpt *n = realloc(s->rcpts, cap * sizeof(*n));
		if (!n) {
			smtp_reply(s, "452 4.3.1 Insufficient system resources");
			return;
		}
		s->rcpts = n;
		s->cap_rcpts = cap;
	}
	r = &s->rcpts[s->n_rcpts++];
	snprintf(r->address, sizeof(r->address), "%s", job->address);
	snprintf(r->notify, sizeof(r->notify), "%s", job->notify);
	snprintf(r->orcpt, sizeof(r->orcpt), "%s", job->orcpt);
	r->local = job->result == LOOKUP_LOCAL;
	s->state = SMTP_STATE_RCPT;
	smtp_reply(s, "250 2.1.5 Ok");
}

static void lookup_done(struct conn *c, void *arg)
{
	struct lookup_job *job = arg;
	struct smtp_session *s = job->s;

	(void)c;
	if (!conn_is_closing(s->c)) {
		if (job->is_mail)
			mail_lookup_done(s, job);
		else
			rcpt_lookup_done(s, job);
	}
	free(job);
	smtp_resume(s);
}

static void lookup_start(struct smtp_session *s, struct lookup_job *job)
{
	struct store *st = conn_store(s->c);

	job->s = s;
	/* An embedded SQLite read (WAL: never blocked by writers) takes
	 * microseconds; a trip through the job pool would wait behind the
	 * deliveries queued there. */
	if (st && strcmp(store_engine_name(st), "sqlite") == 0) {
		lookup_work(st, job);
		if (job->is_mail)
			mail_lookup_done(s, job);
		else
			rcpt_lookup_done(s, job);
		free(job);
		return;
	}
	s->busy = true;
	if (conn_defer_lookup(s->c, lookup_work, lookup_done, job) < 0) {
		s->busy = false;
		free(job);
		smtp_reply(s, "451 4.3.0 Temporary lookup failure");
	}
}

static int smtp_check_mail(struct smtp_session *s, const struct smtp_command *cmd)
{
	if (s->submission && tls_required_first(s)) {
		smtp_fail(s, 530, "5.7.0", "Must issue a STARTTLS command first");
		return -1;
	}
	if (need_greeting(s))
		return -1;
	if (s->state != SMTP_STATE_HELO) {
		smtp_fail(s, 503, "5.5.1", "Nested MAIL command");
		return -1;
	}
	if (s->submission && !s->authenticated) {
		smtp_fail(s, 530, "5.7.0", "Authentication required");
		return -1;
	}
	if (!s->esmtp && (cmd->has_size || cmd->body || cmd->smtputf8 || cmd->ret[0] ||
			  cmd->envid[0] || cmd->auth_param[0])) {
		smtp_fail(s, 555, "5.5.4", "Parameters need EHLO");
		return -1;
	}
	if (cmd->has_size && cmd->size > s->max_message) {
		smtp_fail(s, 552, "5.3.4", "Message size exceeds fixed maximum message size");
		return -1;
	}
	return 0;
}

static void smtp_proceed_mail(struct smtp_session *s, const struct smtp_command *cmd)
{
	struct lookup_job *job = calloc(1, sizeof(*job));

	if (!job) {
		smtp_reply(s, "451 4.3.1 Insufficient system resources");
		return;
	}
	job->is_mail = true;
	address_lower(cmd->address, job->address, sizeof(job->address));
	job->smtputf8 = cmd->smtputf8;
	snprintf(job->ret, sizeof(job->ret), "%s", cmd->ret);
	snprintf(job->envid, sizeof(job->envid), "%s", cmd->envid);
	if (!s->authenticated) {
		/* The MX takes any syntactically valid sender. */
		mail_accept(s, job);
		free(job);
		return;
	}
	/* An authenticated user sends only as an address they own. */
	snprintf(job->owner, sizeof(job->owner), "%s", s->user);
	lookup_start(s, job);
}

/* ---- RCPT (RFC 5321 4.1.1.3, RFC 3461) ---- */

static int smtp_check_rcpt(struct smtp_session *s, const struct smtp_command *cmd)
{
	if (need_greeting(s))
		return -1;
	if (!(s->state & (SMTP_STATE_MAIL | SMTP_STATE_RCPT))) {
		smtp_fail(s, 503, "5.5.1", "Need MAIL command");
		return -1;
	}
	if (s->data_started) {
		smtp_fail(s, 503, "5.5.1", "RCPT not allowed after BDAT");
		return -1;
	}
	if (cmd->address_utf8 && !s->smtputf8) {
		smtp_fail(s, 553, "5.6.7", "Non-ASCII address requires SMTPUTF8");
		return -1;
	}
	if (s->n_rcpts >= s->max_recipients) {
		smtp_reply(s, "452 4.5.3 Too many recipients");
		return -1;
	}
	return 0;
}

static void notify_text(unsigned bits, char *out, size_t outlen)
{
	static const struct {
		unsigned bit;
		const char *name;
	} names[] = {{SMTP_NOTIFY_NEVER, "NEVER"},
		     {SMTP_NOTIFY_SUCCESS, "SUCCESS"},
		     {SMTP_NOTIFY_FAILURE, "FAILURE"},
		     {SMTP_NOTIFY_DELAY, "DELAY"}};
	size_t i, pos = 0;

	out[0] = '\0';
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!(bits & names[i].bit))
			continue;
		pos += (size_t)snprintf(out + pos, outlen - pos, "%s%s", pos ? "," : "",
					names[i].name);
		if (pos >= outlen)
			return;
	}
}

static void smtp_proceed_rcpt(struct smtp_session *s, const struct smtp_command *cmd)
{
	struct lookup_job *job = calloc(1, sizeof(*job));
	size_t i;

	if (!job) {
		smtp_reply(s, "452 4.3.1 Insufficient system resources");
		return;
	}
	address_lower(cmd->address, job->address, sizeof(job->address));
	for (i = 0; i < s->n_rcpts; i++) {
		if (strcmp(s->rcpts[i].address, job->address) == 0) {
			free(job);
			smtp_reply(s, "250 2.1.5 Ok (duplicate recipient)");
			return;
		}
	}
	notify_text(cmd->notify, job->notify, sizeof(job->notify));
	snprintf(job->orcpt, sizeof(job->orcpt), "%s", cmd->orcpt);
	lookup_start(s, job);
}

/* ---- DATA (RFC 5321 4.1.1.4) ---- */

static int smtp_check_data(struct smtp_session *s, const struct smtp_command *cmd)
{
	(void)cmd;
	if (need_greeting(s))
		return -1;
	if (s->bdat_used) {
		smtp_fail(s, 503, "5.5.1", "DATA not allowed after BDAT");
		return -1;
	}
	if (s->state == SMTP_STATE_HELO) {
		smtp_fail(s, 503, "5.5.1", "Need MAIL command");
		return -1;
	}
	if (s->state != SMTP_STATE_RCPT) {
		smtp_fail(s, 554, "5.5.1", "No valid recipients");
		return -1;
	}
	return 0;
}

static void smtp_proceed_data(struct smtp_session *s, const struct smtp_command *cmd)
{
	(void)cmd;
	smtp_data_init(&s->data, s->max_message, s->max_data_line);
	s->data_started = true;
	s->mode = SMTP_INPUT_DATA;
	smtp_reply(s, "354 End data with <CR><LF>.<CR><LF>");
}

/* ---- BDAT (RFC 3030) ---- */

/* BDAT is always followed by its chunk; a refused BDAT still has its chunk
 * read (and thrown away) so that the bytes are never taken as commands. */
static void bdat_refuse(struct smtp_session *s, const struct smtp_command *cmd, int code,
			const char *status, const char *text)
{
	s->bdat_err.code = code;
	s->bdat_err.status = status;
	s->bdat_err.text = text;
	s->bdat_discard = true;
	s->bdat_remaining = cmd->chunk_size;
	s->mode = SMTP_INPUT_BDAT;
}

static int smtp_check_bdat(struct smtp_session *s, const struct smtp_command *cmd)
{
	if (s->state == SMTP_STATE_INIT)
		bdat_refuse(s, cmd, 503, "5.5.1", "Send EHLO/HELO first");
	else if (s->state == SMTP_STATE_HELO)
		bdat_refuse(s, cmd, 503, "5.5.1", "Need MAIL command");
	else if (s->state != SMTP_STATE_RCPT)
		bdat_refuse(s, cmd, 554, "5.5.1", "No valid recipients");
	else if (s->data_started && !s->bdat_used)
		bdat_refuse(s, cmd, 503, "5.5.1", "BDAT not allowed after DATA");
	else
		return 0;
	return -1;
}

static void bdat_chunk_done(struct smtp_session *s);

static void smtp_proceed_bdat(struct smtp_session *s, const struct smtp_command *cmd)
{
	if (!s->bdat_used) {
		smtp_data_init(&s->data, s->max_message, s->max_data_line);
		s->bdat_used = true;
		s->data_started = true;
	}
	s->bdat_remaining = cmd->chunk_size;
	s->bdat_last = cmd->last;
	s->bdat_discard = false;
	if (cmd->chunk_size > s->max_message) {
		/* Read it all, keep nothing. */
		s->data.error = SMTP_DATA_TOO_BIG;
	}
	s->mode = SMTP_INPUT_BDAT;
	if (s->bdat_remaining == 0)
		bdat_chunk_done(s);
}

static void bdat_chunk_done(struct smtp_session *s)
{
	s->mode = SMTP_INPUT_COMMAND;
	if (s->bdat_discard) {
		s->bdat_discard = false;
		smtp_fail_error(s, &s->bdat_err);
		return;
	}
	if (s->data.error != SMTP_DATA_OK) {
		struct smtp_error e;
		smtp_data_error_reply(s->data.error, &e);
		smtp_reset_transaction(s);
		smtp_fail_error(s, &e);
		return;
	}
	if (!s->bdat_last) {
		smtp_reply(s, "250 2.0.0 %zu octets received", s->data.len);
		return;
	}
	smtp_deliver_start(s);
}

/* ---- RSET, NOOP, QUIT, HELP, VRFY ---- */

static int smtp_check_any(struct smtp_session *s, const struct smtp_command *cmd)
{
	(void)s;
	(void)cmd;
	return 0;
}

static void smtp_proceed_rset(struct smtp_session *s, const struct smtp_command *cmd)
{
	(void)cmd;
	smtp_reset_transaction(s);
	smtp_reply(s, "250 2.0.0 Ok");
}

static void smtp_proceed_noop(struct smtp_session *s, const struct smtp_command *cmd)
{
	(void)cmd;
	smtp_reply(s, "250 2.0.0 Ok");
}

static void smtp_proceed_quit(struct smtp_session *s, const struct smtp_command *cmd)
{
	(void)cmd;
	smtp_reply(s, "221 2.0.0 Bye");
	conn_close(s->c);
}

static void smtp_proceed_help(struct smtp_session *s, const struct smtp_command *cmd)
{
	(void)cmd;
	smtp_reply(s, "214-2.0.0 Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT HELP VRFY");
	smtp_reply(s, "214 2.0.0 STARTTLS AUTH; see RFC 5321");
}

static void smtp_proceed_vrfy(struct smtp_session *s, const struct smtp_command *cmd)
{
	(void)cmd;
	/* RFC 5321 3.5.3: we do not disclose which users exist. */
	smtp_reply(s, "252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery");
}

/* ---- the command table ---- */

static const struct smtp_handler {
	int (*check)(struct smtp_session *s, const struct smtp_command *cmd);
	void (*proceed)(struct smtp_session *s, const struct smtp_command *cmd);
} handlers[SMTP_CMD_COUNT] = {
    [SMTP_CMD_EHLO] = {smtp_check_ehlo, smtp_proceed_ehlo},
    [SMTP_CMD_HELO] = {smtp_check_ehlo, smtp_proceed_ehlo},
    [SMTP_CMD_MAIL] = {smtp_check_mail, smtp_proceed_mail},
    [SMTP_CMD_RCPT] = {smtp_check_rcpt, smtp_proceed_rcpt},
    [SMTP_CMD_DATA] = {smtp_check_data, smtp_proceed_data},
    [SMTP_CMD_BDAT] = {smtp_check_bdat, smtp_proceed_bdat},
    [SMTP_CMD_RSET] = {smtp_check_any, smtp_proceed_rset},
    [SMTP_CMD_NOOP] = {smtp_check_any, smtp_proceed_noop},
    [SMTP_CMD_QUIT] = {smtp_check_any, smtp_proceed_quit},
    [SMTP_CMD_HELP] = {smtp_check_any, smtp_proceed_help},
    [SMTP_CMD_VRFY] = {smtp_check_any, smtp_proceed_vrfy},
    [SMTP_CMD_STARTTLS] = {smtp_check_starttls, smtp_proceed_starttls},
    [SMTP_CMD_AUTH] = {smtp_check_auth, smtp_proceed_auth},
};

static void handle_command(struct smtp_session *s, const char *line, size_t len)
{
	char redacted[1024];
	struct smtp_command cmd;
	struct smtp_error err;
	int rc;

	s->cmd_start = smtp_now_usec();
	trace_redact_command(line, 0, redacted, sizeof(redacted));
	trace_publish(conn_id(s->c), s->protocol, smtp_session_user(s), TRACE_COMMAND, 0, redacted);
	rc = smtp_parse(line, len, &cmd, &err);
	s->verb = cmd.verb;
	if (rc < 0) {
		/* A BDAT whose size is known has its chunk read before the reply. */
		if (cmd.verb == SMTP_CMD_BDAT && (err.code != 501 || cmd.chunk_size)) {
			bdat_refuse(s, &cmd, err.code, err.status, err.text);
			return;
		}
		smtp_fail_error(s, &err);
		return;
	}
	if (handlers[cmd.verb].check(s, &cmd) < 0)
		return;
	handlers[cmd.verb].proceed(s, &cmd);
}

/* ---- input ---- */

/* Moves one DATA segment from the input; false when more bytes are needed. */
static bool read_data_segment(struct smtp_session *s)
{
	struct evbuffer *in = conn_input(s->c);
	size_t avail = evbuffer_get_length(in), seg;
	size_t seg_max = s->max_data_line + 1;
	struct evbuffer_ptr p;

	if (avail == 0)
		return false;
	p = evbuffer_search(in, "\n", 1, NULL);
	if (p.pos >= 0)
		seg = (size_t)p.pos + 1;
	else if (avail >= seg_max)
		seg = seg_max;
	else
		return false;
	if (seg > seg_max)
		seg = seg_max;
	if (evbuffer_remove(in, s->piece, seg) != (int)seg) {
		conn_close(s->c);
		return false;
	}
	if (smtp_data_feed(&s->data, s->piece, seg) < 0) {
		smtp_reply(s, "451 4.3.0 Insufficient system resources");
		conn_close(s->c);
		return false;
	}
	sodium_memzero(s->piece, seg);
	if (s->data.done) {
		s->mode = SMTP_INPUT_COMMAND;
		s->cmd_start = smtp_now_usec();
		s->verb = SMTP_CMD_DATA;
		if (s->data.error != SMTP_DATA_OK) {
			struct smtp_error e;
			smtp_data_error_reply(s->data.error, &e);
			smtp_reset_transaction(s);
			smtp_fail_error(s, &e);
		} else {
			smtp_deliver_start(s);
		}
	}
	return true;
}

/* Moves BDAT chunk bytes from the input; false when more bytes are needed. */
static bool read_bdat_piece(struct smtp_session *s)
{
	struct evbuffer *in = conn_input(s->c);
	size_t avail = evbuffer_get_length(in), n;

	if (s->bdat_remaining > 0) {
		if (avail == 0)
			return false;
		n = avail < s->piece_max ? avail : s->piece_max;
		if (n > s->bdat_remaining)
			n = (size_t)s->bdat_remaining;
		if (s->bdat_discard || s->data.error == SMTP_DATA_TOO_BIG) {
			evbuffer_drain(in, n);
		} else {
			if (evbuffer_remove(in, s->piece, n) != (int)n) {
				conn_close(s->c);
				return false;
			}
			if (smtp_data_append(&s->data, s->piece, n) < 0) {
				smtp_reply(s, "451 4.3.0 Insufficient system resources");
				conn_close(s->c);
				return false;
			}
			sodium_memzero(s->piece, n);
		}
		s->bdat_remaining -= n;
	}
	if (s->bdat_remaining == 0) {
		s->cmd_start = smtp_now_usec();
		s->verb = SMTP_CMD_BDAT;
		bdat_chunk_done(s);
	}
	return true;
}

static void smtp_input(void *arg)
{
	struct smtp_session *s = arg;

	s->in_input = true;
	while (!s->busy && !conn_is_closing(s->c)) {
		ssize_t n;

		if (s->mode == SMTP_INPUT_DATA) {
			if (!read_data_segment(s))
				break;
			continue;
		}
		if (s->mode == SMTP_INPUT_BDAT) {
			if (!read_bdat_piece(s))
				break;
			continue;
		}
		n = conn_readline(s->c, s->line, SMTP_AUTH_LINE_MAX);
		if (n == -1)
			break;
		if (n < 0) {
			s->cmd_start = smtp_now_usec();
			s->verb = SMTP_CMD_COUNT;
			if (s->mode != SMTP_INPUT_COMMAND) {
				/* A broken SASL exchange is cancelled, not continued. */
				s->mode = SMTP_INPUT_COMMAND;
				sodium_memzero(s->login_user, sizeof(s->login_user));
			}
			smtp_fail(s, 500, "5.5.2",
				  n == -2 ? "Line too long" : "Lines must end with CRLF");
			continue;
		}
		if (s->mode == SMTP_INPUT_COMMAND)
			handle_command(s, s->line, (size_t)n);
		else
			smtp_auth_continue(s, s->line, (size_t)n);
		sodium_memzero(s->line, (size_t)n);
	}
	s->in_input = false;
}

/* ---- protocol_ops ---- */

static void *smtp_open(struct conn *c)
{
	struct smtp_session *s = calloc(1, sizeof(*s));
	const struct config *cfg = conn_config(c);

	if (!s)
		return NULL;
	s->c = c;
	s->cfg = cfg;
	s->submission = strcmp(conn_listener(c)->protocol, "submission") == 0;
	s->protocol = s->submission ? "submission" : "smtp";
	s->state = SMTP_STATE_INIT;
	s->max_errors = cfg->limits.max_errors ? cfg->limits.max_errors : SMTP_DEFAULT_MAX_ERRORS;
	s->max_recipients =
	    cfg->limits.max_recipients ? cfg->limits.max_recipients : SMTP_DEFAULT_MAX_RECIPIENTS;
	s->max_message =
	    cfg->limits.max_message_size ? cfg->limits.max_message_size : SMTP_DEFAULT_MAX_MESSAGE;
	s->max_data_line = cfg->limits.max_line_length > SMTP_MIN_DATA_LINE
			       ? cfg->limits.max_line_length
			       : SMTP_MIN_DATA_LINE;
	/* One buffer serves DATA segments (cut at the line limit, +1 so that an
	 * over-long line is seen) and BDAT pieces. */
	s->piece_max =
	    s->max_data_line + 1 > SMTP_BDAT_PIECE ? s->max_data_line + 1 : SMTP_BDAT_PIECE;
	s->line = malloc(SMTP_AUTH_LINE_MAX + 2);
	s->piece = malloc(s->piece_max);
	if (!s->line || !s->piece) {
		free(s->line);
		free(s->piece);
		free(s);
		return NULL;
	}
	s->verb = SMTP_CMD_COUNT;
	s->cmd_start = smtp_now_usec();
	smtp_reply(s, "220 %s ESMTP Postern", cfg->server.hostname);
	return s;
}

static void smtp_tls_ready(void *arg)
{
	struct smtp_session *s = arg;

	s->state = SMTP_STATE_INIT;
	s->mode = SMTP_INPUT_COMMAND;
	smtp_resume(s);
}

static void smtp_timeout(void *arg)
{
	struct smtp_session *s = arg;

	s->cmd_start = smtp_now_usec();
	s->verb = SMTP_CMD_COUNT;
	smtp_reply(s, "421 4.4.2 %s Error: timeout exceeded", s->cfg->server.hostname);
}

static void smtp_close(void *arg)
{
	struct smtp_session *s = arg;

	smtp_data_free(&s->data);
	free(s->rcpts);
	sodium_memzero(s->line, SMTP_AUTH_LINE_MAX + 2);
	free(s->line);
	free(s->piece);
	sodium_memzero(s->login_user, sizeof(s->login_user));
	free(s);
}

static const struct protocol_ops smtp_ops = {
    .name = "smtp",
    .busy_reply = "421 4.7.0 Too many connections, try again later",
    .open = smtp_open,
    .input = smtp_input,
    .tls_ready = smtp_tls_ready,
    .timeout = smtp_timeout,
    .close = smtp_close,
};

static const struct protocol_ops submission_ops = {
    .name = "submission",
    .busy_reply = "421 4.7.0 Too many connections, try again later",
    .open = smtp_open,
    .input = smtp_input,
    .tls_ready = smtp_tls_ready,
    .timeout = smtp_timeout,
    .close = smtp_close,
};

void smtp_register(void)
{
	net_register_protocol(&smtp_ops);
	net_register_protocol(&submission_ops);
}
