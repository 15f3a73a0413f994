"""Faults: wsgate killed with SIGKILL (no close frames, no clean-up) and
started again at once on the same port. The new process must bind although
the old one's connections still hold the port (FIN-WAIT, TIME-WAIT: no
"address in use"), and every client must get its session back at once with
the same user and device: nothing of the old process is left in the way."""

import json
import signal
import subprocess
import time

from wsgate_harness import TOKENS, WsgateTestCase, main

DEVICES = 40            # sessions per user open when the server is killed
USERS = ("alice", "bob")


class KillAndRestartTest(WsgateTestCase):

    def assert_alive(self, client):
        client.send_text('{"type":"ping","id":1}')
        self.assertEqual(json.loads(client.recv_text()), {"type": "pong", "id": 1})

    def open_all(self):
        """One session per (user, device); returns {(user, device): (client, session id)}."""
        return {(user, "d%d" % i): self.open_session(user, "d%d" % i)
                for user in USERS for i in range(DEVICES)}

    def kill_and_restart(self, **overrides):
        server = self.start_server(sessions={"max": 1000}, **overrides)
        before = self.open_all()
        for client, _ in before.values():
            self.assert_alive(client)
        # a session mid-traffic: a message the dead process never answers
        stuck = before[("alice", "d0")][0]
        stuck.send_text('{"type":"ping","id":2}')

        server.send_signal(signal.SIGKILL)
        self.assertEqual(server.proc.wait(timeout=5), -signal.SIGKILL)
        # start again at once, while the clients still hold their ends of the
        # old connections open: the server's ends still hold the port
        held = subprocess.run(["ss", "-Htan", "sport = :%d" % server.port], capture_output=True,
                              text=True, check=True).stdout.splitlines()
        self.assertGreater(len(held), 0, "no old connection holds the port: nothing tested")
        started = time.monotonic()
        server.start()
        self.assertLess(time.monotonic() - started, 2.0, "restart took too long")
        self.assertNotIn("in use", server.log())
        self.assertEqual([l for l in server.log_lines() if "level=error" in l], [])

        # every old connection ends without a close frame (the process died)
        for client, _ in before.values():
            if client is not stuck:
                client.expect_eof(timeout=3)
            client.close()

        # every user and device is admitted again at once, with a fresh session:
        # no stale session blocks the device (no 4001 "repeat connect")
        started = time.monotonic()
        after = self.open_all()
        elapsed = time.monotonic() - started
        self.assertLess(elapsed, 5.0, "reconnecting %d clients took %.1fs" % (len(after), elapsed))
        for key, (client, session) in after.items():
            self.assertNotEqual(session, before[key][1], key)
            self.assert_alive(client)
        self.assertEqual(self.metrics()["wsgate_sessions_open"], len(USERS) * DEVICES)
        for client, _ in after.values():
            self.close_by_client(client)

    def test_kill_9_then_start_again_on_the_same_port(self):
        self.kill_and_restart()

    def test_kill_9_then_start_again_with_reuse_port(self):
        self.kill_and_restart(listen={"reuse_port": True})

    def test_kill_9_twice_in_a_row(self):
        """Killed again right after the restart, before any client is back."""
        server = self.start_server()
        client, session = self.open_session("alice", "d1")
        server.send_signal(signal.SIGKILL)
        server.proc.wait(timeout=5)
        server.start()
        server.send_signal(signal.SIGKILL)
        server.proc.wait(timeout=5)
        client.expect_eof(timeout=3)
        server.start()
        again, session2 = self.open_session("alice", "d1")
        self.assertNotEqual(session, session2)
        self.assert_alive(again)


if __name__ == "__main__":
    main()
