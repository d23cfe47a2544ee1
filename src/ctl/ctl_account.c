/*
 * ctl_account.c - what the commands about one user's login share (user,
 * otp, app-password, auth): finding the user, asking for and checking a
 * password, the password policy for new passwords, and mailing the user a
 * security notice.
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
#include "deliver/deliver.h"
#include "store/store.h"
#include "util/i18n.h"

int ctl_user_load(struct ctl *ctl, const char *arg, struct store **st, struct store_user *u)
{
	char address[STORE_ADDRESS_MAX + 1], err[512];
	int rc;

	memset(u, 0, sizeof(*u));
	if (ctl_address_normalize(arg, address, sizeof(address), err, sizeof(err)) != 0) {
		ctl_error("%s", err);
		return CTL_EXIT_USAGE;
	}
	if ((rc = ctl_store_open(ctl, st)) != CTL_EXIT_OK)
		return rc;
	rc = store_user_get(*st, address, u);
	if (rc == STORE_NOTFOUND) {
		ctl_error(_("no such user: %s"), address);
		return CTL_EXIT_NOTFOUND;
	}
	if (rc != STORE_OK)
		return ctl_store_fail(ctl, rc, address);
	return CTL_EXIT_OK;
}

char *ctl_password_new(void)
{
	char *p = sodium_malloc(CTL_PASSWORD_MAX + 1);

	if (!p)
		ctl_error(_("out of memory"));
	return p;
}

void ctl_password_free(char *p)
{
	if (p)
		sodium_free(p); /* wipes */
}

int ctl_user_unlock(const struct store_user *u, const char *prompt, struct user_key **key)
{
	char *pw = ctl_password_new();
	ssize_t n;
	int rc = -1;

	*key = NULL;
	if (pw == NULL)
		return -1;
	n = ctl_read_password(prompt, false, pw, CTL_PASSWORD_MAX + 1);
	if (n < 0)
		goto out;
	rc = 1;
	if (crypto_password_verify(u->password_hash, pw, (size_t)n) != 0 ||
	    crypto_user_unlock(u->wrapped_key, u->wrapped_key_len, pw, (size_t)n, key) != 0) {
		*key = NULL;
		goto out;
	}
	rc = 0;
out:
	ctl_password_free(pw);
	return rc;
}

ssize_t ctl_read_new_password(const char *prompt, char *pw)
{
	char why[512];
	ssize_t n = ctl_read_password(prompt, true, pw, CTL_PASSWORD_MAX + 1);

	if (n < 0)
		return -1;
	if ((size_t)n != strlen(pw) || !auth_password_acceptable(pw, why, sizeof(why))) {
		ctl_error(_("password refused: %s"),
			  (size_t)n != strlen(pw) ? _("it contains a NUL byte") : why);
		return -1;
	}
	return n;
}

void ctl_security_notice(struct ctl *ctl, struct store *st, const struct store_user *u, int kind,
			 const char *detail)
{
	struct auth_notice n = {(enum auth_notice_kind)kind,
				u->address,
				ctl->cfg.server.hostname,
				(int64_t)time(NULL),
				NULL,
				"posternctl",
				NULL,
				detail};
	struct store_mailbox inbox;
	struct store_message m;
	char *msg = NULL;
	size_t len = 0;
	int rc = -1;

	if (auth_notice_compose(&n, &msg, &len) != 0 ||
	    store_mailbox_get(st, u->id, "INBOX", &inbox) != STORE_OK ||
	    store_begin(st) != STORE_OK)
		goto out;
	if (deliver_to_mailbox(st, u, inbox.id, 0, n.time, (const unsigned char *)msg, len, NULL,
			       &m) == DELIVER_OK &&
	    store_commit(st) == STORE_OK)
		rc = 0;
	else
		store_rollback(st);
out:
	if (rc != 0)
		ctl_note(_("warning: the security notice could not be delivered to %s"),
			 u->address);
	free(msg);
}
