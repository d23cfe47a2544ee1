/*
 * queue_dsn.c - delivery status notifications (RFC 3464): a
 * multipart/report with a human-readable part, the machine-readable
 * message/delivery-status part and the original message or its headers
 * (RET=FULL or HDRS). Pure formatting; the runner decides when to send one.
 */
#include <config.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "queue/queue.h"

struct buf {
	char *p;
	size_t len, cap;
	int failed;
};

static void put(struct buf *b, const char *s, size_t n)
{
	if (b->failed)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *np;

		while (cap < b->len + n + 1)
			cap *= 2;
		np = realloc(b->p, cap);
		if (!np) {
			b->failed = 1;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void put_str(struct buf *b, const char *s)
{
	put(b, s, strlen(s));
}

static void putf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void putf(struct buf *b, const char *fmt, ...)
{
	char tmp[2048];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->failed = 1;
		return;
	}
	put(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* Header-safe copy: printable ASCII only, so remote text cannot add header lines. */
static void clean(const char *in, char *out, size_t outlen)
{
	size_t o = 0;

	for (; *in && o + 1 < outlen; in++)
		out[o++] = (*in >= 0x20 && *in < 0x7f) ? *in : ' ';
	out[o] = '\0';
}

static void rfc5322_date(int64_t t, char *out, size_t outlen)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(out, outlen, "%a, %d %b %Y %H:%M:%S +0000", &tm);
}

/* Copies ORIG with CRLF line ends; stops after the header block unless FULL. */
static void put_original(struct buf *b, const unsigned char *orig, size_t len, bool full)
{
	size_t i = 0;

	while (i < len) {
		size_t start = i, end;

		while (i < len && orig[i] != '\n')
			i++;
		end = i;
		if (end > start && orig[end - 1] == '\r')
			end--;
		if (i < len)
			i++;
		if (!full && end == start)
			break; /* the blank line that ends the headers */
		put(b, (const char *)orig + start, end - start);
		put(b, "\r\n", 2);
	}
}

int queue_dsn_format(const struct queue_dsn *d, const unsigned char *orig, size_t orig_len,
		     char **out, size_t *out_len)
{
	struct buf b = {0};
	char date[64], arrival[64], diag[600], rcpt[400], envid[200], orcpt[400], mta[300];
	bool failed = strcmp(d->action, "failed") == 0;
	bool delayed = strcmp(d->action, "delayed") == 0;

	rfc5322_date(d->now, date, sizeof(date));
	rfc5322_date(d->arrival, arrival, sizeof(arrival));
	clean(d->diagnostic, diag, sizeof(diag));
	clean(d->recipient, rcpt, sizeof(rcpt));
	clean(d->envid, envid, sizeof(envid));
	clean(d->orcpt, orcpt, sizeof(orcpt));
	clean(d->remote_mta, mta, sizeof(mta));

	putf(&b, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n", d->reporting_mta);
	putf(&b, "To: <%s>\r\n", d->sender);
	putf(&b, "Subject: %s\r\n",
	     failed    ? "Undelivered Mail Returned to Sender"
	     : delayed ? "Delayed Mail (still being retried)"
		       : "Successful Mail Delivery Report");
	putf(&b, "Date: %s\r\n", date);
	putf(&b, "Message-ID: <%s>\r\n", d->message_id);
	put_str(&b, "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n");
	putf(&b,
	     "Content-Type: multipart/report; report-type=delivery-status;\r\n"
	     "\tboundary=\"%s\"\r\n\r\n",
	     d->boundary);
	put_str(&b, "This is a MIME-encapsulated delivery status notification.\r\n\r\n");

	putf(&b, "--%s\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n", d->boundary);
	if (failed)
		putf(&b,
		     "This is the mail system at %s.\r\n\r\n"
		     "Your message could not be delivered to <%s>.\r\n"
		     "The reason: %s\r\n\r\n",
		     d->reporting_mta, rcpt, diag);
	else if (delayed)
		putf(&b,
		     "This is the mail system at %s.\r\n\r\n"
		     "Your message to <%s> has not been delivered yet; it will be retried.\r\n"
		     "The reason: %s\r\n\r\n",
		     d->reporting_mta, rcpt, diag);
	else
		putf(&b,
		     "This is the mail system at %s.\r\n\r\n"
		     "Your message was handed on to <%s>.\r\n\r\n",
		     d->reporting_mta, rcpt);

	putf(&b, "--%s\r\nContent-Type: message/delivery-status\r\n\r\n", d->boundary);
	putf(&b, "Reporting-MTA: dns; %s\r\n", d->reporting_mta);
	if (envid[0])
		putf(&b, "Original-Envelope-Id: %s\r\n", envid);
	putf(&b, "Arrival-Date: %s\r\n\r\n", arrival);
	if (orcpt[0])
		putf(&b, "Original-Recipient: %s\r\n", orcpt);
	putf(&b, "Final-Recipient: rfc822; %s\r\n", rcpt);
	putf(&b, "Action: %s\r\nStatus: %s\r\n", d->action, d->status);
	if (mta[0])
		putf(&b, "Remote-MTA: dns; %s\r\n", mta);
	if (diag[0])
		putf(&b, "Diagnostic-Code: smtp; %s\r\n", diag);
	putf(&b, "Last-Attempt-Date: %s\r\n", date);
	put_str(&b, "\r\n");

	putf(&b, "--%s\r\nContent-Type: %s\r\n\r\n", d->boundary,
	     d->full ? "message/rfc822" : "text/rfc822-headers");
	put_original(&b, orig, orig_len, d->full);
	putf(&b, "\r\n--%s--\r\n", d->boundary);
	if (b.failed) {
		free(b.p);
		return -1;
	}
	*out = b.p;
	*out_len = b.len;
	return 0;
}
