/*
 * auth_int.h - pieces of auth.c (password check with its cache) used by
 * auth_request.c (second factors, app passwords, throttling, audit).
 */
#ifndef POSTERN_AUTH_INT_H
#define POSTERN_AUTH_INT_H

#include <stdbool.h>

#include "auth/auth.h"

/* Lower-cases ADDRESS into OUT (STORE_ADDRESS_MAX + 1 bytes); -1 when empty or too long. */
int auth_normalize_address(const char *address, char *out);
/* Spends the time of one password check, as for an existing user. */
void auth_verify_dummy(const char *password, size_t pwlen);
void auth_identity_fill(struct auth_identity *out, const struct store_user *u,
			struct user_key *key);
/* Checks PASSWORD of U (cache first when CACHEABLE, then Argon2id) and unlocks the key into
 * *KEY_OUT: AUTH_OK, AUTH_FAILED, AUTH_LOCKED (right password, locked user) or AUTH_TEMPFAIL. */
enum auth_result auth_check_password(const struct store_user *u, const char *norm,
				     const char *password, size_t pwlen, bool cacheable,
				     struct user_key **key_out);

/* The lock check and key unwrap of a verified PASSWORD: AUTH_OK, AUTH_LOCKED or AUTH_TEMPFAIL. */
enum auth_result auth_unlock_key(const struct store_user *u, const char *password, size_t pwlen,
				 struct user_key **key_out);

/* Drops the cached logins of the normalized address NORM (and nothing else). */
void auth_cache_drop(const char *norm);
/* Drops the daemon's in-memory failure counters of NAME: an account (unknown
 * addresses are counted in memory) or a numeric client address. */
void auth_throttle_forget(const char *name);

#endif
