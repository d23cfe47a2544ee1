/*
 * test_mailauth.c - the Authentication-Results header: what we write and the
 * forged copies we remove from mail that arrives from outside.
 */
#include <config.h>

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "mailauth/mailauth.h"

START_TEST(test_header_lists_every_method)
{
	struct mailauth_result r = {
	    .spf = MAILAUTH_PASS,
	    .dkim = MAILAUTH_FAIL,
	    .dmarc = MAILAUTH_FAIL,
	    .policy = MAILAUTH_POLICY_REJECT,
	    .mailfrom_domain = "a.test",
	    .dkim_domain = "a.test",
	    .from_domain = "a.test",
	};
	char out[512];
	int n = mailauth_header(&r, "mx.b.test", out, sizeof(out));

	ck_assert_int_gt(n, 0);
	ck_assert_uint_eq(strlen(out), (size_t)n);
	ck_assert_str_eq(out, "Authentication-Results: mx.b.test;\r\n"
			      "\tspf=pass smtp.mailfrom=a.test;\r\n"
			      "\tdkim=fail header.d=a.test;\r\n"
			      "\tdmarc=fail (p=reject) header.from=a.test\r\n");
	ck_assert_int_eq(mailauth_header(&r, "mx.b.test", out, 40), -1);
}
END_TEST

START_TEST(test_header_without_identities)
{
	struct mailauth_result r = {.spf = MAILAUTH_SOFTFAIL};
	char out[256];

	ck_assert_int_gt(mailauth_header(&r, "h", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "Authentication-Results: h;\r\n\tspf=softfail;\r\n\tdkim=none;\r\n"
			      "\tdmarc=none\r\n");
	ck_assert_str_eq(mailauth_verdict_name(MAILAUTH_TEMPERROR), "temperror");
	ck_assert_str_eq(mailauth_verdict_name(MAILAUTH_PERMERROR), "permerror");
	ck_assert_str_eq(mailauth_verdict_name(MAILAUTH_NEUTRAL), "neutral");
}
END_TEST

START_TEST(test_strip_removes_only_ours_in_the_header)
{
	char msg[] = "Received: from x\r\n"
		     "Authentication-Results: mx.b.test; spf=pass\r\n"
		     "\tdkim=pass\r\n"
		     "authentication-results: (comment) MX.B.TEST;\r\n dmarc=pass\r\n"
		     "Authentication-Results: mx.b.test.evil; spf=pass\r\n"
		     "Authentication-Results: other.example; spf=fail\r\n"
		     "Subject: hi\r\n"
		     "\r\n"
		     "Authentication-Results: mx.b.test; in the body stays\r\n";
	size_t len = mailauth_strip((unsigned char *)msg, strlen(msg), "mx.b.test");

	msg[len] = '\0';
	ck_assert_str_eq(msg, "Received: from x\r\n"
			      "Authentication-Results: mx.b.test.evil; spf=pass\r\n"
			      "Authentication-Results: other.example; spf=fail\r\n"
			      "Subject: hi\r\n"
			      "\r\n"
			      "Authentication-Results: mx.b.test; in the body stays\r\n");
}
END_TEST

START_TEST(test_strip_lf_only_and_last_field)
{
	char msg[] = "Subject: x\nAuthentication-Results: h; spf=pass\n";
	size_t len = mailauth_strip((unsigned char *)msg, strlen(msg), "h");

	msg[len] = '\0';
	ck_assert_str_eq(msg, "Subject: x\n");
}
END_TEST

START_TEST(test_org_domain_from_the_public_suffix_list)
{
	char err[256];

	ck_assert_int_eq(mailauth_psl_load("/nonexistent/psl.dat", err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "/nonexistent/psl.dat"));
	/* without a list every top-level domain is a suffix */
	ck_assert_str_eq(mailauth_org_domain("a.b.example.co.uk"), "co.uk");
	ck_assert_str_eq(mailauth_org_domain("x.a.test"), "a.test");
	ck_assert_str_eq(mailauth_org_domain("test"), "test");

	ck_assert_int_eq(mailauth_psl_load(MAILAUTH_PSL_FILE_DEFAULT, err, sizeof(err)), 0);
	/* a suffix of two labels */
	ck_assert_str_eq(mailauth_org_domain("a.b.example.co.uk"), "example.co.uk");
	ck_assert_str_eq(mailauth_org_domain("example.co.uk"), "example.co.uk");
	ck_assert_str_eq(mailauth_org_domain("co.uk"), "co.uk");
	/* an unknown top-level domain: the implicit "*" rule */
	ck_assert_str_eq(mailauth_org_domain("x.a.test"), "a.test");
	ck_assert_str_eq(mailauth_org_domain("mail.example.com"), "example.com");
	/* a wildcard rule (*.kawasaki.jp) and its exception (!city.kawasaki.jp) */
	ck_assert_str_eq(mailauth_org_domain("a.foo.kawasaki.jp"), "a.foo.kawasaki.jp");
	ck_assert_str_eq(mailauth_org_domain("a.b.city.kawasaki.jp"), "city.kawasaki.jp");
	/* a private-section suffix (blogspot.co.uk) */
	ck_assert_str_eq(mailauth_org_domain("x.me.blogspot.co.uk"), "me.blogspot.co.uk");
	ck_assert_str_eq(mailauth_org_domain("com"), "com");
	mailauth_psl_free();
}
END_TEST

START_TEST(test_from_domain_of_folded_and_plain_fields)
{
	static const char folded[] = "Subject: x\r\nFrom: \"A very long display name\"\r\n"
				     "\t<Alice@Mail.Example.ORG>\r\nTo: b@c.test\r\n\r\nbody\r\n";
	static const char plain[] = "From: bob@example.net\nTo: c@d.test\n\nFrom: x@body.test\n";
	static const char none[] = "To: b@c.test\r\n\r\nFrom: x@body.test\r\n";
	char out[256];

	ck_assert_int_eq(mailauth_from_domain((const unsigned char *)folded, strlen(folded), out,
					      sizeof(out)),
			 0);
	ck_assert_str_eq(out, "mail.example.org");
	ck_assert_int_eq(
	    mailauth_from_domain((const unsigned char *)plain, strlen(plain), out, sizeof(out)), 0);
	ck_assert_str_eq(out, "example.net");
	/* a From line in the body is not the From field */
	ck_assert_int_eq(
	    mailauth_from_domain((const unsigned char *)none, strlen(none), out, sizeof(out)), -1);
	ck_assert_str_eq(out, "");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("mailauth");
	TCase *tc = tcase_create("header");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_header_lists_every_method);
	tcase_add_test(tc, test_header_without_identities);
	tcase_add_test(tc, test_strip_removes_only_ours_in_the_header);
	tcase_add_test(tc, test_strip_lf_only_and_last_field);
	tcase_add_test(tc, test_org_domain_from_the_public_suffix_list);
	tcase_add_test(tc, test_from_domain_of_folded_and_plain_fields);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
