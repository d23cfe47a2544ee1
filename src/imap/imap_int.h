/*
 * imap_int.h - what the IMAP session and its command handlers share:
 * the session struct, the reply helpers (imap_session.c), the view of the
 * selected mailbox (imap_mailbox.c), the output buffer (imap_buf.c) and the
 * MIME structure of a decrypted message (imap_mime.c).
 */
#ifndef IMAP_IMAP_INT_H
#define IMAP_IMAP_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/auth.h"
#include "imap/imap.h"
#include "net/net.h"
#include "store/store.h"

#define IMAP_PROTOCOL "imap"

enum imap_state {
	IMAP_STATE_NOT_AUTH = 1 << 0,
	IMAP_STATE_AUTH = 1 << 1,
	IMAP_STATE_SELECTED = 1 << 2,
	IMAP_STATE_LOGOUT = 1 << 3,
};

/* ---- growable output buffer (imap_buf.c) ---- */
struct imap_buf {
	char *p;
	size_t len, cap;
	bool failed; /* an allocation failed; the content is incomplete */
};
/* Room for EXTRA more bytes (and a NUL) after LEN; false when out of memory. */
bool ibuf_reserve(struct imap_buf *b, size_t extra);
void ibuf_add(struct imap_buf *b, const void *data, size_t len);
void ibuf_str(struct imap_buf *b, const char *s);
void ibuf_printf(struct imap_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* An IMAP string: quoted when possible, a literal otherwise; NULL gives NIL. */
void ibuf_nstring(struct imap_buf *b, const char *s, size_t len);
/* Same, upper-cased when quoted (types, subtypes, encodings). */
void ibuf_nstring_upper(struct imap_buf *b, const char *s);
/* Ascending numbers as a compact sequence set ("1:3,7"). */
void ibuf_seqset(struct imap_buf *b, const uint32_t *n, size_t count);
/* Wipes (the content may be message text) and frees. */
void ibuf_free(struct imap_buf *b);

/* ---- one message of the selected mailbox ---- */
struct imap_msg {
	int64_t id;
	uint32_t uid;
	uint32_t flags;
	char *keywords; /* NULL when none */
	int64_t size;
	int64_t date;
	uint64_t modseq;
	bool expunged; /* gone from the store, not yet announced */
};

struct imap_selected {
	struct store_mailbox mb;
	bool readonly;
	struct imap_msg *msgs; /* sequence number i+1 */
	size_t n, cap;
	uint64_t synced; /* the view is the store's at this modseq (0: read it all) */
	struct notify_sub *sub;
};

struct imap_session {
	struct conn *c;
	const struct config *cfg;
	enum imap_state state;
	bool busy; /* a login job or the login delay holds the session */
	bool in_input;
	unsigned errors;

	/* The command being assembled: lines and literals. */
	char *cmd;
	size_t cmd_len, cmd_cap, cmd_max;
	uint64_t literal_left; /* bytes of a literal still to read into CMD */
	uint64_t discard_left; /* bytes of a refused non-synchronizing literal to skip */
	bool skip_rest;	       /* then the rest of that command is skipped too */
	char *line;
	size_t line_max;

	/* The command being served. */
	char tag[IMAP_TAG_MAX + 1];
	char verb[IMAP_VERB_MAX + 8];
	bool uid;
	bool allow_expunge; /* untagged EXPUNGE may be sent before the tagged reply */
	uint64_t cmd_start;

	bool sasl_wait;
	bool idling;
	bool condstore;	   /* RFC 7162 3.1: enabled by ENABLE or a CONDSTORE-enabling command */
	bool qresync;	   /* RFC 7162 3.2.3: ENABLE QRESYNC; expunges are reported as VANISHED */
	bool rev2;	   /* ENABLE IMAP4rev2 (RFC 9051 6.3.1): rev2 behaviour where it differs */
	bool utf8;	   /* IMAP4rev2 or UTF8=ACCEPT (RFC 6855) enabled: names in UTF-8 */
	bool utf8_accept;  /* ENABLE UTF8=ACCEPT itself (APPEND UTF8 allowed) */
	bool long_timeout; /* the authenticated autologout timer is set (imap_ok) */

	struct imap_fetch_run *fetch_run; /* a FETCH served in slices (cmd_fetch.c) */
	struct store *job_store;	  /* a job of this session runs: its store (cmd_search.c) */

	uint32_t *saved; /* SEARCHRES (RFC 5182): the UIDs "$" stands for, ascending */
	size_t n_saved;

	struct auth_identity id;
	struct imap_selected sel;

	struct event *idle_poll; /* IDLE: looks for changes notify cannot see */

	struct imap_zstream *z;		/* COMPRESS=DEFLATE once active (cmd_compress.c) */
	struct imap_hdrcache *hdrcache; /* header blocks already read (imap_hdrcache.c) */
};

/* ---- output and compression (cmd_compress.c) ---- */
/* Everything the session sends goes through these (deflated once COMPRESS is on). */
int imap_write(struct imap_session *s, const void *data, size_t len);
int imap_printf(struct imap_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Inflates what arrived compressed in conn_input(); CONSUMED_ONLY when
 * nothing can have arrived since the last call. -1 on a broken stream. */
int imap_compress_input(struct imap_session *s, bool consumed_only);
void imap_compress_free(struct imap_session *s);
void imap_cmd_compress(struct imap_session *s, struct imap_command *cmd);

/* ---- replies (imap_session.c) ---- */
/* Tagged OK/NO/BAD for the current command; OK first reports mailbox changes. */
void imap_ok(struct imap_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void imap_no(struct imap_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void imap_bad(struct imap_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "* " + text + CRLF */
void imap_untagged(struct imap_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void imap_continue_input(struct imap_session *s);

/* ---- the selected mailbox (imap_mailbox.c) ---- */
/* Loads MB as the selected mailbox; 0 or a STORE_* code. */
int imap_select_load(struct imap_session *s, const struct store_mailbox *mb, bool readonly);
void imap_select_close(struct imap_session *s);
/* Compares the view with the store and reports the difference (EXISTS,
 * FETCH FLAGS, and EXPUNGE when ALLOW_EXPUNGE). */
void imap_sync(struct imap_session *s, bool allow_expunge);
/* "* n FETCH (UID u FLAGS (...) MODSEQ (m))" for message SEQ (UID and MODSEQ when asked or
 * when CONDSTORE is on). */
void imap_send_flags(struct imap_session *s, size_t seq, const struct imap_msg *m, bool uid);
/* "* VANISHED [(EARLIER) ]uid-set" for the ascending UIDS; nothing when N is 0. */
void imap_send_vanished(struct imap_session *s, bool earlier, const uint32_t *uids, size_t n);
/* SEARCHRES: replaces the saved result with UIDS (taken over, ascending). */
void imap_saved_set(struct imap_session *s, uint32_t *uids, size_t n);
bool imap_saved_contains(const struct imap_session *s, uint32_t uid);
/* Writes "\Seen \Flagged kw" for M into B. */
void imap_format_flags(struct imap_buf *b, uint32_t flags, const char *keywords);
/* Sequence numbers (1-based) the SET names, by sequence or by UID; malloc'd, *N set.
 * "$" is the saved search result (RFC 5182). Messages already expunged are
 * left out. -1 on a malformed set (BAD sent). */
int imap_resolve_set(struct imap_session *s, const char *set_text, bool by_uid, uint32_t **out,
		     size_t *n);
/* Decrypts message M of the selected mailbox; *MSG malloc'd, wipe before free.
 * A STORE_* code, or IMAP_UNREADABLE when the user's key does not open it
 * (sealed to a key an admin password reset replaced, or damaged). */
#define IMAP_UNREADABLE 100
int imap_message_load(struct imap_session *s, const struct imap_msg *m, unsigned char **msg,
		      size_t *len);
/* The message as stored, NUL included (FETCH BINARY[]), where
 * imap_message_load gives its textual form (imap_binary_text). */
int imap_message_load_raw(struct imap_session *s, const struct imap_msg *m, unsigned char **msg,
			  size_t *len);
/* Replaces a loaded message that holds NUL by its textual form; a STORE_*
 * code (STORE_ERR when out of memory, *MSG unchanged then). */
int imap_message_text(unsigned char **msg, size_t *len);
/* Only M's top-level header block (with its blank line), from the session's
 * cache when it was read before (imap_hdrcache.c); wipe and free like a
 * loaded message. Parsed alone it gives the same top-level header. */
int imap_message_load_header(struct imap_session *s, const struct imap_msg *m, unsigned char **hdr,
			     size_t *len);
struct imap_hdrcache;
void imap_hdrcache_free(struct imap_hdrcache *c);
void imap_wipe_free(unsigned char *p, size_t len);
/* The flag bit of "\Seen" etc., 0 for a keyword, -1 for \Recent / \* / bad names. */
int imap_flag_bit(const char *name);
/* Every mailbox change a session makes wakes the others through this. */
void imap_changed(int64_t mailbox_id);
/* Teaches the scanner when mail moves into or out of Junk. */
void imap_junk_learn(struct imap_session *s, const struct imap_msg *m,
		     const struct store_mailbox *from, const struct store_mailbox *to);

/* ---- mailbox names on the wire (imap_wire_names.c) ---- */
/* imap_mailbox_name() after undoing modified UTF-7 (not in IMAP4rev2). 0 or -1. */
int imap_mailbox_arg(struct imap_session *s, const struct imap_arg *arg, char *out, size_t outlen);
/* The user's mailbox named by ARG: its name into NAME (NAMELEN bytes) and its
 * row into MB. STORE_NOTFOUND after answering NO [NONEXISTENT] (a bad name or
 * no such mailbox); else store_mailbox_get's status, for the caller to answer. */
int imap_mailbox_find(struct imap_session *s, const struct imap_arg *arg, char *name,
		      size_t namelen, struct store_mailbox *mb);
/* Decodes a LIST pattern in place (not in IMAP4rev2); 0 or -1. */
int imap_pattern_decode(struct imap_session *s, char *pattern, size_t cap);
/* NAME (UTF-8) as an IMAP string, in modified UTF-7 unless IMAP4rev2 is on. */
void imap_write_mailbox(struct imap_session *s, struct imap_buf *b, const char *name);

/* ---- MIME structure (imap_mime.c) ---- */
struct imap_param {
	char *name, *value;
};
struct imap_mime {
	size_t hdr_off, hdr_len; /* the header with its terminating blank line */
	size_t body_off, body_len;
	char type[64], subtype[64];
	struct imap_param *params;
	size_t n_params;
	size_t lines;
	struct imap_mime *children; /* multipart */
	size_t n_children;
	struct imap_mime *message; /* message/rfc822: the embedded message */
};
/* Parses MSG's MIME structure (bounded depth and part count); NULL when out of memory. */
struct imap_mime *imap_mime_parse(const char *msg, size_t len);
void imap_mime_free(struct imap_mime *m);
/* Unfolded value of header NAME within HDR (first occurrence), malloc'd or NULL. */
char *imap_header_get(const char *hdr, size_t hdr_len, const char *name);
/* ENVELOPE / BODYSTRUCTURE (EXTENDED) or BODY of M within MSG. */
void imap_write_envelope(struct imap_buf *b, const char *msg, const struct imap_mime *m);
void imap_write_bodystructure(struct imap_buf *b, const char *msg, const struct imap_mime *m,
			      bool extended);
/* The part that the part numbers PARTS name (RFC 3501 6.4.5), or NULL. */
const struct imap_mime *imap_mime_part(const struct imap_mime *root, const uint32_t *parts,
				       size_t n_parts);
/* BINARY[part] (RFC 3516): the part's content with its transfer encoding
 * (base64, quoted-printable) undone, the whole message for no part number,
 * multiparts and messages as they are; the result may be built in SCRATCH.
 * 0, -1 when the part does not exist, -2 for an unknown transfer encoding,
 * -3 when out of memory. */
int imap_binary(const char *msg, const struct imap_mime *root, const struct imap_fetch_att *a,
		struct imap_buf *scratch, const char **out, size_t *out_len);
/* imap_binary_text (the textual form of a message with NUL) is in imap.h:
 * POP3 and APPEND's size use it too. */
/* Resolves a section to the bytes it names; the result may be built in SCRATCH. 0 or -1. */
int imap_section(const char *msg, const struct imap_mime *root, const struct imap_fetch_att *a,
		 struct imap_buf *scratch, const char **out, size_t *out_len);

/* ---- capabilities (cmd_capability.c) ---- */
#define IMAP_CAPABILITIES_MAX 640
/* The capability list for S's state and transport (without "CAPABILITY"),
 * for CAPABILITY and the [CAPABILITY ...] response code after login. */
void imap_capabilities(struct imap_session *s, char *out, size_t outlen);

/* ---- command handlers (cmd_*.c) ---- */
typedef void (*imap_handler)(struct imap_session *s, struct imap_command *cmd);
void imap_cmd_capability(struct imap_session *s, struct imap_command *cmd);
void imap_cmd_noop(struct imap_session *s, struct imap_command *cmd);
void imap_cmd_logout(struct imap_session *s, struct imap_command *cmd);
void imap_cmd_starttls(struct imap_session *s, struct imap_command *cmd);
void imap_cmd_login(struct imap_session *s, struct imap_command *cmd);
void imap_cmd_authenticate(struct imap_session *s, struct imap_command *cmd);
void imap_sasl_response(struct imap_session *s, const char *line, size_t len);
void imap_cmd_enable(struct imap_session *s, struct imap_command *cmd);
void imap_cmd_id(struct imap_session *s, struct imap_command *cmd);
void imap_cmd_namespace(struct imap_session *s, struct imap_command *cmd);
void imap_cmd_select(struct imap_session *s, struct imap_command *cmd);
void imap_cmd_create(struct imap_session *s, struct imap_command *cmd);
void imap_cmd_delete(struct imap_session *s, struct imap_command *cmd);
void imap_cmd_rename(struct imap_session *s, struct imap_command *cmd);
void imap_cmd_subscribe(struct imap_session *s, struct imap_command *cmd);
void imap_cmd_list(struct imap_session *s, struct imap_command *cmd);
void imap_cmd_status(struct imap_session *s, struct imap_command *cmd);
void imap_cmd_append(struct imap_session *s, struct imap_command *cmd);
void imap_cmd_check(struct imap_session *s, struct imap_command *cmd);
void imap_cmd_close(struct imap_session *s, struct imap_command *cmd);
void imap_cmd_expunge(struct imap_session *s, struct imap_command *cmd);
void imap_cmd_fetch(struct imap_session *s, struct imap_command *cmd);
struct imap_fetch_run;
void imap_fetch_run_free(struct imap_fetch_run *r);
void imap_cmd_store(struct imap_session *s, struct imap_command *cmd);
void imap_cmd_copy(struct imap_session *s, struct imap_command *cmd);
void imap_cmd_search(struct imap_session *s, struct imap_command *cmd);
void imap_cmd_idle(struct imap_session *s, struct imap_command *cmd);
void imap_idle_done(struct imap_session *s, const char *line, size_t len);
/* "* STATUS name (...)" for MB (cmd_status.c); a STORE_* code. */
int imap_status_send(struct imap_session *s, const char *name, const struct store_mailbox *mb,
		     const struct imap_status_items *items);
/* Sequence numbers (ascending, 1-based) of the selected messages KEY matches
 * (cmd_search.c); *OUT malloc'd. *FAILED when some could not be read. 0, or -1
 * when out of memory. */
int imap_search_run(struct imap_session *s, const struct imap_search_key *key, uint32_t **out,
		    size_t *n, bool *failed);
/* Ends SEARCH, SORT or THREAD (cmd_search.c): writes the untagged answer in
 * B and frees it, then the tagged reply: NO [SERVERBUG] when B ran out of
 * memory, NO [UNAVAILABLE] when FAILED (some messages could not be read),
 * else "OK <COMMAND> completed". */
void imap_search_reply(struct imap_session *s, struct imap_buf *b, bool failed,
		       const char *command);
/* ---- what SORT and THREAD compare (cmd_sort.c) ---- */
struct imap_sort_info {
	uint32_t seq, uid;
	int64_t arrival, sent, size;
	char *subject;		  /* base subject, case-folded; "" when none */
	bool refwd;		  /* the subject had a reply or forward marker */
	char *from, *to, *cc;	  /* case-folded local part of the first address, or "" */
	char *msgid, *references; /* THREAD: Message-ID, References (else In-Reply-To), or NULL */
};
/* What imap_sort_start hands over: RC 0 with the hits in mailbox order (V,
 * N; DONE frees them), or -1 when there is nothing to answer (out of memory,
 * already answered, or the connection is gone). CTX is DONE's to free. */
typedef void (*imap_sort_done)(struct imap_session *s, int rc, struct imap_sort_info *v, size_t n,
			       bool failed, void *ctx);
/* Parses "charset search-criteria" (ARGS), runs the search and reads what
 * SORT and THREAD compare for the hits - the header only when NEED_CONTENT
 * (then on the job pool, the session waiting), the threading fields only
 * when THREADING - and calls DONE on the event loop. A bad argument is
 * answered here and DONE is not called: -1 then (CTX stays the caller's). */
int imap_sort_start(struct imap_session *s, const struct imap_arg *args, size_t nargs,
		    bool need_content, bool threading, imap_sort_done done, void *ctx);
void imap_sort_info_free(struct imap_sort_info *v, size_t n);
void imap_cmd_sort(struct imap_session *s, struct imap_command *cmd);
void imap_cmd_thread(struct imap_session *s, struct imap_command *cmd);
void imap_cmd_getquotaroot(struct imap_session *s, struct imap_command *cmd);
void imap_cmd_getquota(struct imap_session *s, struct imap_command *cmd);
void imap_cmd_setquota(struct imap_session *s, struct imap_command *cmd);

#endif
