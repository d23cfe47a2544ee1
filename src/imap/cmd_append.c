/*
 * cmd_append.c - APPEND (RFC 3501 6.3.11) with APPENDUID (RFC 4315) and
 * APPENDLIMIT (RFC 7889). The message goes through deliver_to_mailbox():
 * scanned (result stored 1:1), sealed to the owner's key, stored.
 */
#include <config.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "deliver/deliver.h"
#include "imap/imap_int.h"
#include "util/i18n.h"
#include "util/log.h"

/* RFC 3501 6.3.11 */
void imap_cmd_append(struct imap_session *s, struct imap_command *cmd)
{
	char name[STORE_MAILBOX_NAME_MAX + 1];
	char keywords[512] = "";
	struct store *st = conn_store(s->c);
	const struct imap_arg *msg;
	struct store_mailbox mb;
	struct store_user user;
	struct store_message out;
	struct scan_input scan_in = {0};
	uint32_t flags = 0;
	int64_t date = (int64_t)time(NULL);
	size_t i = 1;
	enum deliver_status ds;
	int rc;

	if (cmd->n_args < 2 || cmd->n_args > 4) {
		imap_bad(s, "APPEND needs a mailbox name and a message");
		return;
	}
	if (cmd->args[i].type == IMAP_ARG_LIST) {
		const struct imap_arg *fl = &cmd->args[i++];
		size_t klen = 0;
		for (size_t k = 0; k < fl->n; k++) {
			int bit = fl->list[k].type == IMAP_ARG_ATOM ? imap_flag_bit(fl->list[k].str) : -1;
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
	if (msg->len > s->cfg->limits.max_message_size) {
		imap_no(s, "[TOOBIG] Message larger than %zu bytes", s->cfg->limits.max_message_size);
		return;
	}
	if (imap_mailbox_name(&cmd->args[0], name, sizeof(name)) < 0) {
		imap_no(s, "[TRYCREATE] Invalid mailbox name");
		return;
	}
	rc = store_mailbox_get(st, s->id.user_id, name, &mb);
	if (rc == STORE_NOTFOUND) {
		imap_no(s, "[TRYCREATE] No such mailbox");
		return;
	}
	memset(&user, 0, sizeof(user));
	if (rc == STORE_OK)
		rc = store_user_get_by_id(st, s->id.user_id, &user);
	if (rc != STORE_OK || store_begin(st) != STORE_OK) {
		store_user_clear(&user);
		imap_no(s, "[UNAVAILABLE] Cannot store the message now");
		return;
	}
	scan_in.client_ip = conn_peer_address(s->c);
	scan_in.user_id = s->id.user_id;
	ds = deliver_to_mailbox(st, &user, mb.id, flags, date, (const unsigned char *)msg->str,
				msg->len, &scan_in, &out);
	store_user_clear(&user);
	if (ds == DELIVER_OK && keywords[0]) {
		uint64_t modseq;
		if (store_message_set_flags(st, out.id, flags, keywords, &modseq) != STORE_OK)
			ds = DELIVER_TEMPFAIL;
	}
	if (ds != DELIVER_OK || store_commit(st) != STORE_OK) {
		store_rollback(st);
		if (ds == DELIVER_QUOTA) {
			imap_no(s, "[OVERQUOTA] Quota exceeded");
			return;
		}
		log_error(_("imap: APPEND for %s failed"), s->id.address);
		imap_no(s, "[UNAVAILABLE] Cannot store the message now");
		return;
	}
	imap_changed(mb.id);
	imap_ok(s, "[APPENDUID %u %u] APPEND completed", mb.uidvalidity, out.uid);
}
