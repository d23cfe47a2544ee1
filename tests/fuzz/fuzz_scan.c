/*
 * fuzz_scan.c - libFuzzer target for scan_message(): any bytes must give a
 * verdict, a score in [0,1], at least one reason, reasons that are valid
 * UTF-8 JSON strings, and header lines that cannot be split by the input.
 * Built only by "make fuzz-scan" (clang -fsanitize=fuzzer,address); run:
 *
 *   make fuzz-scan && ./tests/fuzz/fuzz_scan -max_total_time=300 \
 *       -max_len=200000 $(top_srcdir)/tests/data/scan/nasty
 *
 * The shipped model is loaded once (POSTERN_SCAN_MODEL overrides it), so
 * the scoring path is exercised as in the daemon.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scan/scan.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[512];
	(void)argc;
	(void)argv;
	if (scan_model_load(NULL, err, sizeof(err)) != 0) {
		fprintf(stderr, "fuzz_scan: %s\n", err);
		abort();
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct scan_result r;
	scan_message(NULL, data, size, NULL, &r);
	if (r.verdict > SCAN_MALWARE || !(r.score >= 0 && r.score <= 1) || r.n_reasons == 0 ||
	    r.n_reasons > SCAN_MAX_REASONS)
		abort();
	for (size_t i = 0; i < r.n_reasons; i++) {
		if (strnlen(r.reasons[i], sizeof(r.reasons[i])) == sizeof(r.reasons[i]))
			abort();
		for (const char *p = r.reasons[i]; *p; p++)
			if ((unsigned char)*p < 0x20)
				abort();
	}
	char *json = scan_reasons_json(&r);
	if (!json || json[0] != '[')
		abort();
	free(json);
	char hdr[1024];
	int n = scan_format_headers(&r, hdr, sizeof(hdr));
	if (n < 0)
		abort();
	for (int i = 0; i < n; i++)
		if (hdr[i] == '\n' && (i == 0 || hdr[i - 1] != '\r'))
			abort();
	return 0;
}
