#!/usr/bin/env python3
"""/metrics, graceful shutdown, signals and --workers (spec: Routes, Signals)."""

import os
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import build_request, closed_by_server, metric_value  # noqa: E402

REQS = "staccato_http_requests_total"
DUR = "staccato_http_request_duration_seconds"


class Metrics(harness.ServerTestCase):
    def fetch(self, srv):
        r = srv.get("/metrics")
        self.assertEqual(r.status, 200, r)
        ct = r.header("content-type", "").replace(" ", "").lower()
        self.assertTrue(ct.startswith("text/plain;version=0.0.4"), "metrics Content-Type %r" % ct)
        self.assertEqual(int(r.header("content-length")), len(r.body))
        return harness.parse_metrics(r.text()), r.text()

    def check_histogram(self, m):
        buckets = [(lab, v) for n, lab, v in m if n == DUR + "_bucket"]
        self.assertTrue(buckets, "no %s_bucket samples" % DUR)
        groups = {}
        for lab, v in buckets:
            self.assertIn("le", lab)
            key = tuple(sorted((k, x) for k, x in lab.items() if k != "le"))
            le = float("inf") if lab["le"] == "+Inf" else float(lab["le"])
            groups.setdefault(key, []).append((le, v))
        total = 0
        for key, pts in groups.items():
            pts.sort()
            self.assertEqual(pts[-1][0], float("inf"), "histogram %r lacks le=\"+Inf\"" % (key,))
            vals = [v for _, v in pts]
            self.assertEqual(vals, sorted(vals), "buckets not cumulative for %r: %r" % (key, pts))
            count = metric_value(m, DUR + "_count", **dict(key))
            self.assertIsNotNone(count, "no %s_count for %r" % (DUR, key))
            self.assertEqual(pts[-1][1], count, "+Inf bucket != _count for %r" % (key,))
            self.assertIsNotNone(metric_value(m, DUR + "_sum", **dict(key)), "no _sum")
            total += count
        return total

    def test_metrics_counters(self):
        srv = self.start_server()
        c = srv.connect()
        self.addCleanup(c.close)
        for _ in range(3):
            self.assertEqual(c.request("GET", "/health").status, 200)
        self.assertEqual(c.request("HEAD", "/health").status, 200)
        self.assertEqual(c.request("GET", "/nope-xyz-123").status, 404)
        self.assertEqual(c.request("GET", "/nope-xyz-456").status, 404)
        self.assertEqual(c.request("GET", "/_debug/sleep?ms=1").status, 200)

        m1, text1 = self.fetch(srv)
        self.assertEqual(metric_value(m1, REQS, route="/health", method="GET", status="200"), 3,
                         "requests_total for GET /health:\n" + text1)
        self.assertEqual(metric_value(m1, REQS, route="/health", method="HEAD", status="200"), 1)
        self.assertEqual(metric_value(m1, REQS, route="/_debug/sleep", method="GET", status="200"), 1,
                         "route label must be the route pattern (no query string):\n" + text1)
        self.assertEqual(metric_value(m1, REQS, status="404"), 2, text1)
        for n, lab, v in m1:
            for val in lab.values():
                self.assertNotIn("nope-xyz", val, "raw unmatched path used as a label: %s %r" % (n, lab))
                self.assertNotIn("ms=", val, "query string in a label: %s %r" % (n, lab))
        count1 = self.check_histogram(m1)
        self.assertGreaterEqual(count1, 7)
        self.assertGreaterEqual(metric_value(m1, "staccato_http_open_connections"), 1)
        sent1 = metric_value(m1, "staccato_http_bytes_sent_total")
        self.assertGreater(sent1, 0)
        self.assertEqual(metric_value(m1, "staccato_http_connections_shed_total"), 0)

        for _ in range(2):
            self.assertEqual(c.request("GET", "/health").status, 200)
        m2, text2 = self.fetch(srv)
        self.assertEqual(metric_value(m2, REQS, route="/health", method="GET", status="200"), 5, text2)
        self.assertGreater(metric_value(m2, "staccato_http_bytes_sent_total"), sent1)
        self.assertGreater(self.check_histogram(m2), count1)

    def test_open_connections_gauge(self):
        srv = self.start_server()
        conns = [srv.connect() for _ in range(3)]
        for c in conns:
            self.addCleanup(c.close)
            self.assertEqual(c.request("GET", "/health").status, 200)
        m = harness.parse_metrics(conns[0].request("GET", "/metrics").text())
        self.assertEqual(metric_value(m, "staccato_http_open_connections"), 3)
        conns[1].close()
        conns[2].close()
        ok = harness.wait_until(lambda: metric_value(harness.parse_metrics(
            conns[0].request("GET", "/metrics").text()), "staccato_http_open_connections") == 1, 3)
        self.assertTrue(ok, "open_connections did not drop back to 1 after closing 2 connections")


def non_loopback_address():
    """An address of this host other than loopback, or None (the route to a TEST-NET address picks it; nothing
    is sent)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("192.0.2.1", 9))
        addr = s.getsockname()[0]
    except OSError:
        return None
    finally:
        s.close()
    return None if addr.startswith("127.") else addr


class MetricsAccess(harness.ServerTestCase):
    """Regression: /metrics was public. STACCATO_METRICS decides: local (the default) lets loopback clients and
    STACCATO_TRUSTED_PROXIES by, token a bearer token, public anyone, off nobody (404); others get 403."""

    TOKEN = "metrics-token-0123456789abcdef"

    def status(self, srv, headers=None, host=harness.LOOPBACK):
        c = harness.Conn(srv.port, host=host)
        try:
            r = c.request("GET", "/metrics", headers)
        finally:
            c.close()
        if r.status != 200:
            self.assertEqual(r.json()["status"], "fail", r)
        else:
            self.assertIn("staccato_http_requests_total", r.text())
        return r.status

    def test_metrics_public(self):
        xff = [("X-Forwarded-For", "203.0.113.7")]
        # local, by default: loopback yes; a stranger through a trusted proxy, or an undeclared proxy, no.
        srv = self.start_server()
        self.assertEqual(self.status(srv), 200)
        self.assertEqual(self.status(srv, xff), 403)
        self.assertEqual(self.status(srv, [("Forwarded", "for=203.0.113.7")]), 403)
        proxied = self.start_server(env={"STACCATO_TRUSTED_PROXIES": "127.0.0.1"})
        self.assertEqual(self.status(proxied), 200)  # the proxy itself (a scraper beside it)
        self.assertEqual(self.status(proxied, xff), 403)
        self.assertEqual(self.status(proxied, [("X-Forwarded-For", "127.0.0.1")]), 200)
        self.assertEqual(self.status(proxied, [("X-Forwarded-For", "127.0.0.1, 203.0.113.7")]), 403)
        via = self.start_server(env={"STACCATO_TRUSTED_PROXIES": "127.0.0.1,10.0.0.0/8"})
        self.assertEqual(self.status(via, [("X-Forwarded-For", "10.1.2.3")]), 200)  # a trusted proxy's address
        # A peer that is not loopback, where the host has such an address.
        other = non_loopback_address()
        if other:
            wide = self.start_server(env={"HOST": "0.0.0.0"})
            self.assertEqual(self.status(wide, host=other), 403)
            self.assertEqual(self.status(wide), 200)
            trusting = self.start_server(env={"HOST": "0.0.0.0", "STACCATO_TRUSTED_PROXIES": other})
            self.assertEqual(self.status(trusting, host=other), 200)
        # token: the bearer token, compared whole, from anywhere; nothing else.
        tok = self.start_server(env={"STACCATO_METRICS": "token", "STACCATO_METRICS_TOKEN": self.TOKEN})
        self.assertEqual(self.status(tok, [("Authorization", "Bearer " + self.TOKEN)] + xff), 200)
        self.assertEqual(self.status(tok, [("Authorization", "bearer " + self.TOKEN)]), 200)
        for bad in ("", "Bearer", "Bearer ", "Bearer " + self.TOKEN[:-1], "Bearer " + self.TOKEN + "x",
                    "Bearer " + self.TOKEN.upper(), "Basic " + self.TOKEN, self.TOKEN):
            with self.subTest(authorization=bad):
                self.assertEqual(self.status(tok, [("Authorization", bad)] if bad else None), 403)
        # public: anyone; off: 404, as for a route that does not exist.
        pub = self.start_server(env={"STACCATO_METRICS": "public"})
        self.assertEqual(self.status(pub, xff), 200)
        off = self.start_server(env={"STACCATO_METRICS": "off"})
        self.assertEqual(self.status(off), 404)
        r = off.get("/metrics")
        self.assertEqual(r.json()["message"], off.get("/no-such-route").json()["message"])
        # The other operational endpoints stay public.
        self.assertEqual(srv.get("/health", headers=xff).status, 200)


class Shutdown(harness.ServerTestCase):
    def assertRefused(self, port):
        try:
            c = harness.Conn(port, timeout=2)
        except ConnectionRefusedError:
            return
        try:
            try:
                c.send(build_request("GET", "/health"))
                r = c.read_response(timeout=2)
                self.fail("new connection accepted and answered after SIGTERM: %r" % r)
            except (harness.ConnectionClosed, ConnectionResetError, BrokenPipeError, socket.timeout):
                self.fail("new connection accepted (though not answered) after SIGTERM")
        finally:
            c.close()

    def test_sigterm_drains_in_flight_request(self):
        srv = self.start_server()
        idle = srv.connect()
        self.addCleanup(idle.close)
        self.assertEqual(idle.request("GET", "/health").status, 200)
        busy = srv.connect()
        self.addCleanup(busy.close)
        busy.send(build_request("GET", "/_debug/sleep?ms=800"))
        time.sleep(0.3)                           # let the request reach its timer
        srv.send_signal(signal.SIGTERM)
        time.sleep(0.15)
        self.assertTrue(srv.alive(), "server exited before its in-flight request completed")
        self.assertRefused(srv.port)
        r = busy.read_response(timeout=5)
        self.assertEqual(r.status, 200, "in-flight request during shutdown: %r" % r)
        self.assertClosesAfter(busy, r)
        closed, extra = closed_by_server(idle, 3)
        self.assertTrue(closed, "idle keep-alive connection not closed on shutdown")
        self.assertEqual(extra, b"")
        idle.close()
        rc = srv.wait(10)
        self.assertEqual(rc, 0, "exit code after SIGTERM with drained request")

    def test_sigint_exits_zero(self):
        srv = self.start_server()
        c = srv.connect()
        self.addCleanup(c.close)
        self.assertEqual(c.request("GET", "/health").status, 200)
        srv.send_signal(signal.SIGINT)
        closed, _ = closed_by_server(c, 3)
        self.assertTrue(closed, "idle connection not closed on SIGINT")
        self.assertEqual(srv.wait(10), 0, "exit code after SIGINT")
        self.assertRefused(srv.port)

    def test_drain_timeout_bounds_shutdown(self):
        srv = self.start_server(env={"STACCATO_DRAIN_TIMEOUT_MS": "300"})
        busy = srv.connect()
        self.addCleanup(busy.close)
        busy.send(build_request("GET", "/_debug/sleep?ms=8000"))
        time.sleep(0.15)
        srv.send_signal(signal.SIGTERM)
        rc = srv.wait(4)
        self.assertIsNotNone(rc, "server still running 4s after SIGTERM with a 300ms drain timeout")
        self.assertEqual(rc, 0, "exit code after drain timeout")
        _, closed = busy.read_until_eof(2)
        self.assertTrue(closed, "in-flight connection not closed after the drain timeout")


class Workers(harness.ServerTestCase):
    def test_workers_serve_and_exit_cleanly(self):
        srv = self.start_server(args=["--workers", "2"])
        kids = harness.wait_until(lambda: len(harness.children_of(srv.pid())) >= 2 and
                                  harness.children_of(srv.pid()), 5)
        kids = harness.children_of(srv.pid())
        for k in kids:
            self.addCleanup(self._reap, k)
        self.assertEqual(len(kids), 2, "expected 2 worker processes, children=%r" % kids)
        ports = {int(harness.LISTEN_RE.search(ln).group(2)) for ln in srv.stderr_lines()
                 if harness.LISTEN_RE.search(ln)}
        self.assertEqual(ports, {srv.port}, "workers log different ports: %r" % ports)
        for i in range(30):
            r = srv.get("/health")
            self.assertEqual(r.status, 200, "request %d: %r" % (i, r))
        busy = srv.connect()
        self.addCleanup(busy.close)
        busy.send(build_request("GET", "/_debug/sleep?ms=800"))
        time.sleep(0.3)
        srv.send_signal(signal.SIGTERM)
        r = busy.read_response(timeout=5)
        self.assertEqual(r.status, 200, "in-flight request on a worker during shutdown: %r" % r)
        self.assertIn("close", r.connection_tokens())
        _, closed = busy.read_until_eof(3)
        self.assertTrue(closed, "worker did not close the drained connection")
        busy.close()
        rc = srv.wait(10)
        self.assertEqual(rc, 0, "parent exit code with --workers 2")
        left = [k for k in kids if harness.process_running(k)]
        self.assertEqual(left, [], "worker processes left running after the parent exited")
        self.assertRaises(ConnectionRefusedError, harness.Conn, srv.port, timeout=2)

    def _reap(self, pid):
        if harness.process_running(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


if __name__ == "__main__":
    harness.main()
