"""Channels and direct messages over the client protocol: subscribe,
unsubscribe, publish, send; acks, ids, errors, permissions (globs), seq
numbering, who receives what, limits.max_subscriptions. History is off here
(history.size = 0): a channel lives exactly while it has subscribers;
test_history.py covers channels that outlive them."""

import json
import re
import time

from wsgate_harness import TOKENS, WsgateTestCase, main

MAX_SUBSCRIPTIONS = 4
CAROL_TOKEN = "carol-token-no-permissions"
DAVE_TOKEN = "dave-token-dotted-user"

PERMISSIONS = {
    # alice: "*" and "**" globs
    "alice": {"subscribe": ["news", "chat.*", "feed.**"],
              "publish": ["chat.*", "feed.**"],
              "send": ["**"]},
    # bob: may only send to alice, publish only to chat.*
    "bob": {"subscribe": ["news", "chat.*"],
            "publish": ["chat.*"],
            "send": ["alice"]},
}


def messaging_tokens():
    tokens = []
    for user, token in TOKENS.items():
        entry = {"token": token, "user": user}
        entry.update(PERMISSIONS[user])
        tokens.append(entry)
    tokens.append({"token": CAROL_TOKEN, "user": "carol"})           # no permission lists
    tokens.append({"token": "carol-token-empty-lists", "user": "carol",
                   "subscribe": [], "publish": [], "send": []})
    tokens.append({"token": DAVE_TOKEN, "user": "dave.smith",
                   "subscribe": ["chat.*"], "publish": [], "send": ["*"]})
    return tokens


def now_ms():
    return int(time.time() * 1000)


class MessagingTest(WsgateTestCase):

    def setUp(self):
        super().setUp()
        self.start_server(tokens=messaging_tokens(),
                          limits={"max_subscriptions": MAX_SUBSCRIPTIONS,
                                  "messages_per_second": 1000, "burst": 1000},
                          history={"size": 0})
        self.a1, _ = self.open_session("alice", "a1")
        self.a2, _ = self.open_session("alice", "a2")
        self.bob, _ = self.open_session("bob", "b1")

    # -- helpers -----------------------------------------------------------
    def request(self, client, message, expect_text=None):
        """Send a JSON request (dict or text); returns the next text reply,
        which must equal ``expect_text`` when given."""
        client.send_text(message if isinstance(message, str) else json.dumps(message))
        reply = client.recv_text()
        if '"subscribe"' in (message if isinstance(message, str) else json.dumps(message)) \
                and reply.startswith('{"type":"ack"'):
            # a subscribe's ack ends with the channel's position (test_history.py checks it)
            reply, n = re.subn(r',"epoch":"[0-9a-f]{16}","seq":\d+\}$', '}', reply)
            self.assertEqual(n, 1, reply)
        if expect_text is not None:
            self.assertEqual(reply, expect_text, "reply to %r" % (message,))
        return reply

    def subscribe(self, client, channel, id=None):
        msg = {"type": "subscribe", "channel": channel}
        expected = '{"type":"ack"}'
        if id is not None:
            msg["id"] = id
            expected = '{"type":"ack","id":%s}' % json.dumps(id)
        self.request(client, msg, expected)

    def unsubscribe(self, client, channel):
        self.request(client, {"type": "unsubscribe", "channel": channel}, '{"type":"ack"}')

    def assert_error(self, reply, code, id=None):
        """``reply`` is an error with this code (and id), keys in the documented order."""
        error = json.loads(reply)
        keys = ["type", "id", "code", "message"] if id is not None else ["type", "code", "message"]
        self.assertEqual(list(error), keys, reply)
        self.assertEqual(error["type"], "error", reply)
        self.assertEqual(error["code"], code, reply)
        if id is not None:
            self.assertEqual(error["id"], id, reply)
        self.assertIsInstance(error["message"], str, reply)
        self.assertTrue(error["message"], reply)
        return error

    def publish(self, client, channel, data, id=None, subscribed_self=False):
        """Publish; returns (ack as dict, own delivery or None). With
        subscribed_self the sender also gets the message (in any order)."""
        msg = {"type": "publish", "channel": channel, "data": data}
        if id is not None:
            msg["id"] = id
        client.send_text(json.dumps(msg))
        replies = [client.recv_text() for _ in range(2 if subscribed_self else 1)]
        acks = [r for r in replies if r.startswith('{"type":"ack"')]
        own = [r for r in replies if not r.startswith('{"type":"ack"')]
        self.assertEqual(len(acks), 1, replies)
        ack = json.loads(acks[0])
        self.assertEqual(list(ack), ["type", "id", "delivered"] if id is not None
                         else ["type", "delivered"], acks[0])
        if id is not None:
            self.assertEqual(ack["id"], id)
        return ack, (own[0] if own else None)

    def assert_channel_message(self, text, channel, sender, data, seq, since_ms):
        message = json.loads(text)
        self.assertEqual(list(message), ["type", "channel", "from", "data", "seq", "ts"], text)
        self.assertEqual(message["type"], "message", text)
        self.assertEqual(message["channel"], channel, text)
        self.assertEqual(message["from"], sender, text)
        self.assertEqual(message["data"], data, text)
        self.assertEqual(message["seq"], seq, text)
        self.assertIsInstance(message["ts"], int, text)
        self.assertGreaterEqual(message["ts"], since_ms - 5, text)
        self.assertLessEqual(message["ts"], now_ms() + 5, text)
        return message

    def assert_direct_message(self, text, sender, to, data, since_ms):
        message = json.loads(text)
        self.assertEqual(list(message), ["type", "from", "to", "data", "ts"], text)
        self.assertEqual((message["type"], message["from"], message["to"], message["data"]),
                         ("message", sender, to, data), text)
        self.assertIsInstance(message["ts"], int, text)
        self.assertGreaterEqual(message["ts"], since_ms - 5, text)
        self.assertLessEqual(message["ts"], now_ms() + 5, text)
        return message

    def assert_quiet(self, *clients, duration=0.15):
        """Nothing (but pings) arrives on these clients for ``duration``."""
        for client in clients:
            client.expect_silence(duration)

    # -- subscribe / unsubscribe --------------------------------------------
    def test_subscribe_ack_without_and_with_id(self):
        self.request(self.a1, '{"type":"subscribe","channel":"news"}', '{"type":"ack"}')
        self.request(self.a1, '{"type":"subscribe","channel":"chat.x","id":1}',
                     '{"type":"ack","id":1}')
        self.request(self.a1, '{"id":"s-2","type":"subscribe","channel":"chat.y"}',
                     '{"type":"ack","id":"s-2"}')
        self.request(self.a1, '{"type":"subscribe","channel":"chat.z","id":{"k":[1,null]}}',
                     '{"type":"ack","id":{"k":[1,null]}}')

    def test_unsubscribe_ack_when_subscribed_and_when_not(self):
        self.subscribe(self.a1, "news")
        self.request(self.a1, '{"type":"unsubscribe","channel":"news","id":5}',
                     '{"type":"ack","id":5}')
        self.request(self.a1, '{"type":"unsubscribe","channel":"news","id":6}',
                     '{"type":"ack","id":6}')
        self.request(self.a1, '{"type":"unsubscribe","channel":"never.subscribed"}',
                     '{"type":"ack"}')

    def test_subscribe_twice_is_acked_and_delivers_once(self):
        self.subscribe(self.a1, "chat.x")
        self.subscribe(self.a1, "chat.x")
        since = now_ms()
        ack, _ = self.publish(self.bob, "chat.x", 1)
        self.assertEqual(ack["delivered"], 1)
        self.assert_channel_message(self.a1.recv_text(), "chat.x", "bob", 1, 1, since)
        self.assert_quiet(self.a1)

    # -- publish ---------------------------------------------------------------
    def test_publish_reaches_exactly_the_subscribed_sessions(self):
        self.subscribe(self.a1, "chat.room")
        self.subscribe(self.bob, "chat.room")
        self.subscribe(self.a2, "chat.other")                # a2: another channel
        since = now_ms()
        ack, own = self.publish(self.bob, "chat.room", {"text": "hi", "n": [1, 2.5, None, True]},
                                id=42, subscribed_self=True)
        self.assertEqual(ack, {"type": "ack", "id": 42, "delivered": 2})
        data = {"text": "hi", "n": [1, 2.5, None, True]}
        self.assert_channel_message(own, "chat.room", "bob", data, 1, since)
        self.assert_channel_message(self.a1.recv_text(), "chat.room", "bob", data, 1, since)
        self.assert_quiet(self.a1, self.a2, self.bob)

    def test_publish_exact_text_of_ack_and_delivery(self):
        self.subscribe(self.a2, "chat.x")
        self.request(self.a1, '{"type":"publish","channel":"chat.x","data":"hello","id":3}',
                     '{"type":"ack","id":3,"delivered":1}')
        text = self.a2.recv_text()
        self.assertRegex(text, r'^\{"type":"message","channel":"chat\.x","from":"alice",'
                               r'"data":"hello","seq":1,"ts":\d{13}\}$')

    def test_publish_without_id_ack_has_no_id(self):
        self.request(self.a1, '{"type":"publish","channel":"chat.empty","data":1}',
                     '{"type":"ack","delivered":0}')

    def test_publish_any_json_data(self):
        self.subscribe(self.a2, "chat.data")
        values = ["text", 0, -1.5, True, False, None, [], {}, [1, "two", {"3": [4]}],
                  {"nested": {"deep": ["é", "\u2603", "\\\"q\""]}}, "x" * 2000]
        since = now_ms()
        for seq, value in enumerate(values, 1):
            with self.subTest(data=value if not isinstance(value, str) else value[:20]):
                ack, _ = self.publish(self.a1, "chat.data", value)
                self.assertEqual(ack["delivered"], 1)
                self.assert_channel_message(self.a2.recv_text(), "chat.data", "alice", value,
                                            seq, since)

    def test_unsubscribed_session_no_longer_receives(self):
        self.subscribe(self.a1, "chat.x")
        self.subscribe(self.a2, "chat.x")
        since = now_ms()
        ack, _ = self.publish(self.bob, "chat.x", "one")
        self.assertEqual(ack["delivered"], 2)
        self.assert_channel_message(self.a1.recv_text(), "chat.x", "bob", "one", 1, since)
        self.assert_channel_message(self.a2.recv_text(), "chat.x", "bob", "one", 1, since)
        self.unsubscribe(self.a1, "chat.x")
        ack, _ = self.publish(self.bob, "chat.x", "two")
        self.assertEqual(ack["delivered"], 1)
        self.assert_channel_message(self.a2.recv_text(), "chat.x", "bob", "two", 2, since)
        self.assert_quiet(self.a1)

    def test_publish_to_channel_without_subscribers_delivers_0(self):
        ack, _ = self.publish(self.a1, "chat.nobody", "x", id=1)
        self.assertEqual(ack, {"type": "ack", "id": 1, "delivered": 0})
        self.assert_quiet(self.a1, self.a2, self.bob)

    def test_closed_session_no_longer_receives(self):
        self.subscribe(self.a1, "chat.x")
        self.subscribe(self.a2, "chat.x")
        self.close_by_client(self.a2)
        self.server.wait_for_log(r"event=session_close\b.*device=a2\b")
        ack, _ = self.publish(self.bob, "chat.x", "after")
        self.assertEqual(ack["delivered"], 1)
        self.assertEqual(json.loads(self.a1.recv_text())["data"], "after")

    # -- seq -------------------------------------------------------------------
    def test_seq_increments_by_one_per_channel(self):
        self.subscribe(self.a2, "chat.x")
        since = now_ms()
        for seq in range(1, 11):
            self.publish(self.a1, "chat.x", seq)
        for seq in range(1, 11):
            self.assert_channel_message(self.a2.recv_text(), "chat.x", "alice", seq, seq, since)

    def test_seq_is_independent_across_channels(self):
        self.subscribe(self.a2, "chat.x")
        self.subscribe(self.a2, "chat.y")
        since = now_ms()
        plan = ["chat.x", "chat.x", "chat.y", "chat.x", "chat.y", "chat.y", "chat.y"]
        for i, channel in enumerate(plan):
            self.publish(self.a1, channel, i)
        expected = {"chat.x": 0, "chat.y": 0}
        for i, channel in enumerate(plan):
            expected[channel] += 1
            self.assert_channel_message(self.a2.recv_text(), channel, "alice", i,
                                        expected[channel], since)

    def test_seq_same_for_every_subscriber(self):
        self.subscribe(self.a1, "chat.x")
        self.subscribe(self.a2, "chat.x")
        self.subscribe(self.bob, "chat.x")
        since = now_ms()
        for i in range(3):
            self.publish(self.bob, "chat.x", i, subscribed_self=True)
        for client in (self.a1, self.a2):
            for i in range(3):
                self.assert_channel_message(client.recv_text(), "chat.x", "bob", i, i + 1, since)

    def test_publish_without_subscribers_does_not_use_a_seq(self):
        self.publish(self.a1, "chat.x", "lost")              # no subscriber: nothing numbered
        self.subscribe(self.a2, "chat.x")
        since = now_ms()
        self.publish(self.a1, "chat.x", "first")
        self.assert_channel_message(self.a2.recv_text(), "chat.x", "alice", "first", 1, since)

    def test_seq_restarts_when_channel_emptied(self):
        self.subscribe(self.a2, "chat.x")
        since = now_ms()
        for i in range(3):
            self.publish(self.a1, "chat.x", i)
        for i in range(3):
            self.assert_channel_message(self.a2.recv_text(), "chat.x", "alice", i, i + 1, since)
        self.unsubscribe(self.a2, "chat.x")
        self.subscribe(self.a2, "chat.x")
        self.publish(self.a1, "chat.x", "again")
        self.assert_channel_message(self.a2.recv_text(), "chat.x", "alice", "again", 1, since)

    def test_seq_continues_while_one_subscriber_remains(self):
        self.subscribe(self.a1, "chat.x")
        self.subscribe(self.a2, "chat.x")
        since = now_ms()
        self.publish(self.bob, "chat.x", "a")
        self.assert_channel_message(self.a1.recv_text(), "chat.x", "bob", "a", 1, since)
        self.unsubscribe(self.a1, "chat.x")
        self.subscribe(self.a1, "chat.x")
        self.publish(self.bob, "chat.x", "b")
        self.assertEqual([json.loads(self.a2.recv_text())["seq"] for _ in range(2)], [1, 2])
        self.assert_channel_message(self.a1.recv_text(), "chat.x", "bob", "b", 2, since)

    # -- send ------------------------------------------------------------------
    def test_send_reaches_every_session_of_the_user(self):
        since = now_ms()
        self.request(self.bob, '{"type":"send","to":"alice","data":{"q":1},"id":9}',
                     '{"type":"ack","id":9,"delivered":2}')
        for client in (self.a1, self.a2):
            self.assert_direct_message(client.recv_text(), "bob", "alice", {"q": 1}, since)
        self.assert_quiet(self.a1, self.a2, self.bob)

    def test_send_exact_text(self):
        self.request(self.a1, '{"type":"send","to":"bob","data":[1,"x"]}',
                     '{"type":"ack","delivered":1}')
        self.assertRegex(self.bob.recv_text(),
                         r'^\{"type":"message","from":"alice","to":"bob","data":\[1,"x"\],'
                         r'"ts":\d{13}\}$')

    def test_send_to_self_reaches_own_sessions_including_sender(self):
        since = now_ms()
        self.a1.send_text('{"type":"send","to":"alice","data":"me","id":1}')
        replies = sorted(self.a1.recv_text() for _ in range(2))
        self.assertEqual(replies[0], '{"type":"ack","id":1,"delivered":2}')
        self.assert_direct_message(replies[1], "alice", "alice", "me", since)
        self.assert_direct_message(self.a2.recv_text(), "alice", "alice", "me", since)

    def test_send_to_user_without_session_delivers_0(self):
        self.request(self.a1, '{"type":"send","to":"carol","data":1,"id":"x"}',
                     '{"type":"ack","id":"x","delivered":0}')
        self.request(self.a1, '{"type":"send","to":"nobody-at-all","data":1}',
                     '{"type":"ack","delivered":0}')

    def test_send_after_device_left_counts_remaining_sessions(self):
        self.close_by_client(self.a2)
        self.server.wait_for_log(r"event=session_close\b.*device=a2\b")
        self.request(self.bob, '{"type":"send","to":"alice","data":0}',
                     '{"type":"ack","delivered":1}')
        self.assertEqual(json.loads(self.a1.recv_text())["data"], 0)

    def test_send_double_star_allows_a_user_name_with_dots(self):
        """send = ["**"] is documented as "anyone" (conf/wsgate.conf); user
        names may contain dots."""
        dave, _ = self.open_session("dave.smith", "d1", token=DAVE_TOKEN)
        since = now_ms()
        self.request(self.a1, '{"type":"send","to":"dave.smith","data":"hi","id":1}',
                     '{"type":"ack","id":1,"delivered":1}')
        self.assert_direct_message(dave.recv_text(), "alice", "dave.smith", "hi", since)

    def test_send_single_star_allows_only_undotted_names(self):
        dave, _ = self.open_session("dave.smith", "d1", token=DAVE_TOKEN)     # send = ["*"]
        self.request(dave, '{"type":"send","to":"alice","data":1,"id":1}',
                     '{"type":"ack","id":1,"delivered":2}')
        reply = self.request(dave, '{"type":"send","to":"dave.smith","data":1,"id":2}')
        self.assert_error(reply, "forbidden", id=2)

    # -- permissions -------------------------------------------------------------
    def test_forbidden_subscribe(self):
        for i, channel in enumerate(["secret", "chat", "chat.x.y", "newsroom", "feed"]):
            with self.subTest(channel=channel):
                reply = self.request(self.a1, {"type": "subscribe", "channel": channel, "id": i})
                self.assert_error(reply, "forbidden", id=i)
        self.assert_alive(self.a1)

    def test_forbidden_subscribe_is_not_subscribed(self):
        reply = self.request(self.bob, {"type": "subscribe", "channel": "feed.a"})
        self.assert_error(reply, "forbidden")
        ack, _ = self.publish(self.a1, "feed.a", 1)
        self.assertEqual(ack["delivered"], 0)
        self.assert_quiet(self.bob)

    def test_forbidden_publish_delivers_nothing(self):
        self.subscribe(self.a1, "news")
        reply = self.request(self.bob, '{"type":"publish","channel":"news","data":1,"id":7}')
        self.assertEqual(self.assert_error(reply, "forbidden", id=7)["id"], 7)
        reply = self.request(self.bob, '{"type":"publish","channel":"feed.a","data":1}')
        self.assert_error(reply, "forbidden")
        self.assert_quiet(self.a1)

    def test_forbidden_send_delivers_nothing(self):
        dave, _ = self.open_session("dave.smith", "d1", token=DAVE_TOKEN)
        reply = self.request(self.bob, '{"type":"send","to":"carol","data":1,"id":"z"}')
        self.assert_error(reply, "forbidden", id="z")
        reply = self.request(self.bob, '{"type":"send","to":"dave.smith","data":1}')
        self.assert_error(reply, "forbidden")
        self.assert_quiet(dave)
        # bob may send to alice
        self.request(self.bob, '{"type":"send","to":"alice","data":1}',
                     '{"type":"ack","delivered":2}')

    def test_single_star_matches_exactly_one_segment(self):
        self.subscribe(self.a1, "chat.a")
        self.subscribe(self.a1, "chat.with-dash_under@at:colon")
        for channel in ["chat", "chat.a.b", "chat.a.b.c", "xchat.a", "other.chat"]:
            with self.subTest(channel=channel):
                self.assert_error(self.request(self.a1, {"type": "subscribe", "channel": channel}),
                                  "forbidden")
                self.assert_error(self.request(self.a1, {"type": "publish", "channel": channel,
                                                         "data": 0}), "forbidden")

    def test_double_star_matches_one_or_more_segments(self):
        for channel in ["feed.a", "feed.a.b", "feed.a.b.c.d"]:
            with self.subTest(channel=channel):
                self.subscribe(self.a1, channel)
                self.unsubscribe(self.a1, channel)
                ack, _ = self.publish(self.a1, channel, 0)
                self.assertEqual(ack["delivered"], 0)
        for channel in ["feed", "feeds.a", "x.feed.a"]:
            with self.subTest(channel=channel):
                self.assert_error(self.request(self.a1, {"type": "subscribe", "channel": channel}),
                                  "forbidden")
                self.assert_error(self.request(self.a1, {"type": "publish", "channel": channel,
                                                         "data": 0}), "forbidden")

    def test_exact_name_permission(self):
        self.subscribe(self.bob, "news")
        reply = self.request(self.bob, '{"type":"subscribe","channel":"news.x"}')
        self.assert_error(reply, "forbidden")

    def test_no_permission_lists_allow_nothing(self):
        for token in (CAROL_TOKEN, "carol-token-empty-lists"):
            with self.subTest(token=token):
                carol, _ = self.open_session("carol", "c-" + token[-5:], token=token)
                for i, message in enumerate([
                        {"type": "subscribe", "channel": "news"},
                        {"type": "subscribe", "channel": "chat.x"},
                        {"type": "publish", "channel": "chat.x", "data": 1},
                        {"type": "send", "to": "alice", "data": 1},
                        {"type": "send", "to": "carol", "data": 1}]):
                    message["id"] = i
                    self.assert_error(self.request(carol, message), "forbidden", id=i)
                # ping still works: the session is not harmed
                self.assert_alive(carol)
        self.assert_quiet(self.a1, self.a2)

    # -- bad requests ------------------------------------------------------------
    def test_invalid_channel_names_are_bad_request(self):
        names = ["", ".", "chat.", ".chat", "chat..x", "chat x", "chat/x", "chat.x*",
                 "chat.*", "chat.**", "chat.\u00e9", "a" * 129, "feed." + "a" * 124]
        for i, name in enumerate(names):
            for kind in ("subscribe", "unsubscribe", "publish"):
                with self.subTest(kind=kind, channel=name[:20]):
                    message = {"type": kind, "channel": name, "id": i}
                    if kind == "publish":
                        message["data"] = 1
                    self.assert_error(self.request(self.a1, message), "bad_request", id=i)
        self.assert_alive(self.a1)

    def test_longest_channel_name_128_bytes_is_valid(self):
        name = "feed." + "a" * 123
        self.assertEqual(len(name), 128)
        self.subscribe(self.a2, name)
        since = now_ms()
        ack, _ = self.publish(self.a1, name, "long")
        self.assertEqual(ack["delivered"], 1)
        self.assert_channel_message(self.a2.recv_text(), name, "alice", "long", 1, since)

    def test_missing_or_wrong_fields_are_bad_request(self):
        cases = [
            {"type": "subscribe"},
            {"type": "subscribe", "channel": 5},
            {"type": "subscribe", "channel": None},
            {"type": "unsubscribe"},
            {"type": "publish", "channel": "chat.x"},                  # no data
            {"type": "publish", "data": 1},
            {"type": "publish", "channel": ["chat.x"], "data": 1},
            {"type": "send", "to": "bob"},                             # no data
            {"type": "send", "data": 1},
            {"type": "send", "to": 7, "data": 1},
        ]
        for i, message in enumerate(cases):
            with self.subTest(message=message):
                message = dict(message, id=100 + i)
                self.assert_error(self.request(self.a1, message), "bad_request", id=100 + i)
        self.assert_alive(self.a1)
        self.assert_quiet(self.a2, self.bob)

    def test_null_data_is_present(self):
        self.subscribe(self.a2, "chat.x")
        since = now_ms()
        ack, _ = self.publish(self.a1, "chat.x", None)
        self.assertEqual(ack["delivered"], 1)
        self.assert_channel_message(self.a2.recv_text(), "chat.x", "alice", None, 1, since)
        self.request(self.a1, '{"type":"send","to":"bob","data":null}',
                     '{"type":"ack","delivered":1}')
        self.assert_direct_message(self.bob.recv_text(), "alice", "bob", None, since)

    def test_bad_request_error_without_id_has_no_id(self):
        reply = self.request(self.a1, '{"type":"subscribe","channel":""}')
        self.assert_error(reply, "bad_request")

    # -- max_subscriptions --------------------------------------------------------
    def test_max_subscriptions(self):
        channels = ["chat.c%d" % i for i in range(MAX_SUBSCRIPTIONS)]
        for channel in channels:
            self.subscribe(self.a1, channel)
        reply = self.request(self.a1, '{"type":"subscribe","channel":"chat.over","id":1}')
        self.assert_error(reply, "limit_exceeded", id=1)
        # not subscribed to the refused channel
        ack, _ = self.publish(self.bob, "chat.over", 1)
        self.assertEqual(ack["delivered"], 0)
        # still subscribed to the others
        ack, _ = self.publish(self.bob, channels[0], 2)
        self.assertEqual(ack["delivered"], 1)
        self.assertEqual(json.loads(self.a1.recv_text())["data"], 2)
        # unsubscribing frees a place
        self.unsubscribe(self.a1, channels[1])
        self.subscribe(self.a1, "chat.over")
        self.assert_error(self.request(self.a1, '{"type":"subscribe","channel":"chat.more"}'),
                          "limit_exceeded")

    def test_max_subscriptions_is_per_session(self):
        for i in range(MAX_SUBSCRIPTIONS):
            self.subscribe(self.a1, "chat.c%d" % i)
        for i in range(MAX_SUBSCRIPTIONS):
            self.subscribe(self.a2, "chat.c%d" % i)            # another session of alice

    def test_resubscribe_at_the_limit_is_acked(self):
        """Subscribing again to a channel the session already has adds nothing,
        so it does not pass limits.max_subscriptions."""
        for i in range(MAX_SUBSCRIPTIONS):
            self.subscribe(self.a1, "chat.c%d" % i)
        self.request(self.a1, '{"type":"subscribe","channel":"chat.c0","id":2}',
                     '{"type":"ack","id":2}')

    # -- mixed ---------------------------------------------------------------------
    def test_requests_answered_in_order_with_their_ids(self):
        self.subscribe(self.a2, "chat.x")
        messages = [
            ('{"type":"subscribe","channel":"news","id":1}',
             re.compile(r'^\{"type":"ack","id":1,"epoch":"[0-9a-f]{16}","seq":0\}$')),
            ('{"type":"publish","channel":"chat.x","data":1,"id":2}',
             '{"type":"ack","id":2,"delivered":1}'),
            ('{"type":"ping","id":3}', '{"type":"pong","id":3}'),
            ('{"type":"send","to":"bob","data":1,"id":4}', '{"type":"ack","id":4,"delivered":1}'),
            ('{"type":"unsubscribe","channel":"news","id":5}', '{"type":"ack","id":5}'),
        ]
        for text, _ in messages:
            self.a1.send_text(text)
        for text, expected in messages:
            if isinstance(expected, str):
                self.assertEqual(self.a1.recv_text(), expected, text)
            else:
                self.assertRegex(self.a1.recv_text(), expected, text)
        reply = self.request(self.a1, '{"type":"subscribe","channel":"secret","id":6}')
        self.assert_error(reply, "forbidden", id=6)

    def test_errors_never_close_the_session(self):
        for text in ['{"type":"subscribe","channel":"secret"}', '{"type":"publish"}',
                     '{"type":"send","to":"carol","data":1}', 'not json', '[]']:
            self.request(self.a1, text)
        self.assert_alive(self.a1)
        self.assertEqual(self.a1.expect_silence(0.1), 0)
        self.assertEqual(self.server.log_lines("session_close"), [])


if __name__ == "__main__":
    main()
