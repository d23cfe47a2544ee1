/*
 * cmd_trace.c - "posternctl trace": prints the daemon's trace events (recent
 * history, and live ones with --follow) read from its admin socket.
 *
 *   posternctl trace [--follow] [--protocol P] [--user ADDRESS] [--json]
 *
 * Human-readable lines by default ("12:00:01.123 smtp#42 alice@x  C: EHLO
 * foo"); with --json the daemon's JSON lines are passed through unchanged.
 * Credentials never reach this program: the daemon redacts them before
 * they are published.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "ctl/ctl.h"
#include "trace/admin.h"
#include "util/i18n.h"

static const char *const trace_protocols[] = {"smtp", "submission", "pop3", "imap", "http"};

struct trace_output {
	bool json;
	bool first;	  /* the next line is the first of the answer */
	bool failed;	  /* the daemon answered with an error */
	bool write_error; /* stdout went away */
};

/* "HH:MM:SS.mmm" in local time from microseconds since the epoch. */
static void format_time(json_int_t usec, char *out, size_t outlen)
{
	time_t secs = (time_t)(usec / 1000000);
	struct tm tm;
	char hms[16];

	if (localtime_r(&secs, &tm) == NULL || strftime(hms, sizeof(hms), "%H:%M:%S", &tm) == 0)
		snprintf(hms, sizeof(hms), "??:??:??");
	snprintf(out, outlen, "%s.%03d", hms, (int)((usec % 1000000) / 1000));
}

static void print_event(json_t *ev)
{
	const char *kind = json_string_value(json_object_get(ev, "kind"));
	const char *protocol = json_string_value(json_object_get(ev, "protocol"));
	const char *user = json_string_value(json_object_get(ev, "user"));
	const char *text = json_string_value(json_object_get(ev, "text"));
	json_int_t session = json_integer_value(json_object_get(ev, "session"));
	json_int_t elapsed = json_integer_value(json_object_get(ev, "elapsed_usec"));
	char when[32];

	if (kind != NULL && strcmp(kind, "dropped") == 0) {
		printf(_("(%lld events dropped: output too slow)\n"),
		       (long long)json_integer_value(json_object_get(ev, "count")));
		return;
	}
	if (kind == NULL || protocol == NULL || text == NULL)
		return;
	format_time(json_integer_value(json_object_get(ev, "time_usec")), when, sizeof(when));
	printf("%s %s#%lld %s  ", when, protocol, (long long)session, user && *user ? user : "-");
	if (strcmp(kind, "command") == 0)
		printf("C: %s\n", text);
	else if (strcmp(kind, "reply") == 0 && elapsed > 0)
		printf("S: %s  (%.1f ms)\n", text, (double)elapsed / 1000.0);
	else if (strcmp(kind, "reply") == 0)
		printf("S: %s\n", text);
	else if (strcmp(kind, "tls") == 0)
		printf("TLS %s\n", text);
	else if (strcmp(kind, "connect") == 0)
		printf(_("connected from %s\n"), text);
	else if (strcmp(kind, "auth") == 0)
		printf(_("login %s\n"), text);
	else if (strcmp(kind, "disconnect") == 0)
		printf(_("disconnected: %s\n"), text);
	else
		printf("* %s\n", text);
}

static int on_line(void *arg, const char *line)
{
	struct trace_output *out = arg;
	json_t *j = json_loads(line, 0, NULL);
	bool first = out->first;

	out->first = false;
	if (j == NULL) {
		ctl_error(_("posternd sent an unreadable line"));
		out->failed = true;
		return 1;
	}
	/* Only an error answers with "ok"; events never carry it. */
	if (first && json_is_false(json_object_get(j, "ok"))) {
		const char *msg = json_string_value(json_object_get(j, "error"));
		ctl_error(_("posternd refused the trace: %s"), msg ? msg : "?");
		out->failed = true;
		json_decref(j);
		return 1;
	}
	if (out->json)
		printf("%s\n", line);
	else
		print_event(j);
	json_decref(j);
	/* Live output: each event is shown as soon as it arrives. */
	if (fflush(stdout) != 0 || ferror(stdout)) {
		out->write_error = true;
		return 1;
	}
	return 0;
}

int ctl_cmd_trace(struct ctl *ctl, int argc, char **argv)
{
	const char *protocol = NULL, *user = NULL;
	bool follow = false, help = false;
	const struct ctl_option opts[] = {
	    {"--follow", NULL, &follow}, {"-f", NULL, &follow},	  {"--protocol", &protocol, NULL},
	    {"--user", &user, NULL},	 {"--help", NULL, &help}, {NULL, NULL, NULL},
	};
	char *pos[1];
	int npos = 0, rc;
	char path[CONFIG_PATH_MAX], err[1024];
	struct trace_output out = {false, true, false, false};
	json_t *req;
	char *text;

	if (ctl_parse_args(ctl, argc, argv, opts, pos, 0, 0, &npos) != 0) {
		fprintf(stderr,
			_("Usage: posternctl trace [--follow] [--protocol P] [--user ADDRESS] "
			  "[--json]\n"));
		return CTL_EXIT_USAGE;
	}
	if (help) {
		printf(_("Usage: posternctl trace [--follow] [--protocol P] [--user ADDRESS] "
			 "[--json]\n"
			 "Shows recent events of the running posternd; --follow keeps showing "
			 "new ones.\n"));
		return CTL_EXIT_OK;
	}
	if (protocol != NULL) {
		bool known = false;
		for (size_t i = 0; i < sizeof(trace_protocols) / sizeof(trace_protocols[0]); i++)
			known = known || strcmp(protocol, trace_protocols[i]) == 0;
		if (!known) {
			ctl_error(_("unknown protocol \"%s\" (smtp, submission, pop3, imap, http)"),
				  protocol);
			return CTL_EXIT_USAGE;
		}
	}
	if (user != NULL && (user[0] == '\0' || strlen(user) > 320)) {
		ctl_error(_("--user needs an address of at most 320 characters"));
		return CTL_EXIT_USAGE;
	}
	rc = ctl_config(ctl);
	if (rc != CTL_EXIT_OK)
		return rc;
	if (admin_socket_path(&ctl->cfg, path, sizeof(path), err, sizeof(err)) != 0) {
		ctl_error("%s", err);
		return CTL_EXIT_CONFIG;
	}

	req = json_pack("{s:s, s:b, s:b}", "cmd", "trace", "follow", follow, "history", 1);
	if (req == NULL)
		return CTL_EXIT_FAIL;
	if (protocol != NULL)
		json_object_set_new(req, "protocol", json_string(protocol));
	if (user != NULL)
		json_object_set_new(req, "user", json_string(user));
	text = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (text == NULL)
		return CTL_EXIT_FAIL;

	out.json = ctl->json;
	rc = admin_request(path, text, on_line, &out, err, sizeof(err));
	free(text);
	if (rc != 0) {
		ctl_error("%s", err);
		return CTL_EXIT_DAEMON;
	}
	if (out.failed || out.write_error)
		return CTL_EXIT_FAIL;
	return CTL_EXIT_OK;
}
