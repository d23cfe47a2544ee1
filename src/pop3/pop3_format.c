/*
 * pop3_format.c - pure helpers for what the POP3 server sends and decodes:
 * dot-stuffing of multi-line replies, the cut of a message for TOP, and the
 * SASL PLAIN response. No I/O, so they are unit-tested and fuzzed directly.
 */
#include <config.h>

#include <string.h>

#include <sodium.h>

#include "pop3/pop3.h"

size_t pop3_dot_stuff(const unsigned char *in, size_t len, bool *at_line_start, unsigned char *out,
		      size_t outcap, size_t *out_len)
{
	size_t i = 0, o = 0;
	bool bol = *at_line_start;

	while (i < len) {
		if (bol && in[i] == '.') {
			if (outcap - o < 2)
				break;
			out[o++] = '.';
		} else if (outcap - o < 1) {
			break;
		}
		out[o++] = in[i];
		bol = in[i] == '\n';
		i++;
	}
	*at_line_start = bol;
	*out_len = o;
	return i;
}

/* Offset just past the LF that ends the line starting at POS, or LEN. */
static size_t next_line(const unsigned char *msg, size_t len, size_t pos)
{
	const unsigned char *lf = memchr(msg + pos, '\n', len - pos);
	return lf ? (size_t)(lf - msg) + 1 : len;
}

size_t pop3_top_length(const unsigned char *msg, size_t len, uint32_t lines)
{
	size_t pos = 0;

	/* The header ends with the first empty line (CRLF alone, or a bare LF
	 * in mail that was stored loosely). */
	for (;;) {
		size_t end;
		if (pos >= len)
			return len;
		end = next_line(msg, len, pos);
		if (end == len && msg[len - 1] != '\n')
			return len;
		if (end - pos == 1 || (end - pos == 2 && msg[pos] == '\r')) {
			pos = end;
			break;
		}
		pos = end;
	}
	for (uint32_t n = 0; n < lines && pos < len; n++)
		pos = next_line(msg, len, pos);
	return pos;
}

int pop3_sasl_plain_decode(const char *b64, size_t b64_len, char *user, size_t usercap, char *pass,
			   size_t passcap, size_t *pass_len)
{
	unsigned char bin[POP3_AUTH_LINE_MAX];
	size_t bin_len = 0, authz_len, authc_len, pw_len;
	const unsigned char *authc, *pw, *nul;
	int rc = -1;

	if (b64_len == 0 || usercap == 0 || passcap == 0)
		return -1;
	if (sodium_base642bin(bin, sizeof(bin), b64, b64_len, NULL, &bin_len, NULL,
			      sodium_base64_VARIANT_ORIGINAL) != 0)
		goto out;
	nul = memchr(bin, '\0', bin_len);
	if (!nul)
		goto out;
	authz_len = (size_t)(nul - bin);
	authc = nul + 1;
	nul = memchr(authc, '\0', bin_len - authz_len - 1);
	if (!nul)
		goto out;
	authc_len = (size_t)(nul - authc);
	pw = nul + 1;
	pw_len = bin_len - authz_len - authc_len - 2;
	if (authc_len == 0 || pw_len == 0 || memchr(pw, '\0', pw_len))
		goto out;
	if (authc_len >= usercap || pw_len >= passcap)
		goto out;
	if (authz_len != 0 && (authz_len != authc_len || memcmp(bin, authc, authc_len) != 0))
		goto out;
	memcpy(user, authc, authc_len);
	user[authc_len] = '\0';
	memcpy(pass, pw, pw_len);
	pass[pw_len] = '\0';
	*pass_len = pw_len;
	rc = 0;
out:
	sodium_memzero(bin, sizeof(bin));
	return rc;
}
