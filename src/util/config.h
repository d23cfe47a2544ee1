/*
 * config.h - postern.conf: sections of "key = value" lines.
 *
 * Every key is documented in docs/config.md and has a safe default set by
 * config_defaults(). Listener sections repeat: "[listener NAME]".
 * config_load() rejects unknown sections and keys, malformed values and
 * unreadable certificate files with "file:line: message".
 */
#ifndef POSTERN_CONFIG_H
#define POSTERN_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_MAX_LISTENERS 16
#define CONFIG_PATH_MAX 1024

enum tls_mode { TLS_MODE_NONE = 0, TLS_MODE_STARTTLS, TLS_MODE_IMPLICIT };

/* [listener NAME] */
struct config_listener {
	char name[64];
	char protocol[16]; /* "smtp" (MX), "submission", "pop3", "imap" */
	char address[64];  /* numeric IPv4 or IPv6 address */
	uint16_t port;
	enum tls_mode tls;
};

enum store_engine { STORE_ENGINE_SQLITE = 0, STORE_ENGINE_MARIADB };

/* [store] */
struct config_store {
	enum store_engine engine;
	char sqlite_path[CONFIG_PATH_MAX]; /* default: <data_dir>/postern.db */
	char mariadb_host[256];            /* empty: use the socket */
	uint16_t mariadb_port;
	char mariadb_socket[CONFIG_PATH_MAX];
	char mariadb_user[128];
	char mariadb_password_file[CONFIG_PATH_MAX]; /* the password is read from a file */
	char mariadb_database[128];
};

struct config {
	char path[CONFIG_PATH_MAX]; /* the file this was loaded from */

	/* [server] */
	struct {
		char hostname[256];
		char data_dir[CONFIG_PATH_MAX];
		char user[64]; /* account to drop to after binding, when started as root */
		unsigned workers; /* 0: one per core */
		char log_level[16];
		bool log_syslog;
		char admin_socket[CONFIG_PATH_MAX]; /* default: <data_dir>/admin.sock */
	} server;

	/* [tls] */
	struct {
		char cert_file[CONFIG_PATH_MAX];
		char key_file[CONFIG_PATH_MAX];
		char min_version[8]; /* "1.2" or "1.3" */
	} tls;

	struct config_store store;

	/* [limits] */
	struct {
		unsigned max_connections;
		unsigned max_connections_per_ip;
		unsigned idle_timeout;     /* seconds */
		size_t max_line_length;    /* bytes, CRLF included */
		size_t max_message_size;   /* bytes */
		unsigned max_recipients;
		unsigned max_errors;       /* protocol errors before disconnect */
	} limits;

	/* [auth] */
	struct {
		unsigned cache_ttl;            /* seconds; 0 turns the cache off */
		unsigned long long argon2_ops; /* Argon2id opslimit */
		size_t argon2_mem;             /* Argon2id memlimit, bytes */
		unsigned failure_delay_ms;     /* added to every failed login */
		char recovery_public_key[CONFIG_PATH_MAX]; /* optional organization recovery key */
	} auth;

	/* [metrics] */
	struct {
		bool enabled;
		char address[64];
		uint16_t port;
		bool tls; /* HTTPS with [tls] cert_file and key_file */
	} metrics;

	/* [scan] */
	struct {
		char model_file[CONFIG_PATH_MAX]; /* default: the shipped model */
	} scan;

	/* [queue] */
	struct {
		char key_file[CONFIG_PATH_MAX]; /* default: <data_dir>/queue.key */
		char relayhost[256];   /* "host", "host:port" or "[addr]:port"; empty: MX lookup */
		uint16_t remote_port;  /* port of remote MX hosts (25) */
		char resolver[128];    /* upstream DNS "addr" or "addr@port"; empty: resolv.conf */
		unsigned max_age;      /* seconds before a deferred message bounces */
		unsigned retry_min;    /* first retry delay, seconds; doubles per attempt */
		unsigned retry_max;    /* longest retry delay, seconds */
		unsigned poll_interval; /* seconds between looks at the queue */
		unsigned timeout;      /* seconds for connect and for each SMTP reply */
		unsigned delay_warning; /* seconds before the sender hears of a delay; 0: never */
		unsigned workers;      /* messages delivered at once (1..32) */
		unsigned per_domain;   /* of them to one recipient domain at most */
		char tls_required[1024]; /* domains that only get mail over TLS (blank/comma list) */
		unsigned max_per_connection; /* transactions over one connection (0: no cap) */
	} queue;

	/* [mailauth] SPF/DKIM/DMARC checks of mail from outside (src/mailauth) */
	struct {
		unsigned dns_timeout;	 /* seconds for all lookups of one message */
		bool reject_spf_fail;	 /* SPF fail refused with 550 5.7.23, not only marked */
		bool defer_temperror;	 /* SPF/DMARC temperror answered with 451 */
		bool check_loopback;	 /* SPF evaluated for loopback clients too */
		char public_suffix_list[CONFIG_PATH_MAX];
	} mailauth;

	/* [sms] HTTP gateway for one-time codes by SMS (otp/sms.c) */
	struct {
		char gateway_url[CONFIG_PATH_MAX]; /* empty: SMS codes are off */
		char method[8];                    /* POST, PUT or GET */
		char headers[2048];                /* "Name: value" pairs separated by " | " */
		char body[2048];                   /* template with {phone} and {code} */
		char content_type[128];
		unsigned timeout;                  /* seconds for the whole request */
		char ca_file[CONFIG_PATH_MAX];     /* extra CA bundle; empty: the system's */
	} sms;

	/* [pgp] per-user GnuPG homes (crypto/gpg_home.c), WKD */
	struct {
		unsigned max_agents;           /* gpg-agents alive at once (1..1024) */
		unsigned agent_idle;           /* seconds before an idle agent is stopped */
		bool wkd_lookup;               /* fetch correspondents' keys by WKD over HTTPS */
		char wkd_ca_file[CONFIG_PATH_MAX]; /* extra CA bundle for WKD; empty: the system's */
		unsigned wkd_timeout;          /* seconds for one WKD request */
	} pgp;

	struct config_listener listeners[CONFIG_MAX_LISTENERS];
	size_t n_listeners;
};

void config_defaults(struct config *cfg);

/*
 * Loads PATH over the defaults. Returns 0, or -1 with a translated message
 * "PATH:LINE: what is wrong" in ERR.
 */
int config_load(const char *path, struct config *cfg, char *err, size_t errlen);

/* Parses a config from memory (NAME is used in messages); same rules as config_load. */
int config_parse(const char *name, const char *text, size_t len, struct config *cfg, char *err,
		 size_t errlen);

const struct config_listener *config_find_listener(const struct config *cfg, const char *protocol);

#endif
