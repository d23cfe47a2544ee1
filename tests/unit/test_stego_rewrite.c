/*
 * test_stego_rewrite.c - the pure parts of the submission rewrite: the
 * X-Postern-Stego request and its parameters, taking the password field out
 * of a message (folded, repeated, empty, over-long, only in the header
 * section), and cutting the sender's cover out of a multipart message with
 * the rest left byte for byte.
 */
#include <config.h>

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "deliver/stego_rewrite.h"

static const unsigned char *U(const char *s)
{
	return (const unsigned char *)s;
}

START_TEST(request_values)
{
	static const struct {
		const char *msg;
		bool requested;
		int parsed;
		bool attached;
	} cases[] = {
	    {"X-Postern-Stego: yes\r\n\r\nbody", true, 0, false},
	    {"x-postern-stego:YES\r\n\r\n", true, 0, false},
	    {"X-Postern-Stego: yes; cover=attached\r\n\r\n", true, 0, true},
	    {"X-Postern-Stego: yes ;\r\n cover = Attached \r\n\r\n", true, 0, true},
	    {"X-Postern-Stego: yes; cover=generated\r\n\r\n", true, 0, false},
	    {"X-Postern-Stego: yes; cover=somewhere\r\n\r\n", true, -1, false},
	    {"X-Postern-Stego: yes; size=big\r\n\r\n", true, -1, false},
	    {"X-Postern-Stego: yes cover\r\n\r\n", true, -1, false},
	    {"X-Postern-Stego: yesterday\r\n\r\n", false, -1, false},
	    {"X-Postern-Stego: no\r\n\r\n", false, -1, false},
	    {"X-Postern-Stego: image\r\n\r\n", false, -1, false},
	    {"X-Postern-Stego: yes\r\nX-Postern-Stego: yes\r\n\r\n", true, -1, false},
	    {"Subject: x\r\n\r\nX-Postern-Stego: yes\r\n", false, -1, false},
	    {"X-Postern-Stego-Password: yes\r\n\r\n", false, -1, false},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct stego_request req;
		char err[200] = "";
		size_t len = strlen(cases[i].msg);

		ck_assert_msg(stego_rewrite_requested(U(cases[i].msg), len) == cases[i].requested,
			      "requested: %s", cases[i].msg);
		ck_assert_msg(stego_rewrite_parse(U(cases[i].msg), len, &req, err, sizeof(err)) ==
				  cases[i].parsed,
			      "parse: %s (%s)", cases[i].msg, err);
		if (cases[i].parsed == 0)
			ck_assert_msg(req.attached_cover == cases[i].attached, "%s", cases[i].msg);
		else
			ck_assert_msg(err[0] != '\0', "no reason for %s", cases[i].msg);
	}
}
END_TEST

/* Runs take_password on a copy of IN and checks the message left and the password. */
static void take(const char *in, const char *want_msg, bool present, bool invalid,
		 const char *want_pw)
{
	size_t len = strlen(in), n;
	unsigned char *buf = malloc(len + 1);
	struct stego_password pw;

	memcpy(buf, in, len);
	n = stego_rewrite_take_password(buf, len, &pw);
	ck_assert_msg(n == strlen(want_msg) && memcmp(buf, want_msg, n) == 0, "left %.*s for %s",
		      (int)n, buf, in);
	/* The bytes given up at the end are wiped. */
	for (size_t i = n; i < len; i++)
		ck_assert_uint_eq(buf[i], 0);
	ck_assert_msg(pw.present == present && pw.invalid == invalid, "flags for %s", in);
	if (want_pw) {
		ck_assert_str_eq(pw.value, want_pw);
		ck_assert_uint_eq(pw.len, strlen(want_pw));
	}
	free(buf);
}

START_TEST(password_field_is_taken_out)
{
	char long_field[1200], big[1100];

	take("From: a@b\r\nX-Postern-Stego-Password:  tall ships \r\nTo: c@d\r\n\r\nbody\r\n",
	     "From: a@b\r\nTo: c@d\r\n\r\nbody\r\n", true, false, "tall ships");
	/* Folded: the line break goes, the white space stays. */
	take("X-Postern-Stego-Password: tall\r\n ships\r\n\tand\r\nSubject: s\r\n\r\nb",
	     "Subject: s\r\n\r\nb", true, false, "tall ships\tand");
	/* Case of the name; bare LF line ends; a body line that looks like the field stays. */
	take("x-postern-stego-password: pw 1\nSubject: s\n\nX-Postern-Stego-Password: body\n",
	     "Subject: s\n\nX-Postern-Stego-Password: body\n", true, false, "pw 1");
	/* Every copy goes; two make the request invalid. */
	take("X-Postern-Stego-Password: one\r\nA: b\r\nX-Postern-Stego-Password: two\r\n\r\n",
	     "A: b\r\n\r\n", true, true, NULL);
	take("X-Postern-Stego-Password:   \r\n\r\n", "\r\n", true, true, NULL);
	/* A longer field name is another field. */
	take("X-Postern-Stego-Passwords: x\r\n\r\n", "X-Postern-Stego-Passwords: x\r\n\r\n", false,
	     false, NULL);
	take("Subject: none\r\n\r\n", "Subject: none\r\n\r\n", false, false, NULL);
	/* Over the limit: invalid, and still removed. */
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	snprintf(long_field, sizeof(long_field), "X-Postern-Stego-Password: %s\r\nA: b\r\n\r\n",
		 big);
	take(long_field, "A: b\r\n\r\n", true, true, NULL);
	/* Exactly the limit is fine. */
	big[STEGO_REWRITE_PASSWORD_MAX] = '\0';
	snprintf(long_field, sizeof(long_field), "X-Postern-Stego-Password: %s\r\n\r\n", big);
	take(long_field, "\r\n", true, false, big);
}
END_TEST

#define PNG_B64 "iVBORw0KGgo=" /* the PNG signature */

static void cover(const char *msg, int want, const char *want_rest, size_t want_png_len)
{
	unsigned char *png = NULL, *rest = NULL;
	size_t png_len = 0, rest_len = 0;
	char err[200] = "";
	int rc = stego_cover_take(U(msg), strlen(msg), &png, &png_len, &rest, &rest_len, err,
				  sizeof(err));

	ck_assert_msg(rc == want, "rc %d for %s (%s)", rc, msg, err);
	if (rc == 0) {
		ck_assert_msg(rest_len == strlen(want_rest) &&
				  memcmp(rest, want_rest, rest_len) == 0,
			      "rest %.*s", (int)rest_len, rest);
		ck_assert_uint_eq(png_len, want_png_len);
		ck_assert_mem_eq(png, "\x89PNG\r\n\x1a\n", want_png_len < 8 ? want_png_len : 8);
	} else {
		ck_assert_ptr_null(png);
		ck_assert_ptr_null(rest);
		ck_assert_msg(strstr(err, "PNG") || strstr(err, "base64"), "%s", err);
	}
	free(png);
	free(rest);
}

START_TEST(cover_is_cut_out_byte_exact)
{
	/* Middle part, quoted and folded boundary, transport padding. */
	cover("Subject: s\r\nContent-Type: multipart/mixed;\r\n\tboundary=\"b 1\"\r\n\r\n"
	      "preamble\r\n--b 1\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
	      "--b 1  \r\nContent-Type: IMAGE/PNG; name=x.png\r\n"
	      "Content-Transfer-Encoding: BASE64\r\n\r\n" PNG_B64 "\r\n"
	      "--b 1\r\nContent-Type: application/pdf\r\n\r\n%PDF\r\n--b 1--\r\nepilogue\r\n",
	      0,
	      "Subject: s\r\nContent-Type: multipart/mixed;\r\n\tboundary=\"b 1\"\r\n\r\n"
	      "preamble\r\n--b 1\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
	      "--b 1\r\nContent-Type: application/pdf\r\n\r\n%PDF\r\n--b 1--\r\nepilogue\r\n",
	      8);
	/* Last part, token boundary, LF line ends, base64 over lines. */
	cover("Content-Type: multipart/mixed; boundary=zz\n\n--zz\n\nt\n--zz\n"
	      "Content-Type: image/png\nContent-Transfer-Encoding: base64\n\niVBO\nRw0K\nGgo=\n"
	      "--zz--\n",
	      0, "Content-Type: multipart/mixed; boundary=zz\n\n--zz\n\nt\n--zz--\n", 8);
	/* The first PNG wins; a boundary prefix inside a body is not a delimiter. */
	cover("Content-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\n\r\n--qx not one\r\n"
	      "--q\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\n"
	      "iVBORw==\r\n--q\r\nContent-Type: image/png\r\n\r\nsecond\r\n--q--\r\n",
	      0,
	      "Content-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\n\r\n--qx not one\r\n"
	      "--q\r\nContent-Type: image/png\r\n\r\nsecond\r\n--q--\r\n",
	      4);
}
END_TEST

START_TEST(no_cover_is_an_error)
{
	/* Not multipart. */
	cover("Content-Type: image/png\r\n\r\n" PNG_B64 "\r\n", -1, NULL, 0);
	cover("Subject: plain\r\n\r\ntext\r\n", -1, NULL, 0);
	/* Multipart without a PNG at the top level (only in a nested part). */
	cover("Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n"
	      "Content-Type: multipart/related; boundary=b\r\n\r\n--b\r\n"
	      "Content-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\n" PNG_B64
	      "\r\n--b--\r\n--a--\r\n",
	      -1, NULL, 0);
	/* After the close delimiter nothing counts. */
	cover("Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n\r\nx\r\n--a--\r\n"
	      "--a\r\nContent-Type: image/png\r\n\r\nnope\r\n",
	      -1, NULL, 0);
	/* Bad base64; a transfer encoding a picture cannot have. */
	cover(
	    "Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n"
	    "Content-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!\r\n--a--\r\n",
	    -1, NULL, 0);
	cover("Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n"
	      "Content-Type: image/png\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
	      "x\r\n--a--\r\n",
	      -1, NULL, 0);
	/* A boundary parameter that is missing or too long. */
	cover("Content-Type: multipart/mixed\r\n\r\n--a\r\nContent-Type: image/png\r\n\r\nx\r\n",
	      -1, NULL, 0);
}
END_TEST

static void put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

/* Appends a chunk to PNG at *LEN. */
static void chunk(unsigned char *png, size_t *len, const char *type, const void *data, size_t n)
{
	put32(png + *len, (uint32_t)n);
	memcpy(png + *len + 4, type, 4);
	memcpy(png + *len + 8, data, n);
	put32(png + *len + 8 + n, (uint32_t)crc32(0, png + *len + 4, (uInt)n + 4));
	*len += n + 12;
}

START_TEST(cover_check_names_the_size_needed)
{
	/* 8x8 RGB: 8 * 8 * 3 / 8 = 24 carrier bytes, none left after the overhead. */
	unsigned char png[512] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'}, ihdr[13] = {0};
	unsigned char raw[8 * 25] = {0}, z[256];
	uLongf zlen = sizeof(z);
	size_t len = 8;
	char err[240] = "";

	put32(ihdr, 8);
	put32(ihdr + 4, 8);
	ihdr[8] = 8;
	ihdr[9] = 2;
	ck_assert_int_eq(compress(z, &zlen, raw, sizeof(raw)), Z_OK);
	chunk(png, &len, "IHDR", ihdr, sizeof(ihdr));
	chunk(png, &len, "IDAT", z, zlen);
	chunk(png, &len, "IEND", "", 0);
	ck_assert_int_eq(stego_rewrite_check_cover(png, len, 0, STEGO_PASSWORD, err, sizeof(err)),
			 -1);
	ck_assert_int_eq(stego_rewrite_check_cover(png, len, 100, STEGO_PASSWORD, err, sizeof(err)),
			 -1);
	/* (100 + 44) * 8 bits over 3 colour samples per pixel. */
	ck_assert_msg(strstr(err, "too small") && strstr(err, "holds 0 bytes") &&
			  strstr(err, "needs 100") && strstr(err, "at least 384 pixels"),
		      "%s", err);
	ck_assert_int_eq(
	    stego_rewrite_check_cover(U("GIF89a"), 6, 1, STEGO_PASSWORD, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "cannot be used as the cover"));
}
END_TEST

static Suite *rewrite_suite(void)
{
	Suite *s = suite_create("stego_rewrite");
	TCase *tc = tcase_create("parse");

	tcase_add_test(tc, request_values);
	tcase_add_test(tc, password_field_is_taken_out);
	tcase_add_test(tc, cover_is_cut_out_byte_exact);
	tcase_add_test(tc, no_cover_is_an_error);
	tcase_add_test(tc, cover_check_names_the_size_needed);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(rewrite_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
