/*
 * pop3_fill.c - test helper: puts messages into a user's INBOX the way local
 * delivery stores them (canonical CRLF, sealed to the user's public key), so
 * the POP3 tests and the benchmark can fill a mailbox without SMTP.
 *
 *   pop3_fill -c CONFIG ADDRESS FILE...        one message per file ("-": stdin)
 *   pop3_fill -c CONFIG ADDRESS --generate N   N generated messages of varied sizes
 *
 * Prints the uid of each stored message, one per line.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto/crypto.h"
#include "store/store.h"
#include "util/config.h"

struct buf {
	unsigned char *p;
	size_t len, cap;
};

static int buf_put(struct buf *b, const void *data, size_t len)
{
	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + len)
			cap *= 2;
		unsigned char *p = realloc(b->p, cap);
		if (!p)
			return -1;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, len);
	b->len += len;
	return 0;
}

/* Bare LF becomes CRLF, as SMTP stores mail. */
static int canonical(const unsigned char *in, size_t len, struct buf *out)
{
	for (size_t i = 0; i < len; i++) {
		if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r') && buf_put(out, "\r", 1) < 0)
			return -1;
		if (buf_put(out, &in[i], 1) < 0)
			return -1;
	}
	return 0;
}

static int read_file(const char *path, struct buf *raw)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	unsigned char chunk[8192];
	size_t n;

	if (!f) {
		perror(path);
		return -1;
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		if (buf_put(raw, chunk, n) < 0)
			return -1;
	if (f != stdin)
		fclose(f);
	return 0;
}

/* Message I of a generated set: sizes from about 1 KB to 60 KB, with lines
 * that start with dots so dot-stuffing is exercised. */
static int generate(unsigned i, struct buf *out)
{
	char line[128];
	unsigned lines = 10 + (i * 37) % 800;

	snprintf(line, sizeof(line),
		 "From: sender%u@example.net\r\nTo: user@example.org\r\n"
		 "Subject: generated message %u\r\nMessage-ID: <gen%u@example.net>\r\n\r\n",
		 i, i, i);
	if (buf_put(out, line, strlen(line)) < 0)
		return -1;
	for (unsigned l = 0; l < lines; l++) {
		snprintf(line, sizeof(line), "%sline %u of message %u: the quick brown fox\r\n",
			 l % 7 == 0 ? "." : "", l, i);
		if (buf_put(out, line, strlen(line)) < 0)
			return -1;
	}
	return 0;
}

static int store_one(struct store *st, const struct store_user *u, int64_t mailbox_id,
		     const struct buf *msg)
{
	unsigned char *blob = NULL;
	size_t blob_len = 0;
	struct store_message m;
	int rc;

	if (crypto_seal(u->public_key, msg->p, msg->len, &blob, &blob_len) < 0) {
		fprintf(stderr, "pop3_fill: seal failed\n");
		return -1;
	}
	rc = store_begin(st);
	if (rc == STORE_OK)
		rc = store_message_add(st, mailbox_id, 0, (int64_t)time(NULL), (int64_t)msg->len,
				       blob, blob_len, &m);
	if (rc == STORE_OK)
		rc = store_commit(st);
	else
		store_rollback(st);
	free(blob);
	if (rc != STORE_OK) {
		fprintf(stderr, "pop3_fill: store: %s\n", store_error(st));
		return -1;
	}
	printf("%u\n", m.uid);
	return 0;
}

int main(int argc, char **argv)
{
	struct config cfg;
	struct store *st;
	struct store_user u;
	struct store_mailbox mb;
	char err[512];
	int status = EXIT_FAILURE;

	if (argc < 5 || strcmp(argv[1], "-c") != 0) {
		fprintf(stderr, "usage: %s -c CONFIG ADDRESS FILE... | --generate N\n", argv[0]);
		return 2;
	}
	config_defaults(&cfg);
	if (config_load(argv[2], &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "pop3_fill: %s\n", err);
		return EXIT_FAILURE;
	}
	if (crypto_setup() < 0)
		return EXIT_FAILURE;
	st = store_open(&cfg.store, err, sizeof(err));
	if (!st) {
		fprintf(stderr, "pop3_fill: %s\n", err);
		return EXIT_FAILURE;
	}
	memset(&u, 0, sizeof(u));
	if (store_user_get(st, argv[3], &u) != STORE_OK ||
	    store_mailbox_get(st, u.id, "INBOX", &mb) != STORE_OK) {
		fprintf(stderr, "pop3_fill: no INBOX for %s\n", argv[3]);
		goto out;
	}
	if (strcmp(argv[4], "--generate") == 0) {
		unsigned n = argc > 5 ? (unsigned)strtoul(argv[5], NULL, 10) : 0;
		for (unsigned i = 0; i < n; i++) {
			struct buf msg = {0};
			int rc = generate(i, &msg) < 0 ? -1 : store_one(st, &u, mb.id, &msg);
			free(msg.p);
			if (rc < 0)
				goto out;
		}
	} else {
		for (int i = 4; i < argc; i++) {
			struct buf raw = {0}, msg = {0};
			int rc = read_file(argv[i], &raw) < 0 || canonical(raw.p, raw.len, &msg) < 0
				     ? -1
				     : store_one(st, &u, mb.id, &msg);
			free(raw.p);
			free(msg.p);
			if (rc < 0)
				goto out;
		}
	}
	status = EXIT_SUCCESS;
out:
	store_user_clear(&u);
	store_close(st);
	return status;
}
