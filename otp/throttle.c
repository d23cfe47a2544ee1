/*
 * throttle.c - growing waits and temporary blocks after failed logins.
 *
 * The rules are pure functions of (policy, state, now) so they are tested
 * with an injected clock. After FREE_FAILURES failures, each further failure
 * makes the next attempt wait 1, 2, 4 ... seconds (at most MAX_WAIT); an
 * attempt during the wait is refused as a temporary failure without checking
 * the password, so guessing cannot go faster than the waits. BLOCK_AFTER
 * failures start a block of BLOCK_SECONDS. Failures are forgotten
 * FORGET_SECONDS after the last one; a successful login clears an account.
 *
 * Account state is kept in store_user_data (kind "login_throttle") so that
 * posternctl, another process, can list and clear it. Client addresses and
 * unknown account names live in an in-memory table of the daemon: a fixed
 * array probed by a keyed hash, so a flood of addresses evicts the oldest
 * entries instead of growing memory.
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "otp/otp.h"
#include "otp/otp_int.h"

const struct throttle_policy throttle_account_policy = {
    .free_failures = 3,
    .block_after = 10,
    .block_seconds = 15 * 60,
    .max_wait = 30,
    .forget_seconds = 60 * 60,
};

const struct throttle_policy throttle_ip_policy = {
    .free_failures = 30,
    .block_after = 100,
    .block_seconds = 15 * 60,
    .max_wait = 30,
    .forget_seconds = 60 * 60,
};

#define THROTTLE_KEY_MAX (STORE_ADDRESS_MAX + 32)
#define THROTTLE_PROBES 8

static int64_t (*clock_fn)(void);

static int64_t wall_clock(void)
{
	return (int64_t)time(NULL);
}

void throttle_set_clock(int64_t (*now_fn)(void))
{
	clock_fn = now_fn;
}

int64_t throttle_now(void)
{
	return clock_fn != NULL ? clock_fn() : wall_clock();
}

static bool forgotten(const struct throttle_policy *p, const struct throttle_state *s, int64_t now)
{
	return s->failures == 0 || now - s->last_failure >= (int64_t)p->forget_seconds;
}

static int64_t wait_after(const struct throttle_policy *p, uint32_t failures)
{
	uint32_t over;

	if (failures <= p->free_failures)
		return 0;
	over = failures - p->free_failures - 1;
	if (over >= 30 || (1U << over) >= p->max_wait)
		return p->max_wait;
	return (int64_t)1 << over;
}

int64_t throttle_retry_at(const struct throttle_policy *p, const struct throttle_state *s,
			  int64_t now)
{
	int64_t at;

	if (s->blocked_until > now)
		return s->blocked_until;
	if (forgotten(p, s, now))
		return 0;
	if (wait_after(p, s->failures) == 0)
		return 0;
	/* Whole seconds: one more, so the wait is never shorter than promised. */
	at = s->last_failure + wait_after(p, s->failures) + 1;
	return at > now ? at : 0;
}

void throttle_record_failure(const struct throttle_policy *p, struct throttle_state *s, int64_t now)
{
	if (s->blocked_until != 0 && s->blocked_until <= now)
		s->blocked_until = 0;
	if (forgotten(p, s, now))
		s->failures = 0;
	s->failures++;
	s->last_failure = now;
	if (s->failures >= p->block_after) {
		s->blocked_until = now + (int64_t)p->block_seconds;
		/* After the block every failure waits again, and as many more block again. */
		s->failures = p->free_failures;
	}
}

bool throttle_state_idle(const struct throttle_policy *p, const struct throttle_state *s,
			 int64_t now)
{
	return s->blocked_until <= now && forgotten(p, s, now);
}

/* ---- account state in the store ---- */

int throttle_account_load(struct store *st, int64_t user_id, struct throttle_state *out)
{
	json_t *obj;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = otp_blob_load(st, user_id, THROTTLE_KIND, &obj);
	if (rc == STORE_NOTFOUND)
		return STORE_OK;
	if (rc != STORE_OK)
		return rc;
	out->failures = (uint32_t)otp_json_get_int(obj, "failures");
	out->last_failure = otp_json_get_int(obj, "last_failure");
	out->blocked_until = otp_json_get_int(obj, "blocked_until");
	json_decref(obj);
	return STORE_OK;
}

int throttle_account_save(struct store *st, int64_t user_id, const struct throttle_state *s)
{
	json_t *obj =
	    json_pack("{s:i, s:I, s:I}", "failures", (int)s->failures, "last_failure",
		      (json_int_t)s->last_failure, "blocked_until", (json_int_t)s->blocked_until);
	int rc;

	if (obj == NULL)
		return STORE_ERR;
	rc = otp_blob_save(st, user_id, THROTTLE_KIND, obj);
	json_decref(obj);
	return rc;
}

/* ---- the in-memory table ---- */

struct table_entry {
	bool used;
	char key[THROTTLE_KEY_MAX];
	const struct throttle_policy *policy;
	struct throttle_state state;
};

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static struct table_entry table[THROTTLE_TABLE_SIZE];
static unsigned char table_hash_key[crypto_shorthash_KEYBYTES];
static bool table_hash_ready;

/* Call with table_lock held. */
static size_t table_home(const char *key)
{
	unsigned char h[crypto_shorthash_BYTES];
	uint64_t v = 0;

	if (!table_hash_ready) {
		if (crypto_setup() == 0)
			randombytes_buf(table_hash_key, sizeof(table_hash_key));
		table_hash_ready = true;
	}
	crypto_shorthash(h, (const unsigned char *)key, strlen(key), table_hash_key);
	memcpy(&v, h, sizeof(v));
	return (size_t)(v % THROTTLE_TABLE_SIZE);
}

/* Finds KEY; with CREATE, makes room for it (reusing idle or the oldest entry). */
static struct table_entry *table_find(const char *key, bool create, const struct throttle_policy *p,
				      int64_t now)
{
	size_t home = table_home(key);
	struct table_entry *victim = NULL;

	for (size_t i = 0; i < THROTTLE_PROBES; i++) {
		struct table_entry *e = &table[(home + i) % THROTTLE_TABLE_SIZE];

		if (e->used && strcmp(e->key, key) == 0)
			return e;
		if (!create)
			continue;
		if (!e->used || throttle_state_idle(e->policy, &e->state, now)) {
			if (victim == NULL || victim->used)
				victim = e;
		} else if (victim == NULL ||
			   (victim->used && e->state.last_failure < victim->state.last_failure)) {
			victim = e;
		}
	}
	if (!create || victim == NULL)
		return NULL;
	memset(victim, 0, sizeof(*victim));
	victim->used = true;
	snprintf(victim->key, sizeof(victim->key), "%s", key);
	victim->policy = p;
	return victim;
}

int64_t throttle_table_retry_at(const struct throttle_policy *p, const char *key, int64_t now)
{
	struct table_entry *e;
	int64_t at = 0;

	if (key == NULL || strlen(key) >= THROTTLE_KEY_MAX)
		return 0;
	pthread_mutex_lock(&table_lock);
	e = table_find(key, false, p, now);
	if (e != NULL)
		at = throttle_retry_at(p, &e->state, now);
	pthread_mutex_unlock(&table_lock);
	return at;
}

void throttle_table_failure(const struct throttle_policy *p, const char *key, int64_t now)
{
	struct table_entry *e;

	if (key == NULL || strlen(key) >= THROTTLE_KEY_MAX)
		return;
	pthread_mutex_lock(&table_lock);
	e = table_find(key, true, p, now);
	if (e != NULL)
		throttle_record_failure(p, &e->state, now);
	pthread_mutex_unlock(&table_lock);
}

void throttle_table_forget(const char *key)
{
	struct table_entry *e;

	if (key == NULL || strlen(key) >= THROTTLE_KEY_MAX)
		return;
	pthread_mutex_lock(&table_lock);
	e = table_find(key, false, NULL, 0);
	if (e != NULL)
		memset(e, 0, sizeof(*e));
	pthread_mutex_unlock(&table_lock);
}

void throttle_table_clear(void)
{
	pthread_mutex_lock(&table_lock);
	memset(table, 0, sizeof(table));
	pthread_mutex_unlock(&table_lock);
}

void throttle_table_each(throttle_table_cb cb, void *arg)
{
	pthread_mutex_lock(&table_lock);
	for (size_t i = 0; i < THROTTLE_TABLE_SIZE; i++)
		if (table[i].used)
			cb(arg, table[i].key, &table[i].state);
	pthread_mutex_unlock(&table_lock);
}
