/*
 * imap.h - the IMAP server (RFC 3501 / RFC 9051 core with LITERAL+, IDLE,
 * UIDPLUS, MOVE, SPECIAL-USE, CHILDREN, ENABLE, ID, NAMESPACE, UNSELECT).
 *
 * The pure parts (no I/O, no global state, fuzzed by
 * tests/fuzz/fuzz_imap_parse.c) are declared here: the command parser
 * (imap_parse.c) turns one complete command - its line with any literals
 * inline - into a tag, a verb and a tree of arguments; imap_seqset.c,
 * imap_fetch_parse.c and imap_search_parse.c turn arguments into sequence
 * sets, FETCH attributes and SEARCH keys. The session (imap_session.c and
 * the cmd_*.c handlers) is wired to src/net and registered as "imap".
 */
#ifndef IMAP_IMAP_H
#define IMAP_IMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IMAP_TAG_MAX 64
#define IMAP_VERB_MAX 32
/* Parentheses nest at most this deep (search keys, fetch lists, APPEND flags). */
#define IMAP_DEPTH_MAX 16
/* At most this many arguments in one command, all lists counted. */
#define IMAP_ARGS_MAX 100000
/* Literals other than an APPEND message are at most this long. */
#define IMAP_SMALL_LITERAL_MAX 65536

enum imap_arg_type {
	IMAP_ARG_ATOM = 0, /* atoms, numbers, NIL, BODY[...]<...>, sequence sets */
	IMAP_ARG_QUOTED,   /* "..." (unescaped) */
	IMAP_ARG_LITERAL,  /* {n}CRLF... */
	IMAP_ARG_LIST,	   /* ( ... ) */
};

struct imap_arg {
	enum imap_arg_type type;
	char *str;	       /* NUL-terminated copy (not for lists) */
	size_t len;	       /* bytes in STR (a literal may contain NUL) */
	struct imap_arg *list; /* IMAP_ARG_LIST: N children */
	size_t n;
	bool literal8; /* IMAP_ARG_LITERAL written "~{n}" (RFC 3516 4.4) */
};

struct imap_command {
	char tag[IMAP_TAG_MAX + 1];
	char verb[IMAP_VERB_MAX + 1]; /* upper-cased; "FETCH" for "UID FETCH" */
	bool uid;		      /* the command was prefixed by UID */
	struct imap_arg *args;
	size_t n_args;
	char error[160]; /* on failure: English text for the BAD reply */
};

/*
 * Parses one command: BUF holds the command line, and for every literal
 * "{n}" or "{n+}" the CRLF and the n bytes of it, followed by the rest of
 * the line (no final CRLF). Returns 0, or -1 with OUT->error set (OUT->tag
 * holds the tag when one was read, else "*"). Free with imap_command_free.
 */
int imap_parse(const char *buf, size_t len, struct imap_command *out);
void imap_command_free(struct imap_command *cmd);

/*
 * Looks whether LINE (LEN bytes, without CRLF) ends in a literal marker:
 * returns 1 and sets *SIZE and *NONSYNC for "{n}" / "{n+}", 0 when it does
 * not, -1 when the marker is malformed (e.g. "{12x}" or a number too big).
 */
int imap_line_literal(const char *line, size_t len, uint64_t *size, bool *nonsync);

/* True when ARG is an atom equal to WORD (case-insensitive). */
bool imap_arg_is(const struct imap_arg *arg, const char *word);
/* True for atoms, quoted strings and literals (an IMAP "astring"). */
bool imap_arg_is_string(const struct imap_arg *arg);
/* Parses a decimal number (nz: must not be 0) up to MAX; 0 or -1. */
int imap_parse_number(const char *s, size_t len, uint64_t max, uint64_t *out);
/* Bytes in the quota unit of 1024 octets (RFC 9208), rounded up; 0 for BYTES <= 0. */
uint64_t imap_quota_kb(int64_t bytes);

/* ---- sequence sets (imap_seqset.c), RFC 3501 9 "sequence-set" ---- */
#define IMAP_SEQ_STAR 0 /* "*" inside a range */
struct imap_seq_range {
	uint32_t lo, hi; /* as written; IMAP_SEQ_STAR stands for the largest number */
};
struct imap_seqset {
	struct imap_seq_range *ranges;
	size_t n;
};
/* Parses "1,3:5,7:*" (or "$" is refused); 0 or -1 with ERR set. */
int imap_seqset_parse(const char *s, struct imap_seqset *out, char *err, size_t errlen);
/* Is N in SET when "*" means MAX? */
bool imap_seqset_contains(const struct imap_seqset *set, uint32_t n, uint32_t max);
void imap_seqset_free(struct imap_seqset *set);

/* ---- SELECT / EXAMINE parameters (imap_select_parse.c), RFC 7162 ---- */
struct imap_select_params {
	bool condstore;
	bool qresync; /* QRESYNC (uidvalidity modseq [known-uids [seq-match-data]]) */
	uint32_t uidvalidity;
	uint64_t modseq;
	bool has_known_uids, has_seq_match;
	struct imap_seqset known_uids;
	struct imap_seqset match_seqs, match_uids; /* seq-match-data */
};
/* Parses the arguments after the mailbox name (none, or one list); 0 or -1 with ERR. */
int imap_select_params_parse(const struct imap_arg *args, size_t n, struct imap_select_params *out,
			     char *err, size_t errlen);
void imap_select_params_free(struct imap_select_params *p);

/* ---- FETCH attributes (imap_fetch_parse.c), RFC 3501 6.4.5 ---- */
#define IMAP_SECTION_PARTS_MAX 32
#define IMAP_FIELDS_MAX 64
enum imap_fetch_kind {
	FETCH_FLAGS = 0,
	FETCH_INTERNALDATE,
	FETCH_RFC822_SIZE,
	FETCH_ENVELOPE,
	FETCH_BODYSTRUCTURE,
	FETCH_BODY, /* BODY without section: the non-extensible structure */
	FETCH_UID,
	FETCH_SECTION,	     /* BODY[...] / BODY.PEEK[...] */
	FETCH_RFC822,	     /* = BODY[] (sets \Seen) */
	FETCH_RFC822_HEADER, /* = BODY.PEEK[HEADER] */
	FETCH_RFC822_TEXT,   /* = BODY[TEXT] */
	FETCH_MODSEQ,
	FETCH_BINARY,	   /* BINARY[part]<partial> / BINARY.PEEK[...] (RFC 3516) */
	FETCH_BINARY_SIZE, /* BINARY.SIZE[part] */
};
enum imap_section_kind {
	SECTION_ALL = 0, /* BODY[] or BODY[1.2] */
	SECTION_HEADER,
	SECTION_HEADER_FIELDS,
	SECTION_HEADER_FIELDS_NOT,
	SECTION_TEXT,
	SECTION_MIME,
};
struct imap_fetch_att {
	enum imap_fetch_kind kind;
	bool peek;
	uint32_t parts[IMAP_SECTION_PARTS_MAX];
	size_t n_parts;
	enum imap_section_kind section;
	char **fields; /* HEADER.FIELDS (NOT): N_FIELDS names, as written */
	size_t n_fields;
	bool partial;
	uint32_t offset, count; /* <offset.count> */
	char name[512];		/* the name echoed in the response, e.g. "BODY[HEADER]<0>" */
};
struct imap_fetch_atts {
	struct imap_fetch_att *atts;
	size_t n;
};
/* Parses the FETCH item argument (macro, single item or list); 0 or -1 with ERR. */
int imap_fetch_parse(const struct imap_arg *arg, struct imap_fetch_atts *out, char *err,
		     size_t errlen);
/* Parses one item written as a string (e.g. "BODY.PEEK[1.2.MIME]<0.10>"). */
int imap_fetch_parse_item(const char *s, struct imap_fetch_att *out, char *err, size_t errlen);
void imap_fetch_atts_free(struct imap_fetch_atts *atts);

/* ---- SEARCH keys (imap_search_parse.c), RFC 3501 6.4.4 ---- */
enum imap_search_op {
	SEARCH_ALL = 0,
	SEARCH_AND,    /* children: all must match (a parenthesized list, or the top level) */
	SEARCH_OR,     /* two children */
	SEARCH_NOT,    /* one child */
	SEARCH_SEQSET, /* message sequence numbers */
	SEARCH_UIDSET,
	SEARCH_FLAG,   /* flag bit set (ANSWERED, DELETED, ...) */
	SEARCH_UNFLAG, /* flag bit clear (UNANSWERED, ...) */
	SEARCH_KEYWORD,
	SEARCH_UNKEYWORD,
	SEARCH_NEW,    /* RECENT and UNSEEN: Postern has no \Recent, so UNSEEN */
	SEARCH_OLD,    /* not RECENT: always */
	SEARCH_RECENT, /* never */
	SEARCH_BEFORE, /* internal date, day granularity */
	SEARCH_ON,
	SEARCH_SINCE,
	SEARCH_SENTBEFORE, /* Date: header */
	SEARCH_SENTON,
	SEARCH_SENTSINCE,
	SEARCH_LARGER,
	SEARCH_SMALLER,
	SEARCH_HEADER, /* FROM, TO, CC, BCC, SUBJECT are HEADER with that name */
	SEARCH_BODY,
	SEARCH_TEXT,
	SEARCH_MODSEQ,
	SEARCH_SAVED, /* "$" (RFC 5182): the result a SEARCH RETURN (SAVE) kept */
};
struct imap_search_key {
	enum imap_search_op op;
	uint32_t flag;	/* SEARCH_FLAG / SEARCH_UNFLAG */
	char *field;	/* SEARCH_HEADER: header name */
	char *value;	/* header/body/text needle, keyword */
	int64_t number; /* size, date (days since the epoch), modseq */
	struct imap_seqset set;
	struct imap_search_key *children;
	size_t n;
};
/* Parses ARGS[0..N) (after an optional CHARSET) into an AND key; 0 or -1 with ERR. */
int imap_search_parse(const struct imap_arg *args, size_t n, struct imap_search_key *out, char *err,
		      size_t errlen);
void imap_search_key_free(struct imap_search_key *key);
/* "1-Feb-1994" -> days since 1970-01-01; 0 or -1. */
int imap_parse_date(const char *s, int64_t *days);
/* "17-Jul-1996 02:44:25 -0700" (APPEND date-time) -> unix time; 0 or -1. */
int imap_parse_datetime(const char *s, int64_t *out);

/* ---- SASL PLAIN (imap_sasl.c) ---- */
/* Decodes base64(authzid NUL authcid NUL passwd); a different authzid is refused. 0 or -1. */
int imap_sasl_plain_decode(const char *b64, size_t len, char *user, size_t usercap, char *pass,
			   size_t passcap, size_t *pass_len);

/* ---- mailbox names ---- */
/* Glob match of LIST patterns: "*" any, "%" anything but the "/" delimiter. */
bool imap_list_match(const char *pattern, const char *name);
/* Decodes and checks a mailbox argument: "inbox" in any case becomes "INBOX";
 * empty names, empty levels and "/" at either end are refused. 0 or -1. */
int imap_mailbox_name(const struct imap_arg *arg, char *out, size_t outlen);

/* Modified UTF-7 (RFC 3501 5.1.3), the mailbox names of IMAP4rev1: decodes
 * IN (LEN bytes; bytes outside "&...-" runs pass through) into UTF-8 OUT,
 * and encodes UTF-8 into it. 0, or -1 when malformed or OUT is too small. */
int imap_mutf7_decode(const char *in, size_t len, char *out, size_t outlen);
int imap_mutf7_encode(const char *utf8, char *out, size_t outlen);

/* ---- LIST / LSUB arguments and STATUS items (imap_list_parse.c) ---- */
enum imap_status_item {
	STATUS_MESSAGES = 0,
	STATUS_RECENT,
	STATUS_UIDNEXT,
	STATUS_UIDVALIDITY,
	STATUS_UNSEEN,
	STATUS_SIZE,
	STATUS_HIGHESTMODSEQ,
	STATUS_DELETED,
	STATUS_DELETED_STORAGE,
	STATUS_APPENDLIMIT, /* RFC 7889 3 */
};
#define IMAP_STATUS_ITEMS_MAX 16
struct imap_status_items {
	enum imap_status_item items[IMAP_STATUS_ITEMS_MAX]; /* as asked, in order */
	size_t n;
};
/* The item ARG names, or -1. */
int imap_status_item(const struct imap_arg *arg);
const char *imap_status_item_name(enum imap_status_item item);
/* Parses "(MESSAGES UNSEEN ...)"; 0 or -1 with ERR. */
int imap_status_items_parse(const struct imap_arg *list, struct imap_status_items *out, char *err,
			    size_t errlen);

#define IMAP_LIST_PATTERNS_MAX 32
struct imap_list_opts {
	bool extended; /* RFC 5258 syntax: selection or return options, or a pattern list */
	bool sel_subscribed, sel_special, recursive;
	bool ret_subscribed, ret_children, ret_special, ret_status;
	struct imap_status_items status; /* RETURN (STATUS (...)) */
	const struct imap_arg *reference;
	const struct imap_arg *patterns[IMAP_LIST_PATTERNS_MAX]; /* point into the command */
	size_t n_patterns;
};
/* Parses the arguments of LIST (LSUB when LSUB: no options); 0 or -1 with ERR. */
int imap_list_parse(const struct imap_arg *args, size_t n, bool lsub, struct imap_list_opts *out,
		    char *err, size_t errlen);

/* ---- SORT and THREAD (imap_sort_parse.c), RFC 5256 ---- */
enum imap_sort_key {
	SORT_ARRIVAL = 0,
	SORT_CC,
	SORT_DATE,
	SORT_FROM,
	SORT_SIZE,
	SORT_SUBJECT,
	SORT_TO,
};
#define IMAP_SORT_CRIT_MAX 16
struct imap_sort_spec {
	struct {
		enum imap_sort_key key;
		bool reverse;
	} crit[IMAP_SORT_CRIT_MAX];
	size_t n;
};
/* Parses "(REVERSE DATE SUBJECT)"; 0 or -1 with ERR. */
int imap_sort_parse(const struct imap_arg *list, struct imap_sort_spec *out, char *err,
		    size_t errlen);
/* 0 for the charsets SORT and THREAD accept (UTF-8, US-ASCII), -1 otherwise. */
int imap_sort_charset(const struct imap_arg *arg);
enum imap_thread_algo {
	THREAD_ORDEREDSUBJECT = 0,
	THREAD_REFERENCES,
};
/* The algorithm ARG names, or -1. */
int imap_thread_algorithm(const struct imap_arg *arg);
/* The base subject (RFC 5256 2.1) of a decoded SUBJECT, not case-folded;
 * malloc'd, NULL when out of memory. *REFWD (may be NULL) tells whether a
 * reply or forward marker was removed. */
char *imap_base_subject(const char *subject, bool *refwd);
/* The next "<msg-id>" at or after P: *ID and *LEN (with the brackets), and
 * the position after it; NULL when there is none. */
const char *imap_next_msgid(const char *p, const char **id, size_t *len);

/*
 * The textual form of a message RAW that holds NUL (stored by a BINARY
 * APPEND, RFC 3516 4.4): every part whose content holds NUL and has no
 * transfer encoding (or 7bit, 8bit, binary) is base64-encoded, its
 * Content-Transfer-Encoding set to base64. NUL anywhere else (a header, a
 * boundary line, an encoded part) makes it fail with -2 when STRICT, else it
 * is replaced by 0x80. *OUT malloc'd (wipe before free). 0, -1 when out of
 * memory, -2. Pure (imap_binary.c): IMAP BODY[] and RFC822.SIZE, POP3 RETR,
 * TOP and LIST all show or count this form.
 */
int imap_binary_text(const unsigned char *raw, size_t len, bool strict, unsigned char **out,
		     size_t *out_len);

/* Registers the "imap" protocol with src/net. */
void imap_register(void);

#endif
