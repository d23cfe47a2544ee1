/*
 * imap_session.c - the IMAP connection state machine (RFC 3501 3 / RFC 9051
 * 3) on top of src/net: assembles commands from lines and literals
 * (RFC 3501 4.3, RFC 7888 LITERAL+), parses them (imap_parse.c), checks the
 * state and hands them to their handler in cmd_*.c. Every tagged reply goes
 * through imap_reply(), which traces and meters the command.
 *
 * While a login runs on the job pool, or the failed-login delay, the session
 * is busy and pipelined input waits in the connection buffer. During IDLE
 * and SASL exchanges whole lines go to the command that waits for them.
 */
#include <config.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>
#include <sodium.h>

#include "imap/imap_int.h"
#include "trace/metrics.h"
#include "trace/trace.h"
#include "util/i18n.h"
#include "util/log.h"

/* A command line (without literals) may be this long at least, whatever
 * limits.max_line_length says: long UID sets are normal in IMAP. */
#define IMAP_LINE_MIN 65536
/* Non-APPEND commands (with their literals) are at most this big. */
#define IMAP_COMMAND_SMALL_MAX (1024 * 1024)
/* RFC 9051 5.4 (RFC 3501 5.4): once authenticated, the autologout timer is
 * at least 30 minutes, which also lets clients renew IDLE every 29 minutes
 * (RFC 2177); limits.idle_timeout stays the timeout before login. */
#define IMAP_AUTH_TIMEOUT_SEC 1800

static void imap_input(void *arg);

static uint64_t now_usec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static const char *session_user(struct imap_session *s)
{
	const char *u = conn_user(s->c);
	return u ? u : "";
}

/* ---- replies ---- */

static void imap_reply(struct imap_session *s, const char *status, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
static void imap_reply(struct imap_session *s, const char *status, const char *fmt, va_list ap)
{
	struct imap_buf line = {0};
	uint64_t elapsed = now_usec() - s->cmd_start;
	va_list cp;
	int n;

	va_copy(cp, ap);
	n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	ibuf_printf(&line, "%s %s ", s->tag, status);
	if (n > 0) {
		char *text = malloc((size_t)n + 1);
		if (text) {
			vsnprintf(text, (size_t)n + 1, fmt, ap);
			ibuf_add(&line, text, (size_t)n);
			free(text);
		} else {
			line.failed = true;
		}
	}
	if (line.failed) {
		ibuf_free(&line);
		imap_printf(s, "%s %s Server error\r\n", s->tag, status);
		return;
	}
	trace_publish(conn_id(s->c), IMAP_PROTOCOL, session_user(s), TRACE_REPLY,
		      elapsed > UINT32_MAX ? UINT32_MAX : (uint32_t)elapsed, line.p);
	ibuf_str(&line, "\r\n");
	imap_write(s, line.p, line.len);
	ibuf_free(&line);
	metrics_command(IMAP_PROTOCOL, s->verb[0] ? s->verb : "UNKNOWN", elapsed);
}

void imap_ok(struct imap_session *s, const char *fmt, ...)
{
	va_list ap;

	if (s->state == IMAP_STATE_SELECTED)
		imap_sync(s, s->allow_expunge);
	/* The OK of LOGIN or AUTHENTICATE is the first in an authenticated state. */
	if (s->state != IMAP_STATE_NOT_AUTH && !s->long_timeout) {
		unsigned idle = s->cfg->limits.idle_timeout;
		s->long_timeout = true;
		if (idle)
			conn_set_idle_timeout(s->c, idle > IMAP_AUTH_TIMEOUT_SEC ? idle
									 : IMAP_AUTH_TIMEOUT_SEC);
	}
	va_start(ap, fmt);
	imap_reply(s, "OK", fmt, ap);
	va_end(ap);
}

/* Errors count against limits.max_errors; too many end the session. */
static void count_error(struct imap_session *s)
{
	if (s->cfg->limits.max_errors && ++s->errors >= s->cfg->limits.max_errors) {
		imap_printf(s, "* BYE Too many errors, closing connection\r\n");
		s->state = IMAP_STATE_LOGOUT;
		conn_close(s->c);
	}
}

void imap_no(struct imap_session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	imap_reply(s, "NO", fmt, ap);
	va_end(ap);
}

void imap_bad(struct imap_session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	imap_reply(s, "BAD", fmt, ap);
	va_end(ap);
	count_error(s);
}

void imap_untagged(struct imap_session *s, const char *fmt, ...)
{
	char text[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	imap_printf(s, "* %s\r\n", text);
}

/* Continues pipelined input after the session was busy. */
void imap_continue_input(struct imap_session *s)
{
	s->busy = false;
	if (!s->in_input && !conn_is_closing(s->c))
		imap_input(s);
}

/* ---- dispatch ---- */

static const struct {
	const char *verb;
	imap_handler fn;
	unsigned states;
	bool uid; /* may follow UID */
} commands[] = {
    {"CAPABILITY", imap_cmd_capability, IMAP_STATE_NOT_AUTH | IMAP_STATE_AUTH | IMAP_STATE_SELECTED,
     false},
    {"NOOP", imap_cmd_noop, IMAP_STATE_NOT_AUTH | IMAP_STATE_AUTH | IMAP_STATE_SELECTED, false},
    {"LOGOUT", imap_cmd_logout, IMAP_STATE_NOT_AUTH | IMAP_STATE_AUTH | IMAP_STATE_SELECTED, false},
    {"ID", imap_cmd_id, IMAP_STATE_NOT_AUTH | IMAP_STATE_AUTH | IMAP_STATE_SELECTED, false},
    {"STARTTLS", imap_cmd_starttls, IMAP_STATE_NOT_AUTH, false},
    {"LOGIN", imap_cmd_login, IMAP_STATE_NOT_AUTH, false},
    {"AUTHENTICATE", imap_cmd_authenticate, IMAP_STATE_NOT_AUTH, false},
    {"ENABLE", imap_cmd_enable, IMAP_STATE_AUTH, false},
    {"NAMESPACE", imap_cmd_namespace, IMAP_STATE_AUTH | IMAP_STATE_SELECTED, false},
    {"SELECT", imap_cmd_select, IMAP_STATE_AUTH | IMAP_STATE_SELECTED, false},
    {"EXAMINE", imap_cmd_select, IMAP_STATE_AUTH | IMAP_STATE_SELECTED, false},
    {"CREATE", imap_cmd_create, IMAP_STATE_AUTH | IMAP_STATE_SELECTED, false},
    {"DELETE", imap_cmd_delete, IMAP_STATE_AUTH | IMAP_STATE_SELECTED, false},
    {"RENAME", imap_cmd_rename, IMAP_STATE_AUTH | IMAP_STATE_SELECTED, false},
    {"SUBSCRIBE", imap_cmd_subscribe, IMAP_STATE_AUTH | IMAP_STATE_SELECTED, false},
    {"UNSUBSCRIBE", imap_cmd_subscribe, IMAP_STATE_AUTH | IMAP_STATE_SELECTED, false},
    {"LIST", imap_cmd_list, IMAP_STATE_AUTH | IMAP_STATE_SELECTED, false},
    {"LSUB", imap_cmd_list, IMAP_STATE_AUTH | IMAP_STATE_SELECTED, false},
    {"STATUS", imap_cmd_status, IMAP_STATE_AUTH | IMAP_STATE_SELECTED, false},
    {"APPEND", imap_cmd_append, IMAP_STATE_AUTH | IMAP_STATE_SELECTED, false},
    {"IDLE", imap_cmd_idle, IMAP_STATE_AUTH | IMAP_STATE_SELECTED, false},
    {"CHECK", imap_cmd_check, IMAP_STATE_SELECTED, false},
    {"CLOSE", imap_cmd_close, IMAP_STATE_SELECTED, false},
    {"UNSELECT", imap_cmd_close, IMAP_STATE_SELECTED, false},
    {"EXPUNGE", imap_cmd_expunge, IMAP_STATE_SELECTED, true},
    {"FETCH", imap_cmd_fetch, IMAP_STATE_SELECTED, true},
    {"STORE", imap_cmd_store, IMAP_STATE_SELECTED, true},
    {"COPY", imap_cmd_copy, IMAP_STATE_SELECTED, true},
    {"MOVE", imap_cmd_copy, IMAP_STATE_SELECTED, true},
    {"SEARCH", imap_cmd_search, IMAP_STATE_SELECTED, true},
    {"SORT", imap_cmd_sort, IMAP_STATE_SELECTED, true},
    {"THREAD", imap_cmd_thread, IMAP_STATE_SELECTED, true},
    {"COMPRESS", imap_cmd_compress, IMAP_STATE_AUTH | IMAP_STATE_SELECTED, false},
    {"GETQUOTAROOT", imap_cmd_getquotaroot, IMAP_STATE_AUTH | IMAP_STATE_SELECTED, false},
    {"GETQUOTA", imap_cmd_getquota, IMAP_STATE_AUTH | IMAP_STATE_SELECTED, false},
    {"SETQUOTA", imap_cmd_setquota, IMAP_STATE_AUTH | IMAP_STATE_SELECTED, false},
};

static void dispatch(struct imap_session *s, const char *buf, size_t len)
{
	struct imap_command cmd;
	char redacted[512];
	size_t i;

	s->cmd_start = now_usec();
	/* Only the command line goes to the trace: literals may be messages. */
	{
		size_t l = 0;
		char first[512];
		while (l < len && l + 1 < sizeof(first) && buf[l] != '\r')
			l++;
		memcpy(first, buf, l);
		first[l] = '\0';
		trace_redact_command(first, 0, redacted, sizeof(redacted));
		trace_publish(conn_id(s->c), IMAP_PROTOCOL, session_user(s), TRACE_COMMAND, 0,
			      redacted);
	}
	if (imap_parse(buf, len, &cmd) < 0) {
		snprintf(s->tag, sizeof(s->tag), "%s", cmd.tag);
		s->verb[0] = '\0';
		imap_bad(s, "%s", cmd.error);
		return;
	}
	snprintf(s->tag, sizeof(s->tag), "%s", cmd.tag);
	snprintf(s->verb, sizeof(s->verb), "%s%s", cmd.uid ? "UID " : "", cmd.verb);
	s->uid = cmd.uid;
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(commands[i].verb, cmd.verb) == 0)
			break;
	if (i == sizeof(commands) / sizeof(commands[0]) || (cmd.uid && !commands[i].uid)) {
		s->verb[0] = '\0';
		imap_bad(s, "Unknown command");
	} else if (!(commands[i].states & s->state)) {
		if (s->state == IMAP_STATE_NOT_AUTH)
			imap_bad(s, "Log in first");
		else if (commands[i].states == IMAP_STATE_SELECTED)
			imap_bad(s, "Select a mailbox first");
		else
			imap_bad(s, "Command not valid in this state");
	} else {
		/* RFC 3501 7.4.1: no EXPUNGE during FETCH, STORE, SEARCH (UID ones may); RFC 5256
		 * treats SORT and THREAD like SEARCH. */
		s->allow_expunge =
		    cmd.uid || !(strcmp(cmd.verb, "FETCH") == 0 || strcmp(cmd.verb, "STORE") == 0 ||
				 strcmp(cmd.verb, "SEARCH") == 0 || strcmp(cmd.verb, "SORT") == 0 ||
				 strcmp(cmd.verb, "THREAD") == 0);
		commands[i].fn(s, &cmd);
	}
	imap_command_free(&cmd);
}

/* ---- input ---- */

/* Makes room for EXTRA more bytes (and a NUL) in the command buffer. */
static bool cmd_reserve(struct imap_session *s, size_t extra)
{
	size_t ncap;
	char *np;

	if (s->cmd_len + extra + 1 <= s->cmd_cap)
		return true;
	ncap = s->cmd_cap ? s->cmd_cap : 4096;
	while (ncap < s->cmd_len + extra + 1)
		ncap *= 2;
	np = malloc(ncap);
	if (!np)
		return false;
	/* Copy and wipe rather than realloc: the old block may hold a message. */
	if (s->cmd) {
		memcpy(np, s->cmd, s->cmd_len);
		sodium_memzero(s->cmd, s->cmd_cap);
		free(s->cmd);
	}
	s->cmd = np;
	s->cmd_cap = ncap;
	return true;
}

static bool cmd_append_bytes(struct imap_session *s, const void *data, size_t len)
{
	if (!cmd_reserve(s, len))
		return false;
	memcpy(s->cmd + s->cmd_len, data, len);
	s->cmd_len += len;
	s->cmd[s->cmd_len] = '\0';
	return true;
}

static void cmd_reset(struct imap_session *s)
{
	/* Not kept between commands: thousands of idling sessions would each
	 * hold one (and a big APPEND buffer not for the rest of the session). */
	if (s->cmd) {
		sodium_memzero(s->cmd, s->cmd_len);
		free(s->cmd);
		s->cmd = NULL;
		s->cmd_cap = 0;
	}
	s->cmd_len = 0;
}

/* The tag of the command being assembled, for replies before it is complete. */
static void assembled_tag(struct imap_session *s)
{
	size_t l = 0;
	while (l < s->cmd_len && l < IMAP_TAG_MAX && s->cmd[l] != ' ' && s->cmd[l] != '\r')
		l++;
	if (l == 0) {
		strcpy(s->tag, "*");
		return;
	}
	memcpy(s->tag, s->cmd, l);
	s->tag[l] = '\0';
}

static bool assembling_append(struct imap_session *s)
{
	const char *sp = memchr(s->cmd, ' ', s->cmd_len);
	return sp && (size_t)(s->cmd + s->cmd_len - sp) > 7 &&
	       strncasecmp(sp + 1, "APPEND ", 7) == 0;
}

/* A complete line arrived for the command being assembled. */
static void handle_line(struct imap_session *s, const char *line, size_t len)
{
	uint64_t size = 0;
	bool nonsync = false;
	int lit;

	if (s->skip_rest) {
		/* The rest of a command whose literal was refused: more
		 * non-synchronizing literals in it are skipped as well. */
		lit = imap_line_literal(line, len, &size, &nonsync);
		s->skip_rest = lit == 1 && nonsync;
		if (s->skip_rest)
			s->discard_left = size;
		return;
	}
	if (s->cmd_len == 0 && s->idling) {
		imap_idle_done(s, line, len);
		return;
	}
	if (s->cmd_len == 0 && s->sasl_wait) {
		imap_sasl_response(s, line, len);
		return;
	}
	if (!cmd_append_bytes(s, line, len)) {
		cmd_reset(s);
		imap_printf(s, "* BYE Out of memory\r\n");
		conn_close(s->c);
		return;
	}
	lit = imap_line_literal(line, len, &size, &nonsync);
	if (lit == 0) {
		dispatch(s, s->cmd, s->cmd_len);
		cmd_reset(s);
		return;
	}
	s->cmd_start = now_usec();
	assembled_tag(s);
	s->verb[0] = '\0';
	if (lit < 0) {
		cmd_reset(s);
		imap_bad(s, "Malformed literal size");
		return;
	}
	{
		bool append = assembling_append(s);
		uint64_t limit = append ? s->cfg->limits.max_message_size : IMAP_SMALL_LITERAL_MAX;
		if (size > limit || s->cmd_len + size > s->cmd_max) {
			cmd_reset(s);
			if (nonsync) {
				/* RFC 7888 4: the bytes come anyway; skip them. */
				s->discard_left = size;
				s->skip_rest = true;
			}
			/* RFC 7889 4: a message over APPENDLIMIT is a NO, not a client error. */
			if (append)
				imap_no(s, "[TOOBIG] Message too large (APPENDLIMIT %llu bytes, %llu "
					   "for the whole command)",
					(unsigned long long)limit, (unsigned long long)s->cmd_max);
			else
				imap_bad(s, "[TOOBIG] Literal too large (at most %llu bytes)",
					 (unsigned long long)limit);
			return;
		}
	}
	if (!cmd_append_bytes(s, "\r\n", 2)) {
		cmd_reset(s);
		conn_close(s->c);
		return;
	}
	s->literal_left = size;
	if (!nonsync)
		imap_printf(s, "+ Ready for literal data\r\n");
}

/* Moves literal bytes from the input into the command; false when more are needed. */
static bool read_literal(struct imap_session *s)
{
	struct evbuffer *in = conn_input(s->c);

	while (s->discard_left > 0) {
		size_t avail = evbuffer_get_length(in);
		size_t n = avail < s->discard_left ? avail : (size_t)s->discard_left;
		if (n == 0)
			return false;
		evbuffer_drain(in, n);
		s->discard_left -= n;
	}
	if (s->literal_left > 0 && !cmd_reserve(s, (size_t)s->literal_left)) {
		imap_printf(s, "* BYE Out of memory\r\n");
		conn_close(s->c);
		return false;
	}
	while (s->literal_left > 0) {
		size_t avail = evbuffer_get_length(in);
		size_t n = avail < s->literal_left ? avail : (size_t)s->literal_left;
		if (n == 0)
			return false;
		evbuffer_remove(in, s->cmd + s->cmd_len, n);
		s->cmd_len += n;
		s->cmd[s->cmd_len] = '\0';
		s->literal_left -= n;
	}
	return true;
}

static void imap_input(void *arg)
{
	struct imap_session *s = arg;

	s->in_input = true;
	/* The line buffer exists only while input is handled: an idle session
	 * (most of them, in IDLE) holds none. Each line is wiped after use. */
	if (!s->line && !(s->line = malloc(s->line_max + 2))) {
		conn_close(s->c);
		s->in_input = false;
		return;
	}
	if (imap_compress_input(s, false) < 0)
		goto broken;
	while (!s->busy && !conn_is_closing(s->c) && s->state != IMAP_STATE_LOGOUT) {
		ssize_t n;
		if (imap_compress_input(s, true) < 0)
			goto broken;
		if ((s->literal_left || s->discard_left) && !read_literal(s))
			break;
		n = conn_readline(s->c, s->line, s->line_max);
		if (n == -1)
			break;
		if (n < 0) {
			s->cmd_start = now_usec();
			if (s->cmd_len)
				assembled_tag(s);
			else
				strcpy(s->tag, "*");
			s->verb[0] = '\0';
			cmd_reset(s);
			s->sasl_wait = false;
			imap_bad(s, "%s",
				 n == -2 ? "Command line too long" : "Lines must end with CRLF");
			continue;
		}
		handle_line(s, s->line, (size_t)n);
		sodium_memzero(s->line, (size_t)n);
	}
	(void)imap_compress_input(s, true);
	free(s->line);
	s->line = NULL;
	s->in_input = false;
	return;
broken:
	imap_printf(s, "* BYE Compressed input is corrupt or too large\r\n");
	imap_compress_free(s);
	conn_close(s->c);
	free(s->line);
	s->line = NULL;
	s->in_input = false;
}

/* ---- protocol_ops ---- */

static void *imap_open(struct conn *c)
{
	struct imap_session *s = calloc(1, sizeof(*s));
	size_t max;

	if (!s)
		return NULL;
	s->c = c;
	s->cfg = conn_config(c);
	s->state = IMAP_STATE_NOT_AUTH;
	max = s->cfg->limits.max_line_length;
	if (max < IMAP_LINE_MIN)
		max = IMAP_LINE_MIN;
	s->line_max = max;
	s->cmd_max = s->cfg->limits.max_message_size + IMAP_LINE_MIN;
	if (s->cmd_max < IMAP_COMMAND_SMALL_MAX)
		s->cmd_max = IMAP_COMMAND_SMALL_MAX;
	strcpy(s->tag, "*");
	s->cmd_start = now_usec();
	if (conn_is_tls(c))
		conn_printf(c, "* OK [CAPABILITY IMAP4rev1 IMAP4rev2 LITERAL+ AUTH=PLAIN SASL-IR ID "
			       "ENABLE] Postern IMAP server ready\r\n");
	else
		conn_printf(c, "* OK Postern IMAP server ready\r\n");
	return s;
}

static void imap_tls_ready(void *arg)
{
	struct imap_session *s = arg;

	/* RFC 3501 6.2.1: nothing learned before TLS carries over. */
	cmd_reset(s);
	s->literal_left = 0;
	s->discard_left = 0;
	s->skip_rest = false;
	s->sasl_wait = false;
	imap_continue_input(s);
}

static void imap_timeout(void *arg)
{
	struct imap_session *s = arg;

	imap_printf(s, "* BYE Autologout; idle for too long\r\n");
}

static void imap_close(void *arg)
{
	struct imap_session *s = arg;

	if (s->idle_poll)
		event_free(s->idle_poll);
	imap_fetch_run_free(s->fetch_run); /* its next slice will not run */
	imap_select_close(s);
	imap_compress_free(s);
	imap_hdrcache_free(s->hdrcache);
	auth_identity_clear(&s->id);
	cmd_reset(s);
	free(s->cmd);
	free(s->line); /* NULL outside imap_input(); each line was wiped */
	free(s);
}

static const struct protocol_ops imap_ops = {
    .name = "imap",
    .busy_reply = "* BYE Too many connections",
    .open = imap_open,
    .input = imap_input,
    .tls_ready = imap_tls_ready,
    .timeout = imap_timeout,
    .close = imap_close,
};

void imap_register(void)
{
	net_register_protocol(&imap_ops);
}
