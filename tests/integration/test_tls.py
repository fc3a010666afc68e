#!/usr/bin/env python3
"""TLS termination (TLS_PORT, TLS_CERT, TLS_KEY, STACCATO_TLS_HANDSHAKE_TIMEOUT_MS, STACCATO_HTTPS_REDIRECT,
STACCATO_HSTS_MAX_AGE, SIGHUP reload), independent of the run's mode: every server here is started with TLS.

Real clients: Debian's `openssl s_client` (protocol, cipher, ALPN, ticket resumption, refused protocols and
ciphers, client renegotiation) and curl -k (keep-alive reuse); the rest with the harness's memory-BIO TLS client.
Hostile clients (garbage, truncated ClientHellos, a handshake trickled one byte per 200 ms) must be closed, the
slow ones within the handshake timeout, while another client keeps being served. SIGHUP with a new certificate
changes what new connections see and leaves established ones alone. Large bodies both ways are byte-exact, a
file-backed response (a song's stream: file ranges read off the loop and encrypted) too.
"""

import hashlib
import json
import os
import random
import re
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
from urllib.parse import urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import build_request, closed_by_server, metric_value  # noqa: E402

OPENSSL = shutil.which("openssl")
CURL = shutil.which("curl")
TMP = None          # certificates of this file
CERTS = {}          # name -> (cert, key): "a" (CN staccato-a) and "b" (CN staccato-b) on P-256, "p384", "rsa"
HEALTH_BODY = {"status": "success", "data": {"status": "ok"}}
AEAD_ECDHE = re.compile(r"^ECDHE-(ECDSA|RSA)-(AES(128|256)-GCM-SHA(256|384)|CHACHA20-POLY1305)$")
_SCRUB = harness.SCRUB
FIXTURE = harness.ModuleFixture("staccato-tls-")


def setUpModule():
    global TMP
    with FIXTURE.setting_up():
        TMP = FIXTURE.tempdir("staccato-tls-test-")
        for name in ("a", "b"):
            CERTS[name] = harness.make_certificate(TMP, cn="staccato-" + name, name=name)
        CERTS["p384"] = harness.make_certificate(TMP, cn="staccato-p384", name="p384", key_type="P-384")
        CERTS["rsa"] = harness.make_certificate(TMP, cn="staccato-rsa", name="rsa", key_type="rsa")


tearDownModule = FIXTURE.tear_down


def der(cert_path):
    with open(cert_path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def s_client(port, *args, stdin=b"", timeout=15):
    """openssl s_client against 127.0.0.1:port; returns (rc, stdout + stderr)."""
    p = subprocess.run([OPENSSL, "s_client", "-connect", "127.0.0.1:%d" % port] + list(args), input=stdin,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace")


def client_hello():
    """The bytes of a real TLS 1.2 ClientHello (Python's ssl, as a browser-like client would send)."""
    ctx = harness.client_context()
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    inb, outb = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inb, outb, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outb.read()


def raw_socket(port, timeout=5.0):
    s = socket.create_connection((harness.LOOPBACK, port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def wait_closed(s, timeout):
    """Reads (and drops) what the server sends until it closes; returns the seconds that took, or None when the
    connection is still open after timeout."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        r, _, _ = select.select([s], [], [], left)
        if not r:
            return None
        try:
            if not s.recv(65536):
                return time.monotonic() - t0
        except (ConnectionResetError, BrokenPipeError):
            return time.monotonic() - t0


def workers_listening(pids, port):
    """Whether every process in pids holds a socket listening on TCP port (workers listen a moment after the
    supervisor has forked them)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().split("\n")[1:]
        except OSError:
            continue
        for row in rows:
            col = row.split()
            if len(col) > 9 and col[3] == "0A" and int(col[1].rsplit(":", 1)[1], 16) == port:
                inodes.add("socket:[%s]" % col[9])

    def holds(pid):
        try:
            return any(os.readlink("/proc/%d/fd/%s" % (pid, fd)) in inodes for fd in os.listdir("/proc/%d/fd" % pid))
        except OSError:
            return False
    return bool(pids) and all(holds(p) for p in pids)


def require_tools(*tools):
    missing = [t for t in tools if shutil.which(t) is None]
    return unittest.skipIf(missing, "needs %s" % ", ".join(missing))


class Prober(threading.Thread):
    """Another client while something hostile goes on: GET /health on a keep-alive TLS connection opened before,
    and on a fresh TLS connection, every `interval` seconds until finish()."""

    def __init__(self, srv, interval=0.05):
        super().__init__(daemon=True)
        self.srv = srv
        self.interval = interval
        self.keep = srv.connect()
        self.stopping = threading.Event()
        self.failures = []
        self.rounds = 0
        self.slowest = 0.0

    def run(self):
        try:
            while not self.stopping.is_set():
                t0 = time.monotonic()
                try:
                    r = self.keep.request("GET", "/health")
                    if r.status != 200:
                        self.failures.append("keep-alive: %r" % r)
                    r = self.srv.get("/health")
                    if r.status != 200:
                        self.failures.append("fresh connection: %r" % r)
                except Exception as e:  # noqa: BLE001 - every failure is reported by finish()
                    self.failures.append("%s: %s" % (type(e).__name__, e))
                    try:
                        self.keep.close()
                        self.keep = self.srv.connect()
                    except Exception as e2:  # noqa: BLE001
                        self.failures.append("reconnect: %s" % e2)
                self.slowest = max(self.slowest, time.monotonic() - t0)
                self.rounds += 1
                self.stopping.wait(self.interval)
        finally:
            self.keep.close()

    def finish(self, tc, min_rounds=5, max_latency=2.0):
        harness.wait_until(lambda: self.rounds >= min_rounds or not self.is_alive(), 10)
        self.stopping.set()
        self.join(10)
        tc.assertEqual(self.failures[:5], [], "the other client's requests failed meanwhile")
        tc.assertGreaterEqual(self.rounds, min_rounds, "the other client got too few rounds in")
        tc.assertLess(self.slowest, max_latency, "the other client waited %.2fs for an answer" % self.slowest)


class SharedServer(harness.SharedServerCase):
    ENV = {}

    SERVER_KW = {"tls": True}

    def metric(self, name):
        return metric_value(self.srv.metrics(), name)


# ---------------------------------------------------------------------------
# protocol, ciphers, ALPN, resumption
# ---------------------------------------------------------------------------

class Handshake(SharedServer):
    def test_listening_line_and_both_ports(self):
        self.assertTrue(any(harness.LISTEN_TLS_RE.search(ln) for ln in self.srv.stderr_lines()))
        self.assertNotEqual(self.srv.tls_port, self.srv.http_port)
        p = harness.Conn(self.srv.http_port, tls=False)
        self.addCleanup(p.close)
        self.assertEqual(p.request("GET", "/health").json(), HEALTH_BODY, "plaintext port")
        c = self.conn()
        self.assertEqual(c.request("GET", "/health").json(), HEALTH_BODY, "TLS port")

    def test_python_client_protocol_cipher_alpn(self):
        c = self.conn()
        self.assertEqual(c.tls.version(), "TLSv1.2")
        self.assertRegex(c.tls.cipher()[0], AEAD_ECDHE)
        self.assertEqual(c.tls.selected_alpn_protocol(), "http/1.1")
        self.assertEqual(c.peer_certificate(), der(harness.test_certificate()[0]))

    @require_tools("openssl")
    def test_openssl_protocol_cipher_alpn(self):
        req = build_request("GET", "/health", [("Connection", "close")])
        rc, out = s_client(self.srv.tls_port, "-alpn", "http/1.1", "-ign_eof", stdin=req)
        self.assertEqual(rc, 0, out)
        self.assertRegex(out, r"(?m)^\s*Protocol\s*:\s*TLSv1\.2\s*$")
        m = re.search(r"(?m)^New, TLSv1\.2, Cipher is (\S+)$", out)
        self.assertIsNotNone(m, out)
        self.assertRegex(m.group(1), AEAD_ECDHE)
        self.assertRegex(out, r"(?m)^ALPN protocol: http/1\.1$")
        self.assertIn("HTTP/1.1 200 OK", out)
        self.assertIn(json.dumps(HEALTH_BODY, separators=(",", ":")), out)

    @require_tools("openssl")
    def test_openssl_every_offered_suite(self):
        for suite in ("ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
                      "ECDHE-ECDSA-CHACHA20-POLY1305"):
            rc, out = s_client(self.srv.tls_port, "-tls1_2", "-cipher", suite, "-ign_eof",
                               stdin=build_request("GET", "/health", [("Connection", "close")]))
            self.assertEqual(rc, 0, "%s:\n%s" % (suite, out))
            self.assertIn("New, TLSv1.2, Cipher is %s" % suite, out)
            self.assertIn("HTTP/1.1 200 OK", out, suite)

    @require_tools("openssl")
    def test_max_fragment_length_is_respected(self):
        # A client that asks for records of at most 512 bytes (RFC 6066) gets no larger ones, whoever seals them
        # (Nettle for AES-GCM, mbedTLS for ChaCha20): OpenSSL refuses a record beyond the negotiated length. The
        # echoed body spans many records.
        blob = "x" * 6000
        body = json.dumps({"blob": blob}).encode()
        req = build_request("POST", "/_debug/echo", [("Content-Type", "application/json"), ("Connection", "close")],
                            body)
        for suite in ("ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
                      "ECDHE-ECDSA-CHACHA20-POLY1305"):
            rc, out = s_client(self.srv.tls_port, "-tls1_2", "-cipher", suite, "-maxfraglen", "512", "-ign_eof",
                               stdin=req)
            self.assertEqual(rc, 0, "%s:\n%s" % (suite, out[-2000:]))
            self.assertIn("HTTP/1.1 200 OK", out, suite)
            self.assertIn(blob, out, suite)

    @require_tools("openssl")
    def test_openssl_ticket_resumption(self):
        sess = os.path.join(TMP, "session-%d.pem" % os.getpid())
        self.addCleanup(lambda: os.path.exists(sess) and os.remove(sess))
        rc, out = s_client(self.srv.tls_port, "-sess_out", sess)
        self.assertEqual(rc, 0, out)
        self.assertRegex(out, r"(?m)^New, TLSv1\.2, ")
        self.assertIn("TLS session ticket lifetime hint", out, "no session ticket issued:\n" + out)
        rc, out = s_client(self.srv.tls_port, "-sess_in", sess, "-ign_eof",
                           stdin=build_request("GET", "/health", [("Connection", "close")]))
        self.assertEqual(rc, 0, out)
        self.assertRegex(out, r"(?m)^Reused, TLSv1\.2, Cipher is ", "session not resumed:\n" + out)
        self.assertIn("HTTP/1.1 200 OK", out)
        # Resumption is by ticket (the server keeps no session cache): without one there is nothing to resume.
        rc, out = s_client(self.srv.tls_port, "-no_ticket", "-sess_out", sess)
        self.assertEqual(rc, 0, out)
        rc, out = s_client(self.srv.tls_port, "-no_ticket", "-sess_in", sess)
        self.assertEqual(rc, 0, out)
        self.assertRegex(out, r"(?m)^New, TLSv1\.2, ", "resumed without a ticket:\n" + out)

    @require_tools("openssl")
    def test_public_key_steps_run_off_the_loop(self):
        # A full handshake has two steps with public-key work (server key exchange, client key exchange); both run
        # on the threadpool. A resumed one has none.
        sess = os.path.join(TMP, "session-off-%d.pem" % os.getpid())
        self.addCleanup(lambda: os.path.exists(sess) and os.remove(sess))

        def counts():  # read over plaintext, which makes no handshake of its own
            c = harness.Conn(self.srv.port, tls=False)
            try:
                m = harness.parse_metrics(c.request("GET", "/metrics").text())
            finally:
                c.close()
            return (metric_value(m, "staccato_tls_handshakes_total"),
                    metric_value(m, "staccato_tls_handshake_offloads_total"))

        hs0, off0 = counts()
        rc, out = s_client(self.srv.tls_port, "-sess_out", sess, "-ign_eof",
                           stdin=build_request("GET", "/health", [("Connection", "close")]))
        self.assertEqual(rc, 0, out)
        self.assertIn("HTTP/1.1 200 OK", out)
        hs1, off1 = counts()
        self.assertEqual((hs1 - hs0, off1 - off0), (1, 2))
        rc, out = s_client(self.srv.tls_port, "-sess_in", sess, "-ign_eof",
                           stdin=build_request("GET", "/health", [("Connection", "close")]))
        self.assertRegex(out, r"(?m)^Reused, TLSv1\.2, ", out)
        self.assertIn("HTTP/1.1 200 OK", out)
        hs2, off2 = counts()
        self.assertEqual((hs2 - hs1, off2 - off1), (1, 0))

    def test_python_ticket_resumption(self):
        first = self.conn()
        self.assertEqual(first.request("GET", "/health").status, 200)
        self.assertFalse(first.tls.session_reused)
        session = first.tls.session
        self.assertTrue(session.has_ticket, "no session ticket issued")
        for _ in range(3):
            again = self.conn(session=session)
            self.assertTrue(again.tls.session_reused, "session not resumed")
            self.assertEqual(again.request("GET", "/health").json(), HEALTH_BODY)

    @require_tools("openssl")
    def test_old_protocols_refused(self):
        for flag in ("-tls1", "-tls1_1"):
            rc, out = s_client(self.srv.tls_port, flag, "-cipher", "DEFAULT:@SECLEVEL=0")
            self.assertNotEqual(rc, 0, "%s accepted:\n%s" % (flag, out))
            # the server's refusal, not the client declining to offer the protocol
            self.assertIn("alert protocol version", out, flag)
            self.assertNotRegex(out, r"Cipher is (?!\(NONE\))", flag)

    @require_tools("openssl")
    def test_tls13_only_client_refused(self):
        rc, out = s_client(self.srv.tls_port, "-tls1_3")
        self.assertNotEqual(rc, 0, out)
        self.assertRegex(out, r"alert (handshake failure|protocol version)")

    @require_tools("openssl")
    def test_non_aead_and_non_ecdhe_ciphers_refused(self):
        for suite in ("AES128-SHA", "AES128-GCM-SHA256", "AES256-SHA256", "ECDHE-ECDSA-AES128-SHA",
                      "ECDHE-ECDSA-AES128-SHA256", "ECDHE-RSA-AES128-SHA", "DHE-RSA-AES128-GCM-SHA256"):
            rc, out = s_client(self.srv.tls_port, "-tls1_2", "-cipher", suite + ":@SECLEVEL=0")
            self.assertNotEqual(rc, 0, "%s accepted:\n%s" % (suite, out))
            self.assertIn("alert handshake failure", out, "%s: not refused by the server:\n%s" % (suite, out))

    def test_alpn_variants(self):
        # h2 is not spoken: a client offering both gets http/1.1, one without ALPN gets a session all the same
        c = self.conn(context=harness.client_context(alpn=("h2", "http/1.1")))
        self.assertEqual(c.tls.selected_alpn_protocol(), "http/1.1")
        self.assertEqual(c.request("GET", "/health").status, 200)
        c = self.conn(context=harness.client_context(alpn=None))
        self.assertIsNone(c.tls.selected_alpn_protocol())
        self.assertEqual(c.request("GET", "/health").status, 200)
        # only h2: no protocol in common (RFC 7301: no_application_protocol), or a session without ALPN
        try:
            c = self.conn(context=harness.client_context(alpn=("h2",)))
        except harness.TLSHandshakeError:
            pass
        else:
            self.assertNotEqual(c.tls.selected_alpn_protocol(), "h2")

    @require_tools("openssl")
    def test_client_renegotiation_refused(self):
        # "R" makes s_client renegotiate; the server must refuse, and stay fine.
        p = subprocess.Popen([OPENSSL, "s_client", "-connect", "127.0.0.1:%d" % self.srv.tls_port, "-tls1_2"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            time.sleep(0.5)
            p.stdin.write(b"R\n")
            p.stdin.flush()
            time.sleep(0.5)
            out, _ = p.communicate(input=build_request("GET", "/health", [("Connection", "close")]), timeout=10)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        out = out.decode("utf-8", "replace")
        self.assertIn("RENEGOTIATING", out)
        self.assertNotIn("HTTP/1.1 200", out, "the connection went on after a renegotiation:\n" + out[-1500:])
        self.assertEqual(self.conn().request("GET", "/health").status, 200)

    @require_tools("curl")
    def test_curl_health_with_keepalive_reuse(self):
        before = self.metric("staccato_http_connections_accepted_total")
        url = "https://127.0.0.1:%d/health" % self.srv.tls_port
        p = subprocess.run([CURL, "-sS", "-k", "-v", "--http1.1", "--max-time", "10", url, url],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
        err = p.stderr.decode("utf-8", "replace")
        self.assertEqual(p.returncode, 0, err)
        body = json.dumps(HEALTH_BODY, separators=(",", ":")).encode()
        self.assertEqual(p.stdout, body * 2)
        self.assertRegex(err, r"SSL connection using TLSv1\.2 / ECDHE-")
        self.assertRegex(err, r"ALPN[:,] server accepted (to use )?http/1\.1")
        self.assertEqual(err.count("< HTTP/1.1 200"), 2, err)
        self.assertRegex(err, r"Re-using existing connection", "curl opened a second connection:\n" + err)
        after = self.metric("staccato_http_connections_accepted_total")
        # curl's connection plus the one reading /metrics
        self.assertEqual(after - before, 2, "connections accepted for two curl requests")

    def test_keepalive_many_requests_and_pipelining(self):
        c = self.conn()
        for i in range(50):
            self.assertEqual(c.request("GET", "/health").status, 200, i)
        rs, err = harness.pipeline_all(c, [("GET", "/health"), ("HEAD", "/health"), ("GET", "/metrics")] * 300)
        self.assertIsNone(err, err)
        self.assertEqual(len(rs), 900)

    def test_close_notify_both_ways(self):
        # the server ends a connection it closes with a close_notify before its FIN
        c = self.conn()
        r = c.request("GET", "/health", [("Connection", "close")])
        self.assertEqual(r.status, 200)
        closed, extra = closed_by_server(c, 3)
        self.assertTrue(closed)
        self.assertEqual(extra, b"")
        self.assertTrue(c.close_notify_received, "server closed without a close_notify (a truncation)")
        # a client's close_notify ends the connection
        c = self.conn()
        self.assertEqual(c.request("GET", "/health").status, 200)
        c.close_notify()
        closed, extra = closed_by_server(c, 3)
        self.assertTrue(closed, "server kept the connection after the client's close_notify")
        self.assertEqual(extra, b"")

    def test_close_notify_when_idle_connections_are_closed(self):
        """RFC 5246 7.2.1: a close_notify before closing the write side, also when the server ends an idle
        keep-alive connection (timeout) or closes idle connections on shutdown (OpenSSL 3 clients report an EOF
        without it as an error: "unexpected eof while reading").

        Regression: idle keep-alive timeouts and the shutdown closed TLS connections without a close_notify."""
        srv = harness.Server(tls=True, env={"STACCATO_KEEPALIVE_TIMEOUT_MS": "300"})
        self.addCleanup(self._stop_server, srv)
        c = srv.connect()
        self.addCleanup(c.close)
        self.assertEqual(c.request("GET", "/health").status, 200)
        closed, _ = closed_by_server(c, 3)
        self.assertTrue(closed)
        self.assertTrue(c.close_notify_received, "idle keep-alive connection closed without a close_notify")
        c = srv.connect()
        self.addCleanup(c.close)
        self.assertEqual(c.request("GET", "/health").status, 200)
        srv.send_signal(signal.SIGTERM)
        closed, _ = closed_by_server(c, 3)
        self.assertTrue(closed)
        self.assertTrue(c.close_notify_received, "idle connection closed on shutdown without a close_notify")
        self.assertEqual(srv.wait(10), 0, "exit code after SIGTERM")

    def test_http_on_tls_port_and_tls_on_http_port(self):
        s = raw_socket(self.srv.tls_port)
        self.addCleanup(s.close)
        s.sendall(build_request("GET", "/health"))
        self.assertIsNotNone(wait_closed(s, 3), "plaintext HTTP on the TLS port: not closed")
        # a ClientHello on the plaintext port is a malformed request there
        s = raw_socket(self.srv.http_port)
        self.addCleanup(s.close)
        s.sendall(client_hello())
        self.assertIsNotNone(wait_closed(s, 3), "ClientHello on the plaintext port: not closed")
        self.assertEqual(self.conn().request("GET", "/health").status, 200)


# ---------------------------------------------------------------------------
# hostile clients
# ---------------------------------------------------------------------------

class HostileClients(SharedServer):
    TIMEOUT_MS = 1000
    ENV = {"STACCATO_TLS_HANDSHAKE_TIMEOUT_MS": str(TIMEOUT_MS), "STACCATO_KEEPALIVE_TIMEOUT_MS": "10000"}

    def open_connections(self):
        return self.metric("staccato_http_open_connections")

    def assertNoLeftovers(self):
        # only the connection reading the gauge is left (the closes may take a moment to be seen)
        ok = harness.wait_until(lambda: self.open_connections() == 1, 5, 0.1)
        self.assertTrue(ok, "connections left open: %r" % self.open_connections())

    def test_warning_alert_flood_is_read_in_turns(self):
        """Regression: a client sending nothing but warning alerts kept the loop reading its socket while the
        other clients waited."""
        # mbedTLS skips warning alerts while it waits for a handshake message. A client that sends its key exchange
        # and then nothing but warning alerts, as fast as it can, gets a bounded read per wake-up of the loop: the
        # other clients are answered meanwhile.
        s = raw_socket(self.srv.tls_port, timeout=10)
        self.addCleanup(s.close)
        s.sendall(client_hello())
        got = b""
        deadline = time.monotonic() + 10
        while b"\x0e\x00\x00\x00" not in got and time.monotonic() < deadline:  # ServerHelloDone
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        self.assertIn(b"\x0e\x00\x00\x00", got, "no server flight")
        # ClientKeyExchange: an X25519 public key (the base point), then warning alerts (user_canceled) only.
        s.sendall(bytes([0x16, 3, 3, 0, 0x25, 0x10, 0, 0, 0x21, 0x20, 9]) + bytes(31))
        alerts = bytes([0x15, 3, 3, 0, 2, 1, 0x5a]) * 20000
        stop = threading.Event()

        def flood():
            try:
                while not stop.is_set():
                    s.sendall(alerts)
            except OSError:
                pass
        t = threading.Thread(target=flood, daemon=True)
        t.start()
        self.addCleanup(t.join, 10)
        self.addCleanup(stop.set)
        time.sleep(0.2)
        prober = Prober(self.srv)
        prober.start()
        prober.finish(self, min_rounds=10, max_latency=2.0)

    def test_garbage_closed_at_once(self):
        prober = Prober(self.srv)
        prober.start()
        rnd = random.Random(1)
        hello = client_hello()
        cases = [
            ("random bytes", bytes(rnd.getrandbits(8) for _ in range(300))),
            ("plaintext HTTP", build_request("GET", "/health")),
            ("record too long", b"\x16\x03\x01\xff\xff" + b"\x01" * 200),
            ("not a handshake record", b"\x17\x03\x03\x00\x20" + b"\x00" * 32),
            ("SSLv2-style hello", b"\x80\x2e\x01\x00\x02\x00\x15" + b"\x00" * 44),
            ("ClientHello with a mangled body", hello[:9] + bytes(b ^ 0x5a for b in hello[9:])),
            ("ClientHello twice", hello + hello + b"\x00" * 64),
            ("zeros", b"\x00" * 4096),
        ]
        for what, data in cases * 3:
            s = raw_socket(self.srv.tls_port)
            try:
                s.sendall(data)
                took = wait_closed(s, 3)
            finally:
                s.close()
            self.assertIsNotNone(took, "%s: connection not closed" % what)
            self.assertLess(took, self.TIMEOUT_MS / 1000.0 * 0.8,
                            "%s: closed only after %.2fs, by the handshake timeout" % (what, took))
        prober.finish(self)
        self.assertNoLeftovers()

    def test_truncated_client_hello(self):
        prober = Prober(self.srv)
        prober.start()
        hello = client_hello()
        for cut in (1, 5, 6, len(hello) // 2, len(hello) - 1):
            # ... then end of input: closed at once
            s = raw_socket(self.srv.tls_port)
            try:
                s.sendall(hello[:cut])
                s.shutdown(socket.SHUT_WR)
                took = wait_closed(s, 3)
            finally:
                s.close()
            self.assertIsNotNone(took, "ClientHello cut at %d, then FIN: not closed" % cut)
            self.assertLess(took, 0.5, "ClientHello cut at %d, then FIN" % cut)
        # ... then silence: closed at the handshake timeout
        socks = []
        try:
            for cut in (1, len(hello) // 2, len(hello) - 1):
                s = raw_socket(self.srv.tls_port)
                socks.append(s)
                s.sendall(hello[:cut])
            t0 = time.monotonic()
            for s in socks:
                took = wait_closed(s, 5)
                self.assertIsNotNone(took, "a stalled truncated ClientHello was never closed")
            took = time.monotonic() - t0
            self.assertLess(took, self.TIMEOUT_MS / 1000.0 + 1.0, "stalled handshakes closed after %.2fs" % took)
        finally:
            for s in socks:
                s.close()
        prober.finish(self)
        self.assertNoLeftovers()

    def test_slow_handshake_closed_within_timeout(self):
        """One byte of a real ClientHello every 200 ms (each gap well under the timeout): the timeout runs from
        the accept, so the handshake is cut off after STACCATO_TLS_HANDSHAKE_TIMEOUT_MS (1000 ms)."""
        prober = Prober(self.srv)
        prober.start()
        hello = client_hello()
        results = [None] * 6

        def trickle(i):
            s = raw_socket(self.srv.tls_port)
            t0 = time.monotonic()
            try:
                for b in hello:
                    try:
                        s.send(bytes([b]))
                    except (BrokenPipeError, ConnectionResetError):
                        break
                    r, _, _ = select.select([s], [], [], 0.2)
                    if r:
                        try:
                            if not s.recv(4096):
                                break
                        except ConnectionResetError:
                            break
                    if time.monotonic() - t0 > 10:
                        return
                results[i] = time.monotonic() - t0
            finally:
                s.close()

        threads = [threading.Thread(target=trickle, args=(i,), daemon=True) for i in range(len(results))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(15)
        prober.finish(self)
        limit = self.TIMEOUT_MS / 1000.0
        for i, took in enumerate(results):
            self.assertIsNotNone(took, "trickled handshake %d still open after 10 s" % i)
            self.assertGreaterEqual(took, limit * 0.8, "trickled handshake %d closed early (%.2fs)" % (i, took))
            self.assertLess(took, limit + 1.0, "trickled handshake %d closed after %.2fs" % (i, took))
        self.assertNoLeftovers()

    def test_handshake_timeout_ends_with_the_handshake(self):
        # an established session idles past the handshake timeout: the keep-alive timeout applies instead
        c = self.conn()
        time.sleep(self.TIMEOUT_MS / 1000.0 + 0.5)
        self.assertEqual(c.request("GET", "/health").status, 200)
        # and a handshake that completes slowly but in time is fine: the ClientHello in two parts 600 ms apart
        s = raw_socket(self.srv.tls_port)
        self.addCleanup(s.close)
        inb, outb = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = harness.client_context().wrap_bio(inb, outb, server_hostname="localhost")
        done = False
        try:
            obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        hello = outb.read()
        s.sendall(hello[:20])
        time.sleep(self.TIMEOUT_MS / 1000.0 * 0.6)
        s.sendall(hello[20:])
        deadline = time.monotonic() + 5
        while not done and time.monotonic() < deadline:
            data = s.recv(65536)
            self.assertTrue(data, "closed during a handshake that was in time")
            inb.write(data)
            try:
                obj.do_handshake()
                done = True
            except ssl.SSLWantReadError:
                pass
            s.sendall(outb.read())
        self.assertTrue(done)
        obj.write(build_request("GET", "/health", [("Connection", "close")]))
        s.sendall(outb.read())
        got = b""
        while True:
            data = s.recv(65536)
            if not data:
                break
            inb.write(data)
            try:
                while True:
                    chunk = obj.read(65536)
                    if not chunk:
                        break
                    got += chunk
            except (ssl.SSLWantReadError, ssl.SSLZeroReturnError):
                pass
        self.assertTrue(got.startswith(b"HTTP/1.1 200 "), got[:100])

    def test_many_failed_handshakes_then_service_as_usual(self):
        hello = client_hello()
        for i in range(100):
            s = raw_socket(self.srv.tls_port)
            try:
                s.sendall(hello[:i % len(hello)] if i % 2 else os.urandom(64))
                s.shutdown(socket.SHUT_WR)
                self.assertIsNotNone(wait_closed(s, 3), "attempt %d not closed" % i)
            finally:
                s.close()
        c = self.conn()
        self.assertEqual(c.request("GET", "/health").status, 200)
        c.close()
        self.assertNoLeftovers()


# ---------------------------------------------------------------------------
# SIGHUP reload, startup checks
# ---------------------------------------------------------------------------

class Reload(harness.ServerTestCase):
    def files(self, name):
        """A private copy of certificate `name` at the paths the server is given (so that they can be
        replaced as a renewal would)."""
        d = tempfile.mkdtemp(prefix="staccato-tls-reload-", dir=TMP)
        cert, key = os.path.join(d, "tls.crt"), os.path.join(d, "tls.key")
        shutil.copy(CERTS[name][0], cert)
        shutil.copy(CERTS[name][1], key)
        return cert, key

    @staticmethod
    def replace(src, dst):
        tmp = dst + ".new"
        shutil.copy(src, tmp)
        os.replace(tmp, dst)

    def start(self, cert, key, **kw):
        env = {"TLS_CERT": cert, "TLS_KEY": key}
        env.update(kw.pop("env", {}))
        srv = harness.Server(tls=True, env=env, **kw)
        self.addCleanup(self._stop_server, srv)
        return srv

    def hup(self, srv, expect):
        n = len([ln for ln in srv.stderr_lines() if "SIGHUP" in ln])
        srv.send_signal(signal.SIGHUP)
        line = srv.err.wait_for(lambda ln: "SIGHUP" in ln and expect in ln
                                and len([x for x in srv.err.snapshot() if "SIGHUP" in x]) > n, 5)
        self.assertIsNotNone(line, "no SIGHUP log line with %r:\n%s" % (expect, "\n".join(srv.stderr_lines()[-10:])))
        return line

    def test_sighup_rotates_ticket_keys(self):
        """Regression: ticket keys lived about 48 h and a reload kept them. A reload (even with the same
        certificate) makes new keys: a ticket issued before it no longer resumes, one issued after it does."""
        cert, key = self.files("a")
        srv = self.start(cert, key)
        first = srv.connect()
        self.addCleanup(first.close)
        self.assertEqual(first.request("GET", "/health").status, 200)
        session = first.tls.session
        again = srv.connect(session=session)
        self.addCleanup(again.close)
        self.assertTrue(again.tls.session_reused, "the ticket does not resume before the reload")
        self.hup(srv, "reloaded")
        after = srv.connect(session=session)
        self.addCleanup(after.close)
        self.assertEqual(after.request("GET", "/health").status, 200)
        self.assertFalse(after.tls.session_reused, "a ticket from before the reload still resumes")
        fresh = after.tls.session
        resumed = srv.connect(session=fresh)
        self.addCleanup(resumed.close)
        self.assertTrue(resumed.tls.session_reused, "a ticket issued after the reload does not resume")

    def test_sighup_new_certificate_for_new_connections(self):
        cert, key = self.files("a")
        srv = self.start(cert, key)
        old = srv.connect()
        self.addCleanup(old.close)
        self.assertEqual(old.request("GET", "/health").status, 200)   # the loop runs: SIGHUP is handled
        self.assertEqual(old.peer_certificate(), der(CERTS["a"][0]))
        session = old.tls.session

        self.replace(CERTS["b"][1], key)
        self.replace(CERTS["b"][0], cert)
        self.hup(srv, "reloaded")

        new = srv.connect()
        self.addCleanup(new.close)
        self.assertEqual(new.peer_certificate(), der(CERTS["b"][0]), "new connection got the old certificate")
        self.assertEqual(new.request("GET", "/health").status, 200)
        if OPENSSL:
            rc, out = s_client(srv.tls_port)
            self.assertEqual(rc, 0, out)
            self.assertRegex(out, r"subject=\s*CN\s*=\s*staccato-b", out)
        # the connection opened before keeps working on its session
        for _ in range(5):
            r = old.request("GET", "/health")
            self.assertEqual(r.json(), HEALTH_BODY)
        self.assertEqual(old.peer_certificate(), der(CERTS["a"][0]))
        big = os.urandom(200_000).hex()
        r = old.request("POST", "/_debug/echo", [("Content-Type", "application/json")], json.dumps(big))
        self.assertEqual(r.json()["data"]["json"], big)
        # a ticket issued before the reload no longer resumes (each configuration has its own ticket keys): a
        # full handshake with the new certificate follows and the client is served
        c = srv.connect(session=session)
        self.addCleanup(c.close)
        self.assertEqual(c.request("GET", "/health").status, 200)
        # and back again
        self.replace(CERTS["a"][1], key)
        self.replace(CERTS["a"][0], cert)
        self.hup(srv, "reloaded")
        c = srv.connect()
        self.addCleanup(c.close)
        self.assertEqual(c.peer_certificate(), der(CERTS["a"][0]))

    def test_sighup_with_broken_files_keeps_the_certificate(self):
        cert, key = self.files("a")
        srv = self.start(cert, key)
        self.assertEqual(srv.get("/health").status, 200)
        with open(cert, "w") as f:
            f.write("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
        self.hup(srv, "keeping the current certificate")
        os.remove(key)
        self.hup(srv, "keeping the current certificate")
        self.assertTrue(srv.alive())
        c = srv.connect()
        self.addCleanup(c.close)
        self.assertEqual(c.peer_certificate(), der(CERTS["a"][0]))
        self.assertEqual(c.request("GET", "/health").status, 200)

    def test_sighup_with_a_key_of_another_certificate_keeps_the_certificate(self):
        """A renewal caught half-way (new certificate, old key) must not be loaded: every handshake would
        fail with it."""
        cert, key = self.files("a")
        srv = self.start(cert, key)
        self.assertEqual(srv.get("/health").status, 200)
        self.replace(CERTS["b"][0], cert)           # the key stays a's
        srv.send_signal(signal.SIGHUP)
        srv.err.wait_for(lambda ln: "SIGHUP" in ln, 5)
        try:
            c = srv.connect()
        except harness.TLSHandshakeError as e:
            self.fail("after SIGHUP with a certificate and a key that do not match, handshakes fail (%s); "
                      "the server should have kept the previous pair. Log:\n%s"
                      % (e, "\n".join(srv.stderr_lines()[-3:])))
        self.addCleanup(c.close)
        self.assertEqual(c.peer_certificate(), der(CERTS["a"][0]))

    def test_sighup_reaches_workers(self):
        """With --workers 2 the signal goes to the supervisor, which must hand it to the workers (and live)."""
        cert, key = self.files("a")
        srv, kids = self.start_workers(cert, key)
        for _ in range(10):
            self.assertEqual(srv.get("/health").status, 200)
        self.replace(CERTS["b"][1], key)
        self.replace(CERTS["b"][0], cert)
        srv.send_signal(signal.SIGHUP)
        time.sleep(1.0)
        self.assertTrue(srv.alive(), "the supervisor died of SIGHUP (rc %r); workers left: %r"
                        % (srv.proc.poll(), [k for k in kids if harness.process_running(k)]))
        seen = set()
        for _ in range(20):
            c = srv.connect()
            seen.add(c.peer_certificate())
            c.close()
        self.assertEqual(seen, {der(CERTS["b"][0])}, "some worker still serves the old certificate")

    @require_tools("openssl")
    def test_workers_do_not_share_random_state(self):
        # Workers are forked from the process that set TLS up. Each reseeds the random generator: were its state
        # shared, the n-th handshake of every worker would carry the same server random (and the same ECDHE key
        # and ticket nonce). Connections spread over the workers by SO_REUSEPORT.
        srv, _ = self.start_workers(*CERTS["a"])
        randoms = []
        for _ in range(16):
            rc, out = s_client(srv.tls_port, "-msg", "-tls1_2")
            self.assertEqual(rc, 0, out)
            m = re.search(r"Handshake \[length [0-9a-f]+\], ServerHello\n((?:[ \t]+(?:[0-9a-f]{2} ?)+\n)+)", out)
            self.assertIsNotNone(m, out)
            msg = m.group(1).split()
            self.assertEqual(msg[0], "02", out)  # ServerHello: type, length (3), version (2), random (32)
            randoms.append("".join(msg[10:38]))  # the random's 28 bytes after its time
        self.assertEqual(len(set(randoms)), len(randoms), "server randoms repeat:\n" + "\n".join(randoms))

    def start_workers(self, cert, key):
        """A server with two workers, once both listen; returns it and the workers' pids."""
        # Registered before the server's own stop, so it runs after it: only workers left behind are killed.
        left = []
        self.addCleanup(lambda: [self._reap(k) for k in left])
        srv = self.start(cert, key, args=["--workers", "2"])
        kids = harness.wait_until(lambda: len(harness.children_of(srv.pid())) >= 2 and
                                  harness.children_of(srv.pid()), 5) or []
        left.extend(kids)
        self.assertEqual(len(kids), 2, kids)
        self.assertTrue(harness.wait_until(lambda: workers_listening(kids, srv.tls_port), 10),
                        "the workers do not listen")
        return srv, kids

    @staticmethod
    def _reap(pid):
        if harness.process_running(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass

    def test_sighup_without_tls_does_not_stop_the_server(self):
        srv = harness.Server(tls=False)
        self.addCleanup(self._stop_server, srv)
        self.assertEqual(srv.get("/health").status, 200)
        srv.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        self.assertTrue(srv.alive(), "a server without TLS died of SIGHUP (rc %r)" % srv.proc.poll())
        self.assertEqual(srv.get("/health").status, 200)

    def assertStartRefused(self, env, what):
        env = dict(env, TLS_PORT=harness.free_port())
        rc, out, err = harness.run_cli(["serve"], env_overrides=env, timeout=8)
        self.assertIsNotNone(rc, "%s: the server started (and ran until killed)" % what)
        self.assertNotEqual(rc, 0, "%s: exit code 0\n%s" % (what, err))
        self.assertNotIn("listening on https://", err, what)
        self.assertIn("TLS", err, "%s: stderr does not say what is wrong:\n%s" % (what, err))
        return err

    def test_startup_refuses_unusable_certificates(self):
        a_cert, a_key = CERTS["a"]
        err = self.assertStartRefused({"TLS_CERT": os.path.join(TMP, "missing.crt"), "TLS_KEY": a_key},
                                      "missing certificate file")
        self.assertIn("missing.crt", err)
        self.assertStartRefused({"TLS_CERT": a_cert, "TLS_KEY": a_cert}, "certificate given as the key")
        self.assertStartRefused({"TLS_CERT": a_key, "TLS_KEY": a_key}, "key given as the certificate")

    def test_startup_refuses_a_key_of_another_certificate(self):
        self.assertStartRefused({"TLS_CERT": CERTS["a"][0], "TLS_KEY": CERTS["b"][1]},
                                "certificate a with the key of b")

    def test_full_handshakes_with_each_key_type(self):
        # ECDSA keys on P-256 and P-384 sign with Nettle (the server says so once per load), RSA keys with mbedTLS.
        # Every new session carries a fresh ServerKeyExchange signature, which the client (OpenSSL) verifies
        # against the certificate: a wrong signature or encoding fails the handshake.
        for name, suite, line in (("a", "ECDHE-ECDSA", "ECDSA P-256, signatures by Nettle"),
                                  ("p384", "ECDHE-ECDSA", "ECDSA P-384, signatures by Nettle"),
                                  ("rsa", "ECDHE-RSA", None)):
            srv = self.start(*CERTS[name])
            said = [ln for ln in srv.stderr_lines() if "signatures by Nettle" in ln]
            if line:
                self.assertEqual(len(said), 1, srv.stderr_lines())
                self.assertIn(line, said[0])
            else:
                self.assertEqual(said, [], "an RSA key is mbedTLS's")
            for i in range(24):
                c = srv.connect()  # no session given: no ticket, a full handshake
                try:
                    self.assertFalse(c.tls.session_reused)
                    self.assertTrue(c.tls.cipher()[0].startswith(suite + "-"), (name, c.tls.cipher()))
                    self.assertEqual(c.peer_certificate(), der(CERTS[name][0]))
                    self.assertEqual(c.request("GET", "/health").status, 200, (name, i))
                finally:
                    c.close()

    def test_chain_file_is_sent(self):
        cert, key = self.files("a")
        srv = self.start(cert, key, env={"TLS_CHAIN": CERTS["b"][0]})
        self.assertEqual(srv.get("/health").status, 200)
        if not OPENSSL:
            self.skipTest("needs openssl")
        rc, out = s_client(srv.tls_port, "-showcerts")
        self.assertEqual(rc, 0, out)
        self.assertRegex(out, r"(?m)^\s*0 s:\s*CN\s*=\s*staccato-a")
        self.assertRegex(out, r"(?m)^\s*1 s:\s*CN\s*=\s*staccato-b", "the chain file's certificate is not sent")


# ---------------------------------------------------------------------------
# HSTS, redirect to HTTPS
# ---------------------------------------------------------------------------

class Hsts(harness.ServerTestCase):
    def test_hsts_over_tls_only(self):
        srv = self.start_server_tls({"STACCATO_HSTS_MAX_AGE": "31536000"})
        c = srv.connect()
        self.addCleanup(c.close)
        for path, status in (("/health", 200), ("/nope", 404), ("/metrics", 200)):
            r = c.request("GET", path)
            self.assertEqual(r.status, status, r)
            self.assertEqual(r.header_all("strict-transport-security"), ["max-age=31536000"], r)
        r = c.request("HEAD", "/health")
        self.assertEqual(r.header("strict-transport-security"), "max-age=31536000")
        p = harness.Conn(srv.http_port, tls=False)
        self.addCleanup(p.close)
        for path in ("/health", "/nope"):
            r = p.request("GET", path)
            self.assertIsNone(r.header("strict-transport-security"), "HSTS over plaintext: %r" % r)

    def test_no_hsts_by_default(self):
        srv = self.start_server_tls({})
        r = srv.get("/health")
        self.assertIsNone(r.header("strict-transport-security"), r)

    def start_server_tls(self, env):
        srv = harness.Server(tls=True, env=env)
        self.addCleanup(self._stop_server, srv)
        return srv


class HttpsRedirect(harness.ServerTestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = harness.Server(tls=True, env={"STACCATO_HTTPS_REDIRECT": "on"})

    @classmethod
    def tearDownClass(cls):
        rc = cls.srv.stop()
        cls.srv.cleanup_tmp()
        if rc != 0:
            raise AssertionError("server exit code %r" % rc)

    def plain(self):
        c = harness.Conn(self.srv.http_port, tls=False)
        self.addCleanup(c.close)
        return c

    def test_308_with_location(self):
        c = self.plain()
        tls = self.srv.tls_port
        for host, target, location in (
                ("127.0.0.1", "/albums?x=1", "https://127.0.0.1:%d/albums?x=1" % tls),
                ("127.0.0.1:%d" % self.srv.http_port, "/songs/abc", "https://127.0.0.1:%d/songs/abc" % tls),
                ("music.example:8080", "/users/me", "https://music.example:%d/users/me" % tls),
                ("[::1]:80", "/healthz", "https://[::1]:%d/healthz" % tls),
                ("music.example", "/nope/x?a=%20b&c", "https://music.example:%d/nope/x?a=%%20b&c" % tls)):
            r = c.request("GET", target, [("Host", host)])
            self.assertEqual(r.status, 308, r)
            self.assertEqual(r.header("location"), location, r)
            self.assertNotIn("close", r.connection_tokens(), "the redirect needs no new connection")
        # every method, body read and skipped: the connection goes on
        r = c.request("POST", "/_debug/echo", [("Content-Type", "application/json")], b'{"a":1}')
        self.assertEqual(r.status, 308, r)
        self.assertEqual(r.header("location"), "https://127.0.0.1:%d/_debug/echo" % tls)
        r = c.request("DELETE", "/albums/x")
        self.assertEqual(r.status, 308, r)
        r = c.request("HEAD", "/metrics")
        self.assertEqual(r.status, 308, r)
        self.assertEqual(r.body, b"")

    def test_health_is_not_redirected(self):
        c = self.plain()
        for target in ("/health", "/health?probe=1"):
            r = c.request("GET", target)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json(), HEALTH_BODY)
            self.assertIsNone(r.header("location"))
        self.assertEqual(c.request("HEAD", "/health").status, 200)

    def test_no_redirect_over_tls(self):
        c = self.srv.connect()
        self.addCleanup(c.close)
        self.assertEqual(c.request("GET", "/health").status, 200)
        r = c.request("GET", "/nope")
        self.assertEqual(r.status, 404, r)
        self.assertIsNone(r.header("location"))
        r = c.request("POST", "/_debug/echo", body=b"[1]")
        self.assertEqual(r.status, 200, r)

    def test_redirect_location_is_well_formed_for_odd_hosts(self):
        """Whatever the Host header, a 308's Location is an https URL of a host name, the TLS port and the
        request's path (or the request is refused with 400): no empty authority, no path smuggled through Host."""
        tls = self.srv.tls_port
        for raw in (b"GET /x HTTP/1.0\r\n\r\n",
                    b"GET /x HTTP/1.1\r\nHost: \r\n\r\n",
                    b"GET /x HTTP/1.1\r\nHost: evil.example/steal?\r\n\r\n",
                    b"GET /x HTTP/1.1\r\nHost: [::1\r\n\r\n"):
            with self.subTest(request=raw):
                c = self.plain()
                c.send(raw)
                r = c.read_response()
                if r.status == 400:
                    continue
                self.assertEqual(r.status, 308, r)
                loc = r.header("location") or ""
                try:
                    u = urlsplit(loc)
                    port = u.port
                except ValueError as e:
                    self.fail("Location %r is not a URL: %s" % (loc, e))
                self.assertEqual(u.scheme, "https", "Location %r" % loc)
                self.assertTrue(u.hostname, "Location %r has no host" % loc)
                self.assertEqual(port, tls, "Location %r" % loc)
                self.assertEqual(u.path, "/x", "Location %r" % loc)


# ---------------------------------------------------------------------------
# large bodies, file ranges
# ---------------------------------------------------------------------------

class LargeBodies(SharedServer):
    ENV = {"STACCATO_MAX_BODY_BYTES": str(16 << 20), "STACCATO_MAX_WRITE_BUFFER": "65536"}

    def test_large_echo_both_ways_byte_exact(self):
        blob = os.urandom(3 << 20).hex()               # 6 MiB of JSON string, echoed back
        body = json.dumps({"blob": blob}).encode()
        for rcvbuf in (None, 8192):                    # with a slow (small-window) reader too
            c = self.conn(rcvbuf=rcvbuf, timeout=30)
            r = c.request("POST", "/_debug/echo", [("Content-Type", "application/json")], body, timeout=60)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["data"]["bytes"], len(body))
            self.assertEqual(hashlib.sha256(json.dumps(r.json()["data"]["json"]).encode()).hexdigest(),
                             hashlib.sha256(body).hexdigest())
            self.assertEqual(c.request("GET", "/health").status, 200)

    def test_large_upload_3mb(self):
        blob = os.urandom(3_000_000)
        c = self.conn(timeout=30)
        for mode in ("content-length", "chunked", "one byte records"):
            if mode == "content-length":
                r = c.request("PUT", "/_debug/upload", [("Content-Length", str(len(blob)))], blob, timeout=30)
            elif mode == "chunked":
                parts = [blob[i:i + 70_000] for i in range(0, len(blob), 70_000)]
                c.send(build_request("POST", "/_debug/upload", [("Transfer-Encoding", "chunked")])
                       + harness.chunked(parts))
                r = c.read_response(timeout=30)
            else:
                # the head in 1-byte TLS records, the body in records of odd sizes
                head = build_request("PUT", "/_debug/upload", [("Content-Length", str(len(blob)))])
                c.send_slowly(head, step=1, delay=0)
                pos, sizes = 0, [1, 7, 16384, 3, 9000, 16383]
                i = 0
                while pos < len(blob):
                    n = sizes[i % len(sizes)]
                    c.send(blob[pos:pos + n])
                    pos += n
                    i += 1
                r = c.read_response(timeout=30)
            self.assertEqual(r.status, 200, "%s: %r" % (mode, r))
            self.assertEqual(r.json()["data"]["bytes"], len(blob), mode)
            self.assertGreater(r.json()["data"]["pauses"], 10, mode)
        self.assertEqual(c.request("GET", "/health").status, 200)

    def test_pipelined_requests_in_one_record(self):
        # many requests inside one TLS record: the plaintext waits inside the session, no socket event for it
        c = self.conn()
        c.send(harness.join_requests(build_request("GET", "/health") for _ in range(40)))
        for i in range(40):
            self.assertEqual(c.read_response().json(), HEALTH_BODY, i)
        self.assertTrue(c.nothing_arrives(0.2))


class FileRanges(harness.ServerTestCase):
    """A song's audio stream: the file ranges of the response are read off the loop and encrypted."""

    @classmethod
    def setUpClass(cls):
        cls.svc = harness.Services(prefix="staccato-tls-svc-")
        cls.media = tempfile.mkdtemp(prefix="staccato-tls-media-")
        cls.srv = None
        try:
            cls.svc.start()
            rc, out, err = harness.run_cli(["migrate"], env_overrides=dict(_SCRUB, DATABASE_URL=cls.svc.database_url),
                                           timeout=60)
            if rc != 0:
                raise AssertionError("migrate failed:\n%s%s" % (out, err))
            cls.data = random.Random(11).randbytes(5 * 1024 * 1024 + 7)
            sha = hashlib.sha256(cls.data).hexdigest()
            rel = "%s/%s" % (sha[:2], sha)
            os.makedirs(os.path.join(cls.media, sha[:2]))
            with open(os.path.join(cls.media, rel), "wb") as f:
                f.write(cls.data)
            cls.song = "song-tls-file"
            cls.svc.psql("INSERT INTO media_files (id, kind, sha256, path, mime, size) VALUES "
                         "('media-tls-file', 'audio', '%s', '%s', 'audio/mpeg', %d); "
                         "INSERT INTO songs (id, title, year, performer, genre, audio_media_id, audio_mime, "
                         "audio_size) VALUES ('%s', 'Over TLS', 2024, 'Tester', 'Test', 'media-tls-file', "
                         "'audio/mpeg', %d)" % (sha, rel, len(cls.data), cls.song, len(cls.data)))
            cls.srv = harness.Server(tls=True, env=dict(
                _SCRUB, DATABASE_URL=cls.svc.database_url, REDIS_URL=cls.svc.redis_url,
                STACCATO_MEDIA_DIR=cls.media, STACCATO_MAX_WRITE_BUFFER="65536"))
        except BaseException:
            cls._teardown()
            raise

    @classmethod
    def _teardown(cls):
        try:
            if cls.srv is not None:
                rc = cls.srv.stop()
                cls.srv.cleanup_tmp()
                if rc != 0:
                    raise AssertionError("server exit code %r\n%s" % (rc, "\n".join(cls.srv.err.snapshot()[-20:])))
        finally:
            cls.svc.destroy()
            shutil.rmtree(cls.media, ignore_errors=True)

    @classmethod
    def tearDownClass(cls):
        cls._teardown()

    def get(self, c, headers=()):
        return c.request("GET", "/songs/%s/stream" % self.song, list(headers), timeout=60)

    def test_whole_file_and_ranges_byte_exact(self):
        for rcvbuf in (None, 16384):
            c = harness.Conn(self.srv.tls_port, tls=True, rcvbuf=rcvbuf, timeout=60)
            self.addCleanup(c.close)
            r = self.get(c)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(len(r.body), len(self.data))
            self.assertTrue(r.body == self.data, "whole file over TLS differs")
            n = len(self.data)
            for first, last in ((0, 0), (1, 65536), (65535, 65537), (n - 100000, n - 1), (12345, 3 * 1024 * 1024)):
                r = self.get(c, [("Range", "bytes=%d-%d" % (first, last))])
                self.assertEqual(r.status, 206, r)
                self.assertEqual(r.header("content-range"), "bytes %d-%d/%d" % (first, last, n))
                self.assertTrue(r.body == self.data[first:last + 1], "range %d-%d differs" % (first, last))
            r = self.get(c, [("Range", "bytes=-1000")])
            self.assertEqual(r.status, 206, r)
            self.assertTrue(r.body == self.data[-1000:])

    @require_tools("curl")
    def test_every_suite_streams_byte_exact_with_keepalive(self):
        # AES-GCM sessions send through the server's own record sealing (src/net/tls.h), ChaCha20-Poly1305 through
        # mbedTLS: for each, two full downloads and a range on one connection, and a clean close, checked by curl
        # (OpenSSL verifies every record's tag and sequence).
        url = "https://127.0.0.1:%d/songs/%s/stream" % (self.srv.tls_port, self.song)
        want = hashlib.sha256(self.data).hexdigest()
        for suite in ("ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
                      "ECDHE-ECDSA-CHACHA20-POLY1305"):
            outs = [os.path.join(TMP, "suite-%d-%d" % (os.getpid(), i)) for i in range(3)]
            for o in outs:
                self.addCleanup(lambda o=o: os.path.exists(o) and os.remove(o))
            opts = ["-sSk", "--tls-max", "1.2", "--ciphers", suite, "-w", "%{num_connects}\n"]
            p = subprocess.run(["curl"] + opts + [url, "-o", outs[0], url, "-o", outs[1], "--next"] + opts +
                               ["-r", "1000-70999", url, "-o", outs[2]], capture_output=True, timeout=120)
            self.assertEqual(p.returncode, 0, "%s: %s" % (suite, p.stderr.decode(errors="replace")))
            self.assertEqual(p.stdout.decode().split(), ["1", "0", "0"], suite)  # one connection for all three
            for o in outs[:2]:
                with open(o, "rb") as f:
                    self.assertEqual(hashlib.sha256(f.read()).hexdigest(), want, suite)
            with open(outs[2], "rb") as f:
                self.assertTrue(f.read() == self.data[1000:71000], suite)

    def test_several_readers_at_once(self):
        results = []

        def reader():
            c = harness.Conn(self.srv.tls_port, tls=True, timeout=60)
            try:
                for _ in range(2):
                    r = self.get(c)
                    results.append(r.status == 200 and r.body == self.data)
            except Exception as e:  # noqa: BLE001
                results.append(repr(e))
            finally:
                c.close()

        threads = [threading.Thread(target=reader, daemon=True) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(90)
        self.assertEqual(results, [True] * 8)

    def test_reader_leaving_mid_file(self):
        for _ in range(5):
            c = harness.Conn(self.srv.tls_port, tls=True, rcvbuf=4096)
            c.send(build_request("GET", "/songs/%s/stream" % self.song))
            time.sleep(0.05)
            c.close()
        c = harness.Conn(self.srv.tls_port, tls=True, timeout=60)
        self.addCleanup(c.close)
        r = self.get(c, [("Range", "bytes=100-199")])
        self.assertEqual(r.body, self.data[100:200])


if __name__ == "__main__":
    harness.main()
