"""The numbers of a scripts/bench.py run: medians per table (summarize), the tables on the
console (print_tables), and docs/bench/ (write_docs: RESULTS.md, results.json, charts,
profiles). It only reads the raw results a run left; it never starts a process but gnuplot."""
import json
import os
import re
import shutil
import statistics
import subprocess
import time

NAMES = {"wsgate": "wsgate", "lws": "lws-echo (raw lws)", "node": "Node.js ws", "tcp": "tcp-echo (raw TCP)",
         "uws": "uWebSockets"}
SHORT = {"wsgate": "wsgate", "lws": "lws-echo", "node": "Node ws", "tcp": "tcp-echo", "uws": "uWS"}
FANOUT_NAMES = {"wsgate/api": "wsgate, publisher POST /api/publish", "wsgate/ws": "wsgate, publisher a ws client",
                "node/ws": "Node.js ws broadcast, publisher a ws client"}
HISTORY_NAMES = {"on": "history on (bench config's default)", "off": "history off (size = 0)",
                 "cluster-on": "cluster group + Redis, history on", "cluster-off": "cluster group + Redis, history off"}
# (case, title, the generator's rate, the generator's count of operations in its window)
SYS_CASES = [("echo:json", "per echoed message (JSON ping/pong)", "msgs_per_s", "replies"),
             ("echo:text", "per echoed message (bare-text ping/pong)", "msgs_per_s", "replies"),
             ("handshake", "per handshake (upgrade, welcome, close)", "handshakes_per_s", "handshakes"),
             ("fanout:api", "per delivery (publisher POST /api/publish)", "deliveries_per_s", "deliveries"),
             ("fanout:ws", "per delivery (publisher a ws client)", "deliveries_per_s", "deliveries"),
             ("idle", "per idle session and heartbeat interval (a ping and its pong)", None, "sessions")]


def load(path):
    try:
        if path.endswith(".txt"):
            return open(path).read()
        return json.load(open(path))
    except Exception:
        return None


def stats(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values),
            "runs": values}


def med(s):
    return s["median"] if s else None


def fmt(v, digits=0):
    return "n/a" if v is None else f"{v:,.{digits}f}"


def ratio(a, b):
    return a / b if a and b else None


def cpu_us(r, rate_key):
    """Server CPU (utime+stime over the generator's measured window) per operation, in us."""
    rate, cpu = r.get(rate_key), r.get("server_cpu_pct")
    return cpu / 100.0 / rate * 1e6 if rate and cpu is not None else None


def rate_table(results, rate_key, lat):
    return {"rate": stats([r.get(rate_key) for r in results]),
            "p50_us": stats([r.get(lat + "_p50_us") for r in results]),
            "p99_us": stats([r.get(lat + "_p99_us") for r in results]),
            "p999_us": stats([r.get(lat + "_p999_us") for r in results]),
            "server_cpu_pct": stats([r.get("server_cpu_pct") for r in results]),
            "cpu_us_per_op": stats([cpu_us(r, rate_key) for r in results])}


def summarize(bench, plan):
    recs = bench.records
    for r in recs:
        r["result"] = load(r["file"])
    S = {"plan": {k: v for k, v in vars(plan).items()}, "skipped": list(bench.skipped),
         "errors": [f"{r['mode']} {r['variant']} {r['peer']} {r['scale']} run {r['run']}: {r['error']}"
                    for r in recs if r["error"]]}

    def sel(mode, peer=None, variant=None, scale=None):
        return [r for r in recs if r["mode"] == mode and (peer is None or r["peer"] == peer)
                and (variant is None or r["variant"] == variant) and (scale is None or r["scale"] == scale)]

    def good(rs):
        return [r["result"] for r in rs if r["result"]]

    peers_of = lambda mode: [p for p in ("wsgate", "lws", "node", "tcp", "uws") if sel(mode, p)]
    if sel("handshake"):
        S["handshake"] = {p: rate_table(good(sel("handshake", p)), "handshakes_per_s", "upgrade")
                          for p in peers_of("handshake")}
    if sel("echo"):
        S["echo"] = {v: {p: rate_table(good(sel("echo", p, v)), "msgs_per_s", "rtt")
                         for p in peers_of("echo") if sel("echo", p, v)} for v in ("json", "text")}
    if sel("fanout"):
        S["fanout"] = {}
        for key in FANOUT_NAMES:
            p, v = key.split("/")
            rs = good(sel("fanout", p, v))
            if rs:
                t = rate_table(rs, "deliveries_per_s", "delivery")
                t["publishes_per_s"] = stats([r.get("publishes_per_s") for r in rs])
                t["subscribers"] = max(r.get("subscribers", 0) for r in rs)
                S["fanout"][key] = t
    if sel("history"):
        S["history"] = {}
        for v in HISTORY_NAMES:
            top, fixed = good(sel("history", "wsgate", v, "max")), good(sel("history", "wsgate", v, "rate"))
            if not top and not fixed:
                continue
            t = {"max": rate_table(top, "deliveries_per_s", "delivery"),
                 "rate": rate_table(fixed, "deliveries_per_s", "delivery")}
            t["max"]["publishes_per_s"] = stats([r.get("publishes_per_s") for r in top])
            t["rate"]["publishes_per_s"] = stats([r.get("publishes_per_s") for r in fixed])
            t["rss_kb_after"] = stats([r.get("server_rss_kb_after") for r in top + fixed])
            t["history_entries"] = stats([r.get("wsgate_history_entries") for r in top + fixed])
            # the cluster variants: Redis's CPU too (sampled over the generator's whole run)
            t["max"]["redis_us_per_op"] = stats([r["redis_cpu_pct"] / 100.0 / r["deliveries_per_s"] * 1e6 for r in top
                                                 if r.get("redis_cpu_pct") is not None and r.get("deliveries_per_s")])
            t["rate"]["redis_cpu_pct"] = stats([r.get("redis_cpu_pct") for r in fixed])
            S["history"][v] = t
    if sel("cluster"):
        S["cluster"] = {}
        for n in sorted({r["variant"] for r in sel("cluster")}, key=int):
            hs = good(sel("cluster", "wsgate", n, "handshake"))
            fo, fixed = good(sel("cluster", "wsgate", n, "fanout")), good(sel("cluster", "wsgate", n, "rate"))
            t = {"handshake": rate_table(hs, "handshakes_per_s", "upgrade"),
                 "fanout": rate_table(fo, "deliveries_per_s", "delivery"),
                 "rate": rate_table(fixed, "deliveries_per_s", "delivery")}
            t["fanout"]["publishes_per_s"] = stats([r.get("publishes_per_s") for r in fo])
            t["rate"]["publishes_per_s"] = stats([r.get("publishes_per_s") for r in fixed])
            # the nodes' and Redis's CPU over the generator's window (bench.py samples it), per operation
            for kind, key in (("handshake", "handshakes_per_s"), ("fanout", "deliveries_per_s")):
                rs = {"handshake": hs, "fanout": fo}[kind]
                for who in ("nodes", "redis"):
                    t[kind][who + "_us_per_op"] = stats([r[who + "_cpu_pct"] / 100.0 / r[key] * 1e6 for r in rs
                                                         if r.get(who + "_cpu_pct") is not None and r.get(key)])
            S["cluster"][n] = t
    if sel("idle", variant=""):
        S["idle"] = summarize_idle(sel, plan)
    if sel("idle", variant="cluster"):
        S["idle_cluster"] = summarize_idle(sel, plan, "cluster")
    if sel("core"):
        core = {}
        for r in sel("core"):
            for line in (r["result"] or "").splitlines():
                m = dict(re.findall(r"(\w+)=\s*([\d.]+)", line))
                if "sessions" in m:
                    core.setdefault(int(m["sessions"]), []).append(m)
        S["core"] = {str(n): {k: stats([float(m[k]) for m in ms]) for k in
                              ("registry_add_ns", "registry_find_ns", "wheel_arm_ns", "wheel_due_ns_per_session")}
                     for n, ms in sorted(core.items())}
    if sel("deadpeer"):
        dp = [c for r in sel("deadpeer") if r["result"] for c in r["result"]["clients"] if c and "detect_ms" in c]
        bound = plan.dp_interval + plan.dp_timeout + 100
        S["deadpeer"] = {"interval_ms": plan.dp_interval, "timeout_ms": plan.dp_timeout, "bound_ms": bound,
                         "detect_ms": stats([c["detect_ms"] for c in dp]),
                         "ping_ms": stats([c["ping_ms"] for c in dp if c.get("ping_ms") is not None]),
                         "close_after_ping_ms": stats([c["detect_ms"] - c["ping_ms"] for c in dp
                                                       if c.get("ping_ms") is not None]),
                         "over_bound": sum(c["detect_ms"] > bound for c in dp), "samples": len(dp)}
    if sel("syscalls"):
        S["syscalls"] = {}
        for r in sel("syscalls"):
            perf = load(r["file"][:-5] + "-perf.json")
            case = {c[0]: c for c in SYS_CASES}.get(r["variant"])
            if not r["result"] or not perf or not case:
                continue
            # the operations of the generator's window, which is exactly what perf counted
            ops = r["result"].get(case[3])
            counts = perf["counts"]
            if not ops or "total" not in counts:
                continue
            per = {k: v / ops for k, v in counts.items() if v}
            per["other"] = max(per.get("total", 0) - sum(v for k, v in per.items() if k != "total"), 0)
            S["syscalls"].setdefault(r["variant"], {})[r["peer"]] = {
                "ops_per_s": r["result"].get(case[2]) if case[2] else None, "ops": ops, "per_op": per, "server_cpu_pct": r["result"].get("server_cpu_pct")}
    S["profiles"] = {}
    for name in ("idle", "echo", "echo-lws", "handshake", "handshake-lws"):
        path = os.path.join(bench.work, f"profile-{name}.txt")
        if os.path.exists(path):
            S["profiles"][name] = parse_profile(path)
    return S


def summarize_idle(sel, plan, variant=""):
    """{peer: {sessions: figures}}; variant "cluster": the nodes of a cluster, and their Redis."""
    out = {}
    hb_s = plan.hb_interval / 1000.0
    for p in ("wsgate", "lws", "node", "uws"):
        for n in sorted({int(r["scale"]) for r in sel("idle", p, variant)}):
            rs = sel("idle", p, variant, str(n))
            per_run = {}
            for r in rs:
                per_run.setdefault(r["run"], []).append(r)
            cpu_by_run = {r["run"]: r["result"] for r in sel("idlecpu", p, variant, str(n)) if r["result"]}
            rss, cpu, open_s, opened, notes, procs, all_open = [], [], [], [], [], 0, True
            for run, parts in sorted(per_run.items()):
                notes += [x["note"] for x in parts if x.get("note")]
                res = [x["result"] for x in parts]
                if any(x is None for x in res):
                    continue
                sessions = sum(x["sessions"] for x in res)
                grown_kb = sum(x["rss_open_kb"] - x["rss_before_kb"] for x in res)
                rss.append(grown_kb * 1024.0 / sessions if sessions else None)
                opened.append(sessions)
                ok = all(x["all_open"] for x in res)
                all_open = all_open and ok
                open_s.append(max(x["open_s"] for x in res) if ok else None)
                if run in cpu_by_run:  # sampled only once every session was open
                    cpu.append(cpu_by_run[run]["cpu_pct"])
                procs = len(res)
            t = out.setdefault(p, {})[str(n)] = {
                "processes": procs, "rss_per_session_b": stats(rss), "cpu_pct": stats(cpu),
                # CPU per session per heartbeat interval: what one session's idle costs
                "cpu_us_per_session_interval": stats([c / 100.0 * hb_s / n * 1e6 for c in cpu]),
                "open_s": stats(open_s), "sessions_open": stats(opened), "all_open": all_open and bool(opened),
                "notes": notes}
            if variant == "cluster":  # Redis over the same window (bench.py's redis_window)
                cw = [cpu_by_run[run] for run in sorted(cpu_by_run)]
                for k in ("redis_cmds_per_s", "redis_scripts_per_s", "redis_cpu_pct", "redis_used_memory_b",
                          "redis_keys", "redis_total_commands", "redis_window_s"):
                    t[k] = stats([c.get(k) for c in cw])
                t["redis_calls"] = cw[-1].get("redis_calls", {}) if cw else {}  # one run's, by command
                t["channels"] = max([x["result"].get("channels", 0) for x in rs if x["result"]] or [0])
                t["subscribed"] = stats([sum(x["result"].get("subscribed", 0) for x in parts if x["result"])
                                         for parts in per_run.values()])
    return out


def parse_profile(path):
    """A profile-NAME.txt: shares by object and symbol, inclusive shares, the load line."""
    r = {"dso": [], "sym": [], "incl": {}, "load": {}}
    sec = None
    for line in open(path):
        for head, key in (("# by shared object", "dso"), ("# by symbol", "sym"), ("# inclusive", "incl")):
            if line.startswith(head):
                sec = key
        if line.startswith("# load:"):
            r["load"] = {k: float(v) for k, v in re.findall(r"(\w+)=([\d.]+)", line)}
        if line.startswith("#"):
            continue
        if sec == "dso":
            m = re.match(r"\s+([\d.]+)%\s+(\S+)\s*$", line)
            if m:
                r["dso"].append((float(m.group(1)), m.group(2)))
        elif sec == "sym":
            m = re.match(r"\s+([\d.]+)%\s+(\S+)\s+\[[.k]\]\s+(.+?)\s*$", line)
            if m:
                r["sym"].append((float(m.group(1)), m.group(2), m.group(3)))
        elif sec == "incl":
            m = re.match(r"\s+([\d.]+)%\s+[\d.]+%\s+\[[.k]\]\s+(\S+)", line)
            if m:
                r["incl"][m.group(2)] = float(m.group(1))
    return r


# ---------------------------------------------------------------- tables (console and markdown)


def tables(S):
    """Every table of a run as (title, header, rows); the console and RESULTS.md print the same."""
    T = []
    if "handshake" in S:
        hs = S["handshake"]
        T.append(("handshake: upgrades per second", ["peer", "handshakes/s (median)", "min - max", "vs wsgate",
                                                     "latency p50 / p99 / p99.9 (us)", "server CPU",
                                                     "CPU per handshake"],
                  [rate_row(p, hs[p], med(hs["wsgate"]["rate"]), NAMES) for p in hs]))
    for v, title in (("json", "echo: JSON ping/pong, messages per second"),
                     ("text", "echo: bare-text ping -> pong, messages per second")):
        e = S.get("echo", {}).get(v)
        if e and "wsgate" in e:
            T.append((title, ["peer", "msgs/s (median)", "min - max", "vs wsgate", "round trip p50 / p99 / p99.9 (us)",
                              "server CPU", "CPU per message"],
                      [rate_row(p, e[p], med(e["wsgate"]["rate"]), NAMES) for p in e]))
    if S.get("fanout"):
        f = S["fanout"]
        base = med(f.get("wsgate/ws", f.get("wsgate/api", {})).get("rate"))
        rows = []
        for k, t in f.items():
            row = rate_row(k, t, base, FANOUT_NAMES)
            row.insert(2, fmt(med(t["publishes_per_s"]), 0))
            rows.append(row)
        T.append((f"fanout: deliveries per second ({max(t['subscribers'] for t in f.values()):,} subscribers)",
                  ["server, publisher", "deliveries/s (median)", "publishes/s", "min - max", "vs wsgate (ws)",
                   "delivery latency p50 / p99 / p99.9 (us)", "server CPU", "CPU per delivery"], rows))
    if S.get("history"):
        h = S["history"]
        base = med(h.get("on", {}).get("max", {}).get("rate"))
        rows = []
        for v, t in h.items():
            top, fixed, rss = t["max"], t["rate"], t["rss_kb_after"]
            rows.append([HISTORY_NAMES[v], f"**{fmt(med(top['rate']))}**" if top["rate"] else "n/a",
                         f"{fmt(top['rate']['min'])} - {fmt(top['rate']['max'])}" if top["rate"] else "",
                         f"{med(top['rate']) / base:.2f}" if base and top["rate"] else "n/a",
                         fmt(med(top["publishes_per_s"])),
                         (f"**{fmt(med(top['cpu_us_per_op']), 2)} us**" if top["cpu_us_per_op"] else "n/a") +
                         (f" + Redis {fmt(med(top['redis_us_per_op']), 2)} us" if top["redis_us_per_op"] else ""),
                         (f"{fmt(med(fixed['server_cpu_pct']), 1)}%" if fixed["server_cpu_pct"] else "n/a") +
                         (f" + Redis {fmt(med(fixed['redis_cpu_pct']), 1)}%" if fixed["redis_cpu_pct"] else ""),
                         f"{fmt(med(fixed['p50_us']))} / {fmt(med(fixed['p99_us']))}",
                         f"{fmt(med(rss))} KB" if rss else "n/a", fmt(med(t["history_entries"]))])
        T.append((f"history: publish and fan-out cost, history on and off ({plan_get(S, 'hist_subs', 100):,} "
                  "subscribers, a ws publisher)",
                  ["wsgate", "deliveries/s unlimited (median)", "min - max", "vs history on", "publishes/s",
                   "CPU per delivery", f"server CPU at {plan_get(S, 'hist_rate', 1000):,} publishes/s",
                   "there: latency p50 / p99 (us)", "RSS after", "history entries after"], rows))
    if S.get("cluster"):
        c = S["cluster"]
        name = lambda n: "no cluster (one wsgate, no Redis)" if n == "0" else f"{n} node{'s' if n != '1' else ''} + Redis"

        def cpu(t):
            if not t["nodes_us_per_op"]:
                return "n/a"
            return f"{fmt(med(t['nodes_us_per_op']), 2)}" + (
                f" + {fmt(med(t['redis_us_per_op']), 2)}" if t["redis_us_per_op"] else "") + " us"

        def cells(t, base):
            r = t["rate"]
            if not r:
                return ["n/a", "", "n/a"]
            return [f"**{fmt(r['median'])}**", f"{fmt(r['min'])} - {fmt(r['max'])}",
                    f"{r['median'] / base:.2f}" if base else "n/a"]
        hs0 = med(c.get("0", {}).get("handshake", {}).get("rate"))
        T.append(("cluster: handshakes per second (nothing pinned)",
                  ["nodes", "handshakes/s (median)", "min - max", "vs no cluster", "latency p50 / p99 (us)",
                   "CPU per handshake: nodes + Redis"],
                  [[name(n)] + cells(t["handshake"], hs0) +
                   [f"{fmt(med(t['handshake']['p50_us']))} / {fmt(med(t['handshake']['p99_us']))}", cpu(t["handshake"])]
                   for n, t in c.items()]))
        fo0 = med(c.get("0", {}).get("fanout", {}).get("rate"))
        T.append((f"cluster: fan-out to {plan_get(S, 'cl_subs', 1000):,} subscribers (nothing pinned)",
                  ["nodes", "deliveries/s, publishes as fast as acked (median)", "min - max", "vs no cluster",
                   "publishes/s", "CPU per delivery: nodes + Redis",
                   f"at {plan_get(S, 'cl_rate', 100):,} publishes/s: latency p50 / p99 (us)", "there: deliveries/s"],
                  [[name(n)] + cells(t["fanout"], fo0) +
                   [fmt(med(t["fanout"]["publishes_per_s"])), cpu(t["fanout"]),
                    f"{fmt(med(t['rate']['p50_us']))} / {fmt(med(t['rate']['p99_us']))}", fmt(med(t["rate"]["rate"]))]
                   for n, t in c.items()]))
    if S.get("idle"):
        rows = []
        for n in sorted({int(n) for p in S["idle"] for n in S["idle"][p]}):
            for p in S["idle"]:
                s = S["idle"][p].get(str(n))
                if not s:
                    continue
                r, c, cs = s["rss_per_session_b"], s["cpu_pct"], s["cpu_us_per_session_interval"]
                opened = "" if s["all_open"] else f" (not all open: {fmt(med(s['sessions_open']))})"
                rows.append([f"{n:,}", NAMES[p], str(s["processes"]),
                             f"**{fmt(med(r))} B** ({fmt(r and r['min'])} - {fmt(r and r['max'])})" if r else "n/a",
                             f"**{fmt(med(c), 1)}%** ({fmt(c and c['min'], 1)} - {fmt(c and c['max'], 1)})" if c else "n/a",
                             f"{fmt(med(cs), 2)} us" if cs else "n/a",
                             (fmt(med(s["open_s"]), 1) + " s" if med(s["open_s"]) is not None else "n/a") + opened])
        T.append(("idle: memory and CPU per session", ["sessions", "peer", "server processes",
                                                       "RSS per session (median, min - max)",
                                                       "idle CPU, % of a core (all processes)",
                                                       "CPU per session per 5 s interval", "time to open"], rows))
    if S.get("idle_cluster", {}).get("wsgate"):
        rows = []
        for n, s in sorted(S["idle_cluster"]["wsgate"].items(), key=lambda kv: int(kv[0])):
            r, c, cs = s["rss_per_session_b"], s["cpu_pct"], s["cpu_us_per_session_interval"]
            alone = S.get("idle", {}).get("wsgate", {}).get(n)
            ar, acs = alone and med(alone["rss_per_session_b"]), alone and med(alone["cpu_us_per_session_interval"])
            opened = "" if s["all_open"] else f" (not all open: {fmt(med(s['sessions_open']))})"
            rows.append([f"{int(n):,}", f"{s['processes']} + Redis", f"{s['channels']:,}",
                         f"**{fmt(med(r))} B** ({fmt(r and r['min'])} - {fmt(r and r['max'])})" if r else "n/a",
                         f"{fmt(med(c), 1)}%" if c else "n/a",
                         f"**{fmt(med(cs), 2)} us**" if cs else "n/a",
                         f"{fmt(ar)} B / {fmt(acs, 2)} us" if ar or acs else "not run",
                         f"**{fmt(med(s['redis_cmds_per_s']), 1)}** / {fmt(med(s['redis_scripts_per_s']), 1)}"
                         if s["redis_cmds_per_s"] else "n/a",
                         f"{fmt(med(s['redis_cpu_pct']), 2)}%" if s["redis_cpu_pct"] else "n/a",
                         f"{fmt(med(s['redis_used_memory_b']) / 1048576.0, 1)} MB / {fmt(med(s['redis_keys']))}"
                         if s["redis_used_memory_b"] else "n/a",
                         (fmt(med(s["open_s"]), 1) + " s" if med(s["open_s"]) is not None else "n/a") + opened])
        T.append(("idle in a cluster: nodes' memory and CPU per session, Redis while idle",
                  ["sessions", "nodes", "channels", "RSS per session (median, min - max)",
                   "idle CPU, % of a core (all nodes)", "CPU per session per 5 s interval",
                   "without the cluster (idle table): RSS / CPU per session", "Redis commands/s / of them scripts/s",
                   "Redis CPU", "Redis used_memory / keys", "time to open (and subscribe)"], rows))
    for key, title, rate, _ in SYS_CASES:
        sc = S.get("syscalls", {}).get(key)
        if not sc:
            continue
        peers = list(sc)
        calls = sorted({c for p in peers for c, v in sc[p]["per_op"].items() if v >= 0.01 and c != "total"},
                       key=lambda c: (c == "other", -max(sc[p]["per_op"].get(c, 0) for p in peers)))
        rows = [[f"**{c}**" if c == "total" else c] + [f"{sc[p]['per_op'].get(c, 0):.2f}" for p in peers]
                for c in calls + ["total"]]
        if rate:
            rows.append(["(load: operations/s while counted)"] + [fmt(sc[p]["ops_per_s"]) for p in peers])
        else:
            rows.append(["(sessions)"] + [fmt(sc[p]["ops"]) for p in peers])
        T.append((f"syscalls per op: {title}", ["system call"] + [SHORT[p] for p in peers], rows))
    return T


def plan_get(S, key, default):
    return S["plan"].get(key, default)


def rate_row(key, t, base, names):
    r = t["rate"]
    if not r:
        return [names[key], "n/a", "", "", "", "", ""]
    lat = f"{fmt(med(t['p50_us']))} / {fmt(med(t['p99_us']))} / {fmt(med(t['p999_us']))}"
    return [names[key], f"**{fmt(r['median'])}**", f"{fmt(r['min'])} - {fmt(r['max'])}",
            f"{r['median'] / base:.2f}" if base else "n/a", lat, f"{fmt(med(t['server_cpu_pct']))}%",
            f"**{fmt(med(t['cpu_us_per_op']), 2)} us**" if t["cpu_us_per_op"] else "n/a"]


def print_tables(S, f):
    for title, head, rows in tables(S):
        cells = [head] + [[c.replace("**", "") for c in r] for r in rows]
        width = [max(len(r[i]) for r in cells if i < len(r)) for i in range(len(head))]
        print(f"\n{title}", file=f)
        for r in cells:
            print("  " + "  ".join(c.rjust(width[i]) if i else c.ljust(width[i]) for i, c in enumerate(r)), file=f)
    if "deadpeer" in S and S["deadpeer"]["detect_ms"]:
        d = S["deadpeer"]
        print(f"\ndeadpeer: closed after median {fmt(med(d['detect_ms']))} ms, max {fmt(d['detect_ms']['max'])} ms "
              f"(bound {d['bound_ms']} ms; {d['over_bound']} of {d['samples']} over)", file=f)
    if S.get("core"):
        print("\ncore: " + "; ".join(f"{int(n):,}: wheel {med(c['wheel_due_ns_per_session']):.1f} ns/session, "
                                     f"find {med(c['registry_find_ns']):.0f} ns" for n, c in S["core"].items()), file=f)
    for line in idle_cluster_calls(S):
        print("\n" + line, file=f)
    for s in S["skipped"]:
        print("\n" + s, file=f)
    f.flush()


def idle_cluster_calls(S):
    """One line per cluster idle scale: the commands Redis ran in one run's window, by name."""
    out = []
    for n, s in sorted(S.get("idle_cluster", {}).get("wsgate", {}).items(), key=lambda kv: int(kv[0])):
        w = med(s.get("redis_window_s"))
        if s.get("redis_calls") and w:
            out.append(f"idle in a cluster, {int(n):,} sessions: Redis commands in one run's {w:.1f} s window "
                       "(INFO commandstats, those inside scripts included): " +
                       ", ".join(f"{k} {v:,}" for k, v in sorted(s["redis_calls"].items(), key=lambda kv: -kv[1])) +
                       f"; total_commands_processed grew by {fmt(med(s['redis_total_commands']))}")
    return out


def md_table(w, head, rows, numeric=True):
    w("| " + " | ".join(head) + " |")
    w("|" + "|".join(["---"] + ["---:" if numeric else "---"] * (len(head) - 1)) + "|")
    for r in rows:
        w("| " + " | ".join(r) + " |")
    w("")


# ---------------------------------------------------------------- targets (issue 13)


def targets(S, plan):
    hs = {p: S["handshake"][p] for p in S.get("handshake", {})}
    ec = S.get("echo", {}).get("json", {})
    et = S.get("echo", {}).get("text", {})
    fo = S.get("fanout", {})
    idle = S.get("idle", {})
    top = str(max(plan.idle_scales))
    m = lambda t, k="rate": med(t.get(k)) if t else None
    T = []

    def add(name, value, ok, detail):
        T.append({"target": name, "value": value, "met": None if value is None or ok is None else bool(ok(value)),
                  "detail": detail(value) if value is not None else "not measured"})

    for label, e in (("JSON", ec), ("bare text", et)):
        add(f"Echo ({label}) msgs/s at least 2x lws-echo", ratio(m(e.get("wsgate")), m(e.get("lws"))),
            lambda v: v >= 2.0, lambda v, e=e: f"wsgate {fmt(m(e['wsgate']))}/s = {v:.2f}x lws-echo's {fmt(m(e['lws']))}/s")
        add(f"Echo ({label}) server CPU per message at most 1/2 of lws-echo's",
            ratio(m(e.get("wsgate"), "cpu_us_per_op"), m(e.get("lws"), "cpu_us_per_op")), lambda v: v <= 0.5,
            lambda v, e=e: f"wsgate {fmt(m(e['wsgate'], 'cpu_us_per_op'), 2)} us, lws-echo "
                           f"{fmt(m(e['lws'], 'cpu_us_per_op'), 2)} us ({v:.2f}x)")
    add("Handshakes/s at least 0.9x lws-echo", ratio(m(hs.get("wsgate")), m(hs.get("lws"))), lambda v: v >= 0.9,
        lambda v: f"wsgate {fmt(m(hs['wsgate']))}/s = {v:.2f}x lws-echo's {fmt(m(hs['lws']))}/s")
    add("Server CPU per handshake at most lws-echo's / 0.9",
        ratio(m(hs.get("wsgate"), "cpu_us_per_op"), m(hs.get("lws"), "cpu_us_per_op")), lambda v: v <= 1 / 0.9,
        lambda v: f"wsgate {fmt(m(hs['wsgate'], 'cpu_us_per_op'), 1)} us, lws-echo "
                  f"{fmt(m(hs['lws'], 'cpu_us_per_op'), 1)} us ({v:.2f}x)")
    w10 = idle.get("wsgate", {}).get("10000")
    add("Idle RSS per session at 10k sessions at most 2,000 B", m(w10, "rss_per_session_b"), lambda v: v <= 2000,
        lambda v: f"wsgate {fmt(v)} B; lws-echo {fmt(m(idle.get('lws', {}).get('10000'), 'rss_per_session_b'))} B")
    wt = idle.get("wsgate", {}).get(top)
    add(f"Idle CPU at {int(top) // 1000}k sessions, 5 s heartbeat, under 5% of a core", m(wt, "cpu_pct"),
        lambda v: v < 5.0, lambda v: f"{v:.1f}% of a core (sum over {wt['processes']} wsgate processes)")
    per = {n: m(s, "cpu_us_per_session_interval") for n, s in idle.get("wsgate", {}).items()}
    per = {n: v for n, v in per.items() if v}
    add("Idle CPU per session flat (the largest per-session figure under 2x the smallest)",
        max(per.values()) / min(per.values()) if per else None, lambda v: v < 2.0,
        lambda v: "wsgate us per session per interval: " + ", ".join(
            f"{int(n) // 1000}k: {per[n]:.2f}" for n in sorted(per, key=int)) + f" ({v:.2f}x)")
    add("Fan-out deliveries/s at least 3x Node ws", ratio(m(fo.get("wsgate/ws")), m(fo.get("node/ws"))),
        lambda v: v >= 3.0, lambda v: f"wsgate (ws publisher) {fmt(m(fo['wsgate/ws']))}/s = {v:.2f}x Node's "
                                      f"{fmt(m(fo['node/ws']))}/s; API publisher {fmt(m(fo.get('wsgate/api')))}/s")
    add("Fan-out server CPU per delivery at most 1/3 of Node's",
        ratio(m(fo.get("wsgate/ws"), "cpu_us_per_op"), m(fo.get("node/ws"), "cpu_us_per_op")), lambda v: v <= 1 / 3,
        lambda v: f"wsgate {fmt(m(fo['wsgate/ws'], 'cpu_us_per_op'), 2)} us, Node "
                  f"{fmt(m(fo['node/ws'], 'cpu_us_per_op'), 2)} us ({v:.2f}x)")
    for mode, label, key in (("echo", "echo CPU per message (JSON)", "json"), ("handshake", "CPU per handshake", None)):
        t = ec if key else hs
        if "uws" in t:
            add(f"wsgate / uWebSockets, {label} (no target; the distance to close)",
                ratio(m(t.get("wsgate"), "cpu_us_per_op"), m(t.get("uws"), "cpu_us_per_op")), None,
                lambda v, t=t: f"wsgate {fmt(m(t['wsgate'], 'cpu_us_per_op'), 2)} us, uWebSockets "
                               f"{fmt(m(t['uws'], 'cpu_us_per_op'), 2)} us ({v:.2f}x)")
    if S.get("deadpeer"):
        d = S["deadpeer"]
        add(f"Dead peer closed within interval + timeout + 100 ms ({d['bound_ms']} ms)",
            d["detect_ms"]["max"] if d["detect_ms"] else None, lambda v: v <= d["bound_ms"],
            lambda v: f"median {fmt(med(d['detect_ms']))} ms, max {v:,.0f} ms; {d['over_bound']} of {d['samples']} over")
    wheel = {n: med(v["wheel_due_ns_per_session"]) for n, v in S.get("core", {}).items()}
    win = {n: v for n, v in wheel.items() if int(n) <= 100000}
    add("Heartbeat wheel bookkeeping flat per session (in process, 1k to 100k)",
        max(win.values()) / min(win.values()) if win else None, lambda v: v < 2.0,
        lambda v: "wsgate-bench-core ns per session per interval: " + ", ".join(
            f"{int(n):,}: {wheel[n]:.1f}" for n in sorted(wheel, key=int)) + f" ({v:.2f}x over 1k-100k)")
    return T


# ---------------------------------------------------------------- docs/bench


def write_docs(S, bench, plan, out, t0):
    os.makedirs(out, exist_ok=True)
    env = machine()
    env["elapsed_s"] = int(time.time() - t0)
    S["targets"] = targets(S, plan)
    runs = [{k: r[k] for k in ("mode", "variant", "peer", "scale", "run", "error", "result")} for r in bench.records]
    json.dump({"machine": env, "summary": S, "runs": runs}, open(os.path.join(out, "results.json"), "w"), indent=1)
    for name in ("idle", "echo", "echo-lws", "handshake", "handshake-lws"):
        src = os.path.join(bench.work, f"profile-{name}.txt")
        dst = os.path.join(out, f"profile-{name}.txt")
        if os.path.exists(src):
            shutil.copy(src, dst)
        elif os.path.exists(dst):
            os.unlink(dst)
    charts(S, plan, bench.work, out)
    open(os.path.join(out, "RESULTS.md"), "w").write(results_md(S, plan, env))


def machine():
    def sh(cmd):
        r = subprocess.run(cmd, shell=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        return r.stdout.strip() or "?"
    info = open("/proc/cpuinfo").read()
    field = lambda k: (re.search(r"(?m)^" + k + r"\s*:\s*(.*)$", info) or [None, "?"])[1]
    return {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "cpu": f"{field('model name')} (family {field('cpu family')}, model {field('model')}, "
                   f"{os.cpu_count()} CPUs{', virtual machine' if 'hypervisor' in info else ''})",
            "kernel": sh("uname -sr"), "lws": sh("pkg-config --modversion libwebsockets").rstrip("-"),
            "node": sh("node --version"), "ws": sh("node -e 'console.log(require(\"ws/package.json\").version)'"),
            "cc": sh("gcc --version | head -1"), "nofile": sh("ulimit -n"),
            "commit": sh("git rev-parse --short HEAD") + ("" if subprocess.call(
                ["git", "diff", "--quiet", "HEAD", "--", "app", "protocols", "test/bench"]) == 0
                else " (with uncommitted changes)"),
            "uws": os.environ.get("UWS_ECHO_BIN", "")}


def results_md(S, plan, env):
    L = []
    w = L.append
    w("# wsgate benchmark results\n")
    w(f"Measured by `scripts/bench.sh` on {env['date']}; the whole run took {env['elapsed_s'] // 60} min "
      f"{env['elapsed_s'] % 60} s. Raw results of every run: [`results.json`](results.json).\n")
    w("| | |\n|---|---|")
    w(f"| CPU | {env['cpu']} |")
    w(f"| kernel | {env['kernel']} |")
    w(f"| wsgate | commit {env['commit']}, Release build (`{env['cc']}`), `conf/bench/wsgate-bench.conf` |")
    w(f"| libwebsockets | {env['lws']} (Debian package; wsgate and lws-echo link the same library) |")
    w(f"| Node.js / ws | {env['node']} / ws {env['ws']} (`perMessageDeflate: false`) |")
    w(f"| uWebSockets | {'`$UWS_ECHO_BIN` (built by the user, not part of this repository)' if env['uws'] else 'not run (`UWS_ECHO_BIN` not set)'} |")
    w(f"| open files | {env['nofile']} per process: at most 17,000 sessions per server process |")
    w("")
    if S["errors"]:
        w(f"**{len(S['errors'])} run(s) reported errors** (their numbers are still in the tables):\n")
        for e in S["errors"]:
            w(f"- `{e}`")
        w("")
    w("## How it was measured\n")
    w(f"""- One machine, loopback. Every server runs on CPU 0 (`taskset -c 0`), every load generator
  (`build-release/wsgate-bench`) on CPU 1: each server has exactly one core.
- Runs are interleaved (wsgate run 1, lws-echo run 1, ..., then run 2) and every run starts its
  server fresh. Each figure is the **median of {plan.runs} runs**, with the min and max.
- **Server CPU per operation** (per handshake, echoed message, delivery; per idle session and
  heartbeat interval) is the server process's utime + stime (`/proc/PID/stat`) over the
  generator's measured window, divided by the operations in it. When a fast peer saturates the
  generator, this is the fair comparison: rates then say more about the generator than the server.
- **wsgate** runs with `conf/bench/wsgate-bench.conf`: a token on every upgrade, the (user, device)
  registry, one session per connection, the welcome message, the heartbeat ({plan.hb_interval // 1000} s
  interval and timeout) and its log at level info (to a file). The rate limit is raised so it does
  not cap the echo load.
- **echo**: {plan.echo_conns} connections x {plan.echo_inflight} messages in flight, {plan.echo_dur} s per run. JSON: wsgate
  parses each `{{"type":"ping","id":N,"pad":"..."}}` ({plan.echo_size} B), routes it and answers
  `{{"type":"pong","id":N}}`; the other peers send the bytes back. Bare text: the 4-byte `ping`,
  which wsgate answers with `pong` and the echo peers with `ping`.
- **fanout**: {plan.fanout_subs:,} subscribers of one channel and one publisher, {plan.fanout_dur} s per run. Through
  the API one publish is in flight (HTTP/1.1, the next goes when the previous one is answered); a
  WebSocket publisher keeps {plan.fanout_inflight} publishes unacknowledged. The publish carries its
  CLOCK_MONOTONIC time; a delivery's latency is from there to its arrival at the subscriber.
  wsgate: publisher through `POST /api/publish` (the bench config's API key; `{{"delivered":N}}`) or
  a WebSocket client sending `{{"type":"publish",...}}` (`{{"type":"ack","delivered":N}}`).
  Node: `test/bench/node_broadcast.js`, the usual `ws` loop sending each received message to every
  subscriber and acknowledging it to the sender the same way.
- **idle**: N sessions are opened (at most 17,000 per server process: 50k = 3 wsgate processes on
  three ports, 3 generators). RSS per session = (server RSS with all sessions open - RSS before the
  first) / sessions, summed over the processes. Idle CPU = the servers' CPU time over
  {plan.idle_hold - 0.3:.1f} s from 0.3 s after the last session opened (wsgate: two heartbeat intervals; peers
  with no periodic work: {plan.idle_hold_others - 0.3:.1f} s); a run where not every session opened has no CPU figure.
  Clients answer wsgate's pings; lws-echo, Node and uWebSockets send none. Node is measured at
  1k and 10k (one process). Then the largest count again over {plan_get(S, 'idle_cl_nodes', 3)} wsgate nodes of one
  cluster (each a port, a generator and a `cluster = {{ ...; claim_ttl_ms = {plan_get(S, 'idle_cl_ttl', 15000)}; }}`
  group; the token may subscribe to `bench.*`) on a `redis-server` of its own on CPU 0, every session
  subscribed to `bench.K` for K in turn from 0 to {plan_get(S, 'idle_cl_channels', 100) - 1} and open once the subscribe
  is acked; the window is {plan_get(S, 'idle_cl_hold', 10.3) - 0.3:.0f} s, and Redis is read over it (`INFO commandstats`,
  `INFO stats`, `INFO memory`, `/proc` for its CPU).
- **syscalls per op**: one more {plan.sys_window} s run per case with `perf stat -e 'syscalls:sys_enter_*'`
  (the calls listed in `scripts/bench.py`, plus `raw_syscalls:sys_enter` for the total; "other" is the
  rest) attached to the server, started disabled (`-D -1 --control fifo:F`): the generator switches the
  counting on and off at the edges of its measured window (`--perf-control F`), so the calls are divided
  by exactly the operations they served. Idle: {plan.sys_idle_sessions:,} wsgate sessions counted for one heartbeat
  interval from the last one's welcome, which holds one ping and its pong per session. perf slows the server, so those runs' rates are not in the
  tables above.
- **history**: wsgate alone, {plan.hist_subs} subscribers of one channel and a WebSocket publisher
  ({plan.fanout_inflight} publishes unacknowledged), {plan.hist_dur} s per run, each variant and load with a fresh
  server: unlimited, and at {plan.hist_rate:,} publishes/s. "History on" is the bench config as it is
  (the default `history`: 100 messages per channel); "off" adds `history = {{ size = 0; }}`; RSS and
  `wsgate_history_entries` (`/metrics`) are read after the load. The cluster variants add a `cluster`
  group and a `redis-server` of their own on the server's CPU; its CPU is sampled over the
  generator's whole run.
- **cluster**: no cluster (one wsgate, no Redis), then 1, 2 and 3 nodes sharing one port
  (`listen.reuse_port = true`, each with a `cluster` group) on a `redis-server` started for the run
  (`--save "" --appendonly no`); fresh Redis and nodes for every load and run, {plan.cl_dur} s each.
  Nothing is pinned: the nodes, Redis and the generator share the machine's cores. Loads:
  handshakes (as in handshake, every admission a claim in Redis), fan-out to {plan.cl_subs:,} subscribers
  spread over the nodes by the kernel with a WebSocket publisher as fast as it is acked (in a cluster
  the ack means "handed to Redis"; without one, "queued to every subscriber"), and at
  {plan.cl_rate} publishes/s (the delivery latency, the fair comparison).
""")
    w("Commands (what `scripts/bench.sh` runs; ports vary per run):\n")
    w("```")
    w("taskset -c 0 build-release/wsgate -c conf/bench/wsgate-bench.conf   # port and heartbeat set per run")
    w("taskset -c 0 build-release/lws-echo --port P")
    w("taskset -c 0 node test/bench/node_echo.js P        # fanout: node test/bench/node_broadcast.js P")
    w("taskset -c 0 build-release/tcp-echo --port P")
    w("taskset -c 0 $UWS_ECHO_BIN P                       # only when set")
    w(f"taskset -c 1 build-release/wsgate-bench --mode handshake --duration {plan.hs_dur} --window {plan.hs_window} "
      "--sources 127.0.0.2,...,127.0.0.9 --server-pid PID --peer wsgate --path '/ws?token=bench-secret'")
    w(f"taskset -c 1 build-release/wsgate-bench --mode echo --duration {plan.echo_dur} --connections {plan.echo_conns} "
      f"--inflight {plan.echo_inflight} --size {plan.echo_size} [--text-ping] --server-pid PID --peer wsgate|echo [--raw-tcp]")
    w(f"taskset -c 1 build-release/wsgate-bench --mode fanout --duration {plan.fanout_dur} --subscribers {plan.fanout_subs} "
      f"--publisher api --api-key KEY | --publisher ws --inflight {plan.fanout_inflight} --server-pid PID --peer wsgate|echo")
    w(f"taskset -c 1 build-release/wsgate-bench --mode fanout --duration {plan.hist_dur} --subscribers {plan.hist_subs} "
      f"--publisher ws --inflight {plan.fanout_inflight} [--rate {plan.hist_rate}] --server-pid PID --peer wsgate"
      "   # history")
    w("redis-server --port R --bind 127.0.0.1 --save '' --appendonly no   # history's cluster variants, cluster")
    w("build-release/wsgate -c NODE.conf   # cluster: 1-3 of them, listen.reuse_port = true, cluster = { redis; node }")
    w(f"build-release/wsgate-bench --mode handshake --duration {plan.cl_dur} ... | --mode fanout --duration {plan.cl_dur} "
      f"--subscribers {plan.cl_subs} --publisher ws --inflight {plan.fanout_inflight} [--rate {plan.cl_rate}]   # cluster")
    w("taskset -c 1 build-release/wsgate-bench --mode idle --connections N/procs --window 256 --server-pid PID "
      "--device-prefix gIn --sources 127.0.I.2,127.0.I.3,127.0.I.4   # one per server process, all at once")
    w(f"taskset -c 0 redis-server ...; taskset -c 0 build-release/wsgate -c NODE.conf   # idle in a cluster: "
      f"{plan_get(S, 'idle_cl_nodes', 3)} nodes, a port each")
    w(f"taskset -c 1 build-release/wsgate-bench --mode idle ... --channels {plan_get(S, 'idle_cl_channels', 100)}   "
      "# one per node, all at once")
    w(f"taskset -c 0 build-release/wsgate-bench-core {plan.core_max}")
    w("perf stat -x, -D -1 --control fifo:F -e syscalls:sys_enter_sendto,...,raw_syscalls:sys_enter -p PID "
      "-- sleep 100 &   # ended by SIGINT after the generator")
    w("taskset -c 1 build-release/wsgate-bench ... --perf-control F")
    w("```\n")
    w("One mode only, e.g. before and after a change: `scripts/bench.sh --mode echo` (or `handshake`, `idle`, "
      "`fanout`, `history`, `cluster`, `syscalls`; several with commas; `--peers wsgate,lws`, `--runs 1`) prints these tables and writes "
      "nothing here.\n")
    T = tables(S)
    if any(title.startswith(("handshake", "echo", "fanout")) for title, _, _ in T):
        w("## Throughput, latency and CPU per operation\n")
        w("![throughput per peer](throughput.png)\n")
        for title, head, rows in T:
            if title.startswith(("handshake", "echo", "fanout")):
                w(f"### {title}\n")
                md_table(w, head, rows)
        w("![latency percentiles](latency.png)\n")
        w("The percentiles are under full load, so they are mostly queueing: at saturation the round trip is about "
          "in-flight messages / rate.\n")
    for title, head, rows in T:
        if title.startswith("history"):
            w("## History on and off (issue 18)\n")
            w("What keeping a channel's history costs a publish and its fan-out: the same load against wsgate "
              "with its default history (every publish appends a reference to the already framed delivery to "
              "the channel's ring) and with `history = { size = 0; }`, alone and as one node of a cluster.\n")
            md_table(w, head, rows)
        if title.startswith("cluster: handshakes"):
            w("## Cluster on Redis (issue 17)\n")
            w("What the cluster costs and gives on one machine: handshakes/s (each admission claims its "
              "(user, device) in Redis), fan-out deliveries/s and delivery latency at a fixed publish rate, "
              "for one wsgate alone and for 1, 2 and 3 nodes sharing the port, with the CPU the nodes and "
              "Redis spend per operation. With 2 cores for the nodes, Redis and the generator, more nodes "
              "cannot each have a core of their own. In a cluster a publish is acked once handed to Redis, "
              "alone once queued to every subscriber: the fixed-rate latency is the fair comparison.\n")
        if title.startswith("cluster"):
            w(f"### {title[len('cluster: '):]}\n")
            md_table(w, head, rows)
    for s in S["skipped"]:
        w(f"{s}\n")
    if S.get("idle"):
        w("## Cost against scale\n")
        w("![RSS per session and idle CPU](scale.png)\n")
    for title, head, rows in T:
        if title.startswith("idle:"):
            md_table(w, head, rows)
    for p, byn in S.get("idle", {}).items():
        for n, s in byn.items():
            for note in s["notes"]:
                w(f"- note: {NAMES[p]}, {int(n):,} sessions: `{note}` (not counted as an error: the load is the finding)")
    if S.get("idle", {}).get("node"):
        w("\nNode's RSS per session is what its heap grew by: V8 reserves heap ahead, so at 1k sessions the figure "
          "understates the real cost.\n")
    for title, head, rows in T:
        if title.startswith("idle in a cluster"):
            w("## Idle sessions in a cluster (issue 17)\n")
            w(f"What a cluster costs while nothing happens: the idle sessions spread over "
              f"{plan_get(S, 'idle_cl_nodes', 3)} wsgate nodes (a port and a generator each) of one cluster on a "
              f"`redis-server` of its own, each session subscribed to one of {plan_get(S, 'idle_cl_channels', 100)} "
              "channels, so that every node holds a Redis subscription per channel and keeps the channels alive. "
              "The nodes' RSS and CPU per session are measured as in the idle table (whose row without the cluster "
              "has no subscriptions); Redis's commands per second, CPU and memory over the same window, which is "
              f"exactly {plan_get(S, 'idle_cl_hold', 10.3) - 0.3:.0f} s: whole heartbeat intervals and whole "
              f"renewal intervals (`claim_ttl_ms = {plan_get(S, 'idle_cl_ttl', 15000)}`: every "
              f"{plan_get(S, 'idle_cl_ttl', 15000) / 3000.0:g} s each node runs one renewal script and one channel "
              "keep-alive script, a `PTTL` per channel it has subscribers for).\n")
            md_table(w, head, rows)
            for line in idle_cluster_calls(S):
                w(f"{line}\n")
    for byn in S.get("idle_cluster", {}).values():
        for n, s in byn.items():
            for note in s["notes"]:
                w(f"- note: cluster, {int(n):,} sessions: `{note}` (not counted as an error: the load is the finding)")
    if S.get("syscalls"):
        w("## System calls per operation\n")
    for title, head, rows in T:
        if title.startswith("syscalls"):
            w(f"### {title[len('syscalls per op: '):]}\n")
            md_table(w, head, rows)
    if S.get("profiles"):
        w("## Profiles\n")
        w("`perf record` of the server under the same loads ([`profile-echo.txt`](profile-echo.txt), "
          "[`profile-echo-lws.txt`](profile-echo-lws.txt), [`profile-handshake.txt`](profile-handshake.txt), "
          "[`profile-handshake-lws.txt`](profile-handshake-lws.txt), [`profile-idle.txt`](profile-idle.txt)). "
          "Server CPU per operation by object, in us (the profiled run's CPU per operation times each object's "
          "share of the samples):\n")
        for kind, a, b in (("echoed message", "echo", "echo-lws"), ("handshake", "handshake", "handshake-lws")):
            pa, pb = S["profiles"].get(a), S["profiles"].get(b)
            if not pa or not pb:
                continue
            da, db = dso_us(pa), dso_us(pb)
            keys = sorted(set(da) | set(db), key=lambda k: -(da.get(k, 0) + db.get(k, 0)))
            md_table(w, ["object", f"wsgate, us per {kind}", f"lws-echo, us per {kind}"],
                     [[f"`{k}`", f"{da.get(k, 0):.2f}", f"{db.get(k, 0):.2f}"] for k in keys
                      if da.get(k, 0) + db.get(k, 0) >= 0.05] +
                     [["**total**", f"**{sum(da.values()):.2f}**", f"**{sum(db.values()):.2f}**"]])
    if S.get("core"):
        w("## Heartbeat bookkeeping\n")
        if S.get("idle", {}).get("wsgate"):
            w("![heartbeat cost per session](heartbeat.png)\n")
        w("`wsgate-bench-core`: the timing wheel and the registry in process, every session due once per interval.\n")
        md_table(w, ["sessions", "wheel due, ns per session (min - max)", "wheel arm ns", "registry add ns",
                     "registry find ns"],
                 [[f"{int(n):,}", f"{med(c['wheel_due_ns_per_session']):.1f} ({c['wheel_due_ns_per_session']['min']:.1f}"
                                  f" - {c['wheel_due_ns_per_session']['max']:.1f})",
                   f"{med(c['wheel_arm_ns']):.1f}", f"{med(c['registry_add_ns']):.0f}", f"{med(c['registry_find_ns']):.0f}"]
                  for n, c in S["core"].items()])
    d = S.get("deadpeer")
    if d and d["detect_ms"]:
        w("## Dead peer detection\n")
        w(f"wsgate with `heartbeat.interval_ms = {d['interval_ms']}`, `timeout_ms = {d['timeout_ms']}`; "
          f"{plan.dp_clients} raw clients per run (x {plan.runs}, started 37 ms apart to sample the wheel's tick phase) "
          "upgrade, send one text frame (their last), and never answer a ping. Time from that last frame:\n")
        rows = []
        for k, label in (("ping_ms", "server's ping arrives"), ("detect_ms", "close 4100 arrives"),
                         ("close_after_ping_ms", "close after the ping")):
            s = d[k]
            if s:
                rows.append([label, f"{s['median']:,.0f} ms", f"{s['min']:,.0f} ms", f"{s['max']:,.0f} ms"])
        md_table(w, ["", "median", "min", "max"], rows)
        w(f"Bound: interval + timeout + 100 ms = **{d['bound_ms']} ms**; {d['over_bound']} of {d['samples']} closes "
          "came later.\n")
    w("## Targets (issue 13)\n")
    md_table(w, ["target", "measured", "verdict"],
             [[v["target"], v["detail"], "n/a" if v["met"] is None else ("**met**" if v["met"] else "**missed**")]
              for v in S["targets"] if v["value"] is not None], numeric=False)
    w("A target missed is a finding: the profiles and the system-call tables above say where the time goes.\n")
    w("## uWebSockets\n")
    w("uWebSockets is an optional peer. Nothing of it is in this repository (no source, no binary, no build "
      "recipe): build an echo server on uNetworking/uWebSockets yourself (listening on 127.0.0.1, the port as its "
      "only argument, echoing every message, answering pings) and run `UWS_ECHO_BIN=/path/to/echo "
      "scripts/bench.sh`; bench then adds it to the echo, handshake, idle and syscalls tables. Without "
      f"`UWS_ECHO_BIN` it prints \"{UWS_NOTE}\".\n")
    return "\n".join(L)


UWS_NOTE = "uWebSockets: skipped (set UWS_ECHO_BIN to an echo server built from uWebSockets)"


def us_per_op(pr):
    ld = pr["load"]
    rate = ld.get("handshakes_per_s") or ld.get("msgs_per_s")
    return ld["server_cpu_pct"] / 100.0 / rate * 1e6 if rate and ld.get("server_cpu_pct") else 0.0


def dso_us(pr):
    u = us_per_op(pr)
    res = {}
    for pct, d in pr["dso"]:
        k = "kernel" if d.startswith("[kernel") else re.sub(r"\.so.*$", "", d)
        res[k] = res.get(k, 0) + pct / 100.0 * u
    return res


# ---------------------------------------------------------------- charts (gnuplot)


def charts(S, plan, work, out):
    if not shutil.which("gnuplot"):
        return

    def dat(name, lines):  # None when there is nothing to plot: that panel is left out
        if not lines:
            return None
        path = os.path.join(work, name + ".dat")
        open(path, "w").write("\n".join(lines) + "\n")
        return path

    def gp(script, name):
        path = os.path.join(work, name + ".gp")
        open(path, "w").write(script)
        subprocess.run(["gnuplot", path], check=False, timeout=60)

    head = ('set terminal pngcairo size {w},{h} font "DejaVu Sans,11" noenhanced\nset output "{out}"\n'
            'set grid ytics lc rgb "#dddddd"\nset border 3\nset tics nomirror\n')

    def bars(table, names):
        return [f'"{names[p]}" {t["rate"]["median"]} {t["rate"]["min"]} {t["rate"]["max"]}'
                for p, t in table.items() if t["rate"]]

    panels = [("Handshakes/s (window %d)" % plan.hs_window, dat("hs", bars(S.get("handshake", {}), SHORT))),
              ("Echo msgs/s, JSON %d B" % plan.echo_size, dat("ecj", bars(S.get("echo", {}).get("json", {}), SHORT))),
              ("Echo msgs/s, bare-text ping", dat("ect", bars(S.get("echo", {}).get("text", {}), SHORT))),
              ("Fan-out deliveries/s (%d subscribers)" % plan.fanout_subs,
               dat("fo", bars(S.get("fanout", {}), {"wsgate/api": "wsgate API", "wsgate/ws": "wsgate ws",
                                                    "node/ws": "Node ws"})))]
    panels = [(t, d) for t, d in panels if d]
    script = head.format(w=1100, h=800 if len(panels) > 2 else 450, out=os.path.join(out, "throughput.png"))
    script += (f'set multiplot layout {2 if len(panels) > 2 else 1},{2 if len(panels) > 1 else 1} title "Throughput (median of {plan.runs} runs, whiskers: min-max; server on '
               '1 core)"\nset style fill solid 0.8 border -1\nset boxwidth 0.6\nset yrange [0:*]\nset format y "%.0s%c"\n'
               'set offsets 0, 0, graph 0.12, 0\n')
    for title, d in panels:
        script += (f'set title "{title}"\nplot "{d}" using 0:2:xtic(1) with boxes lc rgb "#4C72B0" notitle, '
                   f'"" using 0:2:3:4 with yerrorbars lc rgb "black" pt 0 notitle, '
                   f'"" using 0:2:(sprintf("%.0fk", $2/1000)) with labels offset 0,1.2 notitle\n')
    if panels:
        gp(script + "unset multiplot\n", "throughput")

    def lat(table, names):
        return [f'"{names[p]}" {med(t["p50_us"]) or 0} {med(t["p99_us"]) or 0} {med(t["p999_us"]) or 0}'
                for p, t in table.items() if t["rate"]]
    panels = [(t, d) for t, d in (
        ("Echo round trip (JSON)", dat("lat_ec", lat(S.get("echo", {}).get("json", {}), SHORT))),
        ("Handshake (connect to welcome / 101)", dat("lat_hs", lat(S.get("handshake", {}), SHORT))),
        ("Fan-out delivery", dat("lat_fo", lat(S.get("fanout", {}), {
            "wsgate/api": "wsgate API", "wsgate/ws": "wsgate ws", "node/ws": "Node ws"})))) if d]
    script = head.format(w=1400, h=480, out=os.path.join(out, "latency.png"))
    script += (f"set multiplot layout 1,{max(len(panels), 1)} title \"Latency percentiles under full load (median of runs), log scale\"\n"
               "set style data histogram\nset style histogram clustered gap 1\nset style fill solid 0.85 border -1\n"
               "set logscale y\nset ylabel \"microseconds\"\nset key top left\nset xtics rotate by -25\n")
    for title, d in panels:
        script += (f'set title "{title}"\nplot "{d}" using 2:xtic(1) title "p50" lc rgb "#4C72B0", "" using 3 title '
                   '"p99" lc rgb "#DD8452", "" using 4 title "p99.9" lc rgb "#C44E52"\n')
    if panels:
        gp(script + "unset multiplot\n", "latency")

    idle = S.get("idle", {})
    colors = {"wsgate": "#4C72B0", "lws": "#DD8452", "node": "#55A868", "uws": "#8172B3"}
    scales = plan.idle_scales
    rss_p, cpu_p = [], []
    for p, byn in idle.items():
        def pts(key, scale=1.0):
            return [f"{n} {byn[str(n)][key]['median'] * scale} {byn[str(n)][key]['min'] * scale} "
                    f"{byn[str(n)][key]['max'] * scale}" for n in scales if byn.get(str(n), {}).get(key)]
        if pts("rss_per_session_b"):
            rss_p.append(f'"{dat("rss_" + p, pts("rss_per_session_b", 1 / 1024))}" using 1:2:3:4 with yerrorlines '
                         f'lw 2 pt 7 lc rgb "{colors[p]}" title "{NAMES[p]}"')
        if pts("cpu_us_per_session_interval"):
            cpu_p.append(f'"{dat("cpu_" + p, pts("cpu_us_per_session_interval"))}" using 1:2:3:4 with yerrorlines '
                         f'lw 2 pt 7 lc rgb "{colors[p]}" title "{NAMES[p]}"')
    if idle:
        gp(head.format(w=1100, h=450, out=os.path.join(out, "scale.png")) + f'''
set multiplot layout 1,2 title "Cost against scale: idle sessions (wsgate heartbeat {plan.hb_interval // 1000} s; the peers have none)"
set logscale x
set xtics ({", ".join(f'"{n // 1000}k" {n}' for n in scales)})
set xrange [{min(scales) * 0.7}:{max(scales) * 1.4}]
set xlabel "idle sessions"
set key top left
set title "Server RSS per session (KiB)"
set yrange [0:*]
plot {", ".join(rss_p) or "NaN notitle"}
set title "Server CPU per session per {plan.hb_interval // 1000} s interval (us)"
set yrange [0:*]
plot {", ".join(cpu_p) or "NaN notitle"}
unset multiplot
''', "scale")

    core = S.get("core", {})
    if core and idle.get("wsgate"):
        wl = dat("wheel", [f"{n} {med(c['wheel_due_ns_per_session'])} {c['wheel_due_ns_per_session']['min']} "
                           f"{c['wheel_due_ns_per_session']['max']}" for n, c in core.items()])
        hb = dat("hbproc", [f"{n} {med(s['cpu_us_per_session_interval']) * 1000}" for n, s in
                            idle.get("wsgate", {}).items() if s["cpu_us_per_session_interval"]])
        gp(head.format(w=1100, h=450, out=os.path.join(out, "heartbeat.png")) + f'''
set title "Heartbeat cost per session per interval (ns, log-log)"
set logscale xy
set format x "%.0s%c"
set format y "%g"
set xlabel "sessions"
set key top left
plot "{wl}" using 1:2:3:4 with yerrorlines lw 2 pt 7 lc rgb "#4C72B0" title "timing wheel alone (wsgate-bench-core)"{
            f', "{hb}" using 1:2 with linespoints lw 2 pt 5 lc rgb "#C44E52" title "whole wsgate process (idle CPU)"'
            if hb else ""}
''', "heartbeat")
