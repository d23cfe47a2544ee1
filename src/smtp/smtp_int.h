/*
 * smtp_int.h - the SMTP session shared by smtp_session.c (state machine and
 * commands), smtp_auth.c (SASL PLAIN/LOGIN) and smtp_deliver.c (hand-off of
 * a finished message to src/deliver). Not for other layers.
 */
#ifndef SMTP_SMTP_INT_H
#define SMTP_SMTP_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "net/net.h"
#include "smtp/smtp.h"
#include "store/store.h"
#include "util/config.h"

/* Defaults when the config leaves a limit at 0. */
#define SMTP_DEFAULT_MAX_RECIPIENTS 100
#define SMTP_DEFAULT_MAX_ERRORS 10
#define SMTP_DEFAULT_MAX_MESSAGE (36700160u)
/* RFC 5321 4.5.3.1.6: a text line is at most 1000 octets; we never go below. */
#define SMTP_MIN_DATA_LINE 1000
/* BDAT chunks are moved from the input in pieces of this size. */
#define SMTP_BDAT_PIECE 65536

/* Session states: bits, so a command can name every state it is valid in. */
enum smtp_state {
	SMTP_STATE_INIT = 1 << 0, /* connected, no EHLO/HELO yet */
	SMTP_STATE_HELO = 1 << 1, /* greeted, no transaction */
	SMTP_STATE_MAIL = 1 << 2, /* MAIL accepted */
	SMTP_STATE_RCPT = 1 << 3, /* at least one RCPT accepted */
};

/* What the next input bytes are. */
enum smtp_input_mode {
	SMTP_INPUT_COMMAND = 0,
	SMTP_INPUT_DATA,       /* DATA lines until CRLF.CRLF */
	SMTP_INPUT_BDAT,       /* BDAT chunk bytes */
	SMTP_INPUT_AUTH_PLAIN, /* the PLAIN response after "334 " */
	SMTP_INPUT_AUTH_USER,  /* LOGIN user name */
	SMTP_INPUT_AUTH_PASS,  /* LOGIN password */
};

struct smtp_rcpt {
	char address[SMTP_PATH_MAX + 1]; /* lower-cased */
	char notify[32];		 /* "SUCCESS,FAILURE" or "" */
	char orcpt[SMTP_ORCPT_MAX + 1];
	bool local;
};

struct smtp_session {
	struct conn *c;
	const struct config *cfg;
	const char *protocol; /* "smtp" or "submission" */
	bool submission;

	enum smtp_state state;
	enum smtp_input_mode mode;
	bool busy;     /* a deferred job or the login delay runs */
	bool in_input; /* smtp_input is on the stack */

	char helo[SMTP_ARG_MAX + 1];
	bool esmtp;

	/* authentication */
	bool authenticated;
	int64_t user_id;
	char user[STORE_ADDRESS_MAX + 1];
	char login_user[SMTP_PATH_MAX + 1]; /* AUTH LOGIN between the two prompts */

	/* transaction */
	char sender[SMTP_PATH_MAX + 1];
	bool smtputf8;
	char ret[5];
	char envid[SMTP_ENVID_MAX + 1];
	struct smtp_rcpt *rcpts;
	size_t n_rcpts, cap_rcpts;
	struct smtp_data data;
	bool data_started; /* a DATA or BDAT body is being collected */
	bool bdat_used;	   /* BDAT started this transaction (DATA not allowed) */
	uint64_t bdat_remaining;
	bool bdat_last;
	bool bdat_discard; /* chunk is read and thrown away, then ERR is sent */
	struct smtp_error bdat_err;
	unsigned transactions;

	/* limits */
	unsigned errors;
	unsigned max_errors;
	unsigned max_recipients;
	size_t max_message;
	size_t max_data_line;

	/* the command being answered */
	enum smtp_verb verb;
	uint64_t cmd_start;

	char *line;	      /* command line buffer, SMTP_AUTH_LINE_MAX + 2 */
	unsigned char *piece; /* DATA segment / BDAT piece buffer */
	size_t piece_max;

	void (*timer_fn)(struct smtp_session *s); /* the pending smtp_after() */
};

/* smtp_session.c */
void smtp_reply(struct smtp_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A refusal that counts against max_errors (closes the session at the limit). */
void smtp_fail(struct smtp_session *s, int code, const char *status, const char *text);
void smtp_fail_error(struct smtp_session *s, const struct smtp_error *err);
void smtp_resume(struct smtp_session *s);
void smtp_reset_transaction(struct smtp_session *s);
int smtp_after(struct smtp_session *s, unsigned msec, void (*fn)(struct smtp_session *s));
uint64_t smtp_now_usec(void);
const char *smtp_session_user(struct smtp_session *s);

/* smtp_auth.c: AUTH PLAIN/LOGIN (RFC 4954) */
void smtp_auth_start(struct smtp_session *s, const struct smtp_command *cmd);
/* A continuation line in one of the SMTP_INPUT_AUTH_* modes. */
void smtp_auth_continue(struct smtp_session *s, const char *line, size_t len);

/* smtp_deliver.c: runs src/deliver for the collected message (takes it). */
void smtp_deliver_start(struct smtp_session *s);

#endif
