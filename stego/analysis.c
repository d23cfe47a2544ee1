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
 */
#include <config.h>

#include <math.h>

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
