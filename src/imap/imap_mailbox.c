/*
 * imap_mailbox.c - the session's view of its selected mailbox: the list of
 * messages by sequence number, kept in step with the store. imap_sync()
 * compares the view with the store and reports what other sessions (or
 * delivery) changed: EXPUNGE (only when the current command allows it,
 * RFC 3501 7.4.1; until then expunged messages keep their numbers), FETCH
 * FLAGS and EXISTS. Also: decrypting one message, flag names, Junk training.
 */
#include <config.h>

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "crypto/crypto.h"
#include "imap/imap_int.h"
#include "scan/scan.h"
#include "trace/trace.h"
#include "util/i18n.h"
#include "util/log.h"
#include "util/notify.h"

struct list_ctx {
	struct imap_msg *msgs;
	size_t n, cap;
	uint32_t *gone; /* UIDs expunged since the view's modseq, ascending */
	size_t n_gone, cap_gone;
	struct store_view_state state;
	bool failed;
};

static bool grow(void **p, size_t *cap, size_t n, size_t size)
{
	size_t ncap;
	void *np;

	if (n < *cap)
		return true;
	ncap = *cap ? *cap * 2 : 64;
	np = realloc(*p, ncap * size);
	if (!np)
		return false;
	*p = np;
	*cap = ncap;
	return true;
}

static int list_cb(void *arg, const struct store_message *m, bool expunged)
{
	struct list_ctx *l = arg;
	struct imap_msg *im;

	if (expunged) {
		if (!grow((void **)&l->gone, &l->cap_gone, l->n_gone, sizeof(*l->gone))) {
			l->failed = true;
			return -1;
		}
		l->gone[l->n_gone++] = m->uid;
		return 0;
	}
	if (!grow((void **)&l->msgs, &l->cap, l->n, sizeof(*l->msgs))) {
		l->failed = true;
		return -1;
	}
	im = &l->msgs[l->n];
	memset(im, 0, sizeof(*im));
	im->id = m->id;
	im->uid = m->uid;
	im->flags = m->flags;
	im->size = m->size;
	im->date = m->internal_date;
	im->modseq = m->modseq;
	if (m->keywords[0]) {
		im->keywords = strdup(m->keywords);
		if (!im->keywords) {
			l->failed = true;
			return -1;
		}
	}
	l->n++;
	return 0;
}

static void msgs_free(struct imap_msg *msgs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(msgs[i].keywords);
	free(msgs);
}

static void list_free(struct list_ctx *l)
{
	msgs_free(l->msgs, l->n);
	free(l->gone);
	memset(l, 0, sizeof(*l));
}

static int msg_cmp(const void *a, const void *b)
{
	uint32_t x = ((const struct imap_msg *)a)->uid, y = ((const struct imap_msg *)b)->uid;

	return x < y ? -1 : x > y;
}

static int uid_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static bool msgs_sorted(const struct imap_msg *v, size_t n)
{
	for (size_t i = 1; i < n; i++)
		if (v[i - 1].uid > v[i].uid)
			return false;
	return true;
}

static bool uids_sorted(const uint32_t *v, size_t n)
{
	for (size_t i = 1; i < n; i++)
		if (v[i - 1] > v[i])
			return false;
	return true;
}

/* The messages changed and the UIDs expunged since SINCE (every message for
 * 0), with the mailbox's counters, in one read. STORE_NOTFOUND (L empty)
 * when the mailbox is gone. */
static int load_view(struct imap_session *s, int64_t mailbox_id, uint64_t since, struct list_ctx *l)
{
	int rc;

	memset(l, 0, sizeof(*l));
	rc = store_mailbox_view(conn_store(s->c), mailbox_id, since, &l->state, list_cb, l);
	if (rc == STORE_OK && !l->failed) {
		/* The store gives them in no particular order (mostly in order already). */
		if (!msgs_sorted(l->msgs, l->n))
			qsort(l->msgs, l->n, sizeof(*l->msgs), msg_cmp);
		if (!uids_sorted(l->gone, l->n_gone))
			qsort(l->gone, l->n_gone, sizeof(*l->gone), uid_cmp);
		return STORE_OK;
	}
	list_free(l);
	return rc == STORE_NOTFOUND ? STORE_NOTFOUND : STORE_ERR;
}

/* The view now is the store's at STATE. */
static void view_synced(struct imap_selected *sel, const struct store_view_state *state)
{
	sel->synced = state->highestmodseq;
	if (state->highestmodseq) {
		sel->mb.highestmodseq = state->highestmodseq;
		sel->mb.uidnext = state->uidnext;
		sel->mb.messages = state->messages;
	}
}

static void changed_cb(void *arg)
{
	struct imap_session *s = arg;

	/* Only IDLE reports at once; other states wait for the next command. */
	if (s->idling && s->state == IMAP_STATE_SELECTED && !conn_is_closing(s->c))
		imap_sync(s, true);
}

/* Thousands of sessions idle with their view kept: it holds no spare room. */
static void view_fit(struct imap_selected *sel)
{
	struct imap_msg *fit;

	if (sel->n == 0 || sel->n >= sel->cap)
		return;
	fit = realloc(sel->msgs, sel->n * sizeof(*fit));
	if (fit) {
		sel->msgs = fit;
		sel->cap = sel->n;
	}
}

int imap_select_load(struct imap_session *s, const struct store_mailbox *mb, bool readonly)
{
	struct list_ctx l;

	imap_select_close(s);
	if (load_view(s, mb->id, 0, &l) != STORE_OK)
		return STORE_ERR;
	s->sel.mb = *mb;
	s->sel.readonly = readonly;
	s->sel.msgs = l.msgs;
	s->sel.n = l.n;
	s->sel.cap = l.cap;
	l.msgs = NULL;
	l.n = 0;
	view_synced(&s->sel, &l.state);
	list_free(&l);
	view_fit(&s->sel);
	s->sel.sub = notify_subscribe(mb->id, s->id.user_id, conn_base(s->c), changed_cb, s);
	return STORE_OK;
}

void imap_saved_set(struct imap_session *s, uint32_t *uids, size_t n)
{
	free(s->saved);
	s->saved = uids;
	s->n_saved = uids ? n : 0;
}

bool imap_saved_contains(const struct imap_session *s, uint32_t uid)
{
	size_t lo = 0, hi = s->n_saved;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->saved[mid] == uid)
			return true;
		if (s->saved[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

void imap_select_close(struct imap_session *s)
{
	/* RFC 5182 2.1: the saved result does not outlive the selection. */
	imap_saved_set(s, NULL, 0);
	if (s->sel.sub)
		notify_unsubscribe(s->sel.sub);
	msgs_free(s->sel.msgs, s->sel.n);
	memset(&s->sel, 0, sizeof(s->sel));
}

static bool same_keywords(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") == 0;
}

void imap_send_flags(struct imap_session *s, size_t seq, const struct imap_msg *m, bool uid)
{
	struct imap_buf b = {0};

	ibuf_printf(&b, "* %zu FETCH (", seq);
	if (uid || s->condstore)
		ibuf_printf(&b, "UID %u ", m->uid);
	ibuf_str(&b, "FLAGS (");
	imap_format_flags(&b, m->flags, m->keywords);
	ibuf_str(&b, ")");
	if (s->condstore)
		ibuf_printf(&b, " MODSEQ (%llu)", (unsigned long long)m->modseq);
	ibuf_str(&b, ")\r\n");
	if (!b.failed)
		imap_write(s, b.p, b.len);
	ibuf_free(&b);
}

void imap_send_vanished(struct imap_session *s, bool earlier, const uint32_t *uids, size_t n)
{
	struct imap_buf b = {0};

	if (n == 0)
		return;
	ibuf_str(&b, earlier ? "* VANISHED (EARLIER) " : "* VANISHED ");
	ibuf_seqset(&b, uids, n);
	ibuf_str(&b, "\r\n");
	if (!b.failed)
		imap_write(s, b.p, b.len);
	ibuf_free(&b);
}

/* Sends VANISHED for the messages of OLD that NOW no longer has; false when
 * out of memory (nothing is sent, the view stays as it was). */
static bool report_vanished(struct imap_session *s, const struct imap_msg *old, size_t n_old,
			    const struct list_ctx *now)
{
	uint32_t *gone = malloc((n_old + 1) * sizeof(*gone));
	size_t n_gone = 0, j = 0;

	if (!gone)
		return false;
	for (size_t i = 0; i < n_old; i++) {
		while (j < now->n && now->msgs[j].uid < old[i].uid)
			j++;
		if (j == now->n || now->msgs[j].uid != old[i].uid)
			gone[n_gone++] = old[i].uid;
	}
	imap_send_vanished(s, false, gone, n_gone);
	free(gone);
	return true;
}

/* RFC 7162 3.2 (and its errata 3509): while VANISHED for some messages
 * waits (during FETCH, STORE, SEARCH), MODSEQ values the client sees may be
 * above those expunges; a HIGHESTMODSEQ below them tells it where a
 * resynchronization has to start. Lower than needed is safe. */
static void report_delayed_expunges(struct imap_session *s)
{
	uint32_t lo = 0, hi = 0;
	uint64_t lowest = 0;

	for (size_t i = 0; i < s->sel.n; i++) {
		if (!s->sel.msgs[i].expunged)
			continue;
		if (!lo)
			lo = s->sel.msgs[i].uid;
		hi = s->sel.msgs[i].uid;
	}
	if (lo &&
	    store_expunged_min_modseq(conn_store(s->c), s->sel.mb.id, lo, hi, &lowest) ==
		STORE_OK &&
	    lowest > 1)
		imap_untagged(s, "OK [HIGHESTMODSEQ %llu] Expunges are pending",
			      (unsigned long long)(lowest - 1));
}

/* Compares the whole view with L, every message of the mailbox. */
static void sync_full(struct imap_session *s, bool allow_expunge, struct list_ctx *l)
{
	struct imap_msg *old = s->sel.msgs;
	size_t n_old = s->sel.n, i = 0, j = 0, out_n = 0, removed = 0;
	struct imap_msg *merged;

	merged = calloc(n_old + l->n + 1, sizeof(*merged));
	if (!merged)
		return;
	/* RFC 7162 3.2.10: with QRESYNC one VANISHED names every expunged UID,
	 * before any FETCH that uses the new sequence numbers. */
	if (allow_expunge && s->qresync && !report_vanished(s, old, n_old, l)) {
		free(merged);
		return;
	}
	/* Both lists are in UID order. */
	while (i < n_old) {
		struct imap_msg *o = &old[i];
		while (j < l->n && l->msgs[j].uid < o->uid)
			j++; /* cannot happen: new UIDs are larger than every old one */
		if (j < l->n && l->msgs[j].uid == o->uid) {
			struct imap_msg *nm = &l->msgs[j];
			bool flags_changed =
			    nm->flags != o->flags || !same_keywords(nm->keywords, o->keywords);
			merged[out_n] = *nm;
			nm->keywords = NULL;
			out_n++;
			if (flags_changed)
				imap_send_flags(s, out_n, &merged[out_n - 1], s->uid);
			j++;
		} else if (allow_expunge) {
			if (!s->qresync)
				imap_untagged(s, "%zu EXPUNGE", i + 1 - removed);
			removed++;
		} else {
			merged[out_n] = *o;
			merged[out_n].expunged = true;
			o->keywords = NULL;
			out_n++;
		}
		i++;
	}
	for (; j < l->n; j++) {
		if (n_old && l->msgs[j].uid <= old[n_old - 1].uid)
			continue;
		merged[out_n++] = l->msgs[j];
		l->msgs[j].keywords = NULL;
	}
	msgs_free(old, n_old);
	s->sel.msgs = merged;
	s->sel.cap = n_old + l->n + 1;
	if (out_n != n_old - removed)
		imap_untagged(s, "%zu EXISTS", out_n);
	s->sel.n = out_n;
	view_synced(&s->sel, &l->state);
	view_fit(&s->sel);
}

/* Is UID in the ascending GONE (from *G on, which advances)? */
static bool gone_has(const struct list_ctx *l, size_t *g, uint32_t uid)
{
	while (*g < l->n_gone && l->gone[*g] < uid)
		(*g)++;
	return *g < l->n_gone && l->gone[*g] == uid;
}

/*
 * Applies L, what changed since the view's modseq, to the view: 0 when
 * done, -1 when out of memory (nothing sent, the view as it was), 1 when L
 * does not fit the view (nothing sent; the caller compares all).
 */
static int sync_delta(struct imap_session *s, bool allow_expunge, struct list_ctx *l)
{
	struct imap_msg *v = s->sel.msgs;
	size_t n_old = s->sel.n, live = 0, n_gone = 0, j = 0, g = 0, w = 0, removed = 0;
	size_t n_new;

	/* Check first: every changed row is a message of the view or a new
	 * one, and the messages left are as many as the store counts. */
	for (size_t i = 0; i < n_old; i++) {
		bool gone = v[i].expunged || gone_has(l, &g, v[i].uid);

		if (j < l->n && l->msgs[j].uid < v[i].uid)
			return 1; /* a message the view never had */
		if (j < l->n && l->msgs[j].uid == v[i].uid) {
			if (gone)
				return 1;
			j++;
		}
		if (gone)
			n_gone++;
		else
			live++;
	}
	n_new = l->n - j;
	if (live + n_new != (size_t)l->state.messages)
		return 1;
	if (l->n == 0 && (n_gone == 0 || !allow_expunge)) {
		/* No message changed: only the counters (and marks) may move. */
		for (size_t i = 0, k = 0; i < n_old; i++)
			if (!v[i].expunged && gone_has(l, &k, v[i].uid))
				v[i].expunged = true;
		view_synced(&s->sel, &l->state);
		return 0;
	}
	if (n_old + n_new > s->sel.cap) {
		struct imap_msg *nv = realloc(v, (n_old + n_new) * sizeof(*nv));
		if (!nv)
			return -1;
		s->sel.msgs = v = nv;
		s->sel.cap = n_old + n_new;
	}
	/* RFC 7162 3.2.10: with QRESYNC one VANISHED names every expunged UID,
	 * before any FETCH that uses the new sequence numbers. */
	if (allow_expunge && s->qresync && n_gone) {
		uint32_t *uids = malloc(n_gone * sizeof(*uids));
		size_t k = 0;

		if (!uids)
			return -1;
		g = 0;
		for (size_t i = 0; i < n_old; i++)
			if (v[i].expunged || gone_has(l, &g, v[i].uid))
				uids[k++] = v[i].uid;
		imap_send_vanished(s, false, uids, k);
		free(uids);
	}
	j = 0;
	g = 0;
	for (size_t i = 0; i < n_old; i++) {
		struct imap_msg m = v[i];

		if (m.expunged || gone_has(l, &g, m.uid)) {
			if (allow_expunge) {
				if (!s->qresync)
					imap_untagged(s, "%zu EXPUNGE", i + 1 - removed);
				free(m.keywords);
				removed++;
				continue;
			}
			m.expunged = true;
			v[w++] = m;
			continue;
		}
		if (j < l->n && l->msgs[j].uid == m.uid) {
			struct imap_msg *nm = &l->msgs[j++];
			bool flags_changed =
			    nm->flags != m.flags || !same_keywords(nm->keywords, m.keywords);

			m.flags = nm->flags;
			m.modseq = nm->modseq;
			free(m.keywords);
			m.keywords = nm->keywords;
			nm->keywords = NULL;
			v[w++] = m;
			if (flags_changed)
				imap_send_flags(s, w, &v[w - 1], s->uid);
			continue;
		}
		v[w++] = m;
	}
	for (; j < l->n; j++) {
		v[w++] = l->msgs[j];
		l->msgs[j].keywords = NULL;
	}
	if (w != n_old - removed)
		imap_untagged(s, "%zu EXISTS", w);
	s->sel.n = w;
	view_synced(&s->sel, &l->state);
	view_fit(&s->sel);
	return 0;
}

void imap_sync(struct imap_session *s, bool allow_expunge)
{
	struct list_ctx l;
	int rc;

	/* What changed since the view was read: usually nothing or a few rows. */
	if (s->sel.synced) {
		rc = load_view(s, s->sel.mb.id, s->sel.synced, &l);
		if (rc == STORE_ERR)
			return;
		if (rc == STORE_OK) {
			rc = sync_delta(s, allow_expunge, &l);
			list_free(&l);
			if (rc < 0)
				return;
			if (rc == 0)
				goto done;
			log_debug(
			    _("imap: the view of mailbox %lld is out of step, reading it whole"),
			    (long long)s->sel.mb.id);
		}
	}
	/* The first read, a gone mailbox, or a delta that does not fit. */
	rc = load_view(s, s->sel.mb.id, 0, &l);
	if (rc == STORE_ERR)
		return;
	sync_full(s, allow_expunge, &l);
	list_free(&l);
done:
	if (!allow_expunge && s->qresync)
		report_delayed_expunges(s);
}

void imap_format_flags(struct imap_buf *b, uint32_t flags, const char *keywords)
{
	static const struct {
		uint32_t bit;
		const char *name;
	} names[] = {{FLAG_SEEN, "\\Seen"},
		     {FLAG_ANSWERED, "\\Answered"},
		     {FLAG_FLAGGED, "\\Flagged"},
		     {FLAG_DELETED, "\\Deleted"},
		     {FLAG_DRAFT, "\\Draft"}};
	bool first = true;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (flags & names[i].bit) {
			if (!first)
				ibuf_str(b, " ");
			ibuf_str(b, names[i].name);
			first = false;
		}
	}
	if (keywords && *keywords) {
		if (!first)
			ibuf_str(b, " ");
		ibuf_str(b, keywords);
	}
}

int imap_flag_bit(const char *name)
{
	static const struct {
		const char *name;
		uint32_t bit;
	} names[] = {{"\\Seen", FLAG_SEEN},
		     {"\\Answered", FLAG_ANSWERED},
		     {"\\Flagged", FLAG_FLAGGED},
		     {"\\Deleted", FLAG_DELETED},
		     {"\\Draft", FLAG_DRAFT}};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(name, names[i].name) == 0)
			return (int)names[i].bit;
	if (name[0] == '\\')
		return -1; /* \Recent, \* and unknown system flags cannot be stored */
	for (const char *p = name; *p; p++)
		if (*p == '[' || *p == ']' || *p == '*' || *p == '%')
			return -1;
	return 0;
}

int imap_resolve_set(struct imap_session *s, const char *set_text, bool by_uid, uint32_t **out,
		     size_t *n)
{
	struct imap_seqset set;
	char err[128];
	uint32_t *seqs;
	uint32_t max;

	*out = NULL;
	*n = 0;
	if (strcmp(set_text, "$") == 0) {
		seqs = malloc((s->sel.n + 1) * sizeof(*seqs));
		if (!seqs) {
			imap_no(s, "[SERVERBUG] Out of memory");
			return -1;
		}
		for (size_t i = 0; i < s->sel.n; i++)
			if (!s->sel.msgs[i].expunged && imap_saved_contains(s, s->sel.msgs[i].uid))
				seqs[(*n)++] = (uint32_t)(i + 1);
		*out = seqs;
		return 0;
	}
	if (imap_seqset_parse(set_text, &set, err, sizeof(err)) < 0) {
		imap_bad(s, "%s", err);
		return -1;
	}
	seqs = malloc((s->sel.n + 1) * sizeof(*seqs));
	if (!seqs) {
		imap_seqset_free(&set);
		imap_no(s, "[SERVERBUG] Out of memory");
		return -1;
	}
	if (by_uid) {
		/* "*" is the largest UID in use (RFC 3501 6.4.8); with no
		 * messages it matches nothing. */
		max = s->sel.n ? s->sel.msgs[s->sel.n - 1].uid : 0;
	} else {
		max = (uint32_t)s->sel.n;
		/* RFC 3501 9: a number beyond the mailbox is an error. */
		for (size_t i = 0; i < set.n; i++) {
			if ((set.ranges[i].lo != IMAP_SEQ_STAR && set.ranges[i].lo > max) ||
			    (set.ranges[i].hi != IMAP_SEQ_STAR && set.ranges[i].hi > max) ||
			    max == 0) {
				imap_seqset_free(&set);
				free(seqs);
				imap_bad(s, "Invalid message sequence number");
				return -1;
			}
		}
	}
	for (size_t i = 0; i < s->sel.n; i++) {
		uint32_t key = by_uid ? s->sel.msgs[i].uid : (uint32_t)(i + 1);
		if (max && imap_seqset_contains(&set, key, max) && !s->sel.msgs[i].expunged)
			seqs[(*n)++] = (uint32_t)(i + 1);
	}
	imap_seqset_free(&set);
	*out = seqs;
	return 0;
}

void imap_wipe_free(unsigned char *p, size_t len)
{
	if (p) {
		sodium_memzero(p, len);
		free(p);
	}
}

int imap_message_load_raw(struct imap_session *s, const struct imap_msg *m, unsigned char **msg,
			  size_t *len)
{
	unsigned char *blob = NULL;
	size_t blob_len = 0;
	int rc;

	*msg = NULL;
	*len = 0;
	/* On the job pool (SEARCH) the pool thread's own store is used. */
	rc = store_message_blob(s->job_store ? s->job_store : conn_store(s->c), m->id, &blob,
				&blob_len);
	if (rc != STORE_OK)
		return rc;
	rc = crypto_open(s->id.key, blob, blob_len, msg, len) == 0 ? STORE_OK : IMAP_UNREADABLE;
	free(blob);
	if (rc != STORE_OK)
		log_error(_("imap: cannot decrypt message %lld of %s"), (long long)m->id,
			  s->id.address);
	return rc;
}

int imap_message_text(unsigned char **msg, size_t *len)
{
	unsigned char *text;
	size_t text_len;

	if (!memchr(*msg, '\0', *len))
		return STORE_OK;
	if (imap_binary_text(*msg, *len, false, &text, &text_len) != 0)
		return STORE_ERR;
	imap_wipe_free(*msg, *len);
	*msg = text;
	*len = text_len;
	return STORE_OK;
}

int imap_message_load(struct imap_session *s, const struct imap_msg *m, unsigned char **msg,
		      size_t *len)
{
	int rc = imap_message_load_raw(s, m, msg, len);

	if (rc == STORE_OK && (rc = imap_message_text(msg, len)) != STORE_OK) {
		imap_wipe_free(*msg, *len);
		*msg = NULL;
		*len = 0;
	}
	return rc;
}

void imap_changed(int64_t mailbox_id)
{
	notify_mailbox_changed(mailbox_id);
}

void imap_junk_learn(struct imap_session *s, const struct imap_msg *m,
		     const struct store_mailbox *from, const struct store_mailbox *to)
{
	bool into = to->special_use == SPECIAL_JUNK && from->special_use != SPECIAL_JUNK;
	bool out_of = from->special_use == SPECIAL_JUNK && to->special_use != SPECIAL_JUNK &&
		      to->special_use != SPECIAL_TRASH;
	unsigned char *plain;
	size_t len;

	if (!into && !out_of)
		return;
	if (imap_message_load(s, m, &plain, &len) != STORE_OK)
		return;
	if (scan_learn(conn_store(s->c), s->id.user_id, plain, len, into ? SCAN_SPAM : SCAN_CLEAN) <
	    0)
		log_warn(_("imap: scanner training failed for %s"), s->id.address);
	else
		trace_publish(conn_id(s->c), IMAP_PROTOCOL, s->id.address, TRACE_INFO, 0,
			      into ? "scanner learned spam" : "scanner learned ham");
	imap_wipe_free(plain, len);
}
