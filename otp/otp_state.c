/*
 * otp_state.c - the per-user TOTP state (store_user_data kind "otp") and the
 * JSON/base64 helpers every otp/ blob shares.
 *
 * The blob is JSON so that a field added later does not need a migration:
 * {"v":1,"enabled":true,"secret":"<sealed, base64>","last_step":N,
 *  "enrolled":T,"recovery":[{"salt":"..","hash":"..","used":false},..]}.
 * The secret is sealed to the server key (crypto_seal), never kept in clear.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "otp/otp.h"
#include "otp/otp_int.h"

#define OTP_BLOB_MAX (256 * 1024) /* no per-user blob of ours is anywhere near this */

static const char code_alphabet[] =
    "abcdefghijkmnpqrstuvwxyz23456789"; /* 32 symbols, no l, o, 0, 1 */

int otp_blob_load(struct store *st, int64_t user_id, const char *kind, json_t **out)
{
	unsigned char *blob = NULL;
	size_t len = 0;
	json_error_t jerr;
	int rc;

	*out = NULL;
	rc = store_user_data_get(st, user_id, kind, &blob, &len);
	if (rc != STORE_OK)
		return rc;
	if (len == 0 || len > OTP_BLOB_MAX) {
		free(blob);
		return STORE_NOTFOUND;
	}
	*out = json_loadb((const char *)blob, len, 0, &jerr);
	sodium_memzero(blob, len);
	free(blob);
	if (*out == NULL || !json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		return STORE_ERR;
	}
	return STORE_OK;
}

int otp_blob_save(struct store *st, int64_t user_id, const char *kind, json_t *obj)
{
	char *text = json_dumps(obj, JSON_COMPACT);
	int rc;

	if (text == NULL)
		return STORE_ERR;
	rc = store_user_data_put(st, user_id, kind, (const unsigned char *)text, strlen(text));
	sodium_memzero(text, strlen(text));
	free(text);
	return rc;
}

json_t *otp_json_b64(const unsigned char *bin, size_t len)
{
	size_t n = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
	char *b64 = malloc(n);
	json_t *s;

	if (b64 == NULL)
		return NULL;
	sodium_bin2base64(b64, n, bin, len, sodium_base64_VARIANT_ORIGINAL);
	s = json_string(b64);
	free(b64);
	return s;
}

int otp_json_get_b64(json_t *obj, const char *key, unsigned char **out, size_t *len)
{
	const char *s = json_string_value(json_object_get(obj, key));
	size_t slen, cap;

	*out = NULL;
	*len = 0;
	if (s == NULL)
		return -1;
	slen = strlen(s);
	cap = slen / 4 * 3 + 3;
	*out = malloc(cap);
	if (*out == NULL)
		return -1;
	if (sodium_base642bin(*out, cap, s, slen, NULL, len, NULL,
			      sodium_base64_VARIANT_ORIGINAL) != 0) {
		free(*out);
		*out = NULL;
		*len = 0;
		return -1;
	}
	return 0;
}

int otp_json_get_b64_fixed(json_t *obj, const char *key, unsigned char *out, size_t len)
{
	unsigned char *bin;
	size_t n;

	if (otp_json_get_b64(obj, key, &bin, &n) != 0)
		return -1;
	if (n != len) {
		free(bin);
		return -1;
	}
	memcpy(out, bin, len);
	sodium_memzero(bin, n);
	free(bin);
	return 0;
}

int otp_json_get_str(json_t *obj, const char *key, char *out, size_t outlen)
{
	const char *s = json_string_value(json_object_get(obj, key));
	size_t n;

	if (s == NULL || outlen == 0)
		return -1;
	n = strlen(s);
	if (n >= outlen)
		return -1;
	memcpy(out, s, n + 1);
	return 0;
}

int64_t otp_json_get_int(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

void otp_random_code(char *out, size_t groups)
{
	size_t pos = 0;

	for (size_t g = 0; g < groups; g++) {
		if (g > 0)
			out[pos++] = '-';
		for (int i = 0; i < 4; i++)
			out[pos++] = code_alphabet[randombytes_uniform(32)];
	}
	out[pos] = '\0';
}

int otp_code_shape(const char *s, size_t len, size_t groups)
{
	if (s == NULL || groups == 0 || len != groups * 5 - 1)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (i % 5 == 4) {
			if (c != '-')
				return 0;
			continue;
		}
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c == '\0' || strchr(code_alphabet, c) == NULL)
			return 0;
	}
	return 1;
}

void otp_code_normalize(const char *s, size_t len, char *out)
{
	for (size_t i = 0; i < len; i++)
		out[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] - 'A' + 'a') : s[i];
	out[len] = '\0';
}

void otp_code_hash(const unsigned char salt[16], const char *code, size_t len,
		   unsigned char out[32])
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, NULL, 0, 32);
	crypto_generichash_update(&st, salt, 16);
	crypto_generichash_update(&st, (const unsigned char *)code, len);
	crypto_generichash_final(&st, out, 32);
	sodium_memzero(&st, sizeof(st));
}

int otp_uri_put(const char *s, bool escape, char *out, size_t outlen, size_t *pos)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		bool plain = !escape || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			     (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';

		if (*pos + (plain ? 1 : 3) >= outlen)
			return -1;
		if (plain) {
			out[(*pos)++] = (char)c;
		} else {
			out[(*pos)++] = '%';
			out[(*pos)++] = hex[c >> 4];
			out[(*pos)++] = hex[c & 15];
		}
	}
	out[*pos] = '\0';
	return 0;
}

void otp_state_clear(struct otp_state *s)
{
	if (s == NULL)
		return;
	free(s->sealed_secret);
	sodium_memzero(s, sizeof(*s));
}

static int recovery_from_json(json_t *arr, struct otp_state *s)
{
	size_t i;
	json_t *item;

	if (arr == NULL)
		return 0;
	if (!json_is_array(arr) || json_array_size(arr) > OTP_RECOVERY_CODES)
		return -1;
	json_array_foreach(arr, i, item)
	{
		struct otp_recovery_hash *r = &s->recovery[i];

		if (otp_json_get_b64_fixed(item, "salt", r->salt, sizeof(r->salt)) != 0 ||
		    otp_json_get_b64_fixed(item, "hash", r->hash, sizeof(r->hash)) != 0)
			return -1;
		r->used = json_is_true(json_object_get(item, "used"));
	}
	s->n_recovery = json_array_size(arr);
	return 0;
}

static int sms_from_json(json_t *obj, struct otp_state *s)
{
	json_t *sent = json_object_get(obj, "sms_sent"), *v;
	size_t i;

	if (json_object_get(obj, "sms_phone") == NULL)
		return 0;
	if (otp_json_get_str(obj, "sms_phone", s->sms_phone, sizeof(s->sms_phone)) != 0)
		return -1;
	s->sms_expires = otp_json_get_int(obj, "sms_expires");
	if (s->sms_expires != 0 &&
	    (otp_json_get_b64_fixed(obj, "sms_salt", s->sms_salt, sizeof(s->sms_salt)) != 0 ||
	     otp_json_get_b64_fixed(obj, "sms_hash", s->sms_hash, sizeof(s->sms_hash)) != 0))
		return -1;
	if (json_is_array(sent))
		json_array_foreach(sent, i, v)
		{
			if (i >= SMS_MAX_PER_HOUR)
				break;
			s->sms_sent[i] = json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
		}
	return 0;
}

int otp_state_load(struct store *st, int64_t user_id, struct otp_state *out)
{
	json_t *obj;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = otp_blob_load(st, user_id, OTP_STATE_KIND, &obj);
	if (rc != STORE_OK)
		return rc;
	out->enabled = json_is_true(json_object_get(obj, "enabled"));
	out->last_step = otp_json_get_int(obj, "last_step");
	out->enrolled = otp_json_get_int(obj, "enrolled");
	if (out->enabled &&
	    ((json_object_get(obj, "secret") != NULL &&
	      otp_json_get_b64(obj, "secret", &out->sealed_secret, &out->sealed_len) != 0) ||
	     recovery_from_json(json_object_get(obj, "recovery"), out) != 0 ||
	     sms_from_json(obj, out) != 0)) {
		json_decref(obj);
		otp_state_clear(out);
		return STORE_ERR;
	}
	json_decref(obj);
	return out->enabled ? STORE_OK : STORE_NOTFOUND;
}

int otp_state_save(struct store *st, int64_t user_id, const struct otp_state *s)
{
	json_t *obj = json_object(), *arr = json_array();
	int rc = STORE_ERR;

	if (obj == NULL || arr == NULL)
		goto out;
	json_object_set_new(obj, "v", json_integer(1));
	json_object_set_new(obj, "enabled", json_boolean(s->enabled));
	if (s->enabled) {
		if (s->sealed_secret != NULL)
			json_object_set_new(obj, "secret",
					    otp_json_b64(s->sealed_secret, s->sealed_len));
		if (s->sms_phone[0] != '\0') {
			json_t *sent = json_array();

			json_object_set_new(obj, "sms_phone", json_string(s->sms_phone));
			json_object_set_new(obj, "sms_expires", json_integer(s->sms_expires));
			if (s->sms_expires != 0) {
				json_object_set_new(obj, "sms_salt", otp_json_b64(s->sms_salt, 16));
				json_object_set_new(obj, "sms_hash", otp_json_b64(s->sms_hash, 32));
			}
			for (size_t i = 0; i < SMS_MAX_PER_HOUR; i++)
				json_array_append_new(sent, json_integer(s->sms_sent[i]));
			json_object_set_new(obj, "sms_sent", sent);
		}
		json_object_set_new(obj, "last_step", json_integer(s->last_step));
		json_object_set_new(obj, "enrolled", json_integer(s->enrolled));
		for (size_t i = 0; i < s->n_recovery; i++) {
			json_t *item = json_object();

			json_object_set_new(item, "salt", otp_json_b64(s->recovery[i].salt, 16));
			json_object_set_new(item, "hash", otp_json_b64(s->recovery[i].hash, 32));
			json_object_set_new(item, "used", json_boolean(s->recovery[i].used));
			json_array_append_new(arr, item);
		}
		json_object_set(obj, "recovery", arr);
	}
	rc = otp_blob_save(st, user_id, OTP_STATE_KIND, obj);
out:
	json_decref(arr);
	json_decref(obj);
	return rc;
}

int otp_state_set_secret(struct otp_state *s, const struct user_key *server_key,
			 const unsigned char *secret, size_t len)
{
	unsigned char *sealed;
	size_t sealed_len;

	if (crypto_seal(user_key_public(server_key), secret, len, &sealed, &sealed_len) != 0)
		return -1;
	free(s->sealed_secret);
	s->sealed_secret = sealed;
	s->sealed_len = sealed_len;
	return 0;
}

int otp_state_secret(const struct otp_state *s, const struct user_key *server_key,
		     unsigned char out[OTP_SECRET_BYTES])
{
	unsigned char *msg;
	size_t len;
	int rc = -1;

	if (s->sealed_secret == NULL ||
	    crypto_open(server_key, s->sealed_secret, s->sealed_len, &msg, &len) != 0)
		return -1;
	if (len == OTP_SECRET_BYTES) {
		memcpy(out, msg, OTP_SECRET_BYTES);
		rc = 0;
	}
	sodium_memzero(msg, len);
	free(msg);
	return rc;
}
