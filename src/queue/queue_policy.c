/*
 * queue_policy.c - the small decisions of outbound delivery, kept free of
 * I/O so they are unit-tested: MX preference order, null MX, the retry
 * schedule, per-domain lists and relayhost syntax.
 */
#include <config.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "queue/queue.h"

void queue_mx_sort(struct queue_mx *mx, size_t n)
{
	/* Insertion sort: stable, and n is at most QUEUE_MX_MAX. */
	for (size_t i = 1; i < n; i++) {
		struct queue_mx tmp = mx[i];
		size_t j = i;

		while (j > 0 && mx[j - 1].preference > tmp.preference) {
			mx[j] = mx[j - 1];
			j--;
		}
		mx[j] = tmp;
	}
}

bool queue_mx_is_null(const struct queue_mx *mx, size_t n)
{
	return n == 1 && mx[0].preference == 0 && mx[0].host[0] == '\0';
}

int64_t queue_retry_delay(int attempts, unsigned min, unsigned max)
{
	int64_t delay = min ? min : 1;

	if ((int64_t)max < delay)
		max = (unsigned)delay;
	for (int i = 1; i < attempts && delay < (int64_t)max; i++)
		delay *= 2;
	return delay > (int64_t)max ? (int64_t)max : delay;
}

bool queue_domain_in_list(const char *list, const char *domain)
{
	size_t dlen = strlen(domain);
	const char *p = list;

	if (dlen == 0)
		return false;
	while (*p) {
		size_t len;

		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		len = strcspn(p, " \t,");
		if (len == dlen && strncasecmp(p, domain, len) == 0)
			return true;
		p += len;
	}
	return false;
}

const char *queue_address_domain(const char *address)
{
	const char *at = strrchr(address, '@');

	return at ? at + 1 : "";
}

int queue_parse_hostport(const char *spec, uint16_t default_port, char *host, size_t hostlen,
			 uint16_t *port)
{
	const char *end, *colon;
	size_t len;

	*port = default_port;
	if (spec[0] == '[') {
		end = strchr(spec, ']');
		if (!end)
			return -1;
		len = (size_t)(end - spec - 1);
		colon = end[1] == ':' ? end + 1 : NULL;
		if (end[1] != '\0' && !colon)
			return -1;
		spec++;
	} else {
		colon = strchr(spec, ':');
		if (colon && strchr(colon + 1, ':'))
			return -1; /* a bare IPv6 address needs brackets */
		len = colon ? (size_t)(colon - spec) : strlen(spec);
	}
	if (len == 0 || len >= hostlen)
		return -1;
	memcpy(host, spec, len);
	host[len] = '\0';
	if (colon) {
		char *rest;
		unsigned long p;

		if (!isdigit((unsigned char)colon[1]))
			return -1;
		p = strtoul(colon + 1, &rest, 10);
		if (*rest || p == 0 || p > 65535)
			return -1;
		*port = (uint16_t)p;
	}
	return 0;
}

bool queue_has_8bit(const void *p, size_t len)
{
	const unsigned char *s = p;

	for (size_t i = 0; i < len; i++)
		if (s[i] & 0x80)
			return true;
	return false;
}
