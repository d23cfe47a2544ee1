/*
 * net.h - connections for protocol sessions (libevent + OpenSSL).
 *
 * src/net owns sockets, TLS, worker threads and limits. Each listener in the
 * config names a protocol; a protocol registers a struct protocol_ops and is
 * handed a struct conn per accepted client, always on that connection's
 * worker thread. A session never blocks: it reads what its input buffer
 * holds, writes replies with conn_write()/conn_printf(), and sends slow work
 * (Argon2id, scanning, big decryptions) to the job pool with conn_defer(),
 * whose completion runs back on the connection's thread.
 *
 * net also publishes CONNECT/TLS/DISCONNECT to the trace bus and connection
 * counters to metrics; protocols publish their own commands and replies.
 */
#ifndef POSTERN_NET_H
#define POSTERN_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "util/config.h"

struct conn;
struct store;

struct protocol_ops {
	const char *name; /* matches config_listener.protocol */
	/* The line (without CRLF) sent when a limit refuses a client, e.g.
	 * "421 4.7.0 Too many connections, try again later". */
	const char *busy_reply;
	/* A client connected (and, for implicit TLS, finished the handshake).
	 * Returns the session (sends the greeting) or NULL to drop the client. */
	void *(*open)(struct conn *c);
	/* New input is in conn_input(c); consume what can be handled. */
	void (*input)(void *session);
	/* conn_starttls() finished its handshake successfully. */
	void (*tls_ready)(void *session);
	/* Idle timeout hit; the protocol may write a last reply. The connection
	 * is closed after this returns. */
	void (*timeout)(void *session);
	/* The connection is gone (peer closed, error, conn_close done); free the session. */
	void (*close)(void *session);
};

/* Registers a protocol before net_start(). */
void net_register_protocol(const struct protocol_ops *ops);
const struct protocol_ops *net_find_protocol(const char *name);

/* Binds every listener of CFG (before privileges are dropped). 0 or -1 with ERR. */
int net_bind(const struct config *cfg, char *err, size_t errlen);
/* Loads the TLS context from CFG; also used on SIGHUP (new connections get
 * the new certificate, running ones keep theirs). 0 or -1 with ERR. */
int net_tls_reload(const struct config *cfg, char *err, size_t errlen);
/*
 * How worker and job threads get their store handles: posternd passes
 * store_open/store_close. Without this (unit tests), conn_store() is NULL.
 */
typedef struct store *(*net_store_open_fn)(const struct config_store *cfg, char *err,
					    size_t errlen);
typedef void (*net_store_close_fn)(struct store *st);
void net_set_store(net_store_open_fn open, net_store_close_fn close);

/*
 * When running as root: switches to cfg->server.user (supplementary groups,
 * gid, uid) and checks that root cannot be regained. Refuses (-1 with ERR)
 * when that user does not exist or is root. Does nothing otherwise. Call
 * after net_bind() and before net_run().
 */
int net_drop_privileges(const struct config *cfg, char *err, size_t errlen);

/* Starts worker threads (each opens its own store) and runs until net_stop(). */
int net_run(const struct config *cfg, char *err, size_t errlen);
/* Thread-safe: asks every loop to finish; net_run() then returns. */
void net_stop(void);

/* ---- per connection ---- */
struct evbuffer *conn_input(struct conn *c);
/*
 * Takes one line (terminated by CRLF) from the input into BUF (without the
 * CRLF, NUL-terminated). Returns the line length, -1 when no complete line is
 * buffered yet, -2 when the line exceeds MAX (the rest of that line is
 * discarded up to its CRLF, so the session can reply and go on), -3 when a
 * line ends in a bare LF (strict protocols reject it).
 */
ssize_t conn_readline(struct conn *c, char *buf, size_t max);
int conn_write(struct conn *c, const void *data, size_t len);
int conn_printf(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Output buffered but not yet sent, for back-pressure when streaming. */
size_t conn_output_pending(struct conn *c);
/* Flush what is written, then start TLS as server. Input already buffered
 * is discarded (it was sent before TLS and must not be trusted). The
 * protocol's tls_ready runs when the handshake is done. */
int conn_starttls(struct conn *c);
/* Closes after the pending output is flushed. */
void conn_close(struct conn *c);
/* Stops/resumes reading (while a deferred job runs). */
void conn_pause(struct conn *c);
void conn_resume(struct conn *c);

bool conn_is_tls(const struct conn *c);
const char *conn_tls_version(const struct conn *c); /* "TLSv1.3" or NULL */
const char *conn_tls_cipher(const struct conn *c);
const char *conn_tls_sni(const struct conn *c); /* server name the client asked for, or NULL */
const char *conn_peer_address(const struct conn *c); /* numeric IP */
uint16_t conn_peer_port(const struct conn *c);
uint64_t conn_id(const struct conn *c); /* trace session id */
const struct config_listener *conn_listener(const struct conn *c);
const struct config *conn_config(const struct conn *c);
struct store *conn_store(struct conn *c); /* the worker thread's store handle */
struct event_base *conn_base(struct conn *c);
/* Sets the user shown on trace events for this connection. */
bool conn_is_closing(const struct conn *c);
void conn_set_user(struct conn *c, const char *address);
/* Replaces limits.idle_timeout for this connection (0: none), e.g. the
 * longer timeout of an authenticated IMAP session (RFC 9051 5.4). */
void conn_set_idle_timeout(struct conn *c, unsigned sec);
const char *conn_user(const struct conn *c);

/*
 * Runs WORK(ST, ARG) on the job pool (ST is the pool thread's own store
 * handle), then DONE(C, ARG) on the connection's thread. The connection is
 * paused while the job runs and resumed before DONE. If the peer goes away
 * meanwhile, the connection object and its session stay alive until DONE has
 * run (conn_is_closing() is then true); the protocol's close() comes after.
 */
typedef void (*conn_job_fn)(struct store *st, void *arg);
typedef void (*conn_done_fn)(struct conn *c, void *arg);
int conn_defer(struct conn *c, conn_job_fn work, conn_done_fn done, void *arg);
/* conn_defer() for a short store read (an envelope lookup on MariaDB): it
 * runs on a small pool of its own and never waits behind slow jobs. */
int conn_defer_lookup(struct conn *c, conn_job_fn work, conn_done_fn done, void *arg);

/* Arms a one-shot timer on the connection's loop (e.g. the failed-login delay). */
int conn_after(struct conn *c, unsigned msec, void (*fn)(struct conn *c, void *arg), void *arg);

#endif
