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

bool stego_rewrite_requested(const unsigned char *msg, size_t len)
{
	size_t end = header_end(msg, len), pos = 0;

	while (pos < end) {
		size_t next = line_end(msg, pos, end);

		if (is_field(msg, pos, next, STEGO_REWRITE_HEADER)) {
			size_t v = pos + strlen(STEGO_REWRITE_HEADER) + 1, e = next;

			while (v < e && (msg[v] == ' ' || msg[v] == '\t'))
				v++;
			while (e > v && isspace(msg[e - 1]))
				e--;
			if (e - v == 3 && strncasecmp((const char *)msg + v, "yes", 3) == 0)
				return true;
		}
		pos = next;
	}
	return false;
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

/* A generated PNG holding MSG sealed to PUB (*PNG malloc'd). */
static int hide_in_picture(const unsigned char pub[32], const unsigned char *msg, size_t len,
			   unsigned char **png, size_t *png_len, char *err, size_t errlen)
{
	struct stego_secret secret = {STEGO_PUBLIC_KEY, NULL, 0, pub, NULL};
	struct stego_image img = {0, 0, 3, 8, NULL};
	uint64_t bits = ((uint64_t)len + STEGO_SEAL_OVERHEAD) * 8 * COVER_USE_FRACTION;
	uint64_t pixels = (bits + 2) / 3;
	uint32_t w, h;
	int rc;

	if (pixels < (uint64_t)COVER_MIN_WIDTH * COVER_MIN_HEIGHT)
		pixels = (uint64_t)COVER_MIN_WIDTH * COVER_MIN_HEIGHT;
	if (pixels > STEGO_MAX_PIXELS) {
		snprintf(err, errlen, "message too large to hide in a picture");
		return -1;
	}
	h = (uint32_t)ceil(sqrt((double)pixels * 3.0 / 4.0));
	w = (uint32_t)((pixels + h - 1) / h);
	img.width = w;
	img.height = h;
	img.pixels = malloc((size_t)w * h * 3);
	if (img.pixels == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	paint_cover(&img);
	rc = stego_embed(&img, msg, len, &secret, err, errlen);
	if (rc == STEGO_OK)
		rc = stego_png_write(&img, png, png_len, err, errlen);
	stego_image_free(&img);
	return rc == STEGO_OK ? 0 : -1;
}

int stego_rewrite_message(const unsigned char pub[32], const unsigned char *msg, size_t len,
			  unsigned char **out, size_t *out_len, char *err, size_t errlen)
{
	struct buf b = {0};
	unsigned char *png = NULL, rnd[12];
	char boundary[64], hex[25], *b64;
	size_t png_len, b64_len, end = header_end(msg, len), pos = 0;

	if (hide_in_picture(pub, msg, len, &png, &png_len, err, errlen) != 0)
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
	buf_str(&b, "\r\nContent-Type: image/png; name=\"picture.png\"\r\n"
		    "Content-Disposition: attachment; filename=\"picture.png\"\r\n"
		    "Content-Transfer-Encoding: base64\r\n\r\n");
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

enum deliver_status stego_rewrite_deliver(struct store *st, const struct config *cfg,
					  const struct deliver_envelope *env,
					  const struct deliver_recipient *rcpts, const bool *local,
					  size_t n_rcpts, const unsigned char *msg, size_t len,
					  struct deliver_report *report)
{
	enum deliver_status status = DELIVER_OK;
	int64_t *done;
	size_t n_done = 0, stored = 0, quarantined = 0;

	memset(report, 0, sizeof(*report));
	for (size_t i = 0; i < n_rcpts; i++) {
		if (!local[i]) {
			snprintf(report->message, sizeof(report->message),
				 "<%s>: " STEGO_REWRITE_HEADER
				 " needs local recipients (no key for other servers' users)",
				 rcpts[i].address);
			report->status = DELIVER_FAIL;
			return DELIVER_FAIL;
		}
	}
	done = calloc(n_rcpts ? n_rcpts : 1, sizeof(*done));
	if (done == NULL || store_begin(st) != STORE_OK) {
		free(done);
		snprintf(report->message, sizeof(report->message),
			 "temporary failure, try again later");
		report->status = DELIVER_TEMPFAIL;
		return DELIVER_TEMPFAIL;
	}
	for (size_t i = 0; i < n_rcpts && status == DELIVER_OK; i++) {
		char resolved[STORE_ADDRESS_MAX + 1], err[200];
		struct store_user user = {0};
		struct deliver_report one;
		unsigned char *hidden = NULL;
		size_t hidden_len = 0, k;
		int rc = store_resolve_address(st, rcpts[i].address, resolved);

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
		if (stego_rewrite_message(user.public_key, msg, len, &hidden, &hidden_len, err,
					  sizeof(err)) != 0) {
			status = DELIVER_FAIL;
			snprintf(report->message, sizeof(report->message), "<%s>: %s",
				 rcpts[i].address, err);
			store_user_clear(&user);
			break;
		}
		store_user_clear(&user);
		status = deliver_message(st, cfg, env, &rcpts[i], &local[i], 1, hidden, hidden_len,
					 &one);
		free(hidden);
		if (status != DELIVER_OK) {
			memcpy(report->message, one.message, sizeof(report->message));
			break;
		}
		stored += one.stored_local;
		quarantined += one.quarantined;
	}
	free(done);
	if (status == DELIVER_OK && store_commit(st) != STORE_OK) {
		status = DELIVER_TEMPFAIL;
		snprintf(report->message, sizeof(report->message),
			 "temporary failure, try again later");
	}
	if (status != DELIVER_OK)
		store_rollback(st);
	else {
		report->stored_local = stored;
		report->quarantined = quarantined;
	}
	report->status = status;
	return status;
}
