/*
 * scan_int.h - pieces shared by the files of the scanner (src/scan). Not for
 * other layers: they use scan.h.
 *
 * A scan runs in three steps: scan_parse.c walks the MIME tree (GMime) and
 * hands decoded UTF-8 text, HTML, headers and attachments to the feature
 * extractors (scan_features.c, scan_html.c, scan_url.c, scan_attach.c), which
 * fill a struct scan_doc: a bounded set of hashed features plus heuristic
 * findings with human-readable reasons. scan_model.c scores the features with
 * a linear model (global weights plus optional per-user deltas).
 */
#ifndef POSTERN_SCAN_INT_H
#define POSTERN_SCAN_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scan/scan.h"

/* ---- documented caps: every scan is bounded in time and memory ---- */
#define SCAN_MAX_PARSE_BYTES (8u * 1024 * 1024) /* bytes handed to the MIME parser */
#define SCAN_MAX_TEXT_BYTES (64u * 1024)	/* decoded text tokenized per message */
#define SCAN_MAX_PART_BYTES (4u * 1024 * 1024)	/* decoded bytes inspected per part */
#define SCAN_MAX_DEPTH 32			/* MIME nesting walked */
#define SCAN_MAX_MULTIPARTS 200			/* "multipart/" seen before giving up on MIME */
#define SCAN_MAX_PARTS 256			/* leaf parts inspected */
#define SCAN_MAX_FEATURES 8192			/* distinct features per message */
#define SCAN_MAX_URLS 128			/* URLs analysed per message */
#define SCAN_MAX_HEADER_BYTES 4096		/* per header value tokenized */

/* Classes of the statistical model (malware is decided by rules only). */
enum scan_class { SCAN_CLASS_HAM = 0, SCAN_CLASS_SPAM, SCAN_CLASS_PHISH, SCAN_NCLASS };

/* Feature families, by prefix: body text, subject, headers, the rest
 * (URLs, attachments, rules, MIME structure). */
enum scan_family {
	SCAN_FAM_BODY = 0,
	SCAN_FAM_SUBJECT,
	SCAN_FAM_HEADER,
	SCAN_FAM_OTHER,
	SCAN_NFAM
};

/* Heuristic findings: each is also a model feature so its weight is learned. */
enum scan_flag {
	SCAN_F_URL_IP = 1u << 0,
	SCAN_F_URL_PUNYCODE = 1u << 1,
	SCAN_F_URL_LOOKALIKE = 1u << 2,
	SCAN_F_LINK_MISMATCH = 1u << 3,
	SCAN_F_URL_SHORTENER = 1u << 4,
	SCAN_F_MANY_DOMAINS = 1u << 5,
	SCAN_F_EXECUTABLE = 1u << 6,
	SCAN_F_DOUBLE_EXT = 1u << 7,
	SCAN_F_MACRO = 1u << 8,
	SCAN_F_ENCRYPTED_ARCHIVE = 1u << 9,
	SCAN_F_EICAR = 1u << 10,
	SCAN_F_AUTH_FAIL = 1u << 11,
	SCAN_F_FROM_BRAND = 1u << 12,
	SCAN_F_REPLYTO_MISMATCH = 1u << 13,
	SCAN_F_MALFORMED = 1u << 14,
	SCAN_F_TRUNCATED = 1u << 15,
	SCAN_F_BRAND_LINK = 1u << 16, /* link shows a brand or goes to an IP, but leads elsewhere */
};

#define SCAN_SET_SLOTS 16384 /* open addressing set of features, 2x the cap */
_Static_assert(SCAN_SET_SLOTS <= 65536, "feat_slot holds a slot in 16 bits");
#define SCAN_NAMES_MAX (64u * 1024) /* bytes of feature names kept for reasons */

struct scan_doc {
	uint32_t feats[SCAN_MAX_FEATURES]; /* distinct feature hashes, in order seen */
	uint8_t fam[SCAN_MAX_FEATURES];	   /* family of each feature (enum scan_family) */
	size_t n_feats;
	uint8_t cur_fam; /* family of the features being added */
	/* slot of each feature in slot_hash: every feature enters through
	 * that set, so these are the slots to clear for the next scan */
	uint16_t feat_slot[SCAN_MAX_FEATURES];
	uint32_t slot_hash[SCAN_SET_SLOTS]; /* 0 = empty */
	uint32_t slot_name[SCAN_SET_SLOTS]; /* offset+1 into names, 0 = none */
	char names[SCAN_NAMES_MAX];	    /* arena of NUL-terminated feature names */
	size_t names_len;

	uint32_t flags;
	size_t text_bytes; /* decoded text tokenized so far */
	size_t n_parts;
	size_t n_urls;
	char url_domains[SCAN_MAX_URLS][64]; /* distinct registered domains */
	uint32_t url_hosts[SCAN_MAX_URLS];   /* hashes of hosts already judged */
	size_t n_url_hosts;
	size_t n_url_domains;
	char from_domain[256];
	struct scan_result *out; /* reasons go here */
};

/* ---- scan_features.c ---- */
uint32_t scan_hash(const char *prefix, const char *s, size_t len);
/* The calling thread's document, emptied, reasons going to OUT; NULL when
 * out of memory. Reused across scans (it is large), freed at thread exit. */
struct scan_doc *scan_doc_get(struct scan_result *out);
/* Adds feature PREFIX+S (S of LEN bytes). */
void scan_feat(struct scan_doc *d, const char *prefix, const char *s, size_t len);
void scan_feat_str(struct scan_doc *d, const char *prefix, const char *s);
/* Tokenizes UTF-8 TEXT with PREFIX ("b" body, "s" subject): words, pairs
 * of adjacent words and pairs over one word ("a _ c"). A token is hashed
 * once; its features' hashes are derived from that hash and the prefix. */
void scan_tokenize(struct scan_doc *d, const char *prefix, const char *text, size_t len);
/* The feature hash scan_tokenize gives the word WORD under PREFIX. */
uint32_t scan_word_hash(const char *prefix, const char *word, size_t len);
/* Looks up the text of a feature hash kept for explanations; NULL if none. */
const char *scan_doc_name(const struct scan_doc *d, uint32_t hash);
/* Makes S safe to show, log and store as JSON: invalid UTF-8, control
 * characters and bidirectional overrides become '?'. */
void scan_clean_text(char *s);
void scan_reason(struct scan_doc *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Sets FLAG once: adds its feature and (the first time) REASON. */
void scan_flag(struct scan_doc *d, enum scan_flag flag, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- scan_parse.c ---- */
void scan_parse(struct scan_doc *d, const unsigned char *msg, size_t len,
		const struct scan_input *in);
void scan_gmime_init(void);

/* ---- scan_html.c ---- */
/* Converts HTML to text (tokenized), analyses every <a href> and its text. */
void scan_html(struct scan_doc *d, const char *html, size_t len);

/* ---- scan_url.c ---- */
/* Analyses one URL; LINK_TEXT (may be NULL) is what the reader sees. */
void scan_url(struct scan_doc *d, const char *url, size_t len, const char *link_text,
	      size_t text_len);
/* Finds URLs in plain text and analyses them. */
void scan_text_urls(struct scan_doc *d, const char *text, size_t len);
/* Registered domain (last two labels, three under known second-level
 * suffixes) of HOST into OUT. */
void scan_registered_domain(const char *host, char *out, size_t outlen);
/* When HOST imitates a well-known brand, returns the brand's domain. */
const char *scan_lookalike(const char *host);
/* When NAME (a display name) names a brand, returns the brand's domain. */
const char *scan_brand_in_text(const char *name);
void scan_after_urls(struct scan_doc *d);

/* ---- scan_attach.c ---- */
void scan_attachment(struct scan_doc *d, const char *filename, const char *declared_type,
		     const unsigned char *data, size_t len);
bool scan_is_eicar(const unsigned char *data, size_t len);

/* ---- scan_model.c ---- */
struct scan_model {
	char version[64];
	char algo[8]; /* "lr" or "nb" */
	unsigned bits;
	int norm_sqrt; /* features scaled by 1/sqrt(n) (lr) or not (nb) */
	float bias[SCAN_NCLASS];
	float *w;	  /* (1 << bits) * SCAN_NCLASS, row-major */
	double threshold; /* P(ham) below this: not clean */
	/* Separate phishing cut: when HAS_PHISH_CUT, a message is also phishing
	 * when log(P(ham) / P(phishing)) < PHISH_CUT (scan_model_junk). */
	bool has_phish_cut;
	double phish_cut;
	/* Weight of each feature family (enum scan_family) in the sum: a
	 * feature of family F counts famw[F] times. HAS_FAMW when one differs
	 * from 1 (model format 2). */
	float famw[SCAN_NFAM];
	bool has_famw;
};

/* Sparse per-user deltas on top of the global model. */
struct scan_delta {
	uint32_t *idx;
	float *w; /* n * SCAN_NCLASS */
	size_t n, cap;
	float bias[SCAN_NCLASS];
};

struct scan_model *scan_model_new(unsigned bits, const char *algo);
void scan_model_free(struct scan_model *m);
int scan_model_read(const char *path, struct scan_model **out, char *err, size_t errlen);
int scan_model_write(const struct scan_model *m, const char *path, char *err, size_t errlen);
/* Class probabilities of the N features FEATS (hashes or rows), whose
 * families are FAM (NULL: all weighted 1). */
void scan_model_score(const struct scan_model *m, const struct scan_delta *delta,
		      const uint32_t *feats, const uint8_t *fam, size_t n,
		      double prob[SCAN_NCLASS]);
/* Sets the family weights of M to W. */
void scan_model_set_famw(struct scan_model *m, const float w[SCAN_NFAM]);
const struct scan_model *scan_model_current(void);
/* Adds the rule evidence (look-alike links, brand impersonation) of FLAGS
 * to class probabilities P. */
void scan_apply_rules(uint32_t flags, double p[SCAN_NCLASS]);
/* The verdict of class probabilities P under M: SCAN_CLASS_HAM (clean),
 * SCAN_CLASS_SPAM or SCAN_CLASS_PHISH. Not clean when P(ham) is under the
 * threshold (then the likelier of spam and phishing), or phishing when the
 * phishing cut says so. */
int scan_model_junk(const struct scan_model *m, const double p[SCAN_NCLASS]);
/* Replaces the process-wide model (takes ownership). */
void scan_model_set(struct scan_model *m);
size_t scan_model_rows(const struct scan_model *m);

int scan_delta_decode(const unsigned char *blob, size_t len, struct scan_delta *out);
int scan_delta_encode(const struct scan_delta *d, unsigned char **blob, size_t *len);
void scan_delta_free(struct scan_delta *d);
float *scan_delta_row(struct scan_delta *d, uint32_t idx);
const float *scan_delta_find(const struct scan_delta *d, uint32_t idx);

/* Feature extraction for training and learning: the model rows of the
 * distinct features of MSG into *ROWS (malloc'd), their families into *FAM
 * (malloc'd; FAM may be NULL) and its rule flags into *FLAGS (may be
 * NULL). Returns 1 when the rules say malware, 0 otherwise, -1 on error. */
int scan_extract(const unsigned char *msg, size_t len, uint32_t bits, uint32_t **rows,
		 uint8_t **fam, size_t *n, uint32_t *flags);

#endif
