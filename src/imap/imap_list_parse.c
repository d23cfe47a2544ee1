/*
 * imap_list_parse.c - the arguments of LIST and LSUB (RFC 3501 6.3.8,
 * RFC 5258 LIST-EXTENDED, RFC 5819 LIST-STATUS) and the STATUS items
 * (RFC 3501 6.3.10, RFC 8438, RFC 9051, RFC 9208). Pure: no I/O, no state.
 *
 *   LIST [(selection options)] reference (pattern | (pattern ...))
 *        [RETURN (return options)]
 */
#include <config.h>

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "imap/imap.h"

static const char *const status_items[] = {
    [STATUS_MESSAGES] = "MESSAGES",
    [STATUS_RECENT] = "RECENT",
    [STATUS_UIDNEXT] = "UIDNEXT",
    [STATUS_UIDVALIDITY] = "UIDVALIDITY",
    [STATUS_UNSEEN] = "UNSEEN",
    [STATUS_SIZE] = "SIZE",
    [STATUS_HIGHESTMODSEQ] = "HIGHESTMODSEQ",
    [STATUS_DELETED] = "DELETED",
    [STATUS_DELETED_STORAGE] = "DELETED-STORAGE",
    [STATUS_APPENDLIMIT] = "APPENDLIMIT",
};

int imap_status_item(const struct imap_arg *arg)
{
	for (size_t i = 0; i < sizeof(status_items) / sizeof(status_items[0]); i++)
		if (imap_arg_is(arg, status_items[i]))
			return (int)i;
	return -1;
}

const char *imap_status_item_name(enum imap_status_item item)
{
	return status_items[item];
}

int imap_status_items_parse(const struct imap_arg *list, struct imap_status_items *out, char *err,
			    size_t errlen)
{
	memset(out, 0, sizeof(*out));
	if (list->type != IMAP_ARG_LIST || list->n == 0) {
		snprintf(err, errlen, "STATUS needs a list of items");
		return -1;
	}
	if (list->n > IMAP_STATUS_ITEMS_MAX) {
		snprintf(err, errlen, "Too many STATUS items");
		return -1;
	}
	for (size_t i = 0; i < list->n; i++) {
		int item = imap_status_item(&list->list[i]);
		if (item < 0) {
			snprintf(err, errlen, "Unknown STATUS item");
			return -1;
		}
		out->items[out->n++] = (enum imap_status_item)item;
	}
	return 0;
}

static int selection(const struct imap_arg *list, struct imap_list_opts *o, char *err,
		     size_t errlen)
{
	bool recursive = false;

	for (size_t i = 0; i < list->n; i++) {
		const struct imap_arg *a = &list->list[i];
		if (imap_arg_is(a, "SUBSCRIBED"))
			o->sel_subscribed = true;
		else if (imap_arg_is(a, "SPECIAL-USE"))
			o->sel_special = true;
		else if (imap_arg_is(a, "REMOTE"))
			continue; /* no remote mailboxes: nothing more to list */
		else if (imap_arg_is(a, "RECURSIVEMATCH"))
			recursive = true;
		else {
			snprintf(err, errlen, "Unknown LIST selection option");
			return -1;
		}
	}
	/* RFC 5258 3.1: RECURSIVEMATCH needs an option it can modify. */
	if (recursive && !o->sel_subscribed && !o->sel_special) {
		snprintf(err, errlen, "RECURSIVEMATCH needs SUBSCRIBED or SPECIAL-USE");
		return -1;
	}
	o->recursive = recursive;
	return 0;
}

static int return_options(const struct imap_arg *list, struct imap_list_opts *o, char *err,
			  size_t errlen)
{
	for (size_t i = 0; i < list->n; i++) {
		const struct imap_arg *a = &list->list[i];
		if (imap_arg_is(a, "SUBSCRIBED"))
			o->ret_subscribed = true;
		else if (imap_arg_is(a, "CHILDREN"))
			o->ret_children = true;
		else if (imap_arg_is(a, "SPECIAL-USE"))
			o->ret_special = true;
		else if (imap_arg_is(a, "STATUS")) {
			if (o->ret_status || i + 1 == list->n) {
				snprintf(err, errlen, "RETURN STATUS needs one list of items");
				return -1;
			}
			if (imap_status_items_parse(&list->list[++i], &o->status, err, errlen) < 0)
				return -1;
			o->ret_status = true;
		} else {
			snprintf(err, errlen, "Unknown LIST return option");
			return -1;
		}
	}
	return 0;
}

int imap_list_parse(const struct imap_arg *args, size_t n, bool lsub, struct imap_list_opts *out,
		    char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	if (!lsub && n >= 1 && args[0].type == IMAP_ARG_LIST) {
		if (selection(&args[0], out, err, errlen) < 0)
			return -1;
		out->extended = true;
		args++;
		n--;
	}
	if (n < 2 || !imap_arg_is_string(&args[0])) {
		snprintf(err, errlen, "%s needs a reference and a mailbox pattern",
			 lsub ? "LSUB" : "LIST");
		return -1;
	}
	out->reference = &args[0];
	if (!lsub && args[1].type == IMAP_ARG_LIST) {
		if (args[1].n == 0 || args[1].n > IMAP_LIST_PATTERNS_MAX) {
			snprintf(err, errlen, "LIST needs 1 to %d patterns",
				 IMAP_LIST_PATTERNS_MAX);
			return -1;
		}
		for (size_t i = 0; i < args[1].n; i++) {
			if (!imap_arg_is_string(&args[1].list[i])) {
				snprintf(err, errlen, "A LIST pattern must be a string");
				return -1;
			}
			out->patterns[out->n_patterns++] = &args[1].list[i];
		}
		out->extended = true;
	} else if (imap_arg_is_string(&args[1])) {
		out->patterns[out->n_patterns++] = &args[1];
	} else {
		snprintf(err, errlen, "%s needs a reference and a mailbox pattern",
			 lsub ? "LSUB" : "LIST");
		return -1;
	}
	args += 2;
	n -= 2;
	if (n == 0)
		return 0;
	if (lsub || n != 2 || !imap_arg_is(&args[0], "RETURN") || args[1].type != IMAP_ARG_LIST) {
		snprintf(err, errlen, "Unexpected arguments after the %s pattern",
			 lsub ? "LSUB" : "LIST");
		return -1;
	}
	out->extended = true;
	return return_options(&args[1], out, err, errlen);
}
