/*
 * cmd_dkim.c - posternctl dkim keygen|show: the DKIM key of a local domain.
 * keygen makes an RSA 2048 key (OpenSSL) under <data_dir>/dkim, which the
 * outbound queue uses to sign mail whose From is in that domain, and prints
 * the DNS TXT record to publish; show prints the record again.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "ctl/ctl.h"
#include "queue/queue.h"
#include "store/store.h"
#include "util/i18n.h"

#define DKIM_DEFAULT_SELECTOR "postern"
#define DKIM_RSA_BITS 2048
#define DKIM_TXT_CHUNK 250 /* a TXT character-string holds at most 255 bytes */

static int usage(const char *verb);

/* Letters, digits and inner hyphens or dots (RFC 6376 3.1 selector). */
static bool selector_ok(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len > 63 || s[0] == '-' || s[0] == '.' || s[len - 1] == '-' ||
	    s[len - 1] == '.')
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-' || *p == '.'))
			return false;
	return true;
}

/* "v=DKIM1; k=rsa; p=<base64 SubjectPublicKeyInfo>" of PKEY (malloc'd), or
 * NULL after printing why. Frees PKEY. */
static char *txt_value(EVP_PKEY *pkey)
{
	unsigned char *der = NULL;
	int der_len = i2d_PUBKEY(pkey, &der);
	char *out = NULL;
	size_t prefix;

	EVP_PKEY_free(pkey);
	if (der_len > 0) {
		prefix = strlen("v=DKIM1; k=rsa; p=");
		out = malloc(prefix + 4 * ((size_t)der_len / 3 + 1) + 1);
		if (out) {
			memcpy(out, "v=DKIM1; k=rsa; p=", prefix);
			EVP_EncodeBlock((unsigned char *)out + prefix, der, der_len);
		}
		OPENSSL_free(der);
	}
	if (out == NULL)
		ctl_error(_("cannot encode the public key"));
	return out;
}

static void print_record(struct ctl *ctl, const char *domain, const char *selector, const char *txt)
{
	char name[320];

	snprintf(name, sizeof(name), "%s._domainkey.%s", selector, domain);
	if (ctl->json) {
		ctl_json_print(json_pack("{s:s,s:s,s:s,s:s}", "domain", domain, "selector",
					 selector, "name", name, "txt", txt));
		return;
	}
	printf("%s. IN TXT (", name);
	for (size_t off = 0, len = strlen(txt); off < len; off += DKIM_TXT_CHUNK)
		printf(" \"%.*s\"", DKIM_TXT_CHUNK, txt + off);
	printf(" )\n");
}

/* Checks DOMAIN is local (normalized into OUT). Returns an exit code. */
static int local_domain(struct ctl *ctl, const char *verb, const char *in, char *out, size_t outlen)
{
	struct store *st;
	char err[512];
	int rc;

	if (ctl_domain_normalize(in, out, outlen, err, sizeof(err)) != 0) {
		ctl_error("%s", err);
		return usage(verb);
	}
	if ((rc = ctl_store_open(ctl, &st)) != CTL_EXIT_OK)
		return rc;
	rc = store_domain_exists(st, out);
	if (rc == STORE_NOTFOUND) {
		ctl_error(_("no such domain: %s"), out);
		return CTL_EXIT_NOTFOUND;
	}
	if (rc != STORE_OK)
		return ctl_store_fail(ctl, rc, out);
	return CTL_EXIT_OK;
}

/* Writes the private key to PATH (0600, replaced atomically). 0 or -1. */
static int write_key(const char *path, EVP_PKEY *pkey)
{
	char tmp[CONFIG_PATH_MAX + 400];
	FILE *f;
	int fd, ok;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		unlink(tmp);
		return -1;
	}
	ok = PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL) == 1;
	if (fclose(f) != 0 || !ok || rename(tmp, path) != 0) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

static int write_selector(const char *path, const char *selector)
{
	FILE *f = fopen(path, "we");

	if (!f)
		return -1;
	fprintf(f, "%s\n", selector);
	return fclose(f) == 0 ? 0 : -1;
}

static int dkim_keygen(struct ctl *ctl, int argc, char **argv)
{
	const char *selector = DKIM_DEFAULT_SELECTOR;
	bool force = false;
	const struct ctl_option opts[] = {
	    {"--selector", &selector, NULL}, {"--force", NULL, &force}, {NULL, NULL, NULL}};
	char *pos[1], domain[STORE_DOMAIN_MAX + 1], dir[CONFIG_PATH_MAX + 8];
	char key_path[CONFIG_PATH_MAX + 300], sel_path[CONFIG_PATH_MAX + 300], *txt;
	EVP_PKEY *pkey;
	int n, rc;

	if (ctl_parse_args(ctl, argc, argv, opts, pos, 1, 1, &n) != 0)
		return usage("keygen");
	if (!selector_ok(selector)) {
		ctl_error(_("\"%s\" is not a valid selector (letters, digits, '-' and '.')"),
			  selector);
		return usage("keygen");
	}
	if ((rc = local_domain(ctl, "keygen", pos[0], domain, sizeof(domain))) != CTL_EXIT_OK)
		return rc;
	snprintf(dir, sizeof(dir), "%s/dkim", ctl->cfg.server.data_dir);
	if (queue_dkim_path(&ctl->cfg, domain, "key", key_path, sizeof(key_path)) != 0 ||
	    queue_dkim_path(&ctl->cfg, domain, "selector", sel_path, sizeof(sel_path)) != 0) {
		ctl_error(_("the data dir path is too long"));
		return CTL_EXIT_FAIL;
	}
	if (!force && access(key_path, F_OK) == 0) {
		ctl_error(_("%s already has a DKIM key (%s); --force replaces it"), domain,
			  key_path);
		return CTL_EXIT_EXISTS;
	}
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		ctl_error(_("cannot create %s: %s"), dir, strerror(errno));
		return CTL_EXIT_FAIL;
	}
	pkey = EVP_RSA_gen(DKIM_RSA_BITS);
	if (!pkey) {
		ctl_error(_("cannot generate an RSA key"));
		return CTL_EXIT_FAIL;
	}
	if (write_key(key_path, pkey) != 0 || write_selector(sel_path, selector) != 0) {
		ctl_error(_("cannot write %s: %s"), key_path, strerror(errno));
		EVP_PKEY_free(pkey);
		return CTL_EXIT_FAIL;
	}
	txt = txt_value(pkey);
	if (!txt)
		return CTL_EXIT_FAIL;
	ctl_audit(ctl, "dkim.keygen", domain);
	if (!ctl->json)
		printf(_("DKIM key for %s written to %s. Publish this record:\n"), domain,
		       key_path);
	print_record(ctl, domain, selector, txt);
	free(txt);
	return CTL_EXIT_OK;
}

static int dkim_show(struct ctl *ctl, int argc, char **argv)
{
	char *pos[1], domain[STORE_DOMAIN_MAX + 1], selector[80] = "";
	char key_path[CONFIG_PATH_MAX + 300], sel_path[CONFIG_PATH_MAX + 300], *txt;
	EVP_PKEY *pkey;
	FILE *f;
	int n, rc;

	if (ctl_parse_args(ctl, argc, argv, NULL, pos, 1, 1, &n) != 0)
		return usage("show");
	if ((rc = local_domain(ctl, "show", pos[0], domain, sizeof(domain))) != CTL_EXIT_OK)
		return rc;
	if (queue_dkim_path(&ctl->cfg, domain, "key", key_path, sizeof(key_path)) != 0 ||
	    queue_dkim_path(&ctl->cfg, domain, "selector", sel_path, sizeof(sel_path)) != 0 ||
	    !(f = fopen(key_path, "re"))) {
		ctl_error(_("%s has no DKIM key; make one with posternctl dkim keygen %s"), domain,
			  domain);
		return CTL_EXIT_NOTFOUND;
	}
	pkey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	f = fopen(sel_path, "re");
	if (f) {
		if (!fgets(selector, sizeof(selector), f))
			selector[0] = '\0';
		fclose(f);
	}
	selector[strcspn(selector, "\r\n")] = '\0';
	if (!pkey || !selector_ok(selector)) {
		EVP_PKEY_free(pkey);
		ctl_error(_("the DKIM key or selector of %s cannot be read"), domain);
		return CTL_EXIT_FAIL;
	}
	txt = txt_value(pkey);
	if (!txt)
		return CTL_EXIT_FAIL;
	print_record(ctl, domain, selector, txt);
	free(txt);
	return CTL_EXIT_OK;
}

static const struct ctl_verb verbs[] = {
    {"keygen", dkim_keygen, N_("dkim keygen DOMAIN [--selector S] [--force]"),
     N_("make the DKIM signing key of a local domain and print its DNS record")},
    {"show", dkim_show, N_("dkim show DOMAIN"), N_("print the DNS record of a domain's key")},
};

static int usage(const char *verb)
{
	return ctl_usage(verbs, sizeof(verbs) / sizeof(verbs[0]), verb);
}

int ctl_cmd_dkim(struct ctl *ctl, int argc, char **argv)
{
	return ctl_dispatch(ctl, verbs, sizeof(verbs) / sizeof(verbs[0]), argc, argv);
}
