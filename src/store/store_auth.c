/*
 * store_auth.c - account credentials that change together.
 *
 * An admin password reset without the old password or the recovery key
 * cannot reach the user's old private key, so the user gets a new key pair.
 * Password hash, public key, wrapped private key and recovery copy are
 * replaced in one UPDATE: a half-written set would leave an account whose
 * password cannot unlock its key. Mail sealed to the old key stays in the
 * store (it is not ours to delete); the protocols report it as unreadable.
 */
#include "config.h"

#include "store/store_engine.h"
#include "util/i18n.h"

static const char SQL_USER_SET_KEYS[] =
    "UPDATE users SET password_hash = ?, public_key = ?, wrapped_key = ?, recovery_key = ? "
    "WHERE id = ?";

int store_user_set_keys(struct store *st, int64_t user_id, const char *password_hash,
			const unsigned char public_key[32], const unsigned char *wrapped_key,
			size_t wrapped_key_len, const unsigned char *recovery_key,
			size_t recovery_key_len)
{
	int rc;

	if (password_hash == NULL || password_hash[0] == '\0' || public_key == NULL ||
	    wrapped_key == NULL || wrapped_key_len == 0) {
		store_set_error(st, "%s", _("new keys need a password hash and a wrapped key"));
		return STORE_ERR;
	}
	rc = store_run(st, SQL_USER_SET_KEYS, "tbbbi", password_hash, (const void *)public_key,
		       (size_t)32, (const void *)wrapped_key, wrapped_key_len,
		       (const void *)recovery_key, recovery_key_len, user_id);
	if (rc == STORE_OK && st->engine->changes(st) == 0) {
		store_set_error(st, _("no such user: #%lld"), (long long)user_id);
		rc = STORE_NOTFOUND;
	}
	return rc;
}
