/*
 * test_metrics.c - metrics rendering and the /metrics HTTP endpoint. The
 * rendered text is parsed back (a small exposition-format parser below) so
 * the tests check values, not string fragments.
 */
#include <config.h>

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "trace/metrics.h"

#define MAX_SAMPLES 4096
#define MAX_LABELS 4

struct sample {
	char name[128];
	size_t n_labels;
	char keys[MAX_LABELS][64];
	char values[MAX_LABELS][256];
	double value;
};

struct exposition {
	struct sample samples[MAX_SAMPLES];
	size_t n;
	char types[256][160]; /* "name type" from # TYPE lines */
	size_t n_types;
};

/* Parses one label value (after the opening quote); returns the position
 * after the closing quote or NULL. */
static const char *parse_label_value(const char *p, char *out, size_t outlen)
{
	size_t n = 0;

	for (; *p != '"'; p++) {
		char c = *p;
		if (c == '\0' || c == '\n')
			return NULL;
		if (c == '\\') {
			p++;
			if (*p == 'n')
				c = '\n';
			else if (*p == '\\' || *p == '"')
				c = *p;
			else
				return NULL;
		}
		if (n + 1 >= outlen)
			return NULL;
		out[n++] = c;
	}
	out[n] = '\0';
	return p + 1;
}

/* Parses the whole text; fails the test on any malformed line. */
static void parse_exposition(const char *text, struct exposition *x)
{
	const char *line = text;

	x->n = 0;
	x->n_types = 0;
	ck_assert_msg(text[strlen(text) - 1] == '\n', "exposition must end with a newline");
	while (*line != '\0') {
		const char *end = strchr(line, '\n');
		ck_assert_ptr_nonnull(end);
		if (strncmp(line, "# TYPE ", 7) == 0) {
			ck_assert_uint_lt(x->n_types, 256);
			snprintf(x->types[x->n_types++], sizeof(x->types[0]), "%.*s",
				 (int)(end - line - 7), line + 7);
		} else if (line[0] != '#') {
			struct sample *s = &x->samples[x->n];
			const char *p = line;
			size_t n = 0;

			ck_assert_uint_lt(x->n, MAX_SAMPLES);
			memset(s, 0, sizeof(*s));
			while (*p != '{' && *p != ' ') {
				ck_assert_msg((*p >= 'a' && *p <= 'z') ||
						  (*p >= 'A' && *p <= 'Z') ||
						  (*p >= '0' && *p <= '9') || *p == '_',
					      "bad metric name in: %.*s", (int)(end - line), line);
				s->name[n++] = *p++;
			}
			if (*p == '{') {
				p++;
				while (*p != '}') {
					const char *eq = strchr(p, '=');
					ck_assert_ptr_nonnull(eq);
					ck_assert_uint_lt(s->n_labels, MAX_LABELS);
					snprintf(s->keys[s->n_labels], 64, "%.*s", (int)(eq - p),
						 p);
					ck_assert_int_eq(eq[1], '"');
					p = parse_label_value(eq + 2, s->values[s->n_labels], 256);
					ck_assert_msg(p != NULL, "bad label value in: %.*s",
						      (int)(end - line), line);
					s->n_labels++;
					if (*p == ',')
						p++;
				}
				p++;
			}
			ck_assert_int_eq(*p, ' ');
			char *num_end;
			s->value = strtod(p + 1, &num_end);
			ck_assert_msg(num_end == end, "bad value in: %.*s", (int)(end - line),
				      line);
			x->n++;
		}
		line = end + 1;
	}
}

static const char *type_of(const struct exposition *x, const char *name)
{
	size_t len = strlen(name);

	for (size_t i = 0; i < x->n_types; i++) {
		if (strncmp(x->types[i], name, len) == 0 && x->types[i][len] == ' ')
			return x->types[i] + len + 1;
	}
	return NULL;
}

/* The sample NAME with exactly the given labels (N pairs of key, value). */
static const struct sample *find_sample(const struct exposition *x, const char *name, int n, ...)
{
	for (size_t i = 0; i < x->n; i++) {
		const struct sample *s = &x->samples[i];
		va_list ap;
		int match = strcmp(s->name, name) == 0 && s->n_labels == (size_t)n;

		va_start(ap, n);
		for (int k = 0; match && k < n; k++) {
			const char *key = va_arg(ap, const char *);
			const char *value = va_arg(ap, const char *);
			int found = 0;
			for (size_t l = 0; l < s->n_labels; l++) {
				if (strcmp(s->keys[l], key) == 0 &&
				    strcmp(s->values[l], value) == 0)
					found = 1;
			}
			match = found;
		}
		va_end(ap);
		if (match)
			return s;
	}
	return NULL;
}

static struct exposition *render_and_parse(void)
{
	size_t len = 0;
	char *text = metrics_render(&len);
	struct exposition *x = calloc(1, sizeof(*x));

	ck_assert_ptr_nonnull(text);
	ck_assert_ptr_nonnull(x);
	ck_assert_uint_eq(len, strlen(text));
	parse_exposition(text, x);
	free(text);
	return x;
}

START_TEST(test_commands_are_counted_with_histogram)
{
	metrics_command("smtp", "EHLO", 300);	   /* 0.0003 s */
	metrics_command("smtp", "ehlo", 2000);	   /* 0.002 s */
	metrics_command("smtp", "EHLO", 7000000);  /* 7 s */
	metrics_command("smtp", "EHLO", 60000000); /* 60 s: +Inf only */

	struct exposition *x = render_and_parse();
	const struct sample *s;

	ck_assert_str_eq(type_of(x, "postern_commands_total"), "counter");
	ck_assert_str_eq(type_of(x, "postern_command_duration_seconds"), "histogram");
	s = find_sample(x, "postern_commands_total", 2, "protocol", "smtp", "command", "EHLO");
	ck_assert_ptr_nonnull(s);
	ck_assert_double_eq(s->value, 4);

	s = find_sample(x, "postern_command_duration_seconds_bucket", 3, "protocol", "smtp",
			"command", "EHLO", "le", "0.0005");
	ck_assert_ptr_nonnull(s);
	ck_assert_double_eq(s->value, 1);
	s = find_sample(x, "postern_command_duration_seconds_bucket", 3, "protocol", "smtp",
			"command", "EHLO", "le", "0.0025");
	ck_assert_double_eq(s->value, 2);
	s = find_sample(x, "postern_command_duration_seconds_bucket", 3, "protocol", "smtp",
			"command", "EHLO", "le", "10");
	ck_assert_double_eq(s->value, 3);
	s = find_sample(x, "postern_command_duration_seconds_bucket", 3, "protocol", "smtp",
			"command", "EHLO", "le", "+Inf");
	ck_assert_double_eq(s->value, 4);
	s = find_sample(x, "postern_command_duration_seconds_count", 2, "protocol", "smtp",
			"command", "EHLO");
	ck_assert_double_eq(s->value, 4);
	s = find_sample(x, "postern_command_duration_seconds_sum", 2, "protocol", "smtp", "command",
			"EHLO");
	ck_assert_double_eq_tol(s->value, 67.0023, 1e-9);
	free(x);
}
END_TEST

START_TEST(test_histogram_buckets_are_monotonic)
{
	for (uint64_t usec = 1; usec < 20000000; usec = usec * 3 + 7)
		metrics_command("pop3", "RETR", usec);

	struct exposition *x = render_and_parse();
	double previous = -1, previous_le = -1;
	size_t buckets = 0;

	for (size_t i = 0; i < x->n; i++) {
		const struct sample *s = &x->samples[i];
		if (strcmp(s->name, "postern_command_duration_seconds_bucket") != 0 ||
		    s->n_labels != 3 || strcmp(s->values[0], "pop3") != 0 ||
		    strcmp(s->values[1], "RETR") != 0)
			continue;
		ck_assert_str_eq(s->keys[2], "le");
		double le = strcmp(s->values[2], "+Inf") == 0 ? 1e300 : strtod(s->values[2], NULL);
		ck_assert_double_gt(le, previous_le);
		ck_assert_double_ge(s->value, previous);
		previous = s->value;
		previous_le = le;
		buckets++;
	}
	ck_assert_uint_eq(buckets, METRICS_BUCKETS + 1);
	const struct sample *count = find_sample(x, "postern_command_duration_seconds_count", 2,
						 "protocol", "pop3", "command", "RETR");
	ck_assert_double_eq(previous, count->value);
	free(x);
}
END_TEST

START_TEST(test_unknown_commands_and_protocols_fold_into_other)
{
	char verb[32];

	for (int i = 0; i < 500; i++) {
		snprintf(verb, sizeof(verb), "XBOGUS%d", i);
		metrics_command("imap", verb, 10);
	}
	metrics_command("gopher", "GET", 10);
	metrics_command("imap", NULL, 10);

	struct exposition *x = render_and_parse();
	const struct sample *s =
	    find_sample(x, "postern_commands_total", 2, "protocol", "imap", "command", "other");
	ck_assert_ptr_nonnull(s);
	ck_assert_double_eq(s->value, 501);
	ck_assert_ptr_null(
	    find_sample(x, "postern_commands_total", 2, "protocol", "imap", "command", "XBOGUS1"));
	s = find_sample(x, "postern_commands_total", 2, "protocol", "other", "command", "GET");
	ck_assert_ptr_nonnull(s);
	ck_assert_double_eq(s->value, 1);
	free(x);
}
END_TEST

START_TEST(test_connection_counters)
{
	metrics_connection_open("submission");
	metrics_connection_open("submission");
	metrics_connection_open("submission");
	metrics_connection_close("submission");
	metrics_connection_refused("submission", "per_ip");
	metrics_connection_refused("submission", "per_ip");
	metrics_connection_refused("submission", "something else");
	ck_assert_int_eq(metrics_connections_active("submission"), 2);

	struct exposition *x = render_and_parse();
	const struct sample *s;

	s = find_sample(x, "postern_connections_total", 1, "protocol", "submission");
	ck_assert_double_eq(s->value, 3);
	s = find_sample(x, "postern_connections_active", 1, "protocol", "submission");
	ck_assert_double_eq(s->value, 2);
	ck_assert_str_eq(type_of(x, "postern_connections_active"), "gauge");
	s = find_sample(x, "postern_connections_refused_total", 2, "protocol", "submission",
			"reason", "per_ip");
	ck_assert_double_eq(s->value, 2);
	s = find_sample(x, "postern_connections_refused_total", 2, "protocol", "submission",
			"reason", "other");
	ck_assert_double_eq(s->value, 1);
	free(x);
}
END_TEST

#define COUNTING_THREADS 4
#define COUNTS_PER_THREAD 20000

static void *count_commands(void *arg)
{
	for (int i = 0; i < COUNTS_PER_THREAD; i++) {
		metrics_command("imap", "FETCH", (uint64_t)(i % 3000));
		metrics_count("imap", "fetched", NULL, NULL, 2);
	}
	return NULL;
}

START_TEST(test_concurrent_updates_are_not_lost)
{
	pthread_t threads[COUNTING_THREADS];

	for (int i = 0; i < COUNTING_THREADS; i++)
		ck_assert_int_eq(pthread_create(&threads[i], NULL, count_commands, NULL), 0);
	for (int i = 0; i < COUNTING_THREADS; i++)
		pthread_join(threads[i], NULL);

	struct exposition *x = render_and_parse();
	const struct sample *s;
	const double total = COUNTING_THREADS * COUNTS_PER_THREAD;

	s = find_sample(x, "postern_commands_total", 2, "protocol", "imap", "command", "FETCH");
	ck_assert_double_eq(s->value, total);
	s = find_sample(x, "postern_command_duration_seconds_bucket", 3, "protocol", "imap",
			"command", "FETCH", "le", "+Inf");
	ck_assert_double_eq(s->value, total);
	s = find_sample(x, "postern_fetched_total", 1, "protocol", "imap");
	ck_assert_double_eq(s->value, 2 * total);
	free(x);
}
END_TEST

struct seen_protocols {
	int pop3, http;
	int64_t pop3_active;
};

static void see_protocol(void *arg, const char *protocol, int64_t active)
{
	struct seen_protocols *seen = arg;

	if (strcmp(protocol, "pop3") == 0) {
		seen->pop3++;
		seen->pop3_active = active;
	} else if (strcmp(protocol, "http") == 0) {
		seen->http++;
	}
}

START_TEST(test_each_protocol_lists_only_protocols_with_connections)
{
	struct seen_protocols seen = {0, 0, 0};

	metrics_connection_open("pop3");
	metrics_connection_open("pop3");
	metrics_connection_close("pop3");
	metrics_each_protocol(see_protocol, &seen);
	ck_assert_int_eq(seen.pop3, 1);
	ck_assert_int_eq(seen.pop3_active, 1);
	ck_assert_int_eq(seen.http, 0); /* no http connection in this program */
	ck_assert_int_eq(metrics_connections_active("pop3"), 1);
	ck_assert_int_eq(metrics_connections_active("http"), 0);
}
END_TEST

START_TEST(test_generic_counters_and_label_escaping)
{
	metrics_count("smtp", "messages_delivered", NULL, NULL, 2);
	metrics_count("smtp", "messages_delivered", NULL, NULL, 3);
	metrics_count("smtp", "rejected", "reason", "a \"quoted\\path\"\nline", 1);
	metrics_count("pop3", "rejected", "reason", "plain", 4);
	/* Refused: bad names, a reserved name, the protocol label. */
	metrics_count("smtp", "bad name", NULL, NULL, 1);
	metrics_count("smtp", "connections", NULL, NULL, 1);
	metrics_count("smtp", "ok_name", "protocol", "x", 1);
	metrics_count("smtp", "ok_name", "9bad", "x", 1);

	struct exposition *x = render_and_parse();
	const struct sample *s;

	s = find_sample(x, "postern_messages_delivered_total", 1, "protocol", "smtp");
	ck_assert_ptr_nonnull(s);
	ck_assert_double_eq(s->value, 5);
	s = find_sample(x, "postern_rejected_total", 2, "protocol", "smtp", "reason",
			"a \"quoted\\path\"\nline");
	ck_assert_ptr_nonnull(s);
	ck_assert_double_eq(s->value, 1);
	s = find_sample(x, "postern_rejected_total", 2, "protocol", "pop3", "reason", "plain");
	ck_assert_double_eq(s->value, 4);
	s = find_sample(x, "postern_metrics_series_dropped_total", 0);
	ck_assert_double_eq(s->value, 4);
	ck_assert_ptr_null(
	    find_sample(x, "postern_ok_name_total", 2, "protocol", "smtp", "protocol", "x"));

	/* One TYPE line per metric name, even with several series. */
	size_t types = 0;
	for (size_t i = 0; i < x->n_types; i++)
		types += strcmp(x->types[i], "postern_rejected_total counter") == 0;
	ck_assert_uint_eq(types, 1);
	free(x);
}
END_TEST

START_TEST(test_generic_series_are_bounded)
{
	char value[32];

	for (int i = 0; i < 1000; i++) {
		snprintf(value, sizeof(value), "v%d", i);
		metrics_count("http", "flood", "value", value, 1);
	}
	struct exposition *x = render_and_parse();
	size_t flood = 0;
	for (size_t i = 0; i < x->n; i++)
		flood += strcmp(x->samples[i].name, "postern_flood_total") == 0;
	ck_assert_uint_le(flood, 256);
	ck_assert_uint_gt(flood, 0);
	const struct sample *s = find_sample(x, "postern_metrics_series_dropped_total", 0);
	ck_assert_double_ge(s->value, 1000 - 256);
	free(x);
}
END_TEST

START_TEST(test_process_metrics)
{
	struct exposition *x = render_and_parse();
	const struct sample *s;

	s = find_sample(x, "process_resident_memory_bytes", 0);
	ck_assert_ptr_nonnull(s);
	ck_assert_double_gt(s->value, 4096);
	s = find_sample(x, "postern_uptime_seconds", 0);
	ck_assert_ptr_nonnull(s);
	ck_assert_double_ge(s->value, 0);
	ck_assert_double_lt(s->value, 3600);
	s = find_sample(x, "process_start_time_seconds", 0);
	ck_assert_double_gt(s->value, 1.6e9);
	ck_assert_double_ge(metrics_uptime_seconds(), 0);
	free(x);
}
END_TEST

/* ---- HTTP ---- */

/* Sends REQUEST to 127.0.0.1:PORT and returns the whole response (malloc'd). */
static char *http_exchange(uint16_t port, const char *request)
{
	struct sockaddr_in sin;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	size_t cap = 1 << 20, len = 0;
	char *buf = malloc(cap);
	ssize_t n;

	ck_assert_int_ge(fd, 0);
	ck_assert_ptr_nonnull(buf);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(write(fd, request, strlen(request)), (ssize_t)strlen(request));
	while ((n = read(fd, buf + len, cap - 1 - len)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
	close(fd);
	return buf;
}

START_TEST(test_http_serves_metrics_and_refuses_the_rest)
{
	char err[256] = "";
	char *resp;

	ck_assert_msg(metrics_http_start("127.0.0.1", 0, NULL, NULL, err, sizeof(err)) == 0, "%s", err);
	uint16_t port = metrics_http_port();
	ck_assert_uint_gt(port, 0);
	/* A second start is refused with a reason. */
	ck_assert_int_eq(metrics_http_start("127.0.0.1", 0, NULL, NULL, err, sizeof(err)), -1);
	ck_assert_uint_gt(strlen(err), 0);

	metrics_command("smtp", "QUIT", 5);
	resp = http_exchange(port, "GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n");
	ck_assert_msg(strncmp(resp, "HTTP/1.0 200", 12) == 0 ||
			  strncmp(resp, "HTTP/1.1 200", 12) == 0,
		      "%.80s", resp);
	ck_assert_ptr_nonnull(strcasestr(resp, "Content-Type: text/plain; version=0.0.4"));
	char *body = strstr(resp, "\r\n\r\n");
	ck_assert_ptr_nonnull(body);
	struct exposition *x = calloc(1, sizeof(*x));
	parse_exposition(body + 4, x);
	const struct sample *s =
	    find_sample(x, "postern_commands_total", 2, "protocol", "smtp", "command", "QUIT");
	ck_assert_ptr_nonnull(s);
	ck_assert_double_ge(s->value, 1);
	free(x);
	free(resp);

	resp = http_exchange(port, "GET /other HTTP/1.0\r\n\r\n");
	ck_assert_msg(strstr(resp, " 404 ") != NULL, "%.80s", resp);
	free(resp);

	resp = http_exchange(port, "POST /metrics HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc");
	ck_assert_msg(strstr(resp, " 405 ") != NULL, "%.80s", resp);
	ck_assert_ptr_nonnull(strcasestr(resp, "Allow: GET, HEAD"));
	free(resp);

	resp = http_exchange(port, "DELETE /metrics HTTP/1.0\r\n\r\n");
	ck_assert_msg(strstr(resp, " 405 ") != NULL, "%.80s", resp);
	free(resp);

	metrics_http_stop();
	ck_assert_uint_eq(metrics_http_port(), 0);
}
END_TEST

START_TEST(test_http_rejects_bad_address)
{
	char err[256] = "";

	ck_assert_int_eq(metrics_http_start("localhost", 0, NULL, NULL, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "localhost"));
	ck_assert_int_eq(metrics_http_start("::1", 0, NULL, NULL, err, sizeof(err)), 0);
	ck_assert_uint_gt(metrics_http_port(), 0);
	metrics_http_stop();
	/* HTTPS with a certificate that cannot be read: a clear error. */
	ck_assert_int_eq(metrics_http_start("127.0.0.1", 0, "/nonexistent/cert.pem",
					    "/nonexistent/key.pem", err, sizeof(err)),
			 -1);
	ck_assert_ptr_nonnull(strstr(err, "/nonexistent/cert.pem"));
	ck_assert_uint_eq(metrics_http_port(), 0);
}
END_TEST

START_TEST(test_http_bind_then_run_and_a_taken_port_is_a_clear_error)
{
	char err[256] = "", want[64];
	uint16_t port;
	char *resp;

	/* Bound but not yet serving (posternd drops root in between): the
	 * port is known and connections wait in the backlog. */
	ck_assert_msg(metrics_http_bind("127.0.0.1", 0, NULL, NULL, err, sizeof(err)) == 0, "%s",
		      err);
	port = metrics_http_port();
	ck_assert_uint_gt(port, 0);
	ck_assert_msg(metrics_http_run(err, sizeof(err)) == 0, "%s", err);
	resp = http_exchange(port, "GET /metrics HTTP/1.0\r\n\r\n");
	ck_assert_msg(strstr(resp, " 200 ") != NULL, "%.80s", resp);
	free(resp);
	/* Plain HTTP has no certificate to reload. */
	ck_assert_int_eq(metrics_http_reload(NULL, NULL, err, sizeof(err)), 0);
	metrics_http_stop();

	/* Someone else holds the port: the error names it and the reason. */
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sin);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(listen(fd, 1), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
	ck_assert_int_eq(metrics_http_bind("127.0.0.1", ntohs(sin.sin_port), NULL, NULL, err,
					   sizeof(err)),
			 -1);
	snprintf(want, sizeof(want), "port %u: ", (unsigned)ntohs(sin.sin_port));
	ck_assert_msg(strstr(err, want) != NULL && strstr(err, strerror(EADDRINUSE)) != NULL,
		      "%s", err);
	ck_assert_uint_eq(metrics_http_port(), 0);
	close(fd);
}
END_TEST

static Suite *metrics_suite(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc = tcase_create("render");

	tcase_add_test(tc, test_commands_are_counted_with_histogram);
	tcase_add_test(tc, test_histogram_buckets_are_monotonic);
	tcase_add_test(tc, test_unknown_commands_and_protocols_fold_into_other);
	tcase_add_test(tc, test_connection_counters);
	tcase_add_test(tc, test_generic_counters_and_label_escaping);
	tcase_add_test(tc, test_concurrent_updates_are_not_lost);
	tcase_add_test(tc, test_each_protocol_lists_only_protocols_with_connections);
	tcase_add_test(tc, test_generic_series_are_bounded);
	tcase_add_test(tc, test_process_metrics);
	suite_add_tcase(s, tc);

	tc = tcase_create("http");
	tcase_add_test(tc, test_http_serves_metrics_and_refuses_the_rest);
	tcase_add_test(tc, test_http_rejects_bad_address);
	tcase_add_test(tc, test_http_bind_then_run_and_a_taken_port_is_a_clear_error);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(metrics_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
