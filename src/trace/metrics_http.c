/*
 * metrics_http.c - the Prometheus scrape endpoint: GET /metrics over HTTP
 * (or HTTPS with the server's certificate, [metrics] tls) with
 * libmicrohttpd, on its own internal thread. Everything else gets
 * 404 (other paths) or 405 (other methods). Meant for a loopback or
 * management address: it exposes counts, never user data. Requests under
 * /.well-known/openpgpkey/ go to wkd_http.c (published public keys only).
 */
#include <config.h>

#include "trace/metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>
#include <sodium.h>

#include "trace/wkd_http.h"
#include "util/i18n.h"

#define METRICS_CONNECTION_LIMIT 32
#define METRICS_TIMEOUT_SECONDS 10
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define METRICS_PEM_MAX (1024 * 1024)

static struct MHD_Daemon *metrics_daemon;
static uint16_t metrics_port;
/* The PEM texts given to libmicrohttpd, kept for the daemon's lifetime. */
static char *metrics_cert, *metrics_key;

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

int metrics_http_start(const char *address, uint16_t port, const char *cert_file,
		       const char *key_file, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL;
	const union MHD_DaemonInfo *info;
	char *cert = NULL, *key = NULL;
	/* Extra options: the certificate and key with TLS, else none. */
	struct MHD_OptionItem tls_options[3] = {{MHD_OPTION_END, 0, NULL}};

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
	if (cert_file != NULL || key_file != NULL) {
		if (cert_file == NULL || key_file == NULL || cert_file[0] == '\0' ||
		    key_file[0] == '\0') {
			snprintf(err, errlen, "%s",
				 _("[metrics] tls needs [tls] cert_file and key_file"));
			return -1;
		}
		if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
			snprintf(err, errlen, "%s",
				 _("[metrics] tls is set but libmicrohttpd was built without TLS"));
			return -1;
		}
		cert = read_pem(cert_file, err, errlen);
		if (cert == NULL)
			return -1;
		key = read_pem(key_file, err, errlen);
		if (key == NULL) {
			free_pem(cert);
			return -1;
		}
		flags |= MHD_USE_TLS;
		tls_options[0] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, cert};
		tls_options[1] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, key};
		tls_options[2] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
	}

	metrics_daemon = MHD_start_daemon(
	    flags, port, NULL, NULL, handle_request, NULL, MHD_OPTION_SOCK_ADDR,
	    (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT,
	    (unsigned int)METRICS_CONNECTION_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT,
	    (unsigned int)METRICS_TIMEOUT_SECONDS, MHD_OPTION_ARRAY, tls_options, MHD_OPTION_END);
	if (metrics_daemon == NULL) {
		free_pem(cert);
		free_pem(key);
		snprintf(err, errlen,
			 cert_file != NULL
			     ? _("cannot listen for metrics with HTTPS on %s port %u (is the "
				 "certificate or key invalid?)")
			     : _("cannot listen for metrics on %s port %u"),
			 address, (unsigned int)port);
		return -1;
	}
	metrics_cert = cert;
	metrics_key = key;
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
	free_pem(metrics_cert);
	free_pem(metrics_key);
	metrics_cert = metrics_key = NULL;
}

uint16_t metrics_http_port(void)
{
	return metrics_port;
}
