/*
 * auth.h - the one login path for every protocol (SMTP AUTH, IMAP LOGIN and
 * AUTHENTICATE, POP3 USER/PASS and AUTH, the web app later).
 *
 * auth_login() checks the Argon2id hash, refuses locked users and unlocks the
 * user's private key. A successful login is cached (keyed BLAKE2b of address
 * and password under a per-process random key, never the password) with the
 * unlocked key for cache_ttl seconds, so clients that reconnect often do not
 * pay Argon2id each time. Password change, lock and delete drop the entry.
 * OTP and app passwords extend this function, not its callers.
 *
 * auth_login() is slow (Argon2id): call it from the job pool, not the loop.
 * It is thread-safe.
 */
#ifndef POSTERN_AUTH_H
#define POSTERN_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/crypto.h"
#include "store/store.h"

#define AUTH_CACHE_MAX 1024 /* cached logins; each holds a guarded key; the oldest goes first */

enum auth_result {
	AUTH_OK = 0,
	AUTH_FAILED,   /* unknown user or wrong credentials: one reply for both */
	AUTH_LOCKED,   /* the account is locked; protocols reply as for AUTH_FAILED */
	AUTH_TEMPFAIL, /* store error: try again later */
};

struct auth_identity {
	int64_t user_id;
	char address[STORE_ADDRESS_MAX + 1];
	struct user_key *key; /* unlocked; owned by the identity */
};

/* Sets the cache lifetime (0 turns the cache off and empties it) and prepares
 * the dummy hash for unknown users at the current Argon2id cost (call after
 * crypto_set_argon2_cost). Call at startup and on reload. */
void auth_setup(unsigned cache_ttl_seconds);
unsigned auth_cache_ttl(void);
enum auth_result auth_login(struct store *st, const char *address, const char *password,
			    size_t pwlen, struct auth_identity *out);
void auth_identity_clear(struct auth_identity *id);
/* Drops cached logins of ADDRESS (password change, lock, delete). */
void auth_cache_forget(const char *address);
void auth_cache_clear(void);
/* Number of cached logins (status output and tests). */
size_t auth_cache_count(void);

#endif
