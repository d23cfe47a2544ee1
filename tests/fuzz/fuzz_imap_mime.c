/*
 * fuzz_imap_mime.c - fuzz target for what FETCH builds from a decrypted
 * message: the MIME structure (imap_mime_parse), BODYSTRUCTURE and BODY,
 * ENVELOPE, the bytes of every section (part numbers with HEADER, TEXT,
 * MIME, HEADER.FIELDS (NOT)), BINARY decoding, and the textual form of a
 * message holding NUL (imap_binary_text). The input is the message.
 * With clang -fsanitize=fuzzer,address (-DPOSTERN_LIBFUZZER) it is a
 * libFuzzer target; in the normal build its main() replays the files given
 * as arguments, or seeded random mutations of a few messages plus generated
 * ones (deep nesting, 10,000+ parts), so "make check" runs it too.
 *
 *   clang -fsanitize=fuzzer,address,undefined -DPOSTERN_LIBFUZZER -I. -Isrc -IBUILD \
 *     tests/fuzz/fuzz_imap_mime.c src/imap/imap_parse.c src/imap/imap_fetch_parse.c \
 *     src/imap/imap_buf.c src/imap/imap_mime.c src/imap/imap_binary.c \
 *     $(pkg-config --cflags --libs gmime-3.0 libsodium libevent) -o fuzz_imap_mime \
 *     && ./fuzz_imap_mime -max_total_time=60 -max_len=65536
 */
#include <config.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap.h"
#include "imap/imap_int.h"
#include "replay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* At most this many parts of one input get their sections fetched. */
#define FUZZ_PARTS_MAX 64

static void fetch_item(const char *msg, const struct imap_mime *root, const char *item)
{
	struct imap_fetch_att a;
	struct imap_buf scratch = {0};
	const char *out;
	size_t len;
	char err[160];

	if (imap_fetch_parse_item(item, &a, err, sizeof(err)) < 0)
		return;
	if (a.kind == FETCH_BINARY || a.kind == FETCH_BINARY_SIZE)
		(void)imap_binary(msg, root, &a, &scratch, &out, &len);
	else
		(void)imap_section(msg, root, &a, &scratch, &out, &len);
	ibuf_free(&scratch);
	for (size_t i = 0; i < a.n_fields; i++)
		free(a.fields[i]);
	free(a.fields);
}

/* Fetches the sections of M (part path PATH) and of its children. */
static void walk(const char *msg, const struct imap_mime *root, const struct imap_mime *m,
		 char *path, size_t path_len, unsigned *budget, unsigned depth)
{
	static const char *const kinds[] = {"",
					    ".MIME",
					    ".HEADER",
					    ".TEXT",
					    ".HEADER.FIELDS (From Subject)",
					    ".HEADER.FIELDS.NOT (To)"};
	char item[600];

	if (*budget == 0 || depth > IMAP_SECTION_PARTS_MAX)
		return;
	(*budget)--;
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		snprintf(item, sizeof(item), "BODY.PEEK[%s%s]<1.77>", path,
			 path_len ? kinds[k] : kinds[k] + (kinds[k][0] == '.'));
		fetch_item(msg, root, item);
	}
	snprintf(item, sizeof(item), "BINARY.PEEK[%s]", path);
	fetch_item(msg, root, item);
	snprintf(item, sizeof(item), "BINARY.SIZE[%s]", path);
	fetch_item(msg, root, item);
	for (size_t i = 0; i < m->n_children && *budget; i++) {
		int n =
		    snprintf(path + path_len, 512 - path_len, "%s%zu", path_len ? "." : "", i + 1);
		if (n <= 0 || path_len + (size_t)n >= 400)
			break;
		walk(msg, root, &m->children[i], path, path_len + (size_t)n, budget, depth + 1);
		path[path_len] = '\0';
	}
}

/* The textual form of a message with NUL (imap_binary_text) holds no NUL
 * and parses; the strict form exists only when nothing had to be replaced. */
static void text_view(const uint8_t *data, size_t size)
{
	unsigned char *text = NULL;
	size_t len = 0;
	struct imap_mime *m;

	if (imap_binary_text(data, size, false, &text, &len) == 0) {
		if (memchr(text, '\0', len))
			abort();
		m = imap_mime_parse((const char *)text, len);
		imap_mime_free(m);
		free(text);
	}
	if (imap_binary_text(data, size, true, &text, &len) == 0) {
		if (memchr(text, '\0', len))
			abort();
		free(text);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *msg = (const char *)data;
	struct imap_mime *m = imap_mime_parse(msg, size);
	struct imap_buf b = {0};
	char path[512] = "";
	unsigned budget = FUZZ_PARTS_MAX;
	char *v;

	if (!m)
		return 0;
	imap_write_bodystructure(&b, msg, m, true);
	imap_write_bodystructure(&b, msg, m, false);
	imap_write_envelope(&b, msg, m);
	ibuf_free(&b);
	v = imap_header_get(msg + m->hdr_off, m->hdr_len, "Subject");
	free(v);
	walk(msg, m, m, path, 0, &budget, 0);
	imap_mime_free(m);
	text_view(data, size);
	return 0;
}

#ifndef POSTERN_LIBFUZZER
static const char *const seeds[] = {
    ("From: \"A, B\" <a@example.net>, group: c@d, \"e\" <e@f>;\r\n"
     "To: undisclosed-recipients:;\r\nCc: =?utf-8?q?J=C3=B6rg?= <j@x>\r\n"
     "Subject: =?iso-8859-1?b?SGVsbG8=?= world\r\nDate: Mon, 5 Feb 2024 10:00:00 +0000\r\n"
     "Message-ID: <1@x>\r\nIn-Reply-To: <0@x>\r\n"
     "Content-Type: multipart/mixed; boundary=\"b1\"; charset=\"x\"\r\n\r\n"
     "preamble\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n"
     "Content-Transfer-Encoding: quoted-printable\r\nContent-Language: de, en\r\n\r\n"
     "Gr=C3=BC=\r\n=C3=9Fe\r\n--b1\r\nContent-Type: multipart/alternative; boundary=b2\r\n\r\n"
     "--b2\r\nContent-Type: text/html\r\n\r\n<p>x</p>\r\n--b2\r\n"
     "Content-Type: application/pdf; name*=utf-8''a%20b.pdf\r\n"
     "Content-Disposition: attachment; filename=\"a.pdf\"\r\nContent-Location: x\r\n"
     "Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b2--\r\n--b1\r\n"
     "Content-Type: message/rfc822\r\n\r\nFrom: in@x\r\nSubject: inner\r\n"
     "Content-Type: multipart/mixed; boundary=b3\r\n\r\n--b3\r\n\r\nin 1\r\n--b3--\r\n"
     "--b1\r\nContent-Type: text/x-uuencode\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\n"
     "begin 644 a\r\n#86)C\r\n`\r\nend\r\n--b1--\r\nepilogue\r\n"),
    "Subject: no body",
    "\r\n\r\n",
    ("Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nFrom: x@y\r\n\r\nz\r\n"
     "--d\r\nContent-Type: text/plain\r\n\r\n--d--"),
    ("Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n"
     "RnJvbTogYUBiDQoNCmJvZHkNCg==\r\n"),
    ("From: <@route:a@b>, \"\\\"q\\\"\" <c@d>, (comment) e@f (c)\r\nSender: ,,,\r\n"
     "Reply-To: <>\r\nContent-Type: text/plain; a=\"unterminated\r\n\r\nx"),
};

/* A multipart nested DEPTH levels deep, or one with PARTS parts. */
static char *generated(unsigned depth, unsigned parts, size_t *len)
{
	size_t cap = (size_t)depth * 120 + (size_t)parts * 40 + 256, n = 0;
	char *msg = malloc(cap);

	if (!msg)
		return NULL;
	for (unsigned i = 0; i < depth; i++)
		n += (size_t)snprintf(
		    msg + n, cap - n,
		    "Content-Type: multipart/mixed; boundary=\"l%u\"\r\n\r\n--l%u\r\n", i, i);
	n +=
	    (size_t)snprintf(msg + n, cap - n, "Content-Type: multipart/mixed; boundary=p\r\n\r\n");
	for (unsigned i = 0; i < parts; i++)
		n += (size_t)snprintf(msg + n, cap - n, "--p\r\n\r\n%u\r\n", i);
	n += (size_t)snprintf(msg + n, cap - n, "--p--\r\n");
	for (unsigned i = depth; i-- > 0;)
		n += (size_t)snprintf(msg + n, cap - n, "--l%u--\r\n", i);
	*len = n;
	return msg;
}

int main(int argc, char **argv)
{
	static const struct fuzz_mutation how = {1500, 6, 64, "-\r\n:;=\"<>@,()\\", "-\r\n\"=<"};
	unsigned seed = 4242;

	if (argc > 1)
		return fuzz_replay_files(argc - 1, argv + 1, 1 << 20);
	if (fuzz_mutate_seeds(seeds, sizeof(seeds) / sizeof(seeds[0]), &how, &seed) < 0)
		return 1;
	/* Deep nesting and very many parts stay bounded. */
	{
		static const unsigned shapes[][2] = {{200, 3}, {1, 12000}, {40, 500}};
		for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
			size_t len = 0;
			char *msg = generated(shapes[i][0], shapes[i][1], &len);
			if (!msg)
				return 1;
			LLVMFuzzerTestOneInput((const uint8_t *)msg, len);
			free(msg);
		}
	}
	printf("fuzz_imap_mime: ok\n");
	return 0;
}
#endif
