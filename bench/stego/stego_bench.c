/*
 * stego_bench.c - speed and detectability of stego/ (bench/RESULTS.md).
 *
 *   stego_bench speed      embed/extract on a generated 12-megapixel RGB
 *                          cover (4000 x 3000): decode, embed, encode,
 *                          decode, extract, each timed; recipient-key mode,
 *                          plus one password derivation (Argon2id) apart.
 *   stego_bench chisquare  the chi-square attack on COVERS generated covers
 *                          (1024 x 768 RGB) and on the same covers carrying
 *                          25%, 50% and 100% of their capacity, by LSB
 *                          matching (stego/) and, for comparison, by naive
 *                          LSB replacement at the same rates; also the
 *                          RS estimate of the embedding rate.
 *
 * Covers are smooth squared ramps with a soft shape plus sensor-like
 * noise (never clipped), since no photographs ship with the tree.
 */
#include <config.h>

#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto/crypto.h"
#include "stego/stego.h"

static uint64_t rng_state = 88172645463325252ULL;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static double gauss(void)
{
	double u = ((double)(rng() >> 11) + 0.5) / 9007199254740992.0;
	double v = ((double)(rng() >> 11) + 0.5) / 9007199254740992.0;

	return sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v);
}

static void make_cover(struct stego_image *img, uint32_t w, uint32_t h, double sigma)
{
	double cx = (double)(rng() % w), cy = (double)(rng() % h), r = (double)(h / 3);

	img->width = w;
	img->height = h;
	img->channels = 3;
	img->bit_depth = 8;
	img->pixels = malloc((size_t)w * h * 3);
	if (img->pixels == NULL) {
		fputs("out of memory\n", stderr);
		exit(1);
	}
	for (uint32_t y = 0; y < h; y++)
		for (uint32_t x = 0; x < w; x++) {
			double d = hypot((double)x - cx, (double)y - cy);
			double shade = d < r ? 40.0 * (1.0 - d / r) : 0.0;

			for (unsigned c = 0; c < 3; c++) {
				/* A squared ramp: a sloped histogram like a photograph's, kept
				 * inside 20..235 so nothing clips at 0 or 255. */
				double g = 0.6 * y / h + 0.25 * x / w + 0.05 * c;
				double v = 20.0 + 160.0 * g * g + shade + sigma * gauss();
				long iv = lround(v);

				img->pixels[((size_t)y * w + x) * 3 + c] =
				    (unsigned char)(iv < 0     ? 0
						    : iv > 255 ? 255
							       : iv);
			}
		}
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct user_key *bench_key(void)
{
	unsigned char pub[32], *wrapped;
	size_t wlen;
	struct user_key *k;

	crypto_set_argon2_cost(CRYPTO_ARGON2_OPS_MIN, CRYPTO_ARGON2_MEM_MIN);
	if (crypto_user_keygen("bench", 5, pub, &wrapped, &wlen, &k) != 0)
		exit(1);
	free(wrapped);
	return k;
}

static int speed(void)
{
	struct user_key *k = bench_key();
	struct stego_secret to = {STEGO_PUBLIC_KEY, NULL, 0, NULL, NULL};
	struct stego_secret by = {STEGO_PUBLIC_KEY, NULL, 0, NULL, NULL};
	struct stego_secret pw = {STEGO_PASSWORD, "bench password", 14, NULL, NULL};
	struct stego_image img, back;
	unsigned char *png, *out, *msg, *got, locate[32], encrypt[32];
	size_t png_len, out_len, got_len, sizes[2];
	char err[256];
	double t0, t;

	to.public_key = user_key_public(k);
	by.user_key = k;
	make_cover(&img, 4000, 3000, 3.0);
	if (stego_png_write(&img, &png, &png_len, err, sizeof(err)) != STEGO_OK)
		return 1;
	stego_image_free(&img);
	printf("cover: 4000 x 3000 RGB 8-bit, PNG %zu bytes, capacity %zu bytes (key), %zu "
	       "(password)\n",
	       png_len, (size_t)4000 * 3000 * 3 / 8 - STEGO_SEAL_OVERHEAD,
	       (size_t)4000 * 3000 * 3 / 8 - STEGO_PASSWORD_OVERHEAD);
	sizes[0] = 1024 * 1024;
	sizes[1] = (size_t)4000 * 3000 * 3 / 8 - STEGO_SEAL_OVERHEAD;
	printf("%-12s %10s %10s %10s %10s %10s %10s\n", "message", "decode", "embed", "encode",
	       "decode", "extract", "MB/s emb");
	for (int s = 0; s < 2; s++) {
		double td, te, tw, tr, tx;

		msg = malloc(sizes[s]);
		randombytes_buf(msg, sizes[s]);
		t0 = now();
		if (stego_png_read(png, png_len, &img, err, sizeof(err)) != STEGO_OK)
			return 1;
		td = now() - t0;
		t0 = now();
		if (stego_embed(&img, msg, sizes[s], &to, err, sizeof(err)) != STEGO_OK) {
			fprintf(stderr, "%s\n", err);
			return 1;
		}
		te = now() - t0;
		t0 = now();
		if (stego_png_write(&img, &out, &out_len, err, sizeof(err)) != STEGO_OK)
			return 1;
		tw = now() - t0;
		stego_image_free(&img);
		t0 = now();
		if (stego_png_read(out, out_len, &back, err, sizeof(err)) != STEGO_OK)
			return 1;
		tr = now() - t0;
		t0 = now();
		if (stego_extract(&back, &by, &got, &got_len, err, sizeof(err)) != STEGO_OK ||
		    got_len != sizes[s] || memcmp(got, msg, got_len) != 0) {
			fprintf(stderr, "round trip failed: %s\n", err);
			return 1;
		}
		tx = now() - t0;
		printf("%-12zu %9.2fs %9.2fs %9.2fs %9.2fs %9.2fs %10.2f\n", sizes[s], td, te, tw,
		       tr, tx, (double)sizes[s] / 1e6 / te);
		stego_image_free(&back);
		free(got);
		free(out);
		free(msg);
	}
	if (stego_png_read(png, png_len, &img, err, sizeof(err)) != STEGO_OK)
		return 1;
	t0 = now();
	if (stego_derive_keys(&img, &pw, NULL, locate, encrypt) != STEGO_OK)
		return 1;
	t = now() - t0;
	printf("password key derivation (Argon2id, 3 passes, 64 MiB): %.2fs per embed or extract\n",
	       t);
	stego_image_free(&img);
	free(png);
	user_key_free(k);
	return 0;
}

static void lsb_replace(struct stego_image *img, double fraction)
{
	uint64_t n = stego_image_carriers(img);

	for (uint64_t c = 0; c < n; c++)
		if ((double)(rng() % 1000000u) < fraction * 1e6) {
			size_t off = stego_carrier_offset(img, c);

			img->pixels[off] = (unsigned char)((img->pixels[off] & ~1u) | (rng() & 1u));
		}
}

static int chisquare(int covers)
{
	struct user_key *k = bench_key();
	struct stego_secret to = {STEGO_PUBLIC_KEY, NULL, 0, NULL, NULL};
	const double rates[] = {0.0, 0.25, 0.5, 1.0};
	double p_match[4] = {0}, p_naive[4] = {0}, s_match[4] = {0}, s_naive[4] = {0};
	double rs_match[4] = {0}, rs_naive[4] = {0};
	int det_match[4] = {0}, det_naive[4] = {0};
	char err[256];

	to.public_key = user_key_public(k);
	for (int i = 0; i < covers; i++) {
		struct stego_image cover;

		make_cover(&cover, 1024, 768, 1.0 + (double)(i % 4));
		for (int r = 0; r < 4; r++) {
			size_t n = (size_t)cover.width * cover.height * 3, cap;
			struct stego_image a = cover, b = cover;
			double stat, p;

			a.pixels = malloc(n);
			b.pixels = malloc(n);
			memcpy(a.pixels, cover.pixels, n);
			memcpy(b.pixels, cover.pixels, n);
			cap = stego_capacity(&a, STEGO_PUBLIC_KEY);
			if (rates[r] > 0) {
				size_t len = (size_t)(cap * rates[r]);
				unsigned char *msg = malloc(len);

				randombytes_buf(msg, len);
				if (stego_embed(&a, msg, len, &to, err, sizeof(err)) != STEGO_OK) {
					fprintf(stderr, "%s\n", err);
					return 1;
				}
				free(msg);
				/* Fraction of carriers the same message takes. */
				lsb_replace(&b, rates[r] * (double)(cap + STEGO_SEAL_OVERHEAD) *
						    8.0 / (double)stego_image_carriers(&b));
			}
			rs_match[r] += stego_rs_estimate(&a);
			rs_naive[r] += stego_rs_estimate(&b);
			p = stego_chi_square(&a, &stat);
			p_match[r] += p;
			s_match[r] += stat;
			det_match[r] += p > 0.99;
			p = stego_chi_square(&b, &stat);
			p_naive[r] += p;
			s_naive[r] += stat;
			det_naive[r] += p > 0.99;
			free(a.pixels);
			free(b.pixels);
		}
		stego_image_free(&cover);
	}
	printf("chi-square attack on %d generated covers, 1024 x 768 RGB (detected: p > 0.99)\n",
	       covers);
	printf("%-10s %-16s %10s %10s %10s %10s\n", "payload", "embedding", "chi2/dof", "mean p",
	       "detected", "RS est.");
	for (int r = 0; r < 4; r++) {
		if (r == 0) {
			printf("%-10s %-16s %10.3f %10.3f %7d/%d %10.3f\n", "0%", "(cover)",
			       s_match[r] / covers, p_match[r] / covers, det_match[r], covers,
			       rs_match[r] / covers);
			continue;
		}
		printf("%3.0f%%       %-16s %10.3f %10.3f %7d/%d %10.3f\n", rates[r] * 100,
		       "LSB matching", s_match[r] / covers, p_match[r] / covers, det_match[r],
		       covers, rs_match[r] / covers);
		printf("%3.0f%%       %-16s %10.3f %10.3f %7d/%d %10.3f\n", rates[r] * 100,
		       "LSB replacement", s_naive[r] / covers, p_naive[r] / covers, det_naive[r],
		       covers, rs_naive[r] / covers);
	}
	user_key_free(k);
	return 0;
}

int main(int argc, char **argv)
{
	if (crypto_setup() != 0)
		return 1;
	if (argc >= 2 && strcmp(argv[1], "speed") == 0)
		return speed();
	if (argc >= 2 && strcmp(argv[1], "chisquare") == 0)
		return chisquare(argc >= 3 ? atoi(argv[2]) : 20);
	fputs("usage: stego_bench speed | chisquare [COVERS]\n", stderr);
	return 2;
}
