/*
 * imap_names.c - mailbox names and LIST patterns (RFC 3501 5.1, 6.3.8) and
 * SASL PLAIN decoding (RFC 4616). Pure. Postern keeps mailbox names in
 * UTF-8 with "/" between levels; names arrive as clients send them (modified
 * UTF-7 is passed through unchanged, like any other 7-bit name).
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
