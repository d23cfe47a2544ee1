/*
 * scan_url.c - URL analysis: host extraction, registered domain, IP-literal
 * and punycode hosts, look-alikes of well-known brands, shorteners, and
 * link text that shows one domain while the link goes to another.
 *
 * Every finding becomes a model feature (its weight is learned from the
 * corpus) and a reason a person can read.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "scan/scan_int.h"

#define HOST_MAX 256
#define MANY_DOMAINS 12
#define URL_PATH_MAX                                                                               \
	200 /* bytes of a link's path tokenized */ /* distinct registered domains before it is a   \
						      signal */

struct brand {
	const char *name;   /* label an imitation contains */
	const char *domain; /* the real domain, shown in reasons */
};

/* Brands phishing imitates most. A host whose registered domain's first
 * label is exactly the name is taken as the brand's own (paypal.de). */
static const struct brand brands[] = {
    {"paypal", "paypal.com"},
    {"apple", "apple.com"},
    {"icloud", "icloud.com"},
    {"microsoft", "microsoft.com"},
    {"office365", "office.com"},
    {"outlook", "outlook.com"},
    {"amazon", "amazon.com"},
    {"google", "google.com"},
    {"gmail", "gmail.com"},
    {"netflix", "netflix.com"},
    {"facebook", "facebook.com"},
    {"instagram", "instagram.com"},
    {"linkedin", "linkedin.com"},
    {"dropbox", "dropbox.com"},
    {"docusign", "docusign.com"},
    {"chase", "chase.com"},
    {"wellsfargo", "wellsfargo.com"},
    {"bankofamerica", "bankofamerica.com"},
    {"citibank", "citibank.com"},
    {"hsbc", "hsbc.com"},
    {"barclays", "barclays.co.uk"},
    {"fedex", "fedex.com"},
    {"dhl", "dhl.com"},
    {"usps", "usps.com"},
    {"ebay", "ebay.com"},
    {"adobe", "adobe.com"},
    {"coinbase", "coinbase.com"},
    {"binance", "binance.com"},
    {"blockchain", "blockchain.com"},
    {"metamask", "metamask.io"},
    {"whatsapp", "whatsapp.com"},
    {"yahoo", "yahoo.com"},
    {"americanexpress", "americanexpress.com"},
    {"santander", "santander.com"},
    {"steamcommunity", "steamcommunity.com"},
    {"wetransfer", "wetransfer.com"},
    {"onedrive", "onedrive.live.com"},
    {"sharepoint", "sharepoint.com"},
};

static const char *const shorteners[] = {
    "bit.ly",  "tinyurl.com", "goo.gl",	   "t.co",	  "ow.ly",     "is.gd",
    "buff.ly", "rebrand.ly",  "cutt.ly",   "shorturl.at", "tiny.cc",   "rb.gy",
    "t.ly",    "s.id",	      "shorte.st", "adf.ly",	  "bitly.com", "v.gd",
};

/* Second-level labels under which registrations happen one level deeper. */
static const char *const second_levels[] = {"co", "com", "net", "org", "gov",
					    "ac", "edu", "ne",	"or"};

static void lower_copy(char *dst, size_t dstlen, const char *s, size_t len)
{
	size_t n = len < dstlen - 1 ? len : dstlen - 1;
	for (size_t i = 0; i < n; i++)
		dst[i] = (char)tolower((unsigned char)s[i]);
	dst[n] = '\0';
}

void scan_registered_domain(const char *host, char *out, size_t outlen)
{
	size_t len = strlen(host);
	while (len && host[len - 1] == '.')
		len--;
	size_t dots[3] = {0};
	int nd = 0;
	for (size_t i = len; i-- > 0;) {
		if (host[i] == '.') {
			dots[nd++] = i + 1;
			if (nd == 3)
				break;
		}
	}
	size_t start = 0;
	if (nd >= 2) {
		start = dots[1];
		/* "example.co.uk": a short second level under a two-letter TLD. */
		size_t tld_len = len - dots[0];
		size_t sl_len = dots[0] - 1 - dots[1];
		if (tld_len == 2) {
			for (size_t i = 0; i < sizeof(second_levels) / sizeof(second_levels[0]);
			     i++) {
				if (strlen(second_levels[i]) == sl_len &&
				    strncmp(host + dots[1], second_levels[i], sl_len) == 0) {
					start = nd >= 3 ? dots[2] : 0;
					break;
				}
			}
		}
	}
	lower_copy(out, outlen, host + start, len - start);
}

static int is_ip_literal(const char *host)
{
	if (host[0] == '[') {
		/* "[2001:db8::1]" but not template placeholders like "[unsubscribe]" */
		for (const char *p = host + 1; *p && *p != ']'; p++)
			if (!isxdigit((unsigned char)*p) && *p != ':' && *p != '.')
				return 0;
		return 1;
	}
	int dots = 0, digits = 0;
	for (const char *p = host; *p; p++) {
		if (*p == '.')
			dots++;
		else if (isdigit((unsigned char)*p))
			digits++;
		else
			return 0;
	}
	/* dotted quad, or a bare decimal integer host (http://3232235777/). */
	return digits > 0 && (dots == 3 || (dots == 0 && digits >= 8));
}

/* Undoes the digit-for-letter swaps of look-alike domains. */
static void deglyph(const char *s, char *out, size_t outlen)
{
	size_t o = 0;
	for (size_t i = 0; s[i] && o + 1 < outlen; i++) {
		char c = s[i];
		if (c == '-')
			continue;
		if (c == 'r' && s[i + 1] == 'n') {
			out[o++] = 'm';
			i++;
			continue;
		}
		if (c == 'v' && s[i + 1] == 'v') {
			out[o++] = 'w';
			i++;
			continue;
		}
		switch (c) {
		case '0':
			c = 'o';
			break;
		case '1':
			c = 'l';
			break;
		case '3':
			c = 'e';
			break;
		case '5':
			c = 's';
			break;
		case '4':
			c = 'a';
			break;
		default:
			break;
		}
		out[o++] = c;
	}
	out[o] = '\0';
}

/* Levenshtein distance, capped: we only ask "is it at most 1". */
static int within_one_edit(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > lb + 1 || lb > la + 1)
		return 0;
	size_t i = 0, j = 0;
	int edits = 0;
	while (i < la && j < lb) {
		if (a[i] == b[j]) {
			i++;
			j++;
			continue;
		}
		if (++edits > 1)
			return 0;
		if (la > lb)
			i++;
		else if (lb > la)
			j++;
		else {
			i++;
			j++;
		}
	}
	edits += (int)((la - i) + (lb - j));
	return edits <= 1;
}

/* Does LABEL contain NAME bounded by '-' or the label's ends? */
static int contains_bounded(const char *label, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = strstr(label, name); p; p = strstr(p + 1, name)) {
		int left = p == label || p[-1] == '-';
		int right = p[n] == '\0' || p[n] == '-';
		if (left && right)
			return 1;
	}
	return 0;
}

const char *scan_lookalike(const char *host)
{
	char rd[HOST_MAX], first[HOST_MAX], norm[HOST_MAX];
	scan_registered_domain(host, rd, sizeof(rd));
	const char *dot = strchr(rd, '.');
	size_t flen = dot ? (size_t)(dot - rd) : strlen(rd);
	lower_copy(first, sizeof(first), rd, flen);
	deglyph(first, norm, sizeof(norm));

	for (size_t b = 0; b < sizeof(brands) / sizeof(brands[0]); b++) {
		const char *name = brands[b].name;
		size_t nlen = strlen(name);
		if (strcmp(first, name) == 0)
			return NULL; /* the brand's own registration */
		/* paypa1.com, rnicrosoft.com, paypall.com */
		if (strcmp(norm, name) == 0 || (nlen >= 5 && within_one_edit(norm, name)))
			return brands[b].domain;
		/* paypal-secure.com */
		if (nlen >= 4 && contains_bounded(first, name))
			return brands[b].domain;
		/* paypal.com.account-verify.ru: the brand as a label left of the
		 * registered domain. */
		size_t hlen = strlen(host), rlen = strlen(rd);
		if (hlen > rlen) {
			char sub[HOST_MAX];
			lower_copy(sub, sizeof(sub), host, hlen - rlen);
			for (char *tok = sub; *tok;) {
				char *end = strchr(tok, '.');
				if (end)
					*end = '\0';
				if (strcmp(tok, name) == 0 ||
				    (nlen >= 5 && contains_bounded(tok, name)))
					return brands[b].domain;
				if (!end)
					break;
				tok = end + 1;
			}
		}
	}
	return NULL;
}

const char *scan_brand_in_text(const char *name)
{
	char low[HOST_MAX];
	lower_copy(low, sizeof(low), name, strlen(name));
	for (size_t b = 0; b < sizeof(brands) / sizeof(brands[0]); b++) {
		const char *p = strstr(low, brands[b].name);
		size_t n = strlen(brands[b].name);
		if (n < 4 || !p)
			continue;
		int left = p == low || !isalnum((unsigned char)p[-1]);
		int right = !isalnum((unsigned char)p[n]);
		if (left && right)
			return brands[b].domain;
	}
	return NULL;
}

/* Extracts the host of URL (scheme optional) into HOST; returns 0 or -1.
 * *USERINFO is set when the URL has "user@" before the host. */
static int url_host(const char *url, size_t len, char *host, size_t hostlen, int *userinfo)
{
	size_t i = 0;
	*userinfo = 0;
	const char *sep = memchr(url, ':', len < 12 ? len : 12);
	if (sep && (size_t)(sep - url) + 2 < len && sep[1] == '/' && sep[2] == '/')
		i = (size_t)(sep - url) + 3;
	else if (len >= 2 && url[0] == '/' && url[1] == '/')
		i = 2;
	size_t start = i, end = i;
	while (end < len && url[end] != '/' && url[end] != '?' && url[end] != '#' &&
	       url[end] != '\\' && !isspace((unsigned char)url[end]))
		end++;
	/* user@host: the part after the last '@' is the real host. */
	for (size_t k = end; k-- > start;) {
		if (url[k] == '@') {
			start = k + 1;
			*userinfo = 1;
			break;
		}
	}
	size_t hend = start;
	if (hend < end && url[hend] == '[') {
		while (hend < end && url[hend] != ']')
			hend++;
		if (hend < end)
			hend++;
	} else {
		while (hend < end && url[hend] != ':')
			hend++;
	}
	if (hend == start || hend - start >= hostlen)
		return -1;
	lower_copy(host, hostlen, url + start, hend - start);
	/* Trailing dots and punctuation copied from prose. */
	size_t hl = strlen(host);
	while (hl && (host[hl - 1] == '.' || host[hl - 1] == ','))
		host[--hl] = '\0';
	return hl ? 0 : -1;
}

/* Finds a domain the link text shows: a URL or a bare "name.tld" word. */
static int text_domain(const char *text, size_t len, char *host, size_t hostlen)
{
	size_t i = 0;
	while (i < len) {
		while (i < len && isspace((unsigned char)text[i]))
			i++;
		size_t s = i;
		while (i < len && !isspace((unsigned char)text[i]))
			i++;
		size_t wl = i - s;
		if (wl < 4)
			continue;
		const char *w = text + s;
		int userinfo;
		if ((wl > 7 && strncasecmp(w, "http", 4) == 0) ||
		    (wl > 4 && strncasecmp(w, "www.", 4) == 0)) {
			if (url_host(w, wl, host, hostlen, &userinfo) == 0 && strchr(host, '.'))
				return 0;
			continue;
		}
		/* bare domain: letters/digits/hyphens with a dot and an alphabetic TLD */
		size_t e = wl;
		while (e && strchr(".,;:!?)", w[e - 1]))
			e--;
		const char *lastdot = NULL;
		int ok = e > 3;
		for (size_t k = 0; k < e && ok; k++) {
			char c = w[k];
			if (c == '.')
				lastdot = w + k;
			else if (!isalnum((unsigned char)c) && c != '-')
				ok = 0;
		}
		if (!ok || !lastdot || lastdot == w)
			continue;
		size_t tl = (size_t)(w + e - lastdot - 1);
		int alpha = tl >= 2 && tl <= 6;
		for (size_t k = 1; k <= tl && alpha; k++)
			alpha = isalpha((unsigned char)lastdot[k]);
		if (!alpha)
			continue;
		if (e < hostlen) {
			lower_copy(host, hostlen, w, e);
			return 0;
		}
	}
	return -1;
}

static void note_domain(struct scan_doc *d, const char *rd)
{
	for (size_t i = 0; i < d->n_url_domains; i++)
		if (strcmp(d->url_domains[i], rd) == 0)
			return;
	if (d->n_url_domains < SCAN_MAX_URLS)
		snprintf(d->url_domains[d->n_url_domains++], sizeof(d->url_domains[0]), "%.63s",
			 rd);
}

void scan_url(struct scan_doc *d, const char *url, size_t len, const char *link_text,
	      size_t text_len)
{
	char host[HOST_MAX], rd[HOST_MAX];
	int userinfo;

	if (d->n_urls >= SCAN_MAX_URLS)
		return;
	if (len >= 7 && strncasecmp(url, "mailto:", 7) == 0) {
		scan_feat_str(d, "u", "mailto");
		return;
	}
	if (url_host(url, len, host, sizeof(host), &userinfo) != 0)
		return;
	d->n_urls++;
	if (len >= 5 && strncasecmp(url, "http:", 5) == 0)
		scan_feat_str(d, "u", "http");
	/* Words of the path and query ("unsubscribe", "login", "php"). */
	const char *path = memchr(url, '/', len);
	if (path && path + 1 < url + len && path[1] == '/')
		path = memchr(path + 2, '/', (size_t)(url + len - path - 2));
	if (path) {
		size_t plen = (size_t)(url + len - path);
		scan_tokenize(d, "up", path, plen < URL_PATH_MAX ? plen : URL_PATH_MAX);
	}

	int ip = is_ip_literal(host);
	/* A host is judged once per message; newsletters repeat theirs. */
	uint32_t hh = scan_hash("host", host, strlen(host));
	int seen = 0;
	for (size_t i = 0; i < d->n_url_hosts && !seen; i++)
		seen = d->url_hosts[i] == hh;
	if (!seen && d->n_url_hosts < SCAN_MAX_URLS)
		d->url_hosts[d->n_url_hosts++] = hh;
	if (seen) {
		scan_registered_domain(host, rd, sizeof(rd));
		if (ip)
			snprintf(rd, sizeof(rd), "%s", host);
	} else if (ip) {
		snprintf(rd, sizeof(rd), "%s", host);
		scan_flag(d, SCAN_F_URL_IP, "link goes to the IP address %s", host);
	} else {
		scan_registered_domain(host, rd, sizeof(rd));
		scan_feat_str(d, "ud", rd);
		const char *tld = strrchr(rd, '.');
		scan_feat_str(d, "ut", tld ? tld + 1 : rd);
		if (strstr(host, "xn--"))
			scan_flag(d, SCAN_F_URL_PUNYCODE, "link host %s is punycode (IDN)", host);
		const char *brand = scan_lookalike(host);
		if (brand)
			scan_flag(d, SCAN_F_URL_LOOKALIKE, "link host %s looks like %s", host,
				  brand);
		for (size_t i = 0; i < sizeof(shorteners) / sizeof(shorteners[0]); i++) {
			if (strcmp(host, shorteners[i]) == 0 || strcmp(rd, shorteners[i]) == 0) {
				scan_flag(d, SCAN_F_URL_SHORTENER, "link uses the URL shortener %s",
					  host);
				break;
			}
		}
	}
	if (userinfo)
		scan_flag(d, SCAN_F_LINK_MISMATCH, "link hides its host %s behind user info", host);
	note_domain(d, rd);

	if (link_text && text_len) {
		char shown[HOST_MAX], shown_rd[HOST_MAX];
		if (text_domain(link_text, text_len, shown, sizeof(shown)) == 0) {
			if (is_ip_literal(shown))
				snprintf(shown_rd, sizeof(shown_rd), "%s", shown);
			else
				scan_registered_domain(shown, shown_rd, sizeof(shown_rd));
			if (strcmp(shown_rd, rd) != 0) {
				scan_flag(d, SCAN_F_LINK_MISMATCH,
					  "link text shows %s but points to %s", shown, host);
				/* Newsletters route links through trackers; a link
				 * that shows a bank or goes to a bare IP does not. */
				if (ip || scan_brand_in_text(shown) || scan_lookalike(host))
					scan_flag(d, SCAN_F_BRAND_LINK, NULL);
			}
		}
	}
}

void scan_text_urls(struct scan_doc *d, const char *text, size_t len)
{
	size_t i = 0;
	while (i + 4 < len && d->n_urls < SCAN_MAX_URLS) {
		const char *p = text + i;
		size_t rest = len - i;
		char c0 = (char)(*p | 0x20);
		if (c0 != 'h' && c0 != 'w') {
			i++;
			continue;
		}
		int hit =
		    (rest > 7 && (strncasecmp(p, "http://", 7) == 0 ||
				  (rest > 8 && strncasecmp(p, "https://", 8) == 0))) ||
		    (strncasecmp(p, "www.", 4) == 0 && (i == 0 || !isalnum((unsigned char)p[-1])));
		if (!hit) {
			i++;
			continue;
		}
		size_t e = 0;
		while (e < rest && !isspace((unsigned char)p[e]) && !strchr("<>\"'()[]{}", p[e]))
			e++;
		scan_url(d, p, e, NULL, 0);
		i += e ? e : 1;
	}
}

void scan_after_urls(struct scan_doc *d)
{
	if (d->n_url_domains > MANY_DOMAINS)
		scan_flag(d, SCAN_F_MANY_DOMAINS, "links go to %zu different domains",
			  d->n_url_domains);
	char bucket[16];
	snprintf(bucket, sizeof(bucket), "%zu", d->n_urls > 20 ? 20 : d->n_urls / 4 * 4);
	scan_feat_str(d, "nurl", bucket);
}
