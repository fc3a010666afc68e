#!/usr/bin/env python3
"""Playlists, playlist songs, activities and collaborations (docs/api.md, Part 1).

Black-box over real sockets against one server backed by a private PostgreSQL +
Redis (deps/services.sh, SERVICES_EPHEMERAL=1). Songs are inserted directly with
SQL so that these tests do not depend on the catalog endpoints.

Order of checks for every endpoint: 401 (token) -> 400 (body) -> 404 (playlist,
then song/user) -> 403 (permission) -> 400 (conflict).
"""

import json
import os
import re
import sys
import threading
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

SVC = None      # harness.Services
SRV = None      # harness.Server
PASSWORD = "correct horse battery staple"

PLAYLIST_ID_RE = re.compile(r"^playlist-[A-Za-z0-9_-]{16}$")
COLLAB_ID_RE = re.compile(r"^collab-[A-Za-z0-9_-]{16}$")
TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")

FIXTURE = harness.ModuleFixture("staccato-pl-")


def setUpModule():
    global SVC, SRV
    with FIXTURE.setting_up():
        SVC = FIXTURE.start_services()
        SRV = FIXTURE.server("main", FIXTURE.env(**{
            "ACCESS_TOKEN_KEY": "playlist-tests-access-key-0123456789-abcdefghij",
            "REFRESH_TOKEN_KEY": "playlist-tests-refresh-key-9876543210-zyxwvutsrq",
            "STACCATO_ARGON2_M_KIB": "1024",
            "STACCATO_ARGON2_T": "1",
        }))


tearDownModule = FIXTURE.tear_down


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

class Resp:
    def __init__(self, status, headers, body, raw):
        self.status, self.headers, self.json, self.raw = status, headers, body, raw

    def __repr__(self):
        return "<%d %r>" % (self.status, self.raw[:300])


def call(method, path, body=None, token=None, headers=None):
    """One request; body: dict/list -> JSON, str/bytes as is."""
    hdrs = list((headers or {}).items()) if isinstance(headers, dict) else list(headers or [])
    if token is not None:
        hdrs.append(("Authorization", "Bearer " + token))
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
        hdrs.append(("Content-Type", "application/json"))
    elif isinstance(body, str):
        body = body.encode()
        hdrs.append(("Content-Type", "application/json"))
    c = SRV.connect()
    try:
        r = c.request(method, path, headers=hdrs, body=body)
    finally:
        c.close()
    try:
        j = json.loads(r.body.decode("utf-8")) if r.body else None
    except ValueError:
        j = None
    return Resp(r.status, harness.Headers(r.headers), j, r.body)


def sql(q):
    return SVC.psql(q)


def q(s):
    """A SQL string literal."""
    return "'" + s.replace("'", "''") + "'"


class User:
    def __init__(self, prefix):
        self.username = "%s_%s" % (prefix, uuid.uuid4().hex[:10])
        self.id = harness.register(SRV.port, self.username, PASSWORD, prefix.title())
        self.login()

    def login(self):
        self.token, _ = harness.login(SRV.port, self.username, PASSWORD)


def new_song(title=None, performer="Someone", owner=None, visibility="public", flagged=False):
    sid = "song-" + uuid.uuid4().hex[:16]
    title = title or "Title " + sid[-6:]
    sql("INSERT INTO songs (id, title, year, performer, genre, owner_id, visibility, flagged) VALUES "
        "(%s, %s, 2020, %s, 'Pop', %s, %s, %s)" % (q(sid), q(title), q(performer),
                                                   q(owner.id) if owner else "NULL", q(visibility),
                                                   "true" if flagged else "false"))
    return sid


class PlaylistCase(unittest.TestCase):
    def assertFail(self, r, status, contains=None):
        self.assertEqual(r.status, status, r)
        ct = (r.headers.get("content-type") or "").replace(" ", "").lower()
        self.assertEqual(ct, "application/json;charset=utf-8", r)
        self.assertIsInstance(r.json, dict, r)
        self.assertEqual(set(r.json), {"status", "message"}, r)
        self.assertEqual(r.json["status"], "fail" if status < 500 else "error", r)
        self.assertTrue(isinstance(r.json["message"], str) and r.json["message"], r)
        if contains is not None:
            self.assertIn(contains, r.json["message"].lower(), r)
        if status == 401:
            self.assertTrue(r.headers.get("www-authenticate", "").lower().startswith("bearer"), r)
        return r.json

    def assertMessage(self, r, status):
        self.assertEqual(r.status, status, r)
        self.assertEqual(set(r.json), {"status", "message"}, r)
        self.assertEqual(r.json["status"], "success", r)
        self.assertTrue(r.json["message"], r)

    def create(self, user, name="My playlist"):
        r = call("POST", "/playlists", {"name": name}, user.token)
        self.assertEqual(r.status, 201, r)
        return r.json["data"]["playlistId"]

    def collab(self, owner, pid, user):
        r = call("POST", "/collaborations", {"playlistId": pid, "userId": user.id}, owner.token)
        self.assertEqual(r.status, 201, r)
        return r.json["data"]["collaborationId"]

    def add(self, user, pid, sid, status=201):
        r = call("POST", "/playlists/%s/songs" % pid, {"songId": sid}, user.token)
        self.assertEqual(r.status, status, r)
        return r

    def remove(self, user, pid, sid, status=200):
        r = call("DELETE", "/playlists/%s/songs" % pid, {"songId": sid}, user.token)
        self.assertEqual(r.status, status, r)
        return r

    def songs(self, user, pid):
        r = call("GET", "/playlists/%s/songs" % pid, token=user.token)
        self.assertEqual(r.status, 200, r)
        return r.json["data"]["playlist"]

    def activities(self, user, pid):
        r = call("GET", "/playlists/%s/activities" % pid, token=user.token)
        self.assertEqual(r.status, 200, r)
        return r.json["data"]["activities"]

    def listing(self, user, query=""):
        r = call("GET", "/playlists" + query, token=user.token)
        self.assertEqual(r.status, 200, r)
        return r


# ---------------------------------------------------------------------------
# POST /playlists, GET /playlists, DELETE /playlists/{id}
# ---------------------------------------------------------------------------

class CreatePlaylist(PlaylistCase):
    def test_created_with_exact_response(self):
        u = User("creator")
        r = call("POST", "/playlists", {"name": "Road trip", "ignored": [1, 2]}, u.token)
        self.assertEqual(r.status, 201, r)
        self.assertEqual(set(r.json), {"status", "message", "data"})
        self.assertEqual(r.json["status"], "success")
        self.assertEqual(set(r.json["data"]), {"playlistId"})
        pid = r.json["data"]["playlistId"]
        self.assertRegex(pid, PLAYLIST_ID_RE)
        self.assertEqual(sql("SELECT name, owner_id FROM playlists WHERE id = %s" % q(pid)),
                         "Road trip|%s" % u.id)
        # Two playlists of the same name are two playlists.
        self.assertNotEqual(self.create(u, "Road trip"), pid)

    def test_unicode_name_round_trips(self):
        u = User("uni")
        pid = self.create(u, "Lagu \u00e9t\u00e9 \U0001F3B5")
        self.assertEqual(self.songs(u, pid)["name"], "Lagu \u00e9t\u00e9 \U0001F3B5")

    def test_validation(self):
        u = User("val")
        for body in ({}, {"name": 5}, {"name": None}, {"name": ["x"]}, {"name": ""}, {"name": "   "},
                     {"name": "a\u0000b"}, "not json", "[1]", "\"name\"", "{\"name\": \"x\""):
            with self.subTest(body=body):
                self.assertFail(call("POST", "/playlists", body, u.token), 400)
        self.assertIn("name", self.assertFail(call("POST", "/playlists", {"name": 1}, u.token), 400)["message"])
        self.assertIn("name", self.assertFail(call("POST", "/playlists", {}, u.token), 400)["message"])

    def test_authentication_comes_first(self):
        for body in ({"name": "x"}, {}, "garbage"):
            with self.subTest(body=body):
                self.assertFail(call("POST", "/playlists", body), 401)
                self.assertFail(call("POST", "/playlists", body, "not.a.token"), 401)

    def test_deleted_account_token_is_401(self):
        u = User("ghost")
        sql("DELETE FROM users WHERE id = %s" % q(u.id))
        self.assertFail(call("POST", "/playlists", {"name": "x"}, u.token), 401)
        self.assertEqual(sql("SELECT count(*) FROM playlists WHERE owner_id = %s" % q(u.id)), "0")


class ListPlaylists(PlaylistCase):
    def test_owned_and_collaborated_with_owner_username(self):
        alice, bob, carol = User("alice"), User("bob"), User("carol")
        a1 = self.create(alice, "Alice one")
        b1 = self.create(bob, "Bob one")
        self.create(carol, "Carol only")
        self.collab(bob, b1, alice)
        a2 = self.create(alice, "Alice two")
        r = self.listing(alice)
        self.assertEqual(set(r.json), {"status", "data"})
        self.assertEqual(r.json["status"], "success")
        self.assertEqual(set(r.json["data"]), {"playlists"})
        self.assertEqual(r.json["data"]["playlists"], [
            {"id": a1, "name": "Alice one", "username": alice.username},
            {"id": b1, "name": "Bob one", "username": bob.username},
            {"id": a2, "name": "Alice two", "username": alice.username},
        ])
        self.assertEqual(r.headers.get("x-total-count"), "3")
        # Bob sees only his own; Carol sees only hers.
        self.assertEqual([p["id"] for p in self.listing(bob).json["data"]["playlists"]], [b1])
        self.assertEqual([p["name"] for p in self.listing(carol).json["data"]["playlists"]], ["Carol only"])

    def test_empty_list(self):
        r = self.listing(User("nobody"))
        self.assertEqual(r.json, {"status": "success", "data": {"playlists": []}})
        self.assertEqual(r.headers.get("x-total-count"), "0")

    def test_pagination(self):
        owner, other = User("pager"), User("pageowner")
        ids = [self.create(owner, "P%02d" % i) for i in range(5)]
        shared = self.create(other, "Shared")
        self.collab(other, shared, owner)
        ids.append(shared)
        ids.extend(self.create(owner, "P%02d" % i) for i in range(5, 7))
        got = [p["id"] for p in self.listing(owner).json["data"]["playlists"]]
        self.assertEqual(got, ids)
        pages = []
        for page in (1, 2, 3):
            r = self.listing(owner, "?page=%d&limit=3" % page)
            self.assertEqual(r.headers.get("x-total-count"), "8")
            pages.append([p["id"] for p in r.json["data"]["playlists"]])
        self.assertEqual(pages, [ids[0:3], ids[3:6], ids[6:8]])
        r = self.listing(owner, "?page=4&limit=3")
        self.assertEqual(r.json["data"]["playlists"], [])
        self.assertEqual(r.headers.get("x-total-count"), "8")
        self.assertEqual(len(self.listing(owner, "?limit=1000").json["data"]["playlists"]), 8)
        for bad in ("?limit=0", "?limit=1001", "?page=0", "?limit=abc", "?page=-1", "?page=1.5"):
            with self.subTest(query=bad):
                self.assertFail(call("GET", "/playlists" + bad, token=owner.token), 400)
                self.assertFail(call("GET", "/playlists" + bad), 401)

    def test_needs_token(self):
        self.assertFail(call("GET", "/playlists"), 401)
        self.assertFail(call("GET", "/playlists", token="abc.def.ghi"), 401)
        self.assertFail(call("GET", "/playlists", headers={"Authorization": "Basic Zm9vOmJhcg=="}), 401)


class DeletePlaylist(PlaylistCase):
    def test_permissions_and_cascade(self):
        alice, bob, carol = User("alice"), User("bob"), User("carol")
        pid = self.create(alice)
        self.collab(alice, pid, bob)
        s1, s2 = new_song(), new_song()
        self.add(alice, pid, s1)
        self.add(bob, pid, s2)
        self.assertFail(call("DELETE", "/playlists/" + pid, token=bob.token), 403)
        self.assertFail(call("DELETE", "/playlists/" + pid, token=carol.token), 403)
        self.assertFail(call("DELETE", "/playlists/" + pid), 401)
        self.assertFail(call("DELETE", "/playlists/playlist-doesnotexist00", token=carol.token), 404)
        self.assertFail(call("DELETE", "/playlists/playlist-doesnotexist00"), 401)
        self.assertEqual(sql("SELECT count(*) FROM playlists WHERE id = %s" % q(pid)), "1")
        self.assertMessage(call("DELETE", "/playlists/" + pid, token=alice.token), 200)
        for table in ("playlists WHERE id", "playlist_songs WHERE playlist_id", "collaborations WHERE playlist_id",
                      "playlist_activities WHERE playlist_id"):
            self.assertEqual(sql("SELECT count(*) FROM %s = %s" % (table, q(pid))), "0", table)
        # The songs themselves stay in the catalog.
        self.assertEqual(sql("SELECT count(*) FROM songs WHERE id IN (%s, %s)" % (q(s1), q(s2))), "2")
        # Gone for everyone, including from the lists.
        self.assertFail(call("DELETE", "/playlists/" + pid, token=alice.token), 404)
        for u in (alice, bob):
            self.assertFail(call("GET", "/playlists/%s/songs" % pid, token=u.token), 404)
            self.assertFail(call("GET", "/playlists/%s/activities" % pid, token=u.token), 404)
            self.assertNotIn(pid, [p["id"] for p in self.listing(u).json["data"]["playlists"]])
        self.assertFail(call("POST", "/playlists/%s/songs" % pid, {"songId": s1}, alice.token), 404)

    def test_body_is_ignored(self):
        alice = User("alice")
        pid = self.create(alice)
        self.assertMessage(call("DELETE", "/playlists/" + pid, "not even json", alice.token), 200)


# ---------------------------------------------------------------------------
# Playlist songs
# ---------------------------------------------------------------------------

class PlaylistSongs(PlaylistCase):
    def test_add_list_remove_shapes(self):
        alice = User("alice")
        pid = self.create(alice, "Mix")
        s1 = new_song("First", "Perf A")
        s2 = new_song("Second", "Perf B")
        s3 = new_song("Third", "Perf C")
        r = self.add(alice, pid, s2)
        self.assertEqual(set(r.json), {"status", "message"})
        self.assertEqual(r.json["status"], "success")
        self.add(alice, pid, s1)
        self.add(alice, pid, s3)
        r = call("GET", "/playlists/%s/songs" % pid, token=alice.token)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(set(r.json), {"status", "data"})
        self.assertEqual(set(r.json["data"]), {"playlist"})
        self.assertEqual(r.json["data"]["playlist"], {
            "id": pid, "name": "Mix", "username": alice.username,
            "songs": [
                {"id": s2, "title": "Second", "performer": "Perf B"},
                {"id": s1, "title": "First", "performer": "Perf A"},
                {"id": s3, "title": "Third", "performer": "Perf C"},
            ]})
        self.assertMessage(self.remove(alice, pid, s1), 200)
        self.assertEqual([s["id"] for s in self.songs(alice, pid)["songs"]], [s2, s3])
        # Re-adding puts it at the end (ordered by when added).
        self.add(alice, pid, s1)
        self.assertEqual([s["id"] for s in self.songs(alice, pid)["songs"]], [s2, s3, s1])

    def test_empty_playlist(self):
        alice = User("alice")
        pid = self.create(alice, "Empty")
        self.assertEqual(self.songs(alice, pid), {"id": pid, "name": "Empty", "username": alice.username,
                                                  "songs": []})

    def test_duplicate_add_is_400(self):
        alice = User("alice")
        pid = self.create(alice)
        sid = new_song()
        self.add(alice, pid, sid)
        self.assertFail(self.add(alice, pid, sid, 400), 400)
        self.assertEqual(len(self.songs(alice, pid)["songs"]), 1)
        self.assertEqual(len(self.activities(alice, pid)), 1)

    def test_unknown_song_and_not_in_playlist(self):
        alice = User("alice")
        pid = self.create(alice)
        self.assertFail(self.add(alice, pid, "song-doesnotexist00", 404), 404, "song")
        sid = new_song()
        self.assertFail(self.remove(alice, pid, sid, 404), 404, "not in the playlist")
        self.assertFail(self.remove(alice, pid, "song-doesnotexist00", 404), 404)
        self.add(alice, pid, sid)
        self.remove(alice, pid, sid)
        self.assertFail(self.remove(alice, pid, sid, 404), 404, "not in the playlist")
        self.assertEqual(self.activities(alice, pid)[-1]["action"], "delete")
        self.assertEqual(len(self.activities(alice, pid)), 2)

    def test_hidden_songs_are_404(self):
        alice, bob, admin = User("alice"), User("bob"), User("admin")
        sql("UPDATE users SET role = 'admin' WHERE id = %s" % q(admin.id))
        admin.login()
        pid = self.create(alice)
        self.collab(alice, pid, bob)
        bobs_private = new_song("Bob private", owner=bob, visibility="private")
        flagged = new_song("Flagged", owner=bob, flagged=True)
        ownerless_flagged = new_song("Orphan flagged", flagged=True)
        alices_private = new_song("Alice private", owner=alice, visibility="private")
        for sid in (bobs_private, flagged, ownerless_flagged):
            self.assertFail(self.add(alice, pid, sid, 404), 404, "song")
        # One's own private song can be added; the collaborator does not see it listed.
        self.add(alice, pid, alices_private)
        self.add(bob, pid, flagged)
        self.assertEqual([s["id"] for s in self.songs(alice, pid)["songs"]], [alices_private])
        self.assertEqual([s["id"] for s in self.songs(bob, pid)["songs"]], [flagged])
        # A member may still take a hidden song out of the playlist.
        self.remove(alice, pid, flagged)
        # Admins see every song (and may add them to their own playlists).
        apid = self.create(admin)
        self.add(admin, apid, ownerless_flagged)
        self.add(admin, apid, bobs_private)
        self.assertEqual(len(self.songs(admin, apid)["songs"]), 2)

    def test_validation(self):
        alice = User("alice")
        pid = self.create(alice)
        for method in ("POST", "DELETE"):
            for body in ({}, {"songId": 7}, {"songId": None}, {"songId": {"id": "x"}}, {"songid": "x"},
                         "nope", "[]", None):
                with self.subTest(method=method, body=body):
                    j = self.assertFail(call(method, "/playlists/%s/songs" % pid, body, alice.token), 400)
                    if isinstance(body, dict):
                        self.assertIn("songId", j["message"])
        self.assertEqual(self.activities(alice, pid), [])

    def test_unusual_song_ids_are_404(self):
        alice = User("alice")
        pid = self.create(alice)
        new_song()
        for sid in ("", " ", "song-", "%", "_", "' OR '1'='1", "song-\u00e9\u00e9", "song-a\tb",
                    "\U0001F3B5", "x" * 5000):
            with self.subTest(sid=sid[:20]):
                self.assertFail(self.add(alice, pid, sid, 404), 404)
                self.assertFail(self.remove(alice, pid, sid, 404), 404)
        # The body reader refuses \u0000 in JSON strings altogether (400, before any lookup).
        self.assertFail(self.add(alice, pid, "song-a\u0000b", 400), 400)
        self.assertFail(self.remove(alice, pid, "song-a\u0000b", 400), 400)
        self.assertEqual(self.songs(alice, pid)["songs"], [])

    def test_song_deleted_from_catalog(self):
        alice = User("alice")
        pid = self.create(alice)
        sid = new_song("Doomed")
        self.add(alice, pid, sid)
        sql("DELETE FROM songs WHERE id = %s" % q(sid))
        self.assertEqual(self.songs(alice, pid)["songs"], [])
        # The history stays.
        acts = self.activities(alice, pid)
        self.assertEqual([(a["title"], a["action"]) for a in acts], [("Doomed", "add")])
        self.assertFail(self.remove(alice, pid, sid, 404), 404)

    def test_concurrent_duplicate_adds(self):
        alice = User("alice")
        pid = self.create(alice)
        sid = new_song("Race")
        results = []
        barrier = threading.Barrier(8, timeout=10)

        def one():
            try:
                barrier.wait()
                results.append(call("POST", "/playlists/%s/songs" % pid, {"songId": sid}, alice.token).status)
            except Exception as e:  # noqa: BLE001
                results.append(repr(e))

        threads = [threading.Thread(target=one) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        self.assertEqual(sorted(results), [201] + [400] * 7, results)
        self.assertEqual(len(self.activities(alice, pid)), 1)
        self.assertEqual(sql("SELECT count(*) FROM playlist_activities WHERE playlist_id = %s" % q(pid)), "1")

    def test_concurrent_add_and_remove_keep_log_consistent(self):
        alice, bob = User("alice"), User("bob")
        pid = self.create(alice)
        self.collab(alice, pid, bob)
        sid = new_song("Flip")
        statuses = []

        def worker(user, n):
            for i in range(n):
                if i % 2 == 0:
                    r = call("POST", "/playlists/%s/songs" % pid, {"songId": sid}, user.token)
                else:
                    r = call("DELETE", "/playlists/%s/songs" % pid, {"songId": sid}, user.token)
                statuses.append((r.json or {}).get("status") if r.status in (200, 201) else r.status)

        threads = [threading.Thread(target=worker, args=(u, 12)) for u in (alice, bob)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        self.assertTrue(all(s in ("success", 400, 404) for s in statuses), statuses)
        acts = self.activities(alice, pid)
        # The log alternates add/delete and matches the final state exactly.
        self.assertEqual([a["action"] for a in acts], ["add", "delete"] * (len(acts) // 2) + ["add"] * (len(acts) % 2))
        self.assertEqual(statuses.count("success"), len(acts))
        in_playlist = [s["id"] for s in self.songs(alice, pid)["songs"]]
        self.assertEqual(in_playlist, [sid] if len(acts) % 2 else [])


# ---------------------------------------------------------------------------
# Activities
# ---------------------------------------------------------------------------

class Activities(PlaylistCase):
    def test_log_contents_and_order(self):
        alice, bob = User("alice"), User("bob")
        pid = self.create(alice, "Logged")
        self.collab(alice, pid, bob)
        s1 = new_song("Song One")
        s2 = new_song("Song Two")
        self.add(alice, pid, s1)
        self.add(bob, pid, s2)
        self.remove(bob, pid, s1)
        self.add(bob, pid, s1)           # re-add by a different user
        self.remove(alice, pid, s2)
        self.add(alice, pid, s1, 400)     # a failed add records nothing
        self.remove(bob, pid, s2, 404)   # nor does a failed delete
        r = call("GET", "/playlists/%s/activities" % pid, token=bob.token)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(set(r.json), {"status", "data"})
        self.assertEqual(set(r.json["data"]), {"playlistId", "activities"})
        self.assertEqual(r.json["data"]["playlistId"], pid)
        acts = r.json["data"]["activities"]
        for a in acts:
            self.assertEqual(set(a), {"username", "title", "action", "time"})
            self.assertRegex(a["time"], TIME_RE)
        self.assertEqual([(a["username"], a["title"], a["action"]) for a in acts], [
            (alice.username, "Song One", "add"),
            (bob.username, "Song Two", "add"),
            (bob.username, "Song One", "delete"),
            (bob.username, "Song One", "add"),
            (alice.username, "Song Two", "delete"),
        ])
        times = [a["time"] for a in acts]
        self.assertEqual(times, sorted(times))
        self.assertEqual(self.activities(alice, pid), acts)
        # Stored with the acting user's id.
        self.assertEqual(sql("SELECT string_agg(user_id, ',' ORDER BY time, id) FROM playlist_activities "
                             "WHERE playlist_id = %s" % q(pid)),
                         ",".join([alice.id, bob.id, bob.id, bob.id, alice.id]))

    def test_empty_and_permissions(self):
        alice, bob, carol = User("alice"), User("bob"), User("carol")
        pid = self.create(alice)
        self.collab(alice, pid, bob)
        r = call("GET", "/playlists/%s/activities" % pid, token=alice.token)
        self.assertEqual(r.json, {"status": "success", "data": {"playlistId": pid, "activities": []}})
        self.assertEqual(self.activities(bob, pid), [])
        self.assertFail(call("GET", "/playlists/%s/activities" % pid, token=carol.token), 403)
        self.assertFail(call("GET", "/playlists/playlist-unknown000000/activities", token=carol.token), 404)
        self.assertFail(call("GET", "/playlists/%s/activities" % pid), 401)

    def test_history_keeps_username_of_the_time(self):
        alice, bob = User("alice"), User("bob")
        pid = self.create(alice)
        self.collab(alice, pid, bob)
        sid = new_song("Kept")
        self.add(bob, pid, sid)
        sql("DELETE FROM users WHERE id = %s" % q(bob.id))
        acts = self.activities(alice, pid)
        self.assertEqual([(a["username"], a["title"], a["action"]) for a in acts],
                         [(bob.username, "Kept", "add")])
        self.assertEqual([s["id"] for s in self.songs(alice, pid)["songs"]], [sid])


# ---------------------------------------------------------------------------
# Permissions and the order of checks
# ---------------------------------------------------------------------------

class Permissions(PlaylistCase):
    @classmethod
    def setUpClass(cls):
        cls.alice, cls.bob, cls.carol = User("alice"), User("bob"), User("carol")

    def test_collaborator_and_stranger(self):
        alice, bob, carol = self.alice, self.bob, self.carol
        pid = self.create(alice)
        self.collab(alice, pid, bob)
        sid, sid2 = new_song(), new_song()
        # The collaborator adds, reads and removes songs and reads the log.
        self.add(bob, pid, sid)
        self.add(bob, pid, sid2)
        self.assertEqual(self.songs(bob, pid)["username"], alice.username)
        self.remove(bob, pid, sid2)
        self.assertEqual(len(self.activities(bob, pid)), 3)
        # ... but neither deletes the playlist nor manages collaborators.
        self.assertFail(call("DELETE", "/playlists/" + pid, token=bob.token), 403)
        self.assertFail(call("POST", "/collaborations", {"playlistId": pid, "userId": carol.id}, bob.token), 403)
        self.assertFail(call("DELETE", "/collaborations", {"playlistId": pid, "userId": bob.id}, bob.token), 403)
        # The stranger does nothing at all.
        self.assertFail(self.add(carol, pid, sid2, 403), 403)
        self.assertFail(self.remove(carol, pid, sid, 403), 403)
        self.assertFail(call("GET", "/playlists/%s/songs" % pid, token=carol.token), 403)
        self.assertFail(call("GET", "/playlists/%s/activities" % pid, token=carol.token), 403)
        self.assertFail(call("DELETE", "/playlists/" + pid, token=carol.token), 403)
        self.assertFail(call("POST", "/collaborations", {"playlistId": pid, "userId": carol.id}, carol.token), 403)
        self.assertEqual([s["id"] for s in self.songs(alice, pid)["songs"]], [sid])
        self.assertNotIn(pid, [p["id"] for p in self.listing(carol).json["data"]["playlists"]])

    def test_order_of_checks(self):
        alice, carol = self.alice, self.carol
        pid = self.create(alice)
        sid = new_song()
        other = new_song()
        self.add(alice, pid, sid)
        unknown = "playlist-unknown000000"
        cases = [
            # (method, path, body, token, expected)
            ("POST", "/playlists/%s/songs" % unknown, {}, None, 401),
            ("POST", "/playlists/%s/songs" % unknown, "junk", "bad", 401),
            ("POST", "/playlists/%s/songs" % unknown, {}, carol, 400),
            ("POST", "/playlists/%s/songs" % pid, {"songId": 1}, carol, 400),
            ("POST", "/playlists/%s/songs" % unknown, {"songId": sid}, carol, 404),
            ("POST", "/playlists/%s/songs" % unknown, {"songId": "song-nope"}, carol, 404),
            ("POST", "/playlists/%s/songs" % pid, {"songId": "song-nope"}, carol, 404),
            ("POST", "/playlists/%s/songs" % pid, {"songId": other}, carol, 403),
            ("POST", "/playlists/%s/songs" % pid, {"songId": sid}, carol, 403),
            ("POST", "/playlists/%s/songs" % pid, {"songId": sid}, alice, 400),
            ("DELETE", "/playlists/%s/songs" % unknown, {}, None, 401),
            ("DELETE", "/playlists/%s/songs" % unknown, {}, carol, 400),
            ("DELETE", "/playlists/%s/songs" % unknown, {"songId": sid}, carol, 404),
            ("DELETE", "/playlists/%s/songs" % pid, {"songId": "song-nope"}, carol, 404),
            ("DELETE", "/playlists/%s/songs" % pid, {"songId": sid}, carol, 403),
            ("DELETE", "/playlists/%s/songs" % pid, {"songId": other}, carol, 403),
            ("DELETE", "/playlists/%s/songs" % pid, {"songId": other}, alice, 404),
            ("GET", "/playlists/%s/songs" % unknown, None, None, 401),
            ("GET", "/playlists/%s/songs" % unknown, None, carol, 404),
            ("GET", "/playlists/%s/songs" % pid, None, carol, 403),
            ("GET", "/playlists/%s/activities" % unknown, None, None, 401),
            ("GET", "/playlists/%s/activities" % unknown, None, carol, 404),
            ("GET", "/playlists/%s/activities" % pid, None, carol, 403),
            ("DELETE", "/playlists/" + unknown, None, None, 401),
            ("DELETE", "/playlists/" + unknown, None, carol, 404),
            ("DELETE", "/playlists/" + pid, None, carol, 403),
            ("POST", "/playlists", {}, None, 401),
            ("GET", "/playlists", None, None, 401),
            ("POST", "/collaborations", {}, None, 401),
            ("POST", "/collaborations", {"playlistId": unknown}, carol, 400),
            ("POST", "/collaborations", {"playlistId": unknown, "userId": 3}, carol, 400),
            ("POST", "/collaborations", {"playlistId": unknown, "userId": "user-nope"}, carol, 404),
            ("POST", "/collaborations", {"playlistId": pid, "userId": "user-nope"}, carol, 404),
            ("POST", "/collaborations", {"playlistId": pid, "userId": carol.id}, carol, 403),
            ("POST", "/collaborations", {"playlistId": pid, "userId": alice.id}, alice, 400),
            ("DELETE", "/collaborations", {}, None, 401),
            ("DELETE", "/collaborations", {"userId": carol.id}, carol, 400),
            ("DELETE", "/collaborations", {"playlistId": unknown, "userId": carol.id}, carol, 404),
            ("DELETE", "/collaborations", {"playlistId": pid, "userId": "user-nope"}, carol, 404),
            ("DELETE", "/collaborations", {"playlistId": pid, "userId": carol.id}, carol, 403),
            ("DELETE", "/collaborations", {"playlistId": pid, "userId": carol.id}, alice, 404),
        ]
        for method, path, body, who, expected in cases:
            token = who if isinstance(who, str) or who is None else who.token
            with self.subTest(method=method, path=path, body=body, who=getattr(who, "username", who)):
                self.assertFail(call(method, path, body, token), expected)
        # Nothing above changed the playlist.
        self.assertEqual([s["id"] for s in self.songs(alice, pid)["songs"]], [sid])
        self.assertEqual(len(self.activities(alice, pid)), 1)

    def test_unknown_and_odd_playlist_ids(self):
        alice = self.alice
        sid = new_song()
        for pid in ("playlist-0000000000000000", "x", "%00", "%27%20OR%201%3D1", "playlist-%C3%A9",
                    "%FF%FE", "a" * 2000, "playlist-abc;drop", "..", "%2e%2e"):
            with self.subTest(pid=pid[:30]):
                self.assertFail(call("GET", "/playlists/%s/songs" % pid, token=alice.token), 404)
                self.assertFail(call("GET", "/playlists/%s/activities" % pid, token=alice.token), 404)
                self.assertFail(call("DELETE", "/playlists/%s" % pid, token=alice.token), 404)
                self.assertFail(call("POST", "/playlists/%s/songs" % pid, {"songId": sid}, alice.token), 404)
                self.assertFail(call("DELETE", "/playlists/%s/songs" % pid, {"songId": sid}, alice.token), 404)
        # Raw bytes outside ASCII in the path (UTF-8 or not) are no request target at all (RFC 9112 section 3.2,
        # RFC 3986: they must be percent-encoded, as above): the strict parser answers 400, never a 500, and a
        # proxy in front cannot route such a target one way while the server reads it another.
        for raw in (b"\xff\xfe", b"caf\xc3\xa9", b"playlist-\x80"):
            for method, suffix, body in (("GET", b"/songs", b""), ("GET", b"/activities", b""), ("DELETE", b"", b""),
                                         ("POST", b"/songs", json.dumps({"songId": sid}).encode())):
                with self.subTest(raw=raw, method=method, suffix=suffix):
                    c = SRV.connect()
                    try:
                        c.send(b"%s /playlists/%s%s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                               b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                               % (method.encode(), raw, suffix, alice.token.encode(), len(body), body))
                        r = c.read_response(method=method)
                    finally:
                        c.close()
                    self.assertEqual(r.status, 400, r)
                    self.assertEqual(json.loads(r.body)["status"], "fail")
        for pid in ("", "playlist-a\tb", "\u00e9", "' OR 1=1 --", "\ud83c\udfb5"):
            with self.subTest(body_pid=pid):
                self.assertFail(call("POST", "/collaborations", {"playlistId": pid, "userId": alice.id},
                                     alice.token), 404)
                self.assertFail(call("DELETE", "/collaborations", {"playlistId": pid, "userId": alice.id},
                                     alice.token), 404)

    def test_head_on_get_routes(self):
        alice = self.alice
        pid = self.create(alice)
        self.add(alice, pid, new_song())
        for path in ("/playlists", "/playlists/%s/songs" % pid, "/playlists/%s/activities" % pid):
            with self.subTest(path=path):
                c = SRV.connect()
                try:
                    g = c.request("GET", path, headers=[("Authorization", "Bearer " + alice.token)])
                    h = c.request("HEAD", path, headers=[("Authorization", "Bearer " + alice.token)])
                finally:
                    c.close()
                self.assertEqual(g.status, 200)
                self.assertEqual(h.status, 200)
                self.assertEqual(h.body, b"")
                self.assertEqual(h.header("content-length"), str(len(g.body)))
                self.assertEqual(h.header("content-type"), g.header("content-type"))
        h = call("HEAD", "/playlists/%s/songs" % pid)
        self.assertEqual(h.status, 401)
        self.assertEqual(h.raw, b"")
        h = call("HEAD", "/playlists/playlist-unknown000000/songs", token=self.carol.token)
        self.assertEqual(h.status, 404)
        h = call("HEAD", "/playlists/%s/activities" % pid, token=self.carol.token)
        self.assertEqual(h.status, 403)

    def test_wrong_methods(self):
        alice = self.alice
        pid = self.create(alice)
        for method, path in (("PUT", "/playlists"), ("GET", "/playlists/" + pid), ("PUT", "/playlists/" + pid),
                             ("PATCH", "/playlists/%s/songs" % pid), ("POST", "/playlists/%s/activities" % pid),
                             ("GET", "/collaborations")):
            with self.subTest(method=method, path=path):
                r = call(method, path, token=alice.token)
                self.assertEqual(r.status, 405, r)
                self.assertTrue(r.headers.get("allow"), r)


# ---------------------------------------------------------------------------
# Collaborations
# ---------------------------------------------------------------------------

class Collaborations(PlaylistCase):
    def test_add_and_remove(self):
        alice, bob = User("alice"), User("bob")
        pid = self.create(alice)
        sid = new_song()
        self.assertFail(self.add(bob, pid, sid, 403), 403)
        r = call("POST", "/collaborations", {"playlistId": pid, "userId": bob.id, "extra": True}, alice.token)
        self.assertEqual(r.status, 201, r)
        self.assertEqual(set(r.json), {"status", "message", "data"})
        self.assertEqual(set(r.json["data"]), {"collaborationId"})
        cid = r.json["data"]["collaborationId"]
        self.assertRegex(cid, COLLAB_ID_RE)
        self.assertEqual(sql("SELECT playlist_id || '|' || user_id FROM collaborations WHERE id = %s" % q(cid)),
                         "%s|%s" % (pid, bob.id))
        self.assertFail(call("POST", "/collaborations", {"playlistId": pid, "userId": bob.id}, alice.token), 400,
                        "already")
        self.add(bob, pid, sid)
        self.assertIn(pid, [p["id"] for p in self.listing(bob).json["data"]["playlists"]])
        # Removal takes the access away again.
        r = call("DELETE", "/collaborations", {"playlistId": pid, "userId": bob.id}, alice.token)
        self.assertMessage(r, 200)
        self.assertFail(call("DELETE", "/collaborations", {"playlistId": pid, "userId": bob.id}, alice.token), 404,
                        "not a collaborator")
        self.assertFail(call("GET", "/playlists/%s/songs" % pid, token=bob.token), 403)
        self.assertFail(call("GET", "/playlists/%s/activities" % pid, token=bob.token), 403)
        self.assertFail(self.remove(bob, pid, sid, 403), 403)
        self.assertFail(self.add(bob, pid, new_song(), 403), 403)
        self.assertNotIn(pid, [p["id"] for p in self.listing(bob).json["data"]["playlists"]])
        # The songs a former collaborator added stay, and so does the history.
        self.assertEqual([s["id"] for s in self.songs(alice, pid)["songs"]], [sid])
        self.assertEqual([a["username"] for a in self.activities(alice, pid)], [bob.username])
        # And can be added again.
        self.assertRegex(self.collab(alice, pid, bob), COLLAB_ID_RE)
        self.assertEqual(len(self.songs(bob, pid)["songs"]), 1)

    def test_owner_cannot_be_collaborator(self):
        alice = User("alice")
        pid = self.create(alice)
        self.assertFail(call("POST", "/collaborations", {"playlistId": pid, "userId": alice.id}, alice.token), 400)
        self.assertFail(call("DELETE", "/collaborations", {"playlistId": pid, "userId": alice.id}, alice.token), 404)
        self.assertEqual(sql("SELECT count(*) FROM collaborations WHERE playlist_id = %s" % q(pid)), "0")
        self.assertEqual([p["id"] for p in self.listing(alice).json["data"]["playlists"]], [pid])

    def test_unknown_things(self):
        alice, bob = User("alice"), User("bob")
        pid = self.create(alice)
        for method in ("POST", "DELETE"):
            with self.subTest(method=method):
                self.assertFail(call(method, "/collaborations", {"playlistId": "playlist-nope", "userId": bob.id},
                                     alice.token), 404, "playlist")
                self.assertFail(call(method, "/collaborations", {"playlistId": pid, "userId": "user-nope"},
                                     alice.token), 404, "user")
                self.assertFail(call(method, "/collaborations", {"playlistId": "playlist-nope",
                                                                 "userId": "user-nope"}, alice.token), 404,
                                "playlist")

    def test_validation(self):
        alice, bob = User("alice"), User("bob")
        pid = self.create(alice)
        for method in ("POST", "DELETE"):
            for body in ({}, {"playlistId": pid}, {"userId": bob.id}, {"playlistId": 1, "userId": bob.id},
                         {"playlistId": pid, "userId": False}, {"playlistId": pid, "userId": None},
                         "x", "[]"):
                with self.subTest(method=method, body=body):
                    self.assertFail(call(method, "/collaborations", body, alice.token), 400)
                    self.assertFail(call(method, "/collaborations", body), 401)
        self.assertEqual(sql("SELECT count(*) FROM collaborations WHERE playlist_id = %s" % q(pid)), "0")

    def test_several_collaborators(self):
        alice, bob, carol, dave = User("alice"), User("bob"), User("carol"), User("dave")
        pid = self.create(alice, "Team")
        ids = {self.collab(alice, pid, u) for u in (bob, carol, dave)}
        self.assertEqual(len(ids), 3)
        for u in (bob, carol, dave):
            self.assertEqual([(p["id"], p["username"]) for p in self.listing(u).json["data"]["playlists"]],
                             [(pid, alice.username)])
        call("DELETE", "/collaborations", {"playlistId": pid, "userId": carol.id}, alice.token)
        self.assertEqual(self.listing(carol).json["data"]["playlists"], [])
        self.assertEqual(len(self.listing(bob).json["data"]["playlists"]), 1)
        # A removed user's account deletion removes their collaborations.
        sql("DELETE FROM users WHERE id = %s" % q(dave.id))
        self.assertEqual(sql("SELECT count(*) FROM collaborations WHERE playlist_id = %s" % q(pid)), "1")


if __name__ == "__main__":
    harness.main()
