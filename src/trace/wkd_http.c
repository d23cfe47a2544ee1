/*
 * wkd_http.c - the Web Key Directory (draft-koch-openpgp-webkey-service)
 * on the HTTP listener of metrics_http.c: users' public OpenPGP keys by
 *
 *   direct:   GET /.well-known/openpgpkey/hu/<hash>            (domain: Host)
 *   advanced: GET /.well-known/openpgpkey/<domain>/hu/<hash>   (openpgpkey.<domain>)
 *
 * plus each domain's policy file. <hash> is the z-base-32 SHA-1 of the
 * lower-cased local part; the "l" query parameter is not needed. The body
 * is the binary key that posternctl published under
 * <data_dir>/gnupg/wkd/<domain>/hu/<hash> (crypto/gpg_wkd.c), so a request
 * only reads a file: no gpg runs here, and only well-formed names reach the
 * file system (no "..", no slashes). Anything else is 404.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <microhttpd.h>

#include "crypto/gpg_home.h"
#include "trace/wkd_http.h"

#define WKD_PREFIX "/.well-known/openpgpkey/"
#define WKD_KEY_MAX (256 * 1024)
#define WKD_PATH_MAX 4096
#define WKD_DOMAIN_MAX 253

static pthread_mutex_t root_lock = PTHREAD_MUTEX_INITIALIZER;
static char root[WKD_PATH_MAX];

void wkd_http_set_data_dir(const char *data_dir)
{
	pthread_mutex_lock(&root_lock);
	snprintf(root, sizeof(root), "%s", data_dir ? data_dir : "");
	pthread_mutex_unlock(&root_lock);
}

bool wkd_http_matches(const char *url)
{
	return strncmp(url, WKD_PREFIX, strlen(WKD_PREFIX)) == 0;
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, void *body, size_t len,
			     const char *type)
{
	static const char not_found[] = "not found\n";
	struct MHD_Response *resp;
	enum MHD_Result r;

	if (body == NULL)
		resp = MHD_create_response_from_buffer(strlen(not_found), (void *)not_found,
						       MHD_RESPMEM_PERSISTENT);
	else
		resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
				body ? type : "text/plain; charset=utf-8");
	MHD_add_response_header(resp, "Access-Control-Allow-Origin", "*");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	r = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return r;
}

/* Reads a regular file of at most WKD_KEY_MAX bytes; NULL when missing. */
static void *read_small(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;
	char *buf = NULL;
	size_t got = 0;

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > WKD_KEY_MAX)
		goto out;
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL)
		goto out;
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (got != (size_t)st.st_size) {
		free(buf);
		buf = NULL;
	}
	*len = got;
out:
	close(fd);
	return buf;
}

/* The domain of a direct request: the Host header without a port. */
static int host_domain(struct MHD_Connection *conn, char *out, size_t outlen)
{
	const char *host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Host");
	size_t n;

	if (host == NULL || host[0] == '[')
		return -1;
	n = strcspn(host, ":");
	if (n == 0 || n >= outlen)
		return -1;
	memcpy(out, host, n);
	out[n] = '\0';
	return 0;
}

enum MHD_Result wkd_http_reply(struct MHD_Connection *conn, const char *url, const char *method)
{
	const char *rest = url + strlen(WKD_PREFIX), *slash;
	char domain[WKD_DOMAIN_MAX + 1], dir[WKD_PATH_MAX], path[WKD_PATH_MAX + 16],
	    data_dir[WKD_PATH_MAX];
	const char *tail;
	void *body;
	size_t len = 0;

	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, NULL, 0, NULL);
	pthread_mutex_lock(&root_lock);
	snprintf(data_dir, sizeof(data_dir), "%s", root);
	pthread_mutex_unlock(&root_lock);
	if (data_dir[0] == '\0')
		return reply(conn, MHD_HTTP_NOT_FOUND, NULL, 0, NULL);
	/* Direct method: "hu/<hash>" or "policy"; advanced: "<domain>/hu/<hash>" or
	 * "<domain>/policy". */
	if (strncmp(rest, "hu/", 3) == 0 || strcmp(rest, "policy") == 0) {
		if (host_domain(conn, domain, sizeof(domain)) != 0)
			return reply(conn, MHD_HTTP_NOT_FOUND, NULL, 0, NULL);
		tail = rest;
	} else {
		slash = strchr(rest, '/');
		if (slash == NULL || (size_t)(slash - rest) > WKD_DOMAIN_MAX)
			return reply(conn, MHD_HTTP_NOT_FOUND, NULL, 0, NULL);
		memcpy(domain, rest, (size_t)(slash - rest));
		domain[slash - rest] = '\0';
		tail = slash + 1;
	}
	if (strncmp(tail, "hu/", 3) == 0) {
		if (gpg_wkd_path(data_dir, domain, strlen(domain), tail + 3, path, sizeof(path)) !=
		    0)
			return reply(conn, MHD_HTTP_NOT_FOUND, NULL, 0, NULL);
		body = read_small(path, &len);
		if (body == NULL || len == 0) {
			free(body);
			return reply(conn, MHD_HTTP_NOT_FOUND, NULL, 0, NULL);
		}
		return reply(conn, MHD_HTTP_OK, body, len, "application/octet-stream");
	}
	if (strcmp(tail, "policy") == 0) {
		if (gpg_wkd_path(data_dir, domain, strlen(domain), NULL, dir, sizeof(dir)) != 0)
			return reply(conn, MHD_HTTP_NOT_FOUND, NULL, 0, NULL);
		snprintf(path, sizeof(path), "%s/policy", dir);
		body = read_small(path, &len);
		if (body == NULL)
			return reply(conn, MHD_HTTP_NOT_FOUND, NULL, 0, NULL);
		return reply(conn, MHD_HTTP_OK, body, len, "text/plain; charset=utf-8");
	}
	return reply(conn, MHD_HTTP_NOT_FOUND, NULL, 0, NULL);
}
