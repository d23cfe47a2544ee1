/*
 * pop3_session.c - the POP3 state machine (RFC 1939) on top of src/net.
 *
 * A session is AUTHORIZATION until a login succeeds, then TRANSACTION on a
 * snapshot of INBOX (pop3_maildrop.c), then UPDATE after QUIT, when the
 * messages marked by DELE are expunged in one store transaction. A session
 * that ends any other way deletes nothing.
 *
 * Every command has one handler, pop3_cmd_<verb>, listed in the table at the
 * bottom with the states it is valid in. Every reply goes through
 * pop3_reply(), which traces it; pop3_done() meters the finished command.
 * While a login, a deferred decryption, the failed-login delay or a RETR
 * stream is under way the session is "busy" and pipelined input waits in
 * the connection's buffer.
 *
 * Credentials are accepted only over TLS (STLS or the implicit-TLS port);
 * APOP is not offered because it needs the plaintext password on the server
 * and Postern keeps only Argon2id hashes (docs/pop3.md).
 */
#include <config.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <sodium.h>

#include "auth/auth.h"
#include "auth/auth_async.h"
#include "net/net.h"
#include "pop3/pop3.h"
#include "pop3/pop3_maildrop.h"
#include "trace/metrics.h"
#include "trace/trace.h"
#include "util/i18n.h"
#include "util/log.h"

#define PROTOCOL "pop3"
/* Messages up to this size are read and decrypted on the loop thread; larger
 * ones go to the job pool so one big RETR does not stall other clients. */
#define POP3_INLINE_FETCH_MAX (256 * 1024)
/* RETR stops writing while this much output is still unsent. */
#define POP3_STREAM_HIGH_WATER (512 * 1024)
#define POP3_STREAM_CHUNK (32 * 1024)
/* While the client does not read, the stream looks again after 1 ms, then
 * backs off up to 32 ms so stalled clients cost next to nothing. */
#define POP3_STREAM_RETRY_MIN_MS 1
#define POP3_STREAM_RETRY_MAX_MS 32

enum pop3_state {
	POP3_STATE_AUTHORIZATION = 1 << 0,
	POP3_STATE_TRANSACTION = 1 << 1,
	POP3_STATE_UPDATE = 1 << 2,
};

struct pop3_stream {
	unsigned char *data; /* plaintext, wiped at the end */
	size_t data_len;     /* whole message */
	size_t len;	     /* bytes to send (TOP sends a prefix) */
	size_t pos;
	bool at_line_start;
	bool active;
	unsigned retry_ms; /* current back-off while output is stalled */
};

struct pop3_session {
	struct conn *c;
	const struct config *cfg;
	enum pop3_state state;
	bool busy;	/* a job, the login delay or a stream holds the session */
	bool in_input;	/* pop3_input() is on the stack */
	bool sasl_wait; /* AUTH PLAIN sent "+ " and waits for the response */
	unsigned errors;

	char user[POP3_USER_MAX + 1]; /* from USER, until PASS */
	bool have_user;

	char *line; /* input line buffer, wiped after each line */
	size_t line_max;

	struct auth_identity id;
	bool logged_in;
	struct pop3_maildrop drop;

	enum pop3_verb verb; /* the command being served */
	uint64_t cmd_start;  /* monotonic usec */

	struct pop3_stream stream;
	struct event *timer; /* failed-login delay and stream back-pressure */
	void (*timer_fn)(struct pop3_session *s);
};

static void pop3_input(void *arg);

/* ---- replies, trace and metrics ---- */

static uint64_t now_usec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static const char *session_user(struct pop3_session *s)
{
	const char *u = conn_user(s->c);
	return u ? u : "";
}

static uint32_t cmd_elapsed(const struct pop3_session *s)
{
	uint64_t d = now_usec() - s->cmd_start;
	return d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
}

/* Writes one status line (with CRLF) and publishes it on the trace bus. */
static void pop3_reply(struct pop3_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void pop3_reply(struct pop3_session *s, const char *fmt, ...)
{
	char text[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	conn_printf(s->c, "%s\r\n", text);
	trace_publish(conn_id(s->c), PROTOCOL, session_user(s), TRACE_REPLY, cmd_elapsed(s), text);
}

/* The command is fully answered. */
static void pop3_done(struct pop3_session *s)
{
	metrics_command(PROTOCOL, s->verb < POP3_CMD_COUNT ? pop3_verb_name(s->verb) : "UNKNOWN",
			now_usec() - s->cmd_start);
}

/* A -ERR that counts against limits.max_errors; too many close the session. */
static void pop3_fail(struct pop3_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void pop3_fail(struct pop3_session *s, const char *fmt, ...)
{
	char text[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	pop3_reply(s, "-ERR %s", text);
	pop3_done(s);
	if (s->cfg->limits.max_errors && ++s->errors >= s->cfg->limits.max_errors) {
		pop3_reply(s, "-ERR [SYS/PERM] too many errors, closing connection");
		conn_close(s->c);
	}
}

/* Continues pipelined input after the session was busy. */
static void pop3_resume(struct pop3_session *s)
{
	s->busy = false;
	if (!s->in_input && !conn_is_closing(s->c))
		pop3_input(s);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pop3_session *s = arg;
	(void)fd;
	(void)what;
	if (s->timer_fn)
		s->timer_fn(s);
}

static int pop3_after(struct pop3_session *s, unsigned msec, void (*fn)(struct pop3_session *))
{
	struct timeval tv = {.tv_sec = msec / 1000, .tv_usec = (msec % 1000) * 1000};

	if (!s->timer) {
		s->timer = evtimer_new(conn_base(s->c), timer_cb, s);
		if (!s->timer)
			return -1;
	}
	s->timer_fn = fn;
	return evtimer_add(s->timer, &tv);
}

/* ---- message streaming (RETR, TOP) ---- */

static void stream_free(struct pop3_stream *st)
{
	if (st->data) {
		sodium_memzero(st->data, st->data_len);
		free(st->data);
	}
	memset(st, 0, sizeof(*st));
}

static void stream_pump(struct pop3_session *s)
{
	unsigned char buf[POP3_STREAM_CHUNK];
	struct pop3_stream *st = &s->stream;
	size_t out_len;

	if (conn_is_closing(s->c))
		return;
	while (st->pos < st->len) {
		if (conn_output_pending(s->c) >= POP3_STREAM_HIGH_WATER) {
			sodium_memzero(buf, sizeof(buf));
			st->retry_ms = st->retry_ms ? st->retry_ms * 2 : POP3_STREAM_RETRY_MIN_MS;
			if (st->retry_ms > POP3_STREAM_RETRY_MAX_MS)
				st->retry_ms = POP3_STREAM_RETRY_MAX_MS;
			if (pop3_after(s, st->retry_ms, stream_pump) < 0) {
				log_error(_("pop3: cannot arm the stream timer"));
				conn_close(s->c);
			}
			return;
		}
		st->pos += pop3_dot_stuff(st->data + st->pos, st->len - st->pos, &st->at_line_start,
					  buf, sizeof(buf), &out_len);
		conn_write(s->c, buf, out_len);
		st->retry_ms = 0;
	}
	sodium_memzero(buf, sizeof(buf));
	/* The terminating dot must start a line (RFC 1939 3). */
	if (!st->at_line_start)
		conn_write(s->c, "\r\n", 2);
	conn_write(s->c, ".\r\n", 3);
	stream_free(st);
	pop3_done(s);
	pop3_resume(s);
}

/* Sends the message in PLAIN (taken over) for RETR, or its TOP prefix. */
static void stream_start(struct pop3_session *s, unsigned char *plain, size_t len, bool top,
			 uint32_t lines)
{
	struct pop3_stream *st = &s->stream;

	st->data = plain;
	st->data_len = len;
	st->len = top ? pop3_top_length(plain, len, lines) : len;
	st->pos = 0;
	st->at_line_start = true;
	st->active = true;
	if (top)
		pop3_reply(s, "+OK top of message follows");
	else
		pop3_reply(s, "+OK %zu octets", len);
	s->busy = true;
	stream_pump(s);
}

struct fetch_job {
	struct pop3_session *s;
	struct pop3_message msg;
	uint32_t number;
	bool top;
	uint32_t lines;
	int rc;
	unsigned char *plain;
	size_t len;
};

static void fetch_finish(struct pop3_session *s, struct fetch_job *job)
{
	if (job->rc == STORE_OK) {
		stream_start(s, job->plain, job->len, job->top, job->lines);
		return;
	}
	if (job->rc == STORE_NOTFOUND) {
		pop3_reply(s, "-ERR message %u was removed by another session", job->number);
	} else if (job->rc == POP3_UNREADABLE) {
		/* Permanent, so no [SYS/TEMP]: a client would retry for ever. */
		log_warn(_("pop3: message %lld of %s cannot be decrypted with the current key"),
			 (long long)job->msg.id, session_user(s));
		pop3_reply(s,
			   "-ERR message %u cannot be decrypted: it was sealed to a key that a "
			   "password reset replaced",
			   job->number);
	} else {
		log_error(_("pop3: cannot read message %lld for %s"), (long long)job->msg.id,
			  session_user(s));
		pop3_reply(s, "-ERR [SYS/TEMP] cannot read message %u, try again later",
			   job->number);
	}
	pop3_done(s);
	pop3_resume(s);
}

static void fetch_work(struct store *st, void *arg)
{
	struct fetch_job *job = arg;
	job->rc = pop3_message_fetch(st, job->s->id.key, &job->msg, &job->plain, &job->len);
}

static void fetch_done(struct conn *c, void *arg)
{
	struct fetch_job *job = arg;
	(void)c;

	if (conn_is_closing(job->s->c)) {
		if (job->plain) {
			sodium_memzero(job->plain, job->len);
			free(job->plain);
		}
	} else {
		fetch_finish(job->s, job);
	}
	free(job);
}

/* RETR and TOP: the message is read and decrypted now (small) or on the job
 * pool (large), then streamed. */
static void send_message(struct pop3_session *s, const struct pop3_message *m, uint32_t number,
			 bool top, uint32_t lines)
{
	struct fetch_job *job = calloc(1, sizeof(*job));

	if (!job) {
		pop3_fail(s, "[SYS/TEMP] out of memory");
		return;
	}
	job->s = s;
	job->msg = *m;
	job->number = number;
	job->top = top;
	job->lines = lines;
	s->busy = true;
	if (m->size <= POP3_INLINE_FETCH_MAX) {
		job->rc =
		    pop3_message_fetch(conn_store(s->c), s->id.key, m, &job->plain, &job->len);
		fetch_finish(s, job);
		free(job);
		return;
	}
	if (conn_defer(s->c, fetch_work, fetch_done, job) < 0) {
		free(job);
		s->busy = false;
		pop3_fail(s, "[SYS/TEMP] server busy, try again later");
	}
}

/* ---- login ---- */

/* On the job pool after a successful login: the maildrop goes straight into
 * the session, which nothing else touches while the login runs (pop3_close
 * frees it if the client left meanwhile). */
static int login_load_maildrop(struct store *st, const struct auth_identity *id, void *arg)
{
	struct pop3_session *s = arg;

	return pop3_maildrop_load(st, id->user_id, &s->drop);
}

static void login_failed_reply(struct pop3_session *s)
{
	pop3_fail(s, "[AUTH] Authentication failed");
	pop3_resume(s);
}

static void login_done(struct conn *c, struct auth_login *l)
{
	struct pop3_session *s = l->arg;
	size_t count;
	int64_t bytes;
	(void)c;

	if (l->result == AUTH_OK && l->then_rc == STORE_OK) {
		s->id = l->id;
		memset(&l->id, 0, sizeof(l->id)); /* the session owns the key now */
		s->logged_in = true;
		s->state = POP3_STATE_TRANSACTION;
		conn_set_user(s->c, s->id.address);
		trace_publish(conn_id(s->c), PROTOCOL, s->id.address, TRACE_AUTH, 0, "ok");
		pop3_maildrop_totals(&s->drop, &count, &bytes);
		pop3_reply(s, "+OK maildrop has %zu messages (%lld octets)", count,
			   (long long)bytes);
		pop3_done(s);
		pop3_resume(s);
		return;
	}
	pop3_maildrop_free(&s->drop);
	if (l->result == AUTH_THROTTLED) {
		trace_publish(conn_id(s->c), PROTOCOL, l->address, TRACE_AUTH, 0, "throttled");
		pop3_reply(s, "-ERR [SYS/TEMP] too many failed logins, try again later");
		pop3_done(s);
		pop3_resume(s);
		return;
	}
	if (l->result == AUTH_TEMPFAIL || l->result == AUTH_OK) {
		log_warn(_("pop3: login of %s failed temporarily"), l->address);
		pop3_reply(s, "-ERR [SYS/TEMP] cannot open the maildrop, try again later");
		pop3_done(s);
		pop3_resume(s);
		return;
	}
	trace_publish(conn_id(s->c), PROTOCOL, l->address, TRACE_AUTH, 0, "failed");
	metrics_count(PROTOCOL, "auth_failures", NULL, NULL, 1);
	/* Every failure kind waits the same delay and gets the same reply. */
	if (s->cfg->auth.failure_delay_ms == 0 ||
	    pop3_after(s, s->cfg->auth.failure_delay_ms, login_failed_reply) < 0)
		login_failed_reply(s);
}

/* Starts the login on the job pool; the caller wipes its copy of the password. */
static void login_begin(struct pop3_session *s, const char *user, const char *password,
			size_t pwlen)
{
	struct auth_request req = {
	    .address = user, .password = password, .pwlen = pwlen, .protocol = "pop3"};
	int rc;

	s->have_user = false;
	if (strlen(user) > POP3_USER_MAX || pwlen > POP3_PASSWORD_MAX) {
		pop3_fail(s, "[AUTH] Authentication failed");
		return;
	}
	s->busy = true;
	rc = auth_login_async(s->c, &req, login_load_maildrop, login_done, s);
	if (rc < 0)
		s->busy = false;
	if (rc == -2)
		pop3_fail(s, "[AUTH] Authentication failed");
	else if (rc < 0)
		pop3_fail(s, "[SYS/TEMP] server busy, try again later");
}

/* Credentials only over TLS (RFC 2595 2.1): a clear refusal, never a login. */
static bool require_tls(struct pop3_session *s)
{
	if (conn_is_tls(s->c))
		return true;
	if (conn_listener(s->c)->tls == TLS_MODE_STARTTLS)
		pop3_fail(s, "[AUTH] plaintext authentication disallowed: use STLS first");
	else
		pop3_fail(s, "[AUTH] plaintext authentication disallowed: use the POP3S port");
	return false;
}

/* ---- commands ---- */

/* The message a number names, or NULL after a precise reply. */
static struct pop3_message *lookup(struct pop3_session *s, uint32_t number)
{
	struct pop3_message *m;

	if (number == 0 || number > s->drop.count) {
		pop3_fail(s, "no such message");
		return NULL;
	}
	m = &s->drop.msgs[number - 1];
	if (m->deleted) {
		pop3_fail(s, "message %u already deleted", number);
		return NULL;
	}
	return m;
}

/* RFC 2449 5 */
static void pop3_cmd_capa(struct pop3_session *s, const struct pop3_command *cmd)
{
	bool auth = s->state == POP3_STATE_AUTHORIZATION;
	(void)cmd;

	pop3_reply(s, "+OK Capability list follows");
	conn_printf(s->c, "TOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n");
	if (auth && conn_is_tls(s->c))
		conn_printf(s->c, "USER\r\nSASL PLAIN\r\n");
	if (auth && !conn_is_tls(s->c) && conn_listener(s->c)->tls == TLS_MODE_STARTTLS)
		conn_printf(s->c, "STLS\r\n");
	conn_printf(s->c, "IMPLEMENTATION Postern\r\n.\r\n");
	pop3_done(s);
}

/* RFC 2595 4 */
static void pop3_cmd_stls(struct pop3_session *s, const struct pop3_command *cmd)
{
	(void)cmd;
	if (conn_is_tls(s->c)) {
		pop3_fail(s, "already using TLS");
		return;
	}
	if (conn_listener(s->c)->tls != TLS_MODE_STARTTLS) {
		pop3_fail(s, "STLS not available on this port");
		return;
	}
	pop3_reply(s, "+OK Begin TLS negotiation");
	pop3_done(s);
	s->busy = true; /* input sent before the handshake is discarded by net */
	if (conn_starttls(s->c) < 0) {
		log_warn(_("pop3: STARTTLS failed for %s"), conn_peer_address(s->c));
		conn_close(s->c);
	}
}

/* RFC 1939 7 */
static void pop3_cmd_user(struct pop3_session *s, const struct pop3_command *cmd)
{
	if (!require_tls(s))
		return;
	memcpy(s->user, cmd->arg, cmd->arg_len);
	s->user[cmd->arg_len] = '\0';
	s->have_user = true;
	pop3_reply(s, "+OK send PASS");
	pop3_done(s);
}

/* RFC 1939 7 */
static void pop3_cmd_pass(struct pop3_session *s, const struct pop3_command *cmd)
{
	if (!require_tls(s))
		return;
	if (!s->have_user) {
		pop3_fail(s, "USER first");
		return;
	}
	login_begin(s, s->user, cmd->arg, cmd->arg_len);
}

/* Decodes a SASL PLAIN response and logs in with it. */
static void sasl_plain_login(struct pop3_session *s, const char *b64, size_t len)
{
	char user[POP3_USER_MAX + 1];
	char pass[POP3_PASSWORD_MAX + 1];
	size_t pwlen = 0;

	if (pop3_sasl_plain_decode(b64, len, user, sizeof(user), pass, sizeof(pass), &pwlen) < 0) {
		sodium_memzero(pass, sizeof(pass));
		pop3_fail(s, "[AUTH] Authentication failed");
		return;
	}
	login_begin(s, user, pass, pwlen);
	sodium_memzero(pass, sizeof(pass));
}

/* RFC 5034 4 */
static void pop3_cmd_auth(struct pop3_session *s, const struct pop3_command *cmd)
{
	if (!require_tls(s))
		return;
	if (cmd->mechanism[0] == '\0') {
		pop3_reply(s, "+OK SASL mechanisms follow");
		conn_printf(s->c, "PLAIN\r\n.\r\n");
		pop3_done(s);
		return;
	}
	if (strcmp(cmd->mechanism, "PLAIN") != 0) {
		pop3_fail(s, "unsupported SASL mechanism");
		return;
	}
	if (!cmd->has_initial) {
		s->sasl_wait = true;
		pop3_reply(s, "+ ");
		return;
	}
	sasl_plain_login(s, cmd->arg, cmd->arg_len);
}

/* RFC 1939 5: refused with a reason; see docs/pop3.md. */
static void pop3_cmd_apop(struct pop3_session *s, const struct pop3_command *cmd)
{
	(void)cmd;
	pop3_fail(s, "[AUTH] APOP is not supported, use USER/PASS or AUTH PLAIN over TLS");
}

/* RFC 1939 5 */
static void pop3_cmd_stat(struct pop3_session *s, const struct pop3_command *cmd)
{
	size_t count;
	int64_t bytes;
	(void)cmd;

	pop3_maildrop_totals(&s->drop, &count, &bytes);
	pop3_reply(s, "+OK %zu %lld", count, (long long)bytes);
	pop3_done(s);
}

/* RFC 1939 5 */
static void pop3_cmd_list(struct pop3_session *s, const struct pop3_command *cmd)
{
	size_t count;
	int64_t bytes;

	if (cmd->has_msg) {
		const struct pop3_message *m = lookup(s, cmd->msg);
		if (m) {
			pop3_reply(s, "+OK %u %lld", cmd->msg, (long long)m->size);
			pop3_done(s);
		}
		return;
	}
	pop3_maildrop_totals(&s->drop, &count, &bytes);
	pop3_reply(s, "+OK %zu messages (%lld octets)", count, (long long)bytes);
	for (size_t i = 0; i < s->drop.count; i++)
		if (!s->drop.msgs[i].deleted)
			conn_printf(s->c, "%zu %lld\r\n", i + 1, (long long)s->drop.msgs[i].size);
	conn_write(s->c, ".\r\n", 3);
	pop3_done(s);
}

/* RFC 1939 7: unique ids are "uidvalidity-uid", stable across sessions. */
static void pop3_cmd_uidl(struct pop3_session *s, const struct pop3_command *cmd)
{
	if (cmd->has_msg) {
		const struct pop3_message *m = lookup(s, cmd->msg);
		if (m) {
			pop3_reply(s, "+OK %u %u-%u", cmd->msg, s->drop.uidvalidity, m->uid);
			pop3_done(s);
		}
		return;
	}
	pop3_reply(s, "+OK unique-id listing follows");
	for (size_t i = 0; i < s->drop.count; i++)
		if (!s->drop.msgs[i].deleted)
			conn_printf(s->c, "%zu %u-%u\r\n", i + 1, s->drop.uidvalidity,
				    s->drop.msgs[i].uid);
	conn_write(s->c, ".\r\n", 3);
	pop3_done(s);
}

/* RFC 1939 5 */
static void pop3_cmd_retr(struct pop3_session *s, const struct pop3_command *cmd)
{
	const struct pop3_message *m = lookup(s, cmd->msg);
	if (m)
		send_message(s, m, cmd->msg, false, 0);
}

/* RFC 1939 7 */
static void pop3_cmd_top(struct pop3_session *s, const struct pop3_command *cmd)
{
	const struct pop3_message *m = lookup(s, cmd->msg);
	if (m)
		send_message(s, m, cmd->msg, true, cmd->lines);
}

/* RFC 1939 5 */
static void pop3_cmd_dele(struct pop3_session *s, const struct pop3_command *cmd)
{
	struct pop3_message *m = lookup(s, cmd->msg);
	if (!m)
		return;
	m->deleted = true;
	pop3_reply(s, "+OK message %u deleted", cmd->msg);
	pop3_done(s);
}

/* RFC 1939 5 */
static void pop3_cmd_noop(struct pop3_session *s, const struct pop3_command *cmd)
{
	(void)cmd;
	pop3_reply(s, "+OK");
	pop3_done(s);
}

/* RFC 1939 5 */
static void pop3_cmd_rset(struct pop3_session *s, const struct pop3_command *cmd)
{
	size_t count;
	int64_t bytes;
	(void)cmd;

	pop3_maildrop_reset(&s->drop);
	pop3_maildrop_totals(&s->drop, &count, &bytes);
	pop3_reply(s, "+OK maildrop has %zu messages (%lld octets)", count, (long long)bytes);
	pop3_done(s);
}

struct expunge_job {
	struct pop3_session *s;
	int rc;
	size_t removed;
};

static void expunge_work(struct store *st, void *arg)
{
	struct expunge_job *job = arg;
	job->rc = pop3_maildrop_expunge(st, &job->s->drop, &job->removed);
}

static void expunge_done(struct conn *c, void *arg)
{
	struct expunge_job *job = arg;
	struct pop3_session *s = job->s;
	(void)c;

	if (job->rc == STORE_OK) {
		trace_publish(conn_id(s->c), PROTOCOL, session_user(s), TRACE_INFO, 0,
			      job->removed == 1 ? "1 message expunged" : "messages expunged");
		metrics_count(PROTOCOL, "messages_expunged", NULL, NULL, job->removed);
		pop3_reply(s, "+OK Postern POP3 server signing off (%zu messages deleted)",
			   job->removed);
	} else {
		log_error(_("pop3: expunge for %s failed"), session_user(s));
		pop3_reply(s, "-ERR [SYS/TEMP] some deleted messages not removed");
	}
	pop3_done(s);
	conn_close(s->c);
	free(job);
}

/* RFC 1939 6: QUIT in TRANSACTION enters UPDATE and expunges. */
static void pop3_cmd_quit(struct pop3_session *s, const struct pop3_command *cmd)
{
	struct expunge_job *job;
	bool marked = false;
	(void)cmd;

	for (size_t i = 0; i < s->drop.count && !marked; i++)
		marked = s->drop.msgs[i].deleted;
	if (s->state != POP3_STATE_TRANSACTION || !marked) {
		pop3_reply(s, "+OK Postern POP3 server signing off");
		pop3_done(s);
		conn_close(s->c);
		s->busy = true;
		return;
	}
	s->state = POP3_STATE_UPDATE;
	s->busy = true;
	job = calloc(1, sizeof(*job));
	if (!job) {
		pop3_reply(s, "-ERR [SYS/TEMP] some deleted messages not removed");
		pop3_done(s);
		conn_close(s->c);
		return;
	}
	job->s = s;
	if (conn_defer(s->c, expunge_work, expunge_done, job) < 0) {
		free(job);
		pop3_reply(s, "-ERR [SYS/TEMP] some deleted messages not removed");
		pop3_done(s);
		conn_close(s->c);
	}
}

typedef void (*pop3_handler)(struct pop3_session *s, const struct pop3_command *cmd);

static const struct {
	pop3_handler fn;
	unsigned states; /* enum pop3_state bits the command is valid in */
} handlers[POP3_CMD_COUNT] = {
    [POP3_CMD_CAPA] = {pop3_cmd_capa, POP3_STATE_AUTHORIZATION | POP3_STATE_TRANSACTION},
    [POP3_CMD_STLS] = {pop3_cmd_stls, POP3_STATE_AUTHORIZATION},
    [POP3_CMD_USER] = {pop3_cmd_user, POP3_STATE_AUTHORIZATION},
    [POP3_CMD_PASS] = {pop3_cmd_pass, POP3_STATE_AUTHORIZATION},
    [POP3_CMD_AUTH] = {pop3_cmd_auth, POP3_STATE_AUTHORIZATION},
    [POP3_CMD_APOP] = {pop3_cmd_apop, POP3_STATE_AUTHORIZATION},
    [POP3_CMD_STAT] = {pop3_cmd_stat, POP3_STATE_TRANSACTION},
    [POP3_CMD_LIST] = {pop3_cmd_list, POP3_STATE_TRANSACTION},
    [POP3_CMD_RETR] = {pop3_cmd_retr, POP3_STATE_TRANSACTION},
    [POP3_CMD_DELE] = {pop3_cmd_dele, POP3_STATE_TRANSACTION},
    [POP3_CMD_NOOP] = {pop3_cmd_noop, POP3_STATE_TRANSACTION},
    [POP3_CMD_RSET] = {pop3_cmd_rset, POP3_STATE_TRANSACTION},
    [POP3_CMD_TOP] = {pop3_cmd_top, POP3_STATE_TRANSACTION},
    [POP3_CMD_UIDL] = {pop3_cmd_uidl, POP3_STATE_TRANSACTION},
    [POP3_CMD_QUIT] = {pop3_cmd_quit, POP3_STATE_AUTHORIZATION | POP3_STATE_TRANSACTION},
};

/* ---- input ---- */

static void handle_sasl_response(struct pop3_session *s, const char *line, size_t len)
{
	char redacted[64];

	s->sasl_wait = false;
	trace_redact_command(line, 1, redacted, sizeof(redacted));
	trace_publish(conn_id(s->c), PROTOCOL, session_user(s), TRACE_COMMAND, 0, redacted);
	if (len == 1 && line[0] == '*') {
		pop3_fail(s, "authentication cancelled");
		return;
	}
	sasl_plain_login(s, line, len);
}

static void handle_line(struct pop3_session *s, const char *line, size_t len)
{
	struct pop3_command cmd;
	enum pop3_parse_status status;
	char redacted[512];

	if (s->sasl_wait) {
		handle_sasl_response(s, line, len);
		return;
	}
	s->cmd_start = now_usec();
	trace_redact_command(line, 0, redacted, sizeof(redacted));
	trace_publish(conn_id(s->c), PROTOCOL, session_user(s), TRACE_COMMAND, 0, redacted);
	status = pop3_parse(line, len, &cmd);
	s->verb = cmd.verb;
	if (status != POP3_PARSE_OK) {
		pop3_fail(s, "%s", pop3_parse_error(status));
		return;
	}
	if (!(handlers[cmd.verb].states & s->state)) {
		pop3_fail(s, "command not valid in this state");
		return;
	}
	handlers[cmd.verb].fn(s, &cmd);
}

static void pop3_input(void *arg)
{
	struct pop3_session *s = arg;

	s->in_input = true;
	while (!s->busy && !conn_is_closing(s->c)) {
		ssize_t n = conn_readline(s->c, s->line, s->line_max);
		if (n == -1)
			break;
		if (n < 0) {
			s->cmd_start = now_usec();
			s->verb = POP3_CMD_COUNT;
			s->sasl_wait = false;
			pop3_fail(s, "%s", n == -2 ? "line too long" : "lines must end with CRLF");
			continue;
		}
		handle_line(s, s->line, (size_t)n);
		sodium_memzero(s->line, (size_t)n);
	}
	s->in_input = false;
}

/* ---- protocol_ops ---- */

static void *pop3_open(struct conn *c)
{
	struct pop3_session *s = calloc(1, sizeof(*s));
	size_t max;

	if (!s)
		return NULL;
	s->c = c;
	s->cfg = conn_config(c);
	s->state = POP3_STATE_AUTHORIZATION;
	max = s->cfg->limits.max_line_length;
	if (max == 0 || max > POP3_AUTH_LINE_MAX)
		max = POP3_AUTH_LINE_MAX;
	s->line_max = max;
	s->line = malloc(max + 2);
	if (!s->line) {
		free(s);
		return NULL;
	}
	s->verb = POP3_CMD_COUNT;
	s->cmd_start = now_usec();
	pop3_reply(s, "+OK Postern POP3 server ready");
	return s;
}

static void pop3_tls_ready(void *arg)
{
	struct pop3_session *s = arg;

	/* RFC 2595 4: the client forgets what it learned before TLS; so do we. */
	s->have_user = false;
	s->sasl_wait = false;
	pop3_resume(s);
}

static void pop3_timeout(void *arg)
{
	struct pop3_session *s = arg;

	s->cmd_start = now_usec();
	pop3_reply(s, "-ERR [SYS/TEMP] autologout: idle for too long");
}

static void pop3_close(void *arg)
{
	struct pop3_session *s = arg;

	if (s->timer)
		event_free(s->timer);
	stream_free(&s->stream);
	auth_identity_clear(&s->id);
	pop3_maildrop_free(&s->drop);
	sodium_memzero(s->line, s->line_max + 2);
	free(s->line);
	sodium_memzero(s->user, sizeof(s->user));
	free(s);
}

static const struct protocol_ops pop3_ops = {
    .name = "pop3",
    .busy_reply = "-ERR [SYS/TEMP] too many connections",
    .open = pop3_open,
    .input = pop3_input,
    .tls_ready = pop3_tls_ready,
    .timeout = pop3_timeout,
    .close = pop3_close,
};

void pop3_register(void)
{
	net_register_protocol(&pop3_ops);
}
