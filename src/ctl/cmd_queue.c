/*
 * cmd_queue.c - posternctl queue list|show|retry|flush|delete|hold|release:
 * the outbound queue as the running daemon's delivery thread sees it. The
 * daemon looks at the queue every [queue] poll_interval seconds, so retry,
 * flush and release take effect at its next look. A held entry keeps its
 * place with a far-future next attempt and a "[held]" mark in its last error.
 */
#include <config.h>

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto/crypto.h"
#include "ctl/ctl.h"
#include "queue/queue.h"
#include "store/store.h"
#include "util/i18n.h"

#define SHOW_HEADER_MAX 16384 /* bytes of the queued message's header shown */

static int usage(const char *verb);

static bool is_held(const struct store_queue_entry *e)
{
	return strncmp(e->last_error, QUEUE_HOLD_MARK, strlen(QUEUE_HOLD_MARK)) == 0;
}

static json_t *entry_json(const struct store_queue_entry *e)
{
	return json_pack("{s:I,s:s,s:s,s:i,s:I,s:I,s:s,s:b,s:s,s:s,s:s,s:s}", "id",
			 (json_int_t)e->id, "sender", e->sender, "recipient", e->recipient,
			 "attempts", e->attempts, "next_attempt", (json_int_t)e->next_attempt,
			 "created", (json_int_t)e->created, "last_error", e->last_error, "held",
			 is_held(e), "dsn_notify", e->dsn_notify, "dsn_ret", e->dsn_ret,
			 "dsn_envid", e->dsn_envid, "dsn_orcpt", e->dsn_orcpt);
}

static void print_entry(const struct store_queue_entry *e)
{
	char created[32], next[32];
	time_t t = (time_t)e->created;
	struct tm tm;

	strftime(created, sizeof(created), "%Y-%m-%d %H:%M:%S", gmtime_r(&t, &tm));
	if (is_held(e)) {
		snprintf(next, sizeof(next), "%s", _("held"));
	} else {
		t = (time_t)e->next_attempt;
		strftime(next, sizeof(next), "%Y-%m-%d %H:%M:%S", gmtime_r(&t, &tm));
	}
	printf("%-6lld %s  %-30s -> %-30s %3d  %s\n", (long long)e->id, created,
	       e->sender[0] ? e->sender : "<>", e->recipient, e->attempts, next);
	if (e->last_error[0])
		printf("       %s\n", e->last_error);
}

static int list_one(void *arg, const struct store_queue_entry *e)
{
	json_t *arr = arg;

	if (arr)
		json_array_append_new(arr, entry_json(e));
	else
		print_entry(e);
	return 0;
}

static int queue_list(struct ctl *ctl, int argc, char **argv)
{
	struct store *st;
	json_t *arr;
	int n, rc;

	if (ctl_parse_args(ctl, argc, argv, NULL, NULL, 0, 0, &n) != 0)
		return usage("list");
	if ((rc = ctl_store_open(ctl, &st)) != CTL_EXIT_OK)
		return rc;
	arr = ctl->json ? json_array() : NULL;
	rc = store_queue_list(st, list_one, arr);
	if (rc != STORE_OK) {
		json_decref(arr);
		return ctl_store_fail(ctl, rc, _("queue list"));
	}
	if (arr)
		ctl_json_print(arr);
	return CTL_EXIT_OK;
}

struct find {
	int64_t id;
	bool found;
	struct store_queue_entry entry;
};

static int find_one(void *arg, const struct store_queue_entry *e)
{
	struct find *f = arg;

	if (e->id == f->id) {
		f->entry = *e;
		f->found = true;
	}
	return 0;
}

static int parse_id(const char *verb, const char *s, int64_t *id)
{
	char *end;
	long long v = strtoll(s, &end, 10);

	if (*s == '\0' || *end != '\0' || v <= 0) {
		ctl_error(_("\"%s\" is not a queue id"), s);
		usage(verb);
		return -1;
	}
	*id = v;
	return 0;
}

/* Opens the store and finds entry ID (from the one positional argument). */
static int find_entry(struct ctl *ctl, const char *verb, int argc, char **argv, struct store **st,
		      struct store_queue_entry *out)
{
	char *pos[1];
	struct find f = {0};
	int n, rc;

	if (ctl_parse_args(ctl, argc, argv, NULL, pos, 1, 1, &n) != 0)
		return usage(verb);
	if (parse_id(verb, pos[0], &f.id) != 0)
		return CTL_EXIT_USAGE;
	if ((rc = ctl_store_open(ctl, st)) != CTL_EXIT_OK)
		return rc;
	rc = store_queue_list(*st, find_one, &f);
	if (rc != STORE_OK)
		return ctl_store_fail(ctl, rc, _("queue list"));
	if (!f.found) {
		ctl_error(_("no queued message %lld"), (long long)f.id);
		return CTL_EXIT_NOTFOUND;
	}
	*out = f.entry;
	return CTL_EXIT_OK;
}

static int queue_show(struct ctl *ctl, int argc, char **argv)
{
	struct store *st;
	struct store_queue_entry e;
	struct user_key *key = NULL;
	unsigned char *blob = NULL, *msg = NULL;
	size_t blen = 0, len = 0, hl;
	int rc;

	if ((rc = find_entry(ctl, "show", argc, argv, &st, &e)) != CTL_EXIT_OK)
		return rc;
	rc = store_queue_blob(st, e.id, &blob, &blen);
	if (rc != STORE_OK)
		return ctl_store_fail(ctl, rc, _("queue show"));
	if (crypto_server_key_load(ctl->cfg.queue.key_file, &key) != 0) {
		free(blob);
		ctl_error(_("cannot read the queue key %s"), ctl->cfg.queue.key_file);
		return CTL_EXIT_FAIL;
	}
	rc = crypto_open(key, blob, blen, &msg, &len);
	user_key_free(key);
	free(blob);
	if (rc != 0) {
		ctl_error(_("queued message %lld cannot be opened with the queue key"),
			  (long long)e.id);
		return CTL_EXIT_FAIL;
	}
	/* The header block only: the body is the sender's business. */
	hl = ctl_header_length(msg, len, SHOW_HEADER_MAX);
	if (ctl->json) {
		json_t *o = entry_json(&e);

		json_object_set_new(o, "size", json_integer((json_int_t)len));
		json_object_set_new(o, "header", json_stringn((const char *)msg, hl));
		ctl_json_print(o);
	} else {
		print_entry(&e);
		printf("\n%.*s", (int)hl, (const char *)msg);
	}
	sodium_memzero(msg, len);
	free(msg);
	return CTL_EXIT_OK;
}

/* Sets the schedule of one entry; MARK_HOLD adds the hold mark, else it is removed. */
static int reschedule(struct ctl *ctl, struct store *st, const struct store_queue_entry *e,
		      int64_t when, bool mark_hold)
{
	char error[sizeof(e->last_error)];
	const char *rest = e->last_error;
	int rc;

	if (is_held(e))
		rest += strlen(QUEUE_HOLD_MARK);
	snprintf(error, sizeof(error), "%s%.*s", mark_hold ? QUEUE_HOLD_MARK : "",
		 (int)(sizeof(error) - 1 - strlen(QUEUE_HOLD_MARK)), rest);
	rc = store_queue_update(st, e->id, e->attempts, when, error);
	if (rc != STORE_OK)
		return ctl_store_fail(ctl, rc, _("queue update"));
	return CTL_EXIT_OK;
}

/* Audits EVENT on E; with --json prints the outcome and returns true. */
static bool report(struct ctl *ctl, const char *event, const struct store_queue_entry *e)
{
	char detail[64];

	snprintf(detail, sizeof(detail), "%lld", (long long)e->id);
	ctl_audit(ctl, event, detail);
	if (ctl->json)
		ctl_json_print(json_pack("{s:b,s:I}", "ok", 1, "id", (json_int_t)e->id));
	return ctl->json;
}

static int queue_retry(struct ctl *ctl, int argc, char **argv)
{
	struct store *st;
	struct store_queue_entry e;
	int rc;

	if ((rc = find_entry(ctl, "retry", argc, argv, &st, &e)) != CTL_EXIT_OK)
		return rc;
	if (is_held(&e)) {
		ctl_error(_("queued message %lld is held; release it instead"), (long long)e.id);
		return CTL_EXIT_FAIL;
	}
	if ((rc = reschedule(ctl, st, &e, (int64_t)time(NULL), false)) != CTL_EXIT_OK)
		return rc;
	if (!report(ctl, "queue.retry", &e))
		printf(_("queued message %lld will be retried now\n"), (long long)e.id);
	return CTL_EXIT_OK;
}

static int queue_hold(struct ctl *ctl, int argc, char **argv)
{
	struct store *st;
	struct store_queue_entry e;
	int rc;

	if ((rc = find_entry(ctl, "hold", argc, argv, &st, &e)) != CTL_EXIT_OK)
		return rc;
	if ((rc = reschedule(ctl, st, &e, QUEUE_HOLD_TIME, true)) != CTL_EXIT_OK)
		return rc;
	if (!report(ctl, "queue.hold", &e))
		printf(_("queued message %lld is held\n"), (long long)e.id);
	return CTL_EXIT_OK;
}

static int queue_release(struct ctl *ctl, int argc, char **argv)
{
	struct store *st;
	struct store_queue_entry e;
	int rc;

	if ((rc = find_entry(ctl, "release", argc, argv, &st, &e)) != CTL_EXIT_OK)
		return rc;
	if (!is_held(&e)) {
		ctl_error(_("queued message %lld is not held"), (long long)e.id);
		return CTL_EXIT_FAIL;
	}
	if ((rc = reschedule(ctl, st, &e, (int64_t)time(NULL), false)) != CTL_EXIT_OK)
		return rc;
	if (!report(ctl, "queue.release", &e))
		printf(_("queued message %lld is released\n"), (long long)e.id);
	return CTL_EXIT_OK;
}

static int queue_delete(struct ctl *ctl, int argc, char **argv)
{
	struct store *st;
	struct store_queue_entry e;
	int rc;

	if ((rc = find_entry(ctl, "delete", argc, argv, &st, &e)) != CTL_EXIT_OK)
		return rc;
	rc = store_queue_del(st, e.id);
	if (rc == STORE_NOTFOUND) {
		ctl_error(_("no queued message %lld"), (long long)e.id);
		return CTL_EXIT_NOTFOUND;
	}
	if (rc != STORE_OK)
		return ctl_store_fail(ctl, rc, _("queue delete"));
	if (!report(ctl, "queue.delete", &e))
		printf(_("queued message %lld deleted (no report goes to the sender)\n"),
		       (long long)e.id);
	return CTL_EXIT_OK;
}

struct flush {
	struct store_queue_entry *items;
	size_t n, cap;
};

static int collect(void *arg, const struct store_queue_entry *e)
{
	struct flush *f = arg;

	if (is_held(e))
		return 0;
	if (f->n == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 64;
		struct store_queue_entry *p = realloc(f->items, cap * sizeof(*p));
		if (!p)
			return -1;
		f->items = p;
		f->cap = cap;
	}
	f->items[f->n++] = *e;
	return 0;
}

static int queue_flush(struct ctl *ctl, int argc, char **argv)
{
	struct store *st;
	struct flush f = {0};
	int64_t now = (int64_t)time(NULL);
	size_t done = 0;
	int n, rc;

	if (ctl_parse_args(ctl, argc, argv, NULL, NULL, 0, 0, &n) != 0)
		return usage("flush");
	if ((rc = ctl_store_open(ctl, &st)) != CTL_EXIT_OK)
		return rc;
	rc = store_queue_list(st, collect, &f);
	if (rc != STORE_OK) {
		free(f.items);
		return ctl_store_fail(ctl, rc, _("queue list"));
	}
	for (size_t i = 0; i < f.n; i++) {
		rc = store_queue_update(st, f.items[i].id, f.items[i].attempts, now,
					f.items[i].last_error);
		if (rc == STORE_OK)
			done++;
		else if (rc != STORE_NOTFOUND) {
			free(f.items);
			return ctl_store_fail(ctl, rc, _("queue update"));
		}
	}
	free(f.items);
	ctl_audit(ctl, "queue.flush", "all");
	if (ctl->json)
		ctl_json_print(json_pack("{s:b,s:I}", "ok", 1, "count", (json_int_t)done));
	else
		printf(_("%zu queued messages will be retried now\n"), done);
	return CTL_EXIT_OK;
}

static const struct ctl_verb verbs[] = {
    {"list", queue_list, N_("queue list"), N_("list the outbound queue")},
    {"show", queue_show, N_("queue show ID"), N_("one queued message: envelope, state, header")},
    {"retry", queue_retry, N_("queue retry ID"), N_("try one queued message again now")},
    {"flush", queue_flush, N_("queue flush"), N_("try every queued message (not held) now")},
    {"delete", queue_delete, N_("queue delete ID"),
     N_("drop a queued message without a report to its sender")},
    {"hold", queue_hold, N_("queue hold ID"), N_("stop delivery attempts of a message")},
    {"release", queue_release, N_("queue release ID"), N_("resume a held message now")},
};

static int usage(const char *verb)
{
	return ctl_usage(verbs, sizeof(verbs) / sizeof(verbs[0]), verb);
}

int ctl_cmd_queue(struct ctl *ctl, int argc, char **argv)
{
	return ctl_dispatch(ctl, verbs, sizeof(verbs) / sizeof(verbs[0]), argc, argv);
}
