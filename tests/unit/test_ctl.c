/*
 * test_ctl.c - the pure helpers of posternctl: domain and address checks,
 * size parsing and formatting, option parsing.
 */
#include <config.h>

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/ctl.h"

static int domain(const char *in, char *out)
{
	char err[256];

	return ctl_domain_normalize(in, out, 256, err, sizeof(err));
}

static int address(const char *in, char *out)
{
	char err[256];

	return ctl_address_normalize(in, out, 321, err, sizeof(err));
}

START_TEST(domains_are_lowercased_and_checked)
{
	char out[256];
	char longlabel[80];

	ck_assert_int_eq(domain("Example.ORG", out), 0);
	ck_assert_str_eq(out, "example.org");
	ck_assert_int_eq(domain("a-b.c.example", out), 0);
	ck_assert_int_eq(domain("xn--bcher-kva.example", out), 0);
	static const char *const bad[] = {"",	     "org",	"-a.org", "a-.org",
					  "a..org",  ".a.org",	"a.org.", "a_b.org",
					  "a b.org", "1.2.3.4", "a.123"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(domain(bad[i], out) == -1, "%s accepted", bad[i]);
	memset(longlabel, 'a', 64);
	strcpy(longlabel + 64, ".org");
	ck_assert_int_eq(domain(longlabel, out), -1);
	ck_assert_int_eq(domain(longlabel + 1, out), 0); /* 63 is the longest label */
}
END_TEST

START_TEST(addresses_are_lowercased_and_checked)
{
	char out[321], local[80];

	ck_assert_int_eq(address("Alice.Smith+tag@Example.ORG", out), 0);
	ck_assert_str_eq(out, "alice.smith+tag@example.org");
	static const char *const bad[] = {
	    "alice",	      "@example.org",	"alice@",	   "a..b@example.org",
	    ".a@example.org", "a.@example.org", "a b@example.org", "a\"b@example.org",
	    "a@b@example",    "a@nodot"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(address(bad[i], out) == -1, "%s accepted", bad[i]);
	memset(local, 'x', 65);
	strcpy(local + 65, "@example.org");
	ck_assert_int_eq(address(local, out), -1);
	ck_assert_int_eq(address(local + 1, out), 0);
}
END_TEST

START_TEST(sizes_take_binary_suffixes)
{
	int64_t v;

	ck_assert_int_eq(ctl_parse_size("0", &v), 0);
	ck_assert_int_eq(v, 0);
	ck_assert_int_eq(ctl_parse_size("1234", &v), 0);
	ck_assert_int_eq(v, 1234);
	ck_assert_int_eq(ctl_parse_size("10K", &v), 0);
	ck_assert_int_eq(v, 10240);
	ck_assert_int_eq(ctl_parse_size("5m", &v), 0);
	ck_assert_int_eq(v, 5 * 1024 * 1024);
	ck_assert_int_eq(ctl_parse_size("2GB", &v), 0);
	ck_assert_int_eq(v, 2LL * 1024 * 1024 * 1024);
	static const char *const bad[] = {
	    "", "-1", "K", "1.5G", "10X", "10KK", " 1", "99999999999999999999", "9000000000G"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(ctl_parse_size(bad[i], &v) == -1, "%s accepted", bad[i]);
}
END_TEST

START_TEST(sizes_format_for_people)
{
	char buf[32];

	ctl_format_size(512, buf, sizeof(buf));
	ck_assert_str_eq(buf, "512 B");
	ctl_format_size(10 * 1024 * 1024, buf, sizeof(buf));
	ck_assert_str_eq(buf, "10.0 MiB");
	ctl_format_size(1536, buf, sizeof(buf));
	ck_assert_str_eq(buf, "1.5 KiB");
}
END_TEST

START_TEST(options_and_positionals_mix_in_any_order)
{
	struct ctl ctl;
	bool yes = false;
	const char *key = NULL;
	const struct ctl_option opts[] = {
	    {"--yes", NULL, &yes}, {"--key", &key, NULL}, {NULL, NULL, NULL}};
	char a0[] = "verb", a1[] = "--json", a2[] = "one", a3[] = "--key", a4[] = "f",
	     a5[] = "--yes", a6[] = "--key=g", a7[] = "--bogus", a8[] = "--yes=1";
	char *argv[] = {a0, a1, a2, a3, a4, a5};
	char *pos[2];
	int n;

	memset(&ctl, 0, sizeof(ctl));
	ck_assert_int_eq(ctl_parse_args(&ctl, 6, argv, opts, pos, 1, 1, &n), 0);
	ck_assert_int_eq(n, 1);
	ck_assert_str_eq(pos[0], "one");
	ck_assert_str_eq(key, "f");
	ck_assert(yes);
	ck_assert(ctl.json);

	char *eq[] = {a0, a6};
	ck_assert_int_eq(ctl_parse_args(&ctl, 2, eq, opts, pos, 0, 0, &n), 0);
	ck_assert_str_eq(key, "g");

	char *unknown[] = {a0, a7};
	ck_assert_int_eq(ctl_parse_args(&ctl, 2, unknown, opts, pos, 0, 0, &n), -1);
	char *flagval[] = {a0, a8};
	ck_assert_int_eq(ctl_parse_args(&ctl, 2, flagval, opts, pos, 0, 0, &n), -1);
	char *novalue[] = {a0, a3};
	ck_assert_int_eq(ctl_parse_args(&ctl, 2, novalue, opts, pos, 0, 0, &n), -1);
	char *missing[] = {a0};
	ck_assert_int_eq(ctl_parse_args(&ctl, 1, missing, opts, pos, 1, 1, &n), -1);
	char *extra[] = {a0, a2, a2};
	ck_assert_int_eq(ctl_parse_args(&ctl, 3, extra, opts, pos, 1, 1, &n), -1);
}
END_TEST

static Suite *ctl_suite(void)
{
	Suite *s = suite_create("ctl");
	TCase *tc = tcase_create("helpers");

	tcase_add_test(tc, domains_are_lowercased_and_checked);
	tcase_add_test(tc, addresses_are_lowercased_and_checked);
	tcase_add_test(tc, sizes_take_binary_suffixes);
	tcase_add_test(tc, sizes_format_for_people);
	tcase_add_test(tc, options_and_positionals_mix_in_any_order);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(ctl_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
