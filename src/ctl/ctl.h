/*
 * ctl.h - shared pieces of posternctl, the admin CLI. Each command group
 * lives in its own file (cmd_user.c, cmd_domain.c, ...) and is listed in the
 * dispatch table of main.c.
 *
 * Exit codes are part of the interface scripts rely on (docs/posternctl.md).
 * Passwords come from a prompt without echo or one line of stdin, never argv.
 */
#ifndef POSTERN_CTL_H
#define POSTERN_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "util/config.h"

struct store;
struct store_user;

enum ctl_exit {
	CTL_EXIT_OK = 0,
	CTL_EXIT_FAIL = 1,     /* the operation failed */
	CTL_EXIT_USAGE = 2,    /* bad arguments */
	CTL_EXIT_NOTFOUND = 3, /* no such domain/user/alias/... */
	CTL_EXIT_EXISTS = 4,   /* already exists */
	CTL_EXIT_CONFIG = 5,   /* the config file is missing or invalid */
	CTL_EXIT_STORE = 6,    /* the store could not be opened or failed */
	CTL_EXIT_DAEMON = 7,   /* the running daemon could not be reached */
};

/* Longest password accepted from a prompt or stdin. */
#define CTL_PASSWORD_MAX 1024

struct ctl {
	const char *config_path;
	struct config cfg;
	bool config_loaded;
	bool json;	    /* --json: machine-readable output on stdout */
	struct store *st;   /* opened on first ctl_store() */
	int schema_version; /* after ctl_store(): the migrated schema version */
};

/* Loads the config file once; prints the reason on failure. Returns
 * CTL_EXIT_OK or CTL_EXIT_CONFIG. */
int ctl_config(struct ctl *ctl);

/* Opens (and migrates) the store of the config; prints the reason and returns
 * NULL on failure (the caller exits with CTL_EXIT_STORE). */
struct store *ctl_store(struct ctl *ctl);

/* Like ctl_store() but returns the exit code: CTL_EXIT_OK (and *OUT set),
 * CTL_EXIT_CONFIG or CTL_EXIT_STORE. */
int ctl_store_open(struct ctl *ctl, struct store **out);

/* Closes the store if it was opened. */
void ctl_close(struct ctl *ctl);

/* Reads a password: a prompt without echo on a terminal (asked twice when
 * CONFIRM), else one line of stdin. Returns its length or -1. */
ssize_t ctl_read_password(const char *prompt, bool confirm, char *buf, size_t len);

/* Asks QUESTION on a terminal (or reads one line of stdin) and returns true
 * only for an explicit "y" or "yes". */
bool ctl_confirm(const char *question);

/* Prints an error (already translated) to stderr as "posternctl: ..." */
void ctl_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints a notice (already translated) to stderr, for warnings and hints. */
void ctl_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints a store failure ("what: store error") and maps the STORE_* code to an exit code. */
int ctl_store_fail(struct ctl *ctl, int rc, const char *what);

/* Prints V as one line of JSON on stdout and releases it. */
void ctl_json_print(json_t *v);

/* Records an admin action in the audit log; a failure is reported, not fatal. */
void ctl_audit(struct ctl *ctl, const char *event, const char *detail);

/* Tells a running daemon to drop cached logins of ADDRESS; silent when none runs. */
void ctl_daemon_forget(struct ctl *ctl, const char *address);

/* Lower-cases and checks a domain name (RFC 1035 labels, at least one dot).
 * Returns 0 or -1 with a translated reason in ERR. */
int ctl_domain_normalize(const char *in, char *out, size_t outlen, char *err, size_t errlen);

/* Lower-cases and checks local@domain (dot-atom local part). */
int ctl_address_normalize(const char *in, char *out, size_t outlen, char *err, size_t errlen);

/* Parses "0", "123", "10K", "5M", "2G" (powers of 1024). 0 or -1. */
int ctl_parse_size(const char *s, int64_t *out);

/* Formats BYTES for people: "12.3 MiB". */
void ctl_format_size(int64_t bytes, char *out, size_t outlen);

/* Base64 of a binary value into OUT (standard alphabet, padded). */
void ctl_base64(const unsigned char *bin, size_t len, char *out, size_t outlen);

/* Length of the header block of message MSG (through the line break before
 * the empty line; all of LEN when there is none), at most MAX. */
size_t ctl_header_length(const unsigned char *msg, size_t len, size_t max);

/*
 * Option parsing for a verb. ARGV[0] is the verb; options may come anywhere
 * after it ("--json" is always understood). Positional arguments are
 * collected in POS (at most MAX_POS). Returns 0, or -1 after printing why.
 */
struct ctl_option {
	const char *name;   /* "--yes" */
	const char **value; /* option takes a value when not NULL */
	bool *flag;	    /* set to true when present (for options without a value) */
};
int ctl_parse_args(struct ctl *ctl, int argc, char **argv, const struct ctl_option *opts,
		   char **pos, int min_pos, int max_pos, int *npos);

/* A command group: ARGV[0] is the group name ("user"), ARGV[1] the verb. */
typedef int (*ctl_command_fn)(struct ctl *ctl, int argc, char **argv);

/* A verb of a group; ARGV[0] is the verb. */
struct ctl_verb {
	const char *name;
	int (*fn)(struct ctl *ctl, int argc, char **argv);
	const char *usage; /* N_("user add ADDRESS") */
	const char *help;  /* N_("create a user (password from prompt or stdin)") */
};

/* Runs the verb ARGV[1] of group ARGV[0] from VERBS, or prints the group's
 * usage on stderr and returns CTL_EXIT_USAGE. "help" lists the verbs. */
int ctl_dispatch(struct ctl *ctl, const struct ctl_verb *verbs, size_t n, int argc, char **argv);

/* Prints the usage line of VERB of VERBS on stderr and returns CTL_EXIT_USAGE. */
int ctl_usage(const struct ctl_verb *verbs, size_t n, const char *verb);

/* The command groups (one file each). */
int ctl_cmd_alias(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_app_password(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_audit(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_auth(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_cert(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_db(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_dkim(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_domain(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_init(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_otp(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_pgp(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_quarantine(struct ctl *ctl, int argc, char **argv);
/* posternctl pgp policy (cmd_pgp_policy.c); ARGV[0] is the verb. */
int ctl_pgp_policy(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_queue(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_quota(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_recovery(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_scan(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_smime(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_sender(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_status(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_trace(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_user(struct ctl *ctl, int argc, char **argv);

/* Creates ADDRESS (domain must exist, store open) with password PW: hash, key
 * pair, recovery copy when configured, audit record. Returns an exit code
 * after printing why on failure; PUB_OUT and RECOVERY_OUT describe the user. */
int ctl_user_create(struct ctl *ctl, const char *address, const char *pw, size_t pwlen,
		    unsigned char pub_out[32], bool *recovery_out);

/* ---- one user's login (ctl_account.c) ---- */
struct user_key;
/* Normalizes ARG, opens the store and loads the user into U. CTL_EXIT_OK, or
 * an exit code after printing why (CTL_EXIT_USAGE for a malformed address:
 * the caller adds its usage line). */
int ctl_user_load(struct ctl *ctl, const char *arg, struct store **st, struct store_user *u);
/* A password buffer of CTL_PASSWORD_MAX + 1 bytes in guarded memory, wiped when freed. */
char *ctl_password_new(void);
void ctl_password_free(char *p);
/* Asks for U's password (PROMPT) and unlocks its private key into *KEY.
 * 0, 1 when the password is wrong, -1 when none was given (after saying so). */
int ctl_user_unlock(const struct store_user *u, const char *prompt, struct user_key **key);
/* Reads a new password into PW (from ctl_password_new; asked twice on a
 * terminal) and applies the password policy (auth_password_acceptable).
 * Its length, or -1 after printing why. */
ssize_t ctl_read_new_password(const char *prompt, char *pw);
/* Mails a security notice (auth_notice_compose) into U's INBOX: KIND is an
 * enum auth_notice_kind, DETAIL one line or NULL. A failure is reported as a
 * warning, not fatal. */
void ctl_security_notice(struct ctl *ctl, struct store *st, const struct store_user *u, int kind,
			 const char *detail);

/* Shared by the user and recovery groups (cmd_recovery.c): the configured
 * recovery public key (auth.recovery_public_key: base64 or a key file).
 * 1 when configured (PUB filled), 0 when not, -1 after printing why. */
int ctl_recovery_public_key(struct ctl *ctl, unsigned char pub[32]);
/* Reads a recovery private key file and derives its public half; 0 or -1 after printing why. */
int ctl_recovery_private_key(const char *path, unsigned char pub[32], unsigned char priv[32]);

/* ---- GnuPG homes of a user (cmd_pgp.c; used by cmd_smime.c too) ---- */
struct gpg_user;
/* Loads ARG's user and opens its GnuPG homes; with UNLOCK the user's key is
 * unlocked first by its password (prompt or one line of stdin) or, when
 * RECOVERY_KEY is a file, by the recovery key. CTL_EXIT_OK or an exit code
 * after printing why (CTL_EXIT_USAGE for a malformed address). */
int ctl_gpg_open(struct ctl *ctl, const char *arg, bool unlock, const char *recovery_key,
		 struct gpg_user **out);
/* The "list USER" verb of pgp and smime: lists the keys of PROTO (a
 * gpgme_protocol_t) in the user's home, as text or --json. CTL_EXIT_USAGE
 * (nothing printed: the caller adds its usage line) for bad arguments. */
int ctl_gpg_list(struct ctl *ctl, int argc, char **argv, int proto);
/* Deletes key FPR (and its secret part) of PROTO from U's home once QUESTION
 * is confirmed, or at once when YES. */
int ctl_gpg_delete(struct ctl *ctl, struct gpg_user *u, int proto, const char *fpr, bool yes,
		   const char *question);
/* Reads PATH ("-": stdin) into *DATA (malloc'd), at most MAX bytes, not empty. */
int ctl_read_file(const char *path, size_t max, char **data, size_t *len);

#endif
