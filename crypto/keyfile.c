/*
 * keyfile.c - key files on disk and the server's queue key.
 *
 * A key file is one text line "LABEL: <base64>" so an admin can tell a
 * recovery public key from a private one at a glance; '#' lines are comments.
 * Files are written to a temporary file in the same directory (created 0600
 * by mkstemp), fsync'd, then renamed into place (replace) or hard-linked
 * (create-only, which fails with EEXIST if someone else was first). A reader
 * therefore never sees a half-written key, and private keys are never
 * readable by others, not even for a moment.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "crypto/crypto.h"
#include "crypto/crypto_internal.h"

#define KEY_FILE_MAX 4096 /* bytes; a key file is one short line */
#define KEY_LABEL_MAX 64
#define KEY_BYTES_MAX 1024
#define QUEUE_KEY_LABEL "postern-queue-private"

static int label_valid(const char *label)
{
	size_t n = 0;

	if (label == NULL)
		return 0;
	for (; label[n] != '\0'; n++) {
		char c = label[n];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
			return 0;
	}
	return n > 0 && n <= KEY_LABEL_MAX;
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static void sync_parent_dir(const char *path)
{
	char dir[CRYPTO_PATH_MAX];
	const char *slash = strrchr(path, '/');
	int fd;

	if (slash == NULL) {
		strcpy(dir, ".");
	} else if (slash == path) {
		strcpy(dir, "/");
	} else {
		size_t n = (size_t)(slash - path);

		if (n >= sizeof(dir))
			return;
		memcpy(dir, path, n);
		dir[n] = '\0';
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		(void)fsync(fd); /* best effort: the rename is already atomic */
		close(fd);
	}
}

int crypto_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
			     int exclusive)
{
	char tmp[CRYPTO_PATH_MAX];
	int fd, saved;

	if (path == NULL ||
	    (size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >= sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = mkstemp(tmp); /* mode 0600 from the start */
	if (fd < 0)
		return -1;
	if (fchmod(fd, mode) < 0 || write_all(fd, data, len) < 0 || fsync(fd) < 0)
		goto fail;
	if (close(fd) < 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (exclusive) {
		if (link(tmp, path) < 0)
			goto fail;
		unlink(tmp);
	} else if (rename(tmp, path) < 0) {
		goto fail;
	}
	sync_parent_dir(path);
	return 0;
fail:
	saved = errno;
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	errno = saved;
	return -1;
}

static int key_file_put(const char *path, const char *label, const unsigned char *key, size_t len,
			int exclusive)
{
	char line[KEY_LABEL_MAX + 4 +
		  sodium_base64_ENCODED_LEN(KEY_BYTES_MAX, sodium_base64_VARIANT_ORIGINAL)];
	size_t n;
	mode_t mode;
	int rc, saved;

	if (!label_valid(label) || key == NULL || len == 0 || len > KEY_BYTES_MAX ||
	    crypto_setup() < 0) {
		errno = EINVAL;
		return -1;
	}
	n = (size_t)snprintf(line, sizeof(line), "%s: ", label);
	sodium_bin2base64(line + n, sizeof(line) - n, key, len, sodium_base64_VARIANT_ORIGINAL);
	n += strlen(line + n);
	line[n++] = '\n';
	mode = strstr(label, "public") != NULL ? 0644 : 0600;
	rc = crypto_file_write_atomic(path, line, n, mode, exclusive);
	saved = errno;
	sodium_memzero(line, sizeof(line));
	errno = saved;
	return rc;
}

int crypto_key_file_write(const char *path, const char *label, const unsigned char *key, size_t len)
{
	return key_file_put(path, label, key, len, 0);
}

int crypto_key_file_create(const char *path, const char *label, const unsigned char *key,
			   size_t len)
{
	return key_file_put(path, label, key, len, 1);
}

/* Finds "LABEL: value" in TEXT and decodes value into KEY (exactly LEN bytes). */
static int key_file_parse(char *text, const char *label, unsigned char *key, size_t len)
{
	size_t label_len = strlen(label);
	char *line, *save = NULL;

	for (line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		size_t bin_len = 0, vlen;
		const char *end = NULL;
		char *value;

		if (line[0] == '#' || line[0] == '\0' || line[0] == '\r')
			continue;
		if (strncmp(line, label, label_len) != 0 || line[label_len] != ':')
			return -1;
		value = line + label_len + 1;
		while (*value == ' ' || *value == '\t')
			value++;
		vlen = strlen(value);
		while (vlen > 0 && (value[vlen - 1] == '\r' || value[vlen - 1] == ' ' ||
				    value[vlen - 1] == '\t'))
			vlen--;
		if (sodium_base642bin(key, len, value, vlen, NULL, &bin_len, &end,
				      sodium_base64_VARIANT_ORIGINAL) != 0 ||
		    end != value + vlen || bin_len != len) {
			sodium_memzero(key, len);
			return -1;
		}
		return 0;
	}
	return -1;
}

int crypto_key_file_read(const char *path, const char *label, unsigned char *key, size_t len)
{
	char buf[KEY_FILE_MAX + 1];
	size_t used = 0;
	int fd, rc;

	if (path == NULL || !label_valid(label) || key == NULL || len == 0 || len > KEY_BYTES_MAX ||
	    crypto_setup() < 0) {
		errno = EINVAL;
		return -1;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -1;
	for (;;) {
		ssize_t n = read(fd, buf + used, sizeof(buf) - 1 - used);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int saved = errno;

			close(fd);
			sodium_memzero(buf, sizeof(buf));
			errno = saved;
			return -1;
		}
		if (n == 0)
			break;
		used += (size_t)n;
		if (used == sizeof(buf) - 1)
			break;
	}
	close(fd);
	buf[used] = '\0';
	if (used == sizeof(buf) - 1 || memchr(buf, '\0', used) != NULL)
		rc = -1; /* too large or binary: not a key file of ours */
	else
		rc = key_file_parse(buf, label, key, len);
	sodium_memzero(buf, sizeof(buf));
	if (rc < 0)
		errno = EINVAL;
	return rc;
}

int crypto_server_key_load(const char *path, struct user_key **out)
{
	unsigned char priv[CRYPTO_PRIVATE_KEY_BYTES];
	unsigned char pub[crypto_box_PUBLICKEYBYTES];
	int rc = -1;

	if (out == NULL || path == NULL || crypto_setup() < 0) {
		errno = EINVAL;
		return -1;
	}
	*out = NULL;
	if (crypto_key_file_read(path, QUEUE_KEY_LABEL, priv, sizeof(priv)) == 0)
		goto have_key;
	if (errno != ENOENT)
		goto out;
	if (crypto_box_keypair(pub, priv) != 0)
		goto out;
	if (crypto_key_file_create(path, QUEUE_KEY_LABEL, priv, sizeof(priv)) < 0) {
		/* Another process created it first: use theirs. */
		if (errno != EEXIST ||
		    crypto_key_file_read(path, QUEUE_KEY_LABEL, priv, sizeof(priv)) < 0)
			goto out;
	}
have_key:
	*out = user_key_from_private(priv);
	if (*out == NULL)
		errno = ENOMEM;
	else
		rc = 0;
out:
	sodium_memzero(priv, sizeof(priv));
	return rc;
}
