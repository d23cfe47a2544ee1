/*
 * imap_fetch_parse.c - FETCH data items (RFC 3501 6.4.5, 9 "fetch-att"):
 * macros ALL/FAST/FULL, simple items, BODY[section]<partial> and the
 * BINARY[part]<partial>, BINARY.PEEK and BINARY.SIZE items of RFC 3516
 * (part numbers only). Pure.
 */
#include <config.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap.h"

static int bad(char *err, size_t errlen, const char *msg, const char *item)
{
	snprintf(err, errlen, "%s: %.60s", msg, item);
	return -1;
}

static void free_fields(struct imap_fetch_att *a)
{
	for (size_t i = 0; i < a->n_fields; i++)
		free(a->fields[i]);
	free(a->fields);
	a->fields = NULL;
	a->n_fields = 0;
}

/* "(From To \"X-Y\")" -> field names. */
static int parse_fields(const char *p, const char *end, struct imap_fetch_att *a)
{
	while (p < end && *p == ' ')
		p++;
	if (p >= end || *p != '(')
		return -1;
	p++;
	a->fields = calloc(IMAP_FIELDS_MAX, sizeof(char *));
	if (!a->fields)
		return -1;
	for (;;) {
		const char *s;
		size_t len;
		bool quoted = false;
		while (p < end && *p == ' ')
			p++;
		if (p >= end)
			return -1;
		if (*p == ')') {
			p++;
			break;
		}
		if (*p == '"') {
			quoted = true;
			p++;
		}
		s = p;
		while (p < end && *p != ' ' && *p != ')' && *p != '"' && *p != ':')
			p++;
		len = (size_t)(p - s);
		if (quoted) {
			if (p >= end || *p != '"')
				return -1;
			p++;
		}
		if (len == 0 || a->n_fields == IMAP_FIELDS_MAX)
			return -1;
		a->fields[a->n_fields] = strndup(s, len);
		if (!a->fields[a->n_fields])
			return -1;
		a->n_fields++;
	}
	if (p != end || a->n_fields == 0)
		return -1;
	return 0;
}

/* The inside of "[...]": "", "1.2", "HEADER", "1.HEADER.FIELDS (A B)", "2.MIME", "TEXT". */
static int parse_section(const char *p, const char *end, struct imap_fetch_att *a)
{
	a->section = SECTION_ALL;
	while (p < end && isdigit((unsigned char)*p)) {
		uint64_t v = 0;
		const char *s = p;
		while (p < end && isdigit((unsigned char)*p))
			p++;
		if (imap_parse_number(s, (size_t)(p - s), UINT32_MAX, &v) < 0 || v == 0)
			return -1;
		if (a->n_parts == IMAP_SECTION_PARTS_MAX)
			return -1;
		a->parts[a->n_parts++] = (uint32_t)v;
		if (p == end)
			return 0;
		if (*p != '.')
			return -1;
		p++;
		if (p == end)
			return -1;
	}
	if (p == end)
		return 0;
	if ((size_t)(end - p) == 6 && strncasecmp(p, "HEADER", 6) == 0) {
		a->section = SECTION_HEADER;
		return 0;
	}
	if ((size_t)(end - p) == 4 && strncasecmp(p, "TEXT", 4) == 0) {
		a->section = SECTION_TEXT;
		return 0;
	}
	if ((size_t)(end - p) == 4 && strncasecmp(p, "MIME", 4) == 0) {
		if (a->n_parts == 0)
			return -1; /* RFC 3501 6.4.5: MIME needs a part number */
		a->section = SECTION_MIME;
		return 0;
	}
	if ((size_t)(end - p) > 18 && strncasecmp(p, "HEADER.FIELDS.NOT ", 18) == 0) {
		a->section = SECTION_HEADER_FIELDS_NOT;
		return parse_fields(p + 17, end, a);
	}
	if ((size_t)(end - p) > 14 && strncasecmp(p, "HEADER.FIELDS ", 14) == 0) {
		a->section = SECTION_HEADER_FIELDS;
		return parse_fields(p + 13, end, a);
	}
	return -1;
}

/* "<12.100>" */
static int parse_partial(const char *p, struct imap_fetch_att *a)
{
	const char *dot = strchr(p, '.'), *close = strchr(p, '>');
	uint64_t off, cnt;

	if (*p != '<' || !dot || !close || close[1] != '\0' || dot > close)
		return -1;
	if (imap_parse_number(p + 1, (size_t)(dot - p - 1), UINT32_MAX, &off) < 0 ||
	    imap_parse_number(dot + 1, (size_t)(close - dot - 1), UINT32_MAX, &cnt) < 0 || cnt == 0)
		return -1;
	a->partial = true;
	a->offset = (uint32_t)off;
	a->count = (uint32_t)cnt;
	return 0;
}

static const struct {
	const char *name;
	enum imap_fetch_kind kind;
} simple_items[] = {
    {"FLAGS", FETCH_FLAGS},
    {"INTERNALDATE", FETCH_INTERNALDATE},
    {"RFC822.SIZE", FETCH_RFC822_SIZE},
    {"ENVELOPE", FETCH_ENVELOPE},
    {"BODYSTRUCTURE", FETCH_BODYSTRUCTURE},
    {"BODY", FETCH_BODY},
    {"UID", FETCH_UID},
    {"RFC822", FETCH_RFC822},
    {"RFC822.HEADER", FETCH_RFC822_HEADER},
    {"RFC822.TEXT", FETCH_RFC822_TEXT},
    {"MODSEQ", FETCH_MODSEQ},
};

int imap_fetch_parse_item(const char *s, struct imap_fetch_att *out, char *err, size_t errlen)
{
	const char *open, *close;
	size_t plen;

	memset(out, 0, sizeof(*out));
	open = strchr(s, '[');
	if (!open) {
		for (size_t i = 0; i < sizeof(simple_items) / sizeof(simple_items[0]); i++) {
			if (strcasecmp(s, simple_items[i].name) == 0) {
				out->kind = simple_items[i].kind;
				snprintf(out->name, sizeof(out->name), "%s", simple_items[i].name);
				return 0;
			}
		}
		return bad(err, errlen, "unknown FETCH item", s);
	}
	plen = (size_t)(open - s);
	out->kind = FETCH_SECTION;
	if (plen == 4 && strncasecmp(s, "BODY", 4) == 0)
		out->peek = false;
	else if (plen == 9 && strncasecmp(s, "BODY.PEEK", 9) == 0)
		out->peek = true;
	else if (plen == 6 && strncasecmp(s, "BINARY", 6) == 0)
		out->kind = FETCH_BINARY;
	else if (plen == 11 && strncasecmp(s, "BINARY.PEEK", 11) == 0) {
		out->kind = FETCH_BINARY;
		out->peek = true;
	} else if (plen == 11 && strncasecmp(s, "BINARY.SIZE", 11) == 0)
		out->kind = FETCH_BINARY_SIZE;
	else
		return bad(err, errlen, "unknown FETCH item", s);
	close = strchr(open, ']');
	if (!close || parse_section(open + 1, close, out) < 0 ||
	    (out->kind != FETCH_SECTION && out->section != SECTION_ALL)) {
		free_fields(out);
		return bad(err, errlen, "invalid section", s);
	}
	if (close[1] != '\0' &&
	    (out->kind == FETCH_BINARY_SIZE || parse_partial(close + 1, out) < 0)) {
		free_fields(out);
		return bad(err, errlen, "invalid partial range", s);
	}
	/* The response names the section as asked, upper-cased, without PEEK
	 * and with only the offset of a partial (RFC 3501 7.4.2). */
	{
		size_t n = 0;
		const char *q;
		n += (size_t)snprintf(out->name, sizeof(out->name), "%s[",
				      out->kind == FETCH_SECTION  ? "BODY"
				      : out->kind == FETCH_BINARY ? "BINARY"
								  : "BINARY.SIZE");
		for (q = open + 1; q < close && n + 2 < sizeof(out->name); q++)
			out->name[n++] = (char)toupper((unsigned char)*q);
		out->name[n] = '\0';
		if (out->partial)
			snprintf(out->name + n, sizeof(out->name) - n, "]<%u>", out->offset);
		else
			snprintf(out->name + n, sizeof(out->name) - n, "]");
	}
	return 0;
}

static int add_item(struct imap_fetch_atts *out, const char *s, char *err, size_t errlen)
{
	struct imap_fetch_att *na = realloc(out->atts, (out->n + 1) * sizeof(*na));

	if (!na)
		return bad(err, errlen, "out of memory", s);
	out->atts = na;
	if (imap_fetch_parse_item(s, &out->atts[out->n], err, errlen) < 0)
		return -1;
	out->n++;
	return 0;
}

int imap_fetch_parse(const struct imap_arg *arg, struct imap_fetch_atts *out, char *err,
		     size_t errlen)
{
	static const char *const all[] = {"FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", NULL};
	static const char *const full[] = {"FLAGS",    "INTERNALDATE", "RFC822.SIZE",
					   "ENVELOPE", "BODY",	       NULL};
	static const char *const fast[] = {"FLAGS", "INTERNALDATE", "RFC822.SIZE", NULL};
	const char *const *macro = NULL;

	memset(out, 0, sizeof(*out));
	if (arg->type == IMAP_ARG_ATOM) {
		if (strcasecmp(arg->str, "ALL") == 0)
			macro = all;
		else if (strcasecmp(arg->str, "FULL") == 0)
			macro = full;
		else if (strcasecmp(arg->str, "FAST") == 0)
			macro = fast;
		if (macro) {
			for (; *macro; macro++)
				if (add_item(out, *macro, err, errlen) < 0)
					goto error;
			return 0;
		}
		if (add_item(out, arg->str, err, errlen) < 0)
			goto error;
		return 0;
	}
	if (arg->type != IMAP_ARG_LIST || arg->n == 0) {
		snprintf(err, errlen, "FETCH items must be an atom or a non-empty list");
		return -1;
	}
	for (size_t i = 0; i < arg->n; i++) {
		if (arg->list[i].type != IMAP_ARG_ATOM) {
			snprintf(err, errlen, "FETCH items must be atoms");
			goto error;
		}
		if (add_item(out, arg->list[i].str, err, errlen) < 0)
			goto error;
	}
	return 0;
error:
	imap_fetch_atts_free(out);
	return -1;
}

void imap_fetch_atts_free(struct imap_fetch_atts *atts)
{
	for (size_t i = 0; i < atts->n; i++)
		free_fields(&atts->atts[i]);
	free(atts->atts);
	atts->atts = NULL;
	atts->n = 0;
}
