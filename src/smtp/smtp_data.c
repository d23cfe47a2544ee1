/*
 * smtp_data.c - the DATA reader (RFC 5321 4.1.4, 4.5.2): collects the
 * message line by line, removes dot-stuffing and ends only on CRLF "." CRLF.
 *
 * The end of data is recognised only as a line that is exactly ".\r\n" and
 * follows a line that ended in CRLF. "\n.\n", "\r.\r\n", "\n.\r\n" and
 * friends never end the data, so a message cannot smuggle a second one past
 * a server that reads them differently (SMTP smuggling). Bare LF, bare CR
 * and NUL mark the message as malformed: it is read to its end and refused.
 * Pure: bytes in, buffer and verdict out.
 */
#include <config.h>

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "smtp/smtp.h"

#define DATA_INITIAL_CAP 16384

void smtp_data_init(struct smtp_data *d, size_t max_size, size_t max_line)
{
	memset(d, 0, sizeof(*d));
	d->max_size = max_size;
	d->max_line = max_line;
	d->at_line_start = true;
}

void smtp_data_free(struct smtp_data *d)
{
	if (d->buf) {
		sodium_memzero(d->buf, d->len);
		free(d->buf);
	}
	d->buf = NULL;
	d->len = d->cap = 0;
}

static void set_error(struct smtp_data *d, enum smtp_data_error e)
{
	if (d->error == SMTP_DATA_OK)
		d->error = e;
}

int smtp_data_append(struct smtp_data *d, const unsigned char *bytes, size_t len)
{
	if (len == 0)
		return 0;
	if (d->error == SMTP_DATA_TOO_BIG || len > d->max_size || d->len > d->max_size - len) {
		/* Keep reading to the end, store nothing more. */
		set_error(d, SMTP_DATA_TOO_BIG);
		return 0;
	}
	if (d->len + len > d->cap) {
		size_t cap = d->cap ? d->cap : DATA_INITIAL_CAP;
		unsigned char *nb;
		while (cap < d->len + len)
			cap = cap > d->max_size / 2 ? d->max_size : cap * 2;
		/* realloc could leave a copy of the old plaintext behind: move by hand. */
		nb = malloc(cap);
		if (!nb)
			return -1;
		if (d->buf) {
			memcpy(nb, d->buf, d->len);
			sodium_memzero(d->buf, d->len);
			free(d->buf);
		}
		d->buf = nb;
		d->cap = cap;
	}
	memcpy(d->buf + d->len, bytes, len);
	d->len += len;
	return 0;
}

int smtp_data_feed(struct smtp_data *d, const unsigned char *seg, size_t len)
{
	bool ends_lf, crlf;
	size_t i;

	if (d->done || len == 0)
		return 0;
	ends_lf = seg[len - 1] == '\n';
	crlf = ends_lf && len >= 2 && seg[len - 2] == '\r';
	if (d->at_line_start && len == 3 && memcmp(seg, ".\r\n", 3) == 0) {
		d->done = true;
		return 0;
	}
	for (i = 0; i < len; i++) {
		if (seg[i] == '\0') {
			set_error(d, SMTP_DATA_NUL);
		} else if (seg[i] == '\r') {
			if (!(i + 1 < len && seg[i + 1] == '\n'))
				set_error(d, SMTP_DATA_BARE_CR);
		} else if (seg[i] == '\n') {
			if (i == 0 || seg[i - 1] != '\r')
				set_error(d, SMTP_DATA_BARE_LF);
		}
	}
	d->line_len += len;
	if (d->line_len > d->max_line)
		set_error(d, SMTP_DATA_LINE_TOO_LONG);
	/* RFC 5321 4.5.2: a leading dot of a line is removed. */
	if (d->at_line_start && seg[0] == '.') {
		seg++;
		len--;
	}
	if (smtp_data_append(d, seg, len) < 0)
		return -1;
	if (ends_lf)
		d->line_len = 0;
	d->at_line_start = crlf;
	return 0;
}

void smtp_data_error_reply(enum smtp_data_error e, struct smtp_error *out)
{
	switch (e) {
	case SMTP_DATA_OK:
		out->code = 250;
		out->status = "2.0.0";
		out->text = "OK";
		return;
	case SMTP_DATA_TOO_BIG:
		out->code = 552;
		out->status = "5.3.4";
		out->text = "Message too big";
		return;
	case SMTP_DATA_LINE_TOO_LONG:
		out->code = 552;
		out->status = "5.3.4";
		out->text = "Message line too long";
		return;
	case SMTP_DATA_BARE_LF:
		out->code = 554;
		out->status = "5.6.0";
		out->text = "Bare LF in message; lines must end with CRLF";
		return;
	case SMTP_DATA_BARE_CR:
		out->code = 554;
		out->status = "5.6.0";
		out->text = "Bare CR in message; lines must end with CRLF";
		return;
	case SMTP_DATA_NUL:
		out->code = 554;
		out->status = "5.6.0";
		out->text = "NUL character in message";
		return;
	}
	out->code = 554;
	out->status = "5.6.0";
	out->text = "Malformed message";
}
