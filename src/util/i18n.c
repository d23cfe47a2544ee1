/*
 * i18n.c - binds the gettext text domain so _() finds the translations
 * installed under LOCALEDIR for the locale of the environment.
 */
#include <config.h>

#include "util/i18n.h"

void i18n_init(void)
{
	setlocale(LC_ALL, "");
	bindtextdomain(PACKAGE, LOCALEDIR);
	bind_textdomain_codeset(PACKAGE, "UTF-8");
	textdomain(PACKAGE);
}
