/*
 * auth_notice.c - security notices mailed into a user's INBOX: a login from
 * a new client address, one-time codes enrolled or removed, an app password
 * created, a password changed.
 *
 * Composing the message is pure (text in, RFC 5322 bytes out). Delivering it
 * is not auth's business (deliver/ is a sibling layer), so the program that
 * links both registers a sink (auth_set_notice_sink); posternctl delivers its
 * own notices through the same composer. The addresses a user logged in
 * from are remembered in store_user_data kind "login_ips" (most recent
 * first, at most AUTH_KNOWN_IPS) to tell which address is new.
 */
#include "config.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <sodium.h>

#include "auth/auth.h"
#include "util/i18n.h"

#define AUTH_KNOWN_IPS 20
#define LOGIN_IPS_KIND "login_ips"
#define NOTICE_MAX 8192

static pthread_mutex_t sink_lock = PTHREAD_MUTEX_INITIALIZER;
static auth_notice_sink notice_sink;

void auth_set_notice_sink(auth_notice_sink sink)
{
	pthread_mutex_lock(&sink_lock);
	notice_sink = sink;
	pthread_mutex_unlock(&sink_lock);
}

static const char *subject_of(enum auth_notice_kind kind)
{
	switch (kind) {
	case AUTH_NOTICE_NEW_IP:
		return "Security notice: login from a new address";
	case AUTH_NOTICE_OTP_ENROLLED:
		return "Security notice: one-time codes turned on";
	case AUTH_NOTICE_OTP_REMOVED:
		return "Security notice: one-time codes turned off";
	case AUTH_NOTICE_APP_PASSWORD:
		return "Security notice: new app password";
	case AUTH_NOTICE_PASSWORD_CHANGED:
		return "Security notice: password changed";
	}
	return "Security notice";
}

/* Keeps header values on one line: CR, LF and other controls become spaces. */
static void one_line(char *out, size_t outlen, const char *in)
{
	size_t j = 0;

	for (size_t i = 0; in != NULL && in[i] != '\0' && j + 1 < outlen; i++)
		out[j++] = ((unsigned char)in[i] < 0x20 || in[i] == 0x7f) ? ' ' : in[i];
	out[j] = '\0';
}

int auth_notice_compose(const struct auth_notice *n, char **msg, size_t *len)
{
	char date[64], when[64], ip[80], proto[32], client[128], detail[256], host[256], id[40];
	unsigned char rnd[12];
	time_t t = (time_t)n->time;
	struct tm tm;
	char *buf;
	int w;

	*msg = NULL;
	*len = 0;
	if (n->address == NULL || strchr(n->address, '\n') || strchr(n->address, '\r'))
		return -1;
	gmtime_r(&t, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
	one_line(ip, sizeof(ip), n->ip && n->ip[0] ? n->ip : "-");
	one_line(proto, sizeof(proto), n->protocol && n->protocol[0] ? n->protocol : "-");
	one_line(client, sizeof(client), n->client_id && n->client_id[0] ? n->client_id : "-");
	one_line(detail, sizeof(detail), n->detail ? n->detail : "");
	one_line(host, sizeof(host), n->hostname && n->hostname[0] ? n->hostname : "localhost");
	randombytes_buf(rnd, sizeof(rnd));
	sodium_bin2hex(id, sizeof(id), rnd, sizeof(rnd));
	buf = malloc(NOTICE_MAX);
	if (buf == NULL)
		return -1;
	/* Protocol text: the notice is mail, composed in English like our replies. */
	w = snprintf(buf, NOTICE_MAX,
		     "From: Postern security <postmaster@%s>\r\n"
		     "To: <%s>\r\n"
		     "Subject: %s\r\n"
		     "Date: %s\r\n"
		     "Message-ID: <notice.%s@%s>\r\n"
		     "Auto-Submitted: auto-generated\r\n"
		     "MIME-Version: 1.0\r\n"
		     "Content-Type: text/plain; charset=utf-8\r\n"
		     "Content-Transfer-Encoding: 8bit\r\n"
		     "\r\n"
		     "%s\r\n"
		     "\r\n"
		     "Time:     %s\r\n"
		     "Address:  %s\r\n"
		     "Protocol: %s\r\n"
		     "Client:   %s\r\n"
		     "%s%s%s"
		     "\r\n"
		     "If this was not you, change your password and tell your administrator.\r\n",
		     host, n->address, subject_of(n->kind), date, id, host, subject_of(n->kind),
		     when, ip, proto, client, detail[0] ? "Details:  " : "", detail,
		     detail[0] ? "\r\n" : "");
	if (w < 0 || w >= NOTICE_MAX) {
		free(buf);
		return -1;
	}
	*msg = buf;
	*len = (size_t)w;
	return 0;
}

int auth_notice_send(struct store *st, const struct store_user *u, const struct auth_notice *n)
{
	auth_notice_sink sink;
	char *msg;
	size_t len;
	int rc;

	pthread_mutex_lock(&sink_lock);
	sink = notice_sink;
	pthread_mutex_unlock(&sink_lock);
	if (sink == NULL)
		return 0;
	if (auth_notice_compose(n, &msg, &len) != 0)
		return -1;
	rc = sink(st, u, (const unsigned char *)msg, len);
	free(msg);
	return rc;
}

int auth_login_ip_is_new(struct store *st, int64_t user_id, const char *ip)
{
	unsigned char *blob = NULL;
	size_t blen = 0;
	json_t *arr = NULL, *fresh;
	bool known = false, had_any = false;
	char *text;
	int rc;

	if (ip == NULL || ip[0] == '\0')
		return 0;
	rc = store_user_data_get(st, user_id, LOGIN_IPS_KIND, &blob, &blen);
	if (rc == STORE_OK)
		arr = json_loadb((const char *)blob, blen, 0, NULL);
	free(blob);
	if (rc == STORE_ERR)
		return -1;
	if (!json_is_array(arr)) {
		json_decref(arr);
		arr = json_array();
	} else if (json_array_size(arr) > 0 && json_string_value(json_array_get(arr, 0)) != NULL &&
		   strcmp(json_string_value(json_array_get(arr, 0)), ip) == 0) {
		json_decref(arr); /* the usual case: same address as last time, nothing to write */
		return 0;
	}
	fresh = json_array();
	if (arr == NULL || fresh == NULL) {
		json_decref(arr);
		json_decref(fresh);
		return -1;
	}
	json_array_append_new(fresh, json_string(ip));
	for (size_t i = 0; i < json_array_size(arr); i++) {
		const char *s = json_string_value(json_array_get(arr, i));

		if (s == NULL)
			continue;
		had_any = true;
		if (strcmp(s, ip) == 0) {
			known = true;
			continue;
		}
		if (json_array_size(fresh) < AUTH_KNOWN_IPS)
			json_array_append_new(fresh, json_string(s));
	}
	json_decref(arr);
	/* Most recent first; unchanged when the address already leads the list. */
	text = json_dumps(fresh, JSON_COMPACT);
	json_decref(fresh);
	if (text == NULL)
		return -1;
	rc = store_user_data_put(st, user_id, LOGIN_IPS_KIND, (const unsigned char *)text,
				 strlen(text));
	free(text);
	if (rc != STORE_OK)
		return -1;
	/* The very first login has nothing to compare with: no notice. */
	return had_any && !known ? 1 : 0;
}
