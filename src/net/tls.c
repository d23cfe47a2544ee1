/*
 * tls.c - the server's OpenSSL context: TLS 1.2 or newer, ECDHE key
 * exchange with AEAD ciphers only for TLS 1.2 (TLS 1.3 suites are all
 * AEAD), server cipher preference, no compression, no renegotiation.
 *
 * The context is replaced as a whole on reload. SSL_CTX is reference
 * counted and every SSL holds a reference to the context it was made from,
 * so connections that are running keep their certificate while new ones get
 * the new context.
 */
#include <config.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "net/net_int.h"
#include "util/i18n.h"
#include "util/log.h"

#define TLS12_CIPHERS                                                                              \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                               \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"                               \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"
#define TLS_GROUPS "X25519:P-256:P-384"
#define TLS_SESSION_ID_CONTEXT "postern"

static pthread_mutex_t tls_lock = PTHREAD_MUTEX_INITIALIZER;
static SSL_CTX *tls_ctx; /* the context new connections use; guarded by tls_lock */

/* The first OpenSSL error on this thread's queue, as text (the queue is cleared). */
static void ssl_error_text(char *out, size_t outlen)
{
	unsigned long e = ERR_get_error();

	if (e)
		ERR_error_string_n(e, out, outlen);
	else
		snprintf(out, outlen, "%s", _("unknown error"));
	ERR_clear_error();
}

static SSL_CTX *tls_ctx_new(const struct config *cfg, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	char why[256];
	int min = strcmp(cfg->tls.min_version, "1.3") == 0 ? TLS1_3_VERSION : TLS1_2_VERSION;

	if (!ctx) {
		ssl_error_text(why, sizeof(why));
		snprintf(err, errlen, _("cannot create the TLS context: %s"), why);
		return NULL;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
				     SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_set_min_proto_version(ctx, min) != 1 ||
	    SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1 ||
	    SSL_CTX_set1_groups_list(ctx, TLS_GROUPS) != 1 ||
	    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)TLS_SESSION_ID_CONTEXT,
					   sizeof(TLS_SESSION_ID_CONTEXT) - 1) != 1) {
		ssl_error_text(why, sizeof(why));
		snprintf(err, errlen, _("cannot configure the TLS context: %s"), why);
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls.cert_file) != 1) {
		ssl_error_text(why, sizeof(why));
		snprintf(err, errlen, _("cannot load the certificate %s: %s"), cfg->tls.cert_file,
			 why);
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls.key_file, SSL_FILETYPE_PEM) != 1) {
		ssl_error_text(why, sizeof(why));
		snprintf(err, errlen, _("cannot load the private key %s: %s"), cfg->tls.key_file,
			 why);
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		ssl_error_text(why, sizeof(why));
		snprintf(err, errlen, _("the private key %s does not match the certificate %s"),
			 cfg->tls.key_file, cfg->tls.cert_file);
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

int net_tls_reload(const struct config *cfg, char *err, size_t errlen)
{
	SSL_CTX *fresh = NULL, *old;

	if (cfg->tls.cert_file[0] != '\0') {
		fresh = tls_ctx_new(cfg, err, errlen);
		if (!fresh)
			return -1;
	}
	pthread_mutex_lock(&tls_lock);
	old = tls_ctx;
	tls_ctx = fresh;
	pthread_mutex_unlock(&tls_lock);
	SSL_CTX_free(old); /* running connections hold their own reference */
	return 0;
}

SSL *tls_new_ssl(void)
{
	SSL *ssl = NULL;

	pthread_mutex_lock(&tls_lock);
	if (tls_ctx)
		ssl = SSL_new(tls_ctx);
	pthread_mutex_unlock(&tls_lock);
	return ssl;
}

bool tls_available(void)
{
	bool yes;

	pthread_mutex_lock(&tls_lock);
	yes = tls_ctx != NULL;
	pthread_mutex_unlock(&tls_lock);
	return yes;
}

void tls_free(void)
{
	pthread_mutex_lock(&tls_lock);
	SSL_CTX_free(tls_ctx);
	tls_ctx = NULL;
	pthread_mutex_unlock(&tls_lock);
}

void tls_describe(SSL *ssl, char *out, size_t outlen)
{
	const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	X509 *cert = SSL_get_certificate(ssl);
	char subject[256] = "";

	if (cert)
		X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof(subject));
	snprintf(out, outlen, "%s %s sni=%s subject=%s", SSL_get_version(ssl),
		 SSL_get_cipher_name(ssl), sni ? sni : "-", subject[0] ? subject : "-");
}
