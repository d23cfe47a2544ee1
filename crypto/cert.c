/*
 * cert.c - a self-signed TLS certificate for first start and tests, made with
 * the OpenSSL 3 API (no openssl(1) subprocess).
 *
 * EC P-256 key, X.509 v3, SHA-256, random 128-bit serial, valid two years,
 * CN and SAN naming the host plus localhost, 127.0.0.1 and ::1. The
 * certificate is its own issuer and carries CA:TRUE, keyCertSign and key
 * identifiers, so a client can trust it directly as an anchor even under
 * strict X.509 checking, and serverAuth so it is accepted for TLS servers.
 * The key file is written 0600, both files are replaced atomically.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "crypto/crypto.h"
#include "crypto/crypto_internal.h"
#include "util/i18n.h"

#define CERT_VALID_DAYS 730
#define CERT_SERIAL_BYTES 16
#define HOSTNAME_MAX 253

/* Letters, digits, '-' and '.', as in a DNS name; nothing that could inject into an extension. */
static int hostname_valid(const char *h)
{
	size_t n = 0;

	if (h == NULL)
		return 0;
	for (; h[n] != '\0'; n++) {
		char c = h[n];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '.'))
			return 0;
	}
	return n > 0 && n <= HOSTNAME_MAX && h[0] != '.' && h[0] != '-';
}

static void set_err(char *err, size_t errlen, const char *what)
{
	unsigned long e = ERR_get_error();
	char detail[256] = "";

	if (err == NULL || errlen == 0)
		return;
	if (e != 0)
		ERR_error_string_n(e, detail, sizeof(detail));
	if (detail[0] != '\0')
		snprintf(err, errlen, "%s: %s", what, detail);
	else
		snprintf(err, errlen, "%s", what);
	ERR_clear_error();
}

int crypto_x509_add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (ext == NULL)
		return -1;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : -1;
}

static int set_random_serial(X509 *x)
{
	unsigned char bytes[CERT_SERIAL_BYTES];
	ASN1_INTEGER *serial = NULL;
	BIGNUM *bn;
	int ok = 0;

	if (RAND_bytes(bytes, sizeof(bytes)) != 1)
		return -1;
	bytes[0] = (unsigned char)((bytes[0] & 0x7f) | 0x40); /* positive, full length */
	bn = BN_bin2bn(bytes, sizeof(bytes), NULL);
	if (bn != NULL)
		serial = BN_to_ASN1_INTEGER(bn, NULL);
	if (serial != NULL)
		ok = X509_set_serialNumber(x, serial);
	ASN1_INTEGER_free(serial);
	BN_free(bn);
	return ok ? 0 : -1;
}

static int add_extensions(X509 *x, const char *hostname)
{
	char san[HOSTNAME_MAX + 64];

	if (strcmp(hostname, "localhost") == 0)
		snprintf(san, sizeof(san), "DNS:localhost,IP:127.0.0.1,IP:::1");
	else
		snprintf(san, sizeof(san), "DNS:%s,DNS:localhost,IP:127.0.0.1,IP:::1", hostname);
	/* The subject key identifier first: the authority key identifier copies it. */
	if (crypto_x509_add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") < 0 ||
	    crypto_x509_add_ext(x, x, NID_key_usage, "critical,digitalSignature,keyCertSign") < 0 ||
	    crypto_x509_add_ext(x, x, NID_ext_key_usage, "serverAuth") < 0 ||
	    crypto_x509_add_ext(x, x, NID_subject_key_identifier, "hash") < 0 ||
	    crypto_x509_add_ext(x, x, NID_authority_key_identifier, "keyid:always") < 0 ||
	    crypto_x509_add_ext(x, x, NID_subject_alt_name, san) < 0)
		return -1;
	return 0;
}

static X509 *make_cert(EVP_PKEY *pkey, const char *hostname)
{
	X509 *x = X509_new();
	X509_NAME *name;

	if (x == NULL)
		return NULL;
	name = X509_get_subject_name(x);
	if (X509_set_version(x, X509_VERSION_3) != 1 || set_random_serial(x) < 0 ||
	    X509_gmtime_adj(X509_getm_notBefore(x), -300) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(x), CERT_VALID_DAYS, 0, NULL) == NULL ||
	    X509_set_pubkey(x, pkey) != 1 ||
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)hostname,
				       -1, -1, 0) != 1 ||
	    X509_set_issuer_name(x, name) != 1 || add_extensions(x, hostname) < 0 ||
	    X509_sign(x, pkey, EVP_sha256()) <= 0) {
		X509_free(x);
		return NULL;
	}
	return x;
}

/* Writes what BIO holds to PATH atomically with MODE. */
static int write_bio(BIO *bio, const char *path, mode_t mode)
{
	char *data = NULL;
	long len = BIO_get_mem_data(bio, &data);

	if (len <= 0 || data == NULL)
		return -1;
	return crypto_file_write_atomic(path, data, (size_t)len, mode, 0);
}

int crypto_selfsigned_cert(const char *hostname, const char *cert_path, const char *key_path,
			   char *err, size_t errlen)
{
	EVP_PKEY *pkey = NULL;
	X509 *x = NULL;
	BIO *key_bio = NULL, *cert_bio = NULL;
	char what[CRYPTO_PATH_MAX + 128];
	int rc = -1;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (!hostname_valid(hostname)) {
		set_err(err, errlen, _("invalid host name for the certificate"));
		return -1;
	}
	if (cert_path == NULL || key_path == NULL) {
		set_err(err, errlen, _("certificate and key paths are required"));
		return -1;
	}
	ERR_clear_error();
	pkey = EVP_EC_gen("P-256");
	if (pkey == NULL) {
		set_err(err, errlen, _("cannot generate the P-256 key"));
		goto out;
	}
	x = make_cert(pkey, hostname);
	if (x == NULL) {
		set_err(err, errlen, _("cannot build the certificate"));
		goto out;
	}
	key_bio = BIO_new(BIO_s_secmem()); /* wiped when freed */
	cert_bio = BIO_new(BIO_s_mem());
	if (key_bio == NULL || cert_bio == NULL ||
	    PEM_write_bio_PrivateKey(key_bio, pkey, NULL, NULL, 0, NULL, NULL) != 1 ||
	    PEM_write_bio_X509(cert_bio, x) != 1) {
		set_err(err, errlen, _("cannot encode the certificate as PEM"));
		goto out;
	}
	if (write_bio(key_bio, key_path, 0600) < 0) {
		snprintf(what, sizeof(what), _("cannot write %s: %s"), key_path, strerror(errno));
		set_err(err, errlen, what);
		goto out;
	}
	if (write_bio(cert_bio, cert_path, 0644) < 0) {
		snprintf(what, sizeof(what), _("cannot write %s: %s"), cert_path, strerror(errno));
		set_err(err, errlen, what);
		goto out;
	}
	rc = 0;
out:
	BIO_free(key_bio);
	BIO_free(cert_bio);
	X509_free(x);
	EVP_PKEY_free(pkey);
	return rc;
}
