/*
 * scan_model.c - the linear model over hashed features: file format, load
 * and save, the process-wide current model, scoring, and per-user deltas.
 *
 * Both trainers (scan_train.c: logistic regression and naive Bayes) produce
 * the same thing: per class a bias and one weight per hash bucket, so
 * scoring is "sum the weights of the features present, softmax".
 *
 * File format (version 1, or 2 with family weights), text header then
 * binary rows then a checksum:
 *   POSTERN-SCAN-MODEL 1|2
 *   version=postern-lr-<12 hex>     identifies the weights (stored with every scan result)
 *   algo=lr|nb
 *   bits=<B>                        2^B hash buckets
 *   norm=sqrt|none                  feature scaling: 1/sqrt(features present) or 1
 *   threshold=<t>                   P(ham) under t: not clean
 *   phish_cut=<c>                   optional: log(P(ham)/P(phishing)) under c: phishing
 *   famw=<b> <s> <h> <o>            version 2 only, required there: weight of the body,
 *                                   subject, header and other features (enum scan_family)
 *   bias=<b0> <b1> <b2>             ham, spam, phishing
 *   scale=<s>                       weight = int16 * s
 *   rows=<N>
 *   <empty line>
 *   N x { uint32 LE bucket, 3 x int16 LE weight }   buckets ascending, zero rows left out
 *   sha256=<hex of every byte before this line>
 * Only non-zero rows are stored, so the file stays compact. A model with
 * family weights other than 1 is written as version 2, which older
 * Postern refuses (it would score such a model wrongly); version 1 files
 * still load, with every family weighted 1.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scan/scan_int.h"
#include "util/i18n.h"

#define MODEL_MAGIC "POSTERN-SCAN-MODEL 1\n"
#define MODEL_MAGIC2 "POSTERN-SCAN-MODEL 2\n"
#define MODEL_MAX_BITS 24
#define MODEL_MAX_FILE (64u * 1024 * 1024)
#define ROW_BYTES (4 + 2 * SCAN_NCLASS)
#define DELTA_MAGIC "PSUD1"
#define DELTA_MAX_ROWS 65536

struct scan_model *scan_model_new(unsigned bits, const char *algo)
{
	struct scan_model *m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->bits = bits;
	snprintf(m->algo, sizeof(m->algo), "%s", algo);
	m->threshold = 0.5;
	m->norm_sqrt = strcmp(algo, "nb") != 0;
	for (int f = 0; f < SCAN_NFAM; f++)
		m->famw[f] = 1.0f;
	m->w = calloc((size_t)1 << bits, SCAN_NCLASS * sizeof(float));
	if (!m->w) {
		free(m);
		return NULL;
	}
	return m;
}

void scan_model_set_famw(struct scan_model *m, const float w[SCAN_NFAM])
{
	m->has_famw = false;
	for (int f = 0; f < SCAN_NFAM; f++) {
		m->famw[f] = w[f];
		m->has_famw |= w[f] != 1.0f;
	}
}

void scan_model_free(struct scan_model *m)
{
	if (!m)
		return;
	free(m->w);
	free(m);
}

size_t scan_model_rows(const struct scan_model *m)
{
	size_t rows = 0, nb = (size_t)1 << m->bits;
	for (size_t i = 0; i < nb; i++) {
		const float *r = m->w + i * SCAN_NCLASS;
		if (r[0] != 0 || r[1] != 0 || r[2] != 0)
			rows++;
	}
	return rows;
}

static void put_u32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

static uint32_t get_u32(const unsigned char *p)
{
	return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_i16(unsigned char *p, int16_t v)
{
	uint16_t u = (uint16_t)v;
	p[0] = (unsigned char)u;
	p[1] = (unsigned char)(u >> 8);
}

static int16_t get_i16(const unsigned char *p)
{
	return (int16_t)(uint16_t)(p[0] | (uint16_t)p[1] << 8);
}

int scan_model_write(const struct scan_model *m, const char *path, char *err, size_t errlen)
{
	size_t nb = (size_t)1 << m->bits;
	size_t rows = scan_model_rows(m);
	float maxw = 0;
	for (size_t i = 0; i < nb * SCAN_NCLASS; i++)
		if (fabsf(m->w[i]) > maxw)
			maxw = fabsf(m->w[i]);
	double scale = maxw > 0 ? maxw / 32767.0 : 1.0;

	unsigned char *bin = malloc(rows * ROW_BYTES + 1);
	if (!bin) {
		snprintf(err, errlen, "%s", _("out of memory"));
		return -1;
	}
	size_t o = 0;
	for (size_t i = 0; i < nb; i++) {
		const float *r = m->w + i * SCAN_NCLASS;
		if (r[0] == 0 && r[1] == 0 && r[2] == 0)
			continue;
		put_u32(bin + o, (uint32_t)i);
		for (int c = 0; c < SCAN_NCLASS; c++)
			put_i16(bin + o + 4 + 2 * c, (int16_t)lrint(r[c] / scale));
		o += ROW_BYTES;
	}
	unsigned char h[crypto_hash_sha256_BYTES];
	char hex[2 * crypto_hash_sha256_BYTES + 1];
	/* The version names everything that decides a verdict: weights,
	 * biases and threshold. */
	char params[256];
	int pl = snprintf(params, sizeof(params), "%.6f %.9g %.9g %.9g", m->threshold,
			  (double)m->bias[0], (double)m->bias[1], (double)m->bias[2]);
	if (m->has_phish_cut)
		pl += snprintf(params + pl, sizeof(params) - (size_t)pl, " %.6f", m->phish_cut);
	char famw[96] = "";
	if (m->has_famw) {
		snprintf(famw, sizeof(famw), "famw=%.6g %.6g %.6g %.6g\n", (double)m->famw[0],
			 (double)m->famw[1], (double)m->famw[2], (double)m->famw[3]);
		pl += snprintf(params + pl, sizeof(params) - (size_t)pl, " %s", famw);
	}
	crypto_hash_sha256_state vs;
	crypto_hash_sha256_init(&vs);
	crypto_hash_sha256_update(&vs, bin, o);
	crypto_hash_sha256_update(&vs, (const unsigned char *)params, (size_t)pl);
	crypto_hash_sha256_final(&vs, h);
	sodium_bin2hex(hex, sizeof(hex), h, 6);

	char header[1024], cut[64] = "";
	if (m->has_phish_cut)
		snprintf(cut, sizeof(cut), "phish_cut=%.6f\n", m->phish_cut);
	int hl = snprintf(header, sizeof(header),
			  "%sversion=postern-%s-%s\nalgo=%s\nbits=%u\nnorm=%s\n"
			  "threshold=%.6f\n%s%sbias=%.9g %.9g %.9g\nscale=%.9g\nrows=%zu\n\n",
			  m->has_famw ? MODEL_MAGIC2 : MODEL_MAGIC, m->algo, hex, m->algo, m->bits,
			  m->norm_sqrt ? "sqrt" : "none", m->threshold, cut, famw,
			  (double)m->bias[0], (double)m->bias[1], (double)m->bias[2], scale, rows);
	crypto_hash_sha256_state st;
	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, (const unsigned char *)header, (size_t)hl);
	crypto_hash_sha256_update(&st, bin, o);
	crypto_hash_sha256_final(&st, h);
	sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));

	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = fopen(tmp, "wb");
	if (!f) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		free(bin);
		return -1;
	}
	int ok = fwrite(header, 1, (size_t)hl, f) == (size_t)hl && fwrite(bin, 1, o, f) == o &&
		 fprintf(f, "sha256=%s\n", hex) > 0;
	ok = (fclose(f) == 0) && ok;
	free(bin);
	if (!ok || rename(tmp, path) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		remove(tmp);
		return -1;
	}
	return 0;
}

static const char *header_value(const char *hdr, const char *key)
{
	size_t kl = strlen(key);
	for (const char *p = hdr; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (strncmp(p, key, kl) == 0 && p[kl] == '=')
			return p + kl + 1;
	return NULL;
}

int scan_model_read(const char *path, struct scan_model **out, char *err, size_t errlen)
{
	*out = NULL;
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	unsigned char *buf = NULL;
	size_t len = 0, cap = 0;
	for (;;) {
		if (len == cap) {
			cap = cap ? cap * 2 : 1 << 20;
			if (cap > MODEL_MAX_FILE) {
				fclose(f);
				free(buf);
				snprintf(err, errlen, _("%s: larger than %u bytes"), path,
					 MODEL_MAX_FILE);
				return -1;
			}
			unsigned char *nb = realloc(buf, cap);
			if (!nb) {
				fclose(f);
				free(buf);
				snprintf(err, errlen, "%s", _("out of memory"));
				return -1;
			}
			buf = nb;
		}
		size_t n = fread(buf + len, 1, cap - len, f);
		len += n;
		if (n == 0)
			break;
	}
	fclose(f);

	int rc = -1;
	struct scan_model *m = NULL;
	char *hdr = NULL;
	const char *why = "not a Postern scan model";
	if (len < sizeof(MODEL_MAGIC) || (memcmp(buf, MODEL_MAGIC, sizeof(MODEL_MAGIC) - 1) != 0 &&
					  memcmp(buf, MODEL_MAGIC2, sizeof(MODEL_MAGIC2) - 1) != 0))
		goto out;
	bool v2 = memcmp(buf, MODEL_MAGIC2, sizeof(MODEL_MAGIC2) - 1) == 0;
	/* checksum line: "sha256=<64 hex>\n" at the end */
	why = "checksum line missing";
	if (len < 72 || memcmp(buf + len - 72, "sha256=", 7) != 0 || buf[len - 1] != '\n')
		goto out;
	unsigned char h[crypto_hash_sha256_BYTES], want[crypto_hash_sha256_BYTES];
	crypto_hash_sha256(h, buf, len - 72);
	size_t bl;
	why = "checksum mismatch (file damaged)";
	if (sodium_hex2bin(want, sizeof(want), (const char *)buf + len - 65, 64, NULL, &bl, NULL) !=
		0 ||
	    bl != sizeof(want) || sodium_memcmp(h, want, sizeof(h)) != 0)
		goto out;

	unsigned char *end = NULL;
	for (size_t i = 0; i + 1 < len - 72; i++)
		if (buf[i] == '\n' && buf[i + 1] == '\n') {
			end = buf + i + 2;
			break;
		}
	why = "header not terminated";
	if (!end)
		goto out;
	hdr = strndup((const char *)buf, (size_t)(end - buf));
	why = "out of memory";
	if (!hdr)
		goto out;
	const char *v_version = header_value(hdr, "version"), *v_algo = header_value(hdr, "algo"),
		   *v_bits = header_value(hdr, "bits"), *v_bias = header_value(hdr, "bias"),
		   *v_scale = header_value(hdr, "scale"), *v_rows = header_value(hdr, "rows"),
		   *v_thr = header_value(hdr, "threshold"), *v_norm = header_value(hdr, "norm");
	why = "header field missing";
	if (!v_version || !v_algo || !v_bits || !v_bias || !v_scale || !v_rows || !v_thr || !v_norm)
		goto out;
	unsigned long bits = strtoul(v_bits, NULL, 10);
	why = "bits out of range";
	if (bits < 8 || bits > MODEL_MAX_BITS)
		goto out;
	char algo[8] = "";
	sscanf(v_algo, "%7[a-z]", algo);
	m = scan_model_new((unsigned)bits, algo);
	why = "out of memory";
	if (!m)
		goto out;
	sscanf(v_version, "%63[^\n]", m->version);
	m->norm_sqrt = strncmp(v_norm, "sqrt\n", 5) == 0;
	m->threshold = strtod(v_thr, NULL);
	const char *v_cut = header_value(hdr, "phish_cut");
	if (v_cut) {
		char *cend;
		m->phish_cut = strtod(v_cut, &cend);
		why = "bad phish_cut line";
		if (cend == v_cut || *cend != '\n' || !isfinite(m->phish_cut))
			goto out;
		m->has_phish_cut = true;
	}
	const char *v_famw = header_value(hdr, "famw");
	why = v2 ? "bad or missing famw line" : "famw line in a version 1 model";
	if (v_famw && !v2)
		goto out;
	if (v2) {
		double fw[SCAN_NFAM];
		int used = 0;
		if (!v_famw ||
		    sscanf(v_famw, "%lf %lf %lf %lf%n", &fw[0], &fw[1], &fw[2], &fw[3], &used) !=
			4 ||
		    v_famw[used] != '\n')
			goto out;
		float w[SCAN_NFAM];
		for (int k = 0; k < SCAN_NFAM; k++) {
			if (!isfinite(fw[k]) || fw[k] <= 0 || fw[k] > 100)
				goto out;
			w[k] = (float)fw[k];
		}
		scan_model_set_famw(m, w);
	}
	double scale = strtod(v_scale, NULL);
	double b0, b1, b2;
	why = "bad bias line";
	if (sscanf(v_bias, "%lf %lf %lf", &b0, &b1, &b2) != 3)
		goto out;
	m->bias[0] = (float)b0;
	m->bias[1] = (float)b1;
	m->bias[2] = (float)b2;
	unsigned long rows = strtoul(v_rows, NULL, 10);
	size_t body = (size_t)(buf + len - 72 - end);
	why = "row count does not match the file size";
	if (rows * ROW_BYTES != body)
		goto out;
	for (size_t r = 0; r < rows; r++) {
		const unsigned char *p = end + r * ROW_BYTES;
		uint32_t idx = get_u32(p);
		why = "row index out of range";
		if (idx >= (1u << bits))
			goto out;
		for (int c = 0; c < SCAN_NCLASS; c++)
			m->w[(size_t)idx * SCAN_NCLASS + c] =
			    (float)(get_i16(p + 4 + 2 * c) * scale);
	}
	*out = m;
	m = NULL;
	rc = 0;
out:
	if (rc != 0)
		snprintf(err, errlen, "%s: %s", path, why);
	scan_model_free(m);
	free(hdr);
	free(buf);
	return rc;
}

/* ---- the process-wide model: swapped on reload, read by every scan ---- */
static pthread_mutex_t current_lock = PTHREAD_MUTEX_INITIALIZER;
static struct scan_model *current;

/* Models replaced by a reload stay allocated: a scan running in another
 * thread may still read them, and reloads are rare (a few per process). */
#define RETIRED_MAX 16
static struct scan_model *retired[RETIRED_MAX];
static size_t n_retired;

const struct scan_model *scan_model_current(void)
{
	pthread_mutex_lock(&current_lock);
	const struct scan_model *m = current;
	pthread_mutex_unlock(&current_lock);
	return m;
}

void scan_model_set(struct scan_model *m)
{
	pthread_mutex_lock(&current_lock);
	if (current) {
		if (n_retired == RETIRED_MAX) {
			/* the oldest has been out of use for many reloads */
			scan_model_free(retired[0]);
			memmove(retired, retired + 1, (RETIRED_MAX - 1) * sizeof(retired[0]));
			n_retired--;
		}
		retired[n_retired++] = current;
	}
	current = m;
	pthread_mutex_unlock(&current_lock);
}

void scan_model_score(const struct scan_model *m, const struct scan_delta *delta,
		      const uint32_t *feats, const uint8_t *fam, size_t n, double prob[SCAN_NCLASS])
{
	/* sums per family, weighted once at the end */
	double zf[SCAN_NFAM][SCAN_NCLASS] = {{0}};
	uint32_t mask = (1u << m->bits) - 1;
	bool weighted = fam && m->has_famw;
	for (size_t i = 0; i < n; i++) {
		uint32_t row = feats[i] & mask;
		const float *w = m->w + (size_t)row * SCAN_NCLASS;
		double *z = zf[weighted ? fam[i] : 0];
		for (int c = 0; c < SCAN_NCLASS; c++)
			z[c] += w[c];
		if (delta) {
			const float *dw = scan_delta_find(delta, row);
			if (dw)
				for (int c = 0; c < SCAN_NCLASS; c++)
					z[c] += dw[c];
		}
	}
	double z[SCAN_NCLASS] = {0};
	for (int f = 0; f < SCAN_NFAM; f++)
		for (int c = 0; c < SCAN_NCLASS; c++)
			z[c] += zf[f][c] * (weighted ? m->famw[f] : 1.0);
	double s = n && m->norm_sqrt ? 1.0 / sqrt((double)n) : 1.0;
	double maxz = -1e300;
	for (int c = 0; c < SCAN_NCLASS; c++) {
		z[c] = z[c] * s + m->bias[c] + (delta ? delta->bias[c] : 0);
		if (z[c] > maxz)
			maxz = z[c];
	}
	double sum = 0;
	for (int c = 0; c < SCAN_NCLASS; c++) {
		prob[c] = exp(z[c] - maxz);
		sum += prob[c];
	}
	for (int c = 0; c < SCAN_NCLASS; c++)
		prob[c] /= sum;
}

int scan_model_junk(const struct scan_model *m, const double p[SCAN_NCLASS])
{
	if (p[SCAN_CLASS_HAM] < m->threshold)
		return p[SCAN_CLASS_PHISH] > p[SCAN_CLASS_SPAM] ? SCAN_CLASS_PHISH
								: SCAN_CLASS_SPAM;
	if (m->has_phish_cut && p[SCAN_CLASS_PHISH] > 0 &&
	    log(p[SCAN_CLASS_HAM] / p[SCAN_CLASS_PHISH]) < m->phish_cut)
		return SCAN_CLASS_PHISH;
	return SCAN_CLASS_HAM;
}

/* ---- per-user deltas: sorted sparse rows ----
 * Blob: "PSUD1" | u32 rows | 3 x f32 bias | rows x { u32 bucket, 3 x f32 } (LE) */

const float *scan_delta_find(const struct scan_delta *d, uint32_t idx)
{
	size_t lo = 0, hi = d->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (d->idx[mid] < idx)
			lo = mid + 1;
		else if (d->idx[mid] > idx)
			hi = mid;
		else
			return d->w + mid * SCAN_NCLASS;
	}
	return NULL;
}

float *scan_delta_row(struct scan_delta *d, uint32_t idx)
{
	size_t lo = 0, hi = d->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (d->idx[mid] < idx)
			lo = mid + 1;
		else if (d->idx[mid] > idx)
			hi = mid;
		else
			return d->w + mid * SCAN_NCLASS;
	}
	if (d->n >= DELTA_MAX_ROWS)
		return NULL;
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 256;
		uint32_t *ni = realloc(d->idx, cap * sizeof(*ni));
		if (!ni)
			return NULL;
		d->idx = ni;
		float *nw = realloc(d->w, cap * SCAN_NCLASS * sizeof(*nw));
		if (!nw)
			return NULL;
		d->w = nw;
		d->cap = cap;
	}
	memmove(d->idx + lo + 1, d->idx + lo, (d->n - lo) * sizeof(*d->idx));
	memmove(d->w + (lo + 1) * SCAN_NCLASS, d->w + lo * SCAN_NCLASS,
		(d->n - lo) * SCAN_NCLASS * sizeof(*d->w));
	d->idx[lo] = idx;
	memset(d->w + lo * SCAN_NCLASS, 0, SCAN_NCLASS * sizeof(*d->w));
	d->n++;
	return d->w + lo * SCAN_NCLASS;
}

void scan_delta_free(struct scan_delta *d)
{
	free(d->idx);
	free(d->w);
	memset(d, 0, sizeof(*d));
}

static void put_f32(unsigned char *p, float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	put_u32(p, u);
}

static float get_f32(const unsigned char *p)
{
	uint32_t u = get_u32(p);
	float f;
	memcpy(&f, &u, 4);
	return isfinite(f) ? f : 0.0f;
}

int scan_delta_encode(const struct scan_delta *d, unsigned char **blob, size_t *len)
{
	size_t n = 5 + 4 + 12 + d->n * 16;
	unsigned char *b = malloc(n);
	if (!b)
		return -1;
	memcpy(b, DELTA_MAGIC, 5);
	put_u32(b + 5, (uint32_t)d->n);
	for (int c = 0; c < SCAN_NCLASS; c++)
		put_f32(b + 9 + 4 * c, d->bias[c]);
	for (size_t i = 0; i < d->n; i++) {
		unsigned char *p = b + 21 + i * 16;
		put_u32(p, d->idx[i]);
		for (int c = 0; c < SCAN_NCLASS; c++)
			put_f32(p + 4 + 4 * c, d->w[i * SCAN_NCLASS + c]);
	}
	*blob = b;
	*len = n;
	return 0;
}

int scan_delta_decode(const unsigned char *blob, size_t len, struct scan_delta *out)
{
	memset(out, 0, sizeof(*out));
	if (len < 21 || memcmp(blob, DELTA_MAGIC, 5) != 0)
		return -1;
	uint32_t n = get_u32(blob + 5);
	if (n > DELTA_MAX_ROWS || len != 21 + (size_t)n * 16)
		return -1;
	for (int c = 0; c < SCAN_NCLASS; c++)
		out->bias[c] = get_f32(blob + 9 + 4 * c);
	if (n == 0)
		return 0;
	out->idx = malloc(n * sizeof(*out->idx));
	out->w = malloc((size_t)n * SCAN_NCLASS * sizeof(*out->w));
	if (!out->idx || !out->w) {
		scan_delta_free(out);
		return -1;
	}
	out->n = out->cap = n;
	for (uint32_t i = 0; i < n; i++) {
		const unsigned char *p = blob + 21 + (size_t)i * 16;
		out->idx[i] = get_u32(p);
		if (i && out->idx[i] <= out->idx[i - 1]) {
			scan_delta_free(out);
			return -1;
		}
		for (int c = 0; c < SCAN_NCLASS; c++)
			out->w[(size_t)i * SCAN_NCLASS + c] = get_f32(p + 4 + 4 * c);
	}
	return 0;
}
