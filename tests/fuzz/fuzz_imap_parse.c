/*
 * fuzz_imap_parse.c - fuzz target for the IMAP command parser and the pure
 * helpers behind it (sequence sets, FETCH items, SEARCH keys, literal
 * markers, mailbox names and modified UTF-7, LIST patterns, SELECT's
 * CONDSTORE/QRESYNC parameters) and for the MIME structure,
 * ENVELOPE and BODYSTRUCTURE builder. With clang -fsanitize=fuzzer,address
 * (-DPOSTERN_LIBFUZZER) it is a libFuzzer target; in the normal build its
 * main() replays the files given as arguments, or runs a fixed number of
 * seeded random mutations of valid commands, so "make check" runs it too.
 *
 *   clang -fsanitize=fuzzer,address,undefined -DPOSTERN_LIBFUZZER -I. -Isrc -IBUILD \
 *     tests/fuzz/fuzz_imap_parse.c src/imap/imap_parse.c src/imap/imap_seqset.c \
 *     src/imap/imap_fetch_parse.c src/imap/imap_search_parse.c src/imap/imap_names.c \
 *     src/imap/imap_buf.c src/imap/imap_mime.c \
 *     $(pkg-config --cflags --libs gmime-3.0 libsodium libevent) -o fuzz_imap \
 *     && ./fuzz_imap -max_total_time=60 -max_len=4096
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

static void walk_args(const struct imap_arg *args, size_t n)
{
	char err[160], name[STORE_MAILBOX_NAME_MAX + 1];

	for (size_t i = 0; i < n; i++) {
		const struct imap_arg *a = &args[i];
		struct imap_fetch_atts atts;
		struct imap_seqset set;
		uint64_t lsize;
		bool nonsync;

		if (imap_fetch_parse(a, &atts, err, sizeof(err)) == 0)
			imap_fetch_atts_free(&atts);
		if (a->type == IMAP_ARG_LIST) {
			walk_args(a->list, a->n);
			continue;
		}
		if (imap_seqset_parse(a->str, &set, err, sizeof(err)) == 0) {
			(void)imap_seqset_contains(&set, 7, 100);
			imap_seqset_free(&set);
		}
		(void)imap_mailbox_name(a, name, sizeof(name));
		/* Modified UTF-7 both ways: what decodes must encode again. */
		if (strlen(a->str) == a->len &&
		    imap_mutf7_decode(a->str, a->len, name, sizeof(name)) == 0) {
			char back[4 * sizeof(name)];
			(void)imap_mutf7_encode(name, back, sizeof(back));
		}
		(void)imap_list_match(a->str, "INBOX/a/b");
		(void)imap_line_literal(a->str, a->len, &lsize, &nonsync);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imap_command cmd;
	struct imap_search_key key;
	char err[160];

	if (imap_parse((const char *)data, size, &cmd) == 0) {
		struct imap_select_params params;
		walk_args(cmd.args, cmd.n_args);
		/* As SELECT parameters (CONDSTORE, QRESYNC) after the first argument. */
		if (cmd.n_args > 0 && imap_select_params_parse(cmd.args + 1, cmd.n_args - 1,
							       &params, err, sizeof(err)) == 0)
			imap_select_params_free(&params);
		if (imap_search_parse(cmd.args, cmd.n_args, &key, err, sizeof(err)) == 0)
			imap_search_key_free(&key);
	}
	imap_command_free(&cmd);
	/* The same bytes as a message: structure, envelope, every section. */
	{
		struct imap_mime *m = imap_mime_parse((const char *)data, size);
		if (m) {
			struct imap_buf b = {0};
			struct imap_fetch_att a;
			imap_write_bodystructure(&b, (const char *)data, m, true);
			imap_write_envelope(&b, (const char *)data, m);
			if (imap_fetch_parse_item("BODY[1.2.HEADER.FIELDS (From To)]", &a, err,
						  sizeof(err)) == 0) {
				struct imap_buf scratch = {0};
				const char *out;
				size_t len;
				(void)imap_section((const char *)data, m, &a, &scratch, &out, &len);
				ibuf_free(&scratch);
				for (size_t i = 0; i < a.n_fields; i++)
					free(a.fields[i]);
				free(a.fields);
			}
			ibuf_free(&b);
			imap_mime_free(m);
		}
	}
	return 0;
}

#ifndef POSTERN_LIBFUZZER
static const char *const seeds[] = {
    "a1 LOGIN alice@example.org \"pass word\"",
    "a2 UID FETCH 1:*,7 (FLAGS BODY.PEEK[HEADER.FIELDS (From To Subject)]<0.100> UID)",
    "a3 SEARCH CHARSET UTF-8 OR (FROM alice SUBJECT \"hi\") NOT (SEEN LARGER 100) UID 1:5",
    "a4 APPEND INBOX (\\Seen) \" 1-Feb-2024 10:00:00 +0100\" {11}\r\nHello world",
    "a5 STORE 1,2:4 +FLAGS.SILENT (\\Deleted $Label)",
    "a6 LIST \"\" \"*\"",
    "a7 SELECT \"Entw&APw-rfe/&ZeVnLIqe-\" (CONDSTORE QRESYNC (67890007 90060115194045000 "
    "41:211,214:541 (1:10 41:50)))",
    "a8 SEARCH RETURN (SAVE MIN) UID $ OR $ 1:*",
    ("From: a@b\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n"
     "Content-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\nbody\r\n--x--\r\n"),
};

int main(int argc, char **argv)
{
	static const struct fuzz_mutation how = {3000, 4, 16, "(){}[]\" *:\\\r\n", "()\"{}<>"};
	unsigned seed = 12345;

	if (argc > 1)
		return fuzz_replay_files(argc - 1, argv + 1, 65536);
	if (fuzz_mutate_seeds(seeds, sizeof(seeds) / sizeof(seeds[0]), &how, &seed) < 0)
		return 1;
	/* Deep nesting and many arguments stay bounded. */
	{
		char deep[4096];
		size_t n = (size_t)snprintf(deep, sizeof(deep), "t SEARCH ");
		for (int i = 0; i < 1000 && n + 2 < sizeof(deep); i++)
			deep[n++] = '(';
		LLVMFuzzerTestOneInput((const uint8_t *)deep, n);
	}
	printf("fuzz_imap_parse: ok\n");
	return 0;
}
#endif
