#!/usr/bin/env python3
"""Request limits, timeouts, connection shedding and write backpressure."""

import os
import select
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import build_request, chunked, closed_by_server, metric_value  # noqa: E402


class LimitCase(harness.SharedServerCase):
    ENV = {}


class HeaderAndUrlLimits(LimitCase):
    ENV = {"STACCATO_MAX_HEADER_BYTES": "1024", "STACCATO_MAX_HEADERS": "10",
           "STACCATO_MAX_URL_BYTES": "256"}

    def test_under_limits_ok(self):
        c = self.conn()
        hdrs = [("X-H%d" % i, "v" * 50) for i in range(6)]   # 7 headers with Host, ~380 bytes
        r = c.request("GET", "/health?pad=" + "a" * 150, hdrs)
        self.assertEqual(r.status, 200, r)

    def test_boundaries_exactly_at_limits(self):
        c = self.conn()
        # exactly 10 header fields (Host + 9)
        r = c.request("GET", "/health", [("X-N%d" % i, "1") for i in range(9)])
        self.assertEqual(r.status, 200, "10 headers with STACCATO_MAX_HEADERS=10: %r" % r)
        # names+values totalling exactly 1024 bytes: Host(4)+"127.0.0.1"(9) + X-Fill(6)+value
        r = c.request("GET", "/health", [("X-Fill", "f" * (1024 - 13 - 6))])
        self.assertEqual(r.status, 200, "header bytes == 1024 with STACCATO_MAX_HEADER_BYTES=1024: %r" % r)
        # request-target of exactly 256 bytes
        t = "/health?pad="
        r = c.request("GET", t + "a" * (256 - len(t)))
        self.assertEqual(r.status, 200, "256-byte target with STACCATO_MAX_URL_BYTES=256: %r" % r)

    def test_just_over_limits(self):
        c = self.conn()
        c.send(build_request("GET", "/health", [("X-N%d" % i, "1") for i in range(10)]))
        self.assertLimitError(c, 431)
        c = self.conn()
        c.send(build_request("GET", "/health", [("X-Fill", "f" * (1024 - 13 - 6 + 1))]))
        self.assertLimitError(c, 431)
        c = self.conn()
        t = "/health?pad="
        c.send(build_request("GET", t + "a" * (257 - len(t))))
        self.assertLimitError(c, 414)

    def test_431_head_has_no_body(self):
        # HEAD responses never carry a body, error or not (spec: HEAD ... no body)
        c = self.conn()
        c.send(build_request("HEAD", "/health", [("X-N%d" % i, "1") for i in range(20)]))
        r = c.read_response(method="HEAD", timeout=5)
        self.assertEqual(r.status, 431, r)
        self.assertIsNotNone(r.header("content-length"))
        self.assertIn("close", r.connection_tokens())
        extra, closed = c.read_until_eof(3)
        self.assertEqual(extra, b"", "HEAD 431 response carries a body: %r" % extra[:200])
        self.assertTrue(closed)

    def test_431_one_big_header(self):
        c = self.conn()
        c.send(build_request("GET", "/health", [("X-Big", "a" * 2000)]))
        self.assertLimitError(c, 431)

    def test_431_total_header_bytes(self):
        # 9 headers (under the count limit) of ~157 bytes each: only the total crosses 1024
        c = self.conn()
        c.send(build_request("GET", "/health", [("X-Part%d" % i, "b" * 150) for i in range(8)]))
        self.assertLimitError(c, 431)

    def test_431_too_many_headers(self):
        c = self.conn()
        c.send(build_request("GET", "/health", [("X-N%d" % i, "1") for i in range(20)]))
        self.assertLimitError(c, 431)

    def test_431_after_good_request_on_same_connection(self):
        c = self.conn()
        self.assertEqual(c.request("GET", "/health").status, 200)
        c.send(build_request("GET", "/health", [("X-N%d" % i, "1") for i in range(20)]))
        self.assertLimitError(c, 431)

    def test_414_long_url(self):
        c = self.conn()
        c.send(build_request("GET", "/health?pad=" + "a" * 400))
        self.assertLimitError(c, 414)

    def test_414_long_path(self):
        c = self.conn()
        c.send(build_request("GET", "/" + "p" * 1000))
        self.assertLimitError(c, 414)


class BodyLimits(LimitCase):
    ENV = {"STACCATO_MAX_BODY_BYTES": "1000"}

    def test_body_at_limit_ok(self):
        body = b'{"a":"' + b"x" * (1000 - 8) + b'"}'
        self.assertEqual(len(body), 1000)
        c = self.conn()
        r = c.request("POST", "/_debug/echo", [("Content-Type", "application/json")], body)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["data"]["bytes"], 1000)

    def test_413_content_length_answered_before_body(self):
        c = self.conn()
        c.send(build_request("POST", "/_debug/echo", [("Content-Length", "1001")]))
        # the body is never sent: the server must answer from the header alone
        self.assertLimitError(c, 413, timeout=3)

    def test_413_huge_content_length(self):
        c = self.conn()
        c.send(build_request("POST", "/_debug/echo", [("Content-Length", "10000000000")]))
        self.assertLimitError(c, 413, timeout=3)

    def test_413_with_expect_no_100(self):
        c = self.conn()
        c.send(build_request("POST", "/_debug/echo", [("Content-Length", "100000"),
                                                      ("Expect", "100-continue")]))
        r = c.read_response(timeout=3)
        self.assertNotEqual(r.status, 100, "100 Continue sent for a body that is over the limit")
        self.assertJsonError(r, 413)
        self.assertClosesAfter(c, r)

    def test_chunked_under_limit_ok(self):
        c = self.conn()
        parts = [b"[" + b"1," * 149, b"2," * 150, b"3," * 149 + b"3]"]
        total = sum(len(p) for p in parts)
        self.assertLess(total, 1000)
        c.send(build_request("POST", "/_debug/echo", [("Transfer-Encoding", "chunked")]) + chunked(parts))
        r = c.read_response()
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["data"]["bytes"], total)

    def test_413_chunked_crossing_limit(self):
        c = self.conn()
        c.send(build_request("POST", "/_debug/echo", [("Transfer-Encoding", "chunked")]))
        sent = 0
        for _ in range(20):                      # at most 20 * 300 bytes, never terminated
            if not self.send_tolerant(c, b"12c\r\n" + b"z" * 300 + b"\r\n"):
                break
            sent += 300
            if c.wait_readable(0.05):
                break
        self.assertGreater(sent, 1000, "server answered 413 before the limit was crossed")
        r = c.read_response(timeout=3)
        self.assertJsonError(r, 413)
        self.assertClosesAfter(c, r)


class Timeouts(LimitCase):
    ENV = {"STACCATO_HEADER_TIMEOUT_MS": "500", "STACCATO_BODY_TIMEOUT_MS": "400",
           "STACCATO_KEEPALIVE_TIMEOUT_MS": "5000"}

    def test_408_stalled_headers(self):
        c = self.conn()
        c.send(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        self.assertTrue(c.wait_readable(4), "no 408 within 4s with a 500ms header timeout")
        self.assertLimitError(c, 408)

    def test_408_slowloris_absolute_deadline(self):
        # One byte every 100ms: every gap is far below the 500ms header timeout, but the
        # deadline runs from the first byte, so the server must cut this off.
        c = self.conn()
        c.send(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        answered = False
        for _ in range(40):                      # up to ~4 s of trickling
            if c.wait_readable(0.1):
                answered = True
                break
            try:
                c.send(b"a")
            except (BrokenPipeError, ConnectionResetError):
                answered = True
                break
        self.assertTrue(answered, "slowloris trickle (1 byte/100ms) was not cut off within ~4s "
                        "with STACCATO_HEADER_TIMEOUT_MS=500")
        self.assertLimitError(c, 408)

    def test_idle_keepalive_not_subject_to_header_timeout(self):
        c = self.conn()
        self.assertEqual(c.request("GET", "/health").status, 200)
        time.sleep(0.9)                           # idle > header timeout, < keep-alive timeout
        r = c.request("GET", "/health")
        self.assertEqual(r.status, 200, r)

    def test_408_stalled_body(self):
        c = self.conn()
        c.send(build_request("POST", "/_debug/echo", [("Content-Length", "100")]) + b'{"a":"xxxx')
        self.assertTrue(c.wait_readable(4), "no 408 within 4s with a 400ms body timeout")
        self.assertLimitError(c, 408)

    def test_slow_but_steady_body_ok(self):
        # body timeout is "max time WITHOUT receiving body bytes": a body trickled with
        # gaps well under it must be accepted even if it takes longer in total.
        c = self.conn()
        body = b'{"slow":"' + b"s" * 16 + b'"}'
        c.send(build_request("POST", "/_debug/echo", [("Content-Length", str(len(body)))]))
        for i in range(len(body)):                # 27 bytes * 40ms ~ 1.1 s > 400 ms
            c.send(body[i:i + 1])
            time.sleep(0.04)
        r = c.read_response()
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["data"]["bytes"], len(body))


class KeepAliveTimeout(LimitCase):
    ENV = {"STACCATO_KEEPALIVE_TIMEOUT_MS": "500", "STACCATO_HEADER_TIMEOUT_MS": "500"}

    def test_idle_keepalive_closed_silently(self):
        c = self.conn()
        r = c.request("GET", "/health")
        self.assertEqual(r.status, 200)
        self.assertNotIn("close", r.connection_tokens())
        closed, extra = closed_by_server(c, 4)
        self.assertTrue(closed, "idle keep-alive connection not closed within 4s (timeout 500ms)")
        self.assertEqual(extra, b"", "idle keep-alive close must be silent, got %r" % extra[:200])

    def test_silent_new_connection_closed(self):
        c = self.conn()
        closed, extra = closed_by_server(c, 4)
        self.assertTrue(closed, "a connection that never sends anything is never closed")

    def test_active_connection_not_closed(self):
        c = self.conn()
        for _ in range(10):                       # ~1 s of activity, gaps well under 500ms
            self.assertEqual(c.request("GET", "/health").status, 200)
            time.sleep(0.1)


class MaxConnections(LimitCase):
    ENV = {"STACCATO_MAX_CONNECTIONS": "5"}

    def test_shed_over_max_connections(self):
        held = []
        for i in range(5):
            c = self.conn()
            r = c.request("GET", "/health")
            self.assertEqual(r.status, 200, "connection %d of 5: %r" % (i + 1, r))
            held.append(c)
        # 6th: 503 JSON + Connection: close. Read first (the server may answer at accept).
        if harness.TLS:
            # Over TLS there is no HTTP before a handshake, which is what shedding saves: closed at once.
            with self.assertRaises(harness.TLSHandshakeError, msg="6th TLS connection over the limit"):
                self.conn()
        else:
            sixth = self.conn()
            if not sixth.wait_readable(0.3):
                self.send_tolerant(sixth, build_request("GET", "/health"))
            r = sixth.read_response(timeout=3)
            self.assertJsonError(r, 503)
            self.assertClosesAfter(sixth, r)
        # the held ones still work
        for c in held:
            self.assertEqual(c.request("GET", "/health").status, 200)
        # free two slots -> the server accepts again (bounded retry for the close to be seen)
        held[0].close()
        held[1].close()
        deadline = time.monotonic() + 5
        ok = False
        while time.monotonic() < deadline:
            r, c = self.try_health()
            if r is not None and r.status == 200:
                ok = True
                self.addCleanup(c.close)
                held.append(c)
                break
            if c is not None:
                c.close()
            time.sleep(0.1)
        self.assertTrue(ok, "server did not accept again after connections were closed")
        for c in held[2:]:
            self.assertEqual(c.request("GET", "/health").status, 200)
        # the shed is counted
        m = harness.parse_metrics(held[2].request("GET", "/metrics").text())
        self.assertGreaterEqual(metric_value(m, "staccato_http_connections_shed_total") or 0, 1)


class Backpressure(LimitCase):
    ENV = {"STACCATO_SEND_TIMEOUT_MS": "2500", "STACCATO_MAX_WRITE_BUFFER": "65536",
           "STACCATO_DRAIN_TIMEOUT_MS": "2000"}

    def test_reading_client_deep_pipeline_all_answered(self):
        # Output above STACCATO_MAX_WRITE_BUFFER pauses reading, but once the client drains
        # it the server must resume: every pipelined request gets its response.
        c = self.conn()
        n = 2000
        rs, err = harness.pipeline_all(c, [("GET", "/metrics")] * n)
        self.assertIsNone(err, "pipeline of %d GET /metrics stalled after %d responses "
                          "(client reading everything): %r" % (n, len(rs), err))
        self.assertEqual([r.status for r in rs], [200] * n)

    def open_connections(self):
        c = self.srv.connect()
        try:
            r = c.request("GET", "/metrics", [("Connection", "close")])
        finally:
            c.close()
        return metric_value(harness.parse_metrics(r.text()), "staccato_http_open_connections")

    def test_non_reading_client_is_paused_and_closed(self):
        baseline = self.open_connections()       # normally 1: the metrics connection itself
        a = self.conn(rcvbuf=4096)
        a.sock.setblocking(False)
        one = build_request("GET", "/metrics")
        batch = one * 200
        sent = 0
        # Raw sends on the socket; over TLS each batch is encrypted when it is due (a.wire).
        stalled = False
        deadline = time.monotonic() + 20
        limit = 64 << 20
        pending = memoryview(a.wire(batch))
        while time.monotonic() < deadline and sent < limit:
            _, w, _ = select.select([], [a.sock], [], 0.5)
            if not w:
                stalled = True               # server stopped reading: our send buffer is full
                break
            try:
                n = a.sock.send(pending)
            except BlockingIOError:
                continue
            except (BrokenPipeError, ConnectionResetError) as e:
                self.fail("server closed the connection before it stopped reading it for 0.5s "
                          "(send timeout 2.5s; %s after %d bytes)" % (e, sent))
            sent += n
            pending = pending[n:]
            if not len(pending):
                pending = memoryview(a.wire(batch))
        self.assertTrue(stalled, "server kept reading a client that never reads (sent %d bytes)" % sent)
        requests_sent = sent // len(one)

        # another client is still served promptly
        b = self.srv.connect()
        r = b.request("GET", "/health", [("Connection", "close")], timeout=5)
        self.assertEqual(r.status, 200)
        b.close()

        # after STACCATO_SEND_TIMEOUT_MS the stuck client is closed (gauge back to just us)
        closed = harness.wait_until(lambda: self.open_connections() <= baseline, 7.5, 0.2)
        self.assertTrue(closed, "non-reading client still open well after the send timeout "
                        "(open_connections=%r, %r before it connected)"
                        % (self.open_connections(), baseline))
        # draining it now ends in EOF/RST, without all the requests having been answered
        a.sock.setblocking(True)
        a.sock.settimeout(5)
        got = 0
        responses = 0
        tail = b""
        ended = False
        t_end = time.monotonic() + 10
        while time.monotonic() < t_end:
            try:
                d = a.recv_some(1 << 20)
            except (ConnectionResetError, BrokenPipeError):
                ended = True
                break
            except socket.timeout:
                break
            if not d:
                ended = True
                break
            got += len(d)
            responses += (tail + d).count(b"HTTP/1.1 200")
            tail = d[-11:]                     # len("HTTP/1.1 200") - 1: no double count
        self.assertTrue(ended, "stuck client's connection was not closed by the server")
        self.assertLess(responses, requests_sent, "all %d pipelined requests were answered; expected "
                        "the connection to be cut" % requests_sent)


if __name__ == "__main__":
    harness.main()
