/*
 * pop3_maildrop.h - the POP3 view of INBOX (internal to src/pop3).
 *
 * At login the session takes a snapshot of INBOX: message ids, uids and
 * sizes, numbered 1..n in uid order. Mail arriving later is not part of it
 * (RFC 1939 leaves this to the server; clients expect a stable numbering).
 * DELE only marks; pop3_maildrop_expunge() removes the marked messages in one
 * store transaction at QUIT, skipping those another session removed first.
 */
#ifndef POP3_MAILDROP_H
#define POP3_MAILDROP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/crypto.h"
#include "store/store.h"

struct pop3_message {
	int64_t id;
	uint32_t uid;
	int64_t size; /* octets RETR sends before dot-stuffing */
	bool deleted; /* marked by DELE */
};

struct pop3_maildrop {
	int64_t mailbox_id;
	uint32_t uidvalidity;
	struct pop3_message *msgs;
	size_t count;
	size_t cap;
};

/* Fills DROP from the user's INBOX. Returns a STORE_* code. */
int pop3_maildrop_load(struct store *st, int64_t user_id, struct pop3_maildrop *drop);
void pop3_maildrop_free(struct pop3_maildrop *drop);

/* Number and total size of the messages not marked deleted. */
void pop3_maildrop_totals(const struct pop3_maildrop *drop, size_t *count, int64_t *bytes);
/* Unmarks every message (RSET). */
void pop3_maildrop_reset(struct pop3_maildrop *drop);

/* Removes the marked messages in one transaction; *REMOVED counts those that
 * were still there. Returns a STORE_* code (nothing removed on error). */
int pop3_maildrop_expunge(struct store *st, const struct pop3_maildrop *drop, size_t *removed);

/*
 * Reads and decrypts message M with KEY; a message stored with NUL (IMAP
 * BINARY APPEND) comes as its textual form (imap_binary_text), the size
 * the store keeps for it. *PLAIN is malloc'd; the caller wipes
 * it (sodium_memzero) before free. Returns STORE_OK, STORE_NOTFOUND when the
 * message was expunged meanwhile, POP3_UNREADABLE when the user's key does
 * not open it (sealed to a key an admin password reset replaced, or
 * damaged), or STORE_ERR (store error).
 */
#define POP3_UNREADABLE 100
int pop3_message_fetch(struct store *st, const struct user_key *key, const struct pop3_message *m,
		       unsigned char **plain, size_t *len);

#endif
