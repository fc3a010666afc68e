"""Shared helpers for the Staccato black-box integration tests.

Python 3 standard library only. Every socket has a timeout and every loop is
bounded by a deadline, so a hung or misbehaving server fails a test instead of
hanging the suite.

Server binary: $STACCATO_BIN, else build/staccato relative to the repo root.

TLS mode (STACCATO_TEST_TLS=1): every Server also listens on a TLS port (a free
port, a throw-away self-signed ECDSA P-256 certificate made once per process
with openssl), and every client connection made through this module (Conn,
Server.connect/get, request()) to a server's port goes over TLS (no
verification, ALPN http/1.1) to that server's TLS port instead. Tests that
cannot apply over TLS skip themselves with unittest.skipIf(harness.TLS, ...).

OpenAPI checks: every response read through a Conn to a request the harness
built (Conn.request, Server.get, request(), pipeline_all, and build_request()
bytes sent with Conn.send/send_slowly) is checked against the server's OpenAPI
document (`$STACCATO_BIN openapi`, loaded once per process); a response that
is not as documented fails the call with openapi_check.Mismatch. Each Conn
keeps the (method, target) of the requests it sent, in order; bytes it sends
that build_request did not make (other than the declared body of the request
before them) make the requests after them unknown, so those responses are
not checked. See openapi_check.py, also for SC_OPENAPI_CHECK=0.
"""

import atexit
import collections
import json
import os
import re
import resource
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import openapi_check

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))

LOOPBACK = "127.0.0.1"
START_DEADLINE_S = 10.0      # time allowed for the "listening on" line
STOP_DEADLINE_S = 15.0       # time allowed to exit after SIGTERM/SIGINT (> default drain)
SOCK_TIMEOUT_S = 5.0         # default per-operation socket timeout
LISTEN_RE = re.compile(r"listening on http://([0-9A-Za-z.:\[\]-]+):(\d+)")
LISTEN_TLS_RE = re.compile(r"listening on https://([0-9A-Za-z.:\[\]-]+):(\d+)")

# TLS mode: the whole run talks to the servers over TLS (see the module docstring).
TLS = os.environ.get("STACCATO_TEST_TLS", "") == "1"
# Settings that configure TLS (scrubbed from the inherited environment like STACCATO_*).
TLS_SETTINGS = ["TLS_PORT", "TLS_CERT", "TLS_KEY", "TLS_CHAIN"]

# Every setting from the spec table (used to scrub the inherited environment
# and by test_config to check --help).
SETTINGS = [
    "HOST", "PORT", "STACCATO_WORKERS", "STACCATO_MAX_CONNECTIONS",
    "STACCATO_MAX_HEADER_BYTES", "STACCATO_MAX_HEADERS", "STACCATO_MAX_URL_BYTES",
    "STACCATO_MAX_BODY_BYTES", "STACCATO_HEADER_TIMEOUT_MS", "STACCATO_BODY_TIMEOUT_MS",
    "STACCATO_KEEPALIVE_TIMEOUT_MS", "STACCATO_SEND_TIMEOUT_MS", "STACCATO_MAX_WRITE_BUFFER",
    "STACCATO_DRAIN_TIMEOUT_MS", "STACCATO_LOG_LEVEL", "STACCATO_LOG_FORMAT",
    "STACCATO_ACCESS_LOG", "STACCATO_TRUSTED_PROXIES",
    "TLS_PORT", "TLS_CERT", "TLS_KEY", "TLS_CHAIN", "STACCATO_TLS_HANDSHAKE_TIMEOUT_MS",
    "STACCATO_HTTPS_REDIRECT", "STACCATO_HSTS_MAX_AGE",
]


def server_bin():
    b = os.environ.get("STACCATO_BIN") or os.path.join(REPO_ROOT, "build", "staccato")
    return os.path.abspath(b)


def clean_env(overrides=None, base=True):
    """Inherited environment minus anything that configures staccato (BACKEND_CORS_ORIGINS too), plus the
    test defaults (loopback, PORT=0, debug routes) and per-test overrides.
    An override value of None removes the variable."""
    env = {k: v for k, v in os.environ.items()
           if not (k.startswith("STACCATO_") or k in ("HOST", "PORT", "BACKEND_CORS_ORIGINS")
                   or k in TLS_SETTINGS)}
    if base:
        # Every test registers from loopback: the registration limit is for the tests that check it.
        env.update({"HOST": LOOPBACK, "PORT": "0", "STACCATO_DEBUG_ROUTES": "on",
                    "STACCATO_REGISTER_MAX_PER_ADDRESS": "1000000"})
    for k, v in (overrides or {}).items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = str(v)
    return env


def run_cli(args, env_overrides=None, cwd=None, timeout=5.0, base_env=True):
    """Run the binary to completion (for --help/--version/bad config).
    Returns (returncode, stdout, stderr). A process still alive at the deadline
    is killed and reported with returncode None."""
    own_tmp = None
    if cwd is None:
        own_tmp = cwd = tempfile.mkdtemp(prefix="staccato-it-")
    try:
        p = subprocess.Popen([server_bin()] + list(args), env=clean_env(env_overrides, base_env),
                             cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        try:
            out, err = p.communicate(timeout=timeout)
            rc = p.returncode
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate(timeout=5)
            rc = None
        return rc, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
    finally:
        if own_tmp:
            shutil.rmtree(own_tmp, ignore_errors=True)


class _LineCollector(threading.Thread):
    """Drains a pipe line by line so the child never blocks on a full pipe."""

    def __init__(self, pipe, name):
        super().__init__(name=name, daemon=True)
        self.pipe = pipe
        self.lines = []
        self.cond = threading.Condition()
        self.done = False

    def run(self):
        try:
            for raw in iter(self.pipe.readline, b""):
                with self.cond:
                    self.lines.append(raw.decode("utf-8", "replace").rstrip("\r\n"))
                    self.cond.notify_all()
        finally:
            with self.cond:
                self.done = True
                self.cond.notify_all()

    def snapshot(self):
        with self.cond:
            return list(self.lines)

    def wait_for(self, pred, timeout):
        """Wait until some line satisfies pred; returns it or None."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for ln in self.lines:
                    if pred(ln):
                        return ln
                left = deadline - time.monotonic()
                if left <= 0 or self.done:
                    return None
                self.cond.wait(min(left, 0.1))

    def wait_done(self, timeout):
        deadline = time.monotonic() + timeout
        with self.cond:
            while not self.done and time.monotonic() < deadline:
                self.cond.wait(0.05)
            return self.done


class ServerError(AssertionError):
    pass

# ---------------------------------------------------------------------------
# TLS: test certificates, free ports, the client side
# ---------------------------------------------------------------------------

_CERT_LOCK = threading.Lock()
_TEST_CERT = None           # (cert, key) of the run, made on first use
_TLS_PORTS = {}             # plaintext port -> TLS port of the servers started in TLS mode
_TLS_DIR = None


def _tls_dir():
    global _TLS_DIR
    if _TLS_DIR is None:
        _TLS_DIR = tempfile.mkdtemp(prefix="staccato-it-tls-")
        atexit.register(shutil.rmtree, _TLS_DIR, True)
    return _TLS_DIR


def make_certificate(directory, cn="localhost", name=None, days=30, key_type="P-256"):
    """A self-signed certificate (SAN localhost, 127.0.0.1) and its key, written
    with openssl into directory: ECDSA on key_type ("P-256", "P-384", ...) or
    "rsa" (2048 bits). Returns (cert_path, key_path)."""
    name = name or cn
    cert = os.path.join(directory, name + ".crt")
    key = os.path.join(directory, name + ".key")
    newkey = (["-newkey", "rsa:2048"] if key_type == "rsa"
              else ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:" + key_type])
    cmd = ["openssl", "req", "-x509"] + newkey + ["-nodes",
           "-keyout", key, "-out", cert, "-days", str(days), "-subj", "/CN=" + cn,
           "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"]
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=30)
    if p.returncode != 0:
        raise ServerError("openssl could not make a test certificate: %s"
                          % p.stderr.decode("utf-8", "replace"))
    return cert, key


def test_certificate():
    """The run's throw-away certificate (made once per process, removed at exit)."""
    global _TEST_CERT
    with _CERT_LOCK:
        if _TEST_CERT is None:
            _TEST_CERT = make_certificate(_tls_dir(), "staccato-test")
        return _TEST_CERT


def free_port():
    """A TCP port on loopback that nothing listens on right now."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]
    finally:
        s.close()


def client_context(alpn=("http/1.1",)):
    """A client context that verifies nothing (the certificates are throw-away)
    and offers ALPN http/1.1."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    return ctx


_CLIENT_CTX = None


def _default_context():
    global _CLIENT_CTX
    if _CLIENT_CTX is None:
        _CLIENT_CTX = client_context()
    return _CLIENT_CTX




class Server:
    """A staccato process on 127.0.0.1 with an OS-chosen port.

    tls: None follows the run's mode (harness.TLS), True/False forces it. With
    TLS the server also listens on tls_port (TLS_PORT, TLS_CERT and TLS_KEY are
    set unless env gives them), and connections through this module to `port`
    go to tls_port over TLS. http_port is always the plaintext port."""

    def __init__(self, env=None, args=(), cwd=None, start=True, start_deadline=START_DEADLINE_S, tls=None,
                 nofile=None):
        """nofile: the server's limit of open files (soft and hard), else the test runner's."""
        self.env_overrides = dict(env or {})
        self.nofile = nofile
        self.args = list(args)
        self.tls = TLS if tls is None else bool(tls)
        self.tls_port = None
        self.http_port = None
        self._own_tmp = None
        if cwd is None:
            # Empty cwd: a stray .env in the repo must not influence the tests.
            self._own_tmp = cwd = tempfile.mkdtemp(prefix="staccato-it-")
        self.cwd = cwd
        self.proc = None
        self.port = None
        self.returncode = None
        if start:
            self.start(start_deadline)

    # -- process control -------------------------------------------------
    def start(self, deadline_s=START_DEADLINE_S):
        binary = server_bin()
        if not os.path.exists(binary):
            raise ServerError("server binary not found: %s (set STACCATO_BIN)" % binary)
        # The OpenAPI document is loaded before any server runs, so that no timed request ever waits for it.
        openapi_checker(_debug_routes_on(clean_env(self.env_overrides), self.args))
        if not self.tls:
            return self._start(binary, self.env_overrides, deadline_s)
        # The TLS port is picked here (TLS_PORT=0 means no TLS): another process may take it before the
        # server binds it, so a start that fails on a taken port is tried again with another one.
        for attempt in range(4):
            env = dict(self.env_overrides)
            pick = "TLS_PORT" not in env
            if pick:
                env["TLS_PORT"] = free_port()
            if "TLS_CERT" not in env and "TLS_KEY" not in env:
                env["TLS_CERT"], env["TLS_KEY"] = test_certificate()
            try:
                return self._start(binary, env, deadline_s, keep_tmp=pick and attempt < 3)
            except ServerError as e:
                if not pick or attempt == 3 or "in use" not in str(e).lower():
                    self.cleanup_tmp()
                    raise

    def _start(self, binary, env_overrides, deadline_s, keep_tmp=False):
        limit = None
        if self.nofile:
            def limit():
                resource.setrlimit(resource.RLIMIT_NOFILE, (self.nofile, self.nofile))
        self.proc = subprocess.Popen([binary] + self.args, env=clean_env(env_overrides),
                                     cwd=self.cwd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=limit)
        self.out = _LineCollector(self.proc.stdout, "staccato-stdout")
        self.err = _LineCollector(self.proc.stderr, "staccato-stderr")
        self.out.start()
        self.err.start()
        line = self.err.wait_for(lambda ln: LISTEN_RE.search(ln) is not None, deadline_s)
        if line is None:
            alive = self.proc.poll() is None
            self.kill(keep_tmp)
            raise ServerError("server did not log 'listening on http://HOST:PORT' within %.1fs "
                              "(alive=%s, rc=%s)\nstderr:\n%s" % (
                                  deadline_s, alive, self.proc.returncode,
                                  "\n".join(self.err.snapshot()[-30:])))
        m = LISTEN_RE.search(line)
        self.port = int(m.group(2))
        if self.port == 0:
            self.kill(keep_tmp)
            raise ServerError("listening line shows port 0, expected the real port: %r" % line)
        self.http_port = self.port
        if self.tls:
            line = self.err.wait_for(lambda ln: LISTEN_TLS_RE.search(ln) is not None, deadline_s)
            if line is None:
                alive = self.proc.poll() is None
                self.kill(keep_tmp)
                raise ServerError("server did not log 'listening on https://HOST:PORT' within %.1fs "
                                  "(alive=%s, rc=%s)\nstderr:\n%s" % (
                                      deadline_s, alive, self.proc.returncode,
                                      "\n".join(self.err.snapshot()[-30:])))
            self.tls_port = int(LISTEN_TLS_RE.search(line).group(2))
            if self.tls_port == 0:
                self.kill(keep_tmp)
                raise ServerError("listening line shows port 0, expected the real port: %r" % line)
            _TLS_PORTS[self.port] = self.tls_port
        else:
            _TLS_PORTS.pop(self.port, None)
        for port in (self.port, self.tls_port):
            if port is None:
                continue
            if _debug_routes_on(clean_env(env_overrides), self.args):
                _NO_DEBUG_PORTS.discard(port)
            else:
                _NO_DEBUG_PORTS.add(port)
        return self

    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def send_signal(self, sig):
        if self.alive():
            self.proc.send_signal(sig)

    def wait(self, timeout):
        """Wait for exit; returns the exit code or None if still running."""
        try:
            self.returncode = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        self._close_pipes()
        return self.returncode

    def _close_pipes(self):
        for coll, pipe in ((self.out, self.proc.stdout), (self.err, self.proc.stderr)):
            if coll.wait_done(2):
                try:
                    pipe.close()
                except OSError:
                    pass

    def stop(self, sig=signal.SIGTERM, timeout=STOP_DEADLINE_S):
        """Send sig and wait; returns the exit code (None => had to SIGKILL)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        rc = self.wait(timeout)
        if rc is None:
            self.kill()
            return None
        return rc

    def stop_ok(self, testcase=None, sig=signal.SIGTERM, timeout=STOP_DEADLINE_S):
        rc = self.stop(sig, timeout)
        msg = "server exit code after %s: %r (expected 0)\nstderr tail:\n%s" % (
            signal.Signals(sig).name, rc, "\n".join(self.err.snapshot()[-20:]))
        if testcase is not None:
            testcase.assertEqual(rc, 0, msg)
        elif rc != 0:
            raise ServerError(msg)
        return rc

    def kill(self, keep_tmp=False):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        if self.proc is not None and self.proc.poll() is not None and hasattr(self, "out"):
            self._close_pipes()
        if not keep_tmp:
            self.cleanup_tmp()

    def cleanup_tmp(self):
        if self._own_tmp:
            shutil.rmtree(self._own_tmp, ignore_errors=True)
            self._own_tmp = None

    # -- logs ---------------------------------------------------------------
    def stdout_lines(self):
        return [ln for ln in self.out.snapshot() if ln.strip()]

    def stderr_lines(self):
        return [ln for ln in self.err.snapshot() if ln.strip()]

    # -- clients ------------------------------------------------------------
    def connect(self, **kw):
        """A client connection: over TLS to tls_port for a TLS server (unless
        tls=False is given: then plaintext to the plaintext port)."""
        return Conn(self.port, **kw)

    def get(self, path, **kw):
        """One request on a fresh connection (closed afterwards)."""
        c = self.connect()
        try:
            return c.request(kw.pop("method", "GET"), path, **kw)
        finally:
            c.close()

    def metrics(self):
        r = self.get("/metrics")
        if r.status != 200:
            raise AssertionError("/metrics returned %d: %r" % (r.status, r.body[:200]))
        return parse_metrics(r.text())


# ---------------------------------------------------------------------------
# HTTP/1.1 raw client
# ---------------------------------------------------------------------------

class ProtocolError(AssertionError):
    pass


class ConnectionClosed(AssertionError):
    """EOF/RST before a complete response was read."""

    def __init__(self, msg, partial=b""):
        super().__init__(msg)
        self.partial = partial


class TLSHandshakeError(ConnectionClosed):
    """The TLS handshake did not complete: the server closed the connection (or
    refused the handshake) before any HTTP."""


class Response:
    def __init__(self, version, status, reason, headers, body, raw_head, framing):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers          # list of (name, value), original order
        self.body = body
        self.raw_head = raw_head
        self.framing = framing          # "content-length", "chunked", "none", "eof"

    def header(self, name, default=None):
        n = name.lower()
        for k, v in self.headers:
            if k.lower() == n:
                return v
        return default

    def header_all(self, name):
        n = name.lower()
        return [v for k, v in self.headers if k.lower() == n]

    def has_header(self, name):
        return self.header(name) is not None

    def connection_tokens(self):
        toks = set()
        for v in self.header_all("connection"):
            toks.update(t.strip().lower() for t in v.split(",") if t.strip())
        return toks

    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        try:
            return json.loads(self.body.decode("utf-8"))
        except Exception as e:
            raise AssertionError("response body is not JSON (%s): %r" % (e, self.body[:300]))

    def __repr__(self):
        return "<Response %s %d %r headers=%r body=%r>" % (
            self.version, self.status, self.reason, self.headers, self.body[:200])


# What a Conn knows about the bytes it sends (see Wire): a request, bytes it does not know, a whole chunked body.
_RAW = ("raw",)
_CHUNKED_BODY = ("chunked-body",)


class Wire(bytes):
    """Bytes that know which requests they hold: build_request returns one. items lists, in order, ("req",
    method, target, body_left) for each request (body_left: the body bytes its Content-Length still expects after
    these bytes, "chunked" for a chunked request whose body has not started, None when unknown), ("raw", n) for n
    bytes that are not a known request, and _CHUNKED_BODY for a whole chunked body made by chunked(). + and *
    keep the items; slicing and bytes.join do not (the result is plain bytes, unknown to a Conn)."""

    def __new__(cls, data, items):
        w = super().__new__(cls, data)
        w.items = items
        return w

    def __add__(self, other):
        if isinstance(other, Wire):
            return Wire(bytes(self) + bytes(other), self.items + other.items)
        if isinstance(other, (bytes, bytearray, memoryview)):
            other = bytes(other)
            return Wire(bytes(self) + other, self.items + ([("raw", len(other))] if other else []))
        return NotImplemented

    def __radd__(self, other):
        if isinstance(other, (bytes, bytearray, memoryview)):
            other = bytes(other)
            return Wire(other + bytes(self), ([("raw", len(other))] if other else []) + self.items)
        return NotImplemented

    def __mul__(self, n):
        if not isinstance(n, int):
            return NotImplemented
        return Wire(bytes(self) * n, self.items * max(n, 0))

    __rmul__ = __mul__


_TOKEN_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_TARGET_RE = re.compile(r"^[\x21-\x7e]+$")
_VERSION_RE = re.compile(r"^HTTP/\d\.\d$")


def _request_items(method, target, headers, body, version):
    """The Wire items of a request that build_request serialized: unknown ("raw") when its request line or
    headers are not plain (a test crafting something odd), else the request and what its body still lacks."""
    n = 0 if body is None else len(body)
    plain = (isinstance(method, str) and _TOKEN_RE.match(method) and isinstance(target, str)
             and _TARGET_RE.match(target) and isinstance(version, str) and _VERSION_RE.match(version)
             and all("\r" not in str(k) + str(v) and "\n" not in str(k) + str(v) for k, v in headers))
    if not plain:
        return [_RAW]
    cls = [str(v).strip() for k, v in headers if k.lower() == "content-length"]
    tes = [str(v).lower() for k, v in headers if k.lower() == "transfer-encoding"]
    extra = []
    if tes:
        left = None
        if len(tes) == 1 and tes[0].strip() == "chunked" and not cls:
            left = "chunked" if not n else 0 if isinstance(body, ChunkedBody) else None
    elif len(cls) == 1 and cls[0].isdigit():
        left = int(cls[0]) - n
        if left < 0:
            left, extra = 0, [_RAW]
    elif not cls:
        left = 0
    else:
        left = None
    return [("req", method, target, left)] + extra


def build_request(method, target, headers=None, body=None, version="HTTP/1.1", host=True):
    """Serialize a request. headers: list of (name, value) or dict. Adds Host
    (unless host=False or already present) and Content-Length for a bytes body
    when neither Content-Length nor Transfer-Encoding is given. Returns a Wire,
    so that a Conn that sends it knows the request its next response answers."""
    if isinstance(headers, dict):
        headers = list(headers.items())
    headers = list(headers or [])
    names = {k.lower() for k, _ in headers}
    if host and "host" not in names:
        headers.insert(0, ("Host", "127.0.0.1"))
    if isinstance(body, str):
        body = body.encode()
    if body is not None and "content-length" not in names and "transfer-encoding" not in names:
        headers.append(("Content-Length", str(len(body))))
    head = "%s %s %s\r\n" % (method, target, version)
    head += "".join("%s: %s\r\n" % (k, v) for k, v in headers)
    head += "\r\n"
    return Wire(head.encode("latin-1") + (body or b""), _request_items(method, target, headers, body, version))


class ChunkedBody(Wire):
    """A whole chunked body (what chunked() returns)."""

    def __new__(cls, data):
        return super().__new__(cls, data, [_CHUNKED_BODY])


def chunked(chunks, trailer=b""):
    out = b""
    for c in chunks:
        if isinstance(c, str):
            c = c.encode()
        out += b"%x\r\n%s\r\n" % (len(c), c)
    return ChunkedBody(out + b"0\r\n" + trailer + b"\r\n")


def join_requests(parts):
    """b"".join for build_request() results that keeps what they are (a Wire)."""
    data, items = [], []
    for p in parts:
        data.append(bytes(p))
        items.extend(p.items if isinstance(p, Wire) else [("raw", len(p))] if p else [])
    return Wire(b"".join(data), items)


# ---------------------------------------------------------------------------
# The OpenAPI document the responses are checked against
# ---------------------------------------------------------------------------

_CHECKER_LOCK = threading.Lock()
_CHECKER = None             # the document with the /_debug/* routes (the tests' servers have them on)
_CHECKER_STATE = None       # None: not loaded yet; "on", "off", or the error that loading raised
_CHECKER_NO_DEBUG = None    # the document without them, for the few servers that run with them off
_NO_DEBUG_PORTS = set()     # ports of the servers started with the debug routes off
MISMATCHES = []             # every Mismatch raised in this process (main() fails a test that swallowed one)
_TRUE = ("1", "on", "true", "yes")


def _debug_routes_on(env, args):
    """Whether a server started with env (clean_env's result) and args has the /_debug/* routes (a flag beats
    the environment; a setting only in a .env file is not seen)."""
    value = env.get("STACCATO_DEBUG_ROUTES", "off")
    args = list(args)
    for i, a in enumerate(args):
        if a.startswith("--debug-routes="):
            value = a.split("=", 1)[1]
        elif a == "--debug-routes" and i + 1 < len(args):
            value = args[i + 1]
    return value.strip().lower() in _TRUE


def openapi_checker(debug_routes=True):
    """The process's openapi_check.Checker, loaded on first use from `$STACCATO_BIN openapi` with the debug
    routes (debug_routes=False: the document without them, loaded when first needed); None when the checks are
    off (SC_OPENAPI_CHECK=0, or a binary without that command)."""
    global _CHECKER, _CHECKER_STATE, _CHECKER_NO_DEBUG
    if _CHECKER_STATE is None:
        with _CHECKER_LOCK:
            if _CHECKER_STATE is None:
                try:
                    _CHECKER = _load_checker("1")
                    _CHECKER_STATE = "on" if _CHECKER is not None else "off"
                except ServerError as e:
                    _CHECKER_STATE = e
    if isinstance(_CHECKER_STATE, Exception):
        raise _CHECKER_STATE
    if debug_routes or _CHECKER is None:
        return _CHECKER
    if _CHECKER_NO_DEBUG is None:
        with _CHECKER_LOCK:
            if _CHECKER_NO_DEBUG is None:
                _CHECKER_NO_DEBUG = _load_checker("0") or _CHECKER
    return _CHECKER_NO_DEBUG


def _load_checker(debug_routes):
    if os.environ.get("SC_OPENAPI_CHECK", "") == "0":
        return None
    try:
        rc, out, err = run_cli(["openapi"], env_overrides={"STACCATO_DEBUG_ROUTES": debug_routes}, timeout=60.0)
    except OSError:
        return None         # no binary: the servers cannot start either, and say so
    if rc is None:
        raise ServerError("`%s openapi` did not finish within 60 s" % server_bin())
    if rc != 0:
        return None         # a binary from before the command existed
    try:
        return openapi_check.load(out)
    except ValueError as e:
        raise ServerError("`%s openapi` exited 0 without a usable OpenAPI document: %s\nstderr:\n%s"
                          % (server_bin(), e, err[-2000:]))


# Final responses read through a Conn: "checked", "off" (checks off), "unknown" (to no request the Conn knew).
# SC_OPENAPI_STATS=1 prints them when the process exits.
OPENAPI_STATS = collections.Counter()
if os.environ.get("SC_OPENAPI_STATS") == "1":
    atexit.register(lambda: sys.stderr.write("OpenAPI checks: %s\n" % dict(OPENAPI_STATS)))


def check_response(method, target, resp, debug_routes=True):
    """Checks resp (a Response) to method target against the document (of a server with the /_debug/* routes,
    or without them); raises openapi_check.Mismatch."""
    checker = openapi_checker(debug_routes)
    if checker is None:
        OPENAPI_STATS["off"] += 1
        return
    OPENAPI_STATS["checked"] += 1
    try:
        checker.check(method, target, resp.status, resp.headers, resp.body)
    except openapi_check.Mismatch as e:
        MISMATCHES.append(str(e))
        raise


class Conn:
    """A raw client connection with a receive buffer and a response parser.

    tls: None connects over TLS to the TLS port of the server whose plaintext
    port `port` is when that server runs with TLS (TLS mode), else plaintext to
    port; False: plaintext to port; True: TLS to port. Over TLS, `sock` is the
    TCP socket underneath (socket options, select and SO_LINGER work on it),
    send() and the reading methods carry plaintext through the TLS session
    (one send is one or more TLS records), and the handshake is done before
    the constructor returns (TLSHandshakeError when it fails)."""

    def __init__(self, port, host=LOOPBACK, timeout=SOCK_TIMEOUT_S, rcvbuf=None, sndbuf=None,
                 nodelay=True, tls=None, context=None, session=None, server_hostname=None, source=None):
        # The document of the server's own settings: the /_debug/* routes only where they are on.
        self._debug_routes = port not in _NO_DEBUG_PORTS
        if tls is None:
            tls = port in _TLS_PORTS
            if tls:
                port = _TLS_PORTS[port]
        self.port = port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if sndbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
        if nodelay:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(timeout)
        self.timeout = timeout
        try:
            if source:                       # another loopback address (127.0.0.2) as a second client address
                self.sock.bind((source, 0))
            self.sock.connect((host, port))
        except BaseException:
            self.sock.close()
            raise
        self.buf = bytearray()
        self.eof = False
        # The requests sent whose responses are still to be read (OpenAPI checks): ("req", method, target) and
        # _RAW for bytes that may hold requests nobody knows; after a response met a _RAW, nothing is checked.
        self._expect = collections.deque()
        self._body_left = None      # of the last request sent: see Wire
        self._unknown = False
        self.tls = None
        self.close_notify_received = False   # TLS: the server ended the stream with a close_notify alert
        if tls:
            # A memory-BIO session over the plain socket: the TLS object is only used under _olock, so that a
            # thread may send (pipeline_all) while another reads, and the socket keeps plaintext semantics.
            self._olock = threading.Lock()
            self._wlock = threading.Lock()
            self._bio_in = ssl.MemoryBIO()
            self._bio_out = ssl.MemoryBIO()
            self.tls = (context or _default_context()).wrap_bio(
                self._bio_in, self._bio_out, server_side=False, server_hostname=server_hostname,
                session=session)
            try:
                self._handshake(time.monotonic() + timeout)
            except BaseException:
                self.sock.close()
                raise

    # -- TLS plumbing ---------------------------------------------------
    def _handshake(self, deadline):
        while True:
            try:
                with self._olock:
                    self.tls.do_handshake()
                    out = self._bio_out.read()
                if out:
                    self.sock.sendall(out)
                return
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError as e:
                raise TLSHandshakeError("TLS handshake failed: %s" % e)
            with self._olock:
                out = self._bio_out.read()
            try:
                if out:
                    self.sock.sendall(out)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise socket.timeout("TLS handshake did not complete in time")
                self.sock.settimeout(left)
                data = self.sock.recv(65536)
            except (ConnectionResetError, BrokenPipeError) as e:
                raise TLSHandshakeError("TLS handshake failed: %s" % e)
            finally:
                self.sock.settimeout(self.timeout)
            if not data:
                raise TLSHandshakeError("TLS handshake failed: the server closed the connection")
            with self._olock:
                self._bio_in.write(data)

    def _tls_decrypt(self):
        """Moves the plaintext the session can give now into buf. Returns
        True if some arrived, None at the end of the stream (close notify,
        EOF or a fatal alert: the connection counts as closed), False when
        more ciphertext is needed."""
        got = False
        while True:
            with self._olock:
                try:
                    data = self.tls.read(65536)
                    if not data:    # read() gives b"" for a close_notify (ragged EOFs raise)
                        self.close_notify_received = True
                except ssl.SSLWantReadError:
                    return got
                except ssl.SSLZeroReturnError:
                    data = b""
                    self.close_notify_received = True
                except ssl.SSLEOFError:
                    data = b""          # EOF without close_notify
                except ssl.SSLError:
                    data = b""          # a fatal alert or a broken record: like a reset
            if not data:
                self.eof = True
                return True if got else None
            self.buf += data
            got = True

    def peer_certificate(self):
        """TLS: the server's certificate (DER) of this session."""
        return self.tls.getpeercert(binary_form=True)

    def wire(self, data):
        """The bytes that put `data` on the wire: data itself on plaintext, its
        TLS records (encrypted now, so to be sent in this order) over TLS.
        Whatever data is, the requests in it count as unknown ones (their
        responses are not checked)."""
        if isinstance(data, str):
            data = data.encode("latin-1")
        self._note_sent(bytes(data))
        return self._wire(data)

    def _wire(self, data):
        if self.tls is None:
            return bytes(data)
        with self._olock:
            self.tls.write(data)
            return self._bio_out.read()

    def recv_some(self, bufsize=65536):
        """Like sock.recv on plaintext: bytes that arrived (waiting up to the
        socket's timeout), b"" at the end of the stream; raises socket.timeout,
        ConnectionResetError. Bytes read this way are not parsed as responses,
        so which request a later response answers is no longer known."""
        data = self._recv_some(bufsize)
        if data:
            self._forget_requests()
        return data

    def _recv_some(self, bufsize):
        if self.buf:
            data = bytes(self.buf[:bufsize])
            del self.buf[:bufsize]
            return data
        if self.tls is None:
            return self.sock.recv(bufsize)
        while True:
            if self.eof:
                return b""
            r = self._tls_decrypt()
            if r:
                if not self.buf:
                    return b""
                return self._recv_some(bufsize)
            if r is None:
                return b""
            raw = self.sock.recv(65536)
            with self._olock:
                if raw:
                    self._bio_in.write(raw)
                else:
                    self._bio_in.write_eof()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    # -- sending --------------------------------------------------------
    def _note_sent(self, data):
        """Records what data (about to be sent) holds: the requests of a Wire, else unknown bytes (the body of
        the request before them while its Content-Length still expects bytes)."""
        if self._unknown or not data:
            return
        for item in getattr(data, "items", None) or [("raw", len(data))]:
            kind = item[0]
            if kind == "req":
                self._expect.append(item[1:3])
                self._body_left = item[3]
                continue
            if kind == "chunked-body" and self._body_left == "chunked":
                self._body_left = 0
                continue
            if kind == "raw" and isinstance(self._body_left, int) and item[1] <= self._body_left:
                self._body_left -= item[1]
                continue
            self._body_left = None
            if not self._expect or self._expect[-1] is not _RAW:
                self._expect.append(_RAW)

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self._note_sent(data)
        self._send(data)

    def _send(self, data):
        if self.tls is None:
            self.sock.sendall(data)
            return
        if not data:
            return
        with self._wlock:
            mv = memoryview(data)
            for i in range(0, len(mv), 256 * 1024):
                self.sock.sendall(self._wire(mv[i:i + 256 * 1024]))

    def send_slowly(self, data, step=1, delay=0.001):
        """Sends step bytes at a time (over TLS: each step is a TLS record of its own)."""
        if isinstance(data, str):
            data = data.encode("latin-1")
        self._note_sent(data)
        for i in range(0, len(data), step):
            self._send(data[i:i + step])
            if delay:
                time.sleep(delay)

    def close_notify(self):
        """TLS: sends a close_notify alert (the TLS way of ending the stream); plaintext: shuts the write side."""
        if self.tls is None:
            self.sock.shutdown(socket.SHUT_WR)
            return
        with self._wlock:
            with self._olock:
                try:
                    self.tls.unwrap()
                except (ssl.SSLWantReadError, ssl.SSLError):
                    pass
                out = self._bio_out.read()
            self.sock.sendall(out)

    def request(self, method, target, headers=None, body=None, version="HTTP/1.1", timeout=None):
        self.send(build_request(method, target, headers, body, version))
        return self.read_response(method=method, timeout=timeout)

    # -- receiving ------------------------------------------------------
    def _recv_more(self, deadline):
        """Read more bytes into buf. Returns False on EOF/RST. Raises
        socket.timeout when the deadline passes."""
        if self.eof:
            return False
        while True:
            if self.tls is not None:
                r = self._tls_decrypt()
                if r:
                    return bool(self.buf) or not self.eof
                if r is None:
                    return False
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("deadline passed waiting for response bytes")
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                self.eof = True
                return False
            finally:
                self.sock.settimeout(self.timeout)
            if self.tls is None:
                if not data:
                    self.eof = True
                    return False
                self.buf += data
                return True
            with self._olock:
                if data:
                    self._bio_in.write(data)
                else:
                    self._bio_in.write_eof()

    def _read_line(self, deadline, what):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line = bytes(self.buf[:i])
                del self.buf[:i + 2]
                return line
            if len(self.buf) > 1 << 20:
                raise ProtocolError("line too long while reading %s" % what)
            if not self._recv_more(deadline):
                raise ConnectionClosed("connection closed while reading %s (buffered %r)"
                                       % (what, bytes(self.buf[:200])), bytes(self.buf))

    def _read_exact(self, n, deadline, what):
        while len(self.buf) < n:
            if not self._recv_more(deadline):
                raise ConnectionClosed("connection closed while reading %s: got %d of %d bytes"
                                       % (what, len(self.buf), n), bytes(self.buf))
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def read_response(self, method="GET", timeout=None):
        """Parse one response (a 1xx interim response is returned as such). A
        final response to a request this Conn knows is checked against the
        OpenAPI document (openapi_check.Mismatch when it is not as documented)."""
        try:
            resp = self._read_response(method, timeout)
        except BaseException:
            # Half a response may be consumed: which request the next one answers is no longer known.
            self._forget_requests()
            raise
        if resp.status >= 200:
            req = self._expect.popleft() if self._expect else _RAW
            if req is _RAW:
                self._forget_requests()
                OPENAPI_STATS["unknown"] += 1
            else:
                check_response(req[0], req[1], resp, self._debug_routes)
        return resp

    def _forget_requests(self):
        self._unknown = True
        self._expect.clear()

    def _read_response(self, method, timeout):
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        status_line = self._read_line(deadline, "status line")
        m = re.match(rb"^(HTTP/\d\.\d) (\d{3})(?: (.*))?$", status_line)
        if not m:
            raise ProtocolError("bad status line: %r" % status_line)
        version = m.group(1).decode()
        status = int(m.group(2))
        reason = (m.group(3) or b"").decode("latin-1")
        headers = []
        raw_head = status_line + b"\r\n"
        while True:
            line = self._read_line(deadline, "header line")
            raw_head += line + b"\r\n"
            if line == b"":
                break
            if b":" not in line:
                raise ProtocolError("bad header line: %r" % line)
            k, v = line.split(b":", 1)
            if k != k.strip() or not k:
                raise ProtocolError("bad header name: %r" % line)
            headers.append((k.decode("latin-1"), v.strip().decode("latin-1")))
        resp = Response(version, status, reason, headers, b"", raw_head, "none")
        if 100 <= status < 200 or status in (204, 304) or method.upper() == "HEAD":
            return resp
        te = ",".join(resp.header_all("transfer-encoding")).lower()
        cls = resp.header_all("content-length")
        if "chunked" in te:
            resp.framing = "chunked"
            body = b""
            while True:
                size_line = self._read_line(deadline, "chunk size")
                try:
                    size = int(size_line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise ProtocolError("bad chunk size line %r" % size_line)
                if size == 0:
                    while self._read_line(deadline, "trailer") != b"":
                        pass
                    break
                body += self._read_exact(size, deadline, "chunk")
                if self._read_exact(2, deadline, "chunk CRLF") != b"\r\n":
                    raise ProtocolError("missing CRLF after chunk")
            resp.body = body
        elif cls:
            if len(set(cls)) != 1:
                raise ProtocolError("conflicting Content-Length headers: %r" % cls)
            try:
                n = int(cls[0])
            except ValueError:
                raise ProtocolError("bad Content-Length %r" % cls[0])
            resp.framing = "content-length"
            resp.body = self._read_exact(n, deadline, "body")
        else:
            resp.framing = "eof"
            while self._recv_more(deadline):
                pass
            resp.body = bytes(self.buf)
            self.buf.clear()
        return resp

    def read_final_response(self, method="GET", timeout=None):
        """Skip 1xx interim responses."""
        while True:
            r = self.read_response(method, timeout)
            if not (100 <= r.status < 200):
                return r

    def read_until_eof(self, timeout=3.0):
        """Read until the peer closes (EOF or RST) or the timeout passes.
        Returns (data, closed) where data includes anything already buffered
        (not parsed: after any, later responses on the connection are not
        checked)."""
        data, closed = self._read_until_eof(timeout)
        if data:
            self._forget_requests()
        return data, closed

    def _read_until_eof(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            try:
                if not self._recv_more(deadline):
                    break
            except socket.timeout:
                data = bytes(self.buf)
                self.buf.clear()
                return data, False
            if len(self.buf) > 64 << 20:
                break
        data = bytes(self.buf)
        self.buf.clear()
        return data, True

    def _pending(self):
        """Plaintext (or the end of the stream) already inside the TLS session."""
        if self.tls is not None and not self.eof:
            self._tls_decrypt()
        return bool(self.buf) or self.eof

    def wait_readable(self, timeout):
        if self._pending():
            return True
        r, _, _ = select.select([self.sock], [], [], max(0.0, timeout))
        return bool(r)

    def nothing_arrives(self, wait=0.2):
        """True if no byte (and no EOF) arrives within `wait` seconds."""
        if self.buf or (self.tls is not None and self._pending()):
            return False
        r, _, _ = select.select([self.sock], [], [], wait)
        if not r:
            return True
        return False


def pipeline_all(conn, reqs, timeout=3.0):
    """Send all requests (one sendall from a helper thread, so a server that
    stops reading cannot block us) while reading the responses as they come.
    reqs: list of (method, target). Returns (responses, error) where error is
    None or the exception that stopped the reading (e.g. a stall). A response
    that is not as the OpenAPI document says is raised (openapi_check.Mismatch)."""
    data = join_requests(build_request(m, t) for m, t in reqs)
    conn._note_sent(data)
    send_err = []

    def sender():
        try:
            conn._send(data)
        except OSError as e:
            send_err.append(e)

    th = threading.Thread(target=sender, daemon=True)
    th.start()
    out = []
    err = None
    try:
        for m, _ in reqs:
            out.append(conn.read_response(method=m, timeout=timeout))
    except (AssertionError, OSError) as e:
        err = e
    if err is not None:
        conn.close()          # unblocks the sender
    th.join(timeout)
    if isinstance(err, openapi_check.Mismatch):
        raise err
    return out, err


def closed_by_server(conn, timeout=3.0):
    """(closed, extra_bytes): whether the server closes the connection within
    timeout, and any bytes that arrived before the close."""
    data, closed = conn.read_until_eof(timeout)
    return closed, data


# ---------------------------------------------------------------------------
# Prometheus text parsing
# ---------------------------------------------------------------------------

_METRIC_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\d+)?$')
_LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?\s*')


def parse_metrics(text):
    """Returns a list of (name, labels_dict, float_value). Raises on a
    malformed sample line."""
    samples = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        m = _METRIC_RE.match(line.strip())
        if not m:
            raise AssertionError("malformed metrics line: %r" % line)
        labels = {}
        if m.group(3):
            rest = m.group(3).strip()
            pos = 0
            while pos < len(rest):
                lm = _LABEL_RE.match(rest, pos)
                if not lm:
                    raise AssertionError("malformed labels in metrics line: %r" % line)
                labels[lm.group(1)] = lm.group(2)
                pos = lm.end()
        v = m.group(4)
        value = float("inf") if v == "+Inf" else float("-inf") if v == "-Inf" else float(v)
        samples.append((m.group(1), labels, value))
    return samples


def metric_value(samples, name, **labels):
    """Sum of values of samples with that name whose labels include `labels`
    (None if no such sample)."""
    found = None
    for n, lab, v in samples:
        if n == name and all(lab.get(k) == val for k, val in labels.items()):
            found = (found or 0.0) + v
    return found


# ---------------------------------------------------------------------------
# misc
# ---------------------------------------------------------------------------

def wait_until(pred, timeout, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def children_of(pid):
    """PIDs whose parent is pid (Linux /proc)."""
    kids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        rest = st[st.rfind(")") + 2:].split()
        if len(rest) >= 2 and int(rest[1]) == pid:
            kids.append(int(d))
    return kids


def process_running(pid):
    """True if pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
    except OSError:
        return False
    state = st[st.rfind(")") + 2:].split()[0]
    return state not in ("Z", "X")


class ServerTestCase(unittest.TestCase):
    """Base class: self.start_server(...) starts a server that is stopped
    (SIGTERM, exit code 0 asserted) at the end of the test."""

    def start_server(self, env=None, args=(), cwd=None):
        s = Server(env=env, args=args, cwd=cwd)
        self.addCleanup(self._stop_server, s)
        return s

    def _stop_server(self, s):
        if s.returncode is not None:
            s.cleanup_tmp()
            return
        rc = s.stop()
        s.cleanup_tmp()
        self.assertEqual(rc, 0, "server exit code after SIGTERM: %r\nstderr tail:\n%s"
                         % (rc, "\n".join(s.err.snapshot()[-20:])))

    # -- assertions shared by the files ---------------------------------
    def assertJsonError(self, resp, status, message=None):
        self.assertEqual(resp.status, status, resp)
        ct = resp.header("content-type", "")
        self.assertEqual(ct.replace(" ", "").lower(), "application/json;charset=utf-8",
                         "error Content-Type: %r" % ct)
        self.assertIsNotNone(resp.header("content-length"), "error response lacks Content-Length")
        j = resp.json()
        self.assertIsInstance(j, dict, resp)
        self.assertEqual(j.get("status"), "fail" if status < 500 else "error", j)
        self.assertIsInstance(j.get("message"), str, j)
        self.assertTrue(j["message"], "empty error message")
        if message is not None:
            self.assertEqual(j["message"], message)
        return j

    def assertClosesAfter(self, conn, resp, timeout=3.0):
        """The response carries Connection: close and the server then closes."""
        self.assertIn("close", resp.connection_tokens(),
                      "expected 'Connection: close' on %r" % resp)
        closed, extra = closed_by_server(conn, timeout)
        self.assertEqual(extra, b"", "unexpected bytes after the response: %r" % extra[:200])
        self.assertTrue(closed, "server did not close the connection within %.1fs" % timeout)
        conn.close()  # like a real client: the server may be lingering for our FIN


class SharedServerCase(ServerTestCase):
    """Base class for tests that share one server, started for the class with ENV (its settings) and SERVER_KW
    (e.g. {"tls": True}) and stopped after the class, its exit code 0 asserted. conn() opens a connection that the
    test closes at its end."""

    ENV = None
    SERVER_KW = {}

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(env=cls.ENV, **cls.SERVER_KW)

    @classmethod
    def tearDownClass(cls):
        rc = cls.srv.stop()
        cls.srv.cleanup_tmp()
        if rc != 0:
            raise AssertionError("server exit code after SIGTERM: %r\n%s"
                                 % (rc, "\n".join(cls.srv.err.snapshot()[-20:])))

    def conn(self, **kw):
        c = self.srv.connect(**kw)
        self.addCleanup(c.close)
        return c

    def assertLimitError(self, conn, status, timeout=5.0, method="GET"):
        """Next response is a JSON error with Connection: close, then EOF."""
        r = conn.read_response(method=method, timeout=timeout)
        self.assertJsonError(r, status)
        self.assertClosesAfter(conn, r)
        return r

    def send_tolerant(self, conn, data):
        """Send; a reset/EPIPE (server already answered and closed) is fine."""
        try:
            conn.send(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            return False

    def try_health(self):
        """A fresh connection asking GET /health -> (response or None, conn): None when the server closed it
        without an answer (conn None too when a TLS connection was closed during its handshake)."""
        try:
            c = self.srv.connect()
        except TLSHandshakeError:
            return None, None
        try:
            c.send(build_request("GET", "/health"))
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            return c.read_response(timeout=3), c
        except ConnectionClosed:
            return None, c


class _CheckedResult(unittest.TextTestResult):
    """Fails a test that passed although a response it read was not as the OpenAPI document says (a Mismatch
    that the test caught itself, or that was raised in one of its threads)."""

    def startTest(self, test):
        self._mark = (len(MISMATCHES), len(self.failures) + len(self.errors))
        super().startTest(test)

    def stopTest(self, test):
        seen, bad = getattr(self, "_mark", (len(MISMATCHES), 0))
        new = MISMATCHES[seen:]
        if new and len(self.failures) + len(self.errors) == bad:
            try:
                raise openapi_check.Mismatch("%d response(s) not as the OpenAPI document says, caught by the test "
                                             "or read in another thread:\n%s" % (len(new), "\n".join(new[:5])))
            except openapi_check.Mismatch:
                self.addFailure(test, sys.exc_info())
        super().stopTest(test)


class _CheckedRunner(unittest.TextTestRunner):
    resultclass = _CheckedResult


def main():
    unittest.main(verbosity=2, testRunner=_CheckedRunner)


# ---------------------------------------------------------------------------
# Private PostgreSQL + Redis (deps/services.sh)
# ---------------------------------------------------------------------------

SERVICES_SH = os.path.join(REPO_ROOT, "deps", "services.sh")


class Services:
    """A throw-away PostgreSQL + Redis pair managed by deps/services.sh
    (SERVICES_EPHEMERAL=1) in a temp directory of its own, so a test file may
    stop and restart them without disturbing anything else. Typical use:
    setUpModule: svc = Services(); svc.start(); tearDownModule: svc.destroy()."""

    def __init__(self, prefix="staccato-svc-"):
        self.dir = tempfile.mkdtemp(prefix=prefix)
        self.database_url = None
        self.redis_url = None

    def run(self, *args, timeout=120.0, check=True, extra_env=None):
        """deps/services.sh CMD DIR [ARGS...] -> (rc, stdout, stderr); raises on a
        non-zero exit when check is true (rc None: killed at the deadline).
        extra_env: e.g. {"SERVICES_PG_STOP_MODE": "immediate"}."""
        cmd = ["bash", SERVICES_SH, args[0], self.dir] + list(args[1:])
        env = dict(os.environ, SERVICES_EPHEMERAL="1")
        env.update(extra_env or {})
        p = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        try:
            out, err = p.communicate(timeout=timeout)
            rc = p.returncode
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate(timeout=10)
            rc = None
        out, err = out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
        if check and rc != 0:
            raise AssertionError("services.sh %s failed (rc=%r):\n%s%s" % (" ".join(args), rc, out, err))
        return rc, out, err

    def env(self):
        """{'DATABASE_URL': ..., 'REDIS_URL': ...} as printed by services.sh env."""
        _, out, _ = self.run("env", timeout=30)
        d = {}
        for line in out.splitlines():
            if "=" in line:
                k, v = line.split("=", 1)
                d[k.strip()] = v.strip()
        return d

    def start(self):
        self.run("start")
        d = self.env()
        self.database_url, self.redis_url = d["DATABASE_URL"], d["REDIS_URL"]
        return self

    def db_url(self, dbname):
        """DATABASE_URL for another database of the same PostgreSQL instance."""
        return self.database_url.rsplit("/", 1)[0] + "/" + dbname

    def psql(self, sql, dbname=None, timeout=30.0, check=True):
        """Runs sql as the application role (psql -At, stops on the first
        error). Returns stdout stripped; with check=False (rc, out, err)."""
        url = self.db_url(dbname) if dbname else self.database_url
        env = dict(os.environ, PGCONNECT_TIMEOUT="5")
        for k in ("PGSERVICE", "PGOPTIONS", "PGDATABASE", "PGUSER", "PGHOST", "PGPORT"):
            env.pop(k, None)
        p = subprocess.Popen(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", url, "-c", sql],
                             env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        try:
            out, err = p.communicate(timeout=timeout)
            rc = p.returncode
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate(timeout=10)
            rc = None
        out, err = out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
        if not check:
            return rc, out, err
        if rc != 0:
            raise AssertionError("psql %r failed (rc=%r): %s" % (sql, rc, err.strip()))
        return out.strip()

    def create_database(self, name):
        self.psql('CREATE DATABASE "%s" OWNER staccato' % name)
        return self.db_url(name)

    def pg_data_dir(self):
        """The cluster's data directory (services.sh may keep it behind a symlink in /var/tmp)."""
        return os.path.join(os.path.realpath(os.path.join(self.dir, "pg")), "data")

    def postmaster_pid(self):
        """PID of this instance's postmaster (first line of its postmaster.pid), checked against the process's
        command line so that no other cluster's process is ever named; None when it does not run."""
        try:
            with open(os.path.join(self.pg_data_dir(), "postmaster.pid")) as f:
                pid = int(f.readline().strip())
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                cmdline = f.read().split(b"\0")
        except (OSError, ValueError):
            return None
        if self.pg_data_dir().encode() not in cmdline or not process_running(pid):
            return None
        return pid

    def redis_pid(self):
        """PID of this instance's redis-server (STATE_DIR/redis/redis.pid); None when it does not run."""
        try:
            with open(os.path.join(self.dir, "redis", "redis.pid")) as f:
                pid = int(f.read().strip())
            with open("/proc/%d/comm" % pid) as f:
                comm = f.read().strip()
        except (OSError, ValueError):
            return None
        return pid if comm.startswith("redis") and process_running(pid) else None

    def destroy(self):
        """Stops both services and removes every file (also those behind the
        symlinks services.sh may create in /var/tmp and /tmp)."""
        try:
            self.run("stop", timeout=90, check=False)
        finally:
            extra = []
            for link in (os.path.join(self.dir, "pg", "run"), os.path.join(self.dir, "pg")):
                if os.path.islink(link):
                    extra.append(os.path.realpath(link))
            for d in extra + [self.dir]:
                shutil.rmtree(d, ignore_errors=True)


# ---------------------------------------------------------------------------
# A tiny JSON HTTP client (one request per fresh connection)
# ---------------------------------------------------------------------------

class Headers(list):
    """Response headers as a list of (name, value) in order, with
    case-insensitive get(name) (first value) and get_all(name)."""

    def get(self, name, default=None):
        n = name.lower()
        for k, v in self:
            if k.lower() == n:
                return v
        return default

    def get_all(self, name):
        n = name.lower()
        return [v for k, v in self if k.lower() == n]


def request(port, method, path, body=None, headers=None, timeout=SOCK_TIMEOUT_S):
    """One request to 127.0.0.1:port on a fresh connection (closed afterwards).
    body: a dict or list is sent as JSON (Content-Type application/json), str or
    bytes as is, None for no body. headers: dict or list of (name, value); a
    Host header given there replaces the default. Returns (status, Headers, json)
    where json is the parsed body, or None when the body is empty or not JSON."""
    if isinstance(headers, dict):
        headers = list(headers.items())
    headers = list(headers or [])
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode("utf-8")
        if "content-type" not in {k.lower() for k, _ in headers}:
            headers.append(("Content-Type", "application/json"))
    c = Conn(port, timeout=timeout)
    try:
        r = c.request(method, path, headers=headers, body=body, timeout=timeout)
    finally:
        c.close()
    try:
        j = json.loads(r.body.decode("utf-8")) if r.body else None
    except ValueError:
        j = None
    return r.status, Headers(r.headers), j


# ---------------------------------------------------------------------------
# The module fixture: what every test of a file shares
# ---------------------------------------------------------------------------

# Environment variables that could point libpq or the Redis client elsewhere than a file's own services.
SCRUB = {k: None for k in ("PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGSERVICE", "PGOPTIONS",
                           "REDIS_HOST", "REDIS_PORT")}
SANITIZER_MARKS = ("runtime error", "AddressSanitizer", "LeakSanitizer")


def migrate(database_url, timeout=60.0):
    """`staccato migrate` against database_url; raises when it fails."""
    rc, out, err = run_cli(["migrate"], env_overrides=dict(SCRUB, DATABASE_URL=database_url), timeout=timeout)
    if rc != 0:
        raise AssertionError("staccato migrate failed (rc=%r):\n%s%s" % (rc, out, err))


class ModuleFixture:
    """The state a test file shares between its tests: its own PostgreSQL + Redis (migrated), the servers the
    tests talk to, temp directories and anything else that must go at the end. A file makes one at import and
    uses it from setUpModule; tearDownModule is its tear_down:

        FIXTURE = harness.ModuleFixture("staccato-pl-")

        def setUpModule():
            global SVC, SRV
            with FIXTURE.setting_up():
                SVC = FIXTURE.start_services()
                SRV = FIXTURE.server("main", FIXTURE.env(ACCESS_TOKEN_KEY=...))

        tearDownModule = FIXTURE.tear_down

    unittest does not call tearDownModule when setUpModule fails, so setting_up() undoes what was made so far
    (servers killed, services and directories removed) before the error propagates. tear_down() stops every
    server with SIGTERM (newest first), then runs the cleanups (newest first) and removes the services, and then
    fails when a server did not exit with 0 or, with check_sanitizers, logged a sanitizer report."""

    def __init__(self, prefix, check_sanitizers=False):
        self.prefix = prefix
        self.check_sanitizers = check_sanitizers
        self.svc = None
        self.servers = []       # (name, Server), in start order
        self._cleanups = []     # (fn, args), in registration order

    def setting_up(self):
        return _SettingUp(self)

    def start_services(self, migrate_db=True):
        """Starts the file's PostgreSQL + Redis (deps/services.sh) and applies the migrations."""
        svc = Services(prefix=self.prefix)
        self.svc = svc
        svc.start()
        if migrate_db:
            migrate(svc.database_url)
        return svc

    def env(self, **extra):
        """Server settings for the file's services (inherited libpq/Redis settings scrubbed) plus extra."""
        env = dict(SCRUB, DATABASE_URL=self.svc.database_url, REDIS_URL=self.svc.redis_url)
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def server(self, name, env, **kw):
        """A Server (harness.Server arguments) that tear_down stops; name appears in its problems."""
        s = Server(env=env, **kw)
        self.servers.append((name, s))
        return s

    def tempdir(self, prefix):
        """A temp directory removed at tear-down."""
        d = tempfile.mkdtemp(prefix=prefix)
        self.add_cleanup(shutil.rmtree, d, True)
        return d

    def add_cleanup(self, fn, *args):
        """fn(*args) at tear-down, after the servers have stopped and before the services go."""
        self._cleanups.append((fn, args))

    def _cleanup(self):
        while self._cleanups:
            fn, args = self._cleanups.pop()
            try:
                fn(*args)
            except Exception:  # noqa: B902 - a failing cleanup must not keep the others from running
                pass
        if self.svc is not None:
            self.svc.destroy()
            self.svc = None

    def abort(self):
        """Kills every server and removes everything (a setUpModule that failed)."""
        try:
            for _, s in reversed(self.servers):
                s.kill()
        finally:
            self.servers = []
            self._cleanup()

    def tear_down(self):
        problems = []
        try:
            for name, s in reversed(self.servers):
                if s.proc is None:
                    continue
                rc = s.stop()
                s.cleanup_tmp()
                if rc != 0:
                    problems.append("%s server exit code after SIGTERM: %r\nstderr tail:\n%s"
                                    % (name, rc, "\n".join(s.err.snapshot()[-30:])))
                if self.check_sanitizers:
                    bad = [ln for ln in s.err.snapshot() if any(m in ln for m in SANITIZER_MARKS)]
                    if bad:
                        problems.append("sanitizer reports (%s):\n%s" % (name, "\n".join(bad[:20])))
        finally:
            self.servers = []
            self._cleanup()
        if problems:
            raise AssertionError("\n".join(problems))


class _SettingUp:
    def __init__(self, fixture):
        self.fixture = fixture

    def __enter__(self):
        return self.fixture

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.fixture.abort()
        return False


# ---------------------------------------------------------------------------
# Accounts: register, log in, bearer headers
# ---------------------------------------------------------------------------

def bearer(token):
    """The Authorization header of an access token as a dict; {} for None (anonymous)."""
    return {} if token is None else {"Authorization": "Bearer " + token}


def register(port, username, password, fullname="Test User"):
    """POST /users; returns the new user's id or raises."""
    st, _, j = request(port, "POST", "/users", {"username": username, "password": password, "fullname": fullname})
    if st != 201:
        raise AssertionError("registering %r: %d %r" % (username, st, j))
    return j["data"]["userId"]


def login(port, username, password, cookie=False, timeout=SOCK_TIMEOUT_S):
    """POST /authentications (?cookie=1 with cookie); returns (accessToken, refreshToken) or raises."""
    path = "/authentications?cookie=1" if cookie else "/authentications"
    # A cookie login must come from the server's own origin (as a browser on the site's page says).
    headers = {"Sec-Fetch-Site": "same-origin"} if cookie else None
    st, _, j = request(port, "POST", path, {"username": username, "password": password}, headers=headers,
                       timeout=timeout)
    if st != 201:
        raise AssertionError("login of %r: %d %r" % (username, st, j))
    return j["data"]["accessToken"], j["data"]["refreshToken"]


def account(port, username, password, fullname="Test User", role="user", svc=None):
    """A registered user with the given role (set through svc's database, as only an admin could otherwise),
    logged in after the role is set so that the token carries it: {"id", "username", "token"}."""
    uid = register(port, username, password, fullname)
    if role != "user":
        svc.psql("UPDATE users SET role = '%s' WHERE id = '%s'" % (role, uid))
    access, _ = login(port, username, password)
    return {"id": uid, "username": username, "token": access}
