#!/usr/bin/env python3
"""E-mail addresses of accounts: registration with an address, the verification mail and its link, signing in by
address, password resets by mail, and the admin search by address.

Black-box over real sockets, against a private PostgreSQL + Redis and a real SMTP peer on loopback (aiosmtpd in a
child process, test_jobs.SmtpPeer) that stores every accepted message. The mails are sent by the server's job
workers; the tests wait for them to arrive and follow the links they carry. Link lifetimes are settings: a second
server with lifetimes of one second, on a database of its own (so that the main server's workers never run its
jobs with their lifetimes), shows expired links refused.
"""

import os
import re
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import test_jobs as jobs  # noqa: E402  (the SMTP peer and the HTTP helper)

SVC = None
SRV = None    # jobs inline, default lifetimes
SHORT = None  # lifetimes of one second, its own database
SHORT_DB = "email_short_" + uuid.uuid4().hex[:8]
SMTP = None
PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a brand new secret phrase"
ADMIN = "email_admin"
BAD_LOGIN = "invalid email or password"

FIXTURE = harness.ModuleFixture("staccato-email-")

TOKEN_IN_LINK = re.compile(r"/users/verify-email\?token=([A-Za-z0-9_.-]+)")
TOKEN_LINE = re.compile(r"^Token: ([A-Za-z0-9_.-]+)\s*$", re.M)


def server_env(db_url, **extra):
    env = FIXTURE.env(DATABASE_URL=db_url,
                      ACCESS_TOKEN_KEY="email-tests-access-key-0123456789-abcdefghijk",
                      REFRESH_TOKEN_KEY="email-tests-refresh-key-9876543210-zyxwvutsrq",
                      STACCATO_ARGON2_M_KIB="1024", STACCATO_ARGON2_T="1",
                      SMTP_HOST="127.0.0.1", SMTP_PORT=str(SMTP.port), MAIL_FROM=jobs.MAIL_FROM,
                      SMTP_USER="", SMTP_PASSWORD="",
                      STACCATO_JOB_RETRY_BASE_MS="200", STACCATO_JOB_RETRY_MAX_MS="1000",
                      STACCATO_REGISTER_MAX_PER_ADDRESS="100000", STACCATO_PASSWORD_RESET_MAX_PER_ADDRESS="1000",
                      STACCATO_ADMIN_USERNAME=ADMIN, STACCATO_ADMIN_PASSWORD=PASSWORD)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def setUpModule():
    global SVC, SRV, SHORT, SMTP
    jobs.PY_SMTPD = jobs.find_smtpd_python()
    if jobs.PY_SMTPD is None:
        raise unittest.SkipTest("python3-aiosmtpd is not installed (deps/install.sh test)")
    with FIXTURE.setting_up():
        SVC = FIXTURE.start_services()
        SMTP = jobs.SmtpPeer()
        FIXTURE.add_cleanup(SMTP.destroy)
        SRV = FIXTURE.server("main", server_env(SVC.database_url))
        short_db = SVC.create_database(SHORT_DB)
        harness.migrate(short_db)
        SHORT = FIXTURE.server("short", server_env(short_db, STACCATO_PASSWORD_RESET_TTL_S="1",
                                                   STACCATO_EMAIL_VERIFY_TTL_S="1"))


tearDownModule = FIXTURE.tear_down


def call(method, path, body=None, token=None, srv=None):
    return jobs.call(srv or SRV, method, path, body, token)


def uniq(prefix):
    return prefix + uuid.uuid4().hex[:10]


def mail_text(msg):
    return msg.get_body(preferencelist=("plain",)).get_content()


def register(username, email, srv=None):
    r = call("POST", "/users", {"username": username, "password": PASSWORD, "fullname": "Mail User",
                                "email": email}, srv=srv)
    assert r.status == 201, r
    return r.json["data"]["userId"]


def verification_token(email, n=1):
    """The token of the n-th verification mail to email (waiting for it)."""
    msgs = [m for _, m in SMTP.wait_messages(email, n) if m["Subject"] == "Confirm your e-mail address"]
    while len(msgs) < n:
        SMTP.wait_messages(email, len(SMTP.messages(email)) + 1)
        msgs = [m for _, m in SMTP.messages(email) if m["Subject"] == "Confirm your e-mail address"]
    found = TOKEN_IN_LINK.search(mail_text(msgs[n - 1]))
    assert found, mail_text(msgs[n - 1])
    return found.group(1)


def reset_mails(email):
    return [m for _, m in SMTP.messages(email) if m["Subject"] == "Reset your password"]


def reset_token(email, n=1):
    """The token of the n-th reset mail to email (waiting for it)."""
    got = harness.wait_until(lambda: len(reset_mails(email)) >= n, jobs.WAIT_S)
    assert got, "reset mail %d to %s did not arrive" % (n, email)
    found = TOKEN_LINE.search(mail_text(reset_mails(email)[n - 1]))
    assert found, mail_text(reset_mails(email)[n - 1])
    return found.group(1)


def verified_account(srv=None):
    """A registered account whose address is verified: (id, username, email)."""
    name = uniq("mail_")
    email = name.replace("_", ".") + "@example.com"
    uid = register(name, email, srv)
    r = call("GET", "/users/verify-email?token=" + verification_token(email), srv=srv)
    assert r.status == 200, r
    return uid, name, email


def login_email(email, password, srv=None):
    return call("POST", "/authentications", {"email": email, "password": password}, srv=srv)


def admin_token():
    access, _ = harness.login(SRV.port, ADMIN, PASSWORD)
    return access


class RegistrationTest(unittest.TestCase):
    def test_verification_mail_link_verifies_and_enables_login(self):
        name = uniq("reg_")
        email = "Reg." + name[4:] + "@Example.com"
        uid = register(name, email)
        access, _ = harness.login(SRV.port, name, PASSWORD)
        me = call("GET", "/users/me", token=access)
        self.assertEqual(me.status, 200)
        self.assertEqual(me.json["data"]["user"]["email"], email)
        self.assertFalse(me.json["data"]["user"]["emailVerified"])

        # Before verification the address does not sign in, with the message of a wrong password.
        r = login_email(email, PASSWORD)
        self.assertEqual((r.status, r.json["message"]), (401, BAD_LOGIN))

        env, msg = SMTP.wait_messages(email)[0]
        self.assertEqual(env["rcpt_tos"], [email])
        self.assertEqual(msg["Subject"], "Confirm your e-mail address")
        link = TOKEN_IN_LINK.search(mail_text(msg))
        self.assertIsNotNone(link)
        self.assertIn("/users/verify-email?token=", mail_text(msg))
        r = call("GET", "/users/verify-email?token=" + link.group(1))
        self.assertEqual((r.status, r.json["message"]), (200, "email verified"))
        self.assertTrue(call("GET", "/users/me", token=access).json["data"]["user"]["emailVerified"])

        # The address signs in, in any case; the link works once.
        r = login_email(email.lower(), PASSWORD)
        self.assertEqual(r.status, 201, r)
        self.assertEqual(call("GET", "/users/me", token=r.json["data"]["accessToken"]).json["data"]["user"]["id"],
                         uid)
        r = call("GET", "/users/verify-email?token=" + link.group(1))
        self.assertEqual(r.status, 400)

    def test_invalid_and_taken_addresses(self):
        for bad in ("no-at-sign", "a@b", "two@@example.com", "x@example.c0m", "a b@example.com"):
            r = call("POST", "/users", {"username": uniq("bad_"), "password": PASSWORD, "fullname": "B",
                                        "email": bad})
            self.assertEqual(r.status, 400, bad)
        email = uniq("taken.") + "@example.com"
        register(uniq("first_"), email)
        r = call("POST", "/users", {"username": uniq("second_"), "password": PASSWORD, "fullname": "S",
                                    "email": email.upper()})
        self.assertEqual((r.status, r.json), (400, {"status": "fail", "message": "email already taken"}))
        # The same shape as a taken username.
        name = uniq("dup_")
        register(name, None)
        r = call("POST", "/users", {"username": name, "password": PASSWORD, "fullname": "S"})
        self.assertEqual((r.status, sorted(r.json)), (400, ["message", "status"]))

    def test_registration_without_address(self):
        name = uniq("plain_")
        r = call("POST", "/users", {"username": name, "password": PASSWORD, "fullname": "P"})
        self.assertEqual(r.status, 201)
        access, _ = harness.login(SRV.port, name, PASSWORD)
        user = call("GET", "/users/me", token=access).json["data"]["user"]
        self.assertIsNone(user["email"])
        self.assertFalse(user["emailVerified"])

    def test_bad_verification_tokens(self):
        uid, _, email = verified_account()
        token = verification_token(email)
        parts = token.split(".")
        forged = ".".join([parts[0], str(int(parts[1]) + 100)] + parts[2:])
        for t in ("", "garbage", forged, token[:-1] + ("0" if token[-1] != "0" else "1"), token + ".x"):
            r = call("GET", "/users/verify-email?token=" + t)
            self.assertEqual((r.status, r.json["message"]), (400, "verification link is not valid or has expired"))
        self.assertEqual(call("GET", "/users/verify-email").status, 400)

    def test_new_address_is_unverified_until_its_link_is_followed(self):
        uid, name, old = verified_account()
        access, _ = harness.login(SRV.port, name, PASSWORD)
        new = uniq("moved.") + "@example.com"
        r = call("PUT", "/users/me", {"email": new}, token=access)
        self.assertEqual(r.status, 200, r)
        self.assertEqual((r.json["data"]["user"]["email"], r.json["data"]["user"]["emailVerified"]), (new, False))
        self.assertEqual(login_email(old, PASSWORD).status, 401)
        self.assertEqual(login_email(new, PASSWORD).status, 401)
        self.assertEqual(call("GET", "/users/verify-email?token=" + verification_token(new)).status, 200)
        self.assertEqual(login_email(new, PASSWORD).status, 201)
        # An address another account has is refused and changes nothing.
        _, _, other = verified_account()
        r = call("PUT", "/users/me", {"email": other, "fullname": "Changed"}, token=access)
        self.assertEqual((r.status, r.json["message"]), (400, "email already taken"))
        user = call("GET", "/users/me", token=access).json["data"]["user"]
        self.assertEqual((user["email"], user["fullname"]), (new, "Mail User"))
        self.assertEqual(call("PUT", "/users/me", {"email": "nope"}, token=access).status, 400)
        # Nor does a new address that comes with a wrong current password.
        r = call("PUT", "/users/me", {"email": uniq("other.") + "@example.com", "password": NEW_PASSWORD,
                                      "currentPassword": "not it"}, token=access)
        self.assertEqual((r.status, r.json["message"]), (400, "currentPassword is not correct"))
        self.assertEqual(call("GET", "/users/me", token=access).json["data"]["user"]["email"], new)
        # The same address in another case changes nothing and mails nothing.
        mails = len(SMTP.messages(new))
        r = call("PUT", "/users/me", {"email": new.upper()}, token=access)
        self.assertEqual((r.status, r.json["data"]["user"]["email"], r.json["data"]["user"]["emailVerified"]),
                         (200, new, True))
        self.assertEqual(len(SMTP.messages(new)), mails)


class LoginTest(unittest.TestCase):
    def test_same_401_for_wrong_password_unknown_and_unverified(self):
        _, _, email = verified_account()
        unverified = uniq("unverified.") + "@example.com"
        register(uniq("unv_"), unverified)
        answers = [login_email(e, p) for e, p in ((email, "wrong password"),
                                                  (uniq("nobody.") + "@example.com", PASSWORD),
                                                  (unverified, PASSWORD),
                                                  ("not an address", PASSWORD))]
        for r in answers:
            self.assertEqual((r.status, r.json), (401, {"status": "fail", "message": BAD_LOGIN}))
        self.assertEqual(login_email(email, PASSWORD).status, 201)

    def test_username_and_email_together_or_neither(self):
        r = call("POST", "/authentications", {"username": "x", "email": "x@example.com", "password": PASSWORD})
        self.assertEqual(r.status, 400)
        self.assertEqual(call("POST", "/authentications", {"password": PASSWORD}).status, 400)

    def test_email_login_is_rate_limited(self):
        _, _, email = verified_account()
        statuses = [login_email(email, "wrong password").status for _ in range(11)]
        self.assertEqual(statuses[:10], [401] * 10)
        self.assertEqual(statuses[10], 429)
        self.assertEqual(login_email(email, PASSWORD).status, 429)


class PasswordResetTest(unittest.TestCase):
    def test_reset_end_to_end(self):
        uid, name, email = verified_account()
        access, refresh = harness.login(SRV.port, name, PASSWORD)
        r = call("POST", "/users/password-reset", {"email": email.upper()})
        self.assertEqual(r.status, 202)
        token = reset_token(email)
        self.assertIn("/users/password-reset/confirm", mail_text(reset_mails(email)[0]))

        # The password rules of registration apply; a refused password leaves the link usable.
        r = call("POST", "/users/password-reset/confirm", {"token": token, "password": "short"})
        self.assertEqual(r.status, 400)
        r = call("POST", "/users/password-reset/confirm", {"token": token, "password": NEW_PASSWORD})
        self.assertEqual((r.status, r.json["message"]), (200, "password changed"))

        # Old access and refresh tokens are refused, the old password too; the new one works, by name and address.
        r = call("GET", "/users/me", token=access)
        self.assertEqual(r.status, 401)
        r = call("PUT", "/authentications", {"refreshToken": refresh})
        self.assertEqual(r.status, 400)
        self.assertEqual(login_email(email, PASSWORD).status, 401)
        self.assertEqual(login_email(email, NEW_PASSWORD).status, 201)
        harness.login(SRV.port, name, NEW_PASSWORD)

        # The link works once.
        r = call("POST", "/users/password-reset/confirm", {"token": token, "password": "yet another password"})
        self.assertEqual((r.status, r.json["message"]), (400, "reset link is not valid or has expired"))

    def test_newer_link_replaces_older(self):
        _, _, email = verified_account()
        self.assertEqual(call("POST", "/users/password-reset", {"email": email}).status, 202)
        first = reset_token(email, 1)
        self.assertEqual(call("POST", "/users/password-reset", {"email": email}).status, 202)
        second = reset_token(email, 2)
        r = call("POST", "/users/password-reset/confirm", {"token": first, "password": NEW_PASSWORD})
        self.assertEqual(r.status, 400)
        r = call("POST", "/users/password-reset/confirm", {"token": second, "password": NEW_PASSWORD})
        self.assertEqual(r.status, 200)

    def test_same_202_for_unknown_and_unverified_addresses(self):
        unverified = uniq("unv.") + "@example.com"
        register(uniq("unvr_"), unverified)
        SMTP.wait_messages(unverified)  # its verification mail
        unknown = uniq("unknown.") + "@example.com"
        _, _, known = verified_account()
        answers = [call("POST", "/users/password-reset", {"email": e}) for e in (unknown, unverified, known)]
        for r in answers:
            self.assertEqual((r.status, r.json), (202, answers[0].json))
        reset_token(known)
        # The known address's mail has arrived; jobs run in order of their creation, so the others' are done
        # too, and they sent nothing.
        harness.wait_until(lambda: self._reset_jobs_left() == 0, jobs.WAIT_S)
        self.assertEqual(self._reset_jobs_left(), 0)
        self.assertEqual(reset_mails(unverified), [])
        self.assertEqual(SMTP.messages(unknown), [])

    def _reset_jobs_left(self):
        out = SVC.psql("SELECT count(*) FROM jobs WHERE kind = 'password-reset' AND state <> 'done'")
        return int(out.strip().splitlines()[-1].strip()) if out.strip() else 0

    def test_bad_requests(self):
        self.assertEqual(call("POST", "/users/password-reset", {"email": "not an address"}).status, 400)
        self.assertEqual(call("POST", "/users/password-reset", {}).status, 400)
        r = call("POST", "/users/password-reset/confirm", {"token": "a.b.c.d", "password": NEW_PASSWORD})
        self.assertEqual((r.status, r.json["message"]), (400, "reset link is not valid or has expired"))
        self.assertEqual(call("POST", "/users/password-reset/confirm", {"password": NEW_PASSWORD}).status, 400)

class ExpiryTest(unittest.TestCase):
    def test_expired_links_are_refused(self):
        name = uniq("exp_")
        email = uniq("exp.") + "@example.com"
        register(name, email, srv=SHORT)
        token = verification_token(email)
        time.sleep(2.2)
        r = call("GET", "/users/verify-email?token=" + token, srv=SHORT)
        self.assertEqual((r.status, r.json["message"]), (400, "verification link is not valid or has expired"))

        SVC.psql("UPDATE users SET email_verified = true WHERE username = '%s'" % name, dbname=SHORT_DB)
        self.assertEqual(call("POST", "/users/password-reset", {"email": email}, srv=SHORT).status, 202)
        token = reset_token(email)
        time.sleep(2.2)
        r = call("POST", "/users/password-reset/confirm", {"token": token, "password": NEW_PASSWORD}, srv=SHORT)
        self.assertEqual((r.status, r.json["message"]), (400, "reset link is not valid or has expired"))
        self.assertEqual(login_email(email, PASSWORD, srv=SHORT).status, 201)


class AdminSearchTest(unittest.TestCase):
    def test_find_account_by_address(self):
        uid, name, email = verified_account()
        admin = admin_token()
        r = call("GET", "/users?email=" + email.upper(), token=admin)
        self.assertEqual(r.status, 200, r)
        self.assertEqual([u["id"] for u in r.json["data"]["users"]], [uid])
        self.assertEqual(r.headers.get("X-Total-Count"), "1")
        self.assertEqual(r.json["data"]["users"][0]["email"], email)
        self.assertTrue(r.json["data"]["users"][0]["emailVerified"])
        r = call("GET", "/users?email=" + uniq("none.") + "%40example.com", token=admin)
        self.assertEqual((r.status, r.json["data"]["users"], r.headers.get("X-Total-Count")), (200, [], "0"))
        # Exact matches only, paged like the list.
        r = call("GET", "/users?email=" + email[:-3], token=admin)
        self.assertEqual(r.json["data"]["users"], [])
        r = call("GET", "/users?email=%s&page=2&limit=1" % email, token=admin)
        self.assertEqual((r.status, r.json["data"]["users"]), (200, []))
        # Admins only.
        access, _ = harness.login(SRV.port, name, PASSWORD)
        self.assertEqual(call("GET", "/users?email=" + email, token=access).status, 403)


if __name__ == "__main__":
    harness.main()
