/*
 * store_env.c - the store a unit test runs against (see store_env.h).
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store_env.h"

static void run(const char *cmd)
{
	ck_assert_msg(system(cmd) == 0, "command failed: %s", cmd);
}

void test_store_env_config(struct test_store_env *env, const char *prefix, const char *tmpdir,
			   struct config_store *cfg)
{
	const char *engine = getenv("POSTERN_TEST_ENGINE");
	char cmd[1024];

	memset(cfg, 0, sizeof(*cfg));
	env->db[0] = '\0';
	env->socket = NULL;
	if (engine != NULL && strcmp(engine, "mariadb") == 0) {
		env->socket = getenv("POSTERN_TEST_MARIADB_SOCKET");
		ck_assert_msg(env->socket != NULL, "POSTERN_TEST_MARIADB_SOCKET is not set");
		snprintf(env->db, sizeof(env->db), "%s_%ld", prefix, (long)getpid());
		snprintf(cmd, sizeof(cmd),
			 "mariadb --no-defaults -S '%s' -u root -e 'DROP DATABASE IF EXISTS %s; "
			 "CREATE DATABASE %s'",
			 env->socket, env->db, env->db);
		run(cmd);
		cfg->engine = STORE_ENGINE_MARIADB;
		snprintf(cfg->mariadb_socket, sizeof(cfg->mariadb_socket), "%s", env->socket);
		snprintf(cfg->mariadb_user, sizeof(cfg->mariadb_user), "root");
		snprintf(cfg->mariadb_database, sizeof(cfg->mariadb_database), "%s", env->db);
		cfg->mariadb_port = 3306;
	} else {
		cfg->engine = STORE_ENGINE_SQLITE;
		snprintf(cfg->sqlite_path, sizeof(cfg->sqlite_path), "%s/postern.db", tmpdir);
	}
}

void test_store_env_clean(const struct test_store_env *env, const char *tmpdir)
{
	char cmd[1024];

	if (env->db[0] != '\0') {
		snprintf(cmd, sizeof(cmd),
			 "mariadb --no-defaults -S '%s' -u root -e 'DROP DATABASE IF EXISTS %s'",
			 env->socket, env->db);
		run(cmd);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	run(cmd);
}
