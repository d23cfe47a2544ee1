/*
 * test_deliver.c - local delivery and the outbound queue against a temporary
 * SQLite store: delivered mail decrypts byte-exact with the recipient's key,
 * the scan result is stored 1:1, spam/phishing go to Junk, malware to the
 * quarantine, remote mail to the queue with its DSN parameters, and a
 * refusal for one recipient (quota, unknown user) stores nothing at all.
 */
#include <config.h>

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "crypto/crypto.h"
#include "deliver/deliver.h"
#include "scan/scan.h"
#include "store/store.h"
#include "util/config.h"

static char dir[64];
static struct config cfg;
static struct store *st;
static struct user_key *alice_key, *bob_key;
static int64_t alice_id, bob_id;

static const unsigned char MSG[] = "From: Carol <carol@example.net>\r\n"
				   "To: alice@example.org\r\n"
				   "Subject: lunch\r\n"
				   "Message-ID: <lunch@example.net>\r\n"
				   "\r\n"
				   "Shall we meet at noon?\r\n"
				   ".a line that was dot-stuffed\r\n";

static int64_t add_user(const char *address, const char *password, struct user_key **key)
{
	struct store_user u;

	memset(&u, 0, sizeof(u));
	snprintf(u.address, sizeof(u.address), "%s", address);
	ck_assert_int_eq(crypto_password_hash(password, strlen(password), u.password_hash), 0);
	ck_assert_int_eq(crypto_user_keygen(password, strlen(password), u.public_key,
					    &u.wrapped_key, &u.wrapped_key_len, key),
			 0);
	ck_assert_msg(store_user_add(st, &u) == STORE_OK, "user add: %s", store_error(st));
	store_user_clear(&u);
	return u.id;
}

static char mariadb_db[64];

static void mariadb_sql(const char *sql)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "mariadb --no-defaults -S '%s' -u root -e '%s'",
		 getenv("POSTERN_TEST_MARIADB_SOCKET"), sql);
	ck_assert_msg(system(cmd) == 0, "%s failed", cmd);
}

static void setup_engine(enum store_engine engine)
{
	char err[256], sql[256];
	int version;

	ck_assert_int_eq(crypto_setup(), 0);
	crypto_set_argon2_cost(1, 8192);
	snprintf(dir, sizeof(dir), "/tmp/postern-test-deliver-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	config_defaults(&cfg);
	snprintf(cfg.server.hostname, sizeof(cfg.server.hostname), "mx.example.org");
	cfg.store.engine = engine;
	snprintf(cfg.store.sqlite_path, sizeof(cfg.store.sqlite_path), "%s/postern.db", dir);
	mariadb_db[0] = '\0';
	if (engine == STORE_ENGINE_MARIADB) {
		snprintf(mariadb_db, sizeof(mariadb_db), "postern_deliver_%ld", (long)getpid());
		snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s; CREATE DATABASE %s",
			 mariadb_db, mariadb_db);
		mariadb_sql(sql);
		snprintf(cfg.store.mariadb_socket, sizeof(cfg.store.mariadb_socket), "%s",
			 getenv("POSTERN_TEST_MARIADB_SOCKET"));
		snprintf(cfg.store.mariadb_user, sizeof(cfg.store.mariadb_user), "root");
		snprintf(cfg.store.mariadb_database, sizeof(cfg.store.mariadb_database), "%s",
			 mariadb_db);
	}
	snprintf(cfg.queue.key_file, sizeof(cfg.queue.key_file), "%s/queue.key", dir);
	st = store_open(&cfg.store, err, sizeof(err));
	ck_assert_msg(st != NULL, "store_open: %s", err);
	ck_assert_msg(store_migrate(st, &version) == STORE_OK, "migrate: %s", store_error(st));
	ck_assert_int_eq(store_domain_add(st, "example.org"), STORE_OK);
	alice_id = add_user("alice@example.org", "alice password", &alice_key);
	bob_id = add_user("bob@example.org", "bob password", &bob_key);
	ck_assert_int_eq(store_alias_add(st, "info@example.org", "alice@example.org"), STORE_OK);
	ck_assert_msg(scan_model_load(NULL, err, sizeof(err)) == 0, "model: %s", err);
}

static void setup(void)
{
	setup_engine(STORE_ENGINE_SQLITE);
}

static void setup_mariadb(void)
{
	setup_engine(STORE_ENGINE_MARIADB);
}

static void teardown(void)
{
	char cmd[128];

	user_key_free(alice_key);
	user_key_free(bob_key);
	store_close(st);
	if (mariadb_db[0]) {
		snprintf(cmd, sizeof(cmd), "DROP DATABASE IF EXISTS %s", mariadb_db);
		mariadb_sql(cmd);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

static void envelope(struct deliver_envelope *env)
{
	memset(env, 0, sizeof(*env));
	env->sender = "carol@example.net";
	env->helo = "client.example.net";
	env->client_ip = "192.0.2.7";
	env->protocol = "ESMTPS";
	env->tls_version = "TLSv1.3";
	env->tls_cipher = "TLS_AES_256_GCM_SHA384";
	env->received_at = 1795000000;
	env->session_id = 42;
}

struct collected {
	struct store_message m[8];
	size_t n;
};

static int collect_cb(void *arg, const struct store_message *m)
{
	struct collected *c = arg;
	if (c->n < 8)
		c->m[c->n] = *m;
	c->n++;
	return 0;
}

static size_t mailbox_messages(int64_t user_id, const char *name, struct collected *c)
{
	struct store_mailbox mb;

	memset(c, 0, sizeof(*c));
	ck_assert_int_eq(store_mailbox_get(st, user_id, name, &mb), STORE_OK);
	ck_assert_int_eq(store_message_list(st, mb.id, 1, collect_cb, c), STORE_OK);
	return c->n;
}

/* The stored plaintext of M, opened with KEY (malloc'd). */
static unsigned char *open_message(const struct store_message *m, const struct user_key *key,
				   size_t *len)
{
	unsigned char *blob, *plain;
	size_t blob_len;

	ck_assert_int_eq(store_message_blob(st, m->id, &blob, &blob_len), STORE_OK);
	ck_assert_int_eq(crypto_open(key, blob, blob_len, &plain, len), 0);
	free(blob);
	return plain;
}

static unsigned char *read_data_file(const char *name, size_t *len)
{
	const char *srcdir = getenv("POSTERN_SRCDIR");
	char path[1024];
	unsigned char *buf = malloc(1 << 20);
	FILE *f;

	snprintf(path, sizeof(path), "%s/tests/data/scan/%s", srcdir ? srcdir : "..", name);
	f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	*len = fread(buf, 1, 1 << 20, f);
	fclose(f);
	return buf;
}

static enum deliver_status deliver_to(const char *const *addrs, const bool *local, size_t n,
				      const unsigned char *msg, size_t len,
				      struct deliver_report *rep)
{
	struct deliver_recipient r[8];
	struct deliver_envelope env;
	size_t i;

	envelope(&env);
	memset(r, 0, sizeof(r));
	for (i = 0; i < n; i++)
		r[i].address = addrs[i];
	return deliver_message(st, &cfg, &env, r, local, n, msg, len, rep);
}

static bool contains(const unsigned char *hay, size_t len, const char *needle)
{
	size_t n = strlen(needle), i;
	for (i = 0; i + n <= len; i++)
		if (memcmp(hay + i, needle, n) == 0)
			return true;
	return false;
}

START_TEST(test_delivered_mail_decrypts_byte_exact)
{
	static const char *const to[] = {"alice@example.org", "info@example.org"};
	static const bool local[] = {true, true};
	struct deliver_report rep;
	struct collected c;
	unsigned char *plain;
	size_t len, mlen = sizeof(MSG) - 1;
	const char *expect_start =
	    "Return-Path: <carol@example.net>\r\n"
	    "Received: from client.example.net ([192.0.2.7])\r\n"
	    "\tby mx.example.org (Postern) with ESMTPS id 000000000000002A\r\n"
	    "\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384)\r\n"
	    "\tfor <alice@example.org>; ";

	ck_assert_int_eq(deliver_to(to, local, 2, MSG, mlen, &rep), DELIVER_OK);
	/* The alias points to the same user: one copy. */
	ck_assert_uint_eq(rep.stored_local, 1);
	ck_assert_uint_eq(mailbox_messages(alice_id, "INBOX", &c), 1);
	plain = open_message(&c.m[0], alice_key, &len);
	ck_assert_uint_eq((size_t)c.m[0].size, len);
	ck_assert_uint_gt(len, mlen);
	ck_assert(memcmp(plain, expect_start, strlen(expect_start)) == 0);
	ck_assert(contains(plain, len, "X-Spam-Status: No"));
	/* The original message follows the added headers, byte for byte. */
	ck_assert(memcmp(plain + len - mlen, MSG, mlen) == 0);
	/* Bob's key cannot open Alice's mail. */
	{
		unsigned char *blob, *other;
		size_t blob_len, other_len;
		ck_assert_int_eq(store_message_blob(st, c.m[0].id, &blob, &blob_len), STORE_OK);
		ck_assert_int_eq(crypto_open(bob_key, blob, blob_len, &other, &other_len), -1);
		ck_assert(!contains(blob, blob_len, "Shall we meet"));
		free(blob);
	}
	sodium_memzero(plain, len);
	free(plain);
	ck_assert_uint_eq(mailbox_messages(bob_id, "INBOX", &c), 0);
}
END_TEST

START_TEST(test_scan_result_stored_one_to_one)
{
	static const char *const to[] = {"alice@example.org", "bob@example.org"};
	static const bool local[] = {true, true};
	struct store_scan_result sr;
	struct deliver_report rep;
	struct collected c;

	ck_assert_int_eq(deliver_to(to, local, 2, MSG, sizeof(MSG) - 1, &rep), DELIVER_OK);
	ck_assert_uint_eq(rep.stored_local, 2);
	ck_assert_uint_eq(mailbox_messages(alice_id, "INBOX", &c), 1);
	memset(&sr, 0, sizeof(sr));
	ck_assert_int_eq(store_scan_result_get(st, c.m[0].id, &sr), STORE_OK);
	ck_assert_int_eq(sr.message_id, c.m[0].id);
	ck_assert_str_eq(sr.verdict, "clean");
	ck_assert_str_eq(sr.model_version, scan_model_version());
	free(sr.reasons);
	ck_assert_uint_eq(mailbox_messages(bob_id, "INBOX", &c), 1);
	memset(&sr, 0, sizeof(sr));
	ck_assert_int_eq(store_scan_result_get(st, c.m[0].id, &sr), STORE_OK);
	ck_assert_int_eq(sr.message_id, c.m[0].id);
	free(sr.reasons);
}
END_TEST

START_TEST(test_phishing_goes_to_junk_with_warning)
{
	static const char *const to[] = {"alice@example.org"};
	static const bool local[] = {true};
	struct store_scan_result sr;
	struct deliver_report rep;
	struct collected c;
	unsigned char *msg, *plain;
	size_t len, plen;

	msg = read_data_file("lookalike.eml", &len);
	ck_assert_int_eq(deliver_to(to, local, 1, msg, len, &rep), DELIVER_OK);
	ck_assert_uint_eq(mailbox_messages(alice_id, "INBOX", &c), 0);
	ck_assert_uint_eq(mailbox_messages(alice_id, "Junk", &c), 1);
	plain = open_message(&c.m[0], alice_key, &plen);
	ck_assert(contains(plain, plen, "X-Spam-Status: Yes, verdict=phishing"));
	ck_assert(contains(plain, plen, "X-Spam-Score: "));
	ck_assert(contains(plain, plen, "X-Postern-Warning: this message looks like phishing"));
	ck_assert(memcmp(plain + plen - len, msg, len) == 0);
	memset(&sr, 0, sizeof(sr));
	ck_assert_int_eq(store_scan_result_get(st, c.m[0].id, &sr), STORE_OK);
	ck_assert_str_eq(sr.verdict, "phishing");
	ck_assert_ptr_nonnull(sr.reasons);
	ck_assert_ptr_nonnull(strstr(sr.reasons, "paypa1.com"));
	free(sr.reasons);
	free(plain);
	free(msg);
}
END_TEST

static int last_quarantine_entry(void *arg, const struct store_quarantine_entry *e)
{
	struct store_quarantine_entry *last = arg;
	*last = *e;
	return 0;
}

START_TEST(test_malware_is_quarantined_not_delivered)
{
	static const char *const to[] = {"alice@example.org"};
	static const bool local[] = {true};
	struct store_quarantine_entry q, got;
	struct deliver_report rep;
	struct collected c;
	struct user_key *server;
	unsigned char *msg, *blob, *plain;
	size_t len, blob_len, plen;

	msg = read_data_file("eicar_body.eml", &len);
	ck_assert_int_eq(deliver_to(to, local, 1, msg, len, &rep), DELIVER_OK);
	ck_assert_uint_eq(rep.quarantined, 1);
	ck_assert_uint_eq(rep.stored_local, 0);
	ck_assert_uint_eq(mailbox_messages(alice_id, "INBOX", &c), 0);
	ck_assert_uint_eq(mailbox_messages(alice_id, "Junk", &c), 0);
	memset(&q, 0, sizeof(q));
	ck_assert_int_eq(store_quarantine_list(st, last_quarantine_entry, &q), STORE_OK);
	ck_assert_str_eq(q.recipient, "alice@example.org");
	ck_assert_str_eq(q.sender, "carol@example.net");
	ck_assert_str_eq(q.verdict, "malware");
	ck_assert_int_eq(store_quarantine_get(st, q.id, &got, &blob, &blob_len), STORE_OK);
	ck_assert_int_eq(crypto_server_key_load(cfg.queue.key_file, &server), 0);
	ck_assert_int_eq(crypto_open(server, blob, blob_len, &plain, &plen), 0);
	ck_assert(memcmp(plain + plen - len, msg, len) == 0);
	user_key_free(server);
	free(plain);
	free(blob);
	free(msg);
}
END_TEST

START_TEST(test_quota_refusal_stores_nothing)
{
	static const char *const to[] = {"bob@example.org", "alice@example.org"};
	static const bool local[] = {true, true};
	struct deliver_report rep;
	struct collected c;

	ck_assert_int_eq(store_user_set_quota(st, alice_id, 10), STORE_OK);
	ck_assert_int_eq(deliver_to(to, local, 2, MSG, sizeof(MSG) - 1, &rep), DELIVER_QUOTA);
	ck_assert_ptr_nonnull(strstr(rep.message, "alice@example.org"));
	ck_assert_uint_eq(rep.stored_local, 0);
	/* Bob came first and fit, but the transaction is all or nothing. */
	ck_assert_uint_eq(mailbox_messages(bob_id, "INBOX", &c), 0);
	ck_assert_uint_eq(mailbox_messages(alice_id, "INBOX", &c), 0);
}
END_TEST

START_TEST(test_unknown_recipient_stores_nothing)
{
	static const char *const to[] = {"bob@example.org", "ghost@example.org"};
	static const bool local[] = {true, true};
	struct deliver_report rep;
	struct collected c;

	ck_assert_int_eq(deliver_to(to, local, 2, MSG, sizeof(MSG) - 1, &rep), DELIVER_FAIL);
	ck_assert_ptr_nonnull(strstr(rep.message, "ghost@example.org"));
	ck_assert_uint_eq(mailbox_messages(bob_id, "INBOX", &c), 0);
}
END_TEST

static int last_queue_entry(void *arg, const struct store_queue_entry *e)
{
	struct store_queue_entry *out = arg;
	*out = *e;
	return 0;
}

START_TEST(test_remote_recipient_is_queued_sealed_with_dsn)
{
	struct deliver_recipient r[2];
	struct deliver_envelope env;
	struct deliver_report rep;
	struct store_queue_entry e;
	struct user_key *server;
	struct collected c;
	unsigned char *blob, *plain;
	size_t blob_len, plen, mlen = sizeof(MSG) - 1;
	bool local[2] = {false, true};

	envelope(&env);
	env.sender = "alice@example.org";
	env.protocol = "ESMTPSA";
	env.auth_user = "alice@example.org";
	env.dsn_ret = "HDRS";
	env.dsn_envid = "env+2B1";
	memset(r, 0, sizeof(r));
	r[0].address = "dave@remote.example";
	r[0].dsn_notify = "SUCCESS,FAILURE";
	r[0].dsn_orcpt = "rfc822;dave@remote.example";
	r[1].address = "bob@example.org";
	ck_assert_int_eq(deliver_message(st, &cfg, &env, r, local, 2, MSG, mlen, &rep), DELIVER_OK);
	ck_assert_uint_eq(rep.queued_remote, 1);
	ck_assert_uint_eq(rep.stored_local, 1);
	ck_assert_uint_eq(mailbox_messages(bob_id, "INBOX", &c), 1);
	memset(&e, 0, sizeof(e));
	ck_assert_int_eq(store_queue_list(st, last_queue_entry, &e), STORE_OK);
	ck_assert_str_eq(e.recipient, "dave@remote.example");
	ck_assert_str_eq(e.sender, "alice@example.org");
	ck_assert_str_eq(e.dsn_notify, "SUCCESS,FAILURE");
	ck_assert_str_eq(e.dsn_orcpt, "rfc822;dave@remote.example");
	ck_assert_str_eq(e.dsn_ret, "HDRS");
	ck_assert_str_eq(e.dsn_envid, "env+2B1");
	ck_assert_int_eq(store_queue_blob(st, e.id, &blob, &blob_len), STORE_OK);
	ck_assert(!contains(blob, blob_len, "Shall we meet"));
	ck_assert_int_eq(crypto_server_key_load(cfg.queue.key_file, &server), 0);
	ck_assert_int_eq(crypto_open(server, blob, blob_len, &plain, &plen), 0);
	ck_assert(memcmp(plain, "Received: from client.example.net", 33) == 0);
	ck_assert(contains(plain, plen, "with ESMTPSA"));
	ck_assert(!contains(plain, plen, "Return-Path:"));
	ck_assert(memcmp(plain + plen - mlen, MSG, mlen) == 0);
	user_key_free(server);
	free(plain);
	free(blob);
}
END_TEST

START_TEST(test_deliver_to_mailbox_scans_and_stores)
{
	struct store_mailbox mb;
	struct store_message out;
	struct store_scan_result sr;
	struct store_user u;
	unsigned char *plain;
	size_t len;

	memset(&u, 0, sizeof(u));
	ck_assert_int_eq(store_user_get(st, "bob@example.org", &u), STORE_OK);
	ck_assert_int_eq(store_mailbox_get(st, bob_id, "Archive", &mb), STORE_OK);
	ck_assert_int_eq(store_begin(st), STORE_OK);
	ck_assert_int_eq(deliver_to_mailbox(st, &u, mb.id, FLAG_SEEN, 1795000000, MSG,
					    sizeof(MSG) - 1, NULL, &out),
			 DELIVER_OK);
	ck_assert_int_eq(store_commit(st), STORE_OK);
	store_user_clear(&u);
	ck_assert_uint_eq(out.flags & FLAG_SEEN, FLAG_SEEN);
	plain = open_message(&out, bob_key, &len);
	/* APPEND stores the message as given. */
	ck_assert_uint_eq(len, sizeof(MSG) - 1);
	ck_assert(memcmp(plain, MSG, len) == 0);
	free(plain);
	memset(&sr, 0, sizeof(sr));
	ck_assert_int_eq(store_scan_result_get(st, out.id, &sr), STORE_OK);
	free(sr.reasons);
}
END_TEST

static void add_tests(TCase *tc)
{
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_delivered_mail_decrypts_byte_exact);
	tcase_add_test(tc, test_scan_result_stored_one_to_one);
	tcase_add_test(tc, test_phishing_goes_to_junk_with_warning);
	tcase_add_test(tc, test_malware_is_quarantined_not_delivered);
	tcase_add_test(tc, test_quota_refusal_stores_nothing);
	tcase_add_test(tc, test_unknown_recipient_stores_nothing);
	tcase_add_test(tc, test_remote_recipient_is_queued_sealed_with_dsn);
	tcase_add_test(tc, test_deliver_to_mailbox_scans_and_stores);
}

/* The same tests on MariaDB when a test server is running
 * (POSTERN_TEST_MARIADB_SOCKET, see tests/mariadb-server). */
static Suite *deliver_suite(void)
{
	Suite *s = suite_create("deliver");
	TCase *tc = tcase_create("sqlite");

	tcase_add_checked_fixture(tc, setup, teardown);
	add_tests(tc);
	suite_add_tcase(s, tc);
	if (getenv("POSTERN_TEST_MARIADB_SOCKET")) {
		tc = tcase_create("mariadb");
		tcase_add_checked_fixture(tc, setup_mariadb, teardown);
		add_tests(tc);
		suite_add_tcase(s, tc);
	}
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(deliver_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
