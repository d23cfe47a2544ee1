/*
 * cmd_scan.c - posternctl scan (check one message, train the model from a
 * labelled corpus, evaluate it) and posternctl quarantine (list, show,
 * release, delete the messages the scanner held back as malware).
 *
 * Quarantined messages are sealed to the server's queue key, so only the
 * admin (who can read that key file) can show or release them; release
 * delivers to the recipient's INBOX.
 */
#include <config.h>

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "ctl/ctl.h"
#include "deliver/deliver.h"
#include "scan/scan.h"
#include "scan/scan_train.h"
#include "store/store.h"
#include "util/i18n.h"

#define SCAN_FILE_MAX (64u * 1024 * 1024)
#define SHOW_HEADER_MAX 8192 /* bytes of the quarantined message's header shown */

/* The model: --model, else the config's [scan] model_file when a config
 * exists, else the shipped default. */
static int load_model(struct ctl *ctl, const char *model)
{
	char err[512];
	if (!model && access(ctl->config_path, R_OK) == 0) {
		if (ctl_config(ctl) != CTL_EXIT_OK)
			return CTL_EXIT_CONFIG;
		model = ctl->cfg.scan.model_file;
	}
	if (scan_model_load(model, err, sizeof(err)) != 0) {
		ctl_error(_("cannot load the scan model: %s"), err);
		return CTL_EXIT_FAIL;
	}
	return CTL_EXIT_OK;
}

static int scan_file(struct ctl *ctl, int argc, char **argv)
{
	const char *model = NULL;
	const struct ctl_option opts[] = {{"--model", &model, NULL}, {NULL, NULL, NULL}};
	char *pos[1], err[512];
	int n, rc;

	if (ctl_parse_args(ctl, argc, argv, opts, pos, 1, 1, &n) != 0)
		return CTL_EXIT_USAGE;
	if ((rc = load_model(ctl, model)) != CTL_EXIT_OK)
		return rc;
	unsigned char *buf;
	size_t len;
	if (scan_read_file(pos[0], SCAN_FILE_MAX, &buf, &len, err, sizeof(err)) != 0) {
		ctl_error("%s", err);
		return CTL_EXIT_NOTFOUND;
	}
	struct scan_result r;
	scan_message(NULL, buf, len, NULL, &r);
	free(buf);
	if (ctl->json) {
		json_t *reasons = json_array();
		for (size_t i = 0; i < r.n_reasons; i++)
			json_array_append_new(reasons, json_string(r.reasons[i]));
		ctl_json_print(json_pack("{s:s,s:s,s:f,s:f,s:s,s:o}", "file", pos[0], "verdict",
					 scan_verdict_name(r.verdict), "score", r.score,
					 "confidence", r.confidence, "model", r.model_version,
					 "reasons", reasons));
	} else {
		printf(_("verdict: %s\n"), scan_verdict_name(r.verdict));
		printf(_("score: %.3f (confidence %.3f, model %s)\n"), r.score, r.confidence,
		       r.model_version);
		for (size_t i = 0; i < r.n_reasons; i++)
			printf("  - %s\n", r.reasons[i]);
	}
	return CTL_EXIT_OK;
}

static int scan_train_cmd(struct ctl *ctl, int argc, char **argv)
{
	const char *out = "postern-scan.model", *algo = NULL;
	bool all = false;
	const struct ctl_option opts[] = {{"--out", &out, NULL},
					  {"--algo", &algo, NULL},
					  {"--all", NULL, &all},
					  {NULL, NULL, NULL}};
	char *pos[1], err[512];
	int n;

	if (ctl_parse_args(ctl, argc, argv, opts, pos, 1, 1, &n) != 0)
		return CTL_EXIT_USAGE;
	struct scan_corpus c;
	if (scan_corpus_load(pos[0], &c, err, sizeof(err)) != 0) {
		ctl_error("%s", err);
		return CTL_EXIT_NOTFOUND;
	}
	struct scan_train_opts o = {.algo = algo, .split = all ? SCAN_SPLIT_ALL : SCAN_SPLIT_TRAIN};
	size_t used = 0;
	int rc = scan_train(&c, &o, out, &used, err, sizeof(err));
	scan_corpus_free(&c);
	if (rc != 0) {
		ctl_error(_("training failed: %s"), err);
		return CTL_EXIT_FAIL;
	}
	if (scan_model_load(out, err, sizeof(err)) != 0) {
		ctl_error(_("the new model cannot be read back: %s"), err);
		return CTL_EXIT_FAIL;
	}
	if (ctl->json)
		ctl_json_print(json_pack("{s:b,s:s,s:i,s:s}", "ok", 1, "model", out, "messages",
					 (json_int_t)used, "version", scan_model_version()));
	else
		printf(_("model %s written to %s (learned from %zu messages)\n"),
		       scan_model_version(), out, used);
	return CTL_EXIT_OK;
}

static int scan_eval_cmd(struct ctl *ctl, int argc, char **argv)
{
	const char *model = NULL;
	bool all = false;
	const struct ctl_option opts[] = {
	    {"--model", &model, NULL}, {"--all", NULL, &all}, {NULL, NULL, NULL}};
	char *pos[1], err[512];
	int n, rc;

	if (ctl_parse_args(ctl, argc, argv, opts, pos, 1, 1, &n) != 0)
		return CTL_EXIT_USAGE;
	if ((rc = load_model(ctl, model)) != CTL_EXIT_OK)
		return rc;
	struct scan_corpus c;
	if (scan_corpus_load(pos[0], &c, err, sizeof(err)) != 0) {
		ctl_error("%s", err);
		return CTL_EXIT_NOTFOUND;
	}
	struct scan_eval_report r;
	rc = scan_eval(&c, all ? SCAN_SPLIT_ALL : SCAN_SPLIT_TEST, &r, NULL, err, sizeof(err));
	scan_corpus_free(&c);
	if (rc != 0) {
		ctl_error("%s", err);
		return CTL_EXIT_FAIL;
	}
	if (r.n == 0) {
		ctl_error(_("no messages in the %s part of %s (try --all)"), all ? "whole" : "test",
			  pos[0]);
		return CTL_EXIT_FAIL;
	}
	scan_eval_print(stdout, &r, ctl->json);
	return CTL_EXIT_OK;
}

static const struct ctl_verb scan_verbs[] = {
    {"train", scan_train_cmd, N_("scan train DIR [--out FILE] [--algo lr|nb] [--all]"),
     N_("train a model from DIR/{ham,spam,phish} (the 80% training part unless --all)")},
    {"eval", scan_eval_cmd, N_("scan eval DIR [--model FILE] [--all] [--json]"),
     N_("precision, recall, F1, ham false positives and speed on the 20% test part")},
    {"check", scan_file, N_("scan [check] FILE.eml [--model FILE] [--json]"),
     N_("verdict, score and reasons for one message")},
};

int ctl_cmd_scan(struct ctl *ctl, int argc, char **argv)
{
	size_t nverbs = sizeof(scan_verbs) / sizeof(scan_verbs[0]);
	/* "posternctl scan FILE.eml" is short for "scan check FILE.eml". */
	if (argc >= 2 && argv[1][0] != '-' && strcmp(argv[1], "help") != 0) {
		int known = 0;
		for (size_t i = 0; i < nverbs; i++)
			known |= strcmp(scan_verbs[i].name, argv[1]) == 0;
		if (!known)
			return scan_file(ctl, argc, argv);
	}
	return ctl_dispatch(ctl, scan_verbs, nverbs, argc, argv);
}

/* ---- quarantine ---- */

static int parse_id(const char *s, int64_t *id)
{
	char *end;
	long long v = strtoll(s, &end, 10);
	if (*s == '\0' || *end != '\0' || v <= 0) {
		ctl_error(_("\"%s\" is not a quarantine id"), s);
		return -1;
	}
	*id = v;
	return 0;
}

static json_t *entry_json(const struct store_quarantine_entry *e)
{
	return json_pack("{s:I,s:s,s:s,s:s,s:s,s:I,s:I}", "id", (json_int_t)e->id, "recipient",
			 e->recipient, "sender", e->sender, "verdict", e->verdict, "reason",
			 e->reason, "size", (json_int_t)e->size, "created", (json_int_t)e->created);
}

static int list_one(void *arg, const struct store_quarantine_entry *e)
{
	json_t *arr = arg;
	if (arr) {
		json_array_append_new(arr, entry_json(e));
		return 0;
	}
	char when[32];
	time_t t = (time_t)e->created;
	struct tm tm;
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M", gmtime_r(&t, &tm));
	printf("%-6lld %-16s %-8s %-30s %s\n", (long long)e->id, when, e->verdict, e->recipient,
	       e->reason);
	return 0;
}

static int q_list(struct ctl *ctl, int argc, char **argv)
{
	struct store *st;
	int n, rc;
	if (ctl_parse_args(ctl, argc, argv, NULL, NULL, 0, 0, &n) != 0)
		return CTL_EXIT_USAGE;
	if ((rc = ctl_store_open(ctl, &st)) != CTL_EXIT_OK)
		return rc;
	json_t *arr = ctl->json ? json_array() : NULL;
	rc = store_quarantine_list(st, list_one, arr);
	if (rc != STORE_OK) {
		json_decref(arr);
		return ctl_store_fail(ctl, rc, "quarantine");
	}
	if (arr)
		ctl_json_print(arr);
	return CTL_EXIT_OK;
}

/* Opens quarantine entry ID: metadata and the message in clear (malloc'd). */
static int q_open(struct ctl *ctl, const char *arg, struct store_quarantine_entry *e,
		  unsigned char **msg, size_t *len)
{
	struct store *st;
	int64_t id;
	int rc;
	if (parse_id(arg, &id) != 0)
		return CTL_EXIT_USAGE;
	if ((rc = ctl_store_open(ctl, &st)) != CTL_EXIT_OK)
		return rc;
	unsigned char *blob = NULL;
	size_t blen = 0;
	rc = store_quarantine_get(st, id, e, &blob, &blen);
	if (rc == STORE_NOTFOUND) {
		ctl_error(_("no quarantined message %lld"), (long long)id);
		return CTL_EXIT_NOTFOUND;
	}
	if (rc != STORE_OK)
		return ctl_store_fail(ctl, rc, "quarantine");
	struct user_key *key = NULL;
	if (crypto_server_key_load(ctl->cfg.queue.key_file, &key) != 0) {
		free(blob);
		ctl_error(_("cannot read the queue key %s"), ctl->cfg.queue.key_file);
		return CTL_EXIT_FAIL;
	}
	rc = crypto_open(key, blob, blen, msg, len);
	user_key_free(key);
	free(blob);
	if (rc != 0) {
		ctl_error(_("quarantined message %lld cannot be opened with the queue key"),
			  (long long)id);
		return CTL_EXIT_FAIL;
	}
	return CTL_EXIT_OK;
}

static int q_show(struct ctl *ctl, int argc, char **argv)
{
	char *pos[1];
	int n, rc;
	struct store_quarantine_entry e;
	unsigned char *msg;
	size_t len;
	if (ctl_parse_args(ctl, argc, argv, NULL, pos, 1, 1, &n) != 0)
		return CTL_EXIT_USAGE;
	if ((rc = q_open(ctl, pos[0], &e, &msg, &len)) != CTL_EXIT_OK)
		return rc;
	/* The header block only: the body is what was judged dangerous. */
	size_t hl = ctl_header_length(msg, len, SHOW_HEADER_MAX);
	struct scan_result r;
	int have_model = load_model(ctl, NULL) == CTL_EXIT_OK;
	if (have_model)
		scan_message(NULL, msg, len, NULL, &r);
	if (ctl->json) {
		json_t *o = entry_json(&e);
		json_object_set_new(o, "header", json_stringn((const char *)msg, hl));
		if (have_model) {
			json_t *reasons = json_array();
			for (size_t i = 0; i < r.n_reasons; i++)
				json_array_append_new(reasons, json_string(r.reasons[i]));
			json_object_set_new(o, "reasons", reasons);
		}
		ctl_json_print(o);
	} else {
		list_one(NULL, &e);
		if (have_model)
			for (size_t i = 0; i < r.n_reasons; i++)
				printf("  - %s\n", r.reasons[i]);
		printf("\n%.*s", (int)hl, (const char *)msg);
	}
	sodium_memzero(msg, len);
	free(msg);
	return CTL_EXIT_OK;
}

static int q_release(struct ctl *ctl, int argc, char **argv)
{
	char *pos[1];
	int n, rc;
	struct store_quarantine_entry e;
	unsigned char *msg;
	size_t len;
	if (ctl_parse_args(ctl, argc, argv, NULL, pos, 1, 1, &n) != 0)
		return CTL_EXIT_USAGE;
	if ((rc = q_open(ctl, pos[0], &e, &msg, &len)) != CTL_EXIT_OK)
		return rc;
	struct store *st = ctl->st;
	struct store_user user = {0};
	struct store_mailbox inbox;
	rc = store_user_get(st, e.recipient, &user);
	if (rc == STORE_OK)
		rc = store_mailbox_get(st, user.id, "INBOX", &inbox);
	if (rc != STORE_OK) {
		store_user_clear(&user);
		sodium_memzero(msg, len);
		free(msg);
		if (rc == STORE_NOTFOUND) {
			ctl_error(_("the recipient %s has no INBOX any more"), e.recipient);
			return CTL_EXIT_NOTFOUND;
		}
		return ctl_store_fail(ctl, rc, e.recipient);
	}
	/* The scanner runs again inside delivery so the stored message has a
	 * scan result like every other. */
	if (load_model(ctl, NULL) != CTL_EXIT_OK)
		ctl_note(_("delivering with the scanner's rules only"));
	struct scan_input in = {.user_id = user.id};
	struct store_message stored;
	enum deliver_status ds = DELIVER_FAIL;
	if (store_begin(st) == STORE_OK) {
		ds = deliver_to_mailbox(st, &user, inbox.id, 0, (int64_t)time(NULL), msg, len, &in,
					&stored);
		if (ds == DELIVER_OK && store_quarantine_del(st, e.id) != STORE_OK)
			ds = DELIVER_FAIL;
		if (ds == DELIVER_OK && store_commit(st) != STORE_OK)
			ds = DELIVER_FAIL;
		if (ds != DELIVER_OK)
			store_rollback(st);
	}
	store_user_clear(&user);
	sodium_memzero(msg, len);
	free(msg);
	if (ds != DELIVER_OK) {
		ctl_error(_("releasing %lld to %s failed%s"), (long long)e.id, e.recipient,
			  ds == DELIVER_QUOTA ? _(": the mailbox is over quota") : "");
		return CTL_EXIT_FAIL;
	}
	char detail[STORE_ADDRESS_MAX + 32];
	snprintf(detail, sizeof(detail), "%lld %s", (long long)e.id, e.recipient);
	ctl_audit(ctl, "quarantine.release", detail);
	if (ctl->json)
		ctl_json_print(json_pack("{s:b,s:I,s:s,s:I}", "ok", 1, "id", (json_int_t)e.id,
					 "recipient", e.recipient, "uid", (json_int_t)stored.uid));
	else
		printf(_("message %lld released to %s (INBOX uid %u)\n"), (long long)e.id,
		       e.recipient, stored.uid);
	return CTL_EXIT_OK;
}

static int q_delete(struct ctl *ctl, int argc, char **argv)
{
	char *pos[1];
	int n, rc;
	int64_t id;
	struct store *st;
	if (ctl_parse_args(ctl, argc, argv, NULL, pos, 1, 1, &n) != 0)
		return CTL_EXIT_USAGE;
	if (parse_id(pos[0], &id) != 0)
		return CTL_EXIT_USAGE;
	if ((rc = ctl_store_open(ctl, &st)) != CTL_EXIT_OK)
		return rc;
	rc = store_quarantine_del(st, id);
	if (rc == STORE_NOTFOUND) {
		ctl_error(_("no quarantined message %lld"), (long long)id);
		return CTL_EXIT_NOTFOUND;
	}
	if (rc != STORE_OK)
		return ctl_store_fail(ctl, rc, "quarantine");
	ctl_audit(ctl, "quarantine.delete", pos[0]);
	if (ctl->json)
		ctl_json_print(json_pack("{s:b,s:I}", "ok", 1, "id", (json_int_t)id));
	else
		printf(_("quarantined message %lld deleted\n"), (long long)id);
	return CTL_EXIT_OK;
}

static const struct ctl_verb quarantine_verbs[] = {
    {"list", q_list, N_("quarantine list [--json]"), N_("messages held back as malware")},
    {"show", q_show, N_("quarantine show ID [--json]"),
     N_("details, reasons and the header of one message")},
    {"release", q_release, N_("quarantine release ID"),
     N_("deliver the message to its recipient's INBOX")},
    {"delete", q_delete, N_("quarantine delete ID"), N_("destroy the message")},
};

int ctl_cmd_quarantine(struct ctl *ctl, int argc, char **argv)
{
	return ctl_dispatch(ctl, quarantine_verbs,
			    sizeof(quarantine_verbs) / sizeof(quarantine_verbs[0]), argc, argv);
}
