/*
 * cmd_auth.c - posternctl auth blocks|unblock: accounts and client
 * addresses held back by the login throttle (otp/throttle.c).
 *
 * Account failure counters live in the store, so this process sees what the
 * daemon wrote and can clear it. Client address counters are kept only in
 * the daemon's memory: blocks asks the running daemon for them and unblock
 * asks it to drop them (the admin socket's "blocks" and "forget"); they
 * expire on their own (docs/login-security.md).
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
#include "trace/admin.h"
#include "util/i18n.h"

static int usage(const char *verb);

struct blocks_ctx {
	struct store *st;
	json_t *arr;
	int64_t now;
	size_t shown;
	int rc;
};

static void print_block(const char *who, uint32_t failures, int64_t retry)
{
	char when[32];

	if (retry != 0) {
		time_t t = (time_t)retry;
		struct tm tm;

		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", gmtime_r(&t, &tm));
	} else {
		snprintf(when, sizeof(when), "%s", _("now"));
	}
	printf("%-40s %8u   %s\n", who, (unsigned)failures, when);
}

static int blocks_one(void *arg, const struct store_user *u)
{
	struct blocks_ctx *c = arg;
	struct throttle_state s;
	int64_t retry;

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
		    c->arr, json_pack("{s:s,s:s,s:i,s:I,s:I,s:I}", "kind", "account", "address",
				      u->address, "failures", (int)s.failures, "last_failure",
				      (json_int_t)s.last_failure, "blocked_until",
				      (json_int_t)s.blocked_until, "retry_at", (json_int_t)retry));
		return 0;
	}
	print_block(u->address, s.failures, retry);
	return 0;
}

/* Collects the daemon's one-line answer to "blocks". */
static int take_line(void *arg, const char *line)
{
	json_t **out = arg;

	json_decref(*out);
	*out = json_loads(line, 0, NULL);
	return 1;
}

/*
 * The client addresses the running daemon holds back: appended to C->arr
 * (JSON) or printed. 1 when listed, 0 when no daemon answers.
 */
static int address_blocks(struct ctl *ctl, struct blocks_ctx *c)
{
	char path[CONFIG_PATH_MAX], err[512];
	json_t *answer = NULL, *list, *b;
	size_t i;

	if (admin_socket_path(&ctl->cfg, path, sizeof(path), err, sizeof(err)) != 0 ||
	    admin_request(path, "{\"cmd\":\"blocks\"}", take_line, &answer, err, sizeof(err)) != 0)
		return 0;
	list = json_object_get(answer, "blocks");
	if (!json_is_array(list)) {
		json_decref(answer);
		return 0;
	}
	if (c->arr == NULL && json_array_size(list) > 0)
		printf("%-40s %8s   %s\n", _("CLIENT ADDRESS"), _("FAILURES"), _("NEXT TRY (UTC)"));
	json_array_foreach(list, i, b)
	{
		const char *addr = json_string_value(json_object_get(b, "address"));

		if (addr == NULL)
			continue;
		c->shown++;
		if (c->arr != NULL) {
			json_object_set_new(b, "kind", json_string("ip"));
			json_array_append(c->arr, b);
			continue;
		}
		print_block(addr, (uint32_t)json_integer_value(json_object_get(b, "failures")),
			    (int64_t)json_integer_value(json_object_get(b, "retry_at")));
	}
	json_decref(answer);
	return 1;
}

static int auth_blocks(struct ctl *ctl, int argc, char **argv)
{
	struct blocks_ctx c = {0};
	size_t accounts;
	int n, rc, daemon;

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
	accounts = c.shown;
	daemon = address_blocks(ctl, &c);
	if (c.arr != NULL)
		ctl_json_print(c.arr);
	else if (daemon)
		ctl_note(_("(%zu accounts, %zu client addresses)"), accounts, c.shown - accounts);
	else
		ctl_note(_("(%zu accounts; no running daemon answered, so client addresses, which "
			   "only the daemon remembers, are not listed)"),
			 accounts);
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
     N_("accounts and client addresses with recent failed logins, and when they may try "
	"again")},
    {"unblock", auth_unblock, N_("auth unblock ADDRESS|IP"),
     N_("clear the failed logins of an account or a client address (ends its block)")},
};

static int usage(const char *verb)
{
	return ctl_usage(verbs, sizeof(verbs) / sizeof(verbs[0]), verb);
}

int ctl_cmd_auth(struct ctl *ctl, int argc, char **argv)
{
	return ctl_dispatch(ctl, verbs, sizeof(verbs) / sizeof(verbs[0]), argc, argv);
}
