/*
 * config.c - reads postern.conf: "[section]" headers, "key = value" lines,
 * '#' comments (at the start of a line or after a blank). Every key has a
 * safe default (config_defaults); anything unknown or malformed is an error
 * "file:line: message" so a typo never silently falls back to a default.
 *
 * Keys are described by one table: the section, the name, how to parse the
 * value and where to store it. Listener sections ("[listener NAME]") repeat
 * and are checked as a whole when the file ends (required keys, duplicate
 * names and addresses, TLS without a certificate).
 */
#include <config.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/config.h"
#include "util/i18n.h"
#include "util/log.h"

#define CONFIG_LINE_MAX 4096
#define CONFIG_FILE_MAX (1024 * 1024)

enum value_type {
	VAL_STRING, /* bounded by the field size */
	VAL_UINT,   /* unsigned, no suffix */
	VAL_ULL,    /* unsigned long long, no suffix */
	VAL_SIZE,   /* bytes, K/M/G suffixes */
	VAL_PORT,   /* 1..65535 */
	VAL_BOOL,   /* yes/no/true/false/on/off/1/0 */
	VAL_ENGINE, /* sqlite|mariadb */
	VAL_LOGLEVEL,
	VAL_TLSVERSION, /* 1.2|1.3 */
	VAL_ADDRESS,	/* numeric IPv4 or IPv6 */
	VAL_PROTOCOL,	/* smtp|submission|pop3|imap */
	VAL_TLSMODE,	/* none|starttls|implicit */
};

struct key_def {
	const char *section; /* "listener" for listener sections */
	const char *name;
	enum value_type type;
	size_t offset; /* in struct config, or in struct config_listener */
	size_t size;   /* of the field, for strings */
};

#define CFG(section, name, type, field)                                                            \
	{                                                                                          \
		section, name, type, offsetof(struct config, field),                               \
		    sizeof(((struct config *)0)->field)                                            \
	}
#define LST(name, type, field)                                                                     \
	{                                                                                          \
		"listener", name, type, offsetof(struct config_listener, field),                   \
		    sizeof(((struct config_listener *)0)->field)                                   \
	}

static const struct key_def keys[] = {
    CFG("server", "hostname", VAL_STRING, server.hostname),
    CFG("server", "data_dir", VAL_STRING, server.data_dir),
    CFG("server", "user", VAL_STRING, server.user),
    CFG("server", "workers", VAL_UINT, server.workers),
    CFG("server", "log_level", VAL_LOGLEVEL, server.log_level),
    CFG("server", "log_syslog", VAL_BOOL, server.log_syslog),
    CFG("server", "admin_socket", VAL_STRING, server.admin_socket),
    CFG("tls", "cert_file", VAL_STRING, tls.cert_file),
    CFG("tls", "key_file", VAL_STRING, tls.key_file),
    CFG("tls", "min_version", VAL_TLSVERSION, tls.min_version),
    CFG("store", "engine", VAL_ENGINE, store.engine),
    CFG("store", "sqlite_path", VAL_STRING, store.sqlite_path),
    CFG("store", "mariadb_host", VAL_STRING, store.mariadb_host),
    CFG("store", "mariadb_port", VAL_PORT, store.mariadb_port),
    CFG("store", "mariadb_socket", VAL_STRING, store.mariadb_socket),
    CFG("store", "mariadb_user", VAL_STRING, store.mariadb_user),
    CFG("store", "mariadb_password_file", VAL_STRING, store.mariadb_password_file),
    CFG("store", "mariadb_database", VAL_STRING, store.mariadb_database),
    CFG("limits", "max_connections", VAL_UINT, limits.max_connections),
    CFG("limits", "max_connections_per_ip", VAL_UINT, limits.max_connections_per_ip),
    CFG("limits", "idle_timeout", VAL_UINT, limits.idle_timeout),
    CFG("limits", "max_line_length", VAL_SIZE, limits.max_line_length),
    CFG("limits", "max_message_size", VAL_SIZE, limits.max_message_size),
    CFG("limits", "max_recipients", VAL_UINT, limits.max_recipients),
    CFG("limits", "max_errors", VAL_UINT, limits.max_errors),
    CFG("auth", "cache_ttl", VAL_UINT, auth.cache_ttl),
    CFG("auth", "argon2_ops", VAL_ULL, auth.argon2_ops),
    CFG("auth", "argon2_mem", VAL_SIZE, auth.argon2_mem),
    CFG("auth", "failure_delay_ms", VAL_UINT, auth.failure_delay_ms),
    CFG("auth", "recovery_public_key", VAL_STRING, auth.recovery_public_key),
    CFG("metrics", "enabled", VAL_BOOL, metrics.enabled),
    CFG("metrics", "address", VAL_ADDRESS, metrics.address),
    CFG("metrics", "port", VAL_PORT, metrics.port),
    CFG("metrics", "tls", VAL_BOOL, metrics.tls),
    CFG("scan", "model_file", VAL_STRING, scan.model_file),
    CFG("queue", "key_file", VAL_STRING, queue.key_file),
    CFG("queue", "relayhost", VAL_STRING, queue.relayhost),
    CFG("queue", "remote_port", VAL_PORT, queue.remote_port),
    CFG("queue", "resolver", VAL_STRING, queue.resolver),
    CFG("queue", "max_age", VAL_UINT, queue.max_age),
    CFG("queue", "retry_min", VAL_UINT, queue.retry_min),
    CFG("queue", "retry_max", VAL_UINT, queue.retry_max),
    CFG("queue", "poll_interval", VAL_UINT, queue.poll_interval),
    CFG("queue", "timeout", VAL_UINT, queue.timeout),
    CFG("queue", "delay_warning", VAL_UINT, queue.delay_warning),
    CFG("queue", "workers", VAL_UINT, queue.workers),
    CFG("queue", "per_domain", VAL_UINT, queue.per_domain),
    CFG("queue", "tls_required", VAL_STRING, queue.tls_required),
    CFG("queue", "max_per_connection", VAL_UINT, queue.max_per_connection),
    CFG("mailauth", "dns_timeout", VAL_UINT, mailauth.dns_timeout),
    CFG("mailauth", "reject_spf_fail", VAL_BOOL, mailauth.reject_spf_fail),
    CFG("mailauth", "defer_temperror", VAL_BOOL, mailauth.defer_temperror),
    CFG("mailauth", "check_loopback", VAL_BOOL, mailauth.check_loopback),
    CFG("mailauth", "public_suffix_list", VAL_STRING, mailauth.public_suffix_list),
    CFG("sms", "gateway_url", VAL_STRING, sms.gateway_url),
    CFG("sms", "method", VAL_STRING, sms.method),
    CFG("sms", "headers", VAL_STRING, sms.headers),
    CFG("sms", "body", VAL_STRING, sms.body),
    CFG("sms", "content_type", VAL_STRING, sms.content_type),
    CFG("sms", "timeout", VAL_UINT, sms.timeout),
    CFG("sms", "ca_file", VAL_STRING, sms.ca_file),
    CFG("pgp", "max_agents", VAL_UINT, pgp.max_agents),
    CFG("pgp", "agent_idle", VAL_UINT, pgp.agent_idle),
    CFG("pgp", "wkd_lookup", VAL_BOOL, pgp.wkd_lookup),
    CFG("pgp", "wkd_ca_file", VAL_STRING, pgp.wkd_ca_file),
    CFG("pgp", "wkd_timeout", VAL_UINT, pgp.wkd_timeout),
    LST("protocol", VAL_PROTOCOL, protocol),
    LST("address", VAL_ADDRESS, address),
    LST("port", VAL_PORT, port),
    LST("tls", VAL_TLSMODE, tls),
};

/* Where each key was last set, for messages about values checked at the end. */
struct parse_state {
	const char *name;
	struct config *cfg;
	char *err;
	size_t errlen;
	char section[80];
	struct config_listener *listener; /* current listener section, or NULL */
	unsigned listener_line[CONFIG_MAX_LISTENERS];
	unsigned listener_port_line[CONFIG_MAX_LISTENERS];
	unsigned cert_line, key_line, engine_line, database_line, pwfile_line;
};

static int fail(struct parse_state *ps, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct parse_state *ps, unsigned line, const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(ps->err, ps->errlen, "%s:%u: %s", ps->name, line, msg);
	return -1;
}

void config_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->server.hostname, sizeof(cfg->server.hostname), "localhost");
	snprintf(cfg->server.data_dir, sizeof(cfg->server.data_dir), "/var/lib/postern");
	snprintf(cfg->server.user, sizeof(cfg->server.user), "postern");
	cfg->server.workers = 0;
	snprintf(cfg->server.log_level, sizeof(cfg->server.log_level), "info");
	cfg->server.log_syslog = false;
	snprintf(cfg->tls.min_version, sizeof(cfg->tls.min_version), "1.2");
	cfg->store.engine = STORE_ENGINE_SQLITE;
	cfg->store.mariadb_port = 3306;
	snprintf(cfg->store.mariadb_user, sizeof(cfg->store.mariadb_user), "postern");
	snprintf(cfg->store.mariadb_database, sizeof(cfg->store.mariadb_database), "postern");
	cfg->limits.max_connections = 1000;
	cfg->limits.max_connections_per_ip = 20;
	cfg->limits.idle_timeout = 300;
	cfg->limits.max_line_length = 4096;
	cfg->limits.max_message_size = 36700160;
	cfg->limits.max_recipients = 100;
	cfg->limits.max_errors = 10;
	cfg->auth.cache_ttl = 600;
	cfg->auth.argon2_ops = 2;
	cfg->auth.argon2_mem = 64u * 1024 * 1024;
	cfg->auth.failure_delay_ms = 1000;
	cfg->metrics.enabled = true;
	snprintf(cfg->metrics.address, sizeof(cfg->metrics.address), "127.0.0.1");
	cfg->metrics.port = 9465;
	snprintf(cfg->sms.method, sizeof(cfg->sms.method), "POST");
	snprintf(cfg->sms.body, sizeof(cfg->sms.body), "to={phone}&text=Your+login+code+is+{code}");
	snprintf(cfg->sms.content_type, sizeof(cfg->sms.content_type),
		 "application/x-www-form-urlencoded");
	cfg->sms.timeout = 10;
	cfg->queue.remote_port = 25;
	cfg->queue.max_age = 5 * 24 * 3600;
	cfg->queue.retry_min = 300;
	cfg->queue.retry_max = 4 * 3600;
	cfg->queue.poll_interval = 10;
	cfg->queue.timeout = 120;
	cfg->queue.delay_warning = 4 * 3600;
	cfg->queue.workers = 4;
	cfg->queue.per_domain = 2;
	cfg->queue.max_per_connection = 20;
	cfg->mailauth.dns_timeout = 10;
	snprintf(cfg->mailauth.public_suffix_list, sizeof(cfg->mailauth.public_suffix_list),
		 "/usr/share/publicsuffix/public_suffix_list.dat");
	cfg->pgp.max_agents = 16;
	cfg->pgp.agent_idle = 300;
	cfg->pgp.wkd_lookup = false;
	cfg->pgp.wkd_timeout = 10;
}

static char *trim(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
		*--end = '\0';
	return s;
}

/* Decimal digits only: no sign, no blanks, no hex. ULLONG_MAX on overflow. */
static int parse_ull(const char *s, unsigned long long *out, const char **rest)
{
	unsigned long long v = 0;

	if (!isdigit((unsigned char)*s))
		return -1;
	while (isdigit((unsigned char)*s)) {
		unsigned d = (unsigned)(*s - '0');
		if (v > (ULLONG_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
		s++;
	}
	*out = v;
	*rest = s;
	return 0;
}

static int parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = {"yes", "true", "on", "1"};
	static const char *const no[] = {"no", "false", "off", "0"};

	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -1;
}

static int parse_size(const char *s, unsigned long long *out)
{
	unsigned long long v, mult = 1;
	const char *rest;

	if (parse_ull(s, &v, &rest) != 0)
		return -1;
	if (*rest) {
		switch (toupper((unsigned char)*rest)) {
		case 'K':
			mult = 1024ULL;
			break;
		case 'M':
			mult = 1024ULL * 1024;
			break;
		case 'G':
			mult = 1024ULL * 1024 * 1024;
			break;
		default:
			return -1;
		}
		rest++;
		if (toupper((unsigned char)*rest) == 'B')
			rest++;
		if (*rest)
			return -1;
	}
	if (v > SIZE_MAX / mult)
		return -1;
	*out = v * mult;
	return 0;
}

static bool is_numeric_address(const char *s)
{
	unsigned char buf[16];

	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

static int set_value(struct parse_state *ps, unsigned line, const struct key_def *k, void *base,
		     const char *value)
{
	char *field = (char *)base + k->offset;
	unsigned long long n;
	const char *rest;
	bool b;

	switch (k->type) {
	case VAL_STRING:
		if (strlen(value) >= k->size)
			return fail(ps, line, _("value of %s is too long (at most %zu bytes)"),
				    k->name, k->size - 1);
		memcpy(field, value, strlen(value) + 1);
		return 0;
	case VAL_UINT:
		if (parse_ull(value, &n, &rest) != 0 || *rest || n > UINT_MAX)
			return fail(ps, line, _("%s must be a whole number, not \"%s\""), k->name,
				    value);
		*(unsigned *)(void *)field = (unsigned)n;
		return 0;
	case VAL_ULL:
		if (parse_ull(value, &n, &rest) != 0 || *rest)
			return fail(ps, line, _("%s must be a whole number, not \"%s\""), k->name,
				    value);
		*(unsigned long long *)(void *)field = n;
		return 0;
	case VAL_SIZE:
		if (parse_size(value, &n) != 0)
			return fail(ps, line,
				    _("%s must be a size in bytes (suffixes K, M, G), not \"%s\""),
				    k->name, value);
		*(size_t *)(void *)field = (size_t)n;
		return 0;
	case VAL_PORT:
		if (parse_ull(value, &n, &rest) != 0 || *rest || n < 1 || n > 65535)
			return fail(ps, line, _("%s must be a port from 1 to 65535, not \"%s\""),
				    k->name, value);
		*(uint16_t *)(void *)field = (uint16_t)n;
		return 0;
	case VAL_BOOL:
		if (parse_bool(value, &b) != 0)
			return fail(ps, line, _("%s must be yes or no, not \"%s\""), k->name,
				    value);
		*(bool *)(void *)field = b;
		return 0;
	case VAL_ENGINE:
		if (strcmp(value, "sqlite") == 0)
			*(enum store_engine *)(void *)field = STORE_ENGINE_SQLITE;
		else if (strcmp(value, "mariadb") == 0)
			*(enum store_engine *)(void *)field = STORE_ENGINE_MARIADB;
		else
			return fail(ps, line, _("%s must be sqlite or mariadb, not \"%s\""),
				    k->name, value);
		ps->engine_line = line;
		return 0;
	case VAL_LOGLEVEL: {
		enum log_level lvl;
		if (log_level_parse(value, &lvl) != 0)
			return fail(ps, line,
				    _("%s must be error, warn, info or debug, not \"%s\""), k->name,
				    value);
		snprintf(field, k->size, "%s", value);
		return 0;
	}
	case VAL_TLSVERSION:
		if (strcmp(value, "1.2") != 0 && strcmp(value, "1.3") != 0)
			return fail(ps, line, _("%s must be 1.2 or 1.3, not \"%s\""), k->name,
				    value);
		snprintf(field, k->size, "%s", value);
		return 0;
	case VAL_ADDRESS:
		if (strlen(value) >= k->size || !is_numeric_address(value))
			return fail(ps, line,
				    _("%s must be a numeric IPv4 or IPv6 address, not \"%s\""),
				    k->name, value);
		snprintf(field, k->size, "%s", value);
		return 0;
	case VAL_PROTOCOL:
		if (strcmp(value, "smtp") != 0 && strcmp(value, "submission") != 0 &&
		    strcmp(value, "pop3") != 0 && strcmp(value, "imap") != 0)
			return fail(ps, line,
				    _("%s must be smtp, submission, pop3 or imap, not \"%s\""),
				    k->name, value);
		snprintf(field, k->size, "%s", value);
		return 0;
	case VAL_TLSMODE:
		if (strcmp(value, "none") == 0)
			*(enum tls_mode *)(void *)field = TLS_MODE_NONE;
		else if (strcmp(value, "starttls") == 0)
			*(enum tls_mode *)(void *)field = TLS_MODE_STARTTLS;
		else if (strcmp(value, "implicit") == 0)
			*(enum tls_mode *)(void *)field = TLS_MODE_IMPLICIT;
		else
			return fail(ps, line,
				    _("%s must be none, starttls or implicit, not \"%s\""), k->name,
				    value);
		return 0;
	}
	return fail(ps, line, _("internal error: unknown value type"));
}

static int section_known(const char *name)
{
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strcmp(keys[i].section, name) == 0 && strcmp(name, "listener") != 0)
			return 1;
	return 0;
}

static int parse_section(struct parse_state *ps, unsigned line, char *s)
{
	char *end = strchr(s, ']');
	char *name;

	if (!end || *trim(end + 1) != '\0')
		return fail(ps, line, _("malformed section header (expected [name])"));
	*end = '\0';
	name = trim(s + 1);
	ps->listener = NULL;
	if (strncmp(name, "listener", 8) == 0 &&
	    (name[8] == ' ' || name[8] == '\t' || name[8] == '\0')) {
		char *lname = trim(name + 8);
		struct config *cfg = ps->cfg;

		if (*lname == '\0')
			return fail(ps, line,
				    _("a listener section needs a name: [listener NAME]"));
		if (strlen(lname) >= sizeof(cfg->listeners[0].name))
			return fail(ps, line, _("listener name \"%s\" is too long"), lname);
		for (size_t i = 0; i < cfg->n_listeners; i++)
			if (strcmp(cfg->listeners[i].name, lname) == 0)
				return fail(
				    ps, line,
				    _("duplicate listener \"%s\" (first defined on line %u)"),
				    lname, ps->listener_line[i]);
		if (cfg->n_listeners >= CONFIG_MAX_LISTENERS)
			return fail(ps, line, _("too many listeners (at most %d)"),
				    CONFIG_MAX_LISTENERS);
		ps->listener = &cfg->listeners[cfg->n_listeners];
		memset(ps->listener, 0, sizeof(*ps->listener));
		snprintf(ps->listener->name, sizeof(ps->listener->name), "%s", lname);
		ps->listener->tls = TLS_MODE_NONE;
		ps->listener_line[cfg->n_listeners] = line;
		ps->listener_port_line[cfg->n_listeners] = line;
		cfg->n_listeners++;
		snprintf(ps->section, sizeof(ps->section), "listener");
		return 0;
	}
	if (!section_known(name))
		return fail(ps, line, _("unknown section [%s]"), name);
	snprintf(ps->section, sizeof(ps->section), "%s", name);
	return 0;
}

static int parse_assignment(struct parse_state *ps, unsigned line, char *s)
{
	char *eq = strchr(s, '=');
	char *key, *value;

	if (!eq)
		return fail(ps, line, _("expected \"key = value\""));
	*eq = '\0';
	key = trim(s);
	value = trim(eq + 1);
	if (*key == '\0')
		return fail(ps, line, _("expected \"key = value\""));
	if (ps->section[0] == '\0')
		return fail(ps, line, _("\"%s\" appears before any [section]"), key);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const struct key_def *k = &keys[i];
		void *base;

		if (strcmp(k->section, ps->section) != 0 || strcmp(k->name, key) != 0)
			continue;
		base = ps->listener ? (void *)ps->listener : (void *)ps->cfg;
		if (set_value(ps, line, k, base, value) != 0)
			return -1;
		if (ps->listener && strcmp(key, "port") == 0)
			ps->listener_port_line[ps->listener - ps->cfg->listeners] = line;
		else if (strcmp(ps->section, "tls") == 0 && strcmp(key, "cert_file") == 0)
			ps->cert_line = line;
		else if (strcmp(ps->section, "tls") == 0 && strcmp(key, "key_file") == 0)
			ps->key_line = line;
		else if (strcmp(ps->section, "store") == 0 && strcmp(key, "mariadb_database") == 0)
			ps->database_line = line;
		else if (strcmp(ps->section, "store") == 0 &&
			 strcmp(key, "mariadb_password_file") == 0)
			ps->pwfile_line = line;
		return 0;
	}
	if (ps->listener)
		return fail(ps, line, _("unknown key \"%s\" in [listener %s]"), key,
			    ps->listener->name);
	return fail(ps, line, _("unknown key \"%s\" in [%s]"), key, ps->section);
}

static int check_readable(struct parse_state *ps, unsigned line, const char *what, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return fail(ps, line, _("cannot read %s %s: %s"), what, path, strerror(errno));
	close(fd);
	return 0;
}

/* "<data_dir>/NAME" into an empty path field; an error when it does not fit. */
static int derive_path(struct parse_state *ps, char *field, size_t size, const char *name)
{
	if (field[0] != '\0')
		return 0;
	if ((size_t)snprintf(field, size, "%s/%s", ps->cfg->server.data_dir, name) >= size) {
		field[0] = '\0';
		return fail(ps, 0, _("data_dir is too long"));
	}
	return 0;
}

static int check_whole(struct parse_state *ps, unsigned last_line)
{
	struct config *cfg = ps->cfg;
	bool need_cert = false;

	for (size_t i = 0; i < cfg->n_listeners; i++) {
		const struct config_listener *l = &cfg->listeners[i];

		if (l->protocol[0] == '\0')
			return fail(ps, ps->listener_line[i], _("listener \"%s\" has no protocol"),
				    l->name);
		if (l->address[0] == '\0')
			return fail(ps, ps->listener_line[i], _("listener \"%s\" has no address"),
				    l->name);
		if (l->port == 0)
			return fail(ps, ps->listener_line[i], _("listener \"%s\" has no port"),
				    l->name);
		if (l->tls != TLS_MODE_NONE)
			need_cert = true;
		for (size_t j = 0; j < i; j++) {
			const struct config_listener *o = &cfg->listeners[j];
			unsigned char a[16] = {0}, b[16] = {0};
			int fa = strchr(l->address, ':') ? AF_INET6 : AF_INET;
			int fb = strchr(o->address, ':') ? AF_INET6 : AF_INET;

			inet_pton(fa, l->address, a);
			inet_pton(fb, o->address, b);
			if (l->port == o->port && fa == fb && memcmp(a, b, sizeof(a)) == 0)
				return fail(
				    ps, ps->listener_port_line[i],
				    _("listener \"%s\" uses %s port %u, like listener \"%s\""),
				    l->name, l->address, (unsigned)l->port, o->name);
		}
	}
	if (need_cert || cfg->tls.cert_file[0] || cfg->tls.key_file[0]) {
		if (cfg->tls.cert_file[0] == '\0' || cfg->tls.key_file[0] == '\0') {
			for (size_t i = 0; i < cfg->n_listeners; i++)
				if (cfg->listeners[i].tls != TLS_MODE_NONE)
					return fail(
					    ps, ps->listener_line[i],
					    _("listener \"%s\" uses TLS but [tls] cert_file "
					      "and key_file are not both set"),
					    cfg->listeners[i].name);
			return fail(ps, cfg->tls.cert_file[0] ? ps->cert_line : ps->key_line,
				    _("[tls] cert_file and key_file must be set together"));
		}
		if (check_readable(ps, ps->cert_line, _("certificate file"), cfg->tls.cert_file) !=
			0 ||
		    check_readable(ps, ps->key_line, _("key file"), cfg->tls.key_file) != 0)
			return -1;
	}
	if (cfg->store.engine == STORE_ENGINE_MARIADB && cfg->store.mariadb_database[0] == '\0')
		return fail(ps, ps->database_line ? ps->database_line : ps->engine_line,
			    _("engine mariadb needs mariadb_database"));
	if (cfg->server.data_dir[0] == '\0')
		return fail(ps, last_line, _("[server] data_dir must not be empty"));
	if (derive_path(ps, cfg->store.sqlite_path, sizeof(cfg->store.sqlite_path), "postern.db") !=
		0 ||
	    derive_path(ps, cfg->queue.key_file, sizeof(cfg->queue.key_file), "queue.key") != 0)
		return -1;
	return 0;
}

int config_parse(const char *name, const char *text, size_t len, struct config *cfg, char *err,
		 size_t errlen)
{
	struct parse_state ps;
	char line[CONFIG_LINE_MAX + 2];
	size_t pos = 0;
	unsigned lineno = 0;

	memset(&ps, 0, sizeof(ps));
	ps.name = name;
	ps.cfg = cfg;
	ps.err = err;
	ps.errlen = errlen;
	config_defaults(cfg);
	snprintf(cfg->path, sizeof(cfg->path), "%s", name);

	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
		char *s, *hash;

		lineno++;
		if (n > CONFIG_LINE_MAX)
			return fail(&ps, lineno, _("line is longer than %d bytes"),
				    CONFIG_LINE_MAX);
		memcpy(line, text + pos, n);
		line[n] = '\0';
		pos += n + (nl ? 1 : 0);
		if (strlen(line) != n)
			return fail(&ps, lineno, _("line contains a NUL byte"));
		/* A comment starts with '#' at the beginning or after a blank,
		 * so "a#b" stays a value (e.g. a path). */
		for (hash = line; (hash = strchr(hash, '#')) != NULL; hash++) {
			if (hash == line || hash[-1] == ' ' || hash[-1] == '\t') {
				*hash = '\0';
				break;
			}
		}
		s = trim(line);
		if (*s == '\0')
			continue;
		if (*s == '[') {
			if (parse_section(&ps, lineno, s) != 0)
				return -1;
		} else if (parse_assignment(&ps, lineno, s) != 0) {
			return -1;
		}
	}
	return check_whole(&ps, lineno ? lineno : 1);
}

int config_load(const char *path, struct config *cfg, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	char *text;
	size_t len;
	int rc;

	if (!f) {
		snprintf(err, errlen, _("%s: cannot open: %s"), path, strerror(errno));
		return -1;
	}
	text = malloc(CONFIG_FILE_MAX + 1);
	if (!text) {
		fclose(f);
		snprintf(err, errlen, _("%s: out of memory"), path);
		return -1;
	}
	len = fread(text, 1, CONFIG_FILE_MAX + 1, f);
	if (ferror(f)) {
		snprintf(err, errlen, _("%s: cannot read: %s"), path, strerror(errno));
		rc = -1;
	} else if (len > CONFIG_FILE_MAX) {
		snprintf(err, errlen, _("%s: file is larger than %d bytes"), path, CONFIG_FILE_MAX);
		rc = -1;
	} else {
		rc = config_parse(path, text, len, cfg, err, errlen);
	}
	free(text);
	fclose(f);
	return rc;
}

const struct config_listener *config_find_listener(const struct config *cfg, const char *protocol)
{
	for (size_t i = 0; i < cfg->n_listeners; i++)
		if (strcmp(cfg->listeners[i].protocol, protocol) == 0)
			return &cfg->listeners[i];
	return NULL;
}
