/*
 * otp.h - the second factors and login guards below src/auth: TOTP (RFC 6238,
 * liboath), single-use recovery codes, app passwords and failure throttling.
 *
 * Per-user state lives in store_user_data as JSON blobs: kind "otp" (the TOTP
 * secret sealed to the server key, the last accepted time step, recovery code
 * hashes), "app_passwords" (Argon2id hashes and a copy of the private key
 * wrapped by each app password) and "login_throttle" (failure counters). No
 * secret is stored in clear: the TOTP secret must be readable before the
 * user's own key is unlocked, so it is sealed to the server's queue key.
 *
 * The throttle logic is pure (state + policy + the current time in, decision
 * out) so the timing rules are unit-tested with an injected clock; the daemon
 * keeps per-IP state in a thread-safe in-memory table.
 */
#ifndef POSTERN_OTP_H
#define POSTERN_OTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/crypto.h"
#include "store/store.h"

/* ---- TOTP (totp.c) ---- */
#define OTP_DIGITS 6
#define OTP_STEP_SECONDS 30
#define OTP_WINDOW 1	    /* steps accepted either side of the current one */
#define OTP_SECRET_BYTES 20 /* 160 bits, as RFC 4226 recommends */
#define OTP_SECRET_B32_MAX 64
#define OTP_URI_MAX 1024

/* The code of time step STEP into OUT. 0 or -1. */
int totp_code_at_step(const unsigned char *secret, size_t len, int64_t step,
		      char out[OTP_DIGITS + 1]);
/* The step that contains unix time NOW. */
int64_t totp_step(int64_t now);
/*
 * Checks CODE (exactly OTP_DIGITS digits) against the steps around NOW.
 * Returns the matching step when it is later than LAST_STEP (a code is never
 * accepted twice), else -1. Compares in constant time.
 */
int64_t totp_verify(const unsigned char *secret, size_t len, const char *code, int64_t now,
		    int64_t last_step);
/* Base32 of the secret (no padding) into OUT. 0 or -1. */
int totp_secret_base32(const unsigned char *secret, size_t len, char *out, size_t outlen);
/* otpauth://totp/ISSUER:ACCOUNT?secret=...&issuer=...&algorithm=SHA1&digits=6&period=30 */
int totp_uri(const char *issuer, const char *account, const char *secret_b32, char *out,
	     size_t outlen);
/* True when S is exactly OTP_DIGITS ASCII digits (LEN bytes). */
bool totp_code_shape(const char *s, size_t len);

/* ---- OTP state (otp_state.c) ---- */
#define OTP_STATE_KIND "otp"
#define OTP_RECOVERY_CODES 10
#define OTP_RECOVERY_CODE_LEN 19 /* "abcd-efgh-jkmn-pqrs": 16 symbols of 32, 80 bits */

struct otp_recovery_hash {
	unsigned char salt[16];
	unsigned char hash[32]; /* BLAKE2b-256 of salt || code */
	bool used;
};

#define SMS_CODE_TTL 300    /* seconds an SMS code stays valid */
#define SMS_MIN_INTERVAL 60 /* seconds between two SMS to one user */
#define SMS_MAX_PER_HOUR 5  /* SMS to one user per hour */
#define SMS_PHONE_DIGITS_MIN 6
#define SMS_PHONE_DIGITS_MAX 15 /* E.164 */

struct otp_state {
	bool enabled;
	unsigned char *sealed_secret; /* crypto_seal of the TOTP secret to the server key
					 (malloc'd); NULL for an SMS-only user */
	size_t sealed_len;
	int64_t last_step; /* last accepted TOTP step; codes of this step or earlier are refused */
	int64_t enrolled;  /* unix time */
	struct otp_recovery_hash recovery[OTP_RECOVERY_CODES];
	size_t n_recovery;
	char sms_phone[SMS_PHONE_DIGITS_MAX + 2]; /* "+<digits>", empty: no SMS codes */
	unsigned char sms_salt[16];
	unsigned char sms_hash[32];	    /* BLAKE2b-256 of salt || the pending code */
	int64_t sms_expires;		    /* 0: no code pending */
	int64_t sms_sent[SMS_MAX_PER_HOUR]; /* recent send times, for the rate limit */
};

/* STORE_OK (state filled), STORE_NOTFOUND (never enrolled: *OUT disabled) or STORE_ERR. */
int otp_state_load(struct store *st, int64_t user_id, struct otp_state *out);
int otp_state_save(struct store *st, int64_t user_id, const struct otp_state *s);
void otp_state_clear(struct otp_state *s);
/* Seals SECRET to the server key's public half into S (replacing any). 0 or -1. */
int otp_state_set_secret(struct otp_state *s, const struct user_key *server_key,
			 const unsigned char *secret, size_t len);
/* Opens the secret with the server key into OUT (OTP_SECRET_BYTES). 0 or -1. */
int otp_state_secret(const struct otp_state *s, const struct user_key *server_key,
		     unsigned char out[OTP_SECRET_BYTES]);

/* ---- recovery codes (recovery_codes.c) ---- */
/* Makes OTP_RECOVERY_CODES new codes into CODES and their hashes into S. 0 or -1. */
int recovery_codes_generate(struct otp_state *s,
			    char codes[OTP_RECOVERY_CODES][OTP_RECOVERY_CODE_LEN + 1]);
/* True when S (LEN bytes) has the shape of a recovery code (case-insensitive). */
bool recovery_code_shape(const char *s, size_t len);
/* Marks the unused code equal to CODE as used. 0 when one matched, else -1. */
int recovery_code_consume(struct otp_state *s, const char *code, size_t len);
size_t recovery_codes_left(const struct otp_state *s);

/* ---- SMS codes (sms.c) ---- */
#define SMS_URL_MAX 2048
#define SMS_BODY_MAX 4096
struct sms_gateway {
	char url[SMS_URL_MAX]; /* may hold {phone} and {code} (percent-encoded there) */
	char method[8];	       /* POST, PUT or GET */
	char headers[2048];    /* "Name: value" pairs separated by "|" */
	char body[2048];       /* template with {phone} and {code} */
	char content_type[128];
	unsigned timeout; /* seconds */
	char ca_file[1024];
};
/* Sets the gateway (empty URL: SMS off). Thread-safe; call at startup/reload. */
void sms_configure(const struct sms_gateway *g);
bool sms_enabled(void);
/* "+" and 6 to 15 digits. */
bool sms_phone_valid(const char *phone);
/* Replaces {phone} and {code} in TMPL (percent-encoded when ESCAPE). 0 or -1 (too long). */
int sms_render(const char *tmpl, const char *phone, const char *code, bool escape, char *out,
	       size_t outlen);
/* Sends CODE to PHONE through the gateway and waits for a 2xx. 0, or -1 with ERR. */
int sms_send(const char *phone, const char *code, char *err, size_t errlen);
/* The same from a detached thread (failures are logged). 0 when started. */
int sms_send_async(const char *phone, const char *code);
/* A new code for S at NOW into CODE_OUT (its hash replaces any pending one);
 * -1 when the rate limit says no. */
int sms_code_issue(struct otp_state *s, int64_t now, char code_out[OTP_DIGITS + 1]);
/* 0 when CODE is the pending, unexpired code (then cleared), else -1. */
int sms_code_check(struct otp_state *s, const char *code, int64_t now);

/* ---- app passwords (app_password.c) ---- */
#define APP_PASSWORD_KIND "app_passwords"
#define APP_PASSWORD_LEN 19 /* same shape as a recovery code: 80 random bits */
#define APP_PASSWORD_NAME_MAX 64
#define APP_PASSWORDS_MAX 16 /* per user */

enum app_scope {
	APP_SCOPE_IMAP = 1 << 0,
	APP_SCOPE_POP3 = 1 << 1,
	APP_SCOPE_SMTP = 1 << 2,
	APP_SCOPE_ALL = APP_SCOPE_IMAP | APP_SCOPE_POP3 | APP_SCOPE_SMTP,
};

struct app_password {
	char name[APP_PASSWORD_NAME_MAX + 1];
	unsigned scopes;
	char tag[9];			  /* hex of 4 bytes of BLAKE2b(password): picks the entry */
	char hash[CRYPTO_PWHASH_STR_MAX]; /* Argon2id */
	unsigned char *wrapped;		  /* the user's private key wrapped by this password */
	size_t wrapped_len;
	int64_t created, last_used; /* unix time; last_used 0 = never */
	char last_ip[64];
};

struct app_password_list {
	struct app_password items[APP_PASSWORDS_MAX];
	size_t n;
};

/* STORE_OK (possibly empty list) or STORE_ERR. */
int app_passwords_load(struct store *st, int64_t user_id, struct app_password_list *out);
int app_passwords_save(struct store *st, int64_t user_id, const struct app_password_list *l);
void app_passwords_clear(struct app_password_list *l);
/* "imap,pop3,smtp" (any order, at least one) into *SCOPES. 0 or -1. */
int app_scopes_parse(const char *text, unsigned *scopes);
void app_scopes_format(unsigned scopes, char *out, size_t outlen);
/* The scope of a protocol name ("imap", "pop3", "smtp"), 0 for others or NULL. */
unsigned app_scope_of_protocol(const char *protocol);
/*
 * Adds an app password NAME with SCOPES for the unlocked key K: writes the
 * generated password into PASSWORD_OUT. Returns 0, -1 on failure, -2 when
 * NAME exists or is malformed, -3 when the list is full.
 */
int app_password_create(struct app_password_list *l, const char *name, unsigned scopes,
			const struct user_key *k, char password_out[APP_PASSWORD_LEN + 1]);
/* 0 when removed, -1 when no such name. */
int app_password_revoke(struct app_password_list *l, const char *name);
/* True when PASSWORD (LEN bytes) has the shape of a generated app password. */
bool app_password_shape(const char *password, size_t len);
/*
 * Finds the entry PASSWORD belongs to and unlocks the private key with it.
 * Returns its index (*KEY_OUT set) or -1. Only entries whose tag matches pay
 * for Argon2id, so a user with many app passwords costs no more per login.
 */
int app_password_match(const struct app_password_list *l, const char *password, size_t len,
		       struct user_key **key_out);

/* ---- throttling (throttle.c) ---- */
struct throttle_policy {
	unsigned free_failures;	 /* failures answered without any wait */
	unsigned block_after;	 /* failures that start a block */
	unsigned block_seconds;	 /* length of a block */
	unsigned max_wait;	 /* longest wait between failures before the block, seconds */
	unsigned forget_seconds; /* failures older than this (since the last one) are forgotten */
};

/* Safe defaults (docs/login-security.md): an account waits 1, 2, 4 ... s
 * after its 3rd failure and is blocked for 15 minutes at 10; a client address
 * gets more room (waits after 30, a block at 100) since many users may share
 * it (NAT). */
extern const struct throttle_policy throttle_account_policy;
extern const struct throttle_policy throttle_ip_policy;

struct throttle_state {
	uint32_t failures;
	int64_t last_failure;  /* unix time */
	int64_t blocked_until; /* unix time; 0 = not blocked */
};

/* 0 when an attempt is allowed at NOW, else the unix time from which it is. */
int64_t throttle_retry_at(const struct throttle_policy *p, const struct throttle_state *s,
			  int64_t now);
/* Counts a failure at NOW (starting the block when due). */
void throttle_record_failure(const struct throttle_policy *p, struct throttle_state *s,
			     int64_t now);
/* True when S holds nothing worth keeping at NOW (no failures to remember). */
bool throttle_state_idle(const struct throttle_policy *p, const struct throttle_state *s,
			 int64_t now);

/* The clock of the throttle (unix seconds); tests inject their own. NULL restores time(). */
void throttle_set_clock(int64_t (*now_fn)(void));
int64_t throttle_now(void);

/* Account state kept in store_user_data so posternctl sees and clears it. */
#define THROTTLE_KIND "login_throttle"
/* STORE_OK (*OUT zeroed when none) or STORE_ERR. */
int throttle_account_load(struct store *st, int64_t user_id, struct throttle_state *out);
int throttle_account_save(struct store *st, int64_t user_id, const struct throttle_state *s);

/* In-memory table of states by key (client IPs, unknown addresses); thread-safe. */
#define THROTTLE_TABLE_SIZE 4096
int64_t throttle_table_retry_at(const struct throttle_policy *p, const char *key, int64_t now);
void throttle_table_failure(const struct throttle_policy *p, const char *key, int64_t now);
void throttle_table_forget(const char *key);
void throttle_table_clear(void);
typedef void (*throttle_table_cb)(void *arg, const char *key, const struct throttle_state *s);
void throttle_table_each(throttle_table_cb cb, void *arg);

#endif
