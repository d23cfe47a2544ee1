/*
 * cmd_quota.c - posternctl quota set ADDRESS SIZE: the most mail a user may
 * keep (K/M/G suffixes, powers of 1024; 0 = unlimited).
 */
#include <config.h>

#include <inttypes.h>
#include <stdio.h>

#include "ctl/ctl.h"
#include "store/store.h"
#include "util/i18n.h"

static int usage(const char *verb);

static int quota_set(struct ctl *ctl, int argc, char **argv)
{
	char *pos[2], address[STORE_ADDRESS_MAX + 1], err[512], detail[STORE_ADDRESS_MAX + 32];
	char human[32];
	struct store *st;
	struct store_user u;
	int64_t bytes;
	int n, rc;

	if (ctl_parse_args(ctl, argc, argv, NULL, pos, 2, 2, &n) != 0)
		return usage("set");
	if (ctl_address_normalize(pos[0], address, sizeof(address), err, sizeof(err)) != 0) {
		ctl_error("%s", err);
		return usage("set");
	}
	if (ctl_parse_size(pos[1], &bytes) != 0) {
		ctl_error(_("invalid size \"%s\": a number with an optional K, M or G suffix"),
			  pos[1]);
		return usage("set");
	}
	if ((rc = ctl_store_open(ctl, &st)) != CTL_EXIT_OK)
		return rc;
	rc = store_user_get(st, address, &u);
	if (rc == STORE_NOTFOUND) {
		ctl_error(_("no such user: %s"), address);
		return CTL_EXIT_NOTFOUND;
	}
	if (rc != STORE_OK)
		return ctl_store_fail(ctl, rc, address);
	rc = store_user_set_quota(st, u.id, bytes);
	store_user_clear(&u);
	if (rc != STORE_OK)
		return ctl_store_fail(ctl, rc, address);
	snprintf(detail, sizeof(detail), "%s %" PRId64, address, bytes);
	ctl_audit(ctl, "quota.set", detail);
	if (ctl->json) {
		ctl_json_print(json_pack("{s:b,s:s,s:I}", "ok", 1, "address", address,
					 "quota_bytes", (json_int_t)bytes));
	} else if (bytes == 0) {
		printf(_("quota of %s: unlimited\n"), address);
	} else {
		ctl_format_size(bytes, human, sizeof(human));
		printf(_("quota of %s: %s\n"), address, human);
	}
	return CTL_EXIT_OK;
}

static const struct ctl_verb verbs[] = {
    {"set", quota_set, N_("quota set ADDRESS SIZE"),
     N_("limit a user's mail (K/M/G suffixes, 0 = unlimited)")},
};

static int usage(const char *verb)
{
	return ctl_usage(verbs, sizeof(verbs) / sizeof(verbs[0]), verb);
}

int ctl_cmd_quota(struct ctl *ctl, int argc, char **argv)
{
	return ctl_dispatch(ctl, verbs, sizeof(verbs) / sizeof(verbs[0]), argc, argv);
}
