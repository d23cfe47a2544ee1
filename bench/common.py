"""Pieces shared by the Postern benchmarks in bench/*/.

Imported by path: a bench script puts its parent directory (bench/) on
sys.path and does "import common". Importing this module also puts
tests/integration on sys.path so that the test harness can be loaded with
harness().
"""

import argparse
import os
import shutil
import socket
import subprocess
import sys

SRCDIR = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.join(SRCDIR, "tests", "integration"))
# Needs no POSTERN_BUILDDIR: harness() below points the module at the build.
from harness import wait_port  # noqa: E402,F401 (tests/integration/harness.py)


def harness(builddir):
    """The integration test harness module, pointed at BUILDDIR."""
    os.environ["POSTERN_BUILDDIR"] = os.path.abspath(builddir)
    import harness as h  # noqa: E402 (needs POSTERN_BUILDDIR)
    h.BUILDDIR = os.environ["POSTERN_BUILDDIR"]
    return h


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_messages(messages, tmp, prefix):
    """Writes each message to TMP/<PREFIX><i>.eml; returns the paths."""
    paths = []
    for i, m in enumerate(messages):
        path = os.path.join(tmp, "%s%d.eml" % (prefix, i))
        with open(path, "wb") as f:
            f.write(m)
        paths.append(path)
    return paths


def pop3_fill(h, srv, user, paths):
    """Seals the message files PATHS into USER's INBOX in the store of SRV
    (tests/integration/pop3_fill of harness module H's build dir)."""
    subprocess.run([os.path.join(h.BUILDDIR, "tests/integration/pop3_fill"), "-c",
                    srv.config_path, user, *paths], check=True, stdout=subprocess.DEVNULL)


def keep_certificate(srv, tmp):
    """Copies the server's certificate and key to TMP/cert.pem and TMP/key.pem:
    its data dir goes away with it, and Dovecot uses the same pair."""
    shutil.copy(srv.cafile, os.path.join(tmp, "cert.pem"))
    shutil.copy(srv.keyfile, os.path.join(tmp, "key.pem"))


# ---- Dovecot ----

def dovecot_args(doc):
    """The command line of a Postern-versus-Dovecot load benchmark (DOC's
    first line describes it): --builddir, --clients, --messages, --seconds
    and --no-dovecot."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("--builddir", default=os.path.join(SRCDIR, "build"))
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--messages", type=int, default=200)
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--no-dovecot", action="store_true")
    return ap.parse_args()


DOVECOT_CONF = """\
protocols = {protocol}
listen = 127.0.0.1
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
ssl = required
ssl_cert = <{d}/cert.pem
ssl_key = <{d}/key.pem
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = yes
auth_mechanisms = plain
auth_cache_size = 10M
auth_cache_ttl = 600s
{settings}passdb {{
  driver = passwd-file
  args = {d}/passwd
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={d}/home/%u
}}
mail_location = maildir:~/Maildir
protocol {protocol} {{
  mail_max_userip_connections = {userip}
}}
service {protocol}-login {{
  inet_listener {protocol} {{
    port = 0
  }}
  inet_listener {protocol}s {{
    port = {port}
    ssl = yes
  }}
  service_count = 0
  process_min_avail = {cores}
{login}}}
{services}"""


def dovecot_config(d, protocol, port, settings="", login="", services="", userip=1000):
    """The configuration of a Dovecot serving PROTOCOL ("imap" or "pop3") with
    implicit TLS on 127.0.0.1:PORT from D: the users of D/passwd with their
    Maildirs in D/home (as nobody), D/cert.pem and D/key.pem. SETTINGS adds
    global lines, LOGIN lines in the login service, SERVICES whole service
    blocks; USERIP is the most connections of one user from one address."""
    return DOVECOT_CONF.format(d=d, protocol=protocol, port=port, settings=settings,
                               login=login, services=services, userip=userip,
                               cores=os.cpu_count() or 1)


def ensure_dovecot(service, package):
    """Installs the Debian PACKAGE (e.g. dovecot-imapd) when dovecot or
    /usr/lib/dovecot/SERVICE is missing."""
    if not shutil.which("dovecot") or not os.path.exists("/usr/lib/dovecot/" + service):
        subprocess.run(["apt-get", "install", "-y", "-q", package], check=True,
                       stdout=subprocess.DEVNULL)


def maildir(d, user):
    """Creates D/home/USER/Maildir with cur, new and tmp; returns its path."""
    path = os.path.join(d, "home", user, "Maildir")
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(path, sub))
    return path


def dovecot_passwd(d, users, password):
    """Writes D/passwd giving every user in USERS the Argon2id hash of PASSWORD."""
    pw = subprocess.run(["doveadm", "pw", "-s", "ARGON2ID", "-p", password], check=True,
                        capture_output=True, text=True).stdout.strip()
    with open(os.path.join(d, "passwd"), "w") as f:
        for u in users:
            f.write("%s:%s\n" % (u, pw))


def start_dovecot(tmp, d, config, port):
    """Writes CONFIG to D/dovecot.conf, hands D/home to nobody, starts Dovecot
    in the foreground and waits until it accepts on PORT. Returns the process;
    the caller stops it with stop_dovecot()."""
    conf = os.path.join(d, "dovecot.conf")
    with open(conf, "w") as f:
        f.write(config)
    subprocess.run(["chown", "-R", "nobody:nogroup", os.path.join(d, "home")], check=True)
    os.chmod(tmp, 0o755)
    os.chmod(d, 0o755)
    proc = subprocess.Popen(["dovecot", "-F", "-c", conf])
    try:
        wait_port(port, proc=proc, what="dovecot did not start; see %s/dovecot.log" % d)
    except BaseException:
        stop_dovecot(proc, 30)
        raise
    return proc


def stop_dovecot(proc, timeout):
    proc.terminate()
    proc.wait(timeout)
