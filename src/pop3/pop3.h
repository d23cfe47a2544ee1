/*
 * pop3.h - the POP3 server (RFC 1939 with CAPA/RESP-CODES of RFC 2449, STLS
 * of RFC 2595 and SASL PLAIN of RFC 5034).
 *
 * pop3_parse.c turns one command line into a struct pop3_command (pure, no
 * I/O, fuzzed by tests/fuzz/fuzz_pop3_parse.c); pop3_format.c holds the pure
 * output helpers (dot-stuffing, TOP cut, SASL PLAIN decoding);
 * pop3_session.c is the state machine wired to src/net; pop3_maildrop.c
 * takes the snapshot of INBOX at login and expunges at QUIT.
 */
#ifndef POP3_POP3_H
#define POP3_POP3_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* RFC 2449 4: a command line is at most 255 octets with CRLF, except AUTH
 * (RFC 5034: the initial response may be longer). */
#define POP3_COMMAND_MAX 255
#define POP3_AUTH_LINE_MAX 2048
/* USER carries an address; PASS a password (which may contain spaces). */
#define POP3_USER_MAX 320
#define POP3_PASSWORD_MAX 1024
#define POP3_MECHANISM_MAX 20

enum pop3_verb {
	POP3_CMD_CAPA = 0,
	POP3_CMD_STLS,
	POP3_CMD_USER,
	POP3_CMD_PASS,
	POP3_CMD_AUTH,
	POP3_CMD_STAT,
	POP3_CMD_LIST,
	POP3_CMD_RETR,
	POP3_CMD_DELE,
	POP3_CMD_NOOP,
	POP3_CMD_RSET,
	POP3_CMD_TOP,
	POP3_CMD_UIDL,
	POP3_CMD_QUIT,
	POP3_CMD_APOP, /* recognised so that it gets a precise refusal */
	POP3_CMD_COUNT
};

enum pop3_parse_status {
	POP3_PARSE_OK = 0,
	POP3_PARSE_EMPTY,	/* blank line */
	POP3_PARSE_UNKNOWN,	/* no such command */
	POP3_PARSE_MISSING_ARG, /* a required argument is missing */
	POP3_PARSE_EXTRA_ARG,	/* more arguments than the command takes */
	POP3_PARSE_BAD_NUMBER,	/* not a decimal number in range */
	POP3_PARSE_TOO_LONG,	/* an argument or the line exceeds its limit */
	POP3_PARSE_BAD_CHAR,	/* NUL or a control character */
};

struct pop3_command {
	enum pop3_verb verb;
	bool has_msg;	/* LIST and UIDL take an optional message number */
	uint32_t msg;	/* 1-based message number */
	uint32_t lines; /* TOP */
	/* USER: the name; PASS: the whole rest of the line; AUTH: the initial
	 * response (empty when absent). Pointers into the parsed line. */
	const char *arg;
	size_t arg_len;
	char mechanism[POP3_MECHANISM_MAX + 1]; /* AUTH, upper-cased; "" when absent */
	bool has_initial;			/* AUTH with an initial response */
};

/* The canonical upper-case name of VERB ("RETR"). */
const char *pop3_verb_name(enum pop3_verb verb);

/*
 * Parses LINE (LEN bytes, without CRLF; need not be NUL-terminated) into
 * OUT. Returns POP3_PARSE_OK or the reason it is malformed; OUT->verb is
 * set whenever the verb was recognised, even on an argument error.
 */
enum pop3_parse_status pop3_parse(const char *line, size_t len, struct pop3_command *out);

/* English text for a parse error, for "-ERR <text>". */
const char *pop3_parse_error(enum pop3_parse_status status);

/* ---- pure output helpers (pop3_format.c) ---- */

/*
 * Dot-stuffing for multi-line replies (RFC 1939 3): copies IN to OUT,
 * doubling a "." that starts a line. *AT_LINE_START carries the state
 * across calls (start with true). Consumes as much of IN as fits in OUTCAP
 * and returns the bytes consumed; *OUT_LEN gets the bytes written. Needs
 * OUTCAP >= 2 to make progress.
 */
size_t pop3_dot_stuff(const unsigned char *in, size_t len, bool *at_line_start, unsigned char *out,
		      size_t outcap, size_t *out_len);

/* Length of the prefix of MSG that TOP sends: the header, the blank line and
 * at most LINES lines of the body (RFC 1939 7). */
size_t pop3_top_length(const unsigned char *msg, size_t len, uint32_t lines);

/*
 * Decodes a SASL PLAIN response (base64 of authzid NUL authcid NUL passwd).
 * Writes the user into USER (NUL-terminated, USERCAP bytes) and the
 * password into PASS (PASSCAP bytes, NUL-terminated, length in *PASS_LEN).
 * A non-empty authzid different from authcid is refused (no proxy logins).
 * Returns 0, or -1 when the response is malformed. Wipes its scratch copy.
 */
int pop3_sasl_plain_decode(const char *b64, size_t b64_len, char *user, size_t usercap, char *pass,
			   size_t passcap, size_t *pass_len);

/* ---- server ---- */

/* Registers the "pop3" protocol with src/net. */
void pop3_register(void);

#endif
