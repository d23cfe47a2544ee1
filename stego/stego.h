/*
 * stego.h - hides an encrypted message inside a PNG image.
 *
 * The message is always encrypted and authenticated before it touches the
 * image: with a key derived from a password (Argon2id, XChaCha20-Poly1305),
 * or sealed to a Postern user's X25519 public key (crypto_seal). The bits
 * go into the least significant bits of the colour samples (alpha is never
 * touched) at positions drawn from a keyed pseudo-random permutation, and
 * each bit is written by +-1 embedding (LSB matching), which leaves the pair
 * structure of the histogram alone so the chi-square attack finds nothing.
 * See docs/stego.md for the format and its limits.
 *
 * Every function returns STEGO_OK (0) or a negative enum stego_status;
 * stego_strerror() gives a translated sentence for it and ERR (when not
 * NULL) gets a more precise one. Buffers returned through pointers are
 * malloc'd and owned by the caller.
 */
#ifndef POSTERN_STEGO_H
#define POSTERN_STEGO_H

#include <stddef.h>
#include <stdint.h>

struct user_key;

enum stego_status {
	STEGO_OK = 0,
	STEGO_ERR_ARG = -1,	   /* a bad argument (programming error or empty secret) */
	STEGO_ERR_NOT_PNG = -2,	   /* the data does not start with the PNG signature */
	STEGO_ERR_CORRUPT = -3,	   /* a damaged or truncated PNG */
	STEGO_ERR_TOO_LARGE = -4,  /* dimensions or size over the limits below */
	STEGO_ERR_TOO_SMALL = -5,  /* the cover cannot hold the message */
	STEGO_ERR_NO_MESSAGE = -6, /* wrong key, no hidden message, or an altered image */
	STEGO_ERR_NOMEM = -7,
	STEGO_ERR_CRYPTO = -8, /* libsodium failed (not a wrong key) */
};

/* Limits against decompression bombs: memory stays under about
 * STEGO_MAX_PIXELS * 8 bytes for the pixels. */
#define STEGO_MAX_DIMENSION 32768u
#define STEGO_MAX_PIXELS (64u * 1024 * 1024)
#define STEGO_MAX_FILE_SIZE (512u * 1024 * 1024)

/* Bytes the encryption adds: 4 (length) + 24 (nonce) + 16 (tag) for a
 * password; 4 + crypto_seal's 121 for a public key. */
#define STEGO_PASSWORD_OVERHEAD 44u
#define STEGO_SEAL_OVERHEAD 125u

/* A decoded image: 8 or 16 bits per sample, 1 to 4 channels, rows packed
 * (16-bit samples big-endian, as in PNG). Palette images are expanded to
 * RGB(A), gray below 8 bits to 8 bits. */
struct stego_image {
	uint32_t width, height;
	unsigned channels;     /* 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA */
	unsigned bit_depth;    /* 8 or 16 */
	unsigned char *pixels; /* height * width * channels * bit_depth/8 bytes */
};

int stego_png_read(const unsigned char *data, size_t len, struct stego_image *img, char *err,
		   size_t errlen);
/* A non-interlaced PNG of the same type and depth. */
int stego_png_write(const struct stego_image *img, unsigned char **out, size_t *out_len, char *err,
		    size_t errlen);
void stego_image_free(struct stego_image *img);
/*
 * Puts the metadata chunks of COVER (tEXt, zTXt, iTXt, tIME, eXIf, pHYs,
 * gAMA, cHRM, sRGB, iCCP; byte for byte, those with a correct CRC, at most
 * 16 MiB) into *PNG, a file from stego_png_write(), right after its IHDR.
 * *PNG is replaced (and the old buffer freed) when something was copied.
 */
int stego_png_copy_ancillary(const unsigned char *cover, size_t cover_len, unsigned char **png,
			     size_t *png_len, char *err, size_t errlen);

/* Number of samples that may carry a bit (every sample that is not alpha). */
uint64_t stego_image_carriers(const struct stego_image *img);

enum stego_mode { STEGO_PASSWORD, STEGO_PUBLIC_KEY };

/*
 * The secret. To embed with STEGO_PUBLIC_KEY, set PUBLIC_KEY; to extract,
 * set USER_KEY (the unlocked key of the recipient).
 */
struct stego_secret {
	enum stego_mode mode;
	const char *password;
	size_t password_len;
	const unsigned char *public_key; /* 32 bytes */
	const struct user_key *user_key;
};

/* Largest message (bytes) that IMG holds in MODE; 0 when not even an empty one fits. */
size_t stego_capacity(const struct stego_image *img, enum stego_mode mode);

/* Hides MSG in IMG (changed in place). */
int stego_embed(struct stego_image *img, const void *msg, size_t len,
		const struct stego_secret *secret, char *err, size_t errlen);
/* Finds and decrypts the message (*MSG malloc'd, wiped by the caller before free). */
int stego_extract(const struct stego_image *img, const struct stego_secret *secret,
		  unsigned char **msg, size_t *msg_len, char *err, size_t errlen);

/* The same on encoded PNG files. */
int stego_embed_png(const unsigned char *cover, size_t cover_len, const void *msg, size_t len,
		    const struct stego_secret *secret, unsigned char **out, size_t *out_len,
		    char *err, size_t errlen);
int stego_extract_png(const unsigned char *png, size_t png_len, const struct stego_secret *secret,
		      unsigned char **msg, size_t *msg_len, char *err, size_t errlen);

const char *stego_strerror(int status);

/* ---- the keyed permutation (embed.c), exposed for tests and analysis ---- */
struct stego_perm {
	uint64_t domain;		/* number of carriers */
	uint64_t left_size, right_size; /* a and b of the Feistel network, a * b >= domain */
	unsigned char key[16];
};
void stego_perm_init(struct stego_perm *p, uint64_t domain, const unsigned char key[32]);
/* The I-th position (I < domain): a bijection of [0, domain). */
uint64_t stego_perm_at(const struct stego_perm *p, uint64_t i);
/* Byte offset of carrier C in IMG's pixels (the byte whose low bit is the LSB). */
size_t stego_carrier_offset(const struct stego_image *img, uint64_t c);

/*
 * Derives the locating key and, for a password, the encryption key, exactly
 * as embed and extract do. PUBLIC_KEY is the recipient's (STEGO_PUBLIC_KEY).
 */
int stego_derive_keys(const struct stego_image *img, const struct stego_secret *secret,
		      const unsigned char *public_key, unsigned char locate[32],
		      unsigned char encrypt[32]);

/* ---- steganalysis (analysis.c), for tests and bench/stego ---- */
/*
 * Westfeld-Pfitzmann chi-square over the pairs of values (2i, 2i+1) of the
 * colour samples' low bytes. *STAT is the statistic divided by its degrees of
 * freedom (large for a cover whose histogram has structure, shrinking toward
 * 1 as LSB replacement equalises the pairs); the return value is the
 * probability the attack gives to "a message is embedded" (near 1 means
 * detected).
 */
double stego_chi_square(const struct stego_image *img, double *stat);
/*
 * RS analysis: the estimated fraction of colour samples carrying message
 * bits by LSB replacement (about 0 for a cover; about the embedding rate for
 * replacement). Groups are four horizontally adjacent samples of a channel.
 */
double stego_rs_estimate(const struct stego_image *img);

#endif
