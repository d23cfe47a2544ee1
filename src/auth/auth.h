/*
 * auth.h - the one login path for every protocol (SMTP AUTH, IMAP LOGIN and
 * AUTHENTICATE, POP3 USER/PASS and AUTH, the web app later).
 *
 * auth_login() checks the Argon2id hash, refuses locked users and unlocks the
 * user's private key. A successful login is cached (keyed BLAKE2b of address
 * and password under a per-process random key, never the password) with the
 * unlocked key for cache_ttl seconds, so clients that reconnect often do not
 * pay Argon2id each time. Password change, lock and delete drop the entry.
 * OTP and app passwords extend this function, not its callers:
 * auth_login_request() is the full path (client address and protocol known),
 * auth_login() calls it without them. For a user enrolled in TOTP the
 * password is followed immediately by the 6-digit code (or a recovery code);
 * an app password (otp/) works instead, for its protocols. Failures are
 * throttled per account and per client address (AUTH_THROTTLED) and every
 * attempt is written to the audit log (event "auth.login").
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
	AUTH_THROTTLED, /* too many failures: temporary refusal (protocols' temp-failure reply) */
};

struct auth_request {
	const char *address;
	const char *password; /* password, password+code, or an app password */
	size_t pwlen;
	const char *protocol;  /* "smtp", "imap", "pop3", "web", or NULL when unknown */
	const char *client_ip; /* numeric address of the client, or NULL */
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
/* The full login path; OUT is filled on AUTH_OK. Same threading rules as auth_login. */
enum auth_result auth_login_request(struct store *st, const struct auth_request *req,
				    struct auth_identity *out);
/* Takes the server key file ([queue] key_file) and the SMS gateway ([sms]) from CFG;
 * call at startup and reload. */
void auth_configure(const struct config *cfg);
/* The server key file (config [queue] key_file) that seals TOTP secrets; call at
 * startup. Without it, logins of TOTP users fail with AUTH_TEMPFAIL. */
void auth_set_server_key_file(const char *path);
/*
 * Password policy for new passwords (user add, passwd): at least
 * AUTH_PASSWORD_MIN_LENGTH characters and not found by cracklib's dictionary
 * check. Returns 1 when acceptable, else 0 with a translated reason in WHY.
 */
#define AUTH_PASSWORD_MIN_LENGTH 10
int auth_password_acceptable(const char *pw, char *why, size_t len);
void auth_identity_clear(struct auth_identity *id);
/* Drops cached logins of ADDRESS (password change, lock, delete). */
void auth_cache_forget(const char *address);
void auth_cache_clear(void);
/* Number of cached logins (status output and tests). */
size_t auth_cache_count(void);

#endif
