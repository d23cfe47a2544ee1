/*
 * smtp_auth.c - SMTP AUTH (RFC 4954) with the PLAIN (RFC 4616, with or
 * without initial response) and LOGIN mechanisms. The credentials go to
 * auth_login_request() on the job pool (auth_login_async: Argon2id is
 * slow); a failure is answered only after [auth] failure_delay_ms, so
 * guessing is slow too. Credentials are wiped as soon as they are used and
 * never traced or logged.
 */
#include <config.h>

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "auth/auth.h"
#include "auth/auth_async.h"
#include "smtp/smtp_int.h"
#include "trace/metrics.h"
#include "trace/trace.h"

#define AUTH_DECODED_MAX (SMTP_AUTH_LINE_MAX * 3 / 4 + 4)
#define AUTH_PASSWORD_MAX 1024

/* Base64 (original alphabet, padded) into OUT; returns length or -1. */
static ssize_t b64_decode(const char *in, size_t len, unsigned char *out, size_t outlen)
{
	size_t n;

	if (len == 0)
		return 0;
	if (sodium_base642bin(out, outlen, in, len, NULL, &n, NULL,
			      sodium_base64_VARIANT_ORIGINAL) != 0)
		return -1;
	return (ssize_t)n;
}

static void auth_failed_reply(struct smtp_session *s)
{
	smtp_fail(s, 535, "5.7.8", "Authentication credentials invalid");
	smtp_resume(s);
}

/* A failed login: ADDRESS for the trace ("" when it was not a mailbox). */
static void login_failed(struct smtp_session *s, const char *address, enum auth_result result)
{
	trace_publish(conn_id(s->c), s->protocol, address, TRACE_AUTH, 0, "failed");
	metrics_count(s->protocol, "auth_failures", NULL, NULL, 1);
	if (result == AUTH_TEMPFAIL || result == AUTH_THROTTLED) {
		smtp_reply(s, "454 4.7.0 Temporary authentication failure");
		smtp_resume(s);
		return;
	}
	/* Stay busy during the delay: pipelined commands wait for the answer. */
	if (s->cfg->auth.failure_delay_ms == 0 ||
	    smtp_after(s, s->cfg->auth.failure_delay_ms, auth_failed_reply) < 0)
		auth_failed_reply(s);
}

static void login_done(struct conn *c, struct auth_login *l)
{
	struct smtp_session *s = l->arg;

	(void)c;
	if (l->result == AUTH_OK) {
		s->authenticated = true;
		s->user_id = l->id.user_id;
		snprintf(s->user, sizeof(s->user), "%s", l->id.address);
		conn_set_user(s->c, s->user);
		trace_publish(conn_id(s->c), s->protocol, s->user, TRACE_AUTH, 0, "ok");
		smtp_reply(s, "235 2.7.0 Authentication successful");
		smtp_resume(s);
		return;
	}
	login_failed(s, l->address, l->result);
}

/* Starts the login for ADDRESS/PASSWORD (both wiped by the caller). */
static void login_start(struct smtp_session *s, const char *address, size_t alen,
			const char *password, size_t pwlen)
{
	char lower[SMTP_PATH_MAX + 1];
	struct auth_request req = {
	    .address = lower, .password = password, .pwlen = pwlen, .protocol = "smtp"};
	struct smtp_error err;
	int rc;

	s->mode = SMTP_INPUT_COMMAND;
	s->busy = true;
	/* Not a mailbox: no account to check, the same failure after the same delay. */
	if (alen >= sizeof(lower) || pwlen > AUTH_PASSWORD_MAX || pwlen == 0 ||
	    memchr(address, '\0', alen) || smtp_check_mailbox(address, alen, true, &err) != 0) {
		login_failed(s, "", AUTH_FAILED);
		return;
	}
	for (size_t i = 0; i < alen; i++)
		lower[i] = (address[i] >= 'A' && address[i] <= 'Z') ? (char)(address[i] - 'A' + 'a')
								    : address[i];
	lower[alen] = '\0';
	rc = auth_login_async(s->c, &req, NULL, login_done, s);
	if (rc == -2) {
		login_failed(s, "", AUTH_FAILED);
	} else if (rc < 0) {
		s->busy = false;
		smtp_reply(s, "454 4.7.0 Temporary authentication failure");
	}
}

/*
 * The base64 response B64 decoded into a new buffer of AUTH_DECODED_MAX
 * bytes (its length in *N), to be given back with response_free(); NULL
 * when it cannot be, after the reply that ends the exchange.
 */
static unsigned char *response_decode(struct smtp_session *s, const char *b64, size_t len,
				      ssize_t *n)
{
	unsigned char *buf = malloc(AUTH_DECODED_MAX);

	if (!buf) {
		s->mode = SMTP_INPUT_COMMAND;
		smtp_reply(s, "454 4.7.0 Temporary authentication failure");
		return NULL;
	}
	*n = b64_decode(b64, len, buf, AUTH_DECODED_MAX);
	if (*n < 0) {
		s->mode = SMTP_INPUT_COMMAND;
		smtp_fail(s, 501, "5.5.2", "Invalid base64 data");
		sodium_memzero(buf, AUTH_DECODED_MAX);
		free(buf);
		return NULL;
	}
	return buf;
}

static void response_free(unsigned char *buf)
{
	sodium_memzero(buf, AUTH_DECODED_MAX);
	free(buf);
}

/* RFC 4616: [authzid] NUL authcid NUL passwd. */
static void plain_response(struct smtp_session *s, const char *b64, size_t len)
{
	const unsigned char *authzid, *authcid, *pw, *nul1, *nul2;
	ssize_t n;
	unsigned char *buf = response_decode(s, b64, len, &n);

	if (!buf)
		return;
	nul1 = memchr(buf, '\0', (size_t)n);
	nul2 = nul1 ? memchr(nul1 + 1, '\0', (size_t)(buf + n - nul1 - 1)) : NULL;
	if (!nul2) {
		s->mode = SMTP_INPUT_COMMAND;
		smtp_fail(s, 501, "5.5.2", "Malformed PLAIN response");
		goto out;
	}
	authzid = buf;
	authcid = nul1 + 1;
	pw = nul2 + 1;
	/* Acting for someone else is not offered: authzid is empty or the user. */
	if (nul1 != authzid && ((size_t)(nul1 - authzid) != (size_t)(nul2 - authcid) ||
				memcmp(authzid, authcid, (size_t)(nul1 - authzid)) != 0)) {
		s->mode = SMTP_INPUT_COMMAND;
		smtp_fail(s, 535, "5.7.8", "Authentication credentials invalid");
		goto out;
	}
	login_start(s, (const char *)authcid, (size_t)(nul2 - authcid), (const char *)pw,
		    (size_t)(buf + n - pw));
out:
	response_free(buf);
}

/* LOGIN: the user name (from the first prompt or the initial response). */
static void login_user(struct smtp_session *s, const char *b64, size_t len)
{
	unsigned char buf[SMTP_PATH_MAX + 4];
	ssize_t n = b64_decode(b64, len, buf, sizeof(buf) - 1);

	if (n <= 0 || (size_t)n > SMTP_PATH_MAX) {
		s->mode = SMTP_INPUT_COMMAND;
		smtp_fail(s, 501, "5.5.2", "Invalid user name");
		return;
	}
	memcpy(s->login_user, buf, (size_t)n);
	s->login_user[n] = '\0';
	sodium_memzero(buf, sizeof(buf));
	s->mode = SMTP_INPUT_AUTH_PASS;
	smtp_reply(s, "334 UGFzc3dvcmQ6"); /* "Password:" */
}

static void login_pass(struct smtp_session *s, const char *b64, size_t len)
{
	ssize_t n;
	unsigned char *buf = response_decode(s, b64, len, &n);

	if (buf) {
		login_start(s, s->login_user, strlen(s->login_user), (const char *)buf, (size_t)n);
		response_free(buf);
	}
	sodium_memzero(s->login_user, sizeof(s->login_user));
}

void smtp_auth_start(struct smtp_session *s, const struct smtp_command *cmd)
{
	bool plain = strcmp(cmd->mechanism, "PLAIN") == 0;

	if (plain) {
		if (cmd->has_initial) {
			plain_response(s, cmd->initial, cmd->initial_len);
			return;
		}
		s->mode = SMTP_INPUT_AUTH_PLAIN;
		smtp_reply(s, "334 ");
		return;
	}
	if (cmd->has_initial) {
		login_user(s, cmd->initial, cmd->initial_len);
		return;
	}
	s->mode = SMTP_INPUT_AUTH_USER;
	smtp_reply(s, "334 VXNlcm5hbWU6"); /* "Username:" */
}

void smtp_auth_continue(struct smtp_session *s, const char *line, size_t len)
{
	char redacted[64];

	trace_redact_command(line, 1, redacted, sizeof(redacted));
	trace_publish(conn_id(s->c), s->protocol, smtp_session_user(s), TRACE_COMMAND, 0, redacted);
	if (len == 1 && line[0] == '*') {
		s->mode = SMTP_INPUT_COMMAND;
		sodium_memzero(s->login_user, sizeof(s->login_user));
		smtp_fail(s, 501, "5.0.0", "Authentication cancelled");
		return;
	}
	switch (s->mode) {
	case SMTP_INPUT_AUTH_PLAIN:
		plain_response(s, line, len);
		return;
	case SMTP_INPUT_AUTH_USER:
		login_user(s, line, len);
		return;
	case SMTP_INPUT_AUTH_PASS:
		login_pass(s, line, len);
		return;
	default:
		s->mode = SMTP_INPUT_COMMAND;
		return;
	}
}
