/*
 * test_store_concurrency.c - the store's transactions, migrations,
 * concurrent writers (threads and processes), flag-change races, bad
 * configuration, MariaDB reconnects and the SQLite file and locking cases.
 * Runs on SQLite and, with POSTERN_TEST_MARIADB_SOCKET, on MariaDB, with the
 * fixture of store_fixture.h.
 */
#include "config.h"

#include <check.h>
#include <mysql.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/store.h"
#include "store/store_engine.h"
#include "store_fixture.h"

/* "test_store_concurrency --open-close PATH" opens and closes a SQLite
 * store, as a separate process would (see sqlite_handles_keep_their_locks). */
#define OPEN_CLOSE_ARG "--open-close"
#define WRITER_ARG "--writer"

/* ---- SQLite file and locking ---- */

START_TEST(sqlite_file_is_wal)
{
	sqlite3 *db;
	sqlite3_stmt *q;

	ck_assert_int_eq(sqlite3_open(cfg.sqlite_path, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &q, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(q), SQLITE_ROW);
	ck_assert_str_eq((const char *)sqlite3_column_text(q, 0), "wal");
	sqlite3_finalize(q);
	sqlite3_close(db);
}
END_TEST

/* PRAGMA synchronous of the store's own connection: 2 = FULL, 1 = NORMAL. */
static int64_t sqlite_sync_mode(void)
{
	int64_t mode = -1;

	OK(store_query_int64(st, &mode, "PRAGMA synchronous", ""));
	return mode;
}

START_TEST(sqlite_flag_changes_commit_relaxed_and_mail_durably)
{
	struct store_mailbox inbox;
	struct store_message m;
	uint64_t modseq = 0;
	int64_t uid;

	OK(store_domain_add(st, "example.org"));
	uid = make_user("alice@example.org", 0);
	OK(store_mailbox_get(st, uid, "INBOX", &inbox));
	ck_assert_int_eq(sqlite_sync_mode(), 2);
	OK(store_begin_relaxed(st));
	ck_assert_int_eq(sqlite_sync_mode(), 1);
	OK(store_commit(st));
	ck_assert_int_eq(sqlite_sync_mode(), 2);
	/* Mail goes in durably; a flag change does not leave the connection relaxed. */
	OK(store_message_add(st, inbox.id, 0, 1700000001, 3, (const unsigned char *)"abc", 3, &m));
	OK(store_message_set_flags(st, m.id, FLAG_SEEN, "", &modseq));
	ck_assert_int_eq(sqlite_sync_mode(), 2);
	/* Inside a durable transaction a relaxed one is just a part of it. */
	OK(store_begin(st));
	OK(store_begin_relaxed(st));
	ck_assert_int_eq(sqlite_sync_mode(), 2);
	OK(store_commit(st));
	OK(store_commit(st));
	/* A relaxed transaction that is rolled back restores durability too. */
	OK(store_begin_relaxed(st));
	OK(store_rollback(st));
	ck_assert_int_eq(sqlite_sync_mode(), 2);
	OK(store_message_get(st, inbox.id, m.uid, &m));
	ck_assert_uint_eq(m.flags, FLAG_SEEN);
	ck_assert_uint_eq(m.modseq, modseq);
}
END_TEST

START_TEST(sqlite_file_is_private)
{
	struct stat sb;
	char wal[sizeof(cfg.sqlite_path) + 8];

	OK(store_domain_add(st, "example.org")); /* makes sure the WAL exists */
	ck_assert_int_eq(stat(cfg.sqlite_path, &sb), 0);
	ck_assert_int_eq(sb.st_mode & 077, 0);
	snprintf(wal, sizeof(wal), "%s-wal", cfg.sqlite_path);
	ck_assert_int_eq(stat(wal, &sb), 0);
	ck_assert_int_eq(sb.st_mode & 077, 0);
}
END_TEST

/*
 * Opening a second handle in this process must not disturb the first: if
 * it dropped the first one's file locks, another process closing its own
 * handle would believe it was the last and delete the WAL in use, and
 * later commits would vanish.
 */
START_TEST(sqlite_handles_keep_their_locks)
{
	char err[512];
	struct store *second = store_open(&cfg, err, sizeof(err));
	struct store *third;
	pid_t pid;
	int status = 0;

	ck_assert_msg(second != NULL, "%s", err);
	store_close(second);
	/* A fresh program, not a fork: a forked child inherits SQLite's
	 * in-process lock bookkeeping and would not test anything. */
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		execl("/proc/self/exe", "test_store_concurrency", OPEN_CLOSE_ARG, cfg.sqlite_path,
		      (char *)NULL);
		_exit(127);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	OK(store_domain_add(st, "after-close.example"));
	third = store_open(&cfg, err, sizeof(err));
	ck_assert_msg(third != NULL, "%s", err);
	ck_assert_int_eq(store_domain_exists(third, "after-close.example"), STORE_OK);
	store_close(third);
}
END_TEST

/* ---- transactions and migrations ---- */

START_TEST(rollback_leaves_nothing)
{
	struct store_stats s;
	struct store_message m;
	int64_t uid;

	OK(store_begin(st));
	OK(store_domain_add(st, "example.org"));
	uid = make_user("alice@example.org", 0);
	add_message(inbox_of(uid), "gone", &m);
	OK(store_rollback(st));
	OK(store_stats(st, &s));
	ck_assert_int_eq(s.domains, 0);
	ck_assert_int_eq(s.users, 0);
	ck_assert_int_eq(s.messages, 0);

	/* An inner rollback dooms the outer transaction. */
	OK(store_begin(st));
	OK(store_domain_add(st, "a.example"));
	OK(store_begin(st));
	OK(store_domain_add(st, "b.example"));
	OK(store_rollback(st));
	ck_assert_int_eq(store_domain_add(st, "d.example"), STORE_ERR);
	OK(store_begin(st));
	ck_assert_int_eq(store_commit(st), STORE_ERR); /* an inner commit says so too */
	ck_assert_int_eq(store_commit(st), STORE_ERR);
	OK(store_stats(st, &s));
	ck_assert_int_eq(s.domains, 0);

	/* Nested commits: only the outermost is real. */
	OK(store_begin(st));
	OK(store_begin(st));
	OK(store_domain_add(st, "c.example"));
	OK(store_commit(st));
	OK(store_commit(st));
	OK(store_domain_exists(st, "c.example"));
	ck_assert_int_eq(store_domain_exists(st, "d.example"), STORE_NOTFOUND);

	/* A failed write inside a transaction (here a duplicate) dooms it too. */
	OK(store_begin(st));
	OK(store_domain_add(st, "e.example"));
	OK(store_user_add(st, &(struct store_user){.address = "x@c.example"}));
	ck_assert_int_eq(store_user_add(st, &(struct store_user){.address = "x@c.example"}),
			 STORE_EXISTS);
	ck_assert_int_eq(store_commit(st), STORE_ERR);
	ck_assert_int_eq(store_domain_exists(st, "e.example"), STORE_NOTFOUND);
	ck_assert_int_eq(store_commit(st), STORE_ERR);
	ck_assert_int_eq(store_rollback(st), STORE_ERR);
}
END_TEST

START_TEST(migrate_is_idempotent)
{
	int version = 0;

	OK(store_migrate(st, &version));
	ck_assert_int_eq(version, SCHEMA_VERSION);
	ck_assert_str_eq(store_engine_name(st),
			 engine == STORE_ENGINE_SQLITE ? "sqlite" : "mariadb");
}
END_TEST

/*
 * A database that has a later step recorded but not an earlier one (built by
 * a development version between the two) gets the earlier one too.
 */
START_TEST(migrate_applies_a_missing_earlier_step)
{
	int version = 0;
	int64_t n = -1;

	OK(store_run(st, "DROP TABLE pgp_policies", ""));
	OK(store_run(st, "DELETE FROM schema_version WHERE version = 3", ""));
	OK(store_migrate(st, &version));
	ck_assert_int_eq(version, SCHEMA_VERSION);
	OK(store_query_int64(st, &n, "SELECT COUNT(*) FROM schema_version WHERE version = 3", ""));
	ck_assert_int_eq(n, 1);
	OK(store_query_int64(st, &n, "SELECT COUNT(*) FROM pgp_policies", ""));
	ck_assert_int_eq(n, 0);
}
END_TEST

/* ---- concurrent writers ---- */

#define WRITERS 4
#define PER_WRITER 50

struct writer {
	int64_t mailbox_id;
	uint32_t uids[PER_WRITER];
	int failures;
	char err[512];
};

static void *write_messages(void *arg)
{
	struct writer *w = arg;
	struct store *own = store_open(&cfg, w->err, sizeof(w->err));
	struct store_message m;

	if (own == NULL) {
		w->failures = PER_WRITER;
		return NULL;
	}
	for (int i = 0; i < PER_WRITER; i++) {
		if (store_message_add(own, w->mailbox_id, 0, 1, 4, (const unsigned char *)"mail", 4,
				      &m) != STORE_OK) {
			snprintf(w->err, sizeof(w->err), "%s", store_error(own));
			w->failures++;
			continue;
		}
		w->uids[i] = m.uid;
	}
	store_close(own);
	return NULL;
}

/* A session changes flags from its (possibly stale) view: what others set meanwhile stays. */
START_TEST(flag_changes_keep_what_other_sessions_set)
{
	struct store_message m, a, b, got;
	int64_t uid;

	OK(store_domain_add(st, "example.org"));
	uid = make_user("alice@example.org", 0);
	add_message(inbox_of(uid), "shared", &m);
	/* B marks it deleted; A, whose view still has no flags, marks it seen. */
	OK(store_message_change_flags(st, m.id, 0, "", FLAG_DELETED, "work", &b));
	ck_assert_uint_eq(b.flags, FLAG_DELETED);
	ck_assert_str_eq(b.keywords, "work");
	ck_assert_uint_gt(b.modseq, m.modseq);
	OK(store_message_change_flags(st, m.id, 0, NULL, FLAG_SEEN, "$Forwarded", &a));
	ck_assert_uint_eq(a.flags, FLAG_SEEN | FLAG_DELETED);
	ck_assert_str_eq(a.keywords, "work $Forwarded");
	ck_assert_uint_gt(a.modseq, b.modseq);
	OK(store_message_get(st, inbox_of(uid), m.uid, &got));
	ck_assert_uint_eq(got.flags, FLAG_SEEN | FLAG_DELETED);
	ck_assert_str_eq(got.keywords, "work $Forwarded");
	ck_assert_uint_eq(got.modseq, a.modseq);
	/* A takes back only its own change; keywords compare case-insensitively. */
	OK(store_message_change_flags(st, m.id, FLAG_SEEN, "$FORWARDED", 0, "", &a));
	ck_assert_uint_eq(a.flags, FLAG_DELETED);
	ck_assert_str_eq(a.keywords, "work");
	/* A keyword already there is not added twice. */
	OK(store_message_change_flags(st, m.id, 0, "", 0, "WORK", &a));
	ck_assert_str_eq(a.keywords, "work");
	ck_assert_int_eq(store_message_change_flags(st, m.id + 1000, 0, "", FLAG_SEEN, "", &a),
			 STORE_NOTFOUND);
}
END_TEST

#define FLAGGERS 4
#define FLAG_ROUNDS 15

struct flagger {
	int64_t message_id;
	int n; /* this one's flag bit and keyword */
	int failures;
	char err[512];
};

/* OUT = the space-separated LIST without KW. */
static void keywords_without(const char *list, const char *kw, char *out, size_t len)
{
	char copy[512], *save = NULL;

	out[0] = '\0';
	snprintf(copy, sizeof(copy), "%s", list);
	for (char *t = strtok_r(copy, " ", &save); t != NULL; t = strtok_r(NULL, " ", &save))
		if (strcmp(t, kw) != 0)
			snprintf(out + strlen(out), len - strlen(out), "%s%s", out[0] ? " " : "", t);
}

/* Sets and clears its own keyword, then sets its own flag and keyword, from its own view. */
static void *change_flags(void *arg)
{
	struct flagger *f = arg;
	struct store *own = store_open(&cfg, f->err, sizeof(f->err));
	struct store_message view = {.keywords = ""}, out;
	char kw[16], want[sizeof(view.keywords) + 16];

	if (own == NULL) {
		f->failures = 1;
		return NULL;
	}
	snprintf(kw, sizeof(kw), "k%d", f->n);
	for (int i = 0; i <= 2 * FLAG_ROUNDS; i++) {
		bool add = i % 2 == 0;
		uint32_t flags = view.flags | (i == 2 * FLAG_ROUNDS ? 1u << f->n : 0);

		/* The keywords of the view, with or without this one's. */
		keywords_without(view.keywords, kw, want, sizeof(want));
		if (add)
			snprintf(want + strlen(want), sizeof(want) - strlen(want), "%s%s",
				 want[0] ? " " : "", kw);
		if (store_message_change_flags(own, f->message_id, view.flags, view.keywords, flags,
					       want, &out) != STORE_OK) {
			snprintf(f->err, sizeof(f->err), "%s", store_error(own));
			f->failures++;
			continue;
		}
		view.flags = out.flags;
		snprintf(view.keywords, sizeof(view.keywords), "%s", out.keywords);
	}
	store_close(own);
	return NULL;
}

START_TEST(concurrent_flag_changes_are_not_lost)
{
	struct flagger f[FLAGGERS];
	pthread_t t[FLAGGERS];
	struct store_message m, got;
	int64_t uid;

	OK(store_domain_add(st, "example.org"));
	uid = make_user("alice@example.org", 0);
	add_message(inbox_of(uid), "busy", &m);
	memset(f, 0, sizeof(f));
	for (int i = 0; i < FLAGGERS; i++) {
		f[i].message_id = m.id;
		f[i].n = i;
		ck_assert_int_eq(pthread_create(&t[i], NULL, change_flags, &f[i]), 0);
	}
	for (int i = 0; i < FLAGGERS; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < FLAGGERS; i++)
		ck_assert_msg(f[i].failures == 0, "flagger %d: %s", i, f[i].err);
	OK(store_message_get(st, inbox_of(uid), m.uid, &got));
	ck_assert_uint_eq(got.flags, (1u << FLAGGERS) - 1);
	for (int i = 0; i < FLAGGERS; i++) {
		char kw[16];
		snprintf(kw, sizeof(kw), "k%d", i);
		ck_assert_msg(strstr(got.keywords, kw) != NULL, "%s lost from \"%s\"", kw,
			      got.keywords);
	}
}
END_TEST

START_TEST(concurrent_writers_get_distinct_uids)
{
	struct writer w[WRITERS];
	pthread_t t[WRITERS];
	bool seen[WRITERS * PER_WRITER + 1] = {false};
	struct store_mailbox mb;
	int64_t uid;

	OK(store_domain_add(st, "example.org"));
	uid = make_user("alice@example.org", 0);
	memset(w, 0, sizeof(w));
	for (int i = 0; i < WRITERS; i++) {
		w[i].mailbox_id = inbox_of(uid);
		ck_assert_int_eq(pthread_create(&t[i], NULL, write_messages, &w[i]), 0);
	}
	for (int i = 0; i < WRITERS; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < WRITERS; i++) {
		ck_assert_msg(w[i].failures == 0, "writer %d: %s", i, w[i].err);
		for (int j = 0; j < PER_WRITER; j++) {
			uint32_t u = w[i].uids[j];

			ck_assert_uint_ge(u, 1);
			ck_assert_uint_le(u, WRITERS * PER_WRITER);
			ck_assert_msg(!seen[u], "uid %u given twice", u);
			seen[u] = true;
			/* Each writer sees its own uids increase. */
			if (j > 0)
				ck_assert_uint_gt(u, w[i].uids[j - 1]);
		}
	}
	OK(store_mailbox_get(st, uid, "INBOX", &mb));
	ck_assert_uint_eq(mb.messages, WRITERS * PER_WRITER);
	ck_assert_uint_eq(mb.uidnext, WRITERS * PER_WRITER + 1);
}
END_TEST

struct migrator {
	struct config_store cfg;
	int rc;
	int version;
	char err[512];
};

static void *migrate_fresh(void *arg)
{
	struct migrator *m = arg;
	struct store *own = store_open(&m->cfg, m->err, sizeof(m->err));

	m->rc = STORE_ERR;
	if (own == NULL)
		return NULL;
	m->rc = store_migrate(own, &m->version);
	if (m->rc != STORE_OK)
		snprintf(m->err, sizeof(m->err), "%s", store_error(own));
	store_close(own);
	return NULL;
}

/* posternd and `posternctl db migrate` may start together on an empty database. */
START_TEST(concurrent_migrations_apply_once)
{
	struct migrator m[3];
	pthread_t t[3];
	struct config_store fresh = cfg;

	if (engine == STORE_ENGINE_SQLITE)
		snprintf(fresh.sqlite_path, sizeof(fresh.sqlite_path), "%s/postern.db-fresh",
			 tmpdir);
	else
		snprintf(fresh.mariadb_database, sizeof(fresh.mariadb_database), "%.64s_fresh",
			 cfg.mariadb_database);
	for (int i = 0; i < 3; i++) {
		memset(&m[i], 0, sizeof(m[i]));
		m[i].cfg = fresh;
		ck_assert_int_eq(pthread_create(&t[i], NULL, migrate_fresh, &m[i]), 0);
	}
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < 3; i++) {
		ck_assert_msg(m[i].rc == STORE_OK, "migrator %d: %s", i, m[i].err);
		ck_assert_int_eq(m[i].version, SCHEMA_VERSION);
	}
	if (engine == STORE_ENGINE_SQLITE) {
		char path[sizeof(fresh.sqlite_path) + 8];

		unlink(fresh.sqlite_path);
		snprintf(path, sizeof(path), "%s-wal", fresh.sqlite_path);
		unlink(path);
		snprintf(path, sizeof(path), "%s-shm", fresh.sqlite_path);
		unlink(path);
	} else {
		MYSQL *c = admin_connect();
		char sql[200];

		snprintf(sql, sizeof(sql), "DROP DATABASE `%s`", fresh.mariadb_database);
		ck_assert_msg(mysql_query(c, sql) == 0, "drop: %s", mysql_error(c));
		mysql_close(c);
	}
}
END_TEST

#define WRITER_PROCESSES 3
#define PER_PROCESS 30

/* Separate processes (each its own program, handle and locks) too. */
START_TEST(concurrent_processes_get_distinct_uids)
{
	bool seen[WRITER_PROCESSES * PER_PROCESS + 1] = {false};
	pid_t pids[WRITER_PROCESSES];
	FILE *out[WRITER_PROCESSES];
	char mailbox[32], count[16];
	int64_t uid;
	int total = 0;

	OK(store_domain_add(st, "example.org"));
	uid = make_user("alice@example.org", 0);
	snprintf(mailbox, sizeof(mailbox), "%lld", (long long)inbox_of(uid));
	snprintf(count, sizeof(count), "%d", PER_PROCESS);
	for (int i = 0; i < WRITER_PROCESSES; i++) {
		int fds[2];

		ck_assert_int_eq(pipe(fds), 0);
		pids[i] = fork();
		ck_assert_int_ge(pids[i], 0);
		if (pids[i] == 0) {
			dup2(fds[1], STDOUT_FILENO);
			close(fds[0]);
			close(fds[1]);
			execl("/proc/self/exe", "test_store_concurrency", WRITER_ARG,
			      engine == STORE_ENGINE_SQLITE ? "sqlite" : "mariadb",
			      engine == STORE_ENGINE_SQLITE ? cfg.sqlite_path
							    : cfg.mariadb_database,
			      mailbox, count, (char *)NULL);
			_exit(127);
		}
		close(fds[1]);
		out[i] = fdopen(fds[0], "r");
		ck_assert_ptr_nonnull(out[i]);
	}
	for (int i = 0; i < WRITER_PROCESSES; i++) {
		unsigned u, prev = 0;
		int status = 0;

		while (fscanf(out[i], "%u", &u) == 1) {
			ck_assert_uint_ge(u, 1);
			ck_assert_uint_le(u, WRITER_PROCESSES * PER_PROCESS);
			ck_assert_msg(!seen[u], "uid %u given twice", u);
			ck_assert_uint_gt(u, prev);
			seen[u] = true;
			prev = u;
			total++;
		}
		fclose(out[i]);
		ck_assert_int_eq(waitpid(pids[i], &status, 0), pids[i]);
		ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "writer %d failed", i);
	}
	ck_assert_int_eq(total, WRITER_PROCESSES * PER_PROCESS);
}
END_TEST

START_TEST(bad_config_gives_clear_error)
{
	struct config_store bad = cfg;
	char err[512] = "";

	if (engine == STORE_ENGINE_SQLITE) {
		snprintf(bad.sqlite_path, sizeof(bad.sqlite_path), "/nonexistent-dir/x/postern.db");
		ck_assert_ptr_null(store_open(&bad, err, sizeof(err)));
		ck_assert_ptr_nonnull(strstr(err, "/nonexistent-dir/x/postern.db"));
	} else {
		snprintf(bad.mariadb_socket, sizeof(bad.mariadb_socket), "/nonexistent/mysql.sock");
		ck_assert_ptr_null(store_open(&bad, err, sizeof(err)));
		ck_assert_ptr_nonnull(strstr(err, "cannot connect to MariaDB"));
		bad = cfg;
		snprintf(bad.mariadb_database, sizeof(bad.mariadb_database), "x`; DROP");
		ck_assert_ptr_null(store_open(&bad, err, sizeof(err)));
		ck_assert_ptr_nonnull(strstr(err, "mariadb_database"));
	}
}
END_TEST

/* The server closes the connection (restart, wait_timeout): the call that
 * notices fails cleanly, the next one works on a new connection. */
START_TEST(mariadb_reconnects_after_losing_the_server)
{
	MYSQL *c = admin_connect();
	MYSQL_RES *res;
	MYSQL_ROW row;
	char sql[256];
	int killed = 0, rc;

	OK(store_domain_add(st, "before.example"));
	snprintf(sql, sizeof(sql),
		 "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = '%s' AND ID <> "
		 "CONNECTION_ID()",
		 cfg.mariadb_database);
	ck_assert_int_eq(mysql_query(c, sql), 0);
	res = mysql_store_result(c);
	ck_assert_ptr_nonnull(res);
	while ((row = mysql_fetch_row(res)) != NULL) {
		snprintf(sql, sizeof(sql), "KILL %s", row[0]);
		ck_assert_int_eq(mysql_query(c, sql), 0);
		killed++;
	}
	mysql_free_result(res);
	mysql_close(c);
	ck_assert_int_eq(killed, 1);
	rc = store_domain_exists(st, "before.example");
	ck_assert(rc == STORE_OK || rc == STORE_ERR);
	OK(store_domain_add(st, "after.example"));
	OK(store_domain_exists(st, "before.example"));
	OK(store_domain_exists(st, "after.example"));
}
END_TEST

static Suite *store_concurrency_suite(const char *name)
{
	Suite *s = suite_create(name);
	TCase *tc = tcase_create("store-concurrency");

	tcase_add_checked_fixture(tc, store_fixture_setup, store_fixture_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, rollback_leaves_nothing);
	tcase_add_test(tc, migrate_is_idempotent);
	tcase_add_test(tc, migrate_applies_a_missing_earlier_step);
	tcase_add_test(tc, concurrent_writers_get_distinct_uids);
	tcase_add_test(tc, flag_changes_keep_what_other_sessions_set);
	tcase_add_test(tc, concurrent_flag_changes_are_not_lost);
	tcase_add_test(tc, concurrent_processes_get_distinct_uids);
	tcase_add_test(tc, bad_config_gives_clear_error);
	tcase_add_test(tc, concurrent_migrations_apply_once);
	if (engine == STORE_ENGINE_SQLITE) {
		tcase_add_test(tc, sqlite_file_is_wal);
		tcase_add_test(tc, sqlite_flag_changes_commit_relaxed_and_mail_durably);
		tcase_add_test(tc, sqlite_file_is_private);
		tcase_add_test(tc, sqlite_handles_keep_their_locks);
	}
	if (engine == STORE_ENGINE_MARIADB)
		tcase_add_test(tc, mariadb_reconnects_after_losing_the_server);
	suite_add_tcase(s, tc);
	return s;
}

static int writer_process(char **argv)
{
	struct config_store c;
	struct store_message m;
	struct store *own;
	char err[512];
	int64_t mailbox = strtoll(argv[4], NULL, 10);
	int n = atoi(argv[5]);

	memset(&c, 0, sizeof(c));
	if (strcmp(argv[2], "mariadb") == 0) {
		c.engine = STORE_ENGINE_MARIADB;
		snprintf(c.mariadb_socket, sizeof(c.mariadb_socket), "%s",
			 getenv("POSTERN_TEST_MARIADB_SOCKET"));
		snprintf(c.mariadb_user, sizeof(c.mariadb_user), "root");
		snprintf(c.mariadb_database, sizeof(c.mariadb_database), "%s", argv[3]);
	} else {
		c.engine = STORE_ENGINE_SQLITE;
		snprintf(c.sqlite_path, sizeof(c.sqlite_path), "%s", argv[3]);
	}
	own = store_open(&c, err, sizeof(err));
	if (own == NULL) {
		fprintf(stderr, "%s\n", err);
		return EXIT_FAILURE;
	}
	for (int i = 0; i < n; i++) {
		if (store_message_add(own, mailbox, 0, 1, 4, (const unsigned char *)"mail", 4,
				      &m) != STORE_OK) {
			fprintf(stderr, "%s\n", store_error(own));
			store_close(own);
			return EXIT_FAILURE;
		}
		printf("%u\n", m.uid);
	}
	store_close(own);
	return EXIT_SUCCESS;
}

static int open_close(const char *path)
{
	struct config_store c;
	struct store *other;
	char err[512];

	memset(&c, 0, sizeof(c));
	c.engine = STORE_ENGINE_SQLITE;
	snprintf(c.sqlite_path, sizeof(c.sqlite_path), "%s", path);
	other = store_open(&c, err, sizeof(err));
	if (other == NULL) {
		fprintf(stderr, "%s\n", err);
		return EXIT_FAILURE;
	}
	store_close(other);
	return EXIT_SUCCESS;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], OPEN_CLOSE_ARG) == 0)
		return open_close(argv[2]);
	if (argc == 6 && strcmp(argv[1], WRITER_ARG) == 0)
		return writer_process(argv);
	return store_fixture_run_all(store_concurrency_suite, "store-concurrency");
}
