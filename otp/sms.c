/*
 * sms.c - one-time codes by SMS through a configurable HTTP gateway
 * (config [sms]: URL, method, headers, body template with {phone} and
 * {code}), sent with libcurl.
 *
 * Certificates are always verified (an extra CA bundle may be named) and the
 * whole request is bounded by a timeout; only http and https are allowed and
 * redirects are not followed. A code is 6 random digits, valid
 * SMS_CODE_TTL seconds, kept only as a salted hash, compared in constant
 * time and cleared on use. Sending is rate-limited per user (an interval and
 * a count per hour). The daemon sends from a detached thread so that a login
 * which triggers an SMS answers as fast as any failed login.
 */
#include "config.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <sodium.h>

#include "otp/otp.h"
#include "otp/otp_int.h"
#include "util/i18n.h"
#include "util/log.h"

static pthread_mutex_t gateway_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static struct sms_gateway gateway;
static bool gateway_set;

static void curl_start(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

void sms_configure(const struct sms_gateway *g)
{
	pthread_once(&curl_once, curl_start);
	pthread_mutex_lock(&gateway_lock);
	gateway = *g;
	gateway_set = g->url[0] != '\0';
	pthread_mutex_unlock(&gateway_lock);
}

bool sms_enabled(void)
{
	bool on;

	pthread_mutex_lock(&gateway_lock);
	on = gateway_set;
	pthread_mutex_unlock(&gateway_lock);
	return on;
}

bool sms_phone_valid(const char *phone)
{
	size_t n;

	if (phone == NULL || phone[0] != '+')
		return false;
	n = strlen(phone + 1);
	if (n < SMS_PHONE_DIGITS_MIN || n > SMS_PHONE_DIGITS_MAX)
		return false;
	for (size_t i = 1; phone[i] != '\0'; i++)
		if (!isdigit((unsigned char)phone[i]))
			return false;
	return true;
}

int sms_render(const char *tmpl, const char *phone, const char *code, bool escape, char *out,
	       size_t outlen)
{
	size_t pos = 0;

	if (outlen == 0)
		return -1;
	out[0] = '\0';
	while (*tmpl != '\0') {
		if (strncmp(tmpl, "{phone}", 7) == 0) {
			/* A phone's "+" becomes %2B. */
			if (otp_uri_put(phone, escape, out, outlen, &pos) != 0)
				return -1;
			tmpl += 7;
		} else if (strncmp(tmpl, "{code}", 6) == 0) {
			if (otp_uri_put(code, escape, out, outlen, &pos) != 0)
				return -1;
			tmpl += 6;
		} else {
			if (pos + 1 >= outlen)
				return -1;
			out[pos++] = *tmpl++;
			out[pos] = '\0';
		}
	}
	return 0;
}

static size_t discard_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
	(void)ptr;
	(void)arg;
	return size * nmemb;
}

/* Adds the " | "-separated headers of TEXT to *LIST. */
static int add_headers(struct curl_slist **list, const char *text)
{
	char one[1024];

	while (*text != '\0') {
		size_t n = strcspn(text, "|");
		size_t a = 0, b = n;

		while (a < b && isspace((unsigned char)text[a]))
			a++;
		while (b > a && isspace((unsigned char)text[b - 1]))
			b--;
		if (b > a) {
			struct curl_slist *next;

			if (b - a >= sizeof(one))
				return -1;
			memcpy(one, text + a, b - a);
			one[b - a] = '\0';
			next = curl_slist_append(*list, one);
			if (next == NULL)
				return -1;
			*list = next;
		}
		text += n;
		if (*text == '|')
			text++;
	}
	return 0;
}

int sms_send(const char *phone, const char *code, char *err, size_t errlen)
{
	struct sms_gateway g;
	char url[SMS_URL_MAX], body[SMS_BODY_MAX], ctype[160];
	struct curl_slist *headers = NULL;
	CURL *curl = NULL;
	CURLcode cc;
	long status = 0;
	int rc = -1;

	pthread_mutex_lock(&gateway_lock);
	g = gateway;
	pthread_mutex_unlock(&gateway_lock);
	if (g.url[0] == '\0') {
		snprintf(err, errlen, "%s", _("no SMS gateway is configured ([sms] gateway_url)"));
		return -1;
	}
	if (!sms_phone_valid(phone)) {
		snprintf(err, errlen, "%s", _("the phone number is not in +<digits> form"));
		return -1;
	}
	if (strcmp(g.method, "POST") != 0 && strcmp(g.method, "PUT") != 0 &&
	    strcmp(g.method, "GET") != 0) {
		snprintf(err, errlen, _("[sms] method must be POST, PUT or GET, not \"%s\""),
			 g.method);
		return -1;
	}
	if (sms_render(g.url, phone, code, true, url, sizeof(url)) != 0 ||
	    sms_render(g.body, phone, code, false, body, sizeof(body)) != 0) {
		snprintf(err, errlen, "%s", _("the SMS request does not fit its buffer"));
		goto out;
	}
	curl = curl_easy_init();
	if (curl == NULL) {
		snprintf(err, errlen, "%s", _("cannot start an HTTP request"));
		goto out;
	}
	snprintf(ctype, sizeof(ctype), "Content-Type: %s", g.content_type);
	if (add_headers(&headers, g.headers) != 0 ||
	    (strcmp(g.method, "GET") != 0 &&
	     (headers = curl_slist_append(headers, ctype)) == NULL)) {
		snprintf(err, errlen, "%s", _("cannot build the SMS request headers"));
		goto out;
	}
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
	if (g.ca_file[0] != '\0')
		curl_easy_setopt(curl, CURLOPT_CAINFO, g.ca_file);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, (long)(g.timeout > 0 ? g.timeout : 10));
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, (long)(g.timeout > 0 ? g.timeout : 10));
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard_body);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "Postern");
	if (strcmp(g.method, "GET") != 0) {
		curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, g.method);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	}
	cc = curl_easy_perform(curl);
	if (cc != CURLE_OK) {
		snprintf(err, errlen, _("the SMS gateway could not be reached: %s"),
			 curl_easy_strerror(cc));
		goto out;
	}
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	if (status < 200 || status > 299) {
		snprintf(err, errlen, _("the SMS gateway answered HTTP %ld"), status);
		goto out;
	}
	rc = 0;
out:
	sodium_memzero(body, sizeof(body));
	sodium_memzero(url, sizeof(url));
	curl_slist_free_all(headers);
	if (curl != NULL)
		curl_easy_cleanup(curl);
	return rc;
}

struct async_sms {
	char phone[SMS_PHONE_DIGITS_MAX + 2];
	char code[OTP_DIGITS + 1];
};

static void *send_thread(void *arg)
{
	struct async_sms *a = arg;
	char err[512];

	if (sms_send(a->phone, a->code, err, sizeof(err)) != 0)
		log_warn(_("SMS code not sent: %s"), err);
	sodium_memzero(a, sizeof(*a));
	free(a);
	return NULL;
}

int sms_send_async(const char *phone, const char *code)
{
	struct async_sms *a = calloc(1, sizeof(*a));
	pthread_attr_t attr;
	pthread_t t;
	int rc;

	if (a == NULL)
		return -1;
	snprintf(a->phone, sizeof(a->phone), "%s", phone);
	snprintf(a->code, sizeof(a->code), "%s", code);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	rc = pthread_create(&t, &attr, send_thread, a);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		free(a);
		return -1;
	}
	return 0;
}

int sms_code_issue(struct otp_state *s, int64_t now, char code_out[OTP_DIGITS + 1])
{
	size_t recent = 0;
	int64_t last = 0;

	for (size_t i = 0; i < SMS_MAX_PER_HOUR; i++) {
		if (s->sms_sent[i] > now - 3600)
			recent++;
		if (s->sms_sent[i] > last)
			last = s->sms_sent[i];
	}
	if (recent >= SMS_MAX_PER_HOUR || (last != 0 && now - last < SMS_MIN_INTERVAL))
		return -1;
	if (crypto_setup() != 0)
		return -1;
	snprintf(code_out, OTP_DIGITS + 1, "%06u", (unsigned)randombytes_uniform(1000000));
	randombytes_buf(s->sms_salt, sizeof(s->sms_salt));
	otp_code_hash(s->sms_salt, code_out, OTP_DIGITS, s->sms_hash);
	s->sms_expires = now + SMS_CODE_TTL;
	/* Replace the oldest send time. */
	size_t oldest = 0;
	for (size_t i = 1; i < SMS_MAX_PER_HOUR; i++)
		if (s->sms_sent[i] < s->sms_sent[oldest])
			oldest = i;
	s->sms_sent[oldest] = now;
	return 0;
}

int sms_code_check(struct otp_state *s, const char *code, int64_t now)
{
	unsigned char h[32];
	int ok;

	if (s->sms_expires == 0 || now >= s->sms_expires || !totp_code_shape(code, OTP_DIGITS))
		return -1;
	otp_code_hash(s->sms_salt, code, OTP_DIGITS, h);
	ok = sodium_memcmp(h, s->sms_hash, sizeof(h)) == 0;
	sodium_memzero(h, sizeof(h));
	if (!ok)
		return -1;
	/* Single use. */
	sodium_memzero(s->sms_hash, sizeof(s->sms_hash));
	s->sms_expires = 0;
	return 0;
}
