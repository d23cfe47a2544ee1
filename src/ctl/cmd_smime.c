/*
 * cmd_smime.c - posternctl smime import|list|delete|export|ca init|issue:
 * a user's S/MIME certificates in their gpgsm home, and the optional
 * organization CA (crypto/smime_ca.h) that issues them.
 *
 * import and issue put a private key into the user's home, so they need the
 * user's unlocked key (password from a prompt or the first line of stdin,
 * or --recovery-key FILE); import then reads the PKCS#12 password (next
 * line). Homes are opened with ctl_gpg_open (cmd_pgp.c).
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gpgme.h>
#include <sodium.h>

#include "crypto/gpg_home.h"
#include "crypto/smime_ca.h"
#include "ctl/ctl.h"
#include "util/i18n.h"

#define SMIME_P12_MAX (1024 * 1024)

static int usage(const char *verb);

static int parse_days(const char *text, unsigned *days)
{
	char *end;
	unsigned long v;

	if (text == NULL)
		return 0;
	errno = 0;
	v = strtoul(text, &end, 10);
	if (errno || *end || v == 0 || v > 36500)
		return -1;
	*days = (unsigned)v;
	return 0;
}

static int smime_import(struct ctl *ctl, int argc, char **argv)
{
	const char *recovery = NULL;
	const struct ctl_option opts[] = {{"--recovery-key", &recovery, NULL}, {NULL, NULL, NULL}};
	char *pos[2], *data = NULL, *pw = NULL, err[512];
	struct gpg_user *u = NULL;
	size_t len;
	ssize_t pl;
	int n, rc;

	if (ctl_parse_args(ctl, argc, argv, opts, pos, 2, 2, &n) != 0)
		return usage("import");
	if ((rc = ctl_read_file(pos[1], SMIME_P12_MAX, &data, &len)) != CTL_EXIT_OK)
		return rc;
	if ((rc = ctl_gpg_open(ctl, pos[0], true, recovery, &u)) != CTL_EXIT_OK) {
		free(data);
		return rc == CTL_EXIT_USAGE ? usage("import") : rc;
	}
	rc = CTL_EXIT_FAIL;
	pw = sodium_malloc(CTL_PASSWORD_MAX + 1);
	if (pw == NULL) {
		ctl_error(_("out of memory"));
		goto out;
	}
	pl =
	    ctl_read_password(_("Password of the PKCS#12 file: "), false, pw, CTL_PASSWORD_MAX + 1);
	if (pl < 0) {
		rc = CTL_EXIT_USAGE;
		goto out;
	}
	if (gpg_user_import_p12(u, data, len, pw, err, sizeof(err)) != 0) {
		ctl_error(_("%s: %s"), pos[1], err);
		goto out;
	}
	ctl_audit(ctl, "smime.import", gpg_user_address(u));
	if (ctl->json)
		ctl_json_print(
		    json_pack("{s:s,s:s}", "address", gpg_user_address(u), "imported", pos[1]));
	else
		printf(_("S/MIME key and certificate imported for %s\n"), gpg_user_address(u));
	rc = CTL_EXIT_OK;
out:
	if (pw)
		sodium_free(pw);
	if (data) {
		sodium_memzero(data, len);
		free(data);
	}
	gpg_user_close(u);
	return rc;
}

static int smime_list(struct ctl *ctl, int argc, char **argv)
{
	int rc = ctl_gpg_list(ctl, argc, argv, GPGME_PROTOCOL_CMS);

	return rc == CTL_EXIT_USAGE ? usage("list") : rc;
}

static int smime_delete(struct ctl *ctl, int argc, char **argv)
{
	bool yes = false;
	const struct ctl_option opts[] = {{"--yes", NULL, &yes}, {NULL, NULL, NULL}};
	char *pos[2], question[512];
	struct gpg_user *u;
	int n, rc;

	if (ctl_parse_args(ctl, argc, argv, opts, pos, 2, 2, &n) != 0)
		return usage("delete");
	if ((rc = ctl_gpg_open(ctl, pos[0], false, NULL, &u)) != CTL_EXIT_OK)
		return rc == CTL_EXIT_USAGE ? usage("delete") : rc;
	snprintf(question, sizeof(question),
		 _("Delete S/MIME certificate %s of %s (its private key too, if any)?"), pos[1],
		 gpg_user_address(u));
	rc = ctl_gpg_delete(ctl, u, GPGME_PROTOCOL_CMS, pos[1], yes, question);
	if (rc == CTL_EXIT_OK) {
		ctl_audit(ctl, "smime.delete", gpg_user_address(u));
		if (ctl->json)
			ctl_json_print(json_pack("{s:s,s:s}", "address", gpg_user_address(u),
						 "deleted", pos[1]));
		else
			printf(_("certificate %s of %s deleted\n"), pos[1], gpg_user_address(u));
	}
	gpg_user_close(u);
	return rc;
}

/* Prints the user's own certificate(s) (with a private key) as PEM. */
static int smime_export(struct ctl *ctl, int argc, char **argv)
{
	char *pos[1], err[512], *buf, *pem;
	struct gpg_user *u;
	gpgme_key_t key;
	gpgme_data_t d;
	gpgme_ctx_t ctx;
	gpgme_error_t e;
	size_t len = 0;
	int n, rc, found;

	if (ctl_parse_args(ctl, argc, argv, NULL, pos, 1, 1, &n) != 0)
		return usage("export");
	if ((rc = ctl_gpg_open(ctl, pos[0], false, NULL, &u)) != CTL_EXIT_OK)
		return rc == CTL_EXIT_USAGE ? usage("export") : rc;
	ctx = gpg_user_ctx(u, GPGME_PROTOCOL_CMS);
	found = gpg_user_find_key(u, GPGME_PROTOCOL_CMS, gpg_user_address(u), true, &key, err,
				  sizeof(err));
	if (found <= 0) {
		if (found < 0)
			ctl_error("%s", err);
		else
			ctl_error(_("%s has no usable S/MIME certificate"), gpg_user_address(u));
		gpg_user_close(u);
		return found < 0 ? CTL_EXIT_FAIL : CTL_EXIT_NOTFOUND;
	}
	rc = CTL_EXIT_FAIL;
	e = gpgme_data_new(&d);
	if (e == 0) {
		gpgme_set_armor(ctx, 1);
		e = gpgme_op_export(ctx, key->fpr, 0, d);
		gpgme_set_armor(ctx, 0);
		buf = gpgme_data_release_and_get_mem(d, &len);
		/* gpgsm puts "Issuer/Serial/Subject" lines before the PEM block. */
		pem = buf ? memmem(buf, len, "-----BEGIN", 10) : NULL;
		if (e == 0 && pem &&
		    fwrite(pem, 1, len - (size_t)(pem - buf), stdout) == len - (size_t)(pem - buf))
			rc = CTL_EXIT_OK;
		gpgme_free(buf);
	}
	if (rc != CTL_EXIT_OK)
		ctl_error(_("cannot export the certificate of %s: %s"), gpg_user_address(u),
			  e ? gpgme_strerror(e) : _("no data"));
	gpgme_key_unref(key);
	gpg_user_close(u);
	return rc;
}

static int smime_ca(struct ctl *ctl, int argc, char **argv)
{
	const char *name = NULL, *days_text = NULL;
	const struct ctl_option opts[] = {
	    {"--name", &name, NULL}, {"--days", &days_text, NULL}, {NULL, NULL, NULL}};
	char *pos[1], err[512], cn[128], *pem;
	unsigned days = 0;
	size_t len;
	int n, rc;

	if (ctl_parse_args(ctl, argc, argv, opts, pos, 1, 1, &n) != 0 ||
	    parse_days(days_text, &days) != 0)
		return usage("ca");
	if ((rc = ctl_config(ctl)) != CTL_EXIT_OK)
		return rc;
	if (strcmp(pos[0], "show") == 0) {
		if (smime_ca_cert_pem(&ctl->cfg, &pem, &len, err, sizeof(err)) != 0) {
			ctl_error("%s", err);
			return CTL_EXIT_NOTFOUND;
		}
		rc = fwrite(pem, 1, len, stdout) == len ? CTL_EXIT_OK : CTL_EXIT_FAIL;
		free(pem);
		return rc;
	}
	if (strcmp(pos[0], "init") != 0)
		return usage("ca");
	if (name == NULL) {
		snprintf(cn, sizeof(cn), "Postern S/MIME CA %.64s", ctl->cfg.server.hostname);
		name = cn;
	}
	if (smime_ca_init(&ctl->cfg, name, days, err, sizeof(err)) != 0) {
		bool exists = errno == EEXIST;

		ctl_error("%s", err);
		return exists ? CTL_EXIT_EXISTS : CTL_EXIT_FAIL;
	}
	ctl_audit(ctl, "smime.ca-init", name);
	if (ctl->json)
		ctl_json_print(
		    json_pack("{s:s,s:s}", "name", name, "dir", ctl->cfg.server.data_dir));
	else
		printf(_("S/MIME CA \"%s\" created in %s/smime-ca\n"), name,
		       ctl->cfg.server.data_dir);
	return CTL_EXIT_OK;
}

static int smime_issue(struct ctl *ctl, int argc, char **argv)
{
	const char *recovery = NULL, *days_text = NULL;
	const struct ctl_option opts[] = {
	    {"--recovery-key", &recovery, NULL}, {"--days", &days_text, NULL}, {NULL, NULL, NULL}};
	char *pos[1], err[512], *pem = NULL;
	struct gpg_user *u;
	unsigned days = 0;
	size_t len = 0;
	int n, rc;

	if (ctl_parse_args(ctl, argc, argv, opts, pos, 1, 1, &n) != 0 ||
	    parse_days(days_text, &days) != 0)
		return usage("issue");
	if ((rc = ctl_gpg_open(ctl, pos[0], true, recovery, &u)) != CTL_EXIT_OK)
		return rc == CTL_EXIT_USAGE ? usage("issue") : rc;
	if (smime_ca_issue(&ctl->cfg, u, days, &pem, &len, err, sizeof(err)) != 0) {
		ctl_error("%s", err);
		rc = CTL_EXIT_FAIL;
	} else {
		ctl_audit(ctl, "smime.issue", gpg_user_address(u));
		if (ctl->json)
			ctl_json_print(json_pack("{s:s,s:s%}", "address", gpg_user_address(u),
						 "certificate", pem, len));
		else
			fwrite(pem, 1, len, stdout);
		rc = CTL_EXIT_OK;
	}
	free(pem);
	gpg_user_close(u);
	return rc;
}

static const struct ctl_verb verbs[] = {
    {"ca", smime_ca, N_("smime ca init [--name NAME] [--days N] | smime ca show"),
     N_("create the organization S/MIME CA, or print its certificate")},
    {"delete", smime_delete, N_("smime delete USER FINGERPRINT [--yes]"),
     N_("delete a certificate (and its private key) of the user")},
    {"export", smime_export, N_("smime export USER"), N_("print the user's own certificate (PEM)")},
    {"import", smime_import, N_("smime import USER FILE.p12 [--recovery-key FILE]"),
     N_("import the user's key and certificate (password, then the PKCS#12 password)")},
    {"issue", smime_issue, N_("smime issue USER [--days N] [--recovery-key FILE]"),
     N_("issue a certificate from the organization CA into the user's keyring")},
    {"list", smime_list, N_("smime list USER"), N_("list the certificates of the user")},
};

static int usage(const char *verb)
{
	return ctl_usage(verbs, sizeof(verbs) / sizeof(verbs[0]), verb);
}

int ctl_cmd_smime(struct ctl *ctl, int argc, char **argv)
{
	return ctl_dispatch(ctl, verbs, sizeof(verbs) / sizeof(verbs[0]), argc, argv);
}
