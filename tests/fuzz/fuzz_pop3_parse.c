/*
 * fuzz_pop3_parse.c - fuzz target for the POP3 parser and the pure output
 * helpers. With clang -fsanitize=fuzzer,address (-DPOSTERN_LIBFUZZER) it is a
 * libFuzzer target; in the normal build its main() replays the files given
 * as arguments, or runs a fixed number of seeded random mutations of valid
 * commands, so "make check" exercises it under the sanitizers too.
 *
 *   clang -fsanitize=fuzzer,address,undefined -DPOSTERN_LIBFUZZER -I. -Isrc -IBUILD \
 *     tests/fuzz/fuzz_pop3_parse.c src/pop3/pop3_parse.c src/pop3/pop3_format.c -lsodium \
 *     -o fuzz_pop3 && ./fuzz_pop3 -max_total_time=60
 */
#include <config.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pop3/pop3.h"
#include "replay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pop3_command cmd;
	unsigned char out[64];
	char user[POP3_USER_MAX + 1], pass[POP3_PASSWORD_MAX + 1];
	size_t pos = 0, out_len, pwlen;
	bool bol = true;
	enum pop3_parse_status st;

	st = pop3_parse((const char *)data, size, &cmd);
	if (st == POP3_PARSE_OK) {
		/* Arguments must point inside the input. */
		if (cmd.arg_len && (cmd.arg < (const char *)data ||
				    cmd.arg + cmd.arg_len > (const char *)data + size))
			abort();
		if (cmd.verb >= POP3_CMD_COUNT)
			abort();
	}
	(void)pop3_parse_error(st);
	while (pos < size) {
		size_t n = pop3_dot_stuff(data + pos, size - pos, &bol, out, sizeof(out), &out_len);
		if (n == 0 || out_len > sizeof(out))
			abort();
		pos += n;
	}
	if (pop3_top_length(data, size, size ? data[0] : 0) > size)
		abort();
	if (pop3_sasl_plain_decode((const char *)data, size, user, sizeof(user), pass, sizeof(pass),
				   &pwlen) == 0 &&
	    (strlen(user) >= sizeof(user) || pwlen >= sizeof(pass)))
		abort();
	return 0;
}

#ifndef POSTERN_LIBFUZZER
static const char *seeds[] = {
    "CAPA",
    "STLS",
    "USER alice@example.org",
    "PASS secret words",
    "AUTH PLAIN AGEAYg==",
    "STAT",
    "LIST 1",
    "RETR 2",
    "DELE 3",
    "NOOP",
    "RSET",
    "TOP 1 10",
    "UIDL 4",
    "QUIT",
    "APOP a b",
    ".\r\n..x\r\n",
    "Subject: x\r\n\r\nbody\r\n",
};

int main(int argc, char **argv)
{
	static const struct fuzz_line_mutation how = {200000, 600, ' ', NULL, 0};
	uint32_t seed = 12345;

	if (argc > 1)
		return fuzz_replay_files(argc - 1, argv + 1, 1 << 16);
	if (fuzz_mutate_lines(seeds, sizeof(seeds) / sizeof(seeds[0]), &how, &seed) < 0)
		return EXIT_FAILURE;
	puts("fuzz_pop3_parse: 200000 inputs, no failure");
	return EXIT_SUCCESS;
}
#endif
