/*
 * store.h - the one storage interface. Two engines implement it:
 * store_sqlite.c (embedded default) and store_mariadb.c (scale-out).
 * Both run the same schema (sql/) and the same test suite.
 *
 * A struct store is one connection; it is not shared between threads (each
 * worker thread opens its own). Every function returns a STORE_* code; on
 * STORE_ERR, store_error() holds a message. Text values are UTF-8 and
 * NUL-terminated; binary values come with a length. Functions that return
 * allocated memory say so; the caller frees with free() unless noted.
 * Addresses and domains are compared lower-cased. Lookups (get, exists,
 * resolve, del) answer STORE_NOTFOUND for a malformed address, domain or
 * mailbox name, since no such row can exist; adds answer STORE_ERR.
 *
 * Mail that a protocol acknowledges is committed durably (SQLite: WAL with
 * synchronous=FULL; MariaDB: InnoDB commit) before store_commit() returns.
 */
#ifndef POSTERN_STORE_H
#define POSTERN_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/config.h"

enum store_status {
	STORE_OK = 0,
	STORE_ERR = -1,     /* engine or I/O error; see store_error() */
	STORE_NOTFOUND = 1, /* no such row */
	STORE_EXISTS = 2,   /* unique key already taken */
	STORE_QUOTA = 3,    /* the write would exceed the user's quota */
};

#define STORE_ADDRESS_MAX 320 /* local@domain, RFC 5321 limits */
#define STORE_DOMAIN_MAX 255
#define STORE_MAILBOX_NAME_MAX 512
#define STORE_PWHASH_MAX 128

struct store;

struct store *store_open(const struct config_store *cfg, char *err, size_t errlen);
void store_close(struct store *st);
const char *store_error(const struct store *st);
const char *store_engine_name(const struct store *st); /* "sqlite" or "mariadb" */

/* Applies every migration in sql/<engine>/ not yet applied; returns the schema version. */
int store_migrate(struct store *st, int *version_out);

/* Transactions nest by counting: only the outermost commit is real. */
int store_begin(struct store *st);
int store_commit(struct store *st);
int store_rollback(struct store *st);

/* ---- domains ---- */
int store_domain_add(struct store *st, const char *domain);
int store_domain_del(struct store *st, const char *domain); /* STORE_EXISTS if users remain */
int store_domain_exists(struct store *st, const char *domain); /* STORE_OK or STORE_NOTFOUND */
typedef int (*store_domain_cb)(void *arg, const char *domain);
int store_domain_list(struct store *st, store_domain_cb cb, void *arg);

/* ---- users ---- */
struct store_user {
	int64_t id;
	char address[STORE_ADDRESS_MAX + 1]; /* lower-case local@domain */
	char password_hash[STORE_PWHASH_MAX]; /* Argon2id encoded string */
	unsigned char public_key[32];         /* X25519 */
	unsigned char *wrapped_key;           /* private key wrapped by the password key */
	size_t wrapped_key_len;
	unsigned char *recovery_key;          /* private key sealed to the recovery key, or NULL */
	size_t recovery_key_len;
	bool locked;
	int64_t quota_bytes; /* 0: unlimited */
	int64_t used_bytes;
	int64_t created;     /* unix time */
};
/* Frees the wrapped/recovery buffers inside U (not U itself). */
void store_user_clear(struct store_user *u);

/* Creates the user (domain must exist) and its special-use mailboxes
 * (INBOX, Sent, Drafts, Junk, Trash, Archive). Sets U->id. */
int store_user_add(struct store *st, struct store_user *u);
int store_user_get(struct store *st, const char *address, struct store_user *out);
int store_user_get_by_id(struct store *st, int64_t id, struct store_user *out);
int store_user_del(struct store *st, const char *address); /* removes its mail too */
int store_user_set_password(struct store *st, int64_t user_id, const char *password_hash,
			    const unsigned char *wrapped_key, size_t wrapped_key_len);
int store_user_set_recovery(struct store *st, int64_t user_id, const unsigned char *recovery_key,
			    size_t len);
/* Replaces password hash, key pair and recovery copy at once (an admin reset
 * with a new key pair; store_auth.c). RECOVERY_KEY may be NULL. */
int store_user_set_keys(struct store *st, int64_t user_id, const char *password_hash,
			const unsigned char public_key[32], const unsigned char *wrapped_key,
			size_t wrapped_key_len, const unsigned char *recovery_key,
			size_t recovery_key_len);
int store_user_set_locked(struct store *st, int64_t user_id, bool locked);
int store_user_set_quota(struct store *st, int64_t user_id, int64_t quota_bytes);
typedef int (*store_user_cb)(void *arg, const struct store_user *u);
/* DOMAIN NULL: all users. */
int store_user_list(struct store *st, const char *domain, store_user_cb cb, void *arg);

/* ---- aliases ---- */
int store_alias_add(struct store *st, const char *alias, const char *target);
int store_alias_del(struct store *st, const char *alias);
typedef int (*store_alias_cb)(void *arg, const char *alias, const char *target);
int store_alias_list(struct store *st, const char *domain, store_alias_cb cb, void *arg);
/* Resolves an address to a local user's address: the user itself, or an alias
 * target. STORE_NOTFOUND when neither. OUT has STORE_ADDRESS_MAX + 1 bytes. */
int store_resolve_address(struct store *st, const char *address, char *out);

/* ---- mailboxes ---- */
enum store_special_use {
	SPECIAL_NONE = 0,
	SPECIAL_SENT,
	SPECIAL_DRAFTS,
	SPECIAL_JUNK,
	SPECIAL_TRASH,
	SPECIAL_ARCHIVE,
};
struct store_mailbox {
	int64_t id;
	int64_t user_id;
	char name[STORE_MAILBOX_NAME_MAX + 1]; /* "INBOX", "Junk", "a/b" ("/" separates levels) */
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint64_t highestmodseq;
	enum store_special_use special_use;
	bool subscribed;
	uint32_t messages; /* count, filled by get/list */
	int64_t bytes;     /* sum of sizes, filled by get/list */
};
int store_mailbox_create(struct store *st, int64_t user_id, const char *name,
			 enum store_special_use special_use, struct store_mailbox *out);
int store_mailbox_get(struct store *st, int64_t user_id, const char *name,
		      struct store_mailbox *out);
int store_mailbox_get_special(struct store *st, int64_t user_id, enum store_special_use use,
			      struct store_mailbox *out);
/* Only the id of USER_ID's mailbox NAME or, with NAME NULL, of its first
 * mailbox with special-use USE: no pass over its messages for the count and
 * size that get fills in (delivery needs none of them). */
int store_mailbox_lookup(struct store *st, int64_t user_id, const char *name,
			 enum store_special_use use, int64_t *id);
int store_mailbox_rename(struct store *st, int64_t mailbox_id, const char *new_name);
int store_mailbox_delete(struct store *st, int64_t mailbox_id);
int store_mailbox_set_subscribed(struct store *st, int64_t mailbox_id, bool subscribed);
typedef int (*store_mailbox_cb)(void *arg, const struct store_mailbox *mb);
int store_mailbox_list(struct store *st, int64_t user_id, store_mailbox_cb cb, void *arg);

/* ---- messages ---- */
enum store_flag {
	FLAG_SEEN = 1 << 0,
	FLAG_ANSWERED = 1 << 1,
	FLAG_FLAGGED = 1 << 2,
	FLAG_DELETED = 1 << 3,
	FLAG_DRAFT = 1 << 4,
};
struct store_message {
	int64_t id;
	int64_t mailbox_id;
	uint32_t uid;
	uint64_t modseq;
	uint32_t flags;        /* enum store_flag bits */
	char keywords[512];    /* space-separated IMAP keywords, may be empty */
	int64_t internal_date; /* unix time */
	int64_t size;          /* plaintext RFC 5322 size in bytes */
};
/*
 * Adds a message whose content is BLOB (sealed by crypto/, opaque here) to
 * MAILBOX_ID: assigns uid and modseq, counts SIZE against the owner's quota
 * (STORE_QUOTA when it would not fit), fills OUT. Not committed until the
 * surrounding transaction commits.
 */
int store_message_add(struct store *st, int64_t mailbox_id, uint32_t flags, int64_t internal_date,
		      int64_t size, const unsigned char *blob, size_t blob_len,
		      struct store_message *out);
int store_message_get(struct store *st, int64_t mailbox_id, uint32_t uid, struct store_message *out);
/* The sealed content; *BLOB is malloc'd. */
int store_message_blob(struct store *st, int64_t message_id, unsigned char **blob, size_t *len);
typedef int (*store_message_cb)(void *arg, const struct store_message *m);
/* Messages with uid >= MIN_UID in uid order. */
int store_message_list(struct store *st, int64_t mailbox_id, uint32_t min_uid,
		       store_message_cb cb, void *arg);
int store_message_set_flags(struct store *st, int64_t message_id, uint32_t flags,
			    const char *keywords, uint64_t *modseq_out);
/*
 * Applies to the message what a session changed in its view of it, from BASE_FLAGS and
 * BASE_KEYWORDS to FLAGS and KEYWORDS, on top of the flags and keywords stored now (set
 * meanwhile by other sessions, which are kept), in one transaction with a new modseq. OUT
 * gets the resulting flags, keywords and modseq. STORE_NOTFOUND when the message is gone.
 */
int store_message_change_flags(struct store *st, int64_t message_id, uint32_t base_flags,
			       const char *base_keywords, uint32_t flags, const char *keywords,
			       struct store_message *out);
/* Deletes the message, its blob and its scan result; frees its quota. */
int store_message_expunge(struct store *st, int64_t message_id);
/* Copies into another mailbox of the same user (new uid); the blob is shared or copied. */
int store_message_copy(struct store *st, int64_t message_id, int64_t to_mailbox_id,
		       struct store_message *out);

/* ---- scan results (1:1 with messages) ---- */
struct store_scan_result {
	int64_t message_id;
	char verdict[16]; /* "clean", "spam", "phishing", "malware" */
	double score;
	double confidence;
	char model_version[64];
	char *reasons; /* JSON array text, malloc'd; may be NULL */
};
int store_scan_result_put(struct store *st, const struct store_scan_result *r);
int store_scan_result_get(struct store *st, int64_t message_id, struct store_scan_result *out);

/* ---- outbound queue ---- */
struct store_queue_entry {
	int64_t id;
	char sender[STORE_ADDRESS_MAX + 1];    /* envelope MAIL FROM, may be empty (null sender) */
	char recipient[STORE_ADDRESS_MAX + 1];
	char dsn_notify[64];  /* RCPT NOTIFY=, may be empty */
	char dsn_orcpt[STORE_ADDRESS_MAX + 8];
	char dsn_ret[8];      /* MAIL RET= */
	char dsn_envid[128];  /* MAIL ENVID= */
	int attempts;
	int64_t next_attempt; /* unix time */
	int64_t created;
	char last_error[512];
};
/* BLOB is the message sealed to the server's queue key. Sets E->id. */
int store_queue_add(struct store *st, struct store_queue_entry *e, const unsigned char *blob,
		    size_t blob_len);
typedef int (*store_queue_cb)(void *arg, const struct store_queue_entry *e);
int store_queue_list(struct store *st, store_queue_cb cb, void *arg);
int store_queue_blob(struct store *st, int64_t id, unsigned char **blob, size_t *len);
int store_queue_update(struct store *st, int64_t id, int attempts, int64_t next_attempt,
		       const char *last_error);
/*
 * Records a failed attempt like store_queue_update, unless the entry's
 * last_error now starts with KEEP_PREFIX (it was held while the attempt
 * ran): then only ATTEMPTS is stored, and the hold stays. STORE_NOTFOUND
 * when the entry is gone.
 */
int store_queue_retry_later(struct store *st, int64_t id, int attempts, int64_t next_attempt,
			   const char *last_error, const char *keep_prefix);
int store_queue_del(struct store *st, int64_t id);

/* ---- per-user data blobs (scanner deltas, later OTP settings) ---- */
/* KIND names the owner, e.g. "scan_model". *BLOB is malloc'd. */
int store_user_data_put(struct store *st, int64_t user_id, const char *kind,
			const unsigned char *blob, size_t len);
int store_user_data_get(struct store *st, int64_t user_id, const char *kind, unsigned char **blob,
			size_t *len);

/* ---- quarantine (malware: admin-visible, never served to the user) ---- */
struct store_quarantine_entry {
	int64_t id;
	char recipient[STORE_ADDRESS_MAX + 1];
	char sender[STORE_ADDRESS_MAX + 1];
	char verdict[16];
	char reason[512];
	int64_t size;
	int64_t created;
};
/* BLOB is sealed to the server's queue key, so the admin can release it. Sets E->id. */
int store_quarantine_add(struct store *st, struct store_quarantine_entry *e,
			 const unsigned char *blob, size_t len);
typedef int (*store_quarantine_cb)(void *arg, const struct store_quarantine_entry *e);
int store_quarantine_list(struct store *st, store_quarantine_cb cb, void *arg);
int store_quarantine_get(struct store *st, int64_t id, struct store_quarantine_entry *out,
			 unsigned char **blob, size_t *len);
int store_quarantine_del(struct store *st, int64_t id);

/* ---- audit log ---- */
int store_audit(struct store *st, const char *actor, const char *event, const char *detail);
typedef int (*store_audit_cb)(void *arg, int64_t time, const char *actor, const char *event,
			      const char *detail);
int store_audit_list(struct store *st, int64_t since, store_audit_cb cb, void *arg);

/* ---- counts for status ---- */
struct store_stats {
	int64_t domains, users, aliases, messages, bytes, queued;
};
int store_stats(struct store *st, struct store_stats *out);

/* ---- IMAP (store_imap.c) ---- */
/* UIDs expunged from MAILBOX_ID with a modseq above MODSEQ, ascending;
 * *UIDS malloc'd (NULL when none). QRESYNC (RFC 7162 3.2). */
int store_expunged_since(struct store *st, int64_t mailbox_id, uint64_t modseq, uint32_t **uids,
			 size_t *n);
/* The mailbox's HIGHESTMODSEQ as stored now. */
int store_mailbox_highestmodseq(struct store *st, int64_t mailbox_id, uint64_t *modseq);
/* The lowest expunge modseq of UIDs UID_LO..UID_HI of MAILBOX_ID; 0 when none. */
int store_expunged_min_modseq(struct store *st, int64_t mailbox_id, uint32_t uid_lo,
			      uint32_t uid_hi, uint64_t *modseq);
/* The mailbox's counters as of one read (store_mailbox_view). */
struct store_view_state {
	uint64_t highestmodseq;
	uint32_t uidnext;
	int64_t messages;
};
/* M is a message present, or (EXPUNGED) only M->uid and M->modseq of one gone. */
typedef int (*store_view_cb)(void *arg, const struct store_message *m, bool expunged);
/*
 * One consistent read (a single statement) of MAILBOX_ID for an IMAP view:
 * its counters into *STATE, and through CB, in no particular order, every
 * message whose modseq is above SINCE and the UIDs expunged with a modseq
 * above SINCE. SINCE 0 gives every message and no expunges. Since every change of
 * a message or of the mailbox's message set raises the mailbox's
 * HIGHESTMODSEQ, a view that was exact at SINCE is exact at
 * STATE->highestmodseq after applying what CB got. STORE_NOTFOUND when the
 * mailbox is gone (CB may have been called).
 */
int store_mailbox_view(struct store *st, int64_t mailbox_id, uint64_t since,
		       struct store_view_state *state, store_view_cb cb, void *arg);

/* ---- sender grants (store_senders.c) ---- */
/* Extra MAIL FROM addresses of a user: "local@domain" or "@domain" (every
 * address of the domain). Grant: STORE_EXISTS when already there; revoke:
 * STORE_NOTFOUND when not there. */
int store_sender_grant(struct store *st, int64_t user_id, const char *address);
int store_sender_revoke(struct store *st, int64_t user_id, const char *address);
typedef int (*store_sender_cb)(void *arg, const char *address, int64_t created);
int store_sender_list(struct store *st, int64_t user_id, store_sender_cb cb, void *arg);
/* STORE_OK when the user whose address is USER may send as ADDRESS by a grant
 * (of ADDRESS or of its domain), STORE_NOTFOUND when not, STORE_ERR. */
int store_sender_granted(struct store *st, const char *user, const char *address);

#endif
