/*
 * queue_dns.c - DNS lookups for outbound delivery with libunbound: MX
 * records (preference order, null MX) and the A/AAAA addresses of a host.
 * The resolver forwards to a configured upstream ([queue] resolver, which
 * tests point at a DNS server on loopback) or to the system's resolvers.
 * One resolver belongs to one thread.
 */
#include <config.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unbound.h>

#include "queue/queue.h"
#include "util/i18n.h"

#define DNS_TYPE_A 1
#define DNS_TYPE_MX 15
#define DNS_TYPE_AAAA 28
#define DNS_CLASS_IN 1
#define DNS_RCODE_SERVFAIL 2

struct queue_resolver {
	struct ub_ctx *ctx;
};

struct queue_resolver *queue_resolver_new(const char *upstream, char *err, size_t errlen)
{
	struct queue_resolver *r = calloc(1, sizeof(*r));
	int rc;

	if (!r || !(r->ctx = ub_ctx_create())) {
		free(r);
		snprintf(err, errlen, "%s", _("cannot create a DNS resolver"));
		return NULL;
	}
	if (upstream && upstream[0]) {
		/* An upstream on loopback is a deliberate choice here. */
		rc = ub_ctx_set_option(r->ctx, "do-not-query-localhost:", "no");
		if (rc == 0)
			rc = ub_ctx_set_fwd(r->ctx, upstream);
		/* libunbound answers NXDOMAIN for the special-use name test.
		 * (RFC 6761) by itself; a configured upstream that serves such
		 * a private zone gets the question instead. This call
		 * finalizes the context, so it comes last. */
		if (rc == 0)
			rc = ub_ctx_zone_remove(r->ctx, "test.");
	} else {
		rc = ub_ctx_resolvconf(r->ctx, NULL);
		if (rc == 0)
			rc = ub_ctx_hosts(r->ctx, NULL);
	}
	if (rc != 0) {
		snprintf(err, errlen, _("DNS resolver %s: %s"),
			 upstream && upstream[0] ? upstream : "/etc/resolv.conf", ub_strerror(rc));
		queue_resolver_free(r);
		return NULL;
	}
	return r;
}

void queue_resolver_free(struct queue_resolver *r)
{
	if (!r)
		return;
	ub_ctx_delete(r->ctx);
	free(r);
}

/* Wire-format name (uncompressed) at P (LEN bytes) into OUT, lower case,
 * without the trailing dot; the root becomes "". 0 or -1. */
static int wire_name(const unsigned char *p, size_t len, char *out, size_t outlen)
{
	size_t i = 0, o = 0;

	for (;;) {
		size_t label;

		if (i >= len)
			return -1;
		label = p[i++];
		if (label == 0)
			break;
		if (label > 63 || i + label > len)
			return -1;
		if (o && o + 1 < outlen)
			out[o++] = '.';
		if (o + label + 1 > outlen)
			return -1;
		for (size_t k = 0; k < label; k++) {
			unsigned char c = p[i + k];
			if (c <= 0x20 || c >= 0x7f)
				return -1;
			out[o++] = (char)tolower(c);
		}
		i += label;
	}
	out[o] = '\0';
	return 0;
}

enum queue_result queue_resolve_mx(struct queue_resolver *r, const char *domain,
				   struct queue_mx *mx, size_t max, size_t *n, char *err,
				   size_t errlen)
{
	struct ub_result *res = NULL;
	enum queue_result out = QUEUE_OK;
	int rc;

	*n = 0;
	rc = ub_resolve(r->ctx, domain, DNS_TYPE_MX, DNS_CLASS_IN, &res);
	if (rc != 0) {
		snprintf(err, errlen, "MX lookup for %s failed: %s", domain, ub_strerror(rc));
		return QUEUE_TEMPFAIL;
	}
	if (res->nxdomain) {
		snprintf(err, errlen, "domain %s does not exist", domain);
		out = QUEUE_PERMFAIL;
	} else if (!res->havedata && res->rcode != 0) {
		snprintf(err, errlen, "MX lookup for %s failed (rcode %d)", domain, res->rcode);
		out = QUEUE_TEMPFAIL;
	} else {
		for (size_t i = 0; res->havedata && res->data[i] && *n < max; i++) {
			const unsigned char *d = (const unsigned char *)res->data[i];
			size_t len = (size_t)res->len[i];

			if (len < 3 ||
			    wire_name(d + 2, len - 2, mx[*n].host, sizeof(mx[*n].host)) != 0)
				continue;
			mx[*n].preference = ((unsigned)d[0] << 8) | d[1];
			(*n)++;
		}
		queue_mx_sort(mx, *n);
	}
	ub_resolve_free(res);
	return out;
}

/* Appends the records of one address type to ADDRS. */
static int resolve_type(struct queue_resolver *r, const char *host, int type, uint16_t port,
			struct sockaddr_storage *addrs, size_t max, size_t *n, int *rcode)
{
	struct ub_result *res = NULL;
	int rc = ub_resolve(r->ctx, host, type, DNS_CLASS_IN, &res);

	if (rc != 0)
		return -1;
	*rcode = res->nxdomain ? 3 : res->rcode;
	for (size_t i = 0; res->havedata && res->data[i] && *n < max; i++) {
		struct sockaddr_storage *ss = &addrs[*n];

		memset(ss, 0, sizeof(*ss));
		if (type == DNS_TYPE_A && res->len[i] == 4) {
			struct sockaddr_in *sin = (struct sockaddr_in *)(void *)ss;
			sin->sin_family = AF_INET;
			sin->sin_port = htons(port);
			memcpy(&sin->sin_addr, res->data[i], 4);
		} else if (type == DNS_TYPE_AAAA && res->len[i] == 16) {
			struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)(void *)ss;
			sin6->sin6_family = AF_INET6;
			sin6->sin6_port = htons(port);
			memcpy(&sin6->sin6_addr, res->data[i], 16);
		} else {
			continue;
		}
		(*n)++;
	}
	ub_resolve_free(res);
	return 0;
}

enum queue_result queue_resolve_host(struct queue_resolver *r, const char *host, uint16_t port,
				     struct sockaddr_storage *addrs, size_t max, size_t *n,
				     char *err, size_t errlen)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)(void *)&addrs[0];
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)(void *)&addrs[0];
	int rc4 = 0, rc6 = 0, fail4, fail6;

	*n = 0;
	if (max == 0)
		return QUEUE_TEMPFAIL;
	memset(&addrs[0], 0, sizeof(addrs[0]));
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		*n = 1;
		return QUEUE_OK;
	}
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		*n = 1;
		return QUEUE_OK;
	}
	fail4 = resolve_type(r, host, DNS_TYPE_A, port, addrs, max, n, &rc4);
	fail6 = resolve_type(r, host, DNS_TYPE_AAAA, port, addrs, max, n, &rc6);
	if (*n > 0)
		return QUEUE_OK;
	if (fail4 || fail6 || rc4 == DNS_RCODE_SERVFAIL || rc6 == DNS_RCODE_SERVFAIL) {
		snprintf(err, errlen, "address lookup for %s failed", host);
		return QUEUE_TEMPFAIL;
	}
	snprintf(err, errlen, "host %s has no address", host);
	return QUEUE_PERMFAIL;
}
