#!/usr/bin/env python3
"""Media uploads: POST /albums/{id}/covers (multipart field `cover`), PUT /songs/{id}/audio (raw body) and
POST /songs/{id}/audio (multipart field `audio`), GET /users/me/songs.

Audio files are made with ffmpeg in a temp directory (WAV, MP3, FLAC, Ogg/Opus, M4A: 2 s of a sine with title and
artist tags) and their metadata is read back through GET /songs/{id}. Checked besides: storage (files at
STACCATO_MEDIA_DIR/<sha256[0:2]>/<sha256> with the right bytes, media_files rows, shared content, replaced covers
whose old file goes), limits answered with 413 while the body is still being sent, type checks by content (400 for
covers, 415 for audio), permissions (401 -> 404 -> 403), clients that leave mid-upload (nothing left in tmp/, no
row), a 200 MiB upload streamed from Python with the server's VmRSS growth under 40 MiB, a full disk (a 1 MiB
tmpfs, when mounting one is allowed) answered with 507, ffprobe killed when its client leaves, a missing ffprobe
(500), a stop in the middle of an upload, and the startup sweep of leftovers.

GET /users/me/songs needs its row in SC_ROUTES_USERS (src/api/users.h), which src/api/routes.c joins into the
route table.

The file runs its own PostgreSQL + Redis (deps/services.sh, SERVICES_EPHEMERAL=1) and its own servers.
"""

import hashlib
import itertools
import json
import os
import random
import shutil
import socket
import string
import struct
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import build_request, closed_by_server, request  # noqa: E402

ACCESS_KEY = "itest-upload-access-key-0123456789abcdef"    # 40+ characters
REFRESH_KEY = "itest-upload-refresh-key-0123456789abcdef"  # different
CHEAP_HASH = {"STACCATO_ARGON2_M_KIB": "1024", "STACCATO_ARGON2_T": "1"}
FIXTURE = harness.ModuleFixture("staccato-upload-", check_sanitizers=True)

COVER_MAX = 512000
SMALL_AUDIO_MAX = 300000
AUDIO_KEYS = {"mime", "size", "durationMs", "bitrate", "sampleRate", "channels"}
MIB = 1024 * 1024

SVC = None      # harness.Services
SRV = None      # the server (default limits)
SMALL = None    # same database and media dir, STACCATO_MAX_AUDIO_BYTES=300000
COMPAT = None   # same, STACCATO_COMPAT=openmusic
ROOT = None     # temp dir: media/, audio samples
MEDIA = None    # STACCATO_MEDIA_DIR of the servers
SAMPLES = {}    # format -> bytes
U = {}          # owner, other (artists), admin, user -> {"id", "token"}

FORMATS = {
    # name: (file extension, ffmpeg codec options, expected mime, expected sample rate)
    "wav": ("wav", [], "audio/wav", 44100),
    "mp3": ("mp3", [], "audio/mpeg", 44100),
    "flac": ("flac", [], "audio/flac", 44100),
    "opus": ("opus", ["-c:a", "libopus"], "audio/ogg; codecs=opus", 48000),
    "m4a": ("m4a", ["-c:a", "aac"], "audio/mp4", 44100),
}


# ---------------------------------------------------------------------------
# module setup
# ---------------------------------------------------------------------------

_seq = itertools.count(1)


def uniq(prefix):
    return "%s%d%s" % (prefix, next(_seq), "".join(random.choice(string.ascii_lowercase) for _ in range(6)))


def server_env(**extra):
    env = FIXTURE.env(ACCESS_TOKEN_KEY=ACCESS_KEY, REFRESH_TOKEN_KEY=REFRESH_KEY, STACCATO_MEDIA_DIR=MEDIA,
                      STACCATO_ACCESS_LOG="off", **CHEAP_HASH)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def register(role):
    return harness.account(SRV.port, uniq("up_" + role + "_"), "secret-password-1", "Upload " + role, role, SVC)


def make_samples():
    for name, (ext, codec, _, _) in FORMATS.items():
        path = os.path.join(ROOT, "sine." + ext)
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "sine=frequency=440:duration=2",
                        "-metadata", "title=Sine " + name, "-metadata", "artist=Tester"] + codec + [path],
                       check=True, timeout=60, stdin=subprocess.DEVNULL)
        with open(path, "rb") as f:
            SAMPLES[name] = f.read()


def setUpModule():
    global SVC, SRV, SMALL, COMPAT, ROOT, MEDIA
    with FIXTURE.setting_up():
        ROOT = FIXTURE.tempdir("staccato-upload-files-")
        make_samples()
        SVC = FIXTURE.start_services()
        MEDIA = os.path.join(ROOT, "media")
        SRV = FIXTURE.server("main", server_env())
        SMALL = FIXTURE.server("small", server_env(STACCATO_MAX_AUDIO_BYTES=SMALL_AUDIO_MAX))
        COMPAT = FIXTURE.server("compat", server_env(STACCATO_COMPAT="openmusic"))
        for role in ("owner", "other", "admin", "user"):
            U[role] = register({"owner": "artist", "other": "artist"}.get(role, role))


tearDownModule = FIXTURE.tear_down


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def bearer(who):
    """As a list of (name, value), which send() extends."""
    return list(harness.bearer(None if who is None else U[who]["token"] if who in U else who).items())


def call(method, path, body=None, who=None, server=None):
    return request((server or SRV).port, method, path, body, headers=dict(bearer(who)))


def make_album(owner="owner"):
    st, _, j = call("POST", "/albums", {"name": uniq("Album "), "year": 2024}, who=owner)
    assert st == 201, (st, j)
    return j["data"]["albumId"]


def make_song(owner="owner", visibility="public", duration=None):
    body = {"title": uniq("Song "), "year": 2024, "performer": "Tester", "genre": "Pop"}
    if duration is not None:
        body["duration"] = duration
    st, _, j = call("POST", "/songs", body, who=owner)
    assert st == 201, (st, j)
    sid = j["data"]["songId"]
    if visibility != "public":
        SVC.psql("UPDATE songs SET visibility = '%s' WHERE id = '%s'" % (visibility, sid))
    return sid


def multipart(fields, boundary=None):
    """fields: list of (name, filename or None, content type or None, bytes). Returns (content type, body)."""
    boundary = boundary or "----staccatoBoundary" + "".join(random.choice(string.ascii_letters) for _ in range(16))
    out = []
    for name, filename, ctype, data in fields:
        disp = 'form-data; name="%s"' % name
        if filename is not None:
            disp += '; filename="%s"' % filename
        head = "--%s\r\nContent-Disposition: %s\r\n" % (boundary, disp)
        if ctype:
            head += "Content-Type: %s\r\n" % ctype
        out.append(head.encode() + b"\r\n" + data + b"\r\n")
    out.append(("--%s--\r\n" % boundary).encode())
    return "multipart/form-data; boundary=%s" % boundary, b"".join(out)


def send(method, path, ctype, body, who="owner", server=None, extra=(), timeout=30):
    c = (server or SRV).connect(timeout=timeout)
    try:
        headers = bearer(who) + ([("Content-Type", ctype)] if ctype else []) + list(extra)
        return c.request(method, path, headers, body, timeout=timeout)
    finally:
        c.close()


def upload_cover(album, data, who="owner", server=None, ctype="image/png", filename="cover.png"):
    ct, body = multipart([("cover", filename, ctype, data)])
    return send("POST", "/albums/%s/covers" % album, ct, body, who, server)


def put_audio(song, data, who="owner", server=None, ctype="audio/mpeg"):
    return send("PUT", "/songs/%s/audio" % song, ctype, data, who, server)


def post_audio(song, data, who="owner", server=None, filename="song.bin"):
    ct, body = multipart([("title", None, None, b"ignored field"),
                          ("audio", filename, "application/octet-stream", data)])
    return send("POST", "/songs/%s/audio" % song, ct, body, who, server)


def fake_png(n, seed):
    return b"\x89PNG\r\n\x1a\n" + random.Random(seed).randbytes(n - 8)


def sha(data):
    return hashlib.sha256(data).hexdigest()


def media_path(key):
    return os.path.join(MEDIA, key[:2], key)


def stored_files():
    """{sha256: size} of every object file under MEDIA."""
    out = {}
    for sub in os.listdir(MEDIA):
        if len(sub) != 2:
            continue
        for name in os.listdir(os.path.join(MEDIA, sub)):
            out[name] = os.path.getsize(os.path.join(MEDIA, sub, name))
    return out


def temp_files(media=None):
    d = os.path.join(media or MEDIA, "tmp")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def sql(q):
    return SVC.psql(q)


def wav_header(data_bytes, rate=8000, channels=1, bits=8):
    block = channels * bits // 8
    return (b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVE" + b"fmt " +
            struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * block, block, bits) +
            b"data" + struct.pack("<I", data_bytes))


def vm_rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)


def chunk(data):
    return b"%x\r\n%s\r\n" % (len(data), data)


class UploadCase(harness.ServerTestCase):
    def assertCreated(self, r):
        self.assertEqual(r.status, 201, r)
        j = r.json()
        self.assertEqual(j["status"], "success", j)
        self.assertIsInstance(j.get("message"), str)
        self.assertIsInstance(j.get("data"), dict)
        return j["data"]

    def assertNoLeftovers(self, media=None):
        """No temp file stays behind (the server may still be cleaning up for a moment)."""
        left = harness.wait_until(lambda: not temp_files(media), 5) or temp_files(media)
        self.assertEqual(temp_files(media), [], "temp files left: %r" % (left,))

    def song(self, sid, who="owner"):
        st, _, j = call("GET", "/songs/" + sid, who=who)
        self.assertEqual(st, 200, j)
        return j["data"]["song"]


# ---------------------------------------------------------------------------
# audio
# ---------------------------------------------------------------------------

class Audio(UploadCase):
    def check_format(self, name, via):
        data = SAMPLES[name]
        _, _, mime, rate = FORMATS[name]
        sid = make_song()
        r = put_audio(sid, data) if via == "put" else post_audio(sid, data, filename="sine." + name)
        d = self.assertCreated(r)
        self.assertEqual(d["songId"], sid)
        audio = d["audio"]
        self.assertEqual(set(audio), AUDIO_KEYS)
        self.assertEqual(audio["mime"], mime)
        self.assertEqual(audio["size"], len(data))
        self.assertAlmostEqual(audio["durationMs"], 2000, delta=100, msg=audio)
        self.assertGreater(audio["bitrate"], 0)
        self.assertEqual(audio["sampleRate"], rate)
        self.assertEqual(audio["channels"], 1)
        self.assertEqual(d["tags"].get("title"), "Sine " + name, d)
        self.assertEqual(d["tags"].get("artist"), "Tester", d)
        # the catalog reads the same metadata back from the song's columns
        song = self.song(sid)
        self.assertEqual(song["audio"], audio)
        self.assertEqual(song["duration"], 2)  # filled from the audio: the song had none
        # stored by content: the file and its row
        key = sha(data)
        with open(media_path(key), "rb") as f:
            self.assertEqual(f.read(), data)
        row = sql("SELECT m.kind, m.sha256, m.path, m.mime, m.size FROM songs s JOIN media_files m "
                  "ON m.id = s.audio_media_id WHERE s.id = '%s'" % sid)
        self.assertEqual(row.split("|"), ["audio", key, "%s/%s" % (key[:2], key), mime, str(len(data))])
        self.assertNoLeftovers()
        return sid

    def test_wav_raw(self):
        self.check_format("wav", "put")

    def test_mp3_raw_and_multipart(self):
        self.check_format("mp3", "put")
        self.check_format("mp3", "post")

    def test_flac_multipart(self):
        self.check_format("flac", "post")

    def test_opus_raw(self):
        self.check_format("opus", "put")

    def test_m4a_multipart_and_raw(self):
        self.check_format("m4a", "post")
        self.check_format("m4a", "put")

    def test_song_duration_given_by_the_client_is_kept(self):
        sid = make_song(duration=321)
        self.assertCreated(put_audio(sid, SAMPLES["wav"], ctype="audio/wav"))
        self.assertEqual(self.song(sid)["duration"], 321)

    def test_chunked_body_and_expect_continue(self):
        sid = make_song()
        data = SAMPLES["flac"]
        c = SRV.connect(timeout=15)
        self.addCleanup(c.close)
        c.send(build_request("PUT", "/songs/%s/audio" % sid, bearer("owner") + [
            ("Content-Type", "audio/flac"), ("Transfer-Encoding", "chunked"), ("Expect", "100-continue")]))
        r = c.read_response(timeout=10)
        self.assertEqual(r.status, 100, r)
        c.send(b"".join(chunk(data[i:i + 3000]) for i in range(0, len(data), 3000)) + b"0\r\n\r\n")
        d = self.assertCreated(c.read_response(timeout=15))
        self.assertEqual(d["audio"]["size"], len(data))
        # the connection is still usable
        self.assertEqual(c.request("GET", "/health").status, 200)

    def test_replacing_audio_removes_the_old_file(self):
        sid = make_song()
        old = wav_header(20000) + random.Random(5).randbytes(20000)  # content no other test uses
        self.assertCreated(put_audio(sid, old, ctype="audio/wav"))
        self.assertTrue(os.path.exists(media_path(sha(old))))
        before = int(sql("SELECT count(*) FROM media_files"))
        self.assertCreated(put_audio(sid, SAMPLES["flac"], ctype="audio/flac"))
        self.assertFalse(os.path.exists(media_path(sha(old))))
        self.assertEqual(int(sql("SELECT count(*) FROM media_files")), before)  # one row in, one out
        self.assertEqual(sql("SELECT count(*) FROM media_files WHERE sha256 = '%s'" % sha(old)), "0")
        self.assertEqual(self.song(sid)["audio"]["mime"], "audio/flac")

    def test_wrong_type_is_415(self):
        sid = make_song()
        for body in (b"this is text, not audio" * 100, b"\x00" * 5000, fake_png(3000, 1)):
            r = put_audio(sid, body)
            self.assertJsonError(r, 415)
            r = post_audio(sid, body)
            self.assertJsonError(r, 415)
        # the right magic but nothing ffprobe can read
        for junk in (b"fLaC" + random.Random(2).randbytes(5000), b"OggS\x00" + b"\x00" * 3000):
            self.assertJsonError(put_audio(sid, junk), 415)
        # a declared type that is not audio, before any byte is read
        self.assertJsonError(put_audio(sid, SAMPLES["mp3"], ctype="text/plain"), 415)
        self.assertJsonError(put_audio(sid, SAMPLES["mp3"], ctype=None), 415)
        # POST needs multipart
        self.assertJsonError(send("POST", "/songs/%s/audio" % sid, "audio/mpeg", SAMPLES["mp3"]), 415)
        self.assertIsNone(self.song(sid)["audio"])
        self.assertNoLeftovers()

    def test_wrong_type_answered_before_the_rest_of_the_body(self):
        sid = make_song()
        c = SRV.connect(timeout=10)
        self.addCleanup(c.close)
        c.send(build_request("PUT", "/songs/%s/audio" % sid, bearer("owner") + [
            ("Content-Type", "audio/mpeg"), ("Content-Length", str(10 * MIB))]))
        c.send(b"<html>" + b"x" * 4000)
        r = c.read_response(timeout=5)
        self.assertJsonError(r, 415)
        self.assertAssertCloses(c, r)
        self.assertNoLeftovers()

    def assertAssertCloses(self, c, r):
        self.assertIn("close", r.connection_tokens())
        closed, _ = closed_by_server(c, 5)
        self.assertTrue(closed)

    def test_multipart_problems_are_400(self):
        sid = make_song()
        data = SAMPLES["mp3"]
        # no audio field
        ct, body = multipart([("file", "x.mp3", "audio/mpeg", data)])
        self.assertJsonError(send("POST", "/songs/%s/audio" % sid, ct, body), 400)
        # two audio fields
        ct, body = multipart([("audio", "a.mp3", "audio/mpeg", data), ("audio", "b.mp3", "audio/mpeg", data)])
        self.assertJsonError(send("POST", "/songs/%s/audio" % sid, ct, body), 400)
        # no closing boundary
        ct, body = multipart([("audio", "a.mp3", "audio/mpeg", data)])
        self.assertJsonError(send("POST", "/songs/%s/audio" % sid, ct, body[:-12]), 400)
        # a part without Content-Disposition
        self.assertJsonError(send("POST", "/songs/%s/audio" % sid, "multipart/form-data; boundary=b",
                                  b"--b\r\nContent-Type: audio/mpeg\r\n\r\n" + data + b"\r\n--b--\r\n"), 400)
        # no boundary parameter
        self.assertJsonError(send("POST", "/songs/%s/audio" % sid, "multipart/form-data", body), 415)
        self.assertIsNone(self.song(sid)["audio"])
        self.assertNoLeftovers()

    def test_413_mid_upload_raw_and_multipart(self):
        sid = make_song()
        blob = SAMPLES["wav"][:44] + b"\x80" * (SMALL_AUDIO_MAX + 200000)
        for kind in ("raw", "multipart"):
            c = SMALL.connect(timeout=10)
            self.addCleanup(c.close)
            if kind == "raw":
                head = [("Content-Type", "audio/wav")]
                prefix = b""
            else:
                head = [("Content-Type", "multipart/form-data; boundary=BB")]
                prefix = b'--BB\r\nContent-Disposition: form-data; name="audio"; filename="a.wav"\r\n\r\n'
            c.send(build_request("PUT" if kind == "raw" else "POST", "/songs/%s/audio" % sid, bearer("owner") + head
                                 + [("Transfer-Encoding", "chunked")]))
            # a little more than the limit, then stop: the answer must come without the rest
            c.send(chunk(prefix + blob[:SMALL_AUDIO_MAX + 50000]))
            r = c.read_response(timeout=5)
            self.assertJsonError(r, 413)
            self.assertAssertCloses(c, r)
        # a declared length over the limit is refused before the body
        c = SMALL.connect(timeout=10)
        self.addCleanup(c.close)
        c.send(build_request("PUT", "/songs/%s/audio" % sid, bearer("owner") + [
            ("Content-Type", "audio/wav"), ("Content-Length", str(SMALL_AUDIO_MAX + 1)), ("Expect", "100-continue")]))
        r = c.read_response(timeout=5)
        self.assertJsonError(r, 413)
        # exactly the limit is fine
        exact = SAMPLES["wav"][:44] + b"\x80" * (SMALL_AUDIO_MAX - 44)
        exact = wav_header(SMALL_AUDIO_MAX - 44) + exact[44:]
        self.assertCreated(put_audio(sid, exact, server=SMALL, ctype="audio/wav"))
        self.assertNoLeftovers()

    def test_permissions(self):
        sid = make_song("owner")
        data = SAMPLES["mp3"]
        self.assertJsonError(put_audio(sid, data, who=None), 401)
        self.assertJsonError(put_audio(sid, data, who="not-a-token"), 401)
        self.assertJsonError(put_audio("song-doesnotexist0000", data), 404)
        self.assertJsonError(put_audio("bad%20id!", data), 404)
        self.assertJsonError(put_audio(sid, data, who="other"), 403)
        self.assertJsonError(put_audio(sid, data, who="user"), 403)
        self.assertIsNone(self.song(sid)["audio"])
        self.assertCreated(put_audio(sid, data, who="admin"))
        # a private song does not exist for others
        private = make_song("owner", visibility="private")
        self.assertJsonError(put_audio(private, data, who="other"), 404)
        self.assertCreated(put_audio(private, data, who="owner"))
        # the refusal comes before the body: no 100 Continue
        c = SRV.connect(timeout=10)
        self.addCleanup(c.close)
        c.send(build_request("PUT", "/songs/%s/audio" % sid, bearer("other") + [
            ("Content-Type", "audio/mpeg"), ("Content-Length", str(len(data))), ("Expect", "100-continue")]))
        r = c.read_response(timeout=5)
        self.assertEqual(r.status, 403, r)
        self.assertNoLeftovers()

    def test_aborted_upload_leaves_nothing(self):
        sid = make_song()
        rows = sql("SELECT count(*) FROM media_files")
        files = stored_files()
        body = wav_header(8 * MIB) + b"\x80" * (2 * MIB)
        for kind in ("raw", "multipart"):
            s = harness.Conn(SRV.port, timeout=5)
            if kind == "raw":
                head = [("Content-Type", "audio/wav"), ("Content-Length", str(8 * MIB + 44))]
                prefix = b""
            else:
                head = [("Content-Type", "multipart/form-data; boundary=BB"), ("Content-Length", str(9 * MIB))]
                prefix = b'--BB\r\nContent-Disposition: form-data; name="audio"; filename="a.wav"\r\n\r\n'
            s.send(build_request("PUT" if kind == "raw" else "POST", "/songs/%s/audio" % sid,
                                 bearer("owner") + head) + prefix + body)
            # the temp file exists while the body streams in
            harness.wait_until(lambda: temp_files(), 5)
            s.close()
            self.assertNoLeftovers()
        self.assertEqual(sql("SELECT count(*) FROM media_files"), rows)
        self.assertEqual(stored_files(), files)
        self.assertIsNone(self.song(sid)["audio"])
        self.assertEqual(call("GET", "/health")[0], 200)

    def test_200_mib_upload_keeps_memory_flat(self):
        sid = make_song()
        total = 200 * MIB
        pid = SRV.pid()
        before = vm_rss_kib(pid)
        peak = before
        header = wav_header(total - 44, rate=48000, channels=2, bits=16)
        piece = b"\x00" * (1 * MIB)
        s = harness.Conn(SRV.port, timeout=60)
        self.addCleanup(s.close)
        s.send(build_request("PUT", "/songs/%s/audio" % sid, bearer("owner") + [
            ("Content-Type", "audio/wav"), ("Content-Length", str(total))]))
        s.send(header)
        h = hashlib.sha256(header)
        sent = len(header)
        while sent < total:
            n = min(len(piece), total - sent)
            s.send(piece[:n])
            h.update(piece[:n])
            sent += n
            if sent % (16 * MIB) < MIB:
                peak = max(peak, vm_rss_kib(pid))
        r = s.read_response(timeout=60)
        body = r.json()
        self.assertEqual(r.status, 201, body)
        after = vm_rss_kib(pid)
        peak = max(peak, after)
        self.assertLess(peak - before, 40 * 1024, "VmRSS grew from %d KiB to %d KiB" % (before, peak))
        if os.environ.get("UPLOAD_TEST_VERBOSE"):
            sys.stderr.write("[VmRSS %d KiB before, %d KiB peak, %d KiB after] " % (before, peak, after))
        audio = body["data"]["audio"]
        self.assertEqual(audio["size"], total)
        self.assertEqual(audio["sampleRate"], 48000)
        self.assertEqual(audio["channels"], 2)
        self.assertAlmostEqual(audio["durationMs"], (total - 44) * 1000 // (48000 * 4), delta=5)
        key = h.hexdigest()
        self.assertEqual(os.path.getsize(media_path(key)), total)
        self.assertEqual(sql("SELECT sha256 FROM songs s JOIN media_files m ON m.id = s.audio_media_id "
                             "WHERE s.id = '%s'" % sid), key)
        self.assertNoLeftovers()
        # the file is big: give the space back
        sql("UPDATE songs SET audio_media_id = NULL WHERE id = '%s'" % sid)
        sql("DELETE FROM media_files WHERE sha256 = '%s'" % key)
        os.unlink(media_path(key))


# ---------------------------------------------------------------------------
# covers
# ---------------------------------------------------------------------------

class Covers(UploadCase):
    def cover_key(self, album):
        return sql("SELECT m.sha256 FROM albums a JOIN media_files m ON m.id = a.cover_media_id "
                   "WHERE a.id = '%s'" % album)

    def test_cover_types(self):
        images = {
            "image/png": fake_png(20000, 11),
            "image/jpeg": b"\xff\xd8\xff\xe0" + random.Random(12).randbytes(30000),
            "image/gif": b"GIF89a" + random.Random(13).randbytes(1000),
            "image/webp": b"RIFF\x00\x10\x00\x00WEBPVP8 " + random.Random(14).randbytes(5000),
        }
        for mime, data in images.items():
            album = make_album()
            st, _, j = call("GET", "/albums/" + album)
            self.assertIsNone(j["data"]["album"]["coverUrl"])
            d = self.assertCreated(upload_cover(album, data, ctype="application/octet-stream"))
            self.assertTrue(d["coverUrl"].endswith("/albums/%s/cover" % album), d)
            st, _, j = call("GET", "/albums/" + album)
            self.assertEqual(j["data"]["album"]["coverUrl"], d["coverUrl"])
            key = sha(data)
            self.assertEqual(self.cover_key(album), key)
            self.assertEqual(sql("SELECT mime || ' ' || size || ' ' || kind FROM media_files WHERE sha256 = '%s'"
                                 % key), "%s %d cover" % (mime, len(data)))
            with open(media_path(key), "rb") as f:
                self.assertEqual(f.read(), data)
        self.assertNoLeftovers()

    def test_cover_exactly_at_the_limit(self):
        album = make_album()
        self.assertCreated(upload_cover(album, fake_png(COVER_MAX, 21)))

    def test_not_an_image_is_400(self):
        album = make_album()
        for data in (b"GIF88a" + b"x" * 100, b"just text", b"", SAMPLES["mp3"][:20000]):
            r = upload_cover(album, data, ctype="image/png")
            self.assertJsonError(r, 400)
        self.assertEqual(self.cover_key(album), "")
        # not multipart at all
        self.assertJsonError(send("POST", "/albums/%s/covers" % album, "image/png", fake_png(100, 1)), 415)
        # the field must be named cover
        ct, body = multipart([("image", "a.png", "image/png", fake_png(1000, 2))])
        self.assertJsonError(send("POST", "/albums/%s/covers" % album, ct, body), 400)
        self.assertNoLeftovers()

    def test_413_mid_body(self):
        album = make_album()
        c = SRV.connect(timeout=10)
        self.addCleanup(c.close)
        ct = "multipart/form-data; boundary=XX"
        c.send(build_request("POST", "/albums/%s/covers" % album, bearer("owner") + [
            ("Content-Type", ct), ("Transfer-Encoding", "chunked")]))
        c.send(chunk(b'--XX\r\nContent-Disposition: form-data; name="cover"; filename="big.png"\r\n'
                     b'Content-Type: image/png\r\n\r\n' + fake_png(COVER_MAX + 30000, 3)))
        r = c.read_response(timeout=5)
        self.assertJsonError(r, 413)
        self.assertIn("close", r.connection_tokens())
        closed, _ = closed_by_server(c, 5)
        self.assertTrue(closed)
        # with a declared length over the limit (and room for the multipart framing): at once
        c = SRV.connect(timeout=10)
        self.addCleanup(c.close)
        c.send(build_request("POST", "/albums/%s/covers" % album, bearer("owner") + [
            ("Content-Type", ct), ("Content-Length", str(10 * MIB))]))
        c.send(b'--XX\r\nContent-Disposition: form-data; name="cover"\r\n\r\n\x89PNG\r\n\x1a\n')
        r = c.read_response(timeout=5)
        self.assertJsonError(r, 413)
        # a cover within the limit inside a body that carries more than the limit overall is still fine
        ct2, body = multipart([("note", None, None, b"n" * 30000), ("cover", "c.png", "image/png",
                                                                      fake_png(COVER_MAX - 10, 4))])
        self.assertCreated(send("POST", "/albums/%s/covers" % album, ct2, body))
        self.assertNoLeftovers()

    def test_new_cover_replaces_the_old(self):
        album = make_album()
        first, second = fake_png(5000, 31), fake_png(6000, 32)
        self.assertCreated(upload_cover(album, first))
        first_row = sql("SELECT cover_media_id FROM albums WHERE id = '%s'" % album)
        self.assertTrue(os.path.exists(media_path(sha(first))))
        self.assertCreated(upload_cover(album, second))
        self.assertEqual(self.cover_key(album), sha(second))
        self.assertFalse(os.path.exists(media_path(sha(first))), "the old cover's file stayed")
        self.assertEqual(sql("SELECT count(*) FROM media_files WHERE id = '%s'" % first_row), "0")
        # the same cover again: a new row, the same file, the old row gone
        self.assertCreated(upload_cover(album, second))
        self.assertTrue(os.path.exists(media_path(sha(second))))
        self.assertEqual(sql("SELECT count(*) FROM media_files WHERE sha256 = '%s'" % sha(second)), "1")

    def test_identical_content_is_shared(self):
        a1, a2 = make_album(), make_album()
        data = fake_png(7000, 41)
        self.assertCreated(upload_cover(a1, data))
        self.assertCreated(upload_cover(a2, data, who="admin"))
        self.assertEqual(sql("SELECT count(*) FROM media_files WHERE sha256 = '%s'" % sha(data)), "2")
        self.assertEqual(len([k for k in stored_files() if k == sha(data)]), 1)
        # replacing one cover keeps the file the other still uses
        self.assertCreated(upload_cover(a1, fake_png(7000, 42)))
        self.assertTrue(os.path.exists(media_path(sha(data))))
        # replacing the other one too lets it go
        self.assertCreated(upload_cover(a2, fake_png(7000, 43)))
        self.assertFalse(os.path.exists(media_path(sha(data))))
        # audio and a cover with the same bytes share the file as well
        sid = make_song()
        wav = wav_header(3000) + random.Random(44).randbytes(3000)
        self.assertCreated(put_audio(sid, wav, ctype="audio/wav"))
        self.assertEqual(os.path.getsize(media_path(sha(wav))), len(wav))

    def test_permissions(self):
        album = make_album("owner")
        data = fake_png(1000, 51)
        self.assertJsonError(upload_cover(album, data, who=None), 401)
        self.assertJsonError(upload_cover("album-doesnotexist000", data), 404)
        self.assertJsonError(upload_cover(album, data, who="other"), 403)
        self.assertJsonError(upload_cover(album, data, who="user"), 403)
        self.assertCreated(upload_cover(album, data, who="admin"))
        # OpenMusic mode: covers of albums nobody owns are open as in OpenMusic, an artist's stay theirs
        self.assertJsonError(upload_cover(album, fake_png(1000, 52), who=None, server=COMPAT), 401)
        self.assertJsonError(upload_cover(album, fake_png(1000, 53), who="user", server=COMPAT), 403)
        self.assertJsonError(upload_cover(album, data, who="not-a-token", server=COMPAT), 401)
        self.assertNoLeftovers()

    def test_compat_mode_does_not_open_owned_covers(self):
        album = make_album("owner")
        first = fake_png(1000, 54)
        self.assertCreated(upload_cover(album, first))
        for who, status in ((None, 401), ("user", 403), ("other", 403)):
            with self.subTest(who=who):
                self.assertJsonError(upload_cover(album, fake_png(1000, 55), who=who, server=COMPAT), status)
        self.assertEqual(sql("SELECT m.sha256 FROM albums a JOIN media_files m ON m.id = a.cover_media_id "
                             "WHERE a.id = '%s'" % album), sha(first))
        self.assertCreated(upload_cover(album, fake_png(1000, 56), who="owner", server=COMPAT))
        self.assertCreated(upload_cover(album, fake_png(1000, 57), who="admin", server=COMPAT))
        # an album nobody owns takes anyone's cover
        st, _, j = call("POST", "/albums", {"name": uniq("Album "), "year": 2024}, server=COMPAT)
        self.assertEqual(st, 201, j)
        open_album = j["data"]["albumId"]
        self.assertCreated(upload_cover(open_album, fake_png(1000, 58), who=None, server=COMPAT))
        self.assertCreated(upload_cover(open_album, fake_png(1000, 59), who="user", server=COMPAT))
        self.assertJsonError(upload_cover(open_album, fake_png(1000, 60), who="owner"), 403)
        self.assertNoLeftovers()

    def test_aborted_cover_leaves_nothing(self):
        album = make_album()
        rows = sql("SELECT count(*) FROM media_files")
        s = harness.Conn(SRV.port, timeout=5)
        s.send(build_request("POST", "/albums/%s/covers" % album, bearer("owner") + [
            ("Content-Type", "multipart/form-data; boundary=XX"), ("Content-Length", "400000")]) +
            b'--XX\r\nContent-Disposition: form-data; name="cover"\r\n\r\n' + fake_png(200000, 61))
        harness.wait_until(lambda: temp_files(), 5)
        s.close()
        self.assertNoLeftovers()
        self.assertEqual(sql("SELECT count(*) FROM media_files"), rows)
        self.assertEqual(self.cover_key(album), "")


# ---------------------------------------------------------------------------
# GET /users/me/songs
# ---------------------------------------------------------------------------

class MySongs(UploadCase):
    def test_lists_own_songs_with_visibility(self):
        st, _, j = call("GET", "/users/me/songs")
        self.assertEqual(st, 401, j)
        reg = register("artist")
        U["lister"] = reg
        mine = [make_song("lister"), make_song("lister", visibility="private"), make_song("lister")]
        make_song("owner")
        st, h, j = call("GET", "/users/me/songs", who="lister")
        self.assertEqual(st, 200, j)
        songs = j["data"]["songs"]
        self.assertEqual([s["id"] for s in songs], mine)
        for s in songs:
            self.assertEqual(set(s), {"id", "title", "performer", "visibility"})
        self.assertEqual([s["visibility"] for s in songs], ["public", "private", "public"])
        self.assertEqual(h.get("X-Total-Count"), "3")
        st, h, j = call("GET", "/users/me/songs?page=2&limit=2", who="lister")
        self.assertEqual([s["id"] for s in j["data"]["songs"]], mine[2:])
        self.assertEqual(h.get("X-Total-Count"), "3")
        st, _, j = call("GET", "/users/me/songs?limit=0", who="lister")
        self.assertEqual(st, 400, j)
        st, _, j = call("GET", "/users/me/songs", who="user")
        self.assertEqual((st, j["data"]["songs"]), (200, []))


# ---------------------------------------------------------------------------
# disk full, startup sweep
# ---------------------------------------------------------------------------

class DiskFull(UploadCase):
    def test_full_disk_is_507_and_leaves_nothing(self):
        mnt = tempfile.mkdtemp(prefix="staccato-tmpfs-")
        self.addCleanup(shutil.rmtree, mnt, True)
        try:
            p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt], capture_output=True,
                               timeout=10)
        except (OSError, subprocess.TimeoutExpired) as e:
            self.skipTest("cannot mount a tmpfs (%s): disk-full path not tested" % e)
        if p.returncode != 0:
            self.skipTest("cannot mount a tmpfs (%s): disk-full path not tested" % p.stderr.decode().strip())
        self.addCleanup(subprocess.run, ["umount", "-l", mnt], timeout=10)
        media = os.path.join(mnt, "media")
        srv = self.start_server(env=server_env(STACCATO_MEDIA_DIR=media))
        sid = make_song()
        rows = sql("SELECT count(*) FROM media_files")
        big = wav_header(3 * MIB) + b"\x80" * (3 * MIB)
        for kind in ("raw", "multipart"):
            r = put_audio(sid, big, server=srv, ctype="audio/wav") if kind == "raw" else post_audio(sid, big,
                                                                                                  server=srv)
            self.assertJsonError(r, 507)
            self.assertNoLeftovers(media)
        album = make_album()
        # fill the disk almost: a cover of 400 KB then fits no more
        with open(os.path.join(mnt, "filler"), "wb") as f:
            f.write(b"\x00" * (800 * 1024))
        r = upload_cover(album, fake_png(400000, 71), server=srv)
        self.assertJsonError(r, 507)
        self.assertNoLeftovers(media)
        self.assertEqual(sql("SELECT count(*) FROM media_files"), rows)
        self.assertEqual([n for n in os.listdir(media) if n != "tmp"], [])
        # space again: uploads work
        os.unlink(os.path.join(mnt, "filler"))
        self.assertCreated(put_audio(sid, SAMPLES["mp3"], server=srv))


class Probing(UploadCase):
    """ffprobe as a child process: a client that leaves while it runs, a missing ffprobe, a stop mid-upload."""

    def slow_ffprobe(self):
        path = os.path.join(ROOT, "slow-ffprobe.sh")
        with open(path, "w") as f:
            f.write("#!/bin/sh\nsleep 2\nexec ffprobe \"$@\"\n")
        os.chmod(path, 0o755)
        return path

    def test_client_gone_while_probing(self):
        media = os.path.join(ROOT, "probe-media")
        srv = self.start_server(env=server_env(STACCATO_MEDIA_DIR=media, STACCATO_FFPROBE=self.slow_ffprobe()))
        sid = make_song()
        rows = sql("SELECT count(*) FROM media_files")
        s = harness.Conn(srv.port, timeout=5)
        s.send(build_request("PUT", "/songs/%s/audio" % sid, bearer("owner") + [("Content-Type", "audio/flac")],
                             SAMPLES["flac"]))
        self.assertTrue(harness.wait_until(lambda: harness.children_of(srv.pid()), 5), "ffprobe did not start")
        s.close()
        self.assertTrue(harness.wait_until(lambda: not harness.children_of(srv.pid()), 5), "ffprobe still runs")
        self.assertNoLeftovers(media)
        self.assertEqual(sql("SELECT count(*) FROM media_files"), rows)
        self.assertEqual([n for n in os.listdir(media) if n != "tmp"], [])
        # and with the client staying, the slow probe still ends in a 201
        self.assertCreated(put_audio(sid, SAMPLES["flac"], server=srv, ctype="audio/flac"))

    def test_missing_ffprobe_is_500(self):
        media = os.path.join(ROOT, "noprobe-media")
        srv = self.start_server(env=server_env(STACCATO_MEDIA_DIR=media, STACCATO_FFPROBE="/nonexistent/ffprobe"))
        sid = make_song()
        self.assertJsonError(put_audio(sid, SAMPLES["mp3"], server=srv), 500)
        self.assertNoLeftovers(media)
        self.assertIsNone(self.song(sid)["audio"])
        self.assertTrue(any("cannot run ffprobe" in ln for ln in srv.stderr_lines()))
        # covers need no ffprobe
        self.assertCreated(upload_cover(make_album(), fake_png(3000, 81), server=srv))

    def test_stop_during_an_upload(self):
        media = os.path.join(ROOT, "stop-media")
        srv = harness.Server(env=server_env(STACCATO_MEDIA_DIR=media, STACCATO_DRAIN_TIMEOUT_MS=300))
        try:
            sid = make_song()
            s = harness.Conn(srv.port, timeout=5)
            self.addCleanup(s.close)
            s.send(build_request("PUT", "/songs/%s/audio" % sid, bearer("owner") + [
                ("Content-Type", "audio/wav"), ("Content-Length", str(4 * MIB))]) + wav_header(4 * MIB) +
                b"\x80" * MIB)
            harness.wait_until(lambda: temp_files(media), 5)
            rc = srv.stop()
            self.assertEqual(rc, 0, "\n".join(srv.err.snapshot()[-20:]))
            self.assertEqual(temp_files(media), [])
        finally:
            srv.kill()


class StartupSweep(UploadCase):
    def test_leftovers_are_swept_at_start(self):
        media = os.path.join(ROOT, "sweep-media")
        os.makedirs(os.path.join(media, "tmp"))
        old = time.time() - 3 * 3600

        def put(rel, data, mtime=None):
            path = os.path.join(media, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(data)
            if mtime:
                os.utime(path, (mtime, mtime))
            return path

        # a dead process's temp file, a fresh one of a live process (ours: the test runner), an old unknown file
        dead = put("tmp/999999-0123456789abcdef.part", b"partial upload")
        live = put("tmp/%d-0123456789abcdef.part" % os.getpid(), b"in flight")
        stale = put("tmp/whatever", b"old", mtime=old)
        # an object hidden by a release that was interrupted: it goes back to its place
        hidden_data = b"hidden object"
        hidden = put("tmp/999999-aaaaaaaaaaaaaaaa.%s" % sha(hidden_data), hidden_data)
        # objects: old and unreferenced (goes), fresh and unreferenced (stays: its row may be on the way),
        # old and referenced (stays), a file that is not ours (stays)
        orphan_data, fresh_data, kept_data = b"orphan", b"fresh orphan", b"referenced"
        orphan = put("%s/%s" % (sha(orphan_data)[:2], sha(orphan_data)), orphan_data, mtime=old)
        fresh = put("%s/%s" % (sha(fresh_data)[:2], sha(fresh_data)), fresh_data)
        kept = put("%s/%s" % (sha(kept_data)[:2], sha(kept_data)), kept_data, mtime=old)
        foreign = put("ab/not-a-key", b"x", mtime=old)
        sid = make_song()
        sql("INSERT INTO media_files (id, kind, sha256, path, mime, size) VALUES ('media-sweeptest1', 'audio', "
            "'%s', '%s/%s', 'audio/mpeg', 10)" % (sha(kept_data), sha(kept_data)[:2], sha(kept_data)))
        sql("UPDATE songs SET audio_media_id = 'media-sweeptest1' WHERE id = '%s'" % sid)
        # an old row nothing points at goes too
        sql("INSERT INTO media_files (id, kind, sha256, path, mime, size, created_at) VALUES ('media-sweeptest2', "
            "'cover', '%s', 'x/y', 'image/png', 1, now() - interval '3 hours')" % ("0" * 64))

        srv = self.start_server(env=server_env(STACCATO_MEDIA_DIR=media))
        ok = harness.wait_until(lambda: not os.path.exists(orphan) and not os.path.exists(dead), 10)
        self.assertTrue(ok, "sweep did not run: %r" % srv.stderr_lines()[-10:])
        harness.wait_until(lambda: os.path.exists(media_path_in(media, sha(hidden_data))), 5)
        self.assertFalse(os.path.exists(stale))
        self.assertTrue(os.path.exists(live))
        self.assertFalse(os.path.exists(hidden))
        self.assertTrue(os.path.exists(media_path_in(media, sha(hidden_data))))
        self.assertTrue(os.path.exists(fresh))
        self.assertTrue(os.path.exists(kept))
        self.assertTrue(os.path.exists(foreign))
        harness.wait_until(lambda: sql("SELECT count(*) FROM media_files WHERE id = 'media-sweeptest2'") == "0", 5)
        self.assertEqual(sql("SELECT count(*) FROM media_files WHERE id LIKE 'media-sweeptest%'"), "1")
        self.assertTrue(any("media sweep" in ln for ln in srv.stderr_lines()), srv.stderr_lines()[-10:])


def media_path_in(media, key):
    return os.path.join(media, key[:2], key)


if __name__ == "__main__":
    harness.main()
