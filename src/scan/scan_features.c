/*
 * scan_features.c - the feature set of one message: hashing, a bounded
 * de-duplicating set of feature hashes (with their names kept for
 * explanations), the word/bigram tokenizer, and reasons.
 *
 * Features are binary (present or not): repeated words add nothing, which
 * keeps long repetitive spam from dominating and makes the model linear in
 * a small, bounded set per message (at most SCAN_MAX_FEATURES).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scan/scan_int.h"

#define TOKEN_MIN 2
#define TOKEN_MAX 30
#define BIGRAM_TOKENS 4000 /* bigrams only from the first tokens of a text */

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

void scan_doc_init(struct scan_doc *d, struct scan_result *out)
{
	memset(d, 0, sizeof(*d));
	d->out = out;
	d->names = malloc(SCAN_NAMES_MAX);
}

void scan_doc_free(struct scan_doc *d)
{
	free(d->names);
	d->names = NULL;
}

static void keep_name(struct scan_doc *d, size_t slot, const char *prefix, const char *s,
		      size_t len)
{
	size_t plen = strlen(prefix);
	if (!d->names || d->names_len + plen + 1 + len + 1 > SCAN_NAMES_MAX)
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
		if (tlen > TOKEN_MAX) {
			klen = (size_t)snprintf(tok, sizeof(tok), "long%zu", tlen > 80 ? 80 : tlen / 10 * 10);
		} else if (letters == 0) {
			/* Numbers: keep their shape, not their value. */
			klen = (size_t)snprintf(tok, sizeof(tok), "num%d", digits > 12 ? 12 : digits);
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

static void add_reason(struct scan_doc *d, const char *fmt, va_list ap)
{
	struct scan_result *r = d->out;
	if (!r || r->n_reasons >= SCAN_MAX_REASONS)
		return;
	vsnprintf(r->reasons[r->n_reasons], sizeof(r->reasons[0]), fmt, ap);
	/* Reasons end up in JSON and logs: keep them printable ASCII/UTF-8
	 * without control characters. */
	for (char *p = r->reasons[r->n_reasons]; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
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
	case SCAN_F_URL_IP: return "url-ip";
	case SCAN_F_URL_PUNYCODE: return "url-punycode";
	case SCAN_F_URL_LOOKALIKE: return "url-lookalike";
	case SCAN_F_LINK_MISMATCH: return "link-mismatch";
	case SCAN_F_URL_SHORTENER: return "url-shortener";
	case SCAN_F_MANY_DOMAINS: return "many-domains";
	case SCAN_F_EXECUTABLE: return "executable";
	case SCAN_F_DOUBLE_EXT: return "double-ext";
	case SCAN_F_MACRO: return "macro";
	case SCAN_F_ENCRYPTED_ARCHIVE: return "encrypted-archive";
	case SCAN_F_EICAR: return "eicar";
	case SCAN_F_AUTH_FAIL: return "auth-fail";
	case SCAN_F_FROM_BRAND: return "from-brand";
	case SCAN_F_REPLYTO_MISMATCH: return "replyto-mismatch";
	case SCAN_F_MALFORMED: return "malformed";
	case SCAN_F_TRUNCATED: return "truncated";
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
