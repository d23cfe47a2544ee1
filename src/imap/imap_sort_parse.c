/*
 * imap_sort_parse.c - the pure pieces of SORT and THREAD (RFC 5256): sort
 * criteria, the charset argument, the threading algorithm name and the
 * base subject (RFC 5256 2.1) that SUBJECT sorting and threading compare.
 * No I/O, no state.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap.h"

int imap_sort_parse(const struct imap_arg *list, struct imap_sort_spec *out, char *err,
		    size_t errlen)
{
	static const struct {
		const char *name;
		enum imap_sort_key key;
	} keys[] = {{"ARRIVAL", SORT_ARRIVAL},
		    {"CC", SORT_CC},
		    {"DATE", SORT_DATE},
		    {"FROM", SORT_FROM},
		    {"SIZE", SORT_SIZE},
		    {"SUBJECT", SORT_SUBJECT},
		    {"TO", SORT_TO}};
	bool reverse = false;

	memset(out, 0, sizeof(*out));
	if (list->type != IMAP_ARG_LIST || list->n == 0) {
		snprintf(err, errlen, "SORT needs a list of sort criteria");
		return -1;
	}
	for (size_t i = 0; i < list->n; i++) {
		const struct imap_arg *a = &list->list[i];
		size_t k;
		if (imap_arg_is(a, "REVERSE")) {
			if (reverse) {
				snprintf(err, errlen, "REVERSE must be followed by a sort key");
				return -1;
			}
			reverse = true;
			continue;
		}
		for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
			if (imap_arg_is(a, keys[k].name))
				break;
		if (k == sizeof(keys) / sizeof(keys[0])) {
			snprintf(err, errlen, "Unknown sort key");
			return -1;
		}
		if (out->n == IMAP_SORT_CRIT_MAX) {
			snprintf(err, errlen, "Too many sort keys");
			return -1;
		}
		out->crit[out->n].key = keys[k].key;
		out->crit[out->n].reverse = reverse;
		out->n++;
		reverse = false;
	}
	if (reverse) {
		snprintf(err, errlen, "REVERSE must be followed by a sort key");
		return -1;
	}
	return 0;
}

int imap_sort_charset(const struct imap_arg *arg)
{
	if (!imap_arg_is_string(arg))
		return -1;
	return strcasecmp(arg->str, "UTF-8") == 0 || strcasecmp(arg->str, "US-ASCII") == 0 ? 0 : -1;
}

int imap_thread_algorithm(const struct imap_arg *arg)
{
	if (imap_arg_is(arg, "ORDEREDSUBJECT"))
		return THREAD_ORDEREDSUBJECT;
	if (imap_arg_is(arg, "REFERENCES"))
		return THREAD_REFERENCES;
	return -1;
}

/* ---- base subject, RFC 5256 2.1 ---- */

static bool wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* subj-blob = "[" *BLOBCHAR "]" *WSP at S[P..E); the end, or P when none. */
static size_t blob(const char *s, size_t p, size_t e)
{
	size_t q;

	if (p >= e || s[p] != '[')
		return p;
	for (q = p + 1; q < e && s[q] != '[' && s[q] != ']'; q++)
		;
	if (q >= e || s[q] != ']')
		return p;
	for (q++; q < e && wsp(s[q]); q++)
		;
	return q;
}

/* subj-leader = (*subj-blob subj-refwd) / WSP; the end, or P when none. */
static size_t leader(const char *s, size_t p, size_t e)
{
	size_t q = p, b;

	if (p < e && wsp(s[p]))
		return p + 1;
	while ((b = blob(s, q, e)) != q)
		q = b;
	if (e - q >= 2 && strncasecmp(s + q, "re", 2) == 0)
		q += 2;
	else if (e - q >= 3 && strncasecmp(s + q, "fwd", 3) == 0)
		q += 3;
	else if (e - q >= 2 && strncasecmp(s + q, "fw", 2) == 0)
		q += 2;
	else
		return p;
	while (q < e && wsp(s[q]))
		q++;
	q = blob(s, q, e);
	if (q < e && s[q] == ':')
		return q + 1;
	return p;
}

char *imap_base_subject(const char *subject, bool *refwd)
{
	size_t len = strlen(subject), n = 0, p, e;
	char *s = malloc(len + 1);
	bool changed;

	if (refwd)
		*refwd = false;
	if (!s)
		return NULL;
	/* (1) runs of white space (folding included) become one space. */
	for (size_t i = 0; i < len; i++) {
		char c = subject[i];
		if (c == '\r' || c == '\n' || c == '\t')
			c = ' ';
		if (c == ' ' && n > 0 && s[n - 1] == ' ')
			continue;
		s[n++] = c;
	}
	p = 0;
	e = n;
	for (;;) {
		/* (2) trailing "(fwd)" and white space */
		for (;;) {
			if (e > p && wsp(s[e - 1]))
				e--;
			else if (e - p >= 5 && strncasecmp(s + e - 5, "(fwd)", 5) == 0) {
				e -= 5;
				if (refwd)
					*refwd = true;
			} else
				break;
		}
		/* (3) to (5): leaders, and blobs that do not leave nothing */
		do {
			size_t q;
			changed = false;
			while ((q = leader(s, p, e)) != p) {
				if (refwd && !wsp(s[p]))
					*refwd = true;
				p = q;
				changed = true;
			}
			q = blob(s, p, e);
			if (q != p && q < e) {
				p = q;
				changed = true;
			}
		} while (changed);
		/* (6) "[fwd: ... ]" */
		if (e - p >= 6 && strncasecmp(s + p, "[fwd:", 5) == 0 && s[e - 1] == ']') {
			p += 5;
			e--;
			if (refwd)
				*refwd = true;
			continue;
		}
		break;
	}
	memmove(s, s + p, e - p);
	s[e - p] = '\0';
	return s;
}

const char *imap_next_msgid(const char *p, const char **id, size_t *len)
{
	while (p && *p) {
		const char *lt = strchr(p, '<'), *gt;
		if (!lt)
			return NULL;
		gt = strchr(lt + 1, '>');
		if (!gt)
			return NULL;
		if (gt > lt + 1 && !memchr(lt + 1, '<', (size_t)(gt - lt - 1))) {
			*id = lt;
			*len = (size_t)(gt - lt) + 1;
			return gt + 1;
		}
		p = lt + 1;
	}
	return NULL;
}
