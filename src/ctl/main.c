/*
 * main.c - posternctl entry point: global options, then one dispatch table of
 * command groups. Each group lives in its own cmd_<group>.c and parses its
 * own verbs (ctl_dispatch in util.c).
 *
 *   posternctl [-c CONFIG] [--json] GROUP VERB [ARGS]
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "ctl/ctl.h"
#include "util/i18n.h"
#include "util/log.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#define DEFAULT_CONFIG SYSCONFDIR "/postern/postern.conf"

struct ctl_group {
	const char *name;
	ctl_command_fn fn;
	const char *help;
};

/* Sorted by name; one line per group. */
static const struct ctl_group groups[] = {
	{"alias", ctl_cmd_alias, N_("aliases: add, list, del")},
	{"app-password", ctl_cmd_app_password, N_("app passwords of a user: add, list, revoke")},
	{"audit", ctl_cmd_audit, N_("the audit log: logins and admin actions")},
	{"auth", ctl_cmd_auth, N_("failed-login throttling: blocks, unblock")},
	{"cert", ctl_cmd_cert, N_("TLS certificates: selfsigned")},
	{"db", ctl_cmd_db, N_("the store: migrate")},
	{"dkim", ctl_cmd_dkim, N_("DKIM signing keys of local domains: keygen, show")},
	{"domain", ctl_cmd_domain, N_("local mail domains: add, list, del")},
	{"init", ctl_cmd_init, N_("create a data dir with config, certificate and store")},
	{"otp", ctl_cmd_otp, N_("one-time codes (TOTP): enroll, reset, status, disable")},
	{"pgp", ctl_cmd_pgp, N_("OpenPGP keys of a user: keygen, import, export, list, delete, locate")},
	{"quarantine", ctl_cmd_quarantine, N_("messages held back as malware: list, show, release, delete")},
	{"queue", ctl_cmd_queue, N_("outbound queue: list, show, retry, flush, delete, hold, release")},
	{"quota", ctl_cmd_quota, N_("mailbox quotas: set")},
	{"recovery", ctl_cmd_recovery, N_("organization recovery key: init")},
	{"scan", ctl_cmd_scan, N_("the scanner: check a message, train, eval")},
	{"sender", ctl_cmd_sender, N_("extra sender addresses of a user: grant, revoke, list")},
	{"smime", ctl_cmd_smime, N_("S/MIME certificates of a user and the organization CA")},
	{"status", ctl_cmd_status, N_("store counts and the running daemon's state")},
	{"trace", ctl_cmd_trace, N_("live protocol events of the running daemon")},
	{"user", ctl_cmd_user,
	 N_("users: add, list, show, del, passwd, lock, unlock, recover")},
};

static void usage(FILE *out)
{
	fprintf(out, _("Usage: posternctl [-c CONFIG] [--json] GROUP COMMAND [ARGS]\n"));
	fprintf(out, _("\nOptions:\n"));
	fprintf(out, _("  -c, --config FILE  config file (default $POSTERN_CONFIG or %s)\n"),
		DEFAULT_CONFIG);
	fprintf(out, _("  --json             machine-readable output\n"));
	fprintf(out, _("  -h, --help         this help\n"));
	fprintf(out, _("\nGroups (\"posternctl GROUP help\" lists the commands of one):\n"));
	for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++)
		fprintf(out, "  %-13s %s\n", groups[i].name, _(groups[i].help));
	fprintf(out, _("\nExit codes: 0 ok, 1 failed, 2 bad arguments, 3 not found, 4 already "
		       "exists, 5 config error, 6 store error, 7 daemon unreachable.\n"));
}

int main(int argc, char **argv)
{
	struct ctl ctl = {0};
	const char *env = getenv("POSTERN_CONFIG");
	int i, rc;

	i18n_init();
	log_init("posternctl", LOG_LEVEL_WARN, false);
	if (crypto_setup() != 0) {
		ctl_error(_("cannot initialize libsodium"));
		return CTL_EXIT_FAIL;
	}
	ctl.config_path = env && *env ? env : DEFAULT_CONFIG;

	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];

		if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
			if (i + 1 >= argc) {
				ctl_error(_("option %s needs a value"), a);
				usage(stderr);
				return CTL_EXIT_USAGE;
			}
			ctl.config_path = argv[++i];
		} else if (strncmp(a, "--config=", 9) == 0) {
			ctl.config_path = a + 9;
		} else if (strcmp(a, "--json") == 0) {
			ctl.json = true;
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return CTL_EXIT_OK;
		} else if (strcmp(a, "--version") == 0) {
			printf("posternctl %s\n", PACKAGE_VERSION);
			return CTL_EXIT_OK;
		} else {
			ctl_error(_("unknown option \"%s\""), a);
			usage(stderr);
			return CTL_EXIT_USAGE;
		}
	}
	if (i >= argc) {
		ctl_error(_("a command group is missing"));
		usage(stderr);
		return CTL_EXIT_USAGE;
	}
	if (strcmp(argv[i], "help") == 0) {
		usage(stdout);
		return CTL_EXIT_OK;
	}
	for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]); g++) {
		if (strcmp(groups[g].name, argv[i]) == 0) {
			rc = groups[g].fn(&ctl, argc - i, argv + i);
			ctl_close(&ctl);
			if (fflush(stdout) != 0 && rc == CTL_EXIT_OK)
				rc = CTL_EXIT_FAIL;
			return rc;
		}
	}
	ctl_error(_("unknown command group \"%s\""), argv[i]);
	usage(stderr);
	return CTL_EXIT_USAGE;
}
