/*
 * cmd_auth.c - posternctl auth blocks|unblock: accounts held back by the
 * login throttle (otp/throttle.c).
 *
 * Account failure counters live in the store, so this process sees what the
 * daemon wrote and can clear it. Client address counters are kept only in
 * the daemon's memory: unblock asks a running daemon to drop them (through
 * the admin socket's "forget"); they cannot be listed here and expire on
 * their own (docs/login-security.md).
 */
#include <config.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ctl/ctl.h"
#include "otp/otp.h"
#include "store/store.h"
#include "util/i18n.h"

static int usage(const char *verb);

struct blocks_ctx {
	struct store *st;
	json_t *arr;
	int64_t now;
	size_t shown;
	int rc;
};

static int blocks_one(void *arg, const struct store_user *u)
{
	struct blocks_ctx *c = arg;
	struct throttle_state s;
	int64_t retry;
	char when[32];

	if (throttle_account_load(c->st, u->id, &s) != STORE_OK) {
		c->rc = STORE_ERR;
		return 1;
	}
	if (throttle_state_idle(&throttle_account_policy, &s, c->now))
		return 0;
	retry = throttle_retry_at(&throttle_account_policy, &s, c->now);
	c->shown++;
	if (c->arr != NULL) {
		json_array_append_new(
		    c->arr, json_pack("{s:s,s:i,s:I,s:I,s:I}", "address", u->address, "failures",
				      (int)s.failures, "last_failure", (json_int_t)s.last_failure,
				      "blocked_until", (json_int_t)s.blocked_until, "retry_at",
				      (json_int_t)retry));
		return 0;
	}
	if (retry != 0) {
		time_t t = (time_t)retry;
		struct tm tm;

		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", gmtime_r(&t, &tm));
	} else {
		snprintf(when, sizeof(when), "%s", _("now"));
	}
	printf("%-40s %8u   %s\n", u->address, (unsigned)s.failures, when);
	return 0;
}

static int auth_blocks(struct ctl *ctl, int argc, char **argv)
{
	struct blocks_ctx c = {0};
	int n, rc;

	if (ctl_parse_args(ctl, argc, argv, NULL, NULL, 0, 0, &n) != 0)
		return usage("blocks");
	if ((rc = ctl_store_open(ctl, &c.st)) != CTL_EXIT_OK)
		return rc;
	c.now = (int64_t)time(NULL);
	if (ctl->json)
		c.arr = json_array();
	else
		printf("%-40s %8s   %s\n", _("ACCOUNT"), _("FAILURES"), _("NEXT TRY (UTC)"));
	rc = store_user_list(c.st, NULL, blocks_one, &c);
	if (rc != STORE_OK || c.rc != STORE_OK) {
		json_decref(c.arr);
		return ctl_store_fail(ctl, rc != STORE_OK ? rc : c.rc, _("failed logins"));
	}
	if (c.arr != NULL)
		ctl_json_print(c.arr);
	else
		ctl_note(_("(%zu accounts; client address limits are kept by the running daemon "
			   "and expire on their own)"),
			 c.shown);
	return CTL_EXIT_OK;
}

/* A client address: the counters are in the running daemon's memory only. */
static int unblock_ip(struct ctl *ctl, const char *ip)
{
	struct store *st;
	int rc;

	if ((rc = ctl_config(ctl)) != CTL_EXIT_OK)
		return rc;
	ctl_daemon_forget(ctl, ip);
	if (ctl_store_open(ctl, &st) == CTL_EXIT_OK)
		ctl_audit(ctl, "auth.unblock", ip);
	if (ctl->json)
		ctl_json_print(json_pack("{s:b,s:s}", "ok", 1, "address", ip));
	else
		printf(_("failed logins from %s cleared in the running daemon\n"), ip);
	return CTL_EXIT_OK;
}

static int auth_unblock(struct ctl *ctl, int argc, char **argv)
{
	char *pos[1], address[STORE_ADDRESS_MAX + 1], err[512];
	unsigned char bin[sizeof(struct in6_addr)];
	struct throttle_state zero = {0};
	struct store *st;
	struct store_user u;
	int n, rc;

	if (ctl_parse_args(ctl, argc, argv, NULL, pos, 1, 1, &n) != 0)
		return usage("unblock");
	if (inet_pton(AF_INET, pos[0], bin) == 1 || inet_pton(AF_INET6, pos[0], bin) == 1)
		return unblock_ip(ctl, pos[0]);
	if (ctl_address_normalize(pos[0], address, sizeof(address), err, sizeof(err)) != 0) {
		ctl_error("%s", err);
		return usage("unblock");
	}
	if ((rc = ctl_store_open(ctl, &st)) != CTL_EXIT_OK)
		return rc;
	memset(&u, 0, sizeof(u));
	rc = store_user_get(st, address, &u);
	if (rc == STORE_NOTFOUND) {
		ctl_error(_("no such user: %s"), address);
		return CTL_EXIT_NOTFOUND;
	}
	if (rc == STORE_OK)
		rc = throttle_account_save(st, u.id, &zero);
	store_user_clear(&u);
	if (rc != STORE_OK)
		return ctl_store_fail(ctl, rc, address);
	ctl_daemon_forget(ctl, address);
	ctl_audit(ctl, "auth.unblock", address);
	if (ctl->json)
		ctl_json_print(json_pack("{s:b,s:s}", "ok", 1, "address", address));
	else
		printf(_("failed logins of %s cleared\n"), address);
	return CTL_EXIT_OK;
}

static const struct ctl_verb verbs[] = {
    {"blocks", auth_blocks, N_("auth blocks"),
     N_("accounts with recent failed logins, and when they may try again")},
    {"unblock", auth_unblock, N_("auth unblock ADDRESS"),
     N_("clear the failed logins of an account (ends its block)")},
};

static int usage(const char *verb)
{
	return ctl_usage(verbs, sizeof(verbs) / sizeof(verbs[0]), verb);
}

int ctl_cmd_auth(struct ctl *ctl, int argc, char **argv)
{
	return ctl_dispatch(ctl, verbs, sizeof(verbs) / sizeof(verbs[0]), argc, argv);
}
