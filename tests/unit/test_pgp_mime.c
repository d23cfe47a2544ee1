/*
 * test_pgp_mime.c - crypto/pgp_mime.c against GnuPG homes and certificates
 * made by the gpg, gpgsm and openssl tools (tests/data/pgp/make-homes.sh):
 * PGP/MIME and S/MIME signatures and encryption made here are checked by
 * those tools, theirs are checked here, and broken input (tampered content,
 * wrong micalg, broken armor, truncated CMS, unknown and expired keys) gives
 * a clear result instead of a crash.
 */
#include "config.h"

#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gpgme.h>
#include <sodium.h>

#include "crypto/pgp_mime.h"

static char dir[256];

static const char plain_msg[] = "From: Alice <alice@example.org>\r\n"
				"To: Bob <bob@example.org>\r\n"
				"Subject: quarterly numbers\r\n"
				"Message-ID: <t1@example.org>\r\n"
				"Content-Type: text/plain; charset=utf-8\r\n"
				"Content-Transfer-Encoding: 8bit\r\n"
				"\r\n"
				"Gr\xc3\xbc\xc3\x9f"
				"e, the numbers are 42.\r\n"
				"From the start, trailing space here \r\n";

static const char mixed_msg[] = "From: alice@example.org\r\n"
				"To: bob@example.org\r\n"
				"Subject: with attachment\r\n"
				"MIME-Version: 1.0\r\n"
				"Content-Type: multipart/mixed; boundary=\"b1\"\r\n"
				"\r\n"
				"--b1\r\n"
				"Content-Type: text/plain\r\n"
				"\r\n"
				"see attached\r\n"
				"--b1\r\n"
				"Content-Type: application/octet-stream; name=\"a.bin\"\r\n"
				"Content-Transfer-Encoding: base64\r\n"
				"\r\n"
				"AAECAwQFBgcICQ==\r\n"
				"--b1--\r\n";

static gpgme_error_t pw_cb(void *hook, const char *uid_hint, const char *info, int prev_bad, int fd)
{
	(void)hook;
	(void)uid_hint;
	(void)info;
	if (prev_bad)
		return gpg_error(GPG_ERR_BAD_PASSPHRASE);
	return gpgme_io_write(fd, "pw\n", 3) == 3 ? 0 : gpg_error(GPG_ERR_EIO);
}

static gpgme_ctx_t ctx_for(const char *home, gpgme_protocol_t proto)
{
	char path[512];
	gpgme_ctx_t ctx;

	gpgme_check_version(NULL);
	snprintf(path, sizeof(path), "%s/%s", dir, home);
	ck_assert_int_eq(gpgme_new(&ctx), 0);
	ck_assert_int_eq(gpgme_set_protocol(ctx, proto), 0);
	ck_assert_int_eq(gpgme_ctx_set_engine_info(ctx, proto, NULL, path), 0);
	gpgme_set_pinentry_mode(ctx, GPGME_PINENTRY_MODE_LOOPBACK);
	/* GPGME refuses CMS operations when a passphrase callback is set (gpgsm
	 * has no command handler): OpenPGP only. */
	if (proto == GPGME_PROTOCOL_OpenPGP)
		gpgme_set_passphrase_cb(ctx, pw_cb, NULL);
	return ctx;
}

static gpgme_key_t key_for(gpgme_ctx_t ctx, const char *address, int secret)
{
	gpgme_key_t key = NULL;

	ck_assert_int_eq(gpgme_op_keylist_start(ctx, address, secret), 0);
	ck_assert_int_eq(gpgme_op_keylist_next(ctx, &key), 0);
	gpgme_op_keylist_end(ctx);
	ck_assert_ptr_nonnull(key);
	return key;
}

static void write_file(const char *name, const void *data, size_t len)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(data, 1, len, f), len);
	fclose(f);
}

/* Runs CMD (in DIR) and returns its exit status; output goes to DIR/out. */
static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
	char cmd[2048], inner[1536];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(inner, sizeof(inner), fmt, ap);
	va_end(ap);
	snprintf(cmd, sizeof(cmd), "cd '%s' && (%s) > out 2> err", dir, inner);
	return system(cmd);
}

static char *read_out(void)
{
	static char buf[65536];
	char path[512];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/out", dir);
	f = fopen(path, "rb");
	ck_assert_ptr_nonnull(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return buf;
}

static unsigned char *sign_as(const char *home, const char *address, gpgme_protocol_t proto,
			      const char *msg, size_t *len)
{
	gpgme_ctx_t ctx = ctx_for(home, proto);
	gpgme_key_t key = key_for(ctx, address, 1);
	unsigned char *out = NULL;
	char err[256] = "";

	ck_assert_msg(pgp_mime_sign(ctx, key, (const unsigned char *)msg, strlen(msg), &out, len,
				    err, sizeof(err)) == 0,
		      "%s", err);
	gpgme_key_unref(key);
	gpgme_release(ctx);
	return out;
}

static void verify_as(const char *home, gpgme_protocol_t proto, const unsigned char *msg,
		      size_t len, struct pgp_verify_result *res)
{
	gpgme_ctx_t ctx = ctx_for(home, proto);

	pgp_mime_verify(ctx, msg, len, res);
	gpgme_release(ctx);
}

/* Replaces the first FROM in MSG with TO (same length). */
static void patch(unsigned char *msg, size_t len, const char *from, const char *to)
{
	unsigned char *p = memmem(msg, len, from, strlen(from));

	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(strlen(from), strlen(to));
	memcpy(p, to, strlen(to));
}

START_TEST(test_pgp_sign_is_valid_and_7bit)
{
	struct pgp_verify_result r;
	struct pgp_mime_info info;
	unsigned char *m;
	size_t len, hl;

	m = sign_as("alice", "alice@example.org", GPGME_PROTOCOL_OpenPGP, plain_msg, &len);
	ck_assert_ptr_nonnull(strstr((char *)m, "protocol=\"application/pgp-signature\""));
	ck_assert_ptr_nonnull(memmem(m, len, "micalg=pgp-sha256", 17));
	ck_assert_ptr_nonnull(memmem(m, len, "Subject: quarterly numbers\r\n", 28));
	/* RFC 3156 3: the signed entity is 7-bit (8bit text became quoted-printable). */
	hl = pgp_mime_header_length(m, len);
	for (size_t i = hl; i < len; i++)
		ck_assert_msg(m[i] < 0x80, "8-bit byte at %zu", i);
	ck_assert_ptr_nonnull(memmem(m, len, "quoted-printable", 16));
	/* ... and the trailing space is protected (RFC 3156 3). */
	ck_assert_ptr_nonnull(memmem(m, len, "here=20\r\n", 9));
	ck_assert_ptr_null(memmem(m, len, "here \r\n", 7));
	pgp_mime_inspect(m, len, &info);
	ck_assert_int_eq(info.signed_kind, PGP_KIND_PGPMIME);
	ck_assert_int_eq(info.encrypted_kind, PGP_KIND_NONE);

	verify_as("peer", GPGME_PROTOCOL_OpenPGP, m, len, &r);
	ck_assert_msg(r.status == PGP_SIG_VALID, "%s: %s", pgp_sig_status_name(r.status), r.detail);
	ck_assert_int_eq(r.kind, PGP_KIND_PGPMIME);
	ck_assert_str_eq(r.signer, "alice@example.org");
	ck_assert_uint_eq(strlen(r.fingerprint), 40);
	free(m);
}
END_TEST

/* Splits a multipart/signed we made into DIR/content (exact signed bytes) and DIR/sig.asc. */
static void split_signed(const unsigned char *m, size_t len)
{
	const char *b = strstr((const char *)m, "boundary=\"");
	char delim[128];
	const unsigned char *start, *end, *sig, *sig_end;
	size_t blen;

	ck_assert_ptr_nonnull(b);
	b += 10;
	blen = (size_t)(strchr(b, '"') - b);
	snprintf(delim, sizeof(delim), "--%.*s\r\n", (int)blen, b);
	start = memmem(m, len, delim, strlen(delim));
	ck_assert_ptr_nonnull(start);
	start += strlen(delim);
	snprintf(delim, sizeof(delim), "\r\n--%.*s\r\n", (int)blen, b);
	end = memmem(start, len - (size_t)(start - m), delim, strlen(delim));
	ck_assert_ptr_nonnull(end);
	write_file("content", start, (size_t)(end - start));
	sig = memmem(end, len - (size_t)(end - m), "-----BEGIN PGP SIGNATURE-----", 29);
	ck_assert_ptr_nonnull(sig);
	sig_end = memmem(sig, len - (size_t)(sig - m), "-----END PGP SIGNATURE-----", 27);
	ck_assert_ptr_nonnull(sig_end);
	write_file("sig.asc", sig, (size_t)(sig_end - sig) + 27);
}

START_TEST(test_pgp_signature_verified_by_gpg)
{
	unsigned char *m;
	size_t len;

	m = sign_as("alice", "alice@example.org", GPGME_PROTOCOL_OpenPGP, mixed_msg, &len);
	split_signed(m, len);
	ck_assert_int_eq(
	    run("gpg --homedir %s --batch --status-fd 1 --verify sig.asc content", "peer"), 0);
	ck_assert_ptr_nonnull(strstr(read_out(), "[GNUPG:] GOODSIG"));
	ck_assert_ptr_nonnull(strstr(read_out(), "alice@example.org"));
	free(m);
}
END_TEST

START_TEST(test_pgp_sign_multipart_keeps_attachment)
{
	struct pgp_verify_result r;
	unsigned char *m;
	size_t len;

	m = sign_as("alice", "alice@example.org", GPGME_PROTOCOL_OpenPGP, mixed_msg, &len);
	ck_assert_ptr_nonnull(memmem(m, len, "AAECAwQFBgcICQ==", 16));
	ck_assert_ptr_nonnull(memmem(m, len, "multipart/mixed", 15));
	verify_as("bob", GPGME_PROTOCOL_OpenPGP, m, len, &r);
	ck_assert_int_eq(r.status, PGP_SIG_VALID);
	free(m);
}
END_TEST

START_TEST(test_pgp_tampered_content_is_bad)
{
	struct pgp_verify_result r;
	unsigned char *m;
	size_t len;

	m = sign_as("alice", "alice@example.org", GPGME_PROTOCOL_OpenPGP, plain_msg, &len);
	patch(m, len, "are 42", "are 43");
	verify_as("peer", GPGME_PROTOCOL_OpenPGP, m, len, &r);
	ck_assert_int_eq(r.status, PGP_SIG_BAD);
	ck_assert_str_eq(pgp_sig_status_name(r.status), "bad");
	free(m);
}
END_TEST

START_TEST(test_pgp_wrong_micalg_is_bad)
{
	struct pgp_verify_result r;
	unsigned char *m;
	size_t len;

	m = sign_as("alice", "alice@example.org", GPGME_PROTOCOL_OpenPGP, plain_msg, &len);
	patch(m, len, "micalg=pgp-sha256", "micalg=pgp-sha512");
	verify_as("peer", GPGME_PROTOCOL_OpenPGP, m, len, &r);
	ck_assert_int_eq(r.status, PGP_SIG_BAD);
	ck_assert_ptr_nonnull(strstr(r.detail, "micalg"));
	free(m);
}
END_TEST

START_TEST(test_pgp_unknown_key)
{
	struct pgp_verify_result r;
	unsigned char *m;
	size_t len;

	m = sign_as("alice", "alice@example.org", GPGME_PROTOCOL_OpenPGP, plain_msg, &len);
	verify_as("empty", GPGME_PROTOCOL_OpenPGP, m, len, &r);
	ck_assert_int_eq(r.status, PGP_SIG_UNKNOWN_KEY);
	ck_assert_uint_gt(strlen(r.fingerprint), 0);
	free(m);
}
END_TEST

START_TEST(test_pgp_broken_armor_is_error)
{
	struct pgp_verify_result r;
	unsigned char *m, *p;
	size_t len;

	m = sign_as("alice", "alice@example.org", GPGME_PROTOCOL_OpenPGP, plain_msg, &len);
	p = memmem(m, len, "-----BEGIN PGP SIGNATURE-----", 29);
	ck_assert_ptr_nonnull(p);
	/* Garble the armored body after the header line. */
	for (size_t i = 35; i < 75 && p + i < m + len; i++)
		if (p[i] != '\r' && p[i] != '\n')
			p[i] = '!';
	verify_as("peer", GPGME_PROTOCOL_OpenPGP, m, len, &r);
	ck_assert_msg(r.status == PGP_SIG_ERROR || r.status == PGP_SIG_BAD, "%s",
		      pgp_sig_status_name(r.status));
	ck_assert_uint_gt(strlen(r.detail), 0);
	free(m);
}
END_TEST

START_TEST(test_pgp_expired_key)
{
	static const char head[] =
	    "From: olga@example.org\r\nSubject: old\r\nMIME-Version: 1.0\r\n"
	    "Content-Type: multipart/signed; boundary=\"xx\"; micalg=pgp-sha256;\r\n"
	    " protocol=\"application/pgp-signature\"\r\n\r\n--xx\r\nold text\r\n\r\n--xx\r\n"
	    "Content-Type: application/pgp-signature\r\n\r\n";
	struct pgp_verify_result r;
	char path[512], sig[4096], msg[8192];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/old.sig", dir);
	f = fopen(path, "rb");
	ck_assert_ptr_nonnull(f);
	n = fread(sig, 1, sizeof(sig) - 1, f);
	fclose(f);
	sig[n] = '\0';
	snprintf(msg, sizeof(msg), "%s%s\r\n--xx--\r\n", head, sig);
	verify_as("peer", GPGME_PROTOCOL_OpenPGP, (unsigned char *)msg, strlen(msg), &r);
	ck_assert_msg(r.status == PGP_SIG_EXPIRED, "%s: %s", pgp_sig_status_name(r.status),
		      r.detail);
	ck_assert_str_eq(r.signer, "olga@example.org");
}
END_TEST

START_TEST(test_pgp_inline_clearsigned_by_gpg)
{
	struct pgp_verify_result r;
	char msg[8192];
	struct pgp_mime_info info;

	write_file("inline.txt", "Meet at noon.\n", 14);
	ck_assert_int_eq(run("gpg --homedir %s --batch --clearsign -o - inline.txt", "alice"), 0);
	snprintf(msg, sizeof(msg), "From: alice@example.org\r\nSubject: inline\r\n\r\n%s",
		 read_out());
	pgp_mime_inspect((unsigned char *)msg, strlen(msg), &info);
	ck_assert_int_eq(info.signed_kind, PGP_KIND_INLINE);
	verify_as("peer", GPGME_PROTOCOL_OpenPGP, (unsigned char *)msg, strlen(msg), &r);
	ck_assert_int_eq(r.kind, PGP_KIND_INLINE);
	ck_assert_msg(r.status == PGP_SIG_VALID, "%s", r.detail);
	ck_assert_str_eq(r.signer, "alice@example.org");
	/* A changed word breaks it. */
	char *p = strstr(msg, "noon");
	ck_assert_ptr_nonnull(p);
	memcpy(p, "nine", 4);
	verify_as("peer", GPGME_PROTOCOL_OpenPGP, (unsigned char *)msg, strlen(msg), &r);
	ck_assert_int_eq(r.status, PGP_SIG_BAD);
}
END_TEST

START_TEST(test_pgp_unsigned_is_none)
{
	struct pgp_verify_result r;

	verify_as("peer", GPGME_PROTOCOL_OpenPGP, (const unsigned char *)plain_msg,
		  strlen(plain_msg), &r);
	ck_assert_int_eq(r.status, PGP_SIG_NONE);
	ck_assert_int_eq(r.kind, PGP_KIND_NONE);
}
END_TEST

static unsigned char *encrypt_as(const char *home, gpgme_protocol_t proto, const char *signer,
				 const char *to1, const char *to2, const char *msg, size_t *len)
{
	gpgme_ctx_t ctx = ctx_for(home, proto);
	gpgme_key_t keys[3] = {key_for(ctx, to1, 0), to2 ? key_for(ctx, to2, 0) : NULL, NULL};
	gpgme_key_t sk = signer ? key_for(ctx, signer, 1) : NULL;
	unsigned char *out = NULL;
	char err[256] = "";

	ck_assert_msg(pgp_mime_encrypt(ctx, keys, sk, (const unsigned char *)msg, strlen(msg), &out,
				       len, err, sizeof(err)) == 0,
		      "%s", err);
	for (int i = 0; keys[i]; i++)
		gpgme_key_unref(keys[i]);
	if (sk)
		gpgme_key_unref(sk);
	gpgme_release(ctx);
	return out;
}

START_TEST(test_pgp_encrypt_decrypt)
{
	struct pgp_verify_result sig;
	struct pgp_mime_info info;
	unsigned char *m, *d = NULL;
	size_t len, dlen;
	char err[256] = "";
	gpgme_ctx_t ctx;

	m = encrypt_as("alice", GPGME_PROTOCOL_OpenPGP, NULL, "bob@example.org",
		       "alice@example.org", mixed_msg, &len);
	ck_assert_ptr_null(memmem(m, len, "see attached", 12));
	ck_assert_ptr_nonnull(memmem(m, len, "multipart/encrypted", 19));
	ck_assert_ptr_nonnull(memmem(m, len, "Version: 1", 10));
	ck_assert_ptr_nonnull(memmem(m, len, "Subject: with attachment", 24));
	pgp_mime_inspect(m, len, &info);
	ck_assert_int_eq(info.encrypted_kind, PGP_KIND_PGPMIME);

	/* gpg itself opens it (the armored block inside the message). */
	write_file("enc.eml", m, len);
	ck_assert_int_eq(run("gpg --homedir %s --batch --decrypt enc.eml", "bob"), 0);
	ck_assert_ptr_nonnull(strstr(read_out(), "see attached"));

	ctx = ctx_for("bob", GPGME_PROTOCOL_OpenPGP);
	ck_assert_int_eq(pgp_mime_decrypt(ctx, m, len, &d, &dlen, &sig, err, sizeof(err)), 1);
	gpgme_release(ctx);
	ck_assert_ptr_nonnull(memmem(d, dlen, "see attached", 12));
	ck_assert_ptr_nonnull(memmem(d, dlen, "AAECAwQFBgcICQ==", 16));
	ck_assert_ptr_nonnull(memmem(d, dlen, "Subject: with attachment\r\n", 26));
	ck_assert_int_eq(sig.status, PGP_SIG_NONE);
	free(d);

	/* The sender reads her own copy. */
	ctx = ctx_for("alice", GPGME_PROTOCOL_OpenPGP);
	ck_assert_int_eq(pgp_mime_decrypt(ctx, m, len, &d, &dlen, NULL, err, sizeof(err)), 1);
	gpgme_release(ctx);
	free(d);

	/* Someone without the key gets an error, not a crash. */
	ctx = ctx_for("peer", GPGME_PROTOCOL_OpenPGP);
	ck_assert_int_eq(pgp_mime_decrypt(ctx, m, len, &d, &dlen, NULL, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "decryption failed"));
	/* Not encrypted: 0. */
	ck_assert_int_eq(pgp_mime_decrypt(ctx, (const unsigned char *)plain_msg, strlen(plain_msg),
					  &d, &dlen, NULL, err, sizeof(err)),
			 0);
	gpgme_release(ctx);
	free(m);
}
END_TEST

START_TEST(test_pgp_sign_encrypt_decrypt_verifies)
{
	struct pgp_verify_result sig;
	unsigned char *m, *d = NULL;
	size_t len, dlen;
	char err[256] = "";
	gpgme_ctx_t ctx;

	m = encrypt_as("alice", GPGME_PROTOCOL_OpenPGP, "alice@example.org", "bob@example.org",
		       NULL, plain_msg, &len);
	ctx = ctx_for("bob", GPGME_PROTOCOL_OpenPGP);
	ck_assert_int_eq(pgp_mime_decrypt(ctx, m, len, &d, &dlen, &sig, err, sizeof(err)), 1);
	gpgme_release(ctx);
	ck_assert_int_eq(sig.status, PGP_SIG_VALID);
	ck_assert_str_eq(sig.signer, "alice@example.org");
	ck_assert_ptr_nonnull(memmem(d, dlen, "numbers are 42", 14));
	free(d);
	free(m);
}
END_TEST

START_TEST(test_password_protect_opens_with_gpg)
{
	gpgme_ctx_t ctx = ctx_for("alice", GPGME_PROTOCOL_OpenPGP);
	unsigned char *m = NULL, *asc;
	size_t len;
	char err[256] = "";

	ck_assert_int_eq(pgp_mime_password_protect(ctx, "correct horse",
						   (const unsigned char *)mixed_msg,
						   strlen(mixed_msg), &m, &len, err, sizeof(err)),
			 0);
	gpgme_release(ctx);
	ck_assert_ptr_null(memmem(m, len, "see attached", 12));
	ck_assert_ptr_null(memmem(m, len, "correct horse", 13));
	ck_assert_ptr_nonnull(memmem(m, len, "gpg --decrypt message.asc", 25));
	ck_assert_ptr_nonnull(memmem(m, len, "Subject: with attachment", 24));
	asc = memmem(m, len, "-----BEGIN PGP MESSAGE-----", 27);
	ck_assert_ptr_nonnull(asc);
	write_file("message.asc", asc, len - (size_t)(asc - m));
	ck_assert_int_eq(run("gpg --homedir %s --batch --pinentry-mode loopback --passphrase "
			     "'correct horse' --decrypt message.asc",
			     "empty"),
			 0);
	ck_assert_ptr_nonnull(strstr(read_out(), "see attached"));
	ck_assert_ptr_nonnull(strstr(read_out(), "AAECAwQFBgcICQ=="));
	ck_assert_int_ne(run("gpg --homedir %s --batch --pinentry-mode loopback --passphrase "
			     "'wrong horse' --decrypt message.asc",
			     "empty"),
			 0);
	free(m);
}
END_TEST

START_TEST(test_autocrypt_header_imports)
{
	gpgme_ctx_t ctx = ctx_for("alice", GPGME_PROTOCOL_OpenPGP);
	gpgme_key_t key = key_for(ctx, "alice@example.org", 0);
	char *h = NULL, err[256] = "", b64[8192];
	unsigned char bin[8192];
	size_t o = 0, binlen;
	const char *kd;

	ck_assert_int_eq(
	    pgp_mime_autocrypt_header(ctx, "alice@example.org", key, &h, err, sizeof(err)), 0);
	gpgme_key_unref(key);
	gpgme_release(ctx);
	ck_assert(strncmp(h, "Autocrypt: addr=alice@example.org; keydata=", 43) == 0);
	for (const char *l = h; *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : l + strlen(l))
		ck_assert_uint_le((size_t)(strchrnul(l, '\n') - l), 78);
	kd = strstr(h, "keydata=") + 8;
	for (; *kd && o < sizeof(b64) - 1; kd++)
		if (*kd != '\r' && *kd != '\n' && *kd != ' ')
			b64[o++] = *kd;
	b64[o] = '\0';
	ck_assert_int_eq(sodium_base642bin(bin, sizeof(bin), b64, o, NULL, &binlen, NULL,
					   sodium_base64_VARIANT_ORIGINAL),
			 0);
	write_file("ac.pgp", bin, binlen);
	ck_assert_int_eq(run("mkdir -m 700 -p ac && gpg --homedir ac --batch --import ac.pgp && "
			     "gpg --homedir ac --with-colons --list-keys %s",
			     "alice@example.org"),
			 0);
	/* Primary key and the encryption subkey. */
	ck_assert_ptr_nonnull(strstr(read_out(), "sub:"));
	run("gpgconf --homedir ac --kill all; rm -rf %s", "ac");
	free(h);
}
END_TEST

START_TEST(test_smime_sign_verified_by_openssl)
{
	struct pgp_verify_result r;
	struct pgp_mime_info info;
	unsigned char *m;
	size_t len;

	m = sign_as("carol", "carol@example.org", GPGME_PROTOCOL_CMS, plain_msg, &len);
	ck_assert_ptr_nonnull(memmem(m, len, "application/pkcs7-signature", 27));
	ck_assert_ptr_nonnull(memmem(m, len, "micalg=sha-256", 14));
	pgp_mime_inspect(m, len, &info);
	ck_assert_int_eq(info.signed_kind, PGP_KIND_SMIME);
	write_file("smime.eml", m, len);
	ck_assert_int_eq(
	    run("openssl smime -verify -in smime.eml -CAfile ca.pem -purpose %s", "smimesign"), 0);
	verify_as("dave", GPGME_PROTOCOL_CMS, m, len, &r);
	ck_assert_msg(r.status == PGP_SIG_VALID, "%s: %s", pgp_sig_status_name(r.status), r.detail);
	ck_assert_str_eq(r.signer, "carol@example.org");
	ck_assert_int_eq(r.kind, PGP_KIND_SMIME);
	patch(m, len, "are 42", "are 43");
	verify_as("dave", GPGME_PROTOCOL_CMS, m, len, &r);
	ck_assert_int_eq(r.status, PGP_SIG_BAD);
	free(m);
}
END_TEST

START_TEST(test_smime_openssl_signed_and_expired)
{
	struct pgp_verify_result r;
	static char msg[65536];
	size_t n;

	write_file("t.txt", "Content-Type: text/plain\r\n\r\nhello\r\n", 35);
	ck_assert_int_eq(
	    run("openssl smime -sign -in t.txt -signer %s.pem -inkey dave.key", "dave"), 0);
	n = (size_t)snprintf(msg, sizeof(msg), "From: dave@example.org\r\n%s", read_out());
	verify_as("carol", GPGME_PROTOCOL_CMS, (unsigned char *)msg, n, &r);
	ck_assert_msg(r.status == PGP_SIG_VALID, "%s: %s", pgp_sig_status_name(r.status), r.detail);
	ck_assert_str_eq(r.signer, "dave@example.org");

	/* A certificate that expired: gpgsm knows the CA but not this certificate; import it. */
	ck_assert_int_eq(run("gpgsm --homedir carol --batch --import %s.pem", "expired"), 0);
	ck_assert_int_eq(
	    run("openssl smime -sign -in t.txt -signer %s.pem -inkey expired.key", "expired"), 0);
	n = (size_t)snprintf(msg, sizeof(msg), "From: expired@example.org\r\n%s", read_out());
	verify_as("carol", GPGME_PROTOCOL_CMS, (unsigned char *)msg, n, &r);
	ck_assert_msg(r.status == PGP_SIG_EXPIRED, "%s: %s", pgp_sig_status_name(r.status),
		      r.detail);
}
END_TEST

START_TEST(test_smime_untrusted_certificate_is_unknown_key)
{
	struct pgp_verify_result r;
	static char msg[65536];
	size_t n;

	write_file("u.txt", "Content-Type: text/plain\r\n\r\nhello\r\n", 35);
	ck_assert_int_eq(
	    run("openssl req -x509 -newkey rsa:2048 -nodes -days 30 -keyout ss.key "
		"-out ss.pem -subj /CN=mallory -addext subjectAltName=email:%s "
		"2>/dev/null && openssl smime -sign -in u.txt -signer ss.pem -inkey ss.key",
		"m@evil.example"),
	    0);
	n = (size_t)snprintf(msg, sizeof(msg), "From: m@evil.example\r\n%s", read_out());
	verify_as("dave", GPGME_PROTOCOL_CMS, (unsigned char *)msg, n, &r);
	ck_assert_msg(r.status == PGP_SIG_UNKNOWN_KEY, "%s: %s", pgp_sig_status_name(r.status),
		      r.detail);
	ck_assert_ptr_nonnull(strstr(r.detail, "not trusted"));
}
END_TEST

START_TEST(test_smime_truncated_cms_is_error)
{
	struct pgp_verify_result r;
	unsigned char *m, *p, *end;
	size_t len;

	m = sign_as("carol", "carol@example.org", GPGME_PROTOCOL_CMS, plain_msg, &len);
	p = memmem(m, len, "S/MIME Cryptographic Signature\r\n\r\n", 34);
	ck_assert_ptr_nonnull(p);
	p += 34;
	/* Keep three lines of the base64 signature, then the closing delimiter. */
	for (int i = 0; i < 3; i++)
		p = (unsigned char *)strchr((char *)p, '\n') + 1;
	end = memmem(p, len - (size_t)(p - m), "--=_postern_", 12);
	ck_assert_ptr_nonnull(end);
	memmove(p, end, len - (size_t)(end - m));
	len -= (size_t)(end - p);
	verify_as("dave", GPGME_PROTOCOL_CMS, m, len, &r);
	ck_assert_msg(r.status == PGP_SIG_ERROR || r.status == PGP_SIG_BAD, "%s",
		      pgp_sig_status_name(r.status));
	ck_assert_uint_gt(strlen(r.detail), 0);
	free(m);
}
END_TEST

START_TEST(test_smime_encrypt_decrypt)
{
	struct pgp_mime_info info;
	unsigned char *m, *d = NULL;
	size_t len, dlen;
	char err[256] = "";
	gpgme_ctx_t ctx;

	m = encrypt_as("carol", GPGME_PROTOCOL_CMS, NULL, "dave@example.org", "carol@example.org",
		       mixed_msg, &len);
	ck_assert_ptr_nonnull(memmem(m, len, "smime-type=enveloped-data", 25));
	ck_assert_ptr_null(memmem(m, len, "see attached", 12));
	pgp_mime_inspect(m, len, &info);
	ck_assert_int_eq(info.encrypted_kind, PGP_KIND_SMIME);
	write_file("senc.eml", m, len);
	ck_assert_int_eq(
	    run("openssl smime -decrypt -in senc.eml -recip %s.pem -inkey dave.key", "dave"), 0);
	ck_assert_ptr_nonnull(strstr(read_out(), "see attached"));

	ctx = ctx_for("dave", GPGME_PROTOCOL_CMS);
	ck_assert_msg(pgp_mime_decrypt(ctx, m, len, &d, &dlen, NULL, err, sizeof(err)) == 1, "%s",
		      err);
	gpgme_release(ctx);
	ck_assert_ptr_nonnull(memmem(d, dlen, "see attached", 12));
	ck_assert_ptr_nonnull(memmem(d, dlen, "Subject: with attachment", 24));
	free(d);
	free(m);

	/* Signed, then enveloped: the decrypted message verifies. */
	m = encrypt_as("carol", GPGME_PROTOCOL_CMS, "carol@example.org", "dave@example.org", NULL,
		       plain_msg, &len);
	ctx = ctx_for("dave", GPGME_PROTOCOL_CMS);
	ck_assert_int_eq(pgp_mime_decrypt(ctx, m, len, &d, &dlen, NULL, err, sizeof(err)), 1);
	{
		struct pgp_verify_result r;

		pgp_mime_verify(ctx, d, dlen, &r);
		ck_assert_msg(r.status == PGP_SIG_VALID, "%s", r.detail);
	}
	gpgme_release(ctx);
	free(d);
	free(m);
}
END_TEST

/* Mail encrypted by the command-line tools, decrypted here. */
START_TEST(test_decrypt_mail_made_by_gpg_and_openssl)
{
	static char msg[65536];
	unsigned char *d = NULL;
	size_t n, dlen;
	char err[256] = "";
	gpgme_ctx_t ctx;
	char *armored;

	write_file("entity.txt", "Content-Type: text/plain\r\n\r\nfrom the gpg tool\r\n", 47);
	ck_assert_int_eq(run("gpg --homedir %s --batch --armor --encrypt -r bob@example.org -o - "
			     "entity.txt",
			     "alice"),
			 0);
	armored = read_out();
	n = (size_t)snprintf(msg, sizeof(msg),
			     "From: alice@example.org\r\nSubject: gpg made\r\nMIME-Version: 1.0\r\n"
			     "Content-Type: multipart/encrypted; boundary=\"q\";\r\n"
			     " protocol=\"application/pgp-encrypted\"\r\n\r\n--q\r\n"
			     "Content-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n"
			     "--q\r\nContent-Type: application/octet-stream\r\n\r\n%s\r\n--q--\r\n",
			     armored);
	ctx = ctx_for("bob", GPGME_PROTOCOL_OpenPGP);
	ck_assert_msg(
	    pgp_mime_decrypt(ctx, (unsigned char *)msg, n, &d, &dlen, NULL, err, sizeof(err)) == 1,
	    "%s", err);
	gpgme_release(ctx);
	ck_assert_ptr_nonnull(memmem(d, dlen, "from the gpg tool", 17));
	ck_assert_ptr_nonnull(memmem(d, dlen, "Subject: gpg made\r\n", 19));
	free(d);

	write_file("sentity.txt", "Content-Type: text/plain\r\n\r\nfrom openssl\r\n", 42);
	ck_assert_int_eq(run("openssl smime -encrypt -aes256 -in sentity.txt %s.pem", "dave"), 0);
	n = (size_t)snprintf(msg, sizeof(msg), "From: carol@example.org\r\n%s", read_out());
	ctx = ctx_for("dave", GPGME_PROTOCOL_CMS);
	ck_assert_msg(
	    pgp_mime_decrypt(ctx, (unsigned char *)msg, n, &d, &dlen, NULL, err, sizeof(err)) == 1,
	    "%s", err);
	gpgme_release(ctx);
	ck_assert_ptr_nonnull(memmem(d, dlen, "from openssl", 12));
	free(d);
}
END_TEST

START_TEST(test_header_helpers)
{
	char buf[] = "From: a@b\r\nX-Postern-Password:  s3cret  two\r\n continued \r\nSubject: "
		     "hi\r\n\r\n"
		     "X-Postern-Password: body stays\r\n";
	char v[64];
	size_t len = strlen(buf);

	ck_assert_int_eq(
	    pgp_mime_header_get((unsigned char *)buf, len, "x-postern-password", v, sizeof(v)), 1);
	ck_assert_str_eq(v, "s3cret  two continued");
	len = pgp_mime_header_remove((unsigned char *)buf, len, "X-Postern-Password");
	buf[len] = '\0';
	ck_assert_str_eq(buf, "From: a@b\r\nSubject: hi\r\n\r\nX-Postern-Password: body stays\r\n");
	ck_assert_int_eq(
	    pgp_mime_header_get((unsigned char *)buf, len, "X-Postern-Password", v, sizeof(v)), 0);
	ck_assert_uint_eq(pgp_mime_header_length((unsigned char *)buf, len), 26);
	{
		char w[64] = "=?utf-8?q?Gr=C3=BC=C3=9Fe_42?=";

		pgp_mime_decode_words(w, sizeof(w));
		ck_assert_str_eq(w, "Gr\xc3\xbc\xc3\x9f"
				    "e 42");
	}
}
END_TEST

START_TEST(test_garbage_never_crashes)
{
	static const char *const inputs[] = {
	    "",
	    "\r\n",
	    "Content-Type: multipart/signed; protocol=\"application/pgp-signature\"\r\n\r\n",
	    "Content-Type: multipart/signed; boundary=x; protocol=\"application/pgp-signature\"\r\n"
	    "\r\n--x\r\nhello\r\n--x--\r\n",
	    "Content-Type: multipart/encrypted; boundary=x\r\n\r\n--x\r\nVersion: 1\r\n--x\r\n"
	    "\r\n-----BEGIN PGP MESSAGE-----\r\n\r\nAAAA\r\n-----END PGP MESSAGE-----\r\n--x--\r\n",
	    "Content-Type: application/pkcs7-mime; smime-type=signed-data\r\n"
	    "Content-Transfer-Encoding: base64\r\n\r\nMIIB\r\n",
	    "Subject: x\r\n\r\n-----BEGIN PGP SIGNED MESSAGE-----\r\nHash: SHA256\r\n\r\nhi\r\n",
	};
	struct pgp_verify_result r;
	unsigned char *d = NULL;
	size_t dlen;
	char err[256];

	for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
		const unsigned char *m = (const unsigned char *)inputs[i];
		struct pgp_mime_info info;
		gpgme_ctx_t ctx;

		pgp_mime_inspect(m, strlen(inputs[i]), &info);
		ctx =
		    ctx_for("peer", pgp_mime_kind_protocol(info.signed_kind ? info.signed_kind
									    : info.encrypted_kind));
		pgp_mime_verify(ctx, m, strlen(inputs[i]), &r);
		if (info.signed_kind)
			ck_assert_msg(r.status == PGP_SIG_ERROR || r.status == PGP_SIG_BAD,
				      "input %zu: %s", i, pgp_sig_status_name(r.status));
		if (info.encrypted_kind)
			ck_assert_int_eq(pgp_mime_decrypt(ctx, m, strlen(inputs[i]), &d, &dlen,
							  NULL, err, sizeof(err)),
					 -1);
		gpgme_release(ctx);
	}
}
END_TEST

static void kill_agents(void)
{
	static const char *const homes[] = {"alice", "bob",   "peer", "empty",
					    "old",   "carol", "dave"};
	char cmd[600];

	for (size_t i = 0; i < sizeof(homes) / sizeof(homes[0]); i++) {
		snprintf(cmd, sizeof(cmd), "gpgconf --homedir '%s/%s' --kill all 2>/dev/null", dir,
			 homes[i]);
		if (system(cmd) != 0)
			fprintf(stderr, "could not stop the agent of %s\n", homes[i]);
	}
}

int main(void)
{
	const char *top = getenv("top_srcdir");
	char cmd[1024];
	Suite *s = suite_create("pgp_mime");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	if (sodium_init() < 0)
		return 1;
	snprintf(dir, sizeof(dir), "/tmp/postern-pgpmime-XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	snprintf(cmd, sizeof(cmd), "sh '%s/tests/data/pgp/make-homes.sh' '%s' 2>/dev/null",
		 top ? top : ".", dir);
	if (system(cmd) != 0) {
		fprintf(stderr, "make-homes.sh failed\n");
		return 1;
	}
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_pgp_sign_is_valid_and_7bit);
	tcase_add_test(tc, test_pgp_sign_multipart_keeps_attachment);
	tcase_add_test(tc, test_pgp_signature_verified_by_gpg);
	tcase_add_test(tc, test_pgp_tampered_content_is_bad);
	tcase_add_test(tc, test_pgp_wrong_micalg_is_bad);
	tcase_add_test(tc, test_pgp_unknown_key);
	tcase_add_test(tc, test_pgp_broken_armor_is_error);
	tcase_add_test(tc, test_pgp_expired_key);
	tcase_add_test(tc, test_pgp_inline_clearsigned_by_gpg);
	tcase_add_test(tc, test_pgp_unsigned_is_none);
	tcase_add_test(tc, test_pgp_encrypt_decrypt);
	tcase_add_test(tc, test_pgp_sign_encrypt_decrypt_verifies);
	tcase_add_test(tc, test_password_protect_opens_with_gpg);
	tcase_add_test(tc, test_autocrypt_header_imports);
	tcase_add_test(tc, test_smime_sign_verified_by_openssl);
	tcase_add_test(tc, test_smime_openssl_signed_and_expired);
	tcase_add_test(tc, test_smime_untrusted_certificate_is_unknown_key);
	tcase_add_test(tc, test_smime_truncated_cms_is_error);
	tcase_add_test(tc, test_smime_encrypt_decrypt);
	tcase_add_test(tc, test_decrypt_mail_made_by_gpg_and_openssl);
	tcase_add_test(tc, test_header_helpers);
	tcase_add_test(tc, test_garbage_never_crashes);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	kill_agents();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return failed == 0 ? 0 : 1;
}
