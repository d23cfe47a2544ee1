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

int crypto_open(const struct user_key *k, const unsigned char *blob, size_t blob_len,
		unsigned char **msg, size_t *msg_len)
{
	unsigned char key[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];
	unsigned char *m = NULL;
	unsigned long long mlen;
	size_t plen;
	int rc = -1;

	if (k == NULL || blob == NULL || msg == NULL || msg_len == NULL || crypto_setup() < 0)
		return -1;
	if (blob_len < BLOB_OVERHEAD || blob[0] != BLOB_VERSION)
		return -1;
	if (crypto_box_seal_open(key, blob + BLOB_SEALED_OFF, BLOB_SEALED_LEN, user_key_public(k),
				 user_key_private(k)) != 0)
		goto out;
	plen = blob_len - BLOB_OVERHEAD;
	m = malloc(plen > 0 ? plen : 1);
	if (m == NULL)
		goto out;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(
		m, &mlen, NULL, blob + BLOB_HEADER_LEN, blob_len - BLOB_HEADER_LEN, blob,
		BLOB_NONCE_OFF, blob + BLOB_NONCE_OFF, key) != 0 ||
	    mlen != plen)
		goto out;
	*msg = m;
	*msg_len = plen;
	m = NULL;
	rc = 0;
out:
	sodium_memzero(key, sizeof(key));
	free(m);
	return rc;
}
