/*
 * cmd_append.c - APPEND (RFC 3501 6.3.11) with APPENDUID (RFC 4315),
 * APPENDLIMIT (RFC 7889), MULTIAPPEND (RFC 3502: several messages in one
 * command, stored all or none) and the UTF8 data item of UTF8=ACCEPT
 * (RFC 6855 4), binary content in a literal8 (RFC 3516 4.4: NUL in a part's
 * content, stored as it came). The messages go through
 * deliver_to_mailbox_sized() on the job pool in one transaction: scanned (result
 * stored 1:1), sealed to the owner's key, stored; the session waits
 * meanwhile.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "deliver/deliver.h"
#include "imap/imap_int.h"
#include "util/i18n.h"
#include "util/log.h"

/* At most this many messages in one MULTIAPPEND. */
#define IMAP_MULTIAPPEND_MAX 1000

struct append_msg {
	uint32_t flags;
	int64_t date;
	char keywords[512];
	unsigned char *msg; /* plaintext, wiped when done */
	size_t len;
	size_t size;  /* its size: LEN, or its textual form's when it holds NUL */
	uint32_t uid; /* once stored */
};

struct append_job {
	struct imap_session *s;
	int64_t user_id;
	struct store_mailbox mb;
	char client_ip[64];
	struct append_msg *msgs;
	size_t n;
	enum deliver_status status;
};

static void append_job_free(struct append_job *job)
{
	for (size_t i = 0; i < job->n; i++)
		imap_wipe_free(job->msgs[i].msg, job->msgs[i].len);
	free(job->msgs);
	free(job);
}

/* On the job pool: scanning and sealing are the slow part. */
static void append_work(struct store *st, void *arg)
{
	struct append_job *job = arg;
	struct store_user user;
	struct scan_input scan_in = {0};

	memset(&user, 0, sizeof(user));
	job->status = DELIVER_TEMPFAIL;
	if (store_user_get_by_id(st, job->user_id, &user) != STORE_OK ||
	    store_begin(st) != STORE_OK) {
		store_user_clear(&user);
		return;
	}
	scan_in.client_ip = job->client_ip;
	scan_in.user_id = job->user_id;
	job->status = DELIVER_OK;
	for (size_t i = 0; i < job->n && job->status == DELIVER_OK; i++) {
		struct append_msg *m = &job->msgs[i];
		struct store_message out;

		job->status =
		    deliver_to_mailbox_sized(st, &user, job->mb.id, m->flags, m->date, m->msg,
					     m->len, (int64_t)m->size, &scan_in, &out);
		if (job->status == DELIVER_OK && m->keywords[0]) {
			uint64_t modseq;
			if (store_message_set_flags(st, out.id, m->flags, m->keywords, &modseq) !=
			    STORE_OK)
				job->status = DELIVER_TEMPFAIL;
		}
		m->uid = out.uid;
	}
	store_user_clear(&user);
	/* RFC 3502 6.3.11: all or none. */
	if (job->status == DELIVER_OK && store_commit(st) != STORE_OK)
		job->status = DELIVER_TEMPFAIL;
	if (job->status != DELIVER_OK)
		store_rollback(st);
}

static void append_done(struct conn *c, void *arg)
{
	struct append_job *job = arg;
	struct imap_session *s = job->s;
	(void)c;

	if (conn_is_closing(s->c)) {
		append_job_free(job);
		return;
	}
	if (job->status == DELIVER_OK) {
		struct imap_buf uids = {0};
		uint32_t *v = malloc(job->n * sizeof(*v));

		/* UIDs of one transaction are consecutive and ascending. */
		for (size_t i = 0; v && i < job->n; i++)
			v[i] = job->msgs[i].uid;
		if (v)
			ibuf_seqset(&uids, v, job->n);
		free(v);
		imap_changed(job->mb.id);
		if (uids.len && !uids.failed)
			imap_ok(s, "[APPENDUID %u %s] APPEND completed", job->mb.uidvalidity,
				uids.p);
		else
			imap_ok(s, "APPEND completed");
		ibuf_free(&uids);
	} else if (job->status == DELIVER_QUOTA) {
		imap_no(s, "[OVERQUOTA] Quota exceeded");
	} else {
		log_error(_("imap: APPEND for %s failed"), s->id.address);
		imap_no(s, "[UNAVAILABLE] Cannot store the message now");
	}
	append_job_free(job);
	imap_continue_input(s);
}

/* Reads "[flag-list] [date-time] message" at ARGS[*I]; 0, or -1 with the
 * tagged reply sent. */
static int parse_one(struct imap_session *s, struct imap_command *cmd, size_t *i,
		     struct append_msg *out)
{
	struct imap_arg *msg;

	memset(out, 0, sizeof(*out));
	out->date = (int64_t)time(NULL);
	if (*i < cmd->n_args && cmd->args[*i].type == IMAP_ARG_LIST) {
		const struct imap_arg *fl = &cmd->args[(*i)++];
		size_t klen = 0;
		for (size_t k = 0; k < fl->n; k++) {
			int bit =
			    fl->list[k].type == IMAP_ARG_ATOM ? imap_flag_bit(fl->list[k].str) : -1;
			if (bit < 0) {
				imap_bad(s, "Invalid flag in APPEND");
				return -1;
			}
			if (bit) {
				out->flags |= (uint32_t)bit;
			} else {
				if (klen + fl->list[k].len + 2 > sizeof(out->keywords)) {
					imap_no(s, "[LIMIT] Too many keywords");
					return -1;
				}
				klen += (size_t)snprintf(out->keywords + klen,
							 sizeof(out->keywords) - klen, "%s%s",
							 klen ? " " : "", fl->list[k].str);
			}
		}
	}
	/* A quoted string followed by another argument is the date-time. */
	if (*i + 1 < cmd->n_args && cmd->args[*i].type == IMAP_ARG_QUOTED &&
	    cmd->args[*i + 1].type != IMAP_ARG_LIST) {
		if (imap_parse_datetime(cmd->args[*i].str, &out->date) < 0) {
			imap_bad(s, "Invalid date-time in APPEND");
			return -1;
		}
		(*i)++;
	}
	if (*i + 1 < cmd->n_args && imap_arg_is(&cmd->args[*i], "UTF8") &&
	    cmd->args[*i + 1].type == IMAP_ARG_LIST) {
		/* RFC 6855 4: "UTF8 (literal8)", a message with UTF-8 header fields. */
		struct imap_arg *l = &cmd->args[++(*i)];
		if (!s->utf8_accept) {
			imap_bad(s, "APPEND UTF8 needs ENABLE UTF8=ACCEPT first");
			return -1;
		}
		if (l->n != 1 || l->list[0].type != IMAP_ARG_LITERAL) {
			imap_bad(s, "APPEND UTF8 takes one literal in parentheses");
			return -1;
		}
		msg = &l->list[0];
	} else if (*i < cmd->n_args && imap_arg_is_string(&cmd->args[*i])) {
		msg = &cmd->args[*i];
	} else {
		imap_bad(s, "APPEND needs a mailbox name and a message");
		return -1;
	}
	if (msg->len == 0) {
		imap_no(s, "Empty message");
		return -1;
	}
	/* RFC 3516 4.4: binary content (a literal8 with NUL) is stored as it
	 * came, when each NUL lies in the content of a part that base64 can
	 * carry in the textual form every other FETCH shows (imap_binary.c).
	 * Its size (RFC822.SIZE, POP3 LIST, quota) is that form's, the size of
	 * what BODY[] and POP3 RETR send. */
	out->size = msg->len;
	if (msg->literal8 && memchr(msg->str, '\0', msg->len)) {
		unsigned char *text;
		size_t text_len;
		int rc = imap_binary_text((const unsigned char *)msg->str, msg->len, true, &text,
					  &text_len);

		imap_wipe_free(text, text_len);
		out->size = text_len;
		if (rc == -1) {
			imap_no(s, "[UNAVAILABLE] Out of memory");
			return -1;
		}
		if (rc == -2) {
			imap_no(s, "[UNKNOWN-CTE] NUL is allowed only in the content of a part "
				   "without a transfer encoding");
			return -1;
		}
	}
	if (msg->len > s->cfg->limits.max_message_size) {
		imap_no(s, "[TOOBIG] Message larger than %zu bytes",
			s->cfg->limits.max_message_size);
		return -1;
	}
	/* The message is taken over from the parsed command. */
	out->msg = (unsigned char *)msg->str;
	out->len = msg->len;
	msg->str = NULL;
	(*i)++;
	return 0;
}

/* RFC 3501 6.3.11, RFC 3502 6.3.11 */
void imap_cmd_append(struct imap_session *s, struct imap_command *cmd)
{
	char name[STORE_MAILBOX_NAME_MAX + 1];
	struct store *st = conn_store(s->c);
	struct store_mailbox mb;
	struct append_job *job;
	size_t i = 1, cap = 0;
	int rc;

	if (cmd->n_args < 2) {
		imap_bad(s, "APPEND needs a mailbox name and a message");
		return;
	}
	job = calloc(1, sizeof(*job));
	if (!job) {
		imap_no(s, "[UNAVAILABLE] Out of memory");
		return;
	}
	while (i < cmd->n_args) {
		if (job->n == IMAP_MULTIAPPEND_MAX) {
			append_job_free(job);
			imap_no(s, "[LIMIT] At most %d messages in one APPEND",
				IMAP_MULTIAPPEND_MAX);
			return;
		}
		if (job->n == cap) {
			size_t ncap = cap ? cap * 2 : 4;
			struct append_msg *nm = realloc(job->msgs, ncap * sizeof(*nm));
			if (!nm) {
				append_job_free(job);
				imap_no(s, "[UNAVAILABLE] Out of memory");
				return;
			}
			job->msgs = nm;
			cap = ncap;
		}
		if (parse_one(s, cmd, &i, &job->msgs[job->n]) < 0) {
			append_job_free(job);
			return;
		}
		job->n++;
	}
	if (imap_mailbox_arg(s, &cmd->args[0], name, sizeof(name)) < 0) {
		append_job_free(job);
		imap_no(s, "[TRYCREATE] Invalid mailbox name");
		return;
	}
	rc = store_mailbox_get(st, s->id.user_id, name, &mb);
	if (rc != STORE_OK) {
		append_job_free(job);
		if (rc == STORE_NOTFOUND)
			imap_no(s, "[TRYCREATE] No such mailbox");
		else
			imap_no(s, "[UNAVAILABLE] Cannot store the message now");
		return;
	}
	job->s = s;
	job->user_id = s->id.user_id;
	job->mb = mb;
	snprintf(job->client_ip, sizeof(job->client_ip), "%s", conn_peer_address(s->c));
	s->busy = true;
	if (conn_defer(s->c, append_work, append_done, job) < 0) {
		append_job_free(job);
		s->busy = false;
		imap_no(s, "[UNAVAILABLE] Server busy, try again later");
	}
}
