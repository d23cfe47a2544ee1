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

#define STEGO_REWRITE_HEADER "X-Postern-Stego"

/* True when the header section of MSG has "X-Postern-Stego: yes". */
bool stego_rewrite_requested(const unsigned char *msg, size_t len);

/* The rewritten message for the holder of PUB (*OUT malloc'd): the routing
 * headers of MSG, a neutral subject, a short text and a generated PNG that
 * hides all of MSG. Returns 0, or -1 with a reason (English) in ERR. */
int stego_rewrite_message(const unsigned char pub[32], const unsigned char *msg, size_t len,
			  unsigned char **out, size_t *out_len, char *err, size_t errlen);

/*
 * deliver_message() for a message that asks for the rewrite: every
 * recipient must be local (another server's users have no key here), each
 * user gets a copy hidden for their own key, and all copies are stored in
 * one transaction or none is.
 */
enum deliver_status stego_rewrite_deliver(struct store *st, const struct config *cfg,
					  const struct deliver_envelope *env,
					  const struct deliver_recipient *rcpts, const bool *local,
					  size_t n_rcpts, const unsigned char *msg, size_t len,
					  struct deliver_report *report);

#endif
