/*
 * imap_binary.c - the content behind FETCH BINARY[part] and BINARY.SIZE
 * (RFC 3516): a leaf part's body with its Content-Transfer-Encoding undone
 * by GMime's decoders (base64, quoted-printable, x-uuencode); 7bit, 8bit
 * and binary bodies, multiparts and embedded messages are returned as they
 * are. The decoded bytes live only in the caller's scratch buffer.
 *
 * A message appended with NUL in it (a literal8, RFC 3516 4.4) is stored as
 * it came; FETCH BINARY[] gives it back byte for byte. Every other view of
 * it (BODY[], BODYSTRUCTURE, SEARCH, ...) is its textual form, in which each
 * part whose content holds NUL is base64-encoded (RFC 3516 6: BODY and
 * BODYSTRUCTURE describe the message as if the binary sections were in a
 * transfer encoding IMAP4 allows); BINARY[part] decodes that again.
 */
#include <config.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <gmime/gmime.h>
#include <sodium.h>

#include "imap/imap_int.h"

static pthread_once_t gmime_once = PTHREAD_ONCE_INIT;
static void gmime_setup(void)
{
	g_mime_init();
}

int imap_binary(const char *msg, const struct imap_mime *root, const struct imap_fetch_att *a,
		struct imap_buf *scratch, const char **out, size_t *out_len)
{
	const struct imap_mime *m;
	GMimeContentEncoding enc = GMIME_CONTENT_ENCODING_DEFAULT;
	GMimeEncoding state;
	char *cte;
	size_t need;

	if (a->n_parts == 0) {
		*out = msg;
		*out_len = root->hdr_len + root->body_len;
		return 0;
	}
	m = imap_mime_part(root, a->parts, a->n_parts);
	if (!m)
		return -1;
	*out = msg + m->body_off;
	*out_len = m->body_len;
	if (strcmp(m->type, "MULTIPART") == 0 || m->message)
		return 0;
	cte = imap_header_get(msg + m->hdr_off, m->hdr_len, "Content-Transfer-Encoding");
	if (cte) {
		pthread_once(&gmime_once, gmime_setup);
		g_strstrip(cte);
		enc = g_mime_content_encoding_from_string(cte);
		if (enc == GMIME_CONTENT_ENCODING_DEFAULT && cte[0] != '\0')
			enc = (GMimeContentEncoding)-1;
		free(cte);
	}
	switch ((int)enc) {
	case GMIME_CONTENT_ENCODING_DEFAULT:
	case GMIME_CONTENT_ENCODING_7BIT:
	case GMIME_CONTENT_ENCODING_8BIT:
	case GMIME_CONTENT_ENCODING_BINARY:
		return 0;
	case GMIME_CONTENT_ENCODING_BASE64:
	case GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE:
	case GMIME_CONTENT_ENCODING_UUENCODE:
		break;
	default:
		return -2; /* RFC 3516 4.3: [UNKNOWN-CTE] */
	}
	g_mime_encoding_init_decode(&state, enc);
	need = g_mime_encoding_outlen(&state, m->body_len) + 16;
	scratch->len = 0;
	if (!ibuf_reserve(scratch, need))
		return -3;
	scratch->len = g_mime_encoding_step(&state, msg + m->body_off, m->body_len, scratch->p);
	scratch->len += g_mime_encoding_flush(&state, "", 0, scratch->p + scratch->len);
	*out = scratch->p;
	*out_len = scratch->len;
	return 0;
}

/* ---- messages appended with NUL (RFC 3516 4.4) ---- */

/* A leaf part whose content holds NUL. */
struct nul_part {
	size_t hdr_off, hdr_len, body_off, body_len;
	bool encodable; /* its transfer encoding is the identity: base64 can carry it */
};

struct nul_parts {
	struct nul_part *v;
	size_t n, cap;
	bool failed;
};

/* No Content-Transfer-Encoding, or 7bit, 8bit or binary. */
static bool identity_cte(const char *msg, const struct imap_mime *m)
{
	char *cte = imap_header_get(msg + m->hdr_off, m->hdr_len, "Content-Transfer-Encoding");
	bool ok = true;

	if (cte) {
		g_strstrip(cte);
		ok = cte[0] == '\0' || g_ascii_strcasecmp(cte, "7bit") == 0 ||
		     g_ascii_strcasecmp(cte, "8bit") == 0 || g_ascii_strcasecmp(cte, "binary") == 0;
		free(cte);
	}
	return ok;
}

/* The leaves with NUL in their content, in the order of the message. */
static void nul_parts_find(const char *msg, const struct imap_mime *m, struct nul_parts *p)
{
	struct nul_part *np;

	if (p->failed)
		return;
	if (strcmp(m->type, "MULTIPART") == 0 && m->n_children) {
		for (size_t i = 0; i < m->n_children; i++)
			nul_parts_find(msg, &m->children[i], p);
		return;
	}
	if (m->message) {
		nul_parts_find(msg, m->message, p);
		return;
	}
	if (!memchr(msg + m->body_off, '\0', m->body_len))
		return;
	if (p->n == p->cap) {
		size_t ncap = p->cap ? p->cap * 2 : 8;
		struct nul_part *nv = realloc(p->v, ncap * sizeof(*nv));
		if (!nv) {
			p->failed = true;
			return;
		}
		p->v = nv;
		p->cap = ncap;
	}
	np = &p->v[p->n++];
	np->hdr_off = m->hdr_off;
	np->hdr_len = m->hdr_len;
	np->body_off = m->body_off;
	np->body_len = m->body_len;
	np->encodable = identity_cte(msg, m);
}

/* HDR without its Content-Transfer-Encoding field, with "base64" instead,
 * before the blank line that ends it. */
static void write_base64_header(struct imap_buf *b, const char *hdr, size_t len)
{
	size_t p = 0;
	bool skipping = false;

	while (p < len) {
		const char *line = hdr + p;
		const char *nl = memchr(line, '\n', len - p);
		size_t l = nl ? (size_t)(nl - line) + 1 : len - p;
		bool blank = l == 1 || (l == 2 && line[0] == '\r');

		if (blank)
			break;
		if (line[0] != ' ' && line[0] != '\t')
			skipping = l >= 26 &&
				   g_ascii_strncasecmp(line, "Content-Transfer-Encoding:", 26) == 0;
		if (!skipping)
			ibuf_add(b, line, l);
		p += l;
	}
	ibuf_str(b, "Content-Transfer-Encoding: base64\r\n\r\n");
}

/* DATA in base64, lines of 76 characters ending in CRLF except the last. */
static void write_base64_body(struct imap_buf *b, const unsigned char *data, size_t len)
{
	enum { IN_LINE = 57 }; /* 76 characters of base64 */
	char line[80];

	for (size_t p = 0; p < len; p += IN_LINE) {
		size_t n = len - p < IN_LINE ? len - p : IN_LINE;

		sodium_bin2base64(line, sizeof(line), data + p, n, sodium_base64_VARIANT_ORIGINAL);
		if (p)
			ibuf_str(b, "\r\n");
		ibuf_str(b, line);
	}
}

int imap_binary_text(const unsigned char *raw, size_t len, bool strict, unsigned char **out,
		     size_t *out_len)
{
	const char *msg = (const char *)raw;
	struct imap_mime *root;
	struct nul_parts parts = {0};
	struct imap_buf b = {0};
	size_t pos = 0;

	*out = NULL;
	*out_len = 0;
	root = imap_mime_parse(msg, len);
	if (!root)
		return -1;
	pthread_once(&gmime_once, gmime_setup);
	nul_parts_find(msg, root, &parts);
	imap_mime_free(root);
	if (parts.failed) {
		free(parts.v);
		return -1;
	}
	for (size_t i = 0; i < parts.n; i++) {
		const struct nul_part *np = &parts.v[i];

		if (!np->encodable)
			continue;
		ibuf_add(&b, msg + pos, np->hdr_off - pos);
		write_base64_header(&b, msg + np->hdr_off, np->hdr_len);
		write_base64_body(&b, raw + np->body_off, np->body_len);
		if (np->body_off + np->body_len == len)
			ibuf_str(&b, "\r\n");
		pos = np->body_off + np->body_len;
	}
	free(parts.v);
	ibuf_add(&b, msg + pos, len - pos);
	if (b.failed) {
		ibuf_free(&b);
		return -1;
	}
	/* What is left is NUL outside a content base64 can carry (a header, a
	 * boundary line, an encoded part): refused, or shown as 0x80. */
	for (size_t i = 0; i < b.len; i++) {
		if (b.p[i] != '\0')
			continue;
		if (strict) {
			ibuf_free(&b);
			return -2;
		}
		b.p[i] = (char)0x80;
	}
	*out = (unsigned char *)b.p;
	*out_len = b.len;
	return 0;
}
