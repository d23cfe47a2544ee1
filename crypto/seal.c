/*
 * seal.c - message encryption at rest.
 *
 * Each message gets a fresh random content key. The message is encrypted with
 * it (XChaCha20-Poly1305) and the content key is sealed (crypto_box_seal) to
 * the owner's public key, so mail can be stored while the owner is away and
 * read only with the unlocked private key. Blob layout, version 1:
 *
 *   version (1) || sealed content key (48 + 32) || nonce (24) || ciphertext || tag (16)
 *
 * The version byte and the sealed key are the associated data of the AEAD, so
 * changing any byte of the blob (or swapping sealed keys between blobs) makes
 * crypto_open fail.
 */
#include "config.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "crypto/crypto.h"
#include "crypto/crypto_internal.h"

#define BLOB_VERSION 1
#define BLOB_SEALED_OFF 1
#define BLOB_SEALED_LEN (crypto_box_SEALBYTES + crypto_aead_xchacha20poly1305_ietf_KEYBYTES)
#define BLOB_NONCE_OFF (BLOB_SEALED_OFF + BLOB_SEALED_LEN)
#define BLOB_HEADER_LEN (BLOB_NONCE_OFF + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES)
#define BLOB_OVERHEAD (BLOB_HEADER_LEN + crypto_aead_xchacha20poly1305_ietf_ABYTES)
#define CONTENT_KEY_BYTES crypto_aead_xchacha20poly1305_ietf_KEYBYTES

int crypto_seal(const unsigned char pub[32], const void *msg, size_t len, unsigned char **blob,
		size_t *blob_len)
{
	unsigned char key[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];
	unsigned char *b;
	unsigned long long clen;
	int rc = -1;

	if (pub == NULL || blob == NULL || blob_len == NULL || (msg == NULL && len > 0) ||
	    crypto_setup() < 0)
		return -1;
	if (len > SIZE_MAX - BLOB_OVERHEAD ||
	    len > crypto_aead_xchacha20poly1305_ietf_MESSAGEBYTES_MAX)
		return -1;
	b = malloc(len + BLOB_OVERHEAD);
	if (b == NULL)
		return -1;
	crypto_aead_xchacha20poly1305_ietf_keygen(key);
	b[0] = BLOB_VERSION;
	if (crypto_box_seal(b + BLOB_SEALED_OFF, key, sizeof(key), pub) != 0)
		goto out;
	randombytes_buf(b + BLOB_NONCE_OFF, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
	if (crypto_aead_xchacha20poly1305_ietf_encrypt(b + BLOB_HEADER_LEN, &clen, msg, len, b,
						       BLOB_NONCE_OFF, NULL, b + BLOB_NONCE_OFF,
						       key) != 0)
		goto out;
	*blob = b;
	*blob_len = BLOB_HEADER_LEN + (size_t)clen;
	b = NULL;
	rc = 0;
out:
	sodium_memzero(key, sizeof(key));
	free(b);
	return rc;
}

/* Opens the content key sealed in a (well-framed) blob with K. */
static int open_content_key(const struct user_key *k, const unsigned char *blob,
			    unsigned char key[CONTENT_KEY_BYTES])
{
	if (crypto_box_seal_open(key, blob + BLOB_SEALED_OFF, BLOB_SEALED_LEN, user_key_public(k),
				 user_key_private(k)) != 0)
		return -1;
	return 0;
}

static int open_with_content_key(const unsigned char key[CONTENT_KEY_BYTES],
				 const unsigned char *blob, size_t blob_len, unsigned char **msg,
				 size_t *msg_len)
{
	unsigned char *m;
	unsigned long long mlen;
	size_t plen = blob_len - BLOB_OVERHEAD;

	m = malloc(plen > 0 ? plen : 1);
	if (m == NULL)
		return -1;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(
		m, &mlen, NULL, blob + BLOB_HEADER_LEN, blob_len - BLOB_HEADER_LEN, blob,
		BLOB_NONCE_OFF, blob + BLOB_NONCE_OFF, key) != 0 ||
	    mlen != plen) {
		sodium_memzero(m, plen);
		free(m);
		return -1;
	}
	*msg = m;
	*msg_len = plen;
	return 0;
}

/* ---- the content keys an unlocked user key has opened ----
 * Opening a sealed content key (an X25519 scalar multiplication) costs
 * several times the decryption of a typical message, and IMAP clients read
 * the same messages again and again (headers for the index, SEARCH). Each
 * user_key therefore keeps the content keys it opened, and they die with it:
 * whoever holds the unlocked private key can open them all anyway. Entries
 * are found by the blob's sealed key bytes themselves, never by a message id,
 * so an entry cannot stand for another blob's content (the same sealed bytes
 * always open to the same key), and the AEAD check runs on every open: a hit
 * accepts exactly what crypto_open() would. */
#define KEY_CACHE_MAX 8192 /* about 1 MB per user with a big mailbox */
#define KEY_CACHE_MIN 64

struct key_cache_entry {
	unsigned char sealed[BLOB_SEALED_LEN];
	unsigned char key[CONTENT_KEY_BYTES];
};

struct key_cache {
	pthread_mutex_t lock; /* sessions on several threads share a user's key */
	struct key_cache_entry *entries;
	size_t n, cap;
	uint32_t *index; /* open addressing: entry number + 1, 0 = free */
	size_t nslots;	 /* a power of two, at least 2 * cap */
};

struct key_cache *key_cache_new(void)
{
	struct key_cache *c = calloc(1, sizeof(*c));

	if (c != NULL && pthread_mutex_init(&c->lock, NULL) != 0) {
		free(c);
		c = NULL;
	}
	return c;
}

static void key_cache_clear(struct key_cache *c)
{
	if (c->entries != NULL) {
		sodium_memzero(c->entries, c->cap * sizeof(*c->entries));
		free(c->entries);
	}
	free(c->index);
	c->entries = NULL;
	c->index = NULL;
	c->n = c->cap = c->nslots = 0;
}

void key_cache_free(struct key_cache *c)
{
	if (c == NULL)
		return;
	key_cache_clear(c);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

size_t key_cache_count(struct key_cache *c)
{
	size_t n;

	if (c == NULL)
		return 0;
	pthread_mutex_lock(&c->lock);
	n = c->n;
	pthread_mutex_unlock(&c->lock);
	return n;
}

/* The sealed bytes start with a random ephemeral public key: a hash already. */
static size_t key_cache_slot(size_t nslots, const unsigned char *sealed)
{
	uint64_t h;

	memcpy(&h, sealed, sizeof(h));
	return (size_t)h & (nslots - 1);
}

/* The slot holding SEALED, or the free slot where it would go. */
static size_t key_cache_find(const struct key_cache *c, const unsigned char *sealed)
{
	size_t i = key_cache_slot(c->nslots, sealed);

	while (c->index[i] != 0 &&
	       memcmp(c->entries[c->index[i] - 1].sealed, sealed, BLOB_SEALED_LEN) != 0)
		i = (i + 1) & (c->nslots - 1);
	return i;
}

static bool key_cache_get(struct key_cache *c, const unsigned char *sealed, unsigned char *key)
{
	bool found = false;

	if (c == NULL)
		return false;
	pthread_mutex_lock(&c->lock);
	if (c->n > 0) {
		size_t i = key_cache_find(c, sealed);

		if (c->index[i] != 0) {
			memcpy(key, c->entries[c->index[i] - 1].key, CONTENT_KEY_BYTES);
			found = true;
		}
	}
	pthread_mutex_unlock(&c->lock);
	return found;
}

/* Doubles the room (entries and index); false when memory is short. */
static bool key_cache_grow(struct key_cache *c)
{
	size_t cap = c->cap ? 2 * c->cap : KEY_CACHE_MIN;
	size_t nslots = 2 * cap;
	struct key_cache_entry *entries = calloc(cap, sizeof(*entries));
	uint32_t *index = calloc(nslots, sizeof(*index));

	if (entries == NULL || index == NULL) {
		free(entries);
		free(index);
		return false;
	}
	if (c->n > 0)
		memcpy(entries, c->entries, c->n * sizeof(*entries));
	for (size_t e = 0; e < c->n; e++) {
		size_t i = key_cache_slot(nslots, entries[e].sealed);

		while (index[i] != 0)
			i = (i + 1) & (nslots - 1);
		index[i] = (uint32_t)(e + 1);
	}
	if (c->entries != NULL) {
		sodium_memzero(c->entries, c->cap * sizeof(*c->entries));
		free(c->entries);
	}
	free(c->index);
	c->entries = entries;
	c->index = index;
	c->cap = cap;
	c->nslots = nslots;
	return true;
}

static void key_cache_put(struct key_cache *c, const unsigned char *sealed,
			  const unsigned char *key)
{
	size_t i;

	if (c == NULL)
		return;
	pthread_mutex_lock(&c->lock);
	/* Full: start over rather than track recency. */
	if (c->n == KEY_CACHE_MAX)
		key_cache_clear(c);
	if (c->n == c->cap && !key_cache_grow(c))
		goto out; /* only a cache */
	i = key_cache_find(c, sealed);
	if (c->index[i] == 0) { /* another thread may have put it meanwhile */
		memcpy(c->entries[c->n].sealed, sealed, BLOB_SEALED_LEN);
		memcpy(c->entries[c->n].key, key, CONTENT_KEY_BYTES);
		c->index[i] = (uint32_t)(++c->n);
	}
out:
	pthread_mutex_unlock(&c->lock);
}

int crypto_open(const struct user_key *k, const unsigned char *blob, size_t blob_len,
		unsigned char **msg, size_t *msg_len)
{
	unsigned char key[CONTENT_KEY_BYTES];
	int rc;

	if (k == NULL || blob == NULL || msg == NULL || msg_len == NULL || crypto_setup() < 0)
		return -1;
	if (blob_len < BLOB_OVERHEAD || blob[0] != BLOB_VERSION)
		return -1;
	if (key_cache_get(user_key_cache(k), blob + BLOB_SEALED_OFF, key))
		rc = open_with_content_key(key, blob, blob_len, msg, msg_len);
	else {
		rc = open_content_key(k, blob, key);
		if (rc == 0)
			rc = open_with_content_key(key, blob, blob_len, msg, msg_len);
		/* Only a key that opened a whole blob is kept. */
		if (rc == 0)
			key_cache_put(user_key_cache(k), blob + BLOB_SEALED_OFF, key);
	}
	sodium_memzero(key, sizeof(key));
	return rc;
}
