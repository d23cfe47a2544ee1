"""Test harness: runs a real posternd on loopback ports with its own data dir.

A Server writes a config into a temporary directory (listeners on free
127.0.0.1 ports), creates the self-signed certificate and the schema with
posternctl, starts posternd and waits until every listener accepts. The
store engine comes from $POSTERN_TEST_ENGINE ("sqlite", the default, or
"mariadb", which needs $POSTERN_TEST_MARIADB_SOCKET: each Server then gets a
database of its own, dropped at stop).
"""

import itertools
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.environ.get("POSTERN_SRCDIR", os.path.abspath(os.path.join(HERE, "..", "..")))
BUILDDIR = os.environ.get("POSTERN_BUILDDIR", os.path.join(SRCDIR, "build"))

# Listener name -> (protocol, tls mode)
LISTENERS = {
    "smtp": ("smtp", "starttls"),
    "submission": ("submission", "starttls"),
    "submissions": ("submission", "implicit"),
    "pop3": ("pop3", "starttls"),
    "pop3s": ("pop3", "implicit"),
    "imap": ("imap", "starttls"),
    "imaps": ("imap", "implicit"),
}

_counter = itertools.count(1)

# posternd refuses to keep running as root. When the tests run as root (as
# in CI), the daemon drops to this account and posternctl runs as it too, so
# every file in the data dir belongs to the account the daemon runs as.
RUN_AS = "nobody" if os.getuid() == 0 else None


def demote():
    """preexec_fn: become RUN_AS (no-op when not root)."""
    if RUN_AS:
        pw = pwd.getpwnam(RUN_AS)
        os.setgroups([])
        os.setgid(pw.pw_gid)
        os.setuid(pw.pw_uid)


def chown_tree(path):
    """Hands PATH and everything below it to RUN_AS (no-op when not root)."""
    if not RUN_AS:
        return
    pw = pwd.getpwnam(RUN_AS)
    os.chown(path, pw.pw_uid, pw.pw_gid)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.lchown(os.path.join(root, name), pw.pw_uid, pw.pw_gid)


_ports_given = set()


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now and that this
    process has not handed out before (the kernel may offer a port it just
    gave for another listener of the same server)."""
    for _ in range(1000):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _ports_given:
            _ports_given.add(port)
            return port
    raise RuntimeError("no unused loopback port found")


def wait_port(port, timeout=30, proc=None, what=None):
    """Waits until something accepts on 127.0.0.1:PORT. Gives up after TIMEOUT
    seconds or, when PROC is given, as soon as PROC has exited; WHAT names the
    server in the error."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline or (proc is not None and proc.poll() is not None):
                raise RuntimeError(what or "nothing listens on port %d" % port)
            time.sleep(0.05)


def engine():
    return os.environ.get("POSTERN_TEST_ENGINE", "sqlite")


_sanitized = None


def sanitized_build():
    """True when posternd was built with --enable-sanitizers (ASan)."""
    global _sanitized
    if _sanitized is None:
        with open(program("posternd"), "rb") as f:
            _sanitized = b"__asan_init" in f.read()
    return _sanitized


def program(name):
    """Path of a built program (posternd, posternctl) in the build tree."""
    path = os.path.join(BUILDDIR, name)
    if not os.access(path, os.X_OK):
        raise RuntimeError("%s not built (looked in %s)" % (name, BUILDDIR))
    return path


def mariadb(sql):
    """Runs SQL as root on the test MariaDB server."""
    sock = os.environ["POSTERN_TEST_MARIADB_SOCKET"]
    subprocess.run(["mariadb", "--no-defaults", "-S", sock, "-u", "root", "-e", sql],
                   check=True, capture_output=True, text=True, timeout=60)


class Server:
    def __init__(self, listeners=("smtp", "submission", "submissions", "pop3", "pop3s"),
                 config=None, start=True):
        self.listeners = tuple(listeners)
        self.overrides = config or {}
        self.data_dir = tempfile.mkdtemp(prefix="postern-test-")
        self.run_as = RUN_AS
        chown_tree(self.data_dir)
        self.config_path = os.path.join(self.data_dir, "postern.conf")
        self.cafile = os.path.join(self.data_dir, "cert.pem")
        self.keyfile = os.path.join(self.data_dir, "key.pem")
        self.log_path = os.path.join(self.data_dir, "posternd.log")
        self.admin_socket = os.path.join(self.data_dir, "admin.sock")
        self.ports = {name: free_port() for name in self.listeners}
        self.metrics_port = free_port()
        self.engine = engine()
        self.database = None
        self.proc = None
        self._log = None
        if self.engine == "mariadb":
            self.database = "postern_t%d_%d" % (os.getpid(), next(_counter))
            mariadb("CREATE DATABASE %s CHARACTER SET utf8mb4" % self.database)
        self._write_config()
        self.ctl("cert", "selfsigned", "--hostname", "localhost",
                 "--cert", self.cafile, "--key", self.keyfile)
        self.ctl("db", "migrate")
        if start:
            self.start()

    # ---- configuration ----
    def _sections(self):
        sections = {
            "server": {
                "hostname": "localhost",
                "data_dir": self.data_dir,
                "workers": "2",
                "log_level": "debug",
                "admin_socket": self.admin_socket,
            },
            "tls": {"cert_file": self.cafile, "key_file": self.keyfile},
            "store": {"engine": self.engine},
            "metrics": {"enabled": "yes", "address": "127.0.0.1",
                        "port": str(self.metrics_port)},
        }
        if RUN_AS:
            sections["server"]["user"] = RUN_AS
        if self.engine == "mariadb":
            sections["store"].update({
                "mariadb_socket": os.environ["POSTERN_TEST_MARIADB_SOCKET"],
                "mariadb_user": "root",
                "mariadb_database": self.database,
            })
        for section, values in self.overrides.items():
            sections.setdefault(section, {}).update(values)
        return sections

    def _write_config(self):
        lines = []
        for section, values in self._sections().items():
            lines.append("[%s]" % section)
            lines.extend("%s = %s" % (k, v) for k, v in values.items())
            lines.append("")
        for name in self.listeners:
            protocol, tls = LISTENERS[name]
            lines += ["[listener %s]" % name, "protocol = %s" % protocol,
                      "address = 127.0.0.1", "port = %d" % self.ports[name],
                      "tls = %s" % tls, ""]
        with open(self.config_path, "w") as f:
            f.write("\n".join(lines))
        chown_tree(self.data_dir)

    # ---- process control ----
    def _ports_taken(self, since):
        """True when posternd, whose log starts at offset SINCE, could not bind
        a port: free_port() only found it free, and on a busy machine another
        process (a client's outgoing connection, too) may take it before
        posternd binds it."""
        if "Address already in use" in self.log()[since:]:
            return True
        for port in list(self.ports.values()) + [self.metrics_port]:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    return True
        return False

    def start(self, timeout=30, port_retries=3):
        chown_tree(self.data_dir)
        since = len(self.log())
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([program("posternd"), "-c", self.config_path],
                                     stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        pending = set(self.ports.values())
        # The admin socket appears after the listeners, once root is dropped.
        while pending or not os.path.exists(self.admin_socket):
            if self.proc.poll() is not None:
                if port_retries > 0 and self._ports_taken(since):
                    self._log.close()
                    self.ports = {name: free_port() for name in self.listeners}
                    self.metrics_port = free_port()
                    self._write_config()
                    return self.start(timeout, port_retries - 1)
                raise RuntimeError("posternd exited with %s:\n%s" % (self.proc.returncode, self.log()))
            if time.monotonic() > deadline:
                raise RuntimeError("posternd not ready within %ss:\n%s" % (timeout, self.log()))
            for port in list(pending):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    pending.discard(port)
                except OSError:
                    pass
            time.sleep(0.05)

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def reload(self):
        self.proc.send_signal(signal.SIGHUP)

    def stop(self, timeout=60):
        # Under ASan on a busy machine the exit (workers, queue runner, one
        # gpgconf --kill per gpg-agent, the leak check) is slow: the bound
        # only catches a daemon that does not stop.
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise RuntimeError("posternd did not stop on SIGTERM:\n" + self.log())
        rc = self.proc.returncode if self.proc else 0
        if self._log:
            self._log.close()
            self._log = None
        self.check_sanitizers()
        return rc

    def check_sanitizers(self):
        """In a sanitizer build, any report in the daemon's output fails the test."""
        text = self.log()
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                       "runtime error:", "ERROR: UndefinedBehaviorSanitizer"):
            if marker in text:
                raise AssertionError("posternd sanitizer report:\n" + text[max(0, text.index(marker) - 200):][:6000])

    def kill9(self):
        self.proc.kill()
        self.proc.wait()
        if self._log:
            self._log.close()
            self._log = None

    def close(self):
        try:
            self.stop()
        finally:
            if self.database:
                try:
                    mariadb("DROP DATABASE IF EXISTS %s" % self.database)
                except (subprocess.SubprocessError, OSError):
                    pass
            if not os.environ.get("POSTERN_TEST_KEEP"):
                shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    # ---- clients ----
    def port(self, name):
        return self.ports[name]

    def ssl_context(self):
        ctx = ssl.create_default_context(cafile=self.cafile)
        ctx.check_hostname = True
        return ctx

    def ctl(self, *args, input=None, check=True, timeout=120):
        res = subprocess.run([program("posternctl"), "-c", self.config_path, *args],
                             input=input, capture_output=True, text=True, timeout=timeout,
                             preexec_fn=demote)
        if check and res.returncode != 0:
            raise RuntimeError("posternctl %s exited %d:\n%s%s" % (
                " ".join(args), res.returncode, res.stdout, res.stderr))
        return res

    def add_domain(self, domain):
        return self.ctl("domain", "add", domain)

    def add_user(self, address, password):
        return self.ctl("user", "add", address, input=password + "\n")
