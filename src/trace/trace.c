/*
 * trace.c - the trace bus: sessions publish events, subscribers (the admin
 * socket, later the web app) receive them, and a ring keeps the last
 * TRACE_HISTORY events for subscribers that arrive late.
 *
 * One mutex guards the ring and the subscriber table. Callbacks run under it
 * on the publisher's thread; that is what lets trace_unsubscribe() promise
 * the callback is finished, and what orders events the same way for every
 * subscriber. Callbacks are required to be quick (the admin socket only
 * copies the event into its own bounded queue), so publishers never wait on
 * a slow reader.
 *
 * Also here: trace_redact_command(), which removes credentials from protocol
 * lines before they are published, and trace_event_json().
 */
#include <config.h>

#include "trace/trace.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

#define REDACTED "***"

struct subscriber {
	trace_cb cb;
	void *arg;
	int in_use;
};

static pthread_mutex_t trace_lock = PTHREAD_MUTEX_INITIALIZER;
static struct trace_event history[TRACE_HISTORY];
static size_t history_next;  /* slot the next event goes to */
static size_t history_count; /* events stored, at most TRACE_HISTORY */
static struct subscriber subscribers[TRACE_MAX_SUBSCRIBERS];

const char *trace_kind_name(enum trace_kind kind)
{
	switch (kind) {
	case TRACE_CONNECT:
		return "connect";
	case TRACE_TLS:
		return "tls";
	case TRACE_COMMAND:
		return "command";
	case TRACE_REPLY:
		return "reply";
	case TRACE_AUTH:
		return "auth";
	case TRACE_INFO:
		return "info";
	case TRACE_DISCONNECT:
		return "disconnect";
	}
	return "unknown";
}

/* Length of the UTF-8 sequence starting at S (at most AVAIL bytes), or 0 when
 * it is not a valid, complete, shortest-form sequence. */
static size_t utf8_sequence_length(const unsigned char *s, size_t avail)
{
	size_t need;
	unsigned int cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		need = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		need = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		need = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (avail < need)
		return 0;
	for (size_t i = 1; i < need; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((need == 3 && cp < 0x800) || (need == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return need;
}

/* Copies SRC into DST (size DSTLEN) and marks a cut with "...", never
 * splitting a UTF-8 sequence. */
static void copy_truncated(char *dst, size_t dstlen, const char *src)
{
	size_t len = strlen(src);

	if (len < dstlen) {
		memcpy(dst, src, len + 1);
		return;
	}
	size_t keep = dstlen - 4; /* room for "..." and the NUL */
	/* Back off to the start of a character. */
	while (keep > 0 && ((unsigned char)src[keep] & 0xc0) == 0x80)
		keep--;
	memcpy(dst, src, keep);
	memcpy(dst + keep, "...", 4);
}

void trace_publish(uint64_t session_id, const char *protocol, const char *user,
		   enum trace_kind kind, uint32_t elapsed_usec, const char *text)
{
	struct trace_event ev;
	struct timeval tv;

	memset(&ev, 0, sizeof(ev));
	gettimeofday(&tv, NULL);
	ev.session_id = session_id;
	ev.time_usec = (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
	ev.kind = kind;
	ev.elapsed_usec = elapsed_usec;
	copy_truncated(ev.protocol, sizeof(ev.protocol), protocol ? protocol : "");
	copy_truncated(ev.user, sizeof(ev.user), user ? user : "");
	copy_truncated(ev.text, sizeof(ev.text), text ? text : "");

	pthread_mutex_lock(&trace_lock);
	history[history_next] = ev;
	history_next = (history_next + 1) % TRACE_HISTORY;
	if (history_count < TRACE_HISTORY)
		history_count++;
	for (size_t i = 0; i < TRACE_MAX_SUBSCRIBERS; i++) {
		if (subscribers[i].in_use)
			subscribers[i].cb(subscribers[i].arg, &ev);
	}
	pthread_mutex_unlock(&trace_lock);
}

/* Index in the ring of the I-th oldest stored event; caller holds the lock. */
static size_t history_index(size_t i)
{
	return (history_next + TRACE_HISTORY - history_count + i) % TRACE_HISTORY;
}

static int subscribe_locked(trace_cb cb, void *arg)
{
	for (size_t i = 0; i < TRACE_MAX_SUBSCRIBERS; i++) {
		if (!subscribers[i].in_use) {
			subscribers[i].cb = cb;
			subscribers[i].arg = arg;
			subscribers[i].in_use = 1;
			return (int)i;
		}
	}
	return -1;
}

int trace_subscribe(trace_cb cb, void *arg)
{
	int handle;

	if (cb == NULL)
		return -1;
	pthread_mutex_lock(&trace_lock);
	handle = subscribe_locked(cb, arg);
	pthread_mutex_unlock(&trace_lock);
	return handle;
}

int trace_subscribe_history(trace_cb cb, void *arg)
{
	int handle;

	if (cb == NULL)
		return -1;
	pthread_mutex_lock(&trace_lock);
	handle = subscribe_locked(cb, arg);
	if (handle >= 0) {
		for (size_t i = 0; i < history_count; i++)
			cb(arg, &history[history_index(i)]);
	}
	pthread_mutex_unlock(&trace_lock);
	return handle;
}

void trace_unsubscribe(int handle)
{
	if (handle < 0 || handle >= TRACE_MAX_SUBSCRIBERS)
		return;
	pthread_mutex_lock(&trace_lock);
	subscribers[handle].in_use = 0;
	subscribers[handle].cb = NULL;
	subscribers[handle].arg = NULL;
	pthread_mutex_unlock(&trace_lock);
}

size_t trace_history(struct trace_event *out, size_t max)
{
	size_t n, skip;

	pthread_mutex_lock(&trace_lock);
	n = history_count < max ? history_count : max;
	skip = history_count - n;
	for (size_t i = 0; i < n; i++)
		out[i] = history[history_index(skip + i)];
	pthread_mutex_unlock(&trace_lock);
	return n;
}

/* ---- redaction ---- */

/* A bounded writer: appends never overflow, the result is always terminated. */
struct out_buf {
	char *p;
	size_t len;
	size_t cap;
};

static void out_append(struct out_buf *o, const char *s, size_t n)
{
	if (o->cap == 0)
		return;
	size_t room = o->cap - 1 - o->len;
	if (n > room)
		n = room;
	memcpy(o->p + o->len, s, n);
	o->len += n;
	o->p[o->len] = '\0';
}

/* Splits off the next space-separated word of *S: sets *WORD and *LEN, moves
 * *S past the word (not past the following spaces). Returns 0 at the end. */
static int next_word(const char **s, const char **word, size_t *len)
{
	const char *p = *s;

	while (*p == ' ')
		p++;
	if (*p == '\0')
		return 0;
	*word = p;
	while (*p != '\0' && *p != ' ')
		p++;
	*len = (size_t)(p - *word);
	*s = p;
	return 1;
}

/* Case-insensitive comparison of a word with a keyword. */
static int word_is(const char *word, size_t len, const char *keyword)
{
	return strlen(keyword) == len && strncasecmp(word, keyword, len) == 0;
}

/* Length of the IMAP astring starting at S (atom or quoted string), or 0 when
 * it is a literal or malformed: then nothing after the command is kept. */
static size_t imap_astring_length(const char *s)
{
	const char *p = s;

	if (*p == '{' || *p == '\0')
		return 0;
	if (*p != '"') {
		while (*p != '\0' && *p != ' ')
			p++;
		return (size_t)(p - s);
	}
	for (p++; *p != '\0'; p++) {
		if (*p == '\\') {
			if (p[1] == '\0')
				return 0;
			p++;
		} else if (*p == '"') {
			return (size_t)(p + 1 - s);
		}
	}
	return 0;
}

/*
 * Writes everything up to (and including) the word ending at KEEP_END, then
 * " ***" if anything but spaces follows.
 */
static void keep_then_redact(struct out_buf *o, const char *line, const char *keep_end)
{
	const char *rest = keep_end;

	out_append(o, line, (size_t)(keep_end - line));
	while (*rest == ' ')
		rest++;
	if (*rest != '\0')
		out_append(o, " " REDACTED, strlen(REDACTED) + 1);
}

void trace_redact_command(const char *line, int in_sasl, char *out, size_t outlen)
{
	struct out_buf o = {out, 0, outlen};
	const char *p = line, *w1, *w2, *w3;
	size_t l1, l2, l3;

	if (outlen == 0)
		return;
	out[0] = '\0';
	if (line == NULL)
		return;

	if (in_sasl) {
		/* A SASL response is all credential; "*" only cancels the exchange. */
		if (strcmp(line, "*") == 0)
			out_append(&o, "*", 1);
		else
			out_append(&o, REDACTED, strlen(REDACTED));
		return;
	}

	if (!next_word(&p, &w1, &l1)) {
		out_append(&o, line, strlen(line));
		return;
	}
	/* SMTP/POP3 "AUTH mechanism [initial-response]". */
	if (word_is(w1, l1, "AUTH")) {
		if (next_word(&p, &w2, &l2))
			keep_then_redact(&o, line, w2 + l2);
		else
			out_append(&o, line, strlen(line));
		return;
	}
	/* POP3 "PASS secret" (the password may contain spaces). */
	if (word_is(w1, l1, "PASS")) {
		keep_then_redact(&o, line, w1 + l1);
		return;
	}
	/* POP3 "APOP name digest". */
	if (word_is(w1, l1, "APOP")) {
		if (next_word(&p, &w2, &l2))
			keep_then_redact(&o, line, w2 + l2);
		else
			out_append(&o, line, strlen(line));
		return;
	}
	/* IMAP: the first word is a tag. */
	if (!next_word(&p, &w2, &l2)) {
		out_append(&o, line, strlen(line));
		return;
	}
	if (word_is(w2, l2, "AUTHENTICATE")) {
		if (next_word(&p, &w3, &l3))
			keep_then_redact(&o, line, w3 + l3);
		else
			out_append(&o, line, strlen(line));
		return;
	}
	if (word_is(w2, l2, "LOGIN")) {
		const char *user = p;
		size_t ulen;

		while (*user == ' ')
			user++;
		ulen = imap_astring_length(user);
		/* A literal user name: keep nothing after LOGIN. */
		keep_then_redact(&o, line, ulen ? user + ulen : w2 + l2);
		return;
	}
	out_append(&o, line, strlen(line));
}

/* ---- JSON ---- */

static int json_append(struct out_buf *o, const char *s, size_t n)
{
	if (o->len + n + 1 > o->cap)
		return -1;
	memcpy(o->p + o->len, s, n);
	o->len += n;
	o->p[o->len] = '\0';
	return 0;
}

/* Appends S as a JSON string (with quotes). */
static int json_append_string(struct out_buf *o, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t avail = strlen(s);
	char esc[8];

	if (json_append(o, "\"", 1) < 0)
		return -1;
	while (avail > 0) {
		size_t n;
		int r;

		switch (*p) {
		case '"':
			r = json_append(o, "\\\"", 2);
			n = 1;
			break;
		case '\\':
			r = json_append(o, "\\\\", 2);
			n = 1;
			break;
		case '\n':
			r = json_append(o, "\\n", 2);
			n = 1;
			break;
		case '\r':
			r = json_append(o, "\\r", 2);
			n = 1;
			break;
		case '\t':
			r = json_append(o, "\\t", 2);
			n = 1;
			break;
		default:
			if (*p < 0x20 || *p == 0x7f) {
				snprintf(esc, sizeof(esc), "\\u%04x", *p);
				r = json_append(o, esc, 6);
				n = 1;
			} else {
				n = utf8_sequence_length(p, avail);
				if (n == 0) {
					r = json_append(o, "\\ufffd", 6);
					n = 1;
				} else {
					r = json_append(o, (const char *)p, n);
				}
			}
		}
		if (r < 0)
			return -1;
		p += n;
		avail -= n;
	}
	return json_append(o, "\"", 1);
}

size_t trace_event_json(const struct trace_event *ev, char *out, size_t outlen)
{
	struct out_buf o = {out, 0, outlen};
	char num[160], stamp[40];
	struct tm tm;
	time_t secs = (time_t)(ev->time_usec / 1000000);
	long usec = (long)(ev->time_usec % 1000000);

	if (outlen == 0)
		return 0;
	out[0] = '\0';
	if (usec < 0) {
		usec += 1000000;
		secs--;
	}
	gmtime_r(&secs, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(num, sizeof(num),
		 "{\"session\":%llu,\"time_usec\":%lld,\"time\":\"%s.%06ldZ\",\"kind\":\"%s\","
		 "\"elapsed_usec\":%lu,\"protocol\":",
		 (unsigned long long)ev->session_id, (long long)ev->time_usec, stamp, usec,
		 trace_kind_name(ev->kind), (unsigned long)ev->elapsed_usec);
	if (json_append(&o, num, strlen(num)) < 0 || json_append_string(&o, ev->protocol) < 0 ||
	    json_append(&o, ",\"user\":", 8) < 0 || json_append_string(&o, ev->user) < 0 ||
	    json_append(&o, ",\"text\":", 8) < 0 || json_append_string(&o, ev->text) < 0 ||
	    json_append(&o, "}", 1) < 0) {
		out[0] = '\0';
		return 0;
	}
	return o.len;
}
