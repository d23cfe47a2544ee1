/*
 * tool.c - postern-stego: hides a file in a PNG image, finds it again, and
 * tells how much a cover holds.
 *
 *   postern-stego embed --cover IN.png --in FILE --out OUT.png
 *                       (--password | --to USER -c CONFIG)
 *   postern-stego extract --in IMAGE.png --out FILE
 *                       (--password | --user USER -c CONFIG)
 *   postern-stego capacity --cover IN.png
 *
 * Passwords come from a prompt without echo on a terminal, or as one line on
 * standard input. With --to, the recipient's public key comes from the
 * Postern store named by the config; with --user, the user's password
 * unlocks their private key from the store (crypto_user_unlock). Exit
 * status: 0 success, 1 failure, 2 usage error.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "stego/stego.h"
#include "store/store.h"
#include "util/config.h"
#include "util/i18n.h"

#define PASSWORD_MAX 1024
#define MESSAGE_FILE_MAX (256u * 1024 * 1024)
#define EXIT_USAGE 2

struct options {
	const char *cover, *in, *out, *to, *user, *config;
	bool password;
};

static void usage(FILE *f)
{
	fputs(_("Usage:\n"
		"  postern-stego embed --cover IN.png --in FILE --out OUT.png\n"
		"                      (--password | --to USER -c CONFIG)\n"
		"  postern-stego extract --in IMAGE.png --out FILE\n"
		"                      (--password | --user USER -c CONFIG)\n"
		"  postern-stego capacity --cover IN.png\n"
		"Passwords are asked without echo, or read as one line from standard input.\n"),
	      f);
}

static void fail(const char *what, const char *why)
{
	fprintf(stderr, "postern-stego: %s: %s\n", what, why);
}

/* Reads PATH whole, refusing more than MAX bytes. */
static int read_file(const char *path, size_t max, unsigned char **out, size_t *out_len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf = NULL;
	size_t len = 0, cap = 0;

	if (f == NULL) {
		fail(path, strerror(errno));
		return -1;
	}
	for (;;) {
		size_t n;

		if (len == cap) {
			unsigned char *p;

			if (cap >= max + 1) {
				fail(path, _("the file is too large"));
				goto fail;
			}
			cap = cap ? cap * 2 : 65536;
			if (cap > max + 1)
				cap = max + 1;
			p = realloc(buf, cap);
			if (p == NULL) {
				fail(path, _("out of memory"));
				goto fail;
			}
			buf = p;
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
		if (n == 0)
			break;
	}
	if (ferror(f)) {
		fail(path, strerror(errno));
		goto fail;
	}
	if (len > max) {
		fail(path, _("the file is too large"));
		goto fail;
	}
	fclose(f);
	*out = buf;
	*out_len = len;
	return 0;
fail:
	fclose(f);
	free(buf);
	return -1;
}

/* Writes DATA to PATH through a temporary file renamed into place, with MODE. */
static int write_file(const char *path, const unsigned char *data, size_t len, mode_t mode)
{
	char tmp[CONFIG_PATH_MAX + 16];
	size_t off = 0;
	int fd;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmpXXXXXX", path) >= sizeof(tmp)) {
		fail(path, _("path too long"));
		return -1;
	}
	fd = mkstemp(tmp);
	if (fd < 0) {
		fail(path, strerror(errno));
		return -1;
	}
	while (off < len) {
		ssize_t n = write(fd, data + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fail(path, strerror(errno));
			goto fail;
		}
		off += (size_t)n;
	}
	if (fchmod(fd, mode) != 0 || fsync(fd) != 0) {
		fail(path, strerror(errno));
		goto fail;
	}
	close(fd);
	fd = -1;
	if (rename(tmp, path) != 0) {
		fail(path, strerror(errno));
		goto fail;
	}
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return -1;
}

/* One line from FD into BUF (sodium-guarded by the caller); -1 when empty input or too long. */
static ssize_t read_line(int fd, char *buf, size_t len)
{
	size_t n = 0;
	bool any = false;
	char c;

	for (;;) {
		ssize_t r = read(fd, &c, 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0 || c == '\n') {
			any = any || r > 0;
			break;
		}
		any = true;
		if (n + 1 >= len) {
			sodium_memzero(buf, len);
			return -1;
		}
		buf[n++] = c;
	}
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	return any ? (ssize_t)n : -1;
}

static ssize_t prompt_line(const char *prompt, char *buf, size_t len)
{
	struct termios old, quiet;
	bool restore = false;
	ssize_t n;

	if (tcgetattr(STDIN_FILENO, &old) == 0) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
		quiet.c_lflag |= ICANON;
		restore = tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == 0;
	}
	fputs(prompt, stderr);
	fflush(stderr);
	n = read_line(STDIN_FILENO, buf, len);
	if (restore)
		tcsetattr(STDIN_FILENO, TCSADRAIN, &old);
	fputc('\n', stderr);
	return n;
}

/* *OUT is sodium_malloc'd (PASSWORD_MAX bytes); CONFIRM asks twice on a terminal. */
static int get_password(const char *prompt, bool confirm, char **out, size_t *out_len)
{
	char *buf = sodium_malloc(PASSWORD_MAX);
	ssize_t n;

	if (buf == NULL) {
		fail("postern-stego", _("out of memory"));
		return -1;
	}
	if (!isatty(STDIN_FILENO)) {
		n = read_line(STDIN_FILENO, buf, PASSWORD_MAX);
	} else {
		n = prompt_line(prompt, buf, PASSWORD_MAX);
		if (n > 0 && confirm) {
			char *again = sodium_malloc(PASSWORD_MAX);
			ssize_t m =
			    again ? prompt_line(_("Repeat password: "), again, PASSWORD_MAX) : -1;

			if (m != n || sodium_memcmp(buf, again, (size_t)n) != 0) {
				fail("postern-stego", _("the passwords do not match"));
				n = -2;
			}
			sodium_free(again);
		}
	}
	if (n == -1)
		fail("postern-stego", _("no password (one line of at most 1023 bytes expected)"));
	else if (n == 0)
		fail("postern-stego", _("the password must not be empty"));
	if (n <= 0) {
		sodium_free(buf);
		return -1;
	}
	*out = buf;
	*out_len = (size_t)n;
	return 0;
}

/* Opens the store of CONFIG and reads USER (an address or an alias). */
static int load_user(const char *config_path, const char *user, struct store_user *u)
{
	static struct config cfg;
	char err[512], address[STORE_ADDRESS_MAX + 1];
	struct store *st;
	int rc;

	if (config_path == NULL) {
		fail("postern-stego", _("--to and --user need the Postern config (-c CONFIG)"));
		return -1;
	}
	if (config_load(config_path, &cfg, err, sizeof(err)) != 0) {
		fail("postern-stego", err);
		return -1;
	}
	st = store_open(&cfg.store, err, sizeof(err));
	if (st == NULL) {
		fail("postern-stego", err);
		return -1;
	}
	rc = store_resolve_address(st, user, address);
	if (rc == STORE_OK)
		rc = store_user_get(st, address, u);
	if (rc == STORE_NOTFOUND)
		fail(user, _("no such user"));
	else if (rc != STORE_OK)
		fail(user, store_error(st));
	store_close(st);
	return rc == STORE_OK ? 0 : -1;
}

static int cmd_capacity(const struct options *o)
{
	unsigned char *png;
	size_t len;
	struct stego_image img;
	char err[256];
	int rc;

	if (o->cover == NULL || o->in || o->out || o->to || o->user || o->password) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (read_file(o->cover, STEGO_MAX_FILE_SIZE, &png, &len) != 0)
		return EXIT_FAILURE;
	rc = stego_png_read(png, len, &img, err, sizeof(err));
	free(png);
	if (rc != STEGO_OK) {
		fail(o->cover, err);
		return EXIT_FAILURE;
	}
	printf(_("%zu bytes with a password\n"), stego_capacity(&img, STEGO_PASSWORD));
	printf(_("%zu bytes for a recipient key\n"), stego_capacity(&img, STEGO_PUBLIC_KEY));
	stego_image_free(&img);
	return EXIT_SUCCESS;
}

static int cmd_embed(const struct options *o)
{
	struct stego_secret secret = {0};
	struct store_user u = {0};
	unsigned char *cover = NULL, *msg = NULL, *out = NULL;
	size_t cover_len, msg_len = 0, out_len;
	char *password = NULL, err[256];
	int status = EXIT_FAILURE, rc;

	if (!o->cover || !o->in || !o->out || o->user || (o->password == (o->to != NULL))) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (read_file(o->cover, STEGO_MAX_FILE_SIZE, &cover, &cover_len) != 0 ||
	    read_file(o->in, MESSAGE_FILE_MAX, &msg, &msg_len) != 0)
		goto out;
	if (o->password) {
		if (get_password(_("Password: "), true, &password, &secret.password_len) != 0)
			goto out;
		secret.mode = STEGO_PASSWORD;
		secret.password = password;
	} else {
		if (load_user(o->config, o->to, &u) != 0)
			goto out;
		secret.mode = STEGO_PUBLIC_KEY;
		secret.public_key = u.public_key;
	}
	rc = stego_embed_png(cover, cover_len, msg, msg_len, &secret, &out, &out_len, err,
			     sizeof(err));
	if (rc != STEGO_OK) {
		fail(rc == STEGO_ERR_NOT_PNG || rc == STEGO_ERR_CORRUPT || rc == STEGO_ERR_TOO_LARGE
			 ? o->cover
			 : "postern-stego",
		     err);
		goto out;
	}
	if (write_file(o->out, out, out_len, 0644) == 0)
		status = EXIT_SUCCESS;
out:
	if (msg)
		sodium_memzero(msg, msg_len);
	free(msg);
	free(cover);
	free(out);
	if (password)
		sodium_free(password);
	store_user_clear(&u);
	return status;
}

static int cmd_extract(const struct options *o)
{
	struct stego_secret secret = {0};
	struct store_user u = {0};
	struct user_key *key = NULL;
	unsigned char *png = NULL, *msg = NULL;
	size_t png_len, msg_len = 0, pwlen = 0;
	char *password = NULL, err[256];
	int status = EXIT_FAILURE, rc;

	if (!o->in || !o->out || o->cover || o->to || (o->password == (o->user != NULL))) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (read_file(o->in, STEGO_MAX_FILE_SIZE, &png, &png_len) != 0)
		goto out;
	if (o->user && load_user(o->config, o->user, &u) != 0)
		goto out;
	if (get_password(_("Password: "), false, &password, &pwlen) != 0)
		goto out;
	if (o->password) {
		secret.mode = STEGO_PASSWORD;
		secret.password = password;
		secret.password_len = pwlen;
	} else {
		if (crypto_user_unlock(u.wrapped_key, u.wrapped_key_len, password, pwlen, &key) !=
		    0) {
			fail(o->user, _("wrong password"));
			goto out;
		}
		secret.mode = STEGO_PUBLIC_KEY;
		secret.user_key = key;
	}
	rc = stego_extract_png(png, png_len, &secret, &msg, &msg_len, err, sizeof(err));
	if (rc != STEGO_OK) {
		fail(o->in, err);
		goto out;
	}
	if (write_file(o->out, msg, msg_len, 0600) == 0)
		status = EXIT_SUCCESS;
out:
	if (msg)
		sodium_memzero(msg, msg_len);
	free(msg);
	free(png);
	if (password)
		sodium_free(password);
	user_key_free(key);
	store_user_clear(&u);
	return status;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"cover", required_argument, NULL, 'C'},
	    {"in", required_argument, NULL, 'i'},
	    {"out", required_argument, NULL, 'o'},
	    {"to", required_argument, NULL, 't'},
	    {"user", required_argument, NULL, 'u'},
	    {"config", required_argument, NULL, 'c'},
	    {"password", no_argument, NULL, 'p'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct options o = {0};
	const char *command;
	int c;

	i18n_init();
	if (crypto_setup() != 0) {
		fail("postern-stego", _("cannot initialise libsodium"));
		return EXIT_FAILURE;
	}
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	command = argv[1];
	if (strcmp(command, "--help") == 0 || strcmp(command, "-h") == 0 ||
	    strcmp(command, "help") == 0) {
		usage(stdout);
		return EXIT_SUCCESS;
	}
	optind = 2;
	while ((c = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'C':
			o.cover = optarg;
			break;
		case 'i':
			o.in = optarg;
			break;
		case 'o':
			o.out = optarg;
			break;
		case 't':
			o.to = optarg;
			break;
		case 'u':
			o.user = optarg;
			break;
		case 'c':
			o.config = optarg;
			break;
		case 'p':
			o.password = true;
			break;
		case 'h':
			usage(stdout);
			return EXIT_SUCCESS;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(command, "embed") == 0)
		return cmd_embed(&o);
	if (strcmp(command, "extract") == 0)
		return cmd_extract(&o);
	if (strcmp(command, "capacity") == 0)
		return cmd_capacity(&o);
	fprintf(stderr, _("postern-stego: unknown command \"%s\"\n"), command);
	usage(stderr);
	return EXIT_USAGE;
}
