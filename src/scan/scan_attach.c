/*
 * scan_attach.c - attachments: declared name and type against the type the
 * bytes show (magic numbers), executables, double extensions, macro-enabled
 * Office documents, encrypted archives, the EICAR test file, and a content
 * hash feature (the same payload sent to many people is a strong signal).
 *
 * Looks only at the first SCAN_MAX_PART_BYTES of a part.
 */
#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "scan/scan_int.h"

#define ZIP_MAX_ENTRIES 64
#define ATTACH_HASH_BYTES (64u * 1024)
#define EICAR_MAX_FILE 128 /* the test file may be padded with whitespace to this size */

static const char eicar[] = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

static const char *const exec_exts[] = {"exe", "scr", "com", "pif",  "bat",  "cmd", "vbs",
					"vbe", "js",  "jse", "wsf",  "wsh",  "hta", "msi",
					"jar", "ps1", "lnk", "cpl",  "reg",  "dll", "sys",
					"iso", "img", "vhd", "appx", "msix", "xll", "elf"};
static const char *const macro_exts[] = {"docm", "xlsm", "pptm", "dotm", "xltm",
					 "xlam", "ppam", "potm", "ppsm", "sldm"};
static const char *const doc_exts[] = {"pdf",  "doc",  "docx", "xls", "xlsx", "ppt", "pptx", "txt",
				       "jpg",  "jpeg", "png",  "gif", "zip",  "rar", "rtf",  "htm",
				       "html", "csv",  "odt",  "mp3", "mp4",  "wav"};

static int in_list(const char *ext, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcasecmp(ext, list[i]) == 0)
			return 1;
	return 0;
}
#define IN(ext, list) in_list((ext), (list), sizeof(list) / sizeof((list)[0]))

bool scan_is_eicar(const unsigned char *data, size_t len)
{
	size_t n = sizeof(eicar) - 1;
	size_t i = 0;
	/* Leading whitespace appears when the file is pasted into a body. */
	while (i < len && i < 16 && isspace(data[i]))
		i++;
	if (len - i < n || memcmp(data + i, eicar, n) != 0)
		return false;
	for (size_t k = i + n; k < len; k++) {
		if (k >= EICAR_MAX_FILE + i)
			return false;
		if (!isspace(data[k]) && data[k] != 0x1a)
			return false;
	}
	return true;
}

static const char *magic_type(const unsigned char *p, size_t len)
{
	if (len >= 2 && p[0] == 'M' && p[1] == 'Z')
		return "exe";
	if (len >= 4 && memcmp(p,
			       "\x7f"
			       "ELF",
			       4) == 0)
		return "elf";
	if (len >= 4 && memcmp(p, "PK\x03\x04", 4) == 0)
		return "zip";
	if (len >= 8 && memcmp(p, "\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", 8) == 0)
		return "ole";
	if (len >= 5 && memcmp(p, "%PDF-", 5) == 0)
		return "pdf";
	if (len >= 6 && memcmp(p, "Rar!\x1a\x07", 6) == 0)
		return "rar";
	if (len >= 6 && memcmp(p, "7z\xbc\xaf\x27\x1c", 6) == 0)
		return "7z";
	if (len >= 3 && memcmp(p, "\xff\xd8\xff", 3) == 0)
		return "jpeg";
	if (len >= 8 && memcmp(p, "\x89PNG\r\n\x1a\n", 8) == 0)
		return "png";
	if (len >= 4 && memcmp(p, "GIF8", 4) == 0)
		return "gif";
	if (len >= 5 && memcmp(p, "{\\rtf", 5) == 0)
		return "rtf";
	if (len >= 2 && p[0] == '#' && p[1] == '!')
		return "script";
	return "data";
}

static int memfind(const unsigned char *hay, size_t len, const void *needle, size_t n)
{
	if (n == 0 || len < n)
		return 0;
	for (size_t i = 0; i + n <= len; i++)
		if (hay[i] == ((const unsigned char *)needle)[0] && memcmp(hay + i, needle, n) == 0)
			return 1;
	return 0;
}

static const char *file_ext(const char *name)
{
	const char *dot = strrchr(name, '.');
	return dot && dot[1] ? dot + 1 : "";
}

static void check_name(struct scan_doc *d, const char *name, const char *where)
{
	char base[256];
	size_t o = 0;
	/* Drop the right-to-left override and trailing dots/spaces that hide
	 * the real extension. */
	for (size_t i = 0; name[i] && o + 1 < sizeof(base); i++) {
		if ((unsigned char)name[i] == 0xe2 && (unsigned char)name[i + 1] == 0x80 &&
		    ((unsigned char)name[i + 2] == 0xae || (unsigned char)name[i + 2] == 0x8f)) {
			scan_flag(d, SCAN_F_DOUBLE_EXT,
				  "attachment name %s uses a right-to-left override", where);
			i += 2;
			continue;
		}
		base[o++] = name[i];
	}
	while (o && (base[o - 1] == '.' || base[o - 1] == ' '))
		o--;
	base[o] = '\0';

	const char *ext = file_ext(base);
	if (*ext && strlen(ext) <= 8)
		scan_feat_str(d, "ax", ext);
	if (IN(ext, exec_exts))
		scan_flag(d, SCAN_F_EXECUTABLE, "executable attachment %s", where);
	if (IN(ext, macro_exts))
		scan_flag(d, SCAN_F_MACRO, "macro-enabled Office attachment %s", where);
	if (*ext && ext > base + 1) {
		char prev[16];
		const char *end = ext - 1;
		const char *p = end;
		while (p > base && p[-1] != '.')
			p--;
		size_t pl = (size_t)(end - p);
		/* "invoice.pdf      .exe" */
		while (pl && p[pl - 1] == ' ')
			pl--;
		if (p > base && pl && pl < sizeof(prev)) {
			memcpy(prev, p, pl);
			prev[pl] = '\0';
			if (IN(prev, doc_exts) && IN(ext, exec_exts))
				scan_flag(
				    d, SCAN_F_DOUBLE_EXT,
				    "attachment %s hides an executable behind a .%s extension",
				    where, prev);
		}
	}
}

/* Walks the local file headers of a ZIP: names, encryption, VBA projects. */
static void check_zip(struct scan_doc *d, const unsigned char *p, size_t len, const char *where)
{
	size_t off = 0;
	for (int n = 0; n < ZIP_MAX_ENTRIES && off + 30 <= len; n++) {
		if (memcmp(p + off, "PK\x03\x04", 4) != 0) {
			/* resync after entries whose size sits in a data descriptor */
			size_t k = off + 1;
			while (k + 4 <= len && memcmp(p + k, "PK\x03\x04", 4) != 0)
				k++;
			if (k + 30 > len)
				return;
			off = k;
		}
		unsigned flags = p[off + 6] | (unsigned)p[off + 7] << 8;
		size_t csize = p[off + 18] | (size_t)p[off + 19] << 8 | (size_t)p[off + 20] << 16 |
			       (size_t)p[off + 21] << 24;
		size_t nlen = p[off + 26] | (size_t)p[off + 27] << 8;
		size_t xlen = p[off + 28] | (size_t)p[off + 29] << 8;
		if (off + 30 + nlen > len)
			return;
		char name[256];
		size_t cl = nlen < sizeof(name) - 1 ? nlen : sizeof(name) - 1;
		memcpy(name, p + off + 30, cl);
		for (size_t i = 0; i < cl; i++)
			if (name[i] == '\0')
				name[i] = '?';
		name[cl] = '\0';
		if (flags & 1)
			scan_flag(d, SCAN_F_ENCRYPTED_ARCHIVE,
				  "attachment %s is an encrypted archive", where);
		const char *base = strrchr(name, '/');
		base = base ? base + 1 : name;
		if (strcasecmp(base, "vbaProject.bin") == 0)
			scan_flag(d, SCAN_F_MACRO, "Office attachment %s contains macros", where);
		else if (IN(file_ext(base), exec_exts))
			scan_flag(d, SCAN_F_EXECUTABLE, "archive %s contains the executable %s",
				  where, base);
		size_t next = off + 30 + nlen + xlen + csize;
		if (next <= off)
			return;
		off = next;
	}
}

void scan_attachment(struct scan_doc *d, const char *filename, const char *declared_type,
		     const unsigned char *data, size_t len)
{
	char where[160];
	if (filename && *filename)
		snprintf(where, sizeof(where), "\"%s\"", filename);
	else
		snprintf(where, sizeof(where), "of type %s",
			 declared_type ? declared_type : "unknown");

	if (declared_type)
		scan_feat_str(d, "at", declared_type);
	if (len > SCAN_MAX_PART_BYTES)
		len = SCAN_MAX_PART_BYTES;
	/* First, so that it is the first reason (the one a quarantine lists). */
	if (scan_is_eicar(data, len))
		scan_flag(d, SCAN_F_EICAR, "attachment %s is the EICAR test file", where);
	if (filename && *filename)
		check_name(d, filename, where);

	const char *magic = magic_type(data, len);
	scan_feat_str(d, "am", magic);
	if (strcmp(magic, "exe") == 0 || strcmp(magic, "elf") == 0)
		scan_flag(d, SCAN_F_EXECUTABLE, "attachment %s is a program (%s)", where, magic);
	else if (strcmp(magic, "zip") == 0)
		check_zip(d, data, len, where);
	else if (strcmp(magic, "ole") == 0 &&
		 (memfind(data, len, "_VBA_PROJECT", 12) ||
		  memfind(data, len, "_\0V\0B\0A\0_\0P\0R\0O\0J\0E\0C\0T", 23)))
		scan_flag(d, SCAN_F_MACRO, "Office attachment %s contains macros", where);

	/* The payload's identity: repeated campaigns share it. Its first
	 * ATTACH_HASH_BYTES and its size are identity enough, and cheap. */
	if (len) {
		unsigned char h[crypto_hash_sha256_BYTES];
		char hex[17];
		crypto_hash_sha256_state hs;
		unsigned char size_le[8];
		for (int i = 0; i < 8; i++)
			size_le[i] = (unsigned char)((uint64_t)len >> (8 * i));
		crypto_hash_sha256_init(&hs);
		crypto_hash_sha256_update(&hs, data,
					  len < ATTACH_HASH_BYTES ? len : ATTACH_HASH_BYTES);
		crypto_hash_sha256_update(&hs, size_le, sizeof(size_le));
		crypto_hash_sha256_final(&hs, h);
		sodium_bin2hex(hex, sizeof(hex), h, 8);
		scan_feat_str(d, "ah", hex);
	}
}
