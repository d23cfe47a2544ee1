/*
 * cmd_recovery.c - posternctl recovery init: the organization recovery key.
 *
 * Its public half goes into the config (auth.recovery_public_key); every
 * user's private key is then also sealed to it, so "posternctl user recover"
 * can restore access after a forgotten password without losing mail. The
 * private half is written to a file the admin keeps offline.
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "crypto/crypto.h"
#include "ctl/ctl.h"
#include "util/i18n.h"

#define RECOVERY_PUBLIC_LABEL "postern-recovery-public"
#define RECOVERY_PRIVATE_LABEL "postern-recovery-private"

static int usage(const char *verb);

int ctl_recovery_public_key(struct ctl *ctl, unsigned char pub[32])
{
	const char *v = ctl->cfg.auth.recovery_public_key;
	size_t len = 0;

	if (v[0] == '\0')
		return 0;
	if (sodium_base642bin(pub, 32, v, strlen(v), NULL, &len, NULL,
			      sodium_base64_VARIANT_ORIGINAL) == 0 &&
	    len == 32)
		return 1;
	if (crypto_key_file_read(v, RECOVERY_PUBLIC_LABEL, pub, 32) == 0)
		return 1;
	ctl_error(_("auth.recovery_public_key is neither a base64 key nor a readable key file: %s"),
		  v);
	return -1;
}

/* Reads the private recovery key from PATH and derives its public half. */
int ctl_recovery_private_key(const char *path, unsigned char pub[32], unsigned char priv[32])
{
	if (crypto_key_file_read(path, RECOVERY_PRIVATE_LABEL, priv, 32) != 0) {
		ctl_error(_("%s: not a recovery private key file (%s)"), path, strerror(errno));
		return -1;
	}
	if (crypto_scalarmult_base(pub, priv) != 0) {
		sodium_memzero(priv, 32);
		ctl_error(_("%s: invalid recovery key"), path);
		return -1;
	}
	return 0;
}

static int recovery_init(struct ctl *ctl, int argc, char **argv)
{
	const char *out = NULL;
	const struct ctl_option opts[] = {{"--out", &out, NULL}, {NULL, NULL, NULL}};
	char *pos[1], pubpath[CONFIG_PATH_MAX], b64[64];
	unsigned char pub[32], priv[32];
	int n;

	if (ctl_parse_args(ctl, argc, argv, opts, pos, 0, 0, &n) != 0 || !out || !*out)
		return usage("init");
	if (snprintf(pubpath, sizeof(pubpath), "%s.pub", out) >= (int)sizeof(pubpath)) {
		ctl_error(_("%s: path too long"), out);
		return CTL_EXIT_USAGE;
	}
	if (crypto_recovery_keygen(pub, priv) != 0) {
		ctl_error(_("cannot generate a key pair"));
		return CTL_EXIT_FAIL;
	}
	if (crypto_key_file_create(out, RECOVERY_PRIVATE_LABEL, priv, sizeof(priv)) != 0) {
		int e = errno;

		sodium_memzero(priv, sizeof(priv));
		ctl_error(_("cannot create %s: %s"), out, strerror(e));
		return e == EEXIST ? CTL_EXIT_EXISTS : CTL_EXIT_FAIL;
	}
	sodium_memzero(priv, sizeof(priv));
	if (crypto_key_file_write(pubpath, RECOVERY_PUBLIC_LABEL, pub, sizeof(pub)) != 0) {
		ctl_error(_("cannot write %s: %s"), pubpath, strerror(errno));
		return CTL_EXIT_FAIL;
	}
	ctl_base64(pub, sizeof(pub), b64, sizeof(b64));
	if (ctl->json) {
		ctl_json_print(json_pack("{s:b,s:s,s:s,s:s}", "ok", 1, "private_key_file", out,
					 "public_key_file", pubpath, "recovery_public_key", b64));
		return CTL_EXIT_OK;
	}
	printf(
	    _("Recovery private key written to %s (mode 0600).\n"
	      "Keep it OFFLINE (a USB stick in a safe, a password manager): whoever holds it can\n"
	      "read every user's mail. Remove it from this server once it is stored safely.\n\n"
	      "Put this line in the [auth] section of the config (also saved in %s):\n\n"),
	    out, pubpath);
	printf("recovery_public_key = %s\n\n", b64);
	printf(_("Users created or given a new password afterwards get a recovery copy of their\n"
		 "key; \"posternctl user recover ADDRESS --recovery-key %s\" uses it.\n"),
	       out);
	return CTL_EXIT_OK;
}

static const struct ctl_verb verbs[] = {
    {"init", recovery_init, N_("recovery init --out FILE"),
     N_("create the organization recovery key pair")},
};

static int usage(const char *verb)
{
	return ctl_usage(verbs, sizeof(verbs) / sizeof(verbs[0]), verb);
}

int ctl_cmd_recovery(struct ctl *ctl, int argc, char **argv)
{
	return ctl_dispatch(ctl, verbs, sizeof(verbs) / sizeof(verbs[0]), argc, argv);
}
