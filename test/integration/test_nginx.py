"""wsgate behind a real nginx that runs the shipped conf/nginx/wsgate.conf.

nginx runs on loopback with a temporary prefix. Its http block includes a copy
of the shipped server block in which the test changes only what it must (each
change is checked to apply exactly once, so a changed shipped file fails
loudly instead of being tested half-way):

* ``listen 443 ssl;`` -> ``listen 127.0.0.1:PORT ssl;`` (a free port);
* ``listen [::]:443 ssl;`` dropped (no second port, no IPv6 needed);
* ``ssl_certificate`` / ``ssl_certificate_key`` -> certificates from
  scripts/gen-certs.sh;
* the upstream's ``server 127.0.0.1:8080;`` -> the wsgate port;
* ``proxy_read_timeout 60s;`` -> a short one, only in the heartbeat tests.

The surrounding nginx.conf is what Debian's /etc/nginx/nginx.conf provides
(an http-level access log in the default "combined" format) plus temporary
paths. wsgate runs with ``proxy = { trusted = ["127.0.0.1"]; };``.

Every client is on 127.0.0.1, so to see the forwarded address clients send
``X-Forwarded-For: 198.51.100.7``; nginx's $proxy_add_x_forwarded_for makes it
``198.51.100.7, 127.0.0.1`` and the rightmost untrusted hop is 198.51.100.7.
"""

import asyncio
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import time

from wsgate_harness import (HOST, IO_TIMEOUT, OP_PING, TOKENS, CertsTestCase, WsgateTestCase,
                            client_ssl_context, free_port, main, repo_root,
                            run_async, run_wscat, welcome_re, ws_closed, ws_connect, ws_url)

NGINX = os.environ.get("NGINX") or shutil.which("nginx") or "/usr/sbin/nginx"
SHIPPED_CONF = os.path.join(repo_root(), "conf", "nginx", "wsgate.conf")
CLIENT_IP = "198.51.100.7"                      # what clients claim in X-Forwarded-For
XFF = {"X-Forwarded-For": CLIENT_IP}
PROXIED = r"peer=198\.51\.100\.7 via=127\.0\.0\.1"     # session_open, handshake_refused
CLIENT_PEER = r"peer=198\.51\.100\.7"                      # the other session lines


def substitute(text, pattern, replacement, what):
    """re.sub that must match exactly once (re.M)."""
    result, count = re.subn(pattern, replacement, text, flags=re.M)
    if count != 1:
        raise AssertionError("conf/nginx/wsgate.conf: expected exactly one %s (/%s/), found %d"
                             % (what, pattern, count))
    return result


class Nginx:
    """An nginx master + 1 worker in the foreground, with its own prefix."""

    def __init__(self, workdir, certdir, upstream_port, read_timeout=None):
        self.prefix = os.path.join(workdir, "nginx")
        os.makedirs(os.path.join(self.prefix, "logs"), exist_ok=True)
        self.port = free_port()
        self.conf_path = os.path.join(self.prefix, "nginx.conf")
        self.site_path = os.path.join(self.prefix, "wsgate.conf")
        self.access_log = os.path.join(self.prefix, "logs", "access.log")
        self.site_access_log = os.path.join(self.prefix, "logs", "wsgate.access.log")
        self.stderr_path = os.path.join(self.prefix, "logs", "stderr.log")
        self.proc = None

        with open(SHIPPED_CONF) as f:
            site = f.read()
        site = substitute(site, r"^(\s*)listen 443 ssl;$", r"\g<1>listen %s:%d ssl;"
                          % (HOST, self.port), "'listen 443 ssl;'")
        site = substitute(site, r"^\s*listen \[::\]:443 ssl;\n", "", "'listen [::]:443 ssl;'")
        site = substitute(site, r"^(\s*ssl_certificate\s+)\S+;$",
                          r"\g<1>%s;" % os.path.join(certdir, "server.crt"), "ssl_certificate")
        site = substitute(site, r"^(\s*ssl_certificate_key\s+)\S+;$",
                          r"\g<1>%s;" % os.path.join(certdir, "server.key"), "ssl_certificate_key")
        site = substitute(site, r"^(\s*server\s+)127\.0\.0\.1:8080;$",
                          r"\g<1>%s:%d;" % (HOST, upstream_port), "upstream 'server 127.0.0.1:8080;'")
        site = substitute(site, r"^(\s*access_log\s+)/var/log/nginx/wsgate\.access\.log(\s)",
                          r"\g<1>%s\g<2>" % self.site_access_log, "the server block's access_log")
        if read_timeout is not None:
            site = substitute(site, r"^(\s*proxy_read_timeout\s+)\S+;$",
                              r"\g<1>%s;" % read_timeout, "proxy_read_timeout")
        with open(self.site_path, "w") as f:
            f.write(site)

        temp = lambda name: os.path.join(self.prefix, name)        # noqa: E731
        with open(self.conf_path, "w") as f:
            f.write("\n".join([
                "user root;" if os.geteuid() == 0 else "",
                "worker_processes 1;",
                "daemon off;",
                "pid %s;" % temp("nginx.pid"),
                "error_log stderr notice;",
                "events { worker_connections 256; }",
                "http {",
                "    access_log %s;" % self.access_log,        # format "combined", as on Debian
                "    client_body_temp_path %s;" % temp("client_body"),
                "    proxy_temp_path %s;" % temp("proxy"),
                "    fastcgi_temp_path %s;" % temp("fastcgi"),
                "    uwsgi_temp_path %s;" % temp("uwsgi"),
                "    scgi_temp_path %s;" % temp("scgi"),
                "    include %s;" % self.site_path,
                "}",
                ""]))

    def command(self, *extra):
        return [NGINX, "-p", self.prefix + "/", "-e", "stderr", "-c", self.conf_path] + list(extra)

    def check(self):
        """`nginx -t` on the configuration; returns (exit code, output)."""
        result = subprocess.run(self.command("-t"), stdin=subprocess.DEVNULL,
                                capture_output=True, text=True, timeout=10)
        return result.returncode, result.stdout + result.stderr

    def log(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def start(self, timeout=5.0):
        with open(self.stderr_path, "wb") as out:
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError("nginx exited with %s during start-up:\n%s"
                                     % (self.proc.returncode, self.log()))
            try:
                socket.create_connection((HOST, self.port), timeout=0.2).close()
                return self
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise AssertionError("nginx did not listen on %d within %.1fs:\n%s"
                                         % (self.port, timeout, self.log()))
                time.sleep(0.02)

    def stop(self):
        """Fast shutdown (SIGTERM); the process group is killed if it hangs."""
        if self.proc is None:
            return
        if self.proc.poll() is not None:
            return                          # the master waits for its workers before it exits
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)     # the group this test started
            except (ProcessLookupError, PermissionError):
                pass
            self.proc.wait(timeout=5)

    def wait_for_access_log(self, pattern, timeout=IO_TIMEOUT, path=None):
        deadline = time.monotonic() + timeout
        while True:
            try:
                with open(path or self.access_log) as f:
                    text = f.read()
            except FileNotFoundError:
                text = ""
            if re.search(pattern, text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError("nothing matching %r in nginx's access log:\n%s"
                                     % (pattern, text))
            time.sleep(0.02)


class NginxTestBase(CertsTestCase):

    @classmethod
    def setUpClass(cls):
        if not os.access(NGINX, os.X_OK):
            raise AssertionError("nginx not found at %s (apt-get install nginx, or set NGINX)"
                                 % NGINX)
        super().setUpClass()

    def start_behind_nginx(self, read_timeout=None, **overrides):
        """wsgate (trusting 127.0.0.1) and nginx in front of it."""
        overrides.setdefault("proxy", {"trusted": ["127.0.0.1"]})
        server = self.start_server(**overrides)
        nginx = Nginx(self.workdir, self.certdir, server.port, read_timeout)
        rc, out = nginx.check()
        self.assertEqual(rc, 0, "nginx -t:\n" + out)
        nginx.start()
        self.addCleanup(self._stop_nginx, nginx)
        self.nginx = nginx
        return nginx

    def _stop_nginx(self, nginx):
        nginx.stop()
        if os.environ.get("WSGATE_TEST_VERBOSE"):
            print("\n--- nginx (%s) ---\n%s--- end ---" % (self.id(), nginx.log()))

    # through nginx
    def via_nginx(self, token=None, device="d1", headers=None, path=None):
        return self.connect(token, device, headers, path=path, tls=True, port=self.nginx.port)

    def session_via_nginx(self, user="alice", device="d1", headers=XFF):
        return self.open_session(user, device, headers=headers, token=TOKENS[user], tls=True,
                                 port=self.nginx.port)

    def wss_url(self, token=None, device=None):
        return ws_url(self.nginx.port, token, device, scheme="wss")


class NginxProxyTest(NginxTestBase):

    def setUp(self):
        super().setUp()
        self.start_behind_nginx()

    def test_admitted_through_nginx_with_forwarded_address(self):
        client, session = self.session_via_nginx("alice", "d1")
        self.assert_alive(client)
        client.send_text('{"type":"ping","id":"x"}')
        self.assertEqual(client.recv_text(), '{"type":"pong","id":"x"}')
        line = self.server.wait_for_log(r"event=session_open session=%s\b" % session)
        self.assertRegex(line, r"user=alice device=d1 %s$" % PROXIED)
        self.close_by_client(client, 1000, "bye")
        line = self.server.wait_for_log(r"event=session_close session=%s\b" % session)
        self.assertRegex(line, r" %s( via=127\.0\.0\.1)? code=1000 reason=\"bye\" by=client "
                         % CLIENT_PEER)

    def test_refusal_403_json_body_through_nginx(self):
        client, response = self.via_nginx("wrong-token", "d1", headers=XFF)
        self.assert_http_reject(response, "HTTP/1.1 403 Forbidden", 4003, "invalid token")
        line = self.server.wait_for_log(r"event=handshake_refused .*reason=\"invalid token\"")
        self.assertRegex(line, r"event=handshake_refused %s code=4003 " % PROXIED)
        client, response = self.via_nginx(None, "d1", headers=XFF)
        self.assert_http_reject(response, "HTTP/1.1 403 Forbidden", 4003, "missing token")

    def test_invalid_device_400_through_nginx(self):
        client, response = self.via_nginx(TOKENS["alice"], "bad device!", headers=XFF)
        self.assert_http_reject(response, "HTTP/1.1 400 Bad Request", 4000, "invalid device id")

    def test_repeat_connect_4001_through_nginx(self):
        first, _ = self.session_via_nginx("alice", "d1")
        client, response = self.via_nginx(TOKENS["alice"], "d1", headers=XFF)
        self.assert_close_reject(client, response, 4001, "repeat connect channel")
        self.assert_alive(first)
        line = self.server.wait_for_log(r"event=session_refused .*code=4001\b")
        self.assertRegex(line, r"user=alice device=d1 %s( via=127\.0\.0\.1)? code=4001 "
                               r"reason=\"repeat connect channel\" by=server " % CLIENT_PEER)

    def test_websockets_client_sees_4001_through_nginx(self):
        self.session_via_nginx("alice", "d1")
        port, context = self.nginx.port, client_ssl_context(self.cafile)

        async def scenario():
            ws = await ws_connect(port, TOKENS["alice"], "d1", ssl_context=context)
            return await ws_closed(ws)
        self.assertEqual(run_async(scenario()), (4001, "repeat connect channel"))

    def test_shutdown_1001_reaches_clients_through_nginx(self):
        first, _ = self.session_via_nginx("alice", "d1")
        second, _ = self.session_via_nginx("bob", "d2")
        port, context, server = self.nginx.port, client_ssl_context(self.cafile), self.server

        async def scenario():
            ws = await ws_connect(port, TOKENS["alice"], "d3", ssl_context=context)
            await asyncio.wait_for(ws.recv(), IO_TIMEOUT)
            server.send_signal(signal.SIGTERM)
            return await ws_closed(ws)

        self.assertEqual(run_async(scenario()), (1001, "server shutting down"))
        for client in (first, second):
            self.assertEqual(client.expect_close(), (1001, "server shutting down"))
        self.assertEqual(self.server.wait(), 0, self.server.log())
        closes = self.server.log_lines("session_close")
        self.assertEqual(len(closes), 3, self.server.log())
        for line in closes:
            self.assertRegex(line, r" code=1001 reason=\"server shutting down\" by=server ")

    def test_plain_get_on_ws_path_426_and_other_path_404_through_nginx(self):
        """Non-upgrade requests: /ws gets wsgate's verdict query answer (426 when
        the upgrade would be admitted, the refusal's status and JSON otherwise,
        with CORS), / goes to wsgate by `location /` and gets its 404."""
        context = client_ssl_context(self.cafile)
        origin = {"Origin": "https://page.example"}
        for path, status, body in (
                ("/ws?token=%s&device=d1" % TOKENS["alice"], 426, b'{"code":0,"reason":"upgrade required"}'),
                ("/ws?token=wrong&device=d1", 403, b'{"code":4003,"reason":"invalid token"}'),
                ("/ws?token=%s&device=a%%20b" % TOKENS["alice"], 400,
                 b'{"code":4000,"reason":"invalid device id"}'),
                ("/", 404, b'{"error":"not found"}')):
            conn = http.client.HTTPSConnection(HOST, self.nginx.port, timeout=IO_TIMEOUT,
                                               context=context)
            try:
                conn.request("GET", path, headers=origin)
                response = conn.getresponse()
                received = response.read()
                self.assertEqual((response.status, received), (status, body),
                                 (path, response.getheaders()))
                self.assertRegex(response.getheader("Server", ""), r"^nginx\b")   # proxied
                if path.startswith("/ws"):
                    self.assertEqual(response.getheader("Access-Control-Allow-Origin"),
                                     "https://page.example")
            finally:
                conn.close()
        self.assertEqual(self.server.log_lines("session_open"), [])

    def test_wscat_through_nginx_with_ca(self):
        rc, out, err = run_wscat(["-c", self.wss_url(TOKENS["alice"], "d1"), "--ca", self.cafile,
                                  "-H", "X-Forwarded-For: %s" % CLIENT_IP,
                                  "-x", "ping", "-w", "1"])
        self.assertEqual(rc, 0, err)
        lines = out.splitlines()
        self.assertEqual(len(lines), 2, out)
        self.assertRegex(lines[0], "^%s$" % welcome_re("alice", "d1", 25000))
        self.assertEqual(lines[1], "pong")
        line = self.server.wait_for_log(r"event=session_open ")
        self.assertRegex(line, r"user=alice device=d1 %s$" % PROXIED)

    def test_wscat_refused_403_through_nginx(self):
        rc, out, err = run_wscat(["-c", self.wss_url("wrong-token", "d1"), "--ca", self.cafile])
        self.assertNotEqual(rc, 0)
        self.assertEqual(err.splitlines(), ["error: Unexpected server response: 403"], err)

    def test_nginx_access_log_keeps_tokens_out(self):
        """wsgate never logs a token; the shipped nginx server block must not
        make nginx's access log (Debian's default, format "combined", which
        logs the request line) do it either: ?token=T is the way browsers
        send the token."""
        client, _ = self.session_via_nginx("alice", "d1")
        self.close_by_client(client)            # nginx logs the request when it ends
        # the shipped block's own log (its path substituted), in its token-free format
        text = self.nginx.wait_for_access_log(r"\"GET /ws HTTP/1\.1\" 101 ", path=self.nginx.site_access_log)
        self.assertNotIn(TOKENS["alice"], text,
                         "the token appears in nginx's access log:\n" + text)
        with open(self.nginx.access_log) as f:  # and nothing went to the http-level log
            self.assertNotIn(TOKENS["alice"], f.read())


class NginxHeartbeatTest(NginxTestBase):
    """proxy_read_timeout 2s: wsgate's pings are what keeps idle sessions."""

    def test_heartbeat_keeps_idle_session_open_past_proxy_read_timeout(self):
        self.start_behind_nginx(read_timeout="2s", heartbeat={"interval_ms": 500,
                                                               "timeout_ms": 1000})
        raw, raw_session = self.session_via_nginx("bob", "raw")
        port, context = self.nginx.port, client_ssl_context(self.cafile)
        idle = 10.0

        async def scenario():
            # a `websockets` client: answers pings by itself, sends nothing else
            ws = await ws_connect(port, TOKENS["alice"], "d1", headers=XFF, ssl_context=context)
            welcome = await asyncio.wait_for(ws.recv(), IO_TIMEOUT)
            # meanwhile a raw client counts (and answers) the pings it gets
            pings = await asyncio.to_thread(raw.expect_silence, idle)
            still_open = ws.open
            await ws.send("ping")
            pong = await asyncio.wait_for(ws.recv(), IO_TIMEOUT)
            await ws.close(1000, "done")
            return welcome, pings, still_open, pong

        welcome, pings, still_open, pong = run_async(scenario(), timeout=idle + 10)
        self.assertRegex(welcome, "^%s$" % welcome_re("alice", "d1", 500))
        self.assertTrue(still_open, self.server.log())
        self.assertEqual(pong, "pong")
        # one ping per ~0.5 s of silence (plus the round trip); at least 10 in 10 s
        self.assertGreaterEqual(pings, 10)
        self.assert_alive(raw)
        closes = self.server.log_lines("session_close")
        self.assertEqual(len(closes), 1, self.server.log())
        self.assertRegex(closes[0], r"user=alice device=d1 %s( via=127\.0\.0\.1)? code=1000 "
                                    r"reason=\"done\" by=client" % CLIENT_PEER)
        self.assertNotIn("code=4100", self.server.log())

    def test_dead_client_closed_4100_by_wsgate_through_nginx(self):
        """With the shipped proxy_read_timeout (60 s) the verdict on a client
        that stops answering is wsgate's: 4100 reaches the client through nginx."""
        self.start_behind_nginx(heartbeat={"interval_ms": 500, "timeout_ms": 1000})
        client, session = self.session_via_nginx("alice", "d1")
        code, reason = client.expect_close(timeout=4.0, auto_pong=False)
        self.assertEqual((code, reason), (4100, "heartbeat timeout"))
        between = [f.opcode for f in client.frames[1:-1]]          # after welcome, before close
        self.assertTrue(between and set(between) == {OP_PING}, client.frames)
        line = self.server.wait_for_log(r"event=session_close session=%s\b" % session)
        self.assertRegex(line, r" code=4100 reason=\"heartbeat timeout\" by=server ")

    def test_proxy_cuts_idle_session_when_heartbeat_is_slower_than_read_timeout(self):
        self.start_behind_nginx(read_timeout="2s", heartbeat={"interval_ms": 5000,
                                                               "timeout_ms": 1000})
        raw, session = self.session_via_nginx("bob", "raw")
        frames_after_welcome = len(raw.frames)
        port, context = self.nginx.port, client_ssl_context(self.cafile)

        async def scenario():
            ws = await ws_connect(port, TOKENS["alice"], "d1", headers=XFF, ssl_context=context)
            await asyncio.wait_for(ws.recv(), IO_TIMEOUT)
            start = time.monotonic()
            await asyncio.wait_for(ws.wait_closed(), 6)
            return time.monotonic() - start, ws.close_code, ws.close_reason

        opened = time.monotonic()
        elapsed, code, reason = run_async(scenario())
        # nginx drops both connections without a close frame: the client sees 1006
        self.assertEqual((code, reason), (1006, ""))
        self.assertGreaterEqual(elapsed, 1.5)
        self.assertLess(elapsed, 4.0)
        # the raw session (opened before) was cut the same way: EOF, no close frame
        remaining = max(0.1, opened + 4.0 - time.monotonic())
        with self.assertRaises(EOFError):
            raw.recv_frame(timeout=remaining)
        self.assertEqual(raw.frames[frames_after_welcome:], [])       # no ping, no close
        self.server.wait_for_log(r"event=session_close .*user=alice device=d1 %s.* by=network"
                                 % CLIENT_PEER)
        self.server.wait_for_log(r"event=session_close session=%s .*by=network" % session)
        for line in self.server.log_lines("session_close"):
            self.assertRegex(line, r" code=1006 reason=\"\" by=network ")
        self.assertNotIn("code=4100", self.server.log())


class ProxyTrustDirectTest(WsgateTestCase):
    """Direct connections from 127.0.0.1 (no nginx): forwarded headers are
    believed only from a trusted peer."""

    FORGED = {"X-Forwarded-For": CLIENT_IP, "X-Real-IP": "203.0.113.9"}

    def session_line(self, headers):
        _, session = self.open_session("alice", "d1", headers=headers, token=TOKENS["alice"])
        return self.server.wait_for_log(r"event=session_open session=%s\b" % session)

    def refusal_line(self, headers):
        _, response = self.connect("wrong-token", "d1", headers=headers)
        self.assertEqual(response.status, 403, repr(response))
        return self.server.wait_for_log(r"event=handshake_refused ")

    def assert_ignored(self, **overrides):
        self.start_server(**overrides)
        line = self.session_line(self.FORGED)
        self.assertRegex(line, r"user=alice device=d1 peer=127\.0\.0\.1$")
        self.assertNotIn("via=", line)
        line = self.refusal_line(self.FORGED)
        self.assertRegex(line, r"event=handshake_refused peer=127\.0\.0\.1 code=4003 ")
        self.assertNotIn("via=", line)

    def test_untrusted_peer_headers_ignored(self):
        self.assert_ignored(proxy={"trusted": ["10.0.0.1"]})

    def test_empty_trusted_list_headers_ignored(self):
        self.assert_ignored(proxy={"trusted": []})

    def test_no_proxy_group_headers_ignored(self):
        self.assert_ignored()

    def test_trusted_peer_forwarded_for_believed(self):
        self.start_server(proxy={"trusted": ["127.0.0.1"]})
        line = self.session_line({"X-Forwarded-For": CLIENT_IP})
        self.assertRegex(line, r"user=alice device=d1 %s$" % PROXIED)
        line = self.refusal_line({"X-Forwarded-For": CLIENT_IP})
        self.assertRegex(line, r"event=handshake_refused %s code=4003 " % PROXIED)

    def test_trusted_network_cidr(self):
        self.start_server(proxy={"trusted": ["10.0.0.0/8", "127.0.0.0/8"]})
        line = self.session_line({"X-Forwarded-For": CLIENT_IP})
        self.assertRegex(line, r"user=alice device=d1 %s$" % PROXIED)

    def test_rightmost_untrusted_hop_wins(self):
        """Hops left of the first untrusted one (from the right) are the
        client's own claims and are not believed."""
        self.start_server(proxy={"trusted": ["127.0.0.1", "10.0.0.0/8"]})
        line = self.session_line({"X-Forwarded-For": "203.0.113.1, %s, 10.1.2.3" % CLIENT_IP})
        self.assertRegex(line, r"user=alice device=d1 %s$" % PROXIED)

    def test_real_ip_believed_from_trusted_peer_without_forwarded_for(self):
        self.start_server(proxy={"trusted": ["127.0.0.1"]})
        line = self.session_line({"X-Real-IP": CLIENT_IP})
        self.assertRegex(line, r"user=alice device=d1 %s$" % PROXIED)

    def test_forwarded_for_preferred_to_real_ip(self):
        self.start_server(proxy={"trusted": ["127.0.0.1"]})
        line = self.session_line(self.FORGED)
        self.assertRegex(line, r"user=alice device=d1 %s$" % PROXIED)

    def test_garbage_forwarded_for_not_logged(self):
        self.start_server(proxy={"trusted": ["127.0.0.1"]})
        line = self.session_line({"X-Forwarded-For": "not-an-address x=1"})
        self.assertRegex(line, r"user=alice device=d1 peer=127\.0\.0\.1$")
        self.assertNotIn("not-an-address", self.server.log())


if __name__ == "__main__":
    main()
