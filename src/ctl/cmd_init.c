/*
 * cmd_init.c - posternctl init: a ready-to-run data dir for development and
 * first starts. Writes DIR/postern.conf (SQLite store and TLS files in DIR,
 * listeners on 127.0.0.1 at PORT_BASE + the usual port numbers), creates a
 * self-signed certificate and the schema, and with --demo a domain and a
 * user with a generated password, printed once. Never overwrites a config.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pwd.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "crypto/crypto.h"
#include "ctl/ctl.h"
#include "store/store.h"
#include "util/i18n.h"

#define INIT_PORT_BASE_DEFAULT 10000
#define DEMO_DOMAIN "example.test"
#define DEMO_USER "demo@" DEMO_DOMAIN
#define DEMO_PASSWORD_LEN 16
/* No 0/O, 1/l/I: the password is read off a terminal and typed again. */
static const char password_alphabet[] = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";

static const struct {
	const char *name, *protocol, *tls;
	unsigned offset;
} init_listeners[] = {
    {"smtp", "smtp", "starttls", 25},
    {"submission", "submission", "starttls", 587},
    {"submissions", "submission", "implicit", 465},
    {"pop3", "pop3", "starttls", 110},
    {"pop3s", "pop3", "implicit", 995},
    {"imap", "imap", "starttls", 143},
    {"imaps", "imap", "implicit", 993},
};
#define METRICS_OFFSET 9465

static const char init_usage[] =
    N_("init --data-dir DIR [--hostname H] [--port-base N] [--user ACCOUNT] [--demo "
       "[--demo-password-file FILE]]");
static const char init_help[] = N_("create a data dir with config, certificate and store");

static int usage(const char *verb)
{
	(void)verb;
	fprintf(stderr, _("Usage:\n  posternctl %s\n"), _(init_usage));
	return CTL_EXIT_USAGE;
}

/* mkdir -p; the last component gets MODE, parents 0755. */
static int make_dirs(const char *path, mode_t mode)
{
	char buf[CONFIG_PATH_MAX];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(buf, mode) != 0 && errno != EEXIST)
		return -1;
	return 0;
}

static int write_file_excl(const char *path, const char *text, mode_t mode)
{
	size_t len = strlen(text), off = 0;
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);

	if (fd < 0)
		return -1;
	while (off < len) {
		ssize_t w = write(fd, text + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			close(fd);
			unlink(path);
			return -1;
		}
		off += (size_t)w;
	}
	if (fsync(fd) != 0 || close(fd) != 0) {
		unlink(path);
		return -1;
	}
	return 0;
}

/* Hands the data dir to the account posternd drops to (when run as root). */
static uid_t chown_uid;
static gid_t chown_gid;

static int chown_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return lchown(path, chown_uid, chown_gid) == 0 ? 0 : -1;
}

static char *config_text(const char *dir, const char *hostname, const char *user, unsigned base)
{
	char *text = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&text, &size);

	if (!f)
		return NULL;
	fprintf(f,
		"# Postern configuration written by \"posternctl init\" (docs/config.md).\n"
		"[server]\nhostname = %s\ndata_dir = %s\nlog_level = info\n%s%s%s\n"
		"[tls]\ncert_file = %s/cert.pem\nkey_file = %s/key.pem\n\n"
		"[store]\nengine = sqlite\nsqlite_path = %s/postern.db\n\n"
		"[metrics]\nenabled = yes\naddress = 127.0.0.1\nport = %u\n",
		hostname, dir, user ? "user = " : "", user ? user : "", user ? "\n" : "", dir, dir,
		dir, base + METRICS_OFFSET);
	for (size_t i = 0; i < sizeof(init_listeners) / sizeof(init_listeners[0]); i++)
		fprintf(f,
			"\n[listener %s]\nprotocol = %s\naddress = 127.0.0.1\nport = %u\n"
			"tls = %s\n",
			init_listeners[i].name, init_listeners[i].protocol,
			base + init_listeners[i].offset, init_listeners[i].tls);
	if (fclose(f) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

static void demo_password(char out[DEMO_PASSWORD_LEN + 1])
{
	for (size_t i = 0; i < DEMO_PASSWORD_LEN; i++)
		out[i] = password_alphabet[randombytes_uniform(sizeof(password_alphabet) - 1)];
	out[DEMO_PASSWORD_LEN] = '\0';
}

/* The demo domain and user; PW receives the generated password. */
static int create_demo(struct ctl *ctl, char pw[DEMO_PASSWORD_LEN + 1])
{
	unsigned char pub[32];
	bool recovery;
	int rc = store_domain_add(ctl->st, DEMO_DOMAIN);

	if (rc != STORE_OK && rc != STORE_EXISTS)
		return ctl_store_fail(ctl, rc, DEMO_DOMAIN);
	if (rc == STORE_OK)
		ctl_audit(ctl, "domain.add", DEMO_DOMAIN);
	demo_password(pw);
	return ctl_user_create(ctl, DEMO_USER, pw, DEMO_PASSWORD_LEN, pub, &recovery);
}

static int init(struct ctl *ctl, int argc, char **argv)
{
	const char *dir_arg = NULL, *hostname = "localhost", *base_arg = NULL, *pwfile = NULL;
	const char *user = NULL;
	struct passwd *pwent = NULL;
	bool demo = false;
	const struct ctl_option opts[] = {{"--data-dir", &dir_arg, NULL},
					  {"--hostname", &hostname, NULL},
					  {"--port-base", &base_arg, NULL},
					  {"--demo", NULL, &demo},
					  {"--demo-password-file", &pwfile, NULL},
					  {"--user", &user, NULL},
					  {NULL, NULL, NULL}};
	char *pos[1], dir[PATH_MAX], conf[CONFIG_PATH_MAX], cert[CONFIG_PATH_MAX];
	char key[CONFIG_PATH_MAX], err[1024], host[256], *text, *end;
	char *pw = NULL;
	unsigned long base = INIT_PORT_BASE_DEFAULT;
	struct store *st;
	int n, rc;

	if (ctl_parse_args(ctl, argc, argv, opts, pos, 0, 0, &n) != 0 || !dir_arg || !*dir_arg)
		return usage(NULL);
	if (base_arg) {
		errno = 0;
		base = strtoul(base_arg, &end, 10);
		if (errno || *end || end == base_arg || base + METRICS_OFFSET > 65535 ||
		    base_arg[0] == '-') {
			ctl_error(_("invalid --port-base \"%s\": 0 to %u"), base_arg,
				  65535 - METRICS_OFFSET);
			return usage(NULL);
		}
	}
	if (strcmp(hostname, "localhost") != 0 &&
	    ctl_domain_normalize(hostname, host, sizeof(host), err, sizeof(err)) != 0) {
		ctl_error("%s", err);
		return usage(NULL);
	}
	if (pwfile && !demo) {
		ctl_error(_("--demo-password-file needs --demo"));
		return usage(NULL);
	}
	if (user && (!(pwent = getpwnam(user)) || strpbrk(user, " \t\n#"))) {
		ctl_error(_("no such account: %s"), user);
		return usage(NULL);
	}
	if (make_dirs(dir_arg, 0700) != 0 || !realpath(dir_arg, dir)) {
		ctl_error(_("cannot create %s: %s"), dir_arg, strerror(errno));
		return CTL_EXIT_FAIL;
	}
	if (snprintf(conf, sizeof(conf), "%s/postern.conf", dir) >= (int)sizeof(conf) ||
	    snprintf(cert, sizeof(cert), "%s/cert.pem", dir) >= (int)sizeof(cert) ||
	    snprintf(key, sizeof(key), "%s/key.pem", dir) >= (int)sizeof(key) ||
	    strlen(dir) > CONFIG_PATH_MAX - 32) {
		ctl_error(_("%s: path too long"), dir);
		return CTL_EXIT_USAGE;
	}
	if (access(conf, F_OK) == 0) {
		ctl_error(_("%s already exists; init never overwrites a config"), conf);
		return CTL_EXIT_EXISTS;
	}
	if (crypto_selfsigned_cert(hostname, cert, key, err, sizeof(err)) != 0) {
		ctl_error(_("cannot create the certificate: %s"), err);
		return CTL_EXIT_FAIL;
	}
	text = config_text(dir, hostname, user, (unsigned)base);
	if (!text) {
		ctl_error(_("out of memory"));
		return CTL_EXIT_FAIL;
	}
	rc = write_file_excl(conf, text, 0600);
	free(text);
	if (rc != 0) {
		rc = errno;
		ctl_error(_("cannot write %s: %s"), conf, strerror(rc));
		return rc == EEXIST ? CTL_EXIT_EXISTS : CTL_EXIT_FAIL;
	}
	ctl->config_path = conf;
	if ((rc = ctl_store_open(ctl, &st)) != CTL_EXIT_OK)
		goto fail;
	ctl_audit(ctl, "init", dir);
	if (demo) {
		pw = sodium_malloc(DEMO_PASSWORD_LEN + 1);
		if (!pw) {
			rc = CTL_EXIT_FAIL;
			goto fail;
		}
		if ((rc = create_demo(ctl, pw)) != CTL_EXIT_OK)
			goto fail;
		if (pwfile) {
			char line[DEMO_PASSWORD_LEN + 2];

			snprintf(line, sizeof(line), "%s\n", pw);
			if (write_file_excl(pwfile, line, 0600) != 0) {
				ctl_error(_("cannot write %s: %s"), pwfile, strerror(errno));
				sodium_memzero(line, sizeof(line));
				rc = CTL_EXIT_FAIL;
				goto fail;
			}
			sodium_memzero(line, sizeof(line));
		}
	}
	ctl_close(ctl);
	if (pwent && geteuid() == 0) {
		chown_uid = pwent->pw_uid;
		chown_gid = pwent->pw_gid;
		if (nftw(dir, chown_one, 16, FTW_PHYS) != 0) {
			ctl_error(_("cannot hand %s to %s: %s"), dir, user, strerror(errno));
			rc = CTL_EXIT_FAIL;
			goto fail;
		}
	}
	if (ctl->json) {
		json_t *out =
		    json_pack("{s:b,s:s,s:s,s:s,s:i,s:{}}", "ok", 1, "data_dir", dir, "config",
			      conf, "hostname", hostname, "port_base", (int)base, "ports");

		for (size_t i = 0; out && i < sizeof(init_listeners) / sizeof(init_listeners[0]);
		     i++)
			json_object_set_new(
			    json_object_get(out, "ports"), init_listeners[i].name,
			    json_integer((json_int_t)(base + init_listeners[i].offset)));
		if (out) {
			json_object_set_new(json_object_get(out, "ports"), "metrics",
					    json_integer((json_int_t)(base + METRICS_OFFSET)));
			if (demo)
				json_object_set_new(
				    out, "demo",
				    json_pack("{s:s,s:s}", "user", DEMO_USER, "password", pw));
		}
		ctl_json_print(out);
	} else {
		printf(_("Created %s (store, certificate and config %s).\n"), dir, conf);
		printf(_("Listeners on 127.0.0.1:"));
		for (size_t i = 0; i < sizeof(init_listeners) / sizeof(init_listeners[0]); i++)
			printf(" %s %lu", init_listeners[i].name, base + init_listeners[i].offset);
		printf(_("; metrics %lu\n"), base + METRICS_OFFSET);
		if (demo) {
			printf(_("Demo user: %s\n"), DEMO_USER);
			printf(_("Password:  %s   (shown only this once)\n"), pw);
		}
		printf(_("Start the server with: posternd -c %s\n"), conf);
	}
	sodium_free(pw);
	return CTL_EXIT_OK;
fail:
	/* A half-made data dir must not block the next try. */
	ctl_close(ctl);
	unlink(conf);
	if (pw)
		sodium_free(pw);
	return rc;
}

int ctl_cmd_init(struct ctl *ctl, int argc, char **argv)
{
	if (argc >= 2 && (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0)) {
		printf("  posternctl %s\n      %s\n", _(init_usage), _(init_help));
		return CTL_EXIT_OK;
	}
	return init(ctl, argc, argv);
}
