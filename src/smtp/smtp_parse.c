/*
 * smtp_parse.c - the SMTP command parser: one line (without CRLF) in, a
 * struct smtp_command or a precise error out. Pure: no I/O, no state, so it
 * is unit-tested and fuzzed on its own.
 *
 * Addresses follow the RFC 5321 4.1.2 path grammar (dot-strings, quoted
 * local parts, domains, address literals), non-ASCII only under SMTPUTF8
 * (RFC 6531), and never contain CR, LF, NUL, "<", ">" or other control
 * characters: what passes here is safe to put into a header line.
 */
#include <config.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smtp/smtp.h"

static const char *const verb_names[SMTP_CMD_COUNT] = {
    [SMTP_CMD_EHLO] = "EHLO", [SMTP_CMD_HELO] = "HELO", [SMTP_CMD_MAIL] = "MAIL",
    [SMTP_CMD_RCPT] = "RCPT", [SMTP_CMD_DATA] = "DATA", [SMTP_CMD_BDAT] = "BDAT",
    [SMTP_CMD_RSET] = "RSET", [SMTP_CMD_NOOP] = "NOOP", [SMTP_CMD_QUIT] = "QUIT",
    [SMTP_CMD_HELP] = "HELP", [SMTP_CMD_VRFY] = "VRFY", [SMTP_CMD_STARTTLS] = "STARTTLS",
    [SMTP_CMD_AUTH] = "AUTH",
};

const char *smtp_verb_name(enum smtp_verb verb)
{
	return verb < SMTP_CMD_COUNT ? verb_names[verb] : "UNKNOWN";
}

static int fail(struct smtp_error *err, int code, const char *status, const char *text)
{
	err->code = code;
	err->status = status;
	err->text = text;
	return -1;
}

/* ---- character classes ---- */

static bool is_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* RFC 5322 atext */
static bool is_atext(unsigned char c)
{
	return is_alnum(c) || (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/*
 * Length of the well-formed UTF-8 sequence at S (at most LEN bytes) that
 * encodes a non-ASCII scalar value, or 0 when it is malformed, overlong or a
 * surrogate.
 */
static size_t utf8_seq(const unsigned char *s, size_t len)
{
	size_t n, i;
	uint32_t cp;

	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (len < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/* ---- domains ---- */

/* RFC 5321 Domain (LDH labels; UTF8 allows U-labels; UNDERSCORE tolerates
 * the "_" that some client host names carry, for EHLO only). */
static bool valid_domain(const unsigned char *s, size_t len, bool utf8, bool underscore)
{
	size_t i = 0, label = 0;
	unsigned char prev = '.';

	if (len == 0 || len > SMTP_DOMAIN_MAX)
		return false;
	while (i < len) {
		unsigned char c = s[i];
		if (c == '.') {
			if (label == 0 || prev == '-')
				return false;
			label = 0;
			prev = c;
			i++;
			continue;
		}
		if (c >= 0x80) {
			size_t n = utf8 ? utf8_seq(s + i, len - i) : 0;
			if (n == 0)
				return false;
			label += n;
			i += n;
			prev = 'a';
		} else if (is_alnum(c) || (underscore && c == '_')) {
			label++;
			i++;
			prev = c;
		} else if (c == '-') {
			if (label == 0)
				return false;
			label++;
			i++;
			prev = c;
		} else {
			return false;
		}
		if (label > 63)
			return false;
	}
	return label > 0 && prev != '-';
}

/* RFC 5321 address-literal: [IPv4], [IPv6:...] or [tag:dcontent]. */
static bool valid_address_literal(const unsigned char *s, size_t len)
{
	char buf[64];
	unsigned char tmp[16];
	size_t i, colon = 0;

	if (len < 3 || s[0] != '[' || s[len - 1] != ']' || len - 2 >= sizeof(buf))
		return false;
	memcpy(buf, s + 1, len - 2);
	buf[len - 2] = '\0';
	if (strncasecmp(buf, "IPv6:", 5) == 0)
		return inet_pton(AF_INET6, buf + 5, tmp) == 1;
	if (inet_pton(AF_INET, buf, tmp) == 1)
		return true;
	/* General-address-literal: Standardized-tag ":" 1*dcontent */
	for (i = 0; buf[i]; i++) {
		if (buf[i] == ':') {
			colon = i;
			break;
		}
	}
	if (colon == 0)
		return false;
	for (i = 0; i < colon; i++)
		if (!is_alnum((unsigned char)buf[i]) && buf[i] != '-')
			return false;
	if (buf[colon + 1] == '\0')
		return false;
	for (i = colon + 1; buf[i]; i++) {
		unsigned char c = (unsigned char)buf[i];
		if (c < 33 || c > 126 || c == '[' || c == ']' || c == '\\')
			return false;
	}
	return true;
}

bool smtp_valid_helo(const char *arg, size_t len)
{
	const unsigned char *s = (const unsigned char *)arg;

	if (len > 0 && s[0] == '[')
		return valid_address_literal(s, len);
	return valid_domain(s, len, false, true);
}

/* ---- mailboxes ---- */

int smtp_check_mailbox(const char *addr, size_t len, bool utf8, struct smtp_error *err)
{
	const unsigned char *s = (const unsigned char *)addr;
	size_t i = 0, at;

	if (len == 0)
		return fail(err, 501, "5.1.3", "Empty address");
	if (len > SMTP_PATH_MAX - 2)
		return fail(err, 501, "5.1.3", "Address too long");
	if (s[0] == '"') {
		/* Quoted-string: qtextSMTP or quoted-pairSMTP */
		for (i = 1; i < len && s[i] != '"'; i++) {
			if (s[i] == '\\') {
				if (i + 1 >= len || s[i + 1] < 32 || s[i + 1] > 126)
					return fail(err, 501, "5.1.3", "Bad quoted local part");
				i++;
			} else if (s[i] >= 0x80) {
				size_t n = utf8 ? utf8_seq(s + i, len - i) : 0;
				if (n == 0)
					return fail(err, utf8 ? 501 : 553, utf8 ? "5.1.3" : "5.6.7",
						    utf8 ? "Bad UTF-8 in address"
							 : "Non-ASCII address requires SMTPUTF8");
				i += n - 1;
			} else if (s[i] < 32 || s[i] > 126) {
				return fail(err, 501, "5.1.3", "Control character in address");
			}
		}
		if (i >= len)
			return fail(err, 501, "5.1.3", "Unterminated quoted local part");
		i++; /* closing quote */
	} else {
		/* Dot-string */
		unsigned char prev = '.';
		for (; i < len && s[i] != '@'; i++) {
			if (s[i] == '.') {
				if (prev == '.')
					return fail(err, 501, "5.1.3", "Bad dots in local part");
			} else if (s[i] >= 0x80) {
				size_t n = utf8 ? utf8_seq(s + i, len - i) : 0;
				if (n == 0)
					return fail(err, utf8 ? 501 : 553, utf8 ? "5.1.3" : "5.6.7",
						    utf8 ? "Bad UTF-8 in address"
							 : "Non-ASCII address requires SMTPUTF8");
				i += n - 1;
			} else if (s[i] < 32 || s[i] == 127) {
				return fail(err, 501, "5.1.3", "Control character in address");
			} else if (!is_atext(s[i])) {
				return fail(err, 501, "5.1.3", "Invalid character in local part");
			}
			prev = s[i];
		}
		if (i == 0 || prev == '.')
			return fail(err, 501, "5.1.3", "Bad dots in local part");
	}
	if (i >= len || s[i] != '@')
		return fail(err, 501, "5.1.3", "Address needs a domain");
	at = i;
	if (at > SMTP_LOCAL_PART_MAX)
		return fail(err, 501, "5.1.3", "Local part too long");
	if (at + 1 >= len)
		return fail(err, 501, "5.1.3", "Address needs a domain");
	if (s[at + 1] == '[') {
		if (!valid_address_literal(s + at + 1, len - at - 1))
			return fail(err, 501, "5.1.3", "Invalid address literal");
		return 0;
	}
	for (i = at + 1; i < len; i++)
		if (s[i] >= 0x80 && !utf8)
			return fail(err, 553, "5.6.7", "Non-ASCII address requires SMTPUTF8");
	if (!valid_domain(s + at + 1, len - at - 1, utf8, false))
		return fail(err, 501, "5.1.3", "Invalid domain in address");
	return 0;
}

bool smtp_valid_xtext(const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i;

	for (i = 0; i < len; i++) {
		if (s[i] == '+') {
			if (i + 2 >= len || !isxdigit(s[i + 1]) || !isxdigit(s[i + 2]) ||
			    islower(s[i + 1]) || islower(s[i + 2]))
				return false;
			i += 2;
		} else if (s[i] < 33 || s[i] > 126 || s[i] == '=') {
			return false;
		}
	}
	return true;
}

/* ---- paths and parameters ---- */

/*
 * Parses "<path>" at P (up to END): sets OUT->address to the mailbox, skipping
 * an obsolete source route. Returns the position after ">" or NULL. The
 * mailbox itself is checked later, once SMTPUTF8 is known.
 */
static const char *parse_path(const char *p, const char *end, bool allow_null,
			      struct smtp_command *out, struct smtp_error *err)
{
	const char *start, *close;
	bool quoted = false;

	if (p >= end || *p != '<') {
		fail(err, 501, "5.5.4", "Syntax: address must be enclosed in <>");
		return NULL;
	}
	p++;
	/* Find the closing bracket outside a quoted string. */
	for (close = p; close < end; close++) {
		if (quoted && *close == '\\' && close + 1 < end) {
			close++;
			continue;
		}
		if (*close == '"')
			quoted = !quoted;
		else if (!quoted && *close == '>')
			break;
	}
	if (close >= end) {
		fail(err, 501, "5.5.4", "Syntax: missing > after address");
		return NULL;
	}
	start = p;
	if (close - start > SMTP_PATH_MAX - 2) {
		fail(err, 501, "5.1.3", "Address too long");
		return NULL;
	}
	if (close == start) {
		if (!allow_null) {
			fail(err, 501, "5.1.3", "Empty address not allowed here");
			return NULL;
		}
		out->address[0] = '\0';
		return close + 1;
	}
	/* RFC 5321 4.1.2 A-d-l: "@one,@two:" is accepted and ignored. */
	if (*start == '@') {
		const char *colon = memchr(start, ':', (size_t)(close - start));
		const char *q;
		if (!colon) {
			fail(err, 501, "5.1.3", "Invalid source route");
			return NULL;
		}
		for (q = start; q < colon; q++) {
			if (*q == '@' || *q == ',' || *q == '.' || *q == '-' ||
			    is_alnum((unsigned char)*q))
				continue;
			fail(err, 501, "5.1.3", "Invalid source route");
			return NULL;
		}
		start = colon + 1;
	}
	memcpy(out->address, start, (size_t)(close - start));
	out->address[close - start] = '\0';
	if (memchr(start, '\0', (size_t)(close - start))) {
		fail(err, 501, "5.1.3", "Control character in address");
		return NULL;
	}
	return close + 1;
}

static bool parse_number(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (len == 0 || len > 20)
		return false;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		if (v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return true;
}

static bool keyword_is(const char *kw, size_t kwlen, const char *name)
{
	return strlen(name) == kwlen && strncasecmp(kw, name, kwlen) == 0;
}

static int parse_notify(const char *v, size_t len, unsigned *out, struct smtp_error *err)
{
	size_t i = 0;
	unsigned bits = 0;

	while (i <= len) {
		size_t j = i;
		unsigned bit;
		while (j < len && v[j] != ',')
			j++;
		if (keyword_is(v + i, j - i, "NEVER"))
			bit = SMTP_NOTIFY_NEVER;
		else if (keyword_is(v + i, j - i, "SUCCESS"))
			bit = SMTP_NOTIFY_SUCCESS;
		else if (keyword_is(v + i, j - i, "FAILURE"))
			bit = SMTP_NOTIFY_FAILURE;
		else if (keyword_is(v + i, j - i, "DELAY"))
			bit = SMTP_NOTIFY_DELAY;
		else
			return fail(err, 501, "5.5.4", "Invalid NOTIFY value");
		if (bits & bit)
			return fail(err, 501, "5.5.4", "Invalid NOTIFY value");
		bits |= bit;
		i = j + 1;
	}
	if ((bits & SMTP_NOTIFY_NEVER) && bits != SMTP_NOTIFY_NEVER)
		return fail(err, 501, "5.5.4", "NOTIFY=NEVER cannot be combined");
	*out = bits;
	return 0;
}

/* Copies V into a fixed field; false when it does not fit. */
static bool copy_value(char *dst, size_t dstlen, const char *v, size_t len)
{
	if (len >= dstlen)
		return false;
	memcpy(dst, v, len);
	dst[len] = '\0';
	return true;
}

/* One "KEYWORD[=VALUE]" of MAIL (IS_MAIL) or RCPT. */
static int parse_param(const char *p, size_t len, bool is_mail, struct smtp_command *out,
		       unsigned *seen, struct smtp_error *err)
{
	const char *eq = memchr(p, '=', len);
	size_t kwlen = eq ? (size_t)(eq - p) : len;
	const char *v = eq ? eq + 1 : NULL;
	size_t vlen = eq ? len - kwlen - 1 : 0;
	size_t i;
	unsigned bit;

	if (kwlen == 0 || !is_alnum((unsigned char)p[0]))
		return fail(err, 501, "5.5.4", "Invalid parameter syntax");
	for (i = 0; i < kwlen; i++)
		if (!is_alnum((unsigned char)p[i]) && p[i] != '-')
			return fail(err, 501, "5.5.4", "Invalid parameter syntax");
	if (eq) {
		if (vlen == 0)
			return fail(err, 501, "5.5.4", "Empty parameter value");
		for (i = 0; i < vlen; i++)
			if ((unsigned char)v[i] < 33 || (unsigned char)v[i] > 126 || v[i] == '=')
				return fail(err, 501, "5.5.4", "Invalid parameter value");
	}
	if (is_mail && keyword_is(p, kwlen, "SIZE")) {
		bit = 1u << 0;
		if (!v || !parse_number(v, vlen, &out->size))
			return fail(err, 501, "5.5.4", "Invalid SIZE value");
		out->has_size = true;
	} else if (is_mail && keyword_is(p, kwlen, "BODY")) {
		bit = 1u << 1;
		if (v && keyword_is(v, vlen, "7BIT"))
			out->body = SMTP_BODY_7BIT;
		else if (v && keyword_is(v, vlen, "8BITMIME"))
			out->body = SMTP_BODY_8BITMIME;
		else
			return fail(err, 555, "5.5.4", "Unsupported BODY value");
	} else if (is_mail && keyword_is(p, kwlen, "SMTPUTF8")) {
		bit = 1u << 2;
		if (v)
			return fail(err, 501, "5.5.4", "SMTPUTF8 takes no value");
		out->smtputf8 = true;
	} else if (is_mail && keyword_is(p, kwlen, "RET")) {
		bit = 1u << 3;
		if (v && keyword_is(v, vlen, "FULL"))
			strcpy(out->ret, "FULL");
		else if (v && keyword_is(v, vlen, "HDRS"))
			strcpy(out->ret, "HDRS");
		else
			return fail(err, 501, "5.5.4", "Invalid RET value");
	} else if (is_mail && keyword_is(p, kwlen, "ENVID")) {
		bit = 1u << 4;
		if (!v || !smtp_valid_xtext(v, vlen) ||
		    !copy_value(out->envid, sizeof(out->envid), v, vlen))
			return fail(err, 501, "5.5.4", "Invalid ENVID value");
	} else if (is_mail && keyword_is(p, kwlen, "AUTH")) {
		bit = 1u << 5;
		if (!v || !(keyword_is(v, vlen, "<>") || smtp_valid_xtext(v, vlen)) ||
		    !copy_value(out->auth_param, sizeof(out->auth_param), v, vlen))
			return fail(err, 501, "5.5.4", "Invalid AUTH value");
	} else if (!is_mail && keyword_is(p, kwlen, "NOTIFY")) {
		bit = 1u << 6;
		if (!v)
			return fail(err, 501, "5.5.4", "Invalid NOTIFY value");
		if (parse_notify(v, vlen, &out->notify, err) < 0)
			return -1;
	} else if (!is_mail && keyword_is(p, kwlen, "ORCPT")) {
		const char *semi = v ? memchr(v, ';', vlen) : NULL;
		bit = 1u << 7;
		if (!semi || semi == v || semi + 1 == v + vlen ||
		    !smtp_valid_xtext(semi + 1, (size_t)(v + vlen - semi - 1)) ||
		    !copy_value(out->orcpt, sizeof(out->orcpt), v, vlen))
			return fail(err, 501, "5.5.4", "Invalid ORCPT value");
		for (i = 0; v + i < semi; i++)
			if (!is_alnum((unsigned char)v[i]) && v[i] != '-')
				return fail(err, 501, "5.5.4", "Invalid ORCPT value");
	} else {
		return fail(err, 555, "5.5.4", "Unsupported parameter");
	}
	if (*seen & bit)
		return fail(err, 501, "5.5.4", "Duplicate parameter");
	*seen |= bit;
	return 0;
}

/* MAIL FROM:<path> [params] and RCPT TO:<path> [params]. */
static int parse_mail_rcpt(const char *p, const char *end, bool is_mail, struct smtp_command *out,
			   struct smtp_error *err)
{
	const char *kw = is_mail ? "FROM:" : "TO:";
	size_t kwlen = strlen(kw);
	unsigned seen = 0;

	if ((size_t)(end - p) < kwlen || strncasecmp(p, kw, kwlen) != 0)
		return fail(err, 501, "5.5.4",
			    is_mail ? "Syntax: MAIL FROM:<address>" : "Syntax: RCPT TO:<address>");
	p += kwlen;
	/* Tolerate "MAIL FROM: <a@b>", which many clients send. */
	while (p < end && *p == ' ')
		p++;
	p = parse_path(p, end, is_mail, out, err);
	if (!p)
		return -1;
	while (p < end) {
		const char *q;
		if (*p != ' ')
			return fail(err, 501, "5.5.4", "Syntax: junk after address");
		while (p < end && *p == ' ')
			p++;
		if (p >= end)
			break;
		for (q = p; q < end && *q != ' '; q++)
			;
		if (parse_param(p, (size_t)(q - p), is_mail, out, &seen, err) < 0)
			return -1;
		p = q;
	}
	if (!is_mail && out->address[0] == '\0')
		return fail(err, 501, "5.1.3", "Empty address not allowed here");
	if (out->address[0]) {
		size_t i, alen = strlen(out->address);
		for (i = 0; i < alen; i++)
			if ((unsigned char)out->address[i] >= 0x80)
				out->address_utf8 = true;
		/* RCPT: SMTPUTF8 belongs to the transaction; the session decides. */
		if (smtp_check_mailbox(out->address, alen, is_mail ? out->smtputf8 : true, err) < 0)
			return -1;
	}
	return 0;
}

static bool is_base64(const char *s, size_t len)
{
	size_t i, pad = 0;

	if (len == 0 || len % 4 != 0)
		return false;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '=') {
			pad++;
			if (pad > 2)
				return false;
		} else if (pad || !(is_alnum(c) || c == '+' || c == '/')) {
			return false;
		}
	}
	return true;
}

static int parse_auth(const char *p, const char *end, struct smtp_command *out,
		      struct smtp_error *err)
{
	const char *q;
	size_t i;

	for (q = p; q < end && *q != ' '; q++)
		;
	if (q == p)
		return fail(err, 501, "5.5.4", "Syntax: AUTH mechanism [initial-response]");
	if ((size_t)(q - p) > SMTP_MECHANISM_MAX)
		return fail(err, 504, "5.5.4", "Unrecognized authentication mechanism");
	for (i = 0; p + i < q; i++) {
		unsigned char c = (unsigned char)p[i];
		if (!is_alnum(c) && c != '-' && c != '_')
			return fail(err, 501, "5.5.4", "Invalid mechanism name");
		out->mechanism[i] = (char)toupper(c);
	}
	out->mechanism[i] = '\0';
	if (q == end)
		return 0;
	q++;
	if (q == end || memchr(q, ' ', (size_t)(end - q)))
		return fail(err, 501, "5.5.4", "Syntax: AUTH mechanism [initial-response]");
	out->has_initial = true;
	if (end - q == 1 && *q == '=') {
		out->initial = q + 1;
		out->initial_len = 0;
		return 0;
	}
	if (!is_base64(q, (size_t)(end - q)))
		return fail(err, 501, "5.5.2", "Invalid base64 in initial response");
	out->initial = q;
	out->initial_len = (size_t)(end - q);
	return 0;
}

/* An optional free-text argument (NOOP, HELP, VRFY): printable, bounded. */
static int parse_text_arg(const char *p, const char *end, bool required, struct smtp_command *out,
			  struct smtp_error *err)
{
	size_t len = (size_t)(end - p), i;

	if (len == 0 && required)
		return fail(err, 501, "5.5.4", "Argument required");
	if (len > SMTP_ARG_MAX)
		return fail(err, 501, "5.5.4", "Argument too long");
	for (i = 0; i < len; i++)
		if ((unsigned char)p[i] < 32 || p[i] == 127)
			return fail(err, 501, "5.5.4", "Control character in argument");
	memcpy(out->arg, p, len);
	out->arg[len] = '\0';
	return 0;
}

int smtp_parse(const char *line, size_t len, struct smtp_command *out, struct smtp_error *err)
{
	const char *end = line + len, *p, *q;
	size_t vlen, i;
	int v;

	memset(out, 0, sizeof(*out));
	out->verb = SMTP_CMD_COUNT;
	if (len == 0)
		return fail(err, 500, "5.5.2", "Empty command");
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];
		if (c == '\0' || c == '\r' || c == '\n')
			return fail(err, 500, "5.5.2", "Invalid character in command");
	}
	for (q = line; q < end && *q != ' '; q++)
		;
	vlen = (size_t)(q - line);
	for (v = 0; v < SMTP_CMD_COUNT; v++)
		if (keyword_is(line, vlen, verb_names[v]))
			break;
	if (v == SMTP_CMD_COUNT)
		return fail(err, 500, "5.5.1", "Command unrecognized");
	out->verb = (enum smtp_verb)v;
	if (out->verb != SMTP_CMD_AUTH && len > SMTP_COMMAND_MAX - 2)
		return fail(err, 500, "5.5.2", "Line too long");
	p = q < end ? q + 1 : q;
	if (q < end && p == end && out->verb != SMTP_CMD_NOOP && out->verb != SMTP_CMD_HELP)
		return fail(err, 501, "5.5.4", "Syntax: trailing space");

	switch (out->verb) {
	case SMTP_CMD_EHLO:
	case SMTP_CMD_HELO:
		if (p == end)
			return fail(err, 501, "5.5.4", "Syntax: EHLO/HELO needs a domain");
		/* RFC 5321 4.1.1.1: a domain or address literal; nothing else. */
		for (q = p; q < end && *q != ' '; q++)
			;
		if (!smtp_valid_helo(p, (size_t)(q - p)))
			return fail(err, 501, "5.5.4", "Invalid domain name");
		memcpy(out->arg, p, (size_t)(q - p));
		out->arg[q - p] = '\0';
		return 0;
	case SMTP_CMD_MAIL:
	case SMTP_CMD_RCPT:
		return parse_mail_rcpt(p, end, out->verb == SMTP_CMD_MAIL, out, err);
	case SMTP_CMD_BDAT:
		for (q = p; q < end && *q != ' '; q++)
			;
		if (!parse_number(p, (size_t)(q - p), &out->chunk_size))
			return fail(err, 501, "5.5.4", "Syntax: BDAT size [LAST]");
		if (q == end)
			return 0;
		if (keyword_is(q + 1, (size_t)(end - q - 1), "LAST")) {
			out->last = true;
			return 0;
		}
		return fail(err, 501, "5.5.4", "Syntax: BDAT size [LAST]");
	case SMTP_CMD_AUTH:
		if (len > SMTP_AUTH_LINE_MAX - 2)
			return fail(err, 500, "5.5.6", "Authentication line too long");
		return parse_auth(p, end, out, err);
	case SMTP_CMD_VRFY:
		return parse_text_arg(p, end, true, out, err);
	case SMTP_CMD_NOOP:
	case SMTP_CMD_HELP:
		return parse_text_arg(p, end, false, out, err);
	case SMTP_CMD_DATA:
	case SMTP_CMD_RSET:
	case SMTP_CMD_QUIT:
	case SMTP_CMD_STARTTLS:
		if (p != end)
			return fail(err, 501, "5.5.4", "Syntax: no arguments allowed");
		return 0;
	case SMTP_CMD_COUNT:
		break;
	}
	return fail(err, 500, "5.5.1", "Command unrecognized");
}
