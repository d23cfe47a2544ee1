/*
 * imap_names.c - mailbox names and LIST patterns (RFC 3501 5.1, 6.3.8) and
 * SASL PLAIN decoding (RFC 4616). Pure. Postern keeps mailbox names in
 * UTF-8 with "/" between levels; IMAP4rev1 sessions write them in modified
 * UTF-7 (RFC 3501 5.1.3), converted here both ways (imap_wire_names.c
 * decides when).
 */
#include <config.h>

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "imap/imap.h"
#include "store/store.h"

bool imap_list_match(const char *pattern, const char *name)
{
	/* Iterative glob with backtracking to the last "*" or "%". */
	const char *p = pattern, *n = name;
	const char *star_p = NULL, *star_n = NULL;
	bool star_any = false;

	while (*n) {
		if (*p == '*' || *p == '%') {
			star_any = *p == '*';
			star_p = ++p;
			star_n = n;
			continue;
		}
		if (*p && *p == *n) {
			p++;
			n++;
			continue;
		}
		if (star_p && (star_any || *star_n != '/')) {
			p = star_p;
			n = ++star_n;
			continue;
		}
		return false;
	}
	while (*p == '*' || *p == '%')
		p++;
	return *p == '\0';
}

int imap_mailbox_name(const struct imap_arg *arg, char *out, size_t outlen)
{
	size_t len;

	if (!imap_arg_is_string(arg) || arg->len == 0 || arg->len >= outlen ||
	    arg->len > STORE_MAILBOX_NAME_MAX || strlen(arg->str) != arg->len)
		return -1;
	len = arg->len;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)arg->str[i];
		if (ch < 0x20 || ch == 0x7f || ch == '*' || ch == '%')
			return -1;
		if (ch == '/' && (i == 0 || i + 1 == len || arg->str[i + 1] == '/'))
			return -1;
	}
	memcpy(out, arg->str, len + 1);
	/* RFC 3501 5.1: INBOX is case-insensitive, also as the first level. */
	if (strncasecmp(out, "INBOX", 5) == 0 && (out[5] == '\0' || out[5] == '/'))
		memcpy(out, "INBOX", 5);
	return 0;
}

int imap_sasl_plain_decode(const char *b64, size_t len, char *user, size_t usercap, char *pass,
			   size_t passcap, size_t *pass_len)
{
	unsigned char buf[2048];
	size_t n = 0;
	const unsigned char *authz, *authc, *pw, *end;
	size_t authz_len, authc_len, pw_len;
	int rc = -1;

	if (sodium_base642bin(buf, sizeof(buf), b64, len, NULL, &n, NULL,
			      sodium_base64_VARIANT_ORIGINAL) != 0)
		goto out;
	end = buf + n;
	authz = buf;
	authc = memchr(authz, '\0', n);
	if (!authc)
		goto out;
	authz_len = (size_t)(authc - authz);
	authc++;
	pw = memchr(authc, '\0', (size_t)(end - authc));
	if (!pw)
		goto out;
	authc_len = (size_t)(pw - authc);
	pw++;
	pw_len = (size_t)(end - pw);
	if (authc_len == 0 || authc_len >= usercap || pw_len >= passcap || memchr(pw, '\0', pw_len))
		goto out;
	if (authz_len && (authz_len != authc_len ||
			  strncasecmp((const char *)authz, (const char *)authc, authc_len)))
		goto out;
	memcpy(user, authc, authc_len);
	user[authc_len] = '\0';
	memcpy(pass, pw, pw_len);
	pass[pw_len] = '\0';
	*pass_len = pw_len;
	rc = 0;
out:
	sodium_memzero(buf, sizeof(buf));
	return rc;
}

/* ---- modified UTF-7 (RFC 3501 5.1.3) ---- */

static const char mb64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static int mb64_value(char c)
{
	const char *p = c ? strchr(mb64, c) : NULL;
	return p ? (int)(p - mb64) : -1;
}

/* Appends code point CP as UTF-8; false when OUT is full. */
static bool put_utf8(char *out, size_t outlen, size_t *o, uint32_t cp)
{
	unsigned char b[4];
	size_t n;

	if (cp < 0x80) {
		b[0] = (unsigned char)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (unsigned char)(0xc0 | (cp >> 6));
		b[1] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		b[0] = (unsigned char)(0xe0 | (cp >> 12));
		b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		b[2] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		b[0] = (unsigned char)(0xf0 | (cp >> 18));
		b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
		b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		b[3] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	if (*o + n >= outlen)
		return false;
	memcpy(out + *o, b, n);
	*o += n;
	return true;
}

int imap_mutf7_decode(const char *in, size_t len, char *out, size_t outlen)
{
	size_t o = 0;

	if (outlen == 0)
		return -1;
	for (size_t i = 0; i < len;) {
		uint32_t bits = 0, high = 0;
		unsigned nbits = 0;
		size_t j;

		if (in[i] != '&') {
			if (o + 1 >= outlen)
				return -1;
			out[o++] = in[i++];
			continue;
		}
		if (i + 1 < len && in[i + 1] == '-') {
			if (o + 1 >= outlen)
				return -1;
			out[o++] = '&';
			i += 2;
			continue;
		}
		for (j = i + 1; j < len && in[j] != '-'; j++) {
			int v = mb64_value(in[j]);
			if (v < 0)
				return -1;
			bits = (bits << 6) | (uint32_t)v;
			nbits += 6;
			if (nbits < 16)
				continue;
			nbits -= 16;
			uint32_t u = (bits >> nbits) & 0xffff;
			bits &= (1u << nbits) - 1;
			if (high) {
				if (u < 0xdc00 || u > 0xdfff)
					return -1;
				u = 0x10000 + ((high - 0xd800) << 10) + (u - 0xdc00);
				high = 0;
			} else if (u >= 0xd800 && u <= 0xdbff) {
				high = u;
				continue;
			} else if (u >= 0xdc00 && u <= 0xdfff) {
				return -1;
			} else if (u >= 0x20 && u <= 0x7e) {
				return -1; /* printable ASCII is never encoded */
			}
			if (!put_utf8(out, outlen, &o, u))
				return -1;
		}
		/* A run ends with "-", holds something, leaves no pair half done and
		 * pads with fewer than 6 zero bits. */
		if (j == len || j == i + 1 || high || nbits >= 6 || bits != 0)
			return -1;
		i = j + 1;
	}
	out[o] = '\0';
	return 0;
}

/* Next code point of UTF-8 text; an invalid byte counts as U+FFFD. */
static uint32_t next_utf8(const unsigned char **pp)
{
	const unsigned char *p = *pp;
	uint32_t cp;
	size_t n;

	if (p[0] < 0x80) {
		*pp = p + 1;
		return p[0];
	}
	if ((p[0] & 0xe0) == 0xc0) {
		cp = p[0] & 0x1f;
		n = 1;
	} else if ((p[0] & 0xf0) == 0xe0) {
		cp = p[0] & 0x0f;
		n = 2;
	} else if ((p[0] & 0xf8) == 0xf0) {
		cp = p[0] & 0x07;
		n = 3;
	} else {
		*pp = p + 1;
		return 0xfffd;
	}
	for (size_t i = 1; i <= n; i++) {
		if ((p[i] & 0xc0) != 0x80) {
			*pp = p + 1;
			return 0xfffd;
		}
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	*pp = p + n + 1;
	return cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ? 0xfffd : cp;
}

int imap_mutf7_encode(const char *utf8, char *out, size_t outlen)
{
	const unsigned char *p = (const unsigned char *)utf8;
	size_t o = 0;

	while (*p) {
		uint32_t bits = 0;
		unsigned nbits = 0;

		if (*p >= 0x20 && *p <= 0x7e) {
			size_t need = *p == '&' ? 2 : 1;
			if (o + need >= outlen)
				return -1;
			out[o++] = (char)*p;
			if (*p == '&')
				out[o++] = '-';
			p++;
			continue;
		}
		if (o + 1 >= outlen)
			return -1;
		out[o++] = '&';
		while (*p && (*p < 0x20 || *p > 0x7e)) {
			uint32_t cp = next_utf8(&p);
			uint32_t units[2];
			size_t nu = 1;

			if (cp >= 0x10000) {
				units[0] = 0xd800 + ((cp - 0x10000) >> 10);
				units[1] = 0xdc00 + ((cp - 0x10000) & 0x3ff);
				nu = 2;
			} else {
				units[0] = cp;
			}
			for (size_t k = 0; k < nu; k++) {
				bits = (bits << 16) | units[k];
				nbits += 16;
				while (nbits >= 6) {
					nbits -= 6;
					if (o + 1 >= outlen)
						return -1;
					out[o++] = mb64[(bits >> nbits) & 0x3f];
				}
				bits &= (1u << nbits) - 1;
			}
		}
		if (nbits) {
			if (o + 1 >= outlen)
				return -1;
			out[o++] = mb64[(bits << (6 - nbits)) & 0x3f];
		}
		if (o + 1 >= outlen)
			return -1;
		out[o++] = '-';
	}
	out[o] = '\0';
	return 0;
}
