/*
 * util.c - helpers every posternctl command shares: loading the config and
 * the store once, reading passwords without echo, confirmations, option
 * parsing, verb dispatch, JSON output, audit records, telling a running
 * daemon to forget cached logins, and checking names and sizes.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <sodium.h>

#include "crypto/crypto.h"
#include "ctl/ctl.h"
#include "store/store.h"
#include "trace/admin.h"
#include "util/i18n.h"
#include "util/log.h"

void ctl_error(const char *fmt, ...)
{
	va_list ap;

	fputs("posternctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void ctl_note(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int ctl_config(struct ctl *ctl)
{
	char err[1024];

	if (ctl->config_loaded)
		return CTL_EXIT_OK;
	config_defaults(&ctl->cfg);
	if (config_load(ctl->config_path, &ctl->cfg, err, sizeof(err)) != 0) {
		ctl_error("%s", err);
		return CTL_EXIT_CONFIG;
	}
	crypto_set_argon2_cost(ctl->cfg.auth.argon2_ops, ctl->cfg.auth.argon2_mem);
	ctl->config_loaded = true;
	return CTL_EXIT_OK;
}

int ctl_store_open(struct ctl *ctl, struct store **out)
{
	char err[1024];
	int rc;

	if (ctl->st) {
		*out = ctl->st;
		return CTL_EXIT_OK;
	}
	rc = ctl_config(ctl);
	if (rc != CTL_EXIT_OK)
		return rc;
	ctl->st = store_open(&ctl->cfg.store, err, sizeof(err));
	if (!ctl->st) {
		ctl_error(_("cannot open the store: %s"), err);
		return CTL_EXIT_STORE;
	}
	if (store_migrate(ctl->st, &ctl->schema_version) != STORE_OK) {
		ctl_error(_("cannot migrate the store: %s"), store_error(ctl->st));
		store_close(ctl->st);
		ctl->st = NULL;
		return CTL_EXIT_STORE;
	}
	*out = ctl->st;
	return CTL_EXIT_OK;
}

struct store *ctl_store(struct ctl *ctl)
{
	struct store *st = NULL;

	if (ctl_store_open(ctl, &st) != CTL_EXIT_OK)
		return NULL;
	return st;
}

void ctl_close(struct ctl *ctl)
{
	if (ctl->st) {
		store_close(ctl->st);
		ctl->st = NULL;
	}
}

int ctl_store_fail(struct ctl *ctl, int rc, const char *what)
{
	switch (rc) {
	case STORE_NOTFOUND:
		return CTL_EXIT_NOTFOUND;
	case STORE_EXISTS:
		return CTL_EXIT_EXISTS;
	case STORE_QUOTA:
		ctl_error(_("%s: over quota"), what);
		return CTL_EXIT_FAIL;
	default:
		ctl_error(_("%s: store error: %s"), what, ctl->st ? store_error(ctl->st) : "?");
		return CTL_EXIT_STORE;
	}
}

/* Reads one line from FD byte by byte (no stdio buffer holds the secret).
 * Returns its length without the newline, or -1 on EOF before any byte, a
 * read error, or a line longer than LEN - 1. */
static ssize_t read_line_fd(int fd, char *buf, size_t len)
{
	size_t n = 0;
	bool any = false, too_long = false;

	for (;;) {
		char c;
		ssize_t r = read(fd, &c, 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		any = true;
		if (c == '\n')
			break;
		if (n + 1 < len)
			buf[n++] = c;
		else
			too_long = true;
	}
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	if (!any || too_long) {
		sodium_memzero(buf, len);
		return -1;
	}
	return (ssize_t)n;
}

/* Prompts on the terminal with echo off. Echo goes off (dropping anything
 * typed ahead) before the prompt shows, so what is typed after it stays
 * hidden and is kept. */
static ssize_t prompt_noecho(const char *prompt, char *buf, size_t len)
{
	struct termios old, quiet;
	bool restore = false;
	ssize_t n;

	if (tcgetattr(STDIN_FILENO, &old) == 0) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
		quiet.c_lflag |= ICANON;
		if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == 0)
			restore = true;
	}
	fputs(prompt, stderr);
	fflush(stderr);
	n = read_line_fd(STDIN_FILENO, buf, len);
	if (restore)
		tcsetattr(STDIN_FILENO, TCSADRAIN, &old);
	fputc('\n', stderr);
	return n;
}

ssize_t ctl_read_password(const char *prompt, bool confirm, char *buf, size_t len)
{
	ssize_t n;

	if (!isatty(STDIN_FILENO)) {
		n = read_line_fd(STDIN_FILENO, buf, len);
		if (n < 0)
			ctl_error(_("no password on standard input (one line expected, at most %zu "
				    "bytes)"),
				  len - 1);
	} else {
		n = prompt_noecho(prompt, buf, len);
		if (n >= 0 && confirm) {
			char *again = sodium_malloc(len);
			ssize_t m;

			if (!again) {
				sodium_memzero(buf, len);
				return -1;
			}
			m = prompt_noecho(_("Repeat password: "), again, len);
			if (m != n || sodium_memcmp(buf, again, (size_t)n) != 0) {
				ctl_error(_("the passwords do not match"));
				n = -1;
			}
			sodium_free(again);
		}
	}
	if (n == 0) {
		ctl_error(_("the password must not be empty"));
		n = -1;
	}
	if (n < 0)
		sodium_memzero(buf, len);
	return n;
}

bool ctl_confirm(const char *question)
{
	char answer[16];
	ssize_t n;

	if (isatty(STDIN_FILENO)) {
		fprintf(stderr, "%s [y/N] ", question);
		fflush(stderr);
	}
	n = read_line_fd(STDIN_FILENO, answer, sizeof(answer));
	if (n <= 0)
		return false;
	return strcasecmp(answer, "y") == 0 || strcasecmp(answer, "yes") == 0 ||
	       strcasecmp(answer, _("y")) == 0 || strcasecmp(answer, _("yes")) == 0;
}

void ctl_json_print(json_t *v)
{
	if (!v) {
		ctl_error(_("out of memory"));
		return;
	}
	json_dumpf(v, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
	fputc('\n', stdout);
	json_decref(v);
}

void ctl_audit(struct ctl *ctl, const char *event, const char *detail)
{
	char actor[128];
	struct passwd *pw;

	if (!ctl->st)
		return;
	pw = getpwuid(getuid());
	if (pw)
		snprintf(actor, sizeof(actor), "posternctl:%s", pw->pw_name);
	else
		snprintf(actor, sizeof(actor), "posternctl:uid=%lu", (unsigned long)getuid());
	if (store_audit(ctl->st, actor, event, detail) != STORE_OK)
		ctl_note(_("warning: the audit record could not be written: %s"),
			 store_error(ctl->st));
}

static int ignore_line(void *arg, const char *line)
{
	(void)arg;
	(void)line;
	return 0;
}

void ctl_daemon_forget(struct ctl *ctl, const char *address)
{
	char path[CONFIG_PATH_MAX], err[512];
	json_t *req;
	char *text;

	if (!ctl->config_loaded)
		return;
	if (admin_socket_path(&ctl->cfg, path, sizeof(path), err, sizeof(err)) != 0)
		return;
	if (access(path, F_OK) != 0)
		return; /* no daemon running */
	req = json_pack("{s:s,s:s}", "cmd", "forget", "address", address);
	if (!req)
		return;
	text = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (!text)
		return;
	/* A daemon that is not running has no cache to drop. */
	admin_request(path, text, ignore_line, NULL, err, sizeof(err));
	free(text);
}

static bool label_ok(const char *label, size_t len)
{
	if (len == 0 || len > 63 || label[0] == '-' || label[len - 1] == '-')
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)label[i]) && label[i] != '-')
			return false;
	return true;
}

int ctl_domain_normalize(const char *in, char *out, size_t outlen, char *err, size_t errlen)
{
	size_t len = strlen(in), start = 0, dots = 0;
	bool tld_alpha = false;

	if (len == 0 || len > 253 || len >= outlen) {
		snprintf(err, errlen, _("invalid domain \"%s\": wrong length"), in);
		return -1;
	}
	for (size_t i = 0; i <= len; i++) {
		if (in[i] != '.' && in[i] != '\0')
			continue;
		if (!label_ok(in + start, i - start)) {
			snprintf(err, errlen,
				 _("invalid domain \"%s\": labels are 1-63 letters, digits or "
				   "hyphens, not starting or ending with a hyphen"),
				 in);
			return -1;
		}
		if (in[i] == '.')
			dots++;
		else
			for (size_t j = start; j < i; j++)
				if (isalpha((unsigned char)in[j]))
					tld_alpha = true;
		start = i + 1;
	}
	if (dots == 0 || !tld_alpha) {
		snprintf(err, errlen,
			 _("invalid domain \"%s\": a mail domain needs at least two labels and a "
			   "top-level label with a letter"),
			 in);
		return -1;
	}
	for (size_t i = 0; i <= len; i++)
		out[i] = (char)tolower((unsigned char)in[i]);
	return 0;
}

/* RFC 5322 atext */
static bool atext(int c)
{
	return isalnum(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

int ctl_address_normalize(const char *in, char *out, size_t outlen, char *err, size_t errlen)
{
	const char *at = strrchr(in, '@');
	size_t local_len;
	char domain[STORE_DOMAIN_MAX + 1];

	if (!at || at == in) {
		snprintf(err, errlen, _("invalid address \"%s\": expected local@domain"), in);
		return -1;
	}
	local_len = (size_t)(at - in);
	if (local_len > 64) {
		snprintf(err, errlen, _("invalid address \"%s\": the local part is longer than 64"),
			 in);
		return -1;
	}
	for (size_t i = 0; i < local_len; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c == '.') {
			if (i == 0 || i + 1 == local_len || in[i + 1] == '.')
				goto bad_local;
		} else if (!atext(c)) {
			goto bad_local;
		}
	}
	if (ctl_domain_normalize(at + 1, domain, sizeof(domain), err, errlen) != 0)
		return -1;
	if (local_len + 1 + strlen(domain) >= outlen ||
	    local_len + 1 + strlen(domain) > STORE_ADDRESS_MAX) {
		snprintf(err, errlen, _("invalid address \"%s\": too long"), in);
		return -1;
	}
	for (size_t i = 0; i < local_len; i++)
		out[i] = (char)tolower((unsigned char)in[i]);
	out[local_len] = '@';
	strcpy(out + local_len + 1, domain);
	return 0;
bad_local:
	snprintf(err, errlen,
		 _("invalid address \"%s\": the local part may hold letters, digits and "
		   "!#$%%&'*+-/=?^_`{|}~ with single dots between them"),
		 in);
	return -1;
}

int ctl_parse_size(const char *s, int64_t *out)
{
	char *end;
	unsigned long long v, mult = 1;

	if (!isdigit((unsigned char)s[0]))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return -1;
	if (*end != '\0') {
		switch (toupper((unsigned char)*end)) {
		case 'K':
			mult = 1024ULL;
			break;
		case 'M':
			mult = 1024ULL * 1024;
			break;
		case 'G':
			mult = 1024ULL * 1024 * 1024;
			break;
		case 'T':
			mult = 1024ULL * 1024 * 1024 * 1024;
			break;
		default:
			return -1;
		}
		end++;
		if (*end == 'B' || *end == 'b')
			end++;
		if (*end != '\0')
			return -1;
	}
	if (v > (unsigned long long)INT64_MAX / mult)
		return -1;
	*out = (int64_t)(v * mult);
	return 0;
}

void ctl_format_size(int64_t bytes, char *out, size_t outlen)
{
	static const char *const units[] = {"KiB", "MiB", "GiB", "TiB"};
	double v = (double)bytes;
	size_t u = 0;

	if (bytes < 1024) {
		snprintf(out, outlen, "%" PRId64 " B", bytes);
		return;
	}
	v /= 1024.0;
	while (v >= 1024.0 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024.0;
		u++;
	}
	snprintf(out, outlen, "%.1f %s", v, units[u]);
}

void ctl_base64(const unsigned char *bin, size_t len, char *out, size_t outlen)
{
	if (outlen < sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL)) {
		if (outlen)
			out[0] = '\0';
		return;
	}
	sodium_bin2base64(out, outlen, bin, len, sodium_base64_VARIANT_ORIGINAL);
}

size_t ctl_header_length(const unsigned char *msg, size_t len, size_t max)
{
	size_t hl = len;

	for (size_t i = 0; i + 1 < len; i++) {
		if (msg[i] == '\n' && (msg[i + 1] == '\n' ||
				       (msg[i + 1] == '\r' && i + 2 < len && msg[i + 2] == '\n'))) {
			hl = i + 1;
			break;
		}
	}
	return hl < max ? hl : max;
}

int ctl_parse_args(struct ctl *ctl, int argc, char **argv, const struct ctl_option *opts,
		   char **pos, int min_pos, int max_pos, int *npos)
{
	bool only_positional = false;
	int n = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const struct ctl_option *o = NULL;
		size_t namelen;
		const char *eq;

		if (only_positional || a[0] != '-' || a[1] == '\0') {
			if (n >= max_pos) {
				ctl_error(_("unexpected argument \"%s\""), a);
				return -1;
			}
			pos[n++] = argv[i];
			continue;
		}
		if (strcmp(a, "--") == 0) {
			only_positional = true;
			continue;
		}
		if (strcmp(a, "--json") == 0) {
			ctl->json = true;
			continue;
		}
		eq = strchr(a, '=');
		namelen = eq ? (size_t)(eq - a) : strlen(a);
		for (size_t k = 0; opts && opts[k].name; k++) {
			if (strlen(opts[k].name) == namelen &&
			    strncmp(opts[k].name, a, namelen) == 0) {
				o = &opts[k];
				break;
			}
		}
		if (!o) {
			ctl_error(_("unknown option \"%s\""), a);
			return -1;
		}
		if (o->value) {
			if (eq) {
				*o->value = eq + 1;
			} else if (i + 1 < argc) {
				*o->value = argv[++i];
			} else {
				ctl_error(_("option %s needs a value"), o->name);
				return -1;
			}
		} else {
			if (eq) {
				ctl_error(_("option %s takes no value"), o->name);
				return -1;
			}
			if (o->flag)
				*o->flag = true;
		}
	}
	if (n < min_pos) {
		ctl_error(_("missing argument"));
		return -1;
	}
	*npos = n;
	return 0;
}

int ctl_usage(const struct ctl_verb *verbs, size_t n, const char *verb)
{
	fprintf(stderr, _("Usage:\n"));
	for (size_t i = 0; i < n; i++)
		if (!verb || strcmp(verbs[i].name, verb) == 0)
			fprintf(stderr, "  posternctl %s\n", _(verbs[i].usage));
	return CTL_EXIT_USAGE;
}

int ctl_dispatch(struct ctl *ctl, const struct ctl_verb *verbs, size_t n, int argc, char **argv)
{
	if (argc >= 2 && (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0)) {
		for (size_t i = 0; i < n; i++)
			printf("  posternctl %s\n      %s\n", _(verbs[i].usage), _(verbs[i].help));
		return CTL_EXIT_OK;
	}
	if (argc < 2) {
		ctl_error(_("%s: a command is missing"), argv[0]);
		return ctl_usage(verbs, n, NULL);
	}
	for (size_t i = 0; i < n; i++)
		if (strcmp(verbs[i].name, argv[1]) == 0)
			return verbs[i].fn(ctl, argc - 1, argv + 1);
	ctl_error(_("%s: unknown command \"%s\""), argv[0], argv[1]);
	return ctl_usage(verbs, n, NULL);
}
