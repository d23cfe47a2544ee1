/*
 * gpg_internal.h - helpers shared by crypto/gpg_*.c only.
 */
#ifndef POSTERN_GPG_INTERNAL_H
#define POSTERN_GPG_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "crypto/gpg_home.h"

struct gpg_wkd_settings {
	bool lookup;
	unsigned timeout;
	char ca_file[1024];
};

const struct gpg_wkd_settings *gpg_user_wkd_settings(const struct gpg_user *u);

/* snprintf into ERR when it is not NULL. */
void gpg_set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The passphrase callback gives PASSPHRASE once (the old passphrase of a key
 * being imported), then the derived one. PASSPHRASE must outlive its use;
 * NULL clears it. */
void gpg_user_first_passphrase(struct gpg_user *u, const char *passphrase);

/* The derived passphrase of an unlocked handle; -1 when locked. */
int gpg_passphrase_derive_user(const struct gpg_user *u, char out[GPG_PASSPHRASE_LEN + 1]);

/* Presets the derived passphrase for the user's S/MIME secret keys in the
 * agent (unlocked handles only; cleared by gpg_user_close). Call again after
 * adding an S/MIME key. */
void gpg_user_cms_preset(struct gpg_user *u);

/* gpgsm --import of DATA (a PKCS#12 file protected by PASSPHRASE, which also
 * becomes the protection of the key in the agent). */
int gpg_user_gpgsm_import(struct gpg_user *u, const void *data, size_t len, const char *passphrase,
			  char *err, size_t errlen);

#endif
