/*
 * admin.c - the daemon side of the UNIX admin socket (protocol in admin.h).
 *
 * The socket is served by a thread of its own with its own libevent loop,
 * so admin requests never compete with mail sessions. Following a trace is
 * the delicate part: trace callbacks run on the publishing worker threads,
 * so they only copy matching events into the client's bounded queue (under
 * the client's mutex) and poke the admin loop through a pipe; the loop then
 * formats and writes them. A client that reads too slowly fills its queue
 * or its output buffer: further events are dropped and counted, and the
 * client is told how many it missed once it catches up. Publishers never wait.
 */
#include <config.h>

#include "trace/admin.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <jansson.h>

#include "trace/metrics.h"
#include "trace/trace.h"
#include "util/config.h"
#include "util/i18n.h"

#define ADMIN_MAX_CLIENTS 32
#define ADMIN_MAX_REQUEST 4096		 /* bytes in the request line */
#define ADMIN_REQUEST_TIMEOUT_SECONDS 10 /* to send the request line */
#define ADMIN_QUEUE_EVENTS 1280		 /* > TRACE_HISTORY: history fits */
#define ADMIN_MAX_OUTPUT (1024 * 1024)	 /* unsent bytes before dropping */
#define ADMIN_FOLLOW_SESSIONS 64	 /* sessions remembered by a user filter */
#define ADMIN_BACKLOG 16
#define ADMIN_REFUSAL_SLOTS 8 /* connections past the limit that get a reason */

struct admin_client {
	struct bufferevent *bev;
	struct admin_client *next;
	int closing;   /* answered: shut down once the output is flushed */
	int shut;      /* our side is shut down; waiting for the client's EOF */
	int following; /* subscribed to the trace bus */
	int handle;    /* trace subscription */

	/* Filter (read by the publishing threads, set before subscribing). */
	char protocol[16];
	char user[321];
	/* The last sessions seen with the filtered user: their later events
	 * match even when they carry no user (a disconnect after a reset). */
	uint64_t sessions[ADMIN_FOLLOW_SESSIONS];
	size_t n_sessions, next_session;

	/* Shared with the publishing threads. */
	pthread_mutex_t lock;
	struct trace_event *queue;
	size_t queue_head, queue_len;
	uint64_t dropped; /* not yet reported to the client */
	int wake_pending;
};

static struct {
	struct event_base *base;
	struct evconnlistener *listener;
	struct event *wake_event;
	int wake_pipe[2];
	pthread_t thread;
	int running;
	atomic_int stop;
	struct admin_client *clients;
	size_t n_clients;
	struct admin_handlers handlers;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	ino_t inode;
	dev_t device;
} admin = {.wake_pipe = {-1, -1}};

int admin_socket_path(const struct config *cfg, char *out, size_t outlen, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	int n;

	if (cfg->server.admin_socket[0] != '\0')
		n = snprintf(out, outlen, "%s", cfg->server.admin_socket);
	else
		n = snprintf(out, outlen, "%s/admin.sock", cfg->server.data_dir);
	if (n < 0 || (size_t)n >= outlen || (size_t)n >= sizeof(sun.sun_path) - 16) {
		snprintf(err, errlen, _("admin socket path is too long (at most %zu bytes): %s"),
			 sizeof(sun.sun_path) - 17,
			 cfg->server.admin_socket[0] ? cfg->server.admin_socket
						     : cfg->server.data_dir);
		return -1;
	}
	return 0;
}

/* Set before admin_start(), read on the admin thread. */
static json_t *(*blocks_handler)(void);

void admin_set_blocks_handler(json_t *(*blocks)(void))
{
	blocks_handler = blocks;
}

/* ---- replies ---- */

/* Writes J (consumed) as one line. */
static void send_json(struct admin_client *c, json_t *j)
{
	char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;

	if (text != NULL) {
		evbuffer_add(bufferevent_get_output(c->bev), text, strlen(text));
		evbuffer_add(bufferevent_get_output(c->bev), "\n", 1);
		free(text);
	}
	json_decref(j);
}

/*
 * Once everything written has been sent, shut down our side and wait for the
 * client to close (or the timeout): closing with unread client data would
 * reset the connection and could destroy the reply before it is read.
 */
static void shutdown_when_flushed(struct admin_client *c)
{
	if (c->closing && !c->shut && evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
		shutdown(bufferevent_getfd(c->bev), SHUT_WR);
		c->shut = 1;
	}
}

/* Ends the exchange: no more requests are read on this connection. */
static void finish(struct admin_client *c)
{
	c->closing = 1;
	shutdown_when_flushed(c);
}

static void reply_error(struct admin_client *c, const char *message)
{
	send_json(c, json_pack("{s:b, s:s}", "ok", 0, "error", message));
	finish(c);
}

static void reply_ok(struct admin_client *c)
{
	send_json(c, json_pack("{s:b}", "ok", 1));
	finish(c);
}

/* ---- trace following ---- */

static int session_known(const struct admin_client *c, uint64_t id)
{
	for (size_t i = 0; i < c->n_sessions; i++) {
		if (c->sessions[i] == id)
			return 1;
	}
	return 0;
}

/* Runs on publishing threads, under the trace bus lock: copy and poke only. */
static void on_trace_event(void *arg, const struct trace_event *ev)
{
	struct admin_client *c = arg;
	int poke = 0;

	if (c->protocol[0] != '\0' && strcmp(c->protocol, ev->protocol) != 0)
		return;
	pthread_mutex_lock(&c->lock);
	if (c->user[0] != '\0') {
		if (strcasecmp(c->user, ev->user) == 0) {
			if (!session_known(c, ev->session_id)) {
				/* Oldest first out once the table is full. */
				c->sessions[c->next_session] = ev->session_id;
				c->next_session = (c->next_session + 1) % ADMIN_FOLLOW_SESSIONS;
				if (c->n_sessions < ADMIN_FOLLOW_SESSIONS)
					c->n_sessions++;
			}
		} else if (!session_known(c, ev->session_id)) {
			pthread_mutex_unlock(&c->lock);
			return;
		}
	}
	if (c->queue_len == ADMIN_QUEUE_EVENTS) {
		c->dropped++;
	} else {
		c->queue[(c->queue_head + c->queue_len) % ADMIN_QUEUE_EVENTS] = *ev;
		c->queue_len++;
	}
	if (!c->wake_pending) {
		c->wake_pending = 1;
		poke = 1;
	}
	pthread_mutex_unlock(&c->lock);
	if (poke) {
		/* A full pipe already holds a wake-up, so a failed write is harmless. */
		ssize_t n = write(admin.wake_pipe[1], "e", 1);
		(void)n;
	}
}

/* Moves queued events of C into its output (on the admin thread). */
static void flush_queue(struct admin_client *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	struct trace_event ev;
	char json[TRACE_JSON_MAX];
	uint64_t dropped_here = 0;

	for (;;) {
		pthread_mutex_lock(&c->lock);
		if (c->queue_len == 0) {
			c->wake_pending = 0;
			pthread_mutex_unlock(&c->lock);
			break;
		}
		ev = c->queue[c->queue_head];
		c->queue_head = (c->queue_head + 1) % ADMIN_QUEUE_EVENTS;
		c->queue_len--;
		pthread_mutex_unlock(&c->lock);

		if (evbuffer_get_length(out) >= ADMIN_MAX_OUTPUT) {
			dropped_here++;
			continue;
		}
		size_t len = trace_event_json(&ev, json, sizeof(json));
		if (len > 0) {
			json[len++] = '\n';
			evbuffer_add(out, json, len);
		}
	}

	pthread_mutex_lock(&c->lock);
	c->dropped += dropped_here;
	uint64_t dropped = c->dropped;
	if (dropped > 0 && evbuffer_get_length(out) < ADMIN_MAX_OUTPUT)
		c->dropped = 0;
	else
		dropped = 0;
	pthread_mutex_unlock(&c->lock);
	if (dropped > 0) {
		evbuffer_add_printf(out, "{\"kind\":\"dropped\",\"count\":%llu}\n",
				    (unsigned long long)dropped);
		metrics_count("admin", "trace_events_dropped", NULL, NULL, dropped);
	}
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
	char buf[256];

	while (read(fd, buf, sizeof(buf)) > 0)
		;
	if (atomic_load(&admin.stop)) {
		event_base_loopbreak(admin.base);
		return;
	}
	for (struct admin_client *c = admin.clients; c != NULL; c = c->next) {
		if (c->following)
			flush_queue(c);
	}
}

/* Copies a string member of REQ into OUT; 0, or -1 when it is not a string
 * or does not fit. A missing member leaves OUT empty. */
static int get_string(json_t *req, const char *key, char *out, size_t outlen)
{
	json_t *v = json_object_get(req, key);

	out[0] = '\0';
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v) || json_string_length(v) >= outlen ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return -1;
	memcpy(out, json_string_value(v), json_string_length(v) + 1);
	return 0;
}

/* Reads a boolean member (default DEF); -1 when it is not a boolean. */
static int get_bool(json_t *req, const char *key, int def)
{
	json_t *v = json_object_get(req, key);

	if (v == NULL)
		return def;
	if (!json_is_boolean(v))
		return -1;
	return json_is_true(v);
}

static void cmd_trace(struct admin_client *c, json_t *req)
{
	int follow = get_bool(req, "follow", 0);
	int history = get_bool(req, "history", 1);

	if (follow < 0 || history < 0) {
		reply_error(c, "\"follow\" and \"history\" must be true or false");
		return;
	}
	if (get_string(req, "protocol", c->protocol, sizeof(c->protocol)) < 0 ||
	    get_string(req, "user", c->user, sizeof(c->user)) < 0) {
		reply_error(c, "\"protocol\" and \"user\" must be short strings");
		return;
	}
	c->queue = calloc(ADMIN_QUEUE_EVENTS, sizeof(*c->queue));
	if (c->queue == NULL) {
		reply_error(c, "out of memory");
		return;
	}
	if (!follow) {
		/* History only: replay it through the filter, then finish. */
		struct trace_event *events = calloc(TRACE_HISTORY, sizeof(*events));
		size_t n = history && events ? trace_history(events, TRACE_HISTORY) : 0;

		c->wake_pending = 1; /* no wake-up needed: flushed right here */
		for (size_t i = 0; i < n; i++)
			on_trace_event(c, &events[i]);
		free(events);
		flush_queue(c);
		finish(c);
		return;
	}
	c->wake_pending = 1; /* the first flush below empties the queue */
	c->handle = history ? trace_subscribe_history(on_trace_event, c)
			    : trace_subscribe(on_trace_event, c);
	if (c->handle < 0) {
		reply_error(c, "too many trace subscribers");
		return;
	}
	c->following = 1;
	/* Follow until the client goes away: no request timeout any more;
	 * keep reading only to notice the disconnect. */
	bufferevent_set_timeouts(c->bev, NULL, NULL);
	flush_queue(c);
}

struct connections_arg {
	json_t *obj;
};

static void add_protocol(void *arg, const char *protocol, int64_t active)
{
	struct connections_arg *a = arg;

	json_object_set_new(a->obj, protocol, json_integer((json_int_t)active));
}

static void cmd_status(struct admin_client *c)
{
	struct connections_arg a = {json_object()};

	metrics_each_protocol(add_protocol, &a);
	send_json(c, json_pack("{s:b, s:s, s:I, s:I, s:o}", "ok", 1, "version", PACKAGE_VERSION,
			       "uptime", (json_int_t)metrics_uptime_seconds(), "pid",
			       (json_int_t)getpid(), "connections", a.obj));
	finish(c);
}

static void handle_request(struct admin_client *c, const char *line, size_t len)
{
	json_error_t jerr;
	json_t *req = json_loadb(line, len, 0, &jerr);
	const char *cmd;
	char address[321];

	if (req == NULL || !json_is_object(req)) {
		json_decref(req);
		reply_error(c, "the request is not a JSON object");
		return;
	}
	cmd = json_string_value(json_object_get(req, "cmd"));
	if (cmd == NULL) {
		reply_error(c, "the request has no \"cmd\"");
	} else if (strcmp(cmd, "status") == 0) {
		cmd_status(c);
	} else if (strcmp(cmd, "trace") == 0) {
		cmd_trace(c, req);
	} else if (strcmp(cmd, "reload") == 0) {
		if (admin.handlers.reload == NULL) {
			reply_error(c, "reload is not available");
		} else {
			admin.handlers.reload(admin.handlers.arg);
			reply_ok(c);
		}
	} else if (strcmp(cmd, "blocks") == 0) {
		json_t *(*blocks)(void) = blocks_handler;
		json_t *arr = blocks != NULL ? blocks() : NULL;

		if (arr == NULL) {
			reply_error(c, "blocks is not available");
		} else {
			send_json(c, json_pack("{s:b, s:o}", "ok", 1, "blocks", arr));
			finish(c);
		}
	} else if (strcmp(cmd, "forget") == 0) {
		if (get_string(req, "address", address, sizeof(address)) < 0 ||
		    address[0] == '\0') {
			reply_error(c, "\"forget\" needs an \"address\"");
		} else if (admin.handlers.forget == NULL) {
			reply_error(c, "forget is not available");
		} else {
			admin.handlers.forget(address, admin.handlers.arg);
			reply_ok(c);
		}
	} else {
		reply_error(c, "unknown command");
	}
	json_decref(req);
}

/* ---- connections ---- */

static void free_client(struct admin_client *c)
{
	struct admin_client **pp;

	if (c->following)
		trace_unsubscribe(c->handle); /* no callback runs after this */
	for (pp = &admin.clients; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			admin.n_clients--;
			break;
		}
	}
	bufferevent_free(c->bev);
	pthread_mutex_destroy(&c->lock);
	free(c->queue);
	free(c);
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct admin_client *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t len;
	char *line;

	if (c->following || c->closing) {
		/* Nothing more is expected from the client. */
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF);
	if (line == NULL) {
		if (evbuffer_get_length(in) > ADMIN_MAX_REQUEST)
			reply_error(c, "request line too long");
		return;
	}
	if (len > ADMIN_MAX_REQUEST) {
		free(line);
		reply_error(c, "request line too long");
		return;
	}
	handle_request(c, line, len);
	free(line);
}

static void on_write(struct bufferevent *bev, void *arg)
{
	struct admin_client *c = arg;

	if (c->closing)
		shutdown_when_flushed(c);
	else if (c->following)
		flush_queue(c); /* caught up: report drops, send what waited */
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct admin_client *c = arg;

	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
		free_client(c);
}

/* Only the daemon's own user (or root) may use the socket, whatever its mode. */
static int peer_allowed(evutil_socket_t fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
		return 0;
	return cred.uid == 0 || cred.uid == geteuid();
}

static void on_accept(struct evconnlistener *listener, evutil_socket_t fd, struct sockaddr *sa,
		      int socklen, void *arg)
{
	struct admin_client *c;
	struct timeval timeout = {ADMIN_REQUEST_TIMEOUT_SECONDS, 0};
	const char *refusal = NULL;

	/* A few connections beyond the limit are kept just long enough to be
	 * told why; past that they are closed without a word. */
	if (admin.n_clients >= ADMIN_MAX_CLIENTS + ADMIN_REFUSAL_SLOTS) {
		evutil_closesocket(fd);
		return;
	}
	if (!peer_allowed(fd))
		refusal = "permission denied";
	else if (admin.n_clients >= ADMIN_MAX_CLIENTS)
		refusal = "too many admin connections";
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		evutil_closesocket(fd);
		return;
	}
	c->handle = -1;
	pthread_mutex_init(&c->lock, NULL);
	c->bev = bufferevent_socket_new(admin.base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		evutil_closesocket(fd);
		pthread_mutex_destroy(&c->lock);
		free(c);
		return;
	}
	c->next = admin.clients;
	admin.clients = c;
	admin.n_clients++;
	bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
	bufferevent_set_timeouts(c->bev, &timeout, &timeout);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	if (refusal != NULL)
		reply_error(c, refusal);
}

static void on_accept_resume(evutil_socket_t fd, short what, void *arg)
{
	if (admin.listener != NULL)
		evconnlistener_enable(admin.listener);
}

/* accept() failed (out of descriptors, typically): pause instead of spinning. */
static void on_accept_error(struct evconnlistener *listener, void *arg)
{
	struct timeval pause = {1, 0};

	evconnlistener_disable(listener);
	if (event_base_once(admin.base, -1, EV_TIMEOUT, on_accept_resume, NULL, &pause) != 0)
		evconnlistener_enable(listener);
}

/* ---- socket setup and the thread ---- */

/* Refuses to replace anything but a stale socket. */
static int check_existing(const char *path, char *err, size_t errlen)
{
	struct stat st;
	struct sockaddr_un sun;
	int fd, r;

	if (lstat(path, &st) != 0) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, _("cannot check admin socket %s: %s"), path, strerror(errno));
		return -1;
	}
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, _("admin socket %s exists and is not a socket"), path);
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, _("cannot create admin socket: %s"), strerror(errno));
		return -1;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	r = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
	close(fd);
	if (r == 0) {
		snprintf(err, errlen, _("admin socket %s is in use: is another posternd running?"),
			 path);
		return -1;
	}
	return 0; /* stale: the rename in bind_socket replaces it */
}

/*
 * Binds under a temporary name, restricts it to 0600, then renames it into
 * place: the socket is never reachable with a looser mode, and a stale one
 * is replaced atomically.
 */
static int bind_socket(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	char tmp[sizeof(sun.sun_path)];
	struct stat st;
	int fd, n;

	n = snprintf(tmp, sizeof(tmp), "%s.%ld", path, (long)getpid());
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		snprintf(err, errlen, _("admin socket path is too long: %s"), path);
		return -1;
	}
	if (check_existing(path, err, errlen) < 0)
		return -1;
	if (unlink(tmp) != 0 && errno != ENOENT) {
		snprintf(err, errlen, _("cannot remove %s: %s"), tmp, strerror(errno));
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		snprintf(err, errlen, _("cannot create admin socket: %s"), strerror(errno));
		return -1;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, tmp, strlen(tmp) + 1);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0 || chmod(tmp, 0600) != 0 ||
	    listen(fd, ADMIN_BACKLOG) != 0 || rename(tmp, path) != 0) {
		snprintf(err, errlen, _("cannot set up admin socket %s: %s"), path,
			 strerror(errno));
		close(fd);
		unlink(tmp);
		return -1;
	}
	if (stat(path, &st) == 0) {
		admin.inode = st.st_ino;
		admin.device = st.st_dev;
	}
	return fd;
}

static void *admin_thread(void *arg)
{
	event_base_dispatch(admin.base);
	return NULL;
}

static void cleanup(void)
{
	while (admin.clients != NULL)
		free_client(admin.clients);
	if (admin.listener != NULL)
		evconnlistener_free(admin.listener);
	if (admin.wake_event != NULL)
		event_free(admin.wake_event);
	if (admin.base != NULL)
		event_base_free(admin.base);
	for (int i = 0; i < 2; i++) {
		if (admin.wake_pipe[i] >= 0)
			close(admin.wake_pipe[i]);
		admin.wake_pipe[i] = -1;
	}
	admin.listener = NULL;
	admin.wake_event = NULL;
	admin.base = NULL;
}

int admin_start(const struct config *cfg, const struct admin_handlers *h, char *err, size_t errlen)
{
	sigset_t all, old;
	int fd, r;

	if (admin.running) {
		snprintf(err, errlen, "%s", _("the admin socket is already running"));
		return -1;
	}
	if (admin_socket_path(cfg, admin.path, sizeof(admin.path), err, errlen) < 0)
		return -1;
	memset(&admin.handlers, 0, sizeof(admin.handlers));
	if (h != NULL)
		admin.handlers = *h;
	atomic_store(&admin.stop, 0);

	if (pipe2(admin.wake_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
		snprintf(err, errlen, _("cannot create admin socket: %s"), strerror(errno));
		return -1;
	}
	admin.base = event_base_new();
	if (admin.base == NULL) {
		snprintf(err, errlen, "%s", _("cannot create the admin event loop"));
		cleanup();
		return -1;
	}
	fd = bind_socket(admin.path, err, errlen);
	if (fd < 0) {
		cleanup();
		return -1;
	}
	admin.listener =
	    evconnlistener_new(admin.base, on_accept, NULL, LEV_OPT_CLOSE_ON_FREE, -1, fd);
	admin.wake_event =
	    event_new(admin.base, admin.wake_pipe[0], EV_READ | EV_PERSIST, on_wake, NULL);
	if (admin.listener != NULL)
		evconnlistener_set_error_cb(admin.listener, on_accept_error);
	if (admin.listener == NULL || admin.wake_event == NULL ||
	    event_add(admin.wake_event, NULL) != 0) {
		if (admin.listener == NULL)
			close(fd);
		snprintf(err, errlen, "%s", _("cannot create the admin event loop"));
		unlink(admin.path);
		cleanup();
		return -1;
	}

	/* Signals belong to the main thread. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(&admin.thread, NULL, admin_thread, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r != 0) {
		snprintf(err, errlen, _("cannot start the admin thread: %s"), strerror(r));
		unlink(admin.path);
		cleanup();
		return -1;
	}
	admin.running = 1;
	return 0;
}

void admin_stop(void)
{
	struct stat st;
	ssize_t n;

	if (!admin.running)
		return;
	atomic_store(&admin.stop, 1);
	n = write(admin.wake_pipe[1], "s", 1);
	(void)n;
	pthread_join(admin.thread, NULL);
	cleanup();
	/* Remove the socket only if it is still ours. */
	if (stat(admin.path, &st) == 0 && st.st_ino == admin.inode && st.st_dev == admin.device)
		unlink(admin.path);
	admin.running = 0;
}
