/*
 * queue_client.c - the SMTP client of outbound delivery (RFC 5321): one
 * blocking transaction per call, run on the queue runner's thread. EHLO
 * (HELO when refused), opportunistic STARTTLS (required for domains on the
 * TLS-required list), SIZE, 8BITMIME, SMTPUTF8 and DSN parameters when the
 * peer offers them, dot-stuffed DATA and QUIT. Every reply is bounded; a
 * peer that stalls runs into the timeout.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "queue/queue.h"

#define CLIENT_LINE_MAX 1024  /* longer reply lines are cut */
#define CLIENT_REPLY_LINES 64 /* lines of one multi-line reply */

struct client {
	int fd;
	SSL_CTX *ssl_ctx;
	SSL *ssl;
	char buf[4096];
	size_t off, len;
	/* EHLO keywords */
	bool starttls, size, eightbit, smtputf8, dsn, pipelining;
	size_t max_size;
};

struct reply {
	int code;
	char last[CLIENT_LINE_MAX];	    /* text of the last line */
	char lines[CLIENT_REPLY_LINES][80]; /* EHLO keywords (first word of each line) */
	char size_arg[32];
	size_t n_lines;
};

static void set_info(struct queue_reply_info *info, int code, const char *enhanced,
		     const char *text)
{
	info->code = code;
	snprintf(info->enhanced, sizeof(info->enhanced), "%.15s", enhanced);
	snprintf(info->text, sizeof(info->text), "%.511s", text);
}

static int connect_timeout(const struct sockaddr_storage *addr, unsigned timeout)
{
	socklen_t alen =
	    addr->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
	struct timeval tv = {.tv_sec = timeout, .tv_usec = 0};
	struct pollfd pfd;
	int fd, flags, soerr = 0, one = 1;
	socklen_t sl = sizeof(soerr);

	fd = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0)
		goto fail;
	if (connect(fd, (const struct sockaddr *)addr, alen) != 0) {
		if (errno != EINPROGRESS)
			goto fail;
		pfd.fd = fd;
		pfd.events = POLLOUT;
		if (poll(&pfd, 1, (int)timeout * 1000) != 1)
			goto fail;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0) {
			errno = soerr;
			goto fail;
		}
	}
	if (fcntl(fd, F_SETFL, flags) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0)
		goto fail;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
fail:
	close(fd);
	return -1;
}

static int client_fill(struct client *c)
{
	int n;

	if (c->off > 0) {
		memmove(c->buf, c->buf + c->off, c->len - c->off);
		c->len -= c->off;
		c->off = 0;
	}
	if (c->len == sizeof(c->buf))
		return -1;
	if (c->ssl)
		n = SSL_read(c->ssl, c->buf + c->len, (int)(sizeof(c->buf) - c->len));
	else
		n = (int)recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
	if (n <= 0)
		return -1;
	c->len += (size_t)n;
	return 0;
}

/* One line without its CRLF into LINE (cut at LINELEN - 1). 0 or -1. */
static int client_line(struct client *c, char *line, size_t linelen)
{
	size_t o = 0;

	for (;;) {
		while (c->off < c->len) {
			char ch = c->buf[c->off++];

			if (ch == '\n') {
				if (o > 0 && line[o - 1] == '\r')
					o--;
				line[o] = '\0';
				return 0;
			}
			if (o + 1 < linelen)
				line[o++] = ch;
		}
		if (client_fill(c) != 0)
			return -1;
	}
}

static int client_reply(struct client *c, struct reply *r)
{
	char line[CLIENT_LINE_MAX];

	r->n_lines = 0;
	r->size_arg[0] = '\0';
	for (size_t count = 0;; count++) {
		if (client_line(c, line, sizeof(line)) != 0)
			return -1;
		if (strlen(line) < 3 || line[0] < '1' || line[0] > '5' || line[1] < '0' ||
		    line[1] > '9' || line[2] < '0' || line[2] > '9' ||
		    (line[3] != '\0' && line[3] != ' ' && line[3] != '-'))
			return -1;
		r->code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
		snprintf(r->last, sizeof(r->last), "%s", line);
		if (line[3] != '\0' && r->n_lines < CLIENT_REPLY_LINES) {
			const char *kw = line + 4;
			size_t kwlen = strcspn(kw, " ");

			snprintf(r->lines[r->n_lines], sizeof(r->lines[0]), "%.*s", (int)kwlen, kw);
			if (strcasecmp(r->lines[r->n_lines], "SIZE") == 0 && kw[kwlen] == ' ')
				snprintf(r->size_arg, sizeof(r->size_arg), "%s", kw + kwlen + 1);
			r->n_lines++;
		}
		if (line[3] != '-')
			return 0;
		if (count > 1000)
			return -1;
	}
}

static int client_write(struct client *c, const char *p, size_t len)
{
	while (len > 0) {
		int n;

		if (c->ssl)
			n = SSL_write(c->ssl, p, (int)(len > 65536 ? 65536 : len));
		else
			n = (int)send(c->fd, p, len, MSG_NOSIGNAL);
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Sends LINE (CRLF added) and reads the reply. 0 or -1 on I/O failure. */
static int client_command(struct client *c, const char *line, struct reply *r)
{
	char buf[CLIENT_LINE_MAX + 2];
	int n = snprintf(buf, sizeof(buf), "%s\r\n", line);

	if (n < 0 || (size_t)n >= sizeof(buf))
		return -1;
	if (client_write(c, buf, (size_t)n) != 0)
		return -1;
	return client_reply(c, r);
}

static void client_ehlo_keywords(struct client *c, const struct reply *r)
{
	c->starttls = c->size = c->eightbit = c->smtputf8 = c->dsn = c->pipelining = false;
	c->max_size = 0;
	/* The first line is the greeting text, not a keyword. */
	for (size_t i = 1; i < r->n_lines; i++) {
		const char *kw = r->lines[i];

		if (strcasecmp(kw, "STARTTLS") == 0)
			c->starttls = true;
		else if (strcasecmp(kw, "SIZE") == 0) {
			c->size = true;
			c->max_size = (size_t)strtoull(r->size_arg, NULL, 10);
		} else if (strcasecmp(kw, "8BITMIME") == 0)
			c->eightbit = true;
		else if (strcasecmp(kw, "SMTPUTF8") == 0)
			c->smtputf8 = true;
		else if (strcasecmp(kw, "DSN") == 0)
			c->dsn = true;
		else if (strcasecmp(kw, "PIPELINING") == 0)
			c->pipelining = true;
	}
}

static int client_hello(struct client *c, const char *helo, struct reply *r)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "EHLO %s", helo);
	if (client_command(c, cmd, r) != 0)
		return -1;
	if (r->code == 250) {
		client_ehlo_keywords(c, r);
		return 0;
	}
	snprintf(cmd, sizeof(cmd), "HELO %s", helo);
	if (client_command(c, cmd, r) != 0)
		return -1;
	client_ehlo_keywords(c, &(struct reply){0});
	return 0;
}

static int client_starttls(struct client *c, const struct queue_session_opts *opts,
			   struct queue_reply_info *info)
{
	c->ssl_ctx = SSL_CTX_new(TLS_client_method());
	if (!c->ssl_ctx)
		return -1;
	SSL_CTX_set_min_proto_version(c->ssl_ctx, TLS1_2_VERSION);
	/* Opportunistic TLS (RFC 7435): MX certificates are not verified, as
	 * nothing in DNS without DNSSEC would make the name trustworthy. */
	SSL_CTX_set_verify(c->ssl_ctx, SSL_VERIFY_NONE, NULL);
	c->ssl = SSL_new(c->ssl_ctx);
	if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1)
		return -1;
	if (opts->peer_name && opts->peer_name[0] && strchr(opts->peer_name, '.'))
		SSL_set_tlsext_host_name(c->ssl, opts->peer_name);
	if (SSL_connect(c->ssl) != 1)
		return -1;
	snprintf(info->tls_version, sizeof(info->tls_version), "%s", SSL_get_version(c->ssl));
	snprintf(info->tls_cipher, sizeof(info->tls_cipher), "%s", SSL_get_cipher_name(c->ssl));
	c->off = c->len = 0; /* nothing sent before the handshake counts (RFC 3207) */
	return 0;
}

static bool has_non_ascii(const char *s)
{
	return queue_has_8bit(s, strlen(s));
}

/* "5.1.1" from the reply text when the peer gave one, else derived from CODE. */
static void enhanced_status(const char *text, int code, char *out, size_t outlen)
{
	const char *p = text + (strlen(text) > 4 ? 4 : strlen(text));
	int a, b, d, n = 0;

	if (sscanf(p, "%1d.%3d.%3d%n", &a, &b, &d, &n) == 3 && n > 0 &&
	    (a == 2 || a == 4 || a == 5) && (p[n] == ' ' || p[n] == '\0')) {
		snprintf(out, outlen, "%d.%d.%d", a, b, d);
		return;
	}
	snprintf(out, outlen, "%d.0.0", code >= 500 ? 5 : code >= 400 ? 4 : 2);
}

static enum queue_result reply_outcome(const struct reply *r, struct queue_reply_info *info)
{
	char enh[16];

	enhanced_status(r->last, r->code, enh, sizeof(enh));
	set_info(info, r->code, enh, r->last);
	return r->code >= 500 ? QUEUE_PERMFAIL : QUEUE_TEMPFAIL;
}

/* The message with CRLF line ends, dot-stuffed, ending in CRLF.CRLF (*OUT malloc'd). */
static char *dot_stuff(const unsigned char *msg, size_t len, size_t *out_len)
{
	char *out = malloc(2 * len + 8);
	size_t o = 0;
	bool bol = true;

	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = msg[i];

		if (bol && ch == '.')
			out[o++] = '.';
		if (ch == '\n') {
			if (i == 0 || msg[i - 1] != '\r')
				out[o++] = '\r';
			bol = true;
		} else if (ch == '\r' && (i + 1 == len || msg[i + 1] != '\n')) {
			continue; /* a bare CR is not a line end; drop it */
		} else {
			bol = false;
		}
		out[o++] = (char)ch;
	}
	if (!bol) {
		out[o++] = '\r';
		out[o++] = '\n';
	}
	memcpy(out + o, ".\r\n", 3);
	*out_len = o + 3;
	return out;
}

static enum queue_result transaction(struct client *c, const struct queue_session_opts *opts,
				     const struct queue_message *msg, struct queue_reply_info *info)
{
	struct reply r;
	char cmd[1024];
	int n;
	bool utf8 = has_non_ascii(msg->sender) || has_non_ascii(msg->recipient);
	bool eightbit = queue_has_8bit(msg->data, msg->len);
	char *data;
	size_t data_len;

	if (client_reply(c, &r) != 0) {
		set_info(info, 0, "4.4.2", "no greeting from the server");
		return QUEUE_TEMPFAIL;
	}
	if (r.code != 220)
		return reply_outcome(&r, info);
	if (client_hello(c, opts->helo, &r) != 0) {
		set_info(info, 0, "4.4.2", "connection lost after the greeting");
		return QUEUE_TEMPFAIL;
	}
	if (r.code != 250)
		return reply_outcome(&r, info);
	if (c->starttls) {
		if (client_command(c, "STARTTLS", &r) != 0) {
			set_info(info, 0, "4.4.2", "connection lost at STARTTLS");
			return QUEUE_TEMPFAIL;
		}
		if (r.code == 220) {
			if (client_starttls(c, opts, info) != 0) {
				set_info(info, 0, "4.7.5", "TLS handshake failed");
				return QUEUE_TEMPFAIL;
			}
			if (client_hello(c, opts->helo, &r) != 0) {
				set_info(info, 0, "4.4.2", "connection lost after STARTTLS");
				return QUEUE_TEMPFAIL;
			}
			if (r.code != 250)
				return reply_outcome(&r, info);
		} else if (opts->tls_required) {
			set_info(info, r.code, "4.7.5", r.last);
			return QUEUE_TEMPFAIL;
		}
	}
	info->peer_dsn = c->dsn;
	if (opts->tls_required && !c->ssl) {
		set_info(info, 0, "4.7.5", "TLS is required for this domain but not offered");
		return QUEUE_TEMPFAIL;
	}
	if (utf8 && !c->smtputf8) {
		set_info(info, 0, "5.6.7",
			 "the address needs SMTPUTF8, which the receiving server does not offer");
		return QUEUE_PERMFAIL;
	}
	/* RFC 6152: 8-bit content only to a server that offers 8BITMIME. There is
	 * no downgrade to 7 bits here, so the sender hears of it instead. */
	if (eightbit && !c->eightbit) {
		set_info(info, 0, "5.6.3",
			 "the message has 8-bit content and the receiving server does not offer "
			 "8BITMIME");
		return QUEUE_PERMFAIL;
	}
	if (c->size && c->max_size > 0 && msg->len > c->max_size) {
		set_info(info, 552, "5.3.4", "message larger than the receiving server accepts");
		return QUEUE_PERMFAIL;
	}

	n = snprintf(cmd, sizeof(cmd), "MAIL FROM:<%s>", msg->sender);
	if (c->size)
		n += snprintf(cmd + n, sizeof(cmd) - (size_t)n, " SIZE=%zu", msg->len);
	if (eightbit && c->eightbit)
		n += snprintf(cmd + n, sizeof(cmd) - (size_t)n, " BODY=8BITMIME");
	if (utf8)
		n += snprintf(cmd + n, sizeof(cmd) - (size_t)n, " SMTPUTF8");
	if (c->dsn && msg->dsn_ret && msg->dsn_ret[0])
		n += snprintf(cmd + n, sizeof(cmd) - (size_t)n, " RET=%s", msg->dsn_ret);
	if (c->dsn && msg->dsn_envid && msg->dsn_envid[0])
		n += snprintf(cmd + n, sizeof(cmd) - (size_t)n, " ENVID=%s", msg->dsn_envid);
	if (n < 0 || (size_t)n >= sizeof(cmd)) {
		set_info(info, 0, "5.5.4", "MAIL FROM parameters too long");
		return QUEUE_PERMFAIL;
	}
	if (client_command(c, cmd, &r) != 0)
		goto lost;
	if (r.code != 250)
		return reply_outcome(&r, info);

	n = snprintf(cmd, sizeof(cmd), "RCPT TO:<%s>", msg->recipient);
	if (c->dsn && msg->dsn_notify && msg->dsn_notify[0])
		n += snprintf(cmd + n, sizeof(cmd) - (size_t)n, " NOTIFY=%s", msg->dsn_notify);
	if (c->dsn && msg->dsn_orcpt && msg->dsn_orcpt[0])
		n += snprintf(cmd + n, sizeof(cmd) - (size_t)n, " ORCPT=%s", msg->dsn_orcpt);
	if (n < 0 || (size_t)n >= sizeof(cmd)) {
		set_info(info, 0, "5.5.4", "RCPT TO parameters too long");
		return QUEUE_PERMFAIL;
	}
	if (client_command(c, cmd, &r) != 0)
		goto lost;
	if (r.code != 250 && r.code != 251)
		return reply_outcome(&r, info);

	if (client_command(c, "DATA", &r) != 0)
		goto lost;
	if (r.code != 354)
		return reply_outcome(&r, info);
	data = dot_stuff(msg->data, msg->len, &data_len);
	if (!data) {
		set_info(info, 0, "4.3.0", "out of memory");
		return QUEUE_TEMPFAIL;
	}
	n = client_write(c, data, data_len);
	free(data);
	if (n != 0 || client_reply(c, &r) != 0)
		goto lost;
	if (r.code != 250)
		return reply_outcome(&r, info);
	set_info(info, r.code, "2.0.0", r.last);
	client_command(c, "QUIT", &r); /* the message is accepted whatever QUIT says */
	return QUEUE_OK;
lost:
	set_info(info, 0, "4.4.2", "connection lost during the transaction");
	return QUEUE_TEMPFAIL;
}

enum queue_result queue_smtp_deliver(const struct sockaddr_storage *addr,
				     const struct queue_session_opts *opts,
				     const struct queue_message *msg, struct queue_reply_info *info)
{
	struct client c;
	enum queue_result res;

	memset(info, 0, sizeof(*info));
	memset(&c, 0, sizeof(c));
	c.fd = connect_timeout(addr, opts->timeout ? opts->timeout : 60);
	if (c.fd < 0) {
		char text[128];

		snprintf(text, sizeof(text), "cannot connect: %s", strerror(errno));
		set_info(info, 0, "4.4.1", text);
		return QUEUE_TEMPFAIL;
	}
	res = transaction(&c, opts, msg, info);
	if (c.ssl) {
		SSL_shutdown(c.ssl);
		SSL_free(c.ssl);
	}
	SSL_CTX_free(c.ssl_ctx);
	ERR_clear_error();
	close(c.fd);
	return res;
}
