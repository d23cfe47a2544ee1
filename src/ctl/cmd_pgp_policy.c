/*
 * cmd_pgp_policy.c - posternctl pgp policy: the OpenPGP/S-MIME policy of a
 * domain or a user (docs/pgp.md, "Outbound policy"). A user's setting wins
 * over the domain's, the domain's over the default (sign never, encrypt
 * never, no server-side decryption); an unset field inherits. Without
 * options it shows the row (and, for a user, the effective policy); without
 * a name it lists every row.
 */
#include <config.h>

#include <stdio.h>
#include <string.h>

#include "ctl/ctl.h"
#include "deliver/pgp_policy.h"
#include "store/store.h"
#include "store/store_pgp.h"
#include "util/i18n.h"

static const char usage_line[] =
    N_("pgp policy [DOMAIN|USER] [--sign always|never] [--encrypt never|if-possible|required] "
       "[--decrypt-inbound yes|no] [--reset]");

static int usage(void)
{
	fprintf(stderr, _("usage: posternctl %s\n"), _(usage_line));
	return CTL_EXIT_USAGE;
}

static json_t *row_json(const struct store_pgp_policy *p)
{
	return json_pack("{s:s, s:o, s:o, s:o}", "name", p->name, "sign",
			 p->sign[0] ? json_string(p->sign) : json_null(), "encrypt",
			 p->encrypt[0] ? json_string(p->encrypt) : json_null(), "decrypt_inbound",
			 p->decrypt_inbound < 0 ? json_null() : json_boolean(p->decrypt_inbound));
}

static void row_print(const struct store_pgp_policy *p)
{
	const char *inherit = _("(inherited)");

	printf("%s: sign=%s encrypt=%s decrypt-inbound=%s\n", p->name,
	       p->sign[0] ? p->sign : inherit, p->encrypt[0] ? p->encrypt : inherit,
	       p->decrypt_inbound < 0 ? inherit
	       : p->decrypt_inbound   ? "yes"
				      : "no");
}

static const char *sign_name(enum pgp_sign_policy s)
{
	return s == PGP_SIGN_ALWAYS ? "always" : "never";
}

static const char *encrypt_name(enum pgp_encrypt_policy e)
{
	return e == PGP_ENCRYPT_REQUIRED      ? "required"
	       : e == PGP_ENCRYPT_IF_POSSIBLE ? "if-possible"
					      : "never";
}

static int list_cb(void *arg, const struct store_pgp_policy *p)
{
	json_t *arr = arg;

	if (arr)
		json_array_append_new(arr, row_json(p));
	else
		row_print(p);
	return 0;
}

static int policy_list(struct ctl *ctl, struct store *st)
{
	json_t *arr = ctl->json ? json_array() : NULL;
	int rc = store_pgp_policy_list(st, list_cb, arr);

	if (rc != STORE_OK) {
		json_decref(arr);
		return ctl_store_fail(ctl, rc, _("OpenPGP policies"));
	}
	if (arr)
		ctl_json_print(arr);
	return CTL_EXIT_OK;
}

/* The row of NAME (an empty one when it has none) and, for a user, the effective policy. */
static int policy_show(struct ctl *ctl, struct store *st, const char *name, bool is_user)
{
	struct store_pgp_policy p;
	struct pgp_effective_policy eff;
	int rc = store_pgp_policy_get(st, name, &p);

	if (rc == STORE_NOTFOUND) {
		memset(&p, 0, sizeof(p));
		snprintf(p.name, sizeof(p.name), "%s", name);
		p.decrypt_inbound = -1;
	} else if (rc != STORE_OK) {
		return ctl_store_fail(ctl, rc, name);
	}
	if (is_user && pgp_policy_effective(st, name, &eff) != 0)
		return ctl_store_fail(ctl, STORE_ERR, name);
	if (ctl->json) {
		json_t *o = row_json(&p);

		if (is_user)
			json_object_set_new(o, "effective",
					    json_pack("{s:s, s:s, s:b}", "sign",
						      sign_name(eff.sign), "encrypt",
						      encrypt_name(eff.encrypt), "decrypt_inbound",
						      eff.decrypt_inbound));
		ctl_json_print(o);
		return CTL_EXIT_OK;
	}
	row_print(&p);
	if (is_user)
		printf(_("effective: sign=%s encrypt=%s decrypt-inbound=%s\n"), sign_name(eff.sign),
		       encrypt_name(eff.encrypt), eff.decrypt_inbound ? "yes" : "no");
	return CTL_EXIT_OK;
}

static bool valid_value(const char *v, const char *const *allowed)
{
	for (; *allowed; allowed++)
		if (strcmp(v, *allowed) == 0)
			return true;
	return false;
}

int ctl_pgp_policy(struct ctl *ctl, int argc, char **argv)
{
	static const char *const signs[] = {"always", "never", NULL};
	static const char *const encrypts[] = {"never", "if-possible", "required", NULL};
	static const char *const yesno[] = {"yes", "no", NULL};
	const char *sign = NULL, *encrypt = NULL, *decrypt = NULL;
	bool reset = false, is_user;
	const struct ctl_option opts[] = {{"--sign", &sign, NULL},
					  {"--encrypt", &encrypt, NULL},
					  {"--decrypt-inbound", &decrypt, NULL},
					  {"--reset", NULL, &reset},
					  {NULL, NULL, NULL}};
	char *pos[1], name[STORE_ADDRESS_MAX + 1], err[512], detail[STORE_ADDRESS_MAX + 96];
	struct store_pgp_policy p;
	struct store *st;
	int n, rc;

	if (ctl_parse_args(ctl, argc, argv, opts, pos, 0, 1, &n) != 0)
		return usage();
	if ((sign && !valid_value(sign, signs)) || (encrypt && !valid_value(encrypt, encrypts)) ||
	    (decrypt && !valid_value(decrypt, yesno))) {
		ctl_error("%s",
			  _("--sign takes always|never, --encrypt never|if-possible|required, "
			    "--decrypt-inbound yes|no"));
		return usage();
	}
	if (reset && (sign || encrypt || decrypt)) {
		ctl_error("%s", _("--reset cannot be combined with other settings"));
		return usage();
	}
	if (n == 0) {
		if (sign || encrypt || decrypt || reset)
			return usage();
		if ((rc = ctl_store_open(ctl, &st)) != CTL_EXIT_OK)
			return rc;
		return policy_list(ctl, st);
	}
	is_user = strchr(pos[0], '@') != NULL;
	if ((is_user ? ctl_address_normalize(pos[0], name, sizeof(name), err, sizeof(err))
		     : ctl_domain_normalize(pos[0], name, sizeof(name), err, sizeof(err))) != 0) {
		ctl_error("%s", err);
		return usage();
	}
	if ((rc = ctl_store_open(ctl, &st)) != CTL_EXIT_OK)
		return rc;
	if (is_user) {
		struct store_user u;

		memset(&u, 0, sizeof(u));
		rc = store_user_get(st, name, &u);
		store_user_clear(&u);
	} else {
		rc = store_domain_exists(st, name);
	}
	if (rc == STORE_NOTFOUND) {
		ctl_error(is_user ? _("no such user: %s") : _("no such domain: %s"), name);
		return CTL_EXIT_NOTFOUND;
	}
	if (rc != STORE_OK)
		return ctl_store_fail(ctl, rc, name);

	if (reset) {
		rc = store_pgp_policy_del(st, name);
		if (rc != STORE_OK && rc != STORE_NOTFOUND)
			return ctl_store_fail(ctl, rc, name);
		ctl_audit(ctl, "pgp.policy.reset", name);
		return policy_show(ctl, st, name, is_user);
	}
	if (!sign && !encrypt && !decrypt)
		return policy_show(ctl, st, name, is_user);

	rc = store_pgp_policy_get(st, name, &p);
	if (rc == STORE_NOTFOUND) {
		memset(&p, 0, sizeof(p));
		p.decrypt_inbound = -1;
	} else if (rc != STORE_OK) {
		return ctl_store_fail(ctl, rc, name);
	}
	snprintf(p.name, sizeof(p.name), "%s", name);
	if (sign)
		snprintf(p.sign, sizeof(p.sign), "%s", sign);
	if (encrypt)
		snprintf(p.encrypt, sizeof(p.encrypt), "%s", encrypt);
	if (decrypt)
		p.decrypt_inbound = strcmp(decrypt, "yes") == 0;
	rc = store_pgp_policy_set(st, &p);
	if (rc != STORE_OK)
		return ctl_store_fail(ctl, rc, name);
	snprintf(detail, sizeof(detail), "%s sign=%s encrypt=%s decrypt-inbound=%d", name,
		 p.sign[0] ? p.sign : "-", p.encrypt[0] ? p.encrypt : "-", p.decrypt_inbound);
	ctl_audit(ctl, "pgp.policy", detail);
	return policy_show(ctl, st, name, is_user);
}
