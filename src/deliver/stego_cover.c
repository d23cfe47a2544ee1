/*
 * stego_cover.c - finds the picture a sender attached as the cover for the
 * submission rewrite ("X-Postern-Stego: yes; cover=attached") and cuts it
 * out of the message, so that what gets hidden is everything else.
 *
 * Only the top level of a multipart message is searched: that is where a
 * mail client puts an attachment (inline pictures of an HTML body sit in a
 * nested multipart/related and are not covers). The cut is made on the raw
 * bytes, from the part's delimiter line to the next one (RFC 2046 5.1.1),
 * so the rest of the message stays byte for byte what was sent.
 */
#include <config.h>

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "deliver/stego_rewrite.h"

#define BOUNDARY_MAX 70 /* RFC 2046 5.1.1 */

/* Length of the header section starting at POS (up to and including the empty line). */
static size_t headers_end(const unsigned char *m, size_t pos, size_t end)
{
	if (pos < end && m[pos] == '\n')
		return pos + 1;
	if (end - pos >= 2 && m[pos] == '\r' && m[pos + 1] == '\n')
		return pos + 2;
	for (size_t i = pos; i + 1 < end; i++) {
		if (m[i] == '\n' && m[i + 1] == '\n')
			return i + 2;
		if (m[i] == '\n' && m[i + 1] == '\r' && i + 2 < end && m[i + 2] == '\n')
			return i + 3;
	}
	return end;
}

static size_t next_line(const unsigned char *m, size_t pos, size_t end)
{
	while (pos < end && m[pos] != '\n')
		pos++;
	return pos < end ? pos + 1 : end;
}

/*
 * The unfolded value of header field NAME in [POS, END) into OUT (NUL-
 * terminated, leading and trailing white space removed). False when absent
 * or longer than OUTLEN - 1.
 */
static bool field_value(const unsigned char *m, size_t pos, size_t end, const char *name, char *out,
			size_t outlen)
{
	size_t n = strlen(name);

	while (pos < end) {
		size_t next = next_line(m, pos, end), o = 0;

		if (next - pos > n && strncasecmp((const char *)m + pos, name, n) == 0 &&
		    m[pos + n] == ':') {
			size_t v = pos + n + 1;

			for (;;) {
				for (; v < next; v++) {
					if (m[v] == '\r' || m[v] == '\n')
						continue;
					if (o == 0 && (m[v] == ' ' || m[v] == '\t'))
						continue;
					if (o + 1 >= outlen)
						return false;
					out[o++] = (char)m[v];
				}
				if (next >= end || (m[next] != ' ' && m[next] != '\t'))
					break;
				v = next;
				next = next_line(m, next, end);
			}
			while (o > 0 && (out[o - 1] == ' ' || out[o - 1] == '\t'))
				o--;
			out[o] = '\0';
			return true;
		}
		pos = next;
	}
	return false;
}

/* True when the Content-Type value CT has media type TYPE ("image/png"; a
 * TYPE ending in '/' matches any subtype). */
static bool media_type_is(const char *ct, const char *type)
{
	size_t n = strlen(type), len = strcspn(ct, "; \t");

	if (type[n - 1] == '/')
		return len > n && strncasecmp(ct, type, n) == 0;
	return len == n && strncasecmp(ct, type, n) == 0;
}

/* The boundary parameter of a multipart Content-Type value, into OUT. */
static bool boundary_of(const char *ct, char *out, size_t outlen)
{
	const char *p = ct;

	while ((p = strchr(p, ';')) != NULL) {
		size_t o = 0;

		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (strncasecmp(p, "boundary", 8) != 0)
			continue;
		p += 8;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p != '=')
			continue;
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '"') {
			for (p++; *p && *p != '"'; p++) {
				if (*p == '\\' && p[1])
					p++;
				if (o + 1 >= outlen)
					return false;
				out[o++] = *p;
			}
		} else {
			for (; *p && *p != ';' && *p != ' ' && *p != '\t'; p++) {
				if (o + 1 >= outlen)
					return false;
				out[o++] = *p;
			}
		}
		out[o] = '\0';
		return o > 0;
	}
	return false;
}

/*
 * Is the line at POS a delimiter of BOUNDARY? 1: a part follows, 2: the
 * close delimiter, 0: neither. Transport padding (white space) may follow.
 */
static int delimiter(const unsigned char *m, size_t pos, size_t next, const char *boundary)
{
	size_t n = strlen(boundary), p = pos + 2 + n;
	int kind = 1;

	if (next - pos < 2 + n || m[pos] != '-' || m[pos + 1] != '-' ||
	    memcmp(m + pos + 2, boundary, n) != 0)
		return 0;
	if (next - p >= 2 && m[p] == '-' && m[p + 1] == '-') {
		kind = 2;
		p += 2;
	}
	for (; p < next; p++)
		if (m[p] != ' ' && m[p] != '\t' && m[p] != '\r' && m[p] != '\n')
			return 0;
	return kind;
}

/* Decodes the body [POS, END) of a part with transfer encoding CTE into *OUT. */
static int decode_part(const unsigned char *m, size_t pos, size_t end, const char *cte,
		       unsigned char **out, size_t *out_len, char *err, size_t errlen)
{
	size_t cap = end - pos, n = 0;
	unsigned char *buf = malloc(cap ? cap : 1);

	if (buf == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (strcasecmp(cte, "base64") == 0) {
		if (sodium_base642bin(buf, cap, (const char *)m + pos, end - pos, " \t\r\n", &n,
				      NULL, sodium_base64_VARIANT_ORIGINAL) != 0) {
			free(buf);
			snprintf(err, errlen, "the attached picture is not valid base64");
			return -1;
		}
	} else if (cte[0] == '\0' || strcasecmp(cte, "binary") == 0) {
		memcpy(buf, m + pos, end - pos);
		n = end - pos;
	} else {
		free(buf);
		snprintf(err, errlen, "the attached picture must be sent as base64");
		return -1;
	}
	*out = buf;
	*out_len = n;
	return 0;
}

int stego_cover_take(const unsigned char *msg, size_t len, unsigned char **png, size_t *png_len,
		     unsigned char **rest, size_t *rest_len, char *err, size_t errlen)
{
	char ct[1024], boundary[BOUNDARY_MAX + 1], cte[64];
	size_t body = headers_end(msg, 0, len), pos, part_start = 0, cut_start = 0;
	bool in_part = false;

	*png = *rest = NULL;
	if (!field_value(msg, 0, body, "Content-Type", ct, sizeof(ct)) ||
	    !media_type_is(ct, "multipart/") || !boundary_of(ct, boundary, sizeof(boundary))) {
		snprintf(err, errlen,
			 "cover=attached needs a PNG attachment, and the message has "
			 "no attachments");
		return -1;
	}
	for (pos = body; pos < len;) {
		size_t next = next_line(msg, pos, len);
		int kind = delimiter(msg, pos, next, boundary);

		if (kind != 0 && in_part) {
			/* The part ran from PART_START to the line break before POS. */
			size_t hend = headers_end(msg, part_start, pos), bend = pos;
			char pct[256];

			if (bend > hend && msg[bend - 1] == '\n')
				bend--;
			if (bend > hend && msg[bend - 1] == '\r')
				bend--;
			if (field_value(msg, part_start, hend, "Content-Type", pct, sizeof(pct)) &&
			    media_type_is(pct, "image/png")) {
				if (!field_value(msg, part_start, hend, "Content-Transfer-Encoding",
						 cte, sizeof(cte)))
					cte[0] = '\0';
				if (decode_part(msg, hend, bend, cte, png, png_len, err, errlen) !=
				    0)
					return -1;
				*rest = malloc(len - (pos - cut_start) + 1);
				if (*rest == NULL) {
					free(*png);
					*png = NULL;
					snprintf(err, errlen, "out of memory");
					return -1;
				}
				memcpy(*rest, msg, cut_start);
				memcpy(*rest + cut_start, msg + pos, len - pos);
				*rest_len = len - (pos - cut_start);
				return 0;
			}
		}
		if (kind == 2)
			break;
		if (kind == 1) {
			in_part = true;
			cut_start = pos;
			part_start = next;
		}
		pos = next;
	}
	snprintf(err, errlen,
		 "cover=attached needs a PNG attachment (image/png), and the message "
		 "has none");
	return -1;
}
