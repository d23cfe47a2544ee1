/*
 * queue.h - outbound delivery: the queue runner thread of posternd takes due
 * entries of the durable queue (store_queue_*), finds the destination (a
 * static relayhost, or MX records with A/AAAA fallback via libunbound), hands
 * the message to the remote server with the SMTP client, and retries with
 * backoff or returns a DSN bounce (RFC 3464) to the sender.
 *
 * The pure pieces (MX ordering, retry schedule, TLS policy match, DSN text)
 * are exposed for unit tests.
 */
#ifndef POSTERN_QUEUE_H
#define POSTERN_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "util/config.h"

#define QUEUE_HOST_MAX 256
#define QUEUE_MX_MAX 16
#define QUEUE_ADDR_MAX 8
#define QUEUE_WORKERS_MAX 32 /* delivery threads at most */

/* Outcome of an attempt, of a lookup or of one SMTP transaction. */
enum queue_result {
	QUEUE_OK = 0,
	QUEUE_TEMPFAIL, /* try again later (or the next host) */
	QUEUE_PERMFAIL, /* bounce */
};

/* Marker at the start of last_error of an entry held by "posternctl queue hold". */
#define QUEUE_HOLD_MARK "[held] "
/* Marker in last_error (after a hold mark, if any) once the sender was told of a delay. */
#define QUEUE_WARNED_MARK "[warned] "
/* next_attempt of a held entry (9999-12-31). */
#define QUEUE_HOLD_TIME INT64_C(253402300799)

/* ---- policy (queue_policy.c) ---- */
struct queue_mx {
	char host[QUEUE_HOST_MAX]; /* lower case, no trailing dot; "" for the root (null MX) */
	unsigned preference;
};
/* Sorts by preference, keeping the given order among equal ones. */
void queue_mx_sort(struct queue_mx *mx, size_t n);
/* RFC 7505: the domain accepts no mail (one MX, preference 0, exchange "."). */
bool queue_mx_is_null(const struct queue_mx *mx, size_t n);
/* Seconds to wait after failed attempt number ATTEMPTS (1-based): MIN doubled
 * per attempt, at most MAX. */
int64_t queue_retry_delay(int attempts, unsigned min, unsigned max);
/* Whether DOMAIN is in LIST (names separated by blanks or commas, case-insensitive). */
bool queue_domain_in_list(const char *list, const char *domain);
/* The domain part of ADDRESS (after the last '@'), or "" when there is none. */
const char *queue_address_domain(const char *address);
/* Splits a relayhost "host", "host:port" or "[addr]:port" into HOST and *PORT
 * (DEFAULT_PORT when absent). 0, or -1 when malformed. */
int queue_parse_hostport(const char *spec, uint16_t default_port, char *host, size_t hostlen,
			 uint16_t *port);
/* Whether any byte of the LEN bytes at P has its high bit set. */
bool queue_has_8bit(const void *p, size_t len);

/* ---- DNS (queue_dns.c) ---- */
struct queue_resolver;
/* UPSTREAM "addr" or "addr@port" forwards every query there; empty or NULL
 * uses /etc/resolv.conf. NULL on failure with a message in ERR. */
struct queue_resolver *queue_resolver_new(const char *upstream, char *err, size_t errlen);
void queue_resolver_free(struct queue_resolver *r);
/* MX records of DOMAIN, sorted. *N = 0 and QUEUE_OK when the domain has none.
 * QUEUE_PERMFAIL when the domain does not exist. */
enum queue_result queue_resolve_mx(struct queue_resolver *r, const char *domain,
				   struct queue_mx *mx, size_t max, size_t *n, char *err,
				   size_t errlen);
/* A and AAAA addresses of HOST (a literal address is returned as is), with PORT set. */
enum queue_result queue_resolve_host(struct queue_resolver *r, const char *host, uint16_t port,
				     struct sockaddr_storage *addrs, size_t max, size_t *n,
				     char *err, size_t errlen);

/* ---- SMTP client (queue_client.c) ---- */
#define QUEUE_RCPTS_MAX 100 /* recipients of one transaction (RFC 5321 4.5.3.1.8) */

struct queue_session_opts {
	const char *helo;      /* our hostname */
	const char *peer_name; /* MX host name, for SNI and reports */
	unsigned timeout;      /* seconds */
	bool tls_required;     /* fail (temporarily) unless STARTTLS works */
};
struct queue_reply_info {
	int code;	      /* last SMTP reply code; 0 when none came */
	char text[512];	      /* that reply (one line), or what went wrong locally */
	char enhanced[16];    /* DSN status "5.1.1", derived when the peer gave none */
	char tls_version[32]; /* empty when the session stayed in cleartext */
	char tls_cipher[128];
	bool peer_dsn; /* the peer offered DSN, so it reports on its own */
};
/* What the peer offered in its EHLO reply. */
struct queue_caps {
	bool starttls, size, eightbit, smtputf8, dsn, pipelining;
	size_t max_size; /* 0: no limit given */
};
/* The envelope and content of one transaction. */
struct queue_envelope {
	const char *sender; /* "" for the null sender */
	const char *dsn_ret;
	const char *dsn_envid;
	const unsigned char *data; /* the message, LF or CRLF line ends */
	size_t len;
};
/* One recipient of a transaction and, after queue_session_send, its outcome. */
struct queue_rcpt {
	const char *address;
	const char *dsn_notify; /* passed on when the peer offers DSN; may be "" */
	const char *dsn_orcpt;
	enum queue_result result;
	struct queue_reply_info info;
};

/* One SMTP connection: greeted, EHLO (HELO when refused) and STARTTLS done. */
struct queue_session;
/* Connects to ADDR. NULL on failure, with the reason in INFO and in *RES
 * QUEUE_PERMFAIL when the server refused us with 5xx, else QUEUE_TEMPFAIL.
 * INFO records the TLS version and cipher of the session. */
struct queue_session *queue_session_open(const struct sockaddr_storage *addr,
					 const struct queue_session_opts *opts,
					 struct queue_reply_info *info, enum queue_result *res);
const struct queue_caps *queue_session_caps(const struct queue_session *s);
const struct sockaddr_storage *queue_session_addr(const struct queue_session *s);
bool queue_session_tls(const struct queue_session *s);
/* Transactions sent so far over S. */
unsigned queue_session_count(const struct queue_session *s);
/* One transaction: MAIL FROM, RCPT TO for each of the N RCPTS (pipelined
 * when the peer offers PIPELINING, RFC 2920), DATA once when any recipient
 * was accepted. Every recipient gets its own result and reply. Returns
 * false when the session is unusable afterwards (connection lost). */
bool queue_session_send(struct queue_session *s, const struct queue_envelope *env,
			struct queue_rcpt *rcpts, size_t n);
/* RSET before another transaction over S: false unless the server agreed. */
bool queue_session_reset(struct queue_session *s);
/* QUIT (when the connection still works) and frees S; NULL is fine. */
void queue_session_close(struct queue_session *s);

/* ---- content (queue_content.c) ---- */
/* Removes the "for <RCPT>" clause from the Received field at the top of
 * MSG (the one deliver_remote put there), in place, so that one copy can
 * go to several recipients without naming one of them to the others
 * (RFC 5321 7.2). Returns the new length (LEN when there is none). */
size_t queue_strip_for_clause(unsigned char *msg, size_t len, const char *rcpt);
/* RFC 6152 downgrade for a peer without 8BITMIME: every 8-bit body part is
 * re-encoded (text quoted-printable, anything else base64) into *OUT
 * (malloc'd, CRLF). 0, or -1 when it cannot be done: 8-bit bytes in a
 * header, a part declared binary (RFC 3030), or a message GMime cannot parse. */
int queue_downgrade_7bit(const unsigned char *msg, size_t len, unsigned char **out,
			 size_t *out_len);

/* ---- DSN (queue_dsn.c) ---- */
struct queue_dsn {
	const char *reporting_mta; /* our hostname */
	const char *sender;	   /* who gets the report */
	const char *recipient;	   /* Final-Recipient */
	const char *orcpt;	   /* "rfc822;addr" or "" */
	const char *envid;	   /* ENVID or "" */
	const char *action;	   /* "failed", "delayed", "relayed" */
	const char *status;	   /* "5.1.1" */
	const char *remote_mta;	   /* "" when none answered */
	const char *diagnostic;	   /* the remote reply or our reason */
	bool full;		   /* RET=FULL: the whole message, else its headers */
	int64_t arrival;	   /* unix time the message was queued */
	int64_t now;
	const char *boundary;	/* MIME boundary (random in real use) */
	const char *message_id; /* without brackets */
};
/* The report as a complete message in *OUT (malloc'd, CRLF line ends). 0 or -1. */
int queue_dsn_format(const struct queue_dsn *d, const unsigned char *orig, size_t orig_len,
		     char **out, size_t *out_len);

/* ---- DKIM signing (queue_dkim.c) ---- */
/* Key material of DOMAIN: <data_dir>/dkim/DOMAIN.key (PEM private key, 0600)
 * and <data_dir>/dkim/DOMAIN.selector (one line). EXT is "key" or "selector".
 * 0, or -1 when the path does not fit. */
static inline int queue_dkim_path(const struct config *cfg, const char *domain, const char *ext,
				  char *out, size_t outlen)
{
	int n = snprintf(out, outlen, "%s/dkim/%s.%s", cfg->server.data_dir, domain, ext);

	return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

/* Signs MSG (relaxed/relaxed, rsa-sha256) for the domain of its From header
 * when a key for that domain exists: *SIG_HEADER (malloc'd) is the complete
 * "DKIM-Signature: ...\r\n" field to put in front. *SIG_HEADER is NULL and 0
 * returned when the domain has no key; -1 with ERR on failure. */
int queue_dkim_sign(const struct config *cfg, const unsigned char *msg, size_t len,
		    char **sig_header, char *err, size_t errlen);

/* ---- runner (queue_runner.c) ---- */
/* Starts the runner thread with CFG (which must outlive it). */
int queue_runner_start(const struct config *cfg, char *err, size_t errlen);
/* Makes the runner look at the queue now. */
void queue_runner_wake(void);
/* Stops the thread after its current attempt. */
void queue_runner_stop(void);

#endif
