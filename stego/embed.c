/*
 * embed.c - where the bits go and how they are written.
 *
 * Carriers are the colour samples (never alpha), numbered in raster order.
 * The I-th bit of the stream goes to carrier perm(I), where perm is a keyed
 * pseudo-random permutation of [0, carriers): a four-round Feistel network
 * on Z_a x Z_b with a * b just above the number of carriers, SipHash as the
 * round function and cycle walking to stay inside the domain. It needs
 * no table, so memory stays at the image itself whatever its size, and the
 * stream's first bits are found without visiting the rest.
 *
 * The stream is a 32-bit body length (masked with the locating key, so it
 * reads as noise) followed by the encrypted body (payload.c). A carrier
 * whose LSB already equals the bit stays as it is; otherwise it moves by +1
 * or -1 at random (LSB matching), never wrapping around at 0 or the maximum.
 */
#include <config.h>

#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "stego/stego.h"
#include "stego/stego_int.h"
#include "util/i18n.h"

#define FEISTEL_ROUNDS 4

void stego_perm_init(struct stego_perm *p, uint64_t domain, const unsigned char key[32])
{
	static const unsigned char label[] = "postern-stego-permutation";
	uint64_t a = (uint64_t)sqrt((double)domain);

	/* The smallest a with a * a >= domain, then b = ceil(domain / a): a * b
	 * exceeds the domain by less than a, so cycle walking almost never runs. */
	while (a > 1 && (a - 1) * (a - 1) >= domain)
		a--;
	while (a * a < domain)
		a++;
	if (a == 0)
		a = 1;
	p->domain = domain;
	p->left_size = a;
	p->right_size = domain ? (domain + a - 1) / a : 1;
	crypto_generichash(p->key, sizeof(p->key), label, sizeof(label) - 1, key, 32);
}

static uint64_t round_function(const struct stego_perm *p, unsigned round, uint64_t half)
{
	unsigned char in[9], out[crypto_shorthash_BYTES];
	uint64_t v = 0;

	in[0] = (unsigned char)round;
	for (int i = 0; i < 8; i++)
		in[1 + i] = (unsigned char)(half >> (8 * i));
	crypto_shorthash(out, in, sizeof(in), p->key);
	for (int i = 0; i < 8; i++)
		v |= (uint64_t)out[i] << (8 * i);
	return v;
}

/*
 * One pass of a Feistel network on Z_a x Z_b (x = left * b + right): each
 * round maps (left, right) to (right, (left + F(right)) mod a), which is
 * invertible, and swaps the roles of a and b; after an even number of
 * rounds they are back in place.
 */
static uint64_t feistel(const struct stego_perm *p, uint64_t x)
{
	uint64_t a = p->left_size, b = p->right_size;
	uint64_t left = x / b, right = x % b;

	for (unsigned r = 0; r < FEISTEL_ROUNDS; r++) {
		uint64_t next_right = (left + round_function(p, r, right) % a) % a;
		uint64_t t = a;

		left = right;
		right = next_right;
		a = b;
		b = t;
	}
	return left * b + right;
}

/*
 * The same network when the domain fits in 32 bits (every image within
 * STEGO_MAX_PIXELS): the round value is reduced by a multiply-shift instead
 * of a 64-bit division, which is the bulk of the cost otherwise. The
 * reduction's bias is below a / 2^32, far under anything measurable.
 */
static uint64_t feistel32(const struct stego_perm *p, uint32_t x)
{
	uint32_t a = (uint32_t)p->left_size, b = (uint32_t)p->right_size;
	uint32_t left = x / b, right = x % b;

	for (unsigned r = 0; r < FEISTEL_ROUNDS; r++) {
		uint32_t f = (uint32_t)(((round_function(p, r, right) & 0xffffffffu) * a) >> 32);
		uint32_t next_right = left + f >= a ? left + f - a : left + f;
		uint32_t t = a;

		left = right;
		right = next_right;
		a = b;
		b = t;
	}
	return (uint64_t)left * b + right;
}

uint64_t stego_perm_at(const struct stego_perm *p, uint64_t i)
{
	uint64_t x = i;

	if (i >= p->domain) /* outside the permutation: cycle walking might never end */
		return i;
	if (p->domain <= UINT32_MAX) {
		do
			x = feistel32(p, (uint32_t)x);
		while (x >= p->domain);
		return x;
	}
	do
		x = feistel(p, x);
	while (x >= p->domain);
	return x;
}

size_t stego_carrier_offset(const struct stego_image *img, uint64_t c)
{
	unsigned colour =
	    (img->channels == 2 || img->channels == 4) ? img->channels - 1 : img->channels;
	unsigned bytes = img->bit_depth / 8;
	uint64_t pixel = c / colour, channel = c % colour;

	return (size_t)((pixel * img->channels + channel) * bytes + (bytes - 1));
}

size_t stego_capacity(const struct stego_image *img, enum stego_mode mode)
{
	uint64_t bytes = stego_image_carriers(img) / 8;
	size_t overhead = stego_payload_overhead(mode);

	return bytes > overhead ? (size_t)(bytes - overhead) : 0;
}

/* Random +-1 directions, drawn 512 at a time. */
struct coin {
	unsigned char pool[64];
	unsigned used;
};

static int coin_flip(struct coin *c)
{
	if (c->used == sizeof(c->pool) * 8) {
		randombytes_buf(c->pool, sizeof(c->pool));
		c->used = 0;
	}
	int bit = (c->pool[c->used / 8] >> (c->used % 8)) & 1;
	c->used++;
	return bit;
}

static void write_bit(struct stego_image *img, size_t off, int bit, struct coin *coin)
{
	unsigned char *s = img->pixels + off;

	if (img->bit_depth == 8) {
		unsigned v = s[0];

		if ((int)(v & 1) == bit)
			return;
		if (v == 0)
			v = 1;
		else if (v == 255)
			v = 254;
		else
			v = coin_flip(coin) ? v + 1 : v - 1;
		s[0] = (unsigned char)v;
	} else {
		unsigned v = ((unsigned)s[-1] << 8) | s[0];

		if ((int)(v & 1) == bit)
			return;
		if (v == 0)
			v = 1;
		else if (v == 65535)
			v = 65534;
		else
			v = coin_flip(coin) ? v + 1 : v - 1;
		s[-1] = (unsigned char)(v >> 8);
		s[0] = (unsigned char)v;
	}
}

static void length_mask(const unsigned char locate[32], unsigned char mask[STEGO_LENGTH_BYTES])
{
	static const unsigned char label[] = "postern-stego-length";

	crypto_generichash(mask, STEGO_LENGTH_BYTES, label, sizeof(label) - 1, locate, 32);
}

static void set_err(char *err, size_t errlen, const char *msg)
{
	if (err && errlen)
		snprintf(err, errlen, "%s", msg);
}

/*
 * Carrier offsets in stream order, computed LOOKAHEAD positions ahead with a
 * prefetch each: the carriers are scattered over the whole image, so every
 * access would otherwise wait for memory on its own.
 */
#define LOOKAHEAD 64

struct carrier_stream {
	const struct stego_image *img;
	const struct stego_perm *perm;
	uint64_t next, limit; /* next stream index to compute; never reach LIMIT */
	size_t ring[LOOKAHEAD];
	unsigned head, count;
};

static void stream_fill(struct carrier_stream *cs)
{
	while (cs->count < LOOKAHEAD && cs->next < cs->limit) {
		size_t off = stego_carrier_offset(cs->img, stego_perm_at(cs->perm, cs->next++));

		__builtin_prefetch(cs->img->pixels + off);
		cs->ring[(cs->head + cs->count++) % LOOKAHEAD] = off;
	}
}

static void stream_init(struct carrier_stream *cs, const struct stego_image *img,
			const struct stego_perm *perm, uint64_t limit)
{
	cs->img = img;
	cs->perm = perm;
	cs->next = 0;
	cs->limit = limit;
	cs->head = cs->count = 0;
	stream_fill(cs);
}

/* The next carrier's offset; the caller never asks for more than LIMIT. */
static size_t stream_next(struct carrier_stream *cs)
{
	size_t off = cs->ring[cs->head];

	cs->head = (cs->head + 1) % LOOKAHEAD;
	cs->count--;
	stream_fill(cs);
	return off;
}

int stego_embed(struct stego_image *img, const void *msg, size_t len,
		const struct stego_secret *secret, char *err, size_t errlen)
{
	unsigned char locate[32], encrypt[32], mask[STEGO_LENGTH_BYTES], head[STEGO_LENGTH_BYTES];
	unsigned char *body = NULL;
	size_t body_len = 0;
	struct stego_perm perm;
	struct coin coin = {{0}, sizeof(coin.pool) * 8};
	struct carrier_stream cs;
	int rc;

	if (img == NULL || img->pixels == NULL || secret == NULL || (msg == NULL && len > 0) ||
	    (secret->mode == STEGO_PUBLIC_KEY && secret->public_key == NULL)) {
		set_err(err, errlen, _("missing image, message or key"));
		return STEGO_ERR_ARG;
	}
	if (len > stego_capacity(img, secret->mode) ||
	    stego_image_carriers(img) / 8 < stego_payload_overhead(secret->mode)) {
		if (err && errlen)
			snprintf(err, errlen,
				 _("the cover holds at most %zu bytes, the message has %zu"),
				 stego_capacity(img, secret->mode), len);
		return STEGO_ERR_TOO_SMALL;
	}
	rc = stego_derive_keys(img, secret, secret->public_key, locate, encrypt);
	if (rc != STEGO_OK) {
		set_err(err, errlen, stego_strerror(rc));
		return rc;
	}
	rc = stego_payload_seal(secret, encrypt, msg, len, &body, &body_len);
	sodium_memzero(encrypt, sizeof(encrypt));
	if (rc != STEGO_OK) {
		set_err(err, errlen, stego_strerror(rc));
		return rc;
	}
	if (body_len + STEGO_LENGTH_BYTES != len + stego_payload_overhead(secret->mode) ||
	    body_len > UINT32_MAX) {
		free(body);
		set_err(err, errlen, _("unexpected size of the encrypted message"));
		return STEGO_ERR_CRYPTO;
	}
	length_mask(locate, mask);
	for (unsigned i = 0; i < STEGO_LENGTH_BYTES; i++)
		head[i] =
		    (unsigned char)((body_len >> (8 * (STEGO_LENGTH_BYTES - 1 - i))) ^ mask[i]);
	stego_perm_init(&perm, stego_image_carriers(img), locate);
	sodium_memzero(locate, sizeof(locate));
	stream_init(&cs, img, &perm, ((uint64_t)STEGO_LENGTH_BYTES + body_len) * 8);
	for (size_t i = 0; i < STEGO_LENGTH_BYTES + body_len; i++) {
		unsigned char byte =
		    i < STEGO_LENGTH_BYTES ? head[i] : body[i - STEGO_LENGTH_BYTES];

		for (int b = 7; b >= 0; b--)
			write_bit(img, stream_next(&cs), (byte >> b) & 1, &coin);
	}
	free(body);
	sodium_memzero(&perm, sizeof(perm));
	return STEGO_OK;
}

static unsigned char read_byte(struct carrier_stream *cs)
{
	unsigned char byte = 0;

	for (int b = 0; b < 8; b++)
		byte = (unsigned char)((byte << 1) | (cs->img->pixels[stream_next(cs)] & 1));
	return byte;
}

int stego_extract(const struct stego_image *img, const struct stego_secret *secret,
		  unsigned char **msg, size_t *msg_len, char *err, size_t errlen)
{
	unsigned char locate[32], encrypt[32], mask[STEGO_LENGTH_BYTES];
	const unsigned char *pub = NULL;
	struct stego_perm perm;
	uint64_t carriers, body_len = 0;
	struct carrier_stream cs;
	unsigned char *body;
	int rc;

	if (img == NULL || img->pixels == NULL || secret == NULL || msg == NULL ||
	    msg_len == NULL || (secret->mode == STEGO_PUBLIC_KEY && secret->user_key == NULL)) {
		set_err(err, errlen, _("missing image or key"));
		return STEGO_ERR_ARG;
	}
	if (secret->mode == STEGO_PUBLIC_KEY)
		pub = user_key_public(secret->user_key);
	carriers = stego_image_carriers(img);
	if (carriers < 8 * (uint64_t)stego_payload_overhead(secret->mode)) {
		set_err(err, errlen, stego_strerror(STEGO_ERR_NO_MESSAGE));
		return STEGO_ERR_NO_MESSAGE;
	}
	rc = stego_derive_keys(img, secret, pub, locate, encrypt);
	if (rc != STEGO_OK) {
		set_err(err, errlen, stego_strerror(rc));
		return rc;
	}
	length_mask(locate, mask);
	stego_perm_init(&perm, carriers, locate);
	sodium_memzero(locate, sizeof(locate));
	stream_init(&cs, img, &perm, carriers);
	for (unsigned i = 0; i < STEGO_LENGTH_BYTES; i++)
		body_len = (body_len << 8) | (read_byte(&cs) ^ mask[i]);
	/* A wrong key reads a random length: anything that cannot fit is no message. */
	if (body_len + STEGO_LENGTH_BYTES < stego_payload_overhead(secret->mode) ||
	    (body_len + STEGO_LENGTH_BYTES) * 8 > carriers) {
		sodium_memzero(encrypt, sizeof(encrypt));
		set_err(err, errlen, stego_strerror(STEGO_ERR_NO_MESSAGE));
		return STEGO_ERR_NO_MESSAGE;
	}
	body = malloc(body_len ? (size_t)body_len : 1);
	if (body == NULL) {
		sodium_memzero(encrypt, sizeof(encrypt));
		set_err(err, errlen, stego_strerror(STEGO_ERR_NOMEM));
		return STEGO_ERR_NOMEM;
	}
	for (uint64_t i = 0; i < body_len; i++)
		body[i] = read_byte(&cs);
	rc = stego_payload_open(secret, encrypt, body, (size_t)body_len, msg, msg_len);
	sodium_memzero(encrypt, sizeof(encrypt));
	sodium_memzero(&perm, sizeof(perm));
	free(body);
	if (rc != STEGO_OK)
		set_err(err, errlen, stego_strerror(rc));
	return rc;
}

int stego_embed_png(const unsigned char *cover, size_t cover_len, const void *msg, size_t len,
		    const struct stego_secret *secret, unsigned char **out, size_t *out_len,
		    char *err, size_t errlen)
{
	struct stego_image img;
	int rc = stego_png_read(cover, cover_len, &img, err, errlen);

	if (rc != STEGO_OK)
		return rc;
	rc = stego_embed(&img, msg, len, secret, err, errlen);
	if (rc == STEGO_OK)
		rc = stego_png_write(&img, out, out_len, err, errlen);
	stego_image_free(&img);
	/* The cover's text, time and colour-space chunks go along. */
	if (rc == STEGO_OK) {
		rc = stego_png_copy_ancillary(cover, cover_len, out, out_len, err, errlen);
		if (rc != STEGO_OK) {
			free(*out);
			*out = NULL;
		}
	}
	return rc;
}

int stego_extract_png(const unsigned char *png, size_t png_len, const struct stego_secret *secret,
		      unsigned char **msg, size_t *msg_len, char *err, size_t errlen)
{
	struct stego_image img;
	int rc = stego_png_read(png, png_len, &img, err, errlen);

	if (rc != STEGO_OK)
		return rc;
	rc = stego_extract(&img, secret, msg, msg_len, err, errlen);
	stego_image_free(&img);
	return rc;
}

const char *stego_strerror(int status)
{
	switch (status) {
	case STEGO_OK:
		return _("success");
	case STEGO_ERR_ARG:
		return _("invalid argument");
	case STEGO_ERR_NOT_PNG:
		return _("not a PNG image");
	case STEGO_ERR_CORRUPT:
		return _("damaged or truncated PNG image");
	case STEGO_ERR_TOO_LARGE:
		return _("the image is larger than the limits");
	case STEGO_ERR_TOO_SMALL:
		return _("the cover image is too small for the message");
	case STEGO_ERR_NO_MESSAGE:
		return _("no hidden message for this key (wrong key, or the image was altered)");
	case STEGO_ERR_NOMEM:
		return _("out of memory");
	case STEGO_ERR_CRYPTO:
		return _("encryption failed");
	default:
		return _("unknown error");
	}
}
