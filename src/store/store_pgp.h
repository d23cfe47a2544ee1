/*
 * store_pgp.h - OpenPGP/S-MIME policies per domain or per user (table
 * pgp_policies, migration 003). Read by src/deliver/pgp_policy.c, written by
 * posternctl pgp policy. Same conventions as store.h.
 */
#ifndef POSTERN_STORE_PGP_H
#define POSTERN_STORE_PGP_H

#include "store/store.h"

/* One row. An empty SIGN/ENCRYPT or a negative DECRYPT_INBOUND means "not set
 * here" (inherited from the domain, then the default). */
struct store_pgp_policy {
	char name[STORE_ADDRESS_MAX + 1]; /* domain or address, lower case */
	char sign[16];			  /* "always", "never" or "" */
	char encrypt[16];		  /* "never", "if-possible", "required" or "" */
	int decrypt_inbound;		  /* 1, 0 or -1 */
};

/* NAME: a domain or an address. STORE_OK or STORE_NOTFOUND. */
int store_pgp_policy_get(struct store *st, const char *name, struct store_pgp_policy *out);
/* Replaces the row of P->name (lower-cased here); values are checked. */
int store_pgp_policy_set(struct store *st, const struct store_pgp_policy *p);
/* STORE_NOTFOUND when there was no row. */
int store_pgp_policy_del(struct store *st, const char *name);
typedef int (*store_pgp_policy_cb)(void *arg, const struct store_pgp_policy *p);
/* Every row, by name; a non-zero return from CB stops. */
int store_pgp_policy_list(struct store *st, store_pgp_policy_cb cb, void *arg);

#endif
