/*
 * scan_parse.c - walks one message with GMime 3: headers (decoded), the MIME
 * tree (bounded depth and part count), text parts converted to UTF-8, HTML
 * parts, attachments decoded from their transfer encoding; and the SMTP
 * facts the caller knows (SPF/DKIM/DMARC, HELO).
 *
 * Input GMime cannot make sense of, or that exceeds the caps in scan_int.h,
 * is still scanned as raw text, with a reason saying so.
 */
#include <config.h>
#include <ctype.h>
#include <gmime/gmime.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "scan/scan_int.h"

#define RECV_MAX 64   /* Received headers looked at */
#define RECV_ORIGIN 3 /* of them, the last ones tokenized as the origin */

static pthread_once_t gmime_once = PTHREAD_ONCE_INIT;

static void gmime_init_once(void)
{
	g_mime_init();
}

void scan_gmime_init(void)
{
	pthread_once(&gmime_once, gmime_init_once);
}

static void tokenize_text(struct scan_doc *d, const char *text, size_t len)
{
	size_t budget =
	    SCAN_MAX_TEXT_BYTES > d->text_bytes ? SCAN_MAX_TEXT_BYTES - d->text_bytes : 0;
	size_t n = len < budget ? len : budget;
	scan_tokenize(d, "b", text, n);
	scan_text_urls(d, text, n);
	d->text_bytes += n;
}

/* The decoded (transfer-encoding removed) bytes of a leaf part. */
static GByteArray *part_bytes(GMimePart *part)
{
	GMimeDataWrapper *content = g_mime_part_get_content(part);
	if (!content)
		return NULL;
	GMimeStream *mem = g_mime_stream_mem_new();
	g_mime_data_wrapper_write_to_stream(content, mem);
	GByteArray *arr = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
	/* Take the array out of the stream before it dies. */
	g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(mem), FALSE);
	g_object_unref(mem);
	return arr;
}

/* Charsets whose text needs no conversion to be tokenized as UTF-8. */
static int charset_is_utf8(const char *charset)
{
	return !charset || strcasecmp(charset, "utf-8") == 0 || strcasecmp(charset, "utf8") == 0 ||
	       strcasecmp(charset, "us-ascii") == 0 || strcasecmp(charset, "ascii") == 0;
}

static int charset_known(const char *charset)
{
	if (charset_is_utf8(charset) || strcasecmp(charset, "iso-8859-1") == 0 ||
	    strcasecmp(charset, "windows-1252") == 0)
		return 1;
	iconv_t cd = g_mime_iconv_open("UTF-8", charset);
	if (cd == (iconv_t)-1)
		return 0;
	g_mime_iconv_close(cd);
	return 1;
}

static void walk_leaf(struct scan_doc *d, GMimePart *part)
{
	GMimeContentType *ct = g_mime_object_get_content_type(GMIME_OBJECT(part));
	const char *type = ct ? g_mime_content_type_get_media_type(ct) : "text";
	const char *sub = ct ? g_mime_content_type_get_media_subtype(ct) : "plain";
	char mime[96];
	snprintf(mime, sizeof(mime), "%s/%s", type ? type : "text", sub ? sub : "plain");
	for (char *p = mime; *p; p++)
		*p = (char)tolower((unsigned char)*p);

	const char *filename = g_mime_part_get_filename(part);
	int attachment = g_mime_part_is_attachment(part) || (filename && *filename);
	int is_text = strncmp(mime, "text/", 5) == 0;

	if (is_text && !attachment && GMIME_IS_TEXT_PART(part)) {
		const char *charset =
		    g_mime_object_get_content_type_parameter(GMIME_OBJECT(part), "charset");
		if (charset && !charset_known(charset)) {
			scan_flag(d, SCAN_F_MALFORMED,
				  "a text part declares the unknown charset %.40s", charset);
			scan_feat_str(d, "cs", "unknown");
		} else if (charset) {
			scan_feat_str(d, "cs", charset);
		}
		char *text;
		size_t len;
		GByteArray *raw = NULL;
		if (charset_is_utf8(charset)) {
			/* Already UTF-8 (or meant to be): skip the conversion
			 * filter; the tokenizer copes with stray bytes. */
			raw = part_bytes(part);
			if (!raw)
				return;
			g_byte_array_append(raw, (const guint8 *)"", 1);
			text = (char *)raw->data;
			len = strlen(text);
		} else {
			text = g_mime_text_part_get_text(GMIME_TEXT_PART(part));
			if (!text)
				return;
			len = strlen(text);
		}
		/* The test file is ASCII: the UTF-8 text shows it unchanged. */
		if (scan_is_eicar((const unsigned char *)text, len))
			scan_flag(d, SCAN_F_EICAR, "the message body is the EICAR test file");
		if (strcmp(mime, "text/html") == 0)
			scan_html(d, text, len < SCAN_MAX_PART_BYTES ? len : SCAN_MAX_PART_BYTES);
		else
			tokenize_text(d, text, len);
		if (raw)
			g_byte_array_free(raw, TRUE);
		else
			g_free(text);
		return;
	}
	GByteArray *bytes = part_bytes(part);
	scan_attachment(d, filename, mime, bytes ? bytes->data : (const unsigned char *)"",
			bytes ? bytes->len : 0);
	if (bytes)
		g_byte_array_free(bytes, TRUE);
}

static void walk(struct scan_doc *d, GMimeObject *obj, int depth)
{
	if (!obj)
		return;
	if (depth > SCAN_MAX_DEPTH) {
		scan_flag(d, SCAN_F_MALFORMED, "MIME nesting deeper than %d levels was not scanned",
			  SCAN_MAX_DEPTH);
		return;
	}
	if (d->n_parts >= SCAN_MAX_PARTS) {
		scan_flag(d, SCAN_F_TRUNCATED, "more than %d MIME parts: the rest was not scanned",
			  SCAN_MAX_PARTS);
		return;
	}
	if (GMIME_IS_MESSAGE_PART(obj)) {
		GMimeMessage *inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
		scan_feat_str(d, "mime", "message-part");
		if (inner)
			walk(d, g_mime_message_get_mime_part(inner), depth + 1);
	} else if (GMIME_IS_MULTIPART(obj)) {
		GMimeMultipart *mp = GMIME_MULTIPART(obj);
		int n = g_mime_multipart_get_count(mp);
		for (int i = 0; i < n; i++)
			walk(d, g_mime_multipart_get_part(mp, i), depth + 1);
	} else if (GMIME_IS_PART(obj)) {
		d->n_parts++;
		walk_leaf(d, GMIME_PART(obj));
	}
}

/* "Name <user@host>": the address's domain into DOMAIN, display name into NAME. */
static int first_mailbox(InternetAddressList *list, char *domain, size_t dlen, char *name,
			 size_t nlen)
{
	domain[0] = name[0] = '\0';
	if (!list || internet_address_list_length(list) < 1)
		return -1;
	InternetAddress *ia = internet_address_list_get_address(list, 0);
	if (!INTERNET_ADDRESS_IS_MAILBOX(ia))
		return -1;
	const char *addr = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia));
	const char *at = addr ? strrchr(addr, '@') : NULL;
	if (at)
		scan_registered_domain(at + 1, domain, dlen);
	const char *n = internet_address_get_name(ia);
	snprintf(name, nlen, "%s", n ? n : "");
	return at ? 0 : -1;
}

static void smtp_facts(struct scan_doc *d, const struct scan_input *in)
{
	const struct {
		const char *name;
		const char *value;
	} facts[] = {{"spf", in->spf}, {"dkim", in->dkim}, {"dmarc", in->dmarc}};
	for (size_t i = 0; i < sizeof(facts) / sizeof(facts[0]); i++) {
		const char *v = facts[i].value;
		if (!v || !*v)
			continue;
		char feat[48];
		snprintf(feat, sizeof(feat), "%s=%.20s", facts[i].name, v);
		scan_feat_str(d, "auth", feat);
		if (strcasecmp(v, "fail") == 0 || strcasecmp(v, "softfail") == 0 ||
		    strcasecmp(v, "permerror") == 0)
			scan_flag(d, SCAN_F_AUTH_FAIL, "%s check: %.20s", facts[i].name, v);
	}
	if (in->helo && *in->helo && !strchr(in->helo, '.'))
		scan_feat_str(d, "helo", "no-dot");
}

static int header_wanted(const char *name)
{
	static const char *const wanted[] = {"Received",    "Message-ID",   "Date", "X-Mailer",
					     "User-Agent",  "Content-Type", "From", "Reply-To",
					     "Return-Path", "Sender",	    "To",   "Cc",
					     "List-Id",	    "Precedence"};
	for (size_t i = 0; i < sizeof(wanted) / sizeof(wanted[0]); i++)
		if (strcasecmp(name, wanted[i]) == 0)
			return 1;
	return 0;
}

static void walk_headers(struct scan_doc *d, GMimeMessage *m)
{
	GMimeHeaderList *hl = g_mime_object_get_header_list(GMIME_OBJECT(m));
	int n = hl ? g_mime_header_list_get_count(hl) : 0;
	int received = 0, have_msgid = 0, have_date = 0;
	GMimeHeader *recv_hdr[RECV_MAX];
	int n_recv = 0;

	for (int i = 0; i < n; i++) {
		GMimeHeader *h = g_mime_header_list_get_header_at(hl, i);
		const char *name = g_mime_header_get_name(h);
		/* Authentication-Results is written by receiving servers,
		 * Postern among them: it says where a message was received,
		 * not what it is (in the corpus only the newer phishing
		 * carries it, so a model would learn "has it: phishing").
		 * The results Postern trusts come through scan_input. */
		if (!name || strcasecmp(name, "Authentication-Results") == 0)
			continue;
		scan_feat_str(d, "hn", name);
		if (strcasecmp(name, "Received") == 0 && n_recv < RECV_MAX)
			recv_hdr[n_recv++] = h;
		/* Values are decoded lazily by GMime and that is costly: only
		 * the headers used below are decoded. */
		if (!header_wanted(name))
			continue;
		if (strcasecmp(name, "Received") == 0) {
			/* The hops nearest this server (the first ones; the
			 * origin's are tokenized below). Raw: unfolding and
			 * decoding would change no token of a Received value. */
			const char *raw = g_mime_header_get_raw_value(h);
			if (raw && received < 3)
				scan_tokenize(d, "hr", raw, strnlen(raw, 256));
			received++;
			continue;
		}
		if (strcasecmp(name, "Message-ID") == 0) {
			have_msgid = 1;
			continue;
		}
		if (strcasecmp(name, "Date") == 0) {
			have_date = 1;
			continue;
		}
		const char *value = g_mime_header_get_value(h);
		if (!value)
			value = "";
		size_t vlen = strnlen(value, SCAN_MAX_HEADER_BYTES);
		if (strcasecmp(name, "X-Mailer") == 0 || strcasecmp(name, "User-Agent") == 0)
			scan_tokenize(d, "xm", value, vlen);
		else if (strcasecmp(name, "Content-Type") == 0)
			scan_tokenize(d, "hct", value, vlen < 64 ? vlen : 64);
		else if (strcasecmp(name, "From") == 0 || strcasecmp(name, "Reply-To") == 0 ||
			 strcasecmp(name, "Return-Path") == 0 || strcasecmp(name, "Sender") == 0)
			scan_tokenize(d, "hf", value, vlen < 256 ? vlen : 256);
		else if (strcasecmp(name, "To") == 0 || strcasecmp(name, "Cc") == 0)
			scan_tokenize(d, "hto", value, vlen < 256 ? vlen : 256);
		else if (strcasecmp(name, "List-Id") == 0 || strcasecmp(name, "Precedence") == 0)
			scan_tokenize(d, "hl", value, vlen < 128 ? vlen : 128);
	}
	/* The hops nearest the sender (the last Received headers) say who
	 * handed the message in: a host without reverse DNS ("unknown"), a
	 * HELO that is a bare IP address. */
	for (int k = n_recv - 1; k >= 0 && k >= n_recv - RECV_ORIGIN; k--) {
		const char *v = g_mime_header_get_raw_value(recv_hdr[k]);
		if (!v)
			continue;
		size_t vl = strnlen(v, 256);
		scan_tokenize(d, "hro", v, vl);
		if (k == n_recv - 1) {
			if (memmem(v, vl, "unknown", 7))
				scan_feat_str(d, "hrx", "origin-unknown");
			const char *helo = memmem(v, vl, "HELO ", 5);
			if (!helo)
				helo = memmem(v, vl, "helo=", 5);
			if (helo && (size_t)(helo - v) + 5 < vl && isdigit((unsigned char)helo[5]))
				scan_feat_str(d, "hrx", "origin-helo-ip");
		}
	}
	char buf[16];
	snprintf(buf, sizeof(buf), "%d", received > 10 ? 10 : received);
	scan_feat_str(d, "nrecv", buf);
	if (!have_msgid)
		scan_feat_str(d, "hmiss", "message-id");
	if (!have_date)
		scan_feat_str(d, "hmiss", "date");

	const char *subject = g_mime_message_get_subject(m);
	if (subject)
		scan_tokenize(d, "s", subject, strnlen(subject, SCAN_MAX_HEADER_BYTES));
	else
		scan_feat_str(d, "hmiss", "subject");

	char from_dom[256], from_name[256], rt_dom[256], rt_name[256];
	if (first_mailbox(g_mime_message_get_from(m), from_dom, sizeof(from_dom), from_name,
			  sizeof(from_name)) == 0) {
		snprintf(d->from_domain, sizeof(d->from_domain), "%s", from_dom);
		scan_feat_str(d, "fd", from_dom);
		const char *tld = strrchr(from_dom, '.');
		scan_feat_str(d, "ft", tld ? tld + 1 : from_dom);
		scan_tokenize(d, "fn", from_name, strlen(from_name));
		const char *brand = scan_brand_in_text(from_name);
		if (brand) {
			char brand_rd[256];
			scan_registered_domain(brand, brand_rd, sizeof(brand_rd));
			const char *dot = strchr(brand_rd, '.');
			size_t bl = dot ? (size_t)(dot - brand_rd) : strlen(brand_rd);
			if (strncmp(from_dom, brand_rd, bl) != 0 || from_dom[bl] != '.')
				scan_flag(
				    d, SCAN_F_FROM_BRAND,
				    "sender name \"%.60s\" claims %s but the address is at %s",
				    from_name, brand, from_dom);
		}
		if (first_mailbox(g_mime_message_get_reply_to(m), rt_dom, sizeof(rt_dom), rt_name,
				  sizeof(rt_name)) == 0 &&
		    strcmp(rt_dom, from_dom) != 0)
			scan_flag(d, SCAN_F_REPLYTO_MISMATCH,
				  "replies go to %s, not to the sender's domain %s", rt_dom,
				  from_dom);
	} else {
		scan_feat_str(d, "hmiss", "from");
	}
}

/* Cheap pre-check: a pathological number of multipart declarations would
 * make the parser build a huge tree; such input is scanned as raw text. */
static size_t count_multiparts(const unsigned char *msg, size_t len)
{
	size_t n = 0;
	const unsigned char *p = msg, *end = msg + len;
	/* '/' is rarer than any letter: find it, then look back. */
	while ((p = memchr(p, '/', (size_t)(end - p)))) {
		if (p - msg >= 9 && strncasecmp((const char *)p - 9, "multipart", 9) == 0)
			n++;
		p++;
	}
	return n;
}

static void scan_raw(struct scan_doc *d, const unsigned char *msg, size_t len)
{
	tokenize_text(d, (const char *)msg, len);
}

void scan_parse(struct scan_doc *d, const unsigned char *msg, size_t len,
		const struct scan_input *in)
{
	scan_gmime_init();
	if (in)
		smtp_facts(d, in);
	if (len > SCAN_MAX_PARSE_BYTES) {
		scan_flag(d, SCAN_F_TRUNCATED,
			  "message of %zu bytes: only the first %u bytes were scanned", len,
			  SCAN_MAX_PARSE_BYTES);
		len = SCAN_MAX_PARSE_BYTES;
	}
	if (len == 0) {
		scan_flag(d, SCAN_F_MALFORMED, "the message is empty");
		return;
	}
	if (memchr(msg, '\0', len))
		scan_flag(d, SCAN_F_MALFORMED, "the message contains NUL bytes");
	size_t multiparts = count_multiparts(msg, len);
	if (multiparts > SCAN_MAX_MULTIPARTS) {
		scan_flag(d, SCAN_F_MALFORMED,
			  "%zu multipart declarations (more than %d): scanned as plain text",
			  multiparts, SCAN_MAX_MULTIPARTS);
		scan_raw(d, msg, len);
		return;
	}

	GMimeStream *stream = g_mime_stream_mem_new_with_buffer((const char *)msg, len);
	GMimeParser *parser = g_mime_parser_new_with_stream(stream);
	g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
	GMimeMessage *m = g_mime_parser_construct_message(parser, NULL);
	g_object_unref(parser);
	g_object_unref(stream);
	if (!m) {
		scan_flag(d, SCAN_F_MALFORMED, "the message could not be parsed as MIME");
		scan_raw(d, msg, len);
		return;
	}
	walk_headers(d, m);
	GMimeObject *body = g_mime_message_get_mime_part(m);
	if (!body) {
		scan_feat_str(d, "mime", "no-body");
	} else {
		GMimeContentType *ct = g_mime_object_get_content_type(body);
		if (ct) {
			char *mt = g_mime_content_type_get_mime_type(ct);
			if (mt) {
				scan_feat_str(d, "ct", mt);
				g_free(mt);
			}
		}
		walk(d, body, 0);
	}
	scan_after_urls(d);
	g_object_unref(m);
}
