/*
 * cmd_app_password.c - posternctl app-password add|list|revoke: passwords
 * for one mail client each, limited to some protocols.
 *
 * add needs the user's password (prompt or stdin) because each app password
 * carries its own wrapped copy of the user's private key: without it, a
 * login with the app password could not open the mailbox. The generated
 * password is shown once and kept only as an Argon2id hash.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "auth/auth.h"
#include "crypto/crypto.h"
#include "ctl/ctl.h"
#include "otp/otp.h"
#include "store/store.h"
#include "util/i18n.h"

static int usage(const char *verb);

static int find_user(struct ctl *ctl, const char *verb, const char *arg, struct store **st,
		     struct store_user *u)
{
	int rc = ctl_user_load(ctl, arg, st, u);

	return rc == CTL_EXIT_USAGE ? usage(verb) : rc;
}

static int app_add(struct ctl *ctl, int argc, char **argv)
{
	const char *protocols = "imap,pop3,smtp";
	const struct ctl_option opts[] = {{"--protocols", &protocols, NULL}, {NULL, NULL, NULL}};
	char *pos[2], password[APP_PASSWORD_LEN + 1], scopes_text[32];
	char detail[STORE_ADDRESS_MAX + APP_PASSWORD_NAME_MAX + 64];
	struct app_password_list list;
	struct store *st;
	struct store_user u;
	struct user_key *key = NULL;
	unsigned scopes;
	int n, rc;

	if (ctl_parse_args(ctl, argc, argv, opts, pos, 2, 2, &n) != 0)
		return usage("add");
	if (app_scopes_parse(protocols, &scopes) != 0) {
		ctl_error(_("invalid --protocols \"%s\": a comma-separated list of imap, pop3, "
			    "smtp"),
			  protocols);
		return usage("add");
	}
	if ((rc = find_user(ctl, "add", pos[0], &st, &u)) != CTL_EXIT_OK)
		return rc;
	if (app_passwords_load(st, u.id, &list) != STORE_OK) {
		rc = ctl_store_fail(ctl, STORE_ERR, u.address);
		store_user_clear(&u);
		return rc;
	}
	if ((rc = ctl_user_unlock(&u, _("Password of the user: "), &key)) != 0) {
		if (rc > 0)
			ctl_error(_("wrong password for %s"), u.address);
		rc = CTL_EXIT_FAIL;
		goto out;
	}
	switch (app_password_create(&list, pos[1], scopes, key, password)) {
	case 0:
		break;
	case -2:
		ctl_error(_("an app password needs a new name of 1-%d printable characters"),
			  APP_PASSWORD_NAME_MAX);
		rc = strnlen(pos[1], APP_PASSWORD_NAME_MAX + 1) <= APP_PASSWORD_NAME_MAX &&
			     pos[1][0] != '\0'
			 ? CTL_EXIT_EXISTS
			 : CTL_EXIT_USAGE;
		goto out;
	case -3:
		ctl_error(_("%s has %d app passwords already; revoke one first"), u.address,
			  APP_PASSWORDS_MAX);
		rc = CTL_EXIT_FAIL;
		goto out;
	default:
		ctl_error(_("cannot create the app password"));
		rc = CTL_EXIT_FAIL;
		goto out;
	}
	if ((rc = app_passwords_save(st, u.id, &list)) != STORE_OK) {
		rc = ctl_store_fail(ctl, rc, u.address);
		goto out;
	}
	app_scopes_format(scopes, scopes_text, sizeof(scopes_text));
	snprintf(detail, sizeof(detail), "%s %s %s", u.address, pos[1], scopes_text);
	ctl_audit(ctl, "app_password.add", detail);
	snprintf(detail, sizeof(detail), "\"%s\" for %s", pos[1], scopes_text);
	ctl_security_notice(ctl, st, &u, AUTH_NOTICE_APP_PASSWORD, detail);
	if (ctl->json) {
		ctl_json_print(json_pack("{s:s,s:s,s:s,s:s}", "address", u.address, "name", pos[1],
					 "protocols", scopes_text, "password", password));
	} else {
		printf(_("App password \"%s\" of %s for %s (shown only now):\n"), pos[1], u.address,
		       scopes_text);
		printf("  %s\n", password);
	}
	rc = CTL_EXIT_OK;
out:
	sodium_memzero(password, sizeof(password));
	user_key_free(key);
	app_passwords_clear(&list);
	store_user_clear(&u);
	return rc;
}

static void format_time(int64_t t, char *out, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t == 0) {
		snprintf(out, len, "%s", _("never"));
		return;
	}
	strftime(out, len, "%Y-%m-%d %H:%M:%S", gmtime_r(&tt, &tm));
}

static int app_list(struct ctl *ctl, int argc, char **argv)
{
	char *pos[1], scopes[32], created[32], used[32];
	struct app_password_list list;
	struct store *st;
	struct store_user u;
	json_t *arr = NULL;
	int n, rc;

	if (ctl_parse_args(ctl, argc, argv, NULL, pos, 1, 1, &n) != 0)
		return usage("list");
	if ((rc = find_user(ctl, "list", pos[0], &st, &u)) != CTL_EXIT_OK)
		return rc;
	if (app_passwords_load(st, u.id, &list) != STORE_OK) {
		rc = ctl_store_fail(ctl, STORE_ERR, u.address);
		store_user_clear(&u);
		return rc;
	}
	if (ctl->json)
		arr = json_array();
	else if (list.n > 0)
		printf("%-20s %-15s %-20s %-20s %s\n", _("NAME"), _("PROTOCOLS"),
		       _("CREATED (UTC)"), _("LAST USED (UTC)"), _("LAST IP"));
	for (size_t i = 0; i < list.n; i++) {
		const struct app_password *a = &list.items[i];

		app_scopes_format(a->scopes, scopes, sizeof(scopes));
		if (arr != NULL) {
			json_array_append_new(
			    arr, json_pack("{s:s,s:s,s:I,s:I,s:s}", "name", a->name, "protocols",
					   scopes, "created", (json_int_t)a->created, "last_used",
					   (json_int_t)a->last_used, "last_ip", a->last_ip));
			continue;
		}
		format_time(a->created, created, sizeof(created));
		format_time(a->last_used, used, sizeof(used));
		printf("%-20s %-15s %-20s %-20s %s\n", a->name, scopes, created, used,
		       a->last_ip[0] ? a->last_ip : "-");
	}
	if (arr != NULL)
		ctl_json_print(arr);
	else if (list.n == 0)
		printf(_("%s has no app passwords\n"), u.address);
	app_passwords_clear(&list);
	store_user_clear(&u);
	return CTL_EXIT_OK;
}

static int app_revoke(struct ctl *ctl, int argc, char **argv)
{
	char *pos[2], detail[STORE_ADDRESS_MAX + APP_PASSWORD_NAME_MAX + 8];
	struct app_password_list list;
	struct store *st;
	struct store_user u;
	int n, rc;

	if (ctl_parse_args(ctl, argc, argv, NULL, pos, 2, 2, &n) != 0)
		return usage("revoke");
	if ((rc = find_user(ctl, "revoke", pos[0], &st, &u)) != CTL_EXIT_OK)
		return rc;
	if (app_passwords_load(st, u.id, &list) != STORE_OK) {
		rc = ctl_store_fail(ctl, STORE_ERR, u.address);
		store_user_clear(&u);
		return rc;
	}
	if (app_password_revoke(&list, pos[1]) != 0) {
		ctl_error(_("%s has no app password named \"%s\""), u.address, pos[1]);
		rc = CTL_EXIT_NOTFOUND;
	} else if ((rc = app_passwords_save(st, u.id, &list)) != STORE_OK) {
		rc = ctl_store_fail(ctl, rc, u.address);
	} else {
		snprintf(detail, sizeof(detail), "%s %s", u.address, pos[1]);
		ctl_audit(ctl, "app_password.revoke", detail);
		ctl_daemon_forget(ctl, u.address);
		if (ctl->json)
			ctl_json_print(json_pack("{s:b,s:s,s:s}", "ok", 1, "address", u.address,
						 "name", pos[1]));
		else
			printf(_("revoked app password \"%s\" of %s\n"), pos[1], u.address);
		rc = CTL_EXIT_OK;
	}
	app_passwords_clear(&list);
	store_user_clear(&u);
	return rc;
}

static const struct ctl_verb verbs[] = {
    {"add", app_add, N_("app-password add ADDRESS NAME [--protocols imap,pop3,smtp]"),
     N_("create an app password (the user's password from prompt or stdin); shown once")},
    {"list", app_list, N_("app-password list ADDRESS"),
     N_("name, protocols, created, last used and last IP of each app password")},
    {"revoke", app_revoke, N_("app-password revoke ADDRESS NAME"), N_("delete an app password")},
};

static int usage(const char *verb)
{
	return ctl_usage(verbs, sizeof(verbs) / sizeof(verbs[0]), verb);
}

int ctl_cmd_app_password(struct ctl *ctl, int argc, char **argv)
{
	return ctl_dispatch(ctl, verbs, sizeof(verbs) / sizeof(verbs[0]), argc, argv);
}
