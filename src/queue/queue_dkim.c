/*
 * queue_dkim.c - DKIM signatures (RFC 6376) on outgoing mail with
 * libopendkim: the domain of the From header picks the key
 * (<data_dir>/dkim/DOMAIN.key with its selector beside it, made by
 * "posternctl dkim keygen"), so the signature aligns with From for DMARC.
 * Mail from a domain without a key leaves unsigned.
 */
#include <config.h>

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <opendkim/dkim.h>

#include "mailauth/mailauth.h"
#include "queue/queue.h"

#define DKIM_KEY_MAX 16384
#define DKIM_SELECTOR_MAX 64

/* Reads a small file into BUF (NUL-terminated). Its length, or -1. */
static ssize_t read_small(const char *path, char *buf, size_t buflen)
{
	FILE *f = fopen(path, "re");
	size_t n;

	if (!f)
		return -1;
	n = fread(buf, 1, buflen - 1, f);
	if (ferror(f) || !feof(f)) {
		fclose(f);
		return -1;
	}
	fclose(f);
	buf[n] = '\0';
	return (ssize_t)n;
}

int queue_dkim_sign(const struct config *cfg, const unsigned char *msg, size_t len,
		    char **sig_header, char *err, size_t errlen)
{
	char domain[256], path[CONFIG_PATH_MAX + 300], selector[DKIM_SELECTOR_MAX + 1];
	char *key = NULL, *hdr;
	unsigned char *m = NULL, *sig = NULL;
	size_t mlen = 0, siglen = 0, o = 0;
	DKIM_LIB *lib = NULL;
	DKIM *dkim = NULL;
	DKIM_STAT st = DKIM_STAT_OK;
	ssize_t n;
	int rc = -1;

	*sig_header = NULL;
	if (mailauth_from_domain(msg, len, domain, sizeof(domain)) != 0)
		return 0;
	if (queue_dkim_path(cfg, domain, "key", path, sizeof(path)) != 0)
		return 0;
	if (access(path, F_OK) != 0)
		return 0; /* this domain does not sign */
	key = malloc(DKIM_KEY_MAX);
	if (!key || read_small(path, key, DKIM_KEY_MAX) <= 0) {
		snprintf(err, errlen, "cannot read the DKIM key %s", path);
		goto out;
	}
	if (queue_dkim_path(cfg, domain, "selector", path, sizeof(path)) != 0 ||
	    (n = read_small(path, selector, sizeof(selector))) <= 0) {
		snprintf(err, errlen, "cannot read the DKIM selector %s", path);
		goto out;
	}
	selector[strcspn(selector, "\r\n \t")] = '\0';
	if (!(m = mailauth_crlf_copy(msg, len, &mlen)) || !(lib = dkim_init(NULL, NULL))) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	dkim = dkim_sign(lib, (const unsigned char *)"postern", NULL, (dkim_sigkey_t)key,
			 (const unsigned char *)selector, (const unsigned char *)domain,
			 DKIM_CANON_RELAXED, DKIM_CANON_RELAXED, DKIM_SIGN_RSASHA256, -1, &st);
	if (!dkim) {
		snprintf(err, errlen, "DKIM: %s", dkim_getresultstr(st));
		goto out;
	}
	st = (DKIM_STAT)mailauth_dkim_feed(dkim, m, mlen);
	if (st == DKIM_STAT_OK)
		st = dkim_getsighdr_d(dkim, strlen(DKIM_SIGNHEADER ": "), &sig, &siglen);
	if (st != DKIM_STAT_OK) {
		const char *why = dkim_geterror(dkim);
		snprintf(err, errlen, "DKIM signing for %s failed: %s", domain,
			 why && why[0] ? why : dkim_getresultstr(st));
		goto out;
	}
	/* "DKIM-Signature: " + value with CRLF folds + CRLF */
	hdr = malloc(strlen(DKIM_SIGNHEADER) + 2 + 2 * siglen + 3);
	if (!hdr) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	o = (size_t)sprintf(hdr, "%s: ", DKIM_SIGNHEADER);
	for (size_t i = 0; i < siglen; i++) {
		if (sig[i] == '\r')
			continue;
		if (sig[i] == '\n')
			hdr[o++] = '\r';
		hdr[o++] = (char)sig[i];
	}
	memcpy(hdr + o, "\r\n", 3);
	*sig_header = hdr;
	rc = 0;
out:
	if (dkim)
		dkim_free(dkim);
	if (lib)
		dkim_close(lib);
	free(m);
	if (key) {
		memset(key, 0, DKIM_KEY_MAX);
		free(key);
	}
	return rc;
}
