/*
 * mailauth_psl.c - the organizational domain (RFC 7489 3.2) from the Public
 * Suffix List (Debian's publicsuffix package). DMARC alignment in relaxed
 * mode compares organizational domains, and the DMARC record of a
 * subdomain falls back to its organizational domain's, so "last two labels"
 * is wrong for names like a.b.example.co.uk (org domain example.co.uk, not
 * co.uk, under which every .co.uk domain would align with every other).
 *
 * The list is read once into a sorted array of rules ("name", "*.name",
 * "!name"); lookups are read-only and safe from several threads. The
 * algorithm is the one of publicsuffix.org/list: an exception rule wins,
 * else the matching rule with the most labels, else the implicit "*".
 * libopendmarc can load the same file, but its lookup is not in its public
 * header and leaves the result unset for suffixes it does not know (such as
 * "test"), so the rule is applied here.
 */
#include <config.h>

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mailauth/mailauth.h"

#define PSL_LINE_MAX 512
#define PSL_RULES_MAX 100000 /* the list has about 9,500 */

static char **rules;
static size_t n_rules;

static int rule_cmp(const void *a, const void *b)
{
	return strcasecmp(*(char *const *)a, *(char *const *)b);
}

static bool rule_exists(const char *prefix, const char *name)
{
	char key[PSL_LINE_MAX];
	const char *k = key;
	int n = snprintf(key, sizeof(key), "%s%s", prefix, name);

	if (n < 0 || (size_t)n >= sizeof(key) || n_rules == 0)
		return false;
	return bsearch(&k, rules, n_rules, sizeof(*rules), rule_cmp) != NULL;
}

void mailauth_psl_free(void)
{
	for (size_t i = 0; i < n_rules; i++)
		free(rules[i]);
	free(rules);
	rules = NULL;
	n_rules = 0;
}

int mailauth_psl_load(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	char line[PSL_LINE_MAX];
	char **list = NULL;
	size_t n = 0, cap = 0;

	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		/* a rule is the first word of its line; "//" starts a comment */
		size_t len = strcspn(line, " \t\r\n");
		char *rule;

		line[len] = '\0';
		if (len == 0 || strncmp(line, "//", 2) == 0)
			continue;
		if (n == PSL_RULES_MAX) {
			snprintf(err, errlen, "%s: more than %d rules", path, PSL_RULES_MAX);
			goto fail;
		}
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 1024;
			char **p = realloc(list, ncap * sizeof(*p));

			if (!p)
				goto oom;
			list = p;
			cap = ncap;
		}
		if (!(rule = strdup(line)))
			goto oom;
		for (char *c = rule; *c; c++)
			*c = (char)tolower((unsigned char)*c);
		list[n++] = rule;
	}
	if (ferror(f)) {
		snprintf(err, errlen, "%s: read error", path);
		goto fail;
	}
	fclose(f);
	if (n == 0) {
		snprintf(err, errlen, "%s: no rules", path);
		free(list);
		return -1;
	}
	qsort(list, n, sizeof(*list), rule_cmp);
	mailauth_psl_free();
	rules = list;
	n_rules = n;
	return 0;
oom:
	snprintf(err, errlen, "%s: out of memory", path);
fail:
	fclose(f);
	for (size_t i = 0; i < n; i++)
		free(list[i]);
	free(list);
	return -1;
}

const char *mailauth_org_domain(const char *domain)
{
	const char *labels[128];
	size_t n = 0, suffix;
	bool found = false;

	/* labels[i] is where the name made of the labels i.. starts */
	for (const char *p = domain; *p && n < sizeof(labels) / sizeof(labels[0]);) {
		labels[n++] = p;
		p = strchr(p, '.');
		if (!p)
			break;
		p++;
	}
	if (n < 2)
		return domain;
	/* an exception rule "!x.y" makes y the public suffix: x.y is registrable */
	for (size_t i = 0; i < n; i++)
		if (rule_exists("!", labels[i]))
			return labels[i];
	/* otherwise the longest matching rule; the implicit "*" is the last label */
	suffix = n - 1;
	for (size_t i = 0; i < n && !found; i++) {
		if (rule_exists("", labels[i]) || (i + 1 < n && rule_exists("*.", labels[i + 1]))) {
			suffix = i;
			found = true;
		}
	}
	/* the domain is a public suffix itself: no organizational domain above it */
	return suffix == 0 ? domain : labels[suffix - 1];
}
