/*
 * stego_int.h - functions shared inside stego/ (payload.c <-> embed.c).
 */
#ifndef POSTERN_STEGO_INT_H
#define POSTERN_STEGO_INT_H

#include <stddef.h>

#include "stego/stego.h"

/* Bytes of the length field that precedes the body in the carrier bits. */
#define STEGO_LENGTH_BYTES 4u

/* Encrypts MSG into *BODY (malloc'd). */
int stego_payload_seal(const struct stego_secret *secret, const unsigned char encrypt[32],
		       const void *msg, size_t len, unsigned char **body, size_t *body_len);
/* Decrypts BODY; STEGO_ERR_NO_MESSAGE on a wrong key or tampering. */
int stego_payload_open(const struct stego_secret *secret, const unsigned char encrypt[32],
		       const unsigned char *body, size_t body_len, unsigned char **msg,
		       size_t *msg_len);
/* Length field plus encryption overhead. */
size_t stego_payload_overhead(enum stego_mode mode);

#endif
