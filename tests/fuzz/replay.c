/*
 * replay.c - corpus replay and seeded mutations for the fuzz drivers'
 * main() in the normal build (see replay.h).
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "replay.h"

int fuzz_replay_files(int n, char *const *paths, size_t max)
{
	unsigned char *buf = malloc(max ? max : 1);

	if (buf == NULL) {
		perror("fuzz replay");
		return EXIT_FAILURE;
	}
	for (int i = 0; i < n; i++) {
		FILE *f = fopen(paths[i], "rb");
		size_t len;

		if (f == NULL) {
			perror(paths[i]);
			free(buf);
			return EXIT_FAILURE;
		}
		len = fread(buf, 1, max, f);
		fclose(f);
		LLVMFuzzerTestOneInput(buf, len);
	}
	free(buf);
	return EXIT_SUCCESS;
}

int fuzz_mutate_lines(const char *const *seeds, size_t n, const struct fuzz_line_mutation *how,
		      uint32_t *state)
{
	uint8_t *buf = malloc(how->size);
	uint32_t seed = *state;
	unsigned kinds = how->nreplace ? 5 : 4;

	if (buf == NULL)
		return -1;
	for (unsigned input = 0; input < how->inputs; input++) {
		const char *s = seeds[input % n];
		size_t len = strlen(s);

		memcpy(buf, s, len);
		for (unsigned k = 0; k < 4; k++) {
			seed = seed * 1103515245u + 12345u;
			unsigned kind = (seed >> 16) % kinds;
			size_t at = len ? (seed >> 8) % len : 0;

			if (kind == 0 && len) {
				buf[at] = (uint8_t)(seed >> 24);
			} else if (kind == 1 && len < how->size - FUZZ_PAD_MAX) {
				memset(buf + len, (seed >> 24) % 2 ? how->pad : '9', FUZZ_PAD_MAX);
				len += (seed >> 4) % FUZZ_PAD_MAX;
			} else if (kind == 2 && len) {
				len = at;
			} else if (kind == 3 && len < how->size - 1) {
				buf[len++] = (uint8_t)(seed >> 20);
			} else if (kind == 4 && len && len < how->size - 1) {
				buf[at] = (uint8_t)how->replace[(seed >> 12) % how->nreplace];
			}
		}
		LLVMFuzzerTestOneInput(buf, len);
	}
	free(buf);
	*state = seed;
	return 0;
}

int fuzz_mutate_seeds(const char *const *seeds, size_t n, const struct fuzz_mutation *how,
		      unsigned *state)
{
	size_t nreplace = strlen(how->replace), nappend = strlen(how->append);
	unsigned seed = *state;

	for (size_t s = 0; s < n; s++) {
		size_t len = strlen(seeds[s]);
		unsigned char *buf = malloc(len + how->grow);

		if (buf == NULL)
			return -1;
		for (unsigned round = 0; round < how->rounds; round++) {
			size_t cur = len;

			memcpy(buf, seeds[s], len);
			for (unsigned k = 0; k < how->edits; k++) {
				seed = seed * 1103515245u + 12345u;
				switch ((seed >> 16) % 4) {
				case 0:
					buf[(seed >> 8) % cur] = (unsigned char)(seed >> 3);
					break;
				case 1:
					if (cur > 1)
						cur = (seed >> 8) % cur + 1;
					break;
				case 2:
					buf[(seed >> 8) % cur] =
					    (unsigned char)how->replace[(seed >> 4) % nreplace];
					break;
				default:
					if (cur < len + how->grow)
						buf[cur++] =
						    (unsigned char)how->append[(seed >> 5) % nappend];
					break;
				}
			}
			LLVMFuzzerTestOneInput(buf, cur);
		}
		free(buf);
	}
	*state = seed;
	return 0;
}
