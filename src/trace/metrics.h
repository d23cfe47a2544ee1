/*
 * metrics.h - counters and latency histograms per protocol and command,
 * served as Prometheus text on GET /metrics (libmicrohttpd, see metrics_http).
 * Updates are lock-free or take a short mutex: safe from any thread.
 */
#ifndef POSTERN_METRICS_H
#define POSTERN_METRICS_H

#include <stddef.h>
#include <stdint.h>

/* postern_commands_total{protocol,command} and
 * postern_command_duration_seconds{protocol,command} (histogram). */
void metrics_command(const char *protocol, const char *command, uint64_t elapsed_usec);
/* postern_connections_total{protocol} and postern_connections_active{protocol}. */
void metrics_connection_open(const char *protocol);
void metrics_connection_close(const char *protocol);
/* postern_connections_refused_total{protocol,reason} ("max_connections", "per_ip"). */
void metrics_connection_refused(const char *protocol, const char *reason);
/* Any other counter: postern_<NAME>_total{protocol,LABEL_NAME=LABEL_VALUE}, e.g.
 * metrics_count("smtp", "messages_delivered", NULL, NULL, 1). LABEL may be NULL. */
void metrics_count(const char *protocol, const char *name, const char *label_name,
		   const char *label_value, uint64_t n);

/* Active connections of PROTOCOL right now (0 for unknown protocols). */
int64_t metrics_connections_active(const char *protocol);
/* Calls FN for every protocol that has had a connection, with its active
 * count (for the admin socket's status reply). */
void metrics_each_protocol(void (*fn)(void *arg, const char *protocol, int64_t active), void *arg);
/* Seconds since the process started. */
double metrics_uptime_seconds(void);

/* Histogram bucket bounds in seconds (the +Inf bucket is implied). */
#define METRICS_BUCKETS 14

/* Writes all metrics in Prometheus text format (including process metrics:
 * uptime, start time, resident memory); returns malloc'd text or NULL. */
char *metrics_render(size_t *len);

/*
 * The HTTP listener (GET /metrics, WKD) in two steps, like the mail
 * listeners: metrics_http_bind() listens on ADDRESS:PORT and, with
 * CERT_FILE and KEY_FILE (PEM; NULL for plain HTTP), reads them for HTTPS;
 * posternd calls it before dropping root. metrics_http_run() then serves on
 * that socket from libmicrohttpd's own thread. Both 0 or -1 with ERR.
 * metrics_http_start() does both (tests).
 */
int metrics_http_bind(const char *address, uint16_t port, const char *cert_file,
		      const char *key_file, char *err, size_t errlen);
int metrics_http_run(char *err, size_t errlen);
int metrics_http_start(const char *address, uint16_t port, const char *cert_file,
		       const char *key_file, char *err, size_t errlen);
/* SIGHUP: with HTTPS, rereads CERT_FILE and KEY_FILE; new connections get
 * the new certificate, running ones finish with the old. Plain HTTP or not
 * running: nothing to do, 0. A pair that does not load: -1 with ERR and the
 * current certificate stays. Thread-safe. */
int metrics_http_reload(const char *cert_file, const char *key_file, char *err, size_t errlen);
void metrics_http_stop(void);
/* The port actually bound (useful when started with port 0), or 0. */
uint16_t metrics_http_port(void);

#endif
