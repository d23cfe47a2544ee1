/*
 * gpg_keys.c - keys in a user's GnuPG home: importing correspondents' public
 * keys and the user's own secret keys (OpenPGP, PKCS#12), finding a usable
 * key for an address, exporting the user's own public key.
 *
 * Secret keys always end up protected by the passphrase derived from the
 * user's at-rest key: an OpenPGP key imported with its own passphrase gets
 * it changed (gpg-agent PASSWD through gpgme_op_passwd), and a PKCS#12 file
 * is opened with OpenSSL (so a wrong password and a broken file are told
 * apart) and handed to gpgsm re-encrypted under the derived passphrase.
 */
#include "config.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>
#include <sodium.h>

#include "crypto/gpg_home.h"
#include "crypto/gpg_internal.h"
#include "util/i18n.h"

#define GPG_IMPORT_MAX (4 * 1024 * 1024)
#define GPG_EXPORT_MAX (4 * 1024 * 1024)
/* Encodings of one PKCS#12 file tried before its import is given up. */
#define P12_IMPORT_ATTEMPTS 3
#define P12_RETRY_PAUSE_US (500 * 1000)

static const char *gerr(gpgme_error_t e)
{
	return gpgme_strerror(e);
}

/* True when DATA starts an OpenPGP secret key (armored or binary). */
static bool looks_like_pgp_secret(const unsigned char *data, size_t len)
{
	static const char armor[] = "-----BEGIN PGP PRIVATE KEY BLOCK-----";
	size_t i = 0;

	while (i < len && isspace(data[i]))
		i++;
	if (len - i >= sizeof(armor) - 1 && memcmp(data + i, armor, sizeof(armor) - 1) == 0)
		return true;
	if (i < len && (data[i] & 0x80)) {
		unsigned tag = (data[i] & 0x40) ? (data[i] & 0x3f) : ((data[i] >> 2) & 0x0f);

		return tag == 5 || tag == 7; /* secret key, secret subkey */
	}
	return false;
}

/* Runs an import of DATA in CTX; fills *IMPORTED and the result. */
static int run_import(gpgme_ctx_t ctx, const void *data, size_t len, gpgme_import_result_t *res,
		      char *err, size_t errlen)
{
	gpgme_data_t d;
	gpgme_error_t e;

	if (len == 0 || len > GPG_IMPORT_MAX) {
		gpg_set_err(err, errlen, _("key data is empty or larger than %d bytes"),
			    GPG_IMPORT_MAX);
		return -1;
	}
	e = gpgme_data_new_from_mem(&d, data, len, 0);
	if (e != 0) {
		gpg_set_err(err, errlen, _("cannot import keys: %s"), gerr(e));
		return -1;
	}
	e = gpgme_op_import(ctx, d);
	gpgme_data_release(d);
	if (e != 0) {
		gpg_set_err(err, errlen, _("cannot import keys: %s"), gerr(e));
		return -1;
	}
	*res = gpgme_op_import_result(ctx);
	if (*res == NULL || (*res)->considered == 0) {
		gpg_set_err(err, errlen, _("no keys or certificates found in the input"));
		return -1;
	}
	return 0;
}

static unsigned import_count(gpgme_import_result_t r)
{
	unsigned n = 0;

	for (gpgme_import_status_t s = r->imports; s; s = s->next)
		if (s->result == 0 &&
		    (s->status & (GPGME_IMPORT_NEW | GPGME_IMPORT_UID | GPGME_IMPORT_SIG |
				  GPGME_IMPORT_SUBKEY | GPGME_IMPORT_SECRET)))
			n++;
	return n;
}

/* Every key considered failed: report the first reason. */
static int import_all_failed(gpgme_import_result_t r, char *err, size_t errlen)
{
	bool any_ok = false;

	for (gpgme_import_status_t s = r->imports; s; s = s->next)
		if (s->result == 0)
			any_ok = true;
	if (any_ok || (r->imports == NULL && r->not_imported == 0))
		return 0;
	gpg_set_err(err, errlen, _("no key could be imported: %s"),
		    r->imports ? gerr(r->imports->result) : _("invalid key data"));
	return -1;
}

int gpg_user_import_public(struct gpg_user *u, gpgme_protocol_t proto, const void *data, size_t len,
			   unsigned *imported, char *err, size_t errlen)
{
	gpgme_ctx_t ctx = gpg_user_ctx(u, proto);
	gpgme_import_result_t r;
	gpgme_data_t d;

	if (imported)
		*imported = 0;
	if (ctx == NULL) {
		gpg_set_err(err, errlen, _("cannot start GPGME for %s"), gpg_user_address(u));
		return -1;
	}
	if (proto == GPGME_PROTOCOL_OpenPGP && looks_like_pgp_secret(data, len)) {
		gpg_set_err(err, errlen, _("the input holds a secret key, not public keys only"));
		return -1;
	}
	if (proto == GPGME_PROTOCOL_CMS && len > 0 &&
	    gpgme_data_new_from_mem(&d, data, len, 0) == 0) {
		gpgme_data_type_t t = gpgme_data_identify(d, 0);

		gpgme_data_release(d);
		if (t == GPGME_DATA_TYPE_PKCS12) {
			gpg_set_err(err, errlen,
				    _("the input is a PKCS#12 file with a private key, not a "
				      "certificate"));
			return -1;
		}
	}
	if (run_import(ctx, data, len, &r, err, errlen) != 0)
		return -1;
	if (r->secret_read > 0) {
		gpg_set_err(err, errlen, _("the input holds a secret key, not public keys only"));
		return -1;
	}
	if (import_all_failed(r, err, errlen) != 0)
		return -1;
	if (imported)
		*imported = import_count(r);
	return 0;
}

/* Removes the secret half of FPR again (an import that could not be re-protected). */
static void delete_secret(gpgme_ctx_t ctx, const char *fpr)
{
	gpgme_key_t key;

	if (gpgme_get_key(ctx, fpr, &key, 1) != 0)
		return;
	gpgme_op_delete_ext(ctx, key, GPGME_DELETE_ALLOW_SECRET | GPGME_DELETE_FORCE);
	gpgme_key_unref(key);
}

/* 0 when U has the GPGME context CTX and its key is unlocked, as an import of secret keys
 * needs; -1 with the reason in ERR otherwise. */
static int secret_import_ready(const struct gpg_user *u, gpgme_ctx_t ctx, char *err, size_t errlen)
{
	if (ctx == NULL) {
		gpg_set_err(err, errlen, _("cannot start GPGME for %s"), gpg_user_address(u));
		return -1;
	}
	if (!gpg_user_unlocked(u)) {
		gpg_set_err(err, errlen, _("the user's key is locked; secret keys need it"));
		return -1;
	}
	return 0;
}

int gpg_user_import_secret(struct gpg_user *u, const void *data, size_t len, const char *passphrase,
			   unsigned *imported, char *err, size_t errlen)
{
	gpgme_ctx_t ctx = gpg_user_ctx(u, GPGME_PROTOCOL_OpenPGP);
	gpgme_import_result_t r;
	char fprs[16][64];
	size_t n_fpr = 0;
	int rc = 0;

	if (imported)
		*imported = 0;
	if (secret_import_ready(u, ctx, err, errlen) != 0)
		return -1;
	if (!looks_like_pgp_secret(data, len)) {
		gpg_set_err(err, errlen, _("the input is not an OpenPGP secret key"));
		return -1;
	}
	if (run_import(ctx, data, len, &r, err, errlen) != 0)
		return -1;
	for (gpgme_import_status_t s = r->imports; s && n_fpr < 16; s = s->next)
		if (s->result == 0 && (s->status & GPGME_IMPORT_SECRET) && s->fpr)
			snprintf(fprs[n_fpr++], sizeof(fprs[0]), "%s", s->fpr);
	if (n_fpr == 0) {
		if (r->secret_imported == 0 && r->secret_unchanged > 0)
			gpg_set_err(err, errlen, _("the secret key is already there"));
		else if (import_all_failed(r, err, errlen) == 0)
			gpg_set_err(err, errlen, _("no secret key could be imported"));
		return -1;
	}
	/* Re-protect each with the derived passphrase; roll back what fails. */
	for (size_t i = 0; i < n_fpr; i++) {
		gpgme_key_t key;
		gpgme_error_t e = gpgme_get_key(ctx, fprs[i], &key, 1);

		if (e == 0) {
			gpg_user_first_passphrase(u, passphrase);
			e = gpgme_op_passwd(ctx, key, 0);
			gpg_user_first_passphrase(u, NULL);
			gpgme_key_unref(key);
		}
		if (e != 0) {
			for (size_t j = i; j < n_fpr; j++)
				delete_secret(ctx, fprs[j]);
			if (gpg_err_code(e) == GPG_ERR_BAD_PASSPHRASE ||
			    gpg_err_code(e) == GPG_ERR_NO_PASSPHRASE)
				gpg_set_err(err, errlen,
					    _("wrong passphrase for the secret key (nothing "
					      "imported)"));
			else
				gpg_set_err(err, errlen,
					    _("cannot protect the imported secret key: %s"),
					    gerr(e));
			rc = -1;
			break;
		}
		if (imported)
			(*imported)++;
	}
	return rc;
}

static void ssl_err(char *err, size_t errlen, const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256];

	ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	gpg_set_err(err, errlen, "%s (%s)", what, e ? buf : "-");
}

int gpg_user_import_p12(struct gpg_user *u, const void *data, size_t len, const char *p12_password,
			char *err, size_t errlen)
{
	gpgme_ctx_t ctx = gpg_user_ctx(u, GPGME_PROTOCOL_CMS);
	const unsigned char *p = data;
	PKCS12 *in = NULL, *out = NULL;
	EVP_PKEY *pkey = NULL;
	X509 *cert = NULL;
	STACK_OF(X509) *ca = NULL;
	unsigned char *der = NULL;
	char pass[GPG_PASSPHRASE_LEN + 1], fpr[2 * EVP_MAX_MD_SIZE + 1];
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	gpgme_key_t key = NULL;
	int der_len = 0, rc = -1;

	if (secret_import_ready(u, ctx, err, errlen) != 0)
		return -1;
	if (len == 0 || len > GPG_IMPORT_MAX || len > LONG_MAX) {
		gpg_set_err(err, errlen, _("PKCS#12 file is empty or too large"));
		return -1;
	}
	in = d2i_PKCS12(NULL, &p, (long)len);
	if (in == NULL || p != (const unsigned char *)data + len) {
		ssl_err(err, errlen, _("not a PKCS#12 file, or truncated"));
		goto out;
	}
	if (!PKCS12_mac_present(in) ||
	    !PKCS12_verify_mac(in, p12_password, p12_password ? -1 : 0)) {
		ERR_clear_error();
		gpg_set_err(err, errlen, _("wrong password for the PKCS#12 file"));
		goto out;
	}
	if (!PKCS12_parse(in, p12_password, &pkey, &cert, &ca)) {
		ssl_err(err, errlen, _("cannot read the PKCS#12 file"));
		goto out;
	}
	if (pkey == NULL || cert == NULL) {
		gpg_set_err(err, errlen,
			    _("the PKCS#12 file holds no private key and certificate"));
		goto out;
	}
	if (X509_check_private_key(cert, pkey) != 1) {
		ERR_clear_error();
		gpg_set_err(err, errlen, _("the PKCS#12 key does not match its certificate"));
		goto out;
	}
	/* gpgsm 2.2 reads a 3DES-shrouded key with a SHA-1 MAC; its parser of an
	 * encrypted certificate bag fails now and then (salt-dependent), so the
	 * (public) certificates go in unencrypted. */
	if (gpg_passphrase_derive_user(u, pass) != 0) {
		gpg_set_err(err, errlen, _("the user's key is locked; secret keys need it"));
		goto out;
	}
	/* gpgsm's exit code does not say whether the key came in: look for it. */
	if (X509_digest(cert, EVP_sha1(), md, &mdlen) != 1) {
		ssl_err(err, errlen, _("cannot hash the certificate"));
		goto out;
	}
	for (unsigned i = 0; i < mdlen; i++)
		snprintf(fpr + 2 * i, sizeof(fpr) - 2 * i, "%02X", md[i]);
	/*
	 * gpgsm 2.2's PKCS#12 parser also fails on some shrouded key bags,
	 * depending on the random salt: a failed import is tried again with a
	 * fresh encoding (importing the certificate again changes nothing).
	 */
	for (int attempt = 0; attempt < P12_IMPORT_ATTEMPTS && key == NULL; attempt++) {
		if (attempt > 0)
			usleep(P12_RETRY_PAUSE_US); /* let a gpg-agent gpgsm started settle */
		PKCS12_free(out);
		if (der) {
			OPENSSL_cleanse(der, (size_t)der_len);
			OPENSSL_free(der);
			der = NULL;
		}
		out = PKCS12_create(pass, NULL, pkey, cert, ca, NID_pbe_WithSHA1And3_Key_TripleDES_CBC,
				    -1, PKCS12_DEFAULT_ITER, 1, 0);
		if (out == NULL ||
		    PKCS12_set_mac(out, pass, -1, NULL, 0, PKCS12_DEFAULT_ITER, EVP_sha1()) != 1 ||
		    (der_len = i2d_PKCS12(out, &der)) <= 0) {
			ssl_err(err, errlen, _("cannot re-encode the PKCS#12 file"));
			goto out;
		}
		if (gpg_user_gpgsm_import(u, der, (size_t)der_len, pass, err, errlen) != 0)
			continue;
		if (gpgme_get_key(ctx, fpr, &key, 1) != 0 || key == NULL) {
			key = NULL;
			gpg_set_err(err, errlen, _("gpgsm did not import the private key"));
		}
	}
	if (key == NULL)
		goto out;
	gpgme_key_unref(key);
	gpg_user_cms_preset(u);
	rc = 0;
out:
	sodium_memzero(pass, sizeof(pass));
	if (der) {
		OPENSSL_cleanse(der, (size_t)der_len);
		OPENSSL_free(der);
	}
	PKCS12_free(in);
	PKCS12_free(out);
	EVP_PKEY_free(pkey);
	X509_free(cert);
	sk_X509_pop_free(ca, X509_free);
	return rc;
}

/* True when one of KEY's user ids carries ADDRESS (case-insensitive). */
static bool key_has_address(gpgme_key_t key, const char *address)
{
	for (gpgme_user_id_t uid = key->uids; uid; uid = uid->next) {
		const char *e = uid->email;
		size_t n;

		if (e == NULL || uid->revoked || uid->invalid)
			continue;
		if (*e == '<') {
			n = strlen(e);
			if (n >= 2 && n - 2 == strlen(address) &&
			    strncasecmp(e + 1, address, n - 2) == 0)
				return true;
		} else if (strcasecmp(e, address) == 0) {
			return true;
		}
	}
	return false;
}

static bool key_usable(gpgme_key_t key, bool secret)
{
	if (key->revoked || key->expired || key->disabled || key->invalid)
		return false;
	return secret ? (key->can_sign && key->secret) : key->can_encrypt;
}

int gpg_user_find_key(struct gpg_user *u, gpgme_protocol_t proto, const char *address, bool secret,
		      gpgme_key_t *out, char *err, size_t errlen)
{
	gpgme_ctx_t ctx = gpg_user_ctx(u, proto);
	gpgme_key_t key, best = NULL;
	gpgme_error_t e;

	*out = NULL;
	if (ctx == NULL) {
		gpg_set_err(err, errlen, _("cannot start GPGME for %s"), gpg_user_address(u));
		return -1;
	}
	e = gpgme_op_keylist_start(ctx, address, secret ? 1 : 0);
	while (e == 0 && (e = gpgme_op_keylist_next(ctx, &key)) == 0) {
		long t = key->subkeys ? key->subkeys->timestamp : 0;

		if (key_usable(key, secret) && key_has_address(key, address) &&
		    (best == NULL || t > best->subkeys->timestamp)) {
			if (best)
				gpgme_key_unref(best);
			best = key;
		} else {
			gpgme_key_unref(key);
		}
	}
	gpgme_op_keylist_end(ctx);
	if (gpg_err_code(e) != GPG_ERR_EOF) {
		if (best)
			gpgme_key_unref(best);
		gpg_set_err(err, errlen, _("cannot list keys: %s"), gerr(e));
		return -1;
	}
	*out = best;
	return best != NULL;
}

int gpg_user_export_own(struct gpg_user *u, bool armor, char **out, size_t *out_len, char *err,
			size_t errlen)
{
	gpgme_ctx_t ctx = gpg_user_ctx(u, GPGME_PROTOCOL_OpenPGP);
	gpgme_key_t keys[17], key;
	size_t n = 0;
	gpgme_data_t d = NULL;
	gpgme_error_t e;
	char *buf;
	size_t len = 0;
	int rc = -1;

	*out = NULL;
	*out_len = 0;
	if (ctx == NULL) {
		gpg_set_err(err, errlen, _("cannot start GPGME for %s"), gpg_user_address(u));
		return -1;
	}
	e = gpgme_op_keylist_start(ctx, gpg_user_address(u), 0);
	while (e == 0 && (e = gpgme_op_keylist_next(ctx, &key)) == 0) {
		if (n < 16 && key_has_address(key, gpg_user_address(u)) && !key->revoked &&
		    !key->invalid)
			keys[n++] = key;
		else
			gpgme_key_unref(key);
	}
	gpgme_op_keylist_end(ctx);
	keys[n] = NULL;
	if (gpg_err_code(e) != GPG_ERR_EOF) {
		gpg_set_err(err, errlen, _("cannot list keys: %s"), gerr(e));
		goto out;
	}
	if (n == 0) {
		rc = 0;
		goto out;
	}
	gpgme_set_armor(ctx, armor);
	e = gpgme_data_new(&d);
	if (e == 0)
		e = gpgme_op_export_keys(ctx, keys, 0, d);
	gpgme_set_armor(ctx, 0);
	if (e != 0) {
		gpg_set_err(err, errlen, _("cannot export keys: %s"), gerr(e));
		goto out;
	}
	buf = gpgme_data_release_and_get_mem(d, &len);
	d = NULL;
	if (buf == NULL || len == 0 || len > GPG_EXPORT_MAX) {
		gpgme_free(buf);
		gpg_set_err(err, errlen, _("cannot export keys: %s"), _("no data"));
		goto out;
	}
	*out = malloc(len);
	if (*out == NULL) {
		gpgme_free(buf);
		gpg_set_err(err, errlen, _("out of memory"));
		goto out;
	}
	memcpy(*out, buf, len);
	*out_len = len;
	gpgme_free(buf);
	rc = 1;
out:
	if (d)
		gpgme_data_release(d);
	for (size_t i = 0; i < n; i++)
		gpgme_key_unref(keys[i]);
	return rc;
}
