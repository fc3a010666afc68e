#!/usr/bin/env python3
"""Memory budgets per process and per client, and progress instead of silence.

Regression tests for one finding: memory per connection had no global bound (150 stalled 1 MiB bodies took RSS
from 20 MB to 181 MB) and the body timeout measured silence, not progress (a body fed one byte every 20 s stayed
open past 41 s). Each test is named after the part of it that it pins. Real sockets only; no timings are asserted
except generous bounds against hanging.
"""

import os
import select
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import build_request, metric_value  # noqa: E402


def json_string_body(n):
    """A JSON document of exactly n bytes (a string), which /_debug/echo parses and writes back."""
    return b'"' + b"x" * (n - 2) + b'"'


class BudgetCase(harness.SharedServerCase):
    ENV = {}

    def metric(self, name):
        c = self.srv.connect()
        try:
            r = c.request("GET", "/metrics", [("Connection", "close")])
        finally:
            c.close()
        return metric_value(harness.parse_metrics(r.text()), name)


class StalledBodiesHadNoGlobalBound(BudgetCase):
    """STACCATO_MAX_BODY_MEMORY: buffered bodies together stay within the budget; beyond it 503, and the budget
    comes back when the requests end."""
    ENV = {"STACCATO_MAX_BODY_MEMORY": "1000000", "STACCATO_MIN_BODY_RATE": "0",
           "STACCATO_BODY_TIMEOUT_MS": "30000"}
    SIZE = 300000

    def stalled(self):
        c = self.conn()
        c.send(build_request("POST", "/_debug/echo", [("Content-Type", "application/json"),
                                                      ("Content-Length", str(self.SIZE))]))
        c.send(json_string_body(self.SIZE)[:10])
        return c

    def test_stalled_bodies_past_the_body_budget_get_503_and_later_ones_are_accepted(self):
        held = [self.stalled() for _ in range(3)]          # 900000 of 1000000
        for c in held:
            self.assertTrue(c.nothing_arrives(0.3), "a stalled body under the budget was answered")
        self.assertTrue(harness.wait_until(lambda: self.metric("staccato_http_body_memory_bytes") == 3 * self.SIZE,
                                           5), "body memory gauge: %r" % self.metric("staccato_http_body_memory_bytes"))

        # The fourth is answered from its headers alone (no body byte sent): 503 with Retry-After, then closed.
        fourth = self.conn()
        fourth.send(build_request("POST", "/_debug/echo", [("Content-Length", str(self.SIZE))]))
        r = self.assertLimitError(fourth, 503)
        self.assertIsNotNone(r.header("retry-after"), r)

        # A chunked body is counted as it arrives: it passes the budget after 100000 bytes.
        ch = self.conn()
        ch.send(build_request("POST", "/_debug/echo", [("Transfer-Encoding", "chunked")]))
        sent = 0
        for _ in range(10):
            if not self.send_tolerant(ch, b"%x\r\n%s\r\n" % (50000, b"z" * 50000)):
                break
            sent += 50000
            if ch.wait_readable(0.2):
                break
        self.assertGreater(sent, 50000, "a chunked body was refused before it passed the budget")
        r = self.assertLimitError(ch, 503)
        self.assertIsNotNone(r.header("retry-after"), r)

        # One of the stalled bodies completes: answered, and its share of the budget comes back.
        done = held.pop(0)
        done.send(json_string_body(self.SIZE)[10:])
        r = done.read_response(timeout=10)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["data"]["bytes"], self.SIZE)
        r = done.request("POST", "/_debug/echo", [("Content-Type", "application/json")],
                         json_string_body(self.SIZE), timeout=10)
        self.assertEqual(r.status, 200, "a body within the budget after another ended: %r" % r)

        # The others go away (client closes): their shares come back as well.
        for c in held:
            c.close()
        self.assertTrue(harness.wait_until(lambda: self.metric("staccato_http_body_memory_bytes") == 0, 5),
                        "body memory not released after the clients went: %r"
                        % self.metric("staccato_http_body_memory_bytes"))
        again = [self.stalled() for _ in range(3)]
        for c in again:
            self.assertTrue(c.nothing_arrives(0.2), "a body within the freed budget was refused")


class ConnectionsPerAddressHadNoCap(BudgetCase):
    """STACCATO_MAX_CONNECTIONS_PER_ADDRESS: the (cap+1)-th connection from one address gets 503."""
    ENV = {"STACCATO_MAX_CONNECTIONS_PER_ADDRESS": "3"}

    def test_connection_over_the_per_address_cap_gets_503(self):
        held = []
        for i in range(3):
            c = self.conn()
            self.assertEqual(c.request("GET", "/health").status, 200, "connection %d of 3" % (i + 1))
            held.append(c)
        if harness.TLS:
            with self.assertRaises(harness.TLSHandshakeError, msg="4th TLS connection from one address"):
                self.conn()
        else:
            fourth = self.conn()
            if not fourth.wait_readable(0.3):
                self.send_tolerant(fourth, build_request("GET", "/health"))
            r = self.assertLimitError(fourth, 503, timeout=3)
            self.assertIsNotNone(r.header("retry-after"), r)
        for c in held:
            self.assertEqual(c.request("GET", "/health").status, 200)
        # One goes: a new connection is accepted again (bounded retry for the close to be seen).
        held.pop(0).close()
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
        self.assertTrue(ok, "no connection accepted after one from the address closed")
        m = harness.parse_metrics(held[0].request("GET", "/metrics").text())
        self.assertGreaterEqual(metric_value(m, "staccato_http_connections_refused_per_address_total") or 0, 1)


class TrustedProxyExemptFromAddressCap(BudgetCase):
    ENV = {"STACCATO_MAX_CONNECTIONS_PER_ADDRESS": "2", "STACCATO_TRUSTED_PROXIES": "127.0.0.1"}

    def test_per_address_cap_exempts_trusted_proxies_only(self):
        held = [self.conn() for _ in range(6)]
        for i, c in enumerate(held):
            r = c.request("GET", "/health")
            self.assertEqual(r.status, 200, "connection %d from a trusted proxy: %r" % (i + 1, r))
        # Another loopback address is no proxy: capped at 2.
        others = [self.conn(source="127.0.0.2") for _ in range(2)]
        for c in others:
            self.assertEqual(c.request("GET", "/health").status, 200)
        if harness.TLS:
            with self.assertRaises(harness.TLSHandshakeError, msg="3rd TLS connection from 127.0.0.2"):
                self.conn(source="127.0.0.2")
        else:
            third = self.conn(source="127.0.0.2")
            if not third.wait_readable(0.3):
                self.send_tolerant(third, build_request("GET", "/health"))
            self.assertLimitError(third, 503, timeout=3)


class BodyTimeoutMeasuredSilenceNotProgress(BudgetCase):
    """STACCATO_MIN_BODY_RATE: a body trickled below the rate is cut off after the grace period, although it is
    never silent for as long as STACCATO_BODY_TIMEOUT_MS."""
    ENV = {"STACCATO_MIN_BODY_RATE": "1000", "STACCATO_MIN_BODY_RATE_GRACE_MS": "1000",
           "STACCATO_BODY_TIMEOUT_MS": "20000"}

    def trickle(self, path, size):
        c = self.conn()
        c.send(build_request("POST", path, [("Content-Type", "application/json"), ("Content-Length", str(size))]))
        body = json_string_body(size)
        deadline = time.monotonic() + 10                      # 10 B/s: far below 1000 B/s
        i = 0
        while time.monotonic() < deadline:
            if c.wait_readable(0.1):
                break
            if not self.send_tolerant(c, body[i:i + 1]):
                break
            i += 1
        self.assertTrue(c.wait_readable(1), "a body trickled at 10 B/s was not cut off within 10 s "
                        "(minimum 1000 B/s after 1 s)")
        self.assertLimitError(c, 408)

    def test_body_trickled_below_the_minimum_rate_gets_408(self):
        # A body above the rate is taken, although it lasts longer than the grace period.
        size = 24000
        body = json_string_body(size)
        c = self.conn()
        c.send(build_request("POST", "/_debug/echo", [("Content-Type", "application/json"),
                                                      ("Content-Length", str(size))]))
        for i in range(0, size, 2000):                        # ~20 kB/s for ~1.2 s
            c.send(body[i:i + 2000])
            time.sleep(0.1)
        r = c.read_response(timeout=5)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["data"]["bytes"], size)
        # One below it is not.
        self.trickle("/_debug/echo", 10000)

    def test_streamed_upload_trickled_below_the_minimum_rate_gets_408(self):
        self.trickle("/_debug/upload", 10000)


class GatedRoutesReadBodiesBeforeAuthenticating(BudgetCase):
    """The gate of a route runs at the end of the headers: a caller it turns away never has a body read."""

    def test_unauthenticated_post_is_answered_401_before_its_body(self):
        # Without a body the connection goes on after the 401, as before.
        c = self.conn()
        r = c.request("GET", "/playlists")
        self.assertJsonError(r, 401)
        self.assertNotIn("close", r.connection_tokens(), r)
        self.assertEqual(c.request("GET", "/health").status, 200)
        # With one, the 401 comes from the headers alone and the connection closes.
        c = self.conn()
        c.send(build_request("POST", "/playlists", [("Content-Type", "application/json"),
                                                    ("Content-Length", "60000")]))
        r = c.read_response(timeout=3)                        # no body byte was sent
        self.assertJsonError(r, 401)
        self.assertIsNotNone(r.header("www-authenticate"), r)
        self.assertClosesAfter(c, r)

    def test_bad_token_with_expect_gets_401_instead_of_100(self):
        c = self.conn()
        c.send(build_request("POST", "/playlists", [("Content-Type", "application/json"),
                                                    ("Authorization", "Bearer not.a.token"),
                                                    ("Content-Length", "60000"),
                                                    ("Expect", "100-continue")]))
        r = c.read_response(timeout=3)
        self.assertNotEqual(r.status, 100, "100 Continue sent to a caller the gate turns away")
        self.assertJsonError(r, 401)
        self.assertClosesAfter(c, r)

    def test_unauthenticated_chunked_post_is_answered_401_before_its_body(self):
        c = self.conn()
        c.send(build_request("POST", "/collaborations", [("Content-Type", "application/json"),
                                                         ("Transfer-Encoding", "chunked")]))
        r = c.read_response(timeout=3)
        self.assertJsonError(r, 401)
        self.assertClosesAfter(c, r)

class JsonRoutesTookMegabyteBodies(BudgetCase):
    """STACCATO_MAX_JSON_BODY_BYTES (64 KiB) for the API's JSON routes; the debug echo keeps the general limit."""

    def test_70k_json_body_to_a_json_route_gets_413_while_echo_takes_it(self):
        body = json_string_body(70 * 1024)
        c = self.conn()
        c.send(build_request("POST", "/authentications", [("Content-Type", "application/json"),
                                                          ("Content-Length", str(len(body)))]))
        self.assertLimitError(c, 413, timeout=3)              # answered before the body is sent
        c = self.conn()
        r = c.request("POST", "/_debug/echo", [("Content-Type", "application/json")], body)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["data"]["bytes"], len(body))


class OutputForSlowReadersHadNoGlobalBound(BudgetCase):
    """STACCATO_MAX_OUTPUT_MEMORY: over it, a connection with output still queued stops reading requests; others
    are served."""
    BUDGET = 262144
    ENV = {"STACCATO_MAX_OUTPUT_MEMORY": str(BUDGET), "STACCATO_MAX_WRITE_BUFFER": str(64 << 20),
           "STACCATO_SEND_TIMEOUT_MS": "30000", "STACCATO_DRAIN_TIMEOUT_MS": "2000"}
    BODY = json_string_body(16384)

    def flood(self, limit):
        """A client that never reads pipelines echo requests (about as large as their answers) until the server
        stops reading it (its sends stall for 0.5 s) or limit bytes went. Returns (client, stalled, sent)."""
        a = self.conn(rcvbuf=4096)
        a.sock.setblocking(False)
        one = build_request("POST", "/_debug/echo", [("Content-Type", "application/json")], self.BODY)
        pending = memoryview(a.wire(one * 64))
        sent = 0
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and sent < limit:
            _, w, _ = select.select([], [a.sock], [], 0.5)
            if not w:
                return a, True, sent
            try:
                n = a.sock.send(pending)
            except BlockingIOError:
                continue
            except (BrokenPipeError, ConnectionResetError) as e:
                self.fail("server closed a client that does not read (%s after %d bytes)" % (e, sent))
            sent += n
            pending = pending[n:]
            if not len(pending):
                pending = memoryview(a.wire(one * 64))
        return a, False, sent

    def test_output_budget_stops_reading_from_slow_readers_without_breaking_others(self):
        # Without the budget the server would read this client until 64 MiB of answers were queued for it.
        a, stalled, sent = self.flood(40 << 20)
        self.assertTrue(stalled, "server kept reading a client that never reads (%d bytes sent; output budget "
                        "%d, write buffer 64 MiB)" % (sent, self.BUDGET))
        slack = 4 * len(self.BODY) + 8192                     # the answer that crossed the budget, and headers
        queued = self.metric("staccato_http_output_memory_bytes")
        self.assertIsNotNone(queued)
        self.assertLessEqual(queued, self.BUDGET + slack, "output queued past the budget")
        # A second slow reader, while the total is over the budget, is stopped after its first queued answer.
        c, stalled, sent = self.flood(40 << 20)
        self.assertTrue(stalled, "a second non-reading client was read on (%d bytes)" % sent)
        queued = self.metric("staccato_http_output_memory_bytes")
        self.assertLessEqual(queued, self.BUDGET + 2 * slack, "output queued past the budget")
        # Clients that read are served meanwhile, one request or many.
        b = self.conn()
        self.assertEqual(b.request("GET", "/health", timeout=5).status, 200)
        r = b.request("POST", "/_debug/echo", [("Content-Type", "application/json")], self.BODY, timeout=5)
        self.assertEqual(r.status, 200, r)
        rs, err = harness.pipeline_all(b, [("GET", "/health")] * 200, timeout=10)
        self.assertIsNone(err, "a reading client's pipeline stalled: %r" % err)
        # The slow readers go: their output is given back.
        a.close()
        c.close()
        self.assertTrue(harness.wait_until(lambda: self.metric("staccato_http_output_memory_bytes") == 0, 5),
                        "output memory not released: %r" % self.metric("staccato_http_output_memory_bytes"))


if __name__ == "__main__":
    harness.main()
