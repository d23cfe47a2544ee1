/*
 * imap_mime.c - the MIME structure of a decrypted message for FETCH: byte
 * offsets of every part's header and body (RFC 2045/2046), ENVELOPE and
 * BODYSTRUCTURE (RFC 3501 7.4.2) and the bytes a BODY[section] names.
 *
 * Offsets come from our own walk over the raw bytes, because sections must
 * be byte-exact; GMime parses address lists for ENVELOPE. Depth and the
 * number of parts are bounded so a hostile message costs bounded work.
 */
#include <config.h>

#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gmime/gmime.h>

#include "imap/imap_int.h"

#define IMAP_MIME_DEPTH_MAX 32
#define IMAP_MIME_PARTS_MAX 10000
#define IMAP_PARAMS_MAX 32

struct walk {
	const char *msg;
	size_t parts;
};

/* ---- headers ---- */

/* Offset just past the header's blank line (or the end when there is none). */
static size_t header_end(const char *msg, size_t off, size_t end)
{
	size_t p = off;

	while (p < end) {
		const char *nl = memchr(msg + p, '\n', end - p);
		size_t line_len;
		if (!nl)
			return end;
		line_len = (size_t)(nl - (msg + p));
		if (line_len == 0 || (line_len == 1 && msg[p] == '\r'))
			return (size_t)(nl - msg) + 1;
		p = (size_t)(nl - msg) + 1;
	}
	return end;
}

char *imap_header_get(const char *hdr, size_t hdr_len, const char *name)
{
	size_t nlen = strlen(name), p = 0;

	while (p < hdr_len) {
		const char *line = hdr + p;
		const char *nl = memchr(line, '\n', hdr_len - p);
		size_t llen = nl ? (size_t)(nl - line) + 1 : hdr_len - p;
		if (llen > nlen && strncasecmp(line, name, nlen) == 0 &&
		    (line[nlen] == ':' || line[nlen] == ' ' || line[nlen] == '\t')) {
			/* Collect the value with its continuation lines, unfolded. */
			size_t q = p + nlen, cap = 0, len = 0;
			char *out;
			while (q < hdr_len && (hdr[q] == ' ' || hdr[q] == '\t'))
				q++;
			if (q >= hdr_len || hdr[q] != ':') {
				p += llen;
				continue;
			}
			q++;
			for (size_t e = q; e < hdr_len; e++) {
				if (hdr[e] == '\n' &&
				    !(e + 1 < hdr_len && (hdr[e + 1] == ' ' || hdr[e + 1] == '\t')))
					break;
				cap++;
			}
			out = malloc(cap + 1);
			if (!out)
				return NULL;
			for (size_t e = q; e < hdr_len; e++) {
				if (hdr[e] == '\n' &&
				    !(e + 1 < hdr_len && (hdr[e + 1] == ' ' || hdr[e + 1] == '\t')))
					break;
				if (hdr[e] == '\r' || hdr[e] == '\n')
					continue;
				out[len++] = hdr[e];
			}
			while (len && (out[len - 1] == ' ' || out[len - 1] == '\t'))
				len--;
			out[len] = '\0';
			{
				size_t lead = 0;
				while (out[lead] == ' ' || out[lead] == '\t')
					lead++;
				memmove(out, out + lead, len - lead + 1);
			}
			return out;
		}
		p += llen;
	}
	return NULL;
}

/* Parses "type/subtype; a=b; c=\"d\"" (or a disposition "attachment; ...") */
static void parse_content_type(const char *v, char *type, size_t tcap, char *subtype, size_t scap,
			       struct imap_param **params, size_t *n_params, bool has_subtype)
{
	const char *p = v;
	size_t i;

	i = 0;
	while (*p == ' ')
		p++;
	while (*p && *p != '/' && *p != ';' && *p != ' ' && i + 1 < tcap)
		type[i++] = (char)toupper((unsigned char)*p++);
	type[i] = '\0';
	if (has_subtype) {
		i = 0;
		if (*p == '/') {
			p++;
			while (*p && *p != ';' && *p != ' ' && i + 1 < scap)
				subtype[i++] = (char)toupper((unsigned char)*p++);
		}
		subtype[i] = '\0';
	}
	*params = NULL;
	*n_params = 0;
	while (*p && *n_params < IMAP_PARAMS_MAX) {
		const char *ns, *vs;
		size_t nl, vl;
		struct imap_param *np;
		char *val;
		p = strchr(p, ';');
		if (!p)
			break;
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		ns = p;
		while (*p && *p != '=' && *p != ';' && *p != ' ')
			p++;
		nl = (size_t)(p - ns);
		while (*p == ' ')
			p++;
		if (*p != '=' || nl == 0)
			continue;
		p++;
		while (*p == ' ')
			p++;
		if (*p == '"') {
			size_t k = 0;
			vs = ++p;
			val = malloc(strlen(vs) + 1);
			if (!val)
				return;
			while (*p && *p != '"') {
				if (*p == '\\' && p[1])
					p++;
				val[k++] = *p++;
			}
			val[k] = '\0';
			if (*p == '"')
				p++;
		} else {
			vs = p;
			while (*p && *p != ';' && *p != ' ')
				p++;
			vl = (size_t)(p - vs);
			val = strndup(vs, vl);
			if (!val)
				return;
		}
		np = realloc(*params, (*n_params + 1) * sizeof(*np));
		if (!np) {
			free(val);
			return;
		}
		*params = np;
		np[*n_params].name = strndup(ns, nl);
		if (!np[*n_params].name) {
			free(val);
			return;
		}
		for (char *u = np[*n_params].name; *u; u++)
			*u = (char)toupper((unsigned char)*u);
		np[*n_params].value = val;
		(*n_params)++;
	}
}

static const char *param_get(const struct imap_mime *m, const char *name)
{
	for (size_t i = 0; i < m->n_params; i++)
		if (strcasecmp(m->params[i].name, name) == 0)
			return m->params[i].value;
	return NULL;
}

/* ---- structure ---- */

static void parse_part(struct walk *w, struct imap_mime *m, size_t off, size_t end, unsigned depth,
		       bool digest);

static size_t count_lines(const char *p, size_t len)
{
	size_t n = 0;
	for (const char *q = p; (q = memchr(q, '\n', len - (size_t)(q - p))); q++)
		n++;
	return n;
}

/* Adds one part [START, END) to M's children; false when no more fit. */
static bool add_child(struct walk *w, struct imap_mime *m, size_t *cap, size_t start, size_t end,
		      unsigned depth, bool digest)
{
	if (m->n_children >= IMAP_MIME_PARTS_MAX || w->parts >= IMAP_MIME_PARTS_MAX)
		return false;
	if (m->n_children == *cap) {
		size_t ncap = *cap ? *cap * 2 : 4;
		struct imap_mime *nc = realloc(m->children, ncap * sizeof(*nc));
		if (!nc)
			return false;
		m->children = nc;
		*cap = ncap;
	}
	memset(&m->children[m->n_children], 0, sizeof(m->children[0]));
	parse_part(w, &m->children[m->n_children], start, end, depth + 1, digest);
	m->n_children++;
	return true;
}

/* Splits a multipart body at its boundary (RFC 2046 5.1.1). */
static void parse_multipart(struct walk *w, struct imap_mime *m, const char *boundary,
			    unsigned depth)
{
	const char *msg = w->msg;
	size_t blen = strlen(boundary), p = m->body_off, end = m->body_off + m->body_len;
	size_t part_start = 0, cap = 0;
	bool in_part = false;
	bool digest = strcmp(m->subtype, "DIGEST") == 0;

	while (p < end) {
		const char *nl = memchr(msg + p, '\n', end - p);
		size_t line_end = nl ? (size_t)(nl - msg) + 1 : end;
		if (line_end - p >= blen + 2 && msg[p] == '-' && msg[p + 1] == '-' &&
		    memcmp(msg + p + 2, boundary, blen) == 0) {
			size_t after = p + 2 + blen;
			bool close =
			    after + 1 < line_end && msg[after] == '-' && msg[after + 1] == '-';
			if (in_part) {
				/* The CRLF before the delimiter belongs to the delimiter. */
				size_t pend = p;
				if (pend > part_start && msg[pend - 1] == '\n')
					pend--;
				if (pend > part_start && msg[pend - 1] == '\r')
					pend--;
				if (!add_child(w, m, &cap, part_start, pend, depth, digest))
					return;
			}
			if (close)
				return;
			in_part = true;
			part_start = line_end;
		}
		p = line_end;
	}
	/* A missing close delimiter ends the last part at the end of the body. */
	if (in_part && part_start < end)
		add_child(w, m, &cap, part_start, end, depth, digest);
}

static void parse_part(struct walk *w, struct imap_mime *m, size_t off, size_t end, unsigned depth,
		       bool digest)
{
	char *ct;

	w->parts++;
	m->hdr_off = off;
	m->body_off = header_end(w->msg, off, end);
	m->hdr_len = m->body_off - off;
	m->body_len = end - m->body_off;
	m->lines = count_lines(w->msg + m->body_off, m->body_len);
	ct = imap_header_get(w->msg + off, m->hdr_len, "Content-Type");
	if (ct) {
		parse_content_type(ct, m->type, sizeof(m->type), m->subtype, sizeof(m->subtype),
				   &m->params, &m->n_params, true);
		free(ct);
	}
	if (m->type[0] == '\0' || m->subtype[0] == '\0') {
		for (size_t i = 0; i < m->n_params; i++) {
			free(m->params[i].name);
			free(m->params[i].value);
		}
		free(m->params);
		m->params = NULL;
		m->n_params = 0;
		if (digest) {
			strcpy(m->type, "MESSAGE");
			strcpy(m->subtype, "RFC822");
		} else {
			strcpy(m->type, "TEXT");
			strcpy(m->subtype, "PLAIN");
			m->params = calloc(1, sizeof(*m->params));
			if (m->params) {
				m->params[0].name = strdup("CHARSET");
				m->params[0].value = strdup("us-ascii");
				if (m->params[0].name && m->params[0].value) {
					m->n_params = 1;
				} else {
					free(m->params[0].name);
					free(m->params[0].value);
				}
			}
		}
	}
	if (depth >= IMAP_MIME_DEPTH_MAX || w->parts >= IMAP_MIME_PARTS_MAX)
		return;
	if (strcmp(m->type, "MULTIPART") == 0) {
		const char *boundary = param_get(m, "BOUNDARY");
		if (boundary && *boundary && strlen(boundary) <= 70)
			parse_multipart(w, m, boundary, depth);
	} else if (strcmp(m->type, "MESSAGE") == 0 && strcmp(m->subtype, "RFC822") == 0) {
		m->message = calloc(1, sizeof(*m->message));
		if (m->message)
			parse_part(w, m->message, m->body_off, m->body_off + m->body_len, depth + 1,
				   false);
	}
}

struct imap_mime *imap_mime_parse(const char *msg, size_t len)
{
	struct walk w = {msg, 0};
	struct imap_mime *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	parse_part(&w, m, 0, len, 0, false);
	return m;
}

static void mime_clear(struct imap_mime *m)
{
	for (size_t i = 0; i < m->n_params; i++) {
		free(m->params[i].name);
		free(m->params[i].value);
	}
	free(m->params);
	for (size_t i = 0; i < m->n_children; i++)
		mime_clear(&m->children[i]);
	free(m->children);
	if (m->message)
		imap_mime_free(m->message);
}

void imap_mime_free(struct imap_mime *m)
{
	if (!m)
		return;
	mime_clear(m);
	free(m);
}

/* ---- ENVELOPE ---- */

static pthread_once_t gmime_once = PTHREAD_ONCE_INIT;
static void gmime_setup(void)
{
	g_mime_init();
}

static bool is_ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return false;
	return true;
}

static void write_mailbox(struct imap_buf *b, InternetAddress *ia)
{
	const char *name = internet_address_get_name(ia);
	const char *addr = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia));
	const char *at = addr ? strrchr(addr, '@') : NULL;

	ibuf_str(b, "(");
	if (name && *name && !is_ascii(name)) {
		char *enc = g_mime_utils_header_encode_phrase(NULL, name, "utf-8");
		ibuf_nstring(b, enc, enc ? strlen(enc) : 0);
		g_free(enc);
	} else {
		ibuf_nstring(b, name && *name ? name : NULL, name ? strlen(name) : 0);
	}
	ibuf_str(b, " NIL ");
	if (at) {
		ibuf_nstring(b, addr, (size_t)(at - addr));
		ibuf_str(b, " ");
		ibuf_nstring(b, at + 1, strlen(at + 1));
	} else {
		ibuf_nstring(b, addr ? addr : "", addr ? strlen(addr) : 0);
		ibuf_str(b, " NIL");
	}
	ibuf_str(b, ")");
}

static void write_addresses(struct imap_buf *b, const char *value)
{
	InternetAddressList *list;
	int n;
	bool any = false;

	if (!value || !*value) {
		ibuf_str(b, "NIL");
		return;
	}
	list = internet_address_list_parse(NULL, value);
	n = list ? internet_address_list_length(list) : 0;
	for (int i = 0; i < n; i++) {
		InternetAddress *ia = internet_address_list_get_address(list, i);
		if (!any)
			ibuf_str(b, "(");
		any = true;
		if (INTERNET_ADDRESS_IS_GROUP(ia)) {
			InternetAddressList *members =
			    internet_address_group_get_members(INTERNET_ADDRESS_GROUP(ia));
			const char *gname = internet_address_get_name(ia);
			ibuf_str(b, "(NIL NIL ");
			ibuf_nstring(b, gname ? gname : "", gname ? strlen(gname) : 0);
			ibuf_str(b, " NIL)");
			for (int j = 0; members && j < internet_address_list_length(members); j++) {
				InternetAddress *m = internet_address_list_get_address(members, j);
				if (INTERNET_ADDRESS_IS_MAILBOX(m))
					write_mailbox(b, m);
			}
			ibuf_str(b, "(NIL NIL NIL NIL)");
		} else {
			write_mailbox(b, ia);
		}
	}
	if (list)
		g_object_unref(list);
	ibuf_str(b, any ? ")" : "NIL");
}

void imap_write_envelope(struct imap_buf *b, const char *msg, const struct imap_mime *m)
{
	static const char *const strings[] = {"Date", "Subject"};
	static const char *const addrs[] = {"From", "Sender", "Reply-To", "To", "Cc", "Bcc"};
	const char *hdr = msg + m->hdr_off;
	char *from;

	pthread_once(&gmime_once, gmime_setup);
	ibuf_str(b, "(");
	for (size_t i = 0; i < 2; i++) {
		char *v = imap_header_get(hdr, m->hdr_len, strings[i]);
		ibuf_nstring(b, v, v ? strlen(v) : 0);
		ibuf_str(b, " ");
		free(v);
	}
	from = imap_header_get(hdr, m->hdr_len, "From");
	for (size_t i = 0; i < 6; i++) {
		char *v = i == 0 ? NULL : imap_header_get(hdr, m->hdr_len, addrs[i]);
		/* RFC 3501 7.4.2: Sender and Reply-To default to From. */
		if (i == 0 || ((i == 1 || i == 2) && (!v || !*v)))
			write_addresses(b, from);
		else
			write_addresses(b, v);
		ibuf_str(b, " ");
		free(v);
	}
	free(from);
	{
		char *irt = imap_header_get(hdr, m->hdr_len, "In-Reply-To");
		char *mid = imap_header_get(hdr, m->hdr_len, "Message-ID");
		ibuf_nstring(b, irt, irt ? strlen(irt) : 0);
		ibuf_str(b, " ");
		ibuf_nstring(b, mid, mid ? strlen(mid) : 0);
		free(irt);
		free(mid);
	}
	ibuf_str(b, ")");
}

/* ---- BODYSTRUCTURE ---- */

static void write_params(struct imap_buf *b, const struct imap_param *p, size_t n,
			 bool skip_boundary)
{
	bool any = false;
	for (size_t i = 0; i < n; i++) {
		if (skip_boundary && strcmp(p[i].name, "BOUNDARY") == 0)
			continue;
		ibuf_str(b, any ? " " : "(");
		any = true;
		ibuf_nstring(b, p[i].name, strlen(p[i].name));
		ibuf_str(b, " ");
		ibuf_nstring(b, p[i].value, strlen(p[i].value));
	}
	ibuf_str(b, any ? ")" : "NIL");
}

static void write_header_string(struct imap_buf *b, const char *msg, const struct imap_mime *m,
				const char *name, bool upper, const char *dflt)
{
	char *v = imap_header_get(msg + m->hdr_off, m->hdr_len, name);
	if (v && *v) {
		if (upper)
			ibuf_nstring_upper(b, v);
		else
			ibuf_nstring(b, v, strlen(v));
	} else if (dflt) {
		ibuf_nstring(b, dflt, strlen(dflt));
	} else {
		ibuf_str(b, "NIL");
	}
	free(v);
}

static void write_disposition(struct imap_buf *b, const char *msg, const struct imap_mime *m)
{
	char *v = imap_header_get(msg + m->hdr_off, m->hdr_len, "Content-Disposition");
	char type[64];
	struct imap_param *params = NULL;
	size_t n = 0;

	if (!v || !*v) {
		free(v);
		ibuf_str(b, "NIL");
		return;
	}
	parse_content_type(v, type, sizeof(type), NULL, 0, &params, &n, false);
	ibuf_str(b, "(");
	ibuf_nstring(b, type, strlen(type));
	ibuf_str(b, " ");
	write_params(b, params, n, false);
	ibuf_str(b, ")");
	for (size_t i = 0; i < n; i++) {
		free(params[i].name);
		free(params[i].value);
	}
	free(params);
	free(v);
}

static void write_structure(struct imap_buf *b, const char *msg, const struct imap_mime *m,
			    bool ext, unsigned depth)
{
	if (strcmp(m->type, "MULTIPART") == 0 && m->n_children > 0 && depth < IMAP_MIME_DEPTH_MAX) {
		ibuf_str(b, "(");
		for (size_t i = 0; i < m->n_children; i++)
			write_structure(b, msg, &m->children[i], ext, depth + 1);
		ibuf_str(b, " ");
		ibuf_nstring(b, m->subtype, strlen(m->subtype));
		if (ext) {
			ibuf_str(b, " ");
			write_params(b, m->params, m->n_params, false);
			ibuf_str(b, " ");
			write_disposition(b, msg, m);
			ibuf_str(b, " ");
			write_header_string(b, msg, m, "Content-Language", false, NULL);
			ibuf_str(b, " ");
			write_header_string(b, msg, m, "Content-Location", false, NULL);
		}
		ibuf_str(b, ")");
		return;
	}
	ibuf_str(b, "(");
	if (strcmp(m->type, "MULTIPART") == 0) {
		/* A multipart without parts is shown as the text it is. */
		ibuf_str(b, "\"TEXT\" \"PLAIN\" NIL");
	} else {
		ibuf_nstring(b, m->type, strlen(m->type));
		ibuf_str(b, " ");
		ibuf_nstring(b, m->subtype, strlen(m->subtype));
		ibuf_str(b, " ");
		write_params(b, m->params, m->n_params, false);
	}
	ibuf_str(b, " ");
	write_header_string(b, msg, m, "Content-ID", false, NULL);
	ibuf_str(b, " ");
	write_header_string(b, msg, m, "Content-Description", false, NULL);
	ibuf_str(b, " ");
	write_header_string(b, msg, m, "Content-Transfer-Encoding", true, "7BIT");
	ibuf_printf(b, " %zu", m->body_len);
	if (m->message && depth < IMAP_MIME_DEPTH_MAX) {
		ibuf_str(b, " ");
		imap_write_envelope(b, msg, m->message);
		ibuf_str(b, " ");
		write_structure(b, msg, m->message, ext, depth + 1);
		ibuf_printf(b, " %zu", m->lines);
	} else if (strcmp(m->type, "TEXT") == 0 || strcmp(m->type, "MULTIPART") == 0) {
		ibuf_printf(b, " %zu", m->lines);
	}
	if (ext) {
		ibuf_str(b, " ");
		write_header_string(b, msg, m, "Content-MD5", false, NULL);
		ibuf_str(b, " ");
		write_disposition(b, msg, m);
		ibuf_str(b, " ");
		write_header_string(b, msg, m, "Content-Language", false, NULL);
		ibuf_str(b, " ");
		write_header_string(b, msg, m, "Content-Location", false, NULL);
	}
	ibuf_str(b, ")");
}

void imap_write_bodystructure(struct imap_buf *b, const char *msg, const struct imap_mime *m,
			      bool extended)
{
	pthread_once(&gmime_once, gmime_setup);
	write_structure(b, msg, m, extended, 0);
}

/* ---- sections ---- */

static bool field_listed(const char *line, size_t len, const struct imap_fetch_att *a)
{
	const char *colon = memchr(line, ':', len);
	size_t nlen;

	if (!colon)
		return false;
	nlen = (size_t)(colon - line);
	while (nlen && (line[nlen - 1] == ' ' || line[nlen - 1] == '\t'))
		nlen--;
	for (size_t i = 0; i < a->n_fields; i++)
		if (strlen(a->fields[i]) == nlen && strncasecmp(a->fields[i], line, nlen) == 0)
			return true;
	return false;
}

/* HEADER.FIELDS (NOT): the matching fields with their continuation lines, then CRLF. */
static void filter_header(const char *hdr, size_t len, const struct imap_fetch_att *a,
			  struct imap_buf *out)
{
	size_t p = 0;

	while (p < len) {
		size_t start = p, end;
		const char *nl;
		bool keep;
		if (hdr[p] == '\r' || hdr[p] == '\n')
			break; /* the blank line */
		end = p;
		do {
			nl = memchr(hdr + end, '\n', len - end);
			end = nl ? (size_t)(nl - hdr) + 1 : len;
		} while (end < len && (hdr[end] == ' ' || hdr[end] == '\t'));
		keep = field_listed(hdr + start, end - start, a);
		if (a->section == SECTION_HEADER_FIELDS_NOT)
			keep = !keep;
		if (keep)
			ibuf_add(out, hdr + start, end - start);
		p = end;
	}
	ibuf_add(out, "\r\n", 2);
}

const struct imap_mime *imap_mime_part(const struct imap_mime *root, const uint32_t *parts,
				       size_t n_parts)
{
	const struct imap_mime *m = root;

	for (size_t i = 0; i < n_parts; i++) {
		uint32_t n = parts[i];
		if (m->message && i > 0)
			m = m->message;
		if (strcmp(m->type, "MULTIPART") == 0 && m->n_children) {
			if (n > m->n_children)
				return NULL;
			m = &m->children[n - 1];
		} else if (n != 1) {
			return NULL;
		}
	}
	return m;
}

int imap_section(const char *msg, const struct imap_mime *root, const struct imap_fetch_att *a,
		 struct imap_buf *scratch, const char **out, size_t *out_len)
{
	const struct imap_mime *m = imap_mime_part(root, a->parts, a->n_parts);
	const struct imap_mime *msgpart;

	if (!m)
		return -1;
	switch (a->section) {
	case SECTION_ALL:
		if (a->n_parts == 0) {
			*out = msg;
			*out_len = root->hdr_len + root->body_len;
		} else {
			*out = msg + m->body_off;
			*out_len = m->body_len;
		}
		return 0;
	case SECTION_MIME:
		*out = msg + m->hdr_off;
		*out_len = m->hdr_len;
		return 0;
	default:
		break;
	}
	/* HEADER, HEADER.FIELDS, TEXT: of the message itself or of an embedded one. */
	if (a->n_parts == 0)
		msgpart = root;
	else if (m->message)
		msgpart = m->message;
	else
		return -1;
	if (a->section == SECTION_TEXT) {
		*out = msg + msgpart->body_off;
		*out_len = msgpart->body_len;
		return 0;
	}
	if (a->section == SECTION_HEADER) {
		*out = msg + msgpart->hdr_off;
		*out_len = msgpart->hdr_len;
		return 0;
	}
	filter_header(msg + msgpart->hdr_off, msgpart->hdr_len, a, scratch);
	if (scratch->failed)
		return -1;
	*out = scratch->p;
	*out_len = scratch->len;
	return 0;
}
