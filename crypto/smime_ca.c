/*
 * smime_ca.c - the optional organization CA for S/MIME: creates the CA (RSA
 * 3072, self-signed, ten years) in <data_dir>/smime-ca/ and issues user
 * certificates (RSA 3072, SHA-256, emailProtection, the address as
 * rfc822Name) that are imported with their key into the user's gpgsm home,
 * with the CA marked trusted there.
 *
 * RSA rather than ECC because gpgsm 2.2 (Debian 12) signs and decrypts
 * S/MIME with RSA keys only. The CA key is written 0600 and never leaves
 * the data dir; an issued key exists outside gpg-agent only in memory.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sodium.h>

#include "crypto/crypto_internal.h"
#include "crypto/gpg_home.h"
#include "crypto/gpg_internal.h"
#include "crypto/smime_ca.h"
#include "util/config.h"
#include "util/i18n.h"

#define CA_DIR "smime-ca"
#define CA_KEY_FILE "ca.key"
#define CA_CERT_FILE "ca.crt"
#define CA_RSA_BITS 3072
#define CA_DAYS_DEFAULT 3650
#define CA_SERIAL_BYTES 16
#define CA_PEM_MAX (64 * 1024)
#define CA_TRUSTLIST "trustlist.txt"

static void ssl_fail(char *err, size_t errlen, const char *what)
{
	unsigned long e = ERR_get_error();
	char detail[256] = "";

	if (e != 0)
		ERR_error_string_n(e, detail, sizeof(detail));
	ERR_clear_error();
	if (detail[0] != '\0')
		gpg_set_err(err, errlen, "%s: %s", what, detail);
	else
		gpg_set_err(err, errlen, "%s", what);
}

static int ca_path(const struct config *cfg, const char *file, char *out, size_t outlen)
{
	if (file == NULL)
		return (size_t)snprintf(out, outlen, "%s/%s", cfg->server.data_dir, CA_DIR) >=
			       outlen
			   ? -1
			   : 0;
	return (size_t)snprintf(out, outlen, "%s/%s/%s", cfg->server.data_dir, CA_DIR, file) >=
		       outlen
		   ? -1
		   : 0;
}

static int random_serial(X509 *x)
{
	unsigned char buf[CA_SERIAL_BYTES];
	BIGNUM *bn;
	int ok;

	randombytes_buf(buf, sizeof(buf));
	buf[0] &= 0x7f; /* positive */
	buf[0] |= 0x01; /* and not shorter than it should be */
	bn = BN_bin2bn(buf, sizeof(buf), NULL);
	if (bn == NULL)
		return -1;
	ok = BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
	BN_free(bn);
	return ok ? 0 : -1;
}

static EVP_PKEY *rsa_keygen(void)
{
	return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)CA_RSA_BITS);
}

/* A certificate for PKEY with subject CN (and emailAddress when EMAIL). */
static X509 *cert_new(EVP_PKEY *pkey, const char *cn, const char *email, unsigned days)
{
	X509 *x = X509_new();
	X509_NAME *name;

	if (x == NULL || X509_set_version(x, 2) != 1 || random_serial(x) != 0 ||
	    X509_gmtime_adj(X509_getm_notBefore(x), -300) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(x), (int)days, 0, NULL) == NULL ||
	    X509_set_pubkey(x, pkey) != 1)
		goto fail;
	name = X509_get_subject_name(x);
	if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
				       0) != 1)
		goto fail;
	if (email != NULL &&
	    X509_NAME_add_entry_by_NID(name, NID_pkcs9_emailAddress, MBSTRING_ASC,
				       (const unsigned char *)email, -1, -1, 0) != 1)
		goto fail;
	return x;
fail:
	X509_free(x);
	return NULL;
}

static char *pem_of(X509 *x, size_t *len)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *out = NULL;
	long n;

	if (b == NULL)
		return NULL;
	if (PEM_write_bio_X509(b, x) == 1 && (n = BIO_get_mem_data(b, &data)) > 0 &&
	    (out = malloc((size_t)n + 1)) != NULL) {
		memcpy(out, data, (size_t)n);
		out[n] = '\0';
		*len = (size_t)n;
	}
	BIO_free(b);
	return out;
}

int smime_ca_init(const struct config *cfg, const char *name, unsigned days, char *err,
		  size_t errlen)
{
	char dir[CRYPTO_PATH_MAX], key_path[CRYPTO_PATH_MAX], cert_path[CRYPTO_PATH_MAX];
	EVP_PKEY *pkey = NULL;
	X509 *x = NULL;
	BIO *kb = NULL;
	char *key_pem = NULL, *cert_pem = NULL;
	size_t cert_len = 0;
	long key_len;
	int rc = -1;

	if (ca_path(cfg, NULL, dir, sizeof(dir)) != 0 ||
	    ca_path(cfg, CA_KEY_FILE, key_path, sizeof(key_path)) != 0 ||
	    ca_path(cfg, CA_CERT_FILE, cert_path, sizeof(cert_path)) != 0) {
		gpg_set_err(err, errlen, _("data directory path is too long"));
		return -1;
	}
	if (name == NULL || *name == '\0' || strlen(name) > 64) {
		gpg_set_err(err, errlen, _("the CA name must have 1 to 64 characters"));
		return -1;
	}
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		gpg_set_err(err, errlen, _("cannot create directory %s: %s"), dir, strerror(errno));
		return -1;
	}
	if (access(key_path, F_OK) == 0 || access(cert_path, F_OK) == 0) {
		errno = EEXIST;
		gpg_set_err(err, errlen, _("an S/MIME CA already exists in %s"), dir);
		return -1;
	}
	pkey = rsa_keygen();
	if (pkey == NULL) {
		ssl_fail(err, errlen, _("cannot generate the CA key"));
		goto out;
	}
	x = cert_new(pkey, name, NULL, days ? days : CA_DAYS_DEFAULT);
	if (x == NULL || X509_set_issuer_name(x, X509_get_subject_name(x)) != 1 ||
	    crypto_x509_add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") != 0 ||
	    crypto_x509_add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign") != 0 ||
	    crypto_x509_add_ext(x, x, NID_subject_key_identifier, "hash") != 0 ||
	    X509_sign(x, pkey, EVP_sha256()) <= 0) {
		ssl_fail(err, errlen, _("cannot build the CA certificate"));
		goto out;
	}
	kb = BIO_new(BIO_s_mem());
	if (kb == NULL || PEM_write_bio_PrivateKey(kb, pkey, NULL, NULL, 0, NULL, NULL) != 1 ||
	    (key_len = BIO_get_mem_data(kb, &key_pem)) <= 0 ||
	    (cert_pem = pem_of(x, &cert_len)) == NULL) {
		ssl_fail(err, errlen, _("cannot encode the CA"));
		goto out;
	}
	/* Key first, exclusively: two racing inits cannot both win. */
	if (crypto_file_write_atomic(key_path, key_pem, (size_t)key_len, 0600, 1) != 0) {
		gpg_set_err(err, errlen, _("cannot write %s: %s"), key_path, strerror(errno));
		goto out;
	}
	if (crypto_file_write_atomic(cert_path, cert_pem, cert_len, 0644, 1) != 0) {
		gpg_set_err(err, errlen, _("cannot write %s: %s"), cert_path, strerror(errno));
		unlink(key_path);
		goto out;
	}
	rc = 0;
out:
	BIO_free(kb);
	free(cert_pem);
	X509_free(x);
	EVP_PKEY_free(pkey);
	return rc;
}

static int ca_load(const struct config *cfg, EVP_PKEY **pkey, X509 **x, char *err, size_t errlen)
{
	char key_path[CRYPTO_PATH_MAX], cert_path[CRYPTO_PATH_MAX];
	FILE *f;

	*pkey = NULL;
	*x = NULL;
	if (ca_path(cfg, CA_KEY_FILE, key_path, sizeof(key_path)) != 0 ||
	    ca_path(cfg, CA_CERT_FILE, cert_path, sizeof(cert_path)) != 0) {
		gpg_set_err(err, errlen, _("data directory path is too long"));
		return -1;
	}
	f = fopen(cert_path, "re");
	if (f == NULL) {
		gpg_set_err(err, errlen,
			    _("no S/MIME CA (%s: %s); create it with \"posternctl "
			      "smime ca init\""),
			    cert_path, strerror(errno));
		return -1;
	}
	*x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	f = fopen(key_path, "re");
	if (f != NULL) {
		*pkey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
		fclose(f);
	}
	if (*x == NULL || *pkey == NULL || X509_check_private_key(*x, *pkey) != 1) {
		ssl_fail(err, errlen, _("the S/MIME CA files are unreadable or do not match"));
		X509_free(*x);
		EVP_PKEY_free(*pkey);
		*x = NULL;
		*pkey = NULL;
		return -1;
	}
	return 0;
}

int smime_ca_cert_pem(const struct config *cfg, char **pem, size_t *len, char *err, size_t errlen)
{
	EVP_PKEY *pkey;
	X509 *x;

	if (ca_load(cfg, &pkey, &x, err, errlen) != 0)
		return -1;
	*pem = pem_of(x, len);
	EVP_PKEY_free(pkey);
	X509_free(x);
	if (*pem == NULL) {
		gpg_set_err(err, errlen, _("out of memory"));
		return -1;
	}
	return 0;
}

/* Marks the CA as a trusted S/MIME root in the user's home (gpg-agent's trustlist). */
static int trust_ca(struct gpg_user *u, X509 *ca, char *err, size_t errlen)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char line[128], path[CRYPTO_PATH_MAX], *old = NULL;
	size_t pos = 0, oldlen = 0;
	FILE *f;
	int rc;

	if (X509_digest(ca, EVP_sha1(), md, &mdlen) != 1) {
		ssl_fail(err, errlen, _("cannot hash the CA certificate"));
		return -1;
	}
	for (unsigned i = 0; i < mdlen; i++)
		pos +=
		    (size_t)snprintf(line + pos, sizeof(line) - pos, i ? ":%02X" : "%02X", md[i]);
	snprintf(line + pos, sizeof(line) - pos, " S relax\n");
	snprintf(path, sizeof(path), "%s/%s", gpg_user_homedir(u, GPGME_PROTOCOL_CMS),
		 CA_TRUSTLIST);
	f = fopen(path, "re");
	if (f != NULL) {
		old = malloc(CA_PEM_MAX + 1);
		if (old != NULL) {
			oldlen = fread(old, 1, CA_PEM_MAX, f);
			old[oldlen] = '\0';
		}
		fclose(f);
		if (old != NULL && strstr(old, line) != NULL) {
			free(old);
			return 0;
		}
	}
	{
		size_t n = oldlen + strlen(line);
		char *all = malloc(n + 1);

		if (all == NULL) {
			free(old);
			gpg_set_err(err, errlen, _("out of memory"));
			return -1;
		}
		if (oldlen)
			memcpy(all, old, oldlen);
		memcpy(all + oldlen, line, strlen(line) + 1);
		rc = crypto_file_write_atomic(path, all, n, 0600, 0);
		free(all);
	}
	free(old);
	if (rc != 0) {
		gpg_set_err(err, errlen, _("cannot write %s: %s"), path, strerror(errno));
		return -1;
	}
	return 0;
}

int smime_ca_issue(const struct config *cfg, struct gpg_user *u, unsigned days, char **cert_pem,
		   size_t *cert_len, char *err, size_t errlen)
{
	const char *address = gpg_user_address(u);
	EVP_PKEY *ca_key = NULL, *pkey = NULL;
	X509 *ca = NULL, *x = NULL;
	STACK_OF(X509) *chain = NULL;
	PKCS12 *p12 = NULL;
	unsigned char *der = NULL, pwbin[24];
	char san[400], pw[sizeof(pwbin) * 2 + 1], *ca_pem = NULL;
	size_t ca_len = 0;
	int der_len = 0, rc = -1;

	*cert_pem = NULL;
	if (!gpg_user_unlocked(u)) {
		gpg_set_err(err, errlen, _("the user's key is locked; secret keys need it"));
		return -1;
	}
	if (ca_load(cfg, &ca_key, &ca, err, errlen) != 0)
		return -1;
	if ((size_t)snprintf(san, sizeof(san), "email:%s", address) >= sizeof(san)) {
		gpg_set_err(err, errlen, _("invalid address \"%s\""), address);
		goto out;
	}
	pkey = rsa_keygen();
	x = pkey ? cert_new(pkey, address, address, days ? days : 730) : NULL;
	if (x == NULL || X509_set_issuer_name(x, X509_get_subject_name(ca)) != 1 ||
	    crypto_x509_add_ext(x, ca, NID_basic_constraints, "critical,CA:FALSE") != 0 ||
	    crypto_x509_add_ext(x, ca, NID_key_usage,
				"critical,digitalSignature,keyEncipherment") != 0 ||
	    crypto_x509_add_ext(x, ca, NID_ext_key_usage, "emailProtection") != 0 ||
	    crypto_x509_add_ext(x, ca, NID_subject_alt_name, san) != 0 ||
	    crypto_x509_add_ext(x, ca, NID_subject_key_identifier, "hash") != 0 ||
	    crypto_x509_add_ext(x, ca, NID_authority_key_identifier, "keyid:always") != 0 ||
	    X509_sign(x, ca_key, EVP_sha256()) <= 0) {
		ssl_fail(err, errlen, _("cannot build the user certificate"));
		goto out;
	}
	/* The key travels to gpgsm as a PKCS#12 under a one-time password. */
	randombytes_buf(pwbin, sizeof(pwbin));
	sodium_bin2hex(pw, sizeof(pw), pwbin, sizeof(pwbin));
	chain = sk_X509_new_null();
	if (chain == NULL || !sk_X509_push(chain, ca) ||
	    (p12 =
		 PKCS12_create(pw, address, pkey, x, chain, NID_pbe_WithSHA1And3_Key_TripleDES_CBC,
			       -1, PKCS12_DEFAULT_ITER, 1, 0)) == NULL ||
	    PKCS12_set_mac(p12, pw, -1, NULL, 0, PKCS12_DEFAULT_ITER, EVP_sha1()) != 1 ||
	    (der_len = i2d_PKCS12(p12, &der)) <= 0) {
		ssl_fail(err, errlen, _("cannot encode the user's key and certificate"));
		goto out;
	}
	if (gpg_user_import_p12(u, der, (size_t)der_len, pw, err, errlen) != 0)
		goto out;
	if ((ca_pem = pem_of(ca, &ca_len)) == NULL ||
	    gpg_user_import_public(u, GPGME_PROTOCOL_CMS, ca_pem, ca_len, NULL, err, errlen) != 0 ||
	    trust_ca(u, ca, err, errlen) != 0)
		goto out;
	*cert_pem = pem_of(x, cert_len);
	if (*cert_pem == NULL) {
		gpg_set_err(err, errlen, _("out of memory"));
		goto out;
	}
	rc = 0;
out:
	sodium_memzero(pw, sizeof(pw));
	if (der) {
		OPENSSL_cleanse(der, (size_t)der_len);
		OPENSSL_free(der);
	}
	free(ca_pem);
	PKCS12_free(p12);
	sk_X509_free(chain);
	X509_free(x);
	X509_free(ca);
	EVP_PKEY_free(pkey);
	EVP_PKEY_free(ca_key);
	return rc;
}
