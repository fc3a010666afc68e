#!/usr/bin/env python3
"""Request framing is unambiguous (RFC 9112 sections 2.2, 5, 6 and 7; we sit behind reverse proxies).

Every vector here is a way in which two HTTP parsers (a front end and this server) can disagree about where a
request ends, which lets a client hide a second request inside the first ("request smuggling"). The server must
answer each with one 400 (or 501 for a transfer coding it does not implement) and close the connection, so that
nothing after the bad bytes is ever taken as a request.

Regression: llhttp was built without strict mode, so a bare CR ended a header block, any two bytes after chunk
data were taken as its CRLF, obs-fold was folded into the previous header, and "identity, chunked" was accepted.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

SMUGGLED = b"GET /health HTTP/1.1\r\nHost: a\r\n\r\n"

# name -> (raw bytes sent, statuses accepted)
VECTORS = {
    # A bare CR followed by any byte ended the header block: the rest became a second request.
    "bare_cr_ends_headers": (b"GET /health HTTP/1.1\r\nHost: a\r\n\rX" + SMUGGLED, {400}),
    "bare_cr_in_header_line": (b"GET /health HTTP/1.1\r\nHost: a\rX: y\r\n\r\n" + SMUGGLED, {400}),
    "bare_lf_line_end": (b"GET /health HTTP/1.1\nHost: a\n\n" + SMUGGLED, {400}),
    # After chunk data any two bytes were taken as the CRLF: "\n5" ended the chunk here, while a front end that
    # accepts a bare LF reads a 0x50-byte chunk and takes the GET as body.
    "chunk_data_without_crlf": (b"POST /_debug/echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                                b"2\r\n{}\n50\r\n\r\n" + SMUGGLED, {400}),
    "chunk_data_other_bytes": (b"POST /_debug/echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                               b"2\r\n{}XX0\r\n\r\n" + SMUGGLED, {400}),
    "chunk_size_bare_lf": (b"POST /_debug/echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                           b"2\n{}\r\n0\r\n\r\n" + SMUGGLED, {400}),
    # obs-fold (RFC 9112 section 5.2): "X: y\r\n Content-Length: 43" was folded into X.
    "obs_fold_space": (b"POST /_debug/echo HTTP/1.1\r\nHost: a\r\nX: y\r\n Content-Length: 43\r\n\r\n" + SMUGGLED,
                       {400}),
    "obs_fold_tab": (b"GET /health HTTP/1.1\r\nHost: a\r\nX: y\r\n\tTransfer-Encoding: chunked\r\n\r\n" + SMUGGLED,
                     {400}),
    # Transfer-Encoding is accepted only as exactly "chunked".
    "te_identity_chunked": (b"POST /_debug/echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity, chunked\r\n\r\n"
                            b"0\r\n\r\n" + SMUGGLED, {400, 501}),
    "te_chunked_identity": (b"POST /_debug/echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n"
                            b"0\r\n\r\n" + SMUGGLED, {400, 501}),
    "te_gzip_chunked": (b"POST /_debug/echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
                        b"0\r\n\r\n" + SMUGGLED, {400, 501}),
    "te_chunked_twice": (b"POST /_debug/echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"
                         b"0\r\n\r\n" + SMUGGLED, {400, 501}),
    # TE.TE: two Transfer-Encoding fields, one of which a front end may ignore.
    "te_te_two_fields": (b"POST /_debug/echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                         b"Transfer-Encoding: x\r\n\r\n0\r\n\r\n" + SMUGGLED, {400, 501}),
    "te_te_same_twice": (b"POST /_debug/echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED, {400, 501}),
    "te_vertical_tab": (b"POST /_debug/echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \x0bchunked\r\n\r\n"
                        b"0\r\n\r\n" + SMUGGLED, {400, 501}),
    "te_value_trailing_junk": (b"POST /_debug/echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunkedx\r\n\r\n"
                               b"0\r\n\r\n" + SMUGGLED, {400, 501}),
    "te_space_before_colon": (b"POST /_debug/echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n"
                              b"0\r\n\r\n" + SMUGGLED, {400}),
    # CL.TE and TE.CL: both framings in one request.
    "cl_te": (b"POST /_debug/echo HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"0\r\n\r\n" + SMUGGLED, {400}),
    "te_cl": (b"POST /_debug/echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"
              b"0\r\n\r\n" + SMUGGLED, {400}),
    # Two Content-Length fields (equal or not), or a list in one.
    "duplicate_cl_differ": (b"POST /_debug/echo HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nContent-Length: 40\r\n"
                            b"\r\n{}" + SMUGGLED, {400}),
    "duplicate_cl_equal": (b"POST /_debug/echo HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nContent-Length: 2\r\n"
                           b"\r\n{}" + SMUGGLED, {400}),
    "cl_list": (b"POST /_debug/echo HTTP/1.1\r\nHost: a\r\nContent-Length: 2, 2\r\n\r\n{}" + SMUGGLED, {400}),
    "cl_plus_sign": (b"POST /_debug/echo HTTP/1.1\r\nHost: a\r\nContent-Length: +2\r\n\r\n{}" + SMUGGLED, {400}),
    "space_before_colon": (b"POST /_debug/echo HTTP/1.1\r\nHost: a\r\nContent-Length : 2\r\n\r\n{}" + SMUGGLED,
                           {400}),
    # Control bytes inside a header value.
    "nul_in_value": (b"GET /health HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n" + SMUGGLED, {400}),
    "cr_in_value": (b"GET /health HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n" + SMUGGLED, {400}),
    "del_in_name": (b"GET /health HTTP/1.1\r\nHost: a\r\nX\x7f: a\r\n\r\n" + SMUGGLED, {400}),
}


class Smuggling(harness.SharedServerCase):
    """One server with the debug routes (/_debug/echo reads a body); each vector on a fresh connection."""

    ENV = {"STACCATO_DEBUG_ROUTES": "on"}

    def check_vector(self, name):
        data, statuses = VECTORS[name]
        c = self.conn()
        c.send(data)
        r = c.read_response()
        self.assertIn(r.status, statuses, "%s: %r" % (name, r))
        self.assertIn("close", r.connection_tokens(), "%s: the connection must close after %r" % (name, r))
        rest, closed = c.read_until_eof(timeout=3.0)
        self.assertTrue(closed, "%s: the server kept the connection open" % name)
        self.assertNotIn(b"HTTP/1.1", rest, "%s: a smuggled request was answered: %r" % (name, rest))

    def test_well_framed_requests_still_work(self):
        """The same shapes, well framed, are answered and keep the connection."""
        c = self.conn()
        r = c.request("POST", "/_debug/echo", [("Transfer-Encoding", "chunked")], harness.chunked([b"{}"]))
        self.assertEqual(r.status, 200, r)
        r = c.request("POST", "/_debug/echo", [("Content-Length", "2")], b"{}")
        self.assertEqual(r.status, 200, r)
        r = c.request("GET", "/health", [("X", "a\tb c")])
        self.assertEqual(r.status, 200, r)


def _make(name):
    return lambda self: self.check_vector(name)


for _name in VECTORS:
    setattr(Smuggling, "test_" + _name, _make(_name))


if __name__ == "__main__":
    harness.main()
