/*
 * analysis.c - the classic chi-square steganalysis (Westfeld and Pfitzmann,
 * "Attacks on Steganographic Systems", 1999), used by the tests and by
 * bench/stego to show that LSB matching leaves it nothing to find.
 *
 * LSB replacement turns each value 2i into 2i+1 and back with the same
 * probability, so the counts of every pair (2i, 2i+1) converge to their
 * mean. The attack measures how far the observed counts are from those
 * means: a small statistic means equalised pairs, i.e. a message. The tail
 * probability uses the Wilson-Hilferty normal approximation of chi-square.
 *
 * RS analysis (Fridrich, Goljan and Du, "Reliable detection of LSB
 * steganography in color and grayscale images", 2001) estimates the share
 * of samples whose LSB carries a message under LSB replacement, from how
 * flipping LSBs changes the smoothness of small groups of samples.
 */
#include <config.h>

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

#include "stego/stego.h"

/* Pairs with fewer samples than this are left out, as the test needs. */
#define CHI_MIN_EXPECTED 5.0

double stego_chi_square(const struct stego_image *img, double *stat)
{
	uint64_t hist[256] = {0};
	uint64_t carriers = stego_image_carriers(img);
	double chi = 0.0, k, z;
	unsigned dof = 0;

	for (uint64_t c = 0; c < carriers; c++)
		hist[img->pixels[stego_carrier_offset(img, c)]]++;
	for (unsigned i = 0; i < 128; i++) {
		double expected = ((double)hist[2 * i] + (double)hist[2 * i + 1]) / 2.0;
		double d;

		if (expected < CHI_MIN_EXPECTED)
			continue;
		d = (double)hist[2 * i] - expected;
		chi += d * d / expected;
		dof++;
	}
	if (dof < 2) {
		if (stat)
			*stat = 0.0;
		return 0.0;
	}
	k = (double)(dof - 1);
	if (stat)
		*stat = chi / k;
	/* P(X >= chi) for X ~ chi-square(k): near 1 when the pairs are equalised. */
	z = (cbrt(chi / k) - (1.0 - 2.0 / (9.0 * k))) / sqrt(2.0 / (9.0 * k));
	return 0.5 * erfc(z / sqrt(2.0));
}

/* ---- RS steganalysis ---- */

/* The low byte of colour sample CARRIER (raster order, alpha skipped). */
static unsigned sample_at(const struct stego_image *img, uint64_t carrier)
{
	return img->pixels[stego_carrier_offset(img, carrier)];
}

/* The flips of the RS method: F1 swaps 2i and 2i+1, F-1 swaps 2i-1 and 2i. */
static int flip(int v, int dir, bool invert_all)
{
	if (invert_all)
		v ^= 1;
	if (dir > 0)
		return v ^ 1;
	if (dir < 0)
		return ((v + 1) ^ 1) - 1;
	return v;
}

/* Smoothness of a group: the sum of differences of neighbours. */
static int smoothness(const int *g, unsigned n)
{
	int f = 0;

	for (unsigned i = 1; i < n; i++)
		f += abs(g[i] - g[i - 1]);
	return f;
}

/* The fractions of regular and singular groups under mask (0 1 1 0) with flip
 * direction +1 (RM, SM) and -1 (R-M, S-M), on the image or its LSB inverse. */
static void rs_counts(const struct stego_image *img, bool invert_all, double out[4])
{
	static const int mask[4] = {0, 1, 1, 0};
	uint64_t groups = 0;
	unsigned colour =
	    (img->channels == 2 || img->channels == 4) ? img->channels - 1 : img->channels;
	uint64_t r_pos = 0, s_pos = 0, r_neg = 0, s_neg = 0;

	/* Groups of four horizontally adjacent samples of the same channel. */
	for (uint64_t row = 0; row < img->height; row++) {
		for (uint64_t x = 0; x + 4 <= img->width; x += 4) {
			for (unsigned c = 0; c < colour; c++) {
				int g[4], gp[4], gn[4], f0, fp, fn;

				for (unsigned i = 0; i < 4; i++) {
					uint64_t k = (row * img->width + x + i) * colour + c;

					g[i] = flip((int)sample_at(img, k), 0, invert_all);
					gp[i] = mask[i] ? flip(g[i], 1, false) : g[i];
					gn[i] = mask[i] ? flip(g[i], -1, false) : g[i];
				}
				f0 = smoothness(g, 4);
				fp = smoothness(gp, 4);
				fn = smoothness(gn, 4);
				r_pos += fp > f0;
				s_pos += fp < f0;
				r_neg += fn > f0;
				s_neg += fn < f0;
				groups++;
			}
		}
	}
	if (groups == 0) {
		out[0] = out[1] = out[2] = out[3] = 0.0;
		return;
	}
	out[0] = (double)r_pos / (double)groups;
	out[1] = (double)s_pos / (double)groups;
	out[2] = (double)r_neg / (double)groups;
	out[3] = (double)s_neg / (double)groups;
}

double stego_rs_estimate(const struct stego_image *img)
{
	double a[4], b[4], d0, d1, dn0, dn1, qa, qb, qc, x, disc;

	rs_counts(img, false, a);
	rs_counts(img, true, b);
	d0 = a[0] - a[1];
	dn0 = a[2] - a[3];
	d1 = b[0] - b[1];
	dn1 = b[2] - b[3];
	qa = 2.0 * (d1 + d0);
	qb = dn0 - dn1 - d1 - 3.0 * d0;
	qc = d0 - dn0;
	if (fabs(qa) < 1e-12) {
		if (fabs(qb) < 1e-12)
			return 0.0;
		x = -qc / qb;
	} else {
		disc = qb * qb - 4.0 * qa * qc;
		if (disc < 0)
			disc = 0;
		double x1 = (-qb + sqrt(disc)) / (2.0 * qa), x2 = (-qb - sqrt(disc)) / (2.0 * qa);

		x = fabs(x1) < fabs(x2) ? x1 : x2;
	}
	if (fabs(x - 0.5) < 1e-12)
		return 1.0;
	return x / (x - 0.5);
}
