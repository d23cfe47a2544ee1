/*
 * cmd_pgp.c - posternctl pgp keygen|import|export|list|delete|locate: a
 * user's OpenPGP keys in their GnuPG home (crypto/gpg_home.h); "pgp policy"
 * is dispatched to cmd_pgp_policy.c.
 *
 * Secret-key operations (keygen, importing a secret key) need the user's
 * unlocked at-rest key, because the key's passphrase is derived from it:
 * the user's password is read from a prompt or the first line of stdin, or
 * --recovery-key FILE opens the recovery copy instead. Public keys (the
 * user's correspondents') need neither. After the user's own keys change,
 * the WKD copy is published again. Also holds the helper cmd_smime.c uses
 * to open a user's homes.
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <gpgme.h>
#include <sodium.h>

#include "crypto/crypto.h"
#include "crypto/gpg_home.h"
#include "ctl/ctl.h"
#include "store/store.h"
#include "util/i18n.h"

#define PGP_FILE_MAX (4 * 1024 * 1024)
#define PGP_KEYGEN_ALGO "future-default" /* ed25519 signing, cv25519 encryption */
#define PGP_KEYGEN_DAYS_DEFAULT 730

static int usage(const char *verb);

/* Unlocks U's key with its password (prompt or stdin) or the recovery key file. */
static int unlock_user(struct ctl *ctl, const struct store_user *u, const char *recovery_key,
		       struct user_key **key)
{
	char *pw;
	ssize_t n;
	int rc = CTL_EXIT_FAIL;

	(void)ctl;
	if (recovery_key != NULL) {
		unsigned char rpub[32], *rpriv = sodium_malloc(32);

		if (rpriv == NULL) {
			ctl_error(_("out of memory"));
			return CTL_EXIT_FAIL;
		}
		if (u->recovery_key_len == 0) {
			ctl_error(_("%s has no recovery copy of its key"), u->address);
		} else if (ctl_recovery_private_key(recovery_key, rpub, rpriv) == 0) {
			if (crypto_recovery_open(u->recovery_key, u->recovery_key_len, rpub, rpriv,
						 key) != 0 ||
			    sodium_memcmp(user_key_public(*key), u->public_key, 32) != 0) {
				if (*key) {
					user_key_free(*key);
					*key = NULL;
				}
				ctl_error(_("the recovery key in %s does not open the recovery "
					    "copy of %s"),
					  recovery_key, u->address);
			} else {
				rc = CTL_EXIT_OK;
			}
		}
		sodium_free(rpriv);
		return rc;
	}
	pw = sodium_malloc(CTL_PASSWORD_MAX + 1);
	if (pw == NULL) {
		ctl_error(_("out of memory"));
		return CTL_EXIT_FAIL;
	}
	n = ctl_read_password(_("Password of the user: "), false, pw, CTL_PASSWORD_MAX + 1);
	if (n < 0) {
		rc = CTL_EXIT_USAGE;
	} else if (crypto_password_verify(u->password_hash, pw, (size_t)n) != 0 ||
		   crypto_user_unlock(u->wrapped_key, u->wrapped_key_len, pw, (size_t)n, key) !=
		       0) {
		ctl_error(_("wrong password for %s"), u->address);
	} else {
		rc = CTL_EXIT_OK;
	}
	sodium_free(pw);
	return rc;
}

int ctl_gpg_open(struct ctl *ctl, const char *arg, bool unlock, const char *recovery_key,
		 struct gpg_user **out)
{
	char err[512];
	struct store *st;
	struct store_user u;
	struct user_key *key = NULL;
	int rc;

	*out = NULL;
	if ((rc = ctl_user_load(ctl, arg, &st, &u)) != CTL_EXIT_OK)
		return rc;
	rc = unlock ? unlock_user(ctl, &u, recovery_key, &key) : CTL_EXIT_OK;
	if (rc == CTL_EXIT_OK &&
	    gpg_user_open(&ctl->cfg, u.address, key, out, err, sizeof(err)) != 0) {
		ctl_error("%s", err);
		rc = CTL_EXIT_FAIL;
	}
	user_key_free(key);
	store_user_clear(&u);
	return rc;
}

int ctl_read_file(const char *path, size_t max, char **data, size_t *len)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rbe");
	size_t n;

	*data = NULL;
	*len = 0;
	if (f == NULL) {
		ctl_error(_("cannot open %s: %s"), path, strerror(errno));
		return CTL_EXIT_FAIL;
	}
	*data = malloc(max + 1);
	if (*data == NULL) {
		ctl_error(_("out of memory"));
		if (f != stdin)
			fclose(f);
		return CTL_EXIT_FAIL;
	}
	n = fread(*data, 1, max + 1, f);
	if (ferror(f) || n > max || n == 0) {
		if (ferror(f))
			ctl_error(_("cannot read %s: %s"), path, strerror(errno));
		else if (n == 0)
			ctl_error(_("%s is empty"), path);
		else
			ctl_error(_("%s is larger than %zu bytes"), path, max);
		free(*data);
		*data = NULL;
		if (f != stdin)
			fclose(f);
		return CTL_EXIT_FAIL;
	}
	if (f != stdin)
		fclose(f);
	*len = n;
	return CTL_EXIT_OK;
}

/* Republishes the user's WKD copy; a failure is a warning. */
static void publish(struct ctl *ctl, struct gpg_user *u)
{
	char err[512];

	if (gpg_wkd_publish(&ctl->cfg, u, err, sizeof(err)) < 0)
		ctl_note(_("warning: WKD copy not updated: %s"), err);
}

static const char *validity(gpgme_key_t k)
{
	if (k->revoked)
		return "revoked";
	if (k->expired)
		return "expired";
	if (k->disabled)
		return "disabled";
	if (k->invalid)
		return "invalid";
	return "valid";
}

/* Prints the keys of PROTO in U's home (both public and own). */
static int list_keys(struct ctl *ctl, struct gpg_user *u, int proto)
{
	gpgme_ctx_t ctx = gpg_user_ctx(u, (gpgme_protocol_t)proto);
	json_t *arr = ctl->json ? json_array() : NULL;
	gpgme_key_t key;
	gpgme_error_t e;
	int n = 0;

	if (ctx == NULL) {
		ctl_error(_("cannot start GPGME for %s"), gpg_user_address(u));
		json_decref(arr);
		return CTL_EXIT_FAIL;
	}
	gpgme_set_keylist_mode(ctx, GPGME_KEYLIST_MODE_LOCAL | GPGME_KEYLIST_MODE_WITH_SECRET);
	e = gpgme_op_keylist_start(ctx, NULL, 0);
	while (e == 0 && (e = gpgme_op_keylist_next(ctx, &key)) == 0) {
		const char *uid = key->uids && key->uids->uid ? key->uids->uid : "";
		long expires = key->subkeys ? key->subkeys->expires : 0;

		n++;
		if (arr) {
			json_t *uids = json_array();

			for (gpgme_user_id_t id = key->uids; id; id = id->next)
				json_array_append_new(uids, json_string(id->uid ? id->uid : ""));
			json_array_append_new(
			    arr,
			    json_pack("{s:s,s:o,s:b,s:s,s:b,s:b,s:I,s:I}", "fingerprint",
				      key->fpr ? key->fpr : "", "uids", uids, "secret", key->secret,
				      "validity", validity(key), "can_sign", key->can_sign,
				      "can_encrypt", key->can_encrypt, "created",
				      (json_int_t)(key->subkeys ? key->subkeys->timestamp : 0),
				      "expires", (json_int_t)expires));
		} else {
			char date[32] = "-";

			if (expires > 0) {
				time_t t = (time_t)expires;
				struct tm tm;

				strftime(date, sizeof(date), "%Y-%m-%d", gmtime_r(&t, &tm));
			}
			printf("%s %s %-7s %s%s %s %s\n", key->fpr ? key->fpr : "-",
			       key->secret ? "sec" : "pub", validity(key),
			       key->can_sign ? "S" : "-", key->can_encrypt ? "E" : "-", date, uid);
		}
		gpgme_key_unref(key);
	}
	gpgme_op_keylist_end(ctx);
	if (gpg_err_code(e) != GPG_ERR_EOF) {
		ctl_error(_("cannot list keys: %s"), gpgme_strerror(e));
		json_decref(arr);
		return CTL_EXIT_FAIL;
	}
	if (arr)
		ctl_json_print(arr);
	else if (n == 0)
		printf(_("no keys\n"));
	return CTL_EXIT_OK;
}

/* Deletes the key FPR (with its secret part) from U's home of PROTO. Shared with cmd_smime.c. */
/* Shared with cmd_smime.c. */
int ctl_gpg_list(struct ctl *ctl, int argc, char **argv, int proto)
{
	char *pos[1];
	struct gpg_user *u;
	int n, rc;

	if (ctl_parse_args(ctl, argc, argv, NULL, pos, 1, 1, &n) != 0)
		return CTL_EXIT_USAGE;
	if ((rc = ctl_gpg_open(ctl, pos[0], false, NULL, &u)) != CTL_EXIT_OK)
		return rc;
	rc = list_keys(ctl, u, proto);
	gpg_user_close(u);
	return rc;
}

/* Shared with cmd_smime.c. */
int ctl_gpg_delete(struct ctl *ctl, struct gpg_user *u, int proto, const char *fpr, bool yes,
		   const char *question)
{
	gpgme_ctx_t ctx = gpg_user_ctx(u, (gpgme_protocol_t)proto);
	gpgme_key_t key;
	gpgme_error_t e;

	(void)ctl;
	if (!yes && !ctl_confirm(question)) {
		ctl_error(_("not confirmed; nothing deleted"));
		return CTL_EXIT_FAIL;
	}
	if (ctx == NULL) {
		ctl_error(_("cannot start GPGME for %s"), gpg_user_address(u));
		return CTL_EXIT_FAIL;
	}
	if (strlen(fpr) < 16 || strspn(fpr, "0123456789abcdefABCDEF") != strlen(fpr)) {
		ctl_error(_("\"%s\" is not a key fingerprint"), fpr);
		return CTL_EXIT_USAGE;
	}
	e = gpgme_get_key(ctx, fpr, &key, 0);
	if (gpg_err_code(e) == GPG_ERR_EOF || gpg_err_code(e) == GPG_ERR_AMBIGUOUS_NAME ||
	    (e == 0 && key == NULL)) {
		ctl_error(_("no key %s for %s"), fpr, gpg_user_address(u));
		return CTL_EXIT_NOTFOUND;
	}
	if (e != 0) {
		ctl_error(_("cannot find key %s: %s"), fpr, gpgme_strerror(e));
		return CTL_EXIT_FAIL;
	}
	e = gpgme_op_delete_ext(ctx, key, GPGME_DELETE_ALLOW_SECRET | GPGME_DELETE_FORCE);
	gpgme_key_unref(key);
	if (e != 0) {
		ctl_error(_("cannot delete key %s: %s"), fpr, gpgme_strerror(e));
		return CTL_EXIT_FAIL;
	}
	return CTL_EXIT_OK;
}

static int pgp_keygen(struct ctl *ctl, int argc, char **argv)
{
	const char *recovery = NULL, *days_text = NULL;
	bool force = false;
	const struct ctl_option opts[] = {{"--recovery-key", &recovery, NULL},
					  {"--days", &days_text, NULL},
					  {"--force", NULL, &force},
					  {NULL, NULL, NULL}};
	char *pos[1], err[512], *end, fpr[128];
	unsigned long days = PGP_KEYGEN_DAYS_DEFAULT;
	struct gpg_user *u;
	gpgme_key_t have;
	gpgme_genkey_result_t res;
	gpgme_error_t e;
	int n, rc, found;

	if (ctl_parse_args(ctl, argc, argv, opts, pos, 1, 1, &n) != 0)
		return usage("keygen");
	if (days_text != NULL) {
		errno = 0;
		days = strtoul(days_text, &end, 10);
		if (errno || *end || days > 36500)
			return usage("keygen");
	}
	if ((rc = ctl_gpg_open(ctl, pos[0], true, recovery, &u)) != CTL_EXIT_OK)
		return rc == CTL_EXIT_USAGE ? usage("keygen") : rc;
	found = gpg_user_find_key(u, GPGME_PROTOCOL_OpenPGP, gpg_user_address(u), true, &have, err,
				  sizeof(err));
	if (found > 0) {
		gpgme_key_unref(have);
		if (!force) {
			ctl_error(_("%s already has a usable OpenPGP key (--force makes another)"),
				  gpg_user_address(u));
			rc = CTL_EXIT_EXISTS;
			goto out;
		}
	}
	e = gpgme_op_createkey(gpg_user_ctx(u, GPGME_PROTOCOL_OpenPGP), gpg_user_address(u),
			       PGP_KEYGEN_ALGO, 0, days * 86400UL, NULL,
			       (days == 0 ? GPGME_CREATE_NOEXPIRE : 0) |
				   (force ? GPGME_CREATE_FORCE : 0));
	res = e == 0 ? gpgme_op_genkey_result(gpg_user_ctx(u, GPGME_PROTOCOL_OpenPGP)) : NULL;
	if (e != 0 || res == NULL || res->fpr == NULL) {
		ctl_error(_("cannot generate an OpenPGP key for %s: %s"), gpg_user_address(u),
			  gpgme_strerror(e));
		rc = CTL_EXIT_FAIL;
		goto out;
	}
	/* The result belongs to the context, which publishing reuses. */
	snprintf(fpr, sizeof(fpr), "%s", res->fpr);
	publish(ctl, u);
	ctl_audit(ctl, "pgp.keygen", gpg_user_address(u));
	if (ctl->json)
		ctl_json_print(
		    json_pack("{s:s,s:s}", "address", gpg_user_address(u), "fingerprint", fpr));
	else
		printf(_("OpenPGP key %s created for %s\n"), fpr, gpg_user_address(u));
	rc = CTL_EXIT_OK;
out:
	gpg_user_close(u);
	return rc;
}

/* True when DATA holds an OpenPGP secret key (armored or binary). */
static bool is_secret(const char *data, size_t len)
{
	size_t i = 0;

	while (i < len && (data[i] == ' ' || data[i] == '\n' || data[i] == '\r' || data[i] == '\t'))
		i++;
	if (len - i >= 37 && memcmp(data + i, "-----BEGIN PGP PRIVATE KEY BLOCK-----", 37) == 0)
		return true;
	if (i < len && ((unsigned char)data[i] & 0x80)) {
		unsigned char c = (unsigned char)data[i];
		unsigned tag = (c & 0x40) ? (c & 0x3f) : ((c >> 2) & 0x0f);

		return tag == 5;
	}
	return false;
}

static int pgp_import(struct ctl *ctl, int argc, char **argv)
{
	const char *recovery = NULL;
	bool no_pass = false;
	const struct ctl_option opts[] = {{"--recovery-key", &recovery, NULL},
					  {"--no-passphrase", NULL, &no_pass},
					  {NULL, NULL, NULL}};
	char *pos[2], *data = NULL, *pass = NULL, err[512];
	struct gpg_user *u = NULL;
	unsigned imported = 0;
	size_t len;
	bool secret;
	int n, rc;

	if (ctl_parse_args(ctl, argc, argv, opts, pos, 2, 2, &n) != 0)
		return usage("import");
	if ((rc = ctl_read_file(pos[1], PGP_FILE_MAX, &data, &len)) != CTL_EXIT_OK)
		return rc;
	secret = is_secret(data, len);
	if ((rc = ctl_gpg_open(ctl, pos[0], secret, recovery, &u)) != CTL_EXIT_OK) {
		free(data);
		return rc == CTL_EXIT_USAGE ? usage("import") : rc;
	}
	rc = CTL_EXIT_FAIL;
	if (secret) {
		if (!no_pass) {
			ssize_t pl;

			pass = sodium_malloc(CTL_PASSWORD_MAX + 1);
			if (pass == NULL) {
				ctl_error(_("out of memory"));
				goto out;
			}
			pl = ctl_read_password(_("Passphrase of the key being imported: "), false,
					       pass, CTL_PASSWORD_MAX + 1);
			if (pl < 0) {
				rc = CTL_EXIT_USAGE;
				goto out;
			}
		}
		if (gpg_user_import_secret(u, data, len, pass, &imported, err, sizeof(err)) != 0) {
			ctl_error(_("%s: %s"), pos[1], err);
			goto out;
		}
		publish(ctl, u);
	} else {
		if (gpg_user_import_public(u, GPGME_PROTOCOL_OpenPGP, data, len, &imported, err,
					   sizeof(err)) != 0) {
			ctl_error(_("%s: %s"), pos[1], err);
			goto out;
		}
		publish(ctl, u); /* the user's own public key may have changed */
	}
	ctl_audit(ctl, secret ? "pgp.import-secret" : "pgp.import", gpg_user_address(u));
	if (ctl->json)
		ctl_json_print(json_pack("{s:s,s:b,s:i}", "address", gpg_user_address(u), "secret",
					 secret, "imported", (int)imported));
	else
		printf(secret ? _("%u secret key(s) imported for %s\n")
			      : _("%u key(s) imported or updated for %s\n"),
		       imported, gpg_user_address(u));
	rc = CTL_EXIT_OK;
out:
	if (pass)
		sodium_free(pass);
	free(data);
	gpg_user_close(u);
	return rc;
}

static int pgp_export(struct ctl *ctl, int argc, char **argv)
{
	bool binary = false;
	const struct ctl_option opts[] = {{"--binary", NULL, &binary}, {NULL, NULL, NULL}};
	char *pos[1], *out = NULL, err[512];
	struct gpg_user *u;
	size_t len;
	int n, rc, found;

	if (ctl_parse_args(ctl, argc, argv, opts, pos, 1, 1, &n) != 0)
		return usage("export");
	if ((rc = ctl_gpg_open(ctl, pos[0], false, NULL, &u)) != CTL_EXIT_OK)
		return rc == CTL_EXIT_USAGE ? usage("export") : rc;
	found = gpg_user_export_own(u, !binary, &out, &len, err, sizeof(err));
	if (found < 0) {
		ctl_error("%s", err);
		rc = CTL_EXIT_FAIL;
	} else if (found == 0) {
		ctl_error(_("%s has no OpenPGP key"), gpg_user_address(u));
		rc = CTL_EXIT_NOTFOUND;
	} else {
		rc = fwrite(out, 1, len, stdout) == len ? CTL_EXIT_OK : CTL_EXIT_FAIL;
	}
	free(out);
	gpg_user_close(u);
	return rc;
}

static int pgp_list(struct ctl *ctl, int argc, char **argv)
{
	int rc = ctl_gpg_list(ctl, argc, argv, GPGME_PROTOCOL_OpenPGP);

	return rc == CTL_EXIT_USAGE ? usage("list") : rc;
}

/* pgp delete ADDRESS --all: the whole home (OpenPGP and S/MIME) and the WKD
 * copy; the user need not exist any more (run it after "user del"). */
static int delete_home(struct ctl *ctl, const char *arg, bool yes)
{
	char address[STORE_ADDRESS_MAX + 1], err[512], question[512];
	int rc, removed;

	if (ctl_address_normalize(arg, address, sizeof(address), err, sizeof(err)) != 0) {
		ctl_error("%s", err);
		return usage("delete");
	}
	if ((rc = ctl_config(ctl)) != CTL_EXIT_OK)
		return rc;
	snprintf(question, sizeof(question),
		 _("Delete every OpenPGP and S/MIME key and certificate of %s?"), address);
	if (!yes && !ctl_confirm(question)) {
		ctl_error(_("not confirmed; nothing deleted"));
		return CTL_EXIT_FAIL;
	}
	removed = gpg_home_remove(&ctl->cfg, address, err, sizeof(err));
	if (removed < 0) {
		ctl_error("%s", err);
		return CTL_EXIT_FAIL;
	}
	if (removed == 0) {
		ctl_error(_("%s has no GnuPG home"), address);
		return CTL_EXIT_NOTFOUND;
	}
	ctl_audit(ctl, "pgp.delete-all", address);
	if (ctl->json)
		ctl_json_print(json_pack("{s:s,s:s}", "address", address, "deleted", "all"));
	else
		printf(_("every key of %s deleted\n"), address);
	return CTL_EXIT_OK;
}

static int pgp_delete(struct ctl *ctl, int argc, char **argv)
{
	bool yes = false, all = false;
	const struct ctl_option opts[] = {
	    {"--yes", NULL, &yes}, {"--all", NULL, &all}, {NULL, NULL, NULL}};
	char *pos[2], question[512];
	struct gpg_user *u;
	int n, rc;

	if (ctl_parse_args(ctl, argc, argv, opts, pos, 1, 2, &n) != 0 || (all != (n == 1)))
		return usage("delete");
	if (all)
		return delete_home(ctl, pos[0], yes);
	if ((rc = ctl_gpg_open(ctl, pos[0], false, NULL, &u)) != CTL_EXIT_OK)
		return rc == CTL_EXIT_USAGE ? usage("delete") : rc;
	snprintf(question, sizeof(question),
		 _("Delete OpenPGP key %s of %s (its secret part too, if any)?"), pos[1],
		 gpg_user_address(u));
	rc = ctl_gpg_delete(ctl, u, GPGME_PROTOCOL_OpenPGP, pos[1], yes, question);
	if (rc == CTL_EXIT_OK) {
		publish(ctl, u);
		ctl_audit(ctl, "pgp.delete", gpg_user_address(u));
		if (ctl->json)
			ctl_json_print(json_pack("{s:s,s:s}", "address", gpg_user_address(u),
						 "deleted", pos[1]));
		else
			printf(_("key %s of %s deleted\n"), pos[1], gpg_user_address(u));
	}
	gpg_user_close(u);
	return rc;
}

static int pgp_locate(struct ctl *ctl, int argc, char **argv)
{
	char *pos[2], address[STORE_ADDRESS_MAX + 1], err[512];
	struct gpg_user *u;
	int n, rc, got;

	if (ctl_parse_args(ctl, argc, argv, NULL, pos, 2, 2, &n) != 0)
		return usage("locate");
	if (ctl_address_normalize(pos[1], address, sizeof(address), err, sizeof(err)) != 0) {
		ctl_error("%s", err);
		return usage("locate");
	}
	if ((rc = ctl_gpg_open(ctl, pos[0], false, NULL, &u)) != CTL_EXIT_OK)
		return rc == CTL_EXIT_USAGE ? usage("locate") : rc;
	if (!ctl->cfg.pgp.wkd_lookup) {
		ctl_error(_("WKD lookups are off ([pgp] wkd_lookup = no)"));
		rc = CTL_EXIT_FAIL;
		goto out;
	}
	got = gpg_user_wkd_fetch(u, address, err, sizeof(err));
	if (got < 0) {
		ctl_error("%s", err);
		rc = CTL_EXIT_FAIL;
	} else if (got == 0) {
		ctl_error(_("no key published by WKD for %s"), address);
		rc = CTL_EXIT_NOTFOUND;
	} else {
		ctl_audit(ctl, "pgp.locate", address);
		if (ctl->json)
			ctl_json_print(json_pack("{s:s,s:s}", "address", gpg_user_address(u),
						 "imported", address));
		else
			printf(_("key of %s imported for %s by WKD\n"), address,
			       gpg_user_address(u));
		rc = CTL_EXIT_OK;
	}
out:
	gpg_user_close(u);
	return rc;
}

static const struct ctl_verb verbs[] = {
    {"delete", pgp_delete,
     N_("pgp delete USER FINGERPRINT [--yes] | pgp delete ADDRESS --all [--yes]"),
     N_("delete a key (and its secret part), or a whole home and its WKD copy")},
    {"export", pgp_export, N_("pgp export USER [--binary]"),
     N_("print the user's own public key (armored)")},
    {"import", pgp_import, N_("pgp import USER FILE [--recovery-key FILE] [--no-passphrase]"),
     N_("import public keys, or the user's secret key (password, then the key's passphrase)")},
    {"keygen", pgp_keygen, N_("pgp keygen USER [--days N] [--force] [--recovery-key FILE]"),
     N_("create the user's OpenPGP key (password from a prompt or stdin)")},
    {"list", pgp_list, N_("pgp list USER"), N_("list the keys in the user's keyring")},
    {"locate", pgp_locate, N_("pgp locate USER ADDRESS"),
     N_("fetch ADDRESS's key by WKD into the user's keyring")},
    {"policy", ctl_pgp_policy,
     N_("pgp policy [DOMAIN|USER] [--sign always|never] [--encrypt never|if-possible|required] "
	"[--decrypt-inbound yes|no] [--reset]"),
     N_("signing and encryption policy of a domain or user (cmd_pgp_policy.c)")},
};

static int usage(const char *verb)
{
	return ctl_usage(verbs, sizeof(verbs) / sizeof(verbs[0]), verb);
}

int ctl_cmd_pgp(struct ctl *ctl, int argc, char **argv)
{
	return ctl_dispatch(ctl, verbs, sizeof(verbs) / sizeof(verbs[0]), argc, argv);
}
