/*
 * imap_seqset.c - sequence sets (RFC 3501 9 "sequence-set"): "1,3:5,7:*".
 * Pure. A range may be written backwards ("5:3"); it means the same as "3:5".
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap.h"

/* At most this many ranges in one set (clients send long UID lists). */
#define IMAP_SEQSET_RANGES_MAX 100000

static int seq_number(const char **pp, uint32_t *out)
{
	const char *p = *pp;
	uint64_t v = 0;

	if (*p == '*') {
		*out = IMAP_SEQ_STAR;
		*pp = p + 1;
		return 0;
	}
	if (*p < '1' || *p > '9')
		return -1;
	while (*p >= '0' && *p <= '9') {
		v = v * 10 + (uint64_t)(*p - '0');
		if (v > UINT32_MAX)
			return -1;
		p++;
	}
	*out = (uint32_t)v;
	*pp = p;
	return 0;
}

int imap_seqset_parse(const char *s, struct imap_seqset *out, char *err, size_t errlen)
{
	const char *p = s;
	size_t cap = 0;

	memset(out, 0, sizeof(*out));
	if (*p == '\0') {
		snprintf(err, errlen, "empty sequence set");
		return -1;
	}
	for (;;) {
		struct imap_seq_range r;
		if (seq_number(&p, &r.lo) < 0)
			goto bad;
		r.hi = r.lo;
		if (*p == ':') {
			p++;
			if (seq_number(&p, &r.hi) < 0)
				goto bad;
		}
		if (r.lo != IMAP_SEQ_STAR && r.hi != IMAP_SEQ_STAR && r.lo > r.hi) {
			uint32_t t = r.lo;
			r.lo = r.hi;
			r.hi = t;
		}
		if (out->n == cap) {
			size_t ncap = cap ? cap * 2 : 4;
			struct imap_seq_range *nr;
			if (ncap > IMAP_SEQSET_RANGES_MAX) {
				snprintf(err, errlen, "sequence set too long");
				imap_seqset_free(out);
				return -1;
			}
			nr = realloc(out->ranges, ncap * sizeof(*nr));
			if (!nr) {
				snprintf(err, errlen, "out of memory");
				imap_seqset_free(out);
				return -1;
			}
			out->ranges = nr;
			cap = ncap;
		}
		out->ranges[out->n++] = r;
		if (*p == '\0')
			return 0;
		if (*p != ',')
			goto bad;
		p++;
	}
bad:
	snprintf(err, errlen, "invalid sequence set");
	imap_seqset_free(out);
	return -1;
}

bool imap_seqset_contains(const struct imap_seqset *set, uint32_t n, uint32_t max)
{
	for (size_t i = 0; i < set->n; i++) {
		uint32_t lo = set->ranges[i].lo == IMAP_SEQ_STAR ? max : set->ranges[i].lo;
		uint32_t hi = set->ranges[i].hi == IMAP_SEQ_STAR ? max : set->ranges[i].hi;
		if (lo > hi) {
			uint32_t t = lo;
			lo = hi;
			hi = t;
		}
		if (n >= lo && n <= hi)
			return true;
	}
	return false;
}

void imap_seqset_free(struct imap_seqset *set)
{
	free(set->ranges);
	set->ranges = NULL;
	set->n = 0;
}
