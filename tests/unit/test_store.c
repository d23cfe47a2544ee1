/*
 * test_store.c - the store suite. The same cases run on SQLite (a temporary
 * file) and, when POSTERN_TEST_MARIADB_SOCKET names a running server's
 * socket, on MariaDB (a database postern_test_<pid>_<n> per case, dropped
 * afterwards).
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

/* The newest migration in sql/<engine>/. */
#define SCHEMA_VERSION 8

/* "test_store --open-close PATH" opens and closes a SQLite store, as a
 * separate process would (see sqlite_handles_keep_their_locks). */
#define OPEN_CLOSE_ARG "--open-close"
#define WRITER_ARG "--writer"

static enum store_engine engine;
static struct config_store cfg;
static char tmpdir[256];
static struct store *st;
static int db_counter;

/* ---- fixtures ---- */

static MYSQL *admin_connect(void)
{
	MYSQL *c = mysql_init(NULL);

	ck_assert_ptr_nonnull(c);
	ck_assert_msg(mysql_real_connect(c, NULL, "root", NULL, NULL, 0, cfg.mariadb_socket, 0) !=
			  NULL,
		      "connect: %s", mysql_error(c));
	return c;
}

static void setup(void)
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

static void teardown(void)
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

#define OK(expr) ck_assert_msg((expr) == STORE_OK, "%s: %s", #expr, store_error(st))

/* A user with binary keys that contain NUL bytes. */
static int64_t make_user(const char *address, int64_t quota)
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

static int64_t inbox_of(int64_t user_id)
{
	struct store_mailbox mb;

	OK(store_mailbox_get(st, user_id, "INBOX", &mb));
	return mb.id;
}

static int64_t add_message(int64_t mailbox_id, const char *text, struct store_message *out)
{
	OK(store_message_add(st, mailbox_id, 0, 1700000000, (int64_t)strlen(text),
			     (const unsigned char *)text, strlen(text), out));
	return out->id;
}

/* ---- domains ---- */

static int collect_domain(void *arg, const char *domain)
{
	char *buf = arg;

	strcat(buf, domain);
	strcat(buf, ",");
	return 0;
}

START_TEST(domains_add_list_delete)
{
	char list[256] = "";

	OK(store_domain_add(st, "Example.ORG"));
	OK(store_domain_add(st, "a.example"));
	ck_assert_int_eq(store_domain_add(st, "example.org"), STORE_EXISTS);
	OK(store_domain_exists(st, "EXAMPLE.org"));
	ck_assert_int_eq(store_domain_exists(st, "nope.example"), STORE_NOTFOUND);
	ck_assert_int_eq(store_domain_add(st, ""), STORE_ERR);
	ck_assert_int_eq(store_domain_add(st, "a@b"), STORE_ERR);
	ck_assert_int_eq(store_domain_exists(st, ""), STORE_NOTFOUND);
	ck_assert_int_eq(store_domain_del(st, "a@b"), STORE_NOTFOUND);
	OK(store_domain_list(st, collect_domain, list));
	ck_assert_str_eq(list, "a.example,example.org,");
	make_user("bob@example.org", 0);
	ck_assert_int_eq(store_domain_del(st, "example.org"), STORE_EXISTS);
	OK(store_user_del(st, "bob@example.org"));
	OK(store_domain_del(st, "example.org"));
	ck_assert_int_eq(store_domain_del(st, "example.org"), STORE_NOTFOUND);
	ck_assert_int_eq(store_domain_exists(st, "example.org"), STORE_NOTFOUND);
}
END_TEST

/* ---- users ---- */

static int count_user(void *arg, const struct store_user *u)
{
	(*(int *)arg)++;
	ck_assert_int_gt(u->wrapped_key_len, 0);
	ck_assert_ptr_nonnull(strchr(u->address, '@'));
	return 0;
}

static int mailbox_names(void *arg, const struct store_mailbox *mb)
{
	char *buf = arg;
	char item[600];

	snprintf(item, sizeof(item), "%s:%d,", mb->name, (int)mb->special_use);
	strcat(buf, item);
	return 0;
}

START_TEST(users_round_trip_binary_keys)
{
	struct store_user u, dup;
	unsigned char recovery[80];
	unsigned char newwrap[3] = {0, 1, 0};
	char names[512] = "";
	int64_t id;
	int n = 0;

	OK(store_domain_add(st, "example.org"));
	OK(store_domain_add(st, "other.org"));
	id = make_user("Alice@Example.org", 1000);
	OK(store_user_get(st, "alice@example.org", &u));
	ck_assert_int_eq(u.id, id);
	ck_assert_str_eq(u.address, "alice@example.org");
	ck_assert_str_eq(u.password_hash, "$argon2id$v=19$m=65536,t=2,p=1$x$y");
	for (size_t i = 0; i < sizeof(u.public_key); i++)
		ck_assert_int_eq(u.public_key[i], (unsigned char)(i * 7));
	ck_assert_int_eq(u.wrapped_key_len, 48);
	for (size_t i = 0; i < 48; i++)
		ck_assert_int_eq(u.wrapped_key[i], i == 5 ? 0 : (unsigned char)(255 - i * 3));
	ck_assert_ptr_null(u.recovery_key);
	ck_assert_int_eq(u.quota_bytes, 1000);
	ck_assert_int_eq(u.used_bytes, 0);
	ck_assert(!u.locked);
	ck_assert_int_gt(u.created, 0);
	store_user_clear(&u);

	memset(&dup, 0, sizeof(dup));
	snprintf(dup.address, sizeof(dup.address), "ALICE@example.org");
	ck_assert_int_eq(store_user_add(st, &dup), STORE_EXISTS);
	snprintf(dup.address, sizeof(dup.address), "carol@missing.org");
	ck_assert_int_eq(store_user_add(st, &dup), STORE_NOTFOUND);
	snprintf(dup.address, sizeof(dup.address), "no-at-sign");
	ck_assert_int_eq(store_user_add(st, &dup), STORE_ERR);
	ck_assert_int_eq(store_user_get(st, "nobody@example.org", &u), STORE_NOTFOUND);
	store_user_clear(&u);
	ck_assert_int_eq(store_user_get(st, "no-at-sign", &u), STORE_NOTFOUND);
	ck_assert_int_eq(store_user_get(st, "", &u), STORE_NOTFOUND);
	ck_assert_int_eq(store_user_del(st, "@example.org"), STORE_NOTFOUND);
	ck_assert_int_eq(store_user_get_by_id(st, id + 1000, &u), STORE_NOTFOUND);

	for (size_t i = 0; i < sizeof(recovery); i++)
		recovery[i] = (unsigned char)(i % 3);
	OK(store_user_set_recovery(st, id, recovery, sizeof(recovery)));
	OK(store_user_set_password(st, id, "$argon2id$new", newwrap, sizeof(newwrap)));
	OK(store_user_set_locked(st, id, true));
	OK(store_user_set_quota(st, id, 5000));
	ck_assert_int_eq(store_user_set_locked(st, id + 1000, true), STORE_NOTFOUND);
	ck_assert_int_eq(store_user_set_quota(st, id, -1), STORE_ERR);
	OK(store_user_get_by_id(st, id, &u));
	ck_assert_str_eq(u.password_hash, "$argon2id$new");
	ck_assert_int_eq(u.wrapped_key_len, 3);
	ck_assert_mem_eq(u.wrapped_key, newwrap, 3);
	ck_assert_int_eq(u.recovery_key_len, sizeof(recovery));
	ck_assert_mem_eq(u.recovery_key, recovery, sizeof(recovery));
	ck_assert(u.locked);
	ck_assert_int_eq(u.quota_bytes, 5000);
	store_user_clear(&u);

	OK(store_mailbox_list(st, id, mailbox_names, names));
	ck_assert_str_eq(names, "Archive:5,Drafts:2,INBOX:0,Junk:3,Sent:1,Trash:4,");

	make_user("dave@other.org", 0);
	OK(store_user_list(st, NULL, count_user, &n));
	ck_assert_int_eq(n, 2);
	n = 0;
	OK(store_user_list(st, "other.org", count_user, &n));
	ck_assert_int_eq(n, 1);

	OK(store_user_del(st, "alice@example.org"));
	ck_assert_int_eq(store_user_del(st, "alice@example.org"), STORE_NOTFOUND);
	ck_assert_int_eq(store_user_get(st, "alice@example.org", &u), STORE_NOTFOUND);
	store_user_clear(&u);
}
END_TEST

/* ---- aliases ---- */

static int collect_alias(void *arg, const char *alias, const char *target)
{
	char *buf = arg;

	strcat(buf, alias);
	strcat(buf, ">");
	strcat(buf, target);
	strcat(buf, ",");
	return 0;
}

START_TEST(aliases_resolve_to_users)
{
	char out[STORE_ADDRESS_MAX + 1];
	char list[512] = "";

	OK(store_domain_add(st, "example.org"));
	OK(store_domain_add(st, "b.org"));
	make_user("alice@example.org", 0);
	OK(store_alias_add(st, "Postmaster@example.org", "alice@example.org"));
	OK(store_alias_add(st, "hop@b.org", "postmaster@example.org"));
	ck_assert_int_eq(store_alias_add(st, "postmaster@example.org", "x@example.org"),
			 STORE_EXISTS);
	ck_assert_int_eq(store_alias_add(st, "a@nowhere.org", "alice@example.org"), STORE_NOTFOUND);

	OK(store_resolve_address(st, "ALICE@example.org", out));
	ck_assert_str_eq(out, "alice@example.org");
	OK(store_resolve_address(st, "postmaster@EXAMPLE.org", out));
	ck_assert_str_eq(out, "alice@example.org");
	OK(store_resolve_address(st, "hop@b.org", out));
	ck_assert_str_eq(out, "alice@example.org");
	ck_assert_int_eq(store_resolve_address(st, "nobody@example.org", out), STORE_NOTFOUND);
	ck_assert_int_eq(store_resolve_address(st, "example.org", out), STORE_NOTFOUND);
	ck_assert_int_eq(store_resolve_address(st, "a@", out), STORE_NOTFOUND);
	ck_assert_int_eq(store_resolve_address(st, "\xc0\xaf@example.org", out), STORE_NOTFOUND);
	OK(store_alias_add(st, "@example.org", "alice@example.org"));
	OK(store_resolve_address(st, "nobody@example.org", out));
	ck_assert_str_eq(out, "alice@example.org");

	OK(store_alias_list(st, "example.org", collect_alias, list));
	ck_assert_str_eq(list, "@example.org>alice@example.org,"
			       "postmaster@example.org>alice@example.org,");
	OK(store_alias_del(st, "postmaster@example.org"));
	ck_assert_int_eq(store_alias_del(st, "postmaster@example.org"), STORE_NOTFOUND);
	list[0] = '\0';
	OK(store_alias_list(st, NULL, collect_alias, list));
	ck_assert_str_eq(list, "@example.org>alice@example.org,hop@b.org>postmaster@example.org,");
}
END_TEST

/* ---- mailboxes ---- */

START_TEST(mailboxes_create_rename_delete)
{
	struct store_mailbox mb, child, again;
	struct store_message m;
	struct store_user u;
	int64_t uid;

	OK(store_domain_add(st, "example.org"));
	uid = make_user("alice@example.org", 0);
	OK(store_mailbox_create(st, uid, "Projects", SPECIAL_NONE, &mb));
	ck_assert_str_eq(mb.name, "Projects");
	ck_assert_int_eq(mb.uidnext, 1);
	ck_assert_int_gt(mb.uidvalidity, 0);
	ck_assert(mb.subscribed);
	OK(store_mailbox_create(st, uid, "Projects/Q1", SPECIAL_NONE, &child));
	ck_assert_int_eq(store_mailbox_create(st, uid, "Projects", SPECIAL_NONE, NULL),
			 STORE_EXISTS);
	ck_assert_int_eq(store_mailbox_create(st, uid, "inbox", SPECIAL_NONE, NULL), STORE_EXISTS);
	ck_assert_int_eq(store_mailbox_create(st, uid, "", SPECIAL_NONE, NULL), STORE_ERR);
	ck_assert_int_eq(store_mailbox_create(st, uid, "a//b", SPECIAL_NONE, NULL), STORE_ERR);
	ck_assert_int_eq(store_mailbox_create(st, uid, "bad\xc3(", SPECIAL_NONE, NULL), STORE_ERR);
	ck_assert_int_eq(store_mailbox_create(st, uid, "surrogate\xed\xa0\x80", SPECIAL_NONE, NULL),
			 STORE_ERR);
	OK(store_mailbox_create(st, uid, "Entw\xc3\xbcrfe/\xf0\x9f\x93\xa6", SPECIAL_NONE, NULL));
	OK(store_mailbox_get(st, uid, "Entw\xc3\xbcrfe/\xf0\x9f\x93\xa6", &again));
	ck_assert_str_eq(again.name, "Entw\xc3\xbcrfe/\xf0\x9f\x93\xa6");
	ck_assert_int_eq(store_mailbox_create(st, uid + 99, "X", SPECIAL_NONE, NULL),
			 STORE_NOTFOUND);
	ck_assert_int_eq(store_mailbox_get(st, uid, "a//b", &again), STORE_NOTFOUND);
	OK(store_mailbox_get(st, uid, "inbox", &again));
	ck_assert_str_eq(again.name, "INBOX");

	OK(store_mailbox_get_special(st, uid, SPECIAL_JUNK, &again));
	ck_assert_str_eq(again.name, "Junk");

	add_message(child.id, "hello", &m);
	OK(store_mailbox_rename(st, mb.id, "Work"));
	OK(store_mailbox_get(st, uid, "Work/Q1", &again));
	ck_assert_int_eq(again.id, child.id);
	ck_assert_int_eq(again.messages, 1);
	ck_assert_int_eq(again.bytes, 5);
	ck_assert_int_eq(store_mailbox_get(st, uid, "Projects/Q1", &again), STORE_NOTFOUND);
	ck_assert_int_eq(store_mailbox_rename(st, mb.id, "Trash"), STORE_EXISTS);
	ck_assert_int_eq(store_mailbox_rename(st, mb.id + 999, "Zzz"), STORE_NOTFOUND);

	OK(store_mailbox_set_subscribed(st, child.id, false));
	OK(store_mailbox_get(st, uid, "Work/Q1", &again));
	ck_assert(!again.subscribed);

	OK(store_user_get_by_id(st, uid, &u));
	ck_assert_int_eq(u.used_bytes, 5);
	store_user_clear(&u);
	OK(store_mailbox_delete(st, child.id));
	ck_assert_int_eq(store_mailbox_get(st, uid, "Work/Q1", &again), STORE_NOTFOUND);
	ck_assert_int_eq(store_message_blob(st, m.id, &(unsigned char *){NULL}, &(size_t){0}),
			 STORE_NOTFOUND);
	OK(store_user_get_by_id(st, uid, &u));
	ck_assert_int_eq(u.used_bytes, 0);
	store_user_clear(&u);
	ck_assert_int_eq(store_mailbox_delete(st, child.id), STORE_NOTFOUND);
	/* A recreated name gets a new UIDVALIDITY. */
	OK(store_mailbox_create(st, uid, "Work/Q1", SPECIAL_NONE, &again));
	ck_assert_uint_ne(again.uidvalidity, child.uidvalidity);
}
END_TEST

/* ---- messages ---- */

static int collect_uid(void *arg, const struct store_message *m)
{
	char *buf = arg;
	char item[32];

	snprintf(item, sizeof(item), "%u,", m->uid);
	strcat(buf, item);
	return 0;
}

START_TEST(messages_uid_modseq_flags_blob)
{
	static const unsigned char blob[] = {'a', 0, 'b', 0, 0, 0xff, '\n', 0};
	struct store_message m1, m2, m3, got, copy;
	struct store_mailbox inbox, archive, before;
	struct store_user u;
	unsigned char *data = NULL;
	size_t len = 0;
	uint64_t modseq = 0;
	char uids[128] = "";
	int64_t uid, other;

	OK(store_domain_add(st, "example.org"));
	uid = make_user("alice@example.org", 0);
	other = make_user("bob@example.org", 0);
	OK(store_mailbox_get(st, uid, "INBOX", &inbox));
	OK(store_mailbox_get(st, uid, "Archive", &archive));

	OK(store_message_add(st, inbox.id, FLAG_SEEN, 1700000001, 1234, blob, sizeof(blob), &m1));
	add_message(inbox.id, "second", &m2);
	add_message(inbox.id, "third", &m3);
	ck_assert_uint_eq(m1.uid, 1);
	ck_assert_uint_eq(m2.uid, 2);
	ck_assert_uint_eq(m3.uid, 3);
	ck_assert_uint_lt(m1.modseq, m2.modseq);
	ck_assert_uint_lt(m2.modseq, m3.modseq);

	OK(store_message_blob(st, m1.id, &data, &len));
	ck_assert_uint_eq(len, sizeof(blob));
	ck_assert_mem_eq(data, blob, sizeof(blob));
	free(data);

	OK(store_message_get(st, inbox.id, 1, &got));
	ck_assert_int_eq(got.id, m1.id);
	ck_assert_uint_eq(got.flags, FLAG_SEEN);
	ck_assert_int_eq(got.size, 1234);
	ck_assert_int_eq(got.internal_date, 1700000001);
	ck_assert_int_eq(store_message_get(st, inbox.id, 99, &got), STORE_NOTFOUND);

	OK(store_message_set_flags(st, m2.id, FLAG_FLAGGED | FLAG_ANSWERED, "$Forwarded work",
				   &modseq));
	ck_assert_uint_gt(modseq, m3.modseq);
	OK(store_message_get(st, inbox.id, 2, &got));
	ck_assert_uint_eq(got.flags, FLAG_FLAGGED | FLAG_ANSWERED);
	ck_assert_str_eq(got.keywords, "$Forwarded work");
	ck_assert_uint_eq(got.modseq, modseq);
	OK(store_mailbox_get(st, uid, "INBOX", &before));
	ck_assert_uint_eq(before.highestmodseq, modseq);
	ck_assert_uint_eq(before.uidnext, 4);
	ck_assert_uint_eq(before.messages, 3);

	OK(store_message_list(st, inbox.id, 2, collect_uid, uids));
	ck_assert_str_eq(uids, "2,3,");

	OK(store_user_get_by_id(st, uid, &u));
	ck_assert_int_eq(u.used_bytes, 1234 + 6 + 5);
	store_user_clear(&u);

	OK(store_message_copy(st, m1.id, archive.id, &copy));
	ck_assert_uint_eq(copy.uid, 1);
	ck_assert_uint_eq(copy.flags, FLAG_SEEN);
	ck_assert_int_eq(store_message_copy(st, m1.id, inbox_of(other), &copy), STORE_ERR);
	OK(store_message_expunge(st, m1.id));
	ck_assert_int_eq(store_message_get(st, inbox.id, 1, &got), STORE_NOTFOUND);
	ck_assert_int_eq(store_message_expunge(st, m1.id), STORE_NOTFOUND);
	/* The copy keeps its (shared) blob. */
	OK(store_message_blob(st, copy.id, &data, &len));
	ck_assert_mem_eq(data, blob, sizeof(blob));
	free(data);
	OK(store_user_get_by_id(st, uid, &u));
	ck_assert_int_eq(u.used_bytes, 1234 + 6 + 5);
	store_user_clear(&u);

	/* UIDs are never reused after an expunge. */
	add_message(inbox.id, "fourth", &got);
	ck_assert_uint_eq(got.uid, 4);
}
END_TEST

START_TEST(quota_refuses_and_expunge_frees)
{
	struct store_message m, extra;
	struct store_mailbox mb;
	struct store_user u;
	unsigned char blob[60] = {0};
	int64_t uid, inbox;

	OK(store_domain_add(st, "example.org"));
	uid = make_user("alice@example.org", 100);
	inbox = inbox_of(uid);
	OK(store_message_add(st, inbox, 0, 1, 60, blob, sizeof(blob), &m));
	ck_assert_int_eq(store_message_add(st, inbox, 0, 1, 41, blob, 41, &extra), STORE_QUOTA);
	OK(store_mailbox_get(st, uid, "INBOX", &mb));
	ck_assert_uint_eq(mb.uidnext, 2); /* the refused message took no uid */
	ck_assert_uint_eq(mb.messages, 1);
	OK(store_message_add(st, inbox, 0, 1, 40, blob, 40, &extra));
	OK(store_user_get_by_id(st, uid, &u));
	ck_assert_int_eq(u.used_bytes, 100);
	store_user_clear(&u);
	ck_assert_int_eq(store_message_copy(st, extra.id, inbox, NULL), STORE_QUOTA);
	OK(store_message_expunge(st, m.id));
	OK(store_user_get_by_id(st, uid, &u));
	ck_assert_int_eq(u.used_bytes, 40);
	store_user_clear(&u);
	OK(store_message_add(st, inbox, 0, 1, 60, blob, 60, &m));
	OK(store_user_set_quota(st, uid, 0)); /* unlimited */
	OK(store_message_add(st, inbox, 0, 1, 1000000, blob, 10, &m));
}
END_TEST

START_TEST(missing_rows_are_reported_not_crashed_on)
{
	struct store_message m;
	struct store_stats s;
	uint64_t modseq;
	int64_t uid, inbox;

	OK(store_domain_add(st, "example.org"));
	uid = make_user("alice@example.org", 0);
	inbox = inbox_of(uid);
	ck_assert_int_eq(
	    store_message_add(st, inbox + 1000, 0, 1, 1, (const unsigned char *)"x", 1, &m),
	    STORE_NOTFOUND);
	ck_assert_int_eq(store_message_add(st, inbox, 0, 1, -1, (const unsigned char *)"x", 1, &m),
			 STORE_ERR);
	add_message(inbox, "body", &m);
	ck_assert_int_eq(store_message_set_flags(st, m.id + 1000, 0, "", &modseq), STORE_NOTFOUND);
	ck_assert_int_eq(store_message_copy(st, m.id, inbox + 1000, NULL), STORE_NOTFOUND);
	ck_assert_int_eq(store_message_copy(st, m.id + 1000, inbox, NULL), STORE_NOTFOUND);
	ck_assert_int_eq(store_mailbox_set_subscribed(st, inbox + 1000, true), STORE_NOTFOUND);
	ck_assert_int_eq(store_mailbox_get_special(st, uid + 1000, SPECIAL_SENT, NULL),
			 STORE_NOTFOUND);

	/* Deleting the user takes its mail along. */
	OK(store_user_del(st, "alice@example.org"));
	OK(store_stats(st, &s));
	ck_assert_int_eq(s.messages, 0);
	ck_assert_int_eq(s.bytes, 0);
	ck_assert_int_eq(store_message_blob(st, m.id, &(unsigned char *){NULL}, &(size_t){0}),
			 STORE_NOTFOUND);
}
END_TEST

/* Several megabytes of binary content come back byte for byte. */
START_TEST(large_blob_round_trip)
{
	size_t n = 8u << 20;
	unsigned char *blob = malloc(n), *back = NULL;
	struct store_message m;
	size_t len = 0;
	int64_t uid;

	ck_assert_ptr_nonnull(blob);
	for (size_t i = 0; i < n; i++)
		blob[i] = (unsigned char)((i * 2654435761u) >> 13);
	OK(store_domain_add(st, "example.org"));
	uid = make_user("alice@example.org", 0);
	OK(store_message_add(st, inbox_of(uid), 0, 1, (int64_t)n, blob, n, &m));
	OK(store_message_blob(st, m.id, &back, &len));
	ck_assert_uint_eq(len, n);
	ck_assert(memcmp(back, blob, n) == 0);
	free(back);
	free(blob);
}
END_TEST

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
		execl("/proc/self/exe", "test_store", OPEN_CLOSE_ARG, cfg.sqlite_path,
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

struct nested {
	int64_t mailbox_id;
	int outer;
	int inner;
};

static int count_inner(void *arg, const struct store_message *m)
{
	(*(int *)arg)++;
	return 0;
}

/* A list callback may use the store again, even the same query. */
static int list_again(void *arg, const struct store_message *m)
{
	struct nested *n = arg;
	struct store_message got;
	uint64_t modseq;

	n->outer++;
	OK(store_message_list(st, n->mailbox_id, 1, count_inner, &n->inner));
	OK(store_message_get(st, n->mailbox_id, m->uid, &got));
	ck_assert_int_eq(got.id, m->id);
	OK(store_message_set_flags(st, m->id, FLAG_SEEN, "", &modseq));
	return 0;
}

START_TEST(callbacks_may_reenter_the_store)
{
	struct nested n = {0, 0, 0};
	struct store_message m;
	int64_t uid;

	OK(store_domain_add(st, "example.org"));
	uid = make_user("alice@example.org", 0);
	n.mailbox_id = inbox_of(uid);
	add_message(n.mailbox_id, "one", &m);
	add_message(n.mailbox_id, "two", &m);
	add_message(n.mailbox_id, "three", &m);
	OK(store_message_list(st, n.mailbox_id, 1, list_again, &n));
	ck_assert_int_eq(n.outer, 3);
	ck_assert_int_eq(n.inner, 9);
	OK(store_message_get(st, n.mailbox_id, 3, &m));
	ck_assert_uint_eq(m.flags, FLAG_SEEN);
}
END_TEST

START_TEST(mailbox_lookup_gives_the_id_get_gives)
{
	struct store_mailbox inbox, junk, other_inbox;
	int64_t uid, other, id = 0;

	OK(store_domain_add(st, "example.org"));
	uid = make_user("alice@example.org", 0);
	other = make_user("bob@example.org", 0);
	OK(store_mailbox_get(st, uid, "INBOX", &inbox));
	OK(store_mailbox_get_special(st, uid, SPECIAL_JUNK, &junk));
	OK(store_mailbox_get(st, other, "INBOX", &other_inbox));
	OK(store_mailbox_lookup(st, uid, "INBOX", SPECIAL_NONE, &id));
	ck_assert_int_eq(id, inbox.id);
	OK(store_mailbox_lookup(st, uid, "inbox", SPECIAL_NONE, &id));
	ck_assert_int_eq(id, inbox.id);
	OK(store_mailbox_lookup(st, uid, NULL, SPECIAL_JUNK, &id));
	ck_assert_int_eq(id, junk.id);
	OK(store_mailbox_lookup(st, other, "INBOX", SPECIAL_NONE, &id));
	ck_assert_int_eq(id, other_inbox.id);
	ck_assert_int_eq(store_mailbox_lookup(st, uid, "Nowhere", SPECIAL_NONE, &id),
			 STORE_NOTFOUND);
	OK(store_mailbox_delete(st, junk.id));
	ck_assert_int_eq(store_mailbox_lookup(st, uid, NULL, SPECIAL_JUNK, &id), STORE_NOTFOUND);
}
END_TEST

START_TEST(scan_results_follow_their_message)
{
	struct store_scan_result r, got;
	struct store_message m, copy;
	struct store_mailbox junk;
	int64_t uid;

	OK(store_domain_add(st, "example.org"));
	uid = make_user("alice@example.org", 0);
	add_message(inbox_of(uid), "spam spam", &m);
	memset(&r, 0, sizeof(r));
	r.message_id = m.id;
	snprintf(r.verdict, sizeof(r.verdict), "spam");
	r.score = 0.75;
	r.confidence = 0.5;
	snprintf(r.model_version, sizeof(r.model_version), "base-1");
	r.reasons = "[\"token:viagra\"]";
	OK(store_scan_result_put(st, &r));
	OK(store_scan_result_get(st, m.id, &got));
	ck_assert_str_eq(got.verdict, "spam");
	ck_assert_double_eq_tol(got.score, 0.75, 1e-9);
	ck_assert_double_eq_tol(got.confidence, 0.5, 1e-9);
	ck_assert_str_eq(got.model_version, "base-1");
	ck_assert_str_eq(got.reasons, "[\"token:viagra\"]");
	free(got.reasons);

	/* One result per message: a second put replaces the first. */
	snprintf(r.verdict, sizeof(r.verdict), "clean");
	r.reasons = NULL;
	OK(store_scan_result_put(st, &r));
	OK(store_scan_result_get(st, m.id, &got));
	ck_assert_str_eq(got.verdict, "clean");
	ck_assert_ptr_null(got.reasons);

	OK(store_mailbox_get(st, uid, "Junk", &junk));
	OK(store_message_copy(st, m.id, junk.id, &copy));
	OK(store_scan_result_get(st, copy.id, &got));
	ck_assert_str_eq(got.verdict, "clean");

	OK(store_message_expunge(st, m.id));
	ck_assert_int_eq(store_scan_result_get(st, m.id, &got), STORE_NOTFOUND);
	r.message_id = m.id;
	ck_assert_int_eq(store_scan_result_put(st, &r), STORE_NOTFOUND);
}
END_TEST

/* ---- queue ---- */

static int collect_queue(void *arg, const struct store_queue_entry *e)
{
	char *buf = arg;
	char item[1600];

	snprintf(item, sizeof(item), "%s|%s|%s|%d|%s,", e->sender, e->recipient, e->dsn_notify,
		 e->attempts, e->last_error);
	strcat(buf, item);
	return 0;
}

START_TEST(queue_add_update_delete)
{
	struct store_queue_entry a, b;
	static const unsigned char blob[] = {1, 0, 2, 0, 3};
	unsigned char *data;
	size_t len;
	char list[2048] = "";

	memset(&a, 0, sizeof(a));
	snprintf(a.sender, sizeof(a.sender), "alice@example.org");
	snprintf(a.recipient, sizeof(a.recipient), "x@remote.example");
	snprintf(a.dsn_notify, sizeof(a.dsn_notify), "FAILURE,DELAY");
	a.next_attempt = 200;
	b = a;
	b.sender[0] = '\0'; /* null sender (a bounce) */
	b.next_attempt = 100;
	OK(store_queue_add(st, &a, blob, sizeof(blob)));
	OK(store_queue_add(st, &b, blob, 2));
	ck_assert_int_ne(a.id, b.id);
	OK(store_queue_list(st, collect_queue, list));
	ck_assert_str_eq(list, "|x@remote.example|FAILURE,DELAY|0|,"
			       "alice@example.org|x@remote.example|FAILURE,DELAY|0|,");
	OK(store_queue_blob(st, a.id, &data, &len));
	ck_assert_uint_eq(len, sizeof(blob));
	ck_assert_mem_eq(data, blob, sizeof(blob));
	free(data);
	OK(store_queue_update(st, b.id, 1, 500, "451 4.7.1 try later"));
	list[0] = '\0';
	OK(store_queue_list(st, collect_queue, list));
	ck_assert_str_eq(list, "alice@example.org|x@remote.example|FAILURE,DELAY|0|,"
			       "|x@remote.example|FAILURE,DELAY|1|451 4.7.1 try later,");
	OK(store_queue_del(st, a.id));
	ck_assert_int_eq(store_queue_del(st, a.id), STORE_NOTFOUND);
	ck_assert_int_eq(store_queue_blob(st, a.id, &data, &len), STORE_NOTFOUND);
	ck_assert_int_eq(store_queue_update(st, a.id, 1, 1, ""), STORE_NOTFOUND);
	ck_assert_int_eq(store_queue_retry_later(st, a.id, 1, 1, "", "[held] "), STORE_NOTFOUND);
}
END_TEST

static int next_attempt_of(void *arg, const struct store_queue_entry *e)
{
	*(int64_t *)arg = e->next_attempt;
	return 0;
}

/* An attempt that ends after an admin held its entry counts, but does not undo the hold. */
START_TEST(queue_retry_later_keeps_a_hold)
{
	struct store_queue_entry e;
	int64_t next = 0;
	static const unsigned char blob[] = {1, 2};
	char list[1024] = "";

	memset(&e, 0, sizeof(e));
	snprintf(e.sender, sizeof(e.sender), "alice@example.org");
	snprintf(e.recipient, sizeof(e.recipient), "x@remote.example");
	e.next_attempt = 100;
	OK(store_queue_add(st, &e, blob, sizeof(blob)));
	OK(store_queue_retry_later(st, e.id, 1, 300, "451 busy", "[held] "));
	OK(store_queue_list(st, collect_queue, list));
	ck_assert_str_eq(list, "alice@example.org|x@remote.example||1|451 busy,");
	/* Held while the second attempt runs. */
	OK(store_queue_update(st, e.id, 1, 253402300799, "[held] 451 busy"));
	OK(store_queue_retry_later(st, e.id, 2, 400, "451 still busy", "[held] "));
	list[0] = '\0';
	OK(store_queue_list(st, collect_queue, list));
	ck_assert_str_eq(list, "alice@example.org|x@remote.example||2|[held] 451 busy,");
	OK(store_queue_list(st, next_attempt_of, &next));
	ck_assert_int_eq(next, 253402300799);
}
END_TEST

/* ---- quarantine ---- */

static int count_quarantine(void *arg, const struct store_quarantine_entry *e)
{
	(*(int *)arg)++;
	ck_assert_str_eq(e->verdict, "malware");
	return 0;
}

START_TEST(quarantine_keeps_sealed_copy)
{
	struct store_quarantine_entry e, got;
	static const unsigned char blob[] = {9, 0, 9};
	unsigned char *data;
	size_t len;
	int n = 0;

	memset(&e, 0, sizeof(e));
	snprintf(e.recipient, sizeof(e.recipient), "alice@example.org");
	snprintf(e.sender, sizeof(e.sender), "evil@bad.example");
	snprintf(e.verdict, sizeof(e.verdict), "malware");
	snprintf(e.reason, sizeof(e.reason), "attachment: .exe in zip");
	e.size = 3;
	OK(store_quarantine_add(st, &e, blob, sizeof(blob)));
	OK(store_quarantine_list(st, count_quarantine, &n));
	ck_assert_int_eq(n, 1);
	OK(store_quarantine_get(st, e.id, &got, &data, &len));
	ck_assert_str_eq(got.reason, "attachment: .exe in zip");
	ck_assert_str_eq(got.sender, "evil@bad.example");
	ck_assert_int_eq(got.size, 3);
	ck_assert_int_gt(got.created, 0);
	ck_assert_uint_eq(len, 3);
	ck_assert_mem_eq(data, blob, 3);
	free(data);
	OK(store_quarantine_del(st, e.id));
	ck_assert_int_eq(store_quarantine_get(st, e.id, &got, &data, &len), STORE_NOTFOUND);
	ck_assert_int_eq(store_quarantine_del(st, e.id), STORE_NOTFOUND);
}
END_TEST

/* ---- user data ---- */

START_TEST(user_data_put_get_replace)
{
	unsigned char *data;
	size_t len;
	int64_t uid;

	OK(store_domain_add(st, "example.org"));
	uid = make_user("alice@example.org", 0);
	ck_assert_int_eq(store_user_data_get(st, uid, "scan_model", &data, &len), STORE_NOTFOUND);
	OK(store_user_data_put(st, uid, "scan_model", (const unsigned char *)"v1\0x", 4));
	OK(store_user_data_put(st, uid, "scan_model", (const unsigned char *)"v2\0yz", 5));
	OK(store_user_data_get(st, uid, "scan_model", &data, &len));
	ck_assert_uint_eq(len, 5);
	ck_assert_mem_eq(data, "v2\0yz", 5);
	free(data);
	ck_assert_int_eq(
	    store_user_data_put(st, uid + 50, "scan_model", (const unsigned char *)"x", 1),
	    STORE_NOTFOUND);
	ck_assert_int_eq(store_user_data_put(st, uid, "", (const unsigned char *)"x", 1),
			 STORE_ERR);
	OK(store_user_del(st, "alice@example.org"));
	ck_assert_int_eq(store_user_data_get(st, uid, "scan_model", &data, &len), STORE_NOTFOUND);
}
END_TEST

/* ---- audit log and stats ---- */

static int collect_audit(void *arg, int64_t time, const char *actor, const char *event,
			 const char *detail)
{
	char *buf = arg;
	char item[256];

	ck_assert_int_gt(time, 0);
	snprintf(item, sizeof(item), "%s/%s/%s,", actor, event, detail);
	strcat(buf, item);
	return 0;
}

START_TEST(audit_and_stats)
{
	struct store_stats s;
	struct store_message m;
	struct store_queue_entry q;
	char list[512] = "";
	int64_t uid;

	OK(store_audit(st, "admin", "domain.add", "example.org"));
	OK(store_audit(st, "admin", "user.add", "alice@example.org"));
	OK(store_audit_list(st, 0, collect_audit, list));
	ck_assert_str_eq(list, "admin/domain.add/example.org,admin/user.add/alice@example.org,");
	list[0] = '\0';
	OK(store_audit_list(st, 4102444800LL, collect_audit, list)); /* year 2100 */
	ck_assert_str_eq(list, "");
	ck_assert_int_eq(store_audit(st, NULL, "x", ""), STORE_ERR);

	OK(store_domain_add(st, "example.org"));
	uid = make_user("alice@example.org", 0);
	make_user("bob@example.org", 0);
	OK(store_alias_add(st, "info@example.org", "bob@example.org"));
	add_message(inbox_of(uid), "12345", &m);
	add_message(inbox_of(uid), "123", &m);
	memset(&q, 0, sizeof(q));
	snprintf(q.recipient, sizeof(q.recipient), "r@x.example");
	OK(store_queue_add(st, &q, (const unsigned char *)"q", 1));
	OK(store_stats(st, &s));
	ck_assert_int_eq(s.domains, 1);
	ck_assert_int_eq(s.users, 2);
	ck_assert_int_eq(s.aliases, 1);
	ck_assert_int_eq(s.messages, 2);
	ck_assert_int_eq(s.bytes, 8);
	ck_assert_int_eq(s.queued, 1);
}
END_TEST

static int last_detail(void *arg, int64_t time, const char *actor, const char *event,
		       const char *detail)
{
	snprintf(arg, 8192, "%s", detail);
	return 0;
}

/* A huge detail is cut at a character boundary, never refused. */
START_TEST(audit_cuts_long_details_cleanly)
{
	char *detail = malloc(20001), *back = malloc(8192);

	ck_assert_ptr_nonnull(detail);
	ck_assert_ptr_nonnull(back);
	detail[0] = 'x';
	for (size_t i = 1; i + 1 < 20001; i += 2)
		memcpy(detail + i, "\xc3\xa9", 2); /* é */
	detail[20000] = '\0';
	OK(store_audit(st, "admin", "big", detail));
	OK(store_audit_list(st, 0, last_detail, back));
	ck_assert_uint_gt(strlen(back), 3000);
	ck_assert_uint_le(strlen(back), 4000);
	ck_assert_int_eq(strlen(back) % 2, 1); /* "x" and whole two-byte characters */
	ck_assert(memcmp(back, detail, strlen(back)) == 0);
	free(detail);
	free(back);
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
			execl("/proc/self/exe", "test_store", WRITER_ARG,
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

static Suite *store_suite(const char *name)
{
	Suite *s = suite_create(name);
	TCase *tc = tcase_create("store");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, domains_add_list_delete);
	tcase_add_test(tc, users_round_trip_binary_keys);
	tcase_add_test(tc, aliases_resolve_to_users);
	tcase_add_test(tc, mailboxes_create_rename_delete);
	tcase_add_test(tc, messages_uid_modseq_flags_blob);
	tcase_add_test(tc, quota_refuses_and_expunge_frees);
	tcase_add_test(tc, mailbox_lookup_gives_the_id_get_gives);
	tcase_add_test(tc, scan_results_follow_their_message);
	tcase_add_test(tc, queue_add_update_delete);
	tcase_add_test(tc, queue_retry_later_keeps_a_hold);
	tcase_add_test(tc, quarantine_keeps_sealed_copy);
	tcase_add_test(tc, user_data_put_get_replace);
	tcase_add_test(tc, audit_and_stats);
	tcase_add_test(tc, audit_cuts_long_details_cleanly);
	tcase_add_test(tc, rollback_leaves_nothing);
	tcase_add_test(tc, migrate_is_idempotent);
	tcase_add_test(tc, migrate_applies_a_missing_earlier_step);
	tcase_add_test(tc, concurrent_writers_get_distinct_uids);
	tcase_add_test(tc, flag_changes_keep_what_other_sessions_set);
	tcase_add_test(tc, concurrent_flag_changes_are_not_lost);
	tcase_add_test(tc, concurrent_processes_get_distinct_uids);
	tcase_add_test(tc, bad_config_gives_clear_error);
	tcase_add_test(tc, concurrent_migrations_apply_once);
	tcase_add_test(tc, missing_rows_are_reported_not_crashed_on);
	tcase_add_test(tc, large_blob_round_trip);
	tcase_add_test(tc, callbacks_may_reenter_the_store);
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

static int run(enum store_engine which, const char *name)
{
	SRunner *sr;
	int failed;

	engine = which;
	sr = srunner_create(store_suite(name));
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed;
}

/* "test_store --writer ENGINE WHERE MAILBOX N": adds N messages to MAILBOX
 * and prints their uids, as another process delivering mail would. WHERE is
 * the SQLite path or the MariaDB database (on $POSTERN_TEST_MARIADB_SOCKET). */
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

	int failed = run(STORE_ENGINE_SQLITE, "store-sqlite");
	const char *sock = getenv("POSTERN_TEST_MARIADB_SOCKET");

	if (sock != NULL && sock[0] != '\0')
		failed += run(STORE_ENGINE_MARIADB, "store-mariadb");
	else
		printf("MariaDB cases skipped: POSTERN_TEST_MARIADB_SOCKET is not set\n");
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
