/*
 * otp_int.h - helpers shared inside otp/: the JSON blobs kept in
 * store_user_data and base64 fields within them.
 */
#ifndef POSTERN_OTP_INT_H
#define POSTERN_OTP_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "store/store.h"

/* Loads the JSON object of KIND: STORE_OK (*OUT owned by the caller), STORE_NOTFOUND, STORE_ERR. */
int otp_blob_load(struct store *st, int64_t user_id, const char *kind, json_t **out);
/* Stores OBJ as KIND (OBJ stays the caller's). */
int otp_blob_save(struct store *st, int64_t user_id, const char *kind, json_t *obj);
/* A JSON string holding base64 of BIN (NULL on failure). */
json_t *otp_json_b64(const unsigned char *bin, size_t len);
/* Decodes the base64 string member KEY of OBJ into a malloc'd *OUT. 0 or -1. */
int otp_json_get_b64(json_t *obj, const char *key, unsigned char **out, size_t *len);
/* Decodes member KEY into exactly LEN bytes at OUT. 0 or -1. */
int otp_json_get_b64_fixed(json_t *obj, const char *key, unsigned char *out, size_t len);
/* Copies string member KEY into OUT (bounded). 0, or -1 when missing or too long. */
int otp_json_get_str(json_t *obj, const char *key, char *out, size_t outlen);
int64_t otp_json_get_int(json_t *obj, const char *key);

/* Fills OUT with LEN random symbols of the 32-letter alphabet grouped by four
 * with dashes ("abcd-efgh-..."); OUTLEN must hold them and a NUL. */
void otp_random_code(char *out, size_t groups);
/* True when S (LEN bytes) is GROUPS groups of four code symbols joined by dashes. */
int otp_code_shape(const char *s, size_t len, size_t groups);
/* Lower-cases a code of LEN bytes into OUT (LEN + 1 bytes). */
void otp_code_normalize(const char *s, size_t len, char *out);
/* The salted BLAKE2b-256 hash of the LEN bytes of CODE (a one-time or recovery code): what
 * is stored in place of the code. */
void otp_code_hash(const unsigned char salt[16], const char *code, size_t len,
		   unsigned char out[32]);
/* Appends S to OUT at *POS, percent-encoded when ESCAPE (all but the RFC 3986
 * unreserved characters). 0, or -1 when OUTLEN is too small. */
int otp_uri_put(const char *s, bool escape, char *out, size_t outlen, size_t *pos);

#endif
