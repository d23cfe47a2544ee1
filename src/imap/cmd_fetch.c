/*
 * cmd_fetch.c - FETCH and UID FETCH (RFC 3501 6.4.5, 6.4.8). Messages are
 * decrypted into memory only for the items that need their content, parsed
 * once per message (imap_mime.c) and wiped after the response is built.
 * Fetching a body section without PEEK sets \Seen (RFC 3501 6.4.5) in a
 * read-write mailbox and reports the new FLAGS with it. BINARY[part]
 * (RFC 3516) sends a part decoded (imap_binary.c). UID FETCH (CHANGEDSINCE m
 * VANISHED) first names the expunged UIDs (RFC 7162 3.2.6).
 */
#include <config.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "imap/imap_int.h"
#include "util/i18n.h"
#include "util/log.h"

static void write_internaldate(struct imap_buf *b, int64_t t)
{
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	ibuf_printf(b, "\"%02d-%s-%04d %02d:%02d:%02d +0000\"", tm.tm_mday, months[tm.tm_mon],
		    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static bool needs_content(const struct imap_fetch_att *a)
{
	switch (a->kind) {
	case FETCH_ENVELOPE:
	case FETCH_BODYSTRUCTURE:
	case FETCH_BODY:
	case FETCH_SECTION:
	case FETCH_RFC822:
	case FETCH_RFC822_HEADER:
	case FETCH_RFC822_TEXT:
	case FETCH_BINARY:
	case FETCH_BINARY_SIZE:
		return true;
	default:
		return false;
	}
}

/* Reads nothing below the top-level header, so the header block is enough. */
static bool header_only(const struct imap_fetch_att *a)
{
	if (a->kind == FETCH_ENVELOPE || a->kind == FETCH_RFC822_HEADER)
		return true;
	return a->kind == FETCH_SECTION && a->n_parts == 0 &&
	       (a->section == SECTION_HEADER || a->section == SECTION_HEADER_FIELDS ||
		a->section == SECTION_HEADER_FIELDS_NOT);
}

static bool sets_seen(const struct imap_fetch_att *a)
{
	return ((a->kind == FETCH_SECTION || a->kind == FETCH_BINARY) && !a->peek) ||
	       a->kind == FETCH_RFC822 || a->kind == FETCH_RFC822_TEXT;
}

/* The <offset.count> slice of DATA, LEN that a partial fetch asks for. */
static void partial(const struct imap_fetch_att *a, const char **data, size_t *len)
{
	if (!a->partial)
		return;
	if (a->offset >= *len) {
		*len = 0;
	} else {
		*data += a->offset;
		*len -= a->offset;
		if (*len > a->count)
			*len = a->count;
	}
}

/* Writes a section's bytes (or NIL when it does not exist), partial applied. */
static void write_section(struct imap_buf *b, const char *msg, const struct imap_mime *root,
			  const struct imap_fetch_att *a)
{
	struct imap_buf scratch = {0};
	const char *data;
	size_t len;

	ibuf_str(b, a->name);
	ibuf_str(b, " ");
	if (imap_section(msg, root, a, &scratch, &data, &len) < 0) {
		/* RFC 3501 6.4.5: a part that does not exist is empty. */
		ibuf_str(b, "\"\"");
		ibuf_free(&scratch);
		return;
	}
	partial(a, &data, &len);
	ibuf_printf(b, "{%zu}\r\n", len);
	ibuf_add(b, data, len);
	ibuf_free(&scratch);
}

/* RFC 3516 4.2: BINARY[part]<partial> as a literal, a literal8 ("~{n}")
 * when it holds NUL; BINARY.SIZE[part] as the decoded size. A part that does
 * not exist is empty, as in BODY[]. 0, or imap_binary's -2 / -3. */
static int write_binary(struct imap_buf *b, const char *msg, const struct imap_mime *root,
			const struct imap_fetch_att *a, const char *raw, size_t raw_len)
{
	struct imap_buf scratch = {0};
	const char *data = "";
	size_t len = 0;
	int rc = 0;

	/* The whole message as stored, NUL included (RAW); a part comes from
	 * the textual form, where a part with NUL is base64 to decode. */
	if (a->n_parts == 0 && raw) {
		data = raw;
		len = raw_len;
	} else {
		rc = imap_binary(msg, root, a, &scratch, &data, &len);
	}

	if (rc < -1) {
		ibuf_free(&scratch);
		return rc;
	}
	if (rc == -1) {
		data = "";
		len = 0;
	}
	ibuf_str(b, a->name);
	if (a->kind == FETCH_BINARY_SIZE) {
		ibuf_printf(b, " %zu", len);
		ibuf_free(&scratch);
		return 0;
	}
	partial(a, &data, &len);
	ibuf_printf(b, " %s{%zu}\r\n", memchr(data, '\0', len) ? "~" : "", len);
	ibuf_add(b, data, len);
	ibuf_free(&scratch);
	return 0;
}

/* 0, or write_binary's -2 (unknown transfer encoding) / -3 (out of memory). */
static int write_item(struct imap_buf *b, const struct imap_fetch_att *a, const struct imap_msg *m,
		      const char *msg, size_t msg_len, const struct imap_mime *root, const char *raw,
		      size_t raw_len)
{
	struct imap_fetch_att alias;

	switch (a->kind) {
	case FETCH_FLAGS:
		ibuf_str(b, "FLAGS (");
		imap_format_flags(b, m->flags, m->keywords);
		ibuf_str(b, ")");
		break;
	case FETCH_INTERNALDATE:
		ibuf_str(b, "INTERNALDATE ");
		write_internaldate(b, m->date);
		break;
	case FETCH_RFC822_SIZE:
		ibuf_printf(b, "RFC822.SIZE %lld", (long long)m->size);
		break;
	case FETCH_UID:
		ibuf_printf(b, "UID %u", m->uid);
		break;
	case FETCH_MODSEQ:
		ibuf_printf(b, "MODSEQ (%llu)", (unsigned long long)m->modseq);
		break;
	case FETCH_ENVELOPE:
		ibuf_str(b, "ENVELOPE ");
		imap_write_envelope(b, msg, root);
		break;
	case FETCH_BODYSTRUCTURE:
	case FETCH_BODY:
		ibuf_str(b, a->kind == FETCH_BODY ? "BODY " : "BODYSTRUCTURE ");
		imap_write_bodystructure(b, msg, root, a->kind == FETCH_BODYSTRUCTURE);
		break;
	case FETCH_SECTION:
		write_section(b, msg, root, a);
		break;
	case FETCH_RFC822:
		ibuf_printf(b, "RFC822 {%zu}\r\n", msg_len);
		ibuf_add(b, msg, msg_len);
		break;
	case FETCH_RFC822_HEADER:
	case FETCH_RFC822_TEXT:
		memset(&alias, 0, sizeof(alias));
		alias.kind = FETCH_SECTION;
		alias.section = a->kind == FETCH_RFC822_HEADER ? SECTION_HEADER : SECTION_TEXT;
		strcpy(alias.name,
		       a->kind == FETCH_RFC822_HEADER ? "RFC822.HEADER" : "RFC822.TEXT");
		write_section(b, msg, root, &alias);
		break;
	case FETCH_BINARY:
	case FETCH_BINARY_SIZE:
		return write_binary(b, msg, root, a, raw, raw_len);
	}
	return 0;
}

/* RFC 7162 3.2.6: the UIDs of SET expunged since SINCE, as VANISHED (EARLIER). */
static void send_vanished_earlier(struct imap_session *s, const char *set_text, uint64_t since)
{
	struct imap_seqset set;
	uint32_t *uids = NULL;
	size_t n = 0, kept = 0;
	uint32_t max = s->sel.mb.uidnext > 1 ? s->sel.mb.uidnext - 1 : 0;
	char err[128];

	if (imap_seqset_parse(set_text, &set, err, sizeof(err)) < 0)
		return; /* imap_resolve_set() has answered BAD already */
	if (s->sel.n && s->sel.msgs[s->sel.n - 1].uid > max)
		max = s->sel.msgs[s->sel.n - 1].uid;
	if (store_expunged_since(conn_store(s->c), s->sel.mb.id, since, &uids, &n) == STORE_OK) {
		for (size_t i = 0; i < n; i++)
			if (imap_seqset_contains(&set, uids[i], max))
				uids[kept++] = uids[i];
		imap_send_vanished(s, true, uids, kept);
	}
	free(uids);
	imap_seqset_free(&set);
}

/* A FETCH in progress. Messages are served in slices of at most
 * FETCH_SLICE_USEC on the event loop; between slices the session is busy
 * (pipelined input waits) and other connections of the loop get their turn. */
struct imap_fetch_run {
	struct imap_session *s;
	struct imap_fetch_atts atts;
	uint32_t *seqs;
	size_t n, next;
	uint64_t changed_since;
	bool content, whole, seen, has_flags, has_uid, has_modseq, conditional, uid;
	bool failed, changed, unknown_cte, unreadable;
};

/* Decrypting and formatting may take this long before the loop is let go. */
#define FETCH_SLICE_USEC 20000

static uint64_t now_usec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void imap_fetch_run_free(struct imap_fetch_run *r)
{
	if (!r)
		return;
	free(r->seqs);
	imap_fetch_atts_free(&r->atts);
	free(r);
}

static void fetch_one(struct imap_fetch_run *r, uint32_t seq)
{
	struct imap_session *s = r->s;
	struct store *st = conn_store(s->c);
	struct imap_msg *m = &s->sel.msgs[seq - 1];
	unsigned char *msg = NULL, *raw = NULL;
	size_t msg_len = 0, raw_len = 0;
	struct imap_mime *root = NULL;
	struct imap_buf b = {0};
	bool flags_now = false;

	if (r->conditional && m->modseq <= r->changed_since)
		return;

	if (r->content) {
		int rc = r->whole ? imap_message_load_raw(s, m, &msg, &msg_len)
				  : imap_message_load_header(s, m, &msg, &msg_len);
		if (rc == STORE_NOTFOUND)
			return; /* expunged meanwhile by another session */
		/* A message stored with NUL: BINARY[] gives it as it is, the rest
		 * its textual form. */
		if (rc == STORE_OK && r->whole && memchr(msg, '\0', msg_len)) {
			raw = msg;
			raw_len = msg_len;
			if (imap_binary_text(raw, raw_len, false, &msg, &msg_len) != 0)
				rc = STORE_ERR;
		}
		if (rc != STORE_OK || !(root = imap_mime_parse((char *)msg, msg_len))) {
			imap_wipe_free(msg, msg_len);
			imap_wipe_free(raw, raw_len);
			r->failed = true;
			r->unreadable |= rc == IMAP_UNREADABLE;
			return;
		}
	}
	if (r->seen && !(m->flags & FLAG_SEEN)) {
		struct store_message now;
		/* Flags other sessions set since the view was read are kept. */
		if (store_message_change_flags(st, m->id, m->flags, m->keywords,
					       m->flags | FLAG_SEEN, m->keywords, &now) == STORE_OK) {
			m->flags = now.flags;
			if (strcmp(now.keywords, m->keywords ? m->keywords : "") != 0) {
				free(m->keywords);
				m->keywords = now.keywords[0] ? strdup(now.keywords) : NULL;
			}
			m->modseq = now.modseq;
			flags_now = !r->has_flags;
			r->changed = true;
		}
	}
	ibuf_printf(&b, "* %u FETCH (", seq);
	if ((r->uid || s->qresync || (flags_now && s->condstore)) && !r->has_uid)
		ibuf_printf(&b, "UID %u ", m->uid);
	for (size_t i = 0; i < r->atts.n && !b.failed; i++) {
		int rc;
		if (i)
			ibuf_str(&b, " ");
		rc = write_item(&b, &r->atts.atts[i], m, (const char *)msg, msg_len, root,
				(const char *)raw, raw_len);
		if (rc == -2)
			r->unknown_cte = true;
		if (rc < 0)
			b.failed = true;
	}
	if (flags_now) {
		ibuf_str(&b, " FLAGS (");
		imap_format_flags(&b, m->flags, m->keywords);
		ibuf_str(&b, ")");
	}
	if ((r->conditional || flags_now) && s->condstore && !r->has_modseq)
		ibuf_printf(&b, " MODSEQ (%llu)", (unsigned long long)m->modseq);
	ibuf_str(&b, ")\r\n");
	if (b.failed)
		r->failed |= !r->unknown_cte;
	else
		imap_write(s, b.p, b.len);
	ibuf_free(&b);
	imap_mime_free(root);
	imap_wipe_free(msg, msg_len);
	imap_wipe_free(raw, raw_len);
}

/* The tagged reply once every message is served. */
static void fetch_finish(struct imap_fetch_run *r)
{
	struct imap_session *s = r->s;
	bool failed = r->failed, unknown_cte = r->unknown_cte, unreadable = r->unreadable;

	if (r->changed)
		imap_changed(s->sel.mb.id);
	s->fetch_run = NULL;
	imap_fetch_run_free(r);
	if (unknown_cte && !failed) {
		imap_no(s, "[UNKNOWN-CTE] A part has a transfer encoding Postern cannot decode");
		return;
	}
	if (failed) {
		log_error(_("imap: some messages of %s could not be read"), s->id.address);
		/* Permanent, so not [UNAVAILABLE]: a client would retry for ever. */
		if (unreadable)
			imap_no(s, "Some messages cannot be decrypted: they were sealed to a key "
				   "that a password reset replaced");
		else
			imap_no(s, "[UNAVAILABLE] Some messages could not be read");
		return;
	}
	imap_ok(s, "FETCH completed");
}

static void fetch_resume(struct conn *c, void *arg);

/* Serves messages for up to FETCH_SLICE_USEC; true when the FETCH is done. */
static bool fetch_slice(struct imap_fetch_run *r)
{
	struct imap_session *s = r->s;
	uint64_t start = now_usec();

	while (r->next < r->n && !conn_is_closing(s->c)) {
		fetch_one(r, r->seqs[r->next++]);
		if (r->next < r->n && now_usec() - start > FETCH_SLICE_USEC &&
		    conn_after(s->c, 0, fetch_resume, r) == 0) {
			s->busy = true;
			s->fetch_run = r;
			return false;
		}
	}
	fetch_finish(r);
	return true;
}

static void fetch_resume(struct conn *c, void *arg)
{
	struct imap_fetch_run *r = arg;
	struct imap_session *s = r->s; /* R is freed once the FETCH is done */

	(void)c;
	if (fetch_slice(r))
		imap_continue_input(s);
}

/* RFC 3501 6.4.5 and 6.4.8 */
void imap_cmd_fetch(struct imap_session *s, struct imap_command *cmd)
{
	struct imap_fetch_run *r = calloc(1, sizeof(*r));
	char err[160];
	bool vanished = false;

	if (!r) {
		imap_no(s, "[SERVERBUG] Out of memory");
		return;
	}
	r->s = s;
	r->uid = cmd->uid;
	if (cmd->n_args < 2 || cmd->n_args > 3 || cmd->args[0].type != IMAP_ARG_ATOM) {
		free(r);
		imap_bad(s, "FETCH needs a sequence set and data items");
		return;
	}
	/* RFC 7162 3.1.4 and 3.2.6: FETCH set items (CHANGEDSINCE n [VANISHED]) */
	if (cmd->n_args == 3) {
		const struct imap_arg *mod = &cmd->args[2];
		bool ok = mod->type == IMAP_ARG_LIST && mod->n > 0;
		for (size_t i = 0; ok && i < mod->n; i++) {
			const struct imap_arg *a = &mod->list[i];
			if (imap_arg_is(a, "CHANGEDSINCE") && !r->conditional && i + 1 < mod->n &&
			    mod->list[i + 1].type == IMAP_ARG_ATOM &&
			    imap_parse_number(mod->list[i + 1].str, mod->list[i + 1].len, INT64_MAX,
					      &r->changed_since) == 0 &&
			    r->changed_since > 0) {
				r->conditional = true;
				i++;
			} else if (imap_arg_is(a, "VANISHED") && !vanished) {
				vanished = true;
			} else {
				ok = false;
			}
		}
		if (!ok) {
			free(r);
			imap_bad(s, "Invalid FETCH modifier (use CHANGEDSINCE n, VANISHED)");
			return;
		}
		if (vanished && (!cmd->uid || !r->conditional || !s->qresync)) {
			free(r);
			imap_bad(s, "VANISHED needs UID FETCH, CHANGEDSINCE and ENABLE QRESYNC");
			return;
		}
		s->condstore = true;
	}
	if (imap_fetch_parse(&cmd->args[1], &r->atts, err, sizeof(err)) < 0) {
		free(r);
		imap_bad(s, "%s", err);
		return;
	}
	if (imap_resolve_set(s, cmd->args[0].str, cmd->uid, &r->seqs, &r->n) < 0) {
		imap_fetch_run_free(r);
		return;
	}
	for (size_t i = 0; i < r->atts.n; i++) {
		const struct imap_fetch_att *a = &r->atts.atts[i];
		r->content |= needs_content(a);
		r->whole |= needs_content(a) && !header_only(a);
		r->seen |= sets_seen(a);
		r->has_flags |= a->kind == FETCH_FLAGS;
		r->has_uid |= a->kind == FETCH_UID;
		r->has_modseq |= a->kind == FETCH_MODSEQ;
	}
	if (r->has_modseq)
		s->condstore = true; /* RFC 7162 3.1: a CONDSTORE-enabling command */
	if (vanished)
		send_vanished_earlier(s, cmd->args[0].str, r->changed_since);
	if (s->sel.readonly)
		r->seen = false;
	(void)fetch_slice(r);
}
