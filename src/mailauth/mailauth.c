/*
 * mailauth.c - SPF, DKIM and DMARC checks of one inbound message. All DNS
 * questions go to one shared libunbound context (thread-safe): libspf2 gets
 * it as a DNS layer of its own, libopendkim through its query hooks, and the
 * DMARC record is looked up here and handed to libopendmarc.
 *
 * The lookups of one message share a deadline ([mailauth] dns_timeout): a
 * DNS server that never answers must not hold the SMTP transaction (and a
 * job pool thread) for unbound's own retry schedule of minutes. Queries are
 * therefore asynchronous; whichever waiting thread polls the context's
 * result pipe hands every arrived answer to its waiter, and a query still
 * open at the deadline is cancelled and counts as a temporary error.
 */
#include <config.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <opendkim/dkim.h>
#include <opendmarc/dmarc.h>
#include <spf2/spf.h>
#include <spf2/spf_dns.h>
#include <unbound.h>

#include "mailauth/mailauth.h"
#include "util/i18n.h"
#include "util/log.h"

#define DNS_CLASS_IN 1
#define DNS_TYPE_TXT 16
#define DNS_RCODE_SERVFAIL 2
#define MAILAUTH_TXT_MAX 4096

#define DNS_POLL_SLICE_MS 100 /* a waiter looks at its own query at least this often */

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char upstream_addr[128];
static struct mailauth_options options = {.dns_timeout_ms = MAILAUTH_DNS_TIMEOUT_MS_DEFAULT};
static char psl_path[1024] = MAILAUTH_PSL_FILE_DEFAULT;
static struct ub_ctx *ub;
static pthread_mutex_t ub_mu = PTHREAD_MUTEX_INITIALIZER; /* ub_process and the callbacks */
static pthread_cond_t ub_answered = PTHREAD_COND_INITIALIZER;
static bool ub_polling;				/* one thread waits on the result pipe at a time */
static __thread struct timespec check_deadline; /* CLOCK_MONOTONIC, of the running check */
/* A lookup of the running SPF evaluation failed temporarily (timeout,
 * SERVFAIL): libspf2 reports that as permerror, RFC 7208 2.6.6 as temperror. */
static __thread bool spf_dns_tempfail;
static SPF_server_t *spf_server;
static SPF_dns_server_t spf_layer;
static DKIM_LIB *dkim_lib;
static OPENDMARC_LIB_T dmarc_lib;
static bool dmarc_ready;

void mailauth_set_resolver(const char *upstream)
{
	snprintf(upstream_addr, sizeof(upstream_addr), "%s", upstream ? upstream : "");
}

void mailauth_set_options(const struct mailauth_options *opts)
{
	options = *opts;
	if (!options.dns_timeout_ms)
		options.dns_timeout_ms = MAILAUTH_DNS_TIMEOUT_MS_DEFAULT;
	snprintf(psl_path, sizeof(psl_path), "%s",
		 opts->psl_file && opts->psl_file[0] ? opts->psl_file : MAILAUTH_PSL_FILE_DEFAULT);
	options.psl_file = psl_path;
}

/* Milliseconds left until the running check's deadline (0 when passed). */
static long deadline_left_ms(void)
{
	struct timespec now;
	long ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (long)(check_deadline.tv_sec - now.tv_sec) * 1000 +
	     (check_deadline.tv_nsec - now.tv_nsec) / 1000000;
	return ms > 0 ? ms : 0;
}

struct pending_query {
	bool done;
	int err;
	struct ub_result *res;
};

/* Runs inside ub_process(), with ub_mu held. */
static void query_answered(void *arg, int err, struct ub_result *res)
{
	struct pending_query *q = arg;

	q->done = true;
	q->err = err;
	q->res = res;
}

/* ub_resolve() bounded by the check's deadline: 0 with *RES (free it with
 * ub_resolve_free), or -1 when the query failed or timed out. */
static int resolve(const char *name, int type, struct ub_result **res)
{
	struct pending_query q = {0};
	int id;

	*res = NULL;
	pthread_mutex_lock(&ub_mu);
	if (deadline_left_ms() == 0 ||
	    ub_resolve_async(ub, name, type, DNS_CLASS_IN, &q, query_answered, &id) != 0) {
		pthread_mutex_unlock(&ub_mu);
		return -1;
	}
	while (!q.done) {
		long ms = deadline_left_ms();

		if (ms == 0) {
			/* under ub_mu no answer can be delivered meanwhile, so after
			 * the cancel the callback never sees Q again */
			ub_cancel(ub, id);
			break;
		}
		if (ms > DNS_POLL_SLICE_MS)
			ms = DNS_POLL_SLICE_MS;
		if (!ub_polling) {
			struct pollfd pfd = {.fd = ub_fd(ub), .events = POLLIN};
			int ready;

			ub_polling = true;
			pthread_mutex_unlock(&ub_mu);
			ready = poll(&pfd, 1, (int)ms);
			pthread_mutex_lock(&ub_mu);
			ub_polling = false;
			if (ready > 0)
				ub_process(ub); /* answers for any waiter */
			pthread_cond_broadcast(&ub_answered);
		} else {
			struct timespec until;

			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_nsec += ms * 1000000;
			until.tv_sec += until.tv_nsec / 1000000000;
			until.tv_nsec %= 1000000000;
			pthread_cond_timedwait(&ub_answered, &ub_mu, &until);
		}
	}
	pthread_mutex_unlock(&ub_mu);
	if (!q.done)
		return -1;
	if (q.err != 0 || !q.res) {
		if (q.res)
			ub_resolve_free(q.res);
		return -1;
	}
	*res = q.res;
	return 0;
}

/* Dotted name of the uncompressed wire name at P. 0 or -1. */
static int wire_name(const unsigned char *p, size_t len, char *out, size_t outlen)
{
	size_t i = 0, o = 0;

	while (i < len && p[i] != 0) {
		size_t label = p[i++];

		if (label > 63 || i + label > len || o + label + 2 > outlen)
			return -1;
		if (o)
			out[o++] = '.';
		memcpy(out + o, p + i, label);
		o += label;
		i += label;
	}
	if (i >= len)
		return -1;
	out[o] = '\0';
	return 0;
}

/* TXT rdata (length-prefixed strings) joined into OUT. */
static void txt_join(const unsigned char *p, size_t len, char *out, size_t outlen)
{
	size_t i = 0, o = 0;

	while (i < len) {
		size_t n = p[i++];

		if (i + n > len)
			break;
		for (size_t k = 0; k < n && o + 1 < outlen; k++)
			out[o++] = (char)p[i + k];
		i += n;
	}
	out[o] = '\0';
}

/* libspf2 DNS layer over libunbound. */
static SPF_dns_rr_t *spf_lookup(SPF_dns_server_t *srv, const char *domain, ns_type type,
				int should_cache)
{
	struct ub_result *res = NULL;
	SPF_dns_rr_t *rr;
	int n = 0;

	(void)should_cache;
	if (resolve(domain, (int)type, &res) != 0) {
		spf_dns_tempfail = true;
		return SPF_dns_rr_new_init(srv, domain, type, 0, TRY_AGAIN);
	}
	if (res->nxdomain) {
		ub_resolve_free(res);
		return SPF_dns_rr_new_init(srv, domain, type, 0, HOST_NOT_FOUND);
	}
	if (!res->havedata) {
		int herrno = res->rcode == DNS_RCODE_SERVFAIL ? TRY_AGAIN : NO_DATA;

		if (herrno == TRY_AGAIN)
			spf_dns_tempfail = true;
		ub_resolve_free(res);
		return SPF_dns_rr_new_init(srv, domain, type, 0, herrno);
	}
	rr = SPF_dns_rr_new_init(srv, domain, type, 60, NETDB_SUCCESS);
	for (int i = 0; rr && res->data[i]; i++) {
		const unsigned char *d = (const unsigned char *)res->data[i];
		size_t len = (size_t)res->len[i];
		char text[MAILAUTH_TXT_MAX];

		switch (type) {
		case ns_t_a:
			if (len != 4 || SPF_dns_rr_buf_realloc(rr, n, sizeof(struct in_addr)))
				continue;
			memcpy(&rr->rr[n]->a, d, 4);
			break;
		case ns_t_aaaa:
			if (len != 16 || SPF_dns_rr_buf_realloc(rr, n, sizeof(struct in6_addr)))
				continue;
			memcpy(&rr->rr[n]->aaaa, d, 16);
			break;
		case ns_t_txt:
		case ns_t_spf:
			txt_join(d, len, text, sizeof(text));
			if (SPF_dns_rr_buf_realloc(rr, n, strlen(text) + 1))
				continue;
			memcpy(rr->rr[n]->txt, text, strlen(text) + 1);
			break;
		case ns_t_mx:
			if (len < 3 || wire_name(d + 2, len - 2, text, sizeof(text)) != 0 ||
			    SPF_dns_rr_buf_realloc(rr, n, strlen(text) + 1))
				continue;
			memcpy(rr->rr[n]->mx, text, strlen(text) + 1);
			break;
		case ns_t_ptr:
			if (wire_name(d, len, text, sizeof(text)) != 0 ||
			    SPF_dns_rr_buf_realloc(rr, n, strlen(text) + 1))
				continue;
			memcpy(rr->rr[n]->ptr, text, strlen(text) + 1);
			break;
		default:
			continue;
		}
		n++;
	}
	if (rr)
		rr->num_rr = n;
	ub_resolve_free(res);
	return rr;
}

/* libopendkim DNS hooks: the answer is complete when the query starts. */
struct dkim_query {
	size_t bytes;
	int error;
};

static int dkim_query_start(void *srv, int type, unsigned char *query, unsigned char *buf,
			    size_t buflen, void **qh)
{
	struct ub_result *res = NULL;
	struct dkim_query *q = calloc(1, sizeof(*q));

	(void)srv;
	if (!q)
		return DKIM_DNS_ERROR;
	if (resolve((const char *)query, type, &res) != 0 || !res->answer_packet ||
	    res->answer_len <= 0 || (size_t)res->answer_len > buflen) {
		q->error = 1;
	} else {
		memcpy(buf, res->answer_packet, (size_t)res->answer_len);
		q->bytes = (size_t)res->answer_len;
	}
	if (res)
		ub_resolve_free(res);
	*qh = q;
	return DKIM_DNS_SUCCESS;
}

static int dkim_query_wait(void *srv, void *qh, struct timeval *to, size_t *bytes, int *error,
			   int *dnssec)
{
	struct dkim_query *q = qh;

	(void)srv;
	(void)to;
	if (bytes)
		*bytes = q->bytes;
	if (error)
		*error = q->error;
	if (dnssec)
		*dnssec = DKIM_DNSSEC_UNKNOWN;
	return q->error ? DKIM_DNS_ERROR : DKIM_DNS_SUCCESS;
}

static int dkim_query_cancel(void *srv, void *qh)
{
	(void)srv;
	free(qh);
	return DKIM_DNS_SUCCESS;
}

static void setup(void)
{
	char err[512];

	ub = ub_ctx_create();
	if (!ub)
		return;
	if (ub_ctx_async(ub, 1) != 0) { /* a thread, not a forked process */
		ub_ctx_delete(ub);
		ub = NULL;
		return;
	}
	if (mailauth_psl_load(options.psl_file ? options.psl_file : MAILAUTH_PSL_FILE_DEFAULT, err,
			      sizeof(err)) != 0)
		log_warn(_("mailauth: no public suffix list (%s): every top-level domain counts "
			   "as a public suffix"),
			 err);
	if (upstream_addr[0]) {
		ub_ctx_set_option(ub, "do-not-query-localhost:", "no");
		ub_ctx_set_fwd(ub, upstream_addr);
		ub_ctx_zone_remove(ub, "test."); /* see queue_dns.c */
	} else {
		ub_ctx_resolvconf(ub, NULL);
		ub_ctx_hosts(ub, NULL);
	}
	memset(&spf_layer, 0, sizeof(spf_layer));
	spf_layer.lookup = spf_lookup;
	spf_layer.name = "unbound";
	spf_server = SPF_server_new_dns(&spf_layer, 0);
	dkim_lib = dkim_init(NULL, NULL);
	if (dkim_lib) {
		dkim_dns_set_query_service(dkim_lib, ub);
		dkim_dns_set_query_start(dkim_lib, dkim_query_start);
		dkim_dns_set_query_waitreply(dkim_lib, dkim_query_wait);
		dkim_dns_set_query_cancel(dkim_lib, dkim_query_cancel);
	}
	memset(&dmarc_lib, 0, sizeof(dmarc_lib));
	dmarc_lib.tld_type = OPENDMARC_TLD_TYPE_NONE;
	dmarc_ready = opendmarc_policy_library_init(&dmarc_lib) == DMARC_PARSE_OKAY;
}

static void lower_copy(const char *in, char *out, size_t outlen)
{
	size_t o = 0;

	for (; *in && o + 1 < outlen; in++)
		out[o++] = (char)tolower((unsigned char)*in);
	out[o] = '\0';
}

static enum mailauth_verdict spf_verdict(SPF_result_t r)
{
	switch (r) {
	case SPF_RESULT_PASS:
		return MAILAUTH_PASS;
	case SPF_RESULT_FAIL:
		return MAILAUTH_FAIL;
	case SPF_RESULT_SOFTFAIL:
		return MAILAUTH_SOFTFAIL;
	case SPF_RESULT_NEUTRAL:
		return MAILAUTH_NEUTRAL;
	case SPF_RESULT_NONE:
		return MAILAUTH_NONE;
	case SPF_RESULT_PERMERROR:
	case SPF_RESULT_INVALID:
		return MAILAUTH_PERMERROR;
	default:
		return MAILAUTH_TEMPERROR;
	}
}

/* SPF_request_query_mailfrom() without its free pass for loopback clients
 * ([mailauth] check_loopback): the record of the MAIL FROM domain is
 * fetched and evaluated for the client address as for anyone else. */
static enum mailauth_verdict spf_query_loopback(SPF_request_t *req)
{
	SPF_response_t *resp = SPF_response_new(req);
	SPF_record_t *record = NULL;
	enum mailauth_verdict v;

	if (!resp)
		return MAILAUTH_TEMPERROR;
	req->cur_dom = req->env_from_dp;
	/* on failure the response already holds none or permerror */
	if (SPF_server_get_record(spf_server, req, resp, &record) == SPF_E_SUCCESS && record) {
		resp->spf_record_exp = record; /* for exp= (as the library does) */
		SPF_record_interpret(record, req, resp, 0);
		resp->spf_record_exp = NULL;
	}
	v = spf_verdict(SPF_response_result(resp));
	if (record)
		SPF_record_free(record);
	SPF_response_free(resp);
	return v;
}

static void check_spf(const char *ip, const char *helo, const char *mail_from,
		      struct mailauth_result *out)
{
	SPF_request_t *req;
	SPF_response_t *resp = NULL;
	const char *at = strrchr(mail_from, '@');
	int set;

	lower_copy(at ? at + 1 : helo, out->mailfrom_domain, sizeof(out->mailfrom_domain));
	if (!spf_server || !(req = SPF_request_new(spf_server))) {
		out->spf = MAILAUTH_TEMPERROR;
		return;
	}
	set =
	    strchr(ip, ':') ? SPF_request_set_ipv6_str(req, ip) : SPF_request_set_ipv4_str(req, ip);
	if (set != SPF_E_SUCCESS || SPF_request_set_helo_dom(req, helo) != SPF_E_SUCCESS ||
	    SPF_request_set_env_from(req, mail_from[0] ? mail_from : helo) != 0) {
		out->spf = MAILAUTH_PERMERROR;
		SPF_request_free(req);
		return;
	}
	spf_dns_tempfail = false;
	if (options.check_loopback && SPF_request_is_loopback(req))
		out->spf = spf_query_loopback(req);
	else {
		SPF_request_query_mailfrom(req, &resp);
		out->spf = spf_verdict(resp ? SPF_response_result(resp) : SPF_RESULT_TEMPERROR);
	}
	if ((out->spf == MAILAUTH_PERMERROR || out->spf == MAILAUTH_NONE) && spf_dns_tempfail)
		out->spf = MAILAUTH_TEMPERROR;
	if (resp)
		SPF_response_free(resp);
	SPF_request_free(req);
}

int mailauth_dkim_feed(void *handle, const unsigned char *m, size_t len)
{
	DKIM *dkim = handle;
	size_t i = 0, field = 0;
	DKIM_STAT st;

	while (i + 1 < len) {
		size_t eol = i;

		while (eol + 1 < len && !(m[eol] == '\r' && m[eol + 1] == '\n'))
			eol++;
		if (eol + 1 >= len)
			break;
		if (eol == i) { /* blank line: end of the header */
			if (i > field && (st = dkim_header(dkim, (u_char *)(uintptr_t)(m + field),
							   i - 2 - field)) != DKIM_STAT_OK)
				return st;
			if ((st = dkim_eoh(dkim)) != DKIM_STAT_OK)
				return st;
			i += 2;
			if (i < len && (st = dkim_body(dkim, (u_char *)(uintptr_t)(m + i),
						       len - i)) != DKIM_STAT_OK)
				return st;
			return dkim_eom(dkim, NULL);
		}
		if (i > field && m[i] != ' ' && m[i] != '\t') {
			st = dkim_header(dkim, (u_char *)(uintptr_t)(m + field), i - 2 - field);
			if (st != DKIM_STAT_OK)
				return st;
			field = i;
		}
		i = eol + 2;
	}
	return DKIM_STAT_SYNTAX; /* no blank line after the header */
}

unsigned char *mailauth_crlf_copy(const unsigned char *msg, size_t len, size_t *out_len)
{
	unsigned char *out = malloc(2 * len + 3);
	size_t o = 0;

	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		if (msg[i] == '\n' && (i == 0 || msg[i - 1] != '\r'))
			out[o++] = '\r';
		out[o++] = msg[i];
	}
	*out_len = o;
	return out;
}

static void check_dkim(const unsigned char *msg, size_t len, struct mailauth_result *out)
{
	unsigned char *m;
	size_t mlen;
	DKIM_STAT st = DKIM_STAT_OK;
	DKIM *dkim;
	DKIM_SIGINFO *sig;

	out->dkim = MAILAUTH_TEMPERROR;
	if (!dkim_lib || !(m = mailauth_crlf_copy(msg, len, &mlen)))
		return;
	dkim = dkim_verify(dkim_lib, (const unsigned char *)"postern", NULL, &st);
	if (!dkim) {
		free(m);
		return;
	}
	st = (DKIM_STAT)mailauth_dkim_feed(dkim, m, mlen);
	sig = dkim_getsignature(dkim);
	if (sig && dkim_sig_getdomain(sig))
		lower_copy((const char *)dkim_sig_getdomain(sig), out->dkim_domain,
			   sizeof(out->dkim_domain));
	switch (st) {
	case DKIM_STAT_OK:
		out->dkim = MAILAUTH_PASS;
		break;
	case DKIM_STAT_NOSIG:
		out->dkim = MAILAUTH_NONE;
		break;
	case DKIM_STAT_BADSIG:
	case DKIM_STAT_NOKEY:
	case DKIM_STAT_REVOKED:
		out->dkim = MAILAUTH_FAIL;
		break;
	case DKIM_STAT_SYNTAX:
		out->dkim = MAILAUTH_PERMERROR;
		break;
	case DKIM_STAT_CANTVRFY:
		out->dkim = sig && dkim_sig_geterror(sig) == DKIM_SIGERROR_NOKEY
				? MAILAUTH_FAIL
				: MAILAUTH_TEMPERROR;
		break;
	default:
		out->dkim = MAILAUTH_TEMPERROR;
		break;
	}
	dkim_free(dkim);
	free(m);
}

int mailauth_from_domain(const unsigned char *msg, size_t len, char *out, size_t outlen)
{
	size_t i = 0;

	if (outlen > 0)
		out[0] = '\0';
	while (i < len) {
		size_t start = i, end;

		while (i < len && msg[i] != '\n')
			i++;
		end = i;
		if (i < len)
			i++;
		if (end > start && msg[end - 1] == '\r')
			end--;
		if (end == start)
			return -1; /* end of the header without From */
		if (end - start > 5 && strncasecmp((const char *)msg + start, "From:", 5) == 0) {
			/* The field with its continuation lines. */
			size_t fend = i, at = 0, o = 0;
			const unsigned char *lt;

			while (fend < len && (msg[fend] == ' ' || msg[fend] == '\t')) {
				while (fend < len && msg[fend] != '\n')
					fend++;
				if (fend < len)
					fend++;
			}
			lt = memchr(msg + start, '<', fend - start);
			for (size_t k = lt ? (size_t)(lt - msg) : start + 5; k < fend; k++) {
				if (msg[k] == '@')
					at = k;
				if (lt && msg[k] == '>')
					break;
			}
			if (!at)
				return -1;
			for (size_t k = at + 1; k < fend && o + 1 < outlen; k++) {
				unsigned char c = msg[k];
				if (!(isalnum(c) || c == '-' || c == '.'))
					break;
				out[o++] = (char)tolower(c);
			}
			out[o] = '\0';
			return o > 0 && o + 1 < outlen ? 0 : -1;
		}
	}
	return -1;
}

/* The DMARC record of DOMAIN ("v=DMARC1; ..."), or "" when it has none. */
static int dmarc_record(const char *domain, char *out, size_t outlen)
{
	char name[300];
	struct ub_result *res = NULL;

	out[0] = '\0';
	snprintf(name, sizeof(name), "_dmarc.%s", domain);
	if (resolve(name, DNS_TYPE_TXT, &res) != 0)
		return -1;
	if (!res->havedata && !res->nxdomain && res->rcode == DNS_RCODE_SERVFAIL) {
		ub_resolve_free(res);
		return -1;
	}
	for (int i = 0; res->havedata && res->data[i]; i++) {
		txt_join((const unsigned char *)res->data[i], (size_t)res->len[i], out, outlen);
		if (strncmp(out, "v=DMARC1", 8) == 0)
			break;
		out[0] = '\0';
	}
	ub_resolve_free(res);
	return 0;
}

static bool aligned(const char *id, const char *from, bool strict)
{
	if (!id[0] || !from[0])
		return false;
	if (strict)
		return strcasecmp(id, from) == 0;
	return strcasecmp(mailauth_org_domain(id), mailauth_org_domain(from)) == 0;
}

static void check_dmarc(const char *ip, struct mailauth_result *out)
{
	char record[MAILAUTH_TXT_MAX], org[256];
	DMARC_POLICY_T *p;
	int spf, dkim, policy, aspf, adkim;

	out->dmarc = MAILAUTH_NONE;
	if (!out->from_domain[0] || !dmarc_ready)
		return;
	snprintf(org, sizeof(org), "%s", mailauth_org_domain(out->from_domain));
	if (dmarc_record(out->from_domain, record, sizeof(record)) != 0) {
		out->dmarc = MAILAUTH_TEMPERROR;
		return;
	}
	if (!record[0] && strcmp(org, out->from_domain) != 0 &&
	    dmarc_record(org, record, sizeof(record)) != 0) {
		out->dmarc = MAILAUTH_TEMPERROR;
		return;
	}
	if (!record[0])
		return;
	p = opendmarc_policy_connect_init((u_char *)(uintptr_t)ip, strchr(ip, ':')
								       ? DMARC_POLICY_IP_TYPE_IPV6
								       : DMARC_POLICY_IP_TYPE_IPV4);
	if (!p) {
		out->dmarc = MAILAUTH_TEMPERROR;
		return;
	}
	spf = out->spf == MAILAUTH_PASS	       ? DMARC_POLICY_SPF_OUTCOME_PASS
	      : out->spf == MAILAUTH_TEMPERROR ? DMARC_POLICY_SPF_OUTCOME_TMPFAIL
	      : out->spf == MAILAUTH_NONE      ? DMARC_POLICY_SPF_OUTCOME_NONE
					       : DMARC_POLICY_SPF_OUTCOME_FAIL;
	dkim = out->dkim == MAILAUTH_PASS	 ? DMARC_POLICY_DKIM_OUTCOME_PASS
	       : out->dkim == MAILAUTH_TEMPERROR ? DMARC_POLICY_DKIM_OUTCOME_TMPFAIL
	       : out->dkim == MAILAUTH_NONE	 ? DMARC_POLICY_DKIM_OUTCOME_NONE
						 : DMARC_POLICY_DKIM_OUTCOME_FAIL;
	if (opendmarc_policy_store_from_domain(p, (u_char *)out->from_domain) != DMARC_PARSE_OKAY ||
	    opendmarc_policy_store_dmarc(p, (u_char *)record, (u_char *)out->from_domain,
					 (u_char *)org) != DMARC_PARSE_OKAY) {
		out->dmarc = MAILAUTH_PERMERROR;
		opendmarc_policy_connect_shutdown(p);
		return;
	}
	/* Identifier alignment (RFC 7489 3.1) is decided here, with the
	 * organizational domains of mailauth_psl.c (libopendmarc without its
	 * own suffix list would take "test" or "com" for the organizational
	 * domain and align everything). An aligned identifier is handed over
	 * as the From domain itself; one that does not align is not handed
	 * over at all. */
	if (opendmarc_policy_fetch_aspf(p, &aspf) != DMARC_PARSE_OKAY)
		aspf = DMARC_RECORD_A_RELAXED;
	if (opendmarc_policy_fetch_adkim(p, &adkim) != DMARC_PARSE_OKAY)
		adkim = DMARC_RECORD_A_RELAXED;
	if (aligned(out->mailfrom_domain, out->from_domain, aspf == DMARC_RECORD_A_STRICT))
		opendmarc_policy_store_spf(p, (u_char *)out->from_domain, spf,
					   DMARC_POLICY_SPF_ORIGIN_MAILFROM, NULL);
	if (aligned(out->dkim_domain, out->from_domain, adkim == DMARC_RECORD_A_STRICT))
		opendmarc_policy_store_dkim(p, (u_char *)out->from_domain, NULL, dkim, NULL);
	policy = opendmarc_get_policy_to_enforce(p);
	switch (policy) {
	case DMARC_POLICY_PASS:
		out->dmarc = MAILAUTH_PASS;
		break;
	case DMARC_POLICY_REJECT:
		out->dmarc = MAILAUTH_FAIL;
		out->policy = MAILAUTH_POLICY_REJECT;
		break;
	case DMARC_POLICY_QUARANTINE:
		out->dmarc = MAILAUTH_FAIL;
		out->policy = MAILAUTH_POLICY_QUARANTINE;
		break;
	case DMARC_POLICY_NONE:
		out->dmarc = MAILAUTH_FAIL;
		out->policy = MAILAUTH_POLICY_NONE;
		break;
	default:
		out->dmarc = MAILAUTH_NONE;
		break;
	}
	opendmarc_policy_connect_shutdown(p);
}

void mailauth_check(const char *client_ip, const char *helo, const char *mail_from,
		    const unsigned char *msg, size_t len, struct mailauth_result *out)
{
	memset(out, 0, sizeof(*out));
	pthread_once(&once, setup);
	clock_gettime(CLOCK_MONOTONIC, &check_deadline);
	check_deadline.tv_sec += options.dns_timeout_ms / 1000;
	check_deadline.tv_nsec += (long)(options.dns_timeout_ms % 1000) * 1000000;
	if (check_deadline.tv_nsec >= 1000000000) {
		check_deadline.tv_sec++;
		check_deadline.tv_nsec -= 1000000000;
	}
	if (!ub) {
		out->spf = out->dkim = out->dmarc = MAILAUTH_TEMPERROR;
		return;
	}
	check_spf(client_ip ? client_ip : "0.0.0.0", helo && helo[0] ? helo : "unknown",
		  mail_from ? mail_from : "", out);
	check_dkim(msg, len, out);
	if (mailauth_from_domain(msg, len, out->from_domain, sizeof(out->from_domain)) != 0)
		out->from_domain[0] = '\0';
	check_dmarc(client_ip ? client_ip : "0.0.0.0", out);
}
