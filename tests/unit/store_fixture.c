/*
 * store_fixture.c - the fixture the store suites share (see store_fixture.h).
 */
#include "config.h"

#include <check.h>
#include <mysql.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"
#include "store_fixture.h"

enum store_engine engine;
struct config_store cfg;
char tmpdir[256];
struct store *st;
static int db_counter;

MYSQL *admin_connect(void)
{
	MYSQL *c = mysql_init(NULL);

	ck_assert_ptr_nonnull(c);
	ck_assert_msg(mysql_real_connect(c, NULL, "root", NULL, NULL, 0, cfg.mariadb_socket, 0) !=
			  NULL,
		      "connect: %s", mysql_error(c));
	return c;
}

void store_fixture_setup(void)
{
	char err[512];
	int version = 0;

	memset(&cfg, 0, sizeof(cfg));
	cfg.engine = engine;
	if (engine == STORE_ENGINE_SQLITE) {
		snprintf(tmpdir, sizeof(tmpdir), "%s/postern-store-XXXXXX",
			 getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
		ck_assert_ptr_nonnull(mkdtemp(tmpdir));
		snprintf(cfg.sqlite_path, sizeof(cfg.sqlite_path), "%s/postern.db", tmpdir);
	} else {
		snprintf(cfg.mariadb_socket, sizeof(cfg.mariadb_socket), "%s",
			 getenv("POSTERN_TEST_MARIADB_SOCKET"));
		snprintf(cfg.mariadb_user, sizeof(cfg.mariadb_user), "root");
		snprintf(cfg.mariadb_database, sizeof(cfg.mariadb_database), "postern_test_%ld_%d",
			 (long)getpid(), ++db_counter);
	}
	st = store_open(&cfg, err, sizeof(err));
	ck_assert_msg(st != NULL, "store_open: %s", err);
	ck_assert_msg(store_migrate(st, &version) == STORE_OK, "migrate: %s", store_error(st));
	ck_assert_int_eq(version, SCHEMA_VERSION);
}

void store_fixture_teardown(void)
{
	store_close(st);
	st = NULL;
	if (engine == STORE_ENGINE_SQLITE) {
		char path[600];
		static const char *const files[] = {"postern.db", "postern.db-wal",
						    "postern.db-shm"};

		for (size_t i = 0; i < 3; i++) {
			snprintf(path, sizeof(path), "%s/%s", tmpdir, files[i]);
			unlink(path);
		}
		rmdir(tmpdir);
	} else {
		MYSQL *c = admin_connect();
		char sql[200];

		snprintf(sql, sizeof(sql), "DROP DATABASE `%s`", cfg.mariadb_database);
		ck_assert_msg(mysql_query(c, sql) == 0, "drop: %s", mysql_error(c));
		mysql_close(c);
	}
}

/* A user with binary keys that contain NUL bytes. */
int64_t make_user(const char *address, int64_t quota)
{
	struct store_user u;
	unsigned char wrapped[48];

	memset(&u, 0, sizeof(u));
	snprintf(u.address, sizeof(u.address), "%s", address);
	snprintf(u.password_hash, sizeof(u.password_hash), "$argon2id$v=19$m=65536,t=2,p=1$x$y");
	for (size_t i = 0; i < sizeof(u.public_key); i++)
		u.public_key[i] = (unsigned char)(i * 7);
	for (size_t i = 0; i < sizeof(wrapped); i++)
		wrapped[i] = (unsigned char)(255 - i * 3);
	wrapped[5] = 0;
	u.wrapped_key = wrapped;
	u.wrapped_key_len = sizeof(wrapped);
	u.quota_bytes = quota;
	OK(store_user_add(st, &u));
	ck_assert_int_gt(u.id, 0);
	return u.id;
}

int64_t inbox_of(int64_t user_id)
{
	struct store_mailbox mb;

	OK(store_mailbox_get(st, user_id, "INBOX", &mb));
	return mb.id;
}

int64_t add_message(int64_t mailbox_id, const char *text, struct store_message *out)
{
	OK(store_message_add(st, mailbox_id, 0, 1700000000, (int64_t)strlen(text),
			     (const unsigned char *)text, strlen(text), out));
	return out->id;
}

static int run(Suite *(*make)(const char *name), enum store_engine which, const char *name)
{
	SRunner *sr;
	int failed;

	engine = which;
	sr = srunner_create(make(name));
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed;
}

int store_fixture_run_all(Suite *(*make)(const char *name), const char *base)
{
	const char *sock = getenv("POSTERN_TEST_MARIADB_SOCKET");
	char name[64];
	int failed;

	snprintf(name, sizeof(name), "%s-sqlite", base);
	failed = run(make, STORE_ENGINE_SQLITE, name);
	if (sock != NULL && sock[0] != '\0') {
		snprintf(name, sizeof(name), "%s-mariadb", base);
		failed += run(make, STORE_ENGINE_MARIADB, name);
	} else {
		printf("MariaDB cases skipped: POSTERN_TEST_MARIADB_SOCKET is not set\n");
	}
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
