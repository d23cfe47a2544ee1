/*
 * payload.c - the cryptography of a hidden message (libsodium).
 *
 * Two secrets are possible. A password goes through Argon2id (fixed cost,
 * part of the format) with a salt bound to the image's shape; the 64-byte
 * result is split into the locating key (which positions carry bits) and
 * the XChaCha20-Poly1305 key; each embedding draws a fresh random nonce. A
 * recipient's X25519 public key locates the bits through a BLAKE2b hash of
 * the key, and the message is sealed to it with crypto_seal (crypto.h), so
 * only the holder of the unlocked private key can open it. Either way the
 * body is authenticated: a wrong key and an altered image both fail.
 */
#include <config.h>

#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "stego/stego.h"
#include "stego/stego_int.h"

/* Argon2id cost of a stego password: fixed, since the extractor must reproduce it. */
#define STEGO_ARGON2_OPS 3ULL
#define STEGO_ARGON2_MEM (64UL * 1024 * 1024)

static const char salt_label[] = "postern-stego-v1";
static const char locate_label[] = "postern-stego-locate-v1";
static const unsigned char aead_ad[] = "postern-stego-message-v1";

/* 16 bytes bound to the image's shape, so a precomputed table serves one size only. */
static void shape_salt(const struct stego_image *img, unsigned char salt[16])
{
	crypto_generichash_state st;
	unsigned char shape[10];

	shape[0] = (unsigned char)(img->width >> 24);
	shape[1] = (unsigned char)(img->width >> 16);
	shape[2] = (unsigned char)(img->width >> 8);
	shape[3] = (unsigned char)img->width;
	shape[4] = (unsigned char)(img->height >> 24);
	shape[5] = (unsigned char)(img->height >> 16);
	shape[6] = (unsigned char)(img->height >> 8);
	shape[7] = (unsigned char)img->height;
	shape[8] = (unsigned char)img->channels;
	shape[9] = (unsigned char)img->bit_depth;
	crypto_generichash_init(&st, NULL, 0, 16);
	crypto_generichash_update(&st, (const unsigned char *)salt_label, sizeof(salt_label) - 1);
	crypto_generichash_update(&st, shape, sizeof(shape));
	crypto_generichash_final(&st, salt, 16);
}

int stego_derive_keys(const struct stego_image *img, const struct stego_secret *secret,
		      const unsigned char *public_key, unsigned char locate[32],
		      unsigned char encrypt[32])
{
	unsigned char salt[16];

	if (sodium_init() < 0)
		return STEGO_ERR_CRYPTO;
	shape_salt(img, salt);
	if (secret->mode == STEGO_PASSWORD) {
		unsigned char out[64];

		if (secret->password == NULL || secret->password_len == 0)
			return STEGO_ERR_ARG;
		if (crypto_pwhash(out, sizeof(out), secret->password, secret->password_len, salt,
				  STEGO_ARGON2_OPS, STEGO_ARGON2_MEM,
				  crypto_pwhash_ALG_ARGON2ID13) != 0)
			return STEGO_ERR_NOMEM;
		memcpy(locate, out, 32);
		memcpy(encrypt, out + 32, 32);
		sodium_memzero(out, sizeof(out));
		return STEGO_OK;
	}
	if (public_key == NULL)
		return STEGO_ERR_ARG;
	{
		crypto_generichash_state st;

		crypto_generichash_init(&st, public_key, CRYPTO_PUBLIC_KEY_BYTES, 32);
		crypto_generichash_update(&st, (const unsigned char *)locate_label,
					  sizeof(locate_label) - 1);
		crypto_generichash_update(&st, salt, sizeof(salt));
		crypto_generichash_final(&st, locate, 32);
	}
	memset(encrypt, 0, 32);
	return STEGO_OK;
}

int stego_payload_seal(const struct stego_secret *secret, const unsigned char encrypt[32],
		       const void *msg, size_t len, unsigned char **body, size_t *body_len)
{
	if (secret->mode == STEGO_PUBLIC_KEY) {
		if (crypto_seal(secret->public_key, msg, len, body, body_len) != 0)
			return STEGO_ERR_CRYPTO;
		return STEGO_OK;
	}
	{
		size_t n = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + len +
			   crypto_aead_xchacha20poly1305_ietf_ABYTES;
		unsigned char *b;
		unsigned long long clen;

		if (len > SIZE_MAX - 64)
			return STEGO_ERR_TOO_SMALL;
		b = malloc(n);
		if (b == NULL)
			return STEGO_ERR_NOMEM;
		randombytes_buf(b, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
		if (crypto_aead_xchacha20poly1305_ietf_encrypt(
			b + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, &clen, msg, len, aead_ad,
			sizeof(aead_ad) - 1, NULL, b, encrypt) != 0) {
			free(b);
			return STEGO_ERR_CRYPTO;
		}
		*body = b;
		*body_len = n;
		return STEGO_OK;
	}
}

int stego_payload_open(const struct stego_secret *secret, const unsigned char encrypt[32],
		       const unsigned char *body, size_t body_len, unsigned char **msg,
		       size_t *msg_len)
{
	const size_t head = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
	unsigned long long mlen;
	unsigned char *m;

	if (secret->mode == STEGO_PUBLIC_KEY) {
		if (crypto_open(secret->user_key, body, body_len, msg, msg_len) != 0)
			return STEGO_ERR_NO_MESSAGE;
		return STEGO_OK;
	}
	if (body_len < head + crypto_aead_xchacha20poly1305_ietf_ABYTES)
		return STEGO_ERR_NO_MESSAGE;
	m = malloc(body_len - head - crypto_aead_xchacha20poly1305_ietf_ABYTES + 1);
	if (m == NULL)
		return STEGO_ERR_NOMEM;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(m, &mlen, NULL, body + head, body_len - head,
						       aead_ad, sizeof(aead_ad) - 1, body,
						       encrypt) != 0) {
		free(m);
		return STEGO_ERR_NO_MESSAGE;
	}
	*msg = m;
	*msg_len = (size_t)mlen;
	return STEGO_OK;
}

size_t stego_payload_overhead(enum stego_mode mode)
{
	return mode == STEGO_PASSWORD ? STEGO_PASSWORD_OVERHEAD : STEGO_SEAL_OVERHEAD;
}
