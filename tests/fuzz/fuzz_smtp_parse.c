/*
 * fuzz_smtp_parse.c - fuzz target for the SMTP command parser and the DATA
 * reader. With clang -fsanitize=fuzzer,address (-DPOSTERN_LIBFUZZER) it is a
 * libFuzzer target; in the normal build main() replays the files given as
 * arguments, or runs seeded random mutations of valid commands, so
 * "make check" exercises it too.
 *
 *   clang -fsanitize=fuzzer,address,undefined -DPOSTERN_LIBFUZZER -I. -Isrc -IBUILD \
 *     tests/fuzz/fuzz_smtp_parse.c src/smtp/smtp_parse.c src/smtp/smtp_data.c -lsodium \
 *     -o fuzz_smtp && ./fuzz_smtp -max_total_time=60
 */
#include <config.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp.h"
#include "replay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Properties that must hold for every input. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_command cmd;
	struct smtp_error err;
	struct smtp_data d;
	size_t pos = 0, i;

	if (smtp_parse((const char *)data, size, &cmd, &err) == 0) {
		if (cmd.verb >= SMTP_CMD_COUNT)
			abort();
		/* A parsed address never carries what could break a header. */
		for (i = 0; cmd.address[i]; i++) {
			unsigned char c = (unsigned char)cmd.address[i];
			if (c < 32 || c == 127 || c == '<' || c == '>')
				if (!(c == '>' || c == '<') || cmd.address[0] != '"')
					abort();
		}
		if (strlen(cmd.address) > SMTP_PATH_MAX || strlen(cmd.arg) > SMTP_ARG_MAX)
			abort();
		if (cmd.has_initial && cmd.initial_len &&
		    (cmd.initial < (const char *)data ||
		     cmd.initial + cmd.initial_len > (const char *)data + size))
			abort();
	} else if (!err.text || !err.status || err.code < 400 || err.code > 599) {
		abort();
	}
	/* DATA: the output never grows beyond the input or the limit. */
	smtp_data_init(&d, 4096, 64);
	while (pos < size && !d.done) {
		const uint8_t *nl = memchr(data + pos, '\n', size - pos);
		size_t seg = nl ? (size_t)(nl - (data + pos)) + 1 : size - pos;
		if (seg > 65)
			seg = 65;
		if (smtp_data_feed(&d, data + pos, seg) < 0)
			abort();
		pos += seg;
	}
	if (d.len > size || d.len > 4096)
		abort();
	smtp_data_free(&d);
	return 0;
}

#ifndef POSTERN_LIBFUZZER
static const char *seeds[] = {
    "EHLO client.example",
    "HELO [127.0.0.1]",
    "MAIL FROM:<a@b.example> SIZE=10 BODY=8BITMIME",
    "MAIL FROM:<\"q x\"@b.example> SMTPUTF8 RET=HDRS ENVID=x+2B",
    "MAIL FROM:<>",
    "RCPT TO:<c@d.example> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;c+40d.example",
    "RCPT TO:<@r.example:c@[IPv6:::1]>",
    "DATA",
    "BDAT 100 LAST",
    "RSET",
    "NOOP x",
    "QUIT",
    "HELP",
    "VRFY x",
    "STARTTLS",
    "AUTH PLAIN AGEAYg==",
    "AUTH LOGIN",
    "Subject: x\r\n\r\n..dot\r\n.\r\n",
    "a\n.\r\nb\r\n.\r\n",
};

int main(int argc, char **argv)
{
	/* Path and parameter punctuation, line ends and NUL (twice: the
	 * terminating one counts too) may replace a byte. */
	static const char replace[] = "<>\"@.:\\\r\n\0 =";
	static const struct fuzz_line_mutation how = {200000, 900, 'a', replace, sizeof(replace)};
	uint32_t seed = 4242;

	if (argc > 1)
		return fuzz_replay_files(argc - 1, argv + 1, 1 << 16);
	if (fuzz_mutate_lines(seeds, sizeof(seeds) / sizeof(seeds[0]), &how, &seed) < 0)
		return EXIT_FAILURE;
	puts("fuzz_smtp_parse: 200000 inputs, no failure");
	return EXIT_SUCCESS;
}
#endif
