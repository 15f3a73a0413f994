"""wss: the TLS listener (listen_tls) beside the plain one, straight to wsgate.

Certificates come from scripts/gen-certs.sh (a local CA and a server
certificate for localhost / 127.0.0.1), made once for the class.
"""

import asyncio
import os
import re
import shutil
import signal
import subprocess

from wsgate_harness import (HOST, TOKENS, RawClient, CertsTestCase, binary, client_ssl_context,
                            default_config, gen_certs, line_of, main, merge_config,
                            run_async, run_binary, run_wscat, to_libconfig, welcome_re,
                            ws_closed, ws_connect, ws_recv_json, ws_url)

OPENSSL_TIMEOUT = 10


class TlsTestBase(CertsTestCase):
    """Makes the certificates once; every test gets a server with ws + wss."""

    @classmethod
    def more_certs(cls):
        cls.otherdir = gen_certs(os.path.join(cls.certdir, "other"))   # a second CA + key
        cls.cert = os.path.join(cls.certdir, "server.crt")
        cls.key = os.path.join(cls.certdir, "server.key")

    def start_tls_server(self, **overrides):
        overrides.setdefault("listen_tls", {"cert": self.cert, "key": self.key})
        return self.start_server(**overrides)


class WssSessionTest(TlsTestBase):

    def setUp(self):
        super().setUp()
        self.start_tls_server()

    def test_both_listeners_logged(self):
        log = self.server.log()
        self.assertRegex(log, r"event=listening address=127\.0\.0\.1 port=%d path=/ws\b"
                         % self.server.port)
        self.assertRegex(log, r"event=listening address=127\.0\.0\.1 port=%d path=/ws tls=yes"
                         % self.server.tls_port)

    def test_wss_handshake_welcome_and_round_trip(self):
        client, session = self.open_session("alice", "d1", tls=True)
        self.assertIn(client.sock.version(), ("TLSv1.2", "TLSv1.3"))
        client.send_text("ping")
        self.assertEqual(client.recv_text(), "pong")
        client.send_text('{"type":"ping","id":42}')
        self.assertEqual(client.recv_text(), '{"type":"pong","id":42}')
        line = self.server.wait_for_log(r"event=session_open session=%s\b" % session)
        self.assertRegex(line, r"user=alice device=d1 peer=127\.0\.0\.1$")
        self.close_by_client(client)

    def test_ws_and_wss_sessions_side_by_side(self):
        plain, _ = self.open_session("alice", "d1")
        secure, _ = self.open_session("bob", "d1", tls=True)
        self.assert_alive(plain)
        self.assert_alive(secure)

    def test_wss_refusal_403_json_body(self):
        client, response = self.connect("wrong-token", "d1", tls=True)
        self.assert_http_reject(response, "HTTP/1.1 403 Forbidden", 4003, "invalid token")
        client, response = self.connect(None, "d1", tls=True)
        self.assert_http_reject(response, "HTTP/1.1 403 Forbidden", 4003, "missing token")
        line = self.server.wait_for_log(r"event=handshake_refused .*reason=\"missing token\"")
        self.assertRegex(line, r"peer=127\.0\.0\.1 code=4003 ")
        self.assertNotIn(" via=", line)

    def test_wss_wrong_path_404(self):
        client, response = self.connect(TOKENS["alice"], "d1", path="/nope", tls=True)
        self.assertEqual(response.status_line, "HTTP/1.1 404 Not Found", repr(response))

    def test_wss_repeat_connect_closed_4001(self):
        first, _ = self.open_session("alice", "d1", tls=True)
        client, response = self.connect(TOKENS["alice"], "d1", tls=True)
        self.assert_close_reject(client, response, 4001, "repeat connect channel")
        self.assert_alive(first)

    def test_repeat_connect_across_ws_and_wss_closed_4001(self):
        """One registry for both listeners."""
        first, _ = self.open_session("alice", "d1")
        client, response = self.connect(TOKENS["alice"], "d1", tls=True)
        self.assert_close_reject(client, response, 4001, "repeat connect channel")
        self.assert_alive(first)

    def test_websockets_client_over_wss(self):
        port = self.server.tls_port
        context = client_ssl_context(self.cafile)       # verifies the chain and 127.0.0.1

        async def scenario():
            ws = await ws_connect(port, TOKENS["alice"], "d1", ssl_context=context)
            welcome = await asyncio.wait_for(ws.recv(), 3)
            await ws.send('{"type":"ping","id":1}')
            pong = await ws_recv_json(ws)
            again = await ws_connect(port, TOKENS["alice"], "d1", ssl_context=context)
            repeat = await ws_closed(again)
            await ws.close(1000, "bye")
            return welcome, pong, repeat, (ws.close_code, ws.close_reason)

        welcome, pong, repeat, closed = run_async(scenario())
        self.assertRegex(welcome, "^%s$" % welcome_re("alice", "d1", 25000))
        self.assertEqual(pong, {"type": "pong", "id": 1})
        self.assertEqual(repeat, (4001, "repeat connect channel"))
        self.assertEqual(closed, (1000, "bye"))

    def test_sigterm_closes_wss_sessions_1001(self):
        secure1, _ = self.open_session("alice", "d1", tls=True)
        secure2, _ = self.open_session("bob", "d2", tls=True)
        plain, _ = self.open_session("alice", "d3")
        self.server.send_signal(signal.SIGTERM)
        for client in (secure1, secure2, plain):
            self.assertEqual(client.expect_close(), (1001, "server shutting down"))
        self.assertEqual(self.server.wait(), 0, self.server.log())

    def test_sigterm_websockets_client_over_wss_sees_1001(self):
        port = self.server.tls_port
        context = client_ssl_context(self.cafile)
        server = self.server

        async def scenario():
            ws = await ws_connect(port, TOKENS["alice"], "d1", ssl_context=context)
            await asyncio.wait_for(ws.recv(), 3)
            server.send_signal(signal.SIGTERM)
            return await ws_closed(ws)

        self.assertEqual(run_async(scenario()), (1001, "server shutting down"))
        self.assertEqual(self.server.wait(), 0, self.server.log())

    def test_plain_http_on_tls_port_not_upgraded(self):
        client = RawClient(self.server.tls_port)          # no TLS on the TLS port
        self.addCleanup(client.close)
        try:
            response = client.handshake("/ws", "token=%s&device=d1" % TOKENS["alice"])
        except (EOFError, AssertionError, OSError):
            response = None                               # dropped or garbage: fine
        if response is not None:
            self.assertNotEqual(response.status, 101, repr(response))
        self.assertEqual(self.server.log_lines("session_open"), [])


class OpenSslTest(TlsTestBase):
    """Protocol versions and ciphers, checked with the openssl CLI."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if not shutil.which("openssl"):
            raise AssertionError("the openssl command is missing (apt-get install openssl)")

    def setUp(self):
        super().setUp()
        self.start_tls_server()

    def s_client(self, *args):
        """openssl s_client against the wss port; returns (exit code, output)."""
        cmd = ["openssl", "s_client", "-connect", "%s:%d" % (HOST, self.server.tls_port),
               "-CAfile", self.cafile, "-verify_return_error"] + list(args)
        result = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                timeout=OPENSSL_TIMEOUT)
        return result.returncode, result.stdout + result.stderr

    def test_tls12_negotiated(self):
        rc, out = self.s_client("-tls1_2", "-verify_ip", HOST)
        self.assertEqual(rc, 0, out)
        self.assertRegex(out, r"(?m)^\s*Protocol\s*: TLSv1\.2$")
        self.assertRegex(out, r"(?m)^New, TLSv1\.2, Cipher is ECDHE-(ECDSA|RSA)-"
                              r"(AES128-GCM-SHA256|AES256-GCM-SHA384|CHACHA20-POLY1305)$")
        self.assertRegex(out, r"Verify return code: 0 \(ok\)")

    def test_tls13_negotiated(self):
        rc, out = self.s_client("-tls1_3", "-verify_ip", HOST)
        self.assertEqual(rc, 0, out)
        self.assertRegex(out, r"(?m)^New, TLSv1\.3, Cipher is TLS_(AES_128_GCM_SHA256|"
                              r"AES_256_GCM_SHA384|CHACHA20_POLY1305_SHA256)$")
        self.assertRegex(out, r"Verify return code: 0 \(ok\)")

    def assert_refused_version(self, flag, name):
        # SECLEVEL=0 lets this client offer the old protocol; the refusal
        # must then come from the server (alert 70, protocol_version).
        rc, out = self.s_client(flag, "-cipher", "DEFAULT:@SECLEVEL=0")
        self.assertNotEqual(rc, 0, out)
        self.assertIn("alert protocol version", out)
        self.assertRegex(out, r"(?m)^New, \(NONE\), Cipher is \(NONE\)$")
        self.assertNotRegex(out, r"(?m)^New, %s," % re.escape(name))

    def test_tls10_refused(self):
        self.assert_refused_version("-tls1", "TLSv1")

    def test_tls11_refused(self):
        self.assert_refused_version("-tls1_1", "TLSv1.1")

    def test_tls12_non_intermediate_ciphers_refused(self):
        # CBC suites (with and without forward secrecy) are not in Mozilla
        # intermediate.
        for cipher in ("ECDHE-ECDSA-AES128-SHA256", "ECDHE-ECDSA-AES256-SHA", "AES128-GCM-SHA256"):
            rc, out = self.s_client("-tls1_2", "-cipher", cipher)
            self.assertNotEqual(rc, 0, "%s accepted:\n%s" % (cipher, out))
            self.assertNotRegex(out, r"(?m)^New, TLSv1\.2, Cipher is", cipher)

    def test_untrusted_ca_fails_verification(self):
        cmd = ["openssl", "s_client", "-connect", "%s:%d" % (HOST, self.server.tls_port),
               "-CAfile", os.path.join(self.otherdir, "ca.crt"), "-verify_return_error",
               "-tls1_3"]
        result = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                timeout=OPENSSL_TIMEOUT)
        self.assertNotEqual(result.returncode, 0, result.stdout + result.stderr)


class TlsConfigCheckTest(TlsTestBase):
    """`wsgate -t -c FILE` on listen_tls mistakes: exit 1, FILE:LINE: key ... message."""

    def config_text(self, listen_tls):
        config = merge_config(default_config(8080), {"listen_tls": listen_tls})
        return to_libconfig(config)

    def check(self, text):
        path = os.path.join(self.workdir, "wsgate.conf")
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o600)       # it holds tokens
        result = run_binary(["-t", "-c", path])
        return path, result.returncode, result.stdout + result.stderr

    def assert_error(self, text, needle, message):
        """-t exits 1 with ``FILE:LINE: message`` (LINE: the line holding ``needle``)."""
        path, rc, output = self.check(text)
        self.assertEqual(rc, 1, output)
        expected = "%s:%d: %s" % (path, line_of(text, needle), message)
        self.assertIn(expected, output)
        self.assertNotIn("is ok", output)

    def test_valid_tls_config_is_ok(self):
        text = self.config_text({"address": HOST, "port": 8443, "cert": self.cert, "key": self.key})
        path, rc, output = self.check(text)
        self.assertEqual(rc, 0, output)
        self.assertIn("configuration %s is ok" % path, output.splitlines())

    def test_key_readable_by_others_refused(self):
        key = os.path.join(self.workdir, "server.key")
        shutil.copyfile(self.key, key)
        os.chmod(key, 0o644)
        text = self.config_text({"address": HOST, "port": 8443, "cert": self.cert, "key": key})
        self.assert_error(text, 'key = "%s"' % key,
                          "key 'listen_tls.key': '%s' is readable by others than its owner "
                          "(mode 0644); chmod 600 it" % key)

    def test_key_readable_by_group_refused(self):
        key = os.path.join(self.workdir, "server.key")
        shutil.copyfile(self.key, key)
        os.chmod(key, 0o640)
        text = self.config_text({"address": HOST, "port": 8443, "cert": self.cert, "key": key})
        path, rc, output = self.check(text)
        self.assertEqual(rc, 1, output)
        self.assertIn("readable by others than its owner", output)

    def test_missing_cert_file_refused(self):
        cert = os.path.join(self.workdir, "absent.crt")
        text = self.config_text({"address": HOST, "port": 8443, "cert": cert, "key": self.key})
        self.assert_error(text, 'cert = "%s"' % cert,
                          "key 'listen_tls.cert': cannot read '%s'" % cert)

    def test_key_from_other_run_does_not_match(self):
        key = os.path.join(self.otherdir, "server.key")
        text = self.config_text({"address": HOST, "port": 8443, "cert": self.cert, "key": key})
        self.assert_error(text, 'key = "%s"' % key,
                          "key 'listen_tls.key': '%s' does not match the certificate '%s'"
                          % (key, self.cert))

    def test_cert_key_missing_is_required(self):
        text = self.config_text({"address": HOST, "port": 8443, "key": self.key})
        self.assert_error(text, "listen_tls = {", "key 'listen_tls.cert' is required")
        text = self.config_text({"address": HOST, "port": 8443, "cert": self.cert})
        self.assert_error(text, "listen_tls = {", "key 'listen_tls.key' is required")

    def test_relative_paths_are_relative_to_the_config_file(self):
        etc, certs = os.path.join(self.workdir, "etc"), os.path.join(self.workdir, "certs")
        os.makedirs(etc)
        os.makedirs(certs)
        for name in ("server.crt", "server.key"):
            shutil.copy2(os.path.join(self.certdir, name), os.path.join(certs, name))
        path = os.path.join(etc, "wsgate.conf")
        with open(path, "w") as f:
            f.write(self.config_text({"address": HOST, "port": 8443, "cert": "../certs/server.crt",
                                      "key": "../certs/server.key"}))
        os.chmod(path, 0o600)       # it holds tokens
        result = subprocess.run([binary(), "-t", "-c", path], cwd="/",
                                stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                timeout=10)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        # and a missing one is reported under its resolved name
        with open(path, "w") as f:
            text = self.config_text({"address": HOST, "port": 8443, "cert": "../certs/absent.crt",
                                     "key": "../certs/server.key"})
            f.write(text)
        result = subprocess.run([binary(), "-t", "-c", path], cwd="/",
                                stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                timeout=10)
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        self.assertIn("%s:%d: key 'listen_tls.cert': cannot read '%s/../certs/absent.crt'"
                      % (path, line_of(text, "cert = "), etc), result.stdout + result.stderr)

    def test_tls_port_equal_to_listen_port_refused(self):
        text = self.config_text({"address": HOST, "port": 8080, "cert": self.cert, "key": self.key})
        path, rc, output = self.check(text)
        self.assertEqual(rc, 1, output)
        port_line = line_of(text, "listen_tls = {") + 2          # address, then port
        self.assertIn("  port = 8080;", text.splitlines()[port_line - 1])
        self.assertIn("%s:%d: key 'listen_tls.port' must differ from 'listen.port' on the same "
                      "address" % (path, port_line), output)

    def test_server_refuses_to_start_with_bad_key(self):
        """Not only -t: a real start fails too, and nothing listens."""
        key = os.path.join(self.workdir, "server.key")
        shutil.copyfile(self.key, key)
        os.chmod(key, 0o644)
        path = os.path.join(self.workdir, "run.conf")
        with open(path, "w") as f:
            f.write(self.config_text({"address": HOST, "port": 8443, "cert": self.cert,
                                      "key": key}))
        os.chmod(path, 0o600)       # it holds tokens
        result = run_binary(["-c", path])
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        self.assertIn("readable by others than its owner", result.stdout + result.stderr)


class WscatWssTest(TlsTestBase):

    def setUp(self):
        super().setUp()
        self.start_tls_server()

    def url(self):
        return ws_url(self.server.tls_port, TOKENS["alice"], "d1", scheme="wss")

    def assert_welcome_and_pong(self, rc, out, err):
        self.assertEqual(rc, 0, err)
        lines = out.splitlines()
        self.assertEqual(len(lines), 2, out)
        self.assertRegex(lines[0], "^%s$" % welcome_re("alice", "d1", 25000))
        self.assertEqual(lines[1], "pong")

    def test_wscat_wss_with_ca(self):
        rc, out, err = run_wscat(["-c", self.url(), "--ca", self.cafile, "-x", "ping", "-w", "1"])
        self.assert_welcome_and_pong(rc, out, err)

    def test_wscat_wss_with_no_check(self):
        rc, out, err = run_wscat(["-c", self.url(), "--no-check", "-x", "ping", "-w", "1"])
        self.assert_welcome_and_pong(rc, out, err)

    def test_wscat_wss_without_ca_rejects_certificate(self):
        rc, out, err = run_wscat(["-c", self.url(), "-x", "ping", "-w", "1"])
        self.assertNotEqual(rc, 0, out + err)
        self.assertNotIn("welcome", out)
        self.assertRegex(err, r"^error: .*(certificate|self.signed)", err)
        self.assertEqual(self.server.log_lines("session_open"), [])


if __name__ == "__main__":
    main()
