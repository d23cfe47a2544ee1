/*
 * smtp.h - the SMTP server: MX ("smtp") and submission ("submission"),
 * RFC 5321 with PIPELINING, SIZE, 8BITMIME, SMTPUTF8, ENHANCEDSTATUSCODES,
 * STARTTLS, AUTH PLAIN/LOGIN, CHUNKING and DSN.
 *
 * smtp_parse.c turns one command line into a struct smtp_command or a
 * precise error (pure, no I/O, fuzzed by tests/fuzz/fuzz_smtp_parse.c);
 * smtp_data.c is the pure DATA reader (dot-unstuffing, CRLF.CRLF only);
 * smtp_session.c is the state machine wired to src/net; smtp_auth.c the
 * SASL exchanges; smtp_deliver.c hands a finished message to src/deliver.
 */
#ifndef SMTP_SMTP_H
#define SMTP_SMTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* RFC 5321 4.5.3.1: limits on the parts of a command. */
#define SMTP_LOCAL_PART_MAX 64
#define SMTP_DOMAIN_MAX 255
#define SMTP_PATH_MAX 256    /* reverse-path / forward-path, brackets included */
#define SMTP_COMMAND_MAX 512 /* command line, CRLF included */
/* RFC 4954 4: an AUTH line (with the initial response) may be up to 12288 octets. */
#define SMTP_AUTH_LINE_MAX 12288
#define SMTP_MECHANISM_MAX 20
#define SMTP_ENVID_MAX 100 /* RFC 3461 4.4 */
#define SMTP_ORCPT_MAX 500 /* RFC 3461 4.2 */
#define SMTP_ARG_MAX 255   /* EHLO/HELO domain, VRFY, HELP, NOOP argument */

enum smtp_verb {
	SMTP_CMD_EHLO = 0,
	SMTP_CMD_HELO,
	SMTP_CMD_MAIL,
	SMTP_CMD_RCPT,
	SMTP_CMD_DATA,
	SMTP_CMD_BDAT,
	SMTP_CMD_RSET,
	SMTP_CMD_NOOP,
	SMTP_CMD_QUIT,
	SMTP_CMD_HELP,
	SMTP_CMD_VRFY,
	SMTP_CMD_STARTTLS,
	SMTP_CMD_AUTH,
	SMTP_CMD_COUNT
};

enum smtp_body { SMTP_BODY_NONE = 0, SMTP_BODY_7BIT, SMTP_BODY_8BITMIME };

/* DSN NOTIFY (RFC 3461 4.1) bits; NEVER excludes the others. */
enum smtp_notify {
	SMTP_NOTIFY_NEVER = 1 << 0,
	SMTP_NOTIFY_SUCCESS = 1 << 1,
	SMTP_NOTIFY_FAILURE = 1 << 2,
	SMTP_NOTIFY_DELAY = 1 << 3,
};

struct smtp_command {
	enum smtp_verb verb;
	/* EHLO/HELO domain, VRFY/HELP/NOOP argument (may be empty). */
	char arg[SMTP_ARG_MAX + 1];
	/* MAIL/RCPT: the mailbox without brackets and source route; "" for the
	 * null reverse-path <>. */
	char address[SMTP_PATH_MAX + 1];
	bool address_utf8; /* the address has non-ASCII characters */
	/* MAIL parameters */
	bool has_size;
	uint64_t size;
	enum smtp_body body;
	bool smtputf8;
	char ret[5];			    /* "FULL", "HDRS" or "" */
	char envid[SMTP_ENVID_MAX + 1];	    /* xtext as received, or "" */
	char auth_param[SMTP_PATH_MAX + 1]; /* MAIL AUTH= (xtext) or "" */
	/* RCPT parameters */
	unsigned notify;		/* enum smtp_notify bits, 0 when absent */
	char orcpt[SMTP_ORCPT_MAX + 1]; /* "rfc822;xtext" as received, or "" */
	/* BDAT */
	uint64_t chunk_size;
	bool last;
	/* AUTH */
	char mechanism[SMTP_MECHANISM_MAX + 1]; /* upper-cased */
	bool has_initial;			/* an initial response follows */
	const char *initial;			/* points into the parsed line; "=" is empty */
	size_t initial_len;
};

/* A precise refusal: reply code, enhanced status code (RFC 3463), text. */
struct smtp_error {
	int code;
	const char *status;
	const char *text;
};

/* The canonical upper-case name of VERB ("MAIL"). */
const char *smtp_verb_name(enum smtp_verb verb);

/*
 * Parses LINE (LEN bytes, without CRLF; need not be NUL-terminated) into
 * OUT. Returns 0, or -1 with ERR set. OUT->verb is SMTP_CMD_COUNT when the
 * verb was not recognised. A BDAT whose size parsed is reported with
 * OUT->verb == SMTP_CMD_BDAT and OUT->chunk_size set even when the rest of
 * the line is wrong, so the session can skip the chunk.
 */
int smtp_parse(const char *line, size_t len, struct smtp_command *out, struct smtp_error *err);

/*
 * Checks a mailbox (local@domain, no brackets). UTF8 allows non-ASCII
 * (RFC 6531). Returns 0 or -1 with ERR. Used by the parser and by the
 * session for addresses from SASL and the store.
 */
int smtp_check_mailbox(const char *addr, size_t len, bool utf8, struct smtp_error *err);

/* Checks an EHLO/HELO argument: a domain or an address literal. */
bool smtp_valid_helo(const char *arg, size_t len);

/* Checks xtext (RFC 3461 4): printable ASCII without '+' '=' except as "+XX". */
bool smtp_valid_xtext(const char *s, size_t len);

/* ---- DATA reader (smtp_data.c), pure ---- */

enum smtp_data_error {
	SMTP_DATA_OK = 0,
	SMTP_DATA_TOO_BIG,	 /* 552 5.3.4 */
	SMTP_DATA_LINE_TOO_LONG, /* 500 5.5.2 style, refused at the end */
	SMTP_DATA_BARE_LF,	 /* a line ended in LF without CR */
	SMTP_DATA_BARE_CR,	 /* a CR not followed by LF */
	SMTP_DATA_NUL,		 /* a NUL byte */
};

struct smtp_data {
	unsigned char *buf; /* the unstuffed message (malloc'd, grows) */
	size_t len, cap;
	size_t max_size;	    /* message limit in bytes */
	size_t max_line;	    /* line limit, CRLF included */
	size_t line_len;	    /* bytes of the current line so far */
	bool at_line_start;	    /* the previous segment ended a CRLF line */
	bool done;		    /* CRLF.CRLF seen */
	enum smtp_data_error error; /* first error; the data is read to the end anyway */
};

void smtp_data_init(struct smtp_data *d, size_t max_size, size_t max_line);
/* Releases the buffer (wiped: it held a message). */
void smtp_data_free(struct smtp_data *d);
/*
 * Feeds one segment: a line up to and including its LF, or (for an
 * over-long line) a piece of it without LF. Sets D->done when the segment
 * is exactly ".\r\n" at the start of a line that followed a CRLF. Returns -1
 * only when memory runs out.
 */
int smtp_data_feed(struct smtp_data *d, const unsigned char *seg, size_t len);
/* Appends raw bytes (BDAT chunks: no unstuffing, binary-safe). */
int smtp_data_append(struct smtp_data *d, const unsigned char *bytes, size_t len);
/* The reply that refuses a message with error E. */
void smtp_data_error_reply(enum smtp_data_error e, struct smtp_error *out);

/* Registers the "smtp" and "submission" protocols with src/net. */
void smtp_register(void);

#endif
