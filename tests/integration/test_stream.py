#!/usr/bin/env python3
"""Media streaming: GET|HEAD /songs/{id}/stream, GET /songs/{id}/stream-url and
GET|HEAD /albums/{id}/cover.

Byte-exact checks of every Range form against the file on disk (single, open,
suffix, past the end, several ranges as multipart/byteranges parsed back part by
part, merged and ignored ones), 416 with `bytes */LEN`, the conditional headers
(If-None-Match exact/list/*/weak, If-Modified-Since, If-Match, If-Range with an
ETag or a date), HEAD answering exactly GET's headers; who may stream (public,
private, flagged songs; owner, admin, stranger, anonymous; signed URLs that are
valid, expired, tampered or for another song); covers; and the file handling:
a 20 MB stream whose file is deleted or replaced mid-way still completes
byte-exact, a slow reader does not stall other clients, clients that vanish
while their file is being opened leave the server healthy. ffprobe reads a real
MP3 and WAV through a signed URL with seeks, and strace shows the server
sending with sendfile(2).

Decisions pinned here (documented in src/api/stream.c): a bad or expired signed
URL is a 403; public resources are "public, max-age=3600", the rest
"private, max-age=0"; a 416 has an empty body.

Media are made the way uploads store them: a file named by its sha256 under
STACCATO_MEDIA_DIR/<sha256[0:2]>/, a media_files row, and songs.audio_media_id
or albums.cover_media_id set through psql. The file runs its own PostgreSQL +
Redis (deps/services.sh, SERVICES_EPHEMERAL=1) and one server.
"""

import base64
import hashlib
import hmac
import itertools
import json
import os
import random
import re
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from urllib.parse import urlparse, parse_qs

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import request  # noqa: E402

ACCESS_KEY = "itest-stream-access-key-0123456789abcdef"    # 40+ characters
REFRESH_KEY = "itest-stream-refresh-key-0123456789abcdef"  # different
CHEAP_HASH = {"STACCATO_ARGON2_M_KIB": "1024", "STACCATO_ARGON2_T": "1"}
FIXTURE = harness.ModuleFixture("staccato-stream-", check_sanitizers=True)

PUBLIC_CACHE = "public, max-age=3600"
PRIVATE_CACHE = "private, max-age=0"
CREATED_AT = "2024-03-01 12:34:56.789+00"        # media_files.created_at of every file made here
LAST_MODIFIED = "Fri, 01 Mar 2024 12:34:56 GMT"  # ... as Last-Modified (whole seconds)
BIG = 20 * 1024 * 1024

SVC = None     # harness.Services
SRV = None     # the server
MEDIA = None   # its STACCATO_MEDIA_DIR
U = {}         # owner (artist), other (artist), admin, user -> {"id", "token"}
DATA = None    # bytes of the shared public song
SONG = None    # its id
SHA = None     # its sha256


# ---------------------------------------------------------------------------
# module setup
# ---------------------------------------------------------------------------

_seq = itertools.count(1)


def uniq(prefix):
    return "%s%d%s" % (prefix, next(_seq), "".join(random.choice(string.ascii_lowercase) for _ in range(6)))


def bearer(who):
    return harness.bearer(U[who]["token"] if who else None)


def register(role):
    return harness.account(SRV.port, uniq("st_" + role + "_"), "secret-password-1", "Stream " + role, role, SVC)


def setUpModule():
    global SVC, SRV, MEDIA, DATA, SONG, SHA
    with FIXTURE.setting_up():
        media = FIXTURE.tempdir("staccato-media-")
        SVC = FIXTURE.start_services()
        MEDIA = os.path.join(media, "m")  # the directory itself is made by the first file
        SRV = FIXTURE.server("main", FIXTURE.env(ACCESS_TOKEN_KEY=ACCESS_KEY, REFRESH_TOKEN_KEY=REFRESH_KEY,
                                                 STACCATO_MEDIA_DIR=MEDIA, STACCATO_LOG_FORMAT="json",
                                                 STACCATO_ACCESS_LOG="on", **CHEAP_HASH))
        for role in ("owner", "other", "admin", "user"):
            U[role] = register({"owner": "artist", "other": "artist"}.get(role, role))
        DATA = random.Random(7).randbytes(100003)
        SONG = make_song("owner")
        SHA = attach_audio(SONG, DATA)


tearDownModule = FIXTURE.tear_down


# ---------------------------------------------------------------------------
# media and catalog helpers
# ---------------------------------------------------------------------------

def media_path(sha):
    return os.path.join(MEDIA, sha[:2], sha)


def write_media_file(data):
    sha = hashlib.sha256(data).hexdigest()
    d = os.path.join(MEDIA, sha[:2])
    os.makedirs(d, exist_ok=True)
    tmp = os.path.join(d, sha + ".tmp%d" % next(_seq))
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, media_path(sha))
    return sha


def add_media(data, mime, link, kind="audio"):
    """Writes the file as uploads do, then inserts its media_files row and points a song or album at it in one
    statement; returns (media id, sha256). link is the UPDATE with %(media)s for the new id.

    Regression: the row and its link were two psql sessions, and a server starting in between (its startup sweep
    deletes unreferenced media_files rows older than the grace period, and CREATED_AT is long past) removed the
    row, so the UPDATE then failed on the foreign key. In one statement the sweep sees both or neither."""
    sha = write_media_file(data)
    mid = uniq("media-")
    change("WITH media AS (INSERT INTO media_files (id, kind, sha256, path, mime, size, created_at) VALUES "
           "('%s', '%s', '%s', '%s/%s', '%s', %d, '%s') RETURNING id) " % (mid, kind, sha, sha[:2], sha, mime,
                                                                          len(data), CREATED_AT)
           + link % {"media": "(SELECT id FROM media)"})
    return mid, sha


def notifications():
    return sum(v for name, _, v in SRV.metrics() if name == "staccato_media_cache_notifications_total")


def change(sql):
    """Runs one statement that changes one song or album row through psql (another process, like an admin's
    session) and waits until the server has heard of it, so that no cached state of the row outlives the call."""
    before = notifications()
    SVC.psql(sql)
    harness.wait_until(lambda: notifications() > before, 10, interval=0.02)
    if notifications() <= before:
        raise AssertionError("no change notification for: " + sql)


def make_song(owner, visibility="public"):
    st, _, j = request(SRV.port, "POST", "/songs", {"title": uniq("Song "), "year": 2020, "performer": "P",
                                                     "genre": "Pop"}, headers=bearer(owner))
    if st != 201:
        raise AssertionError("creating a song: %d %r" % (st, j))
    sid = j["data"]["songId"]
    if visibility != "public":
        change("UPDATE songs SET visibility = '%s' WHERE id = '%s'" % (visibility, sid))
    return sid


def attach_audio(song, data, mime="audio/mpeg"):
    _, sha = add_media(data, mime, "UPDATE songs SET audio_media_id = %%(media)s, audio_mime = '%s', audio_size = %d "
                                   "WHERE id = '%s'" % (mime, len(data), song))
    return sha


def make_album(owner):
    st, _, j = request(SRV.port, "POST", "/albums", {"name": uniq("Album "), "year": 2021}, headers=bearer(owner))
    if st != 201:
        raise AssertionError("creating an album: %d %r" % (st, j))
    return j["data"]["albumId"]


def attach_cover(album, data, mime="image/png"):
    _, sha = add_media(data, mime, "UPDATE albums SET cover_media_id = %%(media)s WHERE id = '%s'" % album,
                       kind="cover")
    return sha


def fake_png(n, seed):
    return b"\x89PNG\r\n\x1a\n" + random.Random(seed).randbytes(n - 8)


def get(path, headers=None, method="GET", who=None):
    """One raw request on a fresh connection; returns a harness.Response."""
    h = list((headers or {}).items()) if isinstance(headers, dict) else list(headers or [])
    h += list(bearer(who).items())
    c = harness.Conn(SRV.port, timeout=15)
    try:
        return c.request(method, path, headers=h, timeout=15)
    finally:
        c.close()


def stream_path(song):
    return "/songs/%s/stream" % song


def url_mac(song, expires):
    """The signature the server makes (src/api/auth.c sc_api_auth_url_mac), for crafting URLs."""
    key = hmac.new(ACCESS_KEY.encode(), b"staccato signed URL v1", hashlib.sha256).digest()
    mac = hmac.new(key, ("%s:%s" % (song, expires)).encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def parse_byteranges(testcase, resp, data, mime):
    """Parses a multipart/byteranges body exactly; checks each part against data. Returns [(first, last)]."""
    m = re.match(r"^multipart/byteranges; boundary=([0-9A-Za-z'()+_,./:=?-]{1,70})$", resp.header("content-type"))
    testcase.assertIsNotNone(m, resp.header("content-type"))
    delim = b"--" + m.group(1).encode()
    body, pos, got = resp.body, 0, []
    while True:
        testcase.assertEqual(body[pos:pos + len(delim)], delim, "delimiter at %d" % pos)
        pos += len(delim)
        if body[pos:pos + 2] == b"--":
            testcase.assertEqual(body[pos + 2:], b"\r\n", "after the close delimiter")
            break
        testcase.assertEqual(body[pos:pos + 2], b"\r\n")
        pos += 2
        end = body.index(b"\r\n\r\n", pos)
        headers = {}
        for line in body[pos:end].split(b"\r\n"):
            k, v = line.split(b":", 1)
            headers[k.strip().lower().decode()] = v.strip().decode()
        pos = end + 4
        testcase.assertEqual(set(headers), {"content-type", "content-range"})
        testcase.assertEqual(headers["content-type"], mime)
        cr = re.match(r"^bytes (\d+)-(\d+)/(\d+)$", headers["content-range"])
        testcase.assertIsNotNone(cr, headers)
        first, last, total = (int(x) for x in cr.groups())
        testcase.assertEqual(total, len(data))
        testcase.assertEqual(body[pos:pos + last - first + 1], data[first:last + 1], "part %d-%d" % (first, last))
        pos += last - first + 1
        got.append((first, last))
        testcase.assertEqual(body[pos:pos + 2], b"\r\n", "CRLF before the next delimiter")
        pos += 2
    return got


class RawStream:
    """A GET whose body is read piece by piece (to act while it streams)."""

    def __init__(self, path, headers=(), rcvbuf=None, timeout=15):
        # harness.Conn: over TLS in the harness's TLS mode; recv_some reads like sock.recv
        self.conn = harness.Conn(SRV.port, rcvbuf=rcvbuf, timeout=timeout)
        self.sock = self.conn.sock
        self.conn.send(harness.build_request("GET", path, list(headers)))
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = self.conn.recv_some(4096)
            if not chunk:
                raise AssertionError("connection closed before the headers: %r" % buf)
            buf += chunk
        head, self.pending = buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:])}
        self.length = int(self.headers["content-length"])
        self.received = 0

    def read(self, n):
        if self.pending:
            out, self.pending = self.pending[:n], self.pending[n:]
        else:
            out = self.conn.recv_some(min(n, self.length - self.received))
            if not out:
                raise AssertionError("connection closed after %d of %d body bytes" % (self.received, self.length))
        self.received += len(out)
        return out

    def read_rest(self):
        parts = []
        while self.received < self.length:
            parts.append(self.read(1 << 20))
        return b"".join(parts)

    def close(self):
        self.conn.close()


class StreamTestCase(harness.ServerTestCase):
    def assertMediaHeaders(self, r, cache=PUBLIC_CACHE, sha=None, mime="audio/mpeg"):
        self.assertEqual(r.header("accept-ranges"), "bytes", r)
        self.assertEqual(r.header("etag"), '"%s"' % (sha or SHA), r)
        self.assertEqual(r.header("last-modified"), LAST_MODIFIED, r)
        self.assertEqual(r.header("cache-control"), cache, r)
        if r.status in (200, 206) and not r.header("content-type", "").startswith("multipart/"):
            self.assertEqual(r.header("content-type"), mime, r)


# ---------------------------------------------------------------------------
# ranges
# ---------------------------------------------------------------------------

class Ranges(StreamTestCase):
    def range_get(self, spec, **kw):
        return get(stream_path(SONG), {"Range": spec}, **kw)

    def assertPartial(self, r, first, last):
        self.assertEqual(r.status, 206, r)
        self.assertEqual(r.header("content-range"), "bytes %d-%d/%d" % (first, last, len(DATA)))
        self.assertEqual(int(r.header("content-length")), last - first + 1)
        self.assertEqual(r.body, DATA[first:last + 1])
        self.assertMediaHeaders(r)

    def assertWhole(self, r):
        self.assertEqual(r.status, 200, r)
        self.assertIsNone(r.header("content-range"))
        self.assertEqual(r.body, DATA)
        self.assertMediaHeaders(r)

    def test_whole_file(self):
        r = get(stream_path(SONG))
        self.assertWhole(r)
        self.assertEqual(int(r.header("content-length")), len(DATA))
        self.assertEqual(r.header("x-content-type-options"), "nosniff")
        self.assertEqual(hashlib.sha256(r.body).hexdigest(), SHA)

    def test_single_range(self):
        self.assertPartial(self.range_get("bytes=0-99"), 0, 99)
        self.assertPartial(self.range_get("bytes=1234-5678"), 1234, 5678)
        self.assertPartial(self.range_get("bytes=100002-100002"), 100002, 100002)

    def test_open_range(self):
        self.assertPartial(self.range_get("bytes=9500-"), 9500, len(DATA) - 1)
        self.assertPartial(self.range_get("bytes=0-"), 0, len(DATA) - 1)

    def test_suffix_range(self):
        self.assertPartial(self.range_get("bytes=-500"), len(DATA) - 500, len(DATA) - 1)
        self.assertPartial(self.range_get("bytes=-1"), len(DATA) - 1, len(DATA) - 1)
        self.assertPartial(self.range_get("bytes=-999999"), 0, len(DATA) - 1)

    def test_last_past_the_end_and_huge_numbers(self):
        self.assertPartial(self.range_get("bytes=100000-200000"), 100000, len(DATA) - 1)
        self.assertPartial(self.range_get("bytes=0-99999999999999999999"), 0, len(DATA) - 1)
        self.assertPartial(self.range_get("bytes=-99999999999999999999999"), 0, len(DATA) - 1)

    def test_unit_and_whitespace(self):
        self.assertPartial(self.range_get("BYTES=10-19"), 10, 19)
        self.assertPartial(self.range_get("bytes=10-19 ,"), 10, 19)

    def test_several_ranges(self):
        r = self.range_get("bytes=0-99, 5000-5099,-100")
        self.assertEqual(r.status, 206, r)
        self.assertIsNone(r.header("content-range"))
        self.assertMediaHeaders(r)
        self.assertEqual(int(r.header("content-length")), len(r.body))
        parts = parse_byteranges(self, r, DATA, "audio/mpeg")
        self.assertEqual(parts, [(0, 99), (5000, 5099), (len(DATA) - 100, len(DATA) - 1)])  # order requested

    def test_sixteen_ranges(self):
        spec = "bytes=" + ",".join("%d-%d" % (i * 6000, i * 6000 + 99 + i) for i in range(16))
        r = self.range_get(spec)
        self.assertEqual(r.status, 206, r)
        parts = parse_byteranges(self, r, DATA, "audio/mpeg")
        self.assertEqual(parts, [(i * 6000, i * 6000 + 99 + i) for i in range(16)])

    def test_close_ranges_are_merged(self):
        self.assertPartial(self.range_get("bytes=0-99,100-199"), 0, 199)
        self.assertPartial(self.range_get("bytes=150-199,0-99"), 0, 199)  # a gap of 50 bytes
        r = self.range_get("bytes=3000-3099,0-99,120-199")
        self.assertEqual(parse_byteranges(self, r, DATA, "audio/mpeg"), [(0, 199), (3000, 3099)])

    def test_ranges_answered_with_the_whole_file(self):
        # Overlapping, more than the file, more than 16, malformed, another unit: all 200 with everything.
        for spec in ("bytes=0-99,50-149", "bytes=0-,0-", "bytes=-60000,0-59999",
                     "bytes=" + ",".join("%d-%d" % (i * 1000, i * 1000 + 9) for i in range(17)),
                     "bytes=" + ",".join(["0-0"] * 300), "bytes=abc", "bytes=5-1", "bytes=0-1;2-3", "items=0-9",
                     "bytes 0-9", "bytes=0 - 9"):
            with self.subTest(spec=spec[:60]):
                self.assertWhole(self.range_get(spec))

    def test_unsatisfiable(self):
        for spec in ("bytes=%d-" % len(DATA), "bytes=200000-300000", "bytes=-0", "bytes=999999-,888888-",
                     "bytes=99999999999999999999-"):
            with self.subTest(spec=spec):
                r = self.range_get(spec)
                self.assertEqual(r.status, 416, r)
                self.assertEqual(r.header("content-range"), "bytes */%d" % len(DATA))
                self.assertEqual(r.header("content-length"), "0")
                self.assertIsNone(r.header("content-type"))
                self.assertEqual(r.body, b"")
        # One satisfiable range among unsatisfiable ones is served.
        self.assertPartial(self.range_get("bytes=200000-,10-19"), 10, 19)

    def test_keep_alive_through_ranges(self):
        # Several media responses on one connection: each is framed exactly, whatever came before.
        with harness.Conn(SRV.port, timeout=15) as c:
            for spec, want in (("bytes=0-9", DATA[:10]), (None, DATA), ("bytes=-3", DATA[-3:]),
                               ("bytes=0-0,-1", None), ("bytes=%d-" % len(DATA), b"")):
                r = c.request("GET", stream_path(SONG), headers=[("Range", spec)] if spec else [], timeout=15)
                if want is None:
                    self.assertEqual(parse_byteranges(self, r, DATA, "audio/mpeg"), [(0, 0), (len(DATA) - 1,
                                                                                               len(DATA) - 1)])
                else:
                    self.assertEqual(r.body, want)
            r = c.request("HEAD", stream_path(SONG), headers=[("Range", "bytes=5-9")], timeout=15)
            self.assertEqual((r.status, r.body, r.header("content-length")), (206, b"", "5"))
            r = c.request("GET", stream_path(SONG), headers=[("Range", "bytes=5-9")], timeout=15)
            self.assertEqual(r.body, DATA[5:10])


# ---------------------------------------------------------------------------
# conditional requests
# ---------------------------------------------------------------------------

class Conditionals(StreamTestCase):
    def assertNotModified(self, r):
        self.assertEqual(r.status, 304, r)
        self.assertEqual(r.body, b"")
        self.assertIsNone(r.header("content-length"))
        self.assertEqual(r.header("etag"), '"%s"' % SHA)
        self.assertEqual(r.header("cache-control"), PUBLIC_CACHE)

    def test_if_none_match(self):
        etag = '"%s"' % SHA
        for value in (etag, '"nope", %s, "other"' % etag, "*", "W/" + etag, ' "a",W/"b" ,  %s' % etag):
            with self.subTest(value=value):
                self.assertNotModified(get(stream_path(SONG), {"If-None-Match": value}))
        for value in ('"nope"', '"%s"' % SHA.upper(), SHA, '"%s' % SHA):
            with self.subTest(value=value):
                r = get(stream_path(SONG), {"If-None-Match": value})
                self.assertEqual((r.status, r.body), (200, DATA))
        # Two header lines make one list.
        r = get(stream_path(SONG), [("If-None-Match", '"a"'), ("If-None-Match", etag)])
        self.assertNotModified(r)

    def test_if_none_match_on_head_and_range(self):
        self.assertNotModified(get(stream_path(SONG), {"If-None-Match": '"%s"' % SHA}, method="HEAD"))
        self.assertNotModified(get(stream_path(SONG), {"If-None-Match": '"%s"' % SHA, "Range": "bytes=0-9"}))

    def test_if_modified_since(self):
        for value in (LAST_MODIFIED, "Sat, 02 Mar 2024 00:00:00 GMT", "Friday, 01-Mar-24 12:34:56 GMT",
                      "Fri Mar  1 12:34:56 2024"):
            with self.subTest(value=value):
                self.assertNotModified(get(stream_path(SONG), {"If-Modified-Since": value}))
        for value in ("Fri, 01 Mar 2024 12:34:55 GMT", "garbage", "Fri, 01 Jan 2100 00:00:00 GMT"):
            with self.subTest(value=value):  # older, invalid, in the future: ignored
                r = get(stream_path(SONG), {"If-Modified-Since": value})
                self.assertEqual((r.status, r.body), (200, DATA))

    def test_if_none_match_wins_over_if_modified_since(self):
        r = get(stream_path(SONG), {"If-None-Match": '"other"', "If-Modified-Since": LAST_MODIFIED})
        self.assertEqual((r.status, r.body), (200, DATA))
        r = get(stream_path(SONG), {"If-None-Match": '"%s"' % SHA,
                                    "If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"})
        self.assertNotModified(r)

    def test_if_range_with_etag(self):
        r = get(stream_path(SONG), {"Range": "bytes=10-19", "If-Range": '"%s"' % SHA})
        self.assertEqual((r.status, r.body, r.header("content-range")),
                         (206, DATA[10:20], "bytes 10-19/%d" % len(DATA)))
        for stale in ('"other"', 'W/"%s"' % SHA, "*", "nonsense"):
            with self.subTest(if_range=stale):
                r = get(stream_path(SONG), {"Range": "bytes=10-19", "If-Range": stale})
                self.assertEqual((r.status, r.body), (200, DATA))
                self.assertIsNone(r.header("content-range"))

    def test_if_range_with_date(self):
        r = get(stream_path(SONG), {"Range": "bytes=-5", "If-Range": LAST_MODIFIED})
        self.assertEqual((r.status, r.body), (206, DATA[-5:]))
        for stale in ("Fri, 01 Mar 2024 12:34:55 GMT", "Fri, 01 Mar 2024 12:34:57 GMT"):
            with self.subTest(if_range=stale):
                r = get(stream_path(SONG), {"Range": "bytes=-5", "If-Range": stale})
                self.assertEqual((r.status, r.body), (200, DATA))

    def test_if_range_that_fails_turns_416_into_200(self):
        r = get(stream_path(SONG), {"Range": "bytes=999999-", "If-Range": '"other"'})
        self.assertEqual((r.status, r.body), (200, DATA))

    def test_if_match(self):
        r = get(stream_path(SONG), {"If-Match": '"%s"' % SHA, "Range": "bytes=0-1"})
        self.assertEqual((r.status, r.body), (206, DATA[:2]))
        r = get(stream_path(SONG), {"If-Match": "*"})
        self.assertEqual(r.status, 200)
        for value in ('"other"', 'W/"%s"' % SHA):
            with self.subTest(if_match=value):
                self.assertJsonError(get(stream_path(SONG), {"If-Match": value}), 412)
        self.assertJsonError(get(stream_path(SONG), {"If-Unmodified-Since": "Thu, 29 Feb 2024 00:00:00 GMT"}), 412)
        r = get(stream_path(SONG), {"If-Unmodified-Since": LAST_MODIFIED})
        self.assertEqual(r.status, 200)


class HeadEqualsGet(StreamTestCase):
    def test_head_headers_equal_get(self):
        album = make_album("owner")
        attach_cover(album, fake_png(3000, 1))
        cases = [(stream_path(SONG), {}), (stream_path(SONG), {"Range": "bytes=0-99"}),
                 (stream_path(SONG), {"Range": "bytes=-10,0-9,500-599"}),
                 (stream_path(SONG), {"Range": "bytes=999999-"}),
                 (stream_path(SONG), {"If-None-Match": '"%s"' % SHA}),
                 (stream_path(SONG), {"If-Match": '"x"'}),
                 ("/albums/%s/cover" % album, {}), ("/albums/%s/cover" % album, {"Range": "bytes=1-2,2000-"})]
        for path, headers in cases:
            with self.subTest(path=path, headers=headers):
                g = get(path, headers)
                h = get(path, headers, method="HEAD")
                self.assertEqual(h.status, g.status)
                self.assertEqual(h.body, b"")
                strip = lambda r: [(k.lower(), v) for k, v in r.headers if k.lower() != "date"]  # noqa: E731
                self.assertEqual(strip(h), strip(g))
                if g.header("content-length") is not None:
                    self.assertEqual(int(g.header("content-length")), len(g.body))


# ---------------------------------------------------------------------------
# who may stream
# ---------------------------------------------------------------------------

class Access(StreamTestCase):
    def test_public_song_for_anyone(self):
        for who in (None, "user", "other", "owner", "admin"):
            with self.subTest(who=who):
                r = get(stream_path(SONG), who=who)
                self.assertEqual((r.status, r.body), (200, DATA))
                self.assertEqual(r.header("cache-control"), PUBLIC_CACHE)

    def test_private_song(self):
        song = make_song("owner", visibility="private")
        data = random.Random(11).randbytes(5000)
        sha = attach_audio(song, data)
        for who in (None, "user", "other"):
            with self.subTest(who=who):
                self.assertJsonError(get(stream_path(song), who=who), 404, "song not found")
        for who in ("owner", "admin"):
            with self.subTest(who=who):
                r = get(stream_path(song), {"Range": "bytes=-10"}, who=who)
                self.assertEqual((r.status, r.body), (206, data[-10:]))
                self.assertMediaHeaders(r, cache=PRIVATE_CACHE, sha=sha)

    def test_access_cookie(self):
        song = make_song("owner", visibility="private")
        data = b"cookie audio" * 100
        attach_audio(song, data)
        r = get(stream_path(song), {"Cookie": "staccato_access=" + U["owner"]["token"]})
        self.assertEqual((r.status, r.body), (200, data))

    def test_flagged_song(self):
        song = make_song("owner")
        data = b"flagged" * 1000
        attach_audio(song, data)
        change("UPDATE songs SET flagged = true WHERE id = '%s'" % song)
        for who in (None, "user"):
            with self.subTest(who=who):
                self.assertJsonError(get(stream_path(song), who=who), 404, "song not found")
        for who in ("owner", "admin"):
            with self.subTest(who=who):
                r = get(stream_path(song), who=who)
                self.assertEqual((r.status, r.body), (200, data))
                self.assertEqual(r.header("cache-control"), PRIVATE_CACHE)

    def test_song_without_audio_unknown_and_malformed_ids(self):
        song = make_song("owner")
        self.assertJsonError(get(stream_path(song)), 404, "song has no audio")
        self.assertJsonError(get(stream_path("song-doesnotexist0000")), 404, "song not found")
        self.assertJsonError(get("/songs/%27%3B--/stream"), 404, "song not found")
        self.assertJsonError(get("/songs/" + "x" * 300 + "/stream"), 404, "song not found")

    def test_bad_token_is_401(self):
        r = get(stream_path(SONG), {"Authorization": "Bearer not-a-token"})
        self.assertJsonError(r, 401)
        self.assertIsNotNone(r.header("www-authenticate"))

    def test_missing_file_on_disk(self):
        song = make_song("owner")
        data = b"soon gone " * 50
        sha = attach_audio(song, data)
        os.unlink(media_path(sha))
        self.assertJsonError(get(stream_path(song)), 404, "song has no audio")


def authority():
    """The Host a client of this run sends: the port it connects to (the TLS port in the harness's TLS mode)."""
    return "127.0.0.1:%d" % (SRV.tls_port or SRV.port)


SCHEME = "https" if harness.TLS else "http"   # of absolute URLs built from the request (no STACCATO_PUBLIC_URL)


class SignedUrls(StreamTestCase):
    def stream_url(self, song, who="owner"):
        st, h, j = request(SRV.port, "GET", "/songs/%s/stream-url" % song,
                           headers=dict(bearer(who), Host=authority()))
        return st, h, j

    def test_issue_and_use(self):
        song = make_song("owner", visibility="private")
        data = random.Random(12).randbytes(40000)
        sha = attach_audio(song, data)
        before = int(time.time())
        st, h, j = self.stream_url(song)
        self.assertEqual(st, 200, j)
        self.assertEqual(h.get("cache-control"), "no-store")
        self.assertEqual(j["status"], "success")
        self.assertEqual(set(j["data"]), {"url", "expiresAt"})
        u = urlparse(j["data"]["url"])
        self.assertEqual((u.scheme, u.netloc, u.path), (SCHEME, authority(), stream_path(song)))
        q = parse_qs(u.query)
        self.assertEqual(set(q), {"expires", "sig"})
        expires = int(q["expires"][0])
        self.assertTrue(before + 3600 - 5 <= expires <= int(time.time()) + 3600 + 5, expires)
        self.assertEqual(j["data"]["expiresAt"], time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires)))
        self.assertEqual(q["sig"][0], url_mac(song, expires))
        target = u.path + "?" + u.query
        # Anyone holding the URL plays the private song, ranges and all.
        r = get(target)
        self.assertEqual((r.status, r.body), (200, data))
        self.assertMediaHeaders(r, cache=PRIVATE_CACHE, sha=sha)
        r = get(target, {"Range": "bytes=100-199,-50"})
        self.assertEqual(parse_byteranges(self, r, data, "audio/mpeg"), [(100, 199), (len(data) - 50, len(data) - 1)])
        r = get(target, who="user")  # a token of someone else does not get in the way
        self.assertEqual(r.status, 200)
        # Admins get URLs for anything, strangers nothing.
        self.assertEqual(self.stream_url(song, "admin")[0], 200)
        st, _, j = self.stream_url(song, "user")
        self.assertEqual((st, j["message"]), (404, "song not found"))

    def test_links_from_host_header(self):
        """Regression: the stream URL took any Host made of host-name characters; only a valid one (http/host.h)
        goes in, else localhost."""
        for host, netloc in (("]a[:b:c", "localhost"), ("[evil.com]", "localhost"), ("a:b", "localhost"),
                             ("evil.example:", "localhost"), ("[::1]]", "localhost"),
                             ("music.example:8080", "music.example:8080"), ("[::1]:80", "[::1]:80")):
            with self.subTest(host=host):
                st, h, j = request(SRV.port, "GET", "/songs/%s/stream-url" % SONG,
                                   headers=dict(bearer("owner"), Host=host))
                self.assertEqual(st, 200, j)
                self.assertEqual(urlparse(j["data"]["url"]).netloc, netloc)

    def test_stream_url_errors(self):
        st, h, j = request(SRV.port, "GET", "/songs/%s/stream-url" % SONG)
        self.assertEqual((st, j["status"]), (401, "fail"))
        song = make_song("owner")
        st, _, j = self.stream_url(song)
        self.assertEqual((st, j["message"]), (404, "song has no audio"))
        st, _, j = self.stream_url("song-unknown00000000")
        self.assertEqual((st, j["message"]), (404, "song not found"))
        # A public song gets a URL too (its audio plays without one anyway).
        self.assertEqual(self.stream_url(SONG, "user")[0], 200)

    def test_bad_signed_urls_are_403(self):
        song = make_song("owner", visibility="private")
        attach_audio(song, b"secret audio" * 100)
        exp = int(time.time()) + 600
        good = "%s?expires=%d&sig=%s" % (stream_path(song), exp, url_mac(song, exp))
        self.assertEqual(get(good).status, 200)
        sig = url_mac(song, exp)
        flipped = ("A" if sig[5] != "A" else "B").join([sig[:5], sig[6:]])
        cases = {
            "tampered signature": "%s?expires=%d&sig=%s" % (stream_path(song), exp, flipped),
            "tampered expiry": "%s?expires=%d&sig=%s" % (stream_path(song), exp + 1, sig),
            "leading zero": "%s?expires=0%d&sig=%s" % (stream_path(song), exp, sig),
            "other song": "%s?expires=%d&sig=%s" % (stream_path(SONG), exp, sig),
            "no signature": "%s?expires=%d" % (stream_path(song), exp),
            "no expiry": "%s?sig=%s" % (stream_path(song), sig),
            "empty": "%s?expires=&sig=" % stream_path(song),
            "short signature": "%s?expires=%d&sig=%s" % (stream_path(song), exp, sig[:20]),
            "huge expiry": "%s?expires=%s&sig=%s" % (stream_path(song), "9" * 30, sig),
            "signed with another key": "%s?expires=%d&sig=%s" % (
                stream_path(song), exp, base64.urlsafe_b64encode(hmac.new(b"k", b"x", hashlib.sha256).digest())
                .rstrip(b"=").decode()),
        }
        for name, target in cases.items():
            with self.subTest(case=name):
                self.assertJsonError(get(target), 403, "invalid stream URL signature")
        # Two seconds back: the server reads time(2), which follows a coarse clock that may still show the
        # previous second when Python's clock has just passed it, so one second back may not have expired yet.
        past = int(time.time()) - 2
        expired = "%s?expires=%d&sig=%s" % (stream_path(song), past, url_mac(song, past))
        self.assertJsonError(get(expired), 403, "the stream URL has expired")
        self.assertJsonError(get(expired, who="owner"), 403, "the stream URL has expired")


# ---------------------------------------------------------------------------
# covers
# ---------------------------------------------------------------------------

class Covers(StreamTestCase):
    def test_cover_served(self):
        album = make_album("owner")
        png = fake_png(20000, 2)
        sha = attach_cover(album, png)
        st, _, j = request(SRV.port, "GET", "/albums/%s" % album, headers={"Host": "127.0.0.1:%d" % SRV.port})
        self.assertEqual(st, 200)
        u = urlparse(j["data"]["album"]["coverUrl"])
        self.assertEqual(u.path, "/albums/%s/cover" % album)
        r = get(u.path)
        self.assertEqual((r.status, r.body), (200, png))
        self.assertMediaHeaders(r, sha=sha, mime="image/png")
        r = get(u.path, {"Range": "bytes=0-7"})
        self.assertEqual((r.status, r.body), (206, png[:8]))
        r = get(u.path, {"If-None-Match": '"%s"' % sha})
        self.assertEqual(r.status, 304)

    def test_cover_missing_and_unknown(self):
        album = make_album("owner")
        self.assertJsonError(get("/albums/%s/cover" % album), 404, "album has no cover")
        self.assertJsonError(get("/albums/album-unknown0000000/cover"), 404, "album not found")
        self.assertJsonError(get("/albums/%%00/cover"), 404, "album not found")

    def test_flagged_album_cover(self):
        album = make_album("owner")
        png = fake_png(1000, 3)
        attach_cover(album, png)
        change("UPDATE albums SET flagged = true WHERE id = '%s'" % album)
        for who in (None, "user", "other"):
            with self.subTest(who=who):
                self.assertJsonError(get("/albums/%s/cover" % album, who=who), 404, "album not found")
        for who in ("owner", "admin"):
            with self.subTest(who=who):
                r = get("/albums/%s/cover" % album, who=who)
                self.assertEqual((r.status, r.body), (200, png))
                self.assertEqual(r.header("cache-control"), PRIVATE_CACHE)


# ---------------------------------------------------------------------------
# files under load: deletion, replacement, slow readers, vanishing clients
# ---------------------------------------------------------------------------

_big = {}


def big_song():
    """A public song with a 20 MB file (made once)."""
    if not _big:
        data = random.Random(99).randbytes(BIG)
        song = make_song("owner")
        _big.update(song=song, data=data, sha=attach_audio(song, data))
    return _big["song"], _big["data"], _big["sha"]


class Files(StreamTestCase):
    def _interrupted(self, replace):
        data = random.Random(100 + replace).randbytes(BIG)
        song = make_song("owner")
        sha = attach_audio(song, data)
        s = RawStream(stream_path(song), rcvbuf=65536)
        try:
            self.assertEqual((s.status, s.length), (200, BIG))
            head = b"".join(s.read(65536) for _ in range(4))
            path = media_path(sha)
            os.unlink(path)
            if replace:
                with open(path + ".new", "wb") as f:
                    f.write(b"\0" * BIG)
                os.rename(path + ".new", path)
            # A new request is served from the file the server holds open for the song: a media file is named by
            # its content and never changes in place, so what is on disk under that name does not matter...
            r = get(stream_path(song), {"Range": "bytes=0-3"})
            self.assertEqual((r.status, r.body), (206, data[:4]))
            # ... until the song changes (here in another process): then the disk is looked at again.
            change("UPDATE songs SET visibility = 'private' WHERE id = '%s'" % song)
            change("UPDATE songs SET visibility = 'public' WHERE id = '%s'" % song)
            want = (206, b"\0\0\0\0") if replace else (404, None)
            seen = []

            def disk_seen():
                r = get(stream_path(song), {"Range": "bytes=0-3"})
                seen.append((r.status, r.body if r.status == 206 else None))
                return seen[-1] == want

            harness.wait_until(disk_seen, 10, interval=0.05)
            self.assertEqual(seen[-1], want)
            # The stream in progress goes on with the file it opened.
            rest = s.read_rest()
        finally:
            s.close()
        self.assertEqual(hashlib.sha256(head + rest).hexdigest(), sha)

    def test_file_deleted_while_streaming(self):
        self._interrupted(replace=False)

    def test_file_replaced_while_streaming(self):
        self._interrupted(replace=True)

    def test_slow_reader_does_not_stall_others(self):
        song, data, _ = big_song()
        slow = RawStream(stream_path(song), rcvbuf=4096)
        try:
            slow.read(1000)
            results = []

            def fetch(i):
                r = get(stream_path(SONG), {"Range": "bytes=%d-" % (i * 1000)})
                results.append(r.status == 206 and r.body == DATA[i * 1000:])

            for round_ in range(3):
                threads = [threading.Thread(target=fetch, args=(i,)) for i in range(8)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join(20)
                slow.read(1000)  # a trickle, well within the send timeout
                time.sleep(0.05)
            self.assertEqual(results, [True] * 24)
            self.assertEqual(get("/health").status, 200)
            # The slow reader is still far from done, and its bytes are still right.
            self.assertLess(slow.received, BIG // 2)
            got = slow.read(5000)
            self.assertEqual(got, data[slow.received - len(got):slow.received])
        finally:
            slow.close()

    def test_clients_that_vanish(self):
        song, data, _ = big_song()
        # Gone before the answer (while the row is read or the file opened), gone mid-stream, HEADs too.
        for i in range(40):
            s = harness.Conn(SRV.port, timeout=5)
            method = "HEAD" if i % 3 == 0 else "GET"
            s.send(harness.build_request(method, stream_path(song), [("Range", "bytes=%d-" % i)] if i % 2 else []))
            if i % 4 == 3:
                s.recv_some(1000)
            s.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # reset
            s.close()
        r = get(stream_path(song), {"Range": "bytes=-100"})
        self.assertEqual((r.status, r.body), (206, data[-100:]))
        self.assertTrue(SRV.alive())


def cache_lookups():
    m = {labels.get("result"): v for name, labels, v in SRV.metrics() if name == "staccato_media_cache_lookups_total"}
    return m.get("hit", 0), m.get("miss", 0)


class MediaCache(StreamTestCase):
    """What a stream request needs is cached per process (src/api/media_cache.h); these pin that the cache is used
    and that no change is missed: changes made elsewhere arrive by notification, this process's own at once, and
    nothing is trusted across a lost notification connection."""

    def test_repeated_requests_are_answered_from_the_cache(self):
        song = make_song("owner")
        data = random.Random(31).randbytes(70000)
        attach_audio(song, data)
        hit0, miss0 = cache_lookups()
        for i in range(5):
            r = get(stream_path(song), {"Range": "bytes=%d-%d" % (i * 1000, i * 1000 + 99)})
            self.assertEqual((r.status, r.body), (206, data[i * 1000:i * 1000 + 100]))
        hit1, miss1 = cache_lookups()
        self.assertEqual(miss1 - miss0, 1)
        self.assertEqual(hit1 - hit0, 4)
        opened = [v for name, _, v in SRV.metrics() if name == "staccato_media_cache_open_files"]
        self.assertGreaterEqual(opened[0], 1)

    def test_a_change_made_by_another_process_arrives(self):
        song = make_song("owner")
        data = random.Random(32).randbytes(5000)
        attach_audio(song, data)
        self.assertEqual(get(stream_path(song)).body, data)
        SVC.psql("UPDATE songs SET visibility = 'private' WHERE id = '%s'" % song)
        harness.wait_until(lambda: get(stream_path(song)).status == 404, 10)
        self.assertJsonError(get(stream_path(song)), 404, "song not found")
        self.assertEqual(get(stream_path(song), who="owner").body, data)
        # New audio under the same song: the new bytes, the new ETag.
        SVC.psql("UPDATE songs SET visibility = 'public' WHERE id = '%s'" % song)
        data2 = random.Random(33).randbytes(6000)
        sha2 = attach_audio(song, data2)
        harness.wait_until(lambda: get(stream_path(song)).body == data2, 10)
        r = get(stream_path(song))
        self.assertEqual((r.status, r.body, r.header("etag")), (200, data2, '"%s"' % sha2))
        # A deleted song is gone for everyone.
        SVC.psql("DELETE FROM songs WHERE id = '%s'" % song)
        harness.wait_until(lambda: get(stream_path(song), who="admin").status == 404, 10)

    def test_kept_files_stay_within_a_quarter_of_the_open_file_limit(self):
        # With 64 descriptors allowed the cache keeps at most 16 files open; the songs beyond are still streamed
        # (and cached: only their file is opened per request).
        srv = harness.Server(env=SRV.env_overrides, nofile=64)
        self.addCleanup(self._stop_server, srv)
        songs = []
        for i in range(20):
            song = make_song("owner")
            data = random.Random(400 + i).randbytes(3000 + i)
            attach_audio(song, data)
            songs.append((song, data))
        for _ in range(2):
            for song, data in songs:
                r = srv.get(stream_path(song))
                self.assertEqual((r.status, r.body), (200, data))
        kept = [v for name, _, v in srv.metrics() if name == "staccato_media_cache_open_files"]
        self.assertEqual(kept, [16])
        self.assertEqual(srv.get("/health").status, 200)

    def test_only_changes_that_matter_are_announced(self):
        # Edits of what the cache does not hold (title, genre, timestamps) notify no process; the columns it holds
        # do. Notifications arrive in commit order, so once the second is counted the first would have been.
        song = make_song("owner")
        album_st, _, j = request(SRV.port, "POST", "/albums", {"name": uniq("Album "), "year": 2020},
                                 headers=bearer("owner"))
        self.assertEqual(album_st, 201, j)
        album = j["data"]["albumId"]
        for quiet, loud in (("UPDATE songs SET title = title || '!', updated_at = now() WHERE id = '%s'" % song,
                             "UPDATE songs SET flagged = true WHERE id = '%s'" % song),
                            ("UPDATE albums SET name = name || '!', updated_at = now() WHERE id = '%s'" % album,
                             "UPDATE albums SET flagged = true WHERE id = '%s'" % album),
                            ("UPDATE songs SET year = 1999 WHERE id = '%s'" % song,
                             "DELETE FROM songs WHERE id = '%s'" % song)):
            before = notifications()
            SVC.psql(quiet)
            change(loud)
            self.assertEqual(notifications() - before, 1, quiet)

    def test_own_changes_are_seen_at_once(self):
        song = make_song("owner")
        data = random.Random(34).randbytes(5000)
        attach_audio(song, data)
        for _ in range(2):
            self.assertEqual(get(stream_path(song)).status, 200)
        st, _, j = request(SRV.port, "PUT", "/songs/%s/flag" % song, {"flagged": True}, headers=bearer("admin"))
        self.assertEqual(st, 200, j)
        self.assertJsonError(get(stream_path(song)), 404, "song not found")
        st, _, j = request(SRV.port, "PUT", "/songs/%s/flag" % song, {"flagged": False}, headers=bearer("admin"))
        self.assertEqual(st, 200, j)
        self.assertEqual(get(stream_path(song)).body, data)
        st, _, j = request(SRV.port, "DELETE", "/songs/%s" % song, headers=bearer("owner"))
        self.assertEqual(st, 200, j)
        self.assertJsonError(get(stream_path(song), who="admin"), 404, "song not found")
        # Covers: an album flagged through the API.
        album = make_album("owner")
        png = fake_png(500, 9)
        attach_cover(album, png)
        self.assertEqual(get("/albums/%s/cover" % album).body, png)
        st, _, j = request(SRV.port, "PUT", "/albums/%s/flag" % album, {"flagged": True}, headers=bearer("admin"))
        self.assertEqual(st, 200, j)
        self.assertJsonError(get("/albums/%s/cover" % album), 404, "album not found")

    def test_nothing_is_trusted_across_a_lost_notification_connection(self):
        song = make_song("owner")
        data = random.Random(35).randbytes(5000)
        attach_audio(song, data)
        self.assertEqual(get(stream_path(song)).body, data)
        listener = "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'staccato-media-cache'"
        self.assertEqual(SVC.psql(listener), "1")
        # The connection is cut and the change made before the server can listen again: its notification is lost.
        SVC.psql("SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                 "WHERE application_name = 'staccato-media-cache'; "
                 "UPDATE songs SET visibility = 'private' WHERE id = '%s'" % song)
        harness.wait_until(lambda: SVC.psql(listener) == "1", 15)
        self.assertEqual(SVC.psql(listener), "1")
        self.assertJsonError(get(stream_path(song)), 404, "song not found")


class Opening(StreamTestCase):
    def test_fifo_in_place_of_a_file_is_refused(self):
        # Something that is not a regular file must neither hang a threadpool thread in open(2) nor be streamed.
        song = make_song("owner")
        fake = hashlib.sha256(b"fifo %d" % next(_seq)).hexdigest()
        os.makedirs(os.path.dirname(media_path(fake)), exist_ok=True)
        os.mkfifo(media_path(fake))
        mid = uniq("media-")
        SVC.psql("INSERT INTO media_files (id, kind, sha256, path, mime, size) VALUES ('%s', 'audio', '%s', '%s/%s', "
                 "'audio/mpeg', 1)" % (mid, fake, fake[:2], fake))
        change("UPDATE songs SET audio_media_id = '%s' WHERE id = '%s'" % (mid, song))
        for _ in range(6):  # more than the threadpool has threads
            self.assertJsonError(get(stream_path(song)), 500)
        self.assertEqual(get(stream_path(SONG), {"Range": "bytes=0-9"}).body, DATA[:10])

    def test_client_gone_while_its_open_waits_for_the_threadpool(self):
        # One threadpool thread, busy with a deliberately slow password hash: the stream requests' opens queue
        # behind it, their clients leave, and the queued opens are cancelled (or, if already running, closed by
        # their completion). The server stays correct and, under ASan, clean.
        env = dict(SRV.env_overrides, UV_THREADPOOL_SIZE="1", STACCATO_ARGON2_M_KIB="262144", STACCATO_ARGON2_T="3")
        srv = self.start_server(env=env)
        done = []

        def slow_register():
            done.append(request(srv.port, "POST", "/users", {"username": uniq("slow_"), "password": "secret-pass-1",
                                                              "fullname": "Slow"}, timeout=60)[0])

        t = threading.Thread(target=slow_register)
        t.start()
        time.sleep(0.3)
        socks = []
        for i in range(4):
            s = socket.create_connection((harness.LOOPBACK, srv.port), timeout=5)
            s.sendall(harness.build_request("HEAD" if i % 2 else "GET", stream_path(SONG)))
            socks.append(s)
        time.sleep(0.3)  # the rows are back; the opens wait for the thread
        for s in socks:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.close()
        t.join(60)
        self.assertEqual(done, [201])
        with harness.Conn(srv.port, timeout=15) as c:
            r = c.request("GET", stream_path(SONG), headers=[("Range", "bytes=-7")])
        self.assertEqual((r.status, r.body), (206, DATA[-7:]))


# ---------------------------------------------------------------------------
# real clients: ffprobe through a signed URL, strace showing sendfile
# ---------------------------------------------------------------------------

class Tools(StreamTestCase):
    def signed_target(self, song):
        st, _, j = request(SRV.port, "GET", "/songs/%s/stream-url" % song,
                           headers=dict(bearer("owner"), Host=authority()))
        self.assertEqual(st, 200, j)
        return j["data"]["url"]

    def access_log(self, song):
        out = []
        for ln in SRV.stdout_lines():
            try:
                e = json.loads(ln)
            except ValueError:
                continue
            if e.get("path") == stream_path(song):
                out.append(e)
        return out

    def _ffprobe(self, fmt, codec):
        if not shutil.which("ffmpeg") or not shutil.which("ffprobe"):
            self.skipTest("ffmpeg/ffprobe not installed (deps/install.sh test installs them)")
        tmp = tempfile.mkdtemp(prefix="staccato-ff-")
        try:
            out = os.path.join(tmp, "sine." + fmt)
            subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=440:duration=3",
                            "-ac", "2", out], check=True, timeout=60)
            with open(out, "rb") as f:
                data = f.read()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        song = make_song("owner", visibility="private")
        attach_audio(song, data, mime="audio/mpeg" if fmt == "mp3" else "audio/wav")
        url = self.signed_target(song)
        p = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration:stream=codec_name",
                            "-of", "json", url], capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        info = json.loads(p.stdout)
        self.assertEqual(info["streams"][0]["codec_name"], codec)
        self.assertAlmostEqual(float(info["format"]["duration"]), 3.0, delta=0.1)
        # Seek to 2 s and read a few packets: ffprobe asks for a range from the middle of the file.
        n = len(self.access_log(song))
        p = subprocess.run(["ffprobe", "-v", "error", "-read_intervals", "2%+#3", "-show_entries",
                            "packet=pts_time", "-of", "json", url], capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        times = [float(x["pts_time"]) for x in json.loads(p.stdout)["packets"]]
        self.assertTrue(times and 1.8 <= times[0] <= 2.2, times)
        harness.wait_until(lambda: len(self.access_log(song)) > n + 1, 5)
        entries = self.access_log(song)[n:]
        self.assertTrue(all(e["status"] in (200, 206) for e in entries), entries)
        self.assertGreaterEqual(sum(e["status"] == 206 for e in entries), 1, entries)
        self.assertGreaterEqual(len(entries), 2, entries)  # the first read, then the seek

    def test_ffprobe_mp3(self):
        self._ffprobe("mp3", "mp3")

    def test_ffprobe_wav(self):
        self._ffprobe("wav", "pcm_s16le")

    @unittest.skipIf(harness.TLS, "over TLS file ranges are read with uv_fs_read and encrypted, not sent with "
                     "sendfile(2)")
    def test_sendfile_under_strace(self):
        if not shutil.which("strace"):
            self.skipTest("strace not installed (deps/install.sh test installs it)")
        song, data, sha = big_song()
        log = tempfile.NamedTemporaryFile(prefix="staccato-strace-", delete=False)
        log.close()
        p = subprocess.Popen(["strace", "-f", "-e", "trace=sendfile", "-o", log.name, "-p", str(SRV.pid())],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            err = b""
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and p.poll() is None:
                # Attached once the server's TracerPid is strace (its stderr line would need a blocking read).
                with open("/proc/%d/status" % SRV.pid()) as f:
                    tracer = [ln for ln in f if ln.startswith("TracerPid:")]
                if tracer and int(tracer[0].split()[1]) == p.pid:
                    break
                time.sleep(0.05)
            if p.poll() is not None:
                err = p.stderr.read().decode("utf-8", "replace")
                self.skipTest("strace cannot attach to the server (ptrace not permitted here?): %s" % err.strip())
            r = get(stream_path(song))
            self.assertEqual(r.status, 200)
            self.assertEqual(hashlib.sha256(r.body).hexdigest(), sha)
        finally:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)  # strace detaches and exits
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
            p.stderr.close()
        with open(log.name) as f:
            trace = f.read()
        os.unlink(log.name)
        calls = re.findall(r"sendfile\((\d+), (\d+), \[\d+\]( => \[\d+\])?, (\d+)\) = (-?\d+)", trace)
        self.assertTrue(calls, "no sendfile calls traced:\n%s" % trace[:2000])
        sent = sum(int(c[4]) for c in calls if int(c[4]) > 0)
        self.assertGreaterEqual(sent, BIG, "sendfile sent %d of %d bytes:\n%s" % (sent, BIG, trace[:2000]))
        self.assertTrue(SRV.alive())


if __name__ == "__main__":
    harness.main()
