/*
 * pgp_policy.h - OpenPGP and S/MIME on the mail path (docs/pgp.md).
 *
 * Submission: a password header turns the message into password-protected
 * mail; the sender's policy (per user, else per domain, else the default:
 * sign never, encrypt never) signs and/or encrypts it with the keys in the
 * sender's GnuPG home; an Autocrypt header advertises the sender's key.
 * Inbound (every local copy): signatures are verified with the recipient's
 * home, any forged copy of our result header is removed and ours added;
 * users who opted in get encrypted mail decrypted while their key is
 * unlocked.
 *
 * Runs on the job pool (GPGME blocks).
 */
#ifndef POSTERN_PGP_POLICY_H
#define POSTERN_PGP_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "deliver/deliver.h"

struct user_key;

/* The submission header that asks for password protection; removed before
 * anything is stored, queued, logged or traced. */
#define PGP_PASSWORD_HEADER "X-Postern-Password"
/* Our result headers on delivered copies (forged copies are removed). */
#define PGP_SIGNATURE_HEADER "X-Postern-Signature"
#define PGP_DECRYPTED_HEADER "X-Postern-Decrypted"
/* Longest password taken from the header. */
#define PGP_PASSWORD_MAX 256

/* Where unlocked at-rest keys of logged-in users come from (the auth cache):
 * returns a new reference (user_key_free) or NULL. Unset: no key is ever
 * available, so signing at submission and server-side decryption do not happen. */
typedef struct user_key *(*pgp_key_lookup_fn)(int64_t user_id);
void pgp_policy_set_key_lookup(pgp_key_lookup_fn fn);

/* The effective policy of ADDRESS (user row, else its domain's, else default). */
enum pgp_sign_policy { PGP_SIGN_NEVER = 0, PGP_SIGN_ALWAYS };
enum pgp_encrypt_policy { PGP_ENCRYPT_NEVER = 0, PGP_ENCRYPT_IF_POSSIBLE, PGP_ENCRYPT_REQUIRED };
struct pgp_effective_policy {
	enum pgp_sign_policy sign;
	enum pgp_encrypt_policy encrypt;
	bool decrypt_inbound;
};
int pgp_policy_effective(struct store *st, const char *address, struct pgp_effective_policy *out);

/*
 * Submission by ENV->auth_user (SENDER_ID its user id): applies password
 * protection, the policy and Autocrypt to *MSG (replaced in place; the old
 * buffer is wiped and freed). DELIVER_OK to go on; DELIVER_FAIL with
 * REPORT->message naming the reason (a recipient without key, no signing
 * key) when the policy refuses the message; DELIVER_TEMPFAIL on errors.
 */
enum deliver_status pgp_policy_submission(struct store *st, const struct config *cfg,
					  const struct deliver_envelope *env, int64_t sender_id,
					  const struct deliver_recipient *rcpts, const bool *local,
					  size_t n_rcpts, unsigned char **msg, size_t *len,
					  struct deliver_report *report);

/*
 * Inbound, for one local recipient USER: *OUT (malloc'd) is the copy to
 * store: forged result headers removed, ours added when MSG is signed or
 * was decrypted. Returns 0, or -1 when memory ran out (then deliver MSG).
 */
int pgp_policy_inbound(struct store *st, const struct config *cfg,
		       const struct deliver_envelope *env, const struct store_user *user,
		       const unsigned char *msg, size_t len, unsigned char **out, size_t *out_len);

#endif
