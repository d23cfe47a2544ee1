/*
 * auth.c - the one login path (password check, key unlock) and its cache.
 *
 * A first login costs two Argon2id derivations: verifying the password hash
 * and unwrapping the private key. An unknown address costs one, against a
 * dummy hash of the current cost, exactly like a wrong password, so the
 * answer time does not tell which users exist. A locked account is reported
 * only to someone who knows its password.
 *
 * The cache (as Dovecot's auth cache) remembers successful logins for
 * cache_ttl seconds. Its key is a keyed BLAKE2b of address || 0 || password
 * under a random per-process key, so the password itself is never kept; the
 * value is a copy of the unlocked key and the user's password hash at login
 * time. A hit still reads the user row and counts only if the user exists,
 * is not locked and has the same password hash, so a password change, lock
 * or delete done by posternctl in another process takes effect at once.
 * When full, the oldest entry goes.
 */
#include "config.h"

#include <ctype.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "auth/auth.h"
#include "auth/auth_int.h"
#include "util/i18n.h"
#include "util/log.h"

#define AUTH_PASSWORD_MAX 1024 /* bytes; longer is refused without hashing */
#define AUTH_ID_BYTES crypto_generichash_BYTES

struct cache_entry {
	bool used;
	unsigned char id[AUTH_ID_BYTES];
	char address[STORE_ADDRESS_MAX + 1];
	int64_t user_id;
	char password_hash[STORE_PWHASH_MAX];
	struct user_key *key;
	time_t expires;	   /* monotonic seconds */
	uint64_t inserted; /* insertion order, for evicting the oldest */
};

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cache_entry cache[AUTH_CACHE_MAX];
static unsigned cache_ttl = 600;
static uint64_t cache_seq;
static unsigned char cache_key[crypto_generichash_KEYBYTES];
static bool cache_key_ready;

/* The dummy hash verified for unknown users, remade when the Argon2id cost changes. */
static pthread_mutex_t dummy_lock = PTHREAD_MUTEX_INITIALIZER;
static char dummy_hash[CRYPTO_PWHASH_STR_MAX];
static unsigned long long dummy_ops;
static size_t dummy_mem;

static time_t now_monotonic(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static void entry_drop(struct cache_entry *e)
{
	user_key_free(e->key);
	sodium_memzero(e, sizeof(*e));
}

/* Call with cache_lock held. */
static void cache_drop_all(void)
{
	for (size_t i = 0; i < AUTH_CACHE_MAX; i++)
		if (cache[i].used)
			entry_drop(&cache[i]);
}

static int ensure_dummy_hash(char out[CRYPTO_PWHASH_STR_MAX])
{
	unsigned long long ops;
	size_t mem;
	int rc = 0;

	crypto_get_argon2_cost(&ops, &mem);
	pthread_mutex_lock(&dummy_lock);
	if (dummy_hash[0] == '\0' || ops != dummy_ops || mem != dummy_mem) {
		unsigned char random_pw[32];

		randombytes_buf(random_pw, sizeof(random_pw));
		rc = crypto_password_hash((const char *)random_pw, sizeof(random_pw), dummy_hash);
		sodium_memzero(random_pw, sizeof(random_pw));
		if (rc == 0) {
			dummy_ops = ops;
			dummy_mem = mem;
		} else {
			dummy_hash[0] = '\0';
		}
	}
	memcpy(out, dummy_hash, CRYPTO_PWHASH_STR_MAX);
	pthread_mutex_unlock(&dummy_lock);
	return rc;
}

void auth_setup(unsigned cache_ttl_seconds)
{
	char unused[CRYPTO_PWHASH_STR_MAX];

	if (crypto_setup() < 0)
		log_error("%s", _("cannot initialise libsodium"));
	pthread_mutex_lock(&cache_lock);
	cache_ttl = cache_ttl_seconds;
	if (!cache_key_ready) {
		crypto_generichash_keygen(cache_key);
		cache_key_ready = true;
	}
	if (cache_ttl == 0)
		cache_drop_all();
	pthread_mutex_unlock(&cache_lock);
	/* Pay for the dummy hash now rather than on the first unknown login. */
	if (ensure_dummy_hash(unused) < 0)
		log_error("%s", _("cannot compute the password hash used for unknown users"));
}

unsigned auth_cache_ttl(void)
{
	unsigned ttl;

	pthread_mutex_lock(&cache_lock);
	ttl = cache_ttl;
	pthread_mutex_unlock(&cache_lock);
	return ttl;
}

/* Lower-cases ADDRESS into OUT (STORE_ADDRESS_MAX + 1 bytes); -1 when empty or too long. */
int auth_normalize_address(const char *address, char *out)
{
	size_t n;

	if (address == NULL)
		return -1;
	n = strnlen(address, STORE_ADDRESS_MAX + 1);
	if (n == 0 || n > STORE_ADDRESS_MAX)
		return -1;
	for (size_t i = 0; i < n; i++)
		out[i] = (char)tolower((unsigned char)address[i]);
	out[n] = '\0';
	return 0;
}

/* Keyed BLAKE2b of address || 0 || password. Call with cache_lock held (reads cache_key). */
static void cache_id(const char *address, const char *password, size_t pwlen,
		     unsigned char id[AUTH_ID_BYTES])
{
	crypto_generichash_state st;
	const unsigned char zero = 0;

	crypto_generichash_init(&st, cache_key, sizeof(cache_key), AUTH_ID_BYTES);
	crypto_generichash_update(&st, (const unsigned char *)address, strlen(address));
	crypto_generichash_update(&st, &zero, 1);
	crypto_generichash_update(&st, (const unsigned char *)password, pwlen);
	crypto_generichash_final(&st, id, AUTH_ID_BYTES);
	sodium_memzero(&st, sizeof(st));
}

/* Same NUL-terminated hash strings, compared in constant time over the buffer. */
static bool hash_equal(const char *a, const char *b)
{
	char pa[STORE_PWHASH_MAX] = {0}, pb[STORE_PWHASH_MAX] = {0};

	memcpy(pa, a, strnlen(a, sizeof(pa) - 1));
	memcpy(pb, b, strnlen(b, sizeof(pb) - 1));
	return sodium_memcmp(pa, pb, sizeof(pa)) == 0;
}

/*
 * Looks ID up. On a live entry for USER_ID, copies its password hash into
 * HASH_OUT and a duplicate of its key into *KEY_OUT and returns true.
 */
static bool cache_lookup(const unsigned char id[AUTH_ID_BYTES], int64_t user_id,
			 char hash_out[STORE_PWHASH_MAX], struct user_key **key_out)
{
	time_t now = now_monotonic();
	bool hit = false;

	pthread_mutex_lock(&cache_lock);
	for (size_t i = 0; i < AUTH_CACHE_MAX; i++) {
		struct cache_entry *e = &cache[i];

		if (!e->used || sodium_memcmp(e->id, id, AUTH_ID_BYTES) != 0)
			continue;
		if (e->expires <= now || e->user_id != user_id) {
			entry_drop(e);
			break;
		}
		*key_out = user_key_dup(e->key);
		if (*key_out != NULL) {
			memcpy(hash_out, e->password_hash, STORE_PWHASH_MAX);
			hit = true;
		}
		break;
	}
	pthread_mutex_unlock(&cache_lock);
	return hit;
}

static void cache_drop_id(const unsigned char id[AUTH_ID_BYTES])
{
	pthread_mutex_lock(&cache_lock);
	for (size_t i = 0; i < AUTH_CACHE_MAX; i++)
		if (cache[i].used && sodium_memcmp(cache[i].id, id, AUTH_ID_BYTES) == 0)
			entry_drop(&cache[i]);
	pthread_mutex_unlock(&cache_lock);
}

static void cache_insert(const unsigned char id[AUTH_ID_BYTES], const struct store_user *u,
			 const struct user_key *key)
{
	struct cache_entry *slot = NULL;
	time_t now = now_monotonic();
	struct user_key *copy = user_key_dup(key);

	if (copy == NULL)
		return;
	pthread_mutex_lock(&cache_lock);
	if (cache_ttl == 0) {
		pthread_mutex_unlock(&cache_lock);
		user_key_free(copy);
		return;
	}
	for (size_t i = 0; i < AUTH_CACHE_MAX; i++) {
		struct cache_entry *e = &cache[i];

		if (e->used && (sodium_memcmp(e->id, id, AUTH_ID_BYTES) == 0 || e->expires <= now))
			entry_drop(e);
		if (!e->used) {
			if (slot == NULL || slot->used)
				slot = e;
		} else if (slot == NULL || (slot->used && e->inserted < slot->inserted)) {
			slot = e;
		}
	}
	if (slot->used)
		entry_drop(slot); /* full: the oldest goes */
	slot->used = true;
	memcpy(slot->id, id, AUTH_ID_BYTES);
	memcpy(slot->address, u->address, sizeof(slot->address));
	slot->address[STORE_ADDRESS_MAX] = '\0';
	slot->user_id = u->id;
	memcpy(slot->password_hash, u->password_hash, STORE_PWHASH_MAX);
	slot->password_hash[STORE_PWHASH_MAX - 1] = '\0';
	slot->key = copy;
	slot->expires = now + (time_t)cache_ttl;
	slot->inserted = ++cache_seq;
	pthread_mutex_unlock(&cache_lock);
}

void auth_cache_drop(const char *norm)
{
	pthread_mutex_lock(&cache_lock);
	for (size_t i = 0; i < AUTH_CACHE_MAX; i++)
		if (cache[i].used && strcmp(cache[i].address, norm) == 0)
			entry_drop(&cache[i]);
	pthread_mutex_unlock(&cache_lock);
}

void auth_cache_forget(const char *address)
{
	char norm[STORE_ADDRESS_MAX + 1];

	if (auth_normalize_address(address, norm) < 0)
		return;
	auth_throttle_forget(norm);
	auth_cache_drop(norm);
}

void auth_cache_clear(void)
{
	pthread_mutex_lock(&cache_lock);
	cache_drop_all();
	pthread_mutex_unlock(&cache_lock);
}

struct user_key *auth_cache_user_key(int64_t user_id)
{
	struct user_key *key = NULL;
	time_t now = now_monotonic();

	pthread_mutex_lock(&cache_lock);
	for (size_t i = 0; i < AUTH_CACHE_MAX && key == NULL; i++)
		if (cache[i].used && cache[i].user_id == user_id && cache[i].expires > now)
			key = user_key_dup(cache[i].key);
	pthread_mutex_unlock(&cache_lock);
	return key;
}

size_t auth_cache_count(void)
{
	size_t n = 0;

	pthread_mutex_lock(&cache_lock);
	for (size_t i = 0; i < AUTH_CACHE_MAX; i++)
		n += cache[i].used;
	pthread_mutex_unlock(&cache_lock);
	return n;
}

void auth_identity_clear(struct auth_identity *id)
{
	if (id == NULL)
		return;
	user_key_free(id->key);
	memset(id, 0, sizeof(*id));
}

void auth_identity_fill(struct auth_identity *out, const struct store_user *u, struct user_key *key)
{
	out->user_id = u->id;
	memcpy(out->address, u->address, sizeof(out->address));
	out->address[STORE_ADDRESS_MAX] = '\0';
	out->key = key;
}

/* Spends the time of one password check, as for an existing user. */
void auth_verify_dummy(const char *password, size_t pwlen)
{
	char hash[CRYPTO_PWHASH_STR_MAX];

	if (ensure_dummy_hash(hash) == 0)
		(void)crypto_password_verify(hash, password, pwlen);
}

/* The slow path: Argon2id verify, lock check, key unwrap. */
enum auth_result auth_unlock_key(const struct store_user *u, const char *password, size_t pwlen,
				 struct user_key **key_out)
{
	*key_out = NULL;
	if (u->locked)
		return AUTH_LOCKED;
	if (crypto_user_unlock(u->wrapped_key, u->wrapped_key_len, password, pwlen, key_out) != 0) {
		log_error(_("the private key of %s does not unlock with its verified password"),
			  u->address);
		return AUTH_TEMPFAIL;
	}
	if (sodium_memcmp(user_key_public(*key_out), u->public_key, CRYPTO_PUBLIC_KEY_BYTES) != 0) {
		log_error(_("the private key of %s does not match its public key"), u->address);
		user_key_free(*key_out);
		*key_out = NULL;
		return AUTH_TEMPFAIL;
	}
	return AUTH_OK;
}

/* The slow path: Argon2id verify, lock check, key unwrap. */
static enum auth_result login_full(const struct store_user *u, const char *password, size_t pwlen,
				   struct user_key **key_out)
{
	if (crypto_password_verify(u->password_hash, password, pwlen) != 0)
		return AUTH_FAILED;
	return auth_unlock_key(u, password, pwlen, key_out);
}

enum auth_result auth_check_password(const struct store_user *u, const char *norm,
				     const char *password, size_t pwlen, bool cacheable,
				     struct user_key **key_out)
{
	char cached_hash[STORE_PWHASH_MAX];
	unsigned char id[AUTH_ID_BYTES];
	struct user_key *key = NULL;
	enum auth_result res;
	bool use_cache;

	*key_out = NULL;
	pthread_mutex_lock(&cache_lock);
	use_cache = cacheable && cache_ttl > 0 && cache_key_ready;
	if (use_cache)
		cache_id(norm, password, pwlen, id);
	pthread_mutex_unlock(&cache_lock);

	if (use_cache && cache_lookup(id, u->id, cached_hash, &key)) {
		/* The cache proves the password; the row decides whether it still counts. */
		if (hash_equal(cached_hash, u->password_hash) &&
		    sodium_memcmp(user_key_public(key), u->public_key, CRYPTO_PUBLIC_KEY_BYTES) ==
			0) {
			if (u->locked) {
				user_key_free(key);
				cache_drop_id(id);
				res = AUTH_LOCKED;
			} else {
				*key_out = key;
				res = AUTH_OK;
			}
			goto done;
		}
		user_key_free(key);
		key = NULL;
		cache_drop_id(id);
	}

	res = login_full(u, password, pwlen, &key);
	if (res == AUTH_OK) {
		if (use_cache)
			cache_insert(id, u, key);
		*key_out = key;
	}
done:
	sodium_memzero(id, sizeof(id));
	return res;
}

enum auth_result auth_login(struct store *st, const char *address, const char *password,
			    size_t pwlen, struct auth_identity *out)
{
	struct auth_request req = {
	    .address = address,
	    .password = password,
	    .pwlen = pwlen,
	    .protocol = NULL,
	    .client_ip = NULL,
	};

	return auth_login_request(st, &req, out);
}
