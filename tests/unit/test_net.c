/*
 * test_net.c - src/net against real sockets and OpenSSL clients. The test
 * registers a small line protocol ("imap" listeners answer with it): a
 * greeting, ECHO of each line, STARTTLS, DEFER (work on the job pool) and
 * TLS? (the negotiated version). net runs in a thread of this process, so
 * the suite runs without fork.
 */
#include <config.h>

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "net/net.h"
#include "trace/metrics.h"
#include "util/config.h"

#define BUSY_LINE "BUSY too many connections"
#define IDLE_SECONDS 2

static struct config cfg;
static pthread_t net_thread;
static char tmpdir[] = "/tmp/postern-test-net-XXXXXX";
static char cert_path[300], key_path[300];
static uint16_t plain_port, tls_port;
static atomic_int closes_after_done; /* close() of a session whose job had finished */
static atomic_int closes_during_job; /* close() before DONE: must stay 0 */

/* ---- the test protocol ---- */

struct session {
	struct conn *conn;
	pthread_t loop_thread;
	bool job_running;
	bool job_done;
	int job_off_loop;
};

static void *proto_open(struct conn *c)
{
	struct session *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->conn = c;
	s->loop_thread = pthread_self();
	conn_printf(c, "* hello\r\n");
	return s;
}

static void job_work(struct store *st, void *arg)
{
	struct session *s = arg;

	(void)st;
	s->job_off_loop = !pthread_equal(pthread_self(), s->loop_thread);
	usleep(200 * 1000);
}

static void job_done(struct conn *c, void *arg)
{
	struct session *s = arg;

	s->job_running = false;
	s->job_done = true;
	conn_printf(c, "DEFERRED off-loop=%d on-loop=%d\r\n", s->job_off_loop,
		    pthread_equal(pthread_self(), s->loop_thread) ? 1 : 0);
}

static void proto_input(void *arg)
{
	struct session *s = arg;
	char line[64];
	ssize_t n;

	while (!s->job_running && (n = conn_readline(s->conn, line, sizeof(line))) != -1) {
		if (n == -2) {
			conn_printf(s->conn, "ERR too long\r\n");
		} else if (n == -3) {
			conn_printf(s->conn, "ERR bare LF\r\n");
		} else if (strcmp(line, "STARTTLS") == 0) {
			conn_printf(s->conn, "OK begin\r\n");
			if (conn_starttls(s->conn) != 0)
				conn_printf(s->conn, "ERR no tls\r\n");
		} else if (strcmp(line, "QUIT") == 0) {
			conn_printf(s->conn, "BYE\r\n");
			conn_close(s->conn);
			return;
		} else if (strcmp(line, "DEFER") == 0) {
			s->job_running = true;
			if (conn_defer(s->conn, job_work, job_done, s) != 0) {
				s->job_running = false;
				conn_printf(s->conn, "ERR defer\r\n");
			}
		} else if (strcmp(line, "TLS?") == 0) {
			conn_printf(s->conn, "TLS %s\r\n",
				    conn_tls_version(s->conn) ? conn_tls_version(s->conn) : "none");
		} else {
			conn_printf(s->conn, "ECHO %s\r\n", line);
		}
	}
}

static void proto_timeout(void *arg)
{
	struct session *s = arg;

	conn_printf(s->conn, "* BYE idle\r\n");
}

static void proto_close(void *arg)
{
	struct session *s = arg;

	if (s->job_running)
		atomic_fetch_add(&closes_during_job, 1);
	else if (s->job_done)
		atomic_fetch_add(&closes_after_done, 1);
	free(s);
}

static const struct protocol_ops test_proto = {
    .name = "imap",
    .busy_reply = BUSY_LINE,
    .open = proto_open,
    .input = proto_input,
    .tls_ready = NULL,
    .timeout = proto_timeout,
    .close = proto_close,
};

/* ---- helpers ---- */

/* Setup runs outside any test, where ck_assert cannot report. */
static void require(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "setup failed: %s\n", what);
		exit(EXIT_FAILURE);
	}
}

static uint16_t free_port(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	require(bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0, "bind");
	require(getsockname(fd, (struct sockaddr *)&sin, &len) == 0, "getsockname");
	close(fd);
	return ntohs(sin.sin_port);
}

static void make_certificate(void)
{
	EVP_PKEY *pkey = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *name;
	FILE *f;

	require(pkey != NULL, "key generation");
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, pkey);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1,
				   -1, 0);
	X509_set_issuer_name(x, name);
	require(X509_sign(x, pkey, EVP_sha256()) > 0, "signing");
	f = fopen(cert_path, "w");
	require(f != NULL, "writing the certificate");
	PEM_write_X509(f, x);
	fclose(f);
	f = fopen(key_path, "w");
	require(f != NULL, "writing the certificate");
	PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL);
	fclose(f);
	X509_free(x);
	EVP_PKEY_free(pkey);
}

static int tcp_connect(uint16_t port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
	struct timeval tv = {IDLE_SECONDS * 3, 0};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

/* Reads one line (CRLF stripped) from FD or SSL; returns its length, -1 at EOF. */
static int read_line(int fd, SSL *ssl, char *buf, size_t max)
{
	size_t n = 0;

	for (;;) {
		char ch;
		int r = ssl ? SSL_read(ssl, &ch, 1) : (int)recv(fd, &ch, 1, 0);

		if (r <= 0)
			return n ? (int)n : -1;
		if (ch == '\n')
			break;
		if (n + 1 < max)
			buf[n++] = ch;
	}
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	return (int)n;
}

static void send_text(int fd, SSL *ssl, const char *text)
{
	size_t len = strlen(text);

	if (ssl)
		ck_assert_int_eq(SSL_write(ssl, text, (int)len), (int)len);
	else
		ck_assert_int_eq(send(fd, text, len, MSG_NOSIGNAL), (ssize_t)len);
}

static void expect_line(int fd, SSL *ssl, const char *want)
{
	char line[512];

	ck_assert_int_ge(read_line(fd, ssl, line, sizeof(line)), 0);
	ck_assert_str_eq(line, want);
}

static SSL_CTX *client_ctx(int min_version, int max_version)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	ck_assert_ptr_nonnull(ctx);
	/* Let the client offer old versions, so it is the server that refuses. */
	SSL_CTX_set_security_level(ctx, 0);
	SSL_CTX_set_cipher_list(ctx, "ALL:@SECLEVEL=0");
	SSL_CTX_set_min_proto_version(ctx, min_version);
	SSL_CTX_set_max_proto_version(ctx, max_version);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	ck_assert_int_eq(SSL_CTX_load_verify_locations(ctx, cert_path, NULL), 1);
	return ctx;
}

static SSL *tls_connect(SSL_CTX *ctx, int fd)
{
	SSL *ssl = SSL_new(ctx);

	SSL_set_fd(ssl, fd);
	SSL_set_tlsext_host_name(ssl, "localhost");
	if (SSL_connect(ssl) != 1) {
		SSL_free(ssl);
		ERR_clear_error();
		return NULL;
	}
	return ssl;
}

/* Waits until the server has let go of every counted connection. */
static void wait_for_idle_server(void)
{
	for (int i = 0; i < 500 && metrics_connections_active("imap") > 0; i++)
		usleep(10 * 1000);
	ck_assert_int_eq(metrics_connections_active("imap"), 0);
}

/*
 * Each test starts on an idle server: a test that just closed its sockets
 * must not use up the next one's per-address slots while the server (slow
 * under sanitizers) has not yet seen the closes.
 */
static void before_each_test(void)
{
	wait_for_idle_server();
}

/* ---- tests ---- */

START_TEST(greeting_and_lines_split_on_crlf)
{
	int fd = tcp_connect(plain_port);

	expect_line(fd, NULL, "* hello");
	send_text(fd, NULL, "a\r\nb\r\n");
	expect_line(fd, NULL, "ECHO a");
	expect_line(fd, NULL, "ECHO b");
	send_text(fd, NULL, "c");
	usleep(50 * 1000);
	send_text(fd, NULL, "d\r");
	usleep(50 * 1000);
	send_text(fd, NULL, "\n");
	expect_line(fd, NULL, "ECHO cd");
	send_text(fd, NULL, "\r\n");
	expect_line(fd, NULL, "ECHO ");
	send_text(fd, NULL, "QUIT\r\n");
	expect_line(fd, NULL, "BYE");
	ck_assert_int_eq(read_line(fd, NULL, (char[8]){0}, 8), -1);
	close(fd);
}
END_TEST

START_TEST(overlong_line_is_reported_and_skipped)
{
	char big[200];
	int fd = tcp_connect(plain_port);

	expect_line(fd, NULL, "* hello");
	/* Complete overlong line in one piece. */
	memset(big, 'x', 100);
	memcpy(big + 100, "\r\nok\r\n", 7);
	send_text(fd, NULL, big);
	expect_line(fd, NULL, "ERR too long");
	expect_line(fd, NULL, "ECHO ok");
	/* An overlong line arriving in pieces is reported once, and its tail is dropped. */
	memset(big, 'y', 150);
	big[150] = '\0';
	send_text(fd, NULL, big);
	expect_line(fd, NULL, "ERR too long");
	send_text(fd, NULL, big);
	usleep(50 * 1000);
	send_text(fd, NULL, "tail\r\nafter\r\n");
	expect_line(fd, NULL, "ECHO after");
	/* Exactly the limit (max_line_length 64 counts the CRLF; the buffer holds 63). */
	memset(big, 'z', 62);
	memcpy(big + 62, "\r\n", 3);
	send_text(fd, NULL, big);
	ck_assert_int_eq(read_line(fd, NULL, big, sizeof(big)), 67);
	send_text(fd, NULL, "bare\n");
	expect_line(fd, NULL, "ERR bare LF");
	close(fd);
}
END_TEST

START_TEST(per_ip_limit_refuses_with_busy_line)
{
	int fds[3], extra;
	char line[128];

	for (int i = 0; i < 3; i++) {
		fds[i] = tcp_connect(plain_port);
		expect_line(fds[i], NULL, "* hello");
	}
	extra = tcp_connect(plain_port);
	expect_line(extra, NULL, BUSY_LINE);
	ck_assert_int_eq(read_line(extra, NULL, line, sizeof(line)), -1);
	close(extra);
	/* Implicit TLS clients are refused after the handshake, with the same line. */
	{
		SSL_CTX *ctx = client_ctx(TLS1_2_VERSION, 0);
		int tfd = tcp_connect(tls_port);
		SSL *ssl = tls_connect(ctx, tfd);

		ck_assert_ptr_nonnull(ssl);
		expect_line(tfd, ssl, BUSY_LINE);
		SSL_free(ssl);
		SSL_CTX_free(ctx);
		close(tfd);
	}
	close(fds[0]);
	for (int i = 0; i < 300 && metrics_connections_active("imap") > 2; i++)
		usleep(10 * 1000);
	extra = tcp_connect(plain_port);
	expect_line(extra, NULL, "* hello");
	close(extra);
	close(fds[1]);
	close(fds[2]);
}
END_TEST

START_TEST(idle_client_gets_timeout_reply_and_is_closed)
{
	struct timespec t0, t1;
	char line[64];
	int fd = tcp_connect(plain_port);

	expect_line(fd, NULL, "* hello");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	expect_line(fd, NULL, "* BYE idle");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ck_assert_int_eq(read_line(fd, NULL, line, sizeof(line)), -1);
	double elapsed = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	ck_assert_msg(elapsed > IDLE_SECONDS - 0.5 && elapsed < IDLE_SECONDS + 2,
		      "timeout after %.2fs", elapsed);
	close(fd);
}
END_TEST

START_TEST(implicit_tls_negotiates_1_2_or_newer)
{
	SSL_CTX *ctx = client_ctx(TLS1_2_VERSION, 0);
	int fd = tcp_connect(tls_port);
	SSL *ssl = tls_connect(ctx, fd);
	char line[128];

	ck_assert_ptr_nonnull(ssl);
	ck_assert_int_eq(SSL_get_verify_result(ssl), X509_V_OK);
	ck_assert_int_ge(SSL_version(ssl), TLS1_2_VERSION);
	expect_line(fd, ssl, "* hello");
	send_text(fd, ssl, "TLS?\r\n");
	ck_assert_int_gt(read_line(fd, ssl, line, sizeof(line)), 0);
	ck_assert_str_eq(line + 4, SSL_get_version(ssl));
	SSL_free(ssl);
	close(fd);

	/* TLS 1.2 alone still works, with an ECDHE AEAD suite. */
	SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
	fd = tcp_connect(tls_port);
	ssl = tls_connect(ctx, fd);
	ck_assert_ptr_nonnull(ssl);
	ck_assert_int_eq(SSL_version(ssl), TLS1_2_VERSION);
	ck_assert_msg(strncmp(SSL_get_cipher_name(ssl), "ECDHE-", 6) == 0 &&
			  (strstr(SSL_get_cipher_name(ssl), "GCM") ||
			   strstr(SSL_get_cipher_name(ssl), "CHACHA20")),
		      "cipher %s", SSL_get_cipher_name(ssl));
	SSL_free(ssl);
	close(fd);
	SSL_CTX_free(ctx);
}
END_TEST

START_TEST(tls_1_1_is_refused)
{
	SSL_CTX *ctx = client_ctx(TLS1_VERSION, TLS1_1_VERSION);
	int fd = tcp_connect(tls_port);
	SSL *ssl = tls_connect(ctx, fd);

	ck_assert_ptr_null(ssl);
	close(fd);
	/* A CBC-only TLS 1.2 client is refused too. */
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_cipher_list(ctx, "AES128-SHA:@SECLEVEL=0");
	fd = tcp_connect(tls_port);
	ssl = tls_connect(ctx, fd);
	ck_assert_ptr_null(ssl);
	close(fd);
	SSL_CTX_free(ctx);
}
END_TEST

START_TEST(starttls_drops_pipelined_plaintext)
{
	SSL_CTX *ctx = client_ctx(TLS1_2_VERSION, 0);
	int fd = tcp_connect(plain_port);
	SSL *ssl;
	char line[128];

	expect_line(fd, NULL, "* hello");
	send_text(fd, NULL, "TLS?\r\n");
	expect_line(fd, NULL, "TLS none");
	send_text(fd, NULL, "STARTTLS\r\nINJECTED\r\n");
	expect_line(fd, NULL, "OK begin");
	ssl = tls_connect(ctx, fd);
	ck_assert_ptr_nonnull(ssl);
	send_text(fd, ssl, "TLS?\r\n");
	ck_assert_int_gt(read_line(fd, ssl, line, sizeof(line)), 0);
	ck_assert_msg(strncmp(line, "TLS TLSv1.", 10) == 0, "got \"%s\"", line);
	send_text(fd, ssl, "STARTTLS\r\n");
	expect_line(fd, ssl, "OK begin");
	expect_line(fd, ssl, "ERR no tls");
	send_text(fd, ssl, "QUIT\r\n");
	expect_line(fd, ssl, "BYE");
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	close(fd);
}
END_TEST

START_TEST(defer_runs_work_off_loop_and_done_on_loop)
{
	int fd = tcp_connect(plain_port);
	int before = atomic_load(&closes_after_done);

	expect_line(fd, NULL, "* hello");
	/* The second line waits in the buffer while the job runs, then is handled. */
	send_text(fd, NULL, "DEFER\r\nAFTER\r\n");
	expect_line(fd, NULL, "DEFERRED off-loop=1 on-loop=1");
	expect_line(fd, NULL, "ECHO AFTER");
	close(fd);

	/* The client leaves while its job runs: the session lives until DONE. */
	fd = tcp_connect(plain_port);
	expect_line(fd, NULL, "* hello");
	send_text(fd, NULL, "DEFER\r\n");
	close(fd);
	for (int i = 0; i < 300 && atomic_load(&closes_after_done) < before + 2; i++)
		usleep(10 * 1000);
	ck_assert_int_eq(atomic_load(&closes_after_done), before + 2);
	ck_assert_int_eq(atomic_load(&closes_during_job), 0);
}
END_TEST

/* ---- setup ---- */

static void *run_net(void *arg)
{
	char err[512];

	(void)arg;
	if (net_run(&cfg, err, sizeof(err)) != 0)
		fprintf(stderr, "net_run: %s\n", err);
	return NULL;
}

static void start_server(void)
{
	char text[2048], err[512];

	require(mkdtemp(tmpdir) != NULL, "mkdtemp");
	snprintf(cert_path, sizeof(cert_path), "%s/cert.pem", tmpdir);
	snprintf(key_path, sizeof(key_path), "%s/key.pem", tmpdir);
	make_certificate();
	plain_port = free_port();
	tls_port = free_port();
	snprintf(text, sizeof(text),
		 "[server]\ndata_dir = %s\nworkers = 2\n"
		 "[tls]\ncert_file = %s\nkey_file = %s\n"
		 "[limits]\nmax_connections_per_ip = 3\nidle_timeout = %d\nmax_line_length = 64\n"
		 "[listener plain]\nprotocol = imap\naddress = 127.0.0.1\nport = %u\n"
		 "tls = starttls\n"
		 "[listener secure]\nprotocol = imap\naddress = 127.0.0.1\nport = %u\n"
		 "tls = implicit\n",
		 tmpdir, cert_path, key_path, IDLE_SECONDS, (unsigned)plain_port,
		 (unsigned)tls_port);
	if (config_parse("test_net.conf", text, strlen(text), &cfg, err, sizeof(err)) != 0 ||
	    net_tls_reload(&cfg, err, sizeof(err)) != 0 || net_bind(&cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "setup: %s\n", err);
		exit(EXIT_FAILURE);
	}
	pthread_create(&net_thread, NULL, run_net, NULL);
}

static void stop_server(void)
{
	net_stop();
	pthread_join(net_thread, NULL);
	unlink(cert_path);
	unlink(key_path);
	rmdir(tmpdir);
}

int main(void)
{
	Suite *s = suite_create("net");
	TCase *tc = tcase_create("loopback");
	SRunner *sr;
	int failed;

	signal(SIGPIPE, SIG_IGN);
	net_register_protocol(&test_proto);
	start_server();
	tcase_set_timeout(tc, 30);
	tcase_add_checked_fixture(tc, before_each_test, NULL);
	tcase_add_test(tc, greeting_and_lines_split_on_crlf);
	tcase_add_test(tc, overlong_line_is_reported_and_skipped);
	tcase_add_test(tc, per_ip_limit_refuses_with_busy_line);
	tcase_add_test(tc, idle_client_gets_timeout_reply_and_is_closed);
	tcase_add_test(tc, implicit_tls_negotiates_1_2_or_newer);
	tcase_add_test(tc, tls_1_1_is_refused);
	tcase_add_test(tc, starttls_drops_pipelined_plaintext);
	tcase_add_test(tc, defer_runs_work_off_loop_and_done_on_loop);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	stop_server();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
