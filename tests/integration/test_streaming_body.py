#!/usr/bin/env python3
"""Streaming request bodies (routes whose handler takes the body as it arrives, like uploads), through the debug
route /_debug/upload: its sink counts bytes, pauses reading for 5 ms every 64 KiB, and rejects beyond ?limit=."""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import build_request, chunked, closed_by_server  # noqa: E402

BLOB = os.urandom(3_000_000)


class StreamingBody(harness.SharedServerCase):
    ENV = {"STACCATO_BODY_TIMEOUT_MS": "700"}

    def test_content_length_body_arrives_whole_with_pauses(self):
        c = self.conn()
        for _ in range(3):  # the connection stays usable after each upload
            r = c.request("PUT", "/_debug/upload", [("Content-Length", str(len(BLOB)))], BLOB)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["data"]["bytes"], len(BLOB))
            self.assertGreater(r.json()["data"]["pauses"], 10)
        self.assertEqual(c.request("GET", "/health").status, 200)

    def test_chunked_body_and_empty_body(self):
        c = self.conn()
        parts = [BLOB[i:i + 100_000] for i in range(0, len(BLOB), 100_000)]
        c.send(build_request("POST", "/_debug/upload", [("Transfer-Encoding", "chunked")]) + chunked(parts))
        r = c.read_response()
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["data"]["bytes"], len(BLOB))
        r = c.request("POST", "/_debug/upload", [("Content-Length", "0")], b"")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["data"]["bytes"], 0)

    def test_expect_continue_only_once_the_handler_accepts(self):
        c = self.conn()
        body = BLOB[:200_000]
        c.send(build_request("PUT", "/_debug/upload", [("Content-Length", str(len(body))),
                                                         ("Expect", "100-continue")]))
        r = c.read_response()
        self.assertEqual(r.status, 100, r)
        c.send(body)
        r = c.read_response()
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["data"]["bytes"], len(body))
        # a handler that refuses before the body: no 100, the refusal, then the connection closes
        c2 = self.conn()
        c2.send(build_request("PUT", "/_debug/upload?reject=1", [("Content-Length", str(len(body))),
                                                                   ("Expect", "100-continue")]))
        r = c2.read_response()
        self.assertEqual(r.status, 403, r)
        self.assertIn("close", r.connection_tokens())

    def test_limit_crossed_mid_body_answers_at_once(self):
        c = self.conn()
        c.send(build_request("PUT", "/_debug/upload?limit=100000", [("Content-Length", str(len(BLOB)))]))
        # send a little more than the limit and then stop: the 413 must come without the rest of the body
        c.send(BLOB[:150_000])
        r = c.read_response(timeout=5)
        self.assertEqual(r.status, 413, r)
        self.assertEqual(r.json()["status"], "fail")
        closed, _ = closed_by_server(c, 5)
        self.assertTrue(closed)

    def test_stalled_body_times_out(self):
        c = self.conn()
        c.send(build_request("PUT", "/_debug/upload", [("Content-Length", "1000")]) + b"x" * 10)
        r = c.read_response(timeout=5)
        self.assertEqual(r.status, 408, r)

    def test_client_leaving_mid_upload(self):
        for _ in range(10):
            s = self.srv.connect(timeout=3)
            s.send(build_request("PUT", "/_debug/upload", [("Content-Length", str(len(BLOB)))]) + BLOB[:300_000])
            s.close()
        time.sleep(0.2)
        c = self.conn()
        self.assertEqual(c.request("GET", "/health").status, 200)


if __name__ == "__main__":
    harness.main()
