/*
 * test_crypto.c - crypto/: password hashes, key wrapping, message sealing,
 * tampering, recovery key, key files and the self-signed certificate.
 *
 * Most tests lower the Argon2id cost for speed; the one about the default
 * cost checks the parameters recorded in a hash made with the defaults.
 */
#include "config.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sodium.h>

#include "crypto/crypto.h"

#define FAST_OPS 1ULL
#define FAST_MEM 8192UL

static char tmpdir[256];

static void fast_cost(void)
{
	ck_assert_int_eq(crypto_setup(), 0);
	crypto_set_argon2_cost(FAST_OPS, FAST_MEM);
}

static void make_tmpdir(void)
{
	fast_cost();
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/postern-test-crypto-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void remove_tmpdir(void)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	ck_assert_int_eq(system(cmd), 0);
}

static void path_in_tmp(char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s/%s", tmpdir, name);
}

static mode_t file_mode(const char *path)
{
	struct stat st;

	ck_assert_int_eq(stat(path, &st), 0);
	return st.st_mode & 07777;
}

/* A new key pair for PASSWORD; returns the unlocked key, fills PUB and the wrapped form. */
static struct user_key *new_user(const char *password, unsigned char pub[32],
				 unsigned char **wrapped, size_t *wrapped_len)
{
	struct user_key *k = NULL;

	ck_assert_int_eq(
	    crypto_user_keygen(password, strlen(password), pub, wrapped, wrapped_len, &k), 0);
	ck_assert_ptr_nonnull(k);
	ck_assert_mem_eq(user_key_public(k), pub, 32);
	return k;
}

START_TEST(password_hash_verifies_only_the_right_password)
{
	char hash[CRYPTO_PWHASH_STR_MAX];

	fast_cost();
	ck_assert_int_eq(crypto_password_hash("correct horse", 13, hash), 0);
	ck_assert_ptr_nonnull(strstr(hash, "$argon2id$"));
	ck_assert_int_eq(crypto_password_verify(hash, "correct horse", 13), 0);
	ck_assert_int_eq(crypto_password_verify(hash, "correct horsE", 13), -1);
	ck_assert_int_eq(crypto_password_verify(hash, "correct hors", 12), -1);
	ck_assert_int_eq(crypto_password_verify(hash, "", 0), -1);
	ck_assert_int_eq(crypto_password_verify("", "correct horse", 13), -1);
	ck_assert_int_eq(
	    crypto_password_verify("$argon2i$v=19$m=8,t=1,p=1$AAAA$AAAA", "correct horse", 13), -1);
}
END_TEST

START_TEST(password_hashes_are_salted)
{
	char a[CRYPTO_PWHASH_STR_MAX], b[CRYPTO_PWHASH_STR_MAX];

	fast_cost();
	ck_assert_int_eq(crypto_password_hash("same", 4, a), 0);
	ck_assert_int_eq(crypto_password_hash("same", 4, b), 0);
	ck_assert_str_ne(a, b);
}
END_TEST

START_TEST(default_cost_is_recorded_in_the_hash)
{
	char hash[CRYPTO_PWHASH_STR_MAX], want[64];
	unsigned long long ops;
	size_t mem;
	unsigned long before;

	ck_assert_int_eq(crypto_setup(), 0);
	crypto_set_argon2_cost(CRYPTO_ARGON2_OPS_DEFAULT, CRYPTO_ARGON2_MEM_DEFAULT);
	crypto_get_argon2_cost(&ops, &mem);
	ck_assert_uint_eq(ops, CRYPTO_ARGON2_OPS_DEFAULT);
	ck_assert_uint_eq(mem, CRYPTO_ARGON2_MEM_DEFAULT);
	before = crypto_argon2_count();
	ck_assert_int_eq(crypto_password_hash("pw", 2, hash), 0);
	ck_assert_uint_eq(crypto_argon2_count(), before + 1);
	snprintf(want, sizeof(want), "$m=%lu,t=%llu,p=1$", (unsigned long)(mem / 1024), ops);
	ck_assert_ptr_nonnull(strstr(hash, want));
	ck_assert_int_eq(crypto_password_verify(hash, "pw", 2), 0);

	/* Out-of-range values are clamped, never passed to libsodium as is. */
	crypto_set_argon2_cost(0, 1);
	crypto_get_argon2_cost(&ops, &mem);
	ck_assert_uint_eq(ops, CRYPTO_ARGON2_OPS_MIN);
	ck_assert_uint_eq(mem, CRYPTO_ARGON2_MEM_MIN);
}
END_TEST

START_TEST(keygen_then_unlock_gives_the_same_key)
{
	unsigned char pub[32], *wrapped = NULL, *blob = NULL, *msg = NULL;
	size_t wrapped_len = 0, blob_len = 0, msg_len = 0;
	struct user_key *k, *u = NULL, *d;

	fast_cost();
	k = new_user("s3cret", pub, &wrapped, &wrapped_len);
	ck_assert_int_eq(crypto_user_unlock(wrapped, wrapped_len, "s3cret", 6, &u), 0);
	ck_assert_mem_eq(user_key_public(u), pub, 32);
	d = user_key_dup(u);
	ck_assert_ptr_nonnull(d);
	ck_assert_mem_eq(user_key_public(d), pub, 32);

	/* Mail sealed to the public key opens with the unlocked key and its copy. */
	ck_assert_int_eq(crypto_seal(pub, "hello", 5, &blob, &blob_len), 0);
	ck_assert_int_eq(crypto_open(u, blob, blob_len, &msg, &msg_len), 0);
	ck_assert_uint_eq(msg_len, 5);
	ck_assert_mem_eq(msg, "hello", 5);
	free(msg);
	user_key_free(u);
	ck_assert_int_eq(crypto_open(d, blob, blob_len, &msg, &msg_len), 0);
	ck_assert_mem_eq(msg, "hello", 5);
	free(msg);
	user_key_free(d);
	user_key_free(k);
	free(blob);
	free(wrapped);
}
END_TEST

START_TEST(keygen_without_key_out_and_keys_differ)
{
	unsigned char pub1[32], pub2[32], *w1 = NULL, *w2 = NULL;
	size_t l1 = 0, l2 = 0;

	fast_cost();
	ck_assert_int_eq(crypto_user_keygen("pw", 2, pub1, &w1, &l1, NULL), 0);
	ck_assert_int_eq(crypto_user_keygen("pw", 2, pub2, &w2, &l2, NULL), 0);
	ck_assert_mem_ne(pub1, pub2, 32);
	ck_assert_uint_eq(l1, l2);
	ck_assert_mem_ne(w1, w2, l1);
	free(w1);
	free(w2);
}
END_TEST

START_TEST(unlock_with_wrong_password_fails)
{
	unsigned char pub[32], *wrapped = NULL;
	size_t wrapped_len = 0;
	struct user_key *k, *u = (struct user_key *)&u;

	fast_cost();
	k = new_user("right", pub, &wrapped, &wrapped_len);
	ck_assert_int_eq(crypto_user_unlock(wrapped, wrapped_len, "wrong", 5, &u), -1);
	ck_assert_ptr_null(u);
	ck_assert_int_eq(crypto_user_unlock(wrapped, wrapped_len, "righ", 4, &u), -1);
	ck_assert_int_eq(crypto_user_unlock(wrapped, wrapped_len, "", 0, &u), -1);
	ck_assert_int_eq(crypto_user_unlock(wrapped, 0, "right", 5, &u), -1);
	ck_assert_int_eq(crypto_user_unlock(wrapped, wrapped_len - 1, "right", 5, &u), -1);
	user_key_free(k);
	free(wrapped);
}
END_TEST

START_TEST(every_byte_flip_of_a_wrapped_key_fails)
{
	unsigned char pub[32], *wrapped = NULL;
	size_t wrapped_len = 0;
	struct user_key *k, *u = NULL;

	fast_cost();
	k = new_user("pw", pub, &wrapped, &wrapped_len);
	for (size_t i = 0; i < wrapped_len; i++) {
		wrapped[i] ^= 0x01;
		ck_assert_msg(crypto_user_unlock(wrapped, wrapped_len, "pw", 2, &u) == -1,
			      "flip at %zu unlocked", i);
		ck_assert_ptr_null(u);
		wrapped[i] ^= 0x01;
	}
	ck_assert_int_eq(crypto_user_unlock(wrapped, wrapped_len, "pw", 2, &u), 0);
	user_key_free(u);
	user_key_free(k);
	free(wrapped);
}
END_TEST

START_TEST(rewrap_changes_the_password_but_not_the_key)
{
	unsigned char pub[32], *old_w = NULL, *new_w = NULL, *blob = NULL, *msg = NULL;
	size_t old_len = 0, new_len = 0, blob_len = 0, msg_len = 0;
	struct user_key *k, *u = NULL;

	fast_cost();
	k = new_user("old password", pub, &old_w, &old_len);
	ck_assert_int_eq(crypto_seal(pub, "before the change", 17, &blob, &blob_len), 0);
	ck_assert_int_eq(crypto_user_rewrap(k, "new password", 12, &new_w, &new_len), 0);
	ck_assert_int_eq(crypto_user_unlock(new_w, new_len, "old password", 12, &u), -1);
	ck_assert_int_eq(crypto_user_unlock(new_w, new_len, "new password", 12, &u), 0);
	ck_assert_mem_eq(user_key_public(u), pub, 32);
	ck_assert_int_eq(crypto_open(u, blob, blob_len, &msg, &msg_len), 0);
	ck_assert_uint_eq(msg_len, 17);
	ck_assert_mem_eq(msg, "before the change", 17);
	free(msg);
	user_key_free(u);
	user_key_free(k);
	free(old_w);
	free(new_w);
	free(blob);
}
END_TEST

static void round_trip(const struct user_key *k, const unsigned char *pub, const unsigned char *m,
		       size_t len)
{
	unsigned char *blob = NULL, *out = NULL;
	size_t blob_len = 0, out_len = 12345;

	ck_assert_int_eq(crypto_seal(pub, m, len, &blob, &blob_len), 0);
	ck_assert_uint_gt(blob_len, len);
	if (len >= 16)
		ck_assert_ptr_null(memmem(blob, blob_len, m, 16));
	ck_assert_int_eq(crypto_open(k, blob, blob_len, &out, &out_len), 0);
	ck_assert_uint_eq(out_len, len);
	if (len > 0)
		ck_assert_int_eq(memcmp(out, m, len), 0);
	free(out);
	free(blob);
}

START_TEST(seal_open_is_byte_exact)
{
	unsigned char pub[32], *wrapped = NULL, *big;
	size_t wrapped_len = 0, big_len = 1024 * 1024;
	struct user_key *k;
	const unsigned char with_nul[] = "a\0b\0\0c\r\n.\r\n";

	fast_cost();
	k = new_user("pw", pub, &wrapped, &wrapped_len);
	round_trip(k, pub, (const unsigned char *)"", 0);
	round_trip(k, pub, NULL, 0);
	round_trip(k, pub, with_nul, sizeof(with_nul));
	big = malloc(big_len);
	ck_assert_ptr_nonnull(big);
	randombytes_buf(big, big_len);
	for (size_t i = 0; i < big_len; i += 97)
		big[i] = 0; /* plenty of NUL bytes */
	round_trip(k, pub, big, big_len);
	free(big);
	user_key_free(k);
	free(wrapped);
}
END_TEST

START_TEST(sealing_twice_gives_different_blobs)
{
	unsigned char pub[32], *wrapped = NULL, *b1 = NULL, *b2 = NULL;
	size_t wrapped_len = 0, l1 = 0, l2 = 0;
	struct user_key *k;

	fast_cost();
	k = new_user("pw", pub, &wrapped, &wrapped_len);
	ck_assert_int_eq(crypto_seal(pub, "same message", 12, &b1, &l1), 0);
	ck_assert_int_eq(crypto_seal(pub, "same message", 12, &b2, &l2), 0);
	ck_assert_uint_eq(l1, l2);
	ck_assert_mem_ne(b1, b2, l1);
	free(b1);
	free(b2);
	user_key_free(k);
	free(wrapped);
}
END_TEST

START_TEST(open_with_another_users_key_fails)
{
	unsigned char pub_a[32], pub_b[32], *wa = NULL, *wb = NULL, *blob = NULL, *msg = NULL;
	size_t la = 0, lb = 0, blob_len = 0, msg_len = 0;
	struct user_key *a, *b;

	fast_cost();
	a = new_user("a", pub_a, &wa, &la);
	b = new_user("b", pub_b, &wb, &lb);
	ck_assert_int_eq(crypto_seal(pub_a, "for alice only", 14, &blob, &blob_len), 0);
	ck_assert_int_eq(crypto_open(b, blob, blob_len, &msg, &msg_len), -1);
	ck_assert_ptr_null(msg);
	ck_assert_int_eq(crypto_open(a, blob, blob_len, &msg, &msg_len), 0);
	free(msg);
	user_key_free(a);
	user_key_free(b);
	free(wa);
	free(wb);
	free(blob);
}
END_TEST

START_TEST(a_kept_content_key_opens_only_what_crypto_open_would)
{
	unsigned char pub[32], pub_b[32], *wrapped = NULL, *wb = NULL, *blob = NULL, *msg = NULL;
	size_t wrapped_len = 0, lb = 0, blob_len = 0, msg_len = 0;
	struct user_key *k, *b;
	static const char text[] = "Subject: kept\r\n\r\nbody\r\n";
	static const unsigned char bits[] = {0x01, 0x80, 0xff};

	fast_cost();
	k = new_user("pw", pub, &wrapped, &wrapped_len);
	b = new_user("b", pub_b, &wb, &lb);
	ck_assert_int_eq(crypto_seal(pub, text, strlen(text), &blob, &blob_len), 0);
	ck_assert_uint_eq(user_key_cached_keys(k), 0);
	for (int round = 0; round < 2; round++) {
		ck_assert_int_eq(crypto_open(k, blob, blob_len, &msg, &msg_len), 0);
		ck_assert_uint_eq(msg_len, strlen(text));
		ck_assert_mem_eq(msg, text, msg_len);
		free(msg);
		msg = NULL;
		ck_assert_uint_eq(user_key_cached_keys(k), 1);
	}
	/* With the key kept, any change to the blob is still refused. */
	for (size_t i = 0; i < blob_len; i++) {
		for (size_t j = 0; j < sizeof(bits); j++) {
			blob[i] ^= bits[j];
			ck_assert_msg(crypto_open(k, blob, blob_len, &msg, &msg_len) == -1,
				      "flip 0x%02x at %zu opened", bits[j], i);
			blob[i] ^= bits[j];
		}
	}
	for (size_t n = 0; n < blob_len; n++)
		ck_assert_int_eq(crypto_open(k, blob, n, &msg, &msg_len), -1);
	ck_assert_uint_eq(user_key_cached_keys(k), 1);
	/* Another user's key keeps nothing of this one's. */
	ck_assert_int_eq(crypto_open(b, blob, blob_len, &msg, &msg_len), -1);
	ck_assert_uint_eq(user_key_cached_keys(b), 0);
	/* A copy of the handle shares the kept keys. */
	struct user_key *dup = user_key_dup(k);
	ck_assert_uint_eq(user_key_cached_keys(dup), 1);
	user_key_free(dup);
	user_key_free(k);
	user_key_free(b);
	free(wrapped);
	free(wb);
	free(blob);
}
END_TEST

START_TEST(opening_more_messages_than_are_kept_still_works)
{
	enum { N = 8192 + 100 };
	unsigned char pub[32], *wrapped = NULL, **blobs, *msg = NULL;
	size_t wrapped_len = 0, *lens, msg_len = 0;
	struct user_key *k;
	char text[32];

	fast_cost();
	k = new_user("pw", pub, &wrapped, &wrapped_len);
	blobs = calloc(N, sizeof(*blobs));
	lens = calloc(N, sizeof(*lens));
	ck_assert_ptr_nonnull(blobs);
	ck_assert_ptr_nonnull(lens);
	for (size_t i = 0; i < N; i++) {
		int n = snprintf(text, sizeof(text), "message %zu", i);
		ck_assert_int_eq(crypto_seal(pub, text, (size_t)n, &blobs[i], &lens[i]), 0);
	}
	for (int round = 0; round < 2; round++) {
		for (size_t i = 0; i < N; i++) {
			int n = snprintf(text, sizeof(text), "message %zu", i);
			ck_assert_int_eq(crypto_open(k, blobs[i], lens[i], &msg, &msg_len), 0);
			ck_assert_uint_eq(msg_len, (size_t)n);
			ck_assert_mem_eq(msg, text, msg_len);
			free(msg);
			msg = NULL;
			ck_assert_uint_le(user_key_cached_keys(k), 8192);
		}
	}
	ck_assert_uint_gt(user_key_cached_keys(k), 0);
	for (size_t i = 0; i < N; i++)
		free(blobs[i]);
	free(blobs);
	free(lens);
	user_key_free(k);
	free(wrapped);
}
END_TEST

START_TEST(every_byte_flip_of_a_blob_fails)
{
	unsigned char pub[32], *wrapped = NULL, *blob = NULL, *msg = NULL, *longer;
	size_t wrapped_len = 0, blob_len = 0, msg_len = 0;
	struct user_key *k;
	static const unsigned char bits[] = {0x01, 0x80, 0xff};

	fast_cost();
	k = new_user("pw", pub, &wrapped, &wrapped_len);
	ck_assert_int_eq(crypto_seal(pub, "Subject: hi\r\n\r\nbody\r\n", 21, &blob, &blob_len), 0);
	for (size_t i = 0; i < blob_len; i++) {
		for (size_t b = 0; b < sizeof(bits); b++) {
			blob[i] ^= bits[b];
			ck_assert_msg(crypto_open(k, blob, blob_len, &msg, &msg_len) == -1,
				      "flip 0x%02x at %zu opened", bits[b], i);
			blob[i] ^= bits[b];
		}
	}
	/* Truncated anywhere or extended: also refused. */
	for (size_t n = 0; n < blob_len; n++)
		ck_assert_int_eq(crypto_open(k, blob, n, &msg, &msg_len), -1);
	longer = malloc(blob_len + 1);
	ck_assert_ptr_nonnull(longer);
	memcpy(longer, blob, blob_len);
	longer[blob_len] = 0;
	ck_assert_int_eq(crypto_open(k, longer, blob_len + 1, &msg, &msg_len), -1);
	free(longer);
	/* The untouched blob still opens. */
	ck_assert_int_eq(crypto_open(k, blob, blob_len, &msg, &msg_len), 0);
	ck_assert_mem_eq(msg, "Subject: hi\r\n\r\nbody\r\n", 21);
	free(msg);
	free(blob);
	user_key_free(k);
	free(wrapped);
}
END_TEST

START_TEST(random_bytes_never_open_or_unlock)
{
	unsigned char pub[32], *wrapped = NULL, junk[400], *msg = NULL;
	size_t wrapped_len = 0, msg_len = 0;
	struct user_key *k, *u = NULL;

	fast_cost();
	k = new_user("pw", pub, &wrapped, &wrapped_len);
	for (int i = 0; i < 3000; i++) {
		size_t len = randombytes_uniform(sizeof(junk) + 1);

		randombytes_buf(junk, len);
		if (len > 0 && i % 2 == 0)
			junk[0] = 1; /* a valid version byte, so the rest is really parsed */
		ck_assert_int_eq(crypto_open(k, junk, len, &msg, &msg_len), -1);
		ck_assert_ptr_null(msg);
		if (len == wrapped_len) {
			ck_assert_int_eq(crypto_user_unlock(junk, len, "pw", 2, &u), -1);
			ck_assert_ptr_null(u);
		}
	}
	/* A junk wrapped key of the right size whose cost fields are absurd is refused. */
	memcpy(junk, wrapped, wrapped_len);
	memset(junk + 17, 0xff, 16);
	ck_assert_int_eq(crypto_user_unlock(junk, wrapped_len, "pw", 2, &u), -1);
	user_key_free(k);
	free(wrapped);
}
END_TEST

START_TEST(sealed_keys_cannot_be_swapped_between_blobs)
{
	unsigned char pub[32], *wrapped = NULL, *b1 = NULL, *b2 = NULL, *msg = NULL;
	size_t wrapped_len = 0, l1 = 0, l2 = 0, msg_len = 0;
	struct user_key *k;
	const size_t sealed_len = crypto_box_SEALBYTES + 32;

	fast_cost();
	k = new_user("pw", pub, &wrapped, &wrapped_len);
	ck_assert_int_eq(crypto_seal(pub, "first message", 13, &b1, &l1), 0);
	ck_assert_int_eq(crypto_seal(pub, "other message", 13, &b2, &l2), 0);
	memcpy(b2 + 1, b1 + 1, sealed_len);			      /* b1's content key ... */
	ck_assert_int_eq(crypto_open(k, b2, l2, &msg, &msg_len), -1); /* ... does not open b2 */
	free(b1);
	free(b2);
	user_key_free(k);
	free(wrapped);
}
END_TEST

START_TEST(recovery_key_recovers_the_private_key)
{
	unsigned char pub[32], rpub[32], rpriv[32], opub[32], opriv[32];
	unsigned char *wrapped = NULL, *sealed = NULL, *blob = NULL, *msg = NULL;
	size_t wrapped_len = 0, sealed_len = 0, blob_len = 0, msg_len = 0;
	struct user_key *k, *r = NULL;

	fast_cost();
	k = new_user("forgotten", pub, &wrapped, &wrapped_len);
	ck_assert_int_eq(crypto_seal(pub, "old mail", 8, &blob, &blob_len), 0);
	ck_assert_int_eq(crypto_recovery_keygen(rpub, rpriv), 0);
	ck_assert_int_eq(crypto_recovery_seal(k, rpub, &sealed, &sealed_len), 0);

	/* Another recovery key pair cannot open it. */
	ck_assert_int_eq(crypto_recovery_keygen(opub, opriv), 0);
	ck_assert_int_eq(crypto_recovery_open(sealed, sealed_len, opub, opriv, &r), -1);
	ck_assert_ptr_null(r);

	ck_assert_int_eq(crypto_recovery_open(sealed, sealed_len, rpub, rpriv, &r), 0);
	ck_assert_mem_eq(user_key_public(r), pub, 32);
	ck_assert_int_eq(crypto_open(r, blob, blob_len, &msg, &msg_len), 0);
	ck_assert_mem_eq(msg, "old mail", 8);
	free(msg);

	for (size_t i = 0; i < sealed_len; i++) {
		struct user_key *t = NULL;

		sealed[i] ^= 0x01;
		ck_assert_int_eq(crypto_recovery_open(sealed, sealed_len, rpub, rpriv, &t), -1);
		sealed[i] ^= 0x01;
	}
	sodium_memzero(rpriv, sizeof(rpriv));
	user_key_free(r);
	user_key_free(k);
	free(wrapped);
	free(sealed);
	free(blob);
}
END_TEST

START_TEST(key_file_round_trip_and_modes)
{
	char priv_path[512], pub_path[512];
	unsigned char key[32], back[32], other[32];
	FILE *f;
	char line[512];

	make_tmpdir();
	path_in_tmp(priv_path, sizeof(priv_path), "recovery.key");
	path_in_tmp(pub_path, sizeof(pub_path), "recovery.pub");
	randombytes_buf(key, sizeof(key));
	ck_assert_int_eq(crypto_key_file_write(priv_path, "postern-recovery-private", key, 32), 0);
	ck_assert_int_eq(file_mode(priv_path), 0600);
	ck_assert_int_eq(crypto_key_file_read(priv_path, "postern-recovery-private", back, 32), 0);
	ck_assert_mem_eq(key, back, 32);

	ck_assert_int_eq(crypto_key_file_write(pub_path, "postern-recovery-public", key, 32), 0);
	ck_assert_int_eq(file_mode(pub_path), 0644);
	f = fopen(pub_path, "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(fgets(line, sizeof(line), f));
	fclose(f);
	ck_assert_int_eq(strncmp(line, "postern-recovery-public: ", 25), 0);

	/* The wrong label, a wrong length and a missing file are refused. */
	errno = 0;
	ck_assert_int_eq(crypto_key_file_read(priv_path, "postern-recovery-public", back, 32), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(crypto_key_file_read(priv_path, "postern-recovery-private", back, 31), -1);
	path_in_tmp(line, sizeof(line), "missing.key");
	ck_assert_int_eq(crypto_key_file_read(line, "postern-recovery-private", back, 32), -1);
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_int_eq(crypto_key_file_write(priv_path, "Bad Label", key, 32), -1);

	/* Replace works and keeps 0600; create-only refuses an existing file. */
	randombytes_buf(other, sizeof(other));
	ck_assert_int_eq(crypto_key_file_write(priv_path, "postern-recovery-private", other, 32),
			 0);
	ck_assert_int_eq(file_mode(priv_path), 0600);
	ck_assert_int_eq(crypto_key_file_read(priv_path, "postern-recovery-private", back, 32), 0);
	ck_assert_mem_eq(other, back, 32);
	errno = 0;
	ck_assert_int_eq(crypto_key_file_create(priv_path, "postern-recovery-private", key, 32),
			 -1);
	ck_assert_int_eq(errno, EEXIST);
	ck_assert_int_eq(crypto_key_file_read(priv_path, "postern-recovery-private", back, 32), 0);
	ck_assert_mem_eq(other, back, 32);
	remove_tmpdir();
}
END_TEST

START_TEST(key_file_with_garbage_is_refused)
{
	char path[512];
	unsigned char back[32];
	FILE *f;
	static const char *const bad[] = {
	    "",
	    "postern-queue-private:\n",
	    "postern-queue-private: !!!!\n",
	    "postern-queue-private: AAAA\n",
	    "postern-queue-private: AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=trailing\n",
	    "other-label: AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
	};

	make_tmpdir();
	path_in_tmp(path, sizeof(path), "bad.key");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		f = fopen(path, "w");
		ck_assert_ptr_nonnull(f);
		fputs(bad[i], f);
		fclose(f);
		ck_assert_msg(crypto_key_file_read(path, "postern-queue-private", back, 32) == -1,
			      "accepted case %zu", i);
	}
	/* Comments and CRLF are fine. */
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("# queue key\r\npostern-queue-private: "
	      "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n",
	      f);
	fclose(f);
	ck_assert_int_eq(crypto_key_file_read(path, "postern-queue-private", back, 32), 0);
	remove_tmpdir();
}
END_TEST

START_TEST(server_key_is_created_once_and_reused)
{
	char path[512];
	unsigned char *blob = NULL, *msg = NULL;
	size_t blob_len = 0, msg_len = 0;
	struct user_key *a = NULL, *b = NULL;

	make_tmpdir();
	path_in_tmp(path, sizeof(path), "queue.key");
	ck_assert_int_eq(crypto_server_key_load(path, &a), 0);
	ck_assert_int_eq(file_mode(path), 0600);
	ck_assert_int_eq(crypto_server_key_load(path, &b), 0);
	ck_assert_mem_eq(user_key_public(a), user_key_public(b), 32);
	ck_assert_int_eq(crypto_seal(user_key_public(a), "queued", 6, &blob, &blob_len), 0);
	ck_assert_int_eq(crypto_open(b, blob, blob_len, &msg, &msg_len), 0);
	ck_assert_mem_eq(msg, "queued", 6);
	free(msg);
	free(blob);
	user_key_free(a);
	user_key_free(b);

	/* A damaged key file is an error, never silently replaced. */
	ck_assert_int_eq(truncate(path, 10), 0);
	ck_assert_int_eq(crypto_server_key_load(path, &a), -1);
	ck_assert_ptr_null(a);
	remove_tmpdir();
}
END_TEST

static int san_has(X509 *x, int type, const char *want)
{
	GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	int found = 0;

	for (int i = 0; names != NULL && i < sk_GENERAL_NAME_num(names); i++) {
		GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);

		if (gn->type != type)
			continue;
		if (type == GEN_DNS) {
			const unsigned char *d = ASN1_STRING_get0_data(gn->d.dNSName);

			found |= strcmp((const char *)d, want) == 0;
		} else {
			char *ip = (char *)ASN1_STRING_get0_data(gn->d.iPAddress);
			unsigned char bin[16];
			int len = ASN1_STRING_length(gn->d.iPAddress);

			if (strchr(want, ':') != NULL)
				found |= len == 16 && inet_pton(AF_INET6, want, bin) == 1 &&
					 memcmp(ip, bin, 16) == 0;
			else
				found |= len == 4 && inet_pton(AF_INET, want, bin) == 1 &&
					 memcmp(ip, bin, 4) == 0;
		}
	}
	GENERAL_NAMES_free(names);
	return found;
}

START_TEST(selfsigned_cert_verifies_against_itself)
{
	char cert_path[512], key_path[512], err[512];
	X509 *x;
	EVP_PKEY *pkey;
	X509_STORE *store;
	X509_STORE_CTX *ctx;
	X509_VERIFY_PARAM *param;
	FILE *f;
	const ASN1_TIME *not_after;
	int days = 0, secs = 0;

	make_tmpdir();
	path_in_tmp(cert_path, sizeof(cert_path), "cert.pem");
	path_in_tmp(key_path, sizeof(key_path), "key.pem");
	ck_assert_int_eq(
	    crypto_selfsigned_cert("mail.example.org", cert_path, key_path, err, sizeof(err)), 0);
	ck_assert_int_eq(file_mode(key_path), 0600);

	f = fopen(cert_path, "r");
	ck_assert_ptr_nonnull(f);
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	ck_assert_ptr_nonnull(x);
	f = fopen(key_path, "r");
	ck_assert_ptr_nonnull(f);
	pkey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	ck_assert_ptr_nonnull(pkey);
	ck_assert_int_eq(X509_check_private_key(x, pkey), 1);
	ck_assert_int_eq(EVP_PKEY_get_base_id(pkey), EVP_PKEY_EC);
	ck_assert_int_eq(X509_get_signature_nid(x), NID_ecdsa_with_SHA256);
	ck_assert_int_eq(X509_get_version(x), X509_VERSION_3);

	/* Valid now, for about two years. */
	not_after = X509_get0_notAfter(x);
	ck_assert_int_eq(ASN1_TIME_diff(&days, &secs, NULL, not_after), 1);
	ck_assert_int_ge(days, 728);
	ck_assert_int_le(days, 731);
	ck_assert_int_le(X509_cmp_current_time(X509_get0_notBefore(x)), 0);

	/* SANs and the names a client checks. */
	ck_assert(san_has(x, GEN_DNS, "mail.example.org"));
	ck_assert(san_has(x, GEN_DNS, "localhost"));
	ck_assert(san_has(x, GEN_IPADD, "127.0.0.1"));
	ck_assert(san_has(x, GEN_IPADD, "::1"));
	ck_assert_int_eq(X509_check_host(x, "mail.example.org", 0, 0, NULL), 1);
	ck_assert_int_eq(X509_check_host(x, "localhost", 0, 0, NULL), 1);
	ck_assert_int_ne(X509_check_host(x, "other.example.org", 0, 0, NULL), 1);
	ck_assert_int_eq(X509_check_ip_asc(x, "127.0.0.1", 0), 1);
	ck_assert_int_eq(X509_check_ip_asc(x, "::1", 0), 1);

	/* Trusted as its own anchor, as a TLS server certificate, under strict checks. */
	store = X509_STORE_new();
	ck_assert_ptr_nonnull(store);
	ck_assert_int_eq(X509_STORE_add_cert(store, x), 1);
	ctx = X509_STORE_CTX_new();
	ck_assert_ptr_nonnull(ctx);
	ck_assert_int_eq(X509_STORE_CTX_init(ctx, store, x, NULL), 1);
	param = X509_STORE_CTX_get0_param(ctx);
	X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_X509_STRICT);
	ck_assert_int_eq(X509_VERIFY_PARAM_set_purpose(param, X509_PURPOSE_SSL_SERVER), 1);
	ck_assert_int_eq(X509_VERIFY_PARAM_set1_host(param, "localhost", 0), 1);
	ck_assert_msg(X509_verify_cert(ctx) == 1, "verify: %s",
		      X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);

	/* A second certificate has another serial and another key. */
	{
		char cert2[512], key2[512];
		X509 *y;

		path_in_tmp(cert2, sizeof(cert2), "cert2.pem");
		path_in_tmp(key2, sizeof(key2), "key2.pem");
		ck_assert_int_eq(crypto_selfsigned_cert("localhost", cert2, key2, err, sizeof(err)),
				 0);
		f = fopen(cert2, "r");
		ck_assert_ptr_nonnull(f);
		y = PEM_read_X509(f, NULL, NULL, NULL);
		fclose(f);
		ck_assert_ptr_nonnull(y);
		ck_assert_int_ne(
		    ASN1_INTEGER_cmp(X509_get0_serialNumber(x), X509_get0_serialNumber(y)), 0);
		ck_assert_int_ne(X509_check_private_key(y, pkey), 1);
		ck_assert_int_eq(X509_check_host(y, "localhost", 0, 0, NULL), 1);
		X509_free(y);
	}
	EVP_PKEY_free(pkey);
	X509_free(x);
	remove_tmpdir();
}
END_TEST

START_TEST(selfsigned_cert_refuses_bad_input)
{
	char cert_path[512], key_path[512], err[512];

	make_tmpdir();
	path_in_tmp(cert_path, sizeof(cert_path), "cert.pem");
	path_in_tmp(key_path, sizeof(key_path), "key.pem");
	err[0] = '\0';
	ck_assert_int_eq(crypto_selfsigned_cert("bad,host", cert_path, key_path, err, sizeof(err)),
			 -1);
	ck_assert_str_ne(err, "");
	ck_assert_int_eq(crypto_selfsigned_cert("", cert_path, key_path, err, sizeof(err)), -1);
	ck_assert_int_eq(access(cert_path, F_OK), -1);
	ck_assert_int_eq(crypto_selfsigned_cert("localhost", "/nonexistent/dir/cert.pem", key_path,
						err, sizeof(err)),
			 -1);
	ck_assert_ptr_nonnull(strstr(err, "/nonexistent/dir/cert.pem"));
	remove_tmpdir();
}
END_TEST

static Suite *crypto_suite(void)
{
	Suite *s = suite_create("crypto");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, password_hash_verifies_only_the_right_password);
	tcase_add_test(tc, password_hashes_are_salted);
	tcase_add_test(tc, default_cost_is_recorded_in_the_hash);
	tcase_add_test(tc, keygen_then_unlock_gives_the_same_key);
	tcase_add_test(tc, keygen_without_key_out_and_keys_differ);
	tcase_add_test(tc, unlock_with_wrong_password_fails);
	tcase_add_test(tc, every_byte_flip_of_a_wrapped_key_fails);
	tcase_add_test(tc, rewrap_changes_the_password_but_not_the_key);
	tcase_add_test(tc, seal_open_is_byte_exact);
	tcase_add_test(tc, sealing_twice_gives_different_blobs);
	tcase_add_test(tc, open_with_another_users_key_fails);
	tcase_add_test(tc, every_byte_flip_of_a_blob_fails);
	tcase_add_test(tc, a_kept_content_key_opens_only_what_crypto_open_would);
	tcase_add_test(tc, opening_more_messages_than_are_kept_still_works);
	tcase_add_test(tc, random_bytes_never_open_or_unlock);
	tcase_add_test(tc, sealed_keys_cannot_be_swapped_between_blobs);
	tcase_add_test(tc, recovery_key_recovers_the_private_key);
	tcase_add_test(tc, key_file_round_trip_and_modes);
	tcase_add_test(tc, key_file_with_garbage_is_refused);
	tcase_add_test(tc, server_key_is_created_once_and_reused);
	tcase_add_test(tc, selfsigned_cert_verifies_against_itself);
	tcase_add_test(tc, selfsigned_cert_refuses_bad_input);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(crypto_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
