"""Rolling restart under load with listen.reuse_port: 1,000 clients that
reconnect at once on 4200; scripts/restart.sh starts a second wsgate on the
same port and drains the first (SIGUSR1). Every client must be connected to
the new process again, no connection attempt may be refused, and the old
process must exit 0."""

import asyncio
import os
import signal
import socket
import subprocess
import time

from wsgate_harness import (HOST, TOKENS, WsgateTestCase, binary, gen_certs, http_request, main,
                            parse_metrics, repo_root, ws_connect, ws_recv_json)

CLIENTS = 1000
DRAIN_MS = 2000
CONNECT_AT_ONCE = 100


class Client:
    def __init__(self, index):
        self.device = "c%d" % index
        self.sessions = []      # session ids, one per admitted connection
        self.closes = []        # close codes received
        self.failures = []      # connection attempts that did not end in a welcome


async def run_client(client, port, connected, limit, done):
    while not done.is_set():
        try:
            async with limit:
                ws = await ws_connect(port, token=TOKENS["alice"], device=client.device)
                welcome = await ws_recv_json(ws)
        except Exception as e:                      # refused, reset, 503, timeout: all failures
            client.failures.append(repr(e))
            if len(client.failures) > 3:
                return
            continue
        client.sessions.append(welcome["session"])
        connected.release()
        closed = asyncio.ensure_future(ws.wait_closed())
        stop = asyncio.ensure_future(done.wait())
        await asyncio.wait([closed, stop], return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if not closed.done():
            closed.cancel()
            await ws.close()
            return
        client.closes.append(ws.close_code)
        if ws.close_code != 4200:                   # only a drain asks to reconnect at once
            return


class RollingRestartTest(WsgateTestCase):

    def test_thousand_clients_move_to_the_new_process_without_a_refusal(self):
        old = self.start_server(listen={"reuse_port": True}, sessions={"max": 5000},
                                shutdown={"grace_ms": 2000, "drain_ms": DRAIN_MS})
        new_log = os.path.join(self.workdir, "new.log")
        clients = [Client(i) for i in range(CLIENTS)]
        result = {}

        async def scenario():
            connected = asyncio.Semaphore(0)
            limit = asyncio.Semaphore(CONNECT_AT_ONCE)
            done = asyncio.Event()
            tasks = [asyncio.ensure_future(run_client(c, old.port, connected, limit, done)) for c in clients]
            for _ in range(CLIENTS):
                await asyncio.wait_for(connected.acquire(), 30)
            result["first_open"] = parse_metrics(http_request(old.port, "GET", "/metrics").body.decode())[
                "wsgate_sessions_open"]
            since = time.monotonic()
            script = await asyncio.create_subprocess_exec(
                os.path.join(repo_root(), "scripts", "restart.sh"), str(old.proc.pid), binary(),
                old.conf_path, new_log, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            out, err = await asyncio.wait_for(script.communicate(), 60)
            result["script"] = (script.returncode, out.decode(), err.decode())
            result["drain_s"] = time.monotonic() - since
            for _ in range(CLIENTS):                    # every client admitted a second time
                await asyncio.wait_for(connected.acquire(), 30)
            result["second_open"] = parse_metrics(http_request(old.port, "GET", "/metrics").body.decode())[
                "wsgate_sessions_open"]
            done.set()
            await asyncio.wait_for(asyncio.gather(*tasks), 30)

        try:
            asyncio.run(asyncio.wait_for(scenario(), 120))
        finally:
            new_pid = int(result["script"][1].strip()) if result.get("script", (1,))[0] == 0 else None
            if new_pid:
                self.addCleanup(self.stop_pid, new_pid, new_log)
        rc, out, err = result["script"]
        self.assertEqual(rc, 0, "restart.sh: %s %s\nold log:\n%s" % (out, err, old.log()))
        self.assertEqual(old.wait(timeout=5), 0, old.log())
        self.assertEqual(result["first_open"], CLIENTS)
        self.assertEqual(result["second_open"], CLIENTS)   # /metrics now answered by the new process
        failures = [(c.device, c.failures) for c in clients if c.failures]
        self.assertEqual(failures, [], "refused or failed connection attempts")
        for c in clients:
            self.assertEqual(c.closes, [4200], c.device)
            self.assertEqual(len(c.sessions), 2, c.device)
        self.assertIn("event=drain by=SIGUSR1 sessions=%d drain_ms=%d listeners=closed" % (CLIENTS, DRAIN_MS),
                      old.log())
        self.assertEqual(len([l for l in old.log_lines("session_close") if "code=4200" in l]), CLIENTS)
        with open(new_log) as f:
            new_text = f.read()
        self.assertEqual(new_text.count("event=session_open"), CLIENTS)
        self.assertNotIn("level=error", new_text)

    def test_drain_hands_the_port_over_at_once(self):
        """With shared listeners a drain closes wsgate's listening socket at once
        (here no other process listens: refused), stays through the handover
        time, and exits 0."""
        server = self.start_server(listen={"reuse_port": True}, shutdown={"grace_ms": 1000, "drain_ms": 300})
        client, _ = self.open_session("alice", "d1")
        since = time.monotonic()
        server.send_signal(signal.SIGUSR1)
        server.wait_for_log(r"event=drain by=SIGUSR1 sessions=1 drain_ms=300 listeners=closed")
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection((HOST, server.port), timeout=1).close()
        self.assertEqual(client.expect_close(), (4200, "server draining, reconnect"))
        self.assertEqual(server.wait(timeout=3), 0, server.log())
        self.assertGreaterEqual(time.monotonic() - since, 0.5)

    def test_shared_listeners_serve_ws_and_wss(self):
        """With reuse_port wsgate accepts itself and hands connections to lws:
        plain and TLS sessions both work, and HTTP too."""
        certs = gen_certs(os.path.join(self.workdir, "certs"))
        self.cafile = os.path.join(certs, "ca.crt")
        server = self.start_server(listen={"reuse_port": True},
                                   listen_tls={"cert": os.path.join(certs, "server.crt"),
                                               "key": os.path.join(certs, "server.key")})
        plain, _ = self.open_session("alice", "d1")
        tls, _ = self.open_session("bob", "d1", tls=True)
        self.assert_alive(plain)
        self.assert_alive(tls)
        self.assertEqual(self.http("GET", "/healthz").body, b'{"status":"ok","sessions":2}')
        _, response = self.connect("wrong", "d2", tls=True)
        self.assert_http_reject(response, "HTTP/1.1 403 Forbidden", 4003, "invalid token")
        self.assertEqual(server.log().count("event=session_open"), 2)

    def stop_pid(self, pid, log_path):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            os.kill(pid, signal.SIGKILL)
            self.fail("the new wsgate did not stop on SIGTERM")
        with open(log_path) as f:
            self.assertIn("event=stopped", f.read())


if __name__ == "__main__":
    main()
