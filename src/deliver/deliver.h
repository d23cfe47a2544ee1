/*
 * deliver.h - where accepted mail goes. Local recipients: the scanner runs,
 * Return-Path/Received (and X-Spam-* when junk) are prepended, the message is
 * sealed to the recipient's public key and stored in INBOX or Junk (malware:
 * quarantine) together with its scan result. Remote recipients: the message
 * is sealed to the server's queue key and put in the outbound queue.
 *
 * One transaction covers all recipients: deliver_commit() makes everything
 * durable at once, or nothing is stored.
 */
#ifndef POSTERN_DELIVER_H
#define POSTERN_DELIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scan/scan.h"
#include "store/store.h"

struct deliver_envelope {
	const char *sender; /* MAIL FROM, "" for the null sender */
	const char *helo;
	const char *client_ip;
	const char *protocol;	 /* "ESMTPS", "ESMTPSA", ... for Received */
	const char *tls_version; /* NULL when cleartext */
	const char *tls_cipher;
	const char *auth_user; /* authenticated submitter or NULL */
	const char *dsn_ret;   /* may be NULL */
	const char *dsn_envid; /* may be NULL */
	int64_t received_at;   /* unix time */
	uint64_t session_id;   /* for trace and Received id */
};

struct deliver_recipient {
	const char *address;	/* as given in RCPT TO */
	const char *dsn_notify; /* may be NULL */
	const char *dsn_orcpt;	/* may be NULL */
};

enum deliver_status {
	DELIVER_OK = 0,
	DELIVER_TEMPFAIL, /* 451: store error */
	DELIVER_QUOTA,	  /* 552: a recipient's quota is exceeded */
	DELIVER_FAIL,	  /* 554 */
};

struct deliver_report {
	enum deliver_status status;
	char message[256]; /* human-readable, English (goes into replies) */
	size_t stored_local;
	size_t queued_remote;
	size_t quarantined;
};

/*
 * Delivers MSG to RCPTS in one store transaction on ST. LOCAL[i] says
 * whether RCPTS[i] is local (checked at RCPT time). Returns the status; on
 * anything but DELIVER_OK nothing was stored.
 */
enum deliver_status deliver_message(struct store *st, const struct config *cfg,
				    const struct deliver_envelope *env,
				    const struct deliver_recipient *rcpts, const bool *local,
				    size_t n_rcpts, const unsigned char *msg, size_t len,
				    struct deliver_report *report);

/* Local delivery to one mailbox of one user (used by IMAP APPEND too): scans,
 * seals and stores with the scan result. Caller owns the transaction. */
enum deliver_status deliver_to_mailbox(struct store *st, const struct store_user *user,
				       int64_t mailbox_id, uint32_t flags, int64_t internal_date,
				       const unsigned char *msg, size_t len,
				       const struct scan_input *scan_in, struct store_message *out);
/* The same with SIZE as the message's size (what IMAP RFC822.SIZE, POP3
 * LIST and the quota count) where that is not LEN: a message with NUL from
 * a BINARY APPEND counts the size of its textual form. */
enum deliver_status deliver_to_mailbox_sized(struct store *st, const struct store_user *user,
					     int64_t mailbox_id, uint32_t flags,
					     int64_t internal_date, const unsigned char *msg,
					     size_t len, int64_t size,
					     const struct scan_input *scan_in,
					     struct store_message *out);

#endif
