/*
 * scan.h - the scanner: every message is classified before it is stored
 * (SMTP MX, submission, IMAP APPEND) and its result is stored with it, 1:1.
 *
 * scan_message() parses with GMime, extracts features (tokens, headers, URLs,
 * attachments, authentication results) and scores them with the loaded
 * statistical model plus heuristics. It is pure with respect to the network
 * and thread-safe once scan_model_load() has run.
 */
#ifndef POSTERN_SCAN_H
#define POSTERN_SCAN_H

#include <stddef.h>
#include <stdint.h>

struct store;

enum scan_verdict { SCAN_CLEAN = 0, SCAN_SPAM, SCAN_PHISHING, SCAN_MALWARE };

#define SCAN_MAX_REASONS 16

struct scan_input {
	const char *client_ip;   /* may be NULL */
	const char *helo;        /* may be NULL */
	const char *spf;         /* "pass", "fail", "softfail", "none", ... or NULL */
	const char *dkim;        /* likewise */
	const char *dmarc;       /* likewise */
	int64_t user_id;         /* recipient, for per-user learning; 0 when none */
};

struct scan_result {
	enum scan_verdict verdict;
	double score;      /* 0..1 probability that the message is not clean */
	double confidence; /* 0..1 */
	char model_version[64];
	char reasons[SCAN_MAX_REASONS][256];
	size_t n_reasons;
};

const char *scan_verdict_name(enum scan_verdict v);

/* Loads the model file (NULL: the shipped default). 0 or -1 with ERR. */
int scan_model_load(const char *path, char *err, size_t errlen);

/* Scans MSG. ST (may be NULL) gives access to per-user deltas. Always
 * returns a result: malformed input yields a verdict with a reason. */
void scan_message(struct store *st, const unsigned char *msg, size_t len,
		  const struct scan_input *in, struct scan_result *out);

/* Teaches the per-user model of USER_ID that MSG is LABEL (SCAN_CLEAN or SCAN_SPAM/PHISHING). */
int scan_learn(struct store *st, int64_t user_id, const unsigned char *msg, size_t len,
	       enum scan_verdict label);

/* "[\"reason\", ...]" JSON text of the reasons (malloc'd) for store_scan_result. */
char *scan_reasons_json(const struct scan_result *r);

#endif
