/*
 * main.c - posternd: loads the configuration, prepares crypto, auth, the
 * scanner and the store schema, binds the listeners, drops root, starts the
 * metrics endpoint and the admin socket, then runs the network loops in the
 * foreground until SIGTERM or SIGINT. SIGHUP (or "posternctl reload")
 * reloads the TLS certificate of the mail listeners and of the HTTPS
 * metrics listener (running connections keep the old one) and the SMS
 * gateway settings.
 *
 * Signals are blocked in every thread and taken by one thread with
 * sigwait(), so handlers are ordinary code rather than async-signal-safe
 * fragments.
 */
#include <config.h>

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth/auth.h"
#include "crypto/crypto.h"
#include "daemon/protocols.h"
#include "deliver/deliver.h"
#include "mailauth/mailauth.h"
#include "net/net.h"
#include "queue/queue.h"
#include "scan/scan.h"
#include "store/store.h"
#include "trace/admin.h"
#include "trace/metrics.h"
#include "trace/wkd_http.h"
#include "util/config.h"
#include "util/i18n.h"
#include "util/log.h"

#define DEFAULT_CONFIG SYSCONFDIR "/postern/postern.conf"

static struct config cfg;

/* auth's notice sink: a security notice goes into the user's INBOX (docs/login-security.md). */
static int deliver_notice(struct store *st, const struct store_user *u, const unsigned char *msg,
			  size_t len)
{
	struct store_mailbox inbox;
	struct store_message m;

	if (store_mailbox_get(st, u->id, "INBOX", &inbox) != STORE_OK ||
	    store_begin(st) != STORE_OK)
		return -1;
	if (deliver_to_mailbox(st, u, inbox.id, 0, (int64_t)time(NULL), msg, len, NULL, &m) !=
		DELIVER_OK ||
	    store_commit(st) != STORE_OK) {
		store_rollback(st);
		return -1;
	}
	return 0;
}

static void usage(FILE *out)
{
	fprintf(out,
		_("Usage: posternd [-c FILE] [--check-config] [--version] [--help]\n"
		  "Runs the Postern mail server in the foreground.\n\n"
		  "  -c, --config FILE   configuration file (default %s)\n"
		  "      --check-config  check the configuration and exit\n"
		  "  -V, --version       print the version and exit\n"
		  "  -h, --help          print this help and exit\n"),
		DEFAULT_CONFIG);
}

static void reload_tls(void)
{
	char err[1024];

	if (net_tls_reload(&cfg, err, sizeof(err)) != 0)
		log_error(_("reload failed, keeping the current certificate: %s"), err);
	else
		log_info(_("reloaded the TLS certificate from %s"), cfg.tls.cert_file);
	if (!cfg.metrics.enabled || !cfg.metrics.tls)
		return;
	if (metrics_http_reload(cfg.tls.cert_file, cfg.tls.key_file, err, sizeof(err)) != 0)
		log_error(_("metrics listener: reload failed, keeping the current certificate: %s"),
			  err);
	else
		log_info(_("metrics listener: reloaded the TLS certificate from %s"),
			 cfg.tls.cert_file);
}

/* Rereads the config file for the settings that apply without a restart:
 * the SMS gateway ([sms]). A file that no longer loads changes nothing. */
static void reload_settings(void)
{
	struct config *fresh = malloc(sizeof(*fresh));
	char err[1024];

	if (!fresh) {
		log_error(_("reload failed: out of memory"));
		return;
	}
	if (config_load(cfg.path, fresh, err, sizeof(err)) != 0) {
		log_error(_("reload failed, keeping the current settings: %s"), err);
	} else {
		auth_configure_sms(fresh);
		log_info(_("reloaded the SMS gateway settings from %s"), cfg.path);
	}
	free(fresh);
}

static void admin_reload(void *arg)
{
	(void)arg;
	reload_tls();
	reload_settings();
}

static void admin_forget(const char *address, void *arg)
{
	(void)arg;
	auth_cache_forget(address);
	log_info(_("dropped the cached login of %s"), address);
}

static void *signal_thread(void *arg)
{
	sigset_t *set = arg;

	for (;;) {
		int sig;

		if (sigwait(set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			log_info(_("SIGHUP received"));
			reload_tls();
			reload_settings();
			continue;
		}
		log_info(_("stopping (signal %d)"), sig);
		net_stop();
		return NULL;
	}
}

/* Everything a check can find without binding sockets or touching the store. */
static int check_config(char *err, size_t errlen)
{
	for (size_t i = 0; i < cfg.n_listeners; i++) {
		if (!net_find_protocol(cfg.listeners[i].protocol)) {
			snprintf(err, errlen, _("%s: listener %s: protocol %s is not available"),
				 cfg.path, cfg.listeners[i].name, cfg.listeners[i].protocol);
			return -1;
		}
	}
	if (net_tls_reload(&cfg, err, errlen) != 0)
		return -1;
	return 0;
}

static int prepare_store(char *err, size_t errlen)
{
	struct store *st = store_open(&cfg.store, err, errlen);
	int version = 0;

	if (!st)
		return -1;
	if (store_migrate(st, &version) != 0) {
		snprintf(err, errlen, _("cannot migrate the store: %s"), store_error(st));
		store_close(st);
		return -1;
	}
	store_close(st);
	log_info(_("store schema at version %d"), version);
	return 0;
}

static int prepare_scanner(char *err, size_t errlen)
{
	if (cfg.scan.model_file[0] != '\0')
		return scan_model_load(cfg.scan.model_file, err, errlen);
	if (scan_model_load(NULL, err, errlen) != 0)
		log_warn(_("no scan model loaded: %s"), err);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"check-config", no_argument, NULL, 'k'},
	    {"version", no_argument, NULL, 'V'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *config_path = DEFAULT_CONFIG;
	bool check_only = false;
	char err[1024];
	enum log_level level;
	sigset_t sigs;
	pthread_t sig_thread;
	struct admin_handlers handlers = {admin_reload, admin_forget, NULL};
	int opt, rc = EXIT_SUCCESS;

	i18n_init();
	log_init("posternd", LOG_LEVEL_INFO, false);
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":c:Vh", options, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config_path = optarg;
			break;
		case 'k':
			check_only = true;
			break;
		case 'V':
			printf("posternd %s\n", PACKAGE_VERSION);
			return EXIT_SUCCESS;
		case 'h':
			usage(stdout);
			return EXIT_SUCCESS;
		case ':':
			fprintf(stderr, _("posternd: option %s needs an argument\n"),
				argv[optind - 1]);
			usage(stderr);
			return 2;
		default:
			fprintf(stderr, _("posternd: unknown option %s\n"), argv[optind - 1]);
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, _("posternd: unexpected argument %s\n"), argv[optind]);
		usage(stderr);
		return 2;
	}

	if (config_load(config_path, &cfg, err, sizeof(err)) != 0) {
		log_error("%s", err);
		return EXIT_FAILURE;
	}
	if (log_level_parse(cfg.server.log_level, &level) != 0)
		level = LOG_LEVEL_INFO;
	protocols_register_all();
	if (check_only) {
		if (check_config(err, sizeof(err)) != 0) {
			log_error("%s", err);
			return EXIT_FAILURE;
		}
		printf(_("%s: configuration OK\n"), config_path);
		return EXIT_SUCCESS;
	}
	log_init("posternd", level, cfg.server.log_syslog);

	/* Before any thread exists: every thread inherits the blocked set. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	if (crypto_setup() != 0) {
		log_error(_("cannot initialize the crypto library"));
		return EXIT_FAILURE;
	}
	crypto_set_argon2_cost(cfg.auth.argon2_ops, cfg.auth.argon2_mem);
	auth_setup(cfg.auth.cache_ttl);
	auth_configure(&cfg);
	auth_set_notice_sink(deliver_notice);
	/* The store is prepared after dropping root, so a database file it
	 * creates belongs to the account that uses it. */
	/* The metrics listener binds (and reads its certificate) with the
	 * others while still root; it starts serving after the drop. */
	if (prepare_scanner(err, sizeof(err)) != 0 || net_tls_reload(&cfg, err, sizeof(err)) != 0 ||
	    net_bind(&cfg, err, sizeof(err)) != 0 ||
	    (cfg.metrics.enabled &&
	     metrics_http_bind(cfg.metrics.address, cfg.metrics.port,
			       cfg.metrics.tls ? cfg.tls.cert_file : NULL,
			       cfg.metrics.tls ? cfg.tls.key_file : NULL, err, sizeof(err)) != 0) ||
	    net_drop_privileges(&cfg, err, sizeof(err)) != 0 ||
	    prepare_store(err, sizeof(err)) != 0) {
		log_error("%s", err);
		return EXIT_FAILURE;
	}
	net_set_store(store_open, store_close);
	wkd_http_set_data_dir(cfg.server.data_dir);
	if (cfg.metrics.enabled && metrics_http_run(err, sizeof(err)) != 0) {
		log_error("%s", err);
		return EXIT_FAILURE;
	}
	admin_set_blocks_handler(auth_address_blocks);
	if (admin_start(&cfg, &handlers, err, sizeof(err)) != 0) {
		log_error("%s", err);
		if (cfg.metrics.enabled)
			metrics_http_stop();
		return EXIT_FAILURE;
	}
	if (pthread_create(&sig_thread, NULL, signal_thread, &sigs) != 0) {
		log_error(_("cannot start the signal thread"));
		admin_stop();
		if (cfg.metrics.enabled)
			metrics_http_stop();
		return EXIT_FAILURE;
	}

	/* Inbound SPF/DKIM/DMARC lookups use the same resolver as delivery. */
	mailauth_set_resolver(cfg.queue.resolver);
	mailauth_set_options(&(struct mailauth_options){
	    .dns_timeout_ms = cfg.mailauth.dns_timeout * 1000u,
	    .check_loopback = cfg.mailauth.check_loopback,
	    .psl_file = cfg.mailauth.public_suffix_list,
	});
	/* Outbound delivery runs beside the listeners until shutdown (src/queue). */
	if (queue_runner_start(&cfg, err, sizeof(err)) != 0)
		log_error("%s", err);
	log_info(_("ready: %zu listeners, pid %ld"), cfg.n_listeners, (long)getpid());
	if (net_run(&cfg, err, sizeof(err)) != 0) {
		log_error("%s", err);
		rc = EXIT_FAILURE;
		pthread_kill(sig_thread, SIGTERM); /* wakes its sigwait so it ends */
	}
	pthread_join(sig_thread, NULL);
	queue_runner_stop();
	admin_stop();
	if (cfg.metrics.enabled)
		metrics_http_stop();
	log_info(_("stopped"));
	return rc;
}
