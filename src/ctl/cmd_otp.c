/*
 * cmd_otp.c - posternctl otp enroll|reset|status|disable USER: TOTP second
 * factor of a user.
 *
 * sms sends a test code to a phone number and, once it is typed back, makes
 * logins of that user ask for SMS codes (see otp/sms.c).
 * enroll makes a random secret, shows it as an otpauth:// URI and a QR code
 * (libqrencode, drawn with UTF-8 half blocks: two module rows per text line),
 * and enables it only after a first valid code comes back, so a user cannot
 * be locked out by a secret their app never read. It then prints ten
 * single-use recovery codes, kept only as hashes. The secret is sealed to the
 * server key: the daemon must check a code before the user's key is unlocked.
 * reset does the same for an enrolled user; the old secret keeps working
 * until the new one is confirmed.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <qrencode.h>
#include <sodium.h>

#include "auth/auth.h"
#include "crypto/crypto.h"
#include "ctl/ctl.h"
#include "otp/otp.h"
#include "store/store.h"
#include "util/i18n.h"

#define OTP_ISSUER "Postern"
#define OTP_CODE_TRIES 3 /* on a terminal; one line when stdin is not one */
#define QR_QUIET_ZONE 2	 /* modules of light border around the symbol */

static int usage(const char *verb);

/* Looks USER up; an exit code, with *U filled on CTL_EXIT_OK. */
static int find_user(struct ctl *ctl, const char *verb, const char *arg, struct store **st,
		     struct store_user *u)
{
	int rc = ctl_user_load(ctl, arg, st, u);

	return rc == CTL_EXIT_USAGE ? usage(verb) : rc;
}

/* Is module (X, Y) dark? Outside the symbol (the quiet zone) is light. */
static bool qr_dark(const QRcode *qr, int x, int y)
{
	if (x < 0 || y < 0 || x >= qr->width || y >= qr->width)
		return false;
	return qr->data[y * qr->width + x] & 1;
}

/* Draws light modules as ink so the code reads on dark and light terminals alike. */
static void qr_print(const char *text)
{
	QRcode *qr = QRcode_encodeString(text, 0, QR_ECLEVEL_L, QR_MODE_8, 1);

	if (qr == NULL) {
		ctl_note(_("cannot draw the QR code; enter the secret by hand"));
		return;
	}
	for (int y = -QR_QUIET_ZONE; y < qr->width + QR_QUIET_ZONE; y += 2) {
		for (int x = -QR_QUIET_ZONE; x < qr->width + QR_QUIET_ZONE; x++) {
			bool top = !qr_dark(qr, x, y), bottom = !qr_dark(qr, x, y + 1);

			fputs(top && bottom ? "\u2588"
			      : top	    ? "\u2580"
			      : bottom	    ? "\u2584"
					    : " ",
			      stdout);
		}
		fputc('\n', stdout);
	}
	QRcode_free(qr);
}

/* Reads codes until one matches SECRET; returns its step or -1. */
static int64_t confirm_code(const unsigned char *secret)
{
	int tries = isatty(STDIN_FILENO) ? OTP_CODE_TRIES : 1;
	char line[64];

	for (int i = 0; i < tries; i++) {
		ssize_t n =
		    ctl_read_password(_("Code shown by the app: "), false, line, sizeof(line));
		int64_t step;

		if (n < 0)
			return -1;
		step = totp_verify(secret, OTP_SECRET_BYTES, line, (int64_t)time(NULL), -1);
		sodium_memzero(line, sizeof(line));
		if (step >= 0)
			return step;
		ctl_error(_("that code does not match (check the device's clock)"));
	}
	return -1;
}

static int enroll(struct ctl *ctl, int argc, char **argv, bool reset)
{
	const char *verb = reset ? "reset" : "enroll";
	char *pos[1], b32[OTP_SECRET_B32_MAX], uri[OTP_URI_MAX];
	char codes[OTP_RECOVERY_CODES][OTP_RECOVERY_CODE_LEN + 1];
	unsigned char secret[OTP_SECRET_BYTES];
	struct otp_state s;
	struct store *st;
	struct store_user u;
	struct user_key *server_key = NULL;
	bool has_totp;
	int64_t step;
	int n, rc;

	if (ctl_parse_args(ctl, argc, argv, NULL, pos, 1, 1, &n) != 0)
		return usage(verb);
	if ((rc = find_user(ctl, verb, pos[0], &st, &u)) != CTL_EXIT_OK)
		return rc;
	memset(&s, 0, sizeof(s));
	rc = otp_state_load(st, u.id, &s);
	has_totp = rc == STORE_OK && s.sealed_secret != NULL;
	otp_state_clear(&s);
	if (rc == STORE_ERR) {
		rc = ctl_store_fail(ctl, rc, u.address);
		goto out;
	}
	if (!reset && has_totp) {
		ctl_error(_("%s already uses TOTP codes (\"otp reset\" replaces the secret)"),
			  u.address);
		rc = CTL_EXIT_EXISTS;
		goto out;
	}
	if (reset && !has_totp) {
		ctl_error(_("%s does not use TOTP codes (\"otp enroll\" starts)"), u.address);
		rc = CTL_EXIT_NOTFOUND;
		goto out;
	}
	if (crypto_server_key_load(ctl->cfg.queue.key_file, &server_key) != 0) {
		ctl_error(_("cannot read the server key %s"), ctl->cfg.queue.key_file);
		rc = CTL_EXIT_FAIL;
		goto out;
	}
	randombytes_buf(secret, sizeof(secret));
	if (totp_secret_base32(secret, sizeof(secret), b32, sizeof(b32)) != 0 ||
	    totp_uri(OTP_ISSUER, u.address, b32, uri, sizeof(uri)) != 0) {
		ctl_error(_("cannot encode the secret"));
		rc = CTL_EXIT_FAIL;
		goto out;
	}
	if (ctl->json) {
		ctl_json_print(
		    json_pack("{s:s,s:s,s:s}", "address", u.address, "secret", b32, "uri", uri));
	} else {
		printf(_("Secret: %s\n"), b32);
		printf(_("URI: %s\n"), uri);
		qr_print(uri);
		printf(_("Scan the code (or type the secret) into an authenticator app.\n"));
	}
	fflush(stdout);
	step = confirm_code(secret);
	if (step < 0) {
		ctl_error(_("no valid code: one-time codes stay as they were for %s"), u.address);
		rc = CTL_EXIT_FAIL;
		goto out;
	}
	/* Reread: SMS settings made meanwhile stay; secret and recovery codes are new. */
	if (otp_state_load(st, u.id, &s) == STORE_ERR) {
		rc = ctl_store_fail(ctl, STORE_ERR, u.address);
		goto out;
	}
	s.enabled = true;
	s.last_step = step; /* the code just shown may not log in again */
	s.enrolled = (int64_t)time(NULL);
	if (otp_state_set_secret(&s, server_key, secret, sizeof(secret)) != 0 ||
	    recovery_codes_generate(&s, codes) != 0) {
		otp_state_clear(&s);
		ctl_error(_("cannot seal the secret to the server key"));
		rc = CTL_EXIT_FAIL;
		goto out;
	}
	rc = otp_state_save(st, u.id, &s);
	otp_state_clear(&s);
	if (rc != STORE_OK) {
		rc = ctl_store_fail(ctl, rc, u.address);
		goto wipe;
	}
	ctl_audit(ctl, reset ? "otp.reset" : "otp.enroll", u.address);
	ctl_security_notice(ctl, st, &u, AUTH_NOTICE_OTP_ENROLLED,
			    reset ? "new TOTP secret" : "TOTP");
	ctl_daemon_forget(ctl, u.address);
	if (ctl->json) {
		json_t *arr = json_array();

		for (size_t i = 0; i < OTP_RECOVERY_CODES; i++)
			json_array_append_new(arr, json_string(codes[i]));
		ctl_json_print(json_pack("{s:b,s:s,s:o}", "enabled", 1, "address", u.address,
					 "recovery_codes", arr));
	} else {
		printf(_("One-time codes are on for %s. Mail clients log in with the password "
			 "followed directly by the current code, or with an app password.\n"),
		       u.address);
		printf(_("Recovery codes (each works once in place of a code; keep them safe):\n"));
		for (size_t i = 0; i < OTP_RECOVERY_CODES; i++)
			printf("  %s\n", codes[i]);
	}
	rc = CTL_EXIT_OK;
wipe:
	sodium_memzero(codes, sizeof(codes));
out:
	sodium_memzero(secret, sizeof(secret));
	user_key_free(server_key);
	store_user_clear(&u);
	return rc;
}

static int otp_enroll(struct ctl *ctl, int argc, char **argv)
{
	return enroll(ctl, argc, argv, false);
}

static int otp_reset(struct ctl *ctl, int argc, char **argv)
{
	return enroll(ctl, argc, argv, true);
}

/* Prints the recovery codes (or their JSON) after an enrolment. */
static void print_recovery(struct ctl *ctl, const char *address, bool json_sms,
			   char codes[OTP_RECOVERY_CODES][OTP_RECOVERY_CODE_LEN + 1], size_t n)
{
	if (ctl->json) {
		json_t *arr = json_array();

		for (size_t i = 0; i < n; i++)
			json_array_append_new(arr, json_string(codes[i]));
		ctl_json_print(json_pack("{s:b,s:s,s:b,s:o}", "enabled", 1, "address", address,
					 "sms", json_sms, "recovery_codes", arr));
		return;
	}
	if (n == 0)
		return;
	printf(_("Recovery codes (each works once in place of a code; keep them safe):\n"));
	for (size_t i = 0; i < n; i++)
		printf("  %s\n", codes[i]);
}

static int otp_sms(struct ctl *ctl, int argc, char **argv)
{
	const char *phone = NULL;
	const struct ctl_option opts[] = {{"--phone", &phone, NULL}, {NULL, NULL, NULL}};
	char *pos[1], code[OTP_DIGITS + 1], line[64], err[512];
	char codes[OTP_RECOVERY_CODES][OTP_RECOVERY_CODE_LEN + 1];
	char detail[STORE_ADDRESS_MAX + 32];
	struct otp_state s;
	struct store *st;
	struct store_user u;
	size_t new_codes = 0;
	int64_t now = (int64_t)time(NULL);
	ssize_t len;
	int n, rc;

	if (ctl_parse_args(ctl, argc, argv, opts, pos, 1, 1, &n) != 0)
		return usage("sms");
	if (!sms_phone_valid(phone)) {
		ctl_error(_("--phone needs a number in international form: + and 6 to 15 digits"));
		return usage("sms");
	}
	if ((rc = find_user(ctl, "sms", pos[0], &st, &u)) != CTL_EXIT_OK)
		return rc;
	auth_configure_sms(&ctl->cfg);
	rc = otp_state_load(st, u.id, &s);
	if (rc == STORE_ERR) {
		rc = ctl_store_fail(ctl, rc, u.address);
		goto out;
	}
	/* Prove the number reaches the user before logins depend on it. */
	snprintf(code, sizeof(code), "%06u", (unsigned)randombytes_uniform(1000000));
	if (sms_send(phone, code, err, sizeof(err)) != 0) {
		ctl_error("%s", err);
		rc = CTL_EXIT_FAIL;
		goto out;
	}
	len = ctl_read_password(_("Code received by SMS: "), false, line, sizeof(line));
	if (len != OTP_DIGITS || sodium_memcmp(line, code, OTP_DIGITS) != 0) {
		if (len >= 0)
			ctl_error(_("that is not the code sent to %s; nothing changed"), phone);
		rc = CTL_EXIT_FAIL;
		goto out;
	}
	if (!s.enabled) {
		otp_state_clear(&s);
		memset(&s, 0, sizeof(s));
		s.enabled = true;
		s.enrolled = now;
		if (recovery_codes_generate(&s, codes) != 0) {
			ctl_error(_("cannot make recovery codes"));
			rc = CTL_EXIT_FAIL;
			goto out;
		}
		new_codes = OTP_RECOVERY_CODES;
	}
	snprintf(s.sms_phone, sizeof(s.sms_phone), "%s", phone);
	s.sms_expires = 0;
	if ((rc = otp_state_save(st, u.id, &s)) != STORE_OK) {
		rc = ctl_store_fail(ctl, rc, u.address);
		goto out;
	}
	snprintf(detail, sizeof(detail), "%s %s", u.address, phone);
	ctl_audit(ctl, "otp.sms", detail);
	ctl_security_notice(ctl, st, &u, AUTH_NOTICE_OTP_ENROLLED, "SMS codes");
	ctl_daemon_forget(ctl, u.address);
	if (!ctl->json)
		printf(
		    _("SMS codes are on for %s at %s. A mail client logging in with the password "
		      "alone makes the server send a code; then the password followed by the "
		      "code logs in.\n"),
		    u.address, phone);
	print_recovery(ctl, u.address, true, codes, new_codes);
	rc = CTL_EXIT_OK;
out:
	sodium_memzero(code, sizeof(code));
	sodium_memzero(line, sizeof(line));
	sodium_memzero(codes, sizeof(codes));
	otp_state_clear(&s);
	store_user_clear(&u);
	return rc;
}

static int otp_status(struct ctl *ctl, int argc, char **argv)
{
	char *pos[1];
	struct otp_state s;
	struct app_password_list apps;
	struct store *st;
	struct store_user u;
	int n, rc;

	if (ctl_parse_args(ctl, argc, argv, NULL, pos, 1, 1, &n) != 0)
		return usage("status");
	if ((rc = find_user(ctl, "status", pos[0], &st, &u)) != CTL_EXIT_OK)
		return rc;
	rc = otp_state_load(st, u.id, &s);
	if (rc == STORE_ERR || app_passwords_load(st, u.id, &apps) != STORE_OK) {
		otp_state_clear(&s);
		rc = ctl_store_fail(ctl, STORE_ERR, u.address);
		store_user_clear(&u);
		return rc;
	}
	if (ctl->json) {
		ctl_json_print(json_pack("{s:s,s:b,s:b,s:s,s:I,s:i,s:i}", "address", u.address,
					 "totp", s.enabled && s.sealed_secret != NULL, "sms",
					 s.enabled && s.sms_phone[0] != '\0', "phone", s.sms_phone,
					 "enrolled", (json_int_t)s.enrolled, "recovery_codes_left",
					 (int)recovery_codes_left(&s), "app_passwords",
					 (int)apps.n));
	} else if (s.enabled) {
		char when[64];
		time_t t = (time_t)s.enrolled;
		struct tm tm;

		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", gmtime_r(&t, &tm));
		printf(_("%s: one-time codes on since %s (%s%s%s), %zu recovery codes left, %zu "
			 "app passwords\n"),
		       u.address, when, s.sealed_secret != NULL ? "TOTP" : "",
		       s.sealed_secret != NULL && s.sms_phone[0] ? ", " : "",
		       s.sms_phone[0] ? s.sms_phone : "", recovery_codes_left(&s), apps.n);
	} else {
		printf(_("%s: one-time codes off, %zu app passwords\n"), u.address, apps.n);
	}
	otp_state_clear(&s);
	app_passwords_clear(&apps);
	store_user_clear(&u);
	return CTL_EXIT_OK;
}

static int otp_disable(struct ctl *ctl, int argc, char **argv)
{
	char *pos[1];
	struct otp_state s;
	struct store *st;
	struct store_user u;
	int n, rc;

	if (ctl_parse_args(ctl, argc, argv, NULL, pos, 1, 1, &n) != 0)
		return usage("disable");
	if ((rc = find_user(ctl, "disable", pos[0], &st, &u)) != CTL_EXIT_OK)
		return rc;
	rc = otp_state_load(st, u.id, &s);
	otp_state_clear(&s);
	if (rc == STORE_NOTFOUND) {
		ctl_error(_("%s does not use one-time codes"), u.address);
		store_user_clear(&u);
		return CTL_EXIT_NOTFOUND;
	}
	memset(&s, 0, sizeof(s)); /* disabled: no secret, no recovery codes */
	if (rc == STORE_OK)
		rc = otp_state_save(st, u.id, &s);
	if (rc != STORE_OK) {
		rc = ctl_store_fail(ctl, rc, u.address);
		store_user_clear(&u);
		return rc;
	}
	ctl_audit(ctl, "otp.disable", u.address);
	ctl_security_notice(ctl, st, &u, AUTH_NOTICE_OTP_REMOVED, NULL);
	if (ctl->json)
		ctl_json_print(json_pack("{s:b,s:s}", "ok", 1, "address", u.address));
	else
		printf(_("one-time codes are off for %s; the password alone logs in again\n"),
		       u.address);
	store_user_clear(&u);
	return CTL_EXIT_OK;
}

static const struct ctl_verb verbs[] = {
    {"disable", otp_disable, N_("otp disable ADDRESS"),
     N_("turn one-time codes off (secret and recovery codes are deleted)")},
    {"enroll", otp_enroll, N_("otp enroll ADDRESS"),
     N_("create a TOTP secret, show it as URI and QR code, enable it after a first valid "
	"code (stdin), print recovery codes")},
    {"reset", otp_reset, N_("otp reset ADDRESS"),
     N_("replace the TOTP secret and recovery codes of an enrolled user")},
    {"sms", otp_sms, N_("otp sms ADDRESS --phone +NUMBER"),
     N_("send a code to the number, and once it comes back (stdin) use SMS codes")},
    {"status", otp_status, N_("otp status ADDRESS"),
     N_("whether one-time codes are on, recovery codes left, app passwords")},
};

static int usage(const char *verb)
{
	return ctl_usage(verbs, sizeof(verbs) / sizeof(verbs[0]), verb);
}

int ctl_cmd_otp(struct ctl *ctl, int argc, char **argv)
{
	return ctl_dispatch(ctl, verbs, sizeof(verbs) / sizeof(verbs[0]), argc, argv);
}
