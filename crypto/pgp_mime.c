/*
 * pgp_mime.c - PGP/MIME, inline PGP and S/MIME on whole messages (see
 * pgp_mime.h). GMime parses the structure and re-encodes the entity before
 * signing; the signed bytes themselves are assembled and cut out here, byte
 * for byte, because a signature covers exact octets (RFC 3156 5, RFC 8551
 * 3.1.1) and a re-serialisation by a MIME library may not reproduce them.
 */
#include <config.h>

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gmime/gmime.h>
#include <sodium.h>

#include "crypto/pgp_mime.h"

/* Base64 lines in S/MIME parts and the Autocrypt header (RFC 2045: at most 76). */
#define B64_LINE 76
/* Signatures and keys we read from a message are small; refuse giants. */
#define SIG_PART_MAX (1024 * 1024)

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void init_libs(void)
{
	g_mime_init();
	gpgme_check_version(NULL);
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* ---- a growing byte buffer ---- */

struct buf {
	unsigned char *p;
	size_t len, cap;
	bool failed;
};

static void buf_add(struct buf *b, const void *data, size_t n)
{
	if (b->failed || n == 0)
		return;
	if (n > SIZE_MAX - b->len - 1) {
		b->failed = true;
		return;
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		unsigned char *p;

		while (cap < b->len + n + 1)
			cap = cap > SIZE_MAX / 2 ? b->len + n + 1 : cap * 2;
		p = malloc(cap);
		if (!p) {
			b->failed = true;
			return;
		}
		if (b->len)
			memcpy(p, b->p, b->len);
		if (b->p) {
			sodium_memzero(b->p, b->len);
			free(b->p);
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void buf_str(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

/* Appends DATA with every bare LF turned into CRLF (and a lone CR kept). */
static void buf_add_crlf(struct buf *b, const unsigned char *data, size_t n)
{
	size_t i, start = 0;

	for (i = 0; i < n; i++) {
		if (data[i] == '\n' && (i == 0 || data[i - 1] != '\r')) {
			buf_add(b, data + start, i - start);
			buf_add(b, "\r\n", 2);
			start = i + 1;
		}
	}
	buf_add(b, data + start, n - start);
}

static void buf_free(struct buf *b)
{
	if (b->p) {
		sodium_memzero(b->p, b->len);
		free(b->p);
	}
	memset(b, 0, sizeof(*b));
}

/* Hands B's bytes to the caller; -1 (and frees) when an append failed. */
static int buf_take(struct buf *b, unsigned char **out, size_t *out_len, char *err, size_t errlen)
{
	if (b->failed || !b->p) {
		buf_free(b);
		set_err(err, errlen, "out of memory");
		return -1;
	}
	*out = b->p;
	*out_len = b->len;
	memset(b, 0, sizeof(*b));
	return 0;
}

/* Base64 of DATA in lines of B64_LINE, each ended by CRLF. */
static void buf_base64(struct buf *b, const unsigned char *data, size_t n)
{
	/* B64_LINE characters encode 57 bytes. */
	const size_t chunk = B64_LINE / 4 * 3;
	char line[B64_LINE + 1];

	for (size_t off = 0; off < n; off += chunk) {
		size_t take = n - off < chunk ? n - off : chunk;

		sodium_bin2base64(line, sizeof(line), data + off, take,
				  sodium_base64_VARIANT_ORIGINAL);
		buf_str(b, line);
		buf_add(b, "\r\n", 2);
	}
}

/* Random MIME boundary; "=_" never occurs in base64 or quoted-printable text. */
static void make_boundary(char out[48])
{
	unsigned char r[12];
	char hex[25];

	randombytes_buf(r, sizeof(r));
	sodium_bin2hex(hex, sizeof(hex), r, sizeof(r));
	snprintf(out, 48, "=_postern_%s", hex);
}

/* PRE, "--", BOUNDARY and POST into B: a boundary delimiter line (RFC 2046 5.1.1). */
static void buf_delimiter(struct buf *b, const char *pre, const char *boundary, const char *post)
{
	buf_str(b, pre);
	buf_str(b, "--");
	buf_str(b, boundary);
	buf_str(b, post);
}

/* ---- header fields on raw bytes ---- */

const char *pgp_sig_status_name(enum pgp_sig_status s)
{
	switch (s) {
	case PGP_SIG_VALID:
		return "valid";
	case PGP_SIG_BAD:
		return "bad";
	case PGP_SIG_UNKNOWN_KEY:
		return "unknown-key";
	case PGP_SIG_EXPIRED:
		return "expired";
	case PGP_SIG_ERROR:
		return "error";
	case PGP_SIG_NONE:
	default:
		return "none";
	}
}

const char *pgp_mime_kind_name(enum pgp_mime_kind k)
{
	switch (k) {
	case PGP_KIND_PGPMIME:
		return "pgp-mime";
	case PGP_KIND_INLINE:
		return "inline-pgp";
	case PGP_KIND_SMIME:
		return "smime";
	case PGP_KIND_NONE:
	default:
		return "none";
	}
}

gpgme_protocol_t pgp_mime_kind_protocol(enum pgp_mime_kind k)
{
	return k == PGP_KIND_SMIME ? GPGME_PROTOCOL_CMS : GPGME_PROTOCOL_OpenPGP;
}

/* End of the line starting at I (index after its LF, or LEN). */
static size_t line_end(const unsigned char *msg, size_t len, size_t i)
{
	while (i < len && msg[i] != '\n')
		i++;
	return i < len ? i + 1 : len;
}

static bool blank_line(const unsigned char *msg, size_t len, size_t i)
{
	return (i < len && msg[i] == '\n') || (i + 1 < len && msg[i] == '\r' && msg[i + 1] == '\n');
}

size_t pgp_mime_header_length(const unsigned char *msg, size_t len)
{
	size_t i = 0;

	while (i < len) {
		if (blank_line(msg, len, i))
			return line_end(msg, len, i);
		i = line_end(msg, len, i);
	}
	return len;
}

/* The field starting at I: its end (after continuation lines). */
static size_t field_end(const unsigned char *msg, size_t hlen, size_t i)
{
	i = line_end(msg, hlen, i);
	while (i < hlen && (msg[i] == ' ' || msg[i] == '\t'))
		i = line_end(msg, hlen, i);
	return i;
}

static bool field_is(const unsigned char *msg, size_t start, size_t end, const char *name)
{
	size_t n = strlen(name);

	return end - start > n && strncasecmp((const char *)msg + start, name, n) == 0 &&
	       msg[start + n] == ':';
}

/* Content-* and MIME-Version: the fields that belong to the entity. */
static bool field_is_mime(const unsigned char *msg, size_t start, size_t end)
{
	return (end - start > 8 && strncasecmp((const char *)msg + start, "Content-", 8) == 0) ||
	       field_is(msg, start, end, "MIME-Version");
}

size_t pgp_mime_header_remove(unsigned char *msg, size_t len, const char *name)
{
	size_t hlen = pgp_mime_header_length(msg, len), i = 0;

	while (i < hlen && !blank_line(msg, hlen, i)) {
		size_t end = field_end(msg, hlen, i);

		if (field_is(msg, i, end, name)) {
			/* Wipe first: the field may hold a password. */
			sodium_memzero(msg + i, end - i);
			memmove(msg + i, msg + end, len - end);
			len -= end - i;
			hlen -= end - i;
			continue;
		}
		i = end;
	}
	return len;
}

int pgp_mime_header_get(const unsigned char *msg, size_t len, const char *name, char *out,
			size_t outlen)
{
	size_t hlen = pgp_mime_header_length(msg, len), i = 0, n = strlen(name);

	if (outlen == 0)
		return 0;
	out[0] = '\0';
	while (i < hlen && !blank_line(msg, hlen, i)) {
		size_t end = field_end(msg, hlen, i), o = 0, k;

		if (!field_is(msg, i, end, name)) {
			i = end;
			continue;
		}
		/* RFC 5322 2.2.3: unfolding removes the CRLFs, the whitespace stays. */
		for (k = i + n + 1; k < end; k++) {
			unsigned char c = msg[k];

			if (c == '\r' || c == '\n' || ((c == ' ' || c == '\t') && o == 0))
				continue;
			if (o + 1 < outlen)
				out[o++] = (char)c;
		}
		while (o > 0 && (out[o - 1] == ' ' || out[o - 1] == '\t'))
			o--;
		out[o] = '\0';
		return 1;
	}
	return 0;
}

void pgp_mime_decode_words(char *text, size_t size)
{
	char *dec;

	if (!strstr(text, "=?"))
		return;
	pthread_once(&init_once, init_libs);
	dec = g_mime_utils_header_decode_text(NULL, text);
	if (dec) {
		snprintf(text, size, "%s", dec);
		sodium_memzero(dec, strlen(dec));
		g_free(dec);
	}
}

/*
 * Splits MSG into the outer header (fields that are not MIME fields, as
 * they are) and the entity (MIME fields, then the body), each CRLF.
 * A message without Content-Type gets the RFC 2045 default written out.
 */
static void split_message(const unsigned char *msg, size_t len, struct buf *outer,
			  struct buf *entity)
{
	size_t hlen = pgp_mime_header_length(msg, len), i = 0;
	bool has_type = false;

	while (i < hlen && !blank_line(msg, hlen, i)) {
		size_t end = field_end(msg, hlen, i);

		if (field_is_mime(msg, i, end)) {
			if (!field_is(msg, i, end, "MIME-Version"))
				buf_add_crlf(entity, msg + i, end - i);
			has_type |= field_is(msg, i, end, "Content-Type");
		} else {
			buf_add_crlf(outer, msg + i, end - i);
		}
		i = end;
	}
	if (outer->len && outer->p[outer->len - 1] != '\n')
		buf_add(outer, "\r\n", 2);
	if (entity->len && entity->p[entity->len - 1] != '\n')
		buf_add(entity, "\r\n", 2);
	if (!has_type) {
		bool eight = false;

		for (size_t k = hlen; k < len && !eight; k++)
			eight = msg[k] >= 0x80;
		buf_str(entity, eight ? "Content-Type: text/plain; charset=utf-8\r\n"
				      : "Content-Type: text/plain; charset=us-ascii\r\n");
	}
	buf_add(entity, "\r\n", 2);
	if (hlen < len)
		buf_add_crlf(entity, msg + hlen, len - hlen);
}

/* ---- GMime helpers ---- */

static GMimeObject *parse_entity(const unsigned char *data, size_t len)
{
	GMimeStream *s = g_mime_stream_mem_new_with_buffer((const char *)data, len);
	GMimeParser *p = g_mime_parser_new_with_stream(s);
	GMimeObject *obj = g_mime_parser_construct_part(p, NULL);

	g_object_unref(p);
	g_object_unref(s);
	return obj;
}

static GMimeMessage *parse_message(const unsigned char *data, size_t len)
{
	GMimeStream *s = g_mime_stream_mem_new_with_buffer((const char *)data, len);
	GMimeParser *p = g_mime_parser_new_with_stream(s);
	GMimeMessage *m = g_mime_parser_construct_message(p, NULL);

	g_object_unref(p);
	g_object_unref(s);
	return m;
}

/* OBJ written out with CRLF line ends into B. */
static void write_object_crlf(GMimeObject *obj, struct buf *b)
{
	GMimeStream *mem = g_mime_stream_mem_new();
	GMimeStream *filtered = g_mime_stream_filter_new(mem);
	GMimeFilter *f = g_mime_filter_unix2dos_new(FALSE);
	GByteArray *arr;

	g_mime_stream_filter_add(GMIME_STREAM_FILTER(filtered), f);
	g_object_unref(f);
	if (g_mime_object_write_to_stream(obj, NULL, filtered) < 0 ||
	    g_mime_stream_flush(filtered) < 0)
		b->failed = true;
	arr = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
	if (arr && !b->failed)
		buf_add(b, arr->data, arr->len);
	if (arr)
		sodium_memzero(arr->data, arr->len);
	g_object_unref(filtered);
	g_object_unref(mem);
}

/* The decoded content of a leaf part into B (bounded by MAX). */
static int part_content(GMimeObject *obj, struct buf *b, size_t max)
{
	GMimeDataWrapper *w;
	GMimeStream *mem;
	GByteArray *arr;
	int rc = -1;

	if (!obj || !GMIME_IS_PART(obj))
		return -1;
	w = g_mime_part_get_content(GMIME_PART(obj));
	if (!w)
		return -1;
	mem = g_mime_stream_mem_new();
	if (g_mime_data_wrapper_write_to_stream(w, mem) >= 0) {
		arr = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
		if (arr && arr->len <= max) {
			buf_add(b, arr->data, arr->len);
			rc = b->failed ? -1 : 0;
		}
		if (arr)
			sodium_memzero(arr->data, arr->len);
	}
	g_object_unref(mem);
	return rc;
}

static bool type_is(GMimeObject *obj, const char *type, const char *subtype)
{
	GMimeContentType *ct = obj ? g_mime_object_get_content_type(obj) : NULL;

	return ct && g_mime_content_type_is_type(ct, type, subtype);
}

static const char *type_param(GMimeObject *obj, const char *name)
{
	GMimeContentType *ct = obj ? g_mime_object_get_content_type(obj) : NULL;

	return ct ? g_mime_content_type_get_parameter(ct, name) : NULL;
}

/* ---- GPGME helpers ---- */

static gpgme_data_t data_from(const void *p, size_t n)
{
	gpgme_data_t d = NULL;

	if (gpgme_data_new_from_mem(&d, p ? (const char *)p : "", p ? n : 0, 0) != 0)
		return NULL;
	return d;
}

/* Takes D's bytes into B and releases D. */
static void data_take(gpgme_data_t d, struct buf *b, bool crlf)
{
	size_t n = 0;
	char *p = gpgme_data_release_and_get_mem(d, &n);

	if (!p) {
		b->failed = true;
		return;
	}
	if (crlf)
		buf_add_crlf(b, (unsigned char *)p, n);
	else
		buf_add(b, p, n);
	sodium_memzero(p, n);
	gpgme_free(p);
}

/*
 * IN over the N bytes at P and an empty OUT for one GPGME operation; -1
 * with neither and "out of memory" in ERR when one cannot be made.
 */
static int data_pair(const void *p, size_t n, gpgme_data_t *in, gpgme_data_t *out, char *err,
		     size_t errlen)
{
	*out = NULL;
	*in = data_from(p, n);
	if (*in && gpgme_data_new(out) == 0)
		return 0;
	if (*in)
		gpgme_data_release(*in);
	*in = NULL;
	*out = NULL;
	set_err(err, errlen, "out of memory");
	return -1;
}

/* CTX writes ARMOR or binary output, takes its input as binary and has no signers yet. */
static void output_mode(gpgme_ctx_t ctx, bool armor)
{
	gpgme_set_armor(ctx, armor);
	gpgme_set_textmode(ctx, 0);
	gpgme_signers_clear(ctx);
}

static void gpg_err_text(const char *what, gpgme_error_t e, char *err, size_t errlen)
{
	set_err(err, errlen, "%s: %s", what, gpgme_strerror(e));
}

/* "pgp-sha256" (RFC 3156 5) or "sha-256" (RFC 5751 3.4.3.2) for ALGO. */
static int micalg_name(gpgme_protocol_t proto, gpgme_hash_algo_t algo, char *out, size_t outlen)
{
	const char *name = gpgme_hash_algo_name(algo);
	size_t o = 0;

	if (!name)
		return -1;
	if (proto == GPGME_PROTOCOL_CMS) {
		/* SHA256 -> sha-256, SHA1 -> sha-1 */
		for (size_t i = 0; name[i] && o + 2 < outlen; i++) {
			if (i > 0 && name[i] >= '0' && name[i] <= '9' &&
			    !(name[i - 1] >= '0' && name[i - 1] <= '9') && name[i - 1] != '-')
				out[o++] = '-';
			out[o++] =
			    (char)((name[i] >= 'A' && name[i] <= 'Z') ? name[i] + 32 : name[i]);
		}
		out[o] = '\0';
		return 0;
	}
	snprintf(out, outlen, "pgp-%s", name);
	for (char *c = out; *c; c++)
		if (*c >= 'A' && *c <= 'Z')
			*c = (char)(*c + 32);
	return 0;
}

/* Detached signature of DATA into SIG (armored for OpenPGP, DER for CMS). */
static int detach_sign(gpgme_ctx_t ctx, gpgme_key_t signer, const unsigned char *data, size_t n,
		       struct buf *sig, char micalg[32], char *err, size_t errlen)
{
	gpgme_protocol_t proto = gpgme_get_protocol(ctx);
	gpgme_data_t in, out;
	gpgme_sign_result_t sr;
	gpgme_error_t e;

	if (data_pair(data, n, &in, &out, err, errlen) != 0)
		return -1;
	output_mode(ctx, proto == GPGME_PROTOCOL_OpenPGP);
	e = gpgme_signers_add(ctx, signer);
	if (!e)
		e = gpgme_op_sign(ctx, in, out, GPGME_SIG_MODE_DETACH);
	gpgme_data_release(in);
	sr = e ? NULL : gpgme_op_sign_result(ctx);
	gpgme_signers_clear(ctx);
	if (e || !sr || !sr->signatures || sr->invalid_signers) {
		gpgme_data_release(out);
		gpg_err_text("signing failed", e ? e : gpg_error(GPG_ERR_UNUSABLE_SECKEY), err,
			     errlen);
		return -1;
	}
	if (micalg_name(proto, sr->signatures->hash_algo, micalg, 32) != 0) {
		gpgme_data_release(out);
		set_err(err, errlen, "signing failed: unknown hash algorithm");
		return -1;
	}
	data_take(out, sig, proto == GPGME_PROTOCOL_OpenPGP);
	return sig->failed ? -1 : 0;
}

/*
 * The multipart/signed entity (Content-Type header, blank line, body) of
 * the prepared ENTITY into OUT.
 */
static int signed_entity(gpgme_ctx_t ctx, gpgme_key_t signer, const struct buf *entity,
			 struct buf *out, char *err, size_t errlen)
{
	bool cms = gpgme_get_protocol(ctx) == GPGME_PROTOCOL_CMS;
	struct buf sig = {0};
	char boundary[48], micalg[32], line[256];

	if (detach_sign(ctx, signer, entity->p, entity->len, &sig, micalg, err, errlen) != 0) {
		buf_free(&sig);
		return -1;
	}
	make_boundary(boundary);
	snprintf(line, sizeof(line),
		 "Content-Type: multipart/signed; boundary=\"%s\";\r\n\tprotocol=\"%s\"; "
		 "micalg=%s\r\n\r\n",
		 boundary, cms ? "application/pkcs7-signature" : "application/pgp-signature",
		 micalg);
	buf_str(out, line);
	buf_str(out, cms ? "This is a cryptographically signed message in MIME format.\r\n\r\n"
			 : "This is an OpenPGP/MIME signed message (RFC 4880 and 3156)\r\n\r\n");
	buf_delimiter(out, "", boundary, "\r\n");
	buf_add(out, entity->p, entity->len);
	buf_delimiter(out, "\r\n", boundary, "\r\n");
	if (cms) {
		buf_str(out, "Content-Type: application/pkcs7-signature; name=\"smime.p7s\"\r\n"
			     "Content-Transfer-Encoding: base64\r\n"
			     "Content-Disposition: attachment; filename=\"smime.p7s\"\r\n"
			     "Content-Description: S/MIME Cryptographic Signature\r\n\r\n");
		buf_base64(out, sig.p, sig.len);
	} else {
		buf_str(out, "Content-Type: application/pgp-signature; name=\"signature.asc\"\r\n"
			     "Content-Description: OpenPGP digital signature\r\n"
			     "Content-Disposition: attachment; filename=\"signature.asc\"\r\n\r\n");
		buf_add(out, sig.p, sig.len);
		if (sig.len && sig.p[sig.len - 1] != '\n')
			buf_add(out, "\r\n", 2);
	}
	buf_delimiter(out, "", boundary, "--\r\n");
	buf_free(&sig);
	return out->failed ? -1 : 0;
}

/*
 * RFC 3156 3 / RFC 8551 3.1.3: what is signed must survive transport
 * unchanged, and trailing whitespace or a line starting with "From " may
 * not. Like GMime's own signing, every leaf that is not base64 becomes
 * quoted-printable (which protects both); parts already signed or
 * encrypted are left alone.
 */
static void sign_prepare(GMimeObject *obj)
{
	if (GMIME_IS_MULTIPART_SIGNED(obj) || GMIME_IS_MULTIPART_ENCRYPTED(obj))
		return;
	if (GMIME_IS_MULTIPART(obj)) {
		int n = g_mime_multipart_get_count(GMIME_MULTIPART(obj));

		for (int i = 0; i < n; i++)
			sign_prepare(g_mime_multipart_get_part(GMIME_MULTIPART(obj), i));
	} else if (GMIME_IS_MESSAGE_PART(obj)) {
		GMimeMessage *m = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));

		if (m && g_mime_message_get_mime_part(m))
			sign_prepare(g_mime_message_get_mime_part(m));
	} else if (GMIME_IS_PART(obj) && g_mime_part_get_content_encoding(GMIME_PART(obj)) !=
					     GMIME_CONTENT_ENCODING_BASE64) {
		g_mime_part_set_content_encoding(GMIME_PART(obj),
						 GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE);
	}
}

/*
 * The entity of MSG prepared for signing: parsed by GMime, every part
 * re-encoded so that it is 7-bit safe and survives transport (RFC 3156 3:
 * base64 or quoted-printable), written with CRLF line ends.
 */
static int prepare_entity(const unsigned char *msg, size_t len, bool seven_bit, struct buf *outer,
			  struct buf *entity, char *err, size_t errlen)
{
	struct buf raw = {0};
	GMimeObject *obj;

	pthread_once(&init_once, init_libs);
	split_message(msg, len, outer, &raw);
	if (raw.failed || outer->failed) {
		buf_free(&raw);
		set_err(err, errlen, "out of memory");
		return -1;
	}
	obj = parse_entity(raw.p, raw.len);
	if (!obj) {
		buf_free(&raw);
		set_err(err, errlen, "the message's MIME structure cannot be parsed");
		return -1;
	}
	if (seven_bit) {
		g_mime_object_encode(obj, GMIME_ENCODING_CONSTRAINT_7BIT);
		sign_prepare(obj);
	}
	write_object_crlf(obj, entity);
	g_object_unref(obj);
	buf_free(&raw);
	if (entity->failed) {
		set_err(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

int pgp_mime_sign(gpgme_ctx_t ctx, gpgme_key_t signer, const unsigned char *msg, size_t len,
		  unsigned char **out, size_t *out_len, char *err, size_t errlen)
{
	struct buf outer = {0}, entity = {0}, res = {0};
	int rc = -1;

	if (prepare_entity(msg, len, true, &outer, &entity, err, errlen) != 0)
		goto out;
	buf_add(&res, outer.p, outer.len);
	buf_str(&res, "MIME-Version: 1.0\r\n");
	if (signed_entity(ctx, signer, &entity, &res, err, errlen) != 0)
		goto out;
	rc = buf_take(&res, out, out_len, err, errlen);
out:
	buf_free(&outer);
	buf_free(&entity);
	buf_free(&res);
	return rc;
}

int pgp_mime_encrypt(gpgme_ctx_t ctx, gpgme_key_t *recipients, gpgme_key_t signer,
		     const unsigned char *msg, size_t len, unsigned char **out, size_t *out_len,
		     char *err, size_t errlen)
{
	gpgme_protocol_t proto = gpgme_get_protocol(ctx);
	bool cms = proto == GPGME_PROTOCOL_CMS;
	struct buf outer = {0}, entity = {0}, plain = {0}, cipher = {0}, res = {0};
	gpgme_data_t in = NULL, enc = NULL;
	gpgme_encrypt_result_t er;
	gpgme_error_t e;
	char boundary[48], line[160];
	int rc = -1;

	if (!recipients || !recipients[0]) {
		set_err(err, errlen, "no recipients to encrypt to");
		return -1;
	}
	/* Signed before enveloping (S/MIME) or in one step (OpenPGP). */
	if (prepare_entity(msg, len, signer != NULL, &outer, &entity, err, errlen) != 0)
		goto out;
	if (cms && signer) {
		if (signed_entity(ctx, signer, &entity, &plain, err, errlen) != 0)
			goto out;
	} else {
		buf_add(&plain, entity.p, entity.len);
	}
	if (plain.failed) {
		set_err(err, errlen, "out of memory");
		goto out;
	}
	if (data_pair(plain.p, plain.len, &in, &enc, err, errlen) != 0)
		goto out;
	output_mode(ctx, !cms);
	if (!cms && signer) {
		e = gpgme_signers_add(ctx, signer);
		if (!e)
			e = gpgme_op_encrypt_sign(ctx, recipients, GPGME_ENCRYPT_ALWAYS_TRUST, in,
						  enc);
	} else {
		e = gpgme_op_encrypt(ctx, recipients, cms ? 0 : GPGME_ENCRYPT_ALWAYS_TRUST, in,
				     enc);
	}
	gpgme_signers_clear(ctx);
	er = e ? NULL : gpgme_op_encrypt_result(ctx);
	if (e || (er && er->invalid_recipients)) {
		if (!e && er->invalid_recipients)
			set_err(err, errlen, "encryption failed: key %s unusable (%s)",
				er->invalid_recipients->fpr ? er->invalid_recipients->fpr : "?",
				gpgme_strerror(er->invalid_recipients->reason));
		else
			gpg_err_text("encryption failed", e, err, errlen);
		goto out;
	}
	data_take(enc, &cipher, !cms);
	enc = NULL;
	if (cipher.failed) {
		set_err(err, errlen, "out of memory");
		goto out;
	}
	buf_add(&res, outer.p, outer.len);
	buf_str(&res, "MIME-Version: 1.0\r\n");
	if (cms) {
		buf_str(&res, "Content-Type: application/pkcs7-mime; smime-type=enveloped-data;\r\n"
			      "\tname=\"smime.p7m\"\r\n"
			      "Content-Transfer-Encoding: base64\r\n"
			      "Content-Disposition: attachment; filename=\"smime.p7m\"\r\n"
			      "Content-Description: S/MIME Encrypted Message\r\n\r\n");
		buf_base64(&res, cipher.p, cipher.len);
	} else {
		make_boundary(boundary);
		snprintf(line, sizeof(line),
			 "Content-Type: multipart/encrypted; boundary=\"%s\";\r\n"
			 "\tprotocol=\"application/pgp-encrypted\"\r\n\r\n",
			 boundary);
		buf_str(&res, line);
		buf_str(&res, "This is an OpenPGP/MIME encrypted message (RFC 4880 and 3156)\r\n");
		buf_delimiter(&res, "", boundary, "\r\n");
		buf_str(&res, "Content-Type: application/pgp-encrypted\r\n"
			      "Content-Description: PGP/MIME version identification\r\n\r\n"
			      "Version: 1\r\n\r\n");
		buf_delimiter(&res, "", boundary, "\r\n");
		buf_str(&res, "Content-Type: application/octet-stream; name=\"encrypted.asc\"\r\n"
			      "Content-Description: OpenPGP encrypted message\r\n"
			      "Content-Disposition: inline; filename=\"encrypted.asc\"\r\n\r\n");
		buf_add(&res, cipher.p, cipher.len);
		buf_delimiter(&res, "\r\n", boundary, "--\r\n");
	}
	rc = buf_take(&res, out, out_len, err, errlen);
out:
	if (in)
		gpgme_data_release(in);
	if (enc)
		gpgme_data_release(enc);
	buf_free(&outer);
	buf_free(&entity);
	buf_free(&plain);
	buf_free(&cipher);
	buf_free(&res);
	return rc;
}

/* ---- verification ---- */

static bool is_smime_mime(GMimeObject *obj)
{
	return type_is(obj, "application", "pkcs7-mime") ||
	       type_is(obj, "application", "x-pkcs7-mime");
}

static bool is_smime_sig_type(const char *t)
{
	return t && (strcasecmp(t, "application/pkcs7-signature") == 0 ||
		     strcasecmp(t, "application/x-pkcs7-signature") == 0);
}

/* The smime-type of an application/pkcs7-mime part ("enveloped-data" when not said). */
static const char *smime_type(GMimeObject *obj)
{
	const char *t = type_param(obj, "smime-type");

	return t ? t : "enveloped-data";
}

struct inline_find {
	GMimeObject *part;
};

static bool has_clearsign(GMimeObject *part)
{
	struct buf b = {0};
	bool found = false;

	if (!GMIME_IS_TEXT_PART(part) || part_content(part, &b, SIZE_MAX / 2) != 0) {
		buf_free(&b);
		return false;
	}
	found = b.p && memmem(b.p, b.len, "-----BEGIN PGP SIGNED MESSAGE-----", 34) != NULL;
	buf_free(&b);
	return found;
}

static void find_inline(GMimeObject *parent, GMimeObject *part, gpointer data)
{
	struct inline_find *f = data;

	(void)parent;
	if (!f->part && has_clearsign(part))
		f->part = part;
}

static GMimeObject *inline_signed_part(GMimeMessage *m)
{
	struct inline_find f = {NULL};
	GMimeObject *top = g_mime_message_get_mime_part(m);

	if (top && !GMIME_IS_MULTIPART(top))
		return has_clearsign(top) ? top : NULL;
	g_mime_message_foreach(m, find_inline, &f);
	return f.part;
}

static void inspect_message(GMimeMessage *m, struct pgp_mime_info *info)
{
	GMimeObject *top = m ? g_mime_message_get_mime_part(m) : NULL;
	const char *proto;

	memset(info, 0, sizeof(*info));
	if (!top)
		return;
	if (type_is(top, "multipart", "signed")) {
		proto = type_param(top, "protocol");
		info->signed_kind = is_smime_sig_type(proto) ? PGP_KIND_SMIME : PGP_KIND_PGPMIME;
		return;
	}
	if (type_is(top, "multipart", "encrypted")) {
		info->encrypted_kind = PGP_KIND_PGPMIME;
		return;
	}
	if (is_smime_mime(top)) {
		if (strcasecmp(smime_type(top), "signed-data") == 0)
			info->signed_kind = PGP_KIND_SMIME;
		else if (strcasecmp(smime_type(top), "enveloped-data") == 0 ||
			 strcasecmp(smime_type(top), "authEnveloped-data") == 0)
			info->encrypted_kind = PGP_KIND_SMIME;
		return;
	}
	if (inline_signed_part(m))
		info->signed_kind = PGP_KIND_INLINE;
}

void pgp_mime_inspect(const unsigned char *msg, size_t len, struct pgp_mime_info *info)
{
	GMimeMessage *m;

	pthread_once(&init_once, init_libs);
	m = parse_message(msg, len);
	inspect_message(m, info);
	if (m)
		g_object_unref(m);
}

/* Whether BODY[I..] starts with the delimiter line "--BOUNDARY" (then "--", blanks, CRLF). */
static bool delimiter_at(const unsigned char *body, size_t len, size_t i, const char *boundary,
			 size_t blen)
{
	size_t k;

	if (i + 2 + blen > len || body[i] != '-' || body[i + 1] != '-' ||
	    memcmp(body + i + 2, boundary, blen) != 0)
		return false;
	k = i + 2 + blen;
	return k == len || body[k] == '\r' || body[k] == '\n' || body[k] == ' ' ||
	       body[k] == '\t' || body[k] == '-';
}

/*
 * The first body part of the multipart whose body is BODY, exactly as
 * sent (RFC 2046 5.1.1: the CRLF before a delimiter belongs to it), in
 * canonical CRLF form.
 */
static int first_part_raw(const unsigned char *body, size_t len, const char *boundary,
			  struct buf *out)
{
	size_t blen = strlen(boundary), i = 0, start = 0, end;

	if (blen == 0 || blen > 200)
		return -1;
	for (;;) {
		if (i >= len)
			return -1;
		if (delimiter_at(body, len, i, boundary, blen)) {
			start = line_end(body, len, i);
			break;
		}
		i = line_end(body, len, i);
	}
	for (i = start; i < len; i = line_end(body, len, i)) {
		if (!delimiter_at(body, len, i, boundary, blen))
			continue;
		end = i;
		if (end > start && body[end - 1] == '\n')
			end--;
		if (end > start && body[end - 1] == '\r')
			end--;
		buf_add_crlf(out, body + start, end - start);
		return out->failed ? -1 : 0;
	}
	return -1;
}

/* The address in a user id ("Name <a@b>", "<a@b>" or a bare address). */
static void uid_address(const char *uid, char *out, size_t outlen)
{
	const char *lt = strrchr(uid, '<'), *gt = lt ? strchr(lt, '>') : NULL;

	if (lt && gt && gt > lt + 1)
		snprintf(out, outlen, "%.*s", (int)(gt - lt - 1), lt + 1);
	else
		snprintf(out, outlen, "%s", uid);
}

static void signer_of(gpgme_ctx_t ctx, const char *fpr, struct pgp_verify_result *res)
{
	gpgme_key_t key = NULL;

	snprintf(res->fingerprint, sizeof(res->fingerprint), "%s", fpr ? fpr : "");
	if (!fpr || !*fpr || gpgme_get_key(ctx, fpr, &key, 0) != 0 || !key)
		return;
	for (gpgme_user_id_t u = key->uids; u; u = u->next) {
		if (u->email && *u->email) {
			uid_address(u->email, res->signer, sizeof(res->signer));
			break;
		}
		if (!res->signer[0] && u->uid)
			uid_address(u->uid, res->signer, sizeof(res->signer));
	}
	gpgme_key_unref(key);
}

/* Sets RES from the first signature of the last verify operation on CTX. */
static void verify_outcome(gpgme_ctx_t ctx, gpgme_error_t e, struct pgp_verify_result *res)
{
	gpgme_verify_result_t vr = e ? NULL : gpgme_op_verify_result(ctx);
	gpgme_signature_t s = vr ? vr->signatures : NULL;
	gpgme_err_code_t code;

	if (e || !s) {
		res->status = PGP_SIG_ERROR;
		snprintf(res->detail, sizeof(res->detail), "the signature cannot be read: %s",
			 e ? gpgme_strerror(e) : "no signature data");
		return;
	}
	code = gpgme_err_code(s->status);
	signer_of(ctx, s->fpr, res);
	if (code == GPG_ERR_NO_PUBKEY || (s->summary & GPGME_SIGSUM_KEY_MISSING)) {
		res->status = PGP_SIG_UNKNOWN_KEY;
		snprintf(res->detail, sizeof(res->detail), "no public key for %s",
			 s->fpr ? s->fpr : "the signer");
	} else if (code == GPG_ERR_BAD_SIGNATURE) {
		res->status = PGP_SIG_BAD;
		snprintf(res->detail, sizeof(res->detail), "%s",
			 "the signature does not match the content");
	} else if ((s->summary & GPGME_SIGSUM_KEY_REVOKED) || code == GPG_ERR_CERT_REVOKED) {
		res->status = PGP_SIG_BAD;
		snprintf(res->detail, sizeof(res->detail), "%s", "the key was revoked");
	} else if ((s->summary & (GPGME_SIGSUM_KEY_EXPIRED | GPGME_SIGSUM_SIG_EXPIRED)) ||
		   code == GPG_ERR_SIG_EXPIRED || code == GPG_ERR_KEY_EXPIRED ||
		   code == GPG_ERR_CERT_EXPIRED) {
		res->status = PGP_SIG_EXPIRED;
		snprintf(res->detail, sizeof(res->detail), "%s",
			 (s->summary & GPGME_SIGSUM_SIG_EXPIRED) || code == GPG_ERR_SIG_EXPIRED
			     ? "the signature expired"
			     : "the key or certificate expired");
	} else if (code == GPG_ERR_NO_ERROR && gpgme_get_protocol(ctx) == GPGME_PROTOCOL_CMS &&
		   !(s->summary & GPGME_SIGSUM_VALID)) {
		/* The math is right, but no trusted chain leads to the certificate. */
		res->status = PGP_SIG_UNKNOWN_KEY;
		snprintf(res->detail, sizeof(res->detail), "the certificate is not trusted: %s",
			 gpgme_strerror(s->validity_reason ? s->validity_reason
							   : gpg_error(GPG_ERR_NOT_TRUSTED)));
	} else if (code == GPG_ERR_NO_ERROR) {
		res->status = PGP_SIG_VALID;
	} else {
		res->status = PGP_SIG_ERROR;
		snprintf(res->detail, sizeof(res->detail), "verification failed: %s",
			 gpgme_strerror(s->status));
	}
}

static void verify_detached(gpgme_ctx_t ctx, const struct buf *content, const struct buf *sig,
			    struct pgp_verify_result *res)
{
	gpgme_data_t d_sig = data_from(sig->p, sig->len),
		     d_text = data_from(content->p, content->len);
	gpgme_error_t e = gpg_error(GPG_ERR_ENOMEM);

	if (d_sig && d_text)
		e = gpgme_op_verify(ctx, d_sig, d_text, NULL);
	if (d_sig)
		gpgme_data_release(d_sig);
	if (d_text)
		gpgme_data_release(d_text);
	verify_outcome(ctx, e, res);
}

/* multipart/signed: content cut from the raw bytes, signature decoded by GMime. */
static void verify_multipart_signed(gpgme_ctx_t ctx, GMimeObject *top, const unsigned char *msg,
				    size_t len, struct pgp_verify_result *res)
{
	const char *boundary = type_param(top, "boundary"), *micalg = type_param(top, "micalg");
	size_t hlen = pgp_mime_header_length(msg, len);
	struct buf content = {0}, sig = {0};
	GMimeObject *sig_part = NULL;

	if (GMIME_IS_MULTIPART(top) && g_mime_multipart_get_count(GMIME_MULTIPART(top)) == 2)
		sig_part = g_mime_multipart_get_part(GMIME_MULTIPART(top), 1);
	if (!boundary || first_part_raw(msg + hlen, len - hlen, boundary, &content) != 0 ||
	    !sig_part || part_content(sig_part, &sig, SIG_PART_MAX) != 0 || sig.len == 0) {
		res->status = PGP_SIG_ERROR;
		snprintf(res->detail, sizeof(res->detail), "%s",
			 "malformed multipart/signed (RFC 1847: content and signature parts)");
		goto out;
	}
	verify_detached(ctx, &content, &sig, res);
	/* RFC 3156 5 / RFC 8551 3.5.3: micalg must name the hash actually used. */
	if (res->status == PGP_SIG_VALID || res->status == PGP_SIG_EXPIRED) {
		gpgme_verify_result_t vr = gpgme_op_verify_result(ctx);
		char want[32];

		if (vr && vr->signatures &&
		    micalg_name(gpgme_get_protocol(ctx), vr->signatures->hash_algo, want,
				sizeof(want)) == 0 &&
		    (!micalg || strcasecmp(micalg, want) != 0)) {
			res->status = PGP_SIG_BAD;
			snprintf(res->detail, sizeof(res->detail),
				 "micalg \"%.60s\" does not match the signature's hash (%s)",
				 micalg ? micalg : "", want);
		}
	}
out:
	buf_free(&content);
	buf_free(&sig);
}

/* Opaque S/MIME (signed-data) and clearsigned text: the signature carries the text. */
static void verify_opaque(gpgme_ctx_t ctx, const struct buf *signed_data,
			  struct pgp_verify_result *res)
{
	gpgme_data_t in = data_from(signed_data->p, signed_data->len), plain = NULL;
	gpgme_error_t e = gpg_error(GPG_ERR_ENOMEM);

	if (in && gpgme_data_new(&plain) == 0)
		e = gpgme_op_verify(ctx, in, NULL, plain);
	if (in)
		gpgme_data_release(in);
	if (plain)
		gpgme_data_release(plain);
	verify_outcome(ctx, e, res);
}

static void verify_inline(gpgme_ctx_t ctx, GMimeObject *part, struct pgp_verify_result *res)
{
	static const char begin[] = "-----BEGIN PGP SIGNED MESSAGE-----";
	static const char end_mark[] = "-----END PGP SIGNATURE-----";
	struct buf text = {0}, block = {0};
	unsigned char *b, *e;

	if (part_content(part, &text, SIZE_MAX / 2) != 0 || !text.p ||
	    !(b = memmem(text.p, text.len, begin, sizeof(begin) - 1)) ||
	    !(e = memmem(b, text.len - (size_t)(b - text.p), end_mark, sizeof(end_mark) - 1))) {
		res->status = PGP_SIG_ERROR;
		snprintf(res->detail, sizeof(res->detail), "%s",
			 "broken inline PGP block (no END PGP SIGNATURE)");
		goto out;
	}
	buf_add(&block, b, (size_t)(e - b) + sizeof(end_mark) - 1);
	buf_add(&block, "\n", 1);
	verify_opaque(ctx, &block, res);
out:
	buf_free(&text);
	buf_free(&block);
}

void pgp_mime_verify(gpgme_ctx_t ctx, const unsigned char *msg, size_t len,
		     struct pgp_verify_result *res)
{
	struct pgp_mime_info info;
	GMimeMessage *m;
	GMimeObject *top;

	memset(res, 0, sizeof(*res));
	pthread_once(&init_once, init_libs);
	m = parse_message(msg, len);
	inspect_message(m, &info);
	res->kind = info.signed_kind;
	if (info.signed_kind == PGP_KIND_NONE)
		goto out;
	if (pgp_mime_kind_protocol(info.signed_kind) != gpgme_get_protocol(ctx)) {
		res->status = PGP_SIG_ERROR;
		snprintf(res->detail, sizeof(res->detail), "%s",
			 "wrong protocol for this signature");
		goto out;
	}
	gpgme_set_armor(ctx, 0);
	gpgme_set_textmode(ctx, 0);
	top = g_mime_message_get_mime_part(m);
	if (info.signed_kind == PGP_KIND_INLINE) {
		verify_inline(ctx, inline_signed_part(m), res);
	} else if (type_is(top, "multipart", "signed")) {
		verify_multipart_signed(ctx, top, msg, len, res);
	} else {
		struct buf data = {0};

		if (part_content(top, &data, SIZE_MAX / 2) != 0 || data.len == 0) {
			res->status = PGP_SIG_ERROR;
			snprintf(res->detail, sizeof(res->detail), "%s",
				 "empty S/MIME signed-data");
		} else {
			verify_opaque(ctx, &data, res);
		}
		buf_free(&data);
	}
out:
	if (m)
		g_object_unref(m);
}

/* ---- decryption ---- */

int pgp_mime_decrypt(gpgme_ctx_t ctx, const unsigned char *msg, size_t len, unsigned char **out,
		     size_t *out_len, struct pgp_verify_result *sig, char *err, size_t errlen)
{
	struct pgp_mime_info info;
	struct buf cipher = {0}, outer = {0}, entity = {0}, res = {0};
	gpgme_data_t in = NULL, plain = NULL;
	GMimeMessage *m;
	GMimeObject *top, *enc_part = NULL;
	gpgme_error_t e;
	int rc = -1;

	if (sig)
		memset(sig, 0, sizeof(*sig));
	pthread_once(&init_once, init_libs);
	m = parse_message(msg, len);
	inspect_message(m, &info);
	if (info.encrypted_kind == PGP_KIND_NONE) {
		rc = 0;
		goto out;
	}
	if (pgp_mime_kind_protocol(info.encrypted_kind) != gpgme_get_protocol(ctx)) {
		set_err(err, errlen, "wrong protocol for this message");
		goto out;
	}
	top = g_mime_message_get_mime_part(m);
	if (info.encrypted_kind == PGP_KIND_PGPMIME) {
		/* RFC 3156 4: version part, then the encrypted data. */
		if (GMIME_IS_MULTIPART(top) &&
		    g_mime_multipart_get_count(GMIME_MULTIPART(top)) == 2)
			enc_part = g_mime_multipart_get_part(GMIME_MULTIPART(top), 1);
	} else {
		enc_part = top;
	}
	if (!enc_part || part_content(enc_part, &cipher, SIZE_MAX / 2) != 0 || cipher.len == 0) {
		set_err(err, errlen, "malformed encrypted message (no encrypted data part)");
		goto out;
	}
	if (data_pair(cipher.p, cipher.len, &in, &plain, err, errlen) != 0)
		goto out;
	if (info.encrypted_kind == PGP_KIND_PGPMIME)
		e = gpgme_op_decrypt_verify(ctx, in, plain);
	else
		e = gpgme_op_decrypt(ctx, in, plain);
	if (e) {
		gpg_err_text("decryption failed", e, err, errlen);
		goto out;
	}
	if (sig && info.encrypted_kind == PGP_KIND_PGPMIME) {
		gpgme_verify_result_t vr = gpgme_op_verify_result(ctx);

		if (vr && vr->signatures) {
			sig->kind = PGP_KIND_PGPMIME;
			verify_outcome(ctx, 0, sig);
		}
	}
	split_message(msg, len, &outer, &entity);
	buf_add(&res, outer.p, outer.len);
	buf_str(&res, "MIME-Version: 1.0\r\n");
	data_take(plain, &res, true);
	plain = NULL;
	rc = buf_take(&res, out, out_len, err, errlen) == 0 ? 1 : -1;
out:
	if (in)
		gpgme_data_release(in);
	if (plain)
		gpgme_data_release(plain);
	if (m)
		g_object_unref(m);
	buf_free(&cipher);
	buf_free(&outer);
	buf_free(&entity);
	buf_free(&res);
	return rc;
}

/* ---- password-protected mail ---- */

static gpgme_error_t password_cb(void *hook, const char *uid_hint, const char *info, int prev_bad,
				 int fd)
{
	const char *pw = hook;
	size_t len = strlen(pw), off = 0;

	(void)uid_hint;
	(void)info;
	if (prev_bad)
		return gpg_error(GPG_ERR_BAD_PASSPHRASE);
	while (off < len) {
		ssize_t n = gpgme_io_write(fd, pw + off, len - off);
		if (n <= 0)
			return gpg_error(GPG_ERR_EIO);
		off += (size_t)n;
	}
	if (gpgme_io_write(fd, "\n", 1) != 1)
		return gpg_error(GPG_ERR_EIO);
	return 0;
}

static const char password_notice[] =
    "This message is protected with a password. The sender should give you the\r\n"
    "password another way (in person, by phone, by text message), never by mail.\r\n"
    "\r\n"
    "To read it, do one of these:\r\n"
    "\r\n"
    "- Open the attachment message.asc with an OpenPGP-capable mail client or\r\n"
    "  add-on (for example Thunderbird, FairEmail, Mailvelope) and enter the\r\n"
    "  password.\r\n"
    "- Save the attachment message.asc and run\r\n"
    "      gpg --decrypt message.asc > message.eml\r\n"
    "  and enter the password; then open message.eml with your mail program.\r\n"
    "  It holds the original text and attachments.\r\n";

int pgp_mime_password_protect(gpgme_ctx_t ctx, const char *password, const unsigned char *msg,
			      size_t len, unsigned char **out, size_t *out_len, char *err,
			      size_t errlen)
{
	struct buf outer = {0}, entity = {0}, cipher = {0}, res = {0};
	gpgme_passphrase_cb_t old_cb = NULL;
	void *old_hook = NULL;
	gpgme_pinentry_mode_t old_mode;
	gpgme_data_t in = NULL, enc = NULL;
	gpgme_error_t e;
	char boundary[48], line[128];
	int rc = -1;

	if (!password || !*password) {
		set_err(err, errlen, "empty password");
		return -1;
	}
	if (gpgme_get_protocol(ctx) != GPGME_PROTOCOL_OpenPGP) {
		set_err(err, errlen, "password protection needs an OpenPGP context");
		return -1;
	}
	if (prepare_entity(msg, len, false, &outer, &entity, err, errlen) != 0)
		goto out;
	if (data_pair(entity.p, entity.len, &in, &enc, err, errlen) != 0)
		goto out;
	gpgme_get_passphrase_cb(ctx, &old_cb, &old_hook);
	old_mode = gpgme_get_pinentry_mode(ctx);
	gpgme_set_passphrase_cb(ctx, password_cb, (void *)password);
	gpgme_set_pinentry_mode(ctx, GPGME_PINENTRY_MODE_LOOPBACK);
	/* The agent must not remember the password after this message. */
	gpgme_set_ctx_flag(ctx, "no-symkey-cache", "1");
	output_mode(ctx, true);
	e = gpgme_op_encrypt(ctx, NULL, GPGME_ENCRYPT_SYMMETRIC, in, enc);
	gpgme_set_passphrase_cb(ctx, old_cb, old_hook);
	gpgme_set_pinentry_mode(ctx, old_mode);
	if (e) {
		gpg_err_text("password encryption failed", e, err, errlen);
		goto out;
	}
	data_take(enc, &cipher, true);
	enc = NULL;
	make_boundary(boundary);
	buf_add(&res, outer.p, outer.len);
	snprintf(line, sizeof(line),
		 "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n",
		 boundary);
	buf_str(&res, line);
	buf_delimiter(&res, "", boundary, "\r\n");
	buf_str(&res, "Content-Type: text/plain; charset=us-ascii\r\n"
		      "Content-Transfer-Encoding: 7bit\r\n\r\n");
	buf_str(&res, password_notice);
	buf_delimiter(&res, "\r\n", boundary, "\r\n");
	buf_str(&res, "Content-Type: application/pgp-encrypted; name=\"message.asc\"\r\n"
		      "Content-Transfer-Encoding: 7bit\r\n"
		      "Content-Disposition: attachment; filename=\"message.asc\"\r\n"
		      "Content-Description: password-protected message (OpenPGP)\r\n\r\n");
	buf_add(&res, cipher.p, cipher.len);
	buf_delimiter(&res, "\r\n", boundary, "--\r\n");
	rc = buf_take(&res, out, out_len, err, errlen);
out:
	if (in)
		gpgme_data_release(in);
	if (enc)
		gpgme_data_release(enc);
	buf_free(&outer);
	buf_free(&entity);
	buf_free(&cipher);
	buf_free(&res);
	return rc;
}

/* ---- Autocrypt ---- */

int pgp_mime_autocrypt_header(gpgme_ctx_t ctx, const char *address, gpgme_key_t key, char **out,
			      char *err, size_t errlen)
{
	gpgme_key_t keys[2] = {key, NULL};
	gpgme_data_t d = NULL;
	struct buf kd = {0}, h = {0};
	gpgme_error_t e;
	char *b64 = NULL;
	size_t b64len, i, col;

	for (const char *c = address; *c; c++) {
		if (*c == ';' || *c == '\r' || *c == '\n' || *c == ' ') {
			set_err(err, errlen, "invalid address for Autocrypt");
			return -1;
		}
	}
	if (gpgme_data_new(&d) != 0) {
		set_err(err, errlen, "out of memory");
		return -1;
	}
	gpgme_set_armor(ctx, 0);
	e = gpgme_op_export_keys(ctx, keys, GPGME_EXPORT_MODE_MINIMAL, d);
	if (e) {
		gpgme_data_release(d);
		gpg_err_text("key export failed", e, err, errlen);
		return -1;
	}
	data_take(d, &kd, false);
	if (kd.failed || kd.len == 0) {
		buf_free(&kd);
		set_err(err, errlen, "key export failed: no key data");
		return -1;
	}
	b64len = sodium_base64_encoded_len(kd.len, sodium_base64_VARIANT_ORIGINAL);
	b64 = malloc(b64len);
	if (!b64) {
		buf_free(&kd);
		set_err(err, errlen, "out of memory");
		return -1;
	}
	sodium_bin2base64(b64, b64len, kd.p, kd.len, sodium_base64_VARIANT_ORIGINAL);
	buf_free(&kd);
	buf_str(&h, "Autocrypt: addr=");
	buf_str(&h, address);
	buf_str(&h, "; keydata=");
	/* Folded (RFC 5322 2.2.3): whitespace inside keydata is ignored by readers. */
	col = B64_LINE;
	for (i = 0; b64[i]; i++) {
		if (col >= B64_LINE) {
			buf_add(&h, "\r\n ", 3);
			col = 1;
		}
		buf_add(&h, b64 + i, 1);
		col++;
	}
	buf_add(&h, "\r\n", 2);
	free(b64);
	if (h.failed) {
		buf_free(&h);
		set_err(err, errlen, "out of memory");
		return -1;
	}
	*out = (char *)h.p;
	return 0;
}
