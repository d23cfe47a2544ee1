/*
 * cmd_compress.c - COMPRESS DEFLATE (RFC 4978) and the session's output
 * path. Every reply of a session goes through imap_write / imap_printf;
 * once COMPRESS is active they deflate (raw deflate, a sync flush per
 * write so the client never waits for buffered output) before conn_write.
 * Input is inflated in place: the compressed bytes that src/net appended
 * to conn_input() since the last look are replaced by their inflated form,
 * so the line and literal readers of imap_session.c see plain IMAP.
 */
#include <config.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <sodium.h>
#include <zlib.h>

#include "imap/imap_int.h"

#define ZCHUNK 16384

struct imap_zstream {
	z_stream in, out;
	size_t plain; /* inflated bytes at the front of conn_input() */
	bool fresh;   /* just started: what follows the command is compressed */
	bool broken;  /* the peer sent something that does not inflate */
};

int imap_write(struct imap_session *s, const void *data, size_t len)
{
	unsigned char chunk[ZCHUNK];
	z_stream *z;
	int rc;

	if (!s->z)
		return conn_write(s->c, data, len);
	z = &s->z->out;
	z->next_in = (Bytef *)(uintptr_t)data;
	z->avail_in = (uInt)len;
	do {
		z->next_out = chunk;
		z->avail_out = sizeof(chunk);
		rc = deflate(z, Z_SYNC_FLUSH);
		if (rc != Z_OK && rc != Z_BUF_ERROR)
			return -1;
		if (sizeof(chunk) - z->avail_out &&
		    conn_write(s->c, chunk, sizeof(chunk) - z->avail_out) < 0)
			return -1;
	} while (z->avail_out == 0);
	return 0;
}

int imap_printf(struct imap_session *s, const char *fmt, ...)
{
	va_list ap;
	char *p;
	int n, rc;

	va_start(ap, fmt);
	n = vasprintf(&p, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	rc = imap_write(s, p, (size_t)n);
	free(p);
	return rc;
}

int imap_compress_input(struct imap_session *s, bool consumed_only)
{
	struct evbuffer *in = conn_input(s->c);
	struct imap_zstream *zs = s->z;
	size_t total, raw_len;
	unsigned char *raw, chunk[ZCHUNK];
	size_t limit = s->cmd_max + s->line_max + ZCHUNK;
	int rc = 0;

	if (!zs)
		return 0;
	total = evbuffer_get_length(in);
	if (consumed_only) {
		/* Only consumption happened since the last call: all is plain,
		 * unless COMPRESS itself was the last command. */
		if (!zs->fresh)
			zs->plain = total;
		zs->fresh = false;
	}
	if (total <= zs->plain) {
		zs->plain = total;
		return 0;
	}
	raw_len = total - zs->plain;
	raw = malloc(raw_len);
	if (!raw)
		return -1;
	{
		/* The plain front stays; the raw tail is taken off the buffer. */
		struct evbuffer *front = evbuffer_new();
		if (!front) {
			free(raw);
			return -1;
		}
		evbuffer_remove_buffer(in, front, zs->plain);
		evbuffer_remove(in, raw, raw_len);
		evbuffer_add_buffer(in, front);
		evbuffer_free(front);
	}
	zs->in.next_in = raw;
	zs->in.avail_in = (uInt)raw_len;
	/* Until the input is used up and zlib has nothing more to give (a
	 * full output chunk may leave more inside it). */
	for (;;) {
		zs->in.next_out = chunk;
		zs->in.avail_out = sizeof(chunk);
		rc = inflate(&zs->in, Z_SYNC_FLUSH);
		if (rc != Z_OK && rc != Z_BUF_ERROR) {
			zs->broken = true;
			break;
		}
		evbuffer_add(in, chunk, sizeof(chunk) - zs->in.avail_out);
		if (evbuffer_get_length(in) > limit) {
			zs->broken = true; /* far more than any command may hold */
			break;
		}
		if (zs->in.avail_out != 0 && (zs->in.avail_in == 0 || rc == Z_BUF_ERROR))
			break;
	}
	sodium_memzero(raw, raw_len);
	free(raw);
	zs->plain = evbuffer_get_length(in);
	return zs->broken ? -1 : 0;
}

void imap_compress_free(struct imap_session *s)
{
	if (!s->z)
		return;
	inflateEnd(&s->z->in);
	deflateEnd(&s->z->out);
	sodium_memzero(s->z, sizeof(*s->z));
	free(s->z);
	s->z = NULL;
}

/* RFC 4978 3 */
void imap_cmd_compress(struct imap_session *s, struct imap_command *cmd)
{
	struct imap_zstream *zs;

	if (cmd->n_args != 1 || !imap_arg_is(&cmd->args[0], "DEFLATE")) {
		imap_bad(s, "COMPRESS supports only DEFLATE");
		return;
	}
	if (s->z) {
		imap_no(s, "[COMPRESSIONACTIVE] DEFLATE is already active");
		return;
	}
	zs = calloc(1, sizeof(*zs));
	if (!zs) {
		imap_no(s, "[SERVERBUG] Out of memory");
		return;
	}
	if (inflateInit2(&zs->in, -15) != Z_OK) {
		free(zs);
		imap_no(s, "[SERVERBUG] Cannot start compression");
		return;
	}
	if (deflateInit2(&zs->out, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) !=
	    Z_OK) {
		inflateEnd(&zs->in);
		free(zs);
		imap_no(s, "[SERVERBUG] Cannot start compression");
		return;
	}
	imap_ok(s, "DEFLATE active");
	/* Everything after the command line is compressed, both ways. */
	zs->fresh = true;
	s->z = zs;
}
