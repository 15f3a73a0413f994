#!/usr/bin/python3
"""wsgate benchmarks: wsgate beside its peers, side by side, in one run.

Peers:
  wsgate          Release build, conf/bench/wsgate-bench.conf: token auth on every handshake,
                  the registry, the heartbeat (5 s interval) on
  lws-echo        the smallest libwebsockets echo (test/bench/lws_echo.c): the floor of our stack
  Node ws         test/bench/node_echo.js; in fanout test/bench/node_broadcast.js
  tcp-echo        a trivial epoll TCP echo: the loopback limit (echo only)
  uWebSockets     optional: $UWS_ECHO_BIN PORT, an echo server the user built from
                  uNetworking/uWebSockets (nothing of it is in this repository); echo,
                  handshake, idle and syscalls. Without UWS_ECHO_BIN it is reported as skipped.

Modes (--mode, comma-separated or repeated; default: all of them):
  core       wsgate-bench-core: registry and heartbeat wheel in process, 1k..1M sessions
  handshake  upgrades/s (wsgate: auth, registry, welcome), server CPU per handshake
  echo       msgs/s and round trip, 100 connections x 4 in flight: JSON ping/pong (32 B)
             and bare-text "ping" -> "pong"; server CPU per message
  fanout     1,000 subscribers, one publisher through POST /api/publish and one through a
             WebSocket client; deliveries/s, delivery latency, server CPU per delivery
  history    wsgate only: the bench config with its default history and with
             history = { size = 0; }, 100 subscribers and a WebSocket publisher: deliveries/s at
             an unlimited publish rate, server CPU per delivery, at 1,000 publishes/s the server
             CPU and delivery latency, the server's RSS afterwards; the same two with a cluster
             group and a redis-server of its own
  cluster    wsgate only: no cluster, and 1, 2, 3 nodes on one port (listen.reuse_port) with a
             cluster group on a redis-server of its own (no persistence): handshakes/s, fan-out
             deliveries/s to 1,000 subscribers (publishes as fast as acked) and delivery latency at
             100 publishes/s; nodes, Redis and generator are not pinned (2 cores for all of them)
  idle       RSS per session and idle CPU at 1k..15k sessions (one process) and 50k (three
             processes), wsgate heartbeat 5 s; server CPU per session per interval. Then, at the
             largest scale, the same over 3 wsgate nodes of one cluster on a redis-server of its
             own (no persistence, claim_ttl_ms = 15000), each session subscribed to one of 100
             channels: the nodes' RSS and CPU per session, and Redis while idle (commands/s,
             scripts/s, CPU, used_memory) over exactly two renewal intervals
  deadpeer   time for wsgate to close clients that stop answering pings
  syscalls   system calls per message, per handshake, per delivery and per idle session's
             heartbeat cycle (perf stat on the syscalls tracepoints) for wsgate and lws-echo (and
             uWebSockets)
  profile    perf record profiles of wsgate and lws-echo (full run only)

  scripts/bench.sh                 every mode (about 20 minutes): writes docs/bench/RESULTS.md,
                                   docs/bench/*.png, docs/bench/results.json and profiles
  scripts/bench.sh --smoke         every mode and peer, short runs, nothing written; exits 1 if
                                   a run reports an error, never because of a number (CI)
  scripts/bench.sh --mode echo     one mode (or several: --mode echo,handshake,idle); prints
                                   the tables, writes nothing under docs/
  --peers wsgate,lws               only these peers (wsgate lws node tcp uws)
  --runs N                         runs per figure (median); default 3, --smoke 1
  --scales 1000,50000              idle: these session counts (default 1000,5000,10000,15000,50000);
                                   the cluster row runs at the largest
  --out DIR                        write RESULTS.md, charts, results.json and profiles to DIR
                                   (also after --mode, --peers or --runs); the full run's default
                                   is docs/bench
  --keep                           keep the scratch directory (logs, raw JSON)
  --report DIR [--out OUT]         no measuring: the tables (and docs) again from a kept scratch
                                   directory DIR

Servers (and idle's Redis) run on CPU 0, generators on CPU 1 (taskset; in cluster mode nothing
is pinned). Every figure is the median of RUNS interleaved runs, each server started fresh.
Builds into build-release/ (Release). Loopback only. Every process it starts is ended on exit (by
pid), and every step has a timeout. Runs under /usr/bin/python3 with the standard library only.
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build-release")
OUT = os.path.join(ROOT, "docs", "bench")
TOKEN = "bench-secret"
API_KEY = "bench-api-key-0123456789"  # conf/bench/wsgate-bench.conf's api.keys
PER_PROC = 17000  # sessions per server and per generator process (open files: 20000)
ALL_MODES = ["core", "handshake", "echo", "fanout", "history", "cluster", "idle", "deadpeer", "syscalls", "profile"]
HISTORY_VARIANTS = ["on", "off", "cluster-on", "cluster-off"]
CLUSTER_NODES = [0, 1, 2, 3]  # 0: one wsgate without a cluster group, no Redis
ALL_PEERS = ["wsgate", "lws", "node", "tcp", "uws"]
NAMES = {"wsgate": "wsgate", "lws": "lws-echo (raw lws)", "node": "Node.js ws", "tcp": "tcp-echo (raw TCP)",
         "uws": "uWebSockets"}
SHORT = {"wsgate": "wsgate", "lws": "lws-echo", "node": "Node ws", "tcp": "tcp-echo", "uws": "uWS"}
UWS_SKIPPED = "uWebSockets: skipped (set UWS_ECHO_BIN to an echo server built from uWebSockets)"
# the system calls counted per operation; "other" is raw_syscalls:sys_enter minus their sum
SYSCALLS = ["read", "write", "readv", "writev", "sendto", "recvfrom", "sendmsg", "recvmsg", "poll", "ppoll",
            "epoll_wait", "epoll_pwait", "epoll_ctl", "accept", "accept4", "close", "shutdown", "fcntl", "ioctl",
            "getpeername", "getsockname", "getrandom", "setsockopt", "getsockopt", "mmap", "munmap", "brk",
            "madvise", "futex", "clock_gettime", "timerfd_settime"]


class Plan:
    """How long and how often: the full run, or the smoke check."""

    def __init__(self, smoke, runs):
        self.smoke = smoke
        self.runs = runs or (1 if smoke else 3)
        self.hs_dur = 1 if smoke else 4  # seconds per handshake run
        self.echo_dur = 1 if smoke else 5
        self.fanout_dur = 1 if smoke else 5
        self.fanout_subs = 1000
        self.fanout_inflight = 4  # publishes unacknowledged at once (ws publisher; the API takes one at a time)
        self.idle_scales = [1000] if smoke else [1000, 5000, 10000, 15000, 50000]
        self.idle_node_max = PER_PROC  # Node ws: one process only (50k Node takes too long)
        self.idle_hold = 1 if smoke else 10.5  # wsgate: two 5 s heartbeat cycles + a tick
        self.idle_hold_others = 1 if smoke else 5  # no periodic work: a shorter window suffices
        # idle in a cluster: 3 nodes and a Redis at the largest idle scale; the window is whole
        # renewal intervals (claim_ttl_ms / 3, the heartbeat's 5 s too): two, one in --smoke
        self.idle_cl_nodes, self.idle_cl_channels, self.idle_cl_ttl = 3, 100, 15000
        self.idle_cl_hold = (1 if smoke else 2) * self.idle_cl_ttl / 3000.0 + 0.3
        self.core_max = 10000 if smoke else 1000000
        self.dp_interval, self.dp_timeout, self.dp_clients = (300, 300, 3) if smoke else (1000, 1000, 10)
        self.sys_window = 1 if smoke else 4  # seconds per syscalls run
        self.sys_idle_sessions = 10000
        self.echo_conns, self.echo_inflight, self.echo_size = 100, 4, 32
        self.hs_window = 64
        self.hb_interval = self.hb_timeout = 5000
        # history: one fresh wsgate per variant, load and run
        self.hist_subs, self.hist_rate = 100, 1000  # subscribers; publishes/s of the fixed-rate load
        self.hist_dur = 1 if smoke else 3
        # cluster: fresh Redis and nodes per node count, load and run (about 3 minutes at --runs 3)
        self.cl_subs, self.cl_rate = 1000, 100
        self.cl_dur = 1 if smoke else 2


# ---------------------------------------------------------------- processes


class Procs:
    """Every process this program started, ended by pid on exit."""

    def __init__(self):
        self.live = []

    def spawn(self, argv, log_path, **kw):
        log = open(log_path, "ab")
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, **kw)
        log.close()
        self.live.append(p)
        return p

    def stop(self, p, grace=3.0):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(grace)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if p in self.live:
            self.live.remove(p)

    def stop_all(self):
        for p in list(self.live):
            self.stop(p, 2.0)


PROCS = Procs()


def log(msg):
    print("[bench %4ds] %s" % (time.time() - T0, msg), file=sys.stderr, flush=True)


T0 = time.time()


def listening(port):
    """Whether something listens on TCP port 'port' (ss over netlink: /proc/net/tcp lists every
    TIME_WAIT socket of the previous runs and is slow to read)."""
    r = subprocess.run(["ss", "-Hltn", "sport = :%d" % port], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL, text=True)
    return "LISTEN" in r.stdout


def cpu_ticks(pid):
    """utime + stime of a process in clock ticks (/proc/PID/stat fields 14 and 15)."""
    st = open("/proc/%d/stat" % pid).read()
    f = st[st.rindex(")") + 2:].split()
    return int(f[11]) + int(f[12])


def metrics(port, names):
    """Some gauges of wsgate's GET /metrics (no API key needed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        c.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        data = b""
        while True:  # to the end of the body (Content-Length), or until the server closes
            head, sep, body = data.partition(b"\r\n\r\n")
            m = re.search(rb"(?im)^content-length:\s*(\d+)", head) if sep else None
            if m and len(body) >= int(m.group(1)):
                break
            d = c.recv(65536)
            if not d:
                break
            data += d
    text = data.decode("utf-8", "replace")
    return {k: int(float(v)) for k, v in re.findall(r"(?m)^(\w+) ([0-9.e+]+)\s*$", text) if k in names}


def redis_info(port, section):
    """INFO SECTION of the Redis on 'port' over a raw RESP connection: {field: text}."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        c.sendall(b"*2\r\n$4\r\nINFO\r\n$%d\r\n%s\r\n" % (len(section), section.encode()))
        data, want = b"", None  # the reply: $LEN\r\nTEXT\r\n
        while want is None or len(data) < want:
            d = c.recv(65536)
            if not d:
                raise OSError("redis closed the connection")
            data += d
            if want is None and b"\r\n" in data:
                head = data[:data.index(b"\r\n")]
                if not head.startswith(b"$"):
                    raise ValueError("INFO %s: %r" % (section, head[:80]))
                want = len(head) + 2 + int(head[1:]) + 2
    text = data[data.index(b"\r\n") + 2:want - 2].decode("utf-8", "replace")
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line and not line.startswith("#"))


def redis_sample(port, pid):
    """What redis_window() compares: per-command call counts (INFO commandstats), totals, CPU."""
    calls = {k[len("cmdstat_"):]: int(re.search(r"calls=(\d+)", v).group(1))
             for k, v in redis_info(port, "commandstats").items() if k.startswith("cmdstat_")}
    st = redis_info(port, "stats")
    return {"t": time.time(), "calls": calls, "total": int(st["total_commands_processed"]), "ticks": cpu_ticks(pid),
            "port": port}


def redis_window(a, b, hz):
    """Redis between two samples, its own INFO calls left out: commands/s (counted by INFO
    commandstats, which includes the commands a script calls), scripts/s (EVAL, EVALSHA, FCALL),
    the commands per name, CPU; and its memory and keys at the end."""
    secs = b["t"] - a["t"]
    calls = {k: v - a["calls"].get(k, 0) for k, v in b["calls"].items() if k != "info" and v > a["calls"].get(k, 0)}
    mem, keys = redis_info(b["port"], "memory"), redis_info(b["port"], "keyspace")
    return {"redis_window_s": round(secs, 3), "redis_calls": calls,
            "redis_cmds_per_s": round(sum(calls.values()) / secs, 2),
            "redis_scripts_per_s": round(sum(v for k, v in calls.items()
                                             if k in ("eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro"))
                                         / secs, 2),
            # total_commands_processed's count less the two INFOs of ours it includes (a's
            # stats and b's commandstats): a cross-check of how Redis counts script calls
            "redis_total_commands": b["total"] - a["total"] - 2,
            "redis_cpu_pct": round((b["ticks"] - a["ticks"]) / hz / secs * 100, 2),
            "redis_used_memory_b": int(mem["used_memory"]),
            "redis_keys": int(re.search(r"keys=(\d+)", keys.get("db0", "keys=0")).group(1))}


def rss_kb(pid):
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# ---------------------------------------------------------------- the bench


class Bench:
    def __init__(self, plan, modes, peers, work):
        self.p = plan
        self.modes = modes
        self.work = work
        self.raw = os.path.join(work, "raw")
        self.logs = os.path.join(work, "logs")
        os.makedirs(self.raw)
        os.makedirs(self.logs)
        self.next_port = 18100
        self.records = []  # {mode, peer, variant, scale, run, file, error}
        self.uws = os.environ.get("UWS_ECHO_BIN", "")
        if not (self.uws and os.path.isfile(self.uws) and os.access(self.uws, os.X_OK)):
            self.uws = ""
        self.peers = [p for p in peers if p != "uws" or self.uws]
        self.skipped = [] if self.uws or "uws" not in peers else [UWS_SKIPPED]
        two = (os.cpu_count() or 1) >= 2
        self.server_cpu = ["taskset", "-c", "0"] if two else []
        self.gen_cpu = ["taskset", "-c", "1"] if two else []
        self.hs_rate = {"wsgate": 8000, "lws": 8000, "node": 3000, "uws": 8000}
        self.perf_ok = None
        self.redis = shutil.which("redis-server") or ""  # Debian's (scripts/install-deps.sh --bench)

    # ---- bookkeeping
    def record(self, mode, peer, run, path, error, variant="", scale="-"):
        error = " ".join((error or "").split())  # one line: it goes into logs and tables
        self.records.append({"mode": mode, "peer": peer, "variant": variant, "scale": str(scale), "run": run,
                             "file": path, "error": error})
        if error:
            log("ERROR %s%s %s %s run %d: %s" % (mode, "/" + variant if variant else "", peer, scale, run, error))

    def errors(self):
        return [r for r in self.records if r["error"]]

    def want(self, *peers):
        return [p for p in peers if p in self.peers]

    # ---- servers
    def free_port(self):
        while True:
            port = self.next_port
            self.next_port += 1
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                    return port
                except OSError:
                    continue  # someone else's: the machine is shared

    def wsgate_conf(self, port, interval, timeout, groups=None, reuse_port=False, name="", subscribe=None):
        """A copy of conf/bench/wsgate-bench.conf with this run's port and heartbeat; 'groups'
        ({name: "{ ... }"}) replace or add top-level groups (history, cluster); 'subscribe' (a
        list of channel names or globs) replaces the bench token's subscribe permission."""
        text = open(os.path.join(ROOT, "conf/bench/wsgate-bench.conf")).read()
        text, n = re.subn(r"(?m)^(  port = )\d+;", r"\g<1>%d;" % port, text)
        text = re.sub(r"(?m)^(  interval_ms = )\d+;", r"\g<1>%d;" % interval, text)
        text = re.sub(r"(?m)^(  timeout_ms = )\d+;", r"\g<1>%d;" % timeout, text)
        if n != 1:
            sys.exit("bench: cannot set the port in conf/bench/wsgate-bench.conf")
        if reuse_port:
            text = re.sub(r"(?m)^(  port = \d+;)$", r"\1\n  reuse_port = true;", text, count=1)
        if subscribe:
            text, k = re.subn(r"(?m)^(\s*subscribe = )\[[^]]*\];", lambda m: m.group(1) + "[ %s ];" % ", ".join(
                '"%s"' % c for c in subscribe), text)
            if k != 1:
                sys.exit("bench: cannot set the token's subscribe in conf/bench/wsgate-bench.conf")
        for key, body in (groups or {}).items():
            group = "%s = %s;\n" % (key, body)
            text, k = re.subn(r"(?ms)^%s\s*=\s*\{.*?^\};\n" % key, lambda m: group, text)
            if not k:
                text += "\n" + group
        path = os.path.join(self.work, "wsgate-%d%s.conf" % (port, "-" + name if name else ""))
        open(path, "w").write(text)
        os.chmod(path, 0o600)  # it holds tokens: wsgate refuses a config open to others
        return path

    def start_server(self, peer, interval=None, timeout=None, broadcast=False):
        """Starts a fresh server on a port of its own; returns (process, port)."""
        port = self.free_port()
        argv = {
            "wsgate": lambda: [os.path.join(BUILD, "wsgate"), "-c",
                               self.wsgate_conf(port, interval or self.p.hb_interval, timeout or self.p.hb_timeout)],
            "lws": lambda: [os.path.join(BUILD, "lws-echo"), "--port", str(port)],
            "node": lambda: ["node", os.path.join(ROOT, "test/bench",
                                                  "node_broadcast.js" if broadcast else "node_echo.js"), str(port)],
            "tcp": lambda: [os.path.join(BUILD, "tcp-echo"), "--port", str(port)],
            "uws": lambda: [self.uws, str(port)],
        }[peer]()
        log_path = os.path.join(self.logs, "%s-%d.log" % (peer, port))
        proc = PROCS.spawn(self.server_cpu + argv, log_path, cwd=ROOT)
        for _ in range(200):
            if proc.poll() is not None:
                break
            if listening(port):
                return proc, port
            time.sleep(0.02)
        PROCS.stop(proc)
        sys.stderr.write(open(log_path, errors="replace").read())
        sys.exit("bench: %s did not listen on port %d (its log is above)" % (peer, port))

    def start_redis(self, pin):
        """A redis-server of its own on a free loopback port, no persistence; returns (process, port)."""
        port = self.free_port()
        log_path = os.path.join(self.logs, "redis-%d.log" % port)
        proc = PROCS.spawn(pin + [self.redis, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                  "--appendonly", "no", "--dir", self.work], log_path, cwd=self.work)
        deadline = time.time() + 10
        while proc.poll() is None and time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as c:
                    c.sendall(b"PING\r\n")
                    if c.recv(64).startswith(b"+PONG"):
                        return proc, port
            except OSError:
                pass
            time.sleep(0.02)
        PROCS.stop(proc)
        sys.stderr.write(open(log_path, errors="replace").read())
        sys.exit("bench: redis-server did not answer on port %d (its log is above)" % port)

    def start_nodes(self, count, redis_port=None, groups=None, pin=None, first=1, cluster_extra="", subscribe=None):
        """'count' wsgate processes on one port (listen.reuse_port when more than one); with
        redis_port each has a cluster group (nodes n<first>..; 'cluster_extra' more of its
        settings). Returns (processes, port) once each has logged that it listens and, in a
        cluster, that it reached Redis."""
        port = self.free_port()
        procs = []
        for i in range(count):
            name = "n%d" % (i + first)
            g = dict(groups or {})
            if redis_port:
                g["cluster"] = '{ redis = "redis://127.0.0.1:%d/0"; node = "%s"; %s}' % (
                    redis_port, name, cluster_extra + " " if cluster_extra else "")
            conf = self.wsgate_conf(port, self.p.hb_interval, self.p.hb_timeout, g, count > 1, name, subscribe)
            log_path = os.path.join(self.logs, "wsgate-%d-%s.log" % (port, name))
            proc = PROCS.spawn((self.server_cpu if pin is None else pin) + [os.path.join(BUILD, "wsgate"), "-c", conf],
                               log_path, cwd=ROOT)
            procs.append(proc)
            want = ["event=listening"] + (["event=cluster_redis_up"] if redis_port else [])
            deadline = time.time() + 10
            while proc.poll() is None and time.time() < deadline:
                text = open(log_path, errors="replace").read()
                if all(w in text for w in want) and listening(port):
                    break
                time.sleep(0.02)
            else:
                for q in procs:
                    PROCS.stop(q)
                sys.stderr.write(open(log_path, errors="replace").read())
                sys.exit("bench: wsgate node %s did not start on port %d (its log is above)" % (name, port))
        return procs, port

    # ---- the generator
    @staticmethod
    def peer_args(peer):
        if peer == "wsgate":
            return ["--peer", "wsgate", "--path", "/ws?token=" + TOKEN]
        if peer == "tcp":
            return ["--raw-tcp"]
        return ["--peer", "echo"]

    def gen_argv(self, path, duration, args, pin=None):
        # the generator measures 'duration' after its setup (60 s at most); -k 30: after a SIGINT
        # (idle) a generator closes 17k sessions before its report
        return (["timeout", "-k", "30", str(int(duration) + 90)] + (self.gen_cpu if pin is None else pin) +
                [os.path.join(BUILD, "wsgate-bench"), "--duration", str(duration), "--json", path] + args)

    def gen(self, path, duration, args, pin=None):
        """Runs one generator to its end; returns an error text or ''."""
        g = self.gen_bg(path, duration, args, pin)
        rc = g.wait()
        PROCS.live.remove(g)
        return "" if rc == 0 else "generator exit %d %s" % (rc, open(path[:-5] + ".err").read(300))

    def gen_sampled(self, path, duration, args, pids, marker=None, pin=None):
        """gen(), and the CPU of the processes 'pids' over the generator's measured window: from
        its 'marker' line on stderr (None: from its start) for 'duration' seconds. Returns (error
        text or '', {"cpu_pct": [per process, % of a core], "window_s": s} or None)."""
        g = self.gen_bg(path, duration, args, pin)
        err_path, hz, cpu = path[:-5] + ".err", os.sysconf("SC_CLK_TCK"), None
        try:
            limit = time.time() + 90
            while marker and g.poll() is None and time.time() < limit and \
                    marker not in open(err_path, errors="replace").read():
                time.sleep(0.01)
            if g.poll() is None and time.time() < limit:
                t0, a = time.time(), [cpu_ticks(pid) for pid in pids]
                time.sleep(duration)
                t1, b = time.time(), [cpu_ticks(pid) for pid in pids]
                cpu = {"cpu_pct": [round((y - x) / hz / (t1 - t0) * 100, 2) for x, y in zip(a, b)],
                       "window_s": round(t1 - t0, 3)}
        except (OSError, ValueError):
            cpu = None  # a process ended early: the generator's counters say why
        rc = g.wait()
        PROCS.live.remove(g)
        return ("" if rc == 0 else "generator exit %d %s" % (rc, open(err_path).read(300))), cpu

    def gen_bg(self, path, duration, args, pin=None):
        out = open(path[:-5] + ".out", "wb")
        err = open(path[:-5] + ".err", "wb")
        p = subprocess.Popen(self.gen_argv(path, duration, args, pin), stdout=out, stderr=err)
        out.close()
        err.close()
        PROCS.live.append(p)
        return p

    @staticmethod
    def check(path, mode, want=0):
        """The counters that must be zero, and the main figure, of one generator result."""
        try:
            r = json.load(open(path))
        except Exception as e:
            return "no result (%s)" % e
        bad = ["%s=%s" % (k, r[k]) for k in ("connect_errors", "handshake_errors", "protocol_errors",
                                             "server_closes", "no_welcome", "eof_closes", "unclean_closes",
                                             "bad_replies", "subscribe_errors", "bad_responses") if r.get(k)]
        main = {"handshake": "handshakes_per_s", "echo": "msgs_per_s", "idle": "sessions",
                "fanout": "deliveries_per_s"}[mode]
        if not r.get(main):
            bad.append("%s=0" % main)
        if mode == "idle" and (r.get("sessions") != want or not r.get("all_open")):
            bad.append("sessions=%s of %d" % (r.get("sessions"), want))
        return " ".join(bad)

    # ---- mode: core
    def run_core(self):
        log("core: wsgate-bench-core (registry and heartbeat wheel, 1k..%d sessions)" % self.p.core_max)
        for run in range(1, self.p.runs + 1):
            path = os.path.join(self.raw, "core-r%d.txt" % run)
            with open(path, "wb") as f:
                rc = subprocess.call(["timeout", "-k", "3", "120"] + self.server_cpu +
                                     [os.path.join(BUILD, "wsgate-bench-core"), str(self.p.core_max)],
                                     stdout=f, stderr=subprocess.STDOUT)
            ok = rc == 0 and "fired=" in open(path).read()
            self.record("core", "wsgate", run, path, "" if ok else "wsgate-bench-core exit %d" % rc)

    # ---- modes: handshake, echo, fanout (one server, one generator)
    def one_run(self, mode, peer, run, variant=""):
        proc, port = self.start_server(peer, broadcast=(mode == "fanout"))
        path = os.path.join(self.raw, "%s%s-%s-r%d.json" % (mode, "-" + variant if variant else "", peer, run))
        args = ["--mode", mode, "--port", str(port), "--server-pid", str(proc.pid)] + self.peer_args(peer)
        args += self.mode_args(mode, variant)
        err = self.gen(path, {"handshake": self.p.hs_dur, "echo": self.p.echo_dur,
                              "fanout": self.p.fanout_dur}[mode], args)
        PROCS.stop(proc)
        err = " ".join(e for e in (err, self.check(path, mode)) if e)
        self.record(mode, peer, run, path, err, variant)

    def mode_args(self, mode, variant):
        p = self.p
        if mode == "handshake":
            # eight source addresses: 20k upgrades/s would run one address out of ephemeral ports
            return ["--window", str(p.hs_window), "--sources", ",".join("127.0.0.%d" % i for i in range(2, 10))]
        if mode == "echo":
            a = ["--connections", str(p.echo_conns), "--inflight", str(p.echo_inflight), "--size", str(p.echo_size)]
            return a + (["--text-ping"] if variant == "text" else [])
        if mode == "fanout":
            a = ["--subscribers", str(p.fanout_subs), "--window", "256", "--publisher", variant]
            return a + (["--api-key", API_KEY] if variant == "api" else ["--inflight", str(p.fanout_inflight)])
        if mode == "idle":  # syscalls per heartbeat cycle: one process of idle sessions
            return ["--connections", str(p.sys_idle_sessions), "--window", "256",
                    "--sources", "127.0.0.2,127.0.0.3,127.0.0.4"]
        raise ValueError(mode)

    def run_handshake(self):
        peers = self.want("wsgate", "lws", "node", "uws")
        log("handshake: %s, %d x %ss, window %d" % (" ".join(peers), self.p.runs, self.p.hs_dur, self.p.hs_window))
        for run in range(1, self.p.runs + 1):
            for peer in peers:
                self.one_run("handshake", peer, run)
        for peer in peers:
            v = [json.load(open(r["file"]))["handshakes_per_s"] for r in self.records
                 if r["mode"] == "handshake" and r["peer"] == peer and not r["error"]]
            if v and statistics.median(v) > 500:
                self.hs_rate[peer] = statistics.median(v)

    def run_echo(self):
        peers = self.want("wsgate", "lws", "node", "tcp", "uws")
        p = self.p
        log("echo: %s, %d x %ss, %d connections x %d in flight; JSON %d B and bare-text ping"
            % (" ".join(peers), p.runs, p.echo_dur, p.echo_conns, p.echo_inflight, p.echo_size))
        for run in range(1, p.runs + 1):
            for variant in ("json", "text"):
                for peer in peers:
                    self.one_run("echo", peer, run, variant)

    def run_fanout(self):
        cases = [(peer, v) for peer, v in (("wsgate", "api"), ("wsgate", "ws"), ("node", "ws")) if peer in self.peers]
        log("fanout: %s, %d x %ss, %d subscribers" % (" ".join("%s/%s" % c for c in cases), self.p.runs,
                                                       self.p.fanout_dur, self.p.fanout_subs))
        for run in range(1, self.p.runs + 1):
            for peer, variant in cases:
                self.one_run("fanout", peer, run, variant)

    # ---- mode: history (one wsgate, or one cluster node and its Redis)
    def redis_ok(self, mode, what):
        if self.redis:
            return True
        self.skipped.append("%s: %s skipped (no redis-server; scripts/install-deps.sh --bench installs it)"
                            % (mode, what))
        return False

    def run_history(self):
        p = self.p
        variants = HISTORY_VARIANTS if self.redis_ok("history", "the cluster variants") else HISTORY_VARIANTS[:2]
        log("history: %s, %d x %ss, %d subscribers, a ws publisher unlimited and at %d publishes/s"
            % (" ".join(variants), p.runs, p.hist_dur, p.hist_subs, p.hist_rate))
        for run in range(1, p.runs + 1):
            for variant in variants:
                for load in ("max", "rate"):
                    self.history_run(variant, load, run)

    def history_run(self, variant, load, run):
        """History on (the bench config's default) or off (history = { size = 0; }), optionally
        with a cluster group on a Redis of its own (Redis on the server's CPU)."""
        p = self.p
        cluster = variant.startswith("cluster")
        redis = self.start_redis(self.server_cpu) if cluster else None
        groups = {"history": "{ size = 0; }"} if variant.endswith("off") else {}
        (proc,), port = self.start_nodes(1, redis and redis[1], groups)
        path = os.path.join(self.raw, "history-%s-%s-r%d.json" % (variant, load, run))
        args = (["--mode", "fanout", "--port", str(port), "--server-pid", str(proc.pid)] + self.peer_args("wsgate") +
                ["--subscribers", str(p.hist_subs), "--window", "256", "--publisher", "ws",
                 "--inflight", str(p.fanout_inflight)] + (["--rate", str(p.hist_rate)] if load == "rate" else []))
        err, cpu = self.gen_sampled(path, p.hist_dur, args, [redis[0].pid] if redis else [], "publishing")
        extra = {"redis_cpu_pct": cpu["cpu_pct"][0]} if redis and cpu else {}
        try:  # after the load: the server's RSS, and whether history was on as the variant says
            extra["server_rss_kb_after"] = rss_kb(proc.pid)
            extra.update(metrics(port, ("wsgate_history_entries", "wsgate_history_bytes")))
        except (OSError, ValueError) as e:
            err = (err + " cannot read the server after the load: %s" % e).strip()
        PROCS.stop(proc)
        if redis:
            PROCS.stop(redis[0])
        err = " ".join(e for e in (err, self.check(path, "fanout")) if e)
        entries = extra.get("wsgate_history_entries")
        if not cluster and entries is not None and (entries > 0) != variant.endswith("on"):
            # the cluster's history may live in Redis: only one process's figure is checked
            err = (err + " history %s but wsgate_history_entries=%d" % (variant, entries)).strip()
        try:
            r = json.load(open(path))
            r.update(extra)
            json.dump(r, open(path, "w"))
        except (OSError, ValueError):
            pass  # check() said so
        self.record("history", "wsgate", run, path, err, variant, load)

    # ---- mode: cluster (1-3 nodes on one port and a Redis, or one wsgate alone)
    def run_cluster(self):
        p = self.p
        if not self.redis_ok("cluster", "every case"):
            return
        log("cluster: no cluster and 1-3 nodes, %d x %ss per load: handshakes, fan-out to %d subscribers "
            "unlimited and at %d publishes/s (nothing pinned)" % (p.runs, p.cl_dur, p.cl_subs, p.cl_rate))
        for run in range(1, p.runs + 1):
            for n in CLUSTER_NODES:
                for load in ("handshake", "fanout", "rate"):
                    self.cluster_run(n, load, run)

    def cluster_run(self, n, load, run):
        """n nodes (0: one wsgate without a cluster) started fresh with their own Redis; one load.
        Nothing is pinned: the nodes, Redis and the generator share the machine's cores."""
        p = self.p
        redis = self.start_redis([]) if n else None
        procs, port = self.start_nodes(max(n, 1), redis and redis[1], pin=[])
        path = os.path.join(self.raw, "cluster-%d-%s-r%d.json" % (n, load, run))
        args = ["--mode", "handshake" if load == "handshake" else "fanout", "--port", str(port)]
        args += self.peer_args("wsgate")
        if load == "handshake":
            args += self.mode_args("handshake", "")
        else:
            args += ["--subscribers", str(p.cl_subs), "--window", "256", "--publisher", "ws",
                     "--inflight", str(p.fanout_inflight)] + (["--rate", str(p.cl_rate)] if load == "rate" else [])
        pids = [proc.pid for proc in procs] + ([redis[0].pid] if redis else [])
        err, cpu = self.gen_sampled(path, p.cl_dur, args, pids, None if load == "handshake" else "publishing", pin=[])
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)  # all at once: each frees its claims in Redis as it goes
        for proc in procs:
            PROCS.stop(proc)
        if redis:
            PROCS.stop(redis[0])
        err = " ".join(e for e in (err, self.check(path, "handshake" if load == "handshake" else "fanout")) if e)
        if cpu:  # the nodes' and Redis's CPU over the generator's window
            try:
                r = json.load(open(path))
                r.update(nodes_cpu_pct=round(sum(cpu["cpu_pct"][:len(procs)]), 2),
                         redis_cpu_pct=cpu["cpu_pct"][-1] if redis else None, cpu_window_s=cpu["window_s"])
                json.dump(r, open(path, "w"))
            except (OSError, ValueError):
                pass  # check() said so
        self.record("cluster", "wsgate", run, path, err, str(n), load)

    # ---- mode: idle (several servers and generators at once)
    def idle_run(self, peer, n, run, cluster=False):
        """N sessions over ceil(N / PER_PROC) fresh servers, one generator each, all at once. When
        every generator has said that all its sessions are open, the servers' CPU is sampled over
        'hold' seconds; then SIGINT ends the generators (through timeout, which passes it on).
        cluster: the servers are idle_cl_nodes wsgate nodes (a port each) of one cluster on a
        fresh Redis, each session subscribed to one of idle_cl_channels channels; Redis's command
        counts, CPU and memory are sampled over the same window."""
        p = self.p
        procs = p.idle_cl_nodes if cluster else (n + PER_PROC - 1) // PER_PROC
        hold = p.idle_cl_hold if cluster else p.idle_hold if peer == "wsgate" else p.idle_hold_others
        # a cap only: opening at a tenth of the measured handshake rate, all servers on CPU 0
        cap = round(n / (0.1 * self.hs_rate.get(peer, 3000)) + hold + 10, 1)
        variant, tag = ("cluster", "idle-cluster") if cluster else ("", "idle")
        redis = self.start_redis(self.server_cpu) if cluster else None
        if cluster:  # a port per node, as without the cluster: each generator loads one process
            servers = []
            for i in range(procs):
                (proc,), port = self.start_nodes(1, redis[1], first=i + 1, subscribe=["bench", "bench.*"],
                                                 cluster_extra="claim_ttl_ms = %d;" % p.idle_cl_ttl)
                servers.append((proc, port))
        else:
            servers = [self.start_server(peer) for _ in range(procs)]
        files, gens = [], []
        for i, (proc, port) in enumerate(servers):
            each = n // procs + (1 if i < n % procs else 0)
            path = os.path.join(self.raw, "%s-%s-%d-r%d-p%d.json" % (tag, peer, n, run, i))
            files.append((path, each))
            gens.append(self.gen_bg(path, cap, [
                "--mode", "idle", "--port", str(port), "--connections", str(each), "--window", "256",
                "--server-pid", str(proc.pid), "--device-prefix", "g%dn" % i,
                "--sources", ",".join("127.0.%d.%d" % (i + 1, k) for k in (2, 3, 4))] + self.peer_args(peer) +
                (["--channels", str(p.idle_cl_channels)] if cluster else [])))
        pids = [proc.pid for proc, _ in servers]

        def sample():
            return time.time(), sum(cpu_ticks(pid) for pid in pids), sum(rss_kb(pid) for pid in pids)

        def all_open():
            return all("sessions open after" in open(path[:-5] + ".err", errors="replace").read()
                       for path, _ in files)

        t_launch = time.time()
        while not all_open() and all(g.poll() is None for g in gens) and time.time() < t_launch + cap:
            time.sleep(0.05)
        cpu_path = os.path.join(self.raw, "%s-%s-%d-r%d-cpu.json" % (tag, peer, n, run))
        try:
            opened = all_open()
            if opened:
                time.sleep(0.3)  # the last welcomes and their log lines
                ra = redis_sample(redis[1], redis[0].pid) if redis else None
                a = sample()
                time.sleep(hold - 0.3)
                b = sample()
                rb = redis_sample(redis[1], redis[0].pid) if redis else None
                hz = os.sysconf("SC_CLK_TCK")
                res = {"window_s": round(b[0] - a[0], 3), "open_s": round(a[0] - 0.3 - t_launch, 2),
                       "cpu_pct": round((b[1] - a[1]) / hz / (b[0] - a[0]) * 100, 2),
                       "rss_kb_start": a[2], "rss_kb_end": b[2], "processes": len(pids)}
                if redis:
                    res.update(redis_window(ra, rb, hz))
                json.dump(res, open(cpu_path, "w"))
            # not all open within the cap: no CPU window (it would hold handshakes); the generators' note says it
            self.record("idlecpu", peer, run, cpu_path if opened else "", "", variant, n)
        except (OSError, ValueError) as e:
            self.record("idlecpu", peer, run, cpu_path, "cannot sample the servers: %s" % e, variant, n)
        for g in gens:
            if g.poll() is None:
                g.send_signal(signal.SIGINT)
        for g, (path, each) in zip(gens, files):
            rc = g.wait()
            PROCS.live.remove(g)
            err = self.check(path, "idle", each)
            if not self.p.smoke and err and rc == 0 and not re.search(
                    r"connect_errors|handshake_errors|protocol_errors|eof_closes|bad_replies|subscribe_errors|"
                    r"no result", err):
                # not all open, server closes, close grace exceeded: a finding under load, kept as a note
                self.record("idle", peer, run, path, "", variant, n)
                self.records[-1]["note"] = err
                continue
            if rc:
                err = "generator exit %d %s %s" % (rc, open(path[:-5] + ".err").read(300), err)
            self.record("idle", peer, run, path, err, variant, n)
        for proc, _ in servers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)  # all at once: cluster nodes free their claims as they go
        for proc, _ in servers:
            PROCS.stop(proc, 5.0)
        if redis:
            PROCS.stop(redis[0])

    def run_idle(self):
        p = self.p
        peers = self.want("wsgate", "lws", "node", "uws")
        top = max(p.idle_scales)
        cluster = top >= p.idle_cl_nodes and self.redis_ok("idle", "the cluster row")
        log("idle: %s at %s sessions (node up to %d), wsgate heartbeat %d ms%s"
            % (" ".join(peers), " ".join(map(str, p.idle_scales)), p.idle_node_max, p.hb_interval,
               "; then %d sessions over %d cluster nodes and Redis, %d channels" % (
                   top, p.idle_cl_nodes, p.idle_cl_channels) if cluster else ""))
        for run in range(1, p.runs + 1):
            for n in p.idle_scales:
                for peer in peers:
                    if peer == "node" and (n > p.idle_node_max or n not in (1000, 10000)):
                        continue  # one Node process, and two points: a Node run takes long
                    self.idle_run(peer, n, run)
            if cluster:
                self.idle_run("wsgate", top, run, cluster=True)

    # ---- mode: deadpeer
    def run_deadpeer(self):
        p = self.p
        log("deadpeer: wsgate heartbeat %d/%d ms, %d silent clients x %d" % (p.dp_interval, p.dp_timeout,
                                                                           p.dp_clients, p.runs))
        for run in range(1, p.runs + 1):
            path = os.path.join(self.raw, "deadpeer-wsgate-r%d.json" % run)
            limit = (p.dp_interval + p.dp_timeout) * 3 // 1000 + 5
            proc, port = self.start_server("wsgate", p.dp_interval, p.dp_timeout)
            with open(path, "wb") as out, open(path[:-5] + ".err", "wb") as err:
                rc = subprocess.call(["timeout", "-k", "3", str(limit + 10)] + self.gen_cpu +
                                     [sys.executable, os.path.abspath(__file__), "_deadpeer-client", str(port),
                                      str(p.dp_clients), "37", str(limit), TOKEN, str(p.dp_interval),
                                      str(p.dp_timeout)], stdout=out, stderr=err)
            PROCS.stop(proc)
            try:
                cl = json.load(open(path))["clients"]
                bad = [c for c in cl if c is None or "error" in c or c.get("code") != 4100]
                msg = " ".join("client %s: %s" % (c and c["client"], c and c.get("error", "code %s" % c.get("code")))
                               for c in bad)
            except Exception as e:
                msg = "no result (%s)" % e
            if rc:
                msg = "client exit %d %s %s" % (rc, open(path[:-5] + ".err").read(300), msg)
            self.record("deadpeer", "wsgate", run, path, msg.strip(), scale="%d/%d" % (p.dp_interval, p.dp_timeout))

    # ---- perf
    def perf_works(self):
        if self.perf_ok is None:
            self.perf_ok = bool(shutil.which("perf")) and subprocess.call(
                ["perf", "stat", "-e", "syscalls:sys_enter_write,raw_syscalls:sys_enter", "true"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) == 0
        return self.perf_ok

    def run_syscalls(self):
        """One more run per case with perf stat attached to the server, its counting switched on
        and off by the generator at the edges of its measured window (--perf-control): the calls
        counted are exactly those of the operations the generator reports."""
        if not self.perf_works():
            log("syscalls: skipped (perf stat cannot count syscalls tracepoints here)")
            self.skipped.append("syscalls: perf stat cannot count the syscalls tracepoints here")
            return
        p = self.p
        cases = [("echo", "json", "wsgate"), ("echo", "text", "wsgate"), ("echo", "json", "lws"),
                 ("echo", "json", "uws"), ("handshake", "", "wsgate"), ("handshake", "", "lws"),
                 ("handshake", "", "uws"), ("fanout", "api", "wsgate"), ("fanout", "ws", "wsgate"),
                 ("idle", "", "wsgate")]
        if p.smoke:
            cases = [("echo", "json", "wsgate")]
        cases = [c for c in cases if c[2] in self.peers]
        log("syscalls: perf stat over %ss runs: %s" % (p.sys_window, ", ".join(
            "%s%s %s" % (m, "/" + v if v else "", peer) for m, v, peer in cases)))
        events = ",".join(["syscalls:sys_enter_" + s for s in SYSCALLS] + ["raw_syscalls:sys_enter"])
        for mode, variant, peer in cases:
            proc, port = self.start_server(peer)
            base = os.path.join(self.raw, "syscalls-%s%s-%s" % (mode, "-" + variant if variant else "", peer))
            fifo = base + ".ctl"
            os.mkfifo(fifo)
            perf = subprocess.Popen(["timeout", "-k", "2", "120", "perf", "stat", "-x,", "-D", "-1", "--control",
                                     "fifo:" + fifo, "-e", events, "-p", str(proc.pid), "--", "sleep", "100"],
                                    stdout=subprocess.DEVNULL, stderr=open(base + ".perf", "w"))
            PROCS.live.append(perf)
            # idle: one heartbeat interval from the last session's welcome holds one ping and its pong
            # for every session (all opened within less than an interval)
            window = p.hb_interval / 1000.0 + 0.3 if mode == "idle" else p.sys_window
            err = self.gen(base + ".json", window, ["--mode", mode, "--port", str(port), "--server-pid",
                                                          str(proc.pid), "--perf-control", fifo]
                           + self.peer_args(peer) + self.mode_args(mode, variant))
            perf.send_signal(signal.SIGINT)  # perf stat prints its counts on SIGINT
            try:
                perf.wait(20)
            except subprocess.TimeoutExpired:
                pass
            PROCS.stop(perf)
            PROCS.stop(proc)
            counts = {}
            for line in open(base + ".perf"):
                f = line.split(",")
                if len(f) > 2 and f[0].isdigit():
                    counts[f[2].replace("syscalls:sys_enter_", "").replace("raw_syscalls:sys_enter", "total")] = int(f[0])
            json.dump({"counts": counts}, open(base + "-perf.json", "w"))
            if "total" not in counts:  # the tool, not the server: a note, not an error
                self.skipped.append("syscalls %s %s %s: perf stat counted nothing: %s" % (
                    mode, variant, peer, open(base + ".perf").read()[-200:].strip()))
            err = " ".join(e for e in (err, self.check(base + ".json", mode, p.sys_idle_sessions)) if e)
            self.record("syscalls", peer, 1, base + ".json", err, mode + ":" + variant if variant else mode)

    def run_profile(self):
        if self.p.smoke:
            return
        if not shutil.which("perf") or subprocess.call(
                ["perf", "record", "-q", "-o", os.path.join(self.work, "perf-test.data"), "--", "true"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL):
            self.skipped.append("profile: perf record does not work here")
            return
        log("profile (perf record): wsgate idle at %d sessions; wsgate and lws-echo echo and handshake" % PER_PROC)
        # idle: 17k sessions open in ~1.5 s; from 8 s on every one has had a ping
        self.profile("idle", "wsgate", ["-F", "1999", "--call-graph", "dwarf,16384"], 19, 8,
                     ["--mode", "idle", "--connections", str(PER_PROC), "--window", "256",
                      "--sources", "127.0.0.2,127.0.0.3,127.0.0.4"])
        for peer in self.want("wsgate", "lws"):
            sfx = "" if peer == "wsgate" else "-lws"
            self.profile("echo" + sfx, peer, ["-F", "999", "-g"], 9, 1, ["--mode", "echo"] + self.mode_args("echo", "json"))
            self.profile("handshake" + sfx, peer, ["-F", "999", "-g"], 9, 1,
                         ["--mode", "handshake"] + self.mode_args("handshake", ""))

    def profile(self, name, peer, rec, dur, settle, args):
        """perf record of a server under a load: top objects and symbols (profile-NAME.txt)."""
        proc, port = self.start_server(peer)
        jpath = os.path.join(self.raw, "profile-%s.json" % name)
        g = self.gen_bg(jpath, dur, ["--port", str(port), "--server-pid", str(proc.pid)] + self.peer_args(peer) + args)
        time.sleep(settle)
        data = os.path.join(self.work, "perf-%s.data" % name)
        rc = subprocess.call(["timeout", "-k", "2", "30", "perf", "record", "-q"] + rec +
                             ["-p", str(proc.pid), "-o", data, "--", "sleep", "4"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        g.wait()
        PROCS.live.remove(g)
        PROCS.stop(proc)
        if rc:
            return

        def report(*a):
            r = subprocess.run(["timeout", "120", "perf", "report", "-i", data, "--stdio", "-g", "none"] + list(a),
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            return [l for l in r.stdout.splitlines() if re.match(r"^ +[0-9.]+%", l)]

        L = ["# perf record %s -p <%s> -- sleep 4, during: wsgate-bench %s" % (" ".join(rec), peer, " ".join(args)),
             "# by shared object:"] + report("--no-children", "--sort", "dso")[:12]
        L += ["# by symbol (bare addresses: static functions of the stripped libwebsockets):"]
        L += report("--no-children", "--sort", "dso,sym", "--percent-limit", "0.5")[:30]
        if name == "idle":
            L += ["# inclusive (children): system calls and wsgate's heartbeat code"]
            L += [l for l in report("--children", "--sort", "sym") if re.search(
                r" (__x64_sys_[a-z_0-9]+|on_tick|hb_wheel_advance|session_pong|session_writeable)$", l)][:14]
        try:
            r = json.load(open(jpath))
            L.append("# load: " + " ".join("%s=%s" % (k, r[k]) for k in (
                "handshakes_per_s", "msgs_per_s", "connections", "sessions", "server_cpu_pct") if k in r))
        except Exception:
            pass
        open(os.path.join(self.work, "profile-%s.txt" % name), "w").write("\n".join(L) + "\n")

    def run(self):
        for mode in ALL_MODES:
            if mode in self.modes:
                getattr(self, "run_" + mode)()
        for s in self.skipped:
            log(s)


# ---------------------------------------------------------------- dead-peer client


def deadpeer_client(argv):
    """Raw RFC 6455 clients: upgrade, read the welcome, send one "ping" text (the last frame
    each ever sends), read the "pong", then never answer the server's pings. Prints, per
    client, the time from that last frame to the server's ping and to its close frame."""
    import base64
    import struct
    port, n, stagger_ms, limit_s, token = int(argv[0]), int(argv[1]), float(argv[2]), float(argv[3]), argv[4]
    host = "127.0.0.1"
    out = [None] * n

    def recv_exact(s, k, buf):
        while len(buf) < k:
            d = s.recv(65536)
            if not d:
                raise EOFError("connection ended without a close frame")
            buf += d
        return buf

    def read_frame(s, buf):
        buf = recv_exact(s, 2, buf)
        op, ln, h = buf[0] & 0x0f, buf[1] & 0x7f, 2
        if ln == 126:
            buf = recv_exact(s, 4, buf)
            ln, h = struct.unpack(">H", bytes(buf[2:4]))[0], 4
        elif ln == 127:
            buf = recv_exact(s, 10, buf)
            ln, h = struct.unpack(">Q", bytes(buf[2:10]))[0], 10
        buf = recv_exact(s, h + ln, buf)
        return op, bytes(buf[h:h + ln]), buf[h + ln:]

    def send_frame(s, op, payload):
        mask = os.urandom(4)
        s.sendall(bytes([0x80 | op, 0x80 | len(payload)]) + mask +
                  bytes(b ^ mask[i & 3] for i, b in enumerate(payload)))

    def one(i):
        r = {"client": i}
        try:
            time.sleep(i * stagger_ms / 1000.0)  # spread over the wheel's tick phase
            s = socket.create_connection((host, port), timeout=limit_s)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            key = base64.b64encode(os.urandom(16)).decode()
            s.sendall(("GET /ws?token=%s&device=dead%d HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                       "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
                       % (token, i, host, port, key)).encode())
            buf = bytearray()
            while b"\r\n\r\n" not in buf:
                buf = recv_exact(s, len(buf) + 1, buf)
            head, _, rest = bytes(buf).partition(b"\r\n\r\n")
            if b" 101 " not in head.split(b"\r\n")[0]:
                raise RuntimeError("no 101: %r" % head[:40])
            op, payload, buf = read_frame(s, bytearray(rest))
            if not payload.startswith(b'{"type":"welcome"'):
                raise RuntimeError("no welcome")
            send_frame(s, 1, b"ping")
            t_last = time.monotonic()
            op, payload, buf = read_frame(s, buf)
            if payload != b"pong":
                raise RuntimeError("no pong")
            t_ping = None
            while True:
                op, payload, buf = read_frame(s, buf)
                now = time.monotonic()
                if op == 9 and t_ping is None:
                    t_ping = now
                elif op == 8:
                    r.update(code=struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else 1005,
                             reason=payload[2:].decode("utf-8", "replace"),
                             ping_ms=round((t_ping - t_last) * 1000, 1) if t_ping else None,
                             detect_ms=round((now - t_last) * 1000, 1))
                    break
            s.close()
        except Exception as e:
            r["error"] = "%s: %s" % (type(e).__name__, e)
        out[i] = r

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps({"interval_ms": int(argv[5]), "timeout_ms": int(argv[6]), "clients": out}))


# ---------------------------------------------------------------- setup


def setup(plan, modes, peers):
    """Dependencies (scripts/install-deps.sh --bench) and the Release build."""
    need = not shutil.which("taskset") or not os.path.isdir(os.path.join(ROOT, "node_modules/ws"))
    need = need or ("node" in peers and not shutil.which("node"))
    need = need or (not plan.smoke and not shutil.which("gnuplot"))
    need = need or (any(m in modes for m in ("history", "cluster", "idle")) and not shutil.which("redis-server"))
    need = need or (("syscalls" in modes or "profile" in modes) and not plan.smoke and not shutil.which("perf"))
    if need:
        log("installing benchmark dependencies (scripts/install-deps.sh --bench)")
        subprocess.check_call(["timeout", "600", os.path.join(ROOT, "scripts/install-deps.sh"), "--bench"])
    log("building Release into build-release/")
    blog = os.path.join(tempfile.gettempdir(), "wsgate-bench-cmake-%d.log" % os.getpid())
    with open(blog, "wb") as f:
        ok = subprocess.call(["timeout", "600", "cmake", "-S", ROOT, "-B", BUILD, "-DCMAKE_BUILD_TYPE=Release"],
                             stdout=f, stderr=subprocess.STDOUT) == 0
        ok = ok and subprocess.call(["timeout", "900", "cmake", "--build", BUILD, "-j%d" % min(os.cpu_count() or 1, 2),
                                     "--target", "wsgate", "wsgate-bench", "lws-echo", "tcp-echo", "wsgate-bench-core"],
                                    stdout=f, stderr=subprocess.STDOUT) == 0
    if not ok:
        sys.stderr.write(open(blog, errors="replace").read()[-4000:])
        sys.exit("bench: the Release build failed")
    os.unlink(blog)


def report(bench, plan, out, t0):
    import bench_report  # scripts/bench_report.py: summaries, console tables, RESULTS.md
    summary = bench_report.summarize(bench, plan)
    bench_report.print_tables(summary, sys.stdout)
    if out:
        log("writing %s (RESULTS.md, results.json, charts, profiles)" % os.path.relpath(out, ROOT))
        bench_report.write_docs(summary, bench, plan, out, t0)


def report_again(work, out):
    """--report WORK: the tables (and with --out the docs) of a run kept with --keep."""
    saved = json.load(open(os.path.join(work, "run.json")))
    plan = Plan(False, 1)
    plan.__dict__.update(saved["plan"])
    bench = argparse.Namespace(records=saved["records"], skipped=saved["skipped"], work=work)
    report(bench, plan, os.path.abspath(out) if out else "", time.time() - saved["elapsed_s"])
    return 0


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "_deadpeer-client":
        return deadpeer_client(sys.argv[2:])
    ap = argparse.ArgumentParser(prog="scripts/bench.sh", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter, usage=argparse.SUPPRESS)
    ap.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--keep", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--mode", action="append", default=[], help=argparse.SUPPRESS)
    ap.add_argument("--peers", default=",".join(ALL_PEERS), help=argparse.SUPPRESS)
    ap.add_argument("--runs", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--out", default="", help=argparse.SUPPRESS)
    ap.add_argument("--scales", default="", help=argparse.SUPPRESS)
    ap.add_argument("--report", default="", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.report:
        return report_again(a.report, a.out)
    modes = [m for arg in a.mode for m in arg.split(",") if m] or ALL_MODES
    peers = [p for p in a.peers.split(",") if p]
    for m in modes:
        if m not in ALL_MODES:
            ap.error("unknown mode '%s' (%s)" % (m, ", ".join(ALL_MODES)))
    for p in peers:
        if p not in ALL_PEERS:
            ap.error("unknown peer '%s' (%s)" % (p, ", ".join(ALL_PEERS)))
    if "wsgate" not in peers:
        ap.error("--peers must include wsgate: every table is relative to it")
    if a.runs < 0 or a.runs > 20:
        ap.error("--runs must be 1-20")
    plan = Plan(a.smoke, a.runs)
    if a.scales:
        try:
            plan.idle_scales = sorted({int(x) for x in a.scales.split(",") if x})
        except ValueError:
            ap.error("--scales takes session counts, e.g. 1000,10000")
        if not plan.idle_scales or min(plan.idle_scales) < 1 or max(plan.idle_scales) > 3 * PER_PROC:
            ap.error("--scales: 1 to %d sessions" % (3 * PER_PROC))
    full = not a.smoke and not a.mode and a.peers == ",".join(ALL_PEERS) and not a.scales
    out = os.path.abspath(a.out) if a.out else (OUT if full else "")
    if a.smoke and a.out:
        ap.error("--smoke writes nothing; drop --out")
    os.chdir(ROOT)
    setup(plan, modes, peers)
    work = tempfile.mkdtemp(prefix="wsgate-bench.")
    bench = Bench(plan, modes, peers, work)
    failed = True
    try:
        bench.run()
        # what the report needs, so that --report can write it again without measuring
        json.dump({"plan": vars(plan), "records": bench.records, "skipped": bench.skipped,
                   "elapsed_s": round(time.time() - T0)}, open(os.path.join(work, "run.json"), "w"), indent=1)
        report(bench, plan, out, T0)
        errors = bench.errors()
        log("%s done in %ds: %d runs, %d with errors" % ("smoke" if a.smoke else "bench", time.time() - T0,
                                                         len(bench.records), len(errors)))
        failed = bool(errors)
    finally:
        PROCS.stop_all()
        if a.keep or failed:
            print("bench: scratch directory kept: %s" % work, file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda s, f: sys.exit(128 + s))
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.exit(main())
