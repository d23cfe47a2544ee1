/*
 * auth_async.c - auth_login_request() on the job pool for a protocol
 * session (see auth_async.h). The only part of src/auth that knows about
 * connections; it keeps the copying, wiping and resuming in one place.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "auth/auth_async.h"
#include "net/net.h"

struct login_job {
	struct auth_login l;
	char password[AUTH_LOGIN_PASSWORD_MAX + 1];
	size_t pwlen;
	char protocol[16];
	char ip[64]; /* the client's address, for throttling and the audit log */
	auth_login_then_fn then;
	auth_login_done_fn done;
};

static void login_job_free(struct login_job *job)
{
	auth_identity_clear(&job->l.id);
	sodium_memzero(job, sizeof(*job));
	free(job);
}

static void login_work(struct store *st, void *arg)
{
	struct login_job *job = arg;
	struct auth_request req = {.address = job->l.address,
				   .password = job->password,
				   .pwlen = job->pwlen,
				   .protocol = job->protocol[0] ? job->protocol : NULL,
				   .client_ip = job->ip};

	job->l.result = auth_login_request(st, &req, &job->l.id);
	sodium_memzero(job->password, sizeof(job->password));
	if (job->l.result == AUTH_OK && job->then != NULL)
		job->l.then_rc = job->then(st, &job->l.id, job->l.arg);
}

static void login_done(struct conn *c, void *arg)
{
	struct login_job *job = arg;

	if (!conn_is_closing(c))
		job->done(c, &job->l);
	login_job_free(job);
}

int auth_login_async(struct conn *c, const struct auth_request *req, auth_login_then_fn then,
		     auth_login_done_fn done, void *arg)
{
	struct login_job *job;

	if (req->address == NULL || strlen(req->address) > STORE_ADDRESS_MAX ||
	    req->pwlen > AUTH_LOGIN_PASSWORD_MAX)
		return -2;
	job = calloc(1, sizeof(*job));
	if (job == NULL)
		return -1;
	snprintf(job->l.address, sizeof(job->l.address), "%s", req->address);
	memcpy(job->password, req->password, req->pwlen);
	job->pwlen = req->pwlen;
	snprintf(job->protocol, sizeof(job->protocol), "%s",
		 req->protocol != NULL ? req->protocol : "");
	snprintf(job->ip, sizeof(job->ip), "%s",
		 conn_peer_address(c) != NULL ? conn_peer_address(c) : "");
	job->l.arg = arg;
	job->then = then;
	job->done = done;
	if (conn_defer(c, login_work, login_done, job) < 0) {
		login_job_free(job);
		return -1;
	}
	return 0;
}
