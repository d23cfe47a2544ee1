/*
 * test_pop3_parse.c - the POP3 command parser and the pure output helpers
 * (dot-stuffing, TOP cut, SASL PLAIN decoding).
 */
#include <config.h>

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "pop3/pop3.h"

static enum pop3_parse_status parse(const char *line, struct pop3_command *cmd)
{
	return pop3_parse(line, strlen(line), cmd);
}

START_TEST(every_verb_is_recognised_case_insensitively)
{
	static const struct {
		const char *line;
		enum pop3_verb verb;
	} cases[] = {
	    {"CAPA", POP3_CMD_CAPA},   {"stls", POP3_CMD_STLS},	  {"User bob", POP3_CMD_USER},
	    {"PASS x", POP3_CMD_PASS}, {"AUTH", POP3_CMD_AUTH},	  {"sTaT", POP3_CMD_STAT},
	    {"LIST", POP3_CMD_LIST},   {"RETR 1", POP3_CMD_RETR}, {"DELE 2", POP3_CMD_DELE},
	    {"NOOP", POP3_CMD_NOOP},   {"RSET", POP3_CMD_RSET},	  {"top 1 0", POP3_CMD_TOP},
	    {"UIDL", POP3_CMD_UIDL},   {"QUIT", POP3_CMD_QUIT},	  {"APOP a b", POP3_CMD_APOP},
	};
	struct pop3_command cmd;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ck_assert_int_eq(parse(cases[i].line, &cmd), POP3_PARSE_OK);
		ck_assert_int_eq(cmd.verb, cases[i].verb);
	}
	ck_assert_str_eq(pop3_verb_name(POP3_CMD_RETR), "RETR");
	ck_assert_str_eq(pop3_verb_name(POP3_CMD_TOP), "TOP");
}
END_TEST

START_TEST(unknown_and_empty_lines_are_errors)
{
	struct pop3_command cmd;

	ck_assert_int_eq(parse("", &cmd), POP3_PARSE_EMPTY);
	ck_assert_int_eq(parse("   ", &cmd), POP3_PARSE_EMPTY);
	ck_assert_int_eq(parse("HELO", &cmd), POP3_PARSE_UNKNOWN);
	ck_assert_int_eq(parse("RETRIEVE 1", &cmd), POP3_PARSE_UNKNOWN);
	ck_assert_int_eq(parse("RET 1", &cmd), POP3_PARSE_UNKNOWN);
	ck_assert_int_eq(parse(" RETR 1", &cmd), POP3_PARSE_UNKNOWN);
	ck_assert_int_eq(cmd.verb, POP3_CMD_COUNT);
	ck_assert_str_eq(pop3_parse_error(POP3_PARSE_UNKNOWN), "unknown command");
}
END_TEST

START_TEST(commands_without_arguments_refuse_extra_ones)
{
	struct pop3_command cmd;

	ck_assert_int_eq(parse("STAT 1", &cmd), POP3_PARSE_EXTRA_ARG);
	ck_assert_int_eq(cmd.verb, POP3_CMD_STAT);
	ck_assert_int_eq(parse("QUIT now", &cmd), POP3_PARSE_EXTRA_ARG);
	ck_assert_int_eq(parse("NOOP x", &cmd), POP3_PARSE_EXTRA_ARG);
	ck_assert_int_eq(parse("CAPA x", &cmd), POP3_PARSE_EXTRA_ARG);
	ck_assert_int_eq(parse("STLS x", &cmd), POP3_PARSE_EXTRA_ARG);
	ck_assert_int_eq(parse("RSET x", &cmd), POP3_PARSE_EXTRA_ARG);
	ck_assert_int_eq(parse("QUIT ", &cmd), POP3_PARSE_OK); /* trailing space is harmless */
}
END_TEST

START_TEST(message_numbers_are_positive_decimal_32bit)
{
	struct pop3_command cmd;

	ck_assert_int_eq(parse("RETR 1", &cmd), POP3_PARSE_OK);
	ck_assert(cmd.has_msg);
	ck_assert_uint_eq(cmd.msg, 1);
	ck_assert_int_eq(parse("DELE 4294967295", &cmd), POP3_PARSE_OK);
	ck_assert_uint_eq(cmd.msg, 4294967295u);
	ck_assert_int_eq(parse("RETR 4294967296", &cmd), POP3_PARSE_BAD_NUMBER);
	ck_assert_int_eq(parse("RETR 0", &cmd), POP3_PARSE_BAD_NUMBER);
	ck_assert_int_eq(parse("RETR -1", &cmd), POP3_PARSE_BAD_NUMBER);
	ck_assert_int_eq(parse("RETR +1", &cmd), POP3_PARSE_BAD_NUMBER);
	ck_assert_int_eq(parse("RETR 1x", &cmd), POP3_PARSE_BAD_NUMBER);
	ck_assert_int_eq(parse("RETR 00000000001", &cmd), POP3_PARSE_BAD_NUMBER);
	ck_assert_int_eq(parse("RETR", &cmd), POP3_PARSE_MISSING_ARG);
	ck_assert_int_eq(parse("DELE", &cmd), POP3_PARSE_MISSING_ARG);
	ck_assert_int_eq(parse("RETR 1 2", &cmd), POP3_PARSE_EXTRA_ARG);
	ck_assert_str_eq(pop3_parse_error(POP3_PARSE_BAD_NUMBER), "invalid message number");
}
END_TEST

START_TEST(list_and_uidl_take_an_optional_number)
{
	struct pop3_command cmd;

	ck_assert_int_eq(parse("LIST", &cmd), POP3_PARSE_OK);
	ck_assert(!cmd.has_msg);
	ck_assert_int_eq(parse("LIST 7", &cmd), POP3_PARSE_OK);
	ck_assert(cmd.has_msg);
	ck_assert_uint_eq(cmd.msg, 7);
	ck_assert_int_eq(parse("UIDL 3", &cmd), POP3_PARSE_OK);
	ck_assert_uint_eq(cmd.msg, 3);
	ck_assert_int_eq(parse("UIDL x", &cmd), POP3_PARSE_BAD_NUMBER);
	ck_assert_int_eq(parse("LIST 1 2", &cmd), POP3_PARSE_EXTRA_ARG);
}
END_TEST

START_TEST(top_needs_message_and_line_count)
{
	struct pop3_command cmd;

	ck_assert_int_eq(parse("TOP 2 10", &cmd), POP3_PARSE_OK);
	ck_assert_uint_eq(cmd.msg, 2);
	ck_assert_uint_eq(cmd.lines, 10);
	ck_assert_int_eq(parse("TOP 2 0", &cmd), POP3_PARSE_OK);
	ck_assert_uint_eq(cmd.lines, 0);
	ck_assert_int_eq(parse("TOP 2", &cmd), POP3_PARSE_MISSING_ARG);
	ck_assert_int_eq(parse("TOP", &cmd), POP3_PARSE_MISSING_ARG);
	ck_assert_int_eq(parse("TOP 0 1", &cmd), POP3_PARSE_BAD_NUMBER);
	ck_assert_int_eq(parse("TOP 1 -1", &cmd), POP3_PARSE_BAD_NUMBER);
	ck_assert_int_eq(parse("TOP 1 2 3", &cmd), POP3_PARSE_EXTRA_ARG);
}
END_TEST

START_TEST(user_and_pass_arguments)
{
	struct pop3_command cmd;
	char long_user[POP3_USER_MAX + 10];

	ck_assert_int_eq(parse("USER alice@example.org", &cmd), POP3_PARSE_OK);
	ck_assert_uint_eq(cmd.arg_len, strlen("alice@example.org"));
	ck_assert(memcmp(cmd.arg, "alice@example.org", cmd.arg_len) == 0);
	ck_assert_int_eq(parse("USER", &cmd), POP3_PARSE_MISSING_ARG);
	ck_assert_int_eq(parse("USER a b", &cmd), POP3_PARSE_EXTRA_ARG);
	memcpy(long_user, "USER ", 5);
	memset(long_user + 5, 'a', POP3_USER_MAX + 1);
	long_user[5 + POP3_USER_MAX + 1] = '\0';
	ck_assert_int_eq(parse(long_user, &cmd), POP3_PARSE_TOO_LONG);

	/* The password is the rest of the line, spaces and all. */
	ck_assert_int_eq(parse("PASS correct horse  battery ", &cmd), POP3_PARSE_OK);
	ck_assert_uint_eq(cmd.arg_len, strlen("correct horse  battery "));
	ck_assert(memcmp(cmd.arg, "correct horse  battery ", cmd.arg_len) == 0);
	ck_assert_int_eq(parse("PASS", &cmd), POP3_PARSE_MISSING_ARG);
	ck_assert_int_eq(parse("PASS ", &cmd), POP3_PARSE_MISSING_ARG);
	ck_assert_int_eq(parse("PASSx", &cmd), POP3_PARSE_UNKNOWN);
}
END_TEST

START_TEST(auth_mechanism_and_initial_response)
{
	struct pop3_command cmd;

	ck_assert_int_eq(parse("AUTH", &cmd), POP3_PARSE_OK);
	ck_assert_str_eq(cmd.mechanism, "");
	ck_assert(!cmd.has_initial);
	ck_assert_int_eq(parse("AUTH plain", &cmd), POP3_PARSE_OK);
	ck_assert_str_eq(cmd.mechanism, "PLAIN");
	ck_assert(!cmd.has_initial);
	ck_assert_int_eq(parse("AUTH PLAIN AGJvYgBwdw==", &cmd), POP3_PARSE_OK);
	ck_assert(cmd.has_initial);
	ck_assert_uint_eq(cmd.arg_len, 12);
	ck_assert(memcmp(cmd.arg, "AGJvYgBwdw==", 12) == 0);
	ck_assert_int_eq(parse("AUTH PLAIN a b", &cmd), POP3_PARSE_EXTRA_ARG);
	ck_assert_int_eq(parse("AUTH ABCDEFGHIJKLMNOPQRSTUVWXYZ", &cmd), POP3_PARSE_TOO_LONG);
}
END_TEST

START_TEST(line_limits_and_control_characters)
{
	struct pop3_command cmd;
	char line[POP3_AUTH_LINE_MAX + 16];

	memset(line, 0, sizeof(line));
	memcpy(line, "NOOP ", 5);
	memset(line + 5, 'x', 300);
	ck_assert_int_eq(parse(line, &cmd), POP3_PARSE_TOO_LONG);
	memset(line, 'x', 300);
	line[300] = '\0';
	ck_assert_int_eq(parse(line, &cmd), POP3_PARSE_TOO_LONG);

	/* AUTH may be long (RFC 5034), but not unbounded. */
	memset(line, 0, sizeof(line));
	memcpy(line, "AUTH PLAIN ", 11);
	memset(line + 11, 'A', 1000);
	ck_assert_int_eq(parse(line, &cmd), POP3_PARSE_OK);
	memset(line + 11, 'A', POP3_AUTH_LINE_MAX);
	ck_assert_int_eq(parse(line, &cmd), POP3_PARSE_TOO_LONG);

	ck_assert_int_eq(pop3_parse("RETR\0 1", 7, &cmd), POP3_PARSE_BAD_CHAR);
	ck_assert_int_eq(parse("RETR\t1", &cmd), POP3_PARSE_BAD_CHAR);
	ck_assert_int_eq(parse("PASS a\x7f", &cmd), POP3_PARSE_BAD_CHAR);
	/* The length argument is honoured: no NUL terminator needed. */
	ck_assert_int_eq(pop3_parse("RETR 12345", 6, &cmd), POP3_PARSE_OK);
	ck_assert_uint_eq(cmd.msg, 1);
}
END_TEST

static char *stuff_all(const char *in, size_t outcap_each)
{
	static unsigned char out[4096];
	size_t len = strlen(in), pos = 0, o = 0, n;
	bool bol = true;

	while (pos < len) {
		pos += pop3_dot_stuff((const unsigned char *)in + pos, len - pos, &bol, out + o,
				      outcap_each, &n);
		o += n;
	}
	out[o] = '\0';
	return (char *)out;
}

START_TEST(dot_stuffing_doubles_leading_dots_across_chunks)
{
	ck_assert_str_eq(stuff_all("a\r\n.b\r\n..\r\n.\r\n", 64), "a\r\n..b\r\n...\r\n..\r\n");
	ck_assert_str_eq(stuff_all(".start\r\nmid.dle\r\n", 64), "..start\r\nmid.dle\r\n");
	/* Tiny output windows must give the same bytes. */
	ck_assert_str_eq(stuff_all("a\r\n.b\r\n..\r\n.\r\n", 2), "a\r\n..b\r\n...\r\n..\r\n");
	ck_assert_str_eq(stuff_all("x\n.y", 3), "x\n..y");
}
END_TEST

START_TEST(top_cuts_after_header_and_n_body_lines)
{
	const char *msg = "Subject: a\r\nFrom: b\r\n\r\nl1\r\nl2\r\nl3\r\n";
	const unsigned char *m = (const unsigned char *)msg;
	size_t len = strlen(msg);

	ck_assert_uint_eq(pop3_top_length(m, len, 0), strlen("Subject: a\r\nFrom: b\r\n\r\n"));
	ck_assert_uint_eq(pop3_top_length(m, len, 2),
			  strlen("Subject: a\r\nFrom: b\r\n\r\nl1\r\nl2\r\n"));
	ck_assert_uint_eq(pop3_top_length(m, len, 99), len);
	/* No body at all: the whole message is header. */
	ck_assert_uint_eq(pop3_top_length((const unsigned char *)"A: b\r\n", 6, 0), 6);
	ck_assert_uint_eq(pop3_top_length((const unsigned char *)"A: b", 4, 0), 4);
	ck_assert_uint_eq(pop3_top_length((const unsigned char *)"A: b\n\nx\n", 8, 0), 6);
	ck_assert_uint_eq(pop3_top_length((const unsigned char *)"", 0, 3), 0);
	/* A body without a final line end. */
	ck_assert_uint_eq(pop3_top_length((const unsigned char *)"A: b\r\n\r\nxy", 10, 1), 10);
}
END_TEST

static int sasl(const char *raw, size_t raw_len, char *user, char *pass, size_t *pwlen)
{
	char b64[256];

	sodium_bin2base64(b64, sizeof(b64), (const unsigned char *)raw, raw_len,
			  sodium_base64_VARIANT_ORIGINAL);
	return pop3_sasl_plain_decode(b64, strlen(b64), user, POP3_USER_MAX + 1, pass,
				      POP3_PASSWORD_MAX + 1, pwlen);
}

START_TEST(sasl_plain_decodes_and_refuses_proxy_logins)
{
	char user[POP3_USER_MAX + 1], pass[POP3_PASSWORD_MAX + 1];
	size_t pwlen;

	ck_assert_int_eq(sasl("\0bob@x.org\0pw d", 15, user, pass, &pwlen), 0);
	ck_assert_str_eq(user, "bob@x.org");
	ck_assert_str_eq(pass, "pw d");
	ck_assert_uint_eq(pwlen, 4);
	ck_assert_int_eq(sasl("bob@x.org\0bob@x.org\0pw", 22, user, pass, &pwlen), 0);
	ck_assert_int_eq(sasl("eve@x.org\0bob@x.org\0pw", 22, user, pass, &pwlen), -1);
	ck_assert_int_eq(sasl("\0\0pw", 4, user, pass, &pwlen), -1);
	ck_assert_int_eq(sasl("\0bob\0", 5, user, pass, &pwlen), -1);
	ck_assert_int_eq(sasl("\0bob\0p\0w", 8, user, pass, &pwlen), -1);
	ck_assert_int_eq(sasl("bob pw", 6, user, pass, &pwlen), -1);
	ck_assert_int_eq(
	    pop3_sasl_plain_decode("!!!!", 4, user, sizeof(user), pass, sizeof(pass), &pwlen), -1);
	ck_assert_int_eq(
	    pop3_sasl_plain_decode("=", 1, user, sizeof(user), pass, sizeof(pass), &pwlen), -1);
	ck_assert_int_eq(
	    pop3_sasl_plain_decode("", 0, user, sizeof(user), pass, sizeof(pass), &pwlen), -1);
}
END_TEST

static Suite *pop3_suite(void)
{
	Suite *s = suite_create("pop3_parse");
	TCase *tc = tcase_create("parse");

	tcase_add_test(tc, every_verb_is_recognised_case_insensitively);
	tcase_add_test(tc, unknown_and_empty_lines_are_errors);
	tcase_add_test(tc, commands_without_arguments_refuse_extra_ones);
	tcase_add_test(tc, message_numbers_are_positive_decimal_32bit);
	tcase_add_test(tc, list_and_uidl_take_an_optional_number);
	tcase_add_test(tc, top_needs_message_and_line_count);
	tcase_add_test(tc, user_and_pass_arguments);
	tcase_add_test(tc, auth_mechanism_and_initial_response);
	tcase_add_test(tc, line_limits_and_control_characters);
	suite_add_tcase(s, tc);
	tc = tcase_create("format");
	tcase_add_test(tc, dot_stuffing_doubles_leading_dots_across_chunks);
	tcase_add_test(tc, top_cuts_after_header_and_n_body_lines);
	tcase_add_test(tc, sasl_plain_decodes_and_refuses_proxy_logins);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(pop3_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
