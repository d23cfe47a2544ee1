/*
 * cmd_domain.c - posternctl domain add|list|del: the mail domains this
 * server is the final destination for.
 */
#include <config.h>

#include <stdio.h>
#include <string.h>

#include "ctl/ctl.h"
#include "store/store.h"
#include "util/i18n.h"

static int usage(const char *verb);

static int domain_arg(const char *in, char *out, size_t outlen)
{
	char err[512];

	if (ctl_domain_normalize(in, out, outlen, err, sizeof(err)) != 0) {
		ctl_error("%s", err);
		return -1;
	}
	return 0;
}

static int domain_add(struct ctl *ctl, int argc, char **argv)
{
	char *pos[1], domain[STORE_DOMAIN_MAX + 1];
	struct store *st;
	int n, rc;

	if (ctl_parse_args(ctl, argc, argv, NULL, pos, 1, 1, &n) != 0 ||
	    domain_arg(pos[0], domain, sizeof(domain)) != 0) {
		return usage("add");
	}
	if ((rc = ctl_store_open(ctl, &st)) != CTL_EXIT_OK)
		return rc;
	rc = store_domain_add(st, domain);
	if (rc == STORE_EXISTS) {
		ctl_error(_("domain %s already exists"), domain);
		return CTL_EXIT_EXISTS;
	}
	if (rc != STORE_OK)
		return ctl_store_fail(ctl, rc, domain);
	ctl_audit(ctl, "domain.add", domain);
	if (ctl->json)
		ctl_json_print(json_pack("{s:b,s:s}", "ok", 1, "domain", domain));
	else
		printf(_("domain %s added\n"), domain);
	return CTL_EXIT_OK;
}

static int list_one(void *arg, const char *domain)
{
	json_t *arr = arg;

	if (arr)
		json_array_append_new(arr, json_string(domain));
	else
		printf("%s\n", domain);
	return 0;
}

static int domain_list(struct ctl *ctl, int argc, char **argv)
{
	char *pos[1];
	struct store *st;
	json_t *arr = NULL;
	int n, rc;

	if (ctl_parse_args(ctl, argc, argv, NULL, pos, 0, 0, &n) != 0) {
		return usage("list");
	}
	if ((rc = ctl_store_open(ctl, &st)) != CTL_EXIT_OK)
		return rc;
	if (ctl->json)
		arr = json_array();
	rc = store_domain_list(st, list_one, arr);
	if (rc != STORE_OK) {
		json_decref(arr);
		return ctl_store_fail(ctl, rc, _("domain list"));
	}
	if (arr)
		ctl_json_print(arr);
	return CTL_EXIT_OK;
}

static int domain_del(struct ctl *ctl, int argc, char **argv)
{
	char *pos[1], domain[STORE_DOMAIN_MAX + 1];
	struct store *st;
	int n, rc;

	if (ctl_parse_args(ctl, argc, argv, NULL, pos, 1, 1, &n) != 0 ||
	    domain_arg(pos[0], domain, sizeof(domain)) != 0) {
		return usage("del");
	}
	if ((rc = ctl_store_open(ctl, &st)) != CTL_EXIT_OK)
		return rc;
	rc = store_domain_del(st, domain);
	if (rc == STORE_NOTFOUND) {
		ctl_error(_("no such domain: %s"), domain);
		return CTL_EXIT_NOTFOUND;
	}
	if (rc == STORE_EXISTS) {
		ctl_error(_("domain %s still has users; delete them first"), domain);
		return CTL_EXIT_FAIL;
	}
	if (rc != STORE_OK)
		return ctl_store_fail(ctl, rc, domain);
	ctl_audit(ctl, "domain.del", domain);
	if (ctl->json)
		ctl_json_print(json_pack("{s:b,s:s}", "ok", 1, "domain", domain));
	else
		printf(_("domain %s deleted\n"), domain);
	return CTL_EXIT_OK;
}

static const struct ctl_verb verbs[] = {
    {"add", domain_add, N_("domain add DOMAIN"), N_("accept mail for DOMAIN")},
    {"del", domain_del, N_("domain del DOMAIN"), N_("remove DOMAIN (refused while users remain)")},
    {"list", domain_list, N_("domain list"), N_("list the local domains")},
};

static int usage(const char *verb)
{
	return ctl_usage(verbs, sizeof(verbs) / sizeof(verbs[0]), verb);
}

int ctl_cmd_domain(struct ctl *ctl, int argc, char **argv)
{
	return ctl_dispatch(ctl, verbs, sizeof(verbs) / sizeof(verbs[0]), argc, argv);
}
