/*
 * imap_parse.c - the IMAP command parser (RFC 3501 9 / RFC 9051 9): bytes
 * in, a tag, a verb and an argument tree out, or a precise error for the
 * tagged BAD. Pure: no I/O, no global state; fuzzed by
 * tests/fuzz/fuzz_imap_parse.c.
 *
 * The session hands over a complete command, literals included, so the
 * parser sees "{n}" CRLF and n bytes wherever the client sent a literal.
 * Atoms are read leniently in one respect: a "[" inside an atom runs to the
 * matching "]" with spaces and parentheses, so "BODY.PEEK[HEADER.FIELDS
 * (From To)]<0.100>" stays one argument for the FETCH item parser.
 */
#include <config.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap.h"

struct parser {
	const char *p, *end;
	size_t n_args; /* counted against IMAP_ARGS_MAX */
	char *error;
	size_t errlen;
};

static int fail(struct parser *ps, const char *msg)
{
	if (ps->error[0] == '\0')
		snprintf(ps->error, ps->errlen, "%s", msg);
	return -1;
}

/* ATOM-CHAR plus "]" (ASTRING-CHAR), "\" (flags) and the LIST wildcards. */
static bool is_atom_char(unsigned char ch)
{
	if (ch <= 0x20 || ch >= 0x7f)
		return false;
	return ch != '(' && ch != ')' && ch != '{' && ch != '"';
}

static void arg_free(struct imap_arg *a)
{
	if (a->type == IMAP_ARG_LIST) {
		for (size_t i = 0; i < a->n; i++)
			arg_free(&a->list[i]);
		free(a->list);
	} else {
		free(a->str);
	}
}

static int set_str(struct parser *ps, struct imap_arg *a, const char *s, size_t len)
{
	a->str = malloc(len + 1);
	if (!a->str)
		return fail(ps, "out of memory");
	memcpy(a->str, s, len);
	a->str[len] = '\0';
	a->len = len;
	return 0;
}

static int parse_quoted(struct parser *ps, struct imap_arg *a)
{
	const char *p = ps->p + 1;
	char *out;
	size_t n = 0;

	/* First pass finds the end so the copy can be sized. */
	const char *q = p;
	while (q < ps->end && *q != '"') {
		if (*q == '\r' || *q == '\n' || *q == '\0')
			return fail(ps, "CR, LF or NUL inside a quoted string");
		if (*q == '\\') {
			q++;
			if (q >= ps->end || (*q != '"' && *q != '\\'))
				return fail(ps,
					    "only \\\" and \\\\ may be escaped in a quoted string");
		}
		q++;
	}
	if (q >= ps->end)
		return fail(ps, "unterminated quoted string");
	out = malloc((size_t)(q - p) + 1);
	if (!out)
		return fail(ps, "out of memory");
	while (p < q) {
		if (*p == '\\')
			p++;
		out[n++] = *p++;
	}
	out[n] = '\0';
	a->type = IMAP_ARG_QUOTED;
	a->str = out;
	a->len = n;
	ps->p = q + 1;
	return 0;
}

static int parse_literal(struct parser *ps, struct imap_arg *a)
{
	const char *p = ps->p + 1;
	uint64_t size = 0;
	size_t digits = 0;

	while (p < ps->end && *p >= '0' && *p <= '9') {
		size = size * 10 + (uint64_t)(*p - '0');
		if (++digits > 12)
			return fail(ps, "literal size too large");
		p++;
	}
	if (digits == 0)
		return fail(ps, "literal size missing");
	if (p < ps->end && (*p == '+' || *p == '-'))
		p++;
	if (p >= ps->end || *p != '}')
		return fail(ps, "malformed literal size");
	p++;
	if (ps->end - p < 2 || p[0] != '\r' || p[1] != '\n')
		return fail(ps, "literal size must end the line");
	p += 2;
	if ((uint64_t)(ps->end - p) < size)
		return fail(ps, "literal shorter than announced");
	a->type = IMAP_ARG_LITERAL;
	if (set_str(ps, a, p, (size_t)size) < 0)
		return -1;
	ps->p = p + size;
	return 0;
}

static int parse_atom(struct parser *ps, struct imap_arg *a)
{
	const char *start = ps->p, *p = ps->p;

	while (p < ps->end) {
		unsigned char ch = (unsigned char)*p;
		if (ch == '[') {
			/* Section: anything printable up to "]" (no nesting in the grammar). */
			p++;
			while (p < ps->end && *p != ']') {
				if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
					return fail(ps, "invalid character inside [...]");
				p++;
			}
			if (p >= ps->end)
				return fail(ps, "missing ] in section");
			p++;
			continue;
		}
		if (!is_atom_char(ch))
			break;
		p++;
	}
	if (p == start) {
		if (*p == ')')
			return fail(ps, "unbalanced parenthesis");
		if ((unsigned char)*p >= 0x80)
			return fail(
			    ps, "8-bit characters are only allowed in quoted strings and literals");
		return fail(ps, "invalid character where an argument was expected");
	}
	if (p < ps->end && *p != ' ' && *p != ')' && *p != '(') {
		if ((unsigned char)*p >= 0x80)
			return fail(
			    ps, "8-bit characters are only allowed in quoted strings and literals");
		return fail(ps, "invalid character in atom");
	}
	a->type = IMAP_ARG_ATOM;
	if (set_str(ps, a, start, (size_t)(p - start)) < 0)
		return -1;
	ps->p = p;
	return 0;
}

static int parse_value(struct parser *ps, struct imap_arg *a, unsigned depth);

/* Values separated by spaces until CLOSE (')' or the end). Extra spaces are tolerated. */
static int parse_sequence(struct parser *ps, struct imap_arg **out, size_t *n_out, unsigned depth,
			  bool in_list)
{
	struct imap_arg *items = NULL;
	size_t n = 0, cap = 0;

	for (;;) {
		while (ps->p < ps->end && *ps->p == ' ')
			ps->p++;
		if (ps->p >= ps->end) {
			if (in_list) {
				fail(ps, "unbalanced parenthesis: missing )");
				goto error;
			}
			break;
		}
		if (*ps->p == ')') {
			if (!in_list) {
				fail(ps, "unbalanced parenthesis: unexpected )");
				goto error;
			}
			ps->p++;
			break;
		}
		if (++ps->n_args > IMAP_ARGS_MAX) {
			fail(ps, "too many arguments");
			goto error;
		}
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 4;
			struct imap_arg *nitems = realloc(items, ncap * sizeof(*items));
			if (!nitems) {
				fail(ps, "out of memory");
				goto error;
			}
			items = nitems;
			cap = ncap;
		}
		memset(&items[n], 0, sizeof(items[n]));
		if (parse_value(ps, &items[n], depth) < 0)
			goto error;
		n++;
		if (ps->p < ps->end && *ps->p != ' ' && *ps->p != ')') {
			fail(ps, "missing space between arguments");
			goto error;
		}
	}
	*out = items;
	*n_out = n;
	return 0;
error:
	for (size_t i = 0; i < n; i++)
		arg_free(&items[i]);
	free(items);
	return -1;
}

static int parse_value(struct parser *ps, struct imap_arg *a, unsigned depth)
{
	switch (*ps->p) {
	case '"':
		return parse_quoted(ps, a);
	case '{':
		return parse_literal(ps, a);
	case '~':
		/* RFC 3516 4.4: literal8 */
		if (ps->end - ps->p > 1 && ps->p[1] == '{') {
			ps->p++;
			if (parse_literal(ps, a) < 0)
				return -1;
			a->literal8 = true;
			return 0;
		}
		return parse_atom(ps, a);
	case '(':
		if (depth >= IMAP_DEPTH_MAX)
			return fail(ps, "parentheses nested too deeply");
		ps->p++;
		a->type = IMAP_ARG_LIST;
		return parse_sequence(ps, &a->list, &a->n, depth + 1, true);
	default:
		return parse_atom(ps, a);
	}
}

/* tag = 1*<ASTRING-CHAR except "+"> */
static int parse_tag(struct parser *ps, struct imap_command *out)
{
	const char *start = ps->p;
	size_t len;

	while (ps->p < ps->end && is_atom_char((unsigned char)*ps->p) && *ps->p != '+' &&
	       *ps->p != '[')
		ps->p++;
	len = (size_t)(ps->p - start);
	if (len == 0)
		return fail(ps, "missing or invalid tag");
	if (len > IMAP_TAG_MAX)
		return fail(ps, "tag too long");
	if (ps->p < ps->end && *ps->p != ' ')
		return fail(ps, "invalid character in tag");
	memcpy(out->tag, start, len);
	out->tag[len] = '\0';
	return 0;
}

static int parse_verb(struct parser *ps, char *verb)
{
	const char *start;
	size_t len;

	if (ps->p >= ps->end || *ps->p != ' ')
		return fail(ps, "missing command");
	ps->p++;
	start = ps->p;
	while (ps->p < ps->end && isalnum((unsigned char)*ps->p))
		ps->p++;
	len = (size_t)(ps->p - start);
	if (len == 0)
		return fail(ps, "missing command");
	if (len > IMAP_VERB_MAX)
		return fail(ps, "unknown command");
	if (ps->p < ps->end && *ps->p != ' ')
		return fail(ps, "invalid character in command name");
	for (size_t i = 0; i < len; i++)
		verb[i] = (char)toupper((unsigned char)start[i]);
	verb[len] = '\0';
	return 0;
}

int imap_parse(const char *buf, size_t len, struct imap_command *out)
{
	struct parser ps = {.p = buf, .end = buf + len};

	memset(out, 0, sizeof(*out));
	strcpy(out->tag, "*");
	ps.error = out->error;
	ps.errlen = sizeof(out->error);
	if (len == 0)
		return fail(&ps, "empty command line");
	if (parse_tag(&ps, out) < 0)
		return -1;
	if (parse_verb(&ps, out->verb) < 0)
		return -1;
	if (strcmp(out->verb, "UID") == 0) {
		out->uid = true;
		if (parse_verb(&ps, out->verb) < 0)
			return -1;
	}
	if (parse_sequence(&ps, &out->args, &out->n_args, 0, false) < 0) {
		out->args = NULL;
		out->n_args = 0;
		return -1;
	}
	return 0;
}

void imap_command_free(struct imap_command *cmd)
{
	for (size_t i = 0; i < cmd->n_args; i++)
		arg_free(&cmd->args[i]);
	free(cmd->args);
	cmd->args = NULL;
	cmd->n_args = 0;
}

int imap_line_literal(const char *line, size_t len, uint64_t *size, bool *nonsync)
{
	size_t i, digits = 0;
	uint64_t v = 0, mul = 1;

	if (len < 3 || line[len - 1] != '}')
		return 0;
	i = len - 2;
	*nonsync = false;
	if (line[i] == '+' || line[i] == '-') {
		*nonsync = line[i] == '+';
		if (i == 0)
			return 0;
		i--;
	}
	while (line[i] >= '0' && line[i] <= '9') {
		if (++digits > 12)
			return -1;
		v += (uint64_t)(line[i] - '0') * mul;
		mul *= 10;
		if (i == 0)
			return 0;
		i--;
	}
	if (line[i] != '{')
		return 0; /* e.g. an atom ending in "}" is not a literal */
	if (digits == 0)
		return -1;
	*size = v;
	return 1;
}

bool imap_arg_is(const struct imap_arg *arg, const char *word)
{
	return arg->type == IMAP_ARG_ATOM && strcasecmp(arg->str, word) == 0;
}

bool imap_arg_is_string(const struct imap_arg *arg)
{
	return arg->type != IMAP_ARG_LIST;
}

int imap_parse_number(const char *s, size_t len, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (len == 0 || len > 20)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (v > (max - (uint64_t)(s[i] - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return 0;
}

/* RFC 9208 5.1: STORAGE counts units of 1024 octets; rounded up so that a
 * mailbox with anything in it never shows 0. */
uint64_t imap_quota_kb(int64_t bytes)
{
	if (bytes <= 0)
		return 0;
	return ((uint64_t)bytes + 1023) / 1024;
}
