/*
 * imap_select_parse.c - the parameters of SELECT and EXAMINE: "(CONDSTORE)"
 * (RFC 7162 3.1.8) and "(QRESYNC (uidvalidity modseq [known-uids
 * [(known-sequence-set known-uid-set)]]))" (RFC 7162 3.2.5). Pure.
 */
#include <config.h>

#include <stdio.h>
#include <string.h>

#include "imap/imap.h"

/* RFC 7162 7: mod-sequence-value is 1 .. 2^63-1. */
#define MODSEQ_MAX 9223372036854775807ULL

static int number_arg(const struct imap_arg *a, uint64_t max, uint64_t *out)
{
	if (a->type != IMAP_ARG_ATOM || imap_parse_number(a->str, a->len, max, out) < 0 ||
	    *out == 0)
		return -1;
	return 0;
}

static int set_arg(const struct imap_arg *a, struct imap_seqset *out, char *err, size_t errlen)
{
	char why[128];

	if (a->type != IMAP_ARG_ATOM) {
		snprintf(err, errlen, "QRESYNC: expected a UID set");
		return -1;
	}
	if (imap_seqset_parse(a->str, out, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "QRESYNC: %s", why);
		return -1;
	}
	return 0;
}

static int qresync_parse(const struct imap_arg *list, struct imap_select_params *out, char *err,
			 size_t errlen)
{
	uint64_t v;

	if (list->type != IMAP_ARG_LIST || list->n < 2 || list->n > 4) {
		snprintf(err, errlen,
			 "QRESYNC needs (uidvalidity modseq [known-uids [seq-match]])");
		return -1;
	}
	if (number_arg(&list->list[0], UINT32_MAX, &v) < 0) {
		snprintf(err, errlen, "QRESYNC: invalid UIDVALIDITY");
		return -1;
	}
	out->uidvalidity = (uint32_t)v;
	if (number_arg(&list->list[1], MODSEQ_MAX, &out->modseq) < 0) {
		snprintf(err, errlen, "QRESYNC: invalid mod-sequence");
		return -1;
	}
	if (list->n >= 3) {
		const struct imap_arg *a = &list->list[2];
		/* known-uids may be left out before seq-match-data. */
		if (a->type == IMAP_ARG_LIST && list->n == 3) {
			a = NULL;
		} else {
			if (set_arg(a, &out->known_uids, err, errlen) < 0)
				return -1;
			out->has_known_uids = true;
		}
		if (a == NULL || list->n == 4) {
			const struct imap_arg *m = &list->list[list->n - 1];
			if (m->type != IMAP_ARG_LIST || m->n != 2) {
				snprintf(err, errlen,
					 "QRESYNC: expected (known-sequence-set known-uid-set)");
				return -1;
			}
			if (set_arg(&m->list[0], &out->match_seqs, err, errlen) < 0 ||
			    set_arg(&m->list[1], &out->match_uids, err, errlen) < 0)
				return -1;
			out->has_seq_match = true;
		}
	}
	return 0;
}

int imap_select_params_parse(const struct imap_arg *args, size_t n, struct imap_select_params *out,
			     char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	if (n == 0)
		return 0;
	if (n != 1 || args[0].type != IMAP_ARG_LIST || args[0].n == 0) {
		snprintf(err, errlen, "Expected a mailbox name and a parameter list");
		return -1;
	}
	for (size_t i = 0; i < args[0].n; i++) {
		const struct imap_arg *a = &args[0].list[i];
		if (imap_arg_is(a, "CONDSTORE") && !out->condstore) {
			out->condstore = true;
		} else if (imap_arg_is(a, "QRESYNC") && !out->qresync && i + 1 < args[0].n) {
			out->qresync = true;
			if (qresync_parse(&args[0].list[++i], out, err, errlen) < 0) {
				imap_select_params_free(out);
				return -1;
			}
		} else {
			snprintf(err, errlen, "Unknown or repeated SELECT parameter");
			imap_select_params_free(out);
			return -1;
		}
	}
	return 0;
}

void imap_select_params_free(struct imap_select_params *p)
{
	imap_seqset_free(&p->known_uids);
	imap_seqset_free(&p->match_seqs);
	imap_seqset_free(&p->match_uids);
	memset(p, 0, sizeof(*p));
}
