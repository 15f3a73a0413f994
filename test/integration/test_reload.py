"""Configuration reload (SIGHUP and POST /api/reload): new tokens work at once,
removed tokens close their sessions with 4004 "token revoked" while the others
keep their session ids and messages, permission changes drop subscriptions,
broken files are refused with FILE:LINE and change nothing, keys that need a
restart keep their running value, tokens_file is reloaded too, and 100 reloads
in a row under traffic lose nothing."""

import json
import os
import re
import shutil
import signal
import socket
import ssl
import tempfile
import time

from wsgate_harness import (HOST, TOKENS, WsgateServer, WsgateTestCase, client_ssl_context, gen_certs, line_of,
                            main, to_libconfig)

API_KEY = "ops-backend-api-key-0123"
CAROL = "carol-secret"
REVOKED = (4004, "token revoked")
ALL = ["news", "chat.*"]


def token(user, secret, subscribe=ALL, **extra):
    entry = {"token": secret, "user": user, "subscribe": subscribe, "publish": ["chat.*"],
             "send": ["**"]}
    entry.update(extra)
    return entry


BASE_TOKENS = [token("alice", TOKENS["alice"]), token("bob", TOKENS["bob"])]


class ReloadTestCase(WsgateTestCase):

    def start(self, **overrides):
        overrides.setdefault("api", {"keys": [API_KEY]})
        overrides.setdefault("tokens", BASE_TOKENS)
        return self.start_server(**overrides)

    def rewrite(self, text=None, **changes):
        """Writes the running server's file anew: the current config with changes, or text."""
        if text is None:
            config = dict(self.server.config)
            config.update(changes)
            text = to_libconfig(config)
        # atomically, as operators should: a reload may be reading the file right now
        with open(self.server.conf_path + ".new", "w") as f:
            f.write(text)
        os.chmod(self.server.conf_path + ".new", 0o600)     # it holds tokens
        os.replace(self.server.conf_path + ".new", self.server.conf_path)
        return text

    def reload_by_signal(self, expect="reload"):
        before = len(self.server.log_lines(expect))
        self.server.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 3
        while len(self.server.log_lines(expect)) <= before:
            self.assertLess(time.monotonic(), deadline, "no event=%s logged:\n%s" % (expect, self.server.log()))
            time.sleep(0.01)
        return self.server.log_lines(expect)[-1]

    def reload_by_api(self):
        return self.http("POST", "/api/reload", api_key=API_KEY)

    def assert_alive(self, client, session=None):
        client.send_text('{"type":"ping","id":7}')
        self.assertEqual(client.recv_json(), {"type": "pong", "id": 7})

    def session_ids(self):
        response = self.http("GET", "/api/sessions", api_key=API_KEY)
        self.assertEqual(response.status, 200, repr(response))
        return {(s["user"], s["device"]): s["session"] for s in json.loads(response.body)["sessions"]}

    def subscribe(self, client, channel):
        client.send_text(json.dumps({"type": "subscribe", "channel": channel, "id": channel}))
        ack = client.recv_json()
        self.assertRegex(ack.pop("epoch", ""), r"^[0-9a-f]{16}$")   # the channel's position
        self.assertIsInstance(ack.pop("seq", None), int)
        self.assertEqual(ack, {"type": "ack", "id": channel})


class ReloadTest(ReloadTestCase):

    def test_new_token_is_admitted_after_sighup(self):
        self.start()
        _, response = self.connect(CAROL, "d1")
        self.assert_http_reject(response, "HTTP/1.1 403 Forbidden", 4003, "invalid token")
        self.rewrite(tokens=BASE_TOKENS + [token("carol", CAROL)])
        line = self.reload_by_signal()
        self.assertRegex(line, r"by=SIGHUP .*tokens=3 sessions=0 revoked=0 needs_restart=0")
        self.open_session("carol", "d1", token=CAROL)
        self.assertNotIn(CAROL, self.server.log())

    def test_removed_token_closes_its_sessions_4004_and_spares_the_others(self):
        self.start()
        alice1, _ = self.open_session("alice", "d1")
        alice2, _ = self.open_session("alice", "d2")
        bob, bob_id = self.open_session("bob", "d1")
        self.subscribe(bob, "news")
        ids_before = self.session_ids()
        # queued before the reload: each must still arrive, before any close
        for user, data in (("alice", "for alice"), ("bob", "for bob")):
            response = self.http("POST", "/api/send", {"user": user, "data": data}, api_key=API_KEY)
            self.assertEqual(response.body, b'{"delivered":%d}' % (2 if user == "alice" else 1))
        self.rewrite(tokens=[token("bob", TOKENS["bob"])])
        response = self.reload_by_api()
        self.assertEqual(response.status, 200, repr(response))
        self.assertEqual(json.loads(response.body),
                         {"reloaded": True, "sessions": 1, "revoked": 2, "needs_restart": []})
        for client in (alice1, alice2):
            message = client.recv_json()
            self.assertEqual((message["type"], message["data"]), ("message", "for alice"))
            self.assertEqual(client.expect_close(), REVOKED)
        self.assertEqual(bob.recv_json()["data"], "for bob")
        # bob: same session, still subscribed, still talking
        self.assertEqual(self.session_ids(), {("bob", "d1"): bob_id})
        self.assertEqual(ids_before[("bob", "d1")], bob_id)
        self.assert_alive(bob)
        response = self.http("POST", "/api/publish", {"channel": "news", "data": 1}, api_key=API_KEY)
        self.assertEqual(response.body, b'{"delivered":1,"seq":1}')
        self.assertEqual(bob.recv_json()["channel"], "news")
        _, response = self.connect(TOKENS["alice"], "d3")
        self.assert_http_reject(response, "HTTP/1.1 403 Forbidden", 4003, "invalid token")
        closes = [l for l in self.server.log_lines("session_close") if "code=4004" in l]
        self.assertEqual(len(closes), 2, self.server.log())
        self.assertEqual(self.metrics()['wsgate_closes_total{code="4004"}'], 2)

    def test_permission_change_drops_subscriptions_no_longer_allowed(self):
        self.start()
        alice, alice_id = self.open_session("alice", "d1")
        self.subscribe(alice, "news")
        self.subscribe(alice, "chat.x")
        self.rewrite(tokens=[token("alice", TOKENS["alice"], subscribe=["chat.*"]),
                             token("bob", TOKENS["bob"])])
        self.reload_by_signal()
        self.assertEqual(alice.recv_json(), {
            "type": "error", "code": "forbidden", "channel": "news",
            "message": "subscription ended: no longer allowed to subscribe to this channel"})
        response = self.http("POST", "/api/publish", {"channel": "news", "data": 1}, api_key=API_KEY)
        self.assertEqual(response.body, b'{"delivered":0,"seq":1}')
        response = self.http("POST", "/api/publish", {"channel": "chat.x", "data": 2}, api_key=API_KEY)
        self.assertEqual(response.body, b'{"delivered":1,"seq":1}')
        self.assertEqual(alice.recv_json()["data"], 2)
        # the next request sees the new permissions too
        alice.send_text('{"type":"subscribe","channel":"news","id":1}')
        self.assertEqual(alice.recv_json()["code"], "forbidden")
        self.assertEqual(self.session_ids(), {("alice", "d1"): alice_id})

    def test_file_opened_to_others_is_refused_and_changes_nothing(self):
        self.start()
        alice, alice_id = self.open_session("alice", "d1")
        expected = ("%s: holds tokens or API keys and is accessible by others (mode 0604); "
                    "chmod o-rwx it (600, or 640 with the server's group)" % self.server.conf_path)
        os.chmod(self.server.conf_path, 0o604)
        line = self.reload_by_signal("reload_failed")
        self.assertIn(expected.replace('"', '\\"'), line)
        response = self.reload_by_api()
        self.assertEqual(response.status, 400, repr(response))
        self.assertEqual(json.loads(response.body), {"error": expected})
        self.assert_alive(alice)
        self.assertEqual(self.session_ids(), {("alice", "d1"): alice_id})
        os.chmod(self.server.conf_path, 0o640)
        self.assertEqual(self.reload_by_api().status, 200)

    def test_broken_files_are_refused_and_change_nothing(self):
        self.start()
        alice, alice_id = self.open_session("alice", "d1")
        with open(self.server.conf_path) as f:
            good = f.read()
        cases = [
            (good.replace("heartbeat = {", "heartbeat = {{"), "heartbeat = {{", "syntax error"),
            (good.replace("interval_ms = 25000", 'interval_ms = "25000"'), "interval_ms",
             "key 'heartbeat.interval_ms' must be an integer between 100 and 3600000"),
            (good + "listne = { port = 1; };\n", "listne", "unknown key 'listne'"),
        ]
        failed = 0
        for text, needle, message in cases:
            self.rewrite(text)
            expected = "%s:%d: %s" % (self.server.conf_path, line_of(text, needle), message)
            line = self.reload_by_signal("reload_failed")
            self.assertIn("by=SIGHUP", line)
            self.assertIn(expected.replace('"', '\\"'), line)
            response = self.reload_by_api()
            self.assertEqual(response.status, 400, repr(response))
            self.assertEqual(json.loads(response.body), {"error": expected})
            failed += 2
            self.assert_alive(alice)
        self.assertEqual(self.session_ids(), {("alice", "d1"): alice_id})
        metrics = self.metrics()
        self.assertEqual(metrics['wsgate_reloads_total{result="failed"}'], failed)
        self.assertEqual(metrics['wsgate_reloads_total{result="ok"}'], 0)
        self.assertEqual(self.server.log_lines("reload"), [])
        # the running config is intact: a fixed file reloads, and bob still gets in
        self.rewrite(good)
        self.assertEqual(self.reload_by_api().status, 200)
        self.open_session("bob", "d1")
        self.assertEqual(self.metrics()['wsgate_reloads_total{result="ok"}'], 1)

    def test_keys_that_need_a_restart_keep_their_running_value(self):
        self.start()
        alice, _ = self.open_session("alice", "d1")
        config = dict(self.server.config)
        config["listen"] = {"address": "127.0.0.1", "port": self.server.port + 1, "reuse_port": True}
        config["websocket"] = {"path": "/other", "max_message_bytes": 65536}
        config["heartbeat"] = {"interval_ms": 5000, "timeout_ms": 1000}
        self.rewrite(to_libconfig(config))
        response = self.reload_by_api()
        self.assertEqual(json.loads(response.body)["needs_restart"],
                         ["listen.port", "listen.reuse_port", "websocket.path"])
        for key in ("listen.port", "listen.reuse_port", "websocket.path"):
            self.server.wait_for_log(r"level=warn event=reload key=%s msg=\"[^\"]*needs restart" % re.escape(key))
        self.assert_alive(alice)
        # still on the old port and path; the reloadable heartbeat took effect for new sessions
        client, response = self.connect(TOKENS["bob"], "d1")
        self.assert_upgraded(response)
        self.assertEqual(client.recv_json()["heartbeat_ms"], 5000)

    def test_heartbeat_change_applies_to_open_sessions(self):
        self.start()
        client, _ = self.open_session("alice", "d1")
        self.assertEqual(client.expect_silence(0.3), 0)     # 25 s interval: no ping yet
        config = dict(self.server.config, heartbeat={"interval_ms": 300, "timeout_ms": 300})
        self.rewrite(to_libconfig(config))
        since = time.monotonic()
        self.reload_by_signal()
        frame = client.recv_frame(timeout=2)
        self.assertEqual(frame.opcode, 0x9, repr(frame))       # a ping, at the new interval
        self.assertLess(frame.time - since, 0.5)
        # a client that stops answering is closed after the new timeout
        self.assertEqual(client.expect_close(timeout=2), (4100, "heartbeat timeout"))

    def test_tokens_file_is_reloaded(self):
        tokens_path = os.path.join(self.workdir, "tokens.conf")

        def write_tokens(entries, mode=0o600):
            text = to_libconfig({"tokens": entries})
            with open(tokens_path, "w") as f:
                f.write(text)
            os.chmod(tokens_path, mode)
            return text

        write_tokens(BASE_TOKENS)
        server = WsgateServer(self.workdir, {"api": {"keys": [API_KEY]}, "tokens_file": "tokens.conf"})
        del server.config["tokens"]  # the default config has them: one place only
        text = to_libconfig(server.config)
        with open(server.conf_path, "w") as f:
            f.write(text)
        server.start()
        self.addCleanup(self._stop_and_check, server)
        self.server = server
        alice, _ = self.open_session("alice", "d1")
        write_tokens([token("alice", TOKENS["alice"]), token("carol", CAROL)])
        self.reload_by_signal()
        self.open_session("carol", "d1", token=CAROL)
        self.assert_alive(alice)
        write_tokens([token("alice", TOKENS["alice"])], mode=0o644)
        response = self.reload_by_api()
        self.assertEqual(response.status, 400)
        self.assertEqual(json.loads(response.body)["error"],
                         "%s:%d: key 'tokens_file': '%s' is readable by others than its owner (mode 0644); "
                         "chmod 600 it" % (self.server.conf_path, line_of(text, "tokens_file"), tokens_path))
        text = write_tokens([token("alice", TOKENS["alice"]), {"token": CAROL, "user": "carol", "bad": 1}])
        response = self.reload_by_api()
        self.assertEqual(json.loads(response.body)["error"],
                         "%s:%d: unknown key 'tokens.[1].bad'" % (tokens_path, line_of(text, "bad =")))
        self.assert_alive(alice)

    def test_hundred_reloads_under_traffic_lose_nothing(self):
        self.start()
        clients = [self.open_session(user, "d%d" % i) for user in ("alice", "bob") for i in range(2)]
        for client, _ in clients:
            self.subscribe(client, "chat.room")
        ids = self.session_ids()
        with_carol = to_libconfig(dict(self.server.config, tokens=BASE_TOKENS + [token("carol", CAROL)]))
        without = to_libconfig(dict(self.server.config, tokens=list(reversed(BASE_TOKENS))))
        seq = 0
        for i in range(100):
            self.rewrite(with_carol if i % 2 else without)
            if i % 4 == 0:
                self.server.send_signal(signal.SIGHUP)
            else:
                self.assertEqual(self.reload_by_api().status, 200)
            sender = clients[i % len(clients)][0]
            sender.send_text(json.dumps({"type": "publish", "channel": "chat.room", "data": i, "id": i}))
            seq += 1
            got_ack = False
            for client, _ in clients:
                for _ in range(2 if client is sender else 1):
                    message = client.recv_json()
                    if message["type"] == "ack":
                        self.assertEqual(message, {"type": "ack", "id": i, "delivered": 4})
                        got_ack = True
                    else:
                        self.assertEqual((message["data"], message["seq"]), (i, seq))
            self.assertTrue(got_ack)
        deadline = time.monotonic() + 3
        while self.metrics()['wsgate_reloads_total{result="ok"}'] < 100:
            self.assertLess(time.monotonic(), deadline, "reloads counted: %r" % self.metrics())
            time.sleep(0.02)
        self.assertEqual(self.session_ids(), ids)
        log = self.server.log()
        self.assertNotIn("level=error", log)
        self.assertEqual(self.metrics()['wsgate_reloads_total{result="failed"}'], 0)



class TlsReloadTest(ReloadTestCase):
    """Renewed certificate files at the same paths: a reload loads them into
    the live wss listener; sessions already up stay up."""

    @classmethod
    def setUpClass(cls):
        cls.certdir = tempfile.mkdtemp(prefix="wsgate-certs-")
        try:
            cls.first = gen_certs(os.path.join(cls.certdir, "first"))
            cls.second = gen_certs(os.path.join(cls.certdir, "second"))
        except Exception:
            shutil.rmtree(cls.certdir, True)
            raise

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.certdir, True)

    def install(self, source):
        for name in ("server.crt", "server.key"):
            target = os.path.join(self.workdir, name)
            shutil.copyfile(os.path.join(source, name), target)
            os.chmod(target, 0o600)

    def served_certificate(self):
        with socket.create_connection((HOST, self.server.tls_port), timeout=3) as sock:
            with client_ssl_context().wrap_socket(sock, server_hostname="localhost") as tls:
                return tls.getpeercert(binary_form=True)

    @staticmethod
    def der(directory):
        with open(os.path.join(directory, "server.crt")) as f:
            return ssl.PEM_cert_to_DER_cert(f.read())

    def test_renewed_certificate_is_served_after_reload(self):
        self.install(self.first)
        self.start(listen_tls={"cert": os.path.join(self.workdir, "server.crt"),
                               "key": os.path.join(self.workdir, "server.key")})
        self.assertEqual(self.served_certificate(), self.der(self.first))
        client, _ = self.open_session("alice", "d1", tls=True)
        self.install(self.second)
        line = self.reload_by_signal()
        self.assertIn("tls=reloaded", line)
        self.assertEqual(self.served_certificate(), self.der(self.second))
        self.assert_alive(client)                      # the session made with the old one
        self.cafile = os.path.join(self.second, "ca.crt")
        self.open_session("bob", "d1", tls=True)       # verified against the new CA
        self.assertNotIn("level=error", self.server.log())

    def test_broken_certificate_files_are_refused(self):
        self.install(self.first)
        self.start(listen_tls={"cert": os.path.join(self.workdir, "server.crt"),
                               "key": os.path.join(self.workdir, "server.key")})
        # a new certificate with the old key: refused at load, the old pair stays in force
        shutil.copyfile(os.path.join(self.second, "server.crt"), os.path.join(self.workdir, "server.crt"))
        response = self.reload_by_api()
        self.assertEqual(response.status, 400)
        self.assertIn("does not match the certificate", json.loads(response.body)["error"])
        self.assertEqual(self.served_certificate(), self.der(self.first))


if __name__ == "__main__":
    main()
