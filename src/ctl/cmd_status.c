/*
 * cmd_status.c - posternctl status: what the store holds (domains, users,
 * messages, bytes, queued mail) and, when posternd answers on its admin
 * socket, its pid, uptime and open connections. A daemon that is not running
 * is reported, not treated as an error, unless --require-daemon is given.
 */
#include <config.h>

#include <stdio.h>
#include <string.h>

#include "ctl/ctl.h"
#include "store/store.h"
#include "trace/admin.h"
#include "util/i18n.h"

static int keep_first_line(void *arg, const char *line)
{
	json_t **answer = arg;
	json_error_t jerr;

	if (!*answer)
		*answer = json_loads(line, 0, &jerr);
	return 1; /* one line is the whole answer */
}

/* Asks the daemon; returns its answer object or NULL with ERR set. */
static json_t *daemon_status(struct ctl *ctl, char *err, size_t errlen)
{
	char path[CONFIG_PATH_MAX];
	json_t *answer = NULL;

	if (admin_socket_path(&ctl->cfg, path, sizeof(path), err, errlen) != 0)
		return NULL;
	if (admin_request(path, "{\"cmd\":\"status\"}", keep_first_line, &answer, err, errlen) !=
	    0) {
		json_decref(answer);
		return NULL;
	}
	if (!json_is_object(answer) || !json_is_true(json_object_get(answer, "ok"))) {
		snprintf(err, errlen, _("the daemon gave an unexpected answer"));
		json_decref(answer);
		return NULL;
	}
	return answer;
}

/* Plain format strings (no PRI macros) so xgettext sees whole messages. */
static void print_daemon(json_t *d)
{
	long long uptime = (long long)json_integer_value(json_object_get(d, "uptime"));
	long long pid = (long long)json_integer_value(json_object_get(d, "pid"));
	json_t *conns = json_object_get(d, "connections"), *v;
	const char *version = json_string_value(json_object_get(d, "version"));
	const char *proto;

	printf(_("Daemon:      running, pid %lld, version %s\n"), pid, version ? version : "?");
	printf(_("Uptime:      %lld days %02lld:%02lld:%02lld\n"), uptime / 86400,
	       uptime % 86400 / 3600, uptime % 3600 / 60, uptime % 60);
	printf(_("Connections:"));
	if (json_object_size(conns) == 0)
		printf(" 0");
	json_object_foreach(conns, proto, v)
	    printf(" %s=%lld", proto, (long long)json_integer_value(v));
	printf("\n");
}

static int status(struct ctl *ctl, int argc, char **argv)
{
	bool require = false;
	const struct ctl_option opts[] = {{"--require-daemon", NULL, &require}, {NULL, NULL, NULL}};
	char *pos[1], err[512], size[32];
	struct store *st;
	struct store_stats s;
	json_t *daemon, *out;
	int n, rc;

	if (ctl_parse_args(ctl, argc, argv, opts, pos, 0, 0, &n) != 0) {
		fprintf(stderr, _("Usage: posternctl status [--require-daemon]\n"));
		return CTL_EXIT_USAGE;
	}
	if ((rc = ctl_store_open(ctl, &st)) != CTL_EXIT_OK)
		return rc;
	memset(&s, 0, sizeof(s));
	rc = store_stats(st, &s);
	if (rc != STORE_OK)
		return ctl_store_fail(ctl, rc, _("store statistics"));
	daemon = daemon_status(ctl, err, sizeof(err));
	if (ctl->json) {
		out =
		    json_pack("{s:s,s:i,s:{s:I,s:I,s:I,s:I,s:I,s:I}}", "engine",
			      store_engine_name(st), "schema_version", ctl->schema_version, "store",
			      "domains", (json_int_t)s.domains, "users", (json_int_t)s.users,
			      "aliases", (json_int_t)s.aliases, "messages", (json_int_t)s.messages,
			      "bytes", (json_int_t)s.bytes, "queued", (json_int_t)s.queued);
		if (out) {
			if (daemon) {
				json_object_set_new(daemon, "running", json_true());
				json_object_del(daemon, "ok");
				json_object_set(out, "daemon", daemon);
			} else {
				json_object_set_new(
				    out, "daemon",
				    json_pack("{s:b,s:s}", "running", 0, "error", err));
			}
		}
		ctl_json_print(out);
	} else {
		ctl_format_size(s.bytes, size, sizeof(size));
		printf(_("Store:       %s, schema version %d\n"), store_engine_name(st),
		       ctl->schema_version);
		printf(_("Domains:     %lld\n"), (long long)s.domains);
		printf(_("Users:       %lld\n"), (long long)s.users);
		printf(_("Aliases:     %lld\n"), (long long)s.aliases);
		printf(_("Messages:    %lld (%s)\n"), (long long)s.messages, size);
		printf(_("Queued:      %lld\n"), (long long)s.queued);
		if (daemon)
			print_daemon(daemon);
		else
			printf(_("Daemon:      not reachable (%s)\n"), err);
	}
	rc = CTL_EXIT_OK;
	if (!daemon && require) {
		ctl_error(_("the daemon is not reachable: %s"), err);
		rc = CTL_EXIT_DAEMON;
	}
	json_decref(daemon);
	return rc;
}

int ctl_cmd_status(struct ctl *ctl, int argc, char **argv)
{
	if (argc >= 2 && (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0)) {
		printf("  posternctl status [--require-daemon]\n      %s\n",
		       _("store counts and the running daemon's state"));
		return CTL_EXIT_OK;
	}
	return status(ctl, argc, argv);
}
