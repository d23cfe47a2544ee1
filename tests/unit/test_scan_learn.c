/*
 * test_scan_learn.c - per-user learning against a real (temporary SQLite)
 * store: teaching one user that a message is ham (or spam) changes the
 * verdict for that user only; the deltas survive in the store; a damaged
 * delta blob is ignored rather than trusted.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "scan/scan.h"
#include "scan/scan_train.h"
#include "store/store.h"

static char tmpdir[256];
static struct store *st;
static int64_t alice, bob;

static unsigned char *read_data(const char *rel, size_t *len)
{
	char path[1024], err[256];
	unsigned char *buf;
	const char *src = getenv("POSTERN_SRCDIR");
	snprintf(path, sizeof(path), "%s/tests/data/scan/%s", src && *src ? src : POSTERN_SRCDIR,
		 rel);
	ck_assert_msg(scan_read_file(path, 1u << 20, &buf, len, err, sizeof(err)) == 0, "%s", err);
	return buf;
}

static int64_t make_user(const char *address)
{
	struct store_user u;
	memset(&u, 0, sizeof(u));
	snprintf(u.address, sizeof(u.address), "%s", address);
	snprintf(u.password_hash, sizeof(u.password_hash), "$argon2id$v=19$m=8,t=1,p=1$x$y");
	ck_assert_int_eq(store_user_add(st, &u), STORE_OK);
	return u.id;
}

static void setup(void)
{
	char err[512];
	struct config_store cs;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_scan_learn.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	memset(&cs, 0, sizeof(cs));
	cs.engine = STORE_ENGINE_SQLITE;
	snprintf(cs.sqlite_path, sizeof(cs.sqlite_path), "%s/postern.db", tmpdir);
	st = store_open(&cs, err, sizeof(err));
	ck_assert_msg(st != NULL, "%s", err);
	int version;
	ck_assert_int_eq(store_migrate(st, &version), STORE_OK);
	ck_assert_int_eq(store_domain_add(st, "example.org"), STORE_OK);
	alice = make_user("alice@example.org");
	bob = make_user("bob@example.org");
	unsetenv("POSTERN_SCAN_MODEL");
	ck_assert_msg(scan_model_load(NULL, err, sizeof(err)) == 0, "%s", err);
}

static void teardown(void)
{
	char cmd[300];
	store_close(st);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	ck_assert_int_eq(system(cmd), 0);
}

static enum scan_verdict verdict_for(int64_t user, const unsigned char *msg, size_t len)
{
	struct scan_input in = {.user_id = user};
	struct scan_result r;
	scan_message(st, msg, len, &in, &r);
	return r.verdict;
}

START_TEST(learning_ham_changes_only_that_users_verdict)
{
	size_t len;
	unsigned char *msg = read_data("corpus/spam/s1.eml", &len);
	ck_assert_int_eq(verdict_for(alice, msg, len), SCAN_SPAM);
	ck_assert_int_eq(verdict_for(bob, msg, len), SCAN_SPAM);

	ck_assert_int_eq(scan_learn(st, alice, msg, len, SCAN_CLEAN), 0);
	ck_assert_int_eq(verdict_for(alice, msg, len), SCAN_CLEAN);
	/* Bob and anonymous scans keep the global model's view. */
	ck_assert_int_eq(verdict_for(bob, msg, len), SCAN_SPAM);
	ck_assert_int_eq(verdict_for(0, msg, len), SCAN_SPAM);

	/* the delta lives in the store under kind "scan_model" */
	unsigned char *blob = NULL;
	size_t blen = 0;
	ck_assert_int_eq(store_user_data_get(st, alice, "scan_model", &blob, &blen), STORE_OK);
	ck_assert_uint_gt(blen, 21);
	free(blob);
	ck_assert_int_ne(store_user_data_get(st, bob, "scan_model", &blob, &blen), STORE_OK);

	/* and the reason says the user's training was used */
	struct scan_input in = {.user_id = alice};
	struct scan_result r;
	scan_message(st, msg, len, &in, &r);
	int found = 0;
	for (size_t i = 0; i < r.n_reasons; i++)
		found |= strstr(r.reasons[i], "this user's training") != NULL;
	ck_assert(found);
	free(msg);
}
END_TEST

START_TEST(learning_spam_marks_a_clean_message_for_that_user)
{
	size_t len;
	unsigned char *msg = read_data("ham_plain.eml", &len);
	ck_assert_int_eq(verdict_for(bob, msg, len), SCAN_CLEAN);
	ck_assert_int_eq(scan_learn(st, bob, msg, len, SCAN_SPAM), 0);
	ck_assert_int_eq(verdict_for(bob, msg, len), SCAN_SPAM);
	ck_assert_int_eq(verdict_for(alice, msg, len), SCAN_CLEAN);
	/* and back: moving it out of Junk again */
	ck_assert_int_eq(scan_learn(st, bob, msg, len, SCAN_CLEAN), 0);
	ck_assert_int_eq(verdict_for(bob, msg, len), SCAN_CLEAN);
	free(msg);
}
END_TEST

START_TEST(bad_learning_requests_are_refused)
{
	size_t len;
	unsigned char *msg = read_data("ham_plain.eml", &len);
	ck_assert_int_eq(scan_learn(st, 0, msg, len, SCAN_SPAM), -1);
	ck_assert_int_eq(scan_learn(NULL, alice, msg, len, SCAN_SPAM), -1);
	/* malware is decided by rules, not taught */
	ck_assert_int_eq(scan_learn(st, alice, msg, len, SCAN_MALWARE), -1);

	/* a damaged delta is ignored: the global model decides */
	ck_assert_int_eq(
	    store_user_data_put(st, alice, "scan_model", (const unsigned char *)"PSUD1garbage", 12),
	    STORE_OK);
	ck_assert_int_eq(verdict_for(alice, msg, len), SCAN_CLEAN);
	/* and learning starts over from it */
	ck_assert_int_eq(scan_learn(st, alice, msg, len, SCAN_SPAM), 0);
	ck_assert_int_eq(verdict_for(alice, msg, len), SCAN_SPAM);
	free(msg);
}
END_TEST

static Suite *learn_suite(void)
{
	Suite *s = suite_create("scan_learn");
	TCase *tc = tcase_create("learn");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, learning_ham_changes_only_that_users_verdict);
	tcase_add_test(tc, learning_spam_marks_a_clean_message_for_that_user);
	tcase_add_test(tc, bad_learning_requests_are_refused);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(learn_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
