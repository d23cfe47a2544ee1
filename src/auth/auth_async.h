/*
 * auth_async.h - a login off the event loop, for the protocol sessions.
 *
 * auth_login_request() costs Argon2id (and maybe an SMS or a store write),
 * so SMTP AUTH, IMAP LOGIN/AUTHENTICATE and POP3 USER/PASS/AUTH hand it to
 * the job pool here and resume the session when it is done. The credentials
 * are copied into the job and wiped after the check; the caller wipes its own.
 */
#ifndef POSTERN_AUTH_ASYNC_H
#define POSTERN_AUTH_ASYNC_H

#include "auth/auth.h"

#define AUTH_LOGIN_PASSWORD_MAX 1024 /* bytes of password (and code) a protocol passes on */

struct conn;

struct auth_login {
	enum auth_result result;
	int then_rc;			     /* what THEN returned; 0 when it did not run */
	struct auth_identity id;	     /* on AUTH_OK; take it by copying, then zeroing */
	char address[STORE_ADDRESS_MAX + 1]; /* the address the client gave */
	void *arg;
};

/* Runs on the job pool right after a successful login (POP3 loads the maildrop). */
typedef int (*auth_login_then_fn)(struct store *st, const struct auth_identity *id, void *arg);
/* Runs on the connection's thread when the connection is still open; L is
 * freed (and its identity cleared) when it returns. */
typedef void (*auth_login_done_fn)(struct conn *c, struct auth_login *l);

/*
 * Checks REQ (address, password, protocol; the client address is taken from
 * C) on the job pool, then calls DONE on C's thread. THEN may be NULL.
 * Returns 0, -1 when the job could not start (out of memory, pool full: reply
 * with a temporary failure), or -2 when the address or password is longer
 * than a login accepts (reply as for wrong credentials).
 */
int auth_login_async(struct conn *c, const struct auth_request *req, auth_login_then_fn then,
		     auth_login_done_fn done, void *arg);

#endif
