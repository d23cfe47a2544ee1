/*
 * test_at_rest.c - the proof that mail is encrypted at rest.
 *
 * Creates a user, seals and stores a message holding a known phrase, then
 * reads the raw bytes the engine keeps (the SQLite database with its WAL and
 * journal files; for MariaDB, when $POSTERN_TEST_MARIADB_SOCKET is set, a
 * mariadb-dump --hex-blob of the database, so binary columns show as hex and
 * no escaping can hide a match) and checks that neither the phrase, nor the
 * password, nor the private key appears in clear (raw, hex or base64). As a
 * control it checks that the same bytes do contain what is meant to be plain
 * (the address and the public key), so the search really looks at the data.
 * Then the user, after logging in, reads the message back byte-exact, and a
 * wrong password and a tampered blob both fail cleanly.
 */
#include "config.h"

#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "auth/auth.h"
#include "crypto/crypto.h"
#include "crypto/crypto_internal.h"
#include "store/store.h"

#define USER "carol@example.org"
#define PASSWORD "Tr0ub4dor&3 correct-horse"
#define PHRASE "The heron leaves the marsh at seven"

static const char message[] = "From: dave@example.net\r\n"
			      "To: carol@example.org\r\n"
			      "Subject: plans\r\n"
			      "\r\n" PHRASE "\r\n"
			      "binary part: \0\1\2\377 end\r\n";

struct buf {
	unsigned char *data;
	size_t len;
};

static void buf_append_file(struct buf *b, const char *path)
{
	FILE *f = fopen(path, "rb");
	unsigned char chunk[65536];
	size_t n;

	ck_assert_msg(f != NULL, "cannot open %s", path);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		b->data = realloc(b->data, b->len + n);
		ck_assert_ptr_nonnull(b->data);
		memcpy(b->data + b->len, chunk, n);
		b->len += n;
	}
	fclose(f);
}

static int contains(const struct buf *b, const void *needle, size_t len)
{
	return len > 0 && b->len >= len && memmem(b->data, b->len, needle, len) != NULL;
}

static void hex(const unsigned char *in, size_t len, char *out, int upper)
{
	static const char lo[] = "0123456789abcdef", up[] = "0123456789ABCDEF";
	const char *digits = upper ? up : lo;

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

/* Fails when SECRET is found in B in clear: raw, hex (either case) or base64. */
static void assert_absent(const struct buf *b, const char *what, const unsigned char *secret,
			  size_t len)
{
	char *h = malloc(2 * len + 1);
	char *b64 = malloc(sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL));

	ck_assert_ptr_nonnull(h);
	ck_assert_ptr_nonnull(b64);
	ck_assert_msg(!contains(b, secret, len), "%s found in clear", what);
	hex(secret, len, h, 0);
	ck_assert_msg(!contains(b, h, 2 * len), "%s found as hex", what);
	hex(secret, len, h, 1);
	ck_assert_msg(!contains(b, h, 2 * len), "%s found as HEX", what);
	sodium_bin2base64(b64, sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL),
			  secret, len, sodium_base64_VARIANT_ORIGINAL);
	/* Base64 of a prefix aligned to 3 bytes, so padding does not hide a match. */
	ck_assert_msg(len < 12 || !contains(b, b64, (len / 3) * 4), "%s found as base64", what);
	free(h);
	free(b64);
}

/* True when B holds DATA raw or as hex in either case (how engines and dumps show blobs). */
static int present_somehow(const struct buf *b, const unsigned char *data, size_t len)
{
	char h[2 * 64 + 1];

	ck_assert_uint_le(len, 64);
	if (contains(b, data, len))
		return 1;
	hex(data, len, h, 0);
	if (contains(b, h, 2 * len))
		return 1;
	hex(data, len, h, 1);
	return contains(b, h, 2 * len);
}

struct fixture {
	char dir[256];
	struct config_store cfg;
	struct store *st;
	char mariadb_db[64];
	const char *mariadb_socket;
	int64_t user_id;
	unsigned char public_key[32];
	unsigned char private_key[32];
	int64_t message_id;
};

static void open_store(struct fixture *fx)
{
	char err[512] = "";

	fx->st = store_open(&fx->cfg, err, sizeof(err));
	ck_assert_msg(fx->st != NULL, "store_open: %s", err);
}

static void run(const char *cmd)
{
	ck_assert_msg(system(cmd) == 0, "command failed: %s", cmd);
}

static void fixture_init(struct fixture *fx, enum store_engine engine)
{
	char cmd[1024];
	int version = 0;

	memset(fx, 0, sizeof(*fx));
	ck_assert_int_eq(crypto_setup(), 0);
	crypto_set_argon2_cost(1, 8192); /* the proof is about where bytes go, not about cost */
	auth_setup(600);
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/postern-test-at-rest-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(fx->dir));
	fx->cfg.engine = engine;
	if (engine == STORE_ENGINE_SQLITE) {
		snprintf(fx->cfg.sqlite_path, sizeof(fx->cfg.sqlite_path), "%s/postern.db",
			 fx->dir);
	} else {
		fx->mariadb_socket = getenv("POSTERN_TEST_MARIADB_SOCKET");
		ck_assert_ptr_nonnull(fx->mariadb_socket);
		snprintf(fx->mariadb_db, sizeof(fx->mariadb_db), "postern_at_rest_%ld",
			 (long)getpid());
		snprintf(cmd, sizeof(cmd),
			 "mariadb --no-defaults -S '%s' -u root -e 'DROP DATABASE IF EXISTS %s; "
			 "CREATE DATABASE %s'",
			 fx->mariadb_socket, fx->mariadb_db, fx->mariadb_db);
		run(cmd);
		snprintf(fx->cfg.mariadb_socket, sizeof(fx->cfg.mariadb_socket), "%s",
			 fx->mariadb_socket);
		snprintf(fx->cfg.mariadb_user, sizeof(fx->cfg.mariadb_user), "root");
		snprintf(fx->cfg.mariadb_database, sizeof(fx->cfg.mariadb_database), "%s",
			 fx->mariadb_db);
		fx->cfg.mariadb_port = 3306;
	}
	open_store(fx);
	ck_assert_msg(store_migrate(fx->st, &version) == STORE_OK, "migrate: %s",
		      store_error(fx->st));
}

static void fixture_done(struct fixture *fx)
{
	char cmd[1024];

	auth_cache_clear();
	if (fx->st != NULL)
		store_close(fx->st);
	if (fx->mariadb_db[0] != '\0') {
		snprintf(cmd, sizeof(cmd),
			 "mariadb --no-defaults -S '%s' -u root -e 'DROP DATABASE IF EXISTS %s'",
			 fx->mariadb_socket, fx->mariadb_db);
		run(cmd);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
	run(cmd);
	sodium_memzero(fx->private_key, sizeof(fx->private_key));
}

/* Creates the user as posternctl does and delivers MESSAGE sealed to it into INBOX. */
static void create_user_and_deliver(struct fixture *fx)
{
	struct store_user u;
	struct store_mailbox inbox;
	struct store_message m;
	struct user_key *k = NULL;
	unsigned char *wrapped = NULL, *blob = NULL;
	size_t wrapped_len = 0, blob_len = 0;

	ck_assert_int_eq(store_domain_add(fx->st, "example.org"), STORE_OK);
	memset(&u, 0, sizeof(u));
	snprintf(u.address, sizeof(u.address), USER);
	ck_assert_int_eq(crypto_password_hash(PASSWORD, strlen(PASSWORD), u.password_hash), 0);
	ck_assert_int_eq(crypto_user_keygen(PASSWORD, strlen(PASSWORD), u.public_key, &wrapped,
					    &wrapped_len, &k),
			 0);
	memcpy(fx->public_key, u.public_key, 32);
	memcpy(fx->private_key, user_key_private(k), 32);
	user_key_free(k);
	u.wrapped_key = wrapped;
	u.wrapped_key_len = wrapped_len;
	ck_assert_msg(store_user_add(fx->st, &u) == STORE_OK, "user add: %s", store_error(fx->st));
	fx->user_id = u.id;
	free(wrapped);

	/* Delivery needs only the public key: the server cannot read what it stores. */
	ck_assert_int_eq(crypto_seal(fx->public_key, message, sizeof(message), &blob, &blob_len),
			 0);
	ck_assert_int_eq(store_mailbox_get(fx->st, fx->user_id, "INBOX", &inbox), STORE_OK);
	ck_assert_int_eq(store_begin(fx->st), STORE_OK);
	ck_assert_msg(store_message_add(fx->st, inbox.id, 0, 1700000000, (int64_t)sizeof(message),
					blob, blob_len, &m) == STORE_OK,
		      "message add: %s", store_error(fx->st));
	ck_assert_int_eq(store_commit(fx->st), STORE_OK);
	fx->message_id = m.id;
	free(blob);
}

/* Every byte the SQLite engine wrote: the database and any WAL, SHM or journal file. */
static void read_sqlite_files(struct fixture *fx, struct buf *b)
{
	DIR *d = opendir(fx->dir);
	struct dirent *e;
	char path[600];
	int files = 0;

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, "postern.db", 10) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", fx->dir, e->d_name);
		buf_append_file(b, path);
		files++;
	}
	closedir(d);
	ck_assert_int_ge(files, 1);
}

static void read_mariadb_dump(struct fixture *fx, struct buf *b)
{
	char cmd[1200], path[600];

	snprintf(path, sizeof(path), "%s/dump.sql", fx->dir);
	snprintf(cmd, sizeof(cmd),
		 "mariadb-dump --no-defaults -S '%s' -u root --hex-blob --skip-extended-insert %s "
		 "> '%s'",
		 fx->mariadb_socket, fx->mariadb_db, path);
	run(cmd);
	buf_append_file(b, path);
}

static void assert_nothing_in_clear(const struct fixture *fx, const struct buf *b)
{
	/* Control: what is meant to be plain is there, so the search sees the data. */
	ck_assert_msg(contains(b, USER, strlen(USER)), "address not found: wrong bytes searched");
	ck_assert_msg(present_somehow(b, fx->public_key, 32), "public key not found");

	assert_absent(b, "the phrase", (const unsigned char *)PHRASE, strlen(PHRASE));
	assert_absent(b, "the subject line", (const unsigned char *)"Subject: plans", 14);
	assert_absent(b, "the password", (const unsigned char *)PASSWORD, strlen(PASSWORD));
	assert_absent(b, "the private key", fx->private_key, 32);
}

/* Logs in as the user would and reads the message back. */
static void assert_reads_back(struct fixture *fx)
{
	struct auth_identity id;
	unsigned char *blob = NULL, *msg = NULL;
	size_t blob_len = 0, msg_len = 0;
	struct user_key *k = (struct user_key *)&k;
	struct store_user u;

	ck_assert_int_eq(auth_login(fx->st, USER, PASSWORD, strlen(PASSWORD), &id), AUTH_OK);
	ck_assert_int_eq(store_message_blob(fx->st, fx->message_id, &blob, &blob_len), STORE_OK);
	ck_assert_int_eq(crypto_open(id.key, blob, blob_len, &msg, &msg_len), 0);
	ck_assert_uint_eq(msg_len, sizeof(message));
	ck_assert_int_eq(memcmp(msg, message, sizeof(message)), 0);
	sodium_memzero(msg, msg_len);
	free(msg);
	msg = NULL;

	/* A tampered blob fails cleanly, whichever byte changed. */
	for (size_t i = 0; i < blob_len; i += 7) {
		blob[i] ^= 0x20;
		ck_assert_int_eq(crypto_open(id.key, blob, blob_len, &msg, &msg_len), -1);
		ck_assert_ptr_null(msg);
		blob[i] ^= 0x20;
	}
	free(blob);
	auth_identity_clear(&id);

	/* A wrong password neither logs in nor unwraps the stored key. */
	ck_assert_int_eq(auth_login(fx->st, USER, "Tr0ub4dor&3 correct-horsE", 25, &id),
			 AUTH_FAILED);
	ck_assert_ptr_null(id.key);
	memset(&u, 0, sizeof(u));
	ck_assert_int_eq(store_user_get(fx->st, USER, &u), STORE_OK);
	ck_assert_int_eq(crypto_user_unlock(u.wrapped_key, u.wrapped_key_len, "wrong", 5, &k), -1);
	ck_assert_ptr_null(k);
	store_user_clear(&u);
}

START_TEST(sqlite_file_holds_no_plaintext)
{
	struct fixture fx;
	struct buf b = {NULL, 0};

	fixture_init(&fx, STORE_ENGINE_SQLITE);
	create_user_and_deliver(&fx);
	/* Look at the files while the store is open (WAL not yet folded in) ... */
	read_sqlite_files(&fx, &b);
	assert_nothing_in_clear(&fx, &b);
	free(b.data);
	/* ... and after a clean close, when everything sits in the main file. */
	store_close(fx.st);
	fx.st = NULL;
	memset(&b, 0, sizeof(b));
	read_sqlite_files(&fx, &b);
	assert_nothing_in_clear(&fx, &b);
	free(b.data);
	open_store(&fx);
	assert_reads_back(&fx);
	fixture_done(&fx);
}
END_TEST

START_TEST(mariadb_dump_holds_no_plaintext)
{
	struct fixture fx;
	struct buf b = {NULL, 0};

	fixture_init(&fx, STORE_ENGINE_MARIADB);
	create_user_and_deliver(&fx);
	read_mariadb_dump(&fx, &b);
	assert_nothing_in_clear(&fx, &b);
	free(b.data);
	assert_reads_back(&fx);
	fixture_done(&fx);
}
END_TEST

static Suite *at_rest_suite(void)
{
	Suite *s = suite_create("at_rest");
	TCase *tc = tcase_create("proof");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, sqlite_file_holds_no_plaintext);
	if (getenv("POSTERN_TEST_MARIADB_SOCKET") != NULL)
		tcase_add_test(tc, mariadb_dump_holds_no_plaintext);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(at_rest_suite());
	int failed;

	if (getenv("POSTERN_TEST_MARIADB_SOCKET") == NULL)
		printf("at_rest: POSTERN_TEST_MARIADB_SOCKET not set, checking SQLite only\n");
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
