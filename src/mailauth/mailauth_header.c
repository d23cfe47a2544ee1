/*
 * mailauth_header.c - the Authentication-Results header (RFC 8601): written
 * for our results, and removed when a message from outside already carries
 * one in our name. Pure text handling, unit-tested.
 */
#include <config.h>

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "mailauth/mailauth.h"

const char *mailauth_verdict_name(enum mailauth_verdict v)
{
	switch (v) {
	case MAILAUTH_PASS:
		return "pass";
	case MAILAUTH_FAIL:
		return "fail";
	case MAILAUTH_SOFTFAIL:
		return "softfail";
	case MAILAUTH_NEUTRAL:
		return "neutral";
	case MAILAUTH_TEMPERROR:
		return "temperror";
	case MAILAUTH_PERMERROR:
		return "permerror";
	case MAILAUTH_NONE:
	default:
		return "none";
	}
}

int mailauth_header(const struct mailauth_result *r, const char *authserv_id, char *out,
		    size_t outlen)
{
	int n = snprintf(out, outlen, "Authentication-Results: %s;\r\n\tspf=%s", authserv_id,
			 mailauth_verdict_name(r->spf));
	size_t o;

	if (n < 0 || (size_t)n >= outlen)
		return -1;
	o = (size_t)n;
#define ADD(...)                                                                                   \
	do {                                                                                       \
		n = snprintf(out + o, outlen - o, __VA_ARGS__);                                    \
		if (n < 0 || (size_t)n >= outlen - o)                                              \
			return -1;                                                                 \
		o += (size_t)n;                                                                    \
	} while (0)
	if (r->mailfrom_domain[0])
		ADD(" smtp.mailfrom=%s", r->mailfrom_domain);
	ADD(";\r\n\tdkim=%s", mailauth_verdict_name(r->dkim));
	if (r->dkim_domain[0])
		ADD(" header.d=%s", r->dkim_domain);
	ADD(";\r\n\tdmarc=%s", mailauth_verdict_name(r->dmarc));
	if (r->dmarc == MAILAUTH_FAIL)
		ADD(" (p=%s)", r->policy == MAILAUTH_POLICY_REJECT	 ? "reject"
			       : r->policy == MAILAUTH_POLICY_QUARANTINE ? "quarantine"
									 : "none");
	if (r->from_domain[0])
		ADD(" header.from=%s", r->from_domain);
	ADD("\r\n");
#undef ADD
	return (int)o;
}

/* Whether the field at P (LEN bytes, continuation lines included) names ID
 * as its authserv-id: the first token after the colon, comments skipped. */
static bool names_us(const unsigned char *p, size_t len, const char *id)
{
	size_t i = strlen("Authentication-Results:"), idlen = strlen(id);

	for (;;) {
		while (i < len && isspace(p[i]))
			i++;
		if (i < len && p[i] == '(') { /* a comment (not nested here) */
			while (i < len && p[i] != ')')
				i++;
			i++;
			continue;
		}
		break;
	}
	if (i + idlen > len || strncasecmp((const char *)p + i, id, idlen) != 0)
		return false;
	i += idlen;
	return i == len || p[i] == ';' || isspace(p[i]) || p[i] == '(';
}

size_t mailauth_strip(unsigned char *msg, size_t len, const char *authserv_id)
{
	const char *name = "Authentication-Results:";
	size_t nlen = strlen(name), i = 0;

	while (i < len) {
		size_t start = i, end;

		/* one field: its line and the continuation lines after it */
		while (i < len && msg[i] != '\n')
			i++;
		if (i < len)
			i++;
		if (i - start <= 2 && (msg[start] == '\n' || msg[start] == '\r'))
			break; /* the blank line: the body starts */
		while (i < len && (msg[i] == ' ' || msg[i] == '\t')) {
			while (i < len && msg[i] != '\n')
				i++;
			if (i < len)
				i++;
		}
		end = i;
		if (end - start > nlen && strncasecmp((const char *)msg + start, name, nlen) == 0 &&
		    names_us(msg + start, end - start, authserv_id)) {
			memmove(msg + start, msg + end, len - end);
			len -= end - start;
			i = start;
		}
	}
	return len;
}
