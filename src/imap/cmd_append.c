/*
 * cmd_append.c - APPEND (RFC 3501 6.3.11) with APPENDUID (RFC 4315) and
 * APPENDLIMIT (RFC 7889). The message goes through deliver_to_mailbox() on
 * the job pool: scanned (result stored 1:1), sealed to the owner's key,
 * stored; the session waits meanwhile.
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

struct append_job {
	struct imap_session *s;
	int64_t user_id;
	struct store_mailbox mb;
	uint32_t flags;
	int64_t date;
	char keywords[512];
	char client_ip[64];
	unsigned char *msg; /* plaintext, wiped when done */
	size_t len;
	enum deliver_status status;
	struct store_message out;
};

static void append_job_free(struct append_job *job)
{
	imap_wipe_free(job->msg, job->len);
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
	job->status = deliver_to_mailbox(st, &user, job->mb.id, job->flags, job->date, job->msg,
					 job->len, &scan_in, &job->out);
	store_user_clear(&user);
	if (job->status == DELIVER_OK && job->keywords[0]) {
		uint64_t modseq;
		if (store_message_set_flags(st, job->out.id, job->flags, job->keywords, &modseq) !=
		    STORE_OK)
			job->status = DELIVER_TEMPFAIL;
	}
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
		imap_changed(job->mb.id);
		imap_ok(s, "[APPENDUID %u %u] APPEND completed", job->mb.uidvalidity, job->out.uid);
	} else if (job->status == DELIVER_QUOTA) {
		imap_no(s, "[OVERQUOTA] Quota exceeded");
	} else {
		log_error(_("imap: APPEND for %s failed"), s->id.address);
		imap_no(s, "[UNAVAILABLE] Cannot store the message now");
	}
	append_job_free(job);
	imap_continue_input(s);
}

/* RFC 3501 6.3.11 */
void imap_cmd_append(struct imap_session *s, struct imap_command *cmd)
{
	char name[STORE_MAILBOX_NAME_MAX + 1];
	char keywords[512] = "";
	struct store *st = conn_store(s->c);
	const struct imap_arg *msg;
	struct store_mailbox mb;
	struct append_job *job;
	uint32_t flags = 0;
	int64_t date = (int64_t)time(NULL);
	size_t i = 1;
	int rc;

	if (cmd->n_args < 2 || cmd->n_args > 4) {
		imap_bad(s, "APPEND needs a mailbox name and a message");
		return;
	}
	if (cmd->args[i].type == IMAP_ARG_LIST) {
		const struct imap_arg *fl = &cmd->args[i++];
		size_t klen = 0;
		for (size_t k = 0; k < fl->n; k++) {
			int bit =
			    fl->list[k].type == IMAP_ARG_ATOM ? imap_flag_bit(fl->list[k].str) : -1;
			if (bit < 0) {
				imap_bad(s, "Invalid flag in APPEND");
				return;
			}
			if (bit) {
				flags |= (uint32_t)bit;
			} else {
				if (klen + fl->list[k].len + 2 > sizeof(keywords)) {
					imap_no(s, "[LIMIT] Too many keywords");
					return;
				}
				klen += (size_t)snprintf(keywords + klen, sizeof(keywords) - klen,
							 "%s%s", klen ? " " : "", fl->list[k].str);
			}
		}
	}
	if (i + 2 == cmd->n_args) {
		if (cmd->args[i].type != IMAP_ARG_QUOTED ||
		    imap_parse_datetime(cmd->args[i].str, &date) < 0) {
			imap_bad(s, "Invalid date-time in APPEND");
			return;
		}
		i++;
	}
	if (i + 1 != cmd->n_args || !imap_arg_is_string(&cmd->args[i])) {
		imap_bad(s, "APPEND needs a mailbox name and a message");
		return;
	}
	msg = &cmd->args[i];
	if (msg->len == 0) {
		imap_no(s, "Empty message");
		return;
	}
	/* RFC 3516 4.4: binary content cannot be stored as it is (messages
	 * are RFC 5322 text); content without NUL is ordinary 8-bit text. */
	if (msg->literal8 && memchr(msg->str, '\0', msg->len)) {
		imap_no(s, "[UNKNOWN-CTE] Binary content cannot be stored");
		return;
	}
	if (msg->len > s->cfg->limits.max_message_size) {
		imap_no(s, "[TOOBIG] Message larger than %zu bytes",
			s->cfg->limits.max_message_size);
		return;
	}
	if (imap_mailbox_arg(s, &cmd->args[0], name, sizeof(name)) < 0) {
		imap_no(s, "[TRYCREATE] Invalid mailbox name");
		return;
	}
	rc = store_mailbox_get(st, s->id.user_id, name, &mb);
	if (rc == STORE_NOTFOUND) {
		imap_no(s, "[TRYCREATE] No such mailbox");
		return;
	}
	if (rc != STORE_OK) {
		imap_no(s, "[UNAVAILABLE] Cannot store the message now");
		return;
	}
	job = calloc(1, sizeof(*job));
	if (!job) {
		imap_no(s, "[UNAVAILABLE] Out of memory");
		return;
	}
	job->s = s;
	job->user_id = s->id.user_id;
	job->mb = mb;
	job->flags = flags;
	job->date = date;
	memcpy(job->keywords, keywords, sizeof(keywords));
	snprintf(job->client_ip, sizeof(job->client_ip), "%s", conn_peer_address(s->c));
	/* The job takes the message over from the parsed command. */
	job->msg = (unsigned char *)msg->str;
	job->len = msg->len;
	cmd->args[i].str = NULL;
	s->busy = true;
	if (conn_defer(s->c, append_work, append_done, job) < 0) {
		append_job_free(job);
		s->busy = false;
		imap_no(s, "[UNAVAILABLE] Server busy, try again later");
	}
}
