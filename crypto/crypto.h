/*
 * crypto.h - at-rest encryption of mailboxes (libsodium).
 *
 * Each user has an X25519 key pair. The private key is stored wrapped
 * (XChaCha20-Poly1305) with a key derived from the password by Argon2id, so
 * the server can seal new mail at any time but open it only while the owner
 * is logged in. Each message gets a random content key; the message is
 * encrypted with it and the content key is sealed (crypto_box_seal) to the
 * owner's public key. The blob format is versioned (first byte).
 *
 * Unlocked private keys live in sodium_malloc'd memory and are wiped on free.
 * All functions return 0 on success, -1 on failure (wrong password, tampered
 * data, out of memory) and never log secrets.
 */
#ifndef POSTERN_CRYPTO_H
#define POSTERN_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#define CRYPTO_PUBLIC_KEY_BYTES 32
#define CRYPTO_PWHASH_STR_MAX 128

/* Calls sodium_init(); safe to call more than once. */
int crypto_setup(void);

/*
 * Argon2id cost of password hashes and of the key that wraps a private key.
 * The defaults are sized so one login costs 50-100 ms on a 2-core VM
 * (measured in keys.c); a first login runs two derivations (verify, then unwrap). Set it
 * at startup and reload from the config keys auth.argon2_ops and
 * auth.argon2_mem (thread-safe). Values outside the accepted range are
 * clamped into it. Existing hashes and wrapped keys keep the cost they were
 * made with (it is recorded in them).
 */
#define CRYPTO_ARGON2_OPS_DEFAULT 2ULL
#define CRYPTO_ARGON2_MEM_DEFAULT (64UL * 1024 * 1024)
#define CRYPTO_ARGON2_OPS_MIN 1ULL
#define CRYPTO_ARGON2_OPS_MAX 64ULL
#define CRYPTO_ARGON2_MEM_MIN 8192UL
#define CRYPTO_ARGON2_MEM_MAX (4096UL * 1024 * 1024)
void crypto_set_argon2_cost(unsigned long long opslimit, size_t memlimit);
void crypto_get_argon2_cost(unsigned long long *opslimit, size_t *memlimit);
/* Number of Argon2id derivations this process has run (tests check the auth cache with it). */
unsigned long crypto_argon2_count(void);

/* Password hashing (Argon2id encoded string, NUL-terminated in OUT). */
int crypto_password_hash(const char *password, size_t len, char out[CRYPTO_PWHASH_STR_MAX]);
/* 0 when PASSWORD matches HASH; constant-time compare inside libsodium. */
int crypto_password_verify(const char *hash, const char *password, size_t len);

/* An unlocked private key (opaque, guarded memory). */
struct user_key;

/* New key pair: PUB and the private key wrapped by PASSWORD (*WRAPPED malloc'd).
 * If KEY_OUT is not NULL, the unlocked key is returned too. */
int crypto_user_keygen(const char *password, size_t pwlen, unsigned char pub[32],
		       unsigned char **wrapped, size_t *wrapped_len, struct user_key **key_out);
int crypto_user_unlock(const unsigned char *wrapped, size_t wrapped_len, const char *password,
		       size_t pwlen, struct user_key **out);
/* Wraps K anew under NEW_PASSWORD (password change); nothing else changes. */
int crypto_user_rewrap(const struct user_key *k, const char *new_password, size_t pwlen,
		       unsigned char **wrapped, size_t *wrapped_len);
const unsigned char *user_key_public(const struct user_key *k);
/* Another reference to the same guarded key (thread-safe count); each
 * reference is released with its own user_key_free, the last one wipes. */
struct user_key *user_key_dup(const struct user_key *k);
void user_key_free(struct user_key *k);

/* Seals MSG to PUB: *BLOB (malloc'd) = version || sealed content key || nonce || ciphertext. */
int crypto_seal(const unsigned char pub[32], const void *msg, size_t len, unsigned char **blob,
		size_t *blob_len);
/* Opens a blob with K; *MSG is malloc'd (caller wipes with sodium_memzero before free
 * when it held plaintext). Fails on a wrong key or any tampering. */
int crypto_open(const struct user_key *k, const unsigned char *blob, size_t blob_len,
		unsigned char **msg, size_t *msg_len);
/* crypto_open keeps each content key it opened with the user key (bounded,
 * wiped with the key) so reading a message again skips the X25519 step; the
 * AEAD check runs every time. How many it holds now: */
size_t user_key_cached_keys(const struct user_key *k);

/* Organization recovery key: a plain X25519 key pair kept offline by the admin. */
int crypto_recovery_keygen(unsigned char pub[32], unsigned char priv[32]);
/* Seals a user's private key to the recovery public key (*OUT malloc'd). */
int crypto_recovery_seal(const struct user_key *k, const unsigned char recovery_pub[32],
			 unsigned char **out, size_t *out_len);
/* Recovers a user's private key with the recovery key pair. */
int crypto_recovery_open(const unsigned char *sealed, size_t len,
			 const unsigned char recovery_pub[32],
			 const unsigned char recovery_priv[32], struct user_key **out);
/*
 * Key files: one line "LABEL: <base64>" (lines starting with '#' are comments).
 * Labels are short words of [a-z0-9-], e.g. "postern-recovery-public". A label
 * containing "public" gives mode 0644, every other key file is 0600.
 * crypto_key_file_write replaces PATH atomically (temporary file, fsync,
 * rename); crypto_key_file_create fails with errno EEXIST when PATH exists.
 * crypto_key_file_read needs exactly LEN bytes under LABEL; ERRNO is EINVAL
 * for a malformed file or wrong label.
 */
int crypto_key_file_write(const char *path, const char *label, const unsigned char *key,
			  size_t len);
int crypto_key_file_create(const char *path, const char *label, const unsigned char *key,
			   size_t len);
int crypto_key_file_read(const char *path, const char *label, unsigned char *key, size_t len);

/* Server queue key (outbound mail and quarantine): created on first use at PATH (0600).
 * Safe when several processes race to create it: all end up with the same key. */
int crypto_server_key_load(const char *path, struct user_key **out);

/* Self-signed certificate (EC P-256, SHA-256, two years, random serial) for
 * HOSTNAME with SAN DNS:HOSTNAME, DNS:localhost, IP:127.0.0.1, IP:::1, written
 * as PEM (certificate 0644, key 0600, each replaced atomically). On failure
 * ERR holds a translated message naming the file or the OpenSSL step. */
int crypto_selfsigned_cert(const char *hostname, const char *cert_path, const char *key_path,
			   char *err, size_t errlen);

#endif
