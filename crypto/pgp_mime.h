/*
 * pgp_mime.h - OpenPGP (RFC 3156 PGP/MIME, inline PGP) and S/MIME (RFC 8551)
 * on whole RFC 5322 messages: sign, encrypt, verify, decrypt, protect with a
 * password, and the Autocrypt header.
 *
 * GMime parses and re-encodes MIME; GPGME does the cryptography in the
 * context the caller gives (a user's home from crypto/gpg_home.h, or any
 * context in tests). The context's protocol picks the format:
 * GPGME_PROTOCOL_OpenPGP gives PGP/MIME, GPGME_PROTOCOL_CMS gives S/MIME.
 * GMime's own crypto contexts are not used: they run GPGME with the
 * process-wide home, and Postern needs one home per user in a threaded
 * daemon.
 *
 * Messages are bytes in and out; output uses CRLF line ends and is malloc'd
 * (the caller wipes and frees it: it may hold plaintext). Outer header
 * fields (From, To, Subject, ...) stay as they are; the MIME entity (the
 * Content-* fields and the body) is what gets signed or encrypted.
 *
 * Functions return 0 on success and -1 with an English message in ERR
 * (ERR may be NULL) unless they say otherwise; they never crash on
 * malformed input and never log secrets.
 */
#ifndef POSTERN_PGP_MIME_H
#define POSTERN_PGP_MIME_H

#include <stdbool.h>
#include <stddef.h>

#include <gpgme.h>

enum pgp_sig_status {
	PGP_SIG_NONE = 0,    /* no signature found */
	PGP_SIG_VALID,	     /* good signature by a key the home knows */
	PGP_SIG_BAD,	     /* the signature does not match, or the structure lies (micalg) */
	PGP_SIG_UNKNOWN_KEY, /* the signer's key is not in the home */
	PGP_SIG_EXPIRED,     /* the key, certificate or signature expired */
	PGP_SIG_ERROR,	     /* the signature could not be checked (broken armor, truncated CMS) */
};

enum pgp_mime_kind {
	PGP_KIND_NONE = 0,
	PGP_KIND_PGPMIME, /* multipart/signed or multipart/encrypted, OpenPGP */
	PGP_KIND_INLINE,  /* -----BEGIN PGP SIGNED MESSAGE----- in a text part */
	PGP_KIND_SMIME,	  /* multipart/signed pkcs7-signature, application/pkcs7-mime */
};

struct pgp_verify_result {
	enum pgp_sig_status status;
	enum pgp_mime_kind kind;
	char fingerprint[80]; /* hex, "" when unknown */
	char signer[256];     /* the key's address (or user id), "" when unknown */
	char detail[256];     /* English, why it is not valid; "" when valid */
};

/* What a message is, from its top-level structure (and text parts for inline PGP). */
struct pgp_mime_info {
	enum pgp_mime_kind signed_kind;
	enum pgp_mime_kind encrypted_kind;
};

/* "valid", "bad", "unknown-key", "expired", "error", "none". */
const char *pgp_sig_status_name(enum pgp_sig_status s);
/* "pgp-mime", "inline-pgp", "smime", "none". */
const char *pgp_mime_kind_name(enum pgp_mime_kind k);
/* The protocol that handles KIND (CMS for S/MIME, OpenPGP otherwise). */
gpgme_protocol_t pgp_mime_kind_protocol(enum pgp_mime_kind k);

void pgp_mime_inspect(const unsigned char *msg, size_t len, struct pgp_mime_info *info);

/*
 * Signs MSG with SIGNER (a secret key in CTX's home): multipart/signed with
 * the entity re-encoded 7-bit safe and in canonical CRLF form first,
 * micalg named after the hash gpg/gpgsm actually used.
 */
int pgp_mime_sign(gpgme_ctx_t ctx, gpgme_key_t signer, const unsigned char *msg, size_t len,
		  unsigned char **out, size_t *out_len, char *err, size_t errlen);

/*
 * Encrypts MSG to RECIPIENTS (NULL-terminated): PGP/MIME
 * multipart/encrypted or S/MIME enveloped-data. With SIGNER (OpenPGP) the
 * entity is signed and encrypted in one step (RFC 3156 6.2); with SIGNER
 * and CMS it is signed (multipart/signed) and then enveloped.
 */
int pgp_mime_encrypt(gpgme_ctx_t ctx, gpgme_key_t *recipients, gpgme_key_t signer,
		     const unsigned char *msg, size_t len, unsigned char **out, size_t *out_len,
		     char *err, size_t errlen);

/*
 * Verifies the signature of MSG (PGP/MIME, inline PGP or S/MIME, whichever
 * MSG has; CTX must be of the matching protocol, see pgp_mime_inspect).
 * Always fills RES; a message without signature gives PGP_SIG_NONE.
 */
void pgp_mime_verify(gpgme_ctx_t ctx, const unsigned char *msg, size_t len,
		     struct pgp_verify_result *res);

/*
 * Decrypts a PGP/MIME or S/MIME encrypted MSG with the secret keys of
 * CTX's home into a whole message (outer header fields kept). A signature
 * made together with the encryption is checked into SIG (may be NULL;
 * PGP_SIG_NONE when there was none: the decrypted message may still carry
 * a multipart/signed of its own). Returns 1 decrypted, 0 not encrypted,
 * -1 error.
 */
int pgp_mime_decrypt(gpgme_ctx_t ctx, const unsigned char *msg, size_t len, unsigned char **out,
		     size_t *out_len, struct pgp_verify_result *sig, char *err, size_t errlen);

/*
 * Password-protected mail: the entity of MSG (body and attachments) becomes
 * an OpenPGP message symmetrically encrypted with PASSWORD (CTX: OpenPGP,
 * any home; the passphrase goes in through loopback and is not cached),
 * attached as message.asc to an outer text that tells the recipient how to
 * open it. Outer header fields stay (the Subject is not hidden).
 */
int pgp_mime_password_protect(gpgme_ctx_t ctx, const char *password, const unsigned char *msg,
			      size_t len, unsigned char **out, size_t *out_len, char *err,
			      size_t errlen);

/*
 * The Autocrypt header (Autocrypt Level 1) for ADDRESS with KEY (exported
 * minimal: primary key, user id, subkeys, latest self-signatures), folded,
 * "Autocrypt: addr=...; keydata=...\r\n" in *OUT (malloc'd).
 */
int pgp_mime_autocrypt_header(gpgme_ctx_t ctx, const char *address, gpgme_key_t key, char **out,
			      char *err, size_t errlen);

/* ---- header helpers, pure functions ---- */

/* Length of the header block of MSG including the empty line that ends it
 * (LEN when there is no body). */
size_t pgp_mime_header_length(const unsigned char *msg, size_t len);
/* Removes every field named NAME (with its continuation lines) from the
 * header of MSG in place; returns the new length. */
size_t pgp_mime_header_remove(unsigned char *msg, size_t len, const char *name);
/* The first NAME field's value, unfolded (CRLFs removed, whitespace kept) and
 * trimmed, in OUT (truncated to OUTLEN - 1). Returns 1 found, 0 not. */
int pgp_mime_header_get(const unsigned char *msg, size_t len, const char *name, char *out,
			size_t outlen);

/* Decodes RFC 2047 encoded words in TEXT (SIZE bytes, NUL-terminated) in place. */
void pgp_mime_decode_words(char *text, size_t size);

#endif
