/*
 * imap_wire_names.c - mailbox names as a session writes them: modified
 * UTF-7 (RFC 3501 5.1.3) in IMAP4rev1, UTF-8 once IMAP4rev2 is enabled
 * (RFC 9051 5.1, 6.3.1). The store holds UTF-8 either way, so both kinds
 * of client see the same mailboxes.
 */
#include <config.h>

#include <string.h>

#include "imap/imap_int.h"

int imap_mailbox_arg(struct imap_session *s, const struct imap_arg *arg, char *out, size_t outlen)
{
	char decoded[STORE_MAILBOX_NAME_MAX + 1];
	struct imap_arg utf8;

	if (s->utf8 || !imap_arg_is_string(arg) || !memchr(arg->str, '&', arg->len))
		return imap_mailbox_name(arg, out, outlen);
	if (strlen(arg->str) != arg->len ||
	    imap_mutf7_decode(arg->str, arg->len, decoded, sizeof(decoded)) < 0)
		return -1;
	utf8 = *arg;
	utf8.type = IMAP_ARG_QUOTED;
	utf8.str = decoded;
	utf8.len = strlen(decoded);
	return imap_mailbox_name(&utf8, out, outlen);
}

int imap_mailbox_find(struct imap_session *s, const struct imap_arg *arg, char *name,
		      size_t namelen, struct store_mailbox *mb)
{
	int rc;

	if (imap_mailbox_arg(s, arg, name, namelen) < 0) {
		imap_no(s, "[NONEXISTENT] Invalid mailbox name");
		return STORE_NOTFOUND;
	}
	rc = store_mailbox_get(conn_store(s->c), s->id.user_id, name, mb);
	if (rc == STORE_NOTFOUND)
		imap_no(s, "[NONEXISTENT] No such mailbox");
	return rc;
}

int imap_pattern_decode(struct imap_session *s, char *pattern, size_t cap)
{
	char decoded[2 * STORE_MAILBOX_NAME_MAX + 2];

	if (s->utf8 || !strchr(pattern, '&'))
		return 0;
	if (imap_mutf7_decode(pattern, strlen(pattern), decoded, sizeof(decoded)) < 0 ||
	    strlen(decoded) >= cap)
		return -1;
	memcpy(pattern, decoded, strlen(decoded) + 1);
	return 0;
}

void imap_write_mailbox(struct imap_session *s, struct imap_buf *b, const char *name)
{
	/* Modified UTF-7 is at most 8/3 + 2 times as long as the UTF-8 name. */
	char encoded[4 * STORE_MAILBOX_NAME_MAX + 8];

	if (s->utf8) {
		/* RFC 9051 4.3: quoted strings may hold UTF-8; names hold no CR, LF or NUL. */
		ibuf_str(b, "\"");
		for (const char *p = name; *p; p++) {
			if (*p == '"' || *p == '\\')
				ibuf_str(b, "\\");
			ibuf_add(b, p, 1);
		}
		ibuf_str(b, "\"");
		return;
	}
	if (imap_mutf7_encode(name, encoded, sizeof(encoded)) == 0)
		name = encoded;
	ibuf_nstring(b, name, strlen(name));
}
