/*
 * stego_rewrite.c - hides submitted mail in a picture for each local
 * recipient (see stego_rewrite.h and docs/stego.md).
 *
 * The cover is generated: a soft gradient with a few blurred shapes and
 * sensor-like noise, sized so the sealed message fills at most half of its
 * capacity (the less of a cover is used, the less there is to detect). The
 * whole original message, headers included, is what the picture carries;
 * the visible message keeps only the routing headers (From, To, Cc, Date,
 * Message-ID, Reply-To, In-Reply-To, References).
 */
#include <config.h>

#include <ctype.h>
#include <gmime/gmime.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "deliver/stego_rewrite.h"
#include "stego/stego.h"

#define COVER_MIN_WIDTH 320u
#define COVER_MIN_HEIGHT 240u
#define COVER_USE_FRACTION 2u /* capacity = 2 x the sealed message */
#define BASE64_LINE 76u
/* The picture's file name when the cover was generated (or the sender's
 * cover has no usable name), and the longest sender's name kept (bytes). */
#define COVER_NAME_DEFAULT "picture.png"
#define COVER_NAME_MAX 200u

static const char *const kept_headers[] = {"From",	 "To",	     "Cc",	    "Date",
					   "Message-ID", "Reply-To", "In-Reply-To", "References"};

/* Length of the header section (up to and including the empty line), or LEN when none ends. */
static size_t header_end(const unsigned char *msg, size_t len)
{
	for (size_t i = 0; i + 1 < len; i++) {
		if (msg[i] == '\n' && msg[i + 1] == '\n')
			return i + 2;
		if (msg[i] == '\n' && msg[i + 1] == '\r' && i + 2 < len && msg[i + 2] == '\n')
			return i + 3;
	}
	return len;
}

/* End of the line starting at POS (after its LF), limited to END. */
static size_t line_end(const unsigned char *msg, size_t pos, size_t end)
{
	while (pos < end && msg[pos] != '\n')
		pos++;
	return pos < end ? pos + 1 : end;
}

/* True when the line at POS is the field NAME (case-insensitive, then ':'). */
static bool is_field(const unsigned char *msg, size_t pos, size_t end, const char *name)
{
	size_t n = strlen(name);

	return end - pos > n && strncasecmp((const char *)msg + pos, name, n) == 0 &&
	       msg[pos + n] == ':';
}

/*
 * The value of the first field NAME of the header section [0, END) of MSG,
 * unfolded and trimmed, into OUT (OUTLEN bytes). Returns how many such
 * fields there are; *TOO_LONG when the first did not fit.
 */
static int header_value(const unsigned char *msg, size_t end, const char *name, char *out,
			size_t outlen, bool *too_long)
{
	size_t pos = 0;
	int count = 0;

	out[0] = '\0';
	*too_long = false;
	while (pos < end) {
		size_t next = line_end(msg, pos, end);

		if (is_field(msg, pos, next, name) && count++ == 0) {
			size_t v = pos + strlen(name) + 1, o = 0;

			for (;;) {
				for (; v < next; v++) {
					if (msg[v] == '\r' || msg[v] == '\n' ||
					    (o == 0 && (msg[v] == ' ' || msg[v] == '\t')))
						continue;
					if (o + 1 >= outlen) {
						*too_long = true;
						break;
					}
					out[o++] = (char)msg[v];
				}
				if (*too_long || next >= end ||
				    (msg[next] != ' ' && msg[next] != '\t'))
					break;
				v = next;
				next = line_end(msg, next, end);
			}
			while (o > 0 && (out[o - 1] == ' ' || out[o - 1] == '\t'))
				o--;
			out[o] = '\0';
		}
		pos = next;
	}
	return count;
}

/* "yes", then parameters: "; cover=attached" or "; cover=generated". */
static int parse_request_value(const char *v, struct stego_request *req, char *err, size_t errlen)
{
	const char *p = v;

	req->attached_cover = false;
	if (strncasecmp(p, "yes", 3) != 0 ||
	    (p[3] != '\0' && p[3] != ';' && p[3] != ' ' && p[3] != '\t'))
		return 0; /* not a request */
	p += 3;
	for (;;) {
		char name[32], value[32];
		size_t n;

		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0')
			return 1;
		if (*p != ';')
			goto bad;
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		n = strcspn(p, "= \t;");
		if (n == 0 || n >= sizeof(name))
			goto bad;
		memcpy(name, p, n);
		name[n] = '\0';
		p += n;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p != '=')
			goto bad;
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		n = strcspn(p, " \t;");
		if (n == 0 || n >= sizeof(value))
			goto bad;
		memcpy(value, p, n);
		value[n] = '\0';
		p += n;
		if (strcasecmp(name, "cover") != 0 ||
		    (strcasecmp(value, "attached") != 0 && strcasecmp(value, "generated") != 0))
			goto bad;
		req->attached_cover = strcasecmp(value, "attached") == 0;
	}
bad:
	snprintf(err, errlen,
		 STEGO_REWRITE_HEADER ": unknown parameter (use \"yes\", \"yes; cover=attached\" "
				      "or \"yes; cover=generated\")");
	return -1;
}

bool stego_rewrite_requested(const unsigned char *msg, size_t len)
{
	struct stego_request req;
	char v[256], err[8];
	bool too_long;

	if (header_value(msg, header_end(msg, len), STEGO_REWRITE_HEADER, v, sizeof(v),
			 &too_long) == 0)
		return false;
	/* A malformed request still counts: the rewrite refuses it with a reason. */
	return too_long || parse_request_value(v, &req, err, sizeof(err)) != 0;
}

int stego_rewrite_parse(const unsigned char *msg, size_t len, struct stego_request *req, char *err,
			size_t errlen)
{
	char v[256];
	bool too_long;
	int n, rc;

	memset(req, 0, sizeof(*req));
	n = header_value(msg, header_end(msg, len), STEGO_REWRITE_HEADER, v, sizeof(v), &too_long);
	if (n > 0 && too_long) {
		snprintf(err, errlen, STEGO_REWRITE_HEADER ": value too long");
		return -1;
	}
	rc = n > 0 ? parse_request_value(v, req, err, errlen) : 0;
	if (rc < 0)
		return -1;
	if (rc == 0) {
		snprintf(err, errlen, "no " STEGO_REWRITE_HEADER ": yes");
		return -1;
	}
	if (n > 1) {
		snprintf(err, errlen, "more than one " STEGO_REWRITE_HEADER " field");
		return -1;
	}
	return 0;
}

size_t stego_rewrite_take_password(unsigned char *msg, size_t len, struct stego_password *pw)
{
	size_t end = header_end(msg, len), pos = 0;
	bool too_long;
	int n;

	memset(pw, 0, sizeof(*pw));
	n = header_value(msg, end, STEGO_REWRITE_PASSWORD_HEADER, pw->value, sizeof(pw->value),
			 &too_long);
	if (n == 0)
		return len;
	pw->present = true;
	pw->len = strlen(pw->value);
	pw->invalid = n > 1 || too_long || pw->len == 0;
	while (pos < end) {
		size_t next = line_end(msg, pos, end), cut;

		if (!is_field(msg, pos, next, STEGO_REWRITE_PASSWORD_HEADER)) {
			pos = next;
			continue;
		}
		/* The field with its folded continuation lines. */
		cut = next;
		while (cut < end && (msg[cut] == ' ' || msg[cut] == '\t'))
			cut = line_end(msg, cut, end);
		memmove(msg + pos, msg + cut, len - cut);
		sodium_memzero(msg + len - (cut - pos), cut - pos);
		len -= cut - pos;
		end -= cut - pos;
	}
	return len;
}

struct buf {
	unsigned char *data;
	size_t len, cap;
	bool failed;
};

static void buf_add(struct buf *b, const void *p, size_t n)
{
	if (b->failed)
		return;
	if (n > b->cap - b->len) {
		size_t cap = b->cap ? b->cap : 4096;
		unsigned char *d;

		while (cap - b->len < n)
			cap *= 2;
		d = realloc(b->data, cap);
		if (d == NULL) {
			b->failed = true;
			return;
		}
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

static void buf_str(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

/* Adds S (GMime's folded header text, lines ending in LF) with CRLF line ends. */
static void buf_crlf(struct buf *b, const char *s)
{
	for (const char *nl; (nl = strchr(s, '\n')) != NULL; s = nl + 1) {
		size_t n = (size_t)(nl - s);

		buf_add(b, s, n > 0 && s[n - 1] == '\r' ? n - 1 : n);
		buf_str(b, "\r\n");
	}
	buf_str(b, s);
}

/*
 * NAME as a file name for the picture, into OUT (UTF-8): no directory part
 * (after the last '/' or '\\'), no control characters (CR, LF, TAB, ...)
 * and no quotes, white space trimmed, at most COVER_NAME_MAX bytes cut at
 * a character boundary. Empty when nothing usable is left ("", ".", "..").
 */
static void sanitize_name(const char *name, char *out, size_t outlen)
{
	const char *base = name, *p;
	gchar *valid;
	size_t o = 0, max = outlen > 0 ? outlen - 1 : 0;

	if (outlen == 0)
		return;
	out[0] = '\0';
	for (p = name; *p; p++)
		if (*p == '/' || *p == '\\')
			base = p + 1;
	valid = g_utf8_make_valid(base, -1);
	if (valid == NULL)
		return;
	if (max > COVER_NAME_MAX)
		max = COVER_NAME_MAX;
	for (p = valid; *p;) {
		const char *next = g_utf8_next_char(p);
		gunichar c = g_utf8_get_char(p);
		size_t n = (size_t)(next - p);

		if (c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0) || c == '"' || c == '\'' ||
		    c == 0x2028 || c == 0x2029) {
			p = next;
			continue;
		}
		if (o + n > max)
			break;
		if (c == ' ' && o == 0) { /* leading white space */
			p = next;
			continue;
		}
		memcpy(out + o, p, n);
		o += n;
		p = next;
	}
	while (o > 0 && out[o - 1] == ' ')
		o--;
	out[o] = '\0';
	if (strcmp(out, ".") == 0 || strcmp(out, "..") == 0)
		out[0] = '\0';
	g_free(valid);
}

/*
 * The file name the sender gave the cover (Content-Disposition filename,
 * else Content-Type name, RFC 2231 and RFC 2047 decoded by GMime) of the
 * first image/png part at the top level of MSG, the part stego_cover_take
 * takes, sanitised into OUT; empty when it has none.
 */
static void cover_file_name(const unsigned char *msg, size_t len, char *out, size_t outlen)
{
	GMimeStream *stream;
	GMimeParser *parser;
	GMimeMessage *message;
	GMimeObject *top;

	out[0] = '\0';
	g_mime_init();
	stream = g_mime_stream_mem_new_with_buffer((const char *)msg, len);
	parser = g_mime_parser_new_with_stream(stream);
	message = g_mime_parser_construct_message(parser, NULL);
	top = message ? g_mime_message_get_mime_part(message) : NULL;
	if (top && GMIME_IS_MULTIPART(top)) {
		GMimeMultipart *mp = GMIME_MULTIPART(top);

		for (int i = 0; i < g_mime_multipart_get_count(mp); i++) {
			GMimeObject *part = g_mime_multipart_get_part(mp, i);
			const char *name;

			if (!GMIME_IS_PART(part) ||
			    !g_mime_content_type_is_type(g_mime_object_get_content_type(part),
							 "image", "png"))
				continue;
			name = g_mime_part_get_filename(GMIME_PART(part));
			if (name)
				sanitize_name(name, out, outlen);
			break;
		}
	}
	if (message)
		g_object_unref(message);
	g_object_unref(parser);
	g_object_unref(stream);
}

/*
 * The picture part's Content-Type and Content-Disposition fields for
 * NAME, each parameter in RFC 2231 form (UTF-8) when NAME is not plain
 * ASCII, folded by GMime. False when out of memory.
 */
static bool add_picture_fields(struct buf *b, const char *name)
{
	GMimeContentType *ct = g_mime_content_type_new("image", "png");
	GMimeContentDisposition *cd = g_mime_content_disposition_new();
	GMimeParam *param;
	char *ct_text, *cd_text;

	g_mime_content_type_set_parameter(ct, "name", name);
	g_mime_content_disposition_set_disposition(cd, GMIME_DISPOSITION_ATTACHMENT);
	g_mime_content_disposition_set_parameter(cd, "filename", name);
	/* GMime would pick the smallest charset that fits; UTF-8 is what
	 * every client reads. */
	param = g_mime_param_list_get_parameter(g_mime_content_type_get_parameters(ct), "name");
	if (param)
		g_mime_param_set_charset(param, "UTF-8");
	param = g_mime_param_list_get_parameter(g_mime_content_disposition_get_parameters(cd),
						"filename");
	if (param)
		g_mime_param_set_charset(param, "UTF-8");
	ct_text = g_mime_content_type_encode(ct, NULL);
	cd_text = g_mime_content_disposition_encode(cd, NULL);
	if (ct_text && cd_text) {
		buf_str(b, "Content-Type:");
		buf_crlf(b, ct_text);
		buf_str(b, "Content-Disposition:");
		buf_crlf(b, cd_text);
	}
	g_free(ct_text);
	g_free(cd_text);
	g_object_unref(ct);
	g_object_unref(cd);
	return ct_text && cd_text;
}

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static double unit(uint64_t *s)
{
	return ((double)(xorshift(s) >> 11) + 0.5) / 9007199254740992.0;
}

/* A picture that looks like an out-of-focus photograph of nothing much. */
static void paint_cover(struct stego_image *img)
{
	uint64_t seed;
	double base[3], dx[3], dy[3], cx[3], cy[3], rad[3], amp[3];

	randombytes_buf(&seed, sizeof(seed));
	seed |= 1;
	for (int c = 0; c < 3; c++) {
		base[c] = 60.0 + 120.0 * unit(&seed);
		dx[c] = 60.0 * (unit(&seed) - 0.5);
		dy[c] = 80.0 * (unit(&seed) - 0.5);
		cx[c] = unit(&seed) * img->width;
		cy[c] = unit(&seed) * img->height;
		rad[c] = (0.2 + 0.3 * unit(&seed)) * img->height;
		amp[c] = 50.0 * (unit(&seed) - 0.5);
	}
	for (uint32_t y = 0; y < img->height; y++)
		for (uint32_t x = 0; x < img->width; x++) {
			double fx = (double)x / img->width, fy = (double)y / img->height;
			double noise = 0.0;

			for (int k = 0; k < 4; k++)
				noise += unit(&seed);
			noise = (noise - 2.0) * 3.5; /* sigma about 2 */
			for (int c = 0; c < 3; c++) {
				double d = hypot((double)x - cx[c], (double)y - cy[c]) / rad[c];
				double v = base[c] + dx[c] * fx + dy[c] * fy +
					   amp[c] * exp(-d * d) + noise + 2.0 * (unit(&seed) - 0.5);
				long iv = lround(v);

				img->pixels[((size_t)y * img->width + x) * 3 + c] =
				    (unsigned char)(iv < 0     ? 0
						    : iv > 255 ? 255
							       : iv);
			}
		}
}

/* Bytes of a generated cover's carriers the message may fill: at most half. */
static int generated_cover(size_t len, enum stego_mode mode, struct stego_image *img, char *err,
			   size_t errlen)
{
	size_t overhead = mode == STEGO_PASSWORD ? STEGO_PASSWORD_OVERHEAD : STEGO_SEAL_OVERHEAD;
	uint64_t bits = ((uint64_t)len + overhead) * 8 * COVER_USE_FRACTION;
	uint64_t pixels = (bits + 2) / 3;
	uint32_t w, h;

	if (pixels < (uint64_t)COVER_MIN_WIDTH * COVER_MIN_HEIGHT)
		pixels = (uint64_t)COVER_MIN_WIDTH * COVER_MIN_HEIGHT;
	if (pixels > STEGO_MAX_PIXELS) {
		snprintf(err, errlen, "message too large to hide in a picture");
		return -1;
	}
	h = (uint32_t)ceil(sqrt((double)pixels * 3.0 / 4.0));
	w = (uint32_t)((pixels + h - 1) / h);
	img->width = w;
	img->height = h;
	img->channels = 3;
	img->bit_depth = 8;
	img->pixels = malloc((size_t)w * h * 3);
	if (img->pixels == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	paint_cover(img);
	return 0;
}

int stego_rewrite_check_cover(const unsigned char *cover, size_t cover_len, size_t len,
			      enum stego_mode mode, char *err, size_t errlen)
{
	struct stego_image img;
	char why[160];
	size_t cap, overhead;
	unsigned colour;
	uint64_t pixels, carriers;

	if (stego_png_read(cover, cover_len, &img, why, sizeof(why)) != STEGO_OK) {
		snprintf(err, errlen, "the attached picture cannot be used as the cover: %s", why);
		return -1;
	}
	cap = stego_capacity(&img, mode);
	overhead = mode == STEGO_PASSWORD ? STEGO_PASSWORD_OVERHEAD : STEGO_SEAL_OVERHEAD;
	colour = img.channels == 2 || img.channels == 4 ? img.channels - 1 : img.channels;
	carriers = stego_image_carriers(&img);
	stego_image_free(&img);
	/* Counted in carriers: a capacity of 0 may also mean "not even empty". */
	if (((uint64_t)len + overhead) * 8 <= carriers)
		return 0;
	pixels = (((uint64_t)len + overhead) * 8 + colour - 1) / colour;
	snprintf(err, errlen,
		 "the attached picture is too small: it holds %zu bytes, the message needs %zu "
		 "(a picture of at least %llu pixels, e.g. %llux%llu)",
		 cap, len, (unsigned long long)pixels,
		 (unsigned long long)ceil(sqrt((double)pixels * 4.0 / 3.0)),
		 (unsigned long long)ceil(sqrt((double)pixels * 3.0 / 4.0)));
	return -1;
}

/* A PNG hiding MSG for SECRET (*PNG malloc'd): in the sender's COVER when
 * given, with its metadata, else in a generated picture. */
static int hide_in_picture(const struct stego_secret *secret, const unsigned char *cover,
			   size_t cover_len, const unsigned char *msg, size_t len,
			   unsigned char **png, size_t *png_len, char *err, size_t errlen)
{
	struct stego_image img = {0, 0, 3, 8, NULL};
	int rc;

	if (cover != NULL) {
		if (stego_rewrite_check_cover(cover, cover_len, len, secret->mode, err, errlen) !=
		    0)
			return -1;
		return stego_embed_png(cover, cover_len, msg, len, secret, png, png_len, err,
				       errlen) == STEGO_OK
			   ? 0
			   : -1;
	}
	if (generated_cover(len, secret->mode, &img, err, errlen) != 0)
		return -1;
	rc = stego_embed(&img, msg, len, secret, err, errlen);
	if (rc == STEGO_OK)
		rc = stego_png_write(&img, png, png_len, err, errlen);
	stego_image_free(&img);
	return rc == STEGO_OK ? 0 : -1;
}

int stego_rewrite_message(const struct stego_secret *secret, const unsigned char *cover,
			  size_t cover_len, const char *cover_name, const unsigned char *msg,
			  size_t len, unsigned char **out, size_t *out_len, char *err,
			  size_t errlen)
{
	struct buf b = {0};
	unsigned char *png = NULL, rnd[12];
	char boundary[64], hex[25], *b64;
	size_t png_len, b64_len, end = header_end(msg, len), pos = 0;

	if (hide_in_picture(secret, cover, cover_len, msg, len, &png, &png_len, err, errlen) != 0)
		return -1;
	/* Only the routing headers stay visible, with their folded lines. */
	while (pos < end) {
		size_t next = line_end(msg, pos, end);
		bool keep = false;

		for (size_t k = 0; k < sizeof(kept_headers) / sizeof(kept_headers[0]); k++)
			keep = keep || is_field(msg, pos, next, kept_headers[k]);
		if (keep) {
			do {
				buf_add(&b, msg + pos, next - pos);
				pos = next;
				next = line_end(msg, pos, end);
			} while (pos < end && (msg[pos] == ' ' || msg[pos] == '\t'));
			continue;
		}
		pos = next;
	}
	randombytes_buf(rnd, sizeof(rnd));
	sodium_bin2hex(hex, sizeof(hex), rnd, sizeof(rnd));
	snprintf(boundary, sizeof(boundary), "=_postern_%s", hex);
	buf_str(&b, "Subject: A picture for you\r\nMIME-Version: 1.0\r\n" STEGO_REWRITE_HEADER
		    ": image\r\nContent-Type: multipart/mixed; boundary=\"");
	buf_str(&b, boundary);
	buf_str(&b, "\"\r\n\r\nThis is a multi-part message in MIME format.\r\n\r\n--");
	buf_str(&b, boundary);
	buf_str(&b, "\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
		    "Here is the picture I promised.\r\n\r\n--");
	buf_str(&b, boundary);
	buf_str(&b, "\r\n");
	if (!add_picture_fields(&b, cover != NULL && cover_name != NULL && cover_name[0] != '\0'
					? cover_name
					: COVER_NAME_DEFAULT))
		b.failed = true;
	buf_str(&b, "Content-Transfer-Encoding: base64\r\n\r\n");
	b64_len = sodium_base64_encoded_len(png_len, sodium_base64_VARIANT_ORIGINAL);
	b64 = malloc(b64_len);
	if (b64 == NULL) {
		free(png);
		free(b.data);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	sodium_bin2base64(b64, b64_len, png, png_len, sodium_base64_VARIANT_ORIGINAL);
	free(png);
	for (size_t i = 0, n = strlen(b64); i < n; i += BASE64_LINE) {
		buf_add(&b, b64 + i, n - i < BASE64_LINE ? n - i : BASE64_LINE);
		buf_str(&b, "\r\n");
	}
	free(b64);
	buf_str(&b, "--");
	buf_str(&b, boundary);
	buf_str(&b, "--\r\n");
	if (b.failed) {
		free(b.data);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	*out = b.data;
	*out_len = b.len;
	return 0;
}

/* The recipients' copies, inside the caller's transaction; REPORT counts them. */
static enum deliver_status deliver_copies(struct store *st, const struct config *cfg,
					  const struct deliver_envelope *env,
					  const struct deliver_recipient *rcpts, const bool *local,
					  size_t n_rcpts, const struct stego_password *pw,
					  const unsigned char *cover, size_t cover_len,
					  const char *cover_name, const unsigned char *hidden,
					  size_t hidden_len, struct deliver_report *report)
{
	enum deliver_status status = DELIVER_OK;
	struct deliver_recipient *remote = NULL;
	bool *remote_local = NULL;
	int64_t *done;
	size_t n_done = 0, n_remote = 0;

	done = calloc(n_rcpts, sizeof(*done));
	remote = calloc(n_rcpts, sizeof(*remote));
	remote_local = calloc(n_rcpts, sizeof(*remote_local)); /* all false */
	if (done == NULL || remote == NULL || remote_local == NULL) {
		status = DELIVER_TEMPFAIL;
		snprintf(report->message, sizeof(report->message),
			 "temporary failure, try again later");
		goto out;
	}
	for (size_t i = 0; i < n_rcpts && status == DELIVER_OK; i++) {
		char resolved[STORE_ADDRESS_MAX + 1], err[200];
		struct stego_secret secret = {STEGO_PUBLIC_KEY, NULL, 0, NULL, NULL};
		struct store_user user = {0};
		struct deliver_report one;
		unsigned char *copy = NULL;
		size_t copy_len = 0, k;
		int rc;

		if (!local[i]) {
			remote[n_remote++] = rcpts[i];
			continue;
		}
		rc = store_resolve_address(st, rcpts[i].address, resolved);
		if (rc == STORE_OK)
			rc = store_user_get(st, resolved, &user);
		if (rc != STORE_OK) {
			status = rc == STORE_NOTFOUND ? DELIVER_FAIL : DELIVER_TEMPFAIL;
			snprintf(
			    report->message, sizeof(report->message), "<%s>: %s", rcpts[i].address,
			    rc == STORE_NOTFOUND ? "user unknown" : "temporary lookup failure");
			store_user_clear(&user);
			break;
		}
		for (k = 0; k < n_done && done[k] != user.id; k++)
			;
		if (k < n_done) { /* an alias of a user already served */
			store_user_clear(&user);
			continue;
		}
		done[n_done++] = user.id;
		secret.public_key = user.public_key;
		rc = stego_rewrite_message(&secret, cover, cover_len, cover_name, hidden,
					   hidden_len, &copy, &copy_len, err, sizeof(err));
		store_user_clear(&user);
		if (rc != 0) {
			status = DELIVER_FAIL;
			snprintf(report->message, sizeof(report->message), "<%s>: %s",
				 rcpts[i].address, err);
			break;
		}
		status =
		    deliver_message(st, cfg, env, &rcpts[i], &local[i], 1, copy, copy_len, &one);
		free(copy);
		if (status != DELIVER_OK) {
			memcpy(report->message, one.message, sizeof(report->message));
			break;
		}
		report->stored_local += one.stored_local;
		report->quarantined += one.quarantined;
	}
	/* Other servers' users: one copy under the sender's password, queued. */
	if (status == DELIVER_OK && n_remote > 0) {
		struct stego_secret secret = {STEGO_PASSWORD, pw->value, pw->len, NULL, NULL};
		struct deliver_report one;
		unsigned char *copy = NULL;
		size_t copy_len = 0;
		char err[200];

		if (stego_rewrite_message(&secret, cover, cover_len, cover_name, hidden, hidden_len,
					  &copy, &copy_len, err, sizeof(err)) != 0) {
			status = DELIVER_FAIL;
			snprintf(report->message, sizeof(report->message), "%s", err);
			goto out;
		}
		status = deliver_message(st, cfg, env, remote, remote_local, n_remote, copy,
					 copy_len, &one);
		free(copy);
		if (status != DELIVER_OK)
			memcpy(report->message, one.message, sizeof(report->message));
		else
			report->queued_remote += one.queued_remote;
	}
out:
	free(done);
	free(remote);
	free(remote_local);
	return status;
}

enum deliver_status stego_rewrite_deliver(struct store *st, const struct config *cfg,
					  const struct deliver_envelope *env,
					  const struct deliver_recipient *rcpts, const bool *local,
					  size_t n_rcpts, const unsigned char *msg, size_t len,
					  const struct stego_password *pw,
					  struct deliver_report *report)
{
	enum deliver_status status = DELIVER_FAIL;
	struct stego_request req;
	unsigned char *cover = NULL, *rest = NULL;
	const unsigned char *hidden = msg;
	size_t cover_len = 0, rest_len = 0, hidden_len = len;
	bool any_local = false, any_remote = false;
	char err[240], cover_name[COVER_NAME_MAX + 1] = "";

	memset(report, 0, sizeof(*report));
	report->status = DELIVER_FAIL;
	if (stego_rewrite_parse(msg, len, &req, err, sizeof(err)) != 0) {
		snprintf(report->message, sizeof(report->message), "%s", err);
		return DELIVER_FAIL;
	}
	if (pw->invalid) {
		snprintf(report->message, sizeof(report->message),
			 STEGO_REWRITE_PASSWORD_HEADER
			 " must appear once, not empty, at most %u bytes",
			 STEGO_REWRITE_PASSWORD_MAX);
		return DELIVER_FAIL;
	}
	if (n_rcpts == 0) {
		snprintf(report->message, sizeof(report->message), "no recipients");
		return DELIVER_FAIL;
	}
	for (size_t i = 0; i < n_rcpts; i++) {
		any_local = any_local || local[i];
		any_remote = any_remote || !local[i];
		if (!local[i] && !pw->present) {
			snprintf(report->message, sizeof(report->message),
				 "<%s>: " STEGO_REWRITE_HEADER
				 " needs local recipients (no key for other servers' users)",
				 rcpts[i].address);
			return DELIVER_FAIL;
		}
	}
	/* What is hidden: the message as sent (the password already gone),
	 * without the cover when the sender attached one. */
	if (req.attached_cover) {
		if (stego_cover_take(msg, len, &cover, &cover_len, &rest, &rest_len, err,
				     sizeof(err)) != 0 ||
		    (any_local &&
		     stego_rewrite_check_cover(cover, cover_len, rest_len, STEGO_PUBLIC_KEY, err,
					       sizeof(err)) != 0) ||
		    (any_remote &&
		     stego_rewrite_check_cover(cover, cover_len, rest_len, STEGO_PASSWORD, err,
					       sizeof(err)) != 0)) {
			snprintf(report->message, sizeof(report->message), "%s", err);
			goto out;
		}
		hidden = rest;
		hidden_len = rest_len;
		cover_file_name(msg, len, cover_name, sizeof(cover_name));
	}
	if (store_begin(st) != STORE_OK) {
		status = DELIVER_TEMPFAIL;
		snprintf(report->message, sizeof(report->message),
			 "temporary failure, try again later");
		goto out;
	}
	status = deliver_copies(st, cfg, env, rcpts, local, n_rcpts, pw, cover, cover_len,
				cover_name, hidden, hidden_len, report);
	if (status == DELIVER_OK && store_commit(st) != STORE_OK) {
		status = DELIVER_TEMPFAIL;
		snprintf(report->message, sizeof(report->message),
			 "temporary failure, try again later");
	}
	if (status != DELIVER_OK) {
		store_rollback(st);
		report->stored_local = report->queued_remote = report->quarantined = 0;
	}
out:
	if (rest) {
		sodium_memzero(rest, rest_len);
		free(rest);
	}
	free(cover);
	report->status = status;
	return status;
}
