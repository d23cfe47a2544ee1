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

#include <jansson.h>

#include "crypto/crypto.h"
#include "store/store.h"

#define AUTH_CACHE_MAX 1024 /* cached logins; each holds a guarded key; the oldest goes first */

enum auth_result {
	AUTH_OK = 0,
	AUTH_FAILED,	/* unknown user or wrong credentials: one reply for both */
	AUTH_LOCKED,	/* the account is locked; protocols reply as for AUTH_FAILED */
	AUTH_TEMPFAIL,	/* store error: try again later */
	AUTH_THROTTLED, /* too many failures: temporary refusal (protocols' temp-failure reply) */
};

struct auth_request {
	const char *address;
	const char *password; /* password, password+code, or an app password */
	size_t pwlen;
	const char *protocol;  /* "smtp", "imap", "pop3", "web", or NULL when unknown */
	const char *client_ip; /* numeric address of the client, or NULL */
	const char *client_id; /* what the client says it is (IMAP ID, user agent), or NULL */
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
 * call at startup. */
void auth_configure(const struct config *cfg);
/* Takes only the SMS gateway ([sms]) from CFG: posternd's reload, posternctl otp sms. */
void auth_configure_sms(const struct config *cfg);
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

/* ---- security notices (auth_notice.c) ---- */
enum auth_notice_kind {
	AUTH_NOTICE_NEW_IP,
	AUTH_NOTICE_OTP_ENROLLED,
	AUTH_NOTICE_OTP_REMOVED,
	AUTH_NOTICE_APP_PASSWORD,
	AUTH_NOTICE_PASSWORD_CHANGED,
};
struct auth_notice {
	enum auth_notice_kind kind;
	const char *address;   /* the user */
	const char *hostname;  /* this server, for From: and Message-ID */
	int64_t time;	       /* unix time of the event */
	const char *ip;	       /* client address, or NULL */
	const char *protocol;  /* "imap", "posternctl", ... or NULL */
	const char *client_id; /* IMAP ID / user agent, or NULL */
	const char *detail;    /* one line, e.g. the app password's name, or NULL */
};
/* Builds the notice as an RFC 5322 message (*MSG malloc'd). 0 or -1. */
int auth_notice_compose(const struct auth_notice *n, char **msg, size_t *len);
/* Delivers a composed notice into U's INBOX; 0 or -1. Registered by a program that
 * links src/deliver (auth does not call deliver itself). */
typedef int (*auth_notice_sink)(struct store *st, const struct store_user *u,
				const unsigned char *msg, size_t len);
void auth_set_notice_sink(auth_notice_sink sink);
/* Composes N and hands it to the sink; 0 when delivered or no sink is set. */
int auth_notice_send(struct store *st, const struct store_user *u, const struct auth_notice *n);
/* Records IP as used by USER_ID: 1 when it is new (and the user had logged in
 * before from elsewhere), 0 when known or first ever, -1 on a store error. */
int auth_login_ip_is_new(struct store *st, int64_t user_id, const char *ip);
/* The host name notices name (set by auth_configure from [server] hostname). */
const char *auth_hostname(void);
/* Drops cached logins of ADDRESS (password change, lock, delete) and the in-memory
 * failure counters of ADDRESS, which may also be a numeric client address
 * ("posternctl auth unblock" reaches the daemon through this). */
void auth_cache_forget(const char *address);
/* The client addresses with failed logins this process remembers, as a JSON
 * array of {address, failures, last_failure, blocked_until, retry_at} (the
 * admin socket's "blocks"); NULL when out of memory. */
json_t *auth_address_blocks(void);
void auth_cache_clear(void);
/* Number of cached logins (status output and tests). */
size_t auth_cache_count(void);
/* A new reference (user_key_dup) to the unlocked key of a live cached login of USER_ID, or
 * NULL (none, or the cache is off); the caller frees it with user_key_free. Signing at
 * submission and server-side decryption (src/deliver/pgp_policy.c) use it. */
struct user_key *auth_cache_user_key(int64_t user_id);

#endif
