/*
 * test_otp.c - otp/: TOTP against the RFC 6238 test vectors, the window and
 * replay rule, the otpauth URI, recovery codes (single use), app passwords
 * (scopes, create, match, revoke) and the throttle timing rules with an
 * injected clock, plus the in-memory throttle table.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "crypto/crypto.h"
#include "otp/otp.h"

/* RFC 6238 appendix B: the SHA-1 key is the ASCII string "12345678901234567890". */
static const unsigned char rfc_secret[] = "12345678901234567890";
#define RFC_SECRET_LEN 20

static void code_at_time(int64_t t, char out[OTP_DIGITS + 1])
{
	ck_assert_int_eq(totp_code_at_step(rfc_secret, RFC_SECRET_LEN, totp_step(t), out), 0);
}

START_TEST(totp_matches_the_rfc6238_vectors)
{
	/* The RFC lists 8 digits; a 6-digit code is their last six (RFC 4226 truncation). */
	static const struct {
		int64_t t;
		const char *code;
	} vectors[] = {
	    {59, "287082"},	    {1111111109, "081804"}, {1111111111, "050471"},
	    {1234567890, "005924"}, {2000000000, "279037"}, {20000000000LL, "353130"},
	};
	char code[OTP_DIGITS + 1];

	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		code_at_time(vectors[i].t, code);
		ck_assert_str_eq(code, vectors[i].code);
	}
}
END_TEST

START_TEST(totp_accepts_one_step_either_side_and_no_more)
{
	int64_t now = 1234567890, step = totp_step(now);
	char code[OTP_DIGITS + 1];

	for (int d = -1; d <= 1; d++) {
		ck_assert_int_eq(totp_code_at_step(rfc_secret, RFC_SECRET_LEN, step + d, code), 0);
		ck_assert_int_eq(totp_verify(rfc_secret, RFC_SECRET_LEN, code, now, 0), step + d);
	}
	ck_assert_int_eq(totp_code_at_step(rfc_secret, RFC_SECRET_LEN, step + 2, code), 0);
	ck_assert_int_eq(totp_verify(rfc_secret, RFC_SECRET_LEN, code, now, 0), -1);
	ck_assert_int_eq(totp_code_at_step(rfc_secret, RFC_SECRET_LEN, step - 2, code), 0);
	ck_assert_int_eq(totp_verify(rfc_secret, RFC_SECRET_LEN, code, now, 0), -1);
}
END_TEST

START_TEST(totp_refuses_a_used_or_older_step)
{
	int64_t now = 1111111111, step = totp_step(now);
	char code[OTP_DIGITS + 1];

	code_at_time(now, code);
	ck_assert_int_eq(totp_verify(rfc_secret, RFC_SECRET_LEN, code, now, step - 1), step);
	ck_assert_int_eq(totp_verify(rfc_secret, RFC_SECRET_LEN, code, now, step), -1);
	/* The previous step's code is refused once a later step was used. */
	ck_assert_int_eq(totp_code_at_step(rfc_secret, RFC_SECRET_LEN, step - 1, code), 0);
	ck_assert_int_eq(totp_verify(rfc_secret, RFC_SECRET_LEN, code, now, step), -1);
}
END_TEST

START_TEST(totp_refuses_malformed_codes)
{
	ck_assert_int_eq(totp_verify(rfc_secret, RFC_SECRET_LEN, "12345", 59, 0), -1);
	ck_assert_int_eq(totp_verify(rfc_secret, RFC_SECRET_LEN, "1234567", 59, 0), -1);
	ck_assert_int_eq(totp_verify(rfc_secret, RFC_SECRET_LEN, "28708a", 59, 0), -1);
	ck_assert_int_eq(totp_verify(rfc_secret, RFC_SECRET_LEN, NULL, 59, 0), -1);
	ck_assert(!totp_code_shape("12 456", 6));
	ck_assert(totp_code_shape("000000", 6));
}
END_TEST

START_TEST(totp_uri_carries_base32_secret_and_escaped_names)
{
	char b32[OTP_SECRET_B32_MAX], uri[OTP_URI_MAX];

	ck_assert_int_eq(totp_secret_base32(rfc_secret, RFC_SECRET_LEN, b32, sizeof(b32)), 0);
	ck_assert_str_eq(b32, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
	ck_assert_int_eq(totp_uri("Postern", "alice@example.org", b32, uri, sizeof(uri)), 0);
	ck_assert_str_eq(uri, "otpauth://totp/Postern:alice%40example.org?secret="
			      "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Postern&algorithm=SHA1"
			      "&digits=6&period=30");
	ck_assert_int_eq(totp_uri("Postern", "alice@example.org", b32, uri, 40), -1);
}
END_TEST

START_TEST(recovery_codes_work_once_each)
{
	struct otp_state s;
	char codes[OTP_RECOVERY_CODES][OTP_RECOVERY_CODE_LEN + 1];
	char upper[OTP_RECOVERY_CODE_LEN + 1];

	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(recovery_codes_generate(&s, codes), 0);
	ck_assert_uint_eq(recovery_codes_left(&s), OTP_RECOVERY_CODES);
	for (size_t i = 0; i < OTP_RECOVERY_CODES; i++) {
		ck_assert_uint_eq(strlen(codes[i]), OTP_RECOVERY_CODE_LEN);
		ck_assert(recovery_code_shape(codes[i], OTP_RECOVERY_CODE_LEN));
		for (size_t j = 0; j < i; j++)
			ck_assert_str_ne(codes[i], codes[j]);
	}
	ck_assert_int_eq(recovery_code_consume(&s, codes[3], OTP_RECOVERY_CODE_LEN), 0);
	ck_assert_int_eq(recovery_code_consume(&s, codes[3], OTP_RECOVERY_CODE_LEN), -1);
	ck_assert_uint_eq(recovery_codes_left(&s), OTP_RECOVERY_CODES - 1);
	/* Case does not matter (people copy codes by hand). */
	for (size_t i = 0; i <= OTP_RECOVERY_CODE_LEN; i++)
		upper[i] = (codes[5][i] >= 'a' && codes[5][i] <= 'z') ? (char)(codes[5][i] - 32)
								      : codes[5][i];
	ck_assert_int_eq(recovery_code_consume(&s, upper, OTP_RECOVERY_CODE_LEN), 0);
	ck_assert_int_eq(recovery_code_consume(&s, "aaaa-bbbb-cccc-dddd", OTP_RECOVERY_CODE_LEN),
			 -1);
	ck_assert_int_eq(recovery_code_consume(&s, "not a code", 10), -1);
	/* The state keeps only salted hashes, never the codes. */
	ck_assert_ptr_null(memmem(&s, sizeof(s), codes[0], OTP_RECOVERY_CODE_LEN));
	otp_state_clear(&s);
}
END_TEST

START_TEST(app_scopes_parse_and_format)
{
	unsigned scopes;
	char text[64];

	ck_assert_int_eq(app_scopes_parse("imap,pop3,smtp", &scopes), 0);
	ck_assert_uint_eq(scopes, APP_SCOPE_ALL);
	ck_assert_int_eq(app_scopes_parse("smtp", &scopes), 0);
	ck_assert_uint_eq(scopes, APP_SCOPE_SMTP);
	app_scopes_format(APP_SCOPE_IMAP | APP_SCOPE_SMTP, text, sizeof(text));
	ck_assert_str_eq(text, "imap,smtp");
	ck_assert_int_eq(app_scopes_parse("", &scopes), -1);
	ck_assert_int_eq(app_scopes_parse("imap,", &scopes), -1);
	ck_assert_int_eq(app_scopes_parse("imap,,pop3", &scopes), -1);
	ck_assert_int_eq(app_scopes_parse("ftp", &scopes), -1);
	ck_assert_uint_eq(app_scope_of_protocol("pop3"), APP_SCOPE_POP3);
	ck_assert_uint_eq(app_scope_of_protocol("web"), 0);
	ck_assert_uint_eq(app_scope_of_protocol(NULL), 0);
}
END_TEST

START_TEST(app_password_unlocks_the_users_key_until_revoked)
{
	struct app_password_list l;
	struct user_key *k = NULL, *got = NULL;
	unsigned char pub[32], *wrapped = NULL;
	size_t wrapped_len = 0;
	char pw[APP_PASSWORD_LEN + 1], pw2[APP_PASSWORD_LEN + 1];

	memset(&l, 0, sizeof(l));
	ck_assert_int_eq(crypto_user_keygen("user pw", 7, pub, &wrapped, &wrapped_len, &k), 0);
	ck_assert_int_eq(app_password_create(&l, "phone", APP_SCOPE_IMAP, k, pw), 0);
	ck_assert_int_eq(app_password_create(&l, "laptop", APP_SCOPE_ALL, k, pw2), 0);
	ck_assert_int_eq(app_password_create(&l, "phone", APP_SCOPE_IMAP, k, pw2), -2);
	ck_assert_int_eq(app_password_create(&l, "", APP_SCOPE_IMAP, k, pw2), -2);
	ck_assert_int_eq(app_password_create(&l, "x", 0, k, pw2), -2);
	ck_assert(app_password_shape(pw, strlen(pw)));
	ck_assert_str_ne(pw, pw2);
	ck_assert_uint_eq(l.n, 2);
	ck_assert_ptr_null(strstr(l.items[0].hash, pw));

	ck_assert_int_eq(app_password_match(&l, pw, strlen(pw), &got), 0);
	ck_assert_mem_eq(user_key_public(got), pub, 32);
	user_key_free(got);
	ck_assert_int_eq(app_password_match(&l, pw2, strlen(pw2), &got), 1);
	user_key_free(got);
	ck_assert_int_eq(app_password_match(&l, "aaaa-bbbb-cccc-dddd", 19, &got), -1);
	ck_assert_ptr_null(got);
	ck_assert_int_eq(app_password_match(&l, "user pw", 7, &got), -1);

	ck_assert_int_eq(app_password_revoke(&l, "phone"), 0);
	ck_assert_int_eq(app_password_revoke(&l, "phone"), -1);
	ck_assert_int_eq(app_password_match(&l, pw, strlen(pw), &got), -1);
	ck_assert_int_eq(app_password_match(&l, pw2, strlen(pw2), &got), 0);
	user_key_free(got);
	app_passwords_clear(&l);
	user_key_free(k);
	free(wrapped);
}
END_TEST

START_TEST(app_password_list_is_bounded)
{
	struct app_password_list l;
	struct user_key *k = NULL;
	unsigned char pub[32], *wrapped = NULL;
	size_t wrapped_len = 0;
	char pw[APP_PASSWORD_LEN + 1], name[16];

	memset(&l, 0, sizeof(l));
	ck_assert_int_eq(crypto_user_keygen("user pw", 7, pub, &wrapped, &wrapped_len, &k), 0);
	for (int i = 0; i < APP_PASSWORDS_MAX; i++) {
		snprintf(name, sizeof(name), "d%d", i);
		ck_assert_int_eq(app_password_create(&l, name, APP_SCOPE_SMTP, k, pw), 0);
	}
	ck_assert_int_eq(app_password_create(&l, "one more", APP_SCOPE_SMTP, k, pw), -3);
	app_passwords_clear(&l);
	user_key_free(k);
	free(wrapped);
}
END_TEST

static int64_t fake_now;
static int64_t fake_clock(void)
{
	return fake_now;
}

START_TEST(throttle_waits_grow_then_block_and_expire)
{
	const struct throttle_policy *p = &throttle_account_policy;
	struct throttle_state s = {0};
	int64_t t = 1000000;

	/* The free failures: no wait. */
	for (unsigned i = 0; i < p->free_failures; i++) {
		ck_assert_int_eq(throttle_retry_at(p, &s, t), 0);
		throttle_record_failure(p, &s, t);
	}
	ck_assert_int_eq(throttle_retry_at(p, &s, t), 0);
	/* Then 1, 2, 4 ... seconds, capped at max_wait. */
	int64_t expect_wait = 1;
	for (unsigned n = p->free_failures + 1; n < p->block_after; n++) {
		throttle_record_failure(p, &s, t);
		/* Times are whole seconds, so a wait of N ends after N + 1 ticks. */
		ck_assert_int_eq(throttle_retry_at(p, &s, t), t + expect_wait + 1);
		ck_assert_int_eq(throttle_retry_at(p, &s, t + expect_wait), t + expect_wait + 1);
		ck_assert_int_eq(throttle_retry_at(p, &s, t + expect_wait + 1), 0);
		t += expect_wait + 1;
		expect_wait = expect_wait * 2 > p->max_wait ? p->max_wait : expect_wait * 2;
	}
	/* The failure that reaches block_after starts the block... */
	throttle_record_failure(p, &s, t);
	ck_assert_int_eq(throttle_retry_at(p, &s, t), t + p->block_seconds);
	ck_assert_int_eq(throttle_retry_at(p, &s, t + p->block_seconds - 1), t + p->block_seconds);
	/* ...which expires on its own. */
	ck_assert_int_eq(throttle_retry_at(p, &s, t + p->block_seconds + p->max_wait + 1), 0);
	ck_assert(!throttle_state_idle(p, &s, t + p->block_seconds + p->max_wait + 1));
	/* Failures are forgotten after forget_seconds. */
	ck_assert(throttle_state_idle(p, &s, t + p->forget_seconds + p->block_seconds));
	ck_assert_int_eq(throttle_retry_at(p, &s, t + p->block_seconds + p->forget_seconds), 0);
}
END_TEST

START_TEST(throttle_forgets_old_failures)
{
	const struct throttle_policy *p = &throttle_account_policy;
	struct throttle_state s = {0};

	for (unsigned i = 0; i < p->block_after - 1; i++)
		throttle_record_failure(p, &s, 5000);
	throttle_record_failure(p, &s, 5000 + p->forget_seconds);
	ck_assert_uint_eq(s.failures, 1);
	ck_assert_int_eq(s.blocked_until, 0);
	ck_assert_int_eq(throttle_retry_at(p, &s, 5000 + p->forget_seconds), 0);
}
END_TEST

START_TEST(throttle_table_keeps_keys_apart_and_uses_the_injected_clock)
{
	const struct throttle_policy *p = &throttle_ip_policy;

	fake_now = 777000;
	throttle_set_clock(fake_clock);
	ck_assert_int_eq(throttle_now(), 777000);
	throttle_table_clear();
	for (unsigned i = 0; i < p->block_after; i++)
		throttle_table_failure(p, "ip:192.0.2.1", throttle_now());
	ck_assert_int_eq(throttle_table_retry_at(p, "ip:192.0.2.1", throttle_now()),
			 777000 + p->block_seconds);
	ck_assert_int_eq(throttle_table_retry_at(p, "ip:192.0.2.2", throttle_now()), 0);
	fake_now += p->block_seconds;
	ck_assert_int_eq(throttle_table_retry_at(p, "ip:192.0.2.1", throttle_now()), 0);
	fake_now -= 10;
	throttle_table_forget("ip:192.0.2.1");
	ck_assert_int_eq(throttle_table_retry_at(p, "ip:192.0.2.1", throttle_now()), 0);
	throttle_set_clock(NULL);
}
END_TEST

START_TEST(throttle_table_survives_a_flood_of_keys)
{
	const struct throttle_policy *p = &throttle_ip_policy;
	char key[64];

	throttle_table_clear();
	for (unsigned i = 0; i < p->block_after; i++)
		throttle_table_failure(p, "ip:198.51.100.7", 100);
	/* Many more keys than slots: the table stays bounded and keeps working. */
	for (int i = 0; i < THROTTLE_TABLE_SIZE * 4; i++) {
		snprintf(key, sizeof(key), "ip:10.%d.%d.%d", (i >> 16) & 255, (i >> 8) & 255,
			 i & 255);
		throttle_table_failure(p, key, 101);
	}
	snprintf(key, sizeof(key), "ip:10.0.0.1");
	ck_assert_int_eq(throttle_table_retry_at(p, key, 101), 0);
}
END_TEST

static Suite *otp_suite(void)
{
	Suite *s = suite_create("otp");
	TCase *tc = tcase_create("otp");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, totp_matches_the_rfc6238_vectors);
	tcase_add_test(tc, totp_accepts_one_step_either_side_and_no_more);
	tcase_add_test(tc, totp_refuses_a_used_or_older_step);
	tcase_add_test(tc, totp_refuses_malformed_codes);
	tcase_add_test(tc, totp_uri_carries_base32_secret_and_escaped_names);
	tcase_add_test(tc, recovery_codes_work_once_each);
	tcase_add_test(tc, app_scopes_parse_and_format);
	tcase_add_test(tc, app_password_unlocks_the_users_key_until_revoked);
	tcase_add_test(tc, app_password_list_is_bounded);
	tcase_add_test(tc, throttle_waits_grow_then_block_and_expire);
	tcase_add_test(tc, throttle_forgets_old_failures);
	tcase_add_test(tc, throttle_table_keeps_keys_apart_and_uses_the_injected_clock);
	tcase_add_test(tc, throttle_table_survives_a_flood_of_keys);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr;
	int failed;

	if (crypto_setup() != 0)
		return EXIT_FAILURE;
	crypto_set_argon2_cost(1, 8192); /* these tests are about logic, not cost */
	sr = srunner_create(otp_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
