#!/usr/bin/env python3
"""Likes and ratings: the OpenMusic album likes flow with every status code, the
album like count cache (the exact X-Data-Source sequence, its TTL, Redis stopped
and Redis stalled, a stampede of concurrent misses coalesced into one database
refill, clients leaving while they wait), song likes, GET /users/me/likes with
pagination, ratings (upsert, validation, delete), hidden (flagged or private)
items, odd ids, missing tokens and HEAD on the GET routes.

The file runs its own PostgreSQL + Redis (deps/services.sh, SERVICES_EPHEMERAL=1)
in a temp directory and applies the migrations with `staccato migrate`. Albums
and songs are inserted with SQL (their endpoints belong to another module). One
server (debug log level, so that its "album likes cache refill <id>" lines can be
counted) serves every test.
"""

import json
import os
import secrets
import socket
import string
import subprocess
import sys
import threading
import time
import unittest
from urllib.parse import urlparse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import build_request, request  # noqa: E402

ACCESS_KEY = "itest-social-access-key-0123456789abcdefgh"
REFRESH_KEY = "itest-social-refresh-key-0123456789abcdefg"
assert len(ACCESS_KEY) >= 40 and len(REFRESH_KEY) >= 40 and ACCESS_KEY != REFRESH_KEY

PASSWORD = "correct horse battery"
CACHE_HEADER = "X-Data-Source"
REFILL_LINE = "album likes cache refill "
VALUE_KEY = "staccato:album-likes:"
LOCK_KEY = "staccato:album-likes-lock:"

FIXTURE = harness.ModuleFixture("staccato-social-", check_sanitizers=True)
SVC = None      # harness.Services
SRV = None      # the server
USERS = {}      # name -> {"id", "token"}
REDIS_PORT = None

ODD_IDS = ["nope", "album-" + "x" * 300, "%00", "%C3%A9", "a'b;--", "..", "%2F", "%20", "%FF%FE",
           "album-%22%7D"]


# ---------------------------------------------------------------------------
# module setup
# ---------------------------------------------------------------------------

def setUpModule():
    global SVC, SRV, REDIS_PORT
    with FIXTURE.setting_up():
        SVC = FIXTURE.start_services()
        REDIS_PORT = urlparse(SVC.redis_url).port
        SRV = FIXTURE.server("main", FIXTURE.env(ACCESS_TOKEN_KEY=ACCESS_KEY, REFRESH_TOKEN_KEY=REFRESH_KEY,
                                                 STACCATO_ARGON2_M_KIB="1024", STACCATO_ARGON2_T="1",
                                                 STACCATO_LOG_LEVEL="debug", STACCATO_ACCESS_LOG="off",
                                                 STACCATO_LOGIN_MAX_PER_ACCOUNT="100000",
                                                 STACCATO_LOGIN_MAX_PER_ADDRESS="1000000"))
        for name, role in (("alice", "user"), ("bob", "user"), ("carol", "artist"), ("dave", "admin")):
            USERS[name] = make_user(name, role)


tearDownModule = FIXTURE.tear_down


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def make_user(name, role):
    return harness.account(SRV.port, "%s_%s" % (name, secrets.token_hex(4)), PASSWORD, name.title(), role, SVC)


def auth(name):
    return harness.bearer(USERS[name]["token"])


def new_id(prefix):
    alphabet = string.ascii_letters + string.digits + "-_"
    return prefix + "-" + "".join(secrets.choice(alphabet) for _ in range(16))


def sql_str(v):
    return "NULL" if v is None else "'" + str(v).replace("'", "''") + "'"


def add_album(name="Album", owner=None, flagged=False):
    aid = new_id("album")
    SVC.psql("INSERT INTO albums (id, name, year, owner_id, flagged) VALUES (%s, %s, 2020, %s, %s)"
             % (sql_str(aid), sql_str(name), sql_str(USERS[owner]["id"] if owner else None),
                "true" if flagged else "false"))
    return aid


def add_song(title="Song", performer="Someone", owner=None, visibility="public", flagged=False):
    sid = new_id("song")
    SVC.psql("INSERT INTO songs (id, title, year, performer, genre, owner_id, visibility, flagged) "
             "VALUES (%s, %s, 2020, %s, 'Pop', %s, %s, %s)"
             % (sql_str(sid), sql_str(title), sql_str(performer),
                sql_str(USERS[owner]["id"] if owner else None), sql_str(visibility),
                "true" if flagged else "false"))
    return sid


def call(method, path, body=None, who=None, headers=None):
    h = dict(headers or {})
    if who:
        h.update(auth(who))
    return request(SRV.port, method, path, body=body, headers=h)


def redis_cli(*args, check=True):
    p = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(REDIS_PORT)] + [str(a) for a in args],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=15)
    if check and p.returncode != 0:
        raise AssertionError("redis-cli %r failed: %s" % (args, p.stderr.decode()))
    return p.stdout.decode().strip()


def wait_table_locked(table, timeout=10.0):
    """Waits until another session holds an ACCESS EXCLUSIVE lock on table (a thread's psql that takes it), instead
    of guessing how long that psql needs to start."""
    query = ("SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = '%s' "
             "AND l.mode = 'AccessExclusiveLock' AND l.granted" % table)
    if not harness.wait_until(lambda: SVC.psql(query) != "0", timeout, interval=0.02):
        raise AssertionError("no session took the lock on %s within %.0f s" % (table, timeout))


def refill_lines(album_id):
    return [ln for ln in SRV.stderr_lines() if ln.rstrip().endswith(REFILL_LINE + album_id)]


def concurrent_gets(path, n, headers=None, timeout=15.0):
    """n connections opened first, then n GETs sent together (a barrier); returns
    the responses (or the exceptions) in order."""
    conns = [SRV.connect(timeout=timeout) for _ in range(n)]
    results = [None] * n
    barrier = threading.Barrier(n, timeout=timeout)
    data = build_request("GET", path, headers=headers)

    def one(i):
        try:
            barrier.wait()
            conns[i].send(data)
            results[i] = conns[i].read_response(timeout=timeout)
        except Exception as e:  # reported by the caller
            results[i] = e
        finally:
            conns[i].close()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout + 5)
    return results


class SocialTestCase(unittest.TestCase):
    def assertFail(self, resp, status):
        st, headers, j = resp
        self.assertEqual(st, status, resp)
        ct = (headers.get("content-type") or "").replace(" ", "").lower()
        self.assertEqual(ct, "application/json;charset=utf-8", resp)
        self.assertIsInstance(j, dict, resp)
        self.assertEqual(set(j), {"status", "message"}, j)
        self.assertEqual(j["status"], "fail" if status < 500 else "error", j)
        self.assertTrue(isinstance(j["message"], str) and j["message"], j)
        if status == 401:
            self.assertTrue((headers.get("www-authenticate") or "").startswith("Bearer"), resp)
        return j

    def assertMessage(self, resp, status):
        st, _, j = resp
        self.assertEqual(st, status, resp)
        self.assertEqual(set(j), {"status", "message"}, j)
        self.assertEqual(j["status"], "success", j)
        self.assertTrue(isinstance(j["message"], str) and j["message"], j)

    def likes(self, path, who=None, cached=None):
        """GET a likes count; checks the envelope and, when cached is not None,
        whether the response carries X-Data-Source: cache. Returns the count."""
        st, headers, j = call("GET", path, who=who)
        self.assertEqual(st, 200, (st, j))
        self.assertEqual(j, {"status": "success", "data": {"likes": j["data"]["likes"]}}, j)
        self.assertIsInstance(j["data"]["likes"], int, j)
        self.assertFalse(isinstance(j["data"]["likes"], bool), j)
        if cached is True:
            self.assertEqual(headers.get_all(CACHE_HEADER), ["cache"], headers)
        elif cached is False:
            self.assertEqual(headers.get_all(CACHE_HEADER), [], headers)
        return j["data"]["likes"]


# ---------------------------------------------------------------------------
# album likes
# ---------------------------------------------------------------------------

class AlbumLikes(SocialTestCase):
    def test_openmusic_flow(self):
        aid = add_album("OpenMusic")
        path = "/albums/%s/likes" % aid
        self.assertEqual(self.likes(path), 0)
        # authentication first
        self.assertFail(call("POST", path), 401)
        self.assertFail(call("POST", path, headers={"Authorization": "Bearer nonsense"}), 401)
        self.assertFail(call("DELETE", path), 401)
        # like, like twice, like an unknown album
        self.assertMessage(call("POST", path, who="alice"), 201)
        self.assertFail(call("POST", path, who="alice"), 400)
        self.assertFail(call("POST", "/albums/%s/likes" % new_id("album"), who="alice"), 404)
        self.assertEqual(self.likes(path), 1)
        self.assertMessage(call("POST", path, who="bob"), 201)
        self.assertEqual(self.likes(path), 2)
        self.assertEqual(SVC.psql("SELECT count(*) FROM album_likes WHERE album_id = '%s'" % aid), "2")
        # unlike, unlike twice, unlike an unknown album
        self.assertMessage(call("DELETE", path, who="alice"), 200)
        self.assertFail(call("DELETE", path, who="alice"), 404)
        self.assertFail(call("DELETE", "/albums/%s/likes" % new_id("album"), who="alice"), 404)
        self.assertEqual(self.likes(path), 1)
        # liking again after an unlike works
        self.assertMessage(call("POST", path, who="alice"), 201)
        self.assertEqual(self.likes(path), 2)
        # unknown album on the public read
        self.assertFail(call("GET", "/albums/%s/likes" % new_id("album")), 404)
        # a body on POST is ignored (the route takes none)
        self.assertMessage(call("POST", path, body={"x": 1}, who="dave"), 201)
        self.assertEqual(self.likes(path), 3)

    def test_cache_header_sequence(self):
        aid = add_album("Cached")
        path = "/albums/%s/likes" % aid
        self.assertMessage(call("POST", path, who="bob"), 201)
        self.assertEqual(redis_cli("EXISTS", VALUE_KEY + aid), "0")
        self.assertEqual(self.likes(path, cached=False), 1)
        self.assertEqual(self.likes(path, cached=True), 1)
        self.assertEqual(redis_cli("GET", VALUE_KEY + aid), "1")
        ttl = int(redis_cli("TTL", VALUE_KEY + aid))
        self.assertTrue(1700 < ttl <= 1800, ttl)
        self.assertMessage(call("POST", path, who="alice"), 201)
        self.assertEqual(self.likes(path, cached=False), 2)
        self.assertEqual(self.likes(path, cached=True), 2)
        self.assertEqual(self.likes(path, cached=True), 2)
        self.assertMessage(call("DELETE", path, who="alice"), 200)
        self.assertEqual(self.likes(path, cached=False), 1)
        self.assertEqual(self.likes(path, cached=True), 1)
        # failed writes change nothing and leave the cache alone
        self.assertFail(call("POST", path, who="bob"), 400)
        self.assertFail(call("DELETE", path, who="alice"), 404)
        self.assertEqual(self.likes(path, cached=True), 1)
        # the cache is shared: a value put there is what the next read answers
        redis_cli("SET", VALUE_KEY + aid, "41", "EX", "60")
        self.assertEqual(self.likes(path, cached=True), 41)
        # a value that is not a count is a miss, refilled from the database
        redis_cli("SET", VALUE_KEY + aid, "garbage", "EX", "60")
        self.assertEqual(self.likes(path, cached=False), 1)
        self.assertEqual(self.likes(path, cached=True), 1)
        # HEAD is a read too
        c = SRV.connect()
        try:
            r = c.request("HEAD", path)
        finally:
            c.close()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"")
        self.assertEqual(r.header("x-data-source"), "cache")
        self.assertEqual(int(r.header("content-length")),
                         len(json.dumps({"status": "success", "data": {"likes": 1}}, separators=(",", ":"))))

    def test_flagged_album_hidden(self):
        aid = add_album("Flagged", owner="carol", flagged=True)
        path = "/albums/%s/likes" % aid
        self.assertFail(call("GET", path), 404)
        self.assertFail(call("GET", path, who="alice"), 404)
        self.assertFail(call("POST", path, who="alice"), 404)
        self.assertFail(call("DELETE", path, who="alice"), 404)
        # the owner and admins see it, and may like it
        self.assertMessage(call("POST", path, who="carol"), 201)
        self.assertMessage(call("POST", path, who="dave"), 201)
        self.assertEqual(self.likes(path, who="carol", cached=False), 2)
        self.assertEqual(self.likes(path, who="dave", cached=False), 2)
        # the count of a hidden album is never cached (a hit would skip the visibility check)
        self.assertEqual(self.likes(path, who="carol", cached=False), 2)
        self.assertEqual(redis_cli("EXISTS", VALUE_KEY + aid), "0")
        self.assertFail(call("GET", path, who="bob"), 404)
        # unflagged: visible to all, cached again
        SVC.psql("UPDATE albums SET flagged = false WHERE id = '%s'" % aid)
        self.assertEqual(self.likes(path, cached=False), 2)
        self.assertEqual(self.likes(path, who="bob", cached=True), 2)

    def test_flag_and_delete_drop_the_cached_count(self):
        """Regression: a cached like count answered 200 for an album that had just been flagged or deleted."""
        aid = add_album("Soon hidden", owner="carol")
        path = "/albums/%s/likes" % aid
        self.assertMessage(call("POST", path, who="alice"), 201)
        self.assertEqual(self.likes(path, cached=False), 1)
        self.assertEqual(self.likes(path, cached=True), 1)
        self.assertMessage(call("PUT", "/albums/%s/flag" % aid, {"flagged": True}, who="dave"), 200)
        self.assertFail(call("GET", path), 404)
        self.assertMessage(call("PUT", "/albums/%s/flag" % aid, {"flagged": False}, who="dave"), 200)
        self.assertEqual(self.likes(path, cached=False), 1)
        self.assertEqual(self.likes(path, cached=True), 1)
        self.assertMessage(call("DELETE", "/albums/%s" % aid, who="dave"), 200)
        self.assertFail(call("GET", path), 404)

    def test_odd_ids_are_404(self):
        for odd in ODD_IDS:
            path = "/albums/%s/likes" % odd
            self.assertFail(call("GET", path), 404)
            self.assertFail(call("POST", path, who="alice"), 404)
            self.assertFail(call("DELETE", path, who="alice"), 404)
            self.assertFail(call("POST", path), 401)

    def test_stampede_is_coalesced(self):
        aid = add_album("Stampede")
        path = "/albums/%s/likes" % aid
        for who in ("alice", "bob", "carol"):
            self.assertMessage(call("POST", path, who=who), 201)
        self.assertEqual(redis_cli("EXISTS", VALUE_KEY + aid), "0")
        self.assertEqual(refill_lines(aid), [])
        results = concurrent_gets(path, 50)
        for r in results:
            self.assertIsInstance(r, harness.Response, r)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json(), {"status": "success", "data": {"likes": 3}})
        # error-log lines are written as they happen; give the collector thread a moment
        time.sleep(0.3)
        lines = refill_lines(aid)
        self.assertGreaterEqual(len(lines), 1)
        self.assertLessEqual(len(lines), 2, lines)
        self.assertEqual(self.likes(path, cached=True), 3)
        self.assertEqual(len(refill_lines(aid)), len(lines))

    def test_stampede_on_a_slow_database(self):
        """The refill is held up (a table lock) while 50 misses arrive: every one
        of them waits for the same refill instead of querying on its own."""
        aid = add_album("Slow stampede")
        path = "/albums/%s/likes" % aid
        for who in ("alice", "bob"):
            self.assertMessage(call("POST", path, who=who), 201)
        self.assertEqual(redis_cli("EXISTS", VALUE_KEY + aid), "0")
        locker = threading.Thread(target=SVC.psql, args=(
            "BEGIN; LOCK TABLE album_likes IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(1); COMMIT",))
        locker.start()
        try:
            wait_table_locked("album_likes")
            results = concurrent_gets(path, 50)
        finally:
            locker.join(30)
        for r in results:
            self.assertIsInstance(r, harness.Response, r)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json(), {"status": "success", "data": {"likes": 2}})
        time.sleep(0.3)
        lines = refill_lines(aid)
        self.assertGreaterEqual(len(lines), 1)
        self.assertLessEqual(len(lines), 2, lines)
        self.assertEqual(self.likes(path, cached=True), 2)

    def test_clients_leaving_while_waiting(self):
        """Clients that go away while their request waits (on Redis, on a refill)
        must not leave anything behind that the server trips over later."""
        aid = add_album("Leavers")
        path = "/albums/%s/likes" % aid
        self.assertMessage(call("POST", path, who="alice"), 201)
        data = build_request("GET", path)
        for _ in range(3):
            conns = [SRV.connect() for _ in range(30)]
            for c in conns:
                c.send(data)
            for c in conns:
                c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                c.close()
            self.assertMessage(call("POST", path, who="bob"), 201)
            self.assertMessage(call("DELETE", path, who="bob"), 200)
        # with the database stalled (a table lock held for a moment), the requests wait on a refill: all of
        # them leave (the refill is abandoned), then some leave and the others get the answer
        redis_cli("DEL", VALUE_KEY + aid, LOCK_KEY + aid)
        locker = threading.Thread(target=SVC.psql, args=(
            "BEGIN; LOCK TABLE album_likes IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(1.5); COMMIT",))
        locker.start()
        try:
            wait_table_locked("album_likes")
            conns = [SRV.connect() for _ in range(20)]
            for c in conns:
                c.send(data)
            time.sleep(0.2)
            for c in conns:
                c.close()
            conns = [SRV.connect() for _ in range(10)]
            for c in conns:
                c.send(data)
            time.sleep(0.1)
            for c in conns[::2]:
                c.close()
            for c in conns[1::2]:
                r = c.read_response(timeout=10)
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.json()["data"]["likes"], 1)
                c.close()
        finally:
            locker.join(30)
        # with Redis stalled, the requests wait on their cache reads and on the refill
        redis_cli("CLIENT", "PAUSE", "1500", "ALL")
        try:
            conns = [SRV.connect() for _ in range(30)]
            for c in conns:
                c.send(data)
            time.sleep(0.1)
            for c in conns[::2]:
                c.close()
            for c in conns[1::2]:
                r = c.read_response(timeout=10)
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.json()["data"]["likes"], 1)
                self.assertIsNone(r.header("x-data-source"), r)
                c.close()
        finally:
            redis_cli("CLIENT", "UNPAUSE")
        self.assertEqual(self.likes(path), 1)
        self.assertTrue(SRV.alive())


class AlbumLikesWithoutRedis(SocialTestCase):
    def wait_for_cache(self, path, count, timeout=20.0):
        """Reads until one is answered from the cache (the client reconnects with
        backoff); every read must have the right count."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st, headers, j = call("GET", path)
            self.assertEqual((st, j["data"]["likes"]), (200, count), j)
            if headers.get(CACHE_HEADER) == "cache":
                return True
            time.sleep(0.1)
        return False

    def test_redis_stopped(self):
        aid = add_album("No cache")
        path = "/albums/%s/likes" % aid
        self.assertMessage(call("POST", path, who="alice"), 201)
        self.assertEqual(self.likes(path, cached=False), 1)
        self.assertEqual(self.likes(path, cached=True), 1)
        SVC.run("stop-redis")
        try:
            for _ in range(5):
                self.assertEqual(self.likes(path, cached=False), 1)
            self.assertMessage(call("POST", path, who="bob"), 201)
            self.assertEqual(self.likes(path, cached=False), 2)
            self.assertFail(call("POST", path, who="bob"), 400)
            self.assertMessage(call("DELETE", path, who="alice"), 200)
            self.assertEqual(self.likes(path, cached=False), 1)
            self.assertFail(call("GET", "/albums/%s/likes" % new_id("album")), 404)
            results = concurrent_gets(path, 20)
            for r in results:
                self.assertIsInstance(r, harness.Response, r)
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.json()["data"]["likes"], 1)
                self.assertIsNone(r.header("x-data-source"), r)
        finally:
            SVC.run("start-redis")
        self.assertTrue(self.wait_for_cache(path, 1), "the cache did not come back after Redis restarted")
        self.assertEqual(self.likes(path, cached=True), 1)
        self.assertMessage(call("POST", path, who="alice"), 201)
        self.assertEqual(self.likes(path, cached=False), 2)
        self.assertEqual(self.likes(path, cached=True), 2)

    def test_redis_stalled(self):
        """A Redis that does not answer in time (paused clients) is a miss: the
        database answers, without the cache header, and writes still succeed."""
        aid = add_album("Slow cache")
        path = "/albums/%s/likes" % aid
        self.assertMessage(call("POST", path, who="alice"), 201)
        self.assertEqual(self.likes(path, cached=False), 1)
        self.assertEqual(self.likes(path, cached=True), 1)
        redis_cli("CLIENT", "PAUSE", "3000", "ALL")
        try:
            self.assertEqual(self.likes(path, cached=False), 1)
            self.assertMessage(call("POST", path, who="bob"), 201)
        finally:
            redis_cli("CLIENT", "UNPAUSE")
        # the DEL sent while Redis stalled reaches it afterwards
        self.assertTrue(self.wait_for_cache(path, 2), "the cache did not come back")


# ---------------------------------------------------------------------------
# song likes
# ---------------------------------------------------------------------------

class SongLikes(SocialTestCase):
    def test_song_likes_flow(self):
        sid = add_song("Liked")
        path = "/songs/%s/likes" % sid
        self.assertEqual(self.likes(path), 0)
        self.assertFail(call("POST", path), 401)
        self.assertFail(call("DELETE", path), 401)
        self.assertMessage(call("POST", path, who="alice"), 201)
        self.assertFail(call("POST", path, who="alice"), 400)
        self.assertMessage(call("POST", path, who="bob"), 201)
        self.assertEqual(self.likes(path, cached=False), 2)
        self.assertEqual(self.likes(path, cached=False), 2)
        self.assertMessage(call("DELETE", path, who="alice"), 200)
        self.assertFail(call("DELETE", path, who="alice"), 404)
        self.assertEqual(self.likes(path), 1)
        unknown = "/songs/%s/likes" % new_id("song")
        self.assertFail(call("GET", unknown), 404)
        self.assertFail(call("POST", unknown, who="alice"), 404)
        self.assertFail(call("DELETE", unknown, who="alice"), 404)
        for odd in ODD_IDS:
            p = "/songs/%s/likes" % odd
            self.assertFail(call("GET", p), 404)
            self.assertFail(call("POST", p, who="alice"), 404)
            self.assertFail(call("DELETE", p, who="alice"), 404)

    def test_hidden_songs(self):
        private = add_song("Private", owner="carol", visibility="private")
        flagged = add_song("Flagged", owner="carol", flagged=True)
        for sid in (private, flagged):
            path = "/songs/%s/likes" % sid
            self.assertFail(call("GET", path), 404)
            self.assertFail(call("GET", path, who="alice"), 404)
            self.assertFail(call("POST", path, who="alice"), 404)
            self.assertFail(call("DELETE", path, who="alice"), 404)
            self.assertMessage(call("POST", path, who="carol"), 201)
            self.assertMessage(call("POST", path, who="dave"), 201)
            self.assertEqual(self.likes(path, who="carol"), 2)
            self.assertEqual(self.likes(path, who="dave"), 2)
            self.assertMessage(call("DELETE", path, who="dave"), 200)


class MyLikes(SocialTestCase):
    def test_liked_songs_paginated(self):
        alice = USERS["alice"]
        name = make_user("erin", "user")
        USERS["erin"] = name
        songs = [add_song("Title %d" % i, "Performer %d" % i) for i in range(5)]
        for sid in songs:
            self.assertMessage(call("POST", "/songs/%s/likes" % sid, who="erin"), 201)
        newest_first = list(reversed(songs))

        st, headers, j = call("GET", "/users/me/likes", who="erin")
        self.assertEqual(st, 200, j)
        self.assertEqual(set(j), {"status", "data"}, j)
        self.assertEqual(j["status"], "success")
        self.assertEqual(set(j["data"]), {"songs"}, j)
        self.assertEqual([s["id"] for s in j["data"]["songs"]], newest_first)
        for s in j["data"]["songs"]:
            self.assertEqual(set(s), {"id", "title", "performer"}, s)
            i = songs.index(s["id"])
            self.assertEqual((s["title"], s["performer"]), ("Title %d" % i, "Performer %d" % i))
        self.assertEqual(headers.get("x-total-count"), "5")

        pages = []
        for page in (1, 2, 3, 4):
            st, headers, j = call("GET", "/users/me/likes?limit=2&page=%d" % page, who="erin")
            self.assertEqual(st, 200, j)
            self.assertEqual(headers.get("x-total-count"), "5")
            pages.append([s["id"] for s in j["data"]["songs"]])
        self.assertEqual(pages, [newest_first[0:2], newest_first[2:4], newest_first[4:5], []])

        # unliking removes, liking again makes it the newest
        self.assertMessage(call("DELETE", "/songs/%s/likes" % songs[0], who="erin"), 200)
        self.assertMessage(call("POST", "/songs/%s/likes" % songs[0], who="erin"), 201)
        st, headers, j = call("GET", "/users/me/likes?limit=1", who="erin")
        self.assertEqual([s["id"] for s in j["data"]["songs"]], [songs[0]])
        self.assertEqual(headers.get("x-total-count"), "5")

        # a song that became hidden leaves the list
        SVC.psql("UPDATE songs SET flagged = true WHERE id = '%s'" % songs[1])
        st, headers, j = call("GET", "/users/me/likes", who="erin")
        self.assertNotIn(songs[1], [s["id"] for s in j["data"]["songs"]])
        self.assertEqual(headers.get("x-total-count"), "4")

        # someone else's likes are not mine
        st, headers, j = call("GET", "/users/me/likes", who="bob")
        self.assertEqual(st, 200)
        self.assertFalse(set(songs) & {s["id"] for s in j["data"]["songs"]})
        self.assertNotEqual(alice["id"], name["id"])

        # paging parameters and authentication
        self.assertFail(call("GET", "/users/me/likes?limit=0", who="erin"), 400)
        self.assertFail(call("GET", "/users/me/likes?page=0", who="erin"), 400)
        self.assertFail(call("GET", "/users/me/likes?limit=abc", who="erin"), 400)
        self.assertFail(call("GET", "/users/me/likes"), 401)

        c = SRV.connect()
        try:
            r = c.request("HEAD", "/users/me/likes", headers=auth("erin"))
        finally:
            c.close()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"")
        self.assertEqual(r.header("x-total-count"), "4")


# ---------------------------------------------------------------------------
# ratings
# ---------------------------------------------------------------------------

class Ratings(SocialTestCase):
    def stored(self, sid, who):
        return SVC.psql("SELECT rating FROM ratings WHERE song_id = '%s' AND user_id = '%s'"
                        % (sid, USERS[who]["id"]))

    def test_rating_upsert_and_delete(self):
        sid = add_song("Rated")
        path = "/songs/%s/rating" % sid
        self.assertFail(call("PUT", path, {"rating": 3}), 401)
        self.assertFail(call("DELETE", path), 401)
        for bad in ({}, {"rating": 0}, {"rating": 6}, {"rating": -1}, {"rating": 3.5}, {"rating": 4.0},
                    {"rating": "3"}, {"rating": True}, {"rating": None}, {"rating": [3]}, {"rating": 2 ** 40},
                    [3], "3"):
            self.assertFail(call("PUT", path, bad, who="alice", headers={"Content-Type": "application/json"}), 400)
        self.assertFail(call("PUT", path, "{not json", who="alice", headers={"Content-Type": "application/json"}), 400)
        self.assertEqual(self.stored(sid, "alice"), "")

        self.assertMessage(call("PUT", path, {"rating": 4}, who="alice"), 200)
        self.assertEqual(self.stored(sid, "alice"), "4")
        self.assertMessage(call("PUT", path, {"rating": 2, "extra": "ignored"}, who="alice"), 200)
        self.assertEqual(self.stored(sid, "alice"), "2")
        self.assertMessage(call("PUT", path, {"rating": 5}, who="bob"), 200)
        self.assertEqual(SVC.psql("SELECT count(*) || ' ' || avg(rating) FROM ratings WHERE song_id = '%s'" % sid),
                         "2 3.5000000000000000")
        for r in (1, 5):
            self.assertMessage(call("PUT", path, {"rating": r}, who="alice"), 200)
            self.assertEqual(self.stored(sid, "alice"), str(r))

        self.assertMessage(call("DELETE", path, who="alice"), 200)
        self.assertEqual(self.stored(sid, "alice"), "")
        self.assertFail(call("DELETE", path, who="alice"), 404)
        self.assertEqual(self.stored(sid, "bob"), "5")
        self.assertMessage(call("PUT", path, {"rating": 3}, who="alice"), 200)
        self.assertEqual(self.stored(sid, "alice"), "3")

    def test_rating_unknown_and_hidden(self):
        unknown = "/songs/%s/rating" % new_id("song")
        self.assertFail(call("PUT", unknown, {"rating": 3}, who="alice"), 404)
        self.assertFail(call("DELETE", unknown, who="alice"), 404)
        # body validation comes before existence
        self.assertFail(call("PUT", unknown, {"rating": 9}, who="alice"), 400)
        for odd in ODD_IDS:
            self.assertFail(call("PUT", "/songs/%s/rating" % odd, {"rating": 3}, who="alice"), 404)
            self.assertFail(call("DELETE", "/songs/%s/rating" % odd, who="alice"), 404)
        private = add_song("Private", owner="carol", visibility="private")
        path = "/songs/%s/rating" % private
        self.assertFail(call("PUT", path, {"rating": 3}, who="alice"), 404)
        self.assertMessage(call("PUT", path, {"rating": 3}, who="carol"), 200)
        self.assertMessage(call("PUT", path, {"rating": 4}, who="dave"), 200)
        self.assertFail(call("DELETE", path, who="alice"), 404)
        self.assertMessage(call("DELETE", path, who="carol"), 200)


# ---------------------------------------------------------------------------
# HEAD and methods
# ---------------------------------------------------------------------------

class HeadAndMethods(SocialTestCase):
    def test_head_on_get_routes(self):
        aid, sid = add_album("Head"), add_song("Head")
        for path, hdrs in (("/albums/%s/likes" % aid, {}), ("/songs/%s/likes" % sid, {}),
                           ("/users/me/likes", auth("alice"))):
            c = SRV.connect()
            try:
                g = c.request("GET", path, headers=hdrs)
                h = c.request("HEAD", path, headers=hdrs)
            finally:
                c.close()
            self.assertEqual((g.status, h.status), (200, 200), (g, h))
            self.assertEqual(h.body, b"")
            self.assertEqual(h.header("content-length"), str(len(g.body)))
            self.assertEqual(h.header("content-type"), g.header("content-type"))
        c = SRV.connect()
        try:
            h = c.request("HEAD", "/albums/%s/likes" % new_id("album"))
        finally:
            c.close()
        self.assertEqual(h.status, 404)
        self.assertEqual(h.body, b"")

    def test_other_methods(self):
        aid, sid = add_album("Methods"), add_song("Methods")
        st, headers, _ = call("PUT", "/albums/%s/likes" % aid, who="alice")
        self.assertEqual(st, 405)
        self.assertIn("POST", headers.get("allow"))
        st, headers, _ = call("GET", "/songs/%s/rating" % sid, who="alice")
        self.assertEqual(st, 405)
        self.assertIn("PUT", headers.get("allow"))


if __name__ == "__main__":
    harness.main()
