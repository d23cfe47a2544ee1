/*
 * scan_features.c - the feature set of one message: hashing, a bounded
 * de-duplicating set of feature hashes (with their names kept for
 * explanations), the word/bigram tokenizer, and reasons.
 *
 * Features are binary (present or not): repeated words add nothing, which
 * keeps long repetitive spam from dominating and makes the model linear in
 * a small, bounded set per message (at most SCAN_MAX_FEATURES).
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scan/scan_int.h"

#define TOKEN_MIN 2
#define TOKEN_MAX 30
#define BIGRAM_TOKENS 1500
#define CJK_PAIRS                                                                                  \
	400 /* character pairs per unspaced run */ /* bigrams only from the first tokens of a text \
						    */

static uint32_t fmix32(uint32_t h)
{
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h;
}

/* FNV-1a over PREFIX ':' S, lower-cased, then a final avalanche so that the
 * low bits (the model row) depend on every byte. */
uint32_t scan_hash(const char *prefix, const char *s, size_t len)
{
	uint32_t h = 2166136261u;
	for (const char *p = prefix; *p; p++) {
		h ^= (unsigned char)*p;
		h *= 16777619u;
	}
	h ^= ':';
	h *= 16777619u;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c + 32);
		h ^= c;
		h *= 16777619u;
	}
	h = fmix32(h);
	return h ? h : 1;
}

static pthread_key_t doc_key;
static pthread_once_t doc_once = PTHREAD_ONCE_INIT;

static void doc_key_init(void)
{
	pthread_key_create(&doc_key, free);
}

struct scan_doc *scan_doc_get(struct scan_result *out)
{
	pthread_once(&doc_once, doc_key_init);
	struct scan_doc *d = pthread_getspecific(doc_key);
	if (!d) {
		d = malloc(sizeof(*d));
		if (!d || pthread_setspecific(doc_key, d) != 0) {
			free(d);
			return NULL;
		}
	}
	/* Only the set's occupancy needs clearing: names and feats are
	 * written before they are read. */
	memset(d->slot_hash, 0, sizeof(d->slot_hash));
	d->n_feats = 0;
	d->names_len = 0;
	d->flags = 0;
	d->text_bytes = 0;
	d->n_parts = 0;
	d->n_urls = 0;
	d->n_url_domains = 0;
	d->n_url_hosts = 0;
	d->from_domain[0] = '\0';
	d->out = out;
	return d;
}

static void keep_name(struct scan_doc *d, size_t slot, const char *prefix, const char *s,
		      size_t len)
{
	size_t plen = strlen(prefix);
	d->slot_name[slot] = 0;
	if (d->names_len + plen + 1 + len + 1 > SCAN_NAMES_MAX)
		return;
	char *dst = d->names + d->names_len;
	memcpy(dst, prefix, plen);
	dst[plen] = ':';
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		dst[plen + 1 + i] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
	}
	dst[plen + 1 + len] = '\0';
	d->slot_name[slot] = (uint32_t)d->names_len + 1;
	d->names_len += plen + 1 + len + 1;
}

void scan_feat(struct scan_doc *d, const char *prefix, const char *s, size_t len)
{
	uint32_t h = scan_hash(prefix, s, len);
	size_t slot = h & (SCAN_SET_SLOTS - 1);
	while (d->slot_hash[slot]) {
		if (d->slot_hash[slot] == h)
			return;
		slot = (slot + 1) & (SCAN_SET_SLOTS - 1);
	}
	if (d->n_feats >= SCAN_MAX_FEATURES)
		return;
	d->slot_hash[slot] = h;
	d->feats[d->n_feats++] = h;
	keep_name(d, slot, prefix, s, len);
}

void scan_feat_str(struct scan_doc *d, const char *prefix, const char *s)
{
	scan_feat(d, prefix, s, strlen(s));
}

const char *scan_doc_name(const struct scan_doc *d, uint32_t hash)
{
	size_t slot = hash & (SCAN_SET_SLOTS - 1);
	while (d->slot_hash[slot]) {
		if (d->slot_hash[slot] == hash)
			return d->slot_name[slot] ? d->names + d->slot_name[slot] - 1 : NULL;
		slot = (slot + 1) & (SCAN_SET_SLOTS - 1);
	}
	return NULL;
}

static int is_word_byte(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c >= 0x80;
}

/* Inner punctuation that belongs to a token when a word byte follows
 * ("paypal.com", "can't", "e-mail", "$100"). */
static int is_inner_byte(unsigned char c)
{
	return c == '.' || c == '-' || c == '\'' || c == '_' || c == '@';
}

static size_t utf8_char_len(unsigned char c)
{
	return c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
}

static void cjk_bigrams(struct scan_doc *d, const char *prefix, const char *s, size_t len)
{
	char kprefix[8];
	snprintf(kprefix, sizeof(kprefix), "%sk", prefix);
	size_t i = 0, prev = 0, prev_len = 0;
	for (int pairs = 0; i < len && pairs < CJK_PAIRS; pairs++) {
		size_t cl = utf8_char_len((unsigned char)s[i]);
		if (i + cl > len)
			break;
		if (prev_len)
			scan_feat(d, kprefix, s + prev, prev_len + cl);
		prev = i;
		prev_len = cl;
		i += cl;
	}
}

void scan_tokenize(struct scan_doc *d, const char *prefix, const char *text, size_t len)
{
	char bigram_prefix[8];
	char prev[TOKEN_MAX + 1] = "";
	size_t prev_len = 0;
	size_t ntok = 0;
	size_t i = 0;

	snprintf(bigram_prefix, sizeof(bigram_prefix), "%s2", prefix);
	while (i < len) {
		while (i < len && !is_word_byte((unsigned char)text[i])) {
			/* Money and exclamation marks are signal on their own. */
			if (text[i] == '$' || text[i] == '!')
				scan_feat(d, prefix, text + i, 1);
			i++;
		}
		size_t start = i;
		int digits = 0, letters = 0;
		while (i < len) {
			unsigned char c = (unsigned char)text[i];
			if (is_word_byte(c)) {
				if (c >= '0' && c <= '9')
					digits++;
				else
					letters++;
				i++;
			} else if (is_inner_byte(c) && i + 1 < len &&
				   is_word_byte((unsigned char)text[i + 1]) && i > start) {
				i++;
			} else {
				break;
			}
		}
		size_t tlen = i - start;
		if (tlen < TOKEN_MIN)
			continue;
		char tok[TOKEN_MAX + 1];
		size_t klen;
		if (tlen > TOKEN_MAX && letters > 0 && (unsigned char)text[start] >= 0xe0) {
			/* Scripts written without spaces (CJK): pairs of characters. */
			cjk_bigrams(d, prefix, text + start, tlen);
			klen = (size_t)snprintf(tok, sizeof(tok), "cjk");
		} else if (tlen > TOKEN_MAX) {
			klen = (size_t)snprintf(tok, sizeof(tok), "long%zu",
						tlen > 80 ? 80 : tlen / 10 * 10);
		} else if (letters == 0) {
			/* Numbers: keep their shape, not their value. */
			klen =
			    (size_t)snprintf(tok, sizeof(tok), "num%d", digits > 12 ? 12 : digits);
		} else {
			memcpy(tok, text + start, tlen);
			klen = tlen;
		}
		tok[klen] = '\0';
		scan_feat(d, prefix, tok, klen);
		if (ntok < BIGRAM_TOKENS && prev_len) {
			char pair[2 * TOKEN_MAX + 2];
			memcpy(pair, prev, prev_len);
			pair[prev_len] = ' ';
			memcpy(pair + prev_len + 1, tok, klen);
			scan_feat(d, bigram_prefix, pair, prev_len + 1 + klen);
		}
		memcpy(prev, tok, klen + 1);
		prev_len = klen;
		ntok++;
		if (d->n_feats >= SCAN_MAX_FEATURES)
			return;
	}
}

/* Length of the valid UTF-8 sequence at P (1..4), 0 when invalid. */
static size_t utf8_len(const unsigned char *p)
{
	if (p[0] < 0x80)
		return 1;
	size_t n = (p[0] & 0xe0) == 0xc0   ? 2
		   : (p[0] & 0xf0) == 0xe0 ? 3
		   : (p[0] & 0xf8) == 0xf0 ? 4
					   : 0;
	if (n == 0 || (n == 2 && p[0] < 0xc2) || (n == 4 && p[0] > 0xf4))
		return 0;
	for (size_t i = 1; i < n; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	return n;
}

void scan_clean_text(char *s)
{
	unsigned char *p = (unsigned char *)s;
	while (*p) {
		size_t n = utf8_len(p);
		/* Control characters, invalid UTF-8 and the bidirectional
		 * overrides (U+202A..U+202E, U+2066..U+2069) that would let a
		 * file name reorder the text around it. */
		int bidi = n == 3 && p[0] == 0xe2 &&
			   ((p[1] == 0x80 && p[2] >= 0xaa && p[2] <= 0xae) ||
			    (p[1] == 0x81 && p[2] >= 0xa6 && p[2] <= 0xa9));
		if (n == 0 || (n == 1 && (*p < 0x20 || *p == 0x7f))) {
			*p++ = '?';
		} else if (bidi) {
			p[0] = p[1] = p[2] = '?';
			p += 3;
		} else {
			p += n;
		}
	}
}

static void add_reason(struct scan_doc *d, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void add_reason(struct scan_doc *d, const char *fmt, va_list ap)
{
	struct scan_result *r = d->out;
	if (!r || r->n_reasons >= SCAN_MAX_REASONS)
		return;
	vsnprintf(r->reasons[r->n_reasons], sizeof(r->reasons[0]), fmt, ap);
	scan_clean_text(r->reasons[r->n_reasons]);
	r->n_reasons++;
}

void scan_reason(struct scan_doc *d, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	add_reason(d, fmt, ap);
	va_end(ap);
}

static const char *flag_feature(enum scan_flag f)
{
	switch (f) {
	case SCAN_F_URL_IP:
		return "url-ip";
	case SCAN_F_URL_PUNYCODE:
		return "url-punycode";
	case SCAN_F_URL_LOOKALIKE:
		return "url-lookalike";
	case SCAN_F_LINK_MISMATCH:
		return "link-mismatch";
	case SCAN_F_URL_SHORTENER:
		return "url-shortener";
	case SCAN_F_MANY_DOMAINS:
		return "many-domains";
	case SCAN_F_EXECUTABLE:
		return "executable";
	case SCAN_F_DOUBLE_EXT:
		return "double-ext";
	case SCAN_F_MACRO:
		return "macro";
	case SCAN_F_ENCRYPTED_ARCHIVE:
		return "encrypted-archive";
	case SCAN_F_EICAR:
		return "eicar";
	case SCAN_F_AUTH_FAIL:
		return "auth-fail";
	case SCAN_F_FROM_BRAND:
		return "from-brand";
	case SCAN_F_REPLYTO_MISMATCH:
		return "replyto-mismatch";
	case SCAN_F_MALFORMED:
		return "malformed";
	case SCAN_F_TRUNCATED:
		return "truncated";
	case SCAN_F_BRAND_LINK:
		return "brand-link";
	}
	return "unknown";
}

void scan_flag(struct scan_doc *d, enum scan_flag flag, const char *fmt, ...)
{
	if (d->flags & (uint32_t)flag)
		return;
	d->flags |= (uint32_t)flag;
	scan_feat_str(d, "rule", flag_feature(flag));
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		add_reason(d, fmt, ap);
		va_end(ap);
	}
}
