#!/usr/bin/env python3
"""Command line, environment and .env configuration (spec: Usage, Settings)."""

import os
import re
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import run_cli  # noqa: E402


def target(n):
    """A request-target for /health of exactly n bytes."""
    base = "/health?pad="
    assert n > len(base)
    return base + "a" * (n - len(base))


class Cli(harness.ServerTestCase):
    def test_help_lists_every_setting(self):
        rc, out, err = run_cli(["--help"])
        self.assertEqual(rc, 0, "--help exit code (stderr=%r)" % err)
        text = out + err
        self.assertTrue(out.strip(), "--help printed nothing on stdout")
        missing = [name for name in harness.SETTINGS if not re.search(r"\b%s\b" % name, text)]
        self.assertEqual(missing, [], "--help does not mention: %s" % missing)
        for flag in ("--port", "--host", "--max-url-bytes", "--workers", "--env-file"):
            self.assertIn(flag, text, "--help does not mention %s" % flag)

    def test_readme_settings_table_matches_help(self):
        # README.md's table of settings is the --help text in another form: every setting, its flag, default and
        # meaning, in the same order. A setting added, renamed or redescribed must show in both.
        rc, out, err = run_cli(["--help"])
        self.assertEqual(rc, 0, err)
        lines = out.split("\n")
        start = next(i for i, l in enumerate(lines) if l.startswith("Settings"))
        want, i = [], start + 1
        while i < len(lines):
            m = re.match(r"^  (--[a-z0-9-]+)( \S+)?$", lines[i])
            if not m:
                i += 1
                continue
            env = re.match(r"^      env (\S+), default: ?(.*)$", lines[i + 1])
            self.assertIsNotNone(env, lines[i + 1])
            i += 2
            meaning = []
            while i < len(lines) and lines[i].startswith("      "):
                meaning.append(lines[i].strip())
                i += 1
            want.append("| `%s` | `%s` | %s | %s |" % (env.group(1), m.group(1),
                                                       (env.group(2) or "(empty)").replace("|", "\\|"),
                                                       " ".join(meaning).replace("|", "\\|")))
        with open(os.path.join(harness.REPO_ROOT, "README.md"), encoding="utf-8") as f:
            readme = f.read().split("\n")
        header = readme.index("| variable | flag | default | meaning |")
        have = []
        for line in readme[header + 2:]:
            if not line.startswith("| `"):
                break
            have.append(line)
        self.assertGreater(len(want), 50)
        self.assertEqual(have, want, "README.md's settings table differs from --help")

    def test_version(self):
        rc, out, err = run_cli(["--version"])
        self.assertEqual(rc, 0, err)
        self.assertRegex(out.strip(), r"^staccato \d+\.\d+\.\d+$")

    def assert_bad_config(self, args, env=None):
        rc, out, err = run_cli(args, env_overrides=env)
        self.assertEqual(rc, 2, "args=%r env=%r: exit code %r (expected 2), stderr=%r"
                         % (args, env, rc, err))
        lines = err.splitlines()
        self.assertEqual(len(lines), 1, "args=%r env=%r: expected exactly one stderr line, got %r"
                         % (args, env, err))
        self.assertTrue(lines[0].strip(), "empty stderr line")

    def test_unknown_flag(self):
        self.assert_bad_config(["--bogus-flag"])
        self.assert_bad_config(["--bogus-flag=1"])
        self.assert_bad_config(["serve", "--no-such-setting", "3"])

    def test_non_numeric_number(self):
        self.assert_bad_config(["--max-url-bytes", "abc"])
        self.assert_bad_config(["--max-url-bytes=12x"])
        self.assert_bad_config(["--header-timeout-ms", ""])
        self.assert_bad_config([], env={"STACCATO_MAX_HEADERS": "abc"})
        self.assert_bad_config([], env={"STACCATO_MAX_BODY_BYTES": "1e3"})

    def test_out_of_range(self):
        self.assert_bad_config(["--port", "70000"])
        self.assert_bad_config([], env={"PORT": "-1"})
        self.assert_bad_config(["--max-connections", "-5"])

    def test_weak_token_keys_refused(self):
        """Regression: token keys shorter than 32 bytes were only warned about."""
        strong = "k" * 32
        self.assert_bad_config(["--port", "0"], env={"ACCESS_TOKEN_KEY": "short-key", "REFRESH_TOKEN_KEY": strong})
        self.assert_bad_config(["--port", "0"], env={"ACCESS_TOKEN_KEY": strong, "REFRESH_TOKEN_KEY": "r" * 31})
        rc, out, err = run_cli(["--port", "0"], env_overrides={"ACCESS_TOKEN_KEY": "x" * 20,
                                                               "REFRESH_TOKEN_KEY": strong})
        self.assertIn("ACCESS_TOKEN_KEY must be at least 32 bytes", err)

    def test_host_and_metrics_settings_refused(self):
        """STACCATO_ALLOWED_HOSTS entries that are not hosts, and STACCATO_METRICS=token without a token of 16
        bytes, stop the start (exit 2) instead of leaving links or /metrics open."""
        for hosts in ("music.example, http://evil/", "[evil.com]", "a b", "h:70000"):
            with self.subTest(hosts=hosts):
                self.assert_bad_config(["--port", "0"], env={"STACCATO_ALLOWED_HOSTS": hosts})
        rc, out, err = run_cli(["--port", "0"], env_overrides={"STACCATO_ALLOWED_HOSTS": "ok.example,bad/"})
        self.assertIn("STACCATO_ALLOWED_HOSTS: 'bad/'", err)
        self.assert_bad_config(["--port", "0"], env={"STACCATO_METRICS": "token"})
        self.assert_bad_config(["--port", "0"], env={"STACCATO_METRICS": "token", "STACCATO_METRICS_TOKEN": "x" * 15})
        self.assert_bad_config(["--port", "0"], env={"STACCATO_METRICS": "everyone"})

    def test_missing_flag_value(self):
        self.assert_bad_config(["--port"])

    def test_bad_enum_values(self):
        self.assert_bad_config(["--log-level", "loud"])
        self.assert_bad_config(["--log-format", "xml"])

    def test_bad_value_in_env_file(self):
        d = tempfile.mkdtemp(prefix="staccato-it-")
        self.addCleanup(shutil.rmtree, d, True)
        with open(os.path.join(d, ".env"), "w") as f:
            f.write("STACCATO_MAX_URL_BYTES=lots\n")
        rc, out, err = run_cli([], cwd=d)
        self.assertEqual(rc, 2, "bad number in .env: exit %r stderr=%r" % (rc, err))
        self.assertEqual(len(err.splitlines()), 1, err)


class Precedence(harness.ServerTestCase):
    """Effective STACCATO_MAX_URL_BYTES observed through 414 vs 200."""

    def tmpdir(self):
        d = tempfile.mkdtemp(prefix="staccato-it-")
        self.addCleanup(shutil.rmtree, d, True)
        return d

    def write_env(self, d, text, name=".env"):
        p = os.path.join(d, name)
        with open(p, "w") as f:
            f.write(text)
        return p

    def status(self, srv, n):
        return srv.get(target(n)).status

    def assertUrlLimit(self, srv, limit):
        self.assertEqual(self.status(srv, limit - 20), 200, "URL of %d bytes (limit %d)" % (limit - 20, limit))
        self.assertEqual(self.status(srv, limit + 30), 414, "URL of %d bytes (limit %d)" % (limit + 30, limit))

    def test_env_file_in_cwd(self):
        d = self.tmpdir()
        self.write_env(d, "STACCATO_MAX_URL_BYTES=100\n")
        srv = self.start_server(cwd=d)
        self.assertUrlLimit(srv, 100)

    def test_env_beats_env_file(self):
        d = self.tmpdir()
        self.write_env(d, "STACCATO_MAX_URL_BYTES=100\n")
        srv = self.start_server(cwd=d, env={"STACCATO_MAX_URL_BYTES": "200"})
        self.assertUrlLimit(srv, 200)

    def test_flag_beats_env_and_env_file(self):
        d = self.tmpdir()
        self.write_env(d, "STACCATO_MAX_URL_BYTES=100\n")
        srv = self.start_server(cwd=d, env={"STACCATO_MAX_URL_BYTES": "200"},
                                args=["--max-url-bytes", "300"])
        self.assertUrlLimit(srv, 300)

    def test_flag_equals_form_and_serve_subcommand(self):
        srv = self.start_server(args=["serve", "--max-url-bytes=150"])
        self.assertUrlLimit(srv, 150)

    def test_env_file_flag(self):
        d = self.tmpdir()
        p = self.write_env(d, "STACCATO_MAX_URL_BYTES=120\n", name="custom.env")
        srv = self.start_server(args=["--env-file", p])       # cwd is another, empty dir
        self.assertUrlLimit(srv, 120)

    def test_env_file_env_var(self):
        d = self.tmpdir()
        p = self.write_env(d, "STACCATO_MAX_URL_BYTES=130\n", name="other.env")
        srv = self.start_server(env={"STACCATO_ENV_FILE": p})
        self.assertUrlLimit(srv, 130)

    def test_env_file_flag_beats_cwd_env_file(self):
        d = self.tmpdir()
        self.write_env(d, "STACCATO_MAX_URL_BYTES=100\n")
        p = self.write_env(d, "STACCATO_MAX_URL_BYTES=250\n", name="explicit.env")
        srv = self.start_server(cwd=d, args=["--env-file=" + p])
        self.assertUrlLimit(srv, 250)

    def test_env_file_comments_and_blank_lines(self):
        d = self.tmpdir()
        self.write_env(d, "# staccato settings\n\nSTACCATO_MAX_URL_BYTES=110\n\n# end\n")
        srv = self.start_server(cwd=d)
        self.assertUrlLimit(srv, 110)

    def test_host_port_from_flags(self):
        srv = self.start_server(env={"HOST": None, "PORT": None},
                                args=["--host", "127.0.0.1", "--port", "0"])
        self.assertEqual(srv.get("/health").status, 200)

    def test_host_port_from_env_file(self):
        d = self.tmpdir()
        self.write_env(d, "HOST=127.0.0.1\nPORT=0\n")
        srv = self.start_server(cwd=d, env={"HOST": None, "PORT": None})
        self.assertEqual(srv.get("/health").status, 200)

    def test_debug_routes_off_by_default(self):
        srv = self.start_server(env={"STACCATO_DEBUG_ROUTES": None})
        r = srv.get("/_debug/echo", method="POST", body=b"{}")
        self.assertEqual(r.status, 404, "debug route reachable without STACCATO_DEBUG_ROUTES=on")
        self.assertEqual(srv.get("/_debug/sleep?ms=1").status, 404)


if __name__ == "__main__":
    harness.main()
