/*
 * totp.c - RFC 6238 time-based one-time passwords over liboath (HMAC-SHA1,
 * 6 digits, 30-second steps), plus the otpauth:// URI authenticator apps read.
 *
 * Verification generates the codes of the steps around now itself rather
 * than asking liboath to validate, so it can compare in constant time and
 * learn which step matched: a step at or before the last accepted one is
 * refused, which makes every code single-use.
 */
#include "config.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <liboath/oath.h>
#include <sodium.h>

#include "otp/otp.h"
#include "otp/otp_int.h"

static pthread_once_t oath_once = PTHREAD_ONCE_INIT;
static int oath_ready = -1;

static void oath_start(void)
{
	oath_ready = oath_init() == OATH_OK ? 0 : -1;
}

int64_t totp_step(int64_t now)
{
	return now < 0 ? -1 : now / OTP_STEP_SECONDS;
}

bool totp_code_shape(const char *s, size_t len)
{
	if (s == NULL || len != OTP_DIGITS)
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

int totp_code_at_step(const unsigned char *secret, size_t len, int64_t step,
		      char out[OTP_DIGITS + 1])
{
	pthread_once(&oath_once, oath_start);
	if (oath_ready != 0 || secret == NULL || len == 0 || step < 0)
		return -1;
	/* liboath counts steps from the time it is given; hand it the step's first second. */
	if (oath_totp_generate((const char *)secret, len, (time_t)(step * OTP_STEP_SECONDS),
			       OTP_STEP_SECONDS, OATH_TOTP_DEFAULT_START_TIME, OTP_DIGITS,
			       out) != OATH_OK)
		return -1;
	out[OTP_DIGITS] = '\0';
	return 0;
}

int64_t totp_verify(const unsigned char *secret, size_t len, const char *code, int64_t now,
		    int64_t last_step)
{
	int64_t current = totp_step(now), found = -1;
	char expect[OTP_DIGITS + 1];

	if (!totp_code_shape(code, code != NULL ? strnlen(code, OTP_DIGITS + 1) : 0) || current < 0)
		return -1;
	/* Every step of the window is computed and compared, match or not. */
	for (int64_t step = current - OTP_WINDOW; step <= current + OTP_WINDOW; step++) {
		if (step < 0 || totp_code_at_step(secret, len, step, expect) != 0)
			continue;
		if (sodium_memcmp(expect, code, OTP_DIGITS) == 0 && step > last_step && found < 0)
			found = step;
	}
	sodium_memzero(expect, sizeof(expect));
	return found;
}

int totp_secret_base32(const unsigned char *secret, size_t len, char *out, size_t outlen)
{
	char *b32 = NULL;
	size_t n = 0, j = 0;

	pthread_once(&oath_once, oath_start);
	if (oath_ready != 0 || oath_base32_encode((const char *)secret, len, &b32, &n) != OATH_OK)
		return -1;
	for (size_t i = 0; i < n && b32[i] != '=' && b32[i] != '\0'; i++) {
		if (j + 1 >= outlen) {
			sodium_memzero(b32, n);
			free(b32);
			return -1;
		}
		out[j++] = b32[i];
	}
	out[j] = '\0';
	sodium_memzero(b32, n);
	free(b32);
	return 0;
}

static int uri_append(const char *s, char *out, size_t outlen, size_t *pos)
{
	size_t n = strlen(s);

	if (*pos + n >= outlen)
		return -1;
	memcpy(out + *pos, s, n + 1);
	*pos += n;
	return 0;
}

int totp_uri(const char *issuer, const char *account, const char *secret_b32, char *out,
	     size_t outlen)
{
	char tail[128];
	size_t pos = 0;

	if (outlen == 0)
		return -1;
	out[0] = '\0';
	snprintf(tail, sizeof(tail), "&algorithm=SHA1&digits=%d&period=%d", OTP_DIGITS,
		 OTP_STEP_SECONDS);
	if (uri_append("otpauth://totp/", out, outlen, &pos) ||
	    otp_uri_put(issuer, true, out, outlen, &pos) || uri_append(":", out, outlen, &pos) ||
	    otp_uri_put(account, true, out, outlen, &pos) ||
	    uri_append("?secret=", out, outlen, &pos) ||
	    otp_uri_put(secret_b32, true, out, outlen, &pos) ||
	    uri_append("&issuer=", out, outlen, &pos) ||
	    otp_uri_put(issuer, true, out, outlen, &pos) || uri_append(tail, out, outlen, &pos))
		return -1;
	return 0;
}
