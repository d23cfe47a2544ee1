/*
 * test_smtp_parse.c - the SMTP command parser and the DATA reader: every
 * verb, every parameter, address edge cases, every error, and the
 * end-of-data rules that make message smuggling impossible.
 */
#include <config.h>

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp.h"

static struct smtp_command cmd;
static struct smtp_error err;

static int parse(const char *line)
{
	memset(&err, 0, sizeof(err));
	return smtp_parse(line, strlen(line), &cmd, &err);
}

#define ck_parse_ok(line) ck_assert_msg(parse(line) == 0, "%s: %d %s", line, err.code, err.text)
#define ck_parse_err(line, c, st)                                                                  \
	do {                                                                                       \
		ck_assert_msg(parse(line) == -1, "%s parsed", line);                               \
		ck_assert_int_eq(err.code, c);                                                     \
		ck_assert_str_eq(err.status, st);                                                  \
	} while (0)

START_TEST(test_every_verb_parses)
{
	static const struct {
		const char *line;
		enum smtp_verb verb;
	} cases[] = {
	    {"EHLO client.example.net", SMTP_CMD_EHLO},
	    {"helo client", SMTP_CMD_HELO},
	    {"MAIL FROM:<a@b.example>", SMTP_CMD_MAIL},
	    {"RCPT TO:<c@d.example>", SMTP_CMD_RCPT},
	    {"DATA", SMTP_CMD_DATA},
	    {"BDAT 10", SMTP_CMD_BDAT},
	    {"RSET", SMTP_CMD_RSET},
	    {"NOOP", SMTP_CMD_NOOP},
	    {"QUIT", SMTP_CMD_QUIT},
	    {"HELP", SMTP_CMD_HELP},
	    {"VRFY someone", SMTP_CMD_VRFY},
	    {"STARTTLS", SMTP_CMD_STARTTLS},
	    {"AUTH PLAIN", SMTP_CMD_AUTH},
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ck_parse_ok(cases[i].line);
		ck_assert_int_eq(cmd.verb, cases[i].verb);
		ck_assert_str_eq(smtp_verb_name(cmd.verb),
				 cases[i].line[0] == 'h' ? "HELO" : smtp_verb_name(cases[i].verb));
	}
	ck_assert_str_eq(smtp_verb_name(SMTP_CMD_COUNT), "UNKNOWN");
}
END_TEST

START_TEST(test_unknown_and_empty_commands)
{
	ck_parse_err("", 500, "5.5.2");
	ck_parse_err("FOO bar", 500, "5.5.1");
	ck_parse_err("MAILX FROM:<a@b.c>", 500, "5.5.1");
	ck_assert_int_eq(cmd.verb, SMTP_CMD_COUNT);
	ck_assert_int_eq(smtp_parse("NO\0OP", 5, &cmd, &err), -1);
	ck_assert_int_eq(err.code, 500);
}
END_TEST

START_TEST(test_ehlo_domain_and_literals)
{
	ck_parse_ok("EHLO [127.0.0.1]");
	ck_assert_str_eq(cmd.arg, "[127.0.0.1]");
	ck_parse_ok("EHLO [IPv6:::1]");
	ck_parse_ok("EHLO my_host.example");
	ck_parse_err("EHLO", 501, "5.5.4");
	ck_parse_err("EHLO ", 501, "5.5.4");
	ck_parse_err("EHLO bad..domain", 501, "5.5.4");
	ck_parse_err("EHLO -bad.example", 501, "5.5.4");
	ck_parse_err("EHLO [999.0.0.1]", 501, "5.5.4");
	ck_parse_err("EHLO a<b>", 501, "5.5.4");
}
END_TEST

START_TEST(test_mail_params)
{
	ck_parse_ok("MAIL FROM:<a@b.example> SIZE=1000 BODY=8BITMIME SMTPUTF8 RET=HDRS "
		    "ENVID=abc+2Bd AUTH=<>");
	ck_assert_str_eq(cmd.address, "a@b.example");
	ck_assert(cmd.has_size);
	ck_assert_uint_eq(cmd.size, 1000);
	ck_assert_int_eq(cmd.body, SMTP_BODY_8BITMIME);
	ck_assert(cmd.smtputf8);
	ck_assert_str_eq(cmd.ret, "HDRS");
	ck_assert_str_eq(cmd.envid, "abc+2Bd");
	ck_assert_str_eq(cmd.auth_param, "<>");
	ck_parse_ok("mail from:<a@b.example> body=7bit ret=full");
	ck_assert_int_eq(cmd.body, SMTP_BODY_7BIT);
	ck_assert_str_eq(cmd.ret, "FULL");
	/* The space after the colon that many clients send. */
	ck_parse_ok("MAIL FROM: <a@b.example>");
	ck_parse_ok("MAIL FROM:<>");
	ck_assert_str_eq(cmd.address, "");
	ck_parse_err("MAIL FROM:<a@b.example> SIZE=abc", 501, "5.5.4");
	ck_parse_err("MAIL FROM:<a@b.example> SIZE=99999999999999999999999", 501, "5.5.4");
	ck_parse_err("MAIL FROM:<a@b.example> BODY=BINARYMIME", 555, "5.5.4");
	ck_parse_err("MAIL FROM:<a@b.example> SMTPUTF8=yes", 501, "5.5.4");
	ck_parse_err("MAIL FROM:<a@b.example> RET=SOME", 501, "5.5.4");
	ck_parse_err("MAIL FROM:<a@b.example> ENVID=a=b", 501, "5.5.4");
	ck_parse_err("MAIL FROM:<a@b.example> ENVID=a+zz", 501, "5.5.4");
	ck_parse_err("MAIL FROM:<a@b.example> XFOO=1", 555, "5.5.4");
	ck_parse_err("MAIL FROM:<a@b.example> NOTIFY=NEVER", 555, "5.5.4");
	ck_parse_err("MAIL FROM:<a@b.example> SIZE=1 SIZE=2", 501, "5.5.4");
	ck_parse_err("MAIL FROM:<a@b.example>junk", 501, "5.5.4");
	ck_parse_err("MAIL FROM:a@b.example", 501, "5.5.4");
	ck_parse_err("MAIL TO:<a@b.example>", 501, "5.5.4");
	ck_parse_err("MAIL FROM:<a@b.example", 501, "5.5.4");
}
END_TEST

START_TEST(test_rcpt_params)
{
	ck_parse_ok("RCPT TO:<c@d.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;c+40d.example");
	ck_assert_str_eq(cmd.address, "c@d.example");
	ck_assert_uint_eq(cmd.notify, SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE);
	ck_assert_str_eq(cmd.orcpt, "rfc822;c+40d.example");
	ck_parse_ok("RCPT TO:<c@d.example> NOTIFY=never");
	ck_assert_uint_eq(cmd.notify, SMTP_NOTIFY_NEVER);
	ck_parse_ok("RCPT TO:<@relay.example,@other.example:c@d.example>");
	ck_assert_str_eq(cmd.address, "c@d.example");
	ck_parse_err("RCPT TO:<c@d.example> NOTIFY=NEVER,DELAY", 501, "5.5.4");
	ck_parse_err("RCPT TO:<c@d.example> NOTIFY=SOMETIMES", 501, "5.5.4");
	ck_parse_err("RCPT TO:<c@d.example> NOTIFY=DELAY,DELAY", 501, "5.5.4");
	ck_parse_err("RCPT TO:<c@d.example> ORCPT=c@d.example", 501, "5.5.4");
	ck_parse_err("RCPT TO:<c@d.example> SIZE=10", 555, "5.5.4");
	ck_parse_err("RCPT TO:<>", 501, "5.1.3");
	ck_parse_err("RCPT FROM:<c@d.example>", 501, "5.5.4");
	ck_parse_err("RCPT TO:<@relay.example c@d.example>", 501, "5.1.3");
}
END_TEST

START_TEST(test_address_edge_cases)
{
	char longlocal[128], longpath[400], line[512];

	ck_parse_ok("MAIL FROM:<\"john doe\"@example.org>");
	ck_assert_str_eq(cmd.address, "\"john doe\"@example.org");
	ck_parse_ok("MAIL FROM:<\"a>b\"@example.org>");
	ck_assert_str_eq(cmd.address, "\"a>b\"@example.org");
	ck_parse_ok("MAIL FROM:<\"q\\\"x\"@example.org>");
	ck_parse_ok("MAIL FROM:<user@[192.0.2.1]>");
	ck_parse_ok("MAIL FROM:<user@[IPv6:2001:db8::1]>");
	ck_parse_ok("MAIL FROM:<first.last+tag@sub.example.org>");
	ck_parse_err("MAIL FROM:<.a@example.org>", 501, "5.1.3");
	ck_parse_err("MAIL FROM:<a.@example.org>", 501, "5.1.3");
	ck_parse_err("MAIL FROM:<a..b@example.org>", 501, "5.1.3");
	ck_parse_err("MAIL FROM:<a@>", 501, "5.1.3");
	ck_parse_err("MAIL FROM:<a>", 501, "5.1.3");
	ck_parse_err("MAIL FROM:<@example.org>", 501, "5.1.3");
	ck_parse_err("MAIL FROM:<a b@example.org>", 501, "5.1.3");
	ck_parse_err("MAIL FROM:<a@exa mple.org>", 501, "5.1.3");
	ck_parse_err("MAIL FROM:<a@-example.org>", 501, "5.1.3");
	ck_parse_err("MAIL FROM:<a@example..org>", 501, "5.1.3");
	ck_parse_err("MAIL FROM:<a@[300.1.1.1]>", 501, "5.1.3");
	ck_parse_err("MAIL FROM:<\"unterminated@example.org>", 501, "5.5.4");
	ck_parse_err("MAIL FROM:<a\tb@example.org>", 501, "5.1.3");
	ck_parse_err("MAIL FROM:<a(b)@example.org>", 501, "5.1.3");
	/* No header injection: CR/LF/NUL never get through. */
	ck_parse_err("MAIL FROM:<a@example.org\r\nBcc: x@y.z>", 500, "5.5.2");
	ck_assert_int_eq(smtp_parse("MAIL FROM:<a\0b@example.org>", 27, &cmd, &err), -1);
	/* Length limits: local part 64, path 256. */
	memset(longlocal, 'a', 65);
	longlocal[65] = '\0';
	snprintf(line, sizeof(line), "MAIL FROM:<%s@example.org>", longlocal);
	ck_parse_err(line, 501, "5.1.3");
	longlocal[64] = '\0';
	snprintf(line, sizeof(line), "MAIL FROM:<%s@example.org>", longlocal);
	ck_parse_ok(line);
	memset(longpath, 'b', 300);
	longpath[300] = '\0';
	snprintf(line, sizeof(line), "MAIL FROM:<a@%s.org>", longpath);
	ck_parse_err(line, 501, "5.1.3");
}
END_TEST

START_TEST(test_smtputf8_addresses)
{
	/* Non-ASCII only with SMTPUTF8 (RFC 6531). */
	ck_parse_err("MAIL FROM:<j\xc3\xb6rg@example.org>", 553, "5.6.7");
	ck_parse_ok("MAIL FROM:<j\xc3\xb6rg@example.org> SMTPUTF8");
	ck_assert(cmd.address_utf8);
	ck_parse_ok("MAIL FROM:<user@b\xc3\xbc\x63her.example> SMTPUTF8");
	/* Malformed UTF-8 is refused even with SMTPUTF8. */
	ck_parse_err("MAIL FROM:<j\xc3@example.org> SMTPUTF8", 501, "5.1.3");
	ck_parse_err("MAIL FROM:<j\xed\xa0\x80@example.org> SMTPUTF8", 501, "5.1.3");
	ck_parse_err("MAIL FROM:<j\xc0\xaf@example.org> SMTPUTF8", 501, "5.1.3");
	/* RCPT: the parser marks it, the session checks the transaction. */
	ck_parse_ok("RCPT TO:<\xe7\x94\xa8\xe6\x88\xb7@example.org>");
	ck_assert(cmd.address_utf8);
	ck_parse_ok("RCPT TO:<plain@example.org>");
	ck_assert(!cmd.address_utf8);
}
END_TEST

START_TEST(test_bdat)
{
	ck_parse_ok("BDAT 0 LAST");
	ck_assert_uint_eq(cmd.chunk_size, 0);
	ck_assert(cmd.last);
	ck_parse_ok("BDAT 12345");
	ck_assert_uint_eq(cmd.chunk_size, 12345);
	ck_assert(!cmd.last);
	ck_parse_ok("bdat 5 last");
	ck_assert(cmd.last);
	ck_parse_err("BDAT", 501, "5.5.4");
	ck_parse_err("BDAT x", 501, "5.5.4");
	ck_parse_err("BDAT -1", 501, "5.5.4");
	/* The size is known even when the rest is wrong: the chunk can be skipped. */
	ck_parse_err("BDAT 77 FIRST", 501, "5.5.4");
	ck_assert_int_eq(cmd.verb, SMTP_CMD_BDAT);
	ck_assert_uint_eq(cmd.chunk_size, 77);
}
END_TEST

START_TEST(test_auth)
{
	ck_parse_ok("AUTH plain");
	ck_assert_str_eq(cmd.mechanism, "PLAIN");
	ck_assert(!cmd.has_initial);
	ck_parse_ok("AUTH PLAIN AGFsaWNlAHB3");
	ck_assert(cmd.has_initial);
	ck_assert_uint_eq(cmd.initial_len, 12);
	ck_assert(strncmp(cmd.initial, "AGFsaWNlAHB3", 12) == 0);
	ck_parse_ok("AUTH PLAIN =");
	ck_assert(cmd.has_initial);
	ck_assert_uint_eq(cmd.initial_len, 0);
	ck_parse_ok("AUTH LOGIN dXNlcg==");
	ck_parse_err("AUTH", 501, "5.5.4");
	ck_parse_err("AUTH PLAIN not*base64", 501, "5.5.2");
	ck_parse_err("AUTH PLAIN abc", 501, "5.5.2");
	ck_parse_err("AUTH PLAIN a b", 501, "5.5.4");
	ck_parse_err("AUTH WAYTOOLONGMECHANISMNAME-X", 504, "5.5.4");
}
END_TEST

START_TEST(test_arguments_of_simple_verbs)
{
	ck_parse_err("DATA now", 501, "5.5.4");
	ck_parse_err("RSET x", 501, "5.5.4");
	ck_parse_err("QUIT x", 501, "5.5.4");
	ck_parse_err("STARTTLS x", 501, "5.5.4");
	ck_parse_err("VRFY", 501, "5.5.4");
	ck_parse_ok("NOOP anything at all");
	ck_assert_str_eq(cmd.arg, "anything at all");
	ck_parse_ok("HELP MAIL");
	ck_assert_str_eq(cmd.arg, "MAIL");
	ck_parse_err("NOOP \x01", 501, "5.5.4");
}
END_TEST

START_TEST(test_line_too_long)
{
	char line[700];

	memset(line, 'x', sizeof(line) - 1);
	line[sizeof(line) - 1] = '\0';
	memcpy(line, "NOOP ", 5);
	ck_parse_err(line, 500, "5.5.2");
	/* AUTH lines may be longer (RFC 4954 4). */
	memcpy(line, "AUTH PLAIN ", 11);
	memset(line + 11, 'A', sizeof(line) - 12);
	line[11 + 4 * ((sizeof(line) - 12) / 4)] = '\0';
	ck_parse_ok(line);
}
END_TEST

START_TEST(test_helpers)
{
	ck_assert(smtp_valid_xtext("abc+2B", 6));
	ck_assert(!smtp_valid_xtext("abc+2", 5));
	ck_assert(!smtp_valid_xtext("a b", 3));
	ck_assert(!smtp_valid_xtext("a+2b", 4));
	ck_assert(smtp_valid_helo("[10.0.0.1]", 10));
	ck_assert(!smtp_valid_helo("", 0));
	ck_assert_int_eq(smtp_check_mailbox("x@y.z", 5, false, &err), 0);
	ck_assert_int_eq(smtp_check_mailbox("", 0, false, &err), -1);
}
END_TEST

/* ---- DATA reader ---- */

static struct smtp_data data;

static void feed_lines(const char *text, size_t len)
{
	size_t pos = 0;
	while (pos < len && !data.done) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t seg = nl ? (size_t)(nl - (text + pos)) + 1 : len - pos;
		ck_assert_int_eq(smtp_data_feed(&data, (const unsigned char *)text + pos, seg), 0);
		pos += seg;
	}
}

#define FEED(lit) feed_lines(lit, sizeof(lit) - 1)

START_TEST(test_data_dot_unstuffing_and_end)
{
	smtp_data_init(&data, 1000, 1000);
	FEED("Subject: x\r\n\r\n..leading\r\n.\r\nafter");
	ck_assert(data.done);
	ck_assert_int_eq(data.error, SMTP_DATA_OK);
	ck_assert_uint_eq(data.len, strlen("Subject: x\r\n\r\n.leading\r\n"));
	ck_assert(memcmp(data.buf, "Subject: x\r\n\r\n.leading\r\n", data.len) == 0);
	smtp_data_free(&data);
	/* Empty message. */
	smtp_data_init(&data, 1000, 1000);
	FEED(".\r\n");
	ck_assert(data.done);
	ck_assert_uint_eq(data.len, 0);
	smtp_data_free(&data);
}
END_TEST

START_TEST(test_data_smuggling_sequences_never_end)
{
	static const char *const attacks[] = {
	    "a\n.\nMAIL FROM:<x@y.z>\r\n",     "a\r.\r\nMAIL FROM:<x@y.z>\r\n",
	    "a\n.\r\nMAIL FROM:<x@y.z>\r\n",   "a\r\n.\nMAIL FROM:<x@y.z>\r\n",
	    "a\r\n.\r\rMAIL FROM:<x@y.z>\r\n",
	};
	size_t i;

	for (i = 0; i < sizeof(attacks) / sizeof(attacks[0]); i++) {
		smtp_data_init(&data, 1000, 1000);
		feed_lines(attacks[i], strlen(attacks[i]));
		ck_assert_msg(!data.done, "attack %zu ended the data", i);
		ck_assert_msg(data.error == SMTP_DATA_BARE_LF || data.error == SMTP_DATA_BARE_CR,
			      "attack %zu not flagged", i);
		FEED("\r\n.\r\n");
		ck_assert(data.done);
		smtp_data_free(&data);
	}
}
END_TEST

START_TEST(test_data_errors)
{
	smtp_data_init(&data, 1000, 1000);
	ck_assert_int_eq(smtp_data_feed(&data, (const unsigned char *)"a\0b\r\n", 5), 0);
	ck_assert_int_eq(data.error, SMTP_DATA_NUL);
	smtp_data_free(&data);

	smtp_data_init(&data, 20, 1000);
	FEED("0123456789\r\n0123456789\r\n.\r\n");
	ck_assert(data.done);
	ck_assert_int_eq(data.error, SMTP_DATA_TOO_BIG);
	ck_assert_uint_le(data.len, 20);
	smtp_data_free(&data);

	smtp_data_init(&data, 1000, 10);
	FEED("0123456789abc\r\n.\r\n");
	ck_assert(data.done);
	ck_assert_int_eq(data.error, SMTP_DATA_LINE_TOO_LONG);
	smtp_data_free(&data);

	smtp_data_error_reply(SMTP_DATA_TOO_BIG, &err);
	ck_assert_int_eq(err.code, 552);
	ck_assert_str_eq(err.status, "5.3.4");
	smtp_data_error_reply(SMTP_DATA_BARE_LF, &err);
	ck_assert_int_eq(err.code, 554);
}
END_TEST

START_TEST(test_data_append_is_binary_safe)
{
	static const unsigned char bin[] = {0, '\r', '.', '\n', 0xff};

	smtp_data_init(&data, 100, 1000);
	ck_assert_int_eq(smtp_data_append(&data, bin, sizeof(bin)), 0);
	ck_assert_uint_eq(data.len, sizeof(bin));
	ck_assert(memcmp(data.buf, bin, sizeof(bin)) == 0);
	ck_assert_int_eq(data.error, SMTP_DATA_OK);
	smtp_data_free(&data);
}
END_TEST

static Suite *smtp_parse_suite(void)
{
	Suite *s = suite_create("smtp_parse");
	TCase *tc = tcase_create("parse");

	tcase_add_test(tc, test_every_verb_parses);
	tcase_add_test(tc, test_unknown_and_empty_commands);
	tcase_add_test(tc, test_ehlo_domain_and_literals);
	tcase_add_test(tc, test_mail_params);
	tcase_add_test(tc, test_rcpt_params);
	tcase_add_test(tc, test_address_edge_cases);
	tcase_add_test(tc, test_smtputf8_addresses);
	tcase_add_test(tc, test_bdat);
	tcase_add_test(tc, test_auth);
	tcase_add_test(tc, test_arguments_of_simple_verbs);
	tcase_add_test(tc, test_line_too_long);
	tcase_add_test(tc, test_helpers);
	suite_add_tcase(s, tc);
	tc = tcase_create("data");
	tcase_add_test(tc, test_data_dot_unstuffing_and_end);
	tcase_add_test(tc, test_data_smuggling_sequences_never_end);
	tcase_add_test(tc, test_data_errors);
	tcase_add_test(tc, test_data_append_is_binary_safe);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(smtp_parse_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
