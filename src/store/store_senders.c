/*
 * store_senders.c - sender grants: addresses an authenticated user may use
 * as MAIL FROM besides their own address and aliases, given by the admin
 * (posternctl sender). A grant is one address or "@domain" for every
 * address of a domain. Stored lower-cased, like users and aliases, so the
 * check is an exact comparison.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "store/store_engine.h"
#include "util/i18n.h"

static const char SQL_GRANT_ADD[] =
    "INSERT INTO sender_grants (user_id, address, created) VALUES (?, ?, ?)";
static const char SQL_GRANT_DEL[] = "DELETE FROM sender_grants WHERE user_id = ? AND address = ?";
static const char SQL_GRANT_LIST[] =
    "SELECT address, created FROM sender_grants WHERE user_id = ? ORDER BY address";
static const char SQL_GRANT_MATCH[] =
    "SELECT g.id FROM sender_grants g JOIN users u ON u.id = g.user_id "
    "WHERE u.address = ? AND (g.address = ? OR g.address = ?)";

/* "local@domain" or "@domain", lower-cased into OUT (STORE_ADDRESS_MAX + 1). */
static int normalize_grant(struct store *st, const char *address, char *out)
{
	size_t n = strlen(address);

	if (address[0] == '@') {
		if (n < 2 || n > STORE_DOMAIN_MAX + 1 || strchr(address + 1, '@') != NULL ||
		    !store_valid_utf8(address)) {
			store_set_error(st, _("not a valid domain: %.64s"), address + 1);
			return STORE_ERR;
		}
		for (size_t i = 0; i <= n; i++)
			out[i] = (address[i] >= 'A' && address[i] <= 'Z') ? (char)(address[i] + 32)
									  : address[i];
		return STORE_OK;
	}
	return store_normalize_address(st, address, out);
}

int store_sender_grant(struct store *st, int64_t user_id, const char *address)
{
	char a[STORE_ADDRESS_MAX + 1];
	int rc;

	if (normalize_grant(st, address, a) != STORE_OK)
		return STORE_ERR;
	rc = store_run(st, SQL_GRANT_ADD, "iti", user_id, a, (int64_t)time(NULL));
	if (rc == STORE_EXISTS)
		store_set_error(st, _("%s is already granted"), a);
	return rc;
}

int store_sender_revoke(struct store *st, int64_t user_id, const char *address)
{
	char a[STORE_ADDRESS_MAX + 1];
	int rc;

	if (normalize_grant(st, address, a) != STORE_OK)
		return STORE_ERR;
	rc = store_run(st, SQL_GRANT_DEL, "it", user_id, a);
	if (rc == STORE_OK && st->engine->changes(st) == 0) {
		store_set_error(st, _("no such sender grant: %s"), a);
		rc = STORE_NOTFOUND;
	}
	return rc;
}

int store_sender_list(struct store *st, int64_t user_id, store_sender_cb cb, void *arg)
{
	struct store_stmt *s = store_query(st, SQL_GRANT_LIST, "i", user_id);
	int rc;

	if (s == NULL)
		return STORE_ERR;
	while ((rc = store_next(st, s)) == STORE_OK) {
		if (cb(arg, st->engine->column_text(s, 0), st->engine->column_int64(s, 1)) != 0) {
			store_done(st, s);
			return STORE_OK;
		}
	}
	return rc == STORE_NOTFOUND ? STORE_OK : rc;
}

int store_sender_granted(struct store *st, const char *user, const char *address)
{
	char a[STORE_ADDRESS_MAX + 1];
	int64_t id;

	if (store_normalize_address(st, address, a) != STORE_OK)
		return STORE_NOTFOUND;
	return store_query_int64(st, &id, SQL_GRANT_MATCH, "ttt", user, a, strrchr(a, '@'));
}
