/*
 * pop3_parse.c - the POP3 command parser: one line in, a struct
 * pop3_command or a precise error out. Pure (no I/O, no globals), so the
 * unit tests and the fuzzer exercise exactly what the server runs.
 *
 * Keywords are case-insensitive and arguments are separated by spaces
 * (RFC 1939 3). Lines are bounded by RFC 2449 4 (255 octets) except PASS,
 * whose password may be long and contain spaces, and AUTH, whose initial
 * response may be long (RFC 5034 4).
 */
#include <config.h>

#include <string.h>

#include "pop3/pop3.h"

struct verb_info {
	const char *name;
	enum pop3_verb verb;
};

static const struct verb_info verbs[] = {
    {"CAPA", POP3_CMD_CAPA}, {"STLS", POP3_CMD_STLS}, {"USER", POP3_CMD_USER},
    {"PASS", POP3_CMD_PASS}, {"AUTH", POP3_CMD_AUTH}, {"STAT", POP3_CMD_STAT},
    {"LIST", POP3_CMD_LIST}, {"RETR", POP3_CMD_RETR}, {"DELE", POP3_CMD_DELE},
    {"NOOP", POP3_CMD_NOOP}, {"RSET", POP3_CMD_RSET}, {"TOP", POP3_CMD_TOP},
    {"UIDL", POP3_CMD_UIDL}, {"QUIT", POP3_CMD_QUIT}, {"APOP", POP3_CMD_APOP},
};

const char *pop3_verb_name(enum pop3_verb verb)
{
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (verbs[i].verb == verb)
			return verbs[i].name;
	return "UNKNOWN";
}

const char *pop3_parse_error(enum pop3_parse_status status)
{
	switch (status) {
	case POP3_PARSE_OK:
		return "ok";
	case POP3_PARSE_EMPTY:
		return "empty command";
	case POP3_PARSE_UNKNOWN:
		return "unknown command";
	case POP3_PARSE_MISSING_ARG:
		return "missing argument";
	case POP3_PARSE_EXTRA_ARG:
		return "too many arguments";
	case POP3_PARSE_BAD_NUMBER:
		return "invalid message number";
	case POP3_PARSE_TOO_LONG:
		return "line too long";
	case POP3_PARSE_BAD_CHAR:
		return "invalid character in command";
	}
	return "syntax error";
}

static char ascii_upper(char ch)
{
	return (ch >= 'a' && ch <= 'z') ? (char)(ch - 'a' + 'A') : ch;
}

struct token {
	const char *p;
	size_t len;
};

/* Splits LINE into at most MAX tokens at spaces; returns the count, or
 * MAX + 1 when more tokens follow. */
static size_t tokenize(const char *line, size_t len, struct token *tok, size_t max)
{
	size_t n = 0, i = 0;

	while (i < len) {
		while (i < len && line[i] == ' ')
			i++;
		if (i == len)
			break;
		if (n == max)
			return max + 1;
		tok[n].p = line + i;
		while (i < len && line[i] != ' ')
			i++;
		tok[n].len = i - (size_t)(tok[n].p - line);
		n++;
	}
	return n;
}

/* A decimal number without sign or leading junk that fits in 32 bits. */
static int parse_number(const struct token *t, uint32_t *out)
{
	uint64_t v = 0;

	if (t->len == 0 || t->len > 10)
		return -1;
	for (size_t i = 0; i < t->len; i++) {
		if (t->p[i] < '0' || t->p[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(t->p[i] - '0');
	}
	if (v > UINT32_MAX)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

static int parse_msg_number(const struct token *t, uint32_t *out)
{
	if (parse_number(t, out) < 0 || *out == 0)
		return -1;
	return 0;
}

static size_t line_limit(enum pop3_verb verb)
{
	switch (verb) {
	case POP3_CMD_PASS:
		return 5 + POP3_PASSWORD_MAX;
	case POP3_CMD_AUTH:
		return POP3_AUTH_LINE_MAX;
	case POP3_CMD_USER:
		return 5 + POP3_USER_MAX;
	default:
		return POP3_COMMAND_MAX - 2;
	}
}

enum pop3_parse_status pop3_parse(const char *line, size_t len, struct pop3_command *out)
{
	struct token tok[4];
	size_t verb_len = 0, n;
	char verb[5];
	size_t i;

	memset(out, 0, sizeof(*out));
	out->verb = POP3_CMD_COUNT;
	out->arg = "";

	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)line[i];
		if (ch < 0x20 || ch == 0x7f)
			return POP3_PARSE_BAD_CHAR;
	}
	while (verb_len < len && line[verb_len] != ' ')
		verb_len++;
	if (len == 0 || verb_len == 0) {
		/* Nothing but spaces is as empty as nothing. */
		for (i = 0; i < len; i++)
			if (line[i] != ' ')
				return POP3_PARSE_UNKNOWN;
		return POP3_PARSE_EMPTY;
	}
	if (verb_len > 4)
		return len > POP3_COMMAND_MAX - 2 ? POP3_PARSE_TOO_LONG : POP3_PARSE_UNKNOWN;
	for (i = 0; i < verb_len; i++)
		verb[i] = ascii_upper(line[i]);
	verb[verb_len] = '\0';
	for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (strcmp(verb, verbs[i].name) == 0)
			break;
	if (i == sizeof(verbs) / sizeof(verbs[0]))
		return len > POP3_COMMAND_MAX - 2 ? POP3_PARSE_TOO_LONG : POP3_PARSE_UNKNOWN;
	out->verb = verbs[i].verb;
	if (len > line_limit(out->verb))
		return POP3_PARSE_TOO_LONG;

	if (out->verb == POP3_CMD_PASS) {
		/* RFC 1939 7: the password is everything after "PASS ", spaces
		 * included, because real passwords contain spaces. */
		if (len <= 5 || line[4] != ' ')
			return POP3_PARSE_MISSING_ARG;
		out->arg = line + 5;
		out->arg_len = len - 5;
		return POP3_PARSE_OK;
	}

	n = tokenize(line + verb_len, len - verb_len, tok, 3);
	switch (out->verb) {
	case POP3_CMD_CAPA:
	case POP3_CMD_STLS:
	case POP3_CMD_STAT:
	case POP3_CMD_NOOP:
	case POP3_CMD_RSET:
	case POP3_CMD_QUIT:
		return n == 0 ? POP3_PARSE_OK : POP3_PARSE_EXTRA_ARG;
	case POP3_CMD_USER:
		if (n == 0)
			return POP3_PARSE_MISSING_ARG;
		if (n > 1)
			return POP3_PARSE_EXTRA_ARG;
		if (tok[0].len > POP3_USER_MAX)
			return POP3_PARSE_TOO_LONG;
		out->arg = tok[0].p;
		out->arg_len = tok[0].len;
		return POP3_PARSE_OK;
	case POP3_CMD_AUTH:
		if (n == 0)
			return POP3_PARSE_OK; /* lists the mechanisms */
		if (n > 2)
			return POP3_PARSE_EXTRA_ARG;
		if (tok[0].len > POP3_MECHANISM_MAX)
			return POP3_PARSE_TOO_LONG;
		for (i = 0; i < tok[0].len; i++)
			out->mechanism[i] = ascii_upper(tok[0].p[i]);
		out->mechanism[tok[0].len] = '\0';
		if (n == 2) {
			out->has_initial = true;
			out->arg = tok[1].p;
			out->arg_len = tok[1].len;
		}
		return POP3_PARSE_OK;
	case POP3_CMD_LIST:
	case POP3_CMD_UIDL:
		if (n > 1)
			return POP3_PARSE_EXTRA_ARG;
		if (n == 1) {
			if (parse_msg_number(&tok[0], &out->msg) < 0)
				return POP3_PARSE_BAD_NUMBER;
			out->has_msg = true;
		}
		return POP3_PARSE_OK;
	case POP3_CMD_RETR:
	case POP3_CMD_DELE:
		if (n == 0)
			return POP3_PARSE_MISSING_ARG;
		if (n > 1)
			return POP3_PARSE_EXTRA_ARG;
		if (parse_msg_number(&tok[0], &out->msg) < 0)
			return POP3_PARSE_BAD_NUMBER;
		out->has_msg = true;
		return POP3_PARSE_OK;
	case POP3_CMD_TOP:
		if (n < 2)
			return POP3_PARSE_MISSING_ARG;
		if (n > 2)
			return POP3_PARSE_EXTRA_ARG;
		if (parse_msg_number(&tok[0], &out->msg) < 0 ||
		    parse_number(&tok[1], &out->lines) < 0)
			return POP3_PARSE_BAD_NUMBER;
		out->has_msg = true;
		return POP3_PARSE_OK;
	case POP3_CMD_APOP:
		if (n < 2)
			return POP3_PARSE_MISSING_ARG;
		if (n > 2)
			return POP3_PARSE_EXTRA_ARG;
		return POP3_PARSE_OK;
	case POP3_CMD_PASS:
	case POP3_CMD_COUNT:
		break;
	}
	return POP3_PARSE_UNKNOWN;
}
