"""Protection limits: a slow consumer is closed 4109 while everyone else
keeps receiving (and memory stays bounded); the per-session rate limit
answers rate_limited, then closes 4108 on persistent abuse, and never
touches a client that keeps under it."""

import json
import os
import threading
import subprocess
import sys
import time

from wsgate_harness import (OP_CLOSE, OP_TEXT, TOKENS, WsgateTestCase, main, parse_close_payload,
                            vm_rss_kb)

API_KEY = "test-backend-api-key-0123"
MAX_QUEUED = 65536
MESSAGE_SIZE = 8192


def limit_tokens():
    return [{"token": token, "user": user, "subscribe": ["news", "chat.*"],
             "publish": ["chat.*"], "send": ["*"]} for user, token in TOKENS.items()]


def answer_close(client, code):
    """Echo the server's close (it may already have ended TCP), then expect EOF."""
    try:
        client.send_close(code)
    except OSError:
        pass
    client.expect_eof()


class Reader(threading.Thread):
    """Reads every text message of a RawClient in the background (answers pings)."""

    def __init__(self, client):
        super().__init__(daemon=True)
        self.client = client
        self.messages = []
        self.error = None
        self.stop = threading.Event()

    def run(self):
        try:
            while not self.stop.is_set():
                try:
                    self.messages.append(json.loads(self.client.recv_text(timeout=0.2)))
                except AssertionError as e:
                    if "timed out" not in str(e):
                        raise
        except BaseException as e:                 # reported by finish()
            self.error = e

    def finish(self, count, timeout=10):
        """Wait until ``count`` messages arrived; stop; return them."""
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and self.error is None and time.monotonic() < deadline:
            time.sleep(0.01)
        self.stop.set()
        self.join(2)
        if self.error is not None:
            raise self.error
        return self.messages


class SlowConsumerTest(WsgateTestCase):

    def setUp(self):
        super().setUp()
        self.start_server(tokens=limit_tokens(), api={"keys": [API_KEY]},
                          limits={"max_queued_bytes": MAX_QUEUED,
                                  "messages_per_second": 100000, "burst": 100000})

    def subscribe(self, client, channel):
        client.send_text(json.dumps({"type": "subscribe", "channel": channel}))
        self.assertRegex(client.recv_text(), r'^\{"type":"ack","epoch":"[0-9a-f]{16}","seq":\d+\}$')

    def publish_until_slow(self, channel, stalled, data, extra=20, limit=3000):
        """Publish via the API until wsgate_slow_consumers_total reached
        ``stalled``, then ``extra`` more. Returns the list of delivered counts."""
        delivered = []
        after = None
        while len(delivered) < limit:
            response = self.http("POST", "/api/publish", {"channel": channel, "data": data},
                                 api_key=API_KEY)
            self.assertEqual(response.status, 200, repr(response))
            delivered.append(json.loads(response.body)["delivered"])
            if after is None and len(delivered) % 10 == 0 \
                    and self.metrics()["wsgate_slow_consumers_total"] >= stalled:
                after = len(delivered)
            if after is not None and len(delivered) >= after + extra:
                return delivered
        self.fail("no slow consumer closed after %d messages of %d bytes; log:\n%s"
                  % (limit, len(data), self.server.log()))

    def read_until_close(self, client, timeout=10):
        """Text messages a stalled client finally reads, then its close."""
        messages = []
        deadline = time.monotonic() + timeout
        while True:
            frame = client.recv_frame(max(0.0, deadline - time.monotonic()))
            if frame.opcode == OP_TEXT:
                self.assertTrue(frame.fin, "fragmented delivery")
                messages.append(json.loads(frame.payload))
                continue
            self.assertEqual(frame.opcode, OP_CLOSE, repr(frame))
            code, reason = parse_close_payload(frame.payload)
            return messages, (code, reason.decode("utf-8"))

    def assert_gap_free(self, messages, first=1):
        seqs = [m["seq"] for m in messages]
        self.assertEqual(seqs, list(range(first, first + len(seqs))),
                         "seq gap or reorder: %r" % seqs[:50])

    def test_slow_consumer_closed_4109_fast_subscriber_gets_everything(self):
        slow, _ = self.open_session("alice", "slow", rcvbuf=4096)
        self.subscribe(slow, "chat.x")
        fast, _ = self.open_session("bob", "fast")
        self.subscribe(fast, "chat.x")
        reader = Reader(fast)
        reader.start()
        data = "y" * MESSAGE_SIZE
        delivered = self.publish_until_slow("chat.x", 1, data)
        total = len(delivered)
        # the fast subscriber got every message, in order, without a gap
        got = reader.finish(total)
        self.assertEqual(len(got), total)
        self.assert_gap_free(got)
        for m in got:
            self.assertEqual((m["channel"], m["from"], m["data"]), ("chat.x", None, data))
        # delivered: 2 while both were subscribed, then 1 (never 0, never back to 2)
        first_one = delivered.index(1)
        self.assertGreater(first_one, 0)
        self.assertEqual(delivered, [2] * first_one + [1] * (total - first_one), delivered)
        # the slow one: a gap-free prefix of what it was sent, then close 4109
        messages, close = self.read_until_close(slow)
        self.assertEqual(close, (4109, "slow consumer"))
        self.assert_gap_free(messages)
        self.assertLessEqual(len(messages), first_one)
        answer_close(slow, 4109)
        line = self.server.wait_for_log(r"event=session_close\b.*device=slow\b")
        self.assertRegex(line, r'code=4109 reason="slow consumer" by=server')
        metrics = self.metrics()
        self.assertEqual(metrics["wsgate_slow_consumers_total"], 1)
        self.assertEqual(metrics['wsgate_closes_total{code="4109"}'], 1)
        # the fast subscriber is still fine
        self.assert_alive(fast)
        self.assertEqual(metrics["wsgate_sessions_open"], 1)

    def test_slow_consumer_closed_by_client_publisher_and_direct_sends(self):
        """A client publisher and direct sends fill the queue too; the
        publisher is untouched."""
        slow, _ = self.open_session("alice", "slow", rcvbuf=4096)
        self.subscribe(slow, "chat.x")
        publisher, _ = self.open_session("bob", "pub")
        data = "z" * MESSAGE_SIZE
        sent = 0
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            for i in range(20):
                kind = ('{"type":"publish","channel":"chat.x","data":"%s"}' if i % 2
                        else '{"type":"send","to":"alice","data":"%s"}')
                publisher.send_text(kind % data)
            acks = [json.loads(publisher.recv_text()) for _ in range(20)]
            self.assertTrue(all(a["type"] == "ack" for a in acks), acks)
            sent += 20
            if acks[-1]["delivered"] == 0:
                break
        else:
            self.fail("no slow consumer close after %d messages" % sent)
        self.server.wait_for_log(r"event=session_close\b.*device=slow\b.*code=4109\b",
                                 timeout=8)
        self.assert_alive(publisher)

    def test_memory_stays_bounded_with_stalled_consumers(self):
        stalled = []
        for i in range(3):
            client, _ = self.open_session("alice", "s%d" % i, rcvbuf=4096)
            self.subscribe(client, "chat.x")
            stalled.append(client)
        pid = self.server.proc.pid
        before = vm_rss_kb(pid)
        delivered = self.publish_until_slow("chat.x", 3, "m" * 32768, extra=200)
        total_bytes = len(delivered) * 32768
        after = vm_rss_kb(pid)
        self.assertGreater(total_bytes, 3 * MAX_QUEUED)       # more than all three limits
        # ASan keeps freed memory in quarantine, so RSS says nothing under it
        if not os.environ.get("WSGATE_TEST_SANITIZED"):
            self.assertLess(after - before, 16 * 1024,
                            "VmRSS grew from %d kB to %d kB while publishing %d bytes"
                            % (before, after, total_bytes))
        self.assertEqual(delivered[-1], 0)
        for client in stalled:
            messages, close = self.read_until_close(client)
            self.assertEqual(close, (4109, "slow consumer"))
        self.assertEqual(self.metrics()["wsgate_slow_consumers_total"], 3)

    def server_send_queue(self, client):
        """Bytes the server's kernel holds for this client (ss: Send-Q of its socket)."""
        port = client.sock.getsockname()[1]
        out = subprocess.run(["ss", "-Htn", "state", "established", "( dport = :%d )" % port],
                             capture_output=True, text=True, check=True).stdout.split()
        return int(out[1])                  # Recv-Q, Send-Q, local, peer

    def test_stalled_reader_kernel_share_is_bounded(self):
        # limits.send_buffer_bytes (TCP_NOTSENT_LOWAT, 16 KiB by default): the kernel
        # stops taking a stalled reader's bytes there, so wsgate's own queue (and 4109)
        # bounds the rest; without it Linux takes megabytes first
        client, _ = self.open_session("alice", "stalled", rcvbuf=4096)
        self.subscribe(client, "chat.x")
        data = "k" * 8192
        for seq in range(1, MAX_QUEUED // 8192 // 2 + 1):     # half the limit: still open
            response = self.http("POST", "/api/publish", {"channel": "chat.x", "data": data},
                                 api_key=API_KEY)
            self.assertEqual(response.body, b'{"delivered":1,"seq":%d}' % seq)
        deadline = time.monotonic() + 2
        queued = self.server_send_queue(client)
        while time.monotonic() < deadline:                    # let the last write settle
            time.sleep(0.1)
            queued = max(queued, self.server_send_queue(client))
        print("kernel share: Send-Q max %d bytes" % queued, file=sys.stderr)
        self.assertLess(queued, 256 * 1024, "the kernel holds %d bytes for a stalled reader" % queued)
        delivered = self.publish_until_slow("chat.x", 1, data, extra=1)
        published = (MAX_QUEUED // 8192 // 2 + delivered.count(1)) * 8192
        print("taken before 4109: %d bytes (max_queued_bytes %d)" % (published, MAX_QUEUED), file=sys.stderr)
        self.assertLess(published, MAX_QUEUED + 512 * 1024,
                        "%d bytes taken for a stalled reader before 4109" % published)

    def test_fast_reader_of_large_volume_is_not_a_slow_consumer(self):
        fast, _ = self.open_session("bob", "fast")
        self.subscribe(fast, "chat.x")
        reader = Reader(fast)
        reader.start()
        data = "q" * MESSAGE_SIZE
        count = 150                                    # ~1.2 MB, 18x max_queued_bytes
        for i in range(count):
            # a reader that keeps up: never more than half the queue limit behind, even when
            # this machine is loaded (the kernel holds only limits.send_buffer_bytes for it)
            deadline = time.monotonic() + 5
            while i - len(reader.messages) > MAX_QUEUED // MESSAGE_SIZE // 2 and time.monotonic() < deadline:
                time.sleep(0.001)
            response = self.http("POST", "/api/publish", {"channel": "chat.x", "data": data},
                                 api_key=API_KEY)
            self.assertEqual(response.body, b'{"delivered":1,"seq":%d}' % (i + 1))
        got = reader.finish(count)
        self.assertEqual(len(got), count)
        self.assert_gap_free(got)
        self.assertEqual(self.metrics()["wsgate_slow_consumers_total"], 0)
        self.assert_alive(fast)


class RateLimitTest(WsgateTestCase):

    def start(self, rate, burst):
        self.start_server(tokens=limit_tokens(),
                          limits={"messages_per_second": rate, "burst": burst})

    def assert_rate_limited(self, text):
        error = json.loads(text)
        self.assertEqual(list(error), ["type", "code", "message"], text)
        self.assertEqual((error["type"], error["code"]), ("error", "rate_limited"), text)
        self.assertTrue(error["message"], text)

    def test_burst_then_rate_limited_then_close_4108(self):
        burst = 10
        self.start(1, burst)
        client, _ = self.open_session("alice", "a1")
        # exactly `burst` allowed, then `burst` refused in a row: the last closes
        for i in range(2 * burst):
            client.send_text('{"type":"ping","id":%d}' % i)
        for i in range(burst):
            self.assertEqual(client.recv_text(), '{"type":"pong","id":%d}' % i)
        errors = 0
        while True:
            frame = client.recv_frame()
            if frame.opcode == OP_CLOSE:
                break
            self.assertEqual(frame.opcode, OP_TEXT, repr(frame))
            self.assert_rate_limited(frame.payload.decode())   # no id, even though sent
            errors += 1
        code, reason = parse_close_payload(frame.payload)
        self.assertEqual((code, reason), (4108, b"rate limited"))
        self.assertIn(errors, (burst - 1, burst))        # the last refusal may just close
        answer_close(client, 4108)
        line = self.server.wait_for_log(r"event=session_close\b.*code=4108\b")
        self.assertIn('reason="rate limited" by=server', line)
        metrics = self.metrics()
        self.assertEqual(metrics['wsgate_closes_total{code="4108"}'], 1)
        self.assertEqual(metrics["wsgate_rate_limited_total"], burst)

    def test_refused_message_is_not_processed(self):
        self.start(1, 3)
        client, _ = self.open_session("alice", "a1")
        sub, _ = self.open_session("bob", "b1")
        sub.send_text('{"type":"subscribe","channel":"chat.x"}')
        self.assertRegex(sub.recv_text(), r'^\{"type":"ack","epoch":"[0-9a-f]{16}","seq":0\}$')
        for _ in range(3):
            client.send_text("ping")
            self.assertEqual(client.recv_text(), "pong")
        client.send_text('{"type":"publish","channel":"chat.x","data":1,"id":1}')
        self.assert_rate_limited(client.recv_text())
        sub.expect_silence(0.2)

    def test_tokens_refill_and_limited_session_recovers(self):
        self.start(20, 5)
        client, _ = self.open_session("alice", "a1")
        for _ in range(2):
            for i in range(5):
                client.send_text('{"type":"ping","id":%d}' % i)
            client.send_text('{"type":"ping","id":"over"}')
            for i in range(5):
                self.assertEqual(client.recv_text(), '{"type":"pong","id":%d}' % i)
            self.assert_rate_limited(client.recv_text())
            time.sleep(0.4)                                   # 8 tokens, capped at 5
        self.assert_alive(client)
        self.assertEqual(self.metrics()["wsgate_rate_limited_total"], 2)

    def test_client_under_the_rate_is_never_limited(self):
        self.start(100, 5)
        client, _ = self.open_session("alice", "a1")
        other, _ = self.open_session("bob", "b1")
        for i in range(50):                                   # 50 per second
            client.send_text('{"type":"ping","id":%d}' % i)
            self.assertEqual(client.recv_text(), '{"type":"pong","id":%d}' % i)
            time.sleep(0.02)
        # a burst of exactly `burst` after a pause is fine too
        time.sleep(0.1)
        for i in range(5):
            other.send_text("ping")
        for i in range(5):
            self.assertEqual(other.recv_text(), "pong")
        self.assertEqual(self.metrics()["wsgate_rate_limited_total"], 0)

    def test_rate_limit_is_per_session(self):
        self.start(1, 5)
        abuser, _ = self.open_session("alice", "a1")
        same_user, _ = self.open_session("alice", "a2")
        for _ in range(5):
            abuser.send_text("ping")
        for _ in range(5):
            self.assertEqual(abuser.recv_text(), "pong")
        abuser.send_text("ping")
        self.assert_rate_limited(abuser.recv_text())
        for _ in range(5):
            self.assert_alive(same_user)


if __name__ == "__main__":
    main()
