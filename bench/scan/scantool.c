/*
 * scantool.c - drives the scanner's training and evaluation outside the
 * daemon: the model make target and the benchmark use it, so neither needs
 * a config file or a store.
 *
 *   scantool train DIR OUT [--algo lr|nb] [--bits N] [--epochs N] [--threshold T]
 *                          [--ham-weight W] [--cv] [--cv-repeat N] [--cv-misses]
 *                          [--cv-scores FILE] [--all]
 *
 * --cv prints the out-of-fold figures (training part only) behind the
 * threshold choice: the way to compare settings without the test part.
 * --cv-repeat N scores N different 5-fold partitions and sums their errors
 * (less noise when comparing settings); --cv-misses names every message
 * the out-of-fold models got wrong (first partition); --cv-scores FILE
 * writes every out-of-fold class probability (all partitions), for comparing
 * decision rules and combinations offline without retraining.
 *   scantool eval DIR [--model FILE] [--json] [--all] [--predictions FILE]
 *   scantool scan FILE [--model FILE]
 *
 * train learns from the 80% training part of DIR unless --all; eval scores
 * the 20% test part unless --all (split: scan_train.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scan/scan.h"
#include "scan/scan_train.h"

static int usage(void)
{
	fprintf(stderr,
		"usage: scantool train DIR OUT [--algo lr|nb] [--bits N] [--epochs N] "
		"[--threshold T] [--ham-weight W] [--cv] [--cv-repeat N] [--cv-misses]\n"
		"                      [--cv-scores FILE] [--all]\n"
		"       scantool eval DIR [--model FILE] [--json] [--all] [--predictions FILE]\n"
		"       scantool scan FILE [--model FILE]\n");
	return 2;
}

static int load_model(const char *path)
{
	char err[512];
	if (scan_model_load(path, err, sizeof(err)) != 0) {
		fprintf(stderr, "scantool: %s\n", err);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	char err[512];
	if (argc < 3)
		return usage();
	const char *cmd = argv[1];
	const char *model = NULL, *predictions = NULL, *cv_scores = NULL;
	bool json = false;
	struct scan_train_opts o = {.split = SCAN_SPLIT_TRAIN};
	enum scan_split eval_split = SCAN_SPLIT_TEST;
	int first_opt = strcmp(cmd, "train") == 0 ? 4 : 3;
	if (argc < first_opt)
		return usage();
	for (int i = first_opt; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--cv") == 0) {
			o.report = stderr;
		} else if (strcmp(a, "--cv-misses") == 0) {
			o.report = stderr;
			o.cv_misses = true;
		} else if (v && strcmp(a, "--cv-scores") == 0) {
			cv_scores = v;
			i++;
		} else if (v && strcmp(a, "--cv-repeat") == 0) {
			o.report = stderr;
			o.cv_repeats = (unsigned)strtoul(v, NULL, 10);
			if (o.cv_repeats < 1 || o.cv_repeats > 8)
				return usage();
			i++;
		} else if (strcmp(a, "--all") == 0) {
			o.split = SCAN_SPLIT_ALL;
			eval_split = SCAN_SPLIT_ALL;
		} else if (strcmp(a, "--json") == 0) {
			json = true;
		} else if (v && strcmp(a, "--model") == 0) {
			model = v;
			i++;
		} else if (v && strcmp(a, "--predictions") == 0) {
			predictions = v;
			i++;
		} else if (v && strcmp(a, "--algo") == 0) {
			o.algo = v;
			i++;
		} else if (v && strcmp(a, "--bits") == 0) {
			o.bits = (unsigned)strtoul(v, NULL, 10);
			i++;
		} else if (v && strcmp(a, "--epochs") == 0) {
			o.epochs = (unsigned)strtoul(v, NULL, 10);
			i++;
		} else if (v && strcmp(a, "--ham-weight") == 0) {
			o.ham_weight = strtod(v, NULL);
			i++;
		} else if (v && strcmp(a, "--threshold") == 0) {
			o.threshold = strtod(v, NULL);
			i++;
		} else {
			return usage();
		}
	}

	if (strcmp(cmd, "scan") == 0) {
		unsigned char *buf;
		size_t len;
		if (load_model(model) != 0)
			return 1;
		if (scan_read_file(argv[2], 64u << 20, &buf, &len, err, sizeof(err)) != 0) {
			fprintf(stderr, "scantool: %s\n", err);
			return 1;
		}
		struct scan_result r;
		scan_message(NULL, buf, len, NULL, &r);
		free(buf);
		printf("%s %.4f %.4f %s\n", scan_verdict_name(r.verdict), r.score, r.confidence,
		       r.model_version);
		for (size_t i = 0; i < r.n_reasons; i++)
			printf("  %s\n", r.reasons[i]);
		return 0;
	}

	struct scan_corpus c;
	if (scan_corpus_load(argv[2], &c, err, sizeof(err)) != 0) {
		fprintf(stderr, "scantool: %s\n", err);
		return 1;
	}
	int rc = 0;
	if (strcmp(cmd, "train") == 0) {
		size_t used = 0;
		if (cv_scores && !(o.cv_scores = fopen(cv_scores, "w"))) {
			perror(cv_scores);
			rc = 1;
		} else if (scan_train(&c, &o, argv[3], &used, err, sizeof(err)) != 0) {
			fprintf(stderr, "scantool: %s\n", err);
			rc = 1;
		} else {
			fprintf(stderr, "scantool: learned from %zu messages, wrote %s\n", used,
				argv[3]);
		}
		if (o.cv_scores && fclose(o.cv_scores) != 0) {
			perror(cv_scores);
			rc = 1;
		}
	} else if (strcmp(cmd, "eval") == 0) {
		struct scan_eval_report r;
		FILE *pf = NULL;
		if (load_model(model) != 0) {
			rc = 1;
		} else if (predictions && !(pf = fopen(predictions, "w"))) {
			perror(predictions);
			rc = 1;
		} else if (scan_eval(&c, eval_split, &r, pf, err, sizeof(err)) != 0) {
			fprintf(stderr, "scantool: %s\n", err);
			rc = 1;
		} else {
			scan_eval_print(stdout, &r, json);
		}
		if (pf)
			fclose(pf);
	} else {
		rc = usage();
	}
	scan_corpus_free(&c);
	return rc;
}
