"""Token expiry (`expires = "...Z"` per token): refused afterwards with 4003
"token expired" (HTTP 403 or a close frame), and its open sessions closed with
4004 "token expired" at that second, within 100 ms, by the timing wheel."""

import math
import signal
import time

from wsgate_harness import OP_CLOSE, TOKENS, WsgateTestCase, main, parse_close_payload, to_libconfig

EXPIRED = (4004, "token expired")


def utc(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


class ExpiryTest(WsgateTestCase):

    def start_with_bob_expiring(self, seconds=2, **overrides):
        expiry = math.ceil(time.time()) + seconds
        self.start_server(tokens=[{"token": TOKENS["alice"], "user": "alice"},
                                  {"token": TOKENS["bob"], "user": "bob", "expires": utc(expiry)}],
                          **overrides)
        return expiry

    def test_session_closed_4004_within_100ms_of_expiry_then_refused(self):
        expiry = self.start_with_bob_expiring(2)
        alice, _ = self.open_session("alice", "d1")
        bob, _ = self.open_session("bob", "d1")
        frame = bob.recv_frame(timeout=expiry - time.time() + 1)
        received = time.time()
        self.assertEqual(frame.opcode, OP_CLOSE, repr(frame))
        code, reason = parse_close_payload(frame.payload)
        self.assertEqual((code, reason.decode()), EXPIRED)
        self.assertGreaterEqual(received, expiry, "closed %.3f s before the expiry" % (expiry - received))
        self.assertLess(received - expiry, 0.1, "closed %.3f s after the expiry" % (received - expiry))
        bob.send_close(code)
        bob.expect_eof()
        _, response = self.connect(TOKENS["bob"], "d2")
        self.assert_http_reject(response, "HTTP/1.1 403 Forbidden", 4003, "token expired")
        self.assert_alive(alice)
        metrics = self.metrics()
        self.assertEqual(metrics['wsgate_handshakes_total{outcome="token_expired"}'], 1)
        self.assertEqual(metrics['wsgate_closes_total{code="4004"}'], 1)
        self.server.wait_for_log(r"event=session_close .*user=bob .*code=4004 reason=\"token expired\"")

    def test_expired_token_refused_with_close_4003(self):
        self.start_with_bob_expiring(-5, auth={"reject": "close"})
        client, response = self.connect(TOKENS["bob"], "d1")
        self.assert_close_reject(client, response, 4003, "token expired")

    def test_reload_moving_the_expiry_closes_at_the_new_time(self):
        self.start_with_bob_expiring(3600)
        bob, _ = self.open_session("bob", "d1")
        self.assert_alive(bob)
        config = dict(self.server.config)
        expiry = math.ceil(time.time()) + 1
        config["tokens"] = [config["tokens"][0], dict(config["tokens"][1], expires=utc(expiry))]
        with open(self.server.conf_path, "w") as f:
            f.write(to_libconfig(config))
        self.server.send_signal(signal.SIGHUP)
        self.assertEqual(bob.expect_close(timeout=expiry - time.time() + 1), EXPIRED)
        self.assertLess(time.time() - expiry, 0.1)


if __name__ == "__main__":
    main()
