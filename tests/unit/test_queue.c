/*
 * test_queue.c - the pure parts of outbound delivery: MX preference order
 * and null MX, the retry schedule, TLS-required lists, relayhost syntax and
 * the DSN report format (RFC 3464).
 */
#include <config.h>

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "queue/queue.h"

static void set_mx(struct queue_mx *mx, const char *host, unsigned pref)
{
	strcpy(mx->host, host);
	mx->preference = pref;
}

START_TEST(test_mx_sorted_by_preference_stable)
{
	struct queue_mx mx[4];

	set_mx(&mx[0], "c.example", 20);
	set_mx(&mx[1], "a.example", 10);
	set_mx(&mx[2], "d.example", 20);
	set_mx(&mx[3], "b.example", 5);
	queue_mx_sort(mx, 4);
	ck_assert_str_eq(mx[0].host, "b.example");
	ck_assert_str_eq(mx[1].host, "a.example");
	ck_assert_str_eq(mx[2].host, "c.example");
	ck_assert_str_eq(mx[3].host, "d.example");
}
END_TEST

START_TEST(test_null_mx_only_alone_with_preference_zero)
{
	struct queue_mx mx[2];

	set_mx(&mx[0], "", 0);
	ck_assert(queue_mx_is_null(mx, 1));
	set_mx(&mx[1], "mx.example", 10);
	ck_assert(!queue_mx_is_null(mx, 2));
	set_mx(&mx[0], "", 5);
	ck_assert(!queue_mx_is_null(mx, 1));
	ck_assert(!queue_mx_is_null(mx, 0));
}
END_TEST

START_TEST(test_retry_delay_doubles_up_to_max)
{
	ck_assert_int_eq(queue_retry_delay(1, 300, 14400), 300);
	ck_assert_int_eq(queue_retry_delay(2, 300, 14400), 600);
	ck_assert_int_eq(queue_retry_delay(3, 300, 14400), 1200);
	ck_assert_int_eq(queue_retry_delay(6, 300, 14400), 9600);
	ck_assert_int_eq(queue_retry_delay(7, 300, 14400), 14400);
	ck_assert_int_eq(queue_retry_delay(1000, 300, 14400), 14400);
	ck_assert_int_eq(queue_retry_delay(1, 0, 0), 1);
	ck_assert_int_eq(queue_retry_delay(3, 60, 10), 60); /* max below min: min wins */
}
END_TEST

START_TEST(test_domain_list_matches_whole_names)
{
	const char *list = "secure.example, Bank.Example  other.test";

	ck_assert(queue_domain_in_list(list, "secure.example"));
	ck_assert(queue_domain_in_list(list, "bank.example"));
	ck_assert(queue_domain_in_list(list, "OTHER.TEST"));
	ck_assert(!queue_domain_in_list(list, "example"));
	ck_assert(!queue_domain_in_list(list, "ecure.example"));
	ck_assert(!queue_domain_in_list(list, ""));
	ck_assert(!queue_domain_in_list("", "secure.example"));
	ck_assert(queue_domain_in_list("FAILURE,DELAY", "DELAY"));
}
END_TEST

START_TEST(test_hostport_forms)
{
	char host[64];
	uint16_t port;

	ck_assert_int_eq(queue_parse_hostport("relay.example", 25, host, sizeof(host), &port), 0);
	ck_assert_str_eq(host, "relay.example");
	ck_assert_uint_eq(port, 25);
	ck_assert_int_eq(queue_parse_hostport("relay.example:587", 25, host, sizeof(host), &port),
			 0);
	ck_assert_str_eq(host, "relay.example");
	ck_assert_uint_eq(port, 587);
	ck_assert_int_eq(queue_parse_hostport("[::1]:2525", 25, host, sizeof(host), &port), 0);
	ck_assert_str_eq(host, "::1");
	ck_assert_uint_eq(port, 2525);
	ck_assert_int_eq(queue_parse_hostport("::1", 25, host, sizeof(host), &port), -1);
	ck_assert_int_eq(queue_parse_hostport("relay:0", 25, host, sizeof(host), &port), -1);
	ck_assert_int_eq(queue_parse_hostport("relay:70000", 25, host, sizeof(host), &port), -1);
	ck_assert_int_eq(queue_parse_hostport("relay:x", 25, host, sizeof(host), &port), -1);
	ck_assert_int_eq(queue_parse_hostport("", 25, host, sizeof(host), &port), -1);
	ck_assert_int_eq(queue_parse_hostport("[::1", 25, host, sizeof(host), &port), -1);
}
END_TEST

static const char orig[] = "Received: from x by y\n"
			   "From: Alice <alice@a.test>\n"
			   "Subject: hello\n"
			   "\n"
			   "secret body line\n";

static struct queue_dsn sample_dsn(void)
{
	struct queue_dsn d = {
	    .reporting_mta = "mx.a.test",
	    .sender = "alice@a.test",
	    .recipient = "nobody@b.test",
	    .orcpt = "rfc822;nobody@b.test",
	    .envid = "QQ314159",
	    .action = "failed",
	    .status = "5.1.1",
	    .remote_mta = "mx.b.test",
	    .diagnostic = "550 5.1.1 <nobody@b.test>: no such user\r\nInjected: header",
	    .full = false,
	    .arrival = 1700000000,
	    .now = 1700000100,
	    .boundary = "=_b1",
	    .message_id = "dsn.1@mx.a.test",
	};
	return d;
}

START_TEST(test_dsn_failed_report_fields)
{
	struct queue_dsn d = sample_dsn();
	char *out = NULL;
	size_t len = 0;

	ck_assert_int_eq(
	    queue_dsn_format(&d, (const unsigned char *)orig, strlen(orig), &out, &len), 0);
	ck_assert_uint_eq(strlen(out), len);
	ck_assert_ptr_nonnull(strstr(out, "To: <alice@a.test>\r\n"));
	ck_assert_ptr_nonnull(strstr(out, "Content-Type: multipart/report; "
					  "report-type=delivery-status;\r\n\tboundary=\"=_b1\""));
	ck_assert_ptr_nonnull(strstr(out, "Auto-Submitted: auto-replied\r\n"));
	ck_assert_ptr_nonnull(strstr(out, "--=_b1\r\nContent-Type: message/delivery-status\r\n"));
	ck_assert_ptr_nonnull(strstr(out, "Reporting-MTA: dns; mx.a.test\r\n"));
	ck_assert_ptr_nonnull(strstr(out, "Original-Envelope-Id: QQ314159\r\n"));
	ck_assert_ptr_nonnull(strstr(out, "Arrival-Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"));
	ck_assert_ptr_nonnull(strstr(out, "Original-Recipient: rfc822;nobody@b.test\r\n"));
	ck_assert_ptr_nonnull(strstr(out, "Final-Recipient: rfc822; nobody@b.test\r\n"));
	ck_assert_ptr_nonnull(strstr(out, "Action: failed\r\nStatus: 5.1.1\r\n"));
	ck_assert_ptr_nonnull(strstr(out, "Remote-MTA: dns; mx.b.test\r\n"));
	/* remote text cannot start a header line of its own */
	ck_assert_ptr_null(strstr(out, "\r\nInjected: header"));
	ck_assert_ptr_nonnull(strstr(out, "Diagnostic-Code: smtp; 550 5.1.1 <nobody@b.test>: "
					  "no such user  Injected: header\r\n"));
	/* RET=HDRS (the default): headers, CRLF, but not the body */
	ck_assert_ptr_nonnull(strstr(out, "Content-Type: text/rfc822-headers\r\n\r\n"
					  "Received: from x by y\r\nFrom: Alice <alice@a.test>\r\n"
					  "Subject: hello\r\n"));
	ck_assert_ptr_null(strstr(out, "secret body line"));
	ck_assert_ptr_nonnull(strstr(out, "\r\n--=_b1--\r\n"));
	free(out);
}
END_TEST

START_TEST(test_dsn_ret_full_includes_body)
{
	struct queue_dsn d = sample_dsn();
	char *out = NULL;
	size_t len = 0;

	d.full = true;
	d.envid = "";
	d.orcpt = "";
	ck_assert_int_eq(
	    queue_dsn_format(&d, (const unsigned char *)orig, strlen(orig), &out, &len), 0);
	ck_assert_ptr_nonnull(strstr(out, "Content-Type: message/rfc822\r\n"));
	ck_assert_ptr_nonnull(strstr(out, "\r\nsecret body line\r\n"));
	ck_assert_ptr_null(strstr(out, "Original-Envelope-Id"));
	ck_assert_ptr_null(strstr(out, "Original-Recipient"));
	free(out);
}
END_TEST

START_TEST(test_8bit_detection)
{
	ck_assert(!queue_has_8bit("plain ascii\r\n", 13));
	ck_assert(queue_has_8bit("gr\xc3\xbc\xc3\x9f", 6));
	ck_assert_str_eq(queue_address_domain("a@b@c.test"), "c.test");
	ck_assert_str_eq(queue_address_domain("nodomain"), "");
}
END_TEST

START_TEST(test_for_clause_removed_only_from_our_received)
{
	char msg[] = "Received: from c ([127.0.0.1])\r\n\tby h (Postern) with ESMTPA id 1\r\n"
		     "\tfor <bob@b.test>; Tue, 24 Nov 2026 15:00:00 +0000\r\n"
		     "Subject: for <bob@b.test>; not this\r\n\r\nbody\r\n";
	const char want[] = "Received: from c ([127.0.0.1])\r\n\tby h (Postern) with ESMTPA id 1; "
			    "Tue, 24 Nov 2026 15:00:00 +0000\r\n"
			    "Subject: for <bob@b.test>; not this\r\n\r\nbody\r\n";
	size_t len = queue_strip_for_clause((unsigned char *)msg, strlen(msg), "bob@b.test");

	ck_assert_uint_eq(len, strlen(want));
	ck_assert(memcmp(msg, want, len) == 0);
	/* another recipient's clause, or no Received on top: unchanged */
	len = strlen(want);
	ck_assert_uint_eq(queue_strip_for_clause((unsigned char *)msg, len, "eve@b.test"), len);
	{
		char other[] = "Subject: x\r\n\tfor <bob@b.test>; y\r\n\r\n";

		ck_assert_uint_eq(
		    queue_strip_for_clause((unsigned char *)other, strlen(other), "bob@b.test"),
		    strlen(other));
	}
}
END_TEST

START_TEST(test_downgrade_reencodes_8bit_parts)
{
	const char *msg = "From: a@a.test\r\nSubject: hi\r\nMIME-Version: 1.0\r\n"
			  "Content-Type: multipart/mixed; boundary=\"b\"\r\n"
			  "Content-Transfer-Encoding: 8bit\r\n\r\n"
			  "--b\r\nContent-Type: text/plain; charset=utf-8\r\n"
			  "Content-Transfer-Encoding: 8bit\r\n\r\nGr\xc3\xbc\xc3\x9f"
			  "e\r\n"
			  "--b\r\nContent-Type: application/octet-stream\r\n\r\n\xff\xfe\r\n"
			  "--b\r\nContent-Type: text/plain\r\n\r\nascii stays\r\n"
			  "--b--\r\n";
	unsigned char *out = NULL;
	size_t out_len = 0;
	char *text;

	ck_assert_int_eq(
	    queue_downgrade_7bit((const unsigned char *)msg, strlen(msg), &out, &out_len), 0);
	ck_assert(!queue_has_8bit(out, out_len));
	text = strndup((const char *)out, out_len);
	ck_assert_ptr_nonnull(strstr(text, "Subject: hi\r\n"));
	ck_assert_ptr_nonnull(strstr(text, "Content-Transfer-Encoding: quoted-printable\r\n"));
	ck_assert_ptr_nonnull(strstr(text, "Gr=C3=BC=C3=9Fe"));
	ck_assert_ptr_nonnull(strstr(text, "Content-Transfer-Encoding: base64\r\n"));
	ck_assert_ptr_nonnull(strstr(text, "ascii stays\r\n"));
	ck_assert_ptr_null(strstr(text, "8bit"));
	ck_assert_ptr_null(strstr(text, "\r\r"));
	free(text);
	free(out);
}
END_TEST

START_TEST(test_downgrade_refuses_binary_and_8bit_headers)
{
	static const char binary[] = "Subject: b\r\nMIME-Version: 1.0\r\n"
				     "Content-Type: application/octet-stream\r\n"
				     "Content-Transfer-Encoding: binary\r\n\r\n\x01\xff\x00\r\n";
	const char *header = "Subject: Gr\xc3\xbc\xc3\x9f\r\n\r\nbody\r\n";
	unsigned char *out = NULL;
	size_t out_len = 0;

	ck_assert_int_eq(
	    queue_downgrade_7bit((const unsigned char *)binary, sizeof(binary) - 1, &out, &out_len),
	    -1);
	ck_assert_int_eq(
	    queue_downgrade_7bit((const unsigned char *)header, strlen(header), &out, &out_len),
	    -1);
	ck_assert_ptr_null(out);
}
END_TEST

static Suite *queue_suite(void)
{
	Suite *s = suite_create("queue");
	TCase *tc = tcase_create("policy");

	tcase_add_test(tc, test_mx_sorted_by_preference_stable);
	tcase_add_test(tc, test_null_mx_only_alone_with_preference_zero);
	tcase_add_test(tc, test_retry_delay_doubles_up_to_max);
	tcase_add_test(tc, test_domain_list_matches_whole_names);
	tcase_add_test(tc, test_hostport_forms);
	tcase_add_test(tc, test_8bit_detection);
	tcase_add_test(tc, test_for_clause_removed_only_from_our_received);
	tcase_add_test(tc, test_downgrade_reencodes_8bit_parts);
	tcase_add_test(tc, test_downgrade_refuses_binary_and_8bit_headers);
	suite_add_tcase(s, tc);
	tc = tcase_create("dsn");
	tcase_add_test(tc, test_dsn_failed_report_fields);
	tcase_add_test(tc, test_dsn_ret_full_includes_body);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(queue_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
