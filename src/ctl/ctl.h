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

#include "util/config.h"

struct store;

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

struct ctl {
	const char *config_path;
	struct config cfg;
	bool json; /* --json: machine-readable output on stdout */
	struct store *st; /* opened on first ctl_store() */
};

/* Opens (and migrates) the store of the config; prints the reason and returns
 * NULL on failure (the caller exits with CTL_EXIT_STORE). */
struct store *ctl_store(struct ctl *ctl);

/* Reads a password: a prompt without echo on a terminal (asked twice when
 * CONFIRM), else one line of stdin. Returns its length or -1. */
ssize_t ctl_read_password(const char *prompt, bool confirm, char *buf, size_t len);

/* Prints an error (already translated) to stderr as "posternctl: ..." */
void ctl_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A command group: ARGV[0] is the group name ("user"), ARGV[1] the verb. */
typedef int (*ctl_command_fn)(struct ctl *ctl, int argc, char **argv);

#endif
