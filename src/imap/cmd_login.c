/*
 * cmd_login.c - LOGIN (RFC 3501 6.2.3) and AUTHENTICATE PLAIN (RFC 3501
 * 6.2.2, RFC 4616, SASL-IR of RFC 4959). Both run auth_login_request() on
 * the job pool (auth_login_async); a failure of any kind (unknown user,
 * wrong password, locked account) waits auth.failure_delay_ms and gets the
 * same reply. Credentials are refused before TLS (LOGINDISABLED).
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "auth/auth_async.h"
#include "imap/imap_int.h"
#include "trace/metrics.h"
#include "trace/trace.h"
#include "util/i18n.h"
#include "util/log.h"

#define IMAP_USER_MAX STORE_ADDRESS_MAX
#define IMAP_PASSWORD_MAX 1024

static void login_failed_reply(struct conn *c, void *arg)
{
	struct imap_session *s = arg;
	(void)c;

	if (conn_is_closing(s->c))
		return;
	imap_no(s, "[AUTHENTICATIONFAILED] Authentication failed");
	imap_continue_input(s);
}

static void login_done(struct conn *c, struct auth_login *l)
{
	struct imap_session *s = l->arg;
	char caps[IMAP_CAPABILITIES_MAX];
	(void)c;

	if (l->result == AUTH_OK) {
		s->id = l->id;
		memset(&l->id, 0, sizeof(l->id)); /* the session owns the key now */
		s->state = IMAP_STATE_AUTH;
		conn_set_user(s->c, s->id.address);
		trace_publish(conn_id(s->c), IMAP_PROTOCOL, s->id.address, TRACE_AUTH, 0, "ok");
		/* The same list CAPABILITY gives now (RFC 9051 7.1: the new capabilities). */
		imap_capabilities(s, caps, sizeof(caps));
		imap_ok(s, "[CAPABILITY %s] Logged in", caps);
		imap_continue_input(s);
		return;
	}
	if (l->result == AUTH_THROTTLED) {
		trace_publish(conn_id(s->c), IMAP_PROTOCOL, l->address, TRACE_AUTH, 0, "throttled");
		imap_no(s, "[UNAVAILABLE] Too many failed logins, try again later");
		imap_continue_input(s);
		return;
	}
	if (l->result == AUTH_TEMPFAIL) {
		log_warn(_("imap: login of %s failed temporarily"), l->address);
		imap_no(s, "[UNAVAILABLE] Cannot log in now, try again later");
		imap_continue_input(s);
		return;
	}
	trace_publish(conn_id(s->c), IMAP_PROTOCOL, l->address, TRACE_AUTH, 0, "failed");
	metrics_count(IMAP_PROTOCOL, "auth_failures", NULL, NULL, 1);
	if (s->cfg->auth.failure_delay_ms == 0 ||
	    conn_after(s->c, s->cfg->auth.failure_delay_ms, login_failed_reply, s) < 0)
		login_failed_reply(s->c, s);
}

static void login_begin(struct imap_session *s, const char *user, const char *password,
			size_t pwlen)
{
	struct auth_request req = {
	    .address = user, .password = password, .pwlen = pwlen, .protocol = "imap"};
	int rc;

	if (strlen(user) > IMAP_USER_MAX || pwlen > IMAP_PASSWORD_MAX) {
		imap_no(s, "[AUTHENTICATIONFAILED] Authentication failed");
		return;
	}
	s->busy = true;
	rc = auth_login_async(s->c, &req, NULL, login_done, s);
	if (rc < 0)
		s->busy = false;
	if (rc == -2)
		imap_no(s, "[AUTHENTICATIONFAILED] Authentication failed");
	else if (rc < 0)
		imap_no(s, "[UNAVAILABLE] Server busy, try again later");
}

static bool require_tls(struct imap_session *s)
{
	if (conn_is_tls(s->c))
		return true;
	imap_no(s, "[PRIVACYREQUIRED] Use STARTTLS or the implicit-TLS port before logging in");
	return false;
}

/* RFC 3501 6.2.3 */
void imap_cmd_login(struct imap_session *s, struct imap_command *cmd)
{
	if (cmd->n_args != 2 || !imap_arg_is_string(&cmd->args[0]) ||
	    !imap_arg_is_string(&cmd->args[1])) {
		imap_bad(s, "LOGIN needs a user name and a password");
		return;
	}
	if (!require_tls(s))
		return;
	if (strlen(cmd->args[0].str) != cmd->args[0].len) {
		imap_no(s, "[AUTHENTICATIONFAILED] Authentication failed");
		return;
	}
	login_begin(s, cmd->args[0].str, cmd->args[1].str, cmd->args[1].len);
	sodium_memzero(cmd->args[1].str, cmd->args[1].len);
}

static void sasl_plain(struct imap_session *s, const char *b64, size_t len)
{
	char user[IMAP_USER_MAX + 1];
	char pass[IMAP_PASSWORD_MAX + 1];
	size_t pwlen = 0;

	if (imap_sasl_plain_decode(b64, len, user, sizeof(user), pass, sizeof(pass), &pwlen) < 0) {
		sodium_memzero(pass, sizeof(pass));
		imap_bad(s, "Malformed SASL PLAIN response");
		return;
	}
	login_begin(s, user, pass, pwlen);
	sodium_memzero(pass, sizeof(pass));
}

/* RFC 3501 6.2.2, RFC 4959 */
void imap_cmd_authenticate(struct imap_session *s, struct imap_command *cmd)
{
	if (cmd->n_args < 1 || cmd->n_args > 2 || cmd->args[0].type != IMAP_ARG_ATOM) {
		imap_bad(s, "AUTHENTICATE needs a mechanism name");
		return;
	}
	if (!require_tls(s))
		return;
	if (strcasecmp(cmd->args[0].str, "PLAIN") != 0) {
		imap_no(s, "Unsupported authentication mechanism");
		return;
	}
	if (cmd->n_args == 2) {
		const struct imap_arg *ir = &cmd->args[1];
		if (ir->type != IMAP_ARG_ATOM) {
			imap_bad(s, "The initial response must be base64");
			return;
		}
		/* "=" is an empty initial response (RFC 4959 3). */
		if (strcmp(ir->str, "=") == 0)
			sasl_plain(s, "", 0);
		else
			sasl_plain(s, ir->str, ir->len);
		sodium_memzero(ir->str, ir->len);
		return;
	}
	s->sasl_wait = true;
	imap_printf(s, "+ \r\n");
}

void imap_sasl_response(struct imap_session *s, const char *line, size_t len)
{
	char redacted[64];

	s->sasl_wait = false;
	trace_redact_command(line, 1, redacted, sizeof(redacted));
	trace_publish(conn_id(s->c), IMAP_PROTOCOL, "", TRACE_COMMAND, 0, redacted);
	if (len == 1 && line[0] == '*') {
		imap_bad(s, "Authentication cancelled");
		return;
	}
	sasl_plain(s, line, len);
}
