/*
 * test_otp_login.c - auth_login_request() over a real SQLite store with an
 * injected clock: password+TOTP (no replay), recovery codes, app passwords
 * and their scopes, SMS-user behaviour without a gateway, account and
 * address throttling (waits, blocks, expiry, success resets), unknown users
 * throttled like known ones, audit rows, and the password policy.
 * SQLite in a temporary directory, or MariaDB when POSTERN_TEST_ENGINE=mariadb
 * (server at $POSTERN_TEST_MARIADB_SOCKET, one database per test).
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "auth/auth.h"
#include "crypto/crypto.h"
#include "otp/otp.h"
#include "store/store.h"
#include "store_env.h"

#define PW "alice pass phrase"
#define T0 1800000000LL /* a step boundary: 1800000000 / 30 is whole */

static char tmpdir[256], keyfile[512];
static struct config_store store_cfg;
static struct store *st;
static int64_t fake_now;
static struct test_store_env store_env;

static int64_t fake_clock(void)
{
	return fake_now;
}

static void setup(void)
{
	char err[512] = "";
	int version = 0;

	ck_assert_int_eq(crypto_setup(), 0);
	crypto_set_argon2_cost(1, 8192);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/postern-test-otp-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	test_store_env_config(&store_env, "postern_otp", tmpdir, &store_cfg);
	st = store_open(&store_cfg, err, sizeof(err));
	ck_assert_msg(st != NULL, "store_open: %s", err);
	ck_assert_int_eq(store_migrate(st, &version), STORE_OK);
	ck_assert_int_eq(store_domain_add(st, "example.org"), STORE_OK);
	snprintf(keyfile, sizeof(keyfile), "%s/queue.key", tmpdir);
	auth_setup(0);
	auth_set_server_key_file(keyfile);
	fake_now = T0;
	throttle_set_clock(fake_clock);
	throttle_table_clear();
}

static void teardown(void)
{
	throttle_set_clock(NULL);
	store_close(st);
	test_store_env_clean(&store_env, tmpdir);
}

static int64_t add_user(const char *address)
{
	struct store_user u;
	unsigned char *wrapped = NULL;
	size_t wrapped_len = 0;

	memset(&u, 0, sizeof(u));
	snprintf(u.address, sizeof(u.address), "%s", address);
	ck_assert_int_eq(crypto_password_hash(PW, strlen(PW), u.password_hash), 0);
	ck_assert_int_eq(
	    crypto_user_keygen(PW, strlen(PW), u.public_key, &wrapped, &wrapped_len, NULL), 0);
	u.wrapped_key = wrapped;
	u.wrapped_key_len = wrapped_len;
	ck_assert_int_eq(store_user_add(st, &u), STORE_OK);
	free(wrapped);
	return u.id;
}

static enum auth_result login_as(const char *address, const char *secret, const char *protocol,
				 const char *ip)
{
	struct auth_request req = {.address = address,
				   .password = secret,
				   .pwlen = strlen(secret),
				   .protocol = protocol,
				   .client_ip = ip};
	struct auth_identity id;
	enum auth_result r = auth_login_request(st, &req, &id);

	if (r == AUTH_OK)
		ck_assert_ptr_nonnull(id.key);
	else
		ck_assert_ptr_null(id.key);
	auth_identity_clear(&id);
	return r;
}

static enum auth_result login(const char *secret)
{
	return login_as("alice@example.org", secret, "imap", "192.0.2.10");
}

/* Enrolls USER_ID with a known secret, as posternctl does. */
static void enroll(int64_t user_id, const unsigned char secret[OTP_SECRET_BYTES],
		   char codes[OTP_RECOVERY_CODES][OTP_RECOVERY_CODE_LEN + 1])
{
	struct otp_state s;
	struct user_key *sk = NULL;

	ck_assert_int_eq(crypto_server_key_load(keyfile, &sk), 0);
	memset(&s, 0, sizeof(s));
	s.enabled = true;
	s.enrolled = fake_now;
	ck_assert_int_eq(otp_state_set_secret(&s, sk, secret, OTP_SECRET_BYTES), 0);
	ck_assert_int_eq(recovery_codes_generate(&s, codes), 0);
	ck_assert_int_eq(otp_state_save(st, user_id, &s), STORE_OK);
	otp_state_clear(&s);
	user_key_free(sk);
}

static void with_code(char *out, size_t len, const unsigned char *secret, int64_t t)
{
	char code[OTP_DIGITS + 1];

	ck_assert_int_eq(totp_code_at_step(secret, OTP_SECRET_BYTES, totp_step(t), code), 0);
	snprintf(out, len, "%s%s", PW, code);
}

START_TEST(totp_user_needs_password_and_a_fresh_code)
{
	unsigned char secret[OTP_SECRET_BYTES];
	char codes[OTP_RECOVERY_CODES][OTP_RECOVERY_CODE_LEN + 1], buf[128];
	struct otp_state s;
	int64_t uid = add_user("alice@example.org");

	randombytes_buf(secret, sizeof(secret));
	enroll(uid, secret, codes);
	ck_assert_int_eq(login(PW), AUTH_FAILED);
	with_code(buf, sizeof(buf), secret, fake_now);
	ck_assert_int_eq(login(buf), AUTH_OK);
	ck_assert_int_eq(login(buf), AUTH_FAILED); /* replay */
	fake_now += OTP_STEP_SECONDS;
	with_code(buf, sizeof(buf), secret, fake_now);
	ck_assert_int_eq(login(buf), AUTH_OK);
	/* Two steps ahead is outside the window. */
	with_code(buf, sizeof(buf), secret, fake_now + 2 * OTP_STEP_SECONDS);
	ck_assert_int_eq(login(buf), AUTH_FAILED);
	/* A right code after a wrong password fails. */
	with_code(buf, sizeof(buf), secret, fake_now + OTP_STEP_SECONDS);
	buf[0] = 'X';
	ck_assert_int_eq(login(buf), AUTH_FAILED);
	/* The secret is stored sealed, never in clear. */
	ck_assert_int_eq(otp_state_load(st, uid, &s), STORE_OK);
	ck_assert_ptr_null(memmem(s.sealed_secret, s.sealed_len, secret, sizeof(secret)));
	ck_assert_int_eq(s.last_step, totp_step(fake_now));
	otp_state_clear(&s);
}
END_TEST

START_TEST(recovery_code_logs_in_once)
{
	unsigned char secret[OTP_SECRET_BYTES];
	char codes[OTP_RECOVERY_CODES][OTP_RECOVERY_CODE_LEN + 1], buf[128];

	randombytes_buf(secret, sizeof(secret));
	enroll(add_user("alice@example.org"), secret, codes);
	snprintf(buf, sizeof(buf), "%s%s", PW, codes[2]);
	ck_assert_int_eq(login(buf), AUTH_OK);
	ck_assert_int_eq(login(buf), AUTH_FAILED);
	snprintf(buf, sizeof(buf), "wrong%s", codes[3]);
	ck_assert_int_eq(login(buf), AUTH_FAILED);
	snprintf(buf, sizeof(buf), "%s%s", PW, codes[3]);
	ck_assert_int_eq(login(buf), AUTH_OK);
}
END_TEST

START_TEST(without_the_server_key_totp_logins_are_a_temporary_failure)
{
	unsigned char secret[OTP_SECRET_BYTES];
	char codes[OTP_RECOVERY_CODES][OTP_RECOVERY_CODE_LEN + 1], buf[128];

	randombytes_buf(secret, sizeof(secret));
	enroll(add_user("alice@example.org"), secret, codes);
	auth_set_server_key_file(NULL);
	with_code(buf, sizeof(buf), secret, fake_now);
	ck_assert_int_eq(login(buf), AUTH_TEMPFAIL);
	auth_set_server_key_file(keyfile);
	ck_assert_int_eq(login(buf), AUTH_OK);
}
END_TEST

START_TEST(app_password_works_for_its_protocols_only)
{
	struct app_password_list l;
	struct user_key *k = NULL;
	struct store_user u;
	char app[APP_PASSWORD_LEN + 1], all[APP_PASSWORD_LEN + 1];
	unsigned char secret[OTP_SECRET_BYTES];
	char codes[OTP_RECOVERY_CODES][OTP_RECOVERY_CODE_LEN + 1];
	int64_t uid = add_user("alice@example.org");

	memset(&u, 0, sizeof(u));
	ck_assert_int_eq(store_user_get_by_id(st, uid, &u), STORE_OK);
	ck_assert_int_eq(crypto_user_unlock(u.wrapped_key, u.wrapped_key_len, PW, strlen(PW), &k),
			 0);
	ck_assert_int_eq(app_passwords_load(st, uid, &l), STORE_OK);
	ck_assert_int_eq(app_password_create(&l, "phone", APP_SCOPE_POP3 | APP_SCOPE_SMTP, k, app),
			 0);
	ck_assert_int_eq(app_password_create(&l, "laptop", APP_SCOPE_ALL, k, all), 0);
	ck_assert_int_eq(app_passwords_save(st, uid, &l), STORE_OK);
	app_passwords_clear(&l);
	/* OTP does not stop app passwords. */
	randombytes_buf(secret, sizeof(secret));
	enroll(uid, secret, codes);

	ck_assert_int_eq(login_as("alice@example.org", app, "pop3", "192.0.2.1"), AUTH_OK);
	ck_assert_int_eq(login_as("alice@example.org", app, "smtp", "192.0.2.1"), AUTH_OK);
	ck_assert_int_eq(login_as("alice@example.org", app, "imap", "192.0.2.1"), AUTH_FAILED);
	/* Unnamed protocol: only all-protocol app passwords. */
	ck_assert_int_eq(login_as("alice@example.org", app, NULL, NULL), AUTH_FAILED);
	ck_assert_int_eq(login_as("alice@example.org", all, NULL, NULL), AUTH_OK);
	ck_assert_int_eq(login_as("alice@example.org", all, "imap", "192.0.2.1"), AUTH_OK);
	ck_assert_int_eq(app_passwords_load(st, uid, &l), STORE_OK);
	ck_assert_str_eq(l.items[1].last_ip, "192.0.2.1");
	ck_assert_int_eq(l.items[1].last_used, fake_now);
	ck_assert_int_eq(app_password_revoke(&l, "laptop"), 0);
	ck_assert_int_eq(app_passwords_save(st, uid, &l), STORE_OK);
	app_passwords_clear(&l);
	ck_assert_int_eq(login_as("alice@example.org", all, "imap", "192.0.2.1"), AUTH_FAILED);
	/* A locked account stays locked for app passwords. */
	ck_assert_int_eq(store_user_set_locked(st, uid, true), STORE_OK);
	ck_assert_int_eq(login_as("alice@example.org", app, "pop3", "192.0.2.1"), AUTH_LOCKED);
	user_key_free(k);
	store_user_clear(&u);
}
END_TEST

START_TEST(sms_user_without_a_code_fails_like_a_wrong_password)
{
	struct otp_state s;
	int64_t uid = add_user("alice@example.org");
	char buf[64];

	memset(&s, 0, sizeof(s));
	s.enabled = true;
	snprintf(s.sms_phone, sizeof(s.sms_phone), "+15550001111");
	ck_assert_int_eq(otp_state_save(st, uid, &s), STORE_OK);
	ck_assert_int_eq(login(PW), AUTH_FAILED);
	/* A pending code (issued as the daemon would) logs in once, within its lifetime. */
	ck_assert_int_eq(otp_state_load(st, uid, &s), STORE_OK);
	char code[OTP_DIGITS + 1], other[OTP_DIGITS + 1];
	ck_assert_int_eq(sms_code_issue(&s, fake_now, code), 0);
	ck_assert_int_eq(sms_code_issue(&s, fake_now + 1, other), -1); /* one per minute */
	ck_assert_int_eq(otp_state_save(st, uid, &s), STORE_OK);
	otp_state_clear(&s);
	snprintf(buf, sizeof(buf), "%s%s", PW, code);
	fake_now += SMS_CODE_TTL;
	ck_assert_int_eq(login(buf), AUTH_FAILED); /* expired */
	ck_assert_int_eq(otp_state_load(st, uid, &s), STORE_OK);
	fake_now += SMS_MIN_INTERVAL;
	ck_assert_int_eq(sms_code_issue(&s, fake_now, code), 0);
	ck_assert_int_eq(otp_state_save(st, uid, &s), STORE_OK);
	otp_state_clear(&s);
	snprintf(buf, sizeof(buf), "%s%s", PW, code);
	ck_assert_int_eq(login(buf), AUTH_OK);
	ck_assert_int_eq(login(buf), AUTH_FAILED);
}
END_TEST

START_TEST(sms_codes_are_rate_limited)
{
	struct otp_state s;
	char code[OTP_DIGITS + 1];
	int64_t t = T0;

	memset(&s, 0, sizeof(s));
	for (int i = 0; i < SMS_MAX_PER_HOUR; i++, t += SMS_MIN_INTERVAL)
		ck_assert_int_eq(sms_code_issue(&s, t, code), 0);
	ck_assert_int_eq(sms_code_issue(&s, t, code), -1); /* the hour's budget is spent */
	ck_assert_int_eq(sms_code_issue(&s, T0 + 3600, code), 0);
	ck_assert_int_eq(sms_code_issue(&s, T0 + 3601, code), -1); /* too soon after the last */
	ck_assert_int_eq(sms_code_check(&s, "12345", T0 + 3601), -1);
}
END_TEST

START_TEST(account_throttle_waits_blocks_and_success_resets)
{
	struct throttle_state ts;
	int64_t uid = add_user("alice@example.org");
	const struct throttle_policy *p = &throttle_account_policy;

	for (unsigned i = 0; i < p->free_failures; i++)
		ck_assert_int_eq(login("wrong"), AUTH_FAILED);
	ck_assert_int_eq(login(PW), AUTH_OK); /* success resets */
	ck_assert_int_eq(throttle_account_load(st, uid, &ts), STORE_OK);
	ck_assert_uint_eq(ts.failures, 0);
	for (unsigned i = 0; i <= p->free_failures; i++)
		ck_assert_int_eq(login("wrong"), AUTH_FAILED);
	/* During the wait even the right password is refused, temporarily. */
	ck_assert_int_eq(login(PW), AUTH_THROTTLED);
	fake_now += 1;
	ck_assert_int_eq(login(PW), AUTH_THROTTLED); /* a wait is never shorter than 1 s */
	fake_now += 1;
	ck_assert_int_eq(login(PW), AUTH_OK);
	/* Up to a block, which expires. */
	for (unsigned i = 0; i < p->block_after; i++) {
		ck_assert_int_eq(login("wrong"), AUTH_FAILED);
		fake_now += p->max_wait + 1;
	}
	ck_assert_int_eq(login(PW), AUTH_THROTTLED);
	fake_now += p->block_seconds;
	ck_assert_int_eq(login(PW), AUTH_OK);
}
END_TEST

START_TEST(unknown_accounts_are_throttled_like_known_ones)
{
	const struct throttle_policy *p = &throttle_account_policy;

	add_user("alice@example.org");
	for (unsigned i = 0; i <= p->free_failures; i++) {
		ck_assert_int_eq(login_as("alice@example.org", "wrong", "pop3", NULL), AUTH_FAILED);
		ck_assert_int_eq(login_as("ghost@example.org", "wrong", "pop3", NULL), AUTH_FAILED);
	}
	ck_assert_int_eq(login_as("alice@example.org", "wrong", "pop3", NULL), AUTH_THROTTLED);
	ck_assert_int_eq(login_as("ghost@example.org", "wrong", "pop3", NULL), AUTH_THROTTLED);
}
END_TEST

START_TEST(client_address_throttle_spans_accounts)
{
	const struct throttle_policy *p = &throttle_ip_policy;
	char addr[64];

	add_user("alice@example.org");
	/* Different (unknown) accounts from one address: the address limit applies. */
	for (unsigned i = 0; i <= p->free_failures; i++) {
		snprintf(addr, sizeof(addr), "u%u@example.org", i);
		ck_assert_int_eq(login_as(addr, "wrong", "smtp", "203.0.113.5"), AUTH_FAILED);
	}
	ck_assert_int_eq(login_as("alice@example.org", PW, "smtp", "203.0.113.5"), AUTH_THROTTLED);
	ck_assert_int_eq(login_as("alice@example.org", PW, "smtp", "203.0.113.6"), AUTH_OK);
	fake_now += 2;
	ck_assert_int_eq(login_as("alice@example.org", PW, "smtp", "203.0.113.5"), AUTH_OK);
}
END_TEST

struct audit_rows {
	int ok, failed, throttled;
	bool leaked;
};

static int count_row(void *arg, int64_t t, const char *actor, const char *event, const char *detail)
{
	struct audit_rows *r = arg;
	json_t *d;

	(void)t;
	if (strcmp(event, "auth.login") != 0 || strcmp(actor, "alice@example.org") != 0)
		return 0;
	if (strstr(detail, "pass phrase") != NULL || strstr(detail, "guess-9137") != NULL)
		r->leaked = true;
	d = json_loads(detail, 0, NULL);
	ck_assert_ptr_nonnull(d);
	ck_assert_str_eq(json_string_value(json_object_get(d, "ip")), "192.0.2.10");
	ck_assert_str_eq(json_string_value(json_object_get(d, "protocol")), "imap");
	const char *res = json_string_value(json_object_get(d, "result"));
	r->ok += strcmp(res, "ok") == 0;
	r->failed += strcmp(res, "failed") == 0;
	r->throttled += strcmp(res, "throttled") == 0;
	json_decref(d);
	return 0;
}

START_TEST(every_attempt_leaves_an_audit_row_without_secrets)
{
	struct audit_rows r = {0};

	add_user("alice@example.org");
	ck_assert_int_eq(login(PW), AUTH_OK);
	for (unsigned i = 0; i <= throttle_account_policy.free_failures; i++)
		ck_assert_int_eq(login("guess-9137"), AUTH_FAILED);
	ck_assert_int_eq(login(PW), AUTH_THROTTLED);
	ck_assert_int_eq(store_audit_list(st, 0, count_row, &r), STORE_OK);
	ck_assert_int_eq(r.ok, 1);
	ck_assert_int_eq(r.failed, (int)throttle_account_policy.free_failures + 1);
	ck_assert_int_eq(r.throttled, 1);
	ck_assert(!r.leaked);
}
END_TEST

START_TEST(password_policy_wants_length_and_no_dictionary_word)
{
	char why[256];

	ck_assert_int_eq(auth_password_acceptable("short", why, sizeof(why)), 0);
	ck_assert_ptr_nonnull(strstr(why, "10"));
	ck_assert_int_eq(auth_password_acceptable("password123", why, sizeof(why)), 0);
	ck_assert_int_ne(why[0], '\0');
	ck_assert_int_eq(auth_password_acceptable("Vq7#pLx2!mRz9wKe", why, sizeof(why)), 1);
	ck_assert_str_eq(why, "");
	ck_assert_int_eq(auth_password_acceptable(NULL, why, sizeof(why)), 0);
}
END_TEST

START_TEST(otp_users_skip_the_login_cache)
{
	unsigned char secret[OTP_SECRET_BYTES];
	char codes[OTP_RECOVERY_CODES][OTP_RECOVERY_CODE_LEN + 1], buf[128];
	unsigned long before;

	auth_setup(600);
	add_user("bob@example.org");
	ck_assert_int_eq(login_as("bob@example.org", PW, "imap", NULL), AUTH_OK);
	before = crypto_argon2_count();
	ck_assert_int_eq(login_as("bob@example.org", PW, "imap", NULL), AUTH_OK);
	ck_assert_uint_eq(crypto_argon2_count() - before, 0); /* cached */

	randombytes_buf(secret, sizeof(secret));
	enroll(add_user("alice@example.org"), secret, codes);
	with_code(buf, sizeof(buf), secret, fake_now);
	ck_assert_int_eq(login(buf), AUTH_OK);
	fake_now += OTP_STEP_SECONDS;
	with_code(buf, sizeof(buf), secret, fake_now);
	before = crypto_argon2_count();
	ck_assert_int_eq(login(buf), AUTH_OK);
	ck_assert_uint_gt(crypto_argon2_count() - before, 0);
	/* So a right password with a wrong code costs what a wrong password costs. */
	before = crypto_argon2_count();
	snprintf(buf, sizeof(buf), "%s000000", PW);
	ck_assert_int_eq(login(buf), AUTH_FAILED);
	ck_assert_uint_eq(crypto_argon2_count() - before, 1);
	auth_cache_clear();
}
END_TEST

static int notices;
static char last_notice[8192];

static int capture_notice(struct store *s, const struct store_user *u, const unsigned char *msg,
			  size_t len)
{
	(void)s;
	ck_assert_str_eq(u->address, "alice@example.org");
	ck_assert_uint_lt(len, sizeof(last_notice));
	memcpy(last_notice, msg, len);
	last_notice[len] = '\0';
	notices++;
	return 0;
}

START_TEST(login_from_a_new_address_sends_a_notice)
{
	add_user("alice@example.org");
	notices = 0;
	auth_set_notice_sink(capture_notice);
	ck_assert_int_eq(login_as("alice@example.org", PW, "imap", "192.0.2.1"), AUTH_OK);
	ck_assert_int_eq(notices, 0); /* the first login has nothing to compare with */
	ck_assert_int_eq(login_as("alice@example.org", PW, "imap", "192.0.2.1"), AUTH_OK);
	ck_assert_int_eq(notices, 0);
	ck_assert_int_eq(login_as("alice@example.org", PW, "pop3", "198.51.100.9"), AUTH_OK);
	ck_assert_int_eq(notices, 1);
	ck_assert_ptr_nonnull(strstr(last_notice, "Subject: Security notice: login from a new"));
	ck_assert_ptr_nonnull(strstr(last_notice, "198.51.100.9"));
	ck_assert_ptr_nonnull(strstr(last_notice, "Protocol: pop3"));
	ck_assert_ptr_null(strstr(last_notice, PW));
	/* Both are known now. */
	ck_assert_int_eq(login_as("alice@example.org", PW, "imap", "192.0.2.1"), AUTH_OK);
	ck_assert_int_eq(login_as("alice@example.org", PW, "imap", "198.51.100.9"), AUTH_OK);
	ck_assert_int_eq(notices, 1);
	/* Failed logins never send one. */
	ck_assert_int_eq(login_as("alice@example.org", "nope", "imap", "203.0.113.1"), AUTH_FAILED);
	ck_assert_int_eq(notices, 1);
	auth_set_notice_sink(NULL);
}
END_TEST

START_TEST(notice_headers_cannot_be_injected)
{
	struct auth_notice n = {AUTH_NOTICE_APP_PASSWORD,
				"alice@example.org",
				"mx.example.org",
				T0,
				"192.0.2.1",
				"posternctl",
				"x\r\nBcc: evil@example.net",
				"\"phone\"\r\nX-Evil: 1"};
	char *msg;
	size_t len;

	ck_assert_int_eq(auth_notice_compose(&n, &msg, &len), 0);
	ck_assert_ptr_null(strstr(msg, "\r\nBcc:"));
	ck_assert_ptr_null(strstr(msg, "\r\nX-Evil:"));
	ck_assert_ptr_nonnull(strstr(msg, "From: Postern security <postmaster@mx.example.org>"));
	ck_assert_ptr_nonnull(strstr(msg, "Subject: Security notice: new app password"));
	free(msg);
	n.address = "alice@example.org\r\nBcc: x@y";
	ck_assert_int_eq(auth_notice_compose(&n, &msg, &len), -1);
}
END_TEST

static Suite *otp_login_suite(void)
{
	Suite *s = suite_create("otp_login");
	TCase *tc = tcase_create("login");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, totp_user_needs_password_and_a_fresh_code);
	tcase_add_test(tc, recovery_code_logs_in_once);
	tcase_add_test(tc, without_the_server_key_totp_logins_are_a_temporary_failure);
	tcase_add_test(tc, app_password_works_for_its_protocols_only);
	tcase_add_test(tc, sms_user_without_a_code_fails_like_a_wrong_password);
	tcase_add_test(tc, sms_codes_are_rate_limited);
	tcase_add_test(tc, account_throttle_waits_blocks_and_success_resets);
	tcase_add_test(tc, unknown_accounts_are_throttled_like_known_ones);
	tcase_add_test(tc, client_address_throttle_spans_accounts);
	tcase_add_test(tc, every_attempt_leaves_an_audit_row_without_secrets);
	tcase_add_test(tc, password_policy_wants_length_and_no_dictionary_word);
	tcase_add_test(tc, login_from_a_new_address_sends_a_notice);
	tcase_add_test(tc, otp_users_skip_the_login_cache);
	tcase_add_test(tc, notice_headers_cannot_be_injected);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(otp_login_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
