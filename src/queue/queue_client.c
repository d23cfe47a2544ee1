/*
 * queue_client.c - the SMTP client of outbound delivery (RFC 5321), run on
 * a delivery worker's thread. A session is one connection: greeting, EHLO
 * (HELO when refused), opportunistic STARTTLS (required for domains on the
 * TLS-required list); over it go one or more transactions, each with any
 * number of recipients (MAIL once, RCPT per recipient, DATA once; the
 * commands pipelined when the peer offers PIPELINING), RSET between them
 * and QUIT at the end. SIZE, 8BITMIME, SMTPUTF8 and DSN parameters are used
 * when offered. Every reply is bounded; a peer that stalls runs into the
 * timeout.
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
	struct queue_caps caps; /* EHLO keywords */
};

struct queue_session {
	struct client c;
	struct sockaddr_storage addr;
	unsigned transactions;
	bool usable; /* the connection still works */
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
	struct queue_caps *k = &c->caps;

	memset(k, 0, sizeof(*k));
	/* The first line is the greeting text, not a keyword. */
	for (size_t i = 1; i < r->n_lines; i++) {
		const char *kw = r->lines[i];

		if (strcasecmp(kw, "STARTTLS") == 0)
			k->starttls = true;
		else if (strcasecmp(kw, "SIZE") == 0) {
			k->size = true;
			k->max_size = (size_t)strtoull(r->size_arg, NULL, 10);
		} else if (strcasecmp(kw, "8BITMIME") == 0)
			k->eightbit = true;
		else if (strcasecmp(kw, "SMTPUTF8") == 0)
			k->smtputf8 = true;
		else if (strcasecmp(kw, "DSN") == 0)
			k->dsn = true;
		else if (strcasecmp(kw, "PIPELINING") == 0)
			k->pipelining = true;
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

/* Reads the greeting, says EHLO and starts TLS when offered. */
static enum queue_result session_start(struct client *c, const struct queue_session_opts *opts,
				       struct queue_reply_info *info)
{
	struct reply r;

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
	if (c->caps.starttls) {
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
	info->peer_dsn = c->caps.dsn;
	if (opts->tls_required && !c->ssl) {
		set_info(info, 0, "4.7.5", "TLS is required for this domain but not offered");
		return QUEUE_TEMPFAIL;
	}
	return QUEUE_OK;
}

static void client_free(struct client *c)
{
	if (c->ssl) {
		SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
	}
	SSL_CTX_free(c->ssl_ctx);
	ERR_clear_error();
	if (c->fd >= 0)
		close(c->fd);
}

struct queue_session *queue_session_open(const struct sockaddr_storage *addr,
					 const struct queue_session_opts *opts,
					 struct queue_reply_info *info, enum queue_result *res)
{
	struct queue_session *s = calloc(1, sizeof(*s));

	memset(info, 0, sizeof(*info));
	if (!s) {
		set_info(info, 0, "4.3.0", "out of memory");
		*res = QUEUE_TEMPFAIL;
		return NULL;
	}
	s->addr = *addr;
	s->c.fd = connect_timeout(addr, opts->timeout ? opts->timeout : 60);
	if (s->c.fd < 0) {
		char text[128];

		snprintf(text, sizeof(text), "cannot connect: %s", strerror(errno));
		set_info(info, 0, "4.4.1", text);
		*res = QUEUE_TEMPFAIL;
		free(s);
		return NULL;
	}
	*res = session_start(&s->c, opts, info);
	if (*res != QUEUE_OK) {
		client_free(&s->c);
		free(s);
		return NULL;
	}
	s->usable = true;
	return s;
}

const struct queue_caps *queue_session_caps(const struct queue_session *s)
{
	return &s->c.caps;
}

const struct sockaddr_storage *queue_session_addr(const struct queue_session *s)
{
	return &s->addr;
}

bool queue_session_tls(const struct queue_session *s)
{
	return s->c.ssl != NULL;
}

unsigned queue_session_count(const struct queue_session *s)
{
	return s->transactions;
}

/* Sets every recipient still open (QUEUE_TEMPFAIL with code -1) to the outcome of R. */
static void all_open_from_reply(struct queue_rcpt *rcpts, size_t n, const bool *open,
				const struct reply *r)
{
	for (size_t i = 0; i < n; i++)
		if (open[i])
			rcpts[i].result = reply_outcome(r, &rcpts[i].info);
}

static void all_open_set(struct queue_rcpt *rcpts, size_t n, const bool *open,
			 enum queue_result res, const char *enhanced, const char *text)
{
	for (size_t i = 0; i < n; i++)
		if (open[i]) {
			set_info(&rcpts[i].info, 0, enhanced, text);
			rcpts[i].result = res;
		}
}

static int mail_command(const struct client *c, const struct queue_envelope *env, bool utf8,
			bool eightbit, char *cmd, size_t cmdlen)
{
	int n = snprintf(cmd, cmdlen, "MAIL FROM:<%s>", env->sender);

	if (c->caps.size)
		n += snprintf(cmd + n, cmdlen - (size_t)n, " SIZE=%zu", env->len);
	if (eightbit && c->caps.eightbit)
		n += snprintf(cmd + n, cmdlen - (size_t)n, " BODY=8BITMIME");
	if (utf8)
		n += snprintf(cmd + n, cmdlen - (size_t)n, " SMTPUTF8");
	if (c->caps.dsn && env->dsn_ret && env->dsn_ret[0])
		n += snprintf(cmd + n, cmdlen - (size_t)n, " RET=%s", env->dsn_ret);
	if (c->caps.dsn && env->dsn_envid && env->dsn_envid[0])
		n += snprintf(cmd + n, cmdlen - (size_t)n, " ENVID=%s", env->dsn_envid);
	return n < 0 || (size_t)n >= cmdlen ? -1 : 0;
}

static int rcpt_command(const struct client *c, const struct queue_rcpt *r, char *cmd,
			size_t cmdlen)
{
	int n = snprintf(cmd, cmdlen, "RCPT TO:<%s>", r->address);

	if (c->caps.dsn && r->dsn_notify && r->dsn_notify[0])
		n += snprintf(cmd + n, cmdlen - (size_t)n, " NOTIFY=%s", r->dsn_notify);
	if (c->caps.dsn && r->dsn_orcpt && r->dsn_orcpt[0])
		n += snprintf(cmd + n, cmdlen - (size_t)n, " ORCPT=%s", r->dsn_orcpt);
	return n < 0 || (size_t)n >= cmdlen ? -1 : 0;
}

/* Appends LINE and CRLF to the pipelined batch in BUF. */
static int batch_add(char *buf, size_t buflen, size_t *used, const char *line)
{
	int n = snprintf(buf + *used, buflen - *used, "%s\r\n", line);

	if (n < 0 || (size_t)n >= buflen - *used)
		return -1;
	*used += (size_t)n;
	return 0;
}

bool queue_session_send(struct queue_session *s, const struct queue_envelope *env,
			struct queue_rcpt *rcpts, size_t n)
{
	struct client *c = &s->c;
	struct reply r;
	char cmd[1024];
	bool open[QUEUE_RCPTS_MAX], utf8 = has_non_ascii(env->sender);
	bool eightbit = queue_has_8bit(env->data, env->len), pipelined = c->caps.pipelining;
	size_t n_open = 0, accepted = 0, used = 0;
	char *batch = NULL, *data;
	size_t data_len;
	int rc;

	if (n > QUEUE_RCPTS_MAX)
		n = QUEUE_RCPTS_MAX;
	for (size_t i = 0; i < n; i++) {
		memset(&rcpts[i].info, 0, sizeof(rcpts[i].info));
		rcpts[i].info.peer_dsn = c->caps.dsn;
		open[i] = true;
		/* RFC 6531: a non-ASCII address only to a server with SMTPUTF8 */
		if (has_non_ascii(rcpts[i].address)) {
			if (c->caps.smtputf8) {
				utf8 = true;
			} else {
				set_info(
				    &rcpts[i].info, 0, "5.6.7",
				    "the address needs SMTPUTF8, which the receiving server does "
				    "not offer");
				rcpts[i].result = QUEUE_PERMFAIL;
				open[i] = false;
				continue;
			}
		}
		n_open++;
	}
	s->transactions++;
	if (n_open == 0)
		return s->usable;
	if (has_non_ascii(env->sender) && !c->caps.smtputf8) {
		all_open_set(
		    rcpts, n, open, QUEUE_PERMFAIL, "5.6.7",
		    "the sender address needs SMTPUTF8, which the receiving server does not "
		    "offer");
		return s->usable;
	}
	/* RFC 6152: 8-bit content only to a server that offers 8BITMIME (the
	 * runner downgrades what it can before it comes here) */
	if (eightbit && !c->caps.eightbit) {
		all_open_set(rcpts, n, open, QUEUE_PERMFAIL, "5.6.3",
			     "the message has 8-bit content that cannot be converted to 7 bits and "
			     "the receiving server does not offer 8BITMIME");
		return s->usable;
	}
	if (c->caps.size && c->caps.max_size > 0 && env->len > c->caps.max_size) {
		all_open_set(rcpts, n, open, QUEUE_PERMFAIL, "5.3.4",
			     "message larger than the receiving server accepts");
		return s->usable;
	}
	if (mail_command(c, env, utf8, eightbit, cmd, sizeof(cmd)) != 0) {
		all_open_set(rcpts, n, open, QUEUE_PERMFAIL, "5.5.4",
			     "MAIL FROM parameters too long");
		return s->usable;
	}

	/* RFC 2920: MAIL, every RCPT and DATA in one write, then the replies in order */
	if (pipelined) {
		size_t cap = (n_open + 2) * (sizeof(cmd) + 2);

		if (!(batch = malloc(cap))) {
			all_open_set(rcpts, n, open, QUEUE_TEMPFAIL, "4.3.0", "out of memory");
			return s->usable;
		}
		rc = batch_add(batch, cap, &used, cmd);
		for (size_t i = 0; rc == 0 && i < n; i++) {
			if (!open[i])
				continue;
			rc = rcpt_command(c, &rcpts[i], cmd, sizeof(cmd));
			if (rc == 0)
				rc = batch_add(batch, cap, &used, cmd);
		}
		if (rc == 0)
			rc = batch_add(batch, cap, &used, "DATA");
		if (rc != 0) {
			free(batch);
			all_open_set(rcpts, n, open, QUEUE_PERMFAIL, "5.5.4",
				     "RCPT TO parameters too long");
			return s->usable;
		}
		rc = client_write(c, batch, used);
		free(batch);
		if (rc != 0 || client_reply(c, &r) != 0)
			goto lost;
	} else if (client_command(c, cmd, &r) != 0) {
		goto lost;
	}
	if (r.code != 250) {
		all_open_from_reply(rcpts, n, open, &r);
		/* the pipelined RCPTs and DATA are refused too; read their replies */
		for (size_t i = 0; pipelined && i <= n_open; i++)
			if (client_reply(c, &r) != 0)
				goto lost_quietly;
		if (pipelined && r.code == 354 && /* DATA taken anyway: end it empty */
		    (client_write(c, ".\r\n", 3) != 0 || client_reply(c, &r) != 0))
			goto lost_quietly;
		return s->usable;
	}

	for (size_t i = 0; i < n; i++) {
		if (!open[i])
			continue;
		if (!pipelined) {
			if (rcpt_command(c, &rcpts[i], cmd, sizeof(cmd)) != 0) {
				set_info(&rcpts[i].info, 0, "5.5.4", "RCPT TO parameters too long");
				rcpts[i].result = QUEUE_PERMFAIL;
				open[i] = false;
				continue;
			}
			if (client_command(c, cmd, &r) != 0)
				goto lost;
		} else if (client_reply(c, &r) != 0) {
			goto lost;
		}
		if (r.code == 250 || r.code == 251) {
			accepted++;
		} else {
			rcpts[i].result = reply_outcome(&r, &rcpts[i].info);
			open[i] = false;
		}
	}

	if (pipelined) {
		if (client_reply(c, &r) != 0)
			goto lost;
		if (r.code == 354 && accepted == 0) {
			/* no recipient, yet DATA accepted: an empty message ends it (RFC 2920 3.1)
			 */
			if (client_write(c, ".\r\n", 3) != 0 || client_reply(c, &r) != 0)
				goto lost;
			return s->usable;
		}
	} else {
		if (accepted == 0)
			return s->usable;
		if (client_command(c, "DATA", &r) != 0)
			goto lost;
	}
	if (accepted == 0)
		return s->usable;
	if (r.code != 354) {
		all_open_from_reply(rcpts, n, open, &r);
		return s->usable;
	}
	data = dot_stuff(env->data, env->len, &data_len);
	if (!data) {
		/* the peer waits for data: end it empty would deliver an empty
		 * message, so the connection is given up instead */
		all_open_set(rcpts, n, open, QUEUE_TEMPFAIL, "4.3.0", "out of memory");
		s->usable = false;
		return false;
	}
	rc = client_write(c, data, data_len);
	free(data);
	if (rc != 0 || client_reply(c, &r) != 0)
		goto lost;
	if (r.code != 250) {
		all_open_from_reply(rcpts, n, open, &r);
		return s->usable;
	}
	for (size_t i = 0; i < n; i++)
		if (open[i]) {
			set_info(&rcpts[i].info, r.code, "2.0.0", r.last);
			rcpts[i].result = QUEUE_OK;
		}
	return s->usable;
lost:
	all_open_set(rcpts, n, open, QUEUE_TEMPFAIL, "4.4.2",
		     "connection lost during the transaction");
lost_quietly:
	s->usable = false;
	return false;
}

bool queue_session_reset(struct queue_session *s)
{
	struct reply r;

	if (!s->usable)
		return false;
	if (client_command(&s->c, "RSET", &r) != 0) {
		s->usable = false;
		return false;
	}
	return r.code == 250;
}

void queue_session_close(struct queue_session *s)
{
	struct reply r;

	if (!s)
		return;
	if (s->usable)
		client_command(&s->c, "QUIT", &r); /* whatever QUIT says */
	client_free(&s->c);
	free(s);
}
