"""History and recovery in a cluster (issue 18 on top of issue 17): a channel's
history is a Redis stream, its seq and epoch are in Redis, so a client that
drops on one node recovers on any other, a node restart keeps the epoch, and
the answers are the same as on one node: "recovered":true with exactly what
was missed then the live ones, or "recovered":false with the current position
when the history is too short, expired or of another epoch."""

import json
import os
import signal
import time
import unittest

from test_cluster import API_KEY, REDIS_SERVER, Redis
from test_history import EPOCH_RE, HistoryTestBase, history_tokens
from wsgate_harness import HOST, WsgateServer, main, parse_metrics, http_request


@unittest.skipUnless(os.access(REDIS_SERVER, os.X_OK),
                     "redis-server not installed (scripts/install-deps.sh --test installs it)")
class ClusterHistoryTest(HistoryTestBase):

    def setUp(self):
        super().setUp()
        self.redis = Redis(self.workdir).start()
        self.addCleanup(self.redis.stop)

    def node(self, name, **overrides):
        config = {
            "sessions": {"on_repeat": "replace-old"},
            "api": {"keys": [API_KEY]},
            "tokens": history_tokens(),
            "limits": {"messages_per_second": 1000000, "burst": 1000000,
                       "max_queued_bytes": 16 * 1024 * 1024},
            "history_channels": [{"channel": "short.**", "size": 10},
                                 {"channel": "brief.**", "ttl_ms": 400},
                                 {"channel": "race.**", "size": 10000}],
            "cluster": {"redis": "redis://%s:%d/0" % (HOST, self.redis.port), "node": name,
                        "claim_ttl_ms": 1500},
        }
        config.update(overrides)
        server = WsgateServer(self.workdir, config)
        server.start()
        self.addCleanup(self._stop_and_check, server)
        server.wait_for_log(r"event=cluster_redis_up .*node=%s" % name)
        return server

    def publish(self, server, channel, data):
        r = http_request(server.port, "POST", "/api/publish", {"channel": channel, "data": data},
                         api_key=API_KEY)
        self.assertEqual(r.status, 202, r)
        body = json.loads(r.body)
        self.assertEqual(list(body), ["accepted", "seq"], body)
        return body["seq"]

    def history(self, server, query):
        r = http_request(server.port, "GET", "/api/history?" + query, api_key=API_KEY)
        return r.status, json.loads(r.body)

    def test_a_client_dropped_on_one_node_recovers_on_another(self):
        n1, n2 = self.node("n1"), self.node("n2")
        sub, _ = self.open_session("alice", "d1", server=n1)
        ack = self.subscribe(sub, "news")
        self.assertEqual(ack["seq"], 0)
        self.assertEqual(self.publish(n2, "news", "first"), 1)
        self.assertEqual(self.messages(sub, 1)[0]["seq"], 1)
        self.kill(sub)  # no close frame: n1 does not know yet
        for i in range(50):
            self.assertEqual(self.publish(n1 if i % 2 else n2, "news", i), i + 2)
        self.assertEqual(self.redis.command("XLEN", "wsgate:history:news"), 51)
        back, _ = self.open_session("alice", "d1", server=n2)  # replace-old: n1's stale one goes
        self.recover_the_fifty(back, ack["epoch"])
        self.assertEqual(self.publish(n1, "news", "live"), 52)
        live = self.messages(back, 1)[0]
        self.assertEqual((live["seq"], live["data"]), (52, "live"))
        back.expect_silence(0.15)
        m = parse_metrics(http_request(n2.port, "GET", "/metrics", api_key=API_KEY).body.decode())
        self.assertEqual(m['wsgate_recoveries_total{result="recovered"}'], 1)
        # a third node with no subscriber answers the history from Redis
        n3 = self.node("n3")
        status, body = self.history(n3, "channel=news&since=49&limit=2")
        self.assertEqual(status, 200, body)
        self.assertEqual((body["epoch"], body["seq"], body["complete"]), (ack["epoch"], 52, True))
        self.assertEqual([m["seq"] for m in body["messages"]], [50, 51])
        self.assertEqual(self.history(n3, "channel=nothing.here")[0], 404)

    def test_publishes_racing_a_recovery_on_another_node_leave_no_gap_and_no_duplicate(self):
        self.check_recovery_while_publishing(self.node("n1"), self.node("n2"))

    def test_deliveries_in_flight_around_the_answer_are_neither_lost_nor_doubled(self):
        """Redis paused while 300 publishes and then recovering subscribes queue up: on
        SIGCONT the publishes run first, and their deliveries reach n2 on the pub/sub
        connection while the answer comes on the command connection."""
        n1, n2 = self.node("n1"), self.node("n2")
        keeper, _ = self.open_session("bob", "keep", server=n2)  # n2 is subscribed already
        first = self.subscribe(keeper, "race.x")
        self.publish(n1, "race.x", "one")
        self.messages(keeper, 1)
        publisher, _ = self.open_session("bob", "pub", server=n1)
        comer, _ = self.open_session("alice", "d1", server=n2)
        plain, _ = self.open_session("alice", "d2", server=n2)
        self.addCleanup(lambda: self.redis.proc.poll() is None and self.redis.proc.send_signal(signal.SIGCONT))
        self.redis.proc.send_signal(signal.SIGSTOP)
        for i in range(300):
            publisher.send_text('{"type":"publish","channel":"race.x","data":%d}' % i)
        time.sleep(0.1)
        comer.send_text(json.dumps({"type": "subscribe", "channel": "race.x",
                                    "since": {"epoch": first["epoch"], "seq": 1}}))
        plain.send_text(json.dumps({"type": "subscribe", "channel": "race.x"}))
        time.sleep(0.1)
        self.redis.proc.send_signal(signal.SIGCONT)
        ack = json.loads(comer.recv_text())
        self.assertEqual((ack["type"], ack["recovered"]), ("ack", True), ack)
        # every seq after 1 exactly once, in order: the replay up to the ack's seq, then live
        self.assertEqual([m["seq"] for m in self.messages(comer, 300)], list(range(2, 302)))
        comer.expect_silence(0.2)
        # without since: nothing up to the ack's seq, everything after it
        ack = json.loads(plain.recv_text())
        self.assertEqual(ack["type"], "ack", ack)
        self.assertEqual([m["seq"] for m in self.messages(plain, 301 - ack["seq"])],
                         list(range(ack["seq"] + 1, 302)))
        plain.expect_silence(0.2)
        # a channel n2 has no subscription to yet: Redis confirms it and then hands n2 the 300
        # deliveries in one read, before the answer to the subscribe: they wait for it, and
        # those the replay holds are not sent twice
        watcher, _ = self.open_session("bob", "watch", server=n1)
        other = self.subscribe(watcher, "race.y")
        self.publish(n1, "race.y", "one")
        self.messages(watcher, 1)
        late, _ = self.open_session("alice", "d3", server=n2)
        self.redis.proc.send_signal(signal.SIGSTOP)
        late.send_text(json.dumps({"type": "subscribe", "channel": "race.y",
                                   "since": {"epoch": other["epoch"], "seq": 1}}))
        time.sleep(0.1)
        for i in range(300):
            publisher.send_text('{"type":"publish","channel":"race.y","data":%d}' % i)
        time.sleep(0.1)
        self.redis.proc.send_signal(signal.SIGCONT)
        ack = json.loads(late.recv_text())
        self.assertEqual((ack["type"], ack["recovered"]), ("ack", True), ack)
        self.assertEqual([m["seq"] for m in self.messages(late, 300)], list(range(2, 302)))
        late.expect_silence(0.2)

    def test_subscribes_waiting_for_redis_are_all_answered_in_order(self):
        """While Redis is paused: a subscribe then an unsubscribe of it, two subscribes of one
        channel, a repeated subscribe of a live subscription: every request is answered, in
        order, with a real position, and no message is lost or doubled."""
        n1, n2 = self.node("n1"), self.node("n2")
        publisher, _ = self.open_session("bob", "pub", server=n2)
        live, _ = self.open_session("alice", "d1", server=n1)
        self.subscribe(live, "news")
        for i in range(3):
            self.publish(n1, "news", i)
        self.assertEqual([m["seq"] for m in self.messages(live, 3)], [1, 2, 3])
        other, _ = self.open_session("bob", "d1", server=n1)
        self.addCleanup(lambda: self.redis.proc.poll() is None and self.redis.proc.send_signal(signal.SIGCONT))
        self.redis.proc.send_signal(signal.SIGSTOP)
        other.send_text(json.dumps({"type": "subscribe", "id": 1, "channel": "news"}))
        other.send_text(json.dumps({"type": "unsubscribe", "id": 2, "channel": "news"}))
        other.send_text(json.dumps({"type": "subscribe", "id": 3, "channel": "news"}))
        other.send_text(json.dumps({"type": "subscribe", "id": 4, "channel": "news"}))
        live.send_text(json.dumps({"type": "subscribe", "id": 5, "channel": "news"}))
        # answered from the node at once: an unsubscribe cannot wait
        first, second = json.loads(other.recv_text()), json.loads(other.recv_text())
        self.assertEqual((first["id"], first["seq"], second), (1, 3, {"type": "ack", "id": 2}))
        self.assertEqual(json.loads(live.recv_text())["id"], 5)  # live already: answered here too
        time.sleep(0.1)
        self.redis.proc.send_signal(signal.SIGCONT)
        # 3 is answered by Redis; 4 repeats a subscription live by then: answered here, after 3
        third, fourth = json.loads(other.recv_text()), json.loads(other.recv_text())
        self.assertEqual([(a["id"], a["epoch"], a["seq"]) for a in (third, fourth)],
                         [(3, first["epoch"], 3), (4, first["epoch"], 3)])
        publisher.send_text('{"type":"publish","channel":"news","data":"after"}')
        self.assertEqual([(m["seq"], m["data"]) for m in self.messages(other, 1)], [(4, "after")])
        self.assertEqual([(m["seq"], m["data"]) for m in self.messages(live, 1)], [(4, "after")])
        other.expect_silence(0.15)
        live.expect_silence(0.05)

    def test_what_the_history_cannot_cover_is_said_plainly(self):
        n1, n2 = self.node("n1"), self.node("n2")
        sub, _ = self.open_session("alice", "d1", server=n1)
        short = self.subscribe(sub, "short.x")
        brief = self.subscribe(sub, "brief.x")
        self.publish(n1, "short.x", "first")
        self.publish(n1, "brief.x", "first")
        self.messages(sub, 2)
        # brief.x loses its only subscriber (a ghost would keep it alive: a channel with subscribers
        # never expires); short.x's is cut off
        sub.send_text(json.dumps({"type": "unsubscribe", "channel": "brief.x"}))
        self.assertEqual(json.loads(sub.recv_text())["type"], "ack")
        left = time.monotonic()
        self.kill(sub)
        for i in range(50):
            self.publish(n2, "short.x", i)
        self.assertEqual(self.redis.command("XLEN", "wsgate:history:short.x"), 10)  # trimmed to size
        back, _ = self.open_session("alice", "d2", server=n2)
        again = self.subscribe(back, "short.x", since={"epoch": short["epoch"], "seq": 1})
        self.assertEqual((again["epoch"], again["seq"], again["recovered"]), (short["epoch"], 51, False))
        back.expect_silence(0.15)  # nothing replayed
        # another epoch (a client from elsewhere, or before a restart)
        other = self.subscribe(back, "short.x", since={"epoch": "0123456789abcdef", "seq": 51})
        self.assertEqual((other["seq"], other["recovered"]), (51, False))
        # expired: ttl_ms after its last publish and its last subscriber (the node keeps a subscribed
        # channel's keys for claim_ttl_ms at a time) the channel starts again with a new epoch
        time.sleep(max(0, left + 1.5 + 0.3 - time.monotonic()))
        self.assertIsNone(self.redis.command("GET", "wsgate:epoch:brief.x"))
        expired = self.subscribe(back, "brief.x", since={"epoch": brief["epoch"], "seq": 1})
        self.assertFalse(expired["recovered"], expired)
        self.assertEqual(expired["seq"], 0)
        self.assertNotEqual(expired["epoch"], brief["epoch"])
        self.assertRegex(expired["epoch"], "^%s$" % EPOCH_RE)
        self.assertEqual(self.publish(n1, "brief.x", "again"), 1)
        self.assertEqual(self.messages(back, 1)[0]["seq"], 1)
        m = parse_metrics(http_request(n2.port, "GET", "/metrics", api_key=API_KEY).body.decode())
        self.assertEqual(m['wsgate_recoveries_total{result="not_recovered"}'], 3)

    def test_a_node_restart_keeps_the_epoch_and_the_history(self):
        n1 = self.node("n1")
        sub, _ = self.open_session("alice", "d1", server=n1)
        ack = self.subscribe(sub, "news")
        for i in range(5):
            self.publish(n1, "news", i)
        self.messages(sub, 5)
        n1.stop()
        n1b = self.node("n1")
        back, _ = self.open_session("alice", "d1", server=n1b)
        again = self.subscribe(back, "news", since={"epoch": ack["epoch"], "seq": 2})
        self.assertEqual((again["epoch"], again["seq"], again["recovered"]), (ack["epoch"], 5, True))
        self.assertEqual([m["data"] for m in self.messages(back, 3)], [2, 3, 4])

    def test_with_redis_down_a_subscribe_is_answered_from_the_node(self):
        n1 = self.node("n1", cluster={"redis": "redis://%s:%d/0" % (HOST, self.redis.port), "node": "n1",
                                      "claim_ttl_ms": 1500, "on_redis_down": "local"})
        sub, _ = self.open_session("alice", "d1", server=n1)
        ack = self.subscribe(sub, "news")
        self.publish(n1, "news", "x")
        self.messages(sub, 1)
        self.redis.stop()
        n1.wait_for_log(r"event=cluster_redis_down .*node=n1")
        b, _ = self.open_session("bob", "d1", server=n1)
        same = self.subscribe(b, "news", since={"epoch": ack["epoch"], "seq": 1})
        self.assertEqual((same["epoch"], same["seq"], same["recovered"]), (ack["epoch"], 1, True))
        behind = self.subscribe(b, "news", since={"epoch": ack["epoch"], "seq": 0})
        self.assertEqual((behind["seq"], behind["recovered"]), (1, False))


if __name__ == "__main__":
    main()
