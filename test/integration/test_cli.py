"""Command line: --help, --version and configuration checking with -t."""

import os

from wsgate_harness import (WsgateTestCase, default_config, line_of, main,
                            merge_config, run_binary, to_libconfig)


class CommandLineTest(WsgateTestCase):

    def write_config(self, text, name="wsgate.conf"):
        path = os.path.join(self.workdir, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o600)       # it holds tokens
        return path

    def config_text(self, **overrides):
        return to_libconfig(merge_config(default_config(8080), overrides))

    def check(self, text):
        """Run `wsgate -t -c FILE`; returns (path, exit code, stdout+stderr)."""
        path = self.write_config(text)
        result = run_binary(["-t", "-c", path])
        return path, result.returncode, result.stdout + result.stderr

    def assert_rejected_at(self, text, needle, key, *fragments):
        """-t fails and reports FILE:LINE (line of ``needle``) naming ``key``
        (quoted) and containing every one of ``fragments``."""
        path, rc, output = self.check(text)
        self.assertNotEqual(rc, 0, output)
        prefix = "%s:%d: " % (path, line_of(text, needle))
        lines = [l for l in output.splitlines() if prefix in l]
        self.assertTrue(lines, "no line with %r in output:\n%s" % (prefix, output))
        for fragment in ("'%s'" % key,) + fragments:
            self.assertIn(fragment, lines[0], output)
        self.assertNotIn("is ok", output)

    def test_help_exits_zero_and_prints_usage(self):
        result = run_binary(["--help"])
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertRegex(result.stdout + result.stderr, r"(?i)usage")
        self.assertIn("-c", result.stdout + result.stderr)

    def test_version_exits_zero_and_prints_version(self):
        result = run_binary(["--version"])
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertRegex(result.stdout + result.stderr, r"\d+\.\d+")

    def test_check_valid_config_prints_ok(self):
        path, rc, output = self.check(self.config_text())
        self.assertEqual(rc, 0, output)
        self.assertIn("configuration %s is ok" % path, output.splitlines())

    def test_config_with_tokens_open_to_others_is_refused(self):
        """Mode 644 (others may read the tokens): -t and a start both exit 1
        naming the file and the fix; 640 (owner and group) is fine."""
        path = self.write_config(self.config_text())
        expected = ("%s: holds tokens or API keys and is accessible by others (mode 0644); "
                    "chmod o-rwx it (600, or 640 with the server's group)" % path)
        os.chmod(path, 0o644)
        for args in (["-t", "-c", path], ["-c", path]):
            result = run_binary(args)
            output = result.stdout + result.stderr
            self.assertEqual(result.returncode, 1, output)
            self.assertIn(expected, output.splitlines())
            self.assertNotIn("alice-secret", output)
        os.chmod(path, 0o640)
        result = run_binary(["-t", "-c", path])
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

    def test_check_valid_config_with_origins_and_close_mode(self):
        text = self.config_text(auth={"reject": "close", "origins": ["https://app.example.com"]},
                                sessions={"on_repeat": "replace-old"},
                                heartbeat={"interval_ms": 100, "timeout_ms": 100})
        path, rc, output = self.check(text)
        self.assertEqual(rc, 0, output)
        self.assertIn("configuration %s is ok" % path, output.splitlines())

    def test_check_heartbeat_interval_below_minimum(self):
        text = self.config_text(heartbeat={"interval_ms": 99})
        self.assert_rejected_at(text, "interval_ms = 99", "heartbeat.interval_ms",
                                "key 'heartbeat.interval_ms' must be an integer", "100")

    def test_check_heartbeat_timeout_below_minimum(self):
        text = self.config_text(heartbeat={"timeout_ms": 50})
        self.assert_rejected_at(text, "timeout_ms = 50", "heartbeat.timeout_ms",
                                "key 'heartbeat.timeout_ms' must be an integer", "100")

    def test_check_wrong_type_port_string(self):
        text = self.config_text(listen={"port": "eighty"})
        self.assert_rejected_at(text, 'port = "eighty"', "listen.port")

    def test_check_port_out_of_range(self):
        text = self.config_text(listen={"port": 70000})
        self.assert_rejected_at(text, "port = 70000", "listen.port")

    def test_check_unknown_top_level_key(self):
        text = self.config_text() + "bogus = 1;\n"
        self.assert_rejected_at(text, "bogus = 1", "bogus")

    def test_check_unknown_key_in_group(self):
        text = self.config_text(websocket={"colour": "blue"})
        self.assert_rejected_at(text, 'colour = "blue"', "websocket.colour")

    def test_check_bad_reject_mode(self):
        text = self.config_text(auth={"reject": "drop"})
        self.assert_rejected_at(text, 'reject = "drop"', "auth.reject")

    def test_check_bad_on_repeat_policy(self):
        text = self.config_text(sessions={"on_repeat": "keep-both"})
        self.assert_rejected_at(text, 'on_repeat = "keep-both"', "sessions.on_repeat")

    def test_check_wrong_type_max_message_bytes(self):
        text = self.config_text(websocket={"max_message_bytes": "big"})
        self.assert_rejected_at(text, 'max_message_bytes = "big"', "websocket.max_message_bytes")

    def test_check_syntax_error_reports_file_and_line(self):
        text = self.config_text().replace("max = 100;", "max = = 100;")
        path, rc, output = self.check(text)
        self.assertNotEqual(rc, 0, output)
        prefix = "%s:%d: " % (path, line_of(text, "max = = 100"))
        self.assertIn(prefix, output)

    def test_check_missing_file_fails(self):
        path = os.path.join(self.workdir, "does-not-exist.conf")
        result = run_binary(["-t", "-c", path])
        self.assertNotEqual(result.returncode, 0)
        self.assertIn(path, result.stdout + result.stderr)

    def test_check_never_prints_token_secrets(self):
        text = self.config_text(heartbeat={"interval_ms": 1})
        _, _, output = self.check(text)
        self.assertNotIn("alice-secret", output)
        self.assertNotIn("bob-secret", output)


if __name__ == "__main__":
    main()
