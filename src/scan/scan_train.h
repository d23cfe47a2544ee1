/*
 * scan_train.h - training and evaluation of the scanner's model from a
 * labelled corpus: DIR/ham/NAME.eml, DIR/spam/NAME.eml, DIR/phish/NAME.eml (the
 * folder "phishing" is accepted too). Used by posternctl scan train|eval,
 * the model make target and the benchmark.
 *
 * The corpus is split 80/20 by content: a message is in the test part when
 * the first byte of the SHA-256 of its bytes is a multiple of 5. Messages
 * are processed in order of that hash, so the result does not depend on
 * file names or directory order: the same corpus gives the same model.
 */
#ifndef POSTERN_SCAN_TRAIN_H
#define POSTERN_SCAN_TRAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "scan/scan.h"

enum scan_split { SCAN_SPLIT_TRAIN, SCAN_SPLIT_TEST, SCAN_SPLIT_ALL };

struct scan_corpus_item {
	char *path;
	int label; /* 0 ham, 1 spam, 2 phishing */
	unsigned char sha256[32];
	bool test;
};

struct scan_corpus {
	struct scan_corpus_item *items;
	size_t n;
};

int scan_corpus_load(const char *dir, struct scan_corpus *out, char *err, size_t errlen);
void scan_corpus_free(struct scan_corpus *c);
bool scan_corpus_in(const struct scan_corpus_item *it, enum scan_split split);

struct scan_train_opts {
	const char *algo;      /* "lr" (default) or "nb" */
	unsigned bits;	       /* hash buckets 2^bits; 0 = default 18 */
	unsigned epochs;       /* lr only; 0 = default */
	double threshold;      /* 0 = default 0.5 */
	double ham_weight;     /* lr only: loss weight of ham examples; 0 = default */
	enum scan_split split; /* which part to learn from (default: train) */
	FILE *report;	       /* when set: out-of-fold figures of the threshold choice */
	unsigned cv_repeats;   /* with report: partitions scored (1..8; 0 = 1) */
	bool cv_misses;	       /* with report: name the out-of-fold mistakes */
	FILE *cv_scores;       /* when set: every out-of-fold score, one line per message
				* and partition: "<partition> <label> <P(ham)> <P(spam)>
				* <P(phishing)> <path>" (rule evidence included) */
};

/* Trains on the chosen part of C and writes the model to OUT_PATH.
 * *N_USED is set to the number of messages learned from. */
int scan_train(const struct scan_corpus *c, const struct scan_train_opts *o, const char *out_path,
	       size_t *n_used, char *err, size_t errlen);

struct scan_eval_report {
	size_t confusion[3][4]; /* true ham/spam/phishing x predicted clean/spam/phishing/malware */
	size_t n;
	double seconds; /* CPU time spent in scan_message */
	char model_version[64];
};

/* Scans every message of the chosen part with the loaded model. When
 * PREDICTIONS is non-NULL, writes "<sha256> <true> <predicted> <score>" lines. */
int scan_eval(const struct scan_corpus *c, enum scan_split split, struct scan_eval_report *r,
	      FILE *predictions, char *err, size_t errlen);
/* Per-class precision/recall/F1, ham false-positive rate, confusion matrix,
 * messages/s; as text or JSON. */
void scan_eval_print(FILE *f, const struct scan_eval_report *r, bool json);

/* Reads a whole file (at most MAX bytes); -1 with ERR. */
int scan_read_file(const char *path, size_t max, unsigned char **buf, size_t *len, char *err,
		   size_t errlen);

#endif
