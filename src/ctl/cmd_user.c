/*
 * cmd_user.c - posternctl user add|list|show|del|passwd|lock|unlock|recover.
 *
 * A user owns an X25519 key pair whose private half is stored wrapped by a
 * key derived from the password, so every password operation here goes
 * through crypto/: add makes the pair, passwd with the old password rewraps
 * it, recover unseals it with the organization recovery key and rewraps it.
 * An admin reset without either cannot reach the old private key, so it
 * gives the user a new pair: the old mail stays in the store but nobody can
 * read it any more, and the app passwords (each wraps the old key) are
 * revoked; the command says so before it acts. New passwords must pass the
 * password policy; every change mails the user a security notice.
 * Passwords come from a prompt or stdin, never argv.
 */
#include <config.h>

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "auth/auth.h"
#include "crypto/crypto.h"
#include "crypto/gpg_home.h"
#include "ctl/ctl.h"
#include "otp/otp.h"
#include "store/store.h"
#include "util/i18n.h"

static int usage(const char *verb);

/* Loads the user ARG names; an exit code, with *U filled on CTL_EXIT_OK. */
static int load_user(struct ctl *ctl, const char *verb, const char *arg, struct store **st,
		     struct store_user *u)
{
	int rc = ctl_user_load(ctl, arg, st, u);

	return rc == CTL_EXIT_USAGE ? usage(verb) : rc;
}

/* Seals K to the configured recovery key. 1 sealed, 0 none configured, -1 failed. */
static int seal_recovery(struct ctl *ctl, const struct user_key *k, unsigned char **out,
			 size_t *out_len)
{
	unsigned char pub[32];
	int have = ctl_recovery_public_key(ctl, pub);

	*out = NULL;
	*out_len = 0;
	if (have <= 0)
		return have;
	if (crypto_recovery_seal(k, pub, out, out_len) != 0) {
		ctl_error(_("cannot seal the key to the recovery key"));
		return -1;
	}
	return 1;
}

/* The short answer of a command that changed ADDRESS: JSON, or FMT for people. */
static void print_ok(struct ctl *ctl, const char *address, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void print_ok(struct ctl *ctl, const char *address, const char *fmt, ...)
{
	va_list ap;

	if (ctl->json) {
		ctl_json_print(json_pack("{s:b,s:s}", "ok", 1, "address", address));
		return;
	}
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
}

int ctl_user_create(struct ctl *ctl, const char *address, const char *pw, size_t pwlen,
		    unsigned char pub_out[32], bool *recovery_out)
{
	struct store_user u;
	struct user_key *key = NULL;
	int rc, sealed;

	memset(&u, 0, sizeof(u));
	snprintf(u.address, sizeof(u.address), "%s", address);
	if (crypto_password_hash(pw, pwlen, u.password_hash) != 0 ||
	    crypto_user_keygen(pw, pwlen, u.public_key, &u.wrapped_key, &u.wrapped_key_len, &key) !=
		0) {
		ctl_error(_("cannot create the password hash and key pair"));
		store_user_clear(&u);
		return CTL_EXIT_FAIL;
	}
	sealed = seal_recovery(ctl, key, &u.recovery_key, &u.recovery_key_len);
	user_key_free(key);
	if (sealed < 0) {
		store_user_clear(&u);
		return CTL_EXIT_FAIL;
	}
	rc = store_user_add(ctl->st, &u);
	if (rc == STORE_OK) {
		ctl_audit(ctl, "user.add", address);
		memcpy(pub_out, u.public_key, 32);
		*recovery_out = sealed > 0;
	}
	sodium_memzero(u.password_hash, sizeof(u.password_hash));
	store_user_clear(&u);
	if (rc == STORE_EXISTS) {
		ctl_error(_("user %s already exists"), address);
		return CTL_EXIT_EXISTS;
	}
	if (rc == STORE_NOTFOUND) {
		ctl_error(_("no such domain: %s"), strchr(address, '@') + 1);
		return CTL_EXIT_NOTFOUND;
	}
	if (rc != STORE_OK)
		return ctl_store_fail(ctl, rc, address);
	return CTL_EXIT_OK;
}

static int user_add(struct ctl *ctl, int argc, char **argv)
{
	char *pos[1], address[STORE_ADDRESS_MAX + 1], err[512], b64[64], prompt[512];
	unsigned char pub[32];
	const char *at;
	struct store *st;
	struct store_user u;
	char *pw = NULL;
	bool sealed = false;
	ssize_t pwlen;
	int n, rc;

	if (ctl_parse_args(ctl, argc, argv, NULL, pos, 1, 1, &n) != 0)
		return usage("add");
	if (ctl_address_normalize(pos[0], address, sizeof(address), err, sizeof(err)) != 0) {
		ctl_error("%s", err);
		return usage("add");
	}
	if ((rc = ctl_store_open(ctl, &st)) != CTL_EXIT_OK)
		return rc;
	at = strchr(address, '@');
	rc = store_domain_exists(st, at + 1);
	if (rc == STORE_NOTFOUND) {
		ctl_error(_("no such domain: %s (add it with \"posternctl domain add %s\")"),
			  at + 1, at + 1);
		return CTL_EXIT_NOTFOUND;
	}
	if (rc != STORE_OK)
		return ctl_store_fail(ctl, rc, at + 1);
	memset(&u, 0, sizeof(u));
	rc = store_user_get(st, address, &u);
	store_user_clear(&u);
	if (rc == STORE_OK) {
		ctl_error(_("user %s already exists"), address);
		return CTL_EXIT_EXISTS;
	}
	if (rc != STORE_NOTFOUND)
		return ctl_store_fail(ctl, rc, address);

	if (!(pw = ctl_password_new()))
		return CTL_EXIT_FAIL;
	snprintf(prompt, sizeof(prompt), _("Password for %s: "), address);
	pwlen = ctl_read_new_password(prompt, pw);
	if (pwlen < 0) {
		ctl_password_free(pw);
		return CTL_EXIT_USAGE;
	}
	rc = ctl_user_create(ctl, address, pw, (size_t)pwlen, pub, &sealed);
	ctl_password_free(pw);
	if (rc != CTL_EXIT_OK)
		return rc;
	ctl_base64(pub, sizeof(pub), b64, sizeof(b64));
	if (ctl->json)
		ctl_json_print(json_pack("{s:b,s:s,s:s,s:b}", "ok", 1, "address", address,
					 "public_key", b64, "recovery", sealed));
	else
		printf(_("user %s added%s\n"), address,
		       sealed ? _(" (with a recovery copy of its key)") : "");
	return CTL_EXIT_OK;
}

static json_t *user_json(const struct store_user *u)
{
	char b64[64];

	ctl_base64(u->public_key, sizeof(u->public_key), b64, sizeof(b64));
	return json_pack("{s:s,s:I,s:b,s:I,s:I,s:I,s:s,s:b}", "address", u->address, "id",
			 (json_int_t)u->id, "locked", u->locked, "quota_bytes",
			 (json_int_t)u->quota_bytes, "used_bytes", (json_int_t)u->used_bytes,
			 "created", (json_int_t)u->created, "public_key", b64, "recovery",
			 u->recovery_key != NULL && u->recovery_key_len > 0);
}

static void quota_text(const struct store_user *u, char *out, size_t outlen)
{
	char used[32], quota[32];

	ctl_format_size(u->used_bytes, used, sizeof(used));
	if (u->quota_bytes > 0) {
		ctl_format_size(u->quota_bytes, quota, sizeof(quota));
		snprintf(out, outlen, "%s / %s", used, quota);
	} else {
		snprintf(out, outlen, _("%s / unlimited"), used);
	}
}

static int list_one(void *arg, const struct store_user *u)
{
	json_t *arr = arg;
	char q[96];

	if (arr) {
		json_array_append_new(arr, user_json(u));
		return 0;
	}
	quota_text(u, q, sizeof(q));
	printf("%-40s %-28s %s\n", u->address, q, u->locked ? _("locked") : "");
	return 0;
}

static int user_list(struct ctl *ctl, int argc, char **argv)
{
	char *pos[1], domain[STORE_DOMAIN_MAX + 1], err[512];
	struct store *st;
	json_t *arr = NULL;
	int n, rc;

	if (ctl_parse_args(ctl, argc, argv, NULL, pos, 0, 1, &n) != 0)
		return usage("list");
	if (n == 1 && ctl_domain_normalize(pos[0], domain, sizeof(domain), err, sizeof(err)) != 0) {
		ctl_error("%s", err);
		return usage("list");
	}
	if ((rc = ctl_store_open(ctl, &st)) != CTL_EXIT_OK)
		return rc;
	if (n == 1) {
		rc = store_domain_exists(st, domain);
		if (rc == STORE_NOTFOUND) {
			ctl_error(_("no such domain: %s"), domain);
			return CTL_EXIT_NOTFOUND;
		}
		if (rc != STORE_OK)
			return ctl_store_fail(ctl, rc, domain);
	}
	if (ctl->json)
		arr = json_array();
	rc = store_user_list(st, n == 1 ? domain : NULL, list_one, arr);
	if (rc != STORE_OK) {
		json_decref(arr);
		return ctl_store_fail(ctl, rc, _("user list"));
	}
	if (arr)
		ctl_json_print(arr);
	return CTL_EXIT_OK;
}

static const char *special_use_name(enum store_special_use s)
{
	switch (s) {
	case SPECIAL_SENT:
		return "sent";
	case SPECIAL_DRAFTS:
		return "drafts";
	case SPECIAL_JUNK:
		return "junk";
	case SPECIAL_TRASH:
		return "trash";
	case SPECIAL_ARCHIVE:
		return "archive";
	case SPECIAL_NONE:
	default:
		return "";
	}
}

static int mailbox_one(void *arg, const struct store_mailbox *mb)
{
	json_t *arr = arg;
	char size[32];

	if (arr) {
		json_array_append_new(arr, json_pack("{s:s,s:I,s:I,s:s,s:b}", "name", mb->name,
						     "messages", (json_int_t)mb->messages, "bytes",
						     (json_int_t)mb->bytes, "special_use",
						     special_use_name(mb->special_use),
						     "subscribed", mb->subscribed));
		return 0;
	}
	ctl_format_size(mb->bytes, size, sizeof(size));
	printf("  %-30s %8" PRIu32 " %s %12s\n", mb->name, mb->messages, _("messages"), size);
	return 0;
}

static int user_show(struct ctl *ctl, int argc, char **argv)
{
	char *pos[1], q[96], b64[64], when[64];
	struct store *st;
	struct store_user u;
	json_t *obj = NULL, *boxes = NULL;
	time_t created;
	int n, rc;

	if (ctl_parse_args(ctl, argc, argv, NULL, pos, 1, 1, &n) != 0)
		return usage("show");
	if ((rc = load_user(ctl, "show", pos[0], &st, &u)) != CTL_EXIT_OK)
		return rc;
	if (ctl->json) {
		obj = user_json(&u);
		boxes = json_array();
		json_object_set_new(obj, "mailboxes", boxes);
	} else {
		quota_text(&u, q, sizeof(q));
		ctl_base64(u.public_key, sizeof(u.public_key), b64, sizeof(b64));
		created = (time_t)u.created;
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", gmtime(&created));
		printf(_("Address:     %s\n"), u.address);
		printf(_("Created:     %s\n"), when);
		printf(_("Locked:      %s\n"), u.locked ? _("yes") : _("no"));
		printf(_("Usage:       %s\n"), q);
		printf(_("Public key:  %s\n"), b64);
		printf(_("Recovery:    %s\n"),
		       u.recovery_key_len > 0 ? _("a recovery copy of the key exists") : _("none"));
		printf(_("Mailboxes:\n"));
	}
	rc = store_mailbox_list(st, u.id, mailbox_one, boxes);
	store_user_clear(&u);
	if (rc != STORE_OK) {
		json_decref(obj);
		return ctl_store_fail(ctl, rc, _("mailbox list"));
	}
	if (obj)
		ctl_json_print(obj);
	return CTL_EXIT_OK;
}

/* Aliases pointing at a user: removed with the user. */
struct alias_list {
	const char *target;
	json_t *aliases;
};

static int collect_alias(void *arg, const char *alias, const char *target)
{
	struct alias_list *l = arg;

	if (strcmp(target, l->target) == 0)
		json_array_append_new(l->aliases, json_string(alias));
	return 0;
}

static int collect_domain(void *arg, const char *domain)
{
	return json_array_append_new(arg, json_string(domain)) == 0 ? 0 : -1;
}

/* Aliases of every local domain that point at L->target. */
static int collect_aliases_to(struct store *st, struct alias_list *l)
{
	json_t *domains = json_array(), *d;
	size_t i;
	int rc;

	if (!domains)
		return STORE_ERR;
	rc = store_domain_list(st, collect_domain, domains);
	json_array_foreach(domains, i, d)
	{
		if (rc != STORE_OK)
			break;
		rc = store_alias_list(st, json_string_value(d), collect_alias, l);
	}
	json_decref(domains);
	return rc;
}

static int user_del(struct ctl *ctl, int argc, char **argv)
{
	bool yes = false;
	const struct ctl_option opts[] = {{"--yes", NULL, &yes}, {NULL, NULL, NULL}};
	char *pos[1], address[STORE_ADDRESS_MAX + 1], question[512], gerr[512];
	struct store *st;
	struct store_user u;
	struct alias_list al = {address, NULL};
	json_t *a;
	size_t i;
	int n, rc;

	if (ctl_parse_args(ctl, argc, argv, opts, pos, 1, 1, &n) != 0)
		return usage("del");
	if ((rc = load_user(ctl, "del", pos[0], &st, &u)) != CTL_EXIT_OK)
		return rc;
	snprintf(address, sizeof(address), "%s", u.address);
	store_user_clear(&u);
	if (!yes) {
		snprintf(question, sizeof(question), _("Delete %s and all of its mail for good?"),
			 address);
		if (!ctl_confirm(question)) {
			ctl_error(_("not deleted (confirm, or pass --yes)"));
			return CTL_EXIT_FAIL;
		}
	}
	if (!(al.aliases = json_array())) {
		ctl_error(_("out of memory"));
		return CTL_EXIT_FAIL;
	}
	/* Aliases that would point nowhere go with the user, in one transaction. */
	rc = collect_aliases_to(st, &al);
	if (rc == STORE_OK)
		rc = store_begin(st);
	if (rc != STORE_OK) {
		json_decref(al.aliases);
		return ctl_store_fail(ctl, rc, address);
	}
	rc = store_user_del(st, address);
	json_array_foreach(al.aliases, i, a)
	{
		if (rc != STORE_OK)
			break;
		rc = store_alias_del(st, json_string_value(a));
	}
	if (rc == STORE_OK)
		rc = store_commit(st);
	else
		store_rollback(st);
	if (rc != STORE_OK) {
		json_decref(al.aliases);
		if (rc == STORE_NOTFOUND) {
			ctl_error(_("no such user: %s"), address);
			return CTL_EXIT_NOTFOUND;
		}
		return ctl_store_fail(ctl, rc, address);
	}
	ctl_audit(ctl, "user.del", address);
	json_array_foreach(al.aliases, i, a) ctl_audit(ctl, "alias.del", json_string_value(a));
	ctl_daemon_forget(ctl, address);
	/* The OpenPGP/S-MIME keys and the published WKD key go with the user. */
	if (gpg_home_remove(&ctl->cfg, address, gerr, sizeof(gerr)) < 0)
		ctl_note(_("the OpenPGP and S/MIME keys of %s were not removed: %s\n"
			   "Remove them with \"posternctl pgp delete %s --all\"."),
			 address, gerr, address);
	if (ctl->json) {
		ctl_json_print(json_pack("{s:b,s:s,s:O}", "ok", 1, "address", address,
					 "aliases_removed", al.aliases));
	} else {
		printf(_("user %s deleted\n"), address);
		json_array_foreach(al.aliases, i, a)
		    printf(_("alias %s deleted\n"), json_string_value(a));
	}
	json_decref(al.aliases);
	return CTL_EXIT_OK;
}

static int user_set_locked(struct ctl *ctl, int argc, char **argv, bool locked)
{
	const char *verb = locked ? "lock" : "unlock";
	char *pos[1], address[STORE_ADDRESS_MAX + 1];
	struct store *st;
	struct store_user u;
	int n, rc;

	if (ctl_parse_args(ctl, argc, argv, NULL, pos, 1, 1, &n) != 0)
		return usage(verb);
	if ((rc = load_user(ctl, verb, pos[0], &st, &u)) != CTL_EXIT_OK)
		return rc;
	snprintf(address, sizeof(address), "%s", u.address);
	rc = store_user_set_locked(st, u.id, locked);
	store_user_clear(&u);
	if (rc != STORE_OK)
		return ctl_store_fail(ctl, rc, address);
	ctl_audit(ctl, locked ? "user.lock" : "user.unlock", address);
	if (locked)
		ctl_daemon_forget(ctl, address);
	print_ok(ctl, address, locked ? _("user %s locked\n") : _("user %s unlocked\n"), address);
	return CTL_EXIT_OK;
}

static int user_lock(struct ctl *ctl, int argc, char **argv)
{
	return user_set_locked(ctl, argc, argv, true);
}

static int user_unlock(struct ctl *ctl, int argc, char **argv)
{
	return user_set_locked(ctl, argc, argv, false);
}

/*
 * Stores a new password for U whose private key K is known: rewraps K, hashes
 * the password and adds a recovery copy when one is configured and missing.
 */
static int store_new_password(struct ctl *ctl, struct store *st, struct store_user *u,
			      const struct user_key *k, const char *pw, size_t pwlen)
{
	char hash[CRYPTO_PWHASH_STR_MAX];
	unsigned char *wrapped = NULL, *sealed = NULL;
	size_t wrapped_len = 0, sealed_len = 0;
	int rc, have;

	if (crypto_password_hash(pw, pwlen, hash) != 0 ||
	    crypto_user_rewrap(k, pw, pwlen, &wrapped, &wrapped_len) != 0) {
		ctl_error(_("cannot wrap the key under the new password"));
		return CTL_EXIT_FAIL;
	}
	have = u->recovery_key_len > 0 ? 0 : seal_recovery(ctl, k, &sealed, &sealed_len);
	if (have < 0) {
		free(wrapped);
		return CTL_EXIT_FAIL;
	}
	rc = store_begin(st);
	if (rc == STORE_OK)
		rc = store_user_set_password(st, u->id, hash, wrapped, wrapped_len);
	if (rc == STORE_OK && have > 0)
		rc = store_user_set_recovery(st, u->id, sealed, sealed_len);
	if (rc == STORE_OK)
		rc = store_commit(st);
	else
		store_rollback(st);
	sodium_memzero(hash, sizeof(hash));
	free(wrapped);
	free(sealed);
	if (rc != STORE_OK)
		return ctl_store_fail(ctl, rc, u->address);
	return CTL_EXIT_OK;
}

/* The key-keeping path of passwd: the old password unlocks the old key. */
static int passwd_with_old(struct ctl *ctl, struct store *st, struct store_user *u)
{
	char *pw = ctl_password_new(), prompt[512];
	struct user_key *k = NULL;
	ssize_t pwlen;
	int rc = CTL_EXIT_FAIL, unlocked;

	if (!pw)
		goto out;
	snprintf(prompt, sizeof(prompt), _("Current password for %s: "), u->address);
	unlocked = ctl_user_unlock(u, prompt, &k);
	if (unlocked < 0) {
		rc = CTL_EXIT_USAGE;
		goto out;
	}
	if (unlocked > 0) {
		ctl_error(_("the current password of %s is wrong; nothing changed"), u->address);
		goto out;
	}
	snprintf(prompt, sizeof(prompt), _("New password for %s: "), u->address);
	pwlen = ctl_read_new_password(prompt, pw);
	if (pwlen < 0) {
		rc = CTL_EXIT_USAGE;
		goto out;
	}
	rc = store_new_password(ctl, st, u, k, pw, (size_t)pwlen);
out:
	user_key_free(k);
	ctl_password_free(pw);
	return rc;
}

/*
 * The admin reset: no way to the old private key, so a new pair replaces it
 * (store_user_set_keys) and the app passwords, which wrap the old key, are
 * revoked in the same transaction. Messages, mailboxes, aliases, quota, lock
 * state and one-time codes stay; mail sealed to the old key stays stored but
 * unreadable. *REVOKED is the number of app passwords revoked.
 */
static int passwd_reset(struct ctl *ctl, struct store *st, struct store_user *u, size_t *revoked)
{
	char *pw = ctl_password_new(), prompt[512], hash[CRYPTO_PWHASH_STR_MAX];
	unsigned char pub[32], *wrapped = NULL, *sealed = NULL;
	size_t wrapped_len = 0, sealed_len = 0;
	struct app_password_list apps, none;
	struct user_key *k = NULL;
	ssize_t pwlen;
	int rc = CTL_EXIT_FAIL, src;

	*revoked = 0;
	memset(&apps, 0, sizeof(apps));
	memset(&none, 0, sizeof(none));
	if (!pw)
		goto out;
	snprintf(prompt, sizeof(prompt), _("New password for %s: "), u->address);
	pwlen = ctl_read_new_password(prompt, pw);
	if (pwlen < 0) {
		rc = CTL_EXIT_USAGE;
		goto out;
	}
	if (crypto_password_hash(pw, (size_t)pwlen, hash) != 0 ||
	    crypto_user_keygen(pw, (size_t)pwlen, pub, &wrapped, &wrapped_len, &k) != 0) {
		ctl_error(_("cannot create the password hash and key pair"));
		goto out;
	}
	if (seal_recovery(ctl, k, &sealed, &sealed_len) < 0)
		goto out;
	src = store_begin(st);
	if (src == STORE_OK && app_passwords_load(st, u->id, &apps) != STORE_OK)
		src = STORE_ERR;
	if (src == STORE_OK)
		src = store_user_set_keys(st, u->id, hash, pub, wrapped, wrapped_len, sealed,
					  sealed_len);
	if (src == STORE_OK && apps.n > 0 && app_passwords_save(st, u->id, &none) != STORE_OK)
		src = STORE_ERR;
	if (src == STORE_OK)
		src = store_commit(st);
	else
		store_rollback(st);
	if (src != STORE_OK) {
		rc = ctl_store_fail(ctl, src, u->address);
		goto out;
	}
	/* The notice that follows is sealed to the new key, so the user can read it. */
	memcpy(u->public_key, pub, sizeof(u->public_key));
	*revoked = apps.n;
	rc = CTL_EXIT_OK;
out:
	sodium_memzero(hash, sizeof(hash));
	app_passwords_clear(&apps);
	free(wrapped);
	free(sealed);
	user_key_free(k);
	ctl_password_free(pw);
	return rc;
}

static int user_passwd(struct ctl *ctl, int argc, char **argv)
{
	bool yes = false, with_old = false;
	const struct ctl_option opts[] = {
	    {"--yes", NULL, &yes}, {"--old-password-stdin", NULL, &with_old}, {NULL, NULL, NULL}};
	char *pos[1], b64[64], detail[128];
	struct store *st;
	struct store_user u;
	size_t revoked = 0;
	int n, rc;

	if (ctl_parse_args(ctl, argc, argv, opts, pos, 1, 1, &n) != 0)
		return usage("passwd");
	if ((rc = load_user(ctl, "passwd", pos[0], &st, &u)) != CTL_EXIT_OK)
		return rc;
	if (with_old) {
		rc = passwd_with_old(ctl, st, &u);
	} else {
		ctl_note(
		    _("WARNING: without the current password, %s's mail key cannot be "
		      "recovered.\nA new key pair will be made: the mail stored so far is kept "
		      "but BECOMES UNREADABLE for good (mail clients will report it as "
		      "unreadable), and the user's app passwords are revoked. OpenPGP and S/MIME "
		      "secret keys Postern keeps for the user are protected by the old key and "
		      "can no longer be used.\nTo keep the mail "
		      "readable, use --old-password-stdin (the user gives the current password) "
		      "or \"posternctl user recover\" with the recovery key."),
		    u.address);
		if (!yes) {
			if (!isatty(STDIN_FILENO)) {
				ctl_error(_("refusing a reset that makes the old mail unreadable "
					    "without --yes"));
				store_user_clear(&u);
				return CTL_EXIT_USAGE;
			}
			if (!ctl_confirm(
				_("Reset the password and make the old mail unreadable?"))) {
				ctl_error(_("nothing changed"));
				store_user_clear(&u);
				return CTL_EXIT_FAIL;
			}
		}
		rc = passwd_reset(ctl, st, &u, &revoked);
	}
	if (rc == CTL_EXIT_OK) {
		ctl_audit(ctl, with_old ? "user.passwd" : "user.passwd.reset", u.address);
		ctl_daemon_forget(ctl, u.address);
		if (with_old)
			snprintf(detail, sizeof(detail), "changed with the current password");
		else
			snprintf(detail, sizeof(detail),
				 "reset by the administrator; mail received before this reset "
				 "cannot be read any more; %zu app password(s) revoked",
				 revoked);
		ctl_security_notice(ctl, st, &u, AUTH_NOTICE_PASSWORD_CHANGED, detail);
		ctl_base64(u.public_key, sizeof(u.public_key), b64, sizeof(b64));
		if (ctl->json) {
			ctl_json_print(json_pack("{s:b,s:s,s:b,s:b,s:s,s:i}", "ok", 1, "address",
						 u.address, "mail_kept", 1, "mail_readable",
						 with_old, "public_key", b64,
						 "app_passwords_revoked", (int)revoked));
		} else if (with_old) {
			printf(_("password of %s changed; its mail stays readable\n"), u.address);
		} else {
			printf(_("password of %s reset; a new key pair was made. The old mail is "
				 "kept but can no longer be read.\n"),
			       u.address);
			if (revoked > 0)
				printf(_("%zu app password(s) of %s revoked (they opened the old "
					 "key); create new ones with \"posternctl app-password "
					 "add\".\n"),
				       revoked, u.address);
		}
	}
	store_user_clear(&u);
	return rc;
}

static int user_recover(struct ctl *ctl, int argc, char **argv)
{
	const char *keyfile = NULL;
	bool new_password = false; /* a new password is always asked for; the flag says so */
	const struct ctl_option opts[] = {{"--recovery-key", &keyfile, NULL},
					  {"--new-password", NULL, &new_password},
					  {NULL, NULL, NULL}};
	char *pos[1], *pw = NULL, prompt[512];
	unsigned char rpub[32], *rpriv = NULL;
	struct store *st;
	struct store_user u;
	struct user_key *k = NULL;
	ssize_t pwlen;
	int n, rc;

	if (ctl_parse_args(ctl, argc, argv, opts, pos, 1, 1, &n) != 0 || !keyfile || !*keyfile)
		return usage("recover");
	if ((rc = load_user(ctl, "recover", pos[0], &st, &u)) != CTL_EXIT_OK)
		return rc;
	rc = CTL_EXIT_FAIL;
	if (u.recovery_key_len == 0) {
		ctl_error(_("%s has no recovery copy of its key (it was created before a recovery "
			    "key was configured); only a reset is possible"),
			  u.address);
		goto out;
	}
	rpriv = sodium_malloc(32);
	if (!rpriv || ctl_recovery_private_key(keyfile, rpub, rpriv) != 0)
		goto out;
	if (crypto_recovery_open(u.recovery_key, u.recovery_key_len, rpub, rpriv, &k) != 0 ||
	    sodium_memcmp(user_key_public(k), u.public_key, 32) != 0) {
		ctl_error(_("the recovery key in %s does not open the recovery copy of %s"),
			  keyfile, u.address);
		goto out;
	}
	if (!(pw = ctl_password_new()))
		goto out;
	snprintf(prompt, sizeof(prompt), _("New password for %s: "), u.address);
	pwlen = ctl_read_new_password(prompt, pw);
	if (pwlen < 0) {
		rc = CTL_EXIT_USAGE;
		goto out;
	}
	rc = store_new_password(ctl, st, &u, k, pw, (size_t)pwlen);
	if (rc == CTL_EXIT_OK) {
		ctl_audit(ctl, "user.recover", u.address);
		ctl_daemon_forget(ctl, u.address);
		ctl_security_notice(ctl, st, &u, AUTH_NOTICE_PASSWORD_CHANGED,
				    "set by the administrator with the recovery key");
		print_ok(ctl, u.address,
			 _("password of %s set with the recovery key; its mail stays readable\n"),
			 u.address);
	}
out:
	if (rpriv)
		sodium_free(rpriv);
	ctl_password_free(pw);
	user_key_free(k);
	store_user_clear(&u);
	return rc;
}

static const struct ctl_verb verbs[] = {
    {"add", user_add, N_("user add ADDRESS"),
     N_("create a user (password from a prompt or one line of stdin)")},
    {"del", user_del, N_("user del ADDRESS [--yes]"), N_("delete a user and all its mail")},
    {"list", user_list, N_("user list [DOMAIN]"), N_("list users")},
    {"lock", user_lock, N_("user lock ADDRESS"), N_("refuse every login of a user")},
    {"passwd", user_passwd, N_("user passwd ADDRESS [--old-password-stdin | --yes]"),
     N_("set a new password (without the old one the old mail becomes unreadable)")},
    {"recover", user_recover, N_("user recover ADDRESS --recovery-key FILE [--new-password]"),
     N_("set a new password with the recovery key, keeping the mail")},
    {"show", user_show, N_("user show ADDRESS"), N_("quota, usage, lock state and mailboxes")},
    {"unlock", user_unlock, N_("user unlock ADDRESS"), N_("allow logins again")},
};

static int usage(const char *verb)
{
	return ctl_usage(verbs, sizeof(verbs) / sizeof(verbs[0]), verb);
}

int ctl_cmd_user(struct ctl *ctl, int argc, char **argv)
{
	return ctl_dispatch(ctl, verbs, sizeof(verbs) / sizeof(verbs[0]), argc, argv);
}
