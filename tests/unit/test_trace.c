/*
 * test_trace.c - the trace bus: publish/subscribe across threads, the
 * history ring, redaction of every credential form, JSON escaping.
 */
#include <config.h>

#include <check.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "trace/trace.h"

/* ---- publish / subscribe ---- */

#define PUBLISHERS 4
#define EVENTS_PER_PUBLISHER 2000

struct collector {
	pthread_mutex_t lock;
	size_t count;
	uint64_t last_seq[PUBLISHERS];
	int out_of_order;
	uint64_t session_filter; /* count only events of sessions >= this */
};

static void collect(void *arg, const struct trace_event *ev)
{
	struct collector *c = arg;

	if (ev->session_id < c->session_filter)
		return;
	pthread_mutex_lock(&c->lock);
	size_t pub = (size_t)(ev->session_id - c->session_filter);
	uint64_t seq = strtoull(ev->text, NULL, 10);
	if (pub < PUBLISHERS) {
		if (seq != c->last_seq[pub] + 1)
			c->out_of_order = 1;
		c->last_seq[pub] = seq;
	}
	c->count++;
	pthread_mutex_unlock(&c->lock);
}

struct publisher_arg {
	uint64_t session;
};

static void *publisher(void *arg)
{
	struct publisher_arg *p = arg;
	char text[32];

	for (int i = 1; i <= EVENTS_PER_PUBLISHER; i++) {
		snprintf(text, sizeof(text), "%d", i);
		trace_publish(p->session, "smtp", "", TRACE_INFO, 0, text);
	}
	return NULL;
}

START_TEST(test_publish_reaches_every_subscriber_in_order_across_threads)
{
	struct collector a, b;
	pthread_t threads[PUBLISHERS];
	struct publisher_arg args[PUBLISHERS];
	const uint64_t base = 1000000;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	pthread_mutex_init(&a.lock, NULL);
	pthread_mutex_init(&b.lock, NULL);
	a.session_filter = b.session_filter = base;

	int ha = trace_subscribe(collect, &a);
	int hb = trace_subscribe(collect, &b);
	ck_assert_int_ge(ha, 0);
	ck_assert_int_ge(hb, 0);
	ck_assert_int_ne(ha, hb);

	for (int i = 0; i < PUBLISHERS; i++) {
		args[i].session = base + (uint64_t)i;
		ck_assert_int_eq(pthread_create(&threads[i], NULL, publisher, &args[i]), 0);
	}
	for (int i = 0; i < PUBLISHERS; i++)
		pthread_join(threads[i], NULL);

	ck_assert_uint_eq(a.count, PUBLISHERS * EVENTS_PER_PUBLISHER);
	ck_assert_uint_eq(b.count, PUBLISHERS * EVENTS_PER_PUBLISHER);
	ck_assert_int_eq(a.out_of_order, 0);
	ck_assert_int_eq(b.out_of_order, 0);

	trace_unsubscribe(ha);
	trace_publish(base, "smtp", "", TRACE_INFO, 0, "9999999");
	ck_assert_uint_eq(a.count, PUBLISHERS * EVENTS_PER_PUBLISHER);
	ck_assert_uint_eq(b.count, PUBLISHERS * EVENTS_PER_PUBLISHER + 1);
	trace_unsubscribe(hb);
}
END_TEST

START_TEST(test_subscriber_table_is_bounded)
{
	struct collector c;
	int handles[TRACE_MAX_SUBSCRIBERS + 1];
	int n = 0;

	memset(&c, 0, sizeof(c));
	pthread_mutex_init(&c.lock, NULL);
	for (; n < TRACE_MAX_SUBSCRIBERS + 1; n++) {
		handles[n] = trace_subscribe(collect, &c);
		if (handles[n] < 0)
			break;
	}
	ck_assert_int_eq(n, TRACE_MAX_SUBSCRIBERS);
	ck_assert_int_eq(trace_subscribe(NULL, NULL), -1);
	for (int i = 0; i < n; i++)
		trace_unsubscribe(handles[i]);
	/* All slots are free again. */
	int h = trace_subscribe(collect, &c);
	ck_assert_int_ge(h, 0);
	trace_unsubscribe(h);
}
END_TEST

struct history_check {
	size_t count;
	long first, last;
	int ordered;
};

static void check_history(void *arg, const struct trace_event *ev)
{
	struct history_check *h = arg;
	long v = strtol(ev->text, NULL, 10);

	if (h->count == 0)
		h->first = v;
	else if (v != h->last + 1)
		h->ordered = 0;
	h->last = v;
	h->count++;
}

START_TEST(test_history_keeps_the_last_events_oldest_first)
{
	char text[32];
	struct trace_event *events = calloc(TRACE_HISTORY + 10, sizeof(*events));
	struct history_check h = { 0, 0, 0, 1 };

	ck_assert_ptr_nonnull(events);
	for (int i = 1; i <= TRACE_HISTORY + 500; i++) {
		snprintf(text, sizeof(text), "%d", i);
		trace_publish(7, "pop3", "bob@example.org", TRACE_COMMAND, 0, text);
	}
	size_t n = trace_history(events, TRACE_HISTORY + 10);
	ck_assert_uint_eq(n, TRACE_HISTORY);
	ck_assert_str_eq(events[0].text, "501");
	ck_assert_str_eq(events[n - 1].text, "1500");
	ck_assert_str_eq(events[0].protocol, "pop3");
	ck_assert_str_eq(events[0].user, "bob@example.org");
	ck_assert_int_eq(events[0].kind, TRACE_COMMAND);

	/* Asking for fewer gives the most recent ones. */
	n = trace_history(events, 3);
	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(events[0].text, "1498");
	ck_assert_str_eq(events[2].text, "1500");

	/* A late subscriber first receives the ring, then live events. */
	int handle = trace_subscribe_history(check_history, &h);
	ck_assert_int_ge(handle, 0);
	ck_assert_uint_eq(h.count, TRACE_HISTORY);
	ck_assert_int_eq(h.first, 501);
	ck_assert_int_eq(h.last, 1500);
	trace_publish(7, "pop3", "", TRACE_COMMAND, 0, "1501");
	trace_unsubscribe(handle);
	ck_assert_uint_eq(h.count, TRACE_HISTORY + 1);
	ck_assert_int_eq(h.ordered, 1);
	free(events);
}
END_TEST

START_TEST(test_long_text_is_truncated_with_marker)
{
	char big[3000];
	struct trace_event ev;

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	trace_publish(8, "an-overly-long-protocol-name", "", TRACE_INFO, 0, big);
	ck_assert_uint_eq(trace_history(&ev, 1), 1);
	ck_assert_uint_eq(strlen(ev.text), sizeof(ev.text) - 1);
	ck_assert_str_eq(ev.text + strlen(ev.text) - 3, "...");
	ck_assert_uint_lt(strlen(ev.protocol), sizeof(ev.protocol));

	/* A cut never splits a multi-byte character. */
	char utf[2000] = "";
	while (strlen(utf) + 2 < sizeof(utf) - 1)
		strcat(utf, "\xc3\xa9"); /* é */
	trace_publish(8, "smtp", "", TRACE_INFO, 0, utf);
	ck_assert_uint_eq(trace_history(&ev, 1), 1);
	size_t len = strlen(ev.text);
	ck_assert_str_eq(ev.text + len - 3, "...");
	ck_assert_uint_eq((len - 3) % 2, 0);
}
END_TEST

/* ---- redaction ---- */

static const char *redact(const char *line, int in_sasl)
{
	static char out[1024];
	trace_redact_command(line, in_sasl, out, sizeof(out));
	return out;
}

START_TEST(test_redact_smtp_and_pop3_auth_initial_response)
{
	ck_assert_str_eq(redact("AUTH PLAIN AGFsaWNlAHNlY3JldA==", 0), "AUTH PLAIN ***");
	ck_assert_str_eq(redact("auth plain AGFsaWNlAHNlY3JldA==", 0), "auth plain ***");
	ck_assert_str_eq(redact("AUTH LOGIN YWxpY2U=", 0), "AUTH LOGIN ***");
	ck_assert_str_eq(redact("AUTH LOGIN", 0), "AUTH LOGIN");
	ck_assert_str_eq(redact("AUTH", 0), "AUTH");
	ck_assert_str_eq(redact("AUTH PLAIN =", 0), "AUTH PLAIN ***");
}
END_TEST

START_TEST(test_redact_pop3_pass_and_apop)
{
	ck_assert_str_eq(redact("PASS hunter2", 0), "PASS ***");
	ck_assert_str_eq(redact("pass with spaces in it", 0), "pass ***");
	ck_assert_str_eq(redact("PASS", 0), "PASS");
	ck_assert_str_eq(redact("USER alice@example.org", 0), "USER alice@example.org");
	ck_assert_str_eq(redact("APOP alice c4c9334bac560ecc979e58001b3e22fb", 0), "APOP alice ***");
}
END_TEST

START_TEST(test_redact_imap_login_keeps_user)
{
	ck_assert_str_eq(redact("a1 LOGIN alice s3cret", 0), "a1 LOGIN alice ***");
	ck_assert_str_eq(redact("a1 login \"alice@example.org\" \"pa ss\"", 0),
			 "a1 login \"alice@example.org\" ***");
	ck_assert_str_eq(redact("a1 LOGIN \"al\\\"ice\" pw", 0), "a1 LOGIN \"al\\\"ice\" ***");
	/* A literal user name: nothing after LOGIN survives. */
	ck_assert_str_eq(redact("a1 LOGIN {5}", 0), "a1 LOGIN ***");
	/* An unterminated quoted user: nothing after LOGIN survives. */
	ck_assert_str_eq(redact("a1 LOGIN \"alice secret", 0), "a1 LOGIN ***");
	ck_assert_str_eq(redact("a1 LOGIN", 0), "a1 LOGIN");
}
END_TEST

START_TEST(test_redact_imap_authenticate_and_sasl_lines)
{
	ck_assert_str_eq(redact("a2 AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==", 0),
			 "a2 AUTHENTICATE PLAIN ***");
	ck_assert_str_eq(redact("a2 AUTHENTICATE PLAIN", 0), "a2 AUTHENTICATE PLAIN");
	ck_assert_str_eq(redact("AGFsaWNlAHNlY3JldA==", 1), "***");
	ck_assert_str_eq(redact("c2VjcmV0", 1), "***");
	ck_assert_str_eq(redact("*", 1), "*");
	ck_assert_str_eq(redact("", 1), "***");
}
END_TEST

START_TEST(test_redact_leaves_other_commands_alone)
{
	ck_assert_str_eq(redact("EHLO client.example.org", 0), "EHLO client.example.org");
	ck_assert_str_eq(redact("MAIL FROM:<a@b>", 0), "MAIL FROM:<a@b>");
	ck_assert_str_eq(redact("a3 SELECT INBOX", 0), "a3 SELECT INBOX");
	ck_assert_str_eq(redact("", 0), "");
}
END_TEST

START_TEST(test_redact_respects_output_bound)
{
	char small[8];

	trace_redact_command("AUTH PLAIN AGFsaWNlAHNlY3JldA==", 0, small, sizeof(small));
	ck_assert_str_eq(small, "AUTH PL");
	ck_assert_ptr_null(strstr(small, "AGF"));
	trace_redact_command("PASS hunter2", 0, small, 1);
	ck_assert_str_eq(small, "");
}
END_TEST

/* ---- JSON ---- */

static json_t *parse_event_json(const struct trace_event *ev)
{
	char buf[TRACE_JSON_MAX];
	json_error_t jerr;
	size_t len = trace_event_json(ev, buf, sizeof(buf));

	ck_assert_uint_gt(len, 0);
	ck_assert_uint_eq(len, strlen(buf));
	ck_assert_ptr_null(strchr(buf, '\n'));
	json_t *j = json_loadb(buf, len, 0, &jerr);
	ck_assert_msg(j != NULL, "invalid JSON: %s (%s)", jerr.text, buf);
	return j;
}

START_TEST(test_json_escapes_quotes_and_control_characters)
{
	struct trace_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.session_id = 42;
	ev.time_usec = 1764000001123456LL;
	ev.kind = TRACE_REPLY;
	ev.elapsed_usec = 1500;
	strcpy(ev.protocol, "smtp");
	strcpy(ev.user, "al\"ice@example.org");
	strcpy(ev.text, "250 ok \"quoted\" back\\slash\r\n\ttab \x01\x1f\x7f caf\xc3\xa9");

	json_t *j = parse_event_json(&ev);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "session")), 42);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "time_usec")), 1764000001123456LL);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "elapsed_usec")), 1500);
	ck_assert_str_eq(json_string_value(json_object_get(j, "kind")), "reply");
	ck_assert_str_eq(json_string_value(json_object_get(j, "protocol")), "smtp");
	ck_assert_str_eq(json_string_value(json_object_get(j, "user")), "al\"ice@example.org");
	ck_assert_str_eq(json_string_value(json_object_get(j, "text")), ev.text);
	ck_assert_str_eq(json_string_value(json_object_get(j, "time")),
			 "2025-11-24T16:00:01.123456Z");
	json_decref(j);
}
END_TEST

START_TEST(test_json_replaces_invalid_utf8)
{
	struct trace_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.kind = TRACE_COMMAND;
	strcpy(ev.text, "bad \xff\xfe and overlong \xc0\xaf and cut \xe2\x82");
	json_t *j = parse_event_json(&ev);
	ck_assert_str_eq(json_string_value(json_object_get(j, "text")),
			 "bad \xef\xbf\xbd\xef\xbf\xbd and overlong \xef\xbf\xbd\xef\xbf\xbd and cut "
			 "\xef\xbf\xbd\xef\xbf\xbd");
	json_decref(j);
}
END_TEST

START_TEST(test_json_worst_case_fits_and_small_buffer_fails_cleanly)
{
	struct trace_event ev;
	char small[64];

	memset(&ev, 0, sizeof(ev));
	ev.kind = TRACE_INFO;
	memset(ev.text, 0x01, sizeof(ev.text) - 1);
	memset(ev.user, 0x02, sizeof(ev.user) - 1);
	memset(ev.protocol, '"', sizeof(ev.protocol) - 1);
	json_t *j = parse_event_json(&ev);
	ck_assert_uint_eq(strlen(json_string_value(json_object_get(j, "text"))),
			  sizeof(ev.text) - 1);
	json_decref(j);

	ck_assert_uint_eq(trace_event_json(&ev, small, sizeof(small)), 0);
	ck_assert_str_eq(small, "");
}
END_TEST

START_TEST(test_kind_names)
{
	ck_assert_str_eq(trace_kind_name(TRACE_CONNECT), "connect");
	ck_assert_str_eq(trace_kind_name(TRACE_TLS), "tls");
	ck_assert_str_eq(trace_kind_name(TRACE_COMMAND), "command");
	ck_assert_str_eq(trace_kind_name(TRACE_REPLY), "reply");
	ck_assert_str_eq(trace_kind_name(TRACE_AUTH), "auth");
	ck_assert_str_eq(trace_kind_name(TRACE_INFO), "info");
	ck_assert_str_eq(trace_kind_name(TRACE_DISCONNECT), "disconnect");
}
END_TEST

static Suite *trace_suite(void)
{
	Suite *s = suite_create("trace");
	TCase *tc = tcase_create("bus");

	tcase_add_test(tc, test_publish_reaches_every_subscriber_in_order_across_threads);
	tcase_add_test(tc, test_subscriber_table_is_bounded);
	tcase_add_test(tc, test_history_keeps_the_last_events_oldest_first);
	tcase_add_test(tc, test_long_text_is_truncated_with_marker);
	suite_add_tcase(s, tc);

	tc = tcase_create("redact");
	tcase_add_test(tc, test_redact_smtp_and_pop3_auth_initial_response);
	tcase_add_test(tc, test_redact_pop3_pass_and_apop);
	tcase_add_test(tc, test_redact_imap_login_keeps_user);
	tcase_add_test(tc, test_redact_imap_authenticate_and_sasl_lines);
	tcase_add_test(tc, test_redact_leaves_other_commands_alone);
	tcase_add_test(tc, test_redact_respects_output_bound);
	suite_add_tcase(s, tc);

	tc = tcase_create("json");
	tcase_add_test(tc, test_json_escapes_quotes_and_control_characters);
	tcase_add_test(tc, test_json_replaces_invalid_utf8);
	tcase_add_test(tc, test_json_worst_case_fits_and_small_buffer_fails_cleanly);
	tcase_add_test(tc, test_kind_names);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(trace_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
