/*
 * test_config.c - postern.conf parsing: defaults, every key type, and one
 * test per class of error, each checking the "file:line:" of the message.
 */
#include <config.h>

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/config.h"

static struct config cfg;
static char err[1024];
static char certdir[] = "/tmp/postern-test-config-XXXXXX";
static char cert_path[256], key_path[256];

static int parse(const char *text)
{
	err[0] = '\0';
	return config_parse("t.conf", text, strlen(text), &cfg, err, sizeof(err));
}

/* Asserts TEXT fails with a message starting "t.conf:LINE:" and containing WHAT. */
static void assert_error(const char *text, unsigned line, const char *what)
{
	char prefix[32];

	ck_assert_int_eq(parse(text), -1);
	snprintf(prefix, sizeof(prefix), "t.conf:%u: ", line);
	ck_assert_msg(strncmp(err, prefix, strlen(prefix)) == 0, "expected %s..., got \"%s\"",
		      prefix, err);
	ck_assert_msg(strstr(err, what) != NULL, "expected \"%s\" in \"%s\"", what, err);
}

static void setup_files(void)
{
	FILE *f;

	ck_assert_ptr_nonnull(mkdtemp(certdir));
	snprintf(cert_path, sizeof(cert_path), "%s/cert.pem", certdir);
	snprintf(key_path, sizeof(key_path), "%s/key.pem", certdir);
	f = fopen(cert_path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("cert\n", f);
	fclose(f);
	f = fopen(key_path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("key\n", f);
	fclose(f);
}

static void teardown_files(void)
{
	unlink(cert_path);
	unlink(key_path);
	rmdir(certdir);
	memcpy(certdir + strlen(certdir) - 6, "XXXXXX", 6);
}

START_TEST(defaults_are_safe)
{
	ck_assert_int_eq(parse(""), 0);
	ck_assert_str_eq(cfg.server.hostname, "localhost");
	ck_assert_str_eq(cfg.server.data_dir, "/var/lib/postern");
	ck_assert_str_eq(cfg.server.user, "postern");
	ck_assert_str_eq(cfg.tls.min_version, "1.2");
	ck_assert_int_eq(cfg.store.engine, STORE_ENGINE_SQLITE);
	ck_assert_str_eq(cfg.store.sqlite_path, "/var/lib/postern/postern.db");
	ck_assert_str_eq(cfg.queue.key_file, "/var/lib/postern/queue.key");
	ck_assert_uint_eq(cfg.limits.max_connections, 1000);
	ck_assert_uint_eq(cfg.limits.max_connections_per_ip, 20);
	ck_assert_uint_eq(cfg.limits.idle_timeout, 300);
	ck_assert_uint_eq(cfg.limits.max_line_length, 4096);
	ck_assert_uint_eq(cfg.limits.max_message_size, 36700160);
	ck_assert_uint_eq(cfg.auth.cache_ttl, 600);
	ck_assert_uint_eq(cfg.auth.argon2_mem, 64u * 1024 * 1024);
	ck_assert(cfg.metrics.enabled);
	ck_assert_uint_eq(cfg.metrics.port, 9465);
	ck_assert_uint_eq(cfg.n_listeners, 0);
}
END_TEST

START_TEST(full_file_is_read)
{
	char text[2048];

	snprintf(text, sizeof(text),
		 "# Postern\n"
		 "[server]\n"
		 "hostname = mail.example.org   # the public name\n"
		 "data_dir = /srv/post#ern\n"
		 "workers = 4\n"
		 "log_level = debug\n"
		 "log_syslog = yes\n"
		 "[tls]\n"
		 "cert_file = %s\n"
		 "key_file = %s\n"
		 "min_version = 1.3\n"
		 "[store]\n"
		 "engine = mariadb\n"
		 "mariadb_port = 3307\n"
		 "mariadb_database = mail\n"
		 "[limits]\n"
		 "max_message_size = 10M\n"
		 "max_line_length = 2k\n"
		 "idle_timeout = 60\n"
		 "[auth]\n"
		 "argon2_mem = 1G\n"
		 "argon2_ops = 3\n"
		 "cache_ttl = 0\n"
		 "[metrics]\n"
		 "enabled = off\n"
		 "address = ::1\n"
		 "\n"
		 "[listener mx]\n"
		 "protocol = smtp\n"
		 "address = 0.0.0.0\n"
		 "port = 25\n"
		 "tls = starttls\n"
		 "[listener pop3s]\n"
		 "protocol = pop3\n"
		 "address = ::\n"
		 "port = 995\n"
		 "tls = implicit\n",
		 cert_path, key_path);
	ck_assert_msg(parse(text) == 0, "%s", err);
	ck_assert_str_eq(cfg.path, "t.conf");
	ck_assert_str_eq(cfg.server.hostname, "mail.example.org");
	ck_assert_str_eq(cfg.server.data_dir, "/srv/post#ern");
	ck_assert_uint_eq(cfg.server.workers, 4);
	ck_assert_str_eq(cfg.server.log_level, "debug");
	ck_assert(cfg.server.log_syslog);
	ck_assert_str_eq(cfg.tls.cert_file, cert_path);
	ck_assert_str_eq(cfg.tls.min_version, "1.3");
	ck_assert_int_eq(cfg.store.engine, STORE_ENGINE_MARIADB);
	ck_assert_uint_eq(cfg.store.mariadb_port, 3307);
	ck_assert_str_eq(cfg.store.mariadb_database, "mail");
	ck_assert_str_eq(cfg.store.sqlite_path, "/srv/post#ern/postern.db");
	ck_assert_uint_eq(cfg.limits.max_message_size, 10u * 1024 * 1024);
	ck_assert_uint_eq(cfg.limits.max_line_length, 2048);
	ck_assert_uint_eq(cfg.limits.idle_timeout, 60);
	ck_assert_uint_eq(cfg.auth.argon2_mem, 1024u * 1024 * 1024);
	ck_assert_uint_eq(cfg.auth.argon2_ops, 3);
	ck_assert_uint_eq(cfg.auth.cache_ttl, 0);
	ck_assert(!cfg.metrics.enabled);
	ck_assert_str_eq(cfg.metrics.address, "::1");
	ck_assert_uint_eq(cfg.n_listeners, 2);
	ck_assert_str_eq(cfg.listeners[0].name, "mx");
	ck_assert_str_eq(cfg.listeners[0].protocol, "smtp");
	ck_assert_str_eq(cfg.listeners[0].address, "0.0.0.0");
	ck_assert_uint_eq(cfg.listeners[0].port, 25);
	ck_assert_int_eq(cfg.listeners[0].tls, TLS_MODE_STARTTLS);
	ck_assert_str_eq(cfg.listeners[1].name, "pop3s");
	ck_assert_int_eq(cfg.listeners[1].tls, TLS_MODE_IMPLICIT);
	ck_assert_ptr_eq(config_find_listener(&cfg, "pop3"), &cfg.listeners[1]);
	ck_assert_ptr_null(config_find_listener(&cfg, "imap"));
}
END_TEST

START_TEST(load_reads_a_file_and_names_it_in_errors)
{
	char path[300];
	FILE *f;

	snprintf(path, sizeof(path), "%s/p.conf", certdir);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("[server]\nworkers = 3\n[limits]\nmax_errors = x\n", f);
	fclose(f);
	ck_assert_int_eq(config_load(path, &cfg, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "p.conf:4: ") != NULL, "%s", err);
	f = fopen(path, "w");
	fputs("[server]\nworkers = 3\n", f);
	fclose(f);
	ck_assert_int_eq(config_load(path, &cfg, err, sizeof(err)), 0);
	ck_assert_uint_eq(cfg.server.workers, 3);
	unlink(path);
	ck_assert_int_eq(config_load(path, &cfg, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "p.conf") != NULL, "%s", err);
}
END_TEST

START_TEST(unknown_section_is_an_error)
{
	assert_error("[server]\n\n[srever]\n", 3, "srever");
	assert_error("[listener]\n", 1, "listener");
	assert_error("[server\n", 1, "section");
}
END_TEST

START_TEST(unknown_key_is_an_error)
{
	assert_error("[server]\nhostname = a\nhostnmae = b\n", 3, "hostnmae");
	assert_error("[listener x]\nprotocol = smtp\ncolor = red\n", 3, "color");
	assert_error("hostname = a\n", 1, "section");
	assert_error("[server]\njust words\n", 2, "key = value");
}
END_TEST

START_TEST(bad_number_is_an_error)
{
	assert_error("[server]\nworkers = many\n", 2, "workers");
	assert_error("[limits]\nmax_connections = -1\n", 2, "max_connections");
	assert_error("[limits]\nidle_timeout = 99999999999\n", 2, "idle_timeout");
	assert_error("[limits]\nmax_errors = 10 0\n", 2, "max_errors");
	assert_error("[auth]\nargon2_ops = \n", 2, "argon2_ops");
}
END_TEST

START_TEST(bad_port_is_an_error)
{
	assert_error("[metrics]\nport = 0\n", 2, "port");
	assert_error("[metrics]\nport = 65536\n", 2, "65536");
	assert_error("[listener a]\nport = http\n", 2, "http");
}
END_TEST

START_TEST(bad_bool_is_an_error)
{
	assert_error("[server]\nlog_syslog = maybe\n", 2, "maybe");
	assert_error("[metrics]\nenabled = 2\n", 2, "enabled");
}
END_TEST

START_TEST(bad_size_is_an_error)
{
	assert_error("[limits]\nmax_message_size = 10X\n", 2, "max_message_size");
	assert_error("[limits]\nmax_message_size = M\n", 2, "max_message_size");
	assert_error("[auth]\nargon2_mem = 99999999999999999999G\n", 2, "argon2_mem");
}
END_TEST

START_TEST(bad_enumerations_are_errors)
{
	assert_error("[listener a]\ntls = ssl\n", 2, "none, starttls or implicit");
	assert_error("[listener a]\nprotocol = http\n", 2, "smtp, submission, pop3 or imap");
	assert_error("[store]\nengine = postgres\n", 2, "sqlite or mariadb");
	assert_error("[server]\nlog_level = loud\n", 2, "loud");
	assert_error("[tls]\nmin_version = 1.1\n", 2, "1.1");
	assert_error("[listener a]\naddress = localhost\n", 2, "numeric");
}
END_TEST

START_TEST(listener_needs_protocol_address_and_port)
{
	assert_error("[listener a]\naddress = 127.0.0.1\nport = 25\n", 1, "protocol");
	assert_error("[listener a]\nprotocol = smtp\nport = 25\n", 1, "address");
	assert_error("[server]\n[listener a]\nprotocol = smtp\naddress = ::1\n", 2, "port");
}
END_TEST

START_TEST(duplicate_listener_name_is_an_error)
{
	assert_error("[listener a]\nprotocol = smtp\naddress = ::1\nport = 25\n"
		     "[listener a]\n",
		     5, "duplicate listener \"a\"");
}
END_TEST

START_TEST(duplicate_listener_address_is_an_error)
{
	assert_error("[listener a]\nprotocol = smtp\naddress = 127.0.0.1\nport = 25\n"
		     "[listener b]\nprotocol = pop3\naddress = 127.0.0.1\nport = 25\n",
		     8, "like listener \"a\"");
	/* Same port on another address is fine; "::1" and "0:0::1" are the same. */
	ck_assert_msg(parse("[listener a]\nprotocol = smtp\naddress = 127.0.0.1\nport = 25\n"
			    "[listener b]\nprotocol = smtp\naddress = 127.0.0.2\nport = 25\n") == 0,
		      "%s", err);
	assert_error("[listener a]\nprotocol = smtp\naddress = ::1\nport = 25\n"
		     "[listener b]\nprotocol = smtp\naddress = 0:0::1\nport = 25\n",
		     8, "port 25");
}
END_TEST

START_TEST(tls_listener_without_certificate_is_an_error)
{
	assert_error("[server]\n[listener secure]\nprotocol = pop3\naddress = ::1\nport = 995\n"
		     "tls = implicit\n",
		     2, "secure");
	ck_assert_int_eq(parse("[listener plain]\nprotocol = pop3\naddress = ::1\nport = 110\n"
			       "tls = none\n"),
			 0);
}
END_TEST

START_TEST(unreadable_certificate_is_an_error)
{
	char text[1024];

	snprintf(text, sizeof(text), "[tls]\ncert_file = %s/missing.pem\nkey_file = %s\n", certdir,
		 key_path);
	assert_error(text, 2, "missing.pem");
	snprintf(text, sizeof(text), "[tls]\ncert_file = %s\n\nkey_file = %s/nokey.pem\n",
		 cert_path, certdir);
	assert_error(text, 4, "nokey.pem");
	snprintf(text, sizeof(text), "[tls]\ncert_file = %s\n", cert_path);
	assert_error(text, 2, "together");
}
END_TEST

START_TEST(mariadb_without_database_is_an_error)
{
	assert_error("[store]\nengine = mariadb\nmariadb_database =\n", 3, "mariadb_database");
	ck_assert_int_eq(parse("[store]\nengine = mariadb\n"), 0);
	ck_assert_str_eq(cfg.store.mariadb_database, "postern");
}
END_TEST

START_TEST(overlong_values_and_lines_are_errors)
{
	char text[6000];

	memset(text, 'a', sizeof(text));
	memcpy(text, "[server]\nhostname = ", 20);
	text[sizeof(text) - 2] = '\n';
	text[sizeof(text) - 1] = '\0';
	assert_error(text, 2, "4096");
	memcpy(text + 300, "\n", 2);
	assert_error(text, 2, "hostname");
	assert_error(
	    "[listener aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]\n", 1,
	    "too long");
	ck_assert_int_eq(config_parse("t.conf", "[server]\0x", 10, &cfg, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "t.conf:1: ") == err, "%s", err);
}
END_TEST

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("parse");

	tcase_add_checked_fixture(tc, setup_files, teardown_files);
	tcase_add_test(tc, defaults_are_safe);
	tcase_add_test(tc, full_file_is_read);
	tcase_add_test(tc, load_reads_a_file_and_names_it_in_errors);
	tcase_add_test(tc, unknown_section_is_an_error);
	tcase_add_test(tc, unknown_key_is_an_error);
	tcase_add_test(tc, bad_number_is_an_error);
	tcase_add_test(tc, bad_port_is_an_error);
	tcase_add_test(tc, bad_bool_is_an_error);
	tcase_add_test(tc, bad_size_is_an_error);
	tcase_add_test(tc, bad_enumerations_are_errors);
	tcase_add_test(tc, listener_needs_protocol_address_and_port);
	tcase_add_test(tc, duplicate_listener_name_is_an_error);
	tcase_add_test(tc, duplicate_listener_address_is_an_error);
	tcase_add_test(tc, tls_listener_without_certificate_is_an_error);
	tcase_add_test(tc, unreadable_certificate_is_an_error);
	tcase_add_test(tc, mariadb_without_database_is_an_error);
	tcase_add_test(tc, overlong_values_and_lines_are_errors);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(config_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
