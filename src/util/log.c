/*
 * log.c - leveled log lines to stderr ("2026-11-24T12:00:00Z posternd[42]:
 * warning: ...") or to syslog. One mutex keeps lines from different worker
 * threads whole; the level is read without it (an int written atomically).
 */
#include <config.h>

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"

#define LOG_LINE_MAX 2048

static char log_ident[64] = "postern";
static volatile int log_threshold = LOG_LEVEL_INFO;
static bool log_to_syslog;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = {"error", "warning", "info", "debug"};
static const int level_syslog[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};

void log_init(const char *ident, enum log_level level, bool to_syslog)
{
	snprintf(log_ident, sizeof(log_ident), "%s", ident ? ident : "postern");
	log_threshold = level;
	if (to_syslog && !log_to_syslog)
		openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
	else if (!to_syslog && log_to_syslog)
		closelog();
	log_to_syslog = to_syslog;
}

void log_set_level(enum log_level level)
{
	log_threshold = level;
}

int log_level_parse(const char *name, enum log_level *out)
{
	static const struct {
		const char *name;
		enum log_level level;
	} names[] = {
	    {"error", LOG_LEVEL_ERROR},
	    {"warn", LOG_LEVEL_WARN},
	    {"info", LOG_LEVEL_INFO},
	    {"debug", LOG_LEVEL_DEBUG},
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(name, names[i].name) == 0) {
			*out = names[i].level;
			return 0;
		}
	}
	return -1;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	char line[LOG_LINE_MAX];
	va_list ap;

	if ((int)level > log_threshold || (int)level < 0)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* A log line is one line: a CR or LF from a peer must not forge another. */
	for (char *p = line; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';

	if (log_to_syslog) {
		syslog(level_syslog[level], "%s: %s", level_names[level], line);
		return;
	}

	char stamp[32];
	struct tm tm;
	time_t now = time(NULL);

	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	pthread_mutex_lock(&log_lock);
	fprintf(stderr, "%s %s[%ld]: %s: %s\n", stamp, log_ident, (long)getpid(),
		level_names[level], line);
	fflush(stderr);
	pthread_mutex_unlock(&log_lock);
}
