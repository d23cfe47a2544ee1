/*
 * metrics_http.c - the Prometheus scrape endpoint: GET /metrics over plain
 * HTTP with libmicrohttpd, on its own internal thread. Everything else gets
 * 404 (other paths) or 405 (other methods). Meant for a loopback or
 * management address: it exposes counts, never user data. Requests under
 * /.well-known/openpgpkey/ go to wkd_http.c (published public keys only).
 */
#include <config.h>

#include "trace/metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "trace/wkd_http.h"
#include "util/i18n.h"

#define METRICS_CONNECTION_LIMIT 32
#define METRICS_TIMEOUT_SECONDS 10
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

static struct MHD_Daemon *metrics_daemon;
static uint16_t metrics_port;

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

int metrics_http_start(const char *address, uint16_t port, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL;
	const union MHD_DaemonInfo *info;

	if (metrics_daemon != NULL) {
		snprintf(err, errlen, "%s", _("the metrics listener is already running"));
		return -1;
	}
	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, address, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
	} else if (inet_pton(AF_INET6, address, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		flags |= MHD_USE_IPv6;
	} else {
		snprintf(err, errlen,
			 _("metrics address \"%s\" is not a numeric IPv4 or IPv6 address"),
			 address);
		return -1;
	}

	metrics_daemon =
	    MHD_start_daemon(flags, port, NULL, NULL, handle_request, NULL, MHD_OPTION_SOCK_ADDR,
			     (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT,
			     (unsigned int)METRICS_CONNECTION_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT,
			     (unsigned int)METRICS_TIMEOUT_SECONDS, MHD_OPTION_END);
	if (metrics_daemon == NULL) {
		snprintf(err, errlen, _("cannot listen for metrics on %s port %u"), address,
			 (unsigned int)port);
		return -1;
	}
	info = MHD_get_daemon_info(metrics_daemon, MHD_DAEMON_INFO_BIND_PORT);
	metrics_port = info != NULL ? info->port : port;
	return 0;
}

void metrics_http_stop(void)
{
	if (metrics_daemon != NULL) {
		MHD_stop_daemon(metrics_daemon);
		metrics_daemon = NULL;
		metrics_port = 0;
	}
}

uint16_t metrics_http_port(void)
{
	return metrics_port;
}
