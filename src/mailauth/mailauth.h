/*
 * mailauth.h - checks of mail arriving from outside on the MX listener:
 * SPF (RFC 7208, libspf2), DKIM signatures (RFC 6376, libopendkim) and
 * DMARC (RFC 7489, libopendmarc) with identifier alignment, and the
 * Authentication-Results header (RFC 8601) that records them. Lookups go
 * through libunbound (the [queue] resolver when set, as for delivery).
 */
#ifndef POSTERN_MAILAUTH_H
#define POSTERN_MAILAUTH_H

#include <stdbool.h>
#include <stddef.h>

enum mailauth_verdict {
	MAILAUTH_NONE = 0,
	MAILAUTH_PASS,
	MAILAUTH_FAIL,
	MAILAUTH_SOFTFAIL,
	MAILAUTH_NEUTRAL,
	MAILAUTH_TEMPERROR,
	MAILAUTH_PERMERROR,
};

/* What the DMARC record of the From domain asks for a failing message. */
enum mailauth_policy {
	MAILAUTH_POLICY_NONE = 0,
	MAILAUTH_POLICY_QUARANTINE,
	MAILAUTH_POLICY_REJECT
};

struct mailauth_result {
	enum mailauth_verdict spf, dkim, dmarc;
	enum mailauth_policy policy; /* applies when dmarc == MAILAUTH_FAIL */
	char mailfrom_domain[256];   /* SPF identity (MAIL FROM, or HELO for the null sender) */
	char dkim_domain[256];	     /* d= of the first signature, "" when none */
	char from_domain[256];	     /* header From */
};

/* "pass", "fail", ... as in RFC 8601. */
const char *mailauth_verdict_name(enum mailauth_verdict v);

/* Sets the upstream DNS server ("addr" or "addr@port"; empty: resolv.conf)
 * before the first check. */
void mailauth_set_resolver(const char *upstream);

/* Settings of the checks ([mailauth] in the config), given before the first check. */
struct mailauth_options {
	unsigned dns_timeout_ms; /* all lookups of one message together; 0: the default */
	bool check_loopback;	 /* evaluate SPF for loopback clients too (libspf2 passes them) */
	const char *psl_file;	 /* Public Suffix List; NULL or "": the Debian path */
};
#define MAILAUTH_DNS_TIMEOUT_MS_DEFAULT 10000
#define MAILAUTH_PSL_FILE_DEFAULT "/usr/share/publicsuffix/public_suffix_list.dat"
void mailauth_set_options(const struct mailauth_options *opts);

/* ---- Public Suffix List (mailauth_psl.c) ---- */
/* Reads the list at PATH (replacing one read before). 0, or -1 with ERR. */
int mailauth_psl_load(const char *path, char *err, size_t errlen);
void mailauth_psl_free(void);
/* The organizational domain of DOMAIN (lower case, no trailing dot): the
 * public suffix plus one label, as a pointer into DOMAIN; DOMAIN itself when
 * it is a public suffix. Without a loaded list every TLD is a suffix. */
const char *mailauth_org_domain(const char *domain);

/* The domain of the address in MSG's From field (continuation lines
 * included), lower case, into OUT; 0, or -1 when there is none (OUT ""). */
int mailauth_from_domain(const unsigned char *msg, size_t len, char *out, size_t outlen);

/* Runs SPF, DKIM and DMARC for one message. Safe from several threads. */
void mailauth_check(const char *client_ip, const char *helo, const char *mail_from,
		    const unsigned char *msg, size_t len, struct mailauth_result *out);

/* "Authentication-Results: AUTHSERV_ID; spf=...; dkim=...; dmarc=...\r\n" into OUT.
 * Its length, or -1 when OUT is too small. */
int mailauth_header(const struct mailauth_result *r, const char *authserv_id, char *out,
		    size_t outlen);

/* Removes, in place, every Authentication-Results header field of MSG that
 * claims AUTHSERV_ID (forged from outside, RFC 8601 5). Returns the new length. */
size_t mailauth_strip(unsigned char *msg, size_t len, const char *authserv_id);

/* Feeds a CRLF message to a libopendkim handle (DKIM *) for signing or
 * verifying, ending with dkim_eom(). Returns the DKIM_STAT. */
int mailauth_dkim_feed(void *dkim, const unsigned char *msg, size_t len);

/* MSG with every bare LF made CRLF, as libopendkim wants it (malloc'd; NULL
 * when out of memory). */
unsigned char *mailauth_crlf_copy(const unsigned char *msg, size_t len, size_t *out_len);

#endif
