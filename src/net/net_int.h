/*
 * net_int.h - what the files of src/net share and nobody else sees: the
 * connection and worker structs, the TLS context, the job pool and the
 * per-address connection counts.
 */
#ifndef POSTERN_NET_INT_H
#define POSTERN_NET_INT_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <openssl/ssl.h>

#include "net/net.h"

/* Largest input a connection buffers before reading pauses (back-pressure). */
#define NET_INPUT_HIGH_WATER (1024 * 1024)
/* How long a closing connection may take to flush its last bytes. */
#define NET_FLUSH_GRACE_SEC 5
/* Poll interval while the socket below a STARTTLS filter drains. */
#define NET_DRAIN_POLL_MSEC 20
/* Refused implicit TLS clients given a handshake (for the busy line) at once. */
#define NET_MAX_REFUSED_HANDSHAKES 32
#define NET_REFUSED_TIMEOUT_SEC 10
/* An address, or an IPv6 /64 prefix with "/64": what per-address limits count. */
#define NET_LIMIT_KEY_MAX (INET6_ADDRSTRLEN + 4)

struct conn;

struct worker {
	size_t index;
	pthread_t thread;
	struct event_base *base;
	struct store *store;
	struct conn *conns; /* every connection of this worker (doubly linked) */
	bool started, failed;
	char err[256];
};

struct conn_timer {
	struct conn *conn;
	struct event *ev;
	void (*fn)(struct conn *c, void *arg);
	void *arg;
	struct conn_timer *next;
};

struct conn {
	struct worker *worker;
	const struct config *cfg;
	const struct config_listener *listener;
	const struct protocol_ops *ops;
	void *session;

	evutil_socket_t fd;
	struct bufferevent *bev;   /* what the session reads and writes */
	struct bufferevent *plain; /* the socket below a STARTTLS filter, or NULL */
	SSL *ssl;

	bool refuse;	  /* over a limit: send busy_reply after the handshake, close */
	bool counted;	  /* holds a slot in the connection counts */
	bool handshaking; /* TLS handshake running */
	bool starttls_pending;
	bool closing;
	bool peer_gone;
	bool paused;
	bool discarding; /* dropping the rest of an overlong line */
	bool shutdown_sent;
	bool idle_set;	   /* IDLE_SEC replaces limits.idle_timeout (conn_set_idle_timeout) */
	unsigned idle_sec; /* 0: no idle timeout */
	unsigned jobs_pending;
	struct timeval close_deadline;

	uint64_t id;
	char peer[INET6_ADDRSTRLEN];
	char limit_key[NET_LIMIT_KEY_MAX];
	uint16_t peer_port;
	char user[321];
	char sni[256];
	char reason[64]; /* why it ended, for the DISCONNECT trace */
	const char *tls_version;
	const char *tls_cipher;

	struct event *finish_ev; /* frees the connection at a safe point */
	struct event *kick_ev;	 /* starts STARTTLS, feeds input buffered during a pause */
	struct event *drain_ev;	 /* waits for the socket below a filter to drain */
	struct conn_timer *timers;
	struct conn *prev, *next;
};

/* net.c */
void net_conn_release(const char *limit_key);
void net_refused_done(void);
    /* a refused implicit TLS client is gone */ /* gives back a counted connection's slot */
struct store *net_store_open_thread(const struct config *cfg, char *err, size_t errlen);
void net_store_close_thread(struct store *st);
bool net_store_configured(void);

/* conn.c: runs on the worker's thread; takes ownership of C (fd set, peer set). */
void conn_start(struct worker *w, struct conn *c);
/* Ends every connection of W at shutdown (on W's thread). */
void conn_close_all(struct worker *w);

/* tls.c */
SSL *tls_new_ssl(void); /* NULL when no TLS context is loaded */
bool tls_available(void);
void tls_free(void);
/* "TLSv1.3 TLS_AES_256_GCM_SHA384 sni=... subject=..." */
void tls_describe(SSL *ssl, char *out, size_t outlen);

/* jobs.c */
int jobs_start(const struct config *cfg, char *err, size_t errlen);
void jobs_stop(void);
int jobs_submit(struct conn *c, conn_job_fn work, conn_done_fn done, void *arg);
int jobs_submit_lookup(struct conn *c, conn_job_fn work, conn_done_fn done, void *arg);

#endif
