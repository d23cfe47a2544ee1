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
#ifndef SPARSE_TOKENS
#define SPARSE_TOKENS 1500
#endif
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

/* FNV-1a, continued from H, over the lower-cased (ASCII) bytes of S. */
static uint32_t fnv1a_lower(uint32_t h, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c + 32);
		h ^= c;
		h *= 16777619u;
	}
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
	h = fmix32(fnv1a_lower(h, s, len));
	return h ? h : 1;
}

static pthread_key_t doc_key;
static pthread_once_t doc_once = PTHREAD_ONCE_INIT;

static void byte_class_init(void);

static void doc_key_init(void)
{
	pthread_key_create(&doc_key, free);
	byte_class_init();
}

struct scan_doc *scan_doc_get(struct scan_result *out)
{
	pthread_once(&doc_once, doc_key_init);
	struct scan_doc *d = pthread_getspecific(doc_key);
	bool fresh = !d;
	if (!d) {
		d = malloc(sizeof(*d));
		if (!d || pthread_setspecific(doc_key, d) != 0) {
			free(d);
			return NULL;
		}
	}
	/* Only the set's occupancy needs clearing (names and feats are
	 * written before they are read): the slots the last scan took, or
	 * all of them in a new document. */
	if (fresh)
		memset(d->slot_hash, 0, sizeof(d->slot_hash));
	else
		for (size_t i = 0; i < d->n_feats; i++)
			d->slot_hash[d->feat_slot[i]] = 0;
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

/* Inserts hash H into the set; the slot for its name, or -1 when it was
 * there already or the set is full. */
static long insert_hash(struct scan_doc *d, uint32_t h)
{
	size_t slot = h & (SCAN_SET_SLOTS - 1);
	while (d->slot_hash[slot]) {
		if (d->slot_hash[slot] == h)
			return -1;
		slot = (slot + 1) & (SCAN_SET_SLOTS - 1);
	}
	if (d->n_feats >= SCAN_MAX_FEATURES)
		return -1;
	d->slot_hash[slot] = h;
	d->feat_slot[d->n_feats] = (uint16_t)slot;
	d->fam[d->n_feats] = d->cur_fam;
	d->feats[d->n_feats++] = h;
	d->slot_name[slot] = 0;
	return (long)slot;
}

static unsigned char lower_byte[256];

static void name_append(char *dst, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		dst[i] = (char)lower_byte[(unsigned char)s[i]];
}

/* Keeps the name PREFIX ':' A [SEP B] (lower-cased) of the feature in SLOT. */
static void keep_name(struct scan_doc *d, size_t slot, const char *prefix, const char *a,
		      size_t alen, const char *sep, const char *b, size_t blen)
{
	size_t plen = strlen(prefix), slen = sep ? strlen(sep) : 0;
	size_t total = plen + 1 + alen + (sep ? slen + blen : 0) + 1;
	if (d->names_len + total > SCAN_NAMES_MAX)
		return;
	char *dst = d->names + d->names_len;
	memcpy(dst, prefix, plen);
	dst[plen] = ':';
	size_t o = plen + 1;
	name_append(dst + o, a, alen);
	o += alen;
	if (sep) {
		memcpy(dst + o, sep, slen);
		o += slen;
		name_append(dst + o, b, blen);
		o += blen;
	}
	dst[o] = '\0';
	d->slot_name[slot] = (uint32_t)d->names_len + 1;
	d->names_len += total;
}

/* The family of the features under PREFIX. */
static uint8_t family_of(const char *prefix)
{
	switch (prefix[0]) {
	case 'b':
		return SCAN_FAM_BODY;
	case 's':
		return SCAN_FAM_SUBJECT;
	case 'h':
		return strncmp(prefix, "html", 4) == 0 ? SCAN_FAM_OTHER : SCAN_FAM_HEADER;
	case 'x':
	case 'f':
		return SCAN_FAM_HEADER;
	case 'n':
		return strcmp(prefix, "nurl") == 0 ? SCAN_FAM_OTHER : SCAN_FAM_HEADER;
	case 'a':
		return strcmp(prefix, "auth") == 0 ? SCAN_FAM_HEADER : SCAN_FAM_OTHER;
	default:
		return SCAN_FAM_OTHER;
	}
}

void scan_feat(struct scan_doc *d, const char *prefix, const char *s, size_t len)
{
	d->cur_fam = family_of(prefix);
	long slot = insert_hash(d, scan_hash(prefix, s, len));
	if (slot >= 0)
		keep_name(d, (size_t)slot, prefix, s, len, NULL, NULL, 0);
}

/* FNV-1a of the lower-cased bytes, without the final mix: tokens are
 * hashed once, and their unigram and bigram features derived from it. */
static uint32_t token_hash(const char *s, size_t len)
{
	return fnv1a_lower(2166136261u, s, len);
}

/* Feature hash of a token (or a pair of tokens) under a prefix hash. */
static inline uint32_t derive(uint32_t prefix_hash, uint32_t a, uint32_t b)
{
	uint32_t h = fmix32(prefix_hash ^ fmix32(a * 0x9e3779b1u + b));
	return h ? h : 1;
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

/* Byte classes of the tokenizer: word bytes (letters, digits, every byte
 * of a UTF-8 sequence), and inner punctuation that belongs to a token when
 * a word byte follows ("paypal.com", "can't", "e-mail", "user@host"). */
enum { CL_WORD = 1, CL_DIGIT = 2, CL_UPPER = 4, CL_INNER = 8 };
static unsigned char byte_class[256];

static void byte_class_init(void)
{
	for (int c = 0; c < 256; c++)
		lower_byte[c] = (unsigned char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
	for (int c = 0; c < 256; c++) {
		unsigned char k = 0;
		if ((c >= 'a' && c <= 'z') || c >= 0x80)
			k = CL_WORD;
		else if (c >= 'A' && c <= 'Z')
			k = CL_WORD | CL_UPPER;
		else if (c >= '0' && c <= '9')
			k = CL_WORD | CL_DIGIT;
		else if (c == '.' || c == '-' || c == '\'' || c == '_' || c == '@')
			k = CL_INNER;
		byte_class[c] = k;
	}
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

uint32_t scan_word_hash(const char *prefix, const char *word, size_t len)
{
	return derive(token_hash(prefix, strlen(prefix)), 0, token_hash(word, len));
}

/* Shapes that replace a token's text: numbers by their digit count,
 * over-long tokens by their length in tens. */
static const char *const num_shape[] = {"num0", "num1", "num2", "num3",	 "num4",  "num5", "num6",
					"num7", "num8", "num9", "num10", "num11", "num12"};
static const char *const long_shape[] = {"long30", "long40", "long50",
					 "long60", "long70", "long80"};

void scan_tokenize(struct scan_doc *d, const char *prefix, const char *text, size_t len)
{
	char bigram_prefix[8];
	const char *prev = NULL, *prev2 = NULL; /* previous tokens' text, for names */
	size_t prev_len = 0, prev2_len = 0;
	size_t ntok = 0;
	size_t i = 0;

	snprintf(bigram_prefix, sizeof(bigram_prefix), "%s2", prefix);
	d->cur_fam = family_of(prefix);
	/* Names are kept only where explanations read them (the readable
	 * features of scan.c): copying every name costs time. */
	int names = strcmp(prefix, "b") == 0 || strcmp(prefix, "s") == 0 ||
		    strcmp(prefix, "up") == 0 || strcmp(prefix, "fn") == 0 ||
		    strcmp(prefix, "xm") == 0;
	int pair_names = strcmp(prefix, "b") == 0 || strcmp(prefix, "s") == 0;
	uint32_t ph1 = token_hash(prefix, strlen(prefix)),
		 ph2 = token_hash(bigram_prefix, 1 + strlen(prefix)), ph3 = ph2 ^ 0x5bd1e995u,
		 prev_h = 0, prev2_h = 0;
	while (i < len) {
		while (i < len && !(byte_class[(unsigned char)text[i]] & CL_WORD)) {
			/* Money and exclamation marks are signal on their own. */
			if (text[i] == '$' || text[i] == '!')
				scan_feat(d, prefix, text + i, 1);
			i++;
		}
		size_t start = i;
		int digits = 0, letters = 0;
		/* the token's hash as token_hash() would compute it, on the way */
		uint32_t th = 2166136261u;
		while (i < len) {
			unsigned char c = (unsigned char)text[i];
			unsigned char k = byte_class[c];
			if (k & CL_WORD) {
				if (k & CL_DIGIT)
					digits++;
				else
					letters++;
				th = (th ^ (unsigned char)(k & CL_UPPER ? c + 32 : c)) * 16777619u;
				i++;
			} else if ((k & CL_INNER) && i + 1 < len &&
				   (byte_class[(unsigned char)text[i + 1]] & CL_WORD) &&
				   i > start) {
				th = (th ^ c) * 16777619u;
				i++;
			} else {
				break;
			}
		}
		size_t tlen = i - start;
		if (tlen < TOKEN_MIN)
			continue;
		const char *tok = text + start;
		size_t klen = tlen;
		if (tlen > TOKEN_MAX && letters > 0 && (unsigned char)text[start] >= 0xe0) {
			/* Scripts written without spaces (CJK): pairs of characters. */
			cjk_bigrams(d, prefix, text + start, tlen);
			tok = "cjk";
		} else if (tlen > TOKEN_MAX) {
			tok = long_shape[(tlen > 80 ? 80 : tlen / 10 * 10) / 10 - 3];
		} else if (letters == 0) {
			/* Numbers: keep their shape, not their value. */
			tok = num_shape[digits > 12 ? 12 : digits];
		}
		if (tok != text + start) {
			klen = strlen(tok);
			th = token_hash(tok, klen);
		}
		long slot = insert_hash(d, derive(ph1, 0, th));
		if (slot >= 0 && names)
			keep_name(d, (size_t)slot, prefix, tok, klen, NULL, NULL, 0);
		if (ntok < BIGRAM_TOKENS && prev_len) {
			slot = insert_hash(d, derive(ph2, prev_h, th));
			if (slot >= 0 && pair_names)
				keep_name(d, (size_t)slot, bigram_prefix, prev, prev_len, " ", tok,
					  klen);
		}
		/* Sparse bigram over one word ("click _ here"): survives
		 * words slipped in between. */
		if (ntok < SPARSE_TOKENS && prev2_len) {
			slot = insert_hash(d, derive(ph3, prev2_h, th));
			if (slot >= 0 && pair_names)
				keep_name(d, (size_t)slot, bigram_prefix, prev2, prev2_len, " _ ",
					  tok, klen);
		}
		prev2 = prev;
		prev2_len = prev_len;
		prev2_h = prev_h;
		prev = tok;
		prev_len = klen;
		prev_h = th;
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
