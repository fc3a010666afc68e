#!/usr/bin/env python3
"""HTTP/1.1 protocol behaviour of the core server (spec: HTTP, Routes, Access log)."""

import email.utils
import json
import os
import re
import sys
import time
import datetime

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import build_request, chunked, closed_by_server  # noqa: E402

HEALTH_BODY = {"status": "success", "data": {"status": "ok"}}
DATE_RE = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} "
                     r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} "
                     r"\d{2}:\d{2}:\d{2} GMT$")


class Basics(harness.SharedServerCase):
    """Tests sharing one server with the default limits."""

    def assertCommonHeaders(self, r):
        self.assertEqual(r.header("server"), "staccato", r)
        date = r.header("date")
        self.assertIsNotNone(date, "missing Date header: %r" % r)
        self.assertRegex(date, DATE_RE)
        dt = email.utils.parsedate_to_datetime(date)
        now = datetime.datetime.now(datetime.timezone.utc)
        self.assertLess(abs((now - dt).total_seconds()), 300, "Date far from now: %r" % date)
        self.assertEqual(len(r.header_all("date")), 1)
        self.assertEqual(len(r.header_all("server")), 1)

    # -- /health -----------------------------------------------------------
    def test_get_health(self):
        c = self.conn()
        r = c.request("GET", "/health")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.framing, "content-length", "expected Content-Length framing: %r" % r)
        self.assertEqual(int(r.header("content-length")), len(r.body))
        self.assertEqual(r.json(), HEALTH_BODY)
        self.assertEqual(r.header("content-type", "").replace(" ", "").lower(),
                         "application/json;charset=utf-8")
        self.assertCommonHeaders(r)
        self.assertNotIn("close", r.connection_tokens())

    def test_head_health_same_headers_no_body(self):
        c = self.conn()
        g = c.request("GET", "/health")
        c.send(build_request("HEAD", "/health"))
        h = c.read_response(method="HEAD")
        self.assertEqual(h.status, 200, h)
        self.assertEqual(h.header("content-length"), g.header("content-length"),
                         "HEAD Content-Length must equal GET's")
        self.assertEqual(h.header("content-type"), g.header("content-type"))
        self.assertCommonHeaders(h)
        gnames = sorted(k.lower() for k, _ in g.headers)
        hnames = sorted(k.lower() for k, _ in h.headers)
        self.assertEqual(hnames, gnames, "HEAD header names differ from GET's")
        # No body must follow: nothing arrives, and the next response parses cleanly.
        if not c.nothing_arrives(0.3):
            extra, _ = c.read_until_eof(0.3)
            self.fail("bytes (or EOF) arrived after a HEAD response: %r" % extra[:200])
        r = c.request("GET", "/health")
        self.assertEqual(r.json(), HEALTH_BODY)

    def test_head_error_responses_have_no_body(self):
        c = self.conn()
        for path, status in (("/nope", 404), ("/_debug/echo", 405)):
            c.send(build_request("HEAD", path))
            r = c.read_response(method="HEAD")
            self.assertEqual(r.status, status, r)
            self.assertIsNotNone(r.header("content-length"))
            if not c.nothing_arrives(0.2):
                extra, _ = c.read_until_eof(0.3)
                self.fail("HEAD %s: bytes after the headers: %r" % (path, extra[:200]))
        self.assertEqual(c.request("GET", "/health").status, 200)

    def test_get_with_body_is_consumed(self):
        # a body on a GET must be read and skipped, not parsed as the next request
        c = self.conn()
        c.send(build_request("GET", "/health", body=b"hello") + build_request("GET", "/health"))
        for i in range(2):
            r = c.read_response()
            self.assertEqual(r.status, 200, "response %d: %r" % (i, r))
            self.assertEqual(r.json(), HEALTH_BODY)
        self.assertTrue(c.nothing_arrives(0.2))

    # -- errors ------------------------------------------------------------
    def test_404_json_keeps_connection(self):
        c = self.conn()
        r = c.request("GET", "/definitely-not-here")
        self.assertJsonError(r, 404)
        self.assertCommonHeaders(r)
        self.assertEqual(int(r.header("content-length")), len(r.body))
        r2 = c.request("GET", "/health")
        self.assertEqual(r2.status, 200, "connection unusable after a 404")

    def allow_tokens(self, r):
        allow = r.header("allow")
        self.assertIsNotNone(allow, "405 without Allow: %r" % r)
        return {t.strip() for t in allow.split(",") if t.strip()}

    def test_405_with_allow(self):
        c = self.conn()
        for method in ("POST", "DELETE", "PUT", "PATCH"):
            r = c.request(method, "/health", body=b"" if method != "DELETE" else None)
            self.assertJsonError(r, 405)
            toks = self.allow_tokens(r)
            self.assertTrue({"GET", "HEAD"} <= toks, "Allow for /health: %r" % toks)
            self.assertFalse(toks & {"POST", "PUT", "DELETE", "PATCH"}, "Allow for /health: %r" % toks)
        r = c.request("POST", "/metrics", body=b"")
        self.assertJsonError(r, 405)
        self.assertIn("GET", self.allow_tokens(r))
        self.assertNotIn("POST", self.allow_tokens(r))
        r = c.request("GET", "/_debug/echo")
        self.assertJsonError(r, 405)
        self.assertIn("POST", self.allow_tokens(r))
        self.assertNotIn("GET", self.allow_tokens(r))

    def test_allow_lists_only_working_methods(self):
        # every method the 405 advertises for /health must itself not be refused with 405
        c = self.conn()
        toks = self.allow_tokens(c.request("POST", "/health", body=b""))
        for m in sorted(toks):
            r = c.request(m, "/health")
            self.assertNotEqual(r.status, 405, "Allow advertises %s but %s /health gives 405" % (m, m))
            self.assertLess(r.status, 300, "%s /health: %r" % (m, r))

    # -- connection management ----------------------------------------------
    def test_keepalive_many_requests_one_socket(self):
        c = self.conn()
        for i in range(100):
            r = c.request("GET", "/health")
            self.assertEqual(r.status, 200, "request %d: %r" % (i, r))
            self.assertNotIn("close", r.connection_tokens(), "request %d closed" % i)
        self.assertTrue(c.nothing_arrives(0.05))

    def test_http10_closes_by_default(self):
        c = self.conn()
        c.send(b"GET /health HTTP/1.0\r\n\r\n")
        r = c.read_response()
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), HEALTH_BODY)
        self.assertNotIn("keep-alive", r.connection_tokens())
        closed, extra = closed_by_server(c, 3)
        self.assertEqual(extra, b"")
        self.assertTrue(closed, "HTTP/1.0 request without keep-alive: server kept the connection open")

    def test_http10_keepalive(self):
        c = self.conn()
        for i in range(3):
            c.send(b"GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            r = c.read_response()
            self.assertEqual(r.status, 200, r)
            self.assertIn("keep-alive", r.connection_tokens(),
                          "HTTP/1.0 keep-alive response must say Connection: keep-alive "
                          "(RFC 7230 A.1.2), got %r" % r)
            self.assertNotIn("close", r.connection_tokens())
        self.assertTrue(c.nothing_arrives(0.2), "connection closed/extra bytes after HTTP/1.0 keep-alive")

    def test_connection_close_honoured(self):
        c = self.conn()
        r = c.request("GET", "/health", headers=[("Connection", "close")])
        self.assertEqual(r.status, 200, r)
        self.assertClosesAfter(c, r)

    def test_connection_close_on_error_response(self):
        c = self.conn()
        r = c.request("GET", "/nope", headers=[("Connection", "close")])
        self.assertEqual(r.status, 404, r)
        self.assertClosesAfter(c, r)

    def test_pipelining_in_order(self):
        c = self.conn()
        reqs = [("GET", "/_debug/sleep?ms=50", None)]
        for i in range(1, 20):
            if i % 6 == 0:
                reqs.append(("HEAD", "/health", None))
            elif i % 7 == 0:
                reqs.append(("GET", "/nope-%d" % i, None))
            else:
                reqs.append(("POST", "/_debug/echo", json.dumps({"i": i}).encode()))
        data = b""
        for n, (m, p, b) in enumerate(reqs):
            hdrs = [("Content-Type", "application/json")] if b else []
            if n == len(reqs) - 1:
                hdrs.append(("Connection", "close"))
            data += build_request(m, p, hdrs, b)
        c.send(data)  # all 20 requests in a single send
        for n, (m, p, b) in enumerate(reqs):
            r = c.read_response(method=m, timeout=5)
            if n == 0:
                self.assertEqual(r.status, 200, "sleep response: %r" % r)
                j = r.json()
                is_echo = isinstance(j, dict) and isinstance(j.get("data"), dict) and "bytes" in j["data"]
                self.assertFalse(is_echo, "first response is an echo, not the sleep: out of order")
            elif m == "HEAD":
                self.assertEqual(r.status, 200, "response %d (HEAD): %r" % (n, r))
                self.assertEqual(r.body, b"")
            elif p.startswith("/nope"):
                self.assertEqual(r.status, 404, "response %d: %r" % (n, r))
            else:
                self.assertEqual(r.status, 200, "response %d: %r" % (n, r))
                self.assertEqual(r.json()["data"]["json"], {"i": n},
                                 "response %d out of order: %r" % (n, r.body))
        self.assertClosesAfter(c, r)

    def test_deep_pipelining_large_responses(self):
        # ~5 MB of responses to one pipelined write, the client reading all the time
        # (default STACCATO_MAX_WRITE_BUFFER, 1 MiB): nothing may stall.
        c = self.conn()
        n = 2000
        rs, err = harness.pipeline_all(c, [("GET", "/metrics")] * n)
        self.assertIsNone(err, "pipeline of %d GET /metrics stalled after %d responses: %r"
                          % (n, len(rs), err))
        self.assertEqual([r.status for r in rs], [200] * n)
        rs, err = harness.pipeline_all(c, [("GET", "/health"), ("HEAD", "/health")] * 5000)
        self.assertIsNone(err, "pipeline of 10000 small requests stalled after %d responses: %r"
                          % (len(rs), err))

    def test_request_split_one_byte_per_send(self):
        c = self.conn()
        body = b'{"split":true,"n":[1,2,3]}'
        req = build_request("POST", "/_debug/echo", [("Content-Type", "application/json")], body)
        c.send_slowly(req, step=1, delay=0.002)
        r = c.read_response()
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["data"], {"bytes": len(body), "json": {"split": True, "n": [1, 2, 3]}})
        # and a GET split the same way on the same connection
        c.send_slowly(build_request("GET", "/health"), step=1, delay=0.001)
        self.assertEqual(c.read_response().json(), HEALTH_BODY)

    # -- bodies --------------------------------------------------------------
    def test_content_length_body(self):
        c = self.conn()
        doc = {"a": 1, "b": [True, None, "x"], "c": {"d": 2.5}}
        body = json.dumps(doc).encode()
        r = c.request("POST", "/_debug/echo", [("Content-Type", "application/json")], body)
        self.assertEqual(r.status, 200, r)
        j = r.json()
        self.assertEqual(j["status"], "success")
        self.assertEqual(j["data"], {"bytes": len(body), "json": doc})
        self.assertEqual(r.header("content-type", "").replace(" ", "").lower(),
                         "application/json;charset=utf-8")
        # connection still usable
        self.assertEqual(c.request("GET", "/health").status, 200)

    def test_empty_body_json_null(self):
        c = self.conn()
        r = c.request("POST", "/_debug/echo", body=b"")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["data"], {"bytes": 0, "json": None})

    def test_chunked_body(self):
        c = self.conn()
        doc = {"chunked": "yes", "list": list(range(50))}
        raw = json.dumps(doc).encode()
        parts = [raw[:1], raw[1:17], raw[17:100], raw[100:]]
        req = build_request("POST", "/_debug/echo",
                            [("Content-Type", "application/json"),
                             ("Transfer-Encoding", "chunked")]) + chunked(parts)
        c.send(req)
        r = c.read_response()
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["data"], {"bytes": len(raw), "json": doc})
        # chunked body sent in pieces with pauses, then a second request reuses the socket
        c.send(build_request("POST", "/_debug/echo", [("Transfer-Encoding", "chunked")]))
        for piece in (b"5\r\n[1,2", b",\r\n2\r\n3]\r\n", b"0\r\n", b"\r\n"):
            time.sleep(0.02)
            c.send(piece)
        r = c.read_response()
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["data"], {"bytes": 7, "json": [1, 2, 3]})
        self.assertEqual(c.request("GET", "/health").status, 200)

    def test_chunked_trailers_do_not_corrupt_request(self):
        """Regression: trailers after a chunked body used to be appended to the buffer the request's path and
        headers point into, reallocating it under them (use after free, caught by ASan)."""
        c = self.conn()
        trailer = b"".join(b"X-Trailer-%d: %s\r\n" % (i, b"v" * 100) for i in range(8))
        req = build_request("POST", "/_debug/echo?keep=path",
                            [("Transfer-Encoding", "chunked"), ("X-Before", "kept")]) + chunked([b"[7]"], trailer)
        c.send(req)
        r = c.read_response()
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["data"], {"bytes": 3, "json": [7]})
        self.assertEqual(c.request("GET", "/health").status, 200)
        # the access log names the request's path, read from the buffer the trailers must not have moved
        self.assertIsNotNone(self.srv.out.wait_for(lambda line: " POST /_debug/echo 200 " in line, 5),
                        self.srv.out.snapshot()[-5:])

    def test_expect_100_continue(self):
        c = self.conn()
        body = b'{"expect":"continue"}'
        c.send(build_request("POST", "/_debug/echo",
                             [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body))),
                              ("Expect", "100-continue")]))
        interim = c.read_response(timeout=3)
        self.assertEqual(interim.status, 100, "expected 100 Continue before the body, got %r" % interim)
        self.assertTrue(interim.raw_head.startswith(b"HTTP/1.1 100"), interim.raw_head)
        c.send(body)
        r = c.read_response()
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["data"], {"bytes": len(body), "json": {"expect": "continue"}})
        # No 100 without Expect
        r = c.request("POST", "/_debug/echo", body=b"[]")
        self.assertEqual(r.status, 200, r)

    def test_malformed_json_400(self):
        c = self.conn()
        for bad in (b'{"a":', b"not json", b'{"a":1}}', b"\xff\xfe"):
            r = c.request("POST", "/_debug/echo", [("Content-Type", "application/json")], bad)
            self.assertJsonError(r, 400, "request body is not valid JSON")

    # -- malformed / unsupported ------------------------------------------------
    def assert_400_close(self, raw):
        c = self.conn()
        c.send(raw)
        r = c.read_response()
        self.assertJsonError(r, 400)
        self.assertClosesAfter(c, r)

    def test_malformed_request_line_400_close(self):
        self.assert_400_close(b"GET /he alth HTTP/1.1\r\nHost: x\r\n\r\n")

    def test_malformed_version_400_close(self):
        self.assert_400_close(b"GET /health HTTX/1.1\r\nHost: x\r\n\r\n")

    def test_malformed_header_400_close(self):
        self.assert_400_close(b"GET /health HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n")

    def test_malformed_after_good_request(self):
        c = self.conn()
        c.send(build_request("GET", "/health") + b"GET /he alth HTTP/1.1\r\n\r\n")
        r1 = c.read_response()
        self.assertEqual(r1.status, 200, r1)
        r2 = c.read_response()
        self.assertJsonError(r2, 400)
        self.assertClosesAfter(c, r2)

    def assert_501_close(self, raw):
        c = self.conn()
        c.send(raw)
        r = c.read_response()
        self.assertJsonError(r, 501)
        self.assertClosesAfter(c, r)

    def test_trace_501(self):
        self.assert_501_close(b"TRACE /health HTTP/1.1\r\nHost: x\r\n\r\n")

    def test_propfind_501(self):
        self.assert_501_close(b"PROPFIND / HTTP/1.1\r\nHost: x\r\n\r\n")

    def test_connect_501(self):
        self.assert_501_close(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")

    def test_unknown_method_token_501(self):
        self.assert_501_close(b"FROBNICATE /health HTTP/1.1\r\nHost: x\r\n\r\n")

    def test_upgrade_websocket_501(self):
        self.assert_501_close(build_request("GET", "/health", [
            ("Connection", "Upgrade"), ("Upgrade", "websocket"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13")]))

    def test_upgrade_h2c_501(self):
        self.assert_501_close(build_request("GET", "/health", [
            ("Connection", "Upgrade, HTTP2-Settings"), ("Upgrade", "h2c"),
            ("HTTP2-Settings", "AAMAAABkAAQCAAAAAAIAAAAA")]))


class AccessLog(harness.ServerTestCase):
    TEXT_RE = re.compile(r"^(\S+) ([A-Z]+) (\S+) (\d{3}) (\d+) (\d+)us$")

    def run_requests(self, srv, xff=None):
        c = srv.connect()
        self.addCleanup(c.close)
        hdrs = [("X-Forwarded-For", xff)] if xff else []
        g = c.request("GET", "/health", hdrs)
        h = c.request("HEAD", "/health", hdrs)
        n = c.request("GET", "/nope", hdrs)
        self.assertEqual((g.status, h.status, n.status), (200, 200, 404))
        c.close()
        self.assertEqual(srv.stop(), 0, "server exit code")
        return g, h, n

    def parse_text(self, srv):
        lines = srv.stdout_lines()
        parsed = []
        for ln in lines:
            m = self.TEXT_RE.match(ln)
            self.assertIsNotNone(m, "access log line does not match "
                                 "'CLIENT METHOD PATH STATUS BYTES DURATIONus': %r" % ln)
            parsed.append(m.groups())
        return parsed

    def test_text_format(self):
        srv = self.start_server()
        g, h, n = self.run_requests(srv)
        p = self.parse_text(srv)
        self.assertEqual(len(p), 3, "expected exactly one access log line per request: %r"
                         % srv.stdout_lines())
        self.assertEqual(p[0][:5], ("127.0.0.1", "GET", "/health", "200", str(len(g.body))))
        self.assertEqual(p[1][:5], ("127.0.0.1", "HEAD", "/health", "200", "0"),
                         "HEAD logs 0 body bytes")
        self.assertEqual(p[2][:5], ("127.0.0.1", "GET", "/nope", "404", str(len(n.body))))

    def test_json_format(self):
        srv = self.start_server(env={"STACCATO_LOG_FORMAT": "json"})
        g, h, n = self.run_requests(srv)
        lines = srv.stdout_lines()
        self.assertEqual(len(lines), 3, lines)
        recs = []
        for ln in lines:
            try:
                rec = json.loads(ln)
            except ValueError:
                self.fail("access log line is not JSON: %r" % ln)
            self.assertEqual(set(rec), {"time", "client", "method", "path", "status", "bytes",
                                        "duration_us"}, rec)
            self.assertRegex(rec["time"], r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}")
            for k in ("status", "bytes", "duration_us"):
                self.assertIsInstance(rec[k], int, "%s must be a JSON integer: %r" % (k, rec))
            recs.append(rec)
        self.assertEqual([(r["client"], r["method"], r["path"], r["status"], r["bytes"]) for r in recs],
                         [("127.0.0.1", "GET", "/health", 200, len(g.body)),
                          ("127.0.0.1", "HEAD", "/health", 200, 0),
                          ("127.0.0.1", "GET", "/nope", 404, len(n.body))])
        # "both logs": every stderr line is JSON too (incl. the listening line)
        for ln in srv.stderr_lines():
            try:
                json.loads(ln)
            except ValueError:
                self.fail("STACCATO_LOG_FORMAT=json but stderr line is not JSON: %r" % ln)

    def test_access_log_off(self):
        srv = self.start_server(env={"STACCATO_ACCESS_LOG": "off"})
        self.run_requests(srv)
        self.assertEqual(srv.stdout_lines(), [])

    def test_xff_ignored_without_trusted_proxy(self):
        srv = self.start_server()
        self.run_requests(srv, xff="203.0.113.7")
        p = self.parse_text(srv)
        self.assertEqual(len(p), 3)
        self.assertEqual({row[0] for row in p}, {"127.0.0.1"},
                         "X-Forwarded-For must be ignored when the peer is not trusted")

    def test_xff_honoured_from_trusted_proxy(self):
        srv = self.start_server(env={"STACCATO_TRUSTED_PROXIES": "127.0.0.1"})
        self.run_requests(srv, xff="203.0.113.7")
        p = self.parse_text(srv)
        self.assertEqual(len(p), 3)
        self.assertEqual({row[0] for row in p}, {"203.0.113.7"})

    def test_xff_trusted_cidr_and_chain(self):
        srv = self.start_server(env={"STACCATO_TRUSTED_PROXIES": "10.0.0.0/8,127.0.0.0/8"})
        self.run_requests(srv, xff="198.51.100.9, 10.1.2.3")
        p = self.parse_text(srv)
        self.assertEqual(len(p), 3)
        self.assertEqual({row[0] for row in p}, {"198.51.100.9"},
                         "trusted hops (10.0.0.0/8) must be skipped")


if __name__ == "__main__":
    harness.main()
