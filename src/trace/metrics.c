/*
 * metrics.c - counters and latency histograms, rendered as Prometheus text.
 *
 * Command metrics are keyed by protocol and command name from fixed lists,
 * so a client sending made-up verbs cannot create series without bound:
 * anything not listed folds into "other". Those series are plain arrays of
 * atomics (no lock on the hot path). Generic counters (metrics_count) are
 * few and named by our own code; they live in a small table behind a mutex
 * and, should it ever fill, further series are dropped and counted.
 */
#include <config.h>

#include "trace/metrics.h"

#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MAX_GENERIC_SERIES 256
#define MAX_NAME 64
#define MAX_LABEL_VALUE 128

/* The name tables read better packed than one entry per line. */
/* clang-format off */
static const char *const protocol_names[] = {
	"smtp", "submission", "pop3", "imap", "http", "admin", "other",
};
#define N_PROTOCOLS (sizeof(protocol_names) / sizeof(protocol_names[0]))

/* Every command of SMTP (RFC 5321 + extensions), POP3 (RFC 1939, 2449,
 * 2595, 5034), IMAP (RFC 9051 + common extensions) and the HTTP methods. */
static const char *const command_names[] = {
	/* SMTP */
	"HELO", "EHLO", "LHLO", "MAIL", "RCPT", "DATA", "BDAT", "RSET", "NOOP", "QUIT", "VRFY",
	"EXPN", "HELP", "STARTTLS", "AUTH",
	/* POP3 */
	"USER", "PASS", "APOP", "STAT", "LIST", "RETR", "DELE", "TOP", "UIDL", "CAPA", "STLS",
	"UTF8",
	/* IMAP */
	"CAPABILITY", "LOGOUT", "LOGIN", "AUTHENTICATE", "SELECT", "EXAMINE", "CREATE", "DELETE",
	"RENAME", "SUBSCRIBE", "UNSUBSCRIBE", "LSUB", "NAMESPACE", "STATUS", "APPEND", "IDLE",
	"CHECK", "CLOSE", "UNSELECT", "EXPUNGE", "SEARCH", "FETCH", "STORE", "COPY", "MOVE",
	"UID", "UID FETCH", "UID STORE", "UID SEARCH", "UID COPY", "UID MOVE", "UID EXPUNGE",
	"ENABLE", "ID", "GETQUOTA", "GETQUOTAROOT", "SETQUOTA", "GETMETADATA", "SETMETADATA",
	"SORT", "THREAD", "COMPRESS", "DONE",
	/* HTTP */
	"GET", "HEAD", "POST", "PUT", "PATCH", "OPTIONS",
	"other",
};
#define N_COMMANDS (sizeof(command_names) / sizeof(command_names[0]))

/* clang-format on */

static const char *const refusal_reasons[] = {"max_connections", "per_ip", "other"};
#define N_REASONS (sizeof(refusal_reasons) / sizeof(refusal_reasons[0]))

/* Upper bounds, as Prometheus client libraries usually choose: in
 * microseconds for comparing, and as text in seconds for rendering (text, so
 * the locale's decimal separator can never leak into the exposition). */
/* clang-format off */
static const uint64_t bucket_usec[METRICS_BUCKETS] = {
	500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
	1000000, 2500000, 5000000, 10000000,
};
static const char *const bucket_text[METRICS_BUCKETS] = {
	"0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05",
	"0.1", "0.25", "0.5", "1", "2.5", "5", "10",
};
/* clang-format on */

struct command_series {
	atomic_uint_fast64_t count;
	atomic_uint_fast64_t sum_usec;
	/* Not cumulative: slot i counts observations in (bound[i-1], bound[i]];
	 * the last slot is the +Inf overflow. */
	atomic_uint_fast64_t buckets[METRICS_BUCKETS + 1];
};

static struct command_series commands[N_PROTOCOLS][N_COMMANDS];
static atomic_uint_fast64_t connections_total[N_PROTOCOLS];
static atomic_int_fast64_t connections_active[N_PROTOCOLS];
static atomic_uint_fast64_t connections_refused[N_PROTOCOLS][N_REASONS];

struct generic_series {
	char name[MAX_NAME];
	size_t protocol;
	char label_name[MAX_NAME]; /* empty: no extra label */
	char label_value[MAX_LABEL_VALUE];
	uint64_t value;
};

static pthread_mutex_t generic_lock = PTHREAD_MUTEX_INITIALIZER;
static struct generic_series generic[MAX_GENERIC_SERIES];
static size_t n_generic;
static atomic_uint_fast64_t series_dropped;

static struct timespec start_monotonic;
static uint64_t start_wall_usec;

/* The start time must be taken when the process starts, not on first use:
 * nothing else in the program is guaranteed to ask early enough. */
__attribute__((constructor)) static void metrics_record_start(void)
{
	struct timeval tv;

	clock_gettime(CLOCK_MONOTONIC, &start_monotonic);
	gettimeofday(&tv, NULL);
	start_wall_usec = (uint64_t)tv.tv_sec * 1000000 + (uint64_t)tv.tv_usec;
}

static size_t find_name(const char *const *names, size_t n, const char *name)
{
	if (name != NULL) {
		for (size_t i = 0; i + 1 < n; i++) {
			if (strcasecmp(names[i], name) == 0)
				return i;
		}
	}
	return n - 1; /* "other" */
}

static size_t protocol_index(const char *protocol)
{
	return find_name(protocol_names, N_PROTOCOLS, protocol);
}

void metrics_command(const char *protocol, const char *command, uint64_t elapsed_usec)
{
	struct command_series *s =
	    &commands[protocol_index(protocol)][find_name(command_names, N_COMMANDS, command)];
	size_t b = 0;

	while (b < METRICS_BUCKETS && elapsed_usec > bucket_usec[b])
		b++;
	atomic_fetch_add(&s->buckets[b], 1);
	atomic_fetch_add(&s->sum_usec, elapsed_usec);
	atomic_fetch_add(&s->count, 1);
}

void metrics_connection_open(const char *protocol)
{
	size_t p = protocol_index(protocol);

	atomic_fetch_add(&connections_total[p], 1);
	atomic_fetch_add(&connections_active[p], 1);
}

void metrics_connection_close(const char *protocol)
{
	atomic_fetch_sub(&connections_active[protocol_index(protocol)], 1);
}

void metrics_connection_refused(const char *protocol, const char *reason)
{
	atomic_fetch_add(&connections_refused[protocol_index(protocol)]
					     [find_name(refusal_reasons, N_REASONS, reason)],
			 1);
}

int64_t metrics_connections_active(const char *protocol)
{
	return atomic_load(&connections_active[protocol_index(protocol)]);
}

void metrics_each_protocol(void (*fn)(void *arg, const char *protocol, int64_t active), void *arg)
{
	for (size_t p = 0; p < N_PROTOCOLS; p++) {
		if (atomic_load(&connections_total[p]) > 0)
			fn(arg, protocol_names[p], atomic_load(&connections_active[p]));
	}
}

static uint64_t uptime_usec(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)((int64_t)(now.tv_sec - start_monotonic.tv_sec) * 1000000 +
			  (now.tv_nsec - start_monotonic.tv_nsec) / 1000);
}

double metrics_uptime_seconds(void)
{
	return (double)uptime_usec() / 1e6;
}

/* Metric and label names: [a-zA-Z_][a-zA-Z0-9_]*, bounded. */
static int valid_name(const char *name)
{
	size_t len = name ? strlen(name) : 0;

	if (len == 0 || len >= MAX_NAME || isdigit((unsigned char)name[0]))
		return 0;
	for (size_t i = 0; i < len; i++) {
		if (!isalnum((unsigned char)name[i]) && name[i] != '_')
			return 0;
	}
	return 1;
}

/* Names whose postern_<name>_total would collide with a built-in metric. */
static int reserved_name(const char *name)
{
	return strcmp(name, "commands") == 0 || strcmp(name, "connections") == 0 ||
	       strcmp(name, "connections_refused") == 0 ||
	       strcmp(name, "metrics_series_dropped") == 0;
}

void metrics_count(const char *protocol, const char *name, const char *label_name,
		   const char *label_value, uint64_t n)
{
	size_t p = protocol_index(protocol);
	const char *lname = label_name ? label_name : "";
	char lvalue[MAX_LABEL_VALUE];

	if (!valid_name(name) || reserved_name(name) ||
	    (label_name != NULL &&
	     (!valid_name(label_name) || strcmp(label_name, "protocol") == 0))) {
		atomic_fetch_add(&series_dropped, 1);
		return;
	}
	snprintf(lvalue, sizeof(lvalue), "%s", label_name && label_value ? label_value : "");

	pthread_mutex_lock(&generic_lock);
	for (size_t i = 0; i < n_generic; i++) {
		struct generic_series *g = &generic[i];
		if (g->protocol == p && strcmp(g->name, name) == 0 &&
		    strcmp(g->label_name, lname) == 0 && strcmp(g->label_value, lvalue) == 0) {
			g->value += n;
			pthread_mutex_unlock(&generic_lock);
			return;
		}
	}
	if (n_generic == MAX_GENERIC_SERIES) {
		pthread_mutex_unlock(&generic_lock);
		atomic_fetch_add(&series_dropped, 1);
		return;
	}
	struct generic_series *g = &generic[n_generic++];
	snprintf(g->name, sizeof(g->name), "%s", name);
	g->protocol = p;
	snprintf(g->label_name, sizeof(g->label_name), "%s", lname);
	memcpy(g->label_value, lvalue, sizeof(g->label_value));
	g->value = n;
	pthread_mutex_unlock(&generic_lock);
}

/* ---- rendering ---- */

/* A label value in exposition format: backslash, quote and newline escaped. */
static void put_label_value(FILE *f, const char *v)
{
	fputc('"', f);
	for (; *v != '\0'; v++) {
		if (*v == '\\')
			fputs("\\\\", f);
		else if (*v == '"')
			fputs("\\\"", f);
		else if (*v == '\n')
			fputs("\\n", f);
		else
			fputc(*v, f);
	}
	fputc('"', f);
}

/* PREFIX, then USEC as decimal seconds with a '.' whatever the locale. */
static void put_seconds(FILE *f, const char *prefix, uint64_t usec)
{
	fprintf(f, "%s%llu.%06llu\n", prefix, (unsigned long long)(usec / 1000000),
		(unsigned long long)(usec % 1000000));
}

static void put_header(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void render_commands(FILE *f)
{
	put_header(f, "postern_commands_total", "counter",
		   "Commands handled, by protocol and command.");
	for (size_t p = 0; p < N_PROTOCOLS; p++) {
		for (size_t c = 0; c < N_COMMANDS; c++) {
			uint64_t n = atomic_load(&commands[p][c].count);
			if (n == 0)
				continue;
			fprintf(f, "postern_commands_total{protocol=\"%s\",command=",
				protocol_names[p]);
			put_label_value(f, command_names[c]);
			fprintf(f, "} %llu\n", (unsigned long long)n);
		}
	}

	put_header(f, "postern_command_duration_seconds", "histogram",
		   "Time from a command to its reply, by protocol and command.");
	for (size_t p = 0; p < N_PROTOCOLS; p++) {
		for (size_t c = 0; c < N_COMMANDS; c++) {
			struct command_series *s = &commands[p][c];
			uint64_t cumulative = 0;

			if (atomic_load(&s->count) == 0)
				continue;
			for (size_t b = 0; b <= METRICS_BUCKETS; b++) {
				cumulative += atomic_load(&s->buckets[b]);
				fprintf(f,
					"postern_command_duration_seconds_bucket{protocol=\"%s\","
					"command=",
					protocol_names[p]);
				put_label_value(f, command_names[c]);
				if (b < METRICS_BUCKETS)
					fprintf(f, ",le=\"%s\"} %llu\n", bucket_text[b],
						(unsigned long long)cumulative);
				else
					fprintf(f, ",le=\"+Inf\"} %llu\n",
						(unsigned long long)cumulative);
			}
			fprintf(f, "postern_command_duration_seconds_sum{protocol=\"%s\",command=",
				protocol_names[p]);
			put_label_value(f, command_names[c]);
			put_seconds(f, "} ", atomic_load(&s->sum_usec));
			fprintf(f,
				"postern_command_duration_seconds_count{protocol=\"%s\",command=",
				protocol_names[p]);
			put_label_value(f, command_names[c]);
			fprintf(f, "} %llu\n", (unsigned long long)cumulative);
		}
	}
}

static void render_connections(FILE *f)
{
	put_header(f, "postern_connections_total", "counter", "Connections accepted, by protocol.");
	for (size_t p = 0; p < N_PROTOCOLS; p++) {
		uint64_t n = atomic_load(&connections_total[p]);
		if (n > 0)
			fprintf(f, "postern_connections_total{protocol=\"%s\"} %llu\n",
				protocol_names[p], (unsigned long long)n);
	}
	put_header(f, "postern_connections_active", "gauge", "Connections open now, by protocol.");
	for (size_t p = 0; p < N_PROTOCOLS; p++) {
		if (atomic_load(&connections_total[p]) > 0)
			fprintf(f, "postern_connections_active{protocol=\"%s\"} %lld\n",
				protocol_names[p], (long long)atomic_load(&connections_active[p]));
	}
	put_header(f, "postern_connections_refused_total", "counter",
		   "Connections refused by a limit, by protocol and reason.");
	for (size_t p = 0; p < N_PROTOCOLS; p++) {
		for (size_t r = 0; r < N_REASONS; r++) {
			uint64_t n = atomic_load(&connections_refused[p][r]);
			if (n > 0)
				fprintf(f,
					"postern_connections_refused_total{protocol=\"%s\",reason="
					"\"%s\"} "
					"%llu\n",
					protocol_names[p], refusal_reasons[r],
					(unsigned long long)n);
		}
	}
}

static void render_generic(FILE *f)
{
	char metric[MAX_NAME + 16];

	pthread_mutex_lock(&generic_lock);
	for (size_t i = 0; i < n_generic; i++) {
		int first = 1;

		/* One HELP/TYPE block per name, listing all its series. */
		for (size_t j = 0; j < i; j++) {
			if (strcmp(generic[j].name, generic[i].name) == 0) {
				first = 0;
				break;
			}
		}
		if (!first)
			continue;
		snprintf(metric, sizeof(metric), "postern_%.63s_total", generic[i].name);
		put_header(f, metric, "counter", "Events counted by the server.");
		for (size_t j = i; j < n_generic; j++) {
			struct generic_series *g = &generic[j];
			if (strcmp(g->name, generic[i].name) != 0)
				continue;
			fprintf(f, "%s{protocol=\"%s\"", metric, protocol_names[g->protocol]);
			if (g->label_name[0] != '\0') {
				fprintf(f, ",%s=", g->label_name);
				put_label_value(f, g->label_value);
			}
			fprintf(f, "} %llu\n", (unsigned long long)g->value);
		}
	}
	pthread_mutex_unlock(&generic_lock);
	put_header(f, "postern_metrics_series_dropped_total", "counter",
		   "Counter updates dropped because of a bad name or a full series table.");
	fprintf(f, "postern_metrics_series_dropped_total %llu\n",
		(unsigned long long)atomic_load(&series_dropped));
}

static void render_process(FILE *f)
{
	long pages_resident = 0, pages_total = 0;
	FILE *statm = fopen("/proc/self/statm", "r");

	if (statm != NULL) {
		if (fscanf(statm, "%ld %ld", &pages_total, &pages_resident) != 2)
			pages_resident = 0;
		fclose(statm);
	}
	put_header(f, "postern_uptime_seconds", "gauge", "Seconds since the server started.");
	put_seconds(f, "postern_uptime_seconds ", uptime_usec());
	put_header(f, "process_start_time_seconds", "gauge",
		   "Start time of the process since the Unix epoch in seconds.");
	put_seconds(f, "process_start_time_seconds ", start_wall_usec);
	put_header(f, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
	fprintf(f, "process_resident_memory_bytes %lld\n",
		(long long)pages_resident * (long long)sysconf(_SC_PAGESIZE));
}

char *metrics_render(size_t *len)
{
	char *text = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&text, &size);

	if (f == NULL)
		return NULL;
	render_commands(f);
	render_connections(f);
	render_generic(f);
	render_process(f);
	if (ferror(f)) {
		fclose(f);
		free(text);
		return NULL;
	}
	if (fclose(f) != 0) {
		free(text);
		return NULL;
	}
	if (len != NULL)
		*len = size;
	return text;
}
