/*
 * store_env.h - the store a unit test runs against: SQLite in the test's
 * temporary directory or, with POSTERN_TEST_ENGINE=mariadb, a fresh database
 * on the server at $POSTERN_TEST_MARIADB_SOCKET (tests/mariadb-server).
 */
#ifndef POSTERN_TEST_STORE_ENV_H
#define POSTERN_TEST_STORE_ENV_H

#include "util/config.h"

struct test_store_env {
	char db[64];	    /* the MariaDB database, "" for SQLite */
	const char *socket; /* the MariaDB server's socket */
};

/* Fills CFG for the test's engine: TMPDIR/postern.db, or a MariaDB database
 * PREFIX_<pid> that is dropped and created again. Fails the test when the
 * MariaDB server is not there. */
void test_store_env_config(struct test_store_env *env, const char *prefix, const char *tmpdir,
			   struct config_store *cfg);
/* Drops the MariaDB database, if any, and removes TMPDIR. */
void test_store_env_clean(const struct test_store_env *env, const char *tmpdir);

#endif
