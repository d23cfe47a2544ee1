/*
 * cmd_list.c - LIST and LSUB (RFC 3501 6.3.8, 6.3.9) with the CHILDREN
 * (RFC 3348) and SPECIAL-USE (RFC 6154) attributes. "/" separates levels;
 * a parent that does not exist itself but has children is listed as
 * \Noselect (\NonExistent in the extended syntax and in IMAP4rev2). Names
 * go out in modified UTF-7, or UTF-8 in IMAP4rev2 (imap_wire_names.c). LIST-EXTENDED
 * (RFC 5258): selection options SUBSCRIBED, SPECIAL-USE, REMOTE and
 * RECURSIVEMATCH (with CHILDINFO), several patterns, return options
 * SUBSCRIBED, CHILDREN, SPECIAL-USE and STATUS (RFC 5819 LIST-STATUS).
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

/* Does E meet the selection criteria? */
static bool selected(const struct imap_list_opts *o, const struct entry *e)
{
	if (o->sel_subscribed && !e->subscribed)
		return false;
	if (o->sel_special && (!e->exists || e->use == SPECIAL_NONE))
		return false;
	return true;
}

static bool matches(char patterns[][2 * STORE_MAILBOX_NAME_MAX + 2], size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (imap_list_match(patterns[i], name))
			return true;
	return false;
}

/* RFC 5258 3.5: a descendant of NAME that meets the selection criteria
 * but is not listed itself (it does not match a pattern). */
static bool child_info(const struct imap_list_opts *o, const struct collect *c,
		       char patterns[][2 * STORE_MAILBOX_NAME_MAX + 2], const char *name)
{
	size_t len = strlen(name);
	for (size_t i = 0; i < c->n; i++)
		if (strncmp(c->e[i].name, name, len) == 0 && c->e[i].name[len] == '/' &&
		    selected(o, &c->e[i]) && !matches(patterns, o->n_patterns, c->e[i].name))
			return true;
	return false;
}

/* RFC 3501 6.3.8 and 6.3.9, RFC 5258, RFC 5819 */
void imap_cmd_list(struct imap_session *s, struct imap_command *cmd)
{
	bool lsub = strcmp(cmd->verb, "LSUB") == 0;
	struct imap_list_opts o;
	char err[128];
	char patterns[IMAP_LIST_PATTERNS_MAX][2 * STORE_MAILBOX_NAME_MAX + 2];
	struct collect c = {0};
	struct imap_buf b = {0};

	if (imap_list_parse(cmd->args, cmd->n_args, lsub, &o, err, sizeof(err)) < 0) {
		imap_bad(s, "%s", err);
		return;
	}
	if (lsub)
		o.sel_subscribed = true;
	if (o.n_patterns == 1 && o.patterns[0]->len == 0 && !lsub) {
		/* RFC 3501 6.3.8: the delimiter and root of the reference. */
		imap_untagged(s, "LIST (\\Noselect) \"/\" \"\"");
		imap_ok(s, "LIST completed");
		return;
	}
	for (size_t i = 0; i < o.n_patterns; i++) {
		const struct imap_arg *ref = o.reference, *pat = o.patterns[i];
		char *p = patterns[i];
		if (ref->len + pat->len >= sizeof(patterns[i])) {
			imap_bad(s, "Pattern too long");
			return;
		}
		memcpy(p, ref->str, ref->len);
		memcpy(p + ref->len, pat->str, pat->len);
		p[ref->len + pat->len] = '\0';
		if (imap_pattern_decode(s, p, sizeof(patterns[i])) < 0) {
			imap_bad(s, "Pattern is not valid modified UTF-7");
			return;
		}
		if (strncasecmp(p, "INBOX", 5) == 0 && (p[5] == '\0' || p[5] == '/'))
			memcpy(p, "INBOX", 5);
	}
	if (store_mailbox_list(conn_store(s->c), s->id.user_id, collect_cb, &c) != STORE_OK ||
	    c.failed) {
		imap_no(s, "[UNAVAILABLE] Cannot list mailboxes now");
		goto out;
	}
	for (size_t i = 0; i < c.n; i++) {
		const struct entry *e = &c.e[i];
		bool children = has_children(&c, e->name);
		bool info;
		if (!matches(patterns, o.n_patterns, e->name))
			continue;
		info = o.recursive && child_info(&o, &c, patterns, e->name);
		if (!selected(&o, e) && !info)
			continue;
		b.len = 0;
		ibuf_printf(&b, "* %s (%s%s%s%s) \"/\" ", cmd->verb,
			    e->exists ? ""
				      : (o.extended || s->rev2 ? "\\NonExistent " : "\\Noselect "),
			    children ? "\\HasChildren" : "\\HasNoChildren",
			    !lsub && e->subscribed && (o.sel_subscribed || o.ret_subscribed)
				? " \\Subscribed"
				: "",
			    use_attribute(e->use));
		imap_write_mailbox(s, &b, e->name);
		if (info)
			ibuf_printf(&b, " (\"CHILDINFO\" (%s%s%s))",
				    o.sel_subscribed ? "\"SUBSCRIBED\"" : "",
				    o.sel_subscribed && o.sel_special ? " " : "",
				    o.sel_special ? "\"SPECIAL-USE\"" : "");
		ibuf_str(&b, "\r\n");
		if (!b.failed)
			imap_write(s, b.p, b.len);
		if (o.ret_status && e->exists) {
			struct store_mailbox mb;
			/* RFC 5819: a mailbox that cannot be read gets no STATUS line. */
			if (store_mailbox_get(conn_store(s->c), s->id.user_id, e->name, &mb) ==
			    STORE_OK)
				(void)imap_status_send(s, e->name, &mb, &o.status);
		}
	}
	imap_ok(s, "%s completed", cmd->verb);
out:
	for (size_t i = 0; i < c.n; i++)
		free(c.e[i].name);
	free(c.e);
	ibuf_free(&b);
}
