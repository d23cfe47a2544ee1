/*
 * admin_client.c - the client side of the admin socket (posternctl status,
 * trace): one request line out, answer lines in, each handed to a callback.
 */
#include <config.h>

#include "trace/admin.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/i18n.h"

/* Longest answer line accepted: a trace event is at most TRACE_JSON_MAX. */
#define ADMIN_CLIENT_MAX_LINE (64 * 1024)

static int send_all(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

int admin_request(const char *socket_path, const char *request_json,
		  int (*line_cb)(void *arg, const char *line), void *arg, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	char *buf = NULL;
	size_t used = 0;
	int fd, result = -1;

	if (strlen(socket_path) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, _("admin socket path is too long: %s"), socket_path);
		return -1;
	}
	if (strchr(request_json, '\n') != NULL) {
		snprintf(err, errlen, "%s", _("an admin request must be a single line"));
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, _("cannot create a socket: %s"), strerror(errno));
		return -1;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, socket_path, strlen(socket_path) + 1);
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		snprintf(err, errlen, _("cannot reach posternd at %s: %s"), socket_path,
			 strerror(errno));
		close(fd);
		return -1;
	}
	if (send_all(fd, request_json, strlen(request_json)) < 0 || send_all(fd, "\n", 1) < 0) {
		snprintf(err, errlen, _("cannot send to posternd at %s: %s"), socket_path,
			 strerror(errno));
		close(fd);
		return -1;
	}
	buf = malloc(ADMIN_CLIENT_MAX_LINE + 1);
	if (buf == NULL) {
		snprintf(err, errlen, "%s", _("out of memory"));
		close(fd);
		return -1;
	}

	for (;;) {
		ssize_t n = read(fd, buf + used, ADMIN_CLIENT_MAX_LINE - used);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, errlen, _("lost the connection to posternd: %s"),
				 strerror(errno));
			break;
		}
		if (n == 0) {
			if (used > 0) {
				snprintf(
				    err, errlen, "%s",
				    _("posternd closed the connection in the middle of a line"));
				break;
			}
			result = 0;
			break;
		}
		used += (size_t)n;

		/* Hand over every complete line. */
		char *start = buf, *nl;
		int stop = 0;
		while (!stop && (nl = memchr(start, '\n', used - (size_t)(start - buf))) != NULL) {
			*nl = '\0';
			stop = line_cb(arg, start) != 0;
			start = nl + 1;
		}
		if (stop) {
			result = 0;
			break;
		}
		used -= (size_t)(start - buf);
		memmove(buf, start, used);
		if (used == ADMIN_CLIENT_MAX_LINE) {
			snprintf(err, errlen, "%s", _("posternd sent a line that is too long"));
			break;
		}
	}
	free(buf);
	close(fd);
	return result;
}
