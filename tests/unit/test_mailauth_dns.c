/*
 * test_mailauth_dns.c - SPF and DMARC verdicts against a real DNS server:
 * dnsmasq on a loopback port serving test zones, clients at documentation
 * addresses (libspf2 passes loopback clients unless [mailauth]
 * check_loopback asks otherwise), a two-label public suffix, and a DNS
 * server that never answers.
 */
#include <config.h>

#include <check.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mailauth/mailauth.h"

static pid_t dns_pid;

static const char *const records[] = {
    "--txt-record=fail.test,v=spf1 ip4:192.0.2.1 -all",
    "--txt-record=_dmarc.fail.test,v=DMARC1; p=reject",
    "--txt-record=soft.test,v=spf1 ip4:192.0.2.1 ~all",
    "--txt-record=neutral.test,v=spf1 ?all",
    "--txt-record=perm.test,v=spf1 ip4:not-an-address -all",
    "--txt-record=mx.strict.test,v=spf1 ip4:192.0.2.1 -all",
    "--txt-record=_dmarc.strict.test,v=DMARC1; p=reject; aspf=s",
    "--txt-record=mx.relaxed.test,v=spf1 ip4:192.0.2.1 -all",
    "--txt-record=_dmarc.relaxed.test,v=DMARC1; p=quarantine",
    /* a two-label public suffix: example.co.uk and other.co.uk are strangers */
    "--local=/co.uk/",
    "--txt-record=_dmarc.example.co.uk,v=DMARC1; p=reject",
    "--txt-record=a.b.example.co.uk,v=spf1 ip4:192.0.2.1 -all",
    "--txt-record=other.co.uk,v=spf1 ip4:192.0.2.1 -all",
};

static unsigned free_port(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) != 0)
		abort();
	close(fd);
	return ntohs(sin.sin_port);
}

/* True once something accepts TCP connections on 127.0.0.1:PORT. */
static bool accepts(unsigned port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	bool ok;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = fd >= 0 && connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

/* Starts dnsmasq on a free port; returns its "addr@port" in OUT. */
static int start_dns_once(char *out, size_t outlen)
{
	static const char *const paths[] = {"/usr/sbin/dnsmasq", "/sbin/dnsmasq",
					    "/usr/bin/dnsmasq"};
	const char *path = NULL;
	char port_arg[32];
	const char *argv[32];
	size_t n = 0;
	unsigned port = free_port();

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		if (access(paths[i], X_OK) == 0)
			path = paths[i];
	if (!path)
		return -1;
	snprintf(port_arg, sizeof(port_arg), "--port=%u", port);
	argv[n++] = path;
	argv[n++] = "--keep-in-foreground";
	argv[n++] = "--conf-file=/dev/null";
	argv[n++] = "--no-resolv";
	argv[n++] = "--no-hosts";
	argv[n++] = "--local=/test/";
	argv[n++] = "--listen-address=127.0.0.1";
	argv[n++] = "--bind-interfaces";
	argv[n++] = "--pid-file=";
	argv[n++] = port_arg;
	if (getuid() == 0)
		argv[n++] = "--user=nobody";
	for (size_t i = 0; i < sizeof(records) / sizeof(records[0]); i++)
		argv[n++] = records[i];
	argv[n] = NULL;
	dns_pid = fork();
	if (dns_pid < 0)
		return -1;
	if (dns_pid == 0) {
		execv(path, (char *const *)(uintptr_t)argv);
		_exit(127);
	}
	/* Ready when it accepts on its TCP port (it binds UDP and TCP together);
	 * a fixed pause was too short on a busy machine. */
	for (int i = 0; i < 600; i++) {
		if (accepts(port)) {
			snprintf(out, outlen, "127.0.0.1@%u", port);
			return 0;
		}
		if (waitpid(dns_pid, NULL, WNOHANG) == dns_pid)
			return -1; /* e.g. the port was taken since free_port() */
		usleep(50 * 1000);
	}
	kill(dns_pid, SIGKILL);
	waitpid(dns_pid, NULL, 0);
	return -1;
}

static int start_dns(char *out, size_t outlen)
{
	for (int attempt = 0; attempt < 3; attempt++)
		if (start_dns_once(out, outlen) == 0)
			return 0;
	return -1;
}

static void check(const char *ip, const char *mail_from, const char *from,
		  struct mailauth_result *r)
{
	char msg[512];

	snprintf(msg, sizeof(msg), "From: <%s>\r\nSubject: t\r\n\r\nbody\r\n", from);
	mailauth_check(ip, "client.test", mail_from, (const unsigned char *)msg, strlen(msg), r);
}

START_TEST(test_spf_fail_and_dmarc_reject)
{
	struct mailauth_result r;

	check("198.51.100.7", "eve@fail.test", "eve@fail.test", &r);
	ck_assert_int_eq(r.spf, MAILAUTH_FAIL);
	ck_assert_str_eq(r.mailfrom_domain, "fail.test");
	ck_assert_int_eq(r.dkim, MAILAUTH_NONE);
	ck_assert_int_eq(r.dmarc, MAILAUTH_FAIL);
	ck_assert_int_eq(r.policy, MAILAUTH_POLICY_REJECT);
}
END_TEST

START_TEST(test_spf_pass_aligns_dmarc)
{
	struct mailauth_result r;

	check("192.0.2.1", "ann@fail.test", "ann@fail.test", &r);
	ck_assert_int_eq(r.spf, MAILAUTH_PASS);
	ck_assert_int_eq(r.dmarc, MAILAUTH_PASS);
}
END_TEST

START_TEST(test_spf_softfail_neutral_none_permerror)
{
	struct mailauth_result r;

	check("198.51.100.7", "s@soft.test", "s@soft.test", &r);
	ck_assert_int_eq(r.spf, MAILAUTH_SOFTFAIL);
	ck_assert_int_eq(r.dmarc, MAILAUTH_NONE);
	check("198.51.100.7", "n@neutral.test", "n@neutral.test", &r);
	ck_assert_int_eq(r.spf, MAILAUTH_NEUTRAL);
	check("198.51.100.7", "x@nothing.test", "x@nothing.test", &r);
	ck_assert_int_eq(r.spf, MAILAUTH_NONE);
	check("198.51.100.7", "p@perm.test", "p@perm.test", &r);
	ck_assert_int_eq(r.spf, MAILAUTH_PERMERROR);
}
END_TEST

START_TEST(test_dmarc_strict_and_relaxed_alignment)
{
	struct mailauth_result r;

	/* SPF passes for a subdomain: relaxed alignment accepts it, strict does not */
	check("192.0.2.1", "b@mx.relaxed.test", "x@relaxed.test", &r);
	ck_assert_int_eq(r.spf, MAILAUTH_PASS);
	ck_assert_int_eq(r.dmarc, MAILAUTH_PASS);
	check("192.0.2.1", "b@mx.strict.test", "x@strict.test", &r);
	ck_assert_int_eq(r.spf, MAILAUTH_PASS);
	ck_assert_int_eq(r.dmarc, MAILAUTH_FAIL);
	ck_assert_int_eq(r.policy, MAILAUTH_POLICY_REJECT);
	/* an unrelated envelope domain never aligns */
	check("192.0.2.1", "b@fail.test", "x@relaxed.test", &r);
	ck_assert_int_eq(r.dmarc, MAILAUTH_FAIL);
	ck_assert_int_eq(r.policy, MAILAUTH_POLICY_QUARANTINE);
}
END_TEST

START_TEST(test_dmarc_org_domain_under_a_multi_label_suffix)
{
	struct mailauth_result r;

	/* relaxed: a.b.example.co.uk belongs to example.co.uk */
	check("192.0.2.1", "b@a.b.example.co.uk", "x@example.co.uk", &r);
	ck_assert_int_eq(r.spf, MAILAUTH_PASS);
	ck_assert_int_eq(r.dmarc, MAILAUTH_PASS);
	/* other.co.uk shares only the public suffix co.uk: no alignment */
	check("192.0.2.1", "b@other.co.uk", "x@example.co.uk", &r);
	ck_assert_int_eq(r.spf, MAILAUTH_PASS);
	ck_assert_int_eq(r.dmarc, MAILAUTH_FAIL);
	ck_assert_int_eq(r.policy, MAILAUTH_POLICY_REJECT);
	/* a subdomain without a record of its own falls back to the record of
	 * example.co.uk (not of co.uk) */
	check("192.0.2.1", "b@other.co.uk", "x@a.b.example.co.uk", &r);
	ck_assert_int_eq(r.dmarc, MAILAUTH_FAIL);
	ck_assert_int_eq(r.policy, MAILAUTH_POLICY_REJECT);
	check("192.0.2.1", "b@a.b.example.co.uk", "x@a.b.example.co.uk", &r);
	ck_assert_int_eq(r.dmarc, MAILAUTH_PASS);
}
END_TEST

START_TEST(test_loopback_client_checked_when_asked)
{
	struct mailauth_result r;

	/* libspf2's own rule: loopback always passes */
	check("127.0.0.1", "eve@fail.test", "eve@fail.test", &r);
	ck_assert_int_eq(r.spf, MAILAUTH_PASS);
	mailauth_set_options(&(struct mailauth_options){.check_loopback = true});
	check("127.0.0.1", "eve@fail.test", "eve@fail.test", &r);
	ck_assert_int_eq(r.spf, MAILAUTH_FAIL);
	ck_assert_int_eq(r.dmarc, MAILAUTH_FAIL);
	check("127.0.0.1", "s@soft.test", "s@soft.test", &r);
	ck_assert_int_eq(r.spf, MAILAUTH_SOFTFAIL);
	check("127.0.0.1", "x@nothing.test", "x@nothing.test", &r);
	ck_assert_int_eq(r.spf, MAILAUTH_NONE);
	check("127.0.0.1", "p@perm.test", "p@perm.test", &r);
	ck_assert_int_eq(r.spf, MAILAUTH_PERMERROR);
}
END_TEST

/* A DNS server that takes every query and never answers. The check runs in
 * a child process of its own, whose first check sets up the resolver with
 * this server (the resolver is set once per process). Exit status 0 when
 * all went as expected. */
static int unanswered_dns_child(int fd)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof(sin);
	char upstream[64], buf[512];
	struct mailauth_result r;
	struct timespec t0, t1;
	double elapsed;

	if (getsockname(fd, (struct sockaddr *)&sin, &len) != 0)
		return 10;
	snprintf(upstream, sizeof(upstream), "127.0.0.1@%u", ntohs(sin.sin_port));
	mailauth_set_resolver(upstream);
	mailauth_set_options(&(struct mailauth_options){.dns_timeout_ms = 1500});
	clock_gettime(CLOCK_MONOTONIC, &t0);
	check("198.51.100.7", "eve@fail.test", "eve@fail.test", &r);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	elapsed = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	if (elapsed < 1.4 || elapsed >= 3.5) {
		fprintf(stderr, "the check took %.2f s\n", elapsed);
		return 11;
	}
	if (r.spf != MAILAUTH_TEMPERROR || r.dmarc != MAILAUTH_TEMPERROR) {
		fprintf(stderr, "spf=%d dmarc=%d\n", r.spf, r.dmarc);
		return 12;
	}
	/* the queries did reach the server */
	if (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) <= 0)
		return 13;
	return 0;
}

START_TEST(test_unanswered_dns_ends_in_temperror_within_the_timeout)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	int fd = socket(AF_INET, SOCK_DGRAM, 0), status = -1;
	pid_t pid;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(unanswered_dns_child(fd));
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	close(fd);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("mailauth_dns");
	TCase *tc = tcase_create("spf_dmarc");
	char upstream[64];
	SRunner *sr;
	int failed;

	if (start_dns(upstream, sizeof(upstream)) != 0) {
		fprintf(stderr,
			"test_mailauth_dns: dnsmasq is needed (script/bootstrap installs it)\n");
		return EXIT_FAILURE;
	}
	mailauth_set_resolver(upstream);
	tcase_add_test(tc, test_spf_fail_and_dmarc_reject);
	tcase_add_test(tc, test_spf_pass_aligns_dmarc);
	tcase_add_test(tc, test_spf_softfail_neutral_none_permerror);
	tcase_add_test(tc, test_dmarc_strict_and_relaxed_alignment);
	tcase_add_test(tc, test_dmarc_org_domain_under_a_multi_label_suffix);
	tcase_add_test(tc, test_loopback_client_checked_when_asked);
	tcase_add_test(tc, test_unanswered_dns_ends_in_temperror_within_the_timeout);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	kill(dns_pid, SIGTERM);
	waitpid(dns_pid, NULL, 0);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
