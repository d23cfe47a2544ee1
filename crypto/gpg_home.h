/*
 * gpg_home.h - a user's GnuPG home (OpenPGP through gpg, S/MIME through
 * gpgsm), both driven through GPGME (docs/pgp.md, "Keys").
 *
 * Every user has one home of their own, <data_dir>/gnupg/<name>/, where
 * <name> is derived from the lower-cased address (gpg_home_name); gpg and
 * gpgsm share it (one keybox, one agent). It is created 0700 with gpg.conf,
 * gpgsm.conf and gpg-agent.conf written by Postern (no network access by
 * gpg/gpgsm, the agent never prompts and caches nothing on its own, trust
 * model "always" for OpenPGP because Postern decides whom a key belongs to
 * by the user's or admin's import, by verified mail and by WKD).
 *
 * Secret keys in a home are protected by a passphrase derived from the
 * user's unlocked at-rest private key (keyed BLAKE2b of a fixed label; see
 * gpg_passphrase_derive). A password change rewraps that key without
 * changing it, so the passphrase survives it. OpenPGP contexts get it by a
 * loopback passphrase callback; for S/MIME an unlocked handle presets it in
 * the agent until the last unlocked handle of the home closes. Without the
 * unlocked key (user not logged in) secret-key operations fail instead of
 * prompting. Do not set a passphrase callback or pinentry mode on a CMS
 * context: GPGME 1.18 then fails gpgsm operations.
 *
 * gpg-agent processes are bounded: at most [pgp] max_agents homes have a
 * live agent at any time; the least recently used idle home loses its agent
 * (gpgconf --kill) when another one needs one, and an agent idle for
 * [pgp] agent_idle seconds is stopped by the next open or close. Every
 * agent this process started is stopped when it exits.
 *
 * Threads: a struct gpg_user and the GPGME contexts it hands out belong to
 * one thread at a time. Opening the same user from two threads gives two
 * handles on the same home (GnuPG locks its files itself).
 *
 * Return values: 0 on success, -1 on failure with a translated message in
 * ERR (when ERR is not NULL); lookups return 1 found / 0 not found / -1.
 */
#ifndef POSTERN_GPG_HOME_H
#define POSTERN_GPG_HOME_H

#include <stdbool.h>
#include <stddef.h>

#include <gpgme.h>

struct config;
struct user_key;

/* Length of a home name (hex of a 128-bit hash) and of the derived passphrase text
 * (176 bits, URL-safe base64: gpgsm 2.2 reads PKCS#12 passphrases of < 32 characters only). */
#define GPG_HOME_NAME_LEN 32
#define GPG_PASSPHRASE_LEN 30

/* A user's homes, opened for one operation or session. */
struct gpg_user;

/*
 * Opens ADDRESS's homes under CFG's data dir, creating them on first use.
 * KEY is the user's unlocked at-rest key (struct user_key from the login,
 * e.g. auth's key handle) or NULL: without it only public-key operations
 * work (verify, encrypt to others, import/list public keys); with it the
 * passphrase for the user's secret keys is derived and given to gpg/gpgsm
 * through a GPGME passphrase callback in loopback pinentry mode. The handle
 * keeps its own reference to KEY (user_key_dup).
 */
int gpg_user_open(const struct config *cfg, const char *address, const struct user_key *key,
		  struct gpg_user **out, char *err, size_t errlen);
void gpg_user_close(struct gpg_user *u);

/*
 * Removes ADDRESS's home with every key in it (stopping its agent) and its
 * published WKD key: for deleting a user, so that a later user of the same
 * address starts empty. Fails when a handle of this process holds the home.
 * Returns 1 removed, 0 when there was none, -1 with ERR.
 */
int gpg_home_remove(const struct config *cfg, const char *address, char *err, size_t errlen);

/* The lower-cased address the handle was opened for. */
const char *gpg_user_address(const struct gpg_user *u);
/* True when the handle was opened with the user's unlocked key. */
bool gpg_user_unlocked(const struct gpg_user *u);
/* The home directory of PROTO (GPGME_PROTOCOL_OpenPGP or GPGME_PROTOCOL_CMS). */
const char *gpg_user_homedir(const struct gpg_user *u, gpgme_protocol_t proto);

/*
 * A GPGME context for PROTO (GPGME_PROTOCOL_OpenPGP or GPGME_PROTOCOL_CMS)
 * bound to the user's home, with loopback pinentry and the passphrase
 * callback set. It is owned by the handle (reused on the next call with the
 * same PROTO, released by gpg_user_close); callers may change armor,
 * textmode, signers and similar per-operation settings. NULL on failure.
 */
gpgme_ctx_t gpg_user_ctx(struct gpg_user *u, gpgme_protocol_t proto);

/*
 * Correspondents' keys: imports public keys (OpenPGP: binary or armored;
 * CMS: DER or PEM X.509 certificates) into the user's home of PROTO. Secret
 * key material in DATA is refused (use gpg_user_import_secret). *IMPORTED
 * (if not NULL) receives the number of keys that were new or updated.
 * Used for keys the user or admin imports, keys collected from verified
 * signed mail (Autocrypt header, attached keys) and keys fetched by WKD.
 */
int gpg_user_import_public(struct gpg_user *u, gpgme_protocol_t proto, const void *data, size_t len,
			   unsigned *imported, char *err, size_t errlen);

/*
 * The user's own keys: imports an OpenPGP secret key (PASSPHRASE is the
 * passphrase it was exported with, NULL when it has none) and re-protects it
 * with the derived passphrase. Needs an unlocked handle.
 */
int gpg_user_import_secret(struct gpg_user *u, const void *data, size_t len, const char *passphrase,
			   unsigned *imported, char *err, size_t errlen);
/*
 * Imports an S/MIME certificate with its private key from a PKCS#12 file
 * protected by P12_PASSWORD into the CMS home; the key is re-protected with
 * the derived passphrase. Needs an unlocked handle. A wrong password and a
 * truncated or malformed file are told apart in ERR.
 */
int gpg_user_import_p12(struct gpg_user *u, const void *data, size_t len, const char *p12_password,
			char *err, size_t errlen);

/*
 * Finds a usable key of PROTO for ADDRESS in the user's home: SECRET false:
 * a valid (not expired, revoked, disabled or invalid) key that can encrypt;
 * SECRET true: the user's own key that can sign. *OUT gets a reference
 * (gpgme_key_unref). Returns 1 found, 0 none, -1 error.
 */
int gpg_user_find_key(struct gpg_user *u, gpgme_protocol_t proto, const char *address, bool secret,
		      gpgme_key_t *out, char *err, size_t errlen);

/*
 * WKD client (OpenPGP): when [pgp] wkd_lookup is on, fetches ADDRESS's key
 * by the Web Key Directory over HTTPS (advanced method, then direct;
 * certificate verification on, [pgp] wkd_ca_file as extra CA) and imports
 * the keys carrying ADDRESS into the user's home. Returns 1 imported,
 * 0 none published / lookups off, -1 error. Blocks: run it on the job pool.
 */
int gpg_user_wkd_fetch(struct gpg_user *u, const char *address, char *err, size_t errlen);

/*
 * Exports the public keys of the user's own address (OpenPGP), binary
 * (ARMOR false: what WKD serves) or armored, into *OUT (malloc'd).
 * Returns 1 with data, 0 when the user has no key, -1 error.
 */
int gpg_user_export_own(struct gpg_user *u, bool armor, char **out, size_t *out_len, char *err,
			size_t errlen);

/*
 * WKD server side: writes the binary export of the user's own OpenPGP keys
 * to <data_dir>/gnupg/wkd/<domain>/hu/<hash> (and the domain's empty
 * policy file), or removes it when the user has no key any more. Call it
 * after the user's own keys change. Returns 1 published, 0 removed, -1.
 */
int gpg_wkd_publish(const struct config *cfg, struct gpg_user *u, char *err, size_t errlen);
/* Path of a served key (HASH not NULL) or of a domain's WKD directory (HASH
 * NULL) under DATA_DIR; -1 for a domain or hash that is not well-formed. */
int gpg_wkd_path(const char *data_dir, const char *domain, size_t domain_len, const char *hash,
		 char *out, size_t outlen);
/* A domain name fit for a path and URL (letters, digits, '-', '.'; no ".."). */
bool gpg_wkd_domain_valid(const char *domain, size_t len);

/* ---- helpers, pure functions (unit-tested) ---- */

/* Home directory name for ADDRESS: hex of BLAKE2b-128 of the lower-cased address. */
int gpg_home_name(const char *address, char out[GPG_HOME_NAME_LEN + 1]);
/* The passphrase protecting the user's secret keys, as text (NUL-terminated). */
int gpg_passphrase_derive(const struct user_key *key, char out[GPG_PASSPHRASE_LEN + 1]);
/* z-base-32 (as WKD uses it) of LEN bytes into OUT (OUTLEN with room for the NUL). */
int gpg_zbase32(const unsigned char *in, size_t len, char *out, size_t outlen);
/* WKD hash of an address's local part: z-base-32 of SHA-1 of the lower-cased local part
 * (32 characters). LOCAL is not NUL-terminated necessarily; LEN bytes. */
int gpg_wkd_hash(const char *local, size_t len, char out[33]);

/* Number of gpg-agents this process currently keeps alive (tests, status). */
unsigned gpg_agents_running(void);
/* Stops every agent this process started (also run at exit). */
void gpg_agents_stop_all(void);

#endif
