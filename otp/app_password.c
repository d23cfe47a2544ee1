/*
 * app_password.c - per-device passwords for mail clients of OTP users
 * (store_user_data kind "app_passwords").
 *
 * Each app password is generated here (80 random bits), shown once, and kept
 * as an Argon2id hash plus a copy of the user's private key wrapped by it, so
 * a login with it can open the mailbox. Scopes limit it to some protocols.
 * A short tag (4 bytes of BLAKE2b of the password) tells which entry to try,
 * so a login pays Argon2id for one entry, not for all of them; 32 bits of an
 * 80-bit secret leave 48 bits behind Argon2id, far out of reach.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "otp/otp.h"
#include "otp/otp_int.h"

#define APP_PASSWORD_GROUPS 4

static const struct {
	const char *name;
	unsigned scope;
} scope_names[] = {
    {"imap", APP_SCOPE_IMAP},
    {"pop3", APP_SCOPE_POP3},
    {"smtp", APP_SCOPE_SMTP},
};

int app_scopes_parse(const char *text, unsigned *scopes)
{
	const char *p = text;

	*scopes = 0;
	if (text == NULL || *text == '\0')
		return -1;
	while (*p != '\0') {
		size_t n = strcspn(p, ",");
		bool known = false;

		for (size_t i = 0; i < sizeof(scope_names) / sizeof(scope_names[0]); i++) {
			if (strlen(scope_names[i].name) == n &&
			    strncmp(scope_names[i].name, p, n) == 0) {
				*scopes |= scope_names[i].scope;
				known = true;
			}
		}
		if (!known)
			return -1;
		p += n;
		if (*p == ',' && *++p == '\0')
			return -1;
	}
	return 0;
}

void app_scopes_format(unsigned scopes, char *out, size_t outlen)
{
	size_t pos = 0;

	if (outlen == 0)
		return;
	out[0] = '\0';
	for (size_t i = 0; i < sizeof(scope_names) / sizeof(scope_names[0]); i++) {
		if (!(scopes & scope_names[i].scope))
			continue;
		int n = snprintf(out + pos, outlen - pos, "%s%s", pos > 0 ? "," : "",
				 scope_names[i].name);
		if (n < 0 || (size_t)n >= outlen - pos)
			return;
		pos += (size_t)n;
	}
}

unsigned app_scope_of_protocol(const char *protocol)
{
	if (protocol == NULL)
		return 0;
	for (size_t i = 0; i < sizeof(scope_names) / sizeof(scope_names[0]); i++)
		if (strcmp(scope_names[i].name, protocol) == 0)
			return scope_names[i].scope;
	return 0;
}

bool app_password_shape(const char *password, size_t len)
{
	return otp_code_shape(password, len, APP_PASSWORD_GROUPS) != 0;
}

static void password_tag(const char *password, size_t len, char tag[9])
{
	unsigned char h[4];

	crypto_generichash(h, sizeof(h), (const unsigned char *)password, len, NULL, 0);
	sodium_bin2hex(tag, 9, h, sizeof(h));
}

void app_passwords_clear(struct app_password_list *l)
{
	if (l == NULL)
		return;
	for (size_t i = 0; i < l->n; i++)
		free(l->items[i].wrapped);
	sodium_memzero(l, sizeof(*l));
}

static int item_from_json(json_t *o, struct app_password *a)
{
	if (!json_is_object(o) || otp_json_get_str(o, "name", a->name, sizeof(a->name)) != 0 ||
	    otp_json_get_str(o, "tag", a->tag, sizeof(a->tag)) != 0 ||
	    otp_json_get_str(o, "hash", a->hash, sizeof(a->hash)) != 0 ||
	    otp_json_get_b64(o, "key", &a->wrapped, &a->wrapped_len) != 0)
		return -1;
	a->scopes = (unsigned)otp_json_get_int(o, "scopes") & APP_SCOPE_ALL;
	a->created = otp_json_get_int(o, "created");
	a->last_used = otp_json_get_int(o, "last_used");
	if (otp_json_get_str(o, "last_ip", a->last_ip, sizeof(a->last_ip)) != 0)
		a->last_ip[0] = '\0';
	return 0;
}

int app_passwords_load(struct store *st, int64_t user_id, struct app_password_list *out)
{
	json_t *obj, *arr, *item;
	size_t i;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = otp_blob_load(st, user_id, APP_PASSWORD_KIND, &obj);
	if (rc == STORE_NOTFOUND)
		return STORE_OK;
	if (rc != STORE_OK)
		return rc;
	arr = json_object_get(obj, "items");
	if (!json_is_array(arr) || json_array_size(arr) > APP_PASSWORDS_MAX) {
		json_decref(obj);
		return STORE_ERR;
	}
	json_array_foreach(arr, i, item)
	{
		if (item_from_json(item, &out->items[i]) != 0) {
			free(out->items[i].wrapped);
			json_decref(obj);
			app_passwords_clear(out);
			return STORE_ERR;
		}
		out->n = i + 1;
	}
	json_decref(obj);
	return STORE_OK;
}

int app_passwords_save(struct store *st, int64_t user_id, const struct app_password_list *l)
{
	json_t *obj = json_object(), *arr = json_array();
	int rc = STORE_ERR;

	if (obj == NULL || arr == NULL)
		goto out;
	for (size_t i = 0; i < l->n; i++) {
		const struct app_password *a = &l->items[i];
		json_t *o = json_object();

		json_object_set_new(o, "name", json_string(a->name));
		json_object_set_new(o, "scopes", json_integer(a->scopes));
		json_object_set_new(o, "tag", json_string(a->tag));
		json_object_set_new(o, "hash", json_string(a->hash));
		json_object_set_new(o, "key", otp_json_b64(a->wrapped, a->wrapped_len));
		json_object_set_new(o, "created", json_integer(a->created));
		json_object_set_new(o, "last_used", json_integer(a->last_used));
		json_object_set_new(o, "last_ip", json_string(a->last_ip));
		json_array_append_new(arr, o);
	}
	json_object_set_new(obj, "v", json_integer(1));
	json_object_set(obj, "items", arr);
	rc = otp_blob_save(st, user_id, APP_PASSWORD_KIND, obj);
out:
	json_decref(arr);
	json_decref(obj);
	return rc;
}

static bool name_ok(const char *name)
{
	size_t n = name != NULL ? strnlen(name, APP_PASSWORD_NAME_MAX + 1) : 0;

	if (n == 0 || n > APP_PASSWORD_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c < 0x20 || c == 0x7f)
			return false;
	}
	return true;
}

int app_password_create(struct app_password_list *l, const char *name, unsigned scopes,
			const struct user_key *k, char password_out[APP_PASSWORD_LEN + 1])
{
	struct app_password *a;

	if (!name_ok(name) || (scopes & APP_SCOPE_ALL) == 0)
		return -2;
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->items[i].name, name) == 0)
			return -2;
	if (l->n >= APP_PASSWORDS_MAX)
		return -3;
	if (crypto_setup() != 0)
		return -1;
	a = &l->items[l->n];
	memset(a, 0, sizeof(*a));
	otp_random_code(password_out, APP_PASSWORD_GROUPS);
	if (crypto_password_hash(password_out, APP_PASSWORD_LEN, a->hash) != 0 ||
	    crypto_user_rewrap(k, password_out, APP_PASSWORD_LEN, &a->wrapped, &a->wrapped_len) !=
		0) {
		sodium_memzero(password_out, APP_PASSWORD_LEN + 1);
		memset(a, 0, sizeof(*a));
		return -1;
	}
	memcpy(a->name, name, strlen(name) + 1);
	a->scopes = scopes & APP_SCOPE_ALL;
	password_tag(password_out, APP_PASSWORD_LEN, a->tag);
	a->created = (int64_t)time(NULL);
	l->n++;
	return 0;
}

int app_password_revoke(struct app_password_list *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++) {
		if (strcmp(l->items[i].name, name) != 0)
			continue;
		free(l->items[i].wrapped);
		memmove(&l->items[i], &l->items[i + 1], (l->n - i - 1) * sizeof(l->items[0]));
		l->n--;
		memset(&l->items[l->n], 0, sizeof(l->items[0]));
		return 0;
	}
	return -1;
}

int app_password_match(const struct app_password_list *l, const char *password, size_t len,
		       struct user_key **key_out)
{
	char norm[APP_PASSWORD_LEN + 1], tag[9];
	int found = -1;

	*key_out = NULL;
	if (!app_password_shape(password, len))
		return -1;
	otp_code_normalize(password, len, norm);
	password_tag(norm, len, tag);
	for (size_t i = 0; i < l->n && found < 0; i++) {
		const struct app_password *a = &l->items[i];

		if (sodium_memcmp(a->tag, tag, 8) != 0)
			continue;
		if (crypto_password_verify(a->hash, norm, len) != 0)
			continue;
		if (crypto_user_unlock(a->wrapped, a->wrapped_len, norm, len, key_out) == 0)
			found = (int)i;
	}
	sodium_memzero(norm, sizeof(norm));
	return found;
}
