/*
 * imap_binary.c - the content behind FETCH BINARY[part] and BINARY.SIZE
 * (RFC 3516): a leaf part's body with its Content-Transfer-Encoding undone
 * by GMime's decoders (base64, quoted-printable, x-uuencode); 7bit, 8bit
 * and binary bodies, multiparts and embedded messages are returned as they
 * are. The decoded bytes live only in the caller's scratch buffer.
 */
#include <config.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <gmime/gmime.h>

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
