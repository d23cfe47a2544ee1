/*
 * password_policy.c - what a new password must be: long enough and not
 * found by cracklib's dictionary check (FascistCheck, Debian libcrack2).
 *
 * cracklib keeps static state, so calls are serialized. Its verdicts are
 * English phrases; they are shown after our own translated sentence.
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <crack.h>

#include "auth/auth.h"
#include "util/i18n.h"

#define PASSWORD_POLICY_MAX 1024 /* longer than this is refused, as at login */

static pthread_mutex_t crack_lock = PTHREAD_MUTEX_INITIALIZER;

int auth_password_acceptable(const char *pw, char *why, size_t len)
{
	const char *verdict;
	size_t n;

	if (why != NULL && len > 0)
		why[0] = '\0';
	if (pw == NULL)
		return 0;
	n = strnlen(pw, PASSWORD_POLICY_MAX + 1);
	if (n > PASSWORD_POLICY_MAX) {
		if (why != NULL)
			snprintf(why, len, _("the password is longer than %d bytes"),
				 PASSWORD_POLICY_MAX);
		return 0;
	}
	/* Characters, not bytes: count every byte that does not continue a UTF-8 sequence. */
	size_t chars = 0;
	for (size_t i = 0; i < n; i++)
		chars += ((unsigned char)pw[i] & 0xC0) != 0x80;
	if (chars < AUTH_PASSWORD_MIN_LENGTH) {
		if (why != NULL)
			snprintf(why, len, _("the password must have at least %d characters"),
				 AUTH_PASSWORD_MIN_LENGTH);
		return 0;
	}
	pthread_mutex_lock(&crack_lock);
	verdict = FascistCheck(pw, GetDefaultCracklibDict());
	if (verdict != NULL && why != NULL)
		snprintf(why, len, _("the password is too easy to guess (%s)"), verdict);
	pthread_mutex_unlock(&crack_lock);
	return verdict == NULL;
}
