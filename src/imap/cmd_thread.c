/*
 * cmd_thread.c - THREAD and UID THREAD (RFC 5256 4) with ORDEREDSUBJECT
 * and REFERENCES. The messages come from imap_sort_start (search
 * criteria, base subjects, sent dates, Message-ID and References). The
 * REFERENCES tree is built iteratively over an array of containers linked
 * by index, so long reference chains need no deep recursion except when
 * the response is written, which recurses only where a thread branches.
 */
#include <config.h>

#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "imap/imap_int.h"

#define NONE SIZE_MAX

struct node {
	struct imap_sort_info *msg; /* NULL: a dummy (a message referred to but not here) */
	size_t parent, child, next;
};

struct tree {
	struct node *n;
	size_t len, cap;
	bool failed;
};

static size_t node_new(struct tree *t, struct imap_sort_info *msg)
{
	if (t->len == t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 64;
		struct node *nn = realloc(t->n, ncap * sizeof(*nn));
		if (!nn) {
			t->failed = true;
			return NONE;
		}
		t->n = nn;
		t->cap = ncap;
	}
	t->n[t->len] = (struct node){msg, NONE, NONE, NONE};
	return t->len++;
}

/* Is A an ancestor of B (or B itself)? */
static bool ancestor(const struct tree *t, size_t a, size_t b)
{
	for (size_t p = b; p != NONE; p = t->n[p].parent)
		if (p == a)
			return true;
	return false;
}

static void unlink_node(struct tree *t, size_t c)
{
	size_t p = t->n[c].parent, *link;

	if (p == NONE)
		return;
	for (link = &t->n[p].child; *link != NONE; link = &t->n[*link].next)
		if (*link == c) {
			*link = t->n[c].next;
			break;
		}
	t->n[c].parent = NONE;
	t->n[c].next = NONE;
}

static void link_node(struct tree *t, size_t parent, size_t c)
{
	size_t *link = &t->n[parent].child;
	while (*link != NONE)
		link = &t->n[*link].next;
	*link = c;
	t->n[c].parent = parent;
	t->n[c].next = NONE;
}

/* The container for ID, created as a dummy when new. */
static size_t lookup(struct tree *t, GHashTable *ids, const char *id, size_t len)
{
	char *key = g_strndup(id, len);
	gpointer v = g_hash_table_lookup(ids, key);
	size_t c;

	if (v) {
		g_free(key);
		return (size_t)GPOINTER_TO_SIZE(v) - 1;
	}
	c = node_new(t, NULL);
	if (c == NONE) {
		g_free(key);
		return NONE;
	}
	g_hash_table_insert(ids, key, GSIZE_TO_POINTER(c + 1));
	return c;
}

/* RFC 5256 4, REFERENCES steps 1 and 2: containers and their links. */
static void build(struct tree *t, struct imap_sort_info *v, size_t n)
{
	GHashTable *ids = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);

	for (size_t i = 0; i < n && !t->failed; i++) {
		const char *id = NULL, *p;
		size_t len = 0, c = NONE, prev = NONE;

		if (v[i].msgid && imap_next_msgid(v[i].msgid, &id, &len)) {
			c = lookup(t, ids, id, len);
			if (c != NONE && t->n[c].msg)
				c = node_new(t, &v[i]); /* a duplicate Message-ID stands alone */
			else if (c != NONE)
				t->n[c].msg = &v[i];
		} else {
			c = node_new(t, &v[i]);
		}
		if (c == NONE)
			break;
		/* 1B: the references link up in order, never into a loop, never
		 * replacing a link already made. */
		for (p = v[i].references; p && (p = imap_next_msgid(p, &id, &len));) {
			size_t r = lookup(t, ids, id, len);
			if (r == NONE)
				break;
			if (prev != NONE && r != prev && t->n[r].parent == NONE &&
			    !ancestor(t, r, prev))
				link_node(t, prev, r);
			prev = r;
		}
		/* 1C: the last reference is the parent. */
		if (prev != NONE && prev != c && !ancestor(t, c, prev)) {
			unlink_node(t, c);
			link_node(t, prev, c);
		} else if (prev == NONE) {
			unlink_node(t, c);
		}
	}
	g_hash_table_destroy(ids);
}

/* Step 4 for one sibling list (whose children are pruned already). */
static size_t prune_list(struct tree *t, size_t first, size_t parent)
{
	size_t head = NONE, *tail = &head;

	for (size_t c = first, next; c != NONE; c = next) {
		next = t->n[c].next;
		t->n[c].next = NONE;
		if (!t->n[c].msg) {
			size_t k = t->n[c].child;
			if (k == NONE)
				continue; /* 4A: a dummy without children goes */
			if (parent != NONE || t->n[k].next == NONE) {
				/* 4B: its children take its place */
				*tail = k;
				for (; k != NONE; k = t->n[k].next) {
					t->n[k].parent = parent;
					tail = &t->n[k].next;
				}
				continue;
			}
		}
		*tail = c;
		tail = &t->n[c].next;
	}
	return head;
}

static const struct imap_sort_info *first_msg(const struct tree *t, size_t c)
{
	while (c != NONE && !t->n[c].msg)
		c = t->n[c].child;
	return c == NONE ? NULL : t->n[c].msg;
}

static int by_date(const void *pa, const void *pb, void *arg)
{
	const struct tree *t = arg;
	const struct imap_sort_info *a = first_msg(t, *(const size_t *)pa);
	const struct imap_sort_info *b = first_msg(t, *(const size_t *)pb);

	if (!a || !b)
		return (a != NULL) - (b != NULL);
	if (a->sent != b->sent)
		return a->sent < b->sent ? -1 : 1;
	return (a->seq > b->seq) - (a->seq < b->seq);
}

/* Sorts the sibling list at *FIRST by sent date (step 7). */
static void sort_list(struct tree *t, size_t *first, size_t *scratch)
{
	size_t k = 0;

	for (size_t c = *first; c != NONE; c = t->n[c].next)
		scratch[k++] = c;
	if (k < 2)
		return;
	qsort_r(scratch, k, sizeof(*scratch), by_date, t);
	*first = scratch[0];
	for (size_t i = 0; i < k; i++)
		t->n[scratch[i]].next = i + 1 < k ? scratch[i + 1] : NONE;
}

/* The containers reachable from the roots at ROOT, parents before
 * children; *N of them. */
static size_t *breadth_first(struct tree *t, size_t root, size_t *n)
{
	size_t *order = malloc((t->len + 1) * sizeof(*order)), k = 0;

	if (!order)
		return NULL;
	for (size_t c = root; c != NONE; c = t->n[c].next)
		order[k++] = c;
	for (size_t i = 0; i < k; i++)
		for (size_t c = t->n[order[i]].child; c != NONE; c = t->n[c].next)
			order[k++] = c;
	*n = k;
	return order;
}

static size_t roots(struct tree *t)
{
	size_t head = NONE, *tail = &head;
	for (size_t c = 0; c < t->len; c++)
		if (t->n[c].parent == NONE) {
			*tail = c;
			tail = &t->n[c].next;
		}
	*tail = NONE;
	return head;
}

/* Steps 5 and 7: every sibling list by sent date. */
static void sort_all(struct tree *t, size_t *root)
{
	size_t n = 0, *order = breadth_first(t, *root, &n);
	size_t *scratch = malloc((t->len + 1) * sizeof(*scratch));

	if (!order || !scratch) {
		t->failed = true;
	} else {
		for (size_t i = 0; i < n; i++)
			sort_list(t, &t->n[order[i]].child, scratch);
		sort_list(t, root, scratch);
	}
	free(order);
	free(scratch);
}

/* Step 6: roots with the same base subject are gathered. */
static size_t group(struct tree *t, size_t root)
{
	GHashTable *subjects = g_hash_table_new(g_str_hash, g_str_equal);
	size_t head = NONE, *tail = &head;

	for (size_t c = root; c != NONE; c = t->n[c].next) {
		const struct imap_sort_info *m = first_msg(t, c);
		gpointer old;
		size_t o;
		if (!m || !*m->subject)
			continue;
		old = g_hash_table_lookup(subjects, m->subject);
		o = old ? (size_t)GPOINTER_TO_SIZE(old) - 1 : NONE;
		if (o == NONE || (!t->n[c].msg && t->n[o].msg) ||
		    (t->n[o].msg && t->n[o].msg->refwd && t->n[c].msg && !t->n[c].msg->refwd))
			g_hash_table_insert(subjects, m->subject, GSIZE_TO_POINTER(c + 1));
	}
	for (size_t c = root, next; c != NONE && !t->failed; c = next) {
		const struct imap_sort_info *m = first_msg(t, c);
		gpointer hit = m && *m->subject ? g_hash_table_lookup(subjects, m->subject) : NULL;
		size_t o = hit ? (size_t)GPOINTER_TO_SIZE(hit) - 1 : NONE;

		next = t->n[c].next;
		t->n[c].next = NONE;
		if (o == NONE || o == c) {
			*tail = c;
			tail = &t->n[c].next;
			continue;
		}
		if (!t->n[o].msg && !t->n[c].msg) {
			for (size_t k = t->n[c].child, kn; k != NONE; k = kn) {
				kn = t->n[k].next;
				link_node(t, o, k);
			}
		} else if (!t->n[o].msg) {
			link_node(t, o, c);
		} else if (!t->n[c].msg || !(t->n[c].msg->refwd && !t->n[o].msg->refwd)) {
			/* Neither belongs under the other: a new dummy holds both. The
			 * root O keeps its place and becomes the dummy's first child. */
			size_t d = node_new(t, NULL);
			if (d == NONE)
				break;
			t->n[d] = t->n[o];
			t->n[d].msg = t->n[o].msg;
			/* D takes O's content; O becomes the empty dummy in the root list. */
			t->n[o].msg = NULL;
			t->n[o].child = NONE;
			for (size_t k = t->n[d].child; k != NONE; k = t->n[k].next)
				t->n[k].parent = d;
			t->n[d].parent = NONE;
			t->n[d].next = NONE;
			link_node(t, o, d);
			if (t->n[c].msg) {
				link_node(t, o, c);
			} else {
				for (size_t k = t->n[c].child, kn; k != NONE; k = kn) {
					kn = t->n[k].next;
					link_node(t, o, k);
				}
			}
		} else {
			link_node(t, o, c);
		}
	}
	*tail = NONE;
	g_hash_table_destroy(subjects);
	return head;
}

static void render(struct imap_buf *b, const struct tree *t, size_t c, bool uid)
{
	for (;;) {
		size_t k = t->n[c].child;
		if (t->n[c].msg) {
			ibuf_printf(b, "%u", uid ? t->n[c].msg->uid : t->n[c].msg->seq);
			if (k == NONE)
				return;
			ibuf_str(b, " ");
			if (t->n[k].next == NONE) {
				c = k;
				continue;
			}
		}
		for (; k != NONE; k = t->n[k].next) {
			ibuf_str(b, "(");
			render(b, t, k, uid);
			ibuf_str(b, ")");
		}
		return;
	}
}

static void references(struct imap_buf *b, struct imap_sort_info *v, size_t n, bool uid, bool *oom)
{
	struct tree t = {0};
	size_t root = NONE, n_order = 0, *order = NULL;

	build(&t, v, n);
	if (!t.failed) {
		root = roots(&t);
		order = breadth_first(&t, root, &n_order);
	}
	if (t.failed || !order) {
		*oom = true;
		goto out;
	}
	/* Step 4: children before their parents, the roots last. */
	for (size_t i = n_order; i-- > 0;) {
		size_t c = order[i];
		t.n[c].child = prune_list(&t, t.n[c].child, c);
	}
	root = prune_list(&t, root, NONE);
	sort_all(&t, &root);	/* step 5 (the children too, for the dummies' dates) */
	root = group(&t, root); /* step 6 */
	sort_all(&t, &root);	/* step 7 */
	if (t.failed) {
		*oom = true;
		goto out;
	}
	for (size_t c = root; c != NONE; c = t.n[c].next) {
		ibuf_str(b, c == root ? " (" : "(");
		render(b, &t, c, uid);
		ibuf_str(b, ")");
	}
out:
	free(order);
	free(t.n);
}

static int by_subject(const void *pa, const void *pb)
{
	const struct imap_sort_info *a = pa, *b = pb;
	int c = strcmp(a->subject, b->subject);
	if (c)
		return c;
	if (a->sent != b->sent)
		return a->sent < b->sent ? -1 : 1;
	return (a->seq > b->seq) - (a->seq < b->seq);
}

static int by_first_date(const void *pa, const void *pb)
{
	const struct imap_sort_info *a = *(struct imap_sort_info *const *)pa;
	const struct imap_sort_info *b = *(struct imap_sort_info *const *)pb;
	if (a->sent != b->sent)
		return a->sent < b->sent ? -1 : 1;
	return (a->seq > b->seq) - (a->seq < b->seq);
}

/* RFC 5256 4, ORDEREDSUBJECT: one thread per base subject, the first
 * message the parent of the others; threads by the date of their first. */
static void ordered_subject(struct imap_buf *b, struct imap_sort_info *v, size_t n, bool uid,
			    bool *oom)
{
	struct imap_sort_info **firsts = malloc((n + 1) * sizeof(*firsts));
	size_t nf = 0;

	if (!firsts) {
		*oom = true;
		return;
	}
	qsort(v, n, sizeof(*v), by_subject);
	for (size_t i = 0; i < n; i++)
		if (i == 0 || strcmp(v[i].subject, v[i - 1].subject) != 0)
			firsts[nf++] = &v[i];
	qsort(firsts, nf, sizeof(*firsts), by_first_date);
	for (size_t f = 0; f < nf; f++) {
		struct imap_sort_info *m = firsts[f];
		size_t end = (size_t)(m - v) + 1;
		while (end < n && strcmp(v[end].subject, m->subject) == 0)
			end++;
		ibuf_printf(b, "%s(%u", f ? "" : " ", uid ? m->uid : m->seq);
		if (end - (size_t)(m - v) == 2) {
			ibuf_printf(b, " %u", uid ? m[1].uid : m[1].seq);
		} else if (end - (size_t)(m - v) > 2) {
			ibuf_str(b, " ");
			for (struct imap_sort_info *k = m + 1; k < v + end; k++)
				ibuf_printf(b, "(%u)", uid ? k->uid : k->seq);
		}
		ibuf_str(b, ")");
	}
	free(firsts);
}

/* RFC 5256 4 */
struct thread_ctx {
	int algo;
	bool uid;
};

static void thread_answer(struct imap_session *s, int rc, struct imap_sort_info *v, size_t n,
			  bool failed, void *arg)
{
	struct thread_ctx *ctx = arg;
	struct imap_buf b = {0};
	bool oom = false;

	if (rc < 0) {
		free(ctx);
		return;
	}
	ibuf_str(&b, "* THREAD");
	if (ctx->algo == THREAD_REFERENCES)
		references(&b, v, n, ctx->uid, &oom);
	else
		ordered_subject(&b, v, n, ctx->uid, &oom);
	ibuf_str(&b, "\r\n");
	imap_sort_info_free(v, n);
	free(ctx);
	if (oom)
		b.failed = true;
	imap_search_reply(s, &b, failed, "THREAD");
}

void imap_cmd_thread(struct imap_session *s, struct imap_command *cmd)
{
	struct thread_ctx *ctx;
	int algo;

	if (cmd->n_args < 1 || (algo = imap_thread_algorithm(&cmd->args[0])) < 0) {
		imap_bad(s, "THREAD needs ORDEREDSUBJECT or REFERENCES");
		return;
	}
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx) {
		imap_no(s, "[SERVERBUG] Out of memory");
		return;
	}
	ctx->algo = algo;
	ctx->uid = cmd->uid;
	if (imap_sort_start(s, cmd->args + 1, cmd->n_args - 1, true, algo == THREAD_REFERENCES,
			    thread_answer, ctx) < 0)
		free(ctx);
}
