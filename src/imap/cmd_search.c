/*
 * cmd_search.c - SEARCH and UID SEARCH (RFC 3501 6.4.4, 6.4.8). Keys are
 * parsed by imap_search_parse.c; here they are evaluated per message. The
 * content of a message is decrypted only when a key needs it (headers,
 * body, text, sent date) and then parsed once with GMime, so header values
 * (RFC 2047) and bodies (transfer encoding, charset) are compared decoded,
 * case-insensitively (Unicode case folding). SEARCH RETURN (...) answers
 * with ESEARCH (RFC 4731).
 */
#include <config.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gmime/gmime.h>
#include <sodium.h>

#include "imap/imap_int.h"

struct content {
	bool loaded, failed;
	bool whole; /* PLAIN is the whole message, not only its header block */
	bool gone;  /* expunged by another session meanwhile: matches nothing */
	unsigned char *plain;
	size_t len;
	struct imap_mime *root;
	GByteArray *bytes;
	GMimeMessage *message;
};

static pthread_once_t gmime_once = PTHREAD_ONCE_INIT;
static void gmime_setup(void)
{
	g_mime_init();
}

static void content_free(struct content *c)
{
	if (c->message)
		g_object_unref(c->message);
	if (c->bytes) {
		sodium_memzero(c->bytes->data, c->bytes->len);
		g_byte_array_free(c->bytes, TRUE);
	}
	imap_mime_free(c->root);
	imap_wipe_free(c->plain, c->len);
	memset(c, 0, sizeof(*c));
}

/* Loads M (WHOLE) or only its header block, which header keys need. */
static bool content_load(struct imap_session *s, const struct imap_msg *m, struct content *c,
			 bool whole)
{
	int rc;

	if (c->loaded && (c->whole || !whole || c->failed))
		return !c->failed;
	if (c->loaded) { /* the header block is there, the body is needed too */
		imap_mime_free(c->root);
		imap_wipe_free(c->plain, c->len);
		c->root = NULL;
		c->plain = NULL;
	}
	c->loaded = true;
	c->whole = whole;
	rc = whole ? imap_message_load(s, m, &c->plain, &c->len)
		   : imap_message_load_header(s, m, &c->plain, &c->len);
	if (rc != STORE_OK || !(c->root = imap_mime_parse((const char *)c->plain, c->len))) {
		c->failed = true;
		c->gone = rc == STORE_NOTFOUND;
		return false;
	}
	return true;
}

static GMimeMessage *content_message(struct imap_session *s, const struct imap_msg *m,
				     struct content *c)
{
	GMimeStream *stream;
	GMimeParser *parser;

	if (c->message)
		return c->message;
	if (!content_load(s, m, c, true))
		return NULL;
	pthread_once(&gmime_once, gmime_setup);
	c->bytes = g_byte_array_sized_new((guint)c->len);
	g_byte_array_append(c->bytes, c->plain, (guint)c->len);
	stream = g_mime_stream_mem_new_with_byte_array(c->bytes);
	g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(stream), FALSE);
	parser = g_mime_parser_new_with_stream(stream);
	c->message = g_mime_parser_construct_message(parser, NULL);
	g_object_unref(parser);
	g_object_unref(stream);
	return c->message;
}

/* Case-insensitive substring test on UTF-8 text (invalid bytes replaced). */
static bool contains(const char *hay, size_t hay_len, const char *needle)
{
	gchar *h, *n, *hf, *nf;
	bool found;

	if (!*needle)
		return true;
	h = g_utf8_make_valid(hay, (gssize)hay_len);
	n = g_utf8_make_valid(needle, -1);
	hf = g_utf8_casefold(h, -1);
	nf = g_utf8_casefold(n, -1);
	found = strstr(hf, nf) != NULL;
	sodium_memzero(h, strlen(h));
	sodium_memzero(hf, strlen(hf));
	g_free(h);
	g_free(n);
	g_free(hf);
	g_free(nf);
	return found;
}

/* Every occurrence of header FIELD in the top-level header, decoded. */
static bool header_matches(const struct content *c, const char *field, const char *value)
{
	const char *hdr = (const char *)c->plain + c->root->hdr_off;
	size_t len = c->root->hdr_len, flen = strlen(field), p = 0;

	while (p < len) {
		const char *nl = memchr(hdr + p, '\n', len - p);
		size_t llen = nl ? (size_t)(nl - (hdr + p)) + 1 : len - p;
		if (llen > flen && strncasecmp(hdr + p, field, flen) == 0 &&
		    (hdr[p + flen] == ':' || hdr[p + flen] == ' ')) {
			char *raw = imap_header_get(hdr + p, len - p, field);
			if (raw) {
				char *dec = g_mime_utils_header_decode_text(NULL, raw);
				bool ok = contains(dec ? dec : raw, strlen(dec ? dec : raw), value);
				g_free(dec);
				free(raw);
				if (ok)
					return true;
			}
		}
		p += llen;
	}
	return false;
}

struct body_search {
	const char *needle;
	bool found;
};

static void body_part_cb(GMimeObject *parent, GMimeObject *part, gpointer data)
{
	struct body_search *bs = data;
	GMimeContentType *ct;
	char *text;
	(void)parent;

	if (bs->found || !GMIME_IS_TEXT_PART(part))
		return;
	ct = g_mime_object_get_content_type(part);
	if (!ct || !g_mime_content_type_is_type(ct, "text", "*"))
		return;
	text = g_mime_text_part_get_text(GMIME_TEXT_PART(part));
	if (!text)
		return;
	bs->found = contains(text, strlen(text), bs->needle);
	sodium_memzero(text, strlen(text));
	g_free(text);
}

static bool body_matches(GMimeMessage *msg, const char *needle)
{
	struct body_search bs = {needle, false};
	g_mime_message_foreach(msg, body_part_cb, &bs);
	return bs.found;
}

static int64_t sent_day(struct imap_session *s, const struct imap_msg *m, struct content *c)
{
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	char *v;
	GDateTime *dt;
	int64_t days = -1;

	if (!content_load(s, m, c, false))
		return -1;
	v = imap_header_get((const char *)c->plain + c->root->hdr_off, c->root->hdr_len, "Date");
	if (!v)
		return -1;
	pthread_once(&gmime_once, gmime_setup);
	dt = g_mime_utils_header_decode_date(v);
	free(v);
	if (dt) {
		char buf[32];
		snprintf(buf, sizeof(buf), "%d-%s-%04d", g_date_time_get_day_of_month(dt),
			 months[(g_date_time_get_month(dt) - 1) % 12], g_date_time_get_year(dt));
		if (imap_parse_date(buf, &days) < 0)
			days = -1;
		g_date_time_unref(dt);
	}
	return days;
}

static bool keyword_set(const char *list, const char *kw)
{
	const char *p = list;
	size_t len = strlen(kw);

	while (p && *p) {
		const char *sp = strchr(p, ' ');
		size_t l = sp ? (size_t)(sp - p) : strlen(p);
		if (l == len && strncasecmp(p, kw, len) == 0)
			return true;
		p = sp ? sp + 1 : NULL;
	}
	return false;
}

static bool match(struct imap_session *s, const struct imap_search_key *k, const struct imap_msg *m,
		  uint32_t seq, struct content *c)
{
	int64_t day = m->date >= 0 ? m->date / 86400 : (m->date - 86399) / 86400;
	int64_t sday;
	GMimeMessage *gm;

	switch (k->op) {
	case SEARCH_ALL:
	case SEARCH_OLD:
		return true;
	case SEARCH_RECENT:
		return false;
	case SEARCH_NEW:
		return false; /* NEW is RECENT UNSEEN, and \Recent is never set */
	case SEARCH_AND:
		for (size_t i = 0; i < k->n; i++)
			if (!match(s, &k->children[i], m, seq, c))
				return false;
		return true;
	case SEARCH_OR:
		return match(s, &k->children[0], m, seq, c) || match(s, &k->children[1], m, seq, c);
	case SEARCH_NOT:
		return !match(s, &k->children[0], m, seq, c);
	case SEARCH_SEQSET:
		return imap_seqset_contains(&k->set, seq, (uint32_t)s->sel.n);
	case SEARCH_SAVED:
		return imap_saved_contains(s, m->uid);
	case SEARCH_UIDSET:
		return s->sel.n &&
		       imap_seqset_contains(&k->set, m->uid, s->sel.msgs[s->sel.n - 1].uid);
	case SEARCH_FLAG:
		return (m->flags & k->flag) != 0;
	case SEARCH_UNFLAG:
		return (m->flags & k->flag) == 0;
	case SEARCH_KEYWORD:
		return keyword_set(m->keywords, k->value);
	case SEARCH_UNKEYWORD:
		return !keyword_set(m->keywords, k->value);
	case SEARCH_BEFORE:
		return day < k->number;
	case SEARCH_ON:
		return day == k->number;
	case SEARCH_SINCE:
		return day >= k->number;
	case SEARCH_SENTBEFORE:
	case SEARCH_SENTON:
	case SEARCH_SENTSINCE:
		sday = sent_day(s, m, c);
		if (sday < 0)
			return false;
		return k->op == SEARCH_SENTBEFORE ? sday < k->number
		       : k->op == SEARCH_SENTON	  ? sday == k->number
						  : sday >= k->number;
	case SEARCH_LARGER:
		return m->size > k->number;
	case SEARCH_SMALLER:
		return m->size < k->number;
	case SEARCH_MODSEQ:
		return (int64_t)m->modseq >= k->number;
	case SEARCH_HEADER:
		if (!content_load(s, m, c, false))
			return false;
		return header_matches(c, k->field, k->value);
	case SEARCH_BODY:
		gm = content_message(s, m, c);
		return gm && body_matches(gm, k->value);
	case SEARCH_TEXT:
		if (!content_load(s, m, c, true))
			return false;
		if (contains((const char *)c->plain + c->root->hdr_off, c->root->hdr_len, k->value))
			return true;
		gm = content_message(s, m, c);
		return gm && body_matches(gm, k->value);
	}
	return false;
}

static bool uses_modseq(const struct imap_search_key *k)
{
	if (k->op == SEARCH_MODSEQ)
		return true;
	for (size_t i = 0; i < k->n; i++)
		if (uses_modseq(&k->children[i]))
			return true;
	return false;
}

int imap_search_run(struct imap_session *s, const struct imap_search_key *key, uint32_t **out,
		    size_t *n, bool *failed)
{
	uint32_t *hits = malloc((s->sel.n + 1) * sizeof(*hits));
	size_t n_hits = 0;

	*failed = false;
	if (!hits)
		return -1;
	for (size_t i = 0; i < s->sel.n && !conn_is_closing(s->c); i++) {
		const struct imap_msg *m = &s->sel.msgs[i];
		struct content c = {0};
		if (m->expunged)
			continue;
		if (match(s, key, m, (uint32_t)(i + 1), &c))
			hits[n_hits++] = (uint32_t)(i + 1);
		*failed |= c.failed && !c.gone;
		content_free(&c);
	}
	*out = hits;
	*n = n_hits;
	return 0;
}

enum esearch_option {
	ESEARCH_MIN = 1 << 0,
	ESEARCH_MAX = 1 << 1,
	ESEARCH_ALL = 1 << 2,
	ESEARCH_COUNT = 1 << 3,
	ESEARCH_SAVE = 1 << 4, /* RFC 5182 */
};

/* RFC 4731 3: "RETURN (MIN MAX ALL COUNT SAVE)"; an empty list means ALL. -1 after a BAD. */
static int parse_return(struct imap_session *s, const struct imap_arg *list, unsigned *opts)
{
	static const struct {
		const char *name;
		unsigned bit;
	} names[] = {{"MIN", ESEARCH_MIN},
		     {"MAX", ESEARCH_MAX},
		     {"ALL", ESEARCH_ALL},
		     {"COUNT", ESEARCH_COUNT},
		     {"SAVE", ESEARCH_SAVE}};

	*opts = 0;
	for (size_t i = 0; i < list->n; i++) {
		size_t k;
		for (k = 0; k < sizeof(names) / sizeof(names[0]); k++)
			if (imap_arg_is(&list->list[i], names[k].name))
				break;
		if (k == sizeof(names) / sizeof(names[0])) {
			imap_bad(s, "Unsupported SEARCH RETURN option");
			return -1;
		}
		if (*opts & names[k].bit) {
			imap_bad(s, "Repeated SEARCH RETURN option");
			return -1;
		}
		*opts |= names[k].bit;
	}
	if (*opts == 0)
		*opts = ESEARCH_ALL;
	return 0;
}

static void write_esearch(struct imap_session *s, struct imap_buf *b, bool uid, unsigned opts,
			  const uint32_t *hits, size_t n, bool modseq, uint64_t highest)
{
	ibuf_str(b, "* ESEARCH (TAG ");
	ibuf_nstring(b, s->tag, strlen(s->tag));
	ibuf_str(b, ")");
	if (uid)
		ibuf_str(b, " UID");
	if ((opts & ESEARCH_MIN) && n)
		ibuf_printf(b, " MIN %u", hits[0]);
	if ((opts & ESEARCH_MAX) && n)
		ibuf_printf(b, " MAX %u", hits[n - 1]);
	if ((opts & ESEARCH_COUNT))
		ibuf_printf(b, " COUNT %zu", n);
	if ((opts & ESEARCH_ALL) && n) {
		ibuf_str(b, " ALL ");
		ibuf_seqset(b, hits, n);
	}
	if (modseq && n)
		ibuf_printf(b, " MODSEQ %llu", (unsigned long long)highest);
	ibuf_str(b, "\r\n");
}

/* RFC 5182 2.4: SAVE keeps every hit, or only the MIN and/or MAX when those
 * are the only other options. HITS are sequence numbers. */
static void save_result(struct imap_session *s, unsigned opts, const uint32_t *hits, size_t n)
{
	bool only_ends =
	    (opts & (ESEARCH_MIN | ESEARCH_MAX)) && !(opts & (ESEARCH_ALL | ESEARCH_COUNT));
	uint32_t *uids = malloc((n + 1) * sizeof(*uids));
	size_t k = 0;

	if (!uids) {
		imap_saved_set(s, NULL, 0);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (only_ends &&
		    !((i == 0 && (opts & ESEARCH_MIN)) || (i == n - 1 && (opts & ESEARCH_MAX))))
			continue;
		uids[k++] = s->sel.msgs[hits[i] - 1].uid;
	}
	imap_saved_set(s, uids, k);
}

/* Keys that read message content: a search with them decrypts messages
 * and runs on the job pool instead of the event loop. */
static bool reads_content(const struct imap_search_key *k)
{
	switch (k->op) {
	case SEARCH_HEADER:
	case SEARCH_BODY:
	case SEARCH_TEXT:
	case SEARCH_SENTBEFORE:
	case SEARCH_SENTON:
	case SEARCH_SENTSINCE:
		return true;
	default:
		for (size_t i = 0; i < k->n; i++)
			if (reads_content(&k->children[i]))
				return true;
		return false;
	}
}

struct search_job {
	struct imap_session *s;
	struct imap_search_key key;
	unsigned opts;
	bool esearch, modseq, uid;
	uint32_t *hits;
	size_t n_hits;
	bool failed;
	int rc;
};

static void search_job_free(struct search_job *job)
{
	imap_search_key_free(&job->key);
	free(job->hits);
	free(job);
}

/* Runs the search: on the job pool with that thread's store (ST), or on the loop (ST NULL). */
static void search_work(struct store *st, void *arg)
{
	struct search_job *job = arg;

	/* The session is busy meanwhile: nothing else touches its view. */
	job->s->job_store = st;
	job->rc = imap_search_run(job->s, &job->key, &job->hits, &job->n_hits, &job->failed);
	job->s->job_store = NULL;
}

/* The untagged result and the tagged reply. */
static void search_answer(struct search_job *job)
{
	struct imap_session *s = job->s;
	struct imap_buf b = {0};
	uint64_t highest = 0;
	unsigned opts = job->opts;

	if (job->rc < 0) {
		if (opts & ESEARCH_SAVE)
			imap_saved_set(s, NULL, 0);
		imap_no(s, "[SERVERBUG] Out of memory");
		return;
	}
	if (opts & ESEARCH_SAVE)
		save_result(s, opts, job->hits, job->n_hits);
	for (size_t i = 0; i < job->n_hits; i++) {
		const struct imap_msg *m = &s->sel.msgs[job->hits[i] - 1];
		if (m->modseq > highest)
			highest = m->modseq;
		if (job->uid)
			job->hits[i] = m->uid;
	}
	if (job->esearch && (opts & ~(unsigned)ESEARCH_SAVE)) {
		write_esearch(s, &b, job->uid, opts, job->hits, job->n_hits, job->modseq, highest);
	} else if (job->esearch) {
		/* RFC 5182 2.4: RETURN (SAVE) alone answers nothing but OK. */
	} else {
		ibuf_str(&b, "* SEARCH");
		for (size_t i = 0; i < job->n_hits; i++)
			ibuf_printf(&b, " %u", job->hits[i]);
		if (job->modseq && job->n_hits)
			ibuf_printf(&b, " (MODSEQ %llu)", (unsigned long long)highest);
		ibuf_str(&b, "\r\n");
	}
	imap_search_reply(s, &b, job->failed, "SEARCH");
}

void imap_search_reply(struct imap_session *s, struct imap_buf *b, bool failed,
		       const char *command)
{
	if (b->failed) {
		ibuf_free(b);
		imap_no(s, "[SERVERBUG] Out of memory");
		return;
	}
	if (b->len)
		imap_write(s, b->p, b->len);
	ibuf_free(b);
	if (failed)
		imap_no(s, "[UNAVAILABLE] Some messages could not be read");
	else
		imap_ok(s, "%s completed", command);
}

static void search_done(struct conn *c, void *arg)
{
	struct search_job *job = arg;
	struct imap_session *s = job->s;

	if (!conn_is_closing(c))
		search_answer(job);
	search_job_free(job);
	if (!conn_is_closing(c))
		imap_continue_input(s);
}

/* RFC 3501 6.4.4; RFC 4731 (ESEARCH); RFC 5182 (SEARCHRES); RFC 7162 3.1.5 for MODSEQ;
 * RFC 9051 6.4.4 */
void imap_cmd_search(struct imap_session *s, struct imap_command *cmd)
{
	struct search_job *job = calloc(1, sizeof(*job));
	char err[160];
	const struct imap_arg *args = cmd->args;
	size_t nargs = cmd->n_args;

	if (!job) {
		imap_no(s, "[SERVERBUG] Out of memory");
		return;
	}
	job->s = s;
	job->uid = cmd->uid;
	if (nargs >= 2 && imap_arg_is(&args[0], "RETURN")) {
		if (args[1].type != IMAP_ARG_LIST) {
			free(job);
			imap_bad(s, "RETURN needs a list of options");
			return;
		}
		if (parse_return(s, &args[1], &job->opts) < 0) {
			free(job);
			return;
		}
		job->esearch = true;
		args += 2;
		nargs -= 2;
	} else if (s->rev2) {
		/* RFC 9051 6.4.4: results come as ESEARCH, like RETURN (ALL). */
		job->esearch = true;
		job->opts = ESEARCH_ALL;
	}
	if (imap_search_parse(args, nargs, &job->key, err, sizeof(err)) < 0) {
		/* RFC 5182 2.1: a failed SEARCH ... SAVE leaves "$" empty. */
		if (job->opts & ESEARCH_SAVE)
			imap_saved_set(s, NULL, 0);
		free(job);
		if (strncmp(err, "[BADCHARSET", 11) == 0)
			imap_no(s, "%s", err);
		else
			imap_bad(s, "%s", err);
		return;
	}
	job->modseq = uses_modseq(&job->key);
	if (job->modseq)
		s->condstore = true;
	if (reads_content(&job->key)) {
		s->busy = true;
		if (conn_defer(s->c, search_work, search_done, job) == 0)
			return;
		s->busy = false; /* the pool refused: search here */
	}
	search_work(NULL, job);
	search_answer(job);
	search_job_free(job);
}
