/*
 * gpg_wkd.c - the Web Key Directory (draft-koch-openpgp-webkey-service):
 * the z-base-32 hash of a local part, the on-disk directory Postern serves
 * its users' keys from, and the client that fetches correspondents' keys
 * over HTTPS with libcurl.
 *
 * Served keys live in <data_dir>/gnupg/wkd/<domain>/hu/<hash>, the binary
 * export of the user's own OpenPGP keys, (re)written by gpg_wkd_publish
 * whenever the user's keys change; the HTTP handler (src/trace/wkd_http.c)
 * only reads files, so serving never runs gpg.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/sha.h>

#include "crypto/crypto_internal.h"
#include "crypto/gpg_home.h"
#include "crypto/gpg_internal.h"
#include "util/config.h"
#include "util/i18n.h"

#define WKD_FETCH_MAX (256 * 1024)
#define WKD_URL_MAX 1024
#define WKD_LOCAL_MAX 64
#define WKD_DOMAIN_MAX 253

static const char zb32_alphabet[] = "ybndrfg8ejkmcpqxot1uwisza345h769";

int gpg_zbase32(const unsigned char *in, size_t len, char *out, size_t outlen)
{
	size_t bits = len * 8, n = (bits + 4) / 5, o = 0;

	if (outlen < n + 1)
		return -1;
	for (size_t bit = 0; bit < bits; bit += 5) {
		unsigned v = 0;

		for (size_t k = 0; k < 5; k++) {
			size_t b = bit + k;

			v <<= 1;
			if (b < bits && (in[b / 8] & (0x80u >> (b % 8))))
				v |= 1;
		}
		out[o++] = zb32_alphabet[v];
	}
	out[o] = '\0';
	return 0;
}

int gpg_wkd_hash(const char *local, size_t len, char out[33])
{
	char lower[WKD_LOCAL_MAX + 1];
	unsigned char digest[SHA_DIGEST_LENGTH];

	if (len == 0 || len > WKD_LOCAL_MAX)
		return -1;
	for (size_t i = 0; i < len; i++) {
		char c = local[i];

		lower[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
	}
	SHA1((const unsigned char *)lower, len, digest);
	return gpg_zbase32(digest, sizeof(digest), out, 33);
}

/* A domain we may put in a path or URL: letters, digits, '-', '.', no "..". */
bool gpg_wkd_domain_valid(const char *domain, size_t len)
{
	if (len == 0 || len > WKD_DOMAIN_MAX || domain[0] == '.' || domain[0] == '-')
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = domain[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '.'))
			return false;
		if (c == '.' && i + 1 < len && domain[i + 1] == '.')
			return false;
	}
	return true;
}

int gpg_wkd_path(const char *data_dir, const char *domain, size_t domain_len, const char *hash,
		 char *out, size_t outlen)
{
	char d[WKD_DOMAIN_MAX + 1];

	if (!gpg_wkd_domain_valid(domain, domain_len))
		return -1;
	for (size_t i = 0; i < domain_len; i++) {
		char c = domain[i];

		d[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
	}
	d[domain_len] = '\0';
	if (hash != NULL) {
		if (strlen(hash) != 32 || strspn(hash, zb32_alphabet) != 32)
			return -1;
		if ((size_t)snprintf(out, outlen, "%s/gnupg/wkd/%s/hu/%s", data_dir, d, hash) >=
		    outlen)
			return -1;
	} else if ((size_t)snprintf(out, outlen, "%s/gnupg/wkd/%s", data_dir, d) >= outlen) {
		return -1;
	}
	return 0;
}

static int split_address(const char *address, const char **at)
{
	*at = strrchr(address, '@');
	if (*at == NULL || *at == address || (*at)[1] == '\0')
		return -1;
	return 0;
}

static int mkdirs(const char *path)
{
	char buf[CRYPTO_PATH_MAX];
	size_t len = strlen(path);

	if (len >= sizeof(buf))
		return -1;
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(buf, 0755) != 0 && errno != EEXIST)
		return -1;
	return 0;
}

int gpg_wkd_publish(const struct config *cfg, struct gpg_user *u, char *err, size_t errlen)
{
	const char *address = gpg_user_address(u), *at;
	char hash[33], path[CRYPTO_PATH_MAX], dir[CRYPTO_PATH_MAX];
	char *key = NULL;
	size_t key_len = 0;
	int found;

	if (split_address(address, &at) != 0 ||
	    gpg_wkd_hash(address, (size_t)(at - address), hash) != 0 ||
	    gpg_wkd_path(cfg->server.data_dir, at + 1, strlen(at + 1), hash, path, sizeof(path)) !=
		0) {
		gpg_set_err(err, errlen, _("cannot publish a WKD key for \"%s\""), address);
		return -1;
	}
	found = gpg_user_export_own(u, false, &key, &key_len, err, errlen);
	if (found < 0)
		return -1;
	if (found == 0) {
		if (unlink(path) != 0 && errno != ENOENT) {
			gpg_set_err(err, errlen, _("cannot remove %s: %s"), path, strerror(errno));
			return -1;
		}
		return 0;
	}
	snprintf(dir, sizeof(dir), "%s", path);
	*strrchr(dir, '/') = '\0';
	if (mkdirs(dir) != 0 || crypto_file_write_atomic(path, key, key_len, 0644, 0) != 0) {
		gpg_set_err(err, errlen, _("cannot write %s: %s"), path, strerror(errno));
		free(key);
		return -1;
	}
	free(key);
	/* The policy file tells WKD clients this domain takes part. */
	snprintf(path, sizeof(path), "%s", dir);
	*strrchr(path, '/') = '\0';
	strncat(path, "/policy", sizeof(path) - strlen(path) - 1);
	if (access(path, F_OK) != 0 && crypto_file_write_atomic(path, "", 0, 0644, 0) != 0) {
		gpg_set_err(err, errlen, _("cannot write %s: %s"), path, strerror(errno));
		return -1;
	}
	return 1;
}

struct fetch_buf {
	unsigned char *data;
	size_t len;
	bool too_big;
};

static size_t fetch_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct fetch_buf *b = userdata;
	size_t n = size * nmemb;
	unsigned char *grown;

	if (b->len + n > WKD_FETCH_MAX) {
		b->too_big = true;
		return 0;
	}
	grown = realloc(b->data, b->len + n + 1);
	if (grown == NULL)
		return 0;
	b->data = grown;
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	return n;
}

/* GETs URL: 1 with a body, 0 for 404 / no such host, -1 error. */
static int wkd_get(const struct gpg_wkd_settings *s, const char *url, struct fetch_buf *b,
		   char *err, size_t errlen)
{
	CURL *curl = curl_easy_init();
	CURLcode cc;
	long status = 0;

	if (curl == NULL) {
		gpg_set_err(err, errlen, _("cannot start an HTTP request"));
		return -1;
	}
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "https");
	curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 3L);
	curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
	if (s->ca_file[0] != '\0')
		curl_easy_setopt(curl, CURLOPT_CAINFO, s->ca_file);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, (long)s->timeout);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, (long)s->timeout);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, fetch_write);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, b);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "Postern");
	cc = curl_easy_perform(curl);
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(curl);
	if (cc == CURLE_COULDNT_RESOLVE_HOST || cc == CURLE_COULDNT_CONNECT)
		return 0;
	if (b->too_big) {
		gpg_set_err(err, errlen, _("WKD answer from %s is larger than %d bytes"), url,
			    WKD_FETCH_MAX);
		return -1;
	}
	if (cc != CURLE_OK) {
		gpg_set_err(err, errlen, _("WKD request %s failed: %s"), url,
			    curl_easy_strerror(cc));
		return -1;
	}
	if (status == 404)
		return 0;
	if (status != 200) {
		gpg_set_err(err, errlen, _("WKD request %s answered HTTP %ld"), url, status);
		return -1;
	}
	return b->len > 0;
}

/* Every key in DATA must carry ADDRESS; returns the number of keys or -1. */
static int keys_carry_address(gpgme_ctx_t ctx, const unsigned char *data, size_t len,
			      const char *address, char *err, size_t errlen)
{
	gpgme_data_t d;
	gpgme_key_t key;
	gpgme_error_t e;
	int n = 0, bad = 0;

	if (gpgme_data_new_from_mem(&d, (const char *)data, len, 0) != 0)
		return -1;
	e = gpgme_op_keylist_from_data_start(ctx, d, 0);
	while (e == 0 && (e = gpgme_op_keylist_next(ctx, &key)) == 0) {
		bool has = false;

		for (gpgme_user_id_t uid = key->uids; uid; uid = uid->next)
			if (uid->email && strcasecmp(uid->email, address) == 0)
				has = true;
		if (has)
			n++;
		else
			bad++;
		gpgme_key_unref(key);
	}
	gpgme_op_keylist_end(ctx);
	gpgme_data_release(d);
	if (gpg_err_code(e) != GPG_ERR_EOF || n == 0 || bad > 0) {
		gpg_set_err(err, errlen,
			    _("the key published by WKD for %s is invalid or is not for that "
			      "address"),
			    address);
		return -1;
	}
	return n;
}

int gpg_user_wkd_fetch(struct gpg_user *u, const char *address, char *err, size_t errlen)
{
	const struct gpg_wkd_settings *s = gpg_user_wkd_settings(u);
	gpgme_ctx_t ctx = gpg_user_ctx(u, GPGME_PROTOCOL_OpenPGP);
	const char *at;
	char hash[33], domain[WKD_DOMAIN_MAX + 1], url[WKD_URL_MAX];
	char *local_esc = NULL;
	struct fetch_buf b = {0};
	size_t dlen;
	int rc = -1, got;

	if (!s->lookup)
		return 0;
	if (ctx == NULL) {
		gpg_set_err(err, errlen, _("cannot start GPGME for %s"), gpg_user_address(u));
		return -1;
	}
	if (split_address(address, &at) != 0 ||
	    gpg_wkd_hash(address, (size_t)(at - address), hash) != 0) {
		gpg_set_err(err, errlen, _("invalid address \"%s\""), address);
		return -1;
	}
	dlen = strlen(at + 1);
	if (!gpg_wkd_domain_valid(at + 1, dlen)) {
		gpg_set_err(err, errlen, _("invalid address \"%s\""), address);
		return -1;
	}
	for (size_t i = 0; i <= dlen; i++) {
		char c = at[1 + i];

		domain[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
	}
	local_esc = curl_easy_escape(NULL, address, (int)(at - address));
	if (local_esc == NULL) {
		gpg_set_err(err, errlen, _("out of memory"));
		return -1;
	}
	/* Advanced method first; the direct method when its host does not exist. */
	snprintf(url, sizeof(url), "https://openpgpkey.%s/.well-known/openpgpkey/%s/hu/%s?l=%s",
		 domain, domain, hash, local_esc);
	got = wkd_get(s, url, &b, err, errlen);
	if (got == 0 && b.len == 0) {
		snprintf(url, sizeof(url), "https://%s/.well-known/openpgpkey/hu/%s?l=%s", domain,
			 hash, local_esc);
		got = wkd_get(s, url, &b, err, errlen);
	}
	if (got <= 0) {
		rc = got;
		goto out;
	}
	if (keys_carry_address(ctx, b.data, b.len, address, err, errlen) < 0)
		goto out;
	if (gpg_user_import_public(u, GPGME_PROTOCOL_OpenPGP, b.data, b.len, NULL, err, errlen) !=
	    0)
		goto out;
	rc = 1;
out:
	curl_free(local_esc);
	free(b.data);
	return rc;
}
