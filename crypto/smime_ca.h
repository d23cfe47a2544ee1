/*
 * smime_ca.h - the optional organization CA for S/MIME certificates
 * (<data_dir>/smime-ca/ca.key 0600, ca.crt 0644), OpenSSL 3.
 */
#ifndef POSTERN_SMIME_CA_H
#define POSTERN_SMIME_CA_H

#include <stddef.h>

struct config;
struct gpg_user;

/* Creates the CA named NAME valid DAYS (0: ten years). Fails with errno
 * EEXIST (and a message) when one exists. 0 or -1 with ERR. */
int smime_ca_init(const struct config *cfg, const char *name, unsigned days, char *err,
		  size_t errlen);
/* The CA certificate as PEM (*PEM malloc'd). */
int smime_ca_cert_pem(const struct config *cfg, char **pem, size_t *len, char *err, size_t errlen);
/* Issues a certificate for U's address valid DAYS (0: two years): new RSA
 * key, emailProtection, SAN rfc822Name; imports key and certificate into U's
 * gpgsm home (U must be unlocked) and marks the CA trusted there. *CERT_PEM
 * (malloc'd) is the issued certificate. */
int smime_ca_issue(const struct config *cfg, struct gpg_user *u, unsigned days, char **cert_pem,
		   size_t *cert_len, char *err, size_t errlen);

#endif
