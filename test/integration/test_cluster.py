"""Cluster on Redis: three wsgate nodes on one redis-server (started here on a
free loopback port, no persistence). Repeat connect across nodes (4001),
replace-old across nodes (4002 on the old node), channel fan-out in seq order,
/api/send and /api/disconnect from any node, cluster-wide presence, a killed
node's claims expiring within claim_ttl_ms, and Redis going away and coming
back without restarting a node."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wsgate_harness import (HOST, TOKENS, WsgateServer, WsgateTestCase, free_port,  # noqa: E402
                            main, parse_metrics, http_request, run_binary, UnexpectedClose)

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
API_KEY = "cluster-test-api-key-0123"
CLAIM_TTL_MS = 1500


class Redis:
    """A throwaway redis-server on a loopback port, and a minimal RESP client."""

    def __init__(self, workdir):
        self.port = free_port()
        self.workdir = workdir
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", HOST, "--save", "", "--appendonly", "no",
             "--dir", self.workdir, "--logfile", os.path.join(self.workdir, "redis-%d.log" % self.port)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 5
        while True:
            try:
                if self.command("PING") == "PONG":
                    return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("redis-server did not start on port %d" % self.port)
            time.sleep(0.05)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def command(self, *args):
        with socket.create_connection((HOST, self.port), timeout=2) as s:
            out = b"*%d\r\n" % len(args)
            for a in args:
                a = a.encode() if isinstance(a, str) else a
                out += b"$%d\r\n%s\r\n" % (len(a), a)
            s.sendall(out)
            f = s.makefile("rb")
            return self._read(f)

    def _read(self, f):
        line = f.readline().rstrip(b"\r\n")
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise AssertionError("redis error: %s" % rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = f.read(n + 2)[:-2]
            return data.decode()
        if kind == b"*":
            return [self._read(f) for _ in range(int(rest))]
        raise AssertionError("bad RESP %r" % line)


def tokens():
    return [
        {"token": TOKENS["alice"], "user": "alice", "subscribe": ["news"], "publish": ["news"],
         "send": ["*"]},
        {"token": TOKENS["bob"], "user": "bob", "subscribe": ["news"], "publish": ["news"]},
    ]


@unittest.skipUnless(os.access(REDIS_SERVER, os.X_OK),
                     "redis-server not installed (scripts/install-deps.sh --test installs it)")
class ClusterTest(WsgateTestCase):

    def setUp(self):
        super().setUp()
        self.redis = Redis(self.workdir).start()
        self.addCleanup(self.redis.stop)

    def node(self, name, on_repeat="reject-new", on_redis_down="refuse", redis_port=None):
        server = WsgateServer(self.workdir, {
            "sessions": {"on_repeat": on_repeat},
            "api": {"keys": [API_KEY]},
            "tokens": tokens(),
            "cluster": {"redis": "redis://%s:%d/0" % (HOST, redis_port or self.redis.port), "node": name,
                        "on_redis_down": on_redis_down, "claim_ttl_ms": CLAIM_TTL_MS},
        })
        server.start()
        self.addCleanup(self._stop_and_check, server)
        server.wait_for_log(r"event=cluster_redis_up .*node=%s" % name)
        return server

    def nodes(self, count=3, **kw):
        return [self.node("n%d" % (i + 1), **kw) for i in range(count)]

    def api(self, server, method, path, body=None):
        return http_request(server.port, method, path, body, api_key=API_KEY)

    def subscribe(self, client, channel="news"):
        client.send_text(json.dumps({"type": "subscribe", "id": 1, "channel": channel}))
        ack = client.recv_json()
        self.assertEqual((ack["type"], ack["id"]), ("ack", 1), ack)
        return ack

    def wait_subscribed(self, channel, nodes_expected):
        """Until Redis counts that many node subscriptions of the channel."""
        deadline = time.monotonic() + 3
        name = "wsgate:0:ch:" + channel
        while True:
            got = self.redis.command("PUBSUB", "NUMSUB", name)[1]
            if got == nodes_expected:
                return
            if time.monotonic() > deadline:
                self.fail("Redis has %d subscriptions of %s, not %d" % (got, name, nodes_expected))
            time.sleep(0.02)

    # -- one session per (user, device), cluster-wide --------------------------------------

    def test_repeat_connect_on_another_node_gets_4001(self):
        n1, n2, n3 = self.nodes()
        first, sid = self.open_session("alice", "d1", server=n1)
        self.assertEqual(self.redis.command("GET", "wsgate:claim:alice/d1"), "n1/" + sid)
        for other in (n2, n3):
            client, response = self.connect(TOKENS["alice"], "d1", server=other)
            self.assert_close_reject(client, response, 4001, "repeat connect channel")
        self.assert_alive(first)
        # another device of the same user is a different key
        self.open_session("alice", "d2", server=n2)
        # the first goes away: the key is free on every node at once
        self.close_by_client(first)
        deadline = time.monotonic() + 2
        while self.redis.command("GET", "wsgate:claim:alice/d1") is not None:
            self.assertLess(time.monotonic(), deadline, "claim not released")
            time.sleep(0.02)
        self.open_session("alice", "d1", server=n3)

    def test_simultaneous_connects_on_two_nodes_admit_exactly_one(self):
        n1, n2, _ = self.nodes()
        for i in range(20):
            device = "race%d" % i
            clients = []
            for server in (n1, n2):  # both handshakes sent before either is read
                client = self.raw(server)
                client.send_raw(("GET /ws?token=%s&device=%s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                                 "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                 "Sec-WebSocket-Version: 13\r\n\r\n" % (TOKENS["alice"], device)).encode())
                clients.append(client)
            outcomes = []
            for client in clients:
                self.assert_upgraded(client.read_http_response())
                try:
                    self.assertTrue(client.recv_text().startswith('{"type":"welcome"'))
                    outcomes.append("welcome")
                except UnexpectedClose as e:
                    self.assertEqual((e.code, e.reason), (4001, b"repeat connect channel"))
                    outcomes.append(4001)
            self.assertEqual(sorted(outcomes, key=str), [4001, "welcome"], device)

    def test_replace_old_across_nodes_closes_the_old_with_4002(self):
        n1, n2, _ = self.nodes(on_repeat="replace-old")
        old, old_sid = self.open_session("alice", "d1", server=n1)
        new, new_sid = self.open_session("alice", "d1", server=n2)
        self.assertEqual(old.expect_close(), (4002, "replaced by new connection"))
        self.assert_alive(new)
        self.assertEqual(self.redis.command("GET", "wsgate:claim:alice/d1"), "n2/" + new_sid)
        time.sleep(0.2)  # the old one's release must not free the new claim
        self.assertEqual(self.redis.command("GET", "wsgate:claim:alice/d1"), "n2/" + new_sid)
        self.assertEqual(parse_metrics(self.api(n1, "GET", "/metrics").body.decode())
                         ["wsgate_cluster_replaced_total"], 1)

    # -- fan-out -----------------------------------------------------------------------------

    def test_publish_on_one_node_reaches_every_node_in_seq_order(self):
        n1, n2, n3 = self.nodes()
        subs = []
        for server, user in ((n2, "alice"), (n3, "bob"), (n3, "alice")):
            client, _ = self.open_session(user, "d-%d" % server.port, server=server)
            self.subscribe(client)
            subs.append(client)
        # an ack comes only once the node's Redis subscription is live: one per node, not per session
        self.assertEqual(self.redis.command("PUBSUB", "NUMSUB", "wsgate:0:ch:news")[1], 2)
        publisher, _ = self.open_session("bob", "pub", server=n1)
        for i in range(1, 21):
            if i % 2:
                r = self.api(n1, "POST", "/api/publish", {"channel": "news", "data": {"i": i}})
                self.assertEqual((r.status, r.body), (202, b'{"accepted":true,"seq":%d}' % i))
            else:
                publisher.send_text(json.dumps({"type": "publish", "id": i, "channel": "news",
                                                "data": {"i": i}}))
                self.assertEqual(publisher.recv_json(), {"type": "ack", "id": i})
        for client in subs:
            for i in range(1, 21):
                text = client.recv_text()
                msg = json.loads(text)
                self.assertEqual(msg["seq"], i, text)
                self.assertEqual(msg["data"], {"i": i}, text)
                prefix = '{"type":"message","channel":"news","from":%s,"data":{"i":%d},"seq":%d,"ts":' % (
                    '"bob"' if i % 2 == 0 else "null", i, i)
                self.assertTrue(text.startswith(prefix), text)
                self.assertTrue(re.fullmatch(r'.*"ts":\d{13}\}', text), text)
        self.assertEqual(self.redis.command("GET", "wsgate:seq:news"), "20")
        # the channel's history is in Redis: any node answers it, with the cluster's seqs
        r = self.api(n1, "GET", "/api/history?channel=news&since=15")
        self.assertEqual(r.status, 200, r)
        history = json.loads(r.body)
        self.assertEqual((history["seq"], history["complete"]), (20, True), history)
        self.assertEqual([m["seq"] for m in history["messages"]], [16, 17, 18, 19, 20])
        # the last subscriber on n3 leaves: n3 drops its one subscription; n2 keeps its own
        for client in subs[1:]:
            self.close_by_client(client)
        self.wait_subscribed("news", 1)

    def test_send_and_disconnect_from_any_node(self):
        n1, n2, n3 = self.nodes()
        b1, _ = self.open_session("bob", "d1", server=n2)
        b2, _ = self.open_session("bob", "d2", server=n3)
        b3, _ = self.open_session("bob", "d3", server=n1)
        r = self.api(n1, "POST", "/api/send", {"user": "bob", "data": "hi"})
        self.assertEqual((r.status, r.body), (202, b'{"accepted":true}'))
        for client in (b1, b2, b3):
            self.assertTrue(re.fullmatch(r'\{"type":"message","from":null,"to":"bob","data":"hi","ts":\d{13}\}',
                                         client.recv_text()))
        # a client's send on n3 reaches bob on n1 and n2
        alice, _ = self.open_session("alice", "d1", server=n3)
        alice.send_text(json.dumps({"type": "send", "id": 7, "to": "bob", "data": 1}))
        self.assertEqual(alice.recv_json(), {"type": "ack", "id": 7})
        for client in (b1, b2, b3):
            self.assertEqual(json.loads(client.recv_text())["from"], "alice")
        # one device, from a node that has none of bob's sessions
        n4 = self.node("n4")
        r = self.api(n4, "POST", "/api/disconnect", {"user": "bob", "device": "d2", "code": 4005,
                                                      "reason": "bye d2"})
        self.assertEqual((r.status, r.body), (202, b'{"accepted":true}'))
        self.assertEqual(b2.expect_close(), (4005, "bye d2"))
        self.assert_alive(b1)
        r = self.api(n2, "POST", "/api/disconnect", {"user": "bob", "code": 4005})
        self.assertEqual(r.status, 202)
        self.assertEqual(b1.expect_close(), (4005, "disconnected by the application"))
        self.assertEqual(b3.expect_close(), (4005, "disconnected by the application"))
        self.assert_alive(alice)

    def test_presence_for_the_whole_cluster(self):
        n1, n2, n3 = self.nodes()
        a, a_sid = self.open_session("alice", "d1", server=n1)
        b, b_sid = self.open_session("bob", "d1", server=n2)
        self.open_session("bob", "d2", server=n3)
        self.subscribe(a)
        self.subscribe(b)
        # presence is written to Redis asynchronously by each node: wait until it shows
        deadline = time.monotonic() + 5
        while True:
            r = self.api(n3, "GET", "/api/sessions")
            self.assertEqual(r.status, 200, r)
            sessions = json.loads(r.body)["sessions"]
            subscribed = [s for s in sessions if s["session"] in (a_sid, b_sid) and s["channels"]]
            if len(sessions) == 3 and len(subscribed) == 2 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual(sorted((s["user"], s["device"], s["node"]) for s in sessions),
                         [("alice", "d1", "n1"), ("bob", "d1", "n2"), ("bob", "d2", "n3")])
        mine = [s for s in sessions if s["session"] == a_sid][0]
        self.assertEqual(mine["channels"], ["news"])
        self.assertEqual(mine["peer"], "127.0.0.1")
        r = self.api(n3, "GET", "/api/presence?channel=news")
        self.assertEqual(r.status, 200, r)
        body = json.loads(r.body)
        self.assertEqual(body["channel"], "news")
        self.assertEqual(sorted((s["session"], s["user"], s["node"]) for s in body["sessions"]),
                         sorted([(a_sid, "alice", "n1"), (b_sid, "bob", "n2")]))
        self.assertEqual(self.api(n1, "GET", "/api/presence").status, 400)
        self.close_by_client(b)
        deadline = time.monotonic() + 2
        while len(json.loads(self.api(n1, "GET", "/api/presence?channel=news").body)["sessions"]) != 1:
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.02)

    def test_reload_keeps_the_cluster_and_says_a_change_needs_restart(self):
        n1, n2 = self.nodes(2)
        client, sid = self.open_session("alice", "d1", server=n1)
        with open(n1.conf_path) as f:
            text = f.read()
        with open(n1.conf_path, "w") as f:
            f.write(text.replace('node = "n1"', 'node = "n9"'))
        n1.send_signal(signal.SIGHUP)
        n1.wait_for_log(r"event=reload .*key=cluster |key=cluster .*needs restart")
        self.assert_alive(client)
        self.assertEqual(self.redis.command("GET", "wsgate:claim:alice/d1"), "n1/" + sid)
        other, response = self.connect(TOKENS["alice"], "d1", server=n2)
        self.assert_close_reject(other, response, 4001, "repeat connect channel")

    # -- failures ----------------------------------------------------------------------------

    def test_killed_node_loses_its_claims_within_the_ttl(self):
        n1 = WsgateServer(self.workdir, {
            "tokens": tokens(),
            "cluster": {"redis": "redis://%s:%d/0" % (HOST, self.redis.port), "node": "n1",
                        "claim_ttl_ms": CLAIM_TTL_MS}}).start()
        self.addCleanup(n1.kill)
        n1.wait_for_log(r"event=cluster_redis_up")
        n2 = self.node("n2")
        self.open_session("alice", "d1", server=n1)
        n1.kill()  # SIGKILL: no goodbye to Redis
        killed = time.monotonic()
        client, response = self.connect(TOKENS["alice"], "d1", server=n2)
        self.assert_close_reject(client, response, 4001, "repeat connect channel")
        while True:
            client, response = self.connect(TOKENS["alice"], "d1", server=n2)
            self.assert_upgraded(response)
            try:
                self.assertTrue(client.recv_text().startswith('{"type":"welcome"'))
                break
            except UnexpectedClose as e:
                self.assertEqual((e.code, e.reason), (4001, b"repeat connect channel"))
            elapsed = time.monotonic() - killed
            self.assertLess(elapsed, CLAIM_TTL_MS / 1000 + 0.5, "claim outlived claim_ttl_ms")
            time.sleep(0.1)
        elapsed = time.monotonic() - killed
        self.assertLess(elapsed, CLAIM_TTL_MS / 1000 + 0.5)
        self.assertGreater(elapsed, CLAIM_TTL_MS / 1000 / 3)
        # the survivor's next renewal reaps what n1 left in Redis
        deadline = time.monotonic() + CLAIM_TTL_MS / 1000 + 1
        while self.redis.command("SISMEMBER", "wsgate:nodes", "n1"):
            self.assertLess(time.monotonic(), deadline, "dead node not reaped")
            time.sleep(0.05)
        self.assertEqual(self.redis.command("EXISTS", "wsgate:sessions:n1"), 0)

    def test_a_lapsed_node_claims_again_and_a_shared_node_name_is_reported(self):
        n1 = self.node("n1")
        client, sid = self.open_session("alice", "d1", server=n1)
        # as if this node's key had expired and another node had reaped its claims
        self.redis.command("DEL", "wsgate:node:n1", "wsgate:claim:alice/d1")
        n1.wait_for_log(r"event=cluster_claims_lapsed node=n1", timeout=CLAIM_TTL_MS / 1000 + 1)
        deadline = time.monotonic() + 2
        while self.redis.command("GET", "wsgate:claim:alice/d1") != "n1/" + sid:
            self.assertLess(time.monotonic(), deadline, "not claimed again")
            time.sleep(0.02)
        self.assert_alive(client)
        self.redis.command("SET", "wsgate:node:n1", "another-process", "PX", "60000")
        n1.wait_for_log(r"event=cluster_node_taken node=n1", timeout=CLAIM_TTL_MS / 1000 + 1)

    def test_clean_stop_frees_claims_at_once(self):
        n1 = WsgateServer(self.workdir, {
            "tokens": tokens(),
            "cluster": {"redis": "redis://%s:%d/0" % (HOST, self.redis.port), "node": "n1",
                        "claim_ttl_ms": 60000}}).start()
        n1.wait_for_log(r"event=cluster_redis_up")
        n2 = self.node("n2")
        client, _ = self.open_session("alice", "d1", server=n1)
        rc, log = n1.stop()
        self.assertEqual(rc, 0, log)
        self.assertIn("event=cluster_left node=n1", log)
        self.open_session("alice", "d1", server=n2)

    def test_the_handshake_waits_for_the_claim_and_a_silent_redis_counts_as_down(self):
        n1 = self.node("n1")
        self.redis.proc.send_signal(signal.SIGSTOP)
        self.addCleanup(lambda: self.redis.proc.poll() is None and self.redis.proc.send_signal(signal.SIGCONT))
        # held after the 101: no welcome, and what it sends waits
        client, response = self.connect(TOKENS["alice"], "d1", server=n1)
        self.assert_upgraded(response)
        client.send_text("ping")
        # a listing waiting for Redis whose client leaves first: its answer is dropped when it comes
        leaver = self.raw(n1)
        leaver.send_raw(("GET /api/sessions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n"
                         % API_KEY).encode())
        self.assertEqual(client.expect_silence(0.3), 0)
        leaver.close()
        time.sleep(0.05)
        self.redis.proc.send_signal(signal.SIGCONT)
        self.assertTrue(client.recv_text().startswith('{"type":"welcome"'))
        self.assertEqual(client.recv_text(), "pong")
        # a Redis that stops answering: after 2/3 of claim_ttl_ms without a renewal answer it is down,
        # and the connection waiting for its claim follows on_redis_down
        self.redis.proc.send_signal(signal.SIGSTOP)
        stopped = time.monotonic()
        waiting, response = self.connect(TOKENS["bob"], "d1", server=n1)
        self.assert_upgraded(response)
        self.assertEqual(waiting.expect_close(timeout=CLAIM_TTL_MS / 1000 + 1), (1013, "try again later"))
        self.assertLess(time.monotonic() - stopped, CLAIM_TTL_MS / 1000 + 0.5)
        n1.wait_for_log(r"event=cluster_redis_down .*no answer to the renewal")
        self.assert_alive(client)
        self.redis.proc.send_signal(signal.SIGCONT)
        n1.wait_for_log(r"event=cluster_redis_up .*reclaimed=1", timeout=5)
        self.open_session("bob", "d1", server=n1)
        r = self.api(n1, "GET", "/api/sessions")
        self.assertEqual(sorted(x["user"] for x in json.loads(r.body)["sessions"]), ["alice", "bob"])

    def test_redis_down_and_back(self):
        n1 = self.node("n1", on_redis_down="refuse")
        n2 = self.node("n2", on_redis_down="local")
        a1, _ = self.open_session("alice", "d1", server=n1)
        self.subscribe(a1)
        self.wait_subscribed("news", 1)
        for i in (1, 2):
            self.assertEqual(self.api(n2, "POST", "/api/publish", {"channel": "news", "data": i}).status, 202)
            self.assertEqual(json.loads(a1.recv_text())["seq"], i)
        self.redis.stop()
        n1.wait_for_log(r"event=cluster_redis_down .*node=n1")
        n2.wait_for_log(r"event=cluster_redis_down .*node=n2")
        # local traffic goes on
        self.assert_alive(a1)
        r = self.api(n1, "POST", "/api/send", {"user": "alice", "data": "local"})
        self.assertEqual((r.status, r.body), (200, b'{"delivered":1}'))
        self.assertTrue(a1.recv_text().startswith('{"type":"message","from":null,"to":"alice","data":"local"'))
        a1.send_text(json.dumps({"type": "publish", "id": 3, "channel": "news", "data": 0}))
        self.assertEqual(a1.recv_json()["code"], "unavailable")
        r = self.api(n1, "POST", "/api/publish", {"channel": "news", "data": 0})
        self.assertEqual(r.status, 503)
        self.assertEqual(self.api(n1, "GET", "/api/sessions").status, 503)
        # new connections: refused on n1, admitted on local knowledge on n2
        client, response = self.connect(TOKENS["bob"], "d1", server=n1)
        self.assert_close_reject(client, response, 1013, "try again later")
        b2, _ = self.open_session("bob", "d2", server=n2)
        n2.wait_for_log(r"event=cluster_admit_local user=bob device=d2")
        health = self.api(n1, "GET", "/healthz")
        self.assertEqual(health.status, 503)
        self.assertEqual(json.loads(health.body)["cluster"]["redis"], "down")
        self.assertEqual(self.api(n2, "GET", "/healthz").status, 200)
        m = parse_metrics(self.api(n1, "GET", "/metrics").body.decode())
        self.assertEqual(m["wsgate_cluster_redis_up"], 0)
        self.assertEqual(m['wsgate_cluster_redis_down_admissions_total{action="refused"}'], 1)
        # Redis comes back (empty, on the same port): the nodes reconnect, re-claim, re-subscribe
        self.redis.start()
        for server in (n1, n2):
            deadline = time.monotonic() + 5
            while parse_metrics(self.api(server, "GET", "/metrics").body.decode())[
                    "wsgate_cluster_redis_up"] != 1:
                self.assertLess(time.monotonic(), deadline, "node did not reconnect")
                time.sleep(0.05)
        deadline = time.monotonic() + 3
        while self.redis.command("GET", "wsgate:claim:bob/d2") is None:
            self.assertLess(time.monotonic(), deadline, "sessions not re-claimed")
            time.sleep(0.05)
        client, response = self.connect(TOKENS["alice"], "d1", server=n2)
        self.assert_close_reject(client, response, 4001, "repeat connect channel")
        client, response = self.connect(TOKENS["bob"], "d2", server=n1)
        self.assert_close_reject(client, response, 4001, "repeat connect channel")
        self.wait_subscribed("news", 1)
        r = self.api(n2, "POST", "/api/publish", {"channel": "news", "data": "back"})
        self.assertEqual(r.status, 202)
        # the new Redis knows no seq: it goes on from what the subscribers got, never back to 1
        msg = json.loads(a1.recv_text())
        self.assertEqual((msg["data"], msg["seq"]), ("back", 3))
        self.assert_alive(b2)


class ClusterConfigTest(WsgateTestCase):

    def check(self, cluster, message):
        server = WsgateServer(self.workdir, {"cluster": cluster})
        result = run_binary(["-t", "-c", server.conf_path])
        self.assertNotEqual(result.returncode, 0)
        self.assertIn(message, result.stderr + result.stdout)
        self.assertNotIn("s3cret", result.stderr + result.stdout)

    def test_bad_cluster_configs_are_refused(self):
        self.check({"redis": "rediss://:s3cret@127.0.0.1:6380/0", "node": "n1"}, "is not supported")
        self.check({"redis": "redis://:s3cret@127.0.0.1:99999/0", "node": "n1"},
                   "key 'cluster.redis' must have a port from 1 to 65535")
        self.check({"redis": "redis://127.0.0.1:6379/16", "node": "n1"}, "database number from 0 to 15")
        self.check({"redis": "redis://127.0.0.1:6379/0", "node": "a/b"}, "key 'cluster.node' must be")
        self.check({"redis": "redis://127.0.0.1:6379/0"}, "key 'cluster.node' must be")
        self.check({"redis": "redis://127.0.0.1:6379/0", "node": "n1", "on_redis_down": "x"},
                   "key 'cluster.on_redis_down' must be \"refuse\" or \"local\"")
        self.check({"redis": "redis://127.0.0.1:6379/0", "node": "n1", "claim_ttl_ms": 10},
                   "key 'cluster.claim_ttl_ms' must be an integer between 300 and 600000")
        self.check({"redis": "redis://127.0.0.1:6379/0", "node": "n1", "nope": 1}, "unknown key 'cluster.nope'")
        self.check({"node": "n1"}, "key 'cluster.redis' must be a string")

    def test_without_cluster_no_redis_is_touched(self):
        # the shipped file's group: on_redis_down and claim_ttl_ms, no redis
        server = self.start_server(cluster={"on_redis_down": "refuse", "claim_ttl_ms": 15000}, tokens=tokens(),
                                   api={"keys": [API_KEY]})
        client, sid = self.open_session("alice", "d1")
        client.send_text(json.dumps({"type": "subscribe", "id": 1, "channel": "news"}))
        self.assertEqual(client.recv_json()["type"], "ack")
        r = http_request(server.port, "GET", "/api/presence?channel=news", api_key=API_KEY)
        self.assertEqual((r.status, json.loads(r.body)), (200, {"channel": "news", "sessions": [
            {"session": sid, "user": "alice", "device": "d1"}]}))
        r = http_request(server.port, "POST", "/api/publish", {"channel": "news", "data": 1}, api_key=API_KEY)
        self.assertEqual((r.status, r.body), (200, b'{"delivered":1,"seq":1}'))
        self.assertNotIn("cluster", server.log())
        health = json.loads(self.http("GET", "/healthz").body)
        self.assertNotIn("cluster", health)
        self.assertNotIn("wsgate_cluster_redis_up", self.metrics())


if __name__ == "__main__":
    main()
