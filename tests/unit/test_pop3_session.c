/*
 * test_pop3_session.c - the POP3 state machine against test doubles of the
 * layers below it: a scripted connection (input and output buffers, TLS on
 * or off, deferred jobs run when the test says), a login that accepts one
 * user, and an in-memory INBOX whose "sealed" blobs are the plaintext. This
 * proves the session logic (states, pipelining, dot-stuffing, UPDATE) in
 * isolation; tests/integration/test_pop3.py proves it with the real layers.
 */
#include <config.h>

#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "auth/auth.h"
#include "crypto/crypto.h"
#include "net/net.h"
#include "pop3/pop3.h"
#include "store/store.h"

/* ---- the connection double ---- */

struct conn {
	struct evbuffer *in, *out;
	bool tls, closing, starttls;
	struct config cfg;
	struct config_listener listener;
	struct event_base *base;
	char user[STORE_ADDRESS_MAX + 1];
	conn_job_fn job_work;
	conn_done_fn job_done;
	void *job_arg;
};

static const struct protocol_ops *ops;
static size_t unsent_extra; /* pretends the peer has not read this much */
static struct conn conn;
static void *session;

void net_register_protocol(const struct protocol_ops *o)
{
	ops = o;
}

struct evbuffer *conn_input(struct conn *c)
{
	return c->in;
}

ssize_t conn_readline(struct conn *c, char *buf, size_t max)
{
	struct evbuffer_ptr p = evbuffer_search_eol(c->in, NULL, NULL, EVBUFFER_EOL_LF);
	size_t len;

	if (p.pos < 0)
		return -1;
	len = (size_t)p.pos;
	if (len > max) {
		evbuffer_drain(c->in, len + 1);
		return -2;
	}
	evbuffer_remove(c->in, buf, len + 1);
	if (len == 0 || buf[len - 1] != '\r')
		return -3;
	buf[len - 1] = '\0';
	return (ssize_t)(len - 1);
}

int conn_write(struct conn *c, const void *data, size_t len)
{
	return evbuffer_add(c->out, data, len);
}

int conn_printf(struct conn *c, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = evbuffer_add_vprintf(c->out, fmt, ap);
	va_end(ap);
	return rc;
}

size_t conn_output_pending(struct conn *c)
{
	return evbuffer_get_length(c->out) + unsent_extra;
}

int conn_starttls(struct conn *c)
{
	c->starttls = true;
	evbuffer_drain(c->in, evbuffer_get_length(c->in));
	return 0;
}

void conn_close(struct conn *c)
{
	c->closing = true;
}

void conn_pause(struct conn *c)
{
	(void)c;
}

void conn_resume(struct conn *c)
{
	(void)c;
}

bool conn_is_tls(const struct conn *c)
{
	return c->tls;
}

const char *conn_peer_address(const struct conn *c)
{
	(void)c;
	return "127.0.0.1";
}

uint64_t conn_id(const struct conn *c)
{
	(void)c;
	return 1;
}

const struct config_listener *conn_listener(const struct conn *c)
{
	return &c->listener;
}

const struct config *conn_config(const struct conn *c)
{
	return &c->cfg;
}

struct store *conn_store(struct conn *c)
{
	(void)c;
	return NULL;
}

struct event_base *conn_base(struct conn *c)
{
	return c->base;
}

bool conn_is_closing(const struct conn *c)
{
	return c->closing;
}

void conn_set_user(struct conn *c, const char *address)
{
	snprintf(c->user, sizeof(c->user), "%s", address);
}

const char *conn_user(const struct conn *c)
{
	return c->user[0] ? c->user : NULL;
}

int conn_defer(struct conn *c, conn_job_fn work, conn_done_fn done, void *arg)
{
	ck_assert_ptr_null(c->job_work); /* one job at a time per connection */
	c->job_work = work;
	c->job_done = done;
	c->job_arg = arg;
	return 0;
}

/* Runs the pending job as the pool would, then its completion. */
static bool run_job(void)
{
	conn_job_fn work = conn.job_work;
	if (!work)
		return false;
	conn.job_work = NULL;
	work(NULL, conn.job_arg);
	conn.job_done(&conn, conn.job_arg);
	return true;
}

/* ---- login and store doubles ---- */

#define N_MSGS 3
static const char *bodies[N_MSGS] = {
    "Subject: a\r\n\r\nhello\r\n",
    "Subject: b\r\n\r\n.dot\r\n..\r\nend",
    "Subject: c\r\n\r\n1\r\n2\r\n3\r\n",
};
static bool expunged[N_MSGS];
static int expunge_calls;

enum auth_result auth_login_request(struct store *st, const struct auth_request *req,
				    struct auth_identity *out)
{
	(void)st;
	memset(out, 0, sizeof(*out));
	ck_assert_str_eq(req->protocol, "pop3");
	if (strcmp(req->address, "alice@example.org") != 0 || req->pwlen != 7 ||
	    memcmp(req->password, "pass wd", 7) != 0)
		return AUTH_FAILED;
	out->user_id = 7;
	snprintf(out->address, sizeof(out->address), "%s", req->address);
	return AUTH_OK;
}

void auth_identity_clear(struct auth_identity *id)
{
	memset(id, 0, sizeof(*id));
}

int store_mailbox_get(struct store *st, int64_t user_id, const char *name,
		      struct store_mailbox *out)
{
	(void)st;
	ck_assert_int_eq(user_id, 7);
	ck_assert_str_eq(name, "INBOX");
	memset(out, 0, sizeof(*out));
	out->id = 70;
	out->uidvalidity = 1234;
	return STORE_OK;
}

int store_message_list(struct store *st, int64_t mailbox_id, uint32_t min_uid, store_message_cb cb,
		       void *arg)
{
	(void)st;
	(void)min_uid;
	ck_assert_int_eq(mailbox_id, 70);
	for (int i = 0; i < N_MSGS; i++) {
		struct store_message m = {.id = 100 + i,
					  .mailbox_id = 70,
					  .uid = 10 + (uint32_t)i,
					  .size = (int64_t)strlen(bodies[i])};
		if (!expunged[i] && cb(arg, &m) != STORE_OK)
			return STORE_ERR;
	}
	return STORE_OK;
}

int store_message_blob(struct store *st, int64_t message_id, unsigned char **blob, size_t *len)
{
	int i = (int)(message_id - 100);
	(void)st;
	if (i < 0 || i >= N_MSGS || expunged[i])
		return STORE_NOTFOUND;
	*len = strlen(bodies[i]);
	*blob = malloc(*len);
	memcpy(*blob, bodies[i], *len);
	return STORE_OK;
}

int crypto_open(const struct user_key *k, const unsigned char *blob, size_t blob_len,
		unsigned char **msg, size_t *msg_len)
{
	(void)k;
	*msg = malloc(blob_len ? blob_len : 1);
	memcpy(*msg, blob, blob_len);
	*msg_len = blob_len;
	return 0;
}

int store_message_get(struct store *st, int64_t mailbox_id, uint32_t uid, struct store_message *out)
{
	int i = (int)uid - 10;
	(void)st;
	ck_assert_int_eq(mailbox_id, 70);
	if (i < 0 || i >= N_MSGS || expunged[i])
		return STORE_NOTFOUND;
	memset(out, 0, sizeof(*out));
	out->id = 100 + i;
	out->uid = uid;
	return STORE_OK;
}

int store_begin(struct store *st)
{
	(void)st;
	return STORE_OK;
}

int store_commit(struct store *st)
{
	(void)st;
	return STORE_OK;
}

int store_rollback(struct store *st)
{
	(void)st;
	return STORE_OK;
}

int store_message_expunge(struct store *st, int64_t message_id)
{
	int i = (int)(message_id - 100);
	(void)st;
	expunge_calls++;
	/* Like the real store: a missing message would poison the transaction. */
	ck_assert(!expunged[i]);
	expunged[i] = true;
	return STORE_OK;
}

/* ---- helpers ---- */

static void setup(void)
{
	memset(&conn, 0, sizeof(conn));
	conn.in = evbuffer_new();
	conn.out = evbuffer_new();
	conn.base = event_base_new();
	config_defaults(&conn.cfg);
	conn.cfg.auth.failure_delay_ms = 0;
	conn.cfg.limits.max_errors = 5;
	conn.listener.tls = TLS_MODE_STARTTLS;
	conn.tls = true;
	memset(expunged, 0, sizeof(expunged));
	unsent_extra = 0;
	expunge_calls = 0;
	pop3_register();
	ck_assert_ptr_nonnull(ops);
	ck_assert_str_eq(ops->name, "pop3");
}

static void teardown(void)
{
	if (session)
		ops->close(session);
	session = NULL;
	evbuffer_free(conn.in);
	evbuffer_free(conn.out);
	event_base_free(conn.base);
}

static void open_session(bool tls)
{
	conn.tls = tls;
	session = ops->open(&conn);
	ck_assert_ptr_nonnull(session);
}

/* Feeds TEXT, runs pending jobs, returns (and clears) everything sent. */
static char *talk(const char *text)
{
	static char out[65536];
	size_t n;

	evbuffer_add(conn.in, text, strlen(text));
	ops->input(session);
	while (run_job())
		;
	n = evbuffer_get_length(conn.out);
	ck_assert_uint_lt(n, sizeof(out));
	evbuffer_remove(conn.out, out, n);
	out[n] = '\0';
	return out;
}

static void login(void)
{
	open_session(true);
	talk("");
	ck_assert_str_eq(talk("USER alice@example.org\r\nPASS pass wd\r\n"),
			 "+OK send PASS\r\n+OK maildrop has 3 messages (71 octets)\r\n");
}

START_TEST(greeting_and_capa_depend_on_tls)
{
	open_session(false);
	ck_assert_str_eq(talk(""), "+OK Postern POP3 server ready\r\n");
	ck_assert_str_eq(talk("CAPA\r\n"), "+OK Capability list follows\r\nTOP\r\nUIDL\r\n"
					   "RESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nSTLS\r\n"
					   "IMPLEMENTATION Postern\r\n.\r\n");
	ck_assert_str_eq(talk("USER alice@example.org\r\n"),
			 "-ERR [AUTH] plaintext authentication disallowed: use STLS first\r\n");
	/* Input pipelined behind STLS is dropped, never run after the handshake. */
	ck_assert_str_eq(talk("STLS\r\nCAPA\r\n"), "+OK Begin TLS negotiation\r\n");
	ck_assert(conn.starttls);
	conn.tls = true;
	ops->tls_ready(session);
	ck_assert_str_eq(talk("CAPA\r\n"), "+OK Capability list follows\r\nTOP\r\nUIDL\r\n"
					   "RESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nUSER\r\n"
					   "SASL PLAIN\r\nIMPLEMENTATION Postern\r\n.\r\n");
	ck_assert_str_eq(talk("STLS\r\n"), "-ERR already using TLS\r\n");
}
END_TEST

START_TEST(login_failure_and_sasl_plain)
{
	open_session(true);
	talk("");
	ck_assert_str_eq(talk("USER alice@example.org\r\nPASS wrong\r\n"),
			 "+OK send PASS\r\n-ERR [AUTH] Authentication failed\r\n");
	ck_assert_str_eq(talk("PASS pass wd\r\n"), "-ERR USER first\r\n");
	/* base64("\0alice@example.org\0pass wd") */
	ck_assert_str_eq(talk("AUTH PLAIN\r\n"), "+ \r\n");
	ck_assert_str_eq(talk("AGFsaWNlQGV4YW1wbGUub3JnAHBhc3Mgd2Q=\r\n"),
			 "+OK maildrop has 3 messages (71 octets)\r\n");
	ck_assert_str_eq(conn.user, "alice@example.org");
}
END_TEST

START_TEST(retr_top_list_uidl)
{
	login();
	ck_assert_str_eq(talk("STAT\r\n"), "+OK 3 71\r\n");
	ck_assert_str_eq(talk("LIST\r\n"), "+OK 3 messages (71 octets)\r\n1 21\r\n2 27\r\n3 "
					   "23\r\n.\r\n");
	ck_assert_str_eq(talk("UIDL 2\r\n"), "+OK 2 1234-11\r\n");
	ck_assert_str_eq(talk("RETR 2\r\n"),
			 "+OK 27 octets\r\nSubject: b\r\n\r\n..dot\r\n...\r\nend\r\n.\r\n");
	ck_assert_str_eq(talk("TOP 3 1\r\n"),
			 "+OK top of message follows\r\nSubject: c\r\n\r\n1\r\n.\r\n");
	ck_assert_str_eq(talk("RETR 4\r\n"), "-ERR no such message\r\n");
}
END_TEST

START_TEST(retr_waits_while_the_client_does_not_read)
{
	login();
	unsent_extra = 1024 * 1024;
	ck_assert_str_eq(talk("RETR 1\r\nNOOP\r\n"), "+OK 21 octets\r\n");
	event_base_loop(conn.base, EVLOOP_ONCE);
	ck_assert_str_eq(talk(""), "");
	unsent_extra = 0;
	event_base_loop(conn.base, EVLOOP_ONCE);
	/* The rest of the message, then the pipelined NOOP. */
	ck_assert_str_eq(talk(""), "Subject: a\r\n\r\nhello\r\n.\r\n+OK\r\n");
}
END_TEST

START_TEST(pipelined_dele_rset_quit_expunges_once)
{
	login();
	ck_assert_str_eq(talk("DELE 1\r\nDELE 3\r\nSTAT\r\nRSET\r\nDELE 2\r\nRETR 2\r\nQUIT\r\n"),
			 "+OK message 1 deleted\r\n+OK message 3 deleted\r\n+OK 1 27\r\n"
			 "+OK maildrop has 3 messages (71 octets)\r\n+OK message 2 deleted\r\n"
			 "-ERR message 2 already deleted\r\n"
			 "+OK Postern POP3 server signing off (1 messages deleted)\r\n");
	ck_assert(conn.closing);
	ck_assert(!expunged[0] && expunged[1] && !expunged[2]);
}
END_TEST

START_TEST(dropped_session_deletes_nothing_and_gone_messages_are_skipped)
{
	login();
	talk("DELE 1\r\nDELE 2\r\n");
	ops->close(session);
	session = NULL;
	ck_assert_int_eq(expunge_calls, 0);

	login();
	expunged[0] = true; /* another session removed it meanwhile */
	ck_assert_str_eq(talk("RETR 1\r\n"), "-ERR message 1 was removed by another session\r\n");
	ck_assert_str_eq(talk("DELE 1\r\nDELE 3\r\nQUIT\r\n"),
			 "+OK message 1 deleted\r\n+OK message 3 deleted\r\n"
			 "+OK Postern POP3 server signing off (1 messages deleted)\r\n");
	ck_assert(expunged[2] && !expunged[1]);
}
END_TEST

START_TEST(errors_states_and_limits)
{
	open_session(true);
	talk("");
	ck_assert_str_eq(talk("STAT\r\n"), "-ERR command not valid in this state\r\n");
	ck_assert_str_eq(talk("FOO\r\n"), "-ERR unknown command\r\n");
	ck_assert_str_eq(talk("NOOP\n"), "-ERR lines must end with CRLF\r\n");
	ck_assert_str_eq(talk("APOP a b\r\n"),
			 "-ERR [AUTH] APOP is not supported, use USER/PASS or AUTH PLAIN over "
			 "TLS\r\n");
	ck_assert(!conn.closing);
	ck_assert_str_eq(talk("RETR 1\r\nNOOP\r\n"),
			 "-ERR command not valid in this state\r\n"
			 "-ERR [SYS/PERM] too many errors, closing connection\r\n");
	ck_assert(conn.closing);
}
END_TEST

static Suite *session_suite(void)
{
	Suite *s = suite_create("pop3_session");
	TCase *tc = tcase_create("session");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, greeting_and_capa_depend_on_tls);
	tcase_add_test(tc, login_failure_and_sasl_plain);
	tcase_add_test(tc, retr_top_list_uidl);
	tcase_add_test(tc, retr_waits_while_the_client_does_not_read);
	tcase_add_test(tc, pipelined_dele_rset_quit_expunges_once);
	tcase_add_test(tc, dropped_session_deletes_nothing_and_gone_messages_are_skipped);
	tcase_add_test(tc, errors_states_and_limits);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(session_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
