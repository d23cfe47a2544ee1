/*
 * imap_buf.c - a growable output buffer for building responses (FETCH,
 * LIST, BODYSTRUCTURE) and the IMAP string encoding rules (RFC 3501 4.3):
 * a quoted string when the text allows it, a literal otherwise.
 */
#include <config.h>

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "imap/imap_int.h"

/* Longer strings go out as literals even when quoting would work. */
#define IMAP_QUOTED_MAX 1024

bool ibuf_reserve(struct imap_buf *b, size_t extra)
{
	size_t need, ncap;
	char *np;

	if (b->failed)
		return false;
	need = b->len + extra + 1;
	if (need <= b->cap)
		return true;
	ncap = b->cap ? b->cap : 256;
	while (ncap < need)
		ncap *= 2;
	np = malloc(ncap);
	if (!np) {
		b->failed = true;
		return false;
	}
	/* Copy and wipe rather than realloc: the old block may hold message text. */
	if (b->p) {
		memcpy(np, b->p, b->len);
		sodium_memzero(b->p, b->cap);
		free(b->p);
	}
	b->p = np;
	b->cap = ncap;
	return true;
}

void ibuf_add(struct imap_buf *b, const void *data, size_t len)
{
	if (!ibuf_reserve(b, len))
		return;
	memcpy(b->p + b->len, data, len);
	b->len += len;
	b->p[b->len] = '\0';
}

void ibuf_str(struct imap_buf *b, const char *s)
{
	ibuf_add(b, s, strlen(s));
}

void ibuf_printf(struct imap_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !ibuf_reserve(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

static void nstring(struct imap_buf *b, const char *s, size_t len, bool upper)
{
	bool quotable = len <= IMAP_QUOTED_MAX;

	if (!s) {
		ibuf_str(b, "NIL");
		return;
	}
	for (size_t i = 0; i < len && quotable; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '\0' || ch == '\r' || ch == '\n' || ch >= 0x80)
			quotable = false;
	}
	if (!quotable) {
		ibuf_printf(b, "{%zu}\r\n", len);
		ibuf_add(b, s, len);
		return;
	}
	if (!ibuf_reserve(b, len * 2 + 2))
		return;
	b->p[b->len++] = '"';
	for (size_t i = 0; i < len; i++) {
		char ch = s[i];
		if (ch == '"' || ch == '\\')
			b->p[b->len++] = '\\';
		b->p[b->len++] = upper ? (char)toupper((unsigned char)ch) : ch;
	}
	b->p[b->len++] = '"';
	b->p[b->len] = '\0';
}

void ibuf_nstring(struct imap_buf *b, const char *s, size_t len)
{
	nstring(b, s, len, false);
}

void ibuf_nstring_upper(struct imap_buf *b, const char *s)
{
	nstring(b, s, s ? strlen(s) : 0, true);
}

void ibuf_seqset(struct imap_buf *b, const uint32_t *n, size_t count)
{
	for (size_t i = 0; i < count;) {
		size_t j = i;
		while (j + 1 < count && n[j + 1] == n[j] + 1)
			j++;
		if (j > i)
			ibuf_printf(b, "%s%u:%u", i ? "," : "", n[i], n[j]);
		else
			ibuf_printf(b, "%s%u", i ? "," : "", n[i]);
		i = j + 1;
	}
}

void ibuf_free(struct imap_buf *b)
{
	if (b->p) {
		sodium_memzero(b->p, b->cap);
		free(b->p);
	}
	memset(b, 0, sizeof(*b));
}
