/*
 * store_pgp.c - the pgp_policies table (see store_pgp.h): one row per domain
 * or user that deviates from the default OpenPGP/S-MIME policy.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "store/store_engine.h"
#include "store/store_pgp.h"
#include "util/i18n.h"

static const char SQL_POLICY_GET[] =
    "SELECT name, sign, encrypt, decrypt_inbound FROM pgp_policies WHERE name = ?";
static const char SQL_POLICY_DEL[] = "DELETE FROM pgp_policies WHERE name = ?";
static const char SQL_POLICY_ADD[] =
    "INSERT INTO pgp_policies (name, sign, encrypt, decrypt_inbound) VALUES (?, ?, ?, ?)";
static const char SQL_POLICY_ADD_NULL_DECRYPT[] =
    "INSERT INTO pgp_policies (name, sign, encrypt, decrypt_inbound) VALUES (?, ?, ?, NULL)";
static const char SQL_POLICY_LIST[] =
    "SELECT name, sign, encrypt, decrypt_inbound FROM pgp_policies ORDER BY name";

/* A domain or an address, lower-cased into OUT (STORE_ADDRESS_MAX + 1 bytes). */
static int normalize_name(struct store *st, const char *name, char *out)
{
	size_t n = strlen(name);

	if (strchr(name, '@'))
		return store_normalize_address(st, name, out);
	if (n == 0 || n > STORE_DOMAIN_MAX || !store_valid_utf8(name)) {
		store_set_error(st, _("not a valid domain: %.64s"), name);
		return STORE_ERR;
	}
	for (size_t i = 0; i <= n; i++)
		out[i] = (name[i] >= 'A' && name[i] <= 'Z') ? (char)(name[i] + 32) : name[i];
	return STORE_OK;
}

static void read_row(struct store *st, struct store_stmt *s, struct store_pgp_policy *out)
{
	memset(out, 0, sizeof(*out));
	store_col_text(st, s, 0, out->name, sizeof(out->name));
	store_col_text(st, s, 1, out->sign, sizeof(out->sign));
	store_col_text(st, s, 2, out->encrypt, sizeof(out->encrypt));
	out->decrypt_inbound =
	    st->engine->column_null(s, 3) ? -1 : (st->engine->column_int64(s, 3) != 0);
}

int store_pgp_policy_get(struct store *st, const char *name, struct store_pgp_policy *out)
{
	char n[STORE_ADDRESS_MAX + 1];
	struct store_stmt *s;
	int rc;

	if (normalize_name(st, name, n) != STORE_OK)
		return STORE_NOTFOUND;
	s = store_query(st, SQL_POLICY_GET, "t", n);
	if (s == NULL)
		return STORE_ERR;
	rc = store_next(st, s);
	if (rc == STORE_OK) {
		read_row(st, s, out);
		store_done(st, s);
	}
	return rc;
}

static bool one_of(const char *v, const char *const *allowed)
{
	if (v[0] == '\0')
		return true;
	for (; *allowed; allowed++)
		if (strcmp(v, *allowed) == 0)
			return true;
	return false;
}

int store_pgp_policy_set(struct store *st, const struct store_pgp_policy *p)
{
	static const char *const signs[] = {"always", "never", NULL};
	static const char *const encrypts[] = {"never", "if-possible", "required", NULL};
	char n[STORE_ADDRESS_MAX + 1];
	int rc;

	if (normalize_name(st, p->name, n) != STORE_OK)
		return STORE_ERR;
	if (!one_of(p->sign, signs) || !one_of(p->encrypt, encrypts) || p->decrypt_inbound > 1) {
		store_set_error(st, "%s", _("invalid OpenPGP policy value"));
		return STORE_ERR;
	}
	if (store_begin(st) != STORE_OK)
		return STORE_ERR;
	rc = store_run(st, SQL_POLICY_DEL, "t", n);
	if (rc == STORE_OK && p->decrypt_inbound >= 0)
		rc = store_run(st, SQL_POLICY_ADD, "ttti", n, p->sign[0] ? p->sign : NULL,
			       p->encrypt[0] ? p->encrypt : NULL, (int64_t)p->decrypt_inbound);
	else if (rc == STORE_OK)
		rc = store_run(st, SQL_POLICY_ADD_NULL_DECRYPT, "ttt", n,
			       p->sign[0] ? p->sign : NULL, p->encrypt[0] ? p->encrypt : NULL);
	return store_end(st, rc);
}

int store_pgp_policy_del(struct store *st, const char *name)
{
	char n[STORE_ADDRESS_MAX + 1];
	int rc;

	if (normalize_name(st, name, n) != STORE_OK)
		return STORE_NOTFOUND;
	rc = store_run(st, SQL_POLICY_DEL, "t", n);
	if (rc == STORE_OK && st->engine->changes(st) == 0)
		rc = STORE_NOTFOUND;
	return rc;
}

int store_pgp_policy_list(struct store *st, store_pgp_policy_cb cb, void *arg)
{
	struct store_stmt *s = store_query(st, SQL_POLICY_LIST, "");
	struct store_pgp_policy p;
	int rc;

	if (s == NULL)
		return STORE_ERR;
	while ((rc = store_next(st, s)) == STORE_OK) {
		read_row(st, s, &p);
		if (cb(arg, &p) != 0) {
			store_done(st, s);
			return STORE_OK;
		}
	}
	return rc == STORE_NOTFOUND ? STORE_OK : rc;
}
