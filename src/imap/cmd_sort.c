/*
 * cmd_sort.c - SORT and UID SORT (RFC 5256 3), and what SORT and THREAD
 * share: the search criteria go through the SEARCH code (imap_search_run),
 * then the top-level header of each hit is decrypted once and reduced to
 * the values compared - the base subject (RFC 5256 2.1) and the local part
 * of the first From/To/Cc address, both decoded (RFC 2047) and case-folded,
 * the sent date (the internal date when Date: is missing or invalid), and
 * for THREAD the Message-ID, References and In-Reply-To fields. Reading
 * headers means decrypting messages, so that part runs on the job pool
 * (imap_sort_start) while the session waits.
 */
#include <config.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <gmime/gmime.h>
#include <sodium.h>

#include "imap/imap_int.h"

static pthread_once_t gmime_once = PTHREAD_ONCE_INIT;
static void gmime_setup(void)
{
	g_mime_init();
}

/* Case-folded copy of UTF-8 text (invalid bytes replaced); g_free it. */
static char *fold(const char *s)
{
	gchar *valid = g_utf8_make_valid(s, -1);
	gchar *folded = g_utf8_casefold(valid, -1);
	sodium_memzero(valid, strlen(valid));
	g_free(valid);
	return folded;
}

static void wipe_gfree(char *s)
{
	if (s) {
		sodium_memzero(s, strlen(s));
		g_free(s);
	}
}

/* Bytes of MSG's header, up to and with the blank line. */
static size_t header_length(const char *msg, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (msg[i] != '\n')
			continue;
		if (i + 1 < len && msg[i + 1] == '\n')
			return i + 2;
		if (i + 2 < len && msg[i + 1] == '\r' && msg[i + 2] == '\n')
			return i + 3;
	}
	return len;
}

static char *decoded_header(const char *hdr, size_t hlen, const char *name)
{
	char *raw = imap_header_get(hdr, hlen, name);
	char *dec;

	if (!raw)
		return NULL;
	dec = g_mime_utils_header_decode_text(NULL, raw);
	sodium_memzero(raw, strlen(raw));
	free(raw);
	return dec;
}

/* RFC 5256 3: the addr-mailbox (local part) of the first address, folded. */
static char *first_mailbox(const char *hdr, size_t hlen, const char *name)
{
	char *raw = imap_header_get(hdr, hlen, name);
	InternetAddressList *list;
	InternetAddress *a = NULL;
	char *out = NULL;

	if (!raw)
		return g_strdup("");
	list = internet_address_list_parse(NULL, raw);
	sodium_memzero(raw, strlen(raw));
	free(raw);
	if (list && internet_address_list_length(list) > 0)
		a = internet_address_list_get_address(list, 0);
	if (a && INTERNET_ADDRESS_IS_GROUP(a)) {
		InternetAddressList *members =
		    internet_address_group_get_members(INTERNET_ADDRESS_GROUP(a));
		a = members && internet_address_list_length(members) > 0
			? internet_address_list_get_address(members, 0)
			: NULL;
	}
	if (a && INTERNET_ADDRESS_IS_MAILBOX(a)) {
		const char *addr = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(a));
		const char *at = addr ? strrchr(addr, '@') : NULL;
		char *local =
		    addr ? g_strndup(addr, at ? (size_t)(at - addr) : strlen(addr)) : NULL;
		if (local) {
			out = fold(local);
			wipe_gfree(local);
		}
	}
	if (list)
		g_object_unref(list);
	return out ? out : g_strdup("");
}

static void fill(struct imap_sort_info *v, const char *msg, size_t len, bool threading)
{
	size_t hlen = header_length(msg, len);
	char *subject = decoded_header(msg, hlen, "Subject");
	char *date = imap_header_get(msg, hlen, "Date");

	if (subject) {
		char *base = imap_base_subject(subject, &v->refwd);
		if (base) {
			v->subject = fold(base);
			sodium_memzero(base, strlen(base));
			free(base);
		}
		wipe_gfree(subject);
	}
	if (date) {
		GDateTime *dt = g_mime_utils_header_decode_date(date);
		if (dt) {
			v->sent = g_date_time_to_unix(dt);
			g_date_time_unref(dt);
		}
		free(date);
	}
	v->from = first_mailbox(msg, hlen, "From");
	v->to = first_mailbox(msg, hlen, "To");
	v->cc = first_mailbox(msg, hlen, "Cc");
	if (threading) {
		v->msgid = imap_header_get(msg, hlen, "Message-ID");
		v->references = imap_header_get(msg, hlen, "References");
		if (!v->references)
			v->references = imap_header_get(msg, hlen, "In-Reply-To");
	}
}

void imap_sort_info_free(struct imap_sort_info *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++) {
		wipe_gfree(v[i].subject);
		wipe_gfree(v[i].from);
		wipe_gfree(v[i].to);
		wipe_gfree(v[i].cc);
		free(v[i].msgid);
		free(v[i].references);
	}
	free(v);
}

/* The search and what SORT / THREAD compare, for the hits. 0, or -1 when out
 * of memory. Runs on the job pool when content is read (imap_sort_start). */
static int collect(struct imap_session *s, const struct imap_search_key *key, bool need_content,
		   bool threading, struct imap_sort_info **out, size_t *n, bool *failed)
{
	struct imap_sort_info *v;
	uint32_t *hits;
	size_t n_hits;

	if (imap_search_run(s, key, &hits, &n_hits, failed) < 0)
		return -1;
	v = calloc(n_hits + 1, sizeof(*v));
	if (!v) {
		free(hits);
		return -1;
	}
	pthread_once(&gmime_once, gmime_setup);
	for (size_t i = 0; i < n_hits; i++) {
		const struct imap_msg *m = &s->sel.msgs[hits[i] - 1];
		unsigned char *plain = NULL;
		size_t len = 0;
		int rc;

		v[i].seq = hits[i];
		v[i].uid = m->uid;
		v[i].arrival = m->date;
		v[i].sent = m->date;
		v[i].size = m->size;
		if (need_content && !conn_is_closing(s->c)) {
			rc = imap_message_load(s, m, &plain, &len);
			if (rc == STORE_OK)
				fill(&v[i], (const char *)plain, len, threading);
			else if (rc != STORE_NOTFOUND)
				*failed = true;
			imap_wipe_free(plain, len);
		}
		if (!v[i].subject)
			v[i].subject = g_strdup("");
		if (!v[i].from)
			v[i].from = g_strdup("");
		if (!v[i].to)
			v[i].to = g_strdup("");
		if (!v[i].cc)
			v[i].cc = g_strdup("");
	}
	free(hits);
	*out = v;
	*n = n_hits;
	return 0;
}

struct sort_job {
	struct imap_session *s;
	struct imap_search_key key;
	bool need_content, threading, failed;
	int rc;
	struct imap_sort_info *v;
	size_t n;
	imap_sort_done done;
	void *ctx;
};

static void sort_work(struct store *st, void *arg)
{
	struct sort_job *job = arg;

	/* The session is busy meanwhile: nothing else touches its view. */
	job->s->job_store = st;
	job->rc = collect(job->s, &job->key, job->need_content, job->threading, &job->v, &job->n,
			  &job->failed);
	job->s->job_store = NULL;
}

/* Hands the result to DONE (which owns it from then on) and frees the job. */
static void sort_finish(struct sort_job *job, bool gone)
{
	if (job->rc < 0 && !gone)
		imap_no(job->s, "[SERVERBUG] Out of memory");
	if (job->rc < 0 || gone) {
		imap_sort_info_free(job->v, job->n);
		job->done(job->s, -1, NULL, 0, false, job->ctx);
	} else {
		job->done(job->s, 0, job->v, job->n, job->failed, job->ctx);
	}
	imap_search_key_free(&job->key);
	free(job);
}

static void sort_done(struct conn *c, void *arg)
{
	struct sort_job *job = arg;
	struct imap_session *s = job->s;
	bool gone = conn_is_closing(c);

	sort_finish(job, gone);
	if (!gone)
		imap_continue_input(s);
}

int imap_sort_start(struct imap_session *s, const struct imap_arg *args, size_t nargs,
		    bool need_content, bool threading, imap_sort_done done, void *ctx)
{
	struct sort_job *job;
	char err[160];

	if (nargs < 2) {
		imap_bad(s, "%s needs a charset and search criteria", s->verb);
		return -1;
	}
	if (imap_sort_charset(&args[0]) < 0) {
		imap_no(s, "[BADCHARSET (UTF-8 US-ASCII)] Unsupported charset");
		return -1;
	}
	job = calloc(1, sizeof(*job));
	if (!job) {
		imap_no(s, "[SERVERBUG] Out of memory");
		return -1;
	}
	if (imap_search_parse(args + 1, nargs - 1, &job->key, err, sizeof(err)) < 0) {
		free(job);
		imap_bad(s, "%s", err);
		return -1;
	}
	job->s = s;
	job->need_content = need_content;
	job->threading = threading;
	job->done = done;
	job->ctx = ctx;
	/* Reading message content means decrypting: not on the event loop. */
	if (need_content) {
		s->busy = true;
		if (conn_defer(s->c, sort_work, sort_done, job) == 0)
			return 0;
		s->busy = false;
	}
	sort_work(NULL, job);
	sort_finish(job, false);
	return 0;
}

static int compare(const void *pa, const void *pb, void *arg)
{
	const struct imap_sort_info *a = pa, *b = pb;
	const struct imap_sort_spec *spec = arg;

	for (size_t i = 0; i < spec->n; i++) {
		int c = 0;
		switch (spec->crit[i].key) {
		case SORT_ARRIVAL:
			c = (a->arrival > b->arrival) - (a->arrival < b->arrival);
			break;
		case SORT_DATE:
			c = (a->sent > b->sent) - (a->sent < b->sent);
			break;
		case SORT_SIZE:
			c = (a->size > b->size) - (a->size < b->size);
			break;
		case SORT_SUBJECT:
			c = strcmp(a->subject, b->subject);
			break;
		case SORT_FROM:
			c = strcmp(a->from, b->from);
			break;
		case SORT_TO:
			c = strcmp(a->to, b->to);
			break;
		case SORT_CC:
			c = strcmp(a->cc, b->cc);
			break;
		}
		if (c)
			return spec->crit[i].reverse ? -c : c;
	}
	/* RFC 5256 3: equal messages keep their mailbox order. */
	return (a->seq > b->seq) - (a->seq < b->seq);
}

/* RFC 5256 3 */
struct sort_ctx {
	struct imap_sort_spec spec;
	bool uid;
};

static void sort_answer(struct imap_session *s, int rc, struct imap_sort_info *v, size_t n,
			bool failed, void *arg)
{
	struct sort_ctx *ctx = arg;
	struct imap_buf b = {0};

	if (rc < 0) {
		free(ctx);
		return;
	}
	qsort_r(v, n, sizeof(*v), compare, &ctx->spec);
	ibuf_str(&b, "* SORT");
	for (size_t i = 0; i < n; i++)
		ibuf_printf(&b, " %u", ctx->uid ? v[i].uid : v[i].seq);
	ibuf_str(&b, "\r\n");
	imap_sort_info_free(v, n);
	free(ctx);
	imap_search_reply(s, &b, failed, "SORT");
}

void imap_cmd_sort(struct imap_session *s, struct imap_command *cmd)
{
	struct sort_ctx *ctx = calloc(1, sizeof(*ctx));
	char err[128];
	bool need_content = false;

	if (!ctx) {
		imap_no(s, "[SERVERBUG] Out of memory");
		return;
	}
	if (cmd->n_args < 1 || imap_sort_parse(&cmd->args[0], &ctx->spec, err, sizeof(err)) < 0) {
		free(ctx);
		imap_bad(s, "%s", cmd->n_args < 1 ? "SORT needs sort criteria" : err);
		return;
	}
	ctx->uid = cmd->uid;
	for (size_t i = 0; i < ctx->spec.n; i++)
		if (ctx->spec.crit[i].key != SORT_ARRIVAL && ctx->spec.crit[i].key != SORT_SIZE)
			need_content = true;
	if (imap_sort_start(s, cmd->args + 1, cmd->n_args - 1, need_content, false, sort_answer,
			    ctx) < 0)
		free(ctx);
}
