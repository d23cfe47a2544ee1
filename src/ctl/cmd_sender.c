/*
 * cmd_sender.c - posternctl sender grant|revoke|list: addresses a user may
 * send as on submission besides their own address and aliases (issue #4).
 * A grant is one address or "@domain" for every address of a domain; the
 * MAIL FROM check in src/smtp honours it at once (no cache).
 */
#include <config.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ctl/ctl.h"
#include "store/store.h"
#include "util/i18n.h"

static int usage(const char *verb);

/* "local@domain" or "@domain", checked and lower-cased into OUT. */
static int grant_arg(const char *verb, const char *in, char *out, size_t outlen)
{
	char err[512];
	int rc;

	if (in[0] == '@') {
		rc = ctl_domain_normalize(in + 1, out + 1, outlen - 1, err, sizeof(err));
		out[0] = '@';
	} else {
		rc = ctl_address_normalize(in, out, outlen, err, sizeof(err));
	}
	if (rc != 0) {
		ctl_error("%s", err);
		usage(verb);
		return -1;
	}
	return 0;
}

/* Checks USER's syntax, opens the store and loads the user into U. */
static int open_user(struct ctl *ctl, const char *verb, const char *in, struct store **st,
		     struct store_user *u)
{
	int rc = ctl_user_load(ctl, in, st, u);

	return rc == CTL_EXIT_USAGE ? usage(verb) : rc;
}

static int sender_grant(struct ctl *ctl, int argc, char **argv)
{
	char *pos[2], grant[STORE_ADDRESS_MAX + 1], detail[2 * STORE_ADDRESS_MAX + 32];
	struct store *st;
	struct store_user u;
	int n, rc;

	if (ctl_parse_args(ctl, argc, argv, NULL, pos, 2, 2, &n) != 0)
		return usage("grant");
	if (grant_arg("grant", pos[1], grant, sizeof(grant)) != 0)
		return CTL_EXIT_USAGE;
	if ((rc = open_user(ctl, "grant", pos[0], &st, &u)) != CTL_EXIT_OK)
		return rc;
	rc = store_sender_grant(st, u.id, grant);
	if (rc == STORE_EXISTS) {
		ctl_error(_("%s may already send as %s"), u.address, grant);
		store_user_clear(&u);
		return CTL_EXIT_EXISTS;
	}
	if (rc != STORE_OK) {
		store_user_clear(&u);
		return ctl_store_fail(ctl, rc, grant);
	}
	snprintf(detail, sizeof(detail), "%s may send as %s", u.address, grant);
	ctl_audit(ctl, "sender.grant", detail);
	if (ctl->json)
		ctl_json_print(
		    json_pack("{s:b,s:s,s:s}", "ok", 1, "user", u.address, "sender", grant));
	else
		printf(_("%s may now send as %s\n"), u.address, grant);
	store_user_clear(&u);
	return CTL_EXIT_OK;
}

static int sender_revoke(struct ctl *ctl, int argc, char **argv)
{
	char *pos[2], grant[STORE_ADDRESS_MAX + 1], detail[2 * STORE_ADDRESS_MAX + 32];
	struct store *st;
	struct store_user u;
	int n, rc;

	if (ctl_parse_args(ctl, argc, argv, NULL, pos, 2, 2, &n) != 0)
		return usage("revoke");
	if (grant_arg("revoke", pos[1], grant, sizeof(grant)) != 0)
		return CTL_EXIT_USAGE;
	if ((rc = open_user(ctl, "revoke", pos[0], &st, &u)) != CTL_EXIT_OK)
		return rc;
	rc = store_sender_revoke(st, u.id, grant);
	if (rc == STORE_NOTFOUND) {
		ctl_error(_("%s has no grant for %s"), u.address, grant);
		store_user_clear(&u);
		return CTL_EXIT_NOTFOUND;
	}
	if (rc != STORE_OK) {
		store_user_clear(&u);
		return ctl_store_fail(ctl, rc, grant);
	}
	snprintf(detail, sizeof(detail), "%s may no longer send as %s", u.address, grant);
	ctl_audit(ctl, "sender.revoke", detail);
	if (ctl->json)
		ctl_json_print(
		    json_pack("{s:b,s:s,s:s}", "ok", 1, "user", u.address, "sender", grant));
	else
		printf(_("%s may no longer send as %s\n"), u.address, grant);
	store_user_clear(&u);
	return CTL_EXIT_OK;
}

static int list_one(void *arg, const char *address, int64_t created)
{
	json_t *arr = arg;
	char when[32];
	time_t t = (time_t)created;
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL || strftime(when, sizeof(when), "%Y-%m-%d %H:%M", &tm) == 0)
		snprintf(when, sizeof(when), "?");
	if (arr)
		json_array_append_new(
		    arr, json_pack("{s:s,s:I}", "sender", address, "created", (json_int_t)created));
	else
		printf("%-40s %s UTC\n", address, when);
	return 0;
}

static int sender_list(struct ctl *ctl, int argc, char **argv)
{
	char *pos[1];
	struct store *st;
	struct store_user u;
	json_t *arr = NULL;
	int n, rc;

	if (ctl_parse_args(ctl, argc, argv, NULL, pos, 1, 1, &n) != 0)
		return usage("list");
	if ((rc = open_user(ctl, "list", pos[0], &st, &u)) != CTL_EXIT_OK)
		return rc;
	if (ctl->json)
		arr = json_array();
	rc = store_sender_list(st, u.id, list_one, arr);
	if (rc != STORE_OK) {
		json_decref(arr);
		rc = ctl_store_fail(ctl, rc, u.address);
		store_user_clear(&u);
		return rc;
	}
	if (arr)
		ctl_json_print(json_pack("{s:s,s:o}", "user", u.address, "senders", arr));
	store_user_clear(&u);
	return CTL_EXIT_OK;
}

static const struct ctl_verb verbs[] = {
    {"grant", sender_grant, N_("sender grant USER ADDRESS|@DOMAIN"),
     N_("let USER send as ADDRESS, or as any address of DOMAIN")},
    {"list", sender_list, N_("sender list USER"),
     N_("list the addresses USER may send as besides their own and their aliases")},
    {"revoke", sender_revoke, N_("sender revoke USER ADDRESS|@DOMAIN"), N_("take a grant back")},
};

static int usage(const char *verb)
{
	return ctl_usage(verbs, sizeof(verbs) / sizeof(verbs[0]), verb);
}

int ctl_cmd_sender(struct ctl *ctl, int argc, char **argv)
{
	return ctl_dispatch(ctl, verbs, sizeof(verbs) / sizeof(verbs[0]), argc, argv);
}
