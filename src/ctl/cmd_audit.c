/*
 * cmd_audit.c - posternctl audit [--user ADDRESS] [--since TIME] [--json]:
 * the audit log (logins from every protocol, admin actions).
 *
 * Login rows (event "auth.login") carry their facts as a JSON detail (ip,
 * protocol, method, result, reason); --json prints them as fields.
 * TIME is unix seconds, a UTC date "2026-11-24" or "2026-11-24T13:05[:00][Z]",
 * or an age such as 90s, 30m, 2h, 7d.
 */
#include <config.h>

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl/ctl.h"
#include "store/store.h"
#include "util/i18n.h"

static int usage(const char *verb);

/* 0 with *OUT set, or -1 when TEXT is none of the accepted forms. */
static int parse_since(const char *text, int64_t now, int64_t *out)
{
	char *end;
	long long v;
	struct tm tm;
	const char *rest;

	if (text == NULL || !isdigit((unsigned char)text[0]))
		return -1;
	errno = 0;
	v = strtoll(text, &end, 10);
	if (errno == 0 && end != text && v >= 0) {
		int64_t unit = 0;

		if (*end == '\0') {
			*out = v;
			return 0;
		}
		if (end[1] == '\0') {
			unit = *end == 's'   ? 1
			       : *end == 'm' ? 60
			       : *end == 'h' ? 3600
			       : *end == 'd' ? 86400
					     : 0;
			if (unit != 0 && v <= 100LL * 365 * 86400 / unit) {
				*out = now - v * unit;
				return 0;
			}
		}
	}
	memset(&tm, 0, sizeof(tm));
	rest = strptime(text, "%Y-%m-%d", &tm);
	if (rest == NULL)
		return -1;
	if (*rest == 'T' || *rest == ' ') {
		const char *r = strptime(rest + 1, "%H:%M", &tm);

		if (r == NULL)
			return -1;
		rest = r;
		if (*rest == ':' && (rest = strptime(rest + 1, "%S", &tm)) == NULL)
			return -1;
		if (*rest == 'Z')
			rest++;
	}
	if (*rest != '\0')
		return -1;
	*out = (int64_t)timegm(&tm);
	return 0;
}

struct audit_ctx {
	const char *user;
	json_t *arr;
	size_t shown;
};

static int audit_one(void *arg, int64_t t, const char *actor, const char *event, const char *detail)
{
	struct audit_ctx *c = arg;
	char when[32];
	time_t tt = (time_t)t;
	struct tm tm;

	if (c->user != NULL && strcmp(actor, c->user) != 0 &&
	    (strncmp(event, "auth.login", 10) == 0 || strstr(detail, c->user) == NULL))
		return 0;
	c->shown++;
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&tt, &tm));
	if (c->arr != NULL) {
		json_t *row = json_pack("{s:I,s:s,s:s,s:s}", "time", (json_int_t)t, "iso", when,
					"actor", actor, "event", event);
		json_t *facts = detail[0] == '{' ? json_loads(detail, 0, NULL) : NULL;

		if (json_is_object(facts))
			json_object_update(row, facts);
		else
			json_object_set_new(row, "detail", json_string(detail));
		json_decref(facts);
		json_array_append_new(c->arr, row);
		return 0;
	}
	printf("%s  %-30s %-20s %s\n", when, actor, event, detail);
	return 0;
}

static int audit_show(struct ctl *ctl, int argc, char **argv)
{
	const char *user = NULL, *since = NULL;
	const struct ctl_option opts[] = {
	    {"--user", &user, NULL}, {"--since", &since, NULL}, {NULL, NULL, NULL}};
	char address[STORE_ADDRESS_MAX + 1], err[512];
	struct audit_ctx c = {0};
	struct store *st;
	int64_t from = 0;
	int n, rc;

	if (ctl_parse_args(ctl, argc, argv, opts, NULL, 0, 0, &n) != 0)
		return usage("show");
	if (since != NULL && parse_since(since, (int64_t)time(NULL), &from) != 0) {
		ctl_error(
		    _("invalid --since \"%s\": unix seconds, YYYY-MM-DD[THH:MM[:SS]] (UTC) or "
		      "an age like 30m, 2h, 7d"),
		    since);
		return usage("show");
	}
	if (user != NULL) {
		if (ctl_address_normalize(user, address, sizeof(address), err, sizeof(err)) != 0) {
			ctl_error("%s", err);
			return usage("show");
		}
		c.user = address;
	}
	if ((rc = ctl_store_open(ctl, &st)) != CTL_EXIT_OK)
		return rc;
	if (ctl->json)
		c.arr = json_array();
	rc = store_audit_list(st, from, audit_one, &c);
	if (rc != STORE_OK) {
		json_decref(c.arr);
		return ctl_store_fail(ctl, rc, _("audit log"));
	}
	if (c.arr != NULL)
		ctl_json_print(c.arr);
	else if (c.shown == 0)
		ctl_note(_("no audit records match"));
	return CTL_EXIT_OK;
}

static const struct ctl_verb verbs[] = {
    {"show", audit_show, N_("audit [show] [--user ADDRESS] [--since TIME]"),
     N_("audit records, oldest first (TIME: unix seconds, YYYY-MM-DD[THH:MM[:SS]], or 30m, "
	"2h, 7d)")},
};

static int usage(const char *verb)
{
	return ctl_usage(verbs, sizeof(verbs) / sizeof(verbs[0]), verb);
}

/* "audit" alone and "audit --user ..." mean "audit show ...". */
int ctl_cmd_audit(struct ctl *ctl, int argc, char **argv)
{
	if (argc < 2 || argv[1][0] == '-')
		return audit_show(ctl, argc, argv);
	return ctl_dispatch(ctl, verbs, sizeof(verbs) / sizeof(verbs[0]), argc, argv);
}
