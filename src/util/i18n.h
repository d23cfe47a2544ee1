/*
 * i18n.h - gettext wiring. Every message a person reads (posternctl output,
 * posternd's logs and errors) goes through _(); protocol replies stay English.
 */
#ifndef POSTERN_I18N_H
#define POSTERN_I18N_H

#include <libintl.h>
#include <locale.h>

#define _(s) gettext(s)
#define N_(s) (s)

/* Sets the locale from the environment and binds the "postern" text domain. */
void i18n_init(void);

#endif
