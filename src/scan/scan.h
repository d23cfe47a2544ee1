/*
 * scan.h - the scanner: every message is classified before it is stored
 * (SMTP MX, submission, IMAP APPEND) and its result is stored with it, 1:1.
 *
 * scan_message() parses with GMime, extracts features (tokens, headers, URLs,
 * attachments, authentication results) and scores them with the loaded
 * statistical model plus heuristics. It is pure with respect to the network
 * and thread-safe once scan_model_load() has run.
 *
 * Bounded work on any input (caps in scan_int.h): the first 8 MiB of a
 * message are parsed, 64 KiB of decoded text tokenized, 4 MiB of each part
 * inspected, 32 MIME levels and 256 leaf parts walked, 128 URLs and 8192
 * distinct features kept; more than 200 "multipart/" declarations and the
 * message is scanned as plain text. Each cap that applies adds a reason.
 * Per-thread state is about 240 KiB, reused across scans.
 */
#ifndef POSTERN_SCAN_H
#define POSTERN_SCAN_H

#include <stddef.h>
#include <stdint.h>

struct store;

enum scan_verdict { SCAN_CLEAN = 0, SCAN_SPAM, SCAN_PHISHING, SCAN_MALWARE };

#define SCAN_MAX_REASONS 16

struct scan_input {
	const char *client_ip; /* may be NULL */
	const char *helo;      /* may be NULL */
	const char *spf;       /* "pass", "fail", "softfail", "none", ... or NULL */
	const char *dkim;      /* likewise */
	const char *dmarc;     /* likewise */
	int64_t user_id;       /* recipient, for per-user learning; 0 when none */
};

struct scan_result {
	enum scan_verdict verdict;
	double score;	   /* 0..1 probability that the message is not clean */
	double confidence; /* 0..1 */
	char model_version[64];
	char reasons[SCAN_MAX_REASONS][256];
	size_t n_reasons;
};

const char *scan_verdict_name(enum scan_verdict v);
/* "clean"/"ham", "spam", "phishing"/"phish", "malware"; 0 or -1. */
int scan_verdict_parse(const char *name, enum scan_verdict *out);

/* Loads the model file (NULL or "": the shipped default). 0 or -1 with ERR.
 * May be called again (reload): scans already running keep the old model.
 * Default lookup, first readable wins: $POSTERN_SCAN_MODEL,
 * PKGDATADIR/postern-scan.model, <source tree>/data/postern-scan.model. */
int scan_model_load(const char *path, char *err, size_t errlen);
/* The path scan_model_load(NULL) would use; -1 when none is readable. */
int scan_model_default_path(char *out, size_t outlen);
/* Version string of the loaded model, NULL when none is loaded. */
const char *scan_model_version(void);

/* Scans MSG. ST (may be NULL) gives access to per-user deltas. Always
 * returns a result: malformed input yields a verdict with a reason. */
void scan_message(struct store *st, const unsigned char *msg, size_t len,
		  const struct scan_input *in, struct scan_result *out);

/* Teaches the per-user model of USER_ID that MSG is LABEL (SCAN_CLEAN or SCAN_SPAM/PHISHING). */
int scan_learn(struct store *st, int64_t user_id, const unsigned char *msg, size_t len,
	       enum scan_verdict label);

/* "[\"reason\", ...]" JSON text of the reasons (malloc'd) for store_scan_result. */
char *scan_reasons_json(const struct scan_result *r);

/* The header lines src/deliver prepends to a stored message for R, each
 * ending in CRLF: "X-Spam-Status: Yes|No, verdict=... score=... model=...",
 * "X-Spam-Score: 0.973", and for phishing and malware
 * "X-Postern-Warning: this message looks like phishing: <first reason>".
 * Returns the length written (NUL-terminated) or -1 when LEN is too small
 * (1024 bytes always suffice). */
int scan_format_headers(const struct scan_result *r, char *buf, size_t len);

#endif
