/*
 * trace.h - the trace bus. Every protocol session publishes what happens on
 * it (connect, TLS facts, each command and reply, auth outcome, disconnect);
 * the admin socket (posternctl trace --follow) and later the web app
 * subscribe. Publishers pass text that is already redacted: use
 * trace_redact_command() for anything that may carry credentials, and never
 * publish message bodies. Publishing is thread-safe and never blocks on a
 * slow subscriber (its events are dropped and counted instead).
 */
#ifndef POSTERN_TRACE_H
#define POSTERN_TRACE_H

#include <stddef.h>
#include <stdint.h>

enum trace_kind {
	TRACE_CONNECT,	  /* text: peer address */
	TRACE_TLS,	  /* text: "TLSv1.3 TLS_AES_256_GCM_SHA384 sni=... subject=..." */
	TRACE_COMMAND,	  /* client -> server, redacted */
	TRACE_REPLY,	  /* server -> client */
	TRACE_AUTH,	  /* text: "ok" / "failed" (user field set) */
	TRACE_INFO,	  /* anything else worth showing, e.g. "message stored uid 7" */
	TRACE_DISCONNECT, /* text: reason */
};

struct trace_event {
	uint64_t session_id;
	int64_t time_usec; /* wall clock */
	enum trace_kind kind;
	char protocol[16];     /* "smtp", "submission", "pop3", "imap", "http" */
	char user[321];	       /* empty before login */
	char text[1024];       /* truncated with "..." */
	uint32_t elapsed_usec; /* for TRACE_REPLY: time since the command */
};

const char *trace_kind_name(enum trace_kind kind);

/* Publishes one event; TEXT is copied (and truncated) into the event. */
void trace_publish(uint64_t session_id, const char *protocol, const char *user,
		   enum trace_kind kind, uint32_t elapsed_usec, const char *text);

/*
 * Copies LINE into OUT with credentials replaced by "***": arguments of AUTH,
 * PASS, LOGIN, AUTHENTICATE and bare SASL continuation lines (set
 * IN_SASL when the line answers a SASL challenge).
 */
void trace_redact_command(const char *line, int in_sasl, char *out, size_t outlen);

/* Subscription: CB runs on the publisher's thread; it must be quick and must
 * not call trace_publish. Returns a handle for trace_unsubscribe, or -1. */
typedef void (*trace_cb)(void *arg, const struct trace_event *ev);
int trace_subscribe(trace_cb cb, void *arg);
/* Like trace_subscribe, but first hands CB the recent events kept in the
 * history ring (oldest first), atomically: no event is missed or repeated. */
int trace_subscribe_history(trace_cb cb, void *arg);
/* After this returns, CB is not running and will not run again. Must not be
 * called from inside a callback. */
void trace_unsubscribe(int handle);

/* How many events the history ring keeps, and at most how many subscribers. */
#define TRACE_HISTORY 1000
#define TRACE_MAX_SUBSCRIBERS 64

/* Copies up to MAX of the most recent events (oldest first) into OUT. */
size_t trace_history(struct trace_event *out, size_t max);

/*
 * JSON text (one line, no newline) of EV into OUT; returns its length, or 0
 * when OUTLEN is too small (TRACE_JSON_MAX always suffices). Invalid UTF-8
 * in the text becomes U+FFFD, so the result is always valid JSON.
 */
#define TRACE_JSON_MAX 9216
size_t trace_event_json(const struct trace_event *ev, char *out, size_t outlen);

#endif
