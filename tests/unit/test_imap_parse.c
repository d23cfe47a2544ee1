/*
 * test_imap_parse.c - the pure IMAP pieces: command parser (tags, atoms,
 * quoted strings, literals, lists, limits), literal markers, sequence sets,
 * FETCH items, SEARCH keys, dates, mailbox names, LIST patterns, SASL PLAIN,
 * and the MIME structure behind BODYSTRUCTURE, ENVELOPE and sections.
 */
#include <config.h>

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap.h"
#include "imap/imap_int.h"

static int parse(const char *s, struct imap_command *cmd)
{
	return imap_parse(s, strlen(s), cmd);
}

START_TEST(test_quota_units)
{
	ck_assert_uint_eq(imap_quota_kb(0), 0);
	ck_assert_uint_eq(imap_quota_kb(-5), 0);
	ck_assert_uint_eq(imap_quota_kb(1), 1);
	ck_assert_uint_eq(imap_quota_kb(1024), 1);
	ck_assert_uint_eq(imap_quota_kb(1025), 2);
	ck_assert_uint_eq(imap_quota_kb(INT64_MAX), ((uint64_t)INT64_MAX + 1023) / 1024);
}
END_TEST

static int list_parse(const char *line, struct imap_command *c, struct imap_list_opts *o, char *err)
{
	ck_assert_int_eq(parse(line, c), 0);
	return imap_list_parse(c->args, c->n_args, strcmp(c->verb, "LSUB") == 0, o, err, 128);
}

START_TEST(test_list_arguments)
{
	struct imap_command c;
	struct imap_list_opts o;
	char err[128];

	ck_assert_int_eq(list_parse("a LIST \"\" *", &c, &o, err), 0);
	ck_assert(!o.extended);
	ck_assert_uint_eq(o.n_patterns, 1);
	ck_assert_str_eq(o.patterns[0]->str, "*");
	imap_command_free(&c);

	ck_assert_int_eq(
	    list_parse("a LIST (SUBSCRIBED RECURSIVEMATCH remote) \"\" (INBOX \"Sent\" %/x) "
		       "RETURN (CHILDREN special-use SUBSCRIBED STATUS (MESSAGES UNSEEN SIZE))",
		       &c, &o, err),
	    0);
	ck_assert(o.extended && o.sel_subscribed && o.recursive && !o.sel_special);
	ck_assert(o.ret_children && o.ret_special && o.ret_subscribed && o.ret_status);
	ck_assert_uint_eq(o.n_patterns, 3);
	ck_assert_str_eq(o.patterns[2]->str, "%/x");
	ck_assert_uint_eq(o.status.n, 3);
	ck_assert_int_eq(o.status.items[0], STATUS_MESSAGES);
	ck_assert_int_eq(o.status.items[2], STATUS_SIZE);
	imap_command_free(&c);

	ck_assert_int_eq(list_parse("a LIST \"\" % RETURN ()", &c, &o, err), 0);
	ck_assert(o.extended && !o.ret_status);
	imap_command_free(&c);

	ck_assert_int_eq(list_parse("a LIST (RECURSIVEMATCH) \"\" *", &c, &o, err), -1);
	ck_assert_str_eq(err, "RECURSIVEMATCH needs SUBSCRIBED or SPECIAL-USE");
	imap_command_free(&c);
	ck_assert_int_eq(list_parse("a LIST (BOGUS) \"\" *", &c, &o, err), -1);
	ck_assert_str_eq(err, "Unknown LIST selection option");
	imap_command_free(&c);
	ck_assert_int_eq(list_parse("a LIST \"\" * RETURN (MYRIGHTS)", &c, &o, err), -1);
	ck_assert_str_eq(err, "Unknown LIST return option");
	imap_command_free(&c);
	ck_assert_int_eq(list_parse("a LIST \"\" * RETURN (STATUS)", &c, &o, err), -1);
	imap_command_free(&c);
	ck_assert_int_eq(list_parse("a LIST \"\" * RETURN (STATUS (MESSAGES FOO))", &c, &o, err),
			 -1);
	ck_assert_str_eq(err, "Unknown STATUS item");
	imap_command_free(&c);
	ck_assert_int_eq(list_parse("a LIST \"\" * RETURN (STATUS ())", &c, &o, err), -1);
	imap_command_free(&c);
	ck_assert_int_eq(list_parse("a LIST \"\" ()", &c, &o, err), -1);
	imap_command_free(&c);
	ck_assert_int_eq(list_parse("a LIST \"\" * EXTRA", &c, &o, err), -1);
	imap_command_free(&c);
	ck_assert_int_eq(list_parse("a LIST \"\"", &c, &o, err), -1);
	imap_command_free(&c);
	ck_assert_int_eq(list_parse("a LSUB \"\" (a b)", &c, &o, err), -1);
	imap_command_free(&c);
	ck_assert_int_eq(list_parse("a LSUB (SUBSCRIBED) \"\" *", &c, &o, err), -1);
	imap_command_free(&c);
}
END_TEST

static void check_base(const char *in, const char *want, bool want_refwd)
{
	bool refwd = !want_refwd;
	char *got = imap_base_subject(in, &refwd);
	ck_assert_ptr_nonnull(got);
	ck_assert_msg(strcmp(got, want) == 0, "base of \"%s\" is \"%s\", not \"%s\"", in, got,
		      want);
	ck_assert_msg(refwd == want_refwd, "refwd of \"%s\"", in);
	free(got);
}

START_TEST(test_base_subject)
{
	check_base("Hello", "Hello", false);
	check_base("Re: Hello", "Hello", true);
	check_base("RE:  re: Fwd: Hello  ", "Hello", true);
	check_base("Re[2]: Hello", "Hello", true);
	check_base("[list] Re: [list] Hello", "Hello", true);
	check_base("Hello (fwd) (FWD)", "Hello", true);
	check_base("[Fwd: Re: Hello]", "Hello", true);
	check_base("  Hello\r\n\tworld  ", "Hello world", false);
	check_base("[only a blob]", "[only a blob]", false);
	check_base("Re:", "", true);
	check_base("", "", false);
	check_base("Rename: files", "Rename: files", false);
	check_base("fw : x", "x", true);
	check_base(" Re [x]: y", "y", true);
}
END_TEST

START_TEST(test_sort_criteria)
{
	struct imap_command c;
	struct imap_sort_spec spec;
	char err[128];

	ck_assert_int_eq(parse("a SORT (REVERSE date subject REVERSE SIZE) UTF-8 ALL", &c), 0);
	ck_assert_int_eq(imap_sort_parse(&c.args[0], &spec, err, sizeof(err)), 0);
	ck_assert_uint_eq(spec.n, 3);
	ck_assert_int_eq(spec.crit[0].key, SORT_DATE);
	ck_assert(spec.crit[0].reverse);
	ck_assert_int_eq(spec.crit[1].key, SORT_SUBJECT);
	ck_assert(!spec.crit[1].reverse);
	ck_assert_int_eq(spec.crit[2].key, SORT_SIZE);
	ck_assert(spec.crit[2].reverse);
	ck_assert_int_eq(imap_sort_charset(&c.args[1]), 0);
	ck_assert_int_eq(imap_sort_charset(&c.args[2]), -1);
	imap_command_free(&c);
	ck_assert_int_eq(parse("a SORT (REVERSE) X", &c), 0);
	ck_assert_int_eq(imap_sort_parse(&c.args[0], &spec, err, sizeof(err)), -1);
	imap_command_free(&c);
	ck_assert_int_eq(parse("a SORT (REVERSE REVERSE DATE) X", &c), 0);
	ck_assert_int_eq(imap_sort_parse(&c.args[0], &spec, err, sizeof(err)), -1);
	imap_command_free(&c);
	ck_assert_int_eq(parse("a SORT (COLOR) X", &c), 0);
	ck_assert_int_eq(imap_sort_parse(&c.args[0], &spec, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "Unknown sort key");
	imap_command_free(&c);
	ck_assert_int_eq(parse("a SORT () X", &c), 0);
	ck_assert_int_eq(imap_sort_parse(&c.args[0], &spec, err, sizeof(err)), -1);
	ck_assert_int_eq(imap_sort_parse(&c.args[1], &spec, err, sizeof(err)), -1);
	imap_command_free(&c);
	ck_assert_int_eq(parse("a THREAD references orderedsubject x", &c), 0);
	ck_assert_int_eq(imap_thread_algorithm(&c.args[0]), THREAD_REFERENCES);
	ck_assert_int_eq(imap_thread_algorithm(&c.args[1]), THREAD_ORDEREDSUBJECT);
	ck_assert_int_eq(imap_thread_algorithm(&c.args[2]), -1);
	imap_command_free(&c);
}
END_TEST

START_TEST(test_msgids)
{
	const char *refs = " <a@x> junk <<b@y>\r\n\t<> <c@z";
	const char *id, *p;
	size_t len;

	p = imap_next_msgid(refs, &id, &len);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(len, 5);
	ck_assert_int_eq(strncmp(id, "<a@x>", 5), 0);
	p = imap_next_msgid(p, &id, &len);
	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(strncmp(id, "<b@y>", len), 0);
	ck_assert_ptr_null(imap_next_msgid(p, &id, &len));
	ck_assert_ptr_null(imap_next_msgid("", &id, &len));
}
END_TEST

START_TEST(test_binary_items)
{
	struct imap_fetch_att a;
	char err[160];

	ck_assert_int_eq(imap_fetch_parse_item("binary.peek[1.2]<3.4>", &a, err, sizeof(err)), 0);
	ck_assert_int_eq(a.kind, FETCH_BINARY);
	ck_assert(a.peek && a.partial);
	ck_assert_uint_eq(a.n_parts, 2);
	ck_assert_uint_eq(a.offset, 3);
	ck_assert_uint_eq(a.count, 4);
	ck_assert_str_eq(a.name, "BINARY[1.2]<3>");
	ck_assert_int_eq(imap_fetch_parse_item("BINARY[]", &a, err, sizeof(err)), 0);
	ck_assert_int_eq(a.kind, FETCH_BINARY);
	ck_assert(!a.peek);
	ck_assert_uint_eq(a.n_parts, 0);
	ck_assert_str_eq(a.name, "BINARY[]");
	ck_assert_int_eq(imap_fetch_parse_item("Binary.Size[3]", &a, err, sizeof(err)), 0);
	ck_assert_int_eq(a.kind, FETCH_BINARY_SIZE);
	ck_assert_str_eq(a.name, "BINARY.SIZE[3]");
	ck_assert_int_eq(imap_fetch_parse_item("BINARY.SIZE[3]<0.1>", &a, err, sizeof(err)), -1);
	ck_assert_int_eq(imap_fetch_parse_item("BINARY[1.MIME]", &a, err, sizeof(err)), -1);
	ck_assert_int_eq(imap_fetch_parse_item("BINARY[TEXT]", &a, err, sizeof(err)), -1);
	ck_assert_int_eq(imap_fetch_parse_item("BINARY[HEADER.FIELDS (A)]", &a, err, sizeof(err)),
			 -1);
	ck_assert_int_eq(imap_fetch_parse_item("BINARY.PEEKX[1]", &a, err, sizeof(err)), -1);
	ck_assert_int_eq(imap_fetch_parse_item("BINARY", &a, err, sizeof(err)), -1);
}
END_TEST

START_TEST(test_literal8)
{
	struct imap_command c;
	static const char line[] = "a APPEND INBOX ~{3}\r\na\0b";

	ck_assert_int_eq(imap_parse(line, sizeof(line) - 1, &c), 0);
	ck_assert_uint_eq(c.n_args, 2);
	ck_assert_int_eq(c.args[1].type, IMAP_ARG_LITERAL);
	ck_assert(c.args[1].literal8);
	ck_assert(!c.args[0].literal8);
	ck_assert_uint_eq(c.args[1].len, 3);
	ck_assert_int_eq(memcmp(c.args[1].str, "a\0b", 3), 0);
	imap_command_free(&c);
	ck_assert_int_eq(parse("a APPEND INBOX {1+}\r\nx", &c), 0);
	ck_assert(!c.args[1].literal8);
	imap_command_free(&c);
	ck_assert_int_eq(parse("a LOGIN ~x y", &c), 0);
	ck_assert_str_eq(c.args[0].str, "~x");
	imap_command_free(&c);
	ck_assert_int_eq(parse("a APPEND INBOX ~{5}\r\nab", &c), -1);
	imap_command_free(&c);
}
END_TEST

START_TEST(test_binary_decoding)
{
	static const char msg[] = "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
				  "--b\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
				  "a=3Db=\r\nc\r\n"
				  "--b\r\nContent-Transfer-Encoding: base64\r\n\r\nAAEC\r\n"
				  "--b\r\nContent-Transfer-Encoding: x-unknown\r\n\r\nzz\r\n"
				  "--b\r\n\r\nplain\r\n--b--\r\n";
	struct imap_mime *root = imap_mime_parse(msg, sizeof(msg) - 1);
	struct imap_fetch_att a;
	struct imap_buf scratch = {0};
	const char *out;
	size_t len;
	char err[160];

	ck_assert_ptr_nonnull(root);
	ck_assert_int_eq(imap_fetch_parse_item("BINARY[1]", &a, err, sizeof(err)), 0);
	ck_assert_int_eq(imap_binary(msg, root, &a, &scratch, &out, &len), 0);
	ck_assert_uint_eq(len, 4);
	ck_assert_int_eq(memcmp(out, "a=bc", 4), 0);
	ck_assert_int_eq(imap_fetch_parse_item("BINARY[2]", &a, err, sizeof(err)), 0);
	ck_assert_int_eq(imap_binary(msg, root, &a, &scratch, &out, &len), 0);
	ck_assert_uint_eq(len, 3);
	ck_assert_int_eq(memcmp(out, "\0\1\2", 3), 0);
	ck_assert_int_eq(imap_fetch_parse_item("BINARY[3]", &a, err, sizeof(err)), 0);
	ck_assert_int_eq(imap_binary(msg, root, &a, &scratch, &out, &len), -2);
	ck_assert_int_eq(imap_fetch_parse_item("BINARY[4]", &a, err, sizeof(err)), 0);
	ck_assert_int_eq(imap_binary(msg, root, &a, &scratch, &out, &len), 0);
	ck_assert_uint_eq(len, 5);
	ck_assert_int_eq(memcmp(out, "plain", 5), 0);
	ck_assert_int_eq(imap_fetch_parse_item("BINARY[5]", &a, err, sizeof(err)), 0);
	ck_assert_int_eq(imap_binary(msg, root, &a, &scratch, &out, &len), -1);
	ck_assert_int_eq(imap_fetch_parse_item("BINARY[]", &a, err, sizeof(err)), 0);
	ck_assert_int_eq(imap_binary(msg, root, &a, &scratch, &out, &len), 0);
	ck_assert_uint_eq(len, sizeof(msg) - 1);
	ibuf_free(&scratch);
	imap_mime_free(root);
}
END_TEST

START_TEST(test_tag_verb_and_atoms)
{
	struct imap_command c;
	ck_assert_int_eq(parse("a001 login alice secret", &c), 0);
	ck_assert_str_eq(c.tag, "a001");
	ck_assert_str_eq(c.verb, "LOGIN");
	ck_assert(!c.uid);
	ck_assert_uint_eq(c.n_args, 2);
	ck_assert_int_eq(c.args[0].type, IMAP_ARG_ATOM);
	ck_assert_str_eq(c.args[1].str, "secret");
	imap_command_free(&c);
}
END_TEST

START_TEST(test_uid_prefix)
{
	struct imap_command c;
	ck_assert_int_eq(parse("x UID fetch 1:* (FLAGS)", &c), 0);
	ck_assert(c.uid);
	ck_assert_str_eq(c.verb, "FETCH");
	ck_assert_uint_eq(c.n_args, 2);
	ck_assert_int_eq(c.args[1].type, IMAP_ARG_LIST);
	imap_command_free(&c);
}
END_TEST

START_TEST(test_quoted_unescapes)
{
	struct imap_command c;
	ck_assert_int_eq(parse("t LOGIN \"a b\" \"p\\\"w\\\\d\"", &c), 0);
	ck_assert_int_eq(c.args[0].type, IMAP_ARG_QUOTED);
	ck_assert_str_eq(c.args[0].str, "a b");
	ck_assert_str_eq(c.args[1].str, "p\"w\\d");
	imap_command_free(&c);
	ck_assert_int_eq(parse("t LOGIN \"abc", &c), -1);
	ck_assert_str_eq(c.tag, "t");
	ck_assert_ptr_nonnull(strstr(c.error, "unterminated"));
	imap_command_free(&c);
	ck_assert_int_eq(parse("t LOGIN \"a\\x\"", &c), -1);
	imap_command_free(&c);
}
END_TEST

START_TEST(test_literals)
{
	struct imap_command c;
	const char cmd[] = "t APPEND INBOX {5}\r\nab\0cd";
	ck_assert_int_eq(imap_parse(cmd, sizeof(cmd) - 1, &c), 0);
	ck_assert_uint_eq(c.n_args, 2);
	ck_assert_int_eq(c.args[1].type, IMAP_ARG_LITERAL);
	ck_assert_uint_eq(c.args[1].len, 5);
	ck_assert_int_eq(memcmp(c.args[1].str, "ab\0cd", 5), 0);
	imap_command_free(&c);
	/* LITERAL+ and a literal in the middle of the line. */
	ck_assert_int_eq(parse("t LOGIN {3+}\r\nbob pw", &c), 0);
	ck_assert_str_eq(c.args[0].str, "bob");
	ck_assert_str_eq(c.args[1].str, "pw");
	imap_command_free(&c);
	/* Announced longer than sent. */
	ck_assert_int_eq(parse("t LOGIN {30}\r\nbob", &c), -1);
	ck_assert_ptr_nonnull(strstr(c.error, "literal"));
	imap_command_free(&c);
	ck_assert_int_eq(parse("t LOGIN {3x}\r\nbob", &c), -1);
	imap_command_free(&c);
}
END_TEST

START_TEST(test_line_literal_marker)
{
	uint64_t n = 0;
	bool ns = true;
	ck_assert_int_eq(imap_line_literal("a APPEND x {12}", 15, &n, &ns), 1);
	ck_assert_uint_eq(n, 12);
	ck_assert(!ns);
	ck_assert_int_eq(imap_line_literal("a APPEND x {7+}", 15, &n, &ns), 1);
	ck_assert_uint_eq(n, 7);
	ck_assert(ns);
	ck_assert_int_eq(imap_line_literal("a NOOP", 6, &n, &ns), 0);
	ck_assert_int_eq(imap_line_literal("a X {}", 6, &n, &ns), -1);
	ck_assert_int_eq(imap_line_literal("a X {1234567890123}", 19, &n, &ns), -1);
}
END_TEST

START_TEST(test_lists_and_balance)
{
	struct imap_command c;
	ck_assert_int_eq(parse("t X (a (b c) \"d\") e", &c), 0);
	ck_assert_uint_eq(c.n_args, 2);
	ck_assert_uint_eq(c.args[0].n, 3);
	ck_assert_uint_eq(c.args[0].list[1].n, 2);
	imap_command_free(&c);
	ck_assert_int_eq(parse("t X (a (b c)", &c), -1);
	ck_assert_ptr_nonnull(strstr(c.error, "unbalanced"));
	imap_command_free(&c);
	ck_assert_int_eq(parse("t X a)", &c), -1);
	ck_assert_ptr_nonnull(strstr(c.error, "unbalanced"));
	imap_command_free(&c);
}
END_TEST

START_TEST(test_depth_limit)
{
	char buf[256];
	struct imap_command c;
	size_t n = (size_t)snprintf(buf, sizeof(buf), "t SEARCH ");
	for (int i = 0; i < IMAP_DEPTH_MAX + 1; i++)
		buf[n++] = '(';
	buf[n++] = 'A';
	for (int i = 0; i < IMAP_DEPTH_MAX + 1; i++)
		buf[n++] = ')';
	buf[n] = '\0';
	ck_assert_int_eq(parse(buf, &c), -1);
	ck_assert_ptr_nonnull(strstr(c.error, "nested"));
	imap_command_free(&c);
}
END_TEST

START_TEST(test_bad_tags_and_verbs)
{
	struct imap_command c;
	ck_assert_int_eq(parse("", &c), -1);
	ck_assert_str_eq(c.tag, "*");
	imap_command_free(&c);
	ck_assert_int_eq(parse("+abc NOOP", &c), -1);
	imap_command_free(&c);
	ck_assert_int_eq(parse("abc", &c), -1);
	ck_assert_ptr_nonnull(strstr(c.error, "missing command"));
	imap_command_free(&c);
	ck_assert_int_eq(parse("t NO\x01OP", &c), -1);
	imap_command_free(&c);
	ck_assert_int_eq(parse("t LOGIN caf\xc3\xa9 x", &c), -1);
	ck_assert_ptr_nonnull(strstr(c.error, "8-bit"));
	imap_command_free(&c);
}
END_TEST

START_TEST(test_section_atom)
{
	struct imap_command c;
	ck_assert_int_eq(parse("t FETCH 1 BODY.PEEK[HEADER.FIELDS (From To)]<0.100>", &c), 0);
	ck_assert_uint_eq(c.n_args, 2);
	ck_assert_str_eq(c.args[1].str, "BODY.PEEK[HEADER.FIELDS (From To)]<0.100>");
	imap_command_free(&c);
}
END_TEST

START_TEST(test_seqset)
{
	struct imap_seqset s;
	char err[64];
	ck_assert_int_eq(imap_seqset_parse("1,3:5,9:*", &s, err, sizeof(err)), 0);
	ck_assert_uint_eq(s.n, 3);
	ck_assert(imap_seqset_contains(&s, 1, 20));
	ck_assert(!imap_seqset_contains(&s, 2, 20));
	ck_assert(imap_seqset_contains(&s, 4, 20));
	ck_assert(imap_seqset_contains(&s, 20, 20));
	ck_assert(!imap_seqset_contains(&s, 8, 20));
	imap_seqset_free(&s);
	ck_assert_int_eq(imap_seqset_parse("5:2", &s, err, sizeof(err)), 0);
	ck_assert(imap_seqset_contains(&s, 3, 10));
	imap_seqset_free(&s);
	/* "*:4" with 2 messages means 2:4. */
	ck_assert_int_eq(imap_seqset_parse("*:4", &s, err, sizeof(err)), 0);
	ck_assert(imap_seqset_contains(&s, 3, 2));
	imap_seqset_free(&s);
	ck_assert_int_eq(imap_seqset_parse("0", &s, err, sizeof(err)), -1);
	ck_assert_int_eq(imap_seqset_parse("1,", &s, err, sizeof(err)), -1);
	ck_assert_int_eq(imap_seqset_parse("1:2:3", &s, err, sizeof(err)), -1);
	ck_assert_int_eq(imap_seqset_parse("abc", &s, err, sizeof(err)), -1);
	ck_assert_int_eq(imap_seqset_parse("4294967296", &s, err, sizeof(err)), -1);
	ck_assert_int_eq(imap_seqset_parse("", &s, err, sizeof(err)), -1);
}
END_TEST

START_TEST(test_fetch_items)
{
	struct imap_fetch_att a;
	char err[160];
	struct imap_command c;
	struct imap_fetch_atts atts;

	ck_assert_int_eq(imap_fetch_parse_item("BODY.PEEK[1.2.HEADER.FIELDS.NOT (Received)]<10.20>",
					       &a, err, sizeof(err)),
			 0);
	ck_assert(a.peek);
	ck_assert_uint_eq(a.n_parts, 2);
	ck_assert_uint_eq(a.parts[1], 2);
	ck_assert_int_eq(a.section, SECTION_HEADER_FIELDS_NOT);
	ck_assert_uint_eq(a.n_fields, 1);
	ck_assert_str_eq(a.fields[0], "Received");
	ck_assert(a.partial);
	ck_assert_uint_eq(a.offset, 10);
	ck_assert_uint_eq(a.count, 20);
	ck_assert_str_eq(a.name, "BODY[1.2.HEADER.FIELDS.NOT (RECEIVED)]<10>");
	free(a.fields[0]);
	free(a.fields);
	ck_assert_int_eq(imap_fetch_parse_item("body[]", &a, err, sizeof(err)), 0);
	ck_assert(!a.peek);
	ck_assert_int_eq(a.section, SECTION_ALL);
	ck_assert_str_eq(a.name, "BODY[]");
	ck_assert_int_eq(imap_fetch_parse_item("BODY[MIME]", &a, err, sizeof(err)), -1);
	ck_assert_int_eq(imap_fetch_parse_item("BODY[0]", &a, err, sizeof(err)), -1);
	ck_assert_int_eq(imap_fetch_parse_item("BODY[1.]", &a, err, sizeof(err)), -1);
	ck_assert_int_eq(imap_fetch_parse_item("BODY[]<5.0>", &a, err, sizeof(err)), -1);
	ck_assert_int_eq(imap_fetch_parse_item("BODY[HEADER.FIELDS ()]", &a, err, sizeof(err)), -1);
	ck_assert_int_eq(imap_fetch_parse_item("FOO", &a, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "unknown FETCH item"));

	ck_assert_int_eq(parse("t FETCH 1 ALL", &c), 0);
	ck_assert_int_eq(imap_fetch_parse(&c.args[1], &atts, err, sizeof(err)), 0);
	ck_assert_uint_eq(atts.n, 4);
	ck_assert_int_eq(atts.atts[3].kind, FETCH_ENVELOPE);
	imap_fetch_atts_free(&atts);
	imap_command_free(&c);
	ck_assert_int_eq(parse("t FETCH 1 (UID RFC822.SIZE BODY[TEXT])", &c), 0);
	ck_assert_int_eq(imap_fetch_parse(&c.args[1], &atts, err, sizeof(err)), 0);
	ck_assert_uint_eq(atts.n, 3);
	ck_assert_int_eq(atts.atts[2].section, SECTION_TEXT);
	imap_fetch_atts_free(&atts);
	imap_command_free(&c);
	ck_assert_int_eq(parse("t FETCH 1 ()", &c), 0);
	ck_assert_int_eq(imap_fetch_parse(&c.args[1], &atts, err, sizeof(err)), -1);
	imap_command_free(&c);
}
END_TEST

START_TEST(test_search_keys)
{
	struct imap_command c;
	struct imap_search_key k;
	char err[160];

	ck_assert_int_eq(parse("t SEARCH CHARSET UTF-8 OR (FROM alice SEEN) DELETED NOT LARGER 100 "
			       "SINCE 1-Feb-2024 UID 2:4 1:*",
			       &c),
			 0);
	ck_assert_int_eq(imap_search_parse(c.args, c.n_args, &k, err, sizeof(err)), 0);
	ck_assert_int_eq(k.op, SEARCH_AND);
	ck_assert_uint_eq(k.n, 5);
	ck_assert_int_eq(k.children[0].op, SEARCH_OR);
	ck_assert_int_eq(k.children[0].children[0].op, SEARCH_AND);
	ck_assert_int_eq(k.children[0].children[0].children[0].op, SEARCH_HEADER);
	ck_assert_str_eq(k.children[0].children[0].children[0].field, "FROM");
	ck_assert_int_eq(k.children[1].op, SEARCH_NOT);
	ck_assert_int_eq(k.children[1].children[0].number, 100);
	ck_assert_int_eq(k.children[2].op, SEARCH_SINCE);
	ck_assert_int_eq(k.children[2].number, 19754); /* 2024-02-01 */
	ck_assert_int_eq(k.children[3].op, SEARCH_UIDSET);
	ck_assert_int_eq(k.children[4].op, SEARCH_SEQSET);
	imap_search_key_free(&k);
	imap_command_free(&c);

	ck_assert_int_eq(parse("t SEARCH CHARSET KOI8-R ALL", &c), 0);
	ck_assert_int_eq(imap_search_parse(c.args, c.n_args, &k, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "BADCHARSET"));
	imap_command_free(&c);
	ck_assert_int_eq(parse("t SEARCH OR SEEN", &c), 0);
	ck_assert_int_eq(imap_search_parse(c.args, c.n_args, &k, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "missing argument"));
	imap_command_free(&c);
	ck_assert_int_eq(parse("t SEARCH BEFORE 31-Foo-2020", &c), 0);
	ck_assert_int_eq(imap_search_parse(c.args, c.n_args, &k, err, sizeof(err)), -1);
	imap_command_free(&c);
	ck_assert_int_eq(parse("t SEARCH MODSEQ \"/flags/\\\\draft\" all 620162338", &c), 0);
	ck_assert_int_eq(imap_search_parse(c.args, c.n_args, &k, err, sizeof(err)), 0);
	ck_assert_int_eq(k.children[0].op, SEARCH_MODSEQ);
	ck_assert_int_eq(k.children[0].number, 620162338);
	imap_search_key_free(&k);
	imap_command_free(&c);
	ck_assert_int_eq(parse("t SEARCH MODSEQ \"/x\" all 5", &c), 0);
	ck_assert_int_eq(imap_search_parse(c.args, c.n_args, &k, err, sizeof(err)), -1);
	imap_command_free(&c);
	ck_assert_int_eq(parse("t SEARCH FROBNICATE", &c), 0);
	ck_assert_int_eq(imap_search_parse(c.args, c.n_args, &k, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "unknown search key"));
	imap_command_free(&c);
	ck_assert_int_eq(parse("t SEARCH", &c), 0);
	ck_assert_int_eq(imap_search_parse(c.args, c.n_args, &k, err, sizeof(err)), -1);
	imap_command_free(&c);
}
END_TEST

START_TEST(test_dates)
{
	int64_t t, d;
	ck_assert_int_eq(imap_parse_date("1-Jan-1970", &d), 0);
	ck_assert_int_eq(d, 0);
	ck_assert_int_eq(imap_parse_datetime("17-Jul-1996 02:44:25 -0700", &t), 0);
	ck_assert_int_eq(t, 837596665);
	ck_assert_int_eq(imap_parse_datetime(" 1-Jan-1970 00:00:00 +0000", &t), 0);
	ck_assert_int_eq(t, 0);
	ck_assert_int_eq(imap_parse_datetime("17-Jul-1996 25:44:25 -0700", &t), -1);
	ck_assert_int_eq(imap_parse_datetime("17-Jul-1996", &t), -1);
}
END_TEST

START_TEST(test_names_and_patterns)
{
	struct imap_arg a = {.type = IMAP_ARG_ATOM};
	char out[STORE_MAILBOX_NAME_MAX + 1];

	a.str = (char *)"inbox";
	a.len = 5;
	ck_assert_int_eq(imap_mailbox_name(&a, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "INBOX");
	a.str = (char *)"Inbox/sub";
	a.len = 9;
	ck_assert_int_eq(imap_mailbox_name(&a, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "INBOX/sub");
	a.str = (char *)"a//b";
	a.len = 4;
	ck_assert_int_eq(imap_mailbox_name(&a, out, sizeof(out)), -1);
	a.str = (char *)"/a";
	a.len = 2;
	ck_assert_int_eq(imap_mailbox_name(&a, out, sizeof(out)), -1);
	a.str = (char *)"a*";
	a.len = 2;
	ck_assert_int_eq(imap_mailbox_name(&a, out, sizeof(out)), -1);

	ck_assert(imap_list_match("*", "a/b/c"));
	ck_assert(imap_list_match("%", "Sent"));
	ck_assert(!imap_list_match("%", "a/b"));
	ck_assert(imap_list_match("a/%", "a/b"));
	ck_assert(!imap_list_match("a/%", "a/b/c"));
	ck_assert(imap_list_match("a*c", "a/b/c"));
	ck_assert(!imap_list_match("a%c", "a/b/c"));
	ck_assert(imap_list_match("INBOX", "INBOX"));
	ck_assert(!imap_list_match("INBOX", "INBOX/x"));
}
END_TEST

START_TEST(test_sasl_plain)
{
	char user[64], pass[64];
	size_t pl = 0;
	/* "\0alice@example.org\0secret" */
	ck_assert_int_eq(imap_sasl_plain_decode("AGFsaWNlQGV4YW1wbGUub3JnAHNlY3JldA==", 36, user,
						sizeof(user), pass, sizeof(pass), &pl),
			 0);
	ck_assert_str_eq(user, "alice@example.org");
	ck_assert_str_eq(pass, "secret");
	ck_assert_uint_eq(pl, 6);
	/* "bob\0alice\0x": a different authzid is refused. */
	ck_assert_int_eq(imap_sasl_plain_decode("Ym9iAGFsaWNlAHg=", 16, user, sizeof(user), pass,
						sizeof(pass), &pl),
			 -1);
	ck_assert_int_eq(
	    imap_sasl_plain_decode("!!!", 3, user, sizeof(user), pass, sizeof(pass), &pl), -1);
}
END_TEST

static const char mime_msg[] = "From: \"Alice A.\" <alice@example.org>\r\n"
			       "To: bob@example.org, Team: carol@example.org;\r\n"
			       "Subject: =?utf-8?q?caf=C3=A9?=\r\n"
			       "Message-ID: <1@example.org>\r\n"
			       "Content-Type: multipart/mixed; boundary=\"b1\"\r\n"
			       "\r\n"
			       "preamble\r\n"
			       "--b1\r\n"
			       "Content-Type: text/plain; charset=utf-8\r\n"
			       "\r\n"
			       "hello\r\nworld\r\n"
			       "--b1\r\n"
			       "Content-Type: message/rfc822\r\n"
			       "\r\n"
			       "Subject: inner\r\n"
			       "X-A: 1\r\n"
			       "\r\n"
			       "inner body\r\n"
			       "--b1--\r\n";

START_TEST(test_mime_structure_and_sections)
{
	struct imap_mime *m = imap_mime_parse(mime_msg, sizeof(mime_msg) - 1);
	struct imap_buf b = {0}, scratch = {0};
	struct imap_fetch_att a;
	const char *out;
	size_t len;
	char err[160];

	ck_assert_ptr_nonnull(m);
	ck_assert_str_eq(m->type, "MULTIPART");
	ck_assert_uint_eq(m->n_children, 2);
	ck_assert_str_eq(m->children[0].subtype, "PLAIN");
	ck_assert_uint_eq(m->children[0].body_len, 12); /* "hello\r\nworld" */
	ck_assert_ptr_nonnull(m->children[1].message);

	imap_write_bodystructure(&b, mime_msg, m, false);
	ck_assert_str_eq(b.p,
			 "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" 12 1)"
			 "(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 36 "
			 "(NIL \"inner\" NIL NIL NIL NIL NIL NIL NIL NIL) "
			 "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 10 0) 3)"
			 " \"MIXED\")");
	ibuf_free(&b);
	imap_write_envelope(&b, mime_msg, m);
	ck_assert_ptr_nonnull(strstr(b.p, "\"=?utf-8?q?caf=C3=A9?=\""));
	ck_assert_ptr_nonnull(strstr(b.p, "((\"Alice A.\" NIL \"alice\" \"example.org\"))"));
	ck_assert_ptr_nonnull(strstr(b.p,
				     "(NIL NIL \"Team\" NIL)(NIL NIL \"carol\" \"example.org\")"
				     "(NIL NIL NIL NIL)"));
	ck_assert_ptr_nonnull(strstr(b.p, "\"<1@example.org>\")"));
	ibuf_free(&b);

	ck_assert_int_eq(imap_fetch_parse_item("BODY[1]", &a, err, sizeof(err)), 0);
	ck_assert_int_eq(imap_section(mime_msg, m, &a, &scratch, &out, &len), 0);
	ck_assert_uint_eq(len, 12);
	ck_assert_int_eq(memcmp(out, "hello\r\nworld", 12), 0);
	ck_assert_int_eq(imap_fetch_parse_item("BODY[2.HEADER]", &a, err, sizeof(err)), 0);
	ck_assert_int_eq(imap_section(mime_msg, m, &a, &scratch, &out, &len), 0);
	ck_assert_uint_eq(len, strlen("Subject: inner\r\nX-A: 1\r\n\r\n"));
	ck_assert_int_eq(imap_fetch_parse_item("BODY[2.1]", &a, err, sizeof(err)), 0);
	ck_assert_int_eq(imap_section(mime_msg, m, &a, &scratch, &out, &len), 0);
	ck_assert_int_eq(memcmp(out, "inner body", len), 0);
	ck_assert_int_eq(imap_fetch_parse_item("BODY[1.MIME]", &a, err, sizeof(err)), 0);
	ck_assert_int_eq(imap_section(mime_msg, m, &a, &scratch, &out, &len), 0);
	ck_assert_int_eq(memcmp(out, "Content-Type: text/plain; charset=utf-8\r\n\r\n", len), 0);
	ck_assert_int_eq(imap_fetch_parse_item("BODY[3]", &a, err, sizeof(err)), 0);
	ck_assert_int_eq(imap_section(mime_msg, m, &a, &scratch, &out, &len), -1);
	ck_assert_int_eq(
	    imap_fetch_parse_item("BODY[HEADER.FIELDS (subject from)]", &a, err, sizeof(err)), 0);
	ck_assert_int_eq(imap_section(mime_msg, m, &a, &scratch, &out, &len), 0);
	ck_assert_int_eq(len, strlen("From: \"Alice A.\" <alice@example.org>\r\n"
				     "Subject: =?utf-8?q?caf=C3=A9?=\r\n\r\n"));
	for (size_t i = 0; i < a.n_fields; i++)
		free(a.fields[i]);
	free(a.fields);
	ibuf_free(&scratch);
	imap_mime_free(m);
}
END_TEST

START_TEST(test_mime_many_parts_bounded)
{
	/* 12,000 parts: parsing stays bounded and does not crash. */
	size_t cap = 12000 * 40 + 200, n = 0;
	char *msg = malloc(cap);
	struct imap_mime *m;
	ck_assert_ptr_nonnull(msg);
	n +=
	    (size_t)snprintf(msg + n, cap - n, "Content-Type: multipart/mixed; boundary=z\r\n\r\n");
	for (int i = 0; i < 12000; i++)
		n += (size_t)snprintf(msg + n, cap - n, "--z\r\n\r\npart %d\r\n", i);
	n += (size_t)snprintf(msg + n, cap - n, "--z--\r\n");
	m = imap_mime_parse(msg, n);
	ck_assert_ptr_nonnull(m);
	ck_assert_uint_le(m->n_children, 10000);
	ck_assert_uint_ge(m->n_children, 9000);
	imap_mime_free(m);
	free(msg);
}
END_TEST

START_TEST(test_mutf7)
{
	static const struct {
		const char *utf8, *mutf7;
	} v[] = {{"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", "&ZeVnLIqe-"},
		 {"Entw\xc3\xbcrfe", "Entw&APw-rfe"},
		 {"\xf0\x9f\x98\x80x", "&2D3eAA-x"},
		 {"~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
		  "~peter/mail/&U,BTFw-/&ZeVnLIqe-"},
		 {"\xc3\x84rger&Co", "&AMQ-rger&-Co"},
		 {"plain", "plain"}};
	static const char *const bad[] = {"&",	   "&ZeVnLIqe", "&AGE-", "&2D3e-",
					  "&3gA-", "&Ze!-",	"&-&",	 "&AMR-"};
	char out[256];

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		ck_assert_int_eq(imap_mutf7_encode(v[i].utf8, out, sizeof(out)), 0);
		ck_assert_str_eq(out, v[i].mutf7);
		ck_assert_int_eq(
		    imap_mutf7_decode(v[i].mutf7, strlen(v[i].mutf7), out, sizeof(out)), 0);
		ck_assert_str_eq(out, v[i].utf8);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(imap_mutf7_decode(bad[i], strlen(bad[i]), out, sizeof(out)) < 0, "%s",
			      bad[i]);
	/* 8-bit bytes outside "&...-" pass through; OUT bounds are kept. */
	ck_assert_int_eq(imap_mutf7_decode("\xc3\xa4", 2, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "\xc3\xa4");
	ck_assert_int_eq(imap_mutf7_decode("&ZeVnLIqe-", 10, out, 9), -1);
	ck_assert_int_eq(imap_mutf7_encode("\xe6\x97\xa5\xe6\x9c\xac", out, 6), -1);
}
END_TEST

START_TEST(test_select_params)
{
	struct imap_command c;
	struct imap_select_params p;
	char err[160];

	ck_assert_int_eq(parse("t SELECT INBOX", &c), 0);
	ck_assert_int_eq(imap_select_params_parse(c.args + 1, c.n_args - 1, &p, err, sizeof(err)),
			 0);
	ck_assert(!p.condstore && !p.qresync);
	imap_command_free(&c);
	ck_assert_int_eq(parse("t SELECT INBOX (CONDSTORE QRESYNC (67890007 20050715194045000 "
			       "41,43:211,214:541 (1:10 41:50)))",
			       &c),
			 0);
	ck_assert_int_eq(imap_select_params_parse(c.args + 1, c.n_args - 1, &p, err, sizeof(err)),
			 0);
	ck_assert(p.condstore && p.qresync && p.has_known_uids && p.has_seq_match);
	ck_assert_uint_eq(p.uidvalidity, 67890007);
	ck_assert_uint_eq(p.modseq, 20050715194045000ULL);
	ck_assert(imap_seqset_contains(&p.known_uids, 300, 1000));
	ck_assert(!imap_seqset_contains(&p.known_uids, 212, 1000));
	ck_assert(imap_seqset_contains(&p.match_uids, 45, 1000));
	imap_select_params_free(&p);
	imap_command_free(&c);
	ck_assert_int_eq(parse("t SELECT INBOX (QRESYNC (1 2 (1:2 3:4)))", &c), 0);
	ck_assert_int_eq(imap_select_params_parse(c.args + 1, c.n_args - 1, &p, err, sizeof(err)),
			 0);
	ck_assert(p.qresync && !p.has_known_uids && p.has_seq_match);
	imap_select_params_free(&p);
	imap_command_free(&c);

	static const char *const bad[] = {
	    "t SELECT INBOX ()",
	    "t SELECT INBOX (QRESYNC)",
	    "t SELECT INBOX (QRESYNC (1))",
	    "t SELECT INBOX (QRESYNC (0 1))",
	    "t SELECT INBOX (QRESYNC (1 0))",
	    "t SELECT INBOX (QRESYNC (4294967296 1))",
	    "t SELECT INBOX (QRESYNC (1 9223372036854775808))",
	    "t SELECT INBOX (QRESYNC (1 1 x))",
	    "t SELECT INBOX (QRESYNC (1 1 1 (1)))",
	    "t SELECT INBOX (QRESYNC (1 1 1 (1 2) 3))",
	    "t SELECT INBOX (CONDSTORE CONDSTORE)",
	    "t SELECT INBOX (FOO)",
	    "t SELECT INBOX CONDSTORE",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(parse(bad[i], &c), 0);
		ck_assert_msg(
		    imap_select_params_parse(c.args + 1, c.n_args - 1, &p, err, sizeof(err)) < 0,
		    "%s", bad[i]);
		imap_command_free(&c);
	}
}
END_TEST

START_TEST(test_search_saved_result)
{
	struct imap_command c;
	struct imap_search_key k;
	char err[160];

	ck_assert_int_eq(parse("t SEARCH $ UID $ OR $ SEEN", &c), 0);
	ck_assert_int_eq(imap_search_parse(c.args, c.n_args, &k, err, sizeof(err)), 0);
	ck_assert_uint_eq(k.n, 3);
	ck_assert_int_eq(k.children[0].op, SEARCH_SAVED);
	ck_assert_int_eq(k.children[1].op, SEARCH_SAVED);
	ck_assert_int_eq(k.children[2].children[0].op, SEARCH_SAVED);
	imap_search_key_free(&k);
	imap_command_free(&c);
	ck_assert_int_eq(parse("t SEARCH $,1", &c), 0);
	ck_assert_int_eq(imap_search_parse(c.args, c.n_args, &k, err, sizeof(err)), -1);
	imap_command_free(&c);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("imap_parse");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_tag_verb_and_atoms);
	tcase_add_test(tc, test_uid_prefix);
	tcase_add_test(tc, test_quoted_unescapes);
	tcase_add_test(tc, test_literals);
	tcase_add_test(tc, test_line_literal_marker);
	tcase_add_test(tc, test_lists_and_balance);
	tcase_add_test(tc, test_depth_limit);
	tcase_add_test(tc, test_bad_tags_and_verbs);
	tcase_add_test(tc, test_section_atom);
	tcase_add_test(tc, test_seqset);
	tcase_add_test(tc, test_fetch_items);
	tcase_add_test(tc, test_search_keys);
	tcase_add_test(tc, test_dates);
	tcase_add_test(tc, test_names_and_patterns);
	tcase_add_test(tc, test_sasl_plain);
	tcase_add_test(tc, test_mime_structure_and_sections);
	tcase_add_test(tc, test_mime_many_parts_bounded);
	tcase_add_test(tc, test_quota_units);
	tcase_add_test(tc, test_list_arguments);
	tcase_add_test(tc, test_base_subject);
	tcase_add_test(tc, test_sort_criteria);
	tcase_add_test(tc, test_msgids);
	tcase_add_test(tc, test_binary_items);
	tcase_add_test(tc, test_binary_decoding);
	tcase_add_test(tc, test_literal8);
	tcase_add_test(tc, test_mutf7);
	tcase_add_test(tc, test_select_params);
	tcase_add_test(tc, test_search_saved_result);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	int failed;
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
