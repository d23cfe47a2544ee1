/*
 * net.c - listeners, worker threads and connection limits.
 *
 * The main thread owns the listening sockets: it accepts, checks the total
 * and per-address limits, and hands each client to a worker thread (round
 * robin). Every worker runs its own libevent loop with its own store handle,
 * so a connection lives on one thread from accept to close. Clients over a
 * limit get the protocol's busy line and are closed at once (for implicit
 * TLS the line is sent after the handshake, on a worker).
 */
#include <config.h>

#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pwd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/listener.h>
#include <event2/thread.h>

#include "net/net_int.h"
#include "trace/metrics.h"
#include "util/i18n.h"
#include "util/log.h"

#define NET_MAX_PROTOCOLS 16
#define NET_MAX_WORKERS 64
#define NET_MARIADB_WORKERS_PER_CORE 4
#define NET_LISTEN_BACKLOG 511
/* Loop rounds at shutdown for the callbacks closed connections leave behind. */
#define NET_DRAIN_ROUNDS 16
#define IP_BUCKETS 1024

static const struct protocol_ops *protocols[NET_MAX_PROTOCOLS];
static size_t n_protocols;

static net_store_open_fn store_open_hook;
static net_store_close_fn store_close_hook;

struct bound_listener {
	struct evconnlistener *lev;
	const struct config_listener *cfg;
	const struct protocol_ops *ops;
};

static const struct config *net_cfg;
static struct event_base *main_base;
static pthread_mutex_t base_lock = PTHREAD_MUTEX_INITIALIZER; /* main_base vs net_stop */
static struct bound_listener bound[CONFIG_MAX_LISTENERS];
static size_t n_bound;
static struct worker *workers;
static size_t n_workers;
static size_t next_worker;
static atomic_uint_fast64_t next_conn_id = 1;
static atomic_int refused_handshakes; /* refused implicit TLS clients still connected */

/* Connection counts: total and per peer address. */
struct ip_count {
	char addr[NET_LIMIT_KEY_MAX];
	unsigned n;
	struct ip_count *next;
};
static pthread_mutex_t count_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ip_count *ip_table[IP_BUCKETS];
static unsigned total_connections;

void net_register_protocol(const struct protocol_ops *ops)
{
	for (size_t i = 0; i < n_protocols; i++) {
		if (strcmp(protocols[i]->name, ops->name) == 0) {
			protocols[i] = ops;
			return;
		}
	}
	if (n_protocols < NET_MAX_PROTOCOLS)
		protocols[n_protocols++] = ops;
	else
		log_error(_("too many protocols registered; %s ignored"), ops->name);
}

const struct protocol_ops *net_find_protocol(const char *name)
{
	for (size_t i = 0; i < n_protocols; i++)
		if (strcmp(protocols[i]->name, name) == 0)
			return protocols[i];
	return NULL;
}

void net_set_store(net_store_open_fn open, net_store_close_fn close)
{
	store_open_hook = open;
	store_close_hook = close;
}

struct store *net_store_open_thread(const struct config *cfg, char *err, size_t errlen)
{
	if (!store_open_hook)
		return NULL;
	return store_open_hook(&cfg->store, err, errlen);
}

bool net_store_configured(void)
{
	return store_open_hook != NULL;
}

void net_store_close_thread(struct store *st)
{
	if (st && store_close_hook)
		store_close_hook(st);
}

static unsigned ip_hash(const char *s)
{
	unsigned h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h % IP_BUCKETS;
}

/* Takes a slot for PEER, or names the limit that refuses it. */
static const char *net_conn_admit(const char *peer)
{
	struct ip_count **slot, *e;
	const char *refused = NULL;

	pthread_mutex_lock(&count_lock);
	slot = &ip_table[ip_hash(peer)];
	for (e = *slot; e && strcmp(e->addr, peer) != 0; e = e->next)
		;
	if (total_connections >= net_cfg->limits.max_connections) {
		refused = "max_connections";
	} else if (e && e->n >= net_cfg->limits.max_connections_per_ip) {
		refused = "per_ip";
	} else if (!e && net_cfg->limits.max_connections_per_ip == 0) {
		refused = "per_ip";
	} else {
		if (!e) {
			e = calloc(1, sizeof(*e));
			if (!e) {
				pthread_mutex_unlock(&count_lock);
				return "max_connections";
			}
			snprintf(e->addr, sizeof(e->addr), "%s", peer);
			e->next = *slot;
			*slot = e;
		}
		e->n++;
		total_connections++;
	}
	pthread_mutex_unlock(&count_lock);
	return refused;
}

void net_conn_release(const char *peer)
{
	struct ip_count **slot;

	pthread_mutex_lock(&count_lock);
	for (slot = &ip_table[ip_hash(peer)]; *slot; slot = &(*slot)->next) {
		if (strcmp((*slot)->addr, peer) == 0) {
			struct ip_count *e = *slot;
			if (--e->n == 0) {
				*slot = e->next;
				free(e);
			}
			break;
		}
	}
	if (total_connections > 0)
		total_connections--;
	pthread_mutex_unlock(&count_lock);
}

/*
 * The numeric peer address (IPv4-mapped IPv6 shown as IPv4) and the key its
 * connections are counted under for max_connections_per_ip: the address for
 * IPv4, the /64 prefix for IPv6, since one IPv6 client usually holds a whole
 * /64 and could otherwise open the limit once per address.
 */
static void peer_of(const struct sockaddr *sa, char *addr, size_t addrlen, char *key, size_t keylen,
		    uint16_t *port)
{
	addr[0] = '\0';
	key[0] = '\0';
	*port = 0;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
		inet_ntop(AF_INET, &in->sin_addr, addr, (socklen_t)addrlen);
		*port = ntohs(in->sin_port);
		snprintf(key, keylen, "%s", addr);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
		struct in6_addr prefix = in6->sin6_addr;
		char net[INET6_ADDRSTRLEN];

		*port = ntohs(in6->sin6_port);
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
			inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], addr, (socklen_t)addrlen);
			snprintf(key, keylen, "%s", addr);
			return;
		}
		inet_ntop(AF_INET6, &in6->sin6_addr, addr, (socklen_t)addrlen);
		memset(&prefix.s6_addr[8], 0, 8);
		inet_ntop(AF_INET6, &prefix, net, sizeof(net));
		snprintf(key, keylen, "%s/64", net);
	}
}

void net_refused_done(void)
{
	atomic_fetch_sub(&refused_handshakes, 1);
}

/* One log line per second at most: a flood must not flood the log too. */
static void log_refusal(const char *peer, const char *listener, const char *limit)
{
	static time_t last;
	static unsigned suppressed;
	time_t now = time(NULL);

	if (now == last) {
		suppressed++;
		return;
	}
	last = now;
	const char *what =
	    strcmp(limit, "per_ip") == 0 ? _("per-address connection") : _("connection");
	if (suppressed > 0)
		log_info(_("refused %s on %s: %s limit reached (and %u refusals in the last "
			   "second or more not logged)"),
			 peer, listener, what, suppressed);
	else
		log_info(_("refused %s on %s: %s limit reached"), peer, listener, what);
	suppressed = 0;
}

/* Refuses a plaintext client right away: one busy line, then close. */
static void refuse_plain(evutil_socket_t fd, const struct protocol_ops *ops)
{
	char line[512];
	int n = snprintf(line, sizeof(line), "%s\r\n", ops->busy_reply);

	if (n > 0 && (size_t)n < sizeof(line))
		(void)send(fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
	shutdown(fd, SHUT_WR);
	evutil_closesocket(fd);
}

static void hand_to_worker(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	(void)what;
	conn_start(c->worker, c);
}

static void accept_cb(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
		      int socklen, void *arg)
{
	struct bound_listener *bl = arg;
	const char *refused;
	struct conn *c;
	char peer[INET6_ADDRSTRLEN], key[NET_LIMIT_KEY_MAX];
	uint16_t port;
	struct timeval now = {0, 0};

	(void)lev;
	(void)socklen;
	/* Replies are small writes, often several TLS records: without
	 * TCP_NODELAY each waits for the client's delayed ACK (about 40 ms). */
	int one = 1;
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0)
		log_debug("TCP_NODELAY: %s", strerror(errno));
	peer_of(sa, peer, sizeof(peer), key, sizeof(key), &port);
	refused = net_conn_admit(key);
	if (refused) {
		metrics_connection_refused(bl->cfg->protocol, refused);
		log_refusal(peer, bl->cfg->name, refused);
		if (bl->cfg->tls != TLS_MODE_IMPLICIT) {
			refuse_plain(fd, bl->ops);
			return;
		}
		/* The busy line of an implicit TLS listener costs a handshake: only
		 * a few at a time, the rest are just closed. */
		if (atomic_fetch_add(&refused_handshakes, 1) >= NET_MAX_REFUSED_HANDSHAKES) {
			atomic_fetch_sub(&refused_handshakes, 1);
			evutil_closesocket(fd);
			return;
		}
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		log_error(_("out of memory accepting a connection"));
		if (!refused)
			net_conn_release(key);
		else
			net_refused_done();
		evutil_closesocket(fd);
		return;
	}
	c->fd = fd;
	c->cfg = net_cfg;
	c->listener = bl->cfg;
	c->ops = bl->ops;
	c->refuse = refused != NULL;
	c->counted = refused == NULL;
	c->id = atomic_fetch_add(&next_conn_id, 1);
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	snprintf(c->limit_key, sizeof(c->limit_key), "%s", key);
	c->peer_port = port;
	c->worker = &workers[next_worker];
	next_worker = (next_worker + 1) % n_workers;
	if (event_base_once(c->worker->base, -1, EV_TIMEOUT, hand_to_worker, c, &now) != 0) {
		log_error(_("cannot hand a connection to a worker"));
		if (c->counted)
			net_conn_release(key);
		else
			net_refused_done();
		evutil_closesocket(fd);
		free(c);
	}
}

static void accept_error_cb(struct evconnlistener *lev, void *arg)
{
	struct bound_listener *bl = arg;
	int e = EVUTIL_SOCKET_ERROR();

	(void)lev;
	/* Out of descriptors or memory: the listener keeps going; say so once per error. */
	log_warn(_("accept on %s failed: %s"), bl->cfg->name, evutil_socket_error_to_string(e));
}

int net_bind(const struct config *cfg, char *err, size_t errlen)
{
	static bool threads_ready;

	if (!threads_ready) {
		if (evthread_use_pthreads() != 0) {
			snprintf(err, errlen, "%s", _("cannot enable libevent threading"));
			return -1;
		}
		threads_ready = true;
	}
	net_cfg = cfg;
	if (!main_base) {
		main_base = event_base_new();
		if (!main_base) {
			snprintf(err, errlen, "%s", _("cannot create the event loop"));
			return -1;
		}
	}
	for (size_t i = 0; i < cfg->n_listeners; i++) {
		const struct config_listener *l = &cfg->listeners[i];
		const struct protocol_ops *ops = net_find_protocol(l->protocol);
		struct sockaddr_storage ss;
		int sslen = sizeof(ss);
		char spec[128];
		struct bound_listener *bl = &bound[n_bound];

		if (!ops) {
			snprintf(err, errlen, _("listener %s: protocol %s is not available"),
				 l->name, l->protocol);
			return -1;
		}
		if (l->tls != TLS_MODE_NONE && !tls_available()) {
			snprintf(err, errlen, _("listener %s: TLS is not configured"), l->name);
			return -1;
		}
		snprintf(spec, sizeof(spec), strchr(l->address, ':') ? "[%s]:%u" : "%s:%u",
			 l->address, (unsigned)l->port);
		memset(&ss, 0, sizeof(ss));
		if (evutil_parse_sockaddr_port(spec, (struct sockaddr *)&ss, &sslen) != 0) {
			snprintf(err, errlen, _("listener %s: bad address %s"), l->name,
				 l->address);
			return -1;
		}
		bl->cfg = l;
		bl->ops = ops;
		bl->lev = evconnlistener_new_bind(
		    main_base, accept_cb, bl,
		    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
		    NET_LISTEN_BACKLOG, (struct sockaddr *)&ss, sslen);
		if (!bl->lev) {
			snprintf(err, errlen, _("listener %s: cannot listen on %s: %s"), l->name,
				 spec, strerror(errno));
			return -1;
		}
		evconnlistener_set_error_cb(bl->lev, accept_error_cb);
		n_bound++;
	}
	return 0;
}

int net_drop_privileges(const struct config *cfg, char *err, size_t errlen)
{
	struct passwd *pw;

	if (getuid() != 0 && geteuid() != 0)
		return 0;
	pw = getpwnam(cfg->server.user);
	if (!pw) {
		snprintf(err, errlen, _("refusing to run as root: user %s does not exist"),
			 cfg->server.user);
		return -1;
	}
	if (pw->pw_uid == 0) {
		snprintf(err, errlen, _("refusing to run as root: user %s is root"),
			 cfg->server.user);
		return -1;
	}
	if (initgroups(pw->pw_name, pw->pw_gid) != 0 || setgid(pw->pw_gid) != 0 ||
	    setuid(pw->pw_uid) != 0) {
		snprintf(err, errlen, _("cannot switch to user %s: %s"), cfg->server.user,
			 strerror(errno));
		return -1;
	}
	if (setuid(0) == 0 || seteuid(0) == 0 || getuid() == 0 || geteuid() == 0 ||
	    getegid() == 0) {
		snprintf(err, errlen, "%s", _("root privileges could be regained; stopping"));
		return -1;
	}
	return 0;
}

/* ---- workers ---- */

static pthread_mutex_t start_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t start_cond = PTHREAD_COND_INITIALIZER;

/*
 * After worker_shutdown: runs what the closed connections left on the loop.
 * bufferevent_free() only drops a reference; the memory goes in a finalizer
 * the loop runs later, and a TLS bufferevent that has just written holds a
 * second reference for its deferred write callback (libevent_openssl defers
 * it). event_base_free() cancels a deferred callback without running it, so
 * that reference, the bufferevent and its SSL would never be freed. Nothing
 * new arrives any more (the job pools are joined, the listeners gone), so a
 * few non-blocking rounds empty the loop.
 */
static void worker_drain(struct worker *w)
{
	for (int i = 0; i < NET_DRAIN_ROUNDS; i++) {
		event_base_loop(w->base, EVLOOP_NONBLOCK);
		if (event_base_get_num_events(w->base, EVENT_BASE_COUNT_ACTIVE) == 0)
			break;
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	w->store = net_store_open_thread(net_cfg, w->err, sizeof(w->err));
	pthread_mutex_lock(&start_lock);
	w->failed = store_open_hook && !w->store;
	w->started = true;
	pthread_cond_broadcast(&start_cond);
	pthread_mutex_unlock(&start_lock);
	if (!w->failed) {
		event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
		worker_drain(w);
	}
	net_store_close_thread(w->store);
	w->store = NULL;
	return NULL;
}

static void worker_shutdown(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	(void)fd;
	(void)what;
	conn_close_all(w);
	event_base_loopbreak(w->base);
}

static size_t worker_count(const struct config *cfg)
{
	long cores;

	if (cfg->server.workers > 0)
		return cfg->server.workers > NET_MAX_WORKERS ? NET_MAX_WORKERS
							     : cfg->server.workers;
	cores = sysconf(_SC_NPROCESSORS_ONLN);
	if (cores < 1)
		cores = 1;
	/* IMAP and POP3 run their store calls on the loop. With SQLite those
	 * take microseconds; with MariaDB every statement is a round trip and
	 * every commit waits for the server's log flush, so more loops keep the
	 * cores busy meanwhile (and let InnoDB flush concurrent commits as one). */
	if (cfg->store.engine == STORE_ENGINE_MARIADB)
		cores *= NET_MARIADB_WORKERS_PER_CORE;
	return cores > NET_MAX_WORKERS ? NET_MAX_WORKERS : (size_t)cores;
}

/* Stops and frees the workers [0, n): ends their connections first. */
static void workers_stop(size_t n)
{
	struct timeval now = {0, 0};

	for (size_t i = 0; i < n; i++) {
		struct worker *w = &workers[i];

		if (w->failed ||
		    event_base_once(w->base, -1, EV_TIMEOUT, worker_shutdown, w, &now) != 0)
			event_base_loopbreak(w->base);
	}
	for (size_t i = 0; i < n; i++) {
		pthread_join(workers[i].thread, NULL);
		event_base_free(workers[i].base);
	}
	free(workers);
	workers = NULL;
	n_workers = 0;
}

static int workers_start(const struct config *cfg, char *err, size_t errlen)
{
	size_t n = worker_count(cfg);

	workers = calloc(n, sizeof(*workers));
	if (!workers) {
		snprintf(err, errlen, "%s", _("out of memory starting workers"));
		return -1;
	}
	n_workers = n;
	for (size_t i = 0; i < n; i++) {
		struct worker *w = &workers[i];

		w->index = i;
		w->base = event_base_new();
		if (!w->base || pthread_create(&w->thread, NULL, worker_main, w) != 0) {
			if (w->base)
				event_base_free(w->base);
			snprintf(err, errlen, "%s", _("cannot start a worker thread"));
			workers_stop(i);
			return -1;
		}
	}
	pthread_mutex_lock(&start_lock);
	for (size_t i = 0; i < n; i++)
		while (!workers[i].started)
			pthread_cond_wait(&start_cond, &start_lock);
	pthread_mutex_unlock(&start_lock);
	for (size_t i = 0; i < n; i++) {
		if (workers[i].failed) {
			snprintf(err, errlen, _("worker cannot open the store: %s"),
				 workers[i].err);
			workers_stop(n);
			return -1;
		}
	}
	return 0;
}

int net_run(const struct config *cfg, char *err, size_t errlen)
{
	int rc = 0;

	if (!main_base) {
		snprintf(err, errlen, "%s", _("net_run called before net_bind"));
		return -1;
	}
	net_cfg = cfg;
	if (jobs_start(cfg, err, errlen) != 0)
		return -1;
	if (workers_start(cfg, err, errlen) != 0) {
		jobs_stop();
		return -1;
	}
	next_worker = 0;
	if (event_base_loop(main_base, EVLOOP_NO_EXIT_ON_EMPTY) < 0) {
		snprintf(err, errlen, "%s", _("the event loop failed"));
		rc = -1;
	}
	/* Stop accepting, let running jobs finish, then end every connection. */
	for (size_t i = 0; i < n_bound; i++)
		evconnlistener_free(bound[i].lev);
	n_bound = 0;
	jobs_stop();
	workers_stop(n_workers);
	pthread_mutex_lock(&base_lock);
	event_base_free(main_base);
	main_base = NULL;
	pthread_mutex_unlock(&base_lock);
	tls_free();
	return rc;
}

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	event_base_loopbreak(arg);
}

void net_stop(void)
{
	struct timeval now = {0, 0};

	/* An event rather than a bare loopbreak: a stop asked for before the
	 * loop runs must not be lost. */
	pthread_mutex_lock(&base_lock);
	if (main_base)
		event_base_once(main_base, -1, EV_TIMEOUT, stop_cb, main_base, &now);
	pthread_mutex_unlock(&base_lock);
}
