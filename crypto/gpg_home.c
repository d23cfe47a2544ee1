/*
 * gpg_home.c - per-user GnuPG homes, their GPGME contexts, the passphrase
 * that protects the user's secret keys, and the bound on gpg-agents.
 *
 * One home per user, <data_dir>/gnupg/<name>/, shared by gpg (OpenPGP) and
 * gpgsm (S/MIME) as GnuPG intends (one keybox, one agent). Postern writes the
 * configuration files when it creates the home, so every home runs with
 * loopback pinentry, no network, no pinentry and no passphrase cache of the
 * agent's own. S/MIME passphrases are preset in the agent (gpgsm 2.2 in
 * server mode ignores loopback requests) and cleared again.
 *
 * Agents: gpg and gpgsm start an agent for a home on demand. This file keeps
 * a table of the homes that may have one (at most [pgp] max_agents slots).
 * A home takes a slot when it is opened; when the table is full, the least
 * recently used slot nobody holds is freed by stopping its agent (gpgconf
 * --kill all). When every slot is held, an open waits (bounded) for one to
 * be released. Idle slots past [pgp] agent_idle are freed on each open and
 * close, and all agents stop at exit.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <locale.h>
#include <pthread.h>
#include <pwd.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "crypto/crypto.h"
#include "crypto/crypto_internal.h"
#include "crypto/gpg_home.h"
#include "crypto/gpg_internal.h"
#include "util/config.h"
#include "util/i18n.h"
#include "util/log.h"

#define GPG_MAX_AGENTS_LIMIT 1024
#define GPG_SLOT_WAIT_SECONDS 30
#define GPG_ADDRESS_MAX 320
#define GPG_PASSPHRASE_LABEL "postern gpg passphrase v1"
/* The longest socket name gpg-agent creates in a home. */
#define GPG_LONGEST_SOCKET "/S.gpg-agent.browser"
#define GPG_PRESET_MAX 16
/* Presets expire after the agent's max-cache-ttl (3600 s); a handle renews them sooner. */
#define GPG_PRESET_RENEW_SECONDS 1200
#define GPG_AGENT_STOP_POLLS 150 /* waiting at most 3 s for a stopped agent to go */
#define GPG_AGENT_STOP_POLL_US 20000

extern char **environ;

static const char gpg_conf[] =
    "# Written by Postern. Keys are trusted as the user or admin imported them.\n"
    "trust-model always\n"
    "auto-key-locate local\n"
    "no-auto-key-retrieve\n"
    "no-greeting\n";
static const char gpgsm_conf[] = "# Written by Postern: no network, no CRL lookups.\n"
				 "disable-dirmngr\n"
				 "disable-crl-checks\n"
				 "disable-policy-checks\n";
static const char agent_conf[] =
    "# Written by Postern: passphrases come from Postern for each operation.\n"
    "allow-loopback-pinentry\n"
    "allow-preset-passphrase\n"
    "default-cache-ttl 0\n"
    "max-cache-ttl 3600\n"
    "no-allow-external-cache\n"
    "disable-scdaemon\n"
    "# Never prompt: a passphrase Postern did not give fails at once.\n"
    "pinentry-program /bin/false\n";

struct agent_slot {
	char home[CRYPTO_PATH_MAX]; /* empty: free */
	unsigned holders;
	unsigned presetters; /* unlocked handles that preset S/MIME passphrases */
	time_t last_used;
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t released;
	struct agent_slot *slots;
	unsigned n_slots;
	unsigned idle;
	bool atexit_done;
} agents = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, 0, 300, false};

static pthread_once_t gpgme_once = PTHREAD_ONCE_INIT;
static bool gpgme_ok;

static void gpgme_setup(void)
{
	if (gpgme_check_version(NULL) == NULL)
		return;
	gpgme_set_locale(NULL, LC_CTYPE, setlocale(LC_CTYPE, NULL));
	gpgme_ok = gpgme_engine_check_version(GPGME_PROTOCOL_OpenPGP) == 0 &&
		   gpgme_engine_check_version(GPGME_PROTOCOL_CMS) == 0;
}

void gpg_set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

int gpg_home_name(const char *address, char out[GPG_HOME_NAME_LEN + 1])
{
	unsigned char lower[GPG_ADDRESS_MAX];
	unsigned char hash[GPG_HOME_NAME_LEN / 2];
	size_t len = address ? strlen(address) : 0;

	if (len == 0 || len >= sizeof(lower))
		return -1;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)address[i];

		lower[i] = (c >= 'A' && c <= 'Z') ? (unsigned char)(c - 'A' + 'a') : c;
	}
	if (crypto_generichash(hash, sizeof(hash), lower, len, NULL, 0) != 0)
		return -1;
	sodium_bin2hex(out, GPG_HOME_NAME_LEN + 1, hash, sizeof(hash));
	return 0;
}

int gpg_passphrase_derive(const struct user_key *key, char out[GPG_PASSPHRASE_LEN + 1])
{
	unsigned char pass[22]; /* 176 bits: GPG_PASSPHRASE_LEN base64 characters */
	char text[GPG_PASSPHRASE_LEN + 8];

	if (key == NULL)
		return -1;
	if (crypto_generichash(pass, sizeof(pass), (const unsigned char *)GPG_PASSPHRASE_LABEL,
			       strlen(GPG_PASSPHRASE_LABEL), user_key_private(key),
			       CRYPTO_PRIVATE_KEY_BYTES) != 0)
		return -1;
	sodium_bin2base64(text, sizeof(text), pass, sizeof(pass),
			  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(pass, sizeof(pass));
	if (strlen(text) != GPG_PASSPHRASE_LEN) {
		sodium_memzero(text, sizeof(text));
		return -1;
	}
	memcpy(out, text, GPG_PASSPHRASE_LEN + 1);
	sodium_memzero(text, sizeof(text));
	return 0;
}

/* Runs gpgconf --homedir HOME --kill all and waits for it. */
static void agent_stop(const char *home)
{
	char *argv[] = {"gpgconf", "--homedir", (char *)home, "--kill", "all", NULL};
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int status;

	if (posix_spawn_file_actions_init(&fa) != 0)
		return;
	posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
	if (posix_spawnp(&pid, "gpgconf", &fa, NULL, argv, environ) == 0) {
		char sock[CRYPTO_PATH_MAX];

		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		/* gpgconf returns before the agent has gone; a new agent for the
		 * same home must not meet the dying one's socket. */
		if ((size_t)snprintf(sock, sizeof(sock), "%s/S.gpg-agent", home) < sizeof(sock))
			for (int i = 0; i < GPG_AGENT_STOP_POLLS && access(sock, F_OK) == 0; i++)
				usleep(GPG_AGENT_STOP_POLL_US);
	} else {
		log_warn(_("cannot run gpgconf to stop the gpg-agent of %s"), home);
	}
	posix_spawn_file_actions_destroy(&fa);
}

static void slot_free(struct agent_slot *s)
{
	agent_stop(s->home);
	s->home[0] = '\0';
	s->holders = 0;
	s->presetters = 0;
}

/* Frees idle slots past their lifetime. Called with the lock held. */
static void slots_reap(time_t now)
{
	for (unsigned i = 0; i < agents.n_slots; i++) {
		struct agent_slot *s = &agents.slots[i];

		if (s->home[0] != '\0' && s->holders == 0 &&
		    now - s->last_used >= (time_t)agents.idle)
			slot_free(s);
	}
}

void gpg_agents_stop_all(void)
{
	pthread_mutex_lock(&agents.lock);
	for (unsigned i = 0; i < agents.n_slots; i++)
		if (agents.slots[i].home[0] != '\0')
			slot_free(&agents.slots[i]);
	pthread_cond_broadcast(&agents.released);
	pthread_mutex_unlock(&agents.lock);
}

static void agents_at_exit(void)
{
	gpg_agents_stop_all();
}

unsigned gpg_agents_running(void)
{
	unsigned n = 0;

	pthread_mutex_lock(&agents.lock);
	for (unsigned i = 0; i < agents.n_slots; i++)
		if (agents.slots[i].home[0] != '\0')
			n++;
	pthread_mutex_unlock(&agents.lock);
	return n;
}

/* Sizes the table from the config. Slots beyond a smaller new size are freed. */
static int slots_configure(const struct config *cfg)
{
	unsigned want = cfg->pgp.max_agents;

	if (want == 0)
		want = 1;
	if (want > GPG_MAX_AGENTS_LIMIT)
		want = GPG_MAX_AGENTS_LIMIT;
	agents.idle = cfg->pgp.agent_idle;
	if (!agents.atexit_done) {
		atexit(agents_at_exit);
		agents.atexit_done = true;
	}
	if (want == agents.n_slots)
		return 0;
	if (want < agents.n_slots) {
		/* A smaller bound (reload): slots above it go once nobody holds them. */
		for (unsigned i = want; i < agents.n_slots; i++)
			if (agents.slots[i].holders > 0)
				return 0;
		for (unsigned i = want; i < agents.n_slots; i++)
			if (agents.slots[i].home[0] != '\0')
				slot_free(&agents.slots[i]);
	}
	struct agent_slot *n = realloc(agents.slots, want * sizeof(*n));

	if (n == NULL)
		return -1;
	for (unsigned i = agents.n_slots; i < want; i++) {
		n[i].home[0] = '\0';
		n[i].holders = 0;
		n[i].presetters = 0;
		n[i].last_used = 0;
	}
	agents.slots = n;
	agents.n_slots = want;
	return 0;
}

/* Takes a slot for HOME, waiting for one when all are held. */
static int slot_acquire(const struct config *cfg, const char *home)
{
	struct timespec deadline;
	int rc = -1;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += GPG_SLOT_WAIT_SECONDS;
	pthread_mutex_lock(&agents.lock);
	if (slots_configure(cfg) != 0)
		goto out;
	for (;;) {
		time_t now = time(NULL);
		struct agent_slot *free_slot = NULL, *lru = NULL;

		for (unsigned i = 0; i < agents.n_slots; i++) {
			struct agent_slot *s = &agents.slots[i];

			if (strcmp(s->home, home) == 0) {
				s->holders++;
				s->last_used = now;
				rc = 0;
				goto out;
			}
		}
		slots_reap(now);
		for (unsigned i = 0; i < agents.n_slots; i++) {
			struct agent_slot *s = &agents.slots[i];

			if (s->home[0] == '\0') {
				free_slot = s;
				break;
			}
			if (s->holders == 0 && (lru == NULL || s->last_used < lru->last_used))
				lru = s;
		}
		if (free_slot == NULL && lru != NULL) {
			slot_free(lru);
			free_slot = lru;
		}
		if (free_slot != NULL) {
			snprintf(free_slot->home, sizeof(free_slot->home), "%s", home);
			free_slot->holders = 1;
			free_slot->presetters = 0;
			free_slot->last_used = now;
			rc = 0;
			goto out;
		}
		if (pthread_cond_timedwait(&agents.released, &agents.lock, &deadline) == ETIMEDOUT)
			goto out;
	}
out:
	pthread_mutex_unlock(&agents.lock);
	return rc;
}

static void slot_release(const char *home)
{
	pthread_mutex_lock(&agents.lock);
	for (unsigned i = 0; i < agents.n_slots; i++) {
		struct agent_slot *s = &agents.slots[i];

		if (strcmp(s->home, home) == 0 && s->holders > 0) {
			s->holders--;
			s->last_used = time(NULL);
			break;
		}
	}
	slots_reap(time(NULL));
	pthread_cond_broadcast(&agents.released);
	pthread_mutex_unlock(&agents.lock);
}

struct gpg_user {
	char address[GPG_ADDRESS_MAX];
	char home[CRYPTO_PATH_MAX];
	struct user_key *key; /* NULL: public-key operations only */
	gpgme_ctx_t ctx_pgp, ctx_cms;
	/* A passphrase to give once before the derived one (importing a secret key). */
	const char *first_passphrase;
	bool first_given;
	struct gpg_wkd_settings wkd;
	/* S/MIME keygrips whose passphrase this handle preset in the agent. */
	char preset[GPG_PRESET_MAX][48];
	size_t n_preset;
	bool presetting; /* counted in its slot's presetters */
	time_t preset_time;
};

static int mkdir_0700(const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (mkdir(path, 0700) == 0)
		return 0;
	if (errno == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;
	gpg_set_err(err, errlen, _("cannot create directory %s: %s"), path, strerror(errno));
	return -1;
}

static int write_conf(const char *home, const char *name, const char *text, char *err,
		      size_t errlen)
{
	char path[CRYPTO_PATH_MAX];

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", home, name) >= sizeof(path) ||
	    crypto_file_write_atomic(path, text, strlen(text), 0600, 0) != 0) {
		gpg_set_err(err, errlen, _("cannot write %s/%s: %s"), home, name, strerror(errno));
		return -1;
	}
	return 0;
}

/* True when PATH holds exactly TEXT. */
static bool file_equals(const char *path, const char *text)
{
	char buf[1024];
	size_t want = strlen(text);
	FILE *f = fopen(path, "re");
	size_t n;

	if (f == NULL)
		return false;
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	return n == want && memcmp(buf, text, want) == 0;
}

/* Creates <data_dir>/gnupg/<name> with our configuration unless it is there. */
static int home_prepare(const struct config *cfg, const char *address, char *home, size_t homelen,
			char *err, size_t errlen)
{
	char name[GPG_HOME_NAME_LEN + 1], base[CRYPTO_PATH_MAX], conf[CRYPTO_PATH_MAX];

	if (gpg_home_name(address, name) != 0) {
		gpg_set_err(err, errlen, _("invalid address \"%s\""), address);
		return -1;
	}
	if ((size_t)snprintf(base, sizeof(base), "%s/gnupg", cfg->server.data_dir) >=
		sizeof(base) ||
	    (size_t)snprintf(home, homelen, "%s/%s", base, name) >= homelen) {
		gpg_set_err(err, errlen, _("data directory path is too long"));
		return -1;
	}
	if (strlen(home) + strlen(GPG_LONGEST_SOCKET) >=
	    sizeof(((struct sockaddr_un *)0)->sun_path)) {
		gpg_set_err(err, errlen,
			    _("GnuPG home %s is too long for gpg-agent's sockets; use a "
			      "shorter data_dir"),
			    home);
		return -1;
	}
	if (mkdir_0700(base, err, errlen) != 0 || mkdir_0700(home, err, errlen) != 0)
		return -1;
	snprintf(conf, sizeof(conf), "%s/gpg-agent.conf", home);
	if (file_equals(conf, agent_conf))
		return 0;
	/* New home, or one written by an older Postern: (re)write our files,
	 * gpg-agent.conf last (it marks a complete set). */
	if (write_conf(home, "gpg.conf", gpg_conf, err, errlen) != 0 ||
	    write_conf(home, "gpgsm.conf", gpgsm_conf, err, errlen) != 0 ||
	    write_conf(home, "address", address, err, errlen) != 0 ||
	    write_conf(home, "gpg-agent.conf", agent_conf, err, errlen) != 0)
		return -1;
	return 0;
}

/* Homes belong to the account posternd runs as: root must not create them or
 * run a gpg-agent in them (the daemon could not use them afterwards). */
static bool home_owner_ok(const struct config *cfg, char *err, size_t errlen)
{
	struct passwd pw, *found = NULL;
	char buf[4096];

	if (geteuid() != 0 || cfg->server.user[0] == '\0')
		return true;
	if (getpwnam_r(cfg->server.user, &pw, buf, sizeof(buf), &found) != 0 || found == NULL ||
	    found->pw_uid == 0)
		return true;
	gpg_set_err(err, errlen,
		    _("GnuPG homes belong to the account posternd runs as; run this as \"%s\" "
		      "(e.g. sudo -u %s posternctl ...), not as root"),
		    cfg->server.user, cfg->server.user);
	return false;
}

int gpg_user_open(const struct config *cfg, const char *address, const struct user_key *key,
		  struct gpg_user **out, char *err, size_t errlen)
{
	struct gpg_user *u;
	size_t len = address ? strlen(address) : 0;

	*out = NULL;
	pthread_once(&gpgme_once, gpgme_setup);
	if (!gpgme_ok) {
		gpg_set_err(err, errlen, _("GPGME cannot use gpg and gpgsm (are they installed?)"));
		return -1;
	}
	if (len == 0 || len >= GPG_ADDRESS_MAX || strchr(address, '@') == NULL) {
		gpg_set_err(err, errlen, _("invalid address \"%s\""), address ? address : "");
		return -1;
	}
	if (!home_owner_ok(cfg, err, errlen))
		return -1;
	u = calloc(1, sizeof(*u));
	if (u == NULL) {
		gpg_set_err(err, errlen, _("out of memory"));
		return -1;
	}
	for (size_t i = 0; i <= len; i++) {
		char c = address[i];

		u->address[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
	}
	if (home_prepare(cfg, u->address, u->home, sizeof(u->home), err, errlen) != 0) {
		free(u);
		return -1;
	}
	if (slot_acquire(cfg, u->home) != 0) {
		gpg_set_err(err, errlen, _("all %u gpg-agent slots are busy; try again later"),
			    cfg->pgp.max_agents);
		free(u);
		return -1;
	}
	if (key != NULL)
		u->key = user_key_dup(key);
	u->wkd.lookup = cfg->pgp.wkd_lookup;
	u->wkd.timeout = cfg->pgp.wkd_timeout ? cfg->pgp.wkd_timeout : 10;
	snprintf(u->wkd.ca_file, sizeof(u->wkd.ca_file), "%s", cfg->pgp.wkd_ca_file);
	*out = u;
	return 0;
}

/*
 * S/MIME passphrases. gpgsm 2.2 in server mode (how GPGME drives it) ignores
 * the agent's loopback passphrase inquiry, so for an unlocked handle the
 * derived passphrase is preset in the agent for the user's S/MIME keygrips
 * (PRESET_PASSPHRASE, allowed by our gpg-agent.conf) and cleared again when
 * the handle closes. Sent over the agent's socket, never on a command line.
 */
static int agent_command(const struct gpg_user *u, const char *cmd)
{
	char sock[CRYPTO_PATH_MAX];
	gpgme_ctx_t a;
	gpgme_error_t e, op = 0;

	if ((size_t)snprintf(sock, sizeof(sock), "%s/S.gpg-agent", u->home) >= sizeof(sock) ||
	    gpgme_new(&a) != 0)
		return -1;
	e = gpgme_set_protocol(a, GPGME_PROTOCOL_ASSUAN);
	if (e == 0)
		e = gpgme_ctx_set_engine_info(a, GPGME_PROTOCOL_ASSUAN, sock, NULL);
	if (e == 0)
		e = gpgme_op_assuan_transact_ext(a, cmd, NULL, NULL, NULL, NULL, NULL, NULL, &op);
	gpgme_release(a);
	return e == 0 && op == 0 ? 0 : -1;
}

static struct agent_slot *slot_find(const char *home)
{
	for (unsigned i = 0; i < agents.n_slots; i++)
		if (strcmp(agents.slots[i].home, home) == 0)
			return &agents.slots[i];
	return NULL;
}

static void clear_one(struct gpg_user *u, const char *grip)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "CLEAR_PASSPHRASE --mode=normal %s", grip);
	if (agent_command(u, cmd) != 0)
		log_warn(_("cannot clear an S/MIME passphrase in the gpg-agent of %s"), u->home);
}

/* The last unlocked handle of a home clears every S/MIME preset in its agent
 * (other handles of the same user, in other threads, still need them before). */
static void cms_clear_presets(struct gpg_user *u)
{
	struct agent_slot *slot;
	gpgme_key_t key;
	gpgme_error_t e;

	if (!u->presetting)
		return;
	u->presetting = false;
	pthread_mutex_lock(&agents.lock);
	slot = slot_find(u->home);
	if (slot != NULL && slot->presetters > 0 && --slot->presetters > 0) {
		pthread_mutex_unlock(&agents.lock);
		u->n_preset = 0;
		return;
	}
	for (size_t i = 0; i < u->n_preset; i++)
		clear_one(u, u->preset[i]);
	/* Keys another handle preset and this one did not see. */
	e = u->ctx_cms ? gpgme_op_keylist_start(u->ctx_cms, NULL, 1) : gpg_error(GPG_ERR_EOF);
	while (e == 0 && (e = gpgme_op_keylist_next(u->ctx_cms, &key)) == 0) {
		for (gpgme_subkey_t sk = key->subkeys; sk; sk = sk->next) {
			bool done = false;

			for (size_t i = 0; i < u->n_preset; i++)
				if (sk->keygrip && strcmp(u->preset[i], sk->keygrip) == 0)
					done = true;
			if (sk->keygrip && !done && strlen(sk->keygrip) < sizeof(u->preset[0]))
				clear_one(u, sk->keygrip);
		}
		gpgme_key_unref(key);
	}
	if (u->ctx_cms)
		gpgme_op_keylist_end(u->ctx_cms);
	pthread_mutex_unlock(&agents.lock);
	u->n_preset = 0;
}

void gpg_user_cms_preset(struct gpg_user *u)
{
	char pass[GPG_PASSPHRASE_LEN + 1], hex[GPG_PASSPHRASE_LEN * 2 + 1];
	char cmd[sizeof(hex) + 96];
	gpgme_ctx_t ctx = u->ctx_cms;
	gpgme_key_t key;
	gpgme_error_t e;

	if (u->key == NULL || ctx == NULL || gpg_passphrase_derive(u->key, pass) != 0)
		return;
	if (!u->presetting) {
		struct agent_slot *slot;

		pthread_mutex_lock(&agents.lock);
		slot = slot_find(u->home);
		if (slot != NULL)
			slot->presetters++;
		pthread_mutex_unlock(&agents.lock);
		u->presetting = true;
	}
	u->preset_time = time(NULL);
	sodium_bin2hex(hex, sizeof(hex), (const unsigned char *)pass, GPG_PASSPHRASE_LEN);
	e = gpgme_op_keylist_start(ctx, NULL, 1);
	while (e == 0 && (e = gpgme_op_keylist_next(ctx, &key)) == 0) {
		for (gpgme_subkey_t sk = key->subkeys; sk; sk = sk->next) {
			bool known = false;

			if (sk->keygrip == NULL || strlen(sk->keygrip) >= sizeof(u->preset[0]))
				continue;
			for (size_t i = 0; i < u->n_preset; i++)
				if (strcmp(u->preset[i], sk->keygrip) == 0)
					known = true;
			if (known || u->n_preset >= GPG_PRESET_MAX)
				continue;
			snprintf(cmd, sizeof(cmd), "PRESET_PASSPHRASE %s -1 %s", sk->keygrip, hex);
			if (agent_command(u, cmd) == 0)
				snprintf(u->preset[u->n_preset++], sizeof(u->preset[0]), "%s",
					 sk->keygrip);
			sodium_memzero(cmd, sizeof(cmd));
		}
		gpgme_key_unref(key);
	}
	gpgme_op_keylist_end(ctx);
	sodium_memzero(hex, sizeof(hex));
	sodium_memzero(pass, sizeof(pass));
}

/* The last non-empty line of the file FD (a tool's stderr), for an error message. */
static void last_line(int fd, char *out, size_t outlen)
{
	char buf[4096];
	off_t end = lseek(fd, 0, SEEK_END),
	      from = end > (off_t)sizeof(buf) - 1 ? end - (off_t)sizeof(buf) + 1 : 0;
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, from);
	char *line;

	if (n <= 0)
		return;
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	line = strrchr(buf, '\n');
	line = line ? line + 1 : buf;
	if (strlen(line) >= outlen)
		line[outlen - 1] = '\0';
	memcpy(out, line, strlen(line) + 1);
}

/* Runs gpgsm --import FILE with the passphrase on a pipe (loopback works on the CLI). */
int gpg_user_gpgsm_import(struct gpg_user *u, const void *data, size_t len, const char *passphrase,
			  char *err, size_t errlen)
{
	char tmp[CRYPTO_PATH_MAX];
	char *argv[] = {"gpgsm",    "--homedir",       u->home, "--batch",  "--pinentry-mode",
			"loopback", "--passphrase-fd", "3",	"--import", tmp,
			NULL};
	posix_spawn_file_actions_t fa;
	int fd, logfd = -1, pfd[2] = {-1, -1}, status = -1, rc = -1;
	pid_t pid;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s/import-XXXXXX", u->home) >= sizeof(tmp) ||
	    (fd = mkstemp(tmp)) < 0) {
		gpg_set_err(err, errlen, _("cannot create a file in %s: %s"), u->home,
			    strerror(errno));
		return -1;
	}
	if (write(fd, data, len) != (ssize_t)len || close(fd) != 0) {
		gpg_set_err(err, errlen, _("cannot write %s: %s"), tmp, strerror(errno));
		unlink(tmp);
		return -1;
	}
	logfd = open(u->home, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (logfd < 0 || pipe2(pfd, O_CLOEXEC) != 0 || posix_spawn_file_actions_init(&fa) != 0) {
		gpg_set_err(err, errlen, _("cannot run gpgsm: %s"), strerror(errno));
		goto out;
	}
	posix_spawn_file_actions_adddup2(&fa, pfd[0], 3);
	posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, logfd, STDERR_FILENO);
	if (posix_spawnp(&pid, "gpgsm", &fa, NULL, argv, environ) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		gpg_set_err(err, errlen, _("cannot run gpgsm: %s"), strerror(errno));
		goto out;
	}
	posix_spawn_file_actions_destroy(&fa);
	close(pfd[0]);
	pfd[0] = -1;
	if (write(pfd[1], passphrase, strlen(passphrase)) < 0 || write(pfd[1], "\n", 1) < 0)
		log_warn(_("cannot pass the passphrase to gpgsm: %s"), strerror(errno));
	close(pfd[1]);
	pfd[1] = -1;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	/* gpgsm exits 1 for warnings too (an untrusted root in the file); the
	 * caller looks for the imported key instead. */
	if (!WIFEXITED(status) || WEXITSTATUS(status) > 1) {
		char last[200] = "";

		last_line(logfd, last, sizeof(last));
		gpg_set_err(err, errlen, _("gpgsm could not import the key and certificate: %s"),
			    last);
		goto out;
	}
	rc = 0;
out:
	if (logfd >= 0)
		close(logfd);
	if (pfd[0] >= 0)
		close(pfd[0]);
	if (pfd[1] >= 0)
		close(pfd[1]);
	fd = open(tmp, O_WRONLY);
	if (fd >= 0) {
		static const char zero[4096];

		for (size_t left = len; left > 0;) {
			size_t n = left < sizeof(zero) ? left : sizeof(zero);

			if (write(fd, zero, n) < 0)
				break;
			left -= n;
		}
		close(fd);
	}
	unlink(tmp);
	return rc;
}

void gpg_user_close(struct gpg_user *u)
{
	if (u == NULL)
		return;
	cms_clear_presets(u);
	if (u->ctx_pgp)
		gpgme_release(u->ctx_pgp);
	if (u->ctx_cms)
		gpgme_release(u->ctx_cms);
	if (u->key)
		user_key_free(u->key);
	slot_release(u->home);
	free(u);
}

static int remove_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	return (flag == FTW_DP ? rmdir(path) : unlink(path)) == 0 || errno == ENOENT ? 0 : -1;
}

int gpg_home_remove(const struct config *cfg, const char *address, char *err, size_t errlen)
{
	char lower[GPG_ADDRESS_MAX], name[GPG_HOME_NAME_LEN + 1], home[CRYPTO_PATH_MAX];
	char hash[33], wkd[CRYPTO_PATH_MAX];
	const char *at;
	struct agent_slot *slot;
	struct stat st;
	size_t len = address ? strlen(address) : 0;

	if (len == 0 || len >= sizeof(lower) || (at = strrchr(address, '@')) == NULL ||
	    gpg_home_name(address, name) != 0) {
		gpg_set_err(err, errlen, _("invalid address \"%s\""), address ? address : "");
		return -1;
	}
	if (!home_owner_ok(cfg, err, errlen))
		return -1;
	for (size_t i = 0; i <= len; i++)
		lower[i] = (address[i] >= 'A' && address[i] <= 'Z') ? (char)(address[i] - 'A' + 'a')
								    : address[i];
	if ((size_t)snprintf(home, sizeof(home), "%s/gnupg/%s", cfg->server.data_dir, name) >=
	    sizeof(home)) {
		gpg_set_err(err, errlen, _("data directory path is too long"));
		return -1;
	}
	/* The published key goes first: nothing is served for the address any more. */
	at = strrchr(lower, '@');
	if (gpg_wkd_hash(lower, (size_t)(at - lower), hash) == 0 &&
	    gpg_wkd_path(cfg->server.data_dir, at + 1, strlen(at + 1), hash, wkd, sizeof(wkd)) ==
		0 &&
	    unlink(wkd) != 0 && errno != ENOENT) {
		gpg_set_err(err, errlen, _("cannot remove %s: %s"), wkd, strerror(errno));
		return -1;
	}
	if (lstat(home, &st) != 0)
		return 0;
	pthread_mutex_lock(&agents.lock);
	slot = slot_find(home);
	if (slot != NULL && slot->holders > 0) {
		pthread_mutex_unlock(&agents.lock);
		gpg_set_err(err, errlen, _("the GnuPG home of %s is in use"), lower);
		return -1;
	}
	if (slot != NULL)
		slot_free(slot);
	else
		agent_stop(home); /* another process may have started one */
	pthread_mutex_unlock(&agents.lock);
	if (nftw(home, remove_one, 16, FTW_DEPTH | FTW_PHYS) != 0) {
		gpg_set_err(err, errlen, _("cannot remove %s: %s"), home, strerror(errno));
		return -1;
	}
	return 1;
}

const char *gpg_user_address(const struct gpg_user *u)
{
	return u->address;
}

bool gpg_user_unlocked(const struct gpg_user *u)
{
	return u->key != NULL;
}

const char *gpg_user_homedir(const struct gpg_user *u, gpgme_protocol_t proto)
{
	(void)proto;
	return u->home;
}

/* Gives gpg-agent the user's passphrase; never prompts, never caches. */
static gpgme_error_t passphrase_cb(void *hook, const char *uid_hint, const char *info,
				   int prev_was_bad, int fd)
{
	struct gpg_user *u = hook;
	char pass[GPG_PASSPHRASE_LEN + 1];
	const char *give;
	gpgme_error_t rc = 0;

	(void)uid_hint;
	(void)info;
	if (prev_was_bad)
		return gpg_error(GPG_ERR_BAD_PASSPHRASE);
	if (u->first_passphrase != NULL && !u->first_given) {
		u->first_given = true;
		give = u->first_passphrase;
	} else {
		if (u->key == NULL || gpg_passphrase_derive(u->key, pass) != 0)
			return gpg_error(GPG_ERR_NO_SECKEY);
		give = pass;
	}
	if (gpgme_io_writen(fd, give, strlen(give)) != 0 || gpgme_io_writen(fd, "\n", 1) != 0)
		rc = gpg_error(GPG_ERR_CANCELED);
	sodium_memzero(pass, sizeof(pass));
	return rc;
}

const struct gpg_wkd_settings *gpg_user_wkd_settings(const struct gpg_user *u)
{
	return &u->wkd;
}

int gpg_passphrase_derive_user(const struct gpg_user *u, char out[GPG_PASSPHRASE_LEN + 1])
{
	return u->key ? gpg_passphrase_derive(u->key, out) : -1;
}

void gpg_user_first_passphrase(struct gpg_user *u, const char *passphrase)
{
	u->first_passphrase = passphrase;
	u->first_given = false;
}

gpgme_ctx_t gpg_user_ctx(struct gpg_user *u, gpgme_protocol_t proto)
{
	gpgme_ctx_t *slot;
	gpgme_ctx_t ctx;

	if (proto == GPGME_PROTOCOL_OpenPGP)
		slot = &u->ctx_pgp;
	else if (proto == GPGME_PROTOCOL_CMS)
		slot = &u->ctx_cms;
	else
		return NULL;
	if (*slot != NULL) {
		if (proto == GPGME_PROTOCOL_CMS && u->key != NULL &&
		    time(NULL) - u->preset_time >= GPG_PRESET_RENEW_SECONDS) {
			u->n_preset = 0;
			gpg_user_cms_preset(u);
		}
		return *slot;
	}
	if (gpgme_new(&ctx) != 0)
		return NULL;
	/* Loopback for gpg only: GPGME 1.18 cannot set a pinentry mode for gpgsm
	 * (operations then fail), which gets its passphrases preset instead. */
	if (gpgme_set_protocol(ctx, proto) != 0 ||
	    gpgme_ctx_set_engine_info(ctx, proto, NULL, u->home) != 0 ||
	    (proto == GPGME_PROTOCOL_OpenPGP &&
	     gpgme_set_pinentry_mode(ctx, GPGME_PINENTRY_MODE_LOOPBACK) != 0)) {
		gpgme_release(ctx);
		return NULL;
	}
	/* GPGME 1.18 fails gpgsm operations on a context with a passphrase
	 * callback (no command handler for gpgsm): S/MIME uses presets. */
	if (proto == GPGME_PROTOCOL_OpenPGP)
		gpgme_set_passphrase_cb(ctx, passphrase_cb, u);
	gpgme_set_offline(ctx, 1);
	*slot = ctx;
	if (proto == GPGME_PROTOCOL_CMS)
		gpg_user_cms_preset(u);
	return ctx;
}
