"""History and recovery (issue 18): a channel keeps its last messages (the
shared framed deliveries) for `history.ttl_ms`, up to `history.size`; a client
that comes back subscribes with "since" and gets exactly what it missed, in
order, then the live messages, or "recovered":false with the channel's current
position when the history does not cover it. GET /api/history for the backend;
POST /api/publish answers the message's seq; memory bounded and in /metrics."""

import contextlib
import json
import os
import socket
import struct
import threading
import time

from wsgate_harness import TOKENS, WsgateTestCase, main, vm_rss_kb

API_KEY = "history-test-api-key-0123"
EPOCH_RE = r"[0-9a-f]{16}"
ALL = ["**"]


def history_tokens():
    return [{"token": tok, "user": user, "subscribe": ALL, "publish": ALL, "send": ALL}
            for user, tok in TOKENS.items()]


class HistoryTestBase(WsgateTestCase):
    def start(self, **overrides):
        config = dict(tokens=history_tokens(), api={"keys": [API_KEY]},
                      limits={"messages_per_second": 1000000, "burst": 1000000,
                              "max_queued_bytes": 16 * 1024 * 1024})
        config.update(overrides)
        return self.start_server(**config)

    def api_publish(self, channel, data):
        response = self.http("POST", "/api/publish", {"channel": channel, "data": data},
                             api_key=API_KEY)
        self.assertEqual(response.status, 200, repr(response))
        return json.loads(response.body)

    def subscribe(self, client, channel, since=None, id=None):
        """Subscribe; returns the ack (checked: keys in order, epoch, seq, recovered with since)."""
        request = {"type": "subscribe", "channel": channel}
        if id is not None:
            request["id"] = id
        if since is not None:
            request["since"] = since
        client.send_text(json.dumps(request))
        text = client.recv_text()
        ack = json.loads(text)
        keys = ["type"] + (["id"] if id is not None else []) + ["epoch", "seq"] \
            + (["recovered"] if since is not None else [])
        self.assertEqual(list(ack), keys, text)
        self.assertEqual(ack["type"], "ack", text)
        self.assertRegex(ack["epoch"], "^%s$" % EPOCH_RE, text)
        return ack

    def kill(self, client):
        """Cut the TCP connection with no close frame (an RST: SO_LINGER 0)."""
        client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()

    def messages(self, client, count):
        return [json.loads(client.recv_text()) for _ in range(count)]

    def recover_the_fifty(self, client, epoch):
        """Subscribes to "news" with since seq 1 of epoch, after 50 publishes (data 0-49, seq
        2-51) the client missed: the exact ack, then exactly those 50 in order."""
        again = self.subscribe(client, "news", since={"epoch": epoch, "seq": 1}, id=7)
        self.assertEqual(again, {"type": "ack", "id": 7, "epoch": epoch, "seq": 51, "recovered": True})
        got = self.messages(client, 50)
        self.assertEqual([(m["seq"], m["data"]) for m in got], [(i + 2, i) for i in range(50)])
        self.assertEqual(list(got[0]), ["type", "channel", "from", "data", "seq", "ts"])

    def check_recovery_while_publishing(self, first, second):
        """A subscriber on server first is cut off after ~50 messages of a publisher at
        1,000 msg/s (on first), and comes back on server second with "since" while the
        publisher goes on: from its position on, every seq exactly once, in order."""
        sub, _ = self.open_session("alice", "d1", server=first)
        ack = self.subscribe(sub, "race.x")
        publisher, _ = self.open_session("bob", "pub", server=first)
        with self.publishing(publisher, "race.x") as sent:
            time.sleep(0.3)
            last = 0
            deadline = time.monotonic() + 3
            while last < 50 and time.monotonic() < deadline:
                last = json.loads(sub.recv_text())["seq"]
            self.kill(sub)
            time.sleep(0.4)                     # ~400 missed
            back, _ = self.open_session("alice", "d2", server=second)
            again = self.subscribe(back, "race.x", since={"epoch": ack["epoch"], "seq": last})
            self.assertTrue(again["recovered"], again)
            self.assertGreater(again["seq"], last + 100)
            time.sleep(0.4)                     # live ones behind the replay
        total = len(sent)
        # every publish acked (the publisher's acks are read only now)
        acks = [json.loads(publisher.recv_text()) for _ in range(total)]
        self.assertEqual({a["type"] for a in acks}, {"ack"})
        seqs = [m["seq"] for m in self.messages(back, total - last)]
        self.assertEqual(seqs, list(range(last + 1, total + 1)))
        back.expect_silence(0.15)

    @contextlib.contextmanager
    def publishing(self, publisher, channel, per_second=1000):
        """Publishes through publisher at per_second from a thread while the block runs;
        yields the list of what was sent so far (one entry per publish; data is its index)."""
        stop = threading.Event()
        sent = []

        def publish():
            start = time.monotonic()
            while not stop.is_set():
                due = start + len(sent) / per_second
                if due > time.monotonic():
                    time.sleep(due - time.monotonic())
                publisher.send_text('{"type":"publish","channel":"%s","data":%d}' % (channel, len(sent)))
                sent.append(1)

        thread = threading.Thread(target=publish)
        thread.start()
        try:
            yield sent
        finally:
            stop.set()
            thread.join()


class RecoveryTest(HistoryTestBase):
    def setUp(self):
        super().setUp()
        self.start(history_channels=[{"channel": "short.**", "size": 10},
                                     {"channel": "brief.**", "ttl_ms": 300},
                                     {"channel": "off.**", "size": 0}])

    def test_killed_socket_then_50_missed_come_back_in_order_then_live(self):
        sub, _ = self.open_session("alice", "d1")
        ack = self.subscribe(sub, "news")
        self.assertEqual(ack["seq"], 0)
        self.assertEqual(self.api_publish("news", "first"), {"delivered": 1, "seq": 1})
        self.assertEqual(self.messages(sub, 1)[0]["seq"], 1)
        self.kill(sub)
        for i in range(50):
            self.assertEqual(self.api_publish("news", i)["seq"], i + 2)
        back, _ = self.open_session("alice", "d2")
        self.recover_the_fifty(back, ack["epoch"])
        self.assertEqual(self.api_publish("news", "live")["seq"], 52)
        live = self.messages(back, 1)[0]
        self.assertEqual((live["seq"], live["data"]), (52, "live"))
        back.expect_silence(0.15)

    def test_nothing_missed_is_recovered_with_nothing_replayed(self):
        a, _ = self.open_session("alice", "d1")
        ack = self.subscribe(a, "news")
        self.api_publish("news", 1)
        self.messages(a, 1)
        b, _ = self.open_session("bob", "d1")
        again = self.subscribe(b, "news", since={"epoch": ack["epoch"], "seq": 1})
        self.assertEqual((again["seq"], again["recovered"]), (1, True))
        b.expect_silence(0.15)

    def test_history_too_short_is_not_recovered_and_replays_nothing(self):
        sub, _ = self.open_session("alice", "d1")
        ack = self.subscribe(sub, "short.x")
        self.api_publish("short.x", "first")
        self.messages(sub, 1)
        self.kill(sub)
        for i in range(50):
            self.api_publish("short.x", i)
        back, _ = self.open_session("alice", "d2")
        again = self.subscribe(back, "short.x", since={"epoch": ack["epoch"], "seq": 1})
        self.assertEqual(again, {"type": "ack", "epoch": ack["epoch"], "seq": 51, "recovered": False})
        self.api_publish("short.x", "live")
        self.assertEqual([(m["seq"], m["data"]) for m in self.messages(back, 1)], [(52, "live")])
        back.expect_silence(0.15)
        # the last 10 are what it keeps: since 42 is covered, 41 is not
        other, _ = self.open_session("bob", "d1")
        self.assertFalse(self.subscribe(other, "short.x", since={"epoch": ack["epoch"], "seq": 41})["recovered"])
        other.expect_silence(0.1)
        covered = self.subscribe(other, "short.x", since={"epoch": ack["epoch"], "seq": 42})
        self.assertEqual((covered["seq"], covered["recovered"]), (52, True))
        self.assertEqual([m["seq"] for m in self.messages(other, 10)], list(range(43, 53)))

    def test_other_epoch_or_a_position_ahead_is_not_recovered(self):
        sub, _ = self.open_session("alice", "d1")
        ack = self.subscribe(sub, "news")
        self.api_publish("news", 1)
        self.messages(sub, 1)
        for since in ({"epoch": "0123456789abcdef", "seq": 0}, {"epoch": ack["epoch"], "seq": 2}):
            other, _ = self.open_session("bob", "d%d" % since["seq"])
            again = self.subscribe(other, "news", since=since)
            self.assertEqual(again, {"type": "ack", "epoch": ack["epoch"], "seq": 1, "recovered": False})
            other.expect_silence(0.1)

    def test_ttl_expired_is_a_new_epoch_and_not_recovered(self):
        sub, _ = self.open_session("alice", "d1")
        ack = self.subscribe(sub, "brief.x")
        self.kill(sub)
        # published while nobody is subscribed: numbered and kept for ttl_ms
        self.assertEqual(self.api_publish("brief.x", "kept")["seq"], 1)
        body = json.loads(self.http("GET", "/api/history?channel=brief.x", api_key=API_KEY).body)
        self.assertEqual([m["data"] for m in body["messages"]], ["kept"])
        for i in range(3):
            self.api_publish("brief.x", i)
        time.sleep(0.6)                      # ttl_ms 300, plus the expiry wheel's tick
        back, _ = self.open_session("alice", "d2")
        again = self.subscribe(back, "brief.x", since={"epoch": body["epoch"], "seq": 4})
        self.assertNotIn(again["epoch"], (ack["epoch"], body["epoch"]))
        self.assertEqual((again["seq"], again["recovered"]), (0, False))
        back.expect_silence(0.15)
        self.assertEqual(self.metrics()["wsgate_history_entries"], 0)

    def test_a_channel_with_history_outlives_its_subscribers_and_keeps_its_seq(self):
        self.assertEqual(self.api_publish("news", "a"), {"delivered": 0, "seq": 1})
        self.assertEqual(self.api_publish("news", "b"), {"delivered": 0, "seq": 2})
        sub, _ = self.open_session("alice", "d1")
        ack = self.subscribe(sub, "news")
        self.assertEqual(ack["seq"], 2)
        self.subscribe(sub, "news", since={"epoch": ack["epoch"], "seq": 0})
        self.assertEqual([m["data"] for m in self.messages(sub, 2)], ["a", "b"])
        sub.send_text('{"type":"unsubscribe","channel":"news"}')
        self.assertEqual(sub.recv_text(), '{"type":"ack"}')
        self.assertEqual(self.api_publish("news", "c"), {"delivered": 0, "seq": 3})
        self.assertEqual(self.subscribe(sub, "news")["epoch"], ack["epoch"])

    def test_history_off_numbers_nothing_nobody_hears(self):
        self.assertEqual(self.api_publish("off.x", 1), {"delivered": 0})
        sub, _ = self.open_session("alice", "d1")
        ack = self.subscribe(sub, "off.x")
        self.assertEqual(ack["seq"], 0)
        self.api_publish("off.x", 2)
        self.messages(sub, 1)
        self.kill(sub)
        self.api_publish("off.x", 3)   # the ghost may still be subscribed: seq 2
        back, _ = self.open_session("alice", "d2")
        again = self.subscribe(back, "off.x", since={"epoch": ack["epoch"], "seq": 1})
        self.assertFalse(again["recovered"])
        back.expect_silence(0.1)

    def test_direct_messages_are_not_replayed(self):
        sub, _ = self.open_session("alice", "d1")
        ack = self.subscribe(sub, "news")
        self.api_publish("news", "kept")
        self.messages(sub, 1)
        self.kill(sub)
        response = self.http("POST", "/api/send", {"user": "alice", "data": "dm"}, api_key=API_KEY)
        self.assertEqual(response.status, 200)
        back, _ = self.open_session("alice", "d2")
        again = self.subscribe(back, "news", since={"epoch": ack["epoch"], "seq": 1})
        self.assertTrue(again["recovered"])
        back.expect_silence(0.15)

    def test_bad_since_is_a_bad_request(self):
        sub, _ = self.open_session("alice", "d1")
        for since in (5, "x", {"epoch": "e"}, {"seq": 1}, {"epoch": "", "seq": 1},
                      {"epoch": "e", "seq": -1}, {"epoch": "e", "seq": 1.5}, {"epoch": 1, "seq": 1},
                      {"epoch": "e", "seq": 1, "x": 0}, {"epoch": "e" * 65, "seq": 1}):
            with self.subTest(since=since):
                sub.send_text(json.dumps({"type": "subscribe", "channel": "news", "since": since}))
                error = json.loads(sub.recv_text())
                self.assertEqual((error["type"], error["code"]), ("error", "bad_request"), error)
                self.assertIn('"since"', error["message"])
        self.assertEqual(self.subscribe(sub, "news")["seq"], 0)

    def test_server_restart_is_a_new_epoch_and_not_recovered(self):
        sub, _ = self.open_session("alice", "d1")
        ack = self.subscribe(sub, "news")
        self.api_publish("news", 1)
        self.messages(sub, 1)
        self.assertEqual(self.server.stop()[0], 0)
        self.server.start()
        back, _ = self.open_session("alice", "d1")
        again = self.subscribe(back, "news", since={"epoch": ack["epoch"], "seq": 1})
        self.assertNotEqual(again["epoch"], ack["epoch"])
        self.assertEqual((again["seq"], again["recovered"]), (0, False))
        back.expect_silence(0.1)


class ReplayRaceTest(HistoryTestBase):
    """A publisher at 1,000 msg/s while a subscriber is away and while its
    replay is queued: from its position on, every seq exactly once, in order."""

    def test_publishes_racing_the_replay_leave_no_gap_and_no_duplicate(self):
        self.start(history_channels=[{"channel": "race.**", "size": 10000}])
        self.check_recovery_while_publishing(self.server, self.server)


class HistoryApiTest(HistoryTestBase):
    def setUp(self):
        super().setUp()
        self.start(history_channels=[{"channel": "short.**", "size": 10}])

    def get(self, query, key=API_KEY):
        return self.http("GET", "/api/history?" + query, api_key=key)

    def test_history_since_and_limit(self):
        for i in range(60):
            self.assertEqual(self.api_publish("news", {"n": i})["seq"], i + 1)
        response = self.get("channel=news&since=41&limit=10")
        self.assertEqual(response.status, 200, repr(response))
        body = json.loads(response.body)
        self.assertEqual(list(body), ["channel", "epoch", "seq", "complete", "messages"])
        self.assertEqual((body["channel"], body["seq"], body["complete"]), ("news", 60, True))
        self.assertRegex(body["epoch"], "^%s$" % EPOCH_RE)
        self.assertEqual([(m["seq"], m["data"]) for m in body["messages"]],
                         [(i, {"n": i - 1}) for i in range(42, 52)])
        self.assertEqual(list(body["messages"][0]), ["type", "channel", "from", "data", "seq", "ts"])
        everything = json.loads(self.get("channel=news").body)
        self.assertEqual([m["seq"] for m in everything["messages"]], list(range(1, 61)))
        self.assertEqual(json.loads(self.get("channel=news&since=60").body)["messages"], [])
        # the same epoch a subscriber is told
        sub, _ = self.open_session("alice", "d1")
        self.assertEqual(self.subscribe(sub, "news")["epoch"], body["epoch"])

    def test_history_shorter_than_asked_is_not_complete(self):
        for i in range(50):
            self.api_publish("short.x", i)
        body = json.loads(self.get("channel=short.x&since=5").body)
        self.assertEqual((body["seq"], body["complete"]), (50, False))
        self.assertEqual([m["seq"] for m in body["messages"]], list(range(41, 51)))
        self.assertTrue(json.loads(self.get("channel=short.x&since=40").body)["complete"])

    def test_history_refusals(self):
        self.api_publish("news", 1)
        self.assertEqual(self.get("channel=news", key=None).status, 401)
        self.assertEqual(self.get("channel=news", key="wrong").status, 401)
        for query, word in [("", "channel"), ("channel=", "channel"), ("channel=a..b", "channel"),
                            ("channel=news&since=-1", "since"), ("channel=news&since=x", "since"),
                            ("channel=news&limit=0", "limit"), ("channel=news&limit=10001", "limit")]:
            with self.subTest(query=query):
                response = self.get(query)
                self.assertEqual(response.status, 400, repr(response))
                self.assertIn(word, json.loads(response.body)["error"])
        response = self.get("channel=nobody.here")
        self.assertEqual((response.status, json.loads(response.body)),
                         (404, {"error": "no such channel: no subscriber and no history"}))
        response = self.http("POST", "/api/history", {}, api_key=API_KEY)
        self.assertEqual(response.status, 405)


class HistoryMemoryTest(HistoryTestBase):
    """10,000 channels, each with a full history of 10 messages of ~100 bytes:
    wsgate_history_bytes counts what is kept and the process grows by no more
    than the bound the README documents (history memory)."""

    CHANNELS = 10000
    SIZE = 10

    def test_ten_thousand_full_histories_stay_within_the_bound(self):
        self.start(history={"size": self.SIZE, "ttl_ms": 600000})
        pid = self.server.proc.pid
        publisher, _ = self.open_session("bob", "pub")
        before = vm_rss_kb(pid)
        data = "x" * 40
        batch = 500
        requests = ['{"type":"publish","channel":"mem.c%05d","data":"%s"}' % (c, data)
                    for c in range(self.CHANNELS)]
        for _ in range(self.SIZE):
            for start in range(0, len(requests), batch):
                for text in requests[start:start + batch]:
                    publisher.send_text(text)
                for _ in requests[start:start + batch]:
                    publisher.recv_text()
        after = vm_rss_kb(pid)
        metrics = self.metrics()
        entries = self.CHANNELS * self.SIZE
        self.assertEqual(metrics["wsgate_history_entries"], entries)
        self.assertEqual(metrics["wsgate_history_channels"], self.CHANNELS)
        frame = len('{"type":"message","channel":"mem.c00000","from":"bob","data":"%s",'
                    '"seq":10,"ts":1700000000000}' % data) + 2
        kept = metrics["wsgate_history_bytes"]
        self.assertGreaterEqual(kept, entries * frame)
        self.assertLessEqual(kept, entries * (frame + 96) + self.CHANNELS * 512)
        # the documented bound: per message its frame + 128 bytes, per channel 1 KiB
        bound_kb = (entries * (frame + 128) + self.CHANNELS * 1024) // 1024
        if not os.environ.get("WSGATE_TEST_SANITIZED"):
            self.assertLessEqual(after - before, bound_kb,
                                 "VmRSS grew from %d kB to %d kB for %d entries (bound %d kB)"
                                 % (before, after, entries, bound_kb))


if __name__ == "__main__":
    main()
