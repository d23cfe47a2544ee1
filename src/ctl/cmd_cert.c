/*
 * cmd_cert.c - posternctl cert selfsigned: a self-signed certificate for
 * development, tests and first starts (crypto_selfsigned_cert), written to
 * the config's TLS files or to the files given.
 */
#include <config.h>

#include <stdio.h>
#include <string.h>

#include "crypto/crypto.h"
#include "ctl/ctl.h"
#include "util/i18n.h"

static int usage(const char *verb);

static int cert_selfsigned(struct ctl *ctl, int argc, char **argv)
{
	const char *hostname = NULL, *cert = NULL, *key = NULL;
	const struct ctl_option opts[] = {{"--hostname", &hostname, NULL},
					  {"--cert", &cert, NULL},
					  {"--key", &key, NULL},
					  {NULL, NULL, NULL}};
	char *pos[1], err[1024], domain[256];
	int n, rc;

	if (ctl_parse_args(ctl, argc, argv, opts, pos, 0, 0, &n) != 0)
		return usage("selfsigned");
	if ((cert == NULL) != (key == NULL)) {
		ctl_error(_("--cert and --key go together"));
		return usage("selfsigned");
	}
	if (hostname && strcmp(hostname, "localhost") != 0 &&
	    ctl_domain_normalize(hostname, domain, sizeof(domain), err, sizeof(err)) != 0) {
		ctl_error("%s", err);
		return usage("selfsigned");
	}
	/*
	 * With both files given the config is not needed; it is the usual case
	 * before the first start, when the config names a certificate that does
	 * not exist yet.
	 */
	if (!cert || !hostname) {
		if ((rc = ctl_config(ctl)) != CTL_EXIT_OK) {
			/* The config is refused while the files it names do not exist. */
			if (!cert)
				ctl_note(_("To create the first certificate, name the files: "
					   "posternctl cert selfsigned --hostname H --cert FILE "
					   "--key FILE"));
			return rc;
		}
		if (!cert) {
			cert = ctl->cfg.tls.cert_file;
			key = ctl->cfg.tls.key_file;
		}
		if (!hostname)
			hostname = ctl->cfg.server.hostname;
	}
	if (!*cert || !*key) {
		ctl_error(_("the config names no tls.cert_file and tls.key_file; pass --cert and "
			    "--key"));
		return CTL_EXIT_CONFIG;
	}
	if (!*hostname)
		hostname = "localhost";
	if (crypto_selfsigned_cert(hostname, cert, key, err, sizeof(err)) != 0) {
		ctl_error(_("cannot create the certificate: %s"), err);
		return CTL_EXIT_FAIL;
	}
	if (ctl->json)
		ctl_json_print(json_pack("{s:b,s:s,s:s,s:s}", "ok", 1, "hostname", hostname, "cert",
					 cert, "key", key));
	else
		printf(_("self-signed certificate for %s written to %s (key %s)\n"), hostname, cert,
		       key);
	return CTL_EXIT_OK;
}

static const struct ctl_verb verbs[] = {
    {"selfsigned", cert_selfsigned, N_("cert selfsigned [--hostname H] [--cert FILE --key FILE]"),
     N_("create a self-signed certificate")},
};

static int usage(const char *verb)
{
	return ctl_usage(verbs, sizeof(verbs) / sizeof(verbs[0]), verb);
}

int ctl_cmd_cert(struct ctl *ctl, int argc, char **argv)
{
	return ctl_dispatch(ctl, verbs, sizeof(verbs) / sizeof(verbs[0]), argc, argv);
}
