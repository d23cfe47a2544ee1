/*
 * cmd_store.c - STORE and UID STORE (RFC 3501 6.4.6, 6.4.8): FLAGS,
 * +FLAGS, -FLAGS, each optionally .SILENT; keywords are kept as given.
 * CONDSTORE (RFC 7162 3.1.3): UNCHANGEDSINCE skips messages changed since,
 * which the tagged OK lists in [MODIFIED ...].
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_int.h"

#define KEYWORDS_MAX 512 /* store_message.keywords */

enum store_mode { MODE_SET, MODE_ADD, MODE_REMOVE };

static bool keyword_in(const char *list, const char *kw)
{
	size_t len = strlen(kw);
	const char *p = list;

	while (p && *p) {
		const char *sp = strchr(p, ' ');
		size_t l = sp ? (size_t)(sp - p) : strlen(p);
		if (l == len && strncasecmp(p, kw, len) == 0)
			return true;
		p = sp ? sp + 1 : NULL;
	}
	return false;
}

/* Builds the new keyword list of one message; -1 when it would not fit. */
static int merge_keywords(const char *old, char **kws, size_t n_kws, enum store_mode mode,
			  char *out, size_t outlen)
{
	size_t len = 0;

	out[0] = '\0';
	if (mode != MODE_SET && old) {
		const char *p = old;
		while (*p) {
			const char *sp = strchr(p, ' ');
			size_t l = sp ? (size_t)(sp - p) : strlen(p);
			char kw[KEYWORDS_MAX];
			if (l && l < sizeof(kw)) {
				bool drop = false;
				memcpy(kw, p, l);
				kw[l] = '\0';
				if (mode == MODE_REMOVE)
					for (size_t i = 0; i < n_kws; i++)
						drop |= strcasecmp(kws[i], kw) == 0;
				if (!drop) {
					if (len + l + 2 > outlen)
						return -1;
					len += (size_t)snprintf(out + len, outlen - len, "%s%s",
								len ? " " : "", kw);
				}
			}
			if (!sp)
				break;
			p = sp + 1;
		}
	}
	if (mode == MODE_REMOVE)
		return 0;
	for (size_t i = 0; i < n_kws; i++) {
		size_t l = strlen(kws[i]);
		if (keyword_in(out, kws[i]))
			continue;
		if (len + l + 2 > outlen)
			return -1;
		len += (size_t)snprintf(out + len, outlen - len, "%s%s", len ? " " : "", kws[i]);
	}
	return 0;
}

/* RFC 3501 6.4.6 */
void imap_cmd_store(struct imap_session *s, struct imap_command *cmd)
{
	const struct imap_arg *item, *flags;
	enum store_mode mode;
	bool silent;
	const char *name;
	uint32_t bits = 0;
	char *kws[64];
	size_t n_kws = 0, n = 0;
	uint32_t *seqs = NULL;
	bool failed = false, changed = false, conditional = false;
	uint64_t unchanged_since = 0;
	struct imap_buf modified = {0};
	struct imap_arg single;
	const struct imap_arg *args = cmd->args;
	size_t nargs = cmd->n_args;

	/* RFC 7162 3.1.3: STORE set (UNCHANGEDSINCE n) item flags */
	if (nargs >= 2 && args[1].type == IMAP_ARG_LIST) {
		const struct imap_arg *mod = &args[1];
		if (mod->n != 2 || !imap_arg_is(&mod->list[0], "UNCHANGEDSINCE") ||
		    mod->list[1].type != IMAP_ARG_ATOM ||
		    imap_parse_number(mod->list[1].str, mod->list[1].len, INT64_MAX,
				      &unchanged_since) < 0) {
			imap_bad(s, "Invalid STORE modifier (use UNCHANGEDSINCE n)");
			return;
		}
		conditional = true;
		s->condstore = true;
		single = args[0];
		args++;
		nargs--;
		/* ARGS[0] is now the modifier; the set is kept in SINGLE. */
	}
	if (nargs < 3 || (conditional ? single.type : args[0].type) != IMAP_ARG_ATOM ||
	    args[1].type != IMAP_ARG_ATOM) {
		imap_bad(s, "STORE needs a sequence set, an item and flags");
		return;
	}
	{
		const char *set_text = conditional ? single.str : args[0].str;
		if (imap_resolve_set(s, set_text, cmd->uid, &seqs, &n) < 0)
			return;
	}
	item = &args[1];
	name = item->str;
	mode = name[0] == '+' ? MODE_ADD : name[0] == '-' ? MODE_REMOVE : MODE_SET;
	if (mode != MODE_SET)
		name++;
	if (strcasecmp(name, "FLAGS") == 0)
		silent = false;
	else if (strcasecmp(name, "FLAGS.SILENT") == 0)
		silent = true;
	else {
		free(seqs);
		imap_bad(s, "Unknown STORE item (use FLAGS, +FLAGS or -FLAGS)");
		return;
	}
	if (nargs == 3 && args[2].type == IMAP_ARG_LIST) {
		flags = &args[2];
	} else {
		/* RFC 3501 9: flags may also be given without parentheses. */
		single.type = IMAP_ARG_LIST;
		single.list = (struct imap_arg *)&args[2];
		single.n = nargs - 2;
		flags = &single;
	}
	for (size_t i = 0; i < flags->n; i++) {
		const struct imap_arg *f = &flags->list[i];
		int bit;
		if (f->type != IMAP_ARG_ATOM || (bit = imap_flag_bit(f->str)) < 0) {
			free(seqs);
			imap_bad(s, "Invalid flag");
			return;
		}
		if (bit) {
			bits |= (uint32_t)bit;
		} else {
			if (n_kws == sizeof(kws) / sizeof(kws[0])) {
				free(seqs);
				imap_bad(s, "Too many keywords");
				return;
			}
			kws[n_kws++] = f->str;
		}
	}
	if (s->sel.readonly) {
		free(seqs);
		imap_no(s, "[READ-ONLY] Mailbox is read-only");
		return;
	}
	for (size_t k = 0; k < n; k++) {
		struct imap_msg *m = &s->sel.msgs[seqs[k] - 1];
		char keywords[KEYWORDS_MAX];
		uint32_t nf = mode == MODE_SET	 ? bits
			      : mode == MODE_ADD ? m->flags | bits
						 : m->flags & ~bits;
		struct store_message now;
		bool updated = false;
		int rc;

		if (conditional && m->modseq > unchanged_since) {
			ibuf_printf(&modified, "%s%u", modified.len ? "," : "",
				    cmd->uid ? m->uid : seqs[k]);
			continue;
		}

		if (merge_keywords(m->keywords, kws, n_kws, mode, keywords, sizeof(keywords)) < 0) {
			failed = true;
			continue;
		}
		if (nf != m->flags || strcmp(keywords, m->keywords ? m->keywords : "") != 0) {
			/* Only this change is applied: flags other sessions set since the
			 * view was read are kept. */
			rc = store_message_change_flags(conn_store(s->c), m->id, m->flags,
							m->keywords, nf, keywords, &now);
			if (rc == STORE_NOTFOUND)
				continue;
			if (rc != STORE_OK) {
				failed = true;
				continue;
			}
			m->flags = now.flags;
			free(m->keywords);
			m->keywords = now.keywords[0] ? strdup(now.keywords) : NULL;
			m->modseq = now.modseq;
			changed = true;
			updated = true;
		}
		/* RFC 7162 3.1.3: with UNCHANGEDSINCE even .SILENT reports the new MODSEQ. */
		if (!silent || (conditional && updated))
			imap_send_flags(s, seqs[k], m, cmd->uid);
	}
	free(seqs);
	if (changed)
		imap_changed(s->sel.mb.id);
	if (failed) {
		ibuf_free(&modified);
		imap_no(s, "[LIMIT] Some flags could not be stored");
		return;
	}
	if (modified.len && !modified.failed)
		imap_ok(s, "[MODIFIED %s] Conditional STORE failed", modified.p);
	else
		imap_ok(s, "STORE completed");
	ibuf_free(&modified);
}
