/*
 * cmd_db.c - posternctl db migrate: applies the schema migrations of sql/
 * not yet applied (posternd does the same at start) and prints the version.
 */
#include <config.h>

#include <stdio.h>

#include "ctl/ctl.h"
#include "store/store.h"
#include "util/i18n.h"

static int usage(const char *verb);

static int db_migrate(struct ctl *ctl, int argc, char **argv)
{
	char *pos[1], detail[64];
	struct store *st;
	int n, rc;

	if (ctl_parse_args(ctl, argc, argv, NULL, pos, 0, 0, &n) != 0)
		return usage("migrate");
	/* ctl_store_open migrates */
	if ((rc = ctl_store_open(ctl, &st)) != CTL_EXIT_OK)
		return rc;
	snprintf(detail, sizeof(detail), "version %d", ctl->schema_version);
	ctl_audit(ctl, "db.migrate", detail);
	if (ctl->json)
		ctl_json_print(json_pack("{s:b,s:s,s:i}", "ok", 1, "engine", store_engine_name(st),
					 "schema_version", ctl->schema_version));
	else
		printf(_("%s store at schema version %d\n"), store_engine_name(st),
		       ctl->schema_version);
	return CTL_EXIT_OK;
}

static const struct ctl_verb verbs[] = {
    {"migrate", db_migrate, N_("db migrate"), N_("bring the store schema up to date")},
};

static int usage(const char *verb)
{
	return ctl_usage(verbs, sizeof(verbs) / sizeof(verbs[0]), verb);
}

int ctl_cmd_db(struct ctl *ctl, int argc, char **argv)
{
	return ctl_dispatch(ctl, verbs, sizeof(verbs) / sizeof(verbs[0]), argc, argv);
}
