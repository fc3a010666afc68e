#!/usr/bin/env python3
"""Accounts and authentication: registration, login, refresh-token rotation and
reuse detection, access-token verification (forged, tampered, expired tokens),
roles and admin user management, one's own profile and password change, cookie
mode with its origin check, login rate limiting (Redis and the in-process
fallback), and an event loop that keeps answering while passwords are hashed.

The file runs its own PostgreSQL + Redis (deps/services.sh, SERVICES_EPHEMERAL=1)
in a temp directory and applies the migrations with `staccato migrate`. Most
tests share one server (MAIN, cheap Argon2 parameters, generous login limits);
rate-limit and liveness tests start servers of their own. Login rate-limit
counters live in Redis and are shared by every server of this file, so the
rate-limit tests clear them first.

Tokens are crafted in Python (HS256 with hmac/hashlib/base64) with the keys the
servers are given, to check what the server accepts and rejects.
"""

import base64
import hashlib
import hmac
import itertools
import json
import os
import random
import re
import socket
import string
import sys
import threading
import time
from urllib.parse import urlparse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import request  # noqa: E402

ACCESS_KEY = "itest-access-key-0123456789abcdefghijklm"    # 40 characters
REFRESH_KEY = "itest-refresh-key-0123456789abcdefghijkl"   # 40 characters, different
OTHER_KEY = "itest-other-key-0123456789abcdefghijklmno"     # signs forgeries
assert len(ACCESS_KEY) == 40 and len(REFRESH_KEY) == 40 and ACCESS_KEY != REFRESH_KEY

CHEAP_HASH = {"STACCATO_ARGON2_M_KIB": "1024", "STACCATO_ARGON2_T": "1"}
TRUSTED_ORIGIN = "https://app.example"

LOGIN_FAILED = "invalid username or password"
REFRESH_INVALID = "refresh token is not valid"
RATE_LIMITED = "too many login attempts; try again later"
CROSS_ORIGIN = "cross-origin request with cookie credentials"
USERNAME_RULE = "username must be 3 to 50 characters of letters, digits, _ . -"
ACCESS_COOKIE = "staccato_access"
REFRESH_COOKIE = "staccato_refresh"

USER_KEYS = {"id", "username", "fullname", "role", "createdAt", "email", "emailVerified"}
ISO_UTC_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")

FIXTURE = harness.ModuleFixture("staccato-auth-")
SVC = None       # harness.Services
MAIN = None      # the shared server
EXPIRY = None    # a server with ACCESS_TOKEN_AGE=10 and no leeway, see ServerIssuedTokenExpiry
NOGRACE = None   # like MAIN with STACCATO_REFRESH_GRACE_S=0: rotation and reuse detection without grace
EXPIRY_SESSION = {}


# ---------------------------------------------------------------------------
# module setup
# ---------------------------------------------------------------------------

def auth_env(cheap=True, **extra):
    env = FIXTURE.env(ACCESS_TOKEN_KEY=ACCESS_KEY, REFRESH_TOKEN_KEY=REFRESH_KEY, STACCATO_ACCESS_LOG="off")
    if cheap:
        env.update(CHEAP_HASH)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def main_env():
    return auth_env(STACCATO_LOGIN_MAX_PER_ACCOUNT=100000, STACCATO_LOGIN_MAX_PER_ADDRESS=1000000,
                    STACCATO_COOKIE_ORIGINS=TRUSTED_ORIGIN)


def setUpModule():
    global SVC, MAIN, EXPIRY, NOGRACE
    with FIXTURE.setting_up():
        SVC = FIXTURE.start_services()
        MAIN = FIXTURE.server("main", main_env())
        NOGRACE = FIXTURE.server("nograce", dict(main_env(), STACCATO_REFRESH_GRACE_S="0"))
        # Started now so that its 10 s token lifetime runs out while the other tests run.
        EXPIRY = FIXTURE.server("expiry", auth_env(ACCESS_TOKEN_AGE=10, STACCATO_TOKEN_LEEWAY_S=0,
                                                    STACCATO_LOGIN_MAX_PER_ACCOUNT=1000,
                                                    STACCATO_LOGIN_MAX_PER_ADDRESS=100000))
        name, pw, uid = register(EXPIRY.port)
        access, refresh = login(EXPIRY.port, name, pw)
        st, _, j = request(EXPIRY.port, "GET", "/users/me", headers=bearer(access))
        EXPIRY_SESSION.update(uid=uid, access=access, refresh=refresh, fresh_status=st, fresh_body=j)


tearDownModule = FIXTURE.tear_down


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

_seq = itertools.count(1)


def uniq(prefix="u"):
    """A fresh, valid username (letters, digits, underscore; well under 50)."""
    tail = "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(6))
    return "%s_%d_%s" % (prefix, next(_seq), tail)


bearer = harness.bearer
login = harness.login


def register(port, username=None, password="secret1", fullname="Test User"):
    """POST /users; returns (username, password, userId) or raises."""
    username = username or uniq()
    return username, password, harness.register(port, username, password, fullname)


def b64u(data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64u_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def make_jwt(claims, key, header=None, digest=hashlib.sha256, signature=None):
    """An HMAC-signed JWT; signature="" leaves it unsigned (alg none)."""
    if header is None:
        header = {"alg": "HS256", "typ": "JWT"}
    signing_input = b64u(json.dumps(header, separators=(",", ":"))) + "." + \
        b64u(json.dumps(claims, separators=(",", ":")))
    if signature is None:
        signature = b64u(hmac.new(key.encode(), signing_input.encode("ascii"), digest).digest())
    return signing_input + "." + signature


def jwt_claims(token):
    parts = token.split(".")
    if len(parts) != 3:
        raise AssertionError("not a JWT: %r" % token)
    return json.loads(b64u_decode(parts[1]).decode("utf-8"))


def jwt_header(token):
    return json.loads(b64u_decode(token.split(".")[0]).decode("utf-8"))


def signed_with(token, key):
    head, payload, sig = token.split(".")
    mac = hmac.new(key.encode(), (head + "." + payload).encode("ascii"), hashlib.sha256).digest()
    return hmac.compare_digest(b64u(mac), sig)


def parse_set_cookie(value):
    """'n=v; Path=/; HttpOnly' -> (name, value, {attr_lower: value or True})."""
    parts = [p.strip() for p in value.split(";")]
    name, _, val = parts[0].partition("=")
    attrs = {}
    for p in parts[1:]:
        if not p:
            continue
        k, eq, v = p.partition("=")
        attrs[k.strip().lower()] = v.strip() if eq else True
    return name.strip(), val, attrs


def set_cookies(headers):
    """{cookie name: (value, attrs)} of the Set-Cookie headers of a response."""
    out = {}
    for v in headers.get_all("set-cookie"):
        name, val, attrs = parse_set_cookie(v)
        out[name] = (val, attrs)
    return out


def redis_call(*args, timeout=3.0):
    """One command to the file's Redis; returns the first reply line (simple
    string or integer replies only)."""
    u = urlparse(SVC.redis_url)
    if u.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise AssertionError("Redis is not on loopback: %r" % SVC.redis_url)
    payload = "*%d\r\n" % len(args) + "".join("$%d\r\n%s\r\n" % (len(a.encode()), a) for a in args)
    with socket.create_connection((u.hostname, u.port), timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(payload.encode())
        data = b""
        deadline = time.monotonic() + timeout
        while b"\r\n" not in data and time.monotonic() < deadline:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    line = data.split(b"\r\n", 1)[0]
    if not line or line.startswith(b"-"):
        raise AssertionError("redis %s: %r" % (args[0], data))
    return line.decode()


def clear_login_limits():
    """Drop every login rate-limit counter (shared by all servers of the file)."""
    redis_call("EVAL", "local n = 0 for _, k in ipairs(redis.call('KEYS', ARGV[1])) do "
                       "n = n + redis.call('DEL', k) end return n", "0", "staccato:login:*")


def make_admin(username):
    """Promote through the database (deps/services.sh psql DIR)."""
    _, out, err = SVC.run("psql", "-X", "-v", "ON_ERROR_STOP=1", "-c",
                          "UPDATE users SET role='admin' WHERE username='%s'" % username, timeout=30)
    if "UPDATE 1" not in out:
        raise AssertionError("promoting %r: %r %r" % (username, out, err))


def run_threads(fn, args_list, timeout):
    """fn(*args) in one thread each; returns results (or the exception raised)."""
    results = [None] * len(args_list)

    def one(i, args):
        try:
            results[i] = fn(*args)
        except BaseException as e:  # noqa: B902 - reported by the caller
            results[i] = e

    threads = [threading.Thread(target=one, args=(i, a), daemon=True) for i, a in enumerate(args_list)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    if any(t.is_alive() for t in threads):
        raise AssertionError("threads still running after %.0f s" % timeout)
    return results


class AuthCase(harness.ServerTestCase):
    """Tests against MAIN unless they start a server of their own."""

    @property
    def port(self):
        return MAIN.port

    def assertFail(self, status, headers, body, want_status, message=None, what=""):
        """A JSON error envelope with that status (and message, if given)."""
        self.assertEqual(status, want_status, "%s: %r" % (what, body))
        ct = (headers.get("content-type") or "").replace(" ", "").lower()
        self.assertEqual(ct, "application/json;charset=utf-8", "%s: Content-Type %r" % (what, ct))
        self.assertIsInstance(body, dict, what)
        self.assertEqual(body.get("status"), "fail" if want_status < 500 else "error", "%s: %r" % (what, body))
        self.assertIsInstance(body.get("message"), str, "%s: %r" % (what, body))
        self.assertTrue(body["message"], what)
        if message is not None:
            self.assertEqual(body["message"], message, what)
        return body

    def assertSuccess(self, status, body, want_status, what=""):
        self.assertEqual(status, want_status, "%s: %r" % (what, body))
        self.assertIsInstance(body, dict, what)
        self.assertEqual(body.get("status"), "success", "%s: %r" % (what, body))
        return body

    def assert401(self, token_headers, message=None, what=""):
        st, h, j = request(self.port, "GET", "/users/me", headers=token_headers)
        self.assertFail(st, h, j, 401, message, what)
        www = h.get("www-authenticate")
        self.assertIsNotNone(www, "%s: 401 without WWW-Authenticate" % what)
        self.assertTrue(www.lower().startswith("bearer"), "%s: WWW-Authenticate %r" % (what, www))

    def refresh(self, token, port=None):
        return request(port or self.port, "PUT", "/authentications", {"refreshToken": token})

    def me(self, access, port=None):
        st, _, j = request(port or self.port, "GET", "/users/me", headers=bearer(access))
        self.assertSuccess(st, j, 200, "GET /users/me")
        return j["data"]["user"]


# ---------------------------------------------------------------------------
# 1. OpenMusic: registration, login, refresh, logout
# ---------------------------------------------------------------------------

class Registration(AuthCase):
    def test_register_returns_user_id(self):
        st, h, j = request(self.port, "POST", "/users",
                           {"username": uniq(), "password": "secret1", "fullname": "Dicoding Indonesia"})
        self.assertSuccess(st, j, 201, "POST /users")
        self.assertEqual((h.get("content-type") or "").replace(" ", "").lower(), "application/json;charset=utf-8")
        uid = j.get("data", {}).get("userId")
        self.assertIsInstance(uid, str, j)
        self.assertTrue(uid.startswith("user-") and len(uid) > len("user-"), uid)

    def test_user_ids_differ(self):
        ids = {register(self.port)[2] for _ in range(3)}
        self.assertEqual(len(ids), 3, ids)

    def test_taken_username_in_any_case_is_400(self):
        name = uniq("Dup")
        register(self.port, name)
        for variant in (name, name.lower(), name.upper()):
            st, h, j = request(self.port, "POST", "/users",
                               {"username": variant, "password": "another1", "fullname": "Other"})
            self.assertFail(st, h, j, 400, "username already taken", "duplicate %r of %r" % (variant, name))
        # The original account is untouched: its password still works.
        login(self.port, name, "secret1")

    def test_validation_errors(self):
        good = {"username": uniq(), "password": "secret1", "fullname": "Valid Name"}

        def without(k):
            return {x: v for x, v in good.items() if x != k}

        cases = [
            ("missing username", without("username"), "username is required"),
            ("missing password", without("password"), "password is required"),
            ("missing fullname", without("fullname"), "fullname is required"),
            ("empty object", {}, "username is required"),
            ("null username", dict(good, username=None), "username is required"),
            ("numeric username", dict(good, username=12345), "username must be a string"),
            ("numeric password", dict(good, password=123456), "password must be a string"),
            ("boolean password", dict(good, password=True), "password must be a string"),
            ("array fullname", dict(good, fullname=["a"]), "fullname must be a string"),
            ("object fullname", dict(good, fullname={"a": 1}), "fullname must be a string"),
            ("5-char password", dict(good, password="12345"), "password is too short"),
            ("empty password", dict(good, password=""), "password is too short"),
            ("2-char username", dict(good, username="ab"), USERNAME_RULE),
            ("51-char username", dict(good, username="a" * 51), USERNAME_RULE),
            ("username with a space", dict(good, username="bad name"), USERNAME_RULE),
            ("username with a slash", dict(good, username="bad/name"), USERNAME_RULE),
            ("username with non-ASCII", dict(good, username="t\u00e9st_user"), USERNAME_RULE),
            ("blank fullname", dict(good, fullname="   "), "fullname must not be empty"),
        ]
        for what, body, message in cases:
            st, h, j = request(self.port, "POST", "/users", body)
            self.assertFail(st, h, j, 400, message, what)
        raw_cases = [
            ("not JSON", b"username=a&password=b", "request body is not valid JSON"),
            ("truncated JSON", b'{"username": "abc", ', "request body is not valid JSON"),
            ("a JSON array", json.dumps([good]).encode(), "request body must be a JSON object"),
            # A top-level scalar is valid JSON (RFC 8259) but not an object; either message is a fair 400.
            ("a JSON string", b'"secret"', None),
            ("JSON null", b"null", None),
        ]
        for what, raw, message in raw_cases:
            st, h, j = request(self.port, "POST", "/users", raw, headers={"Content-Type": "application/json"})
            self.assertFail(st, h, j, 400, message, what)
        # None of the rejected bodies created the account.
        st, _, j = request(self.port, "POST", "/users", good)
        self.assertSuccess(st, j, 201, "the valid body after the rejected ones")

    def test_length_boundaries_accepted(self):
        for name, pw in (("a" + uniq("")[-2:], "123456"), ((uniq("b") + "x" * 50)[:50], "p" * 1024)):
            self.assertTrue(len(name) in (3, 50), name)
            st, _, j = request(self.port, "POST", "/users", {"username": name, "password": pw, "fullname": "F"})
            self.assertSuccess(st, j, 201, "username of %d, password of %d" % (len(name), len(pw)))
            login(self.port, name, pw)
        st, h, j = request(self.port, "POST", "/users", {"username": uniq(), "password": "p" * 1025, "fullname": "F"})
        self.assertFail(st, h, j, 400, "password is too long", "1025-byte password")


class Login(AuthCase):
    def test_login_returns_tokens_with_claims(self):
        name, pw, uid = register(self.port)
        before = int(time.time())
        st, h, j = request(self.port, "POST", "/authentications", {"username": name, "password": pw})
        after = int(time.time())
        self.assertSuccess(st, j, 201, "POST /authentications")
        self.assertEqual(h.get_all("set-cookie"), [], "Set-Cookie without ?cookie=1")
        data = j.get("data", {})
        access, refresh = data.get("accessToken"), data.get("refreshToken")
        self.assertIsInstance(access, str, j)
        self.assertIsInstance(refresh, str, j)
        self.assertNotEqual(access, refresh)
        self.assertTrue(signed_with(access, ACCESS_KEY), "access token not HS256 with ACCESS_TOKEN_KEY")
        self.assertTrue(signed_with(refresh, REFRESH_KEY), "refresh token not HS256 with REFRESH_TOKEN_KEY")
        self.assertEqual(jwt_header(access).get("alg"), "HS256")
        c = jwt_claims(access)
        self.assertEqual(c.get("sub"), uid, c)
        self.assertEqual(c.get("role"), "user", c)
        self.assertIsInstance(c.get("iat"), int, c)
        self.assertTrue(before - 1 <= c["iat"] <= after + 1, c)
        self.assertEqual(c.get("exp") - c["iat"], 1800, "ACCESS_TOKEN_AGE default: %r" % c)
        self.assertEqual(self.me(access)["id"], uid)

    def test_username_is_case_insensitive_at_login(self):
        name, pw, uid = register(self.port, uniq("Mixed"))
        access, _ = login(self.port, name.upper(), pw)
        self.assertEqual(jwt_claims(access)["sub"], uid)

    def test_wrong_password_and_unknown_user_same_401(self):
        name, pw, _ = register(self.port)
        st1, h1, j1 = request(self.port, "POST", "/authentications", {"username": name, "password": "wrong-pass"})
        self.assertFail(st1, h1, j1, 401, LOGIN_FAILED, "wrong password")
        st2, h2, j2 = request(self.port, "POST", "/authentications", {"username": uniq("ghost"), "password": pw})
        self.assertFail(st2, h2, j2, 401, LOGIN_FAILED, "unknown user")
        self.assertEqual(j1, j2, "unknown user and wrong password must be indistinguishable")
        st3, h3, j3 = request(self.port, "POST", "/authentications", {"username": "x" * 60, "password": pw})
        self.assertFail(st3, h3, j3, 401, LOGIN_FAILED, "over-long username")

    def test_login_validation(self):
        for what, body, message in (
                ("missing password", {"username": "someone"}, "password is required"),
                ("missing username", {"password": "secret1"}, "username is required"),
                ("numeric username", {"username": 5, "password": "secret1"}, "username must be a string"),
                ("array body", [], "request body must be a JSON object")):
            st, h, j = request(self.port, "POST", "/authentications", body)
            self.assertFail(st, h, j, 400, message, what)
        st, h, j = request(self.port, "POST", "/authentications", b"{nope", headers={"Content-Type": "application/json"})
        self.assertFail(st, h, j, 400, "request body is not valid JSON", "malformed JSON")


class RefreshAndLogout(AuthCase):
    def session(self):
        name, pw, uid = register(self.port)
        access, refresh = login(self.port, name, pw)
        return name, pw, uid, access, refresh

    def test_refresh_rotates(self):
        _, _, uid, _, r1 = self.session()
        st, h, j = self.refresh(r1)
        self.assertSuccess(st, j, 200, "PUT /authentications")
        access = j["data"].get("accessToken")
        r2 = j["data"].get("refreshToken")
        self.assertIsInstance(access, str, j)
        self.assertIsInstance(r2, str, j)
        self.assertNotEqual(r2, r1, "the refresh token was not rotated")
        self.assertEqual(jwt_claims(r2).get("fam"), jwt_claims(r1).get("fam"), "rotation left the family")
        self.assertEqual(self.me(access)["id"], uid)
        st, _, j = self.refresh(r2)
        self.assertSuccess(st, j, 200, "refresh with the rotated token")

    def test_refresh_rejects_invalid_tokens(self):
        _, _, uid, access, refresh = self.session()
        now = int(time.time())
        real = jwt_claims(refresh)
        # The test signs exactly like the server: re-signing the real claims reproduces the token.
        self.assertTrue(signed_with(refresh, REFRESH_KEY))
        expired = make_jwt(dict(real, iat=now - 7200, exp=now - 3600), REFRESH_KEY)
        never_issued = make_jwt({"sub": uid, "typ": "refresh", "fam": "fam-forged0000000000",
                                 "jti": "rt-forged00000000000", "iat": now, "exp": now + 3600}, REFRESH_KEY)
        no_family = make_jwt({"sub": uid, "typ": "refresh", "jti": "rt-x", "iat": now, "exp": now + 3600},
                             REFRESH_KEY)
        cases = [
            ("an access token", access),
            ("a garbage string", "not-a-token"),
            ("three garbage parts", "abc.def.ghi"),
            ("an empty string", ""),
            ("the refresh claims signed with another key", make_jwt(real, OTHER_KEY)),
            ("the refresh claims signed with the access key", make_jwt(real, ACCESS_KEY)),
            ("an expired refresh token", expired),
            ("a well-signed token never issued", never_issued),
            ("a refresh token without fam", no_family),
            ("alg none", make_jwt(real, "", header={"alg": "none"}, signature="")),
        ]
        for what, token in cases:
            st, h, j = self.refresh(token)
            self.assertFail(st, h, j, 400, REFRESH_INVALID if token else None, "PUT with %s" % what)
        st, h, j = request(self.port, "PUT", "/authentications", {})
        self.assertFail(st, h, j, 400, "refreshToken is required", "no refreshToken")
        st, h, j = request(self.port, "PUT", "/authentications", {"refreshToken": 42})
        self.assertFail(st, h, j, 400, "refreshToken must be a string", "numeric refreshToken")
        # None of that disturbed the genuine token.
        st, _, j = self.refresh(refresh)
        self.assertSuccess(st, j, 200, "the genuine refresh token afterwards")

    def test_logout(self):
        _, _, _, _, refresh = self.session()
        st, _, j = request(self.port, "DELETE", "/authentications", {"refreshToken": refresh})
        self.assertSuccess(st, j, 200, "DELETE /authentications")
        self.assertIsInstance(j.get("message"), str, j)
        st, h, j = self.refresh(refresh)
        self.assertFail(st, h, j, 400, REFRESH_INVALID, "refresh after logout")
        st, h, j = request(self.port, "DELETE", "/authentications", {"refreshToken": refresh})
        self.assertFail(st, h, j, 400, REFRESH_INVALID, "second logout")
        st, h, j = request(self.port, "DELETE", "/authentications", {"refreshToken": "garbage"})
        self.assertFail(st, h, j, 400, REFRESH_INVALID, "logout with garbage")
        st, h, j = request(self.port, "DELETE", "/authentications", {})
        self.assertFail(st, h, j, 400, "refreshToken is required", "logout without a token")

    def test_logout_of_one_session_keeps_the_other(self):
        name, pw, _, _, r_a = self.session()
        _, r_b = login(self.port, name, pw)
        st, _, j = request(self.port, "DELETE", "/authentications", {"refreshToken": r_a})
        self.assertSuccess(st, j, 200, "logout of session A")
        st, _, j = self.refresh(r_b)
        self.assertSuccess(st, j, 200, "session B after logout of A")


# ---------------------------------------------------------------------------
# 2. rotation and reuse detection
# ---------------------------------------------------------------------------

class ReuseDetection(AuthCase):
    """Without the grace window (STACCATO_REFRESH_GRACE_S=0); RefreshGraceWindow tests it."""

    @property
    def port(self):
        return NOGRACE.port

    def test_reuse_of_a_rotated_token_revokes_the_family(self):
        name, pw, _ = register(self.port)
        _, r1 = login(self.port, name, pw)
        st, _, j = self.refresh(r1)
        self.assertSuccess(st, j, 200, "R1 -> R2")
        r2 = j["data"]["refreshToken"]
        st, h, j = self.refresh(r1)
        self.assertFail(st, h, j, 400, REFRESH_INVALID, "R1 presented again")
        st, h, j = self.refresh(r2)
        self.assertFail(st, h, j, 400, REFRESH_INVALID, "R2 after the reuse of R1 (family must be revoked)")
        st, h, j = request(self.port, "DELETE", "/authentications", {"refreshToken": r2})
        self.assertFail(st, h, j, 400, REFRESH_INVALID, "logout with R2 of the revoked family")
        # A fresh login starts a new family that works.
        _, n1 = login(self.port, name, pw)
        self.assertNotEqual(jwt_claims(n1)["fam"], jwt_claims(r1)["fam"])
        st, _, j = self.refresh(n1)
        self.assertSuccess(st, j, 200, "new family N1 -> N2")
        st, _, j = self.refresh(j["data"]["refreshToken"])
        self.assertSuccess(st, j, 200, "new family N2 -> N3")

    def test_reuse_deep_in_the_chain_revokes_the_latest(self):
        name, pw, _ = register(self.port)
        _, r1 = login(self.port, name, pw)
        _, other = login(self.port, name, pw)  # a second family of the same user
        chain = [r1]
        for i in range(3):
            st, _, j = self.refresh(chain[-1])
            self.assertSuccess(st, j, 200, "rotation %d" % i)
            chain.append(j["data"]["refreshToken"])
        st, h, j = self.refresh(chain[1])
        self.assertFail(st, h, j, 400, REFRESH_INVALID, "reuse of R2")
        st, h, j = self.refresh(chain[-1])
        self.assertFail(st, h, j, 400, REFRESH_INVALID, "latest R4 after the reuse of R2")
        st, _, j = self.refresh(other)
        self.assertSuccess(st, j, 200, "the user's other family is not affected")

    def test_concurrent_refresh_with_one_token_succeeds_at_most_once(self):
        name, pw, _ = register(self.port)
        _, r1 = login(self.port, name, pw)
        barrier = threading.Barrier(2, timeout=10)

        def go():
            barrier.wait()
            return self.refresh(r1)

        results = run_threads(go, [(), ()], timeout=20)
        for r in results:
            if isinstance(r, BaseException):
                raise r
        statuses = sorted(r[0] for r in results)
        self.assertEqual(statuses, [200, 400], "two simultaneous refreshes with one token: %r"
                         % [(r[0], r[2]) for r in results])


# ---------------------------------------------------------------------------
# 3. access tokens
# ---------------------------------------------------------------------------

class AccessTokens(AuthCase):
    @classmethod
    def setUpClass(cls):
        cls.name, cls.pw, cls.uid = register(MAIN.port, fullname="Access Tester")
        cls.access, cls.refresh_token = login(MAIN.port, cls.name, cls.pw)

    def claims(self, **over):
        now = int(time.time())
        c = {"sub": self.uid, "role": "user", "typ": "access", "iat": now, "exp": now + 600}
        c.update(over)
        return {k: v for k, v in c.items() if v is not None}

    def test_me_with_a_valid_token(self):
        st, h, j = request(self.port, "GET", "/users/me", headers=bearer(self.access))
        self.assertSuccess(st, j, 200, "GET /users/me")
        user = j.get("data", {}).get("user")
        self.assertIsInstance(user, dict, j)
        self.assertEqual(set(user), USER_KEYS, user)
        self.assertEqual(user["id"], self.uid)
        self.assertEqual(user["username"], self.name)
        self.assertEqual(user["fullname"], "Access Tester")
        self.assertEqual(user["role"], "user")
        self.assertRegex(user["createdAt"], ISO_UTC_RE)
        self.assertNotIn("password", json.dumps(j).lower(), "password material in the profile")

    def test_crafted_token_signed_with_the_key_is_accepted(self):
        """Positive control: the forgeries below fail for their defect, not for the crafting."""
        for what, c in (("fresh", self.claims()),
                        ("expired 10 s ago, within the 30 s leeway", self.claims(exp=int(time.time()) - 10)),
                        ("nbf 10 s ahead, within the leeway", self.claims(nbf=int(time.time()) + 10))):
            st, _, j = request(self.port, "GET", "/users/me", headers=bearer(make_jwt(c, ACCESS_KEY)))
            self.assertSuccess(st, j, 200, what)
            self.assertEqual(j["data"]["user"]["id"], self.uid)

    def test_lowercase_bearer_scheme(self):
        st, _, j = request(self.port, "GET", "/users/me", headers={"Authorization": "bearer " + self.access})
        self.assertSuccess(st, j, 200, "scheme in lower case")

    def test_missing_token_is_401_with_www_authenticate(self):
        self.assert401({}, "missing authentication", "no Authorization header")

    def test_non_bearer_schemes_are_401(self):
        basic = "Basic " + base64.b64encode(("%s:%s" % (self.name, self.pw)).encode()).decode()
        self.assert401({"Authorization": basic}, "use a bearer token", "Basic credentials")
        self.assert401({"Authorization": self.access}, "use a bearer token", "token without scheme")
        self.assert401({"Authorization": "Bearer"}, None, "Bearer without a token")

    def test_tampered_payload_is_401(self):
        head, payload, sig = self.access.split(".")
        i = len(payload) // 2
        flipped = "B" if payload[i] != "B" else "C"
        tampered = head + "." + payload[:i] + flipped + payload[i + 1:] + "." + sig
        self.assert401(bearer(tampered), "invalid token signature", "payload with one character changed")
        # A payload that claims admin, with the original signature.
        forged_payload = b64u(json.dumps(self.claims(role="admin"), separators=(",", ":")))
        self.assert401(bearer(head + "." + forged_payload + "." + sig), "invalid token signature",
                       "role raised to admin, old signature")
        sig_i = len(sig) // 2
        bad_sig = sig[:sig_i] + ("A" if sig[sig_i] != "A" else "B") + sig[sig_i + 1:]
        self.assert401(bearer(head + "." + payload + "." + bad_sig), "invalid token signature", "signature changed")
        self.assert401(bearer(head + "." + payload + "."), "invalid token signature", "signature removed")

    def test_wrong_key_is_401(self):
        self.assert401(bearer(make_jwt(self.claims(), OTHER_KEY)), "invalid token signature", "another key")
        self.assert401(bearer(make_jwt(self.claims(), REFRESH_KEY)), "invalid token signature", "the refresh key")

    def test_other_algorithms_are_401(self):
        self.assert401(bearer(make_jwt(self.claims(), "", header={"alg": "none"}, signature="")),
                       "unsupported token algorithm", "alg none, empty signature")
        self.assert401(bearer(make_jwt(self.claims(), "", header={"alg": "none", "typ": "JWT"}, signature="")),
                       "unsupported token algorithm", "alg none with typ, empty signature")
        self.assert401(bearer(make_jwt(self.claims(), ACCESS_KEY, header={"alg": "HS512", "typ": "JWT"},
                                       digest=hashlib.sha512)),
                       "unsupported token algorithm", "HS512 with the right key")
        self.assert401(bearer(make_jwt(self.claims(), ACCESS_KEY, header={"alg": "hs256", "typ": "JWT"})),
                       "unsupported token algorithm", "alg in lower case")

    def test_time_claims(self):
        now = int(time.time())
        self.assert401(bearer(make_jwt(self.claims(iat=now - 3600, exp=now - 120), ACCESS_KEY)),
                       "token expired", "exp 120 s in the past")
        self.assert401(bearer(make_jwt(self.claims(nbf=now + 300), ACCESS_KEY)),
                       "token not yet valid", "nbf 300 s ahead")
        self.assert401(bearer(make_jwt(self.claims(iat=now + 300, exp=now + 900), ACCESS_KEY)),
                       "token not yet valid", "iat 300 s ahead")
        self.assert401(bearer(make_jwt(self.claims(exp=None), ACCESS_KEY)), "malformed token", "no exp")
        self.assert401(bearer(make_jwt(self.claims(exp="%d" % (now + 600)), ACCESS_KEY)), "malformed token",
                       "exp as a string")

    def test_refresh_token_is_not_an_access_token(self):
        self.assert401(bearer(self.refresh_token), None, "a real refresh token")
        self.assert401(bearer(make_jwt(self.claims(typ="refresh"), ACCESS_KEY)), "wrong kind of token",
                       "typ refresh signed with the access key")
        self.assert401(bearer(make_jwt(self.claims(typ=None), ACCESS_KEY)), "wrong kind of token", "no typ")

    def test_malformed_tokens_are_401(self):
        for what, tok in (("garbage", "garbage"), ("two parts", "a.b"), ("four parts", "a.b.c.d"),
                          ("no sub", make_jwt(self.claims(sub=None), ACCESS_KEY)),
                          ("very long", "a" * 5000)):
            self.assert401(bearer(tok), None, what)

    def test_token_without_role_claim_defaults_to_user(self):
        """A well-signed access token without `role` is treated as role user (the server never issues one,
        but must not misbehave on one). On a server of its own, so that a crash does not take MAIN down."""
        srv = self.start_server(env=auth_env())
        _, _, uid = register(srv.port)
        now = int(time.time())
        tok = make_jwt({"sub": uid, "typ": "access", "iat": now, "exp": now + 600}, ACCESS_KEY)
        for method, path, want in (("GET", "/users/me", 200), ("GET", "/users", 403)):
            try:
                st, h, j = request(srv.port, method, path, headers=bearer(tok))
            except (harness.ConnectionClosed, OSError) as e:
                srv.wait(5)
                report = [ln for ln in srv.stderr_lines() if "ERROR" in ln or "SUMMARY" in ln or " #" in ln]
                self.fail("%s %s with a token without role: connection dropped (%s); server alive=%s rc=%r\n%s"
                          % (method, path, e, srv.alive(), srv.returncode, "\n".join(report[:12])))
            if want == 200:
                self.assertSuccess(st, j, 200, "%s %s with no role claim" % (method, path))
                self.assertEqual(j["data"]["user"]["role"], "user")
            else:
                self.assertFail(st, h, j, 403, "admins only", "%s %s with no role claim" % (method, path))
        self.assertTrue(srv.alive(), "server died")


# ---------------------------------------------------------------------------
# 4. roles, admin user management, one's own profile
# ---------------------------------------------------------------------------

class Roles(AuthCase):
    def admin_session(self):
        name, pw, uid = register(self.port, uniq("admin"))
        make_admin(name)
        access, refresh = login(self.port, name, pw)
        self.assertEqual(jwt_claims(access).get("role"), "admin")
        return uid, access

    def test_normal_user_gets_403(self):
        _, _, target = register(self.port)
        name, pw, _ = register(self.port)
        access, _ = login(self.port, name, pw)
        for method, path, body in (("GET", "/users", None), ("GET", "/users/" + target, None),
                                   ("GET", "/users/user-doesnotexist0000", None),
                                   ("PUT", "/users/" + target, {"role": "admin"}),
                                   ("DELETE", "/users/" + target, None)):
            st, h, j = request(self.port, method, path, body, headers=bearer(access))
            self.assertFail(st, h, j, 403, "admins only", "%s %s as a user" % (method, path))
        st, h, j = request(self.port, "GET", "/users")
        self.assertFail(st, h, j, 401, "missing authentication", "GET /users without a token")
        # The target was not touched.
        st, _, j = request(self.port, "GET", "/users/" + target, headers=bearer(self.admin_session()[1]))
        self.assertSuccess(st, j, 200, "target after the refused calls")
        self.assertEqual(j["data"]["user"]["role"], "user")

    def test_promotion_needs_a_new_token(self):
        name, pw, _ = register(self.port, uniq("promo"))
        old_access, old_refresh = login(self.port, name, pw)
        make_admin(name)
        st, h, j = request(self.port, "GET", "/users", headers=bearer(old_access))
        self.assertFail(st, h, j, 403, "admins only", "token issued before the promotion")
        new_access, _ = login(self.port, name, pw)
        st, _, j = request(self.port, "GET", "/users", headers=bearer(new_access))
        self.assertSuccess(st, j, 200, "token issued after the promotion")
        # A refresh also reads the current role.
        st, _, j = self.refresh(old_refresh)
        self.assertSuccess(st, j, 200, "refresh of the pre-promotion session")
        self.assertEqual(jwt_claims(j["data"]["accessToken"]).get("role"), "admin")

    def test_admin_lists_users_with_pagination(self):
        register(self.port)
        _, admin = self.admin_session()
        st, h, j = request(self.port, "GET", "/users", headers=bearer(admin))
        self.assertSuccess(st, j, 200, "GET /users as admin")
        users = j.get("data", {}).get("users")
        self.assertIsInstance(users, list, j)
        total = int(SVC.psql("SELECT count(*) FROM users"))
        self.assertGreaterEqual(total, 2)
        self.assertEqual(h.get("x-total-count"), str(total), "X-Total-Count")
        self.assertEqual(len(users), min(total, 100))
        for u in users:
            self.assertEqual(set(u), USER_KEYS, u)
            self.assertIn(u["role"], ("user", "artist", "admin"))
        self.assertEqual(len({u["id"] for u in users}), len(users), "duplicate users in the list")
        st, h, j = request(self.port, "GET", "/users?page=1&limit=1", headers=bearer(admin))
        self.assertSuccess(st, j, 200, "page=1&limit=1")
        self.assertEqual(len(j["data"]["users"]), 1, j)
        self.assertEqual(h.get("x-total-count"), str(total))
        first = j["data"]["users"][0]["id"]
        st, _, j = request(self.port, "GET", "/users?page=2&limit=1", headers=bearer(admin))
        self.assertSuccess(st, j, 200, "page=2&limit=1")
        self.assertEqual(len(j["data"]["users"]), 1, j)
        self.assertNotEqual(j["data"]["users"][0]["id"], first, "page 2 repeats page 1")
        self.assertEqual(first, users[0]["id"], "page 1 of size 1 is not the head of the full list")
        for q, message in (("limit=0", "limit must be a whole number from 1 to 1000"),
                           ("limit=5000", "limit must be a whole number from 1 to 1000"),
                           ("limit=-1", "limit must be a whole number from 1 to 1000"),
                           ("page=abc", "page must be a whole number from 1 to 1000000"),
                           ("page=0", "page must be a whole number from 1 to 1000000")):
            st, h, j = request(self.port, "GET", "/users?" + q, headers=bearer(admin))
            self.assertFail(st, h, j, 400, message, "GET /users?" + q)

    def test_total_count_on_a_page_past_the_end(self):
        """Regression: the user list's total was wrong on a page past the last one."""
        _, admin = self.admin_session()
        total = int(SVC.psql("SELECT count(*) FROM users"))
        self.assertLess(total, 10000)
        # Offset 10000, the deepest paging reaches (STACCATO_MAX_LIST_OFFSET), still past the last user.
        st, h, j = request(self.port, "GET", "/users?page=11&limit=1000", headers=bearer(admin))
        self.assertSuccess(st, j, 200, "a page past the end")
        self.assertEqual(j["data"]["users"], [])
        self.assertEqual(h.get("x-total-count"), str(total),
                         "X-Total-Count must be the total number of users, not of the (empty) page")

    def test_admin_reads_one_user(self):
        name, _, uid = register(self.port, fullname="Read Me")
        _, admin = self.admin_session()
        st, _, j = request(self.port, "GET", "/users/" + uid, headers=bearer(admin))
        self.assertSuccess(st, j, 200, "GET /users/{id}")
        user = j["data"]["user"]
        self.assertEqual(set(user), USER_KEYS, user)
        self.assertEqual((user["id"], user["username"], user["fullname"], user["role"]),
                         (uid, name, "Read Me", "user"))
        for bad in ("user-doesnotexist0000", "nonsense", "%27%3B--"):
            st, h, j = request(self.port, "GET", "/users/" + bad, headers=bearer(admin))
            self.assertFail(st, h, j, 404, "user not found", "GET /users/" + bad)

    def test_admin_changes_role_and_fullname(self):
        name, pw, uid = register(self.port)
        _, admin = self.admin_session()
        st, _, j = request(self.port, "PUT", "/users/" + uid, {"role": "artist"}, headers=bearer(admin))
        self.assertSuccess(st, j, 200, "PUT role artist")
        self.assertEqual(j["data"]["user"]["role"], "artist", j)
        access, _ = login(self.port, name, pw)
        self.assertEqual(jwt_claims(access).get("role"), "artist", "role claim after logging in again")
        self.assertEqual(self.me(access)["role"], "artist")
        st, _, j = request(self.port, "PUT", "/users/" + uid, {"fullname": "Renamed By Admin"}, headers=bearer(admin))
        self.assertSuccess(st, j, 200, "PUT fullname")
        self.assertEqual((j["data"]["user"]["fullname"], j["data"]["user"]["role"]), ("Renamed By Admin", "artist"))
        for what, body, status, message in (
                ("unknown role", {"role": "superuser"}, 400, "role must be user, artist or admin"),
                ("role in capitals", {"role": "ADMIN"}, 400, "role must be user, artist or admin"),
                ("numeric role", {"role": 1}, 400, "role must be a string"),
                ("blank fullname", {"fullname": " "}, 400, "fullname must not be empty"),
                ("array body", [], 400, "request body must be a JSON object")):
            st, h, j = request(self.port, "PUT", "/users/" + uid, body, headers=bearer(admin))
            self.assertFail(st, h, j, status, message, what)
        st, h, j = request(self.port, "PUT", "/users/user-doesnotexist0000", {"role": "artist"},
                           headers=bearer(admin))
        self.assertFail(st, h, j, 404, "user not found", "PUT on an unknown id")
        st, _, j = request(self.port, "GET", "/users/" + uid, headers=bearer(admin))
        self.assertEqual(j["data"]["user"]["role"], "artist", "a rejected update changed the role")

    def test_admin_deletes_user(self):
        name, pw, uid = register(self.port)
        access, refresh = login(self.port, name, pw)
        _, admin = self.admin_session()
        st, _, j = request(self.port, "DELETE", "/users/" + uid, headers=bearer(admin))
        self.assertSuccess(st, j, 200, "DELETE /users/{id}")
        st, h, j = request(self.port, "DELETE", "/users/" + uid, headers=bearer(admin))
        self.assertFail(st, h, j, 404, "user not found", "second DELETE")
        st, h, j = request(self.port, "GET", "/users/" + uid, headers=bearer(admin))
        self.assertFail(st, h, j, 404, "user not found", "GET after DELETE")
        st, h, j = request(self.port, "POST", "/authentications", {"username": name, "password": pw})
        self.assertFail(st, h, j, 401, LOGIN_FAILED, "login of the deleted user")
        st, h, j = self.refresh(refresh)
        self.assertFail(st, h, j, 400, REFRESH_INVALID, "refresh of the deleted user")
        st, h, j = request(self.port, "GET", "/users/me", headers=bearer(access))
        self.assertFail(st, h, j, 401, "token revoked", "GET /users/me with a deleted user's access token")
        # The name is free again.
        register(self.port, name)


class Profile(AuthCase):
    def test_update_fullname(self):
        name, pw, uid = register(self.port, fullname="Before")
        access, _ = login(self.port, name, pw)
        st, _, j = request(self.port, "PUT", "/users/me", {"fullname": "After Change"}, headers=bearer(access))
        self.assertSuccess(st, j, 200, "PUT /users/me fullname")
        self.assertEqual(self.me(access)["fullname"], "After Change")
        for what, body, message in (("blank", {"fullname": ""}, "fullname must not be empty"),
                                    ("numeric", {"fullname": 7}, "fullname must be a string"),
                                    ("too long", {"fullname": "x" * 201}, "fullname is too long"),
                                    ("array body", [], "request body must be a JSON object")):
            st, h, j = request(self.port, "PUT", "/users/me", body, headers=bearer(access))
            self.assertFail(st, h, j, 400, message, what)
        self.assertEqual(self.me(access)["fullname"], "After Change")
        # A user cannot promote themself through the profile.
        st, _, j = request(self.port, "PUT", "/users/me", {"role": "admin"}, headers=bearer(access))
        self.assertIn(st, (200, 400), j)
        self.assertEqual(self.me(access)["role"], "user", "PUT /users/me changed the role")
        # Authentication is checked before the body.
        st, h, j = request(self.port, "PUT", "/users/me", {"fullname": 7})
        self.assertFail(st, h, j, 401, "missing authentication", "invalid body without a token")

    def test_password_change(self):
        name, old_pw, _ = register(self.port, password="old-secret")
        access, refresh1 = login(self.port, name, old_pw)
        _, refresh2 = login(self.port, name, old_pw)
        for what, body, message in (
                ("no currentPassword", {"password": "new-secret"}, "currentPassword is required"),
                ("numeric currentPassword", {"password": "new-secret", "currentPassword": 1},
                 "currentPassword must be a string"),
                ("wrong currentPassword", {"password": "new-secret", "currentPassword": "not-it"},
                 "currentPassword is not correct"),
                ("short new password", {"password": "12345", "currentPassword": old_pw}, "password is too short")):
            st, h, j = request(self.port, "PUT", "/users/me", body, headers=bearer(access))
            self.assertFail(st, h, j, 400, message, what)
        # Still the old password after the rejected attempts.
        login(self.port, name, old_pw)
        _, refresh3 = login(self.port, name, old_pw)
        st, _, j = request(self.port, "PUT", "/users/me", {"password": "new-secret", "currentPassword": old_pw},
                           headers=bearer(access))
        self.assertSuccess(st, j, 200, "password change with the right currentPassword")
        st, h, j = request(self.port, "POST", "/authentications", {"username": name, "password": old_pw})
        self.assertFail(st, h, j, 401, LOGIN_FAILED, "login with the old password")
        st, _, j = request(self.port, "POST", "/authentications", {"username": name, "password": "new-secret"})
        self.assertSuccess(st, j, 201, "login with the new password")
        for i, r in enumerate((refresh1, refresh2, refresh3)):
            st, h, j = self.refresh(r)
            self.assertFail(st, h, j, 400, REFRESH_INVALID, "refresh token %d issued before the change" % (i + 1))


# ---------------------------------------------------------------------------
# 5. cookie mode
# ---------------------------------------------------------------------------

class CookieMode(AuthCase):
    def cookie_login(self):
        name, pw, uid = register(self.port)
        st, h, j = request(self.port, "POST", "/authentications?cookie=1", {"username": name, "password": pw},
                           headers={"Sec-Fetch-Site": "same-origin"})
        self.assertSuccess(st, j, 201, "POST /authentications?cookie=1")
        return uid, h, j

    def host(self):
        return "127.0.0.1:%d" % self.port

    def test_login_sets_http_only_secure_lax_cookies(self):
        _, h, j = self.cookie_login()
        cookies = set_cookies(h)
        self.assertEqual(set(cookies), {ACCESS_COOKIE, REFRESH_COOKIE}, h.get_all("set-cookie"))
        for name, path, value, age in ((ACCESS_COOKIE, "/", j["data"]["accessToken"], "1800"),
                                       (REFRESH_COOKIE, "/authentications", j["data"]["refreshToken"], "2592000")):
            val, attrs = cookies[name]
            self.assertEqual(val, value, "%s value differs from the token in the body" % name)
            self.assertEqual(attrs.get("path"), path, "%s Path" % name)
            self.assertIs(attrs.get("httponly"), True, "%s lacks HttpOnly" % name)
            self.assertIs(attrs.get("secure"), True, "%s lacks Secure" % name)
            self.assertEqual(str(attrs.get("samesite")).lower(), "lax", "%s SameSite" % name)
            self.assertEqual(attrs.get("max-age"), age, "%s Max-Age" % name)
        name, pw, _ = register(self.port)
        st, h, j = request(self.port, "POST", "/authentications?cookie=0", {"username": name, "password": pw})
        self.assertSuccess(st, j, 201, "POST /authentications?cookie=0")
        self.assertEqual(h.get_all("set-cookie"), [], "cookies set with ?cookie=0")

    def test_access_cookie_authenticates(self):
        uid, h, _ = self.cookie_login()
        access = set_cookies(h)[ACCESS_COOKIE][0]
        for cookie in ("%s=%s" % (ACCESS_COOKIE, access), "a=b; %s=%s; c=d" % (ACCESS_COOKIE, access)):
            st, _, j = request(self.port, "GET", "/users/me", headers={"Cookie": cookie})
            self.assertSuccess(st, j, 200, "GET /users/me with Cookie %r" % cookie[:30])
            self.assertEqual(j["data"]["user"]["id"], uid)
        st, rh, j = request(self.port, "GET", "/users/me", headers={"Cookie": "%s=garbage" % ACCESS_COOKIE})
        self.assertFail(st, rh, j, 401, "malformed token", "a garbage access cookie")

    def test_unsafe_cookie_requests_need_our_origin(self):
        _, h, _ = self.cookie_login()
        cookie = "%s=%s" % (ACCESS_COOKIE, set_cookies(h)[ACCESS_COOKIE][0])
        access = set_cookies(h)[ACCESS_COOKIE][0]
        own = "http://" + self.host()
        cases = [
            ("cookie, no Origin, no Sec-Fetch-Site", {"Cookie": cookie}, 403),
            ("cookie, Origin http://evil.example", {"Cookie": cookie, "Origin": "http://evil.example"}, 403),
            ("cookie, Origin of another port", {"Cookie": cookie, "Origin": "http://127.0.0.1:1"}, 403),
            ("cookie, Sec-Fetch-Site cross-site", {"Cookie": cookie, "Sec-Fetch-Site": "cross-site"}, 403),
            ("cookie, Origin matching Host", {"Cookie": cookie, "Origin": own}, 200),
            ("cookie, Sec-Fetch-Site same-origin", {"Cookie": cookie, "Sec-Fetch-Site": "same-origin"}, 200),
            ("cookie, configured Origin", {"Cookie": cookie, "Origin": TRUSTED_ORIGIN}, 200),
            ("bearer token, foreign Origin", dict(bearer(access), Origin="http://evil.example"), 200),
        ]
        for i, (what, headers, want) in enumerate(cases):
            headers = dict(headers, Host=self.host())
            fullname = "Cookie Case %d" % i
            st, rh, j = request(self.port, "PUT", "/users/me", {"fullname": fullname}, headers=headers)
            if want == 403:
                self.assertFail(st, rh, j, 403, CROSS_ORIGIN, what)
                self.assertNotEqual(self.me(access)["fullname"], fullname, "%s: refused but applied" % what)
            else:
                self.assertSuccess(st, j, 200, what)
                self.assertEqual(self.me(access)["fullname"], fullname, what)
        # Safe methods need no origin.
        st, _, j = request(self.port, "GET", "/users/me", headers={"Cookie": cookie, "Origin": "http://evil.example"})
        self.assertSuccess(st, j, 200, "GET with cookie from a foreign origin")

    def test_refresh_and_logout_with_cookies(self):
        uid, h, _ = self.cookie_login()
        r1 = set_cookies(h)[REFRESH_COOKIE][0]
        own = {"Host": self.host(), "Origin": "http://%s" % self.host()}
        # A refresh or logout by cookie changes state too: a foreign origin may not force one.
        for method in ("PUT", "DELETE"):
            st, rh, j = request(self.port, method, "/authentications",
                                headers={"Cookie": "%s=%s" % (REFRESH_COOKIE, r1), "Origin": "http://evil.example"})
            self.assertFail(st, rh, j, 403, CROSS_ORIGIN, "%s /authentications by cookie from a foreign origin" % method)
        st, rh, j = request(self.port, "PUT", "/authentications",
                            headers=dict(own, Cookie="%s=%s" % (REFRESH_COOKIE, r1)))
        self.assertSuccess(st, j, 200, "PUT /authentications with only the refresh cookie")
        cookies = set_cookies(rh)
        self.assertEqual(set(cookies), {ACCESS_COOKIE, REFRESH_COOKIE}, rh.get_all("set-cookie"))
        r2 = cookies[REFRESH_COOKIE][0]
        self.assertNotEqual(r2, r1, "refresh cookie not rotated")
        self.assertEqual(r2, j["data"]["refreshToken"])
        self.assertEqual(cookies[REFRESH_COOKIE][1].get("path"), "/authentications")
        self.assertEqual(cookies[ACCESS_COOKIE][1].get("path"), "/")
        st, _, j = request(self.port, "GET", "/users/me",
                           headers={"Cookie": "%s=%s" % (ACCESS_COOKIE, cookies[ACCESS_COOKIE][0])})
        self.assertSuccess(st, j, 200, "the new access cookie")
        self.assertEqual(j["data"]["user"]["id"], uid)

        st, rh, j = request(self.port, "DELETE", "/authentications",
                            headers=dict(own, Cookie="%s=%s" % (REFRESH_COOKIE, r2)))
        self.assertSuccess(st, j, 200, "DELETE /authentications with the refresh cookie")
        cleared = set_cookies(rh)
        self.assertEqual(set(cleared), {ACCESS_COOKIE, REFRESH_COOKIE}, rh.get_all("set-cookie"))
        for name, path in ((ACCESS_COOKIE, "/"), (REFRESH_COOKIE, "/authentications")):
            val, attrs = cleared[name]
            self.assertEqual(attrs.get("max-age"), "0", "%s not cleared: %r" % (name, rh.get_all("set-cookie")))
            self.assertEqual(val, "", "%s cleared but still carries a value" % name)
            self.assertEqual(attrs.get("path"), path, "%s cleared on another Path" % name)
        st, rh, j = request(self.port, "PUT", "/authentications", headers=dict(own, Cookie="%s=%s" % (REFRESH_COOKIE, r2)))
        self.assertFail(st, rh, j, 400, REFRESH_INVALID, "refresh cookie after logout")

    def test_logout_with_a_stale_cookie_still_clears_both(self):
        """A sign-out whose refresh cookie is no longer good (rotated away, or garbage) is a 400, but the browser
        is signed out either way: both cookies are cleared, the still-valid access cookie included."""
        _, h, _ = self.cookie_login()
        r1 = set_cookies(h)[REFRESH_COOKIE][0]
        own = {"Host": self.host(), "Origin": "http://%s" % self.host()}
        st, _, j = request(self.port, "PUT", "/authentications", headers=dict(own, Cookie="%s=%s" % (REFRESH_COOKIE, r1)))
        self.assertSuccess(st, j, 200, "rotate the refresh cookie away")
        for what, value in (("the rotated-away refresh cookie", r1), ("a garbage refresh cookie", "garbage")):
            st, rh, j = request(self.port, "DELETE", "/authentications",
                                headers=dict(own, Cookie="%s=%s" % (REFRESH_COOKIE, value)))
            self.assertFail(st, rh, j, 400, REFRESH_INVALID, "DELETE /authentications with " + what)
            cleared = set_cookies(rh)
            self.assertEqual(set(cleared), {ACCESS_COOKIE, REFRESH_COOKIE}, "%s: %r" % (what, rh.get_all("set-cookie")))
            for name in (ACCESS_COOKIE, REFRESH_COOKIE):
                self.assertEqual(cleared[name][1].get("max-age"), "0", "%s: %s not cleared" % (what, name))
        # A logout by body token, not by cookie, leaves cookies alone.
        st, rh, j = request(self.port, "DELETE", "/authentications", {"refreshToken": "garbage"})
        self.assertEqual(st, 400)
        self.assertEqual(rh.get_all("set-cookie"), [])

    def test_body_token_wins_over_cookie(self):
        name, pw, _ = register(self.port)
        _, r_body = login(self.port, name, pw)
        st, h, j = request(self.port, "PUT", "/authentications", {"refreshToken": r_body},
                           headers={"Cookie": "%s=garbage" % REFRESH_COOKIE})
        self.assertSuccess(st, j, 200, "body token with a garbage cookie beside it")
        self.assertEqual(h.get_all("set-cookie"), [], "body-mode refresh answered with cookies")


# ---------------------------------------------------------------------------
# 6. login rate limit
# ---------------------------------------------------------------------------

class RateLimit(AuthCase):
    def setUp(self):
        clear_login_limits()

    def limited_server(self, per_account=1000, per_address=100000):
        return self.start_server(env=auth_env(STACCATO_LOGIN_MAX_PER_ACCOUNT=per_account,
                                              STACCATO_LOGIN_MAX_PER_ADDRESS=per_address,
                                              STACCATO_LOGIN_WINDOW_S=60))

    def attempt(self, srv, name, pw):
        return request(srv.port, "POST", "/authentications", {"username": name, "password": pw})

    def assert429(self, resp, what):
        st, h, j = resp
        self.assertFail(st, h, j, 429, RATE_LIMITED, what)
        ra = h.get("retry-after")
        self.assertIsNotNone(ra, "%s: 429 without Retry-After" % what)
        self.assertRegex(ra, r"^\d+$", "%s: Retry-After %r" % (what, ra))
        self.assertTrue(0 < int(ra) <= 60, "%s: Retry-After %r outside 1..60 (window 60 s)" % (what, ra))

    def account_limit_checks(self, srv):
        name, pw, _ = register(srv.port)
        other, other_pw, _ = register(srv.port)
        for i in range(3):
            st, h, j = self.attempt(srv, name, "wrong-%d" % i)
            self.assertFail(st, h, j, 401, LOGIN_FAILED, "wrong password #%d" % (i + 1))
        self.assert429(self.attempt(srv, name, pw), "4th attempt (with the right password)")
        self.assert429(self.attempt(srv, name.upper(), pw), "5th attempt, username in capitals")
        st, _, j = self.attempt(srv, other, other_pw)
        self.assertSuccess(st, j, 201, "another account from the same address")

    def test_per_account_limit(self):
        srv = self.limited_server(per_account=3)
        self.account_limit_checks(srv)

    def test_successful_logins_do_not_count(self):
        srv = self.limited_server(per_account=3)
        name, pw, _ = register(srv.port)
        for i in range(5):
            st, _, j = self.attempt(srv, name, pw)
            self.assertSuccess(st, j, 201, "successful login #%d of 5 (limit 3)" % (i + 1))
        # Failures still count after them.
        for i in range(3):
            st, h, j = self.attempt(srv, name, "bad-%d" % i)
            self.assertFail(st, h, j, 401, LOGIN_FAILED, "wrong password #%d after the successes" % (i + 1))
        self.assert429(self.attempt(srv, name, pw), "4th failure-counted attempt")

    def test_per_address_limit(self):
        srv = self.limited_server(per_address=4)
        name, pw, _ = register(srv.port)
        for i in range(4):
            st, h, j = self.attempt(srv, uniq("nosuch"), "whatever")
            self.assertFail(st, h, j, 401, LOGIN_FAILED, "unknown user #%d" % (i + 1))
        self.assert429(self.attempt(srv, uniq("nosuch"), "whatever"), "5th username from one address")
        self.assert429(self.attempt(srv, name, pw), "a real account from the limited address")

    def test_limit_holds_with_redis_down(self):
        srv = self.limited_server(per_account=3)
        SVC.run("stop-redis", timeout=60)
        try:
            name, pw, _ = register(srv.port)
            access, _ = login(srv.port, name, pw)
            self.assertEqual(self.me(access, srv.port)["username"], name)
            self.account_limit_checks(srv)
        finally:
            SVC.run("start-redis", timeout=60)
        self.assertEqual(SVC.env().get("REDIS_URL"), SVC.redis_url, "Redis came back on another port")
        self.assertTrue(harness.wait_until(lambda: self.redis_up(MAIN.port), 15, interval=0.2),
                        "the main server does not see Redis again")

    def redis_up(self, port):
        st, _, j = request(port, "GET", "/ready")
        return st == 200 and isinstance(j, dict) and j.get("data", {}).get("redis") == "up"


class Lockout(AuthCase):
    """Regression: eleven wrong passwords from other addresses made the owner's correct login a 429 (the limit
    counted the account alone). Addresses come from X-Forwarded-For through a trusted proxy (loopback)."""

    def setUp(self):
        clear_login_limits()

    def server(self, per_account=3, global_max=1000):
        return self.start_server(env=auth_env(STACCATO_LOGIN_MAX_PER_ACCOUNT=per_account,
                                              STACCATO_LOGIN_MAX_PER_ACCOUNT_GLOBAL=global_max,
                                              STACCATO_LOGIN_MAX_PER_ADDRESS=100000, STACCATO_LOGIN_WINDOW_S=60,
                                              STACCATO_TRUSTED_PROXIES="127.0.0.1"))

    def attempt(self, srv, name, pw, address):
        return request(srv.port, "POST", "/authentications", {"username": name, "password": pw},
                       headers={"X-Forwarded-For": address})

    def test_strangers_do_not_lock_the_owner_out(self):
        srv = self.server(per_account=3)
        name, pw, _ = register(srv.port)
        st, _, j = self.attempt(srv, name, pw, "10.1.0.1")
        self.assertSuccess(st, j, 201, "the owner signs in from their usual address")
        for i in range(11):
            st, h, j = self.attempt(srv, name, "wrong-%d" % i, "10.2.0.%d" % (i + 1))
            self.assertFail(st, h, j, 401, LOGIN_FAILED, "a stranger's guess #%d" % (i + 1))
        st, _, j = self.attempt(srv, name, pw, "10.1.0.1")
        self.assertSuccess(st, j, 201, "the owner after eleven strangers' failures")

    def test_one_address_is_still_limited_on_the_account(self):
        srv = self.server(per_account=3)
        name, pw, _ = register(srv.port)
        for i in range(3):
            st, h, j = self.attempt(srv, name, "wrong-%d" % i, "10.3.0.1")
            self.assertFail(st, h, j, 401, LOGIN_FAILED, "guess #%d" % (i + 1))
        st, h, j = self.attempt(srv, name, pw, "10.3.0.1")
        self.assertFail(st, h, j, 429, RATE_LIMITED, "4th attempt from the same address")
        self.assertIsNotNone(h.get("retry-after"))
        st, _, j = self.attempt(srv, name, pw, "10.3.0.2")
        self.assertSuccess(st, j, 201, "the right password from another address")

    def test_many_addresses_meet_the_global_limit_but_not_known_ones(self):
        srv = self.server(per_account=3, global_max=5)
        name, pw, _ = register(srv.port)
        st, _, j = self.attempt(srv, name, pw, "10.4.0.1")
        self.assertSuccess(st, j, 201, "the owner signs in")
        for i in range(5):
            st, h, j = self.attempt(srv, name, "wrong-%d" % i, "10.5.0.%d" % (i + 1))
            self.assertFail(st, h, j, 401, LOGIN_FAILED, "distributed guess #%d" % (i + 1))
        st, h, j = self.attempt(srv, name, pw, "10.5.0.99")
        self.assertFail(st, h, j, 429, RATE_LIMITED, "a 6th unknown address, even with the right password")
        st, _, j = self.attempt(srv, name, pw, "10.4.0.1")
        self.assertSuccess(st, j, 201, "the owner's known address is not locked out")


class Registration(AuthCase):
    """Regression: POST /users had no rate limit and queued one Argon2id hash per request, unbounded, on the
    threadpool that TLS handshakes and file I/O share."""

    def setUp(self):
        redis_call("EVAL", "for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) end return 0",
                   "0", "staccato:register:*")

    def test_registrations_per_address_are_limited(self):
        srv = self.start_server(env=auth_env(STACCATO_REGISTER_MAX_PER_ADDRESS=3,
                                             STACCATO_TRUSTED_PROXIES="127.0.0.1"))
        for i in range(3):
            st, _, j = request(srv.port, "POST", "/users",
                               {"username": uniq(), "password": "secret1", "fullname": "R"},
                               headers={"X-Forwarded-For": "10.6.0.1"})
            self.assertSuccess(st, j, 201, "registration #%d" % (i + 1))
        st, h, j = request(srv.port, "POST", "/users", {"username": uniq(), "password": "secret1", "fullname": "R"},
                           headers={"X-Forwarded-For": "10.6.0.1"})
        self.assertFail(st, h, j, 429, "too many registrations; try again later", "4th registration")
        self.assertRegex(h.get("retry-after") or "", r"^[1-9]\d*$")
        st, _, j = request(srv.port, "POST", "/users", {"username": uniq(), "password": "secret1", "fullname": "R"},
                           headers={"X-Forwarded-For": "10.6.0.2"})
        self.assertSuccess(st, j, 201, "another address")

    def test_hash_queue_is_bounded(self):
        """One hash at a time and two waiting: the next is a 503 with Retry-After at once, the others finish."""
        srv = self.start_server(env=auth_env(cheap=False, STACCATO_ARGON2_T="40", STACCATO_ARGON2_M_KIB="32768",
                                             STACCATO_PASSWORD_CONCURRENCY=1, STACCATO_PASSWORD_QUEUE_MAX=2))
        results = []

        def register_one():
            results.append(request(srv.port, "POST", "/users",
                                   {"username": uniq(), "password": "secret1", "fullname": "Q"}, timeout=120))

        threads = [threading.Thread(target=register_one) for _ in range(3)]
        for t in threads:
            t.start()
        jobs = lambda state: harness.metric_value(srv.metrics(), "staccato_password_jobs", state=state)  # noqa: E731
        self.assertTrue(harness.wait_until(lambda: jobs("running") == 1 and jobs("waiting") == 2, 60),
                        "three registrations did not fill the hash queue")
        st, h, j = request(srv.port, "POST", "/users", {"username": uniq(), "password": "secret1", "fullname": "Q"})
        self.assertEqual(st, 503, j)
        self.assertEqual(j.get("status"), "error", j)
        self.assertEqual(h.get("retry-after"), "1")
        self.assertLessEqual(jobs("running"), 1, "more hashes on the threadpool than allowed")
        for t in threads:
            t.join(150)
        self.assertEqual(sorted(r[0] for r in results), [201, 201, 201], results)
        self.assertEqual((jobs("running"), jobs("waiting")), (0, 0))


# ---------------------------------------------------------------------------
# 7. password hashing does not block the event loop
# ---------------------------------------------------------------------------

class LoopNotBlocked(AuthCase):
    LOGINS = 50
    ACCOUNTS = 5

    def test_health_answers_while_50_logins_hash(self):
        clear_login_limits()
        # Default Argon2 cost (no STACCATO_ARGON2_* overrides); limits raised so that 50 logins are allowed.
        srv = self.start_server(env=auth_env(cheap=False, STACCATO_LOGIN_MAX_PER_ACCOUNT=1000,
                                             STACCATO_LOGIN_MAX_PER_ADDRESS=100000))
        accounts = run_threads(lambda n: register(srv.port, n, "hash-me-pw", "Hasher"),
                               [(uniq("hash"),) for _ in range(self.ACCOUNTS)], timeout=60)
        for a in accounts:
            if isinstance(a, BaseException):
                raise a
        done = []
        done_lock = threading.Lock()
        barrier = threading.Barrier(self.LOGINS + 1, timeout=20)

        def one_login(i):
            name = accounts[i % self.ACCOUNTS][0]
            # Connected before the barrier (over TLS: handshake done), so that what runs at once is the hashing.
            c = harness.Conn(srv.port, timeout=60)
            try:
                barrier.wait()
                try:
                    r = c.request("POST", "/authentications", [("Content-Type", "application/json")],
                                  json.dumps({"username": name, "password": "hash-me-pw"}), timeout=60)
                finally:
                    with done_lock:
                        done.append(time.monotonic())
            finally:
                c.close()
            return r.status, (r.json() if r.body else None)

        results = [None] * self.LOGINS

        def runner(i):
            try:
                results[i] = one_login(i)
            except BaseException as e:  # noqa: B902
                results[i] = e

        threads = [threading.Thread(target=runner, args=(i,), daemon=True) for i in range(self.LOGINS)]
        probe = srv.connect(timeout=5)
        self.addCleanup(probe.close)
        for t in threads:
            t.start()
        barrier.wait()
        samples = []          # (round trip s, logins still running at its end)
        deadline = time.monotonic() + 75
        time.sleep(0.02)
        while time.monotonic() < deadline and len(samples) < 400:
            t0 = time.monotonic()
            r = probe.request("GET", "/health", timeout=5)
            dt = time.monotonic() - t0
            with done_lock:
                pending = self.LOGINS - len(done)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json(), {"status": "success", "data": {"status": "ok"}})
            samples.append((dt, pending))
            if pending == 0:
                break
            time.sleep(0.01)
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()) + 5)
        self.assertFalse(any(t.is_alive() for t in threads), "logins still running after 80 s")
        during = [dt for dt, pending in samples if pending > 0]
        # Order, not time: probes keep being answered while the logins are still hashing (the hashes run on the
        # threadpool: the metrics test above pins how many at once).
        self.assertGreaterEqual(len(during), 3, "only %d /health probes completed while logins were running "
                                "(samples: %r)" % (len(during), samples[:10]))
        bad = [r if isinstance(r, BaseException) else (r[0], r[1]) for r in results
               if isinstance(r, BaseException) or r[0] != 201]
        self.assertEqual(bad, [], "logins that did not end 201")


# ---------------------------------------------------------------------------
# server-issued access token running out (ACCESS_TOKEN_AGE=10, leeway 0)
# ---------------------------------------------------------------------------

class ServerIssuedTokenExpiry(AuthCase):
    def test_access_token_expires_and_refresh_renews(self):
        s = EXPIRY_SESSION
        self.assertEqual(s["fresh_status"], 200, "fresh token refused: %r" % (s["fresh_body"],))
        c = jwt_claims(s["access"])
        self.assertEqual(c["exp"] - c["iat"], 10, c)
        # Rejected once now > exp (leeway 0); wait for that, bounded.
        wait = c["exp"] + 1.2 - time.time()
        self.assertLess(wait, 15, "clock: token expires too far ahead")
        if wait > 0:
            time.sleep(wait)
        st, h, j = request(EXPIRY.port, "GET", "/users/me", headers=bearer(s["access"]))
        self.assertFail(st, h, j, 401, "token expired", "the server's own token after ACCESS_TOKEN_AGE")
        st, _, j = request(EXPIRY.port, "PUT", "/authentications", {"refreshToken": s["refresh"]})
        self.assertSuccess(st, j, 200, "refresh after the access token expired")
        st, _, j = request(EXPIRY.port, "GET", "/users/me", headers=bearer(j["data"]["accessToken"]))
        self.assertSuccess(st, j, 200, "the renewed access token")
        self.assertEqual(j["data"]["user"]["id"], s["uid"])


# ---------------------------------------------------------------------------
# 8. login CSRF: cookie-mode login from a foreign origin, and bodies that are not JSON
# ---------------------------------------------------------------------------

UNSUPPORTED_TYPE = "request body must be application/json"


class LoginCsrf(AuthCase):
    def credentials(self):
        name, pw, _ = register(self.port)
        return name, pw, json.dumps({"username": name, "password": pw}).encode()

    def test_login_csrf_cross_site_text_plain_sets_no_cookies(self):
        """What a foreign page's form (or a no-cors fetch) can send: text/plain, a foreign Origin, ?cookie=1."""
        name, pw, body = self.credentials()
        for what, headers in (
                ("text/plain, Origin http://evil.example",
                 {"Content-Type": "text/plain", "Origin": "http://evil.example"}),
                ("text/plain, Sec-Fetch-Site cross-site",
                 {"Content-Type": "text/plain;charset=UTF-8", "Sec-Fetch-Site": "cross-site"}),
                ("application/json, Origin http://evil.example",
                 {"Content-Type": "application/json", "Origin": "http://evil.example"}),
                ("application/json, no Origin, no Sec-Fetch-Site", {"Content-Type": "application/json"})):
            st, h, j = request(self.port, "POST", "/authentications?cookie=1", body, headers=headers)
            self.assertFail(st, h, j, 403, "cross-origin login with cookies", what)
            self.assertEqual(h.get_all("set-cookie"), [], "%s: cookies set" % what)
        # From our own origin, or one configured, the cookie login works.
        own = "127.0.0.1:%d" % self.port
        for what, headers in (("Origin matching Host", {"Host": own, "Origin": "http://" + own}),
                              ("Sec-Fetch-Site same-origin", {"Sec-Fetch-Site": "same-origin"}),
                              ("configured Origin", {"Origin": TRUSTED_ORIGIN})):
            st, h, j = request(self.port, "POST", "/authentications?cookie=1", body,
                               headers=dict(headers, **{"Content-Type": "application/json"}))
            self.assertSuccess(st, j, 201, what)
            self.assertEqual(set(set_cookies(h)), {ACCESS_COOKIE, REFRESH_COOKIE}, what)
        # Same origin, but not JSON: 415, and no cookies either.
        st, h, j = request(self.port, "POST", "/authentications?cookie=1", body,
                           headers={"Content-Type": "text/plain", "Sec-Fetch-Site": "same-origin"})
        self.assertFail(st, h, j, 415, UNSUPPORTED_TYPE, "same-origin text/plain cookie login")
        self.assertEqual(h.get_all("set-cookie"), [])

    def test_login_csrf_json_routes_need_application_json(self):
        name, pw, body = self.credentials()
        for ct in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                   "application/jsonx", "text/json", None):
            headers = {"Content-Type": ct} if ct else {}
            st, h, j = request(self.port, "POST", "/authentications", body, headers=headers)
            self.assertFail(st, h, j, 415, UNSUPPORTED_TYPE, "login with Content-Type %r" % ct)
        for ct in ("application/json", "application/json; charset=utf-8", "Application/JSON;Charset=UTF-8",
                   " application/json ; charset=utf-8"):
            st, h, j = request(self.port, "POST", "/authentications", body, headers={"Content-Type": ct})
            self.assertSuccess(st, j, 201, "login with Content-Type %r" % ct)
        # Every JSON route: registration, a signed-in write, a refresh.
        access, refresh = login(self.port, name, pw)
        reg = json.dumps({"username": uniq(), "password": "secret1", "fullname": "X"}).encode()
        for method, path, raw, headers in (
                ("POST", "/users", reg, {}),
                ("PUT", "/users/me", b'{"fullname": "Other"}', bearer(access)),
                ("POST", "/playlists", b'{"name": "p"}', bearer(access)),
                ("PUT", "/authentications", json.dumps({"refreshToken": refresh}).encode(), {})):
            st, h, j = request(self.port, method, path, raw, headers=dict(headers, **{"Content-Type": "text/plain"}))
            self.assertFail(st, h, j, 415, UNSUPPORTED_TYPE, "%s %s as text/plain" % (method, path))
        self.assertEqual(self.me(access)["fullname"], "Test User", "a text/plain body was applied")
        # Authentication still comes first; an empty body needs no type.
        st, h, j = request(self.port, "PUT", "/users/me", b'{"fullname": "x"}', headers={"Content-Type": "text/plain"})
        self.assertFail(st, h, j, 401, "missing authentication", "text/plain without a token")
        st, _, j = request(self.port, "PUT", "/authentications", json.dumps({"refreshToken": refresh}).encode(),
                           headers={"Content-Type": "application/json"})
        self.assertSuccess(st, j, 200, "the refresh token after the refused text/plain refresh")
        st, h, j = request(self.port, "DELETE", "/authentications", b"", headers={"Content-Type": "text/plain"})
        self.assertFail(st, h, j, 400, "refreshToken is required", "an empty body is fine whatever its type")


# ---------------------------------------------------------------------------
# 9. role changes and deleted accounts take effect at once
# ---------------------------------------------------------------------------

REVOKED = "token revoked"


def cli(*args):
    rc, out, err = harness.run_cli(list(args), env_overrides=FIXTURE.env(), timeout=30)
    if rc != 0:
        raise AssertionError("staccato %s: %r %r %r" % (" ".join(args), rc, out, err))


class RoleChangesTakeEffectAtOnce(AuthCase):
    def admin(self, prefix="admin"):
        name, pw, uid = register(self.port, uniq(prefix))
        make_admin(name)
        access, refresh = login(self.port, name, pw)
        return name, pw, uid, access, refresh

    def assertRevoked(self, access, what, port=None, path="/users/me", method="GET", body=None):
        st, h, j = request(port or self.port, method, path, body, headers=bearer(access))
        self.assertFail(st, h, j, 401, REVOKED, what)
        self.assertTrue((h.get("www-authenticate") or "").lower().startswith("bearer"), what)

    def wait_revoked(self, access, what, port):
        """Another process hears of the change by notification: soon, not synchronously."""
        deadline = time.time() + 10
        while True:
            st, h, j = request(port, "GET", "/users/me", headers=bearer(access))
            if st == 401 or time.time() > deadline:
                break
            time.sleep(0.05)
        self.assertFail(st, h, j, 401, REVOKED, what)

    def test_role_changes_take_effect_at_once_demoted_admin(self):
        _, _, _, boss, _ = self.admin("boss")
        name, pw, uid, access, refresh = self.admin()
        st, _, j = request(self.port, "GET", "/users", headers=bearer(access))
        self.assertSuccess(st, j, 200, "GET /users as an admin")
        st, _, j = request(self.port, "PUT", "/users/" + uid, {"role": "user"}, headers=bearer(boss))
        self.assertSuccess(st, j, 200, "demote to user")
        # The very next request, on the same process: refused, on every authenticated route.
        for method, path, body in (("GET", "/users", None), ("GET", "/users/me", None), ("GET", "/playlists", None),
                                   ("POST", "/playlists", {"name": "x"}), ("PUT", "/users/" + uid, {"role": "admin"}),
                                   ("DELETE", "/users/" + uid, None)):
            self.assertRevoked(access, "%s %s with the demoted admin's token" % (method, path), method=method,
                               path=path, body=body)
        # The other process (EXPIRY shares the database and the keys) follows on the notification.
        self.wait_revoked(access, "another process after the demotion", EXPIRY.port)
        # A new login, or a refresh, gives a token of the new role that works.
        st, _, j = self.refresh(refresh)
        self.assertSuccess(st, j, 200, "refresh after the demotion")
        fresh = j["data"]["accessToken"]
        self.assertEqual(jwt_claims(fresh).get("role"), "user")
        self.assertEqual(self.me(fresh)["role"], "user")
        st, h, j = request(self.port, "GET", "/users", headers=bearer(fresh))
        self.assertFail(st, h, j, 403, "admins only", "the new token is a user's")
        relogin, _ = login(self.port, name, pw)
        self.assertGreater(jwt_claims(relogin)["ver"], jwt_claims(access)["ver"])
        self.assertEqual(self.me(relogin)["id"], uid)
        # Unchanged accounts are not touched: the boss's token still works.
        st, _, j = request(self.port, "GET", "/users", headers=bearer(boss))
        self.assertSuccess(st, j, 200, "an admin whose role did not change")

    def test_role_changes_take_effect_at_once_artist_writes(self):
        """Strict-mode catalog writes authenticate themselves (no gate): the demoted artist's token is refused too."""
        _, _, _, boss, _ = self.admin("boss")
        name, pw, uid = register(self.port, uniq("artist"))
        SVC.psql("UPDATE users SET role = 'artist' WHERE id = '%s'" % uid)
        access, _ = login(self.port, name, pw)
        st, _, j = request(self.port, "POST", "/albums", {"name": "Before", "year": 2020}, headers=bearer(access))
        self.assertSuccess(st, j, 201, "an artist adds an album")
        album = j["data"]["albumId"]
        st, _, j = request(self.port, "PUT", "/users/" + uid, {"role": "user"}, headers=bearer(boss))
        self.assertSuccess(st, j, 200, "demote the artist")
        self.assertRevoked(access, "POST /albums with the demoted artist's token", method="POST", path="/albums",
                           body={"name": "After", "year": 2020})
        self.assertRevoked(access, "PUT /albums/{id}", method="PUT", path="/albums/" + album,
                           body={"name": "Renamed", "year": 2021})
        self.assertRevoked(access, "DELETE /albums/{id}", method="DELETE", path="/albums/" + album)

    def test_role_changes_take_effect_at_once_deleted_user(self):
        _, _, _, boss, _ = self.admin("boss")
        _, _, uid, access, _ = self.admin("doomed")
        st, _, j = request(self.port, "DELETE", "/users/" + uid, headers=bearer(boss))
        self.assertSuccess(st, j, 200, "DELETE /users/{id}")
        for method, path in (("GET", "/users/me"), ("GET", "/users"), ("GET", "/playlists")):
            self.assertRevoked(access, "%s %s with a deleted admin's token" % (method, path), method=method, path=path)
        self.wait_revoked(access, "another process after the delete", EXPIRY.port)

    def test_role_changes_take_effect_at_once_command_line(self):
        """`staccato user set-role` and `staccato user delete` are other processes: the server hears of them."""
        name, _, _, access, _ = self.admin()
        cli("user", "set-role", name, "artist")
        self.wait_revoked(access, "after staccato user set-role ... artist", self.port)
        victim, vpw, _ = register(self.port)
        vaccess, _ = login(self.port, victim, vpw)
        self.me(vaccess)
        cli("user", "delete", victim)
        self.wait_revoked(vaccess, "after staccato user delete", self.port)

    def test_role_changes_take_effect_at_once_password_change(self):
        name, _, _ = register(self.port, password="old-secret")
        access, _ = login(self.port, name, "old-secret")
        st, _, j = request(self.port, "PUT", "/users/me", {"password": "new-secret", "currentPassword": "old-secret"},
                           headers=bearer(access))
        self.assertSuccess(st, j, 200, "password change")
        self.assertRevoked(access, "the access token from before the password change")
        fresh, _ = login(self.port, name, "new-secret")
        self.me(fresh)

    def test_role_changes_take_effect_at_once_after_a_restart(self):
        """A process started after the change loads it: the table is not only what it was told."""
        _, _, _, boss, _ = self.admin("boss")
        _, _, uid, access, _ = self.admin()
        _, _, gone, gone_access, _ = self.admin("gone")
        request(self.port, "PUT", "/users/" + uid, {"role": "artist"}, headers=bearer(boss))
        request(self.port, "DELETE", "/users/" + gone, headers=bearer(boss))
        srv = self.start_server(env=main_env())
        for tok, what in ((access, "demoted"), (gone_access, "deleted")):
            self.assertRevoked(tok, "a %s admin's token on a server started afterwards" % what, port=srv.port)
        st, _, j = request(srv.port, "GET", "/users", headers=bearer(boss))
        self.assertSuccess(st, j, 200, "an unchanged admin on the new server")

    def test_role_changes_take_effect_at_once_promotion_keeps_tokens(self):
        """A promotion takes nothing away: the earlier token stays good (with its old role) until it expires."""
        name, pw, uid = register(self.port)
        access, _ = login(self.port, name, pw)
        _, _, _, boss, _ = self.admin("boss")
        st, _, j = request(self.port, "PUT", "/users/" + uid, {"role": "artist"}, headers=bearer(boss))
        self.assertSuccess(st, j, 200, "promote to artist")
        self.assertEqual(self.me(access)["role"], "artist")


# ---------------------------------------------------------------------------
# 10. OpenMusic mode keeps the refresh token
# ---------------------------------------------------------------------------

class OpenMusicRefreshKeepsToken(AuthCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = FIXTURE.server("openmusic", dict(main_env(), STACCATO_COMPAT="openmusic"))

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    @property
    def port(self):
        return self.srv.port

    def test_openmusic_refresh_does_not_revoke_the_refresh_token(self):
        name, pw, uid = register(self.port)
        access, r1 = login(self.port, name, pw)
        for i in range(3):
            st, _, j = self.refresh(r1)
            self.assertSuccess(st, j, 200, "refresh %d with the first refresh token" % (i + 1))
            self.assertEqual(self.me(j["data"]["accessToken"])["id"], uid)
        st, _, j = request(self.port, "DELETE", "/authentications", {"refreshToken": r1})
        self.assertSuccess(st, j, 200, "DELETE /authentications with the first refresh token")
        st, h, j = self.refresh(r1)
        self.assertFail(st, h, j, 400, REFRESH_INVALID, "refresh after the logout")
        st, h, j = request(self.port, "DELETE", "/authentications", {"refreshToken": r1})
        self.assertFail(st, h, j, 400, REFRESH_INVALID, "second logout")


# ---------------------------------------------------------------------------
# 11. strict mode: two tabs refreshing at once
# ---------------------------------------------------------------------------

class RefreshGraceWindow(AuthCase):
    GRACE_S = 2

    @classmethod
    def setUpClass(cls):
        cls.srv = FIXTURE.server("grace", dict(main_env(), STACCATO_REFRESH_GRACE_S=str(cls.GRACE_S)))

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def two_tabs(self, port, token):
        barrier = threading.Barrier(2, timeout=10)

        def go():
            barrier.wait()
            return self.refresh(token, port=port)

        results = run_threads(go, [(), ()], timeout=20)
        for r in results:
            if isinstance(r, BaseException):
                raise r
        return results

    def test_two_tabs_refreshing_at_once_stay_logged_in(self):
        for port, what in ((MAIN.port, "default grace"), (self.srv.port, "grace %d s" % self.GRACE_S)):
            name, pw, uid = register(port)
            _, r1 = login(port, name, pw)
            results = self.two_tabs(port, r1)
            self.assertEqual([r[0] for r in results], [200, 200], "%s: %r" % (what, [(r[0], r[2]) for r in results]))
            successors = {r[2]["data"]["refreshToken"] for r in results}
            self.assertEqual(len(successors), 1, "%s: both tabs get the same successor" % what)
            for r in results:
                self.assertEqual(self.me(r[2]["data"]["accessToken"], port=port)["id"], uid)
            # The family stays valid: the successor refreshes, once.
            (r2,) = successors
            st, _, j = self.refresh(r2, port=port)
            self.assertSuccess(st, j, 200, "%s: the shared successor refreshes" % what)
            r3 = j["data"]["refreshToken"]
            st, _, j = self.refresh(r3, port=port)
            self.assertSuccess(st, j, 200, "%s: and the family goes on" % what)
            # R1 again once its successor is used: reuse, however soon.
            st, h, j = self.refresh(r1, port=port)
            self.assertFail(st, h, j, 400, REFRESH_INVALID, "%s: R1 after its successor was used" % what)
            st, h, j = self.refresh(r3, port=port)
            self.assertFail(st, h, j, 400, REFRESH_INVALID, "%s: the family is revoked after that reuse" % what)

    def test_two_tabs_refreshing_at_once_reuse_after_the_window(self):
        port = self.srv.port
        name, pw, _ = register(port)
        _, r1 = login(port, name, pw)
        st, _, j = self.refresh(r1, port=port)
        self.assertSuccess(st, j, 200, "R1 -> R2")
        r2 = j["data"]["refreshToken"]
        st, _, j = self.refresh(r1, port=port)
        self.assertSuccess(st, j, 200, "R1 again within the window")
        self.assertEqual(j["data"]["refreshToken"], r2, "the same successor")
        time.sleep(self.GRACE_S + 1.5)
        st, h, j = self.refresh(r1, port=port)
        self.assertFail(st, h, j, 400, REFRESH_INVALID, "R1 after the window")
        st, h, j = self.refresh(r2, port=port)
        self.assertFail(st, h, j, 400, REFRESH_INVALID, "R2 after the reuse of R1 (family revoked)")

    def test_two_tabs_refreshing_at_once_no_grace_after_logout(self):
        port = self.srv.port
        name, pw, _ = register(port)
        _, r1 = login(port, name, pw)
        st, _, j = self.refresh(r1, port=port)
        r2 = j["data"]["refreshToken"]
        st, _, j = request(port, "DELETE", "/authentications", {"refreshToken": r2})
        self.assertSuccess(st, j, 200, "logout with R2")
        st, h, j = self.refresh(r1, port=port)
        self.assertFail(st, h, j, 400, REFRESH_INVALID, "R1 within the window after R2 was logged out")


if __name__ == "__main__":
    harness.main()
