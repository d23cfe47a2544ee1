/*
 * png_io.c - PNG decoding and encoding for stego (libpng), from and to memory.
 *
 * Every PNG type is accepted and normalised to 8- or 16-bit samples with 1-4
 * channels: palette images become RGB (RGBA when they carry transparency),
 * low-depth gray becomes 8-bit, interlaced images are deinterlaced. The
 * header is checked against STEGO_MAX_* before a single pixel row is
 * allocated, so a small file announcing a huge image (a decompression bomb)
 * fails fast. libpng reports errors through longjmp; they end up in ERR.
 *
 * The writer emits IHDR, IDAT and IEND only; stego_png_copy_ancillary()
 * then carries over the cover's metadata chunks that do not describe the
 * pixel encoding (text, time, physical size, colour space), byte for byte,
 * so the stego image looks like the file it came from.
 */
#include <config.h>

#include <png.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "stego/stego.h"
#include "util/i18n.h"

/* Ancillary chunks (text, ICC profiles) are not needed to decode; cap what
 * libpng may allocate for one. */
#define STEGO_CHUNK_MALLOC_MAX (8u * 1024 * 1024)
/* At most this much metadata is copied from a cover into its stego image. */
#define STEGO_ANCILLARY_MAX (16u * 1024 * 1024)

struct png_source {
	const unsigned char *data;
	size_t len, pos;
};

struct png_sink {
	unsigned char *data;
	size_t len, cap;
	int failed;
};

struct png_errctx {
	char msg[200];
};

static void on_png_error(png_structp png, png_const_charp msg)
{
	struct png_errctx *ctx = png_get_error_ptr(png);

	snprintf(ctx->msg, sizeof(ctx->msg), "%s", msg);
	png_longjmp(png, 1);
}

static void on_png_warning(png_structp png, png_const_charp msg)
{
	(void)png;
	(void)msg;
}

static void read_from_memory(png_structp png, png_bytep out, size_t n)
{
	struct png_source *src = png_get_io_ptr(png);

	if (n > src->len - src->pos)
		png_error(png, "truncated image");
	memcpy(out, src->data + src->pos, n);
	src->pos += n;
}

static void write_to_memory(png_structp png, png_bytep in, size_t n)
{
	struct png_sink *sink = png_get_io_ptr(png);

	if (sink->failed)
		return;
	if (n > sink->cap - sink->len) {
		size_t cap = sink->cap ? sink->cap : 65536;
		unsigned char *p;

		while (cap - sink->len < n) {
			if (cap > SIZE_MAX / 2) {
				sink->failed = 1;
				png_error(png, "output too large");
			}
			cap *= 2;
		}
		p = realloc(sink->data, cap);
		if (p == NULL) {
			sink->failed = 1;
			png_error(png, "out of memory");
		}
		sink->data = p;
		sink->cap = cap;
	}
	memcpy(sink->data + sink->len, in, n);
	sink->len += n;
}

static void flush_nothing(png_structp png)
{
	(void)png;
}

static void set_err(char *err, size_t errlen, const char *msg)
{
	if (err && errlen)
		snprintf(err, errlen, "%s", msg);
}

void stego_image_free(struct stego_image *img)
{
	if (img == NULL)
		return;
	free(img->pixels);
	img->pixels = NULL;
}

uint64_t stego_image_carriers(const struct stego_image *img)
{
	unsigned colour =
	    (img->channels == 2 || img->channels == 4) ? img->channels - 1 : img->channels;

	return (uint64_t)img->width * img->height * colour;
}

/* Sets up the transformations that turn any PNG into 8/16-bit gray, gray+alpha, RGB or RGBA. */
static void normalise(png_structp png, png_infop info)
{
	int color = png_get_color_type(png, info);
	/* 16-bit samples stay big-endian (libpng's default), as the writer expects. */
	int depth = png_get_bit_depth(png, info);

	if (color == PNG_COLOR_TYPE_PALETTE)
		png_set_palette_to_rgb(png);
	if (color == PNG_COLOR_TYPE_GRAY && depth < 8)
		png_set_expand_gray_1_2_4_to_8(png);
	if (png_get_valid(png, info, PNG_INFO_tRNS))
		png_set_tRNS_to_alpha(png);
	png_set_interlace_handling(png);
	png_read_update_info(png, info);
}

int stego_png_read(const unsigned char *data, size_t len, struct stego_image *img, char *err,
		   size_t errlen)
{
	struct png_source src = {data, len, 0};
	struct png_errctx ctx = {{0}};
	png_structp png;
	png_infop info;
	png_bytep *volatile rows = NULL;
	unsigned char *volatile pixels = NULL;
	volatile int status = STEGO_ERR_CORRUPT;
	uint32_t w, h;
	unsigned channels, depth;
	size_t rowbytes;

	memset(img, 0, sizeof(*img));
	if (data == NULL || len < 8 || png_sig_cmp(data, 0, 8) != 0) {
		set_err(err, errlen, _("not a PNG image"));
		return STEGO_ERR_NOT_PNG;
	}
	if (len > STEGO_MAX_FILE_SIZE) {
		set_err(err, errlen, _("the PNG file is larger than the limit"));
		return STEGO_ERR_TOO_LARGE;
	}
	/* The first chunk must be IHDR: check its dimensions before libpng reads further. */
	if (len >= 24 && memcmp(data + 12, "IHDR", 4) == 0) {
		uint32_t w0 = (uint32_t)data[16] << 24 | (uint32_t)data[17] << 16 |
			      (uint32_t)data[18] << 8 | data[19];
		uint32_t h0 = (uint32_t)data[20] << 24 | (uint32_t)data[21] << 16 |
			      (uint32_t)data[22] << 8 | data[23];

		if (w0 > STEGO_MAX_DIMENSION || h0 > STEGO_MAX_DIMENSION ||
		    (uint64_t)w0 * h0 > STEGO_MAX_PIXELS) {
			set_err(err, errlen, _("the image dimensions are over the limit"));
			return STEGO_ERR_TOO_LARGE;
		}
	}
	png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &ctx, on_png_error, on_png_warning);
	if (png == NULL)
		return STEGO_ERR_NOMEM;
	info = png_create_info_struct(png);
	if (info == NULL) {
		png_destroy_read_struct(&png, NULL, NULL);
		return STEGO_ERR_NOMEM;
	}
	if (setjmp(png_jmpbuf(png))) {
		if (status == STEGO_ERR_CORRUPT)
			if (err && errlen)
				snprintf(err, errlen, _("damaged or truncated PNG image: %s"),
					 ctx.msg);
		free(rows);
		free(pixels);
		png_destroy_read_struct(&png, &info, NULL);
		return status;
	}
	/* libpng's own limit is 1,000,000; ours is checked below with a precise error. */
	png_set_user_limits(png, 0x7fffffff, 0x7fffffff);
	png_set_chunk_malloc_max(png, STEGO_CHUNK_MALLOC_MAX);
	png_set_read_fn(png, &src, read_from_memory);
	png_read_info(png, info);
	w = png_get_image_width(png, info);
	h = png_get_image_height(png, info);
	if (w > STEGO_MAX_DIMENSION || h > STEGO_MAX_DIMENSION ||
	    (uint64_t)w * h > STEGO_MAX_PIXELS) {
		status = STEGO_ERR_TOO_LARGE;
		set_err(err, errlen, _("the image dimensions are over the limit"));
		png_error(png, "dimensions");
	}
	normalise(png, info);
	channels = png_get_channels(png, info);
	depth = png_get_bit_depth(png, info);
	rowbytes = png_get_rowbytes(png, info);
	if ((depth != 8 && depth != 16) || channels < 1 || channels > 4 ||
	    rowbytes != (size_t)w * channels * (depth / 8))
		png_error(png, "unexpected pixel layout");
	pixels = malloc(rowbytes * h);
	rows = malloc(sizeof(*rows) * h);
	if (pixels == NULL || rows == NULL) {
		status = STEGO_ERR_NOMEM;
		set_err(err, errlen, _("out of memory"));
		png_error(png, "out of memory");
	}
	for (uint32_t y = 0; y < h; y++)
		rows[y] = pixels + (size_t)y * rowbytes;
	png_read_image(png, rows);
	png_read_end(png, NULL);
	free(rows);
	png_destroy_read_struct(&png, &info, NULL);
	img->width = w;
	img->height = h;
	img->channels = channels;
	img->bit_depth = depth;
	img->pixels = pixels;
	return STEGO_OK;
}

static int color_type_of(unsigned channels)
{
	switch (channels) {
	case 1:
		return PNG_COLOR_TYPE_GRAY;
	case 2:
		return PNG_COLOR_TYPE_GRAY_ALPHA;
	case 3:
		return PNG_COLOR_TYPE_RGB;
	default:
		return PNG_COLOR_TYPE_RGB_ALPHA;
	}
}

int stego_png_write(const struct stego_image *img, unsigned char **out, size_t *out_len, char *err,
		    size_t errlen)
{
	struct png_sink sink = {NULL, 0, 0, 0};
	struct png_errctx ctx = {{0}};
	png_structp png;
	png_infop info;
	size_t rowbytes;

	if (img == NULL || img->pixels == NULL || out == NULL || out_len == NULL ||
	    img->channels < 1 || img->channels > 4 || (img->bit_depth != 8 && img->bit_depth != 16))
		return STEGO_ERR_ARG;
	rowbytes = (size_t)img->width * img->channels * (img->bit_depth / 8);
	png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &ctx, on_png_error, on_png_warning);
	if (png == NULL)
		return STEGO_ERR_NOMEM;
	info = png_create_info_struct(png);
	if (info == NULL) {
		png_destroy_write_struct(&png, NULL);
		return STEGO_ERR_NOMEM;
	}
	if (setjmp(png_jmpbuf(png))) {
		if (err && errlen)
			snprintf(err, errlen, _("cannot encode the PNG image: %s"), ctx.msg);
		png_destroy_write_struct(&png, &info);
		free(sink.data);
		return sink.failed ? STEGO_ERR_NOMEM : STEGO_ERR_CORRUPT;
	}
	png_set_write_fn(png, &sink, write_to_memory, flush_nothing);
	png_set_IHDR(png, info, img->width, img->height, (int)img->bit_depth,
		     color_type_of(img->channels), PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
		     PNG_FILTER_TYPE_DEFAULT);
	png_write_info(png, info);
	for (uint32_t y = 0; y < img->height; y++)
		png_write_row(png, img->pixels + (size_t)y * rowbytes);
	png_write_end(png, info);
	png_destroy_write_struct(&png, &info);
	*out = sink.data;
	*out_len = sink.len;
	return STEGO_OK;
}

/*
 * Chunks that stay true when only sample LSBs change and the image is
 * re-encoded as 8/16-bit gray/RGB(A) without a palette: text, time, EXIF,
 * physical pixel size, and the colour space (gamma, chromaticities, sRGB,
 * ICC profile), which palette expansion does not alter. Left out: PLTE,
 * tRNS, bKGD, hIST, sBIT, sPLT and unknown chunks, which describe the
 * original encoding. ONCE: at most one such chunk is allowed.
 */
static const struct {
	char name[5];
	bool once;
} kept_chunks[] = {
    {"tEXt", false}, {"zTXt", false}, {"iTXt", false}, {"tIME", true}, {"eXIf", true},
    {"pHYs", true},  {"gAMA", true},  {"cHRM", true},  {"sRGB", true}, {"iCCP", true},
};

#define KEPT_CHUNK_KINDS (sizeof(kept_chunks) / sizeof(kept_chunks[0]))

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/*
 * Walks COVER's chunks and calls back for each one to keep (OUT NULL:
 * only counts). Returns the bytes kept; stops before IEND, at damage, or
 * where STEGO_ANCILLARY_MAX would be passed.
 */
static size_t walk_ancillary(const unsigned char *cover, size_t cover_len, unsigned char *out)
{
	bool seen[KEPT_CHUNK_KINDS] = {false};
	size_t pos = 8, kept = 0;

	while (cover_len > pos && cover_len - pos >= 12) {
		uint32_t n = be32(cover + pos);
		const unsigned char *type = cover + pos + 4;
		size_t total, k;

		if (n > 0x7fffffffu || n > cover_len - pos - 12 || memcmp(type, "IEND", 4) == 0)
			break;
		total = (size_t)n + 12;
		for (k = 0; k < KEPT_CHUNK_KINDS; k++)
			if (memcmp(type, kept_chunks[k].name, 4) == 0)
				break;
		if (k < KEPT_CHUNK_KINDS && !(kept_chunks[k].once && seen[k]) &&
		    crc32(crc32(0L, Z_NULL, 0), type, (uInt)n + 4) == be32(type + 4 + n)) {
			if (total > STEGO_ANCILLARY_MAX - kept)
				break;
			seen[k] = true;
			if (out)
				memcpy(out + kept, cover + pos, total);
			kept += total;
		}
		pos += total;
	}
	return kept;
}

int stego_png_copy_ancillary(const unsigned char *cover, size_t cover_len, unsigned char **png,
			     size_t *png_len, char *err, size_t errlen)
{
	const size_t ihdr_end = 8 + 12 + 13; /* signature, IHDR chunk */
	size_t kept;
	unsigned char *out;

	if (cover == NULL || png == NULL || *png == NULL || png_len == NULL || cover_len < 8 ||
	    *png_len < ihdr_end || memcmp(*png + 12, "IHDR", 4) != 0)
		return STEGO_ERR_ARG;
	kept = walk_ancillary(cover, cover_len, NULL);
	if (kept == 0)
		return STEGO_OK;
	out = malloc(*png_len + kept);
	if (out == NULL) {
		set_err(err, errlen, _("out of memory"));
		return STEGO_ERR_NOMEM;
	}
	/* After IHDR is before PLTE and IDAT, where every kept chunk may be. */
	memcpy(out, *png, ihdr_end);
	walk_ancillary(cover, cover_len, out + ihdr_end);
	memcpy(out + ihdr_end + kept, *png + ihdr_end, *png_len - ihdr_end);
	free(*png);
	*png = out;
	*png_len += kept;
	return STEGO_OK;
}
