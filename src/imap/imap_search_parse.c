/*
 * imap_search_parse.c - SEARCH keys (RFC 3501 6.4.4) into a tree of
 * struct imap_search_key, and the date formats of RFC 3501 9. Pure.
 */
#include <config.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap.h"
#include "store/store.h"

static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
				     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* Days since 1970-01-01 of a civil date (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? (unsigned)-3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static int parse_dmy(const char **pp, int64_t *days)
{
	const char *p = *pp;
	unsigned d = 0, m = 0, y = 0;
	int i;

	if (!isdigit((unsigned char)*p))
		return -1;
	d = (unsigned)(*p++ - '0');
	if (isdigit((unsigned char)*p))
		d = d * 10 + (unsigned)(*p++ - '0');
	if (*p++ != '-')
		return -1;
	for (i = 0; i < 12; i++)
		if (strncasecmp(p, months[i], 3) == 0)
			break;
	if (i == 12)
		return -1;
	m = (unsigned)i + 1;
	p += 3;
	if (*p++ != '-')
		return -1;
	for (i = 0; i < 4; i++) {
		if (!isdigit((unsigned char)p[i]))
			return -1;
		y = y * 10 + (unsigned)(p[i] - '0');
	}
	p += 4;
	if (d < 1 || d > 31 || y < 1900)
		return -1;
	*days = days_from_civil(y, m, d);
	*pp = p;
	return 0;
}

int imap_parse_date(const char *s, int64_t *days)
{
	const char *p = s;
	if (parse_dmy(&p, days) < 0 || *p != '\0')
		return -1;
	return 0;
}

int imap_parse_datetime(const char *s, int64_t *out)
{
	const char *p = s;
	int64_t days;
	int h, mi, se, zh, zm, sign;

	if (*p == ' ')
		p++; /* date-day-fixed: " 1-Feb-..." */
	if (parse_dmy(&p, &days) < 0 || *p++ != ' ')
		return -1;
	if (!isdigit((unsigned char)p[0]) || !isdigit((unsigned char)p[1]) || p[2] != ':' ||
	    !isdigit((unsigned char)p[3]) || !isdigit((unsigned char)p[4]) || p[5] != ':' ||
	    !isdigit((unsigned char)p[6]) || !isdigit((unsigned char)p[7]) || p[8] != ' ')
		return -1;
	h = (p[0] - '0') * 10 + (p[1] - '0');
	mi = (p[3] - '0') * 10 + (p[4] - '0');
	se = (p[6] - '0') * 10 + (p[7] - '0');
	p += 9;
	if (*p != '+' && *p != '-')
		return -1;
	sign = *p == '-' ? -1 : 1;
	p++;
	for (int i = 0; i < 4; i++)
		if (!isdigit((unsigned char)p[i]))
			return -1;
	zh = (p[0] - '0') * 10 + (p[1] - '0');
	zm = (p[2] - '0') * 10 + (p[3] - '0');
	if (p[4] != '\0' || h > 23 || mi > 59 || se > 60 || zm > 59)
		return -1;
	*out = days * 86400 + h * 3600 + mi * 60 + se - sign * (zh * 3600 + zm * 60);
	return 0;
}

static int fail(char *err, size_t errlen, const char *msg, const char *what)
{
	snprintf(err, errlen, "%s%s%.60s", msg, what ? ": " : "", what ? what : "");
	return -1;
}

struct cursor {
	const struct imap_arg *args;
	size_t n, i;
	char *err;
	size_t errlen;
};

static const struct imap_arg *next_arg(struct cursor *c, const char *key)
{
	if (c->i >= c->n) {
		fail(c->err, c->errlen, "missing argument for search key", key);
		return NULL;
	}
	return &c->args[c->i++];
}

static int string_arg(struct cursor *c, const char *key, char **out)
{
	const struct imap_arg *a = next_arg(c, key);
	if (!a)
		return -1;
	if (!imap_arg_is_string(a))
		return fail(c->err, c->errlen, "search key needs a string", key);
	*out = strdup(a->str);
	return *out ? 0 : fail(c->err, c->errlen, "out of memory", NULL);
}

static const struct {
	const char *name;
	enum imap_search_op op;
	uint32_t flag;
} simple_keys[] = {
    {"ALL", SEARCH_ALL, 0},
    {"ANSWERED", SEARCH_FLAG, FLAG_ANSWERED},
    {"DELETED", SEARCH_FLAG, FLAG_DELETED},
    {"DRAFT", SEARCH_FLAG, FLAG_DRAFT},
    {"FLAGGED", SEARCH_FLAG, FLAG_FLAGGED},
    {"SEEN", SEARCH_FLAG, FLAG_SEEN},
    {"UNANSWERED", SEARCH_UNFLAG, FLAG_ANSWERED},
    {"UNDELETED", SEARCH_UNFLAG, FLAG_DELETED},
    {"UNDRAFT", SEARCH_UNFLAG, FLAG_DRAFT},
    {"UNFLAGGED", SEARCH_UNFLAG, FLAG_FLAGGED},
    {"UNSEEN", SEARCH_UNFLAG, FLAG_SEEN},
    {"NEW", SEARCH_NEW, 0},
    {"OLD", SEARCH_OLD, 0},
    {"RECENT", SEARCH_RECENT, 0},
};

static const struct {
	const char *name;
	enum imap_search_op op;
} date_keys[] = {
    {"BEFORE", SEARCH_BEFORE},	       {"ON", SEARCH_ON},	  {"SINCE", SEARCH_SINCE},
    {"SENTBEFORE", SEARCH_SENTBEFORE}, {"SENTON", SEARCH_SENTON}, {"SENTSINCE", SEARCH_SENTSINCE},
};

static const char *const header_keys[] = {"FROM", "TO", "CC", "BCC", "SUBJECT"};

static int parse_key(struct cursor *c, struct imap_search_key *k, unsigned depth);

static int parse_and(struct cursor *c, struct imap_search_key *k, unsigned depth)
{
	k->op = SEARCH_AND;
	k->children = calloc(c->n - c->i + 1, sizeof(*k->children));
	if (!k->children)
		return fail(c->err, c->errlen, "out of memory", NULL);
	while (c->i < c->n) {
		if (parse_key(c, &k->children[k->n], depth) < 0) {
			k->n++;
			return -1;
		}
		k->n++;
	}
	return 0;
}

static int parse_key(struct cursor *c, struct imap_search_key *k, unsigned depth)
{
	const struct imap_arg *a = next_arg(c, "");
	const char *name;
	uint64_t v;

	memset(k, 0, sizeof(*k));
	if (!a)
		return -1;
	if (depth > IMAP_DEPTH_MAX)
		return fail(c->err, c->errlen, "search keys nested too deeply", NULL);
	if (a->type == IMAP_ARG_LIST) {
		struct cursor sub = {a->list, a->n, 0, c->err, c->errlen};
		if (a->n == 0)
			return fail(c->err, c->errlen, "empty parenthesized search key", NULL);
		return parse_and(&sub, k, depth + 1);
	}
	if (a->type != IMAP_ARG_ATOM)
		return fail(c->err, c->errlen, "unknown search key", a->str);
	name = a->str;
	for (size_t i = 0; i < sizeof(simple_keys) / sizeof(simple_keys[0]); i++) {
		if (strcasecmp(name, simple_keys[i].name) == 0) {
			k->op = simple_keys[i].op;
			k->flag = simple_keys[i].flag;
			return 0;
		}
	}
	for (size_t i = 0; i < sizeof(date_keys) / sizeof(date_keys[0]); i++) {
		if (strcasecmp(name, date_keys[i].name) == 0) {
			const struct imap_arg *d = next_arg(c, name);
			k->op = date_keys[i].op;
			if (!d || !imap_arg_is_string(d) || imap_parse_date(d->str, &k->number) < 0)
				return fail(c->err, c->errlen, "invalid date (use 1-Feb-2024)",
					    name);
			return 0;
		}
	}
	for (size_t i = 0; i < sizeof(header_keys) / sizeof(header_keys[0]); i++) {
		if (strcasecmp(name, header_keys[i]) == 0) {
			k->op = SEARCH_HEADER;
			k->field = strdup(header_keys[i]);
			if (!k->field)
				return fail(c->err, c->errlen, "out of memory", NULL);
			return string_arg(c, name, &k->value);
		}
	}
	if (strcasecmp(name, "HEADER") == 0) {
		k->op = SEARCH_HEADER;
		if (string_arg(c, name, &k->field) < 0)
			return -1;
		return string_arg(c, name, &k->value);
	}
	if (strcasecmp(name, "BODY") == 0 || strcasecmp(name, "TEXT") == 0) {
		k->op = strcasecmp(name, "BODY") == 0 ? SEARCH_BODY : SEARCH_TEXT;
		return string_arg(c, name, &k->value);
	}
	if (strcasecmp(name, "KEYWORD") == 0 || strcasecmp(name, "UNKEYWORD") == 0) {
		k->op = toupper((unsigned char)name[0]) == 'K' ? SEARCH_KEYWORD : SEARCH_UNKEYWORD;
		return string_arg(c, name, &k->value);
	}
	if (strcasecmp(name, "LARGER") == 0 || strcasecmp(name, "SMALLER") == 0 ||
	    strcasecmp(name, "MODSEQ") == 0) {
		const struct imap_arg *n;
		/* RFC 7162 3.1.5: MODSEQ ["/flags/\\Seen" priv|shared|all] n; Postern
		 * keeps one modseq per message, so the entry is checked and ignored. */
		if (strcasecmp(name, "MODSEQ") == 0 && c->i + 2 < c->n &&
		    c->args[c->i].type == IMAP_ARG_QUOTED) {
			const struct imap_arg *kind = &c->args[c->i + 1];
			if (strncasecmp(c->args[c->i].str, "/flags/", 7) != 0 ||
			    !(imap_arg_is(kind, "priv") || imap_arg_is(kind, "shared") ||
			      imap_arg_is(kind, "all")))
				return fail(c->err, c->errlen, "invalid MODSEQ entry", NULL);
			c->i += 2;
		}
		n = next_arg(c, name);
		k->op = toupper((unsigned char)name[0]) == 'L'	 ? SEARCH_LARGER
			: toupper((unsigned char)name[0]) == 'S' ? SEARCH_SMALLER
								 : SEARCH_MODSEQ;
		if (!n || n->type != IMAP_ARG_ATOM ||
		    imap_parse_number(n->str, n->len, INT64_MAX, &v) < 0)
			return fail(c->err, c->errlen, "invalid number", name);
		k->number = (int64_t)v;
		return 0;
	}
	if (strcasecmp(name, "UID") == 0) {
		const struct imap_arg *s = next_arg(c, name);
		k->op = SEARCH_UIDSET;
		if (!s)
			return -1;
		if (s->type != IMAP_ARG_ATOM)
			return fail(c->err, c->errlen, "invalid sequence set", NULL);
		if (strcmp(s->str, "$") == 0) {
			k->op = SEARCH_SAVED; /* RFC 5182 2.1: "UID $" is the same as "$" */
			return 0;
		}
		return imap_seqset_parse(s->str, &k->set, c->err, c->errlen);
	}
	if (strcasecmp(name, "NOT") == 0) {
		k->op = SEARCH_NOT;
		k->children = calloc(1, sizeof(*k->children));
		if (!k->children)
			return fail(c->err, c->errlen, "out of memory", NULL);
		k->n = 1;
		return parse_key(c, &k->children[0], depth + 1);
	}
	if (strcasecmp(name, "OR") == 0) {
		k->op = SEARCH_OR;
		k->children = calloc(2, sizeof(*k->children));
		if (!k->children)
			return fail(c->err, c->errlen, "out of memory", NULL);
		k->n = 1;
		if (parse_key(c, &k->children[0], depth + 1) < 0)
			return -1;
		k->n = 2;
		return parse_key(c, &k->children[1], depth + 1);
	}
	if (strcmp(name, "$") == 0) {
		k->op = SEARCH_SAVED;
		return 0;
	}
	if (isdigit((unsigned char)name[0]) || name[0] == '*') {
		k->op = SEARCH_SEQSET;
		return imap_seqset_parse(name, &k->set, c->err, c->errlen);
	}
	return fail(c->err, c->errlen, "unknown search key", name);
}

int imap_search_parse(const struct imap_arg *args, size_t n, struct imap_search_key *out, char *err,
		      size_t errlen)
{
	struct cursor c = {args, n, 0, err, errlen};

	memset(out, 0, sizeof(*out));
	if (n >= 2 && imap_arg_is(&args[0], "CHARSET")) {
		if (!imap_arg_is_string(&args[1]) || (strcasecmp(args[1].str, "UTF-8") != 0 &&
						      strcasecmp(args[1].str, "US-ASCII") != 0)) {
			snprintf(err, errlen, "[BADCHARSET (UTF-8 US-ASCII)] unsupported charset");
			return -1;
		}
		c.i = 2;
	}
	if (c.i >= n) {
		snprintf(err, errlen, "missing search criteria");
		return -1;
	}
	if (parse_and(&c, out, 0) < 0) {
		imap_search_key_free(out);
		return -1;
	}
	return 0;
}

void imap_search_key_free(struct imap_search_key *key)
{
	for (size_t i = 0; i < key->n; i++)
		imap_search_key_free(&key->children[i]);
	free(key->children);
	free(key->field);
	free(key->value);
	imap_seqset_free(&key->set);
	memset(key, 0, sizeof(*key));
}
