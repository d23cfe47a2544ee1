/*
 * auth_request.c - auth_login_request(): the login policy around the
 * password check of auth.c.
 *
 * In order: the client address and then the account may be throttled
 * (otp/throttle.c); an app password of the user is tried when the secret has
 * that shape; otherwise the password is checked, for a TOTP user with the
 * code that follows it (or a recovery code). Every attempt ends in one audit
 * row. Unknown users pay the same Argon2id and throttling as known ones, so
 * neither the reply nor its timing tells whether an address exists.
 *
 * TOTP secrets are sealed to the server key, loaded once from the file set by
 * auth_set_server_key_file(). The last accepted step is read and written
 * under a process-wide lock, so two logins racing with one code in this
 * daemon cannot both pass.
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "auth/auth.h"
#include "auth/auth_int.h"
#include "otp/otp.h"
#include "util/i18n.h"
#include "util/log.h"

#define AUTH_REQUEST_SECRET_MAX (1024 + OTP_RECOVERY_CODE_LEN) /* password and code */
#define AUTH_KEY_PREFIX_ACCOUNT "account:"
#define AUTH_KEY_PREFIX_IP "ip:"

static pthread_mutex_t server_key_lock = PTHREAD_MUTEX_INITIALIZER;
static char hostname[256] = "localhost";
static char server_key_path[CONFIG_PATH_MAX];
static struct user_key *server_key;

/* Serializes read-count-write of account failure counters in this process. */
static pthread_mutex_t account_lock = PTHREAD_MUTEX_INITIALIZER;

/* Serializes read-check-write of TOTP steps and recovery codes. */
static pthread_mutex_t otp_lock = PTHREAD_MUTEX_INITIALIZER;

void auth_configure_sms(const struct config *cfg)
{
	struct sms_gateway g;

	memset(&g, 0, sizeof(g));
	snprintf(g.url, sizeof(g.url), "%s", cfg->sms.gateway_url);
	snprintf(g.method, sizeof(g.method), "%s", cfg->sms.method);
	snprintf(g.headers, sizeof(g.headers), "%s", cfg->sms.headers);
	snprintf(g.body, sizeof(g.body), "%s", cfg->sms.body);
	snprintf(g.content_type, sizeof(g.content_type), "%s", cfg->sms.content_type);
	g.timeout = cfg->sms.timeout;
	snprintf(g.ca_file, sizeof(g.ca_file), "%s", cfg->sms.ca_file);
	sms_configure(&g);
}

void auth_configure(const struct config *cfg)
{
	auth_configure_sms(cfg);
	auth_set_server_key_file(cfg->queue.key_file);
	pthread_mutex_lock(&server_key_lock);
	snprintf(hostname, sizeof(hostname), "%s", cfg->server.hostname);
	pthread_mutex_unlock(&server_key_lock);
}

const char *auth_hostname(void)
{
	return hostname;
}

void auth_set_server_key_file(const char *path)
{
	pthread_mutex_lock(&server_key_lock);
	if (path == NULL || strcmp(path, server_key_path) != 0) {
		user_key_free(server_key);
		server_key = NULL;
	}
	snprintf(server_key_path, sizeof(server_key_path), "%s", path != NULL ? path : "");
	pthread_mutex_unlock(&server_key_lock);
}

/* Another reference to the server key, loaded on first use; NULL when unavailable. */
static struct user_key *server_key_get(void)
{
	struct user_key *k = NULL;

	pthread_mutex_lock(&server_key_lock);
	if (server_key == NULL && server_key_path[0] != '\0' &&
	    crypto_server_key_load(server_key_path, &server_key) != 0) {
		log_error(_("cannot read the server key %s"), server_key_path);
		server_key = NULL;
	}
	if (server_key != NULL)
		k = user_key_dup(server_key);
	pthread_mutex_unlock(&server_key_lock);
	return k;
}

struct attempt {
	const struct auth_request *req;
	const char *actor;  /* normalized address or "-" */
	const char *method; /* "password", "password+totp", "password+recovery", "app-password" */
	char app_name[APP_PASSWORD_NAME_MAX + 1];
	const char *reason;
};

static const char *result_name(enum auth_result r)
{
	switch (r) {
	case AUTH_OK:
		return "ok";
	case AUTH_FAILED:
		return "failed";
	case AUTH_LOCKED:
		return "locked";
	case AUTH_TEMPFAIL:
		return "tempfail";
	case AUTH_THROTTLED:
		return "throttled";
	}
	return "failed";
}

/* One audit row per attempt; its detail is JSON without any secret. */
static void audit_attempt(struct store *st, const struct attempt *a, enum auth_result r)
{
	json_t *d = json_object();
	char *text;

	if (d == NULL)
		return;
	json_object_set_new(d, "ip", json_string(a->req->client_ip ? a->req->client_ip : ""));
	json_object_set_new(d, "protocol", json_string(a->req->protocol ? a->req->protocol : ""));
	json_object_set_new(d, "method", json_string(a->method));
	if (a->req->client_id != NULL && a->req->client_id[0] != '\0')
		json_object_set_new(d, "client", json_string(a->req->client_id));
	if (a->app_name[0] != '\0')
		json_object_set_new(d, "app_password", json_string(a->app_name));
	json_object_set_new(d, "result", json_string(result_name(r)));
	json_object_set_new(d, "reason", json_string(a->reason ? a->reason : ""));
	text = json_dumps(d, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(d);
	if (text == NULL)
		return;
	if (store_audit(st, a->actor, "auth.login", text) != STORE_OK)
		log_warn(_("cannot write the audit record of a login of %s: %s"), a->actor,
			 store_error(st));
	free(text);
}

static void key_of(char *out, size_t outlen, const char *prefix, const char *value)
{
	snprintf(out, outlen, "%s%s", prefix, value);
}

void auth_throttle_forget(const char *name)
{
	char key[STORE_ADDRESS_MAX + 32];

	key_of(key, sizeof(key), AUTH_KEY_PREFIX_ACCOUNT, name);
	throttle_table_forget(key);
	key_of(key, sizeof(key), AUTH_KEY_PREFIX_IP, name);
	throttle_table_forget(key);
}

/* Counts a failure against the client address and the account (store or memory). */
static void note_failure(struct store *st, const struct auth_request *req, const char *norm,
			 const struct store_user *u, int64_t now)
{
	char key[STORE_ADDRESS_MAX + 32];

	if (req->client_ip != NULL && req->client_ip[0] != '\0') {
		key_of(key, sizeof(key), AUTH_KEY_PREFIX_IP, req->client_ip);
		throttle_table_failure(&throttle_ip_policy, key, now);
	}
	if (u != NULL) {
		struct throttle_state s;

		/* Read-count-write under a lock, so concurrent failures all count. */
		pthread_mutex_lock(&account_lock);
		if (throttle_account_load(st, u->id, &s) == STORE_OK) {
			throttle_record_failure(&throttle_account_policy, &s, now);
			if (throttle_account_save(st, u->id, &s) != STORE_OK)
				log_warn(_("cannot record a failed login of %s: %s"), u->address,
					 store_error(st));
		}
		pthread_mutex_unlock(&account_lock);
	} else if (norm != NULL) {
		key_of(key, sizeof(key), AUTH_KEY_PREFIX_ACCOUNT, norm);
		throttle_table_failure(&throttle_account_policy, key, now);
	}
}

static void note_success(struct store *st, const struct store_user *u,
			 const struct throttle_state *s)
{
	struct throttle_state zero = {0};
	int rc;

	if (s->failures == 0 && s->blocked_until == 0)
		return;
	pthread_mutex_lock(&account_lock);
	rc = throttle_account_save(st, u->id, &zero);
	pthread_mutex_unlock(&account_lock);
	if (rc != STORE_OK)
		log_warn(_("cannot reset the failed logins of %s: %s"), u->address,
			 store_error(st));
}

/* Tries PASSWORD as one of U's app passwords. AUTH_OK with *KEY set, AUTH_FAILED when it
 * is none of them (or not for this protocol), AUTH_TEMPFAIL on a store error. */
static enum auth_result try_app_password(struct store *st, const struct store_user *u,
					 struct attempt *a, int64_t now, struct user_key **key)
{
	struct app_password_list list;
	unsigned want = app_scope_of_protocol(a->req->protocol);
	int idx;

	if (app_passwords_load(st, u->id, &list) != STORE_OK)
		return AUTH_TEMPFAIL;
	idx = app_password_match(&list, a->req->password, a->req->pwlen, key);
	if (idx < 0) {
		app_passwords_clear(&list);
		return AUTH_FAILED;
	}
	a->method = "app-password";
	snprintf(a->app_name, sizeof(a->app_name), "%s", list.items[idx].name);
	/* A caller that does not name its protocol gets only all-protocol passwords. */
	if ((want != 0 && !(list.items[idx].scopes & want)) ||
	    (want == 0 && list.items[idx].scopes != APP_SCOPE_ALL)) {
		a->reason = "app password not allowed for this protocol";
		goto refuse;
	}
	if (sodium_memcmp(user_key_public(*key), u->public_key, CRYPTO_PUBLIC_KEY_BYTES) != 0) {
		log_error(_("an app password of %s unlocks a key that is not the user's"),
			  u->address);
		a->reason = "app password key mismatch";
		goto refuse;
	}
	if (u->locked) {
		user_key_free(*key);
		*key = NULL;
		app_passwords_clear(&list);
		a->reason = "account locked";
		return AUTH_LOCKED;
	}
	list.items[idx].last_used = now;
	snprintf(list.items[idx].last_ip, sizeof(list.items[idx].last_ip), "%s",
		 a->req->client_ip ? a->req->client_ip : "");
	if (app_passwords_save(st, u->id, &list) != STORE_OK)
		log_warn(_("cannot record the use of an app password of %s: %s"), u->address,
			 store_error(st));
	app_passwords_clear(&list);
	return AUTH_OK;
refuse:
	user_key_free(*key);
	*key = NULL;
	app_passwords_clear(&list);
	return AUTH_FAILED;
}

/* Checks the one-time CODE (TOTP or recovery) of U and records its use. */
static enum auth_result check_code(struct store *st, const struct store_user *u, struct attempt *a,
				   const char *code, size_t code_len, int64_t now)
{
	struct otp_state s;
	enum auth_result res = AUTH_FAILED;
	struct user_key *sk = NULL;
	int rc;

	pthread_mutex_lock(&otp_lock);
	rc = otp_state_load(st, u->id, &s);
	if (rc != STORE_OK) {
		res = rc == STORE_NOTFOUND ? AUTH_FAILED : AUTH_TEMPFAIL;
		a->reason = rc == STORE_NOTFOUND ? "one-time code no longer enrolled"
						 : "cannot read the OTP state";
		goto out;
	}
	if (totp_code_shape(code, code_len)) {
		unsigned char secret[OTP_SECRET_BYTES];
		char c[OTP_DIGITS + 1];
		int64_t step = -1;

		memcpy(c, code, OTP_DIGITS);
		c[OTP_DIGITS] = '\0';
		if (s.sealed_secret != NULL) {
			sk = server_key_get();
			if (sk == NULL || otp_state_secret(&s, sk, secret) != 0) {
				log_error(
				    _("cannot open the TOTP secret of %s with the server key"),
				    u->address);
				a->reason = "cannot open the TOTP secret";
				res = AUTH_TEMPFAIL;
				sodium_memzero(c, sizeof(c));
				goto out;
			}
			step = totp_verify(secret, sizeof(secret), c, now, s.last_step);
			sodium_memzero(secret, sizeof(secret));
		}
		if (step >= 0) {
			s.last_step = step;
		} else if (sms_code_check(&s, c, now) == 0) {
			a->method = "password+sms";
		} else {
			sodium_memzero(c, sizeof(c));
			a->reason = "wrong or reused one-time code";
			goto out;
		}
		sodium_memzero(c, sizeof(c));
	} else if (recovery_code_consume(&s, code, code_len) == 0) {
		a->method = "password+recovery";
	} else {
		a->reason = "wrong one-time code";
		goto out;
	}
	if (otp_state_save(st, u->id, &s) != STORE_OK) {
		a->reason = "cannot record the one-time code";
		res = AUTH_TEMPFAIL;
		goto out;
	}
	res = AUTH_OK;
out:
	pthread_mutex_unlock(&otp_lock);
	user_key_free(sk);
	otp_state_clear(&s);
	return res;
}

/* For an SMS user who gave the right password without a code: issue and send one. */
static void send_sms_code(struct store *st, const struct store_user *u, struct attempt *a,
			  int64_t now)
{
	struct otp_state s;
	char code[OTP_DIGITS + 1];

	pthread_mutex_lock(&otp_lock);
	if (otp_state_load(st, u->id, &s) != STORE_OK || s.sms_phone[0] == '\0') {
		a->reason = "one-time code missing";
	} else if (!sms_enabled()) {
		a->reason = "one-time code missing; no SMS gateway configured";
	} else if (sms_code_issue(&s, now, code) != 0) {
		a->reason = "one-time code missing; SMS rate limit reached";
	} else if (otp_state_save(st, u->id, &s) != STORE_OK) {
		a->reason = "one-time code missing; cannot record the SMS code";
	} else {
		a->reason = sms_send_async(s.sms_phone, code) == 0
				? "one-time code missing; SMS code sent"
				: "one-time code missing; cannot start sending the SMS";
		a->method = "password+sms";
	}
	pthread_mutex_unlock(&otp_lock);
	sodium_memzero(code, sizeof(code));
	otp_state_clear(&s);
}

/* Password, then code for a TOTP user. */
static enum auth_result try_password(struct store *st, const struct store_user *u, const char *norm,
				     struct attempt *a, int64_t now, struct user_key **key)
{
	const char *pw = a->req->password;
	size_t len = a->req->pwlen, code_len = 0;
	struct otp_state s;
	enum auth_result res;
	int rc;

	rc = otp_state_load(st, u->id, &s);
	otp_state_clear(&s);
	if (rc == STORE_ERR) {
		a->reason = "cannot read the OTP state";
		return AUTH_TEMPFAIL;
	}
	if (rc == STORE_OK) {
		/* The code follows the password: a recovery code or the TOTP digits. */
		if (len > OTP_RECOVERY_CODE_LEN &&
		    recovery_code_shape(pw + len - OTP_RECOVERY_CODE_LEN, OTP_RECOVERY_CODE_LEN))
			code_len = OTP_RECOVERY_CODE_LEN;
		else if (len > OTP_DIGITS && totp_code_shape(pw + len - OTP_DIGITS, OTP_DIGITS))
			code_len = OTP_DIGITS;
		a->method = "password+totp";
	}
	if (rc != STORE_OK) {
		res = auth_check_password(u, norm, pw, len, true, key);
		if (res == AUTH_FAILED)
			a->reason = "wrong password";
		else if (res == AUTH_LOCKED)
			a->reason = "account locked";
		else if (res != AUTH_OK)
			a->reason = "cannot unlock the key";
		return res;
	}
	/*
	 * A user with one-time codes: the password costs one Argon2id, the code is checked
	 * next, and only then is the key unwrapped, so "right password, wrong code" takes
	 * the time of a wrong password. No login cache here for the same reason (their
	 * codes are single use, so clients that reconnect often use app passwords).
	 */
	if (crypto_password_verify(u->password_hash, pw, len - code_len) != 0) {
		a->reason = "wrong password";
		return AUTH_FAILED;
	}
	if (code_len == 0) {
		/* Fails exactly like a wrong password; an SMS user gets a code. */
		send_sms_code(st, u, a, now);
		return AUTH_FAILED;
	}
	res = check_code(st, u, a, pw + len - code_len, code_len, now);
	if (res != AUTH_OK)
		return res;
	res = auth_unlock_key(u, pw, len - code_len, key);
	if (res == AUTH_LOCKED)
		a->reason = "account locked";
	else if (res != AUTH_OK)
		a->reason = "cannot unlock the key";
	return res;
}

/* A login from an address the user has not used lately gets a notice in the INBOX. */
static void notice_new_ip(struct store *st, const struct store_user *u,
			  const struct auth_request *req, int64_t now)
{
	struct auth_notice n = {
	    .kind = AUTH_NOTICE_NEW_IP,
	    .address = u->address,
	    .hostname = hostname,
	    .time = now,
	    .ip = req->client_ip,
	    .protocol = req->protocol,
	    .client_id = req->client_id,
	};

	if (auth_login_ip_is_new(st, u->id, req->client_ip) == 1 &&
	    auth_notice_send(st, u, &n) != 0)
		log_warn(_("cannot deliver a security notice to %s"), u->address);
}

enum auth_result auth_login_request(struct store *st, const struct auth_request *req,
				    struct auth_identity *out)
{
	char norm[STORE_ADDRESS_MAX + 1], key[STORE_ADDRESS_MAX + 32];
	struct attempt a = {.req = req, .actor = "-", .method = "password"};
	struct throttle_state acct = {0};
	struct store_user u;
	struct user_key *ukey = NULL;
	enum auth_result res;
	int64_t now = throttle_now();
	int rc;

	if (out == NULL || req == NULL)
		return AUTH_FAILED;
	memset(out, 0, sizeof(*out));
	if (st == NULL || req->password == NULL || req->pwlen > AUTH_REQUEST_SECRET_MAX ||
	    auth_normalize_address(req->address, norm) < 0)
		return AUTH_FAILED;
	a.actor = norm;

	if (req->client_ip != NULL && req->client_ip[0] != '\0') {
		key_of(key, sizeof(key), AUTH_KEY_PREFIX_IP, req->client_ip);
		if (throttle_table_retry_at(&throttle_ip_policy, key, now) != 0) {
			a.reason = "too many failures from this address";
			audit_attempt(st, &a, AUTH_THROTTLED);
			return AUTH_THROTTLED;
		}
	}

	memset(&u, 0, sizeof(u));
	rc = store_user_get(st, norm, &u);
	if (rc == STORE_NOTFOUND) {
		store_user_clear(&u);
		key_of(key, sizeof(key), AUTH_KEY_PREFIX_ACCOUNT, norm);
		if (throttle_table_retry_at(&throttle_account_policy, key, now) != 0) {
			a.reason = "too many failures for this account";
			audit_attempt(st, &a, AUTH_THROTTLED);
			return AUTH_THROTTLED;
		}
		auth_verify_dummy(req->password, req->pwlen);
		auth_cache_drop(norm);
		note_failure(st, req, norm, NULL, now);
		a.reason = "unknown user";
		audit_attempt(st, &a, AUTH_FAILED);
		return AUTH_FAILED;
	}
	if (rc != STORE_OK) {
		log_error(_("cannot read user %s: %s"), norm, store_error(st));
		store_user_clear(&u);
		return AUTH_TEMPFAIL;
	}
	if (throttle_account_load(st, u.id, &acct) != STORE_OK) {
		log_error(_("cannot read the failed logins of %s: %s"), norm, store_error(st));
		store_user_clear(&u);
		return AUTH_TEMPFAIL;
	}
	if (throttle_retry_at(&throttle_account_policy, &acct, now) != 0) {
		a.reason = "too many failures for this account";
		res = AUTH_THROTTLED;
		goto done;
	}

	res = AUTH_FAILED;
	if (app_password_shape(req->password, req->pwlen))
		res = try_app_password(st, &u, &a, now, &ukey);
	if (res == AUTH_FAILED && a.reason == NULL)
		res = try_password(st, &u, norm, &a, now, &ukey);

	if (res == AUTH_OK) {
		auth_identity_fill(out, &u, ukey);
		note_success(st, &u, &acct);
		notice_new_ip(st, &u, req, now);
	} else if (res == AUTH_FAILED || res == AUTH_LOCKED) {
		note_failure(st, req, norm, &u, now);
	}
done:
	audit_attempt(st, &a, res);
	store_user_clear(&u);
	return res;
}

struct blocks_arg {
	json_t *arr;
	int64_t now;
};

static void address_block_one(void *arg, const char *key, const struct throttle_state *s)
{
	struct blocks_arg *b = arg;
	size_t plen = strlen(AUTH_KEY_PREFIX_IP);

	if (strncmp(key, AUTH_KEY_PREFIX_IP, plen) != 0 ||
	    throttle_state_idle(&throttle_ip_policy, s, b->now))
		return;
	json_array_append_new(
	    b->arr, json_pack("{s:s,s:i,s:I,s:I,s:I}", "address", key + plen, "failures",
			      (int)s->failures, "last_failure", (json_int_t)s->last_failure,
			      "blocked_until", (json_int_t)s->blocked_until, "retry_at",
			      (json_int_t)throttle_retry_at(&throttle_ip_policy, s, b->now)));
}

json_t *auth_address_blocks(void)
{
	struct blocks_arg b = {json_array(), throttle_now()};

	if (b.arr != NULL)
		throttle_table_each(address_block_one, &b);
	return b.arr;
}
