#!/usr/bin/env python3
"""Authorization matrix: every route of the server's route table, called by six callers (anonymous, a user,
another user, the owning artist, another artist, an admin) in both modes (strict and STACCATO_COMPAT=openmusic),
with the status docs/api.md and README give for that cell.

The routes come from the server itself (GET /_debug/routes, the table the router is built from), so a route added
without a row in EXPECT below fails test_every_route_has_expectations, and a row whose route went away fails it
too. A row is "METHOD /pattern" for the route's plain case, and "METHOD /pattern [case]" for further cases of the
same route (a hidden album, a private song, rows nobody owns, another artist's album).

Each cell gets the resources its path names, made fresh through the API when the call could change them (a
DELETE, a like, a flag) and shared otherwise, and a valid body, so that its status says who may call, not whether
the body was good. "The owner" is the owning artist for catalog rows (albums, songs, covers, audio) and the user
for playlists, whose collaborator is a seventh account: the other user is nobody's collaborator. The checks come
in the contract's order (401, 400, 404, 403), which is why a hidden album is a 404 for a caller who would otherwise
be refused.

One PostgreSQL + Redis and one server per mode, sharing the database; accounts are made once.
"""

import itertools
import os
import random
import string
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import request  # noqa: E402

ACCESS_KEY = "itest-authz-access-key-0123456789abcdef"
REFRESH_KEY = "itest-authz-refresh-key-0123456789abcdef"
PASSWORD = "secret-password-1"

FIXTURE = harness.ModuleFixture("staccato-authz-", check_sanitizers=True)
SVC = None
SERVERS = {}     # mode -> harness.Server
U = {}           # account name -> {"id", "username", "token"}

ROLES = ("anonymous", "user", "other_user", "artist", "other_artist", "admin")
MODES = ("strict", "openmusic")


# ---------------------------------------------------------------------------
# expectations: one status per role, in ROLES order; a dict gives one per mode
# ---------------------------------------------------------------------------

def ALL(s):
    return (s,) * 6


def SIGNED_IN(s):
    """Any signed-in caller (SC_API_USER routes)."""
    return (401,) + (s,) * 5


def ADMINS(s):
    return (401, 403, 403, 403, 403, s)


def ARTISTS(s):
    """Artists and admins (catalog creation in strict mode)."""
    return (401, 403, 403, s, s, s)


def OWNER(s):
    """The owning artist and admins."""
    return (401, 403, 403, s, 403, s)


def PLAYLIST_OWNER(s):
    """The playlist's owner (the user) only: admins have no say over playlists."""
    return (401, s, 403, 403, 403, 403)


# The documentation pages' assets, as deps/install.sh docs installs them (or SC_DOCS_ASSETS).
DOCS_ASSETS = os.path.abspath(os.environ.get("SC_DOCS_ASSETS")
                              or os.path.join(harness.REPO_ROOT, "deps", "web", "node_modules"))

# Seen only by their owner and admins; others get the 404 of a missing row.
HIDDEN = (404, 404, 404, 200, 404, 200)
# Rows nobody owns: only admins in strict mode, anyone in OpenMusic mode.
NOBODYS = {"strict": (401, 403, 403, 403, 403, 200), "openmusic": ALL(200)}

EXPECT = {
    # operations
    "GET /health": ALL(200),
    "GET /ready": ALL(200),
    "GET /metrics": ALL(200),
    "GET /openapi.json": ALL(200),
    # documentation pages (their assets: DOCS_ASSETS)
    "GET /docs": ALL(200),
    "GET /redoc": ALL(200),
    "GET /docs/assets/{name}": ALL(200),
    # accounts
    "POST /users": ALL(201),
    "GET /users": ADMINS(200),
    "GET /users/verify-email": ALL(400),
    "POST /users/password-reset": ALL(202),
    "POST /users/password-reset/confirm": ALL(400),
    "GET /users/me": SIGNED_IN(200),
    "PUT /users/me": SIGNED_IN(200),
    "GET /users/me/songs": SIGNED_IN(200),
    "GET /users/me/likes": SIGNED_IN(200),
    "GET /users/{id}": ADMINS(200),
    "PUT /users/{id}": ADMINS(200),
    "DELETE /users/{id}": ADMINS(200),
    "POST /authentications": ALL(201),
    "PUT /authentications": ALL(200),
    "DELETE /authentications": ALL(200),
    # albums
    "POST /albums": {"strict": ARTISTS(201), "openmusic": ALL(201)},
    "GET /albums/{id}": ALL(200),
    "GET /albums/{id} [flagged]": HIDDEN,
    "PUT /albums/{id}": OWNER(200),
    "PUT /albums/{id} [nobody's]": NOBODYS,
    "PUT /albums/{id} [flagged]": {"strict": (401, 404, 404, 200, 404, 200), "openmusic": HIDDEN},
    "DELETE /albums/{id}": OWNER(200),
    "DELETE /albums/{id} [nobody's]": NOBODYS,
    "PUT /albums/{id}/flag": ADMINS(200),
    # songs
    "POST /songs": {"strict": ARTISTS(201), "openmusic": ALL(201)},
    "POST /songs [into the owner's album]": OWNER(201),
    "POST /songs [into nobody's album]": {"strict": (401, 403, 403, 403, 403, 201), "openmusic": ALL(201)},
    "GET /songs": ALL(200),
    "GET /songs/{id}": ALL(200),
    "GET /songs/{id} [private]": HIDDEN,
    "PUT /songs/{id}": OWNER(200),
    "PUT /songs/{id} [nobody's]": NOBODYS,
    # the owning artist's song into the other artist's album: neither artist may
    "PUT /songs/{id} [into another artist's album]": (401, 403, 403, 403, 403, 200),
    "DELETE /songs/{id}": OWNER(200),
    "DELETE /songs/{id} [nobody's]": NOBODYS,
    "PUT /songs/{id}/flag": ADMINS(200),
    # genres
    "GET /genres": ALL(200),
    "POST /genres": ADMINS(201),
    "DELETE /genres/{id}": ADMINS(200),
    # playlists and collaborations
    "POST /playlists": SIGNED_IN(201),
    "GET /playlists": SIGNED_IN(200),
    "DELETE /playlists/{id}": PLAYLIST_OWNER(200),
    "POST /playlists/{id}/songs": PLAYLIST_OWNER(201),
    "GET /playlists/{id}/songs": PLAYLIST_OWNER(200),
    "DELETE /playlists/{id}/songs": PLAYLIST_OWNER(200),
    "GET /playlists/{id}/activities": PLAYLIST_OWNER(200),
    "POST /collaborations": PLAYLIST_OWNER(201),
    "DELETE /collaborations": PLAYLIST_OWNER(200),
    "POST /export/playlists/{playlistId}": PLAYLIST_OWNER(201),
    # likes and ratings
    "POST /albums/{id}/likes": SIGNED_IN(201),
    "DELETE /albums/{id}/likes": SIGNED_IN(200),
    "GET /albums/{id}/likes": ALL(200),
    "POST /songs/{id}/likes": SIGNED_IN(201),
    "DELETE /songs/{id}/likes": SIGNED_IN(200),
    "GET /songs/{id}/likes": ALL(200),
    "PUT /songs/{id}/rating": SIGNED_IN(200),
    "DELETE /songs/{id}/rating": SIGNED_IN(200),
    # media
    "GET /songs/{id}/stream": ALL(200),
    "GET /songs/{id}/stream [private]": HIDDEN,
    "GET /songs/{id}/stream-url": SIGNED_IN(200),
    "GET /songs/{id}/stream-url [private]": (401, 404, 404, 200, 404, 200),
    "GET /albums/{id}/cover": ALL(200),
    "GET /albums/{id}/cover [flagged]": HIDDEN,
    "POST /albums/{id}/covers": OWNER(201),
    "POST /albums/{id}/covers [nobody's]": {"strict": (401, 403, 403, 403, 403, 201), "openmusic": ALL(201)},
    "PUT /songs/{id}/audio": OWNER(201),
    "POST /songs/{id}/audio": OWNER(201),
}


# ---------------------------------------------------------------------------
# module setup
# ---------------------------------------------------------------------------

_seq = itertools.count(1)


def uniq(prefix):
    return "%s%d%s" % (prefix, next(_seq), "".join(random.choice(string.ascii_lowercase) for _ in range(6)))


def server_env(**extra):
    env = FIXTURE.env(ACCESS_TOKEN_KEY=ACCESS_KEY, REFRESH_TOKEN_KEY=REFRESH_KEY, STACCATO_ACCESS_LOG="off",
                      STACCATO_ARGON2_M_KIB="1024", STACCATO_ARGON2_T="1", STACCATO_JOBS="off",
                      STACCATO_REGISTER_MAX_PER_ADDRESS="100000", STACCATO_PASSWORD_RESET_MAX_PER_ADDRESS="100000", STACCATO_MEDIA_DIR=MEDIA,
                      STACCATO_DOCS_ASSETS=DOCS_ASSETS)
    env.update({k: str(v) for k, v in extra.items()})
    return env


MEDIA = None
SHARED = {}      # name -> id of the resources no cell changes


def setUpModule():
    global SVC, MEDIA
    with FIXTURE.setting_up():
        MEDIA = os.path.join(FIXTURE.tempdir("staccato-authz-media-"), "media")
        SVC = FIXTURE.start_services()
        SERVERS["strict"] = FIXTURE.server("strict", server_env())
        SERVERS["openmusic"] = FIXTURE.server("openmusic", server_env(STACCATO_COMPAT="openmusic"))
        port = SERVERS["strict"].port
        for name, role in (("user", "user"), ("other_user", "user"), ("artist", "artist"),
                           ("other_artist", "artist"), ("admin", "admin"), ("collaborator", "user"),
                           ("login", "user")):
            U[name] = harness.account(port, uniq("authz_" + name + "_"), PASSWORD, "Authz " + name, role, SVC)
        album = new_album()
        ok(upload_cover(album, "artist"), 201)
        song = new_song(album=album)
        ok(put_audio(song, "artist"), 201)
        private = new_song()
        ok(put_audio(private, "artist"), 201)
        SVC.psql("UPDATE songs SET visibility = 'private' WHERE id = '%s'" % private)
        flagged = new_album()
        ok(upload_cover(flagged, "artist"), 201)
        ok(call("PUT", "/albums/%s/flag" % flagged, "admin", {"flagged": True}), 200)
        playlist = new_playlist(song)
        SHARED.update(album=album, song=song, private=private, flagged=flagged, playlist=playlist)


tearDownModule = FIXTURE.tear_down


# ---------------------------------------------------------------------------
# making resources (on the strict server unless said otherwise; the servers share the database)
# ---------------------------------------------------------------------------

def token(who):
    return None if who in (None, "anonymous") else U[who]["token"]


def call(method, path, who, body=None, headers=None, mode="strict"):
    h = dict(harness.bearer(token(who)))
    h.update(headers or {})
    return request(SERVERS[mode].port, method, path, body, headers=h)


def ok(resp, status):
    st, _, j = resp
    if st != status:
        raise AssertionError("fixture: expected %d, got %d %r" % (status, st, j))
    return j


def new_album(owner="artist"):
    """An album of owner's, or nobody's for owner None (made without a token in OpenMusic mode)."""
    mode = "openmusic" if owner is None else "strict"
    j = ok(call("POST", "/albums", owner, {"name": uniq("Album "), "year": 2020}, mode=mode), 201)
    return j["data"]["albumId"]


def song_body(**extra):
    body = {"title": uniq("Song "), "year": 2020, "performer": "Authz", "genre": "Pop"}
    body.update(extra)
    return body


def new_song(owner="artist", album=None):
    mode = "openmusic" if owner is None else "strict"
    body = song_body(**({"albumId": album} if album else {}))
    return ok(call("POST", "/songs", owner, body, mode=mode), 201)["data"]["songId"]


def new_playlist(song=None):
    """A playlist of the user's, with song in it."""
    pid = ok(call("POST", "/playlists", "user", {"name": uniq("Playlist ")}), 201)["data"]["playlistId"]
    if song:
        ok(call("POST", "/playlists/%s/songs" % pid, "user", {"songId": song}), 201)
    return pid


def png():
    return b"\x89PNG\r\n\x1a\n" + random.Random(next(_seq)).randbytes(500)


def wav():
    n = 4000
    return (b"RIFF" + struct.pack("<I", 36 + n) + b"WAVE" + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, 8000, 8000, 1, 8)
            + b"data" + struct.pack("<I", n) + random.Random(next(_seq)).randbytes(n))


def multipart(field, filename, ctype, data):
    boundary = "authzBoundary" + uniq("b")
    body = ("--%s\r\nContent-Disposition: form-data; name=\"%s\"; filename=\"%s\"\r\nContent-Type: %s\r\n\r\n"
            % (boundary, field, filename, ctype)).encode() + data + ("\r\n--%s--\r\n" % boundary).encode()
    return {"Content-Type": "multipart/form-data; boundary=" + boundary}, body


def upload_cover(album, who, mode="strict"):
    h, body = multipart("cover", "cover.png", "image/png", png())
    return call("POST", "/albums/%s/covers" % album, who, body, h, mode=mode)


def put_audio(song, who, mode="strict"):
    return call("PUT", "/songs/%s/audio" % song, who, wav(), {"Content-Type": "audio/wav"}, mode=mode)


# ---------------------------------------------------------------------------
# the request of each cell: fixture(role, mode) -> (path, body, headers)
# ---------------------------------------------------------------------------

def signed_in(role):
    return role != "anonymous"


def liked_album(role, mode):
    aid = new_album()
    if signed_in(role):
        ok(call("POST", "/albums/%s/likes" % aid, role), 201)
    return "/albums/%s/likes" % aid, None, None


def liked_song(role, mode):
    sid = new_song()
    if signed_in(role):
        ok(call("POST", "/songs/%s/likes" % sid, role), 201)
    return "/songs/%s/likes" % sid, None, None


def rated_song(role, mode):
    sid = new_song()
    if signed_in(role):
        ok(call("PUT", "/songs/%s/rating" % sid, role, {"rating": 3}), 200)
    return "/songs/%s/rating" % sid, None, None


def refresh_token(role, mode):
    _, refresh = harness.login(SERVERS[mode].port, U["login"]["username"], PASSWORD)
    return "/authentications", {"refreshToken": refresh}, None


def victim(role, mode):
    uid = harness.register(SERVERS["strict"].port, uniq("authz_victim_"), PASSWORD)
    return "/users/" + uid, None, None


def collaboration(role, mode):
    pid = new_playlist()
    body = {"playlistId": pid, "userId": U["collaborator"]["id"]}
    ok(call("POST", "/collaborations", "user", body), 201)
    return "/collaborations", body, None


def cover(album):
    def make(role, mode):
        h, body = multipart("cover", "cover.png", "image/png", png())
        return "/albums/%s/covers" % album(), body, h
    return make


def audio_raw(role, mode):
    return "/songs/%s/audio" % new_song(), wav(), {"Content-Type": "audio/wav"}


def audio_multipart(role, mode):
    h, body = multipart("audio", "song.wav", "application/octet-stream", wav())
    return "/songs/%s/audio" % new_song(), body, h


def fixed(path, body=None, headers=None):
    return lambda role, mode: (path() if callable(path) else path, body() if callable(body) else body, headers)


ALBUM_BODY = lambda: {"name": uniq("Album "), "year": 2021}  # noqa: E731
S = SHARED

FIX = {
    "GET /health": fixed("/health"),
    "GET /ready": fixed("/ready"),
    "GET /metrics": fixed("/metrics"),
    "GET /openapi.json": fixed("/openapi.json"),
    "GET /docs": fixed("/docs"),
    "GET /redoc": fixed("/redoc"),
    "GET /docs/assets/{name}": fixed("/docs/assets/swagger-ui.css"),
    "POST /users": fixed("/users", lambda: {"username": uniq("authz_new_"), "password": PASSWORD, "fullname": "N"}),
    "GET /users": fixed("/users"),
    "GET /users/verify-email": fixed("/users/verify-email?token=not-a-token"),
    "POST /users/password-reset": fixed("/users/password-reset", lambda: {"email": uniq("authz-reset-") + "@example.com"}),
    "POST /users/password-reset/confirm": fixed("/users/password-reset/confirm", {"token": "not.a.token.x",
                                                                                "password": PASSWORD}),
    "GET /users/me": fixed("/users/me"),
    "PUT /users/me": fixed("/users/me", {"fullname": "Renamed"}),
    "GET /users/me/songs": fixed("/users/me/songs"),
    "GET /users/me/likes": fixed("/users/me/likes"),
    "GET /users/{id}": fixed(lambda: "/users/" + U["other_user"]["id"]),
    "PUT /users/{id}": fixed(lambda: "/users/" + U["other_user"]["id"], {"fullname": "Renamed"}),
    "DELETE /users/{id}": victim,
    "POST /authentications": fixed("/authentications",
                                   lambda: {"username": U["login"]["username"], "password": PASSWORD}),
    "PUT /authentications": refresh_token,
    "DELETE /authentications": refresh_token,
    "POST /albums": fixed("/albums", ALBUM_BODY),
    "GET /albums/{id}": fixed(lambda: "/albums/" + S["album"]),
    "GET /albums/{id} [flagged]": fixed(lambda: "/albums/" + S["flagged"]),
    "PUT /albums/{id}": fixed(lambda: "/albums/" + new_album(), ALBUM_BODY),
    "PUT /albums/{id} [nobody's]": fixed(lambda: "/albums/" + new_album(None), ALBUM_BODY),
    "PUT /albums/{id} [flagged]": fixed(lambda: "/albums/" + S["flagged"], ALBUM_BODY),
    "DELETE /albums/{id}": fixed(lambda: "/albums/" + new_album()),
    "DELETE /albums/{id} [nobody's]": fixed(lambda: "/albums/" + new_album(None)),
    "PUT /albums/{id}/flag": fixed(lambda: "/albums/%s/flag" % new_album(), {"flagged": False}),
    "POST /songs": fixed("/songs", song_body),
    "POST /songs [into the owner's album]": fixed("/songs", lambda: song_body(albumId=S["album"])),
    "POST /songs [into nobody's album]": fixed("/songs", lambda: song_body(albumId=new_album(None))),
    "GET /songs": fixed("/songs"),
    "GET /songs/{id}": fixed(lambda: "/songs/" + S["song"]),
    "GET /songs/{id} [private]": fixed(lambda: "/songs/" + S["private"]),
    "PUT /songs/{id}": fixed(lambda: "/songs/" + new_song(), song_body),
    "PUT /songs/{id} [nobody's]": fixed(lambda: "/songs/" + new_song(None), song_body),
    "PUT /songs/{id} [into another artist's album]":
        fixed(lambda: "/songs/" + new_song(), lambda: song_body(albumId=new_album("other_artist"))),
    "DELETE /songs/{id}": fixed(lambda: "/songs/" + new_song()),
    "DELETE /songs/{id} [nobody's]": fixed(lambda: "/songs/" + new_song(None)),
    "PUT /songs/{id}/flag": fixed(lambda: "/songs/%s/flag" % new_song(), {"flagged": False}),
    "GET /genres": fixed("/genres"),
    "POST /genres": fixed("/genres", lambda: {"name": uniq("Genre ")}),
    "DELETE /genres/{id}": fixed(lambda: "/genres/" + ok(call("POST", "/genres", "admin", {"name": uniq("Genre ")}),
                                                        201)["data"]["genreId"]),
    "POST /playlists": fixed("/playlists", lambda: {"name": uniq("Playlist ")}),
    "GET /playlists": fixed("/playlists"),
    "DELETE /playlists/{id}": fixed(lambda: "/playlists/" + new_playlist()),
    "POST /playlists/{id}/songs": fixed(lambda: "/playlists/%s/songs" % new_playlist(), lambda: {"songId": S["song"]}),
    "GET /playlists/{id}/songs": fixed(lambda: "/playlists/%s/songs" % S["playlist"]),
    "DELETE /playlists/{id}/songs": fixed(lambda: "/playlists/%s/songs" % new_playlist(S["song"]),
                                          lambda: {"songId": S["song"]}),
    "GET /playlists/{id}/activities": fixed(lambda: "/playlists/%s/activities" % S["playlist"]),
    "POST /collaborations": fixed("/collaborations",
                                  lambda: {"playlistId": new_playlist(), "userId": U["collaborator"]["id"]}),
    "DELETE /collaborations": collaboration,
    "POST /export/playlists/{playlistId}": fixed(lambda: "/export/playlists/" + S["playlist"],
                                                 {"targetEmail": "authz@example.com"}),
    "POST /albums/{id}/likes": fixed(lambda: "/albums/%s/likes" % new_album()),
    "DELETE /albums/{id}/likes": liked_album,
    "GET /albums/{id}/likes": fixed(lambda: "/albums/%s/likes" % S["album"]),
    "POST /songs/{id}/likes": fixed(lambda: "/songs/%s/likes" % new_song()),
    "DELETE /songs/{id}/likes": liked_song,
    "GET /songs/{id}/likes": fixed(lambda: "/songs/%s/likes" % S["song"]),
    "PUT /songs/{id}/rating": fixed(lambda: "/songs/%s/rating" % S["song"], {"rating": 4}),
    "DELETE /songs/{id}/rating": rated_song,
    "GET /songs/{id}/stream": fixed(lambda: "/songs/%s/stream" % S["song"]),
    "GET /songs/{id}/stream [private]": fixed(lambda: "/songs/%s/stream" % S["private"]),
    "GET /songs/{id}/stream-url": fixed(lambda: "/songs/%s/stream-url" % S["song"]),
    "GET /songs/{id}/stream-url [private]": fixed(lambda: "/songs/%s/stream-url" % S["private"]),
    "GET /albums/{id}/cover": fixed(lambda: "/albums/%s/cover" % S["album"]),
    "GET /albums/{id}/cover [flagged]": fixed(lambda: "/albums/%s/cover" % S["flagged"]),
    "POST /albums/{id}/covers": cover(new_album),
    "POST /albums/{id}/covers [nobody's]": cover(lambda: new_album(None)),
    "PUT /songs/{id}/audio": audio_raw,
    "POST /songs/{id}/audio": audio_multipart,
}


def route_of(key):
    """"METHOD /pattern [case]" -> ("METHOD", "/pattern")."""
    method, rest = key.split(" ", 1)
    return method, rest.split(" [", 1)[0]


def expected(key, mode):
    e = EXPECT[key]
    return e[mode] if isinstance(e, dict) else e


def server_routes():
    """The server's route table without the debug rows: {"METHOD /pattern": access}."""
    st, _, j = request(SERVERS["strict"].port, "GET", "/_debug/routes")
    if st != 200:
        raise AssertionError("GET /_debug/routes: %d %r" % (st, j))
    return {"%s %s" % (r["method"], r["pattern"]): r["access"] for r in j["data"]["routes"]
            if not r["pattern"].startswith("/_debug/")}


class AuthzMatrix(harness.ServerTestCase):

    def test_every_route_has_expectations(self):
        routes = server_routes()
        self.assertGreater(len(routes), 40)
        rows = {"%s %s" % route_of(k) for k in EXPECT}
        self.assertEqual(sorted(set(routes) - rows), [], "routes without a row in EXPECT")
        self.assertEqual(sorted(rows - set(routes)), [], "rows in EXPECT for routes the server does not have")
        self.assertEqual(sorted(set(EXPECT) ^ set(FIX)), [], "EXPECT and FIX must name the same cells")
        for key in EXPECT:
            for mode in MODES:
                e = expected(key, mode)
                self.assertEqual(len(e), len(ROLES), key)
                # what the route's gate decides holds in every mode
                access = routes["%s %s" % route_of(key)]
                if access in ("user", "admin"):
                    self.assertEqual(e[0], 401, (key, mode))
                if access == "admin":
                    self.assertEqual(e[1:5], (403,) * 4, (key, mode))

    def test_matrix(self):
        wrong = []
        cells = 0
        for mode in MODES:
            for key in sorted(EXPECT):
                method, _ = route_of(key)
                for role, want in zip(ROLES, expected(key, mode)):
                    path, body, headers = FIX[key](role, mode)
                    st, _, j = call(method, path, role, body, headers, mode=mode)
                    cells += 1
                    if st != want:
                        msg = j.get("message") if isinstance(j, dict) else None
                        wrong.append("%-10s %-48s %-13s expected %d, got %d %s"
                                     % (mode, key, role, want, st, msg or ""))
        self.assertEqual(cells, len(EXPECT) * len(ROLES) * len(MODES))
        self.assertEqual(wrong, [], "\n" + "\n".join(wrong))


if __name__ == "__main__":
    harness.main()
