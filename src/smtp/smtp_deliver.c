/*
 * smtp_deliver.c - hands a finished DATA/BDAT message to src/deliver on the
 * job pool (scanning and sealing are slow) and answers the transaction:
 * 250 only after every recipient's copy is committed durably.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "deliver/deliver.h"
#include "deliver/pgp_policy.h"
#include "deliver/stego_rewrite.h"
#include "mailauth/mailauth.h"
#include "smtp/smtp_int.h"
#include "trace/metrics.h"
#include "trace/trace.h"

struct deliver_job {
	struct smtp_session *s;
	const struct config *cfg;
	struct deliver_envelope env;
	char protocol[16];
	char tls_version[32];
	char tls_cipher[128];
	char client_ip[64];
	struct deliver_recipient *rcpts;
	bool *local;
	size_t n_rcpts;
	unsigned char *msg;
	size_t len;
	enum deliver_status status;
	struct deliver_report report;
	bool policy_reject;    /* the sender domain's DMARC policy refused the message */
	char policy_reply[16]; /* its reply code: "550 5.7.1", "550 5.7.23", "451 4.4.3" */
	struct stego_password stego_pw; /* taken out of submitted mail (docs/stego.md) */
};

static void deliver_job_free(struct deliver_job *job)
{
	if (job->msg) {
		sodium_memzero(job->msg, job->len);
		free(job->msg);
	}
	free(job->rcpts);
	free(job->local);
	sodium_memzero(&job->stego_pw, sizeof(job->stego_pw));
	free(job);
}

/*
 * Mail from outside (MX, not authenticated): SPF, DKIM and DMARC
 * (src/mailauth); our Authentication-Results goes in front after forged ones
 * are removed. A DMARC p=reject failure refuses the message, and so does an
 * SPF fail with [mailauth] reject_spf_fail (RFC 7372: 5.7.23); a temporary
 * DNS error asks the client to come back with [mailauth] defer_temperror.
 * Returns 0 to go on.
 */
static int authenticate_inbound(struct deliver_job *job)
{
	const char *id = job->cfg->server.hostname;
	struct mailauth_result r;
	char hdr[1024], info[256];
	unsigned char *m;
	int n;

	job->len = mailauth_strip(job->msg, job->len, id);
	mailauth_check(job->env.client_ip, job->env.helo, job->env.sender, job->msg, job->len, &r);
	snprintf(info, sizeof(info), "spf=%s dkim=%s dmarc=%s from=%.200s",
		 mailauth_verdict_name(r.spf), mailauth_verdict_name(r.dkim),
		 mailauth_verdict_name(r.dmarc), r.from_domain);
	trace_publish(conn_id(job->s->c), job->s->protocol, "", TRACE_INFO, 0, info);
	if (r.dmarc == MAILAUTH_FAIL && r.policy == MAILAUTH_POLICY_REJECT) {
		job->status = DELIVER_FAIL;
		job->policy_reject = true;
		snprintf(job->policy_reply, sizeof(job->policy_reply), "550 5.7.1");
		snprintf(job->report.message, sizeof(job->report.message),
			 "Rejected by the DMARC policy of %.200s", r.from_domain);
		return -1;
	}
	if (r.spf == MAILAUTH_FAIL && job->cfg->mailauth.reject_spf_fail) {
		job->status = DELIVER_FAIL;
		job->policy_reject = true;
		snprintf(job->policy_reply, sizeof(job->policy_reply), "550 5.7.23");
		snprintf(job->report.message, sizeof(job->report.message),
			 "SPF of %.120s does not allow %.64s to send its mail", r.mailfrom_domain,
			 job->env.client_ip);
		return -1;
	}
	if ((r.spf == MAILAUTH_TEMPERROR || r.dmarc == MAILAUTH_TEMPERROR) &&
	    job->cfg->mailauth.defer_temperror) {
		job->status = DELIVER_TEMPFAIL;
		job->policy_reject = true;
		snprintf(job->policy_reply, sizeof(job->policy_reply), "451 4.4.3");
		snprintf(job->report.message, sizeof(job->report.message),
			 "Sender authentication lookups for %.150s failed, try again later",
			 r.spf == MAILAUTH_TEMPERROR ? r.mailfrom_domain : r.from_domain);
		return -1;
	}
	n = mailauth_header(&r, id, hdr, sizeof(hdr));
	if (n > 0 && (m = malloc((size_t)n + job->len))) {
		memcpy(m, hdr, (size_t)n);
		memcpy(m + n, job->msg, job->len);
		sodium_memzero(job->msg, job->len);
		free(job->msg);
		job->msg = m;
		job->len += (size_t)n;
	}
	return 0;
}

static void deliver_work(struct store *st, void *arg)
{
	struct deliver_job *job = arg;

	/* The stego password leaves submitted mail before anything else sees it. */
	if (job->env.auth_user)
		job->len = stego_rewrite_take_password(
		    job->msg, mailauth_strip(job->msg, job->len, job->cfg->server.hostname),
		    &job->stego_pw);
	else if (authenticate_inbound(job) != 0)
		return;

	/* Password protection, sign/encrypt policy, Autocrypt (docs/pgp.md). */
	if (job->env.auth_user &&
	    (job->status = pgp_policy_submission(st, job->cfg, &job->env, job->s->user_id,
						 job->rcpts, job->local, job->n_rcpts, &job->msg,
						 &job->len, &job->report)) != DELIVER_OK) {
		if (job->status == DELIVER_FAIL) {
			job->policy_reject = true;
			snprintf(job->policy_reply, sizeof(job->policy_reply), "554 5.7.5");
		}
		return;
	}
	/* Submitted mail may ask to be hidden in a picture (docs/stego.md). */
	if (job->env.auth_user && stego_rewrite_requested(job->msg, job->len))
		job->status = stego_rewrite_deliver(st, job->cfg, &job->env, job->rcpts, job->local,
						    job->n_rcpts, job->msg, job->len,
						    &job->stego_pw, &job->report);
	else
		job->status = deliver_message(st, job->cfg, &job->env, job->rcpts, job->local,
					      job->n_rcpts, job->msg, job->len, &job->report);
}

static void deliver_done(struct conn *c, void *arg)
{
	struct deliver_job *job = arg;
	struct smtp_session *s = job->s;
	char info[128];

	(void)c;
	if (job->status == DELIVER_OK) {
		snprintf(
		    info, sizeof(info), "message accepted: %zu stored, %zu queued, %zu quarantined",
		    job->report.stored_local, job->report.queued_remote, job->report.quarantined);
		trace_publish(conn_id(s->c), s->protocol, smtp_session_user(s), TRACE_INFO, 0,
			      info);
		metrics_count(s->protocol, "messages_accepted", NULL, NULL, 1);
	} else {
		metrics_count(s->protocol, "messages_refused", NULL, NULL, 1);
	}
	if (conn_is_closing(s->c)) {
		deliver_job_free(job);
		return;
	}
	switch (job->policy_reject ? DELIVER_FAIL : job->status) {
	case DELIVER_OK:
		smtp_reply(s, "250 2.0.0 Ok: queued as %016llX%04X",
			   (unsigned long long)conn_id(s->c), s->transactions & 0xffff);
		break;
	case DELIVER_QUOTA:
		smtp_reply(s, "552 5.2.2 %s",
			   job->report.message[0] ? job->report.message : "Mailbox full");
		break;
	case DELIVER_TEMPFAIL:
		smtp_reply(s, "451 4.3.0 %s",
			   job->report.message[0] ? job->report.message
						  : "Temporary failure, try again later");
		break;
	case DELIVER_FAIL:
	default:
		if (job->policy_reject) {
			smtp_reply(s, "%s %s", job->policy_reply, job->report.message);
			break;
		}
		smtp_reply(s, "554 5.0.0 %s",
			   job->report.message[0] ? job->report.message : "Delivery failed");
		break;
	}
	deliver_job_free(job);
	smtp_reset_transaction(s);
	smtp_resume(s);
}

/* The "with" protocol of Received: RFC 3848 (ESMTP, ESMTPS, ESMTPA,
 * ESMTPSA) and RFC 6531 3.7.3 (UTF8SMTP, UTF8SMTPS, UTF8SMTPA, UTF8SMTPSA). */
static void with_protocol(const struct smtp_session *s, char *out, size_t outlen)
{
	if (!s->esmtp) {
		snprintf(out, outlen, "SMTP");
		return;
	}
	snprintf(out, outlen, "%s%s%s", s->smtputf8 ? "UTF8SMTP" : "ESMTP",
		 conn_is_tls(s->c) ? "S" : "", s->authenticated ? "A" : "");
}

void smtp_deliver_start(struct smtp_session *s)
{
	struct deliver_job *job = calloc(1, sizeof(*job));
	const char *v;
	size_t i;

	s->transactions++;
	if (!job)
		goto fail;
	job->rcpts = calloc(s->n_rcpts, sizeof(*job->rcpts));
	job->local = calloc(s->n_rcpts, sizeof(*job->local));
	if (!job->rcpts || !job->local)
		goto fail;
	job->s = s;
	job->cfg = s->cfg;
	for (i = 0; i < s->n_rcpts; i++) {
		job->rcpts[i].address = s->rcpts[i].address;
		job->rcpts[i].dsn_notify = s->rcpts[i].notify[0] ? s->rcpts[i].notify : NULL;
		job->rcpts[i].dsn_orcpt = s->rcpts[i].orcpt[0] ? s->rcpts[i].orcpt : NULL;
		job->local[i] = s->rcpts[i].local;
	}
	job->n_rcpts = s->n_rcpts;
	with_protocol(s, job->protocol, sizeof(job->protocol));
	snprintf(job->client_ip, sizeof(job->client_ip), "%s", conn_peer_address(s->c));
	job->env.sender = s->sender;
	job->env.helo = s->helo;
	job->env.client_ip = job->client_ip;
	job->env.protocol = job->protocol;
	if (conn_is_tls(s->c)) {
		v = conn_tls_version(s->c);
		snprintf(job->tls_version, sizeof(job->tls_version), "%s", v ? v : "TLS");
		v = conn_tls_cipher(s->c);
		snprintf(job->tls_cipher, sizeof(job->tls_cipher), "%s", v ? v : "unknown");
		job->env.tls_version = job->tls_version;
		job->env.tls_cipher = job->tls_cipher;
	}
	job->env.auth_user = s->authenticated ? s->user : NULL;
	job->env.dsn_ret = s->ret[0] ? s->ret : NULL;
	job->env.dsn_envid = s->envid[0] ? s->envid : NULL;
	job->env.received_at = (int64_t)time(NULL);
	job->env.session_id = conn_id(s->c);
	/* The message moves to the job; the session's buffer is now empty. */
	job->msg = s->data.buf;
	job->len = s->data.len;
	s->data.buf = NULL;
	s->data.len = s->data.cap = 0;
	s->busy = true;
	if (conn_defer(s->c, deliver_work, deliver_done, job) < 0) {
		s->busy = false;
		goto fail;
	}
	return;
fail:
	if (job)
		deliver_job_free(job);
	smtp_reset_transaction(s);
	smtp_reply(s, "451 4.3.0 Insufficient system resources");
}
