/*
 * fuzz_stego_extract.c - fuzz target for the extraction path: PNG decoding
 * under the size limits, the keyed positions, the length field and the
 * authenticated decryption. With clang -fsanitize=fuzzer,address
 * (-DPOSTERN_LIBFUZZER) it is a libFuzzer target; in the normal build its
 * main() replays the files given as arguments, or runs seeded mutations of
 * real stego images (raw bytes of the file, and carrier bits re-encoded
 * into valid PNGs), so "make check" exercises it too.
 *
 *   clang -fsanitize=fuzzer,address,undefined -DPOSTERN_LIBFUZZER -I. -Isrc -IBUILD \
 *     tests/fuzz/fuzz_stego_extract.c stego/png_io.c stego/payload.c stego/embed.c \
 *     stego/analysis.c crypto/keys.c crypto/seal.c crypto/keyfile.c crypto/cert.c \
 *     -lpng16 -lsodium -lcrypto -lz -lm -o fuzz_stego && \
 *     ./fuzz_stego -max_total_time=60 CORPUS tests/data/stego/fuzz-seeds
 *
 * The seeds there are what "fuzz_stego_extract --write-seeds DIR" writes.
 */
#include <config.h>

#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "stego/stego.h"
#include "replay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct user_key *fuzz_key;

static void fuzz_setup(void)
{
	unsigned char pub[32], *wrapped;
	size_t wlen;

	if (fuzz_key)
		return;
	if (crypto_setup() != 0)
		abort();
	crypto_set_argon2_cost(CRYPTO_ARGON2_OPS_MIN, CRYPTO_ARGON2_MEM_MIN);
	/* A fixed key is not needed: a message for another key must fail cleanly too. */
	if (crypto_user_keygen("fuzz", 4, pub, &wrapped, &wlen, &fuzz_key) != 0)
		abort();
	free(wrapped);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct stego_secret secret = {0};
	struct stego_image img;
	unsigned char *msg = NULL, *png = NULL;
	size_t msg_len = 0, png_len;
	char err[256];
	int rc;

	fuzz_setup();
	secret.mode = STEGO_PUBLIC_KEY;
	secret.user_key = fuzz_key;
	rc = stego_extract_png(data, size, &secret, &msg, &msg_len, err, sizeof(err));
	if (rc == STEGO_OK) {
		/* Only a genuine sealed message opens; its size must fit the image. */
		if (msg_len > size * 64)
			abort();
		free(msg);
	} else if (msg != NULL || rc > 0 || rc < STEGO_ERR_CRYPTO || err[0] == '\0') {
		abort();
	}
	if (stego_png_read(data, size, &img, err, sizeof(err)) == STEGO_OK) {
		if (img.channels < 1 || img.channels > 4 ||
		    (img.bit_depth != 8 && img.bit_depth != 16) ||
		    (uint64_t)img.width * img.height > STEGO_MAX_PIXELS)
			abort();
		if (stego_capacity(&img, STEGO_PASSWORD) > stego_image_carriers(&img) / 8)
			abort();
		if (stego_png_write(&img, &png, &png_len, err, sizeof(err)) != STEGO_OK)
			abort();
		free(png);
		stego_image_free(&img);
	}
	return 0;
}

#ifndef POSTERN_LIBFUZZER
static uint32_t seed = 2024;

static uint32_t next_random(void)
{
	seed = seed * 1103515245u + 12345u;
	return seed >> 8;
}

/* A small generated cover of CHANNELS channels at DEPTH bits, carrying MSG for the fuzz key. */
static unsigned char *make_seed(unsigned channels, unsigned depth, size_t msg_len, size_t *len)
{
	struct stego_image img = {40, 30, channels, depth, NULL};
	size_t n = (size_t)img.width * img.height * channels * (depth / 8);
	struct stego_secret secret = {0};
	unsigned char msg[256], *out = NULL;
	char err[256];

	img.pixels = malloc(n);
	if (img.pixels == NULL)
		abort();
	for (size_t i = 0; i < n; i++)
		img.pixels[i] = (unsigned char)(i / 7 + next_random() % 5);
	memset(msg, 'm', sizeof(msg));
	secret.mode = STEGO_PUBLIC_KEY;
	secret.public_key = user_key_public(fuzz_key);
	if (stego_embed(&img, msg, msg_len, &secret, err, sizeof(err)) != STEGO_OK ||
	    stego_png_write(&img, &out, len, err, sizeof(err)) != STEGO_OK)
		abort();
	stego_image_free(&img);
	return out;
}

/* Flips carrier bits of a decoded seed and encodes it again: a valid PNG
 * whose hidden stream is damaged (length field, body, tag). */
static void mutate_pixels(const unsigned char *png, size_t len)
{
	struct stego_image img;
	unsigned char *out;
	size_t out_len;
	char err[256];

	if (stego_png_read(png, len, &img, err, sizeof(err)) != STEGO_OK)
		abort();
	size_t n = (size_t)img.width * img.height * img.channels * (img.bit_depth / 8);
	for (unsigned k = 1 + next_random() % 3; k > 0; k--)
		img.pixels[next_random() % n] ^= (unsigned char)(1u << (next_random() % 8));
	if (stego_png_write(&img, &out, &out_len, err, sizeof(err)) != STEGO_OK)
		abort();
	LLVMFuzzerTestOneInput(out, out_len);
	free(out);
	stego_image_free(&img);
}

int main(int argc, char **argv)
{
	unsigned char *seeds[6], buf[1 << 15];
	size_t seed_len[6];
	const unsigned iterations = 6000;

	fuzz_setup();
	if (argc == 3 && strcmp(argv[1], "--write-seeds") == 0) {
		for (unsigned s = 0; s < 6; s++) {
			char path[4096];
			FILE *f;

			seeds[s] = make_seed(s % 4 + 1, s % 2 ? 16 : 8, 3 * s, &seed_len[s]);
			snprintf(path, sizeof(path), "%s/seed-%u.png", argv[2], s);
			f = fopen(path, "wb");
			if (f == NULL || fwrite(seeds[s], 1, seed_len[s], f) != seed_len[s] ||
			    fclose(f) != 0) {
				perror(path);
				return EXIT_FAILURE;
			}
			free(seeds[s]);
		}
		return EXIT_SUCCESS;
	}
	if (argc > 1)
		return fuzz_replay_files(argc - 1, argv + 1, 1 << 20);
	seeds[0] = make_seed(3, 8, 100, &seed_len[0]);
	seeds[1] = make_seed(4, 8, 0, &seed_len[1]);
	seeds[2] = make_seed(1, 16, 20, &seed_len[2]);
	seeds[3] = make_seed(2, 8, 10, &seed_len[3]);
	seeds[4] = make_seed(3, 16, 256, &seed_len[4]);
	seeds[5] = make_seed(1, 8, 0, &seed_len[5]);
	for (unsigned s = 0; s < 6; s++) {
		unsigned char *msg;
		size_t msg_len;
		struct stego_secret secret = {STEGO_PUBLIC_KEY, NULL, 0, NULL, fuzz_key};
		char err[256];

		/* The seeds themselves must open. */
		if (stego_extract_png(seeds[s], seed_len[s], &secret, &msg, &msg_len, err,
				      sizeof(err)) != STEGO_OK)
			abort();
		free(msg);
	}
	for (unsigned iter = 0; iter < iterations; iter++) {
		unsigned s = iter % 6;
		size_t len = seed_len[s] < sizeof(buf) ? seed_len[s] : sizeof(buf);

		if (iter % 2) {
			mutate_pixels(seeds[s], seed_len[s]);
			continue;
		}
		memcpy(buf, seeds[s], len);
		for (unsigned k = 0; k < 1 + next_random() % 4; k++) {
			unsigned op = next_random() % 4;
			size_t at = next_random() % len;

			if (op == 0)
				buf[at] ^= (unsigned char)(1u << (next_random() % 8));
			else if (op == 1)
				buf[at] = (unsigned char)next_random();
			else if (op == 2)
				len = at + 1;
			else if (at < 33) /* the IHDR fields: dimensions, depth, colour type */
				buf[at] = (unsigned char)(next_random() % 2 ? 0xff : 0x00);
		}
		LLVMFuzzerTestOneInput(buf, len);
	}
	for (unsigned s = 0; s < 6; s++)
		free(seeds[s]);
	user_key_free(fuzz_key);
	printf("fuzz_stego_extract: %u inputs, no failure\n", iterations);
	return EXIT_SUCCESS;
}
#endif
