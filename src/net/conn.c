/*
 * conn.c - one client connection on its worker's loop: the bufferevent
 * (plain, implicit TLS, or a STARTTLS filter over the plain socket), line
 * reading with limits, the idle timeout, and a close that flushes and then
 * frees at a safe point (never inside a protocol callback, never while a
 * deferred job still refers to the connection).
 */
#include <config.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>

#include "net/net_int.h"
#include "trace/metrics.h"
#include "trace/trace.h"
#include "util/i18n.h"
#include "util/log.h"

static void conn_read_cb(struct bufferevent *bev, void *arg);
static void conn_write_cb(struct bufferevent *bev, void *arg);
static void conn_event_cb(struct bufferevent *bev, short events, void *arg);

static void trace_conn(struct conn *c, enum trace_kind kind, const char *text)
{
	trace_publish(c->id, c->listener->protocol, c->user, kind, 0, text);
}

static void schedule_finish(struct conn *c)
{
	event_active(c->finish_ev, EV_TIMEOUT, 0);
}

static void set_reason(struct conn *c, const char *reason)
{
	if (c->reason[0] == '\0')
		snprintf(c->reason, sizeof(c->reason), "%s", reason);
}

static void conn_setup_bev(struct conn *c)
{
	unsigned idle = c->idle_set ? c->idle_sec : c->cfg->limits.idle_timeout;

	/* A refused client only gets its busy line: a short leash. */
	if (c->refuse && (idle == 0 || idle > NET_REFUSED_TIMEOUT_SEC))
		idle = NET_REFUSED_TIMEOUT_SEC;
	struct timeval tv = {idle ? (time_t)idle : 0, 0};

	bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, NET_INPUT_HIGH_WATER);
	bufferevent_set_timeouts(c->bev, idle ? &tv : NULL, idle ? &tv : NULL);
	bufferevent_enable(c->bev, c->paused ? EV_WRITE : EV_READ | EV_WRITE);
}

void conn_set_idle_timeout(struct conn *c, unsigned sec)
{
	c->idle_set = true;
	c->idle_sec = sec;
	/* A refused client keeps its short leash; a handshake or STARTTLS in
	 * progress picks the new value up in conn_setup_bev(). */
	if (c->bev && !c->refuse && !c->handshaking && !c->closing) {
		struct timeval tv = {(time_t)sec, 0};
		bufferevent_set_timeouts(c->bev, sec ? &tv : NULL, sec ? &tv : NULL);
	}
}

static void conn_free(struct conn *c)
{
	struct worker *w = c->worker;

	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	if (c->session && c->ops->close)
		c->ops->close(c->session);
	c->session = NULL;
	while (c->timers) {
		struct conn_timer *t = c->timers;
		c->timers = t->next;
		event_free(t->ev);
		free(t);
	}
	if (c->bev)
		bufferevent_free(c->bev); /* frees the SSL and the socket below */
	else
		evutil_closesocket(c->fd);
	set_reason(c, "closed");
	trace_conn(c, TRACE_DISCONNECT, c->reason);
	log_debug(_("connection %llu from %s closed: %s"), (unsigned long long)c->id, c->peer,
		  c->reason);
	if (c->counted) {
		metrics_connection_close(c->listener->protocol);
		net_conn_release(c->limit_key);
	}
	if (c->refuse)
		net_refused_done();
	event_free(c->finish_ev);
	event_free(c->kick_ev);
	event_free(c->drain_ev);
	free(c);
}

static size_t pending_below(struct conn *c)
{
	return c->plain ? evbuffer_get_length(bufferevent_get_output(c->plain)) : 0;
}

static void finish_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	struct timeval now;

	(void)fd;
	(void)what;
	if (c->jobs_pending > 0)
		return; /* the job's completion schedules us again */
	if (!c->peer_gone && c->bev && evbuffer_get_length(bufferevent_get_output(c->bev)) > 0) {
		gettimeofday(&now, NULL);
		if (timercmp(&now, &c->close_deadline, <))
			return; /* the write callback schedules us when it is out */
	}
	if (c->ssl && !c->peer_gone && !c->shutdown_sent && !c->handshaking) {
		c->shutdown_sent = true;
		SSL_shutdown(c->ssl); /* close_notify, best effort */
		ERR_clear_error();
	}
	if (!c->peer_gone && pending_below(c) > 0) {
		gettimeofday(&now, NULL);
		if (timercmp(&now, &c->close_deadline, <)) {
			struct timeval poll = {0, NET_DRAIN_POLL_MSEC * 1000};
			event_add(c->drain_ev, &poll);
			return;
		}
	}
	conn_free(c);
}

/* The session starts: a refused client gets the busy line instead. */
static void conn_open_session(struct conn *c)
{
	if (c->refuse) {
		conn_printf(c, "%s\r\n", c->ops->busy_reply);
		set_reason(c, "limit reached");
		conn_close(c);
		return;
	}
	c->session = c->ops->open(c);
	if (!c->session) {
		set_reason(c, "refused by protocol");
		conn_close(c);
	}
}

static void start_tls_filter(struct conn *c)
{
	struct bufferevent *filter;
	SSL *ssl = tls_new_ssl();

	c->starttls_pending = false;
	if (!ssl) {
		set_reason(c, "TLS unavailable");
		conn_close(c);
		return;
	}
	/* Whatever arrived before the handshake was sent in the clear: drop it. */
	evbuffer_drain(bufferevent_get_input(c->bev),
		       evbuffer_get_length(bufferevent_get_input(c->bev)));
	filter = bufferevent_openssl_filter_new(c->worker->base, c->bev, ssl,
						BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (!filter) {
		SSL_free(ssl);
		set_reason(c, "TLS setup failed");
		conn_close(c);
		return;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(filter, 1);
	c->plain = c->bev;
	c->bev = filter;
	c->ssl = ssl;
	c->handshaking = true;
	conn_setup_bev(c);
}

static void kick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	(void)what;
	if (c->closing)
		return;
	if (c->starttls_pending) {
		if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
			start_tls_filter(c);
		return;
	}
	if (!c->paused && !c->handshaking && c->session &&
	    evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
		c->ops->input(c->session);
}

static void drain_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	finish_cb(-1, 0, arg);
}

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	if (c->closing || c->starttls_pending || !c->session) {
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	if (!c->paused)
		c->ops->input(c->session);
}

static void conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	(void)bev;
	if (c->closing)
		schedule_finish(c);
	else if (c->starttls_pending)
		event_active(c->kick_ev, EV_TIMEOUT, 0);
}

static void conn_tls_done(struct conn *c)
{
	char desc[600];
	const char *sni = SSL_get_servername(c->ssl, TLSEXT_NAMETYPE_host_name);

	c->handshaking = false;
	c->tls_version = SSL_get_version(c->ssl);
	c->tls_cipher = SSL_get_cipher_name(c->ssl);
	snprintf(c->sni, sizeof(c->sni), "%s", sni ? sni : "");
	tls_describe(c->ssl, desc, sizeof(desc));
	trace_conn(c, TRACE_TLS, desc);
	log_debug(_("connection %llu: %s"), (unsigned long long)c->id, desc);
}

static void conn_event_cb(struct bufferevent *bev, short events, void *arg)
{
	struct conn *c = arg;

	(void)bev;
	if (events & BEV_EVENT_CONNECTED) {
		bool was_starttls = c->plain != NULL;

		conn_tls_done(c);
		if (c->closing)
			return;
		if (was_starttls && c->session) {
			if (c->ops->tls_ready)
				c->ops->tls_ready(c->session);
		} else {
			conn_open_session(c);
		}
		return;
	}
	if (events & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		if (c->handshaking && (events & BEV_EVENT_ERROR)) {
			unsigned long e = bufferevent_get_openssl_error(c->bev);
			char why[256] = "";
			if (e)
				ERR_error_string_n(e, why, sizeof(why));
			log_debug(_("connection %llu from %s: TLS handshake failed %s"),
				  (unsigned long long)c->id, c->peer, why);
			set_reason(c, "TLS handshake failed");
		}
		set_reason(c, (events & BEV_EVENT_EOF) ? "peer closed" : "connection error");
		c->peer_gone = true;
		c->closing = true;
		bufferevent_disable(c->bev, EV_READ | EV_WRITE);
		schedule_finish(c);
		return;
	}
	if (events & BEV_EVENT_TIMEOUT) {
		if (events & BEV_EVENT_WRITING) {
			/* The peer stopped reading: nothing more can be sent. */
			set_reason(c, "write timeout");
			c->peer_gone = true;
			c->closing = true;
			schedule_finish(c);
			return;
		}
		if (c->closing)
			return;
		set_reason(c, "idle timeout");
		if (c->session && c->ops->timeout && !c->handshaking)
			c->ops->timeout(c->session);
		conn_close(c);
	}
}

void conn_start(struct worker *w, struct conn *c)
{
	struct event_base *base = w->base;

	c->worker = w;
	c->next = w->conns;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
	c->finish_ev = event_new(base, -1, 0, finish_cb, c);
	c->kick_ev = event_new(base, -1, 0, kick_cb, c);
	c->drain_ev = evtimer_new(base, drain_cb, c);
	if (c->listener->tls == TLS_MODE_IMPLICIT) {
		c->ssl = tls_new_ssl();
		if (c->ssl) {
			c->bev = bufferevent_openssl_socket_new(
			    base, c->fd, c->ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
			if (!c->bev)
				SSL_free(c->ssl);
		}
		c->handshaking = true;
	} else {
		c->bev = bufferevent_socket_new(base, c->fd, BEV_OPT_CLOSE_ON_FREE);
	}
	if (c->counted)
		metrics_connection_open(c->listener->protocol);
	trace_conn(c, TRACE_CONNECT, c->peer);
	log_debug(_("connection %llu from %s port %u on %s"), (unsigned long long)c->id, c->peer,
		  (unsigned)c->peer_port, c->listener->name);
	if (!c->finish_ev || !c->kick_ev || !c->drain_ev || !c->bev) {
		log_error(_("cannot set up connection %llu"), (unsigned long long)c->id);
		if (!c->bev)
			c->ssl = NULL;
		set_reason(c, "setup failed");
		if (!c->finish_ev) {
			c->peer_gone = true;
			conn_free(c);
			return;
		}
		c->peer_gone = true;
		c->closing = true;
		schedule_finish(c);
		return;
	}
	if (c->handshaking)
		bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
	conn_setup_bev(c);
	if (!c->handshaking)
		conn_open_session(c);
}

void conn_close_all(struct worker *w)
{
	while (w->conns) {
		struct conn *c = w->conns;

		set_reason(c, "server shutting down");
		c->peer_gone = true;
		c->jobs_pending = 0;
		conn_free(c);
	}
}

/* ---- the interface of net.h ---- */

struct evbuffer *conn_input(struct conn *c)
{
	return bufferevent_get_input(c->bev);
}

/* The longest line content allowed: the caller's buffer (with its NUL) and
 * limits.max_line_length (which counts the CRLF). */
static size_t line_limit(const struct conn *c, size_t max)
{
	size_t cfg_max = c->cfg->limits.max_line_length;
	size_t limit = max > 0 ? max - 1 : 0;

	if (cfg_max >= 2 && cfg_max - 2 < limit)
		limit = cfg_max - 2;
	return limit;
}

ssize_t conn_readline(struct conn *c, char *buf, size_t max)
{
	struct evbuffer *in;
	size_t limit = line_limit(c, max);

	if (c->closing || c->starttls_pending || c->handshaking || max == 0)
		return -1;
	in = bufferevent_get_input(c->bev);
	for (;;) {
		struct evbuffer_ptr lf = evbuffer_search(in, "\n", 1, NULL);
		size_t len = evbuffer_get_length(in);

		if (lf.pos < 0) {
			if (c->discarding) {
				evbuffer_drain(in, len);
				return -1;
			}
			/* No end in sight and already too long (a CR may still come). */
			if (len > limit + 1) {
				evbuffer_drain(in, len);
				c->discarding = true;
				return -2;
			}
			return -1;
		}
		size_t pos = (size_t)lf.pos;
		if (c->discarding) {
			evbuffer_drain(in, pos + 1);
			c->discarding = false;
			continue;
		}
		bool cr = false;
		if (pos > 0) {
			struct evbuffer_ptr before;
			char ch;
			evbuffer_ptr_set(in, &before, pos - 1, EVBUFFER_PTR_SET);
			if (evbuffer_copyout_from(in, &before, &ch, 1) == 1 && ch == '\r')
				cr = true;
		}
		size_t content = cr ? pos - 1 : pos;
		if (content > limit) {
			evbuffer_drain(in, pos + 1);
			return -2;
		}
		evbuffer_remove(in, buf, content);
		buf[content] = '\0';
		evbuffer_drain(in, cr ? 2 : 1);
		return cr ? (ssize_t)content : -3;
	}
}

int conn_write(struct conn *c, const void *data, size_t len)
{
	if (c->peer_gone || !c->bev)
		return -1;
	return bufferevent_write(c->bev, data, len);
}

int conn_printf(struct conn *c, const char *fmt, ...)
{
	va_list ap;
	int rc;

	if (c->peer_gone || !c->bev)
		return -1;
	va_start(ap, fmt);
	rc = evbuffer_add_vprintf(bufferevent_get_output(c->bev), fmt, ap);
	va_end(ap);
	return rc < 0 ? -1 : 0;
}

size_t conn_output_pending(struct conn *c)
{
	if (!c->bev)
		return 0;
	return evbuffer_get_length(bufferevent_get_output(c->bev)) + pending_below(c);
}

int conn_starttls(struct conn *c)
{
	if (c->ssl || c->closing || c->starttls_pending || !tls_available())
		return -1;
	c->starttls_pending = true;
	/* Stop reading plaintext: the next bytes on the socket are the ClientHello. */
	bufferevent_disable(c->bev, EV_READ);
	evbuffer_drain(bufferevent_get_input(c->bev),
		       evbuffer_get_length(bufferevent_get_input(c->bev)));
	event_active(c->kick_ev, EV_TIMEOUT, 0);
	return 0;
}

void conn_close(struct conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	set_reason(c, "closed by server");
	gettimeofday(&c->close_deadline, NULL);
	c->close_deadline.tv_sec += NET_FLUSH_GRACE_SEC;
	if (c->bev) {
		bufferevent_disable(c->bev, EV_READ);
		bufferevent_enable(c->bev, EV_WRITE);
	}
	if (!c->bev || evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		schedule_finish(c);
}

void conn_pause(struct conn *c)
{
	c->paused = true;
	if (c->bev)
		bufferevent_disable(c->bev, EV_READ);
}

void conn_resume(struct conn *c)
{
	c->paused = false;
	if (c->closing || c->starttls_pending || !c->bev)
		return;
	bufferevent_enable(c->bev, EV_READ);
	if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
		event_active(c->kick_ev, EV_TIMEOUT, 0);
}

bool conn_is_tls(const struct conn *c)
{
	return c->ssl != NULL && !c->handshaking;
}

const char *conn_tls_version(const struct conn *c)
{
	return conn_is_tls(c) ? c->tls_version : NULL;
}

const char *conn_tls_cipher(const struct conn *c)
{
	return conn_is_tls(c) ? c->tls_cipher : NULL;
}

const char *conn_tls_sni(const struct conn *c)
{
	return conn_is_tls(c) && c->sni[0] ? c->sni : NULL;
}

const char *conn_peer_address(const struct conn *c)
{
	return c->peer;
}

uint16_t conn_peer_port(const struct conn *c)
{
	return c->peer_port;
}

uint64_t conn_id(const struct conn *c)
{
	return c->id;
}

const struct config_listener *conn_listener(const struct conn *c)
{
	return c->listener;
}

const struct config *conn_config(const struct conn *c)
{
	return c->cfg;
}

struct store *conn_store(struct conn *c)
{
	return c->worker->store;
}

struct event_base *conn_base(struct conn *c)
{
	return c->worker->base;
}

bool conn_is_closing(const struct conn *c)
{
	return c->closing;
}

void conn_set_user(struct conn *c, const char *address)
{
	snprintf(c->user, sizeof(c->user), "%s", address ? address : "");
}

const char *conn_user(const struct conn *c)
{
	return c->user;
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn_timer *t = arg, **p;
	struct conn *c = t->conn;

	(void)fd;
	(void)what;
	for (p = &c->timers; *p; p = &(*p)->next) {
		if (*p == t) {
			*p = t->next;
			break;
		}
	}
	void (*fn)(struct conn *, void *) = t->fn;
	void *fn_arg = t->arg;
	event_free(t->ev);
	free(t);
	fn(c, fn_arg);
}

int conn_after(struct conn *c, unsigned msec, void (*fn)(struct conn *c, void *arg), void *arg)
{
	struct conn_timer *t = calloc(1, sizeof(*t));
	struct timeval tv = {(time_t)(msec / 1000), (suseconds_t)((msec % 1000) * 1000)};

	if (!t)
		return -1;
	t->conn = c;
	t->fn = fn;
	t->arg = arg;
	t->ev = evtimer_new(c->worker->base, timer_cb, t);
	if (!t->ev || evtimer_add(t->ev, &tv) != 0) {
		if (t->ev)
			event_free(t->ev);
		free(t);
		return -1;
	}
	t->next = c->timers;
	c->timers = t;
	return 0;
}

int conn_defer(struct conn *c, conn_job_fn work, conn_done_fn done, void *arg)
{
	return jobs_submit(c, work, done, arg);
}

int conn_defer_lookup(struct conn *c, conn_job_fn work, conn_done_fn done, void *arg)
{
	return jobs_submit_lookup(c, work, done, arg);
}
