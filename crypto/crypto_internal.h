/*
 * crypto_internal.h - helpers shared by the files of crypto/ only: building a
 * guarded user_key from raw private key bytes, reading its private half,
 * atomic file writes and the Argon2id derivation counter.
 */
#ifndef POSTERN_CRYPTO_INTERNAL_H
#define POSTERN_CRYPTO_INTERNAL_H

#include <stddef.h>
#include <sys/types.h>

#include <openssl/types.h>

#include "crypto/crypto.h"

#define CRYPTO_PRIVATE_KEY_BYTES 32
#define CRYPTO_PATH_MAX 4096

/* A new read-only guarded key holding PRIV and the public key derived from it. */
struct user_key *user_key_from_private(const unsigned char priv[CRYPTO_PRIVATE_KEY_BYTES]);
const unsigned char *user_key_private(const struct user_key *k);

/* The content keys a user key has opened (seal.c), kept with the key and
 * wiped with it; the cache locks itself. key_cache_new may return NULL
 * (nothing is then kept). */
struct key_cache;
struct key_cache *key_cache_new(void);
void key_cache_free(struct key_cache *c);
size_t key_cache_count(struct key_cache *c);
struct key_cache *user_key_cache(const struct user_key *k);

/* Writes DATA to PATH via a 0600 temporary file in the same directory, fsync,
 * then chmod to MODE and rename (EXCLUSIVE 0) or link (EXCLUSIVE 1: fails with
 * EEXIST when PATH exists). -1 with errno on failure; PATH is then untouched. */
int crypto_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
			     int exclusive);

/* Counts one Argon2id derivation (password hash, verify or wrap key). */
void crypto_count_argon2(void);

/* Adds the X.509v3 extension NID with the OpenSSL config VALUE (e.g.
 * "critical,CA:FALSE") to X, which ISSUER signs (X itself when self-signed). 0 or -1. */
int crypto_x509_add_ext(X509 *x, X509 *issuer, int nid, const char *value);

#endif
