/*
 * scan_html.c - HTML bodies: turns markup into the text a reader sees (for
 * the tokenizer) and pairs every <a href> with its visible text so the URL
 * analysis can spot a link that shows one domain and goes to another.
 *
 * A forgiving single pass, no DOM: malformed markup degrades to text, never
 * to an error. Script and style contents are skipped.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scan/scan_int.h"

#define ANCHOR_TEXT_MAX 512
#define HREF_MAX 2048

struct html_out {
	char *buf;
	size_t len, cap;
};

static void out_byte(struct html_out *o, char c)
{
	if (o->len + 1 < o->cap)
		o->buf[o->len++] = c;
}

static void out_space(struct html_out *o)
{
	if (o->len && o->buf[o->len - 1] != ' ')
		out_byte(o, ' ');
}

/* Writes code point CP as UTF-8 (never longer than the entity it came from). */
static void out_utf8(struct html_out *o, unsigned long cp)
{
	if (cp == 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
		out_byte(o, ' ');
	} else if (cp < 0x80) {
		out_byte(o, (char)cp);
	} else if (cp < 0x800) {
		out_byte(o, (char)(0xc0 | (cp >> 6)));
		out_byte(o, (char)(0x80 | (cp & 0x3f)));
	} else if (cp < 0x10000) {
		out_byte(o, (char)(0xe0 | (cp >> 12)));
		out_byte(o, (char)(0x80 | ((cp >> 6) & 0x3f)));
		out_byte(o, (char)(0x80 | (cp & 0x3f)));
	} else {
		out_byte(o, (char)(0xf0 | (cp >> 18)));
		out_byte(o, (char)(0x80 | ((cp >> 12) & 0x3f)));
		out_byte(o, (char)(0x80 | ((cp >> 6) & 0x3f)));
		out_byte(o, (char)(0x80 | (cp & 0x3f)));
	}
}

/* Decodes the entity at S (after '&'); returns bytes consumed, 0 if none. */
static size_t entity(const char *s, size_t len, struct html_out *o)
{
	/* The markup characters, and the letters and punctuation of Latin
	 * text that HTML mail writes as named entities ("caf&eacute;"). */
	static const struct {
		const char *name;
		unsigned long cp;
	} named[] = {{"amp;", '&'},	 {"lt;", '<'},	     {"gt;", '>'},	{"quot;", '"'},
		     {"apos;", '\''},	 {"nbsp;", ' '},     {"eacute;", 0xe9}, {"egrave;", 0xe8},
		     {"ecirc;", 0xea},	 {"agrave;", 0xe0},  {"aacute;", 0xe1}, {"acirc;", 0xe2},
		     {"ccedil;", 0xe7},	 {"iacute;", 0xed},  {"oacute;", 0xf3}, {"uacute;", 0xfa},
		     {"ntilde;", 0xf1},	 {"auml;", 0xe4},    {"ouml;", 0xf6},	{"uuml;", 0xfc},
		     {"szlig;", 0xdf},	 {"copy;", 0xa9},    {"reg;", 0xae},	{"trade;", 0x2122},
		     {"euro;", 0x20ac},	 {"pound;", 0xa3},   {"mdash;", 0x2014}, {"ndash;", 0x2013},
		     {"rsquo;", 0x2019}, {"lsquo;", 0x2018}, {"ldquo;", 0x201c}, {"rdquo;", 0x201d},
		     {"hellip;", 0x2026}, {"bull;", 0x2022}, {"middot;", 0xb7}, {"shy;", 0}};
	for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++) {
		size_t n = strlen(named[i].name);
		if (len >= n && (s[0] | 0x20) == named[i].name[0] &&
		    strncasecmp(s, named[i].name, n) == 0) {
			/* A soft hyphen splits nothing: "Vi&shy;agra". */
			if (named[i].cp)
				out_utf8(o, named[i].cp);
			return n;
		}
	}
	if (len >= 3 && s[0] == '#') {
		size_t k = 1;
		unsigned long cp = 0;
		int hex = s[1] == 'x' || s[1] == 'X';
		if (hex)
			k++;
		while (k < len && k < 10 && isxdigit((unsigned char)s[k])) {
			if (!hex && !isdigit((unsigned char)s[k]))
				break;
			cp = cp * (hex ? 16 : 10) +
			     (unsigned long)(isdigit((unsigned char)s[k])
						 ? s[k] - '0'
						 : (tolower((unsigned char)s[k]) - 'a' + 10));
			k++;
		}
		if (k < len && s[k] == ';')
			k++;
		/* ASCII survives as itself (obfuscated "&#112;aypal"), the rest
		 * as UTF-8; zero-width characters vanish so they cannot split
		 * a word ("pay&#8203;pal"). */
		if (k < 3 || (hex && k < 4))
			return 0;
		if (cp == 0x200b || cp == 0x200c || cp == 0x200d || cp == 0xad || cp == 0xfeff)
			return k;
		out_utf8(o, cp);
		return k;
	}
	return 0;
}

/* Finds attribute NAME in the tag text [S, S+LEN) and copies its value. */
static int tag_attr(const char *s, size_t len, const char *name, char *out, size_t outlen)
{
	size_t n = strlen(name);
	for (size_t i = 0; i + n < len; i++) {
		if ((s[i] | 0x20) != name[0] || strncasecmp(s + i, name, n) != 0 ||
		    (i && !isspace((unsigned char)s[i - 1])))
			continue;
		size_t k = i + n;
		while (k < len && isspace((unsigned char)s[k]))
			k++;
		if (k >= len || s[k] != '=')
			continue;
		k++;
		while (k < len && isspace((unsigned char)s[k]))
			k++;
		char quote = 0;
		if (k < len && (s[k] == '"' || s[k] == '\''))
			quote = s[k++];
		size_t o = 0;
		while (k < len && o + 1 < outlen) {
			char c = s[k];
			if (quote ? c == quote : (isspace((unsigned char)c) || c == '>'))
				break;
			out[o++] = c;
			k++;
		}
		out[o] = '\0';
		return 0;
	}
	return -1;
}

/* Does the tag's style hide its content (display:none, visibility:hidden)? */
static int tag_hidden(const char *s, size_t len)
{
	char style[256], norm[256];
	if (tag_attr(s, len, "style", style, sizeof(style)) != 0)
		return 0;
	size_t o = 0;
	for (const char *p = style; *p; p++)
		if (!isspace((unsigned char)*p))
			norm[o++] = (char)tolower((unsigned char)*p);
	norm[o] = '\0';
	return strstr(norm, "display:none") || strstr(norm, "visibility:hidden");
}

/* Index after the element NAME that starts its content at I (nested
 * elements of the same name counted), or LEN when it is not closed. */
static size_t skip_element(const char *html, size_t len, size_t i, const char *name, size_t nl)
{
	int depth = 1;
	while (i < len) {
		const char *lt = memchr(html + i, '<', len - i);
		if (!lt)
			return len;
		size_t k = (size_t)(lt - html) + 1;
		int closing = k < len && html[k] == '/';
		if (closing)
			k++;
		if (k + nl <= len && strncasecmp(html + k, name, nl) == 0 &&
		    (k + nl == len || !isalnum((unsigned char)html[k + nl]))) {
			depth += closing ? -1 : 1;
			if (depth == 0) {
				const char *gt = memchr(html + k, '>', len - k);
				return gt ? (size_t)(gt - html) + 1 : len;
			}
		}
		i = k;
	}
	return len;
}

static int inline_tag(const char *name)
{
	static const char *const tags[] = {"b",	     "i",    "u",    "s",     "em",
					   "strong", "font", "span", "small", "big",
					   "sub",    "sup",  "a",    "tt",    "strike"};
	for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]); i++)
		if (strcmp(name, tags[i]) == 0)
			return 1;
	return 0;
}

void scan_html(struct scan_doc *d, const char *html, size_t len)
{
	struct html_out o = {malloc(len + 1), 0, len + 1};
	char href[HREF_MAX];
	int in_anchor = 0;
	size_t anchor_start = 0;
	size_t i = 0;

	if (!o.buf)
		return;
	scan_feat_str(d, "html", "yes");
	while (i < len) {
		char c = html[i];
		if (c == '&') {
			size_t n = entity(html + i + 1, len - i - 1, &o);
			if (n) {
				i += n + 1;
				continue;
			}
			out_byte(&o, c);
			i++;
			continue;
		}
		if (c != '<') {
			out_byte(&o, isspace((unsigned char)c) ? ' ' : c);
			i++;
			continue;
		}
		/* a tag, comment or declaration */
		if (i + 4 <= len && strncmp(html + i, "<!--", 4) == 0) {
			const char *end = NULL;
			for (size_t k = i + 4; k + 3 <= len; k++)
				if (html[k] == '-' && html[k + 1] == '-' && html[k + 2] == '>') {
					end = html + k + 3;
					break;
				}
			i = end ? (size_t)(end - html) : len;
			continue;
		}
		size_t t = i + 1;
		const char *gt = memchr(html + t, '>', len - t);
		size_t tend = gt ? (size_t)(gt - html) : len;
		int closing = t < len && html[t] == '/';
		if (closing)
			t++;
		char name[16];
		size_t nl = 0;
		while (t < tend && nl + 1 < sizeof(name) && isalnum((unsigned char)html[t]))
			name[nl++] = (char)tolower((unsigned char)html[t++]);
		name[nl] = '\0';
		i = gt ? tend + 1 : len;

		if (!closing && (strcmp(name, "script") == 0 || strcmp(name, "style") == 0)) {
			if (name[1] == 'c')
				scan_feat_str(d, "html", "script");
			/* skip to the matching close tag */
			char close[24];
			snprintf(close, sizeof(close), "</%s", name);
			size_t cl = strlen(close);
			size_t k = i;
			while (k + cl <= len) {
				const char *lt = memchr(html + k, '<', len - k);
				if (!lt) {
					k = len;
					break;
				}
				k = (size_t)(lt - html);
				if (k + cl <= len && strncasecmp(html + k, close, cl) == 0)
					break;
				k++;
			}
			i = k + cl <= len ? k : len;
			continue;
		}
		if (!closing && nl && tag_hidden(html + t, tend - t)) {
			/* Text the reader never sees (display:none) is there
			 * for filters: leave it out, and say it was there. */
			scan_feat_str(d, "html", "hidden-text");
			i = skip_element(html, len, i, name, nl);
			continue;
		}
		if (strcmp(name, "a") == 0) {
			if (!closing) {
				if (tag_attr(html + t, tend - t, "href", href, sizeof(href)) == 0) {
					in_anchor = 1;
					anchor_start = o.len;
				}
			} else if (in_anchor) {
				size_t tl = o.len - anchor_start;
				if (tl > ANCHOR_TEXT_MAX)
					tl = ANCHOR_TEXT_MAX;
				scan_url(d, href, strlen(href), o.buf + anchor_start, tl);
				in_anchor = 0;
			}
		} else if (!closing && strcmp(name, "form") == 0) {
			scan_feat_str(d, "html", "form");
		} else if (!closing && strcmp(name, "img") == 0) {
			scan_feat_str(d, "html", "img");
		} else if (!closing && (strcmp(name, "input") == 0)) {
			char type[32];
			if (tag_attr(html + t, tend - t, "type", type, sizeof(type)) == 0 &&
			    strcasecmp(type, "password") == 0)
				scan_feat_str(d, "html", "password-input");
		}
		/* Block elements separate words; inline ones (bold, fonts) do
		 * not: "V<b>iagra</b>" is one word to the reader. */
		if (!inline_tag(name))
			out_space(&o);
	}
	if (in_anchor) {
		size_t tl = o.len - anchor_start;
		scan_url(d, href, strlen(href), o.buf + anchor_start,
			 tl > ANCHOR_TEXT_MAX ? ANCHOR_TEXT_MAX : tl);
	}
	size_t budget =
	    SCAN_MAX_TEXT_BYTES > d->text_bytes ? SCAN_MAX_TEXT_BYTES - d->text_bytes : 0;
	size_t n = o.len < budget ? o.len : budget;
	scan_tokenize(d, "b", o.buf, n);
	d->text_bytes += n;
	free(o.buf);
}
