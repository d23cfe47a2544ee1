/*
 * keys.c - password hashes and user key pairs.
 *
 * A user's X25519 private key is stored wrapped: XChaCha20-Poly1305 under a
 * key that Argon2id derives from the password with a random salt. The wrapped
 * form is versioned and carries everything needed to unwrap it, so the cost
 * can rise later without breaking old users:
 *
 *   version (1) || salt (16) || opslimit (8, big-endian) || memlimit (8, big-endian)
 *   || nonce (24) || ciphertext of the private key (32) || tag (16)
 *
 * Everything before the ciphertext is authenticated as associated data.
 * Unlocked keys live in sodium_malloc'd memory (guard pages, mlock'd where the
 * system allows), read-only after creation, shared by reference count between
 * copies, and wiped by sodium_free when the last copy goes.
 *
 * The optional organization recovery key is a crypto_box key pair; a user's
 * private key sealed to it (version byte || crypto_box_seal output) lets the
 * admin, with the offline private half, set a new password without losing mail.
 *
 * Argon2id cost, measured on the 2-core development VM (libsodium 1.0.18),
 * best of five crypto_pwhash runs with ALG_ARGON2ID13:
 *   ops=2 mem=64M 40 ms; ops=3 mem=64M 51-54 ms; ops=4 mem=64M 67 ms;
 *   ops=2 mem=128M 100 ms; ops=3 mem=96M 87 ms
 * Default: ops=2, mem=64 MiB (about 40 ms per derivation, so a first login,
 * which verifies the hash and then unwraps the key, costs about 80 ms: the
 * 50-100 ms per login we aim for).
 * Measure again with a small program that times
 *   crypto_pwhash(out, 32, "password", 8, salt, OPS, MEM, crypto_pwhash_ALG_ARGON2ID13)
 * built with `cc -O2 bench.c $(pkg-config --cflags --libs libsodium)`.
 */
#include "config.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "crypto/crypto.h"
#include "crypto/crypto_internal.h"

#define WRAP_VERSION 1
#define WRAP_SALT_OFF 1
#define WRAP_OPS_OFF (WRAP_SALT_OFF + crypto_pwhash_SALTBYTES)
#define WRAP_MEM_OFF (WRAP_OPS_OFF + 8)
#define WRAP_NONCE_OFF (WRAP_MEM_OFF + 8)
#define WRAP_HEADER_LEN (WRAP_NONCE_OFF + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES)
#define WRAP_LEN                                                                                   \
	(WRAP_HEADER_LEN + CRYPTO_PRIVATE_KEY_BYTES + crypto_aead_xchacha20poly1305_ietf_ABYTES)

#define RECOVERY_VERSION 1
#define RECOVERY_LEN (1 + crypto_box_SEALBYTES + CRYPTO_PRIVATE_KEY_BYTES)

/* The key bytes, in guarded memory that is read-only once filled. */
struct key_material {
	unsigned char pub[crypto_box_PUBLICKEYBYTES];
	unsigned char priv[crypto_box_SECRETKEYBYTES];
};

/*
 * A handle shared by reference count: every session of a user and the auth
 * cache may hold the same key, and each guarded allocation costs pages and
 * memory mappings, so copies share one. The last user_key_free wipes it.
 */
struct user_key {
	atomic_uint refs;
	struct key_material *m;
	struct key_cache *opened; /* content keys it opened (seal.c); NULL: none kept */
};

/* Atomic: a reload may change the cost while job threads hash. */
static _Atomic unsigned long long argon2_ops = CRYPTO_ARGON2_OPS_DEFAULT;
static _Atomic size_t argon2_mem = CRYPTO_ARGON2_MEM_DEFAULT;
static atomic_ulong argon2_runs;

int crypto_setup(void)
{
	return sodium_init() < 0 ? -1 : 0;
}

void crypto_set_argon2_cost(unsigned long long opslimit, size_t memlimit)
{
	if (opslimit < CRYPTO_ARGON2_OPS_MIN)
		opslimit = CRYPTO_ARGON2_OPS_MIN;
	if (opslimit > CRYPTO_ARGON2_OPS_MAX)
		opslimit = CRYPTO_ARGON2_OPS_MAX;
	if (memlimit < CRYPTO_ARGON2_MEM_MIN)
		memlimit = CRYPTO_ARGON2_MEM_MIN;
	if (memlimit > CRYPTO_ARGON2_MEM_MAX)
		memlimit = CRYPTO_ARGON2_MEM_MAX;
	atomic_store(&argon2_ops, opslimit);
	atomic_store(&argon2_mem, memlimit);
}

void crypto_get_argon2_cost(unsigned long long *opslimit, size_t *memlimit)
{
	if (opslimit)
		*opslimit = atomic_load(&argon2_ops);
	if (memlimit)
		*memlimit = atomic_load(&argon2_mem);
}

void crypto_count_argon2(void)
{
	atomic_fetch_add(&argon2_runs, 1);
}

unsigned long crypto_argon2_count(void)
{
	return atomic_load(&argon2_runs);
}

/* ---- password hashes ---- */

int crypto_password_hash(const char *password, size_t len, char out[CRYPTO_PWHASH_STR_MAX])
{
	unsigned long long ops;
	size_t mem;

	if (crypto_setup() < 0 || password == NULL)
		return -1;
	crypto_get_argon2_cost(&ops, &mem);
	crypto_count_argon2();
	if (crypto_pwhash_str_alg(out, password, len, ops, mem, crypto_pwhash_ALG_ARGON2ID13) != 0)
		return -1;
	return 0;
}

int crypto_password_verify(const char *hash, const char *password, size_t len)
{
	if (hash == NULL || password == NULL)
		return -1;
	/* Only Argon2id strings of ours; anything else (empty, truncated) fails. */
	if (strncmp(hash, crypto_pwhash_argon2id_STRPREFIX,
		    sizeof(crypto_pwhash_argon2id_STRPREFIX) - 1) != 0 ||
	    strnlen(hash, CRYPTO_PWHASH_STR_MAX) == CRYPTO_PWHASH_STR_MAX)
		return -1;
	crypto_count_argon2();
	return crypto_pwhash_str_verify(hash, password, len) == 0 ? 0 : -1;
}

/* ---- guarded keys ---- */

struct user_key *user_key_from_private(const unsigned char priv[CRYPTO_PRIVATE_KEY_BYTES])
{
	struct user_key *k;
	struct key_material *m;

	if (crypto_setup() < 0)
		return NULL;
	k = malloc(sizeof(*k));
	m = sodium_malloc(sizeof(*m));
	if (k == NULL || m == NULL) {
		free(k);
		if (m != NULL)
			sodium_free(m);
		return NULL;
	}
	memcpy(m->priv, priv, sizeof(m->priv));
	if (crypto_scalarmult_base(m->pub, m->priv) != 0) {
		sodium_free(m);
		free(k);
		return NULL;
	}
	/* Read-only from here on; readers in several threads never need to toggle it. */
	sodium_mprotect_readonly(m);
	atomic_init(&k->refs, 1);
	k->m = m;
	k->opened = key_cache_new();
	return k;
}

const unsigned char *user_key_private(const struct user_key *k)
{
	return k->m->priv;
}

const unsigned char *user_key_public(const struct user_key *k)
{
	return k->m->pub;
}

struct user_key *user_key_dup(const struct user_key *k)
{
	struct user_key *shared = (struct user_key *)k; /* only the count changes */

	if (shared == NULL)
		return NULL;
	atomic_fetch_add(&shared->refs, 1);
	return shared;
}

void user_key_free(struct user_key *k)
{
	if (k == NULL || atomic_fetch_sub(&k->refs, 1) != 1)
		return;
	key_cache_free(k->opened); /* wipes the content keys */
	sodium_free(k->m);	   /* makes the pages writable, wipes, unmaps */
	free(k);
}

struct key_cache *user_key_cache(const struct user_key *k)
{
	return k->opened;
}

size_t user_key_cached_keys(const struct user_key *k)
{
	return k != NULL ? key_cache_count(k->opened) : 0;
}

/* ---- wrapping the private key under a password ---- */

static void put_be64(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (unsigned char)(v & 0xff);
		v >>= 8;
	}
}

static uint64_t get_be64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

static int derive_wrap_key(unsigned char key[crypto_aead_xchacha20poly1305_ietf_KEYBYTES],
			   const char *password, size_t pwlen, const unsigned char *salt,
			   unsigned long long ops, size_t mem)
{
	crypto_count_argon2();
	return crypto_pwhash(key, crypto_aead_xchacha20poly1305_ietf_KEYBYTES, password, pwlen,
			     salt, ops, mem, crypto_pwhash_ALG_ARGON2ID13) == 0
		   ? 0
		   : -1;
}

static int wrap_private(const unsigned char *priv, const char *password, size_t pwlen,
			unsigned char **wrapped, size_t *wrapped_len)
{
	unsigned char key[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];
	unsigned long long ops;
	size_t mem;
	unsigned char *w;
	int rc = -1;

	if (password == NULL || wrapped == NULL || wrapped_len == NULL)
		return -1;
	w = malloc(WRAP_LEN);
	if (w == NULL)
		return -1;
	crypto_get_argon2_cost(&ops, &mem);
	w[0] = WRAP_VERSION;
	randombytes_buf(w + WRAP_SALT_OFF, crypto_pwhash_SALTBYTES);
	put_be64(w + WRAP_OPS_OFF, ops);
	put_be64(w + WRAP_MEM_OFF, mem);
	randombytes_buf(w + WRAP_NONCE_OFF, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
	if (derive_wrap_key(key, password, pwlen, w + WRAP_SALT_OFF, ops, mem) < 0)
		goto out;
	if (crypto_aead_xchacha20poly1305_ietf_encrypt(w + WRAP_HEADER_LEN, NULL, priv,
						       CRYPTO_PRIVATE_KEY_BYTES, w, WRAP_HEADER_LEN,
						       NULL, w + WRAP_NONCE_OFF, key) != 0)
		goto out;
	*wrapped = w;
	*wrapped_len = WRAP_LEN;
	w = NULL;
	rc = 0;
out:
	sodium_memzero(key, sizeof(key));
	free(w);
	return rc;
}

int crypto_user_keygen(const char *password, size_t pwlen, unsigned char pub[32],
		       unsigned char **wrapped, size_t *wrapped_len, struct user_key **key_out)
{
	unsigned char priv[crypto_box_SECRETKEYBYTES];
	unsigned char pk[crypto_box_PUBLICKEYBYTES];
	int rc = -1;

	if (crypto_setup() < 0 || pub == NULL)
		return -1;
	if (crypto_box_keypair(pk, priv) != 0)
		goto out;
	if (key_out != NULL) {
		*key_out = user_key_from_private(priv);
		if (*key_out == NULL)
			goto out;
	}
	if (wrap_private(priv, password, pwlen, wrapped, wrapped_len) < 0) {
		if (key_out != NULL) {
			user_key_free(*key_out);
			*key_out = NULL;
		}
		goto out;
	}
	memcpy(pub, pk, sizeof(pk));
	rc = 0;
out:
	sodium_memzero(priv, sizeof(priv));
	return rc;
}

int crypto_user_unlock(const unsigned char *wrapped, size_t wrapped_len, const char *password,
		       size_t pwlen, struct user_key **out)
{
	unsigned char key[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];
	unsigned char priv[CRYPTO_PRIVATE_KEY_BYTES];
	unsigned long long ops, priv_len;
	uint64_t mem;
	int rc = -1;

	if (out == NULL)
		return -1;
	*out = NULL;
	if (crypto_setup() < 0 || wrapped == NULL || password == NULL || wrapped_len != WRAP_LEN ||
	    wrapped[0] != WRAP_VERSION)
		return -1;
	ops = get_be64(wrapped + WRAP_OPS_OFF);
	mem = get_be64(wrapped + WRAP_MEM_OFF);
	/* A damaged or hostile row must not make us burn unbounded time or memory. */
	if (ops < CRYPTO_ARGON2_OPS_MIN || ops > CRYPTO_ARGON2_OPS_MAX ||
	    mem < CRYPTO_ARGON2_MEM_MIN || mem > CRYPTO_ARGON2_MEM_MAX)
		return -1;
	if (derive_wrap_key(key, password, pwlen, wrapped + WRAP_SALT_OFF, ops, (size_t)mem) < 0)
		goto out;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(
		priv, &priv_len, NULL, wrapped + WRAP_HEADER_LEN, wrapped_len - WRAP_HEADER_LEN,
		wrapped, WRAP_HEADER_LEN, wrapped + WRAP_NONCE_OFF, key) != 0 ||
	    priv_len != sizeof(priv))
		goto out;
	*out = user_key_from_private(priv);
	rc = *out != NULL ? 0 : -1;
out:
	sodium_memzero(key, sizeof(key));
	sodium_memzero(priv, sizeof(priv));
	return rc;
}

int crypto_user_rewrap(const struct user_key *k, const char *new_password, size_t pwlen,
		       unsigned char **wrapped, size_t *wrapped_len)
{
	if (k == NULL || crypto_setup() < 0)
		return -1;
	return wrap_private(k->m->priv, new_password, pwlen, wrapped, wrapped_len);
}

/* ---- organization recovery key ---- */

int crypto_recovery_keygen(unsigned char pub[32], unsigned char priv[32])
{
	if (crypto_setup() < 0 || pub == NULL || priv == NULL)
		return -1;
	return crypto_box_keypair(pub, priv) == 0 ? 0 : -1;
}

int crypto_recovery_seal(const struct user_key *k, const unsigned char recovery_pub[32],
			 unsigned char **out, size_t *out_len)
{
	unsigned char *s;

	if (k == NULL || recovery_pub == NULL || out == NULL || out_len == NULL ||
	    crypto_setup() < 0)
		return -1;
	s = malloc(RECOVERY_LEN);
	if (s == NULL)
		return -1;
	s[0] = RECOVERY_VERSION;
	if (crypto_box_seal(s + 1, k->m->priv, sizeof(k->m->priv), recovery_pub) != 0) {
		free(s);
		return -1;
	}
	*out = s;
	*out_len = RECOVERY_LEN;
	return 0;
}

int crypto_recovery_open(const unsigned char *sealed, size_t len,
			 const unsigned char recovery_pub[32],
			 const unsigned char recovery_priv[32], struct user_key **out)
{
	unsigned char priv[CRYPTO_PRIVATE_KEY_BYTES];

	if (out == NULL)
		return -1;
	*out = NULL;
	if (sealed == NULL || recovery_pub == NULL || recovery_priv == NULL ||
	    len != RECOVERY_LEN || sealed[0] != RECOVERY_VERSION || crypto_setup() < 0)
		return -1;
	if (crypto_box_seal_open(priv, sealed + 1, len - 1, recovery_pub, recovery_priv) != 0)
		return -1;
	*out = user_key_from_private(priv);
	sodium_memzero(priv, sizeof(priv));
	return *out != NULL ? 0 : -1;
}
