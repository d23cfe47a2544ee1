#!/usr/bin/env python3
"""Writes the scanner's hand-made test messages (tests/data/scan/*.eml), the
nasty corpus (nasty/) and a tiny labelled corpus (corpus/{ham,spam,phish}).
Deterministic: rerunning gives the same bytes. Run from this directory."""
import base64
import io
import os
import zipfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


def write(rel, data):
    path = os.path.join(HERE, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(path, "wb") as f:
        f.write(data)


def head(subject, frm="Alice Example <alice@example.org>", extra=""):
    return ("From: %s\r\nTo: bob@example.net\r\nSubject: %s\r\n"
            "Date: Tue, 24 Nov 2026 10:00:00 +0000\r\nMessage-ID: <%s@example.org>\r\n"
            "MIME-Version: 1.0\r\n%s" % (frm, subject, zlib.crc32(subject.encode()), extra))


def attachment_msg(subject, filename, ctype, payload, text="Please see the attached file."):
    b64 = base64.encodebytes(payload).decode().replace("\n", "\r\n")
    return (head(subject, extra='Content-Type: multipart/mixed; boundary="b1"\r\n') +
            "\r\n--b1\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n%s\r\n"
            "--b1\r\nContent-Type: %s; name=\"%s\"\r\nContent-Disposition: attachment; "
            "filename=\"%s\"\r\nContent-Transfer-Encoding: base64\r\n\r\n%s--b1--\r\n"
            % (text, ctype, filename, filename, b64))


def zip_bytes(entries):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
            z.writestr(info, data)
    return buf.getvalue()


def html_msg(subject, html, frm="Alice Example <alice@example.org>"):
    return head(subject, frm, 'Content-Type: text/html; charset=utf-8\r\n') + "\r\n" + html


def main():
    # --- one message per feature family ---
    write("lookalike.eml", html_msg(
        "Your account has been limited",
        '<p>Dear customer, we noticed unusual activity. <a href="https://paypa1.com/signin">'
        'Restore access</a> within 24 hours.</p>',
        frm="PayPal Service <service@paypa1.com>"))
    write("link_mismatch.eml", html_msg(
        "Verify your account",
        '<p>Please verify: <a href="http://185.23.4.5/verify/login.php">https://www.paypal.com/signin'
        '</a></p>'))
    write("ip_url.eml", head("Update", extra="Content-Type: text/plain\r\n") +
          "\r\nDownload the update from http://203.0.113.9/update/setup now.\r\n")
    write("punycode.eml", head("Hello", extra="Content-Type: text/plain\r\n") +
          "\r\nSee https://xn--pypal-4ve.com/account for details.\r\n")
    write("shortener.eml", head("Look", extra="Content-Type: text/plain\r\n") +
          "\r\nLook at this: https://bit.ly/3abcDEF\r\n")
    write("eicar.eml", attachment_msg("Test file", "eicar.com", "application/octet-stream", EICAR))
    write("eicar_body.eml", head("Test", extra="Content-Type: text/plain\r\n") + "\r\n" +
          EICAR.decode() + "\r\n")
    write("double_ext.eml", attachment_msg("Invoice", "invoice.pdf.exe", "application/pdf",
                                           b"MZ\x90\x00" + b"\x00" * 60 + b"This program"))
    write("rtlo.eml", attachment_msg("Photo", "photo\u202egpj.exe", "image/jpeg", b"\xff\xd8\xff\xe0"))
    write("macro_name.eml", attachment_msg("Report", "report.docm",
                                           "application/vnd.ms-word.document.macroEnabled.12",
                                           zip_bytes([("[Content_Types].xml", b"<Types/>")])))
    write("macro_content.eml", attachment_msg(
        "Report", "report.docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        zip_bytes([("[Content_Types].xml", b"<Types/>"), ("word/vbaProject.bin", b"\xd0\xcf\x11\xe0")])))
    write("zip_exe.eml", attachment_msg("Documents", "docs.zip", "application/zip",
                                        zip_bytes([("docs/scan.exe", b"MZ" + b"\x00" * 30)])))
    write("pdf_ok.eml", attachment_msg("Minutes", "minutes.pdf", "application/pdf",
                                       b"%PDF-1.4\n% minutes of the meeting\n"))
    write("charset_latin1.eml", head("=?iso-8859-1?q?R=E9sum=E9_du_caf=E9?=",
                                     extra="Content-Type: text/plain; charset=iso-8859-1\r\n"
                                           "Content-Transfer-Encoding: quoted-printable\r\n") +
          "\r\nLa cr=E8me br=FBl=E9e du caf=E9 est d=E9licieuse.\r\n")
    write("charset_koi8.eml", head("=?koi8-r?b?" + base64.b64encode("Привет мир".encode("koi8-r")).decode() + "?=",
                                   extra="Content-Type: text/plain; charset=koi8-r\r\n"
                                         "Content-Transfer-Encoding: base64\r\n") +
          "\r\n" + base64.b64encode("Встреча завтра утром".encode("koi8-r")).decode() + "\r\n")
    write("charset_gb2312.eml", head("=?gb2312?b?" + base64.b64encode("发票优惠".encode("gb2312")).decode() + "?=",
                                     extra="Content-Type: text/plain; charset=gb2312\r\n"
                                           "Content-Transfer-Encoding: base64\r\n") +
          "\r\n" + base64.b64encode("本公司长期代开各地区发票，价格优惠，欢迎来电咨询。".encode("gb2312")).decode() + "\r\n")
    write("ham_plain.eml", head("Lunch tomorrow?", extra="Content-Type: text/plain\r\n") +
          "\r\nHi Bob,\r\n\r\nare we still on for lunch tomorrow at noon? I can bring the "
          "draft of the quarterly report so we can go over it.\r\n\r\nAlice\r\n")

    # --- nasty input: every one must give a verdict with a reason ---
    nested = head("deep", extra='Content-Type: multipart/mixed; boundary="d0"\r\n') + "\r\n"
    for i in range(1, 1000):
        nested += '--d%d\r\nContent-Type: multipart/mixed; boundary="d%d"\r\n\r\n' % (i - 1, i)
    nested += "--d999\r\nContent-Type: text/plain\r\n\r\nbottom\r\n"
    write("nasty/deep_nesting.eml", nested)
    mid = head("mid", extra='Content-Type: multipart/mixed; boundary="m0"\r\n') + "\r\n"
    for i in range(1, 60):
        mid += '--m%d\r\nContent-Type: multipart/mixed; boundary="m%d"\r\n\r\n' % (i - 1, i)
    mid += "--m59\r\nContent-Type: text/plain\r\n\r\nbottom of 60 levels\r\n"
    write("nasty/nesting_60.eml", mid)
    write("nasty/broken_base64.eml", head("b64", extra="Content-Type: text/plain\r\n"
                                          "Content-Transfer-Encoding: base64\r\n") +
          "\r\n!!!!****SGVsbG8gd29ybGQ=====@@@@\r\nnot base64 at all\r\n=\r\n")
    write("nasty/nul_bytes.eml", head("nul\0subject", extra="Content-Type: text/plain\r\n") +
          "\r\nbody\0with\0nuls\r\n\0\0\0")
    write("nasty/invalid_charset.eml", head("charset", extra="Content-Type: text/plain; "
                                            "charset=x-no-such-charset-42\r\n") +
          "\r\nbytes \xff\xfe\xfd in an unknown charset\r\n")
    write("nasty/unterminated_boundary.eml",
          head("unterminated", extra='Content-Type: multipart/mixed; boundary="never"\r\n') +
          "\r\n--never\r\nContent-Type: text/plain\r\n\r\nno closing boundary")
    write("nasty/no_header.eml", "just some text without any header at all\n")
    write("nasty/empty.eml", b"")
    write("nasty/header_only.eml", "Subject: nothing else\r\n")
    write("nasty/bad_params.eml", head("params", extra='Content-Type: text/html; ;;; charset="\r\n'
                                       'Content-Disposition: attachment; filename*=utf-8\'\'%ff%fe\r\n') +
          "\r\n<a href=>x</a><a href=\"http://[::1\">y</a><a href='http://user@:80/'>z</a>\r\n")
    write("nasty/garbage.bin", bytes((i * 131 + 7) % 256 for i in range(4096)))
    write("nasty/long_line.eml", head("long", extra="Content-Type: text/plain\r\n") + "\r\n" +
          "x" * 200000 + "\r\n")
    write("nasty/many_parts.eml",
          head("parts", extra='Content-Type: multipart/mixed; boundary="p"\r\n') + "\r\n" +
          "".join("--p\r\nContent-Type: text/plain\r\n\r\npart %d\r\n" % i for i in range(600)) +
          "--p--\r\n")
    write("nasty/html_unclosed.eml", html_msg("html", "<a href=\"http://example.com/" +
                                               "a" * 5000 + "<script>" + "<" * 3000 + "<!--"))

    # --- a tiny labelled corpus for the train/eval tests ---
    hams = ["Minutes of the planning meeting are attached, please review the budget section.",
            "Can we move our call to Thursday afternoon? The release notes need another pass.",
            "Thanks for the feedback on the draft, I updated the figures and the summary.",
            "The build is green again after the fix to the parser, tests pass on both engines.",
            "Reminder: the team lunch is on Friday, let me know if you have dietary needs.",
            "Here is the agenda for the workshop next week with the list of speakers."]
    spams = ["CHEAP meds online!!! Buy now and save 90% on all pills, no prescription needed!",
             "You have WON $1,000,000 in our lottery! Claim your prize money now, act fast!",
             "Lose 30 pounds in 30 days with this miracle diet pill, order today free shipping!",
             "Make money fast working from home, earn $5000 a week guaranteed, click here now!",
             "Hot singles in your area are waiting, click here to meet them tonight for free!",
             "Best replica watches at unbeatable prices, limited offer, buy now and save big!"]
    phishes = ['Your account has been suspended. <a href="http://198.51.100.7/login">https://www.paypal.com</a> verify now',
               'Unusual sign-in activity detected. Confirm your password at <a href="https://paypa1-secure.com/">Microsoft account</a>',
               'Your mailbox is full. Re-validate your email password <a href="http://mail-upgrade.example-host.ru/owa">here</a> to avoid suspension',
               'Your Apple ID was locked. <a href="http://appleid.apple.com.verify-user.info/">https://appleid.apple.com</a> unlock it now',
               'Payment failed for your Netflix subscription. Update billing at <a href="http://netfl1x-billing.com/">netflix.com</a>',
               'Your bank account needs verification. Login at <a href="http://203.0.113.50/bank/">https://www.chase.com</a> within 24 hours']
    for i, t in enumerate(hams):
        write("corpus/ham/h%d.eml" % i, head("Re: project update %d" % i,
                                              extra="Content-Type: text/plain\r\n") + "\r\n" + t + "\r\n")
    for i, t in enumerate(spams):
        write("corpus/spam/s%d.eml" % i, head("Special offer %d" % i, frm="Deals <deals@promo-mail.biz>",
                                               extra="Content-Type: text/plain\r\n") + "\r\n" + t + "\r\n")
    for i, t in enumerate(phishes):
        write("corpus/phish/p%d.eml" % i, html_msg("Security alert %d" % i, "<p>" + t + "</p>",
                                                   frm="Security Team <no-reply@account-alerts.info>"))


if __name__ == "__main__":
    main()
