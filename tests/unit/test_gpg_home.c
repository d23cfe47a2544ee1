/*
 * test_gpg_home.c - crypto/gpg_home.c, gpg_keys.c, gpg_wkd.c: z-base-32 and
 * WKD hashes against gpg-wks-client's vectors, home naming, the passphrase
 * derivation (stable, per user, surviving a password change), the bound on
 * gpg-agents, and OpenPGP and S/MIME secret keys usable only with the
 * unlocked key.
 */
#include "config.h"

#include <check.h>
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <gpgme.h>

#include "crypto/crypto.h"
#include "crypto/gpg_home.h"
#include "crypto/smime_ca.h"
#include "util/config.h"

static char tmpdir[256];
static struct config cfg;

static void setup(void)
{
	ck_assert_int_eq(crypto_setup(), 0);
	crypto_set_argon2_cost(1ULL, 8192UL);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/pgh-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	config_defaults(&cfg);
	snprintf(cfg.server.data_dir, sizeof(cfg.server.data_dir), "%s", tmpdir);
	/* No daemon account: the homes may belong to whoever runs the test. */
	cfg.server.user[0] = '\0';
}

static void teardown(void)
{
	char cmd[512];

	gpg_agents_stop_all();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	ck_assert_int_eq(system(cmd), 0);
}

static struct user_key *new_key(const char *password)
{
	unsigned char pub[32], *wrapped;
	size_t wrapped_len;
	struct user_key *k;

	ck_assert_int_eq(
	    crypto_user_keygen(password, strlen(password), pub, &wrapped, &wrapped_len, &k), 0);
	free(wrapped);
	return k;
}

/* gpg-agent processes whose command line names a home under tmpdir. */
static unsigned agents_in_tmpdir(void)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	unsigned n = 0;

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)) != NULL) {
		char path[300], buf[4096];
		FILE *f;
		size_t len;
		bool agent = false, ours = false;

		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/cmdline", e->d_name);
		f = fopen(path, "r");
		if (f == NULL)
			continue;
		len = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		for (size_t off = 0; off < len; off += strlen(buf + off) + 1) {
			buf[len] = '\0';
			if (strstr(buf + off, "gpg-agent") != NULL)
				agent = true;
			if (strncmp(buf + off, tmpdir, strlen(tmpdir)) == 0)
				ours = true;
		}
		if (agent && ours)
			n++;
	}
	closedir(d);
	return n;
}

/* gpgconf --kill returns before the agent is gone (it exits at its next
 * timer tick, seconds later on a busy machine): wait (bounded) for COUNT. */
static unsigned agents_settle(unsigned count)
{
	unsigned n = agents_in_tmpdir();

	for (int i = 0; i < 200 && n > count; i++) {
		usleep(100 * 1000);
		n = agents_in_tmpdir();
	}
	return n;
}

/* Makes the home's agent run, as any secret-key operation would. */
static void touch_agent(struct gpg_user *u)
{
	char cmd[1200];

	snprintf(cmd, sizeof(cmd), "gpg-connect-agent --homedir '%s' /bye >/dev/null 2>&1",
		 gpg_user_homedir(u, GPGME_PROTOCOL_OpenPGP));
	ck_assert_int_eq(system(cmd), 0);
}

START_TEST(zbase32_matches_gpg_wks_client)
{
	char out[64];

	/* gpg-wks-client --print-wkd-hash Joe.Doe@Example.ORG */
	ck_assert_int_eq(gpg_wkd_hash("Joe.Doe", 7, out), 0);
	ck_assert_str_eq(out, "iy9q119eutrkn8s1mk4r39qejnbu3n5q");
	/* gpg-wks-client --print-wkd-url alice@example.org */
	ck_assert_int_eq(gpg_wkd_hash("alice", 5, out), 0);
	ck_assert_str_eq(out, "kei1q4tipxxu1yj79k9kfukdhfy631xe");
	/* Case does not matter. */
	ck_assert_int_eq(gpg_wkd_hash("ALICE", 5, out), 0);
	ck_assert_str_eq(out, "kei1q4tipxxu1yj79k9kfukdhfy631xe");
	/* z-base-32 itself: one zero byte is "yy", 0xff is "9h" (bits 11111 111(00)). */
	ck_assert_int_eq(gpg_zbase32((const unsigned char *)"\0", 1, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "yy");
	ck_assert_int_eq(gpg_zbase32((const unsigned char *)"\xff", 1, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "9h");
	ck_assert_int_eq(gpg_zbase32((const unsigned char *)"\xff", 1, out, 2), -1);
	ck_assert_int_eq(gpg_wkd_hash("", 0, out), -1);
}
END_TEST

START_TEST(wkd_paths_refuse_traversal)
{
	char p[512];

	ck_assert_int_eq(
	    gpg_wkd_path("/d", "Example.ORG", 11, "kei1q4tipxxu1yj79k9kfukdhfy631xe", p, sizeof(p)),
	    0);
	ck_assert_str_eq(p, "/d/gnupg/wkd/example.org/hu/kei1q4tipxxu1yj79k9kfukdhfy631xe");
	ck_assert_int_eq(gpg_wkd_path("/d", "..", 2, NULL, p, sizeof(p)), -1);
	ck_assert_int_eq(gpg_wkd_path("/d", "a/b", 3, NULL, p, sizeof(p)), -1);
	ck_assert_int_eq(gpg_wkd_path("/d", "a..b", 4, NULL, p, sizeof(p)), -1);
	ck_assert_int_eq(
	    gpg_wkd_path("/d", "example.org", 11, "../../../../etc/passwd", p, sizeof(p)), -1);
	ck_assert_int_eq(
	    gpg_wkd_path("/d", "example.org", 11, "KEI1Q4TIPXXU1YJ79K9KFUKDHFY631XE", p, sizeof(p)),
	    -1);
}
END_TEST

START_TEST(home_names_are_per_address_and_case_insensitive)
{
	char a[GPG_HOME_NAME_LEN + 1], b[GPG_HOME_NAME_LEN + 1], c[GPG_HOME_NAME_LEN + 1];

	ck_assert_int_eq(gpg_home_name("Alice@Example.org", a), 0);
	ck_assert_int_eq(gpg_home_name("alice@example.org", b), 0);
	ck_assert_int_eq(gpg_home_name("bob@example.org", c), 0);
	ck_assert_str_eq(a, b);
	ck_assert_str_ne(a, c);
	ck_assert_uint_eq(strlen(a), GPG_HOME_NAME_LEN);
	ck_assert_uint_eq(strspn(a, "0123456789abcdef"), GPG_HOME_NAME_LEN);
	ck_assert_int_eq(gpg_home_name("", a), -1);
}
END_TEST

START_TEST(passphrase_is_stable_per_user_and_survives_password_change)
{
	struct user_key *k1 = new_key("first password"), *k2 = new_key("first password");
	struct user_key *again;
	unsigned char *wrapped;
	size_t wrapped_len;
	char p1[GPG_PASSPHRASE_LEN + 1], p1b[GPG_PASSPHRASE_LEN + 1], p2[GPG_PASSPHRASE_LEN + 1];

	ck_assert_int_eq(gpg_passphrase_derive(k1, p1), 0);
	ck_assert_int_eq(gpg_passphrase_derive(k2, p2), 0);
	ck_assert_str_ne(p1, p2);
	ck_assert_uint_eq(strlen(p1), GPG_PASSPHRASE_LEN);
	/* Password change: rewrap, unlock with the new password, same passphrase. */
	ck_assert_int_eq(crypto_user_rewrap(k1, "second password", 15, &wrapped, &wrapped_len), 0);
	ck_assert_int_eq(crypto_user_unlock(wrapped, wrapped_len, "second password", 15, &again),
			 0);
	ck_assert_int_eq(gpg_passphrase_derive(again, p1b), 0);
	ck_assert_str_eq(p1, p1b);
	ck_assert_int_eq(gpg_passphrase_derive(NULL, p1b), -1);
	free(wrapped);
	user_key_free(again);
	user_key_free(k1);
	user_key_free(k2);
}
END_TEST

START_TEST(homes_are_private_and_configured)
{
	struct gpg_user *u;
	char err[256], path[1024];
	struct stat st;

	ck_assert_int_eq(gpg_user_open(&cfg, "Carol@Example.org", NULL, &u, err, sizeof(err)), 0);
	ck_assert_str_eq(gpg_user_address(u), "carol@example.org");
	ck_assert(!gpg_user_unlocked(u));
	ck_assert_int_eq(stat(gpg_user_homedir(u, GPGME_PROTOCOL_OpenPGP), &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0700);
	ck_assert_str_eq(gpg_user_homedir(u, GPGME_PROTOCOL_OpenPGP),
			 gpg_user_homedir(u, GPGME_PROTOCOL_CMS));
	snprintf(path, sizeof(path), "%s/gpg-agent.conf", gpg_user_homedir(u, GPGME_PROTOCOL_CMS));
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0600);
	ck_assert_ptr_nonnull(gpg_user_ctx(u, GPGME_PROTOCOL_OpenPGP));
	ck_assert_ptr_nonnull(gpg_user_ctx(u, GPGME_PROTOCOL_CMS));
	ck_assert_ptr_null(gpg_user_ctx(u, GPGME_PROTOCOL_ASSUAN));
	gpg_user_close(u);
	ck_assert_int_eq(gpg_user_open(&cfg, "no-at-sign", NULL, &u, err, sizeof(err)), -1);
	ck_assert_ptr_null(u);
	ck_assert(strlen(err) > 0);
}
END_TEST

START_TEST(at_most_max_agents_run)
{
	static const char *users[] = {"u1@example.org", "u2@example.org", "u3@example.org",
				      "u4@example.org", "u5@example.org"};
	char err[256];

	cfg.pgp.max_agents = 2;
	for (size_t i = 0; i < sizeof(users) / sizeof(users[0]); i++) {
		struct gpg_user *u;

		ck_assert_int_eq(gpg_user_open(&cfg, users[i], NULL, &u, err, sizeof(err)), 0);
		touch_agent(u);
		gpg_user_close(u);
		ck_assert_uint_le(gpg_agents_running(), 2);
		ck_assert_uint_le(agents_settle(2), 2);
	}
	/* The five homes did run agents; only the bound is alive. */
	ck_assert_uint_eq(agents_settle(2), 2);
	gpg_agents_stop_all();
	ck_assert_uint_eq(gpg_agents_running(), 0);
	ck_assert_uint_eq(agents_settle(0), 0);
}
END_TEST

static void *close_later(void *arg)
{
	sleep(1);
	gpg_user_close(arg);
	return NULL;
}

START_TEST(an_open_waits_for_a_held_slot)
{
	struct gpg_user *held, *u;
	pthread_t t;
	char err[256];
	time_t start;

	cfg.pgp.max_agents = 1;
	ck_assert_int_eq(gpg_user_open(&cfg, "held@example.org", NULL, &held, err, sizeof(err)), 0);
	touch_agent(held);
	ck_assert_int_eq(pthread_create(&t, NULL, close_later, held), 0);
	start = time(NULL);
	/* Every slot is held: this waits until the other thread closes its handle. */
	ck_assert_int_eq(gpg_user_open(&cfg, "waiter@example.org", NULL, &u, err, sizeof(err)), 0);
	ck_assert_int_ge(time(NULL) - start, 1);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_uint_eq(gpg_agents_running(), 1);
	ck_assert_uint_le(agents_settle(0), 0);
	gpg_user_close(u);
}
END_TEST

START_TEST(idle_agents_are_stopped)
{
	struct gpg_user *u;
	char err[256];

	cfg.pgp.agent_idle = 2;
	ck_assert_int_eq(gpg_user_open(&cfg, "idle@example.org", NULL, &u, err, sizeof(err)), 0);
	touch_agent(u);
	gpg_user_close(u);
	ck_assert_uint_eq(agents_in_tmpdir(), 1);
	sleep(3);
	/* Another user's open reaps the idle one. */
	ck_assert_int_eq(gpg_user_open(&cfg, "other@example.org", NULL, &u, err, sizeof(err)), 0);
	ck_assert_uint_eq(gpg_agents_running(), 1);
	gpg_user_close(u);
	ck_assert_uint_eq(agents_settle(0), 0);
}
END_TEST

static int sign_something_proto(struct gpg_user *u, gpgme_protocol_t proto)
{
	gpgme_ctx_t ctx = gpg_user_ctx(u, proto);
	gpgme_data_t in, out;
	gpgme_key_t key;
	char err[256];
	gpgme_error_t e;

	ck_assert_int_eq(
	    gpg_user_find_key(u, proto, gpg_user_address(u), true, &key, err, sizeof(err)), 1);
	gpgme_signers_clear(ctx);
	ck_assert_int_eq(gpgme_signers_add(ctx, key), 0);
	gpgme_key_unref(key);
	ck_assert_int_eq(gpgme_data_new_from_mem(&in, "hello\n", 6, 0), 0);
	ck_assert_int_eq(gpgme_data_new(&out), 0);
	e = gpgme_op_sign(ctx, in, out, GPGME_SIG_MODE_DETACH);
	gpgme_data_release(in);
	gpgme_data_release(out);
	return e == 0 ? 0 : -1;
}

static int sign_something(struct gpg_user *u)
{
	return sign_something_proto(u, GPGME_PROTOCOL_OpenPGP);
}

START_TEST(smime_keys_from_the_ca_sign_only_when_unlocked)
{
	struct user_key *k = new_key("pw");
	struct gpg_user *u, *u2;
	char err[256], *pem;
	size_t len;

	ck_assert_int_eq(smime_ca_init(&cfg, "Unit CA", 0, err, sizeof(err)), 0);
	ck_assert_int_eq(smime_ca_init(&cfg, "Unit CA", 0, err, sizeof(err)), -1);
	ck_assert_int_eq(gpg_user_open(&cfg, "erin@example.org", NULL, &u, err, sizeof(err)), 0);
	ck_assert_int_eq(smime_ca_issue(&cfg, u, 0, &pem, &len, err, sizeof(err)), -1);
	gpg_user_close(u);
	ck_assert_int_eq(gpg_user_open(&cfg, "erin@example.org", k, &u, err, sizeof(err)), 0);
	ck_assert_msg(smime_ca_issue(&cfg, u, 0, &pem, &len, err, sizeof(err)) == 0, "%s", err);
	ck_assert_ptr_nonnull(strstr(pem, "BEGIN CERTIFICATE"));
	free(pem);
	/* GPGME's gpgsm engine signs with the preset passphrase. */
	ck_assert_int_eq(sign_something_proto(u, GPGME_PROTOCOL_CMS), 0);
	gpg_user_close(u);
	/* Closed: the preset is gone, a locked handle cannot sign. */
	ck_assert_int_eq(gpg_user_open(&cfg, "erin@example.org", NULL, &u, err, sizeof(err)), 0);
	ck_assert_int_eq(sign_something_proto(u, GPGME_PROTOCOL_CMS), -1);
	gpg_user_close(u);
	ck_assert_int_eq(gpg_user_open(&cfg, "erin@example.org", k, &u, err, sizeof(err)), 0);
	ck_assert_int_eq(sign_something_proto(u, GPGME_PROTOCOL_CMS), 0);
	/* Two unlocked handles (two sessions): closing one leaves the other working. */
	ck_assert_int_eq(gpg_user_open(&cfg, "erin@example.org", k, &u2, err, sizeof(err)), 0);
	ck_assert_int_eq(sign_something_proto(u2, GPGME_PROTOCOL_CMS), 0);
	ck_assert_int_eq(sign_something_proto(u2, GPGME_PROTOCOL_CMS), 0);
	gpg_user_close(u);
	ck_assert_int_eq(sign_something_proto(u2, GPGME_PROTOCOL_CMS), 0);
	gpg_user_close(u2);
	ck_assert_int_eq(gpg_user_open(&cfg, "erin@example.org", NULL, &u, err, sizeof(err)), 0);
	ck_assert_int_eq(sign_something_proto(u, GPGME_PROTOCOL_CMS), -1);
	gpg_user_close(u);
	user_key_free(k);
}
END_TEST

START_TEST(secret_keys_work_only_with_the_unlocked_key)
{
	struct user_key *k = new_key("pw"), *other = new_key("pw");
	struct gpg_user *u;
	gpgme_key_t key;
	char err[256];

	ck_assert_int_eq(gpg_user_open(&cfg, "dave@example.org", k, &u, err, sizeof(err)), 0);
	ck_assert_int_eq(gpgme_op_createkey(gpg_user_ctx(u, GPGME_PROTOCOL_OpenPGP),
					    "dave@example.org", "future-default", 0, 0, NULL,
					    GPGME_CREATE_SIGN),
			 0);
	ck_assert_int_eq(sign_something(u), 0);
	/* Found as the user's signing key and, for others, as nothing to encrypt to
	 * (the key signs only). */
	ck_assert_int_eq(gpg_user_find_key(u, GPGME_PROTOCOL_OpenPGP, "dave@example.org", false,
					   &key, err, sizeof(err)),
			 0);
	gpg_user_close(u);
	/* Locked: the operation fails, it does not prompt or hang. */
	ck_assert_int_eq(gpg_user_open(&cfg, "dave@example.org", NULL, &u, err, sizeof(err)), 0);
	ck_assert_int_eq(sign_something(u), -1);
	gpg_user_close(u);
	/* Someone else's key gives the wrong passphrase. */
	ck_assert_int_eq(gpg_user_open(&cfg, "dave@example.org", other, &u, err, sizeof(err)), 0);
	ck_assert_int_eq(sign_something(u), -1);
	gpg_user_close(u);
	user_key_free(k);
	user_key_free(other);
}
END_TEST

static Suite *gpg_home_suite(void)
{
	Suite *s = suite_create("gpg_home");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, zbase32_matches_gpg_wks_client);
	tcase_add_test(tc, wkd_paths_refuse_traversal);
	tcase_add_test(tc, home_names_are_per_address_and_case_insensitive);
	tcase_add_test(tc, passphrase_is_stable_per_user_and_survives_password_change);
	tcase_add_test(tc, homes_are_private_and_configured);
	tcase_add_test(tc, at_most_max_agents_run);
	tcase_add_test(tc, an_open_waits_for_a_held_slot);
	tcase_add_test(tc, idle_agents_are_stopped);
	tcase_add_test(tc, secret_keys_work_only_with_the_unlocked_key);
	tcase_add_test(tc, smime_keys_from_the_ca_sign_only_when_unlocked);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(gpg_home_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
