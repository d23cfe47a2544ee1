/*
 * cmd_quota.c - GETQUOTAROOT, GETQUOTA and SETQUOTA (RFC 9208). Every
 * mailbox of a user lies under one quota root, "", whose only resource is
 * STORAGE: the user's used_bytes against quota_bytes, in units of 1024
 * octets. A user without a limit has the root with no resources. Limits are
 * set by the administrator (posternctl quota set), so SETQUOTA is refused.
 */
#include <config.h>

#include <string.h>

#include "imap/imap_int.h"

/* "* QUOTA "" (STORAGE used limit)" for the session's user; -1 when the store fails. */
static int send_quota(struct imap_session *s)
{
	struct store_user u;
	struct imap_buf b = {0};

	if (store_user_get_by_id(conn_store(s->c), s->id.user_id, &u) != STORE_OK)
		return -1;
	ibuf_str(&b, "* QUOTA \"\" (");
	if (u.quota_bytes > 0)
		ibuf_printf(&b, "STORAGE %llu %llu",
			    (unsigned long long)imap_quota_kb(u.used_bytes),
			    (unsigned long long)imap_quota_kb(u.quota_bytes));
	ibuf_str(&b, ")\r\n");
	store_user_clear(&u);
	if (!b.failed)
		imap_write(s, b.p, b.len);
	ibuf_free(&b);
	return 0;
}

/* RFC 9208 4.3.2 */
void imap_cmd_getquotaroot(struct imap_session *s, struct imap_command *cmd)
{
	char name[STORE_MAILBOX_NAME_MAX + 1];
	struct store_mailbox mb;
	struct imap_buf b = {0};
	int rc;

	if (cmd->n_args != 1 || !imap_arg_is_string(&cmd->args[0])) {
		imap_bad(s, "GETQUOTAROOT needs a mailbox name");
		return;
	}
	rc = imap_mailbox_find(s, &cmd->args[0], name, sizeof(name), &mb);
	if (rc == STORE_NOTFOUND)
		return;
	if (rc != STORE_OK) {
		imap_no(s, "[UNAVAILABLE] Cannot read the quota now");
		return;
	}
	ibuf_str(&b, "* QUOTAROOT ");
	imap_write_mailbox(s, &b, name);
	ibuf_str(&b, " \"\"\r\n");
	if (!b.failed)
		imap_write(s, b.p, b.len);
	ibuf_free(&b);
	if (send_quota(s) < 0) {
		imap_no(s, "[UNAVAILABLE] Cannot read the quota now");
		return;
	}
	imap_ok(s, "GETQUOTAROOT completed");
}

/* RFC 9208 4.3.1 */
void imap_cmd_getquota(struct imap_session *s, struct imap_command *cmd)
{
	if (cmd->n_args != 1 || !imap_arg_is_string(&cmd->args[0])) {
		imap_bad(s, "GETQUOTA needs a quota root");
		return;
	}
	if (cmd->args[0].len != 0) {
		imap_no(s, "[NONEXISTENT] No such quota root");
		return;
	}
	if (send_quota(s) < 0) {
		imap_no(s, "[UNAVAILABLE] Cannot read the quota now");
		return;
	}
	imap_ok(s, "GETQUOTA completed");
}

/* RFC 9208 4.3.3: no QUOTASET capability, so the limit cannot be changed here. */
void imap_cmd_setquota(struct imap_session *s, struct imap_command *cmd)
{
	if (cmd->n_args != 2 || !imap_arg_is_string(&cmd->args[0]) ||
	    cmd->args[1].type != IMAP_ARG_LIST) {
		imap_bad(s, "SETQUOTA needs a quota root and a list of limits");
		return;
	}
	imap_no(s, "[NOPERM] Quotas are set by the administrator");
}
