/*
 * test_store.c - the store suite: domains, users, aliases, mailboxes,
 * messages, scan results, the queue, quarantine, user data and the audit
 * log. The same cases run on SQLite (a temporary file) and, when
 * POSTERN_TEST_MARIADB_SOCKET names a running server's socket, on MariaDB
 * (a database postern_test_<pid>_<n> per case, dropped afterwards); see
 * store_fixture.h. Transactions, migrations, concurrency and the engines'
 * own cases are in test_store_concurrency.c.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "store_fixture.h"

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

static Suite *store_suite(const char *name)
{
	Suite *s = suite_create(name);
	TCase *tc = tcase_create("store");

	tcase_add_checked_fixture(tc, store_fixture_setup, store_fixture_teardown);
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
	tcase_add_test(tc, missing_rows_are_reported_not_crashed_on);
	tcase_add_test(tc, large_blob_round_trip);
	tcase_add_test(tc, callbacks_may_reenter_the_store);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return store_fixture_run_all(store_suite, "store");
}
