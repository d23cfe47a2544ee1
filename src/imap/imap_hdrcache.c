/*
 * imap_hdrcache.c - the header blocks of the messages a session has read.
 *
 * Mail clients read the headers of every message over and over: FETCH of
 * ENVELOPE or BODY.PEEK[HEADER.FIELDS (...)] to draw the index, SEARCH FROM,
 * SUBJECT, HEADER and SENT* to filter it. Each such read would otherwise
 * fetch the sealed blob, decrypt the whole message and parse its MIME
 * structure just to look at the first few hundred bytes. The session keeps
 * the header block (the top-level header with its terminating blank line, as
 * imap_mime_parse() delimits it) of each message it has opened, keyed by the
 * message id: a message's content never changes, and ids are never reused
 * (AUTOINCREMENT / AUTO_INCREMENT). Parsing a header block on its own gives
 * the same top-level header as parsing the whole message, so ENVELOPE,
 * HEADER sections and header searches answer exactly as before.
 *
 * The plaintext stays in this session's memory only (never on disk), is
 * bounded, and is wiped when the cache starts over or the session ends.
 */
#include <config.h>

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "imap/imap_int.h"

/* Per session: enough for the headers of a few thousand messages. */
#define HDRCACHE_MAX_BYTES (2 * 1024 * 1024)
#define HDRCACHE_MAX_ENTRIES 8192
#define HDRCACHE_MIN_SLOTS 256

struct hdrcache_slot {
	int64_t id; /* 0: free (message ids start at 1) */
	unsigned char *hdr;
	size_t len;
};

struct imap_hdrcache {
	struct hdrcache_slot *slots;
	size_t nslots; /* a power of two, at least twice the entries */
	size_t n, bytes;
};

static void hdrcache_clear(struct imap_hdrcache *c)
{
	for (size_t i = 0; i < c->nslots; i++)
		if (c->slots[i].id != 0)
			imap_wipe_free(c->slots[i].hdr, c->slots[i].len);
	free(c->slots);
	c->slots = NULL;
	c->nslots = c->n = c->bytes = 0;
}

void imap_hdrcache_free(struct imap_hdrcache *c)
{
	if (c == NULL)
		return;
	hdrcache_clear(c);
	free(c);
}

static size_t hdrcache_slot(size_t nslots, int64_t id)
{
	uint64_t h = (uint64_t)id * 0x9e3779b97f4a7c15ULL; /* Fibonacci hashing */

	return (size_t)(h >> 32) & (nslots - 1);
}

static struct hdrcache_slot *hdrcache_find(struct imap_hdrcache *c, int64_t id)
{
	size_t i;

	if (c == NULL || c->nslots == 0)
		return NULL;
	for (i = hdrcache_slot(c->nslots, id); c->slots[i].id != 0; i = (i + 1) & (c->nslots - 1))
		if (c->slots[i].id == id)
			return &c->slots[i];
	return &c->slots[i];
}

static bool hdrcache_grow(struct imap_hdrcache *c)
{
	size_t nslots = c->nslots ? 2 * c->nslots : HDRCACHE_MIN_SLOTS;
	struct hdrcache_slot *slots = calloc(nslots, sizeof(*slots));

	if (slots == NULL)
		return false;
	for (size_t j = 0; j < c->nslots; j++) {
		size_t i;

		if (c->slots[j].id == 0)
			continue;
		for (i = hdrcache_slot(nslots, c->slots[j].id); slots[i].id != 0;
		     i = (i + 1) & (nslots - 1))
			;
		slots[i] = c->slots[j];
	}
	free(c->slots);
	c->slots = slots;
	c->nslots = nslots;
	return true;
}

/* Keeps a copy of HDR for message ID; a cache that cannot take it stays as it was. */
static void hdrcache_put(struct imap_session *s, int64_t id, const unsigned char *hdr, size_t len)
{
	struct imap_hdrcache *c = s->hdrcache;
	struct hdrcache_slot *slot;
	unsigned char *copy;

	if (id <= 0 || len > HDRCACHE_MAX_BYTES / 16)
		return; /* a huge header is rare: not worth the room */
	if (c == NULL) {
		c = calloc(1, sizeof(*c));
		if (c == NULL)
			return;
		s->hdrcache = c;
	}
	/* Full: start over rather than track recency. */
	if (c->n + 1 > HDRCACHE_MAX_ENTRIES || c->bytes + len > HDRCACHE_MAX_BYTES)
		hdrcache_clear(c);
	if (2 * (c->n + 1) > c->nslots && !hdrcache_grow(c))
		return;
	slot = hdrcache_find(c, id);
	if (slot->id != 0)
		return;
	copy = malloc(len > 0 ? len : 1);
	if (copy == NULL)
		return;
	memcpy(copy, hdr, len);
	slot->id = id;
	slot->hdr = copy;
	slot->len = len;
	c->n++;
	c->bytes += len;
}

int imap_message_load_header(struct imap_session *s, const struct imap_msg *m, unsigned char **hdr,
			     size_t *len)
{
	struct hdrcache_slot *slot = hdrcache_find(s->hdrcache, m->id);
	struct imap_mime *root;
	unsigned char *msg, *copy;
	size_t msg_len, hdr_len;
	int rc;

	*hdr = NULL;
	*len = 0;
	if (slot != NULL && slot->id == m->id) {
		copy = malloc(slot->len > 0 ? slot->len : 1);
		if (copy == NULL)
			return STORE_ERR;
		memcpy(copy, slot->hdr, slot->len);
		*hdr = copy;
		*len = slot->len;
		return STORE_OK;
	}
	rc = imap_message_load(s, m, &msg, &msg_len);
	if (rc != STORE_OK)
		return rc;
	root = imap_mime_parse((const char *)msg, msg_len);
	if (root == NULL || root->hdr_off != 0 || root->hdr_len > msg_len) {
		/* Cannot delimit the header here: hand out the whole message. */
		imap_mime_free(root);
		*hdr = msg;
		*len = msg_len;
		return STORE_OK;
	}
	hdr_len = root->hdr_len;
	imap_mime_free(root);
	hdrcache_put(s, m->id, msg, hdr_len);
	copy = malloc(hdr_len > 0 ? hdr_len : 1);
	if (copy == NULL) {
		imap_wipe_free(msg, msg_len);
		return STORE_ERR;
	}
	memcpy(copy, msg, hdr_len);
	imap_wipe_free(msg, msg_len);
	*hdr = copy;
	*len = hdr_len;
	return STORE_OK;
}
