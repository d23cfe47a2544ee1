/*
 * metrics_http.c - the Prometheus scrape endpoint: GET /metrics over HTTP
 * (or HTTPS with the server's certificate, [metrics] tls) with
 * libmicrohttpd, on its own internal thread. Everything else gets
 * 404 (other paths) or 405 (other methods). Meant for a loopback or
 * management address: it exposes counts, never user data. Requests under
 * /.well-known/openpgpkey/ go to wkd_http.c (published public keys only).
 *
 * posternd binds the socket while still root (a port below 1024 needs no
 * capability) and starts serving after dropping privileges; on SIGHUP a
 * new daemon with the reread certificate takes over the same socket.
 */
#include <config.h>

#include "trace/metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>
#include <sodium.h>

#include "trace/wkd_http.h"
#include "util/i18n.h"

#define METRICS_CONNECTION_LIMIT 32
#define METRICS_TIMEOUT_SECONDS 10
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define METRICS_PEM_MAX (1024 * 1024)
#define METRICS_LISTEN_BACKLOG 32

/* Daemons replaced by a reload that may still finish a request; stopped
 * once idle (at the next reload or at stop). */
#define METRICS_RETIRED_MAX 4

/* A running libmicrohttpd daemon and the PEM texts it was given. */
struct metrics_server {
	struct MHD_Daemon *daemon;
	char *cert, *key;
};

/* Taken by start, reload and stop (the signal and admin threads may both reload). */
static pthread_mutex_t metrics_lock = PTHREAD_MUTEX_INITIALIZER;
/* The listening socket, bound by metrics_http_bind() (possibly as root);
 * every daemon serves a dup() of it, so replacing a daemon never closes it. */
static int metrics_fd = -1;
static uint16_t metrics_port;
static bool metrics_tls;
/* Certificate and key read at bind time, handed to the first daemon. */
static char *pending_cert, *pending_key;
static struct metrics_server current;
static struct metrics_server retired[METRICS_RETIRED_MAX];

static enum MHD_Result reply_text(struct MHD_Connection *conn, unsigned int status,
				  const char *text)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(
	    strlen(text), (void *)(uintptr_t)text, MHD_RESPMEM_PERSISTENT);
	enum MHD_Result r;

	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	r = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return r;
}

static enum MHD_Result handle_request(void *cls, struct MHD_Connection *conn, const char *url,
				      const char *method, const char *version,
				      const char *upload_data, size_t *upload_data_size,
				      void **req_cls)
{
	struct MHD_Response *resp;
	enum MHD_Result r;
	char *text;
	size_t len;

	if (wkd_http_matches(url))
		return wkd_http_reply(conn, url, method);
	if (strcmp(url, "/metrics") != 0)
		return reply_text(conn, MHD_HTTP_NOT_FOUND, "not found\n");
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return reply_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");

	text = metrics_render(&len);
	if (text == NULL)
		return reply_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
	resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, METRICS_CONTENT_TYPE);
	r = MHD_queue_response(conn, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return r;
}

/* Reads the PEM file PATH into a NUL-terminated malloc'd string (what
 * MHD_OPTION_HTTPS_MEM_CERT/KEY take); NULL with ERR. */
static char *read_pem(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	size_t len;

	if (f == NULL) {
		snprintf(err, errlen, _("cannot read %s for the metrics listener: %s"), path,
			 strerror(errno));
		return NULL;
	}
	buf = malloc(METRICS_PEM_MAX + 1);
	if (buf == NULL) {
		fclose(f);
		snprintf(err, errlen, "%s", _("out of memory"));
		return NULL;
	}
	len = fread(buf, 1, METRICS_PEM_MAX + 1, f);
	if (ferror(f) || len == 0 || len > METRICS_PEM_MAX) {
		snprintf(err, errlen, _("cannot read %s for the metrics listener: %s"), path,
			 ferror(f) ? strerror(errno) : _("empty or too large"));
		fclose(f);
		free(buf);
		return NULL;
	}
	fclose(f);
	buf[len] = '\0';
	return buf;
}

static void free_pem(char *pem)
{
	if (pem != NULL) {
		sodium_memzero(pem, strlen(pem));
		free(pem);
	}
}

/* Reads CERT_FILE and KEY_FILE into *CERT and *KEY; 0 or -1 with ERR. */
static int read_pair(const char *cert_file, const char *key_file, char **cert, char **key,
		     char *err, size_t errlen)
{
	if (cert_file == NULL || key_file == NULL || cert_file[0] == '\0' || key_file[0] == '\0') {
		snprintf(err, errlen, "%s", _("[metrics] tls needs [tls] cert_file and key_file"));
		return -1;
	}
	*cert = read_pem(cert_file, err, errlen);
	if (*cert == NULL)
		return -1;
	*key = read_pem(key_file, err, errlen);
	if (*key == NULL) {
		free_pem(*cert);
		*cert = NULL;
		return -1;
	}
	return 0;
}

static void server_free(struct metrics_server *s)
{
	if (s->daemon != NULL)
		MHD_stop_daemon(s->daemon);
	free_pem(s->cert);
	free_pem(s->key);
	memset(s, 0, sizeof(*s));
}

/*
 * A daemon on a dup() of the listening socket with CERT and KEY (NULL for
 * plain HTTP); on success S owns the PEM texts. libmicrohttpd closes the
 * socket it was given when it fails to start, hence the dup.
 */
static int server_start(struct metrics_server *s, char *cert, char *key, char *err, size_t errlen)
{
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ITC;
	/* Extra options: the certificate and key with TLS, else none. */
	struct MHD_OptionItem tls_options[3] = {{MHD_OPTION_END, 0, NULL}};
	int fd = fcntl(metrics_fd, F_DUPFD_CLOEXEC, 0);

	if (fd < 0) {
		snprintf(err, errlen, _("cannot start the metrics listener: %s"), strerror(errno));
		return -1;
	}
	if (cert != NULL) {
		flags |= MHD_USE_TLS;
		tls_options[0] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, cert};
		tls_options[1] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, key};
	}
	s->daemon = MHD_start_daemon(
	    flags, 0, NULL, NULL, handle_request, NULL, MHD_OPTION_LISTEN_SOCKET, fd,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned int)METRICS_CONNECTION_LIMIT,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)METRICS_TIMEOUT_SECONDS, MHD_OPTION_ARRAY,
	    tls_options, MHD_OPTION_END);
	if (s->daemon == NULL) {
		snprintf(err, errlen,
			 cert != NULL ? _("cannot start the metrics listener with HTTPS on port %u "
					  "(is the certificate or key invalid?)")
				      : _("cannot start the metrics listener on port %u"),
			 (unsigned int)metrics_port);
		return -1;
	}
	s->cert = cert;
	s->key = key;
	return 0;
}

/* Stops retired daemons that no longer serve anyone; with ALL, every one. */
static void sweep_retired(bool all)
{
	for (size_t i = 0; i < METRICS_RETIRED_MAX; i++) {
		const union MHD_DaemonInfo *info;

		if (retired[i].daemon == NULL)
			continue;
		info = MHD_get_daemon_info(retired[i].daemon, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
		if (all || info == NULL || info->num_connections == 0)
			server_free(&retired[i]);
	}
}

/* Parses ADDRESS and PORT into SS; 0 or -1 with ERR. */
static int parse_address(const char *address, uint16_t port, struct sockaddr_storage *ss,
			 socklen_t *sslen, char *err, size_t errlen)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, address, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		*sslen = sizeof(*sin);
		return 0;
	}
	if (inet_pton(AF_INET6, address, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		*sslen = sizeof(*sin6);
		return 0;
	}
	snprintf(err, errlen, _("metrics address \"%s\" is not a numeric IPv4 or IPv6 address"),
		 address);
	return -1;
}

/* A listening socket on SS; -1 with ERR. */
static int listen_on(const struct sockaddr_storage *ss, socklen_t sslen, const char *address,
		     uint16_t port, char *err, size_t errlen)
{
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), one = 1;

	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    (ss->ss_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0) ||
	    bind(fd, (const struct sockaddr *)ss, sslen) != 0 ||
	    listen(fd, METRICS_LISTEN_BACKLOG) != 0) {
		snprintf(err, errlen, _("cannot listen for metrics on %s port %u: %s"), address,
			 (unsigned int)port, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

int metrics_http_bind(const char *address, uint16_t port, const char *cert_file,
		      const char *key_file, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	char *cert = NULL, *key = NULL;
	int fd;

	if (metrics_fd >= 0) {
		snprintf(err, errlen, "%s", _("the metrics listener is already running"));
		return -1;
	}
	if (parse_address(address, port, &ss, &sslen, err, errlen) != 0)
		return -1;
	if (cert_file != NULL || key_file != NULL) {
		if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
			snprintf(err, errlen, "%s",
				 _("[metrics] tls is set but libmicrohttpd was built without TLS"));
			return -1;
		}
		if (read_pair(cert_file, key_file, &cert, &key, err, errlen) != 0)
			return -1;
	}
	fd = listen_on(&ss, sslen, address, port, err, errlen);
	if (fd < 0) {
		free_pem(cert);
		free_pem(key);
		return -1;
	}
	sslen = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &sslen) == 0)
		port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
						      : ((struct sockaddr_in *)&ss)->sin_port);
	pthread_mutex_lock(&metrics_lock);
	metrics_fd = fd;
	metrics_port = port;
	metrics_tls = cert != NULL;
	pending_cert = cert;
	pending_key = key;
	pthread_mutex_unlock(&metrics_lock);
	return 0;
}

int metrics_http_run(char *err, size_t errlen)
{
	int rc = -1;

	pthread_mutex_lock(&metrics_lock);
	if (metrics_fd < 0 || current.daemon != NULL) {
		snprintf(err, errlen, "%s",
			 metrics_fd < 0 ? _("the metrics listener is not bound")
					: _("the metrics listener is already running"));
	} else if (server_start(&current, pending_cert, pending_key, err, errlen) == 0) {
		pending_cert = pending_key = NULL;
		rc = 0;
	}
	pthread_mutex_unlock(&metrics_lock);
	return rc;
}

int metrics_http_start(const char *address, uint16_t port, const char *cert_file,
		       const char *key_file, char *err, size_t errlen)
{
	if (metrics_http_bind(address, port, cert_file, key_file, err, errlen) != 0)
		return -1;
	if (metrics_http_run(err, errlen) != 0) {
		metrics_http_stop();
		return -1;
	}
	return 0;
}

/*
 * The new daemon starts on the same socket before the old one stops
 * accepting, so no client is refused; the old one finishes what it serves
 * (its requests time out after METRICS_TIMEOUT_SECONDS) and is stopped once
 * idle. A certificate or key that does not load changes nothing.
 */
int metrics_http_reload(const char *cert_file, const char *key_file, char *err, size_t errlen)
{
	struct metrics_server fresh = {0};
	char *cert = NULL, *key = NULL;
	int rc = -1;

	pthread_mutex_lock(&metrics_lock);
	if (current.daemon == NULL || !metrics_tls) {
		rc = 0; /* nothing to reload: not running, or plain HTTP */
		goto out;
	}
	if (read_pair(cert_file, key_file, &cert, &key, err, errlen) != 0)
		goto out;
	if (server_start(&fresh, cert, key, err, errlen) != 0) {
		free_pem(cert);
		free_pem(key);
		goto out;
	}
	sweep_retired(false);
	{
		size_t slot = 0;
		MHD_socket old;

		while (slot < METRICS_RETIRED_MAX && retired[slot].daemon != NULL)
			slot++;
		if (slot == METRICS_RETIRED_MAX) {
			slot = 0; /* all still busy: cut the requests of one */
			server_free(&retired[0]);
		}
		old = MHD_quiesce_daemon(current.daemon);
		if (old != MHD_INVALID_SOCKET)
			close(old); /* its dup; metrics_fd stays open */
		retired[slot] = current;
		current = fresh;
	}
	rc = 0;
out:
	pthread_mutex_unlock(&metrics_lock);
	return rc;
}

void metrics_http_stop(void)
{
	pthread_mutex_lock(&metrics_lock);
	server_free(&current);
	sweep_retired(true);
	if (metrics_fd >= 0)
		close(metrics_fd);
	metrics_fd = -1;
	metrics_port = 0;
	metrics_tls = false;
	free_pem(pending_cert);
	free_pem(pending_key);
	pending_cert = pending_key = NULL;
	pthread_mutex_unlock(&metrics_lock);
}

uint16_t metrics_http_port(void)
{
	uint16_t port;

	pthread_mutex_lock(&metrics_lock);
	port = metrics_port;
	pthread_mutex_unlock(&metrics_lock);
	return port;
}
