#!/usr/bin/env bash
# Soak test (not in CI): wsgate built with AddressSanitizer + UBSan, under a
# mixed load for MINUTES minutes: connects and clean closes, subscribes,
# publishes and direct sends, repeat connects (4001), abrupt TCP drops, clients
# that stop answering pings (closed 4100 by the heartbeat), API publishes, and
# a reload every few seconds (SIGHUP, alternating two valid configs). Then the
# load stops and it checks: every client's outcome was one it expected, RSS is
# flat once the load has stopped, no ASan/LSan/UBSan report, no level=error
# line, and exit 0 on SIGTERM. Prints a summary; exit 0 when every check holds.
# Loopback only; bounded in time (MINUTES + about a minute); stops by itself.
#
# usage: scripts/soak.sh MINUTES            (1 - 720)
#   SOAK_CLIENTS    concurrent client loops (default 200)
#   SOAK_BUILD_DIR  the ASan build directory (default build-asan)
set -euo pipefail
cd "$(dirname "$0")/.."

minutes=${1:-}
if ! [[ $minutes =~ ^[0-9]+$ ]] || ((minutes < 1 || minutes > 720)); then
	sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
fi
clients=${SOAK_CLIENTS:-200}
build=${SOAK_BUILD_DIR:-build-asan}

echo "soak: building $build (Debug, -DWSGATE_SANITIZE=ON)"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DWSGATE_SANITIZE=ON >/dev/null
cmake --build "$build" -j2 >/dev/null

work=$(mktemp -d /tmp/wsgate-soak.XXXXXX)
server_pid=
reloader_pid=
cleanup() {
	[[ -n $reloader_pid ]] && kill "$reloader_pid" 2>/dev/null || true
	[[ -n $server_pid ]] && kill -KILL "$server_pid" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
api_key=soak-api-key-0123456789abcdef
# Two valid configs a reload alternates between: heartbeat, rate limit and
# permissions differ (bob may publish to chat.* in one, not in the other).
write_conf() { # file interval_ms bob_publish
	cat >"$1" <<EOF
listen = { address = "127.0.0.1"; port = $port; };
websocket = { path = "/ws"; max_message_bytes = 65536; };
sessions = { max = 5000; on_repeat = "reject-new"; };
heartbeat = { interval_ms = $2; timeout_ms = 1000; };
shutdown = { grace_ms = 2000; };
limits = { messages_per_second = 200; burst = 400; };
api = { keys = [ "$api_key" ]; };
tokens = (
  { token = "alice-soak"; user = "alice"; subscribe = [ "chat.*", "news" ]; publish = [ "chat.*" ]; send = [ "*" ]; },
  { token = "bob-soak"; user = "bob"; subscribe = [ "chat.*" ]; publish = [ $3 ]; send = [ "alice" ]; }
);
EOF
	chmod 600 "$1"
}
write_conf "$work/a.conf" 1000 '"chat.*"'
write_conf "$work/b.conf" 1500 ''
cp "$work/a.conf" "$work/wsgate.conf"

# a small quarantine: RSS then shows what wsgate holds, not 256 MB of freed blocks
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=86:quarantine_size_mb=16:log_path=$work/asan
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:exitcode=87:log_path=$work/ubsan
"$build/wsgate" -c "$work/wsgate.conf" >"$work/wsgate.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do
	grep -q 'event=listening' "$work/wsgate.log" 2>/dev/null && break
	kill -0 "$server_pid" 2>/dev/null || { cat "$work/wsgate.log"; echo "soak: wsgate did not start" >&2; exit 1; }
	sleep 0.1
done
rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$server_pid/status"; }
rss_start=$(rss)

# reloads: every 3 s, the other config, written atomically
(
	n=0
	while kill -0 "$server_pid" 2>/dev/null; do
		sleep 3
		n=$((n + 1))
		if ((n % 2)); then src=b; else src=a; fi
		cp "$work/$src.conf" "$work/wsgate.conf.new" && mv "$work/wsgate.conf.new" "$work/wsgate.conf"
		kill -HUP "$server_pid" 2>/dev/null || true
	done
) &
reloader_pid=$!

echo "soak: wsgate (ASan+UBSan) pid $server_pid on 127.0.0.1:$port; $clients client loops for $minutes min"
rss_samples="$work/rss"
: >"$rss_samples"
(
	while kill -0 "$server_pid" 2>/dev/null; do
		echo "$(date +%s) $(rss)" >>"$rss_samples"
		sleep 10
	done
) &
sampler_pid=$!

set +e
/usr/bin/python3 - "$port" "$api_key" "$((minutes * 60))" "$clients" >"$work/load.out" <<'EOF'
import asyncio, base64, json, os, random, sys, time
import websockets

port, api_key, seconds, loops = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
TOKENS = {"alice": "alice-soak", "bob": "bob-soak"}
url = lambda user, dev: "ws://127.0.0.1:%d/ws?token=%s&device=%s" % (port, TOKENS[user], dev)
stats = {}
unexpected = []

def count(what):
    stats[what] = stats.get(what, 0) + 1

async def session(i):
    user = random.choice(["alice", "bob"])
    dev = "s%d" % i
    # max_queue=None: the library keeps reading (and answering pings) whatever we consume
    async with websockets.connect(url(user, dev), ping_interval=None, open_timeout=10,
                                  close_timeout=5, max_size=None, max_queue=None) as ws:
        json.loads(await ws.recv())                      # welcome
        count("connect")
        await ws.send(json.dumps({"type": "subscribe", "channel": "chat.%d" % (i % 5), "id": 1}))
        for _ in range(random.randint(1, 20)):
            kind = random.random()
            if kind < 0.5:
                await ws.send(json.dumps({"type": "publish", "channel": "chat.%d" % (i % 5),
                                          "data": {"x": "y" * random.randint(0, 2000)}}))
            elif kind < 0.7:
                await ws.send(json.dumps({"type": "send", "to": "alice", "data": i}))
            else:
                await ws.send(json.dumps({"type": "ping", "id": 9}))
            count("message")
            await asyncio.sleep(random.random() * 0.2)
        # drain what has arrived, then close or drop
        try:
            while True:
                await asyncio.wait_for(ws.recv(), 0.05)
        except asyncio.TimeoutError:
            pass
        if random.random() < 0.2:
            ws.transport.abort()                         # abrupt: no close frame
            count("abort")
        else:
            await ws.close(1000, "bye")
            count("close")

async def repeat_connect(i):
    dev = "r%d" % i
    async with websockets.connect(url("alice", dev), ping_interval=None, open_timeout=10) as first:
        await first.recv()
        async with websockets.connect(url("alice", dev), ping_interval=None, open_timeout=10) as second:
            try:
                await asyncio.wait_for(second.recv(), 5)
                unexpected.append("repeat connect admitted")
            except websockets.ConnectionClosed as e:
                if e.rcvd is None or e.rcvd.code != 4001:
                    unexpected.append("repeat connect: %r" % (e,))
                else:
                    count("repeat_4001")
        await first.close()

async def silent(i):
    """Connects, takes the welcome, then never answers a ping: closed with 4100."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(("GET /ws?token=%s&device=h%d HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                  "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
                  % (TOKENS["bob"], i, key)).encode())
    await reader.readuntil(b"\r\n\r\n")
    code = None
    try:
        while True:                                      # read frames, answer none
            h = await asyncio.wait_for(reader.readexactly(2), 10)
            n = h[1] & 0x7F
            if n == 126:
                n = int.from_bytes(await reader.readexactly(2), "big")
            payload = await reader.readexactly(n)
            if h[0] & 0x0F == 8:
                code = int.from_bytes(payload[:2], "big")
                break
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    writer.close()
    if code == 4100:
        count("heartbeat_4100")
    else:
        unexpected.append("silent client closed with %r" % (code,))

async def api_publish():
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    body = json.dumps({"channel": "chat.1", "data": "api"})
    writer.write(("POST /api/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                  "Content-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                  % (api_key, len(body), body)).encode())
    status = (await asyncio.wait_for(reader.readline(), 10)).split()[1]
    writer.close()
    count("api_%s" % status.decode())

async def loop(n, deadline):
    i = n
    while time.monotonic() < deadline:
        i += loops
        r = random.random()
        try:
            if r < 0.80:
                await session(i)
            elif r < 0.87:
                await repeat_connect(i)
            elif r < 0.95:
                await silent(i)
            else:
                await api_publish()
        except websockets.ConnectionClosed as e:
            # a close the soak provokes: rate limit (4108), a reload's permission change
            count("closed_%s" % (e.rcvd.code if e.rcvd else "none"))
        except Exception as e:
            unexpected.append("%s: %r" % (type(e).__name__, e))
        await asyncio.sleep(random.random() * 0.1)

async def main():
    deadline = time.monotonic() + seconds
    await asyncio.gather(*(loop(n, deadline) for n in range(loops)))

asyncio.run(main())
print(json.dumps({"stats": stats, "unexpected": unexpected[:20], "unexpected_count": len(unexpected)}))
EOF
load_rc=$?
set -e

# load stopped: RSS right away and after 15 s idle
kill "$reloader_pid" 2>/dev/null || true
wait "$reloader_pid" 2>/dev/null || true
reloader_pid=
sleep 3
rss_stopped=$(rss)
sleep 15
rss_idle=$(rss)
kill "$sampler_pid" 2>/dev/null || true
wait "$sampler_pid" 2>/dev/null || true
sessions_left=$(/usr/bin/python3 -c "
import urllib.request
for l in urllib.request.urlopen('http://127.0.0.1:$port/metrics', timeout=5).read().decode().splitlines():
    if l.startswith('wsgate_sessions_open '): print(l.split()[1])")
reloads=$(grep -c 'event=reload ' "$work/wsgate.log" || true)

kill -TERM "$server_pid"
set +e
wait "$server_pid"
exit_code=$?
set -e
server_pid=

failed=0
check() { # description, condition result (0 ok)
	if [[ $2 == 0 ]]; then echo "  ok   - $1"; else echo "  FAIL - $1"; failed=1; fi
}
reports=$(cat "$work"/asan* "$work"/ubsan* 2>/dev/null | grep -cE 'ERROR: (Address|Leak)Sanitizer|runtime error:' || true)
reports=$((reports + $(grep -cE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$work/wsgate.log" || true)))
errors=$(grep -c 'level=error' "$work/wsgate.log" || true)
growth=$(awk -v a="$rss_stopped" -v b="$rss_idle" 'BEGIN { printf "%+.1f", 100 * (b - a) / a }')
flat=$(awk -v a="$rss_stopped" -v b="$rss_idle" 'BEGIN { print (b <= a * 1.05) ? 0 : 1 }')
# under load: the second half of the run should not grow much past the first (a slow leak)
mapfile -t during < <(awk '{ print $2 }' "$rss_samples")
half=${during[$((${#during[@]} / 2))]:-$rss_stopped}
half_growth=$(awk -v a="$half" -v b="$rss_stopped" 'BEGIN { printf "%+.1f", 100 * (b - a) / a }')
half_flat=$(awk -v a="$half" -v b="$rss_stopped" 'BEGIN { print (b <= a * 1.10) ? 0 : 1 }')
load=$(tail -n 1 "$work/load.out" 2>/dev/null || echo '{}')
unexpected=$(/usr/bin/python3 -c 'import json,sys; print(json.loads(sys.argv[1]).get("unexpected_count", -1))' "$load" 2>/dev/null || echo -1)

echo "soak summary: $minutes min, $clients client loops, wsgate under ASan+UBSan"
echo "  load: $load"
echo "  reloads applied: $reloads (SIGHUP every 3 s, two configs)"
echo "  RSS kB: start $rss_start, samples (every 10 s) $(awk '{ printf "%s ", $2 }' "$rss_samples")"
echo "  RSS kB: load stopped $rss_stopped, 15 s later $rss_idle ($growth%)"
echo "  sessions open after the load: $sessions_left; exit code on SIGTERM: $exit_code"
check "the load generator ran to its end (exit $load_rc)" "$load_rc"
check "every client outcome was expected ($unexpected unexpected)" "$([[ $unexpected == 0 ]] && echo 0 || echo 1)"
check "RSS flat after the load stopped ($growth% in 15 s)" "$flat"
check "RSS in the second half of the load within 10% ($half kB -> $rss_stopped kB, $half_growth%)" "$half_flat"
check "no sessions left after the load ($sessions_left)" "$([[ $sessions_left == 0 ]] && echo 0 || echo 1)"
check "no ASan/LSan/UBSan report ($reports)" "$([[ $reports == 0 ]] && echo 0 || echo 1)"
check "no level=error line ($errors)" "$([[ $errors == 0 ]] && echo 0 || echo 1)"
check "exit 0 on SIGTERM ($exit_code)" "$exit_code"
check "reloads happened ($reloads)" "$([[ $reloads -gt 0 ]] && echo 0 || echo 1)"
if ((failed)); then
	echo "soak: FAILED; log tail:"
	grep -E 'level=(error|warn)' "$work/wsgate.log" | tail -n 20 || true
	cat "$work"/asan* "$work"/ubsan* 2>/dev/null | head -n 60 || true
	exit 1
fi
echo "soak: PASSED"
