/*
 * test_trace.c - the trace bus: publish/subscribe across threads, the
 * history ring, redaction of every credential form, JSON escaping; and the
 * admin socket that serves it (status, trace with filters, handlers,
 * socket safety, slow readers).
 */
#include <config.h>

#include <check.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "trace/admin.h"
#include "trace/trace.h"
#include "util/config.h"

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
	struct history_check h = {0, 0, 0, 1};

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
	ck_assert_str_eq(redact("APOP alice c4c9334bac560ecc979e58001b3e22fb", 0),
			 "APOP alice ***");
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
	ck_assert_str_eq(
	    json_string_value(json_object_get(j, "text")),
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

/* ---- admin socket ---- */

static struct config admin_cfg;
static char admin_dir[] = "/tmp/postern-admin-test-XXXXXX";
static char admin_path[256];
static int reloads;
static char forgotten[128];

static void on_reload(void *arg)
{
	ck_assert_ptr_eq(arg, &reloads);
	reloads++;
}

static void on_forget(const char *address, void *arg)
{
	snprintf(forgotten, sizeof(forgotten), "%s", address);
}

static void admin_setup(void)
{
	struct admin_handlers h = {on_reload, on_forget, &reloads};
	char err[512] = "";

	memset(&admin_cfg, 0, sizeof(admin_cfg));
	strcpy(admin_dir, "/tmp/postern-admin-test-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(admin_dir));
	snprintf(admin_cfg.server.data_dir, sizeof(admin_cfg.server.data_dir), "%s", admin_dir);
	snprintf(admin_path, sizeof(admin_path), "%s/admin.sock", admin_dir);
	reloads = 0;
	forgotten[0] = '\0';
	ck_assert_msg(admin_start(&admin_cfg, &h, err, sizeof(err)) == 0, "%s", err);
}

static void admin_teardown(void)
{
	admin_stop();
	rmdir(admin_dir);
}

struct lines {
	json_t *items;	/* array of parsed lines */
	int stop_after; /* stop after this many lines (0: never) */
};

static int collect_line(void *arg, const char *line)
{
	struct lines *l = arg;
	json_t *j = json_loads(line, 0, NULL);

	ck_assert_msg(j != NULL, "not JSON: %s", line);
	json_array_append_new(l->items, j);
	return l->stop_after > 0 && (int)json_array_size(l->items) >= l->stop_after;
}

/* Sends REQUEST and returns the single reply object (caller decrefs). */
static json_t *admin_call(const char *request)
{
	struct lines l = {json_array(), 0};
	char err[512] = "";

	ck_assert_msg(admin_request(admin_path, request, collect_line, &l, err, sizeof(err)) == 0,
		      "%s", err);
	ck_assert_uint_eq(json_array_size(l.items), 1);
	json_t *reply = json_incref(json_array_get(l.items, 0));
	json_decref(l.items);
	return reply;
}

static int reply_ok(json_t *reply)
{
	return json_is_true(json_object_get(reply, "ok"));
}

START_TEST(test_admin_socket_is_private_and_reports_status)
{
	struct stat st;

	ck_assert_int_eq(lstat(admin_path, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	ck_assert_int_eq(st.st_mode & 0777, 0600);

	json_t *r = admin_call("{\"cmd\":\"status\"}");
	ck_assert(reply_ok(r));
	ck_assert_int_eq(json_integer_value(json_object_get(r, "pid")), getpid());
	ck_assert(json_is_integer(json_object_get(r, "uptime")));
	ck_assert_int_ge(json_integer_value(json_object_get(r, "uptime")), 0);
	ck_assert(json_is_string(json_object_get(r, "version")));
	ck_assert(json_is_object(json_object_get(r, "connections")));
	json_decref(r);
}
END_TEST

START_TEST(test_admin_handlers_and_errors)
{
	json_t *r;

	r = admin_call("{\"cmd\":\"reload\"}");
	ck_assert(reply_ok(r));
	ck_assert_int_eq(reloads, 1);
	json_decref(r);

	r = admin_call("{\"cmd\":\"forget\",\"address\":\"alice@example.org\"}");
	ck_assert(reply_ok(r));
	ck_assert_str_eq(forgotten, "alice@example.org");
	json_decref(r);

	const char *bad[] = {
	    "{\"cmd\":\"forget\"}",
	    "{\"cmd\":\"forget\",\"address\":7}",
	    "{\"cmd\":\"explode\"}",
	    "{\"nocmd\":1}",
	    "not json at all",
	    "[1,2,3]",
	    "{\"cmd\":\"trace\",\"follow\":\"yes\"}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		r = admin_call(bad[i]);
		ck_assert_msg(json_is_false(json_object_get(r, "ok")), "accepted: %s", bad[i]);
		ck_assert(json_is_string(json_object_get(r, "error")));
		json_decref(r);
	}
	ck_assert_int_eq(reloads, 1);
}
END_TEST

START_TEST(test_admin_request_line_is_bounded)
{
	char *big = malloc(20000);
	memset(big, 'x', 19999);
	big[19999] = '\0';
	json_t *r = admin_call(big);
	ck_assert(json_is_false(json_object_get(r, "ok")));
	json_decref(r);
	free(big);
}
END_TEST

START_TEST(test_admin_trace_history_without_follow)
{
	struct lines l = {json_array(), 0};
	char err[512] = "";
	int seen = 0;

	trace_publish(4242, "imap", "carol@example.org", TRACE_COMMAND, 0, "a1 SELECT INBOX");
	trace_publish(4243, "smtp", "", TRACE_COMMAND, 0, "EHLO filtered.example");
	ck_assert_int_eq(admin_request(admin_path, "{\"cmd\":\"trace\",\"protocol\":\"imap\"}",
				       collect_line, &l, err, sizeof(err)),
			 0);
	for (size_t i = 0; i < json_array_size(l.items); i++) {
		json_t *ev = json_array_get(l.items, i);
		ck_assert_str_eq(json_string_value(json_object_get(ev, "protocol")), "imap");
		if (strcmp(json_string_value(json_object_get(ev, "text")), "a1 SELECT INBOX") == 0)
			seen++;
	}
	ck_assert_int_eq(seen, 1);
	json_decref(l.items);
}
END_TEST

struct follow_state {
	int history_seen;
	int live_seen;
	int foreign_seen;
	int user_events;
};

static int follow_line(void *arg, const char *line)
{
	struct follow_state *f = arg;
	json_t *j = json_loads(line, 0, NULL);
	const char *text;

	ck_assert_ptr_nonnull(j);
	text = json_string_value(json_object_get(j, "text"));
	ck_assert_ptr_nonnull(text);
	if (strcmp(json_string_value(json_object_get(j, "protocol")), "pop3") != 0)
		f->foreign_seen++;
	if (strcmp(text, "history-marker") == 0) {
		f->history_seen++;
		/* Now publish live: one event the filter must drop, one it keeps. */
		trace_publish(77, "smtp", "dave@example.org", TRACE_COMMAND, 0, "NOOP");
		trace_publish(78, "pop3", "dave@example.org", TRACE_COMMAND, 0, "live-marker");
	} else if (strcmp(text, "live-marker") == 0) {
		f->live_seen++;
	}
	json_decref(j);
	return f->live_seen > 0;
}

START_TEST(test_admin_trace_follow_sees_history_then_live_events)
{
	struct follow_state f = {0, 0, 0, 0};
	char err[512] = "";

	trace_publish(76, "pop3", "", TRACE_INFO, 0, "history-marker");
	ck_assert_int_eq(admin_request(admin_path,
				       "{\"cmd\":\"trace\",\"follow\":true,\"history\":true,"
				       "\"protocol\":\"pop3\"}",
				       follow_line, &f, err, sizeof(err)),
			 0);
	ck_assert_int_eq(f.history_seen, 1);
	ck_assert_int_eq(f.live_seen, 1);
	ck_assert_int_eq(f.foreign_seen, 0);
}
END_TEST

struct user_state {
	json_t *texts;
	const char *end; /* the text of the last event to wait for */
};

static int user_line(void *arg, const char *line)
{
	struct user_state *u = arg;
	json_t *j = json_loads(line, 0, NULL);
	const char *text = json_string_value(json_object_get(j, "text"));

	int done;

	ck_assert_ptr_nonnull(text);
	done = strcmp(text, u->end) == 0;
	json_array_append_new(u->texts, json_string(text));
	json_decref(j);
	return done;
}

START_TEST(test_admin_trace_user_filter_follows_the_session)
{
	struct user_state u = {json_array(), "user-done"};
	char err[512] = "";

	/* Session 500 logs in as erin; session 501 is someone else. */
	trace_publish(500, "imap", "", TRACE_CONNECT, 0, "127.0.0.1");
	trace_publish(500, "imap", "Erin@Example.org", TRACE_AUTH, 0, "ok");
	trace_publish(501, "imap", "frank@example.org", TRACE_AUTH, 0, "frank-ok");
	trace_publish(500, "imap", "", TRACE_DISCONNECT, 0, "user-done");
	ck_assert_int_eq(admin_request(admin_path,
				       "{\"cmd\":\"trace\",\"follow\":true,\"history\":true,"
				       "\"user\":\"erin@example.org\"}",
				       user_line, &u, err, sizeof(err)),
			 0);
	ck_assert_uint_eq(json_array_size(u.texts), 2);
	ck_assert_str_eq(json_string_value(json_array_get(u.texts, 0)), "ok");
	ck_assert_str_eq(json_string_value(json_array_get(u.texts, 1)), "user-done");
	json_decref(u.texts);
}
END_TEST

START_TEST(test_admin_trace_user_filter_remembers_the_latest_sessions)
{
	struct user_state u = {json_array(), "latest-done"};
	char err[512] = "";

	/* 100 sessions log in as gina; only the most recent ones are remembered. */
	for (uint64_t id = 2000; id < 2100; id++)
		trace_publish(id, "imap", "gina@example.org", TRACE_AUTH, 0, "ok");
	trace_publish(2000, "imap", "", TRACE_DISCONNECT, 0, "oldest-gone");
	trace_publish(2070, "imap", "", TRACE_DISCONNECT, 0, "recent-gone");
	trace_publish(2099, "imap", "", TRACE_DISCONNECT, 0, "latest-done");
	ck_assert_int_eq(
	    admin_request(admin_path,
			  "{\"cmd\":\"trace\",\"follow\":true,\"user\":\"gina@example.org\"}",
			  user_line, &u, err, sizeof(err)),
	    0);
	ck_assert_uint_eq(json_array_size(u.texts), 102);
	ck_assert_str_eq(json_string_value(json_array_get(u.texts, 100)), "recent-gone");
	ck_assert_str_eq(json_string_value(json_array_get(u.texts, 101)), "latest-done");
	json_decref(u.texts);
}
END_TEST

struct slow_state {
	int published;
	int dropped_notice;
	long long dropped;
};

static int slow_line(void *arg, const char *line)
{
	struct slow_state *s = arg;
	json_t *j = json_loads(line, 0, NULL);
	char text[1000];

	ck_assert_ptr_nonnull(j);
	if (!s->published) {
		/* Flood while not reading: the admin side must drop, not block. */
		memset(text, 'z', sizeof(text) - 1);
		text[sizeof(text) - 1] = '\0';
		for (int i = 0; i < 8000; i++)
			trace_publish(600, "http", "", TRACE_INFO, 0, text);
		s->published = 1;
	}
	if (strcmp(json_string_value(json_object_get(j, "kind")), "dropped") == 0) {
		s->dropped_notice = 1;
		s->dropped = json_integer_value(json_object_get(j, "count"));
	}
	json_decref(j);
	return s->dropped_notice;
}

START_TEST(test_admin_trace_slow_reader_loses_events_and_is_told)
{
	struct slow_state s = {0, 0, 0};
	char err[512] = "";

	trace_publish(600, "http", "", TRACE_INFO, 0, "start");
	ck_assert_int_eq(admin_request(admin_path,
				       "{\"cmd\":\"trace\",\"follow\":true,\"protocol\":\"http\"}",
				       slow_line, &s, err, sizeof(err)),
			 0);
	ck_assert_int_eq(s.dropped_notice, 1);
	ck_assert_int_gt(s.dropped, 0);
}
END_TEST

START_TEST(test_admin_refuses_second_start_and_non_socket_path)
{
	struct config cfg = admin_cfg;
	char err[512] = "";
	char path[300];
	struct admin_handlers h = {NULL, NULL, NULL};

	ck_assert_int_eq(admin_start(&cfg, &h, err, sizeof(err)), -1);
	ck_assert_uint_gt(strlen(err), 0);
	admin_stop();
	/* The socket is gone once stopped. */
	ck_assert_int_ne(access(admin_path, F_OK), 0);

	/* A regular file in the way is never removed. */
	snprintf(path, sizeof(path), "%s/not-a-socket", admin_dir);
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fclose(f);
	snprintf(cfg.server.admin_socket, sizeof(cfg.server.admin_socket), "%s", path);
	ck_assert_int_eq(admin_start(&cfg, &h, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "not a socket"));
	ck_assert_int_eq(access(path, F_OK), 0);
	unlink(path);

	/* Without handlers, reload is refused with a reason. */
	ck_assert_msg(admin_start(&admin_cfg, &h, err, sizeof(err)) == 0, "%s", err);
	json_t *r = admin_call("{\"cmd\":\"reload\"}");
	ck_assert(json_is_false(json_object_get(r, "ok")));
	json_decref(r);
}
END_TEST

START_TEST(test_admin_replaces_stale_socket_but_not_a_live_one)
{
	struct config cfg = admin_cfg;
	struct admin_handlers h = {NULL, NULL, NULL};
	struct sockaddr_un sun;
	char err[512] = "";
	char path[100];
	int fd;

	/* A live socket (this test's own daemon) is refused. */
	admin_stop();
	ck_assert_int_eq(admin_start(&admin_cfg, &h, err, sizeof(err)), 0);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(path, sizeof(path), "%s/live.sock", admin_dir);
	memcpy(sun.sun_path, path, strlen(path) + 1);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	ck_assert_int_eq(listen(fd, 1), 0);
	admin_stop();
	snprintf(cfg.server.admin_socket, sizeof(cfg.server.admin_socket), "%s", path);
	ck_assert_int_eq(admin_start(&cfg, &h, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "in use"));
	close(fd); /* now it is stale */
	ck_assert_msg(admin_start(&cfg, &h, err, sizeof(err)) == 0, "%s", err);
	snprintf(admin_path, sizeof(admin_path), "%s", path);
	json_t *r = admin_call("{\"cmd\":\"status\"}");
	ck_assert(reply_ok(r));
	json_decref(r);
}
END_TEST

START_TEST(test_admin_refuses_clients_beyond_the_limit_with_a_reason)
{
	int idle[40];
	size_t n_idle = 0;
	struct sockaddr_un sun;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, admin_path, strlen(admin_path) + 1);
	/* Fill every slot with clients that never send a request. */
	for (; n_idle < 32; n_idle++) {
		idle[n_idle] = socket(AF_UNIX, SOCK_STREAM, 0);
		ck_assert_int_eq(connect(idle[n_idle], (struct sockaddr *)&sun, sizeof(sun)), 0);
	}
	/* Status still answers once the admin thread has taken them all. */
	json_t *r = NULL;
	for (int tries = 0; tries < 100; tries++) {
		r = admin_call("{\"cmd\":\"status\"}");
		if (!reply_ok(r))
			break;
		json_decref(r);
		r = NULL;
		usleep(10000);
	}
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(json_string_value(json_object_get(r, "error")),
			 "too many admin connections");
	json_decref(r);
	for (size_t i = 0; i < n_idle; i++)
		close(idle[i]);
	/* Slots free up again. */
	for (int tries = 0; tries < 100; tries++) {
		r = admin_call("{\"cmd\":\"status\"}");
		if (reply_ok(r))
			break;
		json_decref(r);
		r = NULL;
		usleep(10000);
	}
	ck_assert_ptr_nonnull(r);
	json_decref(r);
}
END_TEST

START_TEST(test_admin_request_reports_unreachable_daemon)
{
	char err[512] = "";
	struct lines l = {json_array(), 0};

	ck_assert_int_eq(admin_request("/nonexistent/postern/admin.sock", "{\"cmd\":\"status\"}",
				       collect_line, &l, err, sizeof(err)),
			 -1);
	ck_assert_ptr_nonnull(strstr(err, "/nonexistent/postern/admin.sock"));
	ck_assert_int_eq(
	    admin_request(admin_path, "{\"cmd\":\n\"status\"}", collect_line, &l, err, sizeof(err)),
	    -1);
	json_decref(l.items);
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

	tc = tcase_create("admin");
	tcase_add_checked_fixture(tc, admin_setup, admin_teardown);
	tcase_add_test(tc, test_admin_socket_is_private_and_reports_status);
	tcase_add_test(tc, test_admin_handlers_and_errors);
	tcase_add_test(tc, test_admin_request_line_is_bounded);
	tcase_add_test(tc, test_admin_trace_history_without_follow);
	tcase_add_test(tc, test_admin_trace_follow_sees_history_then_live_events);
	tcase_add_test(tc, test_admin_trace_user_filter_follows_the_session);
	tcase_add_test(tc, test_admin_trace_user_filter_remembers_the_latest_sessions);
	tcase_add_test(tc, test_admin_trace_slow_reader_loses_events_and_is_told);
	tcase_add_test(tc, test_admin_refuses_second_start_and_non_socket_path);
	tcase_add_test(tc, test_admin_replaces_stale_socket_but_not_a_live_one);
	tcase_add_test(tc, test_admin_refuses_clients_beyond_the_limit_with_a_reason);
	tcase_add_test(tc, test_admin_request_reports_unreachable_daemon);
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
