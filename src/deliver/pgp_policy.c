/*
 * pgp_policy.c - OpenPGP and S/MIME on the mail path (see pgp_policy.h and
 * docs/pgp.md): password protection, sign/encrypt policy and Autocrypt at
 * submission; verification, result header and opt-in decryption on local
 * delivery. The MIME work is crypto/pgp_mime.c; the keys live in the users'
 * GnuPG homes (crypto/gpg_home.h).
 */
#include <config.h>

#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <sodium.h>

#include "auth/auth.h"
#include "crypto/crypto.h"
#include "crypto/gpg_home.h"
#include "crypto/pgp_mime.h"
#include "deliver/pgp_policy.h"
#include "store/store_pgp.h"
#include "trace/trace.h"
#include "util/config.h"
#include "util/i18n.h"
#include "util/log.h"

/* Recipients we look keys up for; more than this and encryption is not tried. */
#define PGP_MAX_RECIPIENTS 100
/* An Autocrypt header (keydata of a minimal key, folded) is a few KB. */
#define AUTOCRYPT_HEADER_MAX 16384
#define RESULT_HEADER_MAX 1024

/* Unlocked at-rest keys of logged-in users come from the login cache. */
static pgp_key_lookup_fn key_lookup = auth_cache_user_key;

void pgp_policy_set_key_lookup(pgp_key_lookup_fn fn)
{
	key_lookup = fn;
}

static void report_set(struct deliver_report *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void report_set(struct deliver_report *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->message, sizeof(r->message), fmt, ap);
	va_end(ap);
}

static void replace_message(unsigned char **msg, size_t *len, unsigned char *nmsg, size_t nlen)
{
	sodium_memzero(*msg, *len);
	free(*msg);
	*msg = nmsg;
	*len = nlen;
}

/* HDR (NUL-terminated) in front of MSG, into a new buffer. */
static unsigned char *with_header(const char *hdr, const unsigned char *msg, size_t len,
				  size_t *out_len)
{
	size_t hlen = strlen(hdr);
	unsigned char *p;

	if (len > SIZE_MAX - hlen - 1 || !(p = malloc(hlen + len + 1)))
		return NULL;
	memcpy(p, hdr, hlen);
	if (len)
		memcpy(p + hlen, msg, len);
	*out_len = hlen + len;
	return p;
}

int pgp_policy_effective(struct store *st, const char *address, struct pgp_effective_policy *out)
{
	const char *at = strrchr(address, '@');
	const char *names[2] = {at ? at + 1 : address, address};
	struct store_pgp_policy p;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < 2; i++) {
		int rc = store_pgp_policy_get(st, names[i], &p);

		if (rc == STORE_NOTFOUND)
			continue;
		if (rc != STORE_OK)
			return -1;
		if (strcmp(p.sign, "always") == 0)
			out->sign = PGP_SIGN_ALWAYS;
		else if (strcmp(p.sign, "never") == 0)
			out->sign = PGP_SIGN_NEVER;
		if (strcmp(p.encrypt, "required") == 0)
			out->encrypt = PGP_ENCRYPT_REQUIRED;
		else if (strcmp(p.encrypt, "if-possible") == 0)
			out->encrypt = PGP_ENCRYPT_IF_POSSIBLE;
		else if (strcmp(p.encrypt, "never") == 0)
			out->encrypt = PGP_ENCRYPT_NEVER;
		if (p.decrypt_inbound >= 0)
			out->decrypt_inbound = p.decrypt_inbound == 1;
	}
	return 0;
}

/* ADDRESS's GnuPG home directory (crypto/gpg_home.h names it), without creating it. */
static int home_path(const struct config *cfg, const char *address, char *out, size_t outlen)
{
	char name[GPG_HOME_NAME_LEN + 1];

	if (gpg_home_name(address, name) != 0)
		return -1;
	snprintf(out, outlen, "%s/gnupg/%s", cfg->server.data_dir, name);
	return 0;
}

/* Whether ADDRESS has a GnuPG home yet (without creating one). */
static bool home_exists(const struct config *cfg, const char *address)
{
	char path[CONFIG_PATH_MAX + 64];
	struct stat sb;

	return home_path(cfg, address, path, sizeof(path)) == 0 && stat(path, &sb) == 0 &&
	       S_ISDIR(sb.st_mode);
}

static void trace_info(const struct deliver_envelope *env, const char *user, const char *text)
{
	trace_publish(env->session_id, env->auth_user ? "submission" : "smtp", user ? user : "",
		      TRACE_INFO, 0, text);
}

/* ---- submission ---- */

/* The address in a From field value ("Name <a@b>" or "a@b"), lower-cased. */
static void from_address(const char *from, char *out, size_t outlen)
{
	const char *lt = strrchr(from, '<'), *gt = lt ? strchr(lt, '>') : NULL;
	size_t o = 0;
	const char *p = lt && gt ? lt + 1 : from, *end = lt && gt ? gt : from + strlen(from);

	for (; p < end && o + 1 < outlen; p++)
		if (!isspace((unsigned char)*p))
			out[o++] = (char)tolower((unsigned char)*p);
	out[o] = '\0';
}

/* RCPT's own S/MIME certificates (PEM) from home R into *OUT; 1 with data. */
static int export_certs(struct gpg_user *r, const char *rcpt, char **out, size_t *out_len)
{
	gpgme_ctx_t ctx = gpg_user_ctx(r, GPGME_PROTOCOL_CMS);
	gpgme_data_t d = NULL;
	char *p;
	size_t n = 0;

	*out = NULL;
	if (!ctx || gpgme_data_new(&d) != 0)
		return -1;
	gpgme_set_armor(ctx, 1);
	if (gpgme_op_export(ctx, rcpt, 0, d) != 0) {
		gpgme_data_release(d);
		return -1;
	}
	p = gpgme_data_release_and_get_mem(d, &n);
	if (!p || n == 0) {
		gpgme_free(p);
		return 0;
	}
	*out = malloc(n);
	if (*out)
		memcpy(*out, p, n);
	gpgme_free(p);
	*out_len = n;
	return *out ? 1 : -1;
}

/*
 * A local recipient's own key (OpenPGP) or certificate (S/MIME), copied
 * from their home into the sender's so the sender can encrypt to it.
 * Returns 1 when something was imported.
 */
static int import_local_key(struct store *st, const struct config *cfg, struct gpg_user *sender,
			    gpgme_protocol_t proto, const char *rcpt)
{
	char resolved[STORE_ADDRESS_MAX + 1], err[256];
	struct gpg_user *r = NULL;
	char *key = NULL;
	size_t key_len = 0;
	unsigned n = 0;
	int rc = 0, found;

	if (store_resolve_address(st, rcpt, resolved) != STORE_OK || !home_exists(cfg, resolved))
		return 0;
	if (gpg_user_open(cfg, resolved, NULL, &r, err, sizeof(err)) != 0)
		return 0;
	if (proto == GPGME_PROTOCOL_CMS)
		found = export_certs(r, resolved, &key, &key_len);
	else
		found = gpg_user_export_own(r, false, &key, &key_len, err, sizeof(err));
	if (found == 1 &&
	    gpg_user_import_public(sender, proto, key, key_len, &n, err, sizeof(err)) == 0)
		rc = 1;
	free(key);
	gpg_user_close(r);
	return rc;
}

/* The usable key of PROTO for RCPT in the sender's home, fetched when missing. */
static gpgme_key_t recipient_key(struct store *st, const struct config *cfg, struct gpg_user *u,
				 gpgme_protocol_t proto, const char *rcpt, bool local)
{
	gpgme_key_t key = NULL;
	char err[256];

	if (gpg_user_find_key(u, proto, rcpt, false, &key, err, sizeof(err)) == 1)
		return key;
	if (local ? import_local_key(st, cfg, u, proto, rcpt) == 1
		  : (proto == GPGME_PROTOCOL_OpenPGP && cfg->pgp.wkd_lookup &&
		     gpg_user_wkd_fetch(u, rcpt, err, sizeof(err)) == 1))
		if (gpg_user_find_key(u, proto, rcpt, false, &key, err, sizeof(err)) == 1)
			return key;
	return NULL;
}

static void keys_free(gpgme_key_t *keys)
{
	for (size_t i = 0; keys[i]; i++) {
		gpgme_key_unref(keys[i]);
		keys[i] = NULL;
	}
}

/*
 * Keys of PROTO for every recipient and the sender (so the sender can read
 * the copy): KEYS (N_RCPTS + 2 slots) NULL-terminated. Returns the index of
 * the first recipient without a key, or N_RCPTS when all have one.
 */
static size_t collect_keys(struct store *st, const struct config *cfg, struct gpg_user *u,
			   gpgme_protocol_t proto, const char *sender,
			   const struct deliver_recipient *rcpts, const bool *local, size_t n_rcpts,
			   gpgme_key_t *keys)
{
	size_t i, n = 0;
	char err[256];

	for (i = 0; i < n_rcpts; i++) {
		gpgme_key_t k = recipient_key(st, cfg, u, proto, rcpts[i].address, local[i]);

		if (!k) {
			keys_free(keys);
			return i;
		}
		keys[n++] = k;
	}
	if (gpg_user_find_key(u, proto, sender, false, &keys[n], err, sizeof(err)) != 1)
		keys[n] = NULL;
	return n_rcpts;
}

/* The sender's own signing key (OpenPGP first, then S/MIME). */
static gpgme_key_t signing_key(struct gpg_user *u, const char *sender, gpgme_protocol_t *proto)
{
	static const gpgme_protocol_t order[] = {GPGME_PROTOCOL_OpenPGP, GPGME_PROTOCOL_CMS};
	gpgme_key_t key = NULL;
	char err[256];

	for (size_t i = 0; i < 2; i++) {
		if (gpg_user_find_key(u, order[i], sender, true, &key, err, sizeof(err)) == 1) {
			*proto = order[i];
			return key;
		}
	}
	return NULL;
}

/*
 * Autocrypt headers by sender: exporting the key spawns gpg twice (some
 * 20 ms), so the header is kept until the sender's keyring changes (its
 * pubring.kbx has another size or modification time).
 */
#define AUTOCRYPT_CACHE_MAX 64
struct autocrypt_entry {
	char address[STORE_ADDRESS_MAX + 1];
	struct timespec mtime;
	off_t size;
	char *header; /* NULL: the sender has no key */
	uint64_t used;
};
static struct {
	pthread_mutex_t lock;
	struct autocrypt_entry e[AUTOCRYPT_CACHE_MAX];
	uint64_t clock;
} autocrypt_cache = {.lock = PTHREAD_MUTEX_INITIALIZER};

static int keyring_stat(const struct config *cfg, const char *address, struct stat *sb)
{
	char path[CONFIG_PATH_MAX + 64];

	if (home_path(cfg, address, path, sizeof(path)) != 0 ||
	    strlen(path) + sizeof("/pubring.kbx") > sizeof(path))
		return -1;
	strcat(path, "/pubring.kbx");
	return stat(path, sb);
}

/* 1 and *HEADER (malloc'd, or NULL for "no key") when cached and current, else 0. */
static int autocrypt_cached(const struct config *cfg, const char *address, char **header)
{
	struct stat sb;
	int found = 0;

	if (keyring_stat(cfg, address, &sb) != 0)
		return 0;
	pthread_mutex_lock(&autocrypt_cache.lock);
	for (size_t i = 0; i < AUTOCRYPT_CACHE_MAX; i++) {
		struct autocrypt_entry *e = &autocrypt_cache.e[i];

		if (e->used == 0 || strcmp(e->address, address) != 0)
			continue;
		if (e->size == sb.st_size && e->mtime.tv_sec == sb.st_mtim.tv_sec &&
		    e->mtime.tv_nsec == sb.st_mtim.tv_nsec) {
			*header = e->header ? strdup(e->header) : NULL;
			found = !e->header || *header ? 1 : 0;
			e->used = ++autocrypt_cache.clock;
		}
		break;
	}
	pthread_mutex_unlock(&autocrypt_cache.lock);
	return found;
}

/* Remembers HEADER (NULL: no key) for ADDRESS with the keyring state SB. */
static void autocrypt_remember(const char *address, const struct stat *sb, const char *header)
{
	struct autocrypt_entry *slot = NULL;
	char *copy = header ? strdup(header) : NULL;

	if (header && !copy)
		return;
	pthread_mutex_lock(&autocrypt_cache.lock);
	for (size_t i = 0; i < AUTOCRYPT_CACHE_MAX; i++) {
		struct autocrypt_entry *e = &autocrypt_cache.e[i];

		if (e->used && strcmp(e->address, address) == 0) {
			slot = e;
			break;
		}
		if (!slot || e->used < slot->used)
			slot = e;
	}
	free(slot->header);
	snprintf(slot->address, sizeof(slot->address), "%s", address);
	slot->mtime = sb->st_mtim;
	slot->size = sb->st_size;
	slot->header = copy;
	slot->used = ++autocrypt_cache.clock;
	pthread_mutex_unlock(&autocrypt_cache.lock);
}

/*
 * Adds the sender's Autocrypt header unless the client already did; only
 * when From is the sender's own address (Autocrypt Level 1 2.1: readers
 * ignore a header whose addr is not the From address). *U is the sender's
 * home, opened here when the header is not cached and U is NULL.
 */
static void add_autocrypt(const struct config *cfg, struct gpg_user **u, const char *sender,
			  unsigned char **msg, size_t *len)
{
	gpgme_ctx_t ctx;
	gpgme_key_t key = NULL;
	char probe[8], err[256], *hdr = NULL, from[STORE_ADDRESS_MAX + 64];
	char fromaddr[STORE_ADDRESS_MAX + 1];
	unsigned char *n;
	struct stat before;
	size_t nlen;
	bool stat_ok;

	if (pgp_mime_header_get(*msg, *len, "From", from, sizeof(from)) != 1)
		return;
	from_address(from, fromaddr, sizeof(fromaddr));
	if (strcmp(fromaddr, sender) != 0 ||
	    pgp_mime_header_get(*msg, *len, "Autocrypt", probe, sizeof(probe)) == 1)
		return;
	if (autocrypt_cached(cfg, sender, &hdr) == 1)
		goto add;
	stat_ok = keyring_stat(cfg, sender, &before) == 0;
	if (!*u && gpg_user_open(cfg, sender, NULL, u, err, sizeof(err)) != 0)
		return;
	ctx = gpg_user_ctx(*u, GPGME_PROTOCOL_OpenPGP);
	if (!ctx)
		return;
	if (gpg_user_find_key(*u, GPGME_PROTOCOL_OpenPGP, sender, false, &key, err, sizeof(err)) ==
	    1) {
		if (pgp_mime_autocrypt_header(ctx, sender, key, &hdr, err, sizeof(err)) != 0)
			hdr = NULL;
		gpgme_key_unref(key);
		if (!hdr)
			return; /* an error, not "no key": do not remember it */
	}
	if (stat_ok)
		autocrypt_remember(sender, &before, hdr);
add:
	if (hdr && strlen(hdr) < AUTOCRYPT_HEADER_MAX && (n = with_header(hdr, *msg, *len, &nlen)))
		replace_message(msg, len, n, nlen);
	free(hdr);
}

/* Password protection (PGP_PASSWORD_HEADER, already removed from *MSG). */
static enum deliver_status protect_with_password(struct gpg_user *u, const char *password,
						 unsigned char **msg, size_t *len,
						 struct deliver_report *report)
{
	gpgme_ctx_t ctx = gpg_user_ctx(u, GPGME_PROTOCOL_OpenPGP);
	unsigned char *out = NULL;
	size_t out_len = 0;
	char err[256] = "";

	if (!ctx || pgp_mime_password_protect(ctx, password, *msg, *len, &out, &out_len, err,
					      sizeof(err)) != 0) {
		log_warn(_("password protection failed: %s"), err);
		report_set(report, "%s", "password protection failed, try again later");
		return DELIVER_TEMPFAIL;
	}
	replace_message(msg, len, out, out_len);
	return DELIVER_OK;
}

enum deliver_status pgp_policy_submission(struct store *st, const struct config *cfg,
					  const struct deliver_envelope *env, int64_t sender_id,
					  const struct deliver_recipient *rcpts, const bool *local,
					  size_t n_rcpts, unsigned char **msg, size_t *len,
					  struct deliver_report *report)
{
	const char *sender = env->auth_user;
	struct pgp_effective_policy pol;
	char password[PGP_PASSWORD_MAX + 1], err[256] = "", info[512];
	struct user_key *ukey = NULL;
	struct gpg_user *u = NULL;
	gpgme_key_t *keys = NULL, signer = NULL;
	gpgme_protocol_t proto = GPGME_PROTOCOL_OpenPGP;
	bool has_pw, protected_ = false;
	enum deliver_status status = DELIVER_OK;
	unsigned char *out = NULL;
	size_t out_len = 0, missing = 0;

	has_pw =
	    pgp_mime_header_get(*msg, *len, PGP_PASSWORD_HEADER, password, sizeof(password)) == 1;
	if (has_pw) {
		*len = pgp_mime_header_remove(*msg, *len, PGP_PASSWORD_HEADER);
		/* Non-ASCII passwords come RFC 2047 encoded ("=?utf-8?..."). */
		pgp_mime_decode_words(password, sizeof(password));
	}
	if (pgp_policy_effective(st, sender, &pol) != 0) {
		report_set(report, "%s", "temporary failure, try again later");
		status = DELIVER_TEMPFAIL;
		goto out;
	}
	if (!has_pw && pol.sign == PGP_SIGN_NEVER && pol.encrypt == PGP_ENCRYPT_NEVER) {
		/* Only the Autocrypt header, usually from the cache. */
		if (home_exists(cfg, sender))
			add_autocrypt(cfg, &u, sender, msg, len);
		goto out;
	}
	if ((pol.sign == PGP_SIGN_ALWAYS || pol.encrypt != PGP_ENCRYPT_NEVER) && key_lookup)
		ukey = key_lookup(sender_id);
	if (gpg_user_open(cfg, sender, ukey, &u, err, sizeof(err)) != 0) {
		log_warn(_("cannot open the GnuPG home of %s: %s"), sender, err);
		report_set(report, "%s", "temporary failure, try again later");
		status = DELIVER_TEMPFAIL;
		goto out;
	}
	add_autocrypt(cfg, &u, sender, msg, len);

	if (has_pw) {
		if (password[0] == '\0') {
			report_set(report, "%s", "empty " PGP_PASSWORD_HEADER " header");
			status = DELIVER_FAIL;
			goto out;
		}
		status = protect_with_password(u, password, msg, len, report);
		if (status != DELIVER_OK)
			goto out;
		protected_ = true;
		trace_info(env, sender, "pgp: message protected with a password");
	}

	/* Encryption: one protocol for all recipients, OpenPGP first. */
	if (pol.encrypt != PGP_ENCRYPT_NEVER && !protected_) {
		static const gpgme_protocol_t order[] = {GPGME_PROTOCOL_OpenPGP,
							 GPGME_PROTOCOL_CMS};

		if (n_rcpts > PGP_MAX_RECIPIENTS || !(keys = calloc(n_rcpts + 2, sizeof(*keys)))) {
			report_set(report, "%s", "too many recipients to encrypt to");
			status = pol.encrypt == PGP_ENCRYPT_REQUIRED ? DELIVER_FAIL : DELIVER_OK;
			if (status != DELIVER_OK)
				goto out;
		}
		for (size_t p = 0; keys && p < 2; p++) {
			size_t miss =
			    collect_keys(st, cfg, u, order[p], sender, rcpts, local, n_rcpts, keys);
			if (miss == n_rcpts) {
				proto = order[p];
				break;
			}
			if (p == 0)
				missing = miss;
		}
		if (keys && !keys[0] && pol.encrypt == PGP_ENCRYPT_REQUIRED) {
			report_set(report,
				   "Encryption required: no OpenPGP or S/MIME key for <%.200s>",
				   rcpts[missing].address);
			status = DELIVER_FAIL;
			goto out;
		}
	}
	if (pol.sign == PGP_SIGN_ALWAYS) {
		bool encrypting = keys && keys[0];

		/* Signed and encrypted: the signing key must be of the same protocol. */
		if (gpg_user_unlocked(u)) {
			if (!encrypting)
				signer = signing_key(u, sender, &proto);
			else if (gpg_user_find_key(u, proto, sender, true, &signer, err,
						   sizeof(err)) != 1)
				signer = NULL;
		}
		if (!signer) {
			report_set(report,
				   "Signing required: no unlocked %s signing key for <%.200s>",
				   !encrypting			 ? "OpenPGP or S/MIME"
				   : proto == GPGME_PROTOCOL_CMS ? "S/MIME"
								 : "OpenPGP",
				   sender);
			status = DELIVER_FAIL;
			goto out;
		}
	}
	if (keys && keys[0]) {
		gpgme_ctx_t ctx = gpg_user_ctx(u, proto);

		if (!ctx || pgp_mime_encrypt(ctx, keys, signer, *msg, *len, &out, &out_len, err,
					     sizeof(err)) != 0) {
			log_warn(_("encryption for %s failed: %s"), sender, err);
			report_set(report, "Encryption failed: %.200s", err);
			status = DELIVER_FAIL;
			goto out;
		}
		replace_message(msg, len, out, out_len);
		snprintf(info, sizeof(info), "pgp: %s%s for %zu recipient(s)",
			 signer ? "signed and encrypted" : "encrypted",
			 proto == GPGME_PROTOCOL_CMS ? " (S/MIME)" : " (PGP/MIME)", n_rcpts);
		trace_info(env, sender, info);
	} else if (signer) {
		gpgme_ctx_t ctx = gpg_user_ctx(u, proto);

		if (!ctx ||
		    pgp_mime_sign(ctx, signer, *msg, *len, &out, &out_len, err, sizeof(err)) != 0) {
			log_warn(_("signing for %s failed: %s"), sender, err);
			report_set(report, "Signing failed: %.200s", err);
			status = DELIVER_FAIL;
			goto out;
		}
		replace_message(msg, len, out, out_len);
		trace_info(env, sender,
			   proto == GPGME_PROTOCOL_CMS ? "pgp: signed (S/MIME)"
						       : "pgp: signed (PGP/MIME)");
	}
out:
	sodium_memzero(password, sizeof(password));
	if (keys) {
		keys_free(keys);
		free(keys);
	}
	if (signer)
		gpgme_key_unref(signer);
	if (u)
		gpg_user_close(u);
	if (ukey)
		user_key_free(ukey);
	return status;
}

/* ---- inbound ---- */

/* Case-insensitive search of NEEDLE in HAY. */
static bool contains_ci(const unsigned char *hay, size_t len, const char *needle)
{
	size_t n = strlen(needle);

	for (size_t i = 0; n <= len && i <= len - n; i++)
		if (tolower(hay[i]) == needle[0] &&
		    strncasecmp((const char *)hay + i, needle, n) == 0)
			return true;
	return false;
}

/*
 * Cheap test before parsing: could MSG be signed or encrypted at all? The
 * MIME kinds show in the top-level Content-Type (in the header); an inline
 * signature shows as its armor line anywhere in the body.
 */
static bool maybe_crypto(const unsigned char *msg, size_t len)
{
	static const char armor[] = "-----BEGIN PGP SIGNED MESSAGE-----";
	size_t hlen = pgp_mime_header_length(msg, len);

	return contains_ci(msg, hlen, "multipart/signed") ||
	       contains_ci(msg, hlen, "multipart/encrypted") ||
	       contains_ci(msg, hlen, "pkcs7-mime") ||
	       memmem(msg, len, armor, sizeof(armor) - 1) != NULL;
}

/* Copies TEXT into OUT keeping only characters safe inside our header value. */
static void header_safe(const char *text, char *out, size_t outlen)
{
	size_t o = 0;

	for (; *text && o + 1 < outlen; text++) {
		unsigned char c = (unsigned char)*text;

		if (c >= 0x20 && c < 0x7f && c != ';' && c != '"' && c != '\\')
			out[o++] = (char)c;
	}
	out[o] = '\0';
}

/*
 * Autocrypt (Level 1, "Autocrypt" header): when the header's addr is the
 * From address, its key goes into the recipient's home. Returns 1 when a
 * key was imported.
 */
static int collect_autocrypt(struct gpg_user *u, const unsigned char *msg, size_t len)
{
	char *value = malloc(AUTOCRYPT_HEADER_MAX), from[STORE_ADDRESS_MAX + 64],
	     addr[STORE_ADDRESS_MAX + 1] = "";
	char fromaddr[STORE_ADDRESS_MAX + 1], err[256];
	unsigned char *bin = NULL;
	size_t binlen = 0;
	unsigned n = 0;
	int rc = 0;
	char *kd = NULL, *save = NULL, *attr;

	if (!value)
		return 0;
	if (pgp_mime_header_get(msg, len, "Autocrypt", value, AUTOCRYPT_HEADER_MAX) != 1 ||
	    pgp_mime_header_get(msg, len, "From", from, sizeof(from)) != 1)
		goto out;
	from_address(from, fromaddr, sizeof(fromaddr));
	for (attr = strtok_r(value, ";", &save); attr; attr = strtok_r(NULL, ";", &save)) {
		while (*attr == ' ' || *attr == '\t')
			attr++;
		if (strncmp(attr, "addr=", 5) == 0)
			from_address(attr + 5, addr, sizeof(addr));
		else if (strncmp(attr, "keydata=", 8) == 0)
			kd = attr + 8;
	}
	if (!kd || !addr[0] || strcmp(addr, fromaddr) != 0)
		goto out;
	binlen = strlen(kd);
	bin = malloc(binlen + 1);
	if (!bin || sodium_base642bin(bin, binlen, kd, strlen(kd), " \t", &binlen, NULL,
				      sodium_base64_VARIANT_ORIGINAL) != 0)
		goto out;
	if (gpg_user_import_public(u, GPGME_PROTOCOL_OpenPGP, bin, binlen, &n, err, sizeof(err)) ==
	    0)
		rc = n > 0;
out:
	free(bin);
	free(value);
	return rc;
}

/* Our X-Postern-Signature field for RES. */
static void signature_header(const struct pgp_verify_result *res, char *out, size_t outlen)
{
	char signer[300], detail[300];
	int n;

	header_safe(res->signer, signer, sizeof(signer));
	header_safe(res->detail, detail, sizeof(detail));
	n = snprintf(out, outlen, PGP_SIGNATURE_HEADER ": %s; kind=%s",
		     pgp_sig_status_name(res->status), pgp_mime_kind_name(res->kind));
	if (signer[0] && n > 0 && (size_t)n < outlen)
		n += snprintf(out + n, outlen - (size_t)n, ";\r\n\tsigner=%s", signer);
	if (res->fingerprint[0] && n > 0 && (size_t)n < outlen)
		n += snprintf(out + n, outlen - (size_t)n, ";\r\n\tfingerprint=%.80s",
			      res->fingerprint);
	if (detail[0] && n > 0 && (size_t)n < outlen)
		n += snprintf(out + n, outlen - (size_t)n, ";\r\n\treason=\"%s\"", detail);
	if (n > 0 && (size_t)n + 3 <= outlen)
		snprintf(out + n, outlen - (size_t)n, "\r\n");
	else if (outlen > 0)
		out[0] = '\0';
}

/* Verifies COPY with the recipient's home into RES (collecting an Autocrypt key). */
static void verify_copy(struct gpg_user *u, const unsigned char *msg, size_t len,
			enum pgp_mime_kind kind, struct pgp_verify_result *res)
{
	gpgme_ctx_t ctx = gpg_user_ctx(u, pgp_mime_kind_protocol(kind));

	memset(res, 0, sizeof(*res));
	if (!ctx) {
		res->status = PGP_SIG_ERROR;
		res->kind = kind;
		snprintf(res->detail, sizeof(res->detail), "%s", "GnuPG is not available");
		return;
	}
	pgp_mime_verify(ctx, msg, len, res);
	if (res->status == PGP_SIG_UNKNOWN_KEY && kind != PGP_KIND_SMIME &&
	    collect_autocrypt(u, msg, len) == 1)
		pgp_mime_verify(ctx, msg, len, res);
}

int pgp_policy_inbound(struct store *st, const struct config *cfg,
		       const struct deliver_envelope *env, const struct store_user *user,
		       const unsigned char *msg, size_t len, unsigned char **out, size_t *out_len)
{
	struct pgp_effective_policy pol;
	struct pgp_mime_info info;
	struct pgp_verify_result res;
	struct user_key *ukey = NULL;
	struct gpg_user *u = NULL;
	unsigned char *copy, *n;
	size_t clen = len, nlen;
	char hdr[2 * RESULT_HEADER_MAX] = "", err[256] = "", info_text[1024];
	bool have_result = false;

	copy = malloc(len + 1);
	if (!copy)
		return -1;
	memcpy(copy, msg, len);
	/* Only we write these: whatever the sender put there is forged. */
	clen = pgp_mime_header_remove(copy, clen, PGP_SIGNATURE_HEADER);
	clen = pgp_mime_header_remove(copy, clen, PGP_DECRYPTED_HEADER);
	clen = pgp_mime_header_remove(copy, clen, PGP_PASSWORD_HEADER);
	if (!maybe_crypto(copy, clen))
		goto done;
	pgp_mime_inspect(copy, clen, &info);
	if (info.signed_kind == PGP_KIND_NONE && info.encrypted_kind == PGP_KIND_NONE)
		goto done;
	if (pgp_policy_effective(st, user->address, &pol) != 0)
		memset(&pol, 0, sizeof(pol));
	if (info.encrypted_kind != PGP_KIND_NONE && pol.decrypt_inbound && key_lookup)
		ukey = key_lookup(user->id);
	if (gpg_user_open(cfg, user->address, ukey, &u, err, sizeof(err)) != 0) {
		log_warn(_("cannot open the GnuPG home of %s: %s"), user->address, err);
		if (info.signed_kind != PGP_KIND_NONE) {
			memset(&res, 0, sizeof(res));
			res.status = PGP_SIG_ERROR;
			res.kind = info.signed_kind;
			snprintf(res.detail, sizeof(res.detail), "%s", "GnuPG is not available");
			signature_header(&res, hdr, sizeof(hdr));
		}
		goto prepend;
	}
	if (info.encrypted_kind != PGP_KIND_NONE && pol.decrypt_inbound) {
		const char *kind = pgp_mime_kind_name(info.encrypted_kind);
		gpgme_ctx_t ctx = gpg_user_ctx(u, pgp_mime_kind_protocol(info.encrypted_kind));
		unsigned char *dec = NULL;
		size_t dlen = 0;
		int rc = -1;

		memset(&res, 0, sizeof(res));
		if (!ukey) {
			snprintf(hdr, RESULT_HEADER_MAX,
				 PGP_DECRYPTED_HEADER ": no; kind=%s; reason=\"the recipient's key "
						      "is locked (not logged in)\"\r\n",
				 kind);
		} else if (ctx && (rc = pgp_mime_decrypt(ctx, copy, clen, &dec, &dlen, &res, err,
							 sizeof(err))) == 1) {
			replace_message(&copy, &clen, dec, dlen);
			snprintf(hdr, RESULT_HEADER_MAX, PGP_DECRYPTED_HEADER ": yes; kind=%s\r\n",
				 kind);
			have_result = res.status != PGP_SIG_NONE;
			pgp_mime_inspect(copy, clen, &info);
		} else {
			char safe[256];

			header_safe(err, safe, sizeof(safe));
			snprintf(hdr, RESULT_HEADER_MAX,
				 PGP_DECRYPTED_HEADER ": failed; kind=%s; reason=\"%s\"\r\n", kind,
				 safe);
		}
		snprintf(info_text, sizeof(info_text), "pgp: %s for <%s>",
			 rc == 1 ? "decrypted" : "not decrypted", user->address);
		trace_info(env, NULL, info_text);
	}
	if (!have_result && info.signed_kind != PGP_KIND_NONE) {
		verify_copy(u, copy, clen, info.signed_kind, &res);
		have_result = true;
	}
	if (have_result) {
		size_t used = strlen(hdr);

		signature_header(&res, hdr + used, sizeof(hdr) - used);
		snprintf(info_text, sizeof(info_text),
			 "pgp: signature %s (%s) signer=%.200s for <%s>",
			 pgp_sig_status_name(res.status), pgp_mime_kind_name(res.kind),
			 res.signer[0] ? res.signer : "?", user->address);
		trace_info(env, NULL, info_text);
	}
prepend:
	if (hdr[0] && (n = with_header(hdr, copy, clen, &nlen)))
		replace_message(&copy, &clen, n, nlen);
done:
	if (u)
		gpg_user_close(u);
	if (ukey)
		user_key_free(ukey);
	*out = copy;
	*out_len = clen;
	return 0;
}
