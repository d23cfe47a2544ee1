/*
 * recovery_codes.c - single-use recovery codes printed at OTP enrolment.
 *
 * A code has 16 symbols of a 32-letter alphabet (80 random bits), so a fast
 * salted BLAKE2b-256 is enough to keep the stored form useless to a thief:
 * unlike a password, there is no dictionary to try. Comparison is constant
 * time and every stored hash is checked, match or not.
 */
#include "config.h"

#include <string.h>

#include <sodium.h>

#include "otp/otp.h"
#include "otp/otp_int.h"

#define RECOVERY_GROUPS 4

int recovery_codes_generate(struct otp_state *s,
			    char codes[OTP_RECOVERY_CODES][OTP_RECOVERY_CODE_LEN + 1])
{
	if (crypto_setup() != 0)
		return -1;
	for (size_t i = 0; i < OTP_RECOVERY_CODES; i++) {
		otp_random_code(codes[i], RECOVERY_GROUPS);
		randombytes_buf(s->recovery[i].salt, sizeof(s->recovery[i].salt));
		otp_code_hash(s->recovery[i].salt, codes[i], OTP_RECOVERY_CODE_LEN,
			      s->recovery[i].hash);
		s->recovery[i].used = false;
	}
	s->n_recovery = OTP_RECOVERY_CODES;
	return 0;
}

bool recovery_code_shape(const char *s, size_t len)
{
	return otp_code_shape(s, len, RECOVERY_GROUPS) != 0;
}

int recovery_code_consume(struct otp_state *s, const char *code, size_t len)
{
	char norm[OTP_RECOVERY_CODE_LEN + 1];
	unsigned char h[32];
	int found = -1;

	if (!recovery_code_shape(code, len))
		return -1;
	otp_code_normalize(code, len, norm);
	for (size_t i = 0; i < s->n_recovery; i++) {
		otp_code_hash(s->recovery[i].salt, norm, OTP_RECOVERY_CODE_LEN, h);
		if (sodium_memcmp(h, s->recovery[i].hash, sizeof(h)) == 0 && !s->recovery[i].used &&
		    found < 0)
			found = (int)i;
	}
	sodium_memzero(norm, sizeof(norm));
	if (found < 0)
		return -1;
	s->recovery[found].used = true;
	return 0;
}

size_t recovery_codes_left(const struct otp_state *s)
{
	size_t n = 0;

	for (size_t i = 0; i < s->n_recovery; i++)
		n += !s->recovery[i].used;
	return n;
}
