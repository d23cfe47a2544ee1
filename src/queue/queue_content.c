/*
 * queue_content.c - what the runner does to a queued message before it
 * goes out: one copy for several recipients loses the "for <rcpt>" clause
 * of our Received field (it would tell each recipient who else got it),
 * and a peer without 8BITMIME gets the 8-bit body parts re-encoded as
 * quoted-printable or base64 (RFC 6152 3: the client converts, or returns
 * the message). DKIM signing comes after both, so the signature covers
 * what the peer receives.
 */
#include <config.h>

#include <gmime/gmime.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "queue/queue.h"

size_t queue_strip_for_clause(unsigned char *msg, size_t len, const char *rcpt)
{
	static const char prefix[] = "Received:";
	size_t end = 0, rlen = strlen(rcpt), clen = rlen + 9; /* "\r\n\tfor <" rcpt ">" */
	char clause[QUEUE_HOST_MAX * 2 + 16];

	if (len < sizeof(prefix) - 1 || strncasecmp((const char *)msg, prefix, sizeof(prefix) - 1))
		return len;
	if (clen + 1 >= sizeof(clause))
		return len;
	/* the first field ends at a line end not followed by a blank */
	while (end < len && !(msg[end] == '\n' &&
			      (end + 1 == len || (msg[end + 1] != ' ' && msg[end + 1] != '\t'))))
		end++;
	snprintf(clause, sizeof(clause), "\r\n\tfor <%s>;", rcpt);
	for (size_t i = 0; i + clen + 1 <= end; i++) {
		if (memcmp(msg + i, clause, clen + 1) == 0) {
			memmove(msg + i, msg + i + clen, len - i - clen);
			return len - clen;
		}
	}
	return len;
}

static pthread_once_t gmime_once = PTHREAD_ONCE_INIT;

static void gmime_setup(void)
{
	g_mime_init();
}

/* The raw (still encoded) bytes of a part's content in *OUT. */
static GByteArray *raw_content(GMimeObject *obj)
{
	GMimeStream *mem = g_mime_stream_mem_new();
	GByteArray *bytes;

	if (GMIME_IS_PART(obj)) {
		GMimeDataWrapper *w = g_mime_part_get_content(GMIME_PART(obj));
		GMimeStream *src = w ? g_mime_data_wrapper_get_stream(w) : NULL;

		if (src) {
			g_mime_stream_reset(src);
			g_mime_stream_write_to_stream(src, mem);
			g_mime_stream_reset(src);
		}
	} else {
		g_mime_object_write_to_stream(obj, NULL, mem);
	}
	bytes = g_byte_array_new();
	g_byte_array_append(bytes, g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem))->data,
			    g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem))->len);
	g_object_unref(mem);
	return bytes;
}

struct downgrade {
	bool failed;
};

static void downgrade_part(GMimeObject *parent, GMimeObject *obj, gpointer data)
{
	struct downgrade *d = data;
	GByteArray *raw;
	bool eightbit;

	(void)parent;
	if (d->failed)
		return;
	if (GMIME_IS_MULTIPART(obj)) {
		/* a multipart is as 7-bit as its parts; RFC 2045 6.4 */
		const char *cte = g_mime_object_get_header(obj, "Content-Transfer-Encoding");

		if (cte && strcasecmp(cte, "7bit") != 0)
			g_mime_object_set_header(obj, "Content-Transfer-Encoding", "7bit", NULL);
		return;
	}
	raw = raw_content(obj);
	eightbit = queue_has_8bit(raw->data, raw->len);
	g_byte_array_unref(raw);
	if (!eightbit)
		return;
	if (!GMIME_IS_PART(obj)) {
		d->failed = true; /* message/rfc822 may not be encoded (RFC 2046 5.2.1) */
		return;
	}
	if (g_mime_part_get_content_encoding(GMIME_PART(obj)) == GMIME_CONTENT_ENCODING_BINARY) {
		d->failed = true; /* BINARYMIME content is not ours to reinterpret */
		return;
	}
	g_mime_part_set_content_encoding(
	    GMIME_PART(obj), GMIME_IS_TEXT_PART(obj) ? GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE
						     : GMIME_CONTENT_ENCODING_BASE64);
}

int queue_downgrade_7bit(const unsigned char *msg, size_t len, unsigned char **out, size_t *out_len)
{
	GMimeStream *in, *mem;
	GMimeParser *parser;
	GMimeMessage *message;
	GMimeFormatOptions *fo;
	GByteArray *bytes;
	struct downgrade d = {false};
	size_t hdr_end = 0;
	int rc = -1;

	/* 8-bit header text would need RFC 2047 words or SMTPUTF8; not here */
	while (hdr_end < len &&
	       !(msg[hdr_end] == '\n' &&
		 (hdr_end + 1 == len || msg[hdr_end + 1] == '\n' ||
		  (msg[hdr_end + 1] == '\r' && hdr_end + 2 < len && msg[hdr_end + 2] == '\n'))))
		hdr_end++;
	if (queue_has_8bit(msg, hdr_end))
		return -1;
	pthread_once(&gmime_once, gmime_setup);
	in = g_mime_stream_mem_new_with_buffer((const char *)msg, len);
	parser = g_mime_parser_new_with_stream(in);
	message = g_mime_parser_construct_message(parser, NULL);
	g_object_unref(parser);
	g_object_unref(in);
	if (!message)
		return -1;
	downgrade_part(NULL, g_mime_message_get_mime_part(message), &d);
	if (!d.failed && GMIME_IS_MULTIPART(g_mime_message_get_mime_part(message)))
		g_mime_multipart_foreach(GMIME_MULTIPART(g_mime_message_get_mime_part(message)),
					 downgrade_part, &d);
	if (d.failed) {
		g_object_unref(message);
		return -1;
	}
	fo = g_mime_format_options_new();
	g_mime_format_options_set_newline_format(fo, GMIME_NEWLINE_FORMAT_DOS);
	mem = g_mime_stream_mem_new();
	if (g_mime_object_write_to_stream(GMIME_OBJECT(message), fo, mem) >= 0) {
		bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
		if (!queue_has_8bit(bytes->data, bytes->len) && (*out = malloc(bytes->len + 1))) {
			memcpy(*out, bytes->data, bytes->len);
			*out_len = bytes->len;
			rc = 0;
		}
	}
	g_object_unref(mem);
	g_mime_format_options_free(fo);
	g_object_unref(message);
	return rc;
}
