#!/usr/bin/env python3
"""Catalog: albums, songs (detail, search, pagination), genres with their Redis
cache, moderation flags, private songs, and the permission rules of strict mode
and of the OpenMusic compatibility mode.

The file runs its own PostgreSQL + Redis (deps/services.sh, SERVICES_EPHEMERAL=1)
in a temp directory and applies the migrations with `staccato migrate`. Two
servers share that database: STRICT (the default mode) and COMPAT
(STACCATO_COMPAT=openmusic). Accounts are made through POST /users and promoted
to artist/admin through the database, then log in again for a token that
carries the new role.

Every test makes its own albums and songs (names carry a per-test marker), so
the tests do not depend on each other's data; list assertions filter by that
marker.
"""

import itertools
import json
import os
import random
import socket
import string
import sys
import time
from urllib.parse import quote, urlparse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import request  # noqa: E402

ACCESS_KEY = "itest-catalog-access-key-0123456789abcdef"    # 40+ characters
REFRESH_KEY = "itest-catalog-refresh-key-0123456789abcdef"  # different
CHEAP_HASH = {"STACCATO_ARGON2_M_KIB": "1024", "STACCATO_ARGON2_T": "1"}

ALBUM_KEYS = {"id", "name", "year", "coverUrl", "songs"}
SONG_ITEM_KEYS = {"id", "title", "performer"}
SONG_KEYS = {"id", "title", "year", "performer", "genre", "duration", "albumId", "likes", "rating", "audio",
             "coverUrl", "visibility"}
AUDIO_KEYS = {"mime", "size", "durationMs", "bitrate", "sampleRate", "channels"}
GENRE_KEYS = {"id", "name"}

FIXTURE = harness.ModuleFixture("staccato-cat-")
SVC = None       # harness.Services
STRICT = None    # default mode
COMPAT = None    # STACCATO_COMPAT=openmusic, same database and Redis
LIMITED = None   # the same, with a small limit on anonymous writes
ANON_LIMIT, ANON_WINDOW_S = 5, 600
COVER = (b'--XX\r\nContent-Disposition: form-data; name="cover"; filename="c.png"\r\nContent-Type: image/png\r\n\r\n'
         b"\x89PNG\r\n\x1a\n" + bytes(200) + b"\r\n--XX--\r\n")
U = {}           # role name -> {"id", "username", "token"}: admin, artist, artist2, user


# ---------------------------------------------------------------------------
# module setup
# ---------------------------------------------------------------------------

def server_env(**extra):
    env = FIXTURE.env(ACCESS_TOKEN_KEY=ACCESS_KEY, REFRESH_TOKEN_KEY=REFRESH_KEY, STACCATO_ACCESS_LOG="off")
    env.update(CHEAP_HASH)
    env.update({k: str(v) for k, v in extra.items()})
    return env


_seq = itertools.count(1)


def uniq(prefix="u"):
    tail = "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(6))
    return "%s%d%s" % (prefix, next(_seq), tail)


bearer = harness.bearer


def register(port, role):
    return harness.account(port, uniq("cat_" + role + "_"), "secret-password-1", "Cat " + role, role, SVC)


def setUpModule():
    global SVC, STRICT, COMPAT, LIMITED
    with FIXTURE.setting_up():
        SVC = FIXTURE.start_services()
        STRICT = FIXTURE.server("strict", server_env())
        COMPAT = FIXTURE.server("compat", server_env(STACCATO_COMPAT="openmusic"))
        LIMITED = FIXTURE.server("limited", server_env(STACCATO_COMPAT="openmusic",
                                                       STACCATO_ANON_WRITES_PER_ADDRESS=ANON_LIMIT,
                                                       STACCATO_ANON_WRITE_WINDOW_S=ANON_WINDOW_S))
        for role in ("admin", "artist", "artist2", "user"):
            U[role] = register(STRICT.port, "artist" if role == "artist2" else role)


tearDownModule = FIXTURE.tear_down


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def tok(who):
    """A role name from U, None for anonymous, or a raw token string."""
    if who is None:
        return None
    return U[who]["token"] if who in U else who


def call(method, path, body=None, who=None, server=None, headers=None):
    h = dict(bearer(tok(who)))
    h.update(headers or {})
    return request((server or STRICT).port, method, path, body, headers=h)


def sql(q):
    return SVC.psql(q)


def db_order(ids):
    """ids sorted as the database sorts text (ties in title are broken by id, in the database's collation)."""
    out = sql("SELECT string_agg(id, ',' ORDER BY id) FROM unnest(ARRAY[%s]) AS t(id)"
              % ",".join("'%s'" % i for i in ids))
    return out.split(",")


def redis_call(*args, timeout=3.0):
    """One command to the file's Redis. Returns an int, a str, None (nil) or a
    list for array replies; raises on an error reply."""
    u = urlparse(SVC.redis_url)
    payload = "*%d\r\n" % len(args) + "".join("$%d\r\n%s\r\n" % (len(a.encode()), a) for a in args)
    with socket.create_connection((u.hostname, u.port), timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(payload.encode())
        f = s.makefile("rb")

        def parse():
            line = f.readline().rstrip(b"\r\n")
            t, rest = line[:1], line[1:]
            if t == b"+":
                return rest.decode()
            if t == b"-":
                raise AssertionError("redis %s: %r" % (args[0], rest))
            if t == b":":
                return int(rest)
            if t == b"$":
                n = int(rest)
                if n < 0:
                    return None
                data = f.read(n + 2)[:-2]
                return data.decode("utf-8", "replace")
            if t == b"*":
                n = int(rest)
                return None if n < 0 else [parse() for _ in range(n)]
            raise AssertionError("redis: unexpected reply %r" % line)

        return parse()


class CatalogCase(harness.ServerTestCase):
    """Helpers that create catalog rows and check envelopes."""

    def setUp(self):
        self.mark = uniq("m")   # a marker for this test's rows

    def ok(self, resp, status=200):
        st, h, j = resp
        self.assertEqual(st, status, "expected %d, got %d %r" % (status, st, j))
        self.assertEqual(h.get("content-type", "").replace(" ", "").lower(), "application/json;charset=utf-8")
        self.assertIsInstance(j, dict)
        self.assertEqual(j.get("status"), "success", j)
        return j

    def err(self, resp, status, mentions=None):
        st, h, j = resp
        self.assertEqual(st, status, "expected %d, got %d %r" % (status, st, j))
        self.assertEqual(h.get("content-type", "").replace(" ", "").lower(), "application/json;charset=utf-8")
        self.assertIsInstance(j, dict, resp)
        self.assertEqual(j.get("status"), "fail" if status < 500 else "error", j)
        self.assertIsInstance(j.get("message"), str)
        self.assertTrue(j["message"])
        if mentions:
            self.assertIn(mentions, j["message"], j)
        return j

    def album(self, who="artist", name=None, year=2001, server=None):
        j = self.ok(call("POST", "/albums", {"name": name or ("Album " + self.mark), "year": year}, who=who,
                         server=server), 201)
        self.assertEqual(set(j["data"]), {"albumId"})
        aid = j["data"]["albumId"]
        self.assertTrue(aid.startswith("album-"), aid)
        return aid

    def song(self, who="artist", server=None, **fields):
        body = {"title": "Song " + self.mark, "year": 1999, "performer": "Perf " + self.mark, "genre": "Pop"}
        body.update(fields)
        j = self.ok(call("POST", "/songs", body, who=who, server=server), 201)
        self.assertEqual(set(j["data"]), {"songId"})
        sid = j["data"]["songId"]
        self.assertTrue(sid.startswith("song-"), sid)
        return sid

    def get_song(self, sid, who=None, server=None):
        return call("GET", "/songs/" + sid, who=who, server=server)

    def get_album(self, aid, who=None, server=None):
        return call("GET", "/albums/" + aid, who=who, server=server)

    def list_songs(self, query="", who=None, server=None):
        st, h, j = call("GET", "/songs" + query, who=who, server=server)
        self.ok((st, h, j))
        self.assertEqual(set(j["data"]), {"songs"})
        for s in j["data"]["songs"]:
            self.assertEqual(set(s), SONG_ITEM_KEYS, s)
        total = h.get("x-total-count")
        self.assertIsNotNone(total, "GET /songs without X-Total-Count")
        return j["data"]["songs"], int(total)


# ---------------------------------------------------------------------------
# albums
# ---------------------------------------------------------------------------

class Albums(CatalogCase):

    def test_create_get_update_delete(self):
        aid = self.album(name="First " + self.mark, year=2010)
        j = self.ok(self.get_album(aid))
        self.assertEqual(set(j["data"]), {"album"})
        a = j["data"]["album"]
        self.assertEqual(set(a), ALBUM_KEYS)
        self.assertEqual(a, {"id": aid, "name": "First " + self.mark, "year": 2010, "coverUrl": None, "songs": []})
        self.assertEqual(sql("SELECT owner_id FROM albums WHERE id = '%s'" % aid), U["artist"]["id"])

        j = self.ok(call("PUT", "/albums/" + aid, {"name": "Renamed " + self.mark, "year": 2011}, who="artist"))
        self.assertIsInstance(j.get("message"), str)
        a = self.ok(self.get_album(aid))["data"]["album"]
        self.assertEqual((a["name"], a["year"]), ("Renamed " + self.mark, 2011))

        j = self.ok(call("DELETE", "/albums/" + aid, who="artist"))
        self.assertIsInstance(j.get("message"), str)
        self.err(self.get_album(aid), 404)
        self.err(call("PUT", "/albums/" + aid, {"name": "x", "year": 1}, who="artist"), 404)
        self.err(call("DELETE", "/albums/" + aid, who="artist"), 404)

    def test_album_songs_ordered_and_exact_keys(self):
        aid = self.album()
        ids = {}
        for title in ("beta", "alpha", "gamma", "alpha"):
            sid = self.song(title=title, albumId=aid)
            ids.setdefault(title, []).append(sid)
        self.song(title="not in album")
        songs = self.ok(self.get_album(aid))["data"]["album"]["songs"]
        for s in songs:
            self.assertEqual(set(s), SONG_ITEM_KEYS)
        expected = db_order(ids["alpha"]) + ids["beta"] + ids["gamma"]
        self.assertEqual([s["id"] for s in songs], expected)
        self.assertEqual([s["title"] for s in songs], ["alpha", "alpha", "beta", "gamma"])
        self.assertEqual({s["performer"] for s in songs}, {"Perf " + self.mark})

    def test_deleting_an_album_keeps_its_songs(self):
        aid = self.album()
        sid = self.song(albumId=aid)
        self.ok(call("DELETE", "/albums/" + aid, who="artist"))
        s = self.ok(self.get_song(sid))["data"]["song"]
        self.assertIsNone(s["albumId"])

    def test_cover_url(self):
        aid = self.album()
        sid = self.song(albumId=aid)
        mid = uniq("media-")
        sql("INSERT INTO media_files (id, kind, sha256, path, mime, size) VALUES ('%s', 'cover', 'x', 'c/x.png', "
            "'image/png', 10); UPDATE albums SET cover_media_id = '%s' WHERE id = '%s'" % (mid, mid, aid))
        # Without STACCATO_PUBLIC_URL: the scheme the request came with (https over TLS) and the Host header.
        scheme = "https" if harness.TLS else "http"
        a = self.ok(self.get_album(aid))["data"]["album"]
        self.assertEqual(a["coverUrl"], "%s://127.0.0.1/albums/%s/cover" % (scheme, aid))
        a = self.ok(call("GET", "/albums/" + aid, headers={"Host": "music.example:8080"}))["data"]["album"]
        self.assertEqual(a["coverUrl"], "%s://music.example:8080/albums/%s/cover" % (scheme, aid))
        s = self.ok(call("GET", "/songs/" + sid, headers={"Host": "music.example:8080"}))["data"]["song"]
        self.assertEqual(s["coverUrl"], "%s://music.example:8080/albums/%s/cover" % (scheme, aid))
        # With STACCATO_PUBLIC_URL the base comes from the settings, whatever the Host header says.
        pub = self.start_server(env=server_env(STACCATO_PUBLIC_URL="https://cdn.example.org/"))
        a = self.ok(call("GET", "/albums/" + aid, server=pub, headers={"Host": "evil.example"}))["data"]["album"]
        self.assertEqual(a["coverUrl"], "https://cdn.example.org/albums/%s/cover" % aid)
        s = self.ok(call("GET", "/songs/" + sid, server=pub))["data"]["song"]
        self.assertEqual(s["coverUrl"], "https://cdn.example.org/albums/%s/cover" % aid)

    def test_links_from_host_header(self):
        """Regression: coverUrl took any Host made of host-name characters ("]a[:b:c", "a:b"), and no list of
        the server's names could hold it. Only a valid Host (http/host.h) goes into links, and with
        STACCATO_ALLOWED_HOSTS only one of the list; otherwise localhost."""
        aid = self.album()
        sid = self.song(albumId=aid)
        mid = uniq("media-")
        sql("INSERT INTO media_files (id, kind, sha256, path, mime, size) VALUES ('%s', 'cover', 'x', 'c/x.png', "
            "'image/png', 10); UPDATE albums SET cover_media_id = '%s' WHERE id = '%s'" % (mid, mid, aid))
        scheme = "https" if harness.TLS else "http"

        def cover(host, server=None):
            a = self.ok(call("GET", "/albums/" + aid, server=server, headers={"Host": host}))["data"]["album"]
            s = self.ok(call("GET", "/songs/" + sid, server=server, headers={"Host": host}))["data"]["song"]
            self.assertEqual(a["coverUrl"], s["coverUrl"])
            u = urlparse(a["coverUrl"])
            self.assertEqual((u.scheme, u.path), (scheme, "/albums/%s/cover" % aid))
            return u.netloc

        for bad in ("]a[:b:c", "[evil.com]", "evil.example:", "evil.example:99999", "evil_host.example",
                    "[::1]]", "[::1]@evil.example", "a:b"):
            with self.subTest(host=bad):
                self.assertEqual(cover(bad), "localhost")
        self.assertEqual(cover("[::1]:8080"), "[::1]:8080")
        self.assertEqual(cover("Music.Example:8080"), "Music.Example:8080")

        listed = self.start_server(env=server_env(STACCATO_ALLOWED_HOSTS="music.example, api.example:8443"))
        self.assertEqual(cover("music.example", listed), "music.example")
        self.assertEqual(cover("MUSIC.example:5000", listed), "MUSIC.example:5000")
        self.assertEqual(cover("api.example:8443", listed), "api.example:8443")
        for other in ("evil.example", "api.example", "api.example:80", "music.example.evil.example",
                      "127.0.0.1", "[evil.com]"):
            with self.subTest(host=other):
                self.assertEqual(cover(other, listed), "localhost")

    def test_validation(self):
        for body, field in [
            ({"year": 2000}, "name"),
            ({"name": "x"}, "year"),
            ({"name": 5, "year": 2000}, "name"),
            ({"name": None, "year": 2000}, "name"),
            ({"name": "x", "year": "2000"}, "year"),
            ({"name": "x", "year": 2000.5}, "year"),
            ({"name": "x", "year": True}, "year"),
            ({"name": "", "year": 2000}, "name"),
            ({"name": "   ", "year": 2000}, "name"),
            ({"name": "x" * 256, "year": 2000}, "name"),
            ({"name": "x", "year": -1}, "year"),
            ({"name": "x", "year": 10000}, "year"),
        ]:
            with self.subTest(body=body):
                self.err(call("POST", "/albums", body, who="artist"), 400, field)
        for raw in (b"[1, 2]", b"\"name\"", b"{bad json", b"null"):
            with self.subTest(raw=raw):
                self.err(call("POST", "/albums", raw, who="artist", headers={"Content-Type": "application/json"}),
                          400)
        # Limits are inclusive, characters not bytes; unknown fields are ignored.
        self.album(name="x" * 255, year=0)
        self.album(name="é" * 255, year=9999)
        self.ok(call("POST", "/albums", {"name": "n", "year": 1, "extra": [1]}, who="artist"), 201)
        aid = self.album()
        self.err(call("PUT", "/albums/" + aid, {"name": "x"}, who="artist"), 400, "year")
        self.err(call("PUT", "/albums/" + aid, {"name": "x", "year": 1e9}, who="artist"), 400, "year")
        self.err(call("DELETE", "/albums/" + aid, b"[]", who="artist", headers={"Content-Type": "application/json"}), 400)

    def test_unknown_and_odd_ids(self):
        for aid in ("album-doesnotexist00", "%2e%2e", "..%2f..%2fetc", "album-%00", "%ff%fe", "a%27%20OR%201=1",
                    "x" * 3000, "album-" + "é" * 10):
            path = "/albums/" + (quote(aid, safe="%") if "é" in aid else aid)
            with self.subTest(id=aid[:40]):
                self.err(call("GET", path), 404)
                self.err(call("PUT", path, {"name": "x", "year": 1}, who="admin"), 404)
                self.err(call("DELETE", path, who="admin"), 404)
                self.err(call("PUT", path + "/flag", {"flagged": True}, who="admin"), 404)

    def test_permissions_strict(self):
        aid = self.album(who="artist")
        body = {"name": "n " + self.mark, "year": 2000}
        # creation: no token 401 (with WWW-Authenticate), bad token 401, role user 403, artist/admin 201
        st, h, _ = call("POST", "/albums", body)
        self.err((st, h, _), 401)
        self.assertIsNotNone(h.get("www-authenticate"))
        self.err(call("POST", "/albums", body, who="not-a-token"), 401)
        self.err(call("POST", "/albums", body, who="user"), 403)
        admin_album = self.album(who="admin")
        self.assertEqual(sql("SELECT owner_id FROM albums WHERE id = '%s'" % admin_album), U["admin"]["id"])
        # changes: owner and admin yes; other artist and user 403; anonymous 401
        for method, b in (("PUT", body), ("DELETE", None)):
            with self.subTest(method=method):
                self.err(call(method, "/albums/" + aid, b), 401)
                self.err(call(method, "/albums/" + aid, b, who="user"), 403)
                self.err(call(method, "/albums/" + aid, b, who="artist2"), 403)
        self.ok(call("PUT", "/albums/" + aid, body, who="artist"))
        self.ok(call("PUT", "/albums/" + aid, body, who="admin"))
        self.err(call("DELETE", "/albums/" + admin_album, who="artist2"), 403)
        self.ok(call("DELETE", "/albums/" + aid, who="admin"))
        # order of checks: validation before existence before permission
        aid2 = self.album(who="artist")
        self.err(call("PUT", "/albums/" + aid2, {"name": 1, "year": 1}, who="user"), 400, "name")
        self.err(call("PUT", "/albums/album-nothere000000", body, who="artist2"), 404)
        self.err(call("POST", "/albums", {"year": 1}, who="user"), 400, "name")

    def test_reads_are_public(self):
        aid = self.album()
        self.ok(self.get_album(aid, who="user"))
        self.ok(self.get_album(aid, who="artist2"))
        self.err(self.get_album(aid, who="garbage"), 401)

    def test_head(self):
        aid = self.album()
        c = STRICT.connect()
        try:
            g = c.request("GET", "/albums/" + aid)
            h = c.request("HEAD", "/albums/" + aid)
            self.assertEqual(h.status, 200)
            self.assertEqual(h.body, b"")
            self.assertEqual(h.header("content-length"), str(len(g.body)))
            h = c.request("HEAD", "/albums/album-nothere000000")
            self.assertEqual(h.status, 404)
            self.assertEqual(h.body, b"")
        finally:
            c.close()


# ---------------------------------------------------------------------------
# songs
# ---------------------------------------------------------------------------

class Songs(CatalogCase):

    def test_create_and_detail(self):
        aid = self.album()
        sid = self.song(title="T " + self.mark, year=2005, performer="P", genre="Indie", duration=215, albumId=aid)
        j = self.ok(self.get_song(sid))
        self.assertEqual(set(j["data"]), {"song"})
        s = j["data"]["song"]
        self.assertEqual(set(s), SONG_KEYS)
        self.assertEqual(s, {"id": sid, "title": "T " + self.mark, "year": 2005, "performer": "P", "genre": "Indie",
                             "duration": 215, "albumId": aid, "likes": 0, "rating": {"average": None, "count": 0},
                             "audio": None, "coverUrl": None, "visibility": "public"})
        self.assertEqual(sql("SELECT owner_id FROM songs WHERE id = '%s'" % sid), U["artist"]["id"])
        # optional fields absent
        sid2 = self.song()
        s = self.ok(self.get_song(sid2))["data"]["song"]
        self.assertIsNone(s["duration"])
        self.assertIsNone(s["albumId"])
        self.assertEqual(s["genre"], "Pop")
        # null counts as absent
        sid3 = self.song(duration=None, albumId=None)
        s = self.ok(self.get_song(sid3))["data"]["song"]
        self.assertEqual((s["duration"], s["albumId"]), (None, None))

    def test_likes_rating_audio(self):
        sid = self.song()
        sql("INSERT INTO song_likes (user_id, song_id) VALUES ('%s', '%s'), ('%s', '%s')"
            % (U["user"]["id"], sid, U["artist2"]["id"], sid))
        sql("INSERT INTO ratings (user_id, song_id, rating) VALUES ('%s', '%s', 5), ('%s', '%s', 4), ('%s', '%s', 4)"
            % (U["user"]["id"], sid, U["artist2"]["id"], sid, U["admin"]["id"], sid))
        mid = uniq("media-")
        sql("INSERT INTO media_files (id, kind, sha256, path, mime, size) VALUES ('%s', 'audio', 'y', 'a/y.mp3', "
            "'audio/mpeg', 123456); UPDATE songs SET audio_media_id = '%s', audio_mime = 'audio/mpeg', "
            "audio_size = 123456, duration_ms = 215000, bitrate = 128000, sample_rate = 44100, channels = 2 "
            "WHERE id = '%s'" % (mid, mid, sid))
        s = self.ok(self.get_song(sid))["data"]["song"]
        self.assertEqual(s["likes"], 2)
        self.assertEqual(set(s["rating"]), {"average", "count"})
        self.assertEqual(s["rating"]["count"], 3)
        self.assertAlmostEqual(s["rating"]["average"], 13 / 3, places=2)
        self.assertEqual(set(s["audio"]), AUDIO_KEYS)
        self.assertEqual(s["audio"], {"mime": "audio/mpeg", "size": 123456, "durationMs": 215000,
                                      "bitrate": 128000, "sampleRate": 44100, "channels": 2})

    def test_album_must_exist(self):
        self.err(call("POST", "/songs", {"title": "t", "year": 1, "performer": "p", "genre": "g",
                                          "albumId": "album-nothere000000"}, who="artist"), 404)
        self.err(call("POST", "/songs", {"title": "t", "year": 1, "performer": "p", "genre": "g",
                                          "albumId": "%2e%2e/x"}, who="artist"), 404)
        self.err(call("POST", "/songs", {"title": "t", "year": 1, "performer": "p", "genre": "g",
                                          "albumId": ""}, who="artist"), 404)
        sid = self.song()
        self.err(call("PUT", "/songs/" + sid, {"title": "t", "year": 1, "performer": "p", "genre": "g",
                                                "albumId": "album-nothere000000"}, who="artist"), 404, "album")
        # another artist's album is not (AlbumOwnership pins the rule)
        other = self.album(who="artist2")
        self.err(call("POST", "/songs", {"title": "t", "year": 1, "performer": "p", "genre": "g", "albumId": other},
                      who="artist"), 403, "album")

    def test_update_replaces_and_delete(self):
        aid = self.album()
        sid = self.song(duration=100, albumId=aid)
        body = {"title": "New " + self.mark, "year": 2020, "performer": "NP", "genre": "Rock"}
        j = self.ok(call("PUT", "/songs/" + sid, body, who="artist"))
        self.assertIsInstance(j.get("message"), str)
        s = self.ok(self.get_song(sid))["data"]["song"]
        self.assertEqual((s["title"], s["year"], s["performer"], s["genre"], s["duration"], s["albumId"]),
                         ("New " + self.mark, 2020, "NP", "Rock", None, None))
        body.update(duration=0, albumId=aid)
        self.ok(call("PUT", "/songs/" + sid, body, who="artist"))
        s = self.ok(self.get_song(sid))["data"]["song"]
        self.assertEqual((s["duration"], s["albumId"]), (0, aid))
        j = self.ok(call("DELETE", "/songs/" + sid, who="artist"))
        self.assertIsInstance(j.get("message"), str)
        self.err(self.get_song(sid), 404)
        self.err(call("PUT", "/songs/" + sid, body, who="artist"), 404)
        self.err(call("DELETE", "/songs/" + sid, who="artist"), 404)

    def test_validation(self):
        good = {"title": "t", "year": 2000, "performer": "p", "genre": "g"}
        cases = []
        for f in ("title", "year", "performer", "genre"):
            b = dict(good)
            del b[f]
            cases.append((b, f))
        for f in ("title", "performer", "genre"):
            cases += [(dict(good, **{f: 1}), f), (dict(good, **{f: ""}), f), (dict(good, **{f: " "}), f),
                      (dict(good, **{f: "x" * 256}), f), (dict(good, **{f: ["x"]}), f)]
        cases += [(dict(good, year="2000"), "year"), (dict(good, year=1.5), "year"), (dict(good, year=-1), "year"),
                  (dict(good, year=10000), "year"), (dict(good, duration="3"), "duration"),
                  (dict(good, duration=-1), "duration"), (dict(good, duration=2.5), "duration"),
                  (dict(good, duration=2 ** 40), "duration"), (dict(good, albumId=5), "albumId"),
                  (dict(good, albumId={"id": "x"}), "albumId")]
        sid = self.song()
        for body, field in cases:
            with self.subTest(body=str(body)[:80]):
                self.err(call("POST", "/songs", body, who="artist"), 400, field)
                self.err(call("PUT", "/songs/" + sid, body, who="artist"), 400, field)
        for raw in (b"[]", b"7", b"{", b"\"x\""):
            with self.subTest(raw=raw):
                self.err(call("POST", "/songs", raw, who="artist", headers={"Content-Type": "application/json"}),
                          400)
        self.err(call("DELETE", "/songs/" + sid, b"{oops", who="artist", headers={"Content-Type": "application/json"}), 400)
        self.song(title="x" * 255, performer="ü" * 255, genre="g" * 255, year=0, duration=0)
        self.song(year=9999, duration=2 ** 31 - 1)

    def test_genre_links_to_genres_table(self):
        name = "Gl" + self.mark
        gid = self.ok(call("POST", "/genres", {"name": name}, who="admin"), 201)["data"]["genreId"]
        sid = self.song(genre=name.upper())
        self.assertEqual(sql("SELECT genre_id FROM songs WHERE id = '%s'" % sid), gid)
        # the text is kept verbatim
        self.assertEqual(self.ok(self.get_song(sid))["data"]["song"]["genre"], name.upper())
        other = self.song(genre="No such genre " + self.mark)
        self.assertEqual(sql("SELECT coalesce(genre_id, 'null') FROM songs WHERE id = '%s'" % other), "null")
        # updating the genre text relinks; a genre created later links existing songs
        later = "Later" + self.mark
        self.ok(call("PUT", "/songs/" + other, {"title": "t", "year": 1, "performer": "p", "genre": later.lower()},
                     who="artist"))
        gid2 = self.ok(call("POST", "/genres", {"name": later}, who="admin"), 201)["data"]["genreId"]
        self.assertEqual(sql("SELECT genre_id FROM songs WHERE id = '%s'" % other), gid2)
        self.ok(call("DELETE", "/genres/" + gid, who="admin"))
        self.assertEqual(sql("SELECT coalesce(genre_id, 'null') FROM songs WHERE id = '%s'" % sid), "null")
        self.ok(self.get_song(sid))

    def test_permissions_strict(self):
        sid = self.song(who="artist")
        body = {"title": "t", "year": 1, "performer": "p", "genre": "g"}
        st, h, j = call("POST", "/songs", body)
        self.err((st, h, j), 401)
        self.assertIsNotNone(h.get("www-authenticate"))
        self.err(call("POST", "/songs", body, who="bad.token.here"), 401)
        self.err(call("POST", "/songs", body, who="user"), 403)
        self.err(call("POST", "/songs", dict(body, year="x"), who="user"), 400, "year")
        self.song(who="admin")
        for method, b in (("PUT", body), ("DELETE", None)):
            with self.subTest(method=method):
                self.err(call(method, "/songs/" + sid, b), 401)
                self.err(call(method, "/songs/" + sid, b, who="user"), 403)
                self.err(call(method, "/songs/" + sid, b, who="artist2"), 403)
                self.err(call(method, "/songs/song-nothere0000000", b, who="artist2"), 404)
        self.ok(call("PUT", "/songs/" + sid, body, who="artist"))
        self.ok(call("PUT", "/songs/" + sid, body, who="admin"))
        sid2 = self.song(who="artist2")
        self.ok(call("DELETE", "/songs/" + sid2, who="admin"))
        self.ok(call("DELETE", "/songs/" + sid, who="artist"))

    def test_unknown_and_odd_ids(self):
        body = {"title": "t", "year": 1, "performer": "p", "genre": "g"}
        for sid in ("song-doesnotexist000", "%2e%2e", "%2e%2e%2f%2e%2e", "song-%00", "%c3%28", "s" * 3000,
                    "song-'--", "song-%22%7d"):
            with self.subTest(id=sid[:40]):
                self.err(call("GET", "/songs/" + sid), 404)
                self.err(call("PUT", "/songs/" + sid, body, who="admin"), 404)
                self.err(call("DELETE", "/songs/" + sid, who="admin"), 404)
                self.err(call("PUT", "/songs/" + sid + "/flag", {"flagged": True}, who="admin"), 404)

    def test_head(self):
        sid = self.song()
        c = STRICT.connect()
        try:
            for path in ("/songs/" + sid, "/songs?title=" + self.mark):
                g = c.request("GET", path)
                h = c.request("HEAD", path)
                self.assertEqual(h.status, 200, path)
                self.assertEqual(h.body, b"")
                self.assertEqual(h.header("content-length"), str(len(g.body)))
            self.assertEqual(c.request("HEAD", "/songs?title=" + self.mark).header("x-total-count"), "1")
            h = c.request("HEAD", "/songs/song-nothere0000000")
            self.assertEqual((h.status, h.body), (404, b""))
        finally:
            c.close()


# ---------------------------------------------------------------------------
# search and pagination
# ---------------------------------------------------------------------------

class SongSearch(CatalogCase):

    def test_substring_case_insensitive_and(self):
        m = self.mark
        a = self.song(title="Hello World " + m, performer="The Beatles")
        b = self.song(title="hello again " + m, performer="beatles tribute")
        c = self.song(title="Goodbye " + m, performer="The BEATLES")
        d = self.song(title="WORLDWIDE " + m, performer="Someone")

        def ids(q):
            songs, total = self.list_songs(q)
            self.assertEqual(total, len(songs))
            return {s["id"] for s in songs}

        self.assertEqual(ids("?title=" + m), {a, b, c, d})
        self.assertEqual(ids("?title=hElLo") & {a, b, c, d}, {a, b})
        self.assertEqual(ids("?title=" + m + "&performer=beatles"), {a, b, c})
        self.assertEqual(ids("?title=world&performer=BEATLES") & {a, b, c, d}, {a})
        self.assertEqual(ids("?title=world%20" + m.upper()), {a})
        self.assertEqual(ids("?performer=tribute&title=" + m), {b})
        self.assertEqual(ids("?title=" + m + "&performer=nobody-at-all"), set())
        self.assertEqual(ids("?title=" + m + "&unknown=1"), {a, b, c, d})
        # empty filters filter nothing
        self.assertEqual(ids("?title=" + m + "&performer="), {a, b, c, d})
        # the response lists exactly id, title, performer
        songs, _ = self.list_songs("?title=hello%20world%20" + m)
        self.assertEqual(songs, [{"id": a, "title": "Hello World " + m, "performer": "The Beatles"}])

    def test_wildcards_match_literally(self):
        m = self.mark
        pct = self.song(title="100% " + m)
        no_pct = self.song(title="1000 " + m)
        und = self.song(title="a_b " + m)
        no_und = self.song(title="axb " + m)
        bs = self.song(title="back\\slash " + m)
        no_bs = self.song(title="backslash " + m)

        def ids(title):
            songs, _ = self.list_songs("?title=" + quote(title, safe="") + "&performer=" + m)
            return {s["id"] for s in songs}

        self.assertEqual(ids("%"), {pct})
        self.assertEqual(ids("0%"), {pct})
        self.assertEqual(ids("100%"), {pct})
        self.assertEqual(ids("_"), {und})
        self.assertEqual(ids("a_b"), {und})
        self.assertEqual(ids("\\"), {bs})
        self.assertEqual(ids("k\\s"), {bs})
        self.assertEqual(ids("%%"), set())
        self.assertEqual(ids("' OR '1'='1"), set())
        self.assertEqual(ids(m), {pct, no_pct, und, no_und, bs, no_bs})
        # '+' in a query string is a space
        self.assertEqual({s["id"] for s in self.list_songs("?title=100%25+" + m)[0]}, {pct})

    def test_genre_and_album_filters(self):
        m = self.mark
        aid = self.album()
        rock = self.song(genre="Rock", albumId=aid)
        rock2 = self.song(genre="rOCK")
        rocknroll = self.song(genre="Rock and Roll", albumId=aid)
        pop = self.song(genre="Pop")

        def ids(q):
            return {s["id"] for s in self.list_songs(q + "&performer=" + quote("Perf " + m))[0]}

        self.assertEqual(ids("?genre=rock"), {rock, rock2})
        self.assertEqual(ids("?genre=ROCK%20AND%20ROLL"), {rocknroll})
        self.assertEqual(ids("?genre=pop"), {pop})
        self.assertEqual(ids("?genre=ro"), set())
        self.assertEqual(ids("?albumId=" + aid), {rock, rocknroll})
        self.assertEqual(ids("?albumId=" + aid + "&genre=Rock"), {rock})
        self.assertEqual(ids("?albumId=album-nothere000000"), set())
        self.err(call("GET", "/songs?albumId=%ff"), 400, "albumId")
        self.err(call("GET", "/songs?title=%c3%28"), 400, "title")
        self.err(call("GET", "/songs?performer=a%00b"), 400, "performer")
        for bad in ("%c3", "%e0%80%80", "%ed%a0%80", "%f4%90%80%80", "%c0%af", "%80", "a%fe"):
            with self.subTest(bad=bad):
                self.err(call("GET", "/songs?title=" + bad), 400, "title")
        for good in ("%c3%a9", "%e2%82%ac", "%f0%9f%8e%b5", "%ef%bf%bf"):
            with self.subTest(good=good):
                self.list_songs("?genre=" + good)
        songs, total = self.list_songs("?albumId=" + aid + "&title=" + m + "&genre=rock&performer=" + m)
        self.assertEqual(({s["id"] for s in songs}, total), ({rock}, 1))

    def test_pagination_and_order(self):
        perf = "Pager " + self.mark
        titles = ["t%02d" % i for i in range(25)]
        random.shuffle(titles)
        made = {}
        for t in titles:
            made[t] = self.song(title=t, performer=perf)
        dup = self.song(title="t05", performer=perf)
        expected = []
        for t in sorted(made):
            expected += db_order([made[t], dup]) if t == "t05" else [made[t]]
        q = "?performer=" + quote(perf)
        songs, total = self.list_songs(q)
        self.assertEqual(total, 26)
        self.assertEqual([s["id"] for s in songs], expected)
        seen = []
        for page in range(1, 5):
            songs, total = self.list_songs(q + "&limit=7&page=%d" % page)
            self.assertEqual(total, 26)
            seen += [s["id"] for s in songs]
            self.assertEqual(len(songs), 7 if page < 4 else 5)
        self.assertEqual(seen, expected)
        songs, total = self.list_songs(q + "&limit=7&page=5")
        self.assertEqual((songs, total), ([], 26))
        songs, total = self.list_songs(q + "&limit=1000")
        self.assertEqual(len(songs), 26)
        for bad in ("limit=0", "limit=1001", "limit=x", "page=0", "page=-1", "limit="):
            with self.subTest(q=bad):
                self.err(call("GET", "/songs" + q + "&" + bad), 400)

    def test_list_offset_unbounded(self):
        """Regression: ?page= reached offsets of 10^9 (page 1000000 of 1000) and every list request counted the
        whole list. The offset is capped (STACCATO_MAX_LIST_OFFSET, 10000) with a 400 that says to narrow the
        search, and the count stops at the rows paging can reach: exact below that, that many beyond."""
        perf = "Deep " + self.mark
        for i in range(26):
            self.song(title="d%02d" % i, performer=perf)
        q = "?performer=" + quote(perf)
        songs, total = self.list_songs(q + "&page=101")  # offset 10000: the deepest
        self.assertEqual((songs, total), ([], 26))
        songs, total = self.list_songs(q + "&page=11&limit=1000")
        self.assertEqual((songs, total), ([], 26))
        for deep in ("page=102", "page=12&limit=1000", "page=1000000&limit=1000", "page=10002&limit=1"):
            with self.subTest(q=deep):
                self.err(call("GET", "/songs" + q + "&" + deep), 400, "narrow the search")
                self.err(call("GET", "/songs?" + deep), 400, "narrow the search")
        for path in ("/users", "/users/me/songs", "/users/me/likes", "/playlists"):
            with self.subTest(path=path):
                self.err(call("GET", path + "?page=1000000", who="admin"), 400, "narrow the search")

        shallow = self.start_server(env=server_env(STACCATO_MAX_LIST_OFFSET="10"))
        # limit 7: offsets 0 and 7 are reachable, so the count stops at 14 rows.
        songs, total = self.list_songs(q + "&limit=7", server=shallow)
        self.assertEqual((len(songs), total), (7, 14))
        songs, total = self.list_songs(q + "&limit=7&page=2", server=shallow)
        self.assertEqual((len(songs), total), (7, 14))
        self.err(call("GET", "/songs" + q + "&limit=7&page=3", server=shallow), 400, "narrow the search")
        # limit 20: only offset 0 is reachable, one page of 20.
        songs, total = self.list_songs(q + "&limit=20", server=shallow)
        self.assertEqual((len(songs), total), (20, 20))
        # Exact whenever the list is shorter than what paging reaches.
        songs, total = self.list_songs(q + "&limit=30", server=shallow)
        self.assertEqual((len(songs), total), (26, 26))
        songs, total = self.list_songs(q + "&limit=1000", server=shallow)
        self.assertEqual((len(songs), total), (26, 26))
        songs, total = self.list_songs(q + "&title=d0&limit=7", server=shallow)
        self.assertEqual((len(songs), total), (7, 10))

    def test_default_limit_is_100(self):
        perf = "bulk" + self.mark
        sql("INSERT INTO songs (id, title, year, performer, genre) SELECT 'song-%s' || g, 'b' || lpad(g::text, 3, '0'), "
            "2000, '%s', 'x' FROM generate_series(1, 105) g" % (self.mark, perf))
        songs, total = self.list_songs("?performer=" + perf)
        self.assertEqual((len(songs), total), (100, 105))
        self.assertEqual(songs[0]["title"], "b001")
        songs, total = self.list_songs("?performer=" + perf + "&page=2")
        self.assertEqual([s["title"] for s in songs], ["b101", "b102", "b103", "b104", "b105"])

    def test_unfiltered_list(self):
        sid = self.song()
        songs, total = self.list_songs("?limit=1000")
        self.assertGreaterEqual(total, 1)
        if total <= 1000:
            self.assertIn(sid, {s["id"] for s in songs})


class AlbumOwnership(CatalogCase):
    """Putting a song into an album is a change of the album: its owner's or an admin's."""

    def body(self, **fields):
        b = {"title": "Song " + self.mark, "year": 1999, "performer": "Perf " + self.mark, "genre": "Pop"}
        b.update(fields)
        return b

    def album_of(self, sid):
        return sql("SELECT coalesce(album_id, 'null') FROM songs WHERE id = '%s'" % sid)

    def test_artist_cannot_put_songs_into_another_artists_album(self):
        theirs = self.album(who="artist2")
        mine = self.album(who="artist")
        # POST /songs: another artist's album is 403, and nothing is inserted
        before = sql("SELECT count(*) FROM songs WHERE album_id = '%s'" % theirs)
        self.err(call("POST", "/songs", self.body(albumId=theirs), who="artist"), 403, "album")
        self.assertEqual(sql("SELECT count(*) FROM songs WHERE album_id = '%s'" % theirs), before)
        # PUT /songs/{id}: moving one's own song there is 403 too, and the song stays where it was
        sid = self.song(who="artist", albumId=mine)
        self.err(call("PUT", "/songs/" + sid, self.body(albumId=theirs), who="artist"), 403, "album")
        self.assertEqual(self.album_of(sid), mine)
        # the order of checks: 401, 400, 404 (an album the caller cannot see), then 403
        self.err(call("POST", "/songs", self.body(albumId=theirs)), 401)
        self.err(call("POST", "/songs", self.body(albumId=theirs, year="x"), who="artist"), 400, "year")
        self.err(call("PUT", "/songs/" + sid, self.body(albumId=theirs, year="x"), who="artist"), 400, "year")
        self.err(call("PUT", "/songs/song-nothere0000000", self.body(albumId=theirs), who="artist"), 404, "song")
        hidden = self.album(who="artist2")
        self.ok(call("PUT", "/albums/%s/flag" % hidden, {"flagged": True}, who="admin"))
        self.err(call("POST", "/songs", self.body(albumId=hidden), who="artist"), 404, "album")
        self.err(call("PUT", "/songs/" + sid, self.body(albumId=hidden), who="artist"), 404, "album")
        # another artist's song in one's album: still the song's owner's (403, not a way in)
        their_song = self.song(who="artist2")
        self.err(call("PUT", "/songs/" + their_song, self.body(albumId=mine), who="artist"), 403, "song")
        # one's own album, and admins anywhere
        self.song(who="artist", albumId=mine)
        self.ok(call("PUT", "/songs/" + sid, self.body(albumId=mine), who="artist"))
        self.song(who="admin", albumId=theirs)
        self.ok(call("PUT", "/songs/" + sid, self.body(albumId=theirs), who="admin"))
        self.assertEqual(self.album_of(sid), theirs)
        # a song an admin put there may keep its place when its owner edits it, or leave
        self.ok(call("PUT", "/songs/" + sid, self.body(albumId=theirs, title="kept"), who="artist"))
        self.assertEqual(self.album_of(sid), theirs)
        self.ok(call("PUT", "/songs/" + sid, self.body(), who="artist"))
        self.assertEqual(self.album_of(sid), "null")
        self.err(call("PUT", "/songs/" + sid, self.body(albumId=theirs), who="artist"), 403, "album")
        # the album's owner adds to it as before
        self.song(who="artist2", albumId=theirs)


# ---------------------------------------------------------------------------
# moderation and private songs
# ---------------------------------------------------------------------------

class Visibility(CatalogCase):

    def visible(self, sid, aid=None):
        """{viewer: whether the song is visible in detail, list and album} for each viewer."""
        out = {}
        for who in (None, "user", "artist2", "artist", "admin"):
            st, _, _ = self.get_song(sid, who=who)
            self.assertIn(st, (200, 404))
            listed = sid in {s["id"] for s in self.list_songs("?performer=" + quote("Perf " + self.mark),
                                                              who=who)[0]}
            in_album = None
            if aid:
                in_album = sid in {s["id"] for s in self.ok(self.get_album(aid, who=who))["data"]["album"]["songs"]}
            self.assertEqual(listed, st == 200, (who, st, listed))
            if aid:
                self.assertEqual(in_album, st == 200, (who, st, in_album))
            out[who] = st == 200
        return out

    ALL = {None: True, "user": True, "artist2": True, "artist": True, "admin": True}
    OWNER_ADMIN = {None: False, "user": False, "artist2": False, "artist": True, "admin": True}

    def test_flag_song(self):
        aid = self.album()
        sid = self.song(albumId=aid)
        self.assertEqual(self.visible(sid, aid), self.ALL)
        j = self.ok(call("PUT", "/songs/%s/flag" % sid, {"flagged": True, "reason": "spam"}, who="admin"))
        self.assertIsInstance(j.get("message"), str)
        self.assertEqual(sql("SELECT flagged || ' ' || flag_reason FROM songs WHERE id = '%s'" % sid), "true spam")
        self.assertEqual(self.visible(sid, aid), self.OWNER_ADMIN)
        # others cannot change or even find it; the owner still can
        body = {"title": "t", "year": 1, "performer": "Perf " + self.mark, "genre": "g", "albumId": aid}
        self.err(call("PUT", "/songs/" + sid, body, who="artist2"), 404)
        self.err(call("DELETE", "/songs/" + sid, who="artist2"), 404)
        self.err(call("PUT", "/songs/" + sid, body, server=COMPAT), 404)
        self.ok(call("PUT", "/songs/" + sid, body, who="artist"))
        self.ok(call("PUT", "/songs/%s/flag" % sid, {"flagged": False}, who="admin"))
        self.assertEqual(sql("SELECT flagged || ' ' || coalesce(flag_reason, '-') FROM songs WHERE id = '%s'" % sid),
                         "false -")
        self.assertEqual(self.visible(sid, aid), self.ALL)

    def test_flag_album(self):
        aid = self.album()
        sid = self.song(albumId=aid)
        self.ok(call("PUT", "/albums/%s/flag" % aid, {"flagged": True}, who="admin"))
        for who, seen in self.OWNER_ADMIN.items():
            with self.subTest(who=who):
                st = self.get_album(aid, who=who)[0]
                self.assertEqual(st, 200 if seen else 404)
        self.err(call("PUT", "/albums/" + aid, {"name": "x", "year": 1}, who="artist2"), 404)
        self.err(call("PUT", "/albums/" + aid, {"name": "x", "year": 1}, server=COMPAT), 404)
        # songs cannot be added to a hidden album by others
        self.err(call("POST", "/songs", {"title": "t", "year": 1, "performer": "p", "genre": "g", "albumId": aid},
                       who="artist2"), 404)
        self.song(who="artist", albumId=aid)
        self.song(who="admin", albumId=aid)
        # its songs stay visible on their own, without the hidden album's cover
        sql("INSERT INTO media_files (id, kind, sha256, path, mime, size) VALUES ('%s', 'cover', 'x', 'c/y.png', "
            "'image/png', 10); UPDATE albums SET cover_media_id = '%s' WHERE id = '%s'" % ((aid + "-c",) * 2 + (aid,)))
        for who, seen in self.OWNER_ADMIN.items():
            with self.subTest(who=who):
                s = self.ok(self.get_song(sid, who=who))["data"]["song"]
                self.assertEqual(s["coverUrl"] is not None, seen, s["coverUrl"])
        self.ok(call("PUT", "/albums/%s/flag" % aid, {"flagged": False, "reason": None}, who="admin"))
        self.ok(self.get_album(aid))

    def test_private_song(self):
        aid = self.album()
        sid = self.song(albumId=aid)
        sql("UPDATE songs SET visibility = 'private' WHERE id = '%s'" % sid)
        self.assertEqual(self.visible(sid, aid), self.OWNER_ADMIN)
        self.assertEqual(self.ok(self.get_song(sid, who="artist"))["data"]["song"]["visibility"], "private")
        self.err(call("DELETE", "/songs/" + sid, who="artist2"), 404)
        self.ok(call("DELETE", "/songs/" + sid, who="admin"))

    def test_flag_permissions_and_validation(self):
        sid = self.song()
        aid = self.album()
        for path in ("/songs/%s/flag" % sid, "/albums/%s/flag" % aid):
            with self.subTest(path=path):
                self.err(call("PUT", path, {"flagged": True}), 401)
                self.err(call("PUT", path, {"flagged": True}, who="user"), 403)
                self.err(call("PUT", path, {"flagged": True}, who="artist"), 403)
                self.err(call("PUT", path, {"flagged": True}, server=COMPAT), 401)
                self.err(call("PUT", path, {"flagged": True}, who="artist", server=COMPAT), 403)
                self.err(call("PUT", path, {}, who="admin"), 400, "flagged")
                self.err(call("PUT", path, {"flagged": "yes"}, who="admin"), 400, "flagged")
                self.err(call("PUT", path, {"flagged": 1}, who="admin"), 400, "flagged")
                self.err(call("PUT", path, {"flagged": True, "reason": 5}, who="admin"), 400, "reason")
                self.err(call("PUT", path, {"flagged": True, "reason": "r" * 1001}, who="admin"), 400, "reason")
                self.err(call("PUT", path, b"[true]", who="admin", headers={"Content-Type": "application/json"}),
                          400)
        self.err(call("PUT", "/songs/song-nothere0000000/flag", {"flagged": True}, who="admin"), 404)
        self.err(call("PUT", "/albums/album-nothere000000/flag", {"flagged": True}, who="admin"), 404)


# ---------------------------------------------------------------------------
# compatibility mode
# ---------------------------------------------------------------------------

class CompatMode(CatalogCase):

    def test_open_writes_without_token(self):
        aid = self.album(who=None, server=COMPAT)
        self.assertEqual(sql("SELECT coalesce(owner_id, 'null') FROM albums WHERE id = '%s'" % aid), "null")
        sid = self.song(who=None, server=COMPAT, albumId=aid)
        self.assertEqual(sql("SELECT coalesce(owner_id, 'null') FROM songs WHERE id = '%s'" % sid), "null")
        self.ok(call("PUT", "/albums/" + aid, {"name": "n", "year": 1}, server=COMPAT))
        self.ok(call("PUT", "/songs/" + sid, {"title": "t", "year": 1, "performer": "p", "genre": "g"},
                     server=COMPAT))
        # the same writes on the strict server need a token
        self.err(call("PUT", "/albums/" + aid, {"name": "n", "year": 1}), 401)
        # anyone may change entries nobody owns, as in OpenMusic; an artist's stay theirs (CompatOwnedRows)
        theirs = self.album(who="artist")
        their_song = self.song(who="artist")
        self.err(call("PUT", "/albums/" + theirs, {"name": "mine now", "year": 1}, server=COMPAT), 401)
        self.err(call("PUT", "/albums/" + theirs, {"name": "mine now", "year": 1}, who="user", server=COMPAT), 403)
        self.err(call("DELETE", "/songs/" + their_song, who="user", server=COMPAT), 403)
        self.ok(call("PUT", "/songs/" + sid, {"title": "t", "year": 1, "performer": "p", "genre": "g"}, who="user",
                     server=COMPAT))
        self.ok(call("DELETE", "/songs/" + sid, server=COMPAT))
        self.ok(call("DELETE", "/albums/" + theirs, who="artist", server=COMPAT))
        self.err(call("DELETE", "/albums/" + theirs, server=COMPAT), 404)
        self.ok(call("DELETE", "/albums/" + aid, server=COMPAT))

    def test_token_makes_owner(self):
        aid = self.album(who="user", server=COMPAT)
        self.assertEqual(sql("SELECT owner_id FROM albums WHERE id = '%s'" % aid), U["user"]["id"])
        sid = self.song(who="user", server=COMPAT)
        self.assertEqual(sql("SELECT owner_id FROM songs WHERE id = '%s'" % sid), U["user"]["id"])
        # the owner of a flagged song sees it, anonymous callers do not
        self.ok(call("PUT", "/songs/%s/flag" % sid, {"flagged": True}, who="admin"))
        self.ok(self.get_song(sid, who="user", server=COMPAT))
        self.err(self.get_song(sid, server=COMPAT), 404)

    def test_bad_token_still_401(self):
        for who in ("garbage", U["user"]["token"][:-3] + "abc"):
            st, h, j = call("POST", "/albums", {"name": "n", "year": 1}, who=who, server=COMPAT)
            self.err((st, h, j), 401)
            self.err(call("POST", "/songs", {"title": "t", "year": 1, "performer": "p", "genre": "g"}, who=who,
                           server=COMPAT), 401)
        self.err(call("POST", "/albums", {"name": "n", "year": 1}, server=COMPAT,
                       headers={"Authorization": "Basic Zm9vOmJhcg=="}), 401)

    def test_validation_and_404_unchanged(self):
        self.err(call("POST", "/albums", {"name": "n"}, server=COMPAT), 400, "year")
        self.err(call("POST", "/songs", {"title": "t", "year": 1, "performer": "p"}, server=COMPAT), 400, "genre")
        self.err(call("PUT", "/songs/song-nothere0000000", {"title": "t", "year": 1, "performer": "p", "genre": "g"},
                       server=COMPAT), 404)
        self.err(call("DELETE", "/albums/%2e%2e", server=COMPAT), 404)

    def test_compat_mode_keeps_owned_rows_to_their_owners(self):
        body = {"title": "t", "year": 1, "performer": "p", "genre": "g"}
        album = self.album(who="artist")
        song = self.song(who="artist", albumId=album)
        for method, path, b in (("PUT", "/albums/" + album, {"name": "n", "year": 1}), ("DELETE", "/albums/" + album,
                                 None), ("PUT", "/songs/" + song, body), ("DELETE", "/songs/" + song, None)):
            with self.subTest(method=method, path=path):
                st, h, j = call(method, path, b, server=COMPAT)
                self.err((st, h, j), 401)
                self.assertIsNotNone(h.get("www-authenticate"))
                self.err(call(method, path, b, who="user", server=COMPAT), 403)
                self.err(call(method, path, b, who="artist2", server=COMPAT), 403)
        self.assertEqual(sql("SELECT name FROM albums WHERE id = '%s'" % album), "Album " + self.mark)
        self.assertEqual(sql("SELECT title FROM songs WHERE id = '%s'" % song), "Song " + self.mark)
        # nor can songs be put into an owned album, or an owned song into an open one
        self.err(call("POST", "/songs", dict(body, albumId=album), server=COMPAT), 401)
        self.err(call("POST", "/songs", dict(body, albumId=album), who="user", server=COMPAT), 403)
        open_album = self.album(who=None, server=COMPAT)
        open_song = self.song(who=None, server=COMPAT)
        self.err(call("PUT", "/songs/" + open_song, dict(body, albumId=album), server=COMPAT), 401)
        self.err(call("PUT", "/songs/" + song, dict(body, albumId=open_album), server=COMPAT), 401)
        self.assertEqual(sql("SELECT coalesce(album_id, 'null') FROM songs WHERE id = '%s'" % open_song), "null")
        # rows nobody owns stay open to everyone
        self.song(who=None, server=COMPAT, albumId=open_album)
        self.song(who="user", server=COMPAT, albumId=open_album)
        self.ok(call("PUT", "/songs/" + open_song, dict(body, albumId=open_album), who="user", server=COMPAT))
        self.ok(call("PUT", "/albums/" + open_album, {"name": "n", "year": 1}, who="artist2", server=COMPAT))
        # the owner (of any role, as OpenMusic clients sign in as users) and admins keep their rights
        self.ok(call("PUT", "/songs/" + song, body, who="artist", server=COMPAT))
        self.ok(call("PUT", "/albums/" + album, {"name": "n", "year": 1}, who="admin", server=COMPAT))
        mine = self.album(who="user", server=COMPAT)
        self.ok(call("PUT", "/albums/" + mine, {"name": "n", "year": 1}, who="user", server=COMPAT))
        self.err(call("PUT", "/albums/" + mine, {"name": "n", "year": 1}, server=COMPAT), 401)
        self.song(who="user", server=COMPAT, albumId=mine)
        self.ok(call("DELETE", "/songs/" + song, who="admin", server=COMPAT))
        self.ok(call("DELETE", "/albums/" + album, who="artist", server=COMPAT))
        self.ok(call("DELETE", "/albums/" + open_album, server=COMPAT))
        self.ok(call("DELETE", "/songs/" + open_song, server=COMPAT))

    def test_compat_mode_limits_anonymous_writes_per_address(self):
        key = "staccato:anonwrite:addr:127.0.0.1"
        redis_call("DEL", key)
        try:
            ids = [self.album(who=None, server=LIMITED) for _ in range(ANON_LIMIT - 1)]
            self.ok(call("DELETE", "/albums/" + ids[0], server=LIMITED))
            for method, path, b in (("POST", "/albums", {"name": "n", "year": 1}),
                                    ("PUT", "/albums/" + ids[1], {"name": "n", "year": 1}),
                                    ("DELETE", "/albums/" + ids[1], None),
                                    ("POST", "/songs", {"title": "t", "year": 1, "performer": "p", "genre": "g"}),
                                    ("POST", "/albums/%s/covers" % ids[1], COVER)):
                with self.subTest(method=method, path=path):
                    ct = {"Content-Type": "multipart/form-data; boundary=XX"} if path.endswith("covers") else {}
                    st, h, j = call(method, path, b, server=LIMITED, headers=ct)
                    self.err((st, h, j), 429)
                    retry = int(h.get("retry-after", "0"))
                    self.assertTrue(1 <= retry <= ANON_WINDOW_S, h.get("retry-after"))
            self.assertEqual(sql("SELECT count(*) FROM albums WHERE id = '%s'" % ids[1]), "1")
            # signed-in writers are not counted, nor is the strict server
            self.album(who="user", server=LIMITED)
            self.album(who="artist")
            # while Redis is away, each process counts for itself
            redis_call("DEL", key)
            SVC.run("stop-redis", timeout=60)
            try:
                for _ in range(ANON_LIMIT):
                    self.album(who=None, server=LIMITED)
                self.err(call("POST", "/albums", {"name": "n", "year": 1}, server=LIMITED), 429)
            finally:
                SVC.run("start-redis", timeout=60)
        finally:
            redis_call("DEL", key)

    def test_genres_stay_admin_only(self):
        self.err(call("POST", "/genres", {"name": "x" + self.mark}, server=COMPAT), 401)
        self.err(call("POST", "/genres", {"name": "x" + self.mark}, who="artist", server=COMPAT), 403)


# ---------------------------------------------------------------------------
# genres and their cache
# ---------------------------------------------------------------------------

class Genres(CatalogCase):

    def genres(self, server=None):
        st, h, j = call("GET", "/genres", server=server)
        self.ok((st, h, j))
        self.assertEqual(set(j["data"]), {"genres"})
        for g in j["data"]["genres"]:
            self.assertEqual(set(g), GENRE_KEYS)
        return j["data"]["genres"], h.get("x-data-source")

    def create(self, name, who="admin"):
        j = self.ok(call("POST", "/genres", {"name": name}, who=who), 201)
        self.assertEqual(set(j["data"]), {"genreId"})
        self.assertTrue(j["data"]["genreId"].startswith("genre-"))
        return j["data"]["genreId"]

    def test_cache_sequence(self):
        gid = self.create("c-" + self.mark)      # invalidates whatever was cached
        genres, src = self.genres()
        self.assertIsNone(src, "first read after a write must come from the database")
        self.assertIn({"id": gid, "name": "c-" + self.mark}, genres)
        self.assertEqual([g["name"] for g in genres], sorted(g["name"] for g in genres))
        cached, src = self.genres()
        self.assertEqual(src, "cache")
        self.assertEqual(cached, genres)
        ttl = redis_call("TTL", "staccato:genres")
        self.assertTrue(0 < ttl <= 600, ttl)
        self.assertEqual(json.loads(redis_call("GET", "staccato:genres")), genres)
        # a POST invalidates: miss (with the new genre), then cache again
        gid2 = self.create("d-" + self.mark)
        self.assertIsNone(redis_call("GET", "staccato:genres"))
        genres, src = self.genres()
        self.assertIsNone(src)
        self.assertIn({"id": gid2, "name": "d-" + self.mark}, genres)
        self.assertEqual(self.genres()[1], "cache")
        # so does a DELETE
        self.ok(call("DELETE", "/genres/" + gid2, who="admin"))
        genres, src = self.genres()
        self.assertIsNone(src)
        self.assertNotIn(gid2, [g["id"] for g in genres])
        self.assertEqual(self.genres(), (genres, "cache"))
        # the cache is shared: the other server answers from it too, and HEAD works
        self.assertEqual(self.genres(server=COMPAT), (genres, "cache"))
        c = STRICT.connect()
        try:
            h = c.request("HEAD", "/genres")
            self.assertEqual((h.status, h.body, h.header("x-data-source")), (200, b"", "cache"))
        finally:
            c.close()

    def test_create_validation_and_duplicates(self):
        name = "Jazz" + self.mark
        self.create(name)
        self.err(call("POST", "/genres", {"name": name.upper()}, who="admin"), 400)
        self.err(call("POST", "/genres", {"name": name.lower()}, who="admin"), 400)
        self.err(call("POST", "/genres", {}, who="admin"), 400, "name")
        self.err(call("POST", "/genres", {"name": 3}, who="admin"), 400, "name")
        self.err(call("POST", "/genres", {"name": ""}, who="admin"), 400, "name")
        self.err(call("POST", "/genres", {"name": "g" * 256}, who="admin"), 400, "name")
        self.err(call("POST", "/genres", b"[]", who="admin", headers={"Content-Type": "application/json"}), 400)
        self.err(call("POST", "/genres", {"name": "x" + self.mark}), 401)
        self.err(call("POST", "/genres", {"name": "x" + self.mark}, who="garbage"), 401)
        self.err(call("POST", "/genres", {"name": "x" + self.mark}, who="user"), 403)
        self.err(call("POST", "/genres", {"name": "x" + self.mark}, who="artist"), 403)

    def test_delete(self):
        gid = self.create("del" + self.mark)
        self.err(call("DELETE", "/genres/" + gid), 401)
        self.err(call("DELETE", "/genres/" + gid, who="artist"), 403)
        self.ok(call("DELETE", "/genres/" + gid, who="admin"))
        self.err(call("DELETE", "/genres/" + gid, who="admin"), 404)
        for odd in ("genre-nothere0000000", "%2e%2e", "g" * 3000, "%ff"):
            with self.subTest(id=odd[:30]):
                self.err(call("DELETE", "/genres/" + odd, who="admin"), 404)
        self.assertNotIn(gid, [g["id"] for g in self.genres()[0]])

    def test_redis_down(self):
        name = "down" + self.mark
        SVC.run("stop-redis", timeout=60)
        try:
            for _ in range(3):
                genres, src = self.genres()
                self.assertIsNone(src)
            # writes still work; reads see them at once
            gid = self.create(name)
            genres, src = self.genres()
            self.assertIsNone(src)
            self.assertIn({"id": gid, "name": name}, genres)
            self.ok(call("DELETE", "/genres/" + gid, who="admin"))
            self.assertNotIn(gid, [g["id"] for g in self.genres()[0]])
        finally:
            SVC.run("start-redis", timeout=60)
        # once Redis is back the cache fills again (the client reconnects with backoff)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.genres()[1] == "cache":
                break
            time.sleep(0.2)
        else:
            raise AssertionError("the genres cache never came back after Redis restarted")


# ---------------------------------------------------------------------------
# routing
# ---------------------------------------------------------------------------

class Routing(CatalogCase):

    def test_methods(self):
        for method, path in (("PATCH", "/albums/x"), ("DELETE", "/songs"), ("PUT", "/genres"),
                             ("GET", "/albums/x/flag"), ("POST", "/songs/x")):
            with self.subTest(method=method, path=path):
                st, h, j = call(method, path, who="admin")
                self.err((st, h, j), 405)
                self.assertIsNotNone(h.get("allow"))

    def test_head_genres_and_songs(self):
        c = STRICT.connect()
        try:
            for path in ("/genres", "/songs?limit=1"):
                h = c.request("HEAD", path)
                self.assertEqual((h.status, h.body), (200, b""), path)
        finally:
            c.close()


if __name__ == "__main__":
    harness.main()
