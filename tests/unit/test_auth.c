/*
 * test_auth.c - src/auth: login results, the unknown-user dummy check, and
 * the login cache (hits skip Argon2id; password change, lock, delete, forget,
 * expiry and TTL 0 all take effect). Runs on a real store: SQLite in a
 * temporary directory, or MariaDB when POSTERN_TEST_ENGINE=mariadb. Argon2id derivations are
 * counted with crypto_argon2_count(), so "the cache was used" is a fact, not a timing guess.
 */
#include "config.h"

#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "auth/auth.h"
#include "crypto/crypto.h"
#include "store/store.h"
#include "store_env.h"

static char tmpdir[256];
static struct config_store store_cfg;
static struct store *st;
static struct test_store_env store_env;

static struct store *open_store(void)
{
	char err[512] = "";
	struct store *s = store_open(&store_cfg, err, sizeof(err));

	ck_assert_msg(s != NULL, "store_open: %s", err);
	return s;
}

/* The engine under test: $POSTERN_TEST_ENGINE (sqlite by default, or mariadb
 * on the server at $POSTERN_TEST_MARIADB_SOCKET, one database per test). */
static void setup(void)
{
	int version = 0;

	ck_assert_int_eq(crypto_setup(), 0);
	crypto_set_argon2_cost(1, 8192); /* these tests are about logic, not cost */
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/postern-test-auth-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	test_store_env_config(&store_env, "postern_auth", tmpdir, &store_cfg);
	st = open_store();
	ck_assert_msg(store_migrate(st, &version) == STORE_OK, "migrate: %s", store_error(st));
	ck_assert_int_eq(store_domain_add(st, "example.org"), STORE_OK);
	auth_setup(600);
}

static void teardown(void)
{
	auth_cache_clear();
	store_close(st);
	st = NULL;
	test_store_env_clean(&store_env, tmpdir);
}

/* Creates ADDRESS with PASSWORD as posternctl does; returns the user id, fills PUB. */
static int64_t add_user(struct store *s, const char *address, const char *password,
			unsigned char pub[32])
{
	struct store_user u;
	unsigned char *wrapped = NULL;
	size_t wrapped_len = 0;

	memset(&u, 0, sizeof(u));
	snprintf(u.address, sizeof(u.address), "%s", address);
	ck_assert_int_eq(crypto_password_hash(password, strlen(password), u.password_hash), 0);
	ck_assert_int_eq(crypto_user_keygen(password, strlen(password), u.public_key, &wrapped,
					    &wrapped_len, NULL),
			 0);
	u.wrapped_key = wrapped;
	u.wrapped_key_len = wrapped_len;
	ck_assert_msg(store_user_add(s, &u) == STORE_OK, "user add: %s", store_error(s));
	if (pub != NULL)
		memcpy(pub, u.public_key, 32);
	free(wrapped);
	return u.id;
}

/* Changes the password the way posternctl does, without telling the auth cache. */
static void change_password(int64_t user_id, const char *old_pw, const char *new_pw)
{
	struct store_user u;
	struct user_key *k = NULL;
	unsigned char *wrapped = NULL;
	size_t wrapped_len = 0;
	char hash[CRYPTO_PWHASH_STR_MAX];

	memset(&u, 0, sizeof(u));
	ck_assert_int_eq(store_user_get_by_id(st, user_id, &u), STORE_OK);
	ck_assert_int_eq(
	    crypto_user_unlock(u.wrapped_key, u.wrapped_key_len, old_pw, strlen(old_pw), &k), 0);
	ck_assert_int_eq(crypto_user_rewrap(k, new_pw, strlen(new_pw), &wrapped, &wrapped_len), 0);
	ck_assert_int_eq(crypto_password_hash(new_pw, strlen(new_pw), hash), 0);
	ck_assert_int_eq(store_user_set_password(st, user_id, hash, wrapped, wrapped_len),
			 STORE_OK);
	free(wrapped);
	user_key_free(k);
	store_user_clear(&u);
}

static enum auth_result login(const char *address, const char *password, struct auth_identity *id)
{
	return auth_login(st, address, password, password != NULL ? strlen(password) : 0, id);
}

/* Logs in and returns how many Argon2id derivations it took. */
static unsigned long login_cost(const char *address, const char *password, enum auth_result want)
{
	struct auth_identity id;
	unsigned long before = crypto_argon2_count();
	enum auth_result got = login(address, password, &id);

	ck_assert_int_eq(got, want);
	if (want == AUTH_OK)
		ck_assert_ptr_nonnull(id.key);
	else
		ck_assert_ptr_null(id.key);
	auth_identity_clear(&id);
	return crypto_argon2_count() - before;
}

START_TEST(login_ok_fills_identity_with_a_working_key)
{
	struct auth_identity id;
	unsigned char pub[32], *blob = NULL, *msg = NULL;
	size_t blob_len = 0, msg_len = 0;
	int64_t uid = add_user(st, "alice@example.org", "alice pw", pub);

	ck_assert_int_eq(login("Alice@Example.ORG", "alice pw", &id), AUTH_OK);
	ck_assert_int_eq(id.user_id, uid);
	ck_assert_str_eq(id.address, "alice@example.org");
	ck_assert_mem_eq(user_key_public(id.key), pub, 32);
	ck_assert_int_eq(crypto_seal(pub, "to alice", 8, &blob, &blob_len), 0);
	ck_assert_int_eq(crypto_open(id.key, blob, blob_len, &msg, &msg_len), 0);
	ck_assert_mem_eq(msg, "to alice", 8);
	free(msg);
	free(blob);
	auth_identity_clear(&id);
	ck_assert_ptr_null(id.key);
	ck_assert_int_eq(id.user_id, 0);
}
END_TEST

START_TEST(wrong_password_fails)
{
	add_user(st, "alice@example.org", "alice pw", NULL);
	ck_assert_uint_eq(login_cost("alice@example.org", "alice PW", AUTH_FAILED), 1);
	ck_assert_uint_eq(login_cost("alice@example.org", "", AUTH_FAILED), 1);
	ck_assert_uint_eq(auth_cache_count(), 0);
}
END_TEST

START_TEST(unknown_user_costs_the_same_as_a_wrong_password)
{
	unsigned long wrong, unknown;

	add_user(st, "alice@example.org", "alice pw", NULL);
	wrong = login_cost("alice@example.org", "guess", AUTH_FAILED);
	unknown = login_cost("nobody@example.org", "guess", AUTH_FAILED);
	ck_assert_uint_eq(unknown, wrong);
	ck_assert_uint_eq(login_cost("nobody@elsewhere.example", "guess", AUTH_FAILED), wrong);
}
END_TEST

START_TEST(bad_input_fails_cleanly)
{
	struct auth_identity id;
	char long_addr[STORE_ADDRESS_MAX + 10];
	char *long_pw = malloc(4096);

	add_user(st, "alice@example.org", "alice pw", NULL);
	ck_assert_int_eq(login(NULL, "x", &id), AUTH_FAILED);
	ck_assert_int_eq(login("", "x", &id), AUTH_FAILED);
	ck_assert_int_eq(login("alice@example.org", NULL, &id), AUTH_FAILED);
	memset(long_addr, 'a', sizeof(long_addr) - 1);
	long_addr[sizeof(long_addr) - 1] = '\0';
	ck_assert_int_eq(login(long_addr, "x", &id), AUTH_FAILED);
	ck_assert_ptr_nonnull(long_pw);
	memset(long_pw, 'p', 4095);
	long_pw[4095] = '\0';
	ck_assert_int_eq(login("alice@example.org", long_pw, &id), AUTH_FAILED);
	ck_assert_int_eq(auth_login(st, "alice@example.org", "alice pw", 8, NULL), AUTH_FAILED);
	/* A NUL inside the password is part of it, not an end. */
	ck_assert_int_eq(auth_login(st, "alice@example.org", "alice pw\0x", 10, &id), AUTH_FAILED);
	free(long_pw);
}
END_TEST

START_TEST(locked_user_is_refused_only_with_the_right_password)
{
	int64_t uid = add_user(st, "bob@example.org", "bob pw", NULL);

	ck_assert_int_eq(store_user_set_locked(st, uid, true), STORE_OK);
	login_cost("bob@example.org", "bob pw", AUTH_LOCKED);
	login_cost("bob@example.org", "not bob", AUTH_FAILED);
	ck_assert_uint_eq(auth_cache_count(), 0);
	ck_assert_int_eq(store_user_set_locked(st, uid, false), STORE_OK);
	login_cost("bob@example.org", "bob pw", AUTH_OK);
}
END_TEST

START_TEST(cache_hit_skips_argon2id)
{
	struct auth_identity a, b;
	unsigned char *blob = NULL, *msg = NULL;
	size_t blob_len = 0, msg_len = 0;

	add_user(st, "alice@example.org", "alice pw", NULL);
	ck_assert_uint_eq(login_cost("alice@example.org", "alice pw", AUTH_OK), 2);
	ck_assert_uint_eq(auth_cache_count(), 1);
	ck_assert_uint_eq(login_cost("alice@example.org", "alice pw", AUTH_OK), 0);
	ck_assert_uint_eq(login_cost("ALICE@example.org", "alice pw", AUTH_OK), 0);
	/* A wrong password never matches the cached entry. */
	ck_assert_uint_eq(login_cost("alice@example.org", "alice pw ", AUTH_FAILED), 1);

	/* Each login gets its own key copy: clearing one leaves the other usable. */
	ck_assert_int_eq(login("alice@example.org", "alice pw", &a), AUTH_OK);
	ck_assert_int_eq(login("alice@example.org", "alice pw", &b), AUTH_OK);
	ck_assert_mem_eq(user_key_public(a.key), user_key_public(b.key), 32);
	auth_identity_clear(&a);
	ck_assert_int_eq(crypto_seal(user_key_public(b.key), "x", 1, &blob, &blob_len), 0);
	ck_assert_int_eq(crypto_open(b.key, blob, blob_len, &msg, &msg_len), 0);
	free(msg);
	free(blob);
	auth_identity_clear(&b);
}
END_TEST

START_TEST(cache_is_invalidated_by_a_password_change_elsewhere)
{
	int64_t uid = add_user(st, "alice@example.org", "old pw", NULL);

	ck_assert_uint_eq(login_cost("alice@example.org", "old pw", AUTH_OK), 2);
	change_password(uid, "old pw", "new pw");
	ck_assert_uint_eq(login_cost("alice@example.org", "old pw", AUTH_FAILED), 1);
	ck_assert_uint_eq(login_cost("alice@example.org", "new pw", AUTH_OK), 2);
	ck_assert_uint_eq(login_cost("alice@example.org", "new pw", AUTH_OK), 0);
}
END_TEST

START_TEST(cache_is_invalidated_by_lock_and_delete)
{
	int64_t uid = add_user(st, "alice@example.org", "pw", NULL);

	ck_assert_uint_eq(login_cost("alice@example.org", "pw", AUTH_OK), 2);
	ck_assert_int_eq(store_user_set_locked(st, uid, true), STORE_OK);
	login_cost("alice@example.org", "pw", AUTH_LOCKED);
	ck_assert_int_eq(store_user_set_locked(st, uid, false), STORE_OK);
	ck_assert_uint_eq(login_cost("alice@example.org", "pw", AUTH_OK), 2);

	ck_assert_uint_eq(auth_cache_count(), 1);
	ck_assert_int_eq(store_user_del(st, "alice@example.org"), STORE_OK);
	ck_assert_uint_eq(login_cost("alice@example.org", "pw", AUTH_FAILED), 1);
	ck_assert_uint_eq(auth_cache_count(), 0);

	/* Re-created with the same password: a new key, so the old entry must not serve it. */
	add_user(st, "alice@example.org", "pw", NULL);
	ck_assert_uint_eq(login_cost("alice@example.org", "pw", AUTH_OK), 2);
}
END_TEST

START_TEST(forget_and_clear_drop_entries)
{
	add_user(st, "alice@example.org", "a", NULL);
	add_user(st, "bob@example.org", "b", NULL);
	login_cost("alice@example.org", "a", AUTH_OK);
	login_cost("bob@example.org", "b", AUTH_OK);
	ck_assert_uint_eq(auth_cache_count(), 2);
	auth_cache_forget("Alice@Example.org");
	ck_assert_uint_eq(auth_cache_count(), 1);
	ck_assert_uint_eq(login_cost("alice@example.org", "a", AUTH_OK), 2);
	ck_assert_uint_eq(login_cost("bob@example.org", "b", AUTH_OK), 0);
	auth_cache_clear();
	ck_assert_uint_eq(auth_cache_count(), 0);
	ck_assert_uint_eq(login_cost("bob@example.org", "b", AUTH_OK), 2);
}
END_TEST

START_TEST(ttl_zero_disables_the_cache)
{
	add_user(st, "alice@example.org", "pw", NULL);
	login_cost("alice@example.org", "pw", AUTH_OK);
	ck_assert_uint_eq(auth_cache_count(), 1);
	auth_setup(0);
	ck_assert_uint_eq(auth_cache_ttl(), 0);
	ck_assert_uint_eq(auth_cache_count(), 0);
	ck_assert_uint_eq(login_cost("alice@example.org", "pw", AUTH_OK), 2);
	ck_assert_uint_eq(login_cost("alice@example.org", "pw", AUTH_OK), 2);
	ck_assert_uint_eq(auth_cache_count(), 0);
}
END_TEST

START_TEST(cache_entries_expire)
{
	add_user(st, "alice@example.org", "pw", NULL);
	auth_setup(1);
	ck_assert_uint_eq(login_cost("alice@example.org", "pw", AUTH_OK), 2);
	sleep(2);
	ck_assert_uint_eq(login_cost("alice@example.org", "pw", AUTH_OK), 2);
}
END_TEST

START_TEST(cache_is_bounded_and_evicts_the_oldest)
{
	char addr[64], pw[32];
	const int n = AUTH_CACHE_MAX + 5;

	ck_assert_int_eq(store_begin(st), STORE_OK);
	for (int i = 0; i < n; i++) {
		snprintf(addr, sizeof(addr), "user%d@example.org", i);
		snprintf(pw, sizeof(pw), "pw%d", i);
		add_user(st, addr, pw, NULL);
	}
	ck_assert_int_eq(store_commit(st), STORE_OK);
	for (int i = 0; i < n; i++) {
		snprintf(addr, sizeof(addr), "user%d@example.org", i);
		snprintf(pw, sizeof(pw), "pw%d", i);
		login_cost(addr, pw, AUTH_OK);
	}
	ck_assert_uint_eq(auth_cache_count(), AUTH_CACHE_MAX);
	/* The newest is cached, the first ones were evicted. */
	snprintf(addr, sizeof(addr), "user%d@example.org", n - 1);
	snprintf(pw, sizeof(pw), "pw%d", n - 1);
	ck_assert_uint_eq(login_cost(addr, pw, AUTH_OK), 0);
	ck_assert_uint_eq(login_cost("user0@example.org", "pw0", AUTH_OK), 2);
	ck_assert_uint_eq(auth_cache_count(), AUTH_CACHE_MAX);
}
END_TEST

#define THREADS 4
#define LOGINS_PER_THREAD 25

struct thread_arg {
	int index;
	int ok;
};

static void *login_thread(void *p)
{
	struct thread_arg *arg = p;
	char err[256];
	struct store *s = store_open(&store_cfg, err, sizeof(err));
	char addr[64], pw[32];

	if (s == NULL)
		return NULL;
	for (int i = 0; i < LOGINS_PER_THREAD; i++) {
		struct auth_identity id;
		int who = (arg->index + i) % THREADS;

		snprintf(addr, sizeof(addr), "t%d@example.org", who);
		snprintf(pw, sizeof(pw), "pw%d", who);
		if (auth_login(s, addr, pw, strlen(pw), &id) == AUTH_OK && id.key != NULL)
			arg->ok++;
		auth_identity_clear(&id);
		if (i % 10 == 0)
			auth_cache_forget(addr);
	}
	store_close(s);
	return NULL;
}

START_TEST(concurrent_logins_are_safe)
{
	pthread_t th[THREADS];
	struct thread_arg args[THREADS];
	char addr[64], pw[32];

	for (int i = 0; i < THREADS; i++) {
		snprintf(addr, sizeof(addr), "t%d@example.org", i);
		snprintf(pw, sizeof(pw), "pw%d", i);
		add_user(st, addr, pw, NULL);
	}
	for (int i = 0; i < THREADS; i++) {
		args[i].index = i;
		args[i].ok = 0;
		ck_assert_int_eq(pthread_create(&th[i], NULL, login_thread, &args[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		ck_assert_int_eq(pthread_join(th[i], NULL), 0);
		ck_assert_int_eq(args[i].ok, LOGINS_PER_THREAD);
	}
	ck_assert_uint_le(auth_cache_count(), THREADS);
}
END_TEST

static Suite *auth_suite(void)
{
	Suite *s = suite_create("auth");
	TCase *tc = tcase_create("login");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, login_ok_fills_identity_with_a_working_key);
	tcase_add_test(tc, wrong_password_fails);
	tcase_add_test(tc, unknown_user_costs_the_same_as_a_wrong_password);
	tcase_add_test(tc, bad_input_fails_cleanly);
	tcase_add_test(tc, locked_user_is_refused_only_with_the_right_password);
	tcase_add_test(tc, cache_hit_skips_argon2id);
	tcase_add_test(tc, cache_is_invalidated_by_a_password_change_elsewhere);
	tcase_add_test(tc, cache_is_invalidated_by_lock_and_delete);
	tcase_add_test(tc, forget_and_clear_drop_entries);
	tcase_add_test(tc, ttl_zero_disables_the_cache);
	tcase_add_test(tc, cache_entries_expire);
	tcase_add_test(tc, cache_is_bounded_and_evicts_the_oldest);
	tcase_add_test(tc, concurrent_logins_are_safe);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(auth_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
