/*
 * store_fixture.h - the fixture the store suites (test_store.c,
 * test_store_concurrency.c) share: each case gets a freshly migrated store,
 * a temporary SQLite file or a MariaDB database postern_test_<pid>_<n> on
 * $POSTERN_TEST_MARIADB_SOCKET that is dropped afterwards.
 */
#ifndef POSTERN_TEST_STORE_FIXTURE_H
#define POSTERN_TEST_STORE_FIXTURE_H

#include <check.h>
#include <mysql.h>
#include <stdint.h>

#include "store/store.h"

/* The newest migration in sql/<engine>/. */
#define SCHEMA_VERSION 8

/* The engine the running suite tests, the case's store configuration, its
 * temporary directory (SQLite) and its open, migrated store. */
extern enum store_engine engine;
extern struct config_store cfg;
extern char tmpdir[256];
extern struct store *st;

#define OK(expr) ck_assert_msg((expr) == STORE_OK, "%s: %s", #expr, store_error(st))

/* The checked fixture of every case. */
void store_fixture_setup(void);
void store_fixture_teardown(void);

/* A root connection to the MariaDB server of the case. */
MYSQL *admin_connect(void);

/* A user with binary keys that contain NUL bytes. */
int64_t make_user(const char *address, int64_t quota);
int64_t inbox_of(int64_t user_id);
int64_t add_message(int64_t mailbox_id, const char *text, struct store_message *out);

/* Runs the suite MAKE builds on SQLite as "BASE-sqlite" and, when
 * POSTERN_TEST_MARIADB_SOCKET is set, on MariaDB as "BASE-mariadb"; returns
 * EXIT_SUCCESS or EXIT_FAILURE. */
int store_fixture_run_all(Suite *(*make)(const char *name), const char *base);

#endif
