/*
 * stego_rewrite.h - the submission rewrite: mail submitted with the header
 * "X-Postern-Stego: yes" reaches each local recipient as an innocuous text
 * plus a PNG that carries the original message sealed to that recipient's
 * key (docs/stego.md). Built into libpostern_stego.a.
 */
#ifndef POSTERN_STEGO_REWRITE_H
#define POSTERN_STEGO_REWRITE_H

#include <stdbool.h>
#include <stddef.h>

#include "deliver/deliver.h"
#include "stego/stego.h"

#define STEGO_REWRITE_HEADER "X-Postern-Stego"
#define STEGO_REWRITE_PASSWORD_HEADER "X-Postern-Stego-Password"
#define STEGO_REWRITE_PASSWORD_MAX 1024

/* What "X-Postern-Stego: yes[; cover=attached|generated]" asks for. */
struct stego_request {
	bool attached_cover; /* the first top-level image/png part is the cover */
};

/* "X-Postern-Stego-Password: SECRET": copies for other servers' users. */
struct stego_password {
	bool present;
	bool invalid; /* repeated, empty or over STEGO_REWRITE_PASSWORD_MAX bytes */
	char value[STEGO_REWRITE_PASSWORD_MAX + 1];
	size_t len;
};

/* True when the header section of MSG has "X-Postern-Stego: yes" (with or
 * without parameters, well-formed or not: the rewrite judges them). */
bool stego_rewrite_requested(const unsigned char *msg, size_t len);

/* Parses the X-Postern-Stego field of MSG into REQ. -1 with a reason
 * (English) in ERR when it is missing, repeated or has an unknown parameter. */
int stego_rewrite_parse(const unsigned char *msg, size_t len, struct stego_request *req, char *err,
			size_t errlen);

/*
 * Takes the password out of submitted mail before anything else sees it:
 * every X-Postern-Stego-Password field (with its continuation lines) leaves
 * the header section of MSG in place, the bytes freed at the end are wiped,
 * and the first field's value (unfolded, trimmed) goes to PW (wipe it after
 * use). Returns the new length.
 */
size_t stego_rewrite_take_password(unsigned char *msg, size_t len, struct stego_password *pw);

/*
 * The sender's cover (stego_cover.c): the first image/png part at the top
 * level of the multipart MSG, decoded into *PNG, and MSG without that part
 * (byte for byte otherwise) in *REST; both malloc'd. -1 with a reason in
 * ERR when there is no such part or it cannot be decoded.
 */
int stego_cover_take(const unsigned char *msg, size_t len, unsigned char **png, size_t *png_len,
		     unsigned char **rest, size_t *rest_len, char *err, size_t errlen);

/* 0 when COVER is a PNG that holds LEN bytes in MODE; else -1 with a reason
 * that names the size needed. */
int stego_rewrite_check_cover(const unsigned char *cover, size_t cover_len, size_t len,
			      enum stego_mode mode, char *err, size_t errlen);

/* The rewritten message (*OUT malloc'd): the routing headers of MSG, a
 * neutral subject, a short text and a PNG that hides all of MSG for SECRET
 * (a recipient's public key or a password), made from COVER when not NULL,
 * else generated. The picture is attached as COVER_NAME (the sender's name
 * of the cover, sanitised; NULL or empty for none), as "picture.png" for a
 * generated cover. Returns 0, or -1 with a reason (English) in ERR. */
int stego_rewrite_message(const struct stego_secret *secret, const unsigned char *cover,
			  size_t cover_len, const char *cover_name, const unsigned char *msg,
			  size_t len, unsigned char **out, size_t *out_len, char *err,
			  size_t errlen);

/*
 * deliver_message() for a message that asks for the rewrite: each local
 * user gets a copy hidden for their own key; other servers' users get one
 * copy hidden under the sender's password through the outbound queue, and
 * without a password they are refused. All copies are stored in one
 * transaction or none is. The password never reaches a stored or queued
 * message.
 */
enum deliver_status stego_rewrite_deliver(struct store *st, const struct config *cfg,
					  const struct deliver_envelope *env,
					  const struct deliver_recipient *rcpts, const bool *local,
					  size_t n_rcpts, const unsigned char *msg, size_t len,
					  const struct stego_password *pw,
					  struct deliver_report *report);

#endif
