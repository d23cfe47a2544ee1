/*
 * cmd_list.c - LIST and LSUB (RFC 3501 6.3.8, 6.3.9) with the CHILDREN
 * (RFC 3348) and SPECIAL-USE (RFC 6154) attributes. "/" separates levels;
 * a parent that does not exist itself but has children is listed as
 * \Noselect. The selection options (SPECIAL-USE) and (SUBSCRIBED) of
 * RFC 5258 are accepted so clients that send them get the right subset.
 */
#include <config.h>

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_int.h"

struct entry {
	char *name;
	bool exists;
	bool subscribed;
	enum store_special_use use;
};

struct collect {
	struct entry *e;
	size_t n, cap;
	bool failed;
};

static struct entry *find(struct collect *c, const char *name)
{
	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->e[i].name, name) == 0)
			return &c->e[i];
	return NULL;
}

static struct entry *add(struct collect *c, const char *name, size_t len)
{
	struct entry *e;

	if (c->n == c->cap) {
		size_t ncap = c->cap ? c->cap * 2 : 32;
		struct entry *ne = realloc(c->e, ncap * sizeof(*ne));
		if (!ne) {
			c->failed = true;
			return NULL;
		}
		c->e = ne;
		c->cap = ncap;
	}
	e = &c->e[c->n];
	memset(e, 0, sizeof(*e));
	e->name = strndup(name, len);
	if (!e->name) {
		c->failed = true;
		return NULL;
	}
	c->n++;
	return e;
}

static int collect_cb(void *arg, const struct store_mailbox *mb)
{
	struct collect *c = arg;
	struct entry *e = find(c, mb->name);

	if (!e)
		e = add(c, mb->name, strlen(mb->name));
	if (!e)
		return -1;
	e->exists = true;
	e->subscribed = mb->subscribed;
	e->use = mb->special_use;
	/* Parents that are not mailboxes themselves. */
	for (const char *p = strchr(mb->name, '/'); p; p = strchr(p + 1, '/')) {
		char parent[STORE_MAILBOX_NAME_MAX + 1];
		size_t len = (size_t)(p - mb->name);
		memcpy(parent, mb->name, len);
		parent[len] = '\0';
		if (!find(c, parent) && !add(c, parent, len))
			return -1;
	}
	return 0;
}

static bool has_children(const struct collect *c, const char *name)
{
	size_t len = strlen(name);
	for (size_t i = 0; i < c->n; i++)
		if (strncmp(c->e[i].name, name, len) == 0 && c->e[i].name[len] == '/')
			return true;
	return false;
}

static const char *use_attribute(enum store_special_use use)
{
	switch (use) {
	case SPECIAL_SENT:
		return " \\Sent";
	case SPECIAL_DRAFTS:
		return " \\Drafts";
	case SPECIAL_JUNK:
		return " \\Junk";
	case SPECIAL_TRASH:
		return " \\Trash";
	case SPECIAL_ARCHIVE:
		return " \\Archive";
	default:
		return "";
	}
}

/* RFC 3501 6.3.8 and 6.3.9, RFC 5258 3 (selection options only) */
void imap_cmd_list(struct imap_session *s, struct imap_command *cmd)
{
	bool lsub = strcmp(cmd->verb, "LSUB") == 0;
	bool only_special = false, only_subscribed = lsub;
	const struct imap_arg *args = cmd->args;
	size_t nargs = cmd->n_args;
	char pattern[2 * STORE_MAILBOX_NAME_MAX + 2];
	struct collect c = {0};
	struct imap_buf b = {0};

	if (!lsub && nargs >= 1 && args[0].type == IMAP_ARG_LIST) {
		for (size_t i = 0; i < args[0].n; i++) {
			if (imap_arg_is(&args[0].list[i], "SPECIAL-USE"))
				only_special = true;
			else if (imap_arg_is(&args[0].list[i], "SUBSCRIBED"))
				only_subscribed = true;
			else if (!imap_arg_is(&args[0].list[i], "RECURSIVEMATCH")) {
				imap_bad(s, "Unsupported LIST selection option");
				return;
			}
		}
		args++;
		nargs--;
	}
	/* RETURN (...) options: CHILDREN and SPECIAL-USE are always returned. */
	if (!lsub && nargs == 4 && imap_arg_is(&args[2], "RETURN") && args[3].type == IMAP_ARG_LIST)
		nargs = 2;
	if (nargs != 2 || !imap_arg_is_string(&args[0]) || !imap_arg_is_string(&args[1])) {
		imap_bad(s, "%s needs a reference and a mailbox pattern", cmd->verb);
		return;
	}
	if (args[1].len == 0 && !lsub) {
		/* RFC 3501 6.3.8: the delimiter and root of the reference. */
		imap_untagged(s, "LIST (\\Noselect) \"/\" \"\"");
		imap_ok(s, "LIST completed");
		return;
	}
	if (args[0].len + args[1].len >= sizeof(pattern)) {
		imap_bad(s, "Pattern too long");
		return;
	}
	memcpy(pattern, args[0].str, args[0].len);
	memcpy(pattern + args[0].len, args[1].str, args[1].len);
	pattern[args[0].len + args[1].len] = '\0';
	if (strncasecmp(pattern, "INBOX", 5) == 0 && (pattern[5] == '\0' || pattern[5] == '/'))
		memcpy(pattern, "INBOX", 5);
	if (store_mailbox_list(conn_store(s->c), s->id.user_id, collect_cb, &c) != STORE_OK ||
	    c.failed) {
		imap_no(s, "[UNAVAILABLE] Cannot list mailboxes now");
		goto out;
	}
	for (size_t i = 0; i < c.n; i++) {
		const struct entry *e = &c.e[i];
		bool children = has_children(&c, e->name);
		if (!imap_list_match(pattern, e->name))
			continue;
		if (only_subscribed && !e->subscribed)
			continue;
		if (only_special && e->use == SPECIAL_NONE)
			continue;
		b.len = 0;
		ibuf_printf(&b, "* %s (%s%s%s%s) \"/\" ", cmd->verb, e->exists ? "" : "\\Noselect ",
			    children ? "\\HasChildren" : "\\HasNoChildren",
			    only_subscribed && !lsub ? " \\Subscribed" : "", use_attribute(e->use));
		ibuf_nstring(&b, e->name, strlen(e->name));
		ibuf_str(&b, "\r\n");
		if (!b.failed)
			conn_write(s->c, b.p, b.len);
	}
	imap_ok(s, "%s completed", cmd->verb);
out:
	for (size_t i = 0; i < c.n; i++)
		free(c.e[i].name);
	free(c.e);
	ibuf_free(&b);
}
