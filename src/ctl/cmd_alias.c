/*
 * cmd_alias.c - posternctl alias add|list|del: extra addresses of a local
 * domain that deliver to a local user.
 */
#include <config.h>

#include <stdio.h>
#include <string.h>

#include "ctl/ctl.h"
#include "store/store.h"
#include "util/i18n.h"

static int usage(const char *verb);

static int address_arg(const char *verb, const char *in, char *out, size_t outlen)
{
	char err[512];

	if (ctl_address_normalize(in, out, outlen, err, sizeof(err)) != 0) {
		ctl_error("%s", err);
		usage(verb);
		return -1;
	}
	return 0;
}

static int alias_add(struct ctl *ctl, int argc, char **argv)
{
	char *pos[2], alias[STORE_ADDRESS_MAX + 1], target[STORE_ADDRESS_MAX + 1];
	char detail[2 * STORE_ADDRESS_MAX + 8];
	struct store *st;
	struct store_user u;
	int n, rc;

	if (ctl_parse_args(ctl, argc, argv, NULL, pos, 2, 2, &n) != 0)
		return usage("add");
	if (address_arg("add", pos[0], alias, sizeof(alias)) != 0 ||
	    address_arg("add", pos[1], target, sizeof(target)) != 0)
		return CTL_EXIT_USAGE;
	if (strcmp(alias, target) == 0) {
		ctl_error(_("an alias cannot point at itself"));
		return CTL_EXIT_USAGE;
	}
	if ((rc = ctl_store_open(ctl, &st)) != CTL_EXIT_OK)
		return rc;
	rc = store_domain_exists(st, strchr(alias, '@') + 1);
	if (rc == STORE_NOTFOUND) {
		ctl_error(_("the domain of %s is not a local domain"), alias);
		return CTL_EXIT_NOTFOUND;
	}
	if (rc != STORE_OK)
		return ctl_store_fail(ctl, rc, alias);
	memset(&u, 0, sizeof(u));
	rc = store_user_get(st, target, &u);
	store_user_clear(&u);
	if (rc == STORE_NOTFOUND) {
		ctl_error(_("the target %s is not a local user"), target);
		return CTL_EXIT_NOTFOUND;
	}
	if (rc != STORE_OK)
		return ctl_store_fail(ctl, rc, target);
	memset(&u, 0, sizeof(u));
	rc = store_user_get(st, alias, &u);
	store_user_clear(&u);
	if (rc == STORE_OK) {
		ctl_error(_("%s is already a user"), alias);
		return CTL_EXIT_EXISTS;
	}
	rc = store_alias_add(st, alias, target);
	if (rc == STORE_EXISTS) {
		ctl_error(_("alias %s already exists"), alias);
		return CTL_EXIT_EXISTS;
	}
	if (rc == STORE_NOTFOUND) {
		ctl_error(_("the target %s is not a local user"), target);
		return CTL_EXIT_NOTFOUND;
	}
	if (rc != STORE_OK)
		return ctl_store_fail(ctl, rc, alias);
	snprintf(detail, sizeof(detail), "%s -> %s", alias, target);
	ctl_audit(ctl, "alias.add", detail);
	if (ctl->json)
		ctl_json_print(
		    json_pack("{s:b,s:s,s:s}", "ok", 1, "alias", alias, "target", target));
	else
		printf(_("alias %s -> %s added\n"), alias, target);
	return CTL_EXIT_OK;
}

static int list_one(void *arg, const char *alias, const char *target)
{
	json_t *arr = arg;

	if (arr)
		json_array_append_new(arr,
				      json_pack("{s:s,s:s}", "alias", alias, "target", target));
	else
		printf("%-40s -> %s\n", alias, target);
	return 0;
}

static int list_domain(void *arg, const char *domain)
{
	void **ctx = arg; /* {store, json array or NULL} */

	return store_alias_list(ctx[0], domain, list_one, ctx[1]);
}

static int alias_list(struct ctl *ctl, int argc, char **argv)
{
	char *pos[1], domain[STORE_DOMAIN_MAX + 1], err[512];
	struct store *st;
	json_t *arr = NULL;
	void *ctx[2];
	int n, rc;

	if (ctl_parse_args(ctl, argc, argv, NULL, pos, 0, 1, &n) != 0)
		return usage("list");
	if (n == 1 && ctl_domain_normalize(pos[0], domain, sizeof(domain), err, sizeof(err)) != 0) {
		ctl_error("%s", err);
		return usage("list");
	}
	if ((rc = ctl_store_open(ctl, &st)) != CTL_EXIT_OK)
		return rc;
	if (ctl->json)
		arr = json_array();
	ctx[0] = st;
	ctx[1] = arr;
	if (n == 1) {
		rc = store_domain_exists(st, domain);
		if (rc == STORE_NOTFOUND) {
			json_decref(arr);
			ctl_error(_("no such domain: %s"), domain);
			return CTL_EXIT_NOTFOUND;
		}
		if (rc == STORE_OK)
			rc = store_alias_list(st, domain, list_one, arr);
	} else {
		/* one domain at a time: the store lists aliases per domain */
		rc = store_domain_list(st, list_domain, ctx);
	}
	if (rc != STORE_OK) {
		json_decref(arr);
		return ctl_store_fail(ctl, rc, _("alias list"));
	}
	if (arr)
		ctl_json_print(arr);
	return CTL_EXIT_OK;
}

static int alias_del(struct ctl *ctl, int argc, char **argv)
{
	char *pos[1], alias[STORE_ADDRESS_MAX + 1];
	struct store *st;
	int n, rc;

	if (ctl_parse_args(ctl, argc, argv, NULL, pos, 1, 1, &n) != 0)
		return usage("del");
	if (address_arg("del", pos[0], alias, sizeof(alias)) != 0)
		return CTL_EXIT_USAGE;
	if ((rc = ctl_store_open(ctl, &st)) != CTL_EXIT_OK)
		return rc;
	rc = store_alias_del(st, alias);
	if (rc == STORE_NOTFOUND) {
		ctl_error(_("no such alias: %s"), alias);
		return CTL_EXIT_NOTFOUND;
	}
	if (rc != STORE_OK)
		return ctl_store_fail(ctl, rc, alias);
	ctl_audit(ctl, "alias.del", alias);
	if (ctl->json)
		ctl_json_print(json_pack("{s:b,s:s}", "ok", 1, "alias", alias));
	else
		printf(_("alias %s deleted\n"), alias);
	return CTL_EXIT_OK;
}

static const struct ctl_verb verbs[] = {
    {"add", alias_add, N_("alias add ALIAS TARGET"),
     N_("deliver mail for ALIAS to the local user TARGET")},
    {"del", alias_del, N_("alias del ALIAS"), N_("remove an alias")},
    {"list", alias_list, N_("alias list [DOMAIN]"), N_("list aliases and their targets")},
};

static int usage(const char *verb)
{
	return ctl_usage(verbs, sizeof(verbs) / sizeof(verbs[0]), verb);
}

int ctl_cmd_alias(struct ctl *ctl, int argc, char **argv)
{
	return ctl_dispatch(ctl, verbs, sizeof(verbs) / sizeof(verbs[0]), argc, argv);
}
