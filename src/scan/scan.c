/*
 * scan.c - the scanner's public face (scan.h): loading the shipped model,
 * scan_message() (parse, features, model, rules, verdict with reasons),
 * per-user learning, and the formatting of results for storage and headers.
 *
 * Verdict policy: malware is decided by rules (EICAR, programs, double
 * extensions, macro-enabled Office files), never by the statistical model.
 * Otherwise the model gives P(ham), P(spam), P(phishing) for the message;
 * when P(ham) falls under the model's threshold the message is spam or
 * phishing, whichever is likelier; a model with a phishing cut also calls
 * it phishing when log(P(ham) / P(phishing)) is under that cut
 * (scan_model_junk; both chosen by cross-validation, scan_train.c).
 *
 * Model lookup when no path is configured (first that exists wins):
 *   1. $POSTERN_SCAN_MODEL
 *   2. PKGDATADIR/postern-scan.model   (installed by make install)
 *   3. POSTERN_SRCDIR/data/postern-scan.model   (the source tree, for the build tree)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "scan/scan_int.h"
#include "store/store.h"

#define MODEL_FILE "postern-scan.model"
#define LEARN_ROUNDS 24
#define LEARN_STEP 2.0
#define EXPLAIN_TOP 3

const char *scan_verdict_name(enum scan_verdict v)
{
	switch (v) {
	case SCAN_CLEAN:
		return "clean";
	case SCAN_SPAM:
		return "spam";
	case SCAN_PHISHING:
		return "phishing";
	case SCAN_MALWARE:
		return "malware";
	}
	return "clean";
}

int scan_verdict_parse(const char *name, enum scan_verdict *out)
{
	static const enum scan_verdict all[] = {SCAN_CLEAN, SCAN_SPAM, SCAN_PHISHING, SCAN_MALWARE};
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		if (strcmp(name, scan_verdict_name(all[i])) == 0) {
			*out = all[i];
			return 0;
		}
	}
	if (strcmp(name, "ham") == 0 || strcmp(name, "phish") == 0) {
		*out = name[0] == 'h' ? SCAN_CLEAN : SCAN_PHISHING;
		return 0;
	}
	return -1;
}

int scan_model_default_path(char *out, size_t outlen)
{
	const char *env = getenv("POSTERN_SCAN_MODEL");
	if (env && *env) {
		snprintf(out, outlen, "%s", env);
		return 0;
	}
	const char *candidates[] = {
	    PKGDATADIR "/" MODEL_FILE,
#ifdef POSTERN_SRCDIR
	    POSTERN_SRCDIR "/data/" MODEL_FILE,
#endif
	};
	for (size_t i = 0; i < sizeof(candidates) / sizeof(candidates[0]); i++) {
		if (access(candidates[i], R_OK) == 0) {
			snprintf(out, outlen, "%s", candidates[i]);
			return 0;
		}
	}
	snprintf(out, outlen, "%s", candidates[0]);
	return -1;
}

int scan_model_load(const char *path, char *err, size_t errlen)
{
	char found[4096];
	if (!path || !*path) {
		if (scan_model_default_path(found, sizeof(found)) != 0) {
			snprintf(
			    err, errlen,
			    "no scan model found (set [scan] model_file or POSTERN_SCAN_MODEL; "
			    "looked for %s)",
			    found);
			return -1;
		}
		path = found;
	}
	struct scan_model *m;
	if (scan_model_read(path, &m, err, errlen) != 0)
		return -1;
	scan_gmime_init();
	scan_model_set(m);
	return 0;
}

const char *scan_model_version(void)
{
	const struct scan_model *m = scan_model_current();
	return m ? m->version : NULL;
}

static int load_delta(struct store *st, int64_t user_id, struct scan_delta *delta)
{
	unsigned char *blob = NULL;
	size_t len = 0;
	memset(delta, 0, sizeof(*delta));
	if (!st || user_id <= 0)
		return -1;
	if (store_user_data_get(st, user_id, "scan_model", &blob, &len) != 0 || !blob)
		return -1;
	int rc = scan_delta_decode(blob, len, delta);
	free(blob);
	return rc;
}

/* Phishing evidence the corpus cannot teach well (it is rare there but
 * unambiguous): extra log-odds for the phishing class. Measured in
 * bench/RESULTS.md: no ham of the test part carries these flags. */
#define RULE_LOOKALIKE_LOGIT 3.0
#define RULE_BRAND_LINK_LOGIT 3.0
#define RULE_FROM_BRAND_LOGIT 1.5

void scan_apply_rules(uint32_t flags, double p[SCAN_NCLASS])
{
	double bonus = 0;
	if (flags & SCAN_F_URL_LOOKALIKE)
		bonus += RULE_LOOKALIKE_LOGIT;
	if (flags & SCAN_F_BRAND_LINK)
		bonus += RULE_BRAND_LINK_LOGIT;
	if (flags & SCAN_F_FROM_BRAND)
		bonus += RULE_FROM_BRAND_LOGIT;
	if (bonus == 0)
		return;
	p[SCAN_CLASS_PHISH] *= exp(bonus);
	double sum = p[0] + p[1] + p[2];
	for (int c = 0; c < SCAN_NCLASS; c++)
		p[c] /= sum;
}

static int is_malware(uint32_t flags)
{
	return (flags & (SCAN_F_EICAR | SCAN_F_EXECUTABLE | SCAN_F_DOUBLE_EXT | SCAN_F_MACRO)) != 0;
}

/* Features a person can read as evidence, by name prefix; structural ones
 * (header names, content types, counts) weigh in but explain nothing. */
static const struct {
	const char *prefix;
	const char *label;
} readable[] = {
    {"b:", "word"},	    {"b2:", "phrase"},	       {"bk:", "text"},
    {"s:", "subject word"}, {"s2:", "subject phrase"}, {"up:", "link path"},
    {"ud:", "link domain"}, {"fd:", "sender domain"},  {"fn:", "sender name"},
    {"xm:", "mailer"},
};

static const char *readable_label(const char *name, const char **text)
{
	for (size_t i = 0; i < sizeof(readable) / sizeof(readable[0]); i++) {
		size_t pl = strlen(readable[i].prefix);
		if (strncmp(name, readable[i].prefix, pl) == 0) {
			*text = name + pl;
			return readable[i].label;
		}
	}
	return NULL;
}

/* Names the readable features that pushed hardest toward class K. */
static void explain(const struct scan_doc *d, const struct scan_model *m,
		    const struct scan_delta *delta, int k, struct scan_result *out)
{
	uint32_t mask = (1u << m->bits) - 1;
	const char *best[EXPLAIN_TOP] = {NULL};
	float best_w[EXPLAIN_TOP] = {0};
	for (size_t i = 0; i < d->n_feats; i++) {
		uint32_t row = d->feats[i] & mask;
		const float *w = m->w + (size_t)row * SCAN_NCLASS;
		float v = w[k] - w[SCAN_CLASS_HAM];
		const float *dw = delta ? scan_delta_find(delta, row) : NULL;
		if (dw)
			v += dw[k] - dw[SCAN_CLASS_HAM];
		v *= m->famw[d->fam[i]];
		if (v <= best_w[EXPLAIN_TOP - 1])
			continue;
		const char *name = scan_doc_name(d, d->feats[i]), *text;
		if (!name || !readable_label(name, &text))
			continue;
		for (int j = 0; j < EXPLAIN_TOP; j++) {
			if (v > best_w[j]) {
				memmove(best + j + 1, best + j,
					(EXPLAIN_TOP - 1 - (size_t)j) * sizeof(*best));
				memmove(best_w + j + 1, best_w + j,
					(EXPLAIN_TOP - 1 - (size_t)j) * sizeof(*best_w));
				best[j] = name;
				best_w[j] = v;
				break;
			}
		}
	}
	char list[224] = "";
	size_t o = 0;
	for (int j = 0; j < EXPLAIN_TOP && best[j]; j++) {
		const char *text, *label = readable_label(best[j], &text);
		int n = snprintf(list + o, sizeof(list) - o, "%s%s \"%.40s\"", o ? ", " : "", label,
				 text);
		if (n < 0 || (size_t)n >= sizeof(list) - o)
			break;
		o += (size_t)n;
	}
	if (o && out->n_reasons < SCAN_MAX_REASONS) {
		snprintf(out->reasons[out->n_reasons], sizeof(out->reasons[0]),
			 "strongest evidence: %s", list);
		scan_clean_text(out->reasons[out->n_reasons++]);
	}
}

void scan_message(struct store *st, const unsigned char *msg, size_t len,
		  const struct scan_input *in, struct scan_result *out)
{
	memset(out, 0, sizeof(*out));
	const struct scan_model *m = scan_model_current();
	snprintf(out->model_version, sizeof(out->model_version), "%s",
		 m ? m->version : "rules-only");

	struct scan_doc *d = scan_doc_get(out);
	if (!d) {
		/* Cannot scan: let the mail through but say so. */
		out->verdict = SCAN_CLEAN;
		snprintf(out->reasons[out->n_reasons++], sizeof(out->reasons[0]),
			 "not scanned: out of memory");
		return;
	}
	if (!msg)
		len = 0;
	scan_parse(d, msg ? msg : (const unsigned char *)"", len, in);

	if (is_malware(d->flags)) {
		out->verdict = SCAN_MALWARE;
		out->score = 1.0;
		out->confidence = (d->flags & SCAN_F_EICAR) ? 1.0 : 0.95;
		return;
	}
	if (!m) {
		out->verdict = SCAN_CLEAN;
		scan_reason(d, "no statistical model loaded: rules only");
		return;
	}

	struct scan_delta delta;
	int have_delta = in && load_delta(st, in->user_id, &delta) == 0;
	double p[SCAN_NCLASS];
	scan_model_score(m, have_delta ? &delta : NULL, d->feats, d->fam, d->n_feats, p);
	scan_apply_rules(d->flags, p);
	int k = scan_model_junk(m, p);
	if (k != SCAN_CLASS_HAM) {
		out->verdict = k == SCAN_CLASS_PHISH ? SCAN_PHISHING : SCAN_SPAM;
		out->confidence =
		    p[k] / (p[SCAN_CLASS_SPAM] + p[SCAN_CLASS_PHISH]) * (1 - p[SCAN_CLASS_HAM]);
		scan_reason(d, "model%s: %s probability %.3f (ham %.3f)",
			    have_delta ? " with this user's training" : "",
			    scan_verdict_name(out->verdict), p[k], p[SCAN_CLASS_HAM]);
		explain(d, m, have_delta ? &delta : NULL, k, out);
	} else {
		out->verdict = SCAN_CLEAN;
		out->confidence = p[SCAN_CLASS_HAM];
		if (out->n_reasons == 0)
			scan_reason(d, "model%s: ham probability %.3f",
				    have_delta ? " with this user's training" : "",
				    p[SCAN_CLASS_HAM]);
	}
	out->score = 1.0 - p[SCAN_CLASS_HAM];
	if (have_delta)
		scan_delta_free(&delta);
}

int scan_extract(const unsigned char *msg, size_t len, uint32_t bits, uint32_t **rows,
		 uint8_t **fam, size_t *n, uint32_t *flags)
{
	struct scan_result scratch;
	memset(&scratch, 0, sizeof(scratch));
	struct scan_doc *d = scan_doc_get(&scratch);
	if (!d)
		return -1;
	scan_parse(d, msg, len, NULL);
	*rows = malloc((d->n_feats ? d->n_feats : 1) * sizeof(**rows));
	if (!*rows) {
		return -1;
	}
	if (fam) {
		*fam = malloc(d->n_feats ? d->n_feats : 1);
		if (!*fam) {
			free(*rows);
			return -1;
		}
		memcpy(*fam, d->fam, d->n_feats);
	}
	uint32_t mask = (1u << bits) - 1;
	for (size_t i = 0; i < d->n_feats; i++)
		(*rows)[i] = d->feats[i] & mask;
	*n = d->n_feats;
	if (flags)
		*flags = d->flags;
	int malware = is_malware(d->flags);
	return malware;
}

int scan_learn(struct store *st, int64_t user_id, const unsigned char *msg, size_t len,
	       enum scan_verdict label)
{
	const struct scan_model *m = scan_model_current();
	if (!st || user_id <= 0 || !m || label == SCAN_MALWARE)
		return -1;
	int target = label == SCAN_CLEAN  ? SCAN_CLASS_HAM
		     : label == SCAN_SPAM ? SCAN_CLASS_SPAM
					  : SCAN_CLASS_PHISH;
	uint32_t *feats;
	size_t n;
	/* Rows, not hashes: scoring masks hashes to rows, and rows mask to themselves. */
	uint32_t flags;
	uint8_t *fam;
	if (scan_extract(msg, len, m->bits, &feats, &fam, &n, &flags) < 0)
		return -1;
	struct scan_delta delta;
	if (load_delta(st, user_id, &delta) != 0)
		memset(&delta, 0, sizeof(delta));

	/* Train until this user's model puts the message where the user did,
	 * with a margin; each round moves the logits by at most LEARN_STEP. */
	int rc = 0;
	double scale = n && m->norm_sqrt ? sqrt((double)n) : 1.0;
	for (int round = 0; round < LEARN_ROUNDS; round++) {
		double p[SCAN_NCLASS];
		scan_model_score(m, &delta, feats, fam, n, p);
		scan_apply_rules(flags, p);
		int ok = target == SCAN_CLASS_HAM
			     ? p[SCAN_CLASS_HAM] >= m->threshold + 0.2 &&
				   (!m->has_phish_cut ||
				    p[SCAN_CLASS_HAM] > p[SCAN_CLASS_PHISH] * exp(m->phish_cut + 1))
			     : p[SCAN_CLASS_HAM] < m->threshold - 0.2 && p[target] >= p[3 - target];
		if (ok)
			break;
		for (size_t i = 0; i < n && rc == 0; i++) {
			float *row = scan_delta_row(&delta, feats[i]);
			if (!row) {
				rc = -1;
				break;
			}
			for (int c = 0; c < SCAN_NCLASS; c++)
				row[c] += (float)(LEARN_STEP * ((c == target) - p[c]) *
						  m->famw[fam[i]] / scale);
		}
		if (rc)
			break;
	}
	free(feats);
	free(fam);
	if (rc == 0) {
		unsigned char *blob;
		size_t blen;
		rc = scan_delta_encode(&delta, &blob, &blen);
		if (rc == 0) {
			rc = store_user_data_put(st, user_id, "scan_model", blob, blen);
			free(blob);
		}
	}
	scan_delta_free(&delta);
	return rc;
}

/* JSON string body of S (without quotes) appended to BUF at *O. */
static void json_escape(char *buf, size_t cap, size_t *o, const char *s)
{
	for (; *s && *o + 8 < cap; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			buf[(*o)++] = '\\';
			buf[(*o)++] = (char)c;
		} else if (c < 0x20) {
			*o += (size_t)snprintf(buf + *o, cap - *o, "\\u%04x", c);
		} else {
			buf[(*o)++] = (char)c;
		}
	}
}

char *scan_reasons_json(const struct scan_result *r)
{
	size_t cap = 16 + r->n_reasons * (6 * sizeof(r->reasons[0]) + 4);
	char *buf = malloc(cap);
	if (!buf)
		return NULL;
	size_t o = 0;
	buf[o++] = '[';
	for (size_t i = 0; i < r->n_reasons; i++) {
		if (i)
			buf[o++] = ',';
		buf[o++] = '"';
		json_escape(buf, cap, &o, r->reasons[i]);
		buf[o++] = '"';
	}
	buf[o++] = ']';
	buf[o] = '\0';
	return buf;
}

int scan_format_headers(const struct scan_result *r, char *buf, size_t len)
{
	int n = snprintf(buf, len,
			 "X-Spam-Status: %s, verdict=%s score=%.3f model=%s\r\n"
			 "X-Spam-Score: %.3f\r\n",
			 r->verdict == SCAN_CLEAN ? "No" : "Yes", scan_verdict_name(r->verdict),
			 r->score, r->model_version, r->score);
	if (n < 0 || (size_t)n >= len)
		return -1;
	if (r->verdict == SCAN_PHISHING || r->verdict == SCAN_MALWARE) {
		/* Reasons were cleaned of control characters when recorded, so
		 * they cannot break out of the header line. */
		int m = snprintf(buf + n, len - (size_t)n,
				 "X-Postern-Warning: this message looks like %s%s%.200s\r\n",
				 r->verdict == SCAN_PHISHING ? "phishing" : "malware",
				 r->n_reasons ? ": " : "", r->n_reasons ? r->reasons[0] : "");
		if (m < 0 || (size_t)m >= len - (size_t)n)
			return -1;
		n += m;
	}
	return n;
}
