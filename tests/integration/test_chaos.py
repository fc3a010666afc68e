#!/usr/bin/env python3
"""Chaos: the server's dependencies and its own process failing while it works.

- PostgreSQL's postmaster killed with SIGKILL (a crash, no shutdown) under a write load of POST /albums, then
  started again: every write that was acknowledged (201 and its id) is there after the recovery (GET answers it),
  every other answer is a clean 5xx JSON error within the client's timeout, the server never dies and writes
  succeed again once the database is back.
- Redis frozen with SIGSTOP (connections stay open, nothing answers): cached reads (GET /albums/{id}/likes,
  GET /genres) are answered from the database within their Redis deadline, writes still succeed, and after SIGCONT
  the cache is used again, with the right values.
- The media directory on a 2 MiB tmpfs (when mounting one is allowed): an upload larger than the free space is a
  507 with a JSON error, leaves no temp file, no object and no row, keeps the song's previous audio, and the
  server goes on serving (and storing what fits).
- SIGTERM while an upload is half sent and a stream is half read: the server exits 0 within the drain timeout,
  the half upload leaves no temp file and no row, the song keeps its audio, and the media directory holds only
  complete files named by their content.

The file runs its own PostgreSQL + Redis (deps/services.sh, SERVICES_EPHEMERAL=1), so killing them disturbs no
other test. Every client request has a timeout: a server that hangs fails a test instead of hanging the suite.
"""

import hashlib
import itertools
import os
import random
import shutil
import signal
import string
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import build_request, request  # noqa: E402

ACCESS_KEY = "itest-chaos-access-key-0123456789abcdefghij"
REFRESH_KEY = "itest-chaos-refresh-key-0123456789abcdefghi"
CHEAP_HASH = {"STACCATO_ARGON2_M_KIB": "1024", "STACCATO_ARGON2_T": "1"}
PASSWORD = "chaos-password-1"
MIB = 1024 * 1024
NO_HANG_S = 5.0             # a cached read must be answered within this however Redis behaves
ERROR_STATUSES = (500, 503, 504)

FIXTURE = harness.ModuleFixture("staccato-chaos-", check_sanitizers=True)
SVC = None      # harness.Services
SRV = None      # the server shared by the tests that do not need settings of their own
U = {}          # artist, user, user2, admin -> {"id", "username", "token"}

_seq = itertools.count(1)


def uniq(prefix):
    return "%s%d%s" % (prefix, next(_seq), "".join(random.choice(string.ascii_lowercase) for _ in range(6)))


def server_env(**extra):
    env = FIXTURE.env(ACCESS_TOKEN_KEY=ACCESS_KEY, REFRESH_TOKEN_KEY=REFRESH_KEY, STACCATO_ACCESS_LOG="off",
                      **CHEAP_HASH)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def setUpModule():
    global SVC, SRV
    with FIXTURE.setting_up():
        SVC = FIXTURE.start_services()
        # The ephemeral cluster commits asynchronously (synchronous_commit=off): a crash may lose commits that were
        # already acknowledged, which is exactly what the crash test looks for. The application role commits
        # synchronously, as against any normally configured database (fsync stays off: only processes die here,
        # not the machine, and the kernel keeps what was written).
        SVC.psql("ALTER ROLE staccato SET synchronous_commit = on")
        SRV = FIXTURE.server("main", server_env(STACCATO_MEDIA_DIR=FIXTURE.tempdir("staccato-chaos-media-")))
        for name, role in (("artist", "artist"), ("user", "user"), ("user2", "user"), ("admin", "admin")):
            U[name] = harness.account(SRV.port, uniq("chaos_%s_" % name), PASSWORD, "Chaos " + name, role, SVC)


tearDownModule = FIXTURE.tear_down


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def call(method, path, body=None, who=None, server=None, timeout=harness.SOCK_TIMEOUT_S):
    headers = harness.bearer(U[who]["token"] if who else None)
    return request((server or SRV).port, method, path, body, headers=headers, timeout=timeout)


def wav(n, seed):
    """A valid WAV (8 kHz, mono, 8-bit PCM) of n bytes of random samples: distinct content for each seed."""
    data_bytes = n - 44
    header = (b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVE" + b"fmt " +
              struct.pack("<IHHIIHH", 16, 1, 1, 8000, 8000, 1, 8) + b"data" + struct.pack("<I", data_bytes))
    return header + random.Random(seed).randbytes(data_bytes)


def sha(data):
    return hashlib.sha256(data).hexdigest()


def error_problem(status, headers, j):
    """None when (status, headers, json) is a clean 5xx error: an allowed status, the JSON error envelope."""
    if status not in ERROR_STATUSES:
        return "status %d (allowed 201 or %r): %r" % (status, ERROR_STATUSES, j)
    ct = (headers.get("content-type") or "").replace(" ", "").lower()
    if ct != "application/json;charset=utf-8":
        return "%d with Content-Type %r" % (status, ct)
    if not isinstance(j, dict) or j.get("status") != "error" or not isinstance(j.get("message"), str) \
            or not j["message"]:
        return "%d body is not the error envelope: %r" % (status, j)
    return None


def server_complaints(srv, limit=3000):
    """The server's stderr without info/debug lines (for failure messages)."""
    lines = [ln for ln in srv.stderr_lines() if " info " not in ln and " debug " not in ln]
    return "server warnings/errors:\n" + "\n".join(lines)[-limit:]


def media_contents(media):
    """(temp files, {key: size} of the complete objects, anything else) under a media directory. An object is a
    file <key[0:2]>/<key> whose content hashes to key; a file there with other content counts as 'else'."""
    temps, objects, other = [], {}, []
    if not os.path.isdir(media):
        return temps, objects, other
    for top in sorted(os.listdir(media)):
        path = os.path.join(media, top)
        if top == "tmp" and os.path.isdir(path):
            temps = sorted(os.listdir(path))
            continue
        if len(top) != 2 or not os.path.isdir(path):
            other.append(top)
            continue
        for name in sorted(os.listdir(path)):
            with open(os.path.join(path, name), "rb") as f:
                content = f.read()
            if name[:2] == top and sha(content) == name:
                objects[name] = len(content)
            else:
                other.append("%s/%s (%d bytes, sha256 %s)" % (top, name, len(content), sha(content)))
    return temps, objects, other


def song_audio_key(song):
    """sha256 of the song's audio file, from the database ('' when it has none)."""
    return SVC.psql("SELECT coalesce(m.sha256, '') FROM songs s LEFT JOIN media_files m ON m.id = s.audio_media_id "
                    "WHERE s.id = '%s'" % song)


def pg_log():
    """The test cluster's server log (services.sh: STATE_DIR/pg/postgres.log)."""
    return os.path.join(os.path.dirname(SVC.pg_data_dir()), "postgres.log")


def media_rows():
    return int(SVC.psql("SELECT count(*) FROM media_files"))


def send_body_and_read(conn, head, body, timeout=30.0):
    """Sends a request (head + body) from a helper thread while reading its response, so that a server that
    answers before the end of the body (and then stops reading) cannot block the test. Returns the Response."""
    errors = []

    def sender():
        try:
            conn.send(head)
            for i in range(0, len(body), 256 * 1024):
                conn.send(body[i:i + 256 * 1024])
        except OSError as e:
            errors.append(e)

    th = threading.Thread(target=sender, daemon=True)
    th.start()
    try:
        return conn.read_final_response(method="PUT", timeout=timeout)
    finally:
        conn.close()        # unblocks the sender should it still be sending
        th.join(timeout)


class ChaosCase(harness.ServerTestCase):
    def own_server(self, **env):
        """A server of the test's own (settings of its own) stopped at its end: exit 0 and no sanitizer report."""
        s = harness.Server(env=server_env(**env))
        self.addCleanup(self._stop_checked, s)
        return s

    def _stop_checked(self, s):
        rc = s.returncode if s.returncode is not None else s.stop()
        s.cleanup_tmp()
        self.assertEqual(rc, 0, "server exit code: %r\nstderr tail:\n%s" % (rc, "\n".join(s.err.snapshot()[-30:])))
        self.assertNoSanitizerReports(s)

    def assertNoSanitizerReports(self, s):
        bad = [ln for ln in s.err.snapshot() if any(m in ln for m in harness.SANITIZER_MARKS)]
        self.assertEqual(bad, [], "sanitizer reports:\n" + "\n".join(bad[:20]))

    def make_song(self, server=None):
        st, _, j = call("POST", "/songs", {"title": uniq("Chaos "), "year": 2024, "performer": "Chaos",
                                          "genre": "Noise"}, who="artist", server=server)
        self.assertEqual(st, 201, j)
        return j["data"]["songId"]

    def put_audio(self, song, data, server):
        c = server.connect(timeout=30)
        head = build_request("PUT", "/songs/%s/audio" % song, list(harness.bearer(U["artist"]["token"]).items()) +
                             [("Content-Type", "audio/wav"), ("Content-Length", str(len(data)))])
        return send_body_and_read(c, head, data)

    def assertStored(self, r, data):
        self.assertEqual(r.status, 201, r)
        audio = r.json()["data"]["audio"]
        self.assertEqual(audio["size"], len(data), audio)
        return audio

    def song_audio(self, song, server):
        st, _, j = call("GET", "/songs/" + song, who="artist", server=server)
        self.assertEqual(st, 200, j)
        return j["data"]["song"]["audio"]

    def assertStreams(self, song, data, server):
        c = server.connect(timeout=30)
        try:
            r = c.request("GET", "/songs/%s/stream" % song, timeout=30)
        finally:
            c.close()
        self.assertEqual(r.status, 200, r)
        self.assertEqual(sha(r.body), sha(data), "the song streams other bytes than its audio")


# ---------------------------------------------------------------------------
# 1. PostgreSQL killed with SIGKILL under write load
# ---------------------------------------------------------------------------

class Writers:
    """Threads creating albums (POST /albums, a fresh connection each, client timeout `timeout`) until stopped or
    a hard deadline. Records (start, name, status, album id or None, problem or None)."""

    def __init__(self, srv, threads=4, timeout=10.0, deadline_s=60.0, pause_s=0.01):
        self.srv = srv
        self.timeout = timeout
        self.pause_s = pause_s
        self.deadline = time.monotonic() + deadline_s
        self.stop_ev = threading.Event()
        self.lock = threading.Lock()
        self.records = []
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def _run(self, i):
        n = 0
        while not self.stop_ev.is_set() and time.monotonic() < self.deadline:
            name = "chaos-w%d-%d-%s" % (i, n, uniq(""))
            n += 1
            t0 = time.monotonic()
            status, aid, problem = None, None, None
            try:
                status, headers, j = call("POST", "/albums", {"name": name, "year": 2000 + i}, who="artist",
                                          server=self.srv, timeout=self.timeout)
                if status == 201:
                    aid = (j or {}).get("data", {}).get("albumId")
                    if not isinstance(aid, str) or not aid:
                        problem = "201 without an album id: %r" % (j,)
                else:
                    problem = error_problem(status, headers, j)
            except (AssertionError, OSError) as e:
                problem = "no answer within %.0f s: %r" % (self.timeout, e)
            with self.lock:
                self.records.append((t0, name, status, aid, problem))
            time.sleep(self.pause_s)

    def stop(self):
        self.stop_ev.set()
        for t in self.threads:
            t.join(self.timeout + 5)
        return self.snapshot()

    def snapshot(self):
        with self.lock:
            return list(self.records)

    def count(self, pred, after=0.0):
        return sum(1 for r in self.snapshot() if r[0] > after and pred(r))


def created(r):
    return r[2] == 201 and r[4] is None


def failed(r):
    return r[2] != 201


class DatabaseKilled(ChaosCase):
    def kill_postmaster(self):
        """SIGKILLs this file's postmaster and waits until it and every process it had started are gone, so that a
        new one may start (PostgreSQL refuses while an old backend still holds the shared memory). Returns the
        time of the kill."""
        pid = SVC.postmaster_pid()
        self.assertIsNotNone(pid, "the test cluster's postmaster does not run")
        self.log_offset = os.path.getsize(pg_log()) if os.path.exists(pg_log()) else 0
        # Everything committed so far is on its way to the disk before the crash (see setUpModule).
        SVC.psql("SET synchronous_commit = on; CREATE TEMP TABLE flush_wal (x int)")
        # Stopped first, so that it starts no process between the listing of its children and its death.
        os.kill(pid, signal.SIGSTOP)
        children = harness.children_of(pid)
        os.kill(pid, signal.SIGKILL)
        t_kill = time.monotonic()
        # Backends notice their postmaster's death at their next wait and exit.
        left = harness.wait_until(lambda: not [c for c in children if harness.process_running(c)], 30) or \
            [c for c in children if harness.process_running(c)]
        self.assertTrue(left is True, "processes of the killed postmaster still run: %r" % (left,))
        # The dead postmaster stays a zombie until init reaps it, and its PID in postmaster.pid keeps a new one
        # from starting. services.sh waits a little for that; an init that reaps lazily may take longer, and a
        # zombie holds neither shared memory nor ports, so its lock file may then go.
        if not harness.wait_until(lambda: not os.path.exists("/proc/%d" % pid), 20, interval=0.1):
            try:
                os.unlink(os.path.join(SVC.pg_data_dir(), "postmaster.pid"))
            except FileNotFoundError:
                pass
        return t_kill

    def test_acknowledged_writes_survive_a_postmaster_sigkill(self):
        # Query and connect deadlines well below the client timeout: an answer must always come.
        srv = self.own_server(STACCATO_DB_POOL_SIZE=3, STACCATO_DB_QUERY_TIMEOUT_MS=3000,
                              STACCATO_DB_CONNECT_TIMEOUT_MS=1000, STACCATO_MEDIA_DIR=FIXTURE.tempdir("chaos-m-"))
        writers = Writers(srv, threads=4, timeout=10.0).start()
        self.addCleanup(writers.stop)
        self.assertTrue(harness.wait_until(lambda: writers.count(created) >= 20, 15),
                        "no writes got through before the crash: %r" % writers.snapshot()[-5:])
        restarted = False
        try:
            t_kill = self.kill_postmaster()
            self.assertTrue(harness.wait_until(lambda: writers.count(failed, t_kill) >= 5, 15),
                            "no failed write after the database was killed: %r" % writers.snapshot()[-5:])
            self.assertTrue(srv.alive(), "the server died with the database")
            self.assertEqual(srv.get("/health").status, 200)
            SVC.run("start-pg", timeout=90)
            restarted = True
        finally:
            if not restarted:
                SVC.run("start-pg", timeout=90, check=False)
        t_up = time.monotonic()
        self.assertEqual(SVC.env().get("DATABASE_URL"), SVC.database_url,
                         "PostgreSQL came back on another port; cannot test reconnection")
        with open(pg_log(), "rb") as f:
            f.seek(self.log_offset)
            log = f.read().decode("utf-8", "replace")
        self.assertIn("automatic recovery in progress", log, "PostgreSQL did not recover from a crash:\n" + log)
        self.assertTrue(harness.wait_until(lambda: writers.count(created, t_up) >= 10, 30),
                        "writes did not succeed again after the restart: %r\n%s"
                        % (writers.snapshot()[-5:], server_complaints(srv)))
        records = writers.stop()
        self.assertTrue(srv.alive(), "the server died")

        bad = [r for r in records if r[4] is not None]
        if bad:
            self.fail("%d of %d writes were answered wrongly (allowed: 201 with an id, or a JSON error %r), e.g.:"
                      "\n%s\n%s" % (len(bad), len(records), ERROR_STATUSES,
                                    "\n".join("  %s: %s" % (r[1], r[4]) for r in bad[:10]), server_complaints(srv)))
        acked = {r[3]: r for r in records if r[2] == 201}
        self.assertGreaterEqual(len(acked), 30)
        self.assertEqual(len(acked), sum(1 for r in records if r[2] == 201), "an album id was given out twice")
        # No acknowledged write is lost: the database has every one of them, and the API answers each.
        stored = set(SVC.psql("SELECT id FROM albums WHERE name LIKE 'chaos-w%'").split())
        lost = sorted(set(acked) - stored)
        self.assertEqual(lost, [], "%d of %d acknowledged albums are gone after the crash, e.g. %r"
                         % (len(lost), len(acked), [acked[a][1] for a in lost[:5]]))
        wrong = []
        for aid, r in acked.items():
            st, _, j = call("GET", "/albums/" + aid, server=srv)
            got = (st, (j or {}).get("data", {}).get("album", {}).get("name"))
            if got != (200, r[1]):
                wrong.append("%s (%s): %r" % (aid, r[1], (st, j)))
        self.assertEqual(wrong, [], "acknowledged albums not answered after the recovery:\n" + "\n".join(wrong[:10]))
        failures = [r for r in records if r[2] != 201]
        self.assertTrue(failures, "no write failed: was the database ever down?")
        if os.environ.get("CHAOS_TEST_VERBOSE"):
            by_status = {}
            for r in failures:
                by_status[r[2]] = by_status.get(r[2], 0) + 1
            sys.stderr.write("[%d writes acknowledged, failures by status %r] " % (len(acked), by_status))


# ---------------------------------------------------------------------------
# 2. Redis frozen with SIGSTOP
# ---------------------------------------------------------------------------

class RedisFrozen(ChaosCase):
    def likes(self, path, want):
        """GET a like count within NO_HANG_S: 200 with count want; returns the X-Data-Source header."""
        st, h, j = call("GET", path, timeout=NO_HANG_S)
        self.assertEqual((st, j), (200, {"status": "success", "data": {"likes": want}}))
        return h.get("x-data-source")

    def genres(self):
        """GET /genres within NO_HANG_S: (names, X-Data-Source)."""
        st, h, j = call("GET", "/genres", timeout=NO_HANG_S)
        self.assertEqual(st, 200, j)
        return sorted(g["name"] for g in j["data"]["genres"]), h.get("x-data-source")

    def wait_cached(self, read, timeout=15.0):
        """Reads until an answer comes from the cache (the server may be reconnecting); every read is checked by
        read itself. Returns the last X-Data-Source."""
        seen = []

        def cached():
            seen.append(read())
            return seen[-1] == "cache"
        harness.wait_until(cached, timeout, interval=0.1)
        return seen[-1]

    def test_reads_answered_from_the_database_while_redis_is_stopped(self):
        st, _, j = call("POST", "/albums", {"name": uniq("Frozen "), "year": 2020}, who="artist")
        self.assertEqual(st, 201, j)
        path = "/albums/%s/likes" % j["data"]["albumId"]
        self.assertEqual(call("POST", path, who="user")[0], 201)
        genre = uniq("chaos-genre-")
        self.assertEqual(call("POST", "/genres", {"name": genre}, who="admin")[0], 201)
        # Before: the cache answers.
        self.assertEqual(self.wait_cached(lambda: self.likes(path, 1)), "cache")
        self.assertEqual(self.wait_cached(lambda: self.genres()[1]), "cache")
        pid = SVC.redis_pid()
        self.assertIsNotNone(pid, "the test Redis does not run")
        later = uniq("chaos-genre-")
        os.kill(pid, signal.SIGSTOP)
        try:
            for _ in range(3):
                self.assertIsNone(self.likes(path, 1), "a like count from the cache of a stopped Redis")
                names, src = self.genres()
                self.assertIn(genre, names)
                self.assertIsNone(src, "genres from the cache of a stopped Redis")
            # Writes go on, and the reads after them see them.
            self.assertEqual(call("POST", path, who="user2", timeout=NO_HANG_S)[0], 201)
            self.assertEqual(call("POST", "/genres", {"name": later}, who="admin", timeout=NO_HANG_S)[0], 201)
            for _ in range(3):
                self.assertIsNone(self.likes(path, 2))
                names, src = self.genres()
                self.assertIn(later, names)
                self.assertIsNone(src)
            self.assertTrue(SRV.alive())
        finally:
            os.kill(pid, signal.SIGCONT)
        # After: the cache is used again, and what it holds is what the database says (no stale value written
        # back by commands that waited in the frozen Redis's buffers).
        self.assertEqual(self.wait_cached(lambda: self.likes(path, 2)), "cache",
                         "the like count never came from the cache after SIGCONT")
        self.assertEqual(self.likes(path, 2), "cache")
        self.assertEqual(self.wait_cached(lambda: self.genres()[1]), "cache",
                         "genres never came from the cache after SIGCONT")
        names, src = self.genres()
        self.assertEqual(src, "cache")
        self.assertIn(later, names)
        self.assertEqual(call("DELETE", path, who="user2")[0], 200)
        self.assertIsNone(self.likes(path, 1))
        self.assertEqual(self.likes(path, 1), "cache")


# ---------------------------------------------------------------------------
# 3. the disk full during an upload
# ---------------------------------------------------------------------------

class DiskFull(ChaosCase):
    def mount_tmpfs(self, size):
        mnt = tempfile.mkdtemp(prefix="staccato-chaos-tmpfs-")
        self.addCleanup(shutil.rmtree, mnt, True)
        try:
            p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s" % size, "tmpfs", mnt],
                               capture_output=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired) as e:
            self.skipTest("cannot mount a tmpfs (%s): the full disk is not tested" % e)
        if p.returncode != 0:
            self.skipTest("cannot mount a tmpfs (%s): the full disk is not tested"
                          % p.stderr.decode("utf-8", "replace").strip())
        self.addCleanup(subprocess.run, ["umount", "-l", mnt], timeout=10)
        return mnt

    def test_upload_larger_than_the_free_space_is_507(self):
        mnt = self.mount_tmpfs("2m")
        media = os.path.join(mnt, "media")
        srv = self.own_server(STACCATO_MEDIA_DIR=media)     # stopped before the unmount (cleanups run LIFO)
        song = self.make_song(srv)
        before = wav(8044, 301)
        audio = self.assertStored(self.put_audio(song, before, srv), before)
        rows = media_rows()
        self.assertEqual(media_contents(media), ([], {sha(before): len(before)}, []))

        big = wav(3 * MIB, 302)
        r = self.put_audio(song, big, srv)
        self.assertJsonError(r, 507)
        # Nothing half-written stays (the server may still be removing its temp file for a moment).
        harness.wait_until(lambda: not media_contents(media)[0], 5)
        self.assertEqual(media_contents(media), ([], {sha(before): len(before)}, []),
                         "(temp files, objects, other files) in the media directory after the 507")
        self.assertEqual(media_rows(), rows, "a media_files row was left by the failed upload")
        # The song keeps its previous audio.
        self.assertEqual(song_audio_key(song), sha(before))
        self.assertEqual(self.song_audio(song, srv), audio)
        self.assertStreams(song, before, srv)
        # The server goes on serving, and stores what fits.
        self.assertTrue(srv.alive())
        self.assertEqual(srv.get("/health").status, 200)
        after = wav(20044, 303)
        self.assertStored(self.put_audio(song, after, srv), after)
        self.assertEqual(song_audio_key(song), sha(after))
        self.assertStreams(song, after, srv)


# ---------------------------------------------------------------------------
# 4. SIGTERM during an upload and a stream
# ---------------------------------------------------------------------------

class TermDuringTransfers(ChaosCase):
    DRAIN_MS = 2000

    def test_sigterm_with_a_half_upload_and_a_stalled_stream(self):
        media = os.path.join(FIXTURE.tempdir("staccato-chaos-term-"), "media")
        srv = self.own_server(STACCATO_MEDIA_DIR=media, STACCATO_DRAIN_TIMEOUT_MS=self.DRAIN_MS)
        song = self.make_song(srv)
        before = wav(8044, 401)
        self.assertStored(self.put_audio(song, before, srv), before)
        # A file large enough that the socket buffers cannot hold it: its stream stays in progress.
        streamed = self.make_song(srv)
        long_audio = wav(12 * MIB, 402)
        self.assertStored(self.put_audio(streamed, long_audio, srv), long_audio)
        rows = media_rows()
        objects = {sha(before): len(before), sha(long_audio): len(long_audio)}
        self.assertEqual(media_contents(media), ([], objects, []))

        # The stream: read the head and a little of the body, then stop reading.
        stream = srv.connect(timeout=10, rcvbuf=4096)
        self.addCleanup(stream.close)
        stream.send(build_request("GET", "/songs/%s/stream" % streamed))
        got = b""
        while b"\r\n\r\n" not in got or len(got) < 32 * 1024:
            piece = stream.recv_some(8192)
            self.assertTrue(piece, "the stream ended after %d bytes" % len(got))
            got += piece
        self.assertTrue(got.startswith(b"HTTP/1.1 200 "), got[:200])
        # The upload: half of a 4 MiB body, then nothing more.
        upload = srv.connect(timeout=10)
        self.addCleanup(upload.close)
        half = wav(4 * MIB, 403)[:2 * MIB]
        upload.send(build_request("PUT", "/songs/%s/audio" % song,
                                  list(harness.bearer(U["artist"]["token"]).items()) +
                                  [("Content-Type", "audio/wav"), ("Content-Length", str(4 * MIB))]) + half)
        self.assertTrue(harness.wait_until(lambda: media_contents(media)[0], 5),
                        "no temp file while the upload streams in")

        srv.send_signal(signal.SIGTERM)
        # Exits within the drain timeout (plus a generous margin: no hang, not a speed test).
        rc = srv.wait(self.DRAIN_MS / 1000.0 + 10)
        self.assertEqual(rc, 0, "exit code after SIGTERM (None: still running)\n%s"
                         % "\n".join(srv.err.snapshot()[-30:]))
        self.assertNoSanitizerReports(srv)
        # The upload was not stored, whatever the client was told.
        data, _ = upload.read_until_eof(5)
        self.assertFalse(data.startswith(b"HTTP/1.1 2"), "the half upload was acknowledged: %r" % data[:300])
        # The stream did not complete.
        rest, _ = stream.read_until_eof(10)
        body_len = len(got) - got.index(b"\r\n\r\n") - 4 + len(rest)
        self.assertLess(body_len, len(long_audio))
        # Nothing is left behind but complete content-addressed files; no row for the half upload.
        self.assertEqual(media_contents(media), ([], objects, []),
                         "(temp files, objects, other files) in the media directory after the stop")
        self.assertEqual(media_rows(), rows, "a media_files row was left by the half upload")
        self.assertEqual(song_audio_key(song), sha(before), "the song lost its audio")
        # A new server on the same directory serves the song's previous audio.
        again = self.own_server(STACCATO_MEDIA_DIR=media)
        self.assertEqual(self.song_audio(song, again)["size"], len(before))
        self.assertStreams(song, before, again)


if __name__ == "__main__":
    harness.main()
